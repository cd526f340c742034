/* SPDX-License-Identifier: MIT */
/*
 * Waking the job's processes (docs/checkpoint.md, the incarnation
 * mechanism): each waits on the read end of a pipe of its own; the agent
 * opens it through /proc/PID/fd/FD and writes one struct isn_wake.  Inside
 * the job's PID namespace the processes know their namespace pids; the
 * agent maps them to its own once per wake, from NSpid in /proc.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "wake.h"

struct pidmap {
	uint32_t n;
	struct {
		pid_t ns, host;
	} * e;
};

/* The pid namespace of @pid, as "pid:[inode]". */
static int ns_of(pid_t pid, char *out, size_t len)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	n = readlink(path, out, len - 1);
	if (n <= 0)
		return -1;
	out[n] = '\0';
	return 0;
}

/* The innermost pid of @pid (the last field of NSpid), or 0. */
static pid_t inner_pid(pid_t pid)
{
	char path[64], line[256], *last;
	pid_t inner = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "NSpid:", 6))
			continue;
		line[strcspn(line, "\n")] = '\0';
		last = strrchr(line, '\t');
		last = last ? last : strrchr(line, ' ');
		inner = last ? (pid_t)atoi(last + 1) : 0;
		break;
	}
	if (f)
		fclose(f);
	return inner;
}

/* One pass over /proc: every process of the init's namespace. */
static void pidmap_build(const struct isn_agent_ctx *ax, struct pidmap *m)
{
	char ns[64], other[64];
	struct dirent *e;
	uint32_t cap = 0;
	pid_t pid;
	DIR *d;

	memset(m, 0, sizeof(*m));
	if (!ax->pidns || ns_of(ax->init_pid, ns, sizeof(ns)))
		return;
	d = opendir("/proc");
	while (d && (e = readdir(d))) {
		pid = (pid_t)atoi(e->d_name);
		if (pid <= 0 || ns_of(pid, other, sizeof(other)) ||
		    strcmp(ns, other))
			continue;
		if (m->n == cap) {
			void *p = realloc(m->e, (cap = cap ? 2 * cap : 64) *
							sizeof(*m->e));

			if (!p)
				break;
			m->e = p;
		}
		m->e[m->n].ns = inner_pid(pid);
		m->e[m->n++].host = pid;
	}
	if (d)
		closedir(d);
}

/* This host's pid of a job's process, or 0 when it is gone. */
static pid_t host_pid(const struct isn_agent_ctx *ax, const struct pidmap *m,
		      pid_t nspid)
{
	uint32_t i;

	if (!ax->pidns)
		return kill(nspid, 0) && errno == ESRCH ? 0 : nspid;
	for (i = 0; i < m->n; i++)
		if (m->e[i].ns == nspid)
			return m->e[i].host;
	return 0;
}

static int wake_one(struct isn_agent_ctx *ax, const struct pidmap *m,
		    uint32_t k, const struct isn_wake *w)
{
	pid_t pid = host_pid(ax, m, (pid_t)ax->clients[3 * k + 1]);
	char path[64];
	struct stat st;
	ssize_t n;
	int fd;

	if (!pid)
		return -ESRCH;
	snprintf(path, sizeof(path), "/proc/%d/fd/%u", (int)pid,
		 ax->clients[3 * k + 2]);
	/* the fd must still be its wake pipe (checked by inode when known) */
	if (stat(path, &st) || !S_ISFIFO(st.st_mode) ||
	    (ax->inos[k] && st.st_ino != ax->inos[k]))
		return -ESRCH;
	fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, w, sizeof(*w));
	close(fd);
	return n == (ssize_t)sizeof(*w) ? 0 : -EIO;
}

static int client_index(struct isn_agent_ctx *ax, uint32_t rank)
{
	uint32_t k;

	for (k = 0; k < ax->nclients; k++)
		if (ax->clients[3 * k] == rank)
			return (int)k;
	return -1;
}

uint32_t isn_agent_wake(struct isn_agent_ctx *ax, uint32_t flags,
			const uint32_t *ranks, uint32_t n, uint32_t *gone)
{
	struct isn_wake w = { .magic = ISN_WAKE_MAGIC,
			      .version = ISN_WAKE_VERSION,
			      .size = sizeof(w),
			      .ckpt = ax->ckpt,
			      .flags = flags,
			      .agent = ax->id };
	uint32_t i, ngone = 0;
	struct pidmap m;
	int k;

	isn_strlcpy(w.coord, ax->addr.text, sizeof(w.coord));
	pidmap_build(ax, &m);
	if (!ranks)
		n = ax->nclients;
	for (i = 0; i < n; i++) {
		k = ranks ? client_index(ax, ranks[i]) : (int)i;
		if ((k < 0 || wake_one(ax, &m, (uint32_t)k, &w)) && gone)
			gone[ngone++] = ranks ? ranks[i] : ax->clients[3 * k];
	}
	free(m.e);
	return ngone;
}
