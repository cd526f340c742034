// SPDX-License-Identifier: MIT
/*
 * The one ID exchange of a rebuild (design §3, §6): every process publishes
 * {old virtual -> new real} for the IDs its peers use -- port GIDs and LIDs
 * (its names), QPNs and rkeys -- and reads everybody's.  A peer is a node
 * named by its virtual GIDs and LID: processes of one node share them, and
 * their QPNs and keys are unique on the node, so their maps join in one
 * table.  Our own blob comes back too: QPs connected to this process's own
 * QPs translate through it like any other peer's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../drain/ckpt.h"

#define IDS_MAGIC 0x69647331u /* "ids1" */

struct ids_hdr {
	uint32_t magic;
	uint32_t nname, nid;
};

struct ids_name {
	union ibv_gid vgid, rgid;
	uint16_t vlid, rlid;
	uint32_t pad;
};

struct ids_id {
	uint32_t kind; /* enum isn_vid_kind */
	uint32_t virt, real;
};

struct ids_buf {
	struct ids_hdr h;
	struct ids_name *names;
	struct ids_id *ids;
	uint32_t cap_name, cap_id;
};

static int add_name(struct ids_buf *b, const struct ids_name *n)
{
	struct ids_name *p = b->names;

	if (b->h.nname == b->cap_name) {
		b->cap_name = b->cap_name ? b->cap_name * 2 : 8;
		p = realloc(b->names, b->cap_name * sizeof(*p));
		if (!p)
			return -ENOMEM;
		b->names = p;
	}
	b->names[b->h.nname++] = *n;
	return 0;
}

static int add_id(struct ids_buf *b, uint32_t kind, uint32_t virt,
		  uint32_t real)
{
	struct ids_id *p = b->ids;

	if (b->h.nid == b->cap_id) {
		b->cap_id = b->cap_id ? b->cap_id * 2 : 64;
		p = realloc(b->ids, b->cap_id * sizeof(*p));
		if (!p)
			return -ENOMEM;
		b->ids = p;
	}
	b->ids[b->h.nid++] = (struct ids_id){ kind, virt, real };
	return 0;
}

static int collect(struct ids_buf *b)
{
	struct isn_context *ictx;
	struct isn_qp *qp;
	struct isn_mr *mr;
	struct ids_name n;
	uint32_t i;
	int ret = 0;

	isn_for_each_obj(struct isn_context, ictx, ISN_OBJ_CTX)
	{
		for (i = 0; !ret && i < ictx->ngid; i++) {
			static const union ibv_gid zero;

			if (!memcmp(&ictx->vgid[i], &zero, sizeof(zero)))
				continue; /* an empty entry names nobody */
			memset(&n, 0, sizeof(n));
			n.vgid = ictx->vgid[i];
			isn_vid_gid_local_to_real(&n.vgid, &n.rgid);
			n.vlid = ictx->vlid;
			n.rlid = (uint16_t)isn_vid_local_to_real(ISN_VID_LID,
								 n.vlid);
			ret = add_name(b, &n);
		}
	}
	isn_for_each_obj(struct isn_qp, qp, ISN_OBJ_QP) if (!ret)
		ret = add_id(b, ISN_VID_QPN, qp->qp.qp_num, qp->real->qp_num);
	/* an MR left unbacked (rebuild/mr.c) has no new rkey to give */
	isn_for_each_obj(struct isn_mr, mr, ISN_OBJ_MR) if (!ret && mr->real)
		ret = add_id(b, ISN_VID_RKEY, mr->ibmr.rkey, mr->real->rkey);
	return ret;
}

/* One process's blob into the tables. */
static int apply(const void *blob, size_t len)
{
	const char *p = blob;
	struct ids_hdr h;
	struct ids_name n;
	struct ids_id id;
	struct isn_vid_peer *peer;
	uint32_t i, k;
	int ret = 0;

	if (len < sizeof(h))
		return -EPROTO;
	memcpy(&h, p, sizeof(h));
	if (h.magic != IDS_MAGIC ||
	    len != sizeof(h) + h.nname * sizeof(n) + (size_t)h.nid * sizeof(id))
		return -EPROTO;
	for (i = 0; !ret && i < h.nname; i++) {
		memcpy(&n, p + sizeof(h) + i * sizeof(n), sizeof(n));
		ret = isn_vid_remote_gid_map(&n.vgid, &n.rgid);
		if (!ret && n.vlid)
			ret = isn_vid_remote_lid_map(n.vlid, n.rlid);
		peer = ret ? NULL : isn_vid_peer_add(&n.vgid, n.vlid);
		if (!ret && !peer)
			ret = -ENOMEM;
		for (k = 0; !ret && k < h.nid; k++) {
			memcpy(&id,
			       p + sizeof(h) + h.nname * sizeof(n) +
				       k * sizeof(id),
			       sizeof(id));
			ret = isn_vid_peer_map(peer, id.kind, id.virt, id.real);
		}
	}
	return ret;
}

int isn_ids_exchange(struct isn_exchange *x)
{
	struct ids_buf b = { .h = { .magic = IDS_MAGIC } };
	const struct isn_blob *all;
	size_t n = 0, i, len;
	char *blob = NULL;
	int ret, xret;

	ret = collect(&b);
	len = sizeof(b.h) + b.h.nname * sizeof(*b.names) +
	      (size_t)b.h.nid * sizeof(*b.ids);
	if (!ret && !(blob = malloc(len)))
		ret = -ENOMEM;
	if (!ret) {
		memcpy(blob, &b.h, sizeof(b.h));
		/* an empty table may be NULL: memcpy must not see it */
		if (b.h.nname)
			memcpy(blob + sizeof(b.h), b.names,
			       b.h.nname * sizeof(*b.names));
		if (b.h.nid)
			memcpy(blob + sizeof(b.h) +
				       b.h.nname * sizeof(*b.names),
			       b.ids, (size_t)b.h.nid * sizeof(*b.ids));
	}
	free(b.names);
	free(b.ids);
	/* every process takes part in the fence, even one that failed */
	xret = x->put_fence_get(x, blob, ret ? 0 : len, &all, &n);
	free(blob);
	if (!ret)
		ret = xret;
	for (i = 0; !ret && i < n; i++)
		if (all[i].len)
			ret = apply(all[i].data, all[i].len);
	if (ret)
		isn_log("rebuild: ID exchange: %s", strerror(-ret));
	isn_slow_sync_xlate();
	return ret;
}
