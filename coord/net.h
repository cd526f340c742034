/* SPDX-License-Identifier: MIT */
/*
 * Coordinator addresses and blocking socket helpers, shared by ibsnapd, the
 * coordinator client and the ibsnap CLI.
 *
 * An address is "unix:PATH" (or an absolute PATH) or "HOST:PORT" for TCP.
 * The host's default daemon listens on a Unix socket: $IBSNAP_COORD_SOCK,
 * else /run/ibsnap/ibsnapd.sock for root, else
 * $XDG_RUNTIME_DIR/ibsnap/ibsnapd.sock, else /tmp/ibsnap-UID/ibsnapd.sock.
 */
#ifndef IBSNAP_COORD_NET_H
#define IBSNAP_COORD_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto.h"

#define ISN_UNIX_PATH_MAX 108

struct isn_addr {
	bool is_unix;
	char path[ISN_UNIX_PATH_MAX];
	char host[256];
	char port[16];
	char text[ISN_PATH_MAX]; /* as given to IBSNAP_COORD */
};

/* 0 or -EINVAL (-ENAMETOOLONG for a too long socket path). */
int isn_addr_parse(const char *s, struct isn_addr *a);
/* The default daemon's socket path; 0 or -errno. */
int isn_default_sock(char *out, size_t len);
/* The default daemon's address. */
int isn_addr_default(struct isn_addr *a);
/* Is @a the host's default daemon (one ibsnap may start)? */
bool isn_addr_is_default(const struct isn_addr *a);
/* mkdir -p @dir, its last component with @mode; 0 or -errno. */
int isn_mkdir_p(const char *dir, mode_t mode);
/* mkdir -p the directory of a socket path, mode 0700; 0 or -errno. */
int isn_sock_dir_make(const char *path);

/* A connected, blocking, close-on-exec socket, or -errno. */
int isn_connect(const struct isn_addr *a);

/* write(2) all of it (MSG_NOSIGNAL on sockets); 0 or -errno. */
int isn_write_all(int fd, const void *buf, size_t len);
/* Encode and send one message; 0 or -errno. */
int isn_send_msg(int fd, uint16_t type, const void *msg);

/*
 * Wait for the next message on @fd for at most @timeout_ms (-1: forever):
 * 1 with *@h and *@payload (valid until the next call on @rx), 0 on
 * timeout, -EPIPE at EOF, or -errno (header errors included).
 */
int isn_recv_msg(int fd, struct isn_rx *rx, int timeout_ms, struct isn_hdr *h,
		 const void **payload);

/* CLOCK_MONOTONIC in microseconds. */
uint64_t isn_now_us(void);

#endif /* IBSNAP_COORD_NET_H */
