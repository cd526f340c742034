/* SPDX-License-Identifier: MIT */
/*
 * ibsnap __init -- CMD...: the first process of the job's PID namespace.
 * A namespace's init gets only the signals it handles and must reap every
 * orphan, so this small init does both: it starts CMD, forwards the
 * signals the host agent passes on, reaps, and exits with CMD's status
 * (128 + signal if it was killed); its exit ends the namespace.
 *
 * It dies with its agent (PR_SET_PDEATHSIG), so a job whose ibsnap run is
 * killed does not linger; but CRIU restores that setting, and the restored
 * init's parent (criu) exits at once, so around a dump the agent disarms it
 * (ISN_SIG_DISARM; the init acknowledges by its name, ISN_INIT_DISARMED) and
 * arms it again afterwards (ISN_SIG_ARM), as ibsnap restart does.
 *
 * Disarmed, the parent-death signal is ISN_SIG_ORPHAN, which this init
 * handles: if the agent dies during the dump (CRIU, its child, finishes and
 * lets the tree run again; or the tree was not frozen yet) the init ends the
 * job as SIGKILL would have.  A restored init gets the same signal when
 * criu exits: it is told apart by its identity (host pid and start time,
 * which a restore changes), taken when it was disarmed, and waits for
 * ibsnap restart's ISN_SIG_ARM.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

/* the parent-death signal while disarmed (a dump is under way) */
#define ISN_SIG_ORPHAN (SIGRTMIN + 4)

static const int fwd_sigs[] = { SIGINT,	 SIGTERM, SIGHUP,   SIGQUIT,
				SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD };

/* This process as the host sees it (its /proc is the host's). */
struct self_id {
	long pid, ppid;
	unsigned long long start; /* clock ticks after boot */
};

/* When disarmed: who we were, or pid 0 (unknown: never end the job). */
static struct self_id disarmed_as;

static int self_read(struct self_id *id)
{
	char buf[1024], *p;
	ssize_t n;
	int fd;

	fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* after the name, which may hold anything */
	if (!p || sscanf(buf, "%ld", &id->pid) != 1 ||
	    sscanf(p + 2,
		   "%*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u "
		   "%*d %*d %*d %*d %*d %*d %llu",
		   &id->ppid, &id->start) != 2)
		return -1;
	return 0;
}

static void arm(bool on)
{
	if (!on && self_read(&disarmed_as))
		disarmed_as.pid = 0;
	prctl(PR_SET_PDEATHSIG, on ? SIGKILL : ISN_SIG_ORPHAN);
	prctl(PR_SET_NAME, on ? ISN_INIT_ARMED : ISN_INIT_DISARMED);
}

/*
 * ISN_SIG_ORPHAN: the parent died while the init was disarmed (or before
 * it was armed again: the signal stayed pending).  The same process as at
 * the disarm, under a new parent: the agent is gone, and the job ends as
 * it would have without a dump (the init killed; in a PID namespace its
 * end kills the rest).  A restored process (another pid or start time) is
 * left for ibsnap restart to arm.
 */
static void orphaned(void)
{
	struct self_id now;

	if (!disarmed_as.pid || self_read(&now) || now.pid != disarmed_as.pid ||
	    now.start != disarmed_as.start || now.ppid == disarmed_as.ppid)
		return;
	kill(getpid(), SIGKILL);
	_exit(128 + SIGKILL); /* pid 1 of a namespace ignores its own */
}

/*
 * The agent that started us may have died before the parent-death signal
 * was set (between its clone and our prctl): our parent is then another
 * process than the one IBSNAP_INIT_PARENT names (the classic race check;
 * getppid() is 0 in a PID namespace, the host's /proc tells).  The job
 * ends before it starts, as it would have a moment later.
 */
static void parent_check(void)
{
	const char *v = getenv("IBSNAP_INIT_PARENT");
	long want = v ? atol(v) : 0;
	struct self_id now;

	unsetenv("IBSNAP_INIT_PARENT");
	if (want > 0 && !self_read(&now) && now.ppid != want)
		_exit(128 + SIGKILL);
}

static void noop(int sig)
{
	(void)sig;
}

static int code_of(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

static void exec_cmd(char **cmd, const sigset_t *old)
{
	const char *preload = getenv("IBSNAP_INIT_PRELOAD");
	size_t i;

	for (i = 0; i < sizeof(fwd_sigs) / sizeof(fwd_sigs[0]); i++)
		signal(fwd_sigs[i], SIG_DFL);
	signal(ISN_SIG_ARM, SIG_DFL);
	signal(ISN_SIG_DISARM, SIG_DFL);
	signal(ISN_SIG_ORPHAN, SIG_DFL);
	prctl(PR_SET_PDEATHSIG, 0);
	sigprocmask(SIG_SETMASK, old, NULL);
	if (preload) {
		setenv("LD_PRELOAD", preload, 1);
		unsetenv("IBSNAP_INIT_PRELOAD");
	}
	execvp(cmd[0], cmd);
	fprintf(stderr, "ibsnap run: %s: %s\n", cmd[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

int isn_cmd_init(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = noop };
	sigset_t set, old;
	siginfo_t si;
	int i = 1, status, sig;
	pid_t child, pid;
	size_t k;

	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	if (i >= argc)
		return 2;
	sigemptyset(&set);
	for (k = 0; k < sizeof(fwd_sigs) / sizeof(fwd_sigs[0]); k++) {
		sigaction(fwd_sigs[k], &sa, NULL);
		sigaddset(&set, fwd_sigs[k]);
	}
	sigaction(ISN_SIG_ARM, &sa, NULL);
	sigaction(ISN_SIG_DISARM, &sa, NULL);
	sigaction(ISN_SIG_ORPHAN, &sa, NULL);
	sigaddset(&set, ISN_SIG_ARM);
	sigaddset(&set, ISN_SIG_DISARM);
	sigaddset(&set, ISN_SIG_ORPHAN);
	sigprocmask(SIG_BLOCK, &set, &old);
	arm(true);
	parent_check();
	if (getpid() != 1) /* no namespace: still reap the orphans */
		prctl(PR_SET_CHILD_SUBREAPER, 1);
	setsid();
	child = fork();
	if (child == 0)
		exec_cmd(argv + i, &old);
	if (child < 0) {
		perror("ibsnap run: fork");
		return 126;
	}
	for (;;) {
		sig = sigwaitinfo(&set, &si);
		if (sig < 0)
			continue;
		if (sig == ISN_SIG_ARM || sig == ISN_SIG_DISARM) {
			arm(sig == ISN_SIG_ARM);
			continue;
		}
		if (sig == ISN_SIG_ORPHAN) {
			orphaned();
			continue;
		}
		if (sig != SIGCHLD) {
			kill(child, sig);
			continue;
		}
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			if (pid == child)
				return code_of(status);
	}
}
