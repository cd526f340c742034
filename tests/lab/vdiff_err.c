/* SPDX-License-Identifier: MIT */
/*
 * Differential probe, data path that fails: loopback QPs on one device, the
 * work completions on both ends, QP states and async events of each error
 * case (lengths, keys, access rights, RNR, a vanished peer, ERR, CQ
 * overflow), and UD (GRH, Q_Key, path MTU).  See vdiff.h.
 */
#include "vdiff_qp.h"

/* A pair with @k, or the standard one; NULL if it cannot be made. */
static struct pair *rc_pair(struct pair *p, const struct knobs *k)
{
	return pair_make(p, IBV_QPT_RC, k ? k : &std_knobs) ? NULL : p;
}

/* A receive buffer too small for the SEND. */
static void e_recv_short(void)
{
	struct ibv_sge s = sge(A, 64, mr->lkey);
	struct pair p;

	if (!rc_pair(&p, NULL))
		return;
	post_recv(p.b.qp, 1, B, 16);
	post_recv(p.b.qp, 2, B, 16);
	post(p.a.qp, 3, IBV_WR_SEND, &s, 1, NULL, 0, S);
	post(p.a.qp, 4, IBV_WR_SEND, &s, 1, NULL, 0, S);
	drain("err.recv_short.a", &p, &p.a, 2, W);
	drain("err.recv_short.b", &p, &p.b, 2, W);
	state("err.recv_short.a_state", p.a.qp);
	state("err.recv_short.b_state", p.b.qp);
	events("err.recv_short.events");
	pair_free(&p);
}

/* A bad lkey, the WR after it flushed, posts to the QP in ERR. */
static void e_bad_lkey(void)
{
	struct ibv_sge s = sge(A, 64, mr->lkey);
	struct ibv_sge bad = sge(A, 64, mr->lkey ^ 0x80);
	struct pair p;

	if (!rc_pair(&p, NULL))
		return;
	post(p.a.qp, 5, IBV_WR_RDMA_WRITE, &bad, 1, B, mr->rkey, S);
	post(p.a.qp, 6, IBV_WR_RDMA_WRITE, &s, 1, B, mr->rkey, S);
	drain("err.bad_lkey.a", &p, &p.a, 2, W);
	state("err.bad_lkey.a_state", p.a.qp);
	vd_out("err.bad_lkey.post_after", "%s",
	       vd_err(post(p.a.qp, 7, IBV_WR_SEND, &s, 1, NULL, 0, S)));
	vd_out("err.bad_lkey.recv_after", "%s",
	       vd_err(post_recv(p.a.qp, 8, A, 64)));
	drain("err.bad_lkey.a_after", &p, &p.a, 2, 1);
	events("err.bad_lkey.events");
	pair_free(&p);
}

/* A READ response into an MR without LOCAL_WRITE. */
static void e_read_into_ro(void)
{
	struct ibv_sge ro = sge(A + MEM / 2, 64, mr_ro->lkey);
	struct pair p;

	if (!rc_pair(&p, NULL))
		return;
	post(p.a.qp, 9, IBV_WR_RDMA_READ, &ro, 1, B, mr->rkey, S);
	drain("err.read_into_ro.a", &p, &p.a, 1, W);
	state("err.read_into_ro.a_state", p.a.qp);
	events("err.read_into_ro.events");
	pair_free(&p);
}

/* Remote access: an rkey without remote rights, a READ past the MR. */
static void e_remote_access(void)
{
	struct ibv_sge s = sge(A, 64, mr->lkey), a8 = sge(A, 8, mr->lkey);
	struct pair p;

	if (rc_pair(&p, NULL)) {
		post(p.a.qp, 10, IBV_WR_RDMA_WRITE, &s, 1, B, mr_ro->rkey, S);
		post(p.a.qp, 11, IBV_WR_RDMA_WRITE, &s, 1, B, mr->rkey, S);
		drain("err.rkey_no_write.a", &p, &p.a, 2, W);
		state("err.rkey_no_write.a_state", p.a.qp);
		state("err.rkey_no_write.b_state", p.b.qp);
		events("err.rkey_no_write.events");
		pair_free(&p);
	}
	if (rc_pair(&p, NULL)) {
		post(p.a.qp, 12, IBV_WR_RDMA_READ, &s, 1, mem + 2 * MEM - 32,
		     mr->rkey, S);
		drain("err.read_past_end.a", &p, &p.a, 1, W);
		state("err.read_past_end.b_state", p.b.qp);
		events("err.read_past_end.events");
		pair_free(&p);
	}
	if (rc_pair(&p, NULL)) {
		post(p.a.qp, 13, IBV_WR_ATOMIC_FETCH_AND_ADD, &a8, 1, B,
		     mr_ro->rkey, S);
		drain("err.atomic_no_rights.a", &p, &p.a, 1, W);
		events("err.atomic_no_rights.events");
		pair_free(&p);
	}
}

/* No receive posted: rnr_retry 0 fails; 7 waits for the receive. */
static void e_rnr(void)
{
	struct ibv_sge s = sge(A, 64, mr->lkey);
	struct knobs k = std_knobs;
	struct pair p;

	k.rnr_retry = 0;
	if (rc_pair(&p, &k)) {
		post(p.a.qp, 14, IBV_WR_SEND, &s, 1, NULL, 0, S);
		drain("err.rnr.a", &p, &p.a, 1, W);
		state("err.rnr.a_state", p.a.qp);
		state("err.rnr.b_state", p.b.qp);
		events("err.rnr.events");
		pair_free(&p);
	}
	k.rnr_retry = 7;
	if (rc_pair(&p, &k)) {
		post(p.a.qp, 15, IBV_WR_SEND, &s, 1, NULL, 0, S);
		usleep(20000);
		post_recv(p.b.qp, 16, B, 64);
		drain("err.rnr_then_recv.a", &p, &p.a, 1, W);
		drain("err.rnr_then_recv.b", &p, &p.b, 1, W);
		pair_free(&p);
	}
}

/* The peer QP is gone: the transport retries run out. */
static void e_peer_gone(void)
{
	struct ibv_sge s = sge(A, 64, mr->lkey);
	struct knobs k = std_knobs;
	struct pair p;

	k.timeout = 8;
	k.retry_cnt = 1;
	if (!rc_pair(&p, &k))
		return;
	ibv_destroy_qp(p.b.qp);
	p.b.qp = NULL;
	post(p.a.qp, 17, IBV_WR_RDMA_WRITE, &s, 1, B, mr->rkey, S);
	drain("err.peer_gone.a", &p, &p.a, 1, 30);
	state("err.peer_gone.a_state", p.a.qp);
	events("err.peer_gone.events");
	pair_free(&p);
}

/* Moved to ERR by the application: posted receives flush; then RESET. */
static void e_to_err(void)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_ERR };
	struct pair p;

	if (!rc_pair(&p, NULL))
		return;
	post_recv(p.b.qp, 18, B, 64);
	post_recv(p.b.qp, 19, B, 64);
	vd_out("err.to_err.modify", "%s",
	       vd_err(ibv_modify_qp(p.b.qp, &a, IBV_QP_STATE)));
	drain("err.to_err.b", &p, &p.b, 2, W);
	events("err.to_err.events");
	a.qp_state = IBV_QPS_RESET;
	vd_out("err.to_reset.modify", "%s",
	       vd_err(ibv_modify_qp(p.b.qp, &a, IBV_QP_STATE)));
	drain("err.to_reset.b", &p, &p.b, 1, 0.2);
	pair_free(&p);
}

/* CQ overflow: a CQ of the smallest size, more completions. */
static void e_cq_overflow(void)
{
	struct ibv_sge s = sge(A, 64, mr->lkey);
	struct knobs k = std_knobs;
	struct pair p;
	int i, n;

	k.cqe = 1;
	if (!rc_pair(&p, &k))
		return;
	n = p.a.cq->cqe + 2;
	for (i = 0; i < n; i++)
		post(p.a.qp, 30 + i, IBV_WR_RDMA_WRITE, &s, 1, B, mr->rkey, S);
	usleep(300000);
	vd_out("err.cq_overflow.cqe", "%d", p.a.cq->cqe);
	drain("err.cq_overflow.a", &p, &p.a, n, 0.5);
	events("err.cq_overflow.events");
	pair_free(&p);
}

/* ---- UD ---- */

struct ud {
	struct pair p;
	struct ibv_ah *ah;
	struct ibv_sge s;
	struct ibv_send_wr w;
	uint32_t mtu;
};

static int ud_make(struct ud *u)
{
	struct ibv_port_attr pa;
	struct ibv_ah_attr aa;

	memset(u, 0, sizeof(*u));
	if (pair_make(&u->p, IBV_QPT_UD, &std_knobs) ||
	    ibv_query_port(d.ctx, VD_PORT, &pa))
		return -1;
	u->mtu = 128u << pa.active_mtu;
	vd_ah_attr(&d, &aa);
	u->ah = ibv_create_ah(d.pd, &aa);
	u->s = sge(A, 64, mr->lkey);
	u->w.sg_list = &u->s;
	u->w.num_sge = 1;
	u->w.opcode = IBV_WR_SEND;
	u->w.send_flags = S;
	u->w.wr.ud.ah = u->ah;
	u->w.wr.ud.remote_qpn = u->p.b.qp->qp_num;
	u->w.wr.ud.remote_qkey = QKEY;
	return u->ah ? 0 : -1;
}

static void ud_free(struct ud *u)
{
	if (u->ah)
		ibv_destroy_ah(u->ah);
	pair_free(&u->p);
}

static int ud_send(struct ud *u, uint64_t id)
{
	struct ibv_send_wr *bad;

	u->w.wr_id = id;
	return ibv_post_send(u->p.a.qp, &u->w, &bad);
}

/* GRH and source QPN, a wrong Q_Key, a path-MTU message, RDMA on UD. */
static void ud_basic(void)
{
	struct ud u;
	struct pair *p = &u.p;

	if (ud_make(&u))
		return;
	fill(A, u.mtu, 5);
	post_recv(p->b.qp, 1, B, 64 + 40);
	vd_out("ud.send.post", "%s", vd_err(ud_send(&u, 2)));
	drain("ud.send.a", p, &p->a, 1, W);
	drain("ud.send.b", p, &p->b, 1, W);
	data("ud.send.data", B + 40, A, 64);
	vd_out("ud.send.grh", "v6 %u/%u v4 %u/%u", B[0] >> 4, B[6], B[20] >> 4,
	       B[29]);
	post_recv(p->b.qp, 3, B, u.mtu + 40);
	u.w.wr.ud.remote_qkey = QKEY + 1;
	ud_send(&u, 4);
	drain("ud.bad_qkey.a", p, &p->a, 1, W);
	drain("ud.bad_qkey.b", p, &p->b, 1, 0.3);
	u.w.wr.ud.remote_qkey = QKEY;
	u.s.length = u.mtu;
	vd_out("ud.mtu.post", "%s", vd_err(ud_send(&u, 5)));
	drain("ud.mtu.a", p, &p->a, 1, W);
	drain("ud.mtu.b", p, &p->b, 1, W);
	data("ud.mtu.data", B + 40, A, u.mtu);
	u.w.opcode = IBV_WR_RDMA_WRITE;
	vd_out("ud.rdma_write.post", "%s", vd_err(ud_send(&u, 5)));
	drain("ud.rdma_write.a", p, &p->a, 1, 0.3);
	events("ud.events");
	ud_free(&u);
}

/* A message over the path MTU. */
static void ud_over_mtu(void)
{
	struct ud u;

	if (ud_make(&u))
		return;
	post_recv(u.p.b.qp, 6, B, u.mtu + 41);
	u.s.length = u.mtu + 1;
	vd_out("ud.mtu+1.post", "%s", vd_err(ud_send(&u, 7)));
	drain("ud.mtu+1.a", &u.p, &u.p.a, 1, W);
	drain("ud.mtu+1.b", &u.p, &u.p.b, 1, 0.5);
	state("ud.mtu+1.a_state", u.p.a.qp);
	ud_free(&u);
}

/* A receive buffer too small. */
static void ud_recv_short(void)
{
	struct ud u;

	if (ud_make(&u))
		return;
	post_recv(u.p.b.qp, 8, B, 32);
	post_recv(u.p.b.qp, 9, B + 1024, 128);
	ud_send(&u, 10);
	ud_send(&u, 11);
	drain("ud.recv_short.a", &u.p, &u.p.a, 2, W);
	drain("ud.recv_short.b", &u.p, &u.p.b, 2, 1);
	state("ud.recv_short.b_state", u.p.b.qp);
	events("ud.recv_short.events");
	ud_free(&u);
}

int main(int argc, char **argv)
{
	if (vd_qp_init(argc, argv, "vdiff_err"))
		return 1;
	e_recv_short();
	e_bad_lkey();
	e_read_into_ro();
	e_remote_access();
	e_rnr();
	e_peer_gone();
	e_to_err();
	e_cq_overflow();
	ud_basic();
	ud_over_mtu();
	ud_recv_short();
	return vd_qp_fini("err.final.events");
}
