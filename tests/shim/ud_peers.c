/* SPDX-License-Identifier: MIT */
/*
 * One UD receiver, senders on other (simulated) nodes: every completion
 * must name its sender with the IDs the sender sees as its own -- src_qp
 * (translated with that sender's table), slid, and the GIDs of the GRH in
 * the receive buffer -- through ibv_poll_cq and through an ibv_cq_ex.
 *   ud_peers recv DIR NSENDERS N [ex]   (writes DIR/recv, reads nothing)
 *   ud_peers send DIR ID N              (reads DIR/recv)
 * A message carries the sender's virtual QPN, LID and GID 0.
 */
#include "shimtest.h"

#define MSG 64
/* a receive for every message, posted up front: UD drops what finds none */
#define NBUF 256

static int ident_write(const char *dir, const char *name,
		       const struct st_ident *id)
{
	return st_blob_write(dir, name, id, sizeof(*id));
}

static int ident_read(const char *dir, const char *name, struct st_ident *id)
{
	return st_blob_read(dir, name, id, sizeof(*id));
}

static int do_send(const char *dir, int n)
{
	struct ibv_send_wr wr, *bad;
	struct st_ident me, peer;
	struct ibv_ah_attr aa;
	struct ibv_sge sge;
	struct ibv_wc wc;
	struct st_dev d;
	struct ibv_ah *ah;
	struct ibv_mr *mr;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	char buf[MSG];
	int i;

	if (st_open(&d) || ident_read(dir, "recv", &peer))
		return 2;
	cq = ibv_create_cq(d.ctx, 16, NULL, NULL, 0);
	qp = st_qp(&d, IBV_QPT_UD, cq, cq, NULL);
	mr = ibv_reg_mr(d.pd, buf, sizeof(buf), IBV_ACCESS_LOCAL_WRITE);
	if (!qp || !mr || st_ud_ready(qp))
		return 2;
	st_ah_attr(&d, &aa);
	aa.dlid = peer.lid;
	aa.grh.dgid = peer.gid;
	ah = ibv_create_ah(d.pd, &aa);
	if (!ah)
		return 2;
	st_ident_self(&d, qp, &me);
	memset(buf, 0, sizeof(buf));
	memcpy(buf, &me, sizeof(me));
	sge = (struct ibv_sge){ (uintptr_t)buf, sizeof(buf), mr->lkey };
	memset(&wr, 0, sizeof(wr));
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IBV_WR_SEND;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.wr.ud.ah = ah;
	wr.wr.ud.remote_qpn = peer.qpn;
	wr.wr.ud.remote_qkey = ST_QKEY;
	for (i = 0; i < n; i++) {
		if (ibv_post_send(qp, &wr, &bad) || st_poll1(cq, &wc) != 1 ||
		    wc.status != IBV_WC_SUCCESS)
			return 3;
		usleep(1000); /* UD: do not outrun the receiver's buffers */
	}
	return 0;
}

/* What a completion says about its sender, by either polling API. */
struct seen {
	uint64_t wr_id;
	int status;
	uint32_t src_qp, wc_flags;
	uint16_t slid;
};

static int poll_one(struct ibv_cq *cq, struct ibv_cq_ex *cqx, struct seen *s)
{
	struct ibv_poll_cq_attr pa = { 0 };
	struct ibv_wc wc;
	double end = st_now() + 10;

	if (!cqx) {
		if (st_poll1(cq, &wc) != 1)
			return -1;
		*s = (struct seen){ wc.wr_id, wc.status, wc.src_qp, wc.wc_flags,
				    wc.slid };
		return 0;
	}
	while (ibv_start_poll(cqx, &pa) == ENOENT)
		if (st_now() > end)
			return -1;
	*s = (struct seen){ cqx->wr_id, cqx->status, ibv_wc_read_src_qp(cqx),
			    ibv_wc_read_wc_flags(cqx), ibv_wc_read_slid(cqx) };
	ibv_end_poll(cqx);
	return 0;
}

static int check(const struct st_dev *d, const char *buf, const struct seen *s)
{
	const struct ibv_grh *grh = (const struct ibv_grh *)buf;
	struct st_ident from;

	memcpy(&from, buf + 40, sizeof(from));
	if (s->status != IBV_WC_SUCCESS || s->src_qp != from.qpn) {
		fprintf(stderr, "src_qp 0x%x, sender says 0x%x\n", s->src_qp,
			from.qpn);
		return -1;
	}
	if (!d->global && s->slid != from.lid) {
		fprintf(stderr, "slid %u, sender says %u\n", s->slid, from.lid);
		return -1;
	}
	if (d->global &&
	    (!(s->wc_flags & IBV_WC_GRH) || memcmp(&grh->sgid, &from.gid, 16) ||
	     memcmp(&grh->dgid, &d->gid, 16))) {
		fprintf(stderr, "GRH GIDs are not the virtual ones\n");
		return -1;
	}
	return 0;
}

static struct ibv_qp *ud_qp(const struct st_dev *d, struct ibv_cq *cq)
{
	struct ibv_qp_init_attr ia = { .send_cq = cq,
				       .recv_cq = cq,
				       .qp_type = IBV_QPT_UD,
				       .cap = { 16, NBUF, 1, 1, 0 } };

	return ibv_create_qp(d->pd, &ia);
}

static int do_recv(const char *dir, int nsenders, int n, bool ex)
{
	struct ibv_cq_init_attr_ex ca = { .cqe = NBUF };
	struct ibv_recv_wr rwr, *rbad;
	struct ibv_cq_ex *cqx = NULL;
	static char buf[NBUF][40 + MSG];
	struct ibv_sge sge;
	struct st_ident me;
	struct st_dev d;
	struct seen s;
	struct ibv_mr *mr;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	int i, k;

	if (st_open(&d) || nsenders * n > NBUF)
		return 2;
	if (ex) {
		ca.wc_flags = IBV_WC_EX_WITH_SRC_QP | IBV_WC_EX_WITH_SLID;
		cqx = ibv_create_cq_ex(d.ctx, &ca);
		cq = cqx ? ibv_cq_ex_to_cq(cqx) : NULL;
	} else {
		cq = ibv_create_cq(d.ctx, NBUF, NULL, NULL, 0);
	}
	qp = cq ? ud_qp(&d, cq) : NULL;
	mr = ibv_reg_mr(d.pd, buf, sizeof(buf), IBV_ACCESS_LOCAL_WRITE);
	if (!qp || !mr || st_ud_ready(qp))
		return 2;
	memset(&rwr, 0, sizeof(rwr));
	rwr.sg_list = &sge;
	rwr.num_sge = 1;
	for (i = 0; i < nsenders * n; i++) {
		sge = (struct ibv_sge){ (uintptr_t)buf[i], sizeof(buf[i]),
					mr->lkey };
		rwr.wr_id = i;
		if (ibv_post_recv(qp, &rwr, &rbad))
			return 2;
	}
	st_ident_self(&d, qp, &me);
	if (ident_write(dir, "recv", &me))
		return 2;
	for (k = 0; k < nsenders * n; k++) {
		if (poll_one(cq, cqx, &s) || check(&d, buf[s.wr_id], &s))
			return 4;
		sge = (struct ibv_sge){ (uintptr_t)buf[s.wr_id], sizeof(buf[0]),
					mr->lkey };
		rwr.wr_id = s.wr_id;
		if (ibv_post_recv(qp, &rwr, &rbad))
			return 2;
	}
	printf("ud_peers: %d messages from %d senders, every sender named "
	       "right\n",
	       k, nsenders);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && !strcmp(argv[1], "recv"))
		return do_recv(argv[2], atoi(argv[3]), atoi(argv[4]),
			       argc > 5 && !strcmp(argv[5], "ex"));
	if (argc >= 5 && !strcmp(argv[1], "send"))
		return do_send(argv[2], atoi(argv[4]));
	fprintf(stderr, "usage: ud_peers recv DIR NSENDERS N [ex] | "
			"ud_peers send DIR ID N\n");
	return 2;
}
