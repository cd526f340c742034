/* SPDX-License-Identifier: MIT */
/*
 * The data path of QPs and SRQs.  The common case (RC/UC, IDs not
 * remapped) is one branch and a call through the backend's own op.  A UD
 * send names a virtual AH, and remapped IDs need translating: such lists are
 * copied to the stack in batches, never to the heap, and posted batch by
 * batch; a failure reports the application's own WR in *bad_wr.
 */
#include <errno.h>
#include <string.h>

#include "shim.h"

#define BATCH_WR 16
#define BATCH_SGE 128

struct send_batch {
	struct ibv_send_wr wr[BATCH_WR];
	struct ibv_send_wr *orig[BATCH_WR];
	struct ibv_sge sge[BATCH_SGE];
	int nwr, nsge;
};

static void sges_to_real(struct ibv_sge *dst, const struct ibv_sge *src, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		dst[i] = src[i];
		dst[i].lkey = isn_vid_local_to_real(ISN_VID_LKEY, src[i].lkey);
	}
}

/* Backend's copy of send WR @in, into @b (which has room for it). */
static void send_wr_to_real(struct isn_qp *qp, struct send_batch *b,
			    struct ibv_send_wr *in, bool ids)
{
	struct ibv_send_wr *out = &b->wr[b->nwr];

	*out = *in;
	out->next = NULL;
	if (b->nwr)
		b->wr[b->nwr - 1].next = out;
	b->orig[b->nwr++] = in;
	if (qp->qp.qp_type == IBV_QPT_UD) {
		out->wr.ud.ah = isn_to_ah(in->wr.ud.ah)->real;
		if (ids)
			out->wr.ud.remote_qpn = isn_vid_remote_to_real(
				isn_to_ah(in->wr.ud.ah)->peer, ISN_VID_QPN,
				in->wr.ud.remote_qpn);
	}
	if (!ids)
		return;
	if (!(in->send_flags & IBV_SEND_INLINE) && in->num_sge > 0) {
		out->sg_list = &b->sge[b->nsge];
		sges_to_real(out->sg_list, in->sg_list, in->num_sge);
		b->nsge += in->num_sge;
	}
	switch (in->opcode) {
	case IBV_WR_RDMA_WRITE:
	case IBV_WR_RDMA_WRITE_WITH_IMM:
	case IBV_WR_RDMA_READ:
		out->wr.rdma.rkey = isn_vid_remote_to_real(
			qp->peer, ISN_VID_RKEY, in->wr.rdma.rkey);
		break;
	case IBV_WR_ATOMIC_CMP_AND_SWP:
	case IBV_WR_ATOMIC_FETCH_AND_ADD:
		out->wr.atomic.rkey = isn_vid_remote_to_real(
			qp->peer, ISN_VID_RKEY, in->wr.atomic.rkey);
		break;
	default:
		break;
	}
}

static int send_flush(struct isn_qp *qp, struct send_batch *b,
		      struct ibv_send_wr **bad_wr)
{
	struct ibv_send_wr *bad = NULL;
	int ret;

	if (!b->nwr)
		return 0;
	ret = qp->post_send(qp->real, b->wr, &bad);
	if (ret)
		*bad_wr = bad ? b->orig[bad - b->wr] : b->orig[0];
	b->nwr = b->nsge = 0;
	return ret;
}

static int post_send_xlate(struct isn_qp *qp, struct ibv_send_wr *wr,
			   struct ibv_send_wr **bad_wr)
{
	bool ids = isn_vid_active();
	struct send_batch b;
	int ret;

	b.nwr = b.nsge = 0;
	for (; wr; wr = wr->next) {
		int nsge = ids && wr->num_sge > 0 ? wr->num_sge : 0;

		if (nsge > BATCH_SGE) {
			*bad_wr = wr;
			return EINVAL;
		}
		if (b.nwr == BATCH_WR || b.nsge + nsge > BATCH_SGE) {
			ret = send_flush(qp, &b, bad_wr);
			if (ret)
				return ret;
		}
		send_wr_to_real(qp, &b, wr, ids);
	}
	return send_flush(qp, &b, bad_wr);
}

int isn_post_send(struct ibv_qp *ibqp, struct ibv_send_wr *wr,
		  struct ibv_send_wr **bad_wr)
{
	struct isn_qp *qp = isn_to_qp(ibqp);

	if (isn_unlikely(qp->xlate_send))
		return post_send_xlate(qp, wr, bad_wr);
	return qp->post_send(qp->real, wr, bad_wr);
}

struct recv_batch {
	struct ibv_recv_wr wr[BATCH_WR];
	struct ibv_recv_wr *orig[BATCH_WR];
	struct ibv_sge sge[BATCH_SGE];
	int nwr, nsge;
};

/* Post @b to the QP's receive queue, or to the SRQ if @qp is NULL. */
static int recv_flush(struct isn_qp *qp, struct isn_srq *srq,
		      struct recv_batch *b, struct ibv_recv_wr **bad_wr)
{
	struct ibv_recv_wr *bad = NULL;
	int ret;

	if (!b->nwr)
		return 0;
	if (qp)
		ret = qp->post_recv(qp->real, b->wr, &bad);
	else
		ret = srq->post_recv(srq->real, b->wr, &bad);
	if (ret)
		*bad_wr = bad ? b->orig[bad - b->wr] : b->orig[0];
	b->nwr = b->nsge = 0;
	return ret;
}

static bool recv_batch_add(struct recv_batch *b, struct ibv_recv_wr *in)
{
	struct ibv_recv_wr *out;
	int n = in->num_sge > 0 ? in->num_sge : 0;

	if (b->nwr == BATCH_WR || b->nsge + n > BATCH_SGE)
		return false;
	out = &b->wr[b->nwr];
	*out = *in;
	out->next = NULL;
	out->sg_list = &b->sge[b->nsge];
	sges_to_real(out->sg_list, in->sg_list, n);
	b->nsge += n;
	if (b->nwr)
		b->wr[b->nwr - 1].next = out;
	b->orig[b->nwr++] = in;
	return true;
}

static int post_recv_xlate(struct isn_qp *qp, struct isn_srq *srq,
			   struct ibv_recv_wr *wr, struct ibv_recv_wr **bad_wr)
{
	struct recv_batch b = { .nwr = 0 };
	int ret;

	for (; wr; wr = wr->next) {
		if (wr->num_sge > BATCH_SGE) {
			*bad_wr = wr;
			return EINVAL;
		}
		if (recv_batch_add(&b, wr))
			continue;
		ret = recv_flush(qp, srq, &b, bad_wr);
		if (ret)
			return ret;
		recv_batch_add(&b, wr);
	}
	return recv_flush(qp, srq, &b, bad_wr);
}

int isn_post_recv(struct ibv_qp *ibqp, struct ibv_recv_wr *wr,
		  struct ibv_recv_wr **bad_wr)
{
	struct isn_qp *qp = isn_to_qp(ibqp);

	if (isn_unlikely(isn_vid_active()))
		return post_recv_xlate(qp, NULL, wr, bad_wr);
	return qp->post_recv(qp->real, wr, bad_wr);
}

int isn_post_srq_recv(struct ibv_srq *ibsrq, struct ibv_recv_wr *wr,
		      struct ibv_recv_wr **bad_wr)
{
	struct isn_srq *srq = isn_to_srq(ibsrq);

	if (isn_unlikely(isn_vid_active()))
		return post_recv_xlate(NULL, srq, wr, bad_wr);
	return srq->post_recv(srq->real, wr, bad_wr);
}
