/* SPDX-License-Identifier: MIT */
/*
 * Completion channels: a pipe per channel carrying one struct fk_cq pointer
 * per completion event.  The read end is ibch.fd (blocking, close-on-exec,
 * as uverbs gives it); get_cq_event reads one pointer and honours O_NONBLOCK
 * set on it.  A CQ destroyed with events still in the pipe stays allocated,
 * marked dead, until those events have been read (and skipped).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "fake.h"

struct ibv_comp_channel *fk_create_comp_channel(struct ibv_context *context)
{
	struct fk_context *ctx = to_fctx(context);
	struct fk_comp_channel *ch = calloc(1, sizeof(*ch));
	int fds[2];

	if (!ch) {
		errno = ENOMEM;
		return NULL;
	}
	if (pipe2(fds, O_CLOEXEC)) {
		int err = errno;

		fk_log("comp channel pipe: %m");
		free(ch);
		errno = err;
		return NULL;
	}
	/* writers hold ctx->lock: never block there */
	fcntl(fds[1], F_SETFL, O_NONBLOCK);
	ch->ibch.context = context;
	ch->ibch.fd = fds[0];
	ch->ibch.refcnt = 0;
	ch->wfd = fds[1];
	pthread_mutex_lock(&ctx->lock);
	fk_list_add(&ctx->channels, &ch->entry);
	pthread_mutex_unlock(&ctx->lock);
	return &ch->ibch;
}

void fk_ch_free(struct fk_comp_channel *ch)
{
	fk_list_del(&ch->entry);
	close(ch->ibch.fd);
	close(ch->wfd);
	free(ch);
}

int fk_destroy_comp_channel(struct ibv_comp_channel *channel)
{
	struct fk_context *ctx = to_fctx(channel->context);
	struct fk_comp_channel *ch = to_fch(channel);
	struct fk_list *pos, *n;

	pthread_mutex_lock(&ctx->lock);
	if (channel->refcnt) {
		pthread_mutex_unlock(&ctx->lock);
		return EBUSY;
	}
	/* dead CQs waiting for their events to be read: nobody will now */
	for (pos = ctx->cqs.next; pos != &ctx->cqs; pos = n) {
		struct fk_cq *cq = container_of(pos, struct fk_cq, entry);

		n = pos->next;
		if (cq->dead && cq->channel == ch) {
			if (cq->zombie_done)
				fk_cq_free(cq);
			else
				cq->chan_pending = 0; /* destroy_cq frees it */
		}
	}
	fk_ch_free(ch);
	pthread_mutex_unlock(&ctx->lock);
	return 0;
}

int fk_get_cq_event(struct ibv_comp_channel *channel, struct ibv_cq **cq_p,
		    void **cq_context)
{
	struct fk_context *ctx = to_fctx(channel->context);

	for (;;) {
		struct fk_cq *cq;
		ssize_t n = read(channel->fd, &cq, sizeof(cq));
		bool dead;

		if (n != (ssize_t)sizeof(cq)) {
			if (n >= 0)
				errno = EIO;
			return -1;
		}
		pthread_mutex_lock(&ctx->lock);
		cq->chan_pending--;
		dead = cq->dead;
		if (dead && cq->zombie_done && !cq->chan_pending)
			fk_cq_free(cq);
		else if (!dead)
			cq->comp_events_reported++;
		pthread_mutex_unlock(&ctx->lock);
		if (!dead) {
			*cq_p = (struct ibv_cq *)&cq->ibcq;
			*cq_context = cq->ibcq.cq_context;
			return 0;
		}
	}
}

void fk_ack_cq_events(struct ibv_cq *cq, unsigned int nevents)
{
	pthread_mutex_lock(&cq->mutex);
	cq->comp_events_completed += nevents;
	pthread_cond_broadcast(&cq->cond);
	pthread_mutex_unlock(&cq->mutex);
}
