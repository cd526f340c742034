// SPDX-License-Identifier: MIT
/*
 * Shared receive queues at a rebuild: a new backend SRQ with the program's
 * attributes (limit as last set), and the receives still posted when it was
 * released -- the stamped slots of [tail, head) of its log -- posted again
 * in order, after any message an RNR held up took the oldest ones.
 */
#include <errno.h>

#include "../drain/ckpt.h"

int isn_srq_rebuild(void)
{
	struct isn_srq *srq;

	isn_for_each_obj(struct isn_srq, srq, ISN_OBJ_SRQ)
	{
		struct ibv_srq_init_attr a = { .srq_context = srq };

		if (srq->real)
			continue;
		a.attr = srq->attr;
		srq->real = isn_g.ops.create_srq(isn_pd_of(srq->ibsrq.pd)->real,
						 &a);
		if (!srq->real)
			return -errno;
		srq->ibsrq.handle = srq->real->handle;
		srq->post_recv = srq->real->context->ops.post_srq_recv;
	}
	return 0;
}

int isn_srqs_repost(void)
{
	struct isn_srq *srq;
	int ret;

	isn_for_each_obj(struct isn_srq, srq, ISN_OBJ_SRQ)
	{
		ret = isn_wq_repost(NULL, srq, &srq->rq);
		if (ret)
			return ret;
	}
	return 0;
}
