/* SPDX-License-Identifier: MIT */
/*
 * Shared receive queues, with rxe's limits and rules: max_wr 1..FK_MAX_SRQ_WR
 * rounded up to a power of two minus one, max_sge up to FK_MAX_SRQ_SGE (0
 * means 1), resizing with IBV_SRQ_MAX_WR (never below the WRs posted or the
 * armed limit), IBV_SRQ_LIMIT arming the limit event (the transport raises
 * it and disarms).  As on rxe, create_srq arms attr.srq_limit unchecked.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fake.h"

static uint32_t srq_round(uint32_t wr)
{
	uint32_t s = 1;

	while (s < wr + 1)
		s <<= 1;
	return s - 1;
}

struct ibv_srq *fk_create_srq(struct ibv_pd *pd, struct ibv_srq_init_attr *attr)
{
	struct fk_context *ctx = to_fctx(pd->context);
	struct ibv_srq_attr *a = &attr->attr;
	struct fk_srq *srq;
	int err;

	if (!a->max_wr || a->max_wr > FK_MAX_SRQ_WR ||
	    a->max_sge > FK_MAX_SRQ_SGE) {
		fk_dbg("create_srq wr %u sge %u: EINVAL", a->max_wr,
		       a->max_sge);
		errno = EINVAL;
		return NULL;
	}
	if (!a->max_sge)
		a->max_sge = 1;
	srq = calloc(1, sizeof(*srq));
	if (!srq) {
		errno = ENOMEM;
		return NULL;
	}
	err = -fk_rq_init(&srq->rq, srq_round(a->max_wr), a->max_sge);
	if (err) {
		free(srq);
		errno = err;
		return NULL;
	}
	srq->ibsrq.context = pd->context;
	srq->ibsrq.srq_context = attr->srq_context;
	srq->ibsrq.pd = pd;
	pthread_mutex_init(&srq->ibsrq.mutex, NULL);
	pthread_cond_init(&srq->ibsrq.cond, NULL);
	srq->srqn = fab_alloc_qpn(ctx->port);
	srq->ibsrq.handle = srq->srqn;
	srq->limit = a->srq_limit;
	pthread_mutex_lock(&ctx->lock);
	fk_list_add(&ctx->srqs, &srq->entry);
	pthread_mutex_unlock(&ctx->lock);
	return &srq->ibsrq;
}

/* Move the posted WRs into a queue of @max_wr; lock held. */
static int srq_resize(struct fk_srq *srq, uint32_t max_wr)
{
	struct fk_rq *old = &srq->rq, rq;
	uint32_t n = old->tail - old->head, i;
	int ret;

	if (max_wr < n)
		return EINVAL;
	ret = fk_rq_init(&rq, max_wr, old->max_sge);
	if (ret)
		return -ret;
	for (i = 0; i < n; i++)
		memcpy(rq.buf + (size_t)i * rq.stride,
		       old->buf + (size_t)((old->head + i) % old->max_wr) *
					  old->stride,
		       rq.stride);
	rq.tail = n;
	fk_rq_fini(old);
	*old = rq;
	return 0;
}

int fk_modify_srq(struct ibv_srq *ibsrq, struct ibv_srq_attr *attr,
		  int attr_mask)
{
	struct fk_context *ctx = to_fctx(ibsrq->context);
	struct fk_srq *srq = to_fsrq(ibsrq);
	int ret = 0;

	pthread_mutex_lock(&ctx->lock);
	if ((attr_mask & IBV_SRQ_MAX_WR) &&
	    (!attr->max_wr || attr->max_wr > FK_MAX_SRQ_WR ||
	     (srq->limit && attr->max_wr < srq->limit)))
		ret = EINVAL;
	if ((attr_mask & IBV_SRQ_LIMIT) && (attr->srq_limit > FK_MAX_SRQ_WR ||
					    attr->srq_limit > srq->rq.max_wr))
		ret = EINVAL;
	if (!ret && (attr_mask & IBV_SRQ_MAX_WR))
		ret = srq_resize(srq, srq_round(attr->max_wr));
	if (!ret && (attr_mask & IBV_SRQ_LIMIT))
		srq->limit = attr->srq_limit;
	pthread_mutex_unlock(&ctx->lock);
	return ret;
}

int fk_query_srq(struct ibv_srq *ibsrq, struct ibv_srq_attr *attr)
{
	struct fk_context *ctx = to_fctx(ibsrq->context);
	struct fk_srq *srq = to_fsrq(ibsrq);

	pthread_mutex_lock(&ctx->lock);
	attr->max_wr = srq->rq.max_wr;
	attr->max_sge = srq->rq.max_sge;
	attr->srq_limit = srq->limit;
	pthread_mutex_unlock(&ctx->lock);
	return 0;
}

void fk_srq_free(struct fk_srq *srq)
{
	fk_list_del(&srq->entry);
	fk_rq_fini(&srq->rq);
	pthread_cond_destroy(&srq->ibsrq.cond);
	pthread_mutex_destroy(&srq->ibsrq.mutex);
	free(srq);
}

int fk_destroy_srq(struct ibv_srq *ibsrq)
{
	struct fk_context *ctx = to_fctx(ibsrq->context);
	struct fk_srq *srq = to_fsrq(ibsrq);
	struct fk_list *pos;
	uint32_t reported;

	pthread_mutex_lock(&ctx->lock);
	fk_list_for_each(pos, &ctx->qps)
	{
		if (container_of(pos, struct fk_qp, entry)->ibqp.srq == ibsrq) {
			pthread_mutex_unlock(&ctx->lock);
			return EBUSY;
		}
	}
	fk_list_del(&srq->entry);
	fk_async_forget(ctx, srq);
	reported = srq->events_reported;
	pthread_mutex_unlock(&ctx->lock);

	pthread_mutex_lock(&ibsrq->mutex);
	while (ibsrq->events_completed != reported)
		pthread_cond_wait(&ibsrq->cond, &ibsrq->mutex);
	pthread_mutex_unlock(&ibsrq->mutex);
	fk_list_init(&srq->entry);
	fk_srq_free(srq);
	return 0;
}
