// SPDX-License-Identifier: MIT
/* Protection domains at a checkpoint: released, then allocated again. */
#include "ckpt.h"

static int pd_release(void)
{
	struct isn_pd *pd;
	int ret;

	isn_for_each_obj(struct isn_pd, pd, ISN_OBJ_PD)
	{
		if (!pd->real)
			continue;
		ret = isn_g.ops.dealloc_pd(pd->real);
		if (ret)
			return -ret;
		pd->real = NULL;
	}
	return 0;
}

const struct isn_ck_kind isn_ck_pd = {
	.name = "pd",
	.release = pd_release,
	.rebuild = isn_pd_rebuild,
};
