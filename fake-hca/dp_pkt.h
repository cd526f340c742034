/* SPDX-License-Identifier: MIT */
/*
 * The fake HCA's wire format and the calls between its transport files
 * (dp_post.c, dp_req.c, dp_resp.c, progress.c).
 *
 * A packet is one fk_pkt header followed by up to FK_SEG payload bytes.  An RC
 * or UC message of N bytes travels as max(1, ceil(N / FK_SEG)) packets with
 * consecutive PSNs, as an IB message travels as MTU-sized packets; a READ
 * request consumes as many PSNs as it has response packets.
 */
#ifndef FAKEHCA_DP_PKT_H
#define FAKEHCA_DP_PKT_H

#include "fake.h"

enum fk_op {
	FK_OP_SEND = 1, /* RC/UC SEND segment */
	FK_OP_WRITE, /* RC/UC RDMA WRITE segment */
	FK_OP_READ_REQ,
	FK_OP_READ_RESP,
	FK_OP_ATOMIC,
	FK_OP_ATOMIC_RESP,
	FK_OP_ACK, /* cumulative: every PSN <= psn arrived */
	FK_OP_NAK, /* syndrome says why, psn says where */
	FK_OP_UD_SEND,
};

enum fk_pkt_flags {
	FK_PKT_FIRST = 1 << 0,
	FK_PKT_LAST = 1 << 1,
	FK_PKT_IMM = 1 << 2,
	FK_PKT_SOLICITED = 1 << 3,
	FK_PKT_CMP_SWP = 1 << 4, /* atomic: compare and swap, else fetch-add */
	FK_PKT_GLOBAL = 1 << 5, /* UD: sender used a GRH */
};

enum fk_nak {
	FK_NAK_SEQ = 1, /* PSN sequence error: resend from psn */
	FK_NAK_RNR, /* no receive WQE: retry after the timer */
	FK_NAK_ACCESS, /* remote access error */
	FK_NAK_INV_REQ, /* invalid request (length, alignment, opcode) */
	FK_NAK_OP_ERR, /* remote operational error */
};

struct fk_pkt {
	uint8_t op;
	uint8_t flags;
	uint8_t syndrome; /* NAK */
	uint8_t rnr_timer; /* NAK RNR: responder's min_rnr_timer */
	uint32_t src_qpn;
	uint32_t dst_qpn;
	uint32_t psn;
	uint32_t imm; /* network order, as posted */
	uint32_t rkey;
	uint64_t va;
	uint32_t msg_len; /* SEND/WRITE: whole message; READ: bytes asked */
	uint32_t len; /* payload bytes in this packet */
	uint64_t atomic_a; /* swap or add */
	uint64_t atomic_b; /* compare */
	uint32_t qkey;
	uint32_t src_node;
	uint16_t src_lid;
	uint16_t pkey;
	uint32_t src_slot, src_gen; /* where replies go */
	union ibv_gid sgid;
	union ibv_gid dgid;
};

#define FK_PSN_MASK 0xffffffu

static inline uint32_t psn_add(uint32_t psn, uint32_t n)
{
	return (psn + n) & FK_PSN_MASK;
}

/* Signed distance a - b in 24-bit PSN space. */
static inline int32_t psn_diff(uint32_t a, uint32_t b)
{
	return (int32_t)((a - b) << 8) >> 8;
}

static inline uint32_t fk_npkts(uint32_t len)
{
	return len ? (len + FK_SEG - 1) / FK_SEG : 1;
}

static inline struct fk_swqe *sq_wqe(struct fk_sq *sq, uint32_t idx)
{
	return (struct fk_swqe *)(sq->buf +
				  (size_t)(idx % sq->max_wr) * sq->stride);
}

static inline struct fk_rwqe *rq_wqe(struct fk_rq *rq, uint32_t idx)
{
	return (struct fk_rwqe *)(rq->buf +
				  (size_t)(idx % rq->max_wr) * rq->stride);
}

static inline struct fk_context *qp_ctx(struct fk_qp *qp)
{
	return to_fctx(qp->ibqp.context);
}

/* dp_post.c */
struct fk_rwqe *fk_rq_peek(struct fk_qp *qp, struct fk_srq **srq_p);
void fk_rq_consume(struct fk_qp *qp, struct fk_srq *srq);
void fk_qp_flush(struct fk_qp *qp);
void fk_send_complete(struct fk_qp *qp, struct fk_swqe *wqe,
		      enum ibv_wc_status status);

/* dp_req.c */
void fk_req_pump(struct fk_qp *qp);
void fk_req_rx(struct fk_qp *qp, const struct fk_pkt *pkt,
	       const uint8_t *payload);
void fk_req_timer(struct fk_qp *qp, uint64_t now);
void fk_req_reset(struct fk_qp *qp);
/* Fill the common header fields of a packet leaving @qp. */
void fk_pkt_init(struct fk_qp *qp, struct fk_pkt *pkt, uint8_t op);
/* Reply to the sender of @in (ACK, NAK, responses) from @qp. */
int fk_reply(struct fk_qp *qp, const struct fk_pkt *in, struct fk_pkt *out,
	     const void *payload, size_t len);

/* dp_resp.c */
void fk_resp_rx(struct fk_qp *qp, const struct fk_pkt *pkt,
		const uint8_t *payload);
void fk_resp_reset(struct fk_qp *qp);

/* progress.c: keep @qp on the context's timer list while it needs one. */
void fk_timer_update(struct fk_qp *qp);

/* SGE copy helpers (dp_post.c): gather from / scatter into SGEs checked
 * against the QP's PD.  Return 0 or an ibv_wc_status. */
int fk_sge_gather(struct fk_qp *qp, const struct ibv_sge *sge, uint32_t n,
		  uint32_t off, void *dst, uint32_t len);
int fk_sge_scatter(struct fk_qp *qp, const struct ibv_sge *sge, uint32_t n,
		   uint32_t off, const void *src, uint32_t len);

#endif /* FAKEHCA_DP_PKT_H */
