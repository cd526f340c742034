/* SPDX-License-Identifier: MIT */
/*
 * The process tests/lab/criu.sh dumps in one boot and restores in the next.
 * It proves a verbs process survives CRIU across a reboot when it holds no
 * RDMA resource at dump time (what drain/RELEASE will guarantee): it does an
 * RC loopback RDMA WRITE on DEVICE, releases everything, writes
 * "ready PID TOKEN" to DIR/ready and counts in memory until DIR/go appears;
 * then it opens DEVICE again (a new device list: after a restore this is a
 * new kernel's rxe0), does the WRITE again and writes
 * "done PID TOKEN COUNT" to DIR/result.  It keeps no file open meanwhile.
 *   criu_probe DEVICE DIR
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <infiniband/verbs.h>

#include "../qp_connect.h"

static const char *dir;

static int say(const char *name, const char *fmt, unsigned long a,
	       unsigned long b, unsigned long c)
{
	char path[4096], tmp[4200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	fprintf(f, fmt, a, b, c);
	if (fclose(f))
		return -1;
	return rename(tmp, path);
}

static int qp_to_rts(struct ibv_qp *qp, uint32_t dest, union ibv_gid *gid)
{
	struct tq_rc p = { .dest_qpn = dest,
			   .access = IBV_ACCESS_REMOTE_WRITE,
			   .port = 1,
			   .timeout = 14,
			   .rd_atomic = 1,
			   .min_rnr_timer = 12 };

	p.av.is_global = 1;
	p.av.grh.dgid = *gid;
	p.av.grh.sgid_index = 1;
	p.av.grh.hop_limit = 1;
	p.av.port_num = 1;
	return tq_rc_connect(qp, &p);
}

/* Open @name, WRITE @val from one RC QP to another, release it all. */
static int verbs_round(const char *name, uint64_t val)
{
	struct ibv_device **list = ibv_get_device_list(NULL);
	struct ibv_context *ctx = NULL;
	struct ibv_pd *pd = NULL;
	struct ibv_cq *cq = NULL;
	struct ibv_qp *a = NULL, *b = NULL;
	struct ibv_mr *mr = NULL;
	static uint64_t mem[2];
	union ibv_gid gid;
	int i, ret = -1;

	for (i = 0; list && list[i]; i++)
		if (!strcmp(ibv_get_device_name(list[i]), name))
			ctx = ibv_open_device(list[i]);
	if (list)
		ibv_free_device_list(list);
	if (!ctx || ibv_query_gid(ctx, 1, 1, &gid))
		goto out;
	pd = ibv_alloc_pd(ctx);
	cq = pd ? ibv_create_cq(ctx, 4, NULL, NULL, 0) : NULL;
	mr = pd ? ibv_reg_mr(pd, mem, sizeof(mem),
			     IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE) :
		  NULL;
	if (cq && mr) {
		struct ibv_qp_init_attr ia = { .send_cq = cq,
					       .recv_cq = cq,
					       .cap = { 1, 1, 1, 1, 0 },
					       .qp_type = IBV_QPT_RC };

		a = ibv_create_qp(pd, &ia);
		b = ibv_create_qp(pd, &ia);
	}
	if (a && b && !qp_to_rts(a, b->qp_num, &gid) &&
	    !qp_to_rts(b, a->qp_num, &gid)) {
		struct ibv_sge s = { (uintptr_t)&mem[0], 8, mr->lkey };
		struct ibv_send_wr w = { .sg_list = &s,
					 .num_sge = 1,
					 .opcode = IBV_WR_RDMA_WRITE,
					 .send_flags = IBV_SEND_SIGNALED },
				   *bad;
		struct ibv_wc wc;
		time_t end = time(NULL) + 20;
		int n = 0;

		mem[0] = val;
		mem[1] = 0;
		w.wr.rdma.remote_addr = (uintptr_t)&mem[1];
		w.wr.rdma.rkey = mr->rkey;
		if (!ibv_post_send(a, &w, &bad))
			while (!(n = ibv_poll_cq(cq, 1, &wc)) &&
			       time(NULL) < end)
				;
		if (n == 1 && wc.status == IBV_WC_SUCCESS && mem[1] == val)
			ret = 0;
	}
out:
	if (a)
		ibv_destroy_qp(a);
	if (b)
		ibv_destroy_qp(b);
	if (mr)
		ibv_dereg_mr(mr);
	if (cq)
		ibv_destroy_cq(cq);
	if (pd)
		ibv_dealloc_pd(pd);
	if (ctx)
		ibv_close_device(ctx);
	return ret;
}

int main(int argc, char **argv)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	unsigned long token, count = 0;
	char go[4096];

	if (argc != 3) {
		fprintf(stderr, "usage: criu_probe DEVICE DIR\n");
		return 2;
	}
	dir = argv[2];
	srand((unsigned int)time(NULL) ^ (unsigned int)getpid());
	token = (unsigned long)rand() << 16 ^ (unsigned long)rand();
	if (verbs_round(argv[1], token)) {
		say("error", "verbs before the dump failed\n", 0, 0, 0);
		return 1;
	}
	if (say("ready", "ready %lu %lu\n", (unsigned long)getpid(), token, 0))
		return 1;
	snprintf(go, sizeof(go), "%s/go", dir);
	while (access(go, F_OK)) {
		count++;
		nanosleep(&ts, NULL);
	}
	if (verbs_round(argv[1], token + count)) {
		say("error", "verbs after the restore failed\n", 0, 0, 0);
		return 1;
	}
	return say("result", "done %lu %lu %lu\n", (unsigned long)getpid(),
		   token, count) ?
		       1 :
		       0;
}
