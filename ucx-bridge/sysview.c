// SPDX-License-Identifier: MIT
/*
 * The shim's view of /dev/infiniband and /sys/class/infiniband for its
 * virtual devices (what UCX 1.13 probes, docs/ucx.md):
 *
 *   /dev/infiniband/uverbsN                        a character device, rw
 *   /sys/class/infiniband/NAME/device/numa_node    -1
 *   /sys/class/infiniband/NAME/ports/P/gids/I      the virtual GID
 *   /sys/class/infiniband/NAME/ports/P/gid_attrs/types/I
 *                                                  "IB/RoCE v1", "RoCE v2"
 *
 * and the directories above them.  Anything else under a virtual device is
 * absent.  Served only where the system cannot answer: devices of the fake
 * backend.  GID attributes need an open context of the device (UCX reads
 * them after opening it); without one they are absent, as for a device that
 * has no such attribute.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../verbs-shim/shim.h"
#include "sysview.h"

#define DEV_PFX "/dev/infiniband"
#define SYS_PFX "/sys/class/infiniband/"
#define UVERBS_MAJOR 231
#define UVERBS_MINOR0 192

bool isn_sv_maybe(const char *path)
{
	return path && path[0] == '/' &&
	       ((path[1] == 'd' &&
		 !strncmp(path, DEV_PFX, sizeof(DEV_PFX) - 1)) ||
		(path[1] == 's' &&
		 !strncmp(path, SYS_PFX, sizeof(SYS_PFX) - 2)));
}

/* Only devices no system file describes: those of the fake backend. */
static bool sv_active(void)
{
	return isn_g.ops.name && !strcmp(isn_g.ops.name, "fake");
}

static int sv_device(const char *name, size_t len, bool by_dev_name)
{
	int i;

	for (i = 0; i < ISN_MAX_DEVICES && isn_devices[i].ibdev.name[0]; i++) {
		const char *n = by_dev_name ? isn_devices[i].ibdev.dev_name :
					      isn_devices[i].ibdev.name;

		if (strlen(n) == len && !strncmp(n, name, len))
			return i;
	}
	return -1;
}

/* The next component of @p (after one '/'); its length, 0 at the end. */
static size_t sv_next(const char **p)
{
	const char *s = *p;

	while (*s == '/')
		s++;
	*p = s;
	return strcspn(s, "/");
}

static bool sv_is(const char *p, size_t len, const char *word)
{
	return strlen(word) == len && !strncmp(p, word, len);
}

/* An open context of device @dev, or NULL (isn_objs_lock held). */
static struct isn_context *sv_ctx(int dev)
{
	struct isn_list *e;
	struct isn_context *c;

	isn_obj_for_each(e, ISN_OBJ_CTX)
	{
		c = isn_container_of(e, struct isn_context, entry);
		if (c->vctx.context.device == &isn_devices[dev].ibdev &&
		    c->real)
			return c;
	}
	return NULL;
}

/* ports/P/{gids,gid_attrs/types}/I of device @dev. */
static void sv_gid(int dev, unsigned int port, unsigned int idx, bool type,
		   struct isn_sv_node *node)
{
	struct ibv_gid_entry e;
	struct isn_context *c;
	const uint8_t *g;
	int ret = ENODEV;

	pthread_mutex_lock(&isn_objs_lock);
	c = sv_ctx(dev);
	if (c)
		ret = _ibv_query_gid_ex(&c->vctx.context, port, idx, &e, 0,
					sizeof(e));
	pthread_mutex_unlock(&isn_objs_lock);
	if (ret)
		return; /* absent */
	node->type = ISN_SV_FILE;
	g = e.gid.raw;
	if (type)
		snprintf(node->text, sizeof(node->text), "%s\n",
			 e.gid_type == IBV_GID_TYPE_ROCE_V2 ? "RoCE v2" :
							      "IB/RoCE v1");
	else
		snprintf(node->text, sizeof(node->text),
			 "%02x%02x:%02x%02x:%02x%02x:%02x%02x:%02x%02x:%02x%"
			 "02x:"
			 "%02x%02x:%02x%02x\n",
			 g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8],
			 g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
}

/* Below ports/: P[/gids[/I]|/gid_attrs[/types[/I]]]. */
static void sv_ports(int dev, const char *p, struct isn_sv_node *node)
{
	unsigned long port, idx;
	bool type = false;
	size_t n;
	char *end;

	n = sv_next(&p);
	if (!n) {
		node->type = ISN_SV_DIR;
		return;
	}
	port = strtoul(p, &end, 10);
	if (end != p + n || port != 1)
		return;
	p += n;
	n = sv_next(&p);
	if (sv_is(p, n, "gid_attrs")) {
		p += n;
		n = sv_next(&p);
		if (n && !sv_is(p, n, "types"))
			return;
		type = true;
	} else if (n && !sv_is(p, n, "gids")) {
		return;
	}
	if (!n) {
		node->type = ISN_SV_DIR;
		return;
	}
	p += n;
	n = sv_next(&p);
	if (!n) {
		node->type = ISN_SV_DIR;
		return;
	}
	idx = strtoul(p, &end, 10);
	if (end == p + n && !*end && idx < 256)
		sv_gid(dev, (unsigned int)port, (unsigned int)idx, type, node);
}

/* Below /sys/class/infiniband/NAME. */
static void sv_sys_dev(int dev, const char *p, struct isn_sv_node *node)
{
	size_t n = sv_next(&p);

	if (!n) {
		node->type = ISN_SV_DIR;
	} else if (sv_is(p, n, "device")) {
		p += n;
		n = sv_next(&p);
		if (!n) {
			node->type = ISN_SV_DIR;
		} else if (sv_is(p, n, "numa_node") && !p[n]) {
			node->type = ISN_SV_FILE;
			strcpy(node->text, "-1\n");
		}
	} else if (sv_is(p, n, "ports")) {
		sv_ports(dev, p + n, node);
	}
}

void isn_sv_lookup(const char *path, struct isn_sv_node *node)
{
	const char *p;
	size_t n;
	int dev;

	memset(node, 0, sizeof(*node));
	if (!isn_sv_maybe(path) || !sv_active())
		return;
	if (path[1] == 'd') {
		p = path + sizeof(DEV_PFX) - 1;
		if (*p && *p != '/')
			return; /* /dev/infinibandX */
		n = sv_next(&p);
		if (!n) {
			node->type = ISN_SV_DIR;
			return;
		}
		dev = sv_device(p, n, true);
		if (dev >= 0 && !p[n]) {
			node->type = ISN_SV_CHR;
			node->minor = UVERBS_MINOR0 + (unsigned int)dev;
		}
		return;
	}
	if (strncmp(path, SYS_PFX, sizeof(SYS_PFX) - 1))
		return; /* the class directory itself, infiniband_verbs... */
	p = path + sizeof(SYS_PFX) - 1;
	n = sv_next(&p);
	dev = n ? sv_device(p, n, false) : -1;
	if (dev < 0)
		return; /* the class directory and other devices: the system's */
	node->type = ISN_SV_ENOENT;
	sv_sys_dev(dev, p + n, node);
}

void isn_sv_stat(const struct isn_sv_node *node, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_nlink = 1;
	st->st_blksize = 4096;
	switch (node->type) {
	case ISN_SV_DIR:
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		break;
	case ISN_SV_CHR:
		st->st_mode = S_IFCHR | 0666;
		st->st_rdev = makedev(UVERBS_MAJOR, node->minor);
		break;
	default:
		st->st_mode = S_IFREG | 0444;
		st->st_size = (off_t)strlen(node->text);
		break;
	}
}

int isn_sv_open(const struct isn_sv_node *node, int flags)
{
	size_t len = strlen(node->text);
	int fd;

	if (node->type == ISN_SV_CHR) {
		errno = ENXIO; /* no kernel driver behind it */
		return -1;
	}
	if (node->type == ISN_SV_DIR) {
		errno = EISDIR;
		return -1;
	}
	if ((flags & O_ACCMODE) != O_RDONLY) {
		errno = EACCES;
		return -1;
	}
	fd = memfd_create("ibsnap-sysfs",
			  (flags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
	if (fd < 0)
		return -1;
	if (write(fd, node->text, len) != (ssize_t)len ||
	    lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		errno = EIO;
		return -1;
	}
	return fd;
}
