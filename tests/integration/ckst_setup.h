/* SPDX-License-Identifier: MIT */
/* ckpt_stream: a rank's objects, its connection to the peer, its run. */
#ifndef CKST_SETUP_H
#define CKST_SETUP_H

#include <stdlib.h>

#include "../qp_connect.h"

static int ck_file(const char *dir, const char *name, int rank, void *data,
		   size_t len, bool write)
{
	char path[PATH_MAX], tmp[PATH_MAX + 4];
	FILE *f = NULL;
	int i;

	snprintf(path, sizeof(path), "%s/%s.%d", dir, name, rank);
	if (write) {
		snprintf(tmp, sizeof(tmp), "%s.t", path);
		f = fopen(tmp, "w");
		if (!f || (len && fwrite(data, len, 1, f) != 1) || fclose(f))
			return -1;
		return rename(tmp, path);
	}
	for (i = 0; i < 3000 && !f; i++)
		if (!(f = fopen(path, "r")))
			usleep(10000);
	if (!f || (len && fread(data, len, 1, f) != 1))
		return -1;
	fclose(f);
	return 0;
}

static struct ibv_qp *ck_qp(struct ck *c, enum ibv_qp_type t,
			    struct ibv_srq *srq)
{
	struct ibv_qp_init_attr a = { .send_cq = c->scq,
				      .recv_cq = c->rcq,
				      .srq = srq,
				      .qp_type = t,
				      .cap = { SQ_MAX + 16, RQ + 8, 1, 1,
					       64 } };

	return ibv_create_qp(c->pd, &a);
}

static void ck_av(struct ck *c, struct ibv_ah_attr *av)
{
	memset(av, 0, sizeof(*av));
	av->dlid = c->peer.lid;
	av->port_num = 1;
	if (c->global) {
		av->is_global = 1;
		av->grh.dgid = c->peer.gid;
		av->grh.hop_limit = 1;
	}
}

static int ck_connect_rc(struct ck *c, struct ibv_qp *qp, uint32_t dqpn)
{
	struct tq_rc p = { .dest_qpn = dqpn,
			   .rq_psn = 1000u * (uint32_t)(1 - c->rank) + 17,
			   .sq_psn = 1000u * (uint32_t)c->rank + 17,
			   .access = IBV_ACCESS_LOCAL_WRITE |
				     IBV_ACCESS_REMOTE_WRITE |
				     IBV_ACCESS_REMOTE_READ |
				     IBV_ACCESS_REMOTE_ATOMIC,
			   .port = 1,
			   .timeout = 12,
			   .rd_atomic = 4,
			   .min_rnr_timer = 1 };

	ck_av(c, &p.av);
	return tq_rc_connect(qp, &p);
}

static int ck_connect_ud(struct ck *c)
{
	struct ibv_ah_attr av;

	if (tq_ud_ready(c->qp[Q_UD], 1, QKEY, 7))
		return -1;
	ck_av(c, &av);
	c->ah = ibv_create_ah(c->pd, &av);
	return c->ah ? 0 : -1;
}

static int ck_open(struct ck *c)
{
	struct ibv_device **list = ibv_get_device_list(NULL);
	struct ibv_port_attr pa;
	int q, i;

	c->ctx = list && list[0] ? ibv_open_device(list[0]) : NULL;
	if (list)
		ibv_free_device_list(list);
	if (!c->ctx || ibv_query_port(c->ctx, 1, &pa) ||
	    ibv_query_gid(c->ctx, 1, 0, &c->me.gid))
		return -1;
	c->global = pa.link_layer == IBV_LINK_LAYER_ETHERNET;
	c->me.lid = pa.lid;
	c->m = aligned_alloc(4096, (sizeof(*c->m) + 4095) & ~4095ul);
	if (!c->m)
		return -1;
	memset(c->m, 0, sizeof(*c->m));
	for (i = 0; i < 4096; i++)
		c->m->rdonly[i] = ck_pat((uint32_t)i / 64, (uint32_t)i % 64);
	c->pd = ibv_alloc_pd(c->ctx);
	c->mr = c->pd ? ibv_reg_mr(c->pd, c->m, sizeof(*c->m),
				   IBV_ACCESS_LOCAL_WRITE |
					   IBV_ACCESS_REMOTE_WRITE |
					   IBV_ACCESS_REMOTE_READ |
					   IBV_ACCESS_REMOTE_ATOMIC) :
			NULL;
	c->scq = ibv_create_cq(c->ctx, 1024, NULL, NULL, 0);
	c->rcq = ibv_create_cq(c->ctx, 1024, NULL, NULL, 0);
	c->srq = c->pd ? ibv_create_srq(c->pd,
					&(struct ibv_srq_init_attr){
						.attr = { RQ + 8, 1 } }) :
			 NULL;
	if (!c->mr || !c->scq || !c->rcq || !c->srq)
		return -1;
	c->qp[Q_RC] = ck_qp(c, IBV_QPT_RC, NULL);
	c->qp[Q_SRQ] = ck_qp(c, IBV_QPT_RC, c->srq);
	c->qp[Q_UD] = ck_qp(c, IBV_QPT_UD, NULL);
	c->qp[Q_RNR] = ck_qp(c, IBV_QPT_RC, NULL);
	for (q = 0; q < NQ; q++) {
		if (!c->qp[q])
			return -1;
		c->me.qpn[q] = c->qp[q]->qp_num;
	}
	c->me.rkey = c->mr->rkey;
	c->me.base = (uintptr_t)c->m;
	return 0;
}

static int ck_close(struct ck *c)
{
	int q, ret = 0;

	ret |= ibv_destroy_ah(c->ah);
	for (q = 0; q < NQ; q++)
		ret |= ibv_destroy_qp(c->qp[q]);
	ret |= ibv_destroy_srq(c->srq);
	ret |= ibv_destroy_cq(c->scq);
	ret |= ibv_destroy_cq(c->rcq);
	ret |= ibv_dereg_mr(c->mr);
	ret |= ibv_dealloc_pd(c->pd);
	ret |= ibv_close_device(c->ctx);
	free(c->m);
	return ret;
}

/* Told to stop, and every READ and atomic back: time for FIN. */
static bool ck_all_sent(struct ck *c)
{
	return c->stop && c->rd_done == c->rd_sent &&
	       c->fadd_done == c->fadd_sent && c->cas_done == c->cas_sent &&
	       c->done[Q_RNR] == c->posted[Q_RNR];
}

static bool ck_all_got(struct ck *c)
{
	return c->fin_got && c->rc_got == c->fin.rc &&
	       c->imm_got == c->fin.imm && c->w_got == c->fin.w &&
	       c->rnr_got == c->fin.rnr;
}

static void ck_fin(struct ck *c)
{
	struct ibv_send_wr wr = { .opcode = IBV_WR_SEND, .num_sge = 1 };
	struct ck_fin f = { .rc = c->rc_sent,
			    .imm = c->imm_sent,
			    .w = c->w_sent,
			    .fadd = c->fadd_sent,
			    .cas = c->cas_sent,
			    .ud = c->ud_sent,
			    .rnr = c->rnr_sent };
	struct ibv_sge sge;
	struct ck_msg *m;

	if (!ck_rc_credit(c) || !ck_room(c, Q_RC))
		return;
	sge = ck_msg(c, Q_RC, K_FIN, 0, sizeof(f));
	m = (void *)(uintptr_t)sge.addr;
	memcpy(m->data, &f, sizeof(f));
	m->sum = ck_sum(m->data, sizeof(f));
	wr.sg_list = &sge;
	c->fin_idx = c->posted[Q_RC];
	c->fin_sent = true;
	if (ck_post(c, Q_RC, &wr, true))
		ck_fail(c, "post FIN", 0, 0);
}

static void ck_run(struct ck *c)
{
	int (*const ops[])(
		struct ck *) = { op_send, op_imm, op_write, op_rnr,
				 op_read, op_imm, op_ud,    op_send };

	char stop[PATH_MAX];
	unsigned long it = 0;

	snprintf(stop, sizeof(stop), "%s/stop", c->dir);
	while (!(c->fin_done && ck_all_got(c))) {
		if (!c->stop && ++it % 4096 == 0)
			c->stop = !access(stop, F_OK);
		if (!c->stop) {
			if (ops[c->ops++ % 8](c))
				ck_fail(c, "post", c->ops, 0);
			if (c->ops % 16 == 3 && op_atomic(c, c->ops % 32 == 3))
				ck_fail(c, "post atomic", c->ops, 0);
		} else if (ck_all_sent(c) && !c->fin_sent) {
			ck_fin(c);
		}
		ck_poll(c);
		if (op_credit(c, false))
			ck_fail(c, "post credit", 0, 0);
		if (ck_rnr_recv(c))
			ck_fail(c, "post_recv", Q_RNR, 0);
	}
	/* atomics acted once each: the peer's totals against our counters */
	if (c->m->fadd != c->fin.fadd || c->m->cas != c->fin.cas)
		ck_fail(c, "atomics applied not once", c->m->fadd, c->fin.fadd);
	if (c->ud_got > c->fin.ud)
		ck_fail(c, "more UD datagrams than sent", c->ud_got, c->fin.ud);
}

static int ckst_rank(int rank, const char *dir)
{
	static struct ck c;
	char path[PATH_MAX];
	int q, i;

	c.rank = rank;
	c.dir = dir;
	if (getenv("CKST_WINDOW"))
		ck_window = (unsigned int)atoi(getenv("CKST_WINDOW")) % RQ;
	if (ck_open(&c))
		ck_fail(&c, "setup: objects", errno, 0);
	if (ck_file(dir, "info", rank, &c.me, sizeof(c.me), 1) ||
	    ck_file(dir, "info", 1 - rank, &c.peer, sizeof(c.peer), 0))
		ck_fail(&c, "setup: exchange", errno, 0);
	if (ck_connect_rc(&c, c.qp[Q_RC], c.peer.qpn[Q_RC]) ||
	    ck_connect_rc(&c, c.qp[Q_SRQ], c.peer.qpn[Q_SRQ]) ||
	    ck_connect_rc(&c, c.qp[Q_RNR], c.peer.qpn[Q_RNR]) ||
	    ck_connect_ud(&c))
		ck_fail(&c, "setup: connect", errno, 0);
	for (q = 0; q < Q_RNR; q++) /* receive queues take WRs from INIT on */
		for (i = 0; i < RQ; i++)
			if (ck_post_recv(&c, q, i))
				ck_fail(&c, "setup: post_recv", q, i);
	/* both ready before either sends: UD has no RNR */
	if (ck_file(dir, "ready", rank, NULL, 0, 1) ||
	    ck_file(dir, "ready", 1 - rank, NULL, 0, 0))
		ck_fail(&c, "setup: ready", errno, 0);
	ck_run(&c);
	/* done: serve the peer and the checkpoints until told to stop */
	op_credit(&c, true);
	ck_file(dir, "done", rank, NULL, 0, 1);
	snprintf(path, sizeof(path), "%s/exit", dir);
	while (access(path, F_OK)) {
		ck_poll(&c);
		usleep(2000);
	}
	ck_poll(&c);
	printf("rank %d: %u RC, %u IMM, %u WRITE_IMM, %u READ, %u FADD, "
	       "%u CAS, %u RNR-held exactly once; %u/%u UD\n",
	       rank, c.rc_got, c.imm_got, c.w_got, c.rd_done, c.fadd_done,
	       c.cas_done, c.rnr_got, c.ud_got, (unsigned int)c.fin.ud);
	return ck_close(&c) ? 4 : 0;
}

#endif /* CKST_SETUP_H */
