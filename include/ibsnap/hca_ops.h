/* SPDX-License-Identifier: MIT */
/*
 * The one interface between the shim and an HCA backend.
 *
 * Modelled on rdma-core's struct verbs_context_ops: one struct of function
 * pointers, members grouped by object and kept sorted inside each group, a
 * typedef per op.  Both backends (real: rdma-core reached through
 * dlsym/dlvsym; fake: libfakehca) fill a static const table by field name.
 *
 * The contract at this boundary is libibverbs' own: int-returning ops return 0
 * or a positive errno; constructors return the object or NULL with errno set;
 * poll_cq returns the number of completions or a negative value.  Objects are
 * the backend's own ibv_* objects.  Their inline ops (context->ops.post_send,
 * poll_cq, ...) are filled too, so the static inline helpers of verbs.h
 * (ibv_post_send, ibv_poll_cq, ibv_start_poll, ...) work on them directly.
 *
 * An op a backend cannot do is left NULL; isn_hca_ops_fill_defaults() fills
 * it with a default that fails the way rdma-core fails an unsupported op
 * (EOPNOTSUPP, or NULL with errno EOPNOTSUPP).
 */
#ifndef IBSNAP_HCA_OPS_H
#define IBSNAP_HCA_OPS_H

#include <infiniband/verbs.h>

/* device list and device */
typedef struct ibv_device **(*isn_get_device_list_fn)(int *num_devices);
typedef void (*isn_free_device_list_fn)(struct ibv_device **list);
typedef __be64 (*isn_get_device_guid_fn)(struct ibv_device *device);
typedef struct ibv_context *(*isn_open_device_fn)(struct ibv_device *device);
typedef int (*isn_close_device_fn)(struct ibv_context *context);

/* queries */
typedef int (*isn_query_device_ex_fn)(struct ibv_context *context,
				      const struct ibv_query_device_ex_input *in,
				      struct ibv_device_attr_ex *attr,
				      size_t attr_size);
typedef int (*isn_query_gid_fn)(struct ibv_context *context, uint8_t port_num,
				int index, union ibv_gid *gid);
typedef int (*isn_query_gid_ex_fn)(struct ibv_context *context,
				   uint32_t port_num, uint32_t gid_index,
				   struct ibv_gid_entry *entry, uint32_t flags);
typedef int (*isn_query_pkey_fn)(struct ibv_context *context, uint8_t port_num,
				 int index, __be16 *pkey);
typedef int (*isn_query_port_fn)(struct ibv_context *context, uint8_t port_num,
				 struct ibv_port_attr *attr);

/* async events */
typedef void (*isn_ack_async_event_fn)(struct ibv_async_event *event);
typedef int (*isn_get_async_event_fn)(struct ibv_context *context,
				      struct ibv_async_event *event);

/* protection domain */
typedef struct ibv_pd *(*isn_alloc_pd_fn)(struct ibv_context *context);
typedef int (*isn_dealloc_pd_fn)(struct ibv_pd *pd);

/* memory region */
typedef int (*isn_dereg_mr_fn)(struct ibv_mr *mr);
typedef struct ibv_mr *(*isn_reg_mr_fn)(struct ibv_pd *pd, void *addr,
					size_t length, uint64_t iova,
					unsigned int access);

/* completion channel */
typedef void (*isn_ack_cq_events_fn)(struct ibv_cq *cq, unsigned int nevents);
typedef struct ibv_comp_channel *(*isn_create_comp_channel_fn)(
	struct ibv_context *context);
typedef int (*isn_destroy_comp_channel_fn)(struct ibv_comp_channel *channel);
typedef int (*isn_get_cq_event_fn)(struct ibv_comp_channel *channel,
				   struct ibv_cq **cq, void **cq_context);

/* completion queue */
typedef struct ibv_cq *(*isn_create_cq_fn)(struct ibv_context *context,
					   int cqe, void *cq_context,
					   struct ibv_comp_channel *channel,
					   int comp_vector);
typedef struct ibv_cq_ex *(*isn_create_cq_ex_fn)(
	struct ibv_context *context, struct ibv_cq_init_attr_ex *attr);
typedef int (*isn_destroy_cq_fn)(struct ibv_cq *cq);
typedef int (*isn_poll_cq_fn)(struct ibv_cq *cq, int num_entries,
			      struct ibv_wc *wc);
typedef int (*isn_req_notify_cq_fn)(struct ibv_cq *cq, int solicited_only);
typedef int (*isn_resize_cq_fn)(struct ibv_cq *cq, int cqe);

/* shared receive queue */
typedef struct ibv_srq *(*isn_create_srq_fn)(struct ibv_pd *pd,
					     struct ibv_srq_init_attr *attr);
typedef int (*isn_destroy_srq_fn)(struct ibv_srq *srq);
typedef int (*isn_modify_srq_fn)(struct ibv_srq *srq,
				 struct ibv_srq_attr *attr, int attr_mask);
typedef int (*isn_post_srq_recv_fn)(struct ibv_srq *srq,
				    struct ibv_recv_wr *wr,
				    struct ibv_recv_wr **bad_wr);
typedef int (*isn_query_srq_fn)(struct ibv_srq *srq, struct ibv_srq_attr *attr);

/* queue pair */
typedef struct ibv_qp *(*isn_create_qp_fn)(struct ibv_pd *pd,
					   struct ibv_qp_init_attr *attr);
typedef struct ibv_qp *(*isn_create_qp_ex_fn)(
	struct ibv_context *context, struct ibv_qp_init_attr_ex *attr);
typedef int (*isn_destroy_qp_fn)(struct ibv_qp *qp);
typedef int (*isn_modify_qp_fn)(struct ibv_qp *qp, struct ibv_qp_attr *attr,
				int attr_mask);
typedef int (*isn_post_recv_fn)(struct ibv_qp *qp, struct ibv_recv_wr *wr,
				struct ibv_recv_wr **bad_wr);
typedef int (*isn_post_send_fn)(struct ibv_qp *qp, struct ibv_send_wr *wr,
				struct ibv_send_wr **bad_wr);
typedef int (*isn_query_qp_fn)(struct ibv_qp *qp, struct ibv_qp_attr *attr,
			       int attr_mask, struct ibv_qp_init_attr *init);

/* address handle */
typedef struct ibv_ah *(*isn_create_ah_fn)(struct ibv_pd *pd,
					   struct ibv_ah_attr *attr);
typedef int (*isn_destroy_ah_fn)(struct ibv_ah *ah);

struct isn_hca_ops {
	const char *name; /* "real", "fake" */

	/* device list and device */
	isn_close_device_fn close_device;
	isn_free_device_list_fn free_device_list;
	isn_get_device_guid_fn get_device_guid;
	isn_get_device_list_fn get_device_list;
	isn_open_device_fn open_device;

	/* queries */
	isn_query_device_ex_fn query_device_ex;
	isn_query_gid_fn query_gid;
	isn_query_gid_ex_fn query_gid_ex;
	isn_query_pkey_fn query_pkey;
	isn_query_port_fn query_port;

	/* async events */
	isn_ack_async_event_fn ack_async_event;
	isn_get_async_event_fn get_async_event;

	/* protection domain and memory */
	isn_alloc_pd_fn alloc_pd;
	isn_dealloc_pd_fn dealloc_pd;
	isn_dereg_mr_fn dereg_mr;
	isn_reg_mr_fn reg_mr;

	/* completion channel and completion queue */
	isn_ack_cq_events_fn ack_cq_events;
	isn_create_comp_channel_fn create_comp_channel;
	isn_create_cq_fn create_cq;
	isn_create_cq_ex_fn create_cq_ex;
	isn_destroy_comp_channel_fn destroy_comp_channel;
	isn_destroy_cq_fn destroy_cq;
	isn_get_cq_event_fn get_cq_event;
	isn_poll_cq_fn poll_cq;
	isn_req_notify_cq_fn req_notify_cq;
	isn_resize_cq_fn resize_cq;

	/* shared receive queue */
	isn_create_srq_fn create_srq;
	isn_destroy_srq_fn destroy_srq;
	isn_modify_srq_fn modify_srq;
	isn_post_srq_recv_fn post_srq_recv;
	isn_query_srq_fn query_srq;

	/* queue pair */
	isn_create_qp_fn create_qp;
	isn_create_qp_ex_fn create_qp_ex;
	isn_destroy_qp_fn destroy_qp;
	isn_modify_qp_fn modify_qp;
	isn_post_recv_fn post_recv;
	isn_post_send_fn post_send;
	isn_query_qp_fn query_qp;

	/* address handle */
	isn_create_ah_fn create_ah;
	isn_destroy_ah_fn destroy_ah;
};

/*
 * Fill every NULL op of @ops with a default that fails like rdma-core's
 * dummy ops.  Call once on a writable copy before use.
 */
void isn_hca_ops_fill_defaults(struct isn_hca_ops *ops);

/* The fake HCA's table (libfakehca.so). */
const struct isn_hca_ops *fakehca_ops(void);

#endif /* IBSNAP_HCA_OPS_H */
