/* SPDX-License-Identifier: MIT */
/* The coordinator's wire codec: framing, headers, messages, ALL, tokens. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto.h"

static void encode(struct isn_wbuf *w, uint16_t type, const void *m)
{
	memset(w, 0, sizeof(*w));
	assert_int_equal(isn_msg_encode(w, type, m), 0);
}

static void test_header(void **state)
{
	uint8_t b[ISN_HDR_LEN];
	struct isn_hdr h;

	(void)state;
	isn_hdr_encode(b, ISN_MSG_ACK, 1234);
	assert_int_equal(isn_hdr_decode(b, 4096, &h), 0);
	assert_int_equal(h.type, ISN_MSG_ACK);
	assert_int_equal(h.len, 1234);
	assert_int_equal(h.version, ISN_PROTO_VERSION);
	assert_int_equal(isn_hdr_decode(b, 1000, &h), -EMSGSIZE);
	b[4] = 2; /* version 2 */
	assert_int_equal(isn_hdr_decode(b, 4096, &h), -EPROTONOSUPPORT);
	assert_int_equal(h.version, 2);
	b[4] = ISN_PROTO_VERSION;
	b[0] ^= 0xff;
	assert_int_equal(isn_hdr_decode(b, 4096, &h), -EBADMSG);
}

static void test_register_roundtrip(void **state)
{
	struct isn_m_register m = { .pid = 42,
				    .agent = 0x1122334455667788ull,
				    .wake_fd = 7,
				    .wake_ino = 1ull << 40,
				    .rank = ISN_RANK_NEW,
				    .epoch = 3,
				    .flags = ISN_REG_REJOIN };
	struct isn_m_register out;
	struct isn_wbuf w;
	struct isn_hdr h;
	int i;

	(void)state;
	strcpy(m.job, "job-a");
	strcpy(m.host, "node7");
	for (i = 0; i < ISN_TOKEN_LEN; i++)
		m.token[i] = (uint8_t)(i * 17);
	encode(&w, ISN_MSG_REGISTER, &m);
	assert_int_equal(isn_hdr_decode(w.p, ISN_REQ_MAX, &h), 0);
	assert_int_equal(h.type, ISN_MSG_REGISTER);
	assert_int_equal(h.len, w.len - ISN_HDR_LEN);
	memset(&out, 0xa5, sizeof(out));
	assert_int_equal(isn_msg_decode(h.type, w.p + ISN_HDR_LEN, h.len, &out),
			 0);
	assert_string_equal(out.job, "job-a");
	assert_string_equal(out.host, "node7");
	assert_memory_equal(out.token, m.token, ISN_TOKEN_LEN);
	assert_int_equal(out.pid, 42);
	assert_true(out.agent == m.agent);
	assert_int_equal(out.wake_fd, 7);
	assert_true(out.wake_ino == m.wake_ino);
	assert_int_equal(out.rank, ISN_RANK_NEW);
	assert_int_equal(out.epoch, 3);
	assert_int_equal(out.flags, ISN_REG_REJOIN);
	isn_wbuf_free(&w);
}

/* Every strict prefix of a payload, and one byte more, is refused. */
static void test_truncated_and_trailing(void **state)
{
	struct isn_m_ack m = {
		.seq = 9, .phase = ISN_PHASE_DRAIN, .status = -EIO, .usec = 77
	};
	struct isn_m_ack out;
	struct isn_wbuf w;
	uint8_t *big;
	size_t len, cut;

	(void)state;
	strcpy(m.text, "drain failed");
	encode(&w, ISN_MSG_ACK, &m);
	len = w.len - ISN_HDR_LEN;
	for (cut = 0; cut < len; cut++)
		assert_int_equal(isn_msg_decode(ISN_MSG_ACK, w.p + ISN_HDR_LEN,
						(uint32_t)cut, &out),
				 -EPROTO);
	big = calloc(1, len + 1);
	memcpy(big, w.p + ISN_HDR_LEN, len);
	assert_int_equal(isn_msg_decode(ISN_MSG_ACK, big, len + 1, &out),
			 -EPROTO);
	assert_int_equal(isn_msg_decode(ISN_MSG_ACK, big, len, &out), 0);
	assert_int_equal(out.status, -EIO);
	assert_string_equal(out.text, "drain failed");
	free(big);
	isn_wbuf_free(&w);
}

/* STATUS_JOB with and without its extension: old and new readers agree. */
static void test_ext_tail(void **state)
{
	struct isn_m_status_job m = { .nprocs = 2, .last_usec = 5000 };
	struct isn_m_status_job out;
	struct isn_wbuf w, w2;
	size_t old_len, len, cut;
	uint8_t *p;

	(void)state;
	strcpy(m.job, "j");
	strcpy(m.last_text, "done");
	/* level 0: the message as before the extension, nothing more */
	encode(&w, ISN_MSG_STATUS_JOB, &m);
	old_len = w.len - ISN_HDR_LEN;
	assert_int_equal(old_len,
			 2 + 1 + 4 + 4 + 2 + 4 + 4 + 8 + 8 + 2 + 2 + 4);
	memset(&out, 0xa5, sizeof(out));
	assert_int_equal(isn_msg_decode(ISN_MSG_STATUS_JOB, w.p + ISN_HDR_LEN,
					(uint32_t)old_len, &out),
			 0);
	assert_int_equal(out.ext, 0);
	assert_true(out.last_downtime == 0);
	assert_string_equal(out.last_text, "done");
	/* level 1: u16 level, u32 length, the downtime */
	m.ext = ISN_EXT_1;
	m.last_downtime = 0x123456789ull;
	encode(&w2, ISN_MSG_STATUS_JOB, &m);
	len = w2.len - ISN_HDR_LEN;
	assert_int_equal(len, old_len + 2 + 4 + 8);
	assert_memory_equal(w.p + ISN_HDR_LEN, w2.p + ISN_HDR_LEN, old_len);
	memset(&out, 0, sizeof(out));
	assert_int_equal(isn_msg_decode(ISN_MSG_STATUS_JOB, w2.p + ISN_HDR_LEN,
					(uint32_t)len, &out),
			 0);
	assert_int_equal(out.ext, ISN_EXT_1);
	assert_true(out.last_downtime == 0x123456789ull);
	assert_int_equal(out.nprocs, 2);
	/* cut inside the tail, or a tail claiming more than there is */
	for (cut = old_len + 1; cut < len; cut++)
		assert_int_equal(isn_msg_decode(ISN_MSG_STATUS_JOB,
						w2.p + ISN_HDR_LEN,
						(uint32_t)cut, &out),
				 -EPROTO);
	/* a newer sender's longer tail: the known fields, the rest skipped */
	p = calloc(1, len + 3);
	memcpy(p, w2.p + ISN_HDR_LEN, len);
	p[old_len + 2] = 8 + 3; /* tail length */
	p[old_len] = 2; /* level 2 */
	memset(&out, 0, sizeof(out));
	assert_int_equal(isn_msg_decode(ISN_MSG_STATUS_JOB, p,
					(uint32_t)len + 3, &out),
			 0);
	assert_int_equal(out.ext, 2);
	assert_true(out.last_downtime == 0x123456789ull);
	/* ... but not bytes after the tail, nor a level 0 tail */
	p[old_len + 2] = 8;
	assert_int_equal(isn_msg_decode(ISN_MSG_STATUS_JOB, p,
					(uint32_t)len + 3, &out),
			 -EPROTO);
	p[old_len] = 0;
	assert_int_equal(isn_msg_decode(ISN_MSG_STATUS_JOB, p, (uint32_t)len,
					&out),
			 -EPROTO);
	/* an older sender's shorter tail (level 1 with no field): zeroed */
	p[old_len] = 1;
	p[old_len + 2] = 0;
	out.last_downtime = 7;
	assert_int_equal(isn_msg_decode(ISN_MSG_STATUS_JOB, p,
					(uint32_t)old_len + 6, &out),
			 0);
	assert_true(out.last_downtime == 0);
	free(p);
	isn_wbuf_free(&w);
	isn_wbuf_free(&w2);
}

/* ERROR: the checkpoint a refused restore is of, only in its extension
 * (to an agent that asked): without it the bytes are as before. */
static void test_ext_error(void **state)
{
	struct isn_m_error m = { .code = -EBUSY }, out;
	struct isn_wbuf w;

	(void)state;
	strcpy(m.text, "busy");
	encode(&w, ISN_MSG_ERROR, &m);
	assert_int_equal(w.len, ISN_HDR_LEN + 4 + 2 + 4);
	out.ckpt = 7;
	strcpy(out.host, "junk");
	assert_int_equal(isn_msg_decode(ISN_MSG_ERROR, w.p + ISN_HDR_LEN,
					(uint32_t)(w.len - ISN_HDR_LEN), &out),
			 0);
	assert_int_equal(out.ext, 0);
	assert_int_equal(out.ckpt, 0);
	assert_string_equal(out.host, "");
	isn_wbuf_free(&w);
	m.ext = ISN_EXT_1;
	m.ckpt = 3;
	strcpy(m.host, "node-a");
	encode(&w, ISN_MSG_ERROR, &m);
	assert_int_equal(isn_msg_decode(ISN_MSG_ERROR, w.p + ISN_HDR_LEN,
					(uint32_t)(w.len - ISN_HDR_LEN), &out),
			 0);
	assert_int_equal(out.code, -EBUSY);
	assert_string_equal(out.text, "busy");
	assert_int_equal(out.ext, ISN_EXT_1);
	assert_int_equal(out.ckpt, 3);
	assert_string_equal(out.host, "node-a");
	isn_wbuf_free(&w);
}

/* CKPT_START / CKPT_BEGIN carry the stage only in their extension. */
static void test_ext_stage(void **state)
{
	struct isn_m_ckpt_start m = { .flags = ISN_CK_STOP }, out;
	struct isn_wbuf w;

	(void)state;
	strcpy(m.dir, "/img");
	encode(&w, ISN_MSG_CKPT_START, &m);
	strcpy(out.stage, "junk");
	assert_int_equal(isn_msg_decode(ISN_MSG_CKPT_START, w.p + ISN_HDR_LEN,
					(uint32_t)(w.len - ISN_HDR_LEN), &out),
			 0);
	assert_int_equal(out.ext, 0);
	assert_string_equal(out.stage, "");
	isn_wbuf_free(&w);
	m.ext = ISN_EXT_1;
	strcpy(m.stage, "/dev/shm/fast");
	encode(&w, ISN_MSG_CKPT_START, &m);
	assert_int_equal(isn_msg_decode(ISN_MSG_CKPT_START, w.p + ISN_HDR_LEN,
					(uint32_t)(w.len - ISN_HDR_LEN), &out),
			 0);
	assert_string_equal(out.dir, "/img");
	assert_string_equal(out.stage, "/dev/shm/fast");
	assert_int_equal(out.flags, ISN_CK_STOP);
	isn_wbuf_free(&w);
}

static void test_bad_strings(void **state)
{
	struct isn_wbuf w = { 0 };
	struct isn_m_detach det;
	struct isn_m_error e;
	char name[ISN_TEXT_MAX];

	(void)state;
	/* a string as long as its field (no room for the NUL) */
	isn_put_u32(&w, 1);
	isn_put_u16(&w, ISN_TEXT_MAX);
	memset(name, 'x', sizeof(name));
	isn_put_mem(&w, name, sizeof(name));
	assert_int_equal(isn_msg_decode(ISN_MSG_ERROR, w.p, w.len, &e),
			 -EPROTO);
	isn_wbuf_free(&w);
	/* an embedded NUL */
	isn_put_u32(&w, 1);
	isn_put_u16(&w, 3);
	isn_put_mem(&w, "a\0b", 3);
	assert_int_equal(isn_msg_decode(ISN_MSG_ERROR, w.p, w.len, &e),
			 -EPROTO);
	isn_wbuf_free(&w);
	/* unknown types */
	assert_int_equal(isn_msg_decode(999, "", 0, &det), -EINVAL);
	assert_int_equal(isn_msg_decode(2, "", 0, &det), -EINVAL);
	assert_int_equal(isn_msg_encode(&w, 999, &det), -EINVAL);
	assert_string_equal(isn_msg_name(ISN_MSG_PHASE), "PHASE");
}

static void test_u32s(void **state)
{
	uint32_t cl[6] = { 0, 100, 7, 1, 101, 8 }, ino[4] = { 1, 2, 3, 4 };
	struct isn_m_ckpt_begin m = { .ckpt = 5,
				      .flags = ISN_CK_STOP,
				      .nranks = 2 },
				out;
	struct isn_wbuf w;
	uint32_t i;

	(void)state;
	strcpy(m.dir, "/ckpt");
	m.clients = (struct isn_u32s){ .n = 6, .v = cl };
	m.inos = (struct isn_u32s){ .n = 4, .v = ino };
	encode(&w, ISN_MSG_CKPT_BEGIN, &m);
	assert_int_equal(isn_msg_decode(ISN_MSG_CKPT_BEGIN, w.p + ISN_HDR_LEN,
					w.len - ISN_HDR_LEN, &out),
			 0);
	assert_int_equal(out.clients.n, 6);
	for (i = 0; i < 6; i++)
		assert_int_equal(isn_u32s_at(&out.clients, i), cl[i]);
	assert_int_equal(isn_u32s_at(&out.inos, 3), 4);
	assert_string_equal(out.dir, "/ckpt");
	/* a count larger than the payload */
	w.p[w.len - 4 * 5] = 0xff;
	assert_int_equal(isn_msg_decode(ISN_MSG_CKPT_BEGIN, w.p + ISN_HDR_LEN,
					w.len - ISN_HDR_LEN, &out),
			 -EPROTO);
	isn_wbuf_free(&w);
}

static void test_all(void **state)
{
	struct isn_all_src src[3] = { { 0, 5, "hello" },
				      { 3, 0, "" },
				      { 9, 3, "abc" } };
	struct isn_wbuf w = { 0 };
	struct isn_blob *b;
	struct isn_hdr h;
	size_t n;
	uint32_t seq;

	(void)state;
	assert_int_equal(isn_all_encode(&w, 12, src, 3), 0);
	assert_int_equal(isn_hdr_decode(w.p, ISN_MSG_MAX, &h), 0);
	assert_int_equal(h.type, ISN_MSG_ALL);
	assert_int_equal(isn_all_decode(w.p + ISN_HDR_LEN, h.len, &seq, &b, &n),
			 0);
	assert_int_equal(seq, 12);
	assert_int_equal(n, 3);
	assert_int_equal(b[0].rank, 0);
	assert_memory_equal(b[0].data, "hello", 5);
	assert_int_equal(b[1].len, 0);
	assert_int_equal(b[2].rank, 9);
	assert_memory_equal(b[2].data, "abc", 3);
	free(b);
	assert_int_equal(isn_all_decode(w.p + ISN_HDR_LEN, h.len - 1, &seq, &b,
					&n),
			 -EPROTO);
	w.p[ISN_HDR_LEN + 4] = 200; /* n = 200 */
	assert_int_equal(isn_all_decode(w.p + ISN_HDR_LEN, h.len, &seq, &b, &n),
			 -EPROTO);
	isn_wbuf_free(&w);
}

/* PUTK's records, GET's keys, PART (the keyed exchange, issue 9). */
static void test_keyed(void **state)
{
	struct isn_all_src src[3] = { { 7, 5, "hello" },
				      { 1, 0, "" },
				      { 4000000, 3, "abc" } },
			   rec;
	uint32_t keys[2] = { 4000000, 7 }, n, seq;
	struct isn_wbuf r = { 0 }, w = { 0 };
	struct isn_m_putk pk = { .seq = 3, .flags = ISN_PK_SPARSE }, pout;
	struct isn_m_get g = { .seq = 3 }, gout;
	struct isn_blob *b;
	struct isn_hdr h;
	size_t off = 0, nb;

	(void)state;
	assert_int_equal(isn_recs_encode(&r, src, 3), 0);
	assert_int_equal(r.len, 4 + 3 * 8 + 8);
	pk.recs = (struct isn_bytes){ (uint32_t)r.len, r.p };
	assert_int_equal(isn_msg_encode(&w, ISN_MSG_PUTK, &pk), 0);
	assert_int_equal(isn_hdr_decode(w.p, ISN_MSG_MAX, &h), 0);
	assert_int_equal(
		isn_msg_decode(h.type, w.p + ISN_HDR_LEN, h.len, &pout), 0);
	assert_int_equal(pout.flags, ISN_PK_SPARSE);
	assert_int_equal(isn_recs_count(pout.recs.data, pout.recs.len, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(
		isn_recs_next(pout.recs.data, pout.recs.len, &off, &rec), 1);
	assert_int_equal(rec.rank, 7);
	assert_memory_equal(rec.data, "hello", 5);
	assert_int_equal(
		isn_recs_next(pout.recs.data, pout.recs.len, &off, &rec), 1);
	assert_int_equal(rec.len, 0);
	assert_int_equal(
		isn_recs_next(pout.recs.data, pout.recs.len, &off, &rec), 1);
	assert_int_equal(rec.rank, 4000000);
	assert_int_equal(
		isn_recs_next(pout.recs.data, pout.recs.len, &off, &rec), 0);
	/* a record cut short, a count past the bytes */
	off = 0;
	assert_int_equal(isn_recs_next(r.p, (uint32_t)r.len - 1, &off, &rec),
			 1);
	assert_int_equal(isn_recs_next(r.p, (uint32_t)r.len - 1, &off, &rec),
			 1);
	assert_int_equal(isn_recs_next(r.p, (uint32_t)r.len - 1, &off, &rec),
			 -EPROTO);
	r.p[0] = 100;
	assert_int_equal(isn_recs_count(r.p, (uint32_t)r.len, &n), -EPROTO);
	isn_wbuf_free(&r);
	isn_wbuf_free(&w);

	memset(&w, 0, sizeof(w));
	g.keys = (struct isn_u32s){ .n = 2, .v = keys };
	assert_int_equal(isn_msg_encode(&w, ISN_MSG_GET, &g), 0);
	assert_int_equal(isn_msg_decode(ISN_MSG_GET, w.p + ISN_HDR_LEN,
					(uint32_t)w.len - ISN_HDR_LEN, &gout),
			 0);
	assert_int_equal(gout.keys.n, 2);
	assert_int_equal(isn_u32s_at(&gout.keys, 0), 4000000);
	isn_wbuf_free(&w);

	/* PART: ALL's layout under its own type */
	memset(&w, 0, sizeof(w));
	assert_int_equal(isn_recs_msg_encode(&w, ISN_MSG_PART, 9, src, 2), 0);
	assert_int_equal(isn_hdr_decode(w.p, ISN_MSG_MAX, &h), 0);
	assert_int_equal(h.type, ISN_MSG_PART);
	assert_string_equal(isn_msg_name(ISN_MSG_PART), "PART");
	assert_int_equal(
		isn_all_decode(w.p + ISN_HDR_LEN, h.len, &seq, &b, &nb), 0);
	assert_int_equal(seq, 9);
	assert_int_equal(nb, 2);
	assert_int_equal(b[0].rank, 7);
	free(b);
	isn_wbuf_free(&w);
}

/* Messages fed to the stream reader one byte at a time come out whole. */
static void test_rx_stream(void **state)
{
	struct isn_m_put put = { .seq = 4 };
	struct isn_m_phase ph = { .seq = 1, .ckpt = 2, .phase = 3 };
	struct isn_wbuf w = { 0 };
	struct isn_rx rx;
	const void *payload;
	struct isn_m_put pout;
	struct isn_hdr h;
	uint8_t *blob = malloc(1 << 20);
	int fds[2], got = 0;
	size_t i;

	(void)state;
	for (i = 0; i < (1u << 20); i++)
		blob[i] = (uint8_t)(i * 7);
	put.blob = (struct isn_bytes){ 1u << 20, blob };
	assert_int_equal(isn_msg_encode(&w, ISN_MSG_PHASE, &ph), 0);
	assert_int_equal(isn_msg_encode(&w, ISN_MSG_PUT, &put), 0);
	assert_int_equal(isn_msg_encode(&w, ISN_MSG_PHASE, &ph), 0);
	assert_int_equal(pipe2(fds, O_NONBLOCK), 0);
	isn_rx_init(&rx, ISN_REQ_MAX);
	for (i = 0; i < w.len; i += i < 100 ? 1 : 60000) {
		size_t chunk = i < 100 ? 1 : 60000;

		if (chunk > w.len - i)
			chunk = w.len - i;
		assert_int_equal(write(fds[1], w.p + i, chunk), (ssize_t)chunk);
		while (isn_rx_read(&rx, fds[0]) > 0)
			;
		while (isn_rx_next(&rx, &h, &payload) == 1) {
			got++;
			if (h.type != ISN_MSG_PUT)
				continue;
			assert_int_equal(isn_msg_decode(h.type, payload, h.len,
							&pout),
					 0);
			assert_int_equal(pout.blob.len, 1u << 20);
			assert_memory_equal(pout.blob.data, blob, 1u << 20);
		}
	}
	assert_int_equal(got, 3);
	close(fds[0]);
	close(fds[1]);
	isn_rx_free(&rx);
	isn_wbuf_free(&w);
	free(blob);
}

static void test_rx_bad_header(void **state)
{
	uint8_t hdr[ISN_HDR_LEN];
	struct isn_rx rx;
	const void *payload;
	struct isn_hdr h;
	int fds[2];

	(void)state;
	assert_int_equal(pipe(fds), 0);
	isn_rx_init(&rx, 100);
	isn_hdr_encode(hdr, ISN_MSG_PHASE, 101); /* over this side's limit */
	assert_int_equal(write(fds[1], hdr, sizeof(hdr)), ISN_HDR_LEN);
	assert_true(isn_rx_read(&rx, fds[0]) > 0);
	assert_int_equal(isn_rx_next(&rx, &h, &payload), -EMSGSIZE);
	close(fds[0]);
	close(fds[1]);
	isn_rx_free(&rx);
}

static void test_tokens(void **state)
{
	uint8_t a[ISN_TOKEN_LEN], b[ISN_TOKEN_LEN];
	char hex[2 * ISN_TOKEN_LEN + 1];

	(void)state;
	assert_int_equal(isn_token_new(a), 0);
	isn_token_hex(a, hex);
	assert_int_equal(strlen(hex), 32);
	assert_int_equal(isn_token_parse(hex, b), 0);
	assert_true(isn_token_eq(a, b));
	b[15] ^= 1;
	assert_false(isn_token_eq(a, b));
	assert_int_equal(isn_token_parse("abc", b), -EINVAL);
	assert_int_equal(isn_token_parse(NULL, b), -EINVAL);
	hex[3] = 'g';
	assert_int_equal(isn_token_parse(hex, b), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_register_roundtrip),
		cmocka_unit_test(test_truncated_and_trailing),
		cmocka_unit_test(test_ext_tail),
		cmocka_unit_test(test_ext_stage),
		cmocka_unit_test(test_ext_error),
		cmocka_unit_test(test_bad_strings),
		cmocka_unit_test(test_u32s),
		cmocka_unit_test(test_all),
		cmocka_unit_test(test_keyed),
		cmocka_unit_test(test_rx_stream),
		cmocka_unit_test(test_rx_bad_header),
		cmocka_unit_test(test_tokens),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
