/* SPDX-License-Identifier: MIT */
/*
 * GID queries.  GIDs are IDs the application sends to peers, so they are
 * virtual (identity until restart; offset in test mode).
 */
#include <errno.h>
#include <string.h>
#include <sys/types.h>

#include "shim.h"

/* Entry @index of @port, virtual; 0, ENODATA (empty) or an errno. */
static int gid_entry(struct isn_context *ictx, uint32_t port, uint32_t index,
		     struct ibv_gid_entry *e, uint32_t flags)
{
	static const union ibv_gid zero;
	int ret;

	memset(e, 0, sizeof(*e));
	ret = isn_g.ops.query_gid_ex(ictx->real, port, index, e, flags);
	if (ret)
		return ret;
	if (!memcmp(&e->gid, &zero, sizeof(zero)))
		return ENODATA;
	if (isn_slow_get() & ISN_SLOW_XLATE)
		isn_vid_gid_local_new(&e->gid, &e->gid);
	return 0;
}

ISN_EXPORT int ibv_query_gid(struct ibv_context *context, uint8_t port_num,
			     int index, union ibv_gid *gid)
{
	ISN_CTL();
	struct isn_context *ictx = isn_ctx_of(context);
	int ret;

	if (!ictx)
		return ISN_REAL(int (*)(struct ibv_context *, uint8_t, int,
					union ibv_gid *),
				"ibv_query_gid",
				"IBVERBS_1.1")(context, port_num, index, gid);
	ret = isn_g.ops.query_gid(ictx->real, port_num, index, gid);
	if (ret)
		return -1;
	if (isn_slow_get() & ISN_SLOW_XLATE)
		isn_vid_gid_local_new(gid, gid);
	return 0;
}

ISN_EXPORT int _ibv_query_gid_ex(struct ibv_context *context, uint32_t port_num,
				 uint32_t gid_index,
				 struct ibv_gid_entry *entry, uint32_t flags,
				 size_t entry_size)
{
	ISN_CTL();
	struct isn_context *ictx = isn_ctx_of(context);
	struct ibv_gid_entry e;
	int ret;

	if (!ictx)
		return ISN_REAL(int (*)(struct ibv_context *, uint32_t,
					uint32_t, struct ibv_gid_entry *,
					uint32_t, size_t),
				"_ibv_query_gid_ex", "IBVERBS_1.11")(
			context, port_num, gid_index, entry, flags, entry_size);
	ret = gid_entry(ictx, port_num, gid_index, &e, flags);
	if (ret)
		return ret;
	memcpy(entry, &e, entry_size < sizeof(e) ? entry_size : sizeof(e));
	return 0;
}

/* The valid entries of one port into @out (room for @max); count or -errno */
static ssize_t gid_port_table(struct isn_context *ictx, uint8_t port, char *out,
			      size_t max, size_t entry_size)
{
	struct ibv_port_attr pattr;
	struct ibv_gid_entry e;
	ssize_t n = 0;
	int i, ret;

	memset(&pattr, 0, sizeof(pattr));
	ret = isn_g.ops.query_port(ictx->real, port, &pattr);
	if (ret)
		return -ret;
	for (i = 0; i < pattr.gid_tbl_len; i++) {
		ret = gid_entry(ictx, port, i, &e, 0);
		if (ret == ENODATA)
			continue;
		if (ret)
			return -ret;
		if ((size_t)n == max)
			return -EINVAL;
		memcpy(out + n * entry_size, &e,
		       entry_size < sizeof(e) ? entry_size : sizeof(e));
		n++;
	}
	return n;
}

ISN_EXPORT ssize_t _ibv_query_gid_table(struct ibv_context *context,
					struct ibv_gid_entry *entries,
					size_t max_entries, uint32_t flags,
					size_t entry_size)
{
	ISN_CTL();
	struct isn_context *ictx = isn_ctx_of(context);
	struct ibv_device_attr_ex dattr;
	ssize_t n = 0, got;
	int port, ret;

	if (!ictx)
		return ISN_REAL(ssize_t(*)(struct ibv_context *,
					   struct ibv_gid_entry *, size_t,
					   uint32_t, size_t),
				"_ibv_query_gid_table", "IBVERBS_1.11")(
			context, entries, max_entries, flags, entry_size);
	if (flags)
		return -EOPNOTSUPP;
	memset(&dattr, 0, sizeof(dattr));
	ret = isn_g.ops.query_device_ex(ictx->real, NULL, &dattr,
					sizeof(dattr));
	if (ret)
		return -ret;
	for (port = 1; port <= dattr.orig_attr.phys_port_cnt; port++) {
		got = gid_port_table(ictx, port,
				     (char *)entries + n * entry_size,
				     max_entries - n, entry_size);
		if (got < 0)
			return got;
		n += got;
	}
	return n;
}

/* rdma-core's private helper; ibv_devinfo and providers call it. */
enum isn_gid_type_sysfs {
	ISN_GID_TYPE_SYSFS_IB_ROCE_V1,
	ISN_GID_TYPE_SYSFS_ROCE_V2,
};

ISN_EXPORT int ibv_query_gid_type(struct ibv_context *context, uint8_t port_num,
				  unsigned int index,
				  enum isn_gid_type_sysfs *type)
{
	ISN_CTL();
	struct isn_context *ictx = isn_ctx_of(context);
	struct ibv_gid_entry e;
	int ret;

	if (!ictx)
		return ISN_REAL(
			int (*)(struct ibv_context *, uint8_t, unsigned int,
				enum isn_gid_type_sysfs *),
			"ibv_query_gid_type",
			"IBVERBS_PRIVATE_34")(context, port_num, index, type);
	ret = gid_entry(ictx, port_num, index, &e, 0);
	if (ret == ENODATA) {
		*type = ISN_GID_TYPE_SYSFS_IB_ROCE_V1;
		return 0;
	}
	if (ret)
		return -1;
	*type = e.gid_type == IBV_GID_TYPE_ROCE_V2 ?
			ISN_GID_TYPE_SYSFS_ROCE_V2 :
			ISN_GID_TYPE_SYSFS_IB_ROCE_V1;
	return 0;
}
