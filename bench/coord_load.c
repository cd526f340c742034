// SPDX-License-Identifier: MIT
/*
 * coord_load: a load generator for ibsnapd (issue 9, docs/perf.md).  It
 * simulates N ranks x Q QPs x M MRs on H connections ("hosts", R ranks
 * each, as one host agent would carry them; R = 1 is one connection per
 * process, as the shim does today) and drives one whole checkpoint without
 * dump through a real ibsnapd, speaking the coordinator's wire protocol
 * with its own code (coord/proto*.c, coord/net.c):
 *
 *   REGISTER per connection; a controller's CKPT_START (--no-dump);
 *   QUIESCE, DRAIN (an empty exchange, as the shim's when nothing is
 *   stuck), RELEASE, REBUILD (every rank puts its ID map, rebuild/ids.c's
 *   layout: a header, one name, Q + M ids; fence; every rank gets its
 *   peers' maps), RESUME: each acknowledged by every connection.
 *
 * Exchange modes: "all" (R = 1: plain PUT, the ALL reply, what the shim
 * does; R > 1: keyed PUTK, ALL), "sparse" (keyed PUTK, FENCED, one GET of
 * the host's peers' ranks, PART).  Peers: rank g's QP i goes to
 * g + 1 + i (ring, a halo) or to a hashed rank (random).
 *
 * Every received map is checked (its length and header; with --check its
 * every byte), and every peer's map must arrive.  Faults the daemon must
 * refuse: --dupkey (host 1 also puts a key of host 0: the checkpoint
 * fails), --fault early-get (host 0 GETs before its PUTK), --fault
 * bad-recs (host 0's PUTK counts one record more than it holds).  Prints
 * one line of key=value results; exit 0 only if the checkpoint succeeded
 * and every check passed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"
#include "proto.h"

#define IDS_MAGIC 0x69647331u
#define NAME_LEN 40
#define ID_LEN 12
#define HDR_LEN 12

enum { PH_REG, PH_QUIESCE, PH_DRAIN, PH_RELEASE, PH_REBUILD, PH_RESUME, NPH };
static const char *ph_names[NPH] = { "register", "quiesce", "drain",
				     "release",	 "rebuild", "resume" };

struct opts {
	const char *coord, *job, *peers, *mode;
	uint32_t n, r, q, m;
	int daemon_pid;
	bool check, dupkey;
	const char *fault;
	double timeout_s;
};

struct host {
	int fd;
	uint32_t idx, drank; /* our host index, the daemon's rank */
	struct isn_rx rx;
	struct isn_wbuf out;
	size_t out_off;
	int ph; /* PH_* of the last PHASE */
	uint32_t seq;
	bool want_out;
};

static struct opts o = {
	.job = "load",
	.peers = "ring",
	.mode = "sparse",
	.n = 1024,
	.r = 128,
	.q = 64,
	.m = 8,
	.timeout_s = 300,
};
static struct host *hosts;
static uint32_t nhosts;
static uint32_t *stamp; /* per rank: the host that last marked it + 1 */
static uint32_t *by_drank; /* the daemon's rank -> our host */
static int epfd;
static uint64_t tx[NPH], rx[NPH];
static uint64_t maps_checked;
static int failed;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;

	if (failed++ > 10)
		return;
	va_start(ap, fmt);
	fputs("coord_load: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static uint32_t mix(uint32_t a, uint32_t b)
{
	uint32_t x = a * 0x9e3779b1u ^ (b + 0x7f4a7c15u) * 0x85ebca6bu;

	x ^= x >> 15;
	x *= 0x2c1b3c6du;
	x ^= x >> 12;
	return x;
}

static uint32_t map_len(void)
{
	return HDR_LEN + NAME_LEN + ID_LEN * (o.q + o.m);
}

/* Rank @g's ID map for exchange @seq (rebuild/ids.c's layout). */
static void map_make(uint32_t g, uint32_t seq, uint8_t *out)
{
	uint32_t h[3] = { IDS_MAGIC, 1, o.q + o.m }, i, v[3];
	uint8_t *p = out + HDR_LEN;

	memcpy(out, h, sizeof(h));
	for (i = 0; i < NAME_LEN / 4; i++) {
		v[0] = mix(g / o.r, i + 1000 * seq); /* a host's ranks share */
		memcpy(p + 4 * i, v, 4);
	}
	p += NAME_LEN;
	for (i = 0; i < o.q + o.m; i++) {
		v[0] = i < o.q ? 1 : 3; /* QPN, rkey */
		v[1] = mix(g, i);
		v[2] = mix(v[1], seq);
		memcpy(p + ID_LEN * i, v, ID_LEN);
	}
}

static uint32_t peer_of(uint32_t g, uint32_t i)
{
	if (o.peers[0] == 'r' && o.peers[1] == 'i')
		return (g + 1 + i) % o.n;
	return mix(g, i + 77) % o.n;
}

static uint32_t host_ranks(const struct host *h)
{
	uint32_t first = h->idx * o.r;

	return o.n - first < o.r ? o.n - first : o.r;
}

static void check_map(uint32_t g, const uint8_t *data, uint32_t len,
		      uint32_t seq)
{
	static uint8_t *want;
	uint32_t hdr[3];

	if (g >= o.n || len != map_len()) {
		fail("map of rank %u: %u bytes, not %u", g, len, map_len());
		return;
	}
	memcpy(hdr, data, sizeof(hdr));
	if (hdr[0] != IDS_MAGIC || hdr[1] != 1 || hdr[2] != o.q + o.m) {
		fail("map of rank %u: bad header", g);
		return;
	}
	if (o.check) {
		if (!want && !(want = malloc(map_len())))
			return fail("out of memory");
		map_make(g, seq, want);
		if (memcmp(want, data, len))
			fail("map of rank %u: wrong contents", g);
	}
	maps_checked++;
}

/* ---- output ---- */

static void flush_out(struct host *h)
{
	ssize_t n;
	bool want;

	while (h->out_off < h->out.len) {
		n = send(h->fd, h->out.p + h->out_off, h->out.len - h->out_off,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			fail("host %u: send: %s", h->idx, strerror(errno));
			return;
		}
		tx[h->ph] += n;
		h->out_off += n;
	}
	if (h->out_off == h->out.len) {
		h->out.len = h->out_off = 0;
		if (h->out.cap > (1u << 20)) {
			isn_wbuf_free(&h->out);
			memset(&h->out, 0, sizeof(h->out));
		}
	}
	want = h->out_off < h->out.len;
	if (want != h->want_out) {
		struct epoll_event ev = { .events = EPOLLIN |
						    (want ? EPOLLOUT : 0),
					  .data.u32 = h->idx };

		epoll_ctl(epfd, EPOLL_CTL_MOD, h->fd, &ev);
		h->want_out = want;
	}
}

static void send_msg(struct host *h, uint16_t type, const void *m)
{
	if (isn_msg_encode(&h->out, type, m))
		fail("host %u: cannot encode %s", h->idx, isn_msg_name(type));
	flush_out(h);
}

static void ack(struct host *h)
{
	struct isn_m_ack a = { .seq = h->seq };

	a.phase = (uint16_t)(h->ph == PH_QUIESCE ? ISN_PHASE_QUIESCE :
			     h->ph == PH_DRAIN	 ? ISN_PHASE_DRAIN :
			     h->ph == PH_RELEASE ? ISN_PHASE_RELEASE :
			     h->ph == PH_REBUILD ? ISN_PHASE_REBUILD :
						   ISN_PHASE_RESUME);
	send_msg(h, ISN_MSG_ACK, &a);
}

/* The exchange of DRAIN (empty) or REBUILD (the maps). */
static void put(struct host *h)
{
	uint32_t nr = host_ranks(h), first = h->idx * o.r, i;
	bool maps = h->ph == PH_REBUILD, sparse = o.mode[0] == 's';
	struct isn_all_src *src;
	struct isn_wbuf w = { 0 };
	uint8_t *buf;

	buf = malloc(maps ? (size_t)nr * map_len() : 1);
	src = calloc(nr, sizeof(*src));
	if (!buf || !src)
		return fail("out of memory");
	for (i = 0; maps && i < nr; i++) {
		map_make(first + i, h->seq, buf + (size_t)i * map_len());
		src[i] = (struct isn_all_src){ first + i, map_len(),
					       buf + (size_t)i * map_len() };
	}
	if (o.r == 1 && !sparse) {
		struct isn_m_put p = { .seq = h->seq };

		p.blob = (struct isn_bytes){ maps ? map_len() : 0, buf };
		send_msg(h, ISN_MSG_PUT, &p);
	} else {
		struct isn_m_putk p = { .seq = h->seq,
					.flags = sparse ? ISN_PK_SPARSE : 0 };

		/* --dupkey: host 1 also puts host 0's last rank */
		if (o.dupkey && maps && h->idx == 1)
			src[0].rank = first - 1;
		if (isn_recs_encode(&w, src, maps ? nr : 0))
			fail("host %u: cannot encode its records", h->idx);
		if (maps && !h->idx && o.fault &&
		    !strcmp(o.fault, "early-get")) {
			struct isn_m_get g = { .seq = h->seq };

			g.keys = (struct isn_u32s){ .n = 1, .v = &first };
			send_msg(h, ISN_MSG_GET, &g);
		}
		if (maps && !h->idx && o.fault && !strcmp(o.fault, "bad-recs"))
			w.p[0]++; /* n, little-endian */
		p.recs = (struct isn_bytes){ (uint32_t)w.len, w.p };
		send_msg(h, ISN_MSG_PUTK, &p);
		isn_wbuf_free(&w);
	}
	free(src);
	free(buf);
}

/* FENCED: one GET of every peer of the host's ranks. */
static void get_peers(struct host *h)
{
	uint32_t nr = host_ranks(h), first = h->idx * o.r, i, k, n = 0;
	struct isn_m_get g = { .seq = h->seq };
	uint32_t *keys = malloc(((size_t)nr * o.q + 1) * sizeof(*keys));

	if (!keys)
		return fail("out of memory");
	for (i = 0; i < nr; i++) {
		for (k = 0; k < o.q; k++) {
			uint32_t p = peer_of(first + i, k);

			if (stamp[p] != h->idx + 1) {
				stamp[p] = h->idx + 1;
				keys[n++] = p;
			}
		}
	}
	g.keys = (struct isn_u32s){ .n = n, .v = keys };
	send_msg(h, ISN_MSG_GET, &g);
	free(keys);
}

/* PART or ALL: every peer must be there; check what came. */
static void got_maps(struct host *h, const void *payload, uint32_t len,
		     bool all)
{
	uint32_t nr = host_ranks(h), first = h->idx * o.r, seq, i, k;
	struct isn_blob *b;
	size_t n, j;

	if (isn_all_decode(payload, len, &seq, &b, &n) || seq != h->seq) {
		fail("host %u: malformed reply", h->idx);
		return;
	}
	if (h->ph == PH_DRAIN) {
		if (n)
			fail("host %u: %zu records in an empty exchange",
			     h->idx, n);
		free(b);
		ack(h);
		return;
	}
	for (j = 0; j < n; j++) {
		uint32_t g = b[j].rank;

		/* a plain PUT's blob comes under the daemon's rank */
		if (all && o.r == 1)
			g = g < 2 * nhosts ? by_drank[g] : UINT32_MAX;
		if (g < o.n) {
			check_map(g, b[j].data, b[j].len, h->seq);
			stamp[g] = UINT32_MAX - h->idx; /* arrived */
		} else {
			fail("host %u: a map of unknown rank %u", h->idx, g);
		}
	}
	for (i = 0; i < nr; i++)
		for (k = 0; k < o.q; k++)
			if (stamp[peer_of(first + i, k)] != UINT32_MAX - h->idx)
				fail("host %u: rank %u's peer %u: no map",
				     h->idx, first + i, peer_of(first + i, k));
	free(b);
	ack(h);
}

static void on_msg(struct host *h, const struct isn_hdr *hd, const void *pl)
{
	union {
		struct isn_m_phase ph;
		struct isn_m_xfail xf;
		struct isn_m_error err;
		struct isn_m_fenced fe;
	} m;

	if (hd->type == ISN_MSG_ALL || hd->type == ISN_MSG_PART)
		return got_maps(h, pl, hd->len, hd->type == ISN_MSG_ALL);
	if (isn_msg_decode(hd->type, pl, hd->len, &m))
		return fail("host %u: malformed %s", h->idx,
			    isn_msg_name(hd->type));
	switch (hd->type) {
	case ISN_MSG_PHASE:
		h->seq = m.ph.seq;
		h->ph = m.ph.phase == ISN_PHASE_QUIESCE ? PH_QUIESCE :
			m.ph.phase == ISN_PHASE_DRAIN	? PH_DRAIN :
			m.ph.phase == ISN_PHASE_RELEASE ? PH_RELEASE :
			m.ph.phase == ISN_PHASE_REBUILD ? PH_REBUILD :
							  PH_RESUME;
		if (m.ph.flags & ISN_PH_ROLLBACK)
			fail("host %u: rollback", h->idx);
		if (h->ph == PH_DRAIN || h->ph == PH_REBUILD)
			put(h);
		else
			ack(h);
		return;
	case ISN_MSG_FENCED:
		if (h->ph == PH_REBUILD)
			get_peers(h);
		else
			ack(h);
		return;
	case ISN_MSG_XFAIL:
		return fail("host %u: XFAIL %d %s", h->idx, m.xf.code,
			    m.xf.text);
	case ISN_MSG_ERROR:
		return fail("host %u: ERROR %s", h->idx, m.err.text);
	}
	fail("host %u: unexpected %s", h->idx, isn_msg_name(hd->type));
}

static void on_readable(struct host *h)
{
	const void *pl;
	struct isn_hdr hd;
	ssize_t n;
	int ret;

	for (;;) {
		n = isn_rx_read(&h->rx, h->fd);
		if (n == -EAGAIN)
			break;
		if (n <= 0) {
			fail("host %u: connection closed (%zd)", h->idx, n);
			epoll_ctl(epfd, EPOLL_CTL_DEL, h->fd, NULL);
			return;
		}
		rx[h->ph] += n;
		while ((ret = isn_rx_next(&h->rx, &hd, &pl)) == 1)
			on_msg(h, &hd, pl);
		if (ret < 0)
			return fail("host %u: bad header", h->idx);
	}
}

/* ---- the daemon's resources ---- */

struct dstat {
	double cpu_s;
	long rss_kb, hwm_kb;
};

static void dstat_read(struct dstat *s)
{
	char path[64], line[512];
	unsigned long ut = 0, st = 0;
	FILE *f;

	memset(s, 0, sizeof(*s));
	if (o.daemon_pid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/stat", o.daemon_pid);
	f = fopen(path, "r");
	if (f && fgets(line, sizeof(line), f)) {
		char *p = strrchr(line, ')');

		if (p && sscanf(p + 2,
				"%*c %*d %*d %*d %*d %*d %*u %*u %*u "
				"%*u %*u %lu %lu",
				&ut, &st) == 2)
			s->cpu_s = (double)(ut + st) / sysconf(_SC_CLK_TCK);
	}
	if (f)
		fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/status", o.daemon_pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f)) {
		sscanf(line, "VmRSS: %ld", &s->rss_kb);
		sscanf(line, "VmHWM: %ld", &s->hwm_kb);
	}
	if (f)
		fclose(f);
}

static double self_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* ---- the run ---- */

static int connect_hosts(struct isn_addr *a, const uint8_t *token)
{
	struct isn_m_register m = { .rank = ISN_RANK_NEW, .wake_fd = -1 };
	struct isn_m_registered r;
	const void *pl;
	struct isn_hdr hd;
	uint32_t i;
	int ret;

	isn_strlcpy(m.job, o.job, sizeof(m.job));
	memcpy(m.token, token, ISN_TOKEN_LEN);
	m.pid = (uint32_t)getpid();
	/* pipelined: every connection sends its REGISTER, then the answers */
	for (i = 0; i < nhosts; i++) {
		struct host *h = &hosts[i];

		h->idx = i;
		isn_rx_init(&h->rx, ISN_MSG_MAX);
		h->fd = isn_connect(a);
		if (h->fd < 0) {
			fprintf(stderr, "coord_load: connect %u: %s\n", i,
				strerror(-h->fd));
			return -1;
		}
		snprintf(m.host, sizeof(m.host), "loadhost%u", i);
		ret = isn_msg_encode(&h->out, ISN_MSG_REGISTER, &m);
		if (!ret)
			ret = isn_write_all(h->fd, h->out.p, h->out.len);
		tx[PH_REG] += h->out.len;
		h->out.len = 0;
		if (ret)
			return -1;
	}
	for (i = 0; i < nhosts; i++) {
		struct host *h = &hosts[i];
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };

		ret = isn_recv_msg(h->fd, &h->rx, 60000, &hd, &pl);
		if (ret != 1 || hd.type != ISN_MSG_REGISTERED ||
		    isn_msg_decode(hd.type, pl, hd.len, &r)) {
			fprintf(stderr, "coord_load: host %u not registered\n",
				i);
			return -1;
		}
		rx[PH_REG] += ISN_HDR_LEN + hd.len;
		h->drank = r.rank;
		if (r.rank < 2 * nhosts)
			by_drank[r.rank] = i;
		fcntl(h->fd, F_SETFL, fcntl(h->fd, F_GETFL) | O_NONBLOCK);
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, h->fd, &ev))
			return -1;
	}
	return 0;
}

static void usage(void)
{
	fputs("usage: coord_load --coord ADDR [-n RANKS] [-r RANKS_PER_CONN] "
	      "[-q QPS] [-m MRS]\n"
	      "       [--peers ring|random] [--mode all|sparse] "
	      "[--daemon-pid PID]\n"
	      "       [--job NAME] [--check] [--timeout S] [--dupkey]\n"
	      "       [--fault early-get|bad-recs]\n",
	      stderr);
	exit(2);
}

static void parse(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "coord", required_argument, 0, 'c' },
		{ "ranks", required_argument, 0, 'n' },
		{ "per-conn", required_argument, 0, 'r' },
		{ "qps", required_argument, 0, 'q' },
		{ "mrs", required_argument, 0, 'm' },
		{ "peers", required_argument, 0, 'p' },
		{ "mode", required_argument, 0, 'M' },
		{ "daemon-pid", required_argument, 0, 'd' },
		{ "job", required_argument, 0, 'j' },
		{ "check", no_argument, 0, 'C' },
		{ "dupkey", no_argument, 0, 'K' },
		{ "fault", required_argument, 0, 'F' },
		{ "timeout", required_argument, 0, 't' },
		{ 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:n:r:q:m:", lo, NULL)) != -1) {
		switch (c) {
		case 'c':
			o.coord = optarg;
			break;
		case 'n':
			o.n = (uint32_t)atoi(optarg);
			break;
		case 'r':
			o.r = (uint32_t)atoi(optarg);
			break;
		case 'q':
			o.q = (uint32_t)atoi(optarg);
			break;
		case 'm':
			o.m = (uint32_t)atoi(optarg);
			break;
		case 'p':
			o.peers = optarg;
			break;
		case 'M':
			o.mode = optarg;
			break;
		case 'd':
			o.daemon_pid = atoi(optarg);
			break;
		case 'j':
			o.job = optarg;
			break;
		case 'C':
			o.check = true;
			break;
		case 'K':
			o.dupkey = true;
			break;
		case 'F':
			o.fault = optarg;
			break;
		case 't':
			o.timeout_s = atof(optarg);
			break;
		default:
			usage();
		}
	}
	if (!o.coord || !o.n || !o.r || o.q > o.n ||
	    (strcmp(o.peers, "ring") && strcmp(o.peers, "random")) ||
	    (strcmp(o.mode, "all") && strcmp(o.mode, "sparse")))
		usage();
}

int main(int argc, char **argv)
{
	struct isn_m_ckpt_start cs = { .flags = ISN_CK_NO_DUMP | ISN_CK_TOKEN };
	uint64_t t0, t_reg, t_ck0, t_end = 0, ph_us[NPH] = { 0 };
	struct epoll_event evs[256];
	struct dstat d0, d1, d2;
	struct isn_addr a;
	struct isn_rx crx;
	uint8_t token[ISN_TOKEN_LEN];
	double cpu0 = self_cpu();
	int ctl, i, n, ret;
	bool done = false;

	parse(argc, argv);
	if (isn_addr_parse(o.coord, &a) || isn_token_new(token))
		usage();
	nhosts = (o.n + o.r - 1) / o.r;
	hosts = calloc(nhosts, sizeof(*hosts));
	stamp = calloc(o.n, sizeof(*stamp));
	by_drank = malloc(2 * (size_t)nhosts * sizeof(*by_drank));
	if (by_drank)
		memset(by_drank, 0xff, 2 * (size_t)nhosts * sizeof(*by_drank));
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!hosts || !stamp || !by_drank || epfd < 0)
		return 1;
	dstat_read(&d0);
	t0 = isn_now_us();
	if (connect_hosts(&a, token))
		return 1;
	t_reg = isn_now_us() - t0;
	dstat_read(&d1);
	ctl = isn_connect(&a);
	isn_strlcpy(cs.job, o.job, sizeof(cs.job));
	memcpy(cs.token, token, ISN_TOKEN_LEN);
	t_ck0 = isn_now_us();
	if (ctl < 0 || isn_send_msg(ctl, ISN_MSG_CKPT_START, &cs))
		return 1;
	fcntl(ctl, F_SETFL, fcntl(ctl, F_GETFL) | O_NONBLOCK);
	isn_rx_init(&crx, ISN_MSG_MAX);
	{
		struct epoll_event ev = { .events = EPOLLIN,
					  .data.u32 = UINT32_MAX };
		epoll_ctl(epfd, EPOLL_CTL_ADD, ctl, &ev);
	}
	while (!done && !failed) {
		n = epoll_wait(epfd, evs, 256, 1000);
		if (n < 0 && errno != EINTR)
			return 1;
		if ((isn_now_us() - t_ck0) / 1e6 > o.timeout_s) {
			fail("no end within %.0f s", o.timeout_s);
			break;
		}
		for (i = 0; i < n && !failed; i++) {
			uint32_t k = evs[i].data.u32;
			union {
				struct isn_m_ckpt_progress p;
				struct isn_m_ckpt_end e;
				struct isn_m_error err;
			} m;
			const void *pl;
			struct isn_hdr hd;

			if (k != UINT32_MAX) {
				if (evs[i].events & EPOLLOUT)
					flush_out(&hosts[k]);
				if (evs[i].events & (EPOLLIN | EPOLLHUP))
					on_readable(&hosts[k]);
				continue;
			}
			if (isn_rx_read(&crx, ctl) == 0) {
				fail("the controller's connection closed");
				break;
			}
			while (isn_rx_next(&crx, &hd, &pl) == 1) {
				if (isn_msg_decode(hd.type, pl, hd.len, &m)) {
					fail("controller: malformed message");
					break;
				}
				if (hd.type == ISN_MSG_CKPT_PROGRESS) {
					int p = m.p.phase;

					if (m.p.status)
						fail("checkpoint: %s",
						     m.p.text);
					else if (p >= ISN_PHASE_QUIESCE &&
						 p <= ISN_PHASE_RESUME &&
						 p != ISN_PHASE_DUMP)
						ph_us[p < ISN_PHASE_DUMP ?
							      p :
							      p - 1] +=
							m.p.usec;
				} else if (hd.type == ISN_MSG_CKPT_END) {
					t_end = isn_now_us();
					if (m.e.status)
						fail("checkpoint: %s",
						     m.e.text);
					done = true;
				} else if (hd.type == ISN_MSG_ERROR) {
					fail("controller: %s", m.err.text);
				}
			}
		}
	}
	dstat_read(&d2);
	isn_rx_free(&crx);
	close(ctl);
	ret = failed || !done;
	{
		double ck_s = t_end ? (t_end - t_ck0) / 1e6 : -1;
		uint64_t txa = 0, rxa = 0;

		for (i = 0; i < NPH; i++) {
			txa += tx[i];
			rxa += rx[i];
		}
		printf("ranks=%u per_conn=%u conns=%u qps=%u mrs=%u "
		       "map_bytes=%u peers=%s mode=%s ok=%d "
		       "register_s=%.3f ckpt_s=%.3f total_s=%.3f",
		       o.n, o.r, nhosts, o.q, o.m, map_len(), o.peers, o.mode,
		       !ret, t_reg / 1e6, ck_s,
		       ck_s < 0 ? -1 : ck_s + t_reg / 1e6);
		for (i = PH_QUIESCE; i < NPH; i++)
			printf(" %s_s=%.3f", ph_names[i], ph_us[i] / 1e6);
		printf(" to_daemon_bytes=%llu from_daemon_bytes=%llu "
		       "rebuild_from_daemon_bytes=%llu maps_checked=%llu "
		       "daemon_cpu_s=%.2f daemon_rss_kb=%ld daemon_hwm_kb=%ld "
		       "daemon_rss_registered_kb=%ld load_cpu_s=%.2f\n",
		       (unsigned long long)txa, (unsigned long long)rxa,
		       (unsigned long long)rx[PH_REBUILD],
		       (unsigned long long)maps_checked, d2.cpu_s - d0.cpu_s,
		       d2.rss_kb, d2.hwm_kb, d1.rss_kb, self_cpu() - cpu0);
	}
	return ret;
}
