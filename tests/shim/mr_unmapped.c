/* SPDX-License-Identifier: MIT */
/*
 * An MR whose memory the program unmaps before it deregisters it (UCX's
 * registration cache does so: it deregisters lazily, after the munmap it
 * caught), checkpointed in between: the checkpoint must go through, the
 * later ibv_dereg_mr succeed, and verbs work on.
 *   mr_unmapped DIR   writes DIR/ready, waits for DIR/go (the checkpoint)
 */
#include <sys/mman.h>

#include "shimtest.h"

#define LEN (64 * 1024)
#define MSG 64

/* A SEND from @a to @b (loopback RC) arrives intact. */
static int loopback(struct st_dev *d)
{
	static char sbuf[MSG], rbuf[MSG];
	struct ibv_recv_wr rwr = { 0 }, *rbad;
	struct ibv_send_wr swr = { 0 }, *sbad;
	struct ibv_sge ss, rs;
	struct ibv_mr *mr_s, *mr_r;
	struct ibv_cq *cq;
	struct ibv_qp *a, *b;
	struct ibv_wc wc;
	int got = 0;

	cq = ibv_create_cq(d->ctx, 16, NULL, NULL, 0);
	mr_s = ibv_reg_mr(d->pd, sbuf, MSG, IBV_ACCESS_LOCAL_WRITE);
	mr_r = ibv_reg_mr(d->pd, rbuf, MSG, IBV_ACCESS_LOCAL_WRITE);
	a = cq ? st_qp(d, IBV_QPT_RC, cq, cq, NULL) : NULL;
	b = cq ? st_qp(d, IBV_QPT_RC, cq, cq, NULL) : NULL;
	if (!a || !b || !mr_s || !mr_r || st_rc_connect(d, a, b->qp_num) ||
	    st_rc_connect(d, b, a->qp_num))
		return -1;
	memset(sbuf, 0x5a, MSG);
	rs = (struct ibv_sge){ (uintptr_t)rbuf, MSG, mr_r->lkey };
	ss = (struct ibv_sge){ (uintptr_t)sbuf, MSG, mr_s->lkey };
	rwr = (struct ibv_recv_wr){ .wr_id = 1, .sg_list = &rs, .num_sge = 1 };
	swr = (struct ibv_send_wr){ .wr_id = 2,
				    .sg_list = &ss,
				    .num_sge = 1,
				    .opcode = IBV_WR_SEND,
				    .send_flags = IBV_SEND_SIGNALED };
	if (ibv_post_recv(b, &rwr, &rbad) || ibv_post_send(a, &swr, &sbad))
		return -1;
	while (got < 2) {
		if (st_poll1(cq, &wc) != 1 || wc.status != IBV_WC_SUCCESS)
			return -1;
		got++;
	}
	if (memcmp(sbuf, rbuf, MSG))
		return -1;
	return ibv_destroy_qp(a) || ibv_destroy_qp(b) || ibv_dereg_mr(mr_s) ||
	       ibv_dereg_mr(mr_r) || ibv_destroy_cq(cq);
}

int main(int argc, char **argv)
{
	struct ibv_mr *mr;
	struct st_dev d;
	void *p;
	int go;

	if (argc < 2 || st_open(&d))
		return 2;
	p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	mr = p != MAP_FAILED ?
		     ibv_reg_mr(d.pd, p, LEN, IBV_ACCESS_LOCAL_WRITE) :
		     NULL;
	if (!mr || munmap(p, LEN))
		return 2;
	if (st_blob_write(argv[1], "ready", &go, sizeof(go)) ||
	    st_blob_read(argv[1], "go", &go, sizeof(go)))
		return 3;
	if (ibv_dereg_mr(mr)) {
		fprintf(stderr, "mr_unmapped: ibv_dereg_mr: %s\n",
			strerror(errno));
		return 4;
	}
	if (loopback(&d)) {
		fprintf(stderr, "mr_unmapped: a SEND after it failed\n");
		return 5;
	}
	st_close(&d);
	printf("mr_unmapped: ok\n");
	return 0;
}
