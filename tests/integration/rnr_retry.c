/* SPDX-License-Identifier: MIT */
/*
 * RNR retry between two processes.  For rnr_retry 0..6 the receiver posts no
 * receive: the first SEND completes with IBV_WC_RNR_RETRY_EXC_ERR, the two
 * posted after it with IBV_WC_WR_FLUSH_ERR, and the QP is in ERR.  With
 * rnr_retry 7 (retry forever) the SEND neither completes nor fails until the
 * receiver posts a receive late; then it completes successfully and the
 * receiver gets the message.
 */
#include "itest.h"

#define MSG "not ready, then ready"
#define TAG_POST 0x9057
#define TAG_NEXT 0x4e7

struct side {
	struct it_dev d;
	struct ibv_cq *cq;
	struct ibv_mr *mr;
	char buf[64];
};

static void side_up(struct side *s)
{
	it_open(&s->d);
	s->cq = it_cq(&s->d, 16, NULL);
	s->mr = it_reg(&s->d, s->buf, sizeof(s->buf), IBV_ACCESS_LOCAL_WRITE);
}

static void side_down(struct side *s)
{
	it_destroy_cq(&s->d, s->cq);
	it_dereg(&s->d, s->mr);
	it_close(&s->d);
}

static struct ibv_qp *pair(struct side *s, int fd, const struct it_conn *c)
{
	struct ibv_qp *qp = it_qp(&s->d, IBV_QPT_RC, s->cq, NULL, 4, 4);
	struct it_ep me, peer;

	it_ep_init(&s->d, qp, NULL, &me);
	it_xchg(fd, &me, 1, &peer);
	it_connect(&s->d, qp, &me, &peer, c);
	return qp;
}

static int receiver(int fd, int idx)
{
	struct it_conn c = it_conn_default();
	static struct side s;
	struct ibv_qp *qp;
	struct ibv_wc wc;
	int r;

	(void)idx;
	side_up(&s);
	c.min_rnr_timer = 1;
	for (r = 0; r <= 7; r++) {
		if (r == 7)
			c.min_rnr_timer = 12;
		qp = pair(&s, fd, &c);
		if (r == 7) {
			it_expect(fd, TAG_POST);
			it_post_recv(qp, NULL, 7, s.buf, sizeof(s.buf),
				     s.mr->lkey);
			it_poll_ok(s.cq, &wc);
			IT_ASSERT(wc.opcode == IBV_WC_RECV &&
				  wc.byte_len == sizeof(MSG) &&
				  !strcmp(s.buf, MSG));
		}
		it_sync(fd, TAG_NEXT + (uint64_t)r);
		it_destroy_qp(&s.d, qp);
	}
	side_down(&s);
	return 0;
}

static void rnr_exhausted(struct side *s, struct ibv_qp *qp, int r)
{
	struct ibv_wc wc[3];
	int i;

	for (i = 0; i < 3; i++)
		it_post_send(qp, (uint64_t)i, s->buf, sizeof(MSG), s->mr->lkey);
	it_poll_n(s->cq, wc, 3);
	IT_ASSERT(wc[0].wr_id == 0 && wc[0].status == IBV_WC_RNR_RETRY_EXC_ERR,
		  "rnr_retry %d: wr_id %" PRIu64 " status %s", r,
		  (uint64_t)wc[0].wr_id, ibv_wc_status_str(wc[0].status));
	for (i = 1; i < 3; i++)
		IT_ASSERT(wc[i].wr_id == (uint64_t)i &&
				  wc[i].status == IBV_WC_WR_FLUSH_ERR,
			  "rnr_retry %d: wr_id %" PRIu64 " status %s", r,
			  (uint64_t)wc[i].wr_id,
			  ibv_wc_status_str(wc[i].status));
	IT_ASSERT(it_qp_state(&s->d, qp) == IBV_QPS_ERR);
}

static void rnr_forever(struct side *s, struct ibv_qp *qp, int fd)
{
	struct ibv_wc wc;

	it_post_send(qp, 7, s->buf, sizeof(MSG), s->mr->lkey);
	IT_ASSERT(it_poll_for(s->cq, &wc, 1, 300) == 0,
		  "rnr_retry 7 with no receive posted: completion %s",
		  ibv_wc_status_str(wc.status));
	IT_ASSERT(it_qp_state(&s->d, qp) == IBV_QPS_RTS);
	it_send_u64(fd, TAG_POST);
	it_poll_ok(s->cq, &wc);
	IT_ASSERT(wc.wr_id == 7 && wc.opcode == IBV_WC_SEND);
}

int main(int argc, char **argv)
{
	static const struct it_role roles[] = { { "receiver", receiver },
						{ NULL, NULL } };
	int rc = it_child_main(argc, argv, roles), fd, r;
	struct it_conn c = it_conn_default();
	static struct side s;
	struct ibv_qp *qp;
	pid_t pid;

	if (rc >= 0)
		return rc;
	*it_role_p() = "sender";
	pid = it_spawn("receiver", 0, &fd);
	side_up(&s);
	strcpy(s.buf, MSG);
	for (r = 0; r <= 7; r++) {
		c.rnr_retry = (uint8_t)r;
		qp = pair(&s, fd, &c);
		if (r < 7)
			rnr_exhausted(&s, qp, r);
		else
			rnr_forever(&s, qp, fd);
		it_sync(fd, TAG_NEXT + (uint64_t)r);
		it_destroy_qp(&s.d, qp);
	}
	side_down(&s);
	it_reap(pid);
	printf("rnr_retry: rnr_retry 0..6 with no receive -> RNR_RETRY_EXC_ERR "
	       "then WR_FLUSH_ERR, QP in ERR; rnr_retry 7 waits for a late "
	       "receive and succeeds\n");
	return 0;
}
