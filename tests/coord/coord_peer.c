/* SPDX-License-Identifier: MIT */
/*
 * A fake participant for the coordinator tests: it links the coordinator
 * client (coord/client.c) with handlers that record the phase order in a
 * log and exchange checksummed blobs whose content depends on the rank, so
 * the test can check that every process got every other's blob, intact.
 *
 *   coord_peer               one peer
 *   coord_peer --spawn N     N peers, children of this process, which waits
 *                            for them as mpirun would (and does not die)
 *
 * Environment:
 *   PEER_DIR      logs go to PEER_DIR/peer-PID-*.log; PEER_DIR/stop ends
 *                 the peers; PEER_DIR/go releases a held handler
 *   PEER_DIE=R:P  rank R exits in phase P's handler (once: PEER_DIR/died)
 *   PEER_HOLD=P   phase P's handler waits for PEER_DIR/go before going on
 *
 * Log lines: "rank R", then per phase "quiesce", "drain ok n=N" (or
 * "drain xfail E"), "release", "rebuild ok n=N inc=I", "resume", and at
 * the end "exit". Exit status 0 unless a blob was wrong or
 * registration failed (3).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "ibsnap/ckpt.h"

static const struct isn_ckpt_handlers *handlers;
static int log_fd = -1, bad, rank = -1;
static const char *dir = ".";

void isn_ckpt_register(const struct isn_ckpt_handlers *h)
{
	handlers = h;
}

const struct isn_ckpt_handlers *isn_ckpt_handlers(void)
{
	return handlers;
}

static void logf_(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	buf[n++] = '\n';
	if (write(log_fd, buf, n) != n)
		bad = 1;
}

static int exists(const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

static void phase_hooks(const char *phase)
{
	const char *die = getenv("PEER_DIE"), *hold = getenv("PEER_HOLD");
	char path[512];
	int r;

	logf_("%s-enter", phase);
	if (die && sscanf(die, "%d:", &r) == 1 && r == rank &&
	    !strcmp(strchr(die, ':') + 1, phase) && !exists("died")) {
		snprintf(path, sizeof(path), "%s/died", dir);
		close(open(path, O_CREAT | O_WRONLY, 0600));
		_exit(9);
	}
	while (hold && !strcmp(hold, phase) && !exists("go"))
		usleep(20000);
}

/* The blob of @r in exchange @seed: length and bytes from both. */
static uint32_t blob_make(uint32_t r, uint32_t seed, uint8_t *out)
{
	uint32_t len = 16 + (r * 37 + seed * 11) % 500, i,
		 x = r * 2654435761u + seed;
	uint32_t sum = 0;

	for (i = 0; i < len - 4; i++) {
		x = x * 1103515245u + 12345u;
		out[i] = (uint8_t)(x >> 16);
		sum = sum * 31 + out[i];
	}
	memcpy(out + len - 4, &sum, 4);
	return len;
}

static int exchange(struct isn_exchange *x, const char *phase, uint32_t seed,
		    int inc)
{
	uint8_t mine[600], want[600];
	const struct isn_blob *all;
	size_t n, i;
	uint32_t len = blob_make((uint32_t)rank, seed, mine);
	int ret = x->put_fence_get(x, mine, len, &all, &n);

	if (ret) {
		logf_("%s xfail %d", phase, ret);
		return ret;
	}
	for (i = 0; i < n; i++) {
		uint32_t wl = blob_make(all[i].rank, seed, want);

		if (wl != all[i].len || memcmp(want, all[i].data, wl) ||
		    (i && all[i].rank <= all[i - 1].rank)) {
			logf_("%s BAD blob of rank %u", phase, all[i].rank);
			bad = 1;
		}
	}
	logf_("%s ok n=%zu inc=%d", phase, n, inc);
	return 0;
}

static int h_quiesce(void)
{
	phase_hooks("quiesce");
	logf_("quiesce");
	return 0;
}

static int h_drain(struct isn_exchange *x)
{
	phase_hooks("drain");
	return exchange(x, "drain", 1, 0);
}

static int h_release(void)
{
	phase_hooks("release");
	logf_("release");
	return 0;
}

static int h_rebuild(struct isn_exchange *x, int new_incarnation)
{
	phase_hooks("rebuild");
	return exchange(x, "rebuild", 2, new_incarnation);
}

static int h_resume(void)
{
	phase_hooks("resume");
	logf_("resume");
	return 0;
}

static const struct isn_ckpt_handlers peer_handlers = {
	.quiesce = h_quiesce,
	.drain = h_drain,
	.release = h_release,
	.rebuild = h_rebuild,
	.resume = h_resume,
};

static int peer(void)
{
	char path[512];
	int ret;

	/* pids repeat across the PID namespaces of several ibsnap run */
	snprintf(path, sizeof(path), "%s/peer-%d-XXXXXX.log", dir,
		 (int)getpid());
	log_fd = mkostemps(path, 4, O_APPEND | O_CLOEXEC);
	if (log_fd < 0)
		return 2;
	isn_ckpt_register(&peer_handlers);
	ret = isn_coord_client_start();
	if (ret || isn_coord_client_rank() < 0) {
		logf_("register failed %d", ret);
		fprintf(stderr, "coord_peer: registration failed: %s\n",
			strerror(-ret));
		return 3;
	}
	rank = isn_coord_client_rank();
	logf_("rank %d", rank);
	while (!exists("stop"))
		usleep(20000);
	isn_coord_client_stop();
	logf_("exit");
	return bad;
}

int main(int argc, char **argv)
{
	char self[512];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int n, i, status, ret = 0;
	pid_t pid;

	if (getenv("PEER_DIR"))
		dir = getenv("PEER_DIR");
	if (argc != 3 || strcmp(argv[1], "--spawn"))
		return peer();
	n = atoi(argv[2]);
	self[len > 0 ? len : 0] = '\0';
	for (i = 0; i < n; i++) {
		pid = fork();
		if (pid == 0) {
			execl(self, argv[0], (char *)NULL);
			_exit(127);
		}
	}
	while ((pid = wait(&status)) > 0)
		if (!WIFEXITED(status) ||
		    (WEXITSTATUS(status) && WEXITSTATUS(status) != 9))
			ret = ret ? ret : 4; /* 9: died on purpose */
	return ret;
}
