// SPDX-License-Identifier: MIT
/*
 * Messages an RNR holds up at a checkpoint.  A peer's drain marker cannot
 * complete behind a SEND that finds no receive here; rather than have the
 * peer post it again later (and risk posting twice what was delivered), the
 * receiving side takes it now: it holds the program's receives, posts shim
 * buffers to the receive queue (or SRQ), and keeps what arrives in them.
 * Each later receive the program posts to that queue is then completed
 * from the oldest kept message, in order, without reaching the HCA -- the
 * program sees exactly the completions it would have seen.
 *
 * A checkpoint that fails after that (its drain timed out) leaves the
 * buffers posted on the live queue, behind the program's receives posted
 * before it: the next messages land in them.  Until every buffer has
 * completed, each receive the program posts to that queue stands in for
 * the oldest buffer not spoken for: it is logged as posted (a later
 * checkpoint posts it again) but kept in the shim ("held"), and the
 * buffer's completion is handed to the program as its completion, at its
 * place in the CQ, the message copied into its buffers.  Receives beyond
 * the buffers go to the HCA, behind them, as usual.  So the program's
 * receives take no room the buffers hold, and every message reaches the
 * receive it would have reached without the shim.  Meanwhile the CQs are
 * polled on the checkpoint's path (isn_early_out()).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"

#define EARLY_WRID 0x1b5a9c0ffee00000ull
#define EARLY_WRID_MASK 0xfffffull
#define EARLY_BUFS 32
#define EARLY_MIN_LEN 4096u

struct early_msg {
	struct early_msg *next;
	struct isn_cq *cq; /* the CQ its completion went to */
	struct ibv_wc wc; /* IDs virtual */
	char data[];
};

struct isn_early {
	struct isn_early *next; /* every queue that has shim buffers */
	struct isn_qp *qp; /* the receive queue's QP, or */
	struct isn_srq *srq; /* the SRQ */
	char *buf;
	uint32_t len; /* of one buffer */
	uint32_t out; /* buffers posted and not completed */
	struct ibv_mr *mr; /* backend MR */
	struct early_msg *head, **tail;
	/* the program's receives standing in for buffers (held <= out):
	 * their log sequence numbers, oldest at held_seq[held_head] */
	uint32_t held, held_head;
	uint64_t held_seq[EARLY_BUFS];
};

static pthread_mutex_t early_lock = PTHREAD_MUTEX_INITIALIZER;
static struct isn_early *early_all;
/* kept messages and buffers out, all queues: while non-zero, receives
 * take the general path (ISN_SLOW_RECV_EARLY) */
static _Atomic int early_refs;
static _Atomic int early_bufs_out; /* buffers out, all queues */

static void early_ref(int n)
{
	if (n > 0 && atomic_fetch_add(&early_refs, n) == 0)
		atomic_fetch_or(&isn_slow, ISN_SLOW_RECV_EARLY);
	if (n < 0 && atomic_fetch_add(&early_refs, n) == -n) {
		atomic_fetch_and(&isn_slow, ~(uint32_t)ISN_SLOW_RECV_EARLY);
		if (atomic_load(&early_refs)) /* one came meanwhile */
			atomic_fetch_or(&isn_slow, ISN_SLOW_RECV_EARLY);
	}
}

/* @n buffers more (or fewer) out; early_lock held. */
static void early_out_add(struct isn_early *e, int n)
{
	e->out += n;
	atomic_fetch_add(&early_bufs_out, n);
	early_ref(n);
}

bool isn_early_out(void)
{
	return atomic_load(&early_bufs_out) > 0;
}

static struct isn_early **early_slot(struct isn_qp *qp, struct isn_srq *srq)
{
	if (srq)
		return &srq->early;
	return qp->ck ? &qp->ck->early : NULL;
}

static struct isn_wq *early_wq(struct isn_early *e)
{
	return e->srq ? &e->srq->rq : &e->qp->rq;
}

/* The largest receive the program posted to @wq (its log remembers). */
static uint32_t early_len(const struct isn_wq *wq)
{
	uint64_t len, max = EARLY_MIN_LEN;
	uint32_t i, k;

	for (i = 0; i <= wq->mask; i++) {
		const struct isn_wq_ent *e = isn_wq_ent(wq, i);

		for (len = 0, k = 0; k < e->num_sge; k++)
			len += e->sge[k].length;
		if (len > max)
			max = len;
	}
	return max > (1u << 30) ? 1u << 30 : (uint32_t)max;
}

/* The program's receives wait from now on: none can overtake the shim's. */
static void early_hold_receives(void)
{
	struct isn_qp *qp;
	struct isn_srq *srq;

	if (atomic_fetch_or(&isn_slow, ISN_SLOW_HOLD_RECV) & ISN_SLOW_HOLD_RECV)
		return;
	isn_for_each_obj(struct isn_qp, qp, ISN_OBJ_QP) isn_wq_settle(&qp->rq);
	isn_for_each_obj(struct isn_srq, srq, ISN_OBJ_SRQ)
		isn_wq_settle(&srq->rq);
}

/* The buffers of an earlier round, all completed: they go. */
static void early_bufs_free(struct isn_early *e)
{
	if (e->mr)
		isn_g.ops.dereg_mr(e->mr);
	free(e->buf);
	e->mr = NULL;
	e->buf = NULL;
}

static int early_post_bufs(struct isn_early *e, struct ibv_pd *pd)
{
	struct ibv_recv_wr wr, *bad;
	struct ibv_sge sge;
	uint32_t i, posted;
	int ret = 0;

	/* a poll may be copying out of the last round's buffers */
	pthread_mutex_lock(&early_lock);
	early_bufs_free(e);
	e->buf = malloc((size_t)e->len * EARLY_BUFS);
	if (e->buf)
		e->mr = isn_g.ops.reg_mr(pd, e->buf,
					 (size_t)e->len * EARLY_BUFS,
					 (uintptr_t)e->buf,
					 IBV_ACCESS_LOCAL_WRITE);
	ret = !e->buf ? -ENOMEM : !e->mr ? -errno : 0;
	pthread_mutex_unlock(&early_lock);
	if (ret)
		return ret;
	for (i = 0; i < EARLY_BUFS && !ret; i++) {
		sge = (struct ibv_sge){ (uintptr_t)e->buf + (size_t)i * e->len,
					e->len, e->mr->lkey };
		wr = (struct ibv_recv_wr){ .wr_id = EARLY_WRID | i,
					   .sg_list = &sge,
					   .num_sge = 1 };
		/* counted first: a poll may see its completion at once */
		pthread_mutex_lock(&early_lock);
		early_out_add(e, 1);
		pthread_mutex_unlock(&early_lock);
		ret = e->srq ? e->srq->post_recv(e->srq->real, &wr, &bad) :
			       e->qp->post_recv(e->qp->real, &wr, &bad);
		if (ret) {
			pthread_mutex_lock(&early_lock);
			early_out_add(e, -1);
			pthread_mutex_unlock(&early_lock);
		}
	}
	posted = ret ? i - 1 : i;
	return posted ? 0 : -ret;
}

int isn_early_post(struct isn_qp *qp, struct isn_srq *srq)
{
	struct isn_early **slot = early_slot(qp, srq), *e;
	int ret;

	if (!slot)
		return -ENOMEM;
	early_hold_receives();
	pthread_mutex_lock(&early_lock);
	e = *slot;
	if (e && e->out) {
		/* another stuck peer on the same SRQ, or buffers a failed
		 * checkpoint left */
		pthread_mutex_unlock(&early_lock);
		return 0;
	}
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e) {
			pthread_mutex_unlock(&early_lock);
			return -ENOMEM;
		}
		e->qp = srq ? NULL : qp;
		e->srq = srq;
		e->tail = &e->head;
		e->next = early_all;
		early_all = e;
		*slot = e;
	}
	pthread_mutex_unlock(&early_lock);
	e->len = early_len(srq ? &srq->rq : &qp->rq);
	ret = early_post_bufs(e, isn_pd_of(qp->qp.pd)->real);
	if (ret)
		isn_log("drain: qp 0x%x: no shim receive buffers: %s",
			qp->qp.qp_num, strerror(-ret));
	return ret;
}

/* Buffer @i of @e completed (@wc) for the oldest held receive: @wc
 * becomes that receive's completion. */
static void early_hand_over(struct isn_early *e, uint64_t seq, uint64_t i,
			    struct ibv_wc *wc)
{
	const struct isn_wq_ent *ent = isn_wq_ent(early_wq(e), seq);
	uint32_t len = wc->byte_len;

	wc->wr_id = ent->wr_id;
	if (wc->status != IBV_WC_SUCCESS ||
	    wc->opcode == IBV_WC_RECV_RDMA_WITH_IMM)
		return;
	if (len > e->len) {
		wc->status = IBV_WC_LOC_LEN_ERR;
		return;
	}
	if (isn_sge_copy(ent->sge, ent->num_sge, e->buf + i * e->len, len,
			 false) < len)
		wc->status = IBV_WC_LOC_LEN_ERR;
}

/* Keep what buffer @i caught until the program posts a receive for it;
 * early_lock held. */
static void early_keep(struct isn_qp *qp, struct isn_early *e, uint64_t i,
		       const struct ibv_wc *wc)
{
	uint32_t len = wc->byte_len;
	struct early_msg *m;

	if (len > e->len || wc->opcode == IBV_WC_RECV_RDMA_WITH_IMM)
		len = wc->opcode == IBV_WC_RECV_RDMA_WITH_IMM ? 0 : e->len;
	m = malloc(sizeof(*m) + len);
	if (!m) {
		isn_log("drain: qp 0x%x: a held-up message is lost (no memory)",
			qp->qp.qp_num);
		return;
	}
	m->next = NULL;
	m->cq = isn_cq_of(qp->qp.recv_cq);
	m->wc = *wc;
	m->wc.byte_len = len;
	isn_wc_ids_to_virt(m->cq, &m->wc);
	memcpy(m->data, e->buf + i * e->len, len);
	*e->tail = m;
	e->tail = &m->next;
	early_ref(1);
}

bool isn_early_own_wc(struct isn_qp *qp, struct ibv_wc *wc)
{
	struct isn_srq *srq = qp->qp.srq ? isn_to_srq(qp->qp.srq) : NULL;
	struct isn_early **slot = early_slot(qp, srq), *e;
	uint64_t i = wc->wr_id & EARLY_WRID_MASK;
	bool own = true, last;

	if (!slot || (wc->wr_id & ~EARLY_WRID_MASK) != EARLY_WRID ||
	    i >= EARLY_BUFS)
		return false;
	/* under the lock: the next round's buffers replace these */
	pthread_mutex_lock(&early_lock);
	e = *slot;
	if (!e) {
		pthread_mutex_unlock(&early_lock);
		return false;
	}
	if (e->held) {
		early_hand_over(e, e->held_seq[e->held_head], i, wc);
		e->held_head = (e->held_head + 1) % EARLY_BUFS;
		e->held--;
		own = false; /* the program's own completion now */
	} else if (wc->status != IBV_WC_WR_FLUSH_ERR) {
		early_keep(qp, e, i, wc);
	}
	early_out_add(e, -1);
	last = !atomic_load(&early_bufs_out);
	pthread_mutex_unlock(&early_lock);
	if (last)
		isn_ckpt_poll_relax();
	return own;
}

bool isn_early_pending(struct isn_qp *qp, struct isn_srq *srq)
{
	struct isn_early **slot = early_slot(qp, srq);

	return slot && *slot && (*slot)->head;
}

/* Scatter @m into @wr's buffers: the completion's status. */
static enum ibv_wc_status early_scatter(struct early_msg *m,
					const struct ibv_recv_wr *wr)
{
	uint32_t n = wr->num_sge > 0 ? (uint32_t)wr->num_sge : 0;

	if (isn_sge_copy(wr->sg_list, n, m->data, m->wc.byte_len, false) <
	    m->wc.byte_len)
		return IBV_WC_LOC_LEN_ERR;
	return m->wc.status;
}

/* Hold @wr for the oldest buffer not spoken for; early_lock held. */
static void early_hold(struct isn_early *e, const struct ibv_recv_wr *wr)
{
	struct isn_wq *wq = early_wq(e);
	uint64_t seq = isn_wq_reserve(wq, 1);
	struct isn_wq_ent *ent = isn_wq_ent(wq, seq);

	isn_wq_log_recv(ent, wq, wr);
	isn_wq_stamp(ent, seq, true);
	e->held_seq[(e->held_head + e->held) % EARLY_BUFS] = seq;
	e->held++;
}

bool isn_early_take(struct isn_qp *qp, struct isn_srq *srq,
		    const struct ibv_recv_wr *wr)
{
	struct isn_early **slot = early_slot(qp, srq), *e;
	struct early_msg *m = NULL;
	struct ibv_wc wc;

	pthread_mutex_lock(&early_lock);
	e = slot ? *slot : NULL;
	if (e && e->head) {
		m = e->head;
		e->head = m->next;
		if (!e->head)
			e->tail = &e->head;
	} else if (e && e->out > e->held && wr->num_sge >= 0 &&
		   (uint32_t)wr->num_sge <= early_wq(e)->max_sge) {
		early_hold(e, wr);
		pthread_mutex_unlock(&early_lock);
		return true;
	}
	pthread_mutex_unlock(&early_lock);
	if (!m)
		return false;
	wc = m->wc;
	wc.wr_id = wr->wr_id;
	wc.status = early_scatter(m, wr);
	pthread_mutex_lock(&m->cq->lock);
	isn_cq_saved_push(m->cq, &wc);
	isn_cq_raise_event(m->cq);
	pthread_mutex_unlock(&m->cq->lock);
	free(m);
	early_ref(-1);
	return true;
}

/* @qp's receive queue or @srq is destroyed: its shim buffers (their MR
 * would keep the PD busy) and its kept messages go. */
void isn_early_forget(struct isn_qp *qp, struct isn_srq *srq)
{
	struct isn_early **slot = early_slot(qp, srq), *e, **pp;
	struct early_msg *m;
	int n = 0;

	if (!slot || !*slot)
		return;
	pthread_mutex_lock(&early_lock);
	e = *slot;
	*slot = NULL;
	for (pp = &early_all; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	early_out_add(e, -(int)e->out);
	pthread_mutex_unlock(&early_lock);
	early_bufs_free(e);
	while ((m = e->head)) {
		e->head = m->next;
		free(m);
		n++;
	}
	early_ref(-n);
	free(e);
	isn_ckpt_poll_relax();
}

/* RELEASE, the QPs and SRQs gone: the shim buffers go, kept messages stay;
 * the held receives are in their queues' logs and are posted again. */
void isn_early_release(void)
{
	struct isn_early *e;

	pthread_mutex_lock(&early_lock);
	for (e = early_all; e; e = e->next) {
		early_bufs_free(e);
		early_out_add(e, -(int)e->out);
		e->held = e->held_head = 0;
	}
	pthread_mutex_unlock(&early_lock);
}

/* A checkpoint failed: say which queues keep shim buffers posted. */
void isn_early_note_live(void)
{
	struct isn_early *e;

	pthread_mutex_lock(&early_lock);
	for (e = early_all; e; e = e->next)
		if (e->out)
			isn_log("resume: %s 0x%x keeps %u shim receive buffers "
				"posted; the program's next receives there "
				"stand in for them",
				e->srq ? "srq" : "qp",
				e->srq ? e->srq->srq_num : e->qp->qp.qp_num,
				e->out);
	pthread_mutex_unlock(&early_lock);
}
