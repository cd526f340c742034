/* SPDX-License-Identifier: MIT */
/* Between client.c (life cycle, connection) and client_ckpt.c (phases). */
#ifndef IBSNAP_COORD_CLIENT_INT_H
#define IBSNAP_COORD_CLIENT_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "net.h"
#include "proto.h"

enum isn_cl_state {
	ISN_CL_CONNECTED,
	ISN_CL_DETACHED,
	ISN_CL_LOST,
	ISN_CL_STOP
};

struct isn_client {
	pthread_mutex_t lock;
	bool started;
	pthread_t thread;
	int sock; /* -1 when not connected */
	int stop_fd; /* eventfd: isn_coord_client_stop() */
	int wake_rd, wake_wr;
	struct isn_addr addr;
	char job[ISN_NAME_MAX];
	char host[ISN_NAME_MAX];
	uint8_t token[ISN_TOKEN_LEN];
	uint64_t agent;
	int rank; /* -1 until registered */
	uint32_t epoch;
	struct isn_rx rx;
	int reg_timeout_ms, wake_timeout_ms;
	/* the checkpoint under way */
	uint32_t ckpt;
	bool in_ckpt, released, rebuilt, new_inc;
	/* the last PHASE run on this connection: a repeat is not run again */
	bool ph_seen;
	uint32_t ph_ckpt, ph_seq;
	/* a PHASE that came while a handler waited in an exchange */
	bool stashed;
	struct isn_m_phase stash;
	/* the exchange of the current phase */
	uint32_t x_seq;
	bool x_used;
	struct isn_blob *x_blobs;
	/* ... and, through PMIx (client_pmix.c), its blobs and their data */
	struct isn_blob *x_pmix_blobs;
	void *x_pmix_data;
};

extern struct isn_client isn_cl;

void isn_cl_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void isn_cl_close(void);
/*
 * Connect and REGISTER (a rejoin with our rank if @rejoin), retrying while
 * the daemon says RETRY, for at most @timeout_ms: the REGISTERED flags
 * (>= 0) or -errno.
 */
int isn_cl_register(bool rejoin, int timeout_ms);
/* Next message on the socket: 1, or -ECANCELED (stop) / -errno. */
int isn_cl_wait_msg(struct isn_hdr *h, const void **payload);

/* client_pmix.c: IBSNAP_PMIX=1 under a PMIx server? */
bool isn_cl_pmix_wanted(void);
/*
 * The exchange through PMIx, after ibsnapd's (whose blobs are *@all, *@n
 * on entry; on return, those and the namespace's, by rank): 0 or -errno.
 */
int isn_cl_pmix_exchange(const void *blob, size_t len,
			 const struct isn_blob **all, size_t *n);

/* client_ckpt.c */
enum isn_cl_state isn_cl_serve(void);
enum isn_cl_state isn_cl_wait_wake(void);
/* The coordinator is gone mid-checkpoint: undo what ran, alone. */
void isn_cl_local_rollback(const char *why);

#endif /* IBSNAP_COORD_CLIENT_INT_H */
