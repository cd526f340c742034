/* SPDX-License-Identifier: MIT */
/*
 * Work queues of the fake HCA: post_send / post_recv / post_srq_recv, the
 * queue memory, completions of send WQEs, flushes and the QP state hooks.
 * Errors at post time follow rdma-core's rxe provider: EINVAL for a bad WR
 * or a QP not yet ready to send, ENOMEM for a full queue.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dp_pkt.h"

static size_t swqe_stride(uint32_t max_sge, uint32_t max_inline)
{
	size_t s = sizeof(struct fk_swqe) + max_sge * sizeof(struct ibv_sge) +
		   max_inline;

	return (s + 15) & ~(size_t)15;
}

int fk_rq_init(struct fk_rq *rq, uint32_t max_wr, uint32_t max_sge)
{
	memset(rq, 0, sizeof(*rq));
	rq->max_wr = max_wr;
	rq->max_sge = max_sge;
	rq->stride = sizeof(struct fk_rwqe) + max_sge * sizeof(struct ibv_sge);
	if (!max_wr)
		return 0;
	rq->buf = calloc(max_wr, rq->stride);
	return rq->buf ? 0 : -ENOMEM;
}

void fk_rq_fini(struct fk_rq *rq)
{
	free(rq->buf);
	rq->buf = NULL;
}

int fk_qp_queues_init(struct fk_qp *qp)
{
	struct fk_sq *sq = &qp->sq;
	int ret;

	memset(sq, 0, sizeof(*sq));
	sq->max_wr = qp->cap.max_send_wr;
	sq->max_sge = qp->cap.max_send_sge;
	sq->max_inline = qp->cap.max_inline_data;
	sq->stride = swqe_stride(sq->max_sge, sq->max_inline);
	if (sq->max_wr) {
		sq->buf = calloc(sq->max_wr, sq->stride);
		if (!sq->buf)
			return -ENOMEM;
	}
	ret = fk_rq_init(&qp->rq, qp->ibqp.srq ? 0 : qp->cap.max_recv_wr,
			 qp->cap.max_recv_sge);
	if (ret) {
		free(sq->buf);
		sq->buf = NULL;
		return ret;
	}
	fk_list_init(&qp->timer_entry);
	fk_req_reset(qp);
	fk_resp_reset(qp);
	return 0;
}

void fk_qp_queues_fini(struct fk_qp *qp)
{
	if (!fk_list_empty(&qp->timer_entry))
		fk_list_del(&qp->timer_entry);
	free(qp->sq.buf);
	qp->sq.buf = NULL;
	fk_rq_fini(&qp->rq);
}

/* ---- receive side ---- */

static int rq_post_one(struct fk_rq *rq, const struct ibv_recv_wr *wr)
{
	struct fk_rwqe *w;
	uint64_t total = 0;
	int i;

	if (wr->num_sge < 0 || (uint32_t)wr->num_sge > rq->max_sge)
		return EINVAL;
	if (rq->tail - rq->head >= rq->max_wr)
		return ENOMEM;
	w = rq_wqe(rq, rq->tail);
	w->wr_id = wr->wr_id;
	w->num_sge = wr->num_sge;
	for (i = 0; i < wr->num_sge; i++) {
		w->sge[i] = wr->sg_list[i];
		total += wr->sg_list[i].length;
	}
	w->total_len = total > UINT32_MAX ? UINT32_MAX : (uint32_t)total;
	rq->tail++;
	return 0;
}

static void recv_flush_one(struct fk_qp *qp, uint64_t wr_id)
{
	struct ibv_wc wc = {
		.wr_id = wr_id,
		.status = IBV_WC_WR_FLUSH_ERR,
		.opcode = IBV_WC_RECV,
		.qp_num = qp->ibqp.qp_num,
	};

	fk_cq_push(to_fcq(qp->ibqp.recv_cq), &wc, false);
}

int fk_post_recv(struct ibv_qp *ibqp, struct ibv_recv_wr *wr,
		 struct ibv_recv_wr **bad_wr)
{
	struct fk_qp *qp = to_fqp(ibqp);
	struct fk_context *ctx = qp_ctx(qp);
	int ret = 0;

	if (ibqp->srq || qp->attr.qp_state == IBV_QPS_RESET) {
		*bad_wr = wr;
		return EINVAL;
	}
	pthread_mutex_lock(&ctx->lock);
	for (; wr; wr = wr->next) {
		ret = rq_post_one(&qp->rq, wr);
		if (ret) {
			*bad_wr = wr;
			break;
		}
	}
	if (qp->attr.qp_state == IBV_QPS_ERR) {
		while (qp->rq.head != qp->rq.tail)
			recv_flush_one(qp,
				       rq_wqe(&qp->rq, qp->rq.head++)->wr_id);
	}
	pthread_mutex_unlock(&ctx->lock);
	return ret;
}

int fk_post_srq_recv(struct ibv_srq *ibsrq, struct ibv_recv_wr *wr,
		     struct ibv_recv_wr **bad_wr)
{
	struct fk_srq *srq = to_fsrq(ibsrq);
	struct fk_context *ctx = to_fctx(ibsrq->context);
	int ret = 0;

	pthread_mutex_lock(&ctx->lock);
	for (; wr; wr = wr->next) {
		ret = rq_post_one(&srq->rq, wr);
		if (ret) {
			*bad_wr = wr;
			break;
		}
	}
	pthread_mutex_unlock(&ctx->lock);
	return ret;
}

struct fk_rwqe *fk_rq_peek(struct fk_qp *qp, struct fk_srq **srq_p)
{
	struct fk_rq *rq = &qp->rq;

	*srq_p = NULL;
	if (qp->ibqp.srq) {
		*srq_p = to_fsrq(qp->ibqp.srq);
		rq = &(*srq_p)->rq;
	}
	return rq->head == rq->tail ? NULL : rq_wqe(rq, rq->head);
}

void fk_rq_consume(struct fk_qp *qp, struct fk_srq *srq)
{
	if (!srq) {
		qp->rq.head++;
		return;
	}
	srq->rq.head++;
	if (srq->limit && srq->rq.tail - srq->rq.head < srq->limit) {
		srq->limit = 0;
		fk_async_event(qp_ctx(qp), IBV_EVENT_SRQ_LIMIT_REACHED, srq);
	}
}

/* ---- send side ---- */

static enum ibv_wc_opcode wc_opcode(enum ibv_wr_opcode op)
{
	switch (op) {
	case IBV_WR_RDMA_WRITE:
	case IBV_WR_RDMA_WRITE_WITH_IMM:
		return IBV_WC_RDMA_WRITE;
	case IBV_WR_RDMA_READ:
		return IBV_WC_RDMA_READ;
	case IBV_WR_ATOMIC_CMP_AND_SWP:
		return IBV_WC_COMP_SWAP;
	case IBV_WR_ATOMIC_FETCH_AND_ADD:
		return IBV_WC_FETCH_ADD;
	default:
		return IBV_WC_SEND;
	}
}

void fk_send_complete(struct fk_qp *qp, struct fk_swqe *wqe,
		      enum ibv_wc_status status)
{
	struct ibv_wc wc = {
		.wr_id = wqe->wr.wr_id,
		.status = status,
		.opcode = wc_opcode(wqe->wr.opcode),
		.qp_num = qp->ibqp.qp_num,
	};

	if (status == IBV_WC_SUCCESS && !qp->sq_sig_all &&
	    !(wqe->wr.send_flags & IBV_SEND_SIGNALED))
		return;
	/* rxe (make_send_cqe): the WR's length, and WITH_IMM (imm_data 0)
	 * for the _WITH_IMM opcodes, on successful completions */
	if (status == IBV_WC_SUCCESS) {
		wc.byte_len = wqe->length;
		if (wqe->wr.opcode == IBV_WR_SEND_WITH_IMM ||
		    wqe->wr.opcode == IBV_WR_RDMA_WRITE_WITH_IMM)
			wc.wc_flags = IBV_WC_WITH_IMM;
	}
	fk_cq_push(to_fcq(qp->ibqp.send_cq), &wc, false);
}

void fk_qp_flush(struct fk_qp *qp)
{
	struct fk_srq *srq;

	while (qp->sq.head != qp->sq.tail) {
		struct fk_swqe *wqe = sq_wqe(&qp->sq, qp->sq.head++);

		fk_send_complete(qp, wqe, IBV_WC_WR_FLUSH_ERR);
	}
	qp->sq.next = qp->sq.tail;
	if (qp->resp.in_msg && qp->resp.rwqe) {
		recv_flush_one(qp, qp->resp.rwqe->wr_id);
		qp->resp.in_msg = false;
		qp->resp.rwqe = NULL;
	}
	if (qp->ibqp.srq) {
		if (!qp->last_wqe_sent) {
			qp->last_wqe_sent = true;
			fk_async_event(qp_ctx(qp),
				       IBV_EVENT_QP_LAST_WQE_REACHED, qp);
		}
	} else {
		while (fk_rq_peek(qp, &srq)) {
			recv_flush_one(qp, rq_wqe(&qp->rq, qp->rq.head)->wr_id);
			qp->rq.head++;
		}
	}
	if (!fk_list_empty(&qp->timer_entry))
		fk_list_del(&qp->timer_entry);
}

static bool opcode_ok(enum ibv_qp_type type, enum ibv_wr_opcode op)
{
	switch (op) {
	case IBV_WR_SEND:
	case IBV_WR_SEND_WITH_IMM:
		return true;
	case IBV_WR_RDMA_WRITE:
	case IBV_WR_RDMA_WRITE_WITH_IMM:
		return type == IBV_QPT_RC || type == IBV_QPT_UC;
	case IBV_WR_RDMA_READ:
	case IBV_WR_ATOMIC_CMP_AND_SWP:
	case IBV_WR_ATOMIC_FETCH_AND_ADD:
		return type == IBV_QPT_RC;
	default:
		return false;
	}
}

static bool is_atomic(enum ibv_wr_opcode op)
{
	return op == IBV_WR_ATOMIC_CMP_AND_SWP ||
	       op == IBV_WR_ATOMIC_FETCH_AND_ADD;
}

static int validate_send_wr(struct fk_qp *qp, const struct ibv_send_wr *wr,
			    uint64_t *len_p)
{
	uint64_t len = 0;
	int i;

	if (wr->num_sge < 0 || (uint32_t)wr->num_sge > qp->sq.max_sge)
		return EINVAL;
	if (!opcode_ok(qp->ibqp.qp_type, wr->opcode))
		return EINVAL;
	for (i = 0; i < wr->num_sge; i++)
		len += wr->sg_list[i].length;
	if (is_atomic(wr->opcode) &&
	    (len < 8 || (wr->wr.atomic.remote_addr & 7)))
		return EINVAL;
	if ((wr->send_flags & IBV_SEND_INLINE) && !is_atomic(wr->opcode) &&
	    wr->opcode != IBV_WR_RDMA_READ && len > qp->sq.max_inline)
		return EINVAL;
	if (qp->ibqp.qp_type == IBV_QPT_UD && !wr->wr.ud.ah)
		return EINVAL;
	if (len > FK_MAX_MSG_SZ)
		return EINVAL;
	*len_p = len;
	return 0;
}

static void copy_send_wr(struct fk_qp *qp, struct fk_swqe *wqe,
			 const struct ibv_send_wr *wr, uint32_t len)
{
	bool inl = (wr->send_flags & IBV_SEND_INLINE) && len &&
		   !is_atomic(wr->opcode) && wr->opcode != IBV_WR_RDMA_READ;
	uint8_t *p;
	int i;

	memset(wqe, 0, sizeof(*wqe));
	wqe->wr = *wr;
	wqe->wr.next = NULL;
	wqe->wr.sg_list = NULL;
	wqe->length = len;
	wqe->num_sge = wr->num_sge;
	if (qp->ibqp.qp_type == IBV_QPT_UD)
		wqe->ah = to_fah(wr->wr.ud.ah);
	if (is_atomic(wr->opcode))
		wqe->length = 8;
	if (inl) {
		wqe->inl = (uint8_t *)&wqe->sge[qp->sq.max_sge];
		p = wqe->inl;
		for (i = 0; i < wr->num_sge; i++) {
			/* UCX sends zero-length inline SGEs with addr 0 */
			if (!wr->sg_list[i].length)
				continue;
			memcpy(p, (void *)(uintptr_t)wr->sg_list[i].addr,
			       wr->sg_list[i].length);
			p += wr->sg_list[i].length;
		}
		wqe->num_sge = 0;
		return;
	}
	for (i = 0; i < wr->num_sge; i++)
		wqe->sge[i] = wr->sg_list[i];
}

int fk_post_send(struct ibv_qp *ibqp, struct ibv_send_wr *wr,
		 struct ibv_send_wr **bad_wr)
{
	struct fk_qp *qp = to_fqp(ibqp);
	struct fk_context *ctx = qp_ctx(qp);
	enum ibv_qp_state state;
	uint64_t len;
	int ret = 0;

	pthread_mutex_lock(&ctx->lock);
	state = qp->attr.qp_state;
	if (state != IBV_QPS_RTS && state != IBV_QPS_SQD &&
	    state != IBV_QPS_SQE && state != IBV_QPS_ERR) {
		*bad_wr = wr;
		pthread_mutex_unlock(&ctx->lock);
		return EINVAL;
	}
	for (; wr; wr = wr->next) {
		ret = validate_send_wr(qp, wr, &len);
		if (!ret && qp->sq.tail - qp->sq.head >= qp->sq.max_wr)
			ret = ENOMEM;
		if (ret) {
			*bad_wr = wr;
			break;
		}
		copy_send_wr(qp, sq_wqe(&qp->sq, qp->sq.tail), wr, len);
		qp->sq.tail++;
	}
	if (state == IBV_QPS_ERR)
		fk_qp_flush(qp);
	else
		fk_req_pump(qp);
	pthread_mutex_unlock(&ctx->lock);
	return ret;
}

/* ---- SGE access ---- */

static int sge_copy(struct fk_qp *qp, const struct ibv_sge *sge, uint32_t n,
		    uint32_t off, uint8_t *buf, uint32_t len, bool to_sge)
{
	struct fk_context *ctx = qp_ctx(qp);
	struct fk_pd *pd = to_fpd(qp->ibqp.pd);
	unsigned int acc = to_sge ? IBV_ACCESS_LOCAL_WRITE : 0;
	uint32_t i;

	for (i = 0; i < n && len; i++) {
		uint32_t chunk;
		struct fk_mr *mr;
		uint8_t *a;

		if (off >= sge[i].length) {
			off -= sge[i].length;
			continue;
		}
		chunk = sge[i].length - off;
		if (chunk > len)
			chunk = len;
		mr = fk_mr_lookup(ctx, sge[i].lkey);
		a = mr ? fk_mr_addr(mr, pd, sge[i].addr + off, chunk, acc) :
			 NULL;
		if (!a)
			return IBV_WC_LOC_PROT_ERR;
		if (to_sge)
			memcpy(a, buf, chunk);
		else
			memcpy(buf, a, chunk);
		buf += chunk;
		len -= chunk;
		off = 0;
	}
	return len ? IBV_WC_LOC_LEN_ERR : 0;
}

int fk_sge_gather(struct fk_qp *qp, const struct ibv_sge *sge, uint32_t n,
		  uint32_t off, void *dst, uint32_t len)
{
	return sge_copy(qp, sge, n, off, dst, len, false);
}

int fk_sge_scatter(struct fk_qp *qp, const struct ibv_sge *sge, uint32_t n,
		   uint32_t off, const void *src, uint32_t len)
{
	return sge_copy(qp, sge, n, off, (uint8_t *)src, len, true);
}

/* ---- state hooks ---- */

int fk_qp_transition(struct fk_qp *qp, enum ibv_qp_state old_state)
{
	enum ibv_qp_state st = qp->attr.qp_state;

	switch (st) {
	case IBV_QPS_RESET:
		qp->sq.head = qp->sq.next = qp->sq.tail = 0;
		qp->rq.head = qp->rq.tail = 0;
		qp->dest_valid = false;
		qp->last_wqe_sent = false;
		if (!fk_list_empty(&qp->timer_entry))
			fk_list_del(&qp->timer_entry);
		fk_req_reset(qp);
		fk_resp_reset(qp);
		break;
	case IBV_QPS_RTR:
		if (old_state != IBV_QPS_RTR) {
			fk_resp_reset(qp);
			qp->resp.epsn = qp->attr.rq_psn & FK_PSN_MASK;
			qp->dest_valid = false;
		}
		break;
	case IBV_QPS_RTS:
		if (old_state == IBV_QPS_RTR) {
			fk_req_reset(qp);
			qp->req.psn = qp->attr.sq_psn & FK_PSN_MASK;
		}
		fk_req_pump(qp);
		break;
	case IBV_QPS_ERR:
		if (old_state != IBV_QPS_ERR)
			fk_qp_flush(qp);
		break;
	default:
		break;
	}
	return 0;
}
