/* SPDX-License-Identifier: MIT */
/*
 * Completion channels.  The application's channel fd is the read end of a
 * pipe the shim owns (design §5); the event thread turns each event of the
 * backend channel into one 8-byte record there: the id of the virtual CQ.
 * Backend events are acknowledged at once; the application's acks are
 * counted on the virtual CQ, so ibv_destroy_cq waits for them as rdma-core
 * does.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "shim.h"

void isn_channel_drain(void *arg)
{
	struct isn_channel *ch = arg;
	struct ibv_cq *rcq;
	void *cq_context;

	while (!isn_g.ops.get_cq_event(ch->real, &rcq, &cq_context)) {
		struct isn_cq *cq = cq_context;
		uint64_t id = cq->reg.id;

		cq->armed = 0;
		isn_g.ops.ack_cq_events(rcq, 1);
		isn_pipe_put(ch->wfd, &id, sizeof(id));
	}
}

static struct ibv_comp_channel *channel_create(struct isn_context *ictx)
{
	struct isn_channel *ch = calloc(1, sizeof(*ch));
	int fds[2] = { -1, -1 }, ret;

	if (!ch)
		return NULL;
	ch->real = isn_g.ops.create_comp_channel(ictx->real);
	if (!ch->real)
		goto err_free;
	ret = isn_fd_nonblock(ch->real->fd);
	if (!ret && pipe2(fds, O_CLOEXEC))
		ret = errno;
	if (!ret)
		ret = isn_fd_nonblock(fds[1]);
	if (!ret)
		ret = isn_ev_watch(ch->real->fd, isn_channel_drain, ch,
				   &ch->watch);
	if (ret)
		goto err_fds;
	ch->ibch.context = &ictx->vctx.context;
	ch->ibch.fd = fds[0];
	ch->ibch.refcnt = 0;
	ch->wfd = fds[1];
	isn_obj_add(ISN_OBJ_CHANNEL, &ch->entry);
	return &ch->ibch;

err_fds:
	if (fds[0] >= 0) {
		close(fds[0]);
		close(fds[1]);
	}
	isn_g.ops.destroy_comp_channel(ch->real);
	errno = ret;
err_free:
	free(ch);
	return NULL;
}

ISN_EXPORT struct ibv_comp_channel *
ibv_create_comp_channel(struct ibv_context *context)
{
	ISN_CTL();
	struct isn_context *ictx = isn_ctx_of(context);

	if (!ictx)
		return ISN_REAL(
			struct ibv_comp_channel * (*)(struct ibv_context *),
			"ibv_create_comp_channel", "IBVERBS_1.0")(context);
	return channel_create(ictx);
}

ISN_EXPORT int ibv_destroy_comp_channel(struct ibv_comp_channel *channel)
{
	ISN_CTL();
	struct isn_channel *ch = isn_channel_of(channel);
	struct ibv_context *vctx;
	int ret;

	if (!ch)
		return ISN_REAL(int (*)(struct ibv_comp_channel *),
				"ibv_destroy_comp_channel",
				"IBVERBS_1.0")(channel);
	vctx = channel->context;
	pthread_mutex_lock(&vctx->mutex);
	if (channel->refcnt) {
		pthread_mutex_unlock(&vctx->mutex);
		return EBUSY;
	}
	pthread_mutex_unlock(&vctx->mutex);

	if (ch->real) {
		isn_ev_unwatch(ch->watch);
		ret = isn_g.ops.destroy_comp_channel(ch->real);
		if (ret) {
			isn_ev_watch(ch->real->fd, isn_channel_drain, ch,
				     &ch->watch);
			return ret;
		}
	}
	isn_obj_del(&ch->entry);
	close(ch->ibch.fd);
	close(ch->wfd);
	free(ch);
	return 0;
}

ISN_EXPORT int ibv_get_cq_event(struct ibv_comp_channel *channel,
				struct ibv_cq **cq, void **cq_context)
{
	struct isn_reg_node *n;
	uint64_t id;

	if (!isn_channel_of(channel))
		return ISN_REAL(int (*)(struct ibv_comp_channel *,
					struct ibv_cq **, void **),
				"ibv_get_cq_event",
				"IBVERBS_1.1")(channel, cq, cq_context);
	do {
		if (isn_pipe_get(channel->fd, &id, sizeof(id)))
			return -1;
		n = isn_reg_claim(id, ISN_KIND_CQ, false);
	} while (!n); /* its CQ was destroyed meanwhile */

	*cq = (struct ibv_cq *)&isn_container_of(n, struct isn_cq, reg)->ibcq;
	*cq_context = (*cq)->cq_context;
	return 0;
}

ISN_EXPORT void ibv_ack_cq_events(struct ibv_cq *cq, unsigned int nevents)
{
	if (!isn_cq_of(cq)) {
		ISN_REAL(void (*)(struct ibv_cq *, unsigned int),
			 "ibv_ack_cq_events", "IBVERBS_1.1")
		(cq, nevents);
		return;
	}
	pthread_mutex_lock(&cq->mutex);
	cq->comp_events_completed += nevents;
	pthread_cond_signal(&cq->cond);
	pthread_mutex_unlock(&cq->mutex);
}
