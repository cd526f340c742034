/* SPDX-License-Identifier: MIT */
/*
 * The rest of libibverbs' public API.  Functions that take no verbs object
 * forward to rdma-core.  Those that take one forward when it is not ours and,
 * when it is, fail the way rdma-core fails an op its provider lacks (the
 * shim does not virtualize them yet) -- or translate and forward.
 */
#include <errno.h>
#include <stdbool.h>

#include "shim.h"

struct ib_user_path_rec;
struct ibv_sa_path_rec;

#define V1_0 "IBVERBS_1.0"
#define V1_1 "IBVERBS_1.1"

/* ---- no verbs object: plain forwards ---- */

ISN_EXPORT const char *ibv_wc_status_str(enum ibv_wc_status status)
{
	return ISN_REAL(const char *(*)(enum ibv_wc_status),
			"ibv_wc_status_str", V1_1)(status);
}

ISN_EXPORT const char *ibv_node_type_str(enum ibv_node_type node_type)
{
	return ISN_REAL(const char *(*)(enum ibv_node_type),
			"ibv_node_type_str", V1_1)(node_type);
}

ISN_EXPORT const char *ibv_port_state_str(enum ibv_port_state port_state)
{
	return ISN_REAL(const char *(*)(enum ibv_port_state),
			"ibv_port_state_str", V1_1)(port_state);
}

ISN_EXPORT const char *ibv_event_type_str(enum ibv_event_type event)
{
	return ISN_REAL(const char *(*)(enum ibv_event_type),
			"ibv_event_type_str", V1_1)(event);
}

ISN_EXPORT int ibv_rate_to_mult(enum ibv_rate rate)
{
	return ISN_REAL(int (*)(enum ibv_rate), "ibv_rate_to_mult", V1_0)(rate);
}

ISN_EXPORT enum ibv_rate mult_to_ibv_rate(int mult)
{
	return ISN_REAL(enum ibv_rate(*)(int), "mult_to_ibv_rate", V1_0)(mult);
}

ISN_EXPORT int ibv_rate_to_mbps(enum ibv_rate rate)
{
	return ISN_REAL(int (*)(enum ibv_rate), "ibv_rate_to_mbps", V1_1)(rate);
}

ISN_EXPORT enum ibv_rate mbps_to_ibv_rate(int mbps)
{
	return ISN_REAL(enum ibv_rate(*)(int), "mbps_to_ibv_rate", V1_1)(mbps);
}

ISN_EXPORT int ibv_fork_init(void)
{
	return ISN_REAL(int (*)(void), "ibv_fork_init", V1_1)();
}

ISN_EXPORT enum ibv_fork_status ibv_is_fork_initialized(void)
{
	return ISN_REAL(enum ibv_fork_status(*)(void),
			"ibv_is_fork_initialized", "IBVERBS_1.13")();
}

ISN_EXPORT int ibv_dontfork_range(void *base, size_t size)
{
	return ISN_REAL(int (*)(void *, size_t), "ibv_dontfork_range",
			V1_1)(base, size);
}

ISN_EXPORT int ibv_dofork_range(void *base, size_t size)
{
	return ISN_REAL(int (*)(void *, size_t), "ibv_dofork_range",
			V1_1)(base, size);
}

ISN_EXPORT const char *ibv_get_sysfs_path(void)
{
	return ISN_REAL(const char *(*)(void), "ibv_get_sysfs_path", V1_0)();
}

ISN_EXPORT int ibv_read_sysfs_file(const char *dir, const char *file, char *buf,
				   size_t size)
{
	return ISN_REAL(int (*)(const char *, const char *, char *, size_t),
			"ibv_read_sysfs_file", V1_0)(dir, file, buf, size);
}

ISN_EXPORT void ibv_copy_ah_attr_from_kern(struct ibv_ah_attr *dst,
					   struct ib_user_path_rec *src)
{
	ISN_REAL(void (*)(struct ibv_ah_attr *, struct ib_user_path_rec *),
		 "ibv_copy_ah_attr_from_kern", V1_1)
	(dst, src);
}

ISN_EXPORT void ibv_copy_qp_attr_from_kern(struct ibv_qp_attr *dst,
					   struct ib_user_path_rec *src)
{
	ISN_REAL(void (*)(struct ibv_qp_attr *, struct ib_user_path_rec *),
		 "ibv_copy_qp_attr_from_kern", V1_0)
	(dst, src);
}

ISN_EXPORT void ibv_copy_path_rec_from_kern(struct ibv_sa_path_rec *dst,
					    struct ib_user_path_rec *src)
{
	ISN_REAL(void (*)(struct ibv_sa_path_rec *, struct ib_user_path_rec *),
		 "ibv_copy_path_rec_from_kern", V1_0)
	(dst, src);
}

ISN_EXPORT void ibv_copy_path_rec_to_kern(struct ib_user_path_rec *dst,
					  struct ibv_sa_path_rec *src)
{
	ISN_REAL(void (*)(struct ib_user_path_rec *, struct ibv_sa_path_rec *),
		 "ibv_copy_path_rec_to_kern", V1_0)
	(dst, src);
}

/* A 2006 compat stub providers of that era call; rdma-core only warns. */
ISN_EXPORT void ibv_register_driver(const char *name, void *init_func)
{
	void (*fn)(const char *, void *) = ISN_REAL(
		void (*)(const char *, void *), "ibv_register_driver", V1_1);

	if (fn)
		fn(name, init_func);
}

/* rdma-core's own devices only: importing a kernel context by fd. */
ISN_EXPORT struct ibv_context *ibv_import_device(int cmd_fd)
{
	return ISN_REAL(struct ibv_context * (*)(int), "ibv_import_device",
			"IBVERBS_1.10")(cmd_fd);
}
