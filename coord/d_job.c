/* SPDX-License-Identifier: MIT */
/*
 * ibsnapd's registry: jobs, their processes (by rank, assigned in
 * registration order) and host agents.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

#define RANK_LIMIT (1u << 24)

struct isn_job *isn_job_find(struct isn_d *d, const char *name)
{
	struct isn_job *j;

	for (j = d->jobs; j; j = j->next)
		if (!strcmp(j->name, name))
			return j;
	return NULL;
}

struct isn_job *isn_job_new(struct isn_d *d, const char *name,
			    const uint8_t token[ISN_TOKEN_LEN])
{
	struct isn_job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->d = d;
	isn_strlcpy(j->name, name, sizeof(j->name));
	memcpy(j->token, token, ISN_TOKEN_LEN);
	j->next = d->jobs;
	d->jobs = j;
	d->njobs++;
	isn_d_log(d, "job '%s': created", name);
	return j;
}

static void job_unlink(struct isn_job *j)
{
	struct isn_job **pp;

	for (pp = &j->d->jobs; *pp; pp = &(*pp)->next) {
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	}
	j->d->njobs--;
}

void isn_job_maybe_free(struct isn_job *j)
{
	struct isn_d *d = j->d;

	if (j->nprocs || j->nagents || j->ck)
		return;
	isn_d_log(d, "job '%s': ended", j->name);
	job_unlink(j);
	free(j->procs);
	free(j);
	isn_d_idle_check(d);
}

struct isn_proc *isn_job_proc_new(struct isn_job *j, uint32_t rank)
{
	struct isn_proc *p, **procs;
	uint32_t n;

	if (rank >= RANK_LIMIT)
		return NULL;
	if (rank >= j->nslots) {
		for (n = j->nslots ? j->nslots : 64; n <= rank; n *= 2)
			;
		procs = realloc(j->procs, n * sizeof(*procs));
		if (!procs)
			return NULL;
		memset(procs + j->nslots, 0, (n - j->nslots) * sizeof(*procs));
		j->procs = procs;
		j->nslots = n;
	}
	if (j->procs[rank])
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->job = j;
	p->rank = rank;
	p->wake_fd = -1;
	j->procs[rank] = p;
	j->nprocs++;
	if (rank >= j->next_rank)
		j->next_rank = rank + 1;
	return p;
}

void isn_job_proc_remove(struct isn_proc *p)
{
	struct isn_job *j = p->job;

	if (p->conn)
		p->conn->proc = NULL;
	j->procs[p->rank] = NULL;
	j->nprocs--;
	free(p->blob);
	free(p);
}

struct isn_agent *isn_job_agent(struct isn_job *j, uint64_t id)
{
	struct isn_agent *a;

	for (a = j->agents; a; a = a->next)
		if (a->id == id)
			return a;
	return NULL;
}

uint64_t isn_job_agent_id(void)
{
	uint8_t tok[ISN_TOKEN_LEN];
	uint64_t id = 0;

	while (!id) {
		if (isn_token_new(tok))
			id = (uint64_t)getpid() << 32 | (uint64_t)time(NULL);
		else
			memcpy(&id, tok, sizeof(id));
	}
	return id;
}

void isn_job_agent_remove(struct isn_agent *a)
{
	struct isn_job *j = a->job;
	struct isn_agent **pp;

	for (pp = &j->agents; *pp; pp = &(*pp)->next) {
		if (*pp == a) {
			*pp = a->next;
			break;
		}
	}
	j->nagents--;
	if (a->conn)
		a->conn->agent = NULL;
	free(a);
}

/* Every agent has reported its tree's end: tell those still listening. */
void isn_job_end_check(struct isn_job *j)
{
	struct isn_m_job_end m = { .status = j->exit_status };
	struct isn_agent *a;

	for (a = j->agents; a; a = a->next)
		if (!a->exited)
			return;
	for (a = j->agents; a; a = a->next)
		isn_conn_send(a->conn, ISN_MSG_JOB_END, &m);
}

void isn_job_free_all(struct isn_d *d)
{
	struct isn_job *j;
	uint32_t r;

	while ((j = d->jobs)) {
		if (j->ck) {
			if (j->ck->ctl)
				j->ck->ctl->ctl_job = NULL;
			isn_ck_free(j->ck);
			j->ck = NULL;
		}
		for (r = 0; r < j->nslots; r++)
			if (j->procs[r])
				isn_job_proc_remove(j->procs[r]);
		while (j->agents)
			isn_job_agent_remove(j->agents);
		job_unlink(j);
		free(j->procs);
		free(j);
	}
}
