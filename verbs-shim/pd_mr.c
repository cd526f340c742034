/* SPDX-License-Identifier: MIT */
/*
 * Protection domains and memory regions.  lkey and rkey are virtual IDs.
 */
#include <errno.h>
#include <stdlib.h>

#include "shim.h"

#undef ibv_reg_mr
#undef ibv_reg_mr_iova

ISN_EXPORT struct ibv_pd *ibv_alloc_pd(struct ibv_context *context)
{
	ISN_CTL();
	struct isn_context *ictx = isn_ctx_of(context);
	struct isn_pd *pd;

	if (!ictx)
		return ISN_REAL(struct ibv_pd * (*)(struct ibv_context *),
				"ibv_alloc_pd", "IBVERBS_1.1")(context);
	pd = calloc(1, sizeof(*pd));
	if (!pd)
		return NULL;
	pd->real = isn_g.ops.alloc_pd(ictx->real);
	if (!pd->real) {
		free(pd);
		return NULL;
	}
	pd->ibpd.context = context;
	pd->ibpd.handle = pd->real->handle;
	isn_obj_add(ISN_OBJ_PD, &pd->entry);
	return &pd->ibpd;
}

ISN_EXPORT int ibv_dealloc_pd(struct ibv_pd *ibpd)
{
	ISN_CTL();
	struct isn_pd *pd = isn_pd_of(ibpd);
	int ret;

	if (!pd)
		return ISN_REAL(int (*)(struct ibv_pd *), "ibv_dealloc_pd",
				"IBVERBS_1.1")(ibpd);
	ret = pd->real ? isn_g.ops.dealloc_pd(pd->real) : 0;
	if (ret)
		return ret;
	isn_obj_del(&pd->entry);
	free(pd);
	return 0;
}

ISN_EXPORT struct ibv_mr *ibv_reg_mr_iova2(struct ibv_pd *ibpd, void *addr,
					   size_t length, uint64_t iova,
					   unsigned int access)
{
	ISN_CTL();
	struct isn_pd *pd = isn_pd_of(ibpd);
	struct isn_mr *mr;

	if (!pd)
		return ISN_REAL(
			struct ibv_mr * (*)(struct ibv_pd *, void *, size_t,
					    uint64_t, unsigned int),
			"ibv_reg_mr_iova2",
			"IBVERBS_1.8")(ibpd, addr, length, iova, access);
	mr = calloc(1, sizeof(*mr));
	if (!mr)
		return NULL;
	mr->real = isn_g.ops.reg_mr(pd->real, addr, length, iova, access);
	if (!mr->real) {
		free(mr);
		return NULL;
	}
	mr->ibmr.context = ibpd->context;
	mr->ibmr.pd = ibpd;
	mr->ibmr.addr = addr;
	mr->ibmr.length = length;
	mr->ibmr.handle = mr->real->handle;
	mr->ibmr.lkey = isn_vid_local_new(ISN_VID_LKEY, mr->real->lkey);
	mr->ibmr.rkey = isn_vid_local_new(ISN_VID_RKEY, mr->real->rkey);
	mr->access = access;
	mr->iova = iova;
	isn_obj_add(ISN_OBJ_MR, &mr->entry);
	return &mr->ibmr;
}

ISN_EXPORT struct ibv_mr *ibv_reg_mr(struct ibv_pd *pd, void *addr,
				     size_t length, int access)
{
	if (!isn_pd_of(pd))
		return ISN_REAL(struct ibv_mr * (*)(struct ibv_pd *, void *,
						    size_t, int),
				"ibv_reg_mr",
				"IBVERBS_1.1")(pd, addr, length, access);
	return ibv_reg_mr_iova2(pd, addr, length, (uintptr_t)addr, access);
}

ISN_EXPORT struct ibv_mr *ibv_reg_mr_iova(struct ibv_pd *pd, void *addr,
					  size_t length, uint64_t iova,
					  int access)
{
	if (!isn_pd_of(pd))
		return ISN_REAL(struct ibv_mr * (*)(struct ibv_pd *, void *,
						    size_t, uint64_t, int),
				"ibv_reg_mr_iova",
				"IBVERBS_1.7")(pd, addr, length, iova, access);
	return ibv_reg_mr_iova2(pd, addr, length, iova, access);
}

ISN_EXPORT int ibv_dereg_mr(struct ibv_mr *ibmr)
{
	ISN_CTL();
	struct isn_mr *mr = isn_mr_of(ibmr);
	int ret;

	if (!mr)
		return ISN_REAL(int (*)(struct ibv_mr *), "ibv_dereg_mr",
				"IBVERBS_1.1")(ibmr);
	ret = mr->real ? isn_g.ops.dereg_mr(mr->real) : 0;
	if (ret)
		return ret;
	isn_obj_del(&mr->entry);
	isn_vid_local_forget(ISN_VID_LKEY, mr->ibmr.lkey);
	isn_vid_local_forget(ISN_VID_RKEY, mr->ibmr.rkey);
	free(mr);
	return 0;
}
