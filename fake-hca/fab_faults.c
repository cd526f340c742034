/* SPDX-License-Identifier: MIT */
/*
 * Fault injection (IBSNAP_FAKE_FAULTS="drop=P,dup=P,corrupt=P,delay_us=N,
 * seed=N"), decided per packet by fab_send, and the CRC32C with which the
 * consumer drops corrupted packets: corruption behaves as a failed ICRC, a
 * loss, and never delivers altered bytes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fab_ring.h"

#define FAB_GOLDEN 0x9e3779b97f4a7c15ull

struct fab_fault_cfg {
	double drop, dup, corrupt;
	uint64_t delay_us, seed;
};

/* Probabilities as thresholds on a 64-bit random number. */
static struct {
	_Atomic uint64_t drop, dup, corrupt;
	_Atomic uint64_t delay_ns;
	_Atomic uint64_t rng;
} fab_faults;

_Atomic uint32_t fab_faults_on;
static pthread_once_t fab_faults_once = PTHREAD_ONCE_INIT;
static uint32_t fab_crc_table[256];

static uint64_t fab_prob(double p)
{
	double x = p * 18446744073709551616.0;

	if (x <= 0)
		return 0;
	return x >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)x;
}

static char *fab_trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = 0;
	return s;
}

static void fab_parse_prob(const char *key, const char *val, double *p)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(val, &end);
	if (errno || end == val || *end || !(d >= 0 && d <= 1)) {
		fab_log("IBSNAP_FAKE_FAULTS: %s=%s: not a probability in [0, "
			"1]; ignored",
			key, val);
		return;
	}
	*p = d;
}

static void fab_parse_u64(const char *key, const char *val, uint64_t *v)
{
	unsigned long long x;
	char *end;

	errno = 0;
	x = strtoull(val, &end, 0);
	if (errno || end == val || *end || *val == '-') {
		fab_log("IBSNAP_FAKE_FAULTS: %s=%s: not a number; ignored", key,
			val);
		return;
	}
	*v = x;
}

static void fab_faults_parse(const char *spec, struct fab_fault_cfg *cfg)
{
	char buf[512], *save, *tok, *val;
	int saved = errno;

	if (strlen(spec) >= sizeof(buf)) {
		fab_log("IBSNAP_FAKE_FAULTS too long; ignored");
		return;
	}
	strcpy(buf, spec);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		val = strchr(tok, '=');
		if (!val) {
			if (*fab_trim(tok))
				fab_log("IBSNAP_FAKE_FAULTS: '%s': want "
					"key=value; ignored",
					fab_trim(tok));
			continue;
		}
		*val++ = 0;
		tok = fab_trim(tok);
		val = fab_trim(val);
		if (!strcmp(tok, "drop"))
			fab_parse_prob(tok, val, &cfg->drop);
		else if (!strcmp(tok, "dup"))
			fab_parse_prob(tok, val, &cfg->dup);
		else if (!strcmp(tok, "corrupt"))
			fab_parse_prob(tok, val, &cfg->corrupt);
		else if (!strcmp(tok, "delay_us"))
			fab_parse_u64(tok, val, &cfg->delay_us);
		else if (!strcmp(tok, "seed"))
			fab_parse_u64(tok, val, &cfg->seed);
		else
			fab_log("IBSNAP_FAKE_FAULTS: unknown key '%s' ignored "
				"(known: drop, dup, corrupt, delay_us, seed)",
				tok);
	}
	errno = saved;
}

static void fab_faults_apply(const char *spec)
{
	struct fab_fault_cfg cfg = { .seed = 1 };
	uint64_t delay_ns;

	if (spec)
		fab_faults_parse(spec, &cfg);
	delay_ns = cfg.delay_us > UINT64_MAX / 1000 ? UINT64_MAX / 2 :
						      cfg.delay_us * 1000;
	atomic_store(&fab_faults_on, 0);
	atomic_store(&fab_faults.drop, fab_prob(cfg.drop));
	atomic_store(&fab_faults.dup, fab_prob(cfg.dup));
	atomic_store(&fab_faults.corrupt, fab_prob(cfg.corrupt));
	atomic_store(&fab_faults.delay_ns, delay_ns);
	atomic_store(&fab_faults.rng, cfg.seed);
	atomic_store(&fab_faults_on, cfg.drop > 0 || cfg.dup > 0 ||
					     cfg.corrupt > 0 || delay_ns);
}

static void fab_faults_load(void)
{
	uint32_t i, c, k;

	for (i = 0; i < 256; i++) {
		c = i;
		for (k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		fab_crc_table[i] = c;
	}
	fab_faults_apply(getenv("IBSNAP_FAKE_FAULTS"));
}

void fab_faults_init(void)
{
	pthread_once(&fab_faults_once, fab_faults_load);
}

void fab_faults_config(const char *spec)
{
	fab_faults_init();
	fab_faults_apply(spec ? spec : getenv("IBSNAP_FAKE_FAULTS"));
}

/* splitmix64 over an atomic counter: thread-safe, one stream per process. */
static uint64_t fab_rand(void)
{
	uint64_t z = atomic_fetch_add_explicit(&fab_faults.rng, FAB_GOLDEN,
					       memory_order_relaxed) +
		     FAB_GOLDEN;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void fab_faults_plan(struct fab_fault_plan *plan, size_t len)
{
	uint64_t drop =
		atomic_load_explicit(&fab_faults.drop, memory_order_relaxed);
	uint64_t dup =
		atomic_load_explicit(&fab_faults.dup, memory_order_relaxed);
	uint64_t corrupt =
		atomic_load_explicit(&fab_faults.corrupt, memory_order_relaxed);
	unsigned int i;

	plan->copies = 1;
	plan->crc = corrupt != 0;
	plan->flip[0] = plan->flip[1] = -1;
	plan->delay_ns = atomic_load_explicit(&fab_faults.delay_ns,
					      memory_order_relaxed);
	if (drop && fab_rand() < drop) {
		plan->copies = 0;
		return;
	}
	if (dup && fab_rand() < dup)
		plan->copies = 2;
	for (i = 0; corrupt && i < plan->copies; i++)
		if (fab_rand() < corrupt)
			plan->flip[i] = len ? (int)(fab_rand() % len) : 0;
}

uint32_t fab_crc32c(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t crc = ~0u;

	while (len--)
		crc = fab_crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}
