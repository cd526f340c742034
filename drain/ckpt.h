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
	uint64_t drain_ns; /* how long drain waits for markers, per round */
	int saved_cqs; /* CQs holding saved completions */
	_Atomic int markers_out; /* markers posted and not completed */
	bool new_incarnation; /* of the rebuild under way: restored */
};

extern struct isn_ck_state isn_ckst;

/*
 * One resource kind: its halves of the phases, each a loop over the kind's
 * objects.  The driver calls them kind by kind in dependency order
 * (rebuild, connect) or its reverse (release).  NULL: nothing to do.
 */
struct isn_ck_kind {
	const char *name;
	int (*release)(void);
	int (*rebuild)(void); /* re-create, before the ID exchange */
	int (*connect)(void); /* after it: peers' new IDs are known */
};

extern const struct isn_ck_kind isn_ck_ctx, isn_ck_pd, isn_ck_mr,
	isn_ck_channel, isn_ck_cq, isn_ck_srq, isn_ck_qp, isn_ck_ah, isn_ck_cm;

/* Checkpoint state of one QP (drain/qp.c). */
struct isn_qp_ckpt {
	bool marker_posted, marker_done;
	/* markers on its send queue not completed yet: this checkpoint's and
	 * any an earlier one left when its drain timed out (completions come
	 * in order: the last one is this checkpoint's) */
	_Atomic uint32_t markers_pending;
	bool flushing; /* moved to ERR by the checkpoint: its flushes are ours */
	enum ibv_wc_status marker_status;
	enum ibv_qp_state state; /* the backend QP's, when drained */
	uint64_t drained_at; /* isn_sq_posted() when its last marker was posted */
	struct ibv_ah *self_ah; /* UD marker: to itself, a wrong Q_Key */
	struct isn_early *early; /* shim receive buffers (drain/early.c) */
};

#define isn_for_each_obj(type, var, kind)                        \
	for (struct isn_list *isn_e_ = isn_objs[kind].next;      \
	     isn_e_ != &isn_objs[kind] &&                        \
	     ((var) = isn_container_of(isn_e_, type, entry), 1); \
	     isn_e_ = isn_e_->next)

/* drain/cq.c */
void isn_cq_saved_push(struct isn_cq *cq, const struct ibv_wc *wc);
/* Poll every CQ into its saved completions until @done() (NULL: until
 * a round finds every CQ empty) or @ns pass (0: no limit); 0 or
 * -ETIMEDOUT. */
int isn_cqs_drain(bool (*done)(void), uint64_t ns);
/* A saved completion makes an armed CQ's channel ready (rebuild/cq.c). */
void isn_cq_raise_event(struct isn_cq *cq);
/* Poll @cq's backend CQ once into its saved completions (lock held);
 * the number polled or a negative value. */
int isn_cq_drain_once(struct isn_cq *cq);
/* Completions of the backend that are the checkpoint's own (markers,
 * flushes it caused) are consumed here: true if @wc was one. */
bool isn_ckpt_own_wc(struct isn_cq *cq, struct ibv_wc *wc);
/* Polls may leave the checkpoint's path if nothing out needs it any more
 * (markers, sends waiting for them, shim receive buffers). */
void isn_ckpt_poll_relax(void);
void isn_ckpt_saved_sync(void);

/* rebuild/cred.c: device writes other threads cannot do after a restore
 * (EACCES) are done by a thread the rebuilding thread starts */
void isn_cred_fd_add(int fd);
void isn_cred_fd_del(int fd);
int isn_cred_start(bool restored);
void isn_cred_stop(void);

/* drain/pending.c: release what the holds queued, in order; sends that a
 * timed-out drain's marker keeps out of a full send queue are released by
 * isn_pending_kick() once the marker has completed */
int isn_pending_flush(void);
void isn_pending_kick(void);
bool isn_pending_defer(struct isn_qp *qp, struct ibv_send_wr *wr);
bool isn_pending_waits(void);
void isn_pending_free(void);

/* the time now, ns */
uint64_t isn_now_ns(void);

/* drain/qp.c */
int isn_qps_post_markers(void);
bool isn_qps_markers_done(void);
/* The drain's exchange: stuck QPs reported, their peers' receive queues
 * get shim buffers (drain/early.c). */
int isn_qps_drain_exchange(struct isn_exchange *x);
void isn_qp_ckpt_free(struct isn_qp *qp);

/* drain/early.c: messages an RNR held up, caught in shim buffers */
struct isn_early;
int isn_early_post(struct isn_qp *qp, struct isn_srq *srq);
/* true if @wc is a shim buffer's completion the shim keeps; a buffer's
 * completion that a held receive of the program takes is rewritten into
 * that receive's (false). */
bool isn_early_own_wc(struct isn_qp *qp, struct ibv_wc *wc);
void isn_early_release(void);
/* Shim buffers are posted on some queue (a failed checkpoint left them). */
bool isn_early_out(void);
void isn_early_note_live(void);
/* Satisfy receive @wr from the oldest early message of its queue (a
 * completion is saved), or hold it for a shim buffer still out (it is
 * logged as posted): true; false if neither (post it). */
bool isn_early_take(struct isn_qp *qp, struct isn_srq *srq,
		    const struct ibv_recv_wr *wr);
bool isn_early_pending(struct isn_qp *qp, struct isn_srq *srq);

/* rebuild/<kind>.c: the rebuild halves of the kinds */
int isn_ctx_rebuild(void);
int isn_pd_rebuild(void);
int isn_mr_rebuild(void);
int isn_channel_rebuild(void);
int isn_cq_rebuild(void);
int isn_cq_connect(void);
int isn_srq_rebuild(void);
int isn_qp_rebuild(void);
int isn_qp_connect(void);
int isn_ah_connect(void);

/* rebuild/ids.c: one exchange of {old virtual -> new real} */
int isn_ids_exchange(struct isn_exchange *x);
/* rebuild/repost.c: post the logged receives of @wq (@qp's receive queue,
 * or @srq) again, in order, the held-up messages taking the oldest */
int isn_wq_repost(struct isn_qp *qp, struct isn_srq *srq, struct isn_wq *wq);
/* rebuild/qp.c, rebuild/srq.c: post the logged receives again */
int isn_qps_repost(void);
int isn_srqs_repost(void);

#endif /* IBSNAP_DRAIN_CKPT_H */
