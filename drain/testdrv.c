// SPDX-License-Identifier: MIT
/*
 * A stand-in for the coordinator client, for tests only: with
 * IBSNAP_TEST_CKPT=<unix socket path> a thread of the process connects to
 * a test coordinator there (tests/integration/ckpt_stream.c) and runs the
 * registered checkpoint handlers as it commands, with an exchange through
 * it -- the same calls, in the same thread discipline, as coord/ makes.
 * IBSNAP_TEST_RANK names the process.  After RELEASE it also checks that no
 * device fd or mapping (/dev/infiniband, the fake fabric) is left.
 *
 * Wire: a 8-byte header {type, len} and len bytes.  Coordinator -> process:
 * PHASE {phase, new_incarnation}, ALL {n, n x {rank, len, data}}, EXIT.
 * Process -> coordinator: HELLO {rank}, PUT {data}, ACK {phase, status}.
 * With IBSNAP_TEST_CKPT_TIMES set (bench/bench_ckpt.c) an ACK also carries
 * the handler's wall time, the part in the exchange and the handler's CPU
 * time (us): ACK {phase, status, handler, exchange, cpu}; RELEASE then
 * skips the check of what is left open.
 * At exit the process logs what the ID maps retired and what the
 * checkpoints freed of it (tests/shim/ckpt.sh bounds what is kept).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"

enum { TD_HELLO = 1, TD_PHASE, TD_PUT, TD_ALL, TD_ACK, TD_EXIT };

struct td_hdr {
	uint32_t type, len;
};

static int td_fd = -1;
static uint32_t td_rank;
static void *td_all_buf;
static struct isn_blob *td_blobs;
static bool td_times;
static bool td_on; /* connected to a test coordinator */
static uint64_t td_xchg_ns;

static int td_io(void *buf, size_t len, bool out)
{
	char *p = buf;
	ssize_t n;

	while (len) {
		n = out ? write(td_fd, p, len) : read(td_fd, p, len);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			return -EPIPE;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int td_send(uint32_t type, const void *data, uint32_t len)
{
	struct td_hdr h = { type, len };
	int ret = td_io(&h, sizeof(h), true);

	return ret ? ret : len ? td_io((void *)data, len, true) : 0;
}

/* Receive one message of @type into a malloc'ed buffer. */
static int td_recv(uint32_t type, void **data_p, uint32_t *len_p)
{
	struct td_hdr h;
	void *d;
	int ret = td_io(&h, sizeof(h), false);

	if (ret)
		return ret;
	d = malloc(h.len + 1);
	if (!d)
		return -ENOMEM;
	ret = h.len ? td_io(d, h.len, false) : 0;
	if (!ret && h.type != type)
		ret = h.type == TD_EXIT ? -ECANCELED : -EPROTO;
	if (ret) {
		free(d);
		return ret;
	}
	*data_p = d;
	*len_p = h.len;
	return 0;
}

static int td_exchange(struct isn_exchange *x, const void *blob, size_t len,
		       const struct isn_blob **all, size_t *n)
{
	uint32_t cnt, off, i, blen;
	char *p;
	int ret;

	uint64_t t0 = isn_now_ns();

	(void)x;
	ret = td_send(TD_PUT, blob, (uint32_t)len);
	if (!ret)
		ret = td_recv(TD_ALL, &td_all_buf, &blen);
	td_xchg_ns += isn_now_ns() - t0;
	if (ret)
		return ret;
	p = td_all_buf;
	memcpy(&cnt, p, sizeof(cnt));
	td_blobs = calloc(cnt ? cnt : 1, sizeof(*td_blobs));
	if (!td_blobs)
		return -ENOMEM;
	for (i = 0, off = 4; i < cnt; i++) {
		memcpy(&td_blobs[i].rank, p + off, 4);
		memcpy(&td_blobs[i].len, p + off + 4, 4);
		td_blobs[i].data = p + off + 8;
		off += 8 + td_blobs[i].len;
	}
	*all = td_blobs;
	*n = cnt;
	return 0;
}

/* After RELEASE nothing of the device may stay: no fd, no mapping. */
static int td_check_released(void)
{
	const char *fab = getenv("IBSNAP_FABRIC");
	char line[512], path[300], target[512];
	struct dirent *d;
	DIR *dir;
	FILE *f;
	ssize_t n;
	int bad = 0;

	f = fopen("/proc/self/maps", "r");
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "/dev/infiniband") ||
		    (fab && *fab && strstr(line, fab))) {
			isn_log("test: mapped after release: %s", line);
			bad = 1;
		}
	if (f)
		fclose(f);
	dir = opendir("/proc/self/fd");
	while (dir && (d = readdir(dir))) {
		snprintf(path, sizeof(path), "/proc/self/fd/%s", d->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strstr(target, "/dev/infiniband") ||
		    (fab && *fab && strstr(target, fab))) {
			isn_log("test: open after release: %s", target);
			bad = 1;
		}
	}
	if (dir)
		closedir(dir);
	return bad ? -EBUSY : 0;
}

static int td_phase(const struct isn_ckpt_handlers *h, uint32_t phase,
		    uint32_t new_inc)
{
	struct isn_exchange x = { .put_fence_get = td_exchange };
	int ret;

	switch (phase) {
	case ISN_PHASE_QUIESCE:
		return h->quiesce();
	case ISN_PHASE_DRAIN:
		return h->drain(&x);
	case ISN_PHASE_RELEASE:
		ret = h->release();
		/* a benchmark times the handler, not this test's check */
		return ret || td_times ? ret : td_check_released();
	case ISN_PHASE_REBUILD:
		return h->rebuild(&x, (int)new_inc);
	case ISN_PHASE_RESUME:
		return h->resume();
	}
	return -EINVAL;
}

static void *td_thread(void *unused)
{
	const struct isn_ckpt_handlers *h = isn_ckpt_handlers();
	uint32_t *ph, len, ack[5];
	struct timespec c0, c1;
	uint64_t t0;
	int ret;

	(void)unused;
	if (td_send(TD_HELLO, &td_rank, sizeof(td_rank)))
		return NULL;
	while (!td_recv(TD_PHASE, (void **)&ph, &len)) {
		td_xchg_ns = 0;
		t0 = isn_now_ns();
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
		ret = len >= 8 ? td_phase(h, ph[0], ph[1]) : -EPROTO;
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
		ack[0] = ph[0];
		ack[1] = (uint32_t)ret;
		ack[2] = (uint32_t)((isn_now_ns() - t0) / 1000);
		ack[3] = (uint32_t)(td_xchg_ns / 1000);
		ack[4] = (uint32_t)((c1.tv_sec - c0.tv_sec) * 1000000 +
				    (c1.tv_nsec - c0.tv_nsec) / 1000);
		free(ph);
		free(td_all_buf);
		free(td_blobs);
		td_all_buf = NULL;
		td_blobs = NULL;
		if (td_send(TD_ACK, ack, td_times ? 20 : 8))
			break;
	}
	close(td_fd);
	return NULL;
}

__attribute__((constructor)) static void td_init(void)
{
	const char *path = getenv("IBSNAP_TEST_CKPT");
	const char *rank = getenv("IBSNAP_TEST_RANK");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	pthread_t t;

	if (!path || !*path || strlen(path) >= sizeof(sa.sun_path))
		return;
	unsetenv("IBSNAP_TEST_CKPT"); /* not for the children */
	td_rank = rank ? (uint32_t)atoi(rank) : 0;
	td_times = getenv("IBSNAP_TEST_CKPT_TIMES") != NULL;
	strcpy(sa.sun_path, path);
	td_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (td_fd < 0 || connect(td_fd, (struct sockaddr *)&sa, sizeof(sa))) {
		isn_log("test: cannot reach the checkpoint driver at %s: %m",
			path);
		return;
	}
	td_on = true;
	if (pthread_create(&t, NULL, td_thread, NULL) == 0)
		pthread_detach(t);
}

__attribute__((destructor)) static void td_fini(void)
{
	struct isn_vid_old_stats st;

	if (!td_on)
		return;
	isn_vid_old_stats(&st);
	isn_log("test: rank %u: ID-map copies retired and kept: %zu (%zu "
		"bytes); freed by checkpoints: %zu (%zu bytes)",
		td_rank, st.kept, st.kept_bytes, st.freed, st.freed_bytes);
}
