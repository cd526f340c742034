// SPDX-License-Identifier: MIT
/*
 * Completion queues at a rebuild: a new backend CQ (plain or extended, as
 * the program made it) on the new channel.  Once everything is connected,
 * a CQ the program armed is armed again -- or, when it holds saved
 * completions, its channel gets the event at once (design §5): the
 * program waits for an event that the old CQ would have raised.
 */
#include <errno.h>

#include "../drain/ckpt.h"

/* cq->lock held. */
void isn_cq_raise_event(struct isn_cq *cq)
{
	struct isn_channel *ch = isn_channel_of(cq->ibcq.channel);
	uint64_t id = cq->reg.id;

	if (!ch || !cq->armed || !isn_cq_saved_count(cq))
		return;
	cq->armed = 0;
	isn_pipe_put(ch->wfd, &id, sizeof(id));
}

static int cq_create(struct isn_cq *cq)
{
	struct isn_context *ictx = isn_ctx_of(cq->ibcq.context);
	struct isn_channel *ch = isn_channel_of(cq->ibcq.channel);
	struct ibv_cq_init_attr_ex a;

	if (!cq->is_ex) {
		cq->real = isn_g.ops.create_cq(ictx->real, cq->cqe, cq,
					       ch ? ch->real : NULL,
					       cq->comp_vector);
		return cq->real ? 0 : -errno;
	}
	a = cq->attr_ex;
	a.cq_context = cq;
	a.channel = ch ? ch->real : NULL;
	a.wc_flags |= ISN_CQX_FORCED_FLAGS;
	cq->real_ex = isn_g.ops.create_cq_ex(ictx->real, &a);
	if (!cq->real_ex)
		return -errno;
	cq->real = ibv_cq_ex_to_cq(cq->real_ex);
	return 0;
}

int isn_cq_rebuild(void)
{
	struct isn_cq *cq;
	int ret;

	isn_for_each_obj(struct isn_cq, cq, ISN_OBJ_CQ)
	{
		if (cq->real)
			continue;
		pthread_mutex_lock(&cq->lock);
		ret = cq_create(cq);
		if (!ret) {
			cq->poll = cq->real->context->ops.poll_cq;
			cq->ibcq.handle = cq->real->handle;
			atomic_store(&cq->qp_cache, 0);
		}
		pthread_mutex_unlock(&cq->lock);
		if (ret)
			return ret;
	}
	return 0;
}

int isn_cq_connect(void)
{
	struct isn_cq *cq;
	int ret = 0;

	isn_for_each_obj(struct isn_cq, cq, ISN_OBJ_CQ)
	{
		pthread_mutex_lock(&cq->lock);
		isn_cq_raise_event(cq);
		if (cq->armed)
			ret = cq->real->context->ops.req_notify_cq(
				cq->real, cq->armed == 2);
		pthread_mutex_unlock(&cq->lock);
		if (ret)
			return -ret;
	}
	return 0;
}
