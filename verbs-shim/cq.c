/* SPDX-License-Identifier: MIT */
/*
 * Completion queues, plain and extended.  The backend CQ's cq_context is
 * the virtual CQ (the event thread maps backend events back with it).
 */
#include <errno.h>
#include <stdlib.h>

#include "shim.h"
#include "../drain/ckpt.h"

int isn_poll_cq(struct ibv_cq *ibcq, int n, struct ibv_wc *wc)
{
	struct isn_cq *cq = isn_to_cq(ibcq);
	int got;

	isn_cq_enter(cq);
	if (isn_unlikely(isn_slow_get())) {
		isn_cq_leave(cq);
		return isn_poll_cq_slow(cq, n, wc);
	}
	got = cq->poll(cq->real, n, wc);
	if (cq->track && got > 0 && isn_wc_any_recv(wc, got))
		isn_cq_track(cq, wc, got);
	isn_cq_leave(cq);
	return got;
}

int isn_poll_cq_slow(struct isn_cq *cq, int n, struct ibv_wc *wc)
{
	int got;

	if (isn_slow_get() & (ISN_SLOW_CKPT_POLL | ISN_SLOW_SAVED))
		return isn_ckpt_poll(cq, n, wc);
	isn_cq_enter(cq);
	if (isn_slow_get() & (ISN_SLOW_CKPT_POLL | ISN_SLOW_SAVED)) {
		isn_cq_leave(cq);
		return isn_ckpt_poll(cq, n, wc);
	}
	got = cq->poll(cq->real, n, wc);
	if (got > 0)
		isn_wc_done(cq, wc, got);
	isn_cq_leave(cq);
	return got;
}

int isn_req_notify_cq(struct ibv_cq *ibcq, int solicited_only)
{
	struct isn_cq *cq = isn_to_cq(ibcq);
	int ret;

	isn_cq_enter(cq);
	if (isn_unlikely(isn_slow_get() & ISN_SLOW_CKPT_POLL)) {
		isn_cq_leave(cq);
		return isn_ckpt_req_notify(cq, solicited_only);
	}
	cq->armed = solicited_only ? 2 : 1;
	ret = cq->real->context->ops.req_notify_cq(cq->real, solicited_only);
	isn_cq_leave(cq);
	return ret;
}

/* Fill the virtual CQ once the backend one exists. */
void isn_cq_init(struct isn_cq *cq, struct ibv_context *context,
		 struct ibv_comp_channel *channel, void *cq_context)
{
	struct ibv_cq_ex *c = &cq->ibcq;

	c->context = context;
	c->channel = channel;
	c->cq_context = cq_context;
	c->handle = cq->real->handle;
	c->cqe = cq->real->cqe;
	c->comp_events_completed = 0;
	c->async_events_completed = 0;
	pthread_mutex_init(&c->mutex, NULL);
	pthread_cond_init(&c->cond, NULL);
	cq->poll = cq->real->context->ops.poll_cq;
	pthread_mutex_init(&cq->lock, NULL);
	if (channel) {
		pthread_mutex_lock(&context->mutex);
		channel->refcnt++;
		pthread_mutex_unlock(&context->mutex);
	}
	isn_reg_add(&cq->reg, ISN_KIND_CQ);
	isn_obj_add(ISN_OBJ_CQ, &cq->entry);
}

ISN_EXPORT struct ibv_cq *ibv_create_cq(struct ibv_context *context, int cqe,
					void *cq_context,
					struct ibv_comp_channel *channel,
					int comp_vector)
{
	ISN_CTL();
	struct isn_context *ictx = isn_ctx_of(context);
	struct isn_channel *ch = isn_channel_of(channel);
	struct isn_cq *cq;

	if (!ictx)
		return ISN_REAL(struct ibv_cq *
					(*)(struct ibv_context *, int, void *,
					    struct ibv_comp_channel *, int),
				"ibv_create_cq", "IBVERBS_1.1")(
			context, cqe, cq_context, channel, comp_vector);
	if (channel && !ch) {
		errno = EINVAL;
		return NULL;
	}
	cq = calloc(1, sizeof(*cq));
	if (!cq)
		return NULL;
	cq->real = isn_g.ops.create_cq(ictx->real, cqe, cq,
				       ch ? ch->real : NULL, comp_vector);
	if (!cq->real) {
		free(cq);
		return NULL;
	}
	cq->cqe = cqe;
	cq->comp_vector = comp_vector;
	isn_cq_init(cq, context, channel, cq_context);
	return (struct ibv_cq *)&cq->ibcq;
}

ISN_EXPORT int ibv_resize_cq(struct ibv_cq *ibcq, int cqe)
{
	ISN_CTL();
	struct isn_cq *cq = isn_cq_of(ibcq);
	int ret;

	if (!cq)
		return ISN_REAL(int (*)(struct ibv_cq *, int), "ibv_resize_cq",
				"IBVERBS_1.1")(ibcq, cqe);
	if (!cq->real)
		return EBUSY; /* a checkpoint released it */
	ret = isn_g.ops.resize_cq(cq->real, cqe);
	if (!ret) {
		ibcq->cqe = cq->real->cqe;
		cq->cqe = cqe;
	}
	return ret;
}

ISN_EXPORT int ibv_destroy_cq(struct ibv_cq *ibcq)
{
	ISN_CTL();
	struct isn_cq *cq = isn_cq_of(ibcq);
	struct ibv_comp_channel *channel = ibcq ? ibcq->channel : NULL;
	int ret;

	if (!cq)
		return ISN_REAL(int (*)(struct ibv_cq *), "ibv_destroy_cq",
				"IBVERBS_1.1")(ibcq);
	ret = cq->real ? isn_g.ops.destroy_cq(cq->real) : 0;
	if (ret)
		return ret;
	isn_obj_del(&cq->entry);
	isn_ev_barrier();
	isn_reg_del(&cq->reg);
	isn_wait_acks(&ibcq->mutex, &ibcq->cond, &ibcq->comp_events_completed,
		      cq->reg.comp_reported);
	isn_wait_acks(&ibcq->mutex, &ibcq->cond, &ibcq->async_events_completed,
		      cq->reg.async_reported);
	if (channel) {
		pthread_mutex_lock(&channel->context->mutex);
		channel->refcnt--;
		pthread_mutex_unlock(&channel->context->mutex);
	}
	pthread_mutex_destroy(&ibcq->mutex);
	pthread_cond_destroy(&ibcq->cond);
	isn_cq_saved_free(cq);
	pthread_mutex_destroy(&cq->lock);
	free(cq);
	return 0;
}
