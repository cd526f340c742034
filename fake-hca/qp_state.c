/* SPDX-License-Identifier: MIT */
/*
 * modify_qp: the QP state machine of the IB spec (chapter 11, "Modify QP"),
 * with the attributes each transition requires and allows for RC, UC and
 * UD, and the range checks rxe adds (kernel 6.1, as seen on rxe0):
 *   - mask bits past IBV_QP_DEST_QPN: EOPNOTSUPP;
 *   - IBV_QP_CUR_STATE is believed, but only from RTR, RTS, SQD or SQE;
 *   - port 1 only; path_mtu up to the port's 4096; timeout and alt_timeout
 *     up to 31; max_rd_atomic up to FK_MAX_QP_RD_ATOM; max_dest_rd_atomic,
 *     min_rnr_timer, retry_cnt, rnr_retry, pkey_index and access flags are
 *     stored unchecked (both rd_atomic values rounded up to a power of two
 *     in 8 bits: 129 reads back as 0, as on rxe0);
 *   - RoCE: an AV needs a GRH and a reachable destination (ETIMEDOUT), and
 *     alternate paths are refused;
 *   - PSNs are cut to 24 bits; RESET -> ERR is not a transition.
 * Attributes stay across RESET, as on rxe.
 */
#include <errno.h>
#include <string.h>

#include "fake.h"

#define QPM(x) IBV_QP_##x
#define FK_QP_MASK_KNOWN ((QPM(DEST_QPN) << 1) - 1)
#define FK_MAX_TIMER 31

enum fk_qpt { T_RC, T_UC, T_UD };

struct fk_masks {
	int req, opt;
};

/* RESET or INIT to INIT, INIT to RTR: the link and path attributes. */
static bool to_init_rtr(enum ibv_qp_state cur, enum ibv_qp_state next,
			enum fk_qpt t, struct fk_masks *m)
{
	int link = QPM(PKEY_INDEX) | QPM(PORT) |
		   (t == T_UD ? QPM(QKEY) : QPM(ACCESS_FLAGS));

	if (next == IBV_QPS_INIT) {
		if (cur == IBV_QPS_RESET)
			m->req = link;
		else if (cur == IBV_QPS_INIT)
			m->opt = link;
		return cur == IBV_QPS_RESET || cur == IBV_QPS_INIT;
	}
	if (cur != IBV_QPS_INIT || next != IBV_QPS_RTR)
		return false;
	if (t == T_UD) {
		m->opt = QPM(PKEY_INDEX) | QPM(QKEY);
		return true;
	}
	m->req = QPM(AV) | QPM(PATH_MTU) | QPM(DEST_QPN) | QPM(RQ_PSN);
	if (t == T_RC)
		m->req |= QPM(MAX_DEST_RD_ATOMIC) | QPM(MIN_RNR_TIMER);
	m->opt = QPM(ALT_PATH) | QPM(ACCESS_FLAGS) | QPM(PKEY_INDEX);
	return true;
}

/* What may change in RTS (and on the way back to it). */
static int rts_opt(enum fk_qpt t)
{
	if (t == T_UD)
		return QPM(CUR_STATE) | QPM(QKEY);
	return QPM(CUR_STATE) | QPM(ACCESS_FLAGS) | QPM(ALT_PATH) |
	       QPM(PATH_MIG_STATE) | (t == T_RC ? QPM(MIN_RNR_TIMER) : 0);
}

static int sqd_opt(enum fk_qpt t)
{
	if (t == T_UD)
		return QPM(PKEY_INDEX) | QPM(QKEY);
	if (t == T_UC)
		return QPM(AV) | QPM(ALT_PATH) | QPM(ACCESS_FLAGS) |
		       QPM(PKEY_INDEX) | QPM(PATH_MIG_STATE);
	return QPM(PORT) | QPM(AV) | QPM(TIMEOUT) | QPM(RETRY_CNT) |
	       QPM(RNR_RETRY) | QPM(MAX_QP_RD_ATOMIC) |
	       QPM(MAX_DEST_RD_ATOMIC) | QPM(ALT_PATH) | QPM(ACCESS_FLAGS) |
	       QPM(PKEY_INDEX) | QPM(MIN_RNR_TIMER) | QPM(PATH_MIG_STATE);
}

/* Is @cur -> @next a transition, and with which attributes? */
static bool transition(enum ibv_qp_state cur, enum ibv_qp_state next,
		       enum fk_qpt t, struct fk_masks *m)
{
	m->req = m->opt = 0;
	if (next == IBV_QPS_RESET)
		return true;
	if (next == IBV_QPS_ERR)
		return cur != IBV_QPS_RESET;
	switch (cur) {
	case IBV_QPS_RESET:
	case IBV_QPS_INIT:
		return to_init_rtr(cur, next, t, m);
	case IBV_QPS_RTR:
		if (next != IBV_QPS_RTS)
			return false;
		m->req = QPM(SQ_PSN);
		if (t == T_RC)
			m->req |= QPM(TIMEOUT) | QPM(RETRY_CNT) |
				  QPM(RNR_RETRY) | QPM(MAX_QP_RD_ATOMIC);
		m->opt = rts_opt(t);
		return true;
	case IBV_QPS_RTS:
		if (next == IBV_QPS_SQD)
			m->opt = QPM(EN_SQD_ASYNC_NOTIFY);
		else if (next == IBV_QPS_RTS)
			m->opt = rts_opt(t);
		return next == IBV_QPS_SQD || next == IBV_QPS_RTS;
	case IBV_QPS_SQD:
		if (next == IBV_QPS_RTS)
			m->opt = rts_opt(t);
		else if (next == IBV_QPS_SQD)
			m->opt = sqd_opt(t);
		return next == IBV_QPS_RTS || next == IBV_QPS_SQD;
	case IBV_QPS_SQE:
		if (next != IBV_QPS_RTS)
			return false;
		if (t != T_RC)
			m->opt = QPM(CUR_STATE) |
				 (t == T_UD ? QPM(QKEY) : QPM(ACCESS_FLAGS));
		return true;
	default:
		return false;
	}
}

static bool modify_ok(enum ibv_qp_state cur, enum ibv_qp_state next,
		      enum ibv_qp_type type, int mask)
{
	enum fk_qpt t = type == IBV_QPT_RC ? T_RC :
			type == IBV_QPT_UC ? T_UC :
					     T_UD;
	struct fk_masks m;

	if ((mask & QPM(CUR_STATE)) && cur != IBV_QPS_RTR &&
	    cur != IBV_QPS_RTS && cur != IBV_QPS_SQD && cur != IBV_QPS_SQE)
		return false;
	if (!transition(cur, next, t, &m))
		return false;
	return (mask & m.req) == m.req &&
	       !(mask & ~(m.req | m.opt | QPM(STATE)));
}

/* Address vectors: what the kernel's core checks before the driver. */
static int check_paths(struct fk_context *ctx, struct fk_qp *qp,
		       const struct ibv_qp_attr *attr, int mask)
{
	bool eth = ctx->dev->link_layer == IBV_LINK_LAYER_ETHERNET;
	bool connected = qp->ibqp.qp_type != IBV_QPT_UD;
	uint32_t node;
	int ret;

	if (mask & QPM(AV)) {
		ret = fk_ah_check(ctx, &attr->ah_attr, connected, &node);
		if (ret)
			return ret;
	}
	if (mask & QPM(ALT_PATH)) {
		if (eth || attr->alt_port_num != FK_PORT ||
		    attr->alt_timeout > FK_MAX_TIMER)
			return EINVAL;
		return fk_ah_check(ctx, &attr->alt_ah_attr, false, &node);
	}
	return 0;
}

/* The driver's range checks (rxe_qp_chk_attr). */
static int check_values(const struct ibv_qp_attr *attr, int mask)
{
	if ((mask & QPM(PATH_MTU)) && attr->path_mtu > IBV_MTU_4096)
		return EINVAL;
	if ((mask & QPM(MAX_QP_RD_ATOMIC)) &&
	    attr->max_rd_atomic > FK_MAX_QP_RD_ATOM)
		return EINVAL;
	if ((mask & QPM(TIMEOUT)) && attr->timeout > FK_MAX_TIMER)
		return EINVAL;
	return 0;
}

static uint8_t pow2_up(uint8_t v)
{
	unsigned int p = 1;

	if (!v)
		return 0;
	while (p < v)
		p <<= 1;
	return (uint8_t)p;
}

/* An AV as rxe reports it back on RoCE: a GRH, no LID/SL/rate, and the
 * hop limit the kernel's route lookup gave (64) for a unicast GID. */
static void store_av(struct fk_context *ctx, struct ibv_ah_attr *dst,
		     const struct ibv_ah_attr *src)
{
	*dst = *src;
	if (ctx->dev->link_layer != IBV_LINK_LAYER_ETHERNET)
		return;
	dst->dlid = 0;
	dst->sl = 0;
	dst->src_path_bits = 0;
	dst->static_rate = 0;
	if (dst->grh.dgid.raw[0] != 0xff)
		dst->grh.hop_limit = 64;
}

static void apply_attrs(struct fk_context *ctx, struct ibv_qp_attr *q,
			const struct ibv_qp_attr *a, int mask)
{
	if (mask & QPM(EN_SQD_ASYNC_NOTIFY))
		q->en_sqd_async_notify = a->en_sqd_async_notify;
	if (mask & QPM(ACCESS_FLAGS))
		q->qp_access_flags = a->qp_access_flags;
	if (mask & QPM(PKEY_INDEX))
		q->pkey_index = a->pkey_index;
	if (mask & QPM(PORT))
		q->port_num = a->port_num;
	if (mask & QPM(QKEY))
		q->qkey = a->qkey;
	if (mask & QPM(AV))
		store_av(ctx, &q->ah_attr, &a->ah_attr);
	if (mask & QPM(ALT_PATH)) {
		store_av(ctx, &q->alt_ah_attr, &a->alt_ah_attr);
		q->alt_port_num = a->alt_port_num;
		q->alt_pkey_index = a->alt_pkey_index;
		q->alt_timeout = a->alt_timeout;
	}
	if (mask & QPM(PATH_MTU))
		q->path_mtu = a->path_mtu;
	if (mask & QPM(TIMEOUT))
		q->timeout = a->timeout;
	if (mask & QPM(RETRY_CNT))
		q->retry_cnt = a->retry_cnt;
	if (mask & QPM(RNR_RETRY))
		q->rnr_retry = a->rnr_retry;
	if (mask & QPM(RQ_PSN))
		q->rq_psn = a->rq_psn & 0xffffff;
	if (mask & QPM(MIN_RNR_TIMER))
		q->min_rnr_timer = a->min_rnr_timer;
	if (mask & QPM(SQ_PSN))
		q->sq_psn = a->sq_psn & 0xffffff;
	if (mask & QPM(MAX_QP_RD_ATOMIC))
		q->max_rd_atomic = pow2_up(a->max_rd_atomic);
	if (mask & QPM(MAX_DEST_RD_ATOMIC))
		q->max_dest_rd_atomic = pow2_up(a->max_dest_rd_atomic);
	if (mask & QPM(PATH_MIG_STATE))
		q->path_mig_state = a->path_mig_state;
	if (mask & QPM(DEST_QPN))
		q->dest_qp_num = a->dest_qp_num;
}

/* Apply and let the transport follow; lock held. */
static int apply(struct fk_context *ctx, struct fk_qp *qp,
		 const struct ibv_qp_attr *attr, int mask,
		 enum ibv_qp_state next)
{
	enum ibv_qp_state old = qp->attr.qp_state;
	int ret;

	apply_attrs(ctx, &qp->attr, attr, mask);
	if (!(mask & QPM(STATE)))
		return 0;
	qp->attr.qp_state = next;
	qp->ibqp.state = next;
	ret = fk_qp_transition(qp, old);
	if (ret)
		return -ret;
	/* an empty send queue is drained at once; else the transport says */
	if (next == IBV_QPS_SQD && old != IBV_QPS_SQD &&
	    qp->attr.en_sqd_async_notify && qp->sq.head == qp->sq.tail)
		fk_async_event(ctx, IBV_EVENT_SQ_DRAINED, qp);
	return 0;
}

int fk_modify_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr, int attr_mask)
{
	struct fk_context *ctx = to_fctx(ibqp->context);
	struct fk_qp *qp = to_fqp(ibqp);
	enum ibv_qp_state cur, next;
	int ret;

	if (attr_mask & ~FK_QP_MASK_KNOWN)
		return EOPNOTSUPP;
	if (((attr_mask & QPM(CUR_STATE)) &&
	     attr->cur_qp_state > IBV_QPS_ERR) ||
	    ((attr_mask & QPM(STATE)) && attr->qp_state > IBV_QPS_ERR) ||
	    ((attr_mask & QPM(PORT)) && attr->port_num != FK_PORT))
		return EINVAL;
	pthread_mutex_lock(&ctx->lock);
	ret = check_paths(ctx, qp, attr, attr_mask);
	cur = (attr_mask & QPM(CUR_STATE)) ? attr->cur_qp_state :
					     qp->attr.qp_state;
	next = (attr_mask & QPM(STATE)) ? attr->qp_state : cur;
	if (!ret && !modify_ok(cur, next, ibqp->qp_type, attr_mask))
		ret = EINVAL;
	if (!ret)
		ret = check_values(attr, attr_mask);
	if (!ret)
		ret = apply(ctx, qp, attr, attr_mask, next);
	pthread_mutex_unlock(&ctx->lock);
	if (ret)
		fk_dbg("modify_qp 0x%x %d -> %d mask 0x%x: %s", ibqp->qp_num,
		       cur, next, attr_mask, strerror(ret));
	return ret;
}
