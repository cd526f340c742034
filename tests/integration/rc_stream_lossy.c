/* SPDX-License-Identifier: MIT */
/*
 * 1 GiB of 64 KiB RC SENDs from one process to another over a fabric that
 * drops 5 % and duplicates 1 % of the packets, starting just below the PSN
 * wrap.  The receiver checks that every message arrives exactly once, in
 * order (sequence number) and intact (checksum); every completion on both
 * sides must be a success.  ITEST_SCALE scales the volume.
 */
#include "itest.h"

#define MSG_SIZE (64u << 10)
#define SEND_WINDOW 16
#define RECV_WINDOW 64
#define FAULTS "drop=0.05,dup=0.01"
#define START_PSN 0xffff00u
#define TAG_GO 0x60
#define TAG_DONE 0xd0

struct msg_hdr {
	uint64_t seq;
	uint64_t csum;
};

struct side {
	struct it_dev d;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	uint8_t *buf;
};

static uint64_t nmsgs(void)
{
	uint64_t n = (uint64_t)((double)(1ull << 30) * it_scale(1.0));

	n /= MSG_SIZE;
	return n ? n : 1;
}

static uint64_t body_csum(const uint8_t *m, uint64_t seq)
{
	return it_csum(m + sizeof(struct msg_hdr),
		       MSG_SIZE - sizeof(struct msg_hdr)) ^
	       seq;
}

static void side_up(struct side *s, int fd, size_t slots)
{
	struct it_conn c = it_conn_default();
	struct it_ep me, peer;

	it_open(&s->d);
	s->cq = it_cq(&s->d, 256, NULL);
	s->qp = it_qp(&s->d, IBV_QPT_RC, s->cq, NULL, SEND_WINDOW, RECV_WINDOW);
	s->buf = it_alloc(slots * MSG_SIZE);
	s->mr = it_reg(&s->d, s->buf, slots * MSG_SIZE, IBV_ACCESS_LOCAL_WRITE);
	it_ep_init(&s->d, s->qp, s->mr, &me);
	me.psn = START_PSN;
	it_xchg(fd, &me, 1, &peer);
	c.timeout = 12;
	c.min_rnr_timer = 1;
	it_connect(&s->d, s->qp, &me, &peer, &c);
}

static void side_down(struct side *s)
{
	it_destroy_qp(&s->d, s->qp);
	it_destroy_cq(&s->d, s->cq);
	it_dereg(&s->d, s->mr);
	it_close(&s->d);
	free(s->buf);
}

static int sender(int fd, int idx)
{
	uint64_t n = nmsgs(), posted = 0, done = 0;
	struct ibv_wc wc[SEND_WINDOW];
	struct msg_hdr *h;
	struct side s;
	uint8_t *m;
	int i, k;

	it_faults(FAULTS, 1 + (unsigned int)idx);
	side_up(&s, fd, SEND_WINDOW);
	it_sync(fd, TAG_GO);
	while (done < n) {
		while (posted < n && posted - done < SEND_WINDOW) {
			m = s.buf + (posted % SEND_WINDOW) * MSG_SIZE;
			h = (struct msg_hdr *)m;
			it_fill(m + sizeof(*h), MSG_SIZE - sizeof(*h), posted);
			h->seq = posted;
			h->csum = body_csum(m, posted);
			it_post_send(s.qp, posted, m, MSG_SIZE, s.mr->lkey);
			posted++;
		}
		k = it_poll_some(s.cq, wc, SEND_WINDOW);
		for (i = 0; i < k; i++, done++) {
			IT_WC_OK(&wc[i]);
			IT_ASSERT(wc[i].wr_id == done &&
					  wc[i].opcode == IBV_WC_SEND,
				  "completion %" PRIu64 " opcode %d, want "
							"%" PRIu64,
				  (uint64_t)wc[i].wr_id, wc[i].opcode, done);
		}
	}
	it_sync(fd, TAG_DONE);
	it_sync(fd, TAG_DONE + 1);
	side_down(&s);
	return 0;
}

static void check_msg(const struct ibv_wc *wc, const uint8_t *m,
		      uint64_t expect)
{
	const struct msg_hdr *h = (const struct msg_hdr *)m;

	IT_WC_OK(wc);
	IT_ASSERT(wc->opcode == IBV_WC_RECV && wc->byte_len == MSG_SIZE,
		  "opcode %d byte_len %u", wc->opcode, wc->byte_len);
	IT_ASSERT(h->seq == expect,
		  "got message %" PRIu64 ", want %" PRIu64 " (duplicate, lost "
							   "or reordered)",
		  h->seq, expect);
	IT_ASSERT(h->csum == body_csum(m, h->seq),
		  "message %" PRIu64 " corrupted", h->seq);
}

static uint64_t receive_all(struct side *s, uint64_t n)
{
	uint64_t got = 0;
	struct ibv_wc wc[RECV_WINDOW];
	uint8_t *m;
	int i, k;

	while (got < n) {
		k = it_poll_some(s->cq, wc, RECV_WINDOW);
		for (i = 0; i < k; i++, got++) {
			m = s->buf + wc[i].wr_id * MSG_SIZE;
			check_msg(&wc[i], m, got);
			memset(m, 0, sizeof(struct msg_hdr));
			it_post_recv(s->qp, NULL, wc[i].wr_id, m, MSG_SIZE,
				     s->mr->lkey);
		}
	}
	return got;
}

int main(int argc, char **argv)
{
	static const struct it_role roles[] = { { "sender", sender },
						{ NULL, NULL } };
	int rc = it_child_main(argc, argv, roles), fd, i;
	uint64_t n = nmsgs(), t0;
	struct ibv_wc wc;
	struct side s;
	pid_t pid;

	if (rc >= 0)
		return rc;
	*it_role_p() = "receiver";
	it_faults(FAULTS, 0);
	pid = it_spawn("sender", 0, &fd);
	side_up(&s, fd, RECV_WINDOW);
	for (i = 0; i < RECV_WINDOW; i++)
		it_post_recv(s.qp, NULL, (uint64_t)i, s.buf + i * MSG_SIZE,
			     MSG_SIZE, s.mr->lkey);
	it_sync(fd, TAG_GO);
	t0 = it_now_ns();
	receive_all(&s, n);
	it_sync(fd, TAG_DONE);
	/* the sender saw all its ACKs: a late duplicate would be here now */
	IT_ASSERT(it_poll_for(s.cq, &wc, 1, 200) == 0,
		  "extra completion after the last message (status %s)",
		  ibv_wc_status_str(wc.status));
	it_sync(fd, TAG_DONE + 1);
	side_down(&s);
	it_reap(pid);
	printf("rc_stream_lossy: %" PRIu64 " MiB as %" PRIu64 " x 64 KiB RC "
							      "SENDs with %s, "
							      "PSN wrap: "
							      "exactly once, "
							      "in order, "
	       "checksums ok, all completions SUCCESS (%.1f s)\n",
	       n * MSG_SIZE >> 20, n, FAULTS, (double)(it_now_ns() - t0) / 1e9);
	return 0;
}
