/* SPDX-License-Identifier: MIT */
/*
 * What the fake-HCA unit tests share: a private fabric directory per test and
 * opening fake0 through the ops table.
 */
#ifndef IBSNAP_UT_FAKE_H
#define IBSNAP_UT_FAKE_H

#include <ftw.h>
#include <stdlib.h>
#include <string.h>

#include <ibsnap/hca_ops.h>

#define UT_FABRIC_TEMPLATE "/dev/shm/ibsnap-ut.XXXXXX"

static inline int ut_rm_one(const char *path, const struct stat *sb, int flag,
			    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Make a fabric directory in @dir (room for UT_FABRIC_TEMPLATE) and use it. */
static inline int ut_fabric_enter(char *dir)
{
	strcpy(dir, UT_FABRIC_TEMPLATE);
	if (!mkdtemp(dir))
		return -1;
	setenv("IBSNAP_FABRIC", dir, 1);
	return 0;
}

static inline int ut_fabric_leave(const char *dir)
{
	return nftw(dir, ut_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Open fake0 with link layer @link ("eth", "ib"; NULL: the default). */
static inline struct ibv_context *ut_open_fake0(const struct isn_hca_ops *o,
						const char *link)
{
	struct ibv_device **list;
	struct ibv_context *ctx;
	int n;

	if (link)
		setenv("IBSNAP_FAKE_LINK", link, 1);
	list = o->get_device_list(&n);
	unsetenv("IBSNAP_FAKE_LINK");
	if (!list || n < 1)
		return NULL;
	ctx = o->open_device(list[0]);
	o->free_device_list(list);
	return ctx;
}

#endif /* IBSNAP_UT_FAKE_H */
