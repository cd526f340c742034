// SPDX-License-Identifier: MIT
/*
 * Posting the logged receives of a rebuilt receive queue or SRQ again.
 * The log (verbs-shim/wq.h) holds them in post order; the oldest go first
 * to messages an RNR held up at the drain (drain/early.c), as the HCA
 * would have given those messages the oldest receives.  Neither head nor
 * tail moves for a re-post: the slots stand for the same receives.
 */
#include <errno.h>

#include "../drain/ckpt.h"

#define REPOST_BATCH 16

static bool ent_posted(const struct isn_wq *wq, uint64_t seq)
{
	return atomic_load(&isn_wq_ent(wq, seq)->stamp) == seq + 1;
}

static void ent_to_wr(const struct isn_wq_ent *e, struct ibv_recv_wr *wr,
		      struct ibv_sge *sge, bool real_keys)
{
	uint32_t i;

	for (i = 0; i < e->num_sge; i++) {
		sge[i] = e->sge[i];
		if (real_keys)
			sge[i].lkey = isn_vid_local_to_real(ISN_VID_LKEY,
							    e->sge[i].lkey);
	}
	*wr = (struct ibv_recv_wr){ .wr_id = e->wr_id,
				    .sg_list = sge,
				    .num_sge = (int)e->num_sge };
}

static int post_one(struct isn_qp *qp, struct isn_srq *srq,
		    struct ibv_recv_wr *wr)
{
	struct ibv_recv_wr *bad;

	return qp ? qp->post_recv(qp->real, wr, &bad) :
		    srq->post_recv(srq->real, wr, &bad);
}

int isn_wq_repost(struct isn_qp *qp, struct isn_srq *srq, struct isn_wq *wq)
{
	struct ibv_sge sge[wq->max_sge ? wq->max_sge : 1];
	uint64_t seq, head = atomic_load(&wq->head);
	struct ibv_recv_wr wr;
	int ret;

	if (head - atomic_load(&wq->tail) > (uint64_t)wq->mask + 1) {
		isn_log("rebuild: the receive log overflowed: more receives "
			"posted than polled; some cannot be posted again");
		return -EOVERFLOW;
	}
	/* the oldest receives take the held-up messages */
	for (seq = atomic_load(&wq->tail); seq < head; seq++) {
		if (!ent_posted(wq, seq))
			continue;
		if (!isn_early_pending(qp, srq))
			break;
		ent_to_wr(isn_wq_ent(wq, seq), &wr, sge, false);
		isn_early_take(qp, srq, &wr);
		atomic_store(&wq->tail, seq + 1);
	}
	for (; seq < head; seq++) {
		if (!ent_posted(wq, seq))
			continue;
		ent_to_wr(isn_wq_ent(wq, seq), &wr, sge, true);
		ret = post_one(qp, srq, &wr);
		if (ret)
			return -ret;
	}
	return 0;
}
