/* SPDX-License-Identifier: MIT */
/*
 * The test's own checkpoint coordinator (until coord/ drives the shim): it
 * starts the ranks with libibsnap.so preloaded and IBSNAP_TEST_CKPT set, so
 * each rank's shim connects here (drain/testdrv.c), and runs checkpoints --
 * QUIESCE, DRAIN, RELEASE, [a new incarnation of the nodes], REBUILD,
 * RESUME -- at random moments, each phase a barrier, the exchange a
 * put/fence/get through this process.
 */
#ifndef CKPT_DRIVER_H
#define CKPT_DRIVER_H

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ibsnap/ckpt.h"

enum { TD_HELLO = 1, TD_PHASE, TD_PUT, TD_ALL, TD_ACK, TD_EXIT };

#define CD_MAX_RANKS 4

struct cd_rank {
	pid_t pid;
	int fd;
	void *put;
	uint32_t put_len;
	bool has_put, has_ack;
	int32_t status;
};

struct cd {
	int nranks;
	struct cd_rank r[CD_MAX_RANKS];
	double phase_s[ISN_PHASE_RESUME + 1];
	int phase_n[ISN_PHASE_RESUME + 1];
};

static int cd_io(int fd, void *buf, size_t len, bool out)
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

static int cd_send(int fd, uint32_t type, const void *d, uint32_t len)
{
	uint32_t h[2] = { type, len };

	if (cd_io(fd, h, sizeof(h), true))
		return -1;
	return len ? cd_io(fd, (void *)d, len, true) : 0;
}

static double cd_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Everybody's PUT, to everybody. */
static int cd_send_all(struct cd *c)
{
	uint32_t n = (uint32_t)c->nranks, len = 4, off = 4, i;
	char *buf;
	int ret = 0;

	for (i = 0; i < n; i++)
		len += 8 + c->r[i].put_len;
	buf = malloc(len);
	if (!buf)
		return -1;
	memcpy(buf, &n, 4);
	for (i = 0; i < n; i++) {
		memcpy(buf + off, &i, 4);
		memcpy(buf + off + 4, &c->r[i].put_len, 4);
		memcpy(buf + off + 8, c->r[i].put, c->r[i].put_len);
		off += 8 + c->r[i].put_len;
	}
	for (i = 0; i < n && !ret; i++)
		ret = cd_send(c->r[i].fd, TD_ALL, buf, len);
	free(buf);
	for (i = 0; i < n; i++) {
		free(c->r[i].put);
		c->r[i].put = NULL;
		c->r[i].has_put = false;
	}
	return ret;
}

/* One message from rank @i: a PUT or an ACK; -1 if it is gone. */
static int cd_read_one(struct cd *c, int i)
{
	struct cd_rank *r = &c->r[i];
	uint32_t h[2];
	int32_t ack[2];

	if (cd_io(r->fd, h, sizeof(h), false))
		return -1;
	if (h[0] == TD_PUT) {
		r->put = malloc(h[1] + 1);
		if (!r->put || (h[1] && cd_io(r->fd, r->put, h[1], false)))
			return -1;
		r->put_len = h[1];
		r->has_put = true;
		return 0;
	}
	if (h[0] != TD_ACK || h[1] != sizeof(ack) ||
	    cd_io(r->fd, ack, sizeof(ack), false))
		return -1;
	r->has_ack = true;
	r->status = ack[1];
	return 0;
}

/* Run @phase on every rank: the worst status, or -EPIPE. */
static int cd_phase(struct cd *c, uint32_t phase, uint32_t new_inc)
{
	uint32_t msg[2] = { phase, new_inc };
	struct pollfd pfd[CD_MAX_RANKS];
	int i, acks = 0, puts, worst = 0;
	double t0 = cd_now();

	for (i = 0; i < c->nranks; i++) {
		c->r[i].has_ack = false;
		if (cd_send(c->r[i].fd, TD_PHASE, msg, sizeof(msg)))
			return -EPIPE;
	}
	while (acks < c->nranks) {
		for (i = 0; i < c->nranks; i++)
			pfd[i] = (struct pollfd){ c->r[i].fd, POLLIN, 0 };
		if (poll(pfd, c->nranks, 60000) <= 0)
			return -ETIMEDOUT;
		for (i = 0; i < c->nranks; i++) {
			if (!(pfd[i].revents & (POLLIN | POLLHUP)))
				continue;
			if (cd_read_one(c, i))
				return -EPIPE;
			if (c->r[i].has_ack) {
				acks++;
				if (c->r[i].status < worst)
					worst = c->r[i].status;
			}
		}
		for (i = 0, puts = 0; i < c->nranks; i++)
			puts += c->r[i].has_put;
		if (puts == c->nranks && cd_send_all(c))
			return -EPIPE;
	}
	c->phase_s[phase] += cd_now() - t0;
	c->phase_n[phase]++;
	return worst;
}

/* One checkpoint; @reinc: the nodes get a new incarnation while released. */
static int cd_checkpoint(struct cd *c, int (*reinc)(void))
{
	static const uint32_t before[] = { ISN_PHASE_QUIESCE, ISN_PHASE_DRAIN,
					   ISN_PHASE_RELEASE };
	int ret = 0, k;

	for (k = 0; k < 3 && !ret; k++)
		ret = cd_phase(c, before[k], 0);
	if (ret == -EPIPE || ret == -ETIMEDOUT)
		return ret;
	if (ret)
		fprintf(stderr, "checkpoint: phase %u failed: %s\n",
			before[k - 1], strerror(-ret));
	if (!ret && reinc && reinc())
		fprintf(stderr, "checkpoint: no new incarnation\n");
	if (!ret || k == 3) { /* released, at least partly */
		int r = cd_phase(c, ISN_PHASE_REBUILD, reinc != NULL);

		if (r)
			fprintf(stderr, "checkpoint: rebuild failed: %s\n",
				strerror(-r));
		ret = ret ? ret : r;
	}
	k = cd_phase(c, ISN_PHASE_RESUME, 0);
	if (k)
		fprintf(stderr, "checkpoint: resume failed: %s\n",
			strerror(-k));
	return ret ? ret : k;
}

/* LD_PRELOAD for a rank: the shim next to us (../../lib), after the ASan
 * runtime when we run sanitized. */
static int cd_preload(char *out, size_t len)
{
	char exe[PATH_MAX], *slash, asan[PATH_MAX] = "";
	void *sym = dlsym(RTLD_DEFAULT, "__asan_init");
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	Dl_info info;

	if (n < 0)
		return -1;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	*slash = '\0';
	if (sym && dladdr(sym, &info) && info.dli_fname)
		snprintf(asan, sizeof(asan), "%s:", info.dli_fname);
	return snprintf(out, len, "%s%s/../../lib/libibsnap.so", asan, exe) >=
			       (int)len ?
		       -1 :
		       0;
}

/* Listen at @path, start @n ranks of @argv0 ("rank I DIR"), connect. */
static int cd_start(struct cd *c, int n, const char *argv0, const char *dir)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char preload[2 * PATH_MAX], node[16], rank[16];
	int ls, i;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", dir);
	ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(ls, n) || cd_preload(preload, sizeof(preload)))
		return -1;
	c->nranks = n;
	for (i = 0; i < n; i++) {
		snprintf(node, sizeof(node), "n%d", i);
		snprintf(rank, sizeof(rank), "%d", i);
		c->r[i].pid = fork();
		if (c->r[i].pid == 0) {
			setenv("LD_PRELOAD", preload, 1);
			setenv("IBSNAP_BACKEND", "fake", 1);
			setenv("IBSNAP_FAKE_NODE", node, 1);
			setenv("IBSNAP_TEST_CKPT", sa.sun_path, 1);
			setenv("IBSNAP_TEST_RANK", rank, 1);
			execl(argv0, argv0, "rank", rank, dir, (char *)NULL);
			_exit(127);
		}
	}
	for (i = 0; i < n; i++) {
		struct pollfd p = { ls, POLLIN, 0 };
		uint32_t h[3];
		int fd;

		if (poll(&p, 1, 30000) != 1)
			return -1;
		fd = accept(ls, NULL, NULL);
		if (fd < 0 || cd_io(fd, h, sizeof(h), false) ||
		    h[0] != TD_HELLO || h[2] >= (uint32_t)n)
			return -1;
		c->r[h[2]].fd = fd;
	}
	close(ls);
	return 0;
}

/* Wait for the ranks: 0 if every one exited 0. */
static int cd_finish(struct cd *c)
{
	int i, st, ret = 0;

	for (i = 0; i < c->nranks; i++) {
		cd_send(c->r[i].fd, TD_EXIT, NULL, 0);
		close(c->r[i].fd);
	}
	for (i = 0; i < c->nranks; i++) {
		if (waitpid(c->r[i].pid, &st, 0) != c->r[i].pid ||
		    !WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "rank %d: %s %d\n", i,
				WIFSIGNALED(st) ? "killed by signal" : "exit",
				WIFSIGNALED(st) ? WTERMSIG(st) :
						  WEXITSTATUS(st));
			ret = -1;
		}
	}
	return ret;
}

static void cd_kill(struct cd *c)
{
	int i;

	for (i = 0; i < c->nranks; i++)
		if (c->r[i].pid > 0)
			kill(c->r[i].pid, SIGKILL);
}

#endif /* CKPT_DRIVER_H */
