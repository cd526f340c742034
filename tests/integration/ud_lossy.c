/* SPDX-License-Identifier: MIT */
/*
 * UD SENDs between two processes on two simulated nodes over a fabric that
 * drops 10 % and corrupts 1 % of the packets.  Every fourth message carries a
 * wrong Q_Key.  The receiver (40-byte GRH in front of each buffer) must get a
 * subset of the right-keyed messages: none twice, none damaged, none with the
 * wrong Q_Key, src_qp the sender's QPN.  All send completions succeed.
 */
#include "itest.h"

#define NMSG 4000
#define MSG_SIZE 256
#define GRH_SIZE 40
#define SLOT (GRH_SIZE + MSG_SIZE)
#define WINDOW 64
#define FAULTS "drop=0.1,corrupt=0.01"
#define BAD_QKEY (IT_QKEY ^ 0x33333333u)
#define TAG_GO 0x60
#define TAG_DONE 0xd0

struct msg_hdr {
	uint64_t seq;
	uint64_t csum;
};

static bool bad_qkey(uint64_t seq)
{
	return seq % 4 == 3;
}

static uint64_t body_csum(const uint8_t *m, uint64_t seq)
{
	return it_csum(m + sizeof(struct msg_hdr),
		       MSG_SIZE - sizeof(struct msg_hdr)) ^
	       seq;
}

static void make_msg(uint8_t *m, uint64_t seq)
{
	struct msg_hdr *h = (struct msg_hdr *)m;

	it_fill(m + sizeof(*h), MSG_SIZE - sizeof(*h), seq);
	h->seq = seq;
	h->csum = body_csum(m, seq);
}

static void send_all(struct ibv_qp *qp, struct ibv_cq *cq, struct ibv_ah *ah,
		     const struct it_ep *peer, struct ibv_mr *mr)
{
	struct ibv_send_wr wr;
	struct ibv_wc wc[WINDOW];
	uint64_t posted = 0, done = 0;
	uint8_t *m;
	int i, k;

	while (done < NMSG) {
		while (posted < NMSG && posted - done < WINDOW) {
			m = (uint8_t *)mr->addr + (posted % WINDOW) * MSG_SIZE;
			make_msg(m, posted);
			memset(&wr, 0, sizeof(wr));
			wr.wr_id = posted;
			wr.opcode = IBV_WR_SEND;
			wr.send_flags = IBV_SEND_SIGNALED;
			wr.wr.ud.ah = ah;
			wr.wr.ud.remote_qpn = peer->qpn;
			wr.wr.ud.remote_qkey = bad_qkey(posted) ? BAD_QKEY :
								  IT_QKEY;
			it_post(qp, &wr, m, MSG_SIZE, mr->lkey);
			posted++;
		}
		k = it_poll_some(cq, wc, WINDOW);
		for (i = 0; i < k; i++, done++) {
			IT_WC_OK(&wc[i]);
			IT_ASSERT(wc[i].wr_id == done &&
				  wc[i].opcode == IBV_WC_SEND);
		}
	}
}

static int sender(int fd, int idx)
{
	struct it_ep me, peer;
	struct it_dev d;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	struct ibv_ah *ah;
	uint8_t *buf;

	it_faults(FAULTS, 1 + (unsigned int)idx);
	it_node("ud-sender");
	it_open(&d);
	cq = it_cq(&d, 2 * WINDOW, NULL);
	qp = it_qp(&d, IBV_QPT_UD, cq, NULL, WINDOW, 1);
	buf = it_alloc(WINDOW * MSG_SIZE);
	mr = it_reg(&d, buf, WINDOW * MSG_SIZE, IBV_ACCESS_LOCAL_WRITE);
	it_ep_init(&d, qp, NULL, &me);
	it_xchg(fd, &me, 1, &peer);
	it_connect(&d, qp, &me, &peer, NULL);
	ah = it_ah(&d, &peer);
	it_sync(fd, TAG_GO);
	send_all(qp, cq, ah, &peer, mr);
	it_sync(fd, TAG_DONE);
	it_sync(fd, TAG_DONE + 1);
	IT_ASSERT(d.ops->destroy_ah(ah) == 0);
	it_destroy_qp(&d, qp);
	it_destroy_cq(&d, cq);
	it_dereg(&d, mr);
	it_close(&d);
	free(buf);
	return 0;
}

/*
 * With a GID that is not IPv4-mapped, the GRH is an IPv6 header: source GID
 * at byte 8, destination GID at byte 24 (with an IPv4-mapped one rxe puts an
 * IPv4 header in the last 20 bytes instead).
 */
static void check_grh(const uint8_t *grh, const struct it_ep *src,
		      const struct it_ep *dst)
{
	static const uint8_t v4[12] = { [10] = 0xff, [11] = 0xff };

	if (!memcmp(src->gid, v4, sizeof(v4)))
		return;
	IT_ASSERT(!memcmp(grh + 8, src->gid, 16) &&
			  !memcmp(grh + 24, dst->gid, 16),
		  "GRH does not carry the sender's and receiver's GIDs");
}

/* Check one arrival; returns its sequence number. */
static uint64_t check_arrival(const struct ibv_wc *wc, const uint8_t *slot,
			      const struct it_ep *ep, uint8_t *seen)
{
	const uint8_t *m = slot + GRH_SIZE;
	const struct msg_hdr *h = (const struct msg_hdr *)m;

	IT_WC_OK(wc);
	IT_ASSERT(wc->opcode == IBV_WC_RECV && wc->byte_len == SLOT,
		  "opcode %d byte_len %u", wc->opcode, wc->byte_len);
	IT_ASSERT(wc->wc_flags & IBV_WC_GRH, "no GRH flag");
	IT_ASSERT(wc->src_qp == ep[1].qpn, "src_qp %#x, sender is %#x",
		  wc->src_qp, ep[1].qpn);
	check_grh(slot, &ep[1], &ep[0]);
	IT_ASSERT(h->seq < NMSG, "garbage sequence %" PRIu64, h->seq);
	IT_ASSERT(h->csum == body_csum(m, h->seq),
		  "message %" PRIu64 " corrupted", h->seq);
	IT_ASSERT(!bad_qkey(h->seq),
		  "message %" PRIu64 " with a wrong Q_Key delivered", h->seq);
	IT_ASSERT(!seen[h->seq], "message %" PRIu64 " delivered twice", h->seq);
	seen[h->seq] = 1;
	return h->seq;
}

/* ep[0]: this receiver, ep[1]: the sender */
static unsigned int receive(int fd, struct ibv_cq *cq, uint8_t *buf,
			    const struct it_ep *ep)
{
	static uint8_t seen[NMSG];
	struct ibv_wc wc[64];
	unsigned int got = 0, quiet_ms = 0;
	bool done = false;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int i, k;

	/* poll until the sender is done, then until 500 ms of silence */
	while (!done || quiet_ms < 500) {
		k = it_poll_for(cq, wc, 64, 10);
		for (i = 0; i < k; i++, got++)
			check_arrival(&wc[i], buf + wc[i].wr_id * SLOT, ep,
				      seen);
		if (!done && poll(&pfd, 1, 0) > 0) {
			it_expect(fd, TAG_DONE);
			it_send_u64(fd, TAG_DONE);
			done = true;
		}
		quiet_ms = k ? 0 : quiet_ms + 10;
		IT_ASSERT(done || quiet_ms < it_timeout_ns() / 1000000, "nothin"
									"g "
									"from "
									"the "
									"sende"
									"r");
	}
	return got;
}

int main(int argc, char **argv)
{
	static const struct it_role roles[] = { { "sender", sender },
						{ NULL, NULL } };
	int rc = it_child_main(argc, argv, roles), fd, i;
	unsigned int got, good = NMSG - NMSG / 4;
	struct it_ep ep[2];
	struct it_dev d;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	uint8_t *buf;
	pid_t pid;

	if (rc >= 0)
		return rc;
	*it_role_p() = "receiver";
	it_faults(FAULTS, 0);
	pid = it_spawn("sender", 0, &fd);
	it_node("ud-receiver");
	it_open(&d);
	cq = it_cq(&d, NMSG + 64, NULL);
	qp = it_qp(&d, IBV_QPT_UD, cq, NULL, 1, NMSG);
	buf = it_alloc((size_t)NMSG * SLOT);
	mr = it_reg(&d, buf, (size_t)NMSG * SLOT, IBV_ACCESS_LOCAL_WRITE);
	it_ep_init(&d, qp, NULL, &ep[0]);
	it_xchg(fd, &ep[0], 1, &ep[1]);
	it_connect(&d, qp, &ep[0], &ep[1], NULL);
	for (i = 0; i < NMSG; i++)
		it_post_recv(qp, NULL, (uint64_t)i, buf + (size_t)i * SLOT,
			     SLOT, mr->lkey);
	it_sync(fd, TAG_GO);
	got = receive(fd, cq, buf, ep);
	IT_ASSERT(got >= good / 2 && got <= good,
		  "%u of %u right-keyed messages arrived", got, good);
	it_sync(fd, TAG_DONE + 1);
	it_destroy_qp(&d, qp);
	it_destroy_cq(&d, cq);
	it_dereg(&d, mr);
	it_close(&d);
	free(buf);
	it_reap(pid);
	printf("ud_lossy: %u of %u UD messages (Q_Key right) arrived with %s, "
	       "0 of %u with a wrong Q_Key; no duplicate, no corruption, "
	       "GRH + src_qp right\n",
	       got, good, FAULTS, NMSG / 4);
	return 0;
}
