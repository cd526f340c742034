/* SPDX-License-Identifier: MIT */
/*
 * The README's demo on the fake HCA: a server and a client process (two
 * simulated nodes) open fake0, connect an RC QP pair out of band, ping-pong
 * NMSG checksummed messages, then the client RDMA WRITEs into the server's
 * memory and RDMA READs from it.  Exits 0 when every check passed.
 */
#include "../tests/integration/itest.h"

#define NMSG 1000
#define MSG_SIZE 1024
#define NRECV 16
#define REGION (1u << 20)
#define READ_SEED 42
#define WRITE_SEED 43
#define TAG_GO 0x60
#define TAG_DONE 0xd0
#define TAG_WRITE_OK 0x3e

struct msg {
	uint64_t seq;
	uint64_t csum;
	uint8_t body[MSG_SIZE - 16];
};

/* Buffer layout: NRECV receive slots, a send slot, two 1 MiB regions. */
struct peer {
	struct it_dev d;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	struct msg *slot;
	uint8_t *write_region, *read_region;
	struct it_ep me, other;
};

#define BUF_SIZE ((NRECV + 1) * MSG_SIZE + 2 * REGION)

static void peer_up(struct peer *p, int fd, const char *node)
{
	uint8_t *buf = it_alloc(BUF_SIZE);
	int i;

	it_node(node);
	it_open(&p->d);
	p->cq = it_cq(&p->d, 64, NULL);
	p->qp = it_qp(&p->d, IBV_QPT_RC, p->cq, NULL, NRECV, NRECV);
	p->mr = it_reg(&p->d, buf, BUF_SIZE, IT_ACCESS_ALL);
	p->slot = (struct msg *)buf;
	p->write_region = buf + (NRECV + 1) * MSG_SIZE;
	p->read_region = p->write_region + REGION;
	it_ep_init(&p->d, p->qp, p->mr, &p->me);
	p->me.addr = (uintptr_t)p->write_region;
	it_xchg(fd, &p->me, 1, &p->other);
	it_connect(&p->d, p->qp, &p->me, &p->other, NULL);
	for (i = 0; i < NRECV; i++)
		it_post_recv(p->qp, NULL, (uint64_t)i, &p->slot[i], MSG_SIZE,
			     p->mr->lkey);
}

static void peer_down(struct peer *p)
{
	void *buf = p->slot;

	it_destroy_qp(&p->d, p->qp);
	it_destroy_cq(&p->d, p->cq);
	it_dereg(&p->d, p->mr);
	it_close(&p->d);
	free(buf);
}

static void send_msg(struct peer *p, uint64_t seq)
{
	struct msg *m = &p->slot[NRECV];

	m->seq = seq;
	it_fill(m->body, sizeof(m->body), seq);
	m->csum = it_csum(m->body, sizeof(m->body));
	it_post_send(p->qp, seq, m, MSG_SIZE, p->mr->lkey);
}

/* Wait for message @seq (and the previous send's completion). */
static void recv_msg(struct peer *p, uint64_t seq)
{
	struct ibv_wc wc;
	struct msg *m;

	do
		it_poll_ok(p->cq, &wc);
	while (wc.opcode != IBV_WC_RECV);
	m = &p->slot[wc.wr_id];
	IT_ASSERT(wc.byte_len == MSG_SIZE && m->seq == seq &&
			  m->csum == it_csum(m->body, sizeof(m->body)),
		  "message %" PRIu64 " damaged or out of order", seq);
	it_post_recv(p->qp, NULL, wc.wr_id, m, MSG_SIZE, p->mr->lkey);
}

static int server(int fd, int idx)
{
	static struct peer p;
	uint64_t i, csum;

	(void)idx;
	peer_up(&p, fd, "demo-server");
	it_fill(p.read_region, REGION, READ_SEED);
	it_sync(fd, TAG_GO);
	for (i = 0; i < NMSG; i++) {
		recv_msg(&p, 2 * i);
		send_msg(&p, 2 * i + 1);
	}
	/* the client writes and reads our memory; we only wait */
	csum = it_recv_u64(fd);
	IT_ASSERT(it_csum(p.write_region, REGION) == csum, "RDMA WRITE data "
							   "differ");
	printf("  server: the 1 MiB RDMA WRITE landed in its memory, checksum "
	       "%016" PRIx64 " matches\n",
	       csum);
	fflush(stdout);
	it_send_u64(fd, TAG_WRITE_OK);
	it_sync(fd, TAG_DONE);
	peer_down(&p);
	return 0;
}

static void one_sided(struct peer *p, int fd)
{
	uint8_t *ref = it_alloc(REGION);
	struct ibv_wc wc;

	it_fill(p->write_region, REGION, WRITE_SEED);
	it_post_rdma(p->qp, IBV_WR_RDMA_WRITE, 1, p->write_region, REGION,
		     p->mr->lkey, p->other.addr, p->other.rkey, 0);
	it_poll_ok(p->cq, &wc);
	it_send_u64(fd, it_csum(p->write_region, REGION));
	it_expect(fd, TAG_WRITE_OK);

	it_post_rdma(p->qp, IBV_WR_RDMA_READ, 2, p->read_region, REGION,
		     p->mr->lkey, p->other.addr + REGION, p->other.rkey, 0);
	it_poll_ok(p->cq, &wc);
	it_fill(ref, REGION, READ_SEED);
	IT_ASSERT(!memcmp(ref, p->read_region, REGION), "RDMA READ data "
							"differ");
	printf("  client: RDMA READ of 1 MiB from the server's memory returned "
	       "the server's pattern\n");
	free(ref);
}

int main(int argc, char **argv)
{
	static const struct it_role roles[] = { { "server", server },
						{ NULL, NULL } };
	int rc = it_child_main(argc, argv, roles), fd;
	static struct peer p;
	uint64_t i, t0, t1;
	char *fab;
	pid_t pid;

	if (rc >= 0)
		return rc;
	*it_role_p() = "client";
	fab = it_private_fabric();
	pid = it_spawn("server", 0, &fd);
	peer_up(&p, fd, "demo-client");
	printf("fake_demo: client (pid %d, LID %u) and server (pid %d, LID %u) "
	       "connected RC QPs %#x <-> %#x on fake0\n",
	       (int)getpid(), p.me.lid, (int)pid, p.other.lid, p.me.qpn,
	       p.other.qpn);
	it_sync(fd, TAG_GO);
	t0 = it_now_ns();
	for (i = 0; i < NMSG; i++) {
		send_msg(&p, 2 * i);
		recv_msg(&p, 2 * i + 1);
	}
	t1 = it_now_ns();
	printf("  ping-pong: %d round trips of %d B messages, every checksum "
	       "right (%.1f µs per round trip)\n",
	       NMSG, MSG_SIZE, (double)(t1 - t0) / NMSG / 1e3);
	fflush(stdout);
	one_sided(&p, fd);
	it_sync(fd, TAG_DONE);
	peer_down(&p);
	it_reap(pid);
	it_private_fabric_rm(fab);
	printf("fake_demo: OK\n");
	return 0;
}
