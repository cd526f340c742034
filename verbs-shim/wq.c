// SPDX-License-Identifier: MIT
/*
 * Logs of posted WRs: allocation and the parts too large to inline.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#include "wq.h"

int isn_wq_init(struct isn_wq *wq, uint32_t depth, uint32_t max_sge)
{
	uint32_t slots = 2;
	size_t esz;

	while (slots < depth && slots < (1u << 30))
		slots <<= 1;
	esz = sizeof(struct isn_wq_ent) +
	      (size_t)max_sge * sizeof(struct ibv_sge);
	memset(wq, 0, sizeof(*wq));
	wq->ents = calloc(slots, esz);
	if (!wq->ents)
		return ENOMEM;
	wq->mask = slots - 1;
	wq->ent_size = (uint32_t)esz;
	wq->max_sge = max_sge;
	return 0;
}

void isn_wq_free(struct isn_wq *wq)
{
	free(wq->ents);
	wq->ents = NULL;
}

struct isn_wq_ent *isn_wq_consume(struct isn_wq *wq)
{
	uint64_t t = atomic_load_explicit(&wq->tail, memory_order_relaxed);
	uint64_t head = atomic_load_explicit(&wq->head, memory_order_acquire);
	uint64_t n;

	do {
		for (n = t; n < head; n++)
			if (atomic_load_explicit(&isn_wq_ent(wq, n)->stamp,
						 memory_order_acquire) !=
			    ((n + 1) | ISN_WQ_VOID))
				break;
		if (n >= head)
			return NULL;
	} while (!atomic_compare_exchange_weak_explicit(&wq->tail, &t, n + 1,
							memory_order_relaxed,
							memory_order_relaxed));
	return isn_wq_ent(wq, n);
}

size_t isn_sge_copy(const struct ibv_sge *sge, uint32_t nsge, void *buf,
		    size_t len, bool to_buf)
{
	size_t done = 0, l;
	uint32_t i;

	for (i = 0; i < nsge && done < len; i++) {
		void *p = (void *)(uintptr_t)sge[i].addr;

		l = sge[i].length < len - done ? sge[i].length : len - done;
		if (to_buf)
			memcpy((char *)buf + done, p, l);
		else
			memcpy(p, (char *)buf + done, l);
		done += l;
	}
	return done;
}

void isn_wq_settle(struct isn_wq *wq)
{
	uint64_t head = atomic_load(&wq->head), seq;
	uint64_t from = head > wq->mask + 1 ? head - wq->mask - 1 : 0;

	for (seq = from; seq < head; seq++) {
		struct isn_wq_ent *e = isn_wq_ent(wq, seq);

		/* a later lap overwrote it: that one is what counts */
		while ((atomic_load_explicit(&e->stamp, memory_order_acquire) &
			~ISN_WQ_VOID) < seq + 1)
			sched_yield();
	}
}

void isn_sq_settle(struct isn_sq_gate *g)
{
	uint64_t begun = atomic_load(&g->begun);

	while (atomic_load(&g->done) < begun)
		sched_yield();
}

uint64_t isn_sq_posted(struct isn_sq_gate *g)
{
	uint64_t d, b, u;

	/* done read first and equal to begun: every poster counted in begun
	 * had left, its unposted count made; begun unchanged after unposted
	 * is read: unposted counts no later poster */
	for (;; sched_yield()) {
		d = atomic_load(&g->done);
		b = atomic_load(&g->begun);
		if (d != b)
			continue;
		u = atomic_load(&g->unposted);
		if (atomic_load(&g->begun) == b)
			return b - u;
	}
}
