/* SPDX-License-Identifier: MIT */
/*
 * The checkpoint, as ibsnapd drives it (docs/checkpoint.md):
 *
 *   [PREDUMP ->] QUIESCE -> DRAIN -> RELEASE -> DUMP -> WAKE -> REBUILD ->
 *   RESUME
 *
 * Client steps end when every member has acknowledged (a counter, not a
 * list); RELEASE also waits until every process with a host agent has
 * closed its connection (DETACH).  DUMP waits for every agent's CRIU dump,
 * WAKE for every agent to commit or drop its image and wake its processes,
 * and for the woken processes to reconnect.  A failure anywhere records
 * the first reason and turns the rest into a rollback: RESUME before
 * RELEASE, WAKE (if anything detached) + REBUILD + RESUME after it.
 * A restore (ibsnap restart) starts at WAKE with the ranks to expect.
 * PREDUMP (--predump) runs while the job still runs: every agent pre-dumps
 * its tree (DUMP with ISN_CK_PREDUMP); a failure there ends the checkpoint
 * before anything was stopped.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"
#include "net.h"

uint16_t isn_ck_step_phase(enum isn_step s)
{
	static const uint16_t map[] = {
		[ISN_ST_PREDUMP] = ISN_STEP_PREDUMP,
		[ISN_ST_QUIESCE] = ISN_PHASE_QUIESCE,
		[ISN_ST_DRAIN] = ISN_PHASE_DRAIN,
		[ISN_ST_RELEASE] = ISN_PHASE_RELEASE,
		[ISN_ST_DUMP] = ISN_PHASE_DUMP,
		[ISN_ST_WAKE] = ISN_STEP_REJOIN,
		[ISN_ST_REBUILD] = ISN_PHASE_REBUILD,
		[ISN_ST_RESUME] = ISN_PHASE_RESUME,
		[ISN_ST_DONE] = ISN_PHASE_NONE,
	};

	return map[s];
}

const char *isn_ck_step_name(enum isn_step s)
{
	return isn_phase_name(isn_ck_step_phase(s));
}

bool isn_ck_client_step(enum isn_step s)
{
	return s != ISN_ST_PREDUMP && s != ISN_ST_DUMP && s != ISN_ST_WAKE &&
	       s != ISN_ST_DONE;
}

/* Progress goes to the controller and to every agent (restart prints it). */
void isn_ck_progress(struct isn_ckpt *ck, int32_t status, uint64_t usec,
		     const char *text)
{
	struct isn_m_ckpt_progress m = { .ckpt = ck->id,
					 .status = status,
					 .usec = usec };
	struct isn_agent *a;

	m.phase = isn_ck_step_phase(ck->step);
	isn_strlcpy(m.text, text, sizeof(m.text));
	isn_conn_send(ck->ctl, ISN_MSG_CKPT_PROGRESS, &m);
	for (a = ck->job->agents; a; a = a->next)
		isn_conn_send(a->conn, ISN_MSG_CKPT_PROGRESS, &m);
}

/*
 * Answer every member still waiting in this step's exchange with XFAIL: a
 * put before the fence, or a sparse member that may still GET.
 */
static void xchg_abort(struct isn_ckpt *ck)
{
	struct isn_m_xfail x = { .seq = ck->seq, .code = ck->status };
	bool fenced = ck->fence_seq == ck->seq;
	struct isn_job *j = ck->job;
	uint32_t r;

	ck->xfail_seq = ck->seq;
	isn_strlcpy(x.text, ck->why, sizeof(x.text));
	for (r = 0; r < j->nslots; r++) {
		struct isn_proc *p = j->procs[r];

		if (!p || !p->member || p->put_seq != ck->seq || !p->blob)
			continue;
		if (!fenced || (p->sparse && p->acked_seq != ck->seq))
			isn_conn_send(p->conn, ISN_MSG_XFAIL, &x);
	}
	isn_ck_xchg_free(ck);
}

void isn_ck_failf(struct isn_ckpt *ck, int code, const char *fmt, ...)
{
	char why[ISN_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	isn_d_log(ck->job->d, "job '%s': checkpoint %u: %s", ck->job->name,
		  ck->id, why);
	if (!ck->failed) {
		ck->failed = true;
		ck->status = code ? code : -EIO;
		isn_strlcpy(ck->why, why, sizeof(ck->why));
		isn_ck_progress(ck, ck->status, 0, why);
	}
	xchg_abort(ck);
}

/* Recount every barrier after a process or an agent went away. */
void isn_ck_recount(struct isn_ckpt *ck)
{
	struct isn_job *j = ck->job;
	struct isn_agent *a;
	uint32_t r;

	ck->members = ck->arrived = ck->puts = ck->detaching = 0;
	ck->rejoin_wait = ck->agents_wait = 0;
	for (r = 0; r < j->nslots; r++) {
		struct isn_proc *p = j->procs[r];

		if (!p || !p->member)
			continue;
		ck->members++;
		ck->arrived += p->acked_seq == ck->seq;
		ck->puts += p->put_seq == ck->seq;
		ck->detaching += p->state == ISN_P_DETACHING;
		ck->rejoin_wait += p->state != ISN_P_LIVE;
	}
	if (ck->restore && ck->step == ISN_ST_WAKE)
		ck->rejoin_wait = ck->nranks > ck->rejoined ?
					  ck->nranks - ck->rejoined :
					  0;
	if (ck->step != ISN_ST_WAKE || isn_ck_stopping(ck))
		ck->rejoin_wait = 0;
	for (a = j->agents; a; a = a->next)
		ck->agents_wait += a->waiting;
}

/* Remove a process; a member fails the checkpoint.  No step advances. */
void isn_ck_proc_drop(struct isn_proc *p, const char *how)
{
	struct isn_ckpt *ck = p->job->ck;

	if (!ck || !p->member) {
		isn_job_proc_remove(p);
		return;
	}
	/* --stop: once the image is committed the trees are killed on
	 * purpose, one agent maybe before another answered the WAKE */
	if (ck->step == ISN_ST_WAKE && ck->committed && isn_ck_stopping(ck)) {
		isn_job_proc_remove(p);
		isn_ck_recount(ck);
		return;
	}
	isn_ck_failf(ck, -ECONNRESET, "rank %u (pid %u on %s) %s during %s",
		     p->rank, p->pid, p->host, how, isn_ck_step_name(ck->step));
	isn_job_proc_remove(p);
	isn_ck_recount(ck);
}

void isn_ck_proc_lost(struct isn_proc *p, const char *how)
{
	struct isn_ckpt *ck = p->job->ck;

	isn_ck_proc_drop(p, how);
	if (ck)
		isn_ck_check(ck);
}

void isn_ck_conn_closed(struct isn_proc *p)
{
	struct isn_ckpt *ck = p->job->ck;

	if (ck && p->state == ISN_P_DETACHING) {
		p->state = ISN_P_DETACHED;
		p->conn = NULL;
		ck->detaching--;
		isn_ck_check(ck);
		return;
	}
	isn_ck_proc_lost(p, "lost its connection");
}

static bool any_agent(const struct isn_job *j)
{
	const struct isn_agent *a;

	for (a = j->agents; a; a = a->next)
		if (a->conn && !a->exited)
			return true;
	return false;
}

void isn_ck_agent_lost(struct isn_agent *a)
{
	struct isn_ckpt *ck = a->job->ck;
	struct isn_job *j = a->job;
	uint32_t r;

	if (!ck || a->exited)
		return;
	if (a->waiting && ck->step == ISN_ST_WAKE)
		ck->wake_lost = true;
	a->waiting = false;
	isn_ck_failf(ck, -ECONNRESET, "the host agent on %s (pid %u) was lost",
		     a->host, a->pid);
	for (r = 0; r < j->nslots; r++) {
		struct isn_proc *p = j->procs[r];

		if (p && p->member && !p->conn && p->agent_id == a->id)
			isn_job_proc_remove(p); /* nobody can wake it now */
	}
	/* a restore with no restart left: no more ranks can come back, the
	 * wait for them ends now, not at the dump timeout (a new restart,
	 * of another checkpoint say, would be refused until then) */
	if (ck->restore && ck->step == ISN_ST_WAKE && !any_agent(j))
		ck->nranks = ck->rejoined;
	isn_ck_recount(ck);
	isn_ck_check(ck);
}

static struct isn_agent *proc_agent(struct isn_proc *p)
{
	struct isn_agent *a = p->agent_id ? isn_job_agent(p->job, p->agent_id) :
					    NULL;

	return a && a->conn && !a->exited ? a : NULL;
}

void isn_ck_ack(struct isn_proc *p, const struct isn_m_ack *m)
{
	struct isn_ckpt *ck = p->job->ck;
	struct isn_m_detach det;

	if (!ck || !p->member || m->seq != ck->seq || p->acked_seq == ck->seq ||
	    !isn_ck_client_step(ck->step))
		return; /* an ack of a step that was given up */
	p->acked_seq = m->seq;
	p->phase = m->phase;
	ck->arrived++;
	if (m->status) {
		isn_ck_failf(ck, m->status,
			     "rank %u (pid %u on %s): %s failed: %s", p->rank,
			     p->pid, p->host, isn_ck_step_name(ck->step),
			     m->text[0] ? m->text : "error");
	} else if (ck->step == ISN_ST_RELEASE && !ck->failed && proc_agent(p)) {
		det.ckpt = ck->id;
		isn_conn_send(p->conn, ISN_MSG_DETACH, &det);
		p->state = ISN_P_DETACHING;
		ck->detaching++;
	}
	isn_ck_check(ck);
}

static void getq_drop(struct isn_ckpt *ck);

void isn_ck_xchg_free(struct isn_ckpt *ck)
{
	struct isn_job *j = ck->job;
	uint32_t r;

	for (r = 0; r < j->nslots; r++) {
		struct isn_proc *p = j->procs[r];

		if (!p)
			continue;
		free(p->blob);
		p->blob = NULL;
		p->keyed = p->sparse = false;
	}
	free(ck->kidx);
	ck->kidx = NULL;
	ck->kmask = ck->nkeys = 0;
	getq_drop(ck);
}

static uint32_t key_hash(uint32_t key)
{
	return key * 2654435761u;
}

static struct isn_krec *kidx_find(struct isn_ckpt *ck, uint32_t key)
{
	uint32_t i;

	if (!ck->kidx)
		return NULL;
	for (i = key_hash(key) & ck->kmask; ck->kidx[i].data;
	     i = (i + 1) & ck->kmask)
		if (ck->kidx[i].key == key)
			return &ck->kidx[i];
	return NULL;
}

/* Index every keyed member's records: 0, or the exchange failed. */
static int kidx_build(struct isn_ckpt *ck, uint32_t nrecs)
{
	struct isn_job *j = ck->job;
	struct isn_all_src rec;
	uint32_t r, cap = 16, i;
	size_t off;

	while (cap < 2 * (uint64_t)nrecs)
		cap *= 2;
	ck->kidx = calloc(cap, sizeof(*ck->kidx));
	if (!ck->kidx) {
		isn_ck_failf(ck, -ENOMEM, "out of memory for the exchange");
		return -ENOMEM;
	}
	ck->kmask = cap - 1;
	for (r = 0; r < j->nslots; r++) {
		struct isn_proc *p = j->procs[r];

		if (!p || !p->member || p->put_seq != ck->seq || !p->keyed)
			continue;
		for (off = 0;
		     isn_recs_next(p->blob, p->blob_len, &off, &rec) > 0;) {
			struct isn_krec *k = kidx_find(ck, rec.rank);

			if (k) {
				isn_ck_failf(ck, -EEXIST,
					     "exchange key %u put twice (rank "
					     "%u)",
					     rec.rank, p->rank);
				return -EEXIST;
			}
			/* an empty record is found but holds no data */
			for (i = key_hash(rec.rank) & ck->kmask;
			     ck->kidx[i].data; i = (i + 1) & ck->kmask)
				;
			ck->kidx[i] = (struct isn_krec){ rec.rank, rec.len,
							 rec.data ? rec.data :
								    p->blob };
			ck->nkeys++;
		}
	}
	return 0;
}

/* ALL for those that did not ask for sparse: plain blobs and records. */
static struct isn_sbuf *all_build(struct isn_ckpt *ck, uint32_t nsrc)
{
	struct isn_job *j = ck->job;
	struct isn_all_src *src, rec;
	struct isn_wbuf w = { 0 };
	struct isn_sbuf *b = NULL;
	uint32_t r, n = 0;
	size_t off;

	src = calloc(nsrc ? nsrc : 1, sizeof(*src));
	for (r = 0; src && r < j->nslots; r++) {
		struct isn_proc *p = j->procs[r];

		if (!p || !p->member || p->put_seq != ck->seq || !p->blob)
			continue;
		if (!p->keyed) {
			/* an empty blob says nothing: left out, so that an
			 * exchange nobody uses costs O(N), not O(N^2) */
			if (p->blob_len)
				src[n++] = (struct isn_all_src){ r, p->blob_len,
								 p->blob };
			continue;
		}
		for (off = 0;
		     isn_recs_next(p->blob, p->blob_len, &off, &rec) > 0;)
			if (rec.len)
				src[n++] = rec;
	}
	if (src && !isn_all_encode(&w, ck->seq, src, n))
		b = isn_sbuf_from_wbuf(&w);
	isn_wbuf_free(&w);
	free(src);
	if (!b)
		isn_ck_failf(ck, -ENOMEM, "out of memory for the exchange");
	return b;
}

static void xchg_complete(struct isn_ckpt *ck)
{
	struct isn_job *j = ck->job;
	uint32_t r, nsrc = 0, nrecs = 0, nall = 0, nsparse = 0;
	struct isn_m_fenced f = { .seq = ck->seq };
	struct isn_sbuf *b = NULL;

	for (r = 0; r < j->nslots; r++) {
		struct isn_proc *p = j->procs[r];

		if (!p || !p->member || p->put_seq != ck->seq || !p->blob)
			continue;
		nsrc += p->keyed ? p->nrecs : 1;
		nrecs += p->keyed ? p->nrecs : 0;
		nsparse += p->sparse;
		nall += !p->sparse;
	}
	if (nrecs && kidx_build(ck, nrecs))
		return;
	if (nall && !(b = all_build(ck, nsrc)))
		return;
	ck->fence_seq = ck->seq;
	f.nkeys = ck->nkeys;
	for (r = 0; r < j->nslots; r++) {
		struct isn_proc *p = j->procs[r];

		if (!p || !p->member || p->put_seq != ck->seq || !p->blob)
			continue;
		if (p->sparse)
			isn_conn_send(p->conn, ISN_MSG_FENCED, &f);
		else
			isn_conn_send_sbuf(p->conn, b);
	}
	isn_d_dbg(j->d,
		  "job '%s': exchange of %s: %u blobs, %u keyed records, "
		  "%zu bytes sent to each of %u, %u sparse",
		  j->name, isn_ck_step_name(ck->step), nsrc, nrecs,
		  b ? b->len : 0, nall, nsparse);
	isn_sbuf_put(b);
	if (!nsparse)
		isn_ck_xchg_free(ck);
}

/* 0, or an XFAIL for this put was filled in @x. */
static int put_check(struct isn_proc *p, uint32_t seq, struct isn_m_xfail *x)
{
	struct isn_ckpt *ck = p->job->ck;

	if (!ck || !p->member || seq != ck->seq ||
	    (ck->step != ISN_ST_DRAIN && ck->step != ISN_ST_REBUILD)) {
		isn_strlcpy(x->text, "no exchange in progress",
			    sizeof(x->text));
	} else if (ck->xfail_seq == ck->seq) {
		x->code = ck->status;
		isn_strlcpy(x->text, ck->why, sizeof(x->text));
	} else if (p->put_seq == ck->seq) {
		x->code = -EALREADY;
		isn_strlcpy(x->text, "one put per phase", sizeof(x->text));
	} else {
		return 0;
	}
	return -1;
}

static bool put_keep(struct isn_proc *p, const struct isn_bytes *blob,
		     struct isn_m_xfail *x)
{
	if (!(p->blob = malloc(blob->len ? blob->len : 1))) {
		x->code = -ENOMEM;
		isn_strlcpy(x->text, "out of memory", sizeof(x->text));
		return false;
	}
	memcpy(p->blob, blob->data, blob->len);
	p->blob_len = blob->len;
	p->put_seq = p->job->ck->seq;
	return true;
}

/*
 * The put this member made in this step, again, before the fence: a repeat
 * on the wire (tests: IBSNAP_COORD_FAULT), not a second put: ignored.
 * After the fence its blob is gone and a repeat gets XFAIL, which the
 * client, past its exchange, ignores.
 */
static bool put_repeat(struct isn_proc *p, uint32_t seq,
		       const struct isn_bytes *b)
{
	struct isn_ckpt *ck = p->job->ck;

	return ck && p->member && seq == ck->seq && p->put_seq == ck->seq &&
	       p->blob && p->blob_len == b->len &&
	       (!b->len || !memcmp(p->blob, b->data, b->len));
}

void isn_ck_put(struct isn_proc *p, const struct isn_m_put *m)
{
	struct isn_ckpt *ck = p->job->ck;
	struct isn_m_xfail x = { .seq = m->seq, .code = -EINVAL };

	if (put_repeat(p, m->seq, &m->blob))
		return;
	if (!put_check(p, m->seq, &x) && put_keep(p, &m->blob, &x)) {
		p->keyed = p->sparse = false;
		if (++ck->puts >= ck->members)
			xchg_complete(ck);
		return;
	}
	isn_conn_send(p->conn, ISN_MSG_XFAIL, &x);
}

/* PUTK's records are well formed: n of them, nothing after. */
static int recs_check(const struct isn_bytes *b, uint32_t *n_p)
{
	struct isn_all_src rec;
	uint32_t n, i;
	size_t off = 0;

	if (isn_recs_count(b->data, b->len, &n))
		return -EPROTO;
	for (i = 0; i < n; i++)
		if (isn_recs_next(b->data, b->len, &off, &rec) != 1)
			return -EPROTO;
	if ((n ? off : 4) != b->len)
		return -EPROTO;
	*n_p = n;
	return 0;
}

void isn_ck_putk(struct isn_proc *p, const struct isn_m_putk *m)
{
	struct isn_ckpt *ck = p->job->ck;
	struct isn_m_xfail x = { .seq = m->seq, .code = -EINVAL };
	uint32_t n = 0;

	if (put_repeat(p, m->seq, &m->recs))
		return;
	if (put_check(p, m->seq, &x)) {
		/* x is filled */
	} else if (recs_check(&m->recs, &n)) {
		x.code = -EPROTO;
		isn_strlcpy(x.text, "malformed records", sizeof(x.text));
	} else if (put_keep(p, &m->recs, &x)) {
		p->keyed = true;
		p->sparse = m->flags & ISN_PK_SPARSE;
		p->nrecs = n;
		if (++ck->puts >= ck->members)
			xchg_complete(ck);
		return;
	}
	isn_conn_send(p->conn, ISN_MSG_XFAIL, &x);
}

/* PART for @keys (little-endian u32s, a GET's); 0 or -errno. */
static int get_serve(struct isn_ckpt *ck, struct isn_proc *p,
		     const struct isn_u32s *keys)
{
	struct isn_all_src *src;
	struct isn_wbuf w = { 0 };
	struct isn_sbuf *b = NULL;
	uint32_t i, n = 0;
	int ret;

	src = calloc(keys->n ? keys->n : 1, sizeof(*src));
	if (!src)
		return -ENOMEM;
	for (i = 0; i < keys->n; i++) {
		struct isn_krec *k = kidx_find(ck, isn_u32s_at(keys, i));

		if (k)
			src[n++] =
				(struct isn_all_src){ k->key, k->len, k->data };
	}
	ret = isn_recs_msg_encode(&w, ISN_MSG_PART, ck->seq, src, n);
	free(src);
	if (!ret && !(b = isn_sbuf_from_wbuf(&w)))
		ret = -ENOMEM;
	isn_wbuf_free(&w);
	if (ret)
		return ret;
	isn_conn_send_sbuf(p->conn, b);
	isn_sbuf_put(b);
	return 0;
}

static void get_fail(struct isn_proc *p, uint32_t seq, int code,
		     const char *text)
{
	struct isn_m_xfail x = { .seq = seq, .code = code };

	isn_strlcpy(x.text, text, sizeof(x.text));
	isn_conn_send(p->conn, ISN_MSG_XFAIL, &x);
}

static void getq_drop(struct isn_ckpt *ck)
{
	struct isn_proc *p;

	while ((p = ck->getq_head)) {
		ck->getq_head = p->get_next;
		free(p->get_keys);
		p->get_keys = NULL;
		p->get_next = NULL;
		p->get_queued = false;
		ck->job->d->gets_deferred--;
	}
	ck->getq_tail = NULL;
}

/*
 * A GET is answered at once while the daemon's queued output is under
 * ISN_OQ_BUDGET; past it, it waits (in order) until connections drain:
 * replies are built as they can be sent, so the daemon's memory stays
 * bounded however many hosts ask at the same time.
 */
void isn_ck_get(struct isn_proc *p, const struct isn_m_get *m)
{
	struct isn_ckpt *ck = p->job->ck;
	struct isn_d *d = p->job->d;
	int ret;

	if (!ck || !p->member || m->seq != ck->seq)
		return get_fail(p, m->seq, -EINVAL, "no exchange in progress");
	if (ck->xfail_seq == ck->seq)
		return get_fail(p, m->seq, ck->status, ck->why);
	if (ck->fence_seq != ck->seq || !p->sparse || p->acked_seq == ck->seq ||
	    p->get_queued)
		return get_fail(p, m->seq, -EINVAL,
				"GET before FENCED, after the ack, before "
				"the last GET's answer, or without a "
				"sparse PUTK");
	if (d->oq_total < ISN_OQ_BUDGET && !ck->getq_head) {
		ret = get_serve(ck, p, &m->keys);
		if (ret)
			get_fail(p, m->seq, ret, "cannot build the reply");
		return;
	}
	p->get_keys = malloc(4 * (size_t)m->keys.n + 1);
	if (!p->get_keys)
		return get_fail(p, m->seq, -ENOMEM, "out of memory");
	memcpy(p->get_keys, m->keys.raw, 4 * (size_t)m->keys.n);
	p->get_n = m->keys.n;
	p->get_queued = true;
	p->get_next = NULL;
	if (ck->getq_tail)
		ck->getq_tail->get_next = p;
	else
		ck->getq_head = p;
	ck->getq_tail = p;
	d->gets_deferred++;
}

void isn_ck_gets_resume(struct isn_d *d)
{
	struct isn_job *j;
	struct isn_proc *p;
	int ret;

	if (d->gets_serving)
		return; /* a reply's own flush */
	d->gets_serving = true;
	for (j = d->jobs; j && d->oq_total < ISN_OQ_BUDGET; j = j->next) {
		struct isn_ckpt *ck = j->ck;

		while (ck && (p = ck->getq_head) &&
		       d->oq_total < ISN_OQ_BUDGET) {
			struct isn_u32s keys = {
				.n = p->get_n,
				.raw = (const uint8_t *)p->get_keys
			};

			ck->getq_head = p->get_next;
			if (!ck->getq_head)
				ck->getq_tail = NULL;
			d->gets_deferred--;
			ret = get_serve(ck, p, &keys);
			free(p->get_keys);
			p->get_keys = NULL;
			p->get_next = NULL;
			p->get_queued = false;
			if (ret)
				get_fail(p, ck->seq, ret,
					 "cannot build the reply");
		}
	}
	d->gets_serving = false;
}

void isn_ck_dump_done(struct isn_agent *a, const struct isn_m_dump_done *m)
{
	struct isn_ckpt *ck = a->job->ck;

	if (!ck || m->ckpt != ck->id || !a->waiting ||
	    (ck->step != ISN_ST_DUMP && ck->step != ISN_ST_PREDUMP))
		return;
	a->waiting = false;
	ck->agents_wait--;
	a->dumped = !m->status && ck->step == ISN_ST_DUMP;
	if (m->status)
		isn_ck_failf(ck, m->status, "the %s on %s failed: %s",
			     ck->step == ISN_ST_PREDUMP ? "pre-dump" : "dump",
			     a->host, m->text);
	isn_ck_check(ck);
}

void isn_ck_wake_done(struct isn_agent *a, const struct isn_m_wake_done *m)
{
	struct isn_ckpt *ck = a->job->ck;
	struct isn_job *j = a->job;
	uint32_t i, r;

	if (!ck || m->ckpt != ck->id || ck->step != ISN_ST_WAKE || !a->waiting)
		return;
	a->waiting = false;
	ck->agents_wait--;
	for (i = 0; i < m->gone.n; i++) {
		r = isn_u32s_at(&m->gone, i);
		if (r < j->nslots && j->procs[r] && !j->procs[r]->conn)
			isn_ck_proc_drop(j->procs[r], "was gone when woken");
	}
	isn_ck_check(ck);
}

int isn_ck_rejoin(struct isn_job *j, struct isn_proc *p, bool created)
{
	struct isn_ckpt *ck = j->ck;

	if (!ck)
		return 0;
	if (ck->restore && created && ck->step == ISN_ST_WAKE) {
		p->member = true;
		ck->members++;
		ck->rejoined++;
		if (ck->rejoin_wait)
			ck->rejoin_wait--;
		return ISN_RG_DRIVEN;
	}
	if (created || !p->member || ck->step != ISN_ST_WAKE)
		return -EAGAIN; /* not now: after the checkpoint */
	if (p->state == ISN_P_DETACHED && ck->rejoin_wait)
		ck->rejoin_wait--;
	return ISN_RG_DRIVEN;
}

void isn_ck_kick(struct isn_job *j)
{
	if (j->ck)
		isn_ck_check(j->ck);
}
