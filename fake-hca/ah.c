/* SPDX-License-Identifier: MIT */
/*
 * Address handles, and the address-vector checks that create_ah and
 * modify_qp (IBV_QP_AV) share.
 *
 * On Ethernet (RoCE v2, like rxe) a GRH is required; the source GID index
 * must be in the table, the destination GID non-zero and of the source's
 * family (IPv4-mapped or not); a unicast destination is resolved at once
 * (the kernel resolves its MAC) and one that does not answer fails with
 * ETIMEDOUT, as rxe does after its ARP/ND timeout.  Multicast needs no
 * resolution.  On InfiniBand nothing is resolved: an AH to an unknown LID is
 * created, and the destination is checked when a packet goes out.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fake.h"

static bool gid_v4mapped(const union ibv_gid *g)
{
	static const uint8_t prefix[12] = { [10] = 0xff, [11] = 0xff };

	return !memcmp(g->raw, prefix, sizeof(prefix));
}

static bool gid_zero(const union ibv_gid *g)
{
	static const union ibv_gid zero;

	return !memcmp(g, &zero, sizeof(zero));
}

int fk_ah_check(struct fk_context *ctx, const struct ibv_ah_attr *ah,
		bool resolve, uint32_t *node_index)
{
	bool eth = ctx->dev->link_layer == IBV_LINK_LAYER_ETHERNET;
	const union ibv_gid *dgid = &ah->grh.dgid;
	int ret;

	*node_index = UINT32_MAX;
	if (ah->port_num != FK_PORT || (eth && !ah->is_global))
		return EINVAL;
	/* an 8-bit index is inside rxe's 1024 entries: empty past ours */
	if (ah->is_global && ah->grh.sgid_index >= FK_NUM_GIDS)
		return ENODATA;
	if (!eth) {
		ret = fab_resolve_node(ctx->port, ah->is_global ? dgid : NULL,
				       ah->dlid, node_index);
		if (ret)
			*node_index = UINT32_MAX;
		return 0;
	}
	if (!resolve || dgid->raw[0] == 0xff)
		return 0;
	if (gid_zero(dgid) ||
	    gid_v4mapped(dgid) !=
		    gid_v4mapped(&ctx->node->gid[ah->grh.sgid_index]))
		return EINVAL;
	if (fab_resolve_node(ctx->port, dgid, 0, node_index)) {
		*node_index = UINT32_MAX;
		return ETIMEDOUT;
	}
	return 0;
}

struct ibv_ah *fk_create_ah(struct ibv_pd *pd, struct ibv_ah_attr *attr)
{
	struct fk_context *ctx = to_fctx(pd->context);
	static atomic_uint handles;
	struct fk_ah *ah;
	uint32_t node;
	int err;

	pthread_mutex_lock(&ctx->lock);
	err = fk_ah_check(ctx, attr, true, &node);
	pthread_mutex_unlock(&ctx->lock);
	if (err) {
		fk_dbg("create_ah: %s", strerror(err));
		errno = err;
		return NULL;
	}
	ah = calloc(1, sizeof(*ah));
	if (!ah) {
		errno = ENOMEM;
		return NULL;
	}
	ah->ibah.context = pd->context;
	ah->ibah.pd = pd;
	ah->attr = *attr;
	ah->node_index = node;
	ah->ibah.handle = atomic_fetch_add(&handles, 1);
	pthread_mutex_lock(&ctx->lock);
	fk_list_add(&ctx->ahs, &ah->entry);
	pthread_mutex_unlock(&ctx->lock);
	return &ah->ibah;
}

int fk_destroy_ah(struct ibv_ah *ibah)
{
	struct fk_context *ctx = to_fctx(ibah->context);
	struct fk_ah *ah = to_fah(ibah);

	pthread_mutex_lock(&ctx->lock);
	fk_list_del(&ah->entry);
	pthread_mutex_unlock(&ctx->lock);
	free(ah);
	return 0;
}
