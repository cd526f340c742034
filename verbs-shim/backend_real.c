/* SPDX-License-Identifier: MIT */
/*
 * The real backend: rdma-core itself.  Exported functions are reached with
 * dlvsym past our own definitions; what verbs.h does inline (extended ops
 * through verbs_context, data-path ops through context->ops) is done here on
 * the real objects.
 */
#include <errno.h>
#include <string.h>

#include "shim.h"

#undef ibv_query_port

#define V1_0 "IBVERBS_1.0"
#define V1_1 "IBVERBS_1.1"

/* Call rdma-core's @name@@@ver with the prototype of backend op type @type. */
#define REAL_CALL(type, name, ver) ISN_REAL(type, name, ver)

int isn_real_num_devices(void)
{
	struct ibv_device **list;
	int n = 0;

	list = REAL_CALL(isn_get_device_list_fn, "ibv_get_device_list",
			 V1_1)(&n);
	if (!list)
		return -1;
	REAL_CALL(isn_free_device_list_fn, "ibv_free_device_list", V1_1)(list);
	return n;
}

static struct ibv_device **real_get_device_list(int *num)
{
	return REAL_CALL(isn_get_device_list_fn, "ibv_get_device_list",
			 V1_1)(num);
}

static void real_free_device_list(struct ibv_device **list)
{
	REAL_CALL(isn_free_device_list_fn, "ibv_free_device_list", V1_1)(list);
}

static __be64 real_get_device_guid(struct ibv_device *dev)
{
	return REAL_CALL(isn_get_device_guid_fn, "ibv_get_device_guid",
			 V1_1)(dev);
}

static struct ibv_context *real_open_device(struct ibv_device *dev)
{
	return REAL_CALL(isn_open_device_fn, "ibv_open_device", V1_1)(dev);
}

static int real_close_device(struct ibv_context *ctx)
{
	return REAL_CALL(isn_close_device_fn, "ibv_close_device", V1_1)(ctx);
}

static int real_query_device_ex(struct ibv_context *ctx,
				const struct ibv_query_device_ex_input *in,
				struct ibv_device_attr_ex *attr,
				size_t attr_size)
{
	struct verbs_context *vctx = verbs_get_ctx_op(ctx, query_device_ex);
	int ret;

	if (vctx) {
		ret = vctx->query_device_ex(ctx, in, attr, attr_size);
		if (ret != EOPNOTSUPP && ret != ENOSYS)
			return ret;
	}
	memset(attr, 0, attr_size);
	return REAL_CALL(int (*)(struct ibv_context *,
				 struct ibv_device_attr *),
			 "ibv_query_device", V1_1)(ctx, &attr->orig_attr);
}

static int real_query_gid(struct ibv_context *ctx, uint8_t port, int index,
			  union ibv_gid *gid)
{
	return REAL_CALL(isn_query_gid_fn, "ibv_query_gid", V1_1)(ctx, port,
								  index, gid);
}

static int real_query_gid_ex(struct ibv_context *ctx, uint32_t port,
			     uint32_t index, struct ibv_gid_entry *entry,
			     uint32_t flags)
{
	return REAL_CALL(int (*)(struct ibv_context *, uint32_t, uint32_t,
				 struct ibv_gid_entry *, uint32_t, size_t),
			 "_ibv_query_gid_ex", "IBVERBS_1.11")(
		ctx, port, index, entry, flags, sizeof(*entry));
}

static int real_query_pkey(struct ibv_context *ctx, uint8_t port, int index,
			   __be16 *pkey)
{
	return REAL_CALL(isn_query_pkey_fn, "ibv_query_pkey",
			 V1_1)(ctx, port, index, pkey);
}

static int real_query_port(struct ibv_context *ctx, uint8_t port,
			   struct ibv_port_attr *attr)
{
	struct verbs_context *vctx = verbs_get_ctx_op(ctx, query_port);

	if (vctx)
		return vctx->query_port(ctx, port, attr, sizeof(*attr));
	memset(attr, 0, sizeof(*attr));
	return REAL_CALL(isn_query_port_fn, "ibv_query_port", V1_1)(ctx, port,
								    attr);
}

static void real_ack_async_event(struct ibv_async_event *ev)
{
	REAL_CALL(isn_ack_async_event_fn, "ibv_ack_async_event", V1_1)(ev);
}

static int real_get_async_event(struct ibv_context *ctx,
				struct ibv_async_event *ev)
{
	return REAL_CALL(isn_get_async_event_fn, "ibv_get_async_event",
			 V1_1)(ctx, ev);
}

static struct ibv_pd *real_alloc_pd(struct ibv_context *ctx)
{
	return REAL_CALL(isn_alloc_pd_fn, "ibv_alloc_pd", V1_1)(ctx);
}

static int real_dealloc_pd(struct ibv_pd *pd)
{
	return REAL_CALL(isn_dealloc_pd_fn, "ibv_dealloc_pd", V1_1)(pd);
}

static struct ibv_mr *real_reg_mr(struct ibv_pd *pd, void *addr, size_t len,
				  uint64_t iova, unsigned int access)
{
	return REAL_CALL(isn_reg_mr_fn, "ibv_reg_mr_iova2",
			 "IBVERBS_1.8")(pd, addr, len, iova, access);
}

static int real_dereg_mr(struct ibv_mr *mr)
{
	return REAL_CALL(isn_dereg_mr_fn, "ibv_dereg_mr", V1_1)(mr);
}

static void real_ack_cq_events(struct ibv_cq *cq, unsigned int n)
{
	REAL_CALL(isn_ack_cq_events_fn, "ibv_ack_cq_events", V1_1)(cq, n);
}

static struct ibv_comp_channel *real_create_comp_channel(struct ibv_context *c)
{
	return REAL_CALL(isn_create_comp_channel_fn, "ibv_create_comp_channel",
			 V1_0)(c);
}

static int real_destroy_comp_channel(struct ibv_comp_channel *ch)
{
	return REAL_CALL(isn_destroy_comp_channel_fn,
			 "ibv_destroy_comp_channel", V1_0)(ch);
}

static int real_get_cq_event(struct ibv_comp_channel *ch, struct ibv_cq **cq,
			     void **cq_context)
{
	return REAL_CALL(isn_get_cq_event_fn, "ibv_get_cq_event",
			 V1_1)(ch, cq, cq_context);
}

static struct ibv_cq *real_create_cq(struct ibv_context *ctx, int cqe,
				     void *cq_context,
				     struct ibv_comp_channel *ch, int vector)
{
	return REAL_CALL(isn_create_cq_fn, "ibv_create_cq",
			 V1_1)(ctx, cqe, cq_context, ch, vector);
}

static struct ibv_cq_ex *real_create_cq_ex(struct ibv_context *ctx,
					   struct ibv_cq_init_attr_ex *attr)
{
	struct verbs_context *vctx = verbs_get_ctx_op(ctx, create_cq_ex);

	if (!vctx) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	return vctx->create_cq_ex(ctx, attr);
}

static int real_destroy_cq(struct ibv_cq *cq)
{
	return REAL_CALL(isn_destroy_cq_fn, "ibv_destroy_cq", V1_1)(cq);
}

static int real_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc)
{
	return cq->context->ops.poll_cq(cq, n, wc);
}

static int real_req_notify_cq(struct ibv_cq *cq, int solicited_only)
{
	return cq->context->ops.req_notify_cq(cq, solicited_only);
}

static int real_resize_cq(struct ibv_cq *cq, int cqe)
{
	return REAL_CALL(isn_resize_cq_fn, "ibv_resize_cq", V1_1)(cq, cqe);
}

static struct ibv_srq *real_create_srq(struct ibv_pd *pd,
				       struct ibv_srq_init_attr *attr)
{
	return REAL_CALL(isn_create_srq_fn, "ibv_create_srq", V1_1)(pd, attr);
}

static int real_destroy_srq(struct ibv_srq *srq)
{
	return REAL_CALL(isn_destroy_srq_fn, "ibv_destroy_srq", V1_1)(srq);
}

static int real_modify_srq(struct ibv_srq *srq, struct ibv_srq_attr *attr,
			   int mask)
{
	return REAL_CALL(isn_modify_srq_fn, "ibv_modify_srq", V1_1)(srq, attr,
								    mask);
}

static int real_post_srq_recv(struct ibv_srq *srq, struct ibv_recv_wr *wr,
			      struct ibv_recv_wr **bad_wr)
{
	return srq->context->ops.post_srq_recv(srq, wr, bad_wr);
}

static int real_query_srq(struct ibv_srq *srq, struct ibv_srq_attr *attr)
{
	return REAL_CALL(isn_query_srq_fn, "ibv_query_srq", V1_1)(srq, attr);
}

static struct ibv_qp *real_create_qp(struct ibv_pd *pd,
				     struct ibv_qp_init_attr *attr)
{
	return REAL_CALL(isn_create_qp_fn, "ibv_create_qp", V1_1)(pd, attr);
}

static struct ibv_qp *real_create_qp_ex(struct ibv_context *ctx,
					struct ibv_qp_init_attr_ex *attr)
{
	struct verbs_context *vctx;

	if (attr->comp_mask == IBV_QP_INIT_ATTR_PD)
		return real_create_qp(attr->pd,
				      (struct ibv_qp_init_attr *)attr);
	vctx = verbs_get_ctx_op(ctx, create_qp_ex);
	if (!vctx) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	return vctx->create_qp_ex(ctx, attr);
}

static int real_destroy_qp(struct ibv_qp *qp)
{
	return REAL_CALL(isn_destroy_qp_fn, "ibv_destroy_qp", V1_1)(qp);
}

static int real_modify_qp(struct ibv_qp *qp, struct ibv_qp_attr *attr, int mask)
{
	return REAL_CALL(isn_modify_qp_fn, "ibv_modify_qp", V1_1)(qp, attr,
								  mask);
}

static int real_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr,
			  struct ibv_recv_wr **bad_wr)
{
	return qp->context->ops.post_recv(qp, wr, bad_wr);
}

static int real_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr,
			  struct ibv_send_wr **bad_wr)
{
	return qp->context->ops.post_send(qp, wr, bad_wr);
}

static int real_query_qp(struct ibv_qp *qp, struct ibv_qp_attr *attr, int mask,
			 struct ibv_qp_init_attr *init)
{
	return REAL_CALL(isn_query_qp_fn, "ibv_query_qp", V1_1)(qp, attr, mask,
								init);
}

static struct ibv_ah *real_create_ah(struct ibv_pd *pd,
				     struct ibv_ah_attr *attr)
{
	return REAL_CALL(isn_create_ah_fn, "ibv_create_ah", V1_1)(pd, attr);
}

static int real_destroy_ah(struct ibv_ah *ah)
{
	return REAL_CALL(isn_destroy_ah_fn, "ibv_destroy_ah", V1_1)(ah);
}

const struct isn_hca_ops isn_real_ops = {
	.name = "real",

	.close_device = real_close_device,
	.free_device_list = real_free_device_list,
	.get_device_guid = real_get_device_guid,
	.get_device_list = real_get_device_list,
	.open_device = real_open_device,

	.query_device_ex = real_query_device_ex,
	.query_gid = real_query_gid,
	.query_gid_ex = real_query_gid_ex,
	.query_pkey = real_query_pkey,
	.query_port = real_query_port,

	.ack_async_event = real_ack_async_event,
	.get_async_event = real_get_async_event,

	.alloc_pd = real_alloc_pd,
	.dealloc_pd = real_dealloc_pd,
	.dereg_mr = real_dereg_mr,
	.reg_mr = real_reg_mr,

	.ack_cq_events = real_ack_cq_events,
	.create_comp_channel = real_create_comp_channel,
	.create_cq = real_create_cq,
	.create_cq_ex = real_create_cq_ex,
	.destroy_comp_channel = real_destroy_comp_channel,
	.destroy_cq = real_destroy_cq,
	.get_cq_event = real_get_cq_event,
	.poll_cq = real_poll_cq,
	.req_notify_cq = real_req_notify_cq,
	.resize_cq = real_resize_cq,

	.create_srq = real_create_srq,
	.destroy_srq = real_destroy_srq,
	.modify_srq = real_modify_srq,
	.post_srq_recv = real_post_srq_recv,
	.query_srq = real_query_srq,

	.create_qp = real_create_qp,
	.create_qp_ex = real_create_qp_ex,
	.destroy_qp = real_destroy_qp,
	.modify_qp = real_modify_qp,
	.post_recv = real_post_recv,
	.post_send = real_post_send,
	.query_qp = real_query_qp,

	.create_ah = real_create_ah,
	.destroy_ah = real_destroy_ah,
};
