/* SPDX-License-Identifier: MIT */
/* The CLI's side of the coordinator: addresses, starting ibsnapd, I/O. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

int isn_self_dir(char *out, size_t len)
{
	char exe[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n < 0)
		return -errno;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	if (strlen(exe) >= len)
		return -ENAMETOOLONG;
	strcpy(out, exe);
	return 0;
}

void isn_hostname(char *out, size_t len)
{
	if (gethostname(out, len))
		isn_strlcpy(out, "localhost", len);
	out[len - 1] = '\0';
}

bool isn_env_token(uint8_t tok[ISN_TOKEN_LEN])
{
	const char *t = getenv("IBSNAP_TOKEN");

	return t && *t && !isn_token_parse(t, tok);
}

int isn_coord_addr(const char *opt, struct isn_addr *a)
{
	const char *env = getenv("IBSNAP_COORD");
	const char *s = opt ? opt : env;
	int ret;

	if (s && *s) {
		ret = isn_addr_parse(s, a);
		if (ret)
			fprintf(stderr,
				"ibsnap: %s: not a coordinator address "
				"(HOST:PORT or unix:PATH)\n",
				s);
		return ret;
	}
	ret = isn_addr_default(a);
	if (ret) {
		fprintf(stderr, "ibsnap: the default socket path is too "
				"long\n");
		return ret;
	}
	/* as the processes will see it in IBSNAP_COORD */
	snprintf(a->text, sizeof(a->text), "unix:%s", a->path);
	return 0;
}

/*
 * Start the host's default ibsnapd: it binds its socket, then detaches,
 * so once the started process has exited the socket is there (or another
 * daemon had it, which is as good).
 */
static int start_daemon(const struct isn_addr *a)
{
	char dir[PATH_MAX], bin[PATH_MAX + 16];
	int status, fd;
	pid_t pid;

	if (isn_self_dir(dir, sizeof(dir)))
		return -ENOENT;
	snprintf(bin, sizeof(bin), "%s/ibsnapd", dir);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		fd = open("/dev/null", O_RDWR);
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			close(fd);
		}
		unsetenv("LD_PRELOAD");
		execl(bin, "ibsnapd", "--implicit", "--sock", a->path,
		      (char *)NULL);
		fprintf(stderr, "ibsnap: cannot start %s: %m\n", bin);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -ESRCH;
}

int isn_coord_dial(const char *who, const struct isn_addr *a, bool start)
{
	int fd = isn_connect(a), ret, i;

	if (fd >= 0)
		return fd;
	if (start && isn_addr_is_default(a) &&
	    (fd == -ENOENT || fd == -ECONNREFUSED)) {
		ret = isn_sock_dir_make(a->path);
		if (!ret)
			ret = start_daemon(a);
		fd = ret ? ret : isn_connect(a);
		/* two started at once: the one that lost the lock exits 0
		 * while the winner may not listen yet (up to 5 s) */
		for (i = 0;
		     !ret && i < 100 && (fd == -ENOENT || fd == -ECONNREFUSED);
		     i++) {
			usleep(50000);
			fd = isn_connect(a);
		}
		if (fd >= 0)
			return fd;
	}
	if (who) {
		if (isn_addr_is_default(a) &&
		    (fd == -ENOENT || fd == -ECONNREFUSED))
			fprintf(stderr, "%s: no ibsnapd is running (%s)\n", who,
				a->path);
		else
			fprintf(stderr,
				"%s: cannot reach the coordinator %s: "
				"%s\n",
				who, a->text, strerror(-fd));
	}
	return fd;
}

int isn_coord_recv(int fd, struct isn_rx *rx, struct isn_hdr *h,
		   const void **payload)
{
	int ret = isn_recv_msg(fd, rx, -1, h, payload);

	if (ret == -EPROTONOSUPPORT)
		fprintf(stderr, "ibsnap: the coordinator speaks another "
				"protocol version\n");
	return ret;
}
