/* SPDX-License-Identifier: MIT */
/*
 * ibsnapd's messages: registration of processes and agents, status, and
 * the dispatch of everything else to the checkpoint (d_ckpt.c).
 *
 * Trust: a Unix peer with the daemon's uid may open an existing job and
 * learn its token; anyone else (TCP) must present the job's token.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"

static bool token_ok(struct isn_conn *c, struct isn_job *j,
		     const uint8_t *token, bool have)
{
	if (have)
		return isn_token_eq(j->token, token);
	return c->trusted;
}

static int send_retry(struct isn_conn *c, uint32_t ms, const char *why)
{
	struct isn_m_retry r = { .ms = ms };

	isn_strlcpy(r.text, why, sizeof(r.text));
	isn_conn_send(c, ISN_MSG_RETRY, &r);
	return -EAGAIN;
}

static int on_register(struct isn_conn *c, const struct isn_m_register *m)
{
	struct isn_m_registered r = { 0 };
	struct isn_job *j = isn_job_find(c->d, m->job);
	bool rejoin = m->flags & ISN_REG_REJOIN, created = false;
	struct isn_proc *p = NULL;
	int flags = 0;

	if (!m->job[0])
		return isn_conn_error(c, -EINVAL, "no job name");
	if (!j && !(j = isn_job_new(c->d, m->job, m->token)))
		return isn_conn_error(c, -ENOMEM, "out of memory");
	if (!isn_token_eq(j->token, m->token))
		return isn_conn_error(c, -EACCES,
				      "token mismatch for job '%s' (pid %u "
				      "on %s)",
				      j->name, m->pid, m->host);
	if (rejoin) {
		p = m->rank < j->nslots ? j->procs[m->rank] : NULL;
		if (p && p->conn && p->state == ISN_P_DETACHING) {
			/* woken before its old connection's end reached us */
			struct isn_conn *old = p->conn;

			isn_ck_conn_closed(p);
			isn_conn_kill(old);
		}
		if (p && p->conn)
			return isn_conn_error(c, -EEXIST,
					      "rank %u of job '%s' is already "
					      "connected (pid %u on %s)",
					      p->rank, j->name, p->pid,
					      p->host);
		if (!p) {
			p = isn_job_proc_new(j, m->rank);
			created = true;
		}
	} else if (j->ck) {
		return send_retry(c, 200, "a checkpoint is in progress");
	} else {
		p = isn_job_proc_new(j, j->next_rank);
		created = true;
	}
	if (!p)
		return isn_conn_error(c, -EINVAL, "bad rank %u", m->rank);
	p->pid = m->pid;
	isn_strlcpy(p->host, m->host, sizeof(p->host));
	p->agent_id = m->agent;
	p->wake_fd = m->wake_fd;
	p->wake_ino = m->wake_ino;
	if (rejoin) {
		p->epoch = m->epoch;
		/* checkpoint ids stay unique across daemons */
		if (j->epoch < m->epoch && !j->ck)
			j->epoch = m->epoch;
		flags = isn_ck_rejoin(j, p, created);
		if (flags < 0) {
			if (created)
				isn_job_proc_remove(p);
			return send_retry(c, 200,
					  "a checkpoint is in progress");
		}
	}
	c->kind = ISN_CONN_PROC;
	c->proc = p;
	p->conn = c;
	p->state = ISN_P_LIVE;
	r.rank = p->rank;
	r.epoch = j->epoch;
	r.flags = flags;
	isn_conn_send(c, ISN_MSG_REGISTERED, &r);
	isn_d_dbg(c->d, "job '%s': rank %u pid %u on %s %s", j->name, p->rank,
		  p->pid, p->host, rejoin ? "rejoined" : "registered");
	if (flags & ISN_RG_DRIVEN)
		isn_ck_kick(j);
	return 0;
}

/*
 * A restore of @m's checkpoint cannot be opened: the job runs (or takes a
 * checkpoint), or it is being restored from another checkpoint.  In that
 * case an agent that asks (ISN_JOB_ASK_CKPT) learns which checkpoint and
 * from which host (ERROR's extension 1): restart then takes that one if
 * its host has it whole, else says what to do.
 */
static int restore_refused(struct isn_conn *c, struct isn_job *j,
			   const struct isn_m_job_open *m, int code)
{
	struct isn_m_error e = { .code = code };
	const struct isn_ckpt *ck = j->ck;

	if (code != -EBUSY)
		return isn_conn_error(c, code, "out of memory");
	if (!ck || !ck->restore)
		return isn_conn_error(c, code,
				      "job '%s' is running: cannot restore "
				      "checkpoint %u into it",
				      j->name, m->ckpt);
	if (!(m->flags & ISN_JOB_ASK_CKPT))
		return isn_conn_error(c, code,
				      "job '%s' is being restored from "
				      "checkpoint %u (started from host %s): "
				      "cannot restore checkpoint %u into it",
				      j->name, ck->id, ck->from, m->ckpt);
	e.ext = ISN_EXT_1;
	e.ckpt = ck->id;
	isn_strlcpy(e.host, ck->from, sizeof(e.host));
	snprintf(e.text, sizeof(e.text),
		 "job '%s' is being restored from checkpoint %u (started from "
		 "host %s), not %u",
		 j->name, ck->id, ck->from, m->ckpt);
	return isn_conn_error_msg(c, &e);
}

static int on_job_open(struct isn_conn *c, const struct isn_m_job_open *m)
{
	struct isn_m_job r = { 0 };
	struct isn_job *j = isn_job_find(c->d, m->job);
	bool have = m->flags & ISN_JOB_TOKEN;
	uint8_t tok[ISN_TOKEN_LEN];
	struct isn_agent *a;
	int ret;

	if (!m->job[0])
		return isn_conn_error(c, -EINVAL, "no job name");
	if ((m->flags & ISN_JOB_RESTORE) && !have)
		return isn_conn_error(c, -EINVAL, "restore needs the token");
	if (!j) {
		if (!have && isn_token_new(tok))
			return isn_conn_error(c, -EIO, "getrandom: no token");
		j = isn_job_new(c->d, m->job, have ? m->token : tok);
		if (!j)
			return isn_conn_error(c, -ENOMEM, "out of memory");
	} else if (!token_ok(c, j, m->token, have)) {
		return isn_conn_error(c, -EACCES,
				      have ? "token mismatch for job '%s'" :
					     "job '%s' exists: its token is "
					     "required (IBSNAP_TOKEN)",
				      j->name);
	}
	if (m->flags & ISN_JOB_RESTORE) {
		ret = isn_ck_restore_open(j, m);
		if (ret)
			return restore_refused(c, j, m, ret);
	} else if (j->ck && !j->ck->restore) {
		return send_retry(c, 200, "a checkpoint is in progress");
	} else if (j->epoch < m->ckpt) {
		j->epoch = m->ckpt; /* an agent back from an older daemon */
	}
	a = (m->flags & ISN_JOB_REATTACH) && m->agent ?
		    isn_job_agent(j, m->agent) :
		    NULL;
	if (a && a->conn)
		return isn_conn_error(c, -EEXIST, "agent already attached");
	if (!a) {
		a = calloc(1, sizeof(*a));
		if (!a)
			return isn_conn_error(c, -ENOMEM, "out of memory");
		a->job = j;
		a->id = (m->flags & ISN_JOB_REATTACH) && m->agent ?
				m->agent :
				isn_job_agent_id();
		a->next = j->agents;
		j->agents = a;
		j->nagents++;
	}
	a->pid = m->pid;
	isn_strlcpy(a->host, m->host, sizeof(a->host));
	a->conn = c;
	c->kind = ISN_CONN_AGENT;
	c->agent = a;
	isn_strlcpy(r.job, j->name, sizeof(r.job));
	memcpy(r.token, j->token, ISN_TOKEN_LEN);
	r.agent = a->id;
	r.epoch = j->epoch;
	isn_conn_send(c, ISN_MSG_JOB, &r);
	isn_d_log(c->d, "job '%s': agent pid %u on %s joined%s", j->name,
		  a->pid, a->host,
		  (m->flags & ISN_JOB_RESTORE) ? " to restore" : "");
	if (m->flags & ISN_JOB_RESTORE)
		isn_ck_kick(j);
	return 0;
}

/* The job a controller names, or the only one; NULL after an ERROR. */
static struct isn_job *ctl_job(struct isn_conn *c, const char *name,
			       const uint8_t *token, bool have)
{
	struct isn_job *j;

	if (!name[0]) {
		if (c->d->njobs != 1) {
			isn_conn_error(c, -ENOENT,
				       c->d->njobs ? "several jobs: name one "
						     "(--job)" :
						     "no job");
			return NULL;
		}
		j = c->d->jobs;
	} else if (!(j = isn_job_find(c->d, name))) {
		isn_conn_error(c, -ENOENT, "no job '%s'", name);
		return NULL;
	}
	if (!token_ok(c, j, token, have)) {
		isn_conn_error(c, -EACCES, "job '%s': token required", j->name);
		return NULL;
	}
	return j;
}

static void status_job(struct isn_conn *c, struct isn_job *j, bool ext)
{
	struct isn_m_status_job m = { 0 };
	struct isn_m_status_proc pm;
	struct isn_proc *p;
	uint32_t r;

	isn_strlcpy(m.job, j->name, sizeof(m.job));
	m.nprocs = j->nprocs;
	m.nagents = j->nagents;
	m.phase = j->ck ? isn_ck_step_phase(j->ck->step) : ISN_PHASE_NONE;
	m.ckpt = j->ck ? j->ck->id : j->last_id;
	m.last_status = j->last_status;
	m.last_time = j->last_time;
	m.last_usec = j->last_usec;
	isn_strlcpy(m.last_dir, j->last_dir, sizeof(m.last_dir));
	isn_strlcpy(m.last_text, j->last_text, sizeof(m.last_text));
	if (ext) { /* only to those that read it */
		m.ext = ISN_EXT_1;
		m.last_downtime = j->last_downtime;
	}
	isn_conn_send(c, ISN_MSG_STATUS_JOB, &m);
	for (r = 0; r < j->nslots; r++) {
		if (!(p = j->procs[r]))
			continue;
		memset(&pm, 0, sizeof(pm));
		pm.rank = p->rank;
		pm.pid = p->pid;
		isn_strlcpy(pm.host, p->host, sizeof(pm.host));
		pm.phase = p->phase;
		pm.state = p->state == ISN_P_DETACHED ? ISN_PS_DETACHED :
			   p->member		      ? ISN_PS_IN_CKPT :
							ISN_PS_RUNNING;
		isn_conn_send(c, ISN_MSG_STATUS_PROC, &pm);
	}
}

static void on_status(struct isn_conn *c, const struct isn_m_status_req *m)
{
	struct isn_m_status_end e = { .daemon_pid = getpid() };
	struct isn_job *j;

	c->kind = ISN_CONN_CTL;
	if (m->job[0] || !c->trusted) {
		j = ctl_job(c, m->job, m->token, m->flags & ISN_ST_TOKEN);
		if (!j)
			return;
		status_job(c, j, m->flags & ISN_ST_EXT);
		e.njobs = 1;
	} else {
		for (j = c->d->jobs; j; j = j->next, e.njobs++)
			status_job(c, j, m->flags & ISN_ST_EXT);
	}
	isn_conn_send(c, ISN_MSG_STATUS_END, &e);
}

static void on_agent_exit(struct isn_agent *a, const struct isn_m_exit *m)
{
	struct isn_job *j = a->job;
	uint32_t r;

	a->exited = true;
	a->status = m->status;
	if (!j->exit_status)
		j->exit_status = m->status;
	isn_d_log(j->d, "job '%s': the tree of agent pid %u on %s exited (%d)",
		  j->name, a->pid, a->host, m->status);
	/* its processes that were waiting to be woken are gone with it */
	for (r = 0; r < j->nslots; r++) {
		struct isn_proc *p = j->procs[r];

		if (p && !p->conn && p->agent_id == a->id)
			isn_ck_proc_lost(p, "ended with its process tree");
	}
	isn_job_end_check(j);
}

union isn_any_msg {
	struct isn_m_register reg;
	struct isn_m_ack ack;
	struct isn_m_put put;
	struct isn_m_putk putk;
	struct isn_m_get get;
	struct isn_m_bye bye;
	struct isn_m_job_open job_open;
	struct isn_m_dump_done dump_done;
	struct isn_m_wake_done wake_done;
	struct isn_m_exit exit;
	struct isn_m_ckpt_start ckpt_start;
	struct isn_m_status_req status_req;
};

static void dispatch_new(struct isn_conn *c, uint16_t type,
			 const union isn_any_msg *m)
{
	struct isn_job *j;

	switch (type) {
	case ISN_MSG_REGISTER:
		/* a job made for a refused registration goes again */
		if (on_register(c, &m->reg) &&
		    (j = isn_job_find(c->d, m->reg.job)))
			isn_job_maybe_free(j);
		return;
	case ISN_MSG_JOB_OPEN:
		if (on_job_open(c, &m->job_open) &&
		    (j = isn_job_find(c->d, m->job_open.job)))
			isn_job_maybe_free(j);
		return;
	case ISN_MSG_STATUS_REQ:
		on_status(c, &m->status_req);
		return;
	case ISN_MSG_CKPT_START:
		j = ctl_job(c, m->ckpt_start.job, m->ckpt_start.token,
			    m->ckpt_start.flags & ISN_CK_TOKEN);
		if (j)
			isn_ck_start(c, j, &m->ckpt_start);
		return;
	}
	isn_conn_error(c, -EPROTO, "unexpected %s", isn_msg_name(type));
}

void isn_d_dispatch(struct isn_conn *c, const struct isn_hdr *h,
		    const void *payload)
{
	union isn_any_msg m;
	int ret = isn_msg_decode(h->type, payload, h->len, &m);

	if (ret) {
		isn_conn_error(c, -EPROTO,
			       ret == -EINVAL ? "unknown message type %u" :
						"malformed message of type %u",
			       h->type);
		return;
	}
	if (c->kind == ISN_CONN_NEW) {
		dispatch_new(c, h->type, &m);
		return;
	}
	if (c->kind == ISN_CONN_PROC && c->proc) {
		struct isn_job *j = c->proc->job;

		switch (h->type) {
		case ISN_MSG_ACK:
			isn_ck_ack(c->proc, &m.ack);
			return;
		case ISN_MSG_PUT:
			isn_ck_put(c->proc, &m.put);
			return;
		case ISN_MSG_PUTK:
			isn_ck_putk(c->proc, &m.putk);
			return;
		case ISN_MSG_GET:
			isn_ck_get(c->proc, &m.get);
			return;
		case ISN_MSG_BYE:
			isn_ck_proc_lost(c->proc, "left the job");
			c->kind = ISN_CONN_NEW;
			isn_job_maybe_free(j);
			return;
		}
	}
	if (c->kind == ISN_CONN_AGENT && c->agent) {
		switch (h->type) {
		case ISN_MSG_DUMP_DONE:
			isn_ck_dump_done(c->agent, &m.dump_done);
			return;
		case ISN_MSG_WAKE_DONE:
			isn_ck_wake_done(c->agent, &m.wake_done);
			return;
		case ISN_MSG_EXIT:
			on_agent_exit(c->agent, &m.exit);
			return;
		}
	}
	isn_conn_error(c, -EPROTO, "unexpected %s", isn_msg_name(h->type));
}

void isn_d_conn_lost(struct isn_conn *c)
{
	struct isn_job *j;

	if (c->proc) {
		j = c->proc->job;
		isn_ck_conn_closed(c->proc);
		c->proc = NULL;
		isn_job_maybe_free(j);
	}
	if (c->agent) {
		struct isn_agent *a = c->agent;

		j = a->job;
		a->conn = NULL;
		c->agent = NULL;
		isn_ck_agent_lost(a);
		if (!a->exited)
			isn_d_log(c->d, "job '%s': agent pid %u on %s lost",
				  j->name, a->pid, a->host);
		isn_job_agent_remove(a);
		if (j->nagents)
			isn_job_end_check(j);
		isn_job_maybe_free(j);
	}
	if (c->ctl_job) {
		if (c->ctl_job->ck && c->ctl_job->ck->ctl == c)
			c->ctl_job->ck->ctl = NULL;
		c->ctl_job = NULL;
	}
}
