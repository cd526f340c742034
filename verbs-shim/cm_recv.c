// SPDX-License-Identifier: MIT
/*
 * rdma_cm: the handshake's messages in (the shim's event thread, cm_lock
 * held: state and events only, never a verbs call) and the timeouts.
 *   RC:  REQ ->  <- REP  RTU ->     DREQ ->  <- DREP     REJ either way
 *   UD:  SIDR_REQ ->  <- SIDR_REP
 * A request makes the listener's new child id; a REP is handed to
 * rdma_get_cm_event, which moves the QP on (cm_conn.c).
 */
#include <errno.h>
#include <string.h>

#include "cm.h"

static void ev_pdata(struct isn_cm_event *e, const struct isn_cm_msg *m,
		     uint8_t full, bool ud)
{
	uint8_t n = m->pdata_len < full ? m->pdata_len : full;

	memcpy(e->pdata, m->pdata, n);
	if (ud) {
		e->ev.param.ud.private_data = full ? e->pdata : NULL;
		e->ev.param.ud.private_data_len = full;
	} else {
		e->ev.param.conn.private_data = full ? e->pdata : NULL;
		e->ev.param.conn.private_data_len = full;
	}
}

static void ev_conn(struct isn_cm_event *e, const struct isn_cm_qpinfo *in)
{
	struct rdma_conn_param *p = &e->ev.param.conn;

	/* the peer's initiator depth is our responder resources */
	p->responder_resources = in->init_depth;
	p->initiator_depth = in->resp_res;
	p->flow_control = in->flow_control;
	p->retry_count = in->retry;
	p->rnr_retry_count = in->rnr_retry;
	p->srq = in->srq;
	p->qp_num = in->qpn;
}

void isn_cm_queue(struct isn_cm_id *cid, enum rdma_cm_event_type type,
		  int status, const struct isn_cm_msg *m, uint8_t full)
{
	struct isn_cm_event *e = isn_cm_event_new(cid, type, status);
	bool ud = cid->id.qp_type == IBV_QPT_UD;

	if (!e)
		return;
	if (m) {
		ev_pdata(e, m, full, ud);
		if (ud) {
			e->ev.param.ud.qp_num = m->info.qpn;
			e->ev.param.ud.qkey = m->info.qkey;
		} else {
			ev_conn(e, &m->info);
		}
	}
	isn_cm_event_queue(e);
}

static void reply(const struct isn_cm_msg *in, const struct sockaddr_un *to,
		  socklen_t tolen, enum isn_cm_msg_type type, uint8_t reason)
{
	struct isn_cm_id tmp;
	struct isn_cm_msg m;

	memset(&tmp, 0, sizeof(tmp));
	tmp.token = in->dst_token;
	tmp.peer_token = in->src_token;
	tmp.peer = *to;
	tmp.peer_len = tolen;
	isn_cm_msg_init(&m, &tmp, type);
	m.reason = reason;
	isn_cm_send_peer(&tmp, &m);
}

static void recv_req(struct isn_cm_msg *m, const struct sockaddr_un *from,
		     socklen_t fromlen, struct isn_cm_id *lis)
{
	bool ud = m->type == CM_MSG_SIDR_REQ;
	struct isn_cm_event *e;
	struct isn_cm_id *c;

	if (!lis || lis->state != CM_LISTEN || lis->destroying) {
		reply(m, from, fromlen, ud ? CM_MSG_SIDR_REP : CM_MSG_REJ,
		      ISN_CM_REJ_INVALID_SID);
		return;
	}
	c = isn_cm_id_new(isn_cm_chan_of(lis->id.channel), lis->id.context,
			  lis->id.ps, lis->id.qp_type);
	if (!c) {
		reply(m, from, fromlen, ud ? CM_MSG_SIDR_REP : CM_MSG_REJ,
		      ISN_CM_REJ_CONSUMER);
		return;
	}
	c->passive = true;
	c->listen = lis;
	c->dev = lis->dev;
	c->remote = m->info;
	c->peer = *from;
	c->peer_len = fromlen;
	c->peer_token = m->src_token;
	c->local.resp_res = m->info.init_depth;
	c->local.init_depth = m->info.resp_res;
	memcpy(&c->id.route.addr.src_storage, &m->dst_addr,
	       sizeof(m->dst_addr));
	memcpy(&c->id.route.addr.dst_storage, &m->src_addr,
	       sizeof(m->src_addr));
	c->id.port_num = 1;
	c->state = CM_REQ_RCVD;
	e = isn_cm_event_new(lis, RDMA_CM_EVENT_CONNECT_REQUEST, 0);
	if (!e) {
		isn_cm_id_free(c);
		return;
	}
	e->ev.id = &c->id;
	e->ev.listen_id = &lis->id;
	ev_pdata(e, m, ud ? ISN_CM_SIDR_REQ_PDATA : ISN_CM_REQ_PDATA, ud);
	if (ud) {
		e->ev.param.ud.qp_num = m->info.qpn;
		e->ev.param.ud.qkey = m->info.qkey;
	} else {
		ev_conn(e, &m->info);
	}
	isn_cm_event_queue(e);
}

void isn_cm_recv(struct isn_cm_msg *m, size_t len,
		 const struct sockaddr_un *from, socklen_t fromlen,
		 struct isn_cm_id *port_owner)
{
	struct isn_cm_id *c;

	if (len != sizeof(*m) || m->magic != ISN_CM_MAGIC)
		return;
	if (m->type == CM_MSG_REQ || m->type == CM_MSG_SIDR_REQ) {
		recv_req(m, from, fromlen, port_owner);
		return;
	}
	c = isn_cm_id_find(m->dst_token);
	if (!c || c->destroying)
		return;
	if (c->peer_token && c->peer_token != m->src_token)
		return; /* a connection of an earlier life of this id */
	switch (m->type) {
	case CM_MSG_REP:
		if (c->state != CM_CONNECT)
			return;
		c->remote = m->info;
		c->peer = *from;
		c->peer_len = fromlen;
		c->peer_token = m->src_token;
		c->local.resp_res = m->info.init_depth;
		c->local.init_depth = m->info.resp_res;
		c->state = CM_REP_RCVD;
		isn_cm_deadline(c, 0);
		{
			struct isn_cm_event *e = isn_cm_event_new(
				c, RDMA_CM_EVENT_ESTABLISHED, 0);

			if (!e)
				return;
			e->conn_resp = true;
			ev_pdata(e, m, ISN_CM_REP_PDATA, false);
			ev_conn(e, &m->info);
			isn_cm_event_queue(e);
		}
		return;
	case CM_MSG_RTU:
		if (c->state != CM_REP_SENT)
			return;
		c->state = CM_ESTABLISHED;
		isn_cm_queue(c, RDMA_CM_EVENT_ESTABLISHED, 0, NULL, 0);
		return;
	case CM_MSG_SIDR_REP:
		if (c->state != CM_CONNECT)
			return;
		isn_cm_deadline(c, 0);
		if (m->reason) {
			c->state = CM_DEAD;
			isn_cm_queue(c, RDMA_CM_EVENT_UNREACHABLE,
				     -ECONNREFUSED, m, ISN_CM_SIDR_REP_PDATA);
			return;
		}
		c->remote = m->info;
		c->state = CM_ESTABLISHED;
		isn_cm_queue(c, RDMA_CM_EVENT_ESTABLISHED, 0, m,
			     ISN_CM_SIDR_REP_PDATA);
		return;
	case CM_MSG_REJ:
		if (c->state != CM_CONNECT && c->state != CM_REP_SENT &&
		    c->state != CM_REP_RCVD)
			return;
		c->state = CM_DEAD;
		isn_cm_deadline(c, 0);
		isn_cm_queue(c, RDMA_CM_EVENT_REJECTED, m->reason, m,
			     ISN_CM_REJ_PDATA);
		return;
	case CM_MSG_DREQ:
		reply(m, from, fromlen, CM_MSG_DREP, 0);
		if (c->state != CM_ESTABLISHED && c->state != CM_REP_SENT &&
		    c->state != CM_DREQ_SENT)
			return;
		c->state = CM_DISCONNECTED;
		isn_cm_deadline(c, 0);
		isn_cm_queue(c, RDMA_CM_EVENT_DISCONNECTED, 0, NULL, 0);
		return;
	case CM_MSG_DREP:
		if (c->state != CM_DREQ_SENT)
			return;
		c->state = CM_DISCONNECTED;
		isn_cm_deadline(c, 0);
		isn_cm_queue(c, RDMA_CM_EVENT_DISCONNECTED, 0, NULL, 0);
		return;
	default:
		return;
	}
}

void isn_cm_expired(struct isn_cm_id *cid)
{
	if (cid->destroying)
		return;
	if (cid->state == CM_CONNECT) {
		cid->state = CM_DEAD;
		isn_cm_queue(cid, RDMA_CM_EVENT_UNREACHABLE, -ETIMEDOUT, NULL,
			     0);
	} else if (cid->state == CM_DREQ_SENT) {
		cid->state = CM_DISCONNECTED;
		isn_cm_queue(cid, RDMA_CM_EVENT_DISCONNECTED, 0, NULL, 0);
	}
}
