/* SPDX-License-Identifier: MIT */
/*
 * Differential probe, data path that works: loopback RC/UC/SRQ traffic on
 * one device, each completion (status, opcode, length, flags, immediate,
 * source QP) and the data, and the errno of posts that must fail.  See
 * vdiff.h; failing operations are vdiff_err's.
 */
#include "vdiff_qp.h"

#define K vd_key

/* SEND and SEND_WITH_IMM of several sizes, receive buffers of 16 KiB. */
static void ok_sends(struct pair *p, const char *tn)
{
	static const uint32_t sizes[] = { 0, 1, 64, 1024, 1025, 4096, 16384 };
	struct ibv_sge s;
	unsigned int i;

	for (i = 0; i < VD_ARRAY_SIZE(sizes); i++) {
		uint32_t n = sizes[i];

		fill(A, n, (uint8_t)i);
		memset(B, 0, n + 1);
		post_recv(p->b.qp, 100 + i, B, 16384);
		s = sge(A, n, mr->lkey);
		vd_out(K("%s.send%u.post", tn, n), "%s",
		       vd_err(post(p->a.qp, i,
				   i & 1 ? IBV_WR_SEND_WITH_IMM : IBV_WR_SEND,
				   &s, 1, NULL, 0, S)));
		drain(K("%s.send%u.a", tn, n), p, &p->a, 1, W);
		drain(K("%s.send%u.b", tn, n), p, &p->b, 1, W);
		data(K("%s.send%u.data", tn, n), B, A, n + 1);
	}
}

/* Gather 3 SGEs into 2; inline; an unsignaled send, then a signaled one. */
static void ok_sgl_inline(struct pair *p, const char *tn)
{
	struct ibv_sge s[3] = { sge(A, 100, mr->lkey),
				sge(A + 100, 150, mr->lkey),
				sge(A + 250, 50, mr->lkey) };
	struct ibv_sge rs[2] = { sge(B, 120, mr->lkey),
				 sge(B + 1000, 500, mr->lkey) };
	struct ibv_recv_wr w = { .wr_id = 7, .sg_list = rs, .num_sge = 2 },
			   *bad;

	fill(A, 300, 3);
	ibv_post_recv(p->b.qp, &w, &bad);
	post(p->a.qp, 8, IBV_WR_SEND, s, 3, NULL, 0, S);
	drain(K("%s.sgl.a", tn), p, &p->a, 1, W);
	drain(K("%s.sgl.b", tn), p, &p->b, 1, W);
	vd_out(K("%s.sgl.data", tn), "%s",
	       memcmp(B, A, 120) || memcmp(B + 1000, A + 120, 180) ? "differs" :
								     "same");
	fill(A, 60, 9);
	post_recv(p->b.qp, 9, B, 64);
	post_recv(p->b.qp, 10, B + 64, 64);
	s[0] = sge(A, 30, 0);
	post(p->a.qp, 11, IBV_WR_SEND, s, 1, NULL, 0, IBV_SEND_INLINE);
	s[0] = sge(A + 30, 30, mr->lkey);
	post(p->a.qp, 12, IBV_WR_SEND, s, 1, NULL, 0, S);
	drain(K("%s.unsignaled.a", tn), p, &p->a, 2, 0.5);
	drain(K("%s.unsignaled.b", tn), p, &p->b, 2, W);
	vd_out(K("%s.inline.data", tn), "%s",
	       memcmp(B, A, 30) || memcmp(B + 64, A + 30, 30) ? "differs" :
								"same");
}

/* RDMA WRITE, WRITE_WITH_IMM (also zero-length). */
static void ok_writes(struct pair *p, const char *tn)
{
	struct ibv_sge s = sge(A, 5000, mr->lkey);

	fill(A, 5000, 11);
	post(p->a.qp, 13, IBV_WR_RDMA_WRITE, &s, 1, B + 8, mr->rkey, S);
	drain(K("%s.write.a", tn), p, &p->a, 1, W);
	data(K("%s.write.data", tn), B + 8, A, 5000);
	post_recv(p->b.qp, 14, B, 16);
	post(p->a.qp, 15, IBV_WR_RDMA_WRITE_WITH_IMM, &s, 1, B + 8192, mr->rkey,
	     S);
	drain(K("%s.write_imm.a", tn), p, &p->a, 1, W);
	drain(K("%s.write_imm.b", tn), p, &p->b, 1, W);
	post_recv(p->b.qp, 17, B, 16); /* first: UC drops what finds none */
	post(p->a.qp, 16, IBV_WR_RDMA_WRITE_WITH_IMM, &s, 0, B, mr->rkey, S);
	drain(K("%s.write_imm0.a", tn), p, &p->a, 1, W);
	drain(K("%s.write_imm0.b", tn), p, &p->b, 1, W);
}

/* RC only: READ, CMP_AND_SWP, FETCH_AND_ADD. */
static void ok_read_atomics(struct pair *p)
{
	struct ibv_sge s = sge(A, 5000, mr->lkey);
	uint64_t *local = (uint64_t *)(A + 64), *remote = (uint64_t *)(B + 64);

	memset(A, 0, 5000);
	fill(B, 5000, 13);
	post(p->a.qp, 18, IBV_WR_RDMA_READ, &s, 1, B, mr->rkey, S);
	drain("rc.read.a", p, &p->a, 1, W);
	data("rc.read.data", A, B, 5000);
	*remote = 5;
	s = sge(A + 64, 8, mr->lkey);
	post(p->a.qp, 19, IBV_WR_ATOMIC_CMP_AND_SWP, &s, 1, B + 64, mr->rkey,
	     S);
	drain("rc.cmp_swp.a", p, &p->a, 1, W);
	vd_out("rc.cmp_swp.values", "old %llu new %llu",
	       (unsigned long long)*local, (unsigned long long)*remote);
	post(p->a.qp, 20, IBV_WR_ATOMIC_FETCH_AND_ADD, &s, 1, B + 64, mr->rkey,
	     S);
	drain("rc.fetch_add.a", p, &p->a, 1, W);
	vd_out("rc.fetch_add.values", "old %llu new %llu",
	       (unsigned long long)*local, (unsigned long long)*remote);
}

static void ok_ops(enum ibv_qp_type t, const char *tn)
{
	struct pair p;

	if (pair_make(&p, t, &std_knobs))
		return;
	ok_sends(&p, tn);
	ok_sgl_inline(&p, tn);
	ok_writes(&p, tn);
	if (t == IBV_QPT_RC)
		ok_read_atomics(&p);
	state(K("%s.states", tn), p.a.qp);
	pair_free(&p);
}

/* Posts to a QP in RESET and INIT. */
static void post_early(struct ibv_sge *s)
{
	struct ibv_qp_init_attr ia = { .qp_type = IBV_QPT_RC,
				       .cap = { 2, 2, 2, 2, 16 } };
	struct ibv_cq *cq = ibv_create_cq(d.ctx, 16, NULL, NULL, 0);
	struct ibv_recv_wr rw = { .wr_id = 1, .sg_list = s, .num_sge = 1 },
			   *rbad;
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT,
				 .port_num = VD_PORT };
	struct ibv_qp *qp;

	ia.send_cq = ia.recv_cq = cq;
	qp = ibv_create_qp(d.pd, &ia);
	vd_out("post.reset.send", "%s",
	       vd_err(post(qp, 1, IBV_WR_SEND, s, 1, NULL, 0, S)));
	vd_out("post.reset.recv", "%s", vd_err(ibv_post_recv(qp, &rw, &rbad)));
	ibv_modify_qp(qp, &a,
		      IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
			      IBV_QP_ACCESS_FLAGS);
	vd_out("post.init.send", "%s",
	       vd_err(post(qp, 1, IBV_WR_SEND, s, 1, NULL, 0, S)));
	vd_out("post.init.recv", "%s", vd_err(ibv_post_recv(qp, &rw, &rbad)));
	rw.num_sge = 3;
	vd_out("post.init.recv_sge3", "%s",
	       vd_err(ibv_post_recv(qp, &rw, &rbad)));
	ibv_destroy_qp(qp);
	ibv_destroy_cq(cq);
}

/* Post-time errors in RTS: the returned errno, nothing on the CQ. */
static void post_errors(void)
{
	struct ibv_sge s[3] = { sge(A, 8, mr->lkey), sge(A, 8, mr->lkey),
				sge(A, 8, mr->lkey) };
	struct pair p;
	int i, e = 0, posted = 0;

	post_early(s);
	if (pair_make(&p, IBV_QPT_RC, &std_knobs))
		return;
	vd_out("post.rts.sge3", "%s",
	       vd_err(post(p.a.qp, 1, IBV_WR_SEND, s, 3, NULL, 0, S)));
	vd_out("post.rts.sge5", "%s",
	       vd_err(post(p.a.qp, 1, IBV_WR_SEND, s, 5, NULL, 0, S)));
	s[0].length = 65;
	vd_out("post.rts.inline65", "%s",
	       vd_err(post(p.a.qp, 1, IBV_WR_SEND, s, 1, NULL, 0,
			   S | IBV_SEND_INLINE)));
	s[0].length = 8;
	vd_out("post.rts.opcode99", "%s",
	       vd_err(post(p.a.qp, 1, 99, s, 1, NULL, 0, S)));
	vd_out("post.rts.atomic_misaligned", "%s",
	       vd_err(post(p.a.qp, 1, IBV_WR_ATOMIC_FETCH_AND_ADD, s, 1, B + 4,
			   mr->rkey, S)));
	drain("post.rts.cq", &p, &p.a, 1, 0.3);
	pair_free(&p);
	/* a SEND the peer is not ready for (RNR, retried forever) holds
	 * the queue, so it fills up to what create_qp granted */
	if (pair_make(&p, IBV_QPT_RC, &std_knobs))
		return;
	for (i = 0; i < 100 && !e; i++) {
		e = post(p.a.qp, 200 + i, i ? IBV_WR_RDMA_WRITE : IBV_WR_SEND,
			 s, 1, B, mr->rkey, 0);
		posted += !e;
	}
	vd_out("post.rts.sq_full", "%s after %d", vd_err(e), posted);
	pair_free(&p);
}
/* UC: a SEND with no receive posted is dropped, the sender succeeds. */
static void uc_drop(void)
{
	struct ibv_sge s = sge(A, 64, mr->lkey);
	struct pair p;

	if (pair_make(&p, IBV_QPT_UC, &std_knobs))
		return;
	post(p.a.qp, 1, IBV_WR_SEND, &s, 1, NULL, 0, S);
	drain("uc.no_recv.a", &p, &p.a, 1, W);
	drain("uc.no_recv.b", &p, &p.b, 1, 0.3);
	post_recv(p.b.qp, 2, B, 64);
	post(p.a.qp, 3, IBV_WR_SEND, &s, 1, NULL, 0, S);
	drain("uc.after.a", &p, &p.a, 1, W);
	drain("uc.after.b", &p, &p.b, 1, W);
	vd_out("uc.read.post", "%s",
	       vd_err(post(p.a.qp, 4, IBV_WR_RDMA_READ, &s, 1, B, mr->rkey,
			   S)));
	pair_free(&p);
}

/* SRQ: receives from a shared queue, the limit event. */
static void srq(void)
{
	struct ibv_srq_init_attr sa = { .attr = { 16, 1, 0 } };
	struct ibv_srq_attr q = { .srq_limit = 2 };
	struct knobs k = std_knobs;
	struct ibv_sge s = sge(A, 64, mr->lkey);
	struct pair p;
	int i;

	k.srq = ibv_create_srq(d.pd, &sa);
	if (!k.srq || pair_make(&p, IBV_QPT_RC, &k))
		return;
	for (i = 0; i < 4; i++) {
		struct ibv_sge rs = sge(B + 64 * i, 64, mr->lkey);
		struct ibv_recv_wr w = { .wr_id = 40 + i,
					 .sg_list = &rs,
					 .num_sge = 1 },
				   *bad;

		ibv_post_srq_recv(k.srq, &w, &bad);
	}
	vd_out("srq.arm", "%s",
	       vd_err(ibv_modify_srq(k.srq, &q, IBV_SRQ_LIMIT)));
	events("srq.events_before");
	for (i = 0; i < 3; i++)
		post(p.a.qp, 50 + i, IBV_WR_SEND, &s, 1, NULL, 0, S);
	drain("srq.a", &p, &p.a, 3, W);
	drain("srq.b", &p, &p.b, 3, W);
	usleep(100000);
	events("srq.events_after");
	ibv_query_srq(k.srq, &q);
	vd_out("srq.limit_after", "%u", q.srq_limit);
	{
		struct ibv_qp_attr a = { .qp_state = IBV_QPS_ERR };

		ibv_modify_qp(p.b.qp, &a, IBV_QP_STATE);
		usleep(100000);
		events("srq.qp_err_events");
	}
	pair_free(&p);
	ibv_destroy_srq(k.srq);
}

int main(int argc, char **argv)
{
	if (vd_qp_init(argc, argv, "vdiff_dp"))
		return 1;
	ok_ops(IBV_QPT_RC, "rc");
	ok_ops(IBV_QPT_UC, "uc");
	post_errors();
	uc_drop();
	srq();
	return vd_qp_fini("final.events");
}
