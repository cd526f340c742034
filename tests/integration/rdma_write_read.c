/* SPDX-License-Identifier: MIT */
/*
 * One-sided RC operations between two processes on two simulated nodes, the
 * target application idle (blocked on its pipe) throughout:
 *   - RDMA WRITEs of 1 B .. 4 MiB to odd remote offsets, all in flight at
 *     once, read back with RDMA READs and compared;
 *   - RDMA READs of a region the target filled before, compared with the
 *     pattern regenerated locally;
 *   - RDMA WRITE_WITH_IMM (0 B .. 70 KB): each consumes one posted receive
 *     and completes there as IBV_WC_RECV_RDMA_WITH_IMM with its immediate.
 * Afterwards the target checks every written region by checksum and that no
 * byte outside them changed, then polls the immediate completions.
 *
 * The wire drops 3 % of packets (unless IBSNAP_FAKE_FAULTS says otherwise):
 * a 4 MiB READ is 256 response packets, so it completes only because a READ
 * sent again asks for the rest from the first missing response, as on rxe.
 */
#include "itest.h"

#define MiB (1u << 20)
#define T_SIZE (16 * MiB) /* target memory */
#define IMM_OFF (8 * MiB) /* target: WRITE_WITH_IMM area */
#define RD_OFF (12 * MiB) /* target: area prefilled for READs */
#define RD_SIZE (4 * MiB)
#define L_SIZE (8 * MiB) /* initiator: source, then READ landing */
#define RD_SEED 0x5eed
#define IMM_BASE 0xabc00000u
#define TAG_GO 0x60
#define TAG_DONE 0xd0

/* 1 B .. 4 MiB, around word, packet (16 KiB) and page boundaries */
/* clang-format off */
static const uint32_t sizes[] = {
	1, 2, 3, 7, 8, 9, 63, 64, 65, 1000, 4095, 4096, 4097,
	16383, 16384, 16385, 65536, 100000, MiB + 13, 4 * MiB,
};
/* clang-format on */
static const uint32_t imm_sizes[] = { 0, 1, 4096, 70001 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))
#define NIMM (sizeof(imm_sizes) / sizeof(imm_sizes[0]))
#define NEXP (NSIZES + NIMM)

/* A region the initiator wrote: target offset, length, checksum. */
struct expect {
	uint64_t off, len, csum;
};

struct init {
	struct it_dev d;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	uint8_t *src, *dst;
	struct it_ep peer;
	uint64_t loc[NSIZES]; /* local offset of region i */
	struct expect ex[NEXP];
};

/* Poll @n completions of WRs @first, @first + 1, ... */
static void poll_in_order(struct init *s, unsigned int first, unsigned int n,
			  enum ibv_wc_opcode op)
{
	struct ibv_wc wc[NSIZES];
	unsigned int i;

	it_poll_n(s->cq, wc, (int)n);
	for (i = 0; i < n; i++) {
		IT_WC_OK(&wc[i]);
		IT_ASSERT(wc[i].wr_id == first + i && wc[i].opcode == op,
			  "completion %u of %u: wr_id %" PRIu64 " opcode %d, "
			  "want opcode %d",
			  i, n, (uint64_t)wc[i].wr_id, wc[i].opcode, op);
	}
}

static void writes(struct init *s)
{
	uint64_t loff = 0, roff = 0;
	unsigned int i;

	for (i = 0; i < NSIZES; i++) {
		roff = ((roff + 63) & ~63ull) + i % 8;
		loff = ((loff + 63) & ~63ull) + i % 5;
		s->loc[i] = loff;
		it_fill(s->src + loff, sizes[i], 100 + i);
		s->ex[i] = (struct expect){ roff, sizes[i],
					    it_csum(s->src + loff, sizes[i]) };
		it_post_rdma(s->qp, IBV_WR_RDMA_WRITE, i, s->src + loff,
			     sizes[i], s->mr->lkey, s->peer.addr + roff,
			     s->peer.rkey, 0);
		roff += sizes[i];
		loff += sizes[i];
	}
	IT_ASSERT(roff <= IMM_OFF && loff <= L_SIZE);
	poll_in_order(s, 0, NSIZES, IBV_WC_RDMA_WRITE);
}

static void read_back(struct init *s)
{
	unsigned int i;

	memset(s->dst, 0, L_SIZE);
	for (i = 0; i < NSIZES; i++)
		it_post_rdma(s->qp, IBV_WR_RDMA_READ, i, s->dst + s->loc[i],
			     sizes[i], s->mr->lkey, s->peer.addr + s->ex[i].off,
			     s->peer.rkey, 0);
	poll_in_order(s, 0, NSIZES, IBV_WC_RDMA_READ);
	for (i = 0; i < NSIZES; i++)
		IT_ASSERT(it_csum(s->dst + s->loc[i], sizes[i]) ==
					  s->ex[i].csum &&
				  !memcmp(s->dst + s->loc[i],
					  s->src + s->loc[i], sizes[i]),
			  "READ of the %u B WRITE differs", sizes[i]);
}

static void read_prefilled(struct init *s)
{
	uint8_t *ref = it_alloc(RD_SIZE);
	uint64_t r[NSIZES];
	unsigned int i;

	it_fill(ref, RD_SIZE, RD_SEED);
	memset(s->dst, 0, L_SIZE);
	for (i = 0; i < NSIZES; i++) {
		r[i] = (i * 40961ull) % (RD_SIZE - sizes[i] + 1);
		it_post_rdma(s->qp, IBV_WR_RDMA_READ, i, s->dst + s->loc[i],
			     sizes[i], s->mr->lkey,
			     s->peer.addr + RD_OFF + r[i], s->peer.rkey, 0);
	}
	poll_in_order(s, 0, NSIZES, IBV_WC_RDMA_READ);
	for (i = 0; i < NSIZES; i++)
		IT_ASSERT(!memcmp(s->dst + s->loc[i], ref + r[i], sizes[i]),
			  "READ of %u B at +%" PRIu64 " differs", sizes[i],
			  r[i]);
	free(ref);
}

static void writes_imm(struct init *s)
{
	uint64_t roff = IMM_OFF;
	struct expect *e;
	unsigned int j;

	for (j = 0; j < NIMM; j++) {
		e = &s->ex[NSIZES + j];
		roff = ((roff + 63) & ~63ull) + j;
		it_fill(s->src, imm_sizes[j], 200 + j);
		*e = (struct expect){ roff, imm_sizes[j],
				      it_csum(s->src, imm_sizes[j]) };
		it_post_rdma(s->qp, IBV_WR_RDMA_WRITE_WITH_IMM, j, s->src,
			     imm_sizes[j], s->mr->lkey, s->peer.addr + roff,
			     s->peer.rkey, IMM_BASE + j);
		/* the source is reused: wait for this one */
		poll_in_order(s, j, 1, IBV_WC_RDMA_WRITE);
		roff += imm_sizes[j];
	}
}

static int initiator(int fd)
{
	static struct init s;
	struct it_ep me;

	it_node("initiator");
	it_open(&s.d);
	s.cq = it_cq(&s.d, 2 * NSIZES, NULL);
	s.qp = it_qp(&s.d, IBV_QPT_RC, s.cq, NULL, 2 * NSIZES, 1);
	s.src = it_alloc(2 * L_SIZE);
	s.dst = s.src + L_SIZE;
	s.mr = it_reg(&s.d, s.src, 2 * L_SIZE, IBV_ACCESS_LOCAL_WRITE);
	it_ep_init(&s.d, s.qp, NULL, &me);
	it_xchg(fd, &me, 1, &s.peer);
	it_connect(&s.d, s.qp, &me, &s.peer, NULL);
	it_expect(fd, TAG_GO);
	writes(&s);
	read_back(&s);
	read_prefilled(&s);
	writes_imm(&s);
	it_send_u64(fd, TAG_DONE);
	it_write_all(fd, s.ex, sizeof(s.ex));
	it_expect(fd, TAG_DONE);
	it_destroy_qp(&s.d, s.qp);
	it_destroy_cq(&s.d, s.cq);
	it_dereg(&s.d, s.mr);
	it_close(&s.d);
	free(s.src);
	return 0;
}

/* Every region as announced, and zeros everywhere else below RD_OFF. */
static void target_check(const uint8_t *t, const struct expect *ex)
{
	uint64_t pos = 0, i, k;

	for (i = 0; i <= NEXP; i++) {
		uint64_t end = i < NEXP ? ex[i].off : RD_OFF;

		IT_ASSERT(end >= pos);
		for (k = pos; k < end; k++)
			IT_ASSERT(t[k] == 0,
				  "byte +%" PRIu64 " outside every WRITE "
				  "changed",
				  k);
		if (i == NEXP)
			break;
		IT_ASSERT(it_csum(t + ex[i].off, ex[i].len) == ex[i].csum,
			  "%" PRIu64 " B written at +%" PRIu64 " differ",
			  ex[i].len, ex[i].off);
		pos = ex[i].off + ex[i].len;
	}
}

static void target_imm(struct ibv_cq *cq)
{
	struct ibv_wc wc[NIMM];
	unsigned int j;

	it_poll_n(cq, wc, NIMM);
	for (j = 0; j < NIMM; j++) {
		IT_WC_OK(&wc[j]);
		IT_ASSERT(wc[j].opcode == IBV_WC_RECV_RDMA_WITH_IMM &&
				  (wc[j].wc_flags & IBV_WC_WITH_IMM) &&
				  be32toh(wc[j].imm_data) == IMM_BASE + j &&
				  wc[j].byte_len == imm_sizes[j] &&
				  wc[j].wr_id == j,
			  "imm completion %u: opcode %d flags %#x imm %#x "
			  "len %u wr_id %" PRIu64,
			  j, wc[j].opcode, wc[j].wc_flags,
			  be32toh(wc[j].imm_data), wc[j].byte_len,
			  (uint64_t)wc[j].wr_id);
	}
	IT_ASSERT(it_poll_for(cq, wc, 1, 100) == 0, "extra completion");
}

static int target(int fd, int idx)
{
	static struct expect ex[NEXP];
	struct it_ep me, peer;
	struct it_dev d;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	uint8_t *t = it_alloc(T_SIZE);
	unsigned int j;

	(void)idx;
	it_node("target");
	it_open(&d);
	cq = it_cq(&d, 16, NULL);
	qp = it_qp(&d, IBV_QPT_RC, cq, NULL, 1, NIMM + 1);
	mr = it_reg(&d, t, T_SIZE, IT_ACCESS_ALL);
	it_fill(t + RD_OFF, RD_SIZE, RD_SEED);
	it_ep_init(&d, qp, mr, &me);
	it_xchg(fd, &me, 1, &peer);
	it_connect(&d, qp, &me, &peer, NULL);
	for (j = 0; j < NIMM; j++)
		it_post_recv(qp, NULL, j, t, 0, mr->lkey);
	it_send_u64(fd, TAG_GO);
	/* idle: no verbs call until the initiator is done */
	it_expect(fd, TAG_DONE);
	it_read_all(fd, ex, sizeof(ex));
	target_check(t, ex);
	target_imm(cq);
	it_send_u64(fd, TAG_DONE);
	it_destroy_qp(&d, qp);
	it_destroy_cq(&d, cq);
	it_dereg(&d, mr);
	it_close(&d);
	free(t);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct it_role roles[] = { { "target", target },
						{ NULL, NULL } };
	pid_t pid;
	int rc, fd;

	setenv("IBSNAP_FAKE_FAULTS", "drop=0.03", 0);
	rc = it_child_main(argc, argv, roles);
	if (rc >= 0)
		return rc;
	*it_role_p() = "initiator";
	pid = it_spawn("target", 0, &fd);
	initiator(fd);
	it_reap(pid);
	printf("rdma_write_read: %zu RDMA WRITEs and %zu READs of 1 B..4 MiB "
	       "and %zu WRITE_WITH_IMM (imm + RECV_RDMA_WITH_IMM) done with "
	       "the target idle; data verified on both sides\n",
	       NSIZES, 2 * NSIZES, NIMM);
	return 0;
}
