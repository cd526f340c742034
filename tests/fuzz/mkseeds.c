/* SPDX-License-Identifier: MIT */
/*
 * Writes the seed corpus of fuzz_proto into DIR: one well-formed message of
 * every type (with and without its extension tail), and a few streams of
 * several messages, each file led by fuzz_proto's read-size byte.
 *   mkseeds DIR      (make fuzz-seeds)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static const char *dir;

static void put_file(const char *name, uint8_t step, const struct isn_wbuf *w)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fputc(step, f) == EOF || fwrite(w->p, 1, w->len, f) != w->len ||
	    fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void one(const char *name, uint16_t type, const void *m)
{
	struct isn_wbuf w = { 0 };

	if (isn_msg_encode(&w, type, m)) {
		fprintf(stderr, "cannot encode %s\n", name);
		exit(1);
	}
	put_file(name, 0, &w);
	isn_wbuf_free(&w);
}

int main(int argc, char **argv)
{
	static const uint32_t cl[] = { 0, 100, 7, 1, 101, 7 };
	static const uint32_t ino[] = { 1234, 0, 5678, 0 };
	static const uint32_t trees[] = { 0x55667788, 0x11223344, 9, 0 };
	static const uint32_t ranks[] = { 0, 1 };
	static const uint8_t blob[] = "drain state of rank 0";
	struct isn_m_register reg = { .pid = 42, .agent = 0x1122334455667788ull,
				      .wake_fd = 7, .wake_ino = 99,
				      .rank = ISN_RANK_NEW };
	struct isn_m_ckpt_begin cb = { .ckpt = 3, .nranks = 2,
				       .clients = { 6, cl, NULL },
				       .inos = { 4, ino, NULL } };
	struct isn_m_ckpt_start cs = { .flags = ISN_CK_TOKEN };
	struct isn_m_status_job sj = { .nprocs = 2, .nagents = 1, .ckpt = 3 };
	struct isn_m_wake wk = { .ckpt = 3, .flags = ISN_WK_COMMIT };
	struct isn_all_src all[2] = { { 0, sizeof(blob), blob },
				      { 1, 0, NULL } };
	struct isn_wbuf w = { 0 };
	int i;

	if (argc != 2) {
		fprintf(stderr, "usage: mkseeds DIR\n");
		return 2;
	}
	dir = argv[1];
	strcpy(reg.job, "job-a");
	strcpy(reg.host, "node1");
	for (i = 0; i < ISN_TOKEN_LEN; i++)
		reg.token[i] = (uint8_t)(i * 17);
	one("error", ISN_MSG_ERROR,
	    &(struct isn_m_error){ .code = -13, .text = "token mismatch" });
	/* extension 1: the checkpoint being restored, and from which host */
	one("error_ext", ISN_MSG_ERROR,
	    &(struct isn_m_error){ .code = -16,
				   .text = "being restored",
				   .ext = ISN_EXT_1,
				   .ckpt = 3,
				   .host = "node2" });
	one("register", ISN_MSG_REGISTER, &reg);
	one("registered", ISN_MSG_REGISTERED,
	    &(struct isn_m_registered){ 1, 2, ISN_RG_DRIVEN });
	one("retry", ISN_MSG_RETRY, &(struct isn_m_retry){ 200, "busy" });
	one("phase", ISN_MSG_PHASE, &(struct isn_m_phase){ 5, 3, 2, 1 });
	one("ack", ISN_MSG_ACK, &(struct isn_m_ack){ 5, 2, 0, 1500, "ok" });
	one("put", ISN_MSG_PUT,
	    &(struct isn_m_put){ 6, { sizeof(blob), blob } });
	one("xfail", ISN_MSG_XFAIL, &(struct isn_m_xfail){ 6, -107, "lost" });
	one("detach", ISN_MSG_DETACH, &(struct isn_m_detach){ 3 });
	one("bye", ISN_MSG_BYE, &(struct isn_m_bye){ 0 });
	one("job_open", ISN_MSG_JOB_OPEN,
	    &(struct isn_m_job_open){ "job-a", { 1, 2, 3 }, "node1", 77,
				      ISN_JOB_TOKEN | ISN_JOB_RESTORE, 2, 3,
				      9 });
	one("job", ISN_MSG_JOB,
	    &(struct isn_m_job){ "job-a", { 1, 2, 3 }, 9, 3 });
	strcpy(cb.dir, "/ckpt/dir");
	one("ckpt_begin", ISN_MSG_CKPT_BEGIN, &cb);
	cb.ext = ISN_EXT_1;
	strcpy(cb.stage, "/dev/shm/stage");
	one("ckpt_begin_ext", ISN_MSG_CKPT_BEGIN, &cb);
	/* the extension's tree list: two agents' ids, (lo, hi) pairs */
	cb.trees = (struct isn_u32s){ 4, trees, NULL };
	one("ckpt_begin_trees", ISN_MSG_CKPT_BEGIN, &cb);
	one("dump", ISN_MSG_DUMP, &(struct isn_m_dump){ 3, ISN_CK_STOP });
	one("dump_done", ISN_MSG_DUMP_DONE,
	    &(struct isn_m_dump_done){ 3, -5, 100, "criu dump exited with 1" });
	wk.ranks = (struct isn_u32s){ 2, cl, NULL };
	one("wake", ISN_MSG_WAKE, &wk);
	/* extension 1: the processes' (rank, pid, wake fd) and inodes */
	wk.ranks = (struct isn_u32s){ 2, ranks, NULL };
	wk.ext = ISN_EXT_1;
	wk.clients = (struct isn_u32s){ 6, cl, NULL };
	wk.inos = (struct isn_u32s){ 4, ino, NULL };
	one("wake_ext", ISN_MSG_WAKE, &wk);
	one("wake_done", ISN_MSG_WAKE_DONE,
	    &(struct isn_m_wake_done){ 3, { 1, cl + 1, NULL } });
	one("exit", ISN_MSG_EXIT, &(struct isn_m_exit){ 0 });
	one("job_end", ISN_MSG_JOB_END, &(struct isn_m_job_end){ 137 });
	strcpy(cs.job, "job-a");
	strcpy(cs.dir, "/ckpt/dir");
	one("ckpt_start", ISN_MSG_CKPT_START, &cs);
	cs.ext = ISN_EXT_1;
	strcpy(cs.stage, "/dev/shm/stage");
	one("ckpt_start_ext", ISN_MSG_CKPT_START, &cs);
	one("ckpt_progress", ISN_MSG_CKPT_PROGRESS,
	    &(struct isn_m_ckpt_progress){ 3, 2, 0, 10, "drain" });
	one("ckpt_end", ISN_MSG_CKPT_END,
	    &(struct isn_m_ckpt_end){ 3, 0, 123456, "done" });
	one("status_req", ISN_MSG_STATUS_REQ,
	    &(struct isn_m_status_req){ "", { 0 }, ISN_ST_EXT });
	strcpy(sj.job, "job-a");
	one("status_job", ISN_MSG_STATUS_JOB, &sj);
	sj.ext = ISN_EXT_1;
	sj.last_downtime = 4242;
	one("status_job_ext", ISN_MSG_STATUS_JOB, &sj);
	one("status_proc", ISN_MSG_STATUS_PROC,
	    &(struct isn_m_status_proc){ 0, 42, "node1", 2, ISN_PS_IN_CKPT });
	one("status_end", ISN_MSG_STATUS_END,
	    &(struct isn_m_status_end){ 1000, 1 });
	if (isn_all_encode(&w, 6, all, 2))
		return 1;
	put_file("all", 0, &w);
	isn_wbuf_free(&w);
	/* a process's conversation, read 7 bytes at a time */
	isn_msg_encode(&w, ISN_MSG_REGISTER, &reg);
	isn_msg_encode(&w, ISN_MSG_ACK,
		       &(struct isn_m_ack){ 1, 1, 0, 10, "" });
	isn_msg_encode(&w, ISN_MSG_PUT,
		       &(struct isn_m_put){ 2, { sizeof(blob), blob } });
	isn_msg_encode(&w, ISN_MSG_BYE, &(struct isn_m_bye){ 0 });
	put_file("stream_proc", 7, &w);
	isn_wbuf_free(&w);
	/* a controller's, read whole */
	isn_msg_encode(&w, ISN_MSG_STATUS_REQ,
		       &(struct isn_m_status_req){ "job-a", { 0 }, 0 });
	isn_msg_encode(&w, ISN_MSG_CKPT_START, &cs);
	put_file("stream_ctl", 0, &w);
	isn_wbuf_free(&w);
	return 0;
}
