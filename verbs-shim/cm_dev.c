// SPDX-License-Identifier: MIT
/*
 * rdma_cm devices and addresses: which virtual device owns an IP address
 * (the real backend: the IPv4-mapped GIDs of its port, as rxe0 has
 * ::ffff:192.168.77.1; the fake backend: IBSNAP_FAKE_ADDR, a comma list
 * giving fake0, fake1, ... an address each, default 127.0.0.1 for fake0),
 * rdma_get_devices, rdma_getaddrinfo.  A device's context and default PD
 * are opened once and kept, as librdmacm keeps them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "cm.h"

static struct isn_cm_dev cm_devs[ISN_MAX_DEVICES];
static int cm_ndevs = -1;
static pthread_mutex_t cm_dev_lock = PTHREAD_MUTEX_INITIALIZER;

socklen_t isn_cm_addrlen(const struct sockaddr *addr)
{
	if (!addr)
		return 0;
	if (addr->sa_family == AF_INET)
		return sizeof(struct sockaddr_in);
	if (addr->sa_family == AF_INET6)
		return sizeof(struct sockaddr_in6);
	return 0;
}

uint16_t isn_cm_port(const struct sockaddr *addr)
{
	if (addr->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)addr)->sin_port);
	if (addr->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)addr)->sin6_port);
	return 0;
}

void isn_cm_set_port(struct sockaddr *addr, uint16_t port)
{
	if (addr->sa_family == AF_INET)
		((struct sockaddr_in *)addr)->sin_port = htons(port);
	else if (addr->sa_family == AF_INET6)
		((struct sockaddr_in6 *)addr)->sin6_port = htons(port);
}

bool isn_cm_addr_any(const struct sockaddr *addr)
{
	if (addr->sa_family == AF_INET)
		return ((const struct sockaddr_in *)addr)->sin_addr.s_addr ==
		       htonl(INADDR_ANY);
	if (addr->sa_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(
			&((const struct sockaddr_in6 *)addr)->sin6_addr);
	return false;
}

bool isn_cm_addr_loopback(const struct sockaddr *addr)
{
	if (addr->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)addr)
				      ->sin_addr.s_addr) >>
			24) == 127;
	if (addr->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(
			&((const struct sockaddr_in6 *)addr)->sin6_addr);
	return false;
}

/* The IPv4 address of @addr (a v4-mapped IPv6 one too), or 0. */
static uint32_t addr_v4(const struct sockaddr *addr)
{
	const struct sockaddr_in6 *s6 = (const void *)addr;

	if (addr->sa_family == AF_INET)
		return ((const struct sockaddr_in *)addr)->sin_addr.s_addr;
	if (addr->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return s6->sin6_addr.s6_addr32[3];
	return 0;
}

/* The fake backend's address of device @i (IBSNAP_FAKE_ADDR). */
static bool fake_addr(int i, struct sockaddr_in *sin)
{
	const char *list = getenv("IBSNAP_FAKE_ADDR");
	char buf[64];
	const char *p;
	size_t n;

	if (!list || !*list)
		list = "127.0.0.1";
	for (p = list; i > 0 && p; i--) {
		p = strchr(p, ',');
		if (p)
			p++;
	}
	if (!p)
		return false;
	n = strcspn(p, ",");
	if (n >= sizeof(buf))
		return false;
	memcpy(buf, p, n);
	buf[n] = 0;
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	return inet_pton(AF_INET, buf, &sin->sin_addr) == 1;
}

static int dev_setup(struct isn_cm_dev *d, struct ibv_device *dev, int i)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&d->addr;
	struct ibv_device_attr attr;
	struct ibv_port_attr pattr;
	union ibv_gid gid;
	int g, mapped = -1;

	d->verbs = ibv_open_device(dev);
	if (!d->verbs)
		return errno;
	if (ibv_query_device(d->verbs, &attr) ||
	    ibv_query_port(d->verbs, 1, &pattr)) {
		ibv_close_device(d->verbs);
		d->verbs = NULL;
		return ENODEV;
	}
	d->max_init_depth = (uint8_t)attr.max_qp_init_rd_atom;
	d->max_resp_res = (uint8_t)attr.max_qp_rd_atom;
	d->max_qp_wr = (uint32_t)attr.max_qp_wr;
	d->link_layer = pattr.link_layer;
	d->gid_index = 0;
	memset(&d->addr, 0, sizeof(d->addr));
	/* the first IPv4-mapped GID is the port's address (RoCE v2) */
	for (g = 0; g < pattr.gid_tbl_len && g < 16; g++) {
		if (ibv_query_gid(d->verbs, 1, g, &gid))
			break;
		if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)gid.raw)) {
			mapped = g;
			break;
		}
	}
	if (mapped >= 0 && d->link_layer == IBV_LINK_LAYER_ETHERNET) {
		d->gid_index = mapped;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, gid.raw + 12, 4);
	}
	if (!strcmp(isn_g.ops.name, "fake") && !fake_addr(i, sin))
		memset(&d->addr, 0, sizeof(d->addr));
	return 0;
}

int isn_cm_init(void)
{
	struct ibv_device **list;
	int n, i, ret = 0;

	pthread_mutex_lock(&cm_dev_lock);
	if (cm_ndevs >= 0)
		goto out;
	list = ibv_get_device_list(&n);
	if (!list) {
		ret = errno ? errno : ENODEV;
		goto out;
	}
	for (i = 0; i < n && i < ISN_MAX_DEVICES; i++)
		if (dev_setup(&cm_devs[i], list[i], i))
			isn_log("rdma_cm: device %s not usable",
				ibv_get_device_name(list[i]));
	cm_ndevs = i;
	ibv_free_device_list(list);
	if (!cm_ndevs)
		ret = ENODEV;
out:
	pthread_mutex_unlock(&cm_dev_lock);
	return ret;
}

struct isn_cm_dev *isn_cm_dev_for(const struct sockaddr *addr, bool bind)
{
	struct isn_cm_dev *d, *first = NULL;
	uint32_t v4 = addr ? addr_v4(addr) : 0;
	int i, ret;

	ret = isn_cm_init();
	if (ret) {
		errno = ret;
		return NULL;
	}
	for (i = 0; i < cm_ndevs; i++) {
		d = &cm_devs[i];
		if (!d->verbs)
			continue;
		if (!first)
			first = d;
		if (v4 && d->addr.ss_family == AF_INET &&
		    ((struct sockaddr_in *)&d->addr)->sin_addr.s_addr == v4)
			goto found;
	}
	d = first;
	/* a bind needs an address of ours; a destination on the fake
	 * fabric (one subnet) is reached through the first device */
	if (addr && !isn_cm_addr_any(addr) && !isn_cm_addr_loopback(addr) &&
	    (bind || strcmp(isn_g.ops.name, "fake")))
		d = NULL;
	if (!d) {
		errno = EADDRNOTAVAIL;
		return NULL;
	}
found:
	pthread_mutex_lock(&cm_dev_lock);
	if (!d->pd)
		d->pd = ibv_alloc_pd(d->verbs);
	pthread_mutex_unlock(&cm_dev_lock);
	if (!d->pd)
		return NULL;
	return d;
}

int isn_cm_local_info(struct isn_cm_id *cid)
{
	struct isn_cm_dev *d = cid->dev;
	struct ibv_port_attr pattr;

	if (ibv_query_port(d->verbs, 1, &pattr) ||
	    ibv_query_gid(d->verbs, 1, d->gid_index, &cid->local.gid))
		return EIO;
	cid->local.lid = pattr.lid;
	cid->local.mtu = pattr.active_mtu;
	cid->local.link_layer = pattr.link_layer;
	return 0;
}

ISN_EXPORT struct ibv_context **rdma_get_devices(int *num_devices)
{
	struct ibv_context **devs;
	int i, n = 0;

	if (isn_cm_init()) {
		if (num_devices)
			*num_devices = 0;
		return NULL;
	}
	devs = calloc((size_t)cm_ndevs + 1, sizeof(*devs));
	if (devs)
		for (i = 0; i < cm_ndevs; i++)
			if (cm_devs[i].verbs)
				devs[n++] = cm_devs[i].verbs;
	if (num_devices)
		*num_devices = devs ? n : 0;
	return devs;
}

ISN_EXPORT void rdma_free_devices(struct ibv_context **list)
{
	free(list);
}

/* ---- rdma_getaddrinfo (addrinfo.c's, without ib_acm) ---- */

static int copy_addr(struct sockaddr **dst, socklen_t *len,
		     const struct sockaddr *src, socklen_t srclen)
{
	*dst = malloc(srclen);
	if (!*dst)
		return ENOMEM;
	memcpy(*dst, src, srclen);
	*len = srclen;
	return 0;
}

static int rai_from_ai(struct rdma_addrinfo *rai,
		       const struct rdma_addrinfo *hints,
		       const struct addrinfo *ai)
{
	rai->ai_qp_type = hints->ai_qp_type		? hints->ai_qp_type :
			  ai->ai_socktype == SOCK_DGRAM ? IBV_QPT_UD :
							  IBV_QPT_RC;
	rai->ai_port_space = hints->ai_port_space ? hints->ai_port_space :
			     ai->ai_protocol == IPPROTO_UDP ? RDMA_PS_UDP :
							      RDMA_PS_TCP;
	rai->ai_family = ai->ai_family;
	if (ai->ai_flags & AI_PASSIVE) {
		rai->ai_flags = RAI_PASSIVE;
		if (ai->ai_canonname)
			rai->ai_src_canonname = strdup(ai->ai_canonname);
		return copy_addr(&rai->ai_src_addr, &rai->ai_src_len,
				 ai->ai_addr, ai->ai_addrlen);
	}
	if (ai->ai_canonname)
		rai->ai_dst_canonname = strdup(ai->ai_canonname);
	return copy_addr(&rai->ai_dst_addr, &rai->ai_dst_len, ai->ai_addr,
			 ai->ai_addrlen);
}

static int rai_lookup(const char *node, const char *service,
		      const struct rdma_addrinfo *hints,
		      struct rdma_addrinfo *rai)
{
	struct addrinfo h = { 0 }, *ai;
	int ret;

	if (hints->ai_flags & RAI_PASSIVE)
		h.ai_flags = AI_PASSIVE;
	if (hints->ai_flags & RAI_NUMERICHOST)
		h.ai_flags |= AI_NUMERICHOST;
	if (hints->ai_family != AF_IB)
		h.ai_family = hints->ai_family;
	if (hints->ai_qp_type == IBV_QPT_UD)
		h.ai_socktype = SOCK_DGRAM;
	else if (hints->ai_qp_type)
		h.ai_socktype = SOCK_STREAM;
	if (hints->ai_port_space == RDMA_PS_TCP)
		h.ai_protocol = IPPROTO_TCP;
	else if (hints->ai_port_space == RDMA_PS_UDP ||
		 hints->ai_port_space == RDMA_PS_IPOIB)
		h.ai_protocol = IPPROTO_UDP;
	if (hints->ai_flags & RAI_PASSIVE) {
		h.ai_addr = hints->ai_src_addr;
		h.ai_addrlen = hints->ai_src_len;
	}
	ret = getaddrinfo(node, service, &h, &ai);
	if (ret)
		return ret; /* an EAI_ value, as librdmacm returns it */
	ret = rai_from_ai(rai, hints, ai);
	freeaddrinfo(ai);
	return ret ? -1 : 0;
}

ISN_EXPORT void rdma_freeaddrinfo(struct rdma_addrinfo *res)
{
	struct rdma_addrinfo *rai;

	while (res) {
		rai = res;
		res = res->ai_next;
		free(rai->ai_connect);
		free(rai->ai_route);
		free(rai->ai_src_canonname);
		free(rai->ai_dst_canonname);
		free(rai->ai_src_addr);
		free(rai->ai_dst_addr);
		free(rai);
	}
}

ISN_EXPORT int rdma_getaddrinfo(const char *node, const char *service,
				const struct rdma_addrinfo *hints,
				struct rdma_addrinfo **res)
{
	static const struct rdma_addrinfo nohints;
	struct rdma_addrinfo *rai;
	int ret = 0;

	if (!service && !node && !hints) {
		errno = EINVAL;
		return -1;
	}
	if (hints && (hints->ai_flags & 0x10 /* RAI_SA */)) {
		errno = EOPNOTSUPP;
		return -1;
	}
	rai = calloc(1, sizeof(*rai));
	if (!rai) {
		errno = ENOMEM;
		return -1;
	}
	if (!hints)
		hints = &nohints;
	if (node || service) {
		ret = rai_lookup(node, service, hints, rai);
	} else {
		rai->ai_flags = hints->ai_flags;
		rai->ai_family = hints->ai_family;
		rai->ai_qp_type = hints->ai_qp_type;
		rai->ai_port_space = hints->ai_port_space;
		if (hints->ai_dst_len &&
		    copy_addr(&rai->ai_dst_addr, &rai->ai_dst_len,
			      hints->ai_dst_addr, hints->ai_dst_len))
			ret = -1;
	}
	if (!ret && !rai->ai_src_len && hints->ai_src_len &&
	    copy_addr(&rai->ai_src_addr, &rai->ai_src_len, hints->ai_src_addr,
		      hints->ai_src_len))
		ret = -1;
	if (ret) {
		rdma_freeaddrinfo(rai);
		return ret;
	}
	*res = rai;
	return 0;
}
