/* SPDX-License-Identifier: MIT */
/*
 * The coordinator client: one thread in every process of a job started by
 * `ibsnap run` (which sets IBSNAP_COORD, IBSNAP_JOB, IBSNAP_TOKEN and
 * IBSNAP_AGENT).  It registers with ibsnapd, waits, and on each phase
 * command calls the handlers registered with isn_ckpt_register()
 * (include/ibsnap/ckpt.h) from its own thread, then acknowledges.  The
 * handlers' isn_exchange goes through the daemon.  docs/checkpoint.md.
 *
 * For the shim:
 *   isn_coord_client_start()  once, before the process first opens a
 *       device: the shim's isn_init() (first ibv_get_device_list) is the
 *       place, so that a process that never uses verbs never registers; a
 *       constructor works too.  It blocks until the process is registered
 *       (IBSNAP_COORD_TIMEOUT seconds at most, default 30).  0 when
 *       registered, or when the process was not started by ibsnap run
 *       (nothing to do); -errno when the coordinator cannot be reached or
 *       refuses (the process then runs, but cannot be checkpointed).
 *       Idempotent and thread-safe.  Register the handlers before.
 *   isn_coord_client_stop()  from the shim's destructor: leaves the job
 *       and joins the thread (bounded).
 * A child of fork() that does not exec is not registered (the handler
 * run in the child closes the parent's coordinator sockets); after exec
 * the shim registers it as a new process.
 */
#ifndef IBSNAP_COORD_CLIENT_H
#define IBSNAP_COORD_CLIENT_H

int isn_coord_client_start(void);
void isn_coord_client_stop(void);
/* This process's rank in its job, or -1 when not registered. */
int isn_coord_client_rank(void);

#endif /* IBSNAP_COORD_CLIENT_H */
