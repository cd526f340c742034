/* SPDX-License-Identifier: MIT */
/*
 * A peer that does not run is late, not lost.  A real HCA answers whatever
 * its host does; the fake HCA answers from the peer's process, which a busy
 * host may not schedule for longer than a QP's whole retry budget.  Here the
 * receiver is stopped (SIGSTOP) for many times that budget (timeout 1,
 * retry_cnt 1: about a millisecond) while SENDs, an RDMA WRITE and an RDMA
 * READ to it are outstanding; after SIGCONT every one completes successfully
 * and every message arrives once, in order.  The fake HCA must not count a
 * retry while what it sent still waits in the stopped peer's ring.
 */
#include <dirent.h>
#include <signal.h>

#include "itest.h"

#define NSEND 8
#define MSG_SIZE 64
#define STOP_MS 300
#define TAG_READY 0x5eed
#define TAG_DONE 0xd0e

struct side {
	struct it_dev d;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	uint8_t buf[(NSEND + 2) * MSG_SIZE];
};

static struct it_conn conn(void)
{
	struct it_conn c = it_conn_default();

	c.timeout = 1; /* 8 us, the fake HCA's minimum RTO: 0.5 ms */
	c.retry_cnt = 1;
	return c;
}

static void side_up(struct side *s, int fd, struct it_ep *peer)
{
	struct it_conn c = conn();
	struct it_ep me;

	it_open(&s->d);
	s->cq = it_cq(&s->d, 2 * NSEND + 4, NULL);
	s->qp = it_qp(&s->d, IBV_QPT_RC, s->cq, NULL, NSEND + 2, NSEND);
	s->mr = it_reg(&s->d, s->buf, sizeof(s->buf), IT_ACCESS_ALL);
	it_ep_init(&s->d, s->qp, s->mr, &me);
	it_xchg(fd, &me, 1, peer);
	it_connect(&s->d, s->qp, &me, peer, &c);
}

static void side_down(struct side *s)
{
	it_destroy_qp(&s->d, s->qp);
	it_destroy_cq(&s->d, s->cq);
	it_dereg(&s->d, s->mr);
	it_close(&s->d);
}

static int receiver(int fd, int idx)
{
	static struct side s;
	struct ibv_wc wc;
	struct it_ep peer;
	int i;

	(void)idx;
	side_up(&s, fd, &peer);
	for (i = 0; i < NSEND; i++)
		it_post_recv(s.qp, NULL, (uint64_t)i, s.buf + i * MSG_SIZE,
			     MSG_SIZE, s.mr->lkey);
	/* the READ's source */
	it_fill(s.buf + (NSEND + 1) * MSG_SIZE, MSG_SIZE, 0xfeed);
	it_sync(fd, TAG_READY);
	for (i = 0; i < NSEND; i++) {
		it_poll_ok(s.cq, &wc);
		IT_ASSERT(wc.opcode == IBV_WC_RECV && wc.wr_id == (uint64_t)i &&
				  wc.byte_len == MSG_SIZE,
			  "receive %d: wr_id %" PRIu64, i, (uint64_t)wc.wr_id);
		IT_ASSERT(s.buf[i * MSG_SIZE] == (uint8_t)i,
			  "message %d carries %u", i, s.buf[i * MSG_SIZE]);
	}
	IT_ASSERT(it_poll_for(s.cq, &wc, 1, 50) == 0, "a message arrived "
						      "twice");
	it_sync(fd, TAG_DONE);
	/* the WRITE landed in slot NSEND */
	IT_ASSERT(s.buf[NSEND * MSG_SIZE] == 0x77, "WRITE not applied");
	side_down(&s);
	return 0;
}

/* True when every thread of @pid is stopped (state T in its stat). */
static bool all_stopped(pid_t pid)
{
	char path[320], buf[256], *p;
	bool stopped = true;
	struct dirent *e;
	DIR *dir;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	IT_ASSERT(dir, "%s: %s", path, strerror(errno));
	while (stopped && (e = readdir(dir))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", (int)pid,
			 e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
		stopped = p && p[1] == ' ' && (p[2] == 'T' || p[2] == 't');
		fclose(f);
	}
	closedir(dir);
	return stopped;
}

int main(int argc, char **argv)
{
	static const struct it_role roles[] = { { "receiver", receiver },
						{ NULL, NULL } };
	int rc = it_child_main(argc, argv, roles), fd, i;
	struct ibv_wc wc[NSEND + 2];
	static struct side s;
	uint8_t want[MSG_SIZE];
	struct it_ep peer;
	pid_t pid;

	if (rc >= 0)
		return rc;
	*it_role_p() = "sender";
	pid = it_spawn("receiver", 0, &fd);
	side_up(&s, fd, &peer);
	it_sync(fd, TAG_READY);

	IT_ASSERT(kill(pid, SIGSTOP) == 0, "SIGSTOP: %s", strerror(errno));
	while (!all_stopped(pid))
		it_sleep_ms(1);
	for (i = 0; i < NSEND; i++) {
		memset(s.buf + i * MSG_SIZE, i, MSG_SIZE);
		it_post_send(s.qp, (uint64_t)i, s.buf + i * MSG_SIZE, MSG_SIZE,
			     s.mr->lkey);
	}
	memset(s.buf + NSEND * MSG_SIZE, 0x77, MSG_SIZE);
	it_post_rdma(s.qp, IBV_WR_RDMA_WRITE, NSEND, s.buf + NSEND * MSG_SIZE,
		     MSG_SIZE, s.mr->lkey, peer.addr + NSEND * MSG_SIZE,
		     peer.rkey, 0);
	it_post_rdma(s.qp, IBV_WR_RDMA_READ, NSEND + 1,
		     s.buf + (NSEND + 1) * MSG_SIZE, MSG_SIZE, s.mr->lkey,
		     peer.addr + (NSEND + 1) * MSG_SIZE, peer.rkey, 0);
	/* nothing may complete, in error or not, while the peer is stopped */
	rc = it_poll_for(s.cq, wc, NSEND + 2, STOP_MS);
	IT_ASSERT(kill(pid, SIGCONT) == 0, "SIGCONT: %s", strerror(errno));
	IT_ASSERT(rc == 0,
		  "%d completions while the peer was stopped, the "
		  "first %s",
		  rc, ibv_wc_status_str(wc[0].status));

	it_poll_n(s.cq, wc, NSEND + 2);
	for (i = 0; i < NSEND + 2; i++) {
		IT_WC_OK(&wc[i]);
		IT_ASSERT(wc[i].wr_id == (uint64_t)i,
			  "completion %d: wr_id %" PRIu64, i,
			  (uint64_t)wc[i].wr_id);
	}
	it_fill(want, MSG_SIZE, 0xfeed);
	IT_ASSERT(!memcmp(s.buf + (NSEND + 1) * MSG_SIZE, want, MSG_SIZE),
		  "READ returned other data");
	IT_ASSERT(it_qp_state(&s.d, s.qp) == IBV_QPS_RTS);
	it_sync(fd, TAG_DONE);
	side_down(&s);
	it_reap(pid);
	printf("peer_stalled: a receiver stopped %d ms (the retry budget is "
	       "~1 ms): %d SENDs, a WRITE and a READ all complete once it "
	       "runs again, each once, in order\n",
	       STOP_MS, NSEND);
	return 0;
}
