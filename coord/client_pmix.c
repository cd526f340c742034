/* SPDX-License-Identifier: MIT */
/*
 * The exchange through PMIx (issue 9): with IBSNAP_PMIX=1 in a process
 * that a PMIx server started (PMIX_NAMESPACE set: Open MPI's mpirun,
 * prterun, Slurm), a handler's put_fence_get publishes its blob with
 * PMIx_Put + PMIx_Commit, meets every process of its namespace in
 * PMIx_Fence (data collected) and reads theirs with PMIx_Get: the batch
 * system's own tree carries the maps instead of ibsnapd.  The process
 * still takes part in ibsnapd's exchange, with an empty blob (ALL then
 * holds only the blobs of processes outside the namespace), so the
 * coordinator's barriers are unchanged.  libpmix is opened with dlopen:
 * the shim has no link-time dependency, and a job's own PMIx library
 * (Open MPI's) is the same instance.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"

#ifdef ISN_HAVE_PMIX
#include <pmix.h>

static struct {
	bool tried, ok; /* libpmix opened */
	pmix_proc_t me;
	uint32_t size;
	pmix_status_t (*init)(pmix_proc_t *, pmix_info_t *, size_t);
	pmix_status_t (*put)(pmix_scope_t, const pmix_key_t, pmix_value_t *);
	pmix_status_t (*commit)(void);
	pmix_status_t (*fence)(const pmix_proc_t *, size_t, const pmix_info_t *,
			       size_t);
	pmix_status_t (*get)(const pmix_proc_t *, const pmix_key_t,
			     const pmix_info_t *, size_t, pmix_value_t **);
	void (*destruct)(pmix_value_t *);
	pmix_status_t (*finalize)(const pmix_info_t *, size_t);
} px;

bool isn_cl_pmix_wanted(void)
{
	const char *v = getenv("IBSNAP_PMIX");

	return v && !strcmp(v, "1") && getenv("PMIX_NAMESPACE");
}

/* libpmix's functions, once. */
static int pmix_open(void)
{
	void *h;

	if (px.tried)
		return px.ok ? 0 : -ENOTSUP;
	px.tried = true;
	h = dlopen("libpmix.so.2", RTLD_NOW | RTLD_GLOBAL);
	if (!h) {
		isn_cl_log("IBSNAP_PMIX=1: %s", dlerror());
		return -ENOTSUP;
	}
	px.init = (__typeof__(px.init))dlsym(h, "PMIx_Init");
	px.put = (__typeof__(px.put))dlsym(h, "PMIx_Put");
	px.commit = (__typeof__(px.commit))dlsym(h, "PMIx_Commit");
	px.fence = (__typeof__(px.fence))dlsym(h, "PMIx_Fence");
	px.get = (__typeof__(px.get))dlsym(h, "PMIx_Get");
	px.destruct = (__typeof__(px.destruct))dlsym(h, "PMIx_Value_destruct");
	px.finalize = (__typeof__(px.finalize))dlsym(h, "PMIx_Finalize");
	if (!px.init || !px.put || !px.commit || !px.fence || !px.get ||
	    !px.destruct || !px.finalize) {
		isn_cl_log("IBSNAP_PMIX=1: libpmix.so.2 lacks a function");
		return -ENOTSUP;
	}
	px.ok = true;
	return 0;
}

/*
 * PMIx_Init for one exchange, PMIx_Finalize after it: a job's own PMIx
 * (Open MPI's) counts our init, and its finalize must still reach the
 * server when the job ends.
 */
static int pmix_begin(void)
{
	pmix_proc_t wild;
	pmix_value_t *v = NULL;
	int ret = pmix_open();

	if (ret)
		return ret;
	if (px.init(&px.me, NULL, 0) != PMIX_SUCCESS) {
		isn_cl_log("IBSNAP_PMIX=1: PMIx_Init failed");
		return -ENOTSUP;
	}
	wild = px.me;
	wild.rank = PMIX_RANK_WILDCARD;
	if (px.get(&wild, PMIX_JOB_SIZE, NULL, 0, &v) != PMIX_SUCCESS || !v ||
	    v->type != PMIX_UINT32) {
		isn_cl_log("IBSNAP_PMIX=1: no job size from PMIx");
		px.finalize(NULL, 0);
		return -ENOTSUP;
	}
	px.size = v->data.uint32;
	px.destruct(v);
	free(v);
	return 0;
}

/* Our blob, with our coordinator rank in front, under @key. */
static int pmix_put(const char *key, const void *blob, size_t len)
{
	pmix_value_t val;
	char *buf = malloc(len + 4);
	uint32_t r = (uint32_t)isn_cl.rank;
	pmix_status_t st;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, &r, 4);
	if (len)
		memcpy(buf + 4, blob, len);
	memset(&val, 0, sizeof(val));
	val.type = PMIX_BYTE_OBJECT;
	val.data.bo.bytes = buf;
	val.data.bo.size = len + 4;
	st = px.put(PMIX_GLOBAL, key, &val); /* PMIx copies it */
	free(buf);
	if (st == PMIX_SUCCESS)
		st = px.commit();
	return st == PMIX_SUCCESS ? 0 : -EIO;
}

static int pmix_fence(void)
{
	pmix_info_t info[2];
	pmix_proc_t wild = px.me;

	wild.rank = PMIX_RANK_WILDCARD;
	memset(info, 0, sizeof(info));
	strncpy(info[0].key, PMIX_COLLECT_DATA, PMIX_MAX_KEYLEN);
	info[0].value.type = PMIX_BOOL;
	info[0].value.data.flag = true;
	/* a process that never comes must not hold us forever */
	strncpy(info[1].key, PMIX_TIMEOUT, PMIX_MAX_KEYLEN);
	info[1].value.type = PMIX_INT;
	info[1].value.data.integer = isn_cl.reg_timeout_ms / 1000 + 60;
	return px.fence(&wild, 1, info, 2) == PMIX_SUCCESS ? 0 : -ETIMEDOUT;
}

static int by_rank(const void *a, const void *b)
{
	const struct isn_blob *x = a, *y = b;

	return x->rank < y->rank ? -1 : x->rank > y->rank;
}

int isn_cl_pmix_exchange(const void *blob, size_t len,
			 const struct isn_blob **all, size_t *n)
{
	size_t ncoord = *n, i, k, total = 0;
	struct isn_blob *out;
	pmix_value_t **vals;
	char key[PMIX_MAX_KEYLEN + 1];
	uint8_t *data, *base = NULL;
	int ret = pmix_begin();

	if (ret)
		return ret;
	snprintf(key, sizeof(key), "ibsnap.x.%u.%u", isn_cl.ckpt, isn_cl.x_seq);
	ret = pmix_put(key, blob, len);
	if (!ret)
		ret = pmix_fence();
	if (ret) {
		px.finalize(NULL, 0);
		isn_cl_log("PMIx exchange %s: %s", key, strerror(-ret));
		return ret;
	}
	vals = calloc(px.size, sizeof(*vals));
	if (!vals) {
		px.finalize(NULL, 0);
		return -ENOMEM;
	}
	for (i = 0; i < px.size && !ret; i++) {
		pmix_proc_t p = px.me;

		p.rank = (pmix_rank_t)i;
		if (px.get(&p, key, NULL, 0, &vals[i]) != PMIX_SUCCESS ||
		    !vals[i] || vals[i]->type != PMIX_BYTE_OBJECT ||
		    vals[i]->data.bo.size < 4)
			ret = -EPROTO;
		else
			total += vals[i]->data.bo.size;
	}
	/* ibsnapd's blobs (processes outside the namespace), then ours */
	out = ret ? NULL : calloc(ncoord + px.size + 1, sizeof(*out));
	data = base = out ? malloc(total + 1) : NULL;
	if (!ret && (!out || !data))
		ret = -ENOMEM;
	for (i = 0, k = 0; !ret && i < ncoord; i++)
		if ((*all)[i].len)
			out[k++] = (*all)[i];
	for (i = 0; !ret && i < px.size; i++) {
		const char *b = vals[i]->data.bo.bytes;
		size_t l = vals[i]->data.bo.size - 4;

		memcpy(&out[k].rank, b, 4);
		memcpy(data, b + 4, l);
		out[k].len = (uint32_t)l;
		out[k++].data = data;
		data += l;
	}
	for (i = 0; i < px.size; i++) {
		if (vals[i]) {
			px.destruct(vals[i]);
			free(vals[i]);
		}
	}
	free(vals);
	px.finalize(NULL, 0);
	if (ret) {
		free(out);
		free(base);
		isn_cl_log("PMIx exchange %s: %s", key, strerror(-ret));
		return ret;
	}
	qsort(out, k, sizeof(*out), by_rank);
	isn_cl_log("exchange %s through PMIx: %zu blobs, %zu through ibsnapd",
		   key, k, k - px.size);
	/* freed with the coordinator's blobs when the handler returns */
	isn_cl.x_pmix_data = base;
	isn_cl.x_pmix_blobs = out;
	*all = out;
	*n = k;
	return 0;
}

#else /* !ISN_HAVE_PMIX */

bool isn_cl_pmix_wanted(void)
{
	return getenv("IBSNAP_PMIX") && !strcmp(getenv("IBSNAP_PMIX"), "1") &&
	       getenv("PMIX_NAMESPACE");
}

int isn_cl_pmix_exchange(const void *blob, size_t len,
			 const struct isn_blob **all, size_t *n)
{
	(void)blob;
	(void)len;
	(void)all;
	(void)n;
	isn_cl_log("IBSNAP_PMIX=1: this build has no PMIx (libpmix-dev)");
	return -ENOTSUP;
}

#endif
