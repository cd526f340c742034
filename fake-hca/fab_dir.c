/* SPDX-License-Identifier: MIT */
/*
 * The QP directory, (node, qpn) -> port slot and generation: an open
 * addressing hash in the registry.  Writers hold the fabric lock; readers
 * (fab_resolve) take none.
 */
#include <errno.h>
#include <string.h>

#include "fab_ring.h"

/* ---- the QP directory ---- */

static uint64_t fab_dir_key(uint32_t node, uint32_t qpn)
{
	return (uint64_t)(node + 1) << 24 | (qpn & FAB_QPN_MASK);
}

static uint32_t fab_dir_hash(uint64_t key)
{
	return (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> 48) &
	       (FAB_DIR_SIZE - 1);
}

static int fab_dir_lookup(struct fab_registry *r, uint64_t key, uint64_t *e_p)
{
	uint32_t i = fab_dir_hash(key), n;
	uint64_t e;

	for (n = 0; n < FAB_DIR_SIZE; n++, i = (i + 1) & (FAB_DIR_SIZE - 1)) {
		e = atomic_load_explicit(&r->dir[i], memory_order_acquire);
		if (e == FAB_DIR_EMPTY)
			break;
		if (e != FAB_DIR_TOMB && (e & FAB_DIR_KEY_MASK) == key) {
			*e_p = e;
			return (int)i;
		}
	}
	return -ENOENT;
}

/* Lock held.  A tombstone just before an empty entry ends no probe chain. */
static void fab_dir_remove(struct fab_registry *r, uint32_t i)
{
	const uint32_t mask = FAB_DIR_SIZE - 1;

	atomic_store_explicit(&r->dir[i], FAB_DIR_TOMB, memory_order_release);
	atomic_fetch_sub(&r->dir_live, 1);
	while (atomic_load(&r->dir[(i + 1) & mask]) == FAB_DIR_EMPTY &&
	       atomic_load(&r->dir[i]) == FAB_DIR_TOMB) {
		atomic_store(&r->dir[i], FAB_DIR_EMPTY);
		i = (i - 1) & mask;
	}
}

/* Lock held. */
static int fab_dir_insert(struct fab_registry *r, uint64_t key, uint64_t e)
{
	uint32_t i = fab_dir_hash(key), n;
	int64_t free_i = -1;
	uint64_t cur;

	if (atomic_load(&r->dir_live) >= FAB_DIR_MAX_LIVE)
		return -ENOSPC;
	for (n = 0; n < FAB_DIR_SIZE; n++, i = (i + 1) & (FAB_DIR_SIZE - 1)) {
		cur = atomic_load(&r->dir[i]);
		if (cur == FAB_DIR_TOMB) {
			if (free_i < 0)
				free_i = i;
			continue;
		}
		if (cur == FAB_DIR_EMPTY) {
			if (free_i < 0)
				free_i = i;
			break;
		}
		if ((cur & FAB_DIR_KEY_MASK) == key)
			return -EEXIST;
	}
	if (free_i < 0)
		return -ENOSPC;
	atomic_store_explicit(&r->dir[free_i], e, memory_order_release);
	atomic_fetch_add(&r->dir_live, 1);
	return 0;
}

/* Lock held: drop every directory entry of port slot @slot. */
void fab_dir_purge(struct fab_registry *r, uint32_t slot)
{
	uint32_t i;
	uint64_t e;

	for (i = 0; i < FAB_DIR_SIZE; i++) {
		e = atomic_load(&r->dir[i]);
		if (e != FAB_DIR_EMPTY && e != FAB_DIR_TOMB &&
		    ((e >> 31) & 0xff) == slot)
			fab_dir_remove(r, i);
	}
}

int fab_qp_publish(struct fab_port *port, uint32_t qpn)
{
	struct fab_registry *r = port->reg->map;
	uint64_t key = fab_dir_key(port->id.index, qpn);
	int ret;

	if (qpn > FAB_QPN_MASK)
		return -EINVAL;
	ret = fab_lock(r);
	if (ret)
		return ret;
	ret = fab_dir_insert(r, key,
			     key | (uint64_t)port->slot << 31 |
				     (uint64_t)port->gen << 39);
	fab_unlock(r);
	if (ret == -ENOSPC)
		fab_log("QP directory full publishing qp 0x%x", qpn);
	return ret;
}

void fab_qp_unpublish(struct fab_port *port, uint32_t qpn)
{
	struct fab_registry *r = port->reg->map;
	uint64_t e;
	int i;

	if (qpn > FAB_QPN_MASK || fab_lock(r))
		return;
	i = fab_dir_lookup(r, fab_dir_key(port->id.index, qpn), &e);
	if (i >= 0 && ((e >> 31) & 0xff) == port->slot)
		fab_dir_remove(r, i);
	fab_unlock(r);
}

/* ---- resolution (lock-free) ---- */

static int fab_uniq_of(const union ibv_gid *gid, uint16_t lid, uint32_t *uniq)
{
	/* fe80::02fa:4eff:fe00:0/104 and ::ffff:127.0.0.0/104 */
	static const char ll[] = "\xfe\x80\0\0\0\0\0\0\x02\xfa\x4e\xff\xfe";
	static const char v4[] = "\0\0\0\0\0\0\0\0\0\0\xff\xff\x7f";
	uint32_t u;

	if (!gid) {
		u = lid;
	} else {
		if (memcmp(gid->raw, ll, 13) && memcmp(gid->raw, v4, 13))
			return -ENOENT;
		u = (uint32_t)gid->raw[13] << 16 | (uint32_t)gid->raw[14] << 8 |
		    gid->raw[15];
	}
	if (!u || u > FAB_MAX_UNIQ)
		return -ENOENT;
	*uniq = u;
	return 0;
}

/* The node of incarnation @uniq, if that incarnation still exists. */
static int fab_node_of(struct fab_registry *r, uint32_t uniq, uint32_t *node)
{
	uint32_t idx =
		atomic_load_explicit(&r->uniq_node[uniq], memory_order_acquire);
	uint64_t cur;
	int i;

	if (!idx--)
		return -ENOENT;
	cur = atomic_load_explicit(&r->nodes[idx].cur, memory_order_acquire);
	if ((uint32_t)cur != uniq) {
		/* an older incarnation lives while one of its ports does */
		for (i = 0; i < FAB_MAX_PORTS; i++)
			if ((atomic_load(&r->ports[i].state) & 1) &&
			    atomic_load(&r->ports[i].uniq) == uniq)
				break;
		if (i == FAB_MAX_PORTS)
			return -ENOENT;
	}
	*node = idx;
	return 0;
}

int fab_resolve_node(struct fab_port *port, const union ibv_gid *gid,
		     uint16_t lid, uint32_t *node_index)
{
	uint32_t uniq;
	int ret;

	ret = fab_uniq_of(gid, lid, &uniq);
	if (!ret)
		ret = fab_node_of(port->reg->map, uniq, node_index);
	return ret;
}

int fab_resolve(struct fab_port *port, const union ibv_gid *gid, uint16_t lid,
		uint32_t qpn, struct fab_dest *dest)
{
	struct fab_registry *r = port->reg->map;
	struct fab_port_rec *rec;
	uint32_t uniq, node, slot, gen, state;
	uint64_t e;
	int ret;

	ret = fab_uniq_of(gid, lid, &uniq);
	if (!ret)
		ret = fab_node_of(r, uniq, &node);
	if (ret || qpn > FAB_QPN_MASK)
		return -ENOENT;
	if (fab_dir_lookup(r, fab_dir_key(node, qpn), &e) < 0)
		return -ENOENT;
	slot = (e >> 31) & 0xff;
	gen = (uint32_t)(e >> 39) & FAB_GEN_MASK;
	rec = &r->ports[slot];
	state = atomic_load_explicit(&rec->state, memory_order_acquire);
	if (state != (gen << 1 | 1) || atomic_load(&rec->uniq) != uniq ||
	    atomic_load(&rec->state) != state)
		return -ENOENT;
	dest->port_slot = slot;
	dest->port_gen = gen;
	dest->node_index = node;
	dest->qpn = qpn;
	return 0;
}
