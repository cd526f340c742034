/* SPDX-License-Identifier: MIT */
/*
 * Virtual contexts (a complete struct verbs_context, so verbs.h's inline
 * helpers find the extended ops) and the device/port queries.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shim.h"
#include "../drain/ckpt.h"

#undef ibv_query_port

/* What the exported ibv_query_port writes: rdma-core's _compat struct. */
#define ISN_COMPAT_PORT_ATTR_SIZE \
	offsetof(struct ibv_port_attr, port_cap_flags2)

void isn_ctx_set_ops(struct isn_context *ictx)
{
	struct verbs_context *v = &ictx->vctx;

	v->context.ops._compat_query_device = ibv_query_device;
	v->context.ops._compat_query_port = ibv_query_port;
	v->context.ops.poll_cq = isn_poll_cq;
	v->context.ops.req_notify_cq = isn_req_notify_cq;
	v->context.ops.post_srq_recv = isn_post_srq_recv;
	v->context.ops.post_send = isn_post_send;
	v->context.ops.post_recv = isn_post_recv;

	v->query_port = isn_query_port_ex;
	v->create_cq_ex = isn_create_cq_ex;
	v->query_device_ex = isn_query_device_ex;
	v->create_qp_ex = isn_create_qp_ex;
	v->sz = sizeof(*v);
	v->context.abi_compat = __VERBS_ABI_IS_EXTENDED;
}

/* Test mode by node: this node's offsets come from its real LID or GID. */
static void ctx_test_node(struct isn_context *ictx)
{
	struct ibv_port_attr pa;
	union ibv_gid gid;

	memset(&pa, 0, sizeof(pa));
	if (isn_g.ops.query_port(ictx->real, 1, &pa))
		return;
	if (pa.lid)
		isn_vid_test_set_local(pa.lid);
	else if (!isn_g.ops.query_gid(ictx->real, 1, 0, &gid))
		isn_vid_test_set_local(gid.raw[15]);
}

ISN_EXPORT struct ibv_context *ibv_open_device(struct ibv_device *device)
{
	ISN_CTL();
	struct isn_device *d = isn_dev_of(device);
	struct isn_context *ictx;
	struct ibv_context *ctx;
	int ret;

	if (!d)
		return ISN_REAL(struct ibv_context * (*)(struct ibv_device *),
				"ibv_open_device", "IBVERBS_1.1")(device);
	if (!d->real) {
		errno = ENODEV; /* its list was freed */
		return NULL;
	}
	ictx = calloc(1, sizeof(*ictx));
	if (!ictx)
		return NULL;
	ictx->real = isn_g.ops.open_device(d->real);
	if (!ictx->real) {
		free(ictx);
		return NULL;
	}
	ctx = &ictx->vctx.context;
	ctx->device = device;
	ctx->cmd_fd = -1;
	ctx->num_comp_vectors = ictx->real->num_comp_vectors;
	pthread_mutex_init(&ctx->mutex, NULL);
	isn_ctx_set_ops(ictx);
	ret = isn_async_open(ictx);
	if (ret) {
		isn_g.ops.close_device(ictx->real);
		pthread_mutex_destroy(&ctx->mutex);
		free(ictx);
		errno = ret;
		return NULL;
	}
	if (isn_vid_test_mode())
		ctx_test_node(ictx);
	isn_obj_add(ISN_OBJ_CTX, &ictx->entry);
	return ctx;
}

ISN_EXPORT int ibv_close_device(struct ibv_context *context)
{
	ISN_CTL();
	struct isn_context *ictx = isn_ctx_of(context);

	if (!ictx)
		return ISN_REAL(int (*)(struct ibv_context *),
				"ibv_close_device", "IBVERBS_1.1")(context);
	isn_obj_del(&ictx->entry);
	isn_async_close(ictx);
	if (ictx->real) {
		isn_cred_fd_del(ictx->real->cmd_fd);
		isn_g.ops.close_device(ictx->real);
	}
	pthread_mutex_destroy(&context->mutex);
	free(ictx);
	return 0;
}

int isn_query_device_ex(struct ibv_context *context,
			const struct ibv_query_device_ex_input *input,
			struct ibv_device_attr_ex *attr, size_t attr_size)
{
	ISN_CTL();
	struct isn_context *ictx = isn_ctx_of(context);
	struct ibv_device_attr_ex full;
	int ret;

	if (input && input->comp_mask)
		return EINVAL;
	memset(&full, 0, sizeof(full));
	ret = isn_g.ops.query_device_ex(ictx->real, input, &full, sizeof(full));
	if (ret)
		return ret;
	if (attr_size > sizeof(full)) {
		memset((char *)attr + sizeof(full), 0,
		       attr_size - sizeof(full));
		attr_size = sizeof(full);
	}
	memcpy(attr, &full, attr_size);
	return 0;
}

ISN_EXPORT int ibv_query_device(struct ibv_context *context,
				struct ibv_device_attr *device_attr)
{
	if (!isn_ctx_of(context))
		return ISN_REAL(int (*)(struct ibv_context *,
					struct ibv_device_attr *),
				"ibv_query_device",
				"IBVERBS_1.1")(context, device_attr);
	return isn_query_device_ex(context, NULL,
				   isn_container_of(device_attr,
						    struct ibv_device_attr_ex,
						    orig_attr),
				   sizeof(*device_attr));
}

int isn_query_port_ex(struct ibv_context *context, uint8_t port_num,
		      struct ibv_port_attr *attr, size_t attr_len)
{
	ISN_CTL();
	struct isn_context *ictx = isn_ctx_of(context);
	struct ibv_port_attr full;
	int ret;

	memset(&full, 0, sizeof(full));
	ret = isn_g.ops.query_port(ictx->real, port_num, &full);
	if (ret)
		return ret;
	if (isn_slow_get() & ISN_SLOW_XLATE)
		full.lid = isn_vid_local_new(ISN_VID_LID, full.lid);
	if (attr_len > sizeof(full)) {
		memset((char *)attr + sizeof(full), 0, attr_len - sizeof(full));
		attr_len = sizeof(full);
	}
	memcpy(attr, &full, attr_len);
	return 0;
}

ISN_EXPORT int ibv_query_port(struct ibv_context *context, uint8_t port_num,
			      struct _compat_ibv_port_attr *port_attr)
{
	if (!isn_ctx_of(context))
		return ISN_REAL(int (*)(struct ibv_context *, uint8_t,
					struct _compat_ibv_port_attr *),
				"ibv_query_port",
				"IBVERBS_1.1")(context, port_num, port_attr);
	return isn_query_port_ex(context, port_num,
				 (struct ibv_port_attr *)port_attr,
				 ISN_COMPAT_PORT_ATTR_SIZE);
}

ISN_EXPORT int ibv_query_pkey(struct ibv_context *context, uint8_t port_num,
			      int index, __be16 *pkey)
{
	ISN_CTL();
	struct isn_context *ictx = isn_ctx_of(context);

	if (!ictx)
		return ISN_REAL(int (*)(struct ibv_context *, uint8_t, int,
					__be16 *),
				"ibv_query_pkey",
				"IBVERBS_1.1")(context, port_num, index, pkey);
	return isn_g.ops.query_pkey(ictx->real, port_num, index, pkey);
}

ISN_EXPORT int ibv_get_pkey_index(struct ibv_context *context, uint8_t port_num,
				  __be16 pkey)
{
	__be16 pkey_i;
	int i, ret;

	if (!isn_ctx_of(context))
		return ISN_REAL(int (*)(struct ibv_context *, uint8_t, __be16),
				"ibv_get_pkey_index",
				"IBVERBS_1.5")(context, port_num, pkey);
	for (i = 0; i <= UINT16_MAX; i++) {
		ret = ibv_query_pkey(context, port_num, i, &pkey_i);
		if (ret)
			return ret < 0 ? ret : -1;
		if (pkey == pkey_i)
			return i;
	}
	return -1;
}
