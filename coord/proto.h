/* SPDX-License-Identifier: MIT */
/*
 * The wire protocol between ibsnapd, the coordinator clients inside the
 * job's processes, the host agents (ibsnap run / restart) and the
 * controllers (ibsnap checkpoint / status).  docs/checkpoint.md describes
 * the messages and the phases.
 *
 * A message is a 12-byte header (magic, version, type, payload length; all
 * little-endian) and a payload of fields in the order the message's table in
 * proto.c lists them: integers little-endian, strings as u16 length + bytes,
 * blobs as u32 length + bytes, u32 arrays as u32 count + elements.  A
 * decoder rejects a short, long or malformed payload.
 */
#ifndef IBSNAP_COORD_PROTO_H
#define IBSNAP_COORD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ibsnap/ckpt.h"

#define ISN_PROTO_MAGIC 0x504e5349u /* "ISNP" */
#define ISN_PROTO_VERSION 1
#define ISN_HDR_LEN 12
#define ISN_TOKEN_LEN 16
#define ISN_NAME_MAX 64 /* job and host names, with their NUL */
#define ISN_TEXT_MAX 512
#define ISN_PATH_MAX 1024
#define ISN_BLOB_MAX (64u << 20) /* one process's exchange blob */
#define ISN_REQ_MAX (ISN_BLOB_MAX + 64) /* anything sent to the daemon */
#define ISN_MSG_MAX (1u << 31) /* anything the daemon sends */
#define ISN_RANK_NEW UINT32_MAX

enum isn_msg_type {
	ISN_MSG_ERROR = 1,
	/* coordinator client (a process of the job) <-> daemon */
	ISN_MSG_REGISTER = 10,
	ISN_MSG_REGISTERED,
	ISN_MSG_RETRY,
	ISN_MSG_PHASE,
	ISN_MSG_ACK,
	ISN_MSG_PUT,
	ISN_MSG_ALL,
	ISN_MSG_XFAIL,
	ISN_MSG_DETACH,
	ISN_MSG_BYE,
	/* the keyed exchange (docs/perf.md): many records per connection */
	ISN_MSG_PUTK,
	ISN_MSG_FENCED,
	ISN_MSG_GET,
	ISN_MSG_PART,
	/* host agent <-> daemon */
	ISN_MSG_JOB_OPEN = 30,
	ISN_MSG_JOB,
	ISN_MSG_CKPT_BEGIN,
	ISN_MSG_DUMP,
	ISN_MSG_DUMP_DONE,
	ISN_MSG_WAKE,
	ISN_MSG_WAKE_DONE,
	ISN_MSG_EXIT,
	ISN_MSG_JOB_END,
	/* controller <-> daemon */
	ISN_MSG_CKPT_START = 50,
	ISN_MSG_CKPT_PROGRESS,
	ISN_MSG_CKPT_END,
	ISN_MSG_STATUS_REQ,
	ISN_MSG_STATUS_JOB,
	ISN_MSG_STATUS_PROC,
	ISN_MSG_STATUS_END,
	ISN_MSG_TYPE_MAX
};

/* REGISTER.flags */
#define ISN_REG_REJOIN 0x1 /* rank, epoch are the process's own */
#define ISN_REG_NEW_INCARNATION 0x2

/* PHASE.flags */
#define ISN_PH_ROLLBACK 0x1 /* the checkpoint failed: undo */
#define ISN_PH_NEW_INCARNATION 0x2 /* REBUILD after a restore */

/* JOB_OPEN.flags */
#define ISN_JOB_TOKEN 0x1 /* .token is set */
#define ISN_JOB_RESTORE 0x2 /* ibsnap restart: ranks will rejoin */
#define ISN_JOB_REATTACH 0x4 /* an agent back after losing the daemon */
/* RESTORE: if the job is being restored from another checkpoint, the
 * ERROR refusing it says which (its extension 1): the agent can take it */
#define ISN_JOB_ASK_CKPT 0x8

/* CKPT_START.flags, also CKPT_BEGIN.flags and DUMP.flags */
#define ISN_CK_TOKEN 0x1
#define ISN_CK_NO_DUMP 0x2
#define ISN_CK_STOP 0x4
/* --predump (CKPT_START); in DUMP: pre-dump now, the job still runs */
#define ISN_CK_PREDUMP 0x8
/* CKPT_BEGIN, the final DUMP: the tree was pre-dumped (its parent) */
#define ISN_CK_PREDUMPED 0x10

/* WAKE.flags */
#define ISN_WK_COMMIT 0x1 /* rename the image into place */
#define ISN_WK_KILL 0x2 /* --stop: end the process tree */
#define ISN_WK_ROLLBACK 0x4 /* the checkpoint failed: drop the image */

/* STATUS_REQ.flags */
#define ISN_ST_TOKEN 0x1
#define ISN_ST_EXT 0x2 /* the asker reads STATUS_JOB's extension */

/*
 * Extensions.  A message may end in an optional tail: u16 level, u32 tail
 * length, then the tail's fields.  The sender includes it only when its
 * struct's .ext is non-zero (a level); a payload without it decodes with
 * .ext = 0 and the tail's fields zeroed, and a reader skips the bytes of
 * fields a newer level appended.  So fields are added to a message without
 * a new protocol version: a new reader accepts an old sender's message and
 * a new sender sends the tail only to those that can read it (a flag in
 * their request) or when a new feature needs it.
 */
#define ISN_EXT_1 1

struct isn_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t len;
};

/* A blob inside a received payload (not copied). */
struct isn_bytes {
	uint32_t len;
	const void *data;
};

/* A u32 array: encoded from @v, decoded as a view of the payload. */
struct isn_u32s {
	uint32_t n;
	const uint32_t *v; /* encode only */
	const uint8_t *raw; /* decode only: n little-endian u32 */
};

uint32_t isn_u32s_at(const struct isn_u32s *a, uint32_t i);

struct isn_m_error {
	int32_t code; /* -errno */
	char text[ISN_TEXT_MAX];
	/* extension 1, to a JOB_OPEN with ISN_JOB_ASK_CKPT refused (-EBUSY)
	 * because the job is being restored from another checkpoint: that
	 * checkpoint and the host whose restart started its restore */
	uint16_t ext;
	uint32_t ckpt;
	char host[ISN_NAME_MAX];
};

struct isn_m_register {
	char job[ISN_NAME_MAX];
	uint8_t token[ISN_TOKEN_LEN];
	char host[ISN_NAME_MAX];
	uint32_t pid;
	uint64_t agent; /* the host agent that can wake it, or 0 */
	int32_t wake_fd; /* the read end of its wake pipe */
	uint64_t wake_ino; /* ... and the pipe's inode */
	uint32_t rank; /* ISN_RANK_NEW unless rejoining */
	uint32_t epoch; /* the last checkpoint it took part in */
	uint32_t flags;
};

struct isn_m_registered {
	uint32_t rank;
	uint32_t epoch;
	uint32_t flags;
};

struct isn_m_retry {
	uint32_t ms;
	char text[ISN_TEXT_MAX];
};

struct isn_m_phase {
	uint32_t seq;
	uint32_t ckpt;
	uint16_t phase; /* enum isn_phase */
	uint16_t flags;
};

struct isn_m_ack {
	uint32_t seq;
	uint16_t phase;
	int32_t status; /* 0 or -errno */
	uint64_t usec;
	char text[ISN_TEXT_MAX];
};

struct isn_m_put {
	uint32_t seq;
	struct isn_bytes blob;
};

/*
 * PUTK: a keyed put.  .recs holds u32 n, then n records (u32 key, u32 len,
 * bytes): one member (a host agent for its ranks, say) puts many records.
 * Keys are unique in an exchange.  Without ISN_PK_SPARSE the fence is
 * answered with ALL (the records under their keys); with it, with FENCED,
 * after which the member GETs the keys it needs, answered with PART (ALL's
 * layout: seq, n, records found, in the order asked).  GETs are allowed
 * until the member acknowledges the phase.
 */
#define ISN_PK_SPARSE 0x1

struct isn_m_putk {
	uint32_t seq;
	uint32_t flags;
	struct isn_bytes recs;
};

struct isn_m_fenced {
	uint32_t seq;
	uint32_t nkeys; /* records in the exchange */
};

struct isn_m_get {
	uint32_t seq;
	struct isn_u32s keys;
};

struct isn_m_xfail {
	uint32_t seq;
	int32_t code;
	char text[ISN_TEXT_MAX];
};

struct isn_m_detach {
	uint32_t ckpt;
};

struct isn_m_bye {
	uint32_t reserved;
};

struct isn_m_job_open {
	char job[ISN_NAME_MAX];
	uint8_t token[ISN_TOKEN_LEN];
	char host[ISN_NAME_MAX];
	uint32_t pid;
	uint32_t flags;
	uint32_t nranks; /* RESTORE: ranks of the whole job */
	uint32_t ckpt; /* RESTORE: the checkpoint restored */
	uint64_t agent; /* REATTACH: the agent's id */
};

struct isn_m_job {
	char job[ISN_NAME_MAX];
	uint8_t token[ISN_TOKEN_LEN];
	uint64_t agent;
	uint32_t epoch;
};

/* clients: (rank, pid, wake_fd) triples of the agent's processes */
struct isn_m_ckpt_begin {
	uint32_t ckpt;
	uint32_t flags;
	uint32_t nranks;
	char dir[ISN_PATH_MAX];
	struct isn_u32s clients;
	struct isn_u32s inos; /* wake pipe inodes, (lo, hi) pairs */
	/* extension 1: staged checkpoints */
	uint16_t ext;
	char stage[ISN_PATH_MAX]; /* dump here, then copy to dir ("": none) */
	/* the trees of the job on the agent's host that take part (their
	 * agents' ids, (lo, hi) pairs, the agent's own too): its image
	 * names them, and restart takes none of them alone */
	struct isn_u32s trees;
};

struct isn_m_dump {
	uint32_t ckpt;
	uint32_t flags;
};

struct isn_m_dump_done {
	uint32_t ckpt;
	int32_t status;
	uint64_t usec;
	char text[ISN_TEXT_MAX];
};

struct isn_m_wake {
	uint32_t ckpt;
	uint32_t flags;
	struct isn_u32s ranks; /* the agent's processes that detached */
	/* extension 1: theirs as CKPT_BEGIN gives them, (rank, pid, wake
	 * fd) and wake pipe inodes ((lo, hi) pairs): an agent whose
	 * CKPT_BEGIN was lost wakes them with these */
	uint16_t ext;
	struct isn_u32s clients;
	struct isn_u32s inos;
};

struct isn_m_wake_done {
	uint32_t ckpt;
	struct isn_u32s gone; /* ranks that could not be woken */
};

struct isn_m_exit {
	int32_t status;
};

struct isn_m_job_end {
	int32_t status;
};

struct isn_m_ckpt_start {
	char job[ISN_NAME_MAX];
	uint8_t token[ISN_TOKEN_LEN];
	uint32_t flags;
	char dir[ISN_PATH_MAX];
	/* extension 1: staged checkpoints */
	uint16_t ext;
	char stage[ISN_PATH_MAX]; /* the fast tier (see CKPT_BEGIN) */
};

struct isn_m_ckpt_progress {
	uint32_t ckpt;
	uint16_t phase;
	int32_t status;
	uint64_t usec;
	char text[ISN_TEXT_MAX];
};

struct isn_m_ckpt_end {
	uint32_t ckpt;
	int32_t status;
	uint64_t usec;
	char text[ISN_TEXT_MAX];
};

struct isn_m_status_req {
	char job[ISN_NAME_MAX]; /* empty: every job */
	uint8_t token[ISN_TOKEN_LEN];
	uint32_t flags;
};

struct isn_m_status_job {
	char job[ISN_NAME_MAX];
	uint32_t nprocs;
	uint32_t nagents;
	uint16_t phase; /* of the checkpoint in progress, or NONE */
	uint32_t ckpt; /* id of that, or of the last one */
	int32_t last_status;
	uint64_t last_time; /* unix seconds; 0: none yet */
	uint64_t last_usec;
	char last_dir[ISN_PATH_MAX];
	char last_text[ISN_TEXT_MAX];
	/* extension 1 (asked for with ISN_ST_EXT) */
	uint16_t ext;
	uint64_t last_downtime; /* usec from quiesce to resume; 0: none */
};

struct isn_m_status_proc {
	uint32_t rank;
	uint32_t pid;
	char host[ISN_NAME_MAX];
	uint16_t phase; /* the last phase it finished */
	uint16_t state; /* enum isn_proc_state */
};

struct isn_m_status_end {
	uint32_t daemon_pid;
	uint32_t njobs;
};

/* CKPT_PROGRESS.phase of the wait for woken processes to reconnect */
#define ISN_STEP_REJOIN 16
/* ... of the agents' pre-dumps (--predump), before QUIESCE */
#define ISN_STEP_PREDUMP 17

/* REGISTERED.flags: the daemon will drive the rest of the checkpoint */
#define ISN_RG_DRIVEN 0x1

enum isn_proc_state {
	ISN_PS_RUNNING = 0,
	ISN_PS_IN_CKPT,
	ISN_PS_DETACHED,
};

/* ---- growing output buffer ---- */

struct isn_wbuf {
	uint8_t *p;
	size_t len, cap;
	int err; /* first -errno; later writes are dropped */
};

void isn_wbuf_free(struct isn_wbuf *w);
void isn_put_u16(struct isn_wbuf *w, uint16_t v);
void isn_put_u32(struct isn_wbuf *w, uint32_t v);
void isn_put_u64(struct isn_wbuf *w, uint64_t v);
void isn_put_mem(struct isn_wbuf *w, const void *p, size_t len);
/* Start a message (header with length 0); returns its offset. */
size_t isn_msg_begin(struct isn_wbuf *w, uint16_t type);
/* Set the length of the message started at @at; 0 or -errno. */
int isn_msg_end(struct isn_wbuf *w, size_t at);

/* ---- input reader ---- */

struct isn_rbuf {
	const uint8_t *p;
	size_t len, off;
	int err;
};

uint16_t isn_get_u16(struct isn_rbuf *r);
uint32_t isn_get_u32(struct isn_rbuf *r);
uint64_t isn_get_u64(struct isn_rbuf *r);
const void *isn_get_mem(struct isn_rbuf *r, size_t len);

/* ---- headers and messages ---- */

void isn_hdr_encode(uint8_t out[ISN_HDR_LEN], uint16_t type, uint32_t len);
/*
 * 0, -EBADMSG (magic), -EPROTONOSUPPORT (version; @h is filled),
 * -EMSGSIZE (length over @max).
 */
int isn_hdr_decode(const uint8_t in[ISN_HDR_LEN], uint32_t max,
		   struct isn_hdr *h);

/* Append a whole message of @type built from @msg (its isn_m_* struct). */
int isn_msg_encode(struct isn_wbuf *w, uint16_t type, const void *msg);
/* Decode a payload into @msg; 0, -EPROTO (malformed), -EINVAL (type). */
int isn_msg_decode(uint16_t type, const void *payload, uint32_t len, void *msg);
const char *isn_msg_name(uint16_t type);
const char *isn_phase_name(unsigned int phase);

/*
 * ALL, the answer to a fence: seq, n, then n (rank, len, bytes) records.
 * The daemon builds it once per exchange and sends the same buffer to
 * every process.
 */
struct isn_all_src {
	uint32_t rank;
	uint32_t len;
	const void *data;
};
int isn_all_encode(struct isn_wbuf *w, uint32_t seq,
		   const struct isn_all_src *src, uint32_t n);
/* The same layout under another type (PART). */
int isn_recs_msg_encode(struct isn_wbuf *w, uint16_t type, uint32_t seq,
			const struct isn_all_src *src, uint32_t n);
/* PUTK's records: u32 n, then n (key, len, bytes); appended to @w. */
int isn_recs_encode(struct isn_wbuf *w, const struct isn_all_src *src,
		    uint32_t n);
/*
 * Walk PUTK's records: the next one into *@rec from *@off (start at 0
 * after reading n with isn_recs_count); 1, 0 at the end, -EPROTO.
 */
int isn_recs_count(const void *data, uint32_t len, uint32_t *n_p);
int isn_recs_next(const void *data, uint32_t len, size_t *off,
		  struct isn_all_src *rec);
/* Views into @payload; *@blobs_p is malloc'ed (free it); 0 or -errno. */
int isn_all_decode(const void *payload, uint32_t len, uint32_t *seq_p,
		   struct isn_blob **blobs_p, size_t *n_p);

/* ---- stream reader: frames messages out of a byte stream ---- */

struct isn_rx {
	uint8_t *buf;
	size_t cap, start, end; /* unread bytes: buf[start, end) */
	uint32_t max; /* payload limit for this side */
};

void isn_rx_init(struct isn_rx *rx, uint32_t max);
void isn_rx_free(struct isn_rx *rx);
/* One read(2): > 0 bytes read, 0 at EOF, -errno (-EAGAIN included). */
ssize_t isn_rx_read(struct isn_rx *rx, int fd);
/*
 * The next complete message: 1 (with *@h, *@payload valid until the next
 * isn_rx_read), 0 if incomplete, or a header error of isn_hdr_decode.
 */
int isn_rx_next(struct isn_rx *rx, struct isn_hdr *h, const void **payload);

/* ---- tokens ---- */

int isn_token_new(uint8_t tok[ISN_TOKEN_LEN]);
void isn_token_hex(const uint8_t tok[ISN_TOKEN_LEN],
		   char out[2 * ISN_TOKEN_LEN + 1]);
int isn_token_parse(const char *hex, uint8_t tok[ISN_TOKEN_LEN]);
bool isn_token_eq(const uint8_t a[ISN_TOKEN_LEN],
		  const uint8_t b[ISN_TOKEN_LEN]);

/* Copy a C string into a fixed field (truncating); for names and texts. */
void isn_strlcpy(char *dst, const char *src, size_t size);

#endif /* IBSNAP_COORD_PROTO_H */
