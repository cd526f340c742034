/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the coordinator's wire input, as ibsnapd and the
 * clients read it.  The input's first byte sets the size of the reads
 * (1..256 bytes at a time, or everything at once); the rest is the byte
 * stream a peer sent.  It goes through a pipe into the stream reader
 * (isn_rx_read / isn_rx_next: buffer growth, compaction, framing), and
 * every complete frame is decoded as its type says (isn_msg_decode, or
 * isn_all_decode for ALL), then as every other type too.
 *
 * Checked beyond "no crash, no sanitizer report": a decoded message's
 * strings are NUL-terminated inside their arrays, its blobs and arrays lie
 * inside the payload, and encoding it again gives bytes that decode to a
 * message encoding to the same bytes (encode . decode is idempotent).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"
#include "check.h"

union any_msg {
	struct isn_m_error error;
	struct isn_m_register reg;
	struct isn_m_registered registered;
	struct isn_m_retry retry;
	struct isn_m_phase phase;
	struct isn_m_ack ack;
	struct isn_m_put put;
	struct isn_m_xfail xfail;
	struct isn_m_detach detach;
	struct isn_m_bye bye;
	struct isn_m_job_open job_open;
	struct isn_m_job job;
	struct isn_m_ckpt_begin ckpt_begin;
	struct isn_m_dump dump;
	struct isn_m_dump_done dump_done;
	struct isn_m_wake wake;
	struct isn_m_wake_done wake_done;
	struct isn_m_exit exit;
	struct isn_m_job_end job_end;
	struct isn_m_ckpt_start ckpt_start;
	struct isn_m_ckpt_progress ckpt_progress;
	struct isn_m_ckpt_end ckpt_end;
	struct isn_m_status_req status_req;
	struct isn_m_status_job status_job;
	struct isn_m_status_proc status_proc;
	struct isn_m_status_end status_end;
};

#define STR_OK(s) CHECK(strnlen((s), sizeof(s)) < sizeof(s))

static int fds[2] = { -1, -1 };

static bool inside(const void *p, size_t n, const void *payload, size_t len)
{
	const uint8_t *b = p, *a = payload;

	return !n || (b >= a && b + n <= a + len);
}

/* the most u32 arrays a message has (CKPT_BEGIN's and WAKE's three) */
#define NOWN 3

/* A decoded u32 array as the encoder wants it (.v); freed by the caller. */
static uint32_t *u32s_fix(struct isn_u32s *a, const void *payload,
			  size_t len)
{
	uint32_t *v, i;

	CHECK(inside(a->raw, 4 * (size_t)a->n, payload, len));
	v = malloc(4 * (size_t)a->n + 4);
	CHECK(v);
	for (i = 0; i < a->n; i++)
		v[i] = isn_u32s_at(a, i);
	a->v = v;
	return v;
}

/*
 * The invariants of a decoded message; its arrays made encodable.  False
 * for a type this harness does not know (one added since): decoded only.
 */
static bool check_msg(uint16_t type, union any_msg *m, const void *p,
		      size_t len, uint32_t *own[NOWN])
{
	switch (type) {
	case ISN_MSG_ERROR:
		STR_OK(m->error.text);
		STR_OK(m->error.host);
		break;
	case ISN_MSG_REGISTER:
		STR_OK(m->reg.job);
		STR_OK(m->reg.host);
		break;
	case ISN_MSG_RETRY:
		STR_OK(m->retry.text);
		break;
	case ISN_MSG_ACK:
		STR_OK(m->ack.text);
		break;
	case ISN_MSG_PUT:
		CHECK(m->put.blob.len <= ISN_BLOB_MAX);
		CHECK(inside(m->put.blob.data, m->put.blob.len, p, len));
		break;
	case ISN_MSG_XFAIL:
		STR_OK(m->xfail.text);
		break;
	case ISN_MSG_JOB_OPEN:
		STR_OK(m->job_open.job);
		STR_OK(m->job_open.host);
		break;
	case ISN_MSG_JOB:
		STR_OK(m->job.job);
		break;
	case ISN_MSG_CKPT_BEGIN:
		STR_OK(m->ckpt_begin.dir);
		STR_OK(m->ckpt_begin.stage);
		own[0] = u32s_fix(&m->ckpt_begin.clients, p, len);
		own[1] = u32s_fix(&m->ckpt_begin.inos, p, len);
		own[2] = u32s_fix(&m->ckpt_begin.trees, p, len);
		break;
	case ISN_MSG_DUMP_DONE:
		STR_OK(m->dump_done.text);
		break;
	case ISN_MSG_WAKE:
		own[0] = u32s_fix(&m->wake.ranks, p, len);
		own[1] = u32s_fix(&m->wake.clients, p, len);
		own[2] = u32s_fix(&m->wake.inos, p, len);
		break;
	case ISN_MSG_WAKE_DONE:
		own[0] = u32s_fix(&m->wake_done.gone, p, len);
		break;
	case ISN_MSG_CKPT_START:
		STR_OK(m->ckpt_start.job);
		STR_OK(m->ckpt_start.dir);
		STR_OK(m->ckpt_start.stage);
		break;
	case ISN_MSG_CKPT_PROGRESS:
		STR_OK(m->ckpt_progress.text);
		break;
	case ISN_MSG_CKPT_END:
		STR_OK(m->ckpt_end.text);
		break;
	case ISN_MSG_STATUS_REQ:
		STR_OK(m->status_req.job);
		break;
	case ISN_MSG_STATUS_JOB:
		STR_OK(m->status_job.job);
		STR_OK(m->status_job.last_dir);
		STR_OK(m->status_job.last_text);
		break;
	case ISN_MSG_STATUS_PROC:
		STR_OK(m->status_proc.host);
		break;
	case ISN_MSG_REGISTERED:
	case ISN_MSG_PHASE:
	case ISN_MSG_DETACH:
	case ISN_MSG_BYE:
	case ISN_MSG_DUMP:
	case ISN_MSG_EXIT:
	case ISN_MSG_JOB_END:
	case ISN_MSG_STATUS_END:
		break;
	default:
		return false;
	}
	return true;
}

/* Encode a decoded message; decode and encode that: the same bytes. */
static void roundtrip(uint16_t type, const union any_msg *m)
{
	struct isn_wbuf w1 = { 0 }, w2 = { 0 };
	uint32_t *own[NOWN] = { NULL, NULL, NULL };
	union any_msg m2;
	struct isn_hdr h;
	size_t i;

	CHECK(isn_msg_encode(&w1, type, m) == 0);
	CHECK(isn_hdr_decode(w1.p, ISN_MSG_MAX, &h) == 0);
	CHECK(h.type == type && h.len == w1.len - ISN_HDR_LEN);
	memset(&m2, 0xa5, sizeof(m2));
	CHECK(isn_msg_decode(type, w1.p + ISN_HDR_LEN, h.len, &m2) == 0);
	check_msg(type, &m2, w1.p + ISN_HDR_LEN, h.len, own);
	CHECK(isn_msg_encode(&w2, type, &m2) == 0);
	CHECK(w1.len == w2.len && !memcmp(w1.p, w2.p, w1.len));
	for (i = 0; i < NOWN; i++)
		free(own[i]);
	isn_wbuf_free(&w1);
	isn_wbuf_free(&w2);
}

static void decode_as(uint16_t type, const void *p, uint32_t len)
{
	uint32_t *own[NOWN] = { NULL, NULL, NULL };
	struct isn_blob *blobs;
	/* room for a message type added since, too */
	union {
		union any_msg m;
		uint8_t raw[16384];
	} u;
	union any_msg *m = &u.m;
	uint32_t seq;
	size_t n, i;
	int ret;

	if (type == ISN_MSG_ALL) {
		if (isn_all_decode(p, len, &seq, &blobs, &n))
			return;
		for (i = 0; i < n; i++)
			CHECK(inside(blobs[i].data, blobs[i].len, p, len));
		free(blobs);
		return;
	}
	memset(&u, 0x5a, sizeof(u.m));
	ret = isn_msg_decode(type, p, len, m);
	CHECK(ret == 0 || ret == -EPROTO || ret == -EINVAL);
	if (ret)
		return;
	if (check_msg(type, m, p, len, own))
		roundtrip(type, m);
	for (i = 0; i < NOWN; i++)
		free(own[i]);
}

static void frame(const struct isn_hdr *h, const void *payload)
{
	uint16_t t;

	decode_as(h->type, payload, h->len);
	/* a peer may send any payload under any type */
	for (t = 1; t < ISN_MSG_TYPE_MAX; t++)
		if (t != h->type)
			decode_as(t, payload, h->len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t step, off = 0, chunk;
	const void *payload;
	struct isn_hdr h;
	struct isn_rx rx;
	int ret = 0;
	ssize_t n;

	if (fds[0] < 0) {
		CHECK(pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
		/* the whole input fits in the pipe: no blocking writes */
		fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
	}
	if (size < 1 || size > (1 << 19))
		return 0;
	step = data[0] ? data[0] : size;
	data++;
	size--;
	isn_rx_init(&rx, ISN_REQ_MAX);
	while (off < size && ret >= 0) {
		chunk = size - off < step ? size - off : step;
		CHECK(write(fds[1], data + off, chunk) == (ssize_t)chunk);
		off += chunk;
		/* read it all back, as a daemon's read callbacks would */
		while ((n = isn_rx_read(&rx, fds[0])) > 0)
			while ((ret = isn_rx_next(&rx, &h, &payload)) == 1)
				frame(&h, payload);
		CHECK(n == -EAGAIN);
		CHECK(rx.start <= rx.end && rx.end <= rx.cap);
	}
	/* a reader that stopped at a bad header leaves bytes in the pipe */
	while (read(fds[0], (char[4096]){ 0 }, 4096) > 0)
		;
	isn_rx_free(&rx);
	return 0;
}
