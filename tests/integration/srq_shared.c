/* SPDX-License-Identifier: MIT */
/*
 * One server process, one SRQ shared by 4 RC QPs, 4 client processes each
 * sending NMSG messages: every message must arrive exactly once and in order
 * per client, and the completion's qp_num must name the QP of its sender.
 * Then the SRQ limit: armed at DEPTH - 8, consuming 8 WQEs must raise no
 * event, the 9th (below the limit) must raise IBV_EVENT_SRQ_LIMIT_REACHED,
 * after which the limit reads 0 (disarmed).
 *
 * Runs with duplicated packets (dup=0.03, unless IBSNAP_FAKE_FAULTS says
 * otherwise): duplicates fill the rings, and a send stopped by a full ring
 * while an RNR NAK rewinds its QP once reused its PSN for the next message,
 * which the responder then dropped as a duplicate (a message lost).
 */
#include "itest.h"

#define NCLIENT 4
#define NMSG 2000
#define MSG_SIZE 64
#define DEPTH 128
#define LIMIT (DEPTH - 8)
#define WINDOW 32
#define TAG_GO 0x60
#define TAG_DONE 0xd0
#define TAG_SENT 0x5e

struct msg {
	uint32_t client;
	uint32_t seq;
	uint64_t csum;
	uint8_t body[MSG_SIZE - 16];
};

struct server {
	struct it_dev d;
	struct ibv_cq *cq;
	struct ibv_srq *srq;
	struct ibv_qp *qp[NCLIENT];
	struct ibv_mr *mr;
	struct msg *buf;
	int fd[NCLIENT];
	pid_t pid[NCLIENT];
	uint32_t next[NCLIENT];
};

static void send_msgs(struct ibv_qp *qp, struct ibv_cq *cq, struct ibv_mr *mr,
		      uint32_t client, uint32_t first, uint32_t n)
{
	struct msg *ring = mr->addr, *m;
	struct ibv_wc wc[WINDOW];
	uint32_t posted = 0, done = 0;
	int i, k;

	while (done < n) {
		while (posted < n && posted - done < WINDOW) {
			m = &ring[posted % WINDOW];
			m->client = client;
			m->seq = first + posted;
			it_fill(m->body, sizeof(m->body), m->seq);
			m->csum = it_csum(m->body, sizeof(m->body)) ^ m->seq;
			it_post_send(qp, posted, m, MSG_SIZE, mr->lkey);
			posted++;
		}
		k = it_poll_some(cq, wc, WINDOW);
		for (i = 0; i < k; i++, done++) {
			IT_WC_OK(&wc[i]);
			IT_ASSERT(wc[i].wr_id == done);
		}
	}
}

static int client(int fd, int idx)
{
	struct it_ep me, peer;
	struct it_dev d;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	uint32_t seq = NMSG;
	uint64_t n;
	void *buf;

	it_open(&d);
	cq = it_cq(&d, 2 * WINDOW, NULL);
	qp = it_qp(&d, IBV_QPT_RC, cq, NULL, WINDOW, 1);
	buf = it_alloc(WINDOW * MSG_SIZE);
	mr = it_reg(&d, buf, WINDOW * MSG_SIZE, IBV_ACCESS_LOCAL_WRITE);
	it_ep_init(&d, qp, NULL, &me);
	it_xchg(fd, &me, 1, &peer);
	it_connect(&d, qp, &me, &peer, NULL);
	it_sync(fd, TAG_GO);
	send_msgs(qp, cq, mr, (uint32_t)idx, 0, NMSG);
	it_sync(fd, TAG_DONE);
	while ((n = it_recv_u64(fd)) != 0) {
		send_msgs(qp, cq, mr, (uint32_t)idx, seq, (uint32_t)n);
		seq += (uint32_t)n;
		it_send_u64(fd, TAG_SENT);
	}
	it_destroy_qp(&d, qp);
	it_destroy_cq(&d, cq);
	it_dereg(&d, mr);
	it_close(&d);
	free(buf);
	return 0;
}

static void server_up(struct server *s)
{
	struct ibv_srq_init_attr sa = { .attr = { .max_wr = DEPTH,
						  .max_sge = 1 } };
	struct it_ep me, peer;
	int i;

	it_open(&s->d);
	s->cq = it_cq(&s->d, 4 * DEPTH, NULL);
	s->srq = s->d.ops->create_srq(s->d.pd, &sa);
	IT_ASSERT(s->srq, "create_srq: %s", strerror(errno));
	s->buf = it_alloc(DEPTH * MSG_SIZE);
	s->mr = it_reg(&s->d, s->buf, DEPTH * MSG_SIZE, IBV_ACCESS_LOCAL_WRITE);
	for (i = 0; i < DEPTH; i++)
		it_post_recv(NULL, s->srq, (uint64_t)i, &s->buf[i], MSG_SIZE,
			     s->mr->lkey);
	for (i = 0; i < NCLIENT; i++) {
		s->pid[i] = it_spawn("client", i, &s->fd[i]);
		s->qp[i] = it_qp(&s->d, IBV_QPT_RC, s->cq, s->srq, 1, 0);
		it_ep_init(&s->d, s->qp[i], NULL, &me);
		it_xchg(s->fd[i], &me, 1, &peer);
		it_connect(&s->d, s->qp[i], &me, &peer, NULL);
	}
	for (i = 0; i < NCLIENT; i++)
		it_sync(s->fd[i], TAG_GO);
}

/* Take @n messages off the CQ; re-post their WQEs if @repost. */
static void receive(struct server *s, int n, bool repost)
{
	struct ibv_wc wc[32];
	struct msg *m;
	int i, k;

	for (; n > 0; n -= k) {
		k = it_poll_some(s->cq, wc, n < 32 ? n : 32);
		for (i = 0; i < k; i++) {
			IT_WC_OK(&wc[i]);
			IT_ASSERT(wc[i].opcode == IBV_WC_RECV &&
				  wc[i].byte_len == MSG_SIZE);
			m = &s->buf[wc[i].wr_id];
			IT_ASSERT(m->client < NCLIENT, "client %u", m->client);
			IT_ASSERT(wc[i].qp_num == s->qp[m->client]->qp_num,
				  "qp_num %#x, client %u's QP is %#x",
				  wc[i].qp_num, m->client,
				  s->qp[m->client]->qp_num);
			IT_ASSERT(m->seq == s->next[m->client],
				  "client %u: message %u, want %u", m->client,
				  m->seq, s->next[m->client]);
			IT_ASSERT(m->csum ==
					  (it_csum(m->body, sizeof(m->body)) ^
					   m->seq),
				  "message corrupted");
			s->next[m->client]++;
			memset(m, 0, sizeof(*m));
			if (repost)
				it_post_recv(NULL, s->srq, wc[i].wr_id, m,
					     MSG_SIZE, s->mr->lkey);
		}
	}
}

static void srq_limit(struct server *s)
{
	struct ibv_srq_attr a = { .srq_limit = LIMIT };
	struct ibv_async_event ev;
	int r;

	r = s->d.ops->modify_srq(s->srq, &a, IBV_SRQ_LIMIT);
	IT_ASSERT(r == 0, "modify_srq limit: %s", strerror(r));
	IT_ASSERT(s->d.ops->query_srq(s->srq, &a) == 0);
	IT_ASSERT(a.srq_limit == LIMIT && a.max_wr >= DEPTH,
		  "query_srq: limit %u max_wr %u", a.srq_limit, a.max_wr);

	/* DEPTH - 8 WQEs left: not below the limit */
	it_send_u64(s->fd[0], DEPTH - LIMIT);
	it_expect(s->fd[0], TAG_SENT);
	receive(s, DEPTH - LIMIT, false);
	IT_ASSERT(!it_async_pending(&s->d, 200), "async event with the SRQ at "
						 "its limit, not below");

	it_send_u64(s->fd[0], 1);
	it_expect(s->fd[0], TAG_SENT);
	receive(s, 1, false);
	it_async_event(&s->d, &ev);
	IT_ASSERT(ev.event_type == IBV_EVENT_SRQ_LIMIT_REACHED &&
			  ev.element.srq == s->srq,
		  "event %s (%d)", ibv_event_type_str(ev.event_type),
		  ev.event_type);
	s->d.ops->ack_async_event(&ev);
	IT_ASSERT(s->d.ops->query_srq(s->srq, &a) == 0);
	IT_ASSERT(a.srq_limit == 0, "limit %u after the event", a.srq_limit);
}

int main(int argc, char **argv)
{
	static const struct it_role roles[] = { { "client", client },
						{ NULL, NULL } };
	static struct server s;
	int rc, i;

	setenv("IBSNAP_FAKE_FAULTS", "dup=0.03", 0);
	rc = it_child_main(argc, argv, roles);
	if (rc >= 0)
		return rc;
	*it_role_p() = "server";
	server_up(&s);
	receive(&s, NCLIENT * NMSG, true);
	for (i = 0; i < NCLIENT; i++)
		it_sync(s.fd[i], TAG_DONE);
	srq_limit(&s);
	for (i = 0; i < NCLIENT; i++) {
		it_send_u64(s.fd[i], 0);
		it_reap(s.pid[i]);
		it_destroy_qp(&s.d, s.qp[i]);
	}
	IT_ASSERT(s.d.ops->destroy_srq(s.srq) == 0);
	it_destroy_cq(&s.d, s.cq);
	it_dereg(&s.d, s.mr);
	it_close(&s.d);
	free(s.buf);
	printf("srq_shared: %d clients x %d RC SENDs through one SRQ on %d "
	       "QPs: "
	       "each exactly once, in order, qp_num right; SRQ limit event "
	       "fired below the limit only, then disarmed\n",
	       NCLIENT, NMSG, NCLIENT);
	return 0;
}
