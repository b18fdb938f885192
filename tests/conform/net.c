/*
 * net.c: the scaffolding the cases stand on: the peer's addresses, connecting and listening, waiting for events.
 *
 * A failure here is not what a case tests, so it ends the case with FAIL(setup: ...) rather than an outcome that
 * would look like an answer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
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
