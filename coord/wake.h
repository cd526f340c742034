/* SPDX-License-Identifier: MIT */
/*
 * The wake message.  After RELEASE a process that has a host agent closes
 * its coordinator connection (CRIU dumps no socket to a process outside the
 * dump) and blocks on the read end of a pipe it owns.  The agent, after the
 * dump (or after `criu restore`), opens that pipe through
 * /proc/PID/fd/FD and writes one struct isn_wake (atomic: < PIPE_BUF).  It
 * says whether this is a new incarnation and where the coordinator now is.
 */
#ifndef IBSNAP_COORD_WAKE_H
#define IBSNAP_COORD_WAKE_H

#include <stdint.h>

#include "proto.h"

#define ISN_WAKE_MAGIC 0x4b574e49u /* "INWK" */
#define ISN_WAKE_VERSION 1

#define ISN_WAKE_NEW_INCARNATION 0x1 /* restored from an image */
#define ISN_WAKE_LOST 0x2 /* no coordinator: roll back alone */
#define ISN_WAKE_ROLLBACK 0x4 /* the checkpoint failed */

struct isn_wake {
	uint32_t magic;
	uint16_t version;
	uint16_t size;
	uint32_t ckpt; /* the checkpoint the process is waiting in */
	uint32_t flags;
	uint64_t agent; /* its (new) agent; 0: unchanged */
	char coord[ISN_PATH_MAX]; /* the coordinator; "": unchanged */
};

_Static_assert(sizeof(struct isn_wake) <= 4096, "a wake is one write");

#endif /* IBSNAP_COORD_WAKE_H */
