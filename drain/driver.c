// SPDX-License-Identifier: MIT
/*
 * The checkpoint handlers (include/ibsnap/ckpt.h) and their registration.
 */
#include <errno.h>
#include <time.h>

#include "ckpt.h"

struct isn_ck_state isn_ckst;
pthread_mutex_t isn_ckst_lock = PTHREAD_MUTEX_INITIALIZER;

static const struct isn_ckpt_handlers *_Atomic ck_handlers;

void isn_ckpt_register(const struct isn_ckpt_handlers *h)
{
	atomic_store(&ck_handlers, h);
}

const struct isn_ckpt_handlers *isn_ckpt_handlers(void)
{
	return atomic_load(&ck_handlers);
}

uint64_t isn_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
