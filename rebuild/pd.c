// SPDX-License-Identifier: MIT
/* Protection domains at a rebuild. */
#include <errno.h>

#include "../drain/ckpt.h"

int isn_pd_rebuild(void)
{
	struct isn_pd *pd;

	isn_for_each_obj(struct isn_pd, pd, ISN_OBJ_PD)
	{
		if (pd->real)
			continue;
		pd->real =
			isn_g.ops.alloc_pd(isn_ctx_of(pd->ibpd.context)->real);
		if (!pd->real)
			return -errno;
	}
	return 0;
}
