// SPDX-License-Identifier: MIT
/*
 * QPs by real QPN, so that poll_cq can find the QP a completion names
 * (its receive log).  A virt-ids map takes the QPN to a slot of a fixed
 * array of QP pointers; both are read without a lock.  A CQ caches its last
 * lookup in one word; destroying a QP clears the caches of its CQs and waits
 * for their pollers, so no poller keeps a stale slot.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#include "shim.h"

#define QPTAB_MAX 65536u
#define QPTAB_VAL 0x80000000u /* QPNs are 24 bits: a key never maps to itself */

static struct isn_qp *_Atomic qptab[QPTAB_MAX];
static struct isn_vid_map qptab_map;
static pthread_mutex_t qptab_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t qptab_next; /* slots below it were used once */
static uint32_t qptab_free[QPTAB_MAX];
static uint32_t qptab_nfree;

static pthread_once_t qptab_once = PTHREAD_ONCE_INIT;

static void qptab_init(void)
{
	isn_vid_map_init(&qptab_map);
}

int isn_qptab_add(struct isn_qp *qp)
{
	uint32_t idx;
	int ret = 0;

	pthread_once(&qptab_once, qptab_init);
	pthread_mutex_lock(&qptab_lock);
	if (qptab_nfree)
		idx = qptab_free[--qptab_nfree];
	else if (qptab_next < QPTAB_MAX)
		idx = qptab_next++;
	else
		ret = ENOMEM;
	if (!ret)
		ret = -isn_vid_map_set(&qptab_map, qp->real->qp_num,
				       idx | QPTAB_VAL);
	if (!ret) {
		qp->tab_idx = idx;
		qp->tab_qpn = qp->real->qp_num;
		atomic_store(&qptab[idx], qp);
	} else if (ret != ENOMEM || qptab_next < QPTAB_MAX) {
		qptab_free[qptab_nfree++] = idx;
	}
	pthread_mutex_unlock(&qptab_lock);
	return ret;
}

void isn_qptab_del(struct isn_qp *qp)
{
	pthread_mutex_lock(&qptab_lock);
	if (atomic_load(&qptab[qp->tab_idx]) == qp) {
		isn_vid_map_del(&qptab_map, qp->tab_qpn);
		atomic_store(&qptab[qp->tab_idx], NULL);
		qptab_free[qptab_nfree++] = qp->tab_idx;
	}
	pthread_mutex_unlock(&qptab_lock);
}

struct isn_qp *isn_qptab_find(uint32_t real_qpn, uint32_t *idx_p)
{
	uint32_t v;

	if (!isn_vid_map_get(&qptab_map, real_qpn, &v))
		return NULL;
	*idx_p = v & ~QPTAB_VAL;
	return atomic_load_explicit(&qptab[*idx_p], memory_order_acquire);
}

struct isn_qp *isn_qptab_at(uint32_t idx)
{
	return atomic_load_explicit(&qptab[idx], memory_order_acquire);
}

void isn_cq_wait_users(struct isn_cq *cq)
{
	while (atomic_load(&cq->users))
		sched_yield();
}

void isn_cq_forget_qps(struct isn_cq *cq)
{
	atomic_store(&cq->qp_cache, 0);
	isn_cq_wait_users(cq);
	/* a poller that looked up before the QP left the map may have cached
	 * it meanwhile; later ones cannot find it */
	atomic_store(&cq->qp_cache, 0);
}
