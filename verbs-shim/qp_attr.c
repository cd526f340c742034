// SPDX-License-Identifier: MIT
/*
 * What the program set on its QPs, kept (with its own, virtual IDs) so that
 * a rebuild can take new backend QPs through the same transitions, and
 * query_qp can answer while a checkpoint has released the backend QP.
 */
#include <errno.h>
#include <string.h>

#include "shim.h"

/* Copy the attributes @mask names from @in to @out. */
static void qp_attr_copy(struct ibv_qp_attr *out, const struct ibv_qp_attr *in,
			 int mask)
{
#define F(m, f)         \
	if (mask & (m)) \
	out->f = in->f
	F(IBV_QP_STATE, qp_state);
	F(IBV_QP_CUR_STATE, cur_qp_state);
	F(IBV_QP_EN_SQD_ASYNC_NOTIFY, en_sqd_async_notify);
	F(IBV_QP_ACCESS_FLAGS, qp_access_flags);
	F(IBV_QP_PKEY_INDEX, pkey_index);
	F(IBV_QP_PORT, port_num);
	F(IBV_QP_QKEY, qkey);
	F(IBV_QP_AV, ah_attr);
	F(IBV_QP_PATH_MTU, path_mtu);
	F(IBV_QP_TIMEOUT, timeout);
	F(IBV_QP_RETRY_CNT, retry_cnt);
	F(IBV_QP_RNR_RETRY, rnr_retry);
	F(IBV_QP_RQ_PSN, rq_psn);
	F(IBV_QP_MAX_QP_RD_ATOMIC, max_rd_atomic);
	F(IBV_QP_ALT_PATH, alt_ah_attr);
	F(IBV_QP_ALT_PATH, alt_pkey_index);
	F(IBV_QP_ALT_PATH, alt_port_num);
	F(IBV_QP_ALT_PATH, alt_timeout);
	F(IBV_QP_MIN_RNR_TIMER, min_rnr_timer);
	F(IBV_QP_SQ_PSN, sq_psn);
	F(IBV_QP_MAX_DEST_RD_ATOMIC, max_dest_rd_atomic);
	F(IBV_QP_PATH_MIG_STATE, path_mig_state);
	F(IBV_QP_CAP, cap);
	F(IBV_QP_DEST_QPN, dest_qp_num);
	F(IBV_QP_RATE_LIMIT, rate_limit);
#undef F
}

void isn_qp_attr_keep(struct isn_qp *qp, const struct ibv_qp_attr *attr,
		      int mask)
{
	qp_attr_copy(&qp->attr, attr, mask);
	if ((mask & IBV_QP_STATE) && attr->qp_state == IBV_QPS_RESET)
		qp->attr_mask = 0; /* back to the start: forget the path */
	qp->attr_mask |= mask & ~(IBV_QP_CUR_STATE | IBV_QP_STATE);
	if (mask & IBV_QP_STATE)
		qp->attr.qp_state = attr->qp_state;
}

int isn_qp_query_kept(struct isn_qp *qp, struct ibv_qp_attr *attr, int mask,
		      struct ibv_qp_init_attr *init)
{
	memset(attr, 0, sizeof(*attr));
	qp_attr_copy(attr, &qp->attr, mask & ~IBV_QP_STATE);
	attr->qp_state = qp->qp.state;
	attr->cur_qp_state = qp->qp.state;
	attr->cap = qp->init.cap;
	memset(init, 0, sizeof(*init));
	init->qp_context = qp->qp.qp_context;
	init->send_cq = qp->qp.send_cq;
	init->recv_cq = qp->qp.recv_cq;
	init->srq = qp->qp.srq;
	init->cap = qp->init.cap;
	init->qp_type = qp->qp.qp_type;
	init->sq_sig_all = qp->init.sq_sig_all;
	return 0;
}

/* RC QPs always let a peer's zero-length drain marker in (design §6). */
void isn_qp_access_to_real(const struct isn_qp *qp, struct ibv_qp_attr *ra,
			   int mask)
{
	if ((mask & IBV_QP_ACCESS_FLAGS) && qp->qp.qp_type == IBV_QPT_RC)
		ra->qp_access_flags |= IBV_ACCESS_REMOTE_WRITE;
}

int isn_qp_destroy_real(struct isn_qp *qp)
{
	struct isn_cq *scq = isn_cq_of(qp->qp.send_cq);
	struct isn_cq *rcq = isn_cq_of(qp->qp.recv_cq);
	int ret;

	if (!qp->real)
		return 0;
	ret = isn_g.ops.destroy_qp(qp->real);
	if (ret)
		return ret;
	isn_qptab_del(qp);
	/* no poller holds it after this */
	if (scq)
		isn_cq_forget_qps(scq);
	if (rcq && rcq != scq)
		isn_cq_forget_qps(rcq);
	qp->real = NULL;
	return 0;
}
