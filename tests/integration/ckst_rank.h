/* SPDX-License-Identifier: MIT */
/*
 * One rank of ckpt_stream: a plain verbs program (the shim is preloaded
 * into it) that streams to its peer until the coordinator says stop (file
 * DIR/stop), then tells the peer what it sent (FIN) and checks that
 * everything the peer sent arrived exactly once.  Flow control by credits: the receiver RDMA-WRITEs how many
 * receives it consumed into the sender's memory, so no SEND ever meets an
 * empty receive queue.
 */
#ifndef CKST_RANK_H
#define CKST_RANK_H

#include <arpa/inet.h>
#include <infiniband/verbs.h>

#define RQ 64 /* receives posted per queue */
/* messages in flight per queue: CKST_WINDOW (docs/drain-rebuild.md) */
static unsigned int ck_window = RQ - 8;
#define WINDOW ck_window
#define SLOTS 64 /* RDMA WRITE slots (>= WINDOW) */
#define WSZ 256
#define MSGMAX 1024
#define RDS 16 /* READ / atomic destinations */
#define SQ_MAX 200
#define QKEY 0x0badcafe

enum ck_kind { K_RC = 1, K_FIN, K_IMM, K_UD, K_RNR };
/* QPs, in wr_id's top byte.  Q_RNR's receiver posts receives slowly, so
 * its sender is held up by RNR at most checkpoints (drain/early.c). */
enum { Q_RC, Q_SRQ, Q_UD, Q_RNR, NQ };
enum { OP_SEND, OP_WRITE, OP_CREDIT, OP_READ, OP_FADD, OP_CAS, OP_IMM, OP_UD };

struct ck_msg {
	uint32_t kind, seq, len, sum;
	uint8_t data[];
};

/* FIN's data: what its sender issued */
struct ck_fin {
	uint64_t rc, imm, w, fadd, cas, ud, rnr;
};

/* What the peer may touch (one MR for everything). */
struct ck_mem {
	volatile uint64_t credit[3]; /* peer consumed: RC, SRQ, UD messages */
	uint64_t fadd, cas; /* the peer's atomics land here */
	uint8_t wslot[SLOTS][WSZ];
	uint8_t rdonly[4096];
	/* local */
	uint8_t sbuf[NQ][SQ_MAX][MSGMAX];
	uint8_t rbuf[NQ][RQ][40 + MSGMAX];
	uint64_t rd[RDS][8], at[RDS];
	uint64_t credit_src[SQ_MAX][3];
};

struct ck_peer {
	uint16_t lid;
	union ibv_gid gid;
	uint32_t qpn[NQ], rkey;
	uint64_t base;
};

struct ck {
	int rank;
	bool stop; /* told to finish: FIN, then wait */
	const char *dir;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *scq, *rcq;
	struct ibv_srq *srq;
	struct ibv_qp *qp[NQ];
	struct ibv_ah *ah;
	struct ibv_mr *mr;
	struct ck_mem *m;
	struct ck_peer me, peer;
	bool global;
	/* sender */
	uint64_t posted[NQ], done[NQ]; /* WRs, and how many completed */
	uint32_t rc_sent, imm_sent, w_sent, rd_sent, fadd_sent, cas_sent;
	uint32_t ud_sent, rd_done, fadd_done, cas_done, ops, rnr_sent;
	bool fin_sent, fin_done;
	uint64_t fin_idx;
	/* receiver */
	uint32_t rc_got, imm_got, w_got, ud_got, consumed[3], credited[3];
	uint32_t rnr_got, rnr_posted;
	double rnr_last; /* when a receive was last posted to Q_RNR */
	uint8_t ud_seen[1 << 20];
	struct ck_fin fin;
	bool fin_got;
};

static int ck_fail(struct ck *c, const char *what, uint64_t a, uint64_t b)
{
	fprintf(stderr, "rank %d: %s (%llu, %llu)\n", c->rank, what,
		(unsigned long long)a, (unsigned long long)b);
	exit(3);
}

static uint8_t ck_pat(uint32_t seq, uint32_t i)
{
	return (uint8_t)(seq * 31 + i * 7 + 1);
}

static uint32_t ck_sum(const uint8_t *d, uint32_t len)
{
	uint32_t s = 0x811c9dc5u, i;

	for (i = 0; i < len; i++)
		s = (s ^ d[i]) * 0x01000193u;
	return s;
}

static int ck_post_recv(struct ck *c, int q, int i)
{
	struct ibv_sge sge = { (uintptr_t)c->m->rbuf[q][i],
			       sizeof(c->m->rbuf[q][i]), c->mr->lkey };
	struct ibv_recv_wr wr = { .wr_id = (uint64_t)q << 56 | (uint64_t)i,
				  .sg_list = &sge,
				  .num_sge = 1 },
			   *bad;

	if (q == Q_SRQ)
		return ibv_post_srq_recv(c->srq, &wr, &bad);
	return ibv_post_recv(c->qp[q], &wr, &bad);
}

/* Post one WR on queue @q; every 8th (and every READ/atomic) signaled. */
static int ck_post(struct ck *c, int q, struct ibv_send_wr *wr, bool sig)
{
	struct ibv_send_wr *bad;

	if (sig || (c->posted[q] % 8) == 7)
		wr->send_flags |= IBV_SEND_SIGNALED;
	wr->wr_id = (uint64_t)q << 56 | (uint64_t)wr->opcode << 48 |
		    c->posted[q];
	if (q == Q_UD) {
		wr->wr.ud.ah = c->ah;
		wr->wr.ud.remote_qpn = c->peer.qpn[Q_UD];
		wr->wr.ud.remote_qkey = QKEY;
	}
	c->posted[q]++;
	return ibv_post_send(c->qp[q], wr, &bad);
}

static bool ck_room(struct ck *c, int q)
{
	return c->posted[q] - c->done[q] < SQ_MAX - 8;
}

static void ck_rdma(struct ibv_send_wr *wr, struct ck *c, size_t off)
{
	wr->wr.rdma.remote_addr = c->peer.base + off;
	wr->wr.rdma.rkey = c->peer.rkey;
}

#include "ckst_ops.h"

#endif /* CKST_RANK_H */
