/* SPDX-License-Identifier: MIT */
/*
 * One RC stream, its receiver's queue small: every message must reach the
 * receive the program posted for it, in order, with the program's wr_id
 * and intact, and every receive the program posts within its queue's
 * depth must be taken.  tests/shim/drain_timeout.sh runs it through
 * checkpoints whose drains time out, after which shim receive buffers
 * (drain/early.c) stay posted on the live queue.
 *   rc_order recv DIR N DEPTH [ex|srq]   (ex: an ibv_cq_ex; srq: an SRQ)
 *   rc_order send DIR N WINDOW
 * The receiver keeps between DEPTH/2 and DEPTH receives posted, alone and
 * as lists; message k carries k and a pattern made from k.
 */
#include "shimtest.h"

#define MSG 256
#define NBUF 64 /* receive buffers, used in turn (DEPTH <= NBUF) */

static int connect_to(const struct st_dev *d, struct ibv_qp *qp,
		      const struct st_ident *peer)
{
	struct tq_rc p = { .dest_qpn = peer->qpn,
			   .rq_psn = 7,
			   .sq_psn = 7,
			   .access = IBV_ACCESS_LOCAL_WRITE,
			   .port = ST_PORT,
			   .timeout = 14,
			   .rd_atomic = 1,
			   .min_rnr_timer = 1 };

	st_ah_attr(d, &p.av);
	p.av.dlid = peer->lid;
	if (d->global)
		p.av.grh.dgid = peer->gid;
	return tq_rc_connect(qp, &p);
}

static void fill(char *buf, uint32_t k)
{
	int i;

	memcpy(buf, &k, sizeof(k));
	for (i = sizeof(k); i < MSG; i++)
		buf[i] = (char)(k * 7 + i);
}

static bool intact(const char *buf, uint32_t k)
{
	char want[MSG];

	fill(want, k);
	return !memcmp(buf, want, MSG);
}

static int do_send(const char *dir, int n, int window)
{
	static char buf[NBUF][MSG]; /* one per send in flight */
	struct ibv_send_wr wr, *bad;
	struct st_ident me, peer;
	struct ibv_sge sge;
	struct ibv_wc wc;
	struct st_dev d;
	struct ibv_mr *mr;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	int sent = 0, done = 0;

	if (st_open(&d) || window < 1 || window > NBUF)
		return 2;
	cq = ibv_create_cq(d.ctx, 64, NULL, NULL, 0);
	mr = ibv_reg_mr(d.pd, buf, sizeof(buf), IBV_ACCESS_LOCAL_WRITE);
	qp = cq ? st_qp(&d, IBV_QPT_RC, cq, cq, NULL) : NULL;
	if (!qp || !mr)
		return 2;
	st_ident_self(&d, qp, &me);
	if (st_blob_write(dir, "send", &me, sizeof(me)) ||
	    st_blob_read(dir, "recv", &peer, sizeof(peer)) ||
	    connect_to(&d, qp, &peer))
		return 2;
	memset(&wr, 0, sizeof(wr));
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IBV_WR_SEND;
	wr.send_flags = IBV_SEND_SIGNALED;
	while (done < n) {
		while (sent < n && sent - done < window) {
			fill(buf[sent % NBUF], (uint32_t)sent);
			sge = (struct ibv_sge){ (uintptr_t)buf[sent % NBUF],
						MSG, mr->lkey };
			wr.wr_id = sent;
			if (ibv_post_send(qp, &wr, &bad)) {
				fprintf(stderr,
					"rc_order: Couldn't post send "
					"%d\n",
					sent);
				return 3;
			}
			sent++;
		}
		if (st_poll1(cq, &wc) != 1 || wc.status != IBV_WC_SUCCESS ||
		    wc.wr_id != (uint64_t)done) {
			fprintf(stderr, "rc_order: send %d: %s\n", done,
				ibv_wc_status_str(wc.status));
			return 4;
		}
		done++;
	}
	/* the receiver may still be checking: stay until it says so */
	if (st_blob_read(dir, "done", &done, sizeof(done)))
		return 5;
	printf("rc_order: %d messages sent\n", n);
	return 0;
}

struct rx {
	struct ibv_qp *qp;
	struct ibv_srq *srq;
	struct ibv_cq *cq;
	struct ibv_cq_ex *cqx;
	struct ibv_mr *mr;
	char (*buf)[MSG];
	uint64_t posted, done;
};

/* Post receives up to @depth outstanding: one alone (the fast path), the
 * rest as one list. */
static int rx_post(struct rx *r, struct ibv_recv_wr *wr)
{
	struct ibv_recv_wr *bad;

	return r->srq ? ibv_post_srq_recv(r->srq, wr, &bad) :
			ibv_post_recv(r->qp, wr, &bad);
}

static int rx_refill(struct rx *r, int depth)
{
	struct ibv_recv_wr wr[NBUF];
	struct ibv_sge sge[NBUF];
	int k, n = depth - (int)(r->posted - r->done), ret = 0;

	for (k = 0; k < n; k++) {
		uint64_t id = r->posted + k;

		sge[k] = (struct ibv_sge){ (uintptr_t)r->buf[id % NBUF], MSG,
					   r->mr->lkey };
		wr[k] = (struct ibv_recv_wr){ .wr_id = id,
					      .next = k > 0 && k + 1 < n ?
							      &wr[k + 1] :
							      NULL,
					      .sg_list = &sge[k],
					      .num_sge = 1 };
	}
	if (n > 0)
		ret = rx_post(r, &wr[0]);
	if (n > 1 && !ret)
		ret = rx_post(r, &wr[1]);
	if (!ret) {
		r->posted += n > 0 ? n : 0;
		return 0;
	}
	fprintf(stderr,
		"rc_order: Couldn't post receive (%s) with %llu of %d "
		"outstanding\n",
		strerror(ret), (unsigned long long)(r->posted - r->done),
		depth);
	return -1;
}

static int rx_poll(struct rx *r, struct ibv_wc *wc)
{
	struct ibv_poll_cq_attr pa = { 0 };
	double end = st_now() + 20;

	if (!r->cqx)
		return st_poll1(r->cq, wc) == 1 ? 0 : -1;
	while (ibv_start_poll(r->cqx, &pa) == ENOENT)
		if (st_now() > end)
			return -1;
	memset(wc, 0, sizeof(*wc));
	wc->wr_id = r->cqx->wr_id;
	wc->status = r->cqx->status;
	if (wc->status == IBV_WC_SUCCESS)
		wc->byte_len = ibv_wc_read_byte_len(r->cqx);
	ibv_end_poll(r->cqx);
	return 0;
}

static int do_recv(const char *dir, int n, int depth, const char *mode)
{
	struct ibv_cq_init_attr_ex ca = { .cqe = 64 };
	struct ibv_srq_init_attr sa = { .attr = { .max_wr = depth,
						  .max_sge = 1 } };
	struct ibv_qp_init_attr ia = { .qp_type = IBV_QPT_RC,
				       .cap = { 4, depth, 1, 1, 0 } };
	static char buf[NBUF][MSG];
	struct st_ident me, peer;
	struct rx r = { .buf = buf };
	struct ibv_wc wc;
	struct st_dev d;
	int k;

	if (st_open(&d) || depth < 2 || depth > NBUF)
		return 2;
	if (!strcmp(mode, "ex")) {
		ca.wc_flags = IBV_WC_EX_WITH_BYTE_LEN;
		r.cqx = ibv_create_cq_ex(d.ctx, &ca);
		r.cq = r.cqx ? ibv_cq_ex_to_cq(r.cqx) : NULL;
	} else {
		r.cq = ibv_create_cq(d.ctx, 64, NULL, NULL, 0);
	}
	if (!strcmp(mode, "srq"))
		r.srq = ibv_create_srq(d.pd, &sa);
	ia.send_cq = ia.recv_cq = r.cq;
	ia.srq = r.srq;
	r.qp = r.cq ? ibv_create_qp(d.pd, &ia) : NULL;
	r.mr = ibv_reg_mr(d.pd, buf, sizeof(buf), IBV_ACCESS_LOCAL_WRITE);
	if (!r.qp || !r.mr || (!strcmp(mode, "srq") && !r.srq))
		return 2;
	st_ident_self(&d, r.qp, &me);
	if (st_blob_read(dir, "send", &peer, sizeof(peer)) ||
	    connect_to(&d, r.qp, &peer) || rx_refill(&r, depth) ||
	    st_blob_write(dir, "recv", &me, sizeof(me)))
		return 2;
	for (k = 0; k < n; k++) {
		if (rx_poll(&r, &wc)) {
			fprintf(stderr, "rc_order: message %d never came\n", k);
			return 4;
		}
		if (wc.status != IBV_WC_SUCCESS || wc.wr_id != r.done ||
		    wc.byte_len != MSG || !intact(buf[r.done % NBUF], k)) {
			fprintf(stderr,
				"rc_order: message %d: %s, wr_id %llu "
				"(expected %llu), %u bytes, carries %u\n",
				k, ibv_wc_status_str(wc.status),
				(unsigned long long)wc.wr_id,
				(unsigned long long)r.done, wc.byte_len,
				*(uint32_t *)buf[r.done % NBUF]);
			return 4;
		}
		r.done++;
		if (r.posted - r.done <= (uint64_t)depth / 2 &&
		    rx_refill(&r, depth))
			return 3;
	}
	if (st_blob_write(dir, "done", &k, sizeof(k)))
		return 2;
	printf("rc_order: %d messages in order, each in its receive (%s)\n", n,
	       mode);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && !strcmp(argv[1], "recv"))
		return do_recv(argv[2], atoi(argv[3]), atoi(argv[4]),
			       argc > 5 ? argv[5] : "cq");
	if (argc >= 5 && !strcmp(argv[1], "send"))
		return do_send(argv[2], atoi(argv[3]), atoi(argv[4]));
	fprintf(stderr, "usage: rc_order recv DIR N DEPTH [ex|srq] | "
			"send DIR N WINDOW\n");
	return 1;
}
