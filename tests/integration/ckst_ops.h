/* SPDX-License-Identifier: MIT */
/* ckpt_stream's traffic: what a rank posts, and what it checks on arrival. */
#ifndef CKST_OPS_H
#define CKST_OPS_H

#include <stddef.h>

/* A message with a checksum in send slot @slot of queue @q. */
static struct ibv_sge ck_msg(struct ck *c, int q, uint32_t kind, uint32_t seq,
			     uint32_t len)
{
	struct ck_msg *m = (void *)c->m->sbuf[q][c->posted[q] % SQ_MAX];
	uint32_t i;

	m->kind = kind;
	m->seq = seq;
	m->len = len;
	for (i = 0; i < len; i++)
		m->data[i] = ck_pat(seq, i);
	m->sum = ck_sum(m->data, len);
	return (struct ibv_sge){ (uintptr_t)m, (uint32_t)sizeof(*m) + len,
				 c->mr->lkey };
}

static bool ck_rc_credit(struct ck *c)
{
	return c->rc_sent + c->w_sent + c->fin_sent - c->m->credit[0] < WINDOW;
}

static int op_send(struct ck *c)
{
	uint32_t len = 16 + (c->rc_sent * 37) % (MSGMAX - 64);
	struct ibv_send_wr wr = { .opcode = IBV_WR_SEND, .num_sge = 1 };
	struct ibv_sge sge;

	if (!ck_rc_credit(c) || !ck_room(c, Q_RC))
		return 0;
	if (c->rc_sent % 5 == 0)
		len = 8; /* small: inline, reused at once */
	sge = ck_msg(c, Q_RC, K_RC, c->rc_sent, len);
	wr.sg_list = &sge;
	if (len == 8)
		wr.send_flags = IBV_SEND_INLINE;
	c->rc_sent++;
	return ck_post(c, Q_RC, &wr, false);
}

static int op_write(struct ck *c)
{
	uint32_t seq = c->w_sent, i;
	uint8_t *b = c->m->sbuf[Q_RC][c->posted[Q_RC] % SQ_MAX];
	struct ibv_sge sge = { (uintptr_t)b, WSZ, c->mr->lkey };
	struct ibv_send_wr wr = { .opcode = IBV_WR_RDMA_WRITE_WITH_IMM,
				  .sg_list = &sge,
				  .num_sge = 1,
				  .imm_data = htonl(seq) };

	if (!ck_rc_credit(c) || !ck_room(c, Q_RC))
		return 0;
	for (i = 0; i < WSZ; i++)
		b[i] = ck_pat(seq ^ 0x5555, i);
	ck_rdma(&wr, c, offsetof(struct ck_mem, wslot[seq % SLOTS]));
	c->w_sent++;
	return ck_post(c, Q_RC, &wr, false);
}

static int op_read(struct ck *c)
{
	uint32_t seq = c->rd_sent;
	struct ibv_sge sge = { (uintptr_t)c->m->rd[seq % RDS], 64,
			       c->mr->lkey };
	struct ibv_send_wr wr = { .opcode = IBV_WR_RDMA_READ,
				  .sg_list = &sge,
				  .num_sge = 1 };

	if (seq - c->rd_done >= RDS || !ck_room(c, Q_RC))
		return 0;
	ck_rdma(&wr, c, offsetof(struct ck_mem, rdonly) + (seq % 64) * 64);
	c->rd_sent++;
	return ck_post(c, Q_RC, &wr, true);
}

/* FETCH_ADD (@cas false) or CMP_SWP on the peer's counters. */
static int op_atomic(struct ck *c, bool cas)
{
	uint32_t n = c->fadd_sent + c->cas_sent;
	struct ibv_sge sge = { (uintptr_t)&c->m->at[n % RDS], 8, c->mr->lkey };
	struct ibv_send_wr wr = { .sg_list = &sge, .num_sge = 1 };

	if (n - c->fadd_done - c->cas_done >= RDS || !ck_room(c, Q_RC))
		return 0;
	wr.wr.atomic.remote_addr =
		c->peer.base + (cas ? offsetof(struct ck_mem, cas) :
				      offsetof(struct ck_mem, fadd));
	wr.wr.atomic.rkey = c->peer.rkey;
	if (cas) {
		wr.opcode = IBV_WR_ATOMIC_CMP_AND_SWP;
		wr.wr.atomic.compare_add = c->cas_sent;
		wr.wr.atomic.swap = c->cas_sent + 1;
		c->cas_sent++;
	} else {
		wr.opcode = IBV_WR_ATOMIC_FETCH_AND_ADD;
		wr.wr.atomic.compare_add = 1;
		c->fadd_sent++;
	}
	return ck_post(c, Q_RC, &wr, true);
}

static int op_imm(struct ck *c)
{
	struct ibv_send_wr wr = { .opcode = IBV_WR_SEND_WITH_IMM,
				  .num_sge = 1,
				  .imm_data = htonl(c->imm_sent) };
	struct ibv_sge sge;

	if (c->imm_sent - c->m->credit[1] >= WINDOW || !ck_room(c, Q_SRQ))
		return 0;
	sge = ck_msg(c, Q_SRQ, K_IMM, c->imm_sent, 24);
	wr.sg_list = &sge;
	c->imm_sent++;
	return ck_post(c, Q_SRQ, &wr, false);
}

static int op_ud(struct ck *c)
{
	struct ibv_send_wr wr = { .opcode = IBV_WR_SEND, .num_sge = 1 };
	struct ibv_sge sge;

	if (c->ud_sent >= sizeof(c->ud_seen) * 8 || !ck_room(c, Q_UD) ||
	    c->ud_sent - c->m->credit[2] >= WINDOW)
		return 0;
	sge = ck_msg(c, Q_UD, K_UD, c->ud_sent, 32);
	wr.sg_list = &sge;
	c->ud_sent++;
	return ck_post(c, Q_UD, &wr, false);
}

/* No credits: the peer posts receives when it pleases (RNR). */
static int op_rnr(struct ck *c)
{
	struct ibv_send_wr wr = { .opcode = IBV_WR_SEND, .num_sge = 1 };
	struct ibv_sge sge;

	if (c->rnr_sent - c->done[Q_RNR] >= 8 || !ck_room(c, Q_RNR))
		return 0;
	sge = ck_msg(c, Q_RNR, K_RNR, c->rnr_sent, 40 + c->rnr_sent % 200);
	wr.sg_list = &sge;
	c->rnr_sent++;
	return ck_post(c, Q_RNR, &wr, true);
}

/* A receive to Q_RNR every 2 ms at most, one at a time (all at the end). */
static int ck_rnr_recv(struct ck *c)
{
	double now;

	if (c->rnr_posted - c->rnr_got >= (c->fin_got ? RQ : 1))
		return 0;
	now = cd_now();
	if (!c->fin_got && now - c->rnr_last < 0.002)
		return 0;
	c->rnr_last = now;
	return ck_post_recv(c, Q_RNR, (int)(c->rnr_posted++ % RQ));
}

/* Tell the peer how many of its messages we consumed. */
static int op_credit(struct ck *c, bool force)
{
	uint64_t *src = c->m->credit_src[c->posted[Q_RC] % SQ_MAX];
	struct ibv_sge sge = { (uintptr_t)src, 24, c->mr->lkey };
	struct ibv_send_wr wr = { .opcode = IBV_WR_RDMA_WRITE,
				  .sg_list = &sge,
				  .num_sge = 1 };

	if (!force && c->consumed[0] - c->credited[0] < 8 &&
	    c->consumed[1] - c->credited[1] < 8 &&
	    c->consumed[2] - c->credited[2] < 8)
		return 0;
	if (!ck_room(c, Q_RC))
		return 0;
	src[0] = c->credited[0] = c->consumed[0];
	src[1] = c->credited[1] = c->consumed[1];
	src[2] = c->credited[2] = c->consumed[2];
	ck_rdma(&wr, c, offsetof(struct ck_mem, credit));
	return ck_post(c, Q_RC, &wr, false);
}

static void ck_send_wc(struct ck *c, const struct ibv_wc *wc)
{
	int q = (int)(wc->wr_id >> 56), op = (int)(wc->wr_id >> 48) & 0xff;
	uint64_t idx = wc->wr_id & 0xffffffffffffull, v;
	uint32_t i, at;

	if (wc->status != IBV_WC_SUCCESS)
		ck_fail(c, "send completion status", wc->status, idx);
	if (q >= NQ || idx < c->done[q])
		ck_fail(c, "send completion twice or out of order", idx,
			c->done[q]);
	c->done[q] = idx + 1;
	if (op == IBV_WR_RDMA_READ) {
		for (i = 0; i < 64; i++)
			if (((uint8_t *)c->m->rd[c->rd_done % RDS])[i] !=
			    ck_pat(c->rd_done % 64, i))
				ck_fail(c, "READ data", c->rd_done, i);
		c->rd_done++;
	} else if (op == IBV_WR_ATOMIC_FETCH_AND_ADD ||
		   op == IBV_WR_ATOMIC_CMP_AND_SWP) {
		at = c->fadd_done + c->cas_done;
		v = c->m->at[at % RDS];
		if (op == IBV_WR_ATOMIC_FETCH_AND_ADD && v != c->fadd_done++)
			ck_fail(c, "FETCH_ADD result", v, c->fadd_done - 1);
		if (op == IBV_WR_ATOMIC_CMP_AND_SWP && v != c->cas_done++)
			ck_fail(c, "CMP_SWP result", v, c->cas_done - 1);
	}
	if (q == Q_RC && c->fin_sent && idx >= c->fin_idx)
		c->fin_done = true;
}

static void ck_check_msg(struct ck *c, const struct ck_msg *m, uint32_t kind,
			 uint32_t seq)
{
	if (m->kind != kind || m->seq != seq || m->len > MSGMAX ||
	    m->sum != ck_sum(m->data, m->len))
		ck_fail(c, "message lost, doubled or damaged", m->seq, seq);
}

static void ck_recv_rc(struct ck *c, const struct ibv_wc *wc, const void *b)
{
	const struct ck_msg *m = b;
	uint32_t i, seq;

	if (wc->opcode == IBV_WC_RECV_RDMA_WITH_IMM) {
		seq = ntohl(wc->imm_data);
		if (seq != c->w_got)
			ck_fail(c, "WRITE_WITH_IMM lost or doubled", seq,
				c->w_got);
		for (i = 0; i < WSZ; i++)
			if (c->m->wslot[seq % SLOTS][i] !=
			    ck_pat(seq ^ 0x5555, i))
				ck_fail(c, "RDMA WRITE data", seq, i);
		c->w_got++;
	} else if (m->kind == K_FIN) {
		memcpy(&c->fin, m->data, sizeof(c->fin));
		c->fin_got = true;
	} else {
		ck_check_msg(c, m, K_RC, c->rc_got++);
	}
	c->consumed[0]++;
}

static void ck_recv_wc(struct ck *c, const struct ibv_wc *wc)
{
	int q = (int)(wc->wr_id >> 56), i = (int)(wc->wr_id & 0xff);
	const uint8_t *b = c->m->rbuf[q][i];
	const struct ck_msg *m;

	if (wc->status != IBV_WC_SUCCESS)
		ck_fail(c, "receive completion status", wc->status, q);
	if (q >= NQ || wc->qp_num != c->qp[q == Q_SRQ ? Q_SRQ : q]->qp_num)
		ck_fail(c, "receive on the wrong QP", wc->qp_num, q);
	if (q == Q_RC) {
		ck_recv_rc(c, wc, b);
	} else if (q == Q_RNR) {
		ck_check_msg(c, (const void *)b, K_RNR, c->rnr_got++);
		return; /* posted again at its own pace */
	} else if (q == Q_SRQ) {
		if (!(wc->wc_flags & IBV_WC_WITH_IMM) ||
		    ntohl(wc->imm_data) != c->imm_got)
			ck_fail(c, "SEND_WITH_IMM lost or doubled",
				ntohl(wc->imm_data), c->imm_got);
		ck_check_msg(c, (const void *)b, K_IMM, c->imm_got++);
		c->consumed[1]++;
	} else {
		m = (const void *)(b + 40);
		if (m->seq >= sizeof(c->ud_seen) * 8 ||
		    (c->ud_seen[m->seq / 8] & (1 << m->seq % 8)))
			ck_fail(c, "UD datagram doubled", m->seq, 0);
		ck_check_msg(c, m, K_UD, m->seq);
		c->ud_seen[m->seq / 8] |= 1 << m->seq % 8;
		c->ud_got++;
		c->consumed[2]++;
	}
	if (ck_post_recv(c, q, i))
		ck_fail(c, "post_recv", q, i);
}

static void ck_poll(struct ck *c)
{
	struct ibv_wc wc[16];
	int n, i;

	while ((n = ibv_poll_cq(c->scq, 16, wc)) > 0)
		for (i = 0; i < n; i++)
			ck_send_wc(c, &wc[i]);
	if (n < 0)
		ck_fail(c, "poll_cq", n, 0);
	while ((n = ibv_poll_cq(c->rcq, 16, wc)) > 0)
		for (i = 0; i < n; i++)
			ck_recv_wc(c, &wc[i]);
	if (n < 0)
		ck_fail(c, "poll_cq", n, 1);
}

#include "ckst_setup.h"

#endif /* CKST_OPS_H */
