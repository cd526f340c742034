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

static void usage(FILE *out)
{
	fputs("usage: ibsnap restart --dir DIR [--stage FAST] [--coord "
	      "HOST:PORT]\n"
	      "                      [--dry-run]\n"
	      "\n"
	      "Restores this host's part of the job checkpointed into DIR "
	      "(DIR/HOST),\n"
	      "waits for the job and exits with its status.  Needs CRIU.\n"
	      "With --stage (as given to ibsnap checkpoint), the newest "
	      "complete\n"
	      "checkpoint is taken from FAST if FAST has it, else from "
	      "DIR; a copy\n"
	      "that was not completed is never taken, nor an incremental "
	      "image whose\n"
	      "chain of parent images is not whole in that tier, nor a "
	      "checkpoint with\n"
	      "a tree of the job on this host missing or at another "
	      "checkpoint.  --dry-run "
	      "prints the\n"
	      "trees it would restore (then why others were passed over) and "
	      "exits.\n",
	      out);
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

/* Nothing to restore from @tier: say why of each tree of TIER/@host. */
static void explain(const char *tier, const char *host)
{
	char hostdir[PATH_MAX], path[PATH_MAX + 256];
	struct isn_agent_ctx ax;
	struct dirent *e;
	DIR *d;

	snprintf(hostdir, sizeof(hostdir), "%s/%s", tier, host);
	d = opendir(hostdir);
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", hostdir, e->d_name);
		memset(&ax, 0, sizeof(ax));
		if (isn_meta_read(&ax, path))
			fprintf(stderr,
				"ibsnap restart: %s: no valid ibsnap.meta "
				"(damaged, or not an image): refused\n",
				path);
		else if (!isn_manifest_complete(hostdir, e->d_name, ax.ckpt))
			fprintf(stderr,
				"ibsnap restart: %s: checkpoint %u is not "
				"complete in %s/.manifest: refused\n",
				path, ax.ckpt, hostdir);
		else
			fprintf(stderr,
				"ibsnap restart: %s: checkpoint %u is not "
				"whole in %s: a tree of the job on this host "
				"is missing there, or at another checkpoint "
				"(the trees restart from one checkpoint, see "
				"above): refused\n",
				path, ax.ckpt, hostdir);
		free(ax.clients);
		free(ax.inos);
	}
	if (d)
		closedir(d);
}

/*
 * The trees to restore are of one job (one name, one token): a directory
 * that holds another job's image at the same checkpoint is refused.
 */
static int one_job(const struct isn_tree *t, int n)
{
	struct isn_agent_ctx a, b;
	int i, ret = 0;

	memset(&a, 0, sizeof(a));
	if (isn_meta_read(&a, t[0].path))
		ret = -EINVAL;
	for (i = 1; i < n && !ret; i++) {
		memset(&b, 0, sizeof(b));
		if (isn_meta_read(&b, t[i].path) || strcmp(a.job, b.job) ||
		    !isn_token_eq(a.token, b.token)) {
			fprintf(stderr,
				"ibsnap restart: %s is of job '%s', %s of job "
				"'%s'%s: refused (restore from a directory of "
				"one job)\n",
				t[0].path, a.job, t[i].path, b.job,
				strcmp(a.job, b.job) ? "" :
						       " with another token");
			ret = -EINVAL;
		}
		free(b.clients);
		free(b.inos);
	}
	free(a.clients);
	free(a.inos);
	return ret;
}

int isn_cmd_restart(int argc, char **argv)
{
	const char *dir = NULL, *coord = NULL, *stage = NULL, *tiers[2];
	char host[ISN_NAME_MAX], why[ISN_TEXT_MAX];
	static struct isn_tree t[64];
	char *paths[64], c;
	int i, n, ntiers = 0, tier, status, back[2], ret = 0;
	bool dry = false;
	FILE *skipped = NULL;
	char *skip_text = NULL;
	size_t skip_len = 0;
	pid_t pid;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
			dir = argv[++i];
		} else if (!strcmp(argv[i], "--stage") && i + 1 < argc) {
			stage = argv[++i];
		} else if (!strcmp(argv[i], "--dry-run")) {
			dry = true;
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
	if (!dry && isn_criu_check(why, sizeof(why))) {
		fprintf(stderr,
			"ibsnap restart: CRIU cannot run on this host (%s): a "
			"restart needs CRIU\n",
			why);
		return 1;
	}
	isn_hostname(host, sizeof(host));
	if (stage)
		tiers[ntiers++] = stage; /* the fastest first */
	tiers[ntiers++] = dir;
	/* with --dry-run, why trees were passed over follows the choice */
	if (dry)
		skipped = open_memstream(&skip_text, &skip_len);
	n = isn_pick_image_why(tiers, ntiers, host, t, 64, &tier,
			       skipped ? skipped : stderr);
	if (skipped) {
		fclose(skipped);
		if (!n && skip_len)
			fputs(skip_text, stderr);
	}
	if (!n) {
		free(skip_text);
		for (i = 0; i < ntiers; i++)
			explain(tiers[i], host);
		fprintf(stderr,
			"ibsnap restart: no complete image of host %s in "
			"%s%s%s\n",
			host, dir, stage ? " or " : "", stage ? stage : "");
		return 1;
	}
	if (one_job(t, n)) {
		free(skip_text);
		return 1;
	}
	if (dry) {
		printf("checkpoint %u from %s (%s)\n", t[0].ckpt, tiers[tier],
		       stage && tier == 0 ? "stage" : "dir");
		for (i = 0; i < n; i++)
			printf("%s\n", t[i].path);
		if (skip_text)
			fputs(skip_text, stdout);
		free(skip_text);
		return 0;
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
