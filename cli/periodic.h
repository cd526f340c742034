/* SPDX-License-Identifier: MIT */
/*
 * Periodic checkpoints and checkpoints on a signal: ibsnap run --dir DIR
 * [--interval T] [--keep K] [--stage FAST] [--predump [--full-every M]]
 * [--stop-on-signal] (periodic.c).
 */
#ifndef IBSNAP_CLI_PERIODIC_H
#define IBSNAP_CLI_PERIODIC_H

#include <stdbool.h>

/* checkpoint N of a periodic run: DIR/ckpt-N/HOST/TREE (and FAST/ckpt-N) */
#define ISN_CKPT_PREFIX "ckpt-"

/* ibsnap run's exit status when --stop-on-signal ended the job after a
 * complete checkpoint (EX_TEMPFAIL: restart it to go on) */
#define ISN_EXIT_STOPPED 75

struct isn_periodic {
	const char *dir, *stage;
	double interval; /* seconds; 0: on SIGUSR1 only */
	int keep; /* complete checkpoints kept per tier; 0: all */
	bool stop_on_signal;
	bool predump; /* ibsnap checkpoint --predump */
	/* with predump: a tree's pre-dump chains on its previous image, a
	 * chain holding at most this many images (1: each one full) */
	unsigned int full_every;
};

/* --full-every's default: a chain of at most 4 images (1 full + 3 that
 * hold what changed), so a restore reads at most 4 images per tree */
#define ISN_FULL_EVERY 4

/* ---- retention (retain.c) ---- */

#define ISN_TIERS_MAX 2 /* DIR, FAST */
#define ISN_RM_SUFFIX ".rm" /* .ckpt-N.rm: being removed */

/* N of "ckpt-N@suffix" (N all digits), else 0 */
unsigned int isn_ckpt_seq(const char *name, const char *suffix);
/* Every host part of TIER/ckpt-N is complete (and there is one);
 * *@copying (if given): a part's copy is, or was, under way. */
bool isn_ckpt_complete(const char *ckdir, bool *copying);
/* Keep in each of @tiers the newest @keep complete checkpoints (0: all),
 * every newer one, every one that a kept image chains on; remove the
 * rest (see retain.c); @last_ok: the last checkpoint that succeeded. */
void isn_prune(const char *const *tiers, int ntiers, int keep,
	       unsigned int last_ok);

/* "30", "30s", "1.5m", "2h": seconds in *@sec; 0, or -EINVAL. */
int isn_parse_interval(const char *s, double *sec);

/*
 * Fork the host agent, @agent(@arg, FD): it writes its job's coordinator,
 * name and token to FD once it joined (see isn_periodic_joined) and returns
 * the job's exit status; take checkpoints as @p says until it exits.
 * ibsnap run's exit status.
 */
int isn_periodic_run(const struct isn_periodic *p,
		     int (*agent)(void *arg, int fd), void *arg);
/* In the agent: tell the driver (FD) the job it joined, from the
 * environment set_job_env wrote (nothing: not checkpointable); closes FD. */
void isn_periodic_joined(int fd, bool joined);

/*
 * HOSTDIR holds a complete checkpoint: a tree its manifest (if any) calls
 * complete, and no line of it that says otherwise; 1, else 0, and -1 if a
 * line says copying (a flusher is at it, or died at it) (stage.c).
 */
int isn_hostdir_complete(const char *hostdir);

#endif /* IBSNAP_CLI_PERIODIC_H */
