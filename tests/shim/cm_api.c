// SPDX-License-Identifier: MIT
/*
 * The shim's rdma_cm API (verbs-shim/cm_*.c) as librdmacm specifies it:
 * private data, reject, accept, disconnect, timeouts, ports, non-blocking
 * channels, errnos.  One process holds both ends (two event channels).
 * Run by tests/shim/rdmacm.sh under ibsnap run --fake.
 *
 * The rdma_* functions are weak references: the program links only
 * libibverbs (as every tests/shim program) and gets them from the shim,
 * which ibsnap run preloads.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <rdma/rdma_cma.h>
#include <cmocka.h>

#pragma weak rdma_create_event_channel
#pragma weak rdma_destroy_event_channel
#pragma weak rdma_create_id
#pragma weak rdma_destroy_id
#pragma weak rdma_bind_addr
#pragma weak rdma_listen
#pragma weak rdma_resolve_addr
#pragma weak rdma_resolve_route
#pragma weak rdma_create_qp
#pragma weak rdma_destroy_qp
#pragma weak rdma_connect
#pragma weak rdma_accept
#pragma weak rdma_reject
#pragma weak rdma_disconnect
#pragma weak rdma_get_cm_event
#pragma weak rdma_ack_cm_event
#pragma weak rdma_get_src_port
#pragma weak rdma_get_dst_port

static int port_base;

static struct sockaddr_in addr4(const char *ip, int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons((uint16_t)port) };

	inet_pton(AF_INET, ip, &sin.sin_addr);
	return sin;
}

/* The next event of @ch within 5 s; it must be @type. */
static struct rdma_cm_event *expect(struct rdma_event_channel *ch,
				    enum rdma_cm_event_type type)
{
	struct pollfd p = { .fd = ch->fd, .events = POLLIN };
	struct rdma_cm_event *ev = NULL;

	if (poll(&p, 1, 5000) != 1)
		fprintf(stderr, "no event %d in 5 s\n", type);
	assert_int_equal(poll(&p, 1, 0), 1);
	assert_int_equal(rdma_get_cm_event(ch, &ev), 0);
	if (ev->event != type)
		fprintf(stderr, "got %d status %d, want %d\n", ev->event,
			ev->status, type);
	assert_int_equal(ev->event, type);
	return ev;
}

struct pair {
	struct rdma_event_channel *sch, *cch;
	struct rdma_cm_id *lis, *cli;
	int port;
};

/* A listener on 127.0.0.1:port and a client whose route is resolved. */
static void pair_up(struct pair *p, bool qp)
{
	struct sockaddr_in sin;
	struct ibv_qp_init_attr qa = {
		.cap = { .max_send_wr = 4,
			 .max_recv_wr = 4,
			 .max_send_sge = 1,
			 .max_recv_sge = 1 },
		.qp_type = IBV_QPT_RC,
	};

	p->port = port_base++;
	p->sch = rdma_create_event_channel();
	p->cch = rdma_create_event_channel();
	assert_non_null(p->sch);
	assert_non_null(p->cch);
	assert_int_equal(rdma_create_id(p->sch, &p->lis, NULL, RDMA_PS_TCP), 0);
	sin = addr4("127.0.0.1", p->port);
	assert_int_equal(rdma_bind_addr(p->lis, (struct sockaddr *)&sin), 0);
	assert_int_equal(rdma_listen(p->lis, 4), 0);
	assert_int_equal(rdma_create_id(p->cch, &p->cli, NULL, RDMA_PS_TCP), 0);
	assert_int_equal(rdma_resolve_addr(p->cli, NULL,
					   (struct sockaddr *)&sin, 1000),
			 0);
	rdma_ack_cm_event(expect(p->cch, RDMA_CM_EVENT_ADDR_RESOLVED));
	assert_non_null(p->cli->verbs);
	assert_int_equal(rdma_resolve_route(p->cli, 1000), 0);
	rdma_ack_cm_event(expect(p->cch, RDMA_CM_EVENT_ROUTE_RESOLVED));
	if (qp)
		assert_int_equal(rdma_create_qp(p->cli, NULL, &qa), 0);
}

static void pair_down(struct pair *p)
{
	if (p->cli->qp)
		rdma_destroy_qp(p->cli);
	assert_int_equal(rdma_destroy_id(p->cli), 0);
	assert_int_equal(rdma_destroy_id(p->lis), 0);
	rdma_destroy_event_channel(p->cch);
	rdma_destroy_event_channel(p->sch);
}

static void test_reject_private_data(void **state)
{
	struct rdma_conn_param cp = { .private_data = "hello",
				      .private_data_len = 6,
				      .responder_resources = 1,
				      .initiator_depth = 2,
				      .retry_count = 7,
				      .rnr_retry_count = 7 };
	struct rdma_cm_event *ev;
	struct rdma_cm_id *child;
	struct pair p;

	(void)state;
	pair_up(&p, true);
	assert_int_equal(rdma_connect(p.cli, &cp), 0);
	ev = expect(p.sch, RDMA_CM_EVENT_CONNECT_REQUEST);
	assert_ptr_equal(ev->listen_id, p.lis);
	child = ev->id;
	/* IB CM sizes, zero-padded; the active side's depths swapped */
	assert_int_equal(ev->param.conn.private_data_len, 56);
	assert_string_equal(ev->param.conn.private_data, "hello");
	assert_int_equal(ev->param.conn.responder_resources, 2);
	assert_int_equal(ev->param.conn.initiator_depth, 1);
	assert_int_equal(ev->param.conn.qp_num, p.cli->qp->qp_num);
	assert_int_equal(ntohs(rdma_get_src_port(child)), p.port);
	assert_int_equal(ntohs(rdma_get_dst_port(child)),
			 ntohs(rdma_get_src_port(p.cli)));
	rdma_ack_cm_event(ev);
	assert_int_equal(rdma_reject(child, "no", 3), 0);
	ev = expect(p.cch, RDMA_CM_EVENT_REJECTED);
	assert_int_equal(ev->status, 28); /* consumer defined */
	assert_int_equal(ev->param.conn.private_data_len, 148);
	assert_string_equal(ev->param.conn.private_data, "no");
	rdma_ack_cm_event(ev);
	assert_int_equal(rdma_destroy_id(child), 0);
	pair_down(&p);
}

static void test_accept_disconnect(void **state)
{
	struct ibv_qp_init_attr qa = {
		.cap = { .max_send_wr = 4,
			 .max_recv_wr = 4,
			 .max_send_sge = 1,
			 .max_recv_sge = 1 },
		.qp_type = IBV_QPT_RC,
	};
	struct rdma_conn_param cp = { .private_data = "yes",
				      .private_data_len = 4 };
	struct ibv_qp_attr attr;
	struct ibv_qp_init_attr init;
	struct rdma_cm_event *ev;
	struct rdma_cm_id *child;
	struct pair p;

	(void)state;
	pair_up(&p, true);
	assert_int_equal(rdma_connect(p.cli, NULL), 0);
	ev = expect(p.sch, RDMA_CM_EVENT_CONNECT_REQUEST);
	child = ev->id;
	rdma_ack_cm_event(ev);
	assert_non_null(child->verbs);
	assert_int_equal(rdma_create_qp(child, NULL, &qa), 0);
	assert_int_equal(rdma_accept(child, &cp), 0);
	ev = expect(p.cch, RDMA_CM_EVENT_ESTABLISHED);
	assert_int_equal(ev->param.conn.private_data_len, 196);
	assert_string_equal(ev->param.conn.private_data, "yes");
	rdma_ack_cm_event(ev);
	rdma_ack_cm_event(expect(p.sch, RDMA_CM_EVENT_ESTABLISHED));
	/* the QPs point at each other, in RTS */
	assert_int_equal(ibv_query_qp(p.cli->qp, &attr,
				      IBV_QP_STATE | IBV_QP_DEST_QPN, &init),
			 0);
	assert_int_equal(attr.qp_state, IBV_QPS_RTS);
	assert_int_equal(attr.dest_qp_num, child->qp->qp_num);
	assert_int_equal(rdma_disconnect(p.cli), 0);
	rdma_ack_cm_event(expect(p.sch, RDMA_CM_EVENT_DISCONNECTED));
	rdma_ack_cm_event(expect(p.cch, RDMA_CM_EVENT_DISCONNECTED));
	assert_int_equal(rdma_disconnect(child), 0); /* after the peer's */
	rdma_destroy_qp(child);
	assert_int_equal(rdma_destroy_id(child), 0);
	pair_down(&p);
}

static void test_unanswered_request(void **state)
{
	struct rdma_cm_event *ev;
	struct pair p;

	(void)state;
	pair_up(&p, true);
	/* nobody answers: UNREACHABLE after IBSNAP_CM_TIMEOUT_MS (300) */
	assert_int_equal(rdma_connect(p.cli, NULL), 0);
	rdma_ack_cm_event(expect(p.sch, RDMA_CM_EVENT_CONNECT_REQUEST));
	ev = expect(p.cch, RDMA_CM_EVENT_UNREACHABLE);
	assert_int_equal(ev->status, -ETIMEDOUT);
	rdma_ack_cm_event(ev);
	pair_down(&p);
}

static void test_destroyed_request(void **state)
{
	struct rdma_cm_event *ev;
	struct rdma_cm_id *child;
	struct pair p;

	(void)state;
	pair_up(&p, true);
	assert_int_equal(rdma_connect(p.cli, NULL), 0);
	ev = expect(p.sch, RDMA_CM_EVENT_CONNECT_REQUEST);
	child = ev->id;
	rdma_ack_cm_event(ev);
	assert_int_equal(rdma_destroy_id(child), 0); /* the kernel rejects */
	ev = expect(p.cch, RDMA_CM_EVENT_REJECTED);
	rdma_ack_cm_event(ev);
	pair_down(&p);
}

/* "cm_api exit-peer PORT": connect to PORT, exit without a word. */
static int exiting_peer(int port)
{
	struct ibv_qp_init_attr qa = {
		.cap = { .max_send_wr = 2,
			 .max_recv_wr = 2,
			 .max_send_sge = 1,
			 .max_recv_sge = 1 },
		.qp_type = IBV_QPT_RC,
	};
	struct sockaddr_in sin = addr4("127.0.0.1", port);
	struct rdma_event_channel *ch = rdma_create_event_channel();
	struct rdma_cm_event *ev;
	struct rdma_cm_id *id;
	int i;

	for (i = 0; ch && i < 100; i++) {
		if (rdma_create_id(ch, &id, NULL, RDMA_PS_TCP) ||
		    rdma_resolve_addr(id, NULL, (struct sockaddr *)&sin,
				      1000) ||
		    rdma_get_cm_event(ch, &ev))
			return 2;
		rdma_ack_cm_event(ev);
		if (rdma_resolve_route(id, 1000) || rdma_get_cm_event(ch, &ev))
			return 3;
		rdma_ack_cm_event(ev);
		if (rdma_create_qp(id, NULL, &qa) || rdma_connect(id, NULL) ||
		    rdma_get_cm_event(ch, &ev))
			return 4;
		if (ev->event == RDMA_CM_EVENT_ESTABLISHED)
			return 0; /* and exit: no disconnect, no destroy */
		rdma_ack_cm_event(ev); /* nobody listens yet */
		rdma_destroy_qp(id);
		rdma_destroy_id(id);
		usleep(50000);
	}
	return 5;
}

/*
 * "cm_api exit-server PORT": accept one connection, then expect
 * DISCONNECTED when the peer ("cm_api exit-peer PORT", another process)
 * exits without disconnecting: its shim sends a DREQ at exit, as the
 * kernel's CM does when a process's rdma_cm fd closes.
 */
static void test_peer_exits(void **state)
{
	struct ibv_qp_init_attr qa = {
		.cap = { .max_send_wr = 2,
			 .max_recv_wr = 2,
			 .max_send_sge = 1,
			 .max_recv_sge = 1 },
		.qp_type = IBV_QPT_RC,
	};
	struct sockaddr_in sin = addr4("127.0.0.1", port_base);
	struct rdma_event_channel *ch;
	struct rdma_cm_event *ev;
	struct rdma_cm_id *lis, *child;

	(void)state;
	ch = rdma_create_event_channel();
	assert_non_null(ch);
	assert_int_equal(rdma_create_id(ch, &lis, NULL, RDMA_PS_TCP), 0);
	assert_int_equal(rdma_bind_addr(lis, (struct sockaddr *)&sin), 0);
	assert_int_equal(rdma_listen(lis, 1), 0);
	ev = expect(ch, RDMA_CM_EVENT_CONNECT_REQUEST);
	child = ev->id;
	rdma_ack_cm_event(ev);
	assert_int_equal(rdma_create_qp(child, NULL, &qa), 0);
	assert_int_equal(rdma_accept(child, NULL), 0);
	rdma_ack_cm_event(expect(ch, RDMA_CM_EVENT_ESTABLISHED));
	rdma_ack_cm_event(expect(ch, RDMA_CM_EVENT_DISCONNECTED));
	rdma_destroy_qp(child);
	assert_int_equal(rdma_destroy_id(child), 0);
	assert_int_equal(rdma_destroy_id(lis), 0);
	rdma_destroy_event_channel(ch);
}

static void test_errors_and_nonblocking(void **state)
{
	struct rdma_event_channel *ch = rdma_create_event_channel();
	struct rdma_cm_id *a, *b;
	struct rdma_cm_event *ev;
	struct sockaddr_in sin = addr4("127.0.0.1", port_base++);

	(void)state;
	assert_non_null(ch);
	assert_int_equal(rdma_create_id(ch, &a, NULL, (enum rdma_port_space)7),
			 -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(rdma_create_id(ch, &a, NULL, RDMA_PS_TCP), 0);
	assert_int_equal(rdma_create_id(ch, &b, NULL, RDMA_PS_TCP), 0);
	assert_int_equal(rdma_bind_addr(a, (struct sockaddr *)&sin), 0);
	assert_int_equal(rdma_bind_addr(b, (struct sockaddr *)&sin), -1);
	assert_int_equal(errno, EADDRINUSE);
	/* not resolved: no connect */
	assert_int_equal(rdma_connect(b, NULL), -1);
	assert_int_equal(errno, EINVAL);
	/* a non-blocking channel with nothing queued */
	assert_int_equal(
		fcntl(ch->fd, F_SETFL, fcntl(ch->fd, F_GETFL) | O_NONBLOCK), 0);
	assert_int_equal(rdma_get_cm_event(ch, &ev), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(rdma_destroy_id(b), 0);
	assert_int_equal(rdma_destroy_id(a), 0);
	rdma_destroy_event_channel(ch);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reject_private_data),
		cmocka_unit_test(test_accept_disconnect),
		cmocka_unit_test(test_unanswered_request),
		cmocka_unit_test(test_destroyed_request),
		cmocka_unit_test(test_errors_and_nonblocking),
	};
	const char *p = getenv("CM_API_PORT");

	const struct CMUnitTest exit_tests[] = {
		cmocka_unit_test(test_peer_exits),
	};

	if (!rdma_create_id) {
		fprintf(stderr, "cm_api: run under ibsnap run (the shim)\n");
		return 1;
	}
	port_base = p ? atoi(p) : 30000;
	if (argc == 3 && !strcmp(argv[1], "exit-peer"))
		return exiting_peer(atoi(argv[2]));
	if (argc == 3 && !strcmp(argv[1], "exit-server")) {
		port_base = atoi(argv[2]);
		return cmocka_run_group_tests(exit_tests, NULL, NULL);
	}
	setenv("IBSNAP_CM_TIMEOUT_MS", "300", 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
