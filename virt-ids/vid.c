/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>

#include "vid.h"

#define ISN_QPN_MASK 0xffffffu
#define ISN_TEST_QPN_OFF 0x1000u
#define ISN_TEST_KEY_XOR 0x5a5a00u
#define ISN_TEST_LID_OFF 100u
#define ISN_TEST_GID_XOR 0x55u

atomic_bool isn_vid_on;

static struct {
	bool test;
	struct isn_vid_pair local[ISN_VID_NKINDS];
	struct isn_vid_gidmap lgid_to_real, lgid_to_virt;
	struct isn_vid_pair rlid;
	struct isn_vid_gidmap rgid_to_real, rgid_to_virt;
	struct isn_vid_peer *_Atomic peers;
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

void isn_vid_init(bool test_remap)
{
	int k;

	vid.test = test_remap;
	for (k = 0; k < ISN_VID_NKINDS; k++)
		pair_init(&vid.local[k]);
	pair_init(&vid.rlid);
	isn_vid_gidmap_init(&vid.lgid_to_real);
	isn_vid_gidmap_init(&vid.lgid_to_virt);
	isn_vid_gidmap_init(&vid.rgid_to_real);
	isn_vid_gidmap_init(&vid.rgid_to_virt);
	atomic_init(&vid.peers, NULL);
	pthread_mutex_init(&vid.lock, NULL);
	atomic_store(&isn_vid_on, test_remap);
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
		free(p);
	}
	for (k = 0; k < ISN_VID_NKINDS; k++)
		pair_destroy(&vid.local[k]);
	pair_destroy(&vid.rlid);
	isn_vid_gidmap_destroy(&vid.lgid_to_real);
	isn_vid_gidmap_destroy(&vid.lgid_to_virt);
	isn_vid_gidmap_destroy(&vid.rgid_to_real);
	isn_vid_gidmap_destroy(&vid.rgid_to_virt);
	pthread_mutex_destroy(&vid.lock);
	vid.test = false;
}

bool isn_vid_test_mode(void)
{
	return vid.test;
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

/* Test mode: the real -> virtual offset of a peer in the same mode. */
static uint32_t test_to_virt(enum isn_vid_kind kind, uint32_t real)
{
	switch (kind) {
	case ISN_VID_QPN:
	case ISN_VID_SRQN:
		return (real + ISN_TEST_QPN_OFF) & ISN_QPN_MASK;
	case ISN_VID_LKEY:
	case ISN_VID_RKEY:
		return real ^ ISN_TEST_KEY_XOR;
	case ISN_VID_LID:
		return (real + ISN_TEST_LID_OFF) & 0xffff;
	default:
		return real;
	}
}

static uint32_t test_to_real(enum isn_vid_kind kind, uint32_t virt)
{
	switch (kind) {
	case ISN_VID_QPN:
	case ISN_VID_SRQN:
		return (virt - ISN_TEST_QPN_OFF) & ISN_QPN_MASK;
	case ISN_VID_LKEY:
	case ISN_VID_RKEY:
		return virt ^ ISN_TEST_KEY_XOR;
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

	if (!vid.test || id_is_special(kind, real))
		return real;
	virt = test_to_virt(kind, real);
	if (isn_vid_map_set(&p->to_real, virt, real) ||
	    isn_vid_map_set(&p->to_virt, real, virt)) {
		isn_vid_map_del(&p->to_real, virt);
		return real; /* out of memory: hand out the real ID */
	}
	return virt;
}

void isn_vid_local_forget(enum isn_vid_kind kind, uint32_t virt)
{
	struct isn_vid_pair *p = &vid.local[kind];
	uint32_t real;

	if (!isn_vid_map_get(&p->to_real, virt, &real))
		return;
	isn_vid_map_del(&p->to_real, virt);
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
	return vid.test ? test_to_real(kind, virt) : virt;
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
	return vid.test ? test_to_virt(kind, real) : real;
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
	if (!vid.test || gid_is_special(&r))
		return;
	if (isn_vid_gidmap_get(&vid.lgid_to_virt, &r, &v)) {
		*virt = v;
		return;
	}
	test_gid_flip(&r, &v);
	if (isn_vid_gidmap_set(&vid.lgid_to_real, &v, &r) ||
	    isn_vid_gidmap_set(&vid.lgid_to_virt, &r, &v))
		return; /* out of memory: hand out the real GID */
	*virt = v;
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

int isn_vid_remote_lid_map(uint16_t virt, uint16_t real)
{
	int ret = isn_vid_map_set(&vid.rlid.to_real, virt, real);

	if (!ret)
		ret = isn_vid_map_set(&vid.rlid.to_virt, real, virt);
	if (!ret)
		atomic_store(&isn_vid_on, true);
	return ret;
}

int isn_vid_remote_gid_map(const union ibv_gid *virt, const union ibv_gid *real)
{
	int ret = isn_vid_gidmap_set(&vid.rgid_to_real, virt, real);

	if (!ret)
		ret = isn_vid_gidmap_set(&vid.rgid_to_virt, real, virt);
	if (!ret)
		atomic_store(&isn_vid_on, true);
	return ret;
}

static bool peer_named(const struct isn_vid_peer *p, const union ibv_gid *vgid,
		       uint16_t vlid)
{
	if (vgid && !gid_is_special(vgid) &&
	    !memcmp(&p->vgid, vgid, sizeof(*vgid)))
		return true;
	return vlid && p->vlid == vlid;
}

struct isn_vid_peer *isn_vid_peer_find(const union ibv_gid *vgid, uint16_t vlid)
{
	struct isn_vid_peer *p;

	p = atomic_load_explicit(&vid.peers, memory_order_acquire);
	for (; p; p = p->next)
		if (peer_named(p, vgid, vlid))
			return p;
	return NULL;
}

struct isn_vid_peer *isn_vid_peer_add(const union ibv_gid *vgid, uint16_t vlid)
{
	struct isn_vid_peer *p;
	int k;

	pthread_mutex_lock(&vid.lock);
	p = isn_vid_peer_find(vgid, vlid);
	if (p)
		goto out;
	p = calloc(1, sizeof(*p));
	if (!p)
		goto out;
	if (vgid)
		p->vgid = *vgid;
	p->vlid = vlid;
	for (k = 0; k < ISN_VID_NKINDS; k++)
		pair_init(&p->id[k]);
	p->next = atomic_load(&vid.peers);
	atomic_store_explicit(&vid.peers, p, memory_order_release);
out:
	pthread_mutex_unlock(&vid.lock);
	return p;
}

int isn_vid_peer_map(struct isn_vid_peer *peer, enum isn_vid_kind kind,
		     uint32_t virt, uint32_t real)
{
	struct isn_vid_pair *p = &peer->id[kind];
	int ret;

	ret = isn_vid_map_set(&p->to_real, virt, real);
	if (!ret)
		ret = isn_vid_map_set(&p->to_virt, real, virt);
	if (!ret)
		atomic_store(&isn_vid_on, true);
	return ret;
}
