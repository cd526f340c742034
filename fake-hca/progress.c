/* SPDX-License-Identifier: MIT */
/*
 * Progress of a fake HCA context: inbound packets and QP timers.
 *
 * Work is done by whoever holds ctx->lock first: an application call
 * (poll_cq, post_*) or the context's progress thread.  The thread is what
 * makes one-sided operations complete with no call by the target
 * application, and what runs retransmit timers.
 *
 * Waking the thread costs a futex call per packet, so a context tells its
 * senders what it needs (fab_set_wake_mode): while the application keeps
 * polling and no CQ is armed, only one-sided requests wake the thread; the
 * thread re-checks every FK_APP_POLL_CHECK_NS and asks for wake-ups again as
 * soon as the polling stops or a CQ is armed.  After work the thread spins
 * IBSNAP_FAKE_SPIN_US (default 50) before it sleeps.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_pkt.h"

#define FK_APP_POLL_CHECK_NS 200000ll
#define FK_RX_BATCH 64

static void rx_one(void *arg, const void *buf, size_t len)
{
	struct fk_context *ctx = arg;
	const struct fk_pkt *pkt = buf;
	struct fk_qp *qp;

	if (len < sizeof(*pkt) || len - sizeof(*pkt) < pkt->len)
		return;
	qp = fk_qp_lookup(ctx, pkt->dst_qpn);
	if (!qp)
		return; /* no such QP here: dropped, as a real HCA does */
	switch (pkt->op) {
	case FK_OP_ACK:
	case FK_OP_NAK:
	case FK_OP_READ_RESP:
	case FK_OP_ATOMIC_RESP:
		fk_req_rx(qp, pkt, (const uint8_t *)(pkt + 1));
		break;
	default:
		fk_resp_rx(qp, pkt, (const uint8_t *)(pkt + 1));
		break;
	}
}

static uint64_t qp_deadline(const struct fk_qp *qp)
{
	uint64_t d = 0;

	if (qp->req.timer_ns)
		d = qp->req.timer_ns;
	if (qp->req.rnr_until_ns && (!d || qp->req.rnr_until_ns < d))
		d = qp->req.rnr_until_ns;
	if (qp->req.blocked && (!d || qp->req.blocked_until_ns < d))
		d = qp->req.blocked_until_ns;
	return d;
}

void fk_timer_update(struct fk_qp *qp)
{
	struct fk_context *ctx = qp_ctx(qp);
	uint64_t d = qp_deadline(qp);

	if (!d) {
		if (!fk_list_empty(&qp->timer_entry))
			fk_list_del(&qp->timer_entry);
		return;
	}
	if (fk_list_empty(&qp->timer_entry))
		fk_list_add(&ctx->timer_qps, &qp->timer_entry);
	if (!ctx->next_timer_ns || d < ctx->next_timer_ns)
		__atomic_store_n(&ctx->next_timer_ns, d, __ATOMIC_RELAXED);
}

static void run_timers(struct fk_context *ctx)
{
	uint64_t now = fab_now_ns(), next = 0;
	struct fk_list *pos, *n;

	if (!ctx->next_timer_ns || now < ctx->next_timer_ns)
		return;
	for (pos = ctx->timer_qps.next; pos != &ctx->timer_qps; pos = n) {
		struct fk_qp *qp = container_of(pos, struct fk_qp, timer_entry);
		uint64_t d = qp_deadline(qp);

		n = pos->next;
		if (d && d <= now)
			fk_req_timer(qp, now);
	}
	fk_list_for_each(pos, &ctx->timer_qps)
	{
		uint64_t d = qp_deadline(
			container_of(pos, struct fk_qp, timer_entry));

		if (d && (!next || d < next))
			next = d;
	}
	__atomic_store_n(&ctx->next_timer_ns, next, __ATOMIC_RELAXED);
}

int fk_progress(struct fk_context *ctx)
{
	int n = fab_poll(ctx->port, rx_one, ctx, FK_RX_BATCH);

	run_timers(ctx);
	return n;
}

void fk_progress_armed(struct fk_context *ctx)
{
	fab_set_wake_mode(ctx->port, FAB_WAKE_NEEDED);
	fk_progress(ctx);
}

static bool timer_due(struct fk_context *ctx, uint64_t now)
{
	uint64_t t = __atomic_load_n(&ctx->next_timer_ns, __ATOMIC_RELAXED);

	return t && t <= now;
}

/* Decide the wake mode and how long to sleep; lock held. */
static int64_t plan_sleep(struct fk_context *ctx, uint64_t now)
{
	unsigned long polls = atomic_load(&ctx->app_polls);
	bool app_polling = !ctx->armed_cqs && polls != ctx->last_polls_seen;
	int64_t timeout = -1;

	ctx->last_polls_seen = polls;
	fab_set_wake_mode(ctx->port,
			  app_polling ? FAB_WAKE_APP_POLLING : FAB_WAKE_NEEDED);
	if (ctx->next_timer_ns)
		timeout = ctx->next_timer_ns > now ?
				  (int64_t)(ctx->next_timer_ns - now) :
				  0;
	if (app_polling && (timeout < 0 || timeout > FK_APP_POLL_CHECK_NS))
		timeout = FK_APP_POLL_CHECK_NS;
	return timeout;
}

static void *progress_main(void *arg)
{
	struct fk_context *ctx = arg;
	uint64_t spin_ns = 50000, idle_since = fab_now_ns();
	const char *e = getenv("IBSNAP_FAKE_SPIN_US");
	int64_t timeout;

	if (e)
		spin_ns = strtoull(e, NULL, 10) * 1000ull;
	unsigned long polls = atomic_load(&ctx->app_polls);

	while (!atomic_load(&ctx->progress_stop)) {
		uint64_t now = fab_now_ns();
		unsigned long p;
		int n = 0;

		if (fab_rx_pending(ctx->port) || timer_due(ctx, now)) {
			if (!pthread_mutex_trylock(&ctx->lock)) {
				n = fk_progress(ctx);
				pthread_mutex_unlock(&ctx->lock);
			}
		}
		if (n) {
			idle_since = now;
			continue;
		}
		/* Spin only for an application that does not poll itself:
		 * otherwise we would steal a core from it. */
		p = atomic_load(&ctx->app_polls);
		if (now - idle_since < spin_ns && p == polls) {
			sched_yield();
			continue;
		}
		polls = p;
		pthread_mutex_lock(&ctx->lock);
		timeout = plan_sleep(ctx, now);
		pthread_mutex_unlock(&ctx->lock);
		if (timeout)
			fab_wait(ctx->port, timeout);
		idle_since = fab_now_ns() - spin_ns; /* no spin after a sleep */
		if (fab_rx_pending(ctx->port))
			idle_since = fab_now_ns();
	}
	return NULL;
}

int fk_progress_start(struct fk_context *ctx)
{
	sigset_t all, old;
	int ret;

	fk_list_init(&ctx->timer_qps);
	ctx->next_timer_ns = 0;
	ctx->tx_scratch = malloc(FK_SEG);
	if (!ctx->tx_scratch)
		return -ENOMEM;
	atomic_store(&ctx->progress_stop, false);
	/* The thread takes no signal: they belong to the application. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&ctx->progress_thread, NULL, progress_main, ctx);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		free(ctx->tx_scratch);
		ctx->tx_scratch = NULL;
		return -ret;
	}
	ctx->progress_running = true;
	return 0;
}

void fk_progress_stop(struct fk_context *ctx)
{
	if (ctx->progress_running) {
		atomic_store(&ctx->progress_stop, true);
		fab_kick(ctx->port);
		pthread_join(ctx->progress_thread, NULL);
		ctx->progress_running = false;
	}
	free(ctx->tx_scratch);
	ctx->tx_scratch = NULL;
}
