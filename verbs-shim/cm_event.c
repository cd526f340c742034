// SPDX-License-Identifier: MIT
/*
 * rdma_cm event channels.  The application's channel fd is the read end of
 * a pipe the shim owns (design §5): one byte per queued event, the events
 * themselves on the channel's queue (cm_lock).  rdma_get_cm_event reads a
 * byte as read(2) on the fd would (blocking, O_NONBLOCK: EAGAIN, EINTR),
 * then takes the queue's head; a byte whose event was dropped (its id
 * destroyed, or moved to another channel) is skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm.h"

pthread_mutex_t isn_cm_lock = PTHREAD_MUTEX_INITIALIZER;
struct isn_list isn_cm_chans = { &isn_cm_chans, &isn_cm_chans };
static struct isn_list cm_dead_chans = { &cm_dead_chans, &cm_dead_chans };

static void list_add(struct isn_list *h, struct isn_list *e)
{
	e->prev = h->prev;
	e->next = h;
	h->prev->next = e;
	h->prev = e;
}

static void list_del(struct isn_list *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->next = e->prev = e;
}

struct isn_cm_chan *isn_cm_chan_new(void)
{
	struct isn_cm_chan *c = calloc(1, sizeof(*c));
	int fds[2];

	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	if (pipe2(fds, O_CLOEXEC)) {
		free(c);
		return NULL;
	}
	isn_fd_nonblock(fds[1]);
	c->ch.fd = fds[0];
	c->wfd = fds[1];
	c->tail = &c->head;
	pthread_mutex_lock(&isn_cm_lock);
	list_add(&isn_cm_chans, &c->entry);
	pthread_mutex_unlock(&isn_cm_lock);
	return c;
}

void isn_cm_chan_free(struct isn_cm_chan *c)
{
	struct isn_cm_event *e;

	pthread_mutex_lock(&isn_cm_lock);
	list_del(&c->entry);
	while ((e = c->head)) {
		c->head = e->next;
		free(e);
	}
	pthread_mutex_unlock(&isn_cm_lock);
	close(c->ch.fd);
	close(c->wfd);
	free(c);
}

ISN_EXPORT struct rdma_event_channel *rdma_create_event_channel(void)
{
	struct isn_cm_chan *c;
	int ret = isn_cm_init();

	if (ret) {
		errno = ret;
		return NULL;
	}
	c = isn_cm_chan_new();
	return c ? &c->ch : NULL;
}

/*
 * A program's channel is kept (its fds closed) once destroyed: a thread of
 * the program may still be on its way into rdma_get_cm_event on it (rping's
 * event thread when its main thread tears down).  With librdmacm such a
 * thread blocks in the kernel's fd until the process ends; here it blocks
 * too, instead of reading freed memory or a closed fd.
 */
ISN_EXPORT void rdma_destroy_event_channel(struct rdma_event_channel *channel)
{
	struct isn_cm_chan *c = isn_cm_chan_of(channel);
	struct isn_cm_event *e;

	pthread_mutex_lock(&isn_cm_lock);
	list_del(&c->entry);
	list_add(&cm_dead_chans, &c->entry); /* kept, and reachable */
	while ((e = c->head)) {
		c->head = e->next;
		free(e);
	}
	c->tail = &c->head;
	atomic_store(&c->dead, true);
	pthread_mutex_unlock(&isn_cm_lock);
	close(c->wfd);
	close(c->ch.fd);
}

static void block_forever(void)
{
	for (;;)
		pause();
}

struct isn_cm_event *isn_cm_event_new(struct isn_cm_id *cid,
				      enum rdma_cm_event_type type, int status)
{
	struct isn_cm_event *e = calloc(1, sizeof(*e));

	if (!e) {
		isn_log("rdma_cm: no memory for an event");
		return NULL;
	}
	e->ev.id = &cid->id;
	e->ev.event = type;
	e->ev.status = status;
	e->owner = cid;
	return e;
}

void isn_cm_event_queue(struct isn_cm_event *e)
{
	struct isn_cm_chan *c = isn_cm_chan_of(e->owner->id.channel);
	ssize_t r;

	e->next = NULL;
	*c->tail = e;
	c->tail = &e->next;
	do
		r = write(c->wfd, "e", 1);
	while (r < 0 && errno == EINTR);
	if (r != 1)
		isn_log("rdma_cm: event channel full");
}

static void chan_unlink_id(struct isn_cm_chan *c, struct isn_cm_id *cid,
			   struct isn_cm_chan *to)
{
	struct isn_cm_event **pp = &c->head, *e;

	while ((e = *pp)) {
		if (e->owner != cid && e->ev.id != &cid->id) {
			pp = &e->next;
			continue;
		}
		*pp = e->next;
		if (c->tail == &e->next)
			c->tail = pp;
		if (to && e->owner == cid) {
			e->owner->id.channel = &to->ch;
			isn_cm_event_queue(e);
		} else {
			if (e->ev.event == RDMA_CM_EVENT_CONNECT_REQUEST &&
			    e->ev.id != &cid->id)
				isn_cm_id_free(isn_cm_id_of(e->ev.id));
			free(e);
		}
	}
}

void isn_cm_events_drop(struct isn_cm_id *cid)
{
	struct isn_list *p;

	for (p = isn_cm_chans.next; p != &isn_cm_chans; p = p->next)
		chan_unlink_id(isn_container_of(p, struct isn_cm_chan, entry),
			       cid, NULL);
}

ISN_EXPORT int rdma_get_cm_event(struct rdma_event_channel *channel,
				 struct rdma_cm_event **event)
{
	struct isn_cm_chan *c;
	struct isn_cm_event *e;
	char b;
	ssize_t r;

	if (!channel || !event) {
		errno = EINVAL;
		return -1;
	}
	c = isn_cm_chan_of(channel);
	for (;;) {
		if (atomic_load(&c->dead))
			block_forever();
		r = read(c->ch.fd, &b, 1);
		if (r <= 0 && atomic_load(&c->dead))
			block_forever();
		if (r < 0)
			return -1;
		if (r == 0) {
			errno = ENODATA;
			return -1;
		}
		pthread_mutex_lock(&isn_cm_lock);
		e = c->head;
		if (e) {
			c->head = e->next;
			if (!c->head)
				c->tail = &c->head;
			e->owner->events_reported++;
		}
		pthread_mutex_unlock(&isn_cm_lock);
		if (e)
			break;
	}
	isn_cm_deliver(e);
	*event = &e->ev;
	return 0;
}

ISN_EXPORT int rdma_ack_cm_event(struct rdma_cm_event *event)
{
	struct isn_cm_event *e;

	if (!event) {
		errno = EINVAL;
		return -1;
	}
	e = isn_container_of(event, struct isn_cm_event, ev);
	pthread_mutex_lock(&isn_cm_lock);
	e->owner->events_completed++;
	pthread_cond_broadcast(&e->owner->cond);
	pthread_mutex_unlock(&isn_cm_lock);
	free(e);
	return 0;
}

int isn_cm_complete(struct isn_cm_id *cid)
{
	struct rdma_cm_event *ev;
	int ret;

	if (!cid->sync)
		return 0;
	if (cid->id.event) {
		rdma_ack_cm_event(cid->id.event);
		cid->id.event = NULL;
	}
	ret = rdma_get_cm_event(cid->id.channel, &ev);
	if (ret)
		return ret;
	cid->id.event = ev;
	if (!ev->status)
		return 0;
	errno = ev->event == RDMA_CM_EVENT_REJECTED ? ECONNREFUSED :
		ev->status < 0			    ? -ev->status :
						      ev->status;
	return -1;
}

ISN_EXPORT int rdma_migrate_id(struct rdma_cm_id *id,
			       struct rdma_event_channel *channel)
{
	struct isn_cm_id *cid = isn_cm_id_of(id);
	struct isn_cm_chan *from = isn_cm_chan_of(id->channel), *to;
	bool sync = !channel;

	if (cid->sync && !channel) {
		errno = EINVAL;
		return -1;
	}
	if (sync) {
		to = isn_cm_chan_new();
		if (!to)
			return -1;
	} else {
		to = isn_cm_chan_of(channel);
	}
	if (cid->sync && id->event) {
		rdma_ack_cm_event(id->event);
		id->event = NULL;
	}
	pthread_mutex_lock(&isn_cm_lock);
	chan_unlink_id(from, cid, to);
	id->channel = &to->ch;
	/* events handed out on the old channel are acked there first */
	while (cid->events_completed < cid->events_reported)
		pthread_cond_wait(&cid->cond, &isn_cm_lock);
	pthread_mutex_unlock(&isn_cm_lock);
	if (cid->sync)
		isn_cm_chan_free(from);
	cid->sync = sync;
	return 0;
}

ISN_EXPORT const char *rdma_event_str(enum rdma_cm_event_type event)
{
	static const char *const names[] = {
		"RDMA_CM_EVENT_ADDR_RESOLVED",
		"RDMA_CM_EVENT_ADDR_ERROR",
		"RDMA_CM_EVENT_ROUTE_RESOLVED",
		"RDMA_CM_EVENT_ROUTE_ERROR",
		"RDMA_CM_EVENT_CONNECT_REQUEST",
		"RDMA_CM_EVENT_CONNECT_RESPONSE",
		"RDMA_CM_EVENT_CONNECT_ERROR",
		"RDMA_CM_EVENT_UNREACHABLE",
		"RDMA_CM_EVENT_REJECTED",
		"RDMA_CM_EVENT_ESTABLISHED",
		"RDMA_CM_EVENT_DISCONNECTED",
		"RDMA_CM_EVENT_DEVICE_REMOVAL",
		"RDMA_CM_EVENT_MULTICAST_JOIN",
		"RDMA_CM_EVENT_MULTICAST_ERROR",
		"RDMA_CM_EVENT_ADDR_CHANGE",
		"RDMA_CM_EVENT_TIMEWAIT_EXIT",
		"RDMA_CM_EVENT_ADDRINFO_RESOLVED",
		"RDMA_CM_EVENT_ADDRINFO_ERROR",
	};

	if ((unsigned int)event < sizeof(names) / sizeof(names[0]))
		return names[event];
	return "UNKNOWN EVENT";
}
