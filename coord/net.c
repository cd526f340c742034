/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "net.h"
#include "wfault.h"

int isn_addr_parse(const char *s, struct isn_addr *a)
{
	const char *colon;
	size_t hl;

	memset(a, 0, sizeof(*a));
	if (!s || !*s || strlen(s) >= sizeof(a->text))
		return -EINVAL;
	isn_strlcpy(a->text, s, sizeof(a->text));
	if (!strncmp(s, "unix:", 5) || s[0] == '/') {
		if (s[0] != '/')
			s += 5;
		if (!*s)
			return -EINVAL;
		if (strlen(s) >= sizeof(a->path))
			return -ENAMETOOLONG;
		a->is_unix = true;
		isn_strlcpy(a->path, s, sizeof(a->path));
		return 0;
	}
	colon = strrchr(s, ':');
	if (!colon || colon == s || !colon[1] ||
	    strlen(colon + 1) >= sizeof(a->port))
		return -EINVAL;
	hl = colon - s;
	if (s[0] == '[' && hl > 2 && s[hl - 1] == ']') { /* [v6]:port */
		s++;
		hl -= 2;
	}
	if (hl >= sizeof(a->host))
		return -EINVAL;
	memcpy(a->host, s, hl);
	a->host[hl] = '\0';
	isn_strlcpy(a->port, colon + 1, sizeof(a->port));
	if (strspn(a->port, "0123456789") != strlen(a->port))
		return -EINVAL;
	return 0;
}

int isn_default_sock(char *out, size_t len)
{
	const char *env = getenv("IBSNAP_COORD_SOCK");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (env && *env)
		n = snprintf(out, len, "%s", env);
	else if (geteuid() == 0)
		n = snprintf(out, len, "/run/ibsnap/ibsnapd.sock");
	else if (xdg && *xdg)
		n = snprintf(out, len, "%s/ibsnap/ibsnapd.sock", xdg);
	else
		n = snprintf(out, len, "/tmp/ibsnap-%u/ibsnapd.sock",
			     (unsigned int)geteuid());
	if (n < 0 || (size_t)n >= len || (size_t)n >= ISN_UNIX_PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

int isn_addr_default(struct isn_addr *a)
{
	char path[ISN_PATH_MAX];
	int ret = isn_default_sock(path, sizeof(path));

	if (ret)
		return ret;
	return isn_addr_parse(path, a);
}

bool isn_addr_is_default(const struct isn_addr *a)
{
	struct isn_addr d;

	return a->is_unix && !isn_addr_default(&d) && !strcmp(d.path, a->path);
}

int isn_mkdir_p(const char *dir, mode_t mode)
{
	char buf[ISN_PATH_MAX], *p;

	if (strlen(dir) >= sizeof(buf))
		return -ENAMETOOLONG;
	strcpy(buf, dir);
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return mkdir(buf, mode) && errno != EEXIST ? -errno : 0;
}

int isn_sock_dir_make(const char *path)
{
	char dir[ISN_PATH_MAX], *p;

	isn_strlcpy(dir, path, sizeof(dir));
	p = strrchr(dir, '/');
	if (!p || p == dir)
		return 0;
	*p = '\0';
	return isn_mkdir_p(dir, 0700);
}

static int connect_unix(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, ret;

	isn_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	do
		ret = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	while (ret && errno == EINTR);
	if (ret) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

static int connect_tcp(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	int fd = -ECONNREFUSED, one = 1;

	if (getaddrinfo(host, port, &hints, &res))
		return -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			fd = -errno;
			continue;
		}
		if (!connect(fd, ai->ai_addr, ai->ai_addrlen))
			break;
		close(fd);
		fd = -errno;
	}
	freeaddrinfo(res);
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int isn_connect(const struct isn_addr *a)
{
	if (a->is_unix)
		return connect_unix(a->path);
	return connect_tcp(a->host, a->port);
}

int isn_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == ENOTSOCK)
			n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= n;
	}
	return 0;
}

int isn_send_msg(int fd, uint16_t type, const void *msg)
{
	struct isn_wbuf w = { 0 };
	int ret = isn_msg_encode(&w, type, msg);
	enum isn_wf_act act = ret ? ISN_WF_SEND : isn_wfault(w.p, w.len);

	if (!ret && act != ISN_WF_DROP)
		ret = isn_write_all(fd, w.p, w.len);
	if (!ret && act == ISN_WF_DUP)
		ret = isn_write_all(fd, w.p, w.len);
	isn_wbuf_free(&w);
	return ret;
}

uint64_t isn_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int isn_recv_msg(int fd, struct isn_rx *rx, int timeout_ms, struct isn_hdr *h,
		 const void **payload)
{
	uint64_t end = isn_now_us() + (uint64_t)timeout_ms * 1000;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int ret, wait_ms = timeout_ms;
	ssize_t n;

	for (;;) {
		ret = isn_rx_next(rx, h, payload);
		if (ret)
			return ret;
		if (timeout_ms >= 0) {
			uint64_t now = isn_now_us();

			wait_ms = now >= end ? 0 : (int)((end - now) / 1000);
		}
		ret = poll(&pfd, 1, wait_ms);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return -errno;
		if (ret == 0)
			return 0;
		n = isn_rx_read(rx, fd);
		if (n == 0)
			return -EPIPE;
		if (n < 0 && n != -EAGAIN)
			return (int)n;
	}
}
