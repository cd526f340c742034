/* SPDX-License-Identifier: MIT */
/*
 * Completion channels between two processes.
 *   - A ping-pong of NROUND round trips where both sides sleep for their
 *     completions: req_notify_cq, then get_cq_event blocking (even rounds)
 *     or after poll(2) on the channel fd (odd rounds), ack_cq_events in
 *     batches.  Each side must have slept on events for most rounds.
 *   - Solicited-only arming: an unsolicited SEND raises no event, a
 *     solicited one does; without re-arming, the next solicited SEND raises
 *     none.
 */
#include "itest.h"

#define NROUND 200
#define MSG_SIZE 16
#define NRECV 16
#define TAG_ARMED 0xa4
#define TAG_SENT 0x5e
#define TAG_DONE 0xd0

struct side {
	struct it_dev d;
	struct ibv_comp_channel *ch;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	uint8_t *buf;           /* NRECV receive slots, then the send slot */
	unsigned int events, unacked;
};

static void side_up(struct side *s, int fd)
{
	struct it_ep me, peer;
	int i;

	it_open(&s->d);
	s->ch = s->d.ops->create_comp_channel(s->d.ctx);
	IT_ASSERT(s->ch, "create_comp_channel: %s", strerror(errno));
	s->cq = it_cq(&s->d, 64, s->ch);
	s->qp = it_qp(&s->d, IBV_QPT_RC, s->cq, NULL, NRECV, NRECV);
	s->buf = it_alloc((NRECV + 1) * MSG_SIZE);
	s->mr = it_reg(&s->d, s->buf, (NRECV + 1) * MSG_SIZE,
		       IBV_ACCESS_LOCAL_WRITE);
	it_ep_init(&s->d, s->qp, NULL, &me);
	it_xchg(fd, &me, 1, &peer);
	it_connect(&s->d, s->qp, &me, &peer, NULL);
	for (i = 0; i < NRECV; i++)
		it_post_recv(s->qp, NULL, (uint64_t)i, s->buf + i * MSG_SIZE,
			     MSG_SIZE, s->mr->lkey);
}

static void get_event(struct side *s, bool use_poll)
{
	struct ibv_cq *cq;
	void *cq_ctx;

	if (use_poll)
		it_wait_fd(s->ch->fd, POLLIN, it_timeout_ns(), "channel fd");
	it_alarm(true);
	IT_ASSERT(s->d.ops->get_cq_event(s->ch, &cq, &cq_ctx) == 0,
		  "get_cq_event: %s", strerror(errno));
	it_alarm(false);
	IT_ASSERT(cq == s->cq, "event for another CQ");
	s->events++;
	if (++s->unacked == 16) {
		s->d.ops->ack_cq_events(s->cq, s->unacked);
		s->unacked = 0;
	}
}

/* The next completion, sleeping on the channel when there is none. */
static void next_wc(struct side *s, struct ibv_wc *wc, bool use_poll)
{
	for (;;) {
		if (ibv_poll_cq(s->cq, 1, wc) == 1)
			break;
		IT_ASSERT(ibv_req_notify_cq(s->cq, 0) == 0);
		/* one may have come before the arming */
		if (ibv_poll_cq(s->cq, 1, wc) == 1)
			break;
		get_event(s, use_poll);
	}
	IT_WC_OK(wc);
}

static void send_msg(struct side *s, uint64_t seq, unsigned int flags)
{
	struct ibv_send_wr wr = { .wr_id = seq, .opcode = IBV_WR_SEND,
				  .send_flags = IBV_SEND_SIGNALED | flags };
	uint8_t *m = s->buf + NRECV * MSG_SIZE;

	memcpy(m, &seq, sizeof(seq));
	it_post(s->qp, &wr, m, MSG_SIZE, s->mr->lkey);
}

/* Take completions until the receive of @seq; re-post its slot. */
static void recv_msg(struct side *s, uint64_t seq, bool use_poll)
{
	struct ibv_wc wc;
	uint64_t got;

	for (;;) {
		next_wc(s, &wc, use_poll);
		if (wc.opcode == IBV_WC_RECV)
			break;
		IT_ASSERT(wc.opcode == IBV_WC_SEND);
	}
	memcpy(&got, s->buf + wc.wr_id * MSG_SIZE, sizeof(got));
	IT_ASSERT(got == seq, "got message %" PRIu64 ", want %" PRIu64, got,
		  seq);
	it_post_recv(s->qp, NULL, wc.wr_id, s->buf + wc.wr_id * MSG_SIZE,
		     MSG_SIZE, s->mr->lkey);
}

/* Consume every completion and every event still queued. */
static void quiesce(struct side *s)
{
	struct ibv_wc wc;

	while (it_poll_for(s->cq, &wc, 1, 100) == 1)
		IT_WC_OK(&wc);
	while (poll(&(struct pollfd){ .fd = s->ch->fd, .events = POLLIN }, 1,
		    50) > 0)
		get_event(s, false);
	s->d.ops->ack_cq_events(s->cq, s->unacked);
	s->unacked = 0;
}

static void side_down(struct side *s)
{
	quiesce(s);
	it_destroy_qp(&s->d, s->qp);
	it_destroy_cq(&s->d, s->cq);
	IT_ASSERT(s->d.ops->destroy_comp_channel(s->ch) == 0);
	it_dereg(&s->d, s->mr);
	it_close(&s->d);
	free(s->buf);
}

/* Busy-poll the receive of @seq (no channel involved). */
static void take_recv(struct side *s, uint64_t seq)
{
	struct ibv_wc wc;
	uint64_t got;

	it_poll_ok(s->cq, &wc);
	IT_ASSERT(wc.opcode == IBV_WC_RECV, "opcode %d", wc.opcode);
	memcpy(&got, s->buf + wc.wr_id * MSG_SIZE, sizeof(got));
	IT_ASSERT(got == seq, "got message %" PRIu64 ", want %" PRIu64, got,
		  seq);
}

/*
 * Solicited-only arming, receiving side.  An arming for "next" lasts until
 * an event fires (and outranks a solicited one), so first let one fire.
 */
static void solicited_rx(struct side *s, int fd)
{
	struct pollfd pfd = { .fd = s->ch->fd, .events = POLLIN };

	quiesce(s);
	IT_ASSERT(ibv_req_notify_cq(s->cq, 0) == 0);
	it_send_u64(fd, TAG_ARMED);
	get_event(s, true);
	take_recv(s, 1000);

	IT_ASSERT(ibv_req_notify_cq(s->cq, 1) == 0);
	it_send_u64(fd, TAG_ARMED);
	it_expect(fd, TAG_SENT);        /* unsolicited one delivered */
	IT_ASSERT(poll(&pfd, 1, 200) == 0,
		  "event for an unsolicited SEND with solicited-only arming");
	take_recv(s, 1001);
	it_send_u64(fd, TAG_ARMED);
	get_event(s, true);             /* the solicited one */
	take_recv(s, 1002);
	it_send_u64(fd, TAG_ARMED);     /* not re-armed: no event now */
	it_expect(fd, TAG_SENT);
	take_recv(s, 1003);
	IT_ASSERT(poll(&pfd, 1, 200) == 0, "event without re-arming");
}

static void solicited_tx(struct side *s, int fd)
{
	static const unsigned int flags[] = { 0, 0, IBV_SEND_SOLICITED,
					      IBV_SEND_SOLICITED };
	struct ibv_wc wc;
	int i;

	quiesce(s);
	for (i = 0; i < 4; i++) {
		it_expect(fd, TAG_ARMED);
		send_msg(s, 1000 + (uint64_t)i, flags[i]);
		it_poll_ok(s->cq, &wc);
		IT_ASSERT(wc.opcode == IBV_WC_SEND);
		if (i == 1 || i == 3)
			it_send_u64(fd, TAG_SENT);
	}
}

static int ponger(int fd, int idx)
{
	static struct side s;
	uint64_t i;

	(void)idx;
	side_up(&s, fd);
	it_sync(fd, TAG_DONE);
	for (i = 0; i < NROUND; i++) {
		recv_msg(&s, i, i % 2);
		send_msg(&s, i, 0);
	}
	it_send_u64(fd, s.events);
	solicited_rx(&s, fd);
	it_sync(fd, TAG_DONE);
	side_down(&s);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct it_role roles[] = { { "ponger", ponger },
						{ NULL, NULL } };
	int rc = it_child_main(argc, argv, roles), fd;
	static struct side s;
	uint64_t i, peer_events;
	pid_t pid;

	if (rc >= 0)
		return rc;
	*it_role_p() = "pinger";
	pid = it_spawn("ponger", 0, &fd);
	side_up(&s, fd);
	it_sync(fd, TAG_DONE);
	for (i = 0; i < NROUND; i++) {
		send_msg(&s, i, 0);
		recv_msg(&s, i, i % 2);
	}
	peer_events = it_recv_u64(fd);
	IT_ASSERT(s.events >= NROUND / 2 && peer_events >= NROUND / 2,
		  "slept on %u and %" PRIu64 " events in %d rounds", s.events,
		  peer_events, NROUND);
	solicited_tx(&s, fd);
	it_sync(fd, TAG_DONE);
	side_down(&s);
	it_reap(pid);
	printf("events: %d ping-pong rounds woken by completion events (%u + %"
	       PRIu64 " events, blocking and poll(2)); solicited-only arming "
	       "ignores unsolicited SENDs and fires once\n",
	       NROUND, s.events, peer_events);
	return 0;
}
