/* SPDX-License-Identifier: MIT */
/*
 * Exactly once across checkpoints (design §6): two ranks, each on its own
 * fake node, stream to each other over RC (SEND with sequence numbers and
 * checksums, RDMA WRITE with immediate into numbered slots, RDMA READ,
 * FETCH_ADD and CMP_SWP whose every result is predictable), an RC QP on an
 * SRQ (SEND with immediate) and UD, signaled and unsignaled, while this
 * process -- the test's coordinator (ckpt_driver.h) -- checkpoints them at
 * random moments, every third time with the nodes in a new incarnation
 * (new LIDs, GIDs, QPNs and keys: the shim translates the old ones).
 * Every message must arrive once, in order and intact; every atomic must
 * act once; UD may lose, never duplicate.
 *   ckpt_stream [K]            K checkpoints (CKST_CKPTS, 40), then stop
 *   ckpt_stream rank I DIR     a rank (started by the above)
 * CKST_REINC_EVERY=n: a new incarnation every n-th checkpoint (3; 0: none).
 * CKST_DRY=1: the same pauses, no checkpoint (the traffic alone).
 * CKST_WINDOW=n: messages in flight per queue (56; at most 63).
 * CKST_SECS=n: the run's time bound (120 s; make soak's 1,000 need more).
 * It prints each rank's RSS (the shim's memory) and its own after a tenth
 * of the checkpoints (the allocators warm; the first if fewer than 20), at
 * the end, and the ranks' after half of them; CKST_RSS_GROWTH_KB=n fails
 * the run if a rank grew by more than n kB between the first and the end.
 */
#include <stdio.h>

#include "ckpt_driver.h"
#include "ckst_rank.h"

int fab_node_reincarnate(const char *node_name);

static int reinc_nodes(void)
{
	return fab_node_reincarnate("n0") || fab_node_reincarnate("n1");
}

static bool all_done(const char *dir, int n)
{
	char path[PATH_MAX];
	int i;

	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/done.%d", dir, i);
		if (access(path, F_OK))
			return false;
	}
	return true;
}

/* The private resident memory of @pid in kB (RssAnon: heap, stacks; 0 if
 * unknown).  VmRSS also counts the fake fabric's shared rings, which each
 * rebuild maps anew and which come and go by 1-2 MB with the moment. */
static long rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "RssAnon: %ld", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static void rss_all(const struct cd *c, long kb[CD_MAX_RANKS + 1])
{
	int i;

	for (i = 0; i < c->nranks; i++)
		kb[i] = rss_kb(c->r[i].pid);
	kb[CD_MAX_RANKS] = rss_kb(getpid());
}

static int coordinate(const char *argv0)
{
	static const char *names[] = { "",     "quiesce", "drain", "release",
				       "dump", "rebuild", "resume" };
	char dir[] = "/tmp/ckst.XXXXXX", path[PATH_MAX];
	const char *kk = getenv("CKST_CKPTS");
	int nck = kk ? atoi(kk) : 40;
	struct cd c = { 0 };
	const char *secs = getenv("CKST_SECS"), *grow;
	long rss0[CD_MAX_RANKS + 1] = { 0 }, rss1[CD_MAX_RANKS + 1] = { 0 };
	long rssm[CD_MAX_RANKS + 1] = { 0 };
	int k = 0, nreinc = 0, ret = 0, p, i, k0;
	double end;

	/* a rank that dies makes our next write fail (EPIPE), not kill us:
	 * its exit status and output are reported below */
	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir) || cd_start(&c, 2, argv0, dir)) {
		fprintf(stderr, "cannot start the ranks\n");
		cd_kill(&c);
		return 1;
	}
	const char *ev = getenv("CKST_REINC_EVERY");
	int every = ev ? atoi(ev) : 3;

	k0 = nck >= 20 ? nck / 10 : 1;
	srand((unsigned int)getpid());
	end = cd_now() + (secs ? atoi(secs) : 120);
	while (k < nck && cd_now() < end) {
		usleep(2000 + rand() % 40000);
		if (getenv("CKST_DRY")) {
			k++;
			continue;
		}
		bool reinc = every > 0 && k % every == every - 1;

		ret = cd_checkpoint(&c, reinc ? reinc_nodes : NULL);
		nreinc += reinc;
		k++;
		if (k == k0)
			rss_all(&c, rss0);
		if (k == nck / 2)
			rss_all(&c, rssm);
		if (ret) {
			fprintf(stderr, "checkpoint %d failed: %s\n", k,
				strerror(-ret));
			break;
		}
	}
	rss_all(&c, rss1);
	snprintf(path, sizeof(path), "%s/stop", dir);
	fclose(fopen(path, "w"));
	while (!ret && !all_done(dir, 2) && cd_now() < end)
		usleep(10000);
	snprintf(path, sizeof(path), "%s/exit", dir);
	fclose(fopen(path, "w"));
	if (ret == -EPIPE || ret == -ETIMEDOUT || cd_now() >= end) {
		fprintf(stderr, "ranks stuck or gone\n");
		cd_kill(&c);
	}
	if (cd_finish(&c))
		ret = -1;
	printf("ckpt_stream: %d checkpoints (%d with new incarnations)\n", k,
	       nreinc);
	for (p = ISN_PHASE_QUIESCE; p <= ISN_PHASE_RESUME; p++)
		if (c.phase_n[p])
			printf("  %-8s %7.2f ms on average\n", names[p],
			       1e3 * c.phase_s[p] / c.phase_n[p]);
	grow = getenv("CKST_RSS_GROWTH_KB");
	for (i = 0; i < c.nranks; i++) {
		printf("rss rank %d: %ld kB after checkpoint %d, %ld kB after "
		       "checkpoint %d\n",
		       i, rss0[i], k0, rss1[i], k);
		printf("rss rank %d after half: %ld kB after checkpoint %d\n",
		       i, rssm[i], nck / 2);
		if (grow && rss0[i] && rss1[i] - rss0[i] > atol(grow)) {
			fprintf(stderr, "rank %d grew by %ld kB (more than "
					"%s)\n", i, rss1[i] - rss0[i], grow);
			ret = -1;
		}
	}
	printf("rss coordinator: %ld kB after checkpoint %d, %ld kB after "
	       "checkpoint %d\n",
	       rss0[CD_MAX_RANKS], k0, rss1[CD_MAX_RANKS], k);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	if (system(path))
		ret = -1;
	return ret || k < nck ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "rank"))
		return ckst_rank(atoi(argv[2]), argv[3]);
	if (argc >= 2)
		setenv("CKST_CKPTS", argv[1], 1);
	return coordinate(argv[0]);
}
