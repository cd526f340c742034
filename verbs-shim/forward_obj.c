/* SPDX-License-Identifier: MIT */
/*
 * Public functions on verbs objects that the shim does not virtualize yet:
 * rdma-core's objects go to rdma-core; ours fail as rdma-core's dummy ops
 * fail (EOPNOTSUPP), or are translated and forwarded where that is enough.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "shim.h"

#define V1_1 "IBVERBS_1.1"
#define V1_10 "IBVERBS_1.10"

ISN_EXPORT int ibv_attach_mcast(struct ibv_qp *qp, const union ibv_gid *gid,
				uint16_t lid)
{
	if (isn_qp_of(qp))
		return EOPNOTSUPP;
	return ISN_REAL(int (*)(struct ibv_qp *, const union ibv_gid *,
				uint16_t),
			"ibv_attach_mcast", V1_1)(qp, gid, lid);
}

ISN_EXPORT int ibv_detach_mcast(struct ibv_qp *qp, const union ibv_gid *gid,
				uint16_t lid)
{
	if (isn_qp_of(qp))
		return EOPNOTSUPP;
	return ISN_REAL(int (*)(struct ibv_qp *, const union ibv_gid *,
				uint16_t),
			"ibv_detach_mcast", V1_1)(qp, gid, lid);
}

ISN_EXPORT int ibv_rereg_mr(struct ibv_mr *mr, int flags, struct ibv_pd *pd,
			    void *addr, size_t length, int access)
{
	if (isn_mr_of(mr)) {
		errno = EOPNOTSUPP;
		return IBV_REREG_MR_ERR_CMD;
	}
	return ISN_REAL(int (*)(struct ibv_mr *, int, struct ibv_pd *, void *,
				size_t, int),
			"ibv_rereg_mr",
			V1_1)(mr, flags, pd, addr, length, access);
}

ISN_EXPORT struct ibv_mr *ibv_reg_dmabuf_mr(struct ibv_pd *pd, uint64_t offset,
					    size_t length, uint64_t iova,
					    int fd, int access)
{
	if (isn_pd_of(pd)) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	return ISN_REAL(struct ibv_mr * (*)(struct ibv_pd *, uint64_t, size_t,
					    uint64_t, int, int),
			"ibv_reg_dmabuf_mr",
			"IBVERBS_1.12")(pd, offset, length, iova, fd, access);
}

ISN_EXPORT struct ibv_pd *ibv_import_pd(struct ibv_context *context,
					uint32_t pd_handle)
{
	if (isn_ctx_of(context)) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	return ISN_REAL(struct ibv_pd * (*)(struct ibv_context *, uint32_t),
			"ibv_import_pd", V1_10)(context, pd_handle);
}

ISN_EXPORT void ibv_unimport_pd(struct ibv_pd *pd)
{
	if (!isn_pd_of(pd))
		ISN_REAL(void (*)(struct ibv_pd *), "ibv_unimport_pd", V1_10)
	(pd);
}

ISN_EXPORT struct ibv_mr *ibv_import_mr(struct ibv_pd *pd, uint32_t mr_handle)
{
	if (isn_pd_of(pd)) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	return ISN_REAL(struct ibv_mr * (*)(struct ibv_pd *, uint32_t),
			"ibv_import_mr", V1_10)(pd, mr_handle);
}

ISN_EXPORT void ibv_unimport_mr(struct ibv_mr *mr)
{
	if (!isn_mr_of(mr))
		ISN_REAL(void (*)(struct ibv_mr *), "ibv_unimport_mr", V1_10)
	(mr);
}

ISN_EXPORT struct ibv_dm *ibv_import_dm(struct ibv_context *context,
					uint32_t dm_handle)
{
	if (isn_ctx_of(context)) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	return ISN_REAL(struct ibv_dm * (*)(struct ibv_context *, uint32_t),
			"ibv_import_dm", "IBVERBS_1.13")(context, dm_handle);
}

ISN_EXPORT void ibv_unimport_dm(struct ibv_dm *dm)
{
	if (!isn_ctx_of(dm->context))
		ISN_REAL(void (*)(struct ibv_dm *), "ibv_unimport_dm",
			 "IBVERBS_1.13")
	(dm);
}

ISN_EXPORT int ibv_query_ece(struct ibv_qp *qp, struct ibv_ece *ece)
{
	if (isn_qp_of(qp))
		return EOPNOTSUPP;
	return ISN_REAL(int (*)(struct ibv_qp *, struct ibv_ece *),
			"ibv_query_ece", V1_10)(qp, ece);
}

ISN_EXPORT int ibv_set_ece(struct ibv_qp *qp, struct ibv_ece *ece)
{
	if (isn_qp_of(qp))
		return EOPNOTSUPP;
	return ISN_REAL(int (*)(struct ibv_qp *, struct ibv_ece *),
			"ibv_set_ece", V1_10)(qp, ece);
}

ISN_EXPORT int ibv_query_qp_data_in_order(struct ibv_qp *qp,
					  enum ibv_wr_opcode op, uint32_t flags)
{
	if (isn_qp_of(qp))
		return 0; /* rdma-core's answer when the provider cannot tell */
	return ISN_REAL(int (*)(struct ibv_qp *, enum ibv_wr_opcode, uint32_t),
			"ibv_query_qp_data_in_order",
			"IBVERBS_1.14")(qp, op, flags);
}

ISN_EXPORT int ibv_resolve_eth_l2_from_gid(struct ibv_context *context,
					   struct ibv_ah_attr *attr,
					   uint8_t eth_mac[6], uint16_t *vid)
{
	ISN_CTL(); /* it reads the ID maps */
	int (*real_fn)(struct ibv_context *, struct ibv_ah_attr *, uint8_t *,
		       uint16_t *) =
		ISN_REAL(int (*)(struct ibv_context *, struct ibv_ah_attr *,
				 uint8_t *, uint16_t *),
			 "ibv_resolve_eth_l2_from_gid", V1_1);
	struct isn_context *ictx = isn_ctx_of(context);
	struct ibv_ah_attr ra;

	if (!ictx)
		return real_fn(context, attr, eth_mac, vid);
	if (strcmp(isn_g.ops.name, "real"))
		return -EOPNOTSUPP;
	isn_ah_attr_to_real(attr, &ra);
	return real_fn(ictx->real, &ra, eth_mac, vid);
}
