/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>

#include "vid.h"

#define ISN_QPN_MASK 0xffffffu
#define ISN_TEST_QPN_OFF 0x1000u
#define ISN_TEST_KEY_XOR 0x5a5a00u
#define ISN_TEST_LID_OFF 100u
#define ISN_TEST_GID_XOR 0x55u
#define ISN_MAX_PEERS 4096u
#define ISN_PEER_VAL 0x80000000u /* LIDs are 16 bits: never k -> k */

atomic_bool isn_vid_on;

static struct {
	int test; /* enum isn_vid_test */
	uint32_t test_k; /* this node's, in test mode */
	struct isn_vid_pair local[ISN_VID_NKINDS];
	struct isn_vid_gidmap lgid_to_real, lgid_to_virt;
	struct isn_vid_pair rlid;
	struct isn_vid_gidmap rgid_to_real, rgid_to_virt;
	struct isn_vid_peer *_Atomic peers;
	struct isn_vid_peer *_Atomic peer_at[ISN_MAX_PEERS];
	uint32_t npeers;
	struct isn_vid_map peer_by_lid; /* vlid -> index | ISN_PEER_VAL */
	struct isn_vid_gidmap peer_by_gid; /* vgid -> index in raw[12..15] */
	pthread_mutex_t lock; /* adding peers */
} vid;

static void pair_init(struct isn_vid_pair *p)
{
	isn_vid_map_init(&p->to_real);
	isn_vid_map_init(&p->to_virt);
}

static void pair_destroy(struct isn_vid_pair *p)
{
	isn_vid_map_destroy(&p->to_real);
	isn_vid_map_destroy(&p->to_virt);
}

void isn_vid_init(int test_mode)
{
	int k;

	vid.test = test_mode;
	vid.test_k = 1;
	vid.npeers = 0;
	isn_vid_map_init(&vid.peer_by_lid);
	isn_vid_gidmap_init(&vid.peer_by_gid);
	for (k = 0; k < ISN_VID_NKINDS; k++)
		pair_init(&vid.local[k]);
	pair_init(&vid.rlid);
	isn_vid_gidmap_init(&vid.lgid_to_real);
	isn_vid_gidmap_init(&vid.lgid_to_virt);
	isn_vid_gidmap_init(&vid.rgid_to_real);
	isn_vid_gidmap_init(&vid.rgid_to_virt);
	atomic_init(&vid.peers, NULL);
	pthread_mutex_init(&vid.lock, NULL);
	atomic_store(&isn_vid_on, test_mode != ISN_VID_TEST_OFF);
}

void isn_vid_fini(void)
{
	struct isn_vid_peer *p = atomic_load(&vid.peers), *next;
	int k;

	atomic_store(&isn_vid_on, false);
	for (; p; p = next) {
		next = p->next;
		for (k = 0; k < ISN_VID_NKINDS; k++)
			pair_destroy(&p->id[k]);
		atomic_store(&vid.peer_at[p->index], NULL);
		free(p);
	}
	atomic_store(&vid.peers, NULL);
	isn_vid_map_destroy(&vid.peer_by_lid);
	isn_vid_gidmap_destroy(&vid.peer_by_gid);
	for (k = 0; k < ISN_VID_NKINDS; k++)
		pair_destroy(&vid.local[k]);
	pair_destroy(&vid.rlid);
	isn_vid_gidmap_destroy(&vid.lgid_to_real);
	isn_vid_gidmap_destroy(&vid.lgid_to_virt);
	isn_vid_gidmap_destroy(&vid.rgid_to_real);
	isn_vid_gidmap_destroy(&vid.rgid_to_virt);
	pthread_mutex_destroy(&vid.lock);
	/* no reader is left: every retired copy goes too */
	isn_vid_old_free(isn_vid_old_take());
	vid.test = ISN_VID_TEST_OFF;
}

bool isn_vid_test_mode(void)
{
	return vid.test != ISN_VID_TEST_OFF;
}

/* Node test mode: k of a node from its real LID or real GID's last byte. */
static uint32_t test_k_of(uint32_t real)
{
	return vid.test == ISN_VID_TEST_NODE ? 1 + (real & 0xf) : 1;
}

void isn_vid_test_set_local(uint32_t real)
{
	vid.test_k = test_k_of(real);
}

/* IDs with a fixed meaning are never translated. */
static bool id_is_special(enum isn_vid_kind kind, uint32_t id)
{
	switch (kind) {
	case ISN_VID_QPN:
		return id <= 1 || id >= ISN_QPN_MASK;
	case ISN_VID_LID:
		return id == 0 || id >= 0xc000; /* none, multicast */
	default:
		return false;
	}
}

/* Test mode: the real -> virtual offset of a node with multiplier @k. */
static uint32_t test_to_virt(enum isn_vid_kind kind, uint32_t real, uint32_t k)
{
	switch (kind) {
	case ISN_VID_QPN:
	case ISN_VID_SRQN:
		return (real + ISN_TEST_QPN_OFF * k) & ISN_QPN_MASK;
	case ISN_VID_LKEY:
	case ISN_VID_RKEY:
		return real ^ (ISN_TEST_KEY_XOR * k);
	case ISN_VID_LID:
		return (real + ISN_TEST_LID_OFF) & 0xffff;
	default:
		return real;
	}
}

static uint32_t test_to_real(enum isn_vid_kind kind, uint32_t virt, uint32_t k)
{
	switch (kind) {
	case ISN_VID_QPN:
	case ISN_VID_SRQN:
		return (virt - ISN_TEST_QPN_OFF * k) & ISN_QPN_MASK;
	case ISN_VID_LKEY:
	case ISN_VID_RKEY:
		return virt ^ (ISN_TEST_KEY_XOR * k);
	case ISN_VID_LID:
		return (virt - ISN_TEST_LID_OFF) & 0xffff;
	default:
		return virt;
	}
}

uint32_t isn_vid_local_new(enum isn_vid_kind kind, uint32_t real)
{
	struct isn_vid_pair *p = &vid.local[kind];
	uint32_t virt;

	if (isn_vid_map_get(&p->to_virt, real, &virt))
		return virt; /* known: an object rebuilt, a port queried again */
	if (!vid.test || id_is_special(kind, real))
		return real;
	virt = test_to_virt(kind, real, vid.test_k);
	if (isn_vid_map_set(&p->to_real, virt, real) ||
	    isn_vid_map_set(&p->to_virt, real, virt)) {
		isn_vid_map_del(&p->to_real, virt);
		return real; /* out of memory: hand out the real ID */
	}
	return virt;
}

/* Does @real map back to @virt in @p?  (Absent: identity.) */
static bool vid_back_is(struct isn_vid_pair *p, uint32_t real, uint32_t virt)
{
	uint32_t v;

	return isn_vid_map_get(&p->to_virt, real, &v) ? v == virt :
							real == virt;
}

int isn_vid_local_set(enum isn_vid_kind kind, uint32_t virt, uint32_t real)
{
	struct isn_vid_pair *p = &vid.local[kind];
	uint32_t old;
	int ret;

	/* its old real ID's reverse entry goes, unless that real ID has
	 * been given to another virtual one meanwhile (a rebuild that maps
	 * B to A's old real ID before it maps A anew) */
	if (isn_vid_map_get(&p->to_real, virt, &old) &&
	    vid_back_is(p, old, virt))
		isn_vid_map_del(&p->to_virt, old);
	ret = isn_vid_map_set(&p->to_real, virt, real);
	if (!ret)
		ret = isn_vid_map_set(&p->to_virt, real, virt);
	if (!ret && virt != real)
		atomic_store(&isn_vid_on, true);
	return ret;
}

bool isn_vid_local_taken(enum isn_vid_kind kind, uint32_t id)
{
	uint32_t real;

	return isn_vid_map_get(&vid.local[kind].to_real, id, &real);
}

void isn_vid_local_forget(enum isn_vid_kind kind, uint32_t virt)
{
	struct isn_vid_pair *p = &vid.local[kind];
	uint32_t real;

	if (!isn_vid_map_get(&p->to_real, virt, &real))
		return;
	isn_vid_map_del(&p->to_real, virt);
	if (vid_back_is(p, real, virt))
		isn_vid_map_del(&p->to_virt, real);
}

uint32_t isn_vid_local_to_real(enum isn_vid_kind kind, uint32_t virt)
{
	uint32_t real;

	return isn_vid_map_get(&vid.local[kind].to_real, virt, &real) ? real :
									virt;
}

uint32_t isn_vid_local_to_virt(enum isn_vid_kind kind, uint32_t real)
{
	uint32_t virt;

	return isn_vid_map_get(&vid.local[kind].to_virt, real, &virt) ? virt :
									real;
}

static struct isn_vid_map *remote_map(const struct isn_vid_peer *peer,
				      enum isn_vid_kind kind, bool to_real)
{
	const struct isn_vid_pair *p;

	if (kind == ISN_VID_LID)
		p = &vid.rlid;
	else if (peer)
		p = &peer->id[kind];
	else
		return NULL;
	return (struct isn_vid_map *)(to_real ? &p->to_real : &p->to_virt);
}

uint32_t isn_vid_remote_to_real(const struct isn_vid_peer *peer,
				enum isn_vid_kind kind, uint32_t virt)
{
	struct isn_vid_map *m = remote_map(peer, kind, true);
	uint32_t real;

	if (id_is_special(kind, virt))
		return virt;
	if (m && isn_vid_map_get(m, virt, &real))
		return real;
	return vid.test ? test_to_real(kind, virt, peer ? peer->test_k : 1) :
			  virt;
}

uint32_t isn_vid_remote_to_virt(const struct isn_vid_peer *peer,
				enum isn_vid_kind kind, uint32_t real)
{
	struct isn_vid_map *m = remote_map(peer, kind, false);
	uint32_t virt;

	if (id_is_special(kind, real))
		return real;
	if (m && isn_vid_map_get(m, real, &virt))
		return virt;
	return vid.test ? test_to_virt(kind, real, peer ? peer->test_k : 1) :
			  real;
}

static bool gid_is_special(const union ibv_gid *gid)
{
	static const union ibv_gid zero;

	return gid->raw[0] == 0xff || !memcmp(gid, &zero, sizeof(zero));
}

static void test_gid_flip(const union ibv_gid *in, union ibv_gid *out)
{
	*out = *in;
	out->raw[15] ^= ISN_TEST_GID_XOR;
}

void isn_vid_gid_local_new(const union ibv_gid *real, union ibv_gid *virt)
{
	union ibv_gid r = *real, v;

	*virt = r;
	if (isn_vid_gidmap_get(&vid.lgid_to_virt, &r, &v)) {
		*virt = v; /* known: a port rebuilt, a GID queried again */
		return;
	}
	if (!vid.test || gid_is_special(&r))
		return;
	test_gid_flip(&r, &v);
	if (isn_vid_gidmap_set(&vid.lgid_to_real, &v, &r) ||
	    isn_vid_gidmap_set(&vid.lgid_to_virt, &r, &v))
		return; /* out of memory: hand out the real GID */
	*virt = v;
}

int isn_vid_gid_local_set(const union ibv_gid *virt, const union ibv_gid *real)
{
	union ibv_gid old;
	int ret;

	if (isn_vid_gidmap_get(&vid.lgid_to_real, virt, &old))
		isn_vid_gidmap_set(&vid.lgid_to_virt, &old, &old);
	ret = isn_vid_gidmap_set(&vid.lgid_to_real, virt, real);
	if (!ret)
		ret = isn_vid_gidmap_set(&vid.lgid_to_virt, real, virt);
	if (!ret && memcmp(virt, real, sizeof(*real)))
		atomic_store(&isn_vid_on, true);
	return ret;
}

void isn_vid_gid_local_to_real(const union ibv_gid *virt, union ibv_gid *real)
{
	if (!isn_vid_gidmap_get(&vid.lgid_to_real, virt, real))
		*real = *virt;
}

/* The flip of test mode is its own inverse: one helper serves both ways. */
static void gid_remote(struct isn_vid_gidmap *m, const union ibv_gid *in,
		       union ibv_gid *out)
{
	if (gid_is_special(in))
		*out = *in;
	else if (isn_vid_gidmap_get(m, in, out))
		return;
	else if (vid.test)
		test_gid_flip(in, out);
	else
		*out = *in;
}

void isn_vid_gid_remote_to_real(const union ibv_gid *virt, union ibv_gid *real)
{
	gid_remote(&vid.rgid_to_real, virt, real);
}

void isn_vid_gid_remote_to_virt(const union ibv_gid *real, union ibv_gid *virt)
{
	gid_remote(&vid.rgid_to_virt, real, virt);
}

/*
 * A peer in a new incarnation: its previous real LID or GID no longer maps
 * back to its virtual one (else every incarnation adds an entry for good,
 * and each copy of a GID map, kept for lock-free readers, grows with them).
 * Only our own entry goes: the old real name may be another peer's by now.
 */
int isn_vid_remote_lid_map(uint16_t virt, uint16_t real)
{
	uint32_t old, back;
	int ret;

	if (isn_vid_map_get(&vid.rlid.to_real, virt, &old) && old != real &&
	    isn_vid_map_get(&vid.rlid.to_virt, old, &back) && back == virt)
		isn_vid_map_del(&vid.rlid.to_virt, old);
	ret = isn_vid_map_set(&vid.rlid.to_real, virt, real);

	if (!ret)
		ret = isn_vid_map_set(&vid.rlid.to_virt, real, virt);
	if (!ret)
		atomic_store(&isn_vid_on, true);
	return ret;
}

int isn_vid_remote_gid_map(const union ibv_gid *virt, const union ibv_gid *real)
{
	union ibv_gid old, back;
	int ret;

	if (isn_vid_gidmap_get(&vid.rgid_to_real, virt, &old) &&
	    memcmp(&old, real, sizeof(old)) &&
	    isn_vid_gidmap_get(&vid.rgid_to_virt, &old, &back) &&
	    !memcmp(&back, virt, sizeof(back)))
		isn_vid_gidmap_set(&vid.rgid_to_virt, &old, &old);
	ret = isn_vid_gidmap_set(&vid.rgid_to_real, virt, real);

	if (!ret)
		ret = isn_vid_gidmap_set(&vid.rgid_to_virt, real, virt);
	if (!ret)
		atomic_store(&isn_vid_on, true);
	return ret;
}

static bool peer_gid_ok(const union ibv_gid *gid)
{
	return gid && !gid_is_special(gid);
}

struct isn_vid_peer *isn_vid_peer_find(const union ibv_gid *vgid, uint16_t vlid)
{
	union ibv_gid v;
	uint32_t idx;

	if (peer_gid_ok(vgid) &&
	    isn_vid_gidmap_get(&vid.peer_by_gid, vgid, &v)) {
		memcpy(&idx, &v.raw[12], sizeof(idx));
		return atomic_load_explicit(&vid.peer_at[idx],
					    memory_order_acquire);
	}
	if (vlid && isn_vid_map_get(&vid.peer_by_lid, vlid, &idx))
		return atomic_load_explicit(&vid.peer_at[idx & ~ISN_PEER_VAL],
					    memory_order_acquire);
	return NULL;
}

/* Index @p under its names (lock held); 0 or -ENOMEM. */
static int peer_index(struct isn_vid_peer *p)
{
	union ibv_gid v;
	int ret = 0;

	if (peer_gid_ok(&p->vgid)) {
		memset(&v, 0xff, sizeof(v));
		memcpy(&v.raw[12], &p->index, sizeof(p->index));
		ret = isn_vid_gidmap_set(&vid.peer_by_gid, &p->vgid, &v);
	}
	if (!ret && p->vlid)
		ret = isn_vid_map_set(&vid.peer_by_lid, p->vlid,
				      p->index | ISN_PEER_VAL);
	return ret;
}

/* Test mode: a peer's multiplier, from its virtual name. */
static uint32_t peer_test_k(const union ibv_gid *vgid, uint16_t vlid)
{
	if (vlid)
		return test_k_of((vlid - ISN_TEST_LID_OFF) & 0xffff);
	if (peer_gid_ok(vgid))
		return test_k_of(vgid->raw[15] ^ ISN_TEST_GID_XOR);
	return 1;
}

struct isn_vid_peer *isn_vid_peer_add(const union ibv_gid *vgid, uint16_t vlid)
{
	struct isn_vid_peer *p;
	int k;

	pthread_mutex_lock(&vid.lock);
	p = isn_vid_peer_find(vgid, vlid);
	if (p || vid.npeers == ISN_MAX_PEERS)
		goto out;
	p = calloc(1, sizeof(*p));
	if (!p)
		goto out;
	if (vgid)
		p->vgid = *vgid;
	p->vlid = vlid;
	p->index = vid.npeers;
	p->test_k = peer_test_k(vgid, vlid);
	for (k = 0; k < ISN_VID_NKINDS; k++)
		pair_init(&p->id[k]);
	atomic_store_explicit(&vid.peer_at[p->index], p, memory_order_release);
	if (peer_index(p)) {
		atomic_store(&vid.peer_at[p->index], NULL);
		free(p);
		p = NULL;
		goto out;
	}
	vid.npeers++;
	p->next = atomic_load(&vid.peers);
	atomic_store_explicit(&vid.peers, p, memory_order_release);
out:
	pthread_mutex_unlock(&vid.lock);
	return p;
}

struct isn_vid_peer *isn_vid_peer_get(const union ibv_gid *vgid, uint16_t vlid)
{
	struct isn_vid_peer *p = isn_vid_peer_find(vgid, vlid);

	if (p || !vid.test || (!peer_gid_ok(vgid) && !vlid))
		return p;
	return isn_vid_peer_add(peer_gid_ok(vgid) ? vgid : NULL, vlid);
}

struct isn_vid_peer *isn_vid_peer_of_real(const union ibv_gid *rgid,
					  uint16_t rlid)
{
	union ibv_gid vg;
	uint16_t vl = 0;

	if (rlid)
		vl = (uint16_t)isn_vid_remote_to_virt(NULL, ISN_VID_LID, rlid);
	if (!peer_gid_ok(rgid))
		return isn_vid_peer_get(NULL, vl);
	isn_vid_gid_remote_to_virt(rgid, &vg);
	return isn_vid_peer_get(&vg, vl);
}

/* As for LIDs: the peer's previous real ID of @virt maps back no more (each
 * incarnation of the peer left one entry per ID in to_virt for good), unless
 * another of its IDs took that real one since. */
int isn_vid_peer_map(struct isn_vid_peer *peer, enum isn_vid_kind kind,
		     uint32_t virt, uint32_t real)
{
	struct isn_vid_pair *p = &peer->id[kind];
	uint32_t old;
	int ret;

	if (isn_vid_map_get(&p->to_real, virt, &old) && old != real &&
	    vid_back_is(p, old, virt))
		isn_vid_map_del(&p->to_virt, old);
	ret = isn_vid_map_set(&p->to_real, virt, real);
	if (!ret)
		ret = isn_vid_map_set(&p->to_virt, real, virt);
	if (!ret)
		atomic_store(&isn_vid_on, true);
	return ret;
}
