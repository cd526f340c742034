/* SPDX-License-Identifier: MIT */
/*
 * RC atomics on one 8-byte counter in an idle target process:
 *   - NCLIENT processes x NOPS FETCH_AND_ADD(1): the counter ends at
 *     NCLIENT * NOPS and the returned old values are 0 .. NCLIENT*NOPS-1,
 *     each exactly once (and increasing per QP);
 *   - COMPARE_AND_SWAP that matches (swaps) and one that does not;
 *   - a misaligned atomic: rxe's provider refuses a remote_addr that is
 *     not 8-byte aligned in post_send (EINVAL).  Its responder's
 *     IBV_WC_REM_INV_REQ_ERR for a misaligned target is unreachable through
 *     verbs, since an MR's iova and address share their page offset.
 */
#include "itest.h"

#define NCLIENT 4
#define NOPS 10000
#define TOTAL ((uint64_t)NCLIENT * NOPS)
#define WINDOW 16
#define SWAPPED 0x1234567890abcdefull
#define TAG_GO 0x60
#define TAG_DONE 0xd0
#define TAG_CAS 0xca5

struct client {
	struct it_dev d;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	uint64_t *res;
	struct it_ep peer;
};

static void fetch_adds(struct client *c)
{
	struct ibv_wc wc[WINDOW];
	uint64_t posted = 0, done = 0;
	int i, k;

	while (done < NOPS) {
		while (posted < NOPS && posted - done < WINDOW) {
			it_post_atomic(c->qp, IBV_WR_ATOMIC_FETCH_AND_ADD,
				       posted, &c->res[posted], c->mr->lkey,
				       c->peer.addr, c->peer.rkey, 1, 0);
			posted++;
		}
		k = it_poll_some(c->cq, wc, WINDOW);
		for (i = 0; i < k; i++, done++) {
			IT_WC_OK(&wc[i]);
			IT_ASSERT(wc[i].wr_id == done &&
				  wc[i].opcode == IBV_WC_FETCH_ADD);
		}
	}
	for (done = 1; done < NOPS; done++)
		IT_ASSERT(c->res[done] > c->res[done - 1],
			  "old values not increasing on one QP: %" PRIu64
			  " then %" PRIu64,
			  c->res[done - 1], c->res[done]);
}

static uint64_t atomic1(struct client *c, enum ibv_wr_opcode op, uint64_t off,
			uint64_t cmp, uint64_t swap, enum ibv_wc_status want)
{
	struct ibv_wc wc;

	c->res[0] = 0xdeadbeef;
	it_post_atomic(c->qp, op, 0, &c->res[0], c->mr->lkey,
		       c->peer.addr + off, c->peer.rkey, cmp, swap);
	it_poll_one(c->cq, &wc);
	IT_WC_IS(&wc, want);
	return c->res[0];
}

static void misaligned(struct client *c)
{
	struct ibv_sge sge = { (uintptr_t)c->res, 8, c->mr->lkey };
	struct ibv_send_wr wr = { .opcode = IBV_WR_ATOMIC_FETCH_AND_ADD,
				  .sg_list = &sge,
				  .num_sge = 1,
				  .send_flags = IBV_SEND_SIGNALED },
			   *bad = NULL;
	int r;

	wr.wr.atomic.remote_addr = c->peer.addr + 4;
	wr.wr.atomic.rkey = c->peer.rkey;
	wr.wr.atomic.compare_add = 1;
	r = ibv_post_send(c->qp, &wr, &bad);
	IT_ASSERT(r == EINVAL && bad == &wr,
		  "post of a misaligned atomic: %d, want EINVAL", r);
}

static void cas(struct client *c)
{
	uint64_t old;

	old = atomic1(c, IBV_WR_ATOMIC_CMP_AND_SWP, 0, TOTAL, SWAPPED,
		      IBV_WC_SUCCESS);
	IT_ASSERT(old == TOTAL, "CAS (match) returned %#" PRIx64, old);
	old = atomic1(c, IBV_WR_ATOMIC_CMP_AND_SWP, 0, TOTAL, 7,
		      IBV_WC_SUCCESS);
	IT_ASSERT(old == SWAPPED, "CAS (no match) returned %#" PRIx64, old);
	old = atomic1(c, IBV_WR_ATOMIC_FETCH_AND_ADD, 0, 0, 0, IBV_WC_SUCCESS);
	IT_ASSERT(old == SWAPPED,
		  "the failed CAS changed the counter to %#" PRIx64, old);
}

static int client(int fd, int idx)
{
	static struct client c;
	struct it_ep me;
	size_t len = NOPS * sizeof(uint64_t);

	it_node(idx % 2 ? "atomics-b" : "atomics-a");
	it_open(&c.d);
	c.cq = it_cq(&c.d, 2 * WINDOW, NULL);
	c.qp = it_qp(&c.d, IBV_QPT_RC, c.cq, NULL, WINDOW, 1);
	c.res = it_alloc(len);
	c.mr = it_reg(&c.d, c.res, len, IBV_ACCESS_LOCAL_WRITE);
	it_ep_init(&c.d, c.qp, NULL, &me);
	it_xchg(fd, &me, 1, &c.peer);
	it_connect(&c.d, c.qp, &me, &c.peer, NULL);
	it_expect(fd, TAG_GO);
	fetch_adds(&c);
	it_send_u64(fd, TAG_DONE);
	it_write_all(fd, c.res, len);
	if (it_recv_u64(fd) == TAG_CAS) {
		cas(&c);
		misaligned(&c);
	}
	it_send_u64(fd, TAG_DONE);
	it_destroy_qp(&c.d, c.qp);
	it_destroy_cq(&c.d, c.cq);
	it_dereg(&c.d, c.mr);
	it_close(&c.d);
	free(c.res);
	return 0;
}

/* Each old value 0 .. TOTAL-1 exactly once across all clients. */
static void check_olds(int *fd)
{
	uint8_t *seen = it_alloc(TOTAL);
	uint64_t *olds = it_alloc(NOPS * sizeof(uint64_t));
	int i, k;

	for (i = 0; i < NCLIENT; i++) {
		it_expect(fd[i], TAG_DONE);
		it_read_all(fd[i], olds, NOPS * sizeof(uint64_t));
		for (k = 0; k < NOPS; k++) {
			IT_ASSERT(olds[k] < TOTAL, "client %d got %#" PRIx64, i,
				  olds[k]);
			IT_ASSERT(!seen[olds[k]],
				  "old value %" PRIu64 " returned twice",
				  olds[k]);
			seen[olds[k]] = 1;
		}
	}
	free(olds);
	free(seen);
}

int main(int argc, char **argv)
{
	static const struct it_role roles[] = { { "client", client },
						{ NULL, NULL } };
	int rc = it_child_main(argc, argv, roles), fd[NCLIENT], i;
	struct ibv_qp *qp[NCLIENT];
	pid_t pid[NCLIENT];
	struct it_ep me, peer;
	volatile uint64_t *counter;
	struct ibv_cq *cq;
	struct ibv_mr *mr;
	struct it_dev d;

	if (rc >= 0)
		return rc;
	*it_role_p() = "target";
	it_node("atomics-target");
	it_open(&d);
	cq = it_cq(&d, 16, NULL);
	counter = it_alloc(4096);
	mr = it_reg(&d, (void *)counter, 4096, IT_ACCESS_ALL);
	for (i = 0; i < NCLIENT; i++) {
		pid[i] = it_spawn("client", i, &fd[i]);
		qp[i] = it_qp(&d, IBV_QPT_RC, cq, NULL, 1, 1);
		it_ep_init(&d, qp[i], mr, &me);
		it_xchg(fd[i], &me, 1, &peer);
		it_connect(&d, qp[i], &me, &peer, NULL);
	}
	for (i = 0; i < NCLIENT; i++)
		it_send_u64(fd[i], TAG_GO);
	check_olds(fd);
	IT_ASSERT(*counter == TOTAL, "counter %" PRIu64 ", want %" PRIu64,
		  *counter, TOTAL);
	for (i = 0; i < NCLIENT; i++)
		it_send_u64(fd[i], i ? 0 : TAG_CAS);
	for (i = 0; i < NCLIENT; i++) {
		it_expect(fd[i], TAG_DONE);
		it_reap(pid[i]);
		it_destroy_qp(&d, qp[i]);
	}
	IT_ASSERT(*counter == SWAPPED, "counter %#" PRIx64 " after CAS",
		  *counter);
	for (i = 8; i < 4096; i++)
		IT_ASSERT(((volatile uint8_t *)counter)[i] == 0,
			  "target byte +%d changed", i);
	it_destroy_cq(&d, cq);
	it_dereg(&d, mr);
	it_close(&d);
	free((void *)counter);
	printf("atomics: %d processes x %d FETCH_AND_ADD -> %" PRIu64
	       ", old values each once; CMP_AND_SWP match/no match right; "
	       "misaligned atomic refused by post_send (EINVAL, as rxe); "
	       "target idle, its other bytes untouched\n",
	       NCLIENT, NOPS, TOTAL);
	return 0;
}
