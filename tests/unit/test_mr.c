/* SPDX-License-Identifier: MIT */
/*
 * Memory regions of the fake HCA: keys (unique, rkey as rxe gives it), the
 * key table behind fk_mr_lookup, and fk_mr_addr's checks of bounds, PD and
 * access, for MRs whose iova is their address and for reg_mr_iova-style ones
 * whose iova is not.
 */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <ibsnap/hca_ops.h>
#include "fake.h"
#include "unit/ut_fake.h"

#define NMR 200
#define BUF 65536
#define LW IBV_ACCESS_LOCAL_WRITE
#define RW IBV_ACCESS_REMOTE_WRITE
#define RR IBV_ACCESS_REMOTE_READ
#define RA IBV_ACCESS_REMOTE_ATOMIC

struct fx {
	char dir[64];
	const struct isn_hca_ops *o;
	struct ibv_context *ctx;
	struct fk_context *fctx;
	struct ibv_pd *pd, *pd2;
	uint8_t *buf;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	if (ut_fabric_enter(f->dir))
		return -1;
	f->o = fakehca_ops();
	f->ctx = ut_open_fake0(f->o, NULL);
	if (!f->ctx)
		return -1;
	f->fctx = to_fctx(f->ctx);
	f->pd = f->o->alloc_pd(f->ctx);
	f->pd2 = f->o->alloc_pd(f->ctx);
	if (posix_memalign((void **)&f->buf, 4096, BUF))
		return -1;
	*state = f;
	return f->pd && f->pd2 ? 0 : -1;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	f->o->dealloc_pd(f->pd);
	f->o->dealloc_pd(f->pd2);
	f->o->close_device(f->ctx);
	ut_fabric_leave(f->dir);
	free(f->buf);
	free(f);
	return 0;
}

static struct ibv_mr *reg(struct fx *f, struct ibv_pd *pd, void *addr,
			  size_t len, uint64_t iova, unsigned int access)
{
	struct ibv_mr *mr = f->o->reg_mr(pd, addr, len, iova, access);

	assert_non_null(mr);
	return mr;
}

static struct fk_mr *lookup(struct fx *f, uint32_t key)
{
	struct fk_mr *mr;

	pthread_mutex_lock(&f->fctx->lock);
	mr = fk_mr_lookup(f->fctx, key);
	pthread_mutex_unlock(&f->fctx->lock);
	return mr;
}

static void *addr(struct ibv_mr *mr, struct ibv_pd *pd, uint64_t iova,
		  uint64_t len, unsigned int access)
{
	return fk_mr_addr(to_fmr(mr), to_fpd(pd), iova, len, access);
}

/* Every MR gets its own key; rkey == lkey iff some remote access (rxe). */
static void keys_unique(void **state)
{
	struct fx *f = *state;
	struct ibv_mr *mr[NMR];
	int i, j;

	for (i = 0; i < NMR; i++)
		mr[i] = reg(f, f->pd, f->buf, BUF, (uintptr_t)f->buf,
			    i % 2 ? LW | RW : LW);
	for (i = 0; i < NMR; i++) {
		assert_int_not_equal(mr[i]->lkey, 0);
		assert_int_equal(mr[i]->rkey, i % 2 ? mr[i]->lkey : 0);
		for (j = 0; j < i; j++)
			assert_int_not_equal(mr[i]->lkey, mr[j]->lkey);
	}
	for (i = 0; i < NMR; i++)
		assert_int_equal(f->o->dereg_mr(mr[i]), 0);
}

static void rkey_by_access(void **state)
{
	struct fx *f = *state;
	static const unsigned int acc[] = {
		0, LW, RR, LW | RW, LW | RA, LW | RW | RR | RA
	};
	size_t i;

	for (i = 0; i < sizeof(acc) / sizeof(acc[0]); i++) {
		struct ibv_mr *mr =
			reg(f, f->pd, f->buf, 100, (uintptr_t)f->buf, acc[i]);

		assert_int_equal(mr->rkey,
				 acc[i] & (RR | RW | RA) ? mr->lkey : 0);
		assert_ptr_equal(mr->addr, f->buf);
		assert_int_equal(mr->length, 100);
		assert_ptr_equal(mr->pd, f->pd);
		assert_ptr_equal(mr->context, f->ctx);
		assert_int_equal(f->o->dereg_mr(mr), 0);
	}
}

/* The key table: growth past its first size, removal in any order. */
static void lookup_table(void **state)
{
	struct fx *f = *state;
	struct ibv_mr *mr[NMR];
	uint32_t gone[NMR];
	int i, ngone = 0;

	for (i = 0; i < NMR; i++)
		mr[i] = reg(f, f->pd, f->buf + i, 16, (uintptr_t)f->buf + i,
			    LW | RR);
	for (i = 0; i < NMR; i++)
		assert_ptr_equal(lookup(f, mr[i]->lkey), to_fmr(mr[i]));
	/* remove a scattered third, then every other key still resolves */
	for (i = 0; i < NMR; i += 3) {
		gone[ngone++] = mr[i]->lkey;
		assert_int_equal(f->o->dereg_mr(mr[i]), 0);
		mr[i] = NULL;
	}
	for (i = 0; i < NMR; i++)
		if (mr[i])
			assert_ptr_equal(lookup(f, mr[i]->lkey), to_fmr(mr[i]));
	for (i = 0; i < ngone; i++)
		assert_null(lookup(f, gone[i]));
	/* a stale key: right index, other low byte */
	assert_null(lookup(f, mr[1]->lkey ^ 0x01));
	assert_null(lookup(f, 0));
	assert_null(lookup(f, 0xffffffff));
	for (i = 0; i < NMR; i++)
		if (mr[i])
			assert_int_equal(f->o->dereg_mr(mr[i]), 0);
}

static void bounds(void **state)
{
	struct fx *f = *state;
	uint64_t base = (uintptr_t)f->buf + 8;
	struct ibv_mr *mr = reg(f, f->pd, f->buf + 8, 1000, base, LW | RW | RR);
	uint8_t *p = f->buf + 8;

	/* inside */
	assert_ptr_equal(addr(mr, f->pd, base, 1, RR), p);
	assert_ptr_equal(addr(mr, f->pd, base + 10, 100, RW), p + 10);
	assert_ptr_equal(addr(mr, f->pd, base, 1000, LW), p);
	/* touching the end */
	assert_ptr_equal(addr(mr, f->pd, base + 999, 1, RR), p + 999);
	assert_ptr_equal(addr(mr, f->pd, base + 1000, 0, RR), p + 1000);
	/* one past the end, one before the start */
	assert_null(addr(mr, f->pd, base + 1000, 1, RR));
	assert_null(addr(mr, f->pd, base + 1, 1000, RR));
	assert_null(addr(mr, f->pd, base - 1, 1, RR));
	assert_null(addr(mr, f->pd, base, 1001, RR));
	/* iova + len wraps around */
	assert_null(addr(mr, f->pd, base + 10, UINT64_MAX - 5, RR));
	assert_null(addr(mr, f->pd, UINT64_MAX - 1, 4, RR));
	assert_null(addr(mr, f->pd, 0, UINT64_MAX, RR));
	assert_int_equal(f->o->dereg_mr(mr), 0);
}

static void pd_and_access(void **state)
{
	struct fx *f = *state;
	uint64_t base = (uintptr_t)f->buf;
	struct ibv_mr *rr = reg(f, f->pd, f->buf, 4096, base, RR);
	struct ibv_mr *lw = reg(f, f->pd, f->buf, 4096, base, LW);

	/* wrong PD */
	assert_null(addr(rr, f->pd2, base, 8, RR));
	assert_null(addr(rr, f->pd2, base, 8, 0));
	/* missing access bits */
	assert_non_null(addr(rr, f->pd, base, 8, 0));
	assert_non_null(addr(rr, f->pd, base, 8, RR));
	assert_null(addr(rr, f->pd, base, 8, RW));
	assert_null(addr(rr, f->pd, base, 8, LW));
	assert_null(addr(rr, f->pd, base, 8, RA));
	assert_null(addr(rr, f->pd, base, 8, RR | RW));
	assert_non_null(addr(lw, f->pd, base, 8, LW));
	assert_null(addr(lw, f->pd, base, 8, RR));
	assert_int_equal(f->o->dereg_mr(rr), 0);
	assert_int_equal(f->o->dereg_mr(lw), 0);
}

/* reg_mr_iova: the keys cover [iova, iova + length), not the address. */
static void iova_not_addr(void **state)
{
	struct fx *f = *state;
	uint64_t iova = 0x7f0000000000ull + 0x123; /* same page offset */
	struct ibv_mr *mr = reg(f, f->pd, f->buf + 0x123, 5000, iova, LW | RW);

	assert_ptr_equal(mr->addr, f->buf + 0x123);
	assert_ptr_equal(addr(mr, f->pd, iova, 5000, RW), f->buf + 0x123);
	assert_ptr_equal(addr(mr, f->pd, iova + 4999, 1, RW),
			 f->buf + 0x123 + 4999);
	assert_null(addr(mr, f->pd, iova + 5000, 1, RW));
	assert_null(addr(mr, f->pd, iova - 1, 1, RW));
	/* the virtual address is not a valid iova of this MR */
	assert_null(addr(mr, f->pd, (uintptr_t)f->buf + 0x123, 1, RW));
	assert_ptr_equal(lookup(f, mr->rkey), to_fmr(mr));
	assert_int_equal(f->o->dereg_mr(mr), 0);

	/* a different page offset is refused (the kernel's umem rule) */
	errno = 0;
	assert_null(f->o->reg_mr(f->pd, f->buf, 4096, 0x100010, LW));
	assert_int_equal(errno, EINVAL);
}

static void dealloc_busy(void **state)
{
	struct fx *f = *state;
	struct ibv_mr *mr = reg(f, f->pd2, f->buf, 64, (uintptr_t)f->buf, LW);

	assert_int_equal(f->o->dealloc_pd(f->pd2), EBUSY);
	assert_int_equal(f->o->dereg_mr(mr), 0);
	assert_int_equal(f->o->dealloc_pd(f->pd2), 0);
	f->pd2 = f->o->alloc_pd(f->ctx);
	assert_non_null(f->pd2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(keys_unique, setup, teardown),
		cmocka_unit_test_setup_teardown(rkey_by_access, setup,
						teardown),
		cmocka_unit_test_setup_teardown(lookup_table, setup, teardown),
		cmocka_unit_test_setup_teardown(bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(pd_and_access, setup, teardown),
		cmocka_unit_test_setup_teardown(iova_not_addr, setup, teardown),
		cmocka_unit_test_setup_teardown(dealloc_busy, setup, teardown),
	};

	return cmocka_run_group_tests_name("mr", tests, NULL, NULL);
}
