/* SPDX-License-Identifier: MIT */
/*
 * The fake backend: libfakehca.so from the directory libibsnap.so was loaded
 * from (build/lib/ holds both).
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "shim.h"

const struct isn_hca_ops *isn_fake_ops_load(void)
{
	const struct isn_hca_ops *(*get_ops)(void);
	char path[PATH_MAX];
	const char *slash;
	Dl_info info;
	void *h;

	if (!dladdr((void *)isn_fake_ops_load, &info) || !info.dli_fname) {
		isn_log("fake backend: cannot find libibsnap.so's directory");
		errno = ENOENT;
		return NULL;
	}
	slash = strrchr(info.dli_fname, '/');
	snprintf(path, sizeof(path), "%.*s/libfakehca.so",
		 slash ? (int)(slash - info.dli_fname) : 1,
		 slash ? info.dli_fname : ".");
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		isn_log("fake backend: %s", dlerror());
		errno = ENOENT;
		return NULL;
	}
	get_ops = (const struct isn_hca_ops *(*)(void))dlsym(h, "fakehca_ops");
	if (!get_ops) {
		isn_log("fake backend: %s has no fakehca_ops", path);
		errno = ENOENT;
		return NULL;
	}
	return get_ops();
}
