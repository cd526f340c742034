// SPDX-License-Identifier: MIT
/*
 * The libc calls with which libraries probe RDMA devices, interposed so
 * that paths of the shim's virtual devices (sysview.c) answer from the
 * shim's view: open, openat, fopen, stat, lstat, fstatat, access,
 * faccessat, with their 64-bit, fortified and pre-2.33 (__xstat) names.
 * Any other path goes to the next definition (libc) at once: one compare
 * of the first two characters.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../verbs-shim/shim.h"
#include "sysview.h"

#define NEXT(type, name)                                                       \
	({                                                                     \
		static void *_Atomic next_;                                    \
		void *p_ = atomic_load_explicit(&next_, memory_order_relaxed); \
		if (!p_) {                                                     \
			p_ = dlsym(RTLD_NEXT, name);                           \
			atomic_store_explicit(&next_, p_,                      \
					      memory_order_relaxed);           \
		}                                                              \
		(type) p_;                                                     \
	})

/* Ours: 1 (fd or result in *ret), or 0: not ours. */
static int sv_open(const char *path, int flags, int *ret)
{
	struct isn_sv_node node;

	if (!isn_sv_maybe(path))
		return 0;
	isn_sv_lookup(path, &node);
	if (node.type == ISN_SV_NONE)
		return 0;
	if (node.type == ISN_SV_ENOENT) {
		errno = ENOENT;
		*ret = -1;
	} else {
		*ret = isn_sv_open(&node, flags);
	}
	return 1;
}

static int sv_stat(const char *path, struct stat *st, int *ret)
{
	struct isn_sv_node node;

	if (!isn_sv_maybe(path))
		return 0;
	isn_sv_lookup(path, &node);
	if (node.type == ISN_SV_NONE)
		return 0;
	if (node.type == ISN_SV_ENOENT) {
		errno = ENOENT;
		*ret = -1;
	} else {
		isn_sv_stat(&node, st);
		*ret = 0;
	}
	return 1;
}

static int sv_access(const char *path, int mode, int *ret)
{
	struct isn_sv_node node;

	if (!isn_sv_maybe(path))
		return 0;
	isn_sv_lookup(path, &node);
	if (node.type == ISN_SV_NONE)
		return 0;
	*ret = 0;
	if (node.type == ISN_SV_ENOENT) {
		errno = ENOENT;
		*ret = -1;
	} else if ((mode & W_OK) && node.type != ISN_SV_CHR) {
		errno = EACCES;
		*ret = -1;
	}
	return 1;
}

static mode_t va_mode(int flags, va_list ap)
{
	return (flags & (O_CREAT | __O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
}

#define OPEN_WRAPPER(name)                                    \
	ISN_EXPORT int name(const char *path, int flags, ...) \
	{                                                     \
		va_list ap;                                   \
		mode_t mode;                                  \
		int ret;                                      \
                                                              \
		va_start(ap, flags);                          \
		mode = va_mode(flags, ap);                    \
		va_end(ap);                                   \
		if (sv_open(path, flags, &ret))               \
			return ret;                           \
		return NEXT(int (*)(const char *, int, ...),  \
			    #name)(path, flags, mode);        \
	}

OPEN_WRAPPER(open)
OPEN_WRAPPER(open64)

#define OPENAT_WRAPPER(name)                                             \
	ISN_EXPORT int name(int dirfd, const char *path, int flags, ...) \
	{                                                                \
		va_list ap;                                              \
		mode_t mode;                                             \
		int ret;                                                 \
                                                                         \
		va_start(ap, flags);                                     \
		mode = va_mode(flags, ap);                               \
		va_end(ap);                                              \
		if (sv_open(path, flags, &ret))                          \
			return ret;                                      \
		return NEXT(int (*)(int, const char *, int, ...),        \
			    #name)(dirfd, path, flags, mode);            \
	}

OPENAT_WRAPPER(openat)
OPENAT_WRAPPER(openat64)

/* _FORTIFY_SOURCE builds call these */
ISN_EXPORT int __open_2(const char *path, int flags)
{
	int ret;

	if (sv_open(path, flags, &ret))
		return ret;
	return NEXT(int (*)(const char *, int), "__open_2")(path, flags);
}

ISN_EXPORT int __open64_2(const char *path, int flags)
{
	int ret;

	if (sv_open(path, flags, &ret))
		return ret;
	return NEXT(int (*)(const char *, int), "__open64_2")(path, flags);
}

static FILE *sv_fopen(const char *path, const char *mode, bool *ours)
{
	int fd;

	*ours = sv_open(path,
			strchr(mode, 'w') || strchr(mode, 'a') ||
					strchr(mode, '+') ?
				O_RDWR :
				O_RDONLY,
			&fd);
	if (!*ours || fd < 0)
		return NULL;
	return fdopen(fd, mode);
}

ISN_EXPORT FILE *fopen(const char *path, const char *mode)
{
	bool ours;
	FILE *f = sv_fopen(path, mode, &ours);

	if (ours)
		return f;
	return NEXT(FILE * (*)(const char *, const char *), "fopen")(path,
								     mode);
}

ISN_EXPORT FILE *fopen64(const char *path, const char *mode)
{
	bool ours;
	FILE *f = sv_fopen(path, mode, &ours);

	if (ours)
		return f;
	return NEXT(FILE * (*)(const char *, const char *), "fopen64")(path,
								       mode);
}

#define STAT_WRAPPER(name, st_t)                                             \
	ISN_EXPORT int name(const char *path, st_t *st)                      \
	{                                                                    \
		int ret;                                                     \
                                                                             \
		if (sv_stat(path, (struct stat *)st, &ret))                  \
			return ret;                                          \
		return NEXT(int (*)(const char *, st_t *), #name)(path, st); \
	}

STAT_WRAPPER(stat, struct stat)
STAT_WRAPPER(stat64, struct stat64)
STAT_WRAPPER(lstat, struct stat)
STAT_WRAPPER(lstat64, struct stat64)

#define FSTATAT_WRAPPER(name, st_t)                                           \
	ISN_EXPORT int name(int dirfd, const char *path, st_t *st, int flags) \
	{                                                                     \
		int ret;                                                      \
                                                                              \
		if (sv_stat(path, (struct stat *)st, &ret))                   \
			return ret;                                           \
		return NEXT(int (*)(int, const char *, st_t *, int),          \
			    #name)(dirfd, path, st, flags);                   \
	}

FSTATAT_WRAPPER(fstatat, struct stat)
FSTATAT_WRAPPER(fstatat64, struct stat64)

/* glibc before 2.33 compiled stat() into these */
#define XSTAT_WRAPPER(name, st_t)                                \
	ISN_EXPORT int name(int ver, const char *path, st_t *st) \
	{                                                        \
		int ret;                                         \
                                                                 \
		if (sv_stat(path, (struct stat *)st, &ret))      \
			return ret;                              \
		return NEXT(int (*)(int, const char *, st_t *),  \
			    #name)(ver, path, st);               \
	}

XSTAT_WRAPPER(__xstat, struct stat)
XSTAT_WRAPPER(__xstat64, struct stat64)
XSTAT_WRAPPER(__lxstat, struct stat)
XSTAT_WRAPPER(__lxstat64, struct stat64)

ISN_EXPORT int access(const char *path, int mode)
{
	int ret;

	if (sv_access(path, mode, &ret))
		return ret;
	return NEXT(int (*)(const char *, int), "access")(path, mode);
}

ISN_EXPORT int faccessat(int dirfd, const char *path, int mode, int flags)
{
	int ret;

	if (sv_access(path, mode, &ret))
		return ret;
	return NEXT(int (*)(int, const char *, int, int),
		    "faccessat")(dirfd, path, mode, flags);
}
