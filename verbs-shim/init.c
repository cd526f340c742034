/* SPDX-License-Identifier: MIT */
/*
 * Process start-up of the shim: which backend (IBSNAP_BACKEND), whether IDs
 * are remapped for testing (IBSNAP_TEST_REMAP), and, under ibsnap run,
 * joining the job's coordinator.  Done once, at the first
 * ibv_get_device_list(): a process that never uses verbs pays nothing.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

struct isn_shim isn_g;
_Atomic uint32_t isn_slow;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* The coordinator client (coord/client.h), when it is linked in. */
__attribute__((weak)) int isn_coord_client_start(void);
__attribute__((weak)) void isn_coord_client_stop(void);
static int init_err;

void isn_log(const char *fmt, ...)
{
	static const char prefix[] = "ibsnap: ";
	int saved = errno;
	char buf[512];
	size_t len = sizeof(prefix) - 1;
	va_list ap;
	ssize_t r;
	int n;

	memcpy(buf, prefix, len);
	va_start(ap, fmt);
	n = vsnprintf(buf + len, sizeof(buf) - len - 1, fmt, ap);
	va_end(ap);
	if (n >= 0) {
		len += (size_t)n < sizeof(buf) - len - 1 ?
			       (size_t)n :
			       sizeof(buf) - len - 2;
		buf[len++] = '\n';
		r = write(STDERR_FILENO, buf, len);
		(void)r;
	}
	errno = saved;
}

static const struct isn_hca_ops *pick_backend(void)
{
	const char *want = getenv("IBSNAP_BACKEND");

	if (want && !strcmp(want, "fake"))
		return isn_fake_ops_load();
	if (want && !strcmp(want, "real"))
		return &isn_real_ops;
	if (want && *want) {
		isn_log("IBSNAP_BACKEND=%s: expected real or fake", want);
		errno = EINVAL;
		return NULL;
	}
	if (isn_real_num_devices() > 0)
		return &isn_real_ops;
	return isn_fake_ops_load();
}

void isn_slow_sync_xlate(void)
{
	if (isn_vid_active())
		atomic_fetch_or(&isn_slow, ISN_SLOW_XLATE);
}

static int test_remap_mode(void)
{
	const char *remap = getenv("IBSNAP_TEST_REMAP");

	if (!remap || !*remap || !strcmp(remap, "0"))
		return ISN_VID_TEST_OFF;
	if (!strcmp(remap, "1"))
		return ISN_VID_TEST_UNIFORM;
	if (!strcmp(remap, "node"))
		return ISN_VID_TEST_NODE;
	isn_log("IBSNAP_TEST_REMAP=%s: expected 1 or node", remap);
	return ISN_VID_TEST_OFF;
}

static void do_init(void)
{
	const struct isn_hca_ops *ops;

	isn_vid_init(test_remap_mode());
	isn_slow_sync_xlate();
	ops = pick_backend();
	if (!ops) {
		init_err = errno ? errno : ENODEV;
		return;
	}
	isn_g.ops = *ops;
	isn_hca_ops_fill_defaults(&isn_g.ops);
	/* under ibsnap run: join the job before the first device opens (the
	 * checkpoint handlers are registered at load, drain/driver.c) */
	if (isn_coord_client_start && isn_coord_client_start() < 0)
		isn_log("not registered with the coordinator: this process "
			"cannot be checkpointed");
}

__attribute__((destructor)) static void shim_fini(void)
{
	if (isn_coord_client_stop)
		isn_coord_client_stop();
}

int isn_init(void)
{
	pthread_once(&init_once, do_init);
	return init_err;
}
