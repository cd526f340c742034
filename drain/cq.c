// SPDX-License-Identifier: MIT
/*
 * Completion queues during a checkpoint: drained into a saved buffer (the
 * application gets them first after resume, in order), polled under the
 * CQ's lock by the application and by the drain alike, and stripped of the
 * checkpoint's own completions (markers, flushes).  Release destroys the
 * backend CQ; rebuild/cq.c makes a new one.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"

struct isn_cq_saved {
	struct ibv_wc *wc;
	uint32_t head, n, cap;
};

static pthread_mutex_t saved_lock = PTHREAD_MUTEX_INITIALIZER;

static void saved_count(int delta)
{
	pthread_mutex_lock(&saved_lock);
	isn_ckst.saved_cqs += delta;
	if (isn_ckst.saved_cqs)
		atomic_fetch_or(&isn_slow, ISN_SLOW_SAVED);
	else
		atomic_fetch_and(&isn_slow, ~(uint32_t)ISN_SLOW_SAVED);
	pthread_mutex_unlock(&saved_lock);
}

static uint32_t saved_n(const struct isn_cq *cq)
{
	return cq->saved ? cq->saved->n - cq->saved->head : 0;
}

uint32_t isn_cq_saved_count(const struct isn_cq *cq)
{
	return saved_n(cq);
}

/* Lock held.  Completions that do not fit are lost as on a CQ overrun. */
void isn_cq_saved_push(struct isn_cq *cq, const struct ibv_wc *wc)
{
	struct isn_cq_saved *s = cq->saved;
	uint32_t cap;
	void *p;

	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			goto lost;
		cq->saved = s;
	}
	if (s->n == s->cap) {
		if (s->head) {
			memmove(s->wc, s->wc + s->head,
				(s->n - s->head) * sizeof(*s->wc));
			s->n -= s->head;
			s->head = 0;
		}
		cap = s->cap ? s->cap * 2 : 64;
		if (s->n == s->cap) {
			p = realloc(s->wc, cap * sizeof(*s->wc));
			if (!p)
				goto lost;
			s->wc = p;
			s->cap = cap;
		}
	}
	if (s->n == s->head)
		saved_count(1);
	s->wc[s->n++] = *wc;
	return;
lost:
	isn_log("cq: no memory for a saved completion; it is lost");
}

/* Up to @n saved completions into @wc (lock held). */
static int saved_take(struct isn_cq *cq, struct ibv_wc *wc, int n)
{
	struct isn_cq_saved *s = cq->saved;
	int k = 0;

	if (!s)
		return 0;
	while (k < n && s->head < s->n)
		wc[k++] = s->wc[s->head++];
	if (k && s->head == s->n) {
		s->head = s->n = 0;
		saved_count(-1);
	}
	return k;
}

void isn_cq_saved_free(struct isn_cq *cq)
{
	if (!cq->saved)
		return;
	if (saved_n(cq))
		saved_count(-1);
	free(cq->saved->wc);
	free(cq->saved);
	cq->saved = NULL;
}

void isn_ckpt_poll_relax(void)
{
	if (isn_ckst.stage == ISN_CK_RUNNING &&
	    !atomic_load(&isn_ckst.markers_out) && !isn_pending_waits() &&
	    !isn_early_out())
		atomic_fetch_and(&isn_slow, ~(uint32_t)ISN_SLOW_CKPT_POLL);
}

bool isn_ckpt_own_wc(struct isn_cq *cq, struct ibv_wc *wc)
{
	uint32_t idx;
	struct isn_qp *qp = isn_qptab_find(wc->qp_num, &idx);
	struct isn_qp_ckpt *ck = qp ? qp->ck : NULL;

	(void)cq;
	if (!ck)
		return false;
	/* every marker's completion is ours, also one an earlier checkpoint
	 * left out when its drain timed out (it would reach the program) */
	if (wc->wr_id == ISN_MARKER_WRID && atomic_load(&ck->markers_pending) &&
	    !(wc->opcode & IBV_WC_RECV)) {
		if (atomic_fetch_sub(&ck->markers_pending, 1) == 1 &&
		    ck->marker_posted) {
			ck->marker_done = true;
			ck->marker_status = wc->status;
		}
		/* a checkpoint that ended with markers out polls slowly
		 * until the last one is in */
		if (atomic_fetch_sub(&isn_ckst.markers_out, 1) == 1)
			isn_ckpt_poll_relax();
		return true;
	}
	/* a shim receive buffer's (an error completion's opcode is not
	 * defined: a flushed buffer is known by its wr_id) */
	return (wc->status != IBV_WC_SUCCESS || (wc->opcode & IBV_WC_RECV)) &&
	       isn_early_own_wc(qp, wc);
}

/* Drop the checkpoint's own completions from @wc (a shim buffer's that a
 * held receive takes becomes that receive's, in place); how many are
 * left. */
static int strip_own(struct isn_cq *cq, struct ibv_wc *wc, int n)
{
	int i, k = 0;

	for (i = 0; i < n; i++)
		if (!isn_ckpt_own_wc(cq, &wc[i]))
			wc[k++] = wc[i];
	return k;
}

int isn_cq_drain_once(struct isn_cq *cq)
{
	struct ibv_wc wc[32];
	int got, k, i;

	if (!cq->real)
		return 0;
	got = cq->poll(cq->real, 32, wc);
	if (got <= 0)
		return got;
	k = strip_own(cq, wc, got);
	isn_wc_done(cq, wc, k);
	for (i = 0; i < k; i++)
		isn_cq_saved_push(cq, &wc[i]);
	return got;
}

int isn_cqs_drain(bool (*done)(void), uint64_t ns)
{
	uint64_t end = isn_now_ns() + ns;
	struct isn_cq *cq;
	int got, any;

	for (;;) {
		any = 0;
		isn_for_each_obj(struct isn_cq, cq, ISN_OBJ_CQ)
		{
			pthread_mutex_lock(&cq->lock);
			while ((got = isn_cq_drain_once(cq)) > 0)
				any += got;
			pthread_mutex_unlock(&cq->lock);
		}
		if (done ? done() : !any)
			return 0;
		if (ns && isn_now_ns() > end)
			return -ETIMEDOUT;
		if (!any)
			sched_yield();
	}
}

/*
 * ckpt_poll_idle: during a checkpoint a program that busy-polls an empty
 * CQ gives the CPU away (sched_yield) after each empty poll.  Otherwise its
 * lock/unlock loop on cq->lock starves the handler thread's drain of that
 * lock and, on a loaded core, of the CPU, and the peers' progress with it:
 * bench_ckpt measured a busy drain of ~10-30 ms for one QP, ~0.2 ms with
 * the yield (docs/checkpoint.md, Numbers).  The program has nothing to gain
 * meanwhile: its posts are queued until RESUME.
 */
int isn_ckpt_poll(struct isn_cq *cq, int n, struct ibv_wc *wc)
{
	int got, r;

	pthread_mutex_lock(&cq->lock);
	got = saved_take(cq, wc, n);
	while (got < n && cq->real) {
		r = cq->poll(cq->real, n - got, wc + got);
		if (r <= 0) {
			if (r < 0 && !got)
				got = r;
			break;
		}
		r = strip_own(cq, wc + got, r);
		isn_wc_done(cq, wc + got, r);
		got += r;
	}
	pthread_mutex_unlock(&cq->lock);
	/* sends an old marker kept out of a full queue, once it is in */
	isn_pending_kick();
	if (!got && isn_ckst.stage != ISN_CK_RUNNING)
		sched_yield(); /* see ckpt_poll_idle */
	return got;
}

int isn_ckpt_req_notify(struct isn_cq *cq, int solicited_only)
{
	int ret = 0;

	pthread_mutex_lock(&cq->lock);
	cq->armed = solicited_only ? 2 : 1;
	if (cq->real)
		ret = cq->real->context->ops.req_notify_cq(cq->real,
							   solicited_only);
	pthread_mutex_unlock(&cq->lock);
	return ret;
}

/* ---- the ibv_cq_ex iterator while saved completions or a checkpoint
 * exist: the lock is held from start_poll to end_poll ---- */

static void ex_saved_cur(struct isn_cq *cq)
{
	const struct ibv_wc *w = &cq->saved->wc[cq->saved->head];

	cq->ex_saved = w;
	cq->ibcq.wr_id = w->wr_id;
	cq->ibcq.status = w->status;
	cq->cur_qpn = w->qp_num;
	cq->cur_src_qp = w->src_qp;
	cq->cur_slid = w->slid;
}

/* Skip the checkpoint's own completions at the backend iterator. */
static int ex_real_skip_own(struct isn_cq *cq, int ret)
{
	struct ibv_cq_ex *r = cq->real_ex;
	struct ibv_wc wc;

	while (!ret) {
		memset(&wc, 0, sizeof(wc));
		wc.wr_id = r->wr_id;
		wc.status = r->status;
		wc.opcode = r->read_opcode(r);
		wc.qp_num = r->read_qp_num(r);
		if (wc.status == IBV_WC_SUCCESS && (wc.opcode & IBV_WC_RECV)) {
			wc.byte_len = r->read_byte_len(r);
			if (r->read_wc_flags)
				wc.wc_flags = r->read_wc_flags(r);
			if ((wc.wc_flags & IBV_WC_WITH_IMM) && r->read_imm_data)
				wc.imm_data = r->read_imm_data(r);
		}
		if (!isn_ckpt_own_wc(cq, &wc))
			break;
		ret = r->next_poll(r);
	}
	if (ret)
		return ret;
	isn_cqx_cur(cq);
	/* a shim buffer's completion a held receive took */
	cq->ibcq.wr_id = wc.wr_id;
	cq->ibcq.status = wc.status;
	return 0;
}

int isn_ckpt_start_poll(struct isn_cq *cq, struct ibv_poll_cq_attr *attr)
{
	int ret = ENOENT;

	pthread_mutex_lock(&cq->lock);
	cq->ex_locked = true;
	if (saved_n(cq)) {
		ex_saved_cur(cq);
		return 0;
	}
	if (cq->real_ex) {
		ret = cq->real_ex->start_poll(cq->real_ex, attr);
		if (!ret) {
			ret = ex_real_skip_own(cq, ret);
			if (ret)
				cq->real_ex->end_poll(cq->real_ex);
		}
	}
	if (ret) {
		cq->ex_locked = false;
		pthread_mutex_unlock(&cq->lock);
		if (isn_ckst.stage != ISN_CK_RUNNING)
			sched_yield(); /* see ckpt_poll_idle */
	}
	return ret;
}

int isn_ckpt_next_poll(struct isn_cq *cq)
{
	if (cq->ex_saved) {
		cq->saved->head++;
		if (cq->saved->head == cq->saved->n) {
			cq->ex_saved = NULL;
			cq->saved->head = cq->saved->n = 0;
			saved_count(-1);
			cq->ex_saved = &cq->saved->wc[0]; /* ENOENT until end */
			cq->ex_done = true;
			return ENOENT;
		}
		ex_saved_cur(cq);
		return 0;
	}
	return ex_real_skip_own(cq, cq->real_ex->next_poll(cq->real_ex));
}

void isn_ckpt_end_poll(struct isn_cq *cq)
{
	if (cq->ex_saved) {
		if (!cq->ex_done) {
			cq->saved->head++;
			if (cq->saved->head == cq->saved->n) {
				cq->saved->head = cq->saved->n = 0;
				saved_count(-1);
			}
		}
		cq->ex_saved = NULL;
		cq->ex_done = false;
	} else {
		cq->real_ex->end_poll(cq->real_ex);
	}
	cq->ex_locked = false;
	pthread_mutex_unlock(&cq->lock);
	isn_pending_kick();
}

/* RELEASE: what the CQs hold was saved at the start of the phase. */
static int cq_release(void)
{
	struct isn_cq *cq;
	int ret;

	isn_for_each_obj(struct isn_cq, cq, ISN_OBJ_CQ)
	{
		if (!cq->real)
			continue;
		pthread_mutex_lock(&cq->lock);
		ret = isn_g.ops.destroy_cq(cq->real);
		if (!ret) {
			cq->real = NULL;
			cq->real_ex = NULL;
		}
		pthread_mutex_unlock(&cq->lock);
		if (ret)
			return -ret;
	}
	return 0;
}

const struct isn_ck_kind isn_ck_cq = {
	.name = "cq",
	.release = cq_release,
	.rebuild = isn_cq_rebuild,
	.connect = isn_cq_connect,
};
