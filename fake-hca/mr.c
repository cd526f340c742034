/* SPDX-License-Identifier: MIT */
/*
 * Protection domains and memory regions.
 *
 * reg_mr checks what the kernel checks for rxe (ib_check_mr_access,
 * ib_umem_get, the uverbs page-offset rule).  The lkey comes from the node's
 * key allocator; the rkey equals it when the MR allows any remote access and
 * is 0 otherwise, as rxe does.  Keys are found by their index (key >> 8) in
 * an open-addressing table, then compared whole.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fake.h"

#define FK_ACCESS_REMOTE                                    \
	(IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE | \
	 IBV_ACCESS_REMOTE_ATOMIC)
/* Optional bits (IBV_ACCESS_RELAXED_ORDERING and up) are ignored. */
#define FK_ACCESS_OPTIONAL 0x3ff00000u
#define FK_ACCESS_OK                                                      \
	(IBV_ACCESS_LOCAL_WRITE | FK_ACCESS_REMOTE | IBV_ACCESS_MW_BIND | \
	 IBV_ACCESS_ZERO_BASED | IBV_ACCESS_HUGETLB | FK_ACCESS_OPTIONAL)
#define FK_MINCORE_CHUNK 4096 /* pages per mincore call */

static bool pd_busy(struct fk_context *ctx, struct ibv_pd *pd)
{
	struct fk_list *pos;

	fk_list_for_each(pos, &ctx->mrs)
	{
		if (container_of(pos, struct fk_mr, entry)->ibmr.pd == pd)
			return true;
	}
	fk_list_for_each(pos, &ctx->qps)
	{
		if (container_of(pos, struct fk_qp, entry)->ibqp.pd == pd)
			return true;
	}
	fk_list_for_each(pos, &ctx->srqs)
	{
		if (container_of(pos, struct fk_srq, entry)->ibsrq.pd == pd)
			return true;
	}
	fk_list_for_each(pos, &ctx->ahs)
	{
		if (container_of(pos, struct fk_ah, entry)->ibah.pd == pd)
			return true;
	}
	return false;
}

struct ibv_pd *fk_alloc_pd(struct ibv_context *context)
{
	struct fk_context *ctx = to_fctx(context);
	static atomic_uint handles;
	struct fk_pd *pd = calloc(1, sizeof(*pd));

	if (!pd) {
		errno = ENOMEM;
		return NULL;
	}
	pd->ibpd.context = context;
	pd->ibpd.handle = atomic_fetch_add(&handles, 1);
	pthread_mutex_lock(&ctx->lock);
	fk_list_add(&ctx->pds, &pd->entry);
	pthread_mutex_unlock(&ctx->lock);
	return &pd->ibpd;
}

int fk_dealloc_pd(struct ibv_pd *ibpd)
{
	struct fk_context *ctx = to_fctx(ibpd->context);
	struct fk_pd *pd = to_fpd(ibpd);

	pthread_mutex_lock(&ctx->lock);
	if (pd_busy(ctx, ibpd)) {
		pthread_mutex_unlock(&ctx->lock);
		return EBUSY;
	}
	fk_list_del(&pd->entry);
	pthread_mutex_unlock(&ctx->lock);
	free(pd);
	return 0;
}

/* ---- key table ---- */

static inline uint32_t key_slot(uint32_t key, uint32_t size)
{
	uint32_t h = (key >> 8) * 0x9e3779b1u;

	return (h ^ h >> 16) & (size - 1);
}

struct fk_mr *fk_mr_lookup(struct fk_context *ctx, uint32_t key)
{
	uint32_t mask = ctx->mr_tab_size - 1, i = key_slot(key, mask + 1);
	struct fk_mr *mr;

	while ((mr = ctx->mr_tab[i])) {
		if (mr->ibmr.lkey == key)
			return mr;
		i = (i + 1) & mask;
	}
	return NULL;
}

static void mr_tab_put(struct fk_mr **tab, uint32_t size, struct fk_mr *mr)
{
	uint32_t i = key_slot(mr->ibmr.lkey, size);

	while (tab[i])
		i = (i + 1) & (size - 1);
	tab[i] = mr;
}

int fk_mr_tab_insert(struct fk_context *ctx, struct fk_mr *mr)
{
	if ((ctx->mr_count + 1) * 2 > ctx->mr_tab_size) {
		uint32_t size = ctx->mr_tab_size * 2, i;
		struct fk_mr **tab = calloc(size, sizeof(*tab));

		if (!tab)
			return -ENOMEM;
		for (i = 0; i < ctx->mr_tab_size; i++)
			if (ctx->mr_tab[i])
				mr_tab_put(tab, size, ctx->mr_tab[i]);
		free(ctx->mr_tab);
		ctx->mr_tab = tab;
		ctx->mr_tab_size = size;
	}
	mr_tab_put(ctx->mr_tab, ctx->mr_tab_size, mr);
	ctx->mr_count++;
	return 0;
}

/* Backward-shift deletion keeps probe chains whole without tombstones. */
void fk_mr_tab_remove(struct fk_context *ctx, struct fk_mr *mr)
{
	uint32_t mask = ctx->mr_tab_size - 1;
	uint32_t i = key_slot(mr->ibmr.lkey, mask + 1), j;

	while (ctx->mr_tab[i] != mr)
		i = (i + 1) & mask;
	for (j = (i + 1) & mask; ctx->mr_tab[j]; j = (j + 1) & mask) {
		uint32_t home = key_slot(ctx->mr_tab[j]->ibmr.lkey, mask + 1);

		/* move j into the hole at i unless its home lies in (i, j] */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			ctx->mr_tab[i] = ctx->mr_tab[j];
			i = j;
		}
	}
	ctx->mr_tab[i] = NULL;
	ctx->mr_count--;
}

/* ---- memory regions ---- */

/* Every page of [addr, addr + len) mapped?  (ib_umem_get: EFAULT if not) */
static bool range_mapped(uintptr_t addr, size_t len, size_t page)
{
	unsigned char vec[FK_MINCORE_CHUNK];
	uintptr_t start = addr & ~(page - 1);
	uintptr_t end = (addr + len + page - 1) & ~(page - 1);

	while (start < end) {
		size_t n = (end - start) / page;

		if (n > FK_MINCORE_CHUNK)
			n = FK_MINCORE_CHUNK;
		if (mincore((void *)start, n * page, vec))
			return false;
		start += n * page;
	}
	return true;
}

/*
 * Every page of [addr, addr + len) writable?  ib_umem_get pins with
 * FOLL_WRITE when the access lets anything write (ib_access_writable):
 * EFAULT on a read-only mapping.  Read from /proc/self/maps (control path).
 */
static bool range_writable(uintptr_t addr, size_t len)
{
	FILE *f = fopen("/proc/self/maps", "re");
	uintptr_t lo, hi, next = addr, end = addr + len;
	char perm[5], line[512];

	if (!f)
		return true;
	while (next < end && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %4s", &lo, &hi,
			   perm) != 3 ||
		    hi <= next || lo > next)
			continue;
		if (perm[1] != 'w')
			break;
		next = hi;
	}
	fclose(f);
	return next >= end;
}

static int check_mr(void *addr, size_t length, uint64_t iova,
		    unsigned int access)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uintptr_t a = (uintptr_t)addr;

	if (access & ~FK_ACCESS_OK)
		return EINVAL; /* unknown, or ON_DEMAND: rxe has no ODP */
	if ((access & (IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_ATOMIC)) &&
	    !(access & IBV_ACCESS_LOCAL_WRITE))
		return EINVAL;
	if (!length || a + length < a || iova + length < iova)
		return EINVAL;
	if ((length + (a & (page - 1)) + page - 1) / page > UINT32_MAX)
		return EINVAL;
	if ((a & (page - 1)) != (iova & (page - 1)))
		return EINVAL;
	if (!range_mapped(a, length, page))
		return EFAULT;
	if ((access & (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
		       IBV_ACCESS_REMOTE_ATOMIC | IBV_ACCESS_MW_BIND)) &&
	    !range_writable(a, length))
		return EFAULT;
	return 0;
}

struct ibv_mr *fk_reg_mr(struct ibv_pd *pd, void *addr, size_t length,
			 uint64_t iova, unsigned int access)
{
	struct fk_context *ctx = to_fctx(pd->context);
	struct fk_mr *mr;
	uint32_t key;
	int err;

	err = check_mr(addr, length, iova, access);
	if (err) {
		fk_dbg("reg_mr %p+%zu access 0x%x: %s", addr, length, access,
		       strerror(err));
		errno = err;
		return NULL;
	}
	mr = calloc(1, sizeof(*mr));
	if (!mr) {
		errno = ENOMEM;
		return NULL;
	}
	key = fab_alloc_key(ctx->port);
	mr->ibmr.context = pd->context;
	mr->ibmr.pd = pd;
	mr->ibmr.addr = addr;
	mr->ibmr.length = length;
	mr->ibmr.handle = key;
	mr->ibmr.lkey = key;
	mr->ibmr.rkey = (access & FK_ACCESS_REMOTE) ? key : 0;
	mr->iova = iova;
	mr->access = access & ~FK_ACCESS_OPTIONAL;
	pthread_mutex_lock(&ctx->lock);
	err = -fk_mr_tab_insert(ctx, mr);
	if (!err)
		fk_list_add(&ctx->mrs, &mr->entry);
	pthread_mutex_unlock(&ctx->lock);
	if (err) {
		free(mr);
		errno = err;
		return NULL;
	}
	return &mr->ibmr;
}

int fk_dereg_mr(struct ibv_mr *ibmr)
{
	struct fk_context *ctx = to_fctx(ibmr->context);
	struct fk_mr *mr = to_fmr(ibmr);

	pthread_mutex_lock(&ctx->lock);
	fk_mr_tab_remove(ctx, mr);
	fk_list_del(&mr->entry);
	pthread_mutex_unlock(&ctx->lock);
	free(mr);
	return 0;
}

void *fk_mr_addr(struct fk_mr *mr, struct fk_pd *pd, uint64_t iova,
		 uint64_t len, unsigned int access)
{
	uint64_t off = iova - mr->iova;

	if (mr->ibmr.pd != &pd->ibpd || (mr->access & access) != access)
		return NULL;
	if (iova < mr->iova || len > mr->ibmr.length ||
	    off > mr->ibmr.length - len)
		return NULL;
	return (uint8_t *)mr->ibmr.addr + off;
}
