/*
 * hostile: a control-channel client that breaks the rules on purpose.  It speaks include/mwcomms/proto.h
 * directly (no shim) to an mwinsd rendezvous socket and prints one machine-checkable line per attempt:
 *
 *     case NAME disconnected          mwinsd hung up on us (EOF or ECONNRESET)
 *     case NAME rsp ret=N [...]       mwinsd answered with ret N (0 or -errno)
 *     case NAME connected             neither, within the wait (a violation that went unnoticed)
 *     case NAME error WHAT            this program could not even make the attempt
 *
 * plus informational lines (no "case " prefix).  Exit status 0 once every attempt was made (whatever the
 * outcomes), 2 on bad usage, 3 if the rendezvous socket can't be reached.
 *
 *   hostile SOCK malformed           truncated, oversized, odd-length, empty and wrong-version messages,
 *                                    requests before HELLO, HELLO twice: each on a fresh connection
 *   hostile SOCK unknown             unknown and reserved commands: -ENOTSUP, and the connection stays up
 *   hostile SOCK badargs             valid frames with garbage arguments: negative errnos, still connected
 *   hostile SOCK badids              socket ids never created, out of range, and stale: -EBADF
 *   hostile SOCK fds                 descriptors where none belong (disconnect), several at once
 *                                    (disconnect), the wrong kind with IDENTIFY (-ENOENT) and with a
 *                                    nonblocking CONNECT (-EINVAL)
 *   hostile SOCK victim ADDR PORT TRIGGER
 *                                    makes a socket connected to ADDR:PORT (an echo server) and an unbound
 *                                    one, prints "victim ids ID1 ID2", waits (at most 60 s) for the file
 *                                    TRIGGER to exist, then checks both are untouched: "victim ok" or
 *                                    "victim damaged WHAT"
 *   hostile SOCK attack ADDR PORT ID...
 *                                    names each ID (from another group) with every command that takes one
 *   hostile SOCK peek ID             one GETSOCKOPT(SO_TYPE) on ID (a control: same group may, others not)
 *   hostile SOCK flood KIND COUNT SECONDS
 *                                    sends up to COUNT requests of KIND (unknown|socket|getsockopt) and
 *                                    never reads the answers; prints "flood sent=N outcome=..." and then
 *                                    "flood drained=N" (answers left in the socket when we finally read)
 *   hostile SOCK limit SECONDS [TRIGGER]
 *                                    opens sockets until SOCKET fails (kept open), prints
 *                                    "limit opened=N nslots=S err=E elapsed_ms=T", then checks the
 *                                    connection still works and that closing some frees slots again;
 *                                    with TRIGGER, prints "limit holding" and keeps them all until the file
 *                                    TRIGGER exists (at most 60 s)
 *   hostile SOCK conns MAX SECONDS TRIGGER
 *                                    opens up to MAX control connections, each saying HELLO, until one is not
 *                                    accepted or answered; prints "conns opened=N answered=M stop=WHY ..."
 *                                    and "conns holding", and keeps them until TRIGGER exists (at most 60 s)
 *
 * Group = network namespace: run two of these with `unshare -n` to be two groups.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <linux/sockios.h>
#include <time.h>
#include <unistd.h>

#include "mwcomms/page.h"
#include "mwcomms/proto.h"

#define WAIT_MS 3000 /* how long we wait for mwinsd to answer or hang up */

static const char *sock_path;
static uint32_t next_req = 1;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static int chan_open(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(sock_path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "hostile: socket path too long\n");
		exit(3);
	}
	strcpy(sun.sun_path, sock_path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "hostile: cannot connect to %s: %s\n", sock_path, strerror(errno));
		exit(3);
	}
	return fd;
}

/* Send len bytes of buf with nfd descriptors.  Returns 0 or -errno. */
static int send_raw(int fd, const void *buf, size_t len, const int *fds, int nfd, int flags)
{
	char ctl[CMSG_SPACE(sizeof(int) * 253)];
	struct iovec iov = { (void *)buf, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfd > 0) {
		struct cmsghdr *c;

		memset(ctl, 0, sizeof(ctl));
		m.msg_control = ctl;
		m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfd);
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfd);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfd);
	}
	if (sendmsg(fd, &m, flags | MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}

static int send_req(int fd, struct mw_req *q, int pass_fd)
{
	if (!q->req_id)
		q->req_id = next_req++;
	return send_raw(fd, q, sizeof(*q), &pass_fd, pass_fd >= 0 ? 1 : 0, 0);
}

enum outcome { OUT_RSP, OUT_DISC, OUT_TIMEOUT, OUT_BAD };

/* Wait for one message.  *rfd gets a descriptor that came with it (or -1); rsp may be NULL. */
static enum outcome wait_msg(int fd, int ms, struct mw_rsp *rsp, int *rfd, ssize_t *lenp)
{
	struct mw_rsp r;
	char ctl[CMSG_SPACE(sizeof(int) * 16)];
	struct iovec iov = { &r, sizeof(r) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	if (rfd)
		*rfd = -1;
	if (poll(&p, 1, ms) <= 0)
		return OUT_TIMEOUT;
	n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE)))
		return OUT_DISC;
	if (n < 0)
		return errno == EAGAIN ? OUT_TIMEOUT : OUT_DISC;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int nfd = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));

			for (int i = 0; i < nfd; i++) {
				int x;

				memcpy(&x, CMSG_DATA(c) + (size_t)i * sizeof(int), sizeof(int));
				if (rfd && *rfd < 0)
					*rfd = x;
				else
					close(x);
			}
		}
	}
	if (lenp)
		*lenp = n;
	if (n != (ssize_t)sizeof(r) || r.version != MW_PROTO_VERSION)
		return OUT_BAD;
	if (rsp)
		*rsp = r;
	return OUT_RSP;
}

/* One request, one answer.  Returns the outcome; *rsp and *rfd as wait_msg. */
static enum outcome call(int fd, struct mw_req *q, int pass_fd, struct mw_rsp *rsp, int *rfd)
{
	int err;

	q->version = q->version ? q->version : MW_PROTO_VERSION;
	q->req_id = 0;
	err = send_req(fd, q, pass_fd);
	if (err == -EPIPE || err == -ECONNRESET)
		return OUT_DISC;
	if (err)
		return OUT_BAD;
	for (;;) {
		struct mw_rsp r;
		enum outcome o = wait_msg(fd, WAIT_MS, &r, rfd, NULL);

		if (o != OUT_RSP)
			return o;
		if (r.req_id == q->req_id) {
			if (rsp)
				*rsp = r;
			return OUT_RSP;
		}
		/* someone else's answer (flood leftovers): skip it */
		if (rfd && *rfd >= 0) {
			close(*rfd);
			*rfd = -1;
		}
	}
}

static const char *outcome_str(enum outcome o, const struct mw_rsp *r, char *buf, size_t len)
{
	switch (o) {
	case OUT_RSP:
		snprintf(buf, len, "rsp ret=%d", r->ret);
		return buf;
	case OUT_DISC:
		return "disconnected";
	case OUT_TIMEOUT:
		return "connected";
	default:
		return "error bad-response";
	}
}

/* After a violation: did mwinsd hang up?  Any answer is reported as what it is. */
static void expect_after(int fd, const char *name)
{
	struct mw_rsp r;
	char b[64];
	int rfd;
	enum outcome o = wait_msg(fd, WAIT_MS, &r, &rfd, NULL);

	if (rfd >= 0)
		close(rfd);
	if (o == OUT_RSP) {
		/* It answered the violation.  Did it hang up after all? */
		enum outcome o2 = wait_msg(fd, 300, NULL, &rfd, NULL);

		if (rfd >= 0)
			close(rfd);
		say("case %s %s%s", name, outcome_str(o, &r, b, sizeof(b)), o2 == OUT_DISC ? " then-disconnected" : "");
		return;
	}
	say("case %s %s", name, outcome_str(o, &r, b, sizeof(b)));
}

/* HELLO; returns nslots (0 on failure, reported). *memfd gets the page if wanted. */
static uint32_t hello(int fd, int *memfd, uint32_t *group)
{
	struct mw_req q = { .cmd = MW_CMD_HELLO };
	struct mw_rsp r;
	int rfd;
	char b[64];
	enum outcome o = call(fd, &q, -1, &r, &rfd);

	if (o != OUT_RSP || r.ret != 0 || rfd < 0) {
		say("hello failed: %s fd=%d", outcome_str(o, &r, b, sizeof(b)), rfd);
		if (rfd >= 0)
			close(rfd);
		return 0;
	}
	if (memfd)
		*memfd = rfd;
	else
		close(rfd);
	if (group)
		*group = r.u.hello.group;
	return r.u.hello.nslots;
}

static int chan_hello(void)
{
	int fd = chan_open();

	if (!hello(fd, NULL, NULL)) {
		fprintf(stderr, "hostile: HELLO failed\n");
		exit(3);
	}
	return fd;
}

/* SOCKET; returns the id (0 on failure) and the carrier end in *car. */
static uint32_t mksock(int fd, int domain, int *car)
{
	struct mw_req q = { .cmd = MW_CMD_SOCKET };
	struct mw_rsp r;
	int rfd;

	q.u.socket.domain = domain;
	q.u.socket.type = SOCK_STREAM;
	if (call(fd, &q, -1, &r, &rfd) != OUT_RSP || r.ret != 0 || rfd < 0) {
		if (rfd >= 0)
			close(rfd);
		return 0;
	}
	*car = rfd;
	return r.sock_id;
}

static int parse_addr(const char *host, const char *port, struct mw_addr *a)
{
	memset(a, 0, sizeof(*a));
	a->port = htons((uint16_t)atoi(port));
	if (inet_pton(AF_INET, host, a->addr) == 1) {
		a->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, host, a->addr) == 1) {
		a->family = AF_INET6;
		return 0;
	}
	return -1;
}

/* Is the connection still serving?  A GETSOCKOPT on an id that can't exist must come back -EBADF. */
static void still_connected(int fd, const char *name)
{
	struct mw_req q = { .cmd = MW_CMD_GETSOCKOPT, .sock_id = 0 };
	struct mw_rsp r;
	char b[64];
	enum outcome o;

	q.u.opt.level = SOL_SOCKET;
	q.u.opt.name = SO_TYPE;
	q.u.opt.len = sizeof(int);
	o = call(fd, &q, -1, &r, NULL);
	say("case %s %s", name, outcome_str(o, &r, b, sizeof(b)));
}

/* ------------------------------------------------------------------ malformed frames */

static void frame_case(const char *name, bool do_hello, const void *buf, size_t len)
{
	int fd = chan_open(), err;

	if (do_hello && !hello(fd, NULL, NULL)) {
		say("case %s error hello", name);
		close(fd);
		return;
	}
	err = send_raw(fd, buf, len, NULL, 0, 0);
	if (err == -EPIPE || err == -ECONNRESET) {
		say("case %s disconnected", name);
	} else if (err) {
		say("case %s error send %s", name, strerror(-err));
	} else {
		expect_after(fd, name);
	}
	close(fd);
}

static void cmd_malformed(void)
{
	/* around the one right size, sizeof(struct mw_req), and far from it */
	static const size_t S = sizeof(struct mw_req);
	const size_t sizes[] = { 1, 2, 3, 15, 16, 17, 100, 143, S / 2, S - 1, S + 1, S + 2, 2 * S - 1, 2 * S,
				 4096, 65535 };
	static char big[65536];
	struct mw_req q;
	char name[64];

	for (int h = 0; h < 2; h++) {
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			/* a plausible request, cut short or padded out */
			memset(big, 0, sizeof(big));
			memset(&q, 0, sizeof(q));
			q.version = MW_PROTO_VERSION;
			q.cmd = h ? MW_CMD_SOCKET : MW_CMD_HELLO;
			q.req_id = 77;
			q.u.socket.domain = AF_INET;
			q.u.socket.type = SOCK_STREAM;
			memcpy(big, &q, sizeof(q));
			snprintf(name, sizeof(name), "size-%zu-%s", sizes[i], h ? "after-hello" : "as-hello");
			frame_case(name, h, big, sizes[i]);
		}
		snprintf(name, sizeof(name), "empty-%s", h ? "after-hello" : "as-hello");
		frame_case(name, h, big, 0);
	}
	/* wrong versions, well-formed otherwise */
	{
		static const uint16_t versions[] = { 0, MW_PROTO_VERSION - 1, MW_PROTO_VERSION + 1, 0x100, 0xffff };

		for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
			memset(&q, 0, sizeof(q));
			q.version = versions[i];
			q.cmd = MW_CMD_HELLO;
			snprintf(name, sizeof(name), "version-%u-hello", versions[i]);
			frame_case(name, false, &q, sizeof(q));
			memset(&q, 0, sizeof(q));
			q.version = versions[i];
			q.cmd = MW_CMD_SOCKET;
			q.u.socket.domain = AF_INET;
			q.u.socket.type = SOCK_STREAM;
			snprintf(name, sizeof(name), "version-%u-after-hello", versions[i]);
			frame_case(name, true, &q, sizeof(q));
		}
	}
	/* request flags: unknown bits, and "no reply" on a command whose answer carries its result */
	{
		static const struct { uint16_t cmd; uint32_t flags; const char *name; } fl[] = {
			{ MW_CMD_SETSOCKOPT, 1U << 2, "flags-unknown-bit" },
			{ MW_CMD_SETSOCKOPT, 0x80000000U, "flags-high-bit" },
			{ MW_CMD_GETSOCKOPT, MW_REQ_NOREPLY, "noreply-getsockopt" },
			{ MW_CMD_SOCKET, MW_REQ_NOREPLY, "noreply-socket" },
			{ MW_CMD_CONNECT, MW_REQ_NOREPLY, "noreply-connect-blocking" },
			{ MW_CMD_SETSOCKOPT, MW_REQ_IDLE, "idle-setsockopt" },
			{ MW_CMD_CONNECT, MW_REQ_IDLE, "idle-connect" },
			{ MW_CMD_SOCKET, MW_REQ_IDLE | MW_REQ_NOREPLY, "idle-noreply-socket" },
		};

		for (size_t i = 0; i < sizeof(fl) / sizeof(fl[0]); i++) {
			memset(&q, 0, sizeof(q));
			q.version = MW_PROTO_VERSION;
			q.cmd = fl[i].cmd;
			q.flags = fl[i].flags;
			q.sock_id = 0x10001;
			q.u.socket.domain = AF_INET;
			q.u.socket.type = SOCK_STREAM;
			frame_case(fl[i].name, true, &q, sizeof(q));
		}
	}
	/* requests before HELLO */
	{
		static const uint16_t cmds[] = { MW_CMD_SOCKET, MW_CMD_CONNECT, MW_CMD_GETSOCKOPT, MW_CMD_IOCTL,
						 MW_CMD_RELEASE, 99 };

		for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
			memset(&q, 0, sizeof(q));
			q.version = MW_PROTO_VERSION;
			q.cmd = cmds[i];
			q.sock_id = 0x10001;
			q.u.socket.domain = AF_INET;
			q.u.socket.type = SOCK_STREAM;
			snprintf(name, sizeof(name), "before-hello-cmd-%u", cmds[i]);
			frame_case(name, false, &q, sizeof(q));
		}
	}
	/* HELLO twice */
	memset(&q, 0, sizeof(q));
	q.version = MW_PROTO_VERSION;
	q.cmd = MW_CMD_HELLO;
	frame_case("hello-twice", true, &q, sizeof(q));
	/* and still serving */
	{
		int fd = chan_open(), car = -1;
		uint32_t id;

		id = hello(fd, NULL, NULL) ? mksock(fd, AF_INET, &car) : 0;
		say("sanity %s", id ? "ok" : "failed");
		if (car >= 0)
			close(car);
		close(fd);
	}
	/* a request that may wait (MW_REQ_IDLE) is still answered, with its carrier */
	{
		struct mw_req iq = { .cmd = MW_CMD_SOCKET, .flags = MW_REQ_IDLE };
		struct mw_rsp r;
		int fd = chan_open(), rfd = -1;
		bool ok;

		iq.u.socket.domain = AF_INET;
		iq.u.socket.type = SOCK_STREAM;
		ok = hello(fd, NULL, NULL) && call(fd, &iq, -1, &r, &rfd) == OUT_RSP && r.ret == 0 && rfd >= 0;
		say("idle-socket %s", ok ? "answered" : "unanswered");
		if (rfd >= 0)
			close(rfd);
		close(fd);
	}
}

/* ------------------------------------------------------------------ unknown commands */

static void cmd_unknown(void)
{
	/* the reserved PV Calls commands, gaps below HELLO, and values far beyond the last command */
	static const uint16_t cmds[] = { MW_CMD_RELEASE, MW_CMD_ACCEPT, 7, 8, 9, 15, 17, 100,
					 255, 256, 0x7fff, 0x8000, 0xfffe, 0xffff };
	int fd = chan_hello(), car = -1;
	uint32_t id = mksock(fd, AF_INET, &car);
	char name[64], b[64];

	if (!id)
		say("case setup error socket");
	for (int with_id = 0; with_id < 2; with_id++) {
		for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
			struct mw_req q = { .cmd = cmds[i], .sock_id = with_id ? id : 0 };
			struct mw_rsp r;
			enum outcome o;

			memset(q.u.raw, 0xa5, sizeof(q.u.raw));
			o = call(fd, &q, -1, &r, NULL);
			snprintf(name, sizeof(name), "unknown-%u%s", cmds[i], with_id ? "-own-id" : "");
			say("case %s %s", name, outcome_str(o, &r, b, sizeof(b)));
			if (o == OUT_DISC) {
				close(fd);
				fd = chan_hello();
			}
		}
	}
	still_connected(fd, "still-connected");
	{
		int car2 = -1;
		uint32_t id2 = mksock(fd, AF_INET6, &car2);

		say("case socket-after-unknown %s", id2 ? "rsp ret=0" : "failed");
		if (car2 >= 0)
			close(car2);
	}
	if (car >= 0)
		close(car);
	close(fd);
}

/* ------------------------------------------------------------------ garbage arguments */

static void arg_case(int fd, const char *name, struct mw_req *q)
{
	struct mw_rsp r;
	int rfd;
	char b[64];
	enum outcome o = call(fd, q, -1, &r, &rfd);

	if (rfd >= 0)
		close(rfd);
	say("case %s %s", name, outcome_str(o, &r, b, sizeof(b)));
}

static void cmd_badargs(void)
{
	int fd = chan_hello(), car = -1;
	uint32_t id = mksock(fd, AF_INET, &car);
	struct mw_req q;

	if (!id)
		say("case setup error socket");
#define Q(c) (memset(&q, 0, sizeof(q)), q.cmd = (c), q.sock_id = id)
	Q(MW_CMD_SOCKET);
	q.sock_id = 0;
	q.u.socket.domain = 12345;
	q.u.socket.type = SOCK_STREAM;
	arg_case(fd, "socket-domain-12345", &q);
	Q(MW_CMD_SOCKET);
	q.sock_id = 0;
	q.u.socket.domain = AF_UNIX;
	q.u.socket.type = SOCK_STREAM;
	arg_case(fd, "socket-domain-unix", &q);
	Q(MW_CMD_SOCKET);
	q.sock_id = 0;
	q.u.socket.domain = AF_INET;
	q.u.socket.type = SOCK_RAW;
	arg_case(fd, "socket-type-raw", &q);
	Q(MW_CMD_SOCKET);
	q.sock_id = 0;
	q.u.socket.domain = AF_INET;
	q.u.socket.type = 0x7fffffff;
	arg_case(fd, "socket-type-huge", &q);
	Q(MW_CMD_SOCKET);
	q.sock_id = 0;
	q.u.socket.domain = AF_INET;
	q.u.socket.type = SOCK_STREAM;
	q.u.socket.protocol = IPPROTO_UDP;
	arg_case(fd, "socket-proto-udp-on-stream", &q);
	Q(MW_CMD_BIND);
	q.u.addr.family = 0xffff;
	arg_case(fd, "bind-family-ffff", &q);
	Q(MW_CMD_BIND);
	q.u.addr.family = AF_INET6;
	arg_case(fd, "bind-family-mismatch", &q);
	Q(MW_CMD_CONNECT);
	q.u.connect.addr.family = 0;
	arg_case(fd, "connect-family-0", &q);
	Q(MW_CMD_CONNECT);
	q.u.connect.addr.family = AF_INET;
	q.u.connect.addr.port = htons(1);
	q.u.connect.flags = 0x80;
	arg_case(fd, "connect-unknown-flag", &q);
	Q(MW_CMD_SETSOCKOPT);
	q.u.opt.level = SOL_SOCKET;
	q.u.opt.name = SO_KEEPALIVE;
	q.u.opt.len = 0xffffffffU;
	arg_case(fd, "setsockopt-len-huge", &q);
	Q(MW_CMD_SETSOCKOPT);
	q.u.opt.level = SOL_SOCKET;
	q.u.opt.name = SO_BINDTODEVICE;
	q.u.opt.len = 4;
	memcpy(q.u.opt.val, "lo", 3);
	arg_case(fd, "setsockopt-bindtodevice", &q);
	Q(MW_CMD_SETSOCKOPT);
	q.u.opt.level = 0x7fffffff;
	q.u.opt.name = 1;
	q.u.opt.len = 4;
	arg_case(fd, "setsockopt-level-huge", &q);
	Q(MW_CMD_GETSOCKOPT);
	q.u.opt.level = SOL_SOCKET;
	q.u.opt.name = SO_TYPE;
	q.u.opt.len = MW_OPT_MAX + 1;
	arg_case(fd, "getsockopt-len-over-max", &q);
	Q(MW_CMD_GETSOCKOPT);
	q.u.opt.level = SOL_SOCKET;
	q.u.opt.name = SO_ATTACH_FILTER;
	q.u.opt.len = 16;
	arg_case(fd, "getsockopt-attach-filter", &q);
	Q(MW_CMD_SHUTDOWN);
	q.u.shutdown.how = 99;
	arg_case(fd, "shutdown-how-99", &q);
	Q(MW_CMD_IOCTL);
	q.u.ioctl.request = 0xdeadbeef;
	arg_case(fd, "ioctl-request-bogus", &q);
	Q(MW_CMD_IOCTL);
	q.u.ioctl.request = FIONBIO;
	arg_case(fd, "ioctl-fionbio", &q);
	Q(MW_CMD_DGRAM_CHECK);
	q.u.addr.family = AF_INET;
	arg_case(fd, "dgram-check-on-stream", &q);
	Q(MW_CMD_LISTEN);
	q.u.listen.backlog = -1;
	q.sock_id = 0;
	arg_case(fd, "listen-id-0", &q);
#undef Q
	still_connected(fd, "still-connected");
	if (car >= 0)
		close(car);
	close(fd);
}

/* ------------------------------------------------------------------ ids not ours */

static const uint16_t id_cmds[] = { MW_CMD_CONNECT,    MW_CMD_BIND,     MW_CMD_LISTEN, MW_CMD_SETSOCKOPT,
				    MW_CMD_GETSOCKOPT, MW_CMD_SHUTDOWN, MW_CMD_IOCTL,  MW_CMD_DGRAM_CHECK };

static const char *cmd_name(uint16_t c)
{
	switch (c) {
	case MW_CMD_CONNECT: return "connect";
	case MW_CMD_BIND: return "bind";
	case MW_CMD_LISTEN: return "listen";
	case MW_CMD_SETSOCKOPT: return "setsockopt";
	case MW_CMD_GETSOCKOPT: return "getsockopt";
	case MW_CMD_SHUTDOWN: return "shutdown";
	case MW_CMD_IOCTL: return "ioctl";
	case MW_CMD_DGRAM_CHECK: return "dgram-check";
	default: return "?";
	}
}

/* A request of command c naming id, with plausible arguments (aimed at addr when it needs one). */
static void id_req(struct mw_req *q, uint16_t c, uint32_t id, const struct mw_addr *addr)
{
	memset(q, 0, sizeof(*q));
	q->cmd = c;
	q->sock_id = id;
	switch (c) {
	case MW_CMD_CONNECT:
		q->u.connect.addr = *addr;
		break;
	case MW_CMD_BIND:
		q->u.addr.family = addr->family;
		break;
	case MW_CMD_LISTEN:
		q->u.listen.backlog = 16;
		break;
	case MW_CMD_SETSOCKOPT: {
		struct linger lg = { 1, 0 }; /* would turn the victim's close into a reset */

		q->u.opt.level = SOL_SOCKET;
		q->u.opt.name = SO_LINGER;
		q->u.opt.len = sizeof(lg);
		memcpy(q->u.opt.val, &lg, sizeof(lg));
		break;
	}
	case MW_CMD_GETSOCKOPT:
		q->u.opt.level = SOL_SOCKET;
		q->u.opt.name = SO_TYPE;
		q->u.opt.len = sizeof(int);
		break;
	case MW_CMD_SHUTDOWN:
		q->u.shutdown.how = SHUT_RD;
		break;
	case MW_CMD_IOCTL:
		q->u.ioctl.request = SIOCOUTQ;
		break;
	case MW_CMD_DGRAM_CHECK:
		q->u.addr = *addr;
		break;
	}
}

static void name_ids(int fd, const char *prefix, const uint32_t *ids, size_t nids, const struct mw_addr *addr)
{
	char name[96], b[64];

	for (size_t i = 0; i < nids; i++) {
		for (size_t k = 0; k < sizeof(id_cmds) / sizeof(id_cmds[0]); k++) {
			struct mw_req q;
			struct mw_rsp r;
			int rfd;
			enum outcome o;

			id_req(&q, id_cmds[k], ids[i], addr);
			o = call(fd, &q, -1, &r, &rfd);
			if (rfd >= 0)
				close(rfd);
			snprintf(name, sizeof(name), "%s-%#x-%s", prefix, ids[i], cmd_name(id_cmds[k]));
			say("case %s %s", name, outcome_str(o, &r, b, sizeof(b)));
			if (o == OUT_DISC)
				return;
		}
	}
}

static void cmd_badids(void)
{
	int fd = chan_hello(), car = -1;
	uint32_t nslots = 16384;
	struct mw_addr a = { .family = AF_INET, .port = htons(9) };
	uint32_t ids[] = { 0, 1, 0xffff, 0x10000, 0x10001, 0x20001, 0xffff0001, 0xffffffff, 0x13fff, 0x14000,
			   0x1fffe };
	uint32_t stale, cur;

	a.addr[0] = 127;
	a.addr[3] = 1;
	name_ids(fd, "never", ids, sizeof(ids) / sizeof(ids[0]), &a);
	(void)nslots;

	/* A stale id: a socket we made and closed.  mwinsd frees it when the carrier hangs up. */
	stale = mksock(fd, AF_INET, &car);
	if (!stale) {
		say("case stale error socket");
	} else {
		struct mw_req q;
		struct mw_rsp r;
		uint64_t end;

		close(car);
		car = -1;
		end = now_ms() + 2000;
		do {
			usleep(10000);
			id_req(&q, MW_CMD_GETSOCKOPT, stale, &a);
			if (call(fd, &q, -1, &r, NULL) != OUT_RSP)
				break;
		} while (r.ret == 0 && now_ms() < end);
		say("stale id %#x freed: %s", stale, r.ret == -EBADF ? "yes" : "no");
		name_ids(fd, "stale", &stale, 1, &a);
		/* The same slot with the neighbouring generations. */
		{
			uint32_t gens[] = { stale + 0x10000, stale - 0x10000 };

			name_ids(fd, "stale-gen", gens, 2, &a);
		}
	}
	/* Our live socket must still answer (the ids above were refused, not crashing anything). */
	cur = mksock(fd, AF_INET, &car);
	{
		struct mw_req q;
		struct mw_rsp r;
		char b[64];
		enum outcome o;

		id_req(&q, MW_CMD_GETSOCKOPT, cur, &a);
		o = call(fd, &q, -1, &r, NULL);
		say("case own-id %s", cur ? outcome_str(o, &r, b, sizeof(b)) : "error socket");
	}
	if (car >= 0)
		close(car);
	close(fd);
}

/* ------------------------------------------------------------------ two groups */

static int page_rec(const void *page, uint32_t nslots, uint32_t id, struct mw_sock_rec *out)
{
	const struct mw_sock_rec *recs = (const void *)((const char *)page + sizeof(struct mw_page_hdr));
	uint32_t slot = MW_SOCK_SLOT(id);

	if (slot >= nslots)
		return -1;
	for (int i = 0; i < 100; i++) {
		uint32_t s1 = __atomic_load_n(&recs[slot].seq, __ATOMIC_ACQUIRE), s2;

		memcpy(out, (const void *)&recs[slot], sizeof(*out));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		s2 = __atomic_load_n(&recs[slot].seq, __ATOMIC_RELAXED);
		if (s1 == s2 && !(s1 & 1))
			return 0;
		usleep(1000);
	}
	return -1;
}

static int getopt_int(int fd, uint32_t id, int level, int name, int *val)
{
	struct mw_req q = { .cmd = MW_CMD_GETSOCKOPT, .sock_id = id };
	struct mw_rsp r;

	q.u.opt.level = level;
	q.u.opt.name = name;
	q.u.opt.len = sizeof(int);
	if (call(fd, &q, -1, &r, NULL) != OUT_RSP)
		return -EPIPE;
	if (r.ret)
		return r.ret;
	memcpy(val, r.u.opt.val, sizeof(int));
	return 0;
}

static void cmd_victim(const char *host, const char *port, const char *trigger)
{
	int memfd = -1, fd = chan_open(), car1 = -1, car2 = -1, lingerv = 0;
	uint32_t nslots = hello(fd, &memfd, NULL), id1, id2;
	struct mw_addr a;
	struct mw_req q;
	struct mw_rsp r;
	struct mw_sock_rec rec;
	struct linger lg;
	void *page;
	char buf[64], damage[512] = "";
	uint64_t end;

	if (!nslots || parse_addr(host, port, &a) < 0) {
		say("victim setup failed");
		exit(1);
	}
	page = mmap(NULL, mw_page_size(nslots), PROT_READ, MAP_SHARED, memfd, 0);
	id1 = mksock(fd, a.family, &car1);
	id2 = mksock(fd, a.family, &car2);
	memset(&q, 0, sizeof(q));
	q.cmd = MW_CMD_CONNECT;
	q.sock_id = id1;
	q.u.connect.addr = a;
	if (page == MAP_FAILED || !id1 || !id2 || call(fd, &q, -1, &r, NULL) != OUT_RSP || r.ret != 0) {
		say("victim setup failed: connect ret=%d", r.ret);
		exit(1);
	}
	say("victim ids %#x %#x", id1, id2);
	end = now_ms() + 60000;
	while (access(trigger, F_OK) != 0 && now_ms() < end)
		usleep(20000);
	/* 1. the connected socket still carries bytes both ways, and was not shut for reading */
	{
		static const char msg[] = "victim-ping-0123456789";
		size_t got = 0;
		struct pollfd p = { .fd = car1, .events = POLLIN };

		if (send(car1, msg, sizeof(msg) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(msg) - 1)
			strcat(damage, " send-failed");
		while (got < sizeof(msg) - 1 && poll(&p, 1, 3000) == 1) {
			ssize_t n = recv(car1, buf + got, sizeof(buf) - got, 0);

			if (n <= 0)
				break;
			got += (size_t)n;
		}
		if (got != sizeof(msg) - 1 || memcmp(buf, msg, got) != 0)
			strcat(damage, " echo-failed");
	}
	/* 2. options the attacker tried to set are as we left them */
	memset(&q, 0, sizeof(q));
	q.cmd = MW_CMD_GETSOCKOPT;
	q.sock_id = id1;
	q.u.opt.level = SOL_SOCKET;
	q.u.opt.name = SO_LINGER;
	q.u.opt.len = sizeof(lg);
	if (call(fd, &q, -1, &r, NULL) != OUT_RSP || r.ret != 0) {
		strcat(damage, " getsockopt-failed");
	} else {
		memcpy(&lg, r.u.opt.val, sizeof(lg));
		if (lg.l_onoff)
			strcat(damage, " linger-set");
	}
	if (getopt_int(fd, id2, SOL_SOCKET, SO_ACCEPTCONN, &lingerv) != 0 || lingerv)
		strcat(damage, " second-listening");
	/* 3. the page says what it said */
	if (page_rec(page, nslots, id1, &rec) < 0 || rec.sock_id != id1 || rec.state != MW_SS_CONNECTED ||
	    rec.error || memcmp(rec.peer.addr, a.addr, 16) != 0 || rec.peer.port != a.port)
		strcat(damage, " first-record");
	if (page_rec(page, nslots, id2, &rec) < 0 || rec.sock_id != id2 || rec.state != MW_SS_OPEN || rec.error ||
	    rec.local.port != 0 || rec.peer.family != 0)
		strcat(damage, " second-record");
	/* 4. the unbound one can still be connected by us (nobody connected or bound it) */
	memset(&q, 0, sizeof(q));
	q.cmd = MW_CMD_CONNECT;
	q.sock_id = id2;
	q.u.connect.addr = a;
	if (call(fd, &q, -1, &r, NULL) != OUT_RSP || r.ret != 0)
		strcat(damage, " second-connect");
	if (damage[0])
		say("victim damaged%s", damage);
	else
		say("victim ok");
	close(car1);
	close(car2);
	close(fd);
}

static void cmd_attack(const char *host, const char *port, int n, char **idv)
{
	int fd = chan_open();
	uint32_t nslots = hello(fd, NULL, NULL);
	uint32_t ids[64] = { 0 };
	size_t nids = 0;
	struct mw_addr a;

	if (!nslots || parse_addr(host, port, &a) < 0) {
		say("attack setup failed");
		exit(1);
	}
	for (int i = 0; i < n && nids + 3 <= 64; i++) {
		uint32_t id = (uint32_t)strtoul(idv[i], NULL, 0);

		ids[nids++] = id;
		ids[nids++] = id + 0x10000; /* the neighbouring generations of the victim's slot */
		ids[nids++] = id - 0x10000;
	}
	name_ids(fd, "foreign", ids, nids, &a);
	/* MW_CMD_CLOSE is a hint that is never answered: it must not close another group's socket */
	for (size_t i = 0; i < nids; i++) {
		struct mw_req q = { .version = MW_PROTO_VERSION, .cmd = MW_CMD_CLOSE, .sock_id = ids[i] };

		q.req_id = next_req++;
		say("case foreign-%#x-close-hint %s", ids[i], send_raw(fd, &q, sizeof(q), NULL, 0, 0) ? "error send" : "sent");
	}
	still_connected(fd, "still-connected");
	close(fd);
}

static void cmd_peek(const char *idstr)
{
	int fd = chan_hello(), v = 0, err;
	uint32_t id = (uint32_t)strtoul(idstr, NULL, 0);

	err = getopt_int(fd, id, SOL_SOCKET, SO_TYPE, &v);
	say("case peek-%#x rsp ret=%d%s", id, err, err ? "" : (v == SOCK_STREAM ? " type=stream" : " type=other"));
	close(fd);
}

/* ------------------------------------------------------------------ descriptors */

static void fd_case(const char *name, struct mw_req *q, const int *fds, int nfd)
{
	int fd = chan_open(), err;

	if (q->cmd != MW_CMD_HELLO && !hello(fd, NULL, NULL)) {
		say("case %s error hello", name);
		close(fd);
		return;
	}
	q->version = MW_PROTO_VERSION;
	q->req_id = 4242;
	err = send_raw(fd, q, sizeof(*q), fds, nfd, 0);
	if (err == -EPIPE || err == -ECONNRESET)
		say("case %s disconnected", name);
	else if (err)
		say("case %s error send %s", name, strerror(-err));
	else
		expect_after(fd, name);
	close(fd);
}

static void fd_rsp_case(int ch, const char *name, struct mw_req *q, int pass)
{
	struct mw_rsp r;
	int rfd;
	char b[64];
	enum outcome o = call(ch, q, pass, &r, &rfd);

	if (rfd >= 0)
		close(rfd);
	say("case %s %s", name, outcome_str(o, &r, b, sizeof(b)));
}

static void cmd_fds(void)
{
	int p[2], sp[2], many[200], devnull, efd, opath, tcp, ch, car = -1, car2 = -1, memfd = -1;
	struct mw_req q;
	uint32_t id, id2;

	if (pipe(p) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0) {
		say("case setup error pipe");
		return;
	}
	devnull = open("/dev/null", O_RDWR);
	efd = eventfd(0, 0);
	opath = open("/", O_PATH);
	tcp = socket(AF_INET, SOCK_STREAM, 0); /* a real socket in our own (empty) namespace */
	for (int i = 0; i < 200; i++)
		many[i] = devnull;

	/* descriptors where the command takes none: a disconnect */
	memset(&q, 0, sizeof(q));
	q.cmd = MW_CMD_HELLO;
	fd_case("fd-with-hello", &q, &p[0], 1);
	memset(&q, 0, sizeof(q));
	q.cmd = MW_CMD_SOCKET;
	q.u.socket.domain = AF_INET;
	q.u.socket.type = SOCK_STREAM;
	fd_case("fd-with-socket", &q, &sp[0], 1);
	memset(&q, 0, sizeof(q));
	q.cmd = MW_CMD_GETSOCKOPT;
	q.sock_id = 0x10001;
	q.u.opt.level = SOL_SOCKET;
	q.u.opt.name = SO_TYPE;
	q.u.opt.len = 4;
	fd_case("fd-with-getsockopt", &q, &p[1], 1);
	memset(&q, 0, sizeof(q));
	q.cmd = MW_CMD_BIND;
	q.sock_id = 0x10001;
	q.u.addr.family = AF_INET;
	fd_case("fd-with-bind", &q, &devnull, 1);
	memset(&q, 0, sizeof(q));
	q.cmd = MW_CMD_CONNECT; /* blocking: takes none */
	q.sock_id = 0x10001;
	q.u.connect.addr.family = AF_INET;
	fd_case("fd-with-blocking-connect", &q, &sp[0], 1);
	memset(&q, 0, sizeof(q));
	q.cmd = 99;
	fd_case("fd-with-unknown-cmd", &q, &efd, 1);
	memset(&q, 0, sizeof(q));
	q.cmd = MW_CMD_IOCTL;
	q.sock_id = 0x10001;
	q.u.ioctl.request = SIOCOUTQ;
	fd_case("fds-8-with-ioctl", &q, many, 8);
	/* descriptors missing, or too many, where the command takes one */
	memset(&q, 0, sizeof(q));
	q.cmd = MW_CMD_IDENTIFY;
	fd_case("identify-without-fd", &q, NULL, 0);
	memset(&q, 0, sizeof(q));
	q.cmd = MW_CMD_IDENTIFY;
	fd_case("identify-with-2-fds", &q, many, 2);
	memset(&q, 0, sizeof(q));
	q.cmd = MW_CMD_IDENTIFY;
	fd_case("identify-with-9-fds", &q, many, 9);
	memset(&q, 0, sizeof(q));
	q.cmd = MW_CMD_IDENTIFY;
	fd_case("identify-with-200-fds", &q, many, 200);
	memset(&q, 0, sizeof(q));
	q.cmd = MW_CMD_CONNECT;
	q.sock_id = 0x10001;
	q.u.connect.addr.family = AF_INET;
	q.u.connect.flags = MW_CONNECT_NONBLOCK;
	fd_case("nonblocking-connect-without-fd", &q, NULL, 0);

	/* the wrong kind of descriptor where one belongs: a clear error, and we stay */
	ch = chan_open();
	if (!hello(ch, &memfd, NULL)) {
		say("case setup error hello");
		return;
	}
	id = mksock(ch, AF_INET, &car);
	id2 = mksock(ch, AF_INET, &car2);
	if (!id || !id2)
		say("case setup error socket");
	{
		struct {
			const char *name;
			int fd;
		} wrong[] = { { "pipe", p[0] },         { "devnull", devnull },  { "eventfd", efd },
			      { "opath-dir", opath },    { "socketpair", sp[0] }, { "tcp-socket", tcp },
			      { "state-page", memfd },   { "control-socket", ch } };
		char name[64];

		for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
			if (wrong[i].fd < 0) {
				say("case identify-%s error open", wrong[i].name);
				continue;
			}
			memset(&q, 0, sizeof(q));
			q.cmd = MW_CMD_IDENTIFY;
			snprintf(name, sizeof(name), "identify-%s", wrong[i].name);
			fd_rsp_case(ch, name, &q, wrong[i].fd);
		}
		/* nonblocking connect with a descriptor that is not this socket's carrier end */
		struct {
			const char *name;
			int fd;
		} wrongc[] = { { "pipe", p[1] },      { "socketpair", sp[1] }, { "other-carrier", car2 },
			       { "devnull", devnull }, { "state-page", memfd } };

		for (size_t i = 0; i < sizeof(wrongc) / sizeof(wrongc[0]); i++) {
			memset(&q, 0, sizeof(q));
			q.cmd = MW_CMD_CONNECT;
			q.sock_id = id;
			q.u.connect.addr.family = AF_INET;
			q.u.connect.addr.port = htons(9);
			q.u.connect.addr.addr[0] = 127;
			q.u.connect.addr.addr[3] = 1;
			q.u.connect.flags = MW_CONNECT_NONBLOCK;
			snprintf(name, sizeof(name), "nbconnect-%s", wrongc[i].name);
			fd_rsp_case(ch, name, &q, wrongc[i].fd);
		}
		/* its own carrier, but an absurd filler count */
		memset(&q, 0, sizeof(q));
		q.cmd = MW_CMD_CONNECT;
		q.sock_id = id;
		q.u.connect.addr.family = AF_INET;
		q.u.connect.addr.port = htons(9);
		q.u.connect.addr.addr[0] = 127;
		q.u.connect.addr.addr[3] = 1;
		q.u.connect.flags = MW_CONNECT_NONBLOCK;
		q.u.connect.fill = 0xffffffffU;
		fd_rsp_case(ch, "nbconnect-fill-huge", &q, car);
	}
	/* the right kind still works: our own carrier identifies as our socket */
	{
		struct mw_rsp r;
		char b[64];
		enum outcome o;

		memset(&q, 0, sizeof(q));
		q.cmd = MW_CMD_IDENTIFY;
		o = call(ch, &q, car, &r, NULL);
		say("case identify-own-carrier %s%s", outcome_str(o, &r, b, sizeof(b)),
		    o == OUT_RSP && r.ret == 0 && r.sock_id == id ? " same-id" : "");
	}
	still_connected(ch, "still-connected");
	close(ch);
	close(car);
	close(car2);
	close(memfd);
}

/* ------------------------------------------------------------------ flood */

static void cmd_flood(const char *kind, long count, int seconds)
{
	int fd = chan_hello(), fl;
	uint64_t start = now_ms(), end = start + (uint64_t)seconds * 1000;
	long sent = 0, drained = 0, fds = 0;
	const char *outcome = "connected";

	fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	while (sent < count && now_ms() < end) {
		struct mw_req q = { .version = MW_PROTO_VERSION, .req_id = (uint32_t)(sent + 1) };
		int err;

		if (!strcmp(kind, "socket")) {
			q.cmd = MW_CMD_SOCKET;
			q.u.socket.domain = AF_INET;
			q.u.socket.type = SOCK_STREAM;
		} else if (!strcmp(kind, "getsockopt")) {
			q.cmd = MW_CMD_GETSOCKOPT;
			q.sock_id = 0x10001;
			q.u.opt.level = SOL_SOCKET;
			q.u.opt.name = SO_TYPE;
			q.u.opt.len = 4;
		} else {
			q.cmd = 99;
		}
		err = send_raw(fd, &q, sizeof(q), NULL, 0, MSG_DONTWAIT);
		if (!err) {
			sent++;
			continue;
		}
		if (err == -EAGAIN) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };

			/* mwinsd is behind on reading us (or has stopped): wait a little, never read */
			poll(&p, 1, 100);
			if (p.revents & (POLLHUP | POLLERR)) {
				outcome = "disconnected";
				break;
			}
			continue;
		}
		outcome = (err == -EPIPE || err == -ECONNRESET) ? "disconnected" : "send-error";
		break;
	}
	if (!strcmp(outcome, "connected")) {
		/* Everything sent: give mwinsd a moment to notice that we never read. */
		struct pollfd p = { .fd = fd, .events = 0 };
		uint64_t e2 = now_ms() + 3000;

		while (now_ms() < e2) {
			if (poll(&p, 1, 100) == 1 && (p.revents & (POLLHUP | POLLERR))) {
				outcome = "disconnected";
				break;
			}
		}
	}
	say("flood sent=%ld outcome=%s elapsed_ms=%llu", sent, outcome, (unsigned long long)(now_ms() - start));
	/* Now read what is left, up to EOF. */
	fcntl(fd, F_SETFL, fl);
	for (int resets = 0;;) {
		int rfd;
		enum outcome o = wait_msg(fd, 2000, NULL, &rfd, NULL);

		if (rfd >= 0) {
			fds++;
			close(rfd);
		}
		if (o == OUT_RSP || o == OUT_BAD) {
			drained++;
			continue;
		}
		/* A hang-up with our requests unread shows first as one ECONNRESET; the answers mwinsd had already
		 * sent are still queued behind it. */
		if (o == OUT_DISC && !resets++) {
			char c;

			if (recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 1)
				continue;
		}
		say("flood drained=%ld fds=%ld end=%s", drained, fds, o == OUT_DISC ? "eof" : "timeout");
		break;
	}
	close(fd);
}

/* ------------------------------------------------------------------ the socket limit */

static void cmd_limit(int seconds, const char *trigger)
{
	struct rlimit rl = { 200000, 200000 };
	int fd, *cars, window = 64, err_seen = 0;
	uint32_t nslots, inflight = 0, opened = 0, sent = 0, cap;
	uint64_t start, end;
	char b[64];

	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		int e = errno;

		/* at least up to the hard limit */
		getrlimit(RLIMIT_NOFILE, &rl);
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
		say("limit rlimit-nofile %llu (could not raise it further: %s)", (unsigned long long)rl.rlim_cur,
		    strerror(e));
	}
	fd = chan_open();
	nslots = hello(fd, NULL, NULL);
	if (!nslots) {
		say("limit setup failed");
		exit(1);
	}
	cap = nslots + 64;
	cars = calloc(cap, sizeof(int));
	start = now_ms();
	end = start + (uint64_t)seconds * 1000;
	/* Pipelined: up to `window` SOCKETs in flight, until one fails (or we pass nslots, which must not
	 * happen), or time runs out. */
	while (now_ms() < end && !err_seen) {
		while (!err_seen && inflight < (uint32_t)window && sent < cap) {
			struct mw_req q = { .version = MW_PROTO_VERSION, .cmd = MW_CMD_SOCKET, .req_id = ++sent };

			q.u.socket.domain = AF_INET;
			q.u.socket.type = SOCK_STREAM;
			if (send_raw(fd, &q, sizeof(q), NULL, 0, 0) < 0) {
				say("limit send failed: %s", strerror(errno));
				err_seen = -EPIPE;
				break;
			}
			inflight++;
		}
		if (!inflight)
			break;
		{
			struct mw_rsp r;
			int rfd;
			enum outcome o = wait_msg(fd, 5000, &r, &rfd, NULL);

			if (o != OUT_RSP) {
				say("limit lost the connection: %s", outcome_str(o, &r, b, sizeof(b)));
				err_seen = -EPIPE;
				break;
			}
			inflight--;
			if (r.ret == 0 && rfd >= 0) {
				cars[opened++] = rfd;
			} else {
				if (rfd >= 0)
					close(rfd);
				err_seen = r.ret ? r.ret : -EIO;
			}
		}
	}
	/* collect the answers still in flight (they may be errors too, or late successes) */
	while (inflight) {
		struct mw_rsp r;
		int rfd;

		if (wait_msg(fd, 5000, &r, &rfd, NULL) != OUT_RSP)
			break;
		inflight--;
		if (r.ret == 0 && rfd >= 0 && opened < cap)
			cars[opened++] = rfd;
		else if (rfd >= 0)
			close(rfd);
	}
	say("limit opened=%u nslots=%u err=%d elapsed_ms=%llu", opened, nslots, err_seen,
	    (unsigned long long)(now_ms() - start));
	/* at the limit: one more is refused with a clear error, and the connection still serves */
	{
		struct mw_req q = { .cmd = MW_CMD_SOCKET };
		struct mw_rsp r;
		int rfd;
		enum outcome o;

		q.u.socket.domain = AF_INET;
		q.u.socket.type = SOCK_STREAM;
		o = call(fd, &q, -1, &r, &rfd);
		say("case one-more %s", outcome_str(o, &r, b, sizeof(b)));
		if (rfd >= 0)
			cars[opened < cap ? opened++ : 0] = rfd;
	}
	still_connected(fd, "still-connected");
	/* close 10 carriers: mwinsd frees them (asynchronously) and SOCKET works again */
	{
		uint64_t e2 = now_ms() + 3000;
		int ok = 0;

		for (int i = 0; i < 10 && opened; i++)
			close(cars[--opened]);
		while (!ok && now_ms() < e2) {
			int car = -1;

			if (mksock(fd, AF_INET, &car)) {
				ok = 1;
				cars[opened++] = car;
			} else {
				usleep(20000);
			}
		}
		say("case socket-after-close %s", ok ? "rsp ret=0" : "failed");
	}
	/* hold everything until told (others are tested meanwhile): at the limit again first */
	if (trigger) {
		int refill_err = 0;
		uint64_t e4 = now_ms() + 5000;

		while (!refill_err && opened < cap && now_ms() < e4) {
			struct mw_req q = { .cmd = MW_CMD_SOCKET };
			struct mw_rsp r;
			int rfd;

			q.u.socket.domain = AF_INET;
			q.u.socket.type = SOCK_STREAM;
			if (call(fd, &q, -1, &r, &rfd) != OUT_RSP) {
				refill_err = -EPIPE;
				break;
			}
			if (r.ret == 0 && rfd >= 0)
				cars[opened++] = rfd;
			else
				refill_err = r.ret ? r.ret : -EIO;
			if (rfd >= 0 && r.ret)
				close(rfd);
		}
		say("limit refilled opened=%u err=%d", opened, refill_err);
		uint64_t e3 = now_ms() + 60000;

		say("limit holding");
		while (access(trigger, F_OK) != 0 && now_ms() < e3)
			usleep(20000);
		still_connected(fd, "still-connected-after-hold");
	}
	for (uint32_t i = 0; i < opened; i++)
		close(cars[i]);
	free(cars);
	close(fd);
}

/* ------------------------------------------------------------------ many control connections */

static void cmd_conns(long max, int seconds, const char *trigger)
{
	struct rlimit rl;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int *fds = calloc((size_t)max, sizeof(int));
	long opened = 0, answered = 0;
	const char *stop = "max";
	uint64_t start = now_ms(), end = start + (uint64_t)seconds * 1000;

	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	strncpy(sun.sun_path, sock_path, sizeof(sun.sun_path) - 1);
	while (opened < max) {
		struct mw_req q = { .version = MW_PROTO_VERSION, .cmd = MW_CMD_HELLO, .req_id = 1 };
		struct mw_rsp r;
		int fd, rfd;
		uint64_t retry_end = now_ms() + 2000;

		if (now_ms() > end) {
			stop = "time";
			break;
		}
		fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			stop = "own-fd-limit";
			break;
		}
		/* nonblocking: once mwinsd stops accepting, its backlog fills and we would block forever */
		for (;;) {
			int c = connect(fd, (struct sockaddr *)&sun, sizeof(sun)), e = errno;

			if (c == 0)
				break;
			if (e != EAGAIN || now_ms() >= retry_end) {
				close(fd);
				fd = -1;
				stop = e == EAGAIN ? "not-accepted" : "connect-failed";
				break;
			}
			usleep(10000);
		}
		if (fd < 0)
			break;
		fds[opened++] = fd;
		{
			enum outcome o = send_raw(fd, &q, sizeof(q), NULL, 0, 0) < 0 ? OUT_DISC
											: wait_msg(fd, 2000, &r, &rfd, NULL);

			if (o != OUT_RSP) {
				/* a hang-up is a clear answer; silence for 2 s is mwinsd stalling */
				stop = o == OUT_DISC ? "disconnected" : "hello-unanswered";
				break;
			}
		}
		if (rfd >= 0)
			close(rfd);
		if (r.ret != 0) {
			stop = "hello-refused";
			say("conns hello ret=%d", r.ret);
			break;
		}
		answered++;
	}
	say("conns opened=%ld answered=%ld stop=%s elapsed_ms=%llu", opened, answered, stop,
	    (unsigned long long)(now_ms() - start));
	say("conns holding");
	{
		uint64_t e3 = now_ms() + 60000;

		while (access(trigger, F_OK) != 0 && now_ms() < e3)
			usleep(20000);
	}
	for (long i = 0; i < opened; i++)
		close(fds[i]);
	free(fds);
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 3) {
		fprintf(stderr, "usage: hostile SOCK CMD [ARGS...]\n");
		return 2;
	}
	sock_path = argv[1];
	if (!strcmp(argv[2], "malformed"))
		cmd_malformed();
	else if (!strcmp(argv[2], "unknown"))
		cmd_unknown();
	else if (!strcmp(argv[2], "badargs"))
		cmd_badargs();
	else if (!strcmp(argv[2], "badids"))
		cmd_badids();
	else if (!strcmp(argv[2], "fds"))
		cmd_fds();
	else if (!strcmp(argv[2], "victim") && argc == 6)
		cmd_victim(argv[3], argv[4], argv[5]);
	else if (!strcmp(argv[2], "attack") && argc >= 6)
		cmd_attack(argv[3], argv[4], argc - 5, argv + 5);
	else if (!strcmp(argv[2], "peek") && argc == 4)
		cmd_peek(argv[3]);
	else if (!strcmp(argv[2], "flood") && argc == 6)
		cmd_flood(argv[3], atol(argv[4]), atoi(argv[5]));
	else if (!strcmp(argv[2], "limit") && (argc == 4 || argc == 5))
		cmd_limit(atoi(argv[3]), argc == 5 ? argv[4] : NULL);
	else if (!strcmp(argv[2], "conns") && argc == 6)
		cmd_conns(atol(argv[3]), atoi(argv[4]), argv[5]);
	else {
		fprintf(stderr, "hostile: unknown command or wrong arguments: %s\n", argv[2]);
		return 2;
	}
	return 0;
}
