/* SPDX-License-Identifier: MIT */
/*
 * Extended CQs (ibv_create_cq_ex): the poll iterator and read_* callbacks of
 * the virtual ibv_cq_ex forward to the backend's and copy out wr_id/status,
 * which the application reads from the CQ itself.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shim.h"
#include "../drain/ckpt.h"

#define REAL_EX(cq) (isn_container_of(cq, struct isn_cq, ibcq)->real_ex)
#define CQ_OF(cq) isn_container_of(cq, struct isn_cq, ibcq)

/* What the backend filled whatever the program asked: receive tracking and
 * translation read these. */
#define ISN_CQX_FORCED_FLAGS                                                   \
	(IBV_WC_EX_WITH_QP_NUM | IBV_WC_EX_WITH_SRC_QP | IBV_WC_EX_WITH_SLID | \
	 IBV_WC_EX_WITH_BYTE_LEN)

/* The current completion: copy what the program reads from the CQ itself;
 * count a consumed receive and translate IDs as poll_cq does. */
void isn_cqx_cur(struct isn_cq *cq)
{
	struct ibv_cq_ex *r = cq->real_ex;
	struct ibv_wc wc;

	cq->ibcq.wr_id = r->wr_id;
	cq->ibcq.status = r->status;
	if (!cq->track && !(isn_slow_get() & ISN_SLOW_XLATE))
		return;
	memset(&wc, 0, sizeof(wc));
	wc.wr_id = r->wr_id;
	wc.status = r->status;
	wc.opcode = r->read_opcode(r);
	wc.qp_num = r->read_qp_num(r);
	wc.src_qp = r->read_src_qp(r);
	wc.slid = r->read_slid(r);
	wc.wc_flags = r->read_wc_flags ? r->read_wc_flags(r) : 0;
	isn_wc_one_ex(cq, &wc);
	cq->cur_qpn = wc.qp_num;
	cq->cur_src_qp = wc.src_qp;
	cq->cur_slid = wc.slid;
}

static int cqx_start_poll(struct ibv_cq_ex *ibcq, struct ibv_poll_cq_attr *attr)
{
	struct isn_cq *cq = CQ_OF(ibcq);
	int ret;

	isn_cq_enter(cq);
	if (isn_unlikely(isn_slow_get() &
			 (ISN_SLOW_CKPT_POLL | ISN_SLOW_SAVED))) {
		isn_cq_leave(cq);
		return isn_ckpt_start_poll(cq, attr);
	}
	ret = cq->real_ex->start_poll(cq->real_ex, attr);
	if (ret) {
		isn_cq_leave(cq);
		return ret;
	}
	isn_cqx_cur(cq);
	return 0;
}

static int cqx_next_poll(struct ibv_cq_ex *ibcq)
{
	struct isn_cq *cq = CQ_OF(ibcq);
	int ret;

	if (cq->ex_locked)
		return isn_ckpt_next_poll(cq);
	ret = cq->real_ex->next_poll(cq->real_ex);
	if (!ret)
		isn_cqx_cur(cq);
	return ret;
}

static void cqx_end_poll(struct ibv_cq_ex *ibcq)
{
	struct isn_cq *cq = CQ_OF(ibcq);

	if (cq->ex_locked) {
		isn_ckpt_end_poll(cq);
		return;
	}
	cq->real_ex->end_poll(cq->real_ex);
	isn_cq_leave(cq);
}

static uint32_t cqx_read_qp_num(struct ibv_cq_ex *ibcq)
{
	struct isn_cq *cq = CQ_OF(ibcq);

	if (cq->ex_saved || (isn_slow_get() & ISN_SLOW_XLATE))
		return cq->cur_qpn;
	return cq->real_ex->read_qp_num(cq->real_ex);
}

static uint32_t cqx_read_src_qp(struct ibv_cq_ex *ibcq)
{
	struct isn_cq *cq = CQ_OF(ibcq);

	if (cq->ex_saved || (isn_slow_get() & ISN_SLOW_XLATE))
		return cq->cur_src_qp;
	return cq->real_ex->read_src_qp(cq->real_ex);
}

static uint32_t cqx_read_slid(struct ibv_cq_ex *ibcq)
{
	struct isn_cq *cq = CQ_OF(ibcq);

	if (cq->ex_saved || (isn_slow_get() & ISN_SLOW_XLATE))
		return cq->cur_slid;
	return cq->real_ex->read_slid(cq->real_ex);
}

/* Reads that carry no ID forward unchanged; a saved completion (handed
 * back after a checkpoint) answers from its ibv_wc (@w), 0 if it has none. */
#define CQX_FORWARD(ret_t, field, saved)                      \
	static ret_t cqx_##field(struct ibv_cq_ex *cq)        \
	{                                                     \
		const struct ibv_wc *w = CQ_OF(cq)->ex_saved; \
		struct ibv_cq_ex *r = REAL_EX(cq);            \
		if (w)                                        \
			return (ret_t)(saved);                \
		return r->field(r);                           \
	}

CQX_FORWARD(enum ibv_wc_opcode, read_opcode, w->opcode)
CQX_FORWARD(uint32_t, read_vendor_err, w->vendor_err)
CQX_FORWARD(uint32_t, read_byte_len, w->byte_len)
CQX_FORWARD(__be32, read_imm_data, w->imm_data)
CQX_FORWARD(unsigned int, read_wc_flags, w->wc_flags)
CQX_FORWARD(uint8_t, read_sl, w->sl)
CQX_FORWARD(uint8_t, read_dlid_path_bits, w->dlid_path_bits)
CQX_FORWARD(uint64_t, read_completion_ts, 0)
CQX_FORWARD(uint16_t, read_cvlan, 0)
CQX_FORWARD(uint32_t, read_flow_tag, 0)
CQX_FORWARD(uint64_t, read_completion_wallclock_ns, 0)

static void cqx_read_tm_info(struct ibv_cq_ex *cq, struct ibv_wc_tm_info *tm)
{
	struct ibv_cq_ex *r = REAL_EX(cq);

	if (CQ_OF(cq)->ex_saved) {
		memset(tm, 0, sizeof(*tm));
		return;
	}
	r->read_tm_info(r, tm);
}

/* Install our callback where the backend has one (NULL stays NULL). */
#define CQX_SET(v, r, field) ((v)->field = (r)->field ? cqx_##field : NULL)

static void cqx_set_ops(struct ibv_cq_ex *v, const struct ibv_cq_ex *r)
{
	CQX_SET(v, r, start_poll);
	CQX_SET(v, r, next_poll);
	CQX_SET(v, r, end_poll);
	CQX_SET(v, r, read_opcode);
	CQX_SET(v, r, read_vendor_err);
	CQX_SET(v, r, read_byte_len);
	CQX_SET(v, r, read_imm_data);
	CQX_SET(v, r, read_qp_num);
	CQX_SET(v, r, read_src_qp);
	CQX_SET(v, r, read_wc_flags);
	CQX_SET(v, r, read_slid);
	CQX_SET(v, r, read_sl);
	CQX_SET(v, r, read_dlid_path_bits);
	CQX_SET(v, r, read_completion_ts);
	CQX_SET(v, r, read_cvlan);
	CQX_SET(v, r, read_flow_tag);
	CQX_SET(v, r, read_tm_info);
	CQX_SET(v, r, read_completion_wallclock_ns);
	v->comp_mask = r->comp_mask;
}

struct ibv_cq_ex *isn_create_cq_ex(struct ibv_context *context,
				   struct ibv_cq_init_attr_ex *attr)
{
	ISN_CTL();
	struct isn_context *ictx = isn_ctx_of(context);
	struct isn_channel *ch = isn_channel_of(attr->channel);
	struct ibv_cq_init_attr_ex real_attr = *attr;
	struct isn_cq *cq;

	if (attr->wc_flags & ~(uint64_t)IBV_CREATE_CQ_SUP_WC_FLAGS ||
	    attr->comp_mask & IBV_CQ_INIT_ATTR_MASK_PD) {
		errno = EOPNOTSUPP; /* no parent domains */
		return NULL;
	}
	if (attr->channel && !ch) {
		errno = EINVAL;
		return NULL;
	}
	cq = calloc(1, sizeof(*cq));
	if (!cq)
		return NULL;
	real_attr.cq_context = cq;
	real_attr.channel = ch ? ch->real : NULL;
	real_attr.wc_flags |= ISN_CQX_FORCED_FLAGS;
	cq->real_ex = isn_g.ops.create_cq_ex(ictx->real, &real_attr);
	if (!cq->real_ex) {
		free(cq);
		return NULL;
	}
	cq->real = ibv_cq_ex_to_cq(cq->real_ex);
	cq->attr_ex = *attr;
	cq->is_ex = true;
	cq->cqe = (int)attr->cqe;
	cq->comp_vector = (int)attr->comp_vector;
	cqx_set_ops(&cq->ibcq, cq->real_ex);
	isn_cq_init(cq, context, attr->channel, attr->cq_context);
	return &cq->ibcq;
}
