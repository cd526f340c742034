// SPDX-License-Identifier: MIT
/*
 * Device commands after a restore, from any thread.  The kernel takes a
 * write() to a uverbs device fd only from a thread whose credentials are
 * the very ones the fd was opened with (ib_safe_file_access():
 * filp->f_cred == current_cred(), else EACCES and once "changed security
 * contexts after opening file descriptor").  Threads normally share one
 * struct cred, but CRIU restores each thread's credentials on its own, and
 * each thread then holds a cred of its own.  The rebuild opens the devices
 * on the coordinator's thread, so every other thread's write()-path verb
 * fails with EACCES after a restore: rxe's post_send doorbell,
 * req_notify_cq, modify_qp, ...  (ioctl()s and mmap()s have no such
 * check.)
 *
 * So the shim interposes write(): a write to a device fd the rebuild
 * opened that fails with EACCES is done again by a thread the rebuilding
 * thread started (a thread shares its creator's cred), and the caller gets
 * that result.  A thread that failed once goes there directly until the
 * next rebuild.  Before any restore no write fails this way and nothing
 * changes; the fake backend has no device fd and never starts the thread.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../drain/ckpt.h"

#define MAX_FDS 16

struct fwd_req {
	struct fwd_req *next;
	int fd;
	const void *buf;
	size_t len;
	ssize_t ret;
	int err;
	bool done;
};

static struct {
	pthread_mutex_t m;
	pthread_cond_t work, done;
	struct fwd_req *head, **tail;
	pthread_t thread;
	pid_t pid; /* the process that runs the thread (not a fork child) */
	bool running, stop;
	_Atomic unsigned int gen; /* thread starts so far */
	_Atomic int fds[MAX_FDS]; /* the rebuild's device fds, -1: none */
} fwd = {
	.m = PTHREAD_MUTEX_INITIALIZER,
	.work = PTHREAD_COND_INITIALIZER,
	.done = PTHREAD_COND_INITIALIZER,
	.fds = { [0 ... MAX_FDS - 1] = -1 },
};

/* the thread went to the forwarder in this generation of it */
static __thread unsigned int tl_gen;

static ssize_t (*next_write)(int, const void *, size_t);

static ssize_t sys_write(int fd, const void *buf, size_t len)
{
	if (next_write)
		return next_write(fd, buf, len);
	return syscall(SYS_write, fd, buf, len);
}

static bool is_dev_fd(int fd)
{
	int i;

	for (i = 0; fd >= 0 && i < MAX_FDS; i++)
		if (atomic_load_explicit(&fwd.fds[i], memory_order_relaxed) ==
		    fd)
			return true;
	return false;
}

void isn_cred_fd_add(int fd)
{
	int i, none;

	if (fd < 0 || is_dev_fd(fd))
		return;
	for (i = 0; i < MAX_FDS; i++) {
		none = -1;
		if (atomic_compare_exchange_strong(&fwd.fds[i], &none, fd))
			return;
	}
	isn_log("rebuild: more than %d devices: device fd %d is left out "
		"(other threads' commands may fail with EACCES)",
		MAX_FDS, fd);
}

void isn_cred_fd_del(int fd)
{
	int i, want;

	for (i = 0; fd >= 0 && i < MAX_FDS; i++) {
		want = fd;
		atomic_compare_exchange_strong(&fwd.fds[i], &want, -1);
	}
}

static void *fwd_main(void *arg)
{
	struct fwd_req *r;

	(void)arg;
	pthread_mutex_lock(&fwd.m);
	for (;;) {
		while (!fwd.head && !fwd.stop)
			pthread_cond_wait(&fwd.work, &fwd.m);
		if (!fwd.head)
			break;
		r = fwd.head;
		fwd.head = r->next;
		if (!fwd.head)
			fwd.tail = &fwd.head;
		pthread_mutex_unlock(&fwd.m);
		r->ret = sys_write(r->fd, r->buf, r->len);
		r->err = r->ret < 0 ? errno : 0;
		pthread_mutex_lock(&fwd.m);
		r->done = true;
		pthread_cond_broadcast(&fwd.done);
	}
	pthread_mutex_unlock(&fwd.m);
	return NULL;
}

/* Do @fd's write on the forwarder; false if there is none. */
static bool forward(int fd, const void *buf, size_t len, ssize_t *ret)
{
	struct fwd_req r = { .fd = fd, .buf = buf, .len = len };

	pthread_mutex_lock(&fwd.m);
	if (!fwd.running || fwd.stop || fwd.pid != getpid()) {
		pthread_mutex_unlock(&fwd.m);
		return false;
	}
	*fwd.tail = &r;
	fwd.tail = &r.next;
	pthread_cond_signal(&fwd.work);
	while (!r.done)
		pthread_cond_wait(&fwd.done, &fwd.m);
	pthread_mutex_unlock(&fwd.m);
	*ret = r.ret;
	errno = r.err;
	return true;
}

ISN_EXPORT ssize_t write(int fd, const void *buf, size_t len)
{
	unsigned int gen = atomic_load_explicit(&fwd.gen, memory_order_relaxed);
	ssize_t ret;

	if (isn_unlikely(tl_gen == gen && gen && is_dev_fd(fd)) &&
	    forward(fd, buf, len, &ret))
		return ret;
	ret = sys_write(fd, buf, len);
	if (isn_likely(ret >= 0 || errno != EACCES || !gen || !is_dev_fd(fd)))
		return ret;
	if (forward(fd, buf, len, &ret))
		tl_gen = gen;
	else
		errno = EACCES;
	return ret;
}

/* Stop the forwarder of an earlier rebuild (its cred may be stale). */
void isn_cred_stop(void)
{
	pthread_mutex_lock(&fwd.m);
	if (!fwd.running || fwd.pid != getpid()) {
		fwd.running = false;
		pthread_mutex_unlock(&fwd.m);
		return;
	}
	fwd.stop = true;
	pthread_cond_signal(&fwd.work);
	pthread_mutex_unlock(&fwd.m);
	pthread_join(fwd.thread, NULL);
	pthread_mutex_lock(&fwd.m);
	fwd.running = fwd.stop = false;
	pthread_mutex_unlock(&fwd.m);
}

/*
 * After a restore (@restored: a new incarnation), start a forwarder that
 * shares this (the opening) thread's cred, in place of any earlier one.
 * Without a restore since the last start the threads' creds are as they
 * were: a running forwarder still fits, and a process never restored needs
 * none (a thread start and stop cost ~1 ms per rebuild under TCG).  None
 * either when no device fd was registered.  0 or -errno.
 */
int isn_cred_start(bool restored)
{
	sigset_t all, old;
	bool any = false;
	int i, ret;

	for (i = 0; i < MAX_FDS; i++)
		any |= atomic_load(&fwd.fds[i]) >= 0;
	if (!any || !restored)
		return 0;
	isn_cred_stop();
	pthread_mutex_lock(&fwd.m);
	fwd.head = NULL;
	fwd.tail = &fwd.head;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&fwd.thread, NULL, fwd_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!ret) {
		fwd.running = true;
		fwd.pid = getpid();
		atomic_fetch_add(&fwd.gen, 1);
	}
	pthread_mutex_unlock(&fwd.m);
	return -ret;
}

__attribute__((constructor)) static void cred_init(void)
{
	next_write =
		(ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "writ"
									"e");
}
