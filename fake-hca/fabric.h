/* SPDX-License-Identifier: MIT */
/*
 * The fake fabric: the "wire" between processes that opened a fake device.
 *
 * Shared state lives in a directory (IBSNAP_FABRIC, default
 * /dev/shm/ibsnap-<uid>):
 *   fabric     one mmapped registry: nodes (identity per incarnation), port
 *              slots (one per opened device context), the QP directory
 *              (node, qpn) -> port slot.  Control-path updates take a
 *              process-shared robust mutex; lookups are lock-free.
 *   port-<slot>-<gen>
 *              one inbound packet ring per port: many producers (any process
 *              sending to it), one consumer (the owning process).
 *
 * This layer moves opaque packets.  It knows nothing of QPs beyond the
 * directory; the transport (dp_*.c) builds and parses packets.  Fault
 * injection (IBSNAP_FAKE_FAULTS) is applied here, in fab_send().
 *
 * Return convention: 0 or -errno.
 */
#ifndef FAKEHCA_FABRIC_H
#define FAKEHCA_FABRIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <infiniband/verbs.h>

#define FAB_NAME_MAX 32
#define FAB_MAX_PORTS 256      /* concurrently open contexts, fabric-wide */
#define FAB_MAX_NODES 64
#define FAB_PKT_MAX (16384 + 256) /* largest packet: header + payload */
#define FAB_RING_SLOTS 128     /* packets a port's inbound ring holds */

/* Identity of a simulated node in its current incarnation. */
struct fab_node_id {
	char name[FAB_NAME_MAX];
	uint32_t index;        /* slot in the registry */
	uint32_t incarnation;  /* 0 on first use, +1 per fab_node_reincarnate */
	uint16_t lid;          /* unique fabric-wide, never 0 */
	union ibv_gid gid[2];  /* [0] fe80::/64 EUI-64, [1] ::ffff:127.x.y.z */
	__be64 node_guid;
	uint32_t qpn_base;     /* first QPN of this incarnation */
	uint32_t key_base;     /* first lkey/rkey index of this incarnation */
};

/* How a port's consumer wants producers to wake it (see fab_send flags). */
enum fab_wake_mode {
	FAB_WAKE_NEEDED = 0,   /* consumer may sleep: producers must wake it */
	FAB_WAKE_APP_POLLING,  /* the application polls: only FAB_SEND_WAKE wakes */
};

enum fab_send_flags {
	/* wake the consumer if it sleeps, whatever its wake mode (one-sided
	 * requests that no application call will ever pick up) */
	FAB_SEND_WAKE = 1 << 0,
	/* unreliable traffic (UD): a full ring drops the packet */
	FAB_SEND_UNRELIABLE = 1 << 1,
	/* never apply fault injection (control traffic of tests) */
	FAB_SEND_NOFAULT = 1 << 2,
	/* fault injection may lose it, never deliver it twice (UD: a real
	 * fabric does not duplicate datagrams, and nothing would catch it) */
	FAB_SEND_NODUP = 1 << 3,
};

struct fab_port;   /* this process's attachment: one per opened context */

/* Where packets for one remote QP go; filled by fab_resolve, cached by QPs. */
struct fab_dest {
	uint32_t port_slot;
	uint32_t port_gen;
	uint32_t node_index;
	uint32_t qpn;
};

/*
 * Open (creating if needed) the fabric and attach one port for node
 * @node_name (NULL: IBSNAP_FAKE_NODE, else "host").  @ctx_cookie is opaque,
 * kept for the caller.  Reclaims the slots of dead processes.
 */
int fab_port_open(const char *node_name, struct fab_port **port_p);
void fab_port_close(struct fab_port *port);
const struct fab_node_id *fab_port_node(const struct fab_port *port);
uint32_t fab_port_slot(const struct fab_port *port);
uint32_t fab_port_gen(const struct fab_port *port);
/* True if a packet is waiting (cheap, no lock): lets a poller decide to
 * take the context lock. */
bool fab_rx_pending(struct fab_port *port);

/* Node-wide allocators (unique across all processes of the node). */
uint32_t fab_alloc_qpn(struct fab_port *port);
uint32_t fab_alloc_key(struct fab_port *port); /* returns index << 8 | byte */

/* QP directory. */
int fab_qp_publish(struct fab_port *port, uint32_t qpn);
void fab_qp_unpublish(struct fab_port *port, uint32_t qpn);
/*
 * Resolve a remote QP named by GID (@gid non-NULL) or LID, and QPN.
 * -ENOENT when no such node or QP exists now.
 */
int fab_resolve(struct fab_port *port, const union ibv_gid *gid, uint16_t lid,
		uint32_t qpn, struct fab_dest *dest);
/* Resolve the node only (UD destinations, whose QP is checked on arrival). */
int fab_resolve_node(struct fab_port *port, const union ibv_gid *gid,
		     uint16_t lid, uint32_t *node_index);

/*
 * Send one packet made of @hdr and @payload (either may be empty) to @dest.
 * 0: on the wire (or dropped by fault injection: the caller cannot tell, as on
 * a real wire).  -EAGAIN: the destination ring is full (nothing sent; retry
 * later; with FAB_SEND_UNRELIABLE a full ring is a silent drop and returns 0).
 * -EHOSTUNREACH: the destination port is gone.
 */
int fab_send(struct fab_port *port, const struct fab_dest *dest,
	     const void *hdr, size_t hdr_len, const void *payload,
	     size_t payload_len, unsigned int flags);

/*
 * A mark of how far @dest's ring has been filled (taken right after a
 * fab_send to it), and whether its consumer has taken every packet before a
 * mark.  A packet still in the ring is late, not lost: the transport does not
 * count a retry for it (a software HCA's peer may simply not have run yet).
 * An unreachable destination counts as consumed (nothing will take it).
 */
uint32_t fab_mark(struct fab_port *port, const struct fab_dest *dest);
bool fab_consumed(struct fab_port *port, const struct fab_dest *dest,
		  uint32_t mark);
/* Whether the process that owns @dest's port is still alive. */
bool fab_dest_alive(struct fab_port *port, const struct fab_dest *dest);

/*
 * Consume up to @max packets from this port's ring, calling @cb for each (the
 * packet is valid only during the call).  Returns the number consumed.  Only
 * one thread of the owning process may consume at a time (callers serialize).
 */
typedef void (*fab_rx_cb)(void *arg, const void *pkt, size_t len);
int fab_poll(struct fab_port *port, fab_rx_cb cb, void *arg, int max);
/*
 * Threads: fab_send and fab_poll on one port must be serialized by the
 * caller (the context lock); the callback may fab_send, also to its own
 * port.  fab_wait, fab_rx_pending and fab_kick are safe from any thread,
 * concurrently with them.  Packets from one sender to one port arrive in
 * order (fault injection aside); the ring holds FAB_RING_SLOTS packets.
 * fab_wait may return early (signal, a wake-up for another waiter): loop.
 */

/* Consumer side sleep/wake. */
void fab_set_wake_mode(struct fab_port *port, enum fab_wake_mode mode);
/* Sleep until a packet is queued, fab_kick() is called, or @timeout_ns
 * passes (<0: no timeout). */
void fab_wait(struct fab_port *port, int64_t timeout_ns);
void fab_kick(struct fab_port *port);

/* Nodes: a new incarnation (new LID/GID, QPN and key numbering), as a reboot
 * or a move to another host gives.  Ports already open keep the old one. */
int fab_node_reincarnate(const char *node_name);
/* A node that is down neither sends nor receives (fault: kill a node). */
int fab_node_set_down(const char *node_name, bool down);

/* Monotonic clock in ns. */
uint64_t fab_now_ns(void);
uint64_t fab_wire_now_ns(void); /* shared by processes: due times */

/* Counters of one port (sender side: tx_*, consumer side: rx_*). */
struct fab_stats {
	uint64_t tx_pkts;          /* packets enqueued (duplicates included) */
	uint64_t tx_ring_full;     /* -EAGAIN, or UNRELIABLE drops */
	uint64_t tx_fault_drop;
	uint64_t tx_fault_dup;
	uint64_t tx_fault_corrupt;
	uint64_t rx_pkts;          /* handed to the fab_poll callback */
	uint64_t rx_bad_crc;       /* dropped: corrupted on the wire */
	uint64_t rx_node_down;     /* dropped: this node is down */
	uint64_t rx_dead_skip;     /* slots a dead producer left unfinished */
};
void fab_port_stats(const struct fab_port *port, struct fab_stats *stats);

/*
 * Replace this process's fault injection settings with @spec (the
 * IBSNAP_FAKE_FAULTS syntax, e.g. "drop=0.05,dup=0.01,corrupt=0.001,
 * delay_us=50,seed=7"; "" = none; NULL = re-read the environment).  The
 * PRNG restarts from the seed.  Unknown keys and bad values are reported on
 * stderr and ignored.
 */
void fab_faults_config(const char *spec);

#endif /* FAKEHCA_FABRIC_H */
