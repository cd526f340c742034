/* SPDX-License-Identifier: MIT */
/*
 * The coordinator client during a checkpoint: phase commands run the
 * registered handlers, the exchange goes through the daemon, DETACH closes
 * the connection until the host agent writes to the wake pipe, and a lost
 * coordinator makes the process undo what it did, alone.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client_int.h"
#include "ibsnap/ckpt.h"
#include "wake.h"

/* Until the shim provides them: no handlers, every phase succeeds. */
__attribute__((weak)) void isn_ckpt_register(const struct isn_ckpt_handlers *h)
{
	(void)h;
}

__attribute__((weak)) const struct isn_ckpt_handlers *isn_ckpt_handlers(void)
{
	return NULL;
}

static void drop_blobs(void)
{
	free(isn_cl.x_blobs);
	isn_cl.x_blobs = NULL;
	free(isn_cl.x_pmix_blobs);
	isn_cl.x_pmix_blobs = NULL;
	free(isn_cl.x_pmix_data);
	isn_cl.x_pmix_data = NULL;
}

/*
 * The PHASE this connection ran last, again: the daemon sends each once,
 * so only a fault (tests: IBSNAP_COORD_FAULT) repeats one; it is not run
 * twice (its handler would drain or rebuild twice).
 */
static bool phase_repeat(const struct isn_m_phase *ph)
{
	if (!isn_cl.ph_seen || ph->ckpt != isn_cl.ph_ckpt ||
	    ph->seq != isn_cl.ph_seq)
		return false;
	isn_cl_log("checkpoint %u: %s again: ignored", ph->ckpt,
		   isn_phase_name(ph->phase));
	return true;
}

static int put_fence_get(struct isn_exchange *x, const void *blob, size_t len,
			 const struct isn_blob **all, size_t *n)
{
	struct isn_m_put put = { .seq = isn_cl.x_seq };
	const void *payload;
	struct isn_m_xfail xf;
	struct isn_hdr h;
	uint32_t seq;
	bool pmix;
	int ret;

	(void)x;
	if (isn_cl.x_used)
		return -EALREADY; /* one exchange per phase */
	isn_cl.x_used = true;
	if (isn_cl.sock < 0)
		return -ENOTCONN;
	if (len > ISN_BLOB_MAX)
		return -EMSGSIZE;
	/* through PMIx: ibsnapd's exchange (its barrier) with nothing in it */
	pmix = isn_cl_pmix_wanted();
	put.blob.len = pmix ? 0 : (uint32_t)len;
	put.blob.data = blob;
	if (isn_send_msg(isn_cl.sock, ISN_MSG_PUT, &put))
		return -ENOTCONN;
	for (;;) {
		ret = isn_cl_wait_msg(&h, &payload);
		if (ret < 0)
			return ret == -ECANCELED ? ret : -ENOTCONN;
		if (h.type == ISN_MSG_ALL) {
			ret = isn_all_decode(payload, h.len, &seq,
					     &isn_cl.x_blobs, n);
			if (ret)
				return ret;
			if (seq != isn_cl.x_seq) { /* a repeat of an old one */
				drop_blobs();
				continue;
			}
			*all = isn_cl.x_blobs;
			return pmix ? isn_cl_pmix_exchange(blob, len, all, n) :
				      0;
		}
		if (h.type == ISN_MSG_XFAIL &&
		    !isn_msg_decode(h.type, payload, h.len, &xf) &&
		    xf.seq == isn_cl.x_seq)
			return xf.code < 0 ? xf.code : -ECANCELED;
		if (h.type == ISN_MSG_PHASE &&
		    !isn_msg_decode(h.type, payload, h.len, &isn_cl.stash) &&
		    !phase_repeat(&isn_cl.stash)) {
			isn_cl.stashed = true; /* the rollback has begun */
			return -ECANCELED;
		}
	}
}

static int no_exchange(struct isn_exchange *x, const void *blob, size_t len,
		       const struct isn_blob **all, size_t *n)
{
	(void)x;
	(void)blob;
	(void)len;
	(void)all;
	(void)n;
	return -ENOTCONN;
}

static int call_handler(unsigned int phase, bool new_inc, bool local)
{
	const struct isn_ckpt_handlers *hs = isn_ckpt_handlers();
	struct isn_exchange x = { .put_fence_get = local ? no_exchange :
							   put_fence_get };

	if (!hs)
		return 0;
	switch (phase) {
	case ISN_PHASE_QUIESCE:
		return hs->quiesce ? hs->quiesce() : 0;
	case ISN_PHASE_DRAIN:
		return hs->drain ? hs->drain(&x) : 0;
	case ISN_PHASE_RELEASE:
		return hs->release ? hs->release() : 0;
	case ISN_PHASE_REBUILD:
		return hs->rebuild ? hs->rebuild(&x, new_inc) : 0;
	case ISN_PHASE_RESUME:
		return hs->resume ? hs->resume() : 0;
	}
	return -EINVAL;
}

/* Run one phase: 0, or -EPIPE when the connection broke. */
static int run_phase(const struct isn_m_phase *ph)
{
	struct isn_m_ack ack = { .seq = ph->seq, .phase = ph->phase };
	bool new_inc = (ph->flags & ISN_PH_NEW_INCARNATION) || isn_cl.new_inc;
	uint64_t t0 = isn_now_us();

	if (!isn_cl.in_ckpt) {
		isn_cl.in_ckpt = true;
		isn_cl.released = isn_cl.rebuilt = false;
	}
	isn_cl.ckpt = ph->ckpt;
	isn_cl.x_seq = ph->seq;
	isn_cl.ph_seen = true;
	isn_cl.ph_ckpt = ph->ckpt;
	isn_cl.ph_seq = ph->seq;
	isn_cl.x_used = false;
	ack.status = call_handler(ph->phase, new_inc, false);
	ack.usec = isn_now_us() - t0;
	drop_blobs();
	if (ack.status > 0)
		ack.status = -ack.status;
	if (ack.status)
		isn_strlcpy(ack.text, strerror(-ack.status), sizeof(ack.text));
	if (ph->phase == ISN_PHASE_RELEASE)
		isn_cl.released = true;
	if (ph->phase == ISN_PHASE_REBUILD)
		isn_cl.rebuilt = true;
	if (ph->phase == ISN_PHASE_RESUME) {
		isn_cl.in_ckpt = false;
		isn_cl.new_inc = false;
		isn_cl.epoch = ph->ckpt;
	}
	if (isn_cl.sock < 0 || isn_send_msg(isn_cl.sock, ISN_MSG_ACK, &ack))
		return -EPIPE;
	return 0;
}

void isn_cl_local_rollback(const char *why)
{
	if (!isn_cl.in_ckpt)
		return;
	isn_cl_log("checkpoint %u: %s: rolling back alone", isn_cl.ckpt, why);
	if (isn_cl.released && !isn_cl.rebuilt)
		call_handler(ISN_PHASE_REBUILD, isn_cl.new_inc, true);
	call_handler(ISN_PHASE_RESUME, false, true);
	isn_cl.in_ckpt = false;
	isn_cl.new_inc = false;
}

static enum isn_cl_state lost(const char *why)
{
	isn_cl_close();
	isn_cl_local_rollback(why);
	return ISN_CL_LOST;
}

enum isn_cl_state isn_cl_serve(void)
{
	union { /* what the daemon may send a process */
		struct isn_m_phase ph;
		struct isn_m_error err;
		struct isn_m_registered reg;
		struct isn_m_retry retry;
		struct isn_m_xfail xf;
		struct isn_m_detach det;
		struct isn_m_fenced fenced;
	} m;
	const void *payload;
	struct isn_hdr h;
	int ret;

	for (;;) {
		if (isn_cl.stashed) {
			isn_cl.stashed = false;
			if (run_phase(&isn_cl.stash))
				return lost("the coordinator is gone");
			continue;
		}
		ret = isn_cl_wait_msg(&h, &payload);
		if (ret == -ECANCELED)
			return ISN_CL_STOP;
		/* an exchange's answer repeated after its handler returned */
		if (ret > 0 &&
		    (h.type == ISN_MSG_ALL || h.type == ISN_MSG_PART))
			continue;
		if (ret < 0 || isn_msg_decode(h.type, payload, h.len, &m))
			return lost("the coordinator is gone");
		switch (h.type) {
		case ISN_MSG_PHASE:
			if (!phase_repeat(&m.ph) && run_phase(&m.ph))
				return lost("the coordinator is gone");
			break;
		case ISN_MSG_DETACH:
			/* no socket to the outside while CRIU dumps us */
			isn_cl_close();
			return ISN_CL_DETACHED;
		case ISN_MSG_ERROR:
			isn_cl_log("coordinator: %s", m.err.text);
			return lost("the coordinator closed the connection");
		}
	}
}

/* One wake message: 1, 0 (none or stale), -errno. */
static int read_wake(struct isn_wake *w)
{
	ssize_t n = read(isn_cl.wake_rd, w, sizeof(*w));

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n != sizeof(*w) || w->magic != ISN_WAKE_MAGIC ||
	    w->version != ISN_WAKE_VERSION || w->size != sizeof(*w)) {
		isn_cl_log("ignoring a malformed wake message (%zd bytes)", n);
		return 0;
	}
	w->coord[sizeof(w->coord) - 1] = '\0';
	return w->ckpt == isn_cl.ckpt; /* else left from an earlier one */
}

static enum isn_cl_state rejoin(void)
{
	int ret = isn_cl_register(true, isn_cl.reg_timeout_ms);

	if (ret == -ECANCELED)
		return ISN_CL_STOP;
	if (ret < 0)
		return lost("cannot reach the coordinator after the dump");
	if (!(ret & ISN_RG_DRIVEN))
		isn_cl_local_rollback("the coordinator forgot the checkpoint");
	return ISN_CL_CONNECTED;
}

/*
 * Detached: wait for the host agent's wake (after the dump, or after a
 * restore: then a new incarnation, maybe a new coordinator).  Without a
 * wake for wake_timeout_ms (the agent died?), try the coordinator anyway;
 * it answers RETRY while the dump is still going on.
 */
enum isn_cl_state isn_cl_wait_wake(void)
{
	struct pollfd p[2] = { { .fd = isn_cl.wake_rd, .events = POLLIN },
			       { .fd = isn_cl.stop_fd, .events = POLLIN } };
	struct isn_wake w;
	struct isn_addr a;
	int ret;

	for (;;) {
		ret = poll(p, 2, isn_cl.wake_timeout_ms);
		if (ret < 0 && errno == EINTR)
			continue; /* also: CRIU restarts us here */
		if (p[1].revents)
			return ISN_CL_STOP;
		if (ret == 0) {
			ret = isn_cl_register(true, 1000);
			if (ret >= 0 && !(ret & ISN_RG_DRIVEN))
				isn_cl_local_rollback("no wake came");
			if (ret >= 0)
				return ISN_CL_CONNECTED;
			continue;
		}
		ret = read_wake(&w);
		if (ret < 0)
			return lost("the wake pipe broke");
		if (ret == 0)
			continue;
		if (w.coord[0] && !isn_addr_parse(w.coord, &a))
			isn_cl.addr = a;
		if (w.agent)
			isn_cl.agent = w.agent;
		if (w.flags & ISN_WAKE_NEW_INCARNATION)
			isn_cl.new_inc = true;
		if (w.flags & ISN_WAKE_LOST)
			return lost("the coordinator was lost");
		return rejoin();
	}
}
