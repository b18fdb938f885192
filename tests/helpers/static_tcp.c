/*
 * static_tcp.c: a TCP client that tests/test_static_tcp.py builds statically (glibc -static, musl-gcc), so
 * that its socket calls are raw system calls no preload sees.  It prints one line per step, "step: outcome",
 * where an outcome is the call's result or errno name: the test runs it directly (the kernel is the oracle)
 * and under mwrun, and the two outputs must be the same.
 *
 *   static_tcp HOST PORT CLOSED_PORT   HOST: an IPv4 or IPv6 literal; PORT: an echo server that answers
 *                                      after the client's FIN; CLOSED_PORT: nothing listens there
 *   static_tcp udp HOST PORT           one UDP datagram: "udp sendto: ok" or its errno
 *   static_tcp server 4|6              a listener on loopback and connections to it from itself
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *ename(int e)
{
	switch (e) {
	case 0: return "0";
	case EINPROGRESS: return "EINPROGRESS";
	case EISCONN: return "EISCONN";
	case EALREADY: return "EALREADY";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ENOTCONN: return "ENOTCONN";
	case EINVAL: return "EINVAL";
	case EFAULT: return "EFAULT";
	case EBADF: return "EBADF";
	case ENOTSOCK: return "ENOTSOCK";
	case ENOPROTOOPT: return "ENOPROTOOPT";
	default: return strerror(e);
	}
}

static void say(const char *step, int ret)
{
	printf("%s: %s\n", step, ret < 0 ? ename(errno) : ret == 0 ? "0" : "ok");
	fflush(stdout);
}

static struct sockaddr_storage target;
static socklen_t target_len;
static int family;

static void addr_set(const char *host, int port)
{
	struct sockaddr_in *a = (struct sockaddr_in *)&target;
	struct sockaddr_in6 *b = (struct sockaddr_in6 *)&target;

	memset(&target, 0, sizeof(target));
	if (inet_pton(AF_INET, host, &a->sin_addr) == 1) {
		a->sin_family = family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		target_len = sizeof(*a);
	} else if (inet_pton(AF_INET6, host, &b->sin6_addr) == 1) {
		b->sin6_family = family = AF_INET6;
		b->sin6_port = htons((uint16_t)port);
		target_len = sizeof(*b);
	} else {
		fprintf(stderr, "bad address %s\n", host);
		exit(2);
	}
}

/* "4 OTHERPORT" etc.: what a name says, with the parts that differ between runs left out. */
static void say_name(const char *step, int fd, int peer)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int ret = peer ? getpeername(fd, (struct sockaddr *)&ss, &len) : getsockname(fd, (struct sockaddr *)&ss, &len);
	int port;

	if (ret < 0) {
		say(step, ret);
		return;
	}
	port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					     : ((struct sockaddr_in6 *)&ss)->sin6_port);
	if (peer)
		printf("%s: family %d len %u same %d\n", step, ss.ss_family, (unsigned)len,
		       len == target_len && memcmp(&ss, &target, len) == 0);
	else
		printf("%s: family %d len %u port %s\n", step, ss.ss_family, (unsigned)len, port ? "set" : "0");
	/* A short buffer: the kernel stores what fits and the full length. */
	len = 4;
	memset(&ss, 0xee, sizeof(ss));
	ret = peer ? getpeername(fd, (struct sockaddr *)&ss, &len) : getsockname(fd, (struct sockaddr *)&ss, &len);
	printf("%s short: %d len %u family %d byte4 %02x\n", step, ret, (unsigned)len, ss.ss_family,
	       ((unsigned char *)&ss)[4]);
	fflush(stdout);
}

static void say_int_opt(const char *step, int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, level, name, &v, &len) < 0)
		say(step, -1);
	else
		printf("%s: %d len %u\n", step, v != 0 && level == IPPROTO_TCP ? 1 : v, (unsigned)len);
	fflush(stdout);
}

/* The exchange: request, FIN, the echo back until EOF. */
static void exchange(int fd, const char *what)
{
	char buf[256], step[64];
	ssize_t n, got = 0;

	snprintf(step, sizeof(step), "%s send", what);
	say(step, write(fd, "hello mwcomms\n", 14) == 14 ? 1 : -1);
	snprintf(step, sizeof(step), "%s shutdown wr", what);
	say(step, shutdown(fd, SHUT_WR));
	while ((n = read(fd, buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
		got += n;
	buf[got > 0 ? got : 0] = 0;
	printf("%s reply: %s", what, got > 0 ? buf : "(none)\n");
	snprintf(step, sizeof(step), "%s write after shutdown", what);
	say(step, (int)send(fd, "x", 1, MSG_NOSIGNAL));
	fflush(stdout);
}


static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b, socklen_t len)
{
	return memcmp(a, b, len) == 0;
}

/* A listener and connections to it, each step's outcome printed. */
static int server(int fam)
{
	struct sockaddr_storage la = { 0 }, ca, pa, aa;
	socklen_t llen, clen = sizeof(ca), plen = sizeof(pa), alen;
	int l, c, a, v, one = 1;
	char buf[16] = { 0 };
	pid_t kid;

	family = fam;
	if (fam == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&la;

		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		llen = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&la;

		in6->sin6_family = AF_INET6;
		in6->sin6_addr = in6addr_loopback;
		llen = sizeof(*in6);
	}
	l = socket(fam, SOCK_STREAM, 0);
	say("reuseaddr", setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
	say("bind", bind(l, (struct sockaddr *)&la, llen));
	say("bind again", bind(l, (struct sockaddr *)&la, llen));
	say("accept before listen", accept(l, NULL, NULL));
	say_int_opt("SO_ACCEPTCONN before", l, SOL_SOCKET, SO_ACCEPTCONN);
	say("listen", listen(l, 8));
	say_int_opt("SO_ACCEPTCONN", l, SOL_SOCKET, SO_ACCEPTCONN);
	alen = sizeof(la);
	getsockname(l, (struct sockaddr *)&la, &alen);
	printf("listener port: %s\n", ntohs(((struct sockaddr_in *)&la)->sin_port) ? "set" : "0");
	say("getpeername listener", getpeername(l, (struct sockaddr *)&pa, &plen));
	fcntl(l, F_SETFL, O_NONBLOCK);
	say("accept none pending", accept(l, NULL, NULL));
	say("accept4 bad flags", accept4(l, NULL, NULL, 0x40000000));

	/* One connection, accepted with its address. */
	c = socket(fam, SOCK_STREAM, 0);
	say("connect to it", connect(c, (struct sockaddr *)&la, alen));
	getsockname(c, (struct sockaddr *)&ca, &clen);
	{
		struct pollfd p = { .fd = l, .events = POLLIN };

		say("listener readable", poll(&p, 1, 10000) == 1 && (p.revents & POLLIN) ? 1 : -1);
	}
	plen = sizeof(pa);
	a = accept4(l, (struct sockaddr *)&pa, &plen, SOCK_CLOEXEC | SOCK_NONBLOCK);
	say("accept4", a < 0 ? -1 : 1);
	printf("accepted peer: family %d len %u same %d\n", pa.ss_family, (unsigned)plen,
	       plen == clen && same_addr(&pa, &ca, clen));
	printf("accepted flags: cloexec %d nonblock %d\n", fcntl(a, F_GETFD) == FD_CLOEXEC,
	       (fcntl(a, F_GETFL) & O_NONBLOCK) != 0);
	alen = sizeof(aa);
	getsockname(a, (struct sockaddr *)&aa, &alen);
	printf("accepted local is the listener's: %d\n", alen == llen && same_addr(&aa, &la, llen));
	say_name("accepted getpeername", a, 1);
	say_int_opt("accepted SO_ACCEPTCONN", a, SOL_SOCKET, SO_ACCEPTCONN);
	say("client send", write(c, "ping", 4) == 4 ? 1 : -1);
	fcntl(a, F_SETFL, 0);
	say("accepted recv", read(a, buf, 4) == 4 && !memcmp(buf, "ping", 4) ? 1 : -1);
	say("accepted send", write(a, "pong", 4) == 4 ? 1 : -1);
	say("client recv", read(c, buf, 4) == 4 && !memcmp(buf, "pong", 4) ? 1 : -1);
	close(c);
	say("accepted sees the end", (int)read(a, buf, 4));
	close(a);

	/* A blocking accept that waits for a connection made later (by a child). */
	fcntl(l, F_SETFL, 0);
	kid = fork();
	if (kid == 0) {
		usleep(200000);
		c = socket(fam, SOCK_STREAM, 0);
		v = connect(c, (struct sockaddr *)&la, llen);
		if (v == 0)
			v = write(c, "kid", 3) == 3 ? 0 : -1;
		close(c);
		_exit(v ? 1 : 0);
	}
	a = accept(l, NULL, NULL);
	say("blocking accept", a < 0 ? -1 : 1);
	memset(buf, 0, sizeof(buf));
	say("from the child", read(a, buf, 3) == 3 && !memcmp(buf, "kid", 3) ? 1 : -1);
	waitpid(kid, &v, 0);
	say("child connected", WIFEXITED(v) && WEXITSTATUS(v) == 0 ? 1 : -1);
	close(a);
	say("shutdown listener", shutdown(l, SHUT_RDWR));
	close(l);
	return 0;
}

int main(int argc, char **argv)
{
	struct pollfd p;
	int fd, fd2, one = 1, v;
	socklen_t len;

	if (argc == 3 && !strcmp(argv[1], "server"))
		return server(atoi(argv[2]) == 6 ? AF_INET6 : AF_INET);
	if (argc == 4 && !strcmp(argv[1], "udp")) {
		addr_set(argv[2], atoi(argv[3]));
		fd = socket(family, SOCK_DGRAM, 0);
		say("udp sendto", (int)sendto(fd, "x", 1, 0, (struct sockaddr *)&target, target_len));
		return 0;
	}
	if (argc != 4) {
		fprintf(stderr, "usage: static_tcp HOST PORT CLOSED_PORT\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* A blocking client, its options and names. */
	addr_set(argv[1], atoi(argv[2]));
	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	say("socket", fd < 0 ? -1 : 1);
	say("cloexec", fcntl(fd, F_GETFD) == FD_CLOEXEC ? 1 : -1);
	say_int_opt("SO_TYPE", fd, SOL_SOCKET, SO_TYPE);
	say_int_opt("SO_DOMAIN", fd, SOL_SOCKET, SO_DOMAIN);
	say_int_opt("SO_PROTOCOL", fd, SOL_SOCKET, SO_PROTOCOL);
	say_int_opt("SO_ERROR unconnected", fd, SOL_SOCKET, SO_ERROR);
	say("setsockopt TCP_NODELAY", setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)));
	say_int_opt("TCP_NODELAY", fd, IPPROTO_TCP, TCP_NODELAY);
	say("setsockopt bad level", setsockopt(fd, 12345, 1, &one, sizeof(one)));
	say("setsockopt EFAULT", setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, (void *)8, sizeof(one)));
	say("getpeername unconnected", getpeername(fd, (struct sockaddr *)&(struct sockaddr_storage){ 0 },
						    &(socklen_t){ sizeof(struct sockaddr_storage) }));
	/* (On a socket of its own: the kernel marks even an unconnected socket shut.) */
	fd2 = socket(family, SOCK_STREAM, 0);
	say("shutdown unconnected", shutdown(fd2, SHUT_WR));
	close(fd2);
	say_name("getsockname unconnected", fd, 0);
	say("connect", connect(fd, (struct sockaddr *)&target, target_len));
	say("connect again", connect(fd, (struct sockaddr *)&target, target_len));
	say_name("getsockname", fd, 0);
	say_name("getpeername", fd, 1);
	say("shutdown bad how", shutdown(fd, 7));
	exchange(fd, "blocking");
	close(fd);

	/* Non-blocking: EINPROGRESS, POLLOUT, SO_ERROR 0, then EISCONN. */
	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK, IPPROTO_TCP);
	say("nb socket", fd < 0 ? -1 : 1);
	say("nb flags", fcntl(fd, F_GETFL) & O_NONBLOCK ? 1 : -1);
	v = connect(fd, (struct sockaddr *)&target, target_len);
	printf("nb connect: %s\n", v == 0 || errno == EINPROGRESS ? "0 or EINPROGRESS" : ename(errno));
	p = (struct pollfd){ .fd = fd, .events = POLLOUT };
	say("nb poll", poll(&p, 1, 10000) == 1 && (p.revents & POLLOUT) ? 1 : -1);
	say_int_opt("nb SO_ERROR", fd, SOL_SOCKET, SO_ERROR);
	say("nb connect again", connect(fd, (struct sockaddr *)&target, target_len));
	say_name("nb getpeername", fd, 1);
	fcntl(fd, F_SETFL, 0);
	exchange(fd, "nb");
	close(fd);

	/* Refused, blocking and not. */
	addr_set(argv[1], atoi(argv[3]));
	fd = socket(family, SOCK_STREAM, 0);
	say("refused connect", connect(fd, (struct sockaddr *)&target, target_len));
	say_int_opt("refused SO_ERROR after", fd, SOL_SOCKET, SO_ERROR);
	say("refused getpeername", getpeername(fd, (struct sockaddr *)&(struct sockaddr_storage){ 0 },
						&(socklen_t){ sizeof(struct sockaddr_storage) }));
	close(fd);
	fd2 = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	v = connect(fd2, (struct sockaddr *)&target, target_len);
	printf("nb refused connect: %s\n", v == 0 ? "0" : errno == EINPROGRESS || errno == ECONNREFUSED
								  ? "EINPROGRESS or ECONNREFUSED" : ename(errno));
	if (v < 0 && errno == EINPROGRESS) {
		p = (struct pollfd){ .fd = fd2, .events = POLLOUT };
		poll(&p, 1, 10000);
		len = sizeof(v);
		getsockopt(fd2, SOL_SOCKET, SO_ERROR, &v, &len);
		printf("nb refused SO_ERROR: %s\n", ename(v));
	} else {
		printf("nb refused SO_ERROR: %s\n", ename(ECONNREFUSED));
	}
	say_int_opt("nb refused SO_ERROR again", fd2, SOL_SOCKET, SO_ERROR);
	close(fd2);

	/* Calls on fds that are not carriers go to the kernel. */
	say("getsockname on a pipe", getsockname(0, (struct sockaddr *)&(struct sockaddr_storage){ 0 },
						 &(socklen_t){ sizeof(struct sockaddr_storage) }));
	say("getsockopt on a bad fd", getsockopt(999, SOL_SOCKET, SO_TYPE, &v, &(socklen_t){ sizeof(v) }));
	return 0;
}
