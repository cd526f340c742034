/* SPDX-License-Identifier: MIT */
/*
 * Reaching rdma-core's own functions past our interposed ones.
 */
#include <dlfcn.h>
#include <stddef.h>

#include "shim.h"

void *isn_real_sym(const char *name, const char *version)
{
	static void *_Atomic libibverbs;
	void *h, *p;

	p = dlvsym(RTLD_NEXT, name, version);
	if (p)
		return p;
	/* the program did not link libibverbs (dlopen'ed by a plugin) */
	h = atomic_load(&libibverbs);
	if (!h) {
		h = dlopen("libibverbs.so.1", RTLD_NOW | RTLD_LOCAL);
		if (!h)
			return NULL;
		atomic_store(&libibverbs, h);
	}
	return dlvsym(h, name, version);
}
