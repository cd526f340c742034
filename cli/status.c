/* SPDX-License-Identifier: MIT */
/* ibsnap status: the coordinator's jobs and processes, as a table or JSON. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char *state_name(uint16_t s)
{
	return s == ISN_PS_DETACHED ? "detached" :
	       s == ISN_PS_IN_CKPT  ? "checkpoint" :
				      "running";
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void job_table(const struct isn_m_status_job *j)
{
	char when[32] = "-";
	struct tm tm;
	time_t t = (time_t)j->last_time;

	if (j->last_time && localtime_r(&t, &tm))
		strftime(when, sizeof(when), "%F %T", &tm);
	printf("job %s: %u processes, %u agents, %s\n", j->job, j->nprocs,
	       j->nagents, j->phase ? isn_phase_name(j->phase) : "running");
	if (j->last_time && j->last_downtime)
		printf("  last checkpoint: %u at %s, %s (%.1f ms, downtime "
		       "%.1f ms)%s%s\n",
		       j->ckpt, when, j->last_status ? "FAILED" : "ok",
		       j->last_usec / 1000., j->last_downtime / 1000.,
		       j->last_dir[0] ? " in " : "", j->last_dir);
	else if (j->last_time)
		printf("  last checkpoint: %u at %s, %s (%.1f ms)%s%s\n",
		       j->ckpt, when, j->last_status ? "FAILED" : "ok",
		       j->last_usec / 1000., j->last_dir[0] ? " in " : "",
		       j->last_dir);
	else
		printf("  last checkpoint: none\n");
	if (j->nprocs)
		printf("  %6s %8s  %-20s %-10s %s\n", "RANK", "PID", "HOST",
		       "STATE", "LAST PHASE");
}

static void job_json(const struct isn_m_status_job *j, bool first)
{
	printf("%s{\"name\":", first ? "" : "]},");
	json_str(j->job);
	printf(",\"procs\":%u,\"agents\":%u,\"phase\":", j->nprocs, j->nagents);
	json_str(j->phase ? isn_phase_name(j->phase) : "running");
	printf(",\"checkpoint\":%u,\"last\":", j->ckpt);
	if (j->last_time) {
		printf("{\"id\":%u,\"status\":%d,\"time\":%llu,\"usec\":%llu,"
		       "\"downtime_usec\":",
		       j->ckpt, j->last_status,
		       (unsigned long long)j->last_time,
		       (unsigned long long)j->last_usec);
		/* null: the job did not resume (--stop), or an old daemon */
		if (j->last_downtime)
			printf("%llu", (unsigned long long)j->last_downtime);
		else
			printf("null");
		printf(",\"dir\":");
		json_str(j->last_dir);
		printf(",\"text\":");
		json_str(j->last_text);
		putchar('}');
	} else {
		printf("null");
	}
	printf(",\"processes\":[");
}

static void proc_out(const struct isn_m_status_proc *p, bool json, bool first)
{
	if (!json) {
		printf("  %6u %8u  %-20s %-10s %s\n", p->rank, p->pid, p->host,
		       state_name(p->state),
		       p->phase ? isn_phase_name(p->phase) : "-");
		return;
	}
	printf("%s{\"rank\":%u,\"pid\":%u,\"host\":", first ? "" : ",", p->rank,
	       p->pid);
	json_str(p->host);
	printf(",\"state\":\"%s\",\"phase\":\"%s\"}", state_name(p->state),
	       isn_phase_name(p->phase));
}

/* Print the STATUS_* stream; 0 or -errno. */
static int show(int fd, bool json)
{
	union {
		struct isn_m_status_job j;
		struct isn_m_status_proc p;
		struct isn_m_status_end e;
		struct isn_m_error err;
	} m;
	struct isn_rx rx;
	const void *payload;
	struct isn_hdr h;
	int ret, jobs = 0, procs = 0;

	isn_rx_init(&rx, ISN_MSG_MAX);
	for (;;) {
		ret = isn_coord_recv(fd, &rx, &h, &payload);
		if (ret < 0 || isn_msg_decode(h.type, payload, h.len, &m)) {
			ret = ret < 0 ? ret : -EPROTO;
			break;
		}
		if (h.type == ISN_MSG_ERROR) {
			fprintf(stderr, "ibsnap status: %s\n", m.err.text);
			ret = m.err.code ? m.err.code : -EIO;
			break;
		}
		if (h.type == ISN_MSG_STATUS_JOB) {
			if (json && !jobs)
				printf("{\"jobs\":[");
			json ? job_json(&m.j, !jobs) : job_table(&m.j);
			jobs++;
			procs = 0;
		} else if (h.type == ISN_MSG_STATUS_PROC) {
			proc_out(&m.p, json, !procs++);
		} else if (h.type == ISN_MSG_STATUS_END) {
			if (json)
				printf("%s\"daemon_pid\":%u}\n",
				       jobs ? "]}]," : "{\"jobs\":[],",
				       m.e.daemon_pid);
			else if (!jobs)
				printf("no job (ibsnapd pid %u)\n",
				       m.e.daemon_pid);
			ret = 0;
			break;
		}
	}
	isn_rx_free(&rx);
	return ret;
}

int isn_cmd_status(int argc, char **argv)
{
	struct isn_m_status_req m = { 0 };
	const char *coord = NULL, *job = NULL;
	bool json = false;
	struct isn_addr a;
	int i, fd, ret;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--job") && i + 1 < argc)
			job = argv[++i];
		else if (!strcmp(argv[i], "--coord") && i + 1 < argc)
			coord = argv[++i];
		else {
			fputs("usage: ibsnap status [--json] [--job NAME] "
			      "[--coord HOST:PORT]\n",
			      strcmp(argv[i], "-h") && strcmp(argv[i], "--"
								       "help") ?
				      stderr :
				      stdout);
			return strcmp(argv[i], "-h") && strcmp(argv[i], "--"
									"hel"
									"p") ?
				       2 :
				       0;
		}
	}
	if (isn_coord_addr(coord, &a))
		return 2;
	fd = isn_coord_dial("ibsnap status", &a, false);
	if (fd < 0)
		return 1;
	isn_strlcpy(m.job, job ? job : "", sizeof(m.job));
	if (isn_env_token(m.token))
		m.flags |= ISN_ST_TOKEN;
	m.flags |= ISN_ST_EXT; /* the downtime */
	ret = isn_send_msg(fd, ISN_MSG_STATUS_REQ, &m);
	if (!ret)
		ret = show(fd, json);
	close(fd);
	if (ret && ret != -EACCES && ret != -ENOENT)
		fprintf(stderr, "ibsnap status: %s\n", strerror(-ret));
	return ret ? 1 : 0;
}
