// SPDX-License-Identifier: MIT
/*
 * Memory regions at a rebuild: the same address, length, iova and access;
 * the old virtual lkey and rkey map to the new real ones.
 *
 * A program may unmap memory it registered before it deregisters it (UCX's
 * registration cache deregisters lazily, after the munmap it caught): the
 * HCA keeps the pages pinned, so nothing fails.  A checkpoint in between
 * cannot register that range again.  Such an MR is left without a backing
 * registration (its keys map to nothing, as any use of freed memory would
 * fail) until the program deregisters it, which succeeds; each later
 * rebuild tries again.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../drain/ckpt.h"

/* Is some page of the MR's range no longer mapped?  (msync: ENOMEM) */
static bool mr_unmapped(const struct isn_mr *mr)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t a = (uintptr_t)mr->ibmr.addr & ~(page - 1);
	size_t len = (uintptr_t)mr->ibmr.addr + mr->ibmr.length - a;

	return msync((void *)a, len, MS_ASYNC) && errno == ENOMEM;
}

int isn_mr_rebuild(void)
{
	struct isn_mr *mr;
	int ret, err;

	isn_for_each_obj(struct isn_mr, mr, ISN_OBJ_MR)
	{
		if (mr->real)
			continue;
		mr->real = isn_g.ops.reg_mr(isn_pd_of(mr->ibmr.pd)->real,
					    mr->ibmr.addr, mr->ibmr.length,
					    mr->iova, (unsigned int)mr->access);
		if (!mr->real) {
			err = errno;
			if (!mr_unmapped(mr))
				return -err;
			isn_log("rebuild: mr %p+%zu (lkey 0x%x): unmapped "
				"before ibv_dereg_mr; no registration backs it "
				"until then (%s)",
				mr->ibmr.addr, mr->ibmr.length, mr->ibmr.lkey,
				strerror(err));
			isn_vid_local_forget(ISN_VID_LKEY, mr->ibmr.lkey);
			isn_vid_local_forget(ISN_VID_RKEY, mr->ibmr.rkey);
			continue;
		}
		mr->ibmr.handle = mr->real->handle;
		ret = isn_vid_local_set(ISN_VID_LKEY, mr->ibmr.lkey,
					mr->real->lkey);
		if (!ret)
			ret = isn_vid_local_set(ISN_VID_RKEY, mr->ibmr.rkey,
						mr->real->rkey);
		if (ret)
			return ret;
	}
	return 0;
}
