/* SPDX-License-Identifier: MIT */
/*
 * The differential probes (vdiff_attr, vdiff_bad, vdiff_dp, vdiff_err):
 * plain verbs programs that print one line "key: value" per thing they try,
 * with nothing in a value that differs between two correct HCAs (no
 * addresses, keys, QPNs or GID bytes; relations such as "src_qp peer"
 * instead).  tests/lab/diff.sh runs them on rxe0 natively, under the shim,
 * in remap mode and on the fake HCA and compares the transcripts line by
 * line.
 *   vdiff_PROBE [DEVICE]      (default: the first device)
 */
#ifndef IBSNAP_VDIFF_H
#define IBSNAP_VDIFF_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <infiniband/verbs.h>

#define VD_PORT 1
#define VD_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct vd_dev {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_port_attr port;
	union ibv_gid gid; /* index 1: the IPv4-mapped one on RoCE */
	int gid_index;
};

static inline void vd_out(const char *key, const char *fmt, ...)
{
	va_list ap;

	printf("%s: ", key);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* A key made with printf (valid until the fourth call after). */
static inline const char *vd_key(const char *fmt, ...)
{
	static char buf[4][96];
	static unsigned int n;
	char *k = buf[n++ % 4];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(k, sizeof(buf[0]), fmt, ap);
	va_end(ap);
	return k;
}

/* An errno (or 0) as its symbolic name: "ok", "EINVAL", ... */
static inline const char *vd_err(int e)
{
#define VD_E(x)       \
	{             \
		x, #x \
	}
	static const struct {
		int e;
		const char *name;
	} names[] = {
		{ 0, "ok" },	  VD_E(EINVAL),		 VD_E(ENOMEM),
		VD_E(EOPNOTSUPP), VD_E(EFAULT),		 VD_E(EBUSY),
		VD_E(ENOENT),	  VD_E(EAGAIN),		 VD_E(ETIMEDOUT),
		VD_E(EPERM),	  VD_E(EACCES),		 VD_E(ENOSYS),
		VD_E(ENODEV),	  VD_E(ENXIO),		 VD_E(ERANGE),
		VD_E(ENODATA),	  VD_E(EPROTONOSUPPORT),
	};
#undef VD_E
	static char buf[16];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].e == e)
			return names[i].name;
	snprintf(buf, sizeof(buf), "errno%d", e);
	return buf;
}

static inline int vd_open(struct vd_dev *d, const char *name)
{
	struct ibv_device **list = ibv_get_device_list(NULL);
	int i;

	memset(d, 0, sizeof(*d));
	if (!list)
		return -1;
	for (i = 0; list[i]; i++)
		if (!name || !strcmp(ibv_get_device_name(list[i]), name))
			break;
	if (list[i])
		d->ctx = ibv_open_device(list[i]);
	ibv_free_device_list(list);
	if (!d->ctx || ibv_query_port(d->ctx, VD_PORT, &d->port))
		return -1;
	d->gid_index = d->port.link_layer == IBV_LINK_LAYER_ETHERNET ? 1 : 0;
	if (ibv_query_gid(d->ctx, VD_PORT, d->gid_index, &d->gid))
		return -1;
	d->pd = ibv_alloc_pd(d->ctx);
	return d->pd ? 0 : -1;
}

static inline void vd_ah_attr(const struct vd_dev *d, struct ibv_ah_attr *ah)
{
	memset(ah, 0, sizeof(*ah));
	ah->dlid = d->port.lid;
	ah->port_num = VD_PORT;
	if (d->port.link_layer == IBV_LINK_LAYER_ETHERNET) {
		ah->is_global = 1;
		ah->grh.dgid = d->gid;
		ah->grh.sgid_index = d->gid_index;
		ah->grh.hop_limit = 1;
	}
}

static inline double vd_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#endif /* IBSNAP_VDIFF_H */
