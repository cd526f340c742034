/* SPDX-License-Identifier: MIT */
/*
 * Differential probe, bad inputs: the errno of every bad input
 * tests/unit/test_bad_input.c feeds the fake HCA (and a few more) - memory
 * registration, CQs, SRQs, QP creation, modify_qp, AHs, busy objects -
 * through libibverbs, and what a QP reports after a modify that worked.
 * See vdiff.h.
 */
#include <sys/mman.h>

#include "vdiff.h"

static struct vd_dev d;
static void *buf;

#define OUT(key, fmt, ...) vd_out(key, fmt, __VA_ARGS__)

/* ---- bad inputs ---- */

#define LW IBV_ACCESS_LOCAL_WRITE
#define RW IBV_ACCESS_REMOTE_WRITE

static void mr_cases(void)
{
	static const struct {
		const char *name;
		int where; /* 0 buffer, 1 NULL, 2 unmapped page */
		size_t len;
		uint64_t iova;
		unsigned int access;
	} c[] = {
		{ "remote_write_no_local", 0, 4096, 0, RW },
		{ "remote_atomic_no_local", 0, 4096, 0,
		  IBV_ACCESS_REMOTE_ATOMIC },
		{ "on_demand", 0, 4096, 0, LW | IBV_ACCESS_ON_DEMAND },
		{ "bit8", 0, 4096, 0, LW | 1u << 8 },
		{ "bit15", 0, 4096, 0, LW | 1u << 15 },
		{ "bit30", 0, 4096, 0, LW | 1u << 30 },
		{ "len0", 0, 0, 0, LW },
		{ "len2^62", 0, (size_t)1 << 62, 0, LW },
		{ "null", 1, 4096, 0, LW },
		{ "hole", 2, 8192, 0, LW },
		{ "iova_offset", 0, 4096, 0x100010, LW },
		{ "iova_same_offset", 0, 4096, 0x200000, LW },
		{ "mw_bind", 0, 4096, 0, LW | IBV_ACCESS_MW_BIND },
		{ "zero_based", 0, 4096, 0, LW | IBV_ACCESS_ZERO_BASED },
		{ "hugetlb", 0, 4096, 0, LW | IBV_ACCESS_HUGETLB },
		{ "relaxed", 0, 4096, 0, LW | IBV_ACCESS_RELAXED_ORDERING },
		{ "access0", 0, 4096, 0, 0 },
		{ "read_only_page", 3, 4096, 0, LW },
		{ "read_only_page_no_write", 3, 4096, 0, 0 },
	};
	unsigned int i;

	for (i = 0; i < VD_ARRAY_SIZE(c); i++) {
		uint8_t *p = buf;
		struct ibv_mr *mr;
		char key[64];

		if (c[i].where == 1)
			p = NULL;
		if (c[i].where == 2 || c[i].where == 3) {
			p = mmap(NULL, 8192, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (c[i].where == 2)
				munmap(p + 4096, 4096);
			else
				mprotect(p, 8192, PROT_READ);
		}
		errno = 0;
		mr = ibv_reg_mr_iova(d.pd, p, c[i].len,
				     c[i].iova ? c[i].iova : (uintptr_t)p,
				     c[i].access);
		snprintf(key, sizeof(key), "reg_mr.%s", c[i].name);
		OUT(key, "%s", vd_err(mr ? 0 : errno));
		if (mr) {
			snprintf(key, sizeof(key), "reg_mr.%s.keys", c[i].name);
			OUT(key, "%s length %zu",
			    mr->lkey == mr->rkey ? "lkey=rkey" : "lkey!=rkey",
			    mr->length);
			ibv_dereg_mr(mr);
		}
		if (c[i].where >= 2)
			munmap(p, c[i].where == 2 ? 4096 : 8192);
	}
}

static void create_cq_case(const char *name, int cqe, int vector)
{
	struct ibv_cq *cq;

	errno = 0;
	cq = ibv_create_cq(d.ctx, cqe, NULL, NULL, vector);
	OUT(vd_key("create_cq.%s", name), "%s", vd_err(cq ? 0 : errno));
	if (cq)
		ibv_destroy_cq(cq);
}

static void create_cq_ex_case(const char *name, struct ibv_cq_init_attr_ex *cx)
{
	struct ibv_cq_ex *cq;

	errno = 0;
	cq = ibv_create_cq_ex(d.ctx, cx);
	OUT(vd_key("create_cq_ex.%s", name), "%s", vd_err(cq ? 0 : errno));
	if (cq)
		ibv_destroy_cq(ibv_cq_ex_to_cq(cq));
}

static void cq_cases(void)
{
	struct ibv_comp_channel *ch = ibv_create_comp_channel(d.ctx);
	struct ibv_cq_init_attr_ex cx = { .cqe = 4 };
	struct ibv_device_attr a;
	struct ibv_cq *cq;

	ibv_query_device(d.ctx, &a);
	create_cq_case("cqe0", 0, 0);
	create_cq_case("cqe-1", -1, 0);
	create_cq_case("cqe_max+1", a.max_cqe + 1, 0);
	create_cq_case("cqe_max", a.max_cqe, 0);
	create_cq_case("vector_ncv", 4, d.ctx->num_comp_vectors);
	create_cq_case("vector-1", 4, -1);
	cq = ibv_create_cq(d.ctx, 4, NULL, ch, 0);
	OUT("resize_cq.0", "%s", vd_err(ibv_resize_cq(cq, 0)));
	OUT("resize_cq.max+1", "%s", vd_err(ibv_resize_cq(cq, a.max_cqe + 1)));
	OUT("destroy_comp_channel.busy", "%s",
	    vd_err(ibv_destroy_comp_channel(ch)));
	OUT("req_notify_cq", "%s", vd_err(ibv_req_notify_cq(cq, 0)));
	ibv_destroy_cq(cq);
	OUT("destroy_comp_channel", "%s", vd_err(ibv_destroy_comp_channel(ch)));
	cx.wc_flags = IBV_WC_EX_WITH_COMPLETION_TIMESTAMP;
	create_cq_ex_case("timestamp", &cx);
	cx.wc_flags = IBV_WC_STANDARD_FLAGS;
	cx.comp_mask = IBV_CQ_INIT_ATTR_MASK_FLAGS;
	cx.flags = IBV_CREATE_CQ_ATTR_IGNORE_OVERRUN;
	create_cq_ex_case("ignore_overrun", &cx);
	cx.comp_mask = 0;
	create_cq_ex_case("standard", &cx);
}

static void create_srq_case(const char *name, uint32_t wr, uint32_t sge)
{
	struct ibv_srq_init_attr sa = { .attr = { wr, sge, 0 } };
	struct ibv_srq *srq;

	errno = 0;
	srq = ibv_create_srq(d.pd, &sa);
	OUT(vd_key("create_srq.%s", name), "%s", vd_err(srq ? 0 : errno));
	if (srq)
		ibv_destroy_srq(srq);
}

static void modify_srq_case(const char *name, struct ibv_srq *srq,
			    struct ibv_srq_attr *q, int mask)
{
	OUT(vd_key("modify_srq.%s", name), "%s",
	    vd_err(ibv_modify_srq(srq, q, mask)));
}

static void srq_cases(void)
{
	struct ibv_srq_init_attr sa = { .attr = { 10, 1, 0 } };
	struct ibv_device_attr a;
	struct ibv_srq_attr q;
	struct ibv_srq *srq;

	ibv_query_device(d.ctx, &a);
	create_srq_case("wr0", 0, 1);
	create_srq_case("wr_max+1", a.max_srq_wr + 1, 1);
	create_srq_case("sge_max+1", 10, a.max_srq_sge + 1);
	create_srq_case("sge_max", 10, a.max_srq_sge);
	srq = ibv_create_srq(d.pd, &sa);
	if (!srq)
		return;
	ibv_query_srq(srq, &q);
	q.srq_limit = q.max_wr + 1;
	modify_srq_case("limit>max_wr", srq, &q, IBV_SRQ_LIMIT);
	q.srq_limit = q.max_wr - 1;
	modify_srq_case("limit", srq, &q, IBV_SRQ_LIMIT);
	q.max_wr = 5;
	modify_srq_case("max_wr<limit", srq, &q, IBV_SRQ_MAX_WR);
	q.max_wr = 0;
	modify_srq_case("max_wr0", srq, &q, IBV_SRQ_MAX_WR);
	q.srq_limit = 0;
	ibv_modify_srq(srq, &q, IBV_SRQ_LIMIT);
	q.max_wr = 100;
	modify_srq_case("max_wr100", srq, &q, IBV_SRQ_MAX_WR);
	ibv_query_srq(srq, &q);
	OUT("modify_srq.max_wr100.granted", "%u", q.max_wr);
	ibv_destroy_srq(srq);
}

static void create_qp_ex_case(struct ibv_qp_init_attr_ex *ax, const char *name)
{
	struct ibv_qp *qp;

	errno = 0;
	qp = ibv_create_qp_ex(d.ctx, ax);
	OUT(vd_key("create_qp_ex.%s", name), "%s", vd_err(qp ? 0 : errno));
	if (qp)
		ibv_destroy_qp(qp);
}

static void create_qp_cases(void)
{
	struct ibv_cq *cq = ibv_create_cq(d.ctx, 16, NULL, NULL, 0);
	struct ibv_device_attr a;
	static const struct {
		const char *name;
		enum ibv_qp_type t;
		struct ibv_qp_cap cap;
	} c[] = {
		{ "send_wr>max", IBV_QPT_RC, { 0x100001, 1, 1, 1, 0 } },
		{ "recv_wr>max", IBV_QPT_RC, { 1, 0x100001, 1, 1, 0 } },
		{ "send_sge33", IBV_QPT_UD, { 1, 1, 33, 1, 0 } },
		{ "recv_sge33", IBV_QPT_UC, { 1, 1, 1, 33, 0 } },
		{ "inline513", IBV_QPT_RC, { 1, 1, 1, 1, 513 } },
		{ "raw_packet", IBV_QPT_RAW_PACKET, { 1, 1, 1, 1, 0 } },
		{ "xrc_send", IBV_QPT_XRC_SEND, { 1, 1, 1, 1, 0 } },
		{ "xrc_recv", IBV_QPT_XRC_RECV, { 1, 1, 1, 1, 0 } },
		{ "driver", IBV_QPT_DRIVER, { 1, 1, 1, 1, 0 } },
		{ "type0", 0, { 1, 1, 1, 1, 0 } },
		{ "type99", 99, { 1, 1, 1, 1, 0 } },
	};
	struct ibv_qp_init_attr_ex ax;
	unsigned int i;
	struct ibv_qp *qp;

	ibv_query_device(d.ctx, &a);
	for (i = 0; i < VD_ARRAY_SIZE(c); i++) {
		struct ibv_qp_init_attr ia = { .send_cq = cq,
					       .recv_cq = cq,
					       .cap = c[i].cap,
					       .qp_type = c[i].t };
		char key[64];

		if (c[i].cap.max_send_wr == 0x100001)
			ia.cap.max_send_wr = a.max_qp_wr + 1;
		if (c[i].cap.max_recv_wr == 0x100001)
			ia.cap.max_recv_wr = a.max_qp_wr + 1;
		errno = 0;
		qp = ibv_create_qp(d.pd, &ia);
		snprintf(key, sizeof(key), "create_qp.%s", c[i].name);
		OUT(key, "%s", vd_err(qp ? 0 : errno));
		if (qp)
			ibv_destroy_qp(qp);
	}
	memset(&ax, 0, sizeof(ax));
	ax.send_cq = ax.recv_cq = cq;
	ax.cap = (struct ibv_qp_cap){ 1, 1, 1, 1, 0 };
	ax.qp_type = IBV_QPT_RC;
	ax.pd = d.pd;
	create_qp_ex_case(&ax, "no_pd_bit");
	ax.comp_mask = IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_CREATE_FLAGS;
	ax.create_flags = IBV_QP_CREATE_SCATTER_FCS;
	create_qp_ex_case(&ax, "scatter_fcs");
	ax.comp_mask = IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_MAX_TSO_HEADER;
	create_qp_ex_case(&ax, "tso");
	ax.comp_mask = IBV_QP_INIT_ATTR_PD;
	create_qp_ex_case(&ax, "pd");
	ibv_destroy_cq(cq);
}

/* ---- modify_qp and AHs ---- */

#define RTR_MASK                                                        \
	(IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | \
	 IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER)
#define RTS_MASK                                                               \
	(IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | \
	 IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC)
#define INIT_MASK \
	(IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS)

static struct ibv_qp_attr good(enum ibv_qp_state to, uint32_t dest)
{
	struct ibv_qp_attr a = {
		.qp_state = to,
		.port_num = 1,
		.path_mtu = IBV_MTU_1024,
		.dest_qp_num = dest,
		.rq_psn = 0x123,
		.sq_psn = 0x456,
		.max_dest_rd_atomic = 1,
		.min_rnr_timer = 12,
		.timeout = 14,
		.retry_cnt = 7,
		.rnr_retry = 7,
		.max_rd_atomic = 1,
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE,
	};

	vd_ah_attr(&d, &a.ah_attr);
	return a;
}

static int mask_of(enum ibv_qp_state to)
{
	return to == IBV_QPS_INIT ? INIT_MASK :
	       to == IBV_QPS_RTR  ? RTR_MASK :
				    RTS_MASK;
}

typedef void tweak_fn(struct ibv_qp_attr *a, int *mask);

#define TWEAK(name, body)                                  \
	static void name(struct ibv_qp_attr *a, int *mask) \
	{                                                  \
		(void)a;                                   \
		(void)mask;                                \
		body;                                      \
	}

TWEAK(port2, a->port_num = 2)
TWEAK(port0, a->port_num = 0)
TWEAK(pkey1, a->pkey_index = 1)
TWEAK(no_port, *mask &= ~IBV_QP_PORT)
TWEAK(extra_qkey, *mask |= IBV_QP_QKEY)
TWEAK(cur_reset, *mask |= IBV_QP_CUR_STATE; a->cur_qp_state = IBV_QPS_RESET)
TWEAK(state9, a->qp_state = 9)
TWEAK(cur9, *mask |= IBV_QP_CUR_STATE; a->cur_qp_state = 9)
TWEAK(rate_limit, *mask |= IBV_QP_RATE_LIMIT)
TWEAK(bit30, *mask |= 1 << 30)
TWEAK(mtu6, a->path_mtu = 6)
TWEAK(mtu0, a->path_mtu = 0)
TWEAK(drd129, a->max_dest_rd_atomic = 129)
TWEAK(rnr32, a->min_rnr_timer = 32)
TWEAK(av_port2, a->ah_attr.port_num = 2)
TWEAK(av_port0, a->ah_attr.port_num = 0)
TWEAK(av_no_grh, a->ah_attr.is_global = 0)
TWEAK(av_sgid_past, a->ah_attr.grh.sgid_index = 255)
TWEAK(av_sgid_empty, a->ah_attr.grh.sgid_index = 2)
TWEAK(av_zero_dgid, memset(&a->ah_attr.grh.dgid, 0, 16))
TWEAK(av_family, ibv_query_gid(d.ctx, VD_PORT, 0, &a->ah_attr.grh.dgid))
TWEAK(av_unknown, a->ah_attr.grh.dgid.raw[12] ^= 0x55)
TWEAK(av_mcast, a->ah_attr.grh.dgid.raw[0] = 0xff)
TWEAK(alt_path, *mask |= IBV_QP_ALT_PATH; a->alt_port_num = 1;
      a->alt_ah_attr = a->ah_attr)
TWEAK(timeout32, a->timeout = 32)
TWEAK(rd129, a->max_rd_atomic = 129)
TWEAK(retry8, a->retry_cnt = 8)
TWEAK(psn_big, a->sq_psn = 0x1234567)

/* What a QP reports after a modify that worked. */
static void print_query(const char *name, struct ibv_qp *qp)
{
	struct ibv_qp_init_attr qi;
	struct ibv_qp_attr q;

	memset(&q, 0, sizeof(q));
	ibv_query_qp(qp, &q, (IBV_QP_DEST_QPN << 1) - 1, &qi);
	OUT(vd_key("query_qp.%s", name),
	    "mtu %u psn %x/%x rd %u/%u rnr %u timeout %u retry %u/%u access %x "
	    "pkey %u port %u grh %u sgid %u hop %u draining %u",
	    q.path_mtu, q.sq_psn, q.rq_psn, q.max_rd_atomic,
	    q.max_dest_rd_atomic, q.min_rnr_timer, q.timeout, q.retry_cnt,
	    q.rnr_retry, q.qp_access_flags, q.pkey_index, q.port_num,
	    q.ah_attr.is_global, q.ah_attr.grh.sgid_index,
	    q.ah_attr.grh.hop_limit, q.sq_draining);
}

/* A QP brought to @from with good attributes, then moved to @to with
 * @t's change: the errno and the state it is in. */
static void modify_case(const char *name, struct ibv_cq *cq,
			enum ibv_qp_state from, enum ibv_qp_state to,
			tweak_fn *t)
{
	struct ibv_qp_init_attr ia = { .send_cq = cq,
				       .recv_cq = cq,
				       .cap = { 4, 4, 1, 1, 0 },
				       .qp_type = IBV_QPT_RC },
				qi;
	struct ibv_qp *qp = ibv_create_qp(d.pd, &ia);
	struct ibv_qp_attr a, q;
	enum ibv_qp_state st;
	int mask, ret;

	if (!qp) {
		OUT(vd_key("modify_qp.%s", name), "create_qp %s",
		    vd_err(errno));
		return;
	}
	for (st = IBV_QPS_INIT; st <= from; st++) {
		a = good(st, qp->qp_num);
		ibv_modify_qp(qp, &a, mask_of(st));
	}
	a = good(to, qp->qp_num);
	mask = mask_of(to);
	if (t)
		t(&a, &mask);
	ret = ibv_modify_qp(qp, &a, mask);
	memset(&q, 0, sizeof(q));
	ibv_query_qp(qp, &q, IBV_QP_STATE, &qi);
	OUT(vd_key("modify_qp.%s", name), "%s state %u", vd_err(ret),
	    q.qp_state);
	if (!ret)
		print_query(name, qp);
	if (!ret && !t && to == IBV_QPS_RTS) {
		OUT("query_qp.mask_all", "%s",
		    vd_err(ibv_query_qp(qp, &q, ~0, &qi)));
		OUT("query_qp.mask_rate_limit", "%s",
		    vd_err(ibv_query_qp(qp, &q, IBV_QP_RATE_LIMIT, &qi)));
		OUT("query_qp.mask_below_rate_limit", "%s",
		    vd_err(ibv_query_qp(qp, &q, IBV_QP_RATE_LIMIT - 1, &qi)));
	}
	ibv_destroy_qp(qp);
}

static void modify_cases(void)
{
	static const struct {
		const char *name;
		enum ibv_qp_state from, to;
		tweak_fn *t;
	} c[] = {
		{ "port2", IBV_QPS_RESET, IBV_QPS_INIT, port2 },
		{ "port0", IBV_QPS_RESET, IBV_QPS_INIT, port0 },
		{ "pkey_index1", IBV_QPS_RESET, IBV_QPS_INIT, pkey1 },
		{ "init_no_port", IBV_QPS_RESET, IBV_QPS_INIT, no_port },
		{ "rc_init_qkey", IBV_QPS_RESET, IBV_QPS_INIT, extra_qkey },
		{ "cur_state_reset", IBV_QPS_RESET, IBV_QPS_INIT, cur_reset },
		{ "qp_state9", IBV_QPS_RESET, IBV_QPS_INIT, state9 },
		{ "cur_qp_state9", IBV_QPS_RTR, IBV_QPS_RTS, cur9 },
		{ "rate_limit", IBV_QPS_RESET, IBV_QPS_INIT, rate_limit },
		{ "mask_bit30", IBV_QPS_RESET, IBV_QPS_INIT, bit30 },
		{ "reset_to_rtr", IBV_QPS_RESET, IBV_QPS_RTR, NULL },
		{ "init_to_rts", IBV_QPS_INIT, IBV_QPS_RTS, NULL },
		{ "path_mtu6", IBV_QPS_INIT, IBV_QPS_RTR, mtu6 },
		{ "path_mtu0", IBV_QPS_INIT, IBV_QPS_RTR, mtu0 },
		{ "max_dest_rd_atomic129", IBV_QPS_INIT, IBV_QPS_RTR, drd129 },
		{ "min_rnr_timer32", IBV_QPS_INIT, IBV_QPS_RTR, rnr32 },
		{ "av_port2", IBV_QPS_INIT, IBV_QPS_RTR, av_port2 },
		{ "av_no_grh", IBV_QPS_INIT, IBV_QPS_RTR, av_no_grh },
		{ "av_sgid_past", IBV_QPS_INIT, IBV_QPS_RTR, av_sgid_past },
		{ "av_sgid_empty", IBV_QPS_INIT, IBV_QPS_RTR, av_sgid_empty },
		{ "av_zero_dgid", IBV_QPS_INIT, IBV_QPS_RTR, av_zero_dgid },
		{ "av_family", IBV_QPS_INIT, IBV_QPS_RTR, av_family },
		{ "av_unknown", IBV_QPS_INIT, IBV_QPS_RTR, av_unknown },
		{ "av_multicast", IBV_QPS_INIT, IBV_QPS_RTR, av_mcast },
		{ "alt_path", IBV_QPS_INIT, IBV_QPS_RTR, alt_path },
		{ "timeout32", IBV_QPS_RTR, IBV_QPS_RTS, timeout32 },
		{ "max_rd_atomic129", IBV_QPS_RTR, IBV_QPS_RTS, rd129 },
		{ "retry_cnt8", IBV_QPS_RTR, IBV_QPS_RTS, retry8 },
		{ "sq_psn_25bit", IBV_QPS_RTR, IBV_QPS_RTS, psn_big },
		{ "rts_ok", IBV_QPS_RTR, IBV_QPS_RTS, NULL },
	};
	struct ibv_cq *cq = ibv_create_cq(d.ctx, 16, NULL, NULL, 0);
	unsigned int i;

	for (i = 0; i < VD_ARRAY_SIZE(c); i++)
		modify_case(c[i].name, cq, c[i].from, c[i].to, c[i].t);
	ibv_destroy_cq(cq);
}

static void ah_cases(void)
{
	static const struct {
		const char *name;
		tweak_fn *t;
	} c[] = {
		{ "ok", NULL },
		{ "port2", av_port2 },
		{ "port0", av_port0 },
		{ "no_grh", av_no_grh },
		{ "sgid_past", av_sgid_past },
		{ "sgid_empty", av_sgid_empty },
		{ "zero_dgid", av_zero_dgid },
		{ "family", av_family },
		{ "unknown", av_unknown },
		{ "multicast", av_mcast },
	};
	unsigned int i;

	for (i = 0; i < VD_ARRAY_SIZE(c); i++) {
		struct ibv_qp_attr a = good(IBV_QPS_RTR, 0);
		struct ibv_ah *ah;
		char key[64];
		int mask = 0;

		if (c[i].t)
			c[i].t(&a, &mask);
		errno = 0;
		ah = ibv_create_ah(d.pd, &a.ah_attr);
		snprintf(key, sizeof(key), "create_ah.%s", c[i].name);
		OUT(key, "%s", vd_err(ah ? 0 : errno));
		if (ah) {
			snprintf(key, sizeof(key), "create_ah.%s.pd_busy",
				 c[i].name);
			OUT(key, "%s", vd_err(ibv_dealloc_pd(d.pd)));
			ibv_destroy_ah(ah);
		}
	}
}

static void busy_cases(void)
{
	struct ibv_cq *cq = ibv_create_cq(d.ctx, 4, NULL, NULL, 0);
	struct ibv_srq_init_attr sa = { .attr = { 4, 1, 0 } };
	struct ibv_srq *srq = ibv_create_srq(d.pd, &sa);
	struct ibv_qp_init_attr ia = { .send_cq = cq,
				       .recv_cq = cq,
				       .srq = srq,
				       .cap = { 4, 4, 1, 1, 0 },
				       .qp_type = IBV_QPT_RC };
	struct ibv_qp *qp = ibv_create_qp(d.pd, &ia);
	struct ibv_mr *mr = ibv_reg_mr(d.pd, buf, 4096, LW);

	OUT("busy.destroy_cq", "%s", vd_err(ibv_destroy_cq(cq)));
	OUT("busy.destroy_srq", "%s", vd_err(ibv_destroy_srq(srq)));
	OUT("busy.dealloc_pd_qp", "%s", vd_err(ibv_dealloc_pd(d.pd)));
	ibv_destroy_qp(qp);
	OUT("busy.dealloc_pd_srq", "%s", vd_err(ibv_dealloc_pd(d.pd)));
	ibv_destroy_srq(srq);
	OUT("busy.dealloc_pd_mr", "%s", vd_err(ibv_dealloc_pd(d.pd)));
	OUT("busy.dereg_mr", "%s", vd_err(ibv_dereg_mr(mr)));
	OUT("busy.destroy_cq_free", "%s", vd_err(ibv_destroy_cq(cq)));
}

int main(int argc, char **argv)
{
	if (posix_memalign(&buf, 4096, 65536) ||
	    vd_open(&d, argc > 1 ? argv[1] : NULL)) {
		fprintf(stderr, "vdiff_bad: cannot open %s\n",
			argc > 1 ? argv[1] : "a device");
		return 1;
	}
	mr_cases();
	cq_cases();
	srq_cases();
	create_qp_cases();
	modify_cases();
	ah_cases();
	busy_cases();
	OUT("dealloc_pd", "%s", vd_err(ibv_dealloc_pd(d.pd)));
	OUT("close_device", "%s", vd_err(ibv_close_device(d.ctx)));
	return 0;
}
