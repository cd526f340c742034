/* SPDX-License-Identifier: MIT */
/* The shim's logs of posted receives and the send queue gate (wq.h). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../verbs-shim/wq.h"

static void post(struct isn_wq *wq, uint64_t wr_id, uint32_t len, bool ok)
{
	struct ibv_sge sge = { .addr = wr_id * 0x1000, .length = len };
	struct ibv_recv_wr wr = { .wr_id = wr_id,
				  .sg_list = &sge,
				  .num_sge = 1 };
	uint64_t seq = isn_wq_reserve(wq, 1);

	isn_wq_log_recv(isn_wq_ent(wq, seq), wq, &wr);
	isn_wq_stamp(isn_wq_ent(wq, seq), seq, ok);
}

static void test_wq_sizes(void **state)
{
	struct isn_wq wq;

	(void)state;
	assert_int_equal(isn_wq_init(&wq, 100, 3), 0);
	assert_int_equal(wq.mask + 1, 128);
	assert_true(wq.ent_size >=
		    sizeof(struct isn_wq_ent) + 3 * sizeof(struct ibv_sge));
	isn_wq_free(&wq);
	assert_int_equal(isn_wq_init(&wq, 0, 0), 0);
	assert_int_equal(wq.mask + 1, 2);
	isn_wq_free(&wq);
}

/* Consumption follows post order and skips what never reached the HCA. */
static void test_wq_consume_order(void **state)
{
	struct isn_wq wq;
	struct isn_wq_ent *e;

	(void)state;
	assert_int_equal(isn_wq_init(&wq, 8, 2), 0);
	post(&wq, 1, 10, true);
	post(&wq, 2, 20, false); /* refused or queued by a hold */
	post(&wq, 3, 30, true);
	e = isn_wq_consume(&wq);
	assert_non_null(e);
	assert_int_equal(e->wr_id, 1);
	assert_int_equal(e->sge[0].length, 10);
	e = isn_wq_consume(&wq);
	assert_non_null(e);
	assert_int_equal(e->wr_id, 3);
	assert_null(isn_wq_consume(&wq));
	assert_int_equal(atomic_load(&wq.tail), 3);
	isn_wq_free(&wq);
}

/* More SGEs than the log has room for: the first max_sge are kept. */
static void test_wq_sge_clamp(void **state)
{
	struct ibv_sge sge[4] = {
		{ 1, 1, 1 }, { 2, 2, 2 }, { 3, 3, 3 }, { 4, 4, 4 }
	};
	struct ibv_recv_wr wr = { .wr_id = 9, .sg_list = sge, .num_sge = 4 };
	struct isn_wq wq;
	struct isn_wq_ent *e;

	(void)state;
	assert_int_equal(isn_wq_init(&wq, 2, 2), 0);
	e = isn_wq_ent(&wq, isn_wq_reserve(&wq, 1));
	isn_wq_log_recv(e, &wq, &wr);
	assert_int_equal(e->num_sge, 2);
	assert_int_equal(e->sge[1].addr, 2);
	wr.num_sge = -1;
	isn_wq_log_recv(e, &wq, &wr);
	assert_int_equal(e->num_sge, 0);
	isn_wq_free(&wq);
}

/* The ring wraps: a lap later the same slot serves a new sequence. */
static void test_wq_wrap(void **state)
{
	struct isn_wq wq;
	int i;

	(void)state;
	assert_int_equal(isn_wq_init(&wq, 4, 1), 0);
	for (i = 0; i < 1000; i++) {
		post(&wq, i, 1, i % 3 != 0);
		if (i % 3 != 0)
			assert_int_equal(isn_wq_consume(&wq)->wr_id, i);
	}
	assert_null(isn_wq_consume(&wq));
	isn_wq_settle(&wq); /* everything stamped: returns */
	isn_wq_free(&wq);
}

struct settle_arg {
	struct isn_wq *wq;
	uint64_t seq;
	_Atomic int stamped;
};

static void *late_stamp(void *p)
{
	struct settle_arg *a = p;
	struct timespec ts = { 0, 20 * 1000 * 1000 };

	nanosleep(&ts, NULL);
	atomic_store(&a->stamped, 1);
	isn_wq_stamp(isn_wq_ent(a->wq, a->seq), a->seq, true);
	return NULL;
}

/* A checkpoint waits for a poster between its reservation and its stamp. */
static void test_wq_settle_waits(void **state)
{
	struct settle_arg a = { 0 };
	struct isn_wq wq;
	pthread_t t;

	(void)state;
	assert_int_equal(isn_wq_init(&wq, 4, 1), 0);
	post(&wq, 1, 1, true);
	a.wq = &wq;
	a.seq = isn_wq_reserve(&wq, 1);
	pthread_create(&t, NULL, late_stamp, &a);
	isn_wq_settle(&wq);
	assert_int_equal(atomic_load(&a.stamped), 1);
	pthread_join(t, NULL);
	isn_wq_free(&wq);
}

static void *late_leave(void *p)
{
	struct isn_sq_gate *g = p;
	struct timespec ts = { 0, 20 * 1000 * 1000 };

	nanosleep(&ts, NULL);
	atomic_fetch_add(&g->done, 1);
	return NULL;
}

static void test_sq_settle_waits(void **state)
{
	struct isn_sq_gate g = { 0 };
	pthread_t t;

	(void)state;
	atomic_fetch_add(&g.begun, 2);
	atomic_fetch_add(&g.done, 1);
	pthread_create(&t, NULL, late_leave, &g);
	isn_sq_settle(&g);
	assert_int_equal(atomic_load(&g.done), 2);
	pthread_join(t, NULL);
}

struct consumer_arg {
	struct isn_wq *wq;
	_Atomic uint64_t *sum;
	int n;
};

static void *consumer(void *p)
{
	struct consumer_arg *a = p;
	struct isn_wq_ent *e;
	int got = 0;

	while (got < a->n) {
		e = isn_wq_consume(a->wq);
		if (!e)
			continue;
		atomic_fetch_add(a->sum, e->wr_id);
		got++;
	}
	return NULL;
}

/* Two pollers consuming one log (an SRQ on two CQs) never share an entry. */
static void test_wq_two_consumers(void **state)
{
	_Atomic uint64_t sum = 0;
	struct consumer_arg a;
	struct isn_wq wq;
	pthread_t t[2];
	uint64_t i, want = 0;

	(void)state;
	assert_int_equal(isn_wq_init(&wq, 4096, 1), 0);
	for (i = 1; i <= 4000; i++) {
		post(&wq, i, 1, true);
		want += i;
	}
	a = (struct consumer_arg){ &wq, &sum, 2000 };
	pthread_create(&t[0], NULL, consumer, &a);
	pthread_create(&t[1], NULL, consumer, &a);
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	assert_int_equal(atomic_load(&sum), want);
	assert_null(isn_wq_consume(&wq));
	isn_wq_free(&wq);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wq_sizes),
		cmocka_unit_test(test_wq_consume_order),
		cmocka_unit_test(test_wq_sge_clamp),
		cmocka_unit_test(test_wq_wrap),
		cmocka_unit_test(test_wq_settle_waits),
		cmocka_unit_test(test_sq_settle_waits),
		cmocka_unit_test(test_wq_two_consumers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
