/* SPDX-License-Identifier: MIT */
/*
 * ID maps of virt-ids: open addressing, lock-free readers, one writer at a
 * time (a mutex).
 *
 * struct isn_vid_map maps a 32-bit ID to a 32-bit ID.  An entry is one 64-bit
 * word (key << 32 | value) so a reader sees a whole entry or none.  A map never
 * holds k -> k: absence means identity, so the words 0 (empty) and
 * 1 << 32 | 1 (deleted) cannot collide with an entry.  Growing publishes a new
 * slot array.
 *
 * struct isn_vid_gidmap maps a GID to a GID.  It is small (a few GIDs per
 * node) and changes rarely, so every change publishes a new immutable
 * open-addressing copy.
 *
 * A replaced slot array or GID table is retired, not freed: a reader may
 * still be walking it.  Every map's retired copies go on one list; whoever
 * knows a grace period (no reader inside any map, e.g. a checkpoint that
 * holds every poster, poller and control call: drain/driver.c) takes the
 * list, waits out the readers that started before, and frees it.
 */
#ifndef IBSNAP_VID_MAP_H
#define IBSNAP_VID_MAP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <infiniband/verbs.h>

#define ISN_VID_EMPTY 0ull
#define ISN_VID_DELETED ((1ull << 32) | 1ull)

/* A retired copy (the head of its allocation) on the retired list. */
struct isn_vid_old {
	struct isn_vid_old *next;
	size_t bytes;
};

struct isn_vid_slots {
	struct isn_vid_old old; /* first: retired, the whole array is freed */
	uint32_t mask; /* slots - 1; slots is a power of two */
	uint32_t used; /* entries + deleted words */
	_Atomic uint64_t word[];
};

struct isn_vid_map {
	struct isn_vid_slots *_Atomic slots;
	pthread_mutex_t lock;
	uint32_t count;
};

void isn_vid_map_init(struct isn_vid_map *m);
void isn_vid_map_destroy(struct isn_vid_map *m);
/* Map @key to @val (replacing); @key == @val removes.  0 or -ENOMEM. */
int isn_vid_map_set(struct isn_vid_map *m, uint32_t key, uint32_t val);
void isn_vid_map_del(struct isn_vid_map *m, uint32_t key);
uint32_t isn_vid_map_count(struct isn_vid_map *m);

static inline uint32_t isn_vid_hash(uint32_t key)
{
	return key * 0x9e3779b1u;
}

/* The value @key maps to, or @key itself (identity) if it is not mapped. */
static inline bool isn_vid_map_get(struct isn_vid_map *m, uint32_t key,
				   uint32_t *val)
{
	struct isn_vid_slots *s =
		atomic_load_explicit(&m->slots, memory_order_acquire);
	uint32_t i;

	if (!s)
		return false;
	for (i = isn_vid_hash(key) & s->mask;; i = (i + 1) & s->mask) {
		uint64_t w =
			atomic_load_explicit(&s->word[i], memory_order_acquire);

		if (w == ISN_VID_EMPTY)
			return false;
		if (w != ISN_VID_DELETED && (uint32_t)(w >> 32) == key) {
			*val = (uint32_t)w;
			return true;
		}
	}
}

struct isn_vid_gident {
	union ibv_gid key, val;
};

struct isn_vid_gidtab {
	struct isn_vid_old old; /* first, as in struct isn_vid_slots */
	uint32_t mask; /* slots - 1; at least half are free */
	uint32_t n; /* entries */
	struct isn_vid_gident ent[]; /* free slot: key == val (all zero) */
};

struct isn_vid_gidmap {
	struct isn_vid_gidtab *_Atomic tab;
	pthread_mutex_t lock;
};

void isn_vid_gidmap_init(struct isn_vid_gidmap *m);
void isn_vid_gidmap_destroy(struct isn_vid_gidmap *m);
/* Map @key to @val (replacing); @key == @val removes.  0 or -ENOMEM. */
int isn_vid_gidmap_set(struct isn_vid_gidmap *m, const union ibv_gid *key,
		       const union ibv_gid *val);

static inline uint32_t isn_vid_gid_hash(const union ibv_gid *gid)
{
	uint32_t w[4];

	memcpy(w, gid->raw, sizeof(w));
	return isn_vid_hash(w[0] ^ w[1] ^ w[2] ^ w[3]);
}

static inline bool isn_vid_gidmap_get(struct isn_vid_gidmap *m,
				      const union ibv_gid *key,
				      union ibv_gid *val)
{
	struct isn_vid_gidtab *t =
		atomic_load_explicit(&m->tab, memory_order_acquire);
	uint32_t i;

	if (!t)
		return false;
	for (i = isn_vid_gid_hash(key) & t->mask;; i = (i + 1) & t->mask) {
		const struct isn_vid_gident *e = &t->ent[i];

		if (!memcmp(&e->key, &e->val, sizeof(*key)))
			return false;
		if (!memcmp(&e->key, key, sizeof(*key))) {
			*val = e->val;
			return true;
		}
	}
}

/*
 * Retired copies of every map.  isn_vid_old_take() detaches the copies
 * retired so far; the caller frees them with isn_vid_old_free() once every
 * reader that may have loaded one before the take has left its map.
 */
struct isn_vid_old *isn_vid_old_take(void);
void isn_vid_old_free(struct isn_vid_old *list);

struct isn_vid_old_stats {
	size_t kept, kept_bytes; /* retired, not taken yet */
	size_t freed, freed_bytes; /* freed by isn_vid_old_free() */
};

void isn_vid_old_stats(struct isn_vid_old_stats *st);

#endif /* IBSNAP_VID_MAP_H */
