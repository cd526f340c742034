// SPDX-License-Identifier: MIT
/*
 * Shared receive queues at a checkpoint: the log of posted receives
 * (verbs-shim/wq.h) says which are still posted; the backend SRQ goes,
 * rebuild/srq.c makes a new one and posts them again.
 */
#include "ckpt.h"

static int srq_release(void)
{
	struct isn_srq *srq;
	int ret;

	isn_for_each_obj(struct isn_srq, srq, ISN_OBJ_SRQ)
	{
		if (!srq->real)
			continue;
		ret = isn_g.ops.destroy_srq(srq->real);
		if (ret)
			return -ret;
		srq->real = NULL;
	}
	return 0;
}

const struct isn_ck_kind isn_ck_srq = {
	.name = "srq",
	.release = srq_release,
	.rebuild = isn_srq_rebuild,
};
