/* SPDX-License-Identifier: MIT */
/*
 * Access and transport errors on RC, one fresh QP pair per case.  A bad WR is
 * posted followed by two good RDMA WRITEs; the bad one completes with the
 * status rxe gives, the two after it with IBV_WC_WR_FLUSH_ERR, and the QP is
 * in ERR:
 *   wrong rkey, rkey of no MR, WRITE past the MR, MR without REMOTE_WRITE
 *     -> IBV_WC_REM_ACCESS_ERR
 *   wrong lkey, local SGE past its MR -> IBV_WC_LOC_PROT_ERR
 *   SEND of 64 B into a 16 B receive -> IBV_WC_REM_INV_REQ_ERR, and the
 *     receiver's WC IBV_WC_LOC_LEN_ERR
 *   SEND to a process that was killed -> IBV_WC_RETRY_EXC_ERR
 * No byte of the target's memory may change.
 */
#include "itest.h"

enum {
	C_RKEY,
	C_RKEY_IDX,
	C_OOB,
	C_NO_RW,
	C_LKEY,
	C_LKEY_OOB,
	C_SHORT,
	C_GONE,
	NCASE
};

#define T_SIZE 16384
#define MR_SIZE 4096
#define RO_OFF 8192
#define SHORT_LEN 16
#define TAG_GO 0x60
#define TAG_CHECK 0xc4ec
#define TAG_END 0xe7d

struct bad_wr {
	const char *what;
	enum ibv_wr_opcode op;
	uint32_t rkey_xor, lkey_xor;
	uint64_t roff, loff;
	bool ro; /* aim at the read-only MR */
	enum ibv_wc_status want;
};

static const struct bad_wr cases[NCASE] = {
	[C_RKEY] = { "rkey with a wrong key byte", IBV_WR_RDMA_WRITE, 0xff, 0,
		     0, 0, false, IBV_WC_REM_ACCESS_ERR },
	[C_RKEY_IDX] = { "rkey of no MR", IBV_WR_RDMA_WRITE, 0x00ff0000, 0, 0,
			 0, false, IBV_WC_REM_ACCESS_ERR },
	[C_OOB] = { "WRITE across the MR's end", IBV_WR_RDMA_WRITE, 0, 0,
		    MR_SIZE - 32, 0, false, IBV_WC_REM_ACCESS_ERR },
	[C_NO_RW] = { "WRITE to an MR without REMOTE_WRITE", IBV_WR_RDMA_WRITE,
		      0, 0, 0, 0, true, IBV_WC_REM_ACCESS_ERR },
	[C_LKEY] = { "wrong lkey", IBV_WR_RDMA_WRITE, 0, 0xff, 0, 0, false,
		     IBV_WC_LOC_PROT_ERR },
	[C_LKEY_OOB] = { "local SGE across its MR's end", IBV_WR_RDMA_WRITE, 0,
			 0, 0, MR_SIZE - 32, false, IBV_WC_LOC_PROT_ERR },
	[C_SHORT] = { "SEND of 64 B into a 16 B receive", IBV_WR_SEND, 0, 0, 0,
		      0, false, IBV_WC_REM_INV_REQ_ERR },
	[C_GONE] = { "SEND to a killed process", IBV_WR_SEND, 0, 0, 0, 0, false,
		     IBV_WC_RETRY_EXC_ERR },
};

static struct it_conn conn_of(int k)
{
	struct it_conn c = it_conn_default();

	if (k == C_GONE) {
		c.timeout = 8;
		c.retry_cnt = 1;
	}
	return c;
}

/* Set up NCASE QPs; ep[NCASE] describes the read-only MR. */
static void pairs(struct it_dev *d, struct ibv_cq *cq, int fd,
		  struct ibv_mr *mr, struct ibv_mr *ro, struct ibv_qp **qp,
		  struct it_ep *peer)
{
	struct it_ep me[NCASE + 1];
	struct it_conn c;
	int k;

	for (k = 0; k < NCASE; k++) {
		qp[k] = it_qp(d, IBV_QPT_RC, cq, NULL, 4, 4);
		it_ep_init(d, qp[k], mr, &me[k]);
	}
	it_ep_init(d, NULL, ro ? ro : mr, &me[NCASE]);
	it_xchg(fd, me, NCASE + 1, peer);
	for (k = 0; k < NCASE; k++) {
		c = conn_of(k);
		it_connect(d, qp[k], &me[k], &peer[k], &c);
	}
}

static int target(int fd, int idx)
{
	struct it_ep peer[NCASE + 1];
	struct ibv_qp *qp[NCASE];
	struct ibv_mr *mr, *ro, *rmr;
	struct ibv_cq *cq;
	struct ibv_wc wc;
	struct it_dev d;
	uint8_t *t = it_alloc(T_SIZE), *r = it_alloc(MR_SIZE);
	int k;

	(void)idx;
	it_open(&d);
	cq = it_cq(&d, 4 * NCASE, NULL);
	mr = it_reg(&d, t, MR_SIZE,
		    IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
			    IBV_ACCESS_REMOTE_READ);
	ro = it_reg(&d, t + RO_OFF, MR_SIZE,
		    IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ);
	rmr = it_reg(&d, r, MR_SIZE, IBV_ACCESS_LOCAL_WRITE);
	pairs(&d, cq, fd, mr, ro, qp, peer);
	it_post_recv(qp[C_SHORT], NULL, 77, r, SHORT_LEN, rmr->lkey);
	it_sync(fd, TAG_GO);
	it_expect(fd, TAG_CHECK);
	it_poll_one(cq, &wc);
	IT_ASSERT(wc.wr_id == 77 && wc.qp_num == qp[C_SHORT]->qp_num);
	IT_WC_IS(&wc, IBV_WC_LOC_LEN_ERR);
	for (k = 0; k < T_SIZE; k++)
		IT_ASSERT(t[k] == 0, "target byte +%d changed", k);
	it_send_u64(fd, TAG_CHECK);
	it_expect(fd, TAG_END); /* killed while waiting here */
	return 1;
}

static void run_case(struct it_dev *d, struct ibv_cq *cq, struct ibv_qp *qp,
		     struct ibv_mr *mr, const struct it_ep *p,
		     const struct it_ep *ro, int k)
{
	const struct bad_wr *b = &cases[k];
	const struct it_ep *to = b->ro ? ro : p;
	uint8_t *l = mr->addr;
	struct ibv_wc wc[3];
	int i;

	it_post_rdma(qp, b->op, 0, l + b->loff, 64, mr->lkey ^ b->lkey_xor,
		     to->addr + b->roff, to->rkey ^ b->rkey_xor, 0);
	for (i = 1; i < 3; i++)
		it_post_rdma(qp, IBV_WR_RDMA_WRITE, (uint64_t)i, l + 128, 64,
			     mr->lkey, p->addr + 1024 + 128 * i, p->rkey, 0);
	it_poll_n(cq, wc, 3);
	for (i = 0; i < 3; i++) {
		IT_ASSERT(wc[i].wr_id == (uint64_t)i &&
			  wc[i].qp_num == qp->qp_num);
		IT_ASSERT(wc[i].status == (i ? IBV_WC_WR_FLUSH_ERR : b->want),
			  "%s: WR %d status %s, want %s", b->what, i,
			  ibv_wc_status_str(wc[i].status),
			  ibv_wc_status_str(i ? IBV_WC_WR_FLUSH_ERR : b->want));
	}
	IT_ASSERT(it_qp_state(d, qp) == IBV_QPS_ERR, "%s: QP not in ERR",
		  b->what);
}

static void kill_target(pid_t pid)
{
	int st;

	IT_ASSERT(kill(pid, SIGKILL) == 0);
	IT_ASSERT(waitpid(pid, &st, 0) == pid);
	IT_ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
		  "target ended before the kill (status %#x)", st);
}

int main(int argc, char **argv)
{
	static const struct it_role roles[] = { { "target", target },
						{ NULL, NULL } };
	int rc = it_child_main(argc, argv, roles), fd, k;
	struct it_ep peer[NCASE + 1];
	struct ibv_qp *qp[NCASE];
	struct ibv_cq *cq;
	struct ibv_mr *mr;
	struct ibv_wc wc;
	struct it_dev d;
	uint8_t *l = it_alloc(2 * MR_SIZE);
	pid_t pid;

	if (rc >= 0)
		return rc;
	*it_role_p() = "initiator";
	pid = it_spawn("target", 0, &fd);
	it_open(&d);
	cq = it_cq(&d, 4 * NCASE, NULL);
	mr = it_reg(&d, l, MR_SIZE, IBV_ACCESS_LOCAL_WRITE);
	memset(l, 0xab, 2 * MR_SIZE);
	pairs(&d, cq, fd, mr, NULL, qp, peer);
	it_sync(fd, TAG_GO);
	for (k = 0; k < C_GONE; k++)
		run_case(&d, cq, qp[k], mr, &peer[k], &peer[NCASE], k);
	it_sync(fd, TAG_CHECK);

	/* the last pair works, until its peer process dies */
	it_post_rdma(qp[C_GONE], IBV_WR_RDMA_READ, 9, l, 8, mr->lkey,
		     peer[C_GONE].addr, peer[C_GONE].rkey, 0);
	it_poll_ok(cq, &wc);
	IT_ASSERT(wc.wr_id == 9 && l[0] == 0 && l[7] == 0);
	kill_target(pid);
	run_case(&d, cq, qp[C_GONE], mr, &peer[C_GONE], &peer[NCASE], C_GONE);

	for (k = 0; k < NCASE; k++)
		it_destroy_qp(&d, qp[k]);
	it_destroy_cq(&d, cq);
	it_dereg(&d, mr);
	it_close(&d);
	free(l);
	printf("remote_access: bad rkey/index, out of bounds, no REMOTE_WRITE "
	       "-> REM_ACCESS_ERR; bad lkey/local bounds -> LOC_PROT_ERR; "
	       "short receive -> LOC_LEN_ERR + REM_INV_REQ_ERR; dead peer -> "
	       "RETRY_EXC_ERR; later WRs flushed, QPs in ERR, target memory "
	       "untouched\n");
	return 0;
}
