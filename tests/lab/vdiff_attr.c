/* SPDX-License-Identifier: MIT */
/*
 * Differential probe, attributes: what a device, its port and GID table
 * report, and what creating a QP, CQ or SRQ grants for a request, through
 * libibverbs.  See vdiff.h.
 */
#include "vdiff.h"

static struct vd_dev d;

#define OUT(key, fmt, ...) vd_out(key, fmt, __VA_ARGS__)
#define U(s, f) OUT(#s "." #f, "%llu", (unsigned long long)(s).f)
#define X(s, f) OUT(#s "." #f, "0x%llx", (unsigned long long)(s).f)

static const char *gid_kind(const union ibv_gid *g)
{
	static const uint8_t v4[12] = { [10] = 0xff, [11] = 0xff };

	if (!memcmp(g->raw, (uint8_t[16]){ 0 }, 16))
		return "zero";
	if (!memcmp(g->raw, v4, 12))
		return "ipv4-mapped";
	if (g->raw[0] == 0xfe && (g->raw[1] & 0xc0) == 0x80)
		return "link-local";
	return "other";
}

static void device_attrs(void)
{
	struct ibv_device_attr_ex ex;
	struct ibv_device_attr dev;

	if (ibv_query_device_ex(d.ctx, NULL, &ex)) {
		OUT("dev", "%s", "query_device_ex failed");
		return;
	}
	dev = ex.orig_attr;
	U(dev, max_mr_size);
	X(dev, page_size_cap);
	X(dev, vendor_id);
	U(dev, max_qp);
	U(dev, max_qp_wr);
	X(dev, device_cap_flags);
	U(dev, max_sge);
	U(dev, max_sge_rd);
	U(dev, max_cq);
	U(dev, max_cqe);
	U(dev, max_mr);
	U(dev, max_pd);
	U(dev, max_qp_rd_atom);
	U(dev, max_ee_rd_atom);
	U(dev, max_res_rd_atom);
	U(dev, max_qp_init_rd_atom);
	U(dev, max_ee_init_rd_atom);
	U(dev, atomic_cap);
	U(dev, max_ee);
	U(dev, max_rdd);
	U(dev, max_mw);
	U(dev, max_raw_ipv6_qp);
	U(dev, max_raw_ethy_qp);
	U(dev, max_mcast_grp);
	U(dev, max_mcast_qp_attach);
	U(dev, max_total_mcast_qp_attach);
	U(dev, max_ah);
	U(dev, max_fmr);
	U(dev, max_srq);
	U(dev, max_srq_wr);
	U(dev, max_srq_sge);
	U(dev, max_pkeys);
	U(dev, local_ca_ack_delay);
	U(dev, phys_port_cnt);
	OUT("dev.node_guid", "%s", dev.node_guid ? "set" : "zero");
	OUT("dev.sys_image_guid", "%s",
	    dev.sys_image_guid == dev.node_guid ? "node_guid" : "other");
	X(ex, odp_caps.general_caps);
	X(ex, completion_timestamp_mask);
	X(ex, hca_core_clock);
	X(ex, device_cap_flags_ex);
	U(ex, tso_caps.max_tso);
	U(ex, rss_caps.max_rwq_indirection_tables);
	U(ex, max_wq_type_rq);
	X(ex, packet_pacing_caps.qp_rate_limit_max);
	U(ex, tm_caps.max_num_tags);
	U(ex, cq_mod_caps.max_cq_count);
	U(ex, max_dm_size);
	X(ex, pci_atomic_caps.fetch_add);
	U(ex, phys_port_cnt_ex);
}

static void port_attrs(void)
{
	struct ibv_port_attr port = d.port;
	struct ibv_gid_entry e[4];
	union ibv_gid g;
	__be16 pk;
	ssize_t n;
	int i;

	U(port, state);
	U(port, max_mtu);
	U(port, active_mtu);
	U(port, gid_tbl_len);
	X(port, port_cap_flags);
	U(port, max_msg_sz);
	U(port, bad_pkey_cntr);
	U(port, qkey_viol_cntr);
	U(port, pkey_tbl_len);
	U(port, lid);
	U(port, sm_lid);
	U(port, lmc);
	U(port, max_vl_num);
	U(port, sm_sl);
	U(port, subnet_timeout);
	U(port, init_type_reply);
	U(port, active_width);
	U(port, active_speed);
	U(port, phys_state);
	U(port, link_layer);
	X(port, flags);
	X(port, port_cap_flags2);
	for (i = 0; i < 2; i++) {
		char key[32];

		snprintf(key, sizeof(key), "gid.%d", i);
		if (ibv_query_gid(d.ctx, VD_PORT, i, &g))
			OUT(key, "%s", vd_err(errno));
		else
			OUT(key, "%s", gid_kind(&g));
		snprintf(key, sizeof(key), "gid_ex.%d.type", i);
		if (ibv_query_gid_ex(d.ctx, VD_PORT, i, e, 0))
			OUT(key, "%s", "error");
		else
			OUT(key, "%u", e[0].gid_type);
	}
	errno = 0;
	i = ibv_query_gid(d.ctx, VD_PORT, 2, &g);
	OUT("gid.2", "%s", i ? vd_err(errno) : gid_kind(&g));
	errno = 0;
	i = ibv_query_gid(d.ctx, VD_PORT, port.gid_tbl_len, &g);
	OUT("gid.gid_tbl_len", "%s", i ? vd_err(errno) : gid_kind(&g));
	OUT("gid_ex.2", "%s",
	    vd_err(ibv_query_gid_ex(d.ctx, VD_PORT, 2, e, 0)));
	OUT("gid_ex.gid_tbl_len", "%s",
	    vd_err(ibv_query_gid_ex(d.ctx, VD_PORT, port.gid_tbl_len, e, 0)));
	n = ibv_query_gid_table(d.ctx, e, 4, 0);
	OUT("gid_table.count", "%zd", n);
	for (i = 0; i < n; i++)
		printf("gid_table.%d: index %u type %u %s\n", i, e[i].gid_index,
		       e[i].gid_type, gid_kind(&e[i].gid));
	i = ibv_query_pkey(d.ctx, VD_PORT, 0, &pk);
	OUT("pkey.0", "%s 0x%x", vd_err(i ? errno : 0), be16toh(pk));
	errno = 0;
	OUT("pkey.1", "%s",
	    vd_err(ibv_query_pkey(d.ctx, VD_PORT, 1, &pk) ? errno : 0));
	OUT("query_port.0", "%s", vd_err(ibv_query_port(d.ctx, 0, &port)));
	OUT("query_port.2", "%s", vd_err(ibv_query_port(d.ctx, 2, &port)));
	errno = 0;
	OUT("query_gid.port2", "%s",
	    vd_err(ibv_query_gid(d.ctx, 2, 0, &g) ? errno : 0));
	OUT("query_gid.-1", "%s",
	    vd_err(ibv_query_gid(d.ctx, VD_PORT, -1, &g) ? errno : 0));
	OUT("query_gid_ex.flags1", "%s",
	    vd_err(ibv_query_gid_ex(d.ctx, VD_PORT, 0, e, 1)));
}

/* What create_qp grants for a request, and what query_qp reports. */
static void qp_caps(const char *name, enum ibv_qp_type t, struct ibv_qp_cap cap)
{
	struct ibv_cq *cq = ibv_create_cq(d.ctx, 16, NULL, NULL, 0);
	struct ibv_qp_init_attr ia = { .send_cq = cq,
				       .recv_cq = cq,
				       .cap = cap,
				       .qp_type = t },
				qi;
	struct ibv_qp_attr qa;
	char key[64];
	struct ibv_qp *qp = ibv_create_qp(d.pd, &ia);

	snprintf(key, sizeof(key), "caps.%s", name);
	if (!qp) {
		OUT(key, "%s", vd_err(errno));
	} else {
		OUT(key, "wr %u/%u sge %u/%u inline %u", ia.cap.max_send_wr,
		    ia.cap.max_recv_wr, ia.cap.max_send_sge,
		    ia.cap.max_recv_sge, ia.cap.max_inline_data);
		snprintf(key, sizeof(key), "caps.%s.query", name);
		if (ibv_query_qp(qp, &qa, IBV_QP_CAP, &qi))
			OUT(key, "%s", "query_qp failed");
		else
			OUT(key, "wr %u/%u sge %u/%u inline %u state %u",
			    qa.cap.max_send_wr, qa.cap.max_recv_wr,
			    qa.cap.max_send_sge, qa.cap.max_recv_sge,
			    qa.cap.max_inline_data, qa.qp_state);
		ibv_destroy_qp(qp);
	}
	ibv_destroy_cq(cq);
}

static void grants(void)
{
	static const int cqes[] = { 1, 2, 100, 4095, 32767 };
	static const int srq_wr[] = { 1, 10, 100 };
	unsigned int i;

	qp_caps("rc.1", IBV_QPT_RC, (struct ibv_qp_cap){ 1, 1, 1, 1, 0 });
	qp_caps("rc.100", IBV_QPT_RC,
		(struct ibv_qp_cap){ 100, 100, 3, 3, 100 });
	qp_caps("rc.0", IBV_QPT_RC, (struct ibv_qp_cap){ 0, 0, 0, 0, 0 });
	qp_caps("uc.7", IBV_QPT_UC, (struct ibv_qp_cap){ 7, 9, 2, 5, 33 });
	qp_caps("ud.64", IBV_QPT_UD, (struct ibv_qp_cap){ 64, 64, 4, 4, 64 });
	qp_caps("rc.inline512", IBV_QPT_RC,
		(struct ibv_qp_cap){ 1, 1, 1, 1, 512 });
	for (i = 0; i < sizeof(cqes) / sizeof(cqes[0]); i++) {
		struct ibv_cq *cq =
			ibv_create_cq(d.ctx, cqes[i], NULL, NULL, 0);
		char key[32];

		snprintf(key, sizeof(key), "cq.cqe.%d", cqes[i]);
		OUT(key, "%d", cq ? cq->cqe : -errno);
		if (cq && !ibv_resize_cq(cq, cqes[i] + 10)) {
			snprintf(key, sizeof(key), "cq.resize.%d",
				 cqes[i] + 10);
			OUT(key, "%d", cq->cqe);
		}
		if (cq)
			ibv_destroy_cq(cq);
	}
	for (i = 0; i < sizeof(srq_wr) / sizeof(srq_wr[0]); i++) {
		struct ibv_srq_init_attr a = { .attr = { srq_wr[i], 0, 0 } };
		struct ibv_srq *srq = ibv_create_srq(d.pd, &a);
		struct ibv_srq_attr q;
		char key[32];

		snprintf(key, sizeof(key), "srq.%d", srq_wr[i]);
		if (!srq) {
			OUT(key, "%s", vd_err(errno));
			continue;
		}
		ibv_query_srq(srq, &q);
		OUT(key, "granted %u/%u query %u/%u limit %u", a.attr.max_wr,
		    a.attr.max_sge, q.max_wr, q.max_sge, q.srq_limit);
		ibv_destroy_srq(srq);
	}
	OUT("num_comp_vectors", "%d", d.ctx->num_comp_vectors);
}

int main(int argc, char **argv)
{
	if (vd_open(&d, argc > 1 ? argv[1] : NULL)) {
		fprintf(stderr, "vdiff_attr: cannot open %s\n",
			argc > 1 ? argv[1] : "a device");
		return 1;
	}
	device_attrs();
	port_attrs();
	grants();
	ibv_dealloc_pd(d.pd);
	ibv_close_device(d.ctx);
	return 0;
}
