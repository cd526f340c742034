/* SPDX-License-Identifier: MIT */
/*
 * The checkpoint interface between the coordinator client (coord/, run by a
 * thread of every process that has the shim) and the shim's drain/ and
 * rebuild/ code.  Design: shared/design.md §6.
 *
 * The coordinator drives a job through phases; each phase ends with a
 * coordinator barrier across every process of the job:
 *
 *   QUIESCE  posts made from now on are queued by the shim and succeed
 *   DRAIN    markers, CQs polled into saved buffers; may exchange counters
 *   RELEASE  every real HCA resource destroyed; no device fd or mapping left
 *   (DUMP    done by the agent with CRIU; not a client phase)
 *   REBUILD  real resources re-created; one put of this process's
 *            {old virtual -> new real} IDs, a fence, one get of everybody's;
 *            QPs reconnected, receives re-posted
 *   RESUME   queued posts released; buffered completions handed back
 *
 * The shim registers its handlers once with isn_ckpt_register().  A handler
 * returns 0 or -errno; a failure fails the checkpoint (the coordinator then
 * sends RESUME, or REBUILD + RESUME after a RELEASE, so the job goes on).
 */
#ifndef IBSNAP_CKPT_H
#define IBSNAP_CKPT_H

#include <stddef.h>
#include <stdint.h>

enum isn_phase {
	ISN_PHASE_NONE = 0,
	ISN_PHASE_QUIESCE,
	ISN_PHASE_DRAIN,
	ISN_PHASE_RELEASE,
	ISN_PHASE_DUMP,
	ISN_PHASE_REBUILD,
	ISN_PHASE_RESUME,
};

/* One process's contribution to an exchange, as the coordinator returns it. */
struct isn_blob {
	uint32_t rank;      /* the process's index in the job */
	uint32_t len;
	const void *data;
};

/*
 * The exchange a handler may run during DRAIN and REBUILD: publish this
 * process's blob, wait for every process of the job, read all blobs (valid
 * until the handler returns).  One call per phase at most.
 */
struct isn_exchange {
	void *priv;
	int (*put_fence_get)(struct isn_exchange *x, const void *blob,
			     size_t len, const struct isn_blob **all,
			     size_t *n);
};

struct isn_ckpt_handlers {
	int (*quiesce)(void);
	int (*drain)(struct isn_exchange *x);
	int (*release)(void);
	/* @new_incarnation: the process was restored (or its node rebooted):
	 * devices must be reopened and every real ID may have changed. */
	int (*rebuild)(struct isn_exchange *x, int new_incarnation);
	int (*resume)(void);
};

/* Called by the shim at load; the coordinator client calls the handlers. */
void isn_ckpt_register(const struct isn_ckpt_handlers *h);
const struct isn_ckpt_handlers *isn_ckpt_handlers(void);

#endif /* IBSNAP_CKPT_H */
