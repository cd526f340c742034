/* SPDX-License-Identifier: MIT */
/*
 * Packet rings: one bounded MPSC queue of FAB_RING_SLOTS fixed slots per port,
 * in a tmpfs file that every sender maps.  Any process produces (fab_send),
 * the owner consumes in place (fab_poll) and sleeps on a shared futex
 * (fab_wait).
 *
 * The queue is Vyukov's bounded queue with one change for robustness: a
 * producer claims a slot by a CAS on the slot's state word, which records
 * its port's tag (slot and generation) beside the sequence, and only then
 * advances the tail (producers help each other advance it).  So a producer
 * that dies at any point leaves at worst one slot claimed under its tag.
 * The consumer skips such a slot only once the claimer's port is dead
 * (fab_port_alive: its record lock is gone, whatever PID namespace it ran
 * in; checked after the slot stayed stuck FAB_STALL_NS): a live producer
 * that is merely slow, stopped or frozen for a checkpoint is waited for,
 * never overwritten.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fab_ring.h"

#define FAB_STALL_NS 100000000ull /* stuck slot: check its producer */
#define FAB_STALL_POLL_NS 10000000ll /* fab_wait's nap while one is stuck */

_Static_assert(offsetof(struct fab_slot, data) == 64, "slot header");
_Static_assert(sizeof(struct fab_slot) % 64 == 0, "slot size");
_Static_assert((FAB_RING_SLOTS & FAB_RING_MASK) == 0, "ring size");

static inline uint32_t slot_seq(uint64_t st)
{
	return (uint32_t)st;
}

static inline uint32_t slot_owner(uint64_t st)
{
	return (uint32_t)(st >> 32);
}

void fab_ring_path(char *buf, size_t len, const char *dir, uint32_t slot,
		   uint32_t gen)
{
	snprintf(buf, len, "%s/port-%u-%u", dir, slot, gen);
}

static int fab_ring_open(const char *path, int flags, struct fab_ring **ring_p)
{
	struct stat st;
	void *map;
	int fd, ret = 0;

	fd = open(path, O_RDWR | O_CLOEXEC | flags, 0600);
	if (fd < 0)
		return -errno;
	if (flags & O_CREAT) {
		if (ftruncate(fd, sizeof(struct fab_ring)))
			ret = -errno;
	} else if (fstat(fd, &st)) {
		ret = -errno;
	} else if (st.st_size != sizeof(struct fab_ring)) {
		ret = -EPROTO;
	}
	if (!ret) {
		map = mmap(NULL, sizeof(struct fab_ring),
			   PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (map == MAP_FAILED)
			ret = -errno;
		else
			*ring_p = map;
	}
	close(fd);
	return ret;
}

int fab_ring_create(const char *dir, uint32_t slot, uint32_t gen,
		    struct fab_ring **ring_p)
{
	struct fab_ring *ring;
	char path[PATH_MAX];
	uint32_t i;
	int ret;

	fab_ring_path(path, sizeof(path), dir, slot, gen);
	ret = fab_ring_open(path, O_CREAT | O_TRUNC, &ring);
	if (ret) {
		fab_log("cannot create ring %s: %s", path, strerror(-ret));
		unlink(path);
		return ret;
	}
	ring->nslots = FAB_RING_SLOTS;
	ring->slot_size = sizeof(struct fab_slot);
	for (i = 0; i < FAB_RING_SLOTS; i++)
		atomic_store_explicit(&ring->slots[i].state, i,
				      memory_order_relaxed);
	atomic_store(&ring->mode, FAB_WAKE_NEEDED);
	ring->magic = FAB_RING_MAGIC;
	*ring_p = ring;
	return 0;
}

void fab_ring_unmap(struct fab_ring *ring)
{
	if (ring)
		munmap(ring, sizeof(*ring));
}

void fab_port_unmap_peers(struct fab_port *port)
{
	int i;

	for (i = 0; i < FAB_MAX_PORTS; i++) {
		fab_ring_unmap(port->peers[i].ring);
		port->peers[i].ring = NULL;
	}
}

static int fab_peer_map(struct fab_port *port, const struct fab_dest *dest,
			struct fab_ring **ring_p)
{
	struct fab_peer *peer = &port->peers[dest->port_slot];
	struct fab_ring *ring;
	char path[PATH_MAX];
	int ret;

	fab_ring_unmap(peer->ring);
	peer->ring = NULL;
	fab_ring_path(path, sizeof(path), port->reg->dir, dest->port_slot,
		      dest->port_gen);
	ret = fab_ring_open(path, 0, &ring);
	if (ret == -ENOENT)
		return -EHOSTUNREACH; /* closed since we checked */
	if (ret) {
		fab_log("cannot map ring %s: %s", path, strerror(-ret));
		return ret;
	}
	if (ring->magic != FAB_RING_MAGIC || ring->nslots != FAB_RING_SLOTS ||
	    ring->slot_size != sizeof(struct fab_slot)) {
		fab_log("ring %s: bad header", path);
		fab_ring_unmap(ring);
		return -EPROTO;
	}
	peer->ring = ring;
	peer->gen = dest->port_gen;
	*ring_p = ring;
	return 0;
}

static inline int fab_dest_ring(struct fab_port *port,
				const struct fab_dest *dest,
				struct fab_ring **ring_p)
{
	struct fab_registry *r = port->reg->map;
	struct fab_peer *peer;

	if (dest->port_slot >= FAB_MAX_PORTS ||
	    dest->node_index >= FAB_MAX_NODES)
		return -EINVAL;
	if (atomic_load_explicit(&r->ports[dest->port_slot].state,
				 memory_order_acquire) !=
	    (dest->port_gen << 1 | 1))
		return -EHOSTUNREACH;
	if (atomic_load_explicit(&r->nodes[port->id.index].down,
				 memory_order_relaxed) ||
	    atomic_load_explicit(&r->nodes[dest->node_index].down,
				 memory_order_relaxed))
		return -EHOSTUNREACH;
	if (dest->port_slot == port->slot && dest->port_gen == port->gen) {
		*ring_p = port->ring;
		return 0;
	}
	peer = &port->peers[dest->port_slot];
	if (peer->ring && peer->gen == dest->port_gen) {
		*ring_p = peer->ring;
		return 0;
	}
	return fab_peer_map(port, dest, ring_p);
}

/* Claim the next slot for writing; NULL when the ring is full. */
static struct fab_slot *fab_ring_claim(struct fab_ring *ring, uint64_t me,
				       uint32_t *pos_p)
{
	uint32_t pos, expect;
	struct fab_slot *s;
	uint64_t st;
	int32_t d;

	pos = atomic_load_explicit(&ring->tail, memory_order_relaxed);
	for (;;) {
		s = &ring->slots[pos & FAB_RING_MASK];
		st = atomic_load_explicit(&s->state, memory_order_acquire);
		d = (int32_t)(slot_seq(st) - pos);
		if (d < 0)
			return NULL; /* still holds the packet of pos - N */
		if (d == 0 && !slot_owner(st) &&
		    atomic_compare_exchange_weak_explicit(
			    &s->state, &st, pos | me, memory_order_acquire,
			    memory_order_relaxed)) {
			expect = pos;
			atomic_compare_exchange_strong_explicit(
				&ring->tail, &expect, pos + 1,
				memory_order_relaxed, memory_order_relaxed);
			*pos_p = pos;
			return s;
		}
		if (d == 0 && slot_owner(st)) {
			/* claimed, tail not advanced yet: help */
			expect = pos;
			atomic_compare_exchange_strong_explicit(
				&ring->tail, &expect, pos + 1,
				memory_order_relaxed, memory_order_relaxed);
		}
		pos = atomic_load_explicit(&ring->tail, memory_order_relaxed);
	}
}

static int fab_ring_put(struct fab_port *port, struct fab_ring *ring,
			const void *hdr, size_t hdr_len, const void *payload,
			size_t payload_len, const struct fab_fault_plan *plan,
			unsigned int copy)
{
	const uint64_t me = (uint64_t)fab_port_tag(port) << 32;
	size_t len = hdr_len + payload_len;
	struct fab_slot *s;
	uint64_t due = 0;
	uint32_t pos;

	s = fab_ring_claim(ring, me, &pos);
	if (!s)
		return -EAGAIN;
	if (hdr_len)
		memcpy(s->data, hdr, hdr_len);
	if (payload_len)
		memcpy(s->data + hdr_len, payload, payload_len);
	s->len = (uint32_t)len;
	s->flags = 0;
	if (plan) {
		if (plan->crc) {
			s->flags = FAB_SLOT_CRC;
			s->crc = fab_crc32c(s->data, len);
		}
		if (plan->flip[copy] >= 0 && len)
			s->data[plan->flip[copy]] ^= 0xff;
		else if (plan->flip[copy] >= 0)
			s->crc = ~s->crc;
		if (plan->delay_ns)
			due = fab_wire_now_ns() + plan->delay_ns;
	}
	atomic_store_explicit(&s->due_ns, due, memory_order_relaxed);
	/*
	 * seq_cst, not just release: with the seq_cst load of `sleeping` in
	 * fab_ring_wake it pairs with fab_wait (which sets `sleeping`, then
	 * looks at the ring): either the consumer sees this packet or we see
	 * it sleeping.
	 */
	atomic_store(&s->state, (uint64_t)(pos + 1) | me);
	return 0;
}

static void fab_futex(_Atomic uint32_t *word, int op, uint32_t val,
		      int64_t timeout_ns)
{
	struct timespec ts, *tsp = NULL;

	if (timeout_ns >= 0) {
		ts.tv_sec = timeout_ns / 1000000000;
		ts.tv_nsec = timeout_ns % 1000000000;
		tsp = &ts;
	}
	/* shared (no FUTEX_PRIVATE_FLAG): waker and sleeper are processes */
	syscall(SYS_futex, (void *)word, op, val, tsp, NULL, 0);
}

static void fab_ring_wake(struct fab_ring *ring, unsigned int flags, bool force)
{
	if (!atomic_load(&ring->sleeping))
		return;
	if (!force && !(flags & FAB_SEND_WAKE) &&
	    atomic_load_explicit(&ring->mode, memory_order_relaxed) !=
		    FAB_WAKE_NEEDED)
		return;
	atomic_fetch_add(&ring->futex, 1);
	fab_futex(&ring->futex, FUTEX_WAKE, INT32_MAX, -1);
}

/*
 * After @sent copies went out (@ret: result of the last attempt).  A full
 * ring wakes a sleeping consumer whatever its mode, so it can make room; a
 * full ring whose owner died or closed it (its slot not reclaimed yet) is
 * unreachable, so senders to it fail like on a dead link instead of
 * waiting forever.
 */
static int fab_sent(struct fab_port *port, struct fab_ring *ring,
		    const struct fab_dest *dest, unsigned int sent, int ret,
		    unsigned int flags)
{
	port->stats.tx_pkts += sent;
	if (sent) {
		fab_ring_wake(ring, flags, false);
		return 0;
	}
	port->stats.tx_ring_full++;
	fab_ring_wake(ring, flags, true);
	if (flags & FAB_SEND_UNRELIABLE)
		return 0;
	if (!fab_port_alive(port->reg, dest->port_slot, dest->port_gen))
		ret = -EHOSTUNREACH;
	return ret;
}

static int fab_send_faulty(struct fab_port *port, struct fab_ring *ring,
			   const struct fab_dest *dest, const void *hdr,
			   size_t hdr_len, const void *payload,
			   size_t payload_len, unsigned int flags)
{
	struct fab_fault_plan plan;
	unsigned int i;
	int ret = 0;

	fab_faults_plan(&plan, hdr_len + payload_len);
	if (plan.copies > 1 && (flags & FAB_SEND_NODUP))
		plan.copies = 1;
	if (!plan.copies) {
		port->stats.tx_fault_drop++;
		return 0;
	}
	for (i = 0; i < plan.copies; i++) {
		ret = fab_ring_put(port, ring, hdr, hdr_len, payload,
				   payload_len, &plan, i);
		if (ret)
			break;
		if (plan.flip[i] >= 0)
			port->stats.tx_fault_corrupt++;
		if (i)
			port->stats.tx_fault_dup++;
	}
	return fab_sent(port, ring, dest, i, ret, flags);
}

int fab_send(struct fab_port *port, const struct fab_dest *dest,
	     const void *hdr, size_t hdr_len, const void *payload,
	     size_t payload_len, unsigned int flags)
{
	struct fab_ring *ring;
	int ret;

	if (hdr_len + payload_len > FAB_PKT_MAX)
		return -EMSGSIZE;
	ret = fab_dest_ring(port, dest, &ring);
	if (ret)
		return ret;
	if (!(flags & FAB_SEND_NOFAULT) &&
	    atomic_load_explicit(&fab_faults_on, memory_order_relaxed))
		return fab_send_faulty(port, ring, dest, hdr, hdr_len, payload,
				       payload_len, flags);
	ret = fab_ring_put(port, ring, hdr, hdr_len, payload, payload_len, NULL,
			   0);
	return fab_sent(port, ring, dest, !ret, ret, flags);
}

uint32_t fab_mark(struct fab_port *port, const struct fab_dest *dest)
{
	struct fab_ring *ring;

	if (fab_dest_ring(port, dest, &ring))
		return 0;
	return atomic_load_explicit(&ring->tail, memory_order_relaxed);
}

bool fab_consumed(struct fab_port *port, const struct fab_dest *dest,
		  uint32_t mark)
{
	struct fab_ring *ring;
	uint64_t st;
	uint32_t pos = mark - 1;

	if (fab_dest_ring(port, dest, &ring))
		return true;
	/* consumed: the slot moved on to pos + N (or a later lap) */
	st = atomic_load_explicit(&ring->slots[pos & FAB_RING_MASK].state,
				  memory_order_acquire);
	return (int32_t)(slot_seq(st) - pos) >= (int32_t)FAB_RING_SLOTS;
}

bool fab_dest_alive(struct fab_port *port, const struct fab_dest *dest)
{
	return fab_port_alive(port->reg, dest->port_slot, dest->port_gen);
}

/* The slot at @head is claimed, not published: skip it if its owner died. */
static bool fab_ring_skip_dead(struct fab_port *port, struct fab_slot *s,
			       uint32_t head, uint64_t st)
{
	uint32_t tag = slot_owner(st);
	uint64_t now = fab_now_ns();

	if (port->stall_pos != head || !port->stall_since) {
		port->stall_pos = head;
		port->stall_since = now;
		return false;
	}
	if (now - port->stall_since < FAB_STALL_NS)
		return false;
	port->stall_since = now;
	if (fab_port_alive(port->reg, tag & 0xff, tag >> 8) ||
	    !atomic_compare_exchange_strong(&s->state, &st,
					    head + FAB_RING_SLOTS))
		return false;
	port->stats.rx_dead_skip++;
	fab_log("port %u: dropped a packet left unfinished by the dead owner "
		"of port %u",
		port->slot, tag & 0xff);
	return true;
}

static inline bool fab_slot_intact(const struct fab_slot *s)
{
	if (s->len > FAB_PKT_MAX)
		return false;
	return !(s->flags & FAB_SLOT_CRC) ||
	       fab_crc32c(s->data, s->len) == s->crc;
}

int fab_poll(struct fab_port *port, fab_rx_cb cb, void *arg, int max)
{
	struct fab_ring *ring = port->ring;
	uint32_t head = atomic_load_explicit(&port->head, memory_order_relaxed);
	bool down = atomic_load_explicit(
		&port->reg->map->nodes[port->id.index].down,
		memory_order_relaxed);
	uint64_t st, due, now = 0;
	struct fab_slot *s;
	int n = 0;

	while (n < max) {
		s = &ring->slots[head & FAB_RING_MASK];
		st = atomic_load_explicit(&s->state, memory_order_acquire);
		if (slot_seq(st) != head + 1) {
			if (slot_seq(st) != head || !slot_owner(st) ||
			    !fab_ring_skip_dead(port, s, head, st))
				break;
		} else {
			due = atomic_load_explicit(&s->due_ns,
						   memory_order_relaxed);
			if (due && now < due && (now = fab_wire_now_ns()) < due)
				break; /* FIFO: all behind it wait too */
			if (down) {
				port->stats.rx_node_down++;
			} else if (!fab_slot_intact(s)) {
				port->stats.rx_bad_crc++;
			} else {
				cb(arg, s->data, s->len);
				port->stats.rx_pkts++;
				n++;
			}
			atomic_store_explicit(&s->state, head + FAB_RING_SLOTS,
					      memory_order_release);
		}
		head++;
		atomic_store_explicit(&port->head, head, memory_order_release);
	}
	return n;
}

enum fab_head {
	FAB_HEAD_EMPTY,
	FAB_HEAD_READY,
	FAB_HEAD_LATER, /* delayed by fault injection */
	FAB_HEAD_BUSY, /* being written, or left unfinished by a dead producer */
};

/* What the consumer's next packet is like; any thread. */
static enum fab_head fab_head_peek(struct fab_port *port, uint64_t *left_ns)
{
	struct fab_slot *s;
	uint64_t st, due, now;
	uint32_t head;
	int i;

	for (i = 0; i < 1000; i++) {
		head = atomic_load_explicit(&port->head, memory_order_acquire);
		s = &port->ring->slots[head & FAB_RING_MASK];
		st = atomic_load(&s->state); /* seq_cst: see fab_ring_put */
		if (slot_seq(st) == head + 1) {
			due = atomic_load_explicit(&s->due_ns,
						   memory_order_relaxed);
			if (!due || (now = fab_wire_now_ns()) >= due)
				return FAB_HEAD_READY;
			*left_ns = due - now;
			return FAB_HEAD_LATER;
		}
		if (slot_seq(st) == head)
			return slot_owner(st) ? FAB_HEAD_BUSY : FAB_HEAD_EMPTY;
		/* consumed by a concurrent fab_poll: read head again */
	}
	return FAB_HEAD_READY;
}

bool fab_rx_pending(struct fab_port *port)
{
	uint64_t left;
	enum fab_head h = fab_head_peek(port, &left);

	return h == FAB_HEAD_READY || h == FAB_HEAD_BUSY;
}

static int64_t fab_min_timeout(int64_t timeout_ns, int64_t limit_ns)
{
	return timeout_ns < 0 || timeout_ns > limit_ns ? limit_ns : timeout_ns;
}

/* 0 if a packet is deliverable now, else how long to sleep (<0: forever). */
static int64_t fab_wait_budget(struct fab_port *port, int64_t timeout_ns)
{
	uint64_t left = 0;

	switch (fab_head_peek(port, &left)) {
	case FAB_HEAD_READY:
		return 0;
	case FAB_HEAD_LATER:
		return fab_min_timeout(timeout_ns, (int64_t)left);
	case FAB_HEAD_BUSY:
		return fab_min_timeout(timeout_ns, FAB_STALL_POLL_NS);
	default:
		return timeout_ns;
	}
}

void fab_wait(struct fab_port *port, int64_t timeout_ns)
{
	struct fab_ring *ring = port->ring;
	uint32_t seq;
	int64_t t;

	if (atomic_exchange(&ring->kick, 0))
		return;
	seq = atomic_load(&ring->futex);
	atomic_fetch_add(&ring->sleeping, 1);
	t = fab_wait_budget(port, timeout_ns);
	if (t && !atomic_load(&ring->kick))
		fab_futex(&ring->futex, FUTEX_WAIT, seq, t);
	atomic_fetch_sub(&ring->sleeping, 1);
	atomic_exchange(&ring->kick, 0);
}

void fab_kick(struct fab_port *port)
{
	struct fab_ring *ring = port->ring;

	atomic_store(&ring->kick, 1);
	if (atomic_load(&ring->sleeping)) {
		atomic_fetch_add(&ring->futex, 1);
		fab_futex(&ring->futex, FUTEX_WAKE, INT32_MAX, -1);
	}
}

void fab_set_wake_mode(struct fab_port *port, enum fab_wake_mode mode)
{
	atomic_store(&port->ring->mode, mode);
}
