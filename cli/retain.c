/* SPDX-License-Identifier: MIT */
/*
 * Which periodic checkpoints a tier keeps (ibsnap run --keep K): the newest
 * K complete ones, every newer one, and every one that a kept image chains
 * on (an incremental image needs its parents: --predump); the others are
 * renamed to a hidden name (restart never looks there), then deleted.
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "periodic.h"

/* N of "ckpt-N@suffix" (N all digits), else 0 */
unsigned int isn_ckpt_seq(const char *name, const char *suffix)
{
	size_t k = strlen(ISN_CKPT_PREFIX);
	char *end;
	unsigned long n;

	if (strncmp(name, ISN_CKPT_PREFIX, k) || name[k] < '1' || name[k] > '9')
		return 0;
	n = strtoul(name + k, &end, 10);
	return strcmp(end, suffix) || n > UINT_MAX ? 0 : n;
}

/*
 * Every host part of TIER/ckpt-N is complete (and there is one); *@copying
 * (if given): a part's copy is, or was, under way.
 */
bool isn_ckpt_complete(const char *ckdir, bool *copying)
{
	char path[PATH_MAX];
	struct dirent *e;
	int parts = 0, ret;
	bool ok = true;
	DIR *d = opendir(ckdir);

	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", ckdir, e->d_name) >=
		    (int)sizeof(path))
			continue;
		ret = isn_hostdir_complete(path);
		ok &= ret > 0;
		if (copying && ret < 0)
			*copying = true;
		parts++;
	}
	if (d)
		closedir(d);
	return ok && parts > 0;
}

struct ent {
	unsigned int seq;
	bool complete, copying;
};

static int by_seq_desc(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;

	return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

/* Hide TIER/NAME (restart skips hidden names), then delete it. */
static void remove_ckpt(const char *tier, const char *name)
{
	char from[PATH_MAX], to[PATH_MAX + 8];

	snprintf(from, sizeof(from), "%s/%s", tier, name);
	snprintf(to, sizeof(to), "%s/.%s" ISN_RM_SUFFIX, tier, name);
	if (rename(from, to)) {
		fprintf(stderr, "ibsnap run: cannot remove %s: %m\n", from);
		return;
	}
	isn_rm_rf(to);
	fprintf(stderr, "ibsnap run: removed %s\n", from);
}

/* TIER's ckpt-N, newest first (a removal cut short is finished); how many,
 * in *@out (free it) */
static int scan_tier(const char *tier, struct ent **out)
{
	char path[PATH_MAX];
	struct ent *v = NULL, *nv;
	unsigned int seq;
	int n = 0, cap = 0;
	struct dirent *e;
	DIR *dd = opendir(tier);

	while (dd && (e = readdir(dd))) {
		/* a removal cut short */
		if (e->d_name[0] == '.' &&
		    isn_ckpt_seq(e->d_name + 1, ISN_RM_SUFFIX)) {
			snprintf(path, sizeof(path), "%s/%s", tier, e->d_name);
			isn_rm_rf(path);
			continue;
		}
		seq = isn_ckpt_seq(e->d_name, "");
		if (!seq)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv)
				break;
			v = nv;
		}
		snprintf(path, sizeof(path), "%s/%s", tier, e->d_name);
		v[n].seq = seq;
		v[n].copying = false;
		v[n].complete = isn_ckpt_complete(path, &v[n].copying);
		n++;
	}
	if (dd)
		closedir(dd);
	if (n)
		qsort(v, n, sizeof(*v), by_seq_desc);
	*out = v;
	return n;
}

/*
 * Keep the newest K complete checkpoints of a tier and every one newer than
 * the Kth; the older ones go, and those before the last that succeeded that
 * are not complete (a failed dump, a copy given up for a newer one: nothing
 * writes to them any more) unless a copy is said to be under way there (a
 * flusher killed mid-copy leaves that too: such a one goes once it is older
 * than the Kth complete).  A flusher copies the last checkpoint that
 * succeeded (the agent gives an older copy up when a newer checkpoint
 * commits), never older than the newest complete one: it stays.
 */
static bool kept(const struct ent *e, unsigned int cut, unsigned int last_ok)
{
	return e->seq >= cut &&
	       (e->complete || e->copying || e->seq >= last_ok);
}

static unsigned int cut_of(int keep, const struct ent *v, int n)
{
	int i, done = 0;

	for (i = 0; i < n && keep; i++)
		if (v[i].complete && ++done == keep)
			return v[i].seq;
	return 0;
}

struct seqs {
	unsigned int *v;
	int n, cap;
};

static void seqs_add(struct seqs *s, unsigned int seq)
{
	unsigned int *nv;
	int i;

	for (i = 0; i < s->n; i++)
		if (s->v[i] == seq)
			return;
	if (s->n == s->cap) {
		nv = realloc(s->v, (s->cap ? 2 * s->cap : 16) * sizeof(*nv));
		if (!nv)
			return;
		s->v = nv;
		s->cap = s->cap ? 2 * s->cap : 16;
	}
	s->v[s->n++] = seq;
}

static bool seqs_has(const struct seqs *s, unsigned int seq)
{
	int i;

	for (i = 0; i < s->n; i++)
		if (s->v[i] == seq)
			return true;
	return false;
}

/* The checkpoints of TIER whose images the image @path chains on (through
 * its parent links, relative: the same ckpt-K in every tier) */
static void chain_of(const char *tier, const char *path, struct seqs *need)
{
	char cur[PATH_MAX], link[PATH_MAX + 8], next[PATH_MAX], *slash;
	size_t tl = strlen(tier);
	unsigned int seq;
	int i;

	isn_strlcpy(cur, path, sizeof(cur));
	for (i = 0; i < 64; i++) {
		snprintf(link, sizeof(link), "%s/parent", cur);
		if (!realpath(link, next))
			return;
		if (!strncmp(next, tier, tl) && next[tl] == '/') {
			isn_strlcpy(link, next + tl + 1, sizeof(link));
			slash = strchr(link, '/');
			if (slash)
				*slash = '\0';
			seq = isn_ckpt_seq(link, "");
			if (seq)
				seqs_add(need, seq);
		}
		isn_strlcpy(cur, next, sizeof(cur));
	}
}

/* ... of every tree of TIER/ckpt-SEQ (those being written too) */
static void chains_of(const char *tier, unsigned int seq, struct seqs *need)
{
	char ck[PATH_MAX], host[PATH_MAX + 256], tree[2 * PATH_MAX];
	struct dirent *h, *t;
	DIR *hd, *td;

	snprintf(ck, sizeof(ck), "%s/" ISN_CKPT_PREFIX "%u", tier, seq);
	hd = opendir(ck);
	while (hd && (h = readdir(hd))) {
		if (h->d_name[0] == '.')
			continue;
		snprintf(host, sizeof(host), "%s/%s", ck, h->d_name);
		td = opendir(host);
		while (td && (t = readdir(td))) {
			if (!strcmp(t->d_name, ".") ||
			    !strcmp(t->d_name, "..") ||
			    !strncmp(t->d_name, ".manifest", 9))
				continue;
			snprintf(tree, sizeof(tree), "%s/%s", host, t->d_name);
			chain_of(tier, tree, need);
		}
		if (td)
			closedir(td);
	}
	if (hd)
		closedir(hd);
}

/*
 * Prune every tier as kept() says, except that no checkpoint goes while an
 * image kept in any tier chains on it (an incremental image needs its
 * parents; the chain's checkpoint names are the same in every tier, and
 * its length is bounded: --full-every).
 */
void isn_prune(const char *const *tiers, int ntiers, int keep,
	       unsigned int last_ok)
{
	struct ent *v[ISN_TIERS_MAX] = { NULL };
	int n[ISN_TIERS_MAX] = { 0 }, t, i;
	unsigned int cut[ISN_TIERS_MAX] = { 0 };
	struct seqs need = { 0 };
	char name[32];

	for (t = 0; t < ntiers && t < ISN_TIERS_MAX; t++) {
		n[t] = scan_tier(tiers[t], &v[t]);
		cut[t] = cut_of(keep, v[t], n[t]);
		for (i = 0; i < n[t]; i++)
			if (kept(&v[t][i], cut[t], last_ok))
				chains_of(tiers[t], v[t][i].seq, &need);
	}
	for (t = 0; t < ntiers && t < ISN_TIERS_MAX; t++) {
		for (i = 0; i < n[t]; i++) {
			if (kept(&v[t][i], cut[t], last_ok) ||
			    seqs_has(&need, v[t][i].seq))
				continue;
			snprintf(name, sizeof(name), ISN_CKPT_PREFIX "%u",
				 v[t][i].seq);
			remove_ckpt(tiers[t], name);
		}
		free(v[t]);
	}
	free(need.v);
}
