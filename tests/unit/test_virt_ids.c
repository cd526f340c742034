/* SPDX-License-Identifier: MIT */
/* virt-ids: the ID maps and the translations of test mode and of peers. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../virt-ids/vid.h"

static void test_map_basic(void **state)
{
	struct isn_vid_map m;
	uint32_t v = 0;

	(void)state;
	isn_vid_map_init(&m);
	assert_false(isn_vid_map_get(&m, 7, &v));
	assert_int_equal(isn_vid_map_set(&m, 7, 70), 0);
	assert_true(isn_vid_map_get(&m, 7, &v));
	assert_int_equal(v, 70);
	assert_int_equal(isn_vid_map_set(&m, 7, 71), 0); /* replace */
	assert_true(isn_vid_map_get(&m, 7, &v));
	assert_int_equal(v, 71);
	assert_int_equal(isn_vid_map_count(&m), 1);
	/* IDs 0 and 1 are keys like any other */
	assert_int_equal(isn_vid_map_set(&m, 0, 5), 0);
	assert_int_equal(isn_vid_map_set(&m, 1, 0), 0);
	assert_true(isn_vid_map_get(&m, 0, &v));
	assert_int_equal(v, 5);
	assert_true(isn_vid_map_get(&m, 1, &v));
	assert_int_equal(v, 0);
	isn_vid_map_del(&m, 7);
	assert_false(isn_vid_map_get(&m, 7, &v));
	assert_int_equal(isn_vid_map_count(&m), 2);
	isn_vid_map_destroy(&m);
}

static void test_map_identity_is_absence(void **state)
{
	struct isn_vid_map m;
	uint32_t v;

	(void)state;
	isn_vid_map_init(&m);
	assert_int_equal(isn_vid_map_set(&m, 9, 90), 0);
	assert_int_equal(isn_vid_map_set(&m, 9, 9), 0); /* back to identity */
	assert_false(isn_vid_map_get(&m, 9, &v));
	assert_int_equal(isn_vid_map_count(&m), 0);
	isn_vid_map_destroy(&m);
}

static void test_map_grow_and_churn(void **state)
{
	struct isn_vid_map m;
	uint32_t i, v;

	(void)state;
	isn_vid_map_init(&m);
	for (i = 0; i < 100000; i++)
		assert_int_equal(isn_vid_map_set(&m, i * 7919, i + 1), 0);
	for (i = 0; i < 100000; i++) {
		assert_true(isn_vid_map_get(&m, i * 7919, &v));
		assert_int_equal(v, i + 1);
	}
	for (i = 0; i < 100000; i += 2)
		isn_vid_map_del(&m, i * 7919);
	/* deleted words must not end probes early */
	for (i = 1; i < 100000; i += 2) {
		assert_true(isn_vid_map_get(&m, i * 7919, &v));
		assert_int_equal(v, i + 1);
	}
	/* insert/delete cycles reuse space */
	for (i = 0; i < 200000; i++) {
		assert_int_equal(isn_vid_map_set(&m, 0xf0000000u + i, 3), 0);
		isn_vid_map_del(&m, 0xf0000000u + i);
	}
	assert_int_equal(isn_vid_map_count(&m), 50000);
	isn_vid_map_destroy(&m);
}

struct reader_arg {
	struct isn_vid_map *m;
	atomic_bool stop;
	unsigned long bad;
};

/* Keys below 1000 are set before the reader starts and never change. */
static void *reader(void *p)
{
	struct reader_arg *a = p;
	uint32_t k = 0, v;

	while (!atomic_load(&a->stop)) {
		if (!isn_vid_map_get(a->m, k, &v) || v != k + 500000)
			a->bad++;
		k = (k + 1) % 1000;
	}
	return NULL;
}

static void test_map_lockfree_readers(void **state)
{
	struct isn_vid_map m;
	struct reader_arg a = { .m = &m };
	pthread_t t;
	uint32_t i;

	(void)state;
	isn_vid_map_init(&m);
	for (i = 0; i < 1000; i++)
		isn_vid_map_set(&m, i, i + 500000);
	atomic_init(&a.stop, false);
	assert_int_equal(pthread_create(&t, NULL, reader, &a), 0);
	for (i = 1000; i < 300000; i++) /* grows many times under the reader */
		isn_vid_map_set(&m, i, 1);
	atomic_store(&a.stop, true);
	pthread_join(t, NULL);
	assert_int_equal(a.bad, 0);
	isn_vid_map_destroy(&m);
}

static union ibv_gid gid_of(uint8_t last)
{
	union ibv_gid g = { .raw = { 0xfe, 0x80 } };

	g.raw[15] = last;
	return g;
}

static void test_gidmap(void **state)
{
	struct isn_vid_gidmap m;
	struct isn_vid_gidtab *t;
	union ibv_gid k, v, out;
	int i;

	(void)state;
	isn_vid_gidmap_init(&m);
	k = gid_of(1);
	assert_false(isn_vid_gidmap_get(&m, &k, &out));
	for (i = 1; i < 100; i++) {
		k = gid_of(i);
		v = gid_of(i + 100);
		assert_int_equal(isn_vid_gidmap_set(&m, &k, &v), 0);
	}
	for (i = 1; i < 100; i++) {
		k = gid_of(i);
		assert_true(isn_vid_gidmap_get(&m, &k, &out));
		assert_int_equal(out.raw[15], i + 100);
	}
	k = gid_of(5);
	/* setting what is there already, or removing what is not, publishes
	 * no new copy (copies are kept until the map goes) */
	t = atomic_load(&m.tab);
	assert_true(isn_vid_gidmap_get(&m, &k, &out));
	assert_int_equal(isn_vid_gidmap_set(&m, &k, &out), 0);
	v = gid_of(200);
	assert_int_equal(isn_vid_gidmap_set(&m, &v, &v), 0);
	assert_ptr_equal(atomic_load(&m.tab), t);
	assert_int_equal(isn_vid_gidmap_set(&m, &k, &k), 0); /* remove */
	assert_false(isn_vid_gidmap_get(&m, &k, &out));
	k = gid_of(6);
	assert_true(isn_vid_gidmap_get(&m, &k, &out));
	isn_vid_gidmap_destroy(&m);
}

static int setup_normal(void **state)
{
	(void)state;
	isn_vid_init(false);
	return 0;
}

static int setup_test_mode(void **state)
{
	(void)state;
	isn_vid_init(true);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	isn_vid_fini();
	return 0;
}

/* First incarnation: nothing translated, nothing stored. */
static void test_identity_until_restart(void **state)
{
	union ibv_gid g = gid_of(9), out;

	(void)state;
	assert_false(isn_vid_active());
	assert_int_equal(isn_vid_local_new(ISN_VID_QPN, 0x11), 0x11);
	assert_int_equal(isn_vid_local_new(ISN_VID_LKEY, 0x1234), 0x1234);
	assert_int_equal(isn_vid_local_to_real(ISN_VID_LKEY, 0x1234), 0x1234);
	assert_int_equal(isn_vid_remote_to_real(NULL, ISN_VID_RKEY, 77), 77);
	assert_int_equal(isn_vid_remote_to_virt(NULL, ISN_VID_QPN, 0x22), 0x22);
	isn_vid_gid_local_new(&g, &out);
	assert_memory_equal(&out, &g, sizeof(g));
	isn_vid_gid_remote_to_real(&g, &out);
	assert_memory_equal(&out, &g, sizeof(g));
}

static void test_mode_local(void **state)
{
	union ibv_gid g = gid_of(0x10), v, r;
	uint32_t q;

	(void)state;
	assert_true(isn_vid_active());
	q = isn_vid_local_new(ISN_VID_QPN, 0x11);
	assert_int_equal(q, 0x1011);
	assert_int_equal(isn_vid_local_to_real(ISN_VID_QPN, q), 0x11);
	assert_int_equal(isn_vid_local_to_virt(ISN_VID_QPN, 0x11), q);
	assert_int_equal(isn_vid_local_new(ISN_VID_LKEY, 0x100), 0x5a5b00);
	assert_int_equal(isn_vid_local_to_real(ISN_VID_LKEY, 0x5a5b00), 0x100);
	assert_int_equal(isn_vid_local_new(ISN_VID_RKEY, 0x100), 0x5a5b00);
	assert_int_equal(isn_vid_local_new(ISN_VID_LID, 3), 103);
	assert_int_equal(isn_vid_local_new(ISN_VID_SRQN, 5), 0x1005);
	/* IDs with a fixed meaning stay */
	assert_int_equal(isn_vid_local_new(ISN_VID_QPN, 1), 1);
	assert_int_equal(isn_vid_local_new(ISN_VID_LID, 0), 0);
	isn_vid_local_forget(ISN_VID_QPN, q);
	assert_int_equal(isn_vid_local_to_real(ISN_VID_QPN, q), q);
	isn_vid_gid_local_new(&g, &v);
	assert_int_equal(v.raw[15], 0x10 ^ 0x55);
	isn_vid_gid_local_to_real(&v, &r);
	assert_memory_equal(&r, &g, sizeof(g));
}

/* An unmapped remote ID comes from a peer in test mode too. */
static void test_mode_remote_default(void **state)
{
	union ibv_gid g = gid_of(0x10), v, back;

	(void)state;
	assert_int_equal(isn_vid_remote_to_real(NULL, ISN_VID_QPN, 0x1011),
			 0x11);
	assert_int_equal(isn_vid_remote_to_virt(NULL, ISN_VID_QPN, 0x11),
			 0x1011);
	assert_int_equal(isn_vid_remote_to_real(NULL, ISN_VID_QPN, 0xffffff),
			 0xffffff); /* multicast */
	assert_int_equal(isn_vid_remote_to_real(NULL, ISN_VID_RKEY, 0x5a5b00),
			 0x100);
	assert_int_equal(isn_vid_remote_to_real(NULL, ISN_VID_LID, 103), 3);
	assert_int_equal(isn_vid_remote_to_virt(NULL, ISN_VID_LID, 3), 103);
	isn_vid_gid_remote_to_virt(&g, &v);
	assert_int_equal(v.raw[15], 0x45);
	isn_vid_gid_remote_to_real(&v, &back);
	assert_memory_equal(&back, &g, sizeof(g));
}

/* After a restart: per-peer maps; unmapped IDs are the peer's own. */
static void test_peer_tables(void **state)
{
	union ibv_gid pg = gid_of(0x20), pg2 = gid_of(0x21), vg, rg, rg2, out;
	struct isn_vid_peer *p, *p2;
	uint32_t i, k;

	(void)state;
	assert_false(isn_vid_active());
	assert_null(isn_vid_peer_find(&pg, 0));
	p = isn_vid_peer_add(&pg, 7);
	p2 = isn_vid_peer_add(&pg2, 8);
	assert_non_null(p);
	assert_ptr_equal(isn_vid_peer_find(&pg, 0), p);
	assert_ptr_equal(isn_vid_peer_find(NULL, 7), p);
	assert_ptr_equal(isn_vid_peer_add(&pg, 7), p);
	assert_int_equal(isn_vid_peer_map(p, ISN_VID_QPN, 0x11, 0x35), 0);
	assert_int_equal(isn_vid_peer_map(p, ISN_VID_RKEY, 0x200, 0x999), 0);
	assert_int_equal(isn_vid_peer_map(p2, ISN_VID_QPN, 0x11, 0x47), 0);
	assert_true(isn_vid_active());
	/* the same virtual QPN on two peers maps to two real ones */
	assert_int_equal(isn_vid_remote_to_real(p, ISN_VID_QPN, 0x11), 0x35);
	assert_int_equal(isn_vid_remote_to_real(p2, ISN_VID_QPN, 0x11), 0x47);
	assert_int_equal(isn_vid_remote_to_virt(p2, ISN_VID_QPN, 0x47), 0x11);
	assert_int_equal(isn_vid_remote_to_real(p, ISN_VID_RKEY, 0x200), 0x999);
	assert_int_equal(isn_vid_remote_to_real(p, ISN_VID_QPN, 0x12), 0x12);
	assert_int_equal(isn_vid_remote_to_real(NULL, ISN_VID_QPN, 0x11), 0x11);
	assert_int_equal(isn_vid_remote_lid_map(7, 40), 0);
	assert_int_equal(isn_vid_remote_to_real(p, ISN_VID_LID, 7), 40);
	assert_int_equal(isn_vid_remote_to_virt(NULL, ISN_VID_LID, 40), 7);
	vg = gid_of(0x20);
	rg = gid_of(0x99);
	assert_int_equal(isn_vid_remote_gid_map(&vg, &rg), 0);
	isn_vid_gid_remote_to_real(&vg, &out);
	assert_memory_equal(&out, &rg, sizeof(rg));
	isn_vid_gid_remote_to_virt(&rg, &out);
	assert_memory_equal(&out, &vg, sizeof(vg));
	/* the peer in a new incarnation: its old real names map back no more
	 * (the reverse maps would grow by one entry per incarnation) */
	assert_int_equal(isn_vid_remote_lid_map(7, 41), 0);
	assert_int_equal(isn_vid_remote_to_virt(NULL, ISN_VID_LID, 41), 7);
	assert_int_equal(isn_vid_remote_to_virt(NULL, ISN_VID_LID, 40), 40);
	rg2 = gid_of(0x98);
	assert_int_equal(isn_vid_remote_gid_map(&vg, &rg2), 0);
	isn_vid_gid_remote_to_virt(&rg2, &out);
	assert_memory_equal(&out, &vg, sizeof(vg));
	isn_vid_gid_remote_to_virt(&rg, &out);
	assert_memory_equal(&out, &rg, sizeof(rg));
	/* ... but an old real name another peer took since stays its */
	assert_int_equal(isn_vid_remote_lid_map(8, 41), 0);
	assert_int_equal(isn_vid_remote_lid_map(7, 42), 0);
	assert_int_equal(isn_vid_remote_to_virt(NULL, ISN_VID_LID, 41), 8);
	/* the same for its QPNs, SRQNs and rkeys: 0x35 is the old real QPN */
	assert_int_equal(isn_vid_peer_map(p, ISN_VID_QPN, 0x11, 0x36), 0);
	assert_int_equal(isn_vid_remote_to_virt(p, ISN_VID_QPN, 0x36), 0x11);
	assert_int_equal(isn_vid_remote_to_virt(p, ISN_VID_QPN, 0x35), 0x35);
	assert_int_equal(isn_vid_map_count(&p->id[ISN_VID_QPN].to_virt), 1);
	/* ... an old real QPN another of its QPs took since stays that one's */
	assert_int_equal(isn_vid_peer_map(p, ISN_VID_QPN, 0x12, 0x36), 0);
	assert_int_equal(isn_vid_peer_map(p, ISN_VID_QPN, 0x11, 0x37), 0);
	assert_int_equal(isn_vid_remote_to_virt(p, ISN_VID_QPN, 0x36), 0x12);
	assert_int_equal(isn_vid_remote_to_virt(p, ISN_VID_QPN, 0x37), 0x11);
	/* 200 incarnations of 3 QPs: the reverse map keeps 3 entries (it
	 * kept 600 before, and the live copy grew with them) */
	for (i = 0; i < 200; i++)
		for (k = 0; k < 3; k++)
			assert_int_equal(isn_vid_peer_map(p, ISN_VID_QPN,
							  0x11 + k,
							  0x1000 + 3 * i + k),
					 0);
	assert_int_equal(isn_vid_map_count(&p->id[ISN_VID_QPN].to_virt), 3);
	assert_int_equal(isn_vid_map_count(&p->id[ISN_VID_QPN].to_real), 3);
	assert_int_equal(isn_vid_remote_to_virt(p, ISN_VID_QPN, 0x1000 + 598),
			 0x12);
	assert_int_equal(isn_vid_remote_to_real(p, ISN_VID_QPN, 0x13),
			 0x1000 + 599);
}

/*
 * Every change that replaces a map's copy retires the old one onto one list
 * (readers may still walk it); a grace period takes the list and frees it
 * (the checkpoint's resume: drain/driver.c).  The current copies stay.
 */
static void test_retired_copies_reclaimed(void **state)
{
	union ibv_gid vg = gid_of(0x20), rg, out;
	struct isn_vid_old_stats st0, st;
	struct isn_vid_peer *p;
	uint32_t i, round;

	(void)state;
	p = isn_vid_peer_add(&vg, 7);
	assert_non_null(p);
	isn_vid_old_free(isn_vid_old_take());
	isn_vid_old_stats(&st0);
	assert_int_equal(st0.kept, 0);
	for (round = 0; round < 50; round++) {
		/* a new incarnation of the peer and of this process */
		for (i = 0; i < 20; i++) {
			rg = gid_of(0x40 + (round * 20 + i) % 150);
			assert_int_equal(isn_vid_remote_gid_map(&vg, &rg), 0);
			assert_int_equal(isn_vid_remote_lid_map(
						 7, (uint16_t)(40 + round + i)),
					 0);
			assert_int_equal(isn_vid_peer_map(p, ISN_VID_QPN,
							  0x100 + i,
							  0x200 + round + i),
					 0);
			assert_int_equal(isn_vid_local_set(ISN_VID_QPN,
							   0x300 + i,
							   0x400 + round + i),
					 0);
		}
		isn_vid_old_stats(&st);
		assert_true(st.kept > 0); /* GID copies at least */
		assert_true(st.kept_bytes > 0);
		/* the grace period */
		isn_vid_old_free(isn_vid_old_take());
		isn_vid_old_stats(&st);
		assert_int_equal(st.kept, 0);
		assert_int_equal(st.kept_bytes, 0);
		/* the live copies answer as before */
		isn_vid_gid_remote_to_real(&vg, &out);
		assert_memory_equal(&out, &rg, sizeof(rg));
		assert_int_equal(isn_vid_remote_to_real(p, ISN_VID_QPN, 0x113),
				 0x200 + round + 19);
		assert_int_equal(isn_vid_local_to_real(ISN_VID_QPN, 0x313),
				 0x400 + round + 19);
		assert_int_equal(isn_vid_remote_to_real(NULL, ISN_VID_LID, 7),
				 40 + round + 19);
	}
	isn_vid_old_stats(&st);
	assert_true(st.freed > st0.freed + 50);
}

/*
 * A rebuild may give B the real ID A had and A a new one, B first: A's
 * new mapping must not take away B's reverse entry (a completion on that
 * real QPN would name no QP, or the wrong one).  Nor may forgetting A.
 */
static void test_local_real_id_reused(void **state)
{
	(void)state;
	assert_int_equal(isn_vid_local_set(ISN_VID_QPN, 0xa, 0x100), 0);
	assert_int_equal(isn_vid_local_set(ISN_VID_QPN, 0xb, 0x200), 0);
	/* the next incarnation: B takes 0x100 first, then A gets 0x300 */
	assert_int_equal(isn_vid_local_set(ISN_VID_QPN, 0xb, 0x100), 0);
	assert_int_equal(isn_vid_local_set(ISN_VID_QPN, 0xa, 0x300), 0);
	assert_int_equal(isn_vid_local_to_virt(ISN_VID_QPN, 0x100), 0xb);
	assert_int_equal(isn_vid_local_to_virt(ISN_VID_QPN, 0x300), 0xa);
	assert_int_equal(isn_vid_local_to_real(ISN_VID_QPN, 0xb), 0x100);
	/* B's old real ID is nobody's now */
	assert_int_equal(isn_vid_local_to_virt(ISN_VID_QPN, 0x200), 0x200);
	/* A had 0x100 once; forgetting A keeps B's */
	assert_int_equal(isn_vid_local_set(ISN_VID_QPN, 0xa, 0x100 + 0), 0);
	assert_int_equal(isn_vid_local_set(ISN_VID_QPN, 0xb, 0x400), 0);
	isn_vid_local_forget(ISN_VID_QPN, 0xb);
	assert_int_equal(isn_vid_local_to_virt(ISN_VID_QPN, 0x100), 0xa);
	assert_int_equal(isn_vid_local_to_real(ISN_VID_QPN, 0xa), 0x100);
}

static int setup_node_mode(void **state)
{
	(void)state;
	isn_vid_init(ISN_VID_TEST_NODE);
	return 0;
}

/* Node test mode: each node offsets by its own k; peers decode theirs. */
static void test_node_mode(void **state)
{
	union ibv_gid ga = gid_of(0x12), gb = gid_of(0x13), va, vb;
	struct isn_vid_peer *a, *b;

	(void)state;
	isn_vid_test_set_local(0x21); /* k = 2 */
	assert_int_equal(isn_vid_local_new(ISN_VID_QPN, 0x11), 0x2011);
	assert_int_equal(isn_vid_local_new(ISN_VID_RKEY, 0x100),
			 0x100 ^ (0x5a5a00 * 2));
	/* peers named by their virtual GIDs: k from the real last byte */
	isn_vid_gid_remote_to_virt(&ga, &va);
	isn_vid_gid_remote_to_virt(&gb, &vb);
	a = isn_vid_peer_get(&va, 0);
	b = isn_vid_peer_get(&vb, 0);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	assert_ptr_equal(isn_vid_peer_of_real(&ga, 0), a);
	assert_int_equal(a->test_k, 3);
	assert_int_equal(b->test_k, 4);
	/* the same virtual QPN is a different real one on each peer */
	assert_int_equal(isn_vid_remote_to_real(a, ISN_VID_QPN, 0x3011), 0x11);
	assert_int_equal(isn_vid_remote_to_real(b, ISN_VID_QPN, 0x4011), 0x11);
	assert_int_equal(isn_vid_remote_to_virt(a, ISN_VID_QPN, 0x11), 0x3011);
	assert_int_equal(isn_vid_remote_to_virt(b, ISN_VID_QPN, 0x11), 0x4011);
	/* without the peer (fabric-wide) neither would come out right */
	assert_int_equal(isn_vid_remote_to_virt(NULL, ISN_VID_QPN, 0x11),
			 0x1011);
	/* by LID (IB): real LID 5 is virtual 105, k = 6 */
	a = isn_vid_peer_get(NULL, 105);
	assert_non_null(a);
	assert_int_equal(a->test_k, 6);
	assert_ptr_equal(isn_vid_peer_of_real(NULL, 5), a);
	/* outside test mode nobody is created on demand */
}

static void test_peer_get_normal(void **state)
{
	union ibv_gid g = gid_of(0x30);

	(void)state;
	assert_null(isn_vid_peer_get(&g, 0));
	assert_null(isn_vid_peer_of_real(&g, 7));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_basic),
		cmocka_unit_test(test_map_identity_is_absence),
		cmocka_unit_test(test_map_grow_and_churn),
		cmocka_unit_test(test_map_lockfree_readers),
		cmocka_unit_test(test_gidmap),
		cmocka_unit_test_setup_teardown(test_identity_until_restart,
						setup_normal, teardown),
		cmocka_unit_test_setup_teardown(test_mode_local,
						setup_test_mode, teardown),
		cmocka_unit_test_setup_teardown(test_mode_remote_default,
						setup_test_mode, teardown),
		cmocka_unit_test_setup_teardown(test_peer_tables, setup_normal,
						teardown),
		cmocka_unit_test_setup_teardown(test_retired_copies_reclaimed,
						setup_normal, teardown),
		cmocka_unit_test_setup_teardown(test_local_real_id_reused,
						setup_normal, teardown),
		cmocka_unit_test_setup_teardown(test_node_mode, setup_node_mode,
						teardown),
		cmocka_unit_test_setup_teardown(test_peer_get_normal,
						setup_normal, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
