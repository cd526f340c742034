/* SPDX-License-Identifier: MIT */
/*
 * Requester side of the fake HCA transport: puts send WQEs on the wire as
 * packets, takes ACKs, NAKs and READ/atomic responses, retransmits
 * (go-back-N from the oldest unacknowledged WQE) and completes WQEs in order.
 *
 * RC: a WQE completes when an ACK (or its response) covers its last PSN.
 * Lost packets are found by the responder's sequence NAK or by the retransmit
 * timer (4.096 us * 2^timeout, at least FK_RTO_MIN_NS); retry_cnt and
 * rnr_retry (7 = forever) bound the retries as on real HCAs.
 * UC and UD: a WQE completes once it is on the wire.
 */
#include <errno.h>
#include <string.h>

#include "dp_pkt.h"

#define FK_RTO_MIN_NS 500000ull /* 2 cores: leave room for scheduling */
#define FK_MAX_INFLIGHT 32 /* packets per QP beyond the oldest unacked */
#define FK_BLOCKED_RETRY_NS 20000ull /* destination ring full: try again */

/* IB spec table of RNR NAK timer codes, in microseconds. */
static const uint32_t rnr_usec[32] = {
	655360, 10,    20,    30,     40,     60,     80,     120,
	160,	240,   320,   480,    640,    960,    1280,   1920,
	2560,	3840,  5120,  7680,   10240,  15360,  20480,  30720,
	40960,	61440, 81920, 122880, 163840, 245760, 327680, 491520,
};

static uint64_t rto_ns(const struct fk_qp *qp)
{
	uint64_t ns;

	if (!qp->attr.timeout) /* 0: infinite per spec; keep it large */
		return 60ull * 1000000000ull;
	ns = 4096ull << (qp->attr.timeout > 31 ? 31 : qp->attr.timeout);
	return ns < FK_RTO_MIN_NS ? FK_RTO_MIN_NS : ns;
}

void fk_req_reset(struct fk_qp *qp)
{
	memset(&qp->req, 0, sizeof(qp->req));
	qp->req.retries = qp->attr.retry_cnt;
	qp->req.rnr_retries = qp->attr.rnr_retry;
}

void fk_pkt_init(struct fk_qp *qp, struct fk_pkt *pkt, uint8_t op)
{
	struct fk_context *ctx = qp_ctx(qp);

	memset(pkt, 0, sizeof(*pkt));
	pkt->op = op;
	pkt->src_qpn = qp->ibqp.qp_num;
	pkt->src_node = ctx->node->index;
	pkt->src_lid = ctx->node->lid;
	pkt->src_slot = fab_port_slot(ctx->port);
	pkt->src_gen = fab_port_gen(ctx->port);
	pkt->pkey = 0xffff;
	pkt->sgid = ctx->node->gid[0];
}

int fk_reply(struct fk_qp *qp, const struct fk_pkt *in, struct fk_pkt *out,
	     const void *payload, size_t len)
{
	struct fab_dest d = {
		.port_slot = in->src_slot,
		.port_gen = in->src_gen,
		.node_index = in->src_node,
		.qpn = in->src_qpn,
	};

	out->dst_qpn = in->src_qpn;
	return fab_send(qp_ctx(qp)->port, &d, out, sizeof(*out), payload, len,
			0);
}

static bool resolve_dest(struct fk_qp *qp)
{
	const struct ibv_ah_attr *ah = &qp->attr.ah_attr;

	if (qp->dest_valid)
		return true;
	if (fab_resolve(qp_ctx(qp)->port, ah->is_global ? &ah->grh.dgid : NULL,
			ah->dlid, qp->attr.dest_qp_num, &qp->dest))
		return false;
	qp->dest_valid = true;
	return true;
}

static bool wqe_is_rd(const struct fk_swqe *wqe)
{
	return wqe->wr.opcode == IBV_WR_RDMA_READ ||
	       wqe->wr.opcode == IBV_WR_ATOMIC_CMP_AND_SWP ||
	       wqe->wr.opcode == IBV_WR_ATOMIC_FETCH_AND_ADD;
}

/* Local SGEs of a WQE are checked once, when it first goes out. */
static int check_local(struct fk_qp *qp, struct fk_swqe *wqe)
{
	struct fk_context *ctx = qp_ctx(qp);
	struct fk_pd *pd = to_fpd(qp->ibqp.pd);
	unsigned int acc = wqe_is_rd(wqe) ? IBV_ACCESS_LOCAL_WRITE : 0;
	uint32_t i;

	for (i = 0; i < wqe->num_sge; i++) {
		struct fk_mr *mr;

		if (!wqe->sge[i].length)
			continue;
		mr = fk_mr_lookup(ctx, wqe->sge[i].lkey);
		if (!mr || !fk_mr_addr(mr, pd, wqe->sge[i].addr,
				       wqe->sge[i].length, acc))
			return IBV_WC_LOC_PROT_ERR;
	}
	return 0;
}

static uint8_t wr_op(const struct fk_swqe *wqe)
{
	switch (wqe->wr.opcode) {
	case IBV_WR_RDMA_WRITE:
	case IBV_WR_RDMA_WRITE_WITH_IMM:
		return FK_OP_WRITE;
	case IBV_WR_RDMA_READ:
		return FK_OP_READ_REQ;
	case IBV_WR_ATOMIC_CMP_AND_SWP:
	case IBV_WR_ATOMIC_FETCH_AND_ADD:
		return FK_OP_ATOMIC;
	default:
		return FK_OP_SEND;
	}
}

static const void *seg_payload(struct fk_qp *qp, struct fk_swqe *wqe,
			       uint32_t off, uint32_t len)
{
	uint8_t *buf = qp_ctx(qp)->tx_scratch;
	uint32_t i, skip = off;

	if (!len)
		return NULL;
	if (wqe->inl)
		return wqe->inl + off;
	/* One SGE covering the segment: send straight from user memory. */
	for (i = 0; i < wqe->num_sge; i++) {
		if (skip < wqe->sge[i].length)
			break;
		skip -= wqe->sge[i].length;
	}
	if (i < wqe->num_sge && wqe->sge[i].length - skip >= len) {
		struct fk_mr *mr = fk_mr_lookup(qp_ctx(qp), wqe->sge[i].lkey);

		return fk_mr_addr(mr, to_fpd(qp->ibqp.pd),
				  wqe->sge[i].addr + skip, len, 0);
	}
	fk_sge_gather(qp, wqe->sge, wqe->num_sge, off, buf, len);
	return buf;
}

/*
 * READ and atomic request fields.  A READ sent again after some of its
 * responses arrived asks only for the rest, from the first missing PSN (as
 * rxe's requester does): the responder serves it as a duplicate.
 */
static void fill_rd(struct fk_pkt *pkt, const struct fk_swqe *wqe)
{
	uint64_t done = (uint64_t)wqe->acked * FK_SEG;

	pkt->rkey = wqe->wr.wr.rdma.rkey;
	pkt->va = wqe->wr.wr.rdma.remote_addr + done;
	pkt->msg_len = wqe->length - (uint32_t)done;
	if (wqe->wr.opcode == IBV_WR_RDMA_READ) {
		pkt->psn = psn_add(wqe->first_psn, wqe->acked);
		return;
	}
	pkt->rkey = wqe->wr.wr.atomic.rkey;
	pkt->va = wqe->wr.wr.atomic.remote_addr;
	pkt->atomic_a = wqe->wr.wr.atomic.compare_add;
	if (wqe->wr.opcode == IBV_WR_ATOMIC_CMP_AND_SWP) {
		pkt->flags |= FK_PKT_CMP_SWP;
		pkt->atomic_a = wqe->wr.wr.atomic.swap;
		pkt->atomic_b = wqe->wr.wr.atomic.compare_add;
	}
}

/* Put the next packet of @wqe on the wire: 0, or -EAGAIN if the ring is full. */
static int send_one(struct fk_qp *qp, struct fk_swqe *wqe,
		    const struct fab_dest *dest)
{
	uint32_t off = wqe->sent * FK_SEG, len = 0;
	unsigned int flags = 0;
	struct fk_pkt pkt;
	const void *pl = NULL;
	int ret;

	fk_pkt_init(qp, &pkt, wr_op(wqe));
	pkt.dst_qpn = dest->qpn;
	pkt.psn = psn_add(wqe->first_psn, wqe->sent);
	if (wqe_is_rd(wqe)) {
		fill_rd(&pkt, wqe);
		flags |= FAB_SEND_WAKE;
	} else {
		len = wqe->length - off;
		if (len > FK_SEG)
			len = FK_SEG;
		pkt.msg_len = wqe->length;
		pkt.len = len;
		if (!wqe->sent)
			pkt.flags |= FK_PKT_FIRST;
		if (wqe->sent + 1 == wqe->npkts)
			pkt.flags |= FK_PKT_LAST;
		if (wqe->wr.opcode == IBV_WR_SEND_WITH_IMM ||
		    wqe->wr.opcode == IBV_WR_RDMA_WRITE_WITH_IMM) {
			pkt.flags |= FK_PKT_IMM;
			pkt.imm = wqe->wr.imm_data;
		}
		if (wqe->wr.send_flags & IBV_SEND_SOLICITED)
			pkt.flags |= FK_PKT_SOLICITED;
		if (pkt.op == FK_OP_WRITE) {
			pkt.rkey = wqe->wr.wr.rdma.rkey;
			pkt.va = wqe->wr.wr.rdma.remote_addr + off;
			if (!(pkt.flags & FK_PKT_IMM))
				flags |= FAB_SEND_WAKE;
		}
		pl = seg_payload(qp, wqe, off, len);
	}
	if (qp->ibqp.qp_type == IBV_QPT_UD) {
		struct fk_ah *ah = wqe->ah;

		pkt.op = FK_OP_UD_SEND;
		flags |= FAB_SEND_NODUP;
		pkt.qkey = (wqe->wr.wr.ud.remote_qkey & 0x80000000u) ?
				   qp->attr.qkey :
				   wqe->wr.wr.ud.remote_qkey;
		if (ah->attr.is_global) {
			pkt.flags |= FK_PKT_GLOBAL;
			pkt.dgid = ah->attr.grh.dgid;
			pkt.sgid =
				qp_ctx(qp)->node->gid[ah->attr.grh.sgid_index %
						      FK_NUM_GIDS];
		}
		/* IB and lossless RoCE links have link-level flow control: a
		 * busy receiver slows UD senders down; it does not drop. */
	}
	ret = fab_send(qp_ctx(qp)->port, dest, &pkt, sizeof(pkt), pl, len,
		       flags);
	if (ret == -EAGAIN)
		return ret;
	if (!ret)
		qp->req.unmarked = true; /* fk_req_pump takes the mark */
	/* Any other failure is a loss on the wire: RC retries, UC/UD lose. */
	wqe->sent++;
	return 0;
}

static bool ud_dest(struct fk_qp *qp, struct fk_swqe *wqe, struct fab_dest *d)
{
	const struct ibv_ah_attr *a = &wqe->ah->attr;

	return !fab_resolve(qp_ctx(qp)->port,
			    a->is_global ? &a->grh.dgid : NULL, a->dlid,
			    wqe->wr.wr.ud.remote_qpn, d);
}

static void complete_head(struct fk_qp *qp)
{
	while (qp->sq.head != qp->sq.next) {
		struct fk_swqe *wqe = sq_wqe(&qp->sq, qp->sq.head);
		enum ibv_wc_status st = wqe->status;

		if (!wqe->done)
			break;
		qp->sq.head++;
		fk_send_complete(qp, wqe, st);
		if (st != IBV_WC_SUCCESS) {
			fk_qp_to_error(qp, false);
			return;
		}
	}
}

static uint32_t inflight(struct fk_qp *qp)
{
	if (qp->sq.head == qp->sq.next)
		return 0;
	return psn_diff(qp->req.psn, sq_wqe(&qp->sq, qp->sq.head)->first_psn);
}

/* Start a WQE: assign its PSNs and check its local buffers. */
static bool start_wqe(struct fk_qp *qp, struct fk_swqe *wqe)
{
	int st;

	wqe->started = true;
	wqe->first_psn = qp->req.psn;
	wqe->npkts = wqe_is_rd(wqe) && wqe->wr.opcode != IBV_WR_RDMA_READ ?
			     1 :
			     fk_npkts(wqe->length);
	qp->req.psn = psn_add(qp->req.psn, wqe->npkts);
	st = check_local(qp, wqe);
	if (st) {
		wqe->status = st;
		wqe->done = true;
		return false;
	}
	return true;
}

static int pump_one(struct fk_qp *qp, struct fk_swqe *wqe, bool connected)
{
	struct fab_dest d;
	int ret;

	if (!connected) {
		/* no such peer, or (as on rxe0, whose receiver drops it) a
		 * message over the path MTU: lost, the send succeeds */
		if (wqe->length > (128u << qp_ctx(qp)->dev->active_mtu) ||
		    !ud_dest(qp, wqe, &d)) {
			wqe->sent = wqe->npkts;
			return 0;
		}
	} else {
		if (!resolve_dest(qp)) {
			wqe->sent = wqe->npkts; /* lost: the timer will tell */
			return 0;
		}
		d = qp->dest;
	}
	while (wqe->sent < (wqe_is_rd(wqe) ? 1 : wqe->npkts)) {
		ret = send_one(qp, wqe, &d);
		if (ret)
			return ret;
	}
	return 0;
}

void fk_req_pump(struct fk_qp *qp)
{
	bool rc = qp->ibqp.qp_type == IBV_QPT_RC;
	bool connected = qp->ibqp.qp_type != IBV_QPT_UD;
	uint32_t max_rd = qp->attr.max_rd_atomic ? qp->attr.max_rd_atomic : 1;
	uint64_t now = 0;

	if (qp->attr.qp_state != IBV_QPS_RTS)
		return;
	if (qp->req.rnr_until_ns || qp->req.blocked) {
		now = fab_now_ns();
		if (qp->req.rnr_until_ns > now)
			return;
		qp->req.rnr_until_ns = 0;
		qp->req.blocked = false;
	}
	while (qp->sq.next != qp->sq.tail) {
		struct fk_swqe *wqe = sq_wqe(&qp->sq, qp->sq.next);

		if (rc && inflight(qp) >= FK_MAX_INFLIGHT)
			break;
		if (rc && wqe_is_rd(wqe) && !wqe->sent &&
		    qp->req.rd_outstanding >= max_rd)
			break;
		if (!wqe->started && !start_wqe(qp, wqe)) {
			qp->sq.next++;
			break; /* completes with its error at the head */
		}
		if (pump_one(qp, wqe, connected) == -EAGAIN) {
			qp->req.blocked = true;
			qp->req.blocked_until_ns = (now ? now : fab_now_ns()) +
						   FK_BLOCKED_RETRY_NS;
			break;
		}
		if (rc && wqe_is_rd(wqe))
			qp->req.rd_outstanding++;
		if (!rc)
			wqe->done = true;
		qp->sq.next++;
	}
	if (rc && qp->req.unmarked) {
		/* once per pump, not per packet: where the peer must read to */
		qp->req.mark = fab_mark(qp_ctx(qp)->port, &qp->dest);
		qp->req.marked = true;
		qp->req.unmarked = false;
	}
	complete_head(qp);
	if (rc && qp->sq.head != qp->sq.next) {
		if (!qp->req.timer_ns)
			qp->req.timer_ns = fab_now_ns() + rto_ns(qp);
	} else {
		qp->req.timer_ns = 0;
	}
	fk_timer_update(qp);
}

/*
 * Go back to the oldest unacknowledged WQE and send it all again.  The WQE
 * at sq.next may be started too (its PSNs assigned, stopped by a full ring):
 * it is restarted with the rest, or the WQE after it would reuse its PSNs.
 */
static void go_back(struct fk_qp *qp)
{
	uint32_t i, end = qp->sq.next;

	if (end != qp->sq.tail && sq_wqe(&qp->sq, end)->started)
		end++;
	if (qp->sq.head == end)
		return;
	qp->req.psn = sq_wqe(&qp->sq, qp->sq.head)->first_psn;
	for (i = qp->sq.head; i != end; i++) {
		struct fk_swqe *wqe = sq_wqe(&qp->sq, i);

		wqe->sent = 0;
		if (wqe->wr.opcode != IBV_WR_RDMA_READ)
			wqe->acked = 0; /* a READ resumes where it stopped */
		wqe->started = false;
	}
	qp->sq.next = qp->sq.head;
	qp->req.rd_outstanding = 0;
	qp->req.timer_ns = 0;
}

static void fail_head(struct fk_qp *qp, enum ibv_wc_status st)
{
	struct fk_swqe *wqe;

	if (qp->sq.head == qp->sq.next)
		return;
	wqe = sq_wqe(&qp->sq, qp->sq.head);
	wqe->status = st;
	wqe->done = true;
	complete_head(qp);
}

/* Every PSN up to and including @psn arrived: retire what it covers. */
static void ack_upto(struct fk_qp *qp, uint32_t psn)
{
	bool progress = false;
	uint32_t i;

	for (i = qp->sq.head; i != qp->sq.next; i++) {
		struct fk_swqe *wqe = sq_wqe(&qp->sq, i);
		uint32_t last = psn_add(wqe->first_psn, wqe->npkts - 1);

		if (wqe->done)
			continue;
		if (wqe_is_rd(wqe) || psn_diff(psn, last) < 0)
			break;
		wqe->done = true;
		progress = true;
	}
	if (progress) {
		qp->req.late_since_ns = 0;
		qp->req.retries = qp->attr.retry_cnt;
		qp->req.rnr_retries = qp->attr.rnr_retry;
		qp->req.timer_ns = 0;
	}
	complete_head(qp);
}

static struct fk_swqe *find_rd(struct fk_qp *qp, uint32_t psn)
{
	uint32_t i;

	for (i = qp->sq.head; i != qp->sq.next; i++) {
		struct fk_swqe *wqe = sq_wqe(&qp->sq, i);

		if (wqe->done)
			continue;
		if (!wqe_is_rd(wqe))
			return NULL; /* an older non-READ is still unacked */
		if (psn_diff(psn, wqe->first_psn) >= 0 &&
		    psn_diff(psn, wqe->first_psn) < (int32_t)wqe->npkts)
			return wqe;
		return NULL;
	}
	return NULL;
}

static void rd_response(struct fk_qp *qp, const struct fk_pkt *pkt,
			const uint8_t *payload)
{
	struct fk_swqe *wqe;
	int st;

	ack_upto(qp, psn_add(pkt->psn, FK_PSN_MASK)); /* psn - 1 */
	wqe = find_rd(qp, pkt->psn);
	if (!wqe || psn_diff(pkt->psn, wqe->first_psn) != (int32_t)wqe->acked)
		return; /* duplicate or out of order: the timer recovers */
	if (pkt->op == FK_OP_ATOMIC_RESP)
		st = fk_sge_scatter(qp, wqe->sge, wqe->num_sge, 0,
				    &pkt->atomic_a, 8);
	else
		st = fk_sge_scatter(qp, wqe->sge, wqe->num_sge,
				    wqe->acked * FK_SEG, payload, pkt->len);
	wqe->acked++;
	if (st) {
		wqe->status = st;
		wqe->done = true;
	} else if (pkt->op == FK_OP_ATOMIC_RESP || wqe->acked == wqe->npkts) {
		wqe->done = true;
	}
	if (wqe->done)
		qp->req.rd_outstanding--;
	/* every response in order is progress, the last one or not */
	qp->req.late_since_ns = 0;
	qp->req.retries = qp->attr.retry_cnt;
	qp->req.timer_ns = 0;
	complete_head(qp);
}

static void rx_nak(struct fk_qp *qp, const struct fk_pkt *pkt)
{
	ack_upto(qp, psn_add(pkt->psn, FK_PSN_MASK));
	switch (pkt->syndrome) {
	case FK_NAK_SEQ:
		go_back(qp);
		break;
	case FK_NAK_RNR:
		if (qp->attr.rnr_retry != 7) {
			if (!qp->req.rnr_retries) {
				fail_head(qp, IBV_WC_RNR_RETRY_EXC_ERR);
				return;
			}
			qp->req.rnr_retries--;
		}
		go_back(qp);
		qp->req.rnr_until_ns =
			fab_now_ns() + rnr_usec[pkt->rnr_timer & 31] * 1000ull;
		break;
	case FK_NAK_ACCESS:
		fail_head(qp, IBV_WC_REM_ACCESS_ERR);
		break;
	case FK_NAK_INV_REQ:
		fail_head(qp, IBV_WC_REM_INV_REQ_ERR);
		break;
	default:
		fail_head(qp, IBV_WC_REM_OP_ERR);
		break;
	}
}

void fk_req_rx(struct fk_qp *qp, const struct fk_pkt *pkt,
	       const uint8_t *payload)
{
	if (qp->ibqp.qp_type != IBV_QPT_RC)
		return;
	if (qp->attr.qp_state != IBV_QPS_RTS &&
	    qp->attr.qp_state != IBV_QPS_SQD)
		return;
	switch (pkt->op) {
	case FK_OP_ACK:
		ack_upto(qp, pkt->psn);
		break;
	case FK_OP_NAK:
		rx_nak(qp, pkt);
		break;
	case FK_OP_READ_RESP:
	case FK_OP_ATOMIC_RESP:
		rd_response(qp, pkt, payload);
		break;
	default:
		return;
	}
	if (qp->attr.qp_state == IBV_QPS_RTS)
		fk_req_pump(qp);
	else
		fk_timer_update(qp);
}

/*
 * The timer expired, but what we sent is still in the peer's ring (@behind:
 * it did not run yet), or answers are waiting in ours (we did not): nothing
 * is known to be lost, so no retry is counted.  A real HCA answers whatever
 * its host does; ours needs its process to run, and on a loaded host that
 * can take longer than the whole retry budget.  A peer process that is
 * alive is late however long it takes (a starved or stopped process; a
 * real HCA would have answered for it); one that died keeps its packets
 * forever, and answers waiting in our own ring are taken as late for at
 * most FK_LATE_NS in a row without progress.
 */
#define FK_LATE_NS 2000000000ull

static bool late(struct fk_qp *qp, uint64_t now, bool *behind)
{
	struct fk_context *ctx = qp_ctx(qp);

	*behind = qp->req.marked && qp->dest_valid &&
		  !fab_consumed(ctx->port, &qp->dest, qp->req.mark);
	if (*behind && fab_dest_alive(ctx->port, &qp->dest))
		return true;
	if (!*behind && !fab_rx_pending(ctx->port))
		return false;
	if (!qp->req.late_since_ns)
		qp->req.late_since_ns = now;
	return now - qp->req.late_since_ns < FK_LATE_NS;
}

void fk_req_timer(struct fk_qp *qp, uint64_t now)
{
	if (qp->attr.qp_state != IBV_QPS_RTS)
		return;
	if (qp->req.timer_ns && now >= qp->req.timer_ns &&
	    qp->sq.head != qp->sq.next) {
		bool behind;

		if (late(qp, now, &behind)) {
			if (behind) { /* it is all still on its way */
				qp->req.timer_ns = now + rto_ns(qp);
				fk_timer_update(qp);
				return;
			}
		} else if (!qp->req.retries) {
			fail_head(qp, IBV_WC_RETRY_EXC_ERR);
			return;
		} else {
			qp->req.retries--;
		}
		go_back(qp);
	}
	fk_req_pump(qp);
}
