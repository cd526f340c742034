// SPDX-License-Identifier: MIT
/*
 * Posts made while a checkpoint holds the queues (design §6, QUIESCE): each
 * WR is copied (its SGEs, and its data when inline) into one FIFO for the
 * whole process and the post returns success.  RESUME posts them in order,
 * before any later post: the holds stay set while the queue is flushed, and
 * a poster that finds a hold waits for this lock.
 *
 * A drain that timed out leaves its marker on the send queue.  A queued
 * send that then finds the queue full (ENOMEM; ibv_rc_pingpong's queue has
 * one entry) is not lost: it and every send after it stay queued, and so
 * does the send hold, until the marker's completion (isn_pending_kick(),
 * from the poll that takes it); receives are released at once.  A send the
 * program posts after the resume while the marker is still there waits the
 * same way (isn_pending_defer(): a QP with a marker out posts on the
 * general path, qp.c's isn_qp_set_xlate, until a kick finds none out).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"

enum pend_kind { PEND_SEND, PEND_RECV, PEND_SRQ };

struct pend {
	struct pend *next;
	enum pend_kind kind;
	void *obj; /* struct isn_qp or isn_srq */
	union {
		struct ibv_send_wr swr;
		struct ibv_recv_wr rwr;
	};
	struct ibv_sge sge[]; /* then inline data */
};

static pthread_mutex_t pend_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pend *pend_head, **pend_tail = &pend_head;
static _Atomic bool pend_deferred; /* sends wait for a marker */

static size_t sges_len(const struct ibv_sge *sg, int n)
{
	size_t len = 0;
	int i;

	for (i = 0; i < n; i++)
		len += sg[i].length;
	return len;
}

static struct pend *pend_new(enum pend_kind kind, void *obj, int nsge,
			     size_t inl)
{
	struct pend *p;

	p = calloc(1, sizeof(*p) +
			      (size_t)(nsge > 0 ? nsge : 1) *
				      sizeof(struct ibv_sge) +
			      inl);
	if (!p)
		return NULL;
	p->kind = kind;
	p->obj = obj;
	return p;
}

static int pend_send(struct isn_qp *qp, const struct ibv_send_wr *wr)
{
	bool inl = wr->send_flags & IBV_SEND_INLINE;
	int n = wr->num_sge > 0 ? wr->num_sge : 0;
	size_t len = inl ? sges_len(wr->sg_list, n) : 0;
	struct pend *p = pend_new(PEND_SEND, qp, n, len);
	char *data;
	int i;

	if (!p)
		return ENOMEM;
	p->swr = *wr;
	p->swr.next = NULL;
	p->swr.sg_list = p->sge;
	if (inl && n) {
		/* the program may reuse inline data at once: keep a copy */
		data = (char *)&p->sge[1];
		for (i = 0, len = 0; i < n; i++) {
			if (!wr->sg_list[i].length)
				continue; /* UCX's have addr 0 */
			memcpy(data + len,
			       (void *)(uintptr_t)wr->sg_list[i].addr,
			       wr->sg_list[i].length);
			len += wr->sg_list[i].length;
		}
		p->sge[0] = (struct ibv_sge){ .addr = (uintptr_t)data,
					      .length = (uint32_t)len };
		p->swr.num_sge = 1;
	} else if (n) {
		memcpy(p->sge, wr->sg_list, (size_t)n * sizeof(*p->sge));
	}
	*pend_tail = p;
	pend_tail = &p->next;
	return 0;
}

static int pend_recv(struct isn_qp *qp, struct isn_srq *srq,
		     const struct ibv_recv_wr *wr)
{
	int n = wr->num_sge > 0 ? wr->num_sge : 0;
	struct pend *p = pend_new(qp ? PEND_RECV : PEND_SRQ,
				  qp ? (void *)qp : (void *)srq, n, 0);

	if (!p)
		return ENOMEM;
	p->rwr = *wr;
	p->rwr.next = NULL;
	p->rwr.sg_list = p->sge;
	if (n)
		memcpy(p->sge, wr->sg_list, (size_t)n * sizeof(*p->sge));
	*pend_tail = p;
	pend_tail = &p->next;
	return 0;
}

int isn_ckpt_post_send(struct isn_qp *qp, struct ibv_send_wr *wr,
		       struct ibv_send_wr **bad_wr)
{
	int ret = 0;

	pthread_mutex_lock(&pend_lock);
	if (!(isn_slow_get() & ISN_SLOW_HOLD_SEND)) {
		pthread_mutex_unlock(&pend_lock);
		return isn_post_send_list(qp, wr, bad_wr, false);
	}
	for (; wr && !ret; wr = wr->next) {
		ret = pend_send(qp, wr);
		if (ret)
			*bad_wr = wr;
	}
	pthread_mutex_unlock(&pend_lock);
	return ret;
}

int isn_ckpt_post_recv(struct isn_qp *qp, struct isn_srq *srq,
		       struct ibv_recv_wr *wr, struct ibv_recv_wr **bad_wr)
{
	int ret = 0;

	pthread_mutex_lock(&pend_lock);
	if (!(isn_slow_get() & ISN_SLOW_HOLD_RECV)) {
		pthread_mutex_unlock(&pend_lock);
		return isn_post_recv_list(qp, srq, wr, bad_wr, false);
	}
	for (; wr && !ret; wr = wr->next) {
		ret = pend_recv(qp, srq, wr);
		if (ret)
			*bad_wr = wr;
	}
	pthread_mutex_unlock(&pend_lock);
	return ret;
}

static int pend_post(struct pend *p)
{
	struct ibv_send_wr *sbad;
	struct ibv_recv_wr *rbad;

	switch (p->kind) {
	case PEND_SEND:
		return isn_post_send_list(p->obj, &p->swr, &sbad, true);
	case PEND_RECV:
		return isn_post_recv_list(p->obj, NULL, &p->rwr, &rbad, true);
	default:
		return isn_post_recv_list(NULL, p->obj, &p->rwr, &rbad, true);
	}
}

/* A send the queue has no room for while an old marker is still in it. */
static bool marker_in_way(const struct pend *p, int ret)
{
	const struct isn_qp *qp = p->obj;

	return p->kind == PEND_SEND && ret == ENOMEM && qp->ck &&
	       atomic_load(&qp->ck->markers_pending);
}

int isn_pending_flush(void)
{
	struct pend *p, *keep = NULL, **keep_tail = &keep;
	bool wait = false;
	int ret, err = 0;

	pthread_mutex_lock(&pend_lock);
	while ((p = pend_head)) {
		pend_head = p->next;
		p->next = NULL;
		/* a send behind one that waits waits too, unposted */
		ret = wait && p->kind == PEND_SEND ? 0 : pend_post(p);
		if ((wait && p->kind == PEND_SEND) || marker_in_way(p, ret)) {
			wait = true;
			*keep_tail = p;
			keep_tail = &p->next;
			continue;
		}
		if (ret && !err) {
			isn_log("resume: a queued post failed: %s",
				strerror(ret));
			err = -ret;
		}
		free(p);
	}
	pend_head = keep;
	pend_tail = keep ? keep_tail : &pend_head;
	/* markers still out: polls keep kicking until they are in */
	atomic_store(&pend_deferred,
		     wait || atomic_load(&isn_ckst.markers_out) > 0);
	atomic_fetch_and(&isn_slow,
			 ~(uint32_t)(ISN_SLOW_HOLD_RECV |
				     (wait ? 0 : ISN_SLOW_HOLD_SEND)));
	pthread_mutex_unlock(&pend_lock);
	return err;
}

/*
 * After a drain that timed out, the program's send found its queue full
 * (ENOMEM) and @qp has a marker out: the queue holds the shim's marker, not
 * the program's WRs, so the program's @wr (and the rest of its list) waits
 * for the marker's completion as a send queued during the checkpoint does,
 * and so does every later send (the hold); the post succeeds.  false if
 * that is not the case (or no memory): the post fails as it did.
 */
bool isn_pending_defer(struct isn_qp *qp, struct ibv_send_wr *wr)
{
	struct pend *first = NULL, **was_tail;
	int ret = 0;

	if (!qp->ck || !atomic_load(&qp->ck->markers_pending))
		return false;
	pthread_mutex_lock(&pend_lock);
	was_tail = pend_tail;
	for (; wr && !ret; wr = wr->next)
		ret = pend_send(qp, wr);
	if (ret) { /* none of them, as if never tried */
		first = *was_tail;
		*was_tail = NULL;
		pend_tail = was_tail;
		pthread_mutex_unlock(&pend_lock);
		while (first) {
			struct pend *next = first->next;

			free(first);
			first = next;
		}
		return false;
	}
	atomic_store(&pend_deferred, true);
	/* a poll on the checkpoint's path sees the marker and kicks */
	atomic_fetch_or(&isn_slow, ISN_SLOW_HOLD_SEND | ISN_SLOW_CKPT_POLL);
	pthread_mutex_unlock(&pend_lock);
	isn_log("qp 0x%x: a send waits for the marker of a drain that timed "
		"out (its send queue is full of it)",
		qp->qp.qp_num);
	return true;
}

bool isn_pending_waits(void)
{
	return atomic_load_explicit(&pend_deferred, memory_order_relaxed);
}

/*
 * From a poll on the checkpoint's path, which the waiting sends keep on:
 * try them again once no marker is in their way.  Not while a checkpoint
 * holds the objects (its resume flushes), nor from a thread in the control
 * path; a poll that cannot try leaves it to the next.
 */
/*
 * Markers still out: take their completions from every CQ, also one the
 * program does not poll (a send CQ of unsignaled sends; the sends waiting
 * for the marker would wait for good).  The program's completions go to
 * the saved ones, in order.  trylock: the caller holds the control lock
 * alone, and a thread iterating an ibv_cq_ex under its CQ's lock may wait
 * for it.
 */
static void kick_drain_cqs(void)
{
	struct isn_cq *cq;

	isn_for_each_obj(struct isn_cq, cq, ISN_OBJ_CQ)
	{
		if (pthread_mutex_trylock(&cq->lock))
			continue;
		while (isn_cq_drain_once(cq) > 0)
			;
		pthread_mutex_unlock(&cq->lock);
	}
}

void isn_pending_kick(void)
{
	if (isn_likely(!isn_pending_waits()))
		return;
	if (!isn_ctl_tryblock())
		return;
	if (isn_ckst.stage == ISN_CK_RUNNING) {
		if (atomic_load(&isn_ckst.markers_out))
			kick_drain_cqs();
		isn_pending_flush();
		if (!isn_pending_waits() &&
		    !atomic_load(&isn_ckst.markers_out)) {
			struct isn_qp *qp;

			isn_ckpt_poll_relax();
			/* no marker out: the fast path again */
			isn_for_each_obj(struct isn_qp, qp, ISN_OBJ_QP)
				isn_qp_set_xlate(qp);
		}
	}
	isn_ctl_unblock();
}

/* @obj (a QP or SRQ) is destroyed: what waits for it goes. */
void isn_pending_forget(void *obj)
{
	struct pend *p, **pp;

	pthread_mutex_lock(&pend_lock);
	for (pp = &pend_head; (p = *pp);) {
		if (p->obj == obj) {
			*pp = p->next;
			free(p);
		} else {
			pp = &p->next;
		}
	}
	pend_tail = pp;
	pthread_mutex_unlock(&pend_lock);
}

void isn_pending_free(void)
{
	struct pend *p;

	pthread_mutex_lock(&pend_lock);
	while ((p = pend_head)) {
		pend_head = p->next;
		free(p);
	}
	pend_tail = &pend_head;
	pthread_mutex_unlock(&pend_lock);
}
