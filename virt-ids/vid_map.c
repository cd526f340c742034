/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>

#include "vid_map.h"

#define ISN_VID_MIN_SLOTS 16u

/* every map's retired copies (see vid_map.h) */
static struct {
	pthread_mutex_t lock;
	struct isn_vid_old *head;
	size_t kept, kept_bytes, freed, freed_bytes;
} retired = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void old_retire(struct isn_vid_old *o)
{
	if (!o)
		return;
	pthread_mutex_lock(&retired.lock);
	o->next = retired.head;
	retired.head = o;
	retired.kept++;
	retired.kept_bytes += o->bytes;
	pthread_mutex_unlock(&retired.lock);
}

struct isn_vid_old *isn_vid_old_take(void)
{
	struct isn_vid_old *list;

	pthread_mutex_lock(&retired.lock);
	list = retired.head;
	retired.head = NULL;
	retired.kept = retired.kept_bytes = 0;
	pthread_mutex_unlock(&retired.lock);
	return list;
}

void isn_vid_old_free(struct isn_vid_old *list)
{
	struct isn_vid_old *next;
	size_t n = 0, bytes = 0;

	for (; list; list = next) {
		next = list->next;
		n++;
		bytes += list->bytes;
		free(list);
	}
	pthread_mutex_lock(&retired.lock);
	retired.freed += n;
	retired.freed_bytes += bytes;
	pthread_mutex_unlock(&retired.lock);
}

void isn_vid_old_stats(struct isn_vid_old_stats *st)
{
	pthread_mutex_lock(&retired.lock);
	st->kept = retired.kept;
	st->kept_bytes = retired.kept_bytes;
	st->freed = retired.freed;
	st->freed_bytes = retired.freed_bytes;
	pthread_mutex_unlock(&retired.lock);
}

void isn_vid_map_init(struct isn_vid_map *m)
{
	atomic_init(&m->slots, NULL);
	pthread_mutex_init(&m->lock, NULL);
	m->count = 0;
}

/* No reader may be left (its retired copies stay on the retired list). */
void isn_vid_map_destroy(struct isn_vid_map *m)
{
	free(atomic_load(&m->slots));
	atomic_store(&m->slots, NULL);
	m->count = 0;
	pthread_mutex_destroy(&m->lock);
}

static struct isn_vid_slots *slots_alloc(uint32_t n)
{
	size_t bytes = sizeof(struct isn_vid_slots) + n * sizeof(uint64_t);
	struct isn_vid_slots *s;
	uint32_t i;

	s = malloc(bytes);
	if (!s)
		return NULL;
	s->old = (struct isn_vid_old){ NULL, bytes };
	s->mask = n - 1;
	s->used = 0;
	for (i = 0; i < n; i++)
		atomic_init(&s->word[i], ISN_VID_EMPTY);
	return s;
}

/* Slot of @key, or of the first free word on its probe path (lock held). */
static uint32_t slots_find(struct isn_vid_slots *s, uint32_t key, bool *found)
{
	uint32_t i, free_i = UINT32_MAX;

	for (i = isn_vid_hash(key) & s->mask;; i = (i + 1) & s->mask) {
		uint64_t w =
			atomic_load_explicit(&s->word[i], memory_order_relaxed);

		if (w == ISN_VID_EMPTY)
			break;
		if (w == ISN_VID_DELETED) {
			if (free_i == UINT32_MAX)
				free_i = i;
			continue;
		}
		if ((uint32_t)(w >> 32) == key) {
			*found = true;
			return i;
		}
	}
	*found = false;
	return free_i != UINT32_MAX ? free_i : i;
}

/* Publish a copy of the live entries with room for @need of them. */
static int map_rehash(struct isn_vid_map *m, uint32_t need)
{
	struct isn_vid_slots *old = atomic_load(&m->slots), *s;
	uint32_t n = ISN_VID_MIN_SLOTS, i;

	while (n < 4 * need)
		n *= 2;
	s = slots_alloc(n);
	if (!s)
		return -ENOMEM;
	for (i = 0; old && i <= old->mask; i++) {
		uint64_t w = atomic_load(&old->word[i]);
		bool found;

		if (w == ISN_VID_EMPTY || w == ISN_VID_DELETED)
			continue;
		atomic_store_explicit(&s->word[slots_find(s, w >> 32, &found)],
				      w, memory_order_relaxed);
		s->used++;
	}
	atomic_store_explicit(&m->slots, s, memory_order_release);
	old_retire(old ? &old->old : NULL);
	return 0;
}

static int map_set_locked(struct isn_vid_map *m, uint32_t key, uint32_t val)
{
	struct isn_vid_slots *s = atomic_load(&m->slots);
	uint64_t w = (uint64_t)key << 32 | val;
	bool found;
	uint32_t i;

	if (!s || 2 * (s->used + 1) > s->mask + 1) {
		if (map_rehash(m, m->count + 1))
			return -ENOMEM;
		s = atomic_load(&m->slots);
	}
	i = slots_find(s, key, &found);
	if (!found) {
		if (atomic_load(&s->word[i]) == ISN_VID_EMPTY)
			s->used++;
		m->count++;
	}
	atomic_store_explicit(&s->word[i], w, memory_order_release);
	return 0;
}

int isn_vid_map_set(struct isn_vid_map *m, uint32_t key, uint32_t val)
{
	int ret = 0;

	if (key == val) {
		isn_vid_map_del(m, key);
		return 0;
	}
	pthread_mutex_lock(&m->lock);
	ret = map_set_locked(m, key, val);
	pthread_mutex_unlock(&m->lock);
	return ret;
}

void isn_vid_map_del(struct isn_vid_map *m, uint32_t key)
{
	struct isn_vid_slots *s;
	bool found;
	uint32_t i;

	pthread_mutex_lock(&m->lock);
	s = atomic_load(&m->slots);
	if (s) {
		i = slots_find(s, key, &found);
		if (found) {
			atomic_store_explicit(&s->word[i], ISN_VID_DELETED,
					      memory_order_release);
			m->count--;
		}
	}
	pthread_mutex_unlock(&m->lock);
}

uint32_t isn_vid_map_count(struct isn_vid_map *m)
{
	uint32_t n;

	pthread_mutex_lock(&m->lock);
	n = m->count;
	pthread_mutex_unlock(&m->lock);
	return n;
}

/* ---- GID maps ---- */

void isn_vid_gidmap_init(struct isn_vid_gidmap *m)
{
	atomic_init(&m->tab, NULL);
	pthread_mutex_init(&m->lock, NULL);
}

void isn_vid_gidmap_destroy(struct isn_vid_gidmap *m)
{
	free(atomic_load(&m->tab));
	atomic_store(&m->tab, NULL);
	pthread_mutex_destroy(&m->lock);
}

static bool gident_free(const struct isn_vid_gident *e)
{
	return !memcmp(&e->key, &e->val, sizeof(e->key));
}

static void gidtab_put(struct isn_vid_gidtab *t, const union ibv_gid *key,
		       const union ibv_gid *val)
{
	uint32_t i = isn_vid_gid_hash(key) & t->mask;

	while (!gident_free(&t->ent[i]))
		i = (i + 1) & t->mask;
	t->ent[i].key = *key;
	t->ent[i].val = *val;
	t->n++;
}

int isn_vid_gidmap_set(struct isn_vid_gidmap *m, const union ibv_gid *key,
		       const union ibv_gid *val)
{
	struct isn_vid_gidtab *old, *t;
	union ibv_gid cur;
	uint32_t n = 8, i;
	bool have;

	pthread_mutex_lock(&m->lock);
	/* no change, no new copy: a rebuild sets every local GID again,
	 * mostly to what it was */
	have = isn_vid_gidmap_get(m, key, &cur);
	if (have ? !memcmp(&cur, val, sizeof(cur)) :
		   !memcmp(key, val, sizeof(*key))) {
		pthread_mutex_unlock(&m->lock);
		return 0;
	}
	old = atomic_load(&m->tab);
	while (old && n < 2 * (old->n + 1))
		n *= 2;
	t = calloc(1, sizeof(*t) + n * sizeof(t->ent[0]));
	if (!t) {
		pthread_mutex_unlock(&m->lock);
		return -ENOMEM;
	}
	t->old.bytes = sizeof(*t) + n * sizeof(t->ent[0]);
	t->mask = n - 1;
	for (i = 0; old && i <= old->mask; i++) {
		const struct isn_vid_gident *e = &old->ent[i];

		if (!gident_free(e) && memcmp(&e->key, key, sizeof(*key)))
			gidtab_put(t, &e->key, &e->val);
	}
	if (memcmp(key, val, sizeof(*key)))
		gidtab_put(t, key, val);
	atomic_store_explicit(&m->tab, t, memory_order_release);
	old_retire(old ? &old->old : NULL);
	pthread_mutex_unlock(&m->lock);
	return 0;
}
