/* SPDX-License-Identifier: MIT */
/*
 * Objects that events name.  The event thread writes an object's id, never
 * its address, into the application's channel and async fds: an event still
 * queued when its object is destroyed then names nothing and is dropped, as
 * the kernel drops queued events of a destroyed object.  Counting events as
 * they are handed out, under the same lock, lets destroy wait for their acks
 * exactly as rdma-core does.  Not on the post/poll path.
 */
#include "shim.h"

#define REG_BUCKETS 256

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct isn_reg_node *reg_bucket[REG_BUCKETS];
static uint64_t reg_next_id = 1;

void isn_reg_add(struct isn_reg_node *n, enum isn_kind kind)
{
	struct isn_reg_node **b;

	pthread_mutex_lock(&reg_lock);
	n->id = reg_next_id++;
	n->kind = kind;
	n->comp_reported = 0;
	n->async_reported = 0;
	b = &reg_bucket[n->id % REG_BUCKETS];
	n->next = *b;
	*b = n;
	pthread_mutex_unlock(&reg_lock);
}

void isn_reg_del(struct isn_reg_node *n)
{
	struct isn_reg_node **p;

	pthread_mutex_lock(&reg_lock);
	for (p = &reg_bucket[n->id % REG_BUCKETS]; *p; p = &(*p)->next) {
		if (*p == n) {
			*p = n->next;
			break;
		}
	}
	pthread_mutex_unlock(&reg_lock);
}

struct isn_reg_node *isn_reg_claim(uint64_t id, enum isn_kind kind, bool async)
{
	struct isn_reg_node *n;

	pthread_mutex_lock(&reg_lock);
	for (n = reg_bucket[id % REG_BUCKETS]; n; n = n->next) {
		if (n->id == id && n->kind == kind) {
			if (async)
				n->async_reported++;
			else
				n->comp_reported++;
			break;
		}
	}
	pthread_mutex_unlock(&reg_lock);
	return n;
}

void isn_wait_acks(pthread_mutex_t *m, pthread_cond_t *c,
		   const uint32_t *completed, uint32_t reported)
{
	pthread_mutex_lock(m);
	while (*completed != reported)
		pthread_cond_wait(c, m);
	pthread_mutex_unlock(m);
}

void isn_reg_atfork(enum isn_fork_stage stage)
{
	if (stage == ISN_FORK_PREPARE)
		pthread_mutex_lock(&reg_lock);
	else
		pthread_mutex_unlock(&reg_lock);
}
