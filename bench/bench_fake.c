/* SPDX-License-Identifier: MIT */
/*
 * bench_fake [REPORT.md]: the fake HCA against TCP loopback, in one run.
 * Two processes (two simulated nodes), both busy polling:
 *   - 8 B RC SEND ping-pong: half round trip per iteration;
 *   - 8 B RDMA WRITE: post to completion, the target application idle;
 *   - 64 KiB RDMA WRITE bandwidth with WINDOW writes in flight;
 *   - the same ping-pong and bandwidth over TCP on 127.0.0.1.
 * Prints a table and writes it with the machine and method to REPORT.md.
 * BENCH_ITERS (default 100000) sets the latency iterations.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/utsname.h>

#include "../tests/integration/itest.h"

#define WARMUP 2000
#define SMALL 8
#define BIG (64u << 10)
#define WINDOW 32
#define NRECV 256
#define BW_BYTES (4ull << 30)
#define TCP_BW_BYTES (2ull << 30)
#define TAG_GO 0x60
#define TAG_DONE 0xd0

struct ep {
	struct it_dev d;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	uint8_t *buf; /* NRECV small slots, then WINDOW big ones */
	struct it_ep peer;
};

struct lat {
	double med_us, p99_us;
};

struct results {
	struct lat send, write, tcp;
	double write_gbs, tcp_gbs;
	long iters;
};

#define BUF_SIZE ((size_t)NRECV * 64 + (size_t)WINDOW * BIG)

static long iters(void)
{
	const char *s = getenv("BENCH_ITERS");
	long n = s ? strtol(s, NULL, 10) : 0;

	return n > 0 ? n : 100000;
}

static void ep_up(struct ep *e, int fd, const char *node)
{
	struct it_ep me;
	int i;

	it_node(node);
	it_open(&e->d);
	e->cq = it_cq(&e->d, NRECV + 2 * WINDOW, NULL);
	e->qp = it_qp(&e->d, IBV_QPT_RC, e->cq, NULL, 2 * WINDOW, NRECV);
	e->buf = it_alloc(BUF_SIZE);
	e->mr = it_reg(&e->d, e->buf, BUF_SIZE, IT_ACCESS_ALL);
	it_ep_init(&e->d, e->qp, e->mr, &me);
	it_xchg(fd, &me, 1, &e->peer);
	it_connect(&e->d, e->qp, &me, &e->peer, NULL);
	for (i = 0; i < NRECV; i++)
		it_post_recv(e->qp, NULL, (uint64_t)i, e->buf + i * 64, 64,
			     e->mr->lkey);
}

static void ep_down(struct ep *e)
{
	it_destroy_qp(&e->d, e->qp);
	it_destroy_cq(&e->d, e->cq);
	it_dereg(&e->d, e->mr);
	it_close(&e->d);
	free(e->buf);
}

/* Inline 8 B SEND; every 32nd signaled, so the send queue drains. */
static void send_small(struct ep *e, uint64_t i)
{
	struct ibv_send_wr wr = { .wr_id = i, .opcode = IBV_WR_SEND };
	uint8_t *m = e->buf + NRECV * 64;

	wr.send_flags = IBV_SEND_INLINE | (i % 32 == 0 ? IBV_SEND_SIGNALED : 0);
	memcpy(m, &i, SMALL);
	it_post(e->qp, &wr, m, SMALL, e->mr->lkey);
}

/* Busy-poll (no yield); check the time only now and then. */
static int busy_poll(struct ibv_cq *cq, struct ibv_wc *wc, int max)
{
	uint64_t deadline = 0;
	unsigned int spins = 0;
	int r;

	while ((r = ibv_poll_cq(cq, max, wc)) == 0) {
		if (++spins % 65536)
			continue;
		if (!deadline)
			deadline = it_now_ns() + it_timeout_ns();
		IT_ASSERT(it_now_ns() < deadline, "no completion");
	}
	IT_ASSERT(r > 0, "poll_cq %d", r);
	return r;
}

/* Busy-poll until a receive completes (skipping send completions). */
static void recv_small(struct ep *e)
{
	struct ibv_wc wc;

	do {
		busy_poll(e->cq, &wc, 1);
		IT_WC_OK(&wc);
	} while (wc.opcode != IBV_WC_RECV);
	it_post_recv(e->qp, NULL, wc.wr_id, e->buf + wc.wr_id * 64, 64,
		     e->mr->lkey);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Median and p99 of @n samples in ns, divided by @div, in µs. */
static struct lat stats(uint64_t *ns, long n, double div)
{
	qsort(ns, (size_t)n, sizeof(*ns), cmp_u64);
	return (struct lat){ (double)ns[n / 2] / div / 1e3,
			     (double)ns[n * 99 / 100] / div / 1e3 };
}

static struct lat fake_pingpong(struct ep *e, long n, uint64_t *ns)
{
	uint64_t t0;
	long i;

	for (i = -WARMUP; i < n; i++) {
		t0 = it_now_ns();
		send_small(e, (uint64_t)(i + WARMUP));
		recv_small(e);
		if (i >= 0)
			ns[i] = it_now_ns() - t0;
	}
	return stats(ns, n, 2);
}

static struct lat fake_write_lat(struct ep *e, long n, uint64_t *ns)
{
	struct ibv_wc wc;
	uint64_t t0;
	long i;

	for (i = -WARMUP; i < n; i++) {
		t0 = it_now_ns();
		it_post_rdma(e->qp, IBV_WR_RDMA_WRITE, 1, e->buf, SMALL,
			     e->mr->lkey, e->peer.addr, e->peer.rkey, 0);
		busy_poll(e->cq, &wc, 1);
		IT_WC_OK(&wc);
		if (i >= 0)
			ns[i] = it_now_ns() - t0;
	}
	return stats(ns, n, 1);
}

/* The big slots' checksum: what the target must hold after the run. */
static uint64_t fake_write_bw(struct ep *e, uint64_t bytes, double *gbs)
{
	uint64_t n = bytes / BIG, posted = 0, done = 0, t0;
	uint8_t *big = e->buf + NRECV * 64;
	struct ibv_wc wc[WINDOW];
	int i, k;

	it_fill(big, (size_t)WINDOW * BIG, 7);
	t0 = it_now_ns();

	while (done < n) {
		while (posted < n && posted - done < WINDOW) {
			i = (int)(posted % WINDOW);
			it_post_rdma(e->qp, IBV_WR_RDMA_WRITE, posted,
				     big + (size_t)i * BIG, BIG, e->mr->lkey,
				     e->peer.addr + NRECV * 64 +
					     (size_t)i * BIG,
				     e->peer.rkey, 0);
			posted++;
		}
		k = busy_poll(e->cq, wc, WINDOW);
		for (i = 0; i < k; i++, done++)
			IT_WC_OK(&wc[i]);
	}
	*gbs = (double)(n * BIG) / (double)(it_now_ns() - t0);
	return it_csum(big, (size_t)WINDOW * BIG);
}

static void full_io(int s, void *buf, size_t len, bool wr)
{
	uint8_t *p = buf;
	ssize_t r;

	while (len) {
		r = wr ? write(s, p, len) : read(s, p, len);
		IT_ASSERT(r > 0, "tcp %s: %s", wr ? "write" : "read",
			  r ? strerror(errno) : "closed");
		p += r;
		len -= (size_t)r;
	}
}

static struct lat tcp_pingpong(int s, long n, uint64_t *ns)
{
	uint64_t v = 0, t0;
	long i;

	for (i = -WARMUP; i < n; i++) {
		t0 = it_now_ns();
		full_io(s, &v, SMALL, true);
		full_io(s, &v, SMALL, false);
		if (i >= 0)
			ns[i] = it_now_ns() - t0;
	}
	return stats(ns, n, 2);
}

static double tcp_bw(int s, uint64_t bytes)
{
	uint8_t *buf = it_alloc(BIG), ack;
	uint64_t sent, t0 = it_now_ns();

	for (sent = 0; sent < bytes; sent += BIG)
		full_io(s, buf, BIG, true);
	full_io(s, &ack, 1, false);
	free(buf);
	return (double)bytes / (double)(it_now_ns() - t0);
}

static int tcp_listen(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	IT_ASSERT(s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
			  listen(s, 1) == 0 &&
			  getsockname(s, (struct sockaddr *)&a, &len) == 0,
		  "tcp listen: %s", strerror(errno));
	*port = ntohs(a.sin_port);
	return s;
}

static int tcp_connect(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(port) };
	int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	IT_ASSERT(s >= 0 && connect(s, (struct sockaddr *)&a, sizeof(a)) == 0,
		  "tcp connect: %s", strerror(errno));
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return s;
}

static void tcp_server(int fd, long n)
{
	uint16_t port;
	int ls = tcp_listen(&port), s, one = 1;
	uint8_t *buf = it_alloc(BIG), ack = 1;
	uint64_t v, got;
	long i;

	it_send_u64(fd, port);
	s = accept(ls, NULL, NULL);
	IT_ASSERT(s >= 0, "accept: %s", strerror(errno));
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (i = 0; i < n + WARMUP; i++) {
		full_io(s, &v, SMALL, false);
		full_io(s, &v, SMALL, true);
	}
	for (got = 0; got < TCP_BW_BYTES; got += BIG)
		full_io(s, buf, BIG, false);
	full_io(s, &ack, 1, true);
	close(s);
	close(ls);
	free(buf);
}

static int server(int fd, int idx)
{
	static struct ep e;
	long i, n = iters();

	(void)idx;
	ep_up(&e, fd, "bench-server");
	it_sync(fd, TAG_GO);
	for (i = 0; i < n + WARMUP; i++) {
		recv_small(&e);
		send_small(&e, (uint64_t)i);
	}
	/* idle while the client writes; then check what it wrote */
	it_expect(fd, TAG_DONE);
	IT_ASSERT(it_recv_u64(fd) ==
			  it_csum(e.buf + NRECV * 64, (size_t)WINDOW * BIG),
		  "the RDMA WRITEs did not land");
	tcp_server(fd, n);
	it_sync(fd, TAG_DONE);
	ep_down(&e);
	return 0;
}

static void measure(int fd, struct results *r)
{
	static struct ep e;
	uint64_t *ns, csum;
	int s;

	r->iters = iters();
	ns = calloc((size_t)r->iters, sizeof(*ns));
	IT_ASSERT(ns);
	ep_up(&e, fd, "bench-client");
	it_sync(fd, TAG_GO);
	r->send = fake_pingpong(&e, r->iters, ns);
	r->write = fake_write_lat(&e, r->iters, ns);
	csum = fake_write_bw(&e, BW_BYTES, &r->write_gbs);
	it_send_u64(fd, TAG_DONE);
	it_send_u64(fd, csum);
	s = tcp_connect((uint16_t)it_recv_u64(fd));
	r->tcp = tcp_pingpong(s, r->iters, ns);
	r->tcp_gbs = tcp_bw(s, TCP_BW_BYTES);
	close(s);
	it_sync(fd, TAG_DONE);
	ep_down(&e);
	free(ns);
}

static void cpu_model(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256], *p;

	snprintf(buf, len, "unknown");
	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "model name", 10) || !(p = strchr(line, ':')))
			continue;
		snprintf(buf, len, "%s", p + 2);
		buf[strcspn(buf, "\n")] = 0;
		break;
	}
	if (f)
		fclose(f);
}

static const char *verdict(bool ok)
{
	return ok ? "met" : "NOT met";
}

static void table(FILE *f, const struct results *r)
{
	double ratio = r->tcp.med_us / r->send.med_us;

	fprintf(f, "| measurement | fake HCA | TCP 127.0.0.1 | target | "
		   "verdict |\n|---|---|---|---|---|\n");
	fprintf(f,
		"| 8 B SEND ping-pong, half round trip, median | %.2f µs "
		"| %.2f µs | ≤ 3 µs | %s |\n",
		r->send.med_us, r->tcp.med_us, verdict(r->send.med_us <= 3.0));
	fprintf(f,
		"| 8 B SEND ping-pong, half round trip, p99 | %.2f µs | "
		"%.2f µs | | |\n",
		r->send.p99_us, r->tcp.p99_us);
	fprintf(f,
		"| 8 B SEND vs TCP, median ratio | %.1f× faster | | ≥ 3× "
		"| %s |\n",
		ratio, verdict(ratio >= 3.0));
	fprintf(f,
		"| 8 B RDMA WRITE, post to completion, median / p99 | "
		"%.2f / %.2f µs | | | |\n",
		r->write.med_us, r->write.p99_us);
	fprintf(f,
		"| 64 KiB RDMA WRITE bandwidth (%d in flight) | %.2f GB/s "
		"| %.2f GB/s | ≥ 5 GB/s | %s |\n",
		WINDOW, r->write_gbs, r->tcp_gbs, verdict(r->write_gbs >= 5.0));
	fprintf(f, "| 64 KiB WRITE vs TCP, bandwidth ratio | %.1f× | | | |\n",
		r->write_gbs / r->tcp_gbs);
}

static void report(const char *path, const struct results *r)
{
	char model[128], date[64];
	struct utsname u;
	time_t now = time(NULL);
	FILE *f = fopen(path, "w");

	IT_ASSERT(f, "%s: %s", path, strerror(errno));
	cpu_model(model, sizeof(model));
	uname(&u);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", gmtime(&now));
	fprintf(f,
		"# Fake HCA performance\n\nWritten by `make bench-fake` "
		"(`bench/bench_fake.c`) on %s.\n\nMachine: %ld CPUs "
		"(`nproc`), %s, kernel %s %s.\n\n",
		date, sysconf(_SC_NPROCESSORS_ONLN), model, u.sysname,
		u.release);
	table(f, r);
	fprintf(f,
		"\n## How measured\n\nOne run, two processes on two "
		"simulated nodes of one fabric (`IBSNAP_FABRIC`), no fault "
		"injection, both busy polling their CQ (the TCP side blocks "
		"in read/write).\n\n"
		"- SEND ping-pong: %ld iterations after %d of warm-up; 8 B "
		"inline SENDs, every 32nd signaled; a sample is one round "
		"trip (post, then poll until the reply's receive), halved; "
		"median and p99 over the samples.\n"
		"- RDMA WRITE latency: 8 B signaled WRITE, time from post to "
		"its completion; the target application blocks on a pipe, "
		"its progress thread answers.\n"
		"- RDMA WRITE bandwidth: %llu GiB in 64 KiB WRITEs, %d in "
		"flight, first post to last completion; the target then "
		"checks that its memory holds the data.\n"
		"- TCP: the same ping-pong (TCP_NODELAY) and %llu GiB in "
		"64 KiB writes over 127.0.0.1, timed until the receiver's "
		"1-byte acknowledgement.\n",
		r->iters, WARMUP, BW_BYTES >> 30, WINDOW, TCP_BW_BYTES >> 30);
	fclose(f);
}

int main(int argc, char **argv)
{
	static const struct it_role roles[] = { { "server", server },
						{ NULL, NULL } };
	int rc = it_child_main(argc, argv, roles), fd;
	struct results r;
	char *fab;
	pid_t pid;

	if (rc >= 0)
		return rc;
	*it_role_p() = "bench";
	fab = it_private_fabric();
	unsetenv("IBSNAP_FAKE_FAULTS");
	pid = it_spawn("server", 0, &fd);
	measure(fd, &r);
	it_reap(pid);
	it_private_fabric_rm(fab);
	table(stdout, &r);
	if (argc > 1) {
		report(argv[1], &r);
		printf("written to %s\n", argv[1]);
	}
	return 0;
}
