/* SPDX-License-Identifier: MIT */
/*
 * Address handles.  An AH names a peer by its virtual LID/GID; the backend
 * gets the real ones.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shim.h"

void isn_ah_attr_to_real(const struct ibv_ah_attr *in, struct ibv_ah_attr *out)
{
	*out = *in;
	out->dlid = isn_vid_remote_to_real(NULL, ISN_VID_LID, in->dlid);
	if (in->is_global)
		isn_vid_gid_remote_to_real(&in->grh.dgid, &out->grh.dgid);
}

void isn_ah_attr_to_virt(struct ibv_ah_attr *attr)
{
	attr->dlid = isn_vid_remote_to_virt(NULL, ISN_VID_LID, attr->dlid);
	if (attr->is_global)
		isn_vid_gid_remote_to_virt(&attr->grh.dgid, &attr->grh.dgid);
}

const struct isn_vid_peer *isn_ah_attr_peer(const struct ibv_ah_attr *attr)
{
	return isn_vid_peer_find(attr->is_global ? &attr->grh.dgid : NULL,
				 attr->dlid);
}

ISN_EXPORT struct ibv_ah *ibv_create_ah(struct ibv_pd *ibpd,
					struct ibv_ah_attr *attr)
{
	struct isn_pd *pd = isn_pd_of(ibpd);
	struct ibv_ah_attr ra;
	struct isn_ah *ah;

	if (!pd)
		return ISN_REAL(struct ibv_ah * (*)(struct ibv_pd *,
						    struct ibv_ah_attr *),
				"ibv_create_ah", "IBVERBS_1.1")(ibpd, attr);
	ah = calloc(1, sizeof(*ah));
	if (!ah)
		return NULL;
	ra = *attr;
	if (isn_vid_active()) {
		isn_ah_attr_to_real(attr, &ra);
		ah->peer = isn_ah_attr_peer(attr);
	}
	ah->real = isn_g.ops.create_ah(pd->real, &ra);
	if (!ah->real) {
		free(ah);
		return NULL;
	}
	ah->ibah.context = ibpd->context;
	ah->ibah.pd = ibpd;
	ah->ibah.handle = ah->real->handle;
	return &ah->ibah;
}

ISN_EXPORT int ibv_destroy_ah(struct ibv_ah *ibah)
{
	struct isn_ah *ah = isn_ah_of(ibah);
	int ret;

	if (!ah)
		return ISN_REAL(int (*)(struct ibv_ah *), "ibv_destroy_ah",
				"IBVERBS_1.1")(ibah);
	ret = isn_g.ops.destroy_ah(ah->real);
	if (ret)
		return ret;
	free(ah);
	return 0;
}
