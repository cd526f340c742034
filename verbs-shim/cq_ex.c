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

#define REAL_EX(cq) (isn_container_of(cq, struct isn_cq, ibcq)->real_ex)

static int cqx_start_poll(struct ibv_cq_ex *cq, struct ibv_poll_cq_attr *attr)
{
	struct ibv_cq_ex *r = REAL_EX(cq);
	int ret = r->start_poll(r, attr);

	if (!ret) {
		cq->wr_id = r->wr_id;
		cq->status = r->status;
	}
	return ret;
}

static int cqx_next_poll(struct ibv_cq_ex *cq)
{
	struct ibv_cq_ex *r = REAL_EX(cq);
	int ret = r->next_poll(r);

	if (!ret) {
		cq->wr_id = r->wr_id;
		cq->status = r->status;
	}
	return ret;
}

static void cqx_end_poll(struct ibv_cq_ex *cq)
{
	struct ibv_cq_ex *r = REAL_EX(cq);

	r->end_poll(r);
}

static uint32_t cqx_read_qp_num(struct ibv_cq_ex *cq)
{
	struct ibv_cq_ex *r = REAL_EX(cq);
	uint32_t qpn = r->read_qp_num(r);

	return isn_vid_active() ? isn_vid_local_to_virt(ISN_VID_QPN, qpn) : qpn;
}

static uint32_t cqx_read_src_qp(struct ibv_cq_ex *cq)
{
	struct ibv_cq_ex *r = REAL_EX(cq);
	uint32_t qpn = r->read_src_qp(r);

	return isn_vid_active() ?
		       isn_vid_remote_to_virt(NULL, ISN_VID_QPN, qpn) :
		       qpn;
}

static uint32_t cqx_read_slid(struct ibv_cq_ex *cq)
{
	struct ibv_cq_ex *r = REAL_EX(cq);
	uint32_t lid = r->read_slid(r);

	return isn_vid_active() ?
		       isn_vid_remote_to_virt(NULL, ISN_VID_LID, lid) :
		       lid;
}

/* Reads that carry no ID forward unchanged. */
#define CQX_FORWARD(ret_t, field)                      \
	static ret_t cqx_##field(struct ibv_cq_ex *cq) \
	{                                              \
		struct ibv_cq_ex *r = REAL_EX(cq);     \
		return r->field(r);                    \
	}

CQX_FORWARD(enum ibv_wc_opcode, read_opcode)
CQX_FORWARD(uint32_t, read_vendor_err)
CQX_FORWARD(uint32_t, read_byte_len)
CQX_FORWARD(__be32, read_imm_data)
CQX_FORWARD(unsigned int, read_wc_flags)
CQX_FORWARD(uint8_t, read_sl)
CQX_FORWARD(uint8_t, read_dlid_path_bits)
CQX_FORWARD(uint64_t, read_completion_ts)
CQX_FORWARD(uint16_t, read_cvlan)
CQX_FORWARD(uint32_t, read_flow_tag)
CQX_FORWARD(uint64_t, read_completion_wallclock_ns)

static void cqx_read_tm_info(struct ibv_cq_ex *cq, struct ibv_wc_tm_info *tm)
{
	struct ibv_cq_ex *r = REAL_EX(cq);

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
	cq->real_ex = isn_g.ops.create_cq_ex(ictx->real, &real_attr);
	if (!cq->real_ex) {
		free(cq);
		return NULL;
	}
	cq->real = ibv_cq_ex_to_cq(cq->real_ex);
	cqx_set_ops(&cq->ibcq, cq->real_ex);
	isn_cq_init(cq, context, attr->channel, attr->cq_context);
	return &cq->ibcq;
}
