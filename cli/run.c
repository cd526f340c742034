/* SPDX-License-Identifier: MIT */
/*
 * ibsnap run: preload libibsnap.so (from ../lib next to this binary) into a
 * command; every process it starts inherits it.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void run_usage(FILE *out)
{
	fputs("usage: ibsnap run [--fake] [--] CMD [ARGS...]\n"
	      "\n"
	      "Runs CMD (and every process it starts) with libibsnap.so "
	      "preloaded:\n"
	      "the program's verbs devices, objects and IDs become virtual, "
	      "backed\n"
	      "by a real HCA (rdma-core) or by the fake HCA.\n"
	      "\n"
	      "Options:\n"
	      "  --fake       use the fake HCA (same as IBSNAP_BACKEND=fake)\n"
	      "  -h, --help   this text\n"
	      "\n"
	      "Environment:\n"
	      "  IBSNAP_BACKEND=real|fake  HCA under the shim; default: real "
	      "if\n"
	      "                            rdma-core lists a device, else "
	      "fake\n"
	      "  IBSNAP_TEST_REMAP=1       test mode: behave as if restarted; "
	      "every\n"
	      "                            ID handed out is offset (QPN/SRQN "
	      "+0x1000,\n"
	      "                            lkey/rkey ^0x5a5a00, LID +100, GID "
	      "last\n"
	      "                            byte ^0x55) and translated back; "
	      "peers\n"
	      "                            must run in the same mode\n"
	      "Fake HCA (IBSNAP_BACKEND=fake):\n"
	      "  IBSNAP_FABRIC=DIR         directory of the shared fabric "
	      "(default\n"
	      "                            /dev/shm/ibsnap-UID); processes "
	      "with the\n"
	      "                            same DIR reach each other\n"
	      "  IBSNAP_FAKE_DEVICES=N     devices fake0..fake(N-1) (default "
	      "1)\n"
	      "  IBSNAP_FAKE_NODE=NAME     simulated node this process is on, "
	      "each\n"
	      "                            with its own LID/GID (default "
	      "host)\n"
	      "  IBSNAP_FAKE_LINK=eth|ib   link layer: RoCE (default) or "
	      "InfiniBand\n"
	      "  IBSNAP_FAKE_MTU=N         active MTU: 256..4096 (default "
	      "4096)\n"
	      "  IBSNAP_FAKE_FAULTS=SPEC   fault injection, comma-separated\n"
	      "                            "
	      "drop=P,dup=P,corrupt=P,delay_us=N,seed=N\n"
	      "  IBSNAP_FAKE_SPIN_US=N     progress thread spin before "
	      "sleeping\n"
	      "                            (microseconds, default 50)\n",
	      out);
}

/* The absolute path of libibsnap.so: ../lib/ relative to this binary. */
static int shim_path(char *out, size_t len)
{
	char exe[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n < 0)
		return -1;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return -1;
	*slash = '\0';
	if (snprintf(out, len, "%s/../lib/libibsnap.so", exe) >= (int)len)
		return -1;
	if (!realpath(out, exe))
		return -1;
	snprintf(out, len, "%s", exe);
	return 0;
}

/* LD_PRELOAD = [ASan runtime:]shim[:what was there]. */
static int set_preload(const char *shim)
{
	const char *old = getenv("LD_PRELOAD");
	const char *asan = "";
	char *val;
	int ret;

#ifdef ISN_ASAN_RT
	/* a sanitized shim needs the ASan runtime loaded before it */
	asan = ISN_ASAN_RT ":";
	setenv("ASAN_OPTIONS", "detect_leaks=0", 0);
#endif
	if (old && *old)
		ret = asprintf(&val, "%s%s:%s", asan, shim, old);
	else
		ret = asprintf(&val, "%s%s", asan, shim);
	if (ret < 0)
		return -1;
	ret = setenv("LD_PRELOAD", val, 1);
	free(val);
	return ret;
}

int isn_cmd_run(int argc, char **argv)
{
	char shim[PATH_MAX];
	int i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		}
		if (!strcmp(argv[i], "--fake")) {
			setenv("IBSNAP_BACKEND", "fake", 1);
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--"
								      "help")) {
			run_usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "ibsnap run: unknown option '%s'\n",
				argv[i]);
			run_usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		run_usage(stderr);
		return 2;
	}
	if (shim_path(shim, sizeof(shim))) {
		fprintf(stderr, "ibsnap run: cannot find libibsnap.so: %s\n",
			strerror(errno));
		return 1;
	}
	if (set_preload(shim)) {
		perror("ibsnap run: LD_PRELOAD");
		return 1;
	}
	execvp(argv[i], argv + i);
	fprintf(stderr, "ibsnap run: %s: %s\n", argv[i], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}
