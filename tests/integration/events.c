/* SPDX-License-Identifier: MIT */
/*
 * Completion channels between two processes; each side's receive CQ is on a
 * channel, its send CQ is polled.
 *   - Wake-ups: the receiver arms its empty CQ, then lets the sender send;
 *     it must be woken by exactly one event per message, from a blocking
 *     get_cq_event or after poll(2) on the channel fd, in both directions.
 *   - A ping-pong of NROUND round trips through arm / poll / get_cq_event,
 *     ack_cq_events in batches.
 *   - Solicited-only arming: an unsolicited SEND raises no event, a
 *     solicited one does; without re-arming, the next solicited SEND raises
 *     none.
 */
#include "itest.h"

#define NWAKE 20
#define NROUND 200
#define MSG_SIZE 16
#define NRECV 16
#define TAG_ARMED 0xa4
#define TAG_SENT 0x5e
#define TAG_DONE 0xd0

struct side {
	struct it_dev d;
	struct ibv_comp_channel *ch;
	struct ibv_cq *rcq, *scq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	uint8_t *buf; /* NRECV receive slots, then the send slot */
	unsigned int events, unacked;
};

static void side_up(struct side *s, int fd)
{
	struct ibv_qp_init_attr ia = { .cap = { NRECV, NRECV, 1, 1, 0 },
				       .qp_type = IBV_QPT_RC };
	struct it_ep me, peer;
	int i;

	it_open(&s->d);
	s->ch = s->d.ops->create_comp_channel(s->d.ctx);
	IT_ASSERT(s->ch, "create_comp_channel: %s", strerror(errno));
	s->rcq = it_cq(&s->d, 2 * NRECV, s->ch);
	s->scq = it_cq(&s->d, 2 * NRECV, NULL);
	ia.send_cq = s->scq;
	ia.recv_cq = s->rcq;
	s->qp = s->d.ops->create_qp(s->d.pd, &ia);
	IT_ASSERT(s->qp, "create_qp: %s", strerror(errno));
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
	IT_ASSERT(cq == s->rcq, "event for another CQ");
	s->events++;
	if (++s->unacked == 8) {
		s->d.ops->ack_cq_events(s->rcq, s->unacked);
		s->unacked = 0;
	}
}

static void send_msg(struct side *s, uint64_t seq, unsigned int flags)
{
	struct ibv_send_wr wr = { .wr_id = seq,
				  .opcode = IBV_WR_SEND,
				  .send_flags = IBV_SEND_SIGNALED | flags };
	uint8_t *m = s->buf + NRECV * MSG_SIZE;
	struct ibv_wc wc;

	memcpy(m, &seq, sizeof(seq));
	it_post(s->qp, &wr, m, MSG_SIZE, s->mr->lkey);
	it_poll_ok(s->scq, &wc);
	IT_ASSERT(wc.wr_id == seq && wc.opcode == IBV_WC_SEND);
}

/* Check that @wc is the receive of @seq; re-post its slot. */
static void take(struct side *s, const struct ibv_wc *wc, uint64_t seq)
{
	uint8_t *m = s->buf + wc->wr_id * MSG_SIZE;
	uint64_t got;

	IT_WC_OK(wc);
	IT_ASSERT(wc->opcode == IBV_WC_RECV, "opcode %d", wc->opcode);
	memcpy(&got, m, sizeof(got));
	IT_ASSERT(got == seq, "got message %" PRIu64 ", want %" PRIu64, got,
		  seq);
	it_post_recv(s->qp, NULL, wc->wr_id, m, MSG_SIZE, s->mr->lkey);
}

/* Receive @seq, sleeping on the channel whenever the CQ is empty. */
static void recv_msg(struct side *s, uint64_t seq, bool use_poll)
{
	struct ibv_wc wc;

	for (;;) {
		if (ibv_poll_cq(s->rcq, 1, &wc) == 1)
			break;
		IT_ASSERT(ibv_req_notify_cq(s->rcq, 0) == 0);
		/* one may have come before the arming */
		if (ibv_poll_cq(s->rcq, 1, &wc) == 1)
			break;
		get_event(s, use_poll);
	}
	take(s, &wc, seq);
}

/*
 * Round @r of the wake-up phase.  The receiver arms its empty CQ before
 * the sender may send, so only the event can wake it.
 */
static void wake_round(struct side *s, int fd, int r, bool receiver)
{
	struct ibv_wc wc;

	if (!receiver) {
		it_expect(fd, TAG_ARMED);
		send_msg(s, (uint64_t)r, 0);
		return;
	}
	IT_ASSERT(ibv_req_notify_cq(s->rcq, 0) == 0);
	IT_ASSERT(ibv_poll_cq(s->rcq, 1, &wc) == 0, "CQ not empty");
	it_send_u64(fd, TAG_ARMED);
	get_event(s, r % 4 >= 2);
	IT_ASSERT(ibv_poll_cq(s->rcq, 1, &wc) == 1, "woken, but the CQ is "
						    "empty");
	take(s, &wc, (uint64_t)r);
}

/* Consume every completion and every event still queued, ack them all. */
static void quiesce(struct side *s)
{
	struct pollfd pfd = { .fd = s->ch->fd, .events = POLLIN };
	struct ibv_wc wc;

	IT_ASSERT(it_poll_for(s->rcq, &wc, 1, 50) == 0, "stray receive");
	while (poll(&pfd, 1, 50) > 0)
		get_event(s, false);
	s->d.ops->ack_cq_events(s->rcq, s->unacked);
	s->unacked = 0;
}

static void side_down(struct side *s)
{
	quiesce(s);
	it_destroy_qp(&s->d, s->qp);
	it_destroy_cq(&s->d, s->rcq);
	it_destroy_cq(&s->d, s->scq);
	IT_ASSERT(s->d.ops->destroy_comp_channel(s->ch) == 0);
	it_dereg(&s->d, s->mr);
	it_close(&s->d);
	free(s->buf);
}

/* Busy-poll the receive of @seq (no channel involved). */
static void take_polled(struct side *s, uint64_t seq)
{
	struct ibv_wc wc;

	it_poll_one(s->rcq, &wc);
	take(s, &wc, seq);
}

/*
 * Solicited-only arming, receiving side.  An arming for "next" lasts until
 * an event fires (and outranks a solicited one), so first let one fire.
 */
static void solicited_rx(struct side *s, int fd)
{
	struct pollfd pfd = { .fd = s->ch->fd, .events = POLLIN };

	quiesce(s);
	IT_ASSERT(ibv_req_notify_cq(s->rcq, 0) == 0);
	it_send_u64(fd, TAG_ARMED);
	get_event(s, true);
	take_polled(s, 1000);

	IT_ASSERT(ibv_req_notify_cq(s->rcq, 1) == 0);
	it_send_u64(fd, TAG_ARMED);
	it_expect(fd, TAG_SENT); /* unsolicited one delivered */
	IT_ASSERT(poll(&pfd, 1, 200) == 0, "event for an unsolicited SEND with "
					   "solicited-only arming");
	take_polled(s, 1001);
	it_send_u64(fd, TAG_ARMED);
	get_event(s, true); /* the solicited one */
	take_polled(s, 1002);
	it_send_u64(fd, TAG_ARMED); /* not re-armed: no event now */
	it_expect(fd, TAG_SENT);
	take_polled(s, 1003);
	IT_ASSERT(poll(&pfd, 1, 200) == 0, "event without re-arming");
}

static void solicited_tx(struct side *s, int fd)
{
	static const unsigned int flags[] = { 0, 0, IBV_SEND_SOLICITED,
					      IBV_SEND_SOLICITED };
	int i;

	for (i = 0; i < 4; i++) {
		it_expect(fd, TAG_ARMED);
		send_msg(s, 1000 + (uint64_t)i, flags[i]);
		if (i == 1 || i == 3)
			it_send_u64(fd, TAG_SENT);
	}
}

/* Both sides run this; @first says who sends first. */
static void run(struct side *s, int fd, bool first)
{
	uint64_t i;
	int r;

	it_sync(fd, TAG_DONE);
	for (r = 0; r < NWAKE; r++)
		wake_round(s, fd, r, (r % 2 == 0) != first);
	it_sync(fd, TAG_DONE);
	for (i = 0; i < NROUND; i++) {
		if (first) {
			send_msg(s, i, 0);
			recv_msg(s, i, i % 2);
		} else {
			recv_msg(s, i, i % 2);
			send_msg(s, i, 0);
		}
	}
	it_sync(fd, TAG_DONE + 1);
	if (first)
		solicited_tx(s, fd);
	else
		solicited_rx(s, fd);
	it_sync(fd, TAG_DONE + 2);
}

static int ponger(int fd, int idx)
{
	static struct side s;

	(void)idx;
	side_up(&s, fd);
	run(&s, fd, false);
	side_down(&s);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct it_role roles[] = { { "ponger", ponger },
						{ NULL, NULL } };
	int rc = it_child_main(argc, argv, roles), fd;
	static struct side s;
	pid_t pid;

	if (rc >= 0)
		return rc;
	*it_role_p() = "pinger";
	pid = it_spawn("ponger", 0, &fd);
	side_up(&s, fd);
	run(&s, fd, true);
	side_down(&s);
	it_reap(pid);
	printf("events: %d wake-ups by one event each (blocking and poll(2), "
	       "both ways), %d ping-pong rounds through arm/poll/get/ack; "
	       "solicited-only arming ignores unsolicited SENDs and fires "
	       "once\n",
	       NWAKE, NROUND);
	return 0;
}
