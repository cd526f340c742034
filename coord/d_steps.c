/* SPDX-License-Identifier: MIT */
/* The checkpoint's steps: start, enter, barrier check, timeouts, end. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"
#include "net.h"

static void step_enter(struct isn_ckpt *ck, enum isn_step s, uint64_t now);

bool isn_ck_stopping(const struct isn_ckpt *ck)
{
	return (ck->flags & ISN_CK_STOP) && !ck->failed;
}

static bool any_detached(struct isn_ckpt *ck)
{
	struct isn_job *j = ck->job;
	uint32_t r;

	for (r = 0; r < j->nslots; r++)
		if (j->procs[r] && j->procs[r]->member &&
		    j->procs[r]->state != ISN_P_LIVE)
			return true;
	return false;
}

static enum isn_step next_step(struct isn_ckpt *ck)
{
	switch (ck->step) {
	case ISN_ST_PREDUMP: /* nothing was stopped yet */
		return ck->failed ? ISN_ST_DONE : ISN_ST_QUIESCE;
	case ISN_ST_QUIESCE:
		return ck->failed ? ISN_ST_RESUME : ISN_ST_DRAIN;
	case ISN_ST_DRAIN:
		return ck->failed ? ISN_ST_RESUME : ISN_ST_RELEASE;
	case ISN_ST_RELEASE:
		if (!ck->failed)
			return ISN_ST_DUMP;
		return any_detached(ck) ? ISN_ST_WAKE : ISN_ST_REBUILD;
	case ISN_ST_DUMP:
		return ISN_ST_WAKE;
	case ISN_ST_WAKE:
		return isn_ck_stopping(ck) ? ISN_ST_DONE : ISN_ST_REBUILD;
	case ISN_ST_REBUILD:
		return ISN_ST_RESUME;
	default:
		return ISN_ST_DONE;
	}
}

static void end_text(struct isn_ckpt *ck, char *out, size_t len)
{
	const char *what = ck->restore ? "restart of checkpoint" : "checkpoint";
	const char *stop = ck->flags & ISN_CK_STOP ? "; the job was stopped" :
						     "";

	if (ck->failed && ck->committed && !ck->wake_lost)
		snprintf(out, len,
			 "%s %u failed: %.300s; its image in %.100s was "
			 "committed before; the job goes on",
			 what, ck->id, ck->why,
			 ck->stage[0] ? ck->stage : ck->dir);
	else if (ck->failed)
		snprintf(out, len, "%s %u failed: %.400s; the job goes on",
			 what, ck->id, ck->why);
	else if (ck->restore)
		snprintf(out, len, "%s %u done: %u processes rejoined", what,
			 ck->id, ck->members);
	else if (ck->flags & ISN_CK_NO_DUMP)
		snprintf(out, len, "%s %u done (no dump)%s", what, ck->id,
			 stop);
	else if (ck->stage[0])
		snprintf(out, len,
			 "%s %u written to %.200s, copied to %.200s in the "
			 "background%s",
			 what, ck->id, ck->stage, ck->dir, stop);
	else
		snprintf(out, len, "%s %u written to %.400s%s", what, ck->id,
			 ck->dir, stop);
}

static void ck_end(struct isn_ckpt *ck)
{
	struct isn_job *j = ck->job;
	struct isn_m_ckpt_end m = { .ckpt = ck->id };
	struct isn_agent *a;
	uint32_t r;

	m.status = ck->failed ? ck->status : 0;
	m.usec = isn_now_us() - ck->t0;
	end_text(ck, m.text, sizeof(m.text));
	isn_d_log(j->d, "job '%s': %s (%.1f ms)", j->name, m.text,
		  m.usec / 1000.);
	j->last_id = ck->id;
	j->last_status = m.status;
	j->last_time = (uint64_t)time(NULL);
	j->last_usec = m.usec;
	j->last_downtime = ck->downtime;
	isn_strlcpy(j->last_dir, ck->committed ? ck->dir : "",
		    sizeof(j->last_dir));
	isn_strlcpy(j->last_text, m.text, sizeof(j->last_text));
	isn_conn_send(ck->ctl, ISN_MSG_CKPT_END, &m);
	for (a = j->agents; a; a = a->next) {
		isn_conn_send(a->conn, ISN_MSG_CKPT_END, &m);
		a->waiting = false;
	}
	for (r = 0; r < j->nslots; r++) {
		struct isn_proc *p = j->procs[r];

		if (!p)
			continue;
		if (p->state != ISN_P_LIVE) { /* stopped with the job */
			isn_job_proc_remove(p);
			continue;
		}
		p->member = false;
		p->epoch = ck->id;
		free(p->blob);
		p->blob = NULL;
	}
	if (ck->ctl)
		ck->ctl->ctl_job = NULL;
	j->ck = NULL;
	isn_ck_free(ck);
}

void isn_ck_check(struct isn_ckpt *ck)
{
	enum isn_step next;
	uint64_t now;
	bool done;

	switch (ck->step) {
	case ISN_ST_PREDUMP:
	case ISN_ST_DUMP:
		done = !ck->agents_wait;
		break;
	case ISN_ST_WAKE:
		done = !ck->agents_wait && !ck->rejoin_wait;
		break;
	case ISN_ST_DONE:
		return;
	default:
		done = ck->arrived >= ck->members &&
		       (ck->step != ISN_ST_RELEASE || !ck->detaching);
	}
	if (!done)
		return;
	/* one clock reading ends a step and starts the next: the steps'
	 * times add up to the downtime exactly */
	now = isn_now_us();
	isn_ck_progress(ck, 0, now - ck->t_step, "");
	if (ck->step == ISN_ST_RESUME && !ck->restore)
		ck->downtime = now - ck->t_quiesce;
	next = next_step(ck);
	if (next == ISN_ST_DONE)
		ck_end(ck);
	else
		step_enter(ck, next, now);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

static void timer_restart(struct isn_ckpt *ck)
{
	struct isn_d *d = ck->job->d;
	bool long_wait = ck->step == ISN_ST_DUMP ||
			 ck->step == ISN_ST_PREDUMP ||
			 (ck->restore && ck->step == ISN_ST_WAKE);

	ck->timeout_s = long_wait ? d->o.dump_timeout_s : d->o.phase_timeout_s;
	ev_timer_stop(d->loop, &ck->timer);
	ev_timer_init(&ck->timer, timer_cb, ck->timeout_s, 0.);
	ck->timer.data = ck;
	ev_timer_start(d->loop, &ck->timer);
}

static void send_phase(struct isn_ckpt *ck)
{
	struct isn_m_phase m = { .seq = ck->seq, .ckpt = ck->id };
	struct isn_job *j = ck->job;
	struct isn_wbuf w = { 0 };
	struct isn_sbuf *b;
	uint32_t r;

	m.phase = isn_ck_step_phase(ck->step);
	if (ck->failed)
		m.flags |= ISN_PH_ROLLBACK;
	if (ck->step == ISN_ST_REBUILD && ck->restore)
		m.flags |= ISN_PH_NEW_INCARNATION;
	if (ck->step == ISN_ST_RELEASE)
		ck->released = true;
	isn_msg_encode(&w, ISN_MSG_PHASE, &m);
	b = isn_sbuf_from_wbuf(&w);
	isn_wbuf_free(&w);
	if (!b) {
		isn_ck_failf(ck, -ENOMEM, "out of memory");
		return;
	}
	for (r = 0; r < j->nslots; r++)
		if (j->procs[r] && j->procs[r]->member)
			isn_conn_send_sbuf(j->procs[r]->conn, b);
	isn_sbuf_put(b);
}

/* DUMP to every agent; in PREDUMP with ISN_CK_PREDUMP: pre-dump only.
 * The final dump of a pre-dumped checkpoint has ISN_CK_PREDUMPED. */
static void send_dump(struct isn_ckpt *ck, uint32_t predump)
{
	struct isn_m_dump m = { .ckpt = ck->id, .flags = ck->flags };

	if (predump)
		m.flags = (m.flags & ~ISN_CK_PREDUMPED) | ISN_CK_PREDUMP;
	struct isn_agent *a;

	for (a = ck->job->agents; a; a = a->next) {
		if (!a->conn || a->exited)
			continue;
		isn_conn_send(a->conn, ISN_MSG_DUMP, &m);
		a->waiting = true;
	}
}

/*
 * Entry @i of the process lists CKPT_BEGIN and WAKE carry: (rank, pid, wake
 * fd) in @cl, the wake pipe's inode in @ino (low, high words).
 */
static void wake_entry(const struct isn_proc *p, uint32_t i, uint32_t *cl,
		       uint32_t *ino)
{
	cl[3 * i] = p->rank;
	cl[3 * i + 1] = p->pid;
	cl[3 * i + 2] = (uint32_t)p->wake_fd;
	ino[2 * i] = (uint32_t)p->wake_ino;
	ino[2 * i + 1] = (uint32_t)(p->wake_ino >> 32);
}

/* WAKE to every agent, with the ranks of its processes that detached. */
static void send_wake(struct isn_ckpt *ck, uint32_t flags)
{
	struct isn_m_wake m = { .ckpt = ck->id, .flags = flags };
	struct isn_job *j = ck->job;
	struct isn_agent *a;
	uint32_t *ranks, *cl, *ino, r, n;

	ranks = calloc(j->nprocs + 1, sizeof(*ranks));
	cl = calloc(3 * (size_t)j->nprocs + 1, sizeof(*cl));
	ino = calloc(2 * (size_t)j->nprocs + 1, sizeof(*ino));
	if (!ranks || !cl || !ino) {
		free(ranks);
		free(cl);
		free(ino);
		isn_ck_failf(ck, -ENOMEM, "out of memory");
		return;
	}
	for (a = j->agents; a; a = a->next) {
		if (!a->conn || a->exited)
			continue;
		/* its processes, to an agent that may have missed CKPT_BEGIN
		 * (one that dumped had it; an older agent reads no tail) */
		m.ext = a->dumped || ck->restore ? 0 : ISN_EXT_1;
		for (r = 0, n = 0; r < j->nslots; r++) {
			struct isn_proc *p = j->procs[r];

			if (!p || !p->member || p->agent_id != a->id ||
			    p->state == ISN_P_LIVE)
				continue;
			wake_entry(p, n, cl, ino);
			ranks[n++] = r;
		}
		m.ranks = (struct isn_u32s){ .n = n, .v = ranks };
		m.clients = (struct isn_u32s){ .n = 3 * n, .v = cl };
		m.inos = (struct isn_u32s){ .n = 2 * n, .v = ino };
		isn_conn_send(a->conn, ISN_MSG_WAKE, &m);
		a->waiting = true;
	}
	free(ranks);
	free(cl);
	free(ino);
}

static void step_enter(struct isn_ckpt *ck, enum isn_step s, uint64_t now)
{
	uint32_t flags;

	isn_ck_xchg_free(ck); /* a sparse exchange's blobs lived to here */
	ck->step = s;
	ck->seq++;
	ck->t_step = now;
	if (s == ISN_ST_QUIESCE) /* the downtime starts */
		ck->t_quiesce = now;
	timer_restart(ck);
	isn_d_dbg(ck->job->d, "job '%s': checkpoint %u: %s%s", ck->job->name,
		  ck->id, isn_ck_step_name(s), ck->failed ? " (rollback)" : "");
	if (isn_ck_client_step(s)) {
		send_phase(ck);
	} else if (s == ISN_ST_DUMP || s == ISN_ST_PREDUMP) {
		send_dump(ck, s == ISN_ST_PREDUMP ? ISN_CK_PREDUMP : 0);
	} else {
		flags = ck->failed ? ISN_WK_ROLLBACK : 0;
		if (!ck->failed && !(ck->flags & ISN_CK_NO_DUMP)) {
			flags |= ISN_WK_COMMIT;
			ck->committed = true;
		}
		if (isn_ck_stopping(ck))
			flags |= ISN_WK_KILL;
		send_wake(ck, flags);
	}
	isn_ck_recount(ck);
	isn_ck_check(ck);
}

/* A member that holds up the current step. */
static bool overdue(struct isn_ckpt *ck, struct isn_proc *p)
{
	if (isn_ck_client_step(ck->step))
		return p->acked_seq != ck->seq || p->state == ISN_P_DETACHING;
	return ck->step == ISN_ST_WAKE && p->state != ISN_P_LIVE &&
	       !isn_ck_stopping(ck);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct isn_ckpt *ck = w->data;
	struct isn_job *j = ck->job;
	double secs = ck->timeout_s;
	struct isn_agent *a;
	char how[96];
	uint32_t r;

	(void)loop;
	(void)revents;
	snprintf(how, sizeof(how), "did not finish %s within %.0f s",
		 isn_ck_step_name(ck->step), secs);
	for (a = j->agents; a; a = a->next) {
		if (a->waiting && ck->step == ISN_ST_WAKE)
			ck->wake_lost = true;
		if (a->waiting)
			isn_ck_failf(ck, -ETIMEDOUT,
				     "the host agent on %s (pid %u) %s",
				     a->host, a->pid, how);
		a->waiting = false;
	}
	for (r = 0; r < j->nslots; r++) {
		struct isn_proc *p = j->procs[r];

		if (!p || !p->member || !overdue(ck, p))
			continue;
		if (p->conn)
			isn_conn_kill(p->conn);
		isn_ck_proc_drop(p, how);
	}
	if (ck->restore && ck->step == ISN_ST_WAKE &&
	    ck->rejoined < ck->nranks) {
		isn_ck_failf(ck, -ETIMEDOUT,
			     "%u of %u ranks did not rejoin "
			     "within %.0f s",
			     ck->nranks - ck->rejoined, ck->nranks, secs);
		ck->nranks = ck->rejoined;
	}
	isn_ck_recount(ck);
	isn_ck_check(ck);
}

static void send_begin(struct isn_ckpt *ck, struct isn_agent *a)
{
	struct isn_m_ckpt_begin m = { .ckpt = ck->id, .flags = ck->flags };
	struct isn_job *j = ck->job;
	uint32_t *cl, *ino, *trees, r, n = 0;
	struct isn_agent *b;

	cl = calloc(3 * (size_t)j->nprocs + 1, sizeof(*cl));
	ino = calloc(2 * (size_t)j->nprocs + 1, sizeof(*ino));
	for (r = 0; cl && ino && r < j->nslots; r++) {
		struct isn_proc *p = j->procs[r];

		if (!p || p->agent_id != a->id)
			continue;
		wake_entry(p, n++, cl, ino);
	}
	m.nranks = j->nprocs;
	isn_strlcpy(m.dir, ck->dir, sizeof(m.dir));
	if (ck->stage[0]) {
		m.ext = ISN_EXT_1;
		isn_strlcpy(m.stage, ck->stage, sizeof(m.stage));
	}
	m.clients = (struct isn_u32s){ .n = 3 * n, .v = cl };
	m.inos = (struct isn_u32s){ .n = 2 * n, .v = ino };
	/* the trees of this host that take part: those sent CKPT_BEGIN */
	for (b = j->agents, n = 0; b; b = b->next)
		n += b->conn && !b->exited && !strcmp(b->host, a->host);
	trees = calloc(2 * (size_t)n + 1, sizeof(*trees));
	for (b = j->agents, n = 0; trees && b; b = b->next) {
		if (!b->conn || b->exited || strcmp(b->host, a->host))
			continue;
		trees[2 * n] = (uint32_t)b->id;
		trees[2 * n + 1] = (uint32_t)(b->id >> 32);
		n++;
	}
	m.trees = (struct isn_u32s){ .n = 2 * n, .v = trees };
	/* a tail only where it says something (an older agent reads none):
	 * a tree alone on its host is taken alone anyway */
	if (n > 1)
		m.ext = ISN_EXT_1;
	a->dumped = false;
	if (cl && ino && trees)
		isn_conn_send(a->conn, ISN_MSG_CKPT_BEGIN, &m);
	else
		isn_ck_failf(ck, -ENOMEM, "out of memory");
	free(cl);
	free(ino);
	free(trees);
}

/* 0, or an ERROR was sent. */
static int start_check(struct isn_conn *c, struct isn_job *j,
		       const struct isn_m_ckpt_start *m)
{
	bool dump = !(m->flags & ISN_CK_NO_DUMP);
	uint32_t r;

	if (j->ck)
		return isn_conn_error(c, -EBUSY,
				      "a checkpoint of job '%s' is in progress "
				      "(%u, %s)",
				      j->name, j->ck->id,
				      isn_ck_step_name(j->ck->step));
	if (dump && m->dir[0] != '/')
		return isn_conn_error(c, -EINVAL,
				      "a checkpoint needs an absolute "
				      "directory (--dir), or --no-dump");
	if (dump && m->stage[0] && m->stage[0] != '/')
		return isn_conn_error(c, -EINVAL,
				      "the stage (--stage) must be an "
				      "absolute directory");
	if ((dump || (m->flags & ISN_CK_STOP)) && !j->nagents)
		return isn_conn_error(c, -EINVAL,
				      "job '%s' has no host agent (it was not "
				      "started by ibsnap run): use --no-dump",
				      j->name);
	for (r = 0; (dump || (m->flags & ISN_CK_STOP)) && r < j->nslots; r++) {
		struct isn_proc *p = j->procs[r];
		struct isn_agent *a = p ? isn_job_agent(j, p->agent_id) : NULL;

		if (p && (!a || !a->conn))
			return isn_conn_error(c, -EINVAL,
					      "rank %u (pid %u on %s) has no "
					      "host agent (not "
					      "started by ibsnap run, or its "
					      "agent is gone): "
					      "it can be neither dumped nor "
					      "stopped; use "
					      "--no-dump without --stop",
					      p->rank, p->pid, p->host);
	}
	return 0;
}

void isn_ck_start(struct isn_conn *c, struct isn_job *j,
		  const struct isn_m_ckpt_start *m)
{
	struct isn_ckpt *ck;
	struct isn_agent *a;
	uint32_t r;

	if (start_check(c, j, m))
		return;
	ck = calloc(1, sizeof(*ck));
	if (!ck) {
		isn_conn_error(c, -ENOMEM, "out of memory");
		return;
	}
	ck->job = j;
	ck->id = ++j->epoch;
	ck->flags = m->flags & (ISN_CK_NO_DUMP | ISN_CK_STOP);
	/* --predump: the final dump only adds what changed since */
	if ((m->flags & ISN_CK_PREDUMP) && !(ck->flags & ISN_CK_NO_DUMP))
		ck->flags |= ISN_CK_PREDUMPED;
	isn_strlcpy(ck->dir, m->dir, sizeof(ck->dir));
	if (!(ck->flags & ISN_CK_NO_DUMP))
		isn_strlcpy(ck->stage, m->stage, sizeof(ck->stage));
	ck->ctl = c;
	c->kind = ISN_CONN_CTL;
	c->ctl_job = j;
	ck->t0 = isn_now_us();
	for (r = 0; r < j->nslots; r++) {
		if (!j->procs[r])
			continue;
		j->procs[r]->member = true;
		j->procs[r]->acked_seq = j->procs[r]->put_seq = 0;
	}
	j->ck = ck;
	isn_d_log(j->d,
		  "job '%s': checkpoint %u: %u processes, %u agents%s%s%s%s%s",
		  j->name, ck->id, j->nprocs, j->nagents,
		  ck->flags & ISN_CK_NO_DUMP ? ", no dump" : "",
		  ck->flags & ISN_CK_PREDUMPED ? ", pre-dump" : "",
		  ck->flags & ISN_CK_STOP ? ", stop" : "",
		  ck->stage[0] ? ", staged in " : "", ck->stage);
	for (a = j->agents; a; a = a->next)
		if (a->conn && !a->exited)
			send_begin(ck, a);
	step_enter(ck,
		   ck->flags & ISN_CK_PREDUMPED ? ISN_ST_PREDUMP :
						  ISN_ST_QUIESCE,
		   isn_now_us());
}

int isn_ck_restore_open(struct isn_job *j, const struct isn_m_job_open *m)
{
	struct isn_ckpt *ck = j->ck;

	if (ck)
		return ck->restore && ck->id == m->ckpt ? 0 : -EBUSY;
	if (j->nprocs)
		return -EBUSY;
	ck = calloc(1, sizeof(*ck));
	if (!ck)
		return -ENOMEM;
	ck->job = j;
	ck->id = m->ckpt;
	ck->restore = true;
	ck->nranks = m->nranks;
	isn_strlcpy(ck->from, m->host, sizeof(ck->from));
	ck->step = ISN_ST_WAKE;
	ck->seq = 1;
	ck->t0 = ck->t_step = isn_now_us();
	if (j->epoch < m->ckpt)
		j->epoch = m->ckpt;
	j->ck = ck;
	timer_restart(ck);
	isn_ck_recount(ck);
	isn_d_log(j->d,
		  "job '%s': restoring checkpoint %u (from %s): %u ranks to "
		  "rejoin",
		  j->name, ck->id, ck->from, ck->nranks);
	return 0;
}

void isn_ck_free(struct isn_ckpt *ck)
{
	ev_timer_stop(ck->job->d->loop, &ck->timer);
	isn_ck_xchg_free(ck);
	free(ck);
}
