/* SPDX-License-Identifier: MIT */
/*
 * Logs of posted receive WRs (design §4), kept so that a checkpoint knows
 * which receives are still posted at the HCA and posts them again after a
 * rebuild.
 *
 * One ring per receive queue and SRQ.  A poster reserves a slot with one
 * atomic add on head (which also orders it against a checkpoint holding the
 * queue, see isn_slow), copies the WR into it, posts, and then stamps the
 * slot: seq + 1 when the backend took it, with ISN_WQ_VOID when it did not
 * (or the shim queued it instead).  Receive completions advance tail as the
 * application polls them (wc.c): a receive queue and an SRQ hand out their
 * WQEs in the order they were posted, so the stamped slots of [tail, head)
 * are what is still posted.
 *
 * Send queues keep no log, only two counters (struct isn_sq_gate): a drain
 * marker's completion proves every earlier WR complete, and sends an RNR
 * holds up are completed into the receiver's shim buffers, never posted
 * twice (drain/qp.c).
 *
 * Nothing here locks, allocates or calls the kernel.  Several threads may
 * post to one queue; the ring then holds their WRs in reservation order,
 * which may differ from the order the backend saw them (documented).
 */
#ifndef IBSNAP_WQ_H
#define IBSNAP_WQ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <infiniband/verbs.h>

#define ISN_WQ_VOID (1ull << 63)

struct isn_wq_ent {
	uint64_t wr_id;
	_Atomic uint64_t
		stamp; /* seq + 1 when done, | ISN_WQ_VOID if unposted */
	uint32_t num_sge;
	uint32_t pad;
	struct ibv_sge sge[]; /* max_sge */
};

struct isn_wq {
	_Atomic uint64_t head; /* WRs reserved since creation */
	_Atomic uint64_t tail; /* WQEs consumed (polled) */
	uint32_t mask; /* slots - 1 */
	uint32_t ent_size;
	uint32_t max_sge;
	char *ents;
};

/*
 * A send queue's handshake with a checkpoint: a poster counts itself in
 * begun before it reads isn_slow and in done after its post returned, so a
 * quiesce that sets the hold and then waits for done to reach begun knows
 * every send that reached the backend.  A poster that reached nothing (it
 * found the queue held, or the backend refused its whole list) counts
 * itself in unposted too, before done: begun - unposted changes only when
 * a WR reached the backend's send queue (drain/qp.c: is a marker needed?).
 */
struct isn_sq_gate {
	_Atomic uint64_t begun, done, unposted;
};

/* Slots for at least @depth WRs of @max_sge SGEs; 0 or ENOMEM. */
int isn_wq_init(struct isn_wq *wq, uint32_t depth, uint32_t max_sge);
void isn_wq_free(struct isn_wq *wq);

static inline struct isn_wq_ent *isn_wq_ent(const struct isn_wq *wq,
					    uint64_t seq)
{
	return (struct isn_wq_ent *)(wq->ents +
				     (size_t)(seq & wq->mask) * wq->ent_size);
}

/* Reserve @n slots; the first one's sequence number. */
static inline uint64_t isn_wq_reserve(struct isn_wq *wq, uint64_t n)
{
	return atomic_fetch_add(&wq->head, n);
}

static inline void isn_wq_stamp(struct isn_wq_ent *e, uint64_t seq, bool ok)
{
	atomic_store_explicit(&e->stamp, ok ? seq + 1 : (seq + 1) | ISN_WQ_VOID,
			      memory_order_release);
}

static inline uint32_t isn_wq_nsge(const struct isn_wq *wq, int n)
{
	if (n <= 0)
		return 0;
	return (uint32_t)n < wq->max_sge ? (uint32_t)n : wq->max_sge;
}

static inline void isn_wq_log_recv(struct isn_wq_ent *e,
				   const struct isn_wq *wq,
				   const struct ibv_recv_wr *wr)
{
	uint32_t i, n = isn_wq_nsge(wq, wr->num_sge);

	e->wr_id = wr->wr_id;
	e->num_sge = n;
	for (i = 0; i < n; i++)
		e->sge[i] = wr->sg_list[i];
}

/*
 * The oldest receive still posted is consumed (a completion for it was
 * polled): advance tail past it and the unposted slots before it.  Its log
 * entry, or NULL if the log holds none.
 */
struct isn_wq_ent *isn_wq_consume(struct isn_wq *wq);

/* Copy up to @len bytes between @buf and the memory @nsge SGEs describe,
 * in order: to @buf if @to_buf, else from it.  The bytes copied. */
size_t isn_sge_copy(const struct ibv_sge *sge, uint32_t nsge, void *buf,
		    size_t len, bool to_buf);

/*
 * Wait until every slot reserved before now is stamped: afterwards no
 * thread is between its reservation and its post.  Checkpoint path only.
 */
void isn_wq_settle(struct isn_wq *wq);
/* The same for a send queue's counters. */
void isn_sq_settle(struct isn_sq_gate *g);
/* begun - unposted with no poster between its counts (wait for it): the
 * posts that reached the backend.  Checkpoint path only, queue held. */
uint64_t isn_sq_posted(struct isn_sq_gate *g);

#endif /* IBSNAP_WQ_H */
