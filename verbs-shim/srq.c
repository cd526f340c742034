/* SPDX-License-Identifier: MIT */
/*
 * Shared receive queues (basic type; XRC SRQs are not virtualized yet).
 */
#include <errno.h>
#include <stdlib.h>

#include "shim.h"

ISN_EXPORT struct ibv_srq *ibv_create_srq(struct ibv_pd *ibpd,
					  struct ibv_srq_init_attr *attr)
{
	ISN_CTL();
	struct isn_pd *pd = isn_pd_of(ibpd);
	struct ibv_srq_init_attr ra;
	struct isn_srq *srq;

	if (!pd)
		return ISN_REAL(struct ibv_srq *
					(*)(struct ibv_pd *,
					    struct ibv_srq_init_attr *),
				"ibv_create_srq", "IBVERBS_1.1")(ibpd, attr);
	srq = calloc(1, sizeof(*srq));
	if (!srq)
		return NULL;
	ra = *attr;
	ra.srq_context = srq;
	srq->real = isn_g.ops.create_srq(pd->real, &ra);
	if (!srq->real) {
		free(srq);
		return NULL;
	}
	attr->attr = ra.attr;
	srq->attr = ra.attr;
	if (isn_wq_init(&srq->rq, ra.attr.max_wr + ISN_SRQ_LOG_EXTRA,
			ra.attr.max_sge)) {
		isn_g.ops.destroy_srq(srq->real);
		free(srq);
		errno = ENOMEM;
		return NULL;
	}
	srq->xlate = isn_slow_get() & ISN_SLOW_XLATE;
	srq->ibsrq.context = ibpd->context;
	srq->ibsrq.srq_context = attr->srq_context;
	srq->ibsrq.pd = ibpd;
	srq->ibsrq.handle = srq->real->handle;
	srq->ibsrq.events_completed = 0;
	pthread_mutex_init(&srq->ibsrq.mutex, NULL);
	pthread_cond_init(&srq->ibsrq.cond, NULL);
	srq->srq_type = IBV_SRQT_BASIC;
	srq->post_recv = srq->real->context->ops.post_srq_recv;
	isn_reg_add(&srq->reg, ISN_KIND_SRQ);
	isn_obj_add(ISN_OBJ_SRQ, &srq->entry);
	return &srq->ibsrq;
}

ISN_EXPORT int ibv_modify_srq(struct ibv_srq *ibsrq, struct ibv_srq_attr *attr,
			      int attr_mask)
{
	ISN_CTL();
	struct isn_srq *srq = isn_srq_of(ibsrq);

	if (!srq)
		return ISN_REAL(int (*)(struct ibv_srq *, struct ibv_srq_attr *,
					int),
				"ibv_modify_srq",
				"IBVERBS_1.1")(ibsrq, attr, attr_mask);
	if (srq->real) {
		int ret = isn_g.ops.modify_srq(srq->real, attr, attr_mask);

		if (ret)
			return ret;
	}
	if (attr_mask & IBV_SRQ_LIMIT)
		srq->attr.srq_limit = attr->srq_limit;
	return 0;
}

ISN_EXPORT int ibv_query_srq(struct ibv_srq *ibsrq, struct ibv_srq_attr *attr)
{
	ISN_CTL();
	struct isn_srq *srq = isn_srq_of(ibsrq);

	if (!srq)
		return ISN_REAL(int (*)(struct ibv_srq *,
					struct ibv_srq_attr *),
				"ibv_query_srq", "IBVERBS_1.1")(ibsrq, attr);
	if (!srq->real) {
		*attr = srq->attr;
		return 0;
	}
	return isn_g.ops.query_srq(srq->real, attr);
}

ISN_EXPORT int ibv_destroy_srq(struct ibv_srq *ibsrq)
{
	ISN_CTL();
	struct isn_srq *srq = isn_srq_of(ibsrq);
	int ret;

	if (!srq)
		return ISN_REAL(int (*)(struct ibv_srq *), "ibv_destroy_srq",
				"IBVERBS_1.1")(ibsrq);
	ret = srq->real ? isn_g.ops.destroy_srq(srq->real) : 0;
	if (ret)
		return ret;
	isn_early_forget(NULL, srq);
	isn_pending_forget(srq);
	isn_obj_del(&srq->entry);
	isn_ev_barrier();
	isn_reg_del(&srq->reg);
	isn_wait_acks(&ibsrq->mutex, &ibsrq->cond, &ibsrq->events_completed,
		      srq->reg.async_reported);
	pthread_mutex_destroy(&ibsrq->mutex);
	pthread_cond_destroy(&ibsrq->cond);
	isn_wq_free(&srq->rq);
	free(srq);
	return 0;
}
