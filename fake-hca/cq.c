/* SPDX-License-Identifier: MIT */
/*
 * Completion queues: a ring of ibv_wc per CQ, filled by the transport with
 * fk_cq_push (lock held) and emptied by poll_cq or the ibv_cq_ex iterator.
 *
 * Sizes, limits and errors are rxe's: cqe 1..FK_MAX_CQE rounded up to a
 * power of two minus one, comp_vector below num_comp_vectors, extended WC
 * fields limited to what rxe reports.  A full CQ drops the completion and
 * raises IBV_EVENT_CQ_ERR for every completion dropped, as rxe does.
 * destroy_cq waits until the events it reported are acknowledged, as
 * ibv_destroy_cq does.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake.h"

#define FK_CQ_WC_FLAGS                                                         \
	(IBV_WC_EX_WITH_BYTE_LEN | IBV_WC_EX_WITH_IMM |                        \
	 IBV_WC_EX_WITH_QP_NUM | IBV_WC_EX_WITH_SRC_QP | IBV_WC_EX_WITH_SLID | \
	 IBV_WC_EX_WITH_SL | IBV_WC_EX_WITH_DLID_PATH_BITS)

static uint32_t cq_round(int cqe)
{
	uint32_t s = 1;

	while (s < (uint32_t)cqe + 1)
		s <<= 1;
	return s - 1;
}

/* The oldest completion into @wc; false if the CQ is empty.  Lock held. */
static bool cq_pop(struct fk_cq *cq, struct ibv_wc *wc)
{
	if (!cq->count)
		return false;
	*wc = cq->wcs[cq->head];
	cq->head = (cq->head + 1) % (cq->size + 1);
	cq->count--;
	return true;
}

static void cq_disarm(struct fk_context *ctx, struct fk_cq *cq)
{
	if (cq->armed != FK_CQ_DISARMED) {
		cq->armed = FK_CQ_DISARMED;
		ctx->armed_cqs--;
	}
}

static void cq_notify(struct fk_context *ctx, struct fk_cq *cq)
{
	if (cq->channel) {
		struct fk_cq *p = cq;

		if (write(cq->channel->wfd, &p, sizeof(p)) != sizeof(p)) {
			fk_log("completion channel full: CQ %p stays armed",
			       (void *)cq);
			return;
		}
		cq->chan_pending++;
	}
	cq_disarm(ctx, cq);
}

void fk_cq_push(struct fk_cq *cq, const struct ibv_wc *wc, bool solicited)
{
	struct fk_context *ctx = to_fctx(cq->ibcq.context);

	if (cq->count == cq->size) {
		cq->overflowed = true;
		fk_async_event(ctx, IBV_EVENT_CQ_ERR, cq);
		return;
	}
	cq->wcs[(cq->head + cq->count) % (cq->size + 1)] = *wc;
	cq->count++;
	if (cq->armed == FK_CQ_ARMED_NEXT ||
	    (cq->armed == FK_CQ_ARMED_SOLICITED &&
	     (solicited || wc->status != IBV_WC_SUCCESS)))
		cq_notify(ctx, cq);
}

/* ---- ibv_cq_ex iterator: each step takes one completion into cq->cur ---- */

static int cq_ex_step(struct fk_cq *cq)
{
	if (!cq_pop(cq, &cq->cur))
		return ENOENT;
	cq->ibcq.status = cq->cur.status;
	cq->ibcq.wr_id = cq->cur.wr_id;
	return 0;
}

static int cq_start_poll(struct ibv_cq_ex *ibcq, struct ibv_poll_cq_attr *attr)
{
	struct fk_context *ctx = to_fctx(ibcq->context);
	struct fk_cq *cq = to_fcq_ex(ibcq);
	int ret;

	(void)attr;
	pthread_mutex_lock(&ctx->lock);
	atomic_fetch_add(&ctx->app_polls, 1);
	fk_progress(ctx);
	ret = cq_ex_step(cq);
	cq->in_poll = !ret;
	pthread_mutex_unlock(&ctx->lock);
	if (ret)
		errno = ret;
	return ret;
}

static int cq_next_poll(struct ibv_cq_ex *ibcq)
{
	struct fk_context *ctx = to_fctx(ibcq->context);
	int ret;

	pthread_mutex_lock(&ctx->lock);
	ret = cq_ex_step(to_fcq_ex(ibcq));
	pthread_mutex_unlock(&ctx->lock);
	if (ret)
		errno = ret;
	return ret;
}

static void cq_end_poll(struct ibv_cq_ex *ibcq)
{
	to_fcq_ex(ibcq)->in_poll = false;
}

#define CQ_READ(name, type, expr)                                \
	static type cq_read_##name(struct ibv_cq_ex *ibcq)       \
	{                                                        \
		const struct ibv_wc *wc = &to_fcq_ex(ibcq)->cur; \
                                                                 \
		return (type)(expr);                             \
	}

CQ_READ(opcode, enum ibv_wc_opcode, wc->opcode)
CQ_READ(vendor_err, uint32_t, wc->vendor_err)
CQ_READ(byte_len, uint32_t, wc->byte_len)
CQ_READ(imm_data, __be32, wc->imm_data)
CQ_READ(qp_num, uint32_t, wc->qp_num)
CQ_READ(src_qp, uint32_t, wc->src_qp)
CQ_READ(wc_flags, unsigned int, wc->wc_flags)
CQ_READ(slid, uint32_t, wc->slid)
CQ_READ(sl, uint8_t, wc->sl)
CQ_READ(dlid_path_bits, uint8_t, wc->dlid_path_bits)

static void cq_ex_ops(struct ibv_cq_ex *c, uint64_t wc_flags)
{
	c->start_poll = cq_start_poll;
	c->next_poll = cq_next_poll;
	c->end_poll = cq_end_poll;
	c->read_opcode = cq_read_opcode;
	c->read_vendor_err = cq_read_vendor_err;
	c->read_wc_flags = cq_read_wc_flags;
	if (wc_flags & IBV_WC_EX_WITH_BYTE_LEN)
		c->read_byte_len = cq_read_byte_len;
	if (wc_flags & IBV_WC_EX_WITH_IMM)
		c->read_imm_data = cq_read_imm_data;
	if (wc_flags & IBV_WC_EX_WITH_QP_NUM)
		c->read_qp_num = cq_read_qp_num;
	if (wc_flags & IBV_WC_EX_WITH_SRC_QP)
		c->read_src_qp = cq_read_src_qp;
	if (wc_flags & IBV_WC_EX_WITH_SLID)
		c->read_slid = cq_read_slid;
	if (wc_flags & IBV_WC_EX_WITH_SL)
		c->read_sl = cq_read_sl;
	if (wc_flags & IBV_WC_EX_WITH_DLID_PATH_BITS)
		c->read_dlid_path_bits = cq_read_dlid_path_bits;
}

/* ---- create / destroy ---- */

static struct fk_cq *cq_new(struct ibv_context *context, int cqe,
			    void *cq_context, struct ibv_comp_channel *channel,
			    int comp_vector)
{
	struct fk_context *ctx = to_fctx(context);
	static atomic_uint handles;
	struct fk_cq *cq;

	if (cqe < 1 || cqe > FK_MAX_CQE || comp_vector < 0 ||
	    comp_vector >= context->num_comp_vectors) {
		fk_dbg("create_cq cqe %d vector %d: EINVAL", cqe, comp_vector);
		errno = EINVAL;
		return NULL;
	}
	cq = calloc(1, sizeof(*cq));
	if (cq) {
		cq->size = cq_round(cqe);
		cq->wcs = calloc(cq->size + 1, sizeof(*cq->wcs));
	}
	if (!cq || !cq->wcs) {
		free(cq);
		errno = ENOMEM;
		return NULL;
	}
	cq->ibcq.context = context;
	cq->ibcq.channel = channel;
	cq->ibcq.cq_context = cq_context;
	cq->ibcq.cqe = (int)cq->size;
	cq->ibcq.handle = atomic_fetch_add(&handles, 1);
	pthread_mutex_init(&cq->ibcq.mutex, NULL);
	pthread_cond_init(&cq->ibcq.cond, NULL);
	cq->channel = channel ? to_fch(channel) : NULL;
	pthread_mutex_lock(&ctx->lock);
	if (channel)
		channel->refcnt++;
	fk_list_add(&ctx->cqs, &cq->entry);
	pthread_mutex_unlock(&ctx->lock);
	return cq;
}

struct ibv_cq *fk_create_cq(struct ibv_context *context, int cqe,
			    void *cq_context, struct ibv_comp_channel *channel,
			    int comp_vector)
{
	struct fk_cq *cq =
		cq_new(context, cqe, cq_context, channel, comp_vector);

	return cq ? (struct ibv_cq *)&cq->ibcq : NULL;
}

struct ibv_cq_ex *fk_create_cq_ex(struct ibv_context *context,
				  struct ibv_cq_init_attr_ex *attr)
{
	struct fk_cq *cq;

	if ((attr->comp_mask & ~(uint32_t)(IBV_CQ_INIT_ATTR_MASK_FLAGS |
					   IBV_CQ_INIT_ATTR_MASK_PD)) ||
	    (attr->wc_flags & ~(uint64_t)FK_CQ_WC_FLAGS) ||
	    ((attr->comp_mask & IBV_CQ_INIT_ATTR_MASK_FLAGS) &&
	     (attr->flags & IBV_CREATE_CQ_ATTR_IGNORE_OVERRUN))) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	cq = cq_new(context, (int)attr->cqe, attr->cq_context, attr->channel,
		    (int)attr->comp_vector);
	if (!cq)
		return NULL;
	cq->ex = true;
	cq->wc_flags = attr->wc_flags;
	cq_ex_ops(&cq->ibcq, attr->wc_flags);
	return &cq->ibcq;
}

void fk_cq_free(struct fk_cq *cq)
{
	fk_list_del(&cq->entry);
	pthread_cond_destroy(&cq->ibcq.cond);
	pthread_mutex_destroy(&cq->ibcq.mutex);
	free(cq->wcs);
	free(cq);
}

static bool cq_busy(struct fk_context *ctx, struct ibv_cq *ibcq)
{
	struct fk_list *pos;

	fk_list_for_each(pos, &ctx->qps)
	{
		struct fk_qp *qp = container_of(pos, struct fk_qp, entry);

		if (qp->ibqp.send_cq == ibcq || qp->ibqp.recv_cq == ibcq)
			return true;
	}
	return false;
}

int fk_destroy_cq(struct ibv_cq *ibcq)
{
	struct fk_context *ctx = to_fctx(ibcq->context);
	struct fk_cq *cq = to_fcq(ibcq);
	uint32_t comp, async;

	pthread_mutex_lock(&ctx->lock);
	if (cq_busy(ctx, ibcq)) {
		pthread_mutex_unlock(&ctx->lock);
		return EBUSY;
	}
	cq_disarm(ctx, cq);
	fk_async_forget(ctx, cq);
	if (cq->channel)
		cq->channel->ibch.refcnt--;
	cq->dead = true;
	comp = cq->comp_events_reported;
	async = cq->async_events_reported;
	pthread_mutex_unlock(&ctx->lock);

	pthread_mutex_lock(&ibcq->mutex);
	while (ibcq->comp_events_completed != comp ||
	       ibcq->async_events_completed != async)
		pthread_cond_wait(&ibcq->cond, &ibcq->mutex);
	pthread_mutex_unlock(&ibcq->mutex);

	pthread_mutex_lock(&ctx->lock);
	cq->zombie_done = true;
	if (!cq->chan_pending)
		fk_cq_free(cq);
	pthread_mutex_unlock(&ctx->lock);
	return 0;
}

/* ---- poll, arm, resize ---- */

int fk_poll_cq(struct ibv_cq *ibcq, int num_entries, struct ibv_wc *wc)
{
	struct fk_context *ctx = to_fctx(ibcq->context);
	struct fk_cq *cq = to_fcq(ibcq);
	int n = 0;

	pthread_mutex_lock(&ctx->lock);
	atomic_fetch_add(&ctx->app_polls, 1);
	fk_progress(ctx);
	while (n < num_entries && cq_pop(cq, &wc[n]))
		n++;
	pthread_mutex_unlock(&ctx->lock);
	return n;
}

int fk_req_notify_cq(struct ibv_cq *ibcq, int solicited_only)
{
	struct fk_context *ctx = to_fctx(ibcq->context);
	struct fk_cq *cq = to_fcq(ibcq);

	pthread_mutex_lock(&ctx->lock);
	if (cq->armed == FK_CQ_DISARMED)
		ctx->armed_cqs++;
	/* armed for the next completion stays so (rxe, IB spec) */
	if (cq->armed != FK_CQ_ARMED_NEXT)
		cq->armed = solicited_only ? FK_CQ_ARMED_SOLICITED :
					     FK_CQ_ARMED_NEXT;
	fk_progress_armed(ctx);
	pthread_mutex_unlock(&ctx->lock);
	return 0;
}

int fk_resize_cq(struct ibv_cq *ibcq, int cqe)
{
	struct fk_context *ctx = to_fctx(ibcq->context);
	struct fk_cq *cq = to_fcq(ibcq);
	struct ibv_wc *wcs;
	uint32_t size, i;

	if (cqe < 1 || cqe > FK_MAX_CQE)
		return EINVAL;
	size = cq_round(cqe);
	wcs = calloc(size + 1, sizeof(*wcs));
	if (!wcs)
		return ENOMEM;
	pthread_mutex_lock(&ctx->lock);
	if ((uint32_t)cqe < cq->count) {
		pthread_mutex_unlock(&ctx->lock);
		free(wcs);
		return EINVAL;
	}
	for (i = 0; cq_pop(cq, &wcs[i]); i++)
		;
	free(cq->wcs);
	cq->wcs = wcs;
	cq->head = 0;
	cq->count = i;
	cq->size = size;
	ibcq->cqe = (int)size;
	pthread_mutex_unlock(&ctx->lock);
	return 0;
}
