/* SPDX-License-Identifier: MIT */
/* The coordinator client's life cycle: start, register, reconnect, stop. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "client_int.h"

struct isn_client isn_cl = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.sock = -1,
	.stop_fd = -1,
	.wake_rd = -1,
	.wake_wr = -1,
	.rank = -1,
};

void isn_cl_log(const char *fmt, ...)
{
	int saved = errno;
	char buf[640];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "ibsnap: coord[%d]: ", (int)getpid());
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	va_end(ap);
	strcat(buf, "\n");
	if (write(STDERR_FILENO, buf, strlen(buf)) < 0)
		n = 0;
	errno = saved;
}

void isn_cl_close(void)
{
	if (isn_cl.sock >= 0)
		close(isn_cl.sock);
	isn_cl.sock = -1;
	isn_cl.ph_seen = false;
	isn_rx_free(&isn_cl.rx);
	isn_rx_init(&isn_cl.rx, ISN_MSG_MAX);
}

/* Sleep @ms unless stopped: 0, or -ECANCELED. */
static int nap(int ms)
{
	struct pollfd p = { .fd = isn_cl.stop_fd, .events = POLLIN };

	while (poll(&p, 1, ms) < 0 && errno == EINTR)
		;
	return p.revents ? -ECANCELED : 0;
}

int isn_cl_wait_msg(struct isn_hdr *h, const void **payload)
{
	struct pollfd p[2] = { { .fd = isn_cl.sock, .events = POLLIN },
			       { .fd = isn_cl.stop_fd, .events = POLLIN } };
	ssize_t n;
	int ret;

	for (;;) {
		ret = isn_rx_next(&isn_cl.rx, h, payload);
		if (ret)
			return ret;
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (p[1].revents)
			return -ECANCELED;
		n = isn_rx_read(&isn_cl.rx, isn_cl.sock);
		if (n == 0)
			return -EPIPE;
		if (n < 0 && n != -EAGAIN)
			return (int)n;
	}
}

static void fill_register(struct isn_m_register *m, bool rejoin)
{
	struct stat st;

	memset(m, 0, sizeof(*m));
	isn_strlcpy(m->job, isn_cl.job, sizeof(m->job));
	memcpy(m->token, isn_cl.token, ISN_TOKEN_LEN);
	isn_strlcpy(m->host, isn_cl.host, sizeof(m->host));
	m->pid = getpid();
	m->agent = isn_cl.agent;
	m->wake_fd = isn_cl.wake_rd;
	/* the pipe's inode changes when CRIU restores it */
	m->wake_ino = fstat(isn_cl.wake_rd, &st) ? 0 : st.st_ino;
	m->rank = rejoin ? (uint32_t)isn_cl.rank : ISN_RANK_NEW;
	/* the last checkpoint seen: a new daemon must not reuse its id */
	m->epoch = isn_cl.ckpt > isn_cl.epoch ? isn_cl.ckpt : isn_cl.epoch;
	if (rejoin)
		m->flags = ISN_REG_REJOIN |
			   (isn_cl.new_inc ? ISN_REG_NEW_INCARNATION : 0);
}

/* One attempt: flags >= 0, -EAGAIN with *@retry_ms, or -errno. */
static int register_once(bool rejoin, int *retry_ms)
{
	struct isn_m_register m;
	union {
		struct isn_m_registered ok;
		struct isn_m_retry retry;
		struct isn_m_error err;
	} r;
	const void *payload;
	struct isn_hdr h;
	int ret;

	isn_cl_close();
	isn_cl.sock = isn_connect(&isn_cl.addr);
	if (isn_cl.sock < 0) {
		ret = isn_cl.sock;
		isn_cl.sock = -1;
		*retry_ms = 200;
		return ret == -ENOENT || ret == -ECONNREFUSED ? -EAGAIN : ret;
	}
	fill_register(&m, rejoin);
	ret = isn_send_msg(isn_cl.sock, ISN_MSG_REGISTER, &m);
	if (!ret)
		ret = isn_cl_wait_msg(&h, &payload);
	if (ret < 0)
		goto fail;
	ret = isn_msg_decode(h.type, payload, h.len, &r);
	if (ret)
		goto fail;
	switch (h.type) {
	case ISN_MSG_REGISTERED:
		isn_cl.rank = (int)r.ok.rank;
		if (!rejoin)
			isn_cl.epoch = r.ok.epoch;
		return (int)r.ok.flags;
	case ISN_MSG_RETRY:
		*retry_ms = r.retry.ms ? (int)r.retry.ms : 100;
		ret = -EAGAIN;
		break;
	case ISN_MSG_ERROR:
		isn_cl_log("%s refused %s: %s", isn_cl.addr.text,
			   rejoin ? "to take us back" : "registration",
			   r.err.text);
		ret = r.err.code < 0 ? r.err.code : -EPROTO;
		break;
	default:
		ret = -EPROTO;
	}
fail:
	isn_cl_close();
	return ret;
}

int isn_cl_register(bool rejoin, int timeout_ms)
{
	uint64_t end = isn_now_us() + (uint64_t)timeout_ms * 1000;
	int ret, retry_ms = 100;

	for (;;) {
		ret = register_once(rejoin, &retry_ms);
		if (ret != -EAGAIN && ret != -EPIPE && ret != -ECONNRESET)
			return ret;
		if (isn_now_us() + (uint64_t)retry_ms * 1000 > end)
			return ret == -EAGAIN ? -ETIMEDOUT : ret;
		if (nap(retry_ms))
			return -ECANCELED;
	}
}

/* The coordinator went away: keep trying to get back in, quietly. */
static enum isn_cl_state reconnect(void)
{
	int delay = 200, ret;

	for (;;) {
		if (nap(delay))
			return ISN_CL_STOP;
		ret = isn_cl_register(true, 1000);
		if (ret >= 0)
			return ISN_CL_CONNECTED;
		if (ret == -ECANCELED)
			return ISN_CL_STOP;
		if (ret == -EACCES || ret == -EPROTONOSUPPORT ||
		    ret == -EPROTO) {
			isn_cl_log("giving up on the coordinator: %s",
				   strerror(-ret));
			return ISN_CL_STOP;
		}
		delay = delay < 5000 ? delay * 2 : 5000;
	}
}

static void *client_main(void *arg)
{
	enum isn_cl_state s = ISN_CL_CONNECTED;
	struct isn_m_bye bye = { 0 };

	(void)arg;
	while (s != ISN_CL_STOP) {
		if (s == ISN_CL_CONNECTED)
			s = isn_cl_serve();
		else if (s == ISN_CL_DETACHED)
			s = isn_cl_wait_wake();
		else
			s = reconnect();
	}
	if (isn_cl.sock >= 0)
		isn_send_msg(isn_cl.sock, ISN_MSG_BYE, &bye);
	isn_cl_close();
	return NULL;
}

static int env_ms(const char *name, int def_s)
{
	const char *v = getenv(name);
	double s = v && *v ? atof(v) : def_s;

	return s > 0 && s < 1e6 ? (int)(s * 1000) : def_s * 1000;
}

static int read_env(void)
{
	const char *coord = getenv("IBSNAP_COORD");
	const char *job = getenv("IBSNAP_JOB");
	const char *agent = getenv("IBSNAP_AGENT");
	int ret;

	ret = isn_addr_parse(coord, &isn_cl.addr);
	if (ret) {
		isn_cl_log("IBSNAP_COORD=%s: not an address", coord);
		return ret;
	}
	if (isn_token_parse(getenv("IBSNAP_TOKEN"), isn_cl.token)) {
		isn_cl_log("IBSNAP_TOKEN: missing or not 32 hex digits");
		return -EINVAL;
	}
	isn_strlcpy(isn_cl.job, job && *job ? job : "default",
		    sizeof(isn_cl.job));
	isn_cl.agent = agent ? strtoull(agent, NULL, 16) : 0;
	if (gethostname(isn_cl.host, sizeof(isn_cl.host)))
		strcpy(isn_cl.host, "localhost");
	isn_cl.host[sizeof(isn_cl.host) - 1] = '\0';
	isn_cl.reg_timeout_ms = env_ms("IBSNAP_COORD_TIMEOUT", 30);
	isn_cl.wake_timeout_ms = env_ms("IBSNAP_WAKE_TIMEOUT", 600);
	return 0;
}

static void close_fds(void)
{
	int *fds[] = { &isn_cl.sock, &isn_cl.stop_fd, &isn_cl.wake_rd,
		       &isn_cl.wake_wr };
	size_t i;

	for (i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

/* A fork() child must not keep its parent's connection open. */
static void atfork_child(void)
{
	close_fds();
	isn_cl.started = false;
	isn_cl.rank = -1;
	pthread_mutex_init(&isn_cl.lock, NULL);
}

static int start_locked(void)
{
	static bool atfork_done;
	int pfd[2], ret;
	sigset_t all, old;

	if (!getenv("IBSNAP_COORD"))
		return 0; /* not under ibsnap run */
	ret = read_env();
	if (ret)
		return ret;
	isn_rx_init(&isn_cl.rx, ISN_MSG_MAX);
	isn_cl.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (isn_cl.stop_fd < 0 || pipe2(pfd, O_CLOEXEC)) {
		ret = -errno;
		goto fail;
	}
	isn_cl.wake_rd = pfd[0];
	isn_cl.wake_wr = pfd[1];
	fcntl(isn_cl.wake_rd, F_SETFL, O_NONBLOCK);
	ret = isn_cl_register(false, isn_cl.reg_timeout_ms);
	if (ret < 0) {
		isn_cl_log("cannot register with %s: %s", isn_cl.addr.text,
			   strerror(-ret));
		goto fail;
	}
	/* the thread takes no signal meant for the application */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(&isn_cl.thread, NULL, client_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret)
		goto fail;
	if (!atfork_done && !pthread_atfork(NULL, NULL, atfork_child))
		atfork_done = true;
	isn_cl.started = true;
	return 0;
fail:
	close_fds();
	isn_rx_free(&isn_cl.rx);
	isn_cl.rank = -1;
	return ret;
}

int isn_coord_client_start(void)
{
	static bool tried;
	int ret = 0;

	pthread_mutex_lock(&isn_cl.lock);
	if (!tried) {
		tried = true;
		ret = start_locked();
	}
	pthread_mutex_unlock(&isn_cl.lock);
	return ret;
}

void isn_coord_client_stop(void)
{
	uint64_t one = 1;
	struct timespec ts;

	pthread_mutex_lock(&isn_cl.lock);
	if (isn_cl.started) {
		if (write(isn_cl.stop_fd, &one, sizeof(one)) < 0)
			isn_cl_log("stop: %m");
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 2;
		/* a handler stuck in the shim must not hang the exit */
		if (pthread_timedjoin_np(isn_cl.thread, NULL, &ts))
			pthread_detach(isn_cl.thread);
		else
			close_fds();
		isn_cl.started = false;
		isn_cl.rank = -1;
	}
	pthread_mutex_unlock(&isn_cl.lock);
}

int isn_coord_client_rank(void)
{
	return isn_cl.rank;
}
