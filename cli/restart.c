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
	fputs("usage: ibsnap restart --dir DIR [--stage FAST] [--ckpt N] "
	      "[--coord HOST:PORT]\n"
	      "                      [--dry-run]\n"
	      "\n"
	      "Restores this host's part of the job checkpointed into DIR "
	      "(DIR/HOST),\n"
	      "waits for the job and exits with its status.  Needs CRIU.\n"
	      "It takes the newest checkpoint that is whole here: with "
	      "--stage (as given\n"
	      "to ibsnap checkpoint), from FAST if FAST has it, else from "
	      "DIR; a copy\n"
	      "that was not completed is never taken, nor an incremental "
	      "image whose\n"
	      "chain of parent images is not whole in that tier, nor a "
	      "checkpoint with\n"
	      "a tree of the job on this host missing or at another "
	      "checkpoint.  When\n"
	      "another host's restart began restoring the job from "
	      "checkpoint K, this\n"
	      "host takes K (or refuses, saying what to do, if K is not "
	      "whole here).\n"
	      "--ckpt N takes checkpoint N or refuses.  --dry-run prints "
	      "the trees it\n"
	      "would restore (then why others were passed over) and exits; "
	      "it does not\n"
	      "ask the coordinator.\n",
	      out);
}

/*
 * Open the restore of the tree in @treedir at the coordinator (JOB_OPEN,
 * RESTORE, with @flags).  0, or -errno: printed, except a restore of
 * another checkpoint under way when asked for (ISN_JOB_ASK_CKPT): -EBUSY
 * with ax->busy_ckpt and ax->busy_host set.
 */
static int restore_open(struct isn_agent_ctx *ax, const char *treedir,
			const char *coord, bool quiet, uint32_t flags)
{
	memset(ax, 0, sizeof(*ax));
	ax->sock = -1;
	ax->restart = true;
	ax->quiet = quiet;
	isn_hostname(ax->host, sizeof(ax->host));
	if (isn_meta_read(ax, treedir) || isn_coord_addr(coord, &ax->addr))
		return -EINVAL;
	ax->may_start = !coord && !getenv("IBSNAP_COORD");
	return isn_agent_open(ax, ISN_JOB_RESTORE | ISN_JOB_REATTACH | flags,
			      ax->nranks, ax->ckpt);
}

/* Restore the opened tree; @back: written (and closed) once the tree runs
 * again (-1: none).  Serve as its agent; the exit status. */
static int restore_run(struct isn_agent_ctx *ax, const char *treedir, int back)
{
	char why[ISN_TEXT_MAX];
	uint32_t *gone;

	if (!ax->quiet) {
		printf("ibsnap restart: job '%s', checkpoint %u, %u ranks\n",
		       ax->job, ax->ckpt, ax->nranks);
		fflush(stdout);
	}
	if (isn_criu_restore(ax, treedir, why, sizeof(why))) {
		fprintf(stderr, "ibsnap restart: %s (see %s/restore.log)\n",
			why, treedir);
		return 1;
	}
	/* it was dumped disarmed: from now on it dies with us */
	if (isn_agent_arm_init(ax, true))
		fprintf(stderr, "ibsnap restart: the restored init did not "
				"answer\n");
	gone = calloc(ax->nclients + 1, sizeof(*gone));
	if (gone && isn_agent_wake(ax, ISN_WAKE_NEW_INCARNATION, NULL, 0, gone))
		fprintf(stderr, "ibsnap restart: some restored processes "
				"could not be woken\n");
	free(gone);
	if (back >= 0) {
		if (write(back, "r", 1) != 1)
			perror("ibsnap restart: pipe");
		close(back);
	}
	return isn_agent_loop(ax);
}

static int restore_tree(const char *treedir, const char *coord, bool quiet,
			int back)
{
	struct isn_agent_ctx ax;

	if (restore_open(&ax, treedir, coord, quiet, 0))
		return 1;
	return restore_run(&ax, treedir, back);
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

/* The tiers to restore from: the stage (fastest) first, then DIR */
struct tiers {
	const char *v[2];
	int n;
	const char *host;
	const char *dir, *stage;
};

/* "DIR" or "FAST or DIR", for messages */
static const char *tiers_text(const struct tiers *ts, char *out, size_t len)
{
	snprintf(out, len, "%s%s%s", ts->stage ? ts->stage : "",
		 ts->stage ? " or " : "", ts->dir);
	return out;
}

/* This host's newest whole checkpoint, as text ("none" if it has none) */
static const char *newest_text(const struct tiers *ts, char *out, size_t len)
{
	static struct isn_tree scratch[64];
	int tier, n = isn_pick_image_at(ts->v, ts->n, ts->host, 0, scratch, 64,
					&tier, NULL);

	if (n)
		snprintf(out, len, "%u", scratch[0].ckpt);
	else
		snprintf(out, len, "none");
	return out;
}

/* --ckpt @want is not whole on this host: why, and exit status 1 */
static int ckpt_refused(const struct tiers *ts, uint32_t want)
{
	char where[2 * PATH_MAX + 8], newest[16];

	tiers_text(ts, where, sizeof(where));
	newest_text(ts, newest, sizeof(newest));
	if (isn_ckpt_seen(ts->v, ts->n, ts->host, want))
		fprintf(stderr,
			"ibsnap restart: checkpoint %u is not whole for host "
			"%s in %s (see above; newest whole here: %s): "
			"refused\n",
			want, ts->host, where, newest);
	else
		fprintf(stderr,
			"ibsnap restart: no image of checkpoint %u of host %s "
			"in %s (newest whole here: %s): refused\n",
			want, ts->host, where, newest);
	return 1;
}

/*
 * The job is being restored from checkpoint @busy (begun by @from's
 * restart): this host takes it too if it holds it whole (into @t, the new
 * count), unless --ckpt asked for another (@want); else 0, saying what to
 * do.
 */
static int take_busy(const struct tiers *ts, const char *job, uint32_t busy,
		     const char *from, uint32_t want, struct isn_tree *t,
		     int *tier)
{
	char newest[16], *why_text = NULL;
	size_t why_len = 0;
	FILE *why;
	int n;

	newest_text(ts, newest, sizeof(newest));
	why = open_memstream(&why_text, &why_len);
	n = isn_pick_image_at(ts->v, ts->n, ts->host, busy, t, 64, tier, why);
	if (why)
		fclose(why);
	if (want) {
		fprintf(stderr,
			"ibsnap restart: job '%s' is being restored from "
			"checkpoint %u (started from host %s), not from "
			"checkpoint %u (--ckpt): %s\n",
			job, busy, from, want,
			n ? "restart this host without --ckpt (or with the "
			    "same checkpoint), or stop the job's restarts on "
			    "the other hosts and restart every host with the "
			    "same --ckpt" :
			    "stop the job's restarts on the other hosts, then "
			    "restart every host with the same --ckpt");
		n = 0;
	} else if (n) {
		printf("ibsnap restart: job '%s' is being restored from "
		       "checkpoint %u (started from host %s): this host takes "
		       "it too (newest whole here: %s)\n",
		       job, busy, from, newest);
		fflush(stdout);
	} else {
		if (why_text)
			fputs(why_text, stderr);
		if (strcmp(newest, "none"))
			fprintf(stderr,
				"ibsnap restart: job '%s' is being restored "
				"from checkpoint %u (started from host %s); "
				"this host has no whole image of checkpoint %u "
				"(newest whole here: %s): stop the job's "
				"restarts on the other hosts, then restart "
				"every host with --ckpt %s (--dry-run --ckpt "
				"%s tells whether a host has it)\n",
				job, busy, from, busy, newest, newest, newest);
		else
			fprintf(stderr,
				"ibsnap restart: job '%s' is being restored "
				"from checkpoint %u (started from host %s); "
				"this host has no whole image of checkpoint "
				"%u, nor of any other: refused\n",
				job, busy, from, busy);
	}
	free(why_text);
	return n;
}

/* @treedir is not an image of job @job: said so */
static bool other_job(const char *treedir, const char *job)
{
	struct isn_agent_ctx a;
	bool other;

	memset(&a, 0, sizeof(a));
	other = isn_meta_read(&a, treedir) || strcmp(a.job, job);
	if (other)
		fprintf(stderr,
			"ibsnap restart: %s is not of job '%s': refused "
			"(restore from a directory of one job)\n",
			treedir, job);
	free(a.clients);
	free(a.inos);
	return other;
}

/*
 * Open the restore of the first tree of @t: the coordinator takes it, or
 * says that the job is being restored from another checkpoint, which this
 * host then takes if it can (at most twice: a restore that ended in
 * between and another begun).  0 with *@ax open and @t, *@n the trees to
 * restore; else 1, said why.
 */
static int open_first(const struct tiers *ts, const char *coord, uint32_t want,
		      struct isn_tree *t, int *n, int *tier,
		      struct isn_agent_ctx *ax)
{
	char job[ISN_NAME_MAX];
	int tries, ret;

	for (tries = 0; tries < 3; tries++) {
		ret = restore_open(ax, t[0].path, coord, false,
				   ISN_JOB_ASK_CKPT);
		if (ret != -EBUSY || !ax->busy_ckpt)
			break;
		isn_strlcpy(job, ax->job, sizeof(job));
		free(ax->clients);
		free(ax->inos);
		isn_rx_free(&ax->rx);
		*n = take_busy(ts, job, ax->busy_ckpt, ax->busy_host, want, t,
			       tier);
		if (!*n || one_job(t, *n) || other_job(t[0].path, job))
			return 1;
	}
	if (ret == -EBUSY && ax->busy_ckpt)
		fprintf(stderr, "ibsnap restart: the job's restore changed "
				"checkpoints while this host joined it: try "
				"again\n");
	return ret ? 1 : 0;
}

int isn_cmd_restart(int argc, char **argv)
{
	const char *dir = NULL, *coord = NULL, *stage = NULL;
	char host[ISN_NAME_MAX], why[ISN_TEXT_MAX], *end;
	static struct isn_tree t[64];
	struct isn_agent_ctx first;
	struct tiers ts = { .n = 0 };
	char *paths[64], c;
	int i, n, tier, status, back[2], ret = 0;
	unsigned long want = 0;
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
		} else if (!strcmp(argv[i], "--ckpt") && i + 1 < argc) {
			errno = 0;
			want = strtoul(argv[++i], &end, 10);
			if (errno || *end || !want || want > UINT32_MAX ||
			    argv[i][0] == '-') {
				fprintf(stderr,
					"ibsnap restart: --ckpt %s: not a "
					"checkpoint id (1 or more)\n",
					argv[i]);
				return 2;
			}
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
	ts.host = host;
	ts.dir = dir;
	ts.stage = stage;
	if (stage)
		ts.v[ts.n++] = stage; /* the fastest first */
	ts.v[ts.n++] = dir;
	/* with --dry-run, why trees were passed over follows the choice */
	if (dry)
		skipped = open_memstream(&skip_text, &skip_len);
	n = isn_pick_image_at(ts.v, ts.n, host, (uint32_t)want, t, 64, &tier,
			      skipped ? skipped : stderr);
	if (skipped) {
		fclose(skipped);
		if (!n && skip_len)
			fputs(skip_text, stderr);
	}
	if (!n && want) {
		free(skip_text);
		return ckpt_refused(&ts, (uint32_t)want);
	}
	if (!n) {
		free(skip_text);
		for (i = 0; i < ts.n; i++)
			explain(ts.v[i], host);
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
		printf("checkpoint %u from %s (%s)\n", t[0].ckpt, ts.v[tier],
		       stage && tier == 0 ? "stage" : "dir");
		for (i = 0; i < n; i++)
			printf("%s\n", t[i].path);
		if (skip_text)
			fputs(skip_text, stdout);
		free(skip_text);
		return 0;
	}
	/* the first tree's open settles the checkpoint: the one the job is
	 * being restored from if another host began, else this one */
	if (open_first(&ts, coord, (uint32_t)want, t, &n, &tier, &first))
		return 1;
	if (n == 1)
		return restore_run(&first, t[0].path, -1);
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
			if (i == 0)
				_exit(restore_run(&first, t[0].path, back[1]));
			close(first.sock); /* the first tree's, not ours */
			_exit(restore_tree(t[i].path, coord, true, back[1]));
		}
	}
	close(first.sock);
	free(first.clients);
	free(first.inos);
	isn_rx_free(&first.rx);
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
