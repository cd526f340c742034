/* SPDX-License-Identifier: MIT */
/*
 * The shim's event thread (design §5): it polls the backend's completion
 * channel and async fds and forwards what they carry to the shim-owned fds
 * the application holds.  Callbacks run with ev_lock held, so removing a
 * watch (which takes ev_lock) is a barrier: afterwards its callback is not
 * running and never runs again.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "shim.h"

struct isn_ev_watch {
	struct isn_ev_watch *next;
	int fd;
	isn_ev_fn fn;
	void *arg;
};

static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static struct isn_ev_watch *ev_watches;
static unsigned int ev_nwatches;
static int ev_wake[2] = { -1, -1 };
static bool ev_running;

int isn_fd_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return errno;
	return 0;
}

void isn_pipe_put(int wfd, const void *rec, size_t len)
{
	ssize_t n;

	do
		n = write(wfd, rec, len);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)len)
		isn_log("event dropped: %s", n < 0 ? "fd full" : "short write");
}

int isn_pipe_get(int fd, void *rec, size_t len)
{
	ssize_t n = read(fd, rec, len);

	if (n == (ssize_t)len)
		return 0;
	if (n >= 0)
		errno = EIO; /* records are written whole: not ours */
	return -1;
}

/* Snapshot of the watched fds (lock held); slot 0 is the wake pipe. */
static unsigned int ev_snapshot(struct pollfd **pfd_p,
				struct isn_ev_watch ***w_p, unsigned int *cap)
{
	struct isn_ev_watch *w;
	unsigned int i = 1;

	if (*cap < ev_nwatches + 1) {
		unsigned int n = ev_nwatches + 16;
		struct pollfd *p = realloc(*pfd_p, n * sizeof(**pfd_p));
		struct isn_ev_watch **ws;

		if (p)
			*pfd_p = p;
		ws = realloc(*w_p, n * sizeof(**w_p));
		if (ws)
			*w_p = ws;
		if (!p || !ws)
			return 1; /* keep polling the wake pipe only */
		*cap = n;
	}
	(*pfd_p)[0] = (struct pollfd){ .fd = ev_wake[0], .events = POLLIN };
	for (w = ev_watches; w; w = w->next, i++) {
		(*pfd_p)[i] = (struct pollfd){ .fd = w->fd, .events = POLLIN };
		(*w_p)[i] = w;
	}
	return i;
}

static bool ev_still_watched(struct isn_ev_watch *w)
{
	struct isn_ev_watch *p;

	for (p = ev_watches; p; p = p->next)
		if (p == w)
			return true;
	return false;
}

static void *ev_thread(void *unused)
{
	struct pollfd *pfd = NULL;
	struct isn_ev_watch **ws = NULL;
	unsigned int cap = 0, n, i;
	char buf[64];

	(void)unused;
	for (;;) {
		pthread_mutex_lock(&ev_lock);
		n = ev_snapshot(&pfd, &ws, &cap);
		pthread_mutex_unlock(&ev_lock);

		if (poll(pfd, n, -1) < 0)
			continue;
		if (pfd[0].revents & POLLIN)
			while (read(ev_wake[0], buf, sizeof(buf)) > 0)
				;
		pthread_mutex_lock(&ev_lock);
		/*
		 * A watch removed and another added at the same address since
		 * the snapshot gets a spurious call: callbacks read
		 * non-blocking fds, so that is harmless.
		 */
		for (i = 1; i < n; i++)
			if ((pfd[i].revents & (POLLIN | POLLERR | POLLHUP)) &&
			    ev_still_watched(ws[i]))
				ws[i]->fn(ws[i]->arg);
		pthread_mutex_unlock(&ev_lock);
	}
	return NULL;
}

/* Start the thread on first use (lock held). */
static int ev_start(void)
{
	pthread_attr_t attr;
	pthread_t tid;
	int ret;

	if (ev_running)
		return 0;
	if (pipe2(ev_wake, O_CLOEXEC | O_NONBLOCK))
		return errno;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = pthread_create(&tid, &attr, ev_thread, NULL);
	pthread_attr_destroy(&attr);
	if (ret) {
		close(ev_wake[0]);
		close(ev_wake[1]);
		return ret;
	}
	ev_running = true;
	return 0;
}

static void ev_kick(void)
{
	ssize_t r = write(ev_wake[1], "", 1);

	(void)r; /* full: the thread has a wake-up pending anyway */
}

int isn_ev_watch(int fd, isn_ev_fn fn, void *arg, struct isn_ev_watch **w_p)
{
	struct isn_ev_watch *w = calloc(1, sizeof(*w));
	int ret;

	if (!w)
		return ENOMEM;
	w->fd = fd;
	w->fn = fn;
	w->arg = arg;
	pthread_mutex_lock(&ev_lock);
	ret = ev_start();
	if (!ret) {
		w->next = ev_watches;
		ev_watches = w;
		ev_nwatches++;
		ev_kick();
	}
	pthread_mutex_unlock(&ev_lock);
	if (ret) {
		free(w);
		return ret;
	}
	*w_p = w;
	return 0;
}

void isn_ev_unwatch(struct isn_ev_watch *w)
{
	struct isn_ev_watch **p;

	if (!w)
		return;
	pthread_mutex_lock(&ev_lock);
	for (p = &ev_watches; *p; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			ev_nwatches--;
			break;
		}
	}
	ev_kick();
	pthread_mutex_unlock(&ev_lock);
	free(w);
}

void isn_ev_barrier(void)
{
	pthread_mutex_lock(&ev_lock);
	pthread_mutex_unlock(&ev_lock);
}

void isn_ev_atfork(enum isn_fork_stage stage)
{
	struct isn_ev_watch *w;

	if (stage == ISN_FORK_PREPARE) {
		pthread_mutex_lock(&ev_lock);
		return;
	}
	if (stage == ISN_FORK_CHILD && ev_running) {
		/* no thread here; the watches are the parent's objects' */
		while ((w = ev_watches)) {
			ev_watches = w->next;
			free(w);
		}
		ev_nwatches = 0;
		close(ev_wake[0]);
		close(ev_wake[1]);
		ev_wake[0] = ev_wake[1] = -1;
		ev_running = false;
	}
	pthread_mutex_unlock(&ev_lock);
}
