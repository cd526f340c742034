/* SPDX-License-Identifier: MIT */
/*
 * ibsnap run: join (or start) the coordinator, then run the command as the
 * child of a small init in a PID namespace of its own (so a restore finds
 * its PIDs free), with libibsnap.so preloaded into the command and every
 * process it starts.  This process stays outside as the host agent: it
 * forwards signals, runs CRIU at checkpoints and exits with the command's
 * status.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cli.h"
#include "periodic.h"

static void run_usage(FILE *out)
{
	fputs("usage: ibsnap run [OPTIONS] [--] CMD [ARGS...]\n"
	      "\n"
	      "Runs CMD (and every process it starts) with libibsnap.so "
	      "preloaded:\n"
	      "the program's verbs devices, objects and IDs become virtual, "
	      "backed\n"
	      "by a real HCA (rdma-core) or by the fake HCA, and the job can "
	      "be\n"
	      "checkpointed (ibsnap checkpoint).  Two ibsnap run on one host "
	      "form\n"
	      "one job.\n"
	      "\n"
	      "Options:\n"
	      "  --coord HOST:PORT  coordinator (default $IBSNAP_COORD, else "
	      "the\n"
	      "                     host's ibsnapd on its Unix socket, "
	      "started\n"
	      "                     if none runs)\n"
	      "  --job NAME         job to join (default $IBSNAP_JOB, else "
	      "default)\n"
	      "  --fake             use the fake HCA (IBSNAP_BACKEND=fake)\n"
	      "  --no-coord         do not register: not checkpointable\n"
	      "  --no-pidns         no PID namespace (a restore may then "
	      "find\n"
	      "                     its PIDs taken; IBSNAP_PIDNS=0 too)\n"
	      "  --no-preload       register the tree but preload nothing "
	      "(for\n"
	      "                     programs that link the client "
	      "themselves)\n"
	      "  -h, --help         this text\n"
	      "\n"
	      "Checkpoints (each as ibsnap checkpoint --job JOB --dir "
	      "DIR/ckpt-N\n"
	      "[--stage FAST/ckpt-N] [--predump] would take it, one at a "
	      "time;\n"
	      "their report goes to stderr; a failed one is reported and the "
	      "job\n"
	      "goes on):\n"
	      "  --dir DIR          checkpoint the job into DIR/ckpt-N (N "
	      "counts\n"
	      "                     on); SIGUSR1 to ibsnap run then takes "
	      "one now\n"
	      "                     instead of going to the job\n"
	      "  --interval T       also every T (seconds, or with s, m, h: "
	      "30m)\n"
	      "  --keep K           keep the newest K complete checkpoints "
	      "in DIR\n"
	      "                     (and FAST), remove older ones (default "
	      "3; 0: all)\n"
	      "  --stage FAST       dump into FAST/ckpt-N, copy to DIR in "
	      "the\n"
	      "                     background (ibsnap checkpoint --stage)\n"
	      "  --predump          pre-dump first, while the job runs "
	      "(ibsnap\n"
	      "                     checkpoint --predump); a tree's "
	      "pre-dump then\n"
	      "                     writes only what changed since its "
	      "previous\n"
	      "                     checkpoint\n"
	      "  --full-every M     with --predump: a full image at least "
	      "every M\n"
	      "                     checkpoints of a tree (default 4; 1: "
	      "always)\n"
	      "  --stop-on-signal   SIGUSR1 checkpoints and then ends the "
	      "job\n"
	      "                     (ibsnap checkpoint --stop): a batch "
	      "system's\n"
	      "                     pre-emption warning\n"
	      "  ibsnap restart --dir DIR [--stage FAST] takes the newest "
	      "complete\n"
	      "  checkpoint.  Other signals go to the job as without "
	      "--dir.\n"
	      "\n"
	      "Exit status: the job's (128 + N if signal N killed it); 75 "
	      "when\n"
	      "--stop-on-signal ended it after a complete checkpoint; 1 "
	      "when it\n"
	      "could not join its coordinator; 2 usage; 126/127 the "
	      "command\n"
	      "could not be started.\n"
	      "\n"
	      "Environment:\n"
	      "  IBSNAP_BACKEND=real|fake  HCA under the shim; default: real "
	      "if\n"
	      "                            rdma-core lists a device, else "
	      "fake\n"
	      "  IBSNAP_TOKEN=HEX          the job's token, to join a job "
	      "over TCP\n"
	      "  IBSNAP_COORD_SOCK=PATH    the default daemon's socket\n"
	      "  IBSNAP_UCX_UD_TIMEOUT=T   UCX_UD_TIMEOUT unless set (default "
	      "10m;\n"
	      "                            0 leaves UCX's 30 s): a checkpoint "
	      "must\n"
	      "                            not outlast it (docs/ucx.md)\n"
	      "  IBSNAP_TEST_REMAP=1       test mode: behave as if restarted; "
	      "every\n"
	      "                            ID handed out is offset and "
	      "translated\n"
	      "                            back; peers must run in the same "
	      "mode\n"
	      "Fake HCA (IBSNAP_BACKEND=fake):\n"
	      "  IBSNAP_FABRIC=DIR         directory of the shared fabric "
	      "(default\n"
	      "                            /dev/shm/ibsnap-UID)\n"
	      "  IBSNAP_FAKE_DEVICES=N     devices fake0..fake(N-1) (default "
	      "1)\n"
	      "  IBSNAP_FAKE_NODE=NAME     simulated node of this process\n"
	      "  IBSNAP_FAKE_LINK=eth|ib   link layer (default eth)\n"
	      "  IBSNAP_FAKE_MTU=N         active MTU (default 4096)\n"
	      "  IBSNAP_FAKE_FAULTS=SPEC   drop=P,dup=P,corrupt=P,delay_us=N,"
	      "seed=N\n"
	      "  IBSNAP_FAKE_SPIN_US=N     progress thread spin (default "
	      "50)\n",
	      out);
}

/* The LD_PRELOAD the command gets: [ASan runtime:]shim[:what was there]. */
static int preload_value(char **out)
{
	char dir[PATH_MAX], shim[PATH_MAX + 32], real[PATH_MAX];
	const char *old = getenv("LD_PRELOAD");
	const char *asan = "";

	if (isn_self_dir(dir, sizeof(dir)))
		return -1;
	snprintf(shim, sizeof(shim), "%s/../lib/libibsnap.so", dir);
	if (!realpath(shim, real))
		return -1;
#ifdef ISN_ASAN_RT
	/* a sanitized shim needs the ASan runtime loaded before it */
	asan = ISN_ASAN_RT ":";
	setenv("ASAN_OPTIONS", "detect_leaks=0", 0);
#endif
	if (old && *old)
		return asprintf(out, "%s%s:%s", asan, real, old) < 0 ? -1 : 0;
	return asprintf(out, "%s%s", asan, real) < 0 ? -1 : 0;
}

/*
 * UCX declares a UD endpoint failed when a packet of it stays unacknowledged
 * for UCX_UD_TIMEOUT (30 s), and a checkpoint holds every packet for as long
 * as it takes (the dump, mostly): the job gets a longer timeout unless it
 * chose one.  UCX's keepalive needs nothing: it reports a failure only
 * through the transport (docs/ucx.md).
 */
static void ucx_env(void)
{
	const char *t = getenv("IBSNAP_UCX_UD_TIMEOUT");
	const char *tls = getenv("UCX_TLS");

	/* UCX warns of a variable no transport reads: skip it without UD */
	if (tls && tls[0] != '^' && !strstr(tls, "ud") && !strstr(tls, "all"))
		return;
	if (!t)
		t = "10m";
	if (*t && strcmp(t, "0"))
		setenv("UCX_UD_TIMEOUT", t, 0);
}

/* The init runs as `ibsnap __init -- CMD...`, in a new PID namespace. */
static int spawn_init(struct isn_agent_ctx *ax, char **cmd, bool want_ns)
{
	char self[PATH_MAX], parent[24];
	char **argv;
	int n, i;
	pid_t pid = -1;
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (len < 0)
		return -errno;
	self[len] = '\0';
	for (n = 0; cmd[n]; n++)
		;
	argv = calloc(n + 4, sizeof(*argv));
	if (!argv)
		return -ENOMEM;
	argv[0] = "ibsnap";
	argv[1] = "__init";
	argv[2] = "--";
	for (i = 0; i < n; i++)
		argv[3 + i] = cmd[i];
	/* the init checks that we are still its parent (cli/init.c) */
	snprintf(parent, sizeof(parent), "%d", (int)getpid());
	setenv("IBSNAP_INIT_PARENT", parent, 1);
	if (want_ns) {
		/* like fork(), but the child is pid 1 of a new namespace */
		pid = syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, NULL, NULL,
			      NULL, 0);
		if (pid < 0)
			fprintf(stderr,
				"ibsnap run: no PID namespace (%s): a restore "
				"may find its PIDs taken\n",
				strerror(errno));
	}
	ax->pidns = pid >= 0;
	if (pid < 0)
		pid = fork();
	if (pid == 0) {
		/* dies with us from here on: kept across execve */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execv(self, argv);
		fprintf(stderr, "ibsnap run: %s: %s\n", self, strerror(errno));
		_exit(127);
	}
	unsetenv("IBSNAP_INIT_PARENT");
	free(argv);
	if (pid < 0)
		return -errno;
	ax->init_pid = pid;
	return 0;
}

struct run_opts {
	const char *coord, *job;
	bool no_coord, no_pidns, no_preload;
	struct isn_periodic per; /* checkpoints: with --dir */
	const char *per_opt; /* an option that needs --dir */
};

/* The checkpoint options; 1 if @a was one, -1 if its value is bad. */
static int parse_per(int argc, char **argv, int *i, struct run_opts *o)
{
	const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
	char *end;

	if (!strcmp(a, "--stop-on-signal") || !strcmp(a, "--predump")) {
		o->per.stop_on_signal |= !strcmp(a, "--stop-on-signal");
		o->per.predump |= !strcmp(a, "--predump");
		o->per_opt = a;
		return 1;
	}
	if (!v || (strcmp(a, "--dir") && strcmp(a, "--stage") &&
		   strcmp(a, "--interval") && strcmp(a, "--keep") &&
		   strcmp(a, "--full-every")))
		return 0;
	++*i;
	if (!strcmp(a, "--dir"))
		o->per.dir = v;
	else if (!strcmp(a, "--stage"))
		o->per.stage = v;
	else if (!strcmp(a, "--interval") &&
		 isn_parse_interval(v, &o->per.interval))
		return -1;
	else if (!strcmp(a, "--keep") &&
		 ((o->per.keep = strtol(v, &end, 10)) < 0 || *end || !*v))
		return -1;
	else if (!strcmp(a, "--full-every") &&
		 ((o->per.full_every = strtoul(v, &end, 10)) < 1 || *end ||
		  !*v || *v == '-'))
		return -1;
	if (strcmp(a, "--dir"))
		o->per_opt = a;
	return 1;
}

/* The index of CMD in argv, or -1 after printing what is wrong. */
static int parse(int argc, char **argv, struct run_opts *o)
{
	int i, per;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];

		per = parse_per(argc, argv, &i, o);
		if (per < 0) {
			fprintf(stderr, "ibsnap run: bad %s '%s'\n", a,
				argv[i]);
			return -1;
		}
		if (per)
			continue;
		if (!strcmp(a, "--"))
			return i + 1 < argc ? i + 1 : -1;
		if (!strcmp(a, "--fake"))
			setenv("IBSNAP_BACKEND", "fake", 1);
		else if (!strcmp(a, "--no-coord"))
			o->no_coord = true;
		else if (!strcmp(a, "--no-pidns"))
			o->no_pidns = true;
		else if (!strcmp(a, "--no-preload"))
			o->no_preload = true;
		else if (!strcmp(a, "--coord") && i + 1 < argc)
			o->coord = argv[++i];
		else if (!strcmp(a, "--job") && i + 1 < argc)
			o->job = argv[++i];
		else if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			return -2;
		else {
			fprintf(stderr, "ibsnap run: bad option '%s'\n", a);
			return -1;
		}
	}
	return i < argc ? i : -1;
}

/*
 * A PID namespace unless told otherwise (IBSNAP_PIDNS=0|1).  Sanitized
 * builds default to none: inside one, getpid() names another process's
 * /proc entries (the job sees the host's /proc), which LeakSanitizer reads.
 */
static bool pidns_wanted(const struct run_opts *o)
{
	const char *env = getenv("IBSNAP_PIDNS");

	if (o->no_pidns)
		return false;
	if (env && *env)
		return strcmp(env, "0") != 0;
#ifdef ISN_ASAN_RT
	return false;
#else
	return true;
#endif
}

static void set_job_env(struct isn_agent_ctx *ax)
{
	char tok[2 * ISN_TOKEN_LEN + 1], id[32];

	isn_token_hex(ax->token, tok);
	snprintf(id, sizeof(id), "%llx", (unsigned long long)ax->id);
	setenv("IBSNAP_COORD", ax->addr.text, 1);
	setenv("IBSNAP_JOB", ax->job, 1);
	setenv("IBSNAP_TOKEN", tok, 1);
	setenv("IBSNAP_AGENT", id, 1);
}

static int join(struct isn_agent_ctx *ax, const struct run_opts *o)
{
	const char *env_job = getenv("IBSNAP_JOB");
	bool explicit = o->coord || getenv("IBSNAP_COORD");

	if (isn_coord_addr(o->coord, &ax->addr))
		return -EINVAL;
	ax->may_start = !explicit;
	isn_strlcpy(ax->job,
		    o->job		? o->job :
		    env_job && *env_job ? env_job :
					  "default",
		    sizeof(ax->job));
	ax->have_token = isn_env_token(ax->token);
	if (!isn_agent_open(ax, 0, 0, 0)) {
		set_job_env(ax);
		return 0;
	}
	if (explicit)
		return -ECONNREFUSED;
	fprintf(stderr, "ibsnap run: no coordinator: the job runs but cannot "
			"be checkpointed\n");
	unsetenv("IBSNAP_COORD");
	return 0;
}

struct run_job {
	struct isn_agent_ctx *ax;
	const struct run_opts *o;
	char **cmd;
};

/* Join, start the job, serve as its agent; @fd: tell the driver the job
 * (periodic.c), or -1.  The job's exit status. */
static int run_job(void *arg, int fd)
{
	struct run_job *r = arg;
	int ret;

	if (!r->o->no_coord && join(r->ax, r->o)) {
		if (fd >= 0)
			close(fd);
		return 1;
	}
	if (fd >= 0)
		isn_periodic_joined(fd, r->ax->sock >= 0);
	ret = spawn_init(r->ax, r->cmd, pidns_wanted(r->o));
	if (ret) {
		fprintf(stderr, "ibsnap run: cannot start %s: %s\n", r->cmd[0],
			strerror(-ret));
		return 126;
	}
	return isn_agent_loop(r->ax);
}

int isn_cmd_run(int argc, char **argv)
{
	struct isn_agent_ctx ax = { .sock = -1 };
	struct run_opts o = { .per.keep = 3, .per.full_every = ISN_FULL_EVERY };
	struct run_job r = { .ax = &ax, .o = &o };
	char *preload = NULL;
	int i = parse(argc, argv, &o);

	if (i < 0) {
		run_usage(i == -2 ? stdout : stderr);
		return i == -2 ? 0 : 2;
	}
	if (!o.per.dir && o.per_opt) {
		fprintf(stderr, "ibsnap run: %s needs --dir DIR\n", o.per_opt);
		return 2;
	}
	if (o.per.dir && o.no_coord) {
		fprintf(stderr, "ibsnap run: --dir and --no-coord: a job that "
				"does not register cannot be checkpointed\n");
		return 2;
	}
	if (!o.no_preload) {
		if (preload_value(&preload)) {
			fprintf(stderr, "ibsnap run: cannot find "
					"libibsnap.so next to this binary\n");
			return 1;
		}
		setenv("IBSNAP_INIT_PRELOAD", preload, 1);
		free(preload);
	}
	ucx_env();
	isn_hostname(ax.host, sizeof(ax.host));
	r.cmd = argv + i;
	if (o.per.dir)
		return isn_periodic_run(&o.per, run_job, &r);
	return run_job(&r, -1);
}
