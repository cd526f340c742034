/* SPDX-License-Identifier: MIT */
/*
 * Typed defaults for the ops a backend leaves NULL: they fail the way
 * rdma-core's dummy ops (libibverbs/dummy_ops.c) fail an unsupported op.
 */
#include <errno.h>
#include <stddef.h>

#include "shim.h"

#define FAIL_NULL                   \
	do {                        \
		errno = EOPNOTSUPP; \
		return NULL;        \
	} while (0)

static int dflt_close_device(struct ibv_context *c)
{
	(void)c;
	return EOPNOTSUPP;
}

static void dflt_free_device_list(struct ibv_device **l)
{
	(void)l;
}

static __be64 dflt_get_device_guid(struct ibv_device *d)
{
	(void)d;
	return 0;
}

static struct ibv_device **dflt_get_device_list(int *num)
{
	if (num)
		*num = 0;
	FAIL_NULL;
}

static struct ibv_context *dflt_open_device(struct ibv_device *d)
{
	(void)d;
	FAIL_NULL;
}

static int dflt_query_device_ex(struct ibv_context *c,
				const struct ibv_query_device_ex_input *in,
				struct ibv_device_attr_ex *a, size_t sz)
{
	(void)c, (void)in, (void)a, (void)sz;
	return EOPNOTSUPP;
}

static int dflt_query_gid(struct ibv_context *c, uint8_t p, int i,
			  union ibv_gid *g)
{
	(void)c, (void)p, (void)i, (void)g;
	return EOPNOTSUPP;
}

static int dflt_query_gid_ex(struct ibv_context *c, uint32_t p, uint32_t i,
			     struct ibv_gid_entry *e, uint32_t f)
{
	(void)c, (void)p, (void)i, (void)e, (void)f;
	return EOPNOTSUPP;
}

static int dflt_query_pkey(struct ibv_context *c, uint8_t p, int i, __be16 *k)
{
	(void)c, (void)p, (void)i, (void)k;
	return EOPNOTSUPP;
}

static int dflt_query_port(struct ibv_context *c, uint8_t p,
			   struct ibv_port_attr *a)
{
	(void)c, (void)p, (void)a;
	return EOPNOTSUPP;
}

static void dflt_ack_async_event(struct ibv_async_event *e)
{
	(void)e;
}

static int dflt_get_async_event(struct ibv_context *c,
				struct ibv_async_event *e)
{
	(void)c, (void)e;
	errno = EOPNOTSUPP;
	return -1;
}

static struct ibv_pd *dflt_alloc_pd(struct ibv_context *c)
{
	(void)c;
	FAIL_NULL;
}

static int dflt_dealloc_pd(struct ibv_pd *pd)
{
	(void)pd;
	return EOPNOTSUPP;
}

static int dflt_dereg_mr(struct ibv_mr *mr)
{
	(void)mr;
	return EOPNOTSUPP;
}

static struct ibv_mr *dflt_reg_mr(struct ibv_pd *pd, void *a, size_t l,
				  uint64_t iova, unsigned int acc)
{
	(void)pd, (void)a, (void)l, (void)iova, (void)acc;
	FAIL_NULL;
}

static void dflt_ack_cq_events(struct ibv_cq *cq, unsigned int n)
{
	(void)cq, (void)n;
}

static struct ibv_comp_channel *dflt_create_comp_channel(struct ibv_context *c)
{
	(void)c;
	FAIL_NULL;
}

static struct ibv_cq *dflt_create_cq(struct ibv_context *c, int cqe,
				     void *cq_ctx, struct ibv_comp_channel *ch,
				     int vec)
{
	(void)c, (void)cqe, (void)cq_ctx, (void)ch, (void)vec;
	FAIL_NULL;
}

static struct ibv_cq_ex *dflt_create_cq_ex(struct ibv_context *c,
					   struct ibv_cq_init_attr_ex *a)
{
	(void)c, (void)a;
	FAIL_NULL;
}

static int dflt_destroy_comp_channel(struct ibv_comp_channel *ch)
{
	(void)ch;
	return EOPNOTSUPP;
}

static int dflt_destroy_cq(struct ibv_cq *cq)
{
	(void)cq;
	return EOPNOTSUPP;
}

static int dflt_get_cq_event(struct ibv_comp_channel *ch, struct ibv_cq **cq,
			     void **cq_ctx)
{
	(void)ch, (void)cq, (void)cq_ctx;
	errno = EOPNOTSUPP;
	return -1;
}

static int dflt_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc)
{
	(void)cq, (void)n, (void)wc;
	return EOPNOTSUPP;
}

static int dflt_req_notify_cq(struct ibv_cq *cq, int solicited_only)
{
	(void)cq, (void)solicited_only;
	return EOPNOTSUPP;
}

static int dflt_resize_cq(struct ibv_cq *cq, int cqe)
{
	(void)cq, (void)cqe;
	return EOPNOTSUPP;
}

static struct ibv_srq *dflt_create_srq(struct ibv_pd *pd,
				       struct ibv_srq_init_attr *a)
{
	(void)pd, (void)a;
	FAIL_NULL;
}

static int dflt_destroy_srq(struct ibv_srq *srq)
{
	(void)srq;
	return EOPNOTSUPP;
}

static int dflt_modify_srq(struct ibv_srq *srq, struct ibv_srq_attr *a, int m)
{
	(void)srq, (void)a, (void)m;
	return EOPNOTSUPP;
}

static int dflt_post_srq_recv(struct ibv_srq *srq, struct ibv_recv_wr *wr,
			      struct ibv_recv_wr **bad)
{
	(void)srq, (void)wr, (void)bad;
	return EOPNOTSUPP;
}

static int dflt_query_srq(struct ibv_srq *srq, struct ibv_srq_attr *a)
{
	(void)srq, (void)a;
	return EOPNOTSUPP;
}

static struct ibv_qp *dflt_create_qp(struct ibv_pd *pd,
				     struct ibv_qp_init_attr *a)
{
	(void)pd, (void)a;
	FAIL_NULL;
}

static struct ibv_qp *dflt_create_qp_ex(struct ibv_context *c,
					struct ibv_qp_init_attr_ex *a)
{
	(void)c, (void)a;
	FAIL_NULL;
}

static int dflt_destroy_qp(struct ibv_qp *qp)
{
	(void)qp;
	return EOPNOTSUPP;
}

static int dflt_modify_qp(struct ibv_qp *qp, struct ibv_qp_attr *a, int m)
{
	(void)qp, (void)a, (void)m;
	return EOPNOTSUPP;
}

static int dflt_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr,
			  struct ibv_recv_wr **bad)
{
	(void)qp, (void)wr, (void)bad;
	return EOPNOTSUPP;
}

static int dflt_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr,
			  struct ibv_send_wr **bad)
{
	(void)qp, (void)wr, (void)bad;
	return EOPNOTSUPP;
}

static int dflt_query_qp(struct ibv_qp *qp, struct ibv_qp_attr *a, int m,
			 struct ibv_qp_init_attr *i)
{
	(void)qp, (void)a, (void)m, (void)i;
	return EOPNOTSUPP;
}

static struct ibv_ah *dflt_create_ah(struct ibv_pd *pd, struct ibv_ah_attr *a)
{
	(void)pd, (void)a;
	FAIL_NULL;
}

static int dflt_destroy_ah(struct ibv_ah *ah)
{
	(void)ah;
	return EOPNOTSUPP;
}

static const struct isn_hca_ops dflt_ops = {
	.name = "none",

	.close_device = dflt_close_device,
	.free_device_list = dflt_free_device_list,
	.get_device_guid = dflt_get_device_guid,
	.get_device_list = dflt_get_device_list,
	.open_device = dflt_open_device,

	.query_device_ex = dflt_query_device_ex,
	.query_gid = dflt_query_gid,
	.query_gid_ex = dflt_query_gid_ex,
	.query_pkey = dflt_query_pkey,
	.query_port = dflt_query_port,

	.ack_async_event = dflt_ack_async_event,
	.get_async_event = dflt_get_async_event,

	.alloc_pd = dflt_alloc_pd,
	.dealloc_pd = dflt_dealloc_pd,
	.dereg_mr = dflt_dereg_mr,
	.reg_mr = dflt_reg_mr,

	.ack_cq_events = dflt_ack_cq_events,
	.create_comp_channel = dflt_create_comp_channel,
	.create_cq = dflt_create_cq,
	.create_cq_ex = dflt_create_cq_ex,
	.destroy_comp_channel = dflt_destroy_comp_channel,
	.destroy_cq = dflt_destroy_cq,
	.get_cq_event = dflt_get_cq_event,
	.poll_cq = dflt_poll_cq,
	.req_notify_cq = dflt_req_notify_cq,
	.resize_cq = dflt_resize_cq,

	.create_srq = dflt_create_srq,
	.destroy_srq = dflt_destroy_srq,
	.modify_srq = dflt_modify_srq,
	.post_srq_recv = dflt_post_srq_recv,
	.query_srq = dflt_query_srq,

	.create_qp = dflt_create_qp,
	.create_qp_ex = dflt_create_qp_ex,
	.destroy_qp = dflt_destroy_qp,
	.modify_qp = dflt_modify_qp,
	.post_recv = dflt_post_recv,
	.post_send = dflt_post_send,
	.query_qp = dflt_query_qp,

	.create_ah = dflt_create_ah,
	.destroy_ah = dflt_destroy_ah,
};

/* 40 ops and the name: a new op needs a default and a FILL() line. */
_Static_assert(sizeof(struct isn_hca_ops) == 41 * sizeof(void *), "isn_hca_ops "
								  "changed: "
								  "update "
								  "dflt_ops "
								  "and FILL()");

#define FILL(op)                               \
	do {                                   \
		if (!ops->op)                  \
			ops->op = dflt_ops.op; \
	} while (0)

void isn_hca_ops_fill_defaults(struct isn_hca_ops *ops)
{
	if (!ops->name)
		ops->name = dflt_ops.name;

	FILL(close_device);
	FILL(free_device_list);
	FILL(get_device_guid);
	FILL(get_device_list);
	FILL(open_device);

	FILL(query_device_ex);
	FILL(query_gid);
	FILL(query_gid_ex);
	FILL(query_pkey);
	FILL(query_port);

	FILL(ack_async_event);
	FILL(get_async_event);

	FILL(alloc_pd);
	FILL(dealloc_pd);
	FILL(dereg_mr);
	FILL(reg_mr);

	FILL(ack_cq_events);
	FILL(create_comp_channel);
	FILL(create_cq);
	FILL(create_cq_ex);
	FILL(destroy_comp_channel);
	FILL(destroy_cq);
	FILL(get_cq_event);
	FILL(poll_cq);
	FILL(req_notify_cq);
	FILL(resize_cq);

	FILL(create_srq);
	FILL(destroy_srq);
	FILL(modify_srq);
	FILL(post_srq_recv);
	FILL(query_srq);

	FILL(create_qp);
	FILL(create_qp_ex);
	FILL(destroy_qp);
	FILL(modify_qp);
	FILL(post_recv);
	FILL(post_send);
	FILL(query_qp);

	FILL(create_ah);
	FILL(destroy_ah);
}
