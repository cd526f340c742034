/* SPDX-License-Identifier: MIT */
/*
 * Bad input to the fake HCA's control path, one case per test, each expecting
 * the errno rxe gives on Debian 12 (rdma-core 44, kernel 6.1; every value
 * here was seen on rxe0, and the lab tier's tests/lab/vdiff_ctl.c checks
 * them there again), and the CQ, channel and async-event edge cases.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include <ibsnap/hca_ops.h>
#include "fake.h"
#include "unit/ut_fake.h"

#define LW IBV_ACCESS_LOCAL_WRITE

struct fx {
	char dir[64];
	const struct isn_hca_ops *o;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	union ibv_gid gid[FK_NUM_GIDS];
	void *buf;
	const void *kase; /* the table entry a table-driven test runs */
};

static int fx_setup(void **state, const char *link)
{
	struct fx *f = calloc(1, sizeof(*f));
	int n;

	if (!f)
		return -1;
	f->kase = *state;
	if (ut_fabric_enter(f->dir))
		return -1;
	f->o = fakehca_ops();
	f->ctx = ut_open_fake0(f->o, link);
	if (!f->ctx)
		return -1;
	f->pd = f->o->alloc_pd(f->ctx);
	f->cq = f->o->create_cq(f->ctx, 16, NULL, NULL, 0);
	if (posix_memalign(&f->buf, 4096, 65536))
		return -1;
	for (n = 0; n < FK_NUM_GIDS; n++)
		if (f->o->query_gid(f->ctx, 1, n, &f->gid[n]))
			return -1;
	*state = f;
	return f->pd && f->cq ? 0 : -1;
}

static int setup(void **state)
{
	return fx_setup(state, "eth");
}

static int setup_ib(void **state)
{
	return fx_setup(state, "ib");
}

static int teardown(void **state)
{
	struct fx *f = *state;

	/* close_device frees what a failed test left */
	f->o->close_device(f->ctx);
	ut_fabric_leave(f->dir);
	free(f->buf);
	free(f);
	return 0;
}

#define EXPECT_NULL(expr, err)                \
	do {                                  \
		errno = 0;                    \
		assert_null(expr);            \
		assert_int_equal(errno, err); \
	} while (0)

/* libibverbs' -1-and-errno calls (query_gid, query_pkey, get_*_event) */
#define EXPECT_M1(expr, err)                  \
	do {                                  \
		errno = 0;                    \
		assert_int_equal(expr, -1);   \
		assert_int_equal(errno, err); \
	} while (0)

#define F struct fx *f = *state

/* ---- queries ---- */

static void queries_bad(void **state)
{
	F;
	struct ibv_query_device_ex_input in = { .comp_mask = 1 };
	struct ibv_device_attr_ex da;
	struct ibv_port_attr pa;
	struct ibv_gid_entry e;
	union ibv_gid g;
	__be16 pk;

	assert_int_equal(f->o->query_port(f->ctx, 0, &pa), EINVAL);
	assert_int_equal(f->o->query_port(f->ctx, 2, &pa), EINVAL);
	/* rxe's table has 1024 entries; the unused ones read as zero GIDs
	 * (ibv_query_gid) or ENODATA (ibv_query_gid_ex) */
	EXPECT_M1(f->o->query_gid(f->ctx, 1, FK_GID_TBL_LEN, &g), EINVAL);
	EXPECT_M1(f->o->query_gid(f->ctx, 1, -1, &g), EINVAL);
	EXPECT_M1(f->o->query_gid(f->ctx, 2, 0, &g), EINVAL);
	assert_int_equal(f->o->query_gid(f->ctx, 1, FK_NUM_GIDS, &g), 0);
	assert_true(!memcmp(&g, &(union ibv_gid){}, sizeof(g)));
	assert_int_equal(f->o->query_gid_ex(f->ctx, 1, FK_NUM_GIDS, &e, 0),
			 ENODATA);
	assert_int_equal(f->o->query_gid_ex(f->ctx, 1, FK_GID_TBL_LEN, &e, 0),
			 EINVAL);
	assert_int_equal(f->o->query_gid_ex(f->ctx, 0, 0, &e, 0), EINVAL);
	assert_int_equal(f->o->query_gid_ex(f->ctx, 1, 0, &e, 1), EINVAL);
	/* rxe's P_Key table has one entry; rdma-core reads sysfs: ENOENT */
	EXPECT_M1(f->o->query_pkey(f->ctx, 1, 1, &pk), ENOENT);
	EXPECT_M1(f->o->query_pkey(f->ctx, 2, 0, &pk), ENOENT);
	assert_int_equal(f->o->query_device_ex(f->ctx, &in, &da, sizeof(da)),
			 EINVAL);
	/* and the good ones */
	assert_int_equal(f->o->query_pkey(f->ctx, 1, 0, &pk), 0);
	assert_int_equal(pk, htobe16(0xffff));
	assert_int_equal(f->o->query_gid_ex(f->ctx, 1, 1, &e, 0), 0);
	assert_int_equal(e.gid_type, IBV_GID_TYPE_ROCE_V2);
	assert_int_equal(f->o->query_device_ex(f->ctx, NULL, &da, sizeof(da)),
			 0);
	assert_int_equal(da.orig_attr.max_qp_wr, FK_MAX_QP_WR);
	assert_int_equal(f->o->query_port(f->ctx, 1, &pa), 0);
	assert_int_equal(pa.lid, 0);
	assert_int_equal(pa.flags, IBV_QPF_GRH_REQUIRED);
}

/* ---- memory regions (table-driven: one test per entry) ---- */

enum { AT_BUF, AT_NULL, AT_HOLE };

struct mr_case {
	const char *name;
	int where;
	size_t len;
	uint64_t iova; /* 0: the address */
	unsigned int access;
	int err;
};

#define RW IBV_ACCESS_REMOTE_WRITE
#define RA IBV_ACCESS_REMOTE_ATOMIC
static const struct mr_case mr_cases[] = {
	{ "reg_mr REMOTE_WRITE w/o LOCAL_WRITE", AT_BUF, 4096, 0, RW, EINVAL },
	{ "reg_mr REMOTE_ATOMIC w/o LOCAL_WRITE", AT_BUF, 4096, 0, RA, EINVAL },
	{ "reg_mr ON_DEMAND (no ODP)", AT_BUF, 4096, 0,
	  LW | IBV_ACCESS_ON_DEMAND, EINVAL },
	{ "reg_mr access bit 8", AT_BUF, 4096, 0, LW | 1u << 8, EINVAL },
	{ "reg_mr access bit 15", AT_BUF, 4096, 0, LW | 1u << 15, EINVAL },
	{ "reg_mr access bit 30", AT_BUF, 4096, 0, LW | 1u << 30, EINVAL },
	{ "reg_mr length 0", AT_BUF, 0, 0, LW, EINVAL },
	{ "reg_mr length 2^62", AT_BUF, (size_t)1 << 62, 0, LW, EINVAL },
	{ "reg_mr length SIZE_MAX", AT_BUF, SIZE_MAX, 0, LW, EINVAL },
	{ "reg_mr NULL address", AT_NULL, 4096, 0, LW, EFAULT },
	{ "reg_mr unmapped page", AT_HOLE, 8192, 0, LW, EFAULT },
	{ "reg_mr iova of other page offset", AT_BUF, 4096, 0x100010, LW,
	  EINVAL },
	/* what rxe takes: MW_BIND, ZERO_BASED, HUGETLB, optional bits */
	{ "reg_mr MW_BIND taken", AT_BUF, 4096, 0, LW | IBV_ACCESS_MW_BIND, 0 },
	{ "reg_mr ZERO_BASED taken", AT_BUF, 4096, 0,
	  LW | IBV_ACCESS_ZERO_BASED, 0 },
	{ "reg_mr HUGETLB taken", AT_BUF, 4096, 0, LW | IBV_ACCESS_HUGETLB, 0 },
	{ "reg_mr RELAXED_ORDERING taken", AT_BUF, 4096, 0,
	  LW | IBV_ACCESS_RELAXED_ORDERING, 0 },
	{ "reg_mr access 0 taken", AT_BUF, 4096, 0, 0, 0 },
};

static void mr_case(void **state)
{
	F;
	const struct mr_case *c = f->kase;
	uint8_t *p = c->where == AT_BUF ? f->buf : NULL;
	struct ibv_mr *mr;

	if (c->where == AT_HOLE) {
		p = mmap(NULL, 8192, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		assert_true(p != MAP_FAILED);
		assert_int_equal(munmap(p + 4096, 4096), 0);
	}
	errno = 0;
	mr = f->o->reg_mr(f->pd, p, c->len, c->iova ? c->iova : (uintptr_t)p,
			  c->access);
	assert_int_equal(mr ? 0 : errno, c->err);
	if (mr)
		assert_int_equal(f->o->dereg_mr(mr), 0);
	if (c->where == AT_HOLE)
		munmap(p, 4096);
}

/* ---- CQs ---- */

#define VEC_NCV (-1000) /* the context's num_comp_vectors */

struct cq_case {
	const char *name;
	int cqe, vector, err;
};

static const struct cq_case cq_cases[] = {
	{ "create_cq cqe 0", 0, 0, EINVAL },
	{ "create_cq cqe -1", -1, 0, EINVAL },
	{ "create_cq cqe max + 1", FK_MAX_CQE + 1, 0, EINVAL },
	{ "create_cq cqe max taken", FK_MAX_CQE, 0, 0 },
	{ "create_cq vector num_comp_vectors", 4, VEC_NCV, EINVAL },
	{ "create_cq vector -1", 4, -1, EINVAL },
};

static void cq_case(void **state)
{
	F;
	const struct cq_case *c = f->kase;
	struct ibv_cq *cq;

	errno = 0;
	cq = f->o->create_cq(f->ctx, c->cqe, NULL, NULL,
			     c->vector == VEC_NCV ? f->ctx->num_comp_vectors :
						    c->vector);
	assert_int_equal(cq ? 0 : errno, c->err);
	if (cq) {
		assert_int_equal(cq->cqe, c->cqe);
		assert_int_equal(f->o->destroy_cq(cq), 0);
	}
}

static void create_cq_ex_unsupported(void **state)
{
	F;
	struct ibv_cq_init_attr_ex a = {
		.cqe = 4,
		.wc_flags = IBV_WC_EX_WITH_COMPLETION_TIMESTAMP,
	};

	EXPECT_NULL(f->o->create_cq_ex(f->ctx, &a), EOPNOTSUPP);
	a.wc_flags = IBV_WC_STANDARD_FLAGS;
	a.comp_mask = IBV_CQ_INIT_ATTR_MASK_FLAGS;
	a.flags = IBV_CREATE_CQ_ATTR_IGNORE_OVERRUN;
	EXPECT_NULL(f->o->create_cq_ex(f->ctx, &a), EOPNOTSUPP);
	a.comp_mask = 1 << 5;
	EXPECT_NULL(f->o->create_cq_ex(f->ctx, &a), EOPNOTSUPP);
	a.comp_mask = 0;
	a.cqe = 0;
	EXPECT_NULL(f->o->create_cq_ex(f->ctx, &a), EINVAL);
}

static void resize_cq_bad(void **state)
{
	F;
	assert_int_equal(f->o->resize_cq(f->cq, 0), EINVAL);
	assert_int_equal(f->o->resize_cq(f->cq, FK_MAX_CQE + 1), EINVAL);
	assert_int_equal(f->o->resize_cq(f->cq, 100), 0);
	assert_int_equal(f->cq->cqe, 127);
}

static void push(struct fx *f, struct ibv_cq *cq, uint64_t id,
		 enum ibv_wc_status st, bool solicited)
{
	struct fk_context *ctx = to_fctx(f->ctx);
	struct ibv_wc wc = { .wr_id = id, .status = st };

	pthread_mutex_lock(&ctx->lock);
	fk_cq_push(to_fcq(cq), &wc, solicited);
	pthread_mutex_unlock(&ctx->lock);
}

static void resize_cq_below_count(void **state)
{
	F;
	struct ibv_wc wc[8];
	int i;

	for (i = 0; i < 6; i++)
		push(f, f->cq, i, IBV_WC_SUCCESS, false);
	assert_int_equal(f->o->resize_cq(f->cq, 5), EINVAL);
	assert_int_equal(f->o->resize_cq(f->cq, 6), 0);
	assert_int_equal(f->cq->cqe, 7);
	assert_int_equal(ibv_poll_cq(f->cq, 8, wc), 6);
	for (i = 0; i < 6; i++)
		assert_int_equal(wc[i].wr_id, i);
}

static struct ibv_qp *rc_qp(struct fx *f, struct ibv_srq *srq)
{
	struct ibv_qp_init_attr ia = {
		.send_cq = f->cq,
		.recv_cq = f->cq,
		.srq = srq,
		.cap = { 4, 4, 1, 1, 0 },
		.qp_type = IBV_QPT_RC,
	};
	struct ibv_qp *qp = f->o->create_qp(f->pd, &ia);

	assert_non_null(qp);
	return qp;
}

static void destroy_cq_busy(void **state)
{
	F;
	struct ibv_qp *qp = rc_qp(f, NULL);

	assert_int_equal(f->o->destroy_cq(f->cq), EBUSY);
	assert_int_equal(f->o->destroy_qp(qp), 0);
	assert_int_equal(f->o->destroy_cq(f->cq), 0);
}

static void start_poll_empty(void **state)
{
	F;
	struct ibv_cq_init_attr_ex a = { .cqe = 4,
					 .wc_flags = IBV_WC_STANDARD_FLAGS };
	struct ibv_poll_cq_attr pa = {};
	struct ibv_cq_ex *cq = f->o->create_cq_ex(f->ctx, &a);

	assert_non_null(cq);
	assert_int_equal(ibv_start_poll(cq, &pa), ENOENT);
	push(f, ibv_cq_ex_to_cq(cq), 7, IBV_WC_SUCCESS, false);
	push(f, ibv_cq_ex_to_cq(cq), 8, IBV_WC_GENERAL_ERR, false);
	assert_int_equal(ibv_start_poll(cq, &pa), 0);
	assert_int_equal(cq->wr_id, 7);
	assert_int_equal(ibv_next_poll(cq), 0);
	assert_int_equal(cq->wr_id, 8);
	assert_int_equal(cq->status, IBV_WC_GENERAL_ERR);
	assert_int_equal(ibv_next_poll(cq), ENOENT);
	ibv_end_poll(cq);
	assert_null(cq->read_completion_ts);
	assert_int_equal(f->o->destroy_cq(ibv_cq_ex_to_cq(cq)), 0);
}

static void nonblock(int fd)
{
	assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK),
			 0);
}

/* rxe drops the completion and raises CQ_ERR for each one dropped. */
static void cq_overflow(void **state)
{
	F;
	struct ibv_cq *cq = f->o->create_cq(f->ctx, 1, NULL, NULL, 0);
	struct ibv_async_event ev;
	struct ibv_wc wc[4];
	int i;

	assert_non_null(cq);
	for (i = 0; i < 3; i++)
		push(f, cq, i, IBV_WC_SUCCESS, false);
	nonblock(f->ctx->async_fd);
	for (i = 0; i < 2; i++) {
		assert_int_equal(f->o->get_async_event(f->ctx, &ev), 0);
		assert_int_equal(ev.event_type, IBV_EVENT_CQ_ERR);
		assert_ptr_equal(ev.element.cq, cq);
		f->o->ack_async_event(&ev);
	}
	EXPECT_M1(f->o->get_async_event(f->ctx, &ev), EAGAIN);
	assert_int_equal(ibv_poll_cq(cq, 4, wc), 1);
	assert_int_equal(wc[0].wr_id, 0);
	assert_int_equal(f->o->destroy_cq(cq), 0);
}

/* ---- completion channels, async events ---- */

static void destroy_channel_busy(void **state)
{
	F;
	struct ibv_comp_channel *ch = f->o->create_comp_channel(f->ctx);
	struct ibv_cq *cq;

	assert_non_null(ch);
	assert_true(fcntl(ch->fd, F_GETFD) & FD_CLOEXEC);
	cq = f->o->create_cq(f->ctx, 4, NULL, ch, 0);
	assert_non_null(cq);
	assert_int_equal(f->o->destroy_comp_channel(ch), EBUSY);
	assert_int_equal(f->o->destroy_cq(cq), 0);
	assert_int_equal(f->o->destroy_comp_channel(ch), 0);
}

static void get_cq_event_empty_nonblocking(void **state)
{
	F;
	struct ibv_comp_channel *ch = f->o->create_comp_channel(f->ctx);
	struct ibv_cq *cq;
	void *cctx;

	assert_non_null(ch);
	nonblock(ch->fd);
	EXPECT_M1(f->o->get_cq_event(ch, &cq, &cctx), EAGAIN);
	assert_int_equal(f->o->destroy_comp_channel(ch), 0);
}

static void get_async_event_empty_nonblocking(void **state)
{
	F;
	struct ibv_async_event ev;

	nonblock(f->ctx->async_fd);
	EXPECT_M1(f->o->get_async_event(f->ctx, &ev), EAGAIN);
}

/* An armed CQ raises one event; solicited arming waits for a solicited or
 * failed completion; events of a destroyed CQ are never reported. */
static void channel_events(void **state)
{
	F;
	struct ibv_comp_channel *ch = f->o->create_comp_channel(f->ctx);
	struct ibv_cq *cq = f->o->create_cq(f->ctx, 8, f, ch, 0), *ecq;
	void *cctx;

	assert_non_null(cq);
	nonblock(ch->fd);
	push(f, cq, 1, IBV_WC_SUCCESS, false); /* not armed: no event */
	EXPECT_M1(f->o->get_cq_event(ch, &ecq, &cctx), EAGAIN);
	assert_int_equal(ibv_req_notify_cq(cq, 0), 0);
	push(f, cq, 2, IBV_WC_SUCCESS, false);
	push(f, cq, 3, IBV_WC_SUCCESS, false); /* disarmed by the first */
	assert_int_equal(f->o->get_cq_event(ch, &ecq, &cctx), 0);
	assert_ptr_equal(ecq, cq);
	assert_ptr_equal(cctx, f);
	EXPECT_M1(f->o->get_cq_event(ch, &ecq, &cctx), EAGAIN);
	assert_int_equal(ibv_req_notify_cq(cq, 1), 0);
	push(f, cq, 4, IBV_WC_SUCCESS, false);
	EXPECT_M1(f->o->get_cq_event(ch, &ecq, &cctx), EAGAIN);
	push(f, cq, 5, IBV_WC_REM_ACCESS_ERR, false);
	assert_int_equal(f->o->get_cq_event(ch, &ecq, &cctx), 0);
	assert_int_equal(ibv_req_notify_cq(cq, 1), 0);
	push(f, cq, 6, IBV_WC_SUCCESS, true);
	assert_int_equal(f->o->get_cq_event(ch, &ecq, &cctx), 0);
	f->o->ack_cq_events(cq, 3);
	/* an event left in the pipe dies with its CQ */
	assert_int_equal(ibv_req_notify_cq(cq, 0), 0);
	push(f, cq, 7, IBV_WC_SUCCESS, false);
	assert_int_equal(f->o->destroy_cq(cq), 0);
	EXPECT_M1(f->o->get_cq_event(ch, &ecq, &cctx), EAGAIN);
	assert_int_equal(f->o->destroy_comp_channel(ch), 0);
}

static atomic_bool acked;

static void *ack_later(void *arg)
{
	usleep(50000);
	atomic_store(&acked, true);
	fakehca_ops()->ack_async_event(arg);
	return NULL;
}

/* destroy_cq waits until the events it reported are acknowledged. */
static void destroy_cq_waits_for_ack(void **state)
{
	F;
	struct ibv_cq *cq = f->o->create_cq(f->ctx, 1, NULL, NULL, 0);
	struct ibv_async_event ev;
	pthread_t t;

	push(f, cq, 1, IBV_WC_SUCCESS, false);
	push(f, cq, 2, IBV_WC_SUCCESS, false);
	assert_int_equal(f->o->get_async_event(f->ctx, &ev), 0);
	assert_int_equal(ev.event_type, IBV_EVENT_CQ_ERR);
	atomic_store(&acked, false);
	assert_int_equal(pthread_create(&t, NULL, ack_later, &ev), 0);
	assert_int_equal(f->o->destroy_cq(cq), 0);
	assert_true(atomic_load(&acked));
	pthread_join(t, NULL);
}

/* ---- SRQs ---- */

static void create_srq_bad(void **state)
{
	F;
	struct ibv_srq_init_attr a = { .attr = { .max_wr = 0, .max_sge = 1 } };

	EXPECT_NULL(f->o->create_srq(f->pd, &a), EINVAL);
	a.attr.max_wr = FK_MAX_SRQ_WR + 1;
	EXPECT_NULL(f->o->create_srq(f->pd, &a), EINVAL);
	a.attr.max_wr = 10;
	a.attr.max_sge = FK_MAX_SRQ_SGE + 1;
	EXPECT_NULL(f->o->create_srq(f->pd, &a), EINVAL);
}

static void modify_srq_bad(void **state)
{
	F;
	struct ibv_srq_init_attr a = { .attr = { .max_wr = 10, .max_sge = 0 } };
	struct ibv_srq *srq = f->o->create_srq(f->pd, &a);
	struct ibv_srq_attr q;
	int i;

	assert_non_null(srq);
	assert_int_equal(a.attr.max_sge, 1);
	assert_int_equal(f->o->query_srq(srq, &q), 0);
	assert_int_equal(q.max_wr, 15);
	q.srq_limit = 16; /* more than max_wr */
	assert_int_equal(f->o->modify_srq(srq, &q, IBV_SRQ_LIMIT), EINVAL);
	q.srq_limit = 15;
	assert_int_equal(f->o->modify_srq(srq, &q, IBV_SRQ_LIMIT), 0);
	q.max_wr = 5; /* below the armed limit */
	assert_int_equal(f->o->modify_srq(srq, &q, IBV_SRQ_MAX_WR), EINVAL);
	q.max_wr = 0;
	assert_int_equal(f->o->modify_srq(srq, &q, IBV_SRQ_MAX_WR), EINVAL);
	q.srq_limit = 0;
	assert_int_equal(f->o->modify_srq(srq, &q, IBV_SRQ_LIMIT), 0);
	for (i = 0; i < 5; i++) {
		struct ibv_sge sg = { (uintptr_t)f->buf, 16, 0 };
		struct ibv_recv_wr w = { .wr_id = i,
					 .sg_list = &sg,
					 .num_sge = 1 },
				   *bad;

		assert_int_equal(ibv_post_srq_recv(srq, &w, &bad), 0);
	}
	q.max_wr = 2; /* below the WRs posted */
	assert_int_equal(f->o->modify_srq(srq, &q, IBV_SRQ_MAX_WR), EINVAL);
	q.max_wr = 100;
	assert_int_equal(f->o->modify_srq(srq, &q, IBV_SRQ_MAX_WR), 0);
	assert_int_equal(f->o->query_srq(srq, &q), 0);
	assert_int_equal(q.max_wr, 127);
	assert_int_equal(f->o->destroy_srq(srq), 0);
}

static void destroy_srq_busy(void **state)
{
	F;
	struct ibv_srq_init_attr a = { .attr = { .max_wr = 4, .max_sge = 1 } };
	struct ibv_srq *srq = f->o->create_srq(f->pd, &a);
	struct ibv_qp *qp = rc_qp(f, srq);

	assert_int_equal(f->o->destroy_srq(srq), EBUSY);
	assert_int_equal(f->o->dealloc_pd(f->pd), EBUSY);
	assert_int_equal(f->o->destroy_qp(qp), 0);
	assert_int_equal(f->o->dealloc_pd(f->pd), EBUSY); /* the SRQ */
	assert_int_equal(f->o->destroy_srq(srq), 0);
}

static void dealloc_pd_busy_qp(void **state)
{
	F;
	struct ibv_qp *qp = rc_qp(f, NULL);

	assert_int_equal(f->o->dealloc_pd(f->pd), EBUSY);
	assert_int_equal(f->o->destroy_qp(qp), 0);
}

/* ---- QP creation (table-driven: one test per entry) ---- */

struct create_case {
	const char *name;
	enum ibv_qp_type type;
	struct ibv_qp_cap cap;
	int err;
};

#define MAXWR FK_MAX_QP_WR
static const struct create_case create_cases[] = {
	{ "create_qp send_wr > max",
	  IBV_QPT_RC,
	  { MAXWR + 1, 1, 1, 1, 0 },
	  EINVAL },
	{ "create_qp recv_wr > max",
	  IBV_QPT_RC,
	  { 1, MAXWR + 1, 1, 1, 0 },
	  EINVAL },
	{ "create_qp send_sge > 32", IBV_QPT_UD, { 1, 1, 33, 1, 0 }, EINVAL },
	{ "create_qp recv_sge > 32", IBV_QPT_UC, { 1, 1, 1, 33, 0 }, EINVAL },
	{ "create_qp inline > 512", IBV_QPT_RC, { 1, 1, 1, 1, 513 }, EINVAL },
	{ "create_qp RAW_PACKET",
	  IBV_QPT_RAW_PACKET,
	  { 1, 1, 1, 1, 0 },
	  EOPNOTSUPP },
	{ "create_qp XRC_SEND",
	  IBV_QPT_XRC_SEND,
	  { 1, 1, 1, 1, 0 },
	  EOPNOTSUPP },
	{ "create_qp DRIVER", IBV_QPT_DRIVER, { 1, 1, 1, 1, 0 }, EOPNOTSUPP },
	{ "create_qp XRC_RECV", IBV_QPT_XRC_RECV, { 1, 1, 1, 1, 0 }, EINVAL },
	{ "create_qp type 0", 0, { 1, 1, 1, 1, 0 }, EINVAL },
	{ "create_qp type 99", 99, { 1, 1, 1, 1, 0 }, EINVAL },
	{ "create_qp inline 512 ok", IBV_QPT_RC, { 1, 1, 1, 1, 512 }, 0 },
};

static void create_qp_case(void **state)
{
	F;
	const struct create_case *c = f->kase;
	struct ibv_qp_init_attr ia = { .send_cq = f->cq,
				       .recv_cq = f->cq,
				       .cap = c->cap,
				       .qp_type = c->type };
	struct ibv_qp *qp;

	errno = 0;
	qp = f->o->create_qp(f->pd, &ia);
	assert_int_equal(qp ? 0 : errno, c->err);
	if (qp) {
		assert_int_equal(ia.cap.max_send_sge, 32);
		assert_int_equal(f->o->destroy_qp(qp), 0);
	}
}

static void create_qp_missing_cq(void **state)
{
	F;
	struct ibv_qp_init_attr ia = { .recv_cq = f->cq,
				       .cap = { 1, 1, 1, 1, 0 },
				       .qp_type = IBV_QPT_RC };

	EXPECT_NULL(f->o->create_qp(f->pd, &ia), EINVAL);
	ia.send_cq = f->cq;
	ia.recv_cq = NULL;
	EXPECT_NULL(f->o->create_qp(f->pd, &ia), EINVAL);
}

static void create_qp_ex_bad(void **state)
{
	F;
	struct ibv_qp_init_attr_ex a = {
		.send_cq = f->cq,
		.recv_cq = f->cq,
		.cap = { 1, 1, 1, 1, 0 },
		.qp_type = IBV_QPT_RC,
		.pd = f->pd,
	};

	EXPECT_NULL(f->o->create_qp_ex(f->ctx, &a), EINVAL); /* no PD bit */
	a.comp_mask = IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_CREATE_FLAGS;
	a.create_flags = IBV_QP_CREATE_SCATTER_FCS;
	EXPECT_NULL(f->o->create_qp_ex(f->ctx, &a), EOPNOTSUPP);
	a.comp_mask = IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_MAX_TSO_HEADER;
	EXPECT_NULL(f->o->create_qp_ex(f->ctx, &a), EOPNOTSUPP);
	/* the ibv_wr_* API is not implemented */
	a.comp_mask = IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_SEND_OPS_FLAGS;
	a.send_ops_flags = IBV_QP_EX_WITH_SEND;
	EXPECT_NULL(f->o->create_qp_ex(f->ctx, &a), EOPNOTSUPP);
}

/* ---- modify_qp (table-driven) ---- */

struct modify_case {
	const char *name;
	enum ibv_qp_state from, to;
	void (*tweak)(struct fx *f, struct ibv_qp_attr *a, int *mask);
	int err;
};

#define RTR_MASK                                                        \
	(IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | \
	 IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER)
#define RTS_MASK                                                               \
	(IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | \
	 IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC)
#define INIT_MASK \
	(IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS)

static struct ibv_qp_attr good_attr(struct fx *f, enum ibv_qp_state to)
{
	struct ibv_qp_attr a = {
		.qp_state = to,
		.port_num = 1,
		.path_mtu = IBV_MTU_1024,
		.dest_qp_num = 0x55,
		.max_dest_rd_atomic = 1,
		.min_rnr_timer = 12,
		.timeout = 14,
		.retry_cnt = 7,
		.rnr_retry = 7,
		.max_rd_atomic = 1,
	};

	a.ah_attr.is_global = 1;
	a.ah_attr.grh.dgid = f->gid[1];
	a.ah_attr.grh.sgid_index = 1;
	a.ah_attr.port_num = 1;
	return a;
}

static int to_mask(enum ibv_qp_state to)
{
	return to == IBV_QPS_INIT ? INIT_MASK :
	       to == IBV_QPS_RTR  ? RTR_MASK :
				    RTS_MASK;
}

#define TWEAK(name, body)                                                \
	static void name(struct fx *f, struct ibv_qp_attr *a, int *mask) \
	{                                                                \
		(void)f;                                                 \
		(void)a;                                                 \
		(void)mask;                                              \
		body;                                                    \
	}

TWEAK(port_2, a->port_num = 2)
TWEAK(port_0, a->port_num = 0)
TWEAK(pkey_1, a->pkey_index = 1) /* rxe does not check it */
TWEAK(mtu_6, a->path_mtu = 6)
TWEAK(mtu_0, a->path_mtu = 0) /* below the port's max: rxe takes it */
TWEAK(drd_129, a->max_dest_rd_atomic = FK_MAX_QP_RD_ATOM + 1) /* unchecked */
TWEAK(rnr_timer_32, a->min_rnr_timer = 32) /* unchecked */
TWEAK(timeout_32, a->timeout = 32)
TWEAK(rd_129, a->max_rd_atomic = FK_MAX_QP_RD_ATOM + 1)
TWEAK(retry_8, a->retry_cnt = 8) /* rxe does not check it */
TWEAK(av_port_2, a->ah_attr.port_num = 2)
TWEAK(av_no_grh, a->ah_attr.is_global = 0)
TWEAK(av_sgid_past, a->ah_attr.grh.sgid_index = FK_NUM_GIDS) /* empty */
TWEAK(av_zero_dgid, memset(&a->ah_attr.grh.dgid, 0, 16))
TWEAK(av_family, a->ah_attr.grh.dgid = f->gid[0]) /* fe80:: from v4 sgid */
TWEAK(av_unknown, a->ah_attr.grh.dgid.raw[12] ^= 0x55)
TWEAK(av_multicast, a->ah_attr.grh.dgid.raw[0] = 0xff)
TWEAK(alt_path, *mask |= IBV_QP_ALT_PATH; a->alt_port_num = 1;
      a->alt_ah_attr = a->ah_attr)
TWEAK(rate_limit, *mask |= IBV_QP_RATE_LIMIT)
TWEAK(bit_30, *mask |= 1 << 30)
TWEAK(state_9, a->qp_state = 9)
TWEAK(cur_9, *mask |= IBV_QP_CUR_STATE; a->cur_qp_state = 9)
TWEAK(cur_reset, *mask |= IBV_QP_CUR_STATE; a->cur_qp_state = IBV_QPS_RESET)
TWEAK(no_port, *mask &= ~IBV_QP_PORT)
TWEAK(extra_qkey, *mask |= IBV_QP_QKEY)

#define RST IBV_QPS_RESET
#define INI IBV_QPS_INIT
#define RTR IBV_QPS_RTR
#define RTS IBV_QPS_RTS
static const struct modify_case modify_cases[] = {
	{ "modify port 2", RST, INI, port_2, EINVAL },
	{ "modify port 0", RST, INI, port_0, EINVAL },
	{ "modify pkey_index 1 taken", RST, INI, pkey_1, 0 },
	{ "modify INIT without port", RST, INI, no_port, EINVAL },
	{ "modify RC INIT with qkey", RST, INI, extra_qkey, EINVAL },
	{ "modify CUR_STATE from RESET", RST, INI, cur_reset, EINVAL },
	{ "modify qp_state 9", RST, INI, state_9, EINVAL },
	{ "modify cur_qp_state 9", RTR, RTS, cur_9, EINVAL },
	{ "modify mask RATE_LIMIT", RST, INI, rate_limit, EOPNOTSUPP },
	{ "modify mask bit 30", RST, INI, bit_30, EOPNOTSUPP },
	{ "modify path_mtu 6", INI, RTR, mtu_6, EINVAL },
	{ "modify path_mtu 0 taken", INI, RTR, mtu_0, 0 },
	{ "modify max_dest_rd_atomic 129 taken", INI, RTR, drd_129, 0 },
	{ "modify min_rnr_timer 32 taken", INI, RTR, rnr_timer_32, 0 },
	{ "modify AV port 2", INI, RTR, av_port_2, EINVAL },
	{ "modify AV without GRH on RoCE", INI, RTR, av_no_grh, EINVAL },
	{ "modify AV sgid_index of an empty entry", INI, RTR, av_sgid_past,
	  ENODATA },
	{ "modify AV zero dgid", INI, RTR, av_zero_dgid, EINVAL },
	{ "modify AV dgid of other family", INI, RTR, av_family, EINVAL },
	{ "modify AV unknown dgid", INI, RTR, av_unknown, ETIMEDOUT },
	{ "modify AV multicast dgid", INI, RTR, av_multicast, 0 },
	{ "modify ALT_PATH on RoCE", INI, RTR, alt_path, EINVAL },
	{ "modify timeout 32", RTR, RTS, timeout_32, EINVAL },
	{ "modify max_rd_atomic 129", RTR, RTS, rd_129, EINVAL },
	{ "modify retry_cnt 8 taken", RTR, RTS, retry_8, 0 },
};

static void modify_case(void **state)
{
	F;
	const struct modify_case *c = f->kase;
	struct ibv_qp *qp = rc_qp(f, NULL);
	enum ibv_qp_state st;
	struct ibv_qp_attr a;
	int mask;

	for (st = IBV_QPS_INIT; st <= c->from; st++) {
		a = good_attr(f, st);
		assert_int_equal(f->o->modify_qp(qp, &a, to_mask(st)), 0);
	}
	a = good_attr(f, c->to);
	mask = to_mask(c->to);
	c->tweak(f, &a, &mask);
	assert_int_equal(f->o->modify_qp(qp, &a, mask), c->err);
	assert_int_equal(qp->state, c->err ? c->from : c->to);
	assert_int_equal(f->o->destroy_qp(qp), 0);
}

/* ---- address handles ---- */

struct ah_case {
	const char *name;
	void (*tweak)(struct fx *f, struct ibv_qp_attr *a, int *mask);
	int err;
};

static const struct ah_case ah_cases[] = {
	{ "create_ah ok", NULL, 0 },
	{ "create_ah port 2", av_port_2, EINVAL },
	{ "create_ah port 0", port_0, EINVAL },
	{ "create_ah without GRH on RoCE", av_no_grh, EINVAL },
	{ "create_ah sgid_index of an empty entry", av_sgid_past, ENODATA },
	{ "create_ah zero dgid", av_zero_dgid, EINVAL },
	{ "create_ah dgid of other family", av_family, EINVAL },
	{ "create_ah unknown dgid", av_unknown, ETIMEDOUT },
	{ "create_ah multicast dgid", av_multicast, 0 },
};

static void ah_case(void **state)
{
	F;
	const struct ah_case *c = f->kase;
	struct ibv_qp_attr a = good_attr(f, IBV_QPS_RTR);
	struct ibv_ah *ah;
	int mask = 0;

	if (c->tweak == port_0)
		a.ah_attr.port_num = 0;
	else if (c->tweak)
		c->tweak(f, &a, &mask);
	errno = 0;
	ah = f->o->create_ah(f->pd, &a.ah_attr);
	assert_int_equal(ah ? 0 : errno, c->err);
	if (ah) {
		assert_int_equal(f->o->dealloc_pd(f->pd), EBUSY);
		assert_int_equal(f->o->destroy_ah(ah), 0);
	}
}

/* InfiniBand: no GRH needed, an unknown LID is not an error until sent to. */
static void create_ah_ib_unknown_lid(void **state)
{
	F;
	struct ibv_ah_attr a = { .dlid = 0xbeef, .port_num = 1 };
	struct ibv_gid_entry e;
	struct ibv_port_attr pa;
	struct ibv_ah *ah = f->o->create_ah(f->pd, &a);

	assert_non_null(ah);
	assert_int_equal(f->o->destroy_ah(ah), 0);
	assert_int_equal(f->o->query_port(f->ctx, 1, &pa), 0);
	assert_int_equal(pa.link_layer, IBV_LINK_LAYER_INFINIBAND);
	assert_int_not_equal(pa.lid, 0);
	assert_int_equal(pa.flags & IBV_QPF_GRH_REQUIRED, 0);
	assert_int_equal(f->o->query_gid_ex(f->ctx, 1, 0, &e, 0), 0);
	assert_int_equal(e.gid_type, IBV_GID_TYPE_IB);
}

/* The device list and port follow the environment; bad values fall back. */
static void devices_from_env(void **state)
{
	F;
	struct ibv_device_attr_ex da;
	struct ibv_port_attr pa;
	struct ibv_device **list;
	struct ibv_context *ctx;
	int n;

	setenv("IBSNAP_FAKE_DEVICES", "3", 1);
	setenv("IBSNAP_FAKE_MTU", "1024", 1);
	list = f->o->get_device_list(&n);
	unsetenv("IBSNAP_FAKE_MTU");
	assert_int_equal(n, 3);
	assert_string_equal(ibv_get_device_name(list[2]), "fake2");
	assert_null(list[3]);
	ctx = f->o->open_device(list[2]);
	f->o->free_device_list(list);
	assert_non_null(ctx);
	assert_int_equal(f->o->query_port(ctx, 1, &pa), 0);
	assert_int_equal(pa.active_mtu, IBV_MTU_1024);
	assert_int_equal(pa.max_mtu, IBV_MTU_4096);
	assert_int_equal(f->o->query_device_ex(ctx, NULL, &da, sizeof(da)), 0);
	assert_int_equal(da.orig_attr.node_guid,
			 f->o->get_device_guid(ctx->device));
	assert_int_equal(f->o->close_device(ctx), 0);

	setenv("IBSNAP_FAKE_DEVICES", "-1", 1); /* ignored: 1 device */
	setenv("IBSNAP_FAKE_MTU", "1000", 1); /* ignored: 4096 */
	list = f->o->get_device_list(&n);
	unsetenv("IBSNAP_FAKE_DEVICES");
	unsetenv("IBSNAP_FAKE_MTU");
	assert_int_equal(n, 1);
	ctx = f->o->open_device(list[0]);
	f->o->free_device_list(list);
	assert_int_equal(f->o->query_port(ctx, 1, &pa), 0);
	assert_int_equal(pa.active_mtu, IBV_MTU_4096);
	assert_int_equal(f->o->close_device(ctx), 0);
}

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

static const struct CMUnitTest fixed[] = {
	T(queries_bad),
	T(create_cq_ex_unsupported),
	T(resize_cq_bad),
	T(resize_cq_below_count),
	T(destroy_cq_busy),
	T(start_poll_empty),
	T(cq_overflow),
	T(destroy_channel_busy),
	T(get_cq_event_empty_nonblocking),
	T(get_async_event_empty_nonblocking),
	T(channel_events),
	T(destroy_cq_waits_for_ack),
	T(create_srq_bad),
	T(modify_srq_bad),
	T(destroy_srq_busy),
	T(dealloc_pd_busy_qp),
	T(create_qp_missing_cq),
	T(create_qp_ex_bad),
	T(devices_from_env),
	cmocka_unit_test_setup_teardown(create_ah_ib_unknown_lid, setup_ib,
					teardown),
};

int main(void)
{
	enum {
		N = ARRAY_SIZE(fixed) + ARRAY_SIZE(mr_cases) +
		    ARRAY_SIZE(cq_cases) + ARRAY_SIZE(create_cases) +
		    ARRAY_SIZE(modify_cases) + ARRAY_SIZE(ah_cases)
	};
	struct CMUnitTest tests[N];
	size_t i, n = 0;

	for (i = 0; i < ARRAY_SIZE(fixed); i++)
		tests[n++] = fixed[i];
#define ADD(cases, fn)                                                      \
	for (i = 0; i < ARRAY_SIZE(cases); i++)                             \
		tests[n++] = (struct CMUnitTest){ cases[i].name, fn, setup, \
						  teardown,                 \
						  (void *)&cases[i] };
	ADD(mr_cases, mr_case)
	ADD(cq_cases, cq_case)
	ADD(create_cases, create_qp_case)
	ADD(modify_cases, modify_case)
	ADD(ah_cases, ah_case)
	return _cmocka_run_group_tests("bad_input", tests, n, NULL, NULL);
}
