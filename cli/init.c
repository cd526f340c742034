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
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

static const int fwd_sigs[] = { SIGINT,	 SIGTERM, SIGHUP,   SIGQUIT,
				SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD };

static void arm(bool on)
{
	prctl(PR_SET_PDEATHSIG, on ? SIGKILL : 0);
	prctl(PR_SET_NAME, on ? ISN_INIT_ARMED : ISN_INIT_DISARMED);
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
	sigaddset(&set, ISN_SIG_ARM);
	sigaddset(&set, ISN_SIG_DISARM);
	sigprocmask(SIG_BLOCK, &set, &old);
	arm(true);
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
		if (sig != SIGCHLD) {
			kill(child, sig);
			continue;
		}
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			if (pid == child)
				return code_of(status);
	}
}
