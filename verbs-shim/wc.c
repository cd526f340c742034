// SPDX-License-Identifier: MIT
/*
 * What poll_cq does to the completions it hands out: count the receives they
 * consumed (the tails of the receive logs), and, when IDs are remapped, make
 * every ID in them virtual: qp_num, src_qp (with the table of the peer that
 * sent it), slid, and the GIDs of the GRH a UD receive wrote into the
 * application's buffer.
 */
#include <endian.h>
#include <string.h>

#include "shim.h"

static struct isn_qp *cq_qp(struct isn_cq *cq, uint32_t qpn)
{
	uint64_t c = atomic_load_explicit(&cq->qp_cache, memory_order_relaxed);
	struct isn_qp *qp;
	uint32_t idx;

	if (c && (uint32_t)(c >> 32) == qpn)
		return isn_qptab_at((uint32_t)c - 1);
	qp = isn_qptab_find(qpn, &idx);
	if (qp)
		atomic_store_explicit(&cq->qp_cache,
				      (uint64_t)qpn << 32 | (idx + 1),
				      memory_order_relaxed);
	return qp;
}

static struct isn_wq_ent *qp_recv_consume(struct isn_qp *qp)
{
	struct isn_srq *srq;

	if (!qp->qp.srq)
		return isn_wq_consume(&qp->rq);
	srq = isn_to_srq(qp->qp.srq);
	atomic_fetch_add_explicit(&qp->srq_used, 1, memory_order_relaxed);
	return isn_wq_consume(&srq->rq);
}

static bool wc_is_recv(const struct ibv_wc *wc)
{
	return wc->opcode & IBV_WC_RECV;
}

void isn_cq_track_one(struct isn_cq *cq, uint32_t qpn)
{
	struct isn_qp *qp = cq_qp(cq, qpn);

	if (qp)
		qp_recv_consume(qp);
}

void isn_cq_track(struct isn_cq *cq, const struct ibv_wc *wc, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (wc_is_recv(&wc[i]))
			isn_cq_track_one(cq, wc[i].qp_num);
}

static void ipv4_csum(uint8_t *ip)
{
	uint32_t sum = 0;
	int i;

	ip[10] = ip[11] = 0;
	for (i = 0; i < 20; i += 2)
		sum += (uint32_t)ip[i] << 8 | ip[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	ip[10] = (uint8_t)(~sum >> 8);
	ip[11] = (uint8_t)~sum;
}

static void ipv4_to_virt(uint8_t *addr, bool remote)
{
	union ibv_gid g, v;

	memset(&g, 0, sizeof(g));
	g.raw[10] = g.raw[11] = 0xff;
	memcpy(&g.raw[12], addr, 4);
	if (remote)
		isn_vid_gid_remote_to_virt(&g, &v);
	else
		isn_vid_gid_local_new(&g, &v);
	if (v.raw[10] == 0xff && v.raw[11] == 0xff && !v.global.subnet_prefix)
		memcpy(addr, &v.raw[12], 4); /* else not expressible */
}

/*
 * Rewrite the GRH at the head of the UD receive buffer @e with virtual GIDs;
 * returns the real source GID in @sgid (false: no GRH written there).
 */
static bool grh_to_virt(const struct isn_wq_ent *e, union ibv_gid *sgid)
{
	uint8_t grh[40];
	uint8_t *ip = grh + 20;

	if (isn_sge_copy(e->sge, e->num_sge, grh, sizeof(grh), true) <
	    sizeof(grh))
		return false;
	if (isn_grh_is_ipv4((struct ibv_grh *)grh)) {
		memset(sgid, 0, sizeof(*sgid));
		sgid->raw[10] = sgid->raw[11] = 0xff;
		memcpy(&sgid->raw[12], ip + 12, 4);
		ipv4_to_virt(ip + 12, true);
		ipv4_to_virt(ip + 16, false);
		ipv4_csum(ip);
	} else {
		struct ibv_grh *g = (struct ibv_grh *)grh;

		*sgid = g->sgid;
		isn_vid_gid_remote_to_virt(&g->sgid, &g->sgid);
		if (g->dgid.raw[0] != 0xff)
			isn_vid_gid_local_new(&g->dgid, &g->dgid);
	}
	isn_sge_copy(e->sge, e->num_sge, grh, sizeof(grh), false);
	return true;
}

/* One completion, IDs remapped. */
static void wc_to_virt(struct isn_cq *cq, struct ibv_wc *wc)
{
	struct isn_qp *qp = cq_qp(cq, wc->qp_num);
	const struct isn_vid_peer *peer = qp ? qp->peer : NULL;
	struct isn_wq_ent *e;
	union ibv_gid sgid;
	bool grh;

	if (qp && wc_is_recv(wc)) {
		e = qp_recv_consume(qp);
		if (qp->qp.qp_type == IBV_QPT_UD) {
			grh = e && (wc->wc_flags & IBV_WC_GRH) &&
			      wc->status == IBV_WC_SUCCESS &&
			      e->wr_id == wc->wr_id && grh_to_virt(e, &sgid);
			peer = isn_vid_peer_of_real(grh ? &sgid : NULL,
						    wc->slid);
		}
	}
	wc->qp_num = isn_vid_local_to_virt(ISN_VID_QPN, wc->qp_num);
	wc->src_qp = isn_vid_remote_to_virt(peer, ISN_VID_QPN, wc->src_qp);
	wc->slid = isn_vid_remote_to_virt(NULL, ISN_VID_LID, wc->slid);
}

void isn_wc_ids_to_virt(struct isn_cq *cq, struct ibv_wc *wc)
{
	struct isn_qp *qp = cq_qp(cq, wc->qp_num);
	const struct isn_vid_peer *peer = qp ? qp->peer : NULL;

	if (!(isn_slow_get() & ISN_SLOW_XLATE))
		return;
	wc->qp_num = isn_vid_local_to_virt(ISN_VID_QPN, wc->qp_num);
	wc->src_qp = isn_vid_remote_to_virt(peer, ISN_VID_QPN, wc->src_qp);
	wc->slid = isn_vid_remote_to_virt(NULL, ISN_VID_LID, wc->slid);
}

void isn_wc_done(struct isn_cq *cq, struct ibv_wc *wc, int n)
{
	int i;

	if (!(isn_slow_get() & ISN_SLOW_XLATE)) {
		if (cq->track)
			isn_cq_track(cq, wc, n);
		return;
	}
	for (i = 0; i < n; i++)
		wc_to_virt(cq, &wc[i]);
}

void isn_wc_one_ex(struct isn_cq *cq, struct ibv_wc *wc)
{
	isn_wc_done(cq, wc, 1);
}
