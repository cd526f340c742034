/* SPDX-License-Identifier: MIT */
/*
 * ibsnapd internals.  One libev loop; every connection is one of: a
 * process of a job (proc), a host agent (ibsnap run / restart), or a
 * controller (ibsnap checkpoint / status).
 *
 *   d_main.c   options, listeners, logging, idle exit
 *   d_conn.c   connections: framing in, shared output buffers out
 *   d_job.c    the registry: jobs, processes, agents
 *   d_msg.c    registration, status, the dispatch of messages
 *   d_ckpt.c   the checkpoint's events: acks, puts, losses, rejoins
 *   d_steps.c  the checkpoint's steps: start, barriers, rollback, end
 */
#ifndef IBSNAP_COORD_DAEMON_H
#define IBSNAP_COORD_DAEMON_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "proto.h"

struct isn_d;
struct isn_job;

/* A reference-counted output buffer: one ALL reply is sent to all. */
struct isn_sbuf {
	unsigned int refs;
	size_t len;
	uint8_t *data;
};

struct isn_oq {
	struct isn_oq *next;
	struct isn_sbuf *buf;
	size_t off;
};

enum isn_conn_kind {
	ISN_CONN_NEW,
	ISN_CONN_PROC,
	ISN_CONN_AGENT,
	ISN_CONN_CTL
};

struct isn_conn {
	ev_io rio, wio;
	struct isn_d *d;
	int fd;
	enum isn_conn_kind kind;
	bool trusted; /* a Unix peer with the daemon's uid (or root) */
	bool dead; /* close at the next chance (see conn_kill) */
	struct isn_rx rx;
	struct isn_oq *oq_head, *oq_tail;
	size_t oq_bytes;
	/* the owner, by kind */
	struct isn_proc *proc;
	struct isn_agent *agent;
	struct isn_job *ctl_job;
	struct isn_conn *prev, *next;
	char peer[64];
};

enum isn_pstate { ISN_P_LIVE, ISN_P_DETACHING, ISN_P_DETACHED };

struct isn_proc {
	struct isn_job *job;
	struct isn_conn *conn; /* NULL while detached */
	uint32_t rank, pid;
	char host[ISN_NAME_MAX];
	uint64_t agent_id;
	int32_t wake_fd;
	uint64_t wake_ino;
	uint32_t epoch;
	enum isn_pstate state;
	uint16_t phase; /* the last phase it acknowledged */
	/* checkpoint bookkeeping */
	bool member;
	uint32_t acked_seq;
	uint32_t put_seq;
	uint32_t blob_len;
	uint8_t *blob;
	bool keyed; /* the blob is PUTK's records */
	bool sparse; /* ... and it GETs after FENCED */
	uint32_t nrecs;
	/* a GET waiting for the daemon's output to drain (d_ckpt.c) */
	struct isn_proc *get_next;
	uint32_t *get_keys;
	uint32_t get_n;
	bool get_queued;
};

/* A record of the keyed exchange: a view into its member's blob. */
struct isn_krec {
	uint32_t key, len;
	const uint8_t *data;
};

struct isn_agent {
	struct isn_agent *next;
	struct isn_job *job;
	struct isn_conn *conn;
	uint64_t id;
	char host[ISN_NAME_MAX];
	uint32_t pid;
	bool waiting; /* owes a DUMP_DONE or WAKE_DONE */
	bool dumped; /* dumped in this checkpoint: it had its CKPT_BEGIN */
	bool exited;
	int32_t status;
};

enum isn_step {
	ISN_ST_PREDUMP, /* --predump: agents pre-dump, the job runs */
	ISN_ST_QUIESCE,
	ISN_ST_DRAIN,
	ISN_ST_RELEASE,
	ISN_ST_DUMP,
	ISN_ST_WAKE,
	ISN_ST_REBUILD,
	ISN_ST_RESUME,
	ISN_ST_DONE,
};

struct isn_ckpt {
	struct isn_job *job;
	uint32_t id, flags;
	char dir[ISN_PATH_MAX];
	char stage[ISN_PATH_MAX]; /* the fast tier, or "" */
	enum isn_step step;
	uint32_t seq;
	/* counted barriers */
	uint32_t members, arrived, puts, detaching, rejoin_wait, agents_wait;
	bool released; /* RELEASE was sent: a rollback must rebuild */
	bool failed;
	bool restore; /* ibsnap restart: ranks rejoin, REBUILD is new */
	bool committed; /* the image is in place */
	bool wake_lost; /* an agent did not answer WAKE: committed or not? */
	uint32_t nranks, rejoined; /* restore: ranks expected, back */
	char from[ISN_NAME_MAX]; /* restore: the host whose restart began it */
	uint32_t xfail_seq; /* the exchange of this step has failed */
	uint32_t fence_seq; /* the exchange of this step is complete */
	struct isn_krec *kidx; /* open addressing by key; NULL: none */
	uint32_t kmask, nkeys;
	struct isn_proc *getq_head, *getq_tail; /* deferred GETs, in order */
	int32_t status; /* first error, -errno */
	char why[ISN_TEXT_MAX];
	struct isn_conn *ctl;
	uint64_t t0, t_step;
	uint64_t t_quiesce, downtime; /* quiesce start; to resume's end */
	double timeout_s;
	ev_timer timer;
};

struct isn_job {
	struct isn_job *next;
	struct isn_d *d;
	char name[ISN_NAME_MAX];
	uint8_t token[ISN_TOKEN_LEN];
	struct isn_proc **procs; /* by rank */
	uint32_t nslots, nprocs, next_rank;
	struct isn_agent *agents;
	uint32_t nagents;
	uint32_t epoch; /* id of the last checkpoint */
	struct isn_ckpt *ck;
	int32_t exit_status;
	/* the last checkpoint */
	uint32_t last_id;
	int32_t last_status;
	uint64_t last_time, last_usec;
	uint64_t last_downtime; /* usec, 0: the job did not resume */
	char last_dir[ISN_PATH_MAX];
	char last_text[ISN_TEXT_MAX];
};

struct isn_d_opts {
	char sock[ISN_PATH_MAX];
	char listen[ISN_PATH_MAX]; /* TCP HOST:PORT, or empty */
	bool allow_remote;
	bool implicit; /* started by ibsnap: exit when idle */
	double idle_s;
	double phase_timeout_s;
	double dump_timeout_s;
	bool verbose;
};

struct isn_d {
	struct ev_loop *loop;
	struct isn_d_opts o;
	ev_io unix_io, tcp_io;
	int lock_fd;
	ev_signal sigterm, sigint;
	ev_timer idle;
	struct isn_conn *conns;
	unsigned int nconns;
	/* bytes queued on all connections; past ISN_OQ_BUDGET, GETs wait */
	size_t oq_total;
	unsigned int gets_deferred;
	bool gets_serving;
	struct isn_job *jobs;
	unsigned int njobs;
};

/* d_main.c */
void isn_d_log(struct isn_d *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void isn_d_dbg(struct isn_d *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void isn_d_idle_check(struct isn_d *d);

/* Output the daemon queues before it defers GETs (keeps memory linear). */
#define ISN_OQ_BUDGET (16u << 20)

/* d_conn.c */
void isn_conn_accept(struct isn_d *d, int lfd, bool is_unix);
/* Queue a message; a broken connection is closed from its own callback. */
void isn_conn_send(struct isn_conn *c, uint16_t type, const void *msg);
void isn_conn_send_sbuf(struct isn_conn *c, struct isn_sbuf *b);
int isn_conn_error(struct isn_conn *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* ... with ERROR @m as it is (an extension too) */
int isn_conn_error_msg(struct isn_conn *c, const struct isn_m_error *m);
/* Detach from its owner and close it soon (from its own callback). */
void isn_conn_kill(struct isn_conn *c);
void isn_conn_destroy_all(struct isn_d *d);
struct isn_sbuf *isn_sbuf_from_wbuf(struct isn_wbuf *w);
void isn_sbuf_put(struct isn_sbuf *b);

/* d_msg.c */
void isn_d_dispatch(struct isn_conn *c, const struct isn_hdr *h,
		    const void *payload);
void isn_d_conn_lost(struct isn_conn *c);

/* d_job.c */
struct isn_job *isn_job_find(struct isn_d *d, const char *name);
struct isn_job *isn_job_new(struct isn_d *d, const char *name,
			    const uint8_t token[ISN_TOKEN_LEN]);
struct isn_proc *isn_job_proc_new(struct isn_job *j, uint32_t rank);
void isn_job_proc_remove(struct isn_proc *p);
void isn_job_maybe_free(struct isn_job *j);
uint64_t isn_job_agent_id(void);
void isn_job_agent_remove(struct isn_agent *a);
void isn_job_end_check(struct isn_job *j);
struct isn_agent *isn_job_agent(struct isn_job *j, uint64_t id);
void isn_job_free_all(struct isn_d *d);

/* d_ckpt.c */
void isn_ck_start(struct isn_conn *c, struct isn_job *j,
		  const struct isn_m_ckpt_start *m);
int isn_ck_restore_open(struct isn_job *j, const struct isn_m_job_open *m);
void isn_ck_ack(struct isn_proc *p, const struct isn_m_ack *m);
void isn_ck_put(struct isn_proc *p, const struct isn_m_put *m);
void isn_ck_putk(struct isn_proc *p, const struct isn_m_putk *m);
void isn_ck_get(struct isn_proc *p, const struct isn_m_get *m);
/* Serve deferred GETs while the output budget allows (d_conn.c). */
void isn_ck_gets_resume(struct isn_d *d);
/* Drop the blobs and the index of the step's exchange. */
void isn_ck_xchg_free(struct isn_ckpt *ck);
void isn_ck_dump_done(struct isn_agent *a, const struct isn_m_dump_done *m);
void isn_ck_wake_done(struct isn_agent *a, const struct isn_m_wake_done *m);
/* A process registers with its rank: ISN_RG_* flags, or -EAGAIN (retry). */
int isn_ck_rejoin(struct isn_job *j, struct isn_proc *p, bool created);
/* Its connection closed: detached as asked, or lost. */
void isn_ck_conn_closed(struct isn_proc *p);
/* It is gone (left, died, its tree ended): remove it from the job. */
void isn_ck_proc_lost(struct isn_proc *p, const char *how);
void isn_ck_agent_lost(struct isn_agent *a);
/* Advance the checkpoint if its current step is complete. */
void isn_ck_kick(struct isn_job *j);
void isn_ck_free(struct isn_ckpt *ck);
/* The phase (or ISN_STEP_REJOIN) a step reports as. */
uint16_t isn_ck_step_phase(enum isn_step s);

/* between d_ckpt.c (events) and d_steps.c (the step machine) */
const char *isn_ck_step_name(enum isn_step s);
bool isn_ck_client_step(enum isn_step s);
bool isn_ck_stopping(const struct isn_ckpt *ck);
void isn_ck_progress(struct isn_ckpt *ck, int32_t status, uint64_t usec,
		     const char *text);
void isn_ck_failf(struct isn_ckpt *ck, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void isn_ck_recount(struct isn_ckpt *ck);
void isn_ck_proc_drop(struct isn_proc *p, const char *how);
/* Advance if the current step is complete (may end and free @ck). */
void isn_ck_check(struct isn_ckpt *ck);

#endif /* IBSNAP_COORD_DAEMON_H */
