// SPDX-License-Identifier: MIT
/*
 * Memory regions at a rebuild: the same address, length, iova and access;
 * the old virtual lkey and rkey map to the new real ones.
 */
#include <errno.h>

#include "../drain/ckpt.h"

int isn_mr_rebuild(void)
{
	struct isn_mr *mr;
	int ret;

	isn_for_each_obj(struct isn_mr, mr, ISN_OBJ_MR)
	{
		if (mr->real)
			continue;
		mr->real = isn_g.ops.reg_mr(isn_pd_of(mr->ibmr.pd)->real,
					    mr->ibmr.addr, mr->ibmr.length,
					    mr->iova, (unsigned int)mr->access);
		if (!mr->real)
			return -errno;
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
