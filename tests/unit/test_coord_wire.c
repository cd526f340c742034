/* SPDX-License-Identifier: MIT */
/*
 * ibsnapd against bad and foreign input: a private daemon (the build's
 * bin/ibsnapd) gets wrong tokens, versions, magics, lengths and truncated
 * messages; it must answer clearly, close that connection, and go on.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "net.h"
#include "proto.h"

static char dir[] = "/tmp/ibsnap-wire.XXXXXX";
static struct isn_addr addr;
static pid_t daemon_pid;

static int start_daemon(void **state)
{
	char exe[PATH_MAX], bin[PATH_MAX + 32], sock[PATH_MAX], log[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int i, fd;

	(void)state;
	if (n < 0 || !mkdtemp(dir))
		return -1;
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	snprintf(bin, sizeof(bin), "%s/../../bin/ibsnapd", exe);
	snprintf(sock, sizeof(sock), "%s/d.sock", dir);
	snprintf(log, sizeof(log), "%s/d.log", dir);
	daemon_pid = fork();
	if (daemon_pid == 0) {
		execl(bin, "ibsnapd", "-f", "--sock", sock, "--log", log,
		      (char *)NULL);
		_exit(127);
	}
	if (isn_addr_parse(sock, &addr))
		return -1;
	for (i = 0; i < 1000; i++) { /* until it listens (or 10 s) */
		fd = isn_connect(&addr);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		usleep(10000);
	}
	return -1;
}

static int stop_daemon(void **state)
{
	char cmd[128];
	int status;

	(void)state;
	kill(daemon_pid, SIGTERM);
	waitpid(daemon_pid, &status, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 && WIFEXITED(status) &&
			       WEXITSTATUS(status) == 0 ?
		       0 :
		       -1;
}

/* The next message's type (its ERROR into @err); -EPIPE at EOF. */
static int next(int fd, struct isn_rx *rx, struct isn_m_error *err,
		struct isn_m_registered *reg)
{
	const void *payload;
	struct isn_hdr h;
	int ret = isn_recv_msg(fd, rx, 10000, &h, &payload);

	if (ret <= 0)
		return ret ? ret : -ETIMEDOUT;
	if (h.type == ISN_MSG_ERROR)
		assert_int_equal(isn_msg_decode(h.type, payload, h.len, err),
				 0);
	if (h.type == ISN_MSG_REGISTERED)
		assert_int_equal(isn_msg_decode(h.type, payload, h.len, reg),
				 0);
	return h.type;
}

/* Send @len raw bytes and expect an ERROR with @code, then the close. */
static void expect_error(const void *raw, size_t len, int code,
			 const char *text)
{
	struct isn_m_registered reg;
	struct isn_m_error err;
	struct isn_rx rx;
	int fd = isn_connect(&addr);

	assert_true(fd >= 0);
	isn_rx_init(&rx, ISN_MSG_MAX);
	assert_int_equal(isn_write_all(fd, raw, len), 0);
	assert_int_equal(next(fd, &rx, &err, &reg), ISN_MSG_ERROR);
	assert_int_equal(err.code, code);
	assert_non_null(strstr(err.text, text));
	assert_int_equal(next(fd, &rx, &err, &reg), -EPIPE);
	isn_rx_free(&rx);
	close(fd);
}

static int do_register(const char *job, uint8_t tok_byte, int *fd_p,
		       struct isn_m_error *err, struct isn_m_registered *reg)
{
	struct isn_m_register m = { .pid = (uint32_t)getpid(),
				    .wake_fd = -1,
				    .rank = ISN_RANK_NEW };
	struct isn_rx rx;
	int ret;

	strcpy(m.job, job);
	strcpy(m.host, "unit");
	memset(m.token, tok_byte, ISN_TOKEN_LEN);
	*fd_p = isn_connect(&addr);
	assert_true(*fd_p >= 0);
	assert_int_equal(isn_send_msg(*fd_p, ISN_MSG_REGISTER, &m), 0);
	isn_rx_init(&rx, ISN_MSG_MAX);
	ret = next(*fd_p, &rx, err, reg);
	isn_rx_free(&rx);
	return ret;
}

static void test_token_mismatch(void **state)
{
	struct isn_m_registered reg;
	struct isn_m_error err;
	int a, b, c;

	(void)state;
	assert_int_equal(do_register("tj", 0x11, &a, &err, &reg),
			 ISN_MSG_REGISTERED);
	assert_int_equal(reg.rank, 0);
	assert_int_equal(do_register("tj", 0x22, &b, &err, &reg),
			 ISN_MSG_ERROR);
	assert_int_equal(err.code, -EACCES);
	assert_non_null(strstr(err.text, "token mismatch"));
	assert_int_equal(do_register("tj", 0x11, &c, &err, &reg),
			 ISN_MSG_REGISTERED);
	assert_int_equal(reg.rank, 1); /* ranks in registration order */
	close(a);
	close(b);
	close(c);
}

static void test_bad_version(void **state)
{
	uint8_t h[ISN_HDR_LEN];

	(void)state;
	isn_hdr_encode(h, ISN_MSG_STATUS_REQ, 0);
	h[4] = 7;
	expect_error(h, sizeof(h), -EPROTONOSUPPORT,
		     "protocol version 7 is not supported");
}

static void test_bad_magic(void **state)
{
	(void)state;
	expect_error("GET / HTTP/1.0\r\n\r\n", 18, -EBADMSG, "bad magic");
}

static void test_too_long(void **state)
{
	uint8_t h[ISN_HDR_LEN];

	(void)state;
	isn_hdr_encode(h, ISN_MSG_PUT, ISN_REQ_MAX + 1);
	expect_error(h, sizeof(h), -EMSGSIZE, "too long");
}

static void test_unknown_and_malformed(void **state)
{
	struct isn_m_register m = { .rank = ISN_RANK_NEW };
	struct isn_wbuf w = { 0 };
	uint8_t h[ISN_HDR_LEN];

	(void)state;
	isn_hdr_encode(h, 77, 0);
	expect_error(h, sizeof(h), -EPROTO, "unknown message type 77");
	strcpy(m.job, "j");
	assert_int_equal(isn_msg_encode(&w, ISN_MSG_REGISTER, &m), 0);
	/* a header that claims 3 bytes less: the payload is cut short */
	isn_hdr_encode(w.p, ISN_MSG_REGISTER, (uint32_t)(w.len - 15));
	expect_error(w.p, w.len - 3, -EPROTO, "malformed");
	isn_wbuf_free(&w);
}

/* Half a message, then the peer goes: the daemon serves on. */
static void test_truncated_then_gone(void **state)
{
	struct isn_m_registered reg;
	struct isn_m_error err;
	uint8_t h[ISN_HDR_LEN];
	int fd = isn_connect(&addr);

	(void)state;
	isn_hdr_encode(h, ISN_MSG_REGISTER, 100);
	assert_int_equal(isn_write_all(fd, h, 7), 0);
	close(fd);
	fd = isn_connect(&addr);
	isn_hdr_encode(h, ISN_MSG_REGISTER, 100);
	assert_int_equal(isn_write_all(fd, h, sizeof(h)), 0);
	assert_int_equal(isn_write_all(fd, "abc", 3), 0);
	close(fd);
	assert_int_equal(do_register("other", 0x33, &fd, &err, &reg),
			 ISN_MSG_REGISTERED);
	assert_int_equal(reg.rank, 0);
	close(fd);
}

/* STATUS_JOB's tail (the downtime) only for a STATUS_REQ that asks. */
static void status_job(bool ext, struct isn_m_status_job *j, uint32_t *len)
{
	struct isn_m_status_req m = { .flags = ISN_ST_TOKEN };
	const void *payload;
	struct isn_rx rx;
	struct isn_hdr h;
	int fd = isn_connect(&addr);

	assert_true(fd >= 0);
	strcpy(m.job, "st");
	memset(m.token, 0x44, ISN_TOKEN_LEN);
	if (ext)
		m.flags |= ISN_ST_EXT;
	assert_int_equal(isn_send_msg(fd, ISN_MSG_STATUS_REQ, &m), 0);
	isn_rx_init(&rx, ISN_MSG_MAX);
	assert_int_equal(isn_recv_msg(fd, &rx, 10000, &h, &payload), 1);
	assert_int_equal(h.type, ISN_MSG_STATUS_JOB);
	*len = h.len;
	memset(j, 0x5a, sizeof(*j));
	assert_int_equal(isn_msg_decode(h.type, payload, h.len, j), 0);
	isn_rx_free(&rx);
	close(fd);
}

static void test_status_ext(void **state)
{
	struct isn_m_registered reg;
	struct isn_m_status_job j;
	struct isn_m_error err;
	uint32_t plain, longer;
	int fd;

	(void)state;
	assert_int_equal(do_register("st", 0x44, &fd, &err, &reg),
			 ISN_MSG_REGISTERED);
	status_job(false, &j, &plain);
	assert_int_equal(j.ext, 0); /* what an older ibsnap status reads */
	assert_int_equal(j.nprocs, 1);
	status_job(true, &j, &longer);
	assert_int_equal(j.ext, ISN_EXT_1);
	assert_true(j.last_downtime == 0); /* no checkpoint yet */
	assert_int_equal(longer, plain + 2 + 4 + 8);
	close(fd);
}

/* CKPT_START's tail reaches the daemon: a relative stage is refused. */
static void test_stage_relative(void **state)
{
	struct isn_m_ckpt_start m = { .flags = ISN_CK_TOKEN, .ext = ISN_EXT_1 };
	struct isn_m_registered reg;
	struct isn_m_error err;
	struct isn_rx rx;
	int fd, p;

	(void)state;
	assert_int_equal(do_register("sr", 0x55, &p, &err, &reg),
			 ISN_MSG_REGISTERED);
	strcpy(m.job, "sr");
	memset(m.token, 0x55, ISN_TOKEN_LEN);
	strcpy(m.dir, "/abs");
	strcpy(m.stage, "relative");
	fd = isn_connect(&addr);
	assert_true(fd >= 0);
	assert_int_equal(isn_send_msg(fd, ISN_MSG_CKPT_START, &m), 0);
	isn_rx_init(&rx, ISN_MSG_MAX);
	assert_int_equal(next(fd, &rx, &err, &reg), ISN_MSG_ERROR);
	assert_int_equal(err.code, -EINVAL);
	assert_non_null(strstr(err.text, "stage (--stage) must be an "
					 "absolute"));
	isn_rx_free(&rx);
	close(fd);
	close(p);
}

/* JOB_OPEN of a restore (job "rs", token 0x66) from @host; its answer's
 * type, the ERROR in @err; the connection stays open in *@fd_p. */
static int restore_open(const char *job, const char *host, uint32_t ckpt,
			bool ask, int *fd_p, struct isn_m_error *err)
{
	struct isn_m_job_open m = { .pid = (uint32_t)getpid(),
				    .nranks = 2,
				    .ckpt = ckpt };
	struct isn_m_registered reg;
	struct isn_rx rx;
	int ret;

	strcpy(m.job, job);
	strcpy(m.host, host);
	memset(m.token, 0x66, ISN_TOKEN_LEN);
	m.flags = ISN_JOB_TOKEN | ISN_JOB_RESTORE |
		  (ask ? ISN_JOB_ASK_CKPT : 0);
	*fd_p = isn_connect(&addr);
	assert_true(*fd_p >= 0);
	assert_int_equal(isn_send_msg(*fd_p, ISN_MSG_JOB_OPEN, &m), 0);
	isn_rx_init(&rx, ISN_MSG_MAX);
	memset(err, 0x5a, sizeof(*err));
	ret = next(*fd_p, &rx, err, &reg);
	isn_rx_free(&rx);
	return ret;
}

/*
 * A restore of another checkpoint than the one under way: refused naming
 * it and the host that began it; the tail (checkpoint, host) only to an
 * agent that asks.  Once its agents are gone, a restore of another
 * checkpoint is taken.  A running job keeps its own refusal.
 */
static void test_restore_other_ckpt(void **state)
{
	struct isn_m_registered reg;
	struct isn_m_error err;
	int a, b, i, ret;

	(void)state;
	assert_int_equal(restore_open("rs", "node-a", 3, true, &a, &err),
			 ISN_MSG_JOB);
	assert_int_equal(restore_open("rs", "node-b", 2, false, &b, &err),
			 ISN_MSG_ERROR);
	assert_int_equal(err.code, -EBUSY);
	assert_string_equal(err.text, "job 'rs' is being restored from "
				      "checkpoint 3 (started from host "
				      "node-a): cannot restore checkpoint "
				      "2 into it");
	assert_int_equal(err.ext, 0); /* what an older agent reads */
	close(b);
	assert_int_equal(restore_open("rs", "node-b", 2, true, &b, &err),
			 ISN_MSG_ERROR);
	assert_int_equal(err.code, -EBUSY);
	assert_int_equal(err.ext, ISN_EXT_1);
	assert_int_equal(err.ckpt, 3);
	assert_string_equal(err.host, "node-a");
	close(b);
	assert_int_equal(restore_open("rs", "node-b", 3, true, &b, &err),
			 ISN_MSG_JOB);
	/* every restart gone: the restore ends now, not at the timeout */
	close(a);
	close(b);
	for (i = 0; i < 500; i++) { /* 5 s at most */
		ret = restore_open("rs", "node-b", 2, true, &b, &err);
		close(b);
		if (ret == ISN_MSG_JOB)
			break;
		assert_int_equal(err.ckpt, 3);
		usleep(10000);
	}
	assert_int_equal(ret, ISN_MSG_JOB);
	/* a running job: its own text, no tail */
	assert_int_equal(do_register("rr", 0x66, &a, &err, &reg),
			 ISN_MSG_REGISTERED);
	assert_int_equal(restore_open("rr", "node-b", 1, true, &b, &err),
			 ISN_MSG_ERROR);
	assert_int_equal(err.code, -EBUSY);
	assert_string_equal(err.text, "job 'rr' is running: cannot restore "
				      "checkpoint 1 into it");
	assert_int_equal(err.ext, 0);
	close(b);
	close(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token_mismatch),
		cmocka_unit_test(test_bad_version),
		cmocka_unit_test(test_bad_magic),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_unknown_and_malformed),
		cmocka_unit_test(test_truncated_then_gone),
		cmocka_unit_test(test_status_ext),
		cmocka_unit_test(test_stage_relative),
		cmocka_unit_test(test_restore_other_ckpt),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, start_daemon, stop_daemon);
}
