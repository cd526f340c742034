/* SPDX-License-Identifier: MIT */
/*
 * A CRIU plugin for ibsnap's pre-dumps (ibsnap checkpoint --predump).
 *
 * A pre-dump runs while the job still runs, so its processes still hold
 * their RDMA resources: a verbs provider maps the device's queues and
 * doorbells through the /dev/infiniband/uverbs* file (rxe maps its queues
 * that way).  CRIU refuses a mapping of a character device it does not
 * know ("Can't handle non-regular mapping") unless a plugin claims it; this
 * one claims the uverbs mappings, which CRIU then leaves out of the
 * pre-dump's pages.  Nothing is lost: the final dump comes after RELEASE,
 * when the shim has unmapped them, and it is what a restore uses; pages of
 * the pre-dump are taken only where that dump says "in the parent".
 *
 * Loaded only for the pre-dump (criu pre-dump -L DIR): a uverbs mapping
 * left in the final dump is an error there, as it should be.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <criu/criu-plugin.h>

#define UVERBS_PREFIX "/dev/infiniband/uverbs"

static int uverbs_vma(int fd, const struct stat *st)
{
	char path[64], target[256];
	ssize_t n;

	if (!S_ISCHR(st->st_mode))
		return -ENOTSUP;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return -ENOTSUP;
	target[n] = '\0';
	if (strncmp(target, UVERBS_PREFIX, strlen(UVERBS_PREFIX)))
		return -ENOTSUP;
	return 0; /* ours: CRIU skips its pages */
}

static int uverbs_init(int stage)
{
	(void)stage;
	return 0;
}

static void uverbs_fini(int stage, int ret)
{
	(void)stage;
	(void)ret;
}

CR_PLUGIN_REGISTER("ibsnap_uverbs", uverbs_init, uverbs_fini)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__HANDLE_DEVICE_VMA, uverbs_vma)
