/* SPDX-License-Identifier: MIT */
/*
 * One rank of the downtime job (tests/lab/downtime.sh, issue 11): R MiB of
 * anonymous memory that it keeps dirtying at a known rate, and an RC QP to
 * the other rank over which it checks, step by step, what the other has
 * written.  A plain verbs program: it runs under ibsnap run and knows
 * nothing of checkpoints.
 *
 *   memjob RANK DIR MIB RATE DEVICE GID_INDEX
 *
 * Every page of the buffer holds words that are a function of (rank, page,
 * generation): the generation counts how often the page was rewritten.
 * Step k rewrites the next P pages, round robin (P = RATE MiB/s x 50 ms:
 * a step every 50 ms at most, slower when the CPU is), so after S steps
 * every page's generation follows from S alone.  Each step SENDs to the
 * peer (step, first page, checksum of the pages just written, computed by
 * reading them back) and waits for the peer's message of the same step,
 * whose checksum it recomputes from the formula: the ranks go in lockstep
 * and the RC traffic is checked end to end.  A restored image whose pages
 * are stale (a page missed by an incremental dump, say) fails the final
 * check, which recomputes every page from the step count alone.
 *
 * Files in DIR: the ranks exchange their QP addresses (addr.RANK); each
 * writes ready.RANK once connected and step.RANK (its step count) every
 * 20 steps; rank 0 ends the run once DIR/stop exists (the flag travels in
 * its next message) and both then check all their pages, write
 *   memjob: rank R: S steps, N pages of M MiB checked, K messages: ok
 * (or PAGES DIFFER) into DIR/result.RANK and exit 0 (1).  Nothing goes to
 * stdout: CRIU restores a file by its path and size, and the job may be
 * restored from one image twice (once per boot).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <infiniband/verbs.h>

#define PAGE 4096u
#define WORDS (PAGE / 8)
#define STEP_US 50000u
#define RQ 16

struct addr {
	uint32_t lid, qpn, psn;
	union ibv_gid gid;
};

struct msg {
	uint64_t step, first, npages, sum, stop;
};

static struct {
	int rank;
	const char *dir;
	uint64_t *buf;
	uint64_t npages, per_step;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	struct msg *msgs; /* [0] send, [1..RQ] receives */
	/* the peer's messages: this step's, and the next one's (the peer
	 * may be a step ahead: it can finish this step before our own send
	 * completes) */
	struct msg got[2];
	int ngot;
	uint64_t checked;
} j;

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* The words of @page of @rank at generation @gen: a seed and a stride. */
static uint64_t seed(int rank, uint64_t page, uint64_t gen)
{
	return mix(((uint64_t)rank << 56) ^ (page << 20) ^ gen);
}

/* The generation of @page after @steps steps (rewrites round robin). */
static uint64_t gen_of(uint64_t page, uint64_t steps)
{
	uint64_t total = steps * j.per_step;

	return total / j.npages + (page < total % j.npages ? 1 : 0);
}

/* The checksum of @n pages from @first at @steps, as the formula says. */
static uint64_t expect_sum(int rank, uint64_t first, uint64_t n, uint64_t steps)
{
	uint64_t sum = 0, i, w, p, s;

	for (i = 0; i < n; i++) {
		p = (first + i) % j.npages;
		s = seed(rank, p, gen_of(p, steps));
		for (w = 0; w < WORDS; w++)
			sum = sum * 31 + s + w * 0x2545f4914f6cdd1dull;
	}
	return sum;
}

static void write_page(uint64_t p, uint64_t gen)
{
	uint64_t *w = j.buf + p * WORDS, s = seed(j.rank, p, gen), i;

	for (i = 0; i < WORDS; i++)
		w[i] = s + i * 0x2545f4914f6cdd1dull;
}

static uint64_t read_sum(uint64_t first, uint64_t n)
{
	uint64_t sum = 0, i, w, *pg;

	for (i = 0; i < n; i++) {
		pg = j.buf + ((first + i) % j.npages) * WORDS;
		for (w = 0; w < WORDS; w++)
			sum = sum * 31 + pg[w];
	}
	return sum;
}

static int put_file(const char *name, const void *data, size_t len)
{
	char path[4096], tmp[4200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.%d", j.dir, name, j.rank);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f || fwrite(data, len, 1, f) != 1 || fclose(f))
		return -1;
	return rename(tmp, path);
}

static int get_peer(struct addr *a)
{
	char path[4096];
	FILE *f = NULL;
	int i;

	snprintf(path, sizeof(path), "%s/addr.%d", j.dir, 1 - j.rank);
	for (i = 0; i < 6000 && !f; i++) /* 10 min */
		if (!(f = fopen(path, "r")))
			usleep(100000);
	if (!f || fread(a, sizeof(*a), 1, f) != 1)
		return -1;
	fclose(f);
	return 0;
}

static int post_recv(int slot)
{
	struct ibv_sge sge = { (uintptr_t)&j.msgs[slot], sizeof(struct msg),
			       j.mr->lkey };
	struct ibv_recv_wr wr = { .wr_id = (uint64_t)slot,
				  .sg_list = &sge,
				  .num_sge = 1 },
			   *bad;

	return ibv_post_recv(j.qp, &wr, &bad);
}

static int connect_qp(int gidx)
{
	struct ibv_port_attr pa;
	struct addr me = { 0 }, peer;
	struct ibv_qp_attr a = { 0 };
	int i;

	if (ibv_query_port(j.ctx, 1, &pa) ||
	    (gidx >= 0 && ibv_query_gid(j.ctx, 1, gidx, &me.gid)))
		return -1;
	me.lid = pa.lid;
	me.qpn = j.qp->qp_num;
	me.psn = 100u + 1000u * (uint32_t)j.rank;
	if (put_file("addr", &me, sizeof(me)) || get_peer(&peer))
		return -1;
	a.qp_state = IBV_QPS_INIT;
	a.port_num = 1;
	a.qp_access_flags = IBV_ACCESS_LOCAL_WRITE;
	if (ibv_modify_qp(j.qp, &a,
			  IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
				  IBV_QP_ACCESS_FLAGS))
		return -1;
	for (i = 1; i <= RQ; i++)
		if (post_recv(i))
			return -1;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBV_MTU_1024;
	a.dest_qp_num = peer.qpn;
	a.rq_psn = peer.psn;
	a.max_dest_rd_atomic = 1;
	a.min_rnr_timer = 12;
	a.ah_attr.dlid = (uint16_t)peer.lid;
	a.ah_attr.port_num = 1;
	if (gidx >= 0) {
		a.ah_attr.is_global = 1;
		a.ah_attr.grh.dgid = peer.gid;
		a.ah_attr.grh.sgid_index = (uint8_t)gidx;
		a.ah_attr.grh.hop_limit = 1;
	}
	if (ibv_modify_qp(j.qp, &a,
			  IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
				  IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
				  IBV_QP_MAX_DEST_RD_ATOMIC |
				  IBV_QP_MIN_RNR_TIMER))
		return -1;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.timeout = 14;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.sq_psn = me.psn;
	a.max_rd_atomic = 1;
	return ibv_modify_qp(j.qp, &a,
			     IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
				     IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN |
				     IBV_QP_MAX_QP_RD_ATOMIC);
}

static int setup(const char *dev, int gidx)
{
	struct ibv_device **l = ibv_get_device_list(NULL);
	struct ibv_qp_init_attr qa = { .qp_type = IBV_QPT_RC,
				       .cap = { 4, RQ + 4, 1, 1, 0 } };
	int i;

	for (i = 0; l && l[i]; i++)
		if (!strcmp(ibv_get_device_name(l[i]), dev))
			j.ctx = ibv_open_device(l[i]);
	if (l)
		ibv_free_device_list(l);
	if (!j.ctx) {
		fprintf(stderr, "memjob: no device %s\n", dev);
		return -1;
	}
	j.pd = ibv_alloc_pd(j.ctx);
	j.cq = j.pd ? ibv_create_cq(j.ctx, 2 * RQ + 8, NULL, NULL, 0) : NULL;
	j.msgs = calloc(RQ + 1, sizeof(*j.msgs));
	j.mr = j.cq && j.msgs ?
		       ibv_reg_mr(j.pd, j.msgs, (RQ + 1) * sizeof(*j.msgs),
				  IBV_ACCESS_LOCAL_WRITE) :
		       NULL;
	qa.send_cq = qa.recv_cq = j.cq;
	j.qp = j.mr ? ibv_create_qp(j.pd, &qa) : NULL;
	if (!j.qp || connect_qp(gidx)) {
		fprintf(stderr, "memjob: rank %d: setting up %s failed: %s\n",
			j.rank, dev, strerror(errno));
		return -1;
	}
	return 0;
}

/* Send this step's message, wait for its completion and the peer's. */
static int exchange(const struct msg *m)
{
	struct ibv_sge sge = { (uintptr_t)&j.msgs[0], sizeof(struct msg),
			       j.mr->lkey };
	struct ibv_send_wr wr = { .sg_list = &sge,
				  .num_sge = 1,
				  .opcode = IBV_WR_SEND,
				  .send_flags = IBV_SEND_SIGNALED },
			   *bad;
	struct ibv_wc wc;
	bool sent = false;
	int n;

	j.msgs[0] = *m;
	if (ibv_post_send(j.qp, &wr, &bad))
		return -1;
	while (!sent || !j.ngot) {
		n = ibv_poll_cq(j.cq, 1, &wc);
		if (n < 0)
			return -1;
		if (!n) { /* the peer sleeps between steps: no busy wait */
			usleep(200);
			continue;
		}
		if (wc.status != IBV_WC_SUCCESS) {
			fprintf(stderr, "memjob: rank %d: %s completion: %s\n",
				j.rank,
				wc.opcode & IBV_WC_RECV ? "recv" : "send",
				ibv_wc_status_str(wc.status));
			return -1;
		}
		if (!(wc.opcode & IBV_WC_RECV)) {
			sent = true;
			continue;
		}
		if (j.ngot == 2) {
			fprintf(stderr,
				"memjob: rank %d: the peer is two steps "
				"ahead\n",
				j.rank);
			return -1;
		}
		j.got[j.ngot++] = j.msgs[wc.wr_id];
		if (post_recv((int)wc.wr_id))
			return -1;
	}
	return 0;
}

/* The peer's message of this step, taken off the queue. */
static struct msg take_got(void)
{
	struct msg m = j.got[0];

	j.got[0] = j.got[1];
	j.ngot--;
	return m;
}

/* The peer's message of @step: its checksum recomputed from the formula. */
static int check_peer(const struct msg *got, uint64_t step)
{
	if (got->step != step) {
		fprintf(stderr,
			"memjob: rank %d: step %" PRIu64 ": the peer "
			"is at step %" PRIu64 "\n",
			j.rank, step, got->step);
		return -1;
	}
	if (got->sum !=
	    expect_sum(1 - j.rank, got->first, got->npages, step + 1)) {
		fprintf(stderr,
			"memjob: rank %d: step %" PRIu64 ": the peer's "
			"checksum is wrong\n",
			j.rank, step);
		return -1;
	}
	j.checked++;
	return 0;
}

static bool stop_asked(void)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/stop", j.dir);
	return !access(path, F_OK);
}

/* Every page against the formula at @steps; the number that differ. */
static uint64_t verify_all(uint64_t steps)
{
	uint64_t p, bad = 0;

	for (p = 0; p < j.npages; p++)
		if (read_sum(p, 1) != expect_sum(j.rank, p, 1, steps))
			bad++;
	return bad;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int main(int argc, char **argv)
{
	uint64_t mib, rate, step, p, t, bad, first;
	struct msg m, peer;
	bool stop = false;
	char line[64], res[256];

	if (argc != 7) {
		fprintf(stderr, "usage: memjob RANK DIR MIB RATE DEVICE "
				"GID_INDEX\n");
		return 2;
	}
	j.rank = atoi(argv[1]);
	j.dir = argv[2];
	mib = strtoull(argv[3], NULL, 10);
	rate = strtoull(argv[4], NULL, 10);
	j.npages = mib * (1u << 20) / PAGE;
	j.per_step = rate * (1u << 20) / PAGE * STEP_US / 1000000u;
	if (!j.npages || !j.per_step || j.per_step > j.npages) {
		fprintf(stderr, "memjob: bad size or rate\n");
		return 2;
	}
	j.buf = mmap(NULL, j.npages * PAGE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (j.buf == MAP_FAILED)
		return 1;
	for (p = 0; p < j.npages; p++)
		write_page(p, 0);
	if (setup(argv[5], atoi(argv[6])))
		return 1;
	put_file("ready", "1\n", 2);
	for (step = 0; !stop; step++) {
		t = now_us();
		first = step * j.per_step % j.npages;
		for (p = 0; p < j.per_step; p++)
			write_page((first + p) % j.npages,
				   gen_of((first + p) % j.npages, step + 1));
		m = (struct msg){ .step = step,
				  .first = first,
				  .npages = j.per_step,
				  .sum = read_sum(first, j.per_step),
				  .stop = j.rank == 0 && stop_asked() };
		if (exchange(&m))
			return 1;
		peer = take_got();
		if (check_peer(&peer, step))
			return 1;
		stop = m.stop || peer.stop;
		if (step % 20 == 0) {
			snprintf(line, sizeof(line), "%" PRIu64 "\n", step);
			put_file("step", line, strlen(line));
		}
		t = now_us() - t;
		if (!stop && t < STEP_US)
			usleep((useconds_t)(STEP_US - t));
	}
	bad = verify_all(step);
	snprintf(res, sizeof(res),
		 "memjob: rank %d: %" PRIu64 " steps, %" PRIu64
		 " pages of %" PRIu64 " MiB checked, %" PRIu64 " messages: "
		 "%s\n",
		 j.rank, step, j.npages, mib, j.checked,
		 bad ? "PAGES DIFFER" : "ok");
	/* not on stdout: a restore wants its log file as it was dumped */
	put_file("result", res, strlen(res));
	if (bad)
		fprintf(stderr, "memjob: rank %d: %" PRIu64 " pages differ\n",
			j.rank, bad);
	return bad ? 1 : 0;
}
