/* SPDX-License-Identifier: MIT */
/*
 * The data path of QPs and SRQs.  The common case (one WR, IDs not
 * remapped, no checkpoint under way) counts itself into the send queue's
 * gate, or reserves and fills a slot of the receive log (wq.h), calls the
 * backend's own op, and counts itself out or stamps the slot.
 * Everything else (lists, UD, remapped IDs, a held queue) takes the general
 * path: WR lists that need translating are copied to the stack in batches,
 * never to the heap, and posted batch by batch; a failure reports the
 * application's own WR in *bad_wr.
 */
#include <errno.h>
#include <string.h>

#include "shim.h"
#include "../drain/ckpt.h"

#define BATCH_WR 16
#define BATCH_SGE 128

struct send_batch {
	struct ibv_send_wr wr[BATCH_WR];
	struct ibv_send_wr *orig[BATCH_WR];
	struct ibv_sge sge[BATCH_SGE];
	int nwr, nsge;
};

static void sges_to_real(struct ibv_sge *dst, const struct ibv_sge *src, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		dst[i] = src[i];
		dst[i].lkey = isn_vid_local_to_real(ISN_VID_LKEY, src[i].lkey);
	}
}

static void send_ids_to_real(struct isn_qp *qp, struct ibv_send_wr *out,
			     const struct ibv_send_wr *in)
{
	switch (in->opcode) {
	case IBV_WR_RDMA_WRITE:
	case IBV_WR_RDMA_WRITE_WITH_IMM:
	case IBV_WR_RDMA_READ:
		out->wr.rdma.rkey = isn_vid_remote_to_real(
			qp->peer, ISN_VID_RKEY, in->wr.rdma.rkey);
		break;
	case IBV_WR_ATOMIC_CMP_AND_SWP:
	case IBV_WR_ATOMIC_FETCH_AND_ADD:
		out->wr.atomic.rkey = isn_vid_remote_to_real(
			qp->peer, ISN_VID_RKEY, in->wr.atomic.rkey);
		break;
	default:
		break;
	}
}

/* Backend's copy of send WR @in, into @b (which has room for it). */
static void send_wr_to_real(struct isn_qp *qp, struct send_batch *b,
			    struct ibv_send_wr *in, bool ids)
{
	struct ibv_send_wr *out = &b->wr[b->nwr];

	*out = *in;
	out->next = NULL;
	if (b->nwr)
		b->wr[b->nwr - 1].next = out;
	b->orig[b->nwr++] = in;
	if (qp->qp.qp_type == IBV_QPT_UD) {
		struct isn_ah *ah = in->wr.ud.ah ? isn_to_ah(in->wr.ud.ah) :
						   NULL;

		out->wr.ud.ah = ah ? ah->real : NULL;
		if (ids && ah)
			out->wr.ud.remote_qpn = isn_vid_remote_to_real(
				ah->peer, ISN_VID_QPN, in->wr.ud.remote_qpn);
	}
	if (!ids)
		return;
	if (!(in->send_flags & IBV_SEND_INLINE) && in->num_sge > 0) {
		out->sg_list = &b->sge[b->nsge];
		sges_to_real(out->sg_list, in->sg_list, in->num_sge);
		b->nsge += in->num_sge;
	}
	send_ids_to_real(qp, out, in);
}

/* The send gate (wq.h); false if the queue is held (counted out again). */
static inline bool sq_enter(struct isn_qp *qp)
{
	atomic_fetch_add(&qp->sq.begun, 1);
	if (isn_likely(!(isn_slow_get() & ISN_SLOW_HOLD_SEND)))
		return true;
	atomic_fetch_add(&qp->sq.unposted, 1);
	atomic_fetch_add(&qp->sq.done, 1);
	return false;
}

static inline void sq_leave(struct isn_qp *qp)
{
	atomic_fetch_add_explicit(&qp->sq.done, 1, memory_order_release);
}

/*
 * A batch counts itself into the send gate before it reads isn_slow's
 * translation bit and translates its first WR, so that a checkpoint's
 * settle also waits out its ID lookups (the maps' retired copies are freed
 * at the end of a checkpoint: drain/driver.c) and no batch translated
 * before a checkpoint is posted after it.  False if the queue is held
 * (counted out again), unless @force.
 */
static bool send_batch_enter(struct isn_qp *qp, bool force)
{
	if (!force) /* force: the checkpoint's resume, the queue still held */
		return sq_enter(qp);
	atomic_fetch_add(&qp->sq.begun, 1);
	return true;
}

/* Post batch @b (inside the gate) and count it out. */
static int send_flush(struct isn_qp *qp, struct send_batch *b,
		      struct ibv_send_wr **bad_wr)
{
	struct ibv_send_wr *bad = NULL;
	int ret;

	ret = qp->post_send(qp->real, b->wr, &bad);
	if (ret && (!bad || bad == b->wr)) /* none reached the queue */
		atomic_fetch_add(&qp->sq.unposted, 1);
	sq_leave(qp);
	if (ret)
		*bad_wr = bad ? b->orig[bad - b->wr] : b->orig[0];
	return ret;
}

int isn_post_send_list(struct isn_qp *qp, struct ibv_send_wr *wr,
		       struct ibv_send_wr **bad_wr, bool force)
{
	struct send_batch b;
	int ret, nsge;
	bool ids;

	while (wr) {
		if (!send_batch_enter(qp, force))
			return isn_ckpt_post_send(qp, wr, bad_wr);
		ids = isn_slow_get() & ISN_SLOW_XLATE;
		b.nwr = b.nsge = 0;
		for (; wr && b.nwr < BATCH_WR; wr = wr->next) {
			nsge = ids && wr->num_sge > 0 ? wr->num_sge : 0;
			if (b.nsge + nsge > BATCH_SGE)
				break;
			send_wr_to_real(qp, &b, wr, ids);
		}
		if (!b.nwr) { /* more SGEs than a batch holds */
			sq_leave(qp);
			*bad_wr = wr;
			return EINVAL;
		}
		ret = send_flush(qp, &b, bad_wr);
		/* the queue full of a timed-out drain's marker (pending.c) */
		if (ret == ENOMEM && !force && isn_pending_defer(qp, *bad_wr))
			return 0;
		if (ret)
			return ret;
	}
	return 0;
}

int isn_post_send_slow(struct isn_qp *qp, struct ibv_send_wr *wr,
		       struct ibv_send_wr **bad_wr)
{
	if (isn_slow_get() & ISN_SLOW_HOLD_SEND)
		return isn_ckpt_post_send(qp, wr, bad_wr);
	return isn_post_send_list(qp, wr, bad_wr, false);
}

int isn_post_send(struct ibv_qp *ibqp, struct ibv_send_wr *wr,
		  struct ibv_send_wr **bad_wr)
{
	struct isn_qp *qp = isn_to_qp(ibqp);
	int ret;

	if (isn_unlikely(qp->xlate_send || !sq_enter(qp)))
		return isn_post_send_slow(qp, wr, bad_wr);
	ret = qp->post_send(qp->real, wr, bad_wr);
	sq_leave(qp);
	return ret;
}

struct recv_batch {
	struct ibv_recv_wr wr[BATCH_WR];
	struct ibv_recv_wr *orig[BATCH_WR];
	struct ibv_sge sge[BATCH_SGE];
	int nwr, nsge;
};

/* A batch's WRs are translated after their log slots are reserved and
 * the hold checked: a checkpoint's settle of the log (isn_wq_settle) also
 * waits out the ID lookups, as send_batch_enter() does for sends. */
static void recv_batch_to_real(struct recv_batch *b)
{
	bool ids = isn_slow_get() & ISN_SLOW_XLATE;
	struct ibv_recv_wr *out;
	int i, n;

	b->nsge = 0;
	for (i = 0; i < b->nwr; i++) {
		out = &b->wr[i];
		*out = *b->orig[i];
		out->next = i + 1 < b->nwr ? &b->wr[i + 1] : NULL;
		n = b->orig[i]->num_sge > 0 ? b->orig[i]->num_sge : 0;
		if (!ids)
			continue; /* recv_batch_add() left room for the SGEs */
		out->sg_list = &b->sge[b->nsge];
		sges_to_real(out->sg_list, b->orig[i]->sg_list, n);
		b->nsge += n;
	}
}

/* Log and post @b to the QP's receive queue, or to the SRQ if @qp is NULL;
 * -1 if the queue is held (nothing posted). */
static int recv_flush(struct isn_qp *qp, struct isn_srq *srq,
		      struct recv_batch *b, struct ibv_recv_wr **bad_wr,
		      bool force)
{
	struct isn_wq *wq = qp ? &qp->rq : &srq->rq;
	struct ibv_recv_wr *bad = NULL;
	uint64_t seq;
	int i, ok, ret;

	if (!b->nwr)
		return 0;
	seq = isn_wq_reserve(wq, b->nwr);
	if (!force && (isn_slow_get() & ISN_SLOW_HOLD_RECV)) {
		for (i = 0; i < b->nwr; i++)
			isn_wq_stamp(isn_wq_ent(wq, seq + i), seq + i, false);
		b->nwr = b->nsge = 0;
		return -1;
	}
	recv_batch_to_real(b);
	for (i = 0; i < b->nwr; i++)
		isn_wq_log_recv(isn_wq_ent(wq, seq + i), wq, b->orig[i]);
	if (qp)
		ret = qp->post_recv(qp->real, b->wr, &bad);
	else
		ret = srq->post_recv(srq->real, b->wr, &bad);
	ok = ret ? (bad ? bad - b->wr : 0) : b->nwr;
	for (i = 0; i < b->nwr; i++)
		isn_wq_stamp(isn_wq_ent(wq, seq + i), seq + i, i < ok);
	if (ret)
		*bad_wr = b->orig[ok];
	b->nwr = b->nsge = 0;
	return ret;
}

/* Add @in to @b if there is room (its SGEs counted as if translated). */
static bool recv_batch_add(struct recv_batch *b, struct ibv_recv_wr *in)
{
	int n = in->num_sge > 0 ? in->num_sge : 0;

	if (b->nwr == BATCH_WR || (b->nwr && b->nsge + n > BATCH_SGE))
		return false;
	b->orig[b->nwr++] = in;
	b->nsge += n;
	return true;
}

int isn_post_recv_list(struct isn_qp *qp, struct isn_srq *srq,
		       struct ibv_recv_wr *wr, struct ibv_recv_wr **bad_wr,
		       bool force)
{
	struct recv_batch b = { .nwr = 0 };
	struct ibv_recv_wr *first;
	int ret;

	/* messages an RNR held up at a checkpoint come first (early.c) */
	while (wr && (isn_slow_get() & ISN_SLOW_RECV_EARLY) &&
	       isn_early_take(qp, srq, wr))
		wr = wr->next;
	for (first = wr; wr; wr = wr->next) {
		if (wr->num_sge > BATCH_SGE) {
			*bad_wr = wr;
			return EINVAL;
		}
		if (recv_batch_add(&b, wr))
			continue;
		ret = recv_flush(qp, srq, &b, bad_wr, force);
		if (ret < 0)
			return isn_ckpt_post_recv(qp, srq, first, bad_wr);
		if (ret)
			return ret;
		first = wr;
		recv_batch_add(&b, wr);
	}
	ret = recv_flush(qp, srq, &b, bad_wr, force);
	return ret < 0 ? isn_ckpt_post_recv(qp, srq, first, bad_wr) : ret;
}

int isn_post_recv_slow(struct isn_qp *qp, struct isn_srq *srq,
		       struct ibv_recv_wr *wr, struct ibv_recv_wr **bad_wr)
{
	if (isn_slow_get() & ISN_SLOW_HOLD_RECV)
		return isn_ckpt_post_recv(qp, srq, wr, bad_wr);
	return isn_post_recv_list(qp, srq, wr, bad_wr, false);
}

/* The fast path of post_recv and post_srq_recv; @qp NULL: @srq. */
static inline int post_recv_fast(struct isn_qp *qp, struct isn_srq *srq,
				 struct isn_wq *wq, bool xlate,
				 struct ibv_recv_wr *wr,
				 struct ibv_recv_wr **bad_wr)
{
	struct isn_wq_ent *e;
	uint64_t seq;
	int ret;

	if (isn_unlikely(!wr))
		return 0;
	if (isn_unlikely(xlate | !!wr->next))
		return isn_post_recv_slow(qp, srq, wr, bad_wr);
	seq = isn_wq_reserve(wq, 1);
	e = isn_wq_ent(wq, seq);
	if (isn_unlikely(isn_slow_get() &
			 (ISN_SLOW_HOLD_RECV | ISN_SLOW_RECV_EARLY))) {
		isn_wq_stamp(e, seq, false);
		return isn_post_recv_slow(qp, srq, wr, bad_wr);
	}
	isn_wq_log_recv(e, wq, wr);
	if (qp)
		ret = qp->post_recv(qp->real, wr, bad_wr);
	else
		ret = srq->post_recv(srq->real, wr, bad_wr);
	isn_wq_stamp(e, seq, !ret);
	return ret;
}

int isn_post_recv(struct ibv_qp *ibqp, struct ibv_recv_wr *wr,
		  struct ibv_recv_wr **bad_wr)
{
	struct isn_qp *qp = isn_to_qp(ibqp);

	return post_recv_fast(qp, NULL, &qp->rq, qp->xlate_recv, wr, bad_wr);
}

int isn_post_srq_recv(struct ibv_srq *ibsrq, struct ibv_recv_wr *wr,
		      struct ibv_recv_wr **bad_wr)
{
	struct isn_srq *srq = isn_to_srq(ibsrq);

	return post_recv_fast(NULL, srq, &srq->rq, srq->xlate, wr, bad_wr);
}
