/* SPDX-License-Identifier: MIT */
/* Fault injection on the coordinator wire (IBSNAP_COORD_FAULT; wfault.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"
#include "wfault.h"

int isn_wf_state;

static struct {
	double drop, dup;
	unsigned long delay_us;
	uint64_t rng;
	uint16_t type; /* 0: any */
	int phase; /* -1: any */
	unsigned long n; /* 0: no limit */
	unsigned long seen;
} wf = { .phase = -1 };

static void wf_log(const char *fmt, const char *a, const char *b)
{
	char buf[256];
	int n;

	n = snprintf(buf, sizeof(buf),
		     "ibsnap: wire fault[%d]: ", (int)getpid());
	n += snprintf(buf + n, sizeof(buf) - n, fmt, a, b);
	if (n >= (int)sizeof(buf) - 1)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(STDERR_FILENO, buf, n) < 0)
		return;
}

static uint16_t type_of(const char *name)
{
	uint16_t t;

	for (t = 1; t < ISN_MSG_TYPE_MAX; t++)
		if (!strcasecmp(isn_msg_name(t), name))
			return t;
	return 0;
}

static int phase_of(const char *name)
{
	int p;

	for (p = ISN_PHASE_QUIESCE; p <= ISN_PHASE_RESUME; p++)
		if (!strcasecmp(isn_phase_name(p), name))
			return p;
	return -2;
}

/* "NAME" or "NAME:PHASE"; false if either is unknown. */
static int parse_type(char *v)
{
	char *colon = strchr(v, ':');

	if (colon)
		*colon++ = '\0';
	wf.type = type_of(v);
	if (colon)
		wf.phase = phase_of(colon);
	return wf.type && wf.phase != -2;
}

static int parse(const char *spec)
{
	char buf[256], *tok, *save, *eq;
	int ok = 1;

	snprintf(buf, sizeof(buf), "%s", spec);
	wf.rng = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull;
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		eq = strchr(tok, '=');
		if (!eq) {
			ok = 0;
			continue;
		}
		*eq++ = '\0';
		if (!strcmp(tok, "drop"))
			wf.drop = atof(eq);
		else if (!strcmp(tok, "dup"))
			wf.dup = atof(eq);
		else if (!strcmp(tok, "delay_us"))
			wf.delay_us = strtoul(eq, NULL, 10);
		else if (!strcmp(tok, "seed"))
			wf.rng = strtoull(eq, NULL, 0);
		else if (!strcmp(tok, "n"))
			wf.n = strtoul(eq, NULL, 10);
		else if (!strcmp(tok, "type"))
			ok &= parse_type(eq);
		else
			ok = 0;
	}
	return ok;
}

static void wf_init(void)
{
	const char *spec = getenv("IBSNAP_COORD_FAULT");
	int on = spec && *spec;

	if (on && !parse(spec)) {
		/* a typo must not pass for a test without faults */
		wf_log("IBSNAP_COORD_FAULT=%s%s: not understood, no faults",
		       spec, "");
		on = 0;
	}
	__atomic_store_n(&isn_wf_state, on ? 2 : 1, __ATOMIC_RELEASE);
}

/* splitmix64: a uniform double in [0, 1). */
static double rnd(void)
{
	uint64_t z = __atomic_add_fetch(&wf.rng, 0x9e3779b97f4a7c15ull,
					__ATOMIC_RELAXED);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (double)(z >> 11) / (double)(1ull << 53);
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* The phase a PHASE or ACK is about, or -1. */
static int msg_phase(const uint8_t *m, size_t len, uint16_t type)
{
	size_t off = type == ISN_MSG_PHASE ? 8 : type == ISN_MSG_ACK ? 4 : 0;

	if (!off || len < ISN_HDR_LEN + off + 2)
		return -1;
	return le16(m + ISN_HDR_LEN + off);
}

enum isn_wf_act isn_wfault_slow(const void *msg, size_t len)
{
	const uint8_t *m = msg;
	enum isn_wf_act act = ISN_WF_SEND;
	struct timespec ts;
	uint16_t type;
	int phase;
	char what[64];

	if (!__atomic_load_n(&isn_wf_state, __ATOMIC_ACQUIRE))
		wf_init();
	if (isn_wf_state != 2 || len < ISN_HDR_LEN)
		return ISN_WF_SEND;
	type = le16(m + 6);
	phase = msg_phase(m, len, type);
	if ((wf.type && wf.type != type) ||
	    (wf.phase >= 0 && wf.phase != phase))
		return ISN_WF_SEND;
	if (wf.n && __atomic_add_fetch(&wf.seen, 1, __ATOMIC_RELAXED) > wf.n)
		return ISN_WF_SEND;
	if (phase >= 0)
		snprintf(what, sizeof(what), "%s(%s)", isn_msg_name(type),
			 isn_phase_name(phase));
	else
		snprintf(what, sizeof(what), "%s", isn_msg_name(type));
	if (wf.delay_us) {
		ts.tv_sec = wf.delay_us / 1000000;
		ts.tv_nsec = (long)(wf.delay_us % 1000000) * 1000;
		while (nanosleep(&ts, &ts))
			;
	}
	if (wf.drop > 0 && rnd() < wf.drop)
		act = ISN_WF_DROP;
	else if (wf.dup > 0 && rnd() < wf.dup)
		act = ISN_WF_DUP;
	if (act != ISN_WF_SEND)
		wf_log("%s %s", act == ISN_WF_DROP ? "dropped" : "sent twice",
		       what);
	else if (wf.delay_us)
		wf_log("delayed %s%s", what, "");
	return act;
}
