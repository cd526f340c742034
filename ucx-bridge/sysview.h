/* SPDX-License-Identifier: MIT */
/*
 * The files UCX (and other libraries that probe devices) read about an RDMA
 * device, served for the shim's virtual devices where the system has none:
 * the fake HCA's devices exist only inside the shim, and a device renamed
 * at a restart keeps its old name only there.  ucx-bridge/libc.c routes the
 * libc calls on these paths here.
 */
#ifndef IBSNAP_SYSVIEW_H
#define IBSNAP_SYSVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

enum isn_sv_type {
	ISN_SV_NONE, /* not ours: the system's */
	ISN_SV_ENOENT, /* ours, and absent */
	ISN_SV_DIR,
	ISN_SV_FILE,
	ISN_SV_CHR, /* /dev/infiniband/uverbsN */
};

struct isn_sv_node {
	enum isn_sv_type type;
	unsigned int minor; /* ISN_SV_CHR */
	char text[64]; /* ISN_SV_FILE: the contents */
};

/* What @path is in the shim's view (@path absolute). */
void isn_sv_lookup(const char *path, struct isn_sv_node *node);
/* A cheap first test: could @path be ours at all? */
bool isn_sv_maybe(const char *path);
/* Fill @st for @node as stat(2) would. */
void isn_sv_stat(const struct isn_sv_node *node, struct stat *st);
/* An fd reading @node's contents (a memfd), or -1 with errno. */
int isn_sv_open(const struct isn_sv_node *node, int flags);

#endif /* IBSNAP_SYSVIEW_H */
