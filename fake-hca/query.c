/* SPDX-License-Identifier: MIT */
/*
 * Device, port, GID and P_Key queries, with the values rxe reports on
 * Debian 12 (kernel 6.1, rdma-core 44), minus what the fake HCA does not
 * implement (memory windows, fast registration, multicast).
 *
 * Return conventions follow libibverbs per call: query_device_ex, query_port
 * and query_gid_ex return a positive errno; query_gid and query_pkey return
 * -1 with errno set, as ibv_query_gid/ibv_query_pkey do (rdma-core reads
 * those from sysfs: an index past the P_Key table is ENOENT there).
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "fake.h"

#define FK_DEVICE_CAP_FLAGS                                             \
	(IBV_DEVICE_BAD_PKEY_CNTR | IBV_DEVICE_BAD_QKEY_CNTR |          \
	 IBV_DEVICE_AUTO_PATH_MIG | IBV_DEVICE_CHANGE_PHY_PORT |        \
	 IBV_DEVICE_UD_AV_PORT_ENFORCE | IBV_DEVICE_PORT_ACTIVE_EVENT | \
	 IBV_DEVICE_SYS_IMAGE_GUID | IBV_DEVICE_RC_RNR_NAK_GEN |        \
	 IBV_DEVICE_SRQ_RESIZE)
#define FK_MAX_PKEYS 64
#define FK_LOCAL_CA_ACK_DELAY 15

static void fill_device_attr(struct fk_context *ctx, struct ibv_device_attr *a)
{
	memset(a, 0, sizeof(*a));
	strcpy(a->fw_ver, "0.0.0");
	a->node_guid = ctx->node->node_guid;
	a->sys_image_guid = ctx->node->node_guid;
	a->max_mr_size = UINT64_MAX;
	a->page_size_cap = 0xfffff000;
	a->vendor_id = FK_VENDOR_ID;
	a->max_qp = FK_MAX_QP;
	a->max_qp_wr = FK_MAX_QP_WR;
	a->device_cap_flags = FK_DEVICE_CAP_FLAGS;
	a->max_sge = FK_MAX_SGE;
	a->max_sge_rd = FK_MAX_SGE_RD;
	a->max_cq = FK_MAX_CQ;
	a->max_cqe = FK_MAX_CQE;
	a->max_mr = FK_MAX_MR;
	a->max_pd = FK_MAX_PD;
	a->max_qp_rd_atom = FK_MAX_QP_RD_ATOM;
	a->max_res_rd_atom = FK_MAX_RES_RD_ATOM;
	a->max_qp_init_rd_atom = FK_MAX_QP_RD_ATOM;
	a->atomic_cap = IBV_ATOMIC_HCA;
	a->max_ah = FK_MAX_AH;
	a->max_srq = FK_MAX_SRQ;
	a->max_srq_wr = FK_MAX_SRQ_WR;
	a->max_srq_sge = FK_MAX_SRQ_SGE;
	a->max_pkeys = FK_MAX_PKEYS;
	a->local_ca_ack_delay = FK_LOCAL_CA_ACK_DELAY;
	a->phys_port_cnt = 1;
}

int fk_query_device_ex(struct ibv_context *context,
		       const struct ibv_query_device_ex_input *in,
		       struct ibv_device_attr_ex *attr, size_t attr_size)
{
	struct ibv_device_attr_ex full;

	if ((in && in->comp_mask) || attr_size < sizeof(attr->orig_attr))
		return EINVAL;
	memset(&full, 0, sizeof(full));
	fill_device_attr(to_fctx(context), &full.orig_attr);
	full.device_cap_flags_ex = FK_DEVICE_CAP_FLAGS;
	full.phys_port_cnt_ex = 1;
	if (attr_size > sizeof(full)) {
		memset(attr, 0, attr_size);
		attr_size = sizeof(full);
	}
	memcpy(attr, &full, attr_size);
	return 0;
}

int fk_query_port(struct ibv_context *context, uint8_t port_num,
		  struct ibv_port_attr *attr)
{
	struct fk_context *ctx = to_fctx(context);
	bool ib = ctx->dev->link_layer == IBV_LINK_LAYER_INFINIBAND;

	if (port_num != FK_PORT)
		return EINVAL;
	memset(attr, 0, sizeof(*attr));
	attr->state = IBV_PORT_ACTIVE;
	attr->max_mtu = IBV_MTU_4096;
	attr->active_mtu = ctx->dev->active_mtu;
	attr->gid_tbl_len = FK_GID_TBL_LEN;
	attr->port_cap_flags = IBV_PORT_CM_SUP;
	attr->max_msg_sz = FK_PORT_MAX_MSG_SZ;
	attr->pkey_tbl_len = 1;
	attr->max_vl_num = 1;
	attr->phys_state = 5; /* LinkUp */
	attr->link_layer = ctx->dev->link_layer;
	if (ib) {
		/* as an IB HCA on a subnet with a subnet manager at LID 1 */
		attr->lid = ctx->node->lid;
		attr->sm_lid = 1;
		attr->active_width = 2; /* 4x */
		attr->active_speed = 32; /* EDR: 100 Gb/s */
	} else {
		/* rxe: no LIDs on Ethernet; veth reports 10 Gb/s */
		attr->flags = IBV_QPF_GRH_REQUIRED;
		attr->active_width = 1; /* 1x */
		attr->active_speed = 8; /* FDR10 */
	}
	return 0;
}

int fk_query_gid(struct ibv_context *context, uint8_t port_num, int index,
		 union ibv_gid *gid)
{
	if (port_num != FK_PORT || index < 0 || index >= FK_GID_TBL_LEN) {
		errno = EINVAL;
		return -1;
	}
	if (index >= FK_NUM_GIDS) /* an empty entry reads as zero */
		memset(gid, 0, sizeof(*gid));
	else
		*gid = to_fctx(context)->node->gid[index];
	return 0;
}

int fk_query_gid_ex(struct ibv_context *context, uint32_t port_num,
		    uint32_t gid_index, struct ibv_gid_entry *entry,
		    uint32_t flags)
{
	struct fk_context *ctx = to_fctx(context);

	if (flags || port_num != FK_PORT || gid_index >= FK_GID_TBL_LEN)
		return EINVAL;
	if (gid_index >= FK_NUM_GIDS)
		return ENODATA;
	memset(entry, 0, sizeof(*entry));
	entry->gid = ctx->node->gid[gid_index];
	entry->gid_index = gid_index;
	entry->port_num = port_num;
	if (ctx->dev->link_layer == IBV_LINK_LAYER_ETHERNET) {
		entry->gid_type = IBV_GID_TYPE_ROCE_V2;
		entry->ndev_ifindex = 1; /* lo: the fabric is this machine */
	} else {
		entry->gid_type = IBV_GID_TYPE_IB;
	}
	return 0;
}

int fk_query_pkey(struct ibv_context *context, uint8_t port_num, int index,
		  __be16 *pkey)
{
	(void)context;
	if (port_num != FK_PORT || index != 0) {
		errno = ENOENT;
		return -1;
	}
	*pkey = htobe16(0xffff);
	return 0;
}
