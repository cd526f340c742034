/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
	fputs("usage: ibsnap COMMAND [ARGS]\n"
	      "\n"
	      "Commands:\n"
	      "  run [OPTIONS] [--] CMD ARGS...  run CMD with its RDMA "
	      "virtualized,\n"
	      "                                  as part of a checkpointable "
	      "job\n"
	      "  checkpoint [--dir DIR] [--job J] [--stop] [--no-dump]\n"
	      "                                  checkpoint a job\n"
	      "  restart --dir DIR               restore this host's part of "
	      "a job\n"
	      "  status [--json] [--job J]       jobs, processes, phase, "
	      "last checkpoint\n"
	      "  help                            this text\n"
	      "\n"
	      "Each command's --help tells more.  The coordinator is the "
	      "host's\n"
	      "ibsnapd (started by ibsnap run when none runs) or --coord "
	      "HOST:PORT.\n"
	      "\n"
	      "Options:\n"
	      "  --version                       print the version\n"
	      "  -h, --help                      this text\n",
	      out);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int argc, char **argv);
	} cmds[] = {
		{ "run", isn_cmd_run },
		{ "checkpoint", isn_cmd_checkpoint },
		{ "restart", isn_cmd_restart },
		{ "status", isn_cmd_status },
		{ "__init", isn_cmd_init },
	};
	const char *cmd = argc > 1 ? argv[1] : NULL;
	size_t i;

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
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(cmd, cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "ibsnap: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
