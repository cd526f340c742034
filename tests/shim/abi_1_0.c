/* SPDX-License-Identifier: MIT */
/*
 * A program bound to libibverbs' IBVERBS_1.0 ABI (2005's structs), as an old
 * binary is: device list, context, PD, MR, CQ and QPs through the 1.0
 * entry points, and the data path through the 1.0 context's ops, as the
 * old verbs.h inlines did.  Under the shim it must see the shim's devices
 * (rdma-core's compat layer wraps the virtual objects) and move data.
 *   abi_1_0
 */
#include <stdio.h>

#include "shimtest.h"

/* rdma-core's 1.0 layouts (libibverbs/compat-1_0.c), as far as used */
struct dev_1_0 {
	void *sysfs_dev, *sysfs_ibdev;
	struct ibv_device *real_device;
};

struct cq_1_0;
struct qp_1_0;

/* 1.0 WRs put next before wr_id */
struct send_wr_1_0 {
	struct send_wr_1_0 *next;
	uint64_t wr_id;
	struct ibv_sge *sg_list;
	int num_sge;
	enum ibv_wr_opcode opcode;
	int send_flags;
	uint32_t imm_data;
	union {
		struct {
			uint64_t remote_addr;
			uint32_t rkey;
		} rdma;
		struct {
			uint64_t remote_addr, compare_add, swap;
			uint32_t rkey;
		} atomic;
	} wr;
};

struct recv_wr_1_0 {
	struct recv_wr_1_0 *next;
	uint64_t wr_id;
	struct ibv_sge *sg_list;
	int num_sge;
};

struct ctx_1_0 {
	struct dev_1_0 *device;
	struct {
		void *query_device, *query_port, *alloc_pd, *dealloc_pd;
		void *reg_mr, *dereg_mr, *create_cq;
		int (*poll_cq)(struct cq_1_0 *cq, int n, struct ibv_wc *wc);
		void *req_notify_cq, *cq_event, *resize_cq, *destroy_cq;
		void *create_srq, *modify_srq, *query_srq, *destroy_srq;
		void *post_srq_recv, *create_qp, *query_qp, *modify_qp;
		void *destroy_qp;
		int (*post_send)(struct qp_1_0 *qp, struct send_wr_1_0 *wr,
				 struct send_wr_1_0 **bad);
		int (*post_recv)(struct qp_1_0 *qp, struct recv_wr_1_0 *wr,
				 struct recv_wr_1_0 **bad);
		void *create_ah, *destroy_ah, *attach_mcast, *detach_mcast;
	} ops;
	int cmd_fd, async_fd, num_comp_vectors;
	struct ibv_context *real_context;
};

struct pd_1_0 {
	struct ctx_1_0 *context;
	uint32_t handle;
	struct ibv_pd *real_pd;
};

struct mr_1_0 {
	struct ctx_1_0 *context;
	struct pd_1_0 *pd;
	uint32_t handle, lkey, rkey;
	struct ibv_mr *real_mr;
};

struct cq_1_0 {
	struct ctx_1_0 *context;
};

struct qp_1_0 {
	struct ctx_1_0 *context;
	void *qp_context;
	struct pd_1_0 *pd;
	struct cq_1_0 *send_cq, *recv_cq;
	void *srq;
	uint32_t handle, qp_num;
	enum ibv_qp_state state;
	enum ibv_qp_type qp_type;
};

struct qp_init_1_0 {
	void *qp_context;
	struct cq_1_0 *send_cq, *recv_cq;
	void *srq;
	struct ibv_qp_cap cap;
	enum ibv_qp_type qp_type;
	int sq_sig_all;
};

#define V10(ret, name, args) \
	ret name##_1_0 args; \
	__asm__(".symver " #name "_1_0, " #name "@IBVERBS_1.0")

V10(struct dev_1_0 **, ibv_get_device_list, (int *n));
V10(void, ibv_free_device_list, (struct dev_1_0 * *l));
V10(const char *, ibv_get_device_name, (struct dev_1_0 * d));
V10(struct ctx_1_0 *, ibv_open_device, (struct dev_1_0 * d));
V10(int, ibv_close_device, (struct ctx_1_0 * c));
V10(int, ibv_query_port, (struct ctx_1_0 * c, uint8_t p, void *attr));
V10(int, ibv_query_gid, (struct ctx_1_0 * c, uint8_t p, int i, void *gid));
V10(struct pd_1_0 *, ibv_alloc_pd, (struct ctx_1_0 * c));
V10(int, ibv_dealloc_pd, (struct pd_1_0 * pd));
V10(struct mr_1_0 *, ibv_reg_mr,
    (struct pd_1_0 * pd, void *addr, size_t len, int access));
V10(int, ibv_dereg_mr, (struct mr_1_0 * mr));
V10(struct cq_1_0 *, ibv_create_cq,
    (struct ctx_1_0 * c, int cqe, void *cq_ctx, void *ch, int vec));
V10(int, ibv_destroy_cq, (struct cq_1_0 * cq));
V10(struct qp_1_0 *, ibv_create_qp,
    (struct pd_1_0 * pd, struct qp_init_1_0 *attr));
V10(int, ibv_modify_qp, (struct qp_1_0 * qp, struct ibv_qp_attr *a, int m));
V10(int, ibv_destroy_qp, (struct qp_1_0 * qp));

static int modify_1_0(void *qp, struct ibv_qp_attr *a, int mask)
{
	return ibv_modify_qp_1_0(qp, a, mask);
}

static int connect(struct qp_1_0 *qp, uint32_t dqpn, uint16_t lid,
		   const union ibv_gid *gid, bool global)
{
	struct tq_rc p = { .dest_qpn = dqpn,
			   .access = ST_ACCESS,
			   .port = 1,
			   .timeout = 14,
			   .rd_atomic = 1,
			   .min_rnr_timer = 1 };

	p.av.dlid = lid;
	p.av.port_num = 1;
	if (global) {
		p.av.is_global = 1;
		p.av.grh.dgid = *gid;
		p.av.grh.hop_limit = 1;
	}
	return tq_rc_connect_by(modify_1_0, qp, &p);
}

static int poll1(struct ctx_1_0 *c, struct cq_1_0 *cq, struct ibv_wc *wc)
{
	double end = st_now() + 10;
	int n;

	do
		n = c->ops.poll_cq(cq, 1, wc);
	while (!n && st_now() < end);
	return n == 1 && wc->status == IBV_WC_SUCCESS ? 0 : -1;
}

int main(void)
{
	struct qp_init_1_0 ia = { .cap = { 16, 16, 1, 1, 0 },
				  .qp_type = IBV_QPT_RC };
	struct ibv_port_attr port;
	struct send_wr_1_0 swr, *sbad;
	struct recv_wr_1_0 rwr, *rbad;
	struct ibv_sge ss, rs;
	union ibv_gid gid;
	struct dev_1_0 **list;
	struct ctx_1_0 *c;
	struct pd_1_0 *pd;
	struct mr_1_0 *mr;
	struct cq_1_0 *cq;
	struct qp_1_0 *a, *b;
	struct ibv_wc wc;
	char buf[2][32] = { "hello from 2005" };
	int n;

	list = ibv_get_device_list_1_0(&n);
	if (!list || n < 1)
		return 1;
	printf("abi_1_0: %d device(s), first %s\n", n,
	       ibv_get_device_name_1_0(list[0]));
	c = ibv_open_device_1_0(list[0]);
	if (!c || ibv_query_port_1_0(c, 1, &port) ||
	    ibv_query_gid_1_0(c, 1, 0, &gid))
		return 2;
	pd = ibv_alloc_pd_1_0(c);
	mr = pd ? ibv_reg_mr_1_0(pd, buf, sizeof(buf), ST_ACCESS) : NULL;
	cq = ibv_create_cq_1_0(c, 16, NULL, NULL, 0);
	ia.send_cq = ia.recv_cq = cq;
	a = cq && pd ? ibv_create_qp_1_0(pd, &ia) : NULL;
	b = cq && pd ? ibv_create_qp_1_0(pd, &ia) : NULL;
	if (!mr || !a || !b ||
	    connect(a, b->qp_num, port.lid, &gid,
		    port.link_layer == IBV_LINK_LAYER_ETHERNET) ||
	    connect(b, a->qp_num, port.lid, &gid,
		    port.link_layer == IBV_LINK_LAYER_ETHERNET))
		return 3;
	rs = (struct ibv_sge){ (uintptr_t)buf[1], 32, mr->lkey };
	rwr = (struct recv_wr_1_0){ .wr_id = 2, .sg_list = &rs, .num_sge = 1 };
	ss = (struct ibv_sge){ (uintptr_t)buf[0], 32, mr->lkey };
	swr = (struct send_wr_1_0){ .wr_id = 1,
				    .sg_list = &ss,
				    .num_sge = 1,
				    .opcode = IBV_WR_SEND,
				    .send_flags = IBV_SEND_SIGNALED };
	if (c->ops.post_recv(b, &rwr, &rbad) ||
	    c->ops.post_send(a, &swr, &sbad) || poll1(c, cq, &wc) ||
	    poll1(c, cq, &wc) || strcmp(buf[1], buf[0]))
		return 4;
	if (ibv_destroy_qp_1_0(a) || ibv_destroy_qp_1_0(b) ||
	    ibv_destroy_cq_1_0(cq) || ibv_dereg_mr_1_0(mr) ||
	    ibv_dealloc_pd_1_0(pd) || ibv_close_device_1_0(c))
		return 5;
	ibv_free_device_list_1_0(list);
	printf("abi_1_0: SEND through the 1.0 ABI: '%s'\n", buf[1]);
	return 0;
}
