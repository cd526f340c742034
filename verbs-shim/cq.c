/* SPDX-License-Identifier: MIT */
/*
 * Completion queues, plain and extended.  The backend CQ's cq_context is
 * the virtual CQ (the event thread maps backend events back with it).
 */
#include <errno.h>
#include <stdlib.h>

#include "shim.h"

int isn_poll_cq(struct ibv_cq *ibcq, int n, struct ibv_wc *wc)
{
	struct isn_cq *cq = isn_to_cq(ibcq);
	int got = cq->poll(cq->real, n, wc);

	if (isn_unlikely(isn_vid_active()) && got > 0)
		isn_wc_to_virt(wc, got);
	return got;
}

int isn_req_notify_cq(struct ibv_cq *ibcq, int solicited_only)
{
	struct ibv_cq *real = isn_to_cq(ibcq)->real;

	return real->context->ops.req_notify_cq(real, solicited_only);
}

void isn_wc_to_virt(struct ibv_wc *wc, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		wc[i].qp_num = isn_vid_local_to_virt(ISN_VID_QPN, wc[i].qp_num);
		wc[i].src_qp =
			isn_vid_remote_to_virt(NULL, ISN_VID_QPN, wc[i].src_qp);
		wc[i].slid =
			isn_vid_remote_to_virt(NULL, ISN_VID_LID, wc[i].slid);
	}
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
	if (channel) {
		pthread_mutex_lock(&context->mutex);
		channel->refcnt++;
		pthread_mutex_unlock(&context->mutex);
	}
	isn_reg_add(&cq->reg, ISN_KIND_CQ);
}

ISN_EXPORT struct ibv_cq *ibv_create_cq(struct ibv_context *context, int cqe,
					void *cq_context,
					struct ibv_comp_channel *channel,
					int comp_vector)
{
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
	isn_cq_init(cq, context, channel, cq_context);
	return (struct ibv_cq *)&cq->ibcq;
}

ISN_EXPORT int ibv_resize_cq(struct ibv_cq *ibcq, int cqe)
{
	struct isn_cq *cq = isn_cq_of(ibcq);
	int ret;

	if (!cq)
		return ISN_REAL(int (*)(struct ibv_cq *, int), "ibv_resize_cq",
				"IBVERBS_1.1")(ibcq, cqe);
	ret = isn_g.ops.resize_cq(cq->real, cqe);
	if (!ret)
		ibcq->cqe = cq->real->cqe;
	return ret;
}

ISN_EXPORT int ibv_destroy_cq(struct ibv_cq *ibcq)
{
	struct isn_cq *cq = isn_cq_of(ibcq);
	struct ibv_comp_channel *channel = ibcq ? ibcq->channel : NULL;
	int ret;

	if (!cq)
		return ISN_REAL(int (*)(struct ibv_cq *), "ibv_destroy_cq",
				"IBVERBS_1.1")(ibcq);
	ret = isn_g.ops.destroy_cq(cq->real);
	if (ret)
		return ret;
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
	free(cq);
	return 0;
}
