/* SPDX-License-Identifier: MIT */
/*
 * bench_ckpt [options]: what a checkpoint without dump costs (issue 6).
 *
 * Two ranks (processes) under libibsnap.so, each with NQP RC QPs connected
 * to the peer, NMR MRs and one CQ, stream SENDs and RDMA WRITEs to each
 * other while this process -- the checkpoint driver of the tests
 * (drain/testdrv.c, IBSNAP_TEST_CKPT, with IBSNAP_TEST_CKPT_TIMES) -- runs
 * K cycles QUIESCE, DRAIN, RELEASE, REBUILD, RESUME and times each phase
 * from the PHASE message to the last rank's ACK (a barrier, as ibsnapd's).
 * Half the cycles run with the programs busy polling ("busy"), half with
 * them blocked on a pipe ("paused"), alternately.
 *
 * In the same run, two native ranks (no shim: the backend directly --
 * fakehca_ops() or libibverbs) create the same resources K times: open the
 * device, PD, MRs, CQ, QPs, the same exchange of endpoints through this
 * process, QPs RESET->INIT->RTR->RTS, the same receives posted; then destroy
 * them.  The ratio rebuild / native compares the two wall times.
 *
 * The shim's memory per QP and per MR: malloc'ed bytes (mallinfo2: in use
 * plus mmap'ed chunks) and RSS, before and after each kind of object, in a
 * shim rank minus the same in a native rank on the same backend.
 *
 * Options: -q NQP (64) -m NMR (16) -k K (20) -b fake|real (fake)
 *          -d DEVICE (fake0 / rxe0) -g GID_INDEX (0 / 1) -o OUT.md (append)
 *          -l LABEL (a name for the table) -s KIB (registered memory per
 *          rank at least; default: 64 KiB per QP)
 * Prints medians and IQR; never fails on a time.
 */
#include <malloc.h>
#include <limits.h>
#include <math.h>
#include <sys/un.h>

#include "../tests/integration/itest.h"
#include "ibsnap/ckpt.h"

/* the test driver's wire (drain/testdrv.c) */
enum { TD_HELLO = 1, TD_PHASE, TD_PUT, TD_ALL, TD_ACK, TD_EXIT };
/* this program's control wire, driver <-> a rank's program (fd 3) */
enum { C_CREATE = 1, C_DESTROY, C_EPS, C_REP, C_GO, C_PAUSE, C_PAUSED,
       C_STOP, C_PEER_SENT };

#define CTL_FD 3
#define W 4                /* sends in flight per QP */
#define R 32               /* receives posted per QP */
#define SEND_LEN 1024      /* a SEND */
#define WRITE_LEN 4096     /* an RDMA WRITE */
#define REGION (64u << 10) /* per QP: R receive slots, send, write target */
#define RECV_OFF 0
#define SEND_OFF (R * SEND_LEN)
#define WR_OFF (SEND_OFF + SEND_LEN)

struct cfg {
	int nqp, nmr, k;
	long reg_kib; /* -s: registered memory per rank, at least */
	const char *backend, *dev, *label, *out;
	int gid;
};

/* a rank's numbers, sent to the driver */
struct rep {
	double create_us, xchg_us, connect_us, destroy_us;
	int64_t mal[4], rss[4]; /* base (ctx+PD), MRs, CQ, QPs */
	uint64_t sends, writes, recvd, errors;
};

/* ------------------------------------------------------------------ */
/* small I/O                                                          */

static int xio(int fd, void *buf, size_t len, bool out)
{
	char *p = buf;
	ssize_t n;

	while (len) {
		n = out ? write(fd, p, len) : read(fd, p, len);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void msg_send(int fd, uint32_t type, const void *d, uint32_t len)
{
	uint32_t h[2] = { type, len };

	IT_ASSERT(!xio(fd, h, sizeof(h), true) &&
			  (!len || !xio(fd, (void *)d, len, true)),
		  "send type %u: %s", type, strerror(errno));
}

/* One message; its payload malloc'ed (free it), type in *type. */
static void *msg_recv(int fd, uint32_t *type, uint32_t *len)
{
	uint32_t h[2];
	void *d;

	IT_ASSERT(!xio(fd, h, sizeof(h), false), "peer gone (fd %d)", fd);
	d = malloc(h[1] + 1);
	IT_ASSERT(d);
	IT_ASSERT(!h[1] || !xio(fd, d, h[1], false));
	*type = h[0];
	if (len)
		*len = h[1];
	return d;
}

static void *msg_expect(int fd, uint32_t type, uint32_t *len)
{
	uint32_t t;
	void *d = msg_recv(fd, &t, len);

	IT_ASSERT(t == type, "message %u, expected %u", t, type);
	return d;
}

static double now_us(void)
{
	return (double)it_now_ns() / 1e3;
}

/* ------------------------------------------------------------------ */
/* a rank                                                              */

static struct ibv_device **v_get_device_list(int *n)
{
	return ibv_get_device_list(n);
}

static int v_query_port(struct ibv_context *c, uint8_t p,
			struct ibv_port_attr *a)
{
	return ibv_query_port(c, p, a);
}

static struct ibv_mr *v_reg_mr(struct ibv_pd *pd, void *addr, size_t len,
			       uint64_t iova, unsigned int access)
{
	(void)iova;
	return ibv_reg_mr(pd, addr, len, (int)access);
}

/* libibverbs' entry points: under LD_PRELOAD, the shim's */
static const struct isn_hca_ops verbs_ops = {
	.name = "verbs",
	.get_device_list = v_get_device_list,
	.free_device_list = ibv_free_device_list,
	.open_device = ibv_open_device,
	.close_device = ibv_close_device,
	.query_port = v_query_port,
	.query_gid = ibv_query_gid,
	.alloc_pd = ibv_alloc_pd,
	.dealloc_pd = ibv_dealloc_pd,
	.reg_mr = v_reg_mr,
	.dereg_mr = ibv_dereg_mr,
	.create_cq = ibv_create_cq,
	.destroy_cq = ibv_destroy_cq,
	.create_qp = ibv_create_qp,
	.destroy_qp = ibv_destroy_qp,
	.modify_qp = ibv_modify_qp,
};

struct rank {
	struct cfg c;
	bool shim;
	int idx;
	struct it_dev d;
	const struct isn_hca_ops *ops;
	uint8_t *buf;
	size_t mr_len;
	struct ibv_mr **mr;
	struct ibv_cq *cq;
	struct ibv_qp **qp;
	struct it_ep *me, *peer;
	int *inflight;
	struct rep rep;
	bool paused_once;
};

static int64_t mallocd(void)
{
	struct mallinfo2 mi = mallinfo2();

	return (int64_t)(mi.uordblks + mi.hblkhd);
}

static int64_t rss(void)
{
	long pages = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &res) != 2)
			res = 0;
		fclose(f);
	}
	return (int64_t)res * sysconf(_SC_PAGESIZE);
}

static uint8_t *region(struct rank *r, int q)
{
	/* QP q lives in MR q % nmr, at slot q / nmr */
	return r->buf + (size_t)(q % r->c.nmr) * r->mr_len +
	       (size_t)(q / r->c.nmr) * REGION;
}

static void dev_open(struct rank *r)
{
	struct it_dev *d = &r->d;
	struct ibv_device **list;
	int i, n = 0;

	memset(d, 0, sizeof(*d));
	d->ops = r->ops;
	d->gid_index = r->c.gid;
	list = d->ops->get_device_list(&n);
	IT_ASSERT(list && n > 0, "get_device_list: %s", strerror(errno));
	for (i = 0; i < n; i++)
		if (!strcmp(ibv_get_device_name(list[i]), r->c.dev))
			break;
	IT_ASSERT(i < n, "no %s among %d devices", r->c.dev, n);
	d->ctx = d->ops->open_device(list[i]);
	IT_ASSERT(d->ctx, "open_device: %s", strerror(errno));
	d->ops->free_device_list(list);
	IT_ASSERT(d->ops->query_port(d->ctx, IT_PORT, &d->port) == 0);
	IT_ASSERT(d->ops->query_gid(d->ctx, IT_PORT, d->gid_index, &d->gid) ==
		  0);
	d->pd = d->ops->alloc_pd(d->ctx);
	IT_ASSERT(d->pd, "alloc_pd: %s", strerror(errno));
}

/* The resources, as a program sets them up; @mem: measure them. */
static void setup(struct rank *r, bool mem)
{
	int q, m, nq = r->c.nqp, nm = r->c.nmr;
	int64_t m0 = 0, s0 = 0;
	double t0, t1, t2;

#define MARK(i)                                        \
	do {                                           \
		if (mem) {                             \
			r->rep.mal[i] = mallocd() - m0; \
			r->rep.rss[i] = rss() - s0;     \
			m0 = mallocd();                \
			s0 = rss();                    \
		}                                      \
	} while (0)

	if (mem) {
		m0 = mallocd();
		s0 = rss();
	}
	t0 = now_us();
	dev_open(r);
	MARK(0);
	for (m = 0; m < nm; m++)
		r->mr[m] = it_reg(&r->d, r->buf + (size_t)m * r->mr_len,
				  r->mr_len, IT_ACCESS_ALL);
	MARK(1);
	r->cq = it_cq(&r->d, nq * (W + R) + 16, NULL);
	MARK(2);
	for (q = 0; q < nq; q++) {
		r->qp[q] = it_qp(&r->d, IBV_QPT_RC, r->cq, NULL, 2 * W, R);
		it_ep_init(&r->d, r->qp[q], r->mr[q % nm], &r->me[q]);
		r->me[q].addr = (uintptr_t)(region(r, q) + WR_OFF);
		r->me[q].len = WRITE_LEN;
	}
	t1 = now_us();
	msg_send(CTL_FD, C_EPS, r->me, (uint32_t)(nq * sizeof(*r->me)));
	free(r->peer);
	r->peer = msg_expect(CTL_FD, C_EPS, NULL);
	t2 = now_us();
	for (q = 0; q < nq; q++) {
		it_connect(&r->d, r->qp[q], &r->me[q], &r->peer[q], NULL);
		for (m = 0; m < R; m++)
			it_post_recv(r->qp[q], NULL,
				     (uint64_t)q << 16 | (uint64_t)m << 8 | 1,
				     region(r, q) + RECV_OFF + m * SEND_LEN,
				     SEND_LEN, r->mr[q % nm]->lkey);
		r->inflight[q] = 0;
	}
	MARK(3);
	r->rep.create_us = t1 - t0;
	r->rep.xchg_us = t2 - t1;
	r->rep.connect_us = now_us() - t2;
#undef MARK
}

static void teardown(struct rank *r)
{
	int q, m;
	double t0 = now_us();

	for (q = 0; q < r->c.nqp; q++)
		it_destroy_qp(&r->d, r->qp[q]);
	it_destroy_cq(&r->d, r->cq);
	for (m = 0; m < r->c.nmr; m++)
		it_dereg(&r->d, r->mr[m]);
	it_close(&r->d);
	r->rep.destroy_us = now_us() - t0;
}

static void post_one(struct rank *r, int q)
{
	uint8_t *b = region(r, q);
	uint32_t lkey = r->mr[q % r->c.nmr]->lkey;
	uint64_t n = r->rep.sends + r->rep.writes;

	if (n & 1) {
		it_post_rdma(r->qp[q], IBV_WR_RDMA_WRITE, (uint64_t)q << 16 | 3,
			     b + WR_OFF, WRITE_LEN, lkey, r->peer[q].addr,
			     r->peer[q].rkey, 0);
		r->rep.writes++;
	} else {
		it_post_send(r->qp[q], (uint64_t)q << 16 | 2, b + SEND_OFF,
			     SEND_LEN, lkey);
		r->rep.sends++;
	}
	r->inflight[q]++;
}

/* Poll once; returns the completions seen. */
static int poll_some(struct rank *r)
{
	struct ibv_wc wc[32];
	int n = ibv_poll_cq(r->cq, 32, wc), i, q;

	IT_ASSERT(n >= 0, "poll_cq: %d", n);
	for (i = 0; i < n; i++) {
		q = (int)(wc[i].wr_id >> 16);
		if (wc[i].status != IBV_WC_SUCCESS) {
			if (r->rep.errors++ < 5)
				fprintf(stderr, "rank %d: qp %d: %s\n", r->idx,
					q, ibv_wc_status_str(wc[i].status));
			continue;
		}
		if ((wc[i].wr_id & 0xff) == 1) {
			r->rep.recvd++;
			it_post_recv(r->qp[q], NULL, wc[i].wr_id,
				     region(r, q) + RECV_OFF +
					     (wc[i].wr_id >> 8 & 0xff) *
						     SEND_LEN,
				     SEND_LEN, r->mr[q % r->c.nmr]->lkey);
		} else {
			r->inflight[q]--;
		}
	}
	return n;
}

static bool ctl_ready(void)
{
	struct pollfd p = { CTL_FD, POLLIN, 0 };

	return poll(&p, 1, 0) > 0;
}

/* Traffic until STOP; PAUSE blocks until GO. */
static void traffic(struct rank *r)
{
	unsigned long it = 0;
	uint32_t t;
	int q;

	for (;;) {
		for (q = 0; q < r->c.nqp; q++)
			if (r->inflight[q] < W)
				post_one(r, q);
		poll_some(r);
		if (++it % 64 || !ctl_ready())
			continue;
		free(msg_recv(CTL_FD, &t, NULL));
		if (t == C_STOP)
			return;
		IT_ASSERT(t == C_PAUSE, "message %u in traffic", t);
		msg_send(CTL_FD, C_PAUSED, NULL, 0);
		free(msg_expect(CTL_FD, C_GO, NULL));
	}
}

/* Stop: every send completes, every message the peer sent arrives. */
static void finish(struct rank *r)
{
	uint64_t deadline = it_now_ns() + 20000000000ull, *peer_sends;
	int q, busy;

	do {
		poll_some(r);
		for (q = 0, busy = 0; q < r->c.nqp; q++)
			busy += r->inflight[q];
	} while (busy && it_now_ns() < deadline);
	msg_send(CTL_FD, C_REP, &r->rep, sizeof(r->rep));
	peer_sends = msg_expect(CTL_FD, C_PEER_SENT, NULL);
	while (r->rep.recvd < *peer_sends && it_now_ns() < deadline)
		poll_some(r);
	free(peer_sends);
	msg_send(CTL_FD, C_REP, &r->rep, sizeof(r->rep));
}

static int rank_main(int idx, bool shim)
{
	struct rank r = { .idx = idx, .shim = shim };
	uint32_t t;
	bool first = true;

	r.c.nqp = atoi(getenv("BC_NQP"));
	r.c.nmr = atoi(getenv("BC_NMR"));
	r.c.dev = getenv("BC_DEV");
	r.c.gid = atoi(getenv("BC_GID"));
	r.ops = shim || !strcmp(getenv("BC_BACKEND"), "real") ? &verbs_ops :
								 fakehca_ops();
	r.mr_len = (size_t)((r.c.nqp + r.c.nmr - 1) / r.c.nmr) * REGION;
	r.c.reg_kib = getenv("BC_REG_KIB") ? atol(getenv("BC_REG_KIB")) : 0;
	if ((size_t)r.c.reg_kib * 1024 / r.c.nmr > r.mr_len)
		r.mr_len = ((size_t)r.c.reg_kib * 1024 / r.c.nmr + 4095) &
			   ~(size_t)4095;
	r.buf = it_alloc(r.mr_len * (size_t)r.c.nmr);
	memset(r.buf, 0, r.mr_len * (size_t)r.c.nmr);
	r.mr = calloc((size_t)r.c.nmr, sizeof(*r.mr));
	r.qp = calloc((size_t)r.c.nqp, sizeof(*r.qp));
	r.me = calloc((size_t)r.c.nqp, sizeof(*r.me));
	r.inflight = calloc((size_t)r.c.nqp, sizeof(*r.inflight));
	IT_ASSERT(r.mr && r.qp && r.me && r.inflight);
	for (;;) {
		free(msg_recv(CTL_FD, &t, NULL));
		if (t == C_STOP)
			return 0;
		if (t == C_DESTROY) {
			teardown(&r);
			msg_send(CTL_FD, C_REP, &r.rep, sizeof(r.rep));
			continue;
		}
		IT_ASSERT(t == C_CREATE, "message %u", t);
		setup(&r, first);
		first = false;
		msg_send(CTL_FD, C_REP, &r.rep, sizeof(r.rep));
		if (!shim)
			continue;
		free(msg_expect(CTL_FD, C_GO, NULL));
		traffic(&r);
		finish(&r);
		return 0;
	}
}

/* ------------------------------------------------------------------ */
/* the driver                                                          */

struct proc {
	pid_t pid;
	int ctl, td; /* td: the shim's checkpoint thread, or -1 */
	void *put;
	uint32_t put_len;
	bool has_put, has_ack;
	int32_t status;
	uint32_t handler_us, xchg_us, cpu_us;
};

/* one phase of one cycle */
struct ph {
	double wall, to_put, xchg_min, handler_max, cpu_max;
};

enum { P_Q, P_D, P_REL, P_REB, P_RES, NPH };
static const uint32_t ph_id[NPH] = { ISN_PHASE_QUIESCE, ISN_PHASE_DRAIN,
				     ISN_PHASE_RELEASE, ISN_PHASE_REBUILD,
				     ISN_PHASE_RESUME };
static const char *const ph_name[NPH] = { "quiesce", "drain", "release",
					  "rebuild", "resume" };

static char preload[PATH_MAX + 32];

static void spawn(struct proc p[2], const struct cfg *c, bool shim,
		  const char *sock, const char *argv0)
{
	char nq[16], nm[16], g[16], rk[16], node[16];
	int i, sv[2];

	for (i = 0; i < 2; i++) {
		IT_ASSERT(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				      sv));
		p[i].ctl = sv[0];
		p[i].td = -1;
		p[i].pid = fork();
		IT_ASSERT(p[i].pid >= 0);
		if (p[i].pid)
			continue;
		IT_ASSERT(dup2(sv[1], CTL_FD) == CTL_FD);
		snprintf(nq, sizeof(nq), "%d", c->nqp);
		snprintf(nm, sizeof(nm), "%d", c->nmr);
		snprintf(g, sizeof(g), "%d", c->gid);
		snprintf(rk, sizeof(rk), "%d", i);
		snprintf(node, sizeof(node), "n%d", i + (shim ? 0 : 2));
		setenv("BC_NQP", nq, 1);
		setenv("BC_NMR", nm, 1);
		snprintf(nm, sizeof(nm), "%ld", c->reg_kib);
		setenv("BC_REG_KIB", nm, 1);
		setenv("BC_GID", g, 1);
		setenv("BC_DEV", c->dev, 1);
		setenv("BC_BACKEND", c->backend, 1);
		setenv("IBSNAP_FAKE_NODE", node, 1);
		if (shim) {
			setenv("LD_PRELOAD", preload, 1);
			setenv("IBSNAP_BACKEND", c->backend, 1);
			setenv("IBSNAP_TEST_CKPT", sock, 1);
			setenv("IBSNAP_TEST_CKPT_TIMES", "1", 1);
			setenv("IBSNAP_TEST_RANK", rk, 1);
		}
		execl(argv0, argv0, "rank", rk, shim ? "shim" : "native",
		      (char *)NULL);
		_exit(127);
	}
}

static void accept_shims(struct proc p[2], int ls)
{
	int i;

	for (i = 0; i < 2; i++) {
		struct pollfd pf = { ls, POLLIN, 0 };
		uint32_t h[3];
		int fd;

		IT_ASSERT(poll(&pf, 1, 30000) == 1, "no rank connected");
		fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
		IT_ASSERT(fd >= 0 && !xio(fd, h, sizeof(h), false) &&
			  h[0] == TD_HELLO && h[2] < 2);
		p[h[2]].td = fd;
	}
}

/* CREATE on both, relay the endpoints; the wall time in us. */
static double create(struct proc p[2], struct rep rep[2])
{
	double t0 = now_us();
	void *e[2];
	uint32_t len[2];
	int i;

	for (i = 0; i < 2; i++)
		msg_send(p[i].ctl, C_CREATE, NULL, 0);
	for (i = 0; i < 2; i++)
		e[i] = msg_expect(p[i].ctl, C_EPS, &len[i]);
	for (i = 0; i < 2; i++) {
		msg_send(p[i].ctl, C_EPS, e[1 - i], len[1 - i]);
		free(e[1 - i]);
	}
	for (i = 0; i < 2; i++) {
		void *d = msg_expect(p[i].ctl, C_REP, NULL);

		memcpy(&rep[i], d, sizeof(rep[i]));
		free(d);
	}
	return now_us() - t0;
}

static double destroy(struct proc p[2], struct rep rep[2])
{
	double t0 = now_us();
	int i;

	for (i = 0; i < 2; i++)
		msg_send(p[i].ctl, C_DESTROY, NULL, 0);
	for (i = 0; i < 2; i++) {
		void *d = msg_expect(p[i].ctl, C_REP, NULL);

		memcpy(&rep[i], d, sizeof(rep[i]));
		free(d);
	}
	return now_us() - t0;
}

static void send_all(struct proc p[2])
{
	uint32_t n = 2, len = 4, off = 4, i;
	char *buf;

	for (i = 0; i < n; i++)
		len += 8 + p[i].put_len;
	buf = malloc(len);
	IT_ASSERT(buf);
	memcpy(buf, &n, 4);
	for (i = 0; i < n; i++) {
		memcpy(buf + off, &i, 4);
		memcpy(buf + off + 4, &p[i].put_len, 4);
		memcpy(buf + off + 8, p[i].put, p[i].put_len);
		off += 8 + p[i].put_len;
	}
	for (i = 0; i < n; i++) {
		msg_send(p[i].td, TD_ALL, buf, len);
		free(p[i].put);
		p[i].put = NULL;
		p[i].has_put = false;
	}
	free(buf);
}

/* One phase on both shim ranks, timed at this end. */
static int phase(struct proc p[2], int k, struct ph *out)
{
	uint32_t msg[2] = { ph_id[k], 0 };
	double t0 = now_us(), tput = 0;
	int i, acks = 0, worst = 0;

	*out = (struct ph){ .xchg_min = 1e30 };
	for (i = 0; i < 2; i++) {
		p[i].has_ack = false;
		msg_send(p[i].td, TD_PHASE, msg, sizeof(msg));
	}
	while (acks < 2) {
		struct pollfd pf[2] = { { p[0].td, POLLIN, 0 },
					{ p[1].td, POLLIN, 0 } };

		IT_ASSERT(poll(pf, 2, 60000) > 0, "phase %s: no answer",
			  ph_name[k]);
		for (i = 0; i < 2; i++) {
			uint32_t t, len;
			void *d;

			if (!(pf[i].revents & (POLLIN | POLLHUP)))
				continue;
			d = msg_recv(p[i].td, &t, &len);
			if (t == TD_PUT) {
				p[i].put = d;
				p[i].put_len = len;
				p[i].has_put = true;
				if (p[1 - i].has_put) {
					tput = now_us() - t0;
					send_all(p);
				}
				continue;
			}
			IT_ASSERT(t == TD_ACK && len == 20, "ack %u/%u", t,
				  len);
			memcpy(&p[i].status, (char *)d + 4, 4);
			memcpy(&p[i].handler_us, (char *)d + 8, 4);
			memcpy(&p[i].xchg_us, (char *)d + 12, 4);
			memcpy(&p[i].cpu_us, (char *)d + 16, 4);
			free(d);
			acks++;
			if (p[i].status < worst)
				worst = p[i].status;
			if (p[i].xchg_us < out->xchg_min)
				out->xchg_min = p[i].xchg_us;
			if (p[i].handler_us > out->handler_max)
				out->handler_max = p[i].handler_us;
			if (p[i].cpu_us > out->cpu_max)
				out->cpu_max = p[i].cpu_us;
		}
	}
	out->wall = now_us() - t0;
	out->to_put = tput;
	return worst;
}

static int cycle(struct proc p[2], struct ph ph[NPH])
{
	int k, ret;

	for (k = 0; k < NPH; k++) {
		ret = phase(p, k, &ph[k]);
		if (ret) {
			fprintf(stderr, "%s failed: %s\n", ph_name[k],
				strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static void pause_ranks(struct proc p[2], bool on)
{
	int i;

	for (i = 0; i < 2; i++)
		msg_send(p[i].ctl, on ? C_PAUSE : C_GO, NULL, 0);
	if (on)
		for (i = 0; i < 2; i++)
			free(msg_expect(p[i].ctl, C_PAUSED, NULL));
}

static void reap(struct proc p[2])
{
	int i, st;

	for (i = 0; i < 2; i++) {
		if (p[i].td >= 0) { /* the rank may have exited */
			uint32_t h[2] = { TD_EXIT, 0 };

			(void)!write(p[i].td, h, sizeof(h));
			close(p[i].td);
		}
		close(p[i].ctl);
		IT_ASSERT(waitpid(p[i].pid, &st, 0) == p[i].pid);
		IT_ASSERT(WIFEXITED(st) && !WEXITSTATUS(st),
			  "rank %d ended with status 0x%x", i, st);
	}
}

/* ---- statistics ---- */

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* quantile @q of @v[n] (sorted in place), linear interpolation */
static double quant(double *v, int n, double q)
{
	double pos;
	int i;

	if (n <= 0)
		return NAN;
	qsort(v, (size_t)n, sizeof(*v), cmpd);
	pos = q * (n - 1);
	i = (int)pos;
	return i + 1 < n ? v[i] + (pos - i) * (v[i + 1] - v[i]) : v[i];
}

struct stat3 {
	double med, q1, q3, max;
};

static struct stat3 stats(const double *src, int n)
{
	double *v = malloc(sizeof(*v) * (size_t)(n ? n : 1));
	struct stat3 s;

	IT_ASSERT(v);
	memcpy(v, src, sizeof(*v) * (size_t)n);
	s.med = quant(v, n, 0.5);
	s.q1 = quant(v, n, 0.25);
	s.q3 = quant(v, n, 0.75);
	s.max = n ? v[n - 1] : NAN;
	free(v);
	return s;
}

static FILE *out_md;

/* print a line to stdout and the report */
__attribute__((format(printf, 1, 2))) static void emit(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	if (out_md) {
		va_start(ap, fmt);
		vfprintf(out_md, fmt, ap);
		va_end(ap);
	}
}

static double med(const double *v, int n, double scale)
{
	return v ? stats(v, n).med * scale : NAN;
}

/* | name | median | IQR | max | [handler median | handler CPU median] | */
static void row2(const char *name, const double *v, int n, double scale,
		 const double *hv, const double *cv)
{
	struct stat3 s = stats(v, n);

	emit("| %s | %.2f | %.2f–%.2f | %.2f |", name, s.med * scale,
	     s.q1 * scale, s.q3 * scale, s.max * scale);
	if (hv)
		emit(" %.2f | %.2f |", med(hv, n, scale), med(cv, n, scale));
	emit("\n");
}

static void row(const char *name, const double *v, int n, double scale)
{
	double *w = malloc(sizeof(*w) * (size_t)(n ? n : 1));
	struct stat3 s;
	int i;

	IT_ASSERT(w);
	for (i = 0; i < n; i++)
		w[i] = v[i] * scale;
	s = stats(w, n);
	emit("| %s | %.2f | %.2f–%.2f | %.2f |\n", name, s.med, s.q1, s.q3,
	     s.max);
	free(w);
}

static int run(const struct cfg *c, const char *argv0)
{
	char dir[] = "/tmp/bench_ckpt.XXXXXX", sock[PATH_MAX];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct proc nat[2] = { 0 }, shim[2] = { 0 };
	struct rep nrep[2], srep[2], drep[2], fin[2][2];
	int K = c->k, k, ls, i, j, ret = 0, nb = 0, np = 0;
	double *ncreate = calloc((size_t)K, sizeof(double));
	double *pair[2] = { calloc((size_t)K, sizeof(double)),
			    calloc((size_t)K, sizeof(double)) };
	double *ndestroy = calloc((size_t)K, sizeof(double));
	double *nparts[3], *v[2][NPH + 5 + 2 * NPH];
	char *fabric = NULL;

	for (i = 0; i < 3; i++)
		nparts[i] = calloc((size_t)K, sizeof(double));
	for (j = 0; j < 2; j++)
		for (i = 0; i < NPH + 5 + 2 * NPH; i++)
			v[j][i] = calloc((size_t)K, sizeof(double));
	if (!strcmp(c->backend, "fake"))
		fabric = it_private_fabric();
	IT_ASSERT(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/sock", dir);
	strcpy(sa.sun_path, sock);
	ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	IT_ASSERT(ls >= 0 && !bind(ls, (struct sockaddr *)&sa, sizeof(sa)) &&
		  !listen(ls, 4));

	/* the shim ranks: set up, then traffic */
	spawn(shim, c, true, sock, argv0);
	accept_shims(shim, ls);
	create(shim, srep);
	for (i = 0; i < 2; i++)
		msg_send(shim[i].ctl, C_GO, NULL, 0);
	/* the native ranks */
	spawn(nat, c, false, sock, argv0);

	/* warm-up: one of each, not counted */
	pause_ranks(shim, true);
	create(nat, nrep);
	destroy(nat, drep);
	{
		struct ph ph[NPH];

		ret = cycle(shim, ph);
	}
	pause_ranks(shim, false);
	for (k = 0; !ret && k < K; k++) {
		struct ph ph[NPH];
		bool busy = k % 2 == 0;
		struct rep r2[2];
		int b = busy ? 0 : 1, n = busy ? nb++ : np++;

		usleep(10000 + (unsigned)(rand() % 20000)); /* traffic */
		pause_ranks(shim, true); /* native on a quiet machine */
		ncreate[k] = create(nat, r2);
		nparts[0][k] = fmax(r2[0].create_us, r2[1].create_us);
		nparts[1][k] = fmax(r2[0].xchg_us, r2[1].xchg_us);
		nparts[2][k] = fmax(r2[0].connect_us, r2[1].connect_us);
		ndestroy[k] = destroy(nat, r2);
		if (busy)
			pause_ranks(shim, false);
		ret = cycle(shim, ph);
		if (!busy)
			pause_ranks(shim, false);
		for (i = 0; i < NPH; i++) {
			v[b][i][n] = ph[i].wall;
			v[b][NPH + 5 + i][n] = ph[i].handler_max;
			v[b][2 * NPH + 5 + i][n] = ph[i].cpu_max;
		}
		pair[b][n] = ph[P_REB].wall / ncreate[k];
		v[b][NPH][n] = ph[P_Q].wall + ph[P_D].wall + ph[P_REL].wall +
			       ph[P_REB].wall;
		v[b][NPH + 1][n] = ph[P_REB].xchg_min;
		v[b][NPH + 2][n] = ph[P_REB].to_put;
		v[b][NPH + 3][n] = ph[P_D].xchg_min;
		v[b][NPH + 4][n] = ph[P_REB].handler_max;
	}
	for (i = 0; i < 2; i++)
		msg_send(nat[i].ctl, C_STOP, NULL, 0);
	reap(nat);
	/* stop the traffic, check it */
	for (i = 0; i < 2; i++)
		msg_send(shim[i].ctl, C_STOP, NULL, 0);
	for (i = 0; i < 2; i++) {
		void *d = msg_expect(shim[i].ctl, C_REP, NULL);

		memcpy(&fin[0][i], d, sizeof(fin[0][i]));
		free(d);
	}
	for (i = 0; i < 2; i++)
		msg_send(shim[i].ctl, C_PEER_SENT, &fin[0][1 - i].sends, 8);
	for (i = 0; i < 2; i++) {
		void *d = msg_expect(shim[i].ctl, C_REP, NULL);

		memcpy(&fin[1][i], d, sizeof(fin[1][i]));
		free(d);
	}
	reap(shim);
	close(ls);
	unlink(sock);
	rmdir(dir);
	it_private_fabric_rm(fabric);

	/* ---- the report ---- */
	{
		size_t ml = (size_t)((c->nqp + c->nmr - 1) / c->nmr) * REGION;

		if ((size_t)c->reg_kib * 1024 / c->nmr > ml)
			ml = ((size_t)c->reg_kib * 1024 / c->nmr + 4095) &
			     ~(size_t)4095;
		emit("\n#### %s: 2 ranks × %d RC QP × %d MR (%zu KiB "
		     "registered per rank), backend %s (%s), %d cycles\n\n",
		     c->label, c->nqp, c->nmr, ml * c->nmr / 1024, c->backend,
		     c->dev, K);
	}
	if (ret) {
		emit("A checkpoint failed: %s. No numbers.\n", strerror(-ret));
		return 1;
	}
	for (j = 0; j < 2; j++) {
		int n = j ? np : nb;

		emit("%s (%d cycles), ms (handler: its wall time in the slower "
		     "rank; CPU: the handler thread's CPU time, the larger of "
		     "the ranks'; both medians):\n\n"
		     "| phase | median | IQR | max | handler | CPU |\n"
		     "|---|---|---|---|---|---|\n",
		     j ? "Programs blocked during the checkpoint (paused)" :
			 "Programs busy polling and posting during the "
			 "checkpoint (busy)",
		     n);
		for (i = 0; i < NPH; i++)
			row2(ph_name[i], v[j][i], n, 1e-3, v[j][NPH + 5 + i],
			     v[j][2 * NPH + 5 + i]);
		row("**quiesce→rebuild**", v[j][NPH], n, 1e-3);
		row("rebuild: until both PUT (create)", v[j][NPH + 2], n,
		    1e-3);
		row("rebuild: exchange (fastest rank's put/fence/get)",
		    v[j][NPH + 1], n, 1e-3);
		row("drain: exchange (fastest rank's)", v[j][NPH + 3], n,
		    1e-3);
		emit("\n");
	}
	emit("Native (the backend directly, no shim; %d times), ms:\n\n"
	     "| step | median | IQR | max |\n|---|---|---|---|\n",
	     K);
	row("**create** (open…RTS, receives posted; both ranks)", ncreate, K,
	    1e-3);
	row("  of which create objects (slower rank)", nparts[0], K, 1e-3);
	row("  of which exchange (slower rank)", nparts[1], K, 1e-3);
	row("  of which connect + post receives (slower rank)", nparts[2], K,
	    1e-3);
	row("destroy", ndestroy, K, 1e-3);
	{
		struct stat3 nc = stats(ncreate, K), nd = stats(ndestroy, K);
		struct stat3 rb = stats(v[0][P_REB], nb),
			     rp = stats(v[1][P_REB], np);
		struct stat3 lb = stats(v[0][P_REL], nb),
			     lp = stats(v[1][P_REL], np);

		struct stat3 pb = stats(pair[0], nb), pp = stats(pair[1], np);

		emit("\nRatios of medians: rebuild / native create = **%.2f** "
		     "(busy), **%.2f** (paused); release / native destroy = "
		     "%.2f (busy), %.2f (paused). Per cycle (each rebuild / "
		     "the native creation just before it): median %.2f, IQR "
		     "%.2f–%.2f (busy); %.2f, %.2f–%.2f (paused).\n\n",
		     rb.med / nc.med, rp.med / nc.med, lb.med / nd.med,
		     lp.med / nd.med, pb.med, pb.q1, pb.q3, pp.med, pp.q1,
		     pp.q3);
	}
	emit("Memory per object (rank 0; malloc'ed = mallinfo2 uordblks + "
	     "hblkhd; RSS = statm resident), bytes:\n\n"
	     "| object | shim rank malloc'ed | native malloc'ed | "
	     "**shim's malloc'ed** | shim rank RSS | native RSS |\n"
	     "|---|---|---|---|---|---|\n");
	{
		static const char *on[4] = { "context + PD", "MR", "CQ",
					     "QP (created, RTS, 32 receives)" };
		int div[4] = { 1, c->nmr, 1, c->nqp };

		for (i = 0; i < 4; i++)
			emit("| %s | %lld | %lld | **%lld** | %lld | %lld |\n",
			     on[i], (long long)(srep[0].mal[i] / div[i]),
			     (long long)(nrep[0].mal[i] / div[i]),
			     (long long)((srep[0].mal[i] - nrep[0].mal[i]) /
					 div[i]),
			     (long long)(srep[0].rss[i] / div[i]),
			     (long long)(nrep[0].rss[i] / div[i]));
	}
	emit("\nTraffic: rank 0 sent %llu SENDs and %llu RDMA WRITEs, rank 1 "
	     "%llu and %llu; received %llu and %llu (%s), %llu+%llu "
	     "completion errors.\n",
	     (unsigned long long)fin[1][0].sends,
	     (unsigned long long)fin[1][0].writes,
	     (unsigned long long)fin[1][1].sends,
	     (unsigned long long)fin[1][1].writes,
	     (unsigned long long)fin[1][0].recvd,
	     (unsigned long long)fin[1][1].recvd,
	     fin[1][0].recvd == fin[1][1].sends &&
			     fin[1][1].recvd == fin[1][0].sends ?
		     "every SEND arrived once" :
		     "SENDs and receives DIFFER",
	     (unsigned long long)fin[1][0].errors,
	     (unsigned long long)fin[1][1].errors);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_ckpt [-q NQP] [-m NMR] [-k CYCLES] "
			"[-b fake|real] [-d DEV] [-g GID] [-l LABEL] "
			"[-o OUT.md] [-s REG_KIB]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct cfg c = {
		.nqp = 64, .nmr = 16, .k = 20, .backend = "fake", .gid = -1
	};
	char exe[PATH_MAX], *slash;
	ssize_t n;
	int o, ret;

	if (argc >= 4 && !strcmp(argv[1], "rank"))
		return rank_main(atoi(argv[2]), !strcmp(argv[3], "shim"));
	while ((o = getopt(argc, argv, "q:m:k:b:d:g:l:o:s:")) != -1) {
		switch (o) {
		case 'q': c.nqp = atoi(optarg); break;
		case 'm': c.nmr = atoi(optarg); break;
		case 's': c.reg_kib = atol(optarg); break;
		case 'k': c.k = atoi(optarg); break;
		case 'b': c.backend = optarg; break;
		case 'd': c.dev = optarg; break;
		case 'g': c.gid = atoi(optarg); break;
		case 'l': c.label = optarg; break;
		case 'o': c.out = optarg; break;
		default: usage();
		}
	}
	if (c.nqp < 1 || c.nmr < 1 || c.k < 2 ||
	    (strcmp(c.backend, "fake") && strcmp(c.backend, "real")))
		usage();
	if (!c.dev)
		c.dev = strcmp(c.backend, "fake") ? "rxe0" : "fake0";
	if (!c.label)
		c.label = c.backend;
	if (c.gid < 0)
		c.gid = strcmp(c.backend, "real") ? 0 : 1;
	/* the shim next to us: BUILD/bin/../lib */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	IT_ASSERT(n > 0);
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	*slash = '\0';
	IT_ASSERT(strlen(exe) + 24 < sizeof(preload));
	snprintf(preload, sizeof(preload), "%.*s/../lib/libibsnap.so",
		 PATH_MAX, exe);
	if (c.out) {
		out_md = fopen(c.out, "a");
		IT_ASSERT(out_md, "%s: %s", c.out, strerror(errno));
	}
	signal(SIGPIPE, SIG_IGN);
	srand((unsigned)getpid());
	ret = run(&c, "/proc/self/exe");
	if (out_md)
		fclose(out_md);
	return ret;
}
