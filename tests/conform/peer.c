/*
 * peer.c: `conform peer --port P`, the helper the cases talk to.
 *
 * It runs in the namespace that has the network, on kernel sockets only. Each service of enum peer_service listens
 * on [::]:P+offset with IPV6_V6ONLY off, so one socket takes IPv4 and IPv6; so does each UDP service of enum
 * peer_udp_service, which the main loop answers itself (a datagram needs no process of its own). Every TCP
 * connection is served in its own forked process, which dies with the peer (PR_SET_PDEATHSIG), so that a case that
 * leaves a connection open cannot hold up the next one nor outlive the test.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "conform.h"

/* Reads one request line into buf (without the newline). Returns false on EOF or error. */
static bool peer_read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	while (n < size - 1) {
		ssize_t r = read(fd, buf + n, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
	return true;
}

static bool peer_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static void peer_echo(int fd)
{
	char buf[65536];
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || !peer_write_all(fd, buf, (size_t)r))
			return;
	}
}

static void peer_source_serve(int fd)
{
	char line[64];
	unsigned long long n, chunk;
	int delay_ms;
	if (!peer_read_line(fd, line, sizeof(line)) || sscanf(line, "%llu %llu %d", &n, &chunk, &delay_ms) != 3 ||
	    chunk == 0 || chunk > (1u << 20))
		return;
	/* Each chunk leaves in its own segments, so that a reader can see them arrive apart. */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	uint8_t *buf = malloc(chunk);
	if (!buf)
		return;
	for (unsigned long long off = 0; off < n; off += chunk) {
		size_t len = (size_t)(n - off < chunk ? n - off : chunk);
		if (delay_ms > 0)
			sleep_ms(delay_ms);
		pattern_fill(buf, off, len);
		if (!peer_write_all(fd, buf, len))
			break;
	}
	free(buf);
}

static void peer_reset_serve(int fd)
{
	char c;
	if (read(fd, &c, 1) != 1)
		return;
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

static void peer_count_serve(int fd)
{
	char buf[65536];
	unsigned long long total = 0;
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return;
		if (r == 0)
			break;
		total += (unsigned long long)r;
	}
	int len = snprintf(buf, sizeof(buf), "%llu\n", total);
	peer_write_all(fd, buf, (size_t)len);
}

static void peer_hold_serve(int fd)
{
	/* Never read. The client's FIN cannot get past a full window, so this ends on a reset or after a while. */
	struct pollfd pfd = { .fd = fd, .events = POLLRDHUP };
	poll(&pfd, 1, 30000);
}

/*
 * Echoes on data until EOF or an error, then reports on ctl what ended it and how many bytes were read:
 * "EOF N" or "ECONNRESET N". A reset is what a client's close with SO_LINGER {1, 0} shows here.
 */
static void peer_watch(int data, int ctl)
{
	char buf[65536];
	unsigned long long total = 0;
	const char *how = "EOF";
	for (;;) {
		ssize_t r = read(data, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			how = errno_name(errno);
		if (r <= 0)
			break;
		total += (unsigned long long)r;
		if (!peer_write_all(data, buf, (size_t)r)) {
			how = errno_name(errno);
			break;
		}
	}
	char line[64];
	int len = snprintf(line, sizeof(line), "%s %llu\n", how, total);
	peer_write_all(ctl, line, (size_t)len);
}

static void peer_watch_serve(int fd)
{
	char line[32];
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (!peer_read_line(fd, line, sizeof(line)) || strcmp(line, "watch") != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	/* The address the client reached us on, port 0: a fresh port of the same family. */
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = 0;
	int lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&ss, len) < 0 || listen(lfd, 1) < 0)
		return;
	len = sizeof(ss);
	getsockname(lfd, (struct sockaddr *)&ss, &len);
	uint16_t port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
	                                              : ((struct sockaddr_in6 *)&ss)->sin6_port);
	int n = snprintf(line, sizeof(line), "%u\n", port);
	peer_write_all(fd, line, (size_t)n);
	struct pollfd pfd = { .fd = lfd, .events = POLLIN };
	if (poll(&pfd, 1, 5000) != 1)
		return;
	int data = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	close(lfd);
	if (data < 0)
		return;
	peer_watch(data, fd);
	close(data);
}

static void peer_sum_serve(int fd)
{
	char buf[65536];
	unsigned long long total = 0;
	uint32_t sum = CSUM_INIT;
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return;
		if (r == 0)
			break;
		total += (unsigned long long)r;
		sum = csum_update(sum, buf, (size_t)r);
	}
	int len = snprintf(buf, sizeof(buf), "%llu %08x\n", total, sum);
	peer_write_all(fd, buf, (size_t)len);
}

static void peer_dial_serve(int fd)
{
	char line[32];
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (!peer_read_line(fd, line, sizeof(line)) || getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	unsigned long port = strtoul(line, NULL, 10);
	if (port == 0 || port > 65535)
		return;
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
	int out = socket(ss.ss_family, SOCK_STREAM, 0);
	if (out < 0 || connect(out, (struct sockaddr *)&ss, len) < 0) {
		int len2 = snprintf(line, sizeof(line), "%s\n", errno_name(errno));
		peer_write_all(fd, line, (size_t)len2);
		return;
	}
	peer_write_all(fd, "ok\n", 3);
	if (strstr(line, "watch"))
		peer_watch(out, fd);
	else
		peer_echo(out);
	close(out);
}

static void peer_serve(int service, int fd)
{
	switch (service) {
	case PEER_ECHO:
		peer_echo(fd);
		break;
	case PEER_SOURCE:
		peer_source_serve(fd);
		break;
	case PEER_RESET:
		peer_reset_serve(fd);
		break;
	case PEER_COUNT:
		peer_count_serve(fd);
		break;
	case PEER_HOLD:
		peer_hold_serve(fd);
		break;
	case PEER_DIAL:
		peer_dial_serve(fd);
		break;
	case PEER_WATCH:
		peer_watch_serve(fd);
		break;
	case PEER_SUM:
		peer_sum_serve(fd);
		break;
	}
	close(fd);
}

/* A UDP socket on [::]:port taking IPv4 too, or on 0.0.0.0:port where there is no IPv6. */
static int peer_udp(uint16_t port)
{
	int zero = 0;
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd >= 0) {
		struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		if (bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0)
			return fd;
		close(fd);
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = INADDR_ANY };
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
		return fd;
	close(fd);
	return -1;
}

/* Answers every datagram queued on in: back to its sender, from out. Datagrams on the reply port are dropped. */
static void peer_udp_serve(int in, int out, bool answer)
{
	static char buf[65536];
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		ssize_t r = recvfrom(in, buf, sizeof(buf), 0, (struct sockaddr *)&ss, &len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return;
		if (answer)
			sendto(out, buf, (size_t)r, 0, (struct sockaddr *)&ss, len);
	}
}

static int peer_listen(uint16_t port)
{
	int one = 1, zero = 0;
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = in6addr_any };
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		if (bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0 && listen(fd, 64) == 0)
			return fd;
		close(fd);
	}
	/* No IPv6 in this namespace: serve IPv4 alone, and let the _6 cases fail visibly. */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = INADDR_ANY };
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 && listen(fd, 64) == 0)
		return fd;
	close(fd);
	return -1;
}

int peer_main(int argc, char **argv)
{
	unsigned long port = 0;
	if (argc == 3 && strcmp(argv[1], "--port") == 0)
		port = strtoul(argv[2], NULL, 10);
	if (port == 0 || port + PEER_CLOSED > 65535) {
		fprintf(stderr, "usage: conform peer --port P   (TCP P..P+%d, UDP P..P+2; P+%d stays closed)\n",
		        PEER_NSERVICES - 1, PEER_CLOSED);
		return 2;
	}
	/* The UDP services first: once the last TCP listener is up, everything is. */
	enum { NUDP = 3 };
	struct pollfd pfd[PEER_NSERVICES + NUDP];
	for (int u = 0; u < NUDP; u++) {
		pfd[PEER_NSERVICES + u].fd = peer_udp((uint16_t)(port + (unsigned)u));
		pfd[PEER_NSERVICES + u].events = POLLIN;
		if (pfd[PEER_NSERVICES + u].fd < 0) {
			fprintf(stderr, "conform peer: cannot bind UDP port %lu: %s\n", port + (unsigned)u,
			        strerror(errno));
			return 1;
		}
	}
	for (int s = 0; s < PEER_NSERVICES; s++) {
		pfd[s].fd = peer_listen((uint16_t)(port + (unsigned)s));
		pfd[s].events = POLLIN;
		if (pfd[s].fd < 0) {
			fprintf(stderr, "conform peer: cannot listen on port %lu: %s\n", port + (unsigned)s, strerror(errno));
			return 1;
		}
	}
	signal(SIGCHLD, SIG_IGN); /* the kernel reaps the per-connection children */
	signal(SIGPIPE, SIG_IGN);
	fprintf(stderr, "conform peer: serving on TCP ports %lu..%lu, UDP ports %lu..%lu\n", port,
	        port + PEER_NSERVICES - 1, port, port + NUDP - 1);
	pid_t self = getpid();
	for (;;) {
		if (poll(pfd, PEER_NSERVICES + NUDP, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "conform peer: poll: %s\n", strerror(errno));
			return 1;
		}
		struct pollfd *udp = pfd + PEER_NSERVICES;
		if (udp[PEER_UDP_ECHO].revents & POLLIN)
			peer_udp_serve(udp[PEER_UDP_ECHO].fd, udp[PEER_UDP_ECHO].fd, true);
		if (udp[PEER_UDP_OTHER].revents & POLLIN)
			peer_udp_serve(udp[PEER_UDP_OTHER].fd, udp[PEER_UDP_REPLY].fd, true);
		if (udp[PEER_UDP_REPLY].revents & POLLIN)
			peer_udp_serve(udp[PEER_UDP_REPLY].fd, -1, false);
		for (int s = 0; s < PEER_NSERVICES; s++) {
			if (!(pfd[s].revents & POLLIN))
				continue;
			int fd = accept4(pfd[s].fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0)
				continue;
			pid_t pid = fork();
			if (pid == 0) {
				prctl(PR_SET_PDEATHSIG, SIGKILL);
				if (getppid() != self)
					_exit(0);
				for (int i = 0; i < PEER_NSERVICES + NUDP; i++)
					close(pfd[i].fd);
				peer_serve(s, fd);
				_exit(0);
			}
			close(fd);
		}
	}
}
