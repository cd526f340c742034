// SPDX-License-Identifier: MIT
/*
 * rdma_cm connections: the calls that send the handshake's messages
 * (application threads, under ISN_CTL so that none runs inside a
 * checkpoint), and what rdma_get_cm_event does before it hands an event
 * out.  The messages in: cm_recv.c.
 * Statuses as librdmacm reports them over IB/RoCE: REJECTED 8 when nobody
 * listens, 28 when the peer rejected; UNREACHABLE -ETIMEDOUT when no
 * response came in IBSNAP_CM_TIMEOUT_MS (default 20 s).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cm.h"

#define CM_DREQ_TIMEOUT_MS 1000

static int send_simple(struct isn_cm_id *cid, enum isn_cm_msg_type type,
		       uint8_t reason, const void *pdata, uint8_t len)
{
	struct isn_cm_msg m;

	isn_cm_msg_init(&m, cid, type);
	m.reason = reason;
	if (pdata && len) {
		memcpy(m.pdata, pdata, len);
		m.pdata_len = len;
	}
	return isn_cm_send_peer(cid, &m);
}

/* ---- in rdma_get_cm_event, before the event is handed out ---- */

static void deliver_req(struct isn_cm_event *e)
{
	struct isn_cm_id *c = isn_cm_id_of(e->ev.id);

	if (!c->dev)
		c->dev = isn_cm_dev_for(&c->id.route.addr.src_addr, false);
	if (c->dev) {
		c->id.verbs = c->dev->verbs;
		c->id.pd = c->dev->pd;
		isn_cm_local_info(c);
	}
	if (getrandom(&c->local.psn, sizeof(c->local.psn), 0) < 0)
		c->local.psn = (uint32_t)isn_now_ns();
	c->local.psn &= 0xffffff;
	if (c->id.qp_type == IBV_QPT_UD)
		isn_cm_ah_attr(c, &e->ev.param.ud.ah_attr);
	if (e->owner->sync)
		rdma_migrate_id(&c->id, NULL);
}

static void deliver_resp(struct isn_cm_event *e)
{
	struct isn_cm_id *c = e->owner;
	int ret;

	if (!c->id.qp) {
		e->ev.event = RDMA_CM_EVENT_CONNECT_RESPONSE;
		return;
	}
	ret = isn_cm_qp_rtr_rts(c);
	if (!ret)
		ret = send_simple(c, CM_MSG_RTU, 0, NULL, 0);
	pthread_mutex_lock(&isn_cm_lock);
	if (!ret && c->state == CM_REP_RCVD)
		c->state = CM_ESTABLISHED;
	pthread_mutex_unlock(&isn_cm_lock);
	if (ret) {
		e->ev.event = RDMA_CM_EVENT_CONNECT_ERROR;
		e->ev.status = -ret;
		isn_cm_qp_err(c);
		send_simple(c, CM_MSG_REJ, ISN_CM_REJ_CONSUMER, NULL, 0);
	}
}

void isn_cm_deliver(struct isn_cm_event *e)
{
	ISN_CTL();

	switch (e->ev.event) {
	case RDMA_CM_EVENT_CONNECT_REQUEST:
		deliver_req(e);
		break;
	case RDMA_CM_EVENT_ESTABLISHED:
		if (e->conn_resp)
			deliver_resp(e);
		else if (e->owner->id.qp_type == IBV_QPT_UD)
			isn_cm_ah_attr(e->owner, &e->ev.param.ud.ah_attr);
		break;
	case RDMA_CM_EVENT_REJECTED:
		isn_cm_qp_err(e->owner);
		break;
	default:
		break;
	}
}

/* ---- the calls ---- */

static int fail(int err)
{
	errno = err;
	return -1;
}

static int check_param(struct isn_cm_id *cid, struct rdma_conn_param *p)
{
	if (cid->id.ps != RDMA_PS_TCP)
		return 0;
	if (!cid->id.qp && !p)
		return EINVAL;
	if (p && cid->dev &&
	    ((p->responder_resources != RDMA_MAX_RESP_RES &&
	      p->responder_resources > cid->dev->max_resp_res) ||
	     (p->initiator_depth != RDMA_MAX_INIT_DEPTH &&
	      p->initiator_depth > cid->dev->max_init_depth)))
		return EINVAL;
	return 0;
}

/* Our half of the handshake from @p (NULL: librdmacm's defaults). */
static int local_half(struct isn_cm_id *cid, struct rdma_conn_param *p,
		      struct isn_cm_msg *m, uint8_t max)
{
	uint8_t n = cid->connect_len;

	cid->local.qpn = cid->id.qp ? cid->id.qp->qp_num : p ? p->qp_num : 0;
	cid->local.srq = cid->id.qp ? !!cid->id.qp->srq : p ? p->srq : 0;
	cid->local.qkey = RDMA_UDP_QKEY;
	cid->local.retry = p ? p->retry_count : 7;
	cid->local.rnr_retry = p ? p->rnr_retry_count : 7;
	cid->local.flow_control = p ? p->flow_control : 0;
	if (p && p->private_data_len)
		n += p->private_data_len;
	if (n > max)
		return EINVAL;
	isn_cm_msg_init(m, cid, CM_MSG_REQ);
	if (cid->connect_len)
		memcpy(m->pdata, cid->connect_data, cid->connect_len);
	if (p && p->private_data_len)
		memcpy(m->pdata + cid->connect_len, p->private_data,
		       p->private_data_len);
	m->pdata_len = n;
	return 0;
}

static int cm_connect(struct rdma_cm_id *id, struct rdma_conn_param *conn_param)
{
	struct isn_cm_id *cid = isn_cm_id_of(id);
	bool ud = id->qp_type == IBV_QPT_UD;
	struct isn_cm_msg m;
	int ret;
	ISN_CTL();

	if (cid->state != CM_ROUTE_RESOLVED)
		return fail(EINVAL);
	ret = check_param(cid, conn_param);
	if (ret)
		return fail(ret);
	cid->local.init_depth = conn_param && conn_param->initiator_depth !=
							RDMA_MAX_INIT_DEPTH ?
					conn_param->initiator_depth :
					cid->dev->max_init_depth;
	cid->local.resp_res = conn_param && conn_param->responder_resources !=
						      RDMA_MAX_RESP_RES ?
				      conn_param->responder_resources :
				      cid->dev->max_resp_res;
	if (getrandom(&cid->local.psn, sizeof(cid->local.psn), 0) < 0)
		cid->local.psn = (uint32_t)isn_now_ns();
	cid->local.psn &= 0xffffff;
	ret = isn_cm_local_info(cid);
	if (!ret)
		ret = local_half(cid, conn_param, &m,
				 ud ? ISN_CM_SIDR_REQ_PDATA : ISN_CM_REQ_PDATA);
	if (ret)
		return fail(ret);
	free(cid->connect_data);
	cid->connect_data = NULL;
	cid->connect_len = 0;
	m.type = ud ? CM_MSG_SIDR_REQ : CM_MSG_REQ;
	m.dst_token = 0;
	pthread_mutex_lock(&isn_cm_lock);
	cid->state = CM_CONNECT;
	cid->peer_token = 0;
	isn_cm_deadline(cid, isn_cm_timeout_ms());
	pthread_mutex_unlock(&isn_cm_lock);
	ret = isn_cm_send_listener(cid, &m, &id->route.addr.dst_addr);
	if (ret) {
		pthread_mutex_lock(&isn_cm_lock);
		if (cid->state == CM_CONNECT) {
			cid->state = CM_DEAD;
			isn_cm_deadline(cid, 0);
			if (ud)
				isn_cm_queue(cid, RDMA_CM_EVENT_UNREACHABLE,
					     -ECONNREFUSED, NULL, 0);
			else
				isn_cm_queue(cid, RDMA_CM_EVENT_REJECTED,
					     ISN_CM_REJ_INVALID_SID, NULL, 0);
		}
		pthread_mutex_unlock(&isn_cm_lock);
	}
	return CM_WAIT;
}

/* The wait for a synchronous id's event runs outside ISN_CTL: a
 * checkpoint may run meanwhile (the peer may be in one). */
ISN_EXPORT int rdma_connect(struct rdma_cm_id *id,
			    struct rdma_conn_param *conn_param)
{
	int ret = cm_connect(id, conn_param);

	return ret == CM_WAIT ? isn_cm_complete(isn_cm_id_of(id)) : ret;
}

static int cm_accept(struct rdma_cm_id *id, struct rdma_conn_param *conn_param)
{
	struct isn_cm_id *cid = isn_cm_id_of(id);
	bool ud = id->qp_type == IBV_QPT_UD;
	struct isn_cm_msg m;
	uint8_t v;
	int ret;
	ISN_CTL();

	if (cid->state != CM_REQ_RCVD || !cid->dev)
		return fail(EINVAL);
	ret = check_param(cid, conn_param);
	if (ret)
		return fail(ret);
	if (!conn_param || conn_param->initiator_depth == RDMA_MAX_INIT_DEPTH) {
		v = cid->dev->max_init_depth;
		cid->local.init_depth =
			cid->local.init_depth < v ? cid->local.init_depth : v;
	} else {
		cid->local.init_depth = conn_param->initiator_depth;
	}
	if (!conn_param ||
	    conn_param->responder_resources == RDMA_MAX_RESP_RES) {
		v = cid->dev->max_resp_res;
		cid->local.resp_res =
			cid->local.resp_res < v ? cid->local.resp_res : v;
	} else {
		cid->local.resp_res = conn_param->responder_resources;
	}
	ret = local_half(cid, conn_param, &m,
			 ud ? ISN_CM_SIDR_REP_PDATA : ISN_CM_REP_PDATA);
	if (ret)
		return fail(ret);
	m.info = cid->local;
	if (!ud) {
		ret = isn_cm_qp_rtr_rts(cid);
		if (ret)
			return fail(ret);
	}
	m.type = ud ? CM_MSG_SIDR_REP : CM_MSG_REP;
	pthread_mutex_lock(&isn_cm_lock);
	cid->state = ud ? CM_ESTABLISHED : CM_REP_SENT;
	pthread_mutex_unlock(&isn_cm_lock);
	ret = isn_cm_send_peer(cid, &m);
	if (ret) {
		isn_cm_qp_err(cid);
		return fail(ret);
	}
	if (ud) {
		if (cid->sync && id->event) {
			rdma_ack_cm_event(id->event);
			id->event = NULL;
		}
		return 0;
	}
	return CM_WAIT;
}

ISN_EXPORT int rdma_accept(struct rdma_cm_id *id,
			   struct rdma_conn_param *conn_param)
{
	int ret = cm_accept(id, conn_param);

	return ret == CM_WAIT ? isn_cm_complete(isn_cm_id_of(id)) : ret;
}

static int reject(struct rdma_cm_id *id, const void *pdata, uint8_t len,
		  uint8_t reason)
{
	struct isn_cm_id *cid = isn_cm_id_of(id);
	bool ud = id->qp_type == IBV_QPT_UD;
	int ret;
	ISN_CTL();

	if (cid->state != CM_REQ_RCVD && cid->state != CM_REP_RCVD)
		return fail(EINVAL);
	if (len > (ud ? ISN_CM_SIDR_REP_PDATA : ISN_CM_REJ_PDATA))
		return fail(EINVAL);
	pthread_mutex_lock(&isn_cm_lock);
	cid->state = CM_DEAD;
	pthread_mutex_unlock(&isn_cm_lock);
	ret = send_simple(cid, ud ? CM_MSG_SIDR_REP : CM_MSG_REJ,
			  reason ? reason : ISN_CM_REJ_CONSUMER, pdata, len);
	return ret ? fail(ret) : 0;
}

ISN_EXPORT int rdma_reject(struct rdma_cm_id *id, const void *private_data,
			   uint8_t private_data_len)
{
	return reject(id, private_data, private_data_len, 0);
}

ISN_EXPORT int rdma_reject_ece(struct rdma_cm_id *id, const void *private_data,
			       uint8_t private_data_len)
{
	/* IBTA's CM_REJ_VENDOR_OPTION_NOT_SUPPORTED */
	return reject(id, private_data, private_data_len, 35);
}

ISN_EXPORT int rdma_establish(struct rdma_cm_id *id)
{
	struct isn_cm_id *cid = isn_cm_id_of(id);
	int ret;
	ISN_CTL();

	if (id->qp || cid->state != CM_REP_RCVD)
		return fail(EINVAL);
	ret = send_simple(cid, CM_MSG_RTU, 0, NULL, 0);
	if (ret)
		return fail(ret);
	pthread_mutex_lock(&isn_cm_lock);
	cid->state = CM_ESTABLISHED;
	pthread_mutex_unlock(&isn_cm_lock);
	return 0;
}

/* Send a DREQ for a connected @cid (no lock held); false if not connected. */
bool isn_cm_send_dreq(struct isn_cm_id *cid, bool want_event)
{
	bool go;
	int ret;

	pthread_mutex_lock(&isn_cm_lock);
	go = cid->state == CM_ESTABLISHED || cid->state == CM_REP_SENT ||
	     cid->state == CM_REP_RCVD;
	if (go) {
		cid->state = CM_DREQ_SENT;
		isn_cm_deadline(cid, want_event ? CM_DREQ_TIMEOUT_MS : 0);
	}
	pthread_mutex_unlock(&isn_cm_lock);
	if (!go)
		return false;
	ret = send_simple(cid, CM_MSG_DREQ, 0, NULL, 0);
	if (ret && want_event) {
		pthread_mutex_lock(&isn_cm_lock);
		if (cid->state == CM_DREQ_SENT) {
			cid->state = CM_DISCONNECTED;
			isn_cm_deadline(cid, 0);
			isn_cm_queue(cid, RDMA_CM_EVENT_DISCONNECTED, 0, NULL,
				     0);
		}
		pthread_mutex_unlock(&isn_cm_lock);
	}
	return true;
}

static int cm_disconnect(struct rdma_cm_id *id)
{
	struct isn_cm_id *cid = isn_cm_id_of(id);
	int ret;
	ISN_CTL();

	if (!id->verbs || !id->verbs->device)
		return fail(EINVAL);
	ret = isn_cm_qp_err(cid);
	if (ret)
		return fail(ret);
	if (!isn_cm_send_dreq(cid, true)) {
		/* the peer disconnected first: nothing more to send */
		if (cid->state == CM_DISCONNECTED || cid->state == CM_DREQ_SENT)
			return CM_WAIT;
		return fail(EINVAL);
	}
	return CM_WAIT;
}

ISN_EXPORT int rdma_disconnect(struct rdma_cm_id *id)
{
	int ret = cm_disconnect(id);

	return ret == CM_WAIT ? isn_cm_complete(isn_cm_id_of(id)) : ret;
}

/*
 * At exit the kernel's CM tells the peers of a process's ids (its fd is
 * closed): a DREQ for a connection, a REJ for a request never answered.
 * So does the shim when the process exits through exit() (not a signal).
 */
__attribute__((destructor)) static void cm_fini(void)
{
	struct isn_list *p;

	if (pthread_mutex_trylock(&isn_cm_lock))
		return; /* a thread is inside the CM: leave it */
	for (p = isn_cm_ids.next; p && p != &isn_cm_ids; p = p->next) {
		struct isn_cm_id *cid =
			isn_container_of(p, struct isn_cm_id, entry);

		if (cid->destroying)
			continue;
		if (cid->state == CM_ESTABLISHED || cid->state == CM_REP_SENT ||
		    cid->state == CM_REP_RCVD)
			send_simple(cid, CM_MSG_DREQ, 0, NULL, 0);
		else if (cid->state == CM_REQ_RCVD)
			send_simple(cid, CM_MSG_REJ, ISN_CM_REJ_CONSUMER, NULL,
				    0);
		else
			continue;
		cid->state = CM_DISCONNECTED;
	}
	pthread_mutex_unlock(&isn_cm_lock);
}
