/* SPDX-License-Identifier: MIT */
/* The ibsnap command line: one file per command. */
#ifndef IBSNAP_CLI_H
#define IBSNAP_CLI_H

#define IBSNAP_VERSION "0.1.0"

/* ibsnap run [--fake] [--] CMD ARGS...: execs CMD, returns only on error. */
int isn_cmd_run(int argc, char **argv);

#endif /* IBSNAP_CLI_H */
