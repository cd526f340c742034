// SPDX-License-Identifier: MIT
/*
 * The rdma_cm wire between shims: Unix datagram sockets in the abstract
 * namespace (reliable and ordered on one host, nothing left on disk),
 * named "ibsnap-cm/<fabric>/...", where <fabric> is a hash of
 * IBSNAP_FABRIC on the fake backend ("real" on the real one), so two
 * fabrics never meet.  A port socket is named by (port space, IP or "any",
 * port); the process's endpoint socket by pid and a random word.  One
 * timerfd runs the handshake's timeouts.  All of them are read by the
 * shim's event thread.
 *
 * At a checkpoint (the "cm" kind, drain/driver.c) every socket and the
 * timer are closed after what they hold is processed, and bound again at
 * rebuild under the same names: peers keep addressing us as before, also
 * after a restore on another boot.  Deadlines do not run while released.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "cm.h"
#include "../drain/ckpt.h"

static int ep_fd = -1, timer_fd = -1;
static struct isn_ev_watch *ep_watch, *timer_watch;
static struct sockaddr_un ep_name;
static socklen_t ep_len;
static uint64_t fab_tag;
static uint64_t released_at;

uint64_t isn_cm_timeout_ms(void)
{
	const char *s = getenv("IBSNAP_CM_TIMEOUT_MS");
	long v = s ? strtol(s, NULL, 10) : 0;

	return v > 0 ? (uint64_t)v : 20000;
}

static uint64_t fabric_tag(void)
{
	const char *f = getenv("IBSNAP_FABRIC");
	uint64_t h = 0xcbf29ce484222325ull;

	if (strcmp(isn_g.ops.name, "fake"))
		f = "real";
	else if (!f || !*f)
		f = "default";
	for (; *f; f++)
		h = (h ^ (uint8_t)*f) * 0x100000001b3ull;
	return h;
}

static socklen_t abstract_name(struct sockaddr_un *sun, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static socklen_t abstract_name(struct sockaddr_un *sun, const char *fmt, ...)
{
	va_list ap;
	int n;

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	va_start(ap, fmt);
	n = vsnprintf(sun->sun_path + 1, sizeof(sun->sun_path) - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(sun->sun_path) - 1)
		n = sizeof(sun->sun_path) - 2;
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

static socklen_t port_name(struct sockaddr_un *sun, enum rdma_port_space ps,
			   const struct sockaddr *addr, bool any)
{
	char ip[INET6_ADDRSTRLEN] = "any";
	const void *a =
		addr->sa_family == AF_INET ?
			(const void *)&((const struct sockaddr_in *)addr)
				->sin_addr :
			(const void *)&((const struct sockaddr_in6 *)addr)
				->sin6_addr;

	if (!any && !isn_cm_addr_any(addr))
		inet_ntop(addr->sa_family, a, ip, sizeof(ip));
	return abstract_name(sun, "ibsnap-cm/%016llx/%x/%s/%u",
			     (unsigned long long)fab_tag, (unsigned int)ps, ip,
			     isn_cm_port(addr));
}

/*
 * A datagram socket bound to @name.  @again: the name was ours before a
 * release; the event thread may still hold the closed socket in its poll
 * for a moment (the name is free when it lets go), so wait for it.
 */
static int dgram_socket(const struct sockaddr_un *name, socklen_t len,
			bool again)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int i, err = 0;

	if (fd < 0)
		return -errno;
	for (i = 0; i < 2000; i++) {
		if (!bind(fd, (const struct sockaddr *)name, len))
			return fd;
		err = errno;
		if (err != EADDRINUSE || !again)
			break;
		usleep(1000);
	}
	close(fd);
	return -err;
}

/* Read every datagram @fd holds (cm_lock taken here). */
static void wire_read(int fd, struct isn_cm_id *port_owner)
{
	struct isn_cm_msg m;
	struct sockaddr_un from;
	socklen_t fromlen;
	ssize_t n;

	for (;;) {
		fromlen = sizeof(from);
		n = recvfrom(fd, &m, sizeof(m), 0, (struct sockaddr *)&from,
			     &fromlen);
		if (n < 0)
			break;
		pthread_mutex_lock(&isn_cm_lock);
		isn_cm_recv(&m, (size_t)n, &from, fromlen, port_owner);
		pthread_mutex_unlock(&isn_cm_lock);
	}
}

static void ep_ready(void *arg)
{
	(void)arg;
	wire_read(ep_fd, NULL);
}

static void port_ready(void *arg)
{
	struct isn_cm_id *cid = arg;

	wire_read(cid->port_fd, cid);
}

static void timer_arm(void)
{
	struct itimerspec its = { 0 };
	struct isn_list *p;
	uint64_t next = 0, now = isn_now_ns();

	if (timer_fd < 0)
		return;
	for (p = isn_cm_ids.next; p != &isn_cm_ids; p = p->next) {
		struct isn_cm_id *cid =
			isn_container_of(p, struct isn_cm_id, entry);

		if (cid->deadline && (!next || cid->deadline < next))
			next = cid->deadline;
	}
	if (next) {
		next = next > now ? next - now : 1;
		its.it_value.tv_sec = (time_t)(next / 1000000000ull);
		its.it_value.tv_nsec = (long)(next % 1000000000ull);
	}
	timerfd_settime(timer_fd, 0, &its, NULL);
}

static void timer_ready(void *arg)
{
	struct isn_list *p, *n;
	uint64_t ticks, now;

	(void)arg;
	if (read(timer_fd, &ticks, sizeof(ticks)) < 0 && errno == EAGAIN)
		return;
	pthread_mutex_lock(&isn_cm_lock);
	now = isn_now_ns();
	for (p = isn_cm_ids.next; p != &isn_cm_ids; p = n) {
		struct isn_cm_id *cid =
			isn_container_of(p, struct isn_cm_id, entry);

		n = p->next;
		if (cid->deadline && cid->deadline <= now) {
			cid->deadline = 0;
			isn_cm_expired(cid);
		}
	}
	timer_arm();
	pthread_mutex_unlock(&isn_cm_lock);
}

void isn_cm_deadline(struct isn_cm_id *cid, uint64_t ms)
{
	cid->deadline = ms ? isn_now_ns() + ms * 1000000ull : 0;
	timer_arm();
}

static int wire_open(void)
{
	int fd, ret;

	fd = dgram_socket(&ep_name, ep_len, released_at != 0);
	if (fd < 0)
		return -fd;
	timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (timer_fd < 0) {
		ret = errno;
		close(fd);
		return ret;
	}
	ep_fd = fd;
	ret = isn_ev_watch(ep_fd, ep_ready, NULL, &ep_watch);
	if (!ret)
		ret = isn_ev_watch(timer_fd, timer_ready, NULL, &timer_watch);
	return ret;
}

int isn_cm_wire_init(void)
{
	static pthread_mutex_t once = PTHREAD_MUTEX_INITIALIZER;
	uint32_t r = 0;
	int ret = 0;

	pthread_mutex_lock(&once);
	if (ep_fd < 0) {
		fab_tag = fabric_tag();
		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			r = (uint32_t)isn_now_ns();
		ep_len = abstract_name(&ep_name, "ibsnap-cm/%016llx/ep/%d/%08x",
				       (unsigned long long)fab_tag,
				       (int)getpid(), r);
		ret = wire_open();
	}
	pthread_mutex_unlock(&once);
	return ret;
}

int isn_cm_port_open(struct isn_cm_id *cid)
{
	struct sockaddr_un sun;
	socklen_t len;
	int fd, ret;

	if (cid->port_fd >= 0)
		return 0;
	ret = isn_cm_wire_init();
	if (ret)
		return ret;
	len = port_name(&sun, cid->id.ps, &cid->id.route.addr.src_addr, false);
	fd = dgram_socket(&sun, len, cid->port_named);
	if (fd < 0)
		return fd == -EADDRINUSE ? EADDRINUSE : -fd;
	cid->port_fd = fd;
	cid->port_named = true;
	ret = isn_ev_watch(fd, port_ready, cid, &cid->port_watch);
	if (ret) {
		close(fd);
		cid->port_fd = -1;
	}
	return ret;
}

void isn_cm_port_close(struct isn_cm_id *cid)
{
	isn_ev_unwatch(cid->port_watch);
	cid->port_watch = NULL;
	if (cid->port_fd >= 0)
		close(cid->port_fd);
	cid->port_fd = -1;
}

void isn_cm_msg_init(struct isn_cm_msg *m, struct isn_cm_id *cid,
		     enum isn_cm_msg_type type)
{
	memset(m, 0, sizeof(*m));
	m->magic = ISN_CM_MAGIC;
	m->type = (uint16_t)type;
	m->src_token = cid->token;
	m->dst_token = cid->peer_token;
	memcpy(&m->src_addr, &cid->id.route.addr.src_storage,
	       sizeof(m->src_addr));
	memcpy(&m->dst_addr, &cid->id.route.addr.dst_storage,
	       sizeof(m->dst_addr));
	m->info = cid->local;
}

static int wire_send(const struct isn_cm_msg *m, const struct sockaddr_un *to,
		     socklen_t tolen)
{
	ssize_t n;

	if (ep_fd < 0)
		return ENOTCONN;
	/* a full receiver: wait (the datagram is not lost) */
	for (int i = 0; i < 1000; i++) {
		n = sendto(ep_fd, m, sizeof(*m), 0, (const struct sockaddr *)to,
			   tolen);
		if (n == (ssize_t)sizeof(*m))
			return 0;
		if (n >= 0 || errno != EAGAIN)
			break;
		usleep(1000);
	}
	return n < 0 ? errno : EIO;
}

int isn_cm_send_listener(struct isn_cm_id *cid, struct isn_cm_msg *m,
			 const struct sockaddr *dst)
{
	struct sockaddr_un sun;
	socklen_t len;
	int ret;

	len = port_name(&sun, cid->id.ps, dst, false);
	ret = wire_send(m, &sun, len);
	if (ret == ECONNREFUSED || ret == ENOENT) {
		len = port_name(&sun, cid->id.ps, dst, true);
		ret = wire_send(m, &sun, len);
	}
	return ret;
}

int isn_cm_send_peer(struct isn_cm_id *cid, struct isn_cm_msg *m)
{
	if (!cid->peer_len)
		return ENOTCONN;
	return wire_send(m, &cid->peer, cid->peer_len);
}

/* ---- checkpoint: the "cm" resource kind ---- */

static int cm_release(void)
{
	struct isn_list *p;

	if (ep_fd < 0)
		return 0;
	/* what the sockets hold is processed first: nothing is lost */
	isn_ev_unwatch(ep_watch);
	isn_ev_unwatch(timer_watch);
	ep_watch = timer_watch = NULL;
	wire_read(ep_fd, NULL);
	for (p = isn_cm_ids.next; p != &isn_cm_ids; p = p->next) {
		struct isn_cm_id *cid =
			isn_container_of(p, struct isn_cm_id, entry);

		if (cid->port_fd < 0)
			continue;
		isn_ev_unwatch(cid->port_watch);
		cid->port_watch = NULL;
		wire_read(cid->port_fd, cid);
		close(cid->port_fd);
		cid->port_fd = -1;
	}
	close(ep_fd);
	close(timer_fd);
	ep_fd = timer_fd = -1;
	released_at = isn_now_ns();
	return 0;
}

static int cm_rebuild(void)
{
	struct isn_list *p;
	uint64_t away;
	int ret;

	if (ep_fd >= 0 || !ep_len)
		return 0;
	ret = wire_open();
	if (ret)
		return -ret;
	away = isn_now_ns() - released_at;
	for (p = isn_cm_ids.next; p != &isn_cm_ids; p = p->next) {
		struct isn_cm_id *cid =
			isn_container_of(p, struct isn_cm_id, entry);

		if (cid->deadline)
			cid->deadline += away;
		if (!cid->port_named)
			continue;
		cid->port_fd = -1;
		ret = isn_cm_port_open(cid);
		if (ret) {
			isn_log("rdma_cm: port %u again: %s",
				isn_cm_port(&cid->id.route.addr.src_addr),
				strerror(ret));
			return -ret;
		}
	}
	pthread_mutex_lock(&isn_cm_lock);
	timer_arm();
	pthread_mutex_unlock(&isn_cm_lock);
	return 0;
}

const struct isn_ck_kind isn_ck_cm = {
	.name = "rdma_cm",
	.release = cm_release,
	.rebuild = cm_rebuild,
};
