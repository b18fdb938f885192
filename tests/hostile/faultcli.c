/*
 * faultcli: an ordinary socket program for the fault tests, run under mwrun (it knows nothing of mwcomms).
 * Every line it prints is machine-checkable; times are CLOCK_MONOTONIC in ms ("t=...") so that the test can
 * compare them with the moment it killed mwinsd (Python's time.monotonic() reads the same clock, which a wall
 * clock step cannot move).
 *
 *   faultcli block HOST4 HOST6 SILENT SOURCE SINK ECHO TRIGGER NEW WAIT_S
 *       Connections held in every kind of blocked call: recv on an idle connection (to SILENT), send into a
 *       full one (SILENT never reads), recv of a running download (SOURCE), send of a running upload (SINK),
 *       poll, epoll_wait and select on idle ones, and idle ones no call is waiting on.  Prints "ready"
 *       once all are in place, then one line per socket when its call returns:
 *           sock N kind=K op=OP ret=R errno=E t=MS
 *       (poll kinds add "revents=..." and then report a recv on the socket).  Sockets still blocked after
 *       WAIT_S seconds are reported "still-blocked".  Then the idle sockets are tried without blocking.
 *       Then "waiting-trigger"; once the file TRIGGER exists (at most 60 s), NEW attempts of a fresh
 *       connection to ECHO, each "new N ok t=MS" or "new N fail step=S errno=E t=MS".  Ends with "sigpipe N"
 *       and "done".
 *   faultcli serve PORT STOPFILE
 *       A listener on [::]:PORT; writes "hello N PID\n" to each connection and closes it.  Accept errors are
 *       reported ("accept-error errno=E t=MS", the first few) and retried every 20 ms.  Ends when STOPFILE
 *       exists (at most 180 s).
 *   faultcli hold HOST PORT N BLACKHOLE
 *       N connections to HOST:PORT, a listener, five unconnected sockets, five non-blocking connects to
 *       BLACKHOLE:80 still in progress, and one thread in a blocking connect to it.  Prints "ready N" and
 *       sleeps (at most 120 s): the test kills it.
 *   faultcli churn HOST PORT COUNT SECONDS THREADS
 *       Connection churn: THREADS threads connect, read to EOF (the server closes at once) and close, until
 *       COUNT connections are done or SECONDS pass.  Prints "churn ok=N fail=F elapsed_ms=T".
 *   faultcli load HOST4 HOST6 PORT CONNS BYTES SECONDS
 *       CONNS concurrent connections to an echo server (alternating families), one epoll loop.  Each sends
 *       BYTES of its own pattern, half-closes, and checks every byte of the echo and the EOF after it.
 *       Prints "load ok conns=N bytes=B elapsed_ms=T", or each failure and "load failed ...".
 *   faultcli probe HOST PORT
 *       One connection to an echo server, 64 KiB there and back: "probe ok" (exit 0) or "probe fail ..." (1).
 *   faultcli waitnew HOST PORT TRIGGER NEW
 *       A probe ("before ok"), then "waiting-trigger", then NEW fresh probes once TRIGGER exists.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int sigpipes;

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&out_lock);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

static const char *ename(int e)
{
	switch (e) {
	case 0: return "0";
	case ECONNRESET: return "ECONNRESET";
	case EPIPE: return "EPIPE";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ECONNABORTED: return "ECONNABORTED";
	case ETIMEDOUT: return "ETIMEDOUT";
	case ENETUNREACH: return "ENETUNREACH";
	case EHOSTUNREACH: return "EHOSTUNREACH";
	case ENOTCONN: return "ENOTCONN";
	case EAGAIN: return "EAGAIN";
	case EINVAL: return "EINVAL";
	case EBADF: return "EBADF";
	case EIO: return "EIO";
	case EMFILE: return "EMFILE";
	case ENFILE: return "ENFILE";
	case EINTR: return "EINTR";
	case EINPROGRESS: return "EINPROGRESS";
	case EAFNOSUPPORT: return "EAFNOSUPPORT";
	case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
	case ENOBUFS: return "ENOBUFS";
	default: {
		static __thread char b[32];

		snprintf(b, sizeof(b), "E%d", e);
		return b;
	}
	}
}

static void on_sigpipe(int sig)
{
	(void)sig;
	atomic_fetch_add(&sigpipes, 1);
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int mkaddr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
		return AF_INET;
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
		return AF_INET6;
	}
	fprintf(stderr, "faultcli: bad address %s\n", host);
	exit(2);
}

/* A blocking connection to host:port; -errno on failure, *step names what failed. */
static int dial(const char *host, int port, const char **step)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = mkaddr(host, port, &ss, &len), fd;

	*step = "socket";
	fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	*step = "connect";
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

/* 64 KiB there and back through an echo server: 0, or -errno with *step. */
static int probe_fd(int fd, const char **step)
{
	static __thread char out[65536], in[65536];
	size_t sent = 0, got = 0;

	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (char)(i * 7 + 3);
	*step = "send";
	while (sent < sizeof(out)) {
		ssize_t n = send(fd, out + sent, sizeof(out) - sent, 0);

		if (n < 0)
			return -errno;
		sent += (size_t)n;
		/* read as we go, so neither side's buffers have to hold it all */
		while (got < sent) {
			ssize_t m = recv(fd, in + got, sizeof(in) - got, MSG_DONTWAIT);

			if (m < 0 && errno == EAGAIN)
				break;
			*step = "recv";
			if (m <= 0)
				return m == 0 ? -EPIPE : -errno;
			got += (size_t)m;
			*step = "send";
		}
	}
	*step = "recv";
	while (got < sizeof(in)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t m;

		if (poll(&p, 1, 5000) != 1)
			return -ETIMEDOUT;
		m = recv(fd, in + got, sizeof(in) - got, 0);
		if (m <= 0)
			return m == 0 ? -EPIPE : -errno;
		got += (size_t)m;
	}
	*step = "verify";
	return memcmp(in, out, sizeof(in)) ? -EIO : 0;
}

static int probe(const char *host, int port, const char **step)
{
	int fd = dial(host, port, step), err;

	if (fd < 0)
		return fd;
	err = probe_fd(fd, step);
	close(fd);
	return err;
}

static int wait_file(const char *path, int seconds)
{
	uint64_t end = mono_ms() + (uint64_t)seconds * 1000;

	while (access(path, F_OK) != 0) {
		if (mono_ms() > end)
			return -1;
		usleep(20000);
	}
	return 0;
}

static void new_attempts(const char *host, int port, int n, const char *tag)
{
	for (int i = 0; i < n; i++) {
		const char *step = "";
		int err = probe(host, port, &step);

		if (!err)
			say("%s %d ok t=%llu", tag, i, (unsigned long long)mono_ms());
		else
			say("%s %d fail step=%s errno=%s t=%llu", tag, i, step, ename(-err),
			    (unsigned long long)mono_ms());
	}
}

/* ------------------------------------------------------------------ block */

enum kind { K_IDLE_RECV, K_FULL_SEND, K_STREAM_RECV, K_STREAM_SEND, K_POLL, K_EPOLL, K_SELECT, K_IDLE };

static const char *kind_name[] = { "idle-recv", "full-send", "stream-recv", "stream-send",
				   "poll",      "epoll",     "select",      "idle" };

struct blk {
	int n;
	enum kind kind;
	int fd;
	atomic_int entered;       /* about to make (or in) its blocking call */
	_Atomic uint64_t progress; /* bytes moved so far */
	atomic_int done;
	pthread_t th;
};

static void report_io(struct blk *b, const char *op, ssize_t ret, int err, const char *extra)
{
	say("sock %d kind=%s op=%s ret=%zd errno=%s t=%llu%s", b->n, kind_name[b->kind], op, ret,
	    ret < 0 ? ename(err) : "0", (unsigned long long)mono_ms(), extra);
}

static void *blk_thread(void *arg)
{
	static char junk[65536];
	struct blk *b = arg;
	ssize_t n;
	char extra[96];

	switch (b->kind) {
	case K_IDLE_RECV:
		atomic_store(&b->entered, 1);
		n = recv(b->fd, junk, sizeof(junk), 0);
		report_io(b, "recv", n, errno, "");
		break;
	case K_FULL_SEND:
	case K_STREAM_SEND:
		for (;;) {
			atomic_store(&b->entered, 1);
			n = send(b->fd, junk, sizeof(junk), 0);
			if (n <= 0)
				break;
			atomic_fetch_add(&b->progress, (uint64_t)n);
		}
		report_io(b, "send", n, errno, "");
		break;
	case K_STREAM_RECV:
		for (;;) {
			atomic_store(&b->entered, 1);
			n = recv(b->fd, junk, sizeof(junk), 0);
			if (n <= 0)
				break;
			atomic_fetch_add(&b->progress, (uint64_t)n);
		}
		report_io(b, "recv", n, errno, "");
		break;
	case K_POLL: {
		struct pollfd p = { .fd = b->fd, .events = POLLIN };

		atomic_store(&b->entered, 1);
		n = poll(&p, 1, -1);
		snprintf(extra, sizeof(extra), " revents=%#x", (unsigned)p.revents);
		report_io(b, "poll", n, errno, extra);
		n = recv(b->fd, junk, sizeof(junk), MSG_DONTWAIT);
		report_io(b, "recv", n, errno, "");
		break;
	}
	case K_EPOLL: {
		int ep = epoll_create1(EPOLL_CLOEXEC);
		struct epoll_event e = { .events = EPOLLIN | EPOLLRDHUP }, got = { 0 };

		epoll_ctl(ep, EPOLL_CTL_ADD, b->fd, &e);
		atomic_store(&b->entered, 1);
		n = epoll_wait(ep, &got, 1, -1);
		snprintf(extra, sizeof(extra), " events=%#x", (unsigned)got.events);
		report_io(b, "epoll_wait", n, errno, extra);
		n = recv(b->fd, junk, sizeof(junk), MSG_DONTWAIT);
		report_io(b, "recv", n, errno, "");
		close(ep);
		break;
	}
	case K_SELECT: {
		fd_set rs;

		FD_ZERO(&rs);
		if (b->fd < FD_SETSIZE) {
			FD_SET(b->fd, &rs);
			atomic_store(&b->entered, 1);
			n = select(b->fd + 1, &rs, NULL, NULL, NULL);
			report_io(b, "select", n, errno, "");
			n = recv(b->fd, junk, sizeof(junk), MSG_DONTWAIT);
			report_io(b, "recv", n, errno, "");
		}
		break;
	}
	case K_IDLE:
		break;
	}
	atomic_store(&b->done, 1);
	return NULL;
}

static int cmd_block(char **a)
{
	const char *h4 = a[0], *h6 = a[1], *trigger = a[6];
	int silent = atoi(a[2]), source = atoi(a[3]), sink = atoi(a[4]), echo = atoi(a[5]);
	int nnew = atoi(a[7]), wait_s = atoi(a[8]);
	static const enum kind plan[] = { K_IDLE_RECV,   K_IDLE_RECV,   K_FULL_SEND, K_FULL_SEND, K_STREAM_RECV,
					  K_STREAM_RECV, K_STREAM_SEND, K_STREAM_SEND, K_POLL,    K_EPOLL,
					  K_SELECT,      K_IDLE,        K_IDLE };
	enum { NB = sizeof(plan) / sizeof(plan[0]) };
	struct blk b[NB];
	uint64_t last[NB], end;
	int still = 0;

	memset(b, 0, sizeof(b));
	for (int i = 0; i < NB; i++) {
		const char *step = "";
		int port = plan[i] == K_STREAM_RECV ? source : plan[i] == K_STREAM_SEND ? sink : silent;

		b[i].n = i;
		b[i].kind = plan[i];
		b[i].fd = dial(i % 2 ? h6 : h4, port, &step);
		if (b[i].fd < 0) {
			say("setup failed: sock %d %s: %s", i, step, ename(-b[i].fd));
			return 1;
		}
	}
	for (int i = 0; i < NB; i++) {
		if (b[i].kind != K_IDLE)
			pthread_create(&b[i].th, NULL, blk_thread, &b[i]);
	}
	/* Ready when every thread is in its call, the streams are flowing, and the full senders have stalled. */
	end = mono_ms() + 20000;
	memset(last, 0, sizeof(last));
	for (;;) {
		int ok = 1;

		usleep(300000);
		for (int i = 0; i < NB; i++) {
			uint64_t p = atomic_load(&b[i].progress);

			if (b[i].kind != K_IDLE && !atomic_load(&b[i].entered))
				ok = 0;
			if ((b[i].kind == K_STREAM_RECV || b[i].kind == K_STREAM_SEND) && p < (1u << 20))
				ok = 0;
			if (b[i].kind == K_FULL_SEND && (p == 0 || p != last[i]))
				ok = 0;
			if (atomic_load(&b[i].done)) {
				say("setup failed: sock %d (%s) ended early", i, kind_name[b[i].kind]);
				return 1;
			}
			last[i] = p;
		}
		if (ok)
			break;
		if (mono_ms() > end) {
			say("setup failed: not all sockets got going in 20 s");
			return 1;
		}
	}
	say("ready t=%llu", (unsigned long long)mono_ms());
	/* Wait for every blocked call to come back, at most wait_s. */
	end = mono_ms() + (uint64_t)wait_s * 1000;
	for (;;) {
		int left = 0;

		for (int i = 0; i < NB; i++)
			left += b[i].kind != K_IDLE && !atomic_load(&b[i].done);
		if (!left || mono_ms() > end)
			break;
		usleep(10000);
	}
	for (int i = 0; i < NB; i++) {
		if (b[i].kind != K_IDLE && !atomic_load(&b[i].done)) {
			say("sock %d kind=%s still-blocked", i, kind_name[b[i].kind]);
			still++;
		}
	}
	/* The idle sockets: nobody was waiting on them; the next calls must fail too, at once. */
	for (int i = 0; i < NB; i++) {
		char buf[16];
		struct pollfd p = { .fd = b[i].fd, .events = POLLIN | POLLOUT };
		ssize_t n;

		if (b[i].kind != K_IDLE)
			continue;
		n = poll(&p, 1, 0);
		say("sock %d kind=idle op=poll ret=%zd revents=%#x", i, n, (unsigned)p.revents);
		n = recv(b[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
		report_io(&b[i], "recv", n, errno, "");
		/* MSG_NOSIGNAL: after the recv above reported the error, a TCP send would raise SIGPIPE too */
		n = send(b[i].fd, "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
		report_io(&b[i], "send", n, errno, "");
	}
	if (trigger[0] && strcmp(trigger, "-")) {
		say("waiting-trigger");
		if (wait_file(trigger, 60) < 0)
			say("trigger never came");
		else
			new_attempts(h4, echo, nnew, "new");
	}
	say("sigpipe %d", atomic_load(&sigpipes));
	say("done");
	/* Threads still blocked (a failure already reported) must not keep us alive. */
	fflush(stdout);
	_exit(still ? 3 : 0);
}

/* ------------------------------------------------------------------ serve */

static int cmd_serve(int port, const char *stopfile)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port) };
	int lfd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, zero = 0, errors = 0;
	uint64_t end = mono_ms() + 180000;
	unsigned long served = 0;

	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 128) < 0) {
		say("listen failed: %s", ename(errno));
		return 1;
	}
	say("listening %d", port);
	while (access(stopfile, F_OK) != 0 && mono_ms() < end) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		char msg[64];
		int c, len;

		if (poll(&p, 1, 100) < 1)
			continue;
		c = accept(lfd, NULL, NULL);
		if (c < 0) {
			if (errors++ < 5)
				say("accept-error errno=%s t=%llu", ename(errno), (unsigned long long)mono_ms());
			usleep(20000);
			continue;
		}
		served++;
		len = snprintf(msg, sizeof(msg), "hello %lu %d\n", served, (int)getpid());
		if (send(c, msg, (size_t)len, MSG_NOSIGNAL) != len)
			say("send-error errno=%s", ename(errno));
		close(c);
		say("served %lu t=%llu", served, (unsigned long long)mono_ms());
	}
	say("accept-errors %d", errors);
	say("done");
	return 0;
}

/* ------------------------------------------------------------------ hold */

static void *blocking_connect(void *arg)
{
	const char *host = arg;
	const char *step;
	int fd = dial(host, 80, &step);

	say("blocking-connect returned %s", fd < 0 ? ename(-fd) : "0");
	return NULL;
}

static int cmd_hold(const char *host, int port, int n, const char *blackhole)
{
	int *fds = calloc((size_t)n, sizeof(int)), lfd;
	struct sockaddr_storage ss;
	socklen_t len;
	pthread_t th;

	raise_nofile();
	for (int i = 0; i < n; i++) {
		const char *step;

		fds[i] = dial(host, port, &step);
		if (fds[i] < 0) {
			say("setup failed: conn %d %s: %s", i, step, ename(-fds[i]));
			return 1;
		}
	}
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || listen(lfd, 16) < 0) {
		say("setup failed: listen %s", ename(errno));
		return 1;
	}
	for (int i = 0; i < 5; i++) {
		if (socket(AF_INET6, SOCK_STREAM, 0) < 0) {
			say("setup failed: socket %s", ename(errno));
			return 1;
		}
	}
	mkaddr(blackhole, 80, &ss, &len);
	for (int i = 0; i < 5; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

		if (fd < 0 || (connect(fd, (struct sockaddr *)&ss, len) == 0 || errno != EINPROGRESS)) {
			say("setup failed: nonblocking connect %s", ename(errno));
			return 1;
		}
	}
	pthread_create(&th, NULL, blocking_connect, (void *)blackhole);
	usleep(200000);
	say("ready %d", n);
	sleep(120);
	return 0;
}

/* ------------------------------------------------------------------ churn */

struct churn {
	const char *host;
	int port;
	atomic_long *left, *ok, *fail;
	uint64_t end;
};

static void *churn_thread(void *arg)
{
	struct churn *c = arg;
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = mkaddr(c->host, c->port, &ss, &len);

	while (atomic_fetch_sub(c->left, 1) > 0 && mono_ms() < c->end) {
		int fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0), err = 0;
		char b[16];
		ssize_t n = -1;

		if (fd < 0) {
			err = errno;
		} else if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
			err = errno;
		} else {
			/* the server closes at once: read its EOF, so that it is the one left in TIME_WAIT */
			n = recv(fd, b, sizeof(b), 0);
			if (n != 0)
				err = n < 0 ? errno : EPROTO;
		}
		if (fd >= 0)
			close(fd);
		if (err) {
			long f = atomic_fetch_add(c->fail, 1);

			if (f < 5)
				say("churn failure errno=%s", ename(err));
		} else {
			atomic_fetch_add(c->ok, 1);
		}
	}
	return NULL;
}

static int cmd_churn(const char *host, int port, long count, int seconds, int nth)
{
	atomic_long left = count, ok = 0, fail = 0;
	struct churn c = { host, port, &left, &ok, &fail, 0 };
	pthread_t th[64];
	uint64_t start = mono_ms();

	if (nth < 1 || nth > 64)
		nth = 4;
	c.end = start + (uint64_t)seconds * 1000;
	for (int i = 0; i < nth; i++)
		pthread_create(&th[i], NULL, churn_thread, &c);
	for (int i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	say("churn ok=%ld fail=%ld elapsed_ms=%llu", atomic_load(&ok), atomic_load(&fail),
	    (unsigned long long)(mono_ms() - start));
	return 0;
}

/* ------------------------------------------------------------------ load */

static uint64_t splitmix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ULL;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

/* Byte i of connection c's pattern: every connection's stream is its own. */
static void pattern(int c, uint64_t off, unsigned char *buf, size_t len)
{
	uint64_t word = off >> 3, w = splitmix(((uint64_t)c << 40) ^ word);
	unsigned sh = (unsigned)(off & 7);

	for (size_t i = 0; i < len; i++) {
		buf[i] = (unsigned char)(w >> (sh * 8));
		if (++sh == 8) {
			sh = 0;
			w = splitmix(((uint64_t)c << 40) ^ ++word);
		}
	}
}

struct lconn {
	int fd;
	uint64_t sent, got;
	int connected, shut, eof, failed;
};

static int cmd_load(const char *h4, const char *h6, int port, int conns, uint64_t bytes, int seconds)
{
	static unsigned char buf[65536], exp[65536];
	struct lconn *cs = calloc((size_t)conns, sizeof(*cs));
	int ep = epoll_create1(EPOLL_CLOEXEC), left = conns, failures = 0;
	uint64_t start = mono_ms(), end = start + (uint64_t)seconds * 1000, total = 0;

	raise_nofile();
	for (int i = 0; i < conns; i++) {
		struct sockaddr_storage ss;
		socklen_t len;
		int fam = mkaddr(i % 2 ? h6 : h4, port, &ss, &len);
		struct epoll_event e = { .events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)i };

		cs[i].fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (cs[i].fd < 0 || (connect(cs[i].fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS)) {
			say("load conn %d setup: %s", i, ename(errno));
			return 1;
		}
		epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &e);
	}
	while (left && mono_ms() < end) {
		struct epoll_event evs[256];
		int n = epoll_wait(ep, evs, 256, 1000);

		for (int k = 0; k < n; k++) {
			int i = (int)evs[k].data.u32;
			struct lconn *c = &cs[i];

			if (c->failed || c->eof)
				continue;
			if (!c->connected && (evs[k].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
				int err = 0;
				socklen_t l = sizeof(err);

				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
				if (err) {
					say("load conn %d connect: %s", i, ename(err));
					c->failed = 1;
					failures++;
					left--;
					epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
					continue;
				}
				c->connected = 1;
			}
			if (!c->connected)
				continue;
			/* send: as much as fits */
			while (c->sent < bytes && (evs[k].events & EPOLLOUT)) {
				size_t want = bytes - c->sent < sizeof(buf) ? (size_t)(bytes - c->sent) : sizeof(buf);
				ssize_t m;

				pattern(i, c->sent, buf, want);
				m = send(c->fd, buf, want, MSG_NOSIGNAL);
				if (m < 0) {
					if (errno != EAGAIN) {
						say("load conn %d send at %llu: %s", i, (unsigned long long)c->sent,
						    ename(errno));
						c->failed = 1;
					}
					break;
				}
				c->sent += (uint64_t)m;
				total += (uint64_t)m;
			}
			if (!c->failed && c->sent == bytes && !c->shut) {
				struct epoll_event e = { .events = EPOLLIN, .data.u32 = (uint32_t)i };

				shutdown(c->fd, SHUT_WR);
				c->shut = 1;
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
			}
			/* receive and check */
			while (!c->failed) {
				ssize_t m = recv(c->fd, buf, sizeof(buf), 0);

				if (m < 0) {
					if (errno != EAGAIN) {
						say("load conn %d recv at %llu: %s", i, (unsigned long long)c->got,
						    ename(errno));
						c->failed = 1;
					}
					break;
				}
				if (m == 0) {
					if (c->got != bytes) {
						say("load conn %d early EOF at %llu of %llu", i,
						    (unsigned long long)c->got, (unsigned long long)bytes);
						c->failed = 1;
					} else {
						c->eof = 1;
					}
					break;
				}
				if (c->got + (uint64_t)m > bytes) {
					say("load conn %d got %llu bytes, more than the %llu sent", i,
					    (unsigned long long)(c->got + (uint64_t)m), (unsigned long long)bytes);
					c->failed = 1;
					break;
				}
				pattern(i, c->got, exp, (size_t)m);
				if (memcmp(buf, exp, (size_t)m) != 0) {
					size_t at = 0;

					while (buf[at] == exp[at])
						at++;
					say("load conn %d corrupt at byte %llu", i, (unsigned long long)(c->got + at));
					c->failed = 1;
					break;
				}
				c->got += (uint64_t)m;
				total += (uint64_t)m;
			}
			if (c->failed || c->eof) {
				failures += c->failed;
				left--;
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
			}
		}
	}
	if (left) {
		int shown = 0;

		for (int i = 0; i < conns; i++) {
			if (!cs[i].failed && !cs[i].eof && shown++ < 10)
				say("load conn %d unfinished: sent %llu got %llu", i, (unsigned long long)cs[i].sent,
				    (unsigned long long)cs[i].got);
		}
	}
	if (failures || left) {
		say("load failed conns=%d failed=%d unfinished=%d elapsed_ms=%llu", conns, failures, left - 0,
		    (unsigned long long)(mono_ms() - start));
		return 1;
	}
	say("load ok conns=%d bytes=%llu elapsed_ms=%llu", conns, (unsigned long long)total,
	    (unsigned long long)(mono_ms() - start));
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_sigpipe };

	sigaction(SIGPIPE, &sa, NULL);
	if (argc < 2)
		goto usage;
	if (!strcmp(argv[1], "block") && argc == 11)
		return cmd_block(argv + 2);
	if (!strcmp(argv[1], "serve") && argc == 4)
		return cmd_serve(atoi(argv[2]), argv[3]);
	if (!strcmp(argv[1], "hold") && argc == 6)
		return cmd_hold(argv[2], atoi(argv[3]), atoi(argv[4]), argv[5]);
	if (!strcmp(argv[1], "churn") && argc == 7)
		return cmd_churn(argv[2], atoi(argv[3]), atol(argv[4]), atoi(argv[5]), atoi(argv[6]));
	if (!strcmp(argv[1], "load") && argc == 8)
		return cmd_load(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]), strtoull(argv[6], NULL, 0),
				atoi(argv[7]));
	if (!strcmp(argv[1], "probe") && argc == 4) {
		const char *step = "";
		int err = probe(argv[2], atoi(argv[3]), &step);

		if (err)
			say("probe fail step=%s errno=%s", step, ename(-err));
		else
			say("probe ok");
		return err ? 1 : 0;
	}
	if (!strcmp(argv[1], "waitnew") && argc == 6) {
		const char *step = "";
		int err = probe(argv[2], atoi(argv[3]), &step);

		if (err)
			say("before fail step=%s errno=%s", step, ename(-err));
		else
			say("before ok");
		say("waiting-trigger");
		if (wait_file(argv[4], 60) < 0) {
			say("trigger never came");
			return 1;
		}
		new_attempts(argv[2], atoi(argv[3]), atoi(argv[5]), "new");
		say("done");
		return 0;
	}
usage:
	fprintf(stderr, "usage: see the comment at the top of faultcli.c\n");
	return 2;
}
