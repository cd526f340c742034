/* SPDX-License-Identifier: MIT */
/*
 * ibsnapd connections.  Reading frames messages and hands them to
 * isn_d_dispatch(); writing queues reference-counted buffers, so the one
 * ALL reply of an exchange is built once and queued on every connection.
 * A connection is freed only from its own read callback (or at exit), so
 * no caller ever holds a pointer to a freed connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon.h"
#include "wfault.h"

#define conn_of(w, member) \
	((struct isn_conn *)((char *)(w)-offsetof(struct isn_conn, member)))

struct isn_sbuf *isn_sbuf_from_wbuf(struct isn_wbuf *w)
{
	struct isn_sbuf *b;

	if (w->err)
		return NULL;
	b = malloc(sizeof(*b));
	if (!b)
		return NULL;
	b->refs = 1;
	b->len = w->len;
	b->data = w->p;
	memset(w, 0, sizeof(*w));
	return b;
}

void isn_sbuf_put(struct isn_sbuf *b)
{
	if (b && --b->refs == 0) {
		free(b->data);
		free(b);
	}
}

static void conn_destroy(struct isn_conn *c)
{
	struct isn_d *d = c->d;
	struct isn_oq *q, *next;

	if (c->proc || c->agent || c->ctl_job)
		isn_d_conn_lost(c);
	ev_io_stop(d->loop, &c->rio);
	ev_io_stop(d->loop, &c->wio);
	close(c->fd);
	d->oq_total -= c->oq_bytes;
	for (q = c->oq_head; q; q = next) {
		next = q->next;
		isn_sbuf_put(q->buf);
		free(q);
	}
	isn_rx_free(&c->rx);
	if (c->prev)
		c->prev->next = c->next;
	else
		d->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
	d->nconns--;
	if (d->gets_deferred && d->oq_total < ISN_OQ_BUDGET)
		isn_ck_gets_resume(d);
	isn_d_idle_check(d);
}

/* Mark for closing; the read callback, fed now, frees it. */
static void conn_mark_dead(struct isn_conn *c)
{
	if (c->dead)
		return;
	c->dead = true;
	ev_io_start(c->d->loop, &c->rio);
	ev_feed_event(c->d->loop, &c->rio, EV_READ);
}

void isn_conn_kill(struct isn_conn *c)
{
	c->proc = NULL;
	c->agent = NULL;
	c->ctl_job = NULL;
	conn_mark_dead(c);
}

static void conn_flush(struct isn_conn *c)
{
	struct isn_oq *q;
	ssize_t n;

	while ((q = c->oq_head)) {
		n = send(c->fd, q->buf->data + q->off, q->buf->len - q->off,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ev_io_start(c->d->loop, &c->wio);
			return;
		}
		if (n < 0) {
			isn_d_dbg(c->d, "%s: send: %m", c->peer);
			conn_mark_dead(c);
			return;
		}
		q->off += n;
		c->oq_bytes -= n;
		c->d->oq_total -= n;
		if (q->off < q->buf->len)
			continue;
		c->oq_head = q->next;
		if (!c->oq_head)
			c->oq_tail = NULL;
		isn_sbuf_put(q->buf);
		free(q);
	}
	ev_io_stop(c->d->loop, &c->wio);
	if (c->d->gets_deferred && c->d->oq_total < ISN_OQ_BUDGET)
		isn_ck_gets_resume(c->d);
}

/* Queue @b on @c (one more reference); flush if the queue was empty. */
static void oq_add(struct isn_conn *c, struct isn_sbuf *b)
{
	struct isn_oq *q;

	if (c->dead)
		return;
	q = calloc(1, sizeof(*q));
	if (!q) {
		conn_mark_dead(c);
		return;
	}
	b->refs++;
	q->buf = b;
	if (c->oq_tail)
		c->oq_tail->next = q;
	else
		c->oq_head = q;
	c->oq_tail = q;
	c->oq_bytes += b->len;
	c->d->oq_total += b->len;
	if (c->oq_head == q)
		conn_flush(c);
}

void isn_conn_send_sbuf(struct isn_conn *c, struct isn_sbuf *b)
{
	enum isn_wf_act act;

	if (!c || c->dead || !b)
		return;
	act = isn_wfault(b->data, b->len);
	if (act == ISN_WF_DROP)
		return;
	if (act == ISN_WF_DUP)
		oq_add(c, b);
	oq_add(c, b);
}

void isn_conn_send(struct isn_conn *c, uint16_t type, const void *msg)
{
	struct isn_wbuf w = { 0 };
	struct isn_sbuf *b;

	if (!c || c->dead)
		return;
	if (isn_msg_encode(&w, type, msg)) {
		isn_d_log(c->d, "%s: cannot encode %s", c->peer,
			  isn_msg_name(type));
		isn_wbuf_free(&w);
		return;
	}
	b = isn_sbuf_from_wbuf(&w);
	isn_conn_send_sbuf(c, b);
	isn_sbuf_put(b);
}

/* Answer with ERROR, then close once it is sent; returns @code. */
int isn_conn_error(struct isn_conn *c, int code, const char *fmt, ...)
{
	struct isn_m_error m = { .code = code };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m.text, sizeof(m.text), fmt, ap);
	va_end(ap);
	return isn_conn_error_msg(c, &m);
}

int isn_conn_error_msg(struct isn_conn *c, const struct isn_m_error *m)
{
	isn_d_log(c->d, "%s: %s", c->peer, m->text);
	isn_conn_send(c, ISN_MSG_ERROR, m);
	/* let the ERROR out before the close; no further input is read */
	shutdown(c->fd, SHUT_RD);
	if (c->proc || c->agent || c->ctl_job)
		isn_d_conn_lost(c);
	c->proc = NULL;
	c->agent = NULL;
	c->ctl_job = NULL;
	conn_flush(c);
	conn_mark_dead(c);
	return m->code;
}

static void header_error(struct isn_conn *c, int ret)
{
	const uint8_t *h = c->rx.buf + c->rx.start;

	if (ret == -EPROTONOSUPPORT)
		isn_conn_error(c, ret,
			       "protocol version %u is not supported "
			       "(this ibsnapd speaks version %u)",
			       h[4] | h[5] << 8, ISN_PROTO_VERSION);
	else if (ret == -EMSGSIZE)
		isn_conn_error(c, ret, "message of %u bytes is too long",
			       h[8] | h[9] << 8 | h[10] << 16 |
				       (unsigned int)h[11] << 24);
	else
		isn_conn_error(c, ret, "not an ibsnap message (bad magic)");
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct isn_conn *c = conn_of(w, rio);
	const void *payload;
	struct isn_hdr h;
	ssize_t n;
	int ret = 0;

	(void)loop;
	(void)revents;
	if (!c->dead) {
		n = isn_rx_read(&c->rx, c->fd);
		if (n == 0 || (n < 0 && n != -EAGAIN))
			c->dead = true;
		while (!c->dead &&
		       (ret = isn_rx_next(&c->rx, &h, &payload)) == 1)
			isn_d_dispatch(c, &h, payload);
		if (!c->dead && ret < 0)
			header_error(c, ret);
	}
	if (c->dead)
		conn_destroy(c);
}

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	conn_flush(conn_of(w, wio));
}

static bool peer_trusted(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len))
		return false;
	return cr.uid == geteuid() || cr.uid == 0;
}

static void peer_name(struct isn_conn *c, bool is_unix)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned int port = 0;
	struct ucred cr;

	if (is_unix) {
		len = sizeof(cr);
		if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cr, &len))
			cr.pid = 0;
		snprintf(c->peer, sizeof(c->peer), "unix pid %d", (int)cr.pid);
		return;
	}
	if (!getpeername(c->fd, (struct sockaddr *)&ss, &len)) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

			inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
			port = ntohs(s4->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

			inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
			port = ntohs(s6->sin6_port);
		}
	}
	snprintf(c->peer, sizeof(c->peer), "tcp %s:%u", ip, port);
}

void isn_conn_accept(struct isn_d *d, int lfd, bool is_unix)
{
	struct isn_conn *c;
	int fd, i, one = 1;

	for (i = 0; i < 64; i++) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				isn_d_log(d, "accept: %m");
			return;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->d = d;
		c->fd = fd;
		c->trusted = is_unix && peer_trusted(fd);
		if (!is_unix)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				   sizeof(one));
		peer_name(c, is_unix);
		isn_rx_init(&c->rx, ISN_REQ_MAX);
		ev_io_init(&c->rio, read_cb, fd, EV_READ);
		ev_io_init(&c->wio, write_cb, fd, EV_WRITE);
		ev_io_start(d->loop, &c->rio);
		c->next = d->conns;
		if (d->conns)
			d->conns->prev = c;
		d->conns = c;
		d->nconns++;
	}
}

void isn_conn_destroy_all(struct isn_d *d)
{
	while (d->conns)
		conn_destroy(d->conns);
}
