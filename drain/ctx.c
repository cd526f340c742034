// SPDX-License-Identifier: MIT
/*
 * Device contexts at a checkpoint: release closes the backend context (no
 * device fd, mapping or -- on the fake backend -- fabric port remains),
 * after keeping port 1's virtual GIDs and LID, the IDs peers know this
 * process by.  The application's context, its async fd (a shim pipe) and
 * the events still queued there stay.
 */
#include <errno.h>
#include <string.h>

#include "ckpt.h"

/* Port 1's IDs as the program knows them (virtual). */
static void ctx_keep_ids(struct isn_context *ictx)
{
	struct ibv_port_attr pa;
	struct ibv_gid_entry e;
	uint32_t i;

	memset(&pa, 0, sizeof(pa));
	ictx->ngid = 0;
	if (isn_g.ops.query_port(ictx->real, 1, &pa))
		return;
	ictx->vlid = (uint16_t)isn_vid_local_new(ISN_VID_LID, pa.lid);
	for (i = 0; i < ISN_CK_GIDS && i < (uint32_t)pa.gid_tbl_len; i++) {
		memset(&e, 0, sizeof(e));
		if (isn_g.ops.query_gid_ex(ictx->real, 1, i, &e, 0))
			memset(&e.gid, 0, sizeof(e.gid));
		isn_vid_gid_local_new(&e.gid, &ictx->vgid[i]);
		ictx->ngid = i + 1;
	}
}

static int ctx_release(void)
{
	struct isn_context *ictx;
	int ret;

	isn_for_each_obj(struct isn_context, ictx, ISN_OBJ_CTX)
	{
		if (!ictx->real)
			continue;
		ctx_keep_ids(ictx);
		isn_async_unwatch(ictx);
		isn_cred_fd_del(ictx->real->cmd_fd);
		ret = isn_g.ops.close_device(ictx->real);
		if (ret)
			return -ret;
		ictx->real = NULL;
	}
	return 0;
}

const struct isn_ck_kind isn_ck_ctx = {
	.name = "context",
	.release = ctx_release,
	.rebuild = isn_ctx_rebuild,
};
