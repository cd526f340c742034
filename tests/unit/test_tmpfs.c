/* SPDX-License-Identifier: MIT */
/*
 * The tree's files on tmpfs across a reboot (cli/tmpfs.c): a child holds a
 * file open, another mapped, a FIFO open and its cwd in a directory on
 * /dev/shm (as Open MPI's session directory in /tmp); the record copies
 * them, the directory goes (as a reboot takes it), the restore brings back
 * each path with its contents, mode and type; a path that exists again is
 * left as it is.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/magic.h>
#include <cmocka.h>

#include "cli.h"

static char top[64], img[64];

static void rm_rf(const char *path)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	assert_int_equal(system(cmd), 0);
}

static void put(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static void expect(const char *path, const char *text, mode_t type, mode_t mode)
{
	char buf[256] = "";
	struct stat st;
	int fd;

	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_mode & S_IFMT, type);
	assert_int_equal(st.st_mode & 07777, mode);
	if (!text)
		return;
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_true(read(fd, buf, sizeof(buf) - 1) >= 0);
	close(fd);
	assert_string_equal(buf, text);
}

/* The child: opens, maps and enters what it is given, then waits. */
static pid_t holder(int ready)
{
	char p[128];
	void *map;
	pid_t pid = fork();
	int fd;

	assert_true(pid >= 0);
	if (pid)
		return pid;
	snprintf(p, sizeof(p), "%s/sess/pid.1/open.txt", top);
	if (open(p, O_RDONLY) < 0)
		_exit(1);
	snprintf(p, sizeof(p), "%s/sess/pid.1/topo.sm", top);
	fd = open(p, O_RDWR);
	map = fd < 0 ? MAP_FAILED :
		       mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		_exit(2);
	close(fd);
	snprintf(p, sizeof(p), "%s/sess/fifo", top);
	if (open(p, O_RDWR) < 0)
		_exit(3);
	snprintf(p, sizeof(p), "%s/sess/cwd", top);
	if (chdir(p))
		_exit(4);
	if (write(ready, "r", 1) != 1)
		_exit(5);
	pause();
	_exit(0);
}

static void test_tmpfs_round_trip(void **state)
{
	char p[256], c;
	struct statfs sf;
	int ready[2];
	pid_t pid;

	(void)state;
	snprintf(top, sizeof(top), "/dev/shm/test_tmpfs.%d", (int)getpid());
	snprintf(img, sizeof(img), "/dev/shm/test_tmpfs_img.%d", (int)getpid());
	/* the test needs tmpfs where it puts the files */
	assert_int_equal(statfs("/dev/shm", &sf), 0);
	assert_true(sf.f_type == TMPFS_MAGIC);
	assert_int_equal(mkdir(top, 0755), 0);
	assert_int_equal(mkdir(img, 0700), 0);
	snprintf(p, sizeof(p), "%s/sess", top);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/sess/pid.1", top);
	assert_int_equal(mkdir(p, 0750), 0);
	snprintf(p, sizeof(p), "%s/sess/cwd", top);
	assert_int_equal(mkdir(p, 0711), 0);
	snprintf(p, sizeof(p), "%s/sess/pid.1/open.txt", top);
	put(p, "open file", 0640);
	snprintf(p, sizeof(p), "%s/sess/pid.1/topo.sm", top);
	put(p, "mapped segment", 0600);
	assert_int_equal(truncate(p, 4096), 0);
	snprintf(p, sizeof(p), "%s/sess/fifo", top);
	assert_int_equal(mkfifo(p, 0620), 0);
	assert_int_equal(chmod(p, 0620), 0);
	/* not the tree's: not recorded */
	snprintf(p, sizeof(p), "%s/sess/other", top);
	put(p, "nobody's", 0644);

	assert_int_equal(pipe(ready), 0);
	pid = holder(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	assert_int_equal(isn_tmpfs_record(pid, img), 0);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);

	/* the reboot */
	rm_rf(top);
	assert_int_not_equal(access(top, F_OK), 0);
	assert_int_equal(isn_tmpfs_restore(img), 0);

	snprintf(p, sizeof(p), "%s/sess", top);
	expect(p, NULL, S_IFDIR, 0700);
	snprintf(p, sizeof(p), "%s/sess/pid.1", top);
	expect(p, NULL, S_IFDIR, 0750);
	snprintf(p, sizeof(p), "%s/sess/cwd", top);
	expect(p, NULL, S_IFDIR, 0711);
	snprintf(p, sizeof(p), "%s/sess/pid.1/open.txt", top);
	expect(p, "open file", S_IFREG, 0640);
	snprintf(p, sizeof(p), "%s/sess/fifo", top);
	expect(p, NULL, S_IFIFO, 0620);
	snprintf(p, sizeof(p), "%s/sess/pid.1/topo.sm", top);
	expect(p, NULL, S_IFREG, 0600);
	{
		struct stat st;

		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_size, 4096);
	}
	snprintf(p, sizeof(p), "%s/sess/other", top);
	assert_int_not_equal(access(p, F_OK), 0);

	/* a path that exists is not written over */
	snprintf(p, sizeof(p), "%s/sess/pid.1/open.txt", top);
	put(p, "newer", 0600);
	assert_int_equal(isn_tmpfs_restore(img), 0);
	expect(p, "newer", S_IFREG, 0600);

	/* no record: nothing to do */
	rm_rf(top);
	rm_rf(img);
	assert_int_equal(isn_tmpfs_restore(img), 0);
	assert_int_not_equal(access(top, F_OK), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tmpfs_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
