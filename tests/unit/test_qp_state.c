/* SPDX-License-Identifier: MIT */
/*
 * The fake HCA's QP state machine, transition by transition, for RC, UC and
 * UD: each legal transition succeeds with exactly its required attributes
 * and with all its optional ones; leaving out any required attribute or
 * adding any attribute the transition does not allow fails with EINVAL;
 * every other (from, to) pair fails with EINVAL.  query_qp reflects what was
 * set.  Runs on RoCE (alternate paths refused, as rxe) and on InfiniBand.
 */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <ibsnap/hca_ops.h>
#include "fake.h"
#include "unit/ut_fake.h"

#define S IBV_QP_STATE
#define CUR IBV_QP_CUR_STATE
#define SQDN IBV_QP_EN_SQD_ASYNC_NOTIFY
#define ACC IBV_QP_ACCESS_FLAGS
#define PKEY IBV_QP_PKEY_INDEX
#define PORT IBV_QP_PORT
#define QKEY IBV_QP_QKEY
#define AV IBV_QP_AV
#define MTU IBV_QP_PATH_MTU
#define TMO IBV_QP_TIMEOUT
#define RETRY IBV_QP_RETRY_CNT
#define RNR IBV_QP_RNR_RETRY
#define RQPSN IBV_QP_RQ_PSN
#define RD IBV_QP_MAX_QP_RD_ATOMIC
#define ALT IBV_QP_ALT_PATH
#define MINRNR IBV_QP_MIN_RNR_TIMER
#define SQPSN IBV_QP_SQ_PSN
#define DRD IBV_QP_MAX_DEST_RD_ATOMIC
#define MIG IBV_QP_PATH_MIG_STATE
#define DQPN IBV_QP_DEST_QPN
#define ALL_BITS ((IBV_QP_DEST_QPN << 1) - 1)

enum { RC, UC, UD, NTYPES };
static const enum ibv_qp_type qpt[NTYPES] = { IBV_QPT_RC, IBV_QPT_UC,
					      IBV_QPT_UD };

/* The legal transitions besides X -> RESET and X -> ERR (IB spec 11.2.4). */
struct trans {
	enum ibv_qp_state from, to;
	int req[NTYPES], opt[NTYPES];
};

static const struct trans legal[] = {
	{ IBV_QPS_RESET,
	  IBV_QPS_INIT,
	  { PKEY | PORT | ACC, PKEY | PORT | ACC, PKEY | PORT | QKEY },
	  { 0, 0, 0 } },
	{ IBV_QPS_INIT,
	  IBV_QPS_INIT,
	  { 0, 0, 0 },
	  { PKEY | PORT | ACC, PKEY | PORT | ACC, PKEY | PORT | QKEY } },
	{ IBV_QPS_INIT,
	  IBV_QPS_RTR,
	  { AV | MTU | DQPN | RQPSN | DRD | MINRNR, AV | MTU | DQPN | RQPSN,
	    0 },
	  { ALT | ACC | PKEY, ALT | ACC | PKEY, PKEY | QKEY } },
	{ IBV_QPS_RTR,
	  IBV_QPS_RTS,
	  { TMO | RETRY | RNR | SQPSN | RD, SQPSN, SQPSN },
	  { CUR | ALT | ACC | MINRNR | MIG, CUR | ALT | ACC | MIG,
	    CUR | QKEY } },
	{ IBV_QPS_RTS,
	  IBV_QPS_RTS,
	  { 0, 0, 0 },
	  { CUR | ACC | ALT | MIG | MINRNR, CUR | ACC | ALT | MIG,
	    CUR | QKEY } },
	{ IBV_QPS_RTS, IBV_QPS_SQD, { 0, 0, 0 }, { SQDN, SQDN, SQDN } },
	{ IBV_QPS_SQD,
	  IBV_QPS_RTS,
	  { 0, 0, 0 },
	  { CUR | ALT | ACC | MINRNR | MIG, CUR | ALT | ACC | MIG,
	    CUR | QKEY } },
	{ IBV_QPS_SQD,
	  IBV_QPS_SQD,
	  { 0, 0, 0 },
	  { PORT | AV | TMO | RETRY | RNR | RD | DRD | ALT | ACC | PKEY |
		    MINRNR | MIG,
	    AV | ALT | ACC | PKEY | MIG, PKEY | QKEY } },
	/* RC has no SQE state; UC and UD leave it only for RTS */
	{ IBV_QPS_SQE,
	  IBV_QPS_RTS,
	  { -1, 0, 0 },
	  { -1, CUR | ACC, CUR | QKEY } },
};
#define NLEGAL (sizeof(legal) / sizeof(legal[0]))

struct fx {
	char dir[64];
	const struct isn_hca_ops *o;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	union ibv_gid gid;
	bool ib;
};

static int fx_setup(void **state, bool ib)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	if (ut_fabric_enter(f->dir))
		return -1;
	f->ib = ib;
	f->o = fakehca_ops();
	f->ctx = ut_open_fake0(f->o, ib ? "ib" : NULL);
	if (!f->ctx)
		return -1;
	f->pd = f->o->alloc_pd(f->ctx);
	f->cq = f->o->create_cq(f->ctx, 64, NULL, NULL, 0);
	if (!f->pd || !f->cq || f->o->query_gid(f->ctx, 1, 1, &f->gid))
		return -1;
	*state = f;
	return 0;
}

static int setup_eth(void **state)
{
	return fx_setup(state, false);
}

static int setup_ib(void **state)
{
	return fx_setup(state, true);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	f->o->destroy_cq(f->cq);
	f->o->dealloc_pd(f->pd);
	f->o->close_device(f->ctx);
	ut_fabric_leave(f->dir);
	free(f);
	return 0;
}

static struct ibv_qp *new_qp(struct fx *f, int t)
{
	struct ibv_qp_init_attr ia = {
		.send_cq = f->cq,
		.recv_cq = f->cq,
		.cap = { 4, 4, 1, 1, 0 },
		.qp_type = qpt[t],
	};
	struct ibv_qp *qp = f->o->create_qp(f->pd, &ia);

	assert_non_null(qp);
	return qp;
}

/* Valid values for every attribute, for a move @from -> @to. */
static struct ibv_qp_attr full_attr(struct fx *f, enum ibv_qp_state from,
				    enum ibv_qp_state to)
{
	struct ibv_qp_attr a = {
		.qp_state = to,
		.cur_qp_state = from,
		.path_mtu = IBV_MTU_1024,
		.path_mig_state = IBV_MIG_MIGRATED,
		.qkey = 0x11111111,
		.rq_psn = 0x123,
		.sq_psn = 0x456,
		.dest_qp_num = 0x77,
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE |
				   IBV_ACCESS_REMOTE_READ,
		.pkey_index = 0,
		.max_rd_atomic = 4,
		.max_dest_rd_atomic = 4,
		.min_rnr_timer = 12,
		.port_num = 1,
		.timeout = 14,
		.retry_cnt = 7,
		.rnr_retry = 7,
		.alt_port_num = 1,
		.alt_timeout = 10,
	};

	a.ah_attr.is_global = 1;
	a.ah_attr.grh.dgid = f->gid;
	a.ah_attr.grh.sgid_index = 1;
	a.ah_attr.grh.hop_limit = 1;
	a.ah_attr.port_num = 1;
	a.alt_ah_attr = a.ah_attr;
	return a;
}

static int modify(struct fx *f, struct ibv_qp *qp, enum ibv_qp_state from,
		  enum ibv_qp_state to, int mask)
{
	struct ibv_qp_attr a = full_attr(f, from, to);

	return f->o->modify_qp(qp, &a, mask);
}

static enum ibv_qp_state qstate(struct fx *f, struct ibv_qp *qp)
{
	struct ibv_qp_attr a;
	struct ibv_qp_init_attr ia;

	assert_int_equal(f->o->query_qp(qp, &a, IBV_QP_STATE, &ia), 0);
	assert_int_equal(a.qp_state, qp->state);
	return a.qp_state;
}

/* Move a fresh QP of type @t along RESET-INIT-RTR-RTS(-SQD) or to ERR. */
static void drive(struct fx *f, struct ibv_qp *qp, int t, enum ibv_qp_state st)
{
	static const enum ibv_qp_state path[] = { IBV_QPS_INIT, IBV_QPS_RTR,
						  IBV_QPS_RTS, IBV_QPS_SQD };
	enum ibv_qp_state cur = IBV_QPS_RESET;
	size_t i, k;

	if (st == IBV_QPS_ERR) {
		drive(f, qp, t, IBV_QPS_INIT);
		assert_int_equal(modify(f, qp, IBV_QPS_INIT, IBV_QPS_ERR, S),
				 0);
		return;
	}
	for (i = 0; i < 4 && cur != st; i++) {
		for (k = 0; k < NLEGAL; k++)
			if (legal[k].from == cur && legal[k].to == path[i])
				break;
		assert_int_equal(
			modify(f, qp, cur, path[i], S | legal[k].req[t]), 0);
		cur = path[i];
	}
	assert_int_equal(qstate(f, qp), st);
}

static int optional(struct fx *f, const struct trans *tr, int t)
{
	/* RoCE refuses alternate paths (the kernel allows APM on IB only) */
	return tr->opt[t] & ~(f->ib ? 0 : ALT);
}

static void check_legal(struct fx *f, const struct trans *tr, int t)
{
	bool sqe = tr->from == IBV_QPS_SQE;
	/* SQE is not reachable by modify_qp: claim it with IBV_QP_CUR_STATE */
	enum ibv_qp_state real = sqe ? IBV_QPS_RTS : tr->from;
	int claim = sqe ? CUR : 0, req = tr->req[t], opt = tr->opt[t];
	struct ibv_qp *qp = new_qp(f, t);
	int b;

	drive(f, qp, t, real);
	for (b = 1; b <= ALL_BITS; b <<= 1) {
		if (req & b) /* a required attribute left out */
			assert_int_equal(modify(f, qp, tr->from, tr->to,
						S | claim | (req & ~b)),
					 EINVAL);
		else if (!((opt | S) & b)) /* one not allowed */
			assert_int_equal(modify(f, qp, tr->from, tr->to,
						S | claim | req | b),
					 EINVAL);
		assert_int_equal(qstate(f, qp), real);
	}
	assert_int_equal(modify(f, qp, tr->from, tr->to, S | claim | req), 0);
	assert_int_equal(qstate(f, qp), tr->to);
	assert_int_equal(f->o->destroy_qp(qp), 0);

	qp = new_qp(f, t);
	drive(f, qp, t, real);
	assert_int_equal(modify(f, qp, tr->from, tr->to,
				S | claim | req | optional(f, tr, t)),
			 0);
	assert_int_equal(qstate(f, qp), tr->to);
	assert_int_equal(f->o->destroy_qp(qp), 0);
}

static void legal_all(void **state)
{
	struct fx *f = *state;
	size_t k;
	int t;

	for (t = 0; t < NTYPES; t++)
		for (k = 0; k < NLEGAL; k++)
			if (legal[k].req[t] >= 0)
				check_legal(f, &legal[k], t);
}

static bool is_legal(int t, enum ibv_qp_state from, enum ibv_qp_state to)
{
	size_t k;

	if (to == IBV_QPS_RESET)
		return true;
	if (to == IBV_QPS_ERR)
		return from != IBV_QPS_RESET;
	for (k = 0; k < NLEGAL; k++)
		if (legal[k].from == from && legal[k].to == to &&
		    legal[k].req[t] >= 0)
			return true;
	return false;
}

/* Every attribute any transition into @to could require, for type @t. */
static int reqs_into(int t, enum ibv_qp_state to)
{
	int m = 0;
	size_t k;

	for (k = 0; k < NLEGAL; k++)
		if (legal[k].to == to && legal[k].req[t] > 0)
			m |= legal[k].req[t];
	return m;
}

static void illegal_all(void **state)
{
	static const enum ibv_qp_state froms[] = {
		IBV_QPS_RESET, IBV_QPS_INIT, IBV_QPS_RTR,
		IBV_QPS_RTS,   IBV_QPS_SQD,  IBV_QPS_ERR,
	};
	struct fx *f = *state;
	enum ibv_qp_state to;
	size_t i;
	int t;

	for (t = 0; t < NTYPES; t++) {
		for (i = 0; i < sizeof(froms) / sizeof(froms[0]); i++) {
			struct ibv_qp *qp = new_qp(f, t);

			drive(f, qp, t, froms[i]);
			for (to = IBV_QPS_RESET; to <= IBV_QPS_UNKNOWN; to++) {
				if (to <= IBV_QPS_ERR &&
				    is_legal(t, froms[i], to))
					continue;
				if (modify(f, qp, froms[i], to, S) != EINVAL)
					fail_msg("type %d %d -> %d", t,
						 froms[i], to);
				if (modify(f, qp, froms[i], to,
					   S | reqs_into(t, to)) != EINVAL)
					fail_msg("type %d %d -> %d mask 0x%x",
						 t, froms[i], to,
						 S | reqs_into(t, to));
				assert_int_equal(qstate(f, qp), froms[i]);
			}
			assert_int_equal(f->o->destroy_qp(qp), 0);
		}
	}
}

/* Claimed SQE (UC, UD): only RTS is reachable from there by modify_qp. */
static void illegal_from_sqe(void **state)
{
	struct fx *f = *state;
	enum ibv_qp_state to;
	int t;

	for (t = UC; t <= UD; t++) {
		struct ibv_qp *qp = new_qp(f, t);

		drive(f, qp, t, IBV_QPS_RTS);
		for (to = IBV_QPS_INIT; to <= IBV_QPS_SQE; to++)
			if (to != IBV_QPS_RTS)
				assert_int_equal(modify(f, qp, IBV_QPS_SQE, to,
							S | CUR),
						 EINVAL);
		/* RC has no SQE: the claim itself is refused */
		assert_int_equal(f->o->destroy_qp(qp), 0);
	}
	{
		struct ibv_qp *qp = new_qp(f, RC);

		drive(f, qp, RC, IBV_QPS_RTS);
		assert_int_equal(modify(f, qp, IBV_QPS_SQE, IBV_QPS_RTS,
					S | CUR),
				 EINVAL);
		assert_int_equal(f->o->destroy_qp(qp), 0);
	}
}

/* Any state goes to RESET and (but from RESET) to ERR, with no attribute. */
static void reset_and_err(void **state)
{
	static const enum ibv_qp_state froms[] = {
		IBV_QPS_RESET, IBV_QPS_INIT, IBV_QPS_RTR,
		IBV_QPS_RTS,   IBV_QPS_SQD,  IBV_QPS_ERR,
	};
	struct fx *f = *state;
	size_t i;
	int t;

	for (t = 0; t < NTYPES; t++) {
		for (i = 0; i < sizeof(froms) / sizeof(froms[0]); i++) {
			struct ibv_qp *qp = new_qp(f, t);

			drive(f, qp, t, froms[i]);
			assert_int_equal(
				modify(f, qp, froms[i], IBV_QPS_ERR, S),
				froms[i] == IBV_QPS_RESET ? EINVAL : 0);
			assert_int_equal(
				modify(f, qp, froms[i], IBV_QPS_RESET, S), 0);
			assert_int_equal(qstate(f, qp), IBV_QPS_RESET);
			/* and back up again */
			drive(f, qp, t, IBV_QPS_RTS);
			assert_int_equal(f->o->destroy_qp(qp), 0);
		}
	}
}

/* IBV_QP_CUR_STATE is believed (as rxe does), but only from RTR..SQE. */
static void cur_state(void **state)
{
	struct fx *f = *state;
	struct ibv_qp *qp = new_qp(f, RC);

	assert_int_equal(modify(f, qp, IBV_QPS_RESET, IBV_QPS_INIT,
				S | CUR | PKEY | PORT | ACC),
			 EINVAL);
	drive(f, qp, RC, IBV_QPS_RTS);
	/* claim RTR: the RTR -> RTS attributes are then required */
	assert_int_equal(modify(f, qp, IBV_QPS_RTR, IBV_QPS_RTS, S | CUR),
			 EINVAL);
	assert_int_equal(modify(f, qp, IBV_QPS_RTR, IBV_QPS_RTS,
				S | CUR | TMO | RETRY | RNR | SQPSN | RD),
			 0);
	assert_int_equal(qstate(f, qp), IBV_QPS_RTS);
	/* no IBV_QP_STATE: the QP stays where it is (RTS -> RTS) */
	assert_int_equal(modify(f, qp, IBV_QPS_RTS, IBV_QPS_RTS, MINRNR), 0);
	assert_int_equal(modify(f, qp, IBV_QPS_RTS, IBV_QPS_RTS, 0), 0);
	assert_int_equal(modify(f, qp, IBV_QPS_RTS, IBV_QPS_RTS, QKEY), EINVAL);
	assert_int_equal(f->o->destroy_qp(qp), 0);
}

static void query_reflects(void **state)
{
	struct fx *f = *state;
	struct ibv_qp *qp = new_qp(f, RC);
	struct ibv_qp_attr a = full_attr(f, IBV_QPS_INIT, IBV_QPS_RTR), q;
	struct ibv_qp_init_attr ia;

	drive(f, qp, RC, IBV_QPS_INIT);
	a.rq_psn = 0x1abcdef; /* cut to 24 bits */
	a.max_dest_rd_atomic = 5; /* rounded up to 8 */
	a.path_mtu = IBV_MTU_4096;
	a.dest_qp_num = 0x1234;
	a.ah_attr.grh.traffic_class = 4;
	a.ah_attr.grh.flow_label = 77;
	assert_int_equal(f->o->modify_qp(qp, &a,
					 S | AV | MTU | DQPN | RQPSN | DRD |
						 MINRNR),
			 0);
	a = full_attr(f, IBV_QPS_RTR, IBV_QPS_RTS);
	a.sq_psn = 0x2fedcba;
	a.max_rd_atomic = 3;
	a.timeout = 18;
	a.retry_cnt = 9; /* rxe stores it unchecked */
	a.rnr_retry = 6;
	assert_int_equal(
		f->o->modify_qp(qp, &a, S | TMO | RETRY | RNR | SQPSN | RD), 0);
	memset(&q, 0x5a, sizeof(q));
	assert_int_equal(f->o->query_qp(qp, &q, ALL_BITS, &ia), 0);
	assert_int_equal(q.qp_state, IBV_QPS_RTS);
	assert_int_equal(q.cur_qp_state, IBV_QPS_RTS);
	assert_int_equal(q.port_num, 1);
	assert_int_equal(q.pkey_index, 0);
	assert_int_equal(q.qp_access_flags,
			 IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
	assert_int_equal(q.path_mtu, IBV_MTU_4096);
	assert_int_equal(q.dest_qp_num, 0x1234);
	assert_int_equal(q.rq_psn, 0xabcdef);
	assert_int_equal(q.sq_psn, 0xfedcba);
	assert_int_equal(q.max_dest_rd_atomic, 8);
	assert_int_equal(q.max_rd_atomic, 4);
	assert_int_equal(q.min_rnr_timer, 12);
	assert_int_equal(q.timeout, 18);
	assert_int_equal(q.retry_cnt, 9);
	assert_int_equal(q.rnr_retry, 6);
	assert_int_equal(q.ah_attr.is_global, 1);
	assert_memory_equal(&q.ah_attr.grh.dgid, &f->gid, sizeof(f->gid));
	assert_int_equal(q.ah_attr.grh.sgid_index, 1);
	assert_int_equal(q.ah_attr.grh.traffic_class, 4);
	assert_int_equal(q.ah_attr.grh.flow_label, 77);
	/* RoCE: the route lookup's hop limit, as rxe reports it */
	assert_int_equal(q.ah_attr.grh.hop_limit, f->ib ? 1 : 64);
	assert_int_equal(q.cap.max_send_wr, 7);
	assert_int_equal(q.cap.max_recv_wr, 7);
	assert_int_equal(q.cap.max_send_sge, 1);
	assert_int_equal(q.cap.max_recv_sge, 1);
	assert_int_equal(q.cap.max_inline_data, 16);
	assert_int_equal(ia.qp_type, IBV_QPT_RC);
	assert_ptr_equal(ia.send_cq, f->cq);
	assert_ptr_equal(ia.recv_cq, f->cq);
	assert_null(ia.srq);
	assert_int_equal(ia.sq_sig_all, 0);
	assert_int_equal(ia.cap.max_send_wr, 7);

	/* attributes stay across RESET, as on rxe */
	assert_int_equal(modify(f, qp, IBV_QPS_RTS, IBV_QPS_RESET, S), 0);
	assert_int_equal(f->o->query_qp(qp, &q, ALL_BITS, &ia), 0);
	assert_int_equal(q.qp_state, IBV_QPS_RESET);
	assert_int_equal(q.dest_qp_num, 0x1234);
	assert_int_equal(q.max_rd_atomic, 4);
	assert_int_equal(f->o->destroy_qp(qp), 0);
}

static void query_fresh_ud(void **state)
{
	struct fx *f = *state;
	struct ibv_qp_init_attr ia = {
		.send_cq = f->cq,
		.recv_cq = f->cq,
		.cap = { 3, 5, 2, 3, 100 },
		.qp_type = IBV_QPT_UD,
		.sq_sig_all = 1,
		.qp_context = f,
	};
	struct ibv_qp_attr q;
	struct ibv_qp *qp = f->o->create_qp(f->pd, &ia);

	assert_non_null(qp);
	/* create reports SGEs and inline granted, the depths asked (rxe) */
	assert_int_equal(ia.cap.max_send_wr, 3);
	assert_int_equal(ia.cap.max_recv_wr, 5);
	assert_int_equal(ia.cap.max_send_sge, 6);
	assert_int_equal(ia.cap.max_recv_sge, 3);
	assert_int_equal(ia.cap.max_inline_data, 100);
	memset(&ia, 0, sizeof(ia));
	assert_int_equal(f->o->query_qp(qp, &q, 0, &ia), 0);
	assert_int_equal(q.qp_state, IBV_QPS_RESET);
	assert_int_equal(q.path_mtu, IBV_MTU_256);
	assert_int_equal(q.cap.max_send_wr, 3);
	assert_int_equal(q.cap.max_recv_wr, 7);
	assert_int_equal(q.cap.max_send_sge, 6);
	assert_int_equal(q.cap.max_inline_data, 100);
	assert_int_equal(ia.sq_sig_all, 1);
	assert_ptr_equal(ia.qp_context, f);
	drive(f, qp, UD, IBV_QPS_RTS);
	assert_int_equal(f->o->query_qp(qp, &q, 0, &ia), 0);
	assert_int_equal(q.qkey, 0x11111111);
	assert_int_equal(q.sq_psn, 0x456);
	assert_int_equal(f->o->destroy_qp(qp), 0);
}

/* The QPN table grows past its first size and stays whole on removal. */
static void qpn_table(void **state)
{
	struct fx *f = *state;
	struct fk_context *ctx = to_fctx(f->ctx);
	struct ibv_qp *qp[150];
	int i;

	for (i = 0; i < 150; i++)
		qp[i] = new_qp(f, UD);
	for (i = 0; i < 150; i += 2)
		assert_int_equal(f->o->destroy_qp(qp[i]), 0);
	pthread_mutex_lock(&ctx->lock);
	for (i = 1; i < 150; i += 2)
		assert_ptr_equal(fk_qp_lookup(ctx, qp[i]->qp_num),
				 to_fqp(qp[i]));
	assert_null(fk_qp_lookup(ctx, 0xfffffe));
	pthread_mutex_unlock(&ctx->lock);
	for (i = 1; i < 150; i += 2)
		assert_int_equal(f->o->destroy_qp(qp[i]), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(legal_all, setup_eth, teardown),
		cmocka_unit_test_setup_teardown(illegal_all, setup_eth,
						teardown),
		cmocka_unit_test_setup_teardown(illegal_from_sqe, setup_eth,
						teardown),
		cmocka_unit_test_setup_teardown(reset_and_err, setup_eth,
						teardown),
		cmocka_unit_test_setup_teardown(cur_state, setup_eth, teardown),
		cmocka_unit_test_setup_teardown(query_reflects, setup_eth,
						teardown),
		cmocka_unit_test_setup_teardown(query_fresh_ud, setup_eth,
						teardown),
		cmocka_unit_test_setup_teardown(qpn_table, setup_eth, teardown),
		/* the same on an InfiniBand port (alternate paths allowed) */
		cmocka_unit_test_setup_teardown(legal_all, setup_ib, teardown),
		cmocka_unit_test_setup_teardown(illegal_all, setup_ib,
						teardown),
		cmocka_unit_test_setup_teardown(query_reflects, setup_ib,
						teardown),
	};

	return cmocka_run_group_tests_name("qp_state", tests, NULL, NULL);
}
