/* SPDX-License-Identifier: MIT */
/*
 * fork() under the shim: a process that uses verbs (completion channel,
 * events) forks; the child opens the device afresh and runs its own RC
 * traffic with events while the parent goes on with its own, then the
 * parent spawns an unmodified verbs program (fork + exec, as launchers do).
 *   fork_child [N]
 */
#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shimtest.h"

extern char **environ;

struct rig {
	struct st_dev d;
	struct ibv_comp_channel *ch;
	struct ibv_cq *cq;
	struct ibv_qp *a, *b;
	struct ibv_mr *mr;
	char buf[2][64];
};

static int rig_open(struct rig *r)
{
	if (st_open(&r->d))
		return -1;
	r->ch = ibv_create_comp_channel(r->d.ctx);
	r->cq = r->ch ? ibv_create_cq(r->d.ctx, 16, NULL, r->ch, 0) : NULL;
	r->a = r->cq ? st_qp(&r->d, IBV_QPT_RC, r->cq, r->cq, NULL) : NULL;
	r->b = r->cq ? st_qp(&r->d, IBV_QPT_RC, r->cq, r->cq, NULL) : NULL;
	r->mr = ibv_reg_mr(r->d.pd, r->buf, sizeof(r->buf), ST_ACCESS);
	if (!r->a || !r->b || !r->mr ||
	    st_rc_connect(&r->d, r->a, r->b->qp_num) ||
	    st_rc_connect(&r->d, r->b, r->a->qp_num))
		return -1;
	return 0;
}

/* One SEND a -> b, both completions awaited through the channel. */
static int rig_round(struct rig *r, int i)
{
	struct ibv_sge s = { (uintptr_t)r->buf[0], 8, r->mr->lkey };
	struct ibv_sge rs = { (uintptr_t)r->buf[1], 8, r->mr->lkey };
	struct ibv_send_wr wr = { .wr_id = i,
				  .sg_list = &s,
				  .num_sge = 1,
				  .opcode = IBV_WR_SEND,
				  .send_flags = IBV_SEND_SIGNALED };
	struct ibv_recv_wr rwr = { .wr_id = i, .sg_list = &rs, .num_sge = 1 };
	struct ibv_send_wr *bad;
	struct ibv_recv_wr *rbad;
	struct ibv_cq *ev_cq;
	struct ibv_wc wc;
	void *ctx;
	int done = 0, n;

	memcpy(r->buf[0], &i, sizeof(i));
	if (ibv_post_recv(r->b, &rwr, &rbad) || ibv_req_notify_cq(r->cq, 0) ||
	    ibv_post_send(r->a, &wr, &bad))
		return -1;
	while (done < 2) {
		if (ibv_get_cq_event(r->ch, &ev_cq, &ctx))
			return -1;
		ibv_ack_cq_events(ev_cq, 1);
		if (ibv_req_notify_cq(r->cq, 0))
			return -1;
		while ((n = ibv_poll_cq(r->cq, 1, &wc)) > 0) {
			if (wc.status != IBV_WC_SUCCESS)
				return -1;
			done++;
		}
	}
	return memcmp(r->buf[1], &i, sizeof(i)) ? -1 : 0;
}

static int rig_run(struct rig *r, int n, const char *who)
{
	int i;

	for (i = 0; i < n; i++) {
		if (rig_round(r, i)) {
			fprintf(stderr, "%s: round %d failed\n", who, i);
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 200, st;
	char *args[] = { "ibv_devices", NULL };
	struct rig parent, child;
	pid_t pid;

	if (rig_open(&parent) || rig_run(&parent, n, "parent before fork"))
		return 1;
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		/* the parent's objects are not ours: new ones, new events */
		if (rig_open(&child) || rig_run(&child, n, "child"))
			_exit(2);
		_exit(0);
	}
	if (rig_run(&parent, n, "parent after fork"))
		return 3;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "child failed\n");
		return 4;
	}
	if (posix_spawnp(&pid, args[0], NULL, NULL, args, environ) ||
	    waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		return 5;
	if (rig_run(&parent, n, "parent at the end"))
		return 6;
	printf("fork_child: %d rounds in the parent (x3) and the child\n", n);
	return 0;
}
