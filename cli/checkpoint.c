/* SPDX-License-Identifier: MIT */
/*
 * ibsnap checkpoint: ask the coordinator to take a checkpoint of a job and
 * print each phase's time as it completes.  Where CRIU cannot run (criu
 * check fails, as on kernels it does not support) it says so and does the
 * drain/release/rebuild cycle without a dump.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static void ck_usage(FILE *out)
{
	fputs("usage: ibsnap checkpoint [OPTIONS]\n"
	      "\n"
	      "Checkpoints a job: quiesce, drain and release its RDMA "
	      "resources,\n"
	      "dump every host's part with CRIU into DIR/HOST/ (written "
	      "under a\n"
	      "temporary name, renamed when every host is done), then "
	      "rebuild\n"
	      "and resume, or end the job (--stop).  Prints each phase's "
	      "time.\n"
	      "\n"
	      "  --dir DIR          where the images go\n"
	      "  --stage FAST       dump into FAST/HOST/ first (tmpfs, local "
	      "disk): the\n"
	      "                     job resumes once that is written; each "
	      "host then\n"
	      "                     copies its image to DIR/HOST/ in the "
	      "background\n"
	      "  --predump          first pre-dump every tree while the job "
	      "runs (CRIU\n"
	      "                     memory tracking); the dump after quiesce "
	      "then\n"
	      "                     writes only the pages dirtied since\n"
	      "  --job NAME         the job (default: the only one)\n"
	      "  --coord HOST:PORT  coordinator (default $IBSNAP_COORD, else "
	      "the\n"
	      "                     host's ibsnapd)\n"
	      "  --stop             end the job once its image is written\n"
	      "  --no-dump          the cycle without CRIU (nothing is "
	      "written)\n"
	      "  --timeout S        give up after S seconds without word "
	      "from the\n"
	      "                     coordinator (default: 1.5 times the "
	      "larger of its\n"
	      "                     phase and dump timeouts, + 1 s; from "
	      "$IBSNAP_PHASE_TIMEOUT\n"
	      "                     and $IBSNAP_DUMP_TIMEOUT if set, else "
	      "120 and 3600)\n"
	      "  -h, --help         this text\n"
	      "\n"
	      "Exit status: 0 done, 1 failed (the job goes on) or its "
	      "outcome unknown\n"
	      "(the coordinator lost or silent: see ibsnap status), 2 "
	      "usage, 3 CRIU\n"
	      "cannot run here: the cycle was done without an image.\n"
	      "The downtime is the time from quiesce to the end of resume: "
	      "the\n"
	      "job made no progress.\n",
	      out);
}

struct ck_opts {
	const char *coord, *job, *dir, *stage;
	bool stop, no_dump, predump;
	double timeout_s; /* silence from the coordinator: given up */
};

/* a timeout of the daemon's, as ibsnapd takes it from the environment */
static double env_secs(const char *name, double dflt)
{
	const char *v = getenv(name);
	char *end;
	double s;

	if (!v || !*v)
		return dflt;
	s = strtod(v, &end);
	return end != v && s > 0 ? s : dflt;
}

/*
 * How long ibsnap checkpoint waits without a message from the coordinator.
 * The daemon reports the end of every step (CKPT_PROGRESS) and fails a step
 * that outlasts its timeout (a phase's, or a dump's): a silence much longer
 * than the longer of them means a lost message (CKPT_END) or a daemon that
 * no longer serves the checkpoint.
 */
static double default_timeout(void)
{
	double phase = env_secs("IBSNAP_PHASE_TIMEOUT", 120);
	double dump = env_secs("IBSNAP_DUMP_TIMEOUT", 3600);

	return 1.5 * (phase > dump ? phase : dump) + 1;
}

static int parse(int argc, char **argv, struct ck_opts *o)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--stop"))
			o->stop = true;
		else if (!strcmp(a, "--no-dump"))
			o->no_dump = true;
		else if (!strcmp(a, "--predump"))
			o->predump = true;
		else if (!strcmp(a, "--dir") && i + 1 < argc)
			o->dir = argv[++i];
		else if (!strcmp(a, "--stage") && i + 1 < argc)
			o->stage = argv[++i];
		else if (!strcmp(a, "--job") && i + 1 < argc)
			o->job = argv[++i];
		else if (!strcmp(a, "--coord") && i + 1 < argc)
			o->coord = argv[++i];
		else if (!strcmp(a, "--timeout") && i + 1 < argc) {
			char *end;

			o->timeout_s = strtod(argv[++i], &end);
			if (end == argv[i] || *end || !(o->timeout_s > 0) ||
			    o->timeout_s > 1e7)
				return -1;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			return 1;
		else
			return -1;
	}
	return 0;
}

/* DIR made absolute (every host's agent reads it from its own cwd). */
static int abs_dir(const char *dir, char *out, size_t len)
{
	char buf[PATH_MAX];

	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	if (!realpath(dir, buf))
		return -errno;
	if (strlen(buf) >= len)
		return -ENAMETOOLONG;
	strcpy(out, buf);
	return 0;
}

static void print_progress(const struct isn_m_ckpt_progress *m, bool *rb,
			   bool no_dump)
{
	const char *name = isn_phase_name(m->phase);

	if (m->status) {
		printf("  FAILED: %s\n", m->text);
		*rb = true;
	} else if (m->phase == ISN_PHASE_DUMP && no_dump) {
		printf("  %-10s %10s\n", name, "(no dump)");
	} else if (m->phase == ISN_STEP_PREDUMP) {
		printf("  %-10s %10.3f ms  (the job ran)\n", name,
		       m->usec / 1000.);
	} else {
		printf("  %-10s %10.3f ms%s\n", name, m->usec / 1000.,
		       *rb ? "  (rollback)" : "");
	}
	fflush(stdout);
}

/* ---- what the checkpoint wrote ---- */

static struct {
	uint64_t bytes, pages;
} sz;

static int size_one(const char *p, const struct stat *st, int type,
		    struct FTW *f)
{
	if (type != FTW_F)
		return 0;
	sz.bytes += st->st_size;
	if (!strncmp(p + f->base, "pages-", 6))
		sz.pages += st->st_size;
	return 0;
}

/*
 * The size of the images of checkpoint @ckpt in TIER (every host directory
 * this host sees there): their own files, not the parents an incremental
 * image's links lead to; so an image chained on an earlier one shows what
 * changed since.
 */
static void print_written(const char *tier, uint32_t ckpt)
{
	char host[PATH_MAX], tree[2 * PATH_MAX];
	uint32_t c, parent, on = 0;
	int trees = 0, chained = 0;
	struct dirent *h, *t;
	DIR *hd = opendir(tier), *td;

	memset(&sz, 0, sizeof(sz));
	while (hd && (h = readdir(hd))) {
		if (h->d_name[0] == '.')
			continue;
		snprintf(host, sizeof(host), "%s/%s", tier, h->d_name);
		td = opendir(host);
		while (td && (t = readdir(td))) {
			snprintf(tree, sizeof(tree), "%s/%s", host, t->d_name);
			if (t->d_name[0] == '.' ||
			    isn_meta_u32(tree, "ckpt", &c) || c != ckpt)
				continue;
			trees++;
			nftw(tree, size_one, 16, FTW_PHYS);
			if (!isn_meta_u32(tree, "parent_ckpt", &parent)) {
				chained++;
				on = parent;
			}
		}
		if (td)
			closedir(td);
	}
	if (hd)
		closedir(hd);
	if (!trees)
		return;
	printf("image %.3f MiB written (memory pages %.3f MiB), %d tree%s",
	       sz.bytes / 1048576., sz.pages / 1048576., trees,
	       trees > 1 ? "s" : "");
	if (chained)
		printf(", %d chained on checkpoint %u (only what changed "
		       "since)\n",
		       chained, on);
	else
		printf(", full\n");
}

/*
 * Print progress until CKPT_END; its status (0 or -errno).  The steps'
 * times add up to the downtime (the daemon starts a step when the last one
 * ends), printed once the job resumed.  After @timeout_s seconds without a
 * message: -ETIMEDOUT, the outcome unknown.
 */
static int follow(int fd, bool no_dump, double timeout_s, const char *job,
		  uint32_t *ckpt)
{
	uint64_t down = 0;
	bool resumed = false;
	union {
		struct isn_m_ckpt_progress p;
		struct isn_m_ckpt_end end;
		struct isn_m_error err;
	} m;
	struct isn_rx rx;
	const void *payload;
	struct isn_hdr h;
	bool rollback = false;
	int ret;

	isn_rx_init(&rx, ISN_MSG_MAX);
	for (;;) {
		ret = isn_recv_msg(fd, &rx, (int)(timeout_s * 1000), &h,
				   &payload);
		if (ret == 0) {
			fprintf(stderr,
				"ibsnap checkpoint: no word from the "
				"coordinator for %.1f s (its phase and dump "
				"timeouts have passed; a lost end of the "
				"checkpoint?): the outcome is unknown: see "
				"ibsnap status%s%s\n",
				timeout_s, *job ? " --job " : "", job);
			ret = -ETIMEDOUT;
			break;
		}
		if (ret == -EPROTONOSUPPORT)
			fprintf(stderr, "ibsnap: the coordinator speaks "
					"another protocol version\n");
		if (ret < 0 || isn_msg_decode(h.type, payload, h.len, &m)) {
			fprintf(stderr, "ibsnap checkpoint: lost the "
					"coordinator: the outcome is unknown "
					"(ibsnap status)\n");
			ret = -ECONNRESET;
			break;
		}
		if (h.type == ISN_MSG_CKPT_PROGRESS) {
			print_progress(&m.p, &rollback, no_dump);
			/* the pre-dump ran before quiesce */
			if (!m.p.status && m.p.phase != ISN_STEP_PREDUMP)
				down += m.p.usec;
			resumed |= !m.p.status && m.p.phase == ISN_PHASE_RESUME;
		} else if (h.type == ISN_MSG_CKPT_END) {
			if (resumed)
				printf("downtime %.3f ms\n", down / 1000.);
			printf("%s (%.1f ms)\n", m.end.text,
			       m.end.usec / 1000.);
			ret = m.end.status;
			*ckpt = m.end.ckpt;
			break;
		} else if (h.type == ISN_MSG_ERROR) {
			fprintf(stderr, "ibsnap checkpoint: %s\n", m.err.text);
			ret = m.err.code ? m.err.code : -EIO;
			break;
		}
	}
	isn_rx_free(&rx);
	return ret;
}

int isn_cmd_checkpoint(int argc, char **argv)
{
	struct isn_m_ckpt_start m = { 0 };
	struct ck_opts o = { 0 };
	struct isn_addr a;
	char why[ISN_TEXT_MAX];
	bool criu_missing = false;
	uint32_t ckpt = 0;
	int fd, ret = parse(argc, argv, &o);

	if (ret) {
		ck_usage(ret > 0 ? stdout : stderr);
		return ret > 0 ? 0 : 2;
	}
	if (o.predump && o.no_dump) {
		fprintf(stderr, "ibsnap checkpoint: --predump needs a dump "
				"(not --no-dump)\n");
		return 2;
	}
	if (!o.no_dump && !o.dir) {
		fprintf(stderr, "ibsnap checkpoint: --dir DIR is needed (or "
				"--no-dump)\n");
		return 2;
	}
	if (!o.no_dump && isn_criu_check(why, sizeof(why))) {
		printf("ibsnap checkpoint: CRIU cannot run on this host (%s): "
		       "doing the drain/release/rebuild cycle without a dump; "
		       "no image is written\n",
		       why);
		criu_missing = true;
		o.no_dump = true;
	}
	if (!o.no_dump && (ret = abs_dir(o.dir, m.dir, sizeof(m.dir)))) {
		fprintf(stderr, "ibsnap checkpoint: %s: %s\n", o.dir,
			strerror(-ret));
		return 1;
	}
	if (!o.no_dump && o.stage) {
		ret = abs_dir(o.stage, m.stage, sizeof(m.stage));
		if (ret) {
			fprintf(stderr, "ibsnap checkpoint: %s: %s\n", o.stage,
				strerror(-ret));
			return 1;
		}
		if (!strcmp(m.stage, m.dir)) {
			fprintf(stderr, "ibsnap checkpoint: --stage and --dir "
					"are one directory\n");
			return 2;
		}
		m.ext = ISN_EXT_1;
	}
	if (isn_coord_addr(o.coord, &a))
		return 2;
	fd = isn_coord_dial("ibsnap checkpoint", &a, false);
	if (fd < 0)
		return 1;
	isn_strlcpy(m.job, o.job ? o.job : "", sizeof(m.job));
	if (isn_env_token(m.token))
		m.flags |= ISN_CK_TOKEN;
	m.flags |= (o.no_dump ? ISN_CK_NO_DUMP : 0) |
		   (o.stop ? ISN_CK_STOP : 0) |
		   (o.predump && !o.no_dump ? ISN_CK_PREDUMP : 0);
	ret = isn_send_msg(fd, ISN_MSG_CKPT_START, &m);
	if (!ret)
		ret = follow(fd, o.no_dump,
			     o.timeout_s > 0 ? o.timeout_s : default_timeout(),
			     m.job, &ckpt);
	close(fd);
	if (ret)
		return 1;
	/* a staged image is complete in FAST when the checkpoint ends */
	if (!o.no_dump)
		print_written(m.stage[0] ? m.stage : m.dir, ckpt);
	return criu_missing ? ISN_EXIT_NO_IMAGE : 0;
}
