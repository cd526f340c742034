/* SPDX-License-Identifier: MIT */
/*
 * libfakehca internals: the objects of the software HCA and the calls between
 * its control path (device.c, mr.c, cq.c, srq.c, qp.c, qp_state.c, ah.c,
 * async.c) and its transport (dp_*.c, progress.c).
 *
 * Every object embeds the ibv_* object it hands out (first member) and has a
 * to_f*() converter.  One mutex per context (ctx->lock) serializes all
 * processing of that context: application calls and the progress thread.
 * Functions documented "lock held" expect it.
 */
#ifndef FAKEHCA_FAKE_H
#define FAKEHCA_FAKE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <infiniband/verbs.h>

#include "fabric.h"

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr)-offsetof(type, member)))

/*
 * Device limits, as rxe reports them on Debian 12's kernel (6.1: rxe_param.h,
 * checked with ibv_devinfo -v and create calls on rxe0).
 */
#define FK_MAX_QP 0xffff0 /* 1 << 20 minus the 16 reserved QPNs */
#define FK_MAX_QP_WR 0x100000
#define FK_MAX_SGE 32
#define FK_MAX_SGE_RD 32
#define FK_MAX_CQ 0x100000
#define FK_MAX_CQE 0x7fff
#define FK_MAX_MR 0x7ffff
#define FK_MAX_PD 0x100000
#define FK_MAX_QP_RD_ATOM 128
#define FK_MAX_RES_RD_ATOM 0x3f000
#define FK_ATOMIC_CACHE FK_MAX_QP_RD_ATOM
#define FK_MAX_SRQ 0xdffff
#define FK_MAX_SRQ_WR 0x100000
#define FK_MAX_SRQ_SGE 27
#define FK_MAX_INLINE 512 /* 32 SGEs' worth of WQE space */
#define FK_MAX_AH 0x7fff
#define FK_MAX_MSG_SZ 0x80000000u
#define FK_PORT_MAX_MSG_SZ 0x800000 /* what rxe's port reports (not enforced) */
#define FK_NUM_GIDS 2 /* valid entries; the rest of the table is empty */
#define FK_GID_TBL_LEN 1024 /* rxe's table */
#define FK_VENDOR_ID 0xffffff
#define FK_PORT 1 /* the one port of a device */
#define FK_MAX_DEVICES 16

/* Largest payload of one wire packet (RC/UC messages are cut into these). */
#define FK_SEG 16384

/* Intrusive doubly-linked list. */
struct fk_list {
	struct fk_list *next, *prev;
};

static inline void fk_list_init(struct fk_list *h)
{
	h->next = h->prev = h;
}

static inline void fk_list_add(struct fk_list *h, struct fk_list *n)
{
	n->next = h;
	n->prev = h->prev;
	h->prev->next = n;
	h->prev = n;
}

static inline void fk_list_del(struct fk_list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = n;
}

static inline bool fk_list_empty(const struct fk_list *h)
{
	return h->next == h;
}

#define fk_list_for_each(pos, head) \
	for (pos = (head)->next; pos != (head); pos = pos->next)

struct fk_device {
	struct ibv_device ibdev;
	int index; /* fake<index> */
	uint8_t link_layer; /* IBV_LINK_LAYER_ETHERNET (default) or _INFINIBAND */
	enum ibv_mtu active_mtu;
	atomic_int refcnt; /* the device list and each open context */
};

struct fk_async_ev {
	enum ibv_event_type type;
	void *obj; /* fk_qp / fk_cq / fk_srq, or NULL (port, device) */
	bool dead; /* its object was destroyed: never reported */
};

#define FK_ASYNC_QLEN 256

struct fk_context {
	struct ibv_context ibctx;
	struct fk_device *dev;
	struct fab_port *port;
	const struct fab_node_id *node;
	pthread_mutex_t lock;

	struct fk_list pds, mrs, cqs, srqs, qps, ahs, channels;

	/* rx demux: qpn -> qp (open addressing, power of two, lock held) */
	struct fk_qp **qp_tab;
	uint32_t qp_tab_size;
	/* key index -> mr (open addressing, lock held) */
	struct fk_mr **mr_tab;
	uint32_t mr_tab_size;

	/* async events: a queue; async_wfd becomes readable when non-empty */
	struct fk_async_ev async_q[FK_ASYNC_QLEN];
	unsigned int async_head, async_tail;
	int async_wfd; /* write end; ibctx.async_fd is the read end */

	/* progress thread (progress.c) */
	pthread_t progress_thread;
	bool progress_running;
	atomic_bool progress_stop;
	atomic_ulong app_polls; /* bumped by every application poll */
	unsigned int armed_cqs; /* CQs armed with req_notify (lock held) */
	uint64_t next_timer_ns; /* earliest QP timer, 0 = none */
	unsigned int pending_tx; /* QPs with packets waiting for ring room */
	struct fk_list timer_qps; /* QPs with a deadline (progress.c) */
	uint8_t *tx_scratch; /* FK_SEG bytes to gather multi-SGE sends */
	uint64_t last_polls_seen; /* app_polls at the last wake-mode check */
	uint32_t qp_count, mr_count; /* entries in qp_tab / mr_tab */
};

struct fk_pd {
	struct ibv_pd ibpd;
	struct fk_list entry;
};

struct fk_mr {
	struct ibv_mr ibmr;
	uint64_t iova; /* address the keys cover: [iova, iova+length) */
	unsigned int access; /* enum ibv_access_flags */
	struct fk_list entry;
};

struct fk_comp_channel {
	struct ibv_comp_channel ibch; /* ibch.fd: read end of a pipe */
	int wfd; /* write end: one struct ibv_cq * per event */
	struct fk_list entry;
};

enum fk_cq_arm {
	FK_CQ_DISARMED = 0,
	FK_CQ_ARMED_NEXT,
	FK_CQ_ARMED_SOLICITED,
};

struct fk_cq {
	struct ibv_cq_ex ibcq; /* an ibv_cq is a prefix of it */
	struct fk_comp_channel *channel;
	struct ibv_wc *wcs; /* ring of size + 1 slots */
	uint32_t size; /* capacity as reported (ibcq.cqe) */
	uint32_t head, count;
	bool overflowed;
	enum fk_cq_arm armed;
	uint64_t wc_flags; /* cq_ex: what read_* may be asked */
	struct ibv_wc cur; /* cq_ex: the completion being read */
	bool ex; /* created with create_cq_ex */
	bool in_poll; /* cq_ex: between start_poll and end_poll */
	struct fk_list entry;
	/* destroyed while events for it sat in the channel's pipe: kept (on
	 * ctx->cqs) until get_cq_event has read them all */
	bool dead, zombie_done;
	uint32_t chan_pending; /* pointers to it in the channel's pipe */
	uint32_t comp_events_reported, async_events_reported;
};

/* A posted receive: wr_id and its SGEs (up to the queue's max_sge). */
struct fk_rwqe {
	uint64_t wr_id;
	uint32_t num_sge;
	uint32_t total_len;
	struct ibv_sge sge[];
};

struct fk_rq {
	uint32_t max_wr, max_sge;
	uint32_t head, tail; /* free-running: head consumed, tail posted */
	size_t stride;
	uint8_t *buf;
};

struct fk_srq {
	struct ibv_srq ibsrq;
	struct fk_rq rq;
	uint32_t srqn;
	uint32_t limit; /* 0 = not armed */
	struct fk_list entry;
	uint32_t events_reported;
};

struct fk_ah {
	struct ibv_ah ibah;
	struct ibv_ah_attr attr;
	uint32_t node_index; /* resolved destination node */
	struct fk_list entry;
};

/* A posted send, copied at post time (inline data copied too). */
struct fk_swqe {
	struct ibv_send_wr wr; /* sg_list/next not valid; see sge/inline */
	uint32_t num_sge;
	uint32_t length; /* total message length */
	uint32_t first_psn, npkts;
	uint32_t sent; /* packets put on the wire (READ: request) */
	uint32_t acked; /* READ: response packets written locally */
	bool started; /* PSNs assigned, SGEs checked */
	uint8_t status; /* enum ibv_wc_status for the completion */
	bool done; /* completed by the responder's ACK */
	struct fk_ah *ah; /* UD */
	uint8_t *inl; /* inline copy, or NULL */
	struct ibv_sge sge[];
};

struct fk_sq {
	uint32_t max_wr, max_sge, max_inline;
	uint32_t head; /* oldest not completed */
	uint32_t next; /* next to (re)transmit */
	uint32_t tail; /* next free */
	size_t stride;
	uint8_t *buf;
};

/* Requester state of a connected QP (dp_req.c). */
struct fk_req {
	uint32_t psn; /* next PSN to put on the wire */
	uint32_t retries; /* transport retries left for the head WQE */
	uint32_t rnr_retries; /* RNR retries left (7 = forever) */
	uint64_t timer_ns; /* retransmit deadline, 0 = none */
	uint64_t rnr_until_ns; /* RNR back-off: do not send before */
	uint32_t rd_outstanding; /* READ/atomic requests in flight */
	bool blocked; /* ring full: retry when room */
	uint64_t blocked_until_ns;
	uint32_t mark; /* fab_mark after the last packet sent */
	bool marked; /* mark is set */
	bool unmarked; /* sent since the mark was taken */
	uint64_t late_since_ns; /* timeouts not counted since (dp_req.c) */
};

/* Responder state of a connected QP (dp_resp.c). */
struct fk_resp {
	uint32_t epsn; /* next expected PSN */
	uint32_t msn;
	bool nak_seq_sent; /* one NAK per gap */
	bool in_msg; /* inside a multi-packet SEND/WRITE */
	uint32_t msg_off;
	uint64_t write_va;
	uint32_t write_rkey;
	struct fk_rwqe *rwqe; /* receive WQE being filled (copy) */
	uint8_t rwqe_buf[sizeof(struct fk_rwqe) +
			 FK_MAX_SGE * sizeof(struct ibv_sge)];
	uint32_t rwqe_status;
	uint32_t msg_psn; /* first PSN of the message in progress */
	bool rwqe_held; /* UC: a WQE kept from a dropped message */
	/*
	 * Atomic replay cache: the results of the last FK_ATOMIC_CACHE atomics
	 * executed, oldest overwritten first.  A requester has at most
	 * max_rd_atomic (<= FK_MAX_QP_RD_ATOM) atomics unanswered, so the one
	 * it retransmits is always still here, however many SENDs came between.
	 */
	struct {
		uint32_t psn;
		bool valid;
		uint64_t orig;
	} atomic_cache[FK_ATOMIC_CACHE];
	uint32_t atomic_next;
};

struct fk_qp {
	struct ibv_qp ibqp;
	struct ibv_qp_cap cap; /* as granted at create */
	bool sq_sig_all;
	struct ibv_qp_attr attr; /* as last modified (attr.qp_state too) */
	struct fk_sq sq;
	struct fk_rq rq; /* unused when ibqp.srq is set */
	struct fk_req req;
	struct fk_resp resp;
	struct fab_dest dest; /* RC/UC peer, resolved at RTR */
	bool dest_valid;
	bool last_wqe_sent; /* IBV_EVENT_QP_LAST_WQE_REACHED given */
	struct fk_list entry;
	struct fk_list timer_entry; /* on the context's timer list if armed */
	uint32_t events_reported; /* async events get_async_event gave */
};

static inline struct fk_context *to_fctx(struct ibv_context *c)
{
	return container_of(c, struct fk_context, ibctx);
}
static inline struct fk_device *to_fdev(struct ibv_device *d)
{
	return container_of(d, struct fk_device, ibdev);
}
static inline struct fk_pd *to_fpd(struct ibv_pd *p)
{
	return container_of(p, struct fk_pd, ibpd);
}
static inline struct fk_mr *to_fmr(struct ibv_mr *m)
{
	return container_of(m, struct fk_mr, ibmr);
}
static inline struct fk_cq *to_fcq(struct ibv_cq *c)
{
	return container_of((struct ibv_cq_ex *)c, struct fk_cq, ibcq);
}
static inline struct fk_cq *to_fcq_ex(struct ibv_cq_ex *c)
{
	return container_of(c, struct fk_cq, ibcq);
}
static inline struct fk_srq *to_fsrq(struct ibv_srq *s)
{
	return container_of(s, struct fk_srq, ibsrq);
}
static inline struct fk_qp *to_fqp(struct ibv_qp *q)
{
	return container_of(q, struct fk_qp, ibqp);
}
static inline struct fk_ah *to_fah(struct ibv_ah *a)
{
	return container_of(a, struct fk_ah, ibah);
}
static inline struct fk_comp_channel *to_fch(struct ibv_comp_channel *c)
{
	return container_of(c, struct fk_comp_channel, ibch);
}

/* ---- control path, called by the transport (lock held) ---- */

/* Find objects by wire identifiers; NULL if none. */
struct fk_qp *fk_qp_lookup(struct fk_context *ctx, uint32_t qpn);
struct fk_mr *fk_mr_lookup(struct fk_context *ctx, uint32_t key);

/* Queue a completion; handles CQ overflow (CQ_ERR) and channel events. */
void fk_cq_push(struct fk_cq *cq, const struct ibv_wc *wc, bool solicited);

/* Queue an async event (obj: fk_qp, fk_cq, fk_srq or NULL). */
void fk_async_event(struct fk_context *ctx, enum ibv_event_type type,
		    void *obj);

/* Move a QP to ERR from inside the transport (flushes, QP_FATAL optional). */
void fk_qp_to_error(struct fk_qp *qp, bool fatal_event);

/* Check @len bytes at @iova against @mr: in bounds, PD, @access bits.
 * Returns the host address, or NULL. */
void *fk_mr_addr(struct fk_mr *mr, struct fk_pd *pd, uint64_t iova,
		 uint64_t len, unsigned int access);

/* Forget queued async events of @obj (being destroyed); lock held. */
void fk_async_forget(struct fk_context *ctx, const void *obj);

/* Diagnostics on stderr ("fakehca: "); neither changes errno.  fk_dbg only
 * prints with IBSNAP_FAKE_DEBUG set (bad input is the caller's business). */
void fk_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fk_dbg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- control path, between its own files ---- */

/* QPN and key tables of a context (lock held); 0 or -ENOMEM. */
int fk_qp_tab_insert(struct fk_context *ctx, struct fk_qp *qp);
void fk_qp_tab_remove(struct fk_context *ctx, struct fk_qp *qp);
int fk_mr_tab_insert(struct fk_context *ctx, struct fk_mr *mr);
void fk_mr_tab_remove(struct fk_context *ctx, struct fk_mr *mr);

/*
 * Check an address vector (create_ah, or modify_qp's IBV_QP_AV/ALT_PATH);
 * @resolve: RoCE resolves the destination now (AH, connected QP).  Sets
 * *node_index (UINT32_MAX when unresolved).  0 or a positive errno.  Lock held.
 */
int fk_ah_check(struct fk_context *ctx, const struct ibv_ah_attr *ah,
		bool resolve, uint32_t *node_index);

/* Free an object at close_device (progress stopped, no lock needed). */
void fk_qp_free(struct fk_qp *qp);
void fk_srq_free(struct fk_srq *srq);
void fk_cq_free(struct fk_cq *cq);
void fk_ch_free(struct fk_comp_channel *ch);

/* The ops of the table (ops.c), by object. */
struct ibv_device **fk_get_device_list(int *num_devices);
void fk_free_device_list(struct ibv_device **list);
__be64 fk_get_device_guid(struct ibv_device *device);
struct ibv_context *fk_open_device(struct ibv_device *device);
int fk_close_device(struct ibv_context *context);
int fk_query_device_ex(struct ibv_context *context,
		       const struct ibv_query_device_ex_input *in,
		       struct ibv_device_attr_ex *attr, size_t attr_size);
int fk_query_gid(struct ibv_context *context, uint8_t port_num, int index,
		 union ibv_gid *gid);
int fk_query_gid_ex(struct ibv_context *context, uint32_t port_num,
		    uint32_t gid_index, struct ibv_gid_entry *entry,
		    uint32_t flags);
int fk_query_pkey(struct ibv_context *context, uint8_t port_num, int index,
		  __be16 *pkey);
int fk_query_port(struct ibv_context *context, uint8_t port_num,
		  struct ibv_port_attr *attr);
void fk_ack_async_event(struct ibv_async_event *event);
int fk_get_async_event(struct ibv_context *context,
		       struct ibv_async_event *event);
struct ibv_pd *fk_alloc_pd(struct ibv_context *context);
int fk_dealloc_pd(struct ibv_pd *pd);
int fk_dereg_mr(struct ibv_mr *mr);
struct ibv_mr *fk_reg_mr(struct ibv_pd *pd, void *addr, size_t length,
			 uint64_t iova, unsigned int access);
void fk_ack_cq_events(struct ibv_cq *cq, unsigned int nevents);
struct ibv_comp_channel *fk_create_comp_channel(struct ibv_context *context);
int fk_destroy_comp_channel(struct ibv_comp_channel *channel);
int fk_get_cq_event(struct ibv_comp_channel *channel, struct ibv_cq **cq,
		    void **cq_context);
struct ibv_cq *fk_create_cq(struct ibv_context *context, int cqe,
			    void *cq_context, struct ibv_comp_channel *channel,
			    int comp_vector);
struct ibv_cq_ex *fk_create_cq_ex(struct ibv_context *context,
				  struct ibv_cq_init_attr_ex *attr);
int fk_destroy_cq(struct ibv_cq *cq);
int fk_poll_cq(struct ibv_cq *cq, int num_entries, struct ibv_wc *wc);
int fk_req_notify_cq(struct ibv_cq *cq, int solicited_only);
int fk_resize_cq(struct ibv_cq *cq, int cqe);
struct ibv_srq *fk_create_srq(struct ibv_pd *pd,
			      struct ibv_srq_init_attr *attr);
int fk_destroy_srq(struct ibv_srq *srq);
int fk_modify_srq(struct ibv_srq *srq, struct ibv_srq_attr *attr,
		  int attr_mask);
int fk_query_srq(struct ibv_srq *srq, struct ibv_srq_attr *attr);
struct ibv_qp *fk_create_qp(struct ibv_pd *pd, struct ibv_qp_init_attr *attr);
struct ibv_qp *fk_create_qp_ex(struct ibv_context *context,
			       struct ibv_qp_init_attr_ex *attr);
int fk_destroy_qp(struct ibv_qp *qp);
int fk_modify_qp(struct ibv_qp *qp, struct ibv_qp_attr *attr, int attr_mask);
int fk_query_qp(struct ibv_qp *qp, struct ibv_qp_attr *attr, int attr_mask,
		struct ibv_qp_init_attr *init);
struct ibv_ah *fk_create_ah(struct ibv_pd *pd, struct ibv_ah_attr *attr);
int fk_destroy_ah(struct ibv_ah *ah);

/* ---- transport, called by the control path ---- */

/* Allocate/free the send and receive queues for qp->cap (create/destroy). */
int fk_qp_queues_init(struct fk_qp *qp);
void fk_qp_queues_fini(struct fk_qp *qp);
/* Receive queue of an SRQ. */
int fk_rq_init(struct fk_rq *rq, uint32_t max_wr, uint32_t max_sge);
void fk_rq_fini(struct fk_rq *rq);

/*
 * After modify_qp validated and applied @attr/@mask (qp->attr updated,
 * qp->attr.qp_state is the new state), let the transport follow: RESET
 * empties the queues, RTR resolves the peer and sets the expected PSN, RTS
 * starts the requester, ERR flushes every outstanding WR (WR_FLUSH_ERR).
 * Lock held.  Returns 0 or -errno (RTR: -EINVAL if the peer cannot be
 * resolved is NOT an error on real HCAs; the transport resolves lazily).
 */
int fk_qp_transition(struct fk_qp *qp, enum ibv_qp_state old_state);

/* Fast-path ops installed in ibctx.ops and the ops table. */
int fk_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr,
		 struct ibv_send_wr **bad_wr);
int fk_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr,
		 struct ibv_recv_wr **bad_wr);
int fk_post_srq_recv(struct ibv_srq *srq, struct ibv_recv_wr *wr,
		     struct ibv_recv_wr **bad_wr);

/* Process inbound packets and due timers (lock held).  Returns work done. */
int fk_progress(struct fk_context *ctx);

/* Start/stop the context's progress thread (open/close). */
int fk_progress_start(struct fk_context *ctx);
void fk_progress_stop(struct fk_context *ctx);
/* Called (lock held) when a CQ gets armed, so senders wake us. */
void fk_progress_armed(struct fk_context *ctx);

#endif /* FAKEHCA_FAKE_H */
