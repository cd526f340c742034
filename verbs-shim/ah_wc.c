/* SPDX-License-Identifier: MIT */
/*
 * ibv_init_ah_from_wc / ibv_create_ah_from_wc on virtual contexts: the
 * reply address of a received UD message.  poll_cq has made the GIDs of the
 * GRH in the receive buffer virtual already (wc.c), and the WC's slid.
 */
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "shim.h"

#define GRH_NEXT_HDR_IB 0x1b

/* Valid IPv4 header of RoCE v2 at byte 20 of the GRH buffer? */
static bool grh_ipv4_ok(const uint8_t *ip)
{
	uint32_t sum = 0;
	int i;

	if (ip[0] != 0x45)
		return false;
	for (i = 0; i < 20; i += 2)
		sum += (uint32_t)ip[i] << 8 | ip[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

bool isn_grh_is_ipv4(const struct ibv_grh *grh)
{
	const uint8_t *ip = (const uint8_t *)grh + 20;
	bool v6 = be32toh(grh->version_tclass_flow) >> 28 == 6;

	if (!v6)
		return ip[0] >> 4 == 4;
	return grh_ipv4_ok(ip);
}

/* Index of virtual GID @gid with RoCE v2-ness @v2 in @port's table. */
static int sgid_index(struct ibv_context *ctx, uint8_t port,
		      const union ibv_gid *gid, bool v2)
{
	struct ibv_port_attr pattr;
	struct ibv_gid_entry e;
	int i;

	if (isn_query_port_ex(ctx, port, &pattr, sizeof(pattr)))
		return -1;
	for (i = 0; i < pattr.gid_tbl_len; i++) {
		if (_ibv_query_gid_ex(ctx, port, i, &e, 0, sizeof(e)))
			continue;
		if (!memcmp(&e.gid, gid, sizeof(*gid)) &&
		    (e.gid_type == IBV_GID_TYPE_ROCE_V2) == v2)
			return i;
	}
	errno = ENOENT;
	return -1;
}

static void ipv4_mapped(union ibv_gid *gid, const uint8_t *addr)
{
	memset(gid, 0, sizeof(*gid));
	gid->raw[10] = 0xff;
	gid->raw[11] = 0xff;
	memcpy(&gid->raw[12], addr, 4);
}

/* Fill the GRH part of @ah from a received @grh; 0 or -1 with errno. */
static int ah_grh_from_wc(struct ibv_context *ctx, uint8_t port,
			  const struct ibv_grh *grh, struct ibv_ah_attr *ah)
{
	const uint8_t *ip = (const uint8_t *)grh + 20;
	union ibv_gid local, remote;
	uint32_t flow = be32toh(grh->version_tclass_flow);
	bool v2 = true;
	int idx;

	if (isn_grh_is_ipv4(grh)) {
		ipv4_mapped(&local, ip + 16); /* daddr */
		ipv4_mapped(&remote, ip + 12); /* saddr */
		ah->grh.hop_limit = ip[8];
		ah->grh.traffic_class = ip[1];
	} else {
		if (grh->next_hdr == GRH_NEXT_HDR_IB)
			v2 = false;
		else if (grh->next_hdr != IPPROTO_UDP) {
			errno = EPROTONOSUPPORT;
			return -1;
		}
		local = grh->dgid;
		remote = grh->sgid;
		ah->grh.hop_limit = grh->hop_limit;
		ah->grh.traffic_class = (flow >> 20) & 0xff;
	}
	if (local.raw[0] == 0xff) {
		errno = EINVAL; /* multicast: not in the GID table */
		return -1;
	}
	ah->grh.dgid = remote;
	idx = sgid_index(ctx, port, &local, v2);
	if (idx < 0)
		return -1;
	ah->grh.sgid_index = idx;
	return 0;
}

ISN_EXPORT int ibv_init_ah_from_wc(struct ibv_context *context,
				   uint8_t port_num, struct ibv_wc *wc,
				   struct ibv_grh *grh,
				   struct ibv_ah_attr *ah_attr)
{
	ISN_CTL();
	if (!isn_ctx_of(context))
		return ISN_REAL(
			int (*)(struct ibv_context *, uint8_t, struct ibv_wc *,
				struct ibv_grh *, struct ibv_ah_attr *),
			"ibv_init_ah_from_wc",
			"IBVERBS_1.1")(context, port_num, wc, grh, ah_attr);
	memset(ah_attr, 0, sizeof(*ah_attr));
	ah_attr->dlid = wc->slid;
	ah_attr->sl = wc->sl;
	ah_attr->src_path_bits = wc->dlid_path_bits;
	ah_attr->port_num = port_num;
	ah_attr->grh.flow_label = be32toh(grh->version_tclass_flow) & 0xfffff;
	if (!(wc->wc_flags & IBV_WC_GRH))
		return 0;
	ah_attr->is_global = 1;
	return ah_grh_from_wc(context, port_num, grh, ah_attr);
}

ISN_EXPORT struct ibv_ah *ibv_create_ah_from_wc(struct ibv_pd *pd,
						struct ibv_wc *wc,
						struct ibv_grh *grh,
						uint8_t port_num)
{
	struct ibv_ah_attr attr;

	if (!isn_pd_of(pd))
		return ISN_REAL(struct ibv_ah * (*)(struct ibv_pd *,
						    struct ibv_wc *,
						    struct ibv_grh *, uint8_t),
				"ibv_create_ah_from_wc",
				"IBVERBS_1.1")(pd, wc, grh, port_num);
	if (ibv_init_ah_from_wc(pd->context, port_num, wc, grh, &attr))
		return NULL;
	return ibv_create_ah(pd, &attr);
}
