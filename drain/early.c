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
	uint32_t out; /* buffers posted and not consumed */
	struct ibv_mr *mr; /* backend MR */
	struct early_msg *head, **tail;
};

static pthread_mutex_t early_lock = PTHREAD_MUTEX_INITIALIZER;
static struct isn_early *early_all;
static _Atomic int early_msgs; /* kept messages, all queues */

static struct isn_early **early_slot(struct isn_qp *qp, struct isn_srq *srq)
{
	if (srq)
		return &srq->early;
	return qp->ck ? &qp->ck->early : NULL;
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

static int early_post_bufs(struct isn_early *e, struct ibv_pd *pd)
{
	struct ibv_recv_wr wr, *bad;
	struct ibv_sge sge;
	uint32_t i;
	int ret = 0;

	e->buf = malloc((size_t)e->len * EARLY_BUFS);
	if (!e->buf)
		return -ENOMEM;
	e->mr = isn_g.ops.reg_mr(pd, e->buf, (size_t)e->len * EARLY_BUFS,
				 (uintptr_t)e->buf, IBV_ACCESS_LOCAL_WRITE);
	if (!e->mr)
		return -errno;
	for (i = 0; i < EARLY_BUFS && !ret; i++) {
		sge = (struct ibv_sge){ (uintptr_t)e->buf + (size_t)i * e->len,
					e->len, e->mr->lkey };
		wr = (struct ibv_recv_wr){ .wr_id = EARLY_WRID | i,
					   .sg_list = &sge,
					   .num_sge = 1 };
		ret = e->srq ? e->srq->post_recv(e->srq->real, &wr, &bad) :
			       e->qp->post_recv(e->qp->real, &wr, &bad);
		if (!ret)
			e->out++;
	}
	return e->out ? 0 : -ret;
}

int isn_early_post(struct isn_qp *qp, struct isn_srq *srq)
{
	struct isn_early **slot = early_slot(qp, srq), *e;
	int ret;

	if (!slot)
		return -ENOMEM;
	if (*slot && (*slot)->out)
		return 0; /* another stuck peer on the same SRQ */
	early_hold_receives();
	pthread_mutex_lock(&early_lock);
	e = *slot;
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

bool isn_early_own_wc(struct isn_qp *qp, const struct ibv_wc *wc)
{
	struct isn_srq *srq = qp->qp.srq ? isn_to_srq(qp->qp.srq) : NULL;
	struct isn_early **slot = early_slot(qp, srq), *e;
	uint64_t i = wc->wr_id & EARLY_WRID_MASK;
	uint32_t len = wc->byte_len;
	struct early_msg *m;

	if (!slot || !(e = *slot) ||
	    (wc->wr_id & ~EARLY_WRID_MASK) != EARLY_WRID || i >= EARLY_BUFS)
		return false;
	e->out--;
	if (wc->status == IBV_WC_WR_FLUSH_ERR)
		return true; /* an unused buffer, flushed */
	if (len > e->len || wc->opcode == IBV_WC_RECV_RDMA_WITH_IMM)
		len = wc->opcode == IBV_WC_RECV_RDMA_WITH_IMM ? 0 : e->len;
	m = malloc(sizeof(*m) + len);
	if (!m) {
		isn_log("drain: qp 0x%x: a held-up message is lost (no memory)",
			qp->qp.qp_num);
		return true;
	}
	m->next = NULL;
	m->cq = isn_cq_of(qp->qp.recv_cq);
	m->wc = *wc;
	m->wc.byte_len = len;
	isn_wc_ids_to_virt(m->cq, &m->wc);
	memcpy(m->data, e->buf + i * e->len, len);
	pthread_mutex_lock(&early_lock);
	*e->tail = m;
	e->tail = &m->next;
	pthread_mutex_unlock(&early_lock);
	if (atomic_fetch_add(&early_msgs, 1) == 0)
		atomic_fetch_or(&isn_slow, ISN_SLOW_RECV_EARLY);
	return true;
}

bool isn_early_pending(struct isn_qp *qp, struct isn_srq *srq)
{
	struct isn_early **slot = early_slot(qp, srq);

	return slot && *slot && (*slot)->head;
}

/* Scatter @m into @wr's buffers: the completion's status. */
static enum ibv_wc_status early_scatter(const struct early_msg *m,
					const struct ibv_recv_wr *wr)
{
	uint32_t done = 0, l;
	int i;

	for (i = 0; i < wr->num_sge && done < m->wc.byte_len; i++) {
		l = wr->sg_list[i].length;
		if (l > m->wc.byte_len - done)
			l = m->wc.byte_len - done;
		memcpy((void *)(uintptr_t)wr->sg_list[i].addr, m->data + done,
		       l);
		done += l;
	}
	return done < m->wc.byte_len ? IBV_WC_LOC_LEN_ERR : m->wc.status;
}

bool isn_early_take(struct isn_qp *qp, struct isn_srq *srq,
		    const struct ibv_recv_wr *wr)
{
	struct isn_early **slot = early_slot(qp, srq), *e;
	struct early_msg *m;
	struct ibv_wc wc;

	pthread_mutex_lock(&early_lock);
	e = slot ? *slot : NULL;
	m = e ? e->head : NULL;
	if (m) {
		e->head = m->next;
		if (!e->head)
			e->tail = &e->head;
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
	if (atomic_fetch_sub(&early_msgs, 1) == 1)
		atomic_fetch_and(&isn_slow, ~(uint32_t)ISN_SLOW_RECV_EARLY);
	return true;
}

/* @qp's receive queue or @srq is destroyed: its shim buffers (their MR
 * would keep the PD busy) and its kept messages go. */
void isn_early_forget(struct isn_qp *qp, struct isn_srq *srq)
{
	struct isn_early **slot = early_slot(qp, srq), *e, **pp;
	struct early_msg *m;

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
	pthread_mutex_unlock(&early_lock);
	if (e->mr)
		isn_g.ops.dereg_mr(e->mr);
	free(e->buf);
	while ((m = e->head)) {
		e->head = m->next;
		free(m);
		if (atomic_fetch_sub(&early_msgs, 1) == 1)
			atomic_fetch_and(&isn_slow,
					 ~(uint32_t)ISN_SLOW_RECV_EARLY);
	}
	free(e);
}

/* RELEASE, the QPs and SRQs gone: the shim buffers go, kept messages stay. */
void isn_early_release(void)
{
	struct isn_early *e;

	pthread_mutex_lock(&early_lock);
	for (e = early_all; e; e = e->next) {
		if (e->mr)
			isn_g.ops.dereg_mr(e->mr);
		free(e->buf);
		e->mr = NULL;
		e->buf = NULL;
		e->out = 0;
	}
	pthread_mutex_unlock(&early_lock);
}
