/* SPDX-License-Identifier: MIT */
/* The fake HCA's backend ops table: the only symbol libfakehca exports. */
#include <ibsnap/hca_ops.h>

#include "fake.h"

static const struct isn_hca_ops fakehca_ops_table = {
	.name = "fake",

	.close_device = fk_close_device,
	.free_device_list = fk_free_device_list,
	.get_device_guid = fk_get_device_guid,
	.get_device_list = fk_get_device_list,
	.open_device = fk_open_device,

	.query_device_ex = fk_query_device_ex,
	.query_gid = fk_query_gid,
	.query_gid_ex = fk_query_gid_ex,
	.query_pkey = fk_query_pkey,
	.query_port = fk_query_port,

	.ack_async_event = fk_ack_async_event,
	.get_async_event = fk_get_async_event,

	.alloc_pd = fk_alloc_pd,
	.dealloc_pd = fk_dealloc_pd,
	.dereg_mr = fk_dereg_mr,
	.reg_mr = fk_reg_mr,

	.ack_cq_events = fk_ack_cq_events,
	.create_comp_channel = fk_create_comp_channel,
	.create_cq = fk_create_cq,
	.create_cq_ex = fk_create_cq_ex,
	.destroy_comp_channel = fk_destroy_comp_channel,
	.destroy_cq = fk_destroy_cq,
	.get_cq_event = fk_get_cq_event,
	.poll_cq = fk_poll_cq,
	.req_notify_cq = fk_req_notify_cq,
	.resize_cq = fk_resize_cq,

	.create_srq = fk_create_srq,
	.destroy_srq = fk_destroy_srq,
	.modify_srq = fk_modify_srq,
	.post_srq_recv = fk_post_srq_recv,
	.query_srq = fk_query_srq,

	.create_qp = fk_create_qp,
	.create_qp_ex = fk_create_qp_ex,
	.destroy_qp = fk_destroy_qp,
	.modify_qp = fk_modify_qp,
	.post_recv = fk_post_recv,
	.post_send = fk_post_send,
	.query_qp = fk_query_qp,

	.create_ah = fk_create_ah,
	.destroy_ah = fk_destroy_ah,
};

__attribute__((visibility("default"))) const struct isn_hca_ops *
fakehca_ops(void)
{
	return &fakehca_ops_table;
}
