/* SPDX-License-Identifier: MIT */
/*
 * Periodic checkpoints and checkpoints on a signal: ibsnap run --dir DIR
 * [--interval T] [--keep K] [--stage FAST] [--predump [--full-every M]]
 * [--stop-on-signal].
 *
 * ibsnap run then stays the process the user (or the batch system) sees,
 * the driver, and forks the host agent, which runs the job exactly as a
 * plain ibsnap run does.  The driver runs `ibsnap checkpoint --job J --dir
 * DIR/ckpt-N [--stage FAST/ckpt-N] [--predump] [--stop]` every T and on
 * SIGUSR1, one at a time, passes every other signal it forwarded before on
 * to the agent (which passes it on to the job), and after each checkpoint
 * removes what is older than the newest K complete checkpoints of each
 * tier.
 *
 * Layout: the Nth checkpoint into DIR (N counts on from the highest there)
 * is DIR/ckpt-N/HOST/TREE with its manifest DIR/ckpt-N/HOST/.manifest, and
 * FAST/ckpt-N likewise; ibsnap restart looks into TIER/HOST and every
 * TIER/ckpt-N/HOST (stage.c).  A checkpoint goes by being renamed to a
 * hidden name (restart never looks there), then deleted.
 *
 * With --predump, checkpoint N+1 of a tree chains on its checkpoint N (the
 * agent decides, criu.c: chain_parent): its pre-dump's parent is
 * ../../../../ckpt-N/HOST/TREE, so it writes only the pages dirtied since
 * N's dump; every --full-every M a chain starts again with a full image.
 * No checkpoint that a kept image chains on is removed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "periodic.h"

#define TIERS_MAX ISN_TIERS_MAX

/* ibsnap run forwarded these to the job before; SIGUSR1 is ours now */
static const int fwd_sigs[] = { SIGINT,	 SIGTERM, SIGHUP,
				SIGQUIT, SIGUSR2, SIGWINCH };

struct drv {
	const struct isn_periodic *p;
	const char *tiers[TIERS_MAX]; /* absolute: DIR, then FAST if any */
	char dir[PATH_MAX], stage[PATH_MAX];
	char self[PATH_MAX]; /* this binary, for ibsnap checkpoint */
	pid_t agent, ck;
	int status; /* the agent's exit status */
	int info_fd; /* the agent tells us the job (isn_periodic_joined) */
	char info[3 * PATH_MAX];
	size_t info_len;
	bool joined;
	unsigned int seq; /* the last ckpt-N started */
	unsigned int last_ok; /* the last that succeeded */
	const char *why; /* of the checkpoint under way */
	bool ck_stop;
	const char *want; /* a checkpoint to start: why, or NULL */
	bool want_stop;
	bool stopped; /* a --stop checkpoint succeeded: the job ends */
	double next; /* monotonic time of the next periodic checkpoint */
	/* a staged checkpoint's copy to DIR/ckpt-last_ok is under way: look
	 * at watch_at whether it is complete (then prune DIR) */
	bool watch;
	double watch_at, watch_step;
};

int isn_parse_interval(const char *s, double *sec)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || !isfinite(v) || v <= 0)
		return -EINVAL;
	if (!strcmp(end, "h"))
		v *= 3600;
	else if (!strcmp(end, "m"))
		v *= 60;
	else if (*end && strcmp(end, "s"))
		return -EINVAL;
	*sec = v;
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void prune_all(struct drv *d)
{
	isn_prune(d->tiers, d->tiers[1] ? 2 : 1, d->p->keep, d->last_ok);
}

/* The highest N of the tiers' ckpt-N (and hidden leftovers). */
static unsigned int highest_seq(struct drv *d)
{
	unsigned int max = 0, s;
	struct dirent *e;
	DIR *dd;
	int i;

	for (i = 0; i < TIERS_MAX && d->tiers[i]; i++) {
		dd = opendir(d->tiers[i]);
		while (dd && (e = readdir(dd))) {
			if (e->d_name[0] == '.')
				s = isn_ckpt_seq(e->d_name + 1, ISN_RM_SUFFIX);
			else
				s = isn_ckpt_seq(e->d_name, "");
			max = s > max ? s : max;
		}
		if (dd)
			closedir(dd);
	}
	return max;
}

/* ---- the checkpoints ---- */

static void child_signals(const sigset_t *old)
{
	sigprocmask(SIG_SETMASK, old, NULL);
}

/*
 * With --predump, tell the agents (through DIR/ckpt-N/.chain, which they
 * read at the pre-dump) that their pre-dump may chain on their tree's
 * previous image, up to --full-every images a chain.
 */
static void chain_file(struct drv *d, const char *dir)
{
	char path[PATH_MAX + 48];
	FILE *f;

	if (!d->p->predump || d->p->full_every < 2 || isn_mkdir_p(dir, 0755))
		return;
	snprintf(path, sizeof(path), "%s/" ISN_CHAIN_FILE, dir);
	f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "ibsnap run: %s: %m: a full checkpoint\n",
			path);
		return;
	}
	fprintf(f, "max %u\n", d->p->full_every);
	fclose(f);
}

static void start_ckpt(struct drv *d, const sigset_t *old)
{
	char dir[PATH_MAX + 32], stage[PATH_MAX + 32];
	char *argv[12];
	int n = 0;
	pid_t pid;

	if (d->p->interval > 0)
		d->next = now_s() + d->p->interval;
	d->watch = false; /* this one prunes when it ends */
	d->seq++;
	snprintf(dir, sizeof(dir), "%s/" ISN_CKPT_PREFIX "%u", d->dir, d->seq);
	snprintf(stage, sizeof(stage), "%s/" ISN_CKPT_PREFIX "%u", d->stage,
		 d->seq);
	chain_file(d, dir);
	argv[n++] = "ibsnap";
	argv[n++] = "checkpoint";
	argv[n++] = "--job";
	argv[n++] = getenv("IBSNAP_JOB");
	argv[n++] = "--dir";
	argv[n++] = dir;
	if (d->p->stage) {
		argv[n++] = "--stage";
		argv[n++] = stage;
	}
	if (d->p->predump)
		argv[n++] = "--predump";
	if (d->want_stop)
		argv[n++] = "--stop";
	argv[n] = NULL;
	d->why = d->want;
	d->ck_stop = d->want_stop;
	d->want = NULL;
	d->want_stop = false;
	fprintf(stderr, "ibsnap run: checkpoint (%s%s) into %s\n", d->why,
		d->ck_stop ? ", then stop" : "", dir);
	fflush(stderr);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		/* its report goes with ours: the job's stdout stays the job's */
		dup2(STDERR_FILENO, STDOUT_FILENO);
		child_signals(old);
		execv(d->self, argv);
		fprintf(stderr, "ibsnap run: %s: %m\n", d->self);
		_exit(127);
	}
	if (pid < 0) {
		fprintf(stderr, "ibsnap run: fork: %m\n");
		return;
	}
	d->ck = pid;
}

static void ckpt_done(struct drv *d, int status)
{
	int code = WIFEXITED(status) ? WEXITSTATUS(status) :
				       128 + WTERMSIG(status);

	d->ck = 0;
	if (code == 0) {
		d->last_ok = d->seq;
		d->stopped = d->ck_stop;
		d->watch = d->p->stage != NULL;
		d->watch_step = 0.2;
		d->watch_at = now_s() + d->watch_step;
		fprintf(stderr,
			"ibsnap run: checkpoint (%s) into %s/" ISN_CKPT_PREFIX
			"%u done\n",
			d->why, d->dir, d->seq);
	} else {
		fprintf(stderr,
			"ibsnap run: checkpoint (%s) into %s/" ISN_CKPT_PREFIX
			"%u failed (%s %d)%s\n",
			d->why, d->dir, d->seq,
			WIFEXITED(status) ? "exit" : "signal",
			WIFEXITED(status) ? code : WTERMSIG(status),
			d->agent ? ": the job goes on" : "");
	}
	prune_all(d);
}

/* ---- the agent ---- */

void isn_periodic_joined(int fd, bool joined)
{
	const char *v[] = { getenv("IBSNAP_COORD"), getenv("IBSNAP_JOB"),
			    getenv("IBSNAP_TOKEN") };
	FILE *f = fdopen(fd, "w");

	if (!f) {
		close(fd);
		return;
	}
	if (joined && v[0] && v[1] && v[2])
		fprintf(f, "%s\n%s\n%s\n", v[0], v[1], v[2]);
	fclose(f);
}

/* The agent's lines: the coordinator, the job, its token. */
static void read_info(struct drv *d)
{
	char *coord = d->info, *job, *tok;
	ssize_t r = read(d->info_fd, d->info + d->info_len,
			 sizeof(d->info) - 1 - d->info_len);

	if (r < 0 && errno == EINTR)
		return;
	if (r > 0) {
		d->info_len += r;
		if (d->info_len < sizeof(d->info) - 1)
			return;
	}
	close(d->info_fd);
	d->info_fd = -1;
	d->info[d->info_len] = '\0';
	job = strchr(coord, '\n');
	tok = job ? strchr(job + 1, '\n') : NULL;
	if (!tok || !strchr(tok + 1, '\n')) {
		fprintf(stderr, "ibsnap run: the job is not registered: no "
				"checkpoint will be taken\n");
		return;
	}
	*job++ = '\0';
	*tok++ = '\0';
	tok[strcspn(tok, "\n")] = '\0';
	setenv("IBSNAP_COORD", coord, 1);
	setenv("IBSNAP_JOB", job, 1);
	setenv("IBSNAP_TOKEN", tok, 1);
	d->joined = true;
	if (d->p->interval > 0)
		d->next = now_s() + d->p->interval;
}

static int fork_agent(struct drv *d, int (*agent)(void *, int), void *arg,
		      const sigset_t *old)
{
	pid_t parent = getpid();
	int fds[2];

	if (pipe2(fds, O_CLOEXEC))
		return -errno;
	fflush(stdout);
	fflush(stderr);
	d->agent = fork();
	if (d->agent < 0) {
		close(fds[0]);
		close(fds[1]);
		return -errno;
	}
	if (d->agent == 0) {
		/* killed with us, as the job is with a plain ibsnap run */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		prctl(PR_SET_NAME, "ibsnap-agent");
		close(fds[0]);
		child_signals(old);
		exit(agent(arg, fds[1]));
	}
	close(fds[1]);
	d->info_fd = fds[0];
	return 0;
}

/* ---- the driver's loop ---- */

static void on_signal(struct drv *d, const struct signalfd_siginfo *si)
{
	int status;
	pid_t pid;

	if (si->ssi_signo == SIGCHLD) {
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			if (pid == d->ck) {
				ckpt_done(d, status);
			} else if (pid == d->agent) {
				d->agent = 0;
				d->status = WIFEXITED(status) ?
						    WEXITSTATUS(status) :
						    128 + WTERMSIG(status);
			}
		}
		return;
	}
	if (si->ssi_signo == SIGUSR1) {
		/* before the agent joined: taken once it has */
		if ((!d->joined && d->info_fd < 0) || d->stopped) {
			fprintf(stderr, "ibsnap run: SIGUSR1: %s\n",
				d->stopped ? "the job is ending" :
					     "the job is not registered: no "
					     "checkpoint");
			return;
		}
		d->want = "SIGUSR1";
		d->want_stop = d->p->stop_on_signal;
		if (d->ck)
			fprintf(stderr, "ibsnap run: SIGUSR1: a checkpoint "
					"is under way; another follows it\n");
		return;
	}
	/* a terminal's signal went to the agent too (one process group) */
	if (si->ssi_code != SI_KERNEL && d->agent)
		kill(d->agent, si->ssi_signo);
}

static int ms_to(double t)
{
	t -= now_s();
	return t <= 0 ? 0 : t > 3600 ? 3600000 : (int)(t * 1000) + 1;
}

/* Milliseconds to the next periodic checkpoint; -1: none due. */
static int timeout_ms(struct drv *d)
{
	if (!(d->p->interval > 0) || !d->joined || d->stopped || !d->agent)
		return -1;
	return ms_to(d->next);
}

/* ... or to the next look at a copy under way */
static int poll_ms(struct drv *d)
{
	int t = timeout_ms(d), w = d->watch ? ms_to(d->watch_at) : -1;

	return t < 0 || (w >= 0 && w < t) ? w : t;
}

/* Prune DIR once the copy of the last checkpoint is complete there. */
static void watch_copy(struct drv *d)
{
	char path[PATH_MAX + 32];

	if (!d->watch || ms_to(d->watch_at))
		return;
	snprintf(path, sizeof(path), "%s/" ISN_CKPT_PREFIX "%u", d->dir,
		 d->last_ok);
	if (isn_ckpt_complete(path, NULL)) {
		d->watch = false;
		prune_all(d);
		return;
	}
	/* a copy that died stays incomplete: look less often */
	d->watch_step = d->watch_step < 2.5 ? 2 * d->watch_step : 5;
	d->watch_at = now_s() + d->watch_step;
}

static void tick(struct drv *d)
{
	double now = now_s();

	if (timeout_ms(d) != 0)
		return;
	if (d->ck) {
		fprintf(stderr,
			"ibsnap run: the checkpoint into %s/" ISN_CKPT_PREFIX
			"%u is still under way: this interval's "
			"is skipped\n",
			d->dir, d->seq);
		while (d->next <= now)
			d->next += d->p->interval;
		return;
	}
	if (!d->want)
		d->want = "interval";
}

static int drive(struct drv *d, int sfd, const sigset_t *old)
{
	struct signalfd_siginfo si;
	struct pollfd pf[2];
	int n;

	while (d->agent || d->ck) {
		if (!d->ck && d->want && d->joined && d->agent && !d->stopped)
			start_ckpt(d, old);
		pf[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		pf[1] = (struct pollfd){ .fd = d->info_fd, .events = POLLIN };
		n = poll(pf, d->info_fd >= 0 ? 2 : 1, poll_ms(d));
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0 && pf[1].revents && d->info_fd >= 0)
			read_info(d);
		while (n > 0 && pf[0].revents &&
		       read(sfd, &si, sizeof(si)) == sizeof(si))
			on_signal(d, &si);
		tick(d);
		watch_copy(d);
	}
	if (d->info_fd >= 0)
		close(d->info_fd);
	return 0;
}

static int abs_dir(const char *dir, char *out)
{
	int ret = isn_mkdir_p(dir, 0755);

	if (ret)
		return ret;
	return realpath(dir, out) ? 0 : -errno;
}

int isn_periodic_run(const struct isn_periodic *p,
		     int (*agent)(void *arg, int fd), void *arg)
{
	struct drv d = { .p = p, .info_fd = -1 };
	char why[ISN_TEXT_MAX];
	sigset_t set, old;
	size_t i;
	int sfd, ret;
	ssize_t len = readlink("/proc/self/exe", d.self, sizeof(d.self) - 1);

	if (len < 0) {
		fprintf(stderr, "ibsnap run: /proc/self/exe: %m\n");
		return 1;
	}
	if (isn_criu_check(why, sizeof(why))) {
		fprintf(stderr,
			"ibsnap run: --dir: CRIU cannot run on this host (%s): "
			"no checkpoint could be written\n",
			why);
		return 1;
	}
	ret = abs_dir(p->dir, d.dir);
	if (!ret && p->stage)
		ret = abs_dir(p->stage, d.stage);
	if (ret) {
		fprintf(stderr, "ibsnap run: %s: %s\n",
			d.dir[0] ? p->stage : p->dir, strerror(-ret));
		return 1;
	}
	if (p->stage && !strcmp(d.dir, d.stage)) {
		fprintf(stderr, "ibsnap run: --stage and --dir are one "
				"directory\n");
		return 2;
	}
	d.tiers[0] = d.dir;
	d.tiers[1] = p->stage ? d.stage : NULL;
	/* nothing of ours writes there yet: what is incomplete is dead */
	d.seq = d.last_ok = highest_seq(&d);
	sigemptyset(&set);
	for (i = 0; i < sizeof(fwd_sigs) / sizeof(fwd_sigs[0]); i++)
		sigaddset(&set, fwd_sigs[i]);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, &old);
	ret = fork_agent(&d, agent, arg, &old);
	sfd = ret ? -1 : signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		fprintf(stderr, "ibsnap run: cannot start: %s\n",
			strerror(ret ? -ret : errno));
		if (d.agent > 0)
			kill(d.agent, SIGKILL);
		return 126;
	}
	ret = drive(&d, sfd, &old);
	close(sfd);
	if (ret)
		fprintf(stderr, "ibsnap run: %s\n", strerror(-ret));
	/* the agent waited for the last copy: the tiers are final */
	prune_all(&d);
	if (!d.stopped)
		return d.status;
	fprintf(stderr,
		"ibsnap run: the job was checkpointed into %s/" ISN_CKPT_PREFIX
		"%u and stopped (SIGUSR1, --stop-on-signal); ibsnap restart "
		"--dir %s%s%s goes on with it\n",
		d.dir, d.last_ok, p->dir, p->stage ? " --stage " : "",
		p->stage ? p->stage : "");
	return ISN_EXIT_STOPPED;
}
