/* SPDX-License-Identifier: MIT */
/*
 * ibsnap restart --dir DIR: restore this host's part of a job, the trees
 * in DIR/HOST (one per ibsnap run of the job on this host), tell the restored
 * processes that they are a new incarnation and where the coordinator is,
 * then serve as their host agent until the job ends; exit with the job's
 * status (the first non-zero of every tree's).  Several hosts: each runs
 * ibsnap restart against the same coordinator.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "wake.h"

struct tree {
	char path[PATH_MAX];
	uint32_t ckpt;
};

static void usage(FILE *out)
{
	fputs("usage: ibsnap restart --dir DIR [--coord HOST:PORT]\n"
	      "\n"
	      "Restores this host's part of the job checkpointed into DIR "
	      "(DIR/HOST),\n"
	      "waits for the job and exits with its status.  Needs CRIU.\n",
	      out);
}

/* The trees of DIR/HOST that hold the newest checkpoint; their number. */
static int find_trees(const char *hostdir, struct tree *t, int max)
{
	struct isn_agent_ctx ax;
	struct dirent *e;
	uint32_t newest = 0;
	int n = 0, i, k;
	DIR *d = opendir(hostdir);

	while (d && n < max && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		memset(&ax, 0, sizeof(ax));
		if (snprintf(t[n].path, sizeof(t[n].path), "%s/%s", hostdir,
			     e->d_name) >= (int)sizeof(t[n].path))
			continue;
		if (isn_meta_read(&ax, t[n].path) == 0) {
			t[n].ckpt = ax.ckpt;
			newest = ax.ckpt > newest ? ax.ckpt : newest;
			n++;
		}
		free(ax.clients);
		free(ax.inos);
	}
	if (d)
		closedir(d);
	for (i = 0, k = 0; i < n; i++) {
		if (t[i].ckpt == newest)
			t[k++] = t[i];
		else
			fprintf(stderr,
				"ibsnap restart: %s is of checkpoint %u, "
				"not %u: left alone\n",
				t[i].path, t[i].ckpt, newest);
	}
	return k;
}

/* @back: written (and closed) once the tree runs again; -1: none */
static int restore_tree(const char *treedir, const char *coord, bool quiet,
			int back)
{
	struct isn_agent_ctx ax = { .sock = -1,
				    .restart = true,
				    .quiet = quiet };
	char why[ISN_TEXT_MAX];
	uint32_t *gone;

	isn_hostname(ax.host, sizeof(ax.host));
	if (isn_meta_read(&ax, treedir) || isn_coord_addr(coord, &ax.addr))
		return 1;
	ax.may_start = !coord && !getenv("IBSNAP_COORD");
	if (isn_agent_open(&ax, ISN_JOB_RESTORE | ISN_JOB_REATTACH, ax.nranks,
			   ax.ckpt))
		return 1;
	if (!quiet) {
		printf("ibsnap restart: job '%s', checkpoint %u, %u ranks\n",
		       ax.job, ax.ckpt, ax.nranks);
		fflush(stdout);
	}
	if (isn_criu_restore(&ax, treedir, why, sizeof(why))) {
		fprintf(stderr, "ibsnap restart: %s (see %s/restore.log)\n",
			why, treedir);
		return 1;
	}
	/* it was dumped disarmed: from now on it dies with us */
	if (isn_agent_arm_init(&ax, true))
		fprintf(stderr, "ibsnap restart: the restored init did not "
				"answer\n");
	gone = calloc(ax.nclients + 1, sizeof(*gone));
	if (gone &&
	    isn_agent_wake(&ax, ISN_WAKE_NEW_INCARNATION, NULL, 0, gone))
		fprintf(stderr, "ibsnap restart: some restored processes "
				"could not be woken\n");
	free(gone);
	if (back >= 0) {
		if (write(back, "r", 1) != 1)
			perror("ibsnap restart: pipe");
		close(back);
	}
	return isn_agent_loop(&ax);
}

int isn_cmd_restart(int argc, char **argv)
{
	const char *dir = NULL, *coord = NULL;
	char host[ISN_NAME_MAX], hostdir[PATH_MAX], why[ISN_TEXT_MAX];
	struct tree t[64];
	char *paths[64], c;
	int i, n, status, back[2], ret = 0;
	pid_t pid;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
			dir = argv[++i];
		} else if (!strcmp(argv[i], "--coord") && i + 1 < argc) {
			coord = argv[++i];
		} else {
			usage(strcmp(argv[i], "-h") && strcmp(argv[i], "--"
								       "help") ?
				      stderr :
				      stdout);
			return strcmp(argv[i], "-h") && strcmp(argv[i], "--"
									"hel"
									"p") ?
				       2 :
				       0;
		}
	}
	if (!dir) {
		usage(stderr);
		return 2;
	}
	if (isn_criu_check(why, sizeof(why))) {
		fprintf(stderr,
			"ibsnap restart: CRIU cannot run on this host (%s): a "
			"restart needs CRIU\n",
			why);
		return 1;
	}
	isn_hostname(host, sizeof(host));
	snprintf(hostdir, sizeof(hostdir), "%s/%s", dir, host);
	n = find_trees(hostdir, t, 64);
	if (!n) {
		fprintf(stderr, "ibsnap restart: no image of host %s in %s\n",
			host, dir);
		return 1;
	}
	if (n == 1)
		return restore_tree(t[0].path, coord, false, -1);
	/* hold the TCP connections between the trees until all are back */
	for (i = 0; i < n; i++)
		paths[i] = t[i].path;
	if (pipe(back)) {
		perror("ibsnap restart: pipe");
		return 1;
	}
	isn_tcp_hold(paths, n);
	for (i = 0; i < n; i++) {
		pid = fork();
		if (pid == 0) {
			close(back[0]);
			_exit(restore_tree(t[i].path, coord, i > 0, back[1]));
		}
	}
	close(back[1]);
	/* a byte from each tree restored, or EOF: every child has one */
	for (i = 0; i < n && read(back[0], &c, 1) == 1; i++)
		;
	close(back[0]);
	isn_tcp_release();
	while ((pid = wait(&status)) > 0)
		if (!ret)
			ret = WIFEXITED(status) ? WEXITSTATUS(status) :
						  128 + WTERMSIG(status);
	return ret;
}
