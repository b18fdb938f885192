/*
 * idleconn: the scale workload of bench/run (many idle connections through one relay).
 *
 *   idleconn hold PORT
 *       Accepts on 0.0.0.0:PORT and keeps every connection open, doing nothing, until the peer closes it.
 *
 *   idleconn open ADDR PORT N
 *       Opens 1 connection, prints "base", and waits for a line on stdin; then opens N more (blocking connects,
 *       one after the other), prints "ready N", and holds them all until stdin reaches EOF.  The caller measures
 *       the relay between "base" and "ready" (memory) and after "ready" (CPU while idle).
 *       Exits 1 (after printing "failed K errno") if a connection could not be made.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static void raise_nofile(void)
{
	struct rlimit rl = { 1 << 17, 1 << 17 };

	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int hold(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct epoll_event ev, evs[256];
	int one = 1, lfd, ep;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 4096) < 0) {
		perror("idleconn hold: listen");
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.events = EPOLLIN;
	ev.data.fd = lfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			char buf[4096];

			if (fd == lfd) {
				while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					ev.events = EPOLLIN | EPOLLRDHUP;
					ev.data.fd = fd;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			/* drain; close on EOF or error */
			for (;;) {
				ssize_t r = read(fd, buf, sizeof(buf));

				if (r > 0)
					continue;
				if (r < 0 && errno == EAGAIN)
					break;
				close(fd);
				break;
			}
		}
	}
}

static int open_one(const struct sockaddr_in *a)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)a, sizeof(*a)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

static int open_idle(const char *addr, int port, int n)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	char line[64];
	int fd;

	if (inet_pton(AF_INET, addr, &a.sin_addr) != 1) {
		fprintf(stderr, "idleconn: bad address %s\n", addr);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	fd = open_one(&a);
	if (fd < 0) {
		printf("failed 0 %s\n", strerror(-fd));
		return 1;
	}
	printf("base\n");
	if (!fgets(line, sizeof(line), stdin))
		return 0;
	for (int i = 1; i <= n; i++) {
		fd = open_one(&a);
		if (fd < 0) {
			printf("failed %d %s\n", i, strerror(-fd));
			return 1;
		}
	}
	printf("ready %d\n", n);
	while (fgets(line, sizeof(line), stdin))
		;
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	if (argc == 3 && !strcmp(argv[1], "hold"))
		return hold(atoi(argv[2]));
	if (argc == 5 && !strcmp(argv[1], "open"))
		return open_idle(argv[2], atoi(argv[3]), atoi(argv[4]));
	fprintf(stderr, "usage: idleconn hold PORT | idleconn open ADDR PORT N\n");
	return 2;
}
