/* SPDX-License-Identifier: MIT */
/*
 * Checkpoint internals shared by verbs-shim/, drain/ and rebuild/ (design
 * §6).  The handlers of include/ibsnap/ckpt.h run the phases over every
 * resource kind in dependency order; each kind has its drain and release
 * half in drain/<kind>.c and its rebuild half in rebuild/<kind>.c.
 *
 * While a checkpoint is under way the data path leaves its fast path
 * (isn_slow) and calls the hooks below: posts are queued, CQs are polled
 * under their lock, saved completions are handed back first.
 *
 * Return convention inside: 0 or -errno; ISN_AGAIN asks the driver to call
 * again (a drain still waiting).
 */
#ifndef IBSNAP_DRAIN_CKPT_H
#define IBSNAP_DRAIN_CKPT_H

#include "ibsnap/ckpt.h"
#include "../verbs-shim/shim.h"

#define ISN_AGAIN 1
/* wr_id of a drain marker */
#define ISN_MARKER_WRID 0x1b5a9c0ffee0ca7eull

/* ---- hooks of the data path (isn_slow set) ---- */

/* Posts made while a queue is held: queued, success (pending.c). */
int isn_ckpt_post_send(struct isn_qp *qp, struct ibv_send_wr *wr,
		       struct ibv_send_wr **bad_wr);
int isn_ckpt_post_recv(struct isn_qp *qp, struct isn_srq *srq,
		       struct ibv_recv_wr *wr, struct ibv_recv_wr **bad_wr);
/* poll_cq / req_notify_cq / the ibv_cq_ex iterator under the CQ's lock,
 * saved completions first (drain/cq.c). */
int isn_ckpt_poll(struct isn_cq *cq, int n, struct ibv_wc *wc);
int isn_ckpt_req_notify(struct isn_cq *cq, int solicited_only);
int isn_ckpt_start_poll(struct isn_cq *cq, struct ibv_poll_cq_attr *attr);
int isn_ckpt_next_poll(struct isn_cq *cq);
void isn_ckpt_end_poll(struct isn_cq *cq);

/* ---- the checkpoint's state ---- */

enum isn_ckpt_stage {
	ISN_CK_RUNNING = 0,
	ISN_CK_QUIESCED,
	ISN_CK_DRAINED,
	ISN_CK_RELEASED,
	ISN_CK_REBUILT,
};

struct isn_ck_state {
	enum isn_ckpt_stage stage;
	unsigned int epoch; /* checkpoints done */
	uint64_t drain_ns; /* how long drain waits for markers */
	int saved_cqs; /* CQs holding saved completions */
};

extern struct isn_ck_state isn_ckst;
/* Serializes the phases and the pending queue. */
extern pthread_mutex_t isn_ckst_lock;

/* Checkpoint state of one QP (drain/qp.c). */
struct isn_qp_ckpt {
	bool marker_posted, marker_done;
	bool flushing; /* moved to ERR by release: its flushes are ours */
	uint32_t flushed_sends;
	enum ibv_wc_status marker_status;
	enum ibv_qp_state state; /* when released */
	uint32_t peer_consumed; /* the peer's receives our messages took */
	bool peer_known;
	uint64_t repost_from, repost_to; /* send log range to post again */
	uint32_t new_qpn; /* real QPN of the rebuilt QP */
};

/* drain/cq.c */
void isn_cq_saved_push(struct isn_cq *cq, const struct ibv_wc *wc);
/* Poll @cq's backend CQ once into its saved completions (lock held);
 * the number polled or a negative value. */
int isn_cq_drain_once(struct isn_cq *cq);
/* Completions of the backend that are the checkpoint's own (markers,
 * flushes it caused) are consumed here: true if @wc was one. */
bool isn_ckpt_own_wc(struct isn_cq *cq, const struct ibv_wc *wc);
void isn_ckpt_saved_sync(void);

/* drain/pending.c: release what the holds queued, in order */
int isn_pending_flush(void);
void isn_pending_free(void);

/* the time now, ns */
uint64_t isn_now_ns(void);

#endif /* IBSNAP_DRAIN_CKPT_H */
