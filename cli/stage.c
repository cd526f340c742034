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

/* The flusher's body: copy, sync, rename into place; its exit status. */
static int flush_run(struct isn_agent_ctx *ax)
{
	struct isn_agent_ctx dst = *ax;
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
	isn_strlcpy(dst.hostdir, ax->flush_dir, sizeof(dst.hostdir));
	snprintf(dst.tmp, sizeof(dst.tmp), "%s/.%s.flush-%u", dst.hostdir,
		 ax->tree, ax->ckpt);
	ret = isn_mkdir_p(dst.hostdir, 0700);
	if (!ret)
		ret = isn_manifest_set(dst.hostdir, ax->tree, ax->ckpt,
				       "copying");
	if (!ret) {
		stale_copies(dst.hostdir, ax->tree);
		ret = copy_tree(src, dst.tmp, &held);
	}
	if (!ret)
		ret = isn_image_commit(&dst); /* marks it complete */
	if (!ret)
		return 0;
	fprintf(stderr, "ibsnap: the copy of checkpoint %u to %s failed: %s\n",
		ax->ckpt, dst.hostdir, strerror(-ret));
	isn_rm_rf(dst.tmp);
	isn_manifest_set(dst.hostdir, ax->tree, ax->ckpt, "incomplete");
	return 1;
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

/* The trees of @hostdir whose checkpoint is complete; their number. */
static int tier_trees(const char *hostdir, struct isn_tree *t, int max)
{
	struct isn_agent_ctx ax;
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
			t[n].ckpt = ax.ckpt;
			n++;
		}
		free(ax.clients);
		free(ax.inos);
	}
	if (d)
		closedir(d);
	return n;
}

/*
 * How many of HOSTDIR's trees are complete (read into @t, scratch); the
 * newest checkpoint of them in *@newest.
 */
static int newest_in(const char *hostdir, struct isn_tree *t, int max,
		     uint32_t *newest)
{
	int k, n = tier_trees(hostdir, t, max);

	for (*newest = 0, k = 0; k < n; k++)
		*newest = t[k].ckpt > *newest ? t[k].ckpt : *newest;
	return n;
}

int isn_hostdir_complete(const char *hostdir)
{
	struct man_ent e[MAN_MAX];
	struct isn_tree t;
	int n = man_read(hostdir, e, MAN_MAX), i;

	for (i = 0; i < n; i++)
		if (!strcmp(e[i].state, "copying"))
			return -1;
	for (i = 0; i < n; i++)
		if (strcmp(e[i].state, "complete"))
			return 0;
	return tier_trees(hostdir, &t, 1);
}

int isn_pick_image(const char *const *tiers, int ntiers, const char *host,
		   struct isn_tree *t, int max, int *tier)
{
	char hostdir[PATH_MAX], best_dir[PATH_MAX];
	uint32_t newest, best = 0;
	struct dirent *e;
	int i, n, found = 0;
	DIR *d;

	*tier = -1;
	for (i = 0; i < ntiers; i++) {
		/* TIER/HOST, then the periodic checkpoints' TIER/ckpt-N/HOST */
		d = opendir(tiers[i]);
		e = NULL;
		do {
			if (e && strncmp(e->d_name, ISN_CKPT_PREFIX,
					 strlen(ISN_CKPT_PREFIX)))
				continue;
			if (snprintf(hostdir, sizeof(hostdir), "%s/%s%s%s",
				     tiers[i], e ? e->d_name : "", e ? "/" : "",
				     host) >= (int)sizeof(hostdir))
				continue;
			n = newest_in(hostdir, t, max, &newest);
			if (n && (*tier < 0 || newest > best)) {
				/* the first (fastest) tier with it */
				best = newest;
				*tier = i;
				strcpy(best_dir, hostdir);
			}
		} while (d && (e = readdir(d)));
		if (d)
			closedir(d);
	}
	if (*tier < 0)
		return 0;
	n = tier_trees(best_dir, t, max);
	for (i = 0; i < n; i++) {
		if (t[i].ckpt == best)
			t[found++] = t[i];
		else
			fprintf(stderr,
				"ibsnap restart: %s is of checkpoint %u, "
				"not %u: left alone\n",
				t[i].path, t[i].ckpt, best);
	}
	return found;
}
