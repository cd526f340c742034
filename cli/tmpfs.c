/* SPDX-License-Identifier: MIT */
/*
 * Files of the tree on tmpfs, carried across a reboot.
 *
 * CRIU dumps an open or mapped file by its path and expects to find it
 * there at restore; only unlinked files (ghosts) go into the image.  A
 * file on tmpfs (/tmp, /dev/shm, /run) is gone after a reboot: Open MPI's
 * session directory (/tmp/ompi.HOST.UID/...: hwloc's topology segment that
 * every rank maps, mpirun's debugger FIFO), shared-memory segments, PMIx's
 * files.  The restore then fails ("Can't open file ... on restore").
 *
 * So the dump records, in TREEDIR/tmpfs.list, every path on tmpfs that a
 * process of the tree has open, mapped, or as its cwd, with the
 * directories above it up to the file system's root, and copies the
 * regular files' contents into TREEDIR/tmpfs/PATH.  Before a restore,
 * every listed path that does not exist is created again (mode, owner,
 * contents); a path that exists is left alone (a restart in the same
 * boot, or another job's file).  Lines: "TYPE MODE UID GID PATH", TYPE d
 * (directory), f (regular file), p (FIFO); parents before children.
 *
 * The contents are copied before CRIU freezes the tree, while the ranks
 * are held in the checkpoint: a segment another thread writes meanwhile
 * may be copied mid-write (hwloc's topology is written once, at start).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "cli.h"

#define TMPFS_LIST "tmpfs.list"
#define TMPFS_DIR "tmpfs"
#define MAX_PIDS 4096
#define MAX_PATHS 1024

struct tmpfs_rec {
	char *paths[MAX_PATHS];
	int n;
};

static bool on_tmpfs(const char *path)
{
	struct statfs sf;

	return !statfs(path, &sf) && sf.f_type == TMPFS_MAGIC;
}

static void add_path(struct tmpfs_rec *r, const char *path)
{
	int i;

	/* devtmpfs is tmpfs too, but the kernel fills it at boot */
	if (path[0] != '/' || r->n >= MAX_PATHS ||
	    (!strncmp(path, "/dev/", 5) && strncmp(path, "/dev/shm/", 9)) ||
	    !on_tmpfs(path))
		return;
	for (i = 0; i < r->n; i++)
		if (!strcmp(r->paths[i], path))
			return;
	r->paths[r->n] = strdup(path);
	if (r->paths[r->n])
		r->n++;
}

static void add_link(struct tmpfs_rec *r, const char *link)
{
	char target[PATH_MAX];
	ssize_t len = readlink(link, target, sizeof(target) - 1);

	if (len <= 0)
		return;
	target[len] = '\0';
	/* an unlinked file is CRIU's (a ghost file in the image) */
	if (len > 10 && !strcmp(target + len - 10, " (deleted)"))
		return;
	add_path(r, target);
}

/* @pid's open files, file mappings and cwd */
static void add_proc(struct tmpfs_rec *r, pid_t pid)
{
	char path[64], line[PATH_MAX + 128], *p;
	struct dirent *e;
	FILE *f;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/cwd", (int)pid);
	add_link(r, path);
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	while (d && (e = readdir(d))) {
		char fdp[sizeof(path) + 256 + 2];

		if (e->d_name[0] == '.')
			continue;
		snprintf(fdp, sizeof(fdp), "%s/%s", path, e->d_name);
		add_link(r, fdp);
	}
	if (d)
		closedir(d);
	/* "addr perms offset dev inode   path" */
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		p = strchr(line, '/');
		if (!p || strstr(p, " (deleted)"))
			continue;
		add_path(r, p);
	}
	if (f)
		fclose(f);
}

static int copy_contents(const char *src, const char *dst)
{
	char buf[65536];
	int in, out, ret = 0;
	ssize_t n, w;

	in = open(src, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (in < 0)
		return -errno;
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0) {
		ret = -errno;
		close(in);
		return ret;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		w = write(out, buf, n);
		if (w != n) {
			ret = w < 0 ? -errno : -EIO;
			break;
		}
	}
	if (n < 0)
		ret = -errno;
	if (close(out) && !ret)
		ret = -errno;
	close(in);
	return ret;
}

/* mkdir -p of @path's parent (0700) */
static int mkparents(const char *path)
{
	char p[PATH_MAX], *s;

	isn_strlcpy(p, path, sizeof(p));
	s = strrchr(p, '/');
	if (!s || s == p)
		return 0;
	*s = '\0';
	return isn_mkdir_p(p, 0700);
}

/* One line, and the file's contents into @dir/tmpfs/PATH. */
static int record_one(FILE *out, const char *dir, const char *path,
		      const struct stat *st)
{
	char dst[2 * PATH_MAX];
	char type;
	int ret;

	if (S_ISDIR(st->st_mode))
		type = 'd';
	else if (S_ISREG(st->st_mode))
		type = 'f';
	else if (S_ISFIFO(st->st_mode))
		type = 'p';
	else
		return 0; /* sockets, devices: CRIU's own business */
	if (type == 'f') {
		snprintf(dst, sizeof(dst), "%s/" TMPFS_DIR "%s", dir, path);
		ret = mkparents(dst);
		if (!ret)
			ret = copy_contents(path, dst);
		if (ret)
			return ret;
	}
	fprintf(out, "%c %o %u %u %s\n", type,
		(unsigned int)(st->st_mode & 07777), (unsigned int)st->st_uid,
		(unsigned int)st->st_gid, path);
	return 0;
}

/* The directories from @path's file system root down to @path's parent,
 * then @path itself, each once (@done: the paths written so far). */
static int record_path(FILE *out, const char *dir, const char *path,
		       struct tmpfs_rec *done)
{
	size_t len = strlen(path), top = len, i;
	struct stat st, cur;
	char p[PATH_MAX];
	int k, ret;

	if (len >= sizeof(p) || lstat(path, &st))
		return 0; /* gone meanwhile */
	/* the topmost ancestor on the same file system */
	for (i = len - 1; i > 0; i--) {
		if (path[i] != '/')
			continue;
		memcpy(p, path, i);
		p[i] = '\0';
		if (stat(p, &cur) || cur.st_dev != st.st_dev)
			break;
		top = i;
	}
	for (i = top; i <= len; i++) {
		if (i < len && path[i] != '/')
			continue;
		memcpy(p, path, i);
		p[i] = '\0';
		for (k = 0; k < done->n; k++)
			if (!strcmp(done->paths[k], p))
				break;
		if (k < done->n || lstat(p, &cur))
			continue;
		ret = record_one(out, dir, p, &cur);
		if (ret)
			return ret;
		add_path(done, p);
	}
	return 0;
}

int isn_tmpfs_record(pid_t init_pid, const char *dir)
{
	static pid_t pids[MAX_PIDS];
	struct tmpfs_rec r = { .n = 0 }, done = { .n = 0 };
	char list[PATH_MAX];
	int i, n, ret = 0;
	FILE *out;

	n = isn_proc_tree(init_pid, pids, MAX_PIDS);
	for (i = 0; i < n; i++)
		add_proc(&r, pids[i]);
	if (!r.n)
		return 0;
	snprintf(list, sizeof(list), "%s/" TMPFS_LIST, dir);
	out = fopen(list, "w");
	if (!out)
		ret = -errno;
	for (i = 0; out && !ret && i < r.n; i++)
		ret = record_path(out, dir, r.paths[i], &done);
	if (out && fclose(out) && !ret)
		ret = -errno;
	for (i = 0; i < r.n; i++)
		free(r.paths[i]);
	for (i = 0; i < done.n; i++)
		free(done.paths[i]);
	return ret;
}

int isn_tmpfs_restore(const char *treedir)
{
	char list[PATH_MAX], line[PATH_MAX + 64], src[2 * PATH_MAX], *path;
	unsigned int mode, uid, gid;
	int ret = 0, err, off;
	struct stat st;
	char type;
	FILE *f;

	snprintf(list, sizeof(list), "%s/" TMPFS_LIST, treedir);
	f = fopen(list, "r");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "%c %o %u %u %n", &type, &mode, &uid, &gid,
			   &off) != 4)
			continue;
		path = line + off;
		if (path[0] != '/' || !lstat(path, &st))
			continue; /* there already */
		err = 0;
		if (type == 'd') {
			if (mkdir(path, mode & 07777) && errno != EEXIST)
				err = -errno;
		} else if (type == 'p') {
			if (mkfifo(path, mode & 07777))
				err = -errno;
		} else if (type == 'f') {
			snprintf(src, sizeof(src), "%s/" TMPFS_DIR "%s",
				 treedir, path);
			err = copy_contents(src, path);
		} else {
			continue;
		}
		if (!err &&
		    (chown(path, uid, gid) || chmod(path, mode & 07777)))
			err = -errno;
		if (err) {
			fprintf(stderr, "ibsnap restart: %s: %s\n", path,
				strerror(-err));
			if (!ret)
				ret = err;
		}
	}
	fclose(f);
	return ret;
}
