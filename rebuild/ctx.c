// SPDX-License-Identifier: MIT
/*
 * Device contexts at a rebuild: the device is found again by name (a new
 * list: after a restore the old one describes nothing), opened, its async
 * fd watched, and port 1's old virtual GIDs and LID mapped to the new real
 * ones (identity when the node kept them).  The other threads' device
 * writes go through a thread this one starts (rebuild/cred.c).
 */
#include <errno.h>
#include <string.h>

#include "../drain/ckpt.h"

static struct ibv_device *dev_find(struct ibv_device **list, const char *name)
{
	int i;

	for (i = 0; list && list[i]; i++)
		if (!strcmp(list[i]->name, name))
			return list[i];
	return NULL;
}

static int ctx_map_ids(struct isn_context *ictx)
{
	struct ibv_port_attr pa;
	struct ibv_gid_entry e;
	uint32_t i;
	int ret;

	memset(&pa, 0, sizeof(pa));
	ret = isn_g.ops.query_port(ictx->real, 1, &pa);
	if (ret)
		return -ret;
	ret = isn_vid_local_set(ISN_VID_LID, ictx->vlid, pa.lid);
	for (i = 0; !ret && i < ictx->ngid; i++) {
		static const union ibv_gid zero;

		if (!memcmp(&ictx->vgid[i], &zero, sizeof(zero)))
			continue;
		memset(&e, 0, sizeof(e));
		if (isn_g.ops.query_gid_ex(ictx->real, 1, i, &e, 0))
			continue; /* the new port has fewer GIDs */
		ret = isn_vid_gid_local_set(&ictx->vgid[i], &e.gid);
	}
	return ret;
}

static int ctx_reopen(struct isn_context *ictx, struct ibv_device **list)
{
	struct ibv_device *dev =
		dev_find(list, ictx->vctx.context.device->name);
	int ret;

	if (!dev) {
		isn_log("rebuild: device %s is gone",
			ictx->vctx.context.device->name);
		return -ENODEV;
	}
	ictx->real = isn_g.ops.open_device(dev);
	if (!ictx->real)
		return -errno;
	isn_cred_fd_add(ictx->real->cmd_fd);
	ret = isn_async_rewatch(ictx);
	if (!ret)
		ret = ctx_map_ids(ictx);
	return ret;
}

int isn_ctx_rebuild(void)
{
	struct isn_context *ictx;
	struct ibv_device **list;
	int n, ret = 0;

	list = isn_g.ops.get_device_list(&n);
	if (!list)
		return -errno;
	isn_for_each_obj(struct isn_context, ictx, ISN_OBJ_CTX)
	{
		if (ictx->real)
			continue;
		ret = ctx_reopen(ictx, list);
		if (ret)
			break;
	}
	isn_g.ops.free_device_list(list);
	/* after a restore only this thread may write to the new device fds */
	return ret ? ret : isn_cred_start(isn_ckst.new_incarnation);
}
