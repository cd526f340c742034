// SPDX-License-Identifier: MIT
/*
 * rdma_cm ids: create/destroy, bind, address and route resolution (local:
 * the device owning the address, cm_dev.c), listen, and the QP, SRQ and
 * endpoint helpers, as librdmacm's cma.c does them over the shim's
 * virtual verbs.  An id made without a channel is synchronous: each call
 * waits for its own event (isn_cm_complete).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cm.h"

struct isn_list isn_cm_ids = { &isn_cm_ids, &isn_cm_ids };
static uint64_t cm_next_token = 1;

static int fail(int err)
{
	errno = err;
	return -1;
}

struct isn_cm_id *isn_cm_id_new(struct isn_cm_chan *ch, void *context,
				enum rdma_port_space ps,
				enum ibv_qp_type qp_type)
{
	struct isn_cm_id *cid = calloc(1, sizeof(*cid));

	if (!cid)
		return NULL;
	cid->id.channel = &ch->ch;
	cid->id.context = context;
	cid->id.ps = ps;
	cid->id.qp_type = qp_type;
	cid->port_fd = -1;
	cid->token = cm_next_token++;
	pthread_cond_init(&cid->cond, NULL);
	cid->entry.prev = isn_cm_ids.prev;
	cid->entry.next = &isn_cm_ids;
	isn_cm_ids.prev->next = &cid->entry;
	isn_cm_ids.prev = &cid->entry;
	return cid;
}

struct isn_cm_id *isn_cm_id_find(uint64_t token)
{
	struct isn_list *p;

	for (p = isn_cm_ids.next; p != &isn_cm_ids; p = p->next) {
		struct isn_cm_id *cid =
			isn_container_of(p, struct isn_cm_id, entry);

		if (cid->token == token)
			return cid;
	}
	return NULL;
}

void isn_cm_id_free(struct isn_cm_id *cid)
{
	cid->entry.prev->next = cid->entry.next;
	cid->entry.next->prev = cid->entry.prev;
	pthread_cond_destroy(&cid->cond);
	free(cid->id.route.path_rec);
	free(cid->qp_init_attr);
	free(cid->connect_data);
	free(cid);
}

static int create_id(struct rdma_event_channel *channel, struct rdma_cm_id **id,
		     void *context, enum rdma_port_space ps,
		     enum ibv_qp_type qp_type)
{
	struct isn_cm_chan *ch = channel ? isn_cm_chan_of(channel) : NULL;
	struct isn_cm_id *cid;
	int ret = isn_cm_init();

	if (ps != RDMA_PS_TCP && ps != RDMA_PS_UDP && ps != RDMA_PS_IPOIB &&
	    ps != RDMA_PS_IB)
		return fail(EINVAL);
	if (!ret)
		ret = isn_cm_wire_init();
	if (ret)
		return fail(ret);
	if (!ch) {
		ch = isn_cm_chan_new();
		if (!ch)
			return -1;
	}
	pthread_mutex_lock(&isn_cm_lock);
	cid = isn_cm_id_new(ch, context, ps, qp_type);
	pthread_mutex_unlock(&isn_cm_lock);
	if (!cid) {
		if (!channel)
			isn_cm_chan_free(ch);
		return fail(ENOMEM);
	}
	cid->sync = !channel;
	*id = &cid->id;
	return 0;
}

ISN_EXPORT int rdma_create_id(struct rdma_event_channel *channel,
			      struct rdma_cm_id **id, void *context,
			      enum rdma_port_space ps)
{
	return create_id(channel, id, context, ps,
			 ps == RDMA_PS_IPOIB || ps == RDMA_PS_UDP ? IBV_QPT_UD :
								    IBV_QPT_RC);
}

ISN_EXPORT int rdma_destroy_id(struct rdma_cm_id *id)
{
	struct isn_cm_id *cid = isn_cm_id_of(id);
	struct isn_list *p;
	bool sync = cid->sync;
	struct isn_cm_chan *ch = isn_cm_chan_of(id->channel);
	ISN_CTL();

	if (id->event) {
		rdma_ack_cm_event(id->event);
		id->event = NULL;
	}
	/* the kernel's CM tells the peer: a DREQ, or a REJ for a request */
	if (!isn_cm_send_dreq(cid, false) && cid->state == CM_REQ_RCVD) {
		struct isn_cm_msg m;

		isn_cm_msg_init(&m, cid, CM_MSG_REJ);
		m.reason = ISN_CM_REJ_CONSUMER;
		isn_cm_send_peer(cid, &m);
	}
	pthread_mutex_lock(&isn_cm_lock);
	cid->destroying = true;
	cid->deadline = 0;
	cid->port_named = false;
	isn_cm_events_drop(cid);
	for (p = isn_cm_ids.next; p != &isn_cm_ids; p = p->next) {
		struct isn_cm_id *c =
			isn_container_of(p, struct isn_cm_id, entry);

		if (c->listen == cid)
			c->listen = NULL;
	}
	pthread_mutex_unlock(&isn_cm_lock);
	isn_cm_port_close(cid);
	pthread_mutex_lock(&isn_cm_lock);
	while (cid->events_completed < cid->events_reported)
		pthread_cond_wait(&cid->cond, &isn_cm_lock);
	isn_cm_id_free(cid);
	pthread_mutex_unlock(&isn_cm_lock);
	if (sync)
		isn_cm_chan_free(ch);
	return 0;
}

static uint16_t ephemeral_port(void)
{
	uint16_t r = 0;

	if (getrandom(&r, sizeof(r), 0) < 0)
		r = (uint16_t)isn_now_ns();
	return (uint16_t)(32768 + r % 28000);
}

static int bind_addr(struct isn_cm_id *cid, const struct sockaddr *addr)
{
	socklen_t len = isn_cm_addrlen(addr);
	struct sockaddr *src = &cid->id.route.addr.src_addr;
	int ret;

	if (!len)
		return EINVAL;
	if (cid->state != CM_IDLE)
		return EINVAL;
	if (!isn_cm_addr_any(addr)) {
		cid->dev = isn_cm_dev_for(addr, true);
		if (!cid->dev)
			return errno;
		cid->id.verbs = cid->dev->verbs;
		cid->id.pd = cid->dev->pd;
		cid->id.port_num = 1;
	}
	memcpy(src, addr, len);
	if (isn_cm_port(addr)) {
		ret = isn_cm_port_open(cid);
		if (ret)
			return ret;
	} else {
		isn_cm_set_port(src, ephemeral_port());
	}
	cid->state = CM_BOUND;
	return 0;
}

ISN_EXPORT int rdma_bind_addr(struct rdma_cm_id *id, struct sockaddr *addr)
{
	ISN_CTL();
	int ret = bind_addr(isn_cm_id_of(id), addr);

	return ret ? fail(ret) : 0;
}

ISN_EXPORT int rdma_listen(struct rdma_cm_id *id, int backlog)
{
	struct isn_cm_id *cid = isn_cm_id_of(id);
	struct sockaddr_in any = { .sin_family = AF_INET };
	int ret = 0, i;
	ISN_CTL();

	(void)backlog;
	if (cid->state == CM_IDLE)
		ret = bind_addr(cid, (struct sockaddr *)&any);
	if (!ret && cid->state != CM_BOUND)
		ret = EINVAL;
	for (i = 0; !ret && cid->port_fd < 0 && i < 64; i++) {
		ret = isn_cm_port_open(cid);
		if (ret == EADDRINUSE && i < 63) {
			isn_cm_set_port(&id->route.addr.src_addr,
					ephemeral_port());
			ret = 0;
		}
	}
	if (ret)
		return fail(ret);
	pthread_mutex_lock(&isn_cm_lock);
	cid->state = CM_LISTEN;
	pthread_mutex_unlock(&isn_cm_lock);
	return 0;
}

static void queue_simple(struct isn_cm_id *cid, enum rdma_cm_event_type type,
			 int status)
{
	struct isn_cm_event *e = isn_cm_event_new(cid, type, status);

	if (!e)
		return;
	pthread_mutex_lock(&isn_cm_lock);
	isn_cm_event_queue(e);
	pthread_mutex_unlock(&isn_cm_lock);
}

static int cm_resolve_addr(struct rdma_cm_id *id, struct sockaddr *src_addr,
			   struct sockaddr *dst_addr, int timeout_ms)
{
	struct isn_cm_id *cid = isn_cm_id_of(id);
	socklen_t dlen = isn_cm_addrlen(dst_addr);
	struct rdma_ib_addr *ib = &id->route.addr.addr.ibaddr;
	struct sockaddr *src = &id->route.addr.src_addr;
	int ret = 0;
	ISN_CTL();

	(void)timeout_ms;
	if (!dlen || (src_addr && !isn_cm_addrlen(src_addr)))
		return fail(EINVAL);
	if (cid->state == CM_IDLE && src_addr)
		ret = bind_addr(cid, src_addr);
	if (ret)
		return fail(ret);
	if (cid->state != CM_IDLE && cid->state != CM_BOUND)
		return fail(EINVAL);
	memcpy(&id->route.addr.dst_storage, dst_addr, dlen);
	if (!cid->dev)
		cid->dev = isn_cm_dev_for(dst_addr, false);
	if (!cid->dev) {
		queue_simple(cid, RDMA_CM_EVENT_ADDR_ERROR, -errno);
		return CM_WAIT;
	}
	if (cid->state == CM_IDLE || isn_cm_addr_any(src)) {
		uint16_t port = cid->state == CM_IDLE ? ephemeral_port() :
							isn_cm_port(src);

		struct sockaddr *da = (struct sockaddr *)&cid->dev->addr;

		if (da->sa_family == dst_addr->sa_family &&
		    !isn_cm_addr_loopback(dst_addr))
			memcpy(src, da, isn_cm_addrlen(da));
		else
			memcpy(src, dst_addr, dlen); /* loopback */
		isn_cm_set_port(src, port);
	}
	id->verbs = cid->dev->verbs;
	id->pd = cid->dev->pd;
	id->port_num = 1;
	ibv_query_gid(id->verbs, 1, cid->dev->gid_index, &ib->sgid);
	memset(&ib->dgid, 0, sizeof(ib->dgid));
	if (dst_addr->sa_family == AF_INET) {
		ib->dgid.raw[10] = ib->dgid.raw[11] = 0xff;
		memcpy(ib->dgid.raw + 12,
		       &((struct sockaddr_in *)dst_addr)->sin_addr, 4);
	} else {
		memcpy(ib->dgid.raw,
		       &((struct sockaddr_in6 *)dst_addr)->sin6_addr, 16);
	}
	ib->pkey = htons(0xffff);
	cid->state = CM_ADDR_RESOLVED;
	queue_simple(cid, RDMA_CM_EVENT_ADDR_RESOLVED, 0);
	return CM_WAIT;
}

/* The wait for a synchronous id's event runs outside ISN_CTL: a
 * checkpoint may run meanwhile (the peer may be in one). */
ISN_EXPORT int rdma_resolve_addr(struct rdma_cm_id *id,
				 struct sockaddr *src_addr,
				 struct sockaddr *dst_addr, int timeout_ms)
{
	int ret = cm_resolve_addr(id, src_addr, dst_addr, timeout_ms);

	return ret == CM_WAIT ? isn_cm_complete(isn_cm_id_of(id)) : ret;
}

static int cm_resolve_route(struct rdma_cm_id *id, int timeout_ms)
{
	struct isn_cm_id *cid = isn_cm_id_of(id);
	struct ibv_sa_path_rec *pr;
	ISN_CTL();

	(void)timeout_ms;
	if (cid->state != CM_ADDR_RESOLVED)
		return fail(EINVAL);
	if (!id->route.path_rec) {
		pr = calloc(1, sizeof(*pr));
		if (!pr)
			return fail(ENOMEM);
		isn_cm_local_info(cid);
		pr->sgid = id->route.addr.addr.ibaddr.sgid;
		pr->dgid = id->route.addr.addr.ibaddr.dgid;
		pr->slid = htons(cid->local.lid);
		pr->pkey = htons(0xffff);
		pr->hop_limit = 64;
		pr->numb_path = 1;
		pr->mtu_selector = 2;
		pr->mtu = cid->local.mtu;
		pr->rate_selector = 2;
		pr->packet_life_time_selector = 2;
		id->route.path_rec = pr;
		id->route.num_paths = 1;
	}
	cid->state = CM_ROUTE_RESOLVED;
	queue_simple(cid, RDMA_CM_EVENT_ROUTE_RESOLVED, 0);
	return CM_WAIT;
}

ISN_EXPORT int rdma_resolve_route(struct rdma_cm_id *id, int timeout_ms)
{
	int ret = cm_resolve_route(id, timeout_ms);

	return ret == CM_WAIT ? isn_cm_complete(isn_cm_id_of(id)) : ret;
}

/* ---- QP, SRQ, CQs of an id (cma.c's ucma_create_cqs) ---- */

static void destroy_cqs(struct rdma_cm_id *id)
{
	if (id->recv_cq) {
		ibv_destroy_cq(id->recv_cq);
		if (id->send_cq && id->send_cq != id->recv_cq)
			ibv_destroy_cq(id->send_cq);
	} else if (id->send_cq) {
		ibv_destroy_cq(id->send_cq);
	}
	id->recv_cq = id->send_cq = NULL;
	if (id->recv_cq_channel) {
		ibv_destroy_comp_channel(id->recv_cq_channel);
		if (id->send_cq_channel &&
		    id->send_cq_channel != id->recv_cq_channel)
			ibv_destroy_comp_channel(id->send_cq_channel);
	} else if (id->send_cq_channel) {
		ibv_destroy_comp_channel(id->send_cq_channel);
	}
	id->recv_cq_channel = id->send_cq_channel = NULL;
}

static int create_cqs(struct rdma_cm_id *id, uint32_t send, uint32_t recv)
{
	if (recv) {
		id->recv_cq_channel = ibv_create_comp_channel(id->verbs);
		if (id->recv_cq_channel)
			id->recv_cq = ibv_create_cq(id->verbs, (int)recv, id,
						    id->recv_cq_channel, 0);
		if (!id->recv_cq)
			goto err;
	}
	if (send) {
		id->send_cq_channel = ibv_create_comp_channel(id->verbs);
		if (id->send_cq_channel)
			id->send_cq = ibv_create_cq(id->verbs, (int)send, id,
						    id->send_cq_channel, 0);
		if (!id->send_cq)
			goto err;
	}
	return 0;
err:
	destroy_cqs(id);
	return -1;
}

ISN_EXPORT int rdma_create_qp_ex(struct rdma_cm_id *id,
				 struct ibv_qp_init_attr_ex *attr)
{
	struct isn_cm_id *cid = isn_cm_id_of(id);
	struct ibv_qp *qp;
	int ret;
	ISN_CTL();

	if (id->qp || !id->verbs)
		return fail(EINVAL);
	if (!(attr->comp_mask & IBV_QP_INIT_ATTR_PD) || !attr->pd) {
		attr->comp_mask |= IBV_QP_INIT_ATTR_PD;
		attr->pd = id->pd;
	} else if (id->verbs != attr->pd->context) {
		return fail(EINVAL);
	}
	if ((id->recv_cq && attr->recv_cq && id->recv_cq != attr->recv_cq) ||
	    (id->send_cq && attr->send_cq && id->send_cq != attr->send_cq))
		return fail(EINVAL);
	if (id->qp_type == IBV_QPT_XRC_RECV)
		return fail(EOPNOTSUPP);
	if (create_cqs(id,
		       attr->send_cq || id->send_cq ? 0 : attr->cap.max_send_wr,
		       attr->recv_cq || id->recv_cq ? 0 :
						      attr->cap.max_recv_wr))
		return -1;
	if (!attr->send_cq)
		attr->send_cq = id->send_cq;
	if (!attr->recv_cq)
		attr->recv_cq = id->recv_cq;
	if (id->srq && !attr->srq)
		attr->srq = id->srq;
	qp = ibv_create_qp_ex(id->verbs, attr);
	if (!qp) {
		destroy_cqs(id);
		return -1;
	}
	ret = isn_cm_qp_init(cid, qp);
	if (ret) {
		ibv_destroy_qp(qp);
		destroy_cqs(id);
		return fail(ret);
	}
	id->pd = qp->pd;
	id->qp = qp;
	return 0;
}

ISN_EXPORT int rdma_create_qp(struct rdma_cm_id *id, struct ibv_pd *pd,
			      struct ibv_qp_init_attr *qp_init_attr)
{
	struct ibv_qp_init_attr_ex ax;
	int ret;

	memset(&ax, 0, sizeof(ax));
	memcpy(&ax, qp_init_attr, sizeof(*qp_init_attr));
	ax.comp_mask = IBV_QP_INIT_ATTR_PD;
	ax.pd = pd ? pd : id->pd;
	ret = rdma_create_qp_ex(id, &ax);
	memcpy(qp_init_attr, &ax, sizeof(*qp_init_attr));
	return ret;
}

ISN_EXPORT void rdma_destroy_qp(struct rdma_cm_id *id)
{
	ISN_CTL();

	ibv_destroy_qp(id->qp);
	id->qp = NULL;
	destroy_cqs(id);
}

ISN_EXPORT int rdma_create_srq_ex(struct rdma_cm_id *id,
				  struct ibv_srq_init_attr_ex *attr)
{
	struct ibv_srq *srq;
	ISN_CTL();

	if (!(attr->comp_mask & IBV_SRQ_INIT_ATTR_TYPE))
		return fail(EINVAL);
	if (attr->srq_type != IBV_SRQT_BASIC)
		return fail(EOPNOTSUPP);
	if (!(attr->comp_mask & IBV_SRQ_INIT_ATTR_PD) || !attr->pd) {
		attr->pd = id->pd;
		attr->comp_mask |= IBV_SRQ_INIT_ATTR_PD;
	}
	srq = ibv_create_srq_ex(id->verbs, attr);
	if (!srq)
		return -1;
	if (!id->pd)
		id->pd = attr->pd;
	id->srq = srq;
	return 0;
}

ISN_EXPORT int rdma_create_srq(struct rdma_cm_id *id, struct ibv_pd *pd,
			       struct ibv_srq_init_attr *attr)
{
	struct ibv_srq_init_attr_ex ax;
	int ret;

	memset(&ax, 0, sizeof(ax));
	memcpy(&ax, attr, sizeof(*attr));
	ax.comp_mask = IBV_SRQ_INIT_ATTR_TYPE | IBV_SRQ_INIT_ATTR_PD;
	ax.srq_type = IBV_SRQT_BASIC;
	ax.pd = pd;
	ret = rdma_create_srq_ex(id, &ax);
	memcpy(attr, &ax, sizeof(*attr));
	return ret;
}

ISN_EXPORT void rdma_destroy_srq(struct rdma_cm_id *id)
{
	ISN_CTL();

	ibv_destroy_srq(id->srq);
	id->srq = NULL;
	destroy_cqs(id);
}
