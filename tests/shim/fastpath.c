/* SPDX-License-Identifier: MIT */
/*
 * The data path under the shim: N x (post_send of a signaled 8-byte inline
 * RDMA WRITE + poll_cq until it completes) between two RC QPs of this
 * process.  fastpath.sh runs it under callgrind to count the instructions
 * the shim adds per post_send and per poll_cq (not a pass/fail threshold:
 * the count is printed), and checks every completion.
 *   fastpath [N]
 */
#include <stdio.h>

#include "shimtest.h"

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 10000, i, polls = 0;
	struct st_dev d;
	struct ibv_cq *cq;
	struct ibv_qp *a, *b;
	uint64_t *mem;
	struct ibv_mr *mr;
	struct ibv_sge sge;
	struct ibv_send_wr wr, *bad;
	struct ibv_wc wc;
	int got;

	if (st_open(&d))
		return 1;
	cq = ibv_create_cq(d.ctx, 64, NULL, NULL, 0);
	a = st_qp(&d, IBV_QPT_RC, cq, cq, NULL);
	b = st_qp(&d, IBV_QPT_RC, cq, cq, NULL);
	mem = calloc(2, 4096);
	mr = ibv_reg_mr(d.pd, mem, 8192, ST_ACCESS);
	if (!a || !b || !mr || st_rc_connect(&d, a, b->qp_num) ||
	    st_rc_connect(&d, b, a->qp_num))
		return 1;
	sge = (struct ibv_sge){ (uintptr_t)mem, 8, mr->lkey };
	wr = (struct ibv_send_wr){ .sg_list = &sge,
				   .num_sge = 1,
				   .opcode = IBV_WR_RDMA_WRITE,
				   .send_flags = IBV_SEND_SIGNALED |
						 IBV_SEND_INLINE };
	wr.wr.rdma.remote_addr = (uintptr_t)mem + 4096;
	wr.wr.rdma.rkey = mr->rkey;
	for (i = 0; i < n; i++) {
		mem[0] = i;
		wr.wr_id = i;
		if (ibv_post_send(a, &wr, &bad))
			return 2;
		do {
			got = ibv_poll_cq(cq, 1, &wc);
			polls++;
		} while (!got);
		if (got != 1 || wc.status != IBV_WC_SUCCESS ||
		    wc.wr_id != (uint64_t)i || mem[512] != (uint64_t)i)
			return 3;
	}
	printf("fastpath: %ld post_send, %ld poll_cq\n", n, polls);
	ibv_destroy_qp(a);
	ibv_destroy_qp(b);
	ibv_destroy_cq(cq);
	ibv_dereg_mr(mr);
	free(mem);
	st_close(&d);
	return 0;
}
