/* SPDX-License-Identifier: MIT */
/*
 * Fault injection on the coordinator wire, for tests: off unless
 * IBSNAP_COORD_FAULT is set, in which case every message a process sends
 * (ibsnapd, the clients in the job's processes, the host agents, the
 * controllers) may be dropped, sent twice or delayed:
 *
 *   IBSNAP_COORD_FAULT=drop=P,dup=P,delay_us=N,seed=S,type=NAME[:PHASE],n=K
 *
 * P are probabilities (0..1); delay_us sleeps before the send (in ibsnapd
 * it stalls the loop); seed makes the choices repeatable (default: the
 * pid); type limits the faults to one message type (as isn_msg_name names
 * it: PHASE, ACK, DUMP, DUMP_DONE, WAKE, ...), and for PHASE and ACK
 * optionally to one phase (PHASE:drain); n limits them to the first K
 * messages that match.  Every fault is logged on stderr ("wire fault:").
 * The variable is read once; unset, a send costs one load and a branch.
 */
#ifndef IBSNAP_COORD_WFAULT_H
#define IBSNAP_COORD_WFAULT_H

#include <stddef.h>

enum isn_wf_act {
	ISN_WF_SEND,
	ISN_WF_DROP,
	ISN_WF_DUP,
};

/* 0: not read yet, 1: off, 2: on */
extern int isn_wf_state;

enum isn_wf_act isn_wfault_slow(const void *msg, size_t len);

/* What to do with one encoded message (header and payload) before it is
 * sent; a delay has been slept when this returns. */
static inline enum isn_wf_act isn_wfault(const void *msg, size_t len)
{
	if (__builtin_expect(
		    __atomic_load_n(&isn_wf_state, __ATOMIC_RELAXED) == 1, 1))
		return ISN_WF_SEND;
	return isn_wfault_slow(msg, len);
}

#endif /* IBSNAP_COORD_WFAULT_H */
