/* SPDX-License-Identifier: MIT */
/*
 * Direct verbs of mlx5: virtual devices are never mlx5 devices, so UCX and
 * perftest take the plain verbs paths.
 */
#include <errno.h>
#include <stdbool.h>
#include <infiniband/mlx5dv.h>

#include "shim.h"

ISN_EXPORT bool mlx5dv_is_supported(struct ibv_device *device)
{
	bool (*fn)(struct ibv_device *);

	if (isn_dev_of(device))
		return false;
	fn = ISN_REAL(bool (*)(struct ibv_device *), "mlx5dv_is_supported",
		      "MLX5_1.8");
	return fn ? fn(device) : false;
}

ISN_EXPORT struct ibv_context *
mlx5dv_open_device(struct ibv_device *device, struct mlx5dv_context_attr *attr)
{
	struct ibv_context *(*fn)(struct ibv_device *,
				  struct mlx5dv_context_attr *);

	fn = ISN_REAL(struct ibv_context * (*)(struct ibv_device *,
					       struct mlx5dv_context_attr *),
		      "mlx5dv_open_device", "MLX5_1.7");
	if (isn_dev_of(device) || !fn) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	return fn(device, attr);
}

ISN_EXPORT int mlx5dv_query_device(struct ibv_context *context,
				   struct mlx5dv_context *attrs)
{
	int (*fn)(struct ibv_context *, struct mlx5dv_context *);

	fn = ISN_REAL(int (*)(struct ibv_context *, struct mlx5dv_context *),
		      "mlx5dv_query_device", "MLX5_1.0");
	if (isn_ctx_of(context) || !fn)
		return EOPNOTSUPP;
	return fn(context, attrs);
}
