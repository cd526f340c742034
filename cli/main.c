/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
	fputs("usage: ibsnap COMMAND [ARGS]\n"
	      "\n"
	      "Commands:\n"
	      "  run [--fake] [--] CMD ARGS...  run CMD with its RDMA "
	      "virtualized\n"
	      "                                 (ibsnap run --help: options, "
	      "environment)\n"
	      "  help                           this text\n"
	      "\n"
	      "Options:\n"
	      "  --version                      print the version\n"
	      "  -h, --help                     this text\n",
	      out);
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (!cmd) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") ||
	    !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
		printf("ibsnap %s\n", IBSNAP_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "run"))
		return isn_cmd_run(argc - 1, argv + 1);
	fprintf(stderr, "ibsnap: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
