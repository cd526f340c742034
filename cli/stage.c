/* SPDX-License-Identifier: MIT */
/*
 * Staged checkpoints (ibsnap checkpoint --stage FAST --dir DIR): each agent
 * dumps into FAST/HOST (the job resumes once that is complete), then a
 * child of the agent, the flusher, copies the tree to DIR/HOST/.TREE.flush-ID
 * and renames it to DIR/HOST/TREE when the copy is complete and synced.
 *
 * Every tier's host directory has a manifest, TIER/HOST/.manifest: one line
 * per tree and checkpoint, "TREE CKPT STATE", STATE one of complete,
 * copying (a flusher is at it, or died at it) and incomplete (given up).
 * It is rewritten whole under a lock (.manifest.lock): written to a
 * temporary name, synced, renamed.  ibsnap restart takes a tree only if the
 * manifest of its tier (when there is one) says its checkpoint is complete,
 * and takes the newest complete checkpoint from the fastest tier that has
 * it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "periodic.h"

#define MAN_NAME ".manifest"
#define MAN_MAX 64 /* entries kept */

struct man_ent {
	char tree[24];
	uint32_t ckpt;
	char state[16];
};

static int man_read(const char *hostdir, struct man_ent *e, int max)
{
	char path[PATH_MAX], line[128];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/" MAN_NAME, hostdir);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (n < max && fgets(line, sizeof(line), f)) {
		if (line[0] == '#')
			continue;
		if (sscanf(line, "%23s %u %15s", e[n].tree, &e[n].ckpt,
			   e[n].state) == 3)
			n++;
	}
	fclose(f);
	return n;
}

int isn_manifest_set(const char *hostdir, const char *tree, uint32_t ckpt,
		     const char *state)
{
	char path[PATH_MAX], tmp[PATH_MAX + 32];
	struct man_ent e[MAN_MAX + 1];
	int n, i, k, lock, fd, ret = 0;
	bool complete = !strcmp(state, "complete");
	FILE *f;

	/* no lock to be had (a file system without flock): go on, as a dump
	 * does; the writers of one manifest are the agents of one host */
	snprintf(path, sizeof(path), "%s/" MAN_NAME ".lock", hostdir);
	lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	while (lock >= 0 && flock(lock, LOCK_EX))
		if (errno != EINTR) {
			close(lock);
			lock = -1;
		}
	n = man_read(hostdir, e, MAN_MAX);
	if (n < 0)
		n = 0;
	/* this tree's entry for @ckpt goes; so do its older ones once a
	 * newer image is complete (the tier holds one image per tree) */
	for (i = 0, k = 0; i < n; i++) {
		if (!strcmp(e[i].tree, tree) &&
		    (e[i].ckpt == ckpt || (complete && e[i].ckpt < ckpt)))
			continue;
		e[k++] = e[i];
	}
	n = k;
	if (n == MAN_MAX) { /* the oldest goes */
		memmove(e, e + 1, (MAN_MAX - 1) * sizeof(e[0]));
		n--;
	}
	isn_strlcpy(e[n].tree, tree, sizeof(e[n].tree));
	e[n].ckpt = ckpt;
	isn_strlcpy(e[n].state, state, sizeof(e[n].state));
	n++;
	snprintf(tmp, sizeof(tmp), "%s/" MAN_NAME ".tmp-%d", hostdir,
		 (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	f = fd < 0 ? NULL : fdopen(fd, "w");
	if (!f) {
		ret = -errno;
		if (fd >= 0)
			close(fd);
		goto out;
	}
	fprintf(f, "# ibsnap manifest 1: tree checkpoint state (restart "
		   "takes only complete ones)\n");
	for (i = 0; i < n; i++)
		fprintf(f, "%s %u %s\n", e[i].tree, e[i].ckpt, e[i].state);
	if (fflush(f) || fsync(fileno(f)))
		ret = -errno;
	if (fclose(f) && !ret)
		ret = -errno;
	snprintf(path, sizeof(path), "%s/" MAN_NAME, hostdir);
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret)
		unlink(tmp);
	fd = open(hostdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
out:
	if (lock >= 0)
		close(lock);
	return ret;
}

/* 1 if @hostdir's manifest says TREE's @ckpt is complete, 0 if it does
 * not, -ENOENT if there is no manifest (an image from before them). */
static int man_complete(const char *hostdir, const char *tree, uint32_t ckpt)
{
	struct man_ent e[MAN_MAX];
	int n = man_read(hostdir, e, MAN_MAX), i;

	if (n < 0)
		return n == -ENOENT ? -ENOENT : 0;
	for (i = 0; i < n; i++)
		if (!strcmp(e[i].tree, tree) && e[i].ckpt == ckpt)
			return !strcmp(e[i].state, "complete");
	return 0;
}

int isn_manifest_complete(const char *hostdir, const char *tree, uint32_t ckpt)
{
	return man_complete(hostdir, tree, ckpt);
}

/* ---- chains of incremental images ---- */

#define CHAIN_HOPS 64 /* parent links followed at most */

/*
 * The next image of @cur's chain: the directory its "parent" link names,
 * resolved, into @next (size PATH_MAX); 1, 0 at the chain's end (no link),
 * -1 if the link leads nowhere.
 */
static int chain_next(const char *cur, char *next)
{
	char link[PATH_MAX + 8];
	struct stat st;

	snprintf(link, sizeof(link), "%s/parent", cur);
	if (lstat(link, &st))
		return errno == ENOENT ? 0 : -1;
	return realpath(link, next) ? 1 : -1;
}

/* @path is @dir's own subdirectory (TREE/predump: the same image) */
static bool inside(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return !strncmp(path, dir, n) && path[n] == '/';
}

int isn_chain_check(const char *treedir, char *why, size_t len)
{
	char cur[PATH_MAX], next[PATH_MAX], host[PATH_MAX], *tree;
	uint32_t want = 0, ckpt;
	int i, r;

	if (!realpath(treedir, cur)) {
		snprintf(why, len, "%s: %s", treedir, strerror(errno));
		return -1;
	}
	if (isn_meta_u32(cur, "parent_ckpt", &want))
		want = 0;
	for (i = 0; i < CHAIN_HOPS; i++) {
		r = chain_next(cur, next);
		if (r < 0) {
			snprintf(why, len,
				 "its chain is broken: %s/parent leads nowhere",
				 cur);
			return -1;
		}
		if (!r && want) {
			snprintf(why, len,
				 "its chain is broken: %s has no parent, "
				 "checkpoint %u expected",
				 cur, want);
			return -1;
		}
		if (!r)
			return 0;
		if (inside(next, cur)) { /* TREE/parent -> predump */
			isn_strlcpy(cur, next, sizeof(cur));
			continue;
		}
		/* another image: TIER/ckpt-K/HOST/TREE, complete there */
		isn_strlcpy(host, next, sizeof(host));
		tree = strrchr(host, '/');
		if (!tree || tree[1] == '.' ||
		    isn_meta_u32(next, "ckpt", &ckpt) ||
		    (want && ckpt != want)) {
			snprintf(why, len,
				 "its chain is broken: %s is not the image of "
				 "checkpoint %u",
				 next, want);
			return -1;
		}
		*tree++ = '\0';
		if (man_complete(host, tree, ckpt) == 0) {
			snprintf(why, len,
				 "its parent %s (checkpoint %u) is not "
				 "complete in %s/" MAN_NAME,
				 next, ckpt, host);
			return -1;
		}
		if (isn_meta_u32(next, "parent_ckpt", &want))
			want = 0;
		isn_strlcpy(cur, next, sizeof(cur));
	}
	snprintf(why, len, "its chain is longer than %d links", CHAIN_HOPS);
	return -1;
}

/* ---- the flusher ---- */

static int copy_file(int sfd, const char *name, int dfd, mode_t mode)
{
	char buf[1 << 16];
	ssize_t n, w;
	int in, out, ret = 0;

	in = openat(sfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0)
		return -errno;
	out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		     mode & 07777);
	if (out < 0) {
		ret = -errno;
		close(in);
		return ret;
	}
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			break;
		}
		for (w = 0; w < n && !ret;) {
			ssize_t k = write(out, buf + w, n - w);

			if (k < 0 && errno != EINTR)
				ret = -errno;
			else if (k > 0)
				w += k;
		}
		if (ret)
			break;
	}
	if (!ret && fsync(out))
		ret = -errno;
	close(out);
	close(in);
	return ret;
}

/*
 * A test hook: while the file $IBSNAP_FLUSH_HOLD names exists, the flusher
 * waits after its first file (at most 60 s), so that a test can see a copy
 * under way and kill it.
 */
static void flush_hold(void)
{
	const char *h = getenv("IBSNAP_FLUSH_HOLD");
	int i;

	for (i = 0; h && *h && !access(h, F_OK) && i < 600; i++)
		usleep(100000);
}

static int copy_link(int sfd, const char *name, int dfd)
{
	char to[PATH_MAX];
	ssize_t n = readlinkat(sfd, name, to, sizeof(to) - 1);

	if (n < 0)
		return -errno;
	to[n] = '\0';
	return symlinkat(to, dfd, name) ? -errno : 0;
}

/* Copy directory @src into the new directory @dst (files, subdirs,
 * symbolic links). */
static int copy_tree(const char *src, const char *dst, bool *held)
{
	char s2[PATH_MAX], d2[PATH_MAX];
	struct dirent *e;
	struct stat st;
	int sfd, dfd, ret = 0;
	DIR *d;

	if (mkdir(dst, 0700) && errno != EEXIST)
		return -errno;
	d = opendir(src);
	if (!d)
		return -errno;
	sfd = dirfd(d);
	dfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		ret = -errno;
		closedir(d);
		return ret;
	}
	while (!ret && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (fstatat(sfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW)) {
			ret = -errno;
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			snprintf(s2, sizeof(s2), "%s/%s", src, e->d_name);
			snprintf(d2, sizeof(d2), "%s/%s", dst, e->d_name);
			ret = copy_tree(s2, d2, held);
		} else if (S_ISREG(st.st_mode)) {
			ret = copy_file(sfd, e->d_name, dfd, st.st_mode);
			if (!ret && !*held) {
				*held = true;
				flush_hold();
			}
		} else if (S_ISLNK(st.st_mode)) {
			/* a pre-dumped image's "parent -> predump" (relative) */
			ret = copy_link(sfd, e->d_name, dfd);
		}
		/* CRIU's images are regular files; anything else is skipped */
	}
	if (!ret && fsync(dfd))
		ret = -errno;
	close(dfd);
	closedir(d);
	return ret;
}

/* Remove HOSTDIR/.TREE.flush-* (copies whose flusher was killed). */
static void stale_copies(const char *hostdir, const char *tree)
{
	char pre[64], path[PATH_MAX];
	struct dirent *e;
	DIR *d = opendir(hostdir);

	snprintf(pre, sizeof(pre), ".%s.flush-", tree);
	while (d && (e = readdir(d)))
		if (!strncmp(e->d_name, pre, strlen(pre)) &&
		    snprintf(path, sizeof(path), "%s/%s", hostdir, e->d_name) <
			    (int)sizeof(path))
			isn_rm_rf(path);
	if (d)
		closedir(d);
}

/*
 * Copy the image @src (TIER/ckpt-K/HOST/TREE of checkpoint @ckpt) to
 * @hostdir/TREE through a hidden copy, marked copying, then complete.
 */
static int copy_image(struct isn_agent_ctx *ax, const char *src,
		      const char *hostdir, uint32_t ckpt, bool *held)
{
	struct isn_agent_ctx dst = *ax;
	int ret;

	isn_strlcpy(dst.hostdir, hostdir, sizeof(dst.hostdir));
	dst.ckpt = ckpt;
	dst.ck_tracked = false;
	snprintf(dst.tmp, sizeof(dst.tmp), "%s/.%s.flush-%u", dst.hostdir,
		 ax->tree, ckpt);
	ret = isn_mkdir_p(dst.hostdir, 0700);
	if (!ret)
		ret = isn_manifest_set(dst.hostdir, ax->tree, ckpt, "copying");
	if (!ret) {
		stale_copies(dst.hostdir, ax->tree);
		ret = copy_tree(src, dst.tmp, held);
	}
	if (!ret)
		ret = isn_image_commit(&dst); /* marks it complete */
	if (!ret)
		return 0;
	fprintf(stderr, "ibsnap: the copy of checkpoint %u to %s failed: %s\n",
		ckpt, dst.hostdir, strerror(-ret));
	isn_rm_rf(dst.tmp);
	isn_manifest_set(dst.hostdir, ax->tree, ckpt, "incomplete");
	return ret;
}

/*
 * An incremental image is complete in DIR only with its whole chain: the
 * parents of @src (in the stage) that DIR does not hold complete are copied
 * first, the oldest first (a copy given up for a newer checkpoint, a
 * flusher killed).  Each keeps its place: TIER/ckpt-K/HOST/TREE, so the
 * relative links resolve in DIR as in the stage.  0 or -errno.
 */
static int flush_chain(struct isn_agent_ctx *ax, const char *src, bool *held)
{
	char stier[PATH_MAX], dtier[PATH_MAX], cur[PATH_MAX], next[PATH_MAX];
	char dst[2 * PATH_MAX], why[ISN_TEXT_MAX], *slash;
	static char up[CHAIN_HOPS][PATH_MAX];
	uint32_t ckpt, have;
	size_t sl;
	int n = 0, i, r, ret;

	/* the tiers: FAST of FAST/ckpt-N, DIR of DIR/ckpt-N */
	if (!realpath(ax->dir, stier) || !realpath(ax->persist, dtier))
		return 0;
	slash = strrchr(stier, '/');
	if (slash)
		*slash = '\0';
	slash = strrchr(dtier, '/');
	if (slash)
		*slash = '\0';
	sl = strlen(stier);
	if (!realpath(src, cur))
		return -errno;
	for (i = 0; i < CHAIN_HOPS && n < CHAIN_HOPS; i++) {
		r = chain_next(cur, next);
		if (r <= 0) {
			if (r < 0)
				return -ENOENT; /* the stage's chain is broken */
			break;
		}
		if (!inside(next, cur)) {
			if (strncmp(next, stier, sl) || next[sl] != '/')
				return -EXDEV; /* not of this tier */
			isn_strlcpy(up[n++], next, sizeof(up[0]));
		}
		isn_strlcpy(cur, next, sizeof(cur));
	}
	while (n-- > 0) {
		snprintf(dst, sizeof(dst), "%s%s", dtier, up[n] + sl);
		ret = isn_meta_u32(up[n], "ckpt", &ckpt);
		if (ret)
			return ret;
		isn_strlcpy(cur, dst, sizeof(cur));
		slash = strrchr(cur, '/');
		if (slash)
			*slash = '\0';
		if (slash && !isn_meta_u32(dst, "ckpt", &have) &&
		    have == ckpt && man_complete(cur, slash + 1, ckpt) != 0 &&
		    !isn_chain_check(dst, why, sizeof(why)))
			continue; /* DIR has it whole */
		fprintf(stderr,
			"ibsnap: checkpoint %u (a parent of %u) is not whole "
			"in %s: copied too\n",
			ckpt, ax->ckpt, cur);
		ret = copy_image(ax, up[n], cur, ckpt, held);
		if (ret)
			return ret;
	}
	return 0;
}

/* The flusher's body: copy, sync, rename into place; its exit status. */
static int flush_run(struct isn_agent_ctx *ax)
{
	char src[sizeof(ax->hostdir) + sizeof(ax->tree) + 2];
	bool held = false;
	int ret;

	sigset_t none;
	int sig;

	prctl(PR_SET_NAME, "ibsnap-flush");
	/* not the agent: no coordinator connection (its loss must show),
	 * none of the agent's signal handling */
	if (ax->sock >= 0)
		close(ax->sock);
	for (sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	signal(SIGINT, SIG_IGN); /* a ^C for the job is not for the copy */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	snprintf(src, sizeof(src), "%s/%s", ax->hostdir, ax->tree);
	/* marked first: ibsnap run keeps a checkpoint being copied to */
	ret = isn_mkdir_p(ax->flush_dir, 0700);
	if (!ret)
		ret = isn_manifest_set(ax->flush_dir, ax->tree, ax->ckpt,
				       "copying");
	/* a chained image's parents first */
	if (!ret)
		ret = flush_chain(ax, src, &held);
	if (ret) {
		fprintf(stderr,
			"ibsnap: the copy of checkpoint %u to %s failed: its "
			"parent images could not be copied: %s\n",
			ax->ckpt, ax->flush_dir, strerror(-ret));
		isn_manifest_set(ax->flush_dir, ax->tree, ax->ckpt,
				 "incomplete");
		return 1;
	}
	return copy_image(ax, src, ax->flush_dir, ax->ckpt, &held) ? 1 : 0;
}

int isn_flush_start(struct isn_agent_ctx *ax)
{
	pid_t pid;

	if (!ax->persist[0])
		return 0;
	ax->flush_ckpt = ax->ckpt;
	snprintf(ax->flush_dir, sizeof(ax->flush_dir), "%s/%s", ax->persist,
		 ax->host);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		_exit(flush_run(ax));
	ax->flush_pid = pid;
	return 0;
}

void isn_flush_abandon(struct isn_agent_ctx *ax)
{
	char tmp[sizeof(ax->flush_dir) + 64];

	if (ax->flush_pid <= 0)
		return;
	kill(ax->flush_pid, SIGKILL);
	while (waitpid(ax->flush_pid, NULL, 0) < 0 && errno == EINTR)
		;
	ax->flush_pid = 0;
	snprintf(tmp, sizeof(tmp), "%s/.%s.flush-%u", ax->flush_dir, ax->tree,
		 ax->flush_ckpt);
	isn_rm_rf(tmp);
	isn_manifest_set(ax->flush_dir, ax->tree, ax->flush_ckpt, "incomplete");
	fprintf(stderr,
		"ibsnap: the copy of checkpoint %u to %s was given up for "
		"a newer one\n",
		ax->flush_ckpt, ax->flush_dir);
}

int isn_flush_wait(struct isn_agent_ctx *ax)
{
	int status;

	if (ax->flush_pid <= 0)
		return 0;
	fprintf(stderr, "ibsnap: waiting for the copy of checkpoint %u to %s\n",
		ax->flush_ckpt, ax->flush_dir);
	while (waitpid(ax->flush_pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	ax->flush_pid = 0;
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -EIO;
}

/* ---- restart: which image ---- */

/*
 * Of the @n trees in @t, those whose checkpoint no other tree of @hostdir
 * has incomplete (a job's trees on a host are one checkpoint: with one of
 * them still being copied, or its copy killed, the others are no image of
 * the job); the new count.
 */
static int whole_ckpts(const char *hostdir, struct isn_tree *t, int n,
		       FILE *why)
{
	struct man_ent e[MAN_MAX];
	int m = man_read(hostdir, e, MAN_MAX), i, j, k = 0;

	for (i = 0; i < n; i++) {
		for (j = 0; j < m; j++) {
			bool done = !strcmp(e[j].state, "complete");

			if (e[j].ckpt == t[i].ckpt && !done)
				break;
		}
		if (j == m) {
			t[k++] = t[i];
			continue;
		}
		if (why)
			fprintf(why,
				"ibsnap restart: %s (checkpoint %u): "
				"tree %s of that checkpoint is %s in "
				"%s/" MAN_NAME ": not taken\n",
				t[i].path, t[i].ckpt, e[j].tree, e[j].state,
				hostdir);
	}
	return k;
}

/*
 * The trees of @hostdir whose checkpoint is complete, with the whole chain
 * of their parent images (an incremental image needs every one); their
 * number.  Why a tree under its final name, complete in the manifest, is
 * not taken goes to @why (if not NULL).
 */
static int tier_trees(const char *hostdir, struct isn_tree *t, int max,
		      FILE *why)
{
	struct isn_agent_ctx ax;
	char text[ISN_TEXT_MAX];
	struct dirent *e;
	int n = 0;
	DIR *d = opendir(hostdir);

	while (d && n < max && (e = readdir(d))) {
		if (e->d_name[0] == '.') /* temporary, old, the manifest */
			continue;
		memset(&ax, 0, sizeof(ax));
		if (snprintf(t[n].path, sizeof(t[n].path), "%s/%s", hostdir,
			     e->d_name) >= (int)sizeof(t[n].path))
			continue;
		if (!isn_meta_read(&ax, t[n].path) &&
		    man_complete(hostdir, e->d_name, ax.ckpt) != 0) {
			if (!isn_chain_check(t[n].path, text, sizeof(text))) {
				t[n].ckpt = ax.ckpt;
				n++;
			} else if (why) {
				fprintf(why,
					"ibsnap restart: %s (checkpoint %u): "
					"%s: not taken\n",
					t[n].path, ax.ckpt, text);
			}
		}
		free(ax.clients);
		free(ax.inos);
	}
	if (d)
		closedir(d);
	return whole_ckpts(hostdir, t, n, why);
}

/* The name of @t's tree (its directory's) */
static const char *tree_name(const struct isn_tree *t)
{
	const char *s = strrchr(t->path, '/');

	return s ? s + 1 : t->path;
}

/*
 * Every tree that an image of checkpoint @c among @t names (its job_tree=
 * lines: the job's trees on this host at that checkpoint) is among @t at
 * @c: else a restart from it would bring back part of the job alone, its
 * messages to the others lost or doubled.  An image from before the lines
 * names none.  Why not goes to @why.
 */
static bool whole_at(const char *hostdir, const struct isn_tree *t, int n,
		     uint32_t c, FILE *why)
{
	char line[PATH_MAX + 16], path[PATH_MAX + 16], *v;
	bool ok = true;
	int i, k;
	FILE *f;

	for (i = 0; i < n && ok; i++) {
		if (t[i].ckpt != c)
			continue;
		snprintf(path, sizeof(path), "%s/ibsnap.meta", t[i].path);
		f = fopen(path, "r");
		while (f && ok && fgets(line, sizeof(line), f)) {
			if (strncmp(line, "job_tree=", 9))
				continue;
			v = line + 9;
			v[strcspn(v, "\n")] = '\0';
			for (k = 0; k < n; k++)
				if (!strcmp(tree_name(&t[k]), v) &&
				    t[k].ckpt == c)
					break;
			if (k < n)
				continue;
			ok = false;
			if (!why)
				break;
			for (k = 0; k < n; k++)
				if (!strcmp(tree_name(&t[k]), v))
					break;
			if (k < n)
				fprintf(why,
					"ibsnap restart: checkpoint %u in %s: "
					"tree %s of it is at checkpoint %u "
					"there: not taken\n",
					c, hostdir, v, t[k].ckpt);
			else
				fprintf(why,
					"ibsnap restart: checkpoint %u in %s: "
					"tree %s of it has no complete image "
					"there: not taken\n",
					c, hostdir, v);
		}
		if (f)
			fclose(f);
	}
	return ok;
}

/*
 * The newest checkpoint of HOSTDIR all of whose trees are there, complete
 * (read into @t, scratch), in *@newest; how many trees are of it (0: none).
 */
static int newest_in(const char *hostdir, struct isn_tree *t, int max,
		     uint32_t *newest, FILE *why)
{
	int k, m, n = tier_trees(hostdir, t, max, why);
	uint64_t below = UINT64_MAX;
	bool found;

	for (;;) {
		for (found = false, k = 0; k < n; k++)
			if (t[k].ckpt < below &&
			    (!found || t[k].ckpt > *newest)) {
				*newest = t[k].ckpt;
				found = true;
			}
		if (!found)
			return 0;
		if (whole_at(hostdir, t, n, *newest, why))
			break;
		below = *newest; /* an older one */
	}
	for (m = 0, k = 0; k < n; k++)
		m += t[k].ckpt == *newest;
	return m;
}

int isn_hostdir_complete(const char *hostdir)
{
	static struct isn_tree t[64];
	struct man_ent e[MAN_MAX];
	int n = man_read(hostdir, e, MAN_MAX), i;
	uint32_t c;

	for (i = 0; i < n; i++)
		if (!strcmp(e[i].state, "copying"))
			return -1;
	for (i = 0; i < n; i++)
		if (strcmp(e[i].state, "complete"))
			return 0;
	/* a checkpoint with a tree of the job missing is no image of it */
	return newest_in(hostdir, t, 64, &c, NULL) > 0;
}

int isn_pick_image(const char *const *tiers, int ntiers, const char *host,
		   struct isn_tree *t, int max, int *tier)
{
	return isn_pick_image_why(tiers, ntiers, host, t, max, tier, stderr);
}

int isn_pick_image_why(const char *const *tiers, int ntiers, const char *host,
		       struct isn_tree *t, int max, int *tier, FILE *why)
{
	return isn_pick_image_at(tiers, ntiers, host, 0, t, max, tier, why);
}

/*
 * The host directories of one tier, in turn: TIER/HOST, then each periodic
 * checkpoint's TIER/ckpt-N/HOST (those that exist or not: the caller
 * looks).
 */
struct hostdirs {
	DIR *d;
	bool first;
};

static void hostdirs_open(struct hostdirs *it, const char *tier)
{
	it->d = opendir(tier);
	it->first = true;
}

static void hostdirs_close(struct hostdirs *it)
{
	if (it->d)
		closedir(it->d);
	it->d = NULL;
}

/* The next one into @out (PATH_MAX bytes); false at the end (closed). */
static bool hostdirs_next(struct hostdirs *it, const char *tier,
			  const char *host, char *out)
{
	struct dirent *e;

	if (it->first) {
		it->first = false;
		if (snprintf(out, PATH_MAX, "%s/%s", tier, host) < PATH_MAX)
			return true;
	}
	while (it->d && (e = readdir(it->d)))
		if (!strncmp(e->d_name, ISN_CKPT_PREFIX,
			     strlen(ISN_CKPT_PREFIX)) &&
		    snprintf(out, PATH_MAX, "%s/%s/%s", tier, e->d_name, host) <
			    PATH_MAX)
			return true;
	hostdirs_close(it);
	return false;
}

/* @hostdir holds checkpoint @want whole: its trees there (scratch @t) */
static int whole_in(const char *hostdir, uint32_t want, struct isn_tree *t,
		    int max, FILE *why)
{
	int k, m = 0, n = tier_trees(hostdir, t, max, why);

	for (k = 0; k < n; k++)
		m += t[k].ckpt == want;
	return m && whole_at(hostdir, t, n, want, why) ? m : 0;
}

int isn_pick_image_at(const char *const *tiers, int ntiers, const char *host,
		      uint32_t want, struct isn_tree *t, int max, int *tier,
		      FILE *why)
{
	char hostdir[PATH_MAX], best_dir[PATH_MAX];
	uint32_t newest = want, best = 0;
	struct hostdirs it;
	int i, n, found = 0;

	*tier = -1;
	for (i = 0; i < ntiers; i++) {
		hostdirs_open(&it, tiers[i]);
		while (hostdirs_next(&it, tiers[i], host, hostdir)) {
			n = want ? whole_in(hostdir, want, t, max, why) :
				   newest_in(hostdir, t, max, &newest, why);
			if (n && (*tier < 0 || newest > best)) {
				/* the first (fastest) tier with it */
				best = newest;
				*tier = i;
				strcpy(best_dir, hostdir);
			}
		}
	}
	if (*tier < 0)
		return 0;
	n = tier_trees(best_dir, t, max, NULL);
	for (i = 0; i < n; i++) {
		if (t[i].ckpt == best)
			t[found++] = t[i];
		else if (why && t[i].ckpt > best)
			fprintf(why,
				"ibsnap restart: %s is of checkpoint %u, not "
				"whole here: left alone\n",
				t[i].path, t[i].ckpt);
		else if (why)
			fprintf(why,
				"ibsnap restart: %s is of checkpoint %u, "
				"not %u: left alone\n",
				t[i].path, t[i].ckpt, best);
	}
	return found;
}

bool isn_ckpt_seen(const char *const *tiers, int ntiers, const char *host,
		   uint32_t c)
{
	char hostdir[PATH_MAX], path[2 * PATH_MAX];
	struct hostdirs it;
	struct dirent *f;
	bool seen = false;
	uint32_t k;
	DIR *h;
	int i;

	for (i = 0; i < ntiers && !seen; i++) {
		hostdirs_open(&it, tiers[i]);
		while (!seen && hostdirs_next(&it, tiers[i], host, hostdir)) {
			h = opendir(hostdir);
			while (h && !seen && (f = readdir(h)))
				seen = f->d_name[0] != '.' &&
				       snprintf(path, sizeof(path), "%s/%s",
						hostdir, f->d_name) <
					       (int)sizeof(path) &&
				       !isn_meta_u32(path, "ckpt", &k) &&
				       k == c;
			if (h)
				closedir(h);
		}
		hostdirs_close(&it);
	}
	return seen;
}
