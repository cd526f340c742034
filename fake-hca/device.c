/* SPDX-License-Identifier: MIT */
/*
 * Devices and contexts of the fake HCA.
 *
 * get_device_list hands out fake0..fake{N-1} (IBSNAP_FAKE_DEVICES, default
 * 1), each with the link layer (IBSNAP_FAKE_LINK=eth|ib) and active MTU
 * (IBSNAP_FAKE_MTU) read at that moment.  A device lives while the list or a
 * context refers to it, as a verbs_device does.
 *
 * A context is one port on the fabric (node IBSNAP_FAKE_NODE), an async
 * event pipe, the QPN and key tables and a progress thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "fake.h"

#define FK_TAB_INIT 64

void fk_log(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	fputs("fakehca: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	errno = saved;
}

void fk_dbg(const char *fmt, ...)
{
	static atomic_int on = -1;
	int saved = errno;
	va_list ap;

	if (atomic_load_explicit(&on, memory_order_relaxed) < 0)
		atomic_store_explicit(&on, getenv("IBSNAP_FAKE_DEBUG") != NULL,
				      memory_order_relaxed);
	if (!atomic_load_explicit(&on, memory_order_relaxed))
		return;
	fputs("fakehca: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	errno = saved;
}

static long env_long(const char *name, long def, long min, long max)
{
	const char *s = getenv(name);
	char *end;
	long v;

	if (!s || !*s)
		return def;
	v = strtol(s, &end, 0);
	if (*end || v < min || v > max) {
		fk_log("%s=%s is not in %ld..%ld, using %ld", name, s, min, max,
		       def);
		return def;
	}
	return v;
}

static uint8_t env_link_layer(void)
{
	const char *s = getenv("IBSNAP_FAKE_LINK");

	if (!s || !*s || !strcasecmp(s, "eth") || !strcasecmp(s, "roce"))
		return IBV_LINK_LAYER_ETHERNET;
	if (!strcasecmp(s, "ib"))
		return IBV_LINK_LAYER_INFINIBAND;
	fk_log("IBSNAP_FAKE_LINK=%s: want eth or ib, using eth", s);
	return IBV_LINK_LAYER_ETHERNET;
}

static enum ibv_mtu env_mtu(void)
{
	switch (env_long("IBSNAP_FAKE_MTU", 4096, 256, 4096)) {
	case 256:
		return IBV_MTU_256;
	case 512:
		return IBV_MTU_512;
	case 1024:
		return IBV_MTU_1024;
	case 2048:
		return IBV_MTU_2048;
	case 4096:
		return IBV_MTU_4096;
	default:
		fk_log("IBSNAP_FAKE_MTU: want 256, 512, 1024, 2048 or 4096");
		return IBV_MTU_4096;
	}
}

static struct fk_device *device_new(int index, uint8_t link_layer,
				    enum ibv_mtu mtu)
{
	struct fk_device *dev = calloc(1, sizeof(*dev));
	struct ibv_device *d;

	if (!dev)
		return NULL;
	d = &dev->ibdev;
	d->node_type = IBV_NODE_CA;
	d->transport_type = IBV_TRANSPORT_IB;
	snprintf(d->name, sizeof(d->name), "fake%d", index);
	snprintf(d->dev_name, sizeof(d->dev_name), "uverbs%d", index);
	snprintf(d->dev_path, sizeof(d->dev_path),
		 "/sys/class/infiniband_verbs/uverbs%d", index);
	snprintf(d->ibdev_path, sizeof(d->ibdev_path),
		 "/sys/class/infiniband/fake%d", index);
	dev->index = index;
	dev->link_layer = link_layer;
	dev->active_mtu = mtu;
	atomic_init(&dev->refcnt, 1);
	return dev;
}

static void device_put(struct fk_device *dev)
{
	if (atomic_fetch_sub(&dev->refcnt, 1) == 1)
		free(dev);
}

struct ibv_device **fk_get_device_list(int *num_devices)
{
	int n = (int)env_long("IBSNAP_FAKE_DEVICES", 1, 0, FK_MAX_DEVICES);
	uint8_t ll = env_link_layer();
	enum ibv_mtu mtu = env_mtu();
	struct ibv_device **list = calloc(n + 1, sizeof(*list));
	int i;

	if (num_devices)
		*num_devices = 0;
	if (!list) {
		errno = ENOMEM;
		return NULL;
	}
	for (i = 0; i < n; i++) {
		struct fk_device *dev = device_new(i, ll, mtu);

		if (!dev) {
			fk_free_device_list(list);
			errno = ENOMEM;
			return NULL;
		}
		list[i] = &dev->ibdev;
	}
	if (num_devices)
		*num_devices = n;
	return list;
}

void fk_free_device_list(struct ibv_device **list)
{
	int i;

	if (!list)
		return;
	for (i = 0; list[i]; i++)
		device_put(to_fdev(list[i]));
	free(list);
}

/* The GUID is the node's: attach to the fabric for a moment to learn it. */
__be64 fk_get_device_guid(struct ibv_device *device)
{
	struct fab_port *port;
	__be64 guid;
	int ret;

	(void)device;
	ret = fab_port_open(NULL, &port);
	if (ret) {
		errno = -ret;
		return 0;
	}
	guid = fab_port_node(port)->node_guid;
	fab_port_close(port);
	return guid;
}

static int open_tables(struct fk_context *ctx)
{
	ctx->qp_tab = calloc(FK_TAB_INIT, sizeof(*ctx->qp_tab));
	ctx->mr_tab = calloc(FK_TAB_INIT, sizeof(*ctx->mr_tab));
	if (!ctx->qp_tab || !ctx->mr_tab)
		return ENOMEM;
	ctx->qp_tab_size = FK_TAB_INIT;
	ctx->mr_tab_size = FK_TAB_INIT;
	return 0;
}

static int open_async_pipe(struct fk_context *ctx)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC))
		return errno;
	/* the write end must never block: writers hold ctx->lock */
	if (fcntl(fds[1], F_SETFL, O_NONBLOCK)) {
		int err = errno;

		close(fds[0]);
		close(fds[1]);
		return err;
	}
	ctx->ibctx.async_fd = fds[0];
	ctx->async_wfd = fds[1];
	return 0;
}

static void context_init(struct fk_context *ctx, struct fk_device *dev)
{
	struct ibv_context *c = &ctx->ibctx;

	ctx->dev = dev;
	c->device = &dev->ibdev;
	c->cmd_fd = -1;
	c->async_fd = -1;
	ctx->async_wfd = -1;
	c->num_comp_vectors = get_nprocs_conf() > 0 ? get_nprocs_conf() : 1;
	pthread_mutex_init(&c->mutex, NULL);
	pthread_mutex_init(&ctx->lock, NULL);
	c->ops.poll_cq = fk_poll_cq;
	c->ops.req_notify_cq = fk_req_notify_cq;
	c->ops.post_send = fk_post_send;
	c->ops.post_recv = fk_post_recv;
	c->ops.post_srq_recv = fk_post_srq_recv;
	fk_list_init(&ctx->pds);
	fk_list_init(&ctx->mrs);
	fk_list_init(&ctx->cqs);
	fk_list_init(&ctx->srqs);
	fk_list_init(&ctx->qps);
	fk_list_init(&ctx->ahs);
	fk_list_init(&ctx->channels);
}

static void context_free(struct fk_context *ctx)
{
	if (ctx->ibctx.async_fd >= 0)
		close(ctx->ibctx.async_fd);
	if (ctx->async_wfd >= 0)
		close(ctx->async_wfd);
	if (ctx->port)
		fab_port_close(ctx->port);
	free(ctx->qp_tab);
	free(ctx->mr_tab);
	pthread_mutex_destroy(&ctx->lock);
	pthread_mutex_destroy(&ctx->ibctx.mutex);
	device_put(ctx->dev);
	free(ctx);
}

struct ibv_context *fk_open_device(struct ibv_device *device)
{
	struct fk_device *dev = to_fdev(device);
	struct fk_context *ctx = calloc(1, sizeof(*ctx));
	int err;

	if (!ctx) {
		errno = ENOMEM;
		return NULL;
	}
	atomic_fetch_add(&dev->refcnt, 1);
	context_init(ctx, dev);
	err = open_tables(ctx);
	if (!err)
		err = open_async_pipe(ctx);
	if (!err)
		err = -fab_port_open(NULL, &ctx->port);
	if (!err) {
		ctx->node = fab_port_node(ctx->port);
		err = -fk_progress_start(ctx);
	}
	if (err) {
		fk_log("open %s: %s", device->name, strerror(err));
		context_free(ctx);
		errno = err;
		return NULL;
	}
	return &ctx->ibctx;
}

/* Free what the application left; the progress thread is stopped. */
static void free_leftovers(struct fk_context *ctx)
{
	struct fk_list *l;

	while ((l = ctx->qps.next) != &ctx->qps)
		fk_qp_free(container_of(l, struct fk_qp, entry));
	while ((l = ctx->ahs.next) != &ctx->ahs) {
		fk_list_del(l);
		free(container_of(l, struct fk_ah, entry));
	}
	while ((l = ctx->srqs.next) != &ctx->srqs)
		fk_srq_free(container_of(l, struct fk_srq, entry));
	while ((l = ctx->cqs.next) != &ctx->cqs)
		fk_cq_free(container_of(l, struct fk_cq, entry));
	while ((l = ctx->channels.next) != &ctx->channels)
		fk_ch_free(container_of(l, struct fk_comp_channel, entry));
	while ((l = ctx->mrs.next) != &ctx->mrs) {
		fk_list_del(l);
		free(container_of(l, struct fk_mr, entry));
	}
	while ((l = ctx->pds.next) != &ctx->pds) {
		fk_list_del(l);
		free(container_of(l, struct fk_pd, entry));
	}
}

int fk_close_device(struct ibv_context *context)
{
	struct fk_context *ctx = to_fctx(context);

	fk_progress_stop(ctx);
	free_leftovers(ctx);
	context_free(ctx);
	return 0;
}
