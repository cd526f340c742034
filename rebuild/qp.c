// SPDX-License-Identifier: MIT
/*
 * Queue pairs at a rebuild (design §6): a new backend QP with the program's
 * creation attributes, its old virtual QPN mapped to the new real one;
 * after the ID exchange, the same transitions the program made --
 * RESET -> INIT -> RTR -> RTS with its own attributes, translated to the
 * peer's new IDs, and the same PSNs on both ends -- up to the state the
 * backend QP was in when released (an errored QP comes back in ERR); then
 * the receives still posted are posted again.
 */
#include <errno.h>
#include <string.h>

#include "../drain/ckpt.h"

#define M(x) IBV_QP_##x

/* Attributes each transition takes (IB spec, required and optional). */
static int init_mask(enum ibv_qp_type t)
{
	return M(PKEY_INDEX) | M(PORT) |
	       (t == IBV_QPT_UD ? M(QKEY) : M(ACCESS_FLAGS));
}

static int rtr_mask(enum ibv_qp_type t)
{
	if (t == IBV_QPT_UD)
		return M(PKEY_INDEX) | M(QKEY);
	return M(AV) | M(PATH_MTU) | M(DEST_QPN) | M(RQ_PSN) | M(ALT_PATH) |
	       M(ACCESS_FLAGS) | M(PKEY_INDEX) |
	       (t == IBV_QPT_RC ? M(MAX_DEST_RD_ATOMIC) | M(MIN_RNR_TIMER) : 0);
}

static int rts_mask(enum ibv_qp_type t)
{
	if (t == IBV_QPT_UD)
		return M(SQ_PSN) | M(QKEY);
	return M(SQ_PSN) | M(ACCESS_FLAGS) | M(ALT_PATH) | M(PATH_MIG_STATE) |
	       (t == IBV_QPT_RC ?
			M(TIMEOUT) | M(RETRY_CNT) | M(RNR_RETRY) |
				M(MAX_QP_RD_ATOMIC) | M(MIN_RNR_TIMER) :
			0);
}

static int qp_step(struct isn_qp *qp, enum ibv_qp_state to, int mask)
{
	struct ibv_qp_attr a = qp->attr;
	int ret;

	a.qp_state = to;
	ret = isn_qp_modify(qp, &a, M(STATE) | (qp->attr_mask & mask));
	if (ret)
		isn_log("rebuild: qp 0x%x: to state %d: %s", qp->qp.qp_num, to,
			strerror(ret));
	return -ret;
}

/* Take the new backend QP where the old one was. */
static int qp_replay(struct isn_qp *qp)
{
	enum ibv_qp_type t = qp->qp.qp_type;
	enum ibv_qp_state to = qp->ck ? qp->ck->state : qp->qp.state;
	int ret = 0;

	if (to == IBV_QPS_RESET)
		return 0;
	ret = qp_step(qp, IBV_QPS_INIT, init_mask(t));
	if (!ret && to == IBV_QPS_ERR) /* RESET -> ERR is no transition */
		return qp_step(qp, IBV_QPS_ERR, 0);
	if (!ret && to != IBV_QPS_INIT)
		ret = qp_step(qp, IBV_QPS_RTR, rtr_mask(t));
	if (!ret && to != IBV_QPS_INIT && to != IBV_QPS_RTR)
		ret = qp_step(qp, IBV_QPS_RTS, rts_mask(t));
	if (!ret && to == IBV_QPS_SQD)
		ret = qp_step(qp, IBV_QPS_SQD, 0);
	return ret;
}

static int qp_create(struct isn_qp *qp)
{
	struct isn_context *ictx = isn_ctx_of(qp->qp.context);
	struct ibv_qp_init_attr_ex a = qp->init;

	a.qp_context = qp;
	a.pd = isn_pd_of(qp->qp.pd)->real;
	a.send_cq = qp->qp.send_cq ? isn_cq_of(qp->qp.send_cq)->real : NULL;
	a.recv_cq = qp->qp.recv_cq ? isn_cq_of(qp->qp.recv_cq)->real : NULL;
	a.srq = qp->qp.srq ? isn_srq_of(qp->qp.srq)->real : NULL;
	a.comp_mask &= ~IBV_QP_INIT_ATTR_SEND_OPS_FLAGS;
	a.send_ops_flags = 0;
	if (a.comp_mask == IBV_QP_INIT_ATTR_PD)
		qp->real = isn_g.ops.create_qp(a.pd,
					       (struct ibv_qp_init_attr *)&a);
	else
		qp->real = isn_g.ops.create_qp_ex(ictx->real, &a);
	if (!qp->real)
		return -errno;
	qp->qp.handle = qp->real->handle;
	qp->post_send = qp->real->context->ops.post_send;
	qp->post_recv = qp->real->context->ops.post_recv;
	return 0;
}

int isn_qp_rebuild(void)
{
	struct isn_qp *qp;
	int ret;

	isn_for_each_obj(struct isn_qp, qp, ISN_OBJ_QP)
	{
		if (qp->real)
			continue;
		ret = qp_create(qp);
		if (!ret)
			ret = -isn_qptab_add(qp);
		if (!ret)
			ret = isn_vid_local_set(ISN_VID_QPN, qp->qp.qp_num,
						qp->real->qp_num);
		if (ret)
			return ret;
	}
	return 0;
}

int isn_qp_connect(void)
{
	struct isn_qp *qp;
	int ret;

	isn_for_each_obj(struct isn_qp, qp, ISN_OBJ_QP)
	{
		isn_qp_set_xlate(qp);
		ret = qp_replay(qp);
		if (ret)
			return ret;
	}
	isn_for_each_obj(struct isn_qp, qp, ISN_OBJ_QP)
	{
		if (qp->qp.srq || (qp->ck && (qp->ck->state == IBV_QPS_RESET ||
					      qp->ck->state == IBV_QPS_ERR)))
			continue;
		ret = isn_wq_repost(qp, NULL, &qp->rq);
		if (ret)
			return ret;
	}
	return 0;
}
