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
	return isn_vid_peer_get(attr->is_global ? &attr->grh.dgid : NULL,
				attr->dlid);
}

ISN_EXPORT struct ibv_ah *ibv_create_ah(struct ibv_pd *ibpd,
					struct ibv_ah_attr *attr)
{
	ISN_CTL();
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
	ah->attr = *attr;
	ah->peer = isn_ah_attr_peer(attr);
	if (isn_slow_get() & ISN_SLOW_XLATE)
		isn_ah_attr_to_real(attr, &ra);
	ah->real = isn_g.ops.create_ah(pd->real, &ra);
	if (!ah->real) {
		free(ah);
		return NULL;
	}
	ah->ibah.context = ibpd->context;
	ah->ibah.pd = ibpd;
	ah->ibah.handle = ah->real->handle;
	isn_obj_add(ISN_OBJ_AH, &ah->entry);
	return &ah->ibah;
}

ISN_EXPORT int ibv_destroy_ah(struct ibv_ah *ibah)
{
	ISN_CTL();
	struct isn_ah *ah = isn_ah_of(ibah);
	int ret;

	if (!ah)
		return ISN_REAL(int (*)(struct ibv_ah *), "ibv_destroy_ah",
				"IBVERBS_1.1")(ibah);
	ret = ah->real ? isn_g.ops.destroy_ah(ah->real) : 0;
	if (ret)
		return ret;
	isn_obj_del(&ah->entry);
	free(ah);
	return 0;
}
