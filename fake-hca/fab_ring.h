/* SPDX-License-Identifier: MIT */
/*
 * Fabric internals shared by fabric.c (registry), fab_ring.c (packet rings,
 * sleep/wake) and fab_faults.c (fault injection).  Everything here lives in
 * shared memory except struct fab_reg and struct fab_port.
 */
#ifndef FAKEHCA_FAB_RING_H
#define FAKEHCA_FAB_RING_H

#include <limits.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "fabric.h"

/* ---- the registry file ---- */

#define FAB_MAGIC 0x31626166736e6269ull /* "ibnsfab1" */
#define FAB_LAYOUT_VERSION 2 /* 2: slots name their producer by port tag */
#define FAB_DIR_SIZE 65536u /* QP directory entries (power of two) */
#define FAB_DIR_MAX_LIVE (FAB_DIR_SIZE / 8 * 7)
#define FAB_MAX_UNIQ 0xbfffu /* unique numbers are unicast LIDs */
#define FAB_QPN_MASK 0xffffffu
#define FAB_GEN_MASK 0xffffffu

struct fab_node_rec {
	char name[FAB_NAME_MAX]; /* written before used is set */
	_Atomic uint32_t used;
	_Atomic uint32_t down;
	_Atomic uint64_t cur; /* incarnation << 32 | unique number */
	_Atomic uint32_t next_qpn; /* node-wide allocators */
	_Atomic uint32_t next_key; /* key index */
};

struct fab_port_rec {
	_Atomic uint32_t state; /* generation << 1 | live */
	_Atomic int32_t pid; /* in the owner's PID namespace: for logs only */
	_Atomic uint32_t node;
	_Atomic uint32_t uniq; /* the incarnation it opened with */
};

/*
 * QP directory entry, one 64-bit word so lock-free readers never see a torn
 * entry: qpn (24 bits) | node + 1 (7) | port slot (8) | port generation (24).
 * 0 is empty, all ones a tombstone.
 */
#define FAB_DIR_EMPTY 0ull
#define FAB_DIR_TOMB UINT64_MAX
#define FAB_DIR_KEY_MASK ((1ull << 31) - 1)

struct fab_registry {
	uint64_t magic;
	uint32_t version;
	uint32_t size;
	pthread_mutex_t lock; /* robust, process-shared */
	_Atomic uint32_t next_uniq;
	_Atomic uint32_t dir_live;
	struct fab_node_rec nodes[FAB_MAX_NODES];
	struct fab_port_rec ports[FAB_MAX_PORTS];
	_Atomic uint8_t uniq_node[FAB_MAX_UNIQ + 1]; /* node index + 1 */
	_Atomic uint64_t dir[FAB_DIR_SIZE];
};

/* ---- one port's ring file ---- */

#define FAB_RING_MAGIC 0x31676e69726e6269ull /* "ibnring1" */
#define FAB_RING_MASK (FAB_RING_SLOTS - 1)
#define FAB_SLOT_CRC 1u /* crc holds the CRC32C of data[0..len) */

struct fab_slot {
	/* Vyukov sequence (low 32 bits) | port tag of the claiming producer */
	_Atomic uint64_t state;
	uint32_t len;
	uint32_t flags;
	uint32_t crc;
	uint32_t pad;
	/* not deliverable before (fab_wire_now_ns); 0 = now */
	_Atomic uint64_t due_ns;
	uint8_t pad2[32];
	uint8_t data[FAB_PKT_MAX];
};

struct fab_ring {
	uint64_t magic;
	uint32_t nslots;
	uint32_t slot_size;
	alignas(64) _Atomic uint32_t tail; /* next position to claim */
	alignas(64) _Atomic uint32_t futex; /* bumped before every wake */
	_Atomic uint32_t sleeping;
	_Atomic uint32_t mode; /* enum fab_wake_mode */
	_Atomic uint32_t kick;
	alignas(64) struct fab_slot slots[FAB_RING_SLOTS];
};

/* ---- process-local ---- */

/* One mapped registry (one per fabric directory), refcounted by ports. */
struct fab_reg {
	struct fab_reg *next;
	unsigned int refs;
	struct fab_registry *map;
	int live_fd; /* ports.live: a record lock per owned slot */
	pid_t mine_pid; /* whose slots mine[] lists (not a fork()ed child's) */
	uint64_t mine[FAB_MAX_PORTS / 64];
	char dir[PATH_MAX - 64]; /* room for "/port-<slot>-<gen>" */
};

struct fab_peer {
	struct fab_ring *ring;
	uint32_t gen;
};

struct fab_port {
	struct fab_reg *reg;
	uint32_t slot;
	uint32_t gen;
	uint32_t uniq;
	struct fab_node_id id;
	struct fab_ring *ring; /* our inbound ring */
	_Atomic uint32_t head; /* consumer position (fab_wait reads it) */
	uint32_t stall_pos;
	uint64_t stall_since;
	struct fab_stats stats;
	struct fab_peer peers[FAB_MAX_PORTS];
};

_Static_assert(FAB_MAX_PORTS <= 256 && FAB_MAX_PORTS % 64 == 0, "port tag");

/* Names a port in a ring slot: never 0 (generations start at 1). */
static inline uint32_t fab_port_tag(const struct fab_port *port)
{
	return port->gen << 8 | port->slot;
}

/* fabric.c */
void fab_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
pid_t fab_pid(void);
bool fab_port_alive(struct fab_reg *reg, uint32_t slot, uint32_t gen);
int fab_lock(struct fab_registry *r);
void fab_unlock(struct fab_registry *r);

/* fab_dir.c (lock held) */
void fab_dir_purge(struct fab_registry *r, uint32_t slot);

/* fab_ring.c */
int fab_ring_create(const char *dir, uint32_t slot, uint32_t gen,
		    struct fab_ring **ring_p);
void fab_ring_unmap(struct fab_ring *ring);
void fab_ring_path(char *buf, size_t len, const char *dir, uint32_t slot,
		   uint32_t gen);
void fab_port_unmap_peers(struct fab_port *port);

/* fab_faults.c */
struct fab_fault_plan {
	unsigned int copies; /* 0: dropped */
	bool crc; /* corruption enabled: checksum packets */
	int flip[2]; /* per copy: byte to corrupt, or -1 */
	uint64_t delay_ns;
};

extern _Atomic uint32_t fab_faults_on;
void fab_faults_init(void);
void fab_faults_plan(struct fab_fault_plan *plan, size_t len);
uint32_t fab_crc32c(const void *buf, size_t len);

#endif /* FAKEHCA_FAB_RING_H */
