// SPDX-License-Identifier: MIT
/*
 * Every live virtual object, one list per kind in creation order: what a
 * checkpoint drains, releases and re-creates (in dependency order, kind by
 * kind).  Control path only.
 */
#include "shim.h"

struct isn_list isn_objs[ISN_OBJ_NKINDS] = {
#define HEAD(k) [k] = { &isn_objs[k], &isn_objs[k] }
	HEAD(ISN_OBJ_CTX),     HEAD(ISN_OBJ_PD), HEAD(ISN_OBJ_MR),
	HEAD(ISN_OBJ_CHANNEL), HEAD(ISN_OBJ_CQ), HEAD(ISN_OBJ_SRQ),
	HEAD(ISN_OBJ_QP),      HEAD(ISN_OBJ_AH),
#undef HEAD
};

pthread_mutex_t isn_objs_lock = PTHREAD_MUTEX_INITIALIZER;

/* Writers first: a checkpoint waiting for the lock is not starved. */
static pthread_rwlock_t ctl_lock =
	PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
static __thread int ctl_depth;

int isn_ctl_enter(void)
{
	if (!ctl_depth++)
		pthread_rwlock_rdlock(&ctl_lock);
	return 0;
}

void isn_ctl_leave(int *unused)
{
	(void)unused;
	if (!--ctl_depth)
		pthread_rwlock_unlock(&ctl_lock);
}

void isn_ctl_block(void)
{
	pthread_rwlock_wrlock(&ctl_lock);
	ctl_depth += 1 << 20; /* the checkpoint's own calls pass */
}

/* isn_ctl_block() if no one holds the lock; whether it did. */
bool isn_ctl_tryblock(void)
{
	if (pthread_rwlock_trywrlock(&ctl_lock))
		return false;
	ctl_depth += 1 << 20;
	return true;
}

void isn_ctl_unblock(void)
{
	ctl_depth -= 1 << 20;
	pthread_rwlock_unlock(&ctl_lock);
}

void isn_obj_add(enum isn_obj_kind kind, struct isn_list *e)
{
	struct isn_list *h = &isn_objs[kind];

	pthread_mutex_lock(&isn_objs_lock);
	e->next = h;
	e->prev = h->prev;
	h->prev->next = e;
	h->prev = e;
	pthread_mutex_unlock(&isn_objs_lock);
}

void isn_obj_del(struct isn_list *e)
{
	if (!e->next)
		return; /* never added */
	pthread_mutex_lock(&isn_objs_lock);
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->next = e->prev = e;
	pthread_mutex_unlock(&isn_objs_lock);
}

void isn_objs_atfork(enum isn_fork_stage stage)
{
	struct isn_list *e, *next;
	int k;

	if (stage == ISN_FORK_PREPARE) {
		pthread_mutex_lock(&isn_objs_lock);
		return;
	}
	if (stage == ISN_FORK_CHILD) {
		/* the parent's objects are not the child's to checkpoint */
		for (k = 0; k < ISN_OBJ_NKINDS; k++) {
			for (e = isn_objs[k].next; e != &isn_objs[k];
			     e = next) {
				next = e->next;
				e->next = e->prev = e;
			}
			isn_objs[k].next = isn_objs[k].prev = &isn_objs[k];
		}
	}
	pthread_mutex_unlock(&isn_objs_lock);
}
