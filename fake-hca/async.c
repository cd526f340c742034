/* SPDX-License-Identifier: MIT */
/*
 * Async events.  The queue lives in the context (lock held); each queued
 * event also puts one byte in a pipe whose read end is ibctx.async_fd, so
 * the fd polls readable exactly while events wait and get_async_event blocks
 * or fails with EAGAIN as the application set the fd, like rdma-core.
 * Events of a destroyed object stay in the queue marked dead and are skipped.
 */
#include <errno.h>
#include <unistd.h>

#include "fake.h"

void fk_async_event(struct fk_context *ctx, enum ibv_event_type type, void *obj)
{
	struct fk_async_ev *ev;
	char token = 0;

	if (ctx->async_tail - ctx->async_head >= FK_ASYNC_QLEN) {
		fk_log("async event queue full, %s dropped",
		       ibv_event_type_str(type));
		return;
	}
	ev = &ctx->async_q[ctx->async_tail % FK_ASYNC_QLEN];
	ev->type = type;
	ev->obj = obj;
	ev->dead = false;
	ctx->async_tail++;
	if (write(ctx->async_wfd, &token, 1) != 1)
		fk_log("async event pipe: %m");
}

void fk_async_forget(struct fk_context *ctx, const void *obj)
{
	unsigned int i;

	for (i = ctx->async_head; i != ctx->async_tail; i++)
		if (ctx->async_q[i % FK_ASYNC_QLEN].obj == obj)
			ctx->async_q[i % FK_ASYNC_QLEN].dead = true;
}

static bool is_cq_event(enum ibv_event_type t)
{
	return t == IBV_EVENT_CQ_ERR;
}

static bool is_srq_event(enum ibv_event_type t)
{
	return t == IBV_EVENT_SRQ_ERR || t == IBV_EVENT_SRQ_LIMIT_REACHED;
}

static bool is_qp_event(enum ibv_event_type t)
{
	switch (t) {
	case IBV_EVENT_QP_FATAL:
	case IBV_EVENT_QP_REQ_ERR:
	case IBV_EVENT_QP_ACCESS_ERR:
	case IBV_EVENT_COMM_EST:
	case IBV_EVENT_SQ_DRAINED:
	case IBV_EVENT_PATH_MIG:
	case IBV_EVENT_PATH_MIG_ERR:
	case IBV_EVENT_QP_LAST_WQE_REACHED:
		return true;
	default:
		return false;
	}
}

/* Fill @event from @ev and count it as reported; lock held. */
static void report(const struct fk_async_ev *ev, struct ibv_async_event *event)
{
	event->event_type = ev->type;
	if (is_cq_event(ev->type)) {
		struct fk_cq *cq = ev->obj;

		cq->async_events_reported++;
		event->element.cq = (struct ibv_cq *)&cq->ibcq;
	} else if (is_srq_event(ev->type)) {
		struct fk_srq *srq = ev->obj;

		srq->events_reported++;
		event->element.srq = &srq->ibsrq;
	} else if (is_qp_event(ev->type)) {
		struct fk_qp *qp = ev->obj;

		qp->events_reported++;
		event->element.qp = &qp->ibqp;
	} else if (ev->type == IBV_EVENT_DEVICE_FATAL) {
		event->element.port_num = 0;
	} else {
		event->element.port_num = FK_PORT;
	}
}

int fk_get_async_event(struct ibv_context *context,
		       struct ibv_async_event *event)
{
	struct fk_context *ctx = to_fctx(context);
	char token;

	for (;;) {
		struct fk_async_ev ev;
		ssize_t n = read(context->async_fd, &token, 1);

		if (n != 1) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		pthread_mutex_lock(&ctx->lock);
		/* the token was written after its entry: there is one */
		ev = ctx->async_q[ctx->async_head % FK_ASYNC_QLEN];
		ctx->async_head++;
		if (!ev.dead)
			report(&ev, event);
		pthread_mutex_unlock(&ctx->lock);
		if (!ev.dead)
			return 0;
	}
}

void fk_ack_async_event(struct ibv_async_event *event)
{
	pthread_mutex_t *m;
	pthread_cond_t *c;
	uint32_t *done;

	if (is_cq_event(event->event_type)) {
		struct ibv_cq *cq = event->element.cq;

		m = &cq->mutex;
		c = &cq->cond;
		done = &cq->async_events_completed;
	} else if (is_srq_event(event->event_type)) {
		struct ibv_srq *srq = event->element.srq;

		m = &srq->mutex;
		c = &srq->cond;
		done = &srq->events_completed;
	} else if (is_qp_event(event->event_type)) {
		struct ibv_qp *qp = event->element.qp;

		m = &qp->mutex;
		c = &qp->cond;
		done = &qp->events_completed;
	} else {
		return;
	}
	pthread_mutex_lock(m);
	++*done;
	pthread_cond_broadcast(c);
	pthread_mutex_unlock(m);
}
