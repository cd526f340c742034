/* SPDX-License-Identifier: MIT */
/* Wire primitives: buffers, headers, the stream reader, tokens. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "proto.h"

static int wbuf_reserve(struct isn_wbuf *w, size_t more)
{
	size_t cap;
	uint8_t *p;

	if (w->err)
		return w->err;
	if (more > SIZE_MAX / 2 - w->len) {
		w->err = -EMSGSIZE;
		return w->err;
	}
	if (w->len + more <= w->cap)
		return 0;
	cap = w->cap ? w->cap : 256;
	while (cap < w->len + more)
		cap *= 2;
	p = realloc(w->p, cap);
	if (!p) {
		w->err = -ENOMEM;
		return w->err;
	}
	w->p = p;
	w->cap = cap;
	return 0;
}

void isn_wbuf_free(struct isn_wbuf *w)
{
	free(w->p);
	memset(w, 0, sizeof(*w));
}

void isn_put_mem(struct isn_wbuf *w, const void *p, size_t len)
{
	if (wbuf_reserve(w, len))
		return;
	if (len)
		memcpy(w->p + w->len, p, len);
	w->len += len;
}

void isn_put_u16(struct isn_wbuf *w, uint16_t v)
{
	uint8_t b[2] = { v, v >> 8 };

	isn_put_mem(w, b, sizeof(b));
}

void isn_put_u32(struct isn_wbuf *w, uint32_t v)
{
	uint8_t b[4] = { v, v >> 8, v >> 16, v >> 24 };

	isn_put_mem(w, b, sizeof(b));
}

void isn_put_u64(struct isn_wbuf *w, uint64_t v)
{
	isn_put_u32(w, (uint32_t)v);
	isn_put_u32(w, (uint32_t)(v >> 32));
}

static uint32_t le32(const uint8_t *b)
{
	return b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
	       (uint32_t)b[3] << 24;
}

const void *isn_get_mem(struct isn_rbuf *r, size_t len)
{
	const void *p;

	if (r->err || len > r->len - r->off) {
		r->err = -EPROTO;
		return NULL;
	}
	p = r->p + r->off;
	r->off += len;
	return p;
}

uint16_t isn_get_u16(struct isn_rbuf *r)
{
	const uint8_t *b = isn_get_mem(r, 2);

	return b ? (uint16_t)(b[0] | b[1] << 8) : 0;
}

uint32_t isn_get_u32(struct isn_rbuf *r)
{
	const uint8_t *b = isn_get_mem(r, 4);

	return b ? le32(b) : 0;
}

uint64_t isn_get_u64(struct isn_rbuf *r)
{
	uint64_t lo = isn_get_u32(r);

	return lo | (uint64_t)isn_get_u32(r) << 32;
}

uint32_t isn_u32s_at(const struct isn_u32s *a, uint32_t i)
{
	return le32(a->raw + 4 * (size_t)i);
}

void isn_hdr_encode(uint8_t out[ISN_HDR_LEN], uint16_t type, uint32_t len)
{
	struct isn_wbuf w = { .p = out, .cap = ISN_HDR_LEN };

	isn_put_u32(&w, ISN_PROTO_MAGIC);
	isn_put_u16(&w, ISN_PROTO_VERSION);
	isn_put_u16(&w, type);
	isn_put_u32(&w, len);
}

int isn_hdr_decode(const uint8_t in[ISN_HDR_LEN], uint32_t max,
		   struct isn_hdr *h)
{
	struct isn_rbuf r = { .p = in, .len = ISN_HDR_LEN };

	h->magic = isn_get_u32(&r);
	h->version = isn_get_u16(&r);
	h->type = isn_get_u16(&r);
	h->len = isn_get_u32(&r);
	if (h->magic != ISN_PROTO_MAGIC)
		return -EBADMSG;
	if (h->version != ISN_PROTO_VERSION)
		return -EPROTONOSUPPORT;
	if (h->len > max)
		return -EMSGSIZE;
	return 0;
}

size_t isn_msg_begin(struct isn_wbuf *w, uint16_t type)
{
	size_t at = w->len;

	if (wbuf_reserve(w, ISN_HDR_LEN))
		return at;
	isn_hdr_encode(w->p + at, type, 0);
	w->len += ISN_HDR_LEN;
	return at;
}

int isn_msg_end(struct isn_wbuf *w, size_t at)
{
	size_t len;

	if (w->err)
		return w->err;
	len = w->len - at - ISN_HDR_LEN;
	if (len > ISN_MSG_MAX) {
		w->err = -EMSGSIZE;
		return w->err;
	}
	/* patch the length field (offset 8 of the header) */
	w->p[at + 8] = len;
	w->p[at + 9] = len >> 8;
	w->p[at + 10] = len >> 16;
	w->p[at + 11] = len >> 24;
	return 0;
}

/* ---- stream reader ---- */

void isn_rx_init(struct isn_rx *rx, uint32_t max)
{
	memset(rx, 0, sizeof(*rx));
	rx->max = max;
}

void isn_rx_free(struct isn_rx *rx)
{
	free(rx->buf);
	memset(rx, 0, sizeof(*rx));
}

/*
 * Free space after the unread bytes, and room for the whole message under
 * way.  Buffers start small (a daemon has a reader per connection) and are
 * dropped once a large message has been consumed.
 */
static int rx_make_room(struct isn_rx *rx)
{
	size_t have = rx->end - rx->start, need = have + 1, cap;
	struct isn_hdr h;
	uint8_t *p;

	if (have >= ISN_HDR_LEN &&
	    !isn_hdr_decode(rx->buf + rx->start, rx->max, &h) &&
	    need < ISN_HDR_LEN + (size_t)h.len)
		need = ISN_HDR_LEN + (size_t)h.len;
	if (!have && rx->cap > (256u << 10)) {
		free(rx->buf);
		rx->buf = NULL;
		rx->cap = rx->start = rx->end = 0;
	}
	if (rx->start && rx->cap - rx->start < need) {
		memmove(rx->buf, rx->buf + rx->start, have);
		rx->start = 0;
		rx->end = have;
	}
	if (rx->cap - rx->start >= need)
		return 0;
	cap = rx->cap ? rx->cap : 1024;
	while (cap - rx->start < need)
		cap *= 2;
	p = realloc(rx->buf, cap);
	if (!p)
		return -ENOMEM;
	rx->buf = p;
	rx->cap = cap;
	return 0;
}

ssize_t isn_rx_read(struct isn_rx *rx, int fd)
{
	ssize_t n;
	int ret = rx_make_room(rx);

	if (ret)
		return ret;
	do
		n = read(fd, rx->buf + rx->end, rx->cap - rx->end);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	rx->end += n;
	return n;
}

int isn_rx_next(struct isn_rx *rx, struct isn_hdr *h, const void **payload)
{
	size_t have = rx->end - rx->start;
	int ret;

	if (have < ISN_HDR_LEN)
		return 0;
	ret = isn_hdr_decode(rx->buf + rx->start, rx->max, h);
	if (ret)
		return ret;
	if (have - ISN_HDR_LEN < h->len)
		return 0;
	*payload = rx->buf + rx->start + ISN_HDR_LEN;
	rx->start += ISN_HDR_LEN + (size_t)h->len;
	if (rx->start == rx->end)
		rx->start = rx->end = 0;
	return 1;
}

/* ---- tokens and strings ---- */

int isn_token_new(uint8_t tok[ISN_TOKEN_LEN])
{
	size_t got = 0;
	ssize_t n;

	while (got < ISN_TOKEN_LEN) {
		n = getrandom(tok + got, ISN_TOKEN_LEN - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		got += n;
	}
	return 0;
}

void isn_token_hex(const uint8_t tok[ISN_TOKEN_LEN],
		   char out[2 * ISN_TOKEN_LEN + 1])
{
	int i;

	for (i = 0; i < ISN_TOKEN_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", tok[i]);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int isn_token_parse(const char *hex, uint8_t tok[ISN_TOKEN_LEN])
{
	int i, hi, lo;

	if (!hex || strlen(hex) != 2 * ISN_TOKEN_LEN)
		return -EINVAL;
	for (i = 0; i < ISN_TOKEN_LEN; i++) {
		hi = hexval(hex[2 * i]);
		lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		tok[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* Constant time: the comparison does not tell how much matched. */
bool isn_token_eq(const uint8_t a[ISN_TOKEN_LEN],
		  const uint8_t b[ISN_TOKEN_LEN])
{
	uint8_t diff = 0;
	int i;

	for (i = 0; i < ISN_TOKEN_LEN; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

void isn_strlcpy(char *dst, const char *src, size_t size)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}
