/* SPDX-License-Identifier: MIT */
/*
 * The shim's verbs API beyond what the Debian tools use: extended contexts,
 * CQs and QPs (ibv_wr_*), GID tables, completion channels (O_NONBLOCK,
 * epoll, blocking), async events, UD reply addresses, WR lists, errnos.
 * Run under ibsnap run --fake (tests/shim/api.sh), also in remap mode.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <cmocka.h>

#include "shimtest.h"

#undef ibv_query_port

static struct st_dev dev;

static int setup(void **state)
{
	(void)state;
	return st_open(&dev);
}

static int teardown(void **state)
{
	(void)state;
	st_close(&dev);
	return 0;
}

static void test_extended_context(void **state)
{
	struct ibv_device_attr_ex ax;
	uint8_t buf[64];

	(void)state;
	assert_non_null(verbs_get_ctx_op(dev.ctx, query_device_ex));
	assert_non_null(verbs_get_ctx_op(dev.ctx, create_cq_ex));
	assert_non_null(verbs_get_ctx_op(dev.ctx, create_qp_ex));
	assert_non_null(verbs_get_ctx_op(dev.ctx, query_port));
	assert_int_equal(ibv_query_device_ex(dev.ctx, NULL, &ax), 0);
	assert_true(ax.orig_attr.phys_port_cnt >= 1);
	/* the exported ibv_query_port writes rdma-core's 48-byte compat struct */
	memset(buf, 0xaa, sizeof(buf));
	assert_int_equal(ibv_query_port(dev.ctx, ST_PORT,
					(struct _compat_ibv_port_attr *)buf),
			 0);
	assert_int_equal(((struct ibv_port_attr *)buf)->state, IBV_PORT_ACTIVE);
	assert_int_equal(((struct ibv_port_attr *)buf)->lid, dev.port.lid);
	assert_int_equal(buf[48], 0xaa);
	assert_int_equal(buf[63], 0xaa);
}

static void test_gid_table(void **state)
{
	struct ibv_gid_entry ent[16], e;
	union ibv_gid g;
	ssize_t n, i;

	(void)state;
	n = ibv_query_gid_table(dev.ctx, ent, 16, 0);
	assert_true(n >= 1);
	for (i = 0; i < n; i++) {
		assert_int_equal(ibv_query_gid(dev.ctx, ST_PORT,
					       ent[i].gid_index, &g),
				 0);
		assert_memory_equal(&g, &ent[i].gid, sizeof(g));
		assert_int_equal(ibv_query_gid_ex(dev.ctx, ST_PORT,
						  ent[i].gid_index, &e, 0),
				 0);
		assert_memory_equal(&e.gid, &g, sizeof(g));
	}
	assert_int_equal(ibv_query_gid_table(dev.ctx, ent, 0, 0), -EINVAL);
}

static void test_unsupported_errnos(void **state)
{
	struct ibv_cq *cq = ibv_create_cq(dev.ctx, 8, NULL, NULL, 0);
	struct ibv_qp *qp = st_qp(&dev, IBV_QPT_UD, cq, cq, NULL);
	struct ibv_srq_init_attr sa = { .attr = { .max_wr = 4, .max_sge = 1 } };
	struct ibv_srq *srq = ibv_create_srq(dev.pd, &sa);
	bool (*is_mlx5)(struct ibv_device *);
	struct ibv_ece ece;
	uint32_t num;

	(void)state;
	assert_non_null(qp);
	assert_non_null(srq);
	assert_int_equal(ibv_attach_mcast(qp, &dev.gid, 0), EOPNOTSUPP);
	assert_int_equal(ibv_query_ece(qp, &ece), EOPNOTSUPP);
	errno = 0;
	assert_null(ibv_alloc_mw(dev.pd, IBV_MW_TYPE_1));
	assert_int_equal(errno, EOPNOTSUPP);
	assert_int_equal(ibv_get_srq_num(srq, &num), EOPNOTSUPP);
	is_mlx5 = (bool (*)(struct ibv_device *))dlsym(RTLD_DEFAULT, "mlx5dv_"
								     "is_"
								     "supporte"
								     "d");
	assert_non_null(is_mlx5);
	assert_false(is_mlx5(dev.ctx->device));
	assert_int_equal(ibv_destroy_srq(srq), 0);
	assert_int_equal(ibv_destroy_qp(qp), 0);
	assert_int_equal(ibv_destroy_cq(cq), 0);
}

/* SEND, RDMA WRITE/READ and atomics between two RC QPs of this process. */
static void test_rc_one_and_two_sided(void **state)
{
	struct ibv_cq *cq = ibv_create_cq(dev.ctx, 64, NULL, NULL, 0);
	struct ibv_qp *a = st_qp(&dev, IBV_QPT_RC, cq, cq, NULL);
	struct ibv_qp *b = st_qp(&dev, IBV_QPT_RC, cq, cq, NULL);
	uint64_t *mem = aligned_alloc(64, 4096);
	struct ibv_mr *mr = ibv_reg_mr(dev.pd, mem, 4096, ST_ACCESS);
	struct ibv_sge sge = { (uintptr_t)mem, 64, mr->lkey };
	struct ibv_recv_wr rwr = { .wr_id = 1, .sg_list = &sge, .num_sge = 1 };
	struct ibv_send_wr swr = { .wr_id = 2, .sg_list = &sge, .num_sge = 1 };
	struct ibv_send_wr *bad;
	struct ibv_recv_wr *rbad;
	struct ibv_wc wc;

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(st_rc_connect(&dev, a, b->qp_num), 0);
	assert_int_equal(st_rc_connect(&dev, b, a->qp_num), 0);
	memset(mem, 0, 4096);
	mem[0] = 0x1234;

	/* SEND a -> b: lands in mem[8..] */
	struct ibv_sge rsge = { (uintptr_t)&mem[8], 64, mr->lkey };
	rwr.sg_list = &rsge;
	assert_int_equal(ibv_post_recv(b, &rwr, &rbad), 0);
	swr.opcode = IBV_WR_SEND;
	swr.send_flags = IBV_SEND_SIGNALED;
	assert_int_equal(ibv_post_send(a, &swr, &bad), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(st_poll1(cq, &wc), 1);
		assert_int_equal(wc.status, IBV_WC_SUCCESS);
		assert_int_equal(wc.qp_num,
				 wc.wr_id == 1 ? b->qp_num : a->qp_num);
	}
	assert_int_equal(mem[8], 0x1234);

	/* RDMA WRITE mem[0] -> mem[16], READ mem[16] -> mem[24] */
	swr.opcode = IBV_WR_RDMA_WRITE;
	swr.sg_list = &sge;
	swr.wr.rdma.remote_addr = (uintptr_t)&mem[16];
	swr.wr.rdma.rkey = mr->rkey;
	assert_int_equal(ibv_post_send(a, &swr, &bad), 0);
	assert_int_equal(st_poll1(cq, &wc), 1);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	assert_int_equal(mem[16], 0x1234);
	struct ibv_sge rdsge = { (uintptr_t)&mem[24], 8, mr->lkey };
	swr.opcode = IBV_WR_RDMA_READ;
	swr.sg_list = &rdsge;
	assert_int_equal(ibv_post_send(a, &swr, &bad), 0);
	assert_int_equal(st_poll1(cq, &wc), 1);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	assert_int_equal(mem[24], 0x1234);

	/* FETCH_ADD on mem[32] returns the old value into mem[40] */
	mem[32] = 5;
	struct ibv_sge asge = { (uintptr_t)&mem[40], 8, mr->lkey };
	swr.opcode = IBV_WR_ATOMIC_FETCH_AND_ADD;
	swr.sg_list = &asge;
	swr.wr.atomic.remote_addr = (uintptr_t)&mem[32];
	swr.wr.atomic.rkey = mr->rkey;
	swr.wr.atomic.compare_add = 3;
	assert_int_equal(ibv_post_send(a, &swr, &bad), 0);
	assert_int_equal(st_poll1(cq, &wc), 1);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	assert_int_equal(mem[40], 5);
	assert_int_equal(mem[32], 8);

	/* a wrong rkey is the peer's business: remote access error */
	swr.opcode = IBV_WR_RDMA_WRITE;
	swr.sg_list = &sge;
	swr.wr.rdma.remote_addr = (uintptr_t)&mem[16];
	swr.wr.rdma.rkey = mr->rkey + 0x100;
	assert_int_equal(ibv_post_send(a, &swr, &bad), 0);
	assert_int_equal(st_poll1(cq, &wc), 1);
	assert_int_equal(wc.status, IBV_WC_REM_ACCESS_ERR);

	assert_int_equal(ibv_destroy_qp(a), 0);
	assert_int_equal(ibv_destroy_qp(b), 0);
	assert_int_equal(ibv_dereg_mr(mr), 0);
	assert_int_equal(ibv_destroy_cq(cq), 0);
	free(mem);
}

/* Poll one completion through the ibv_cq_ex iterator (10 s at most). */
static int cqx_poll1(struct ibv_cq_ex *cq, uint64_t *wr_id,
		     enum ibv_wc_status *status, enum ibv_wc_opcode *op,
		     uint32_t *qpn, uint32_t *len)
{
	struct ibv_poll_cq_attr pa = { 0 };
	double end = st_now() + 10;
	int ret;

	do
		ret = ibv_start_poll(cq, &pa);
	while (ret == ENOENT && st_now() < end);
	if (ret)
		return ret;
	*wr_id = cq->wr_id;
	*status = cq->status;
	*op = ibv_wc_read_opcode(cq);
	*qpn = ibv_wc_read_qp_num(cq);
	*len = ibv_wc_read_byte_len(cq);
	ibv_end_poll(cq);
	return 0;
}

static void test_cq_ex_and_wr_api(void **state)
{
	struct ibv_cq_init_attr_ex ca = {
		.cqe = 64,
		.wc_flags = IBV_WC_EX_WITH_BYTE_LEN | IBV_WC_EX_WITH_QP_NUM,
	};
	struct ibv_qp_init_attr_ex qa = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 16,
			 .max_recv_wr = 16,
			 .max_send_sge = 2,
			 .max_recv_sge = 2,
			 .max_inline_data = 64 },
		.comp_mask = IBV_QP_INIT_ATTR_PD |
			     IBV_QP_INIT_ATTR_SEND_OPS_FLAGS,
		.pd = dev.pd,
		.send_ops_flags = IBV_QP_EX_WITH_SEND |
				  IBV_QP_EX_WITH_RDMA_WRITE,
	};
	struct ibv_cq_ex *cqx = ibv_create_cq_ex(dev.ctx, &ca);
	char *mem = calloc(1, 4096);
	struct ibv_mr *mr = ibv_reg_mr(dev.pd, mem, 4096, ST_ACCESS);
	struct ibv_sge rsge = { (uintptr_t)mem + 1024, 256, mr->lkey };
	struct ibv_recv_wr rwr = { .wr_id = 9, .sg_list = &rsge, .num_sge = 1 };
	struct ibv_recv_wr *rbad;
	struct ibv_qp *a, *b, *c;
	struct ibv_qp_ex *ax;
	enum ibv_wc_status st = 0;
	enum ibv_wc_opcode op = 0;
	uint32_t qpn = 0, len = 0;
	uint64_t wr_id = 0;

	(void)state;
	assert_non_null(cqx);
	qa.send_cq = qa.recv_cq = ibv_cq_ex_to_cq(cqx);
	a = ibv_create_qp_ex(dev.ctx, &qa);
	b = ibv_create_qp_ex(dev.ctx, &qa);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(st_rc_connect(&dev, a, b->qp_num), 0);
	assert_int_equal(st_rc_connect(&dev, b, a->qp_num), 0);
	ax = ibv_qp_to_qp_ex(a);
	assert_non_null(ax);
	c = st_qp(&dev, IBV_QPT_RC, qa.send_cq, qa.send_cq, NULL);
	assert_null(ibv_qp_to_qp_ex(c)); /* created without send_ops_flags */
	assert_int_equal(ibv_destroy_qp(c), 0);
	strcpy(mem, "hello through ibv_wr_send");
	assert_int_equal(ibv_post_recv(b, &rwr, &rbad), 0);

	ibv_wr_start(ax);
	ax->wr_id = 21;
	ax->wr_flags = IBV_SEND_SIGNALED;
	ibv_wr_send(ax);
	ibv_wr_set_sge(ax, mr->lkey, (uintptr_t)mem, 32);
	ax->wr_id = 22;
	ibv_wr_rdma_write(ax, mr->rkey, (uintptr_t)mem + 2048);
	ibv_wr_set_inline_data(ax, "inline!", 8);
	assert_int_equal(ibv_wr_complete(ax), 0);

	for (int i = 0; i < 3; i++) {
		assert_int_equal(cqx_poll1(cqx, &wr_id, &st, &op, &qpn, &len),
				 0);
		assert_int_equal(st, IBV_WC_SUCCESS);
		if (wr_id == 9) {
			assert_int_equal(op, IBV_WC_RECV);
			assert_int_equal(qpn, b->qp_num);
			assert_int_equal(len, 32);
		} else {
			assert_true(wr_id == 21 || wr_id == 22);
			assert_int_equal(qpn, a->qp_num);
		}
	}
	assert_string_equal(mem + 1024, "hello through ibv_wr_send");
	assert_string_equal(mem + 2048, "inline!");

	/* aborted WRs are not posted; an opcode not asked for is NULL */
	ibv_wr_start(ax);
	ibv_wr_send(ax);
	ibv_wr_abort(ax);
	assert_null(ax->wr_rdma_read);
	assert_int_equal(ibv_destroy_qp(a), 0);
	assert_int_equal(ibv_destroy_qp(b), 0);
	assert_int_equal(ibv_destroy_cq(ibv_cq_ex_to_cq(cqx)), 0);
	assert_int_equal(ibv_dereg_mr(mr), 0);
	free(mem);
}

struct sender {
	struct ibv_qp *qp;
	struct ibv_send_wr wr;
	useconds_t delay;
};

static void *send_later(void *p)
{
	struct sender *s = p;
	struct ibv_send_wr *bad;

	usleep(s->delay);
	if (ibv_post_send(s->qp, &s->wr, &bad))
		abort();
	return NULL;
}

static void test_comp_channel(void **state)
{
	struct ibv_comp_channel *ch = ibv_create_comp_channel(dev.ctx);
	struct ibv_cq *scq = ibv_create_cq(dev.ctx, 16, NULL, NULL, 0);
	struct ibv_cq *cq, *rcq;
	struct ibv_qp *a, *b;
	char buf[64] = "x";
	struct ibv_mr *mr = ibv_reg_mr(dev.pd, buf, sizeof(buf), ST_ACCESS);
	struct ibv_sge sge = { (uintptr_t)buf, 8, mr->lkey };
	struct ibv_recv_wr rwr = { .sg_list = &sge, .num_sge = 1 }, *rbad;
	struct sender snd = {
		.wr = { .sg_list = &sge, .num_sge = 1, .opcode = IBV_WR_SEND }
	};
	struct epoll_event ev = { .events = EPOLLIN }, out;
	int ep = epoll_create1(0), i, fl;
	void *cq_ctx;
	struct ibv_wc wc;
	pthread_t t;

	(void)state;
	assert_non_null(ch);
	rcq = ibv_create_cq(dev.ctx, 16, &dev, ch, 0);
	assert_non_null(rcq);
	assert_ptr_equal(rcq->channel, ch);
	a = st_qp(&dev, IBV_QPT_RC, scq, scq, NULL);
	b = st_qp(&dev, IBV_QPT_RC, scq, rcq, NULL);
	assert_int_equal(st_rc_connect(&dev, a, b->qp_num), 0);
	assert_int_equal(st_rc_connect(&dev, b, a->qp_num), 0);
	snd.qp = a;

	/* non-blocking: nothing yet */
	fl = fcntl(ch->fd, F_GETFL);
	assert_int_equal(fcntl(ch->fd, F_SETFL, fl | O_NONBLOCK), 0);
	errno = 0;
	assert_int_equal(ibv_get_cq_event(ch, &cq, &cq_ctx), -1);
	assert_int_equal(errno, EAGAIN);

	/* epoll reports the fd once a completion arrives on the armed CQ */
	assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, ch->fd, &ev), 0);
	assert_int_equal(epoll_wait(ep, &out, 1, 0), 0);
	assert_int_equal(ibv_req_notify_cq(rcq, 0), 0);
	assert_int_equal(ibv_post_recv(b, &rwr, &rbad), 0);
	assert_int_equal(
		ibv_post_send(a, &snd.wr, &(struct ibv_send_wr *){ 0 }), 0);
	assert_int_equal(epoll_wait(ep, &out, 1, 10000), 1);
	assert_int_equal(ibv_get_cq_event(ch, &cq, &cq_ctx), 0);
	assert_ptr_equal(cq, rcq);
	assert_ptr_equal(cq_ctx, &dev);
	assert_int_equal(epoll_wait(ep, &out, 1, 0), 0); /* consumed */
	assert_int_equal(ibv_poll_cq(rcq, 1, &wc), 1);
	ibv_ack_cq_events(cq, 1);

	/* blocking: woken by a completion posted later by another thread */
	assert_int_equal(fcntl(ch->fd, F_SETFL, fl & ~O_NONBLOCK), 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(ibv_req_notify_cq(rcq, 0), 0);
		assert_int_equal(ibv_post_recv(b, &rwr, &rbad), 0);
		snd.delay = 20000;
		assert_int_equal(pthread_create(&t, NULL, send_later, &snd), 0);
		assert_int_equal(ibv_get_cq_event(ch, &cq, &cq_ctx), 0);
		pthread_join(t, NULL);
		assert_ptr_equal(cq, rcq);
		assert_int_equal(st_poll1(rcq, &wc), 1);
		assert_int_equal(wc.status, IBV_WC_SUCCESS);
	}
	ibv_ack_cq_events(rcq, 3);
	while (ibv_poll_cq(scq, 1, &wc) > 0)
		;

	/* a channel with a CQ on it cannot go */
	assert_int_equal(ibv_destroy_comp_channel(ch), EBUSY);
	assert_int_equal(ibv_destroy_qp(a), 0);
	assert_int_equal(ibv_destroy_qp(b), 0);
	assert_int_equal(ibv_destroy_cq(rcq), 0); /* every event acked */
	assert_int_equal(ibv_destroy_comp_channel(ch), 0);
	assert_int_equal(ibv_destroy_cq(scq), 0);
	assert_int_equal(ibv_dereg_mr(mr), 0);
	close(ep);
}

/* SRQ limit: an async event naming the virtual SRQ, with its context. */
static void test_async_event(void **state)
{
	struct ibv_cq *cq = ibv_create_cq(dev.ctx, 64, NULL, NULL, 0);
	struct ibv_srq_init_attr sa = {
		.srq_context = &dev,
		.attr = { .max_wr = 16, .max_sge = 1 },
	};
	struct ibv_srq *srq = ibv_create_srq(dev.pd, &sa);
	struct ibv_srq_attr lim = { .srq_limit = 4 };
	char buf[64];
	struct ibv_mr *mr = ibv_reg_mr(dev.pd, buf, sizeof(buf), ST_ACCESS);
	struct ibv_sge sge = { (uintptr_t)buf, 8, mr->lkey };
	struct ibv_recv_wr rwr = { .sg_list = &sge, .num_sge = 1 }, *rbad;
	struct ibv_send_wr swr = { .sg_list = &sge,
				   .num_sge = 1,
				   .opcode = IBV_WR_SEND,
				   .send_flags = IBV_SEND_SIGNALED },
			   *bad;
	struct ibv_async_event ae;
	struct ibv_qp *a, *b;
	struct ibv_wc wc;
	int i, fl;

	(void)state;
	assert_non_null(srq);
	a = st_qp(&dev, IBV_QPT_RC, cq, cq, NULL);
	b = st_qp(&dev, IBV_QPT_RC, cq, cq, srq);
	assert_int_equal(st_rc_connect(&dev, a, b->qp_num), 0);
	assert_int_equal(st_rc_connect(&dev, b, a->qp_num), 0);
	fl = fcntl(dev.ctx->async_fd, F_GETFL);
	assert_int_equal(fcntl(dev.ctx->async_fd, F_SETFL, fl | O_NONBLOCK), 0);
	errno = 0;
	assert_int_equal(ibv_get_async_event(dev.ctx, &ae), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(fcntl(dev.ctx->async_fd, F_SETFL, fl), 0);

	for (i = 0; i < 8; i++)
		assert_int_equal(ibv_post_srq_recv(srq, &rwr, &rbad), 0);
	assert_int_equal(ibv_modify_srq(srq, &lim, IBV_SRQ_LIMIT), 0);
	for (i = 0; i < 5; i++) { /* 8 - 5 = 3 < 4 */
		assert_int_equal(ibv_post_send(a, &swr, &bad), 0);
		assert_int_equal(st_poll1(cq, &wc), 1);
		assert_int_equal(st_poll1(cq, &wc), 1);
	}
	assert_int_equal(ibv_get_async_event(dev.ctx, &ae), 0); /* blocks */
	assert_int_equal(ae.event_type, IBV_EVENT_SRQ_LIMIT_REACHED);
	assert_ptr_equal(ae.element.srq, srq);
	assert_ptr_equal(ae.element.srq->srq_context, &dev);
	ibv_ack_async_event(&ae);

	assert_int_equal(ibv_destroy_qp(a), 0);
	assert_int_equal(ibv_destroy_qp(b), 0);
	assert_int_equal(ibv_destroy_srq(srq), 0);
	assert_int_equal(ibv_destroy_cq(cq), 0);
	assert_int_equal(ibv_dereg_mr(mr), 0);
}

/* UD: a reply addressed with ibv_create_ah_from_wc and the WC's src_qp. */
static void test_ud_reply_from_wc(void **state)
{
	struct ibv_cq *cq = ibv_create_cq(dev.ctx, 64, NULL, NULL, 0);
	struct ibv_qp *a = st_qp(&dev, IBV_QPT_UD, cq, cq, NULL);
	struct ibv_qp *b = st_qp(&dev, IBV_QPT_UD, cq, cq, NULL);
	char *mem = calloc(1, 4096);
	struct ibv_mr *mr = ibv_reg_mr(dev.pd, mem, 4096, ST_ACCESS);
	struct ibv_sge rsge = { (uintptr_t)mem, 40 + 64, mr->lkey };
	struct ibv_sge ssge = { (uintptr_t)mem + 2048, 16, mr->lkey };
	struct ibv_recv_wr rwr = { .wr_id = 1, .sg_list = &rsge, .num_sge = 1 };
	struct ibv_send_wr swr = { .wr_id = 2,
				   .sg_list = &ssge,
				   .num_sge = 1,
				   .opcode = IBV_WR_SEND,
				   .send_flags = IBV_SEND_SIGNALED };
	struct ibv_recv_wr *rbad;
	struct ibv_send_wr *bad;
	struct ibv_ah_attr aa;
	struct ibv_ah *ah, *reply;
	struct ibv_wc wc, rwc = { 0 };
	int i, got = 0;

	(void)state;
	assert_int_equal(st_ud_ready(a), 0);
	assert_int_equal(st_ud_ready(b), 0);
	st_ah_attr(&dev, &aa);
	ah = ibv_create_ah(dev.pd, &aa);
	assert_non_null(ah);
	strcpy(mem + 2048, "ud ping");
	assert_int_equal(ibv_post_recv(b, &rwr, &rbad), 0);
	swr.wr.ud.ah = ah;
	swr.wr.ud.remote_qpn = b->qp_num;
	swr.wr.ud.remote_qkey = ST_QKEY;
	assert_int_equal(ibv_post_send(a, &swr, &bad), 0);
	for (i = 0; i < 2; i++) {
		assert_int_equal(st_poll1(cq, &wc), 1);
		assert_int_equal(wc.status, IBV_WC_SUCCESS);
		if (wc.wr_id == 1)
			rwc = wc;
	}
	assert_int_equal(rwc.qp_num, b->qp_num);
	assert_int_equal(rwc.src_qp, a->qp_num);
	assert_int_equal(rwc.slid, dev.port.lid);
	assert_string_equal(mem + 40, "ud ping");

	/* reply from b to whoever sent it */
	reply = ibv_create_ah_from_wc(dev.pd, &rwc, (struct ibv_grh *)mem,
				      ST_PORT);
	assert_non_null(reply);
	assert_int_equal(ibv_init_ah_from_wc(dev.ctx, ST_PORT, &rwc,
					     (struct ibv_grh *)mem, &aa),
			 0);
	assert_int_equal(aa.dlid, dev.port.lid);
	if (dev.global)
		assert_memory_equal(&aa.grh.dgid, &dev.gid, sizeof(dev.gid));
	memset(mem, 0, 128);
	assert_int_equal(ibv_post_recv(a, &rwr, &rbad), 0);
	swr.wr.ud.ah = reply;
	swr.wr.ud.remote_qpn = rwc.src_qp;
	strcpy(mem + 2048, "ud pong");
	assert_int_equal(ibv_post_send(b, &swr, &bad), 0);
	for (i = 0; i < 2; i++) {
		assert_int_equal(st_poll1(cq, &wc), 1);
		assert_int_equal(wc.status, IBV_WC_SUCCESS);
		got += wc.wr_id == 1 && wc.qp_num == a->qp_num;
	}
	assert_int_equal(got, 1);
	assert_string_equal(mem + 40, "ud pong");

	assert_int_equal(ibv_destroy_ah(reply), 0);
	assert_int_equal(ibv_destroy_ah(ah), 0);
	assert_int_equal(ibv_destroy_qp(a), 0);
	assert_int_equal(ibv_destroy_qp(b), 0);
	assert_int_equal(ibv_destroy_cq(cq), 0);
	assert_int_equal(ibv_dereg_mr(mr), 0);
	free(mem);
}

/*
 * A long WR list with a bad WR deep inside: WRs before it are posted, and
 * *bad_wr is the application's own WR (the shim may post in batches).
 */
static void test_wr_list_bad_wr(void **state)
{
	enum { N = 40, BAD = 37 };
	struct ibv_cq *cq = ibv_create_cq(dev.ctx, 128, NULL, NULL, 0);
	struct ibv_qp *a = st_qp(&dev, IBV_QPT_UD, cq, cq, NULL);
	struct ibv_qp *b = st_qp(&dev, IBV_QPT_UD, cq, cq, NULL);
	char *mem = calloc(1, 16384);
	struct ibv_mr *mr = ibv_reg_mr(dev.pd, mem, 16384, ST_ACCESS);
	struct ibv_sge sge[N][8], rsge[N];
	struct ibv_send_wr wr[N], *bad = NULL;
	struct ibv_recv_wr rwr[N], *rbad = NULL;
	struct ibv_ah_attr aa;
	struct ibv_ah *ah;
	struct ibv_wc wc;
	int i, sends = 0, recvs = 0;

	(void)state;
	assert_int_equal(st_ud_ready(a), 0);
	assert_int_equal(st_ud_ready(b), 0);
	st_ah_attr(&dev, &aa);
	ah = ibv_create_ah(dev.pd, &aa);
	memset(wr, 0, sizeof(wr));
	memset(rwr, 0, sizeof(rwr));
	for (i = 0; i < N; i++) {
		for (int k = 0; k < 8; k++)
			sge[i][k] = (struct ibv_sge){ (uintptr_t)mem + 128 * i,
						      k ? 0 : 64, mr->lkey };
		rsge[i] = (struct ibv_sge){ (uintptr_t)mem + 8192 + 128 * i,
					    128, mr->lkey };
		rwr[i] = (struct ibv_recv_wr){ .wr_id = 100 + i,
					       .next = &rwr[i + 1],
					       .sg_list = &rsge[i],
					       .num_sge = 1 };
		wr[i] = (struct ibv_send_wr){ .wr_id = i,
					      .next = &wr[i + 1],
					      .sg_list = sge[i],
					      .num_sge = 1,
					      .opcode = IBV_WR_SEND,
					      .send_flags = IBV_SEND_SIGNALED };
		wr[i].wr.ud.ah = ah;
		wr[i].wr.ud.remote_qpn = b->qp_num;
		wr[i].wr.ud.remote_qkey = ST_QKEY;
	}
	rwr[N - 1].next = NULL;
	wr[N - 1].next = NULL;
	wr[BAD].num_sge = 8; /* more than max_send_sge (4) */
	rwr[N - 1].sg_list = sge[N - 1];
	rwr[N - 1].num_sge = 8;
	assert_int_not_equal(ibv_post_recv(b, rwr, &rbad), 0);
	assert_ptr_equal(rbad, &rwr[N - 1]);
	assert_int_not_equal(ibv_post_send(a, wr, &bad), 0);
	assert_ptr_equal(bad, &wr[BAD]);
	while (sends < BAD || recvs < BAD) {
		assert_int_equal(st_poll1(cq, &wc), 1);
		assert_int_equal(wc.status, IBV_WC_SUCCESS);
		if (wc.opcode == IBV_WC_SEND)
			assert_int_equal(wc.wr_id, sends++);
		else
			assert_int_equal(wc.wr_id, 100 + recvs++);
	}
	assert_int_equal(ibv_poll_cq(cq, 1, &wc), 0);
	assert_int_equal(ibv_destroy_qp(a), 0);
	assert_int_equal(ibv_destroy_qp(b), 0);
	assert_int_equal(ibv_destroy_ah(ah), 0);
	assert_int_equal(ibv_destroy_cq(cq), 0);
	assert_int_equal(ibv_dereg_mr(mr), 0);
	free(mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_extended_context),
		cmocka_unit_test(test_gid_table),
		cmocka_unit_test(test_unsupported_errnos),
		cmocka_unit_test(test_rc_one_and_two_sided),
		cmocka_unit_test(test_cq_ex_and_wr_api),
		cmocka_unit_test(test_comp_channel),
		cmocka_unit_test(test_async_event),
		cmocka_unit_test(test_ud_reply_from_wc),
		cmocka_unit_test(test_wr_list_bad_wr),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
