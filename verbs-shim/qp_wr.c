/* SPDX-License-Identifier: MIT */
/*
 * The ibv_wr_* API (ibv_qp_ex) on virtual QPs, for any backend: between
 * wr_start and wr_complete the calls build ibv_send_wr entries in arrays
 * allocated at QP creation, and wr_complete posts them as one list through
 * the shim's post_send (which translates as needed).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shim.h"

#define WR_SUPPORTED                                                      \
	(IBV_QP_EX_WITH_RDMA_WRITE | IBV_QP_EX_WITH_RDMA_WRITE_WITH_IMM | \
	 IBV_QP_EX_WITH_SEND | IBV_QP_EX_WITH_SEND_WITH_IMM |             \
	 IBV_QP_EX_WITH_RDMA_READ | IBV_QP_EX_WITH_ATOMIC_CMP_AND_SWP |   \
	 IBV_QP_EX_WITH_ATOMIC_FETCH_AND_ADD | IBV_QP_EX_WITH_LOCAL_INV | \
	 IBV_QP_EX_WITH_SEND_WITH_INV)

struct isn_wr_batch {
	uint32_t cap, n;
	int err; /* first error since wr_start */
	uint32_t max_sge, max_inline;
	struct ibv_send_wr *wr;
	struct ibv_sge *sge; /* max_sge per WR, plus one for inline data */
	uint8_t *inl; /* max_inline bytes per WR */
};

static struct isn_wr_batch *wrb_of(struct ibv_qp_ex *qpx)
{
	return isn_container_of(qpx, struct isn_qp, qp_ex)->wrb;
}

/* Start a new WR of @opcode; NULL (and the batch fails) if it is full. */
static struct ibv_send_wr *wr_new(struct ibv_qp_ex *qpx,
				  enum ibv_wr_opcode opcode)
{
	struct isn_wr_batch *b = wrb_of(qpx);
	struct ibv_send_wr *wr;

	if (b->n == b->cap) {
		b->err = ENOMEM;
		return NULL;
	}
	wr = &b->wr[b->n++];
	memset(wr, 0, sizeof(*wr));
	wr->wr_id = qpx->wr_id;
	wr->send_flags = qpx->wr_flags;
	wr->opcode = opcode;
	return wr;
}

/* The WR the last opcode call started, for the wr_set_* calls. */
static struct ibv_send_wr *wr_cur(struct ibv_qp_ex *qpx)
{
	struct isn_wr_batch *b = wrb_of(qpx);

	if (!b->n) {
		b->err = EINVAL;
		return NULL;
	}
	return &b->wr[b->n - 1];
}

static void wr_rdma(struct ibv_qp_ex *qpx, enum ibv_wr_opcode op, uint32_t rkey,
		    uint64_t addr, __be32 imm)
{
	struct ibv_send_wr *wr = wr_new(qpx, op);

	if (!wr)
		return;
	wr->wr.rdma.rkey = rkey;
	wr->wr.rdma.remote_addr = addr;
	wr->imm_data = imm;
}

static void wr_rdma_write(struct ibv_qp_ex *qpx, uint32_t rkey, uint64_t addr)
{
	wr_rdma(qpx, IBV_WR_RDMA_WRITE, rkey, addr, 0);
}

static void wr_rdma_write_imm(struct ibv_qp_ex *qpx, uint32_t rkey,
			      uint64_t addr, __be32 imm)
{
	wr_rdma(qpx, IBV_WR_RDMA_WRITE_WITH_IMM, rkey, addr, imm);
}

static void wr_rdma_read(struct ibv_qp_ex *qpx, uint32_t rkey, uint64_t addr)
{
	wr_rdma(qpx, IBV_WR_RDMA_READ, rkey, addr, 0);
}

static void wr_atomic(struct ibv_qp_ex *qpx, enum ibv_wr_opcode op,
		      uint32_t rkey, uint64_t addr, uint64_t cmp_add,
		      uint64_t swap)
{
	struct ibv_send_wr *wr = wr_new(qpx, op);

	if (!wr)
		return;
	wr->wr.atomic.rkey = rkey;
	wr->wr.atomic.remote_addr = addr;
	wr->wr.atomic.compare_add = cmp_add;
	wr->wr.atomic.swap = swap;
}

static void wr_atomic_cmp_swp(struct ibv_qp_ex *qpx, uint32_t rkey,
			      uint64_t addr, uint64_t compare, uint64_t swap)
{
	wr_atomic(qpx, IBV_WR_ATOMIC_CMP_AND_SWP, rkey, addr, compare, swap);
}

static void wr_atomic_fetch_add(struct ibv_qp_ex *qpx, uint32_t rkey,
				uint64_t addr, uint64_t add)
{
	wr_atomic(qpx, IBV_WR_ATOMIC_FETCH_AND_ADD, rkey, addr, add, 0);
}

static void wr_send(struct ibv_qp_ex *qpx)
{
	wr_new(qpx, IBV_WR_SEND);
}

static void wr_send_imm(struct ibv_qp_ex *qpx, __be32 imm)
{
	struct ibv_send_wr *wr = wr_new(qpx, IBV_WR_SEND_WITH_IMM);

	if (wr)
		wr->imm_data = imm;
}

static void wr_send_inv(struct ibv_qp_ex *qpx, uint32_t rkey)
{
	struct ibv_send_wr *wr = wr_new(qpx, IBV_WR_SEND_WITH_INV);

	if (wr)
		wr->invalidate_rkey = rkey;
}

static void wr_local_inv(struct ibv_qp_ex *qpx, uint32_t rkey)
{
	struct ibv_send_wr *wr = wr_new(qpx, IBV_WR_LOCAL_INV);

	if (wr)
		wr->invalidate_rkey = rkey;
}

static void wr_set_ud_addr(struct ibv_qp_ex *qpx, struct ibv_ah *ah,
			   uint32_t remote_qpn, uint32_t remote_qkey)
{
	struct ibv_send_wr *wr = wr_cur(qpx);

	if (!wr)
		return;
	wr->wr.ud.ah = ah;
	wr->wr.ud.remote_qpn = remote_qpn;
	wr->wr.ud.remote_qkey = remote_qkey;
}

static void wr_set_sge_list(struct ibv_qp_ex *qpx, size_t n,
			    const struct ibv_sge *sg)
{
	struct isn_wr_batch *b = wrb_of(qpx);
	struct ibv_send_wr *wr = wr_cur(qpx);

	if (!wr)
		return;
	if (n > b->max_sge) {
		b->err = EINVAL;
		return;
	}
	wr->sg_list = &b->sge[(wr - b->wr) * (b->max_sge + 1)];
	memcpy(wr->sg_list, sg, n * sizeof(*sg));
	wr->num_sge = n;
}

static void wr_set_sge(struct ibv_qp_ex *qpx, uint32_t lkey, uint64_t addr,
		       uint32_t length)
{
	struct ibv_sge sge = { .addr = addr, .length = length, .lkey = lkey };

	wr_set_sge_list(qpx, 1, &sge);
}

static void wr_set_inline_data_list(struct ibv_qp_ex *qpx, size_t n,
				    const struct ibv_data_buf *buf)
{
	struct isn_wr_batch *b = wrb_of(qpx);
	struct ibv_send_wr *wr = wr_cur(qpx);
	size_t i, len = 0;
	uint8_t *dst;

	if (!wr)
		return;
	dst = b->inl + (size_t)(wr - b->wr) * b->max_inline;
	for (i = 0; i < n; i++) {
		if (buf[i].length > b->max_inline - len) {
			b->err = EINVAL;
			return;
		}
		memcpy(dst + len, buf[i].addr, buf[i].length);
		len += buf[i].length;
	}
	/* the data is copied now, as the API requires; post it inline */
	wr->sg_list = &b->sge[(wr - b->wr) * (b->max_sge + 1)];
	wr->sg_list[0] =
		(struct ibv_sge){ .addr = (uintptr_t)dst, .length = len };
	wr->num_sge = 1;
	wr->send_flags |= IBV_SEND_INLINE;
}

static void wr_set_inline_data(struct ibv_qp_ex *qpx, void *addr, size_t length)
{
	struct ibv_data_buf buf = { .addr = addr, .length = length };

	wr_set_inline_data_list(qpx, 1, &buf);
}

static void wr_start(struct ibv_qp_ex *qpx)
{
	struct isn_wr_batch *b = wrb_of(qpx);

	b->n = 0;
	b->err = 0;
}

static void wr_abort(struct ibv_qp_ex *qpx)
{
	wr_start(qpx);
}

static int wr_complete(struct ibv_qp_ex *qpx)
{
	struct isn_wr_batch *b = wrb_of(qpx);
	struct ibv_send_wr *bad;
	uint32_t i;
	int ret = b->err;

	if (!ret && b->n) {
		for (i = 0; i + 1 < b->n; i++)
			b->wr[i].next = &b->wr[i + 1];
		b->wr[b->n - 1].next = NULL;
		ret = isn_post_send(&qpx->qp_base, b->wr, &bad);
	}
	wr_start(qpx);
	return ret;
}

static void wr_set_ops(struct ibv_qp_ex *x, uint64_t flags)
{
	x->wr_start = wr_start;
	x->wr_complete = wr_complete;
	x->wr_abort = wr_abort;
	x->wr_set_sge = wr_set_sge;
	x->wr_set_sge_list = wr_set_sge_list;
	x->wr_set_inline_data = wr_set_inline_data;
	x->wr_set_inline_data_list = wr_set_inline_data_list;
	x->wr_set_ud_addr = wr_set_ud_addr;
	if (flags & IBV_QP_EX_WITH_RDMA_WRITE)
		x->wr_rdma_write = wr_rdma_write;
	if (flags & IBV_QP_EX_WITH_RDMA_WRITE_WITH_IMM)
		x->wr_rdma_write_imm = wr_rdma_write_imm;
	if (flags & IBV_QP_EX_WITH_SEND)
		x->wr_send = wr_send;
	if (flags & IBV_QP_EX_WITH_SEND_WITH_IMM)
		x->wr_send_imm = wr_send_imm;
	if (flags & IBV_QP_EX_WITH_RDMA_READ)
		x->wr_rdma_read = wr_rdma_read;
	if (flags & IBV_QP_EX_WITH_ATOMIC_CMP_AND_SWP)
		x->wr_atomic_cmp_swp = wr_atomic_cmp_swp;
	if (flags & IBV_QP_EX_WITH_ATOMIC_FETCH_AND_ADD)
		x->wr_atomic_fetch_add = wr_atomic_fetch_add;
	if (flags & IBV_QP_EX_WITH_LOCAL_INV)
		x->wr_local_inv = wr_local_inv;
	if (flags & IBV_QP_EX_WITH_SEND_WITH_INV)
		x->wr_send_inv = wr_send_inv;
}

int isn_wr_setup(struct isn_qp *qp, uint64_t send_ops_flags)
{
	struct ibv_qp_attr attr;
	struct ibv_qp_init_attr init;
	struct isn_wr_batch *b;

	if (send_ops_flags & ~(uint64_t)WR_SUPPORTED)
		return EOPNOTSUPP;
	if (isn_g.ops.query_qp(qp->real, &attr, IBV_QP_CAP, &init))
		return EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return ENOMEM;
	b->cap = init.cap.max_send_wr ? init.cap.max_send_wr : 1;
	b->max_sge = init.cap.max_send_sge;
	b->max_inline = init.cap.max_inline_data;
	b->wr = calloc(b->cap, sizeof(*b->wr));
	b->sge = calloc((size_t)b->cap * (b->max_sge + 1), sizeof(*b->sge));
	b->inl = calloc((size_t)b->cap * b->max_inline + 1, 1);
	qp->wrb = b;
	if (!b->wr || !b->sge || !b->inl)
		return ENOMEM; /* the caller destroys the QP, which frees b */
	wr_set_ops(&qp->qp_ex, send_ops_flags);
	qp->qp_ex.comp_mask = 0;
	qp->comp_mask |= ISN_VERBS_QP_EX;
	return 0;
}

void isn_wr_free(struct isn_qp *qp)
{
	struct isn_wr_batch *b = qp->wrb;

	if (!b)
		return;
	free(b->wr);
	free(b->sge);
	free(b->inl);
	free(b);
	qp->wrb = NULL;
}
