/* SPDX-License-Identifier: MIT */
/*
 * libibsnap internals: the virtual objects handed to the application and
 * the calls between the files of verbs-shim/.
 *
 * Every virtual object embeds the ibv_* object the application sees (laid
 * out as rdma-core lays out its own: verbs_context, verbs_qp, verbs_mr, ...)
 * and points at the backend's object (->real).  An object is recognised as
 * ours through its context: a virtual context's device lies in
 * isn_devices[].  Objects that are not ours (rdma-core and providers calling
 * their own exports) are passed to rdma-core untouched.
 */
#ifndef IBSNAP_SHIM_H
#define IBSNAP_SHIM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <infiniband/verbs.h>

#include "ibsnap/hca_ops.h"
#include "../virt-ids/vid.h"
#include "wq.h"

#define ISN_EXPORT __attribute__((visibility("default")))
#define isn_likely(x) __builtin_expect(!!(x), 1)
#define isn_unlikely(x) __builtin_expect(!!(x), 0)

#define isn_container_of(ptr, type, member) \
	((type *)((char *)(ptr)-offsetof(type, member)))

/* ---- process state (init.c) ---- */

struct isn_shim {
	struct isn_hca_ops ops; /* the backend, NULL ops filled with defaults */
};

extern struct isn_shim isn_g;

/*
 * The data path's one global switch: zero in a first incarnation outside a
 * checkpoint, so post and poll take one predictable branch on it.  Posters
 * read it after reserving their log slot and pollers after entering their
 * CQ's gate (both seq_cst), so a checkpoint that sets a bit and then waits
 * for the slots to be stamped (isn_wq_settle) or the gates to empty knows
 * that nobody still uses the backend objects on the old path.
 */
enum {
	ISN_SLOW_XLATE = 1 << 0, /* IDs are remapped: translate */
	ISN_SLOW_HOLD_SEND = 1 << 1, /* quiesced: sends are queued */
	ISN_SLOW_HOLD_RECV = 1 << 2, /* released: receives are queued */
	ISN_SLOW_CKPT_POLL = 1 << 3, /* CQs are polled under their lock */
	ISN_SLOW_SAVED = 1 << 4, /* some CQ holds saved completions */
	ISN_SLOW_RECV_EARLY = 1 << 5, /* held-up messages wait for receives */
};

extern _Atomic uint32_t isn_slow;

static inline uint32_t isn_slow_get(void)
{
	return atomic_load(&isn_slow);
}

/* Set ISN_SLOW_XLATE if virt-ids has become active. */
void isn_slow_sync_xlate(void);

/* A doubly-linked list of objects (the checkpoint walks them). */
struct isn_list {
	struct isn_list *next, *prev;
};

/* Pick and load the backend once; 0 or a positive errno. */
int isn_init(void);

/* Log to stderr as "ibsnap: ..."; errno is preserved. */
void isn_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- rdma-core's own functions (symbols.c) ---- */

/* dlvsym(RTLD_NEXT, ...) falling back to libibverbs.so.1 itself; or NULL. */
void *isn_real_sym(const char *name, const char *version);

/*
 * The real @name@@@ver as a function pointer of type @type, resolved once.
 * Use only in functions whose prototype @type matches.
 */
#define ISN_REAL(type, name, ver)                                             \
	({                                                                    \
		static void *_Atomic isn_fn_;                                 \
		void *isn_p_ =                                                \
			atomic_load_explicit(&isn_fn_, memory_order_relaxed); \
		if (!isn_p_) {                                                \
			isn_p_ = isn_real_sym(name, ver);                     \
			atomic_store_explicit(&isn_fn_, isn_p_,               \
					      memory_order_relaxed);          \
		}                                                             \
		(type) isn_p_;                                                \
	})

/* ---- backends ---- */

extern const struct isn_hca_ops isn_real_ops; /* backend_real.c */
const struct isn_hca_ops *isn_fake_ops_load(void); /* backend_fake.c */
/* Devices rdma-core lists (negative: it fails); backend_real.c. */
int isn_real_num_devices(void);

/* ---- objects ---- */

#define ISN_MAX_DEVICES 32

struct isn_device {
	struct ibv_device ibdev;
	/* the rest of rdma-core's struct verbs_device, zero (sysfs NULL) */
	const void *abi_ops;
	int abi_refcount;
	void *abi_entry[2];
	void *abi_sysfs;
	uint64_t abi_core_support;

	struct ibv_device *real; /* NULL once no list holds it */
	__be64 guid;
};

extern struct isn_device isn_devices[ISN_MAX_DEVICES];

static inline struct isn_device *isn_dev_of(struct ibv_device *d)
{
	uintptr_t off = (uintptr_t)d - (uintptr_t)isn_devices;

	if (off >= sizeof(isn_devices) || off % sizeof(isn_devices[0]))
		return NULL;
	return (struct isn_device *)d;
}

struct isn_ev_watch;
struct isn_early;

#define ISN_CK_GIDS 16

struct isn_context {
	struct ibv_context *real;
	int async_wfd; /* write end of the async fd's pipe */
	struct isn_ev_watch *async_watch;
	/* port 1's virtual IDs, kept while released (drain/ctx.c) */
	union ibv_gid vgid[ISN_CK_GIDS];
	uint32_t ngid;
	uint16_t vlid;
	struct isn_list entry;
	struct verbs_context vctx; /* last: ibv_context ends it */
};

static inline struct isn_context *isn_ctx_of(struct ibv_context *c)
{
	if (!c || !isn_dev_of(c->device))
		return NULL;
	return isn_container_of(c, struct isn_context, vctx.context);
}

/* Registry of objects that events name by id (registry.c). */
enum isn_kind {
	ISN_KIND_CQ = 1,
	ISN_KIND_QP,
	ISN_KIND_SRQ,
};

struct isn_reg_node {
	struct isn_reg_node *next;
	uint64_t id;
	enum isn_kind kind;
	uint32_t comp_reported; /* CQ: completion events handed out */
	uint32_t async_reported; /* async events handed out */
};

struct isn_pd {
	struct ibv_pd ibpd;
	struct ibv_pd *real;
	struct isn_list entry;
};

struct isn_mr {
	struct ibv_mr ibmr; /* then rdma-core's verbs_mr fields */
	int mr_type;
	int access;
	struct ibv_mr *real;
	uint64_t iova;
	struct isn_list entry;
};

struct isn_channel {
	struct ibv_comp_channel ibch; /* ibch.fd: read end of a pipe of ids */
	struct ibv_comp_channel *real;
	int wfd;
	struct isn_ev_watch *watch;
	struct isn_list entry;
};

struct isn_cq_saved; /* completions drained at a checkpoint (drain/cq.c) */

struct isn_cq {
	struct ibv_cq_ex ibcq; /* an ibv_cq is a prefix of it */
	struct ibv_cq *real;
	struct ibv_cq_ex *real_ex; /* created with create_cq_ex */
	int (*poll)(struct ibv_cq *cq, int n, struct ibv_wc *wc);
	_Atomic uint32_t users; /* pollers on the fast path right now */
	bool track; /* some QP receives on it: count consumed receives */
	_Atomic uint64_t qp_cache; /* real qpn << 32 | QP table index + 1 */
	pthread_mutex_t lock; /* the slow path: checkpoint, saved completions */
	struct isn_cq_saved *saved;
	int armed; /* req_notify_cq'ed and no event since: 1, solicited: 2 */
	int cqe; /* as asked */
	int comp_vector;
	struct ibv_cq_init_attr_ex attr_ex; /* create_cq_ex's, as asked */
	bool is_ex; /* made by create_cq_ex */
	const struct ibv_wc *ex_saved; /* ibv_cq_ex: iterating saved ones */
	bool ex_locked; /* ibv_cq_ex: iterating under the lock (checkpoint) */
	bool ex_done; /* ibv_cq_ex: the saved ones ran out in next_poll */
	uint32_t cur_qpn, cur_src_qp, cur_slid; /* ibv_cq_ex: translated */
	struct isn_reg_node reg;
	struct isn_list entry;
};

struct isn_wr_batch; /* ibv_wr_* state (qp_wr.c) */
struct isn_qp_ckpt; /* checkpoint state of a QP (drain/qp.c) */

struct isn_qp {
	union { /* rdma-core's struct verbs_qp */
		struct ibv_qp qp;
		struct ibv_qp_ex qp_ex;
	};
	uint32_t comp_mask; /* VERBS_QP_EX (1) with qp_ex valid */
	void *xrcd;

	struct ibv_qp *real;
	int (*post_send)(struct ibv_qp *qp, struct ibv_send_wr *wr,
			 struct ibv_send_wr **bad_wr);
	int (*post_recv)(struct ibv_qp *qp, struct ibv_recv_wr *wr,
			 struct ibv_recv_wr **bad_wr);
	bool xlate_send; /* UD (AH unwrap), IDs to translate, a marker out */
	bool xlate_recv; /* IDs to translate */
	const struct isn_vid_peer *peer;
	struct isn_wr_batch *wrb;
	struct isn_reg_node reg;

	struct isn_sq_gate sq;
	struct isn_wq rq; /* log of posted receives (unused with an SRQ) */
	_Atomic uint64_t srq_used; /* with an SRQ: its WQEs this QP consumed */
	uint32_t tab_idx, tab_qpn; /* in the QP table (qptab.c) */
	struct ibv_qp_init_attr_ex init; /* as asked (pointers virtual) */
	struct ibv_qp_attr attr; /* every attribute the program set, virtual */
	int attr_mask;
	struct isn_qp_ckpt *ck;
	struct isn_list entry;
};

#define ISN_VERBS_QP_EX 1

struct isn_srq {
	struct ibv_srq ibsrq; /* then rdma-core's verbs_srq fields */
	uint32_t comp_mask;
	enum ibv_srq_type srq_type;
	void *xrcd;
	struct ibv_cq *cq;
	uint32_t srq_num;

	struct ibv_srq *real;
	int (*post_recv)(struct ibv_srq *srq, struct ibv_recv_wr *wr,
			 struct ibv_recv_wr **bad_wr);
	struct isn_reg_node reg;
	bool xlate; /* IDs to translate */
	struct isn_early *early; /* messages an RNR held up (drain/early.c) */
	struct isn_wq rq;
	struct ibv_srq_attr attr; /* as created, limit as last modified */
	struct isn_list entry;
};

/* An SRQ's log also holds receives consumed but not polled yet. */
#define ISN_SRQ_LOG_EXTRA 4096

struct isn_ah {
	struct ibv_ah ibah;
	struct ibv_ah *real;
	const struct isn_vid_peer *peer;
	struct ibv_ah_attr attr; /* virtual, as asked */
	struct isn_list entry;
};

/* Converters that check ownership: NULL if the object is not ours. */
#define ISN_OWNED(type, field, obj)                   \
	((obj) && isn_ctx_of((obj)->context) ?        \
		 isn_container_of(obj, type, field) : \
		 NULL)

static inline struct isn_pd *isn_pd_of(struct ibv_pd *pd)
{
	return ISN_OWNED(struct isn_pd, ibpd, pd);
}
static inline struct isn_mr *isn_mr_of(struct ibv_mr *mr)
{
	return ISN_OWNED(struct isn_mr, ibmr, mr);
}
static inline struct isn_channel *isn_channel_of(struct ibv_comp_channel *ch)
{
	return ISN_OWNED(struct isn_channel, ibch, ch);
}
static inline struct isn_cq *isn_cq_of(struct ibv_cq *cq)
{
	return ISN_OWNED(struct isn_cq, ibcq, (struct ibv_cq_ex *)cq);
}
static inline struct isn_qp *isn_qp_of(struct ibv_qp *qp)
{
	return ISN_OWNED(struct isn_qp, qp, qp);
}
static inline struct isn_srq *isn_srq_of(struct ibv_srq *srq)
{
	return ISN_OWNED(struct isn_srq, ibsrq, srq);
}
static inline struct isn_ah *isn_ah_of(struct ibv_ah *ah)
{
	return ISN_OWNED(struct isn_ah, ibah, ah);
}

/* Unchecked converters for the data path (the op pointer proves it). */
#define isn_to_cq(c) \
	isn_container_of((struct ibv_cq_ex *)(c), struct isn_cq, ibcq)
#define isn_to_qp(q) isn_container_of(q, struct isn_qp, qp)
#define isn_to_srq(s) isn_container_of(s, struct isn_srq, ibsrq)
#define isn_to_ah(a) isn_container_of(a, struct isn_ah, ibah)

/* ---- between files ---- */

/* objects.c: every live virtual object, by kind, in creation order */
enum isn_obj_kind {
	ISN_OBJ_CTX,
	ISN_OBJ_PD,
	ISN_OBJ_MR,
	ISN_OBJ_CHANNEL,
	ISN_OBJ_CQ,
	ISN_OBJ_SRQ,
	ISN_OBJ_QP,
	ISN_OBJ_AH,
	ISN_OBJ_NKINDS,
};

extern struct isn_list isn_objs[ISN_OBJ_NKINDS];
/* Held by create/destroy and by the checkpoint while it walks the lists. */
extern pthread_mutex_t isn_objs_lock;
void isn_obj_add(enum isn_obj_kind kind, struct isn_list *e);
void isn_obj_del(struct isn_list *e);
/*
 * The control path (creating, destroying, modifying, querying objects)
 * runs under a shared lock that a checkpoint holds exclusively from
 * QUIESCE to RESUME: the backend objects are not there in between.
 * ISN_CTL() at the top of an entry point holds it until the function
 * returns; nested entries pass.
 */
int isn_ctl_enter(void);
void isn_ctl_leave(int *unused);
void isn_ctl_block(void);
bool isn_ctl_tryblock(void);
void isn_ctl_unblock(void);
#define ISN_CTL()                                                          \
	int isn_ctl_tok_ __attribute__((cleanup(isn_ctl_leave), unused)) = \
		isn_ctl_enter()

#define isn_obj_for_each(pos, kind)                                 \
	for ((pos) = isn_objs[kind].next; (pos) != &isn_objs[kind]; \
	     (pos) = (pos)->next)

/* qptab.c: QPs by real QPN, for completions (lock-free lookups) */
int isn_qptab_add(struct isn_qp *qp);
void isn_qptab_del(struct isn_qp *qp);
struct isn_qp *isn_qptab_find(uint32_t real_qpn, uint32_t *idx_p);
struct isn_qp *isn_qptab_at(uint32_t idx);
/* Forget every cached lookup of @cq and wait for its pollers. */
void isn_cq_forget_qps(struct isn_cq *cq);

/* The CQ's gate: fast-path pollers count themselves in. */
static inline void isn_cq_enter(struct isn_cq *cq)
{
	atomic_fetch_add(&cq->users, 1);
}

static inline void isn_cq_leave(struct isn_cq *cq)
{
	atomic_fetch_sub_explicit(&cq->users, 1, memory_order_release);
}

/* Wait until no poller is inside @cq's gate (after setting isn_slow). */
void isn_cq_wait_users(struct isn_cq *cq);

/* registry.c: ids for event records */
void isn_reg_add(struct isn_reg_node *n, enum isn_kind kind);
/* Remove; afterwards no event names it.  Returns the node's final counts. */
void isn_reg_del(struct isn_reg_node *n);
/* The node of @id (and count one event handed out), or NULL if gone. */
struct isn_reg_node *isn_reg_claim(uint64_t id, enum isn_kind kind, bool async);
/* Wait until @completed (under @m) reaches @reported. */
void isn_wait_acks(pthread_mutex_t *m, pthread_cond_t *c,
		   const uint32_t *completed, uint32_t reported);

/* evthread.c: the shim's event thread */
typedef void (*isn_ev_fn)(void *arg);
/* Call @fn(@arg) (from the event thread) whenever @fd is readable. */
int isn_ev_watch(int fd, isn_ev_fn fn, void *arg, struct isn_ev_watch **w_p);
/* After return, @w's function is not running and never runs again. */
void isn_ev_unwatch(struct isn_ev_watch *w);
/* Wait for any callback in progress to return. */
void isn_ev_barrier(void);

/* Set O_NONBLOCK on a backend fd the event thread reads. */
int isn_fd_nonblock(int fd);
/* Write one record to a shim-owned pipe (never blocks; drops if full). */
void isn_pipe_put(int wfd, const void *rec, size_t len);
/* Read one record from the pipe read end @fd as read(2) on it would. */
int isn_pipe_get(int fd, void *rec, size_t len);

/* fork.c: what each module does around fork() */
enum isn_fork_stage {
	ISN_FORK_PREPARE,
	ISN_FORK_PARENT,
	ISN_FORK_CHILD,
};
void isn_ev_atfork(enum isn_fork_stage stage);
void isn_objs_atfork(enum isn_fork_stage stage);
void isn_reg_atfork(enum isn_fork_stage stage);
void isn_dev_atfork(enum isn_fork_stage stage);

/* channel.c: forward the backend channel's events (event thread) */
void isn_channel_drain(void *arg);

/* context.c */
void isn_ctx_set_ops(struct isn_context *ictx);

/* async.c */
int isn_async_open(struct isn_context *ictx);
void isn_async_close(struct isn_context *ictx);
/* A checkpoint: stop watching the backend's async fd (forwarding what it
 * holds), and watch the new one after a rebuild. */
void isn_async_unwatch(struct isn_context *ictx);
int isn_async_rewatch(struct isn_context *ictx);

/* cq.c / qp_post.c / srq.c: the inline ops of a virtual context */
int isn_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc);
int isn_req_notify_cq(struct ibv_cq *cq, int solicited_only);
int isn_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr,
		  struct ibv_send_wr **bad_wr);
int isn_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr,
		  struct ibv_recv_wr **bad_wr);
int isn_post_srq_recv(struct ibv_srq *srq, struct ibv_recv_wr *wr,
		      struct ibv_recv_wr **bad_wr);
/* Fill a virtual CQ once its backend CQ exists (cq.c). */
void isn_cq_init(struct isn_cq *cq, struct ibv_context *context,
		 struct ibv_comp_channel *channel, void *cq_context);
/* What the backend ibv_cq_ex fills whatever the program asked (cq_ex.c):
 * receive tracking and translation read these. */
#define ISN_CQX_FORCED_FLAGS                                                   \
	(IBV_WC_EX_WITH_QP_NUM | IBV_WC_EX_WITH_SRC_QP | IBV_WC_EX_WITH_SLID | \
	 IBV_WC_EX_WITH_BYTE_LEN)

/* Saved completions of a CQ not handed out yet (drain/cq.c). */
uint32_t isn_cq_saved_count(const struct isn_cq *cq);
/* Free a CQ's saved completions (drain/cq.c). */
void isn_cq_saved_free(struct isn_cq *cq);
/* A destroyed receive queue's shim buffers and kept messages go
 * (drain/early.c). */
void isn_early_forget(struct isn_qp *qp, struct isn_srq *srq);
/* A destroyed QP or SRQ: the posts the shim keeps for it go; a QP's markers
 * still out are no longer waited for (drain/pending.c, drain/qp.c). */
void isn_pending_forget(void *obj);
void isn_qp_ckpt_free(struct isn_qp *qp);
/* Whether a drain's marker is still out on @qp's send queue (drain/qp.c). */
bool isn_qp_marker_out(const struct isn_qp *qp);
static inline bool isn_wc_any_recv(const struct ibv_wc *wc, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (wc[i].opcode & IBV_WC_RECV)
			return true;
	return false;
}

/* Count the receives @n completions consumed (cq->track). */
void isn_cq_track(struct isn_cq *cq, const struct ibv_wc *wc, int n);
/* The consumed receive of real QP @qpn; from cq.c and cq_ex.c. */
void isn_cq_track_one(struct isn_cq *cq, uint32_t qpn);
/* poll_cq when isn_slow is set (outside the gate). */
int isn_poll_cq_slow(struct isn_cq *cq, int n, struct ibv_wc *wc);
/* What poll_cq does to completions off the fast path: count consumed
 * receives, rewrite UD GRHs, translate IDs (inside the gate or CQ lock). */
void isn_wc_done(struct isn_cq *cq, struct ibv_wc *wc, int n);
/* Translate the IDs of @wc only (no receive is consumed). */
void isn_wc_ids_to_virt(struct isn_cq *cq, struct ibv_wc *wc);
/* The same for one completion read through an ibv_cq_ex (cq_ex.c). */
void isn_wc_one_ex(struct isn_cq *cq, struct ibv_wc *wc);
/* The backend ibv_cq_ex's current completion into the virtual one. */
void isn_cqx_cur(struct isn_cq *cq);
/* A GRH buffer that holds RoCE v2's IPv4 header (ah_wc.c). */
bool isn_grh_is_ipv4(const struct ibv_grh *grh);
/* The general post paths (lists, translation, holds). */
int isn_post_send_slow(struct isn_qp *qp, struct ibv_send_wr *wr,
		       struct ibv_send_wr **bad_wr);
int isn_post_recv_slow(struct isn_qp *qp, struct isn_srq *srq,
		       struct ibv_recv_wr *wr, struct ibv_recv_wr **bad_wr);
/* Log and post a list; @force: even while the queue is held (resume). */
int isn_post_send_list(struct isn_qp *qp, struct ibv_send_wr *wr,
		       struct ibv_send_wr **bad_wr, bool force);
int isn_post_recv_list(struct isn_qp *qp, struct isn_srq *srq,
		       struct ibv_recv_wr *wr, struct ibv_recv_wr **bad_wr,
		       bool force);

/* verbs_context extended ops */
int isn_query_device_ex(struct ibv_context *context,
			const struct ibv_query_device_ex_input *input,
			struct ibv_device_attr_ex *attr, size_t attr_size);
int isn_query_port_ex(struct ibv_context *context, uint8_t port_num,
		      struct ibv_port_attr *attr, size_t attr_len);
struct ibv_cq_ex *isn_create_cq_ex(struct ibv_context *context,
				   struct ibv_cq_init_attr_ex *attr);
struct ibv_qp *isn_create_qp_ex(struct ibv_context *context,
				struct ibv_qp_init_attr_ex *attr);

/* qp.c, qp_attr.c; set_xlate: under the control lock held alone (create,
 * a checkpoint) */
void isn_qp_set_xlate(struct isn_qp *qp);
int isn_qp_modify(struct isn_qp *qp, const struct ibv_qp_attr *attr,
		  int attr_mask);
void isn_qp_attr_keep(struct isn_qp *qp, const struct ibv_qp_attr *attr,
		      int mask);
int isn_qp_query_kept(struct isn_qp *qp, struct ibv_qp_attr *attr, int mask,
		      struct ibv_qp_init_attr *init);
void isn_qp_access_to_real(const struct isn_qp *qp, struct ibv_qp_attr *ra,
			   int mask);
/* Destroy the backend QP (none: nothing to do); the QP table forgets it. */
int isn_qp_destroy_real(struct isn_qp *qp);

/* qp_wr.c: the ibv_wr_* API on a virtual QP */
int isn_wr_setup(struct isn_qp *qp, uint64_t send_ops_flags);
void isn_wr_free(struct isn_qp *qp);

/* ah.c: translate an AH attribute to the backend's IDs (copy in @out) */
void isn_ah_attr_to_real(const struct ibv_ah_attr *in, struct ibv_ah_attr *out);
void isn_ah_attr_to_virt(struct ibv_ah_attr *attr);
const struct isn_vid_peer *isn_ah_attr_peer(const struct ibv_ah_attr *attr);

#endif /* IBSNAP_SHIM_H */
