/* SPDX-License-Identifier: MIT */
/*
 * CQ overflow.  A send CQ created with 4 entries (holding cq->cqe) is never
 * polled: exactly cq->cqe send completions raise no event, the ones after
 * raise IBV_EVENT_CQ_ERR for that CQ.  The same for a receive CQ that a peer
 * process fills with more SENDs than it holds.
 */
#include "itest.h"

#define SMALL 4
#define EXTRA 4
#define DEPTH 64
#define MSG_SIZE 32
#define TAG_GO 0x60
#define TAG_GOT 0x907
#define TAG_DONE 0xd0

struct side {
	struct it_dev d;
	struct ibv_cq *big, *small[2];
	struct ibv_qp *qp[2];
	struct ibv_mr *mr;
	uint8_t *buf;
};

/* qp[0]: parent sends (send CQ small[0]); qp[1]: child sends (small[1]). */
static void side_up(struct side *s, int fd, bool parent)
{
	struct ibv_qp_init_attr ia = { .cap = { DEPTH, DEPTH, 1, 1, 0 },
				       .qp_type = IBV_QPT_RC };
	struct it_conn c = it_conn_default();
	struct it_ep me[2], peer[2];
	int k;

	it_open(&s->d);
	s->big = it_cq(&s->d, 4 * DEPTH, NULL);
	for (k = 0; k < 2 && parent; k++)
		s->small[k] = it_cq(&s->d, SMALL, NULL);
	s->buf = it_alloc(DEPTH * MSG_SIZE);
	s->mr = it_reg(&s->d, s->buf, DEPTH * MSG_SIZE, IBV_ACCESS_LOCAL_WRITE);
	for (k = 0; k < 2; k++) {
		ia.send_cq = parent && k == 0 ? s->small[0] : s->big;
		ia.recv_cq = parent && k == 1 ? s->small[1] : s->big;
		s->qp[k] = s->d.ops->create_qp(s->d.pd, &ia);
		IT_ASSERT(s->qp[k], "create_qp: %s", strerror(errno));
		it_ep_init(&s->d, s->qp[k], NULL, &me[k]);
	}
	it_xchg(fd, me, 2, peer);
	c.timeout = 10;
	c.retry_cnt = 3;
	for (k = 0; k < 2; k++)
		it_connect(&s->d, s->qp[k], &me[k], &peer[k], &c);
}

static void side_down(struct side *s)
{
	it_destroy_qp(&s->d, s->qp[0]);
	it_destroy_qp(&s->d, s->qp[1]);
	it_destroy_cq(&s->d, s->big);
	if (s->small[0]) {
		it_destroy_cq(&s->d, s->small[0]);
		it_destroy_cq(&s->d, s->small[1]);
	}
	it_dereg(&s->d, s->mr);
	it_close(&s->d);
	free(s->buf);
}

static int child(int fd, int idx)
{
	static struct side s;
	struct ibv_wc wc[DEPTH];
	uint64_t n;
	int i;

	(void)idx;
	side_up(&s, fd, false);
	for (i = 0; i < DEPTH; i++)
		it_post_recv(s.qp[0], NULL, (uint64_t)i, s.buf + i * MSG_SIZE,
			     MSG_SIZE, s.mr->lkey);
	it_sync(fd, TAG_GO);
	/* receive what the parent sends; say how many arrived */
	while ((n = it_recv_u64(fd)) != 0) {
		it_poll_n(s.big, wc, (int)n);
		for (i = 0; i < (int)n; i++)
			IT_WC_OK(&wc[i]);
		it_send_u64(fd, TAG_GOT);
	}
	/* overflow the parent's receive CQ; its QP may fail: any status */
	n = it_recv_u64(fd);
	for (i = 0; i < (int)n; i++)
		it_post_send(s.qp[1], (uint64_t)i, s.buf, MSG_SIZE, s.mr->lkey);
	it_poll_n(s.big, wc, (int)n);
	it_sync(fd, TAG_DONE);
	side_down(&s);
	return 0;
}

/*
 * Wait for CQ_ERR on @cq.  QP events of the same failure may come first, and
 * more CQ_ERR for @old (rxe raises one per completion that does not fit).
 */
static void expect_cq_err(struct it_dev *d, struct ibv_cq *cq,
			  struct ibv_cq *old)
{
	struct ibv_async_event ev;
	int i;

	for (i = 0; i < 4 * DEPTH; i++) {
		it_async_event(d, &ev);
		d->ops->ack_async_event(&ev);
		if (ev.event_type == IBV_EVENT_CQ_ERR && ev.element.cq == cq)
			return;
		if (ev.event_type == IBV_EVENT_CQ_ERR) {
			IT_ASSERT(old && ev.element.cq == old, "CQ_ERR for "
							       "another CQ");
			continue;
		}
		IT_ASSERT(ev.event_type == IBV_EVENT_QP_FATAL ||
				  ev.event_type ==
					  IBV_EVENT_QP_LAST_WQE_REACHED,
			  "unexpected event %s",
			  ibv_event_type_str(ev.event_type));
	}
	IT_ASSERT(false, "no CQ_ERR among %d events", i);
}

static void send_n(struct side *s, int fd, int n, int first)
{
	int i;

	for (i = 0; i < n; i++)
		it_post_send(s->qp[0], (uint64_t)(first + i), s->buf, MSG_SIZE,
			     s->mr->lkey);
	it_send_u64(fd, (uint64_t)n);
	it_expect(fd, TAG_GOT);
}

int main(int argc, char **argv)
{
	static const struct it_role roles[] = { { "child", child },
						{ NULL, NULL } };
	int rc = it_child_main(argc, argv, roles), fd, i, cqe;
	static struct side s;
	pid_t pid;

	if (rc >= 0)
		return rc;
	*it_role_p() = "parent";
	pid = it_spawn("child", 0, &fd);
	side_up(&s, fd, true);
	cqe = s.small[0]->cqe;
	IT_ASSERT(cqe >= SMALL && cqe + EXTRA <= DEPTH &&
			  s.small[1]->cqe == cqe,
		  "cqe %d", cqe);
	for (i = 0; i < DEPTH; i++)
		it_post_recv(s.qp[1], NULL, (uint64_t)i, s.buf + i * MSG_SIZE,
			     MSG_SIZE, s.mr->lkey);
	it_sync(fd, TAG_GO);

	send_n(&s, fd, cqe, 0);
	IT_ASSERT(!it_async_pending(&s.d, 200), "async event with the CQ full, "
						"not overflowed");
	send_n(&s, fd, EXTRA, cqe);
	it_send_u64(fd, 0);
	expect_cq_err(&s.d, s.small[0], NULL);

	/* now the receive side: the child sends more than the CQ holds */
	it_send_u64(fd, (uint64_t)(cqe + EXTRA));
	expect_cq_err(&s.d, s.small[1], s.small[0]);
	it_sync(fd, TAG_DONE);
	side_down(&s);
	it_reap(pid);
	printf("cq_overflow: CQ of %d (cqe %d) never polled: full -> no event, "
	       "%d more send completions -> CQ_ERR; receive completions past "
	       "its size -> CQ_ERR\n",
	       SMALL, cqe, EXTRA);
	return 0;
}
