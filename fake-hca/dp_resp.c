/* SPDX-License-Identifier: MIT */
/*
 * Responder side of the fake HCA transport: delivers SENDs into receive WQEs,
 * applies RDMA WRITEs, serves READs and atomics, and answers with ACK/NAK.
 *
 * RC: a packet whose PSN is the expected one is executed exactly once; an
 * older PSN is a duplicate (re-ACKed, READ re-executed, atomic answered from
 * the replay cache, never applied twice); a newer PSN means a loss: one
 * sequence NAK per gap.  Errors follow rxe: access violations NAK with a
 * remote access error, a receive buffer too short completes with
 * IBV_WC_LOC_LEN_ERR and NAKs an invalid request; both move the QP to ERR.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "dp_pkt.h"

#define FK_REPLY_TRIES 2000 /* destination ring full: give up, they retry */

void fk_resp_reset(struct fk_qp *qp)
{
	memset(&qp->resp, 0, sizeof(qp->resp));
}

static void send_ack(struct fk_qp *qp, const struct fk_pkt *in, uint8_t op,
		     uint8_t syndrome, uint32_t psn)
{
	struct fk_pkt out;

	fk_pkt_init(qp, &out, op);
	out.psn = psn;
	out.syndrome = syndrome;
	out.rnr_timer = qp->attr.min_rnr_timer;
	fk_reply(qp, in, &out, NULL, 0); /* a lost ACK is recovered by retry */
}

static void reply_reliably(struct fk_qp *qp, const struct fk_pkt *in,
			   struct fk_pkt *out, const void *pl, size_t len)
{
	int i;

	for (i = 0; i < FK_REPLY_TRIES; i++) {
		if (fk_reply(qp, in, out, pl, len) != -EAGAIN)
			return;
		sched_yield();
	}
}

static void recv_complete(struct fk_qp *qp, const struct fk_pkt *pkt,
			  uint64_t wr_id, enum ibv_wc_status st,
			  enum ibv_wc_opcode opc, uint32_t len)
{
	struct fk_context *ctx = qp_ctx(qp);
	struct ibv_wc wc = {
		.wr_id = wr_id,
		.status = st,
		.opcode = opc,
		.byte_len = len,
		.qp_num = qp->ibqp.qp_num,
		.src_qp = pkt->src_qpn,
	};

	if (pkt->flags & FK_PKT_IMM) {
		wc.imm_data = pkt->imm;
		wc.wc_flags |= IBV_WC_WITH_IMM;
	}
	if (ctx->dev->link_layer == IBV_LINK_LAYER_INFINIBAND) {
		wc.slid = pkt->src_lid;
	} else {
		/* rxe (do_complete): every RoCE packet has a GRH; src_qp
		 * comes from a DETH, which only UD packets carry */
		wc.src_qp = 0;
		if (st == IBV_WC_SUCCESS)
			wc.wc_flags |= IBV_WC_GRH;
	}
	fk_cq_push(to_fcq(qp->ibqp.recv_cq), &wc,
		   st != IBV_WC_SUCCESS || (pkt->flags & FK_PKT_SOLICITED));
}

/* Take the next receive WQE into resp.rwqe_buf; false if there is none. */
static bool take_rwqe(struct fk_qp *qp)
{
	struct fk_srq *srq;
	struct fk_rwqe *w;

	if (qp->resp.rwqe_held) { /* UC: kept from a dropped message */
		qp->resp.rwqe_held = false;
		qp->resp.rwqe = (struct fk_rwqe *)qp->resp.rwqe_buf;
		return true;
	}
	w = fk_rq_peek(qp, &srq);
	if (!w)
		return false;
	memcpy(qp->resp.rwqe_buf, w,
	       sizeof(*w) + w->num_sge * sizeof(struct ibv_sge));
	fk_rq_consume(qp, srq);
	qp->resp.rwqe = (struct fk_rwqe *)qp->resp.rwqe_buf;
	return true;
}

static void resp_error(struct fk_qp *qp, const struct fk_pkt *pkt,
		       uint8_t syndrome)
{
	if (qp->ibqp.qp_type == IBV_QPT_RC)
		send_ack(qp, pkt, FK_OP_NAK, syndrome, pkt->psn);
	fk_qp_to_error(qp, false);
}

static void *rkey_addr(struct fk_qp *qp, uint32_t rkey, uint64_t va,
		       uint64_t len, unsigned int access)
{
	struct fk_mr *mr = fk_mr_lookup(qp_ctx(qp), rkey);

	return mr ? fk_mr_addr(mr, to_fpd(qp->ibqp.pd), va, len, access) : NULL;
}

/* SEND segment (RC and UC).  Returns false on RNR (nothing consumed). */
static bool rx_send(struct fk_qp *qp, const struct fk_pkt *pkt,
		    const uint8_t *payload)
{
	struct fk_resp *r = &qp->resp;
	int st;

	if (pkt->flags & FK_PKT_FIRST) {
		if (!take_rwqe(qp))
			return false;
		r->in_msg = true;
		r->msg_off = 0;
		r->msg_psn = pkt->psn;
		if (pkt->msg_len > r->rwqe->total_len) {
			r->in_msg = false;
			recv_complete(qp, pkt, r->rwqe->wr_id,
				      IBV_WC_LOC_LEN_ERR, IBV_WC_RECV, 0);
			r->rwqe = NULL;
			resp_error(qp, pkt, FK_NAK_INV_REQ);
			return true;
		}
	} else if (!r->in_msg) {
		return true; /* tail of a message we dropped (UC) */
	}
	st = fk_sge_scatter(qp, r->rwqe->sge, r->rwqe->num_sge, r->msg_off,
			    payload, pkt->len);
	if (st) {
		r->in_msg = false;
		recv_complete(qp, pkt, r->rwqe->wr_id, st, IBV_WC_RECV, 0);
		r->rwqe = NULL;
		resp_error(qp, pkt, FK_NAK_OP_ERR);
		return true;
	}
	r->msg_off += pkt->len;
	r->epsn = psn_add(pkt->psn, 1);
	if (pkt->flags & FK_PKT_LAST) {
		r->in_msg = false;
		recv_complete(qp, pkt, r->rwqe->wr_id, IBV_WC_SUCCESS,
			      IBV_WC_RECV, r->msg_off);
		r->rwqe = NULL;
		if (qp->ibqp.qp_type == IBV_QPT_RC)
			send_ack(qp, pkt, FK_OP_ACK, 0, pkt->psn);
	}
	return true;
}

/* RDMA WRITE segment (RC and UC).  Returns false on RNR (WRITE with IMM). */
static bool rx_write(struct fk_qp *qp, const struct fk_pkt *pkt,
		     const uint8_t *payload)
{
	struct fk_resp *r = &qp->resp;
	uint64_t first_va =
		pkt->va - (uint64_t)psn_diff(pkt->psn, r->msg_psn) * FK_SEG;
	void *a;

	if (pkt->flags & FK_PKT_FIRST) {
		r->msg_psn = pkt->psn;
		first_va = pkt->va;
		if (pkt->msg_len &&
		    !rkey_addr(qp, pkt->rkey, first_va, pkt->msg_len,
			       IBV_ACCESS_REMOTE_WRITE)) {
			r->in_msg = false;
			if (qp->ibqp.qp_type == IBV_QPT_RC)
				resp_error(qp, pkt, FK_NAK_ACCESS);
			return true;
		}
		r->in_msg = true;
		r->write_rkey = pkt->rkey;
		r->write_va = first_va;
	} else if (!r->in_msg) {
		return true;
	}
	if (pkt->len) {
		a = rkey_addr(qp, pkt->rkey, pkt->va, pkt->len,
			      IBV_ACCESS_REMOTE_WRITE);
		if (!a) {
			r->in_msg = false;
			if (qp->ibqp.qp_type == IBV_QPT_RC)
				resp_error(qp, pkt, FK_NAK_ACCESS);
			return true;
		}
		memcpy(a, payload, pkt->len);
	}
	if ((pkt->flags & FK_PKT_LAST) && (pkt->flags & FK_PKT_IMM)) {
		if (!take_rwqe(qp)) {
			r->epsn =
				r->msg_psn; /* the whole message comes again */
			r->in_msg = false;
			return false;
		}
		recv_complete(qp, pkt, r->rwqe->wr_id, IBV_WC_SUCCESS,
			      IBV_WC_RECV_RDMA_WITH_IMM, pkt->msg_len);
		r->rwqe = NULL;
	}
	r->epsn = psn_add(pkt->psn, 1);
	if (pkt->flags & FK_PKT_LAST) {
		r->in_msg = false;
		if (qp->ibqp.qp_type == IBV_QPT_RC)
			send_ack(qp, pkt, FK_OP_ACK, 0, pkt->psn);
	}
	return true;
}

static void rx_read(struct fk_qp *qp, const struct fk_pkt *pkt, bool dup)
{
	uint32_t n = fk_npkts(pkt->msg_len), i;
	const uint8_t *a = NULL;
	struct fk_pkt out;

	if (pkt->msg_len) {
		a = rkey_addr(qp, pkt->rkey, pkt->va, pkt->msg_len,
			      IBV_ACCESS_REMOTE_READ);
		if (!a) {
			if (!dup)
				resp_error(qp, pkt, FK_NAK_ACCESS);
			return;
		}
	}
	if (!dup)
		qp->resp.epsn = psn_add(pkt->psn, n);
	for (i = 0; i < n; i++) {
		uint32_t len = pkt->msg_len - i * FK_SEG;

		if (len > FK_SEG)
			len = FK_SEG;
		fk_pkt_init(qp, &out, FK_OP_READ_RESP);
		out.psn = psn_add(pkt->psn, i);
		out.len = len;
		out.msg_len = pkt->msg_len;
		reply_reliably(qp, pkt, &out, a ? a + (size_t)i * FK_SEG : NULL,
			       len);
	}
}

static void rx_atomic(struct fk_qp *qp, const struct fk_pkt *pkt, bool dup)
{
	struct fk_resp *r = &qp->resp;
	struct fk_pkt out;
	uint64_t *p, orig;
	unsigned int slot;

	if (dup) {
		for (slot = 0; slot < FK_ATOMIC_CACHE; slot++)
			if (r->atomic_cache[slot].valid &&
			    r->atomic_cache[slot].psn == pkt->psn)
				break;
		if (slot == FK_ATOMIC_CACHE)
			return; /* not one of ours: as rxe, no answer */
		orig = r->atomic_cache[slot].orig;
	} else {
		if (pkt->va & 7) {
			resp_error(qp, pkt, FK_NAK_INV_REQ);
			return;
		}
		p = rkey_addr(qp, pkt->rkey, pkt->va, 8,
			      IBV_ACCESS_REMOTE_ATOMIC);
		if (!p) {
			resp_error(qp, pkt, FK_NAK_ACCESS);
			return;
		}
		if (pkt->flags & FK_PKT_CMP_SWP) {
			orig = pkt->atomic_b;
			__atomic_compare_exchange_n(p, &orig, pkt->atomic_a,
						    false, __ATOMIC_SEQ_CST,
						    __ATOMIC_SEQ_CST);
		} else {
			orig = __atomic_fetch_add(p, pkt->atomic_a,
						  __ATOMIC_SEQ_CST);
		}
		slot = r->atomic_next++ % FK_ATOMIC_CACHE;
		r->atomic_cache[slot].psn = pkt->psn;
		r->atomic_cache[slot].orig = orig;
		r->atomic_cache[slot].valid = true;
		r->epsn = psn_add(pkt->psn, 1);
	}
	fk_pkt_init(qp, &out, FK_OP_ATOMIC_RESP);
	out.psn = pkt->psn;
	out.atomic_a = orig;
	reply_reliably(qp, pkt, &out, NULL, 0);
}

static void rc_duplicate(struct fk_qp *qp, const struct fk_pkt *pkt)
{
	switch (pkt->op) {
	case FK_OP_READ_REQ:
		rx_read(qp, pkt, true);
		break;
	case FK_OP_ATOMIC:
		rx_atomic(qp, pkt, true);
		break;
	default:
		if (pkt->flags & FK_PKT_LAST)
			send_ack(qp, pkt, FK_OP_ACK, 0,
				 psn_add(qp->resp.epsn, FK_PSN_MASK));
		break;
	}
}

static void rc_rx(struct fk_qp *qp, const struct fk_pkt *pkt,
		  const uint8_t *payload)
{
	int32_t d = psn_diff(pkt->psn, qp->resp.epsn);
	bool ok = true;

	if (d < 0) {
		rc_duplicate(qp, pkt);
		return;
	}
	if (d > 0) {
		if (!qp->resp.nak_seq_sent) {
			qp->resp.nak_seq_sent = true;
			send_ack(qp, pkt, FK_OP_NAK, FK_NAK_SEQ, qp->resp.epsn);
		}
		return;
	}
	qp->resp.nak_seq_sent = false;
	switch (pkt->op) {
	case FK_OP_SEND:
		ok = rx_send(qp, pkt, payload);
		break;
	case FK_OP_WRITE:
		ok = rx_write(qp, pkt, payload);
		break;
	case FK_OP_READ_REQ:
		rx_read(qp, pkt, false);
		break;
	case FK_OP_ATOMIC:
		rx_atomic(qp, pkt, false);
		break;
	default:
		break;
	}
	if (!ok)
		send_ack(qp, pkt, FK_OP_NAK, FK_NAK_RNR, qp->resp.epsn);
}

static void uc_rx(struct fk_qp *qp, const struct fk_pkt *pkt,
		  const uint8_t *payload)
{
	struct fk_resp *r = &qp->resp;

	if ((pkt->flags & FK_PKT_FIRST) && r->in_msg && r->rwqe &&
	    pkt->op == FK_OP_SEND) {
		r->rwqe_held = true; /* the last message lost its tail */
		r->in_msg = false;
	}
	if (!(pkt->flags & FK_PKT_FIRST) && pkt->psn != r->epsn) {
		/* a packet of this message was lost: drop the rest of it */
		if (r->in_msg && r->rwqe)
			r->rwqe_held = true;
		r->in_msg = false;
		return;
	}
	if (pkt->op == FK_OP_SEND) {
		if (!rx_send(qp, pkt, payload))
			r->in_msg = false; /* no WQE: UC drops the message */
	} else if (pkt->op == FK_OP_WRITE) {
		if (!rx_write(qp, pkt, payload))
			r->in_msg = false;
	}
	if (pkt->flags & FK_PKT_FIRST)
		r->epsn = psn_add(pkt->psn, 1);
}

static void put_grh(uint8_t *grh, const struct fk_pkt *pkt, uint32_t len)
{
	static const uint8_t v4pfx[12] = { 0, 0, 0, 0, 0,    0,
					   0, 0, 0, 0, 0xff, 0xff };

	memset(grh, 0, 40);
	if (!memcmp(pkt->dgid.raw, v4pfx, 12)) {
		uint8_t *ip = grh + 20; /* RoCE v2 over IPv4, as rxe lays it */
		uint16_t tot = (uint16_t)(len + 28);

		ip[0] = 0x45;
		ip[2] = tot >> 8;
		ip[3] = tot & 0xff;
		ip[8] = 64;
		ip[9] = 17;
		memcpy(ip + 12, pkt->sgid.raw + 12, 4);
		memcpy(ip + 16, pkt->dgid.raw + 12, 4);
		return;
	}
	grh[0] = 0x60;
	grh[4] = (uint8_t)((len + 8) >> 8);
	grh[5] = (uint8_t)(len + 8);
	grh[6] = 17;
	grh[7] = 64;
	memcpy(grh + 8, pkt->sgid.raw, 16);
	memcpy(grh + 24, pkt->dgid.raw, 16);
}

static void ud_rx(struct fk_qp *qp, const struct fk_pkt *pkt,
		  const uint8_t *payload)
{
	struct fk_rwqe *w;
	uint8_t grh[40];
	struct ibv_wc wc;
	int st;

	if (pkt->op != FK_OP_UD_SEND || pkt->qkey != qp->attr.qkey)
		return;
	if (!take_rwqe(qp))
		return; /* UD: no receive posted, the packet is lost */
	w = qp->resp.rwqe;
	qp->resp.rwqe = NULL;
	memset(&wc, 0, sizeof(wc));
	if (pkt->len + 40 > w->total_len) {
		recv_complete(qp, pkt, w->wr_id, IBV_WC_LOC_LEN_ERR,
			      IBV_WC_RECV, 0);
		fk_qp_to_error(qp, false); /* a receive error ends the QP */
		return;
	}
	put_grh(grh, pkt, pkt->len);
	st = fk_sge_scatter(qp, w->sge, w->num_sge, 0, grh, 40);
	if (!st)
		st = fk_sge_scatter(qp, w->sge, w->num_sge, 40, payload,
				    pkt->len);
	wc.wr_id = w->wr_id;
	wc.status = st ? st : IBV_WC_SUCCESS;
	wc.opcode = IBV_WC_RECV;
	wc.byte_len = st ? 0 : pkt->len + 40;
	wc.qp_num = qp->ibqp.qp_num;
	wc.src_qp = pkt->src_qpn;
	wc.pkey_index = 0;
	if (pkt->flags & FK_PKT_GLOBAL)
		wc.wc_flags |= IBV_WC_GRH;
	if (pkt->flags & FK_PKT_IMM) {
		wc.imm_data = pkt->imm;
		wc.wc_flags |= IBV_WC_WITH_IMM;
	}
	if (qp_ctx(qp)->dev->link_layer == IBV_LINK_LAYER_INFINIBAND)
		wc.slid = pkt->src_lid;
	fk_cq_push(to_fcq(qp->ibqp.recv_cq), &wc,
		   st || (pkt->flags & FK_PKT_SOLICITED));
	if (st)
		fk_qp_to_error(qp, false);
}

void fk_resp_rx(struct fk_qp *qp, const struct fk_pkt *pkt,
		const uint8_t *payload)
{
	enum ibv_qp_state st = qp->attr.qp_state;

	if (st != IBV_QPS_RTR && st != IBV_QPS_RTS && st != IBV_QPS_SQD &&
	    st != IBV_QPS_SQE)
		return;
	switch (qp->ibqp.qp_type) {
	case IBV_QPT_UD:
		ud_rx(qp, pkt, payload);
		break;
	case IBV_QPT_UC:
		if (pkt->src_qpn == qp->attr.dest_qp_num)
			uc_rx(qp, pkt, payload);
		break;
	case IBV_QPT_RC:
		if (pkt->src_qpn == qp->attr.dest_qp_num)
			rc_rx(qp, pkt, payload);
		break;
	default:
		break;
	}
}
