/*
 * net.c: the scaffolding the cases stand on: the peer's addresses, connecting and listening, waiting for events.
 *
 * A failure here is not what a case tests, so it ends the case with FAIL(setup: ...) rather than an outcome that
 * would look like an answer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conform.h"

struct conform_ctx conform_ctx;

uint16_t peer_port(int service)
{
	return (uint16_t)(conform_ctx.port + service);
}

socklen_t peer_addr(int family, int service, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(peer_port(service));
		sin->sin_addr = conform_ctx.peer4;
		return sizeof(*sin);
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(peer_port(service));
	sin6->sin6_addr = conform_ctx.peer6;
	return sizeof(*sin6);
}

int tcp_socket(int family, int flags)
{
	int fd = socket(family, SOCK_STREAM | flags, 0);
	if (fd < 0)
		setup_fail("socket: %s", errno_name(errno));
	return fd;
}

int peer_connect(int family, int service)
{
	struct sockaddr_storage ss;
	socklen_t len = peer_addr(family, service, &ss);
	int fd = tcp_socket(family, 0);
	if (connect(fd, (struct sockaddr *)&ss, len) < 0)
		setup_fail("connect to peer service %d: %s", service, errno_name(errno));
	return fd;
}

int peer_source(int family, size_t n, size_t chunk, int delay_ms)
{
	char req[64];
	int fd = peer_connect(family, PEER_SOURCE);
	int len = snprintf(req, sizeof(req), "%zu %zu %d\n", n, chunk, delay_ms);
	send_all(fd, req, (size_t)len);
	return fd;
}

int tcp_listen(int family, int flags, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_any;
		len = sizeof(*sin6);
	}
	int fd = tcp_socket(family, flags);
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		setup_fail("bind: %s", errno_name(errno));
	if (listen(fd, 8) < 0)
		setup_fail("listen: %s", errno_name(errno));
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		setup_fail("getsockname: %s", errno_name(errno));
	*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
	                                : ((struct sockaddr_in6 *)&ss)->sin6_port);
	if (*port == 0)
		setup_fail("listener has port 0");
	return fd;
}

int peer_dial(int family, uint16_t port)
{
	char req[32];
	int fd = peer_connect(family, PEER_DIAL);
	int len = snprintf(req, sizeof(req), "%u\n", port);
	send_all(fd, req, (size_t)len);
	return fd;
}

const char *dial_result(int ctl)
{
	static char line[64];
	size_t n = 0;
	while (n < sizeof(line) - 1) {
		if (!(wait_events(ctl, POLLIN, 3000) & (POLLIN | POLLHUP | POLLERR)))
			return "timeout";
		ssize_t r = recv(ctl, line + n, 1, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno_name(errno);
		if (r == 0)
			return "EOF";
		if (line[n] == '\n')
			break;
		n++;
	}
	line[n] = '\0';
	return line;
}

unsigned wait_events(int fd, short events, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int64_t deadline = now_ms() + timeout_ms;
	for (;;) {
		int left = (int)(deadline - now_ms());
		int n = poll(&pfd, 1, left > 0 ? left : 0);
		if (n > 0)
			return (unsigned)pfd.revents;
		if (n == 0)
			return 0;
		if (errno != EINTR)
			setup_fail("poll: %s", errno_name(errno));
	}
}

long wait_inq(int fd, long want, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	for (;;) {
		int n = 0;
		if (ioctl(fd, FIONREAD, &n) < 0)
			return -errno;
		if (n >= want || now_ms() >= deadline)
			return n;
		sleep_ms(2);
	}
}

void send_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			wait_events(fd, POLLOUT, 1000);
			continue;
		}
		if (w <= 0)
			setup_fail("send: %s", w < 0 ? errno_name(errno) : "0");
		p += w;
		n -= (size_t)w;
	}
}

long recv_upto(int fd, void *buf, size_t n, int timeout_ms)
{
	char *p = buf;
	size_t got = 0;
	int64_t deadline = now_ms() + timeout_ms;
	while (got < n) {
		int left = (int)(deadline - now_ms());
		if (left <= 0 || !wait_events(fd, POLLIN, left))
			break;
		ssize_t r = recv(fd, p + got, n - got, MSG_DONTWAIT);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0)
			return got ? (long)got : -errno;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (long)got;
}

void echo_probe(int fd)
{
	char buf[8];
	send_all(fd, "ping", 4);
	long r = recv_upto(fd, buf, 4, 3000);
	if (expect(r == 4 && memcmp(buf, "ping", 4) == 0, "echo: got %s", res_str(r)))
		note("echo=ok");
}

int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void thread_announce(int *tid)
{
	__atomic_store_n(tid, (int)syscall(SYS_gettid), __ATOMIC_RELEASE);
}

/* The thread's state letter (R, S, D, ...), '-' when it has ended, '?' when the line cannot be read. */
static char thread_state(int tid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH ? '-' : '?';
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return '-';
	buf[n] = '\0';
	/* "TID (COMM) STATE ...": COMM may hold spaces and parentheses, so look after the last ')' */
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] ? p[2] : '?';
}

bool wait_blocked(const int *tid, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	for (;;) {
		int t = __atomic_load_n(tid, __ATOMIC_ACQUIRE);
		char st = t ? thread_state(t) : '?';
		if (st == 'S' || st == '-')
			return true;
		if (now_ms() >= end)
			return false;
		sleep_ms(1);
	}
}

int udp_socket(int family, int flags)
{
	int fd = socket(family, SOCK_DGRAM | flags, 0);
	if (fd < 0)
		setup_fail("socket SOCK_DGRAM: %s", errno_name(errno));
	return fd;
}

static char *desc_buf(void)
{
	static char bufs[8][64];
	static unsigned next;
	return bufs[next++ % 8];
}

/* "+N" for the peer's base port + N (N < 10), "port" for another nonzero port, "port0" for zero. */
static void port_desc(char *b, size_t size, const char *prefix, uint16_t port, bool peer)
{
	unsigned off = (unsigned)port - conform_ctx.port;
	if (peer && port >= conform_ctx.port && off < 10)
		snprintf(b, size, "%s+%u", prefix, off);
	else
		snprintf(b, size, "%s%s", prefix, port ? ":port" : ":port0");
}

const char *sa_desc(const struct sockaddr_storage *ss, socklen_t len)
{
	char *b = desc_buf();
	if (len < sizeof(sa_family_t)) {
		snprintf(b, 64, "short");
		return b;
	}
	if (ss->ss_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		bool peer = sin->sin_addr.s_addr == conform_ctx.peer4.s_addr;
		const char *a = peer                                      ? "inet:peer"
		                : sin->sin_addr.s_addr == htonl(INADDR_ANY) ? "inet:any"
		                                                            : "inet:local";
		port_desc(b, 64, a, ntohs(sin->sin_port), peer);
	} else if (ss->ss_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		const struct in6_addr *a6 = &sin6->sin6_addr;
		bool peer = IN6_ARE_ADDR_EQUAL(a6, &conform_ctx.peer6);
		bool mapped = IN6_IS_ADDR_V4MAPPED(a6) && memcmp(&a6->s6_addr[12], &conform_ctx.peer4, 4) == 0;
		const char *a = peer     ? "inet6:peer"
		                : mapped ? "inet6:mapped"
		                : IN6_IS_ADDR_UNSPECIFIED(a6) ? "inet6:any"
		                                              : "inet6:local";
		port_desc(b, 64, a, ntohs(sin6->sin6_port), peer || mapped);
	} else if (ss->ss_family == AF_UNIX) {
		snprintf(b, 64, "unix");
	} else if (ss->ss_family == AF_UNSPEC) {
		snprintf(b, 64, "unspec");
	} else if (ss->ss_family == AF_INET || ss->ss_family == AF_INET6) {
		snprintf(b, 64, "%s:len%u", ss->ss_family == AF_INET ? "inet" : "inet6", len);
	} else {
		snprintf(b, 64, "family%u", ss->ss_family);
	}
	return b;
}

long udp_recv(int fd, void *buf, size_t n, struct sockaddr_storage *from, socklen_t *fromlen, int timeout_ms)
{
	if (!(wait_events(fd, POLLIN, timeout_ms) & (POLLIN | POLLERR)))
		return -EAGAIN;
	for (;;) {
		ssize_t r = recvfrom(fd, buf, n, MSG_DONTWAIT, (struct sockaddr *)from, fromlen);
		if (r < 0 && errno == EINTR)
			continue;
		return r < 0 ? -errno : (long)r;
	}
}

void udp_probe(const char *key, int fd, int family)
{
	char buf[16];
	struct sockaddr_storage to, from;
	socklen_t tolen = 0, fromlen = sizeof(from);
	long w;
	if (family) {
		tolen = peer_addr(family, PEER_UDP_ECHO, &to);
		w = res(sendto(fd, "udp-ping", 8, 0, (struct sockaddr *)&to, tolen));
	} else {
		w = res(send(fd, "udp-ping", 8, 0));
	}
	if (!expect(w == 8, "%s: send %s", key, res_str(w)))
		return;
	memset(&from, 0, sizeof(from));
	long r = udp_recv(fd, buf, sizeof(buf), &from, &fromlen, 3000);
	const char *src = sa_desc(&from, fromlen);
	if (expect(r == 8 && memcmp(buf, "udp-ping", 8) == 0 && strstr(src, "+0"), "%s: got %s from %s", key,
	           res_str(r), src))
		note("%s=ok", key);
}

long sockopt_int(int fd, int level, int opt)
{
	int v = -1;
	socklen_t len = sizeof(v);
	long r = res(getsockopt(fd, level, opt, &v, &len));
	return r < 0 ? r : v;
}

const char *sock_kind(int fd)
{
	long d = sockopt_int(fd, SOL_SOCKET, SO_DOMAIN), t = sockopt_int(fd, SOL_SOCKET, SO_TYPE),
	     p = sockopt_int(fd, SOL_SOCKET, SO_PROTOCOL);
	const char *ds = d == AF_INET ? "inet" : d == AF_INET6 ? "inet6" : d == AF_UNIX ? "unix" : res_str(d);
	const char *ts = t == SOCK_STREAM      ? "stream"
	                 : t == SOCK_DGRAM     ? "dgram"
	                 : t == SOCK_SEQPACKET ? "seqpacket"
	                                       : res_str(t);
	const char *ps = p == IPPROTO_TCP ? "tcp" : p == IPPROTO_UDP ? "udp" : res_str(p);
	char *b = desc_buf();
	snprintf(b, 64, "%s/%s/%s", ds, ts, ps);
	return b;
}

long recv_fds(int us, int *fds)
{
	char data[3];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(3 * sizeof(int))];
	} cm;
	struct iovec iv = { data, sizeof(data) };
	struct msghdr mh = { .msg_iov = &iv, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf) };
	if (!(wait_events(us, POLLIN, 3000) & POLLIN))
		return -ETIMEDOUT;
	long r = res(recvmsg(us, &mh, MSG_CMSG_CLOEXEC));
	if (r < 0)
		return r;
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
		return 0;
	size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
	if (n > 3)
		n = 3;
	memcpy(fds, CMSG_DATA(c), n * sizeof(int));
	return (long)n;
}

long send_fds(int us, const int *fds, int n)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(3 * sizeof(int))];
	} cm;
	memset(&cm, 0, sizeof(cm));
	struct iovec iv = { "fds", 3 };
	struct msghdr mh = { .msg_iov = &iv, .msg_iovlen = 1, .msg_control = cm.buf,
		             .msg_controllen = CMSG_SPACE((size_t)n * sizeof(int)) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
	memcpy(CMSG_DATA(c), fds, (size_t)n * sizeof(int));
	return res(sendmsg(us, &mh, 0));
}

void child_status_note(const char *key, pid_t pid)
{
	int status;
	if (pid < 0) {
		note("%s=%s", key, errno_name(errno));
		expect(false, "%s: no child", key);
		return;
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			setup_fail("waitpid: %s", errno_name(errno));
	if (WIFEXITED(status))
		note("%s=exit%d", key, WEXITSTATUS(status));
	else
		note("%s=signal%d", key, WTERMSIG(status));
	expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: want exit0", key);
}

void tcp_loop_pair(int *client, int *server)
{
	uint16_t port;
	int lfd = tcp_listen(AF_INET, 0, &port);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*client = tcp_socket(AF_INET, 0);
	if (connect(*client, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		setup_fail("connect: %s", errno_name(errno));
	*server = accept(lfd, NULL, NULL);
	if (*server < 0)
		setup_fail("accept: %s", errno_name(errno));
	close(lfd);
}
