/* SPDX-License-Identifier: MIT */
/*
 * Data-path helpers of the probes vdiff_dp and vdiff_err: a pair of
 * connected QPs on one device (loopback), posting, and printing every
 * completion, QP state and async event in the transcript's terms.
 */
#ifndef IBSNAP_VDIFF_QP_H
#define IBSNAP_VDIFF_QP_H

#include <fcntl.h>
#include <unistd.h>

#include "vdiff.h"

#define MEM 65536
#define QKEY 0x11111111u
#define ALL_ACCESS                                          \
	(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
	 IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC)

static struct vd_dev d;
static uint8_t *mem; /* [0, MEM): a's, [MEM, 2 MEM): b's */
static struct ibv_mr *mr, *mr_ro; /* full access; local write only */

struct end {
	struct ibv_cq *cq;
	struct ibv_qp *qp;
};

struct pair {
	struct end a, b;
	enum ibv_qp_type t;
};

/* Connected-QP knobs a case may change before connecting. */
struct knobs {
	uint8_t rnr_retry, retry_cnt, timeout, min_rnr_timer;
	int cqe;
	struct ibv_srq *srq;
};

static const struct knobs std_knobs = { 7, 7, 14, 1, 64, NULL };

static inline const char *op_name(enum ibv_wc_opcode op)
{
	static const char *const names[] = {
		[IBV_WC_SEND] = "SEND",
		[IBV_WC_RDMA_WRITE] = "RDMA_WRITE",
		[IBV_WC_RDMA_READ] = "RDMA_READ",
		[IBV_WC_COMP_SWAP] = "COMP_SWAP",
		[IBV_WC_FETCH_ADD] = "FETCH_ADD",
		[IBV_WC_RECV] = "RECV",
		[IBV_WC_RECV_RDMA_WITH_IMM] = "RECV_RDMA_WITH_IMM",
	};

	return (size_t)op < VD_ARRAY_SIZE(names) && names[op] ? names[op] :
								"other";
}

static inline int connect_one(struct ibv_qp *qp, uint32_t dest,
			      const struct knobs *k)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT,
				 .port_num = VD_PORT };
	int mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT;

	if (qp->qp_type == IBV_QPT_UD) {
		a.qkey = QKEY;
		mask |= IBV_QP_QKEY;
	} else {
		a.qp_access_flags = qp->qp_type == IBV_QPT_RC ?
					    ALL_ACCESS :
					    IBV_ACCESS_REMOTE_WRITE;
		mask |= IBV_QP_ACCESS_FLAGS;
	}
	if (ibv_modify_qp(qp, &a, mask))
		return -1;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	mask = IBV_QP_STATE;
	if (qp->qp_type != IBV_QPT_UD) {
		a.path_mtu = IBV_MTU_1024;
		a.dest_qp_num = dest;
		a.rq_psn = 0x100;
		vd_ah_attr(&d, &a.ah_attr);
		mask |= IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
			IBV_QP_RQ_PSN;
		if (qp->qp_type == IBV_QPT_RC) {
			a.max_dest_rd_atomic = 4;
			a.min_rnr_timer = k->min_rnr_timer;
			mask |= IBV_QP_MAX_DEST_RD_ATOMIC |
				IBV_QP_MIN_RNR_TIMER;
		}
	}
	if (ibv_modify_qp(qp, &a, mask))
		return -1;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = 0x100;
	mask = IBV_QP_STATE | IBV_QP_SQ_PSN;
	if (qp->qp_type == IBV_QPT_RC) {
		a.timeout = k->timeout;
		a.retry_cnt = k->retry_cnt;
		a.rnr_retry = k->rnr_retry;
		a.max_rd_atomic = 4;
		mask |= IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
			IBV_QP_MAX_QP_RD_ATOMIC;
	}
	return ibv_modify_qp(qp, &a, mask);
}

static inline int end_make(struct end *e, enum ibv_qp_type t,
			   const struct knobs *k)
{
	struct ibv_qp_init_attr ia = { .qp_type = t,
				       .srq = k->srq,
				       .cap = { 16, 16, 4, 4, 64 } };

	e->cq = ibv_create_cq(d.ctx, k->cqe, NULL, NULL, 0);
	ia.send_cq = ia.recv_cq = e->cq;
	e->qp = e->cq ? ibv_create_qp(d.pd, &ia) : NULL;
	return e->qp ? 0 : -1;
}

static inline void end_free(struct end *e)
{
	if (e->qp)
		ibv_destroy_qp(e->qp);
	if (e->cq)
		ibv_destroy_cq(e->cq);
}

static inline int pair_make(struct pair *p, enum ibv_qp_type t,
			    const struct knobs *k)
{
	memset(p, 0, sizeof(*p));
	p->t = t;
	if (end_make(&p->a, t, k) || end_make(&p->b, t, k) ||
	    connect_one(p->a.qp, p->b.qp->qp_num, k) ||
	    connect_one(p->b.qp, p->a.qp->qp_num, k)) {
		printf("setup failed: %s\n", vd_err(errno));
		return -1;
	}
	return 0;
}

static inline void pair_free(struct pair *p)
{
	end_free(&p->a);
	end_free(&p->b);
}

/* Print every completion of @e until @n came or @wait s passed. */
static inline void drain(const char *key, const struct pair *p,
			 const struct end *e, int n, double wait)
{
	const struct end *other = e == &p->a ? &p->b : &p->a;
	double end = vd_now() + wait;
	struct ibv_wc wc;
	int got = 0, r;

	printf("%s:", key);
	while (got < n && vd_now() < end) {
		r = ibv_poll_cq(e->cq, 1, &wc);
		if (r < 0) {
			printf(" poll_cq=%d", r);
			break;
		}
		if (!r) {
			usleep(100);
			continue;
		}
		got++;
		printf(" [%llu %s", (unsigned long long)wc.wr_id,
		       ibv_wc_status_str(wc.status));
		if (wc.status == IBV_WC_SUCCESS) {
			printf(" %s len %u", op_name(wc.opcode), wc.byte_len);
			if (wc.wc_flags & IBV_WC_WITH_IMM)
				printf(" imm 0x%x", be32toh(wc.imm_data));
			if (wc.wc_flags & IBV_WC_GRH)
				printf(" grh");
			if (wc.opcode & IBV_WC_RECV)
				printf(" src_qp %s",
				       wc.src_qp == other->qp->qp_num ? "peer" :
				       wc.src_qp == 0		      ? "0" :
									"other");
		}
		printf(" qp %s]", wc.qp_num == e->qp->qp_num ? "own" : "other");
	}
	if (got < n)
		printf(" (%d missing)", n - got);
	printf("\n");
	fflush(stdout);
}

static inline void state(const char *key, struct ibv_qp *qp)
{
	struct ibv_qp_attr a;
	struct ibv_qp_init_attr ia;

	memset(&a, 0, sizeof(a));
	ibv_query_qp(qp, &a, IBV_QP_STATE, &ia);
	vd_out(key, "state %u", a.qp_state);
}

/* Async events waiting on the context, in order. */
static inline void events(const char *key)
{
	struct ibv_async_event ev;

	usleep(100000); /* events may trail the completions */
	printf("%s:", key);
	while (!ibv_get_async_event(d.ctx, &ev)) {
		printf(" %s", ibv_event_type_str(ev.event_type));
		ibv_ack_async_event(&ev);
	}
	printf("\n");
	fflush(stdout);
}

static inline struct ibv_sge sge(uint8_t *p, uint32_t len, uint32_t lkey)
{
	return (struct ibv_sge){ (uintptr_t)p, len, lkey };
}

static inline int post_recv(struct ibv_qp *qp, uint64_t id, uint8_t *p,
			    uint32_t len)
{
	struct ibv_sge s = sge(p, len, mr->lkey);
	struct ibv_recv_wr w = { .wr_id = id, .sg_list = &s, .num_sge = 1 },
			   *bad;

	return ibv_post_recv(qp, &w, &bad);
}

static inline int post(struct ibv_qp *qp, uint64_t id, enum ibv_wr_opcode op,
		       struct ibv_sge *s, int nsge, uint8_t *remote,
		       uint32_t rkey, unsigned int flags)
{
	struct ibv_send_wr w = { .wr_id = id,
				 .sg_list = s,
				 .num_sge = nsge,
				 .opcode = op,
				 .send_flags = flags },
			   *bad;

	w.imm_data = htobe32(0xabc0 + (uint32_t)id);
	if (op == IBV_WR_ATOMIC_CMP_AND_SWP ||
	    op == IBV_WR_ATOMIC_FETCH_AND_ADD) {
		w.wr.atomic.remote_addr = (uintptr_t)remote;
		w.wr.atomic.rkey = rkey;
		w.wr.atomic.compare_add = 5;
		w.wr.atomic.swap = 9;
	} else {
		w.wr.rdma.remote_addr = (uintptr_t)remote;
		w.wr.rdma.rkey = rkey;
	}
	return ibv_post_send(qp, &w, &bad);
}

static inline void fill(uint8_t *p, size_t n, uint8_t seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

#define A (mem)
#define B (mem + MEM)
#define W 10.0 /* s to wait for a completion that must come */
#define S IBV_SEND_SIGNALED

static inline void data(const char *key, const uint8_t *got,
			const uint8_t *want, size_t n)
{
	vd_out(key, "%s", memcmp(got, want, n) ? "differs" : "same");
}

/* Open the device, register the memory: 0, or 1 for main() to return. */
static inline int vd_qp_init(int argc, char **argv, const char *prog)
{
	if (vd_open(&d, argc > 1 ? argv[1] : NULL) ||
	    posix_memalign((void **)&mem, 4096, 2 * MEM)) {
		fprintf(stderr, "%s: cannot open %s\n", prog,
			argc > 1 ? argv[1] : "a device");
		return 1;
	}
	fcntl(d.ctx->async_fd, F_SETFL,
	      fcntl(d.ctx->async_fd, F_GETFL) | O_NONBLOCK);
	memset(mem, 0, 2 * MEM);
	mr = ibv_reg_mr(d.pd, mem, 2 * MEM, ALL_ACCESS);
	mr_ro = ibv_reg_mr(d.pd, mem, 2 * MEM, 0);
	return mr && mr_ro ? 0 : 1;
}

static inline int vd_qp_fini(const char *events_key)
{
	events(events_key);
	ibv_dereg_mr(mr_ro);
	ibv_dereg_mr(mr);
	ibv_dealloc_pd(d.pd);
	ibv_close_device(d.ctx);
	return 0;
}

#endif /* IBSNAP_VDIFF_QP_H */
