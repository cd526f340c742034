// SPDX-License-Identifier: MIT
/*
 * The QP of an rdma_cm id through INIT, RTR and RTS with what the
 * handshake agreed (rdma_init_qp_attr), as the kernel's CM computes it:
 * INIT with remote write (and read and atomics when there are responder
 * resources) once the peer is known, RTR with the peer's QPN, PSN and
 * address, RTS with our PSN, the retry count of the active side and the
 * RNR retry count the peer asked for.  UD ids: Q_Key RDMA_UDP_QKEY, RTS
 * at creation.  The QP is a virtual QP: ibv_modify_qp is the shim's.
 */
#include <errno.h>
#include <string.h>

#include "cm.h"

#define CM_MIN_RNR_TIMER 12 /* 0.64 ms */
#define CM_ACK_TIMEOUT 14 /* 67 ms */
#define CM_HOP_LIMIT 64

static bool peer_known(const struct isn_cm_id *cid)
{
	switch (cid->state) {
	case CM_REQ_RCVD:
	case CM_REP_SENT:
	case CM_REP_RCVD:
	case CM_ESTABLISHED:
		return true;
	default:
		return false;
	}
}

void isn_cm_ah_attr(const struct isn_cm_id *cid, struct ibv_ah_attr *ah)
{
	memset(ah, 0, sizeof(*ah));
	ah->dlid = cid->remote.lid;
	ah->port_num = cid->id.port_num ? cid->id.port_num : 1;
	if (cid->local.link_layer == IBV_LINK_LAYER_ETHERNET ||
	    cid->remote.link_layer == IBV_LINK_LAYER_ETHERNET) {
		ah->is_global = 1;
		ah->grh.dgid = cid->remote.gid;
		ah->grh.sgid_index =
			(uint8_t)(cid->dev ? cid->dev->gid_index : 0);
		ah->grh.hop_limit = CM_HOP_LIMIT;
	}
}

static int cm_qp_attr(struct isn_cm_id *cid, struct ibv_qp_attr *a, int *mask)
{
	enum ibv_qp_state st = a->qp_state;
	bool ud = cid->id.qp_type == IBV_QPT_UD;

	memset(a, 0, sizeof(*a));
	a->qp_state = st;
	*mask = IBV_QP_STATE;
	switch (st) {
	case IBV_QPS_INIT:
		a->pkey_index = 0;
		a->port_num = cid->id.port_num ? cid->id.port_num : 1;
		*mask |= IBV_QP_PKEY_INDEX | IBV_QP_PORT;
		if (ud) {
			a->qkey = RDMA_UDP_QKEY;
			*mask |= IBV_QP_QKEY;
		} else {
			if (peer_known(cid))
				a->qp_access_flags =
					IBV_ACCESS_REMOTE_WRITE |
					(cid->local.resp_res ?
						 IBV_ACCESS_REMOTE_READ |
							 IBV_ACCESS_REMOTE_ATOMIC :
						 0);
			*mask |= IBV_QP_ACCESS_FLAGS;
		}
		return 0;
	case IBV_QPS_RTR:
		if (ud)
			return 0;
		if (!peer_known(cid))
			return EINVAL;
		a->path_mtu = cid->local.mtu < cid->remote.mtu ?
				      cid->local.mtu :
				      cid->remote.mtu;
		a->dest_qp_num = cid->remote.qpn;
		a->rq_psn = cid->remote.psn;
		a->max_dest_rd_atomic = cid->local.resp_res;
		a->min_rnr_timer = CM_MIN_RNR_TIMER;
		isn_cm_ah_attr(cid, &a->ah_attr);
		*mask |= IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
			 IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
			 IBV_QP_MIN_RNR_TIMER;
		return 0;
	case IBV_QPS_RTS:
		a->sq_psn = ud ? 0 : cid->local.psn;
		*mask |= IBV_QP_SQ_PSN;
		if (ud)
			return 0;
		if (!peer_known(cid))
			return EINVAL;
		a->timeout = CM_ACK_TIMEOUT;
		a->retry_cnt = cid->listen || cid->passive ? cid->remote.retry :
							     cid->local.retry;
		a->rnr_retry = cid->remote.rnr_retry;
		a->max_rd_atomic = cid->local.init_depth;
		*mask |= IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
			 IBV_QP_MAX_QP_RD_ATOMIC;
		return 0;
	default:
		return EINVAL;
	}
}

ISN_EXPORT int rdma_init_qp_attr(struct rdma_cm_id *id,
				 struct ibv_qp_attr *qp_attr, int *qp_attr_mask)
{
	int ret = cm_qp_attr(isn_cm_id_of(id), qp_attr, qp_attr_mask);

	if (ret) {
		errno = ret;
		return -1;
	}
	return 0;
}

static int modify(struct isn_cm_id *cid, struct ibv_qp *qp,
		  enum ibv_qp_state st)
{
	struct ibv_qp_attr a = { .qp_state = st };
	int mask, ret;

	ret = cm_qp_attr(cid, &a, &mask);
	if (!ret)
		ret = ibv_modify_qp(qp, &a, mask);
	return ret;
}

int isn_cm_qp_init(struct isn_cm_id *cid, struct ibv_qp *qp)
{
	int ret = modify(cid, qp, IBV_QPS_INIT);

	if (!ret && cid->id.qp_type == IBV_QPT_UD) {
		ret = modify(cid, qp, IBV_QPS_RTR);
		if (!ret)
			ret = modify(cid, qp, IBV_QPS_RTS);
	}
	return ret;
}

int isn_cm_qp_rtr_rts(struct isn_cm_id *cid)
{
	struct ibv_qp *qp = cid->id.qp;
	int ret;

	if (!qp)
		return 0;
	/* INIT again: the access flags now that the peer is known */
	ret = modify(cid, qp, IBV_QPS_INIT);
	if (!ret)
		ret = modify(cid, qp, IBV_QPS_RTR);
	if (!ret)
		ret = modify(cid, qp, IBV_QPS_RTS);
	return ret;
}

int isn_cm_qp_err(struct isn_cm_id *cid)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_ERR };

	if (!cid->id.qp)
		return 0;
	return ibv_modify_qp(cid->id.qp, &a, IBV_QP_STATE);
}
