/* SPDX-License-Identifier: MIT */
/*
 * How the test programs connect their QPs: RC from RESET through INIT and
 * RTR to RTS with the attributes a test picks (PSNs, ACK timeout, RDMA
 * read depth, access), and UD from RESET to RTS.  A test that reaches
 * ibv_modify_qp by another entry point (tests/shim/abi_1_0.c, the
 * libibverbs 1.0 ABI) passes its own modify function.
 */
#ifndef IBSNAP_TESTS_QP_CONNECT_H
#define IBSNAP_TESTS_QP_CONNECT_H

#include <stdint.h>
#include <string.h>
#include <infiniband/verbs.h>

struct tq_rc {
	struct ibv_ah_attr av; /* the peer, with its port_num */
	uint32_t dest_qpn;
	uint32_t rq_psn, sq_psn;
	unsigned int access; /* qp_access_flags */
	uint8_t port;
	uint8_t timeout; /* local ACK timeout exponent */
	uint8_t rd_atomic; /* max_rd_atomic and max_dest_rd_atomic */
	uint8_t min_rnr_timer;
};

typedef int (*tq_modify_fn)(void *qp, struct ibv_qp_attr *a, int mask);

static inline int tq_ibv_modify(void *qp, struct ibv_qp_attr *a, int mask)
{
	return ibv_modify_qp(qp, a, mask);
}

/* RESET -> INIT -> RTR -> RTS through @modify; 0 or its failure. */
static inline int tq_rc_connect_by(tq_modify_fn modify, void *qp,
				   const struct tq_rc *p)
{
	struct ibv_qp_attr a;

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_INIT;
	a.port_num = p->port;
	a.qp_access_flags = p->access;
	if (modify(qp, &a,
		   IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
			   IBV_QP_ACCESS_FLAGS))
		return -1;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBV_MTU_1024;
	a.dest_qp_num = p->dest_qpn;
	a.rq_psn = p->rq_psn;
	a.max_dest_rd_atomic = p->rd_atomic;
	a.min_rnr_timer = p->min_rnr_timer;
	a.ah_attr = p->av;
	if (modify(qp, &a,
		   IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
			   IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
			   IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER))
		return -1;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.timeout = p->timeout;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.sq_psn = p->sq_psn;
	a.max_rd_atomic = p->rd_atomic;
	return modify(qp, &a,
		      IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
			      IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN |
			      IBV_QP_MAX_QP_RD_ATOMIC);
}

static inline int tq_rc_connect(struct ibv_qp *qp, const struct tq_rc *p)
{
	return tq_rc_connect_by(tq_ibv_modify, qp, p);
}

/* A UD QP from RESET to RTS with @qkey; 0 or ibv_modify_qp's failure. */
static inline int tq_ud_ready(struct ibv_qp *qp, uint8_t port, uint32_t qkey,
			      uint32_t sq_psn)
{
	struct ibv_qp_attr a;

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_INIT;
	a.port_num = port;
	a.qkey = qkey;
	if (ibv_modify_qp(qp, &a,
			  IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
				  IBV_QP_QKEY))
		return -1;
	a.qp_state = IBV_QPS_RTR;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE))
		return -1;
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = sq_psn;
	return ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN);
}

#endif
