/* SPDX-License-Identifier: MIT */
/*
 * The fabric registry: node identities, port slots, the QP directory and the
 * node-wide allocators, in one file mapped by every process of the fabric.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fab_ring.h"

#define FAB_GUID_PREFIX 0x02fa4efffe000000ull /* EUI-64: OUI 02:fa:4e, ff:fe */

static pthread_mutex_t fab_regs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fab_reg *fab_regs;
static pid_t fab_pid_cache;
static pthread_once_t fab_once = PTHREAD_ONCE_INIT;

void fab_log(const char *fmt, ...)
{
	int saved = errno;
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "fakehca: %s\n", buf);
	errno = saved;
}

static void fab_pid_refresh(void)
{
	fab_pid_cache = getpid();
}

static void fab_init_once(void)
{
	fab_pid_refresh();
	pthread_atfork(NULL, NULL, fab_pid_refresh);
	fab_faults_init();
}

/* getpid() is a syscall; the send path needs the pid of every producer. */
pid_t fab_pid(void)
{
	return fab_pid_cache;
}

/*
 * A packet's due time is read by another process: CLOCK_REALTIME, the one
 * clock all processes share.  CRIU restores each tree into a time namespace
 * of its own whose CLOCK_MONOTONIC goes on from the dumped value, so two
 * trees restored a moment apart disagree on it, by as much as the moment.
 */
uint64_t fab_wire_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Process-local times (timers, stalls). */
uint64_t fab_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the registry file ---- */

static bool fab_registry_valid(const struct fab_registry *r)
{
	return r->magic == FAB_MAGIC && r->version == FAB_LAYOUT_VERSION &&
	       r->size == sizeof(*r);
}

static int fab_registry_init(struct fab_registry *r)
{
	pthread_mutexattr_t attr;
	int ret;

	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	ret = pthread_mutex_init(&r->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	if (ret)
		return -ret;
	atomic_store(&r->next_uniq, 1);
	r->version = FAB_LAYOUT_VERSION;
	r->size = sizeof(*r);
	r->magic = FAB_MAGIC;
	return 0;
}

/*
 * Build a fresh registry beside @path and rename it over @path, so processes
 * still mapping an old layout keep their (now unlinked) file intact.
 * Returns -EAGAIN on success: the caller opens it again.
 */
static int fab_registry_rebuild(const char *dir, const char *path)
{
	char tmp[PATH_MAX];
	void *map;
	int fd, ret;

	snprintf(tmp, sizeof(tmp), "%s/fabric.new.%d", dir, (int)getpid());
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		fab_log("cannot create %s: %m", tmp);
		return ret;
	}
	if (ftruncate(fd, sizeof(struct fab_registry))) {
		ret = -errno;
		fab_log("cannot size %s: %m", tmp);
		goto fail;
	}
	map = mmap(NULL, sizeof(struct fab_registry), PROT_READ | PROT_WRITE,
		   MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		ret = -errno;
		fab_log("cannot map %s: %m", tmp);
		goto fail;
	}
	ret = fab_registry_init(map);
	munmap(map, sizeof(struct fab_registry));
	if (ret)
		goto fail;
	if (rename(tmp, path)) {
		ret = -errno;
		fab_log("cannot install %s: %m", path);
		goto fail;
	}
	close(fd);
	return -EAGAIN;
fail:
	unlink(tmp);
	close(fd);
	return ret;
}

/* One attempt under the file's flock; -EAGAIN: the file changed, retry. */
static int fab_registry_try(const char *dir, const char *path,
			    struct fab_registry **map_p)
{
	struct stat st, cur;
	void *map;
	int fd, ret;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		fab_log("cannot open %s: %m", path);
		return ret;
	}
	if (flock(fd, LOCK_EX)) {
		ret = -errno;
		fab_log("cannot lock %s: %m", path);
		goto out;
	}
	ret = -EAGAIN;
	if (fstat(fd, &st) || stat(path, &cur) || st.st_ino != cur.st_ino ||
	    st.st_dev != cur.st_dev)
		goto out;
	if (st.st_size == sizeof(struct fab_registry)) {
		map = mmap(NULL, sizeof(struct fab_registry),
			   PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (map == MAP_FAILED) {
			ret = -errno;
			fab_log("cannot map %s: %m", path);
			goto out;
		}
		if (fab_registry_valid(map)) {
			*map_p = map;
			ret = 0;
			goto out;
		}
		munmap(map, sizeof(struct fab_registry));
	}
	if (st.st_size)
		fab_log("%s: unknown layout, rebuilding the fabric", path);
	ret = fab_registry_rebuild(dir, path);
out:
	/* The mapping keeps the open file (and so its flock) alive: unlock. */
	flock(fd, LOCK_UN);
	close(fd);
	return ret;
}

static int fab_registry_map(const char *dir, struct fab_registry **map_p)
{
	char path[PATH_MAX];
	int i, ret;

	if (mkdir(dir, 0700) && errno != EEXIST) {
		ret = -errno;
		fab_log("cannot create fabric directory %s: %m", dir);
		return ret;
	}
	snprintf(path, sizeof(path), "%s/fabric", dir);
	for (i = 0; i < 16; i++) {
		ret = fab_registry_try(dir, path, map_p);
		if (ret != -EAGAIN)
			return ret;
	}
	fab_log("%s keeps changing under us", path);
	return -EBUSY;
}

/*
 * Port liveness.  The owner of a port slot holds a POSIX record lock on
 * byte <slot> of <dir>/ports.live for as long as it owns it.  The kernel
 * drops the lock when the process dies, and F_GETLK sees it from any PID
 * namespace -- unlike kill(pid, 0), which cannot see a process of another
 * namespace (two ibsnap run jobs) and may find an unrelated one under the
 * same number.  Record locks belong to the process: a fork()ed child does
 * not inherit them, and closing any descriptor of the file drops them all,
 * so a process opens the file once per registry mapping and never again.
 */
static int fab_live_open(struct fab_reg *reg)
{
	char path[PATH_MAX];
	int ret;

	snprintf(path, sizeof(path), "%s/ports.live", reg->dir);
	reg->live_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (reg->live_fd >= 0)
		return 0;
	ret = -errno;
	fab_log("cannot open %s: %m", path);
	return ret;
}

static int fab_live_lock(struct fab_reg *reg, uint32_t slot, short type)
{
	struct flock fl = {
		.l_type = type,
		.l_whence = SEEK_SET,
		.l_start = slot,
		.l_len = 1,
	};

	return fcntl(reg->live_fd, F_SETLK, &fl) ? -errno : 0;
}

/* Does this process hold @slot's lock?  (Its own locks never conflict.) */
static bool fab_live_mine(struct fab_reg *reg, uint32_t slot)
{
	return reg->mine_pid == fab_pid() &&
	       (reg->mine[slot / 64] >> (slot % 64) & 1);
}

static void fab_live_set_mine(struct fab_reg *reg, uint32_t slot, bool on)
{
	if (reg->mine_pid != fab_pid()) {
		/* a fork()ed child: the parent's locks are not ours */
		memset(reg->mine, 0, sizeof(reg->mine));
		reg->mine_pid = fab_pid();
	}
	if (on)
		reg->mine[slot / 64] |= 1ull << (slot % 64);
	else
		reg->mine[slot / 64] &= ~(1ull << (slot % 64));
}

/*
 * Is port @slot of generation @gen open, by a live process?  Any thread,
 * no lock: the owner locks before it publishes the slot and unlocks after
 * it freed it.  When the lock cannot be tested the answer is yes.
 */
bool fab_port_alive(struct fab_reg *reg, uint32_t slot, uint32_t gen)
{
	struct flock fl = {
		.l_type = F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = slot,
		.l_len = 1,
	};
	int saved = errno;
	bool alive;

	if (atomic_load(&reg->map->ports[slot].state) != (gen << 1 | 1))
		return false;
	if (fab_live_mine(reg, slot))
		return true;
	alive = fcntl(reg->live_fd, F_GETLK, &fl) || fl.l_type != F_UNLCK;
	errno = saved;
	return alive;
}

static int fab_reg_get(struct fab_reg **reg_p)
{
	const char *env = getenv("IBSNAP_FABRIC");
	char dir[PATH_MAX - 64];
	struct fab_reg *reg;
	int n, ret = 0;

	pthread_once(&fab_once, fab_init_once);
	if (env && *env)
		n = snprintf(dir, sizeof(dir), "%s", env);
	else
		n = snprintf(dir, sizeof(dir), "/dev/shm/ibsnap-%u",
			     (unsigned int)getuid());
	if (n < 0 || (size_t)n >= sizeof(dir)) {
		fab_log("fabric directory name too long");
		return -ENAMETOOLONG;
	}
	pthread_mutex_lock(&fab_regs_lock);
	for (reg = fab_regs; reg; reg = reg->next)
		if (!strcmp(reg->dir, dir))
			break;
	if (reg) {
		reg->refs++;
	} else {
		reg = calloc(1, sizeof(*reg));
		if (!reg) {
			ret = -ENOMEM;
			goto out;
		}
		strcpy(reg->dir, dir);
		ret = fab_registry_map(dir, &reg->map);
		if (!ret) {
			ret = fab_live_open(reg);
			if (ret)
				munmap(reg->map, sizeof(*reg->map));
		}
		if (ret) {
			free(reg);
			goto out;
		}
		reg->refs = 1;
		reg->next = fab_regs;
		fab_regs = reg;
	}
	*reg_p = reg;
out:
	pthread_mutex_unlock(&fab_regs_lock);
	return ret;
}

static void fab_reg_put(struct fab_reg *reg)
{
	struct fab_reg **pp;

	pthread_mutex_lock(&fab_regs_lock);
	if (--reg->refs == 0) {
		for (pp = &fab_regs; *pp != reg; pp = &(*pp)->next)
			;
		*pp = reg->next;
		close(reg->live_fd); /* drops this process's record locks */
		munmap(reg->map, sizeof(*reg->map));
		free(reg);
	}
	pthread_mutex_unlock(&fab_regs_lock);
}

int fab_lock(struct fab_registry *r)
{
	int ret = pthread_mutex_lock(&r->lock);

	if (ret == EOWNERDEAD) {
		fab_log("a process died holding the fabric lock; recovering");
		ret = pthread_mutex_consistent(&r->lock);
	}
	if (ret)
		fab_log("cannot lock the fabric: %s", strerror(ret));
	return -ret;
}

void fab_unlock(struct fab_registry *r)
{
	pthread_mutex_unlock(&r->lock);
}

/* ---- node identity ---- */

static uint32_t fab_qpn_base(uint32_t inc)
{
	uint32_t base = (0x11 + inc * 0x10000u) & FAB_QPN_MASK;

	return base < 2 ? 0x11 : base;
}

static uint32_t fab_key_base(uint32_t inc)
{
	uint32_t base = (0x200 + inc * 0x40000u) & 0xffffffu;

	return base ? base : 0x200;
}

static void fab_make_id(struct fab_node_id *id, const struct fab_node_rec *n,
			uint32_t index, uint32_t inc, uint32_t uniq)
{
	uint64_t guid = FAB_GUID_PREFIX | uniq;
	int i;

	memset(id, 0, sizeof(*id));
	memcpy(id->name, n->name, FAB_NAME_MAX);
	id->index = index;
	id->incarnation = inc;
	id->lid = (uint16_t)uniq;
	id->node_guid = htobe64(guid);
	id->gid[0].raw[0] = 0xfe;
	id->gid[0].raw[1] = 0x80;
	for (i = 0; i < 8; i++)
		id->gid[0].raw[8 + i] = (uint8_t)(guid >> (56 - 8 * i));
	id->gid[1].raw[10] = 0xff;
	id->gid[1].raw[11] = 0xff;
	id->gid[1].raw[12] = 127;
	id->gid[1].raw[13] = (uint8_t)(uniq >> 16);
	id->gid[1].raw[14] = (uint8_t)(uniq >> 8);
	id->gid[1].raw[15] = (uint8_t)uniq;
	id->qpn_base = fab_qpn_base(inc);
	id->key_base = fab_key_base(inc);
}

/* Lock held. */
static void fab_node_incarnate(struct fab_registry *r, uint32_t idx,
			       uint32_t inc)
{
	struct fab_node_rec *n = &r->nodes[idx];
	uint32_t uniq = atomic_load(&r->next_uniq);

	atomic_store(&r->next_uniq, uniq % FAB_MAX_UNIQ + 1);
	atomic_store(&r->uniq_node[uniq], (uint8_t)(idx + 1));
	atomic_store(&n->next_qpn, fab_qpn_base(inc));
	atomic_store(&n->next_key, fab_key_base(inc));
	atomic_store_explicit(&n->cur, (uint64_t)inc << 32 | uniq,
			      memory_order_release);
}

static int fab_node_find(struct fab_registry *r, const char *name)
{
	int i;

	for (i = 0; i < FAB_MAX_NODES; i++)
		if (atomic_load_explicit(&r->nodes[i].used,
					 memory_order_acquire) &&
		    !strncmp(r->nodes[i].name, name, FAB_NAME_MAX))
			return i;
	return -ENOENT;
}

/* Lock held. */
static int fab_node_get(struct fab_registry *r, const char *name)
{
	int i = fab_node_find(r, name);

	if (i >= 0)
		return i;
	for (i = 0; i < FAB_MAX_NODES; i++) {
		struct fab_node_rec *n = &r->nodes[i];

		if (atomic_load(&n->used))
			continue;
		memset(n->name, 0, sizeof(n->name));
		strcpy(n->name, name);
		atomic_store(&n->down, 0);
		fab_node_incarnate(r, i, 0);
		atomic_store_explicit(&n->used, 1, memory_order_release);
		return i;
	}
	fab_log("too many nodes (%d) for node %s", FAB_MAX_NODES, name);
	return -ENOSPC;
}

static int fab_node_name(const char *name, const char **name_p)
{
	if (!name) {
		name = getenv("IBSNAP_FAKE_NODE");
		if (!name || !*name)
			name = "host";
	}
	if (!*name || strlen(name) >= FAB_NAME_MAX) {
		fab_log("bad node name '%s'", name);
		return -EINVAL;
	}
	*name_p = name;
	return 0;
}

/* Run @fn on node @name with the fabric locked. */
static int fab_node_op(const char *name,
		       int (*fn)(struct fab_registry *, int, intptr_t),
		       intptr_t arg)
{
	struct fab_reg *reg;
	int idx, ret;

	ret = fab_node_name(name, &name);
	if (ret)
		return ret;
	ret = fab_reg_get(&reg);
	if (ret)
		return ret;
	ret = fab_lock(reg->map);
	if (!ret) {
		idx = fab_node_find(reg->map, name);
		ret = idx < 0 ? idx : fn(reg->map, idx, arg);
		fab_unlock(reg->map);
	}
	fab_reg_put(reg);
	return ret;
}

static int fab_do_reincarnate(struct fab_registry *r, int idx, intptr_t arg)
{
	uint64_t cur = atomic_load(&r->nodes[idx].cur);

	(void)arg;
	fab_node_incarnate(r, idx, (uint32_t)(cur >> 32) + 1);
	return 0;
}

static int fab_do_set_down(struct fab_registry *r, int idx, intptr_t down)
{
	atomic_store(&r->nodes[idx].down, down ? 1 : 0);
	return 0;
}

int fab_node_reincarnate(const char *node_name)
{
	return fab_node_op(node_name, fab_do_reincarnate, 0);
}

int fab_node_set_down(const char *node_name, bool down)
{
	return fab_node_op(node_name, fab_do_set_down, down);
}

uint32_t fab_alloc_qpn(struct fab_port *port)
{
	struct fab_node_rec *n = &port->reg->map->nodes[port->id.index];
	uint32_t qpn;

	do
		qpn = atomic_fetch_add(&n->next_qpn, 1) & FAB_QPN_MASK;
	while (qpn < 2);
	return qpn;
}

uint32_t fab_alloc_key(struct fab_port *port)
{
	struct fab_node_rec *n = &port->reg->map->nodes[port->id.index];
	uint32_t idx;

	do
		idx = atomic_fetch_add(&n->next_key, 1) & 0xffffffu;
	while (!idx);
	return idx << 8 |
	       ((idx * 0x9d + port->id.incarnation * 0x3b + 0x5a) & 0xff);
}

/* ---- ports ---- */

/* Lock held: free slot @slot (its QPs, its ring file). */
static void fab_slot_release(struct fab_reg *reg, uint32_t slot)
{
	struct fab_port_rec *rec = &reg->map->ports[slot];
	uint32_t gen = atomic_load(&rec->state) >> 1;
	char path[PATH_MAX];

	fab_dir_purge(reg->map, slot);
	atomic_store(&rec->pid, 0);
	atomic_store_explicit(&rec->state, gen << 1, memory_order_release);
	fab_ring_path(path, sizeof(path), reg->dir, slot, gen);
	unlink(path);
}

/* Lock held: free the slots whose owners died (their record locks went). */
static void fab_reclaim_dead(struct fab_reg *reg)
{
	uint32_t i, st;

	for (i = 0; i < FAB_MAX_PORTS; i++) {
		st = atomic_load(&reg->map->ports[i].state);
		if (!(st & 1) || fab_port_alive(reg, i, st >> 1))
			continue;
		fab_log("reclaiming port slot %u of a dead process (pid %d in "
			"its namespace)",
			i, (int)atomic_load(&reg->map->ports[i].pid));
		fab_slot_release(reg, i);
	}
}

/* Lock held: take a free slot for @port, create its ring, publish it. */
static int fab_slot_take(struct fab_port *port, uint32_t node)
{
	struct fab_registry *r = port->reg->map;
	struct fab_port_rec *rec;
	uint64_t cur = atomic_load(&r->nodes[node].cur);
	uint32_t i, gen;
	int ret;

	/* a free slot whose byte is still locked belongs to a process of an
	 * older registry layout: leave it */
	for (i = 0; i < FAB_MAX_PORTS; i++)
		if (!(atomic_load(&r->ports[i].state) & 1) &&
		    !fab_live_lock(port->reg, i, F_WRLCK))
			break;
	if (i == FAB_MAX_PORTS) {
		fab_log("all %d port slots of the fabric are in use",
			FAB_MAX_PORTS);
		return -EMFILE;
	}
	rec = &r->ports[i];
	gen = ((atomic_load(&rec->state) >> 1) + 1) & FAB_GEN_MASK;
	gen = gen ? gen : 1;
	ret = fab_ring_create(port->reg->dir, i, gen, &port->ring);
	if (ret) {
		fab_live_lock(port->reg, i, F_UNLCK);
		return ret;
	}
	fab_live_set_mine(port->reg, i, true);
	port->slot = i;
	port->gen = gen;
	port->uniq = (uint32_t)cur;
	fab_make_id(&port->id, &r->nodes[node], node, (uint32_t)(cur >> 32),
		    port->uniq);
	atomic_store(&rec->pid, fab_pid());
	atomic_store(&rec->node, node);
	atomic_store(&rec->uniq, port->uniq);
	atomic_store_explicit(&rec->state, gen << 1 | 1, memory_order_release);
	return 0;
}

int fab_port_open(const char *node_name, struct fab_port **port_p)
{
	struct fab_port *port;
	int node, ret;

	ret = fab_node_name(node_name, &node_name);
	if (ret)
		return ret;
	port = calloc(1, sizeof(*port));
	if (!port)
		return -ENOMEM;
	ret = fab_reg_get(&port->reg);
	if (ret)
		goto fail_free;
	ret = fab_lock(port->reg->map);
	if (ret)
		goto fail_put;
	fab_reclaim_dead(port->reg);
	node = fab_node_get(port->reg->map, node_name);
	ret = node < 0 ? node : fab_slot_take(port, node);
	fab_unlock(port->reg->map);
	if (ret)
		goto fail_put;
	*port_p = port;
	return 0;
fail_put:
	fab_reg_put(port->reg);
fail_free:
	free(port);
	return ret;
}

void fab_port_close(struct fab_port *port)
{
	struct fab_registry *r;

	if (!port)
		return;
	r = port->reg->map;
	if (!fab_lock(r)) {
		/* a fork()ed child must not free its parent's slot */
		if (atomic_load(&r->ports[port->slot].state) ==
			    (port->gen << 1 | 1) &&
		    fab_live_mine(port->reg, port->slot)) {
			fab_slot_release(port->reg, port->slot);
			fab_live_set_mine(port->reg, port->slot, false);
			fab_live_lock(port->reg, port->slot, F_UNLCK);
		}
		fab_unlock(r);
	}
	fab_port_unmap_peers(port);
	fab_ring_unmap(port->ring);
	fab_reg_put(port->reg);
	free(port);
}

const struct fab_node_id *fab_port_node(const struct fab_port *port)
{
	return &port->id;
}

uint32_t fab_port_slot(const struct fab_port *port)
{
	return port->slot;
}

uint32_t fab_port_gen(const struct fab_port *port)
{
	return port->gen;
}

void fab_port_stats(const struct fab_port *port, struct fab_stats *stats)
{
	*stats = port->stats;
}
