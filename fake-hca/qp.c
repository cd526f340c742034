/* SPDX-License-Identifier: MIT */
/*
 * Queue pairs: create, query, destroy, the QPN table, and the move to ERR
 * that the transport asks for.
 *
 * create follows rxe on Debian 12 (rdma-core 44 + kernel 6.1): RC, UC, UD;
 * RAW_PACKET, XRC_SEND and DRIVER are EOPNOTSUPP, other types EINVAL; caps up
 * to FK_MAX_QP_WR / FK_MAX_SGE / FK_MAX_INLINE, EINVAL beyond.  The send
 * queue holds max(max_send_sge * 16, max_inline_data) bytes per WQE, which
 * gives the SGEs and inline bytes granted; queue depths are rounded up to a
 * power of two minus one.  Like rxe, create reports the granted SGEs and
 * inline size in attr->cap but leaves the requested depths there; query_qp
 * tells the real depths.  The ibv_wr_* API (IBV_QP_INIT_ATTR_SEND_OPS_FLAGS)
 * is not implemented: EOPNOTSUPP.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fake.h"

#define FK_WQE_SGE_BYTES 16 /* a struct ibv_sge in the send WQE */

static inline uint32_t qpn_slot(uint32_t qpn, uint32_t size)
{
	uint32_t h = qpn * 0x9e3779b1u;

	return (h ^ h >> 16) & (size - 1);
}

struct fk_qp *fk_qp_lookup(struct fk_context *ctx, uint32_t qpn)
{
	uint32_t mask = ctx->qp_tab_size - 1, i = qpn_slot(qpn, mask + 1);
	struct fk_qp *qp;

	while ((qp = ctx->qp_tab[i])) {
		if (qp->ibqp.qp_num == qpn)
			return qp;
		i = (i + 1) & mask;
	}
	return NULL;
}

static void qp_tab_put(struct fk_qp **tab, uint32_t size, struct fk_qp *qp)
{
	uint32_t i = qpn_slot(qp->ibqp.qp_num, size);

	while (tab[i])
		i = (i + 1) & (size - 1);
	tab[i] = qp;
}

int fk_qp_tab_insert(struct fk_context *ctx, struct fk_qp *qp)
{
	if ((ctx->qp_count + 1) * 2 > ctx->qp_tab_size) {
		uint32_t size = ctx->qp_tab_size * 2, i;
		struct fk_qp **tab = calloc(size, sizeof(*tab));

		if (!tab)
			return -ENOMEM;
		for (i = 0; i < ctx->qp_tab_size; i++)
			if (ctx->qp_tab[i])
				qp_tab_put(tab, size, ctx->qp_tab[i]);
		free(ctx->qp_tab);
		ctx->qp_tab = tab;
		ctx->qp_tab_size = size;
	}
	qp_tab_put(ctx->qp_tab, ctx->qp_tab_size, qp);
	ctx->qp_count++;
	return 0;
}

void fk_qp_tab_remove(struct fk_context *ctx, struct fk_qp *qp)
{
	uint32_t mask = ctx->qp_tab_size - 1;
	uint32_t i = qpn_slot(qp->ibqp.qp_num, mask + 1), j;

	while (ctx->qp_tab[i] != qp)
		i = (i + 1) & mask;
	for (j = (i + 1) & mask; ctx->qp_tab[j]; j = (j + 1) & mask) {
		uint32_t home = qpn_slot(ctx->qp_tab[j]->ibqp.qp_num, mask + 1);

		if (((j - home) & mask) >= ((j - i) & mask)) {
			ctx->qp_tab[i] = ctx->qp_tab[j];
			i = j;
		}
	}
	ctx->qp_tab[i] = NULL;
	ctx->qp_count--;
}

/* ---- create ---- */

static uint32_t wr_round(uint32_t wr)
{
	uint32_t s = 1;

	while (s < wr + 1)
		s <<= 1;
	return s - 1;
}

static int check_init_attr(const struct ibv_qp_init_attr_ex *a)
{
	const uint32_t mask_ok = IBV_QP_INIT_ATTR_PD |
				 IBV_QP_INIT_ATTR_CREATE_FLAGS;

	if ((a->comp_mask & ~mask_ok) ||
	    ((a->comp_mask & IBV_QP_INIT_ATTR_CREATE_FLAGS) && a->create_flags))
		return EOPNOTSUPP;
	if (!(a->comp_mask & IBV_QP_INIT_ATTR_PD) || !a->pd)
		return EINVAL;
	switch (a->qp_type) {
	case IBV_QPT_RC:
	case IBV_QPT_UC:
	case IBV_QPT_UD:
		break;
	case IBV_QPT_RAW_PACKET:
	case IBV_QPT_XRC_SEND:
	case IBV_QPT_DRIVER:
		return EOPNOTSUPP;
	default:
		return EINVAL;
	}
	if (!a->send_cq || !a->recv_cq)
		return EINVAL;
	if (a->cap.max_send_wr > FK_MAX_QP_WR ||
	    a->cap.max_send_sge > FK_MAX_SGE ||
	    a->cap.max_inline_data > FK_MAX_INLINE)
		return EINVAL;
	if (!a->srq && (a->cap.max_recv_wr > FK_MAX_QP_WR ||
			a->cap.max_recv_sge > FK_MAX_SGE))
		return EINVAL;
	return 0;
}

/* Caps granted (qp->cap) and reported back (@cap), as rxe computes them. */
static void grant_caps(struct fk_qp *qp, struct ibv_qp_cap *cap, bool srq)
{
	uint32_t wqe = cap->max_send_sge * FK_WQE_SGE_BYTES;

	if (cap->max_inline_data > wqe)
		wqe = cap->max_inline_data;
	qp->cap.max_send_wr = wr_round(cap->max_send_wr);
	qp->cap.max_send_sge = wqe / FK_WQE_SGE_BYTES;
	qp->cap.max_inline_data = wqe;
	qp->cap.max_recv_wr = srq ? 0 : wr_round(cap->max_recv_wr);
	qp->cap.max_recv_sge = srq ? 0 : cap->max_recv_sge;
	cap->max_send_sge = qp->cap.max_send_sge;
	cap->max_inline_data = qp->cap.max_inline_data;
}

static void init_ibqp(struct fk_qp *qp, struct ibv_context *context,
		      const struct ibv_qp_init_attr_ex *a)
{
	struct ibv_qp *q = &qp->ibqp;

	q->context = context;
	q->qp_context = a->qp_context;
	q->pd = a->pd;
	q->send_cq = a->send_cq;
	q->recv_cq = a->recv_cq;
	q->srq = a->srq;
	q->state = IBV_QPS_RESET;
	q->qp_type = a->qp_type;
	pthread_mutex_init(&q->mutex, NULL);
	pthread_cond_init(&q->cond, NULL);
	qp->sq_sig_all = a->sq_sig_all;
	qp->attr.qp_state = IBV_QPS_RESET;
	qp->attr.path_mtu = IBV_MTU_256; /* rxe's default */
	fk_list_init(&qp->entry);
	fk_list_init(&qp->timer_entry);
}

/* Lock held. */
static int qp_attach(struct fk_context *ctx, struct fk_qp *qp)
{
	int ret;

	ret = fk_qp_queues_init(qp);
	if (ret)
		return -ret;
	ret = -fab_qp_publish(ctx->port, qp->ibqp.qp_num);
	if (!ret)
		ret = -fk_qp_tab_insert(ctx, qp);
	if (ret) {
		fab_qp_unpublish(ctx->port, qp->ibqp.qp_num);
		fk_qp_queues_fini(qp);
		return ret;
	}
	fk_list_add(&ctx->qps, &qp->entry);
	return 0;
}

struct ibv_qp *fk_create_qp_ex(struct ibv_context *context,
			       struct ibv_qp_init_attr_ex *attr)
{
	struct fk_context *ctx = to_fctx(context);
	struct fk_qp *qp;
	int err;

	err = check_init_attr(attr);
	if (err) {
		fk_dbg("create_qp type %d: %s", attr->qp_type, strerror(err));
		errno = err;
		return NULL;
	}
	qp = calloc(1, sizeof(*qp));
	if (!qp) {
		errno = ENOMEM;
		return NULL;
	}
	init_ibqp(qp, context, attr);
	grant_caps(qp, &attr->cap, attr->srq != NULL);
	qp->ibqp.qp_num = fab_alloc_qpn(ctx->port);
	qp->ibqp.handle = qp->ibqp.qp_num;
	pthread_mutex_lock(&ctx->lock);
	err = qp_attach(ctx, qp);
	pthread_mutex_unlock(&ctx->lock);
	if (err) {
		fk_log("create_qp: %s", strerror(err));
		pthread_cond_destroy(&qp->ibqp.cond);
		pthread_mutex_destroy(&qp->ibqp.mutex);
		free(qp);
		errno = err;
		return NULL;
	}
	return &qp->ibqp;
}

struct ibv_qp *fk_create_qp(struct ibv_pd *pd, struct ibv_qp_init_attr *attr)
{
	struct ibv_qp_init_attr_ex ax = {
		.qp_context = attr->qp_context,
		.send_cq = attr->send_cq,
		.recv_cq = attr->recv_cq,
		.srq = attr->srq,
		.cap = attr->cap,
		.qp_type = attr->qp_type,
		.sq_sig_all = attr->sq_sig_all,
		.comp_mask = IBV_QP_INIT_ATTR_PD,
		.pd = pd,
	};
	struct ibv_qp *qp = fk_create_qp_ex(pd->context, &ax);

	if (qp)
		attr->cap = ax.cap;
	return qp;
}

/* ---- query, destroy ---- */

int fk_query_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr, int attr_mask,
		struct ibv_qp_init_attr *init)
{
	struct fk_context *ctx = to_fctx(ibqp->context);
	struct fk_qp *qp = to_fqp(ibqp);

	/* like rdma-core (ibv_cmd_query_qp): everything is filled, but
	 * RATE_LIMIT and the bits above it are refused */
	if (attr_mask & ~(IBV_QP_RATE_LIMIT - 1))
		return EOPNOTSUPP;
	pthread_mutex_lock(&ctx->lock);
	*attr = qp->attr;
	attr->cur_qp_state = qp->attr.qp_state;
	attr->cap = qp->cap;
	attr->sq_draining = qp->attr.qp_state == IBV_QPS_SQD &&
			    qp->sq.head != qp->sq.tail;
	if (ctx->dev->link_layer == IBV_LINK_LAYER_ETHERNET) {
		/* rxe_av_to_attr: a RoCE AV always has a GRH, set or not */
		attr->ah_attr.is_global = 1;
		attr->alt_ah_attr.is_global = 1;
	}
	memset(init, 0, sizeof(*init));
	init->qp_context = ibqp->qp_context;
	init->send_cq = ibqp->send_cq;
	init->recv_cq = ibqp->recv_cq;
	init->srq = ibqp->srq;
	init->cap = qp->cap;
	init->qp_type = ibqp->qp_type;
	init->sq_sig_all = qp->sq_sig_all;
	pthread_mutex_unlock(&ctx->lock);
	return 0;
}

/* Unhook @qp from the context; lock held. */
static void qp_detach(struct fk_context *ctx, struct fk_qp *qp)
{
	fk_qp_tab_remove(ctx, qp);
	fab_qp_unpublish(ctx->port, qp->ibqp.qp_num);
	fk_list_del(&qp->entry);
	fk_async_forget(ctx, qp);
	fk_qp_queues_fini(qp);
}

void fk_qp_free(struct fk_qp *qp)
{
	qp_detach(to_fctx(qp->ibqp.context), qp);
	pthread_cond_destroy(&qp->ibqp.cond);
	pthread_mutex_destroy(&qp->ibqp.mutex);
	free(qp);
}

int fk_destroy_qp(struct ibv_qp *ibqp)
{
	struct fk_context *ctx = to_fctx(ibqp->context);
	struct fk_qp *qp = to_fqp(ibqp);
	uint32_t reported;

	pthread_mutex_lock(&ctx->lock);
	qp_detach(ctx, qp);
	reported = qp->events_reported;
	pthread_mutex_unlock(&ctx->lock);

	pthread_mutex_lock(&ibqp->mutex);
	while (ibqp->events_completed != reported)
		pthread_cond_wait(&ibqp->cond, &ibqp->mutex);
	pthread_mutex_unlock(&ibqp->mutex);
	pthread_cond_destroy(&ibqp->cond);
	pthread_mutex_destroy(&ibqp->mutex);
	free(qp);
	return 0;
}

void fk_qp_to_error(struct fk_qp *qp, bool fatal_event)
{
	enum ibv_qp_state old = qp->attr.qp_state;

	if (old == IBV_QPS_ERR)
		return;
	qp->attr.qp_state = IBV_QPS_ERR;
	qp->ibqp.state = IBV_QPS_ERR;
	fk_qp_transition(qp, old);
	if (fatal_event)
		fk_async_event(to_fctx(qp->ibqp.context), IBV_EVENT_QP_FATAL,
			       qp);
}
