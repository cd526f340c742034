// SPDX-License-Identifier: MIT
/*
 * Memory regions at a checkpoint: deregistered (the memory stays where it
 * is, in place or restored by CRIU at the same address), registered again
 * at rebuild with new keys that the old virtual ones map to.
 */
#include "ckpt.h"

static int mr_release(void)
{
	struct isn_mr *mr;
	int ret;

	isn_early_release(); /* the shim's own buffers first */
	isn_for_each_obj(struct isn_mr, mr, ISN_OBJ_MR)
	{
		if (!mr->real)
			continue;
		ret = isn_g.ops.dereg_mr(mr->real);
		if (ret)
			return -ret;
		mr->real = NULL;
	}
	return 0;
}

const struct isn_ck_kind isn_ck_mr = {
	.name = "mr",
	.release = mr_release,
	.rebuild = isn_mr_rebuild,
};
