// SPDX-License-Identifier: MIT
/*
 * Queue pairs at a checkpoint: the drain half (design §6).
 *
 * A marker per QP proves its send queue empty: RC and UC get a signaled
 * zero-length RDMA WRITE (no R_Key is checked for zero bytes, and the shim
 * keeps remote write enabled on every RC QP, qp_attr.c), UD a signaled
 * zero-length SEND to itself with a Q_Key it does not accept, dropped on
 * arrival.  Send queues complete in order, so a marker's completion means
 * every WR before it, signaled or not, is complete too.
 *
 * A marker that does not complete sits behind a SEND the peer has no
 * receive for (RNR): the drain exchange tells the peer, which catches the
 * held-up messages in shim buffers (early.c) -- the sender never posts
 * anything twice, and RDMA READ, WRITE and atomics behind the SEND simply
 * complete.  Release destroys the backend QP; rebuild/qp.c makes a new one.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"

static struct isn_qp_ckpt *qp_ck(struct isn_qp *qp)
{
	if (!qp->ck)
		qp->ck = calloc(1, sizeof(*qp->ck));
	return qp->ck;
}

/* The QP is destroyed: its sends waiting in the shim go, and so do its
 * markers still out (a drain that timed out left them): no completion
 * will count them, and the drains and the slow polls stop waiting. */
void isn_qp_ckpt_free(struct isn_qp *qp)
{
	uint32_t n;

	isn_pending_forget(qp);
	if (!qp->ck)
		return;
	n = atomic_exchange(&qp->ck->markers_pending, 0);
	if (n && atomic_fetch_sub(&isn_ckst.markers_out, n) == (int)n)
		isn_ckpt_poll_relax();
	if (qp->ck->self_ah)
		isn_g.ops.destroy_ah(qp->ck->self_ah);
	free(qp->ck);
	qp->ck = NULL;
}

bool isn_qp_marker_out(const struct isn_qp *qp)
{
	return qp->ck && atomic_load(&qp->ck->markers_pending);
}

/* An AH from the QP's port to itself (UD markers). */
static struct ibv_ah *self_ah(struct isn_qp *qp)
{
	struct isn_context *ictx = isn_ctx_of(qp->qp.context);
	struct ibv_ah_attr a = { .port_num = qp->attr.port_num };
	struct ibv_port_attr pa;

	memset(&pa, 0, sizeof(pa));
	if (isn_g.ops.query_port(ictx->real, a.port_num, &pa))
		return NULL;
	a.dlid = pa.lid;
	if (pa.link_layer == IBV_LINK_LAYER_ETHERNET) {
		a.is_global = 1;
		a.grh.hop_limit = 1;
		if (isn_g.ops.query_gid(ictx->real, a.port_num, 0, &a.grh.dgid))
			return NULL;
	}
	return isn_g.ops.create_ah(isn_pd_of(qp->qp.pd)->real, &a);
}

static int marker_post(struct isn_qp *qp, struct isn_qp_ckpt *ck)
{
	struct ibv_send_wr wr = { .wr_id = ISN_MARKER_WRID,
				  .send_flags = IBV_SEND_SIGNALED };
	struct ibv_send_wr *bad;

	if (qp->qp.qp_type == IBV_QPT_UD) {
		if (!ck->self_ah)
			ck->self_ah = self_ah(qp);
		if (!ck->self_ah)
			return -errno;
		wr.opcode = IBV_WR_SEND;
		wr.wr.ud.ah = ck->self_ah;
		wr.wr.ud.remote_qpn = qp->real->qp_num;
		wr.wr.ud.remote_qkey = (qp->attr.qkey & 0x7fffffffu) ^ 1;
	} else {
		wr.opcode = IBV_WR_RDMA_WRITE;
	}
	return -qp->post_send(qp->real, &wr, &bad);
}

/* The backend QP's state: the HCA may have moved it to ERR meanwhile. */
static enum ibv_qp_state qp_state(struct isn_qp *qp)
{
	struct ibv_qp_init_attr init;
	struct ibv_qp_attr a;

	if (isn_g.ops.query_qp(qp->real, &a, IBV_QP_STATE, &init))
		return qp->qp.state;
	return a.qp_state;
}

/*
 * Nothing reached the send queue since the last marker: that marker proves
 * it empty once it completes.  If it is still out (a drain that timed out
 * left it, and its queue may be full of it: ibv_rc_pingpong's one WR), it
 * is this checkpoint's marker too: the drain already waits for it
 * (markers_out), its completion marks this one done, and the exchange
 * reports it if it is stuck.  No new marker, which could not be posted
 * ("no marker: Cannot allocate memory" until the old one completed).
 */
static void qp_marker_adopt(struct isn_qp *qp, struct isn_qp_ckpt *ck)
{
	/* set before looking, as marker_post's caller does: a completion
	 * polled meanwhile (isn_ckpt_own_wc) then marks it done */
	ck->marker_posted = true;
	atomic_thread_fence(memory_order_seq_cst);
	if (!atomic_load(&ck->markers_pending))
		ck->marker_posted = false; /* complete: nothing to wait for */
	else
		isn_log("drain: qp 0x%x: the marker of a drain that timed out "
			"is still out, and nothing after it: it counts for "
			"this one",
			qp->qp.qp_num);
}

static int qp_marker(struct isn_qp *qp)
{
	struct isn_qp_ckpt *ck = qp_ck(qp);
	uint64_t posted;
	int ret;

	if (!ck)
		return -ENOMEM;
	ck->marker_posted = ck->marker_done = false;
	ck->state = qp_state(qp);
	if (ck->state != IBV_QPS_RTS && ck->state != IBV_QPS_SQD &&
	    ck->state != IBV_QPS_ERR && ck->state != IBV_QPS_SQE)
		return 0; /* nothing can be on its send queue */
	/* nothing posted since the last marker: a new marker would only risk
	 * the QP, whose peer may not listen yet, or not fit */
	posted = isn_sq_posted(&qp->sq);
	if (posted == ck->drained_at) {
		qp_marker_adopt(qp, ck);
		return 0;
	}
	/* the program polls meanwhile: its completion may come at once */
	ck->marker_posted = true;
	atomic_fetch_add(&ck->markers_pending, 1);
	atomic_fetch_add(&isn_ckst.markers_out, 1);
	ret = marker_post(qp, ck);
	if (ret) {
		/* not posted (a full send queue): the posts since the last
		 * marker are still to be proved */
		ck->marker_posted = false;
		atomic_fetch_sub(&ck->markers_pending, 1);
		atomic_fetch_sub(&isn_ckst.markers_out, 1);
	} else {
		ck->drained_at = posted;
	}
	if (ret && ck->state != IBV_QPS_RTS) /* flushing: they complete */
		return 0;
	return ret;
}

int isn_qps_post_markers(void)
{
	struct isn_qp *qp;
	uint64_t end;
	int ret;

	isn_for_each_obj(struct isn_qp, qp, ISN_OBJ_QP)
	{
		if (!qp->real)
			continue;
		ret = qp_marker(qp);
		/* its send queue is full (ibv_rc_pingpong has one WR): poll
		 * until a WR completes and makes room -- as long as a drain
		 * waits for its markers in all (1 + 5 windows): on a loaded
		 * host the peer that must ack may not run for a while */
		end = isn_now_ns() + 6 * isn_ckst.drain_ns;
		while (ret == -ENOMEM && isn_now_ns() < end) {
			isn_cqs_drain(NULL, 0);
			sched_yield();
			ret = qp_marker(qp);
		}
		if (ret) {
			isn_log("drain: qp 0x%x: no marker: %s", qp->qp.qp_num,
				strerror(-ret));
			return ret;
		}
	}
	return 0;
}

bool isn_qps_markers_done(void)
{
	return !atomic_load(&isn_ckst.markers_out);
}

/* A QP whose marker is stuck, as its peer finds it in the exchange. */
struct stuck {
	union ibv_gid dgid; /* the peer's virtual names */
	uint16_t dlid;
	uint32_t dest_qpn; /* the peer's virtual QPN */
};

static bool qp_names(struct isn_qp *qp, const struct stuck *s)
{
	struct isn_context *ictx = isn_ctx_of(qp->qp.context);
	union ibv_gid g;
	int i;

	if (qp->qp.qp_num != s->dest_qpn)
		return false;
	if (s->dlid) {
		struct ibv_port_attr pa;

		if (!isn_query_port_ex(&ictx->vctx.context, qp->attr.port_num,
				       &pa, sizeof(pa)) &&
		    pa.lid == s->dlid)
			return true;
	}
	for (i = 0; i < 8; i++)
		if (!ibv_query_gid(&ictx->vctx.context, qp->attr.port_num, i,
				   &g) &&
		    !memcmp(&g, &s->dgid, sizeof(g)))
			return true;
	return false;
}

/* Is one of our QPs the target of a peer's stuck marker?  Catch. */
static int early_for(const struct stuck *s)
{
	struct isn_qp *qp;

	isn_for_each_obj(struct isn_qp, qp, ISN_OBJ_QP)
	{
		if (qp->real && qp->qp.qp_type == IBV_QPT_RC && qp_names(qp, s))
			return isn_early_post(
				qp, qp->qp.srq ? isn_to_srq(qp->qp.srq) : NULL);
	}
	return 0;
}

int isn_qps_drain_exchange(struct isn_exchange *x)
{
	const struct isn_blob *all;
	struct stuck *mine = NULL;
	struct isn_qp *qp;
	size_t n = 0, k, i;
	int ret;

	isn_for_each_obj(struct isn_qp, qp, ISN_OBJ_QP)
	{
		struct stuck *p;

		if (!qp->ck || !qp->ck->marker_posted || qp->ck->marker_done ||
		    qp->qp.qp_type != IBV_QPT_RC)
			continue;
		p = realloc(mine, (n + 1) * sizeof(*mine));
		if (!p) {
			free(mine);
			return -ENOMEM;
		}
		mine = p;
		memset(&mine[n], 0, sizeof(mine[n]));
		mine[n].dgid = qp->attr.ah_attr.grh.dgid;
		mine[n].dlid = qp->attr.ah_attr.dlid;
		mine[n++].dest_qpn = qp->attr.dest_qp_num;
	}
	ret = x->put_fence_get(x, mine, n * sizeof(*mine), &all, &k);
	free(mine);
	for (i = 0; !ret && i < k; i++) {
		const struct stuck *s = all[i].data;
		size_t j;

		for (j = 0; !ret && j < all[i].len / sizeof(*s); j++) {
			struct stuck c;

			memcpy(&c, &s[j], sizeof(c)); /* blobs are unaligned */
			ret = early_for(&c);
		}
	}
	return ret;
}

/* RELEASE: the backend QPs go; what the program set stays. */
static int qp_release(void)
{
	struct isn_qp *qp;
	int ret;

	isn_for_each_obj(struct isn_qp, qp, ISN_OBJ_QP)
	{
		if (!qp->real)
			continue;
		if (!qp->ck && !qp_ck(qp))
			return -ENOMEM;
		qp->ck->state = qp_state(qp);
		if (qp->ck->self_ah) {
			isn_g.ops.destroy_ah(qp->ck->self_ah);
			qp->ck->self_ah = NULL;
		}
		ret = isn_qp_destroy_real(qp);
		if (ret)
			return -ret;
	}
	return 0;
}

const struct isn_ck_kind isn_ck_qp = {
	.name = "qp",
	.release = qp_release,
	.rebuild = isn_qp_rebuild,
	.connect = isn_qp_connect,
};
