/* SPDX-License-Identifier: MIT */
/* ibsnapd: options, listening sockets, logging, idle exit. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "net.h"

static void vlog(const char *fmt, va_list ap)
{
	char msg[1024], stamp[32];
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%F %T", &tm);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	fprintf(stderr, "%s.%03ld ibsnapd[%d]: %s\n", stamp,
		ts.tv_nsec / 1000000, (int)getpid(), msg);
	fflush(stderr);
}

void isn_d_log(struct isn_d *d, const char *fmt, ...)
{
	va_list ap;

	(void)d;
	va_start(ap, fmt);
	vlog(fmt, ap);
	va_end(ap);
}

void isn_d_dbg(struct isn_d *d, const char *fmt, ...)
{
	va_list ap;

	if (!d->o.verbose)
		return;
	va_start(ap, fmt);
	vlog(fmt, ap);
	va_end(ap);
}

static void idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct isn_d *d = w->data;

	(void)revents;
	if (d->nconns || d->njobs)
		return;
	isn_d_log(d, "idle for %.0f s: exiting", d->o.idle_s);
	ev_break(loop, EVBREAK_ALL);
}

/* An implicitly started daemon exits once nothing has used it for a while. */
void isn_d_idle_check(struct isn_d *d)
{
	if (!d->o.implicit)
		return;
	if (d->nconns || d->njobs) {
		ev_timer_stop(d->loop, &d->idle);
		return;
	}
	if (!ev_is_active(&d->idle)) {
		ev_timer_set(&d->idle, d->o.idle_s, 0.);
		ev_timer_start(d->loop, &d->idle);
	}
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct isn_d *d = w->data;

	(void)loop;
	(void)revents;
	isn_conn_accept(d, w->fd, w == &d->unix_io);
	isn_d_idle_check(d);
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct isn_d *d = w->data;

	(void)revents;
	isn_d_log(d, "signal %d: exiting", w->signum);
	ev_break(loop, EVBREAK_ALL);
}

static int write_pid(int fd)
{
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());

	return ftruncate(fd, 0) || pwrite(fd, pid, n, 0) != n ? -EIO : 0;
}

/* The lock next to the socket says who owns it; it holds the pid. */
static int take_lock(struct isn_d *d)
{
	char path[ISN_PATH_MAX + 8];
	int fd;

	snprintf(path, sizeof(path), "%s.lock", d->o.sock);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		close(fd);
		return -EADDRINUSE;
	}
	if (write_pid(fd)) {
		close(fd);
		return -EIO;
	}
	d->lock_fd = fd;
	return 0;
}

static int listen_unix(struct isn_d *d)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, ret;

	if (strlen(d->o.sock) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	isn_strlcpy(sun.sun_path, d->o.sock, sizeof(sun.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(d->o.sock); /* stale: we hold the lock */
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) ||
	    chmod(d->o.sock, 0600) || listen(fd, 1024)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	ev_io_init(&d->unix_io, accept_cb, fd, EV_READ);
	d->unix_io.data = d;
	ev_io_start(d->loop, &d->unix_io);
	return 0;
}

static bool is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)
				      ->sin_addr.s_addr) >>
			24) == 127;
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(
			&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return false;
}

static int listen_tcp(struct isn_d *d)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE };
	struct addrinfo *res;
	struct isn_addr a;
	int fd, one = 1, ret;

	if (isn_addr_parse(d->o.listen, &a) || a.is_unix)
		return -EINVAL;
	if (getaddrinfo(a.host, a.port, &hints, &res))
		return -EADDRNOTAVAIL;
	if (!is_loopback(res->ai_addr) && !d->o.allow_remote) {
		freeaddrinfo(res);
		return -EPERM;
	}
	fd = socket(res->ai_family,
		    res->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		freeaddrinfo(res);
		return -errno;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ret = bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 1024) ?
		      -errno :
		      0;
	freeaddrinfo(res);
	if (ret) {
		close(fd);
		return ret;
	}
	ev_io_init(&d->tcp_io, accept_cb, fd, EV_READ);
	d->tcp_io.data = d;
	ev_io_start(d->loop, &d->tcp_io);
	return 0;
}

static void usage(FILE *out)
{
	fputs("usage: ibsnapd [OPTIONS]\n"
	      "\n"
	      "The ibsnap coordinator: jobs, their processes, checkpoint "
	      "phases.\n"
	      "\n"
	      "  -f, --foreground      stay in the foreground, log to stderr\n"
	      "  --sock PATH           Unix socket (default "
	      "$IBSNAP_COORD_SOCK, else\n"
	      "                        /run/ibsnap/ibsnapd.sock as root, "
	      "else\n"
	      "                        $XDG_RUNTIME_DIR/ibsnap/ibsnapd.sock)\n"
	      "  --listen HOST:PORT    also listen on TCP (loopback only)\n"
	      "  --allow-remote        let --listen take a non-loopback "
	      "address\n"
	      "  --log FILE            log file (default: stderr with -f, "
	      "else\n"
	      "                        ibsnapd.log next to the socket)\n"
	      "  --implicit            exit when idle (how ibsnap starts "
	      "it)\n"
	      "  --idle SECONDS        idle time before exiting (default 5)\n"
	      "  --phase-timeout S     a process that does not finish a "
	      "phase in S\n"
	      "                        seconds fails the checkpoint "
	      "(default 120)\n"
	      "  --dump-timeout S      the same for a host's CRIU dump "
	      "(default 3600)\n"
	      "                        (defaults from $IBSNAP_PHASE_TIMEOUT "
	      "and\n"
	      "                        $IBSNAP_DUMP_TIMEOUT: for tests)\n"
	      "  -v, --verbose         log every phase\n",
	      out);
}

static int parse_opts(struct isn_d *d, int argc, char **argv, bool *fg,
		      const char **log)
{
	static const struct option lo[] = {
		{ "foreground", no_argument, 0, 'f' },
		{ "sock", required_argument, 0, 's' },
		{ "listen", required_argument, 0, 'l' },
		{ "allow-remote", no_argument, 0, 'R' },
		{ "log", required_argument, 0, 'L' },
		{ "implicit", no_argument, 0, 'I' },
		{ "idle", required_argument, 0, 'i' },
		{ "phase-timeout", required_argument, 0, 'p' },
		{ "dump-timeout", required_argument, 0, 'D' },
		{ "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },
		{ 0 },
	};
	const char *pt = getenv("IBSNAP_PHASE_TIMEOUT");
	const char *dt = getenv("IBSNAP_DUMP_TIMEOUT");
	int c;

	/* an implicit daemon takes them from the ibsnap that starts it */
	if (pt && *pt)
		d->o.phase_timeout_s = atof(pt);
	if (dt && *dt)
		d->o.dump_timeout_s = atof(dt);
	while ((c = getopt_long(argc, argv, "fvh", lo, NULL)) != -1) {
		switch (c) {
		case 'f':
			*fg = true;
			break;
		case 's':
			isn_strlcpy(d->o.sock, optarg, sizeof(d->o.sock));
			break;
		case 'l':
			isn_strlcpy(d->o.listen, optarg, sizeof(d->o.listen));
			break;
		case 'R':
			d->o.allow_remote = true;
			break;
		case 'L':
			*log = optarg;
			break;
		case 'I':
			d->o.implicit = true;
			break;
		case 'i':
			d->o.idle_s = atof(optarg);
			break;
		case 'p':
			d->o.phase_timeout_s = atof(optarg);
			break;
		case 'D':
			d->o.dump_timeout_s = atof(optarg);
			break;
		case 'v':
			d->o.verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc || d->o.idle_s < 0 || d->o.phase_timeout_s <= 0 ||
	    d->o.dump_timeout_s <= 0) {
		usage(stderr);
		return -EINVAL;
	}
	if (!d->o.sock[0] && isn_default_sock(d->o.sock, sizeof(d->o.sock)))
		return -ENAMETOOLONG;
	return 0;
}

/* Log to @log (or ibsnapd.log beside the socket); detach unless @fg. */
static int setup_output(struct isn_d *d, bool fg, const char *log)
{
	char def[ISN_PATH_MAX + 16], *slash;
	int fd;

	if (!log && !fg) {
		isn_strlcpy(def, d->o.sock, sizeof(def));
		slash = strrchr(def, '/');
		strcpy(slash ? slash + 1 : def, "ibsnapd.log");
		log = def;
	}
	if (log) {
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd < 0)
			return -errno;
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	if (fg)
		return 0;
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		close(fd);
	}
	if (daemon(0, 1))
		return -errno;
	return 0;
}

static int serve(struct isn_d *d, bool fg, const char *log)
{
	int ret = isn_sock_dir_make(d->o.sock);

	if (!ret)
		ret = take_lock(d);
	if (ret == -EADDRINUSE) {
		if (!d->o.implicit)
			fprintf(stderr, "ibsnapd: another ibsnapd serves %s\n",
				d->o.sock);
		return d->o.implicit ? 0 : 1;
	}
	if (!ret)
		ret = listen_unix(d);
	if (ret) {
		fprintf(stderr, "ibsnapd: %s: %s\n", d->o.sock, strerror(-ret));
		return 1;
	}
	if (d->o.listen[0] && (ret = listen_tcp(d))) {
		fprintf(stderr, "ibsnapd: --listen %s: %s\n", d->o.listen,
			ret == -EPERM ? "not a loopback address (see "
					"--allow-remote)" :
					strerror(-ret));
		return 1;
	}
	ret = setup_output(d, fg, log);
	if (ret) {
		fprintf(stderr, "ibsnapd: %s: %s\n", log ? log : "log",
			strerror(-ret));
		return 1;
	}
	if (!fg) {
		/* daemon() forked: the lock is ours still, the pid is new */
		ev_loop_fork(d->loop);
		if (write_pid(d->lock_fd))
			isn_d_log(d, "cannot write the pid into the lock: %m");
	}
	isn_d_log(d, "listening on %s%s%s%s", d->o.sock,
		  d->o.listen[0] ? " and " : "", d->o.listen,
		  d->o.implicit ? " (exits when idle)" : "");
	isn_d_idle_check(d);
	ev_run(d->loop, 0);
	return 0;
}

int main(int argc, char **argv)
{
	struct isn_d d = { .lock_fd = -1,
			   .o = { .idle_s = 5,
				  .phase_timeout_s = 120,
				  .dump_timeout_s = 3600 } };
	const char *log = NULL;
	bool fg = false;
	int ret;

	if (parse_opts(&d, argc, argv, &fg, &log))
		return 2;
	d.loop = ev_default_loop(EVFLAG_AUTO);
	if (!d.loop) {
		fprintf(stderr, "ibsnapd: cannot start libev\n");
		return 1;
	}
	ev_timer_init(&d.idle, idle_cb, 0., 0.);
	d.idle.data = &d;
	ev_signal_init(&d.sigterm, signal_cb, SIGTERM);
	ev_signal_init(&d.sigint, signal_cb, SIGINT);
	d.sigterm.data = d.sigint.data = &d;
	ev_signal_start(d.loop, &d.sigterm);
	ev_signal_start(d.loop, &d.sigint);
	signal(SIGPIPE, SIG_IGN);

	ret = serve(&d, fg, log);

	isn_job_free_all(&d);
	isn_conn_destroy_all(&d);
	if (ev_is_active(&d.unix_io)) {
		close(d.unix_io.fd);
		unlink(d.o.sock);
	}
	if (ev_is_active(&d.tcp_io))
		close(d.tcp_io.fd);
	if (d.lock_fd >= 0)
		close(d.lock_fd);
	ev_loop_destroy(d.loop);
	return ret;
}
