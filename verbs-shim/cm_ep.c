// SPDX-License-Identifier: MIT
/*
 * The rest of librdmacm's API: endpoints (rdma_create_ep, rdma_get_request,
 * synchronous ids), options, ports, ECE, and what the shim does not do:
 * multicast and rsockets, which fail with EOPNOTSUPP and say so
 * (docs/rdma_cm.md).  librdmacm's rsockets call its private functions on
 * its own ids, so they cannot run over the shim's ids.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <rdma/rsocket.h>

#include "cm.h"

static int fail(int err)
{
	errno = err;
	return -1;
}

ISN_EXPORT void rdma_destroy_ep(struct rdma_cm_id *id)
{
	if (id->qp)
		rdma_destroy_qp(id);
	if (id->srq)
		rdma_destroy_srq(id);
	rdma_destroy_id(id);
}

ISN_EXPORT int rdma_create_ep(struct rdma_cm_id **id, struct rdma_addrinfo *res,
			      struct ibv_pd *pd,
			      struct ibv_qp_init_attr *qp_init_attr)
{
	struct rdma_cm_id *cm_id;
	struct isn_cm_id *cid;
	int ret;

	ret = rdma_create_id(NULL, &cm_id, NULL, res->ai_port_space);
	if (ret)
		return ret;
	cid = isn_cm_id_of(cm_id);
	cm_id->qp_type = res->ai_qp_type;
	if (res->ai_flags & RAI_PASSIVE) {
		ret = rdma_bind_addr(cm_id, res->ai_src_addr);
		if (ret)
			goto err;
		if (pd)
			cm_id->pd = pd;
		if (qp_init_attr) {
			cid->qp_init_attr = malloc(sizeof(*qp_init_attr));
			if (!cid->qp_init_attr) {
				ret = fail(ENOMEM);
				goto err;
			}
			*cid->qp_init_attr = *qp_init_attr;
			cid->qp_init_attr->qp_type = res->ai_qp_type;
		}
		*id = cm_id;
		return 0;
	}
	ret = rdma_resolve_addr(cm_id, res->ai_src_addr, res->ai_dst_addr,
				2000);
	if (!ret)
		ret = rdma_resolve_route(cm_id, 2000);
	if (!ret && qp_init_attr) {
		qp_init_attr->qp_type = res->ai_qp_type;
		ret = rdma_create_qp(cm_id, pd, qp_init_attr);
	}
	if (ret)
		goto err;
	if (res->ai_connect_len) {
		if (res->ai_connect_len > ISN_CM_PDATA_MAX) {
			ret = fail(EINVAL);
			goto err;
		}
		cid->connect_data = malloc(res->ai_connect_len);
		if (!cid->connect_data) {
			ret = fail(ENOMEM);
			goto err;
		}
		memcpy(cid->connect_data, res->ai_connect, res->ai_connect_len);
		cid->connect_len = (uint8_t)res->ai_connect_len;
	}
	*id = cm_id;
	return 0;
err:
	rdma_destroy_ep(cm_id);
	return ret;
}

ISN_EXPORT int rdma_get_request(struct rdma_cm_id *listen,
				struct rdma_cm_id **id)
{
	struct isn_cm_id *lis = isn_cm_id_of(listen);
	struct rdma_cm_event *event;
	int ret;

	if (!lis->sync)
		return fail(EINVAL);
	if (listen->event) {
		rdma_ack_cm_event(listen->event);
		listen->event = NULL;
	}
	ret = rdma_get_cm_event(listen->channel, &event);
	if (ret)
		return ret;
	if (event->event == RDMA_CM_EVENT_REJECTED) {
		ret = fail(ECONNREFUSED);
		goto err;
	}
	if (event->status) {
		ret = fail(-event->status);
		goto err;
	}
	if (event->event != RDMA_CM_EVENT_CONNECT_REQUEST) {
		ret = fail(EINVAL);
		goto err;
	}
	if (lis->qp_init_attr) {
		struct ibv_qp_init_attr attr = *lis->qp_init_attr;

		ret = rdma_create_qp(event->id, listen->pd, &attr);
		if (ret)
			goto err;
	}
	*id = event->id;
	(*id)->event = event;
	return 0;
err:
	listen->event = event;
	return ret;
}

ISN_EXPORT int rdma_set_option(struct rdma_cm_id *id, int level, int optname,
			       void *optval, size_t optlen)
{
	/* TOS, REUSEADDR, AFONLY, ACK_TIMEOUT, IB_PATH: nothing to tune on
	 * the shim's wire; accepted as the kernel accepts them */
	(void)id;
	(void)optval;
	(void)optlen;
	if (level != RDMA_OPTION_ID && level != RDMA_OPTION_IB)
		return fail(ENOSYS);
	(void)optname;
	return 0;
}

ISN_EXPORT int rdma_notify(struct rdma_cm_id *id, enum ibv_event_type event)
{
	(void)id;
	(void)event;
	return 0;
}

ISN_EXPORT __be16 rdma_get_src_port(struct rdma_cm_id *id)
{
	return htons(isn_cm_port(&id->route.addr.src_addr));
}

ISN_EXPORT __be16 rdma_get_dst_port(struct rdma_cm_id *id)
{
	return htons(isn_cm_port(&id->route.addr.dst_addr));
}

ISN_EXPORT int rdma_set_local_ece(struct rdma_cm_id *id, struct ibv_ece *ece)
{
	(void)id;
	if (!ece)
		return fail(EINVAL);
	return 0;
}

ISN_EXPORT int rdma_get_remote_ece(struct rdma_cm_id *id, struct ibv_ece *ece)
{
	(void)id;
	if (!ece)
		return fail(EINVAL);
	memset(ece, 0, sizeof(*ece)); /* no ECE: vendor 0 */
	return 0;
}

static int unsupported(const char *what)
{
	isn_log("%s: not supported under ibsnap (docs/rdma_cm.md)", what);
	return fail(EOPNOTSUPP);
}

ISN_EXPORT int rdma_join_multicast(struct rdma_cm_id *id, struct sockaddr *addr,
				   void *context)
{
	(void)id;
	(void)addr;
	(void)context;
	return unsupported("rdma_join_multicast");
}

ISN_EXPORT int rdma_join_multicast_ex(struct rdma_cm_id *id,
				      struct rdma_cm_join_mc_attr_ex *attr,
				      void *context)
{
	(void)id;
	(void)attr;
	(void)context;
	return unsupported("rdma_join_multicast_ex");
}

ISN_EXPORT int rdma_leave_multicast(struct rdma_cm_id *id,
				    struct sockaddr *addr)
{
	(void)id;
	(void)addr;
	return fail(EADDRNOTAVAIL);
}

ISN_EXPORT int rsocket(int domain, int type, int protocol)
{
	(void)domain;
	(void)type;
	(void)protocol;
	return unsupported("rsocket (rsockets)");
}
