// SPDX-License-Identifier: MIT
/*
 * fork(): launchers (mpirun, perftest's -e runs, shells) fork processes
 * that have used verbs.  rdma-core allows a child to use verbs afresh
 * (open a device, create its own objects: with copy-on-fork kernels,
 * >= 5.13, without ibv_fork_init), never the parent's objects.  So the
 * child keeps the shim's process state but none of its threads: the locks
 * the handlers below take around fork() are consistent in it, the event
 * thread is started again by the child's first channel or context, and the
 * parent's objects leave the child's lists (a checkpoint of the child
 * drains only its own).
 */
#include <pthread.h>

#include "shim.h"

static void fork_stage(enum isn_fork_stage stage)
{
	/* prepare locks in this order; parent and child unlock */
	isn_objs_atfork(stage);
	isn_dev_atfork(stage);
	isn_reg_atfork(stage);
	isn_ev_atfork(stage);
}

static void fork_prepare(void)
{
	fork_stage(ISN_FORK_PREPARE);
}

static void fork_parent(void)
{
	fork_stage(ISN_FORK_PARENT);
}

static void fork_child(void)
{
	fork_stage(ISN_FORK_CHILD);
}

__attribute__((constructor)) static void fork_init(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}
