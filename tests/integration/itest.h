/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the multi-process integration tests of the fake HCA.
 *
 * A test is one program.  Its main() first hands control to it_child_main(),
 * which runs a child role when the program was started by it_spawn() (fork,
 * then exec of /proc/self/exe: children never inherit the parent's HCA state).
 * Parent and child talk over a socketpair (fd IT_CHILD_FD in the child): they
 * exchange struct it_ep (lid, gid, qpn, psn, rkey, addr) and small sync
 * messages.  Every wait is bounded (IT_TIMEOUT_S without progress, or
 * ITEST_TIMEOUT in the environment) and fails the test instead of hanging.
 */
#ifndef IBSNAP_ITEST_H
#define IBSNAP_ITEST_H

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <ibsnap/hca_ops.h>

#define IT_TIMEOUT_S 60
#define IT_CHILD_FD 3
#define IT_PORT 1
#define IT_QKEY 0x11111111u
#define IT_ACCESS_ALL                                       \
	(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
	 IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC)

/* ---- diagnostics ---- */

static inline const char **it_role_p(void)
{
	static const char *role = "main";

	return &role;
}

__attribute__((noreturn, format(printf, 4, 5))) static inline void
it_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: [%s pid %d] FAILED: %s", file, line,
		*it_role_p(), (int)getpid(), cond);
	/* fmt is "-" followed by the caller's format (see IT_ASSERT) */
	if (fmt[1]) {
		fputs(": ", stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt + 1, ap);
		va_end(ap);
	}
	fputc('\n', stderr);
	fflush(stderr);
	exit(1);
}

/* IT_ASSERT(cond) or IT_ASSERT(cond, "fmt", args...) */
#define IT_ASSERT(cond, ...)                                                 \
	do {                                                                 \
		if (!(cond))                                                 \
			it_fail(__FILE__, __LINE__, #cond, "-" __VA_ARGS__); \
	} while (0)

/* A completion must be a success. */
#define IT_WC_OK(wc)                                                      \
	IT_ASSERT((wc)->status == IBV_WC_SUCCESS,                         \
		  "wr_id %" PRIu64 " status %s (%d) opcode %d",           \
		  (uint64_t)(wc)->wr_id, ibv_wc_status_str((wc)->status), \
		  (int)(wc)->status, (int)(wc)->opcode)

/* A completion must have status @st. */
#define IT_WC_IS(wc, st)                                                  \
	IT_ASSERT((wc)->status == (st),                                   \
		  "wr_id %" PRIu64 " status %s, want %s",                 \
		  (uint64_t)(wc)->wr_id, ibv_wc_status_str((wc)->status), \
		  ibv_wc_status_str(st))

/* ---- time, data ---- */

static inline uint64_t it_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t it_timeout_ns(void)
{
	const char *s = getenv("ITEST_TIMEOUT");
	long v = s ? strtol(s, NULL, 10) : 0;

	return (uint64_t)(v > 0 ? v : IT_TIMEOUT_S) * 1000000000ull;
}

static inline void it_sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Scale factor for data volumes (ITEST_SCALE, default @def). */
static inline double it_scale(double def)
{
	const char *s = getenv("ITEST_SCALE");
	double v = s ? strtod(s, NULL) : 0;

	return v > 0 ? v : def;
}

static inline uint64_t it_rand_next(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

/* Fill @len bytes with a pattern that depends only on @seed. */
static inline void it_fill(void *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
	uint8_t *p = buf;
	uint64_t v;

	for (; len >= 8; p += 8, len -= 8) {
		v = it_rand_next(&s);
		memcpy(p, &v, 8);
	}
	v = it_rand_next(&s);
	memcpy(p, &v, len);
}

/* FNV-1a, 64-bit, taken a 64-bit word at a time (then byte-wise tail). */
static inline uint64_t it_csum(const void *buf, size_t len)
{
	const uint64_t prime = 0x100000001b3ull;
	uint64_t h = 0xcbf29ce484222325ull, w;
	const uint8_t *p = buf;

	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * prime;
	}
	for (; len; p++, len--)
		h = (h ^ *p) * prime;
	return h;
}

static inline void *it_alloc(size_t len)
{
	void *p = NULL;

	IT_ASSERT(posix_memalign(&p, 4096, len ? len : 8) == 0, "%zu B", len);
	memset(p, 0, len);
	return p;
}

/* ---- out-of-band channel ---- */

static inline void it_wait_fd(int fd, short events, uint64_t timeout_ns,
			      const char *what)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int r;

	do
		r = poll(&pfd, 1, (int)(timeout_ns / 1000000));
	while (r < 0 && errno == EINTR);
	IT_ASSERT(r > 0, "%s: no activity on fd %d for %" PRIu64 " s", what, fd,
		  (uint64_t)(timeout_ns / 1000000000u));
}

/* Arm (or disarm) a SIGALRM backstop around a call that cannot time out. */
static inline void it_alarm(bool on)
{
	alarm(on ? (unsigned int)(it_timeout_ns() / 1000000000ull) : 0);
}

static inline void it_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		IT_ASSERT(n > 0, "oob write: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

static inline void it_read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	ssize_t n;

	while (len) {
		it_wait_fd(fd, POLLIN, it_timeout_ns(), "oob read");
		n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		IT_ASSERT(n > 0, "oob read: %s",
			  n ? strerror(errno) : "peer closed");
		p += n;
		len -= (size_t)n;
	}
}

static inline void it_send_u64(int fd, uint64_t v)
{
	it_write_all(fd, &v, sizeof(v));
}

static inline uint64_t it_recv_u64(int fd)
{
	uint64_t v;

	it_read_all(fd, &v, sizeof(v));
	return v;
}

/* Wait for the peer's @tag (a sync point both sides name alike). */
static inline void it_expect(int fd, uint64_t tag)
{
	uint64_t v = it_recv_u64(fd);

	IT_ASSERT(v == tag, "oob: got tag %#" PRIx64 ", want %#" PRIx64, v,
		  tag);
}

static inline void it_sync(int fd, uint64_t tag)
{
	it_send_u64(fd, tag);
	it_expect(fd, tag);
}

/* ---- processes ---- */

struct it_role {
	const char *name;
	int (*fn)(int fd, int idx);
};

/*
 * Start this program again as child role @role number @idx.  Returns its pid;
 * *fd_p is the parent's end of the channel.  The child dies with its parent.
 */
static inline pid_t it_spawn(const char *role, int idx, int *fd_p)
{
	char idx_s[16];
	int sv[2];
	pid_t pid;

	IT_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	fflush(NULL);
	pid = fork();
	IT_ASSERT(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (sv[1] == IT_CHILD_FD)
			fcntl(sv[1], F_SETFD, 0);
		else if (dup2(sv[1], IT_CHILD_FD) < 0)
			_exit(126);
		snprintf(idx_s, sizeof(idx_s), "%d", idx);
		execl("/proc/self/exe", "itest-child", "--itest-child", role,
		      idx_s, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	*fd_p = sv[0];
	return pid;
}

/* Run the child role named on the command line; -1 if this is the parent. */
static inline int it_child_main(int argc, char **argv,
				const struct it_role *roles)
{
	static char name[64];
	int idx;

	if (argc < 4 || strcmp(argv[1], "--itest-child"))
		return -1;
	idx = atoi(argv[3]);
	snprintf(name, sizeof(name), "%s%d", argv[2], idx);
	*it_role_p() = name;
	for (; roles->name; roles++)
		if (!strcmp(roles->name, argv[2]))
			return roles->fn(IT_CHILD_FD, idx);
	it_fail(__FILE__, __LINE__, "known role", "-%s", argv[2]);
}

/* Wait for @pid to exit; fails if it fails or outlives the timeout. */
static inline void it_reap(pid_t pid)
{
	uint64_t deadline = it_now_ns() + it_timeout_ns();
	int st = 0;
	pid_t r;

	while ((r = waitpid(pid, &st, WNOHANG)) == 0) {
		if (it_now_ns() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			it_fail(__FILE__, __LINE__, "child exits in time",
				"-pid %d killed", (int)pid);
		}
		it_sleep_ms(5);
	}
	IT_ASSERT(r == pid, "waitpid: %s", strerror(errno));
	IT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d: %s %d",
		  (int)pid, WIFEXITED(st) ? "exit" : "signal",
		  WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

/*
 * Fault injection for the HCA this process opens next: @spec (NULL: none)
 * with seed ITEST_SEED (default 7) + @salt, so each process draws its own.
 */
static inline void it_faults(const char *spec, unsigned int salt)
{
	const char *s = getenv("ITEST_SEED");
	char buf[256];

	if (!spec) {
		unsetenv("IBSNAP_FAKE_FAULTS");
		return;
	}
	snprintf(buf, sizeof(buf), "%s,seed=%lu", spec,
		 (s ? strtoul(s, NULL, 0) : 7ul) + salt);
	setenv("IBSNAP_FAKE_FAULTS", buf, 1);
}

/*
 * For programs run by hand (bench, demo): a fabric directory of their own
 * unless IBSNAP_FABRIC is set.  Returns the directory to remove, or NULL.
 */
static inline char *it_private_fabric(void)
{
	static char dir[] = "/dev/shm/ibsnap-run.XXXXXX";

	if (getenv("IBSNAP_FABRIC"))
		return NULL;
	IT_ASSERT(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
	setenv("IBSNAP_FABRIC", dir, 1);
	return dir;
}

static inline void it_private_fabric_rm(char *dir)
{
	char cmd[128];

	if (!dir)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

/* Simulated node (own LID/GID) for the HCA this process opens next. */
static inline void it_node(const char *name)
{
	setenv("IBSNAP_FAKE_NODE", name, 1);
}

/* ---- device, PD, CQ, QP ---- */

struct it_dev {
	const struct isn_hca_ops *ops;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_port_attr port;
	union ibv_gid gid;
	int gid_index;
};

static inline void it_open(struct it_dev *d)
{
	struct ibv_device **list;
	int i, n = 0;

	memset(d, 0, sizeof(*d));
	d->ops = fakehca_ops();
	IT_ASSERT(d->ops && d->ops->get_device_list);
	list = d->ops->get_device_list(&n);
	IT_ASSERT(list && n > 0, "get_device_list: %s", strerror(errno));
	for (i = 0; i < n; i++)
		if (!strcmp(ibv_get_device_name(list[i]), "fake0"))
			break;
	IT_ASSERT(i < n, "no fake0 among %d devices", n);
	d->ctx = d->ops->open_device(list[i]);
	IT_ASSERT(d->ctx, "open_device: %s", strerror(errno));
	d->ops->free_device_list(list);
	IT_ASSERT(d->ops->query_port(d->ctx, IT_PORT, &d->port) == 0);
	IT_ASSERT(d->port.state == IBV_PORT_ACTIVE, "port state %d",
		  d->port.state);
	IT_ASSERT(d->ops->query_gid(d->ctx, IT_PORT, d->gid_index, &d->gid) ==
		  0);
	d->pd = d->ops->alloc_pd(d->ctx);
	IT_ASSERT(d->pd, "alloc_pd: %s", strerror(errno));
}

static inline void it_close(struct it_dev *d)
{
	IT_ASSERT(d->ops->dealloc_pd(d->pd) == 0);
	IT_ASSERT(d->ops->close_device(d->ctx) == 0);
}

static inline struct ibv_mr *it_reg(struct it_dev *d, void *buf, size_t len,
				    unsigned int access)
{
	struct ibv_mr *mr;

	mr = d->ops->reg_mr(d->pd, buf, len, (uintptr_t)buf, access);
	IT_ASSERT(mr, "reg_mr %zu B: %s", len, strerror(errno));
	return mr;
}

static inline struct ibv_cq *it_cq(struct it_dev *d, int cqe,
				   struct ibv_comp_channel *ch)
{
	struct ibv_cq *cq = d->ops->create_cq(d->ctx, cqe, NULL, ch, 0);

	IT_ASSERT(cq, "create_cq %d: %s", cqe, strerror(errno));
	return cq;
}

/* A QP on @cq (send and receive), or on @srq for receives if given. */
static inline struct ibv_qp *it_qp(struct it_dev *d, enum ibv_qp_type type,
				   struct ibv_cq *cq, struct ibv_srq *srq,
				   uint32_t max_send, uint32_t max_recv)
{
	struct ibv_qp_init_attr ia = {
		.send_cq = cq,
		.recv_cq = cq,
		.srq = srq,
		.cap = {
			.max_send_wr = max_send,
			.max_recv_wr = srq ? 0 : max_recv,
			.max_send_sge = 1,
			.max_recv_sge = 1,
			.max_inline_data = 64,
		},
		.qp_type = type,
	};
	struct ibv_qp *qp = d->ops->create_qp(d->pd, &ia);

	IT_ASSERT(qp, "create_qp type %d: %s", type, strerror(errno));
	return qp;
}

static inline void it_destroy_qp(struct it_dev *d, struct ibv_qp *qp)
{
	int r = d->ops->destroy_qp(qp);

	IT_ASSERT(r == 0, "destroy_qp: %s", strerror(r));
}

static inline void it_destroy_cq(struct it_dev *d, struct ibv_cq *cq)
{
	int r = d->ops->destroy_cq(cq);

	IT_ASSERT(r == 0, "destroy_cq: %s", strerror(r));
}

static inline void it_dereg(struct it_dev *d, struct ibv_mr *mr)
{
	int r = d->ops->dereg_mr(mr);

	IT_ASSERT(r == 0, "dereg_mr: %s", strerror(r));
}

/* ---- connection ---- */

/* What one end tells the other out of band (all fields host order). */
struct it_ep {
	uint32_t qpn, psn, rkey, lid;
	uint64_t addr, len;
	uint8_t gid[16];
};

static inline void it_ep_init(struct it_dev *d, struct ibv_qp *qp,
			      struct ibv_mr *mr, struct it_ep *ep)
{
	static uint64_t seed;

	if (!seed)
		seed = it_now_ns() ^ ((uint64_t)getpid() << 32);
	memset(ep, 0, sizeof(*ep));
	ep->qpn = qp ? qp->qp_num : 0;
	ep->psn = (uint32_t)it_rand_next(&seed) & 0xffffff;
	ep->lid = d->port.lid;
	memcpy(ep->gid, d->gid.raw, 16);
	if (mr) {
		ep->rkey = mr->rkey;
		ep->addr = (uintptr_t)mr->addr;
		ep->len = mr->length;
	}
}

/* Swap endpoint records with the peer (both sides call it). */
static inline void it_xchg(int fd, const struct it_ep *mine, size_t n,
			   struct it_ep *theirs)
{
	it_write_all(fd, mine, n * sizeof(*mine));
	it_read_all(fd, theirs, n * sizeof(*theirs));
}

/* Connection knobs; it_conn_default() gives rdma-core examples' values. */
struct it_conn {
	uint8_t timeout, retry_cnt, rnr_retry, min_rnr_timer;
	uint8_t rd_atomic;
	unsigned int access;
};

static inline struct it_conn it_conn_default(void)
{
	return (struct it_conn){ .timeout = 14,
				 .retry_cnt = 7,
				 .rnr_retry = 7,
				 .min_rnr_timer = 12,
				 .rd_atomic = 16,
				 .access = IT_ACCESS_ALL };
}

static inline void it_ah_attr(struct it_dev *d, const struct it_ep *to,
			      struct ibv_ah_attr *ah)
{
	memset(ah, 0, sizeof(*ah));
	ah->dlid = (uint16_t)to->lid;
	ah->port_num = IT_PORT;
	ah->is_global = 1;
	memcpy(ah->grh.dgid.raw, to->gid, 16);
	ah->grh.sgid_index = (uint8_t)d->gid_index;
	ah->grh.hop_limit = 64;
}

static inline void it_modify(struct it_dev *d, struct ibv_qp *qp,
			     struct ibv_qp_attr *a, int mask, const char *what)
{
	int r = d->ops->modify_qp(qp, a, mask);

	IT_ASSERT(r == 0, "modify_qp to %s: %s", what, strerror(r));
}

static inline void it_to_init(struct it_dev *d, struct ibv_qp *qp,
			      const struct it_conn *c)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT,
				 .port_num = IT_PORT,
				 .qkey = IT_QKEY };
	int mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT;

	if (qp->qp_type == IBV_QPT_UD) {
		mask |= IBV_QP_QKEY;
	} else {
		/* UC has neither RDMA READ nor atomics */
		a.qp_access_flags =
			qp->qp_type == IBV_QPT_UC ?
				c->access & ~(IBV_ACCESS_REMOTE_READ |
					      IBV_ACCESS_REMOTE_ATOMIC) :
				c->access;
		mask |= IBV_QP_ACCESS_FLAGS;
	}
	it_modify(d, qp, &a, mask, "INIT");
}

/* RESET -> INIT -> RTR -> RTS.  @c may be NULL (defaults). */
static inline void it_connect(struct it_dev *d, struct ibv_qp *qp,
			      const struct it_ep *me, const struct it_ep *peer,
			      const struct it_conn *c)
{
	struct it_conn def = it_conn_default();
	struct ibv_qp_attr a;
	bool rc = qp->qp_type == IBV_QPT_RC;
	int mask;

	c = c ? c : &def;
	it_to_init(d, qp, c);

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	mask = IBV_QP_STATE;
	if (qp->qp_type != IBV_QPT_UD) {
		a.path_mtu = d->port.active_mtu;
		a.dest_qp_num = peer->qpn;
		a.rq_psn = peer->psn;
		it_ah_attr(d, peer, &a.ah_attr);
		mask |= IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
			IBV_QP_RQ_PSN;
	}
	if (rc) {
		a.max_dest_rd_atomic = c->rd_atomic;
		a.min_rnr_timer = c->min_rnr_timer;
		mask |= IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER;
	}
	it_modify(d, qp, &a, mask, "RTR");

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = me->psn;
	mask = IBV_QP_STATE | IBV_QP_SQ_PSN;
	if (rc) {
		a.timeout = c->timeout;
		a.retry_cnt = c->retry_cnt;
		a.rnr_retry = c->rnr_retry;
		a.max_rd_atomic = c->rd_atomic;
		mask |= IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
			IBV_QP_MAX_QP_RD_ATOMIC;
	}
	it_modify(d, qp, &a, mask, "RTS");
}

static inline struct ibv_ah *it_ah(struct it_dev *d, const struct it_ep *to)
{
	struct ibv_ah_attr attr;
	struct ibv_ah *ah;

	it_ah_attr(d, to, &attr);
	ah = d->ops->create_ah(d->pd, &attr);
	IT_ASSERT(ah, "create_ah: %s", strerror(errno));
	return ah;
}

static inline enum ibv_qp_state it_qp_state(struct it_dev *d, struct ibv_qp *qp)
{
	struct ibv_qp_init_attr init;
	struct ibv_qp_attr a;

	IT_ASSERT(d->ops->query_qp(qp, &a, IBV_QP_STATE, &init) == 0);
	return a.qp_state;
}

/* ---- posting and polling ---- */

static inline void it_post_recv(struct ibv_qp *qp, struct ibv_srq *srq,
				uint64_t wr_id, void *buf, uint32_t len,
				uint32_t lkey)
{
	struct ibv_sge sge = { (uintptr_t)buf, len, lkey };
	struct ibv_recv_wr wr = { .wr_id = wr_id,
				  .sg_list = &sge,
				  .num_sge = 1 };
	struct ibv_recv_wr *bad;
	int r = srq ? ibv_post_srq_recv(srq, &wr, &bad) :
		      ibv_post_recv(qp, &wr, &bad);

	IT_ASSERT(r == 0, "post_recv: %s", strerror(r));
}

/* Post one send-queue WR with a single SGE (@len 0: no SGE). */
static inline void it_post(struct ibv_qp *qp, struct ibv_send_wr *wr, void *buf,
			   uint32_t len, uint32_t lkey)
{
	struct ibv_sge sge = { (uintptr_t)buf, len, lkey };
	struct ibv_send_wr *bad;
	int r;

	wr->sg_list = &sge;
	wr->num_sge = len ? 1 : 0;
	wr->next = NULL;
	r = ibv_post_send(qp, wr, &bad);
	IT_ASSERT(r == 0, "post_send opcode %d: %s", wr->opcode, strerror(r));
}

static inline void it_post_send(struct ibv_qp *qp, uint64_t wr_id, void *buf,
				uint32_t len, uint32_t lkey)
{
	struct ibv_send_wr wr = { .wr_id = wr_id,
				  .opcode = IBV_WR_SEND,
				  .send_flags = IBV_SEND_SIGNALED };

	it_post(qp, &wr, buf, len, lkey);
}

/* Post a signaled RDMA WRITE(_WITH_IMM) or READ of @len bytes at @raddr. */
static inline void it_post_rdma(struct ibv_qp *qp, enum ibv_wr_opcode op,
				uint64_t wr_id, void *buf, uint32_t len,
				uint32_t lkey, uint64_t raddr, uint32_t rkey,
				uint32_t imm)
{
	struct ibv_send_wr wr = { .wr_id = wr_id,
				  .opcode = op,
				  .send_flags = IBV_SEND_SIGNALED,
				  .imm_data = htobe32(imm) };

	wr.wr.rdma.remote_addr = raddr;
	wr.wr.rdma.rkey = rkey;
	it_post(qp, &wr, buf, len, lkey);
}

/* Post a signaled atomic; the original 8 bytes land at @buf. */
static inline void it_post_atomic(struct ibv_qp *qp, enum ibv_wr_opcode op,
				  uint64_t wr_id, uint64_t *buf, uint32_t lkey,
				  uint64_t raddr, uint32_t rkey,
				  uint64_t compare_add, uint64_t swap)
{
	struct ibv_send_wr wr = { .wr_id = wr_id,
				  .opcode = op,
				  .send_flags = IBV_SEND_SIGNALED };

	wr.wr.atomic.remote_addr = raddr;
	wr.wr.atomic.rkey = rkey;
	wr.wr.atomic.compare_add = compare_add;
	wr.wr.atomic.swap = swap;
	it_post(qp, &wr, buf, sizeof(*buf), lkey);
}

/* Poll up to @max; 0 when nothing came within @ms milliseconds. */
static inline int it_poll_for(struct ibv_cq *cq, struct ibv_wc *wc, int max,
			      unsigned int ms)
{
	uint64_t deadline = it_now_ns() + (uint64_t)ms * 1000000ull;
	unsigned int spins = 0;
	int r;

	for (;;) {
		r = ibv_poll_cq(cq, max, wc);
		IT_ASSERT(r >= 0, "poll_cq: %d", r);
		if (r || it_now_ns() > deadline)
			return r;
		if (++spins % 64 == 0)
			sched_yield();
	}
}

/* Poll exactly @n completions; fails when none comes for the timeout. */
static inline void it_poll_n(struct ibv_cq *cq, struct ibv_wc *wc, int n)
{
	unsigned int ms = (unsigned int)(it_timeout_ns() / 1000000ull);
	int got = 0, r;

	while (got < n) {
		r = it_poll_for(cq, wc + got, n - got, ms);
		IT_ASSERT(r > 0, "timeout: %d of %d completions", got, n);
		got += r;
	}
}

/* Poll at least one and up to @max completions; fails on the timeout. */
static inline int it_poll_some(struct ibv_cq *cq, struct ibv_wc *wc, int max)
{
	int r = it_poll_for(cq, wc, max,
			    (unsigned int)(it_timeout_ns() / 1000000ull));

	IT_ASSERT(r > 0, "timeout: no completion");
	return r;
}

static inline void it_poll_one(struct ibv_cq *cq, struct ibv_wc *wc)
{
	it_poll_n(cq, wc, 1);
}

/* Poll one completion that must succeed. */
static inline void it_poll_ok(struct ibv_cq *cq, struct ibv_wc *wc)
{
	it_poll_one(cq, wc);
	IT_WC_OK(wc);
}

/* Wait for the next async event of @d; fails after the timeout. */
static inline void it_async_event(struct it_dev *d, struct ibv_async_event *ev)
{
	it_wait_fd(d->ctx->async_fd, POLLIN, it_timeout_ns(), "async event");
	IT_ASSERT(d->ops->get_async_event(d->ctx, ev) == 0,
		  "get_async_event: %s", strerror(errno));
}

/* True if an async event is pending within @ms milliseconds. */
static inline bool it_async_pending(struct it_dev *d, int ms)
{
	struct pollfd pfd = { .fd = d->ctx->async_fd, .events = POLLIN };

	return poll(&pfd, 1, ms) > 0;
}

#endif /* IBSNAP_ITEST_H */
