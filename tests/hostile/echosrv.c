/*
 * echosrv: the peer in ns world for the hostile and fault tests.  One thread, one epoll, any number of
 * connections, dual stack ([::]:PORT, v6only off).
 *
 *   echosrv PORT MODE
 *
 *   echo    echo every byte; when the client half-closes, send what is left, half-close too, then close
 *   silent  accept and hold: never read, never write (the client's recv blocks; its sends fill up and block)
 *   source  send an endless stream (and discard anything received)
 *   sink    read and discard everything, never send
 *   close   accept and close at once (connection churn)
 *
 * Prints "listening PORT" once ready; runs until killed.
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

enum mode { M_ECHO, M_SILENT, M_SOURCE, M_SINK, M_CLOSE };

#define BUF (64 * 1024)

struct conn {
	int fd;
	char *buf;      /* echo: bytes read but not yet written back */
	size_t off, len;
	int rd_eof;     /* the client half-closed */
	int wr_shut;
};

static enum mode mode;
static int ep;
static char junk[BUF];
static char stream[BUF];

static void conn_free(struct conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->buf);
	free(c);
}

static void want(struct conn *c, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = c };

	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

/* echo: returns -1 when the connection is finished (freed) */
static int echo_pump(struct conn *c)
{
	for (int i = 0; i < 64; i++) {
		ssize_t n;

		while (c->off < c->len) {
			n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0) {
				if (errno == EAGAIN) {
					want(c, EPOLLOUT); /* stop reading until the client takes its echo */
					return 0;
				}
				conn_free(c);
				return -1;
			}
			c->off += (size_t)n;
		}
		c->off = c->len = 0;
		if (c->rd_eof) {
			if (!c->wr_shut) {
				shutdown(c->fd, SHUT_WR);
				c->wr_shut = 1;
			}
			conn_free(c);
			return -1;
		}
		n = recv(c->fd, c->buf, BUF, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN) {
				want(c, EPOLLIN | EPOLLRDHUP);
				return 0;
			}
			conn_free(c);
			return -1;
		}
		if (n == 0)
			c->rd_eof = 1;
		c->len = (size_t)n;
	}
	return 0; /* level-triggered: we come back */
}

static void conn_event(struct conn *c, uint32_t ev)
{
	ssize_t n;

	switch (mode) {
	case M_ECHO:
		echo_pump(c);
		return;
	case M_SILENT:
		if (ev & (EPOLLHUP | EPOLLERR | EPOLLRDHUP))
			conn_free(c);
		return;
	case M_SINK:
		for (int i = 0; i < 64; i++) {
			n = recv(c->fd, junk, sizeof(junk), MSG_DONTWAIT);
			if (n < 0 && errno == EAGAIN)
				return;
			if (n <= 0) {
				conn_free(c);
				return;
			}
		}
		return;
	case M_SOURCE:
		if (ev & (EPOLLHUP | EPOLLERR)) {
			conn_free(c);
			return;
		}
		while ((n = recv(c->fd, junk, sizeof(junk), MSG_DONTWAIT)) > 0)
			;
		if (n == 0) {
			conn_free(c);
			return;
		}
		for (int i = 0; i < 64; i++) {
			n = send(c->fd, stream, sizeof(stream), MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0) {
				if (errno != EAGAIN)
					conn_free(c);
				return;
			}
		}
		return;
	case M_CLOSE:
		conn_free(c);
		return;
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };
	struct epoll_event evs[256], e;
	struct rlimit rl;
	int lfd, one = 1, zero = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: echosrv PORT echo|silent|source|sink|close\n");
		return 2;
	}
	if (!strcmp(argv[2], "echo"))
		mode = M_ECHO;
	else if (!strcmp(argv[2], "silent"))
		mode = M_SILENT;
	else if (!strcmp(argv[2], "source"))
		mode = M_SOURCE;
	else if (!strcmp(argv[2], "sink"))
		mode = M_SINK;
	else if (!strcmp(argv[2], "close"))
		mode = M_CLOSE;
	else {
		fprintf(stderr, "echosrv: unknown mode %s\n", argv[2]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	for (size_t i = 0; i < sizeof(stream); i++)
		stream[i] = (char)('a' + i % 26);
	sa.sin6_port = htons((uint16_t)atoi(argv[1]));
	lfd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4096) < 0) {
		perror("echosrv: listen");
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	e.events = EPOLLIN;
	e.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &e);
	printf("listening %s\n", argv[1]);
	fflush(stdout);
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);

		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL) {
				for (int k = 0; k < 256; k++) {
					int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					struct conn *c;

					if (fd < 0)
						break;
					if (mode == M_CLOSE) {
						close(fd);
						continue;
					}
					c = calloc(1, sizeof(*c));
					if (!c || (mode == M_ECHO && !(c->buf = malloc(BUF)))) {
						free(c);
						close(fd);
						continue;
					}
					c->fd = fd;
					e.data.ptr = c;
					e.events = mode == M_SILENT ? EPOLLRDHUP
						 : mode == M_SOURCE ? EPOLLIN | EPOLLOUT
						 : EPOLLIN | EPOLLRDHUP;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
				}
				continue;
			}
			conn_event(evs[i].data.ptr, evs[i].events);
		}
	}
}
