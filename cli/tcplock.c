/* SPDX-License-Identifier: MIT */
/*
 * TCP connections between the trees of a job, held across a restart.
 *
 * Each tree of a job is dumped and restored by its own criu.  A connection
 * from one tree to another (perftest's, between a server and a client run
 * under two "ibsnap run") has one end in each image.  When criu has
 * restored the first end it takes the socket out of repair mode and lifts
 * its network lock: the kernel sends on it (a window probe, a
 * retransmission) while the other end does not exist yet, the peer's
 * kernel answers with a reset, and the connection is gone before the
 * second tree is back.
 *
 * So the dump records the established TCP connections of the tree
 * (TCP_CONNS in its image directory: "family local-addr local-port
 * remote-addr remote-port" lines), and ibsnap restart, before it restores
 * any tree, drops every packet of those connections with an nftables table
 * of its own, deleted once every tree of the host is back: the segments
 * sent meanwhile are lost and sent again, as after any loss.  nftables
 * through libnftables (which criu itself uses), loaded when needed.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define TCP_CONNS "tcp.conns"
#define MAX_INOS 4096
#define MAX_PIDS 4096

/* ---- the dump: the tree's established connections ---- */

/* The socket inodes @pid has open, added to @inos (n so far). */
static int add_sock_inos(pid_t pid, unsigned long *inos, int n)
{
	char path[64], link[64];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	while (d && n < MAX_INOS && (e = readdir(d))) {
		char fdp[sizeof(path) + 256 + 2];
		ssize_t len;

		snprintf(fdp, sizeof(fdp), "%s/%s", path, e->d_name);
		len = readlink(fdp, link, sizeof(link) - 1);
		if (len <= 0)
			continue;
		link[len] = '\0';
		if (!strncmp(link, "socket:[", 8))
			inos[n++] = strtoul(link + 8, NULL, 10);
	}
	if (d)
		closedir(d);
	return n;
}

static bool has_ino(const unsigned long *inos, int n, unsigned long ino)
{
	int i;

	for (i = 0; i < n; i++)
		if (inos[i] == ino)
			return true;
	return false;
}

/* /proc/net/tcp{,6} address "0100007F:4E20" into text and a port. */
static int parse_addr(const char *s, int family, char *out, size_t len,
		      unsigned int *port)
{
	unsigned char a[16];
	unsigned int w[4], i;
	int nw = family == AF_INET ? 1 : 4;

	for (i = 0; i < (unsigned int)nw; i++)
		if (sscanf(s + 8 * i, "%8x", &w[i]) != 1)
			return -1;
	if (s[8 * nw] != ':' || sscanf(s + 8 * nw + 1, "%x", port) != 1)
		return -1;
	/* each 32-bit word is printed as the host reads it */
	for (i = 0; i < (unsigned int)nw; i++)
		memcpy(a + 4 * i, &w[i], 4);
	return inet_ntop(family, a, out, len) ? 0 : -1;
}

static void record_table(FILE *out, pid_t pid, int family,
			 const unsigned long *inos, int n)
{
	char path[64], line[512], la[64], ra[64], ls[80], rs[80];
	unsigned int lp, rp, st;
	unsigned long ino;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/net/tcp%s", (int)pid,
		 family == AF_INET ? "" : "6");
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, " %*s %79s %79s %x %*s %*s %*s %*s %*s %lu", ls,
			   rs, &st, &ino) != 4 ||
		    st != 1 /* TCP_ESTABLISHED */ || !has_ino(inos, n, ino))
			continue;
		if (parse_addr(ls, family, la, sizeof(la), &lp) ||
		    parse_addr(rs, family, ra, sizeof(ra), &rp))
			continue;
		fprintf(out, "%s %s %u %s %u\n", family == AF_INET ? "ip" : "ip6",
			la, lp, ra, rp);
	}
	fclose(f);
}

int isn_tcp_record(pid_t init_pid, const char *dir)
{
	unsigned long *inos = malloc(MAX_INOS * sizeof(*inos));
	pid_t *pids = malloc(MAX_PIDS * sizeof(*pids));
	char path[PATH_MAX];
	int n = 0, np, i;
	FILE *out;

	if (!inos || !pids) {
		free(inos);
		free(pids);
		return -ENOMEM;
	}
	np = isn_proc_tree(init_pid, pids, MAX_PIDS);
	for (i = 0; i < np; i++)
		n = add_sock_inos(pids[i], inos, n);
	free(pids);
	snprintf(path, sizeof(path), "%s/%s", dir, TCP_CONNS);
	out = fopen(path, "w");
	if (!out) {
		free(inos);
		return -errno;
	}
	if (n) {
		record_table(out, init_pid, AF_INET, inos, n);
		record_table(out, init_pid, AF_INET6, inos, n);
	}
	free(inos);
	return fclose(out) ? -errno : 0;
}

/* ---- the restart: hold them until every tree is back ---- */

struct nft_ctx;
static struct {
	void *lib;
	struct nft_ctx *(*ctx_new)(uint32_t flags);
	void (*ctx_free)(struct nft_ctx *ctx);
	int (*run)(struct nft_ctx *ctx, const char *buf);
	struct nft_ctx *ctx;
	char table[64];
} nft;

static int nft_open(void)
{
	if (nft.ctx)
		return 0;
	nft.lib = dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!nft.lib)
		return -ENOENT;
	nft.ctx_new = (struct nft_ctx * (*)(uint32_t)) dlsym(nft.lib,
							     "nft_ctx_new");
	nft.ctx_free = (void (*)(struct nft_ctx *))dlsym(nft.lib,
							 "nft_ctx_free");
	nft.run = (int (*)(struct nft_ctx *, const char *))dlsym(
		nft.lib, "nft_run_cmd_from_buffer");
	if (!nft.ctx_new || !nft.ctx_free || !nft.run)
		return -ENOENT;
	nft.ctx = nft.ctx_new(0);
	return nft.ctx ? 0 : -ENOMEM;
}

/* Append the rules of one TCP_CONNS file to @cmd; the number added. */
static int add_rules(const char *treedir, char **cmd, size_t *len)
{
	char path[PATH_MAX], fam[8], la[64], ra[64];
	unsigned int lp, rp;
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", treedir, TCP_CONNS);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fscanf(f, "%7s %63s %u %63s %u", fam, la, &lp, ra, &rp) == 5) {
		char rule[512];
		int m, i;

		if (strcmp(fam, "ip") && strcmp(fam, "ip6"))
			continue;
		for (i = 0; i < 2; i++) {
			m = snprintf(rule, sizeof(rule),
				     "add rule inet %s %s %s saddr %s tcp sport "
				     "%u %s daddr %s tcp dport %u drop\n",
				     nft.table, i ? "in" : "out", fam, la, lp,
				     fam, ra, rp);
			char *nc = realloc(*cmd, *len + m + 1);

			if (!nc)
				break;
			memcpy(nc + *len, rule, m + 1);
			*cmd = nc;
			*len += m;
		}
		n++;
	}
	fclose(f);
	return n;
}

int isn_tcp_hold(char **treedirs, int ntrees)
{
	size_t len;
	char *cmd;
	int i, n = 0, ret;

	snprintf(nft.table, sizeof(nft.table), "ibsnap-restart-%d",
		 (int)getpid());
	len = (size_t)asprintf(
		&cmd,
		"add table inet %s\n"
		"add chain inet %s out { type filter hook output priority "
		"-400; policy accept; }\n"
		"add chain inet %s in { type filter hook input priority -400; "
		"policy accept; }\n",
		nft.table, nft.table, nft.table);
	if ((int)len < 0)
		return -ENOMEM;
	for (i = 0; i < ntrees; i++)
		n += add_rules(treedirs[i], &cmd, &len);
	if (!n) {
		free(cmd);
		nft.table[0] = '\0';
		return 0;
	}
	ret = nft_open();
	if (!ret && nft.run(nft.ctx, cmd))
		ret = -EIO;
	free(cmd);
	if (ret) {
		fprintf(stderr,
			"ibsnap restart: cannot hold the job's %d TCP "
			"connection(s) during the restore (nftables: %s); they "
			"may be reset\n",
			n, ret == -ENOENT ? "no libnftables" : "refused");
		nft.table[0] = '\0';
		return ret;
	}
	return n;
}

void isn_tcp_release(void)
{
	char cmd[128];

	if (!nft.table[0] || !nft.ctx)
		return;
	snprintf(cmd, sizeof(cmd), "delete table inet %s\n", nft.table);
	if (nft.run(nft.ctx, cmd))
		fprintf(stderr, "ibsnap restart: could not delete nftables "
				"table %s\n",
			nft.table);
	nft.table[0] = '\0';
}
