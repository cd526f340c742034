/* SPDX-License-Identifier: MIT */
/*
 * Virtual devices and device lists.  A virtual device is a slot of
 * isn_devices[] (its address is how every virtual object is recognised), one
 * per backend device name, kept for the life of the process like rdma-core
 * keeps its verbs_device.  A list handed to the application owns the
 * backend's list until ibv_free_device_list.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shim.h"

struct isn_device isn_devices[ISN_MAX_DEVICES];

struct dev_list {
	struct dev_list *next;
	struct ibv_device **list; /* what the application holds */
	struct ibv_device **real;
};

static pthread_mutex_t dev_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dev_list *dev_lists;
static unsigned int dev_count;

/* The virtual device for backend device @real (lock held). */
static struct isn_device *dev_get(struct ibv_device *real)
{
	struct isn_device *d;
	unsigned int i;

	for (i = 0; i < dev_count; i++) {
		d = &isn_devices[i];
		if (!strcmp(d->ibdev.name, real->name)) {
			d->real = real;
			return d;
		}
	}
	if (dev_count == ISN_MAX_DEVICES)
		return NULL;
	d = &isn_devices[dev_count++];
	d->ibdev.node_type = real->node_type;
	d->ibdev.transport_type = real->transport_type;
	memcpy(d->ibdev.name, real->name, sizeof(d->ibdev.name));
	memcpy(d->ibdev.dev_name, real->dev_name, sizeof(d->ibdev.dev_name));
	memcpy(d->ibdev.dev_path, real->dev_path, sizeof(d->ibdev.dev_path));
	memcpy(d->ibdev.ibdev_path, real->ibdev_path,
	       sizeof(d->ibdev.ibdev_path));
	d->real = real;
	return d;
}

ISN_EXPORT struct ibv_device **ibv_get_device_list(int *num_devices)
{
	struct ibv_device **real, **list;
	struct dev_list *dl;
	int n = 0, i, k = 0, ret;

	if (num_devices)
		*num_devices = 0;
	ret = isn_init();
	if (ret) {
		errno = ret;
		return NULL;
	}
	real = isn_g.ops.get_device_list(&n);
	if (!real)
		return NULL;
	list = calloc(n + 1, sizeof(*list));
	dl = malloc(sizeof(*dl));
	if (!list || !dl) {
		free(list);
		free(dl);
		isn_g.ops.free_device_list(real);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_lock(&dev_lock);
	for (i = 0; i < n; i++) {
		struct isn_device *d = dev_get(real[i]);

		if (d)
			list[k++] = &d->ibdev;
	}
	dl->list = list;
	dl->real = real;
	dl->next = dev_lists;
	dev_lists = dl;
	pthread_mutex_unlock(&dev_lock);
	if (num_devices)
		*num_devices = k;
	return list;
}

/* Another listed backend device named like @dev, or NULL (lock held). */
static struct ibv_device *dev_listed_twin(struct ibv_device *dev)
{
	struct dev_list *dl;
	int i;

	for (dl = dev_lists; dl; dl = dl->next)
		for (i = 0; dl->real[i]; i++)
			if (dl->real[i] != dev &&
			    !strcmp(dl->real[i]->name, dev->name))
				return dl->real[i];
	return NULL;
}

/* @dl is unlisted: its backend devices may go; open through live ones. */
static void dev_forget_list(struct dev_list *dl)
{
	unsigned int i;
	int k;

	for (i = 0; i < dev_count; i++)
		for (k = 0; dl->real[k]; k++)
			if (isn_devices[i].real == dl->real[k])
				isn_devices[i].real =
					dev_listed_twin(dl->real[k]);
}

ISN_EXPORT void ibv_free_device_list(struct ibv_device **list)
{
	struct dev_list **p, *dl = NULL;

	pthread_mutex_lock(&dev_lock);
	for (p = &dev_lists; *p; p = &(*p)->next) {
		if ((*p)->list == list) {
			dl = *p;
			*p = dl->next;
			dev_forget_list(dl);
			break;
		}
	}
	pthread_mutex_unlock(&dev_lock);
	if (!dl) {
		ISN_REAL(void (*)(struct ibv_device **), "ibv_free_device_list",
			 "IBVERBS_1.1")
		(list);
		return;
	}
	isn_g.ops.free_device_list(dl->real);
	free(dl->list);
	free(dl);
}

ISN_EXPORT const char *ibv_get_device_name(struct ibv_device *device)
{
	if (!isn_dev_of(device))
		return ISN_REAL(const char *(*)(struct ibv_device *),
				"ibv_get_device_name", "IBVERBS_1.1")(device);
	return device->name;
}

ISN_EXPORT __be64 ibv_get_device_guid(struct ibv_device *device)
{
	struct isn_device *d = isn_dev_of(device);

	if (!d)
		return ISN_REAL(__be64(*)(struct ibv_device *),
				"ibv_get_device_guid", "IBVERBS_1.1")(device);
	if (d->real) /* else its list is gone: the GUID it had */
		d->guid = isn_g.ops.get_device_guid(d->real);
	return d->guid;
}

ISN_EXPORT int ibv_get_device_index(struct ibv_device *device)
{
	struct isn_device *d = isn_dev_of(device);
	int (*real_index)(struct ibv_device *) =
		ISN_REAL(int (*)(struct ibv_device *), "ibv_get_device_index",
			 "IBVERBS_1.9");

	if (!d)
		return real_index(device);
	/* only rdma-core's devices have a kernel index */
	if (strcmp(isn_g.ops.name, "real") || !d->real)
		return -1;
	return real_index(d->real);
}

void isn_dev_atfork(enum isn_fork_stage stage)
{
	if (stage == ISN_FORK_PREPARE)
		pthread_mutex_lock(&dev_lock);
	else
		pthread_mutex_unlock(&dev_lock);
}
