/*
 * connrate: the connection-rate workload of bench/run.
 *
 *   connrate server PORT
 *       Accepts on 0.0.0.0:PORT.  For each connection: read a 64-byte request, write a 64-byte response, close.
 *       The server closes first (as an HTTP/1.0 server does), so TIME_WAIT stays on the server side and the
 *       client never runs out of ports.  One thread, epoll, non-blocking.
 *
 *   connrate client ADDR PORT SECONDS
 *       Sequentially, until SECONDS have passed: socket, connect (blocking), write the request, read the
 *       response until EOF, close.  Prints one line:  conns=N errors=E secs=S rate=R
 *       Exits 1 if no connection completed.
 *
 * Plain POSIX sockets, so the same binary runs directly, under mwrun, and under proxychains4.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG 64

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void raise_nofile(void)
{
	struct rlimit rl = { 1 << 16, 1 << 16 };

	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

struct conn {
	int fd;
	int got;
};

static int server(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct epoll_event ev, evs[256];
	int one = 1, lfd, ep;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 4096) < 0) {
		perror("connrate server: listen");
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);

		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			char buf[MSG];

			if (!c) {
				for (;;) {
					int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

					if (fd < 0)
						break;
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					c = calloc(1, sizeof(*c));
					if (!c) {
						close(fd);
						continue;
					}
					c->fd = fd;
					ev.events = EPOLLIN | EPOLLRDHUP;
					ev.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			for (;;) {
				ssize_t r = read(c->fd, buf, sizeof(buf) - (size_t)c->got);

				if (r > 0) {
					c->got += (int)r;
					if (c->got < MSG)
						continue;
					memset(buf, 'r', sizeof(buf));
					if (write(c->fd, buf, MSG) != MSG) {
						/* a 64-byte write to a fresh socket always fits; a failure means the peer is gone */
					}
				} else if (r < 0 && errno == EAGAIN) {
					break;
				}
				/* response sent, EOF or error: done with this connection */
				close(c->fd);
				free(c);
				break;
			}
		}
	}
}

static int client(const char *addr, int port, double secs)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	long conns = 0, errors = 0;
	double t0, t;
	char req[MSG], buf[MSG * 2];

	if (inet_pton(AF_INET, addr, &a.sin_addr) != 1) {
		fprintf(stderr, "connrate client: bad address %s\n", addr);
		return 2;
	}
	memset(req, 'q', sizeof(req));
	t0 = now();
	do {
		int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1, got = 0;
		ssize_t r;

		if (fd < 0) {
			perror("socket");
			return 1;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || write(fd, req, MSG) != MSG) {
			errors++;
			close(fd);
			if (errors > 100 && errors > conns)
				break;
			continue;
		}
		while ((r = read(fd, buf, sizeof(buf))) > 0)
			got += (int)r;
		close(fd);
		if (r == 0 && got == MSG)
			conns++;
		else
			errors++;
	} while ((t = now()) - t0 < secs);
	t = now() - t0;
	printf("conns=%ld errors=%ld secs=%.3f rate=%.1f\n", conns, errors, t, (double)conns / t);
	return conns > 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	if (argc == 3 && !strcmp(argv[1], "server"))
		return server(atoi(argv[2]));
	if (argc == 5 && !strcmp(argv[1], "client"))
		return client(argv[2], atoi(argv[3]), atof(argv[4]));
	fprintf(stderr, "usage: connrate server PORT | connrate client ADDR PORT SECONDS\n");
	return 2;
}
