/* SPDX-License-Identifier: MIT */
/*
 * The shim's rdma_cm (docs/rdma_cm.md): librdmacm's API implemented over
 * the shim's own virtual verbs objects, so a QP made by rdma_create_qp is
 * a virtual QP like any other (drain/ and rebuild/ handle it).
 *
 * The connection handshake (REQ/REP/RTU, REJ, DREQ/DREP, SIDR for UD) runs
 * between the shims over Unix datagram sockets in the abstract namespace,
 * named after the fabric (cm_wire.c): a bound or listening id owns a
 * "port" socket named by (port space, IP, port); each process owns one
 * "endpoint" socket that carries everything else, messages naming their
 * id by token.  The event thread (evthread.c) reads the sockets and a
 * timerfd and queues events; it never calls a verbs function: QP
 * transitions run in the application's threads (rdma_accept, and
 * rdma_get_cm_event for a connect response), as librdmacm does them.
 *
 * Locking: cm_lock (one, process-wide) guards every id, channel and event
 * queue; it is taken inside ISN_CTL, never around an ibv_* call or an
 * isn_ev_watch/unwatch (the event thread holds ev_lock in callbacks).
 */
#ifndef IBSNAP_CM_H
#define IBSNAP_CM_H

#include <sys/un.h>
#include <rdma/rdma_cma.h>
#include <rdma/rdma_verbs.h>

#include "shim.h"

/* private data sizes librdmacm reports over IB/RoCE (IB CM minus the
 * rdma_cm header) */
#define ISN_CM_REQ_PDATA 56
#define ISN_CM_REP_PDATA 196
#define ISN_CM_REJ_PDATA 148
#define ISN_CM_SIDR_REQ_PDATA 180
#define ISN_CM_SIDR_REP_PDATA 136
#define ISN_CM_PDATA_MAX 196

/* IB CM reject reasons the kernel reports as the event status */
#define ISN_CM_REJ_INVALID_SID 8
#define ISN_CM_REJ_CONSUMER 28

struct isn_cm_dev {
	struct ibv_context *verbs;
	struct ibv_pd *pd; /* the id's default PD, as librdmacm's */
	struct sockaddr_storage addr;
	int gid_index;
	uint8_t link_layer;
	uint8_t max_init_depth, max_resp_res;
	uint32_t max_qp_wr;
};

/* What one end tells the other about its QP (REQ, REP, SIDR). */
struct isn_cm_qpinfo {
	union ibv_gid gid;
	uint32_t qpn, psn, qkey;
	uint16_t lid;
	uint8_t link_layer, mtu;
	uint8_t resp_res, init_depth, flow_control, retry, rnr_retry, srq;
};

enum isn_cm_state {
	CM_IDLE,
	CM_BOUND,
	CM_ADDR_RESOLVED,
	CM_ROUTE_RESOLVED,
	CM_LISTEN,
	CM_CONNECT, /* REQ sent */
	CM_REQ_RCVD, /* passive child, not accepted yet */
	CM_REP_SENT,
	CM_REP_RCVD, /* active: the response waits for rdma_get_cm_event */
	CM_ESTABLISHED,
	CM_DREQ_SENT,
	CM_DISCONNECTED,
	CM_DEAD, /* rejected, unreachable */
};

struct isn_cm_chan;

struct isn_cm_id {
	struct rdma_cm_id id; /* first */
	uint64_t token;
	bool sync; /* made without a channel: calls wait for their event */
	bool passive; /* made by a connection request */
	enum isn_cm_state state;
	struct isn_cm_dev *dev;
	/* the port socket (bound with a port, or listening) */
	int port_fd;
	struct isn_ev_watch *port_watch;
	bool port_named;
	/* the peer: its endpoint socket and id token */
	struct sockaddr_un peer;
	socklen_t peer_len;
	uint64_t peer_token;
	struct isn_cm_qpinfo local, remote;
	uint64_t deadline; /* ns, 0: none */
	struct isn_cm_id *listen; /* a child's listener */
	uint32_t events_reported, events_completed;
	pthread_cond_t cond;
	struct ibv_qp_init_attr *qp_init_attr; /* passive rdma_create_ep */
	void *connect_data;
	uint8_t connect_len;
	bool destroying;
	struct isn_list entry;
};

static inline struct isn_cm_id *isn_cm_id_of(struct rdma_cm_id *id)
{
	return isn_container_of(id, struct isn_cm_id, id);
}

struct isn_cm_event {
	struct rdma_cm_event ev;
	struct isn_cm_id *owner; /* whose ack it is (a REQ: the listener) */
	struct isn_cm_event *next;
	bool conn_resp; /* a REP: rdma_get_cm_event moves the QP on */
	uint8_t pdata[ISN_CM_PDATA_MAX];
};

struct isn_cm_chan {
	struct rdma_event_channel ch; /* ch.fd: read end of a pipe */
	int wfd;
	struct isn_cm_event *head, **tail;
	_Atomic bool dead; /* destroyed by the program: kept, see cm_event.c */
	struct isn_list entry;
};

static inline struct isn_cm_chan *isn_cm_chan_of(struct rdma_event_channel *c)
{
	return isn_container_of(c, struct isn_cm_chan, ch);
}

/* the wire */
enum isn_cm_msg_type {
	CM_MSG_REQ = 1,
	CM_MSG_REP,
	CM_MSG_RTU,
	CM_MSG_REJ,
	CM_MSG_DREQ,
	CM_MSG_DREP,
	CM_MSG_SIDR_REQ,
	CM_MSG_SIDR_REP,
};

#define ISN_CM_MAGIC 0x69634d31u /* "icM1" */

struct isn_cm_msg {
	uint32_t magic;
	uint16_t type;
	uint8_t reason; /* REJ, SIDR_REP status */
	uint8_t pdata_len;
	uint64_t src_token, dst_token;
	struct sockaddr_storage src_addr,
		dst_addr; /* as the sender sees them */
	struct isn_cm_qpinfo info;
	uint8_t pdata[ISN_CM_PDATA_MAX];
};

/* drain/driver.c: the time now, ns */
uint64_t isn_now_ns(void);

extern pthread_mutex_t isn_cm_lock;
extern struct isn_list isn_cm_ids, isn_cm_chans;

/* cm_dev.c */
int isn_cm_init(void);
/* The device owning @addr (a loopback or wildcard address: the first; a
 * destination @addr on the fake backend too) and its context opened; NULL
 * with errno set (EADDRNOTAVAIL: no device has it). */
struct isn_cm_dev *isn_cm_dev_for(const struct sockaddr *addr, bool bind);
socklen_t isn_cm_addrlen(const struct sockaddr *addr);
bool isn_cm_addr_any(const struct sockaddr *addr);
bool isn_cm_addr_loopback(const struct sockaddr *addr);
uint16_t isn_cm_port(const struct sockaddr *addr);
void isn_cm_set_port(struct sockaddr *addr, uint16_t port);
/* Our QP's half of a handshake: GID, LID, MTU of @dev's port. */
int isn_cm_local_info(struct isn_cm_id *cid);

/* what a call returns when a synchronous id must wait for its event */
#define CM_WAIT 1

/* cm_event.c */
struct isn_cm_event *isn_cm_event_new(struct isn_cm_id *cid,
				      enum rdma_cm_event_type type, int status);
/* Queue @e on its id's channel (cm_lock held). */
void isn_cm_event_queue(struct isn_cm_event *e);
/* Drop the queued events of @cid (cm_lock held). */
void isn_cm_events_drop(struct isn_cm_id *cid);
/* A sync id: wait for its next event; 0 or -1 with errno (ucma_complete). */
int isn_cm_complete(struct isn_cm_id *cid);
struct isn_cm_chan *isn_cm_chan_new(void);
void isn_cm_chan_free(struct isn_cm_chan *c);

/* cm_wire.c */
int isn_cm_wire_init(void); /* the endpoint socket and timer */
/* Bind @cid's port socket for its source address; 0 or an errno. */
int isn_cm_port_open(struct isn_cm_id *cid);
void isn_cm_port_close(struct isn_cm_id *cid);
/* Send to the listener of @dst (exact address, then the wildcard). */
int isn_cm_send_listener(struct isn_cm_id *cid, struct isn_cm_msg *m,
			 const struct sockaddr *dst);
/* Send to @cid's peer; 0 or an errno. */
int isn_cm_send_peer(struct isn_cm_id *cid, struct isn_cm_msg *m);
void isn_cm_msg_init(struct isn_cm_msg *m, struct isn_cm_id *cid,
		     enum isn_cm_msg_type type);
/* Arm the timer for @cid (cm_lock held); 0 disarms. */
void isn_cm_deadline(struct isn_cm_id *cid, uint64_t ms);
uint64_t isn_cm_timeout_ms(void);

/* cm_recv.c: messages in (event thread, cm_lock held) */
void isn_cm_recv(struct isn_cm_msg *m, size_t len,
		 const struct sockaddr_un *from, socklen_t fromlen,
		 struct isn_cm_id *port_owner);
void isn_cm_expired(struct isn_cm_id *cid);
/* Queue an event for @cid, its parameters from @m (cm_lock held). */
void isn_cm_queue(struct isn_cm_id *cid, enum rdma_cm_event_type type,
		  int status, const struct isn_cm_msg *m, uint8_t full);
/* cm_conn.c */
/* What rdma_get_cm_event does to an event before handing it out (no
 * lock held): QP transitions, the device of a request, a UD AH. */
void isn_cm_deliver(struct isn_cm_event *e);
/* Send a DREQ if @cid is connected (no lock held); false if it is not.
 * @want_event: a DISCONNECTED event follows (DREP or timeout). */
bool isn_cm_send_dreq(struct isn_cm_id *cid, bool want_event);

/* cm_qp.c */
int isn_cm_qp_init(struct isn_cm_id *cid, struct ibv_qp *qp);
int isn_cm_qp_rtr_rts(struct isn_cm_id *cid);
int isn_cm_qp_err(struct isn_cm_id *cid);
void isn_cm_ah_attr(const struct isn_cm_id *cid, struct ibv_ah_attr *ah);

/* cm_id.c */
struct isn_cm_id *isn_cm_id_new(struct isn_cm_chan *ch, void *context,
				enum rdma_port_space ps,
				enum ibv_qp_type qp_type);
struct isn_cm_id *isn_cm_id_find(uint64_t token);
void isn_cm_id_free(struct isn_cm_id *cid);

#endif /* IBSNAP_CM_H */
