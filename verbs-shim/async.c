/* SPDX-License-Identifier: MIT */
/*
 * Async events.  context->async_fd is the read end of a shim-owned pipe;
 * the event thread reads the backend's events, names their object by
 * registry id, acknowledges them to the backend, and writes one record.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "shim.h"

struct async_rec {
	uint32_t type; /* enum ibv_event_type */
	uint32_t kind; /* enum isn_kind, 0: element is a port number */
	uint64_t id; /* registry id, or the port number */
};

static enum isn_kind event_kind(enum ibv_event_type type)
{
	switch (type) {
	case IBV_EVENT_CQ_ERR:
		return ISN_KIND_CQ;
	case IBV_EVENT_QP_FATAL:
	case IBV_EVENT_QP_REQ_ERR:
	case IBV_EVENT_QP_ACCESS_ERR:
	case IBV_EVENT_COMM_EST:
	case IBV_EVENT_SQ_DRAINED:
	case IBV_EVENT_PATH_MIG:
	case IBV_EVENT_PATH_MIG_ERR:
	case IBV_EVENT_QP_LAST_WQE_REACHED:
		return ISN_KIND_QP;
	case IBV_EVENT_SRQ_ERR:
	case IBV_EVENT_SRQ_LIMIT_REACHED:
		return ISN_KIND_SRQ;
	default:
		return 0; /* port or device */
	}
}

/* The backend object's context pointer is our virtual object (set at create). */
static uint64_t event_obj_id(const struct ibv_async_event *ev,
			     enum isn_kind kind)
{
	switch (kind) {
	case ISN_KIND_CQ:
		return ((struct isn_cq *)ev->element.cq->cq_context)->reg.id;
	case ISN_KIND_QP:
		return ((struct isn_qp *)ev->element.qp->qp_context)->reg.id;
	case ISN_KIND_SRQ:
		return ((struct isn_srq *)ev->element.srq->srq_context)->reg.id;
	default:
		return (uint64_t)ev->element.port_num;
	}
}

static void async_drain(void *arg)
{
	struct isn_context *ictx = arg;
	struct ibv_async_event ev;

	while (!isn_g.ops.get_async_event(ictx->real, &ev)) {
		struct async_rec rec = { .type = ev.event_type };

		rec.kind = event_kind(ev.event_type);
		rec.id = event_obj_id(&ev, rec.kind);
		isn_g.ops.ack_async_event(&ev);
		isn_pipe_put(ictx->async_wfd, &rec, sizeof(rec));
	}
}

int isn_async_open(struct isn_context *ictx)
{
	int fds[2], ret;

	if (pipe2(fds, O_CLOEXEC))
		return errno;
	ret = isn_fd_nonblock(fds[1]);
	if (!ret && ictx->real->async_fd >= 0) {
		ret = isn_fd_nonblock(ictx->real->async_fd);
		if (!ret)
			ret = isn_ev_watch(ictx->real->async_fd, async_drain,
					   ictx, &ictx->async_watch);
	}
	if (ret) {
		close(fds[0]);
		close(fds[1]);
		return ret;
	}
	ictx->vctx.context.async_fd = fds[0];
	ictx->async_wfd = fds[1];
	return 0;
}

void isn_async_unwatch(struct isn_context *ictx)
{
	isn_ev_unwatch(ictx->async_watch);
	ictx->async_watch = NULL;
	async_drain(ictx); /* what the backend still holds */
}

int isn_async_rewatch(struct isn_context *ictx)
{
	int ret;

	if (ictx->real->async_fd < 0)
		return 0;
	ret = isn_fd_nonblock(ictx->real->async_fd);
	if (!ret)
		ret = isn_ev_watch(ictx->real->async_fd, async_drain, ictx,
				   &ictx->async_watch);
	return ret;
}

void isn_async_close(struct isn_context *ictx)
{
	isn_ev_unwatch(ictx->async_watch);
	close(ictx->vctx.context.async_fd);
	close(ictx->async_wfd);
}

static void *claim_element(const struct async_rec *rec)
{
	struct isn_reg_node *n = isn_reg_claim(rec->id, rec->kind, true);

	if (!n)
		return NULL;
	switch (rec->kind) {
	case ISN_KIND_CQ:
		return &isn_container_of(n, struct isn_cq, reg)->ibcq;
	case ISN_KIND_QP:
		return &isn_container_of(n, struct isn_qp, reg)->qp;
	default:
		return &isn_container_of(n, struct isn_srq, reg)->ibsrq;
	}
}

ISN_EXPORT int ibv_get_async_event(struct ibv_context *context,
				   struct ibv_async_event *event)
{
	struct async_rec rec;
	void *obj = NULL;

	if (!isn_ctx_of(context))
		return ISN_REAL(
			int (*)(struct ibv_context *, struct ibv_async_event *),
			"ibv_get_async_event", "IBVERBS_1.1")(context, event);
	do {
		if (isn_pipe_get(context->async_fd, &rec, sizeof(rec)))
			return -1;
		if (rec.kind)
			obj = claim_element(&rec);
	} while (rec.kind && !obj); /* its object was destroyed meanwhile */

	event->event_type = rec.type;
	switch (rec.kind) {
	case ISN_KIND_CQ:
		event->element.cq = obj;
		break;
	case ISN_KIND_QP:
		event->element.qp = obj;
		break;
	case ISN_KIND_SRQ:
		event->element.srq = obj;
		break;
	default:
		event->element.port_num = (int)rec.id;
	}
	return 0;
}

/* Count one acknowledged event on @counter under @m, as rdma-core does. */
static void ack_one(pthread_mutex_t *m, pthread_cond_t *c, uint32_t *counter)
{
	pthread_mutex_lock(m);
	++*counter;
	pthread_cond_signal(c);
	pthread_mutex_unlock(m);
}

ISN_EXPORT void ibv_ack_async_event(struct ibv_async_event *event)
{
	enum isn_kind kind = event_kind(event->event_type);
	struct ibv_cq *cq = event->element.cq;
	struct ibv_qp *qp = event->element.qp;
	struct ibv_srq *srq = event->element.srq;

	if (kind == ISN_KIND_CQ && isn_cq_of(cq))
		ack_one(&cq->mutex, &cq->cond, &cq->async_events_completed);
	else if (kind == ISN_KIND_QP && isn_qp_of(qp))
		ack_one(&qp->mutex, &qp->cond, &qp->events_completed);
	else if (kind == ISN_KIND_SRQ && isn_srq_of(srq))
		ack_one(&srq->mutex, &srq->cond, &srq->events_completed);
	else if (kind)
		ISN_REAL(void (*)(struct ibv_async_event *),
			 "ibv_ack_async_event", "IBVERBS_1.1")
	(event);
	/* port and device events need no acknowledgement */
}
