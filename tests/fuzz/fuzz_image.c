/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: what ibsnap restart reads from an image directory.
 * The input is a tier's manifest, a NUL, then a tree's ibsnap.meta; they
 * are written to TIER/HOST/.manifest and TIER/HOST/TREE/ibsnap.meta (in a
 * private directory under /dev/shm) and read the ways restart reads them:
 * isn_pick_image (manifest and meta of every tree), isn_meta_read, and
 * isn_meta_stdio (the --inherit-fd options of the meta's stdio lines).
 * Then the manifest is updated as a commit does (isn_manifest_set) over
 * whatever it held.
 *
 * Checked beyond "no crash, no sanitizer report": restart takes the tree
 * only if its meta reads; a meta that reads has a job and a token; the
 * stdio options are at most one per fd; after the commit's update, restart
 * takes the tree at the meta's checkpoint whatever the old manifest said,
 * or says why not (another tree of that checkpoint is not complete there,
 * the meta names a parent image, parent_ckpt=, that is not there, or a
 * tree of the job on its host, job_tree=, that is not there at that
 * checkpoint).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "check.h"

#define TREE "00000000000000a1"

static char tier[64], hostdir[128], treedir[160];

static void put(const char *dir, const char *name, const uint8_t *p,
		size_t n)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, p, n) == (ssize_t)n);
	close(fd);
}

static void setup(void)
{
	snprintf(tier, sizeof(tier), "/dev/shm/ibsnap-fuzz-image.%d",
		 (int)getpid());
	snprintf(hostdir, sizeof(hostdir), "%s/h", tier);
	snprintf(treedir, sizeof(treedir), "%s/" TREE, hostdir);
	isn_rm_rf(tier);
	CHECK(isn_mkdir_p(treedir, 0700) == 0);
}

static void free_ax(struct isn_agent_ctx *ax)
{
	free(ax->clients);
	free(ax->inos);
	memset(ax, 0, sizeof(*ax));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct isn_tree t[4];
	const char *tiers[1] = { tier };
	const uint8_t *sep = memchr(data, 0, size);
	size_t mlen = sep ? (size_t)(sep - data) : size;
	struct isn_agent_ctx ax = { 0 };
	char inh[3][64], *argv[8];
	int n, k, which, meta_ok;
	char *text = NULL;
	size_t len = 0;
	uint32_t ckpt;
	FILE *why;

	if (!tier[0])
		setup();
	if (size > (1 << 16))
		return 0;
	put(hostdir, ".manifest", data, mlen);
	put(treedir, "ibsnap.meta", sep ? sep + 1 : data,
	    sep ? size - mlen - 1 : 0);

	meta_ok = !isn_meta_read(&ax, treedir);
	CHECK(!meta_ok || (ax.job[0] && ax.have_token));
	ckpt = ax.ckpt;
	free_ax(&ax);

	n = isn_pick_image(tiers, 1, "h", t, 4, &which);
	CHECK(n == 0 || n == 1);
	CHECK(!n || (meta_ok && which == 0 && t[0].ckpt == ckpt &&
		     !strcmp(t[0].path, treedir)));

	k = isn_meta_stdio(treedir, inh, argv, 0);
	CHECK(k >= 0 && k <= 6 && k % 2 == 0);
	for (n = 0; n < k; n += 2)
		CHECK(!strcmp(argv[n], "--inherit-fd") &&
		      strnlen(argv[n + 1], 64) < 64);
	for (n = 100; n < 103; n++)
		close(n);

	/* a commit of this tree's checkpoint, over any old manifest */
	if (!meta_ok)
		return 0;
	CHECK(isn_manifest_set(hostdir, TREE, ckpt, "complete") == 0);
	why = open_memstream(&text, &len);
	CHECK(why != NULL);
	n = isn_pick_image_why(tiers, 1, "h", t, 4, &which, why);
	fclose(why);
	/* or it says why not: another tree's line of that checkpoint is not
	 * complete, or the meta names a parent image or a tree of the job
	 * that is not there */
	CHECK((n == 1 && t[0].ckpt == ckpt) ||
	      (n == 0 && text && strstr(text, ": not taken\n")));
	free(text);
	return 0;
}
