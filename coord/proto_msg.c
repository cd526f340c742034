/* SPDX-License-Identifier: MIT */
/*
 * Messages: each type is a table of fields (kind, offset in its isn_m_*
 * struct, bound), and one encoder and one decoder walk any table.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

enum fkind {
	F_U16,
	F_U32,
	F_U64,
	F_I32,
	F_STR,
	F_TOKEN,
	F_BYTES,
	F_U32S,
	F_EXT, /* the optional tail starts here (a u16 level in the struct) */
};

struct field {
	enum fkind kind;
	size_t off;
	size_t max; /* F_STR: size of the char array; F_BYTES: length */
};

struct msg_desc {
	const char *name;
	const struct field *fields;
	size_t nfields;
};

#define U16(T, m)                        \
	{                                \
		F_U16, offsetof(T, m), 0 \
	}
#define U32(T, m)                        \
	{                                \
		F_U32, offsetof(T, m), 0 \
	}
#define U64(T, m)                        \
	{                                \
		F_U64, offsetof(T, m), 0 \
	}
#define I32(T, m)                        \
	{                                \
		F_I32, offsetof(T, m), 0 \
	}
#define STR(T, m)                                          \
	{                                                  \
		F_STR, offsetof(T, m), sizeof(((T *)0)->m) \
	}
#define TOKEN(T, m)                        \
	{                                  \
		F_TOKEN, offsetof(T, m), 0 \
	}
#define BYTES(T, m)                                   \
	{                                             \
		F_BYTES, offsetof(T, m), ISN_BLOB_MAX \
	}
#define U32S(T, m)                        \
	{                                 \
		F_U32S, offsetof(T, m), 0 \
	}
#define EXT(T, m)                        \
	{                                \
		F_EXT, offsetof(T, m), 0 \
	}

static const struct field f_error[] = {
	I32(struct isn_m_error, code),
	STR(struct isn_m_error, text),
	EXT(struct isn_m_error, ext),
	U32(struct isn_m_error, ckpt),
	STR(struct isn_m_error, host),
};

static const struct field f_register[] = {
	STR(struct isn_m_register, job),
	TOKEN(struct isn_m_register, token),
	STR(struct isn_m_register, host),
	U32(struct isn_m_register, pid),
	U64(struct isn_m_register, agent),
	I32(struct isn_m_register, wake_fd),
	U64(struct isn_m_register, wake_ino),
	U32(struct isn_m_register, rank),
	U32(struct isn_m_register, epoch),
	U32(struct isn_m_register, flags),
};

static const struct field f_registered[] = {
	U32(struct isn_m_registered, rank),
	U32(struct isn_m_registered, epoch),
	U32(struct isn_m_registered, flags),
};

static const struct field f_retry[] = {
	U32(struct isn_m_retry, ms),
	STR(struct isn_m_retry, text),
};

static const struct field f_phase[] = {
	U32(struct isn_m_phase, seq),
	U32(struct isn_m_phase, ckpt),
	U16(struct isn_m_phase, phase),
	U16(struct isn_m_phase, flags),
};

static const struct field f_ack[] = {
	U32(struct isn_m_ack, seq),    U16(struct isn_m_ack, phase),
	I32(struct isn_m_ack, status), U64(struct isn_m_ack, usec),
	STR(struct isn_m_ack, text),
};

static const struct field f_put[] = {
	U32(struct isn_m_put, seq),
	BYTES(struct isn_m_put, blob),
};

static const struct field f_putk[] = {
	U32(struct isn_m_putk, seq),
	U32(struct isn_m_putk, flags),
	BYTES(struct isn_m_putk, recs),
};

static const struct field f_fenced[] = {
	U32(struct isn_m_fenced, seq),
	U32(struct isn_m_fenced, nkeys),
};

static const struct field f_get[] = {
	U32(struct isn_m_get, seq),
	U32S(struct isn_m_get, keys),
};

static const struct field f_xfail[] = {
	U32(struct isn_m_xfail, seq),
	I32(struct isn_m_xfail, code),
	STR(struct isn_m_xfail, text),
};

static const struct field f_detach[] = {
	U32(struct isn_m_detach, ckpt),
};

static const struct field f_bye[] = {
	U32(struct isn_m_bye, reserved),
};

static const struct field f_job_open[] = {
	STR(struct isn_m_job_open, job),   TOKEN(struct isn_m_job_open, token),
	STR(struct isn_m_job_open, host),  U32(struct isn_m_job_open, pid),
	U32(struct isn_m_job_open, flags), U32(struct isn_m_job_open, nranks),
	U32(struct isn_m_job_open, ckpt),  U64(struct isn_m_job_open, agent),
};

static const struct field f_job[] = {
	STR(struct isn_m_job, job),
	TOKEN(struct isn_m_job, token),
	U64(struct isn_m_job, agent),
	U32(struct isn_m_job, epoch),
};

static const struct field f_ckpt_begin[] = {
	U32(struct isn_m_ckpt_begin, ckpt),
	U32(struct isn_m_ckpt_begin, flags),
	U32(struct isn_m_ckpt_begin, nranks),
	STR(struct isn_m_ckpt_begin, dir),
	U32S(struct isn_m_ckpt_begin, clients),
	U32S(struct isn_m_ckpt_begin, inos),
	EXT(struct isn_m_ckpt_begin, ext),
	STR(struct isn_m_ckpt_begin, stage),
	U32S(struct isn_m_ckpt_begin, trees),
};

static const struct field f_dump[] = {
	U32(struct isn_m_dump, ckpt),
	U32(struct isn_m_dump, flags),
};

static const struct field f_dump_done[] = {
	U32(struct isn_m_dump_done, ckpt),
	I32(struct isn_m_dump_done, status),
	U64(struct isn_m_dump_done, usec),
	STR(struct isn_m_dump_done, text),
};

static const struct field f_wake[] = {
	U32(struct isn_m_wake, ckpt),
	U32(struct isn_m_wake, flags),
	U32S(struct isn_m_wake, ranks),
	EXT(struct isn_m_wake, ext),
	U32S(struct isn_m_wake, clients),
	U32S(struct isn_m_wake, inos),
};

static const struct field f_wake_done[] = {
	U32(struct isn_m_wake_done, ckpt),
	U32S(struct isn_m_wake_done, gone),
};

static const struct field f_exit[] = {
	I32(struct isn_m_exit, status),
};

static const struct field f_job_end[] = {
	I32(struct isn_m_job_end, status),
};

static const struct field f_ckpt_start[] = {
	STR(struct isn_m_ckpt_start, job),
	TOKEN(struct isn_m_ckpt_start, token),
	U32(struct isn_m_ckpt_start, flags),
	STR(struct isn_m_ckpt_start, dir),
	EXT(struct isn_m_ckpt_start, ext),
	STR(struct isn_m_ckpt_start, stage),
};

static const struct field f_ckpt_progress[] = {
	U32(struct isn_m_ckpt_progress, ckpt),
	U16(struct isn_m_ckpt_progress, phase),
	I32(struct isn_m_ckpt_progress, status),
	U64(struct isn_m_ckpt_progress, usec),
	STR(struct isn_m_ckpt_progress, text),
};

static const struct field f_ckpt_end[] = {
	U32(struct isn_m_ckpt_end, ckpt),
	I32(struct isn_m_ckpt_end, status),
	U64(struct isn_m_ckpt_end, usec),
	STR(struct isn_m_ckpt_end, text),
};

static const struct field f_status_req[] = {
	STR(struct isn_m_status_req, job),
	TOKEN(struct isn_m_status_req, token),
	U32(struct isn_m_status_req, flags),
};

static const struct field f_status_job[] = {
	STR(struct isn_m_status_job, job),
	U32(struct isn_m_status_job, nprocs),
	U32(struct isn_m_status_job, nagents),
	U16(struct isn_m_status_job, phase),
	U32(struct isn_m_status_job, ckpt),
	I32(struct isn_m_status_job, last_status),
	U64(struct isn_m_status_job, last_time),
	U64(struct isn_m_status_job, last_usec),
	STR(struct isn_m_status_job, last_dir),
	STR(struct isn_m_status_job, last_text),
	EXT(struct isn_m_status_job, ext),
	U64(struct isn_m_status_job, last_downtime),
};

static const struct field f_status_proc[] = {
	U32(struct isn_m_status_proc, rank),
	U32(struct isn_m_status_proc, pid),
	STR(struct isn_m_status_proc, host),
	U16(struct isn_m_status_proc, phase),
	U16(struct isn_m_status_proc, state),
};

static const struct field f_status_end[] = {
	U32(struct isn_m_status_end, daemon_pid),
	U32(struct isn_m_status_end, njobs),
};

#define MSG(type, fields) \
	[type] = { #type + 8, fields, sizeof(fields) / sizeof(fields[0]) }

static const struct msg_desc descs[ISN_MSG_TYPE_MAX] = {
	MSG(ISN_MSG_ERROR, f_error),
	MSG(ISN_MSG_REGISTER, f_register),
	MSG(ISN_MSG_REGISTERED, f_registered),
	MSG(ISN_MSG_RETRY, f_retry),
	MSG(ISN_MSG_PHASE, f_phase),
	MSG(ISN_MSG_ACK, f_ack),
	MSG(ISN_MSG_PUT, f_put),
	[ISN_MSG_ALL] = { "ALL", NULL, 0 },
	MSG(ISN_MSG_XFAIL, f_xfail),
	MSG(ISN_MSG_DETACH, f_detach),
	MSG(ISN_MSG_BYE, f_bye),
	MSG(ISN_MSG_PUTK, f_putk),
	MSG(ISN_MSG_FENCED, f_fenced),
	MSG(ISN_MSG_GET, f_get),
	[ISN_MSG_PART] = { "PART", NULL, 0 },
	MSG(ISN_MSG_JOB_OPEN, f_job_open),
	MSG(ISN_MSG_JOB, f_job),
	MSG(ISN_MSG_CKPT_BEGIN, f_ckpt_begin),
	MSG(ISN_MSG_DUMP, f_dump),
	MSG(ISN_MSG_DUMP_DONE, f_dump_done),
	MSG(ISN_MSG_WAKE, f_wake),
	MSG(ISN_MSG_WAKE_DONE, f_wake_done),
	MSG(ISN_MSG_EXIT, f_exit),
	MSG(ISN_MSG_JOB_END, f_job_end),
	MSG(ISN_MSG_CKPT_START, f_ckpt_start),
	MSG(ISN_MSG_CKPT_PROGRESS, f_ckpt_progress),
	MSG(ISN_MSG_CKPT_END, f_ckpt_end),
	MSG(ISN_MSG_STATUS_REQ, f_status_req),
	MSG(ISN_MSG_STATUS_JOB, f_status_job),
	MSG(ISN_MSG_STATUS_PROC, f_status_proc),
	MSG(ISN_MSG_STATUS_END, f_status_end),
};

static const struct msg_desc *desc_of(uint16_t type)
{
	if (type >= ISN_MSG_TYPE_MAX || !descs[type].fields)
		return NULL;
	return &descs[type];
}

const char *isn_msg_name(uint16_t type)
{
	if (type >= ISN_MSG_TYPE_MAX || !descs[type].name)
		return "UNKNOWN";
	return descs[type].name;
}

const char *isn_phase_name(unsigned int phase)
{
	static const char *const names[] = {
		[ISN_PHASE_NONE] = "none",     [ISN_PHASE_QUIESCE] = "quiesce",
		[ISN_PHASE_DRAIN] = "drain",   [ISN_PHASE_RELEASE] = "release",
		[ISN_PHASE_DUMP] = "dump",     [ISN_PHASE_REBUILD] = "rebuild",
		[ISN_PHASE_RESUME] = "resume",
	};

	if (phase == ISN_STEP_REJOIN)
		return "rejoin";
	if (phase == ISN_STEP_PREDUMP)
		return "predump";
	if (phase >= sizeof(names) / sizeof(names[0]))
		return "unknown";
	return names[phase];
}

static void put_field(struct isn_wbuf *w, const struct field *f,
		      const char *base)
{
	const void *p = base + f->off;
	const struct isn_bytes *b = p;
	const struct isn_u32s *a = p;
	uint32_t i;
	size_t n;

	switch (f->kind) {
	case F_U16:
		isn_put_u16(w, *(const uint16_t *)p);
		break;
	case F_U32:
	case F_I32:
		isn_put_u32(w, *(const uint32_t *)p);
		break;
	case F_U64:
		isn_put_u64(w, *(const uint64_t *)p);
		break;
	case F_STR:
		n = strnlen(p, f->max - 1);
		isn_put_u16(w, (uint16_t)n);
		isn_put_mem(w, p, n);
		break;
	case F_TOKEN:
		isn_put_mem(w, p, ISN_TOKEN_LEN);
		break;
	case F_BYTES:
		if (b->len > f->max && !w->err)
			w->err = -EMSGSIZE;
		isn_put_u32(w, b->len);
		isn_put_mem(w, b->data, b->len);
		break;
	case F_U32S:
		isn_put_u32(w, a->n);
		for (i = 0; i < a->n; i++)
			isn_put_u32(w, a->v[i]);
		break;
	case F_EXT: /* isn_msg_encode's */
		break;
	}
}

int isn_msg_encode(struct isn_wbuf *w, uint16_t type, const void *msg)
{
	const struct msg_desc *d = desc_of(type);
	size_t at, i, tail = 0;
	uint16_t level;

	if (!d)
		return -EINVAL;
	at = isn_msg_begin(w, type);
	for (i = 0; i < d->nfields; i++) {
		const struct field *f = &d->fields[i];

		if (f->kind != F_EXT) {
			put_field(w, f, msg);
			continue;
		}
		level = *(const uint16_t *)((const char *)msg + f->off);
		if (!level)
			break; /* no tail: the message as before extensions */
		isn_put_u16(w, level);
		tail = w->len;
		isn_put_u32(w, 0); /* the tail's length, set below */
	}
	if (tail && !w->err) {
		uint32_t n = (uint32_t)(w->len - tail - 4);

		w->p[tail] = (uint8_t)n;
		w->p[tail + 1] = (uint8_t)(n >> 8);
		w->p[tail + 2] = (uint8_t)(n >> 16);
		w->p[tail + 3] = (uint8_t)(n >> 24);
	}
	return isn_msg_end(w, at);
}

static void get_field(struct isn_rbuf *r, const struct field *f, char *base)
{
	void *p = base + f->off;
	struct isn_bytes *b = p;
	struct isn_u32s *a = p;
	const void *src;
	size_t n;

	switch (f->kind) {
	case F_U16:
		*(uint16_t *)p = isn_get_u16(r);
		break;
	case F_U32:
	case F_I32:
		*(uint32_t *)p = isn_get_u32(r);
		break;
	case F_U64:
		*(uint64_t *)p = isn_get_u64(r);
		break;
	case F_STR:
		n = isn_get_u16(r);
		src = isn_get_mem(r, n);
		if (!src || n >= f->max || memchr(src, 0, n)) {
			r->err = -EPROTO;
			break;
		}
		memcpy(p, src, n);
		((char *)p)[n] = '\0';
		break;
	case F_TOKEN:
		src = isn_get_mem(r, ISN_TOKEN_LEN);
		if (src)
			memcpy(p, src, ISN_TOKEN_LEN);
		break;
	case F_BYTES:
		b->len = isn_get_u32(r);
		if (b->len > f->max)
			r->err = -EPROTO;
		b->data = isn_get_mem(r, b->len);
		break;
	case F_U32S:
		a->n = isn_get_u32(r);
		a->v = NULL;
		if (a->n > (r->len - r->off) / 4)
			r->err = -EPROTO;
		a->raw = isn_get_mem(r, 4 * (size_t)a->n);
		break;
	case F_EXT: /* get_tail's */
		break;
	}
}

/* A field the sender did not send (an older sender): zero. */
static void zero_field(const struct field *f, char *base)
{
	void *p = base + f->off;

	switch (f->kind) {
	case F_U16:
	case F_EXT:
		*(uint16_t *)p = 0;
		break;
	case F_U32:
	case F_I32:
		*(uint32_t *)p = 0;
		break;
	case F_U64:
		*(uint64_t *)p = 0;
		break;
	case F_STR:
		*(char *)p = '\0';
		break;
	case F_TOKEN:
		memset(p, 0, ISN_TOKEN_LEN);
		break;
	case F_BYTES:
		*(struct isn_bytes *)p = (struct isn_bytes){ 0 };
		break;
	case F_U32S:
		*(struct isn_u32s *)p = (struct isn_u32s){ 0 };
		break;
	}
}

/*
 * The optional tail at field @i (F_EXT): absent, or u16 level, u32 length
 * and fields; fields past its end are zeroed (an older level), bytes past
 * the fields this side knows are skipped (a newer level).
 */
static void get_tail(struct isn_rbuf *r, const struct msg_desc *d, size_t i,
		     char *base)
{
	uint16_t *level = (uint16_t *)(base + d->fields[i].off);
	struct isn_rbuf t = { 0 };
	uint32_t len;

	*level = 0;
	if (r->off < r->len) {
		*level = isn_get_u16(r);
		len = isn_get_u32(r);
		if (r->err || !*level || len > r->len - r->off) {
			r->err = -EPROTO;
			return;
		}
		t = (struct isn_rbuf){ .p = r->p + r->off, .len = len };
		r->off += len;
	}
	for (i++; i < d->nfields && !t.err; i++) {
		if (t.off == t.len)
			zero_field(&d->fields[i], base);
		else
			get_field(&t, &d->fields[i], base);
	}
	if (t.err)
		r->err = -EPROTO;
}

int isn_msg_decode(uint16_t type, const void *payload, uint32_t len, void *msg)
{
	const struct msg_desc *d = desc_of(type);
	struct isn_rbuf r = { .p = payload, .len = len };
	size_t i;

	if (!d)
		return -EINVAL;
	for (i = 0; i < d->nfields && !r.err; i++) {
		if (d->fields[i].kind == F_EXT) {
			get_tail(&r, d, i, msg);
			break;
		}
		get_field(&r, &d->fields[i], msg);
	}
	if (!r.err && r.off != r.len)
		r.err = -EPROTO; /* trailing bytes */
	return r.err ? -EPROTO : 0;
}

/* ---- ALL ---- */

static size_t recs_size(const struct isn_all_src *src, uint32_t n)
{
	size_t total = 4, i;

	for (i = 0; i < n; i++)
		total += 8 + (size_t)src[i].len;
	return total;
}

static void recs_put(struct isn_wbuf *w, const struct isn_all_src *src,
		     uint32_t n)
{
	uint32_t i;

	isn_put_u32(w, n);
	for (i = 0; i < n; i++) {
		isn_put_u32(w, src[i].rank);
		isn_put_u32(w, src[i].len);
		isn_put_mem(w, src[i].data, src[i].len);
	}
}

/* Room for @total more bytes in one allocation (replies are large). */
static int wbuf_room(struct isn_wbuf *w, size_t total)
{
	uint8_t *p;

	if (w->err)
		return w->err;
	if (w->cap - w->len >= total)
		return 0;
	p = realloc(w->p, w->len + total);
	if (!p)
		return -ENOMEM;
	w->p = p;
	w->cap = w->len + total;
	return 0;
}

int isn_recs_msg_encode(struct isn_wbuf *w, uint16_t type, uint32_t seq,
			const struct isn_all_src *src, uint32_t n)
{
	size_t total = ISN_HDR_LEN + 4 + recs_size(src, n), at;
	int ret;

	if (total - ISN_HDR_LEN > ISN_MSG_MAX)
		return -EMSGSIZE;
	ret = wbuf_room(w, total);
	if (ret)
		return ret;
	at = isn_msg_begin(w, type);
	isn_put_u32(w, seq);
	recs_put(w, src, n);
	return isn_msg_end(w, at);
}

int isn_all_encode(struct isn_wbuf *w, uint32_t seq,
		   const struct isn_all_src *src, uint32_t n)
{
	return isn_recs_msg_encode(w, ISN_MSG_ALL, seq, src, n);
}

int isn_recs_encode(struct isn_wbuf *w, const struct isn_all_src *src,
		    uint32_t n)
{
	size_t total = recs_size(src, n);
	int ret;

	if (total > ISN_BLOB_MAX)
		return -EMSGSIZE;
	ret = wbuf_room(w, total);
	if (ret)
		return ret;
	recs_put(w, src, n);
	return w->err;
}

int isn_recs_count(const void *data, uint32_t len, uint32_t *n_p)
{
	struct isn_rbuf r = { .p = data, .len = len };
	uint32_t n = isn_get_u32(&r);

	if (r.err || n > (len - r.off) / 8)
		return -EPROTO;
	*n_p = n;
	return 0;
}

int isn_recs_next(const void *data, uint32_t len, size_t *off,
		  struct isn_all_src *rec)
{
	struct isn_rbuf r = { .p = data, .len = len, .off = *off ? *off : 4 };

	if (r.off >= len)
		return r.off == len ? 0 : -EPROTO;
	rec->rank = isn_get_u32(&r);
	rec->len = isn_get_u32(&r);
	rec->data = isn_get_mem(&r, rec->len);
	if (r.err)
		return -EPROTO;
	*off = r.off;
	return 1;
}

int isn_all_decode(const void *payload, uint32_t len, uint32_t *seq_p,
		   struct isn_blob **blobs_p, size_t *n_p)
{
	struct isn_rbuf r = { .p = payload, .len = len };
	struct isn_blob *blobs;
	uint32_t n, i, seq;

	seq = isn_get_u32(&r);
	n = isn_get_u32(&r);
	if (r.err || n > (len - r.off) / 8)
		return -EPROTO;
	blobs = calloc(n ? n : 1, sizeof(*blobs));
	if (!blobs)
		return -ENOMEM;
	for (i = 0; i < n && !r.err; i++) {
		blobs[i].rank = isn_get_u32(&r);
		blobs[i].len = isn_get_u32(&r);
		blobs[i].data = isn_get_mem(&r, blobs[i].len);
	}
	if (r.err || r.off != r.len) {
		free(blobs);
		return -EPROTO;
	}
	*seq_p = seq;
	*blobs_p = blobs;
	*n_p = n;
	return 0;
}
