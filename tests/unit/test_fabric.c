/* SPDX-License-Identifier: MIT */
/*
 * Fake fabric: registry, identities, QP directory, packet rings, wake-ups,
 * fault injection.  Every test runs in a fabric directory of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fab_ring.h"
#include "unit/ut_fake.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

#define MS 1000000ll

static char fab_dir[64];
static char self_exe[4096];

/* ---- helpers ---- */

static int setup(void **state)
{
	(void)state;
	if (ut_fabric_enter(fab_dir))
		return -1;
	unsetenv("IBSNAP_FAKE_NODE");
	fab_faults_config("");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fab_faults_config("");
	return ut_fabric_leave(fab_dir);
}

static uint32_t fnv(const uint8_t *p, size_t len)
{
	uint32_t h = 2166136261u;

	while (len--)
		h = (h ^ *p++) * 16777619u;
	return h;
}

/* A test packet: this header, then len payload bytes. */
struct tpkt {
	uint32_t src;
	uint32_t seq;
	uint32_t len;
	uint32_t sum;
};

#define TPAY_MAX (FAB_PKT_MAX - sizeof(struct tpkt))

static size_t tlen(uint32_t seq)
{
	return seq % 1000 == 999 ? TPAY_MAX : (seq % 97) * 17;
}

static int tsend(struct fab_port *p, const struct fab_dest *d, uint32_t src,
		 uint32_t seq, size_t len, unsigned int flags)
{
	static __thread uint8_t buf[FAB_PKT_MAX];
	struct tpkt h = { src, seq, (uint32_t)len, 0 };
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (uint8_t)(seq * 7 + i * 13 + src);
	h.sum = fnv(buf, len);
	return fab_send(p, d, &h, sizeof(h), buf, len, flags);
}

struct rx {
	uint32_t n, bad, order_err, dups;
	uint32_t next[8];
	bool seen_any[8];
	uint32_t last_seq[8];
	uint64_t last_ns;
};

static void rx_cb(void *arg, const void *pkt, size_t len)
{
	struct rx *rx = arg;
	struct tpkt h;

	if (len < sizeof(h)) {
		rx->bad++;
		return;
	}
	memcpy(&h, pkt, sizeof(h));
	if (h.src >= 8 || h.len != len - sizeof(h) ||
	    fnv((const uint8_t *)pkt + sizeof(h), h.len) != h.sum) {
		rx->bad++;
		return;
	}
	if (rx->seen_any[h.src] && h.seq == rx->last_seq[h.src])
		rx->dups++;
	else if (h.seq < rx->next[h.src])
		rx->order_err++;
	rx->next[h.src] = h.seq + 1;
	rx->last_seq[h.src] = h.seq;
	rx->seen_any[h.src] = true;
	rx->n++;
	rx->last_ns = fab_now_ns();
}

/* Open @a on node @na and @b on node @nb; *to_b reaches a QP of b. */
static void pair(struct fab_port **a, const char *na, struct fab_port **b,
		 const char *nb, struct fab_dest *to_b)
{
	uint32_t qpn;

	assert_int_equal(fab_port_open(na, a), 0);
	assert_int_equal(fab_port_open(nb, b), 0);
	qpn = fab_alloc_qpn(*b);
	assert_int_equal(fab_qp_publish(*b, qpn), 0);
	assert_int_equal(
		fab_resolve(*a, &fab_port_node(*b)->gid[0], 0, qpn, to_b), 0);
}

static int count_rings(void)
{
	char cmd[128];
	FILE *f;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls %s | grep -c '^port-'", fab_dir);
	f = popen(cmd, "r");
	if (f) {
		if (fscanf(f, "%d", &n) != 1)
			n = -1;
		pclose(f);
	}
	return n;
}

static bool exists(const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", fab_dir, name);
	return access(path, F_OK) == 0;
}

static void drain(struct fab_port *p, struct rx *rx)
{
	while (fab_poll(p, rx_cb, rx, 64) > 0)
		;
}

/* ---- identities, allocators ---- */

static void test_identity(void **state)
{
	struct fab_port *a1, *a2, *b;
	const struct fab_node_id *ia, *ib;

	(void)state;
	assert_int_equal(fab_port_open("a", &a1), 0);
	assert_int_equal(fab_port_open("a", &a2), 0);
	assert_int_equal(fab_port_open("b", &b), 0);
	assert_int_not_equal(fab_port_slot(a1), fab_port_slot(a2));
	ia = fab_port_node(a1);
	ib = fab_port_node(b);
	assert_memory_equal(ia, fab_port_node(a2), sizeof(*ia));
	assert_string_equal(ia->name, "a");
	assert_int_equal(ia->incarnation, 0);
	assert_int_equal(ia->qpn_base, 0x11);
	assert_int_not_equal(ia->lid, 0);
	assert_int_not_equal(ib->lid, 0);
	assert_int_not_equal(ia->lid, ib->lid);
	assert_int_not_equal(ia->index, ib->index);
	assert_true(ia->node_guid != ib->node_guid);
	assert_memory_not_equal(&ia->gid[0], &ib->gid[0], 16);
	assert_memory_not_equal(&ia->gid[1], &ib->gid[1], 16);
	assert_int_equal(ia->gid[0].raw[0], 0xfe);
	assert_int_equal(ia->gid[0].raw[1], 0x80);
	assert_memory_equal(&ia->gid[0].raw[8], &ia->node_guid, 8);
	assert_int_equal(ia->gid[1].raw[10], 0xff);
	assert_int_equal(ia->gid[1].raw[11], 0xff);
	assert_int_equal(ia->gid[1].raw[12], 127);
	assert_int_equal(fab_alloc_qpn(a1), 0x11);
	fab_port_close(a1);
	fab_port_close(a2);
	fab_port_close(b);
	assert_int_equal(count_rings(), 0);
}

static int cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return a < b ? -1 : a > b;
}

/* QPNs and keys of a node are unique across its ports and processes. */
static void test_alloc_unique(void **state)
{
	enum { N = 2000 };
	static uint32_t qpns[4 * N], keys[4 * N];
	struct fab_port *a1, *a2, *b;
	int fds[2], i, n = 0, status;
	pid_t pid;

	(void)state;
	assert_int_equal(fab_port_open("a", &a1), 0);
	assert_int_equal(fab_port_open("a", &a2), 0);
	assert_int_equal(fab_port_open("b", &b), 0);
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		struct fab_port *c;
		uint32_t v[2];

		if (fab_port_open("a", &c))
			_exit(1);
		for (i = 0; i < N; i++) {
			v[0] = fab_alloc_qpn(c);
			v[1] = fab_alloc_key(c);
			if (write(fds[1], v, sizeof(v)) != sizeof(v))
				_exit(1);
		}
		fab_port_close(c);
		_exit(0);
	}
	close(fds[1]);
	for (i = 0; i < N; i++) {
		qpns[n] = fab_alloc_qpn(i & 1 ? a1 : a2);
		keys[n++] = fab_alloc_key(i & 1 ? a2 : a1);
	}
	for (i = 0; i < N; i++) {
		uint32_t v[2];

		assert_int_equal(read(fds[0], v, sizeof(v)), sizeof(v));
		qpns[n] = v[0];
		keys[n++] = v[1];
	}
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(status, 0);
	qsort(qpns, n, sizeof(qpns[0]), cmp_u32);
	qsort(keys, n, sizeof(keys[0]), cmp_u32);
	for (i = 0; i < n; i++) {
		assert_true(qpns[i] >= 2 && qpns[i] <= 0xffffff);
		assert_true(keys[i] >> 8);
		if (i) {
			assert_int_not_equal(qpns[i], qpns[i - 1]);
			assert_int_not_equal(keys[i], keys[i - 1]);
		}
	}
	/* another node numbers on its own */
	assert_int_equal(fab_alloc_qpn(b), 0x11);
	fab_port_close(a1);
	fab_port_close(a2);
	fab_port_close(b);
}

/* ---- QP directory ---- */

static void test_publish_resolve(void **state)
{
	struct fab_port *a, *b;
	struct fab_dest d, d2;
	const struct fab_node_id *ib;
	union ibv_gid bad, bgid;
	uint32_t qpn, node, i;
	uint16_t blid;
	static uint32_t many[5000];

	(void)state;
	assert_int_equal(fab_port_open("a", &a), 0);
	assert_int_equal(fab_port_open("b", &b), 0);
	ib = fab_port_node(b);
	qpn = fab_alloc_qpn(b);
	assert_int_equal(fab_resolve(a, &ib->gid[0], 0, qpn, &d), -ENOENT);
	assert_int_equal(fab_qp_publish(b, qpn), 0);
	assert_int_equal(fab_qp_publish(b, qpn), -EEXIST);
	assert_int_equal(fab_resolve(a, &ib->gid[0], 0, qpn, &d), 0);
	assert_int_equal(d.port_slot, fab_port_slot(b));
	assert_int_equal(d.node_index, ib->index);
	assert_int_equal(d.qpn, qpn);
	memset(&d2, 0, sizeof(d2));
	assert_int_equal(fab_resolve(a, &ib->gid[1], 0, qpn, &d2), 0);
	assert_memory_equal(&d, &d2, sizeof(d));
	assert_int_equal(fab_resolve(a, NULL, ib->lid, qpn, &d2), 0);
	assert_memory_equal(&d, &d2, sizeof(d));
	assert_int_equal(fab_resolve_node(a, &ib->gid[1], 0, &node), 0);
	assert_int_equal(node, ib->index);
	/* wrong node, unknown qpn, foreign GID, LID 0 */
	assert_int_equal(fab_resolve(a, &fab_port_node(a)->gid[0], 0, qpn, &d2),
			 -ENOENT);
	assert_int_equal(fab_resolve(a, &ib->gid[0], 0, qpn + 1, &d2), -ENOENT);
	bad = ib->gid[0];
	bad.raw[9] ^= 1;
	assert_int_equal(fab_resolve(a, &bad, 0, qpn, &d2), -ENOENT);
	assert_int_equal(fab_resolve_node(a, NULL, 0, &node), -ENOENT);
	assert_int_equal(fab_resolve_node(a, NULL, 0xbfff, &node), -ENOENT);

	fab_qp_unpublish(b, qpn);
	assert_int_equal(fab_resolve(a, &ib->gid[0], 0, qpn, &d2), -ENOENT);
	/* many entries, half removed: the rest still resolve */
	for (i = 0; i < 5000; i++) {
		many[i] = fab_alloc_qpn(b);
		assert_int_equal(fab_qp_publish(b, many[i]), 0);
	}
	for (i = 0; i < 5000; i += 2)
		fab_qp_unpublish(b, many[i]);
	for (i = 0; i < 5000; i++)
		assert_int_equal(fab_resolve(a, NULL, ib->lid, many[i], &d2),
				 i % 2 ? 0 : -ENOENT);
	/* a port may not unpublish another's QP */
	fab_qp_unpublish(a, many[1]);
	assert_int_equal(fab_qp_publish(b, qpn), 0);
	assert_int_equal(fab_resolve(a, &ib->gid[0], 0, qpn, &d), 0);
	assert_int_equal(fab_send(a, &d, "x", 1, NULL, 0, 0), 0);

	blid = ib->lid;
	bgid = ib->gid[0];
	fab_port_close(b);
	assert_int_equal(fab_resolve(a, &bgid, 0, qpn, &d2), -ENOENT);
	assert_int_equal(fab_resolve(a, NULL, blid, many[1], &d2), -ENOENT);
	assert_int_equal(fab_send(a, &d, "x", 1, NULL, 0, 0), -EHOSTUNREACH);
	/* the node outlives its ports; a new port has none of the old QPs */
	assert_int_equal(fab_resolve_node(a, &bgid, 0, &node), 0);
	assert_int_equal(fab_port_open("b", &b), 0);
	assert_int_equal(fab_port_node(b)->lid, blid);
	assert_int_equal(fab_resolve(a, NULL, blid, many[1], &d2), -ENOENT);
	fab_port_close(b);
	fab_port_close(a);
	assert_int_equal(count_rings(), 0);
}

static void test_reincarnate(void **state)
{
	struct fab_port *old, *new, *peer;
	struct fab_node_id io, in;
	struct fab_dest d;
	uint32_t q_old, q_new, k_old, k_new, node;

	(void)state;
	assert_int_equal(fab_port_open("a", &old), 0);
	assert_int_equal(fab_port_open("z", &peer), 0);
	io = *fab_port_node(old);
	q_old = fab_alloc_qpn(old);
	k_old = fab_alloc_key(old);
	assert_int_equal(fab_qp_publish(old, q_old), 0);
	assert_int_equal(fab_node_reincarnate("a"), 0);
	assert_int_equal(fab_node_reincarnate("nosuch"), -ENOENT);
	assert_memory_equal(&io, fab_port_node(old), sizeof(io));
	assert_int_equal(fab_port_open("a", &new), 0);
	in = *fab_port_node(new);
	assert_int_equal(in.index, io.index);
	assert_int_equal(in.incarnation, io.incarnation + 1);
	assert_int_not_equal(in.lid, io.lid);
	assert_int_not_equal(in.lid, fab_port_node(peer)->lid);
	assert_true(in.node_guid != io.node_guid);
	assert_memory_not_equal(&in.gid[0], &io.gid[0], 16);
	assert_memory_not_equal(&in.gid[1], &io.gid[1], 16);
	assert_int_not_equal(in.qpn_base, io.qpn_base);
	assert_int_not_equal(in.key_base, io.key_base);
	q_new = fab_alloc_qpn(new);
	k_new = fab_alloc_key(new);
	assert_int_equal(q_new, in.qpn_base);
	assert_int_equal(k_new >> 8, in.key_base);
	assert_int_equal(k_old >> 8, io.key_base);
	assert_int_not_equal(k_new & 0xff, k_old & 0xff);
	assert_int_equal(fab_qp_publish(new, q_new), 0);
	/* the old identity names the old port's QPs only, and vice versa */
	assert_int_equal(fab_resolve(peer, &io.gid[0], 0, q_old, &d), 0);
	assert_int_equal(d.port_slot, fab_port_slot(old));
	assert_int_equal(fab_resolve(peer, &in.gid[0], 0, q_old, &d), -ENOENT);
	assert_int_equal(fab_resolve(peer, &io.gid[1], 0, q_new, &d), -ENOENT);
	assert_int_equal(fab_resolve(peer, NULL, in.lid, q_new, &d), 0);
	assert_int_equal(d.port_slot, fab_port_slot(new));
	/* the old incarnation is gone with its last port */
	fab_port_close(old);
	assert_int_equal(fab_resolve_node(peer, &io.gid[0], 0, &node), -ENOENT);
	assert_int_equal(fab_resolve_node(peer, &in.gid[0], 0, &node), 0);
	assert_int_equal(node, in.index);
	fab_port_close(new);
	fab_port_close(peer);
}

/* ---- send / poll ---- */

struct raw_rx {
	int n;
	size_t len[16];
	uint8_t data[16][FAB_PKT_MAX];
};

static void raw_cb(void *arg, const void *pkt, size_t len)
{
	struct raw_rx *rx = arg;

	if (rx->n < 16) {
		rx->len[rx->n] = len;
		memcpy(rx->data[rx->n], pkt, len);
	}
	rx->n++;
}

static void test_send_poll(void **state)
{
	static struct raw_rx rx;
	static uint8_t big[FAB_PKT_MAX + 1];
	struct fab_port *a, *b;
	struct fab_dest d, self;
	size_t i;

	(void)state;
	memset(&rx, 0, sizeof(rx));
	for (i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 31 + 7);
	pair(&a, "a", &b, "b", &d);
	assert_int_equal(fab_poll(b, raw_cb, &rx, 16), 0);
	assert_false(fab_rx_pending(b));
	assert_int_equal(fab_send(a, &d, "hdr", 3, "payload", 7, 0), 0);
	assert_true(fab_rx_pending(b));
	assert_false(fab_rx_pending(a));
	assert_int_equal(fab_send(a, &d, "only", 4, NULL, 0, 0), 0);
	assert_int_equal(fab_send(a, &d, NULL, 0, "pay", 3, 0), 0);
	assert_int_equal(fab_send(a, &d, NULL, 0, NULL, 0, 0), 0);
	assert_int_equal(
		fab_send(a, &d, big, 100, big + 100, FAB_PKT_MAX - 100, 0), 0);
	assert_int_equal(fab_send(a, &d, big, 100, big + 100, FAB_PKT_MAX - 99,
				  0),
			 -EMSGSIZE);
	/* loopback to a QP of the same port */
	assert_int_equal(
		fab_resolve(b, NULL, fab_port_node(b)->lid, d.qpn, &self), 0);
	assert_int_equal(fab_send(b, &self, "self", 4, NULL, 0, 0), 0);

	assert_int_equal(fab_poll(b, raw_cb, &rx, 2), 2);
	assert_int_equal(fab_poll(b, raw_cb, &rx, 16), 4);
	assert_int_equal(fab_poll(b, raw_cb, &rx, 16), 0);
	assert_false(fab_rx_pending(b));
	assert_int_equal(rx.len[0], 10);
	assert_memory_equal(rx.data[0], "hdrpayload", 10);
	assert_int_equal(rx.len[1], 4);
	assert_memory_equal(rx.data[1], "only", 4);
	assert_int_equal(rx.len[2], 3);
	assert_memory_equal(rx.data[2], "pay", 3);
	assert_int_equal(rx.len[3], 0);
	assert_int_equal(rx.len[4], FAB_PKT_MAX);
	assert_memory_equal(rx.data[4], big, FAB_PKT_MAX);
	assert_int_equal(rx.len[5], 4);
	assert_memory_equal(rx.data[5], "self", 4);
	fab_port_close(a);
	fab_port_close(b);
}

static void test_ring_full(void **state)
{
	struct fab_port *a, *b;
	struct fab_stats st;
	struct fab_dest d;
	struct rx rx = { 0 };
	uint32_t i;

	(void)state;
	pair(&a, "a", &b, "b", &d);
	for (i = 0; i < FAB_RING_SLOTS; i++)
		assert_int_equal(tsend(a, &d, 0, i, 8, 0), 0);
	assert_int_equal(tsend(a, &d, 0, i, 8, 0), -EAGAIN);
	assert_int_equal(tsend(a, &d, 0, i, 8, FAB_SEND_UNRELIABLE), 0);
	fab_port_stats(a, &st);
	assert_int_equal(st.tx_ring_full, 2);
	assert_int_equal(st.tx_pkts, FAB_RING_SLOTS);
	assert_int_equal(fab_poll(b, rx_cb, &rx, 1000), FAB_RING_SLOTS);
	assert_int_equal(rx.n, FAB_RING_SLOTS);
	assert_int_equal(rx.next[0], FAB_RING_SLOTS);
	assert_int_equal(rx.bad + rx.order_err, 0);
	/* room again, and wrapping keeps order */
	for (; i < 5 * FAB_RING_SLOTS; i++) {
		assert_int_equal(tsend(a, &d, 0, i, 8, 0), 0);
		if (i % 3 == 0)
			fab_poll(b, rx_cb, &rx, 4);
	}
	drain(b, &rx);
	assert_int_equal(rx.n, 5 * FAB_RING_SLOTS);
	assert_int_equal(rx.bad + rx.order_err, 0);
	fab_port_close(a);
	fab_port_close(b);
}

/* Children send @per packets each to @d; the caller receives them. */
static pid_t spawn_sender(const struct fab_dest *d, uint32_t src, uint32_t per)
{
	pid_t pid = fork();
	struct fab_port *p;
	uint32_t i;
	int ret;

	if (pid)
		return pid;
	if (fab_port_open("child", &p))
		_exit(2);
	for (i = 0; i < per; i++) {
		while ((ret = tsend(p, d, src, i, tlen(i), 0)) == -EAGAIN)
			sched_yield();
		if (ret)
			_exit(3);
	}
	fab_port_close(p);
	_exit(0);
}

static void recv_from(struct fab_port *p, struct rx *rx, uint32_t total)
{
	uint64_t end = fab_now_ns() + 120000 * MS;

	while (rx->n + rx->bad < total && fab_now_ns() < end)
		if (!fab_poll(p, rx_cb, rx, 64))
			fab_wait(p, 100 * MS);
}

static void test_fork_100k(void **state)
{
	struct fab_port *a, *b;
	struct fab_dest d;
	struct rx rx = { 0 };
	int status;
	pid_t pid;

	(void)state;
	pair(&a, "a", &b, "b", &d);
	pid = spawn_sender(&d, 1, 100000);
	assert_true(pid > 0);
	recv_from(b, &rx, 100000);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(status, 0);
	assert_int_equal(rx.n, 100000);
	assert_int_equal(rx.bad, 0);
	assert_int_equal(rx.order_err + rx.dups, 0);
	assert_int_equal(rx.next[1], 100000);
	assert_int_equal(fab_poll(b, rx_cb, &rx, 64), 0);
	fab_port_close(a);
	fab_port_close(b);
}

static void test_multi_producer(void **state)
{
	struct fab_port *a, *b;
	struct fab_dest d;
	struct rx rx = { 0 };
	pid_t pids[3];
	int i, status;

	(void)state;
	pair(&a, "a", &b, "b", &d);
	for (i = 0; i < 3; i++)
		assert_true((pids[i] = spawn_sender(&d, i + 1, 20000)) > 0);
	for (i = 0; i < 10000; i++)
		while (tsend(a, &d, 0, i, 8, 0) == -EAGAIN)
			fab_poll(b, rx_cb, &rx, 64);
	recv_from(b, &rx, 70000);
	for (i = 0; i < 3; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_int_equal(status, 0);
		assert_int_equal(rx.next[i + 1], 20000);
	}
	assert_int_equal(rx.n, 70000);
	assert_int_equal(rx.next[0], 10000);
	assert_int_equal(rx.bad + rx.order_err + rx.dups, 0);
	fab_port_close(a);
	fab_port_close(b);
}

/* ---- fault injection ---- */

static uint32_t drop_run(struct fab_port *a, struct fab_port *b,
			 struct fab_dest *d, uint8_t *got, uint32_t n)
{
	struct raw_rx *rx = calloc(1, sizeof(*rx));
	struct tpkt h;
	uint32_t i, cnt = 0;

	for (i = 0; i < n; i++) {
		assert_int_equal(tsend(a, d, 0, i, 4, 0), 0);
		rx->n = 0;
		fab_poll(b, raw_cb, rx, 4);
		if (rx->n) {
			memcpy(&h, rx->data[0], sizeof(h));
			assert_int_equal(h.seq, i);
			got[i] = 1;
			cnt++;
		}
	}
	free(rx);
	return cnt;
}

static void test_fault_drop(void **state)
{
	static uint8_t got1[20000], got2[20000];
	struct fab_port *a, *b;
	struct fab_stats st;
	struct fab_dest d;
	struct rx rx = { 0 };
	uint32_t n1, n2, i;

	(void)state;
	pair(&a, "a", &b, "b", &d);
	fab_faults_config("drop=0.1,seed=7");
	n1 = drop_run(a, b, &d, got1, 20000);
	/* binomial(20000, 0.9): sd 42 */
	assert_in_range(n1, 18000 - 300, 18000 + 300);
	fab_port_stats(a, &st);
	assert_int_equal(st.tx_fault_drop, 20000 - n1);
	/* the same seed drops the same packets */
	fab_faults_config("seed=7,drop=0.1");
	n2 = drop_run(a, b, &d, got2, 20000);
	assert_int_equal(n1, n2);
	assert_memory_equal(got1, got2, sizeof(got1));
	/* control traffic is spared */
	for (i = 0; i < 1000; i++) {
		assert_int_equal(tsend(a, &d, 1, i, 4, FAB_SEND_NOFAULT), 0);
		fab_poll(b, rx_cb, &rx, 4);
	}
	assert_int_equal(rx.n, 1000);
	fab_faults_config("drop=1");
	assert_int_equal(tsend(a, &d, 1, 0, 4, 0), 0);
	assert_int_equal(fab_poll(b, rx_cb, &rx, 4), 0);
	fab_port_close(a);
	fab_port_close(b);
}

static void test_fault_dup(void **state)
{
	struct fab_port *a, *b;
	struct fab_stats st;
	struct fab_dest d;
	struct rx rx = { 0 };
	uint32_t i;

	(void)state;
	pair(&a, "a", &b, "b", &d);
	fab_faults_config("dup=0.2,seed=3");
	for (i = 0; i < 10000; i++) {
		assert_int_equal(tsend(a, &d, 0, i, tlen(i), 0), 0);
		drain(b, &rx);
	}
	assert_int_equal(rx.bad + rx.order_err, 0);
	assert_int_equal(rx.next[0], 10000);
	assert_int_equal(rx.n, 10000 + rx.dups);
	assert_in_range(rx.dups, 2000 - 300, 2000 + 300);
	fab_port_stats(a, &st);
	assert_int_equal(st.tx_fault_dup, rx.dups);
	fab_port_close(a);
	fab_port_close(b);
}

static void test_fault_corrupt(void **state)
{
	struct fab_port *a, *b;
	struct fab_stats sa, sb;
	struct fab_dest d;
	struct rx rx = { 0 };
	struct fab_slot *s;
	struct tpkt h = { 0, 0, 32, 0 };
	uint8_t buf[32] = { 1, 2, 3 };
	uint32_t i;

	(void)state;
	pair(&a, "a", &b, "b", &d);
	fab_faults_config("corrupt=0.2,seed=5");
	for (i = 0; i < 10000; i++) {
		assert_int_equal(tsend(a, &d, 0, i, tlen(i), 0), 0);
		drain(b, &rx);
	}
	assert_int_equal(rx.bad + rx.order_err + rx.dups, 0);
	assert_in_range(rx.n, 8000 - 300, 8000 + 300);
	fab_port_stats(a, &sa);
	fab_port_stats(b, &sb);
	assert_int_equal(sa.tx_fault_corrupt, 10000 - rx.n);
	assert_int_equal(sb.rx_bad_crc, 10000 - rx.n);
	/* the bytes on the wire really differ, and are still not delivered */
	fab_faults_config("corrupt=1");
	h.sum = fnv(buf, 32);
	s = &b->ring->slots[atomic_load(&b->head) & FAB_RING_MASK];
	assert_int_equal(fab_send(a, &d, &h, sizeof(h), buf, 32, 0), 0);
	assert_int_equal(s->len, sizeof(h) + 32);
	assert_true(memcmp(s->data, &h, sizeof(h)) ||
		    memcmp(s->data + sizeof(h), buf, 32));
	assert_int_equal(fab_send(a, &d, NULL, 0, NULL, 0, 0), 0);
	assert_int_equal(fab_poll(b, rx_cb, &rx, 8), 0);
	fab_port_close(a);
	fab_port_close(b);
}

static void test_fault_delay(void **state)
{
	struct fab_port *a, *b;
	struct fab_dest d;
	struct rx rx = { 0 };
	uint64_t t0, t1;

	(void)state;
	pair(&a, "a", &b, "b", &d);
	fab_faults_config("delay_us=40000");
	t0 = fab_now_ns();
	assert_int_equal(tsend(a, &d, 0, 0, 10, 0), 0);
	/* undelayed, but FIFO behind the delayed one */
	assert_int_equal(tsend(a, &d, 0, 1, 10, FAB_SEND_NOFAULT), 0);
	assert_int_equal(fab_poll(b, rx_cb, &rx, 8), 0);
	assert_false(fab_rx_pending(b));
	fab_wait(b, 5000 * MS);
	t1 = fab_now_ns();
	assert_true(t1 - t0 >= 40 * MS);
	assert_true(t1 - t0 < 2000 * MS);
	assert_true(fab_rx_pending(b));
	while (rx.n < 2 && fab_now_ns() - t0 < 3000 * MS)
		if (!fab_poll(b, rx_cb, &rx, 8))
			fab_wait(b, 100 * MS);
	assert_int_equal(rx.n, 2);
	assert_int_equal(rx.order_err, 0);
	assert_true(rx.last_ns - t0 >= 40 * MS);
	fab_port_close(a);
	fab_port_close(b);
}

static void test_faults_parse(void **state)
{
	struct fab_port *a, *b;
	struct fab_dest d;
	struct rx rx = { 0 };
	char msg[4096] = "";
	int fd, saved, i;
	FILE *f;

	(void)state;
	pair(&a, "a", &b, "b", &d);
	f = tmpfile();
	assert_non_null(f);
	fflush(stderr);
	saved = dup(2);
	dup2(fileno(f), 2);
	fab_faults_config("bogus=1, drop=2 ,dup=x,seed=-1,delay_us=0");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(f);
	fd = (int)fread(msg, 1, sizeof(msg) - 1, f);
	msg[fd > 0 ? fd : 0] = 0;
	fclose(f);
	assert_non_null(strstr(msg, "fakehca: "));
	assert_non_null(strstr(msg, "unknown key 'bogus'"));
	assert_non_null(strstr(msg, "drop=2"));
	assert_non_null(strstr(msg, "dup=x"));
	/* nothing valid was set: no faults */
	for (i = 0; i < 500; i++) {
		assert_int_equal(tsend(a, &d, 0, i, 4, 0), 0);
		drain(b, &rx);
	}
	assert_int_equal(rx.n, 500);
	fab_port_close(a);
	fab_port_close(b);
}

/* ---- sleep / wake ---- */

static void test_wait_timeout(void **state)
{
	struct fab_port *a;
	uint64_t t0, dt;

	(void)state;
	assert_int_equal(fab_port_open("a", &a), 0);
	t0 = fab_now_ns();
	fab_wait(a, 50 * MS);
	dt = fab_now_ns() - t0;
	assert_true(dt >= 50 * MS);
	assert_true(dt < 1000 * MS);
	fab_port_close(a);
}

/* A child sends one packet @delay_ms after the parent writes to @go. */
static pid_t late_sender(const struct fab_dest *d, int go_rd, int delay_ms,
			 unsigned int flags)
{
	pid_t pid = fork();
	struct fab_port *p;
	char c;

	if (pid)
		return pid;
	if (fab_port_open("child", &p) || read(go_rd, &c, 1) != 1)
		_exit(2);
	usleep(delay_ms * 1000);
	if (tsend(p, d, 0, 0, 8, flags))
		_exit(3);
	fab_port_close(p);
	_exit(0);
}

static uint64_t wait_for_child(struct fab_port *b, const struct fab_dest *d,
			       unsigned int flags, int64_t timeout)
{
	struct rx rx = { 0 };
	int go[2], status;
	uint64_t t0, dt;
	pid_t pid;

	assert_int_equal(pipe(go), 0);
	pid = late_sender(d, go[0], 100, flags);
	assert_true(pid > 0);
	t0 = fab_now_ns();
	assert_int_equal(write(go[1], "g", 1), 1);
	fab_wait(b, timeout);
	dt = fab_now_ns() - t0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(status, 0);
	assert_int_equal(fab_poll(b, rx_cb, &rx, 8), 1);
	close(go[0]);
	close(go[1]);
	return dt;
}

static void test_wait_wakeup(void **state)
{
	struct fab_port *a, *b;
	struct fab_dest d;
	uint64_t dt;

	(void)state;
	pair(&a, "a", &b, "b", &d);
	dt = wait_for_child(b, &d, 0, 20000 * MS);
	assert_true(dt >= 90 * MS);
	assert_true(dt < 5000 * MS);
	/* the application polls: only FAB_SEND_WAKE wakes the waiter */
	fab_set_wake_mode(b, FAB_WAKE_APP_POLLING);
	dt = wait_for_child(b, &d, 0, 1500 * MS);
	assert_true(dt >= 1500 * MS);
	dt = wait_for_child(b, &d, FAB_SEND_WAKE, 20000 * MS);
	assert_true(dt >= 90 * MS);
	assert_true(dt < 5000 * MS);
	fab_port_close(a);
	fab_port_close(b);
}

static void *kicker(void *arg)
{
	usleep(100000);
	fab_kick(arg);
	return NULL;
}

static void test_kick(void **state)
{
	struct fab_port *a;
	pthread_t t;
	uint64_t t0, dt;

	(void)state;
	assert_int_equal(fab_port_open("a", &a), 0);
	/* a kick before the wait is not lost */
	fab_kick(a);
	t0 = fab_now_ns();
	fab_wait(a, 10000 * MS);
	assert_true(fab_now_ns() - t0 < 1000 * MS);
	/* and it is consumed */
	t0 = fab_now_ns();
	fab_wait(a, 30 * MS);
	assert_true(fab_now_ns() - t0 >= 30 * MS);
	assert_int_equal(pthread_create(&t, NULL, kicker, a), 0);
	t0 = fab_now_ns();
	fab_wait(a, 20000 * MS);
	dt = fab_now_ns() - t0;
	pthread_join(t, NULL);
	assert_true(dt >= 90 * MS);
	assert_true(dt < 5000 * MS);
	fab_port_close(a);
}

/* ---- nodes, dead processes ---- */

static void test_node_down(void **state)
{
	struct fab_port *a, *b;
	struct fab_dest d, back;
	struct fab_stats st;
	struct rx rx = { 0 };
	uint32_t qpn;

	(void)state;
	pair(&a, "a", &b, "b", &d);
	qpn = fab_alloc_qpn(a);
	assert_int_equal(fab_qp_publish(a, qpn), 0);
	assert_int_equal(
		fab_resolve(b, NULL, fab_port_node(a)->lid, qpn, &back), 0);
	assert_int_equal(tsend(a, &d, 0, 0, 8, 0), 0);
	assert_int_equal(tsend(a, &d, 0, 1, 8, 0), 0);
	assert_int_equal(fab_node_set_down("b", true), 0);
	assert_int_equal(fab_node_set_down("nosuch", true), -ENOENT);
	assert_int_equal(tsend(a, &d, 0, 2, 8, FAB_SEND_NOFAULT),
			 -EHOSTUNREACH);
	assert_int_equal(tsend(b, &back, 0, 0, 8, 0), -EHOSTUNREACH);
	/* what was on the wire is lost too */
	assert_int_equal(fab_poll(b, rx_cb, &rx, 8), 0);
	fab_port_stats(b, &st);
	assert_int_equal(st.rx_node_down, 2);
	assert_int_equal(fab_node_set_down("b", false), 0);
	assert_int_equal(tsend(a, &d, 0, 3, 8, 0), 0);
	assert_int_equal(tsend(b, &back, 0, 0, 8, 0), 0);
	assert_int_equal(fab_poll(b, rx_cb, &rx, 8), 1);
	assert_int_equal(fab_poll(a, rx_cb, &rx, 8), 1);
	fab_port_close(a);
	fab_port_close(b);
}

static void test_reclaim_dead(void **state)
{
	struct fab_port *a, *c;
	uint32_t info[4], qpn;
	struct fab_dest d;
	char ring[64];
	int fds[2], status, i;
	pid_t pid;

	(void)state;
	assert_int_equal(fab_port_open("a", &a), 0);
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		struct fab_port *p;

		if (fab_port_open("c", &p))
			_exit(2);
		info[0] = fab_port_slot(p);
		info[1] = fab_port_gen(p);
		info[2] = fab_alloc_qpn(p);
		info[3] = fab_port_node(p)->lid;
		if (fab_qp_publish(p, info[2]) ||
		    write(fds[1], info, sizeof(info)) != sizeof(info))
			_exit(3);
		_exit(0); /* no close */
	}
	assert_int_equal(read(fds[0], info, sizeof(info)), sizeof(info));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(status, 0);
	qpn = info[2];
	snprintf(ring, sizeof(ring), "port-%u-%u", info[0], info[1]);
	assert_true(exists(ring));
	assert_int_equal(fab_resolve(a, NULL, (uint16_t)info[3], qpn, &d), 0);
	/* not reclaimed yet: its ring fills up, then it is unreachable */
	for (i = 0; i < FAB_RING_SLOTS; i++)
		assert_int_equal(tsend(a, &d, 0, i, 8, 0), 0);
	assert_int_equal(tsend(a, &d, 0, i, 8, 0), -EHOSTUNREACH);
	assert_int_equal(tsend(a, &d, 0, i, 8, FAB_SEND_UNRELIABLE), 0);
	/* the next open notices the owner is gone */
	assert_int_equal(fab_port_open("c", &c), 0);
	assert_false(exists(ring));
	assert_int_equal(fab_send(a, &d, "x", 1, NULL, 0, 0), -EHOSTUNREACH);
	assert_int_equal(fab_resolve(a, NULL, fab_port_node(c)->lid, qpn, &d),
			 -ENOENT);
	assert_int_equal(fab_port_slot(c), info[0]);
	assert_int_equal(fab_port_gen(c), info[1] + 1);
	close(fds[0]);
	close(fds[1]);
	fab_port_close(c);
	fab_port_close(a);
	assert_int_equal(count_rings(), 0);
}

/* Claim the next slot of @ring as the owner of port @tag would, without
 * publishing it. */
static uint32_t fake_claim(struct fab_ring *ring, uint32_t tag)
{
	uint32_t pos = atomic_load(&ring->tail);

	atomic_store(&ring->slots[pos & FAB_RING_MASK].state,
		     pos | (uint64_t)tag << 32);
	atomic_store(&ring->tail, pos + 1);
	return pos;
}

/*
 * The tag of a port that a child opened and left open when it exited (in a
 * PID namespace of its own if @pidns, as pid 1 there).  The child's open
 * runs the reclaim of dead ports' slots, with the caller's ports open.
 */
static uint32_t dead_port_tag(bool pidns)
{
	uint32_t tag = 0;
	int fds[2], status;
	pid_t pid, inner;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		struct fab_port *p;

		if (pidns) {
			if (unshare(CLONE_NEWPID))
				_exit(errno == EPERM ? 4 : 5);
			inner = fork();
			if (inner < 0)
				_exit(6);
			if (inner) {
				if (waitpid(inner, &status, 0) != inner ||
				    !WIFEXITED(status))
					_exit(6);
				_exit(WEXITSTATUS(status));
			}
			if (getpid() != 1)
				_exit(7);
		}
		if (fab_port_open("c", &p))
			_exit(2);
		tag = fab_port_tag(p);
		_exit(write(fds[1], &tag, sizeof(tag)) == sizeof(tag) ? 0 : 3);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 4)
		skip(); /* no privilege for CLONE_NEWPID */
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(read(fds[0], &tag, sizeof(tag)), sizeof(tag));
	close(fds[0]);
	close(fds[1]);
	return tag;
}

/*
 * Liveness across PID namespaces (two ibsnap run jobs): pid numbers mean
 * nothing there.  A process that is pid 1 of its own namespace opens a port
 * while ours are open (kill(our pid, 0) fails there: they must not be taken
 * for dead), leaves it open and dies (kill(1, 0) succeeds here: it must be
 * taken for dead); and a packet it left half-written is skipped.
 */
static void test_pidns_liveness(void **state)
{
	struct fab_port *a, *b, *c;
	struct fab_registry *r;
	struct fab_stats st;
	struct fab_dest d;
	struct rx rx = { 0 };
	uint64_t t0;
	uint32_t tag;
	char ring[64];

	(void)state;
	pair(&a, "a", &b, "b", &d);
	r = a->reg->map;
	tag = dead_port_tag(true);
	assert_int_equal(atomic_load(&r->ports[a->slot].state),
			 a->gen << 1 | 1);
	assert_int_equal(atomic_load(&r->ports[b->slot].state),
			 b->gen << 1 | 1);
	snprintf(ring, sizeof(ring), "port-%u-%u", b->slot, b->gen);
	assert_true(exists(ring));
	assert_true(fab_port_alive(a->reg, b->slot, b->gen));
	/* the dead port: not alive, its half-written packet skipped */
	assert_int_equal(atomic_load(&r->ports[tag & 0xff].state),
			 (tag >> 8) << 1 | 1);
	assert_false(fab_port_alive(a->reg, tag & 0xff, tag >> 8));
	fake_claim(b->ring, tag);
	assert_int_equal(tsend(a, &d, 0, 0, 8, 0), 0);
	t0 = fab_now_ns();
	while (!rx.n && fab_now_ns() - t0 < 10000 * MS)
		if (!fab_poll(b, rx_cb, &rx, 8))
			fab_wait(b, 1000 * MS);
	assert_int_equal(rx.n, 1);
	fab_port_stats(b, &st);
	assert_int_equal(st.rx_dead_skip, 1);
	/* and its slot reclaimed at the next open */
	snprintf(ring, sizeof(ring), "port-%u-%u", tag & 0xff, tag >> 8);
	assert_true(exists(ring));
	assert_int_equal(fab_port_open("c", &c), 0);
	assert_false(exists(ring));
	if (fab_port_slot(c) == (tag & 0xff))
		assert_int_equal(fab_port_gen(c), (tag >> 8) + 1);
	else
		assert_int_equal(atomic_load(&r->ports[tag & 0xff].state) & 1,
				 0);
	fab_port_close(c);
	fab_port_close(a);
	fab_port_close(b);
	assert_int_equal(count_rings(), 0);
}

static void test_dead_producer(void **state)
{
	struct fab_port *a, *b;
	struct fab_stats st;
	struct fab_dest d;
	struct rx rx = { 0 };
	struct fab_slot *s;
	uint64_t t0;
	uint32_t pos;

	(void)state;
	pair(&a, "a", &b, "b", &d);
	/* a live producer that stalls is waited for */
	pos = fake_claim(b->ring, fab_port_tag(a));
	assert_int_equal(tsend(a, &d, 0, 1, 8, 0), 0);
	assert_true(fab_rx_pending(b)); /* being written */
	t0 = fab_now_ns();
	while (fab_now_ns() - t0 < 300 * MS)
		if (!fab_poll(b, rx_cb, &rx, 8))
			fab_wait(b, 20 * MS);
	assert_int_equal(rx.n, 0);
	s = &b->ring->slots[pos & FAB_RING_MASK];
	s->len = 0;
	s->flags = 0;
	atomic_store(&s->due_ns, 0);
	atomic_store(&s->state, pos + 1);
	/* both now: the empty one (not a test packet) and the real one */
	assert_int_equal(fab_poll(b, rx_cb, &rx, 8), 2);
	assert_int_equal(rx.n, 1);
	assert_int_equal(rx.bad, 1);

	/* a dead one is skipped after a while */
	fake_claim(b->ring, dead_port_tag(false));
	assert_int_equal(tsend(a, &d, 0, 2, 8, 0), 0);
	t0 = fab_now_ns();
	while (rx.n < 2 && fab_now_ns() - t0 < 3000 * MS)
		if (!fab_poll(b, rx_cb, &rx, 8))
			fab_wait(b, 1000 * MS);
	assert_int_equal(rx.n, 2);
	assert_true(fab_now_ns() - t0 >= 100 * MS);
	fab_port_stats(b, &st);
	assert_int_equal(st.rx_dead_skip, 1);
	fab_port_close(a);
	fab_port_close(b);
}

static void test_registry_rebuild(void **state)
{
	char path[128];
	struct fab_port *a;
	struct stat st;
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/fabric", fab_dir);
	fd = open(path, O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "garbage", 7), 7);
	close(fd);
	assert_int_equal(fab_port_open("a", &a), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, sizeof(struct fab_registry));
	assert_int_equal(a->reg->map->magic, FAB_MAGIC);
	fab_port_close(a);
	/* right size, wrong version */
	a = NULL;
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "\x7f", 1,
				offsetof(struct fab_registry, version)),
			 1);
	close(fd);
	assert_int_equal(fab_port_open("a", &a), 0);
	assert_int_equal(a->reg->map->version, FAB_LAYOUT_VERSION);
	fab_port_close(a);
}

/* Child mode (exec'd): open a port of its own, send one packet to argv. */
static int child_send_main(char **argv)
{
	struct fab_dest d = { 0 };
	struct fab_port *p;
	int ret;

	d.port_slot = (uint32_t)strtoul(argv[0], NULL, 0);
	d.port_gen = (uint32_t)strtoul(argv[1], NULL, 0);
	d.node_index = (uint32_t)strtoul(argv[2], NULL, 0);
	d.qpn = (uint32_t)strtoul(argv[3], NULL, 0);
	if (fab_port_open("exec", &p))
		return 2;
	ret = tsend(p, &d, 5, 0, 100, FAB_SEND_NOFAULT);
	fab_port_close(p);
	return ret ? 3 : 0;
}

/* A fresh process (no inherited mapping) joins while we hold the fabric. */
static void test_exec_peer(void **state)
{
	struct fab_port *a, *b;
	struct fab_dest d;
	struct rx rx = { 0 };
	char args[4][16];
	char *argv[7];
	uint64_t t0;
	int i, status = -1;
	pid_t pid;

	(void)state;
	pair(&a, "a", &b, "b", &d);
	snprintf(args[0], 16, "%u", d.port_slot);
	snprintf(args[1], 16, "%u", d.port_gen);
	snprintf(args[2], 16, "%u", d.node_index);
	snprintf(args[3], 16, "%u", d.qpn);
	argv[0] = "test_fabric";
	argv[1] = "--child-send";
	for (i = 0; i < 4; i++)
		argv[2 + i] = args[i];
	argv[6] = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		execv(self_exe, argv);
		_exit(127);
	}
	t0 = fab_now_ns();
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (fab_now_ns() - t0 > 20000 * MS) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail_msg("exec'd peer hangs");
		}
		usleep(10000);
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(fab_poll(b, rx_cb, &rx, 8), 1);
	assert_int_equal(rx.next[5], 1);
	assert_int_equal(rx.bad, 0);
	fab_port_close(a);
	fab_port_close(b);
	assert_int_equal(count_rings(), 0);
}

/* ---- cost ---- */

struct sink {
	uint64_t n;
};

static void sink_cb(void *arg, const void *pkt, size_t len)
{
	(void)pkt;
	((struct sink *)arg)->n += len;
}

static double bench(struct fab_port *a, struct fab_port *b,
		    const struct fab_dest *d, size_t len, int iters)
{
	static uint8_t buf[FAB_PKT_MAX];
	struct sink sink = { 0 };
	uint64_t t0;
	int i;

	t0 = fab_now_ns();
	for (i = 0; i < iters; i++) {
		if (fab_send(a, d, buf, len, NULL, 0, 0) ||
		    fab_poll(b, sink_cb, &sink, 4) != 1)
			fail_msg("send/poll failed at %d", i);
	}
	assert_int_equal(sink.n, (uint64_t)len * iters);
	return (double)(fab_now_ns() - t0) / iters;
}

static void test_perf(void **state)
{
	struct fab_port *a, *b;
	struct fab_dest d;
	bool slow = SANITIZED || RUNNING_ON_VALGRIND;
	int iters = RUNNING_ON_VALGRIND ? 20000 : 1000000;
	double ns8, ns8p, ns16k;

	(void)state;
	pair(&a, "a", &b, "b", &d);
	bench(a, b, &d, 8, iters / 10);
	ns8 = bench(a, b, &d, 8, iters);
	fab_set_wake_mode(b, FAB_WAKE_APP_POLLING);
	ns8p = bench(a, b, &d, 8, iters);
	ns16k = bench(a, b, &d, 16384, iters / 10);
	print_message("fab_send+fab_poll: 8 B %.0f ns (wake mode needed), "
		      "%.0f ns (app polling); 16 KiB %.0f ns%s\n",
		      ns8, ns8p, ns16k, slow ? " [sanitizer/valgrind]" : "");
	if (!slow) {
		assert_true(ns8 < 1000);
		assert_true(ns8p < 1000);
	}
	fab_port_close(a);
	fab_port_close(b);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		T(test_identity),
		T(test_alloc_unique),
		T(test_publish_resolve),
		T(test_reincarnate),
		T(test_send_poll),
		T(test_ring_full),
		T(test_fork_100k),
		T(test_multi_producer),
		T(test_fault_drop),
		T(test_fault_dup),
		T(test_fault_corrupt),
		T(test_fault_delay),
		T(test_faults_parse),
		T(test_wait_timeout),
		T(test_wait_wakeup),
		T(test_kick),
		T(test_node_down),
		T(test_reclaim_dead),
		T(test_dead_producer),
		T(test_pidns_liveness),
		T(test_registry_rebuild),
		T(test_exec_peer),
		T(test_perf),
	};

	if (argc == 6 && !strcmp(argv[1], "--child-send"))
		return child_send_main(argv + 2);
	/* not "/proc/self/exe" at exec time: under valgrind that is valgrind */
	if (readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1) < 0)
		return 1;

	return cmocka_run_group_tests(tests, NULL, NULL);
}
