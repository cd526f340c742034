/* SPDX-License-Identifier: MIT */
/*
 * CRIU and the image directory.  A host's image is written to
 * DIR/HOST/.TREE.tmp-ID and moved to DIR/HOST/TREE only when every
 * host's dump of the checkpoint succeeded (WAKE with COMMIT), so a crash
 * never leaves a half image where ibsnap restart looks.  TREE is the
 * agent's id: each ibsnap run of a job on one host is a tree of its own
 * (its own PID namespace).  TREE/ibsnap.meta says which job, checkpoint
 * and processes the image holds.
 *
 * IBSNAP_CRIU names the criu binary (default: criu from PATH) and
 * IBSNAP_CRIU_OPTS adds options to every dump and restore.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

#define MAX_ARGS 64

static const char *criu_bin(void)
{
	const char *b = getenv("IBSNAP_CRIU");

	return b && *b ? b : "criu";
}

/* Append IBSNAP_CRIU_OPTS (split on spaces) to @argv at @n. */
static int add_env_opts(char **argv, int n, char *buf, size_t len)
{
	const char *opts = getenv("IBSNAP_CRIU_OPTS");
	char *tok, *save;

	if (!opts)
		return n;
	isn_strlcpy(buf, opts, len);
	for (tok = strtok_r(buf, " ", &save); tok && n < MAX_ARGS - 1;
	     tok = strtok_r(NULL, " ", &save))
		argv[n++] = tok;
	return n;
}

/* Run criu with its output appended to @out; its exit status or -errno. */
static int run_criu(char **argv, const char *out)
{
	int status, fd;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		fd = open("/dev/null", O_RDONLY);
		if (fd >= 0)
			dup2(fd, 0);
		fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(argv[0], argv);
		fprintf(stderr, "%s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The last line of @path that mentions an error (or its last line). */
static bool last_error(const char *path, char *why, size_t len)
{
	char line[512], last[512] = "", first[512] = "";
	FILE *f = fopen(path, "r");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (strstr(line, "Error") || strstr(line, "error") || !last[0])
			isn_strlcpy(last, line, sizeof(last));
		/* the first error is the cause, the last a summary */
		if (!first[0] && strstr(line, "Error"))
			isn_strlcpy(first, line, sizeof(first));
	}
	fclose(f);
	if (first[0] || last[0])
		isn_strlcpy(why, first[0] ? first : last, len);
	return first[0] || last[0];
}

/* A failed dump into a full file system says so first. */
static void full_disk(const char *dir, char *why, size_t len)
{
	char cause[ISN_TEXT_MAX];
	struct statvfs sv;

	if (statvfs(dir, &sv) ||
	    (uint64_t)sv.f_bavail * sv.f_frsize >= (1ull << 20))
		return;
	isn_strlcpy(cause, why, sizeof(cause));
	snprintf(why, len, "no space left on the image directory's file "
			   "system (%s): %s",
		 dir, cause);
}

int isn_criu_check(char *why, size_t len)
{
	char out[] = "/tmp/ibsnap-criu-check.XXXXXX";
	char *argv[] = { (char *)criu_bin(), "check", NULL };
	int fd = mkstemp(out), ret;

	if (fd < 0) {
		snprintf(why, len, "mkstemp: %s", strerror(errno));
		return -1;
	}
	close(fd);
	ret = run_criu(argv, out);
	if (ret) {
		snprintf(why, len, "criu check exited with %d", ret);
		last_error(out, why, len);
	}
	unlink(out);
	return ret ? -1 : 0;
}

static int rm_one(const char *p, const struct stat *st, int type, struct FTW *f)
{
	(void)st;
	(void)type;
	(void)f;
	return remove(p) && errno != ENOENT ? -1 : 0;
}

void isn_rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int private_one(const char *p, const struct stat *st, int type,
		       struct FTW *f)
{
	(void)f;
	if (type == FTW_D || type == FTW_DP)
		chmod(p, 0700);
	else if (type == FTW_F && (st->st_mode & 077))
		chmod(p, st->st_mode & 0700);
	return 0;
}

/*
 * An image holds the job's memory: its files the owner's alone, whatever
 * mode CRIU (0664 less the umask for its images) or a plugin gave them.
 */
static void image_private(const char *dir)
{
	nftw(dir, private_one, 16, FTW_PHYS);
}

/*
 * The tier's manifest: this tree's checkpoint is complete (stage.c).  If
 * it cannot be updated it goes: without a manifest restart takes every
 * tree under its final name (each was renamed there complete), while a
 * stale one would hide this image.
 */
static int committed(struct isn_agent_ctx *ax)
{
	int ret = isn_manifest_set(ax->hostdir, ax->tree, ax->ckpt, "complete");
	char path[sizeof(ax->hostdir) + 16];

	if (ret) {
		fprintf(stderr, "ibsnap: %s/.manifest: %s (removed)\n",
			ax->hostdir, strerror(-ret));
		snprintf(path, sizeof(path), "%s/.manifest", ax->hostdir);
		unlink(path);
	}
	return 0;
}

static void stdio_link(int fd, char *out, size_t len)
{
	char path[32];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, out, len - 1);
	out[n > 0 ? n : 0] = '\0';
}

static int meta_write(struct isn_agent_ctx *ax)
{
	char path[sizeof(ax->tmp) + 16], tok[2 * ISN_TOKEN_LEN + 1];
	char link[PATH_MAX];
	uint32_t k;
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "%s/ibsnap.meta", ax->tmp);
	/* it holds the job's token: the owner's alone */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	f = fd < 0 ? NULL : fdopen(fd, "w");
	if (!f) {
		int err = -errno;

		if (fd >= 0)
			close(fd);
		return err;
	}
	isn_token_hex(ax->token, tok);
	fprintf(f,
		"version=1\njob=%s\ntoken=%s\nckpt=%u\nnranks=%u\n"
		"host=%s\nagent=%s\npidns=%d\nshell_job=%d\ncoord=%s\n",
		ax->job, tok, ax->ckpt, ax->nranks, ax->host, ax->tree,
		ax->pidns, ax->shell_job, ax->addr.text);
	for (fd = 0; fd < 3; fd++) {
		stdio_link(fd, link, sizeof(link));
		fprintf(f, "stdio%d=%s\n", fd, link);
	}
	/* an incremental image: the checkpoint of the image its pre-dump
	 * chains on (TREE/predump/parent), and how many images that makes */
	if (ax->ck_parent)
		fprintf(f, "parent_ckpt=%u\nchain=%u\n", ax->ck_parent,
			ax->ck_len);
	/* the job's trees on this host in this checkpoint: restart takes
	 * this image only with all of them at it */
	for (k = 0; k < ax->nhost_trees; k++)
		fprintf(f, "job_tree=%016llx\n",
			(unsigned long long)ax->host_trees[k]);
	for (k = 0; k < ax->nclients; k++)
		fprintf(f, "client=%u %u %u\n", ax->clients[3 * k],
			ax->clients[3 * k + 1], ax->clients[3 * k + 2]);
	return fclose(f) ? -errno : 0;
}

/*
 * One dump at a time per host and image dir (a flock on DIR/HOST, held
 * until closed): in a PID namespace whose /proc is the host's, CRIU's
 * parasite mounts a proc of its own on "proc.crtools" in the task's cwd,
 * and two trees dumped at once from one cwd (two ibsnap run of a job
 * started in one directory) collide there: "Can't create a directory
 * (-17)".  -1 when no lock could be had: the dump runs anyway.
 */
static int dump_lock(struct isn_agent_ctx *ax)
{
	int fd;

	/* the directory itself is the lock: no file left among the images */
	fd = open(ax->hostdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX))
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	return fd;
}

/*
 * CRIU's log (-v4: thousands of lines, a write() each) goes to a local
 * temporary dir and is copied next to the images when CRIU is done: line by
 * line onto a network file system (NFS; 9p in the lab guest, where it took
 * 20 s of a 25 s dump) it takes longer than the dump itself.  @path gets
 * the log's name for criu -o: in the temporary dir, or @dir/@name (none).
 */
static void log_begin(char *path, size_t len, const char *dir, const char *name)
{
	const char *t = getenv("TMPDIR");
	char tmp[PATH_MAX - 64];

	snprintf(tmp, sizeof(tmp), "%s/ibsnap-criu.XXXXXX",
		 t && *t ? t : "/tmp");
	if (mkdtemp(tmp))
		snprintf(path, len, "%s/%s", tmp, name);
	else
		snprintf(path, len, "%s/%s", dir, name);
}

/* Copy the log at @path to @dir/@name, if it was written elsewhere. */
static void log_end(const char *path, const char *dir, const char *name)
{
	char dst[PATH_MAX], buf[65536], *slash;
	ssize_t n = 0;
	int in, out;

	snprintf(dst, sizeof(dst), "%s/%s", dir, name);
	if (!strcmp(path, dst))
		return;
	in = open(path, O_RDONLY | O_CLOEXEC);
	out = in < 0 ?
		      -1 :
		      open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	while (out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, n) != n)
			break;
	if (out >= 0)
		close(out);
	if (in >= 0)
		close(in);
	unlink(path);
	isn_strlcpy(dst, path, sizeof(dst));
	slash = strrchr(dst, '/');
	if (slash) {
		*slash = '\0';
		rmdir(dst);
	}
}

/*
 * The pre-dump of this checkpoint, if any: TMP/predump, the parent of the
 * final dump.  It lives inside the image (TREE/predump, TREE/parent ->
 * predump), so the image is whole wherever it is moved or copied to.
 */
static bool predumped(struct isn_agent_ctx *ax)
{
	char path[sizeof(ax->tmp) + 32];

	snprintf(path, sizeof(path), "%s/" ISN_PREDUMP_DIR "/inventory.img",
		 ax->tmp);
	return (ax->ck_flags & ISN_CK_PREDUMPED) && !access(path, F_OK);
}

/* Where ibsnap's CRIU plugins are (BIN/../lib/criu), if built. */
static bool plugin_dir(char *out, size_t len)
{
	char dir[PATH_MAX - 32];

	if (isn_self_dir(dir, sizeof(dir)))
		return false;
	snprintf(out, len, "%s/../lib/criu", dir);
	return !access(out, F_OK);
}

/* ---- incremental chains (periodic --predump) ---- */

/* M of TIER/ckpt-N/.chain (DIR's, when staged): 0 if none */
static unsigned int chain_max(const struct isn_agent_ctx *ax)
{
	char path[sizeof(ax->persist) + 16];
	unsigned int m = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/" ISN_CHAIN_FILE,
		 ax->persist[0] ? ax->persist : ax->dir);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "max %u", &m) != 1)
		m = 0;
	fclose(f);
	return m;
}

/*
 * The parent of this checkpoint's pre-dump: the tree's previous image, if
 * the checkpoint may chain (its directory holds the chain file, written by
 * ibsnap run --dir --predump), this agent's last CRIU run on the tree was
 * the tracked dump of that image (so the soft-dirty bits count from it:
 * any pre-dump or dump since, failed or not, cleared chain_dir), the image
 * is still where it was committed, a sibling TIER/ckpt-K in the tier this
 * dump goes to, and its chain holds fewer images than allowed.  The link,
 * relative to TMP/predump (whose depth TREE/predump keeps), into @link;
 * false: a full image.
 */
static bool chain_parent(struct isn_agent_ctx *ax, char *link, size_t len)
{
	char path[sizeof(ax->chain_dir) + sizeof(ax->host) + 32];
	const char *a = strrchr(ax->dir, '/'), *b = strrchr(ax->chain_dir, '/');
	unsigned int max = chain_max(ax);
	uint32_t c;

	ax->ck_parent = 0;
	ax->ck_len = 1;
	if (max < 2 || !ax->chain_dir[0] || ax->chain_len >= max ||
	    ax->chain_pid != ax->init_pid || !a || !b)
		return false;
	/* the same tier, another checkpoint directory */
	if (a - ax->dir != b - ax->chain_dir ||
	    strncmp(ax->dir, ax->chain_dir, a - ax->dir) || !strcmp(a, b))
		return false;
	snprintf(path, sizeof(path), "%s/%s/%s", ax->chain_dir, ax->host,
		 ax->tree);
	if (isn_meta_u32(path, "ckpt", &c) || c != ax->chain_ckpt)
		return false;
	if (snprintf(link, len, "../../../..%s/%s/%s", b, ax->host, ax->tree) >=
	    (int)len)
		return false;
	ax->ck_parent = ax->chain_ckpt;
	ax->ck_len = ax->chain_len + 1;
	return true;
}

int isn_criu_predump(struct isn_agent_ctx *ax, char *why, size_t len)
{
	char pid[16], dir[sizeof(ax->tmp) + 16], log[sizeof(dir) + 16];
	char buf[1024], clog[PATH_MAX], plug[PATH_MAX], keep[PATH_MAX];
	char parent[PATH_MAX];
	char *argv[MAX_ARGS];
	int n = 0, ret, lock;
	bool chained = chain_parent(ax, parent, sizeof(parent));

	/* from here the soft-dirty bits count from this pre-dump: a chain
	 * goes on only from this checkpoint's image, once committed */
	ax->chain_dir[0] = '\0';
	isn_rm_rf(ax->tmp);
	snprintf(dir, sizeof(dir), "%s/" ISN_PREDUMP_DIR, ax->tmp);
	ret = isn_mkdir_p(ax->hostdir, 0700);
	if (!ret && (mkdir(ax->tmp, 0700) || mkdir(dir, 0700)))
		ret = -errno;
	if (ret) {
		snprintf(why, len, "%s: %s", dir, strerror(-ret));
		return ret;
	}
	ax->shell_job = isatty(0) || isatty(1) || isatty(2);
	snprintf(pid, sizeof(pid), "%d", (int)ax->init_pid);
	snprintf(log, sizeof(log), "%s/criu.out", dir);
	argv[n++] = (char *)criu_bin();
	argv[n++] = "pre-dump";
	argv[n++] = "-t";
	argv[n++] = pid;
	argv[n++] = "-D";
	argv[n++] = dir;
	log_begin(clog, sizeof(clog), dir, "predump.log");
	argv[n++] = "-o";
	argv[n++] = clog;
	argv[n++] = "-v4";
	/* soft-dirty tracking starts now: the final dump takes what changes */
	argv[n++] = "--track-mem";
	if (chained) {
		/* only what changed since the tree's previous image */
		argv[n++] = "--prev-images-dir";
		argv[n++] = parent;
	}
	/* the uverbs mappings the job still has (criu-plugin/uverbs_vma.c) */
	if (plugin_dir(plug, sizeof(plug))) {
		argv[n++] = "-L";
		argv[n++] = plug;
	}
	if (ax->shell_job)
		argv[n++] = "--shell-job";
	n = add_env_opts(argv, n, buf, sizeof(buf));
	argv[n] = NULL;
	lock = dump_lock(ax);
	ret = run_criu(argv, log);
	if (lock >= 0)
		close(lock);
	log_end(clog, dir, "predump.log");
	if (!ret) {
		image_private(dir);
		return 0;
	}
	snprintf(why, len, "criu pre-dump exited with %d", ret);
	snprintf(log, sizeof(log), "%s/predump.log", dir);
	if (!last_error(log, why, len)) {
		snprintf(log, sizeof(log), "%s/criu.out", dir);
		last_error(log, why, len);
	}
	full_disk(ax->hostdir, why, len);
	/* the job goes on; CRIU's account is kept beside the images */
	snprintf(log, sizeof(log), "%s/predump.log", dir);
	snprintf(keep, sizeof(keep), "%s/%s.predump-failed.log", ax->hostdir,
		 ax->tree);
	rename(log, keep);
	isn_rm_rf(ax->tmp);
	return -EIO;
}

int isn_criu_dump(struct isn_agent_ctx *ax, char *why, size_t len)
{
	char pid[16], log[sizeof(ax->tmp) + 16], buf[1024], clog[PATH_MAX];
	char *argv[MAX_ARGS];
	int n = 0, ret, lock;
	bool found, pre = predumped(ax);

	/* a dump starts no chain unless it tracks memory (after a pre-dump);
	 * either way the chain before it ends here (see chain_parent) */
	ax->chain_dir[0] = '\0';
	ax->ck_tracked = pre;
	if (!pre) {
		ax->ck_parent = 0;
		ax->ck_len = 1;
	}
	if (!pre) /* else the pre-dump is there: the parent */
		isn_rm_rf(ax->tmp);
	ret = isn_mkdir_p(ax->hostdir, 0700);
	if (!ret && !pre && mkdir(ax->tmp, 0700))
		ret = -errno;
	if (!ret)
		ret = meta_write(ax);
	if (ret) {
		snprintf(why, len, "%s: %s", ax->tmp, strerror(-ret));
		return ret;
	}
	ax->shell_job = isatty(0) || isatty(1) || isatty(2);
	snprintf(pid, sizeof(pid), "%d", (int)ax->init_pid);
	snprintf(log, sizeof(log), "%s/criu.out", ax->tmp);
	argv[n++] = (char *)criu_bin();
	argv[n++] = "dump";
	argv[n++] = "-t";
	argv[n++] = pid;
	argv[n++] = "-D";
	argv[n++] = ax->tmp;
	log_begin(clog, sizeof(clog), ax->tmp, "dump.log");
	argv[n++] = "-o";
	argv[n++] = clog;
	argv[n++] = "-v4";
	/* the job goes on; ibsnap checkpoint --stop ends it after commit */
	argv[n++] = "--leave-running";
	argv[n++] = "--tcp-established";
	argv[n++] = "--network-lock";
	argv[n++] = "nftables";
	if (ax->shell_job)
		argv[n++] = "--shell-job";
	if (pre) {
		/* only the pages dirtied since the pre-dump; the rest is
		 * "in the parent" (a relative link: the image moves whole) */
		argv[n++] = "--track-mem";
		argv[n++] = "--prev-images-dir";
		argv[n++] = ISN_PREDUMP_DIR;
	}
	n = add_env_opts(argv, n, buf, sizeof(buf));
	argv[n] = NULL;
	lock = dump_lock(ax);
	/* connections to other trees are held while they are restored */
	ret = isn_tcp_record(ax->init_pid, ax->tmp);
	if (ret)
		fprintf(stderr, "ibsnap: cannot list the tree's TCP connections: "
				"%s\n",
			strerror(-ret));
	/* files on tmpfs, gone after a reboot: CRIU wants them back */
	ret = isn_tmpfs_record(ax->init_pid, ax->tmp);
	if (ret)
		fprintf(stderr, "ibsnap: cannot record the tree's files on "
				"tmpfs: %s\n",
			strerror(-ret));
	ret = run_criu(argv, log);
	if (lock >= 0)
		close(lock);
	if (!ret) {
		log_end(clog, ax->tmp, "dump.log");
		image_private(ax->tmp);
		return 0;
	}
	/* the local copy first: the one beside the images may be cut short
	 * (a full disk) */
	snprintf(why, len, "criu dump exited with %d", ret);
	found = last_error(clog, why, len);
	log_end(clog, ax->tmp, "dump.log");
	snprintf(log, sizeof(log), "%s/dump.log", ax->tmp);
	if (!found)
		last_error(log, why, len);
	full_disk(ax->hostdir, why, len);
	return -EIO;
}

/* The image just committed: the next pre-dump may chain on it if its
 * dump tracked memory (the soft-dirty bits count from that dump). */
static int chain_from(struct isn_agent_ctx *ax, int ret)
{
	if (!ret && ax->ck_tracked) {
		isn_strlcpy(ax->chain_dir, ax->dir, sizeof(ax->chain_dir));
		ax->chain_ckpt = ax->ckpt;
		ax->chain_len = ax->ck_len ? ax->ck_len : 1;
		ax->chain_pid = ax->init_pid;
	}
	ax->ck_tracked = false;
	return ret;
}

static int image_commit(struct isn_agent_ctx *ax);

int isn_image_commit(struct isn_agent_ctx *ax)
{
	return chain_from(ax, image_commit(ax));
}

static int image_commit(struct isn_agent_ctx *ax)
{
	char final[sizeof(ax->hostdir) + sizeof(ax->tree) + 2];
	char old[sizeof(ax->hostdir) + sizeof(ax->tree) + 8];
	struct stat st;

	snprintf(final, sizeof(final), "%s/%s", ax->hostdir, ax->tree);
	if (stat(final, &st))
		return rename(ax->tmp, final) ? -errno : committed(ax);
	/* swap the new image in, then remove the old one */
	if (!renameat2(AT_FDCWD, ax->tmp, AT_FDCWD, final, RENAME_EXCHANGE)) {
		isn_rm_rf(ax->tmp);
		return committed(ax);
	}
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	/*
	 * No RENAME_EXCHANGE here (9p, some network file systems): the old
	 * image steps aside under a hidden name first.  A crash between the
	 * two renames leaves no image of this tree that restart would take
	 * (it skips hidden names), never a mix of two.
	 */
	snprintf(old, sizeof(old), "%s/.%s.old", ax->hostdir, ax->tree);
	isn_rm_rf(old);
	if (rename(final, old))
		return -errno;
	if (rename(ax->tmp, final)) {
		int err = -errno;

		rename(old, final);
		return err;
	}
	isn_rm_rf(old);
	return committed(ax);
}

void isn_image_discard(struct isn_agent_ctx *ax)
{
	char log[sizeof(ax->tmp) + 16];
	char keep[sizeof(ax->hostdir) + sizeof(ax->tree) + 24];

	ax->ck_tracked = false;
	if (!ax->tmp[0] || access(ax->tmp, F_OK))
		return;
	/* keep CRIU's account of a failed dump */
	snprintf(log, sizeof(log), "%s/dump.log", ax->tmp);
	snprintf(keep, sizeof(keep), "%s/%s.dump-failed.log", ax->hostdir,
		 ax->tree);
	if (!access(log, F_OK))
		rename(log, keep);
	isn_rm_rf(ax->tmp);
}

/*
 * A stdio pipe or socket to the old agent: criu gives the restored tree
 * ours instead, passed as fd 100 + n (criu's own stdio goes to its log).
 */
static int inherit_opt(const char *link, int fd, char *out, size_t len)
{
	unsigned long ino;
	int ret = -1;

	if (sscanf(link, "pipe:[%lu]", &ino) == 1)
		ret = snprintf(out, len, "fd[%d]:pipe[%lu]", 100 + fd, ino);
	else if (sscanf(link, "socket:[%lu]", &ino) == 1)
		ret = snprintf(out, len, "fd[%d]:socket[%lu]", 100 + fd, ino);
	if (ret < 0 || dup2(fd, 100 + fd) < 0)
		return -1;
	return 0;
}

int isn_meta_u32(const char *treedir, const char *key, uint32_t *v)
{
	char path[PATH_MAX], line[PATH_MAX + 16];
	size_t k = strlen(key);
	int ret = -ENOENT;
	char *end;
	FILE *f;

	snprintf(path, sizeof(path), "%s/ibsnap.meta", treedir);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (ret && fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, k) || line[k] != '=')
			continue;
		*v = (uint32_t)strtoul(line + k + 1, &end, 10);
		ret = end == line + k + 1 ? -EINVAL : 0;
	}
	fclose(f);
	return ret;
}

int isn_meta_read(struct isn_agent_ctx *ax, const char *treedir)
{
	char path[PATH_MAX], line[PATH_MAX + 16], *v;
	uint32_t r, p, fd, *cl;
	FILE *f;

	snprintf(path, sizeof(path), "%s/ibsnap.meta", treedir);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		v = strchr(line, '=');
		if (!v)
			continue;
		*v++ = '\0';
		if (!strcmp(line, "job"))
			isn_strlcpy(ax->job, v, sizeof(ax->job));
		else if (!strcmp(line, "token"))
			ax->have_token = !isn_token_parse(v, ax->token);
		else if (!strcmp(line, "agent"))
			ax->id = strtoull(v, NULL, 16);
		else if (!strcmp(line, "ckpt"))
			ax->ckpt = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(line, "nranks"))
			ax->nranks = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(line, "pidns"))
			ax->pidns = atoi(v);
		else if (!strcmp(line, "shell_job"))
			ax->shell_job = atoi(v);
		else if (!strcmp(line, "client") &&
			 sscanf(v, "%u %u %u", &r, &p, &fd) == 3) {
			cl = realloc(ax->clients,
				     3 * sizeof(*cl) * (ax->nclients + 1));
			if (!cl)
				break;
			ax->clients = cl;
			cl += 3 * ax->nclients++;
			cl[0] = r;
			cl[1] = p;
			cl[2] = fd;
		}
	}
	fclose(f);
	/* pipe inodes change in a restore: no inode check on waking */
	ax->inos = calloc(ax->nclients + 1, sizeof(*ax->inos));
	if (!ax->inos || !ax->have_token || !ax->job[0])
		return -EINVAL;
	return 0;
}

/*
 * stdio pipes to the old agent: ours take their place.  An --inherit-fd
 * option for each of TREEDIR/ibsnap.meta's stdio lines (each fd once; a
 * line without '=' or a repeated one is ignored), appended to @argv at @n
 * (the options' text in @inh); the new count.
 */
int isn_meta_stdio(const char *treedir, char inh[3][64], char **argv, int n)
{
	char meta[PATH_MAX], line[PATH_MAX + 16], *v;
	unsigned int done = 0;
	FILE *f;
	int fd;

	snprintf(meta, sizeof(meta), "%s/ibsnap.meta", treedir);
	f = fopen(meta, "r");
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		v = strchr(line, '=');
		if (v && sscanf(line, "stdio%d=", &fd) == 1 && fd >= 0 &&
		    fd < 3 && !(done & 1u << fd) &&
		    !inherit_opt(v + 1, fd, inh[fd], sizeof(inh[fd]))) {
			done |= 1u << fd;
			argv[n++] = "--inherit-fd";
			argv[n++] = inh[fd];
		}
	}
	if (f)
		fclose(f);
	return n;
}

int isn_criu_restore(struct isn_agent_ctx *ax, const char *treedir, char *why,
		     size_t len)
{
	char pidfile[PATH_MAX], log[PATH_MAX], buf[1024], inh[3][64];
	char *argv[MAX_ARGS];
	char clog[PATH_MAX];
	int n = 0, fd, ret;
	FILE *f;

	snprintf(pidfile, sizeof(pidfile), "%s/restore.pid", treedir);
	snprintf(log, sizeof(log), "%s/criu-restore.out", treedir);
	unlink(pidfile);
	argv[n++] = (char *)criu_bin();
	argv[n++] = "restore";
	argv[n++] = "-D";
	argv[n++] = (char *)treedir;
	log_begin(clog, sizeof(clog), treedir, "restore.log");
	argv[n++] = "-o";
	argv[n++] = clog;
	argv[n++] = "-v4";
	argv[n++] = "--restore-detached";
	argv[n++] = "--pidfile";
	argv[n++] = pidfile;
	argv[n++] = "--tcp-established";
	argv[n++] = "--network-lock";
	argv[n++] = "nftables";
	if (ax->shell_job)
		argv[n++] = "--shell-job";
	n = isn_meta_stdio(treedir, inh, argv, n);
	n = add_env_opts(argv, n, buf, sizeof(buf));
	argv[n] = NULL;
	/* the tree's files on tmpfs, if a reboot took them */
	isn_tmpfs_restore(treedir);
	/* the restored init is reparented to us when criu detaches */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	ret = run_criu(argv, log);
	log_end(clog, treedir, "restore.log");
	for (fd = 100; fd < 103; fd++)
		close(fd);
	if (ret) {
		snprintf(why, len, "criu restore exited with %d", ret);
		snprintf(log, sizeof(log), "%s/restore.log", treedir);
		last_error(log, why, len);
		return -EIO;
	}
	f = fopen(pidfile, "r");
	if (!f || fscanf(f, "%d", &ax->init_pid) != 1 || ax->init_pid <= 0) {
		snprintf(why, len, "%s: no pid", pidfile);
		ret = -EIO;
	}
	if (f)
		fclose(f);
	return ret;
}
