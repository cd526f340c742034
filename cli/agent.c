/* SPDX-License-Identifier: MIT */
/*
 * The host agent: the part of ibsnap run / ibsnap restart that stays
 * outside the job.  One libev loop: the job's init (its exit is the
 * command's status), the signals to pass on, and the coordinator, which
 * asks for a CRIU dump (DUMP) and then for the image to be committed or
 * dropped and the job's processes woken (WAKE).  When the coordinator
 * goes away the job goes on; the agent wakes any process that waits for it
 * and reattaches when it can.
 */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "wake.h"

static struct {
	struct isn_agent_ctx *ax;
	struct ev_loop *loop;
	ev_io io;
	ev_child child;
	ev_child flush; /* the background copy of a staged image */
	ev_signal sigs[7];
	ev_timer retry;
	double backoff;
	/* the last DUMP (ckpt, pre-dump or not) and WAKE served: a repeat
	 * (tests: IBSNAP_COORD_FAULT dup) is not served twice */
	uint32_t dump_ckpt, dump_kind, wake_ckpt;
	bool woken; /* the WAKE of the checkpoint in progress came */
} ag;

static const int pass_sigs[] = { SIGINT,  SIGTERM, SIGHUP,  SIGQUIT,
				 SIGUSR1, SIGUSR2, SIGWINCH };

static void send_msg(uint16_t type, const void *m)
{
	if (ag.ax->sock >= 0 && isn_send_msg(ag.ax->sock, type, m))
		fprintf(stderr, "ibsnap: agent: lost the coordinator\n");
}

int isn_agent_open(struct isn_agent_ctx *ax, uint32_t flags, uint32_t nranks,
		   uint32_t ckpt)
{
	struct isn_m_job_open m = {
		.flags = flags, .nranks = nranks, .ckpt = ckpt, .agent = ax->id
	};
	/* an agent reattaching after losing the daemon is quiet; restart
	 * (RESTORE) says why the coordinator refused it */
	bool quiet = (flags & ISN_JOB_REATTACH) && !(flags & ISN_JOB_RESTORE);
	const char *who = quiet ? NULL : "ibsnap";
	union {
		struct isn_m_job job;
		struct isn_m_retry retry;
		struct isn_m_error err;
	} r;
	const void *payload;
	struct isn_hdr h;
	int tries, ret = -ETIMEDOUT;

	isn_strlcpy(m.job, ax->job, sizeof(m.job));
	isn_strlcpy(m.host, ax->host, sizeof(m.host));
	m.pid = getpid();
	if (ax->have_token) {
		memcpy(m.token, ax->token, ISN_TOKEN_LEN);
		m.flags |= ISN_JOB_TOKEN;
	}
	for (tries = 0; tries < 600; tries++) {
		ax->sock = isn_coord_dial(who, &ax->addr, ax->may_start);
		if (ax->sock < 0)
			return ax->sock;
		isn_rx_free(&ax->rx);
		isn_rx_init(&ax->rx, ISN_MSG_MAX);
		ret = isn_send_msg(ax->sock, ISN_MSG_JOB_OPEN, &m);
		if (!ret)
			ret = isn_coord_recv(ax->sock, &ax->rx, &h, &payload);
		if (ret > 0)
			ret = isn_msg_decode(h.type, payload, h.len, &r);
		if (!ret && h.type == ISN_MSG_JOB) {
			memcpy(ax->token, r.job.token, ISN_TOKEN_LEN);
			ax->have_token = true;
			ax->id = r.job.agent;
			return 0;
		}
		close(ax->sock);
		ax->sock = -1;
		if (!ret && h.type == ISN_MSG_RETRY) {
			usleep(r.retry.ms * 1000);
			continue;
		}
		if (!ret && h.type == ISN_MSG_ERROR &&
		    (flags & ISN_JOB_ASK_CKPT) && r.err.ext && r.err.ckpt) {
			ax->busy_ckpt = r.err.ckpt;
			isn_strlcpy(ax->busy_host, r.err.host,
				    sizeof(ax->busy_host));
			return -EBUSY;
		}
		if (!ret && h.type == ISN_MSG_ERROR) {
			if (who)
				fprintf(stderr, "ibsnap: %s: %s\n",
					ax->addr.text, r.err.text);
			return r.err.code < 0 ? r.err.code : -EPROTO;
		}
		return ret ? ret : -EPROTO;
	}
	return ret;
}

/* The checkpoint's processes of this tree: (rank, pid, wake fd) triples
 * and their wake pipes' inodes, (lo, hi) pairs. */
static void set_clients(struct isn_agent_ctx *ax, const struct isn_u32s *cl,
			const struct isn_u32s *inos)
{
	uint32_t i, n = cl->n / 3;

	free(ax->clients);
	free(ax->inos);
	ax->clients = calloc(3 * (size_t)n + 1, sizeof(*ax->clients));
	ax->inos = calloc((size_t)n + 1, sizeof(*ax->inos));
	ax->nclients = ax->clients && ax->inos ? n : 0;
	for (i = 0; i < ax->nclients; i++) {
		ax->clients[3 * i] = isn_u32s_at(cl, 3 * i);
		ax->clients[3 * i + 1] = isn_u32s_at(cl, 3 * i + 1);
		ax->clients[3 * i + 2] = isn_u32s_at(cl, 3 * i + 2);
		if (2 * i + 1 < inos->n)
			ax->inos[i] = isn_u32s_at(inos, 2 * i) |
				      (uint64_t)isn_u32s_at(inos, 2 * i + 1)
					      << 32;
	}
}

static void on_begin(struct isn_agent_ctx *ax, const struct isn_m_ckpt_begin *m)
{
	uint32_t i;

	set_clients(ax, &m->clients, &m->inos);
	/* a daemon that does not send them: the image names no trees */
	ax->nhost_trees = 0;
	for (i = 0; i + 1 < m->trees.n && ax->nhost_trees < ISN_HOST_TREES;
	     i += 2)
		ax->host_trees[ax->nhost_trees++] =
			isn_u32s_at(&m->trees, i) |
			(uint64_t)isn_u32s_at(&m->trees, i + 1) << 32;
	ax->in_ckpt = true;
	if (ax->ckpt != m->ckpt)
		ag.woken = false;
	ax->ckpt = m->ckpt;
	ax->ck_flags = m->flags;
	ax->nranks = m->nranks;
	/* staged: the dump goes to the stage, a copy to DIR afterwards */
	if (m->ext && m->stage[0] && !(m->flags & ISN_CK_NO_DUMP)) {
		isn_strlcpy(ax->dir, m->stage, sizeof(ax->dir));
		isn_strlcpy(ax->persist, m->dir, sizeof(ax->persist));
	} else {
		isn_strlcpy(ax->dir, m->dir, sizeof(ax->dir));
		ax->persist[0] = '\0';
	}
	/* several ibsnap run of a job on one host: an image each */
	snprintf(ax->hostdir, sizeof(ax->hostdir), "%s/%s", ax->dir, ax->host);
	snprintf(ax->tree, sizeof(ax->tree), "%016llx",
		 (unsigned long long)ax->id);
	snprintf(ax->tmp, sizeof(ax->tmp), "%s/.%s.tmp-%u", ax->hostdir,
		 ax->tree, ax->ckpt);
}

int isn_agent_arm_init(struct isn_agent_ctx *ax, bool on)
{
	const char *want = on ? ISN_INIT_ARMED : ISN_INIT_DISARMED;
	char path[64], comm[32];
	int i, fd;
	ssize_t n;

	if (kill(ax->init_pid, on ? ISN_SIG_ARM : ISN_SIG_DISARM))
		return -errno;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)ax->init_pid);
	for (i = 0; i < 500; i++) { /* its name says it is done (5 s at most) */
		fd = open(path, O_RDONLY | O_CLOEXEC);
		n = fd < 0 ? -1 : read(fd, comm, sizeof(comm) - 1);
		if (fd >= 0)
			close(fd);
		if (n > 0 && !strncmp(comm, want, strlen(want)) &&
		    comm[strlen(want)] == '\n')
			return 0;
		usleep(10000);
	}
	return -ETIMEDOUT;
}

static void on_dump(struct isn_agent_ctx *ax, const struct isn_m_dump *m)
{
	struct isn_m_dump_done d = { .ckpt = m->ckpt };
	uint32_t kind = 1 + !!(m->flags & ISN_CK_PREDUMP);
	uint64_t t0 = isn_now_us();

	if (ag.dump_ckpt == m->ckpt && ag.dump_kind == kind) {
		fprintf(stderr,
			"ibsnap: agent: DUMP of checkpoint %u again: "
			"ignored\n",
			m->ckpt);
		return;
	}
	ag.dump_ckpt = m->ckpt;
	ag.dump_kind = kind;
	if (!ax->in_ckpt || m->ckpt != ax->ckpt) {
		/* its CKPT_BEGIN was lost: the directory known is an older
		 * checkpoint's, whose image this would replace under the old
		 * id */
		d.status = -EPROTO;
		snprintf(d.text, sizeof(d.text),
			 "no CKPT_BEGIN came for checkpoint %u", m->ckpt);
	} else if (!(m->flags & ISN_CK_NO_DUMP)) {
		/* a restored init must not die with criu, its first parent */
		d.status = isn_agent_arm_init(ax, false);
		if (d.status)
			snprintf(d.text, sizeof(d.text),
				 "the job's init did not answer: %s",
				 strerror(-d.status));
		else if (m->flags & ISN_CK_PREDUMP) /* the job runs on */
			d.status = isn_criu_predump(ax, d.text, sizeof(d.text));
		else
			d.status = isn_criu_dump(ax, d.text, sizeof(d.text));
		isn_agent_arm_init(ax, true);
	}
	d.usec = isn_now_us() - t0;
	send_msg(ISN_MSG_DUMP_DONE, &d);
}

static void flush_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	(void)revents;
	ev_child_stop(loop, w);
	if (w->rpid == ag.ax->flush_pid)
		ag.ax->flush_pid = 0;
}

static void flush_abandon(struct isn_agent_ctx *ax)
{
	ev_child_stop(ag.loop, &ag.flush);
	isn_flush_abandon(ax);
}

static void on_wake(struct isn_agent_ctx *ax, const struct isn_m_wake *m)
{
	struct isn_m_wake_done d = { .ckpt = m->ckpt };
	uint32_t *ranks, *gone, i, n = 0;
	uint32_t image = m->flags & (ISN_WK_COMMIT | ISN_WK_ROLLBACK);
	bool flush = false;
	int ret;

	if (ag.woken && ag.wake_ckpt == m->ckpt) {
		fprintf(stderr,
			"ibsnap: agent: WAKE of checkpoint %u again: "
			"ignored\n",
			m->ckpt);
		return;
	}
	ag.woken = true;
	ag.wake_ckpt = m->ckpt;
	if (m->ckpt != ax->ckpt) {
		/* no CKPT_BEGIN came for it, so no dump (it failed): no image
		 * to commit or drop; the wake must name it, and the processes
		 * to wake are those the WAKE gives (a daemon that sends none:
		 * they wake at their own timeout, IBSNAP_WAKE_TIMEOUT) */
		ax->ckpt = m->ckpt;
		image = 0;
		if (m->ext)
			set_clients(ax, &m->clients, &m->inos);
	}
	if (image & ISN_WK_COMMIT) {
		/* a copy still running would put an older image into DIR
		 * after this one, or lose its source in the stage */
		flush_abandon(ax);
		ret = isn_image_commit(ax);
		if (ret)
			fprintf(stderr,
				"ibsnap: cannot move %s into place: %s\n",
				ax->tmp, strerror(-ret));
		flush = !ret && ax->persist[0];
	}
	if (image & ISN_WK_ROLLBACK)
		isn_image_discard(ax);
	ranks = calloc(m->ranks.n + 1, sizeof(*ranks));
	gone = calloc(m->ranks.n + 1, sizeof(*gone));
	if (ranks && gone && (m->flags & ISN_WK_KILL)) {
		kill(ax->init_pid, SIGKILL);
	} else if (ranks && gone) {
		for (i = 0; i < m->ranks.n; i++)
			ranks[i] = isn_u32s_at(&m->ranks, i);
		n = isn_agent_wake(
			ax, m->flags & ISN_WK_ROLLBACK ? ISN_WAKE_ROLLBACK : 0,
			ranks, m->ranks.n, gone);
	}
	d.gone = (struct isn_u32s){ .n = n, .v = gone };
	send_msg(ISN_MSG_WAKE_DONE, &d);
	free(ranks);
	free(gone);
	/* the job goes on (or ends): the copy is not part of the downtime */
	if (flush && isn_flush_start(ax))
		fprintf(stderr, "ibsnap: cannot start the copy to %s: %m\n",
			ax->persist);
	if (flush && ax->flush_pid > 0) {
		ev_child_set(&ag.flush, ax->flush_pid, 0);
		ev_child_start(ag.loop, &ag.flush);
	}
}

static void on_progress(struct isn_agent_ctx *ax,
			const struct isn_m_ckpt_progress *m)
{
	if (!ax->restart || ax->quiet)
		return;
	if (m->status)
		printf("  FAILED: %s\n", m->text);
	else
		printf("  %-10s %10.3f ms\n", isn_phase_name(m->phase),
		       m->usec / 1000.);
	fflush(stdout);
}

static void on_end(struct isn_agent_ctx *ax, const struct isn_m_ckpt_end *m)
{
	/* a checkpoint given up before its WAKE (a failed pre-dump here or
	 * on another host) leaves this agent's pre-dump behind */
	if (m->status && ax->in_ckpt)
		isn_image_discard(ax);
	/* ... and one whose WAKE never came after the DUMP (lost: the
	 * daemon timed out) leaves its processes waiting to be woken: they
	 * roll back alone and rejoin */
	if (m->status && ax->in_ckpt && !ag.woken && ag.dump_ckpt == ax->ckpt &&
	    ag.dump_kind == 1)
		isn_agent_wake(ax, ISN_WAKE_ROLLBACK, NULL, 0, NULL);
	ax->in_ckpt = false;
	if (ax->restart && !ax->quiet) {
		printf("%s (%.1f ms)\n", m->text, m->usec / 1000.);
		fflush(stdout);
	}
}

union agent_msg {
	struct isn_m_ckpt_begin begin;
	struct isn_m_dump dump;
	struct isn_m_wake wake;
	struct isn_m_ckpt_progress progress;
	struct isn_m_ckpt_end end;
	struct isn_m_job_end job_end;
	struct isn_m_error err;
};

static void dispatch(struct isn_agent_ctx *ax, const struct isn_hdr *h,
		     const void *payload)
{
	union agent_msg m;

	if (isn_msg_decode(h->type, payload, h->len, &m))
		return;
	switch (h->type) {
	case ISN_MSG_CKPT_BEGIN:
		on_begin(ax, &m.begin);
		break;
	case ISN_MSG_DUMP:
		on_dump(ax, &m.dump);
		break;
	case ISN_MSG_WAKE:
		on_wake(ax, &m.wake);
		break;
	case ISN_MSG_CKPT_PROGRESS:
		on_progress(ax, &m.progress);
		break;
	case ISN_MSG_CKPT_END:
		on_end(ax, &m.end);
		break;
	case ISN_MSG_JOB_END:
		if (ax->exited) {
			ax->status = m.job_end.status;
			ev_break(ag.loop, EVBREAK_ALL);
		}
		break;
	case ISN_MSG_ERROR:
		fprintf(stderr, "ibsnap: coordinator: %s\n", m.err.text);
		break;
	}
}

static void lost_coordinator(struct isn_agent_ctx *ax)
{
	ev_io_stop(ag.loop, &ag.io);
	close(ax->sock);
	ax->sock = -1;
	if (ax->in_ckpt) {
		/* whoever waits for a wake would wait for ever */
		isn_agent_wake(ax, ISN_WAKE_LOST, NULL, 0, NULL);
		isn_image_discard(ax);
		ax->in_ckpt = false;
	}
	if (ax->exited) {
		ev_break(ag.loop, EVBREAK_ALL);
		return;
	}
	ag.backoff = 0.2;
	ev_timer_set(&ag.retry, ag.backoff, 0.);
	ev_timer_start(ag.loop, &ag.retry);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct isn_agent_ctx *ax = ag.ax;
	const void *payload;
	struct isn_hdr h;
	ssize_t n;
	int ret = 0;

	(void)loop;
	(void)w;
	(void)revents;
	n = isn_rx_read(&ax->rx, ax->sock);
	if (n == 0 || (n < 0 && n != -EAGAIN)) {
		lost_coordinator(ax);
		return;
	}
	while (ax->sock >= 0 && (ret = isn_rx_next(&ax->rx, &h, &payload)) == 1)
		dispatch(ax, &h, payload);
	if (ax->sock >= 0 && ret < 0)
		lost_coordinator(ax);
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct isn_agent_ctx *ax = ag.ax;

	(void)revents;
	if (!isn_agent_open(ax, ISN_JOB_REATTACH, 0, ax->ckpt)) {
		ev_io_set(&ag.io, ax->sock, EV_READ);
		ev_io_start(loop, &ag.io);
		return;
	}
	ag.backoff = ag.backoff < 5 ? ag.backoff * 2 : 5;
	ev_timer_set(w, ag.backoff, 0.);
	ev_timer_start(loop, w);
}

static void child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	struct isn_agent_ctx *ax = ag.ax;
	struct isn_m_exit m;

	(void)revents;
	if (WIFSTOPPED(w->rstatus) || WIFCONTINUED(w->rstatus))
		return;
	ev_child_stop(loop, w);
	ax->exited = true;
	ax->status = WIFEXITED(w->rstatus) ? WEXITSTATUS(w->rstatus) :
					     128 + WTERMSIG(w->rstatus);
	m.status = ax->status;
	send_msg(ISN_MSG_EXIT, &m);
	/* ibsnap restart waits for the whole job (JOB_END) */
	if (!ax->restart || ax->sock < 0)
		ev_break(loop, EVBREAK_ALL);
}

static void sig_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)revents;
	if (!ag.ax->exited)
		kill(ag.ax->init_pid, w->signum);
}

int isn_agent_loop(struct isn_agent_ctx *ax)
{
	size_t i;

	ag.ax = ax;
	ag.loop = ev_default_loop(EVFLAG_AUTO);
	ev_child_init(&ag.child, child_cb, ax->init_pid, 0);
	ev_child_start(ag.loop, &ag.child);
	ev_child_init(&ag.flush, flush_cb, 0, 0);
	for (i = 0; i < sizeof(pass_sigs) / sizeof(pass_sigs[0]); i++) {
		ev_signal_init(&ag.sigs[i], sig_cb, pass_sigs[i]);
		ev_signal_start(ag.loop, &ag.sigs[i]);
	}
	ev_timer_init(&ag.retry, retry_cb, 1., 0.);
	ev_io_init(&ag.io, io_cb, ax->sock, EV_READ);
	if (ax->sock >= 0)
		ev_io_start(ag.loop, &ag.io);
	signal(SIGPIPE, SIG_IGN);
	ev_run(ag.loop, 0);
	/* the job ended (--stop, say): its last image must reach DIR */
	isn_flush_wait(ax);
	if (ax->sock >= 0)
		close(ax->sock);
	isn_rx_free(&ax->rx);
	free(ax->clients);
	free(ax->inos);
	return ax->status;
}
