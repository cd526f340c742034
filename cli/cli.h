/* SPDX-License-Identifier: MIT */
/* The ibsnap command line: one file per command, plus the host agent. */
#ifndef IBSNAP_CLI_H
#define IBSNAP_CLI_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "net.h"
#include "proto.h"

#define IBSNAP_VERSION "0.1.0"

/* exit status of checkpoint when CRIU cannot run and no image was written */
#define ISN_EXIT_NO_IMAGE 3

/* The namespace init's parent-death signal, off around a dump (init.c). */
#define ISN_SIG_DISARM (SIGRTMIN + 2)
#define ISN_SIG_ARM (SIGRTMIN + 3)
#define ISN_INIT_ARMED "ibsnap-init"
#define ISN_INIT_DISARMED "ibsnap-init-d"

int isn_cmd_run(int argc, char **argv);
int isn_cmd_init(int argc, char **argv);
int isn_cmd_checkpoint(int argc, char **argv);
int isn_cmd_restart(int argc, char **argv);
int isn_cmd_status(int argc, char **argv);

/* ---- coordinator connection (coordc.c) ---- */

/* --coord, else $IBSNAP_COORD, else the host's default daemon. */
int isn_coord_addr(const char *opt, struct isn_addr *a);
/*
 * Connect; for the default daemon and @start, start ibsnapd if none runs.
 * A socket, or -errno (a message was printed, prefixed with @who).
 */
int isn_coord_dial(const char *who, const struct isn_addr *a, bool start);
/* Wait for one message (blocking); 1, or -errno. */
int isn_coord_recv(int fd, struct isn_rx *rx, struct isn_hdr *h,
		   const void **payload);
/* Token from $IBSNAP_TOKEN; true if set (and valid). */
bool isn_env_token(uint8_t tok[ISN_TOKEN_LEN]);
void isn_hostname(char *out, size_t len);
/* The directory of this binary (for ibsnapd, libibsnap.so). */
int isn_self_dir(char *out, size_t len);

/* ---- the host agent (agent.c): ibsnap run's and restart's parent role ---- */

/* trees of one job on a host that an image names (restart takes 64) */
#define ISN_HOST_TREES 64

struct isn_agent_ctx {
	struct isn_addr addr;
	bool may_start; /* the default daemon: start one when reconnecting */
	char job[ISN_NAME_MAX];
	uint8_t token[ISN_TOKEN_LEN];
	bool have_token;
	uint64_t id;
	char host[ISN_NAME_MAX];
	int sock;
	struct isn_rx rx;
	pid_t init_pid; /* the job's namespace init, as this host sees it */
	bool pidns;
	bool shell_job;
	bool restart; /* ibsnap restart: wait for the whole job */
	bool quiet; /* ... and do not print its phases */
	int status; /* the tree's exit status, once it exited */
	bool exited;
	/* the checkpoint under way (CKPT_BEGIN) */
	bool in_ckpt;
	uint32_t ckpt, ck_flags, nranks;
	char dir[ISN_PATH_MAX]; /* where this dump goes (the stage, if any) */
	char persist[ISN_PATH_MAX]; /* staged: copied here after, or "" */
	char hostdir[ISN_PATH_MAX + ISN_NAME_MAX + 2]; /* DIR/HOST */
	char tree[24]; /* this agent's image: DIR/HOST/TREE (its id) */
	char tmp[ISN_PATH_MAX + ISN_NAME_MAX + 64];
	uint32_t nclients;
	uint32_t *clients; /* (rank, pid, wake fd) */
	uint64_t *inos;
	/* the job's trees on this host in this checkpoint (their agents'
	 * ids, this one's too; CKPT_BEGIN): the image's job_tree= lines */
	uint32_t nhost_trees;
	uint64_t host_trees[ISN_HOST_TREES];
	/*
	 * Incremental chains (periodic --predump; criu.c): the image this
	 * agent committed last from a dump with memory tracking, i.e. at the
	 * tree's last soft-dirty reset: TIER/ckpt-K ("": none, or a later
	 * CRIU run reset the bits again), its checkpoint, how many images
	 * its chain holds, the init it was of.
	 */
	char chain_dir[ISN_PATH_MAX];
	uint32_t chain_ckpt, chain_len;
	pid_t chain_pid;
	/* this checkpoint's: its parent image's checkpoint (0: full), the
	 * length of its chain, its dump tracked memory (a chain may go on) */
	uint32_t ck_parent, ck_len;
	bool ck_tracked;
	/* the background copy of a staged image (stage.c) */
	pid_t flush_pid;
	uint32_t flush_ckpt;
	char flush_dir[ISN_PATH_MAX + ISN_NAME_MAX + 2]; /* its DIR/HOST */
	/* a restore refused (-EBUSY) with ISN_JOB_ASK_CKPT: the checkpoint
	 * the job is being restored from, the host that began it (0: none) */
	uint32_t busy_ckpt;
	char busy_host[ISN_NAME_MAX];
};

/* JOB_OPEN: 0, or -errno (printed); retries while the daemon says so.
 * With ISN_JOB_ASK_CKPT, a restore refused for another checkpoint's is
 * -EBUSY with ax->busy_ckpt set, not printed. */
int isn_agent_open(struct isn_agent_ctx *ax, uint32_t flags, uint32_t nranks,
		   uint32_t ckpt);
/* Serve until the tree exits; returns the exit status to use. */
int isn_agent_loop(struct isn_agent_ctx *ax);
/* Disarm (or arm) the init's parent-death signal; 0 once it took effect. */
int isn_agent_arm_init(struct isn_agent_ctx *ax, bool on);
/* Wake @ranks (all of the checkpoint's if NULL); the ranks not woken
 * (wake.c). */
uint32_t isn_agent_wake(struct isn_agent_ctx *ax, uint32_t flags,
			const uint32_t *ranks, uint32_t n, uint32_t *gone);

/* ---- CRIU and images (criu.c) ---- */

/* 0 if `criu check` passes; else -1 and a one-line reason in @why. */
int isn_criu_check(char *why, size_t len);
/* Dump the tree into ax->tmp (meta file too); 0 or -errno with @why.
 * After a pre-dump of this checkpoint, only what changed since. */
int isn_criu_dump(struct isn_agent_ctx *ax, char *why, size_t len);
/* The pre-dump (--predump): memory only, the job runs on, soft-dirty
 * tracking starts; into ax->tmp/predump; 0 or -errno with @why (the tmp
 * dir is then gone, CRIU's log kept as HOSTDIR/TREE.predump-failed.log). */
int isn_criu_predump(struct isn_agent_ctx *ax, char *why, size_t len);
/* The pre-dump's directory in an image, the final dump's parent. */
#define ISN_PREDUMP_DIR "predump"
/* Move ax->tmp to DIR/HOST/TREE (replacing an older one); 0 or -errno. */
int isn_image_commit(struct isn_agent_ctx *ax);
void isn_image_discard(struct isn_agent_ctx *ax);
/* Restore the tree in @treedir; sets ax->init_pid; 0 or -errno. */
int isn_criu_restore(struct isn_agent_ctx *ax, const char *treedir, char *why,
		     size_t len);
/* A number of TREEDIR/ibsnap.meta (its line KEY=N); 0 or -errno. */
int isn_meta_u32(const char *treedir, const char *key, uint32_t *v);
/* The file in a periodic checkpoint's directory (DIR/ckpt-N) that lets its
 * pre-dumps chain on the tree's previous image: "max M" (images a chain
 * may hold). */
#define ISN_CHAIN_FILE ".chain"
/* Read TREEDIR/ibsnap.meta into @ax; 0 or -errno. */
int isn_meta_read(struct isn_agent_ctx *ax, const char *treedir);
/* --inherit-fd options for the meta file's stdio lines; the new @n. */
int isn_meta_stdio(const char *treedir, char inh[3][64], char **argv, int n);
void isn_rm_rf(const char *path);

/* ---- staged checkpoints and the manifest (stage.c) ---- */

/* Record TREE's checkpoint @ckpt as @state ("complete", "copying",
 * "incomplete") in HOSTDIR/.manifest, atomically; 0 or -errno. */
int isn_manifest_set(const char *hostdir, const char *tree, uint32_t ckpt,
		     const char *state);
/* Fork the flusher: copy the image just committed in the stage to
 * ax->persist/HOST/TREE; 0 or -errno. */
int isn_flush_start(struct isn_agent_ctx *ax);
/* Kill a flush still running (a newer image replaces its source). */
void isn_flush_abandon(struct isn_agent_ctx *ax);
/* Wait for a flush still running; 0 if it (or none) succeeded. */
int isn_flush_wait(struct isn_agent_ctx *ax);

struct isn_tree {
	char path[PATH_MAX];
	uint32_t ckpt;
};

/*
 * The image restart takes: of the trees of TIER/@host whose checkpoint the
 * tier's manifest calls complete (every tree, without a manifest), those of
 * the newest checkpoint, from the first of @tiers (fastest first) that has
 * it.  Their number (0: none); *@tier is its index.
 */
int isn_pick_image(const char *const *tiers, int ntiers, const char *host,
		   struct isn_tree *t, int max, int *tier);
/* 1 if HOSTDIR/.manifest says TREE's @ckpt is complete, 0 if not, -ENOENT
 * without a manifest (stage.c) */
int isn_manifest_complete(const char *hostdir, const char *tree, uint32_t ckpt);
/* The same; why a tree was not taken goes to @why (NULL: nowhere). */
int isn_pick_image_why(const char *const *tiers, int ntiers, const char *host,
		       struct isn_tree *t, int max, int *tier, FILE *why);
/* The same for checkpoint @want exactly (0: the newest whole one): 0 if
 * no tier holds it whole for this host. */
int isn_pick_image_at(const char *const *tiers, int ntiers, const char *host,
		      uint32_t want, struct isn_tree *t, int max, int *tier,
		      FILE *why);
/* Some image of checkpoint @c of @host is in @tiers, whole or not */
bool isn_ckpt_seen(const char *const *tiers, int ntiers, const char *host,
		   uint32_t c);
/*
 * TREEDIR's chain of parent images (incremental dumps) is whole: every
 * parent link resolves, to an image of the checkpoint its child names,
 * complete in its tier's manifest.  0, or -1 with the reason in @why.
 */
int isn_chain_check(const char *treedir, char *why, size_t len);

/* ---- TCP connections between trees across a restart (tcplock.c) ---- */

/* Write the tree's established TCP connections into @dir; 0 or -errno. */
int isn_tcp_record(pid_t init_pid, const char *dir);
/* Drop the packets of the connections recorded in @treedirs until
 * isn_tcp_release(); how many connections, or -errno (printed). */
int isn_tcp_hold(char **treedirs, int ntrees);
void isn_tcp_release(void);

/* ---- the tree's files on tmpfs across a reboot (tmpfs.c) ---- */

/* Record (and copy into @dir) the files on tmpfs the tree at @init_pid has
 * open, mapped or as cwd, with their directories; 0 or -errno. */
int isn_tmpfs_record(pid_t init_pid, const char *dir);
/* Create again those of @treedir's record that do not exist; 0 or the
 * first -errno (each failure printed). */
int isn_tmpfs_restore(const char *treedir);

/* ---- a process tree (proctree.c) ---- */

/* @root and its descendants (every thread's children, recursively), at
 * most @max of them into @pids; how many. */
int isn_proc_tree(pid_t root, pid_t *pids, int max);

#endif /* IBSNAP_CLI_H */
