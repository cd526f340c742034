/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the shim's API tests: plain verbs programs (they link only
 * libibverbs) that the tests/shim scripts run under "ibsnap run --fake", normally
 * and in IBSNAP_TEST_REMAP=1 mode.  One process, loopback QPs on fake0.
 */
#ifndef IBSNAP_SHIMTEST_H
#define IBSNAP_SHIMTEST_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <infiniband/verbs.h>

#include "../qp_connect.h"

#define ST_PORT 1
#define ST_QKEY 0x11111111u
#define ST_ACCESS                                           \
	(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
	 IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC)

struct st_dev {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_port_attr port;
	union ibv_gid gid; /* index 0 */
	bool global; /* RoCE: address by GID */
};

static inline int st_open(struct st_dev *d)
{
	struct ibv_device **list = ibv_get_device_list(NULL);

	memset(d, 0, sizeof(*d));
	if (!list || !list[0])
		return -1;
	d->ctx = ibv_open_device(list[0]);
	ibv_free_device_list(list);
	if (!d->ctx || ibv_query_port(d->ctx, ST_PORT, &d->port) ||
	    ibv_query_gid(d->ctx, ST_PORT, 0, &d->gid))
		return -1;
	d->global = d->port.link_layer == IBV_LINK_LAYER_ETHERNET;
	d->pd = ibv_alloc_pd(d->ctx);
	return d->pd ? 0 : -1;
}

static inline void st_close(struct st_dev *d)
{
	if (d->pd)
		ibv_dealloc_pd(d->pd);
	if (d->ctx)
		ibv_close_device(d->ctx);
}

static inline void st_ah_attr(const struct st_dev *d, struct ibv_ah_attr *ah)
{
	memset(ah, 0, sizeof(*ah));
	ah->dlid = d->port.lid;
	ah->port_num = ST_PORT;
	if (d->global) {
		ah->is_global = 1;
		ah->grh.dgid = d->gid;
		ah->grh.sgid_index = 0;
		ah->grh.hop_limit = 1;
	}
}

/* RESET -> INIT -> RTR -> RTS, connected to @dest_qpn (this device). */
static inline int st_rc_connect(const struct st_dev *d, struct ibv_qp *qp,
				uint32_t dest_qpn)
{
	struct tq_rc p = { .dest_qpn = dest_qpn,
			   .rq_psn = 7,
			   .sq_psn = 7,
			   .access = ST_ACCESS,
			   .port = ST_PORT,
			   .timeout = 14,
			   .rd_atomic = 4,
			   .min_rnr_timer = 1 };

	st_ah_attr(d, &p.av);
	return tq_rc_connect(qp, &p);
}

static inline int st_ud_ready(struct ibv_qp *qp)
{
	return tq_ud_ready(qp, ST_PORT, ST_QKEY, 0);
}

static inline double st_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Poll @cq until one completion (10 s at most): 1, or <= 0. */
static inline int st_poll1(struct ibv_cq *cq, struct ibv_wc *wc)
{
	double end = st_now() + 10;
	int n;

	do {
		n = ibv_poll_cq(cq, 1, wc);
		if (n)
			return n;
	} while (st_now() < end);
	return 0;
}

static inline struct ibv_qp *st_qp(const struct st_dev *d,
				   enum ibv_qp_type type, struct ibv_cq *scq,
				   struct ibv_cq *rcq, struct ibv_srq *srq)
{
	struct ibv_qp_init_attr ia;

	memset(&ia, 0, sizeof(ia));
	ia.send_cq = scq;
	ia.recv_cq = rcq;
	ia.srq = srq;
	ia.qp_type = type;
	ia.cap.max_send_wr = 64;
	ia.cap.max_recv_wr = 64;
	ia.cap.max_send_sge = 4;
	ia.cap.max_recv_sge = 4;
	ia.cap.max_inline_data = 64;
	return ibv_create_qp(d->pd, &ia);
}

/* What a process tells its peer of a QP: its QPN and port 1's LID and GID
 * 0, as the program sees them. */
struct st_ident {
	uint32_t qpn;
	uint16_t lid;
	union ibv_gid gid;
};

static inline void st_ident_self(const struct st_dev *d,
				 const struct ibv_qp *qp, struct st_ident *id)
{
	memset(id, 0, sizeof(*id));
	id->qpn = qp->qp_num;
	id->lid = d->port.lid;
	id->gid = d->gid;
}

/* Two processes meet through files in a directory: @len bytes at @p to
 * DIR/NAME, written whole (rename) ... */
static inline int st_blob_write(const char *dir, const char *name,
				const void *p, size_t len)
{
	char path[512], tmp[520];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f || fwrite(p, len, 1, f) != 1 || fclose(f))
		return -1;
	return rename(tmp, path);
}

/* ... and read back once it is there (10 s at most). */
static inline int st_blob_read(const char *dir, const char *name, void *p,
			       size_t len)
{
	char path[512];
	FILE *f = NULL;
	int i, ret;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	for (i = 0; i < 1000 && !f; i++) {
		f = fopen(path, "r");
		if (!f)
			usleep(10000);
	}
	if (!f)
		return -1;
	ret = fread(p, len, 1, f) == 1 ? 0 : -1;
	fclose(f);
	return ret;
}

#endif /* IBSNAP_SHIMTEST_H */
