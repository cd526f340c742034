/* SPDX-License-Identifier: MIT */
/*
 * Queue pairs: the control path.  The backend QP's qp_context is the
 * virtual QP (async events are mapped back with it); qp_num is virtual; the
 * peer's IDs given at RTR are translated to real ones.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shim.h"

#define QP_INIT_SUPPORTED                                      \
	(IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_CREATE_FLAGS | \
	 IBV_QP_INIT_ATTR_MAX_TSO_HEADER | IBV_QP_INIT_ATTR_SEND_OPS_FLAGS)

/* The backend's view of @in: real PD, CQs and SRQ; 0 or an errno. */
static int qp_attr_to_real(const struct ibv_qp_init_attr_ex *in,
			   struct ibv_qp_init_attr_ex *out, struct isn_qp *qp)
{
	struct isn_pd *pd = isn_pd_of(in->pd);
	struct isn_cq *scq = isn_cq_of(in->send_cq);
	struct isn_cq *rcq = isn_cq_of(in->recv_cq);
	struct isn_srq *srq = isn_srq_of(in->srq);

	if (in->comp_mask & ~QP_INIT_SUPPORTED)
		return EOPNOTSUPP; /* XRC domains, RSS: not virtualized yet */
	if (!pd || (in->send_cq && !scq) || (in->recv_cq && !rcq) ||
	    (in->srq && !srq))
		return EINVAL;
	*out = *in;
	out->qp_context = qp;
	out->pd = pd->real;
	out->send_cq = scq ? scq->real : NULL;
	out->recv_cq = rcq ? rcq->real : NULL;
	out->srq = srq ? srq->real : NULL;
	out->comp_mask &= ~IBV_QP_INIT_ATTR_SEND_OPS_FLAGS;
	out->send_ops_flags = 0;
	return 0;
}

static void qp_init(struct isn_qp *qp, struct ibv_context *context,
		    const struct ibv_qp_init_attr_ex *attr)
{
	struct ibv_qp *v = &qp->qp;

	v->context = context;
	v->qp_context = attr->qp_context;
	v->pd = attr->pd;
	v->send_cq = attr->send_cq;
	v->recv_cq = attr->recv_cq;
	v->srq = attr->srq;
	v->handle = qp->real->handle;
	v->qp_num = isn_vid_local_new(ISN_VID_QPN, qp->real->qp_num);
	v->state = qp->real->state;
	v->qp_type = qp->real->qp_type;
	v->events_completed = 0;
	pthread_mutex_init(&v->mutex, NULL);
	pthread_cond_init(&v->cond, NULL);
	qp->post_send = qp->real->context->ops.post_send;
	qp->post_recv = qp->real->context->ops.post_recv;
	isn_qp_set_xlate(qp);
	isn_reg_add(&qp->reg, ISN_KIND_QP);
}

void isn_qp_set_xlate(struct isn_qp *qp)
{
	bool ids = isn_slow_get() & ISN_SLOW_XLATE;

	/* a marker a timed-out drain left may fill the send queue: the
	 * general path makes a post it refuses wait (drain/pending.c) */
	qp->xlate_send = qp->qp.qp_type == IBV_QPT_UD || ids ||
			 isn_qp_marker_out(qp);
	qp->xlate_recv = ids;
}

/* The log of posted receives, sized from the capabilities the backend gave. */
static int qp_logs_init(struct isn_qp *qp, const struct ibv_qp_cap *cap)
{
	struct isn_cq *rcq = isn_cq_of(qp->qp.recv_cq);
	uint32_t rdepth = qp->qp.srq ? 2 : cap->max_recv_wr;
	int ret;

	/* receives consumed but not polled yet are still in the log */
	if (rcq && !qp->qp.srq)
		rdepth += rcq->cqe;
	ret = isn_wq_init(&qp->rq, rdepth, cap->max_recv_sge);
	if (!ret && rcq)
		rcq->track = true;
	return ret;
}

static struct ibv_qp *qp_create(struct isn_context *ictx,
				struct ibv_qp_init_attr_ex *attr)
{
	struct ibv_qp_init_attr_ex ra;
	struct isn_qp *qp;
	int ret;

	qp = calloc(1, sizeof(*qp));
	if (!qp)
		return NULL;
	ret = qp_attr_to_real(attr, &ra, qp);
	if (ret)
		goto err;
	if (ra.comp_mask == IBV_QP_INIT_ATTR_PD)
		qp->real = isn_g.ops.create_qp(ra.pd,
					       (struct ibv_qp_init_attr *)&ra);
	else
		qp->real = isn_g.ops.create_qp_ex(ictx->real, &ra);
	if (!qp->real) {
		ret = errno;
		goto err;
	}
	attr->cap = ra.cap;
	qp->init = *attr;
	qp_init(qp, &ictx->vctx.context, attr);
	ret = qp_logs_init(qp, &ra.cap);
	if (!ret)
		ret = isn_qptab_add(qp);
	if (!ret && (attr->comp_mask & IBV_QP_INIT_ATTR_SEND_OPS_FLAGS))
		ret = isn_wr_setup(qp, attr->send_ops_flags);
	if (ret) {
		ibv_destroy_qp(&qp->qp);
		errno = ret;
		return NULL;
	}
	isn_obj_add(ISN_OBJ_QP, &qp->entry);
	return &qp->qp;
err:
	free(qp);
	errno = ret;
	return NULL;
}

ISN_EXPORT struct ibv_qp *ibv_create_qp(struct ibv_pd *pd,
					struct ibv_qp_init_attr *qp_init_attr)
{
	ISN_CTL();
	struct ibv_qp_init_attr_ex ex;
	struct ibv_qp *qp;

	if (!isn_pd_of(pd))
		return ISN_REAL(struct ibv_qp * (*)(struct ibv_pd *,
						    struct ibv_qp_init_attr *),
				"ibv_create_qp",
				"IBVERBS_1.1")(pd, qp_init_attr);
	memset(&ex, 0, sizeof(ex));
	memcpy(&ex, qp_init_attr, sizeof(*qp_init_attr));
	ex.comp_mask = IBV_QP_INIT_ATTR_PD;
	ex.pd = pd;
	qp = qp_create(isn_ctx_of(pd->context), &ex);
	if (qp)
		qp_init_attr->cap = ex.cap;
	return qp;
}

struct ibv_qp *isn_create_qp_ex(struct ibv_context *context,
				struct ibv_qp_init_attr_ex *attr)
{
	ISN_CTL();
	return qp_create(isn_ctx_of(context), attr);
}

ISN_EXPORT struct ibv_qp_ex *ibv_qp_to_qp_ex(struct ibv_qp *ibqp)
{
	struct isn_qp *qp = isn_qp_of(ibqp);

	if (!qp)
		return ISN_REAL(struct ibv_qp_ex * (*)(struct ibv_qp *),
				"ibv_qp_to_qp_ex", "IBVERBS_1.6")(ibqp);
	return qp->comp_mask & ISN_VERBS_QP_EX ? &qp->qp_ex : NULL;
}

/* The backend's view of @attr: peer IDs real, RC access for markers. */
int isn_qp_modify(struct isn_qp *qp, const struct ibv_qp_attr *attr,
		  int attr_mask)
{
	struct ibv_qp_attr ra = *attr;

	isn_qp_access_to_real(qp, &ra, attr_mask);
	if (attr_mask & IBV_QP_AV)
		qp->peer = isn_ah_attr_peer(&attr->ah_attr);
	if (isn_slow_get() & ISN_SLOW_XLATE) {
		if (attr_mask & IBV_QP_AV)
			isn_ah_attr_to_real(&attr->ah_attr, &ra.ah_attr);
		if (attr_mask & IBV_QP_ALT_PATH)
			isn_ah_attr_to_real(&attr->alt_ah_attr,
					    &ra.alt_ah_attr);
		if (attr_mask & IBV_QP_DEST_QPN)
			ra.dest_qp_num = isn_vid_remote_to_real(
				qp->peer, ISN_VID_QPN, attr->dest_qp_num);
	}
	return isn_g.ops.modify_qp(qp->real, &ra, attr_mask);
}

ISN_EXPORT int ibv_modify_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr,
			     int attr_mask)
{
	ISN_CTL();
	struct isn_qp *qp = isn_qp_of(ibqp);
	int ret;

	if (!qp)
		return ISN_REAL(
			int (*)(struct ibv_qp *, struct ibv_qp_attr *, int),
			"ibv_modify_qp", "IBVERBS_1.1")(ibqp, attr, attr_mask);
	if (qp->real) {
		ret = isn_qp_modify(qp, attr, attr_mask);
		if (ret)
			return ret;
	}
	/* released by a checkpoint: kept, applied at rebuild */
	if (attr_mask & IBV_QP_STATE)
		ibqp->state = attr->qp_state;
	isn_qp_attr_keep(qp, attr, attr_mask);
	return 0;
}

ISN_EXPORT int ibv_query_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr,
			    int attr_mask, struct ibv_qp_init_attr *init_attr)
{
	ISN_CTL();
	struct isn_qp *qp = isn_qp_of(ibqp);
	int ret;

	if (!qp)
		return ISN_REAL(int (*)(struct ibv_qp *, struct ibv_qp_attr *,
					int, struct ibv_qp_init_attr *),
				"ibv_query_qp", "IBVERBS_1.1")(
			ibqp, attr, attr_mask, init_attr);
	if (!qp->real) /* released by a checkpoint: what the program set */
		return isn_qp_query_kept(qp, attr, attr_mask, init_attr);
	ret = isn_g.ops.query_qp(qp->real, attr, attr_mask, init_attr);
	if (ret)
		return ret;
	if (attr_mask & IBV_QP_ACCESS_FLAGS)
		attr->qp_access_flags = qp->attr.qp_access_flags;
	if (attr_mask & IBV_QP_STATE)
		ibqp->state = attr->qp_state;
	if (isn_slow_get() & ISN_SLOW_XLATE) {
		isn_ah_attr_to_virt(&attr->ah_attr);
		isn_ah_attr_to_virt(&attr->alt_ah_attr);
		attr->dest_qp_num = isn_vid_remote_to_virt(
			qp->peer, ISN_VID_QPN, attr->dest_qp_num);
	}
	init_attr->qp_context = ibqp->qp_context;
	init_attr->send_cq = ibqp->send_cq;
	init_attr->recv_cq = ibqp->recv_cq;
	init_attr->srq = ibqp->srq;
	return 0;
}

ISN_EXPORT int ibv_destroy_qp(struct ibv_qp *ibqp)
{
	ISN_CTL();
	struct isn_qp *qp = isn_qp_of(ibqp);
	int ret;

	if (!qp)
		return ISN_REAL(int (*)(struct ibv_qp *), "ibv_destroy_qp",
				"IBVERBS_1.1")(ibqp);
	ret = isn_qp_destroy_real(qp);
	if (ret)
		return ret;
	isn_early_forget(qp, NULL);
	isn_obj_del(&qp->entry);
	isn_ev_barrier();
	isn_reg_del(&qp->reg);
	isn_wait_acks(&ibqp->mutex, &ibqp->cond, &ibqp->events_completed,
		      qp->reg.async_reported);
	isn_vid_local_forget(ISN_VID_QPN, ibqp->qp_num);
	isn_wr_free(qp);
	isn_wq_free(&qp->rq);
	isn_qp_ckpt_free(qp);
	pthread_mutex_destroy(&ibqp->mutex);
	pthread_cond_destroy(&ibqp->cond);
	free(qp);
	return 0;
}
