/* SPDX-License-Identifier: MIT */
/*
 * virt-ids: the process's virtual IDs (design §3, "identity until restart").
 *
 * Local IDs (this process's QPNs, SRQNs, lkeys, rkeys, LIDs, GIDs) are kept
 * in both directions.  Remote IDs are kept per peer (QPN, SRQN, rkey; a peer
 * is named by its virtual GID or LID) and, for LIDs and GIDs, fabric-wide.
 * Every map is empty in a first incarnation: an ID absent from a map
 * translates to itself, and isn_vid_active() is false, so the data path
 * takes one predictable branch and translates nothing.
 *
 * Test mode (IBSNAP_TEST_REMAP=1) behaves as if the process had been
 * restarted: every local ID handed out is offset (QPN/SRQN + 0x1000, keys
 * ^ 0x5a5a00, LID + 100, GID last byte ^ 0x55) and an unmapped remote ID is
 * assumed to come from a peer in the same mode, so the inverse offset is its
 * real value.  Two processes in test mode interoperate only if every
 * translation is done.  IBSNAP_TEST_REMAP=node makes the QPN/SRQN and key
 * offsets depend on the node (k = 1 + the low 4 bits of its real LID, or of
 * its real GID's last byte on RoCE: QPN + 0x1000 * k, keys ^ 0x5a5a00 * k),
 * so an ID from a peer translates right only with that peer's table.  The
 * fake HCA's LIDs and GIDs of one node share their last byte; on other HCAs
 * use mode 1.
 */
#ifndef IBSNAP_VID_H
#define IBSNAP_VID_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <infiniband/verbs.h>

#include "vid_map.h"

enum isn_vid_kind {
	ISN_VID_QPN,
	ISN_VID_SRQN,
	ISN_VID_LKEY,
	ISN_VID_RKEY,
	ISN_VID_LID,
	ISN_VID_NKINDS,
};

struct isn_vid_pair {
	struct isn_vid_map to_real, to_virt;
};

/* A remote process (or node) named by its virtual GID or LID. */
struct isn_vid_peer {
	struct isn_vid_peer *next;
	union ibv_gid vgid;
	uint16_t vlid;
	uint32_t index;
	uint32_t test_k; /* test mode: the peer's offset multiplier */
	struct isn_vid_pair id[ISN_VID_NKINDS]; /* QPN, SRQN, RKEY used */
};

enum isn_vid_test {
	ISN_VID_TEST_OFF,
	ISN_VID_TEST_UNIFORM, /* IBSNAP_TEST_REMAP=1 */
	ISN_VID_TEST_NODE, /* IBSNAP_TEST_REMAP=node */
};

extern atomic_bool isn_vid_on;

/* Whether anything may need translating: the one data-path branch. */
static inline bool isn_vid_active(void)
{
	return atomic_load_explicit(&isn_vid_on, memory_order_relaxed);
}

/* Set up the tables; a test mode (enum isn_vid_test) starts as restarted. */
void isn_vid_init(int test_mode);
void isn_vid_fini(void);
bool isn_vid_test_mode(void);
/* Node test mode: this process's node has real LID (or GID byte) @real. */
void isn_vid_test_set_local(uint32_t real);

/* A new local object got @real: returns the virtual ID to hand out. */
uint32_t isn_vid_local_new(enum isn_vid_kind kind, uint32_t real);
/* A rebuilt object with virtual ID @virt is now @real (0 or -ENOMEM). */
int isn_vid_local_set(enum isn_vid_kind kind, uint32_t virt, uint32_t real);
/* Whether @id is a virtual ID that maps to another real one. */
bool isn_vid_local_taken(enum isn_vid_kind kind, uint32_t id);
/* The object with virtual ID @virt is gone. */
void isn_vid_local_forget(enum isn_vid_kind kind, uint32_t virt);
uint32_t isn_vid_local_to_real(enum isn_vid_kind kind, uint32_t virt);
uint32_t isn_vid_local_to_virt(enum isn_vid_kind kind, uint32_t real);

/*
 * Remote IDs.  @peer may be NULL (unknown peer: only the default applies);
 * LIDs are fabric-wide and ignore @peer.
 */
uint32_t isn_vid_remote_to_real(const struct isn_vid_peer *peer,
				enum isn_vid_kind kind, uint32_t virt);
uint32_t isn_vid_remote_to_virt(const struct isn_vid_peer *peer,
				enum isn_vid_kind kind, uint32_t real);

/* GIDs: local and fabric-wide remote. */
void isn_vid_gid_local_new(const union ibv_gid *real, union ibv_gid *virt);
void isn_vid_gid_local_to_real(const union ibv_gid *virt, union ibv_gid *real);
int isn_vid_gid_local_set(const union ibv_gid *virt, const union ibv_gid *real);
void isn_vid_gid_remote_to_real(const union ibv_gid *virt, union ibv_gid *real);
void isn_vid_gid_remote_to_virt(const union ibv_gid *real, union ibv_gid *virt);

/*
 * Peers and their maps, as a restart fills them from the bulk exchange.
 * isn_vid_peer_find returns NULL if neither name is known (a zero GID or
 * LID 0 does not name a peer).  Peers live until isn_vid_fini().
 * isn_vid_peer_get also creates the peer in test mode, where every named
 * remote has its own offsets.
 */
struct isn_vid_peer *isn_vid_peer_find(const union ibv_gid *vgid,
				       uint16_t vlid);
struct isn_vid_peer *isn_vid_peer_get(const union ibv_gid *vgid, uint16_t vlid);
/* The peer that sent from real GID @rgid (NULL: none) or real LID @rlid. */
struct isn_vid_peer *isn_vid_peer_of_real(const union ibv_gid *rgid,
					  uint16_t rlid);
struct isn_vid_peer *isn_vid_peer_add(const union ibv_gid *vgid, uint16_t vlid);
int isn_vid_peer_map(struct isn_vid_peer *peer, enum isn_vid_kind kind,
		     uint32_t virt, uint32_t real);
int isn_vid_remote_lid_map(uint16_t virt, uint16_t real);
int isn_vid_remote_gid_map(const union ibv_gid *virt,
			   const union ibv_gid *real);

#endif /* IBSNAP_VID_H */
