// SPDX-License-Identifier: MIT
/*
 * The checkpoint handlers (include/ibsnap/ckpt.h, design §6), registered
 * at load.  The coordinator client calls them from one thread, phase by
 * phase; each is a loop over the resource kinds in dependency order
 * (contexts, PDs, MRs, channels, CQs, SRQs, QPs, AHs) or its reverse.
 * From QUIESCE to RESUME the handlers hold the control path (ISN_CTL):
 * the program's create/destroy/modify/query calls wait; its posts are
 * queued and its polls served from the saved completions.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ckpt.h"

/* how long a drain waits for its markers before it asks the peers to
 * catch what an RNR holds up; five times that after */
#define DRAIN_MS_DEFAULT 200

struct isn_ck_state isn_ckst;

static const struct isn_ck_kind *const ck_kinds[] = {
	&isn_ck_ctx, &isn_ck_pd,  &isn_ck_mr, &isn_ck_channel,
	&isn_ck_cq,  &isn_ck_srq, &isn_ck_qp, &isn_ck_ah,
	&isn_ck_cm, /* rdma_cm's sockets (verbs-shim/cm_wire.c) */
};

#define NKINDS (sizeof(ck_kinds) / sizeof(ck_kinds[0]))

static const struct isn_ckpt_handlers *_Atomic ck_handlers;

void isn_ckpt_register(const struct isn_ckpt_handlers *h)
{
	atomic_store(&ck_handlers, h);
}

const struct isn_ckpt_handlers *isn_ckpt_handlers(void)
{
	return atomic_load(&ck_handlers);
}

uint64_t isn_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool ck_debug;

static void ck_dump(const char *when)
{
	struct isn_qp *qp;
	struct isn_srq *srq;
	struct isn_cq *cq;

	if (!ck_debug)
		return;
	isn_for_each_obj(struct isn_qp, qp, ISN_OBJ_QP) isn_log(
		"%s: qp 0x%x type %d state %d rq %llu..%llu marker %d/%d", when,
		qp->qp.qp_num, qp->qp.qp_type, qp->ck ? (int)qp->ck->state : -1,
		(unsigned long long)atomic_load(&qp->rq.tail),
		(unsigned long long)atomic_load(&qp->rq.head),
		qp->ck ? qp->ck->marker_posted : -1,
		qp->ck ? qp->ck->marker_done : -1);
	isn_for_each_obj(struct isn_srq, srq, ISN_OBJ_SRQ)
		isn_log("%s: srq rq %llu..%llu", when,
			(unsigned long long)atomic_load(&srq->rq.tail),
			(unsigned long long)atomic_load(&srq->rq.head));
	isn_for_each_obj(struct isn_cq, cq, ISN_OBJ_CQ) isn_log(
		"%s: cq %p saved %u", when, (void *)cq, isn_cq_saved_count(cq));
}

static int ck_quiesce(void)
{
	struct isn_qp *qp;

	isn_ctl_block();
	if (isn_ckst.stage != ISN_CK_RUNNING)
		return -EALREADY;
	atomic_fetch_or(&isn_slow, ISN_SLOW_HOLD_SEND);
	isn_for_each_obj(struct isn_qp, qp, ISN_OBJ_QP) isn_sq_settle(&qp->sq);
	isn_ckst.stage = ISN_CK_QUIESCED;
	return 0;
}

static int ck_drain(struct isn_exchange *x)
{
	struct isn_cq *cq;
	int ret, xret;

	if (isn_ckst.stage != ISN_CK_QUIESCED)
		return -EINVAL;
	atomic_fetch_or(&isn_slow, ISN_SLOW_CKPT_POLL);
	isn_for_each_obj(struct isn_cq, cq, ISN_OBJ_CQ) isn_cq_wait_users(cq);
	ret = isn_qps_post_markers();
	if (!ret)
		isn_cqs_drain(isn_qps_markers_done, isn_ckst.drain_ns);
	/* stuck markers: their peers catch what an RNR holds up */
	xret = isn_qps_drain_exchange(x);
	if (!ret)
		ret = xret;
	if (!ret)
		ret = isn_cqs_drain(isn_qps_markers_done,
				    5 * isn_ckst.drain_ns);
	if (ret == -ETIMEDOUT)
		isn_log("drain: %d QP(s) still busy after %llu ms",
			atomic_load(&isn_ckst.markers_out),
			(unsigned long long)isn_ckst.drain_ns * 6 / 1000000);
	if (!ret)
		isn_ckst.stage = ISN_CK_DRAINED;
	ck_dump("drained");
	return ret;
}

static int ck_release(void)
{
	struct isn_qp *qp;
	struct isn_srq *srq;
	size_t k;
	int ret = 0;

	if (isn_ckst.stage != ISN_CK_DRAINED)
		return -EINVAL;
	atomic_fetch_or(&isn_slow, ISN_SLOW_HOLD_RECV);
	isn_for_each_obj(struct isn_qp, qp, ISN_OBJ_QP) isn_wq_settle(&qp->rq);
	isn_for_each_obj(struct isn_srq, srq, ISN_OBJ_SRQ)
		isn_wq_settle(&srq->rq);
	/* what arrived since the drain (UD) is saved too */
	isn_cqs_drain(NULL, 0);
	for (k = NKINDS; !ret && k-- > 0;)
		if (ck_kinds[k]->release)
			ret = ck_kinds[k]->release();
	isn_ckst.stage = ISN_CK_RELEASED; /* partly, on an error */
	ck_dump("released");
	if (ret)
		isn_log("release: %s: %s", ck_kinds[k]->name, strerror(-ret));
	return ret;
}

static int ck_rebuild(struct isn_exchange *x, int new_incarnation)
{
	size_t k;
	int ret = 0, xret;

	/* every real ID is taken as new anyway; only rebuild/cred.c asks */
	isn_ckst.new_incarnation = new_incarnation;
	if (isn_ckst.stage != ISN_CK_RELEASED)
		return isn_ckst.stage == ISN_CK_REBUILT ? 0 : -EINVAL;
	for (k = 0; !ret && k < NKINDS; k++)
		if (ck_kinds[k]->rebuild)
			ret = ck_kinds[k]->rebuild();
	if (ret)
		isn_log("rebuild: %s: %s", ck_kinds[k - 1]->name,
			strerror(-ret));
	xret = isn_ids_exchange(x); /* the fence, even after an error */
	if (!ret)
		ret = xret;
	for (k = 0; !ret && k < NKINDS; k++)
		if (ck_kinds[k]->connect)
			ret = ck_kinds[k]->connect();
	if (!ret)
		ret = isn_srqs_repost();
	if (!ret)
		isn_ckst.stage = ISN_CK_REBUILT;
	return ret;
}

/*
 * The ID maps' retired copies (virt-ids/vid_map.h) are freed here, at the
 * end of a rebuilt checkpoint: no reader can still be walking one.  The
 * control path (create_ah, modify_qp, query_*, rdma_cm's calls, the CM
 * thread's) waits on the control lock this checkpoint holds; senders have
 * been held since QUIESCE and receivers since RELEASE (each translates
 * inside its send gate or its reserved log slot, which the holds' settles
 * waited out); pollers left their CQ gates at DRAIN and poll under the CQ
 * lock since (saved completions, the early receives' too), so taking each
 * CQ's lock once waits out any of them still translating.  The event
 * threads translate nothing.  Copies retired later (a create or a query
 * outside a checkpoint) wait for the next one.
 */
static void ck_reclaim(void)
{
	struct isn_vid_old *old = isn_vid_old_take();
	struct isn_cq *cq;

	if (!old)
		return;
	isn_for_each_obj(struct isn_cq, cq, ISN_OBJ_CQ)
	{
		pthread_mutex_lock(&cq->lock);
		pthread_mutex_unlock(&cq->lock);
	}
	isn_vid_old_free(old);
}

static int ck_resume(void)
{
	struct isn_srq *srq;
	struct isn_qp *qp;
	int ret;

	if (isn_ckst.stage == ISN_CK_RUNNING)
		return 0;
	if (isn_ckst.stage == ISN_CK_RELEASED) {
		isn_log("resume: not rebuilt; the job cannot go on here");
		return -EINVAL;
	}
	isn_for_each_obj(struct isn_srq, srq, ISN_OBJ_SRQ)
		srq->xlate = isn_slow_get() & ISN_SLOW_XLATE;
	/* a QP with a marker still out posts on the general path */
	isn_for_each_obj(struct isn_qp, qp, ISN_OBJ_QP) isn_qp_set_xlate(qp);
	if (isn_ckst.stage == ISN_CK_REBUILT)
		ck_reclaim(); /* before the holds go */
	else
		isn_early_note_live();
	isn_ckst.stage = ISN_CK_RUNNING;
	isn_ckst.epoch++;
	/* a marker still out, or a shim receive buffer, keeps polls on the
	 * checkpoint's path */
	if (!atomic_load(&isn_ckst.markers_out) && !isn_early_out())
		atomic_fetch_and(&isn_slow, ~(uint32_t)ISN_SLOW_CKPT_POLL);
	ret = isn_pending_flush();
	isn_ctl_unblock();
	return ret;
}

static const struct isn_ckpt_handlers ck_handlers_shim = {
	.quiesce = ck_quiesce,
	.drain = ck_drain,
	.release = ck_release,
	.rebuild = ck_rebuild,
	.resume = ck_resume,
};

__attribute__((constructor)) static void ck_init(void)
{
	const char *ms = getenv("IBSNAP_DRAIN_MS");
	long v = ms ? strtol(ms, NULL, 10) : 0;

	isn_ckst.drain_ns =
		(uint64_t)(v > 0 ? v : DRAIN_MS_DEFAULT) * 1000000ull;
	ck_debug = getenv("IBSNAP_CKPT_DEBUG") != NULL;
	isn_ckpt_register(&ck_handlers_shim);
}
