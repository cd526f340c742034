/* SPDX-License-Identifier: MIT */
/* A process tree, as /proc shows it: every thread's children, recursively. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

#define MAX_DEPTH 64

static int walk(pid_t pid, pid_t *pids, int n, int max, int depth)
{
	char path[64], buf[4096], *p, *end;
	struct dirent *e;
	FILE *f;
	DIR *d;

	if (n >= max)
		return n;
	pids[n++] = pid;
	if (depth > MAX_DEPTH)
		return n;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	while (d && (e = readdir(d))) {
		char cp[sizeof(path) + 256 + 16];

		if (e->d_name[0] == '.')
			continue;
		snprintf(cp, sizeof(cp), "%s/%s/children", path, e->d_name);
		f = fopen(cp, "r");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f))
			for (p = buf;; p = end) {
				long c = strtol(p, &end, 10);

				if (end == p)
					break;
				n = walk((pid_t)c, pids, n, max, depth + 1);
			}
		fclose(f);
	}
	if (d)
		closedir(d);
	return n;
}

int isn_proc_tree(pid_t root, pid_t *pids, int max)
{
	return walk(root, pids, 0, max, 0);
}
