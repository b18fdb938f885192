/*
 * case-options.c: the options real programs set, what they read back, and the errors for the ones the kernel
 * refuses; SO_DOMAIN/SO_TYPE/SO_PROTOCOL and the family of every name; SO_LINGER {1, 0} as the peer sees it;
 * sendfile and splice; FIONREAD and SIOCOUTQ.
 *
 * Values that the kernel derives from the machine (buffer sizes) are printed as relations ("ge=yes"); values that
 * it rounds (TCP_DEFER_ACCEPT) are printed as it returns them, since the real socket must give the same.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/time.h>
#include <termios.h>
#include <unistd.h>

#include "conform.h"

static const char *sockname(int fd)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	socklen_t len = sizeof(ss);
	long r = res(getsockname(fd, (struct sockaddr *)&ss, &len));
	return r < 0 ? res_str(r) : sa_desc(&ss, len);
}

/* Notes "key=KIND:NAME" and fails unless the socket is INET/INET6 of the family, and its name too. */
static void kind_note(const char *key, int fd, int family, const char *want_kind)
{
	const char *k = sock_kind(fd), *n = sockname(fd);
	note("%s=%s:%s", key, k, n);
	const char *prefix = family == AF_INET ? "inet:" : "inet6:";
	expect(strcmp(k, want_kind) == 0 && strncmp(n, prefix, strlen(prefix)) == 0, "%s: want %s, never unix", key,
	       want_kind);
}

static void sock_info(int family)
{
	const char *stream = family == AF_INET ? "inet/stream/tcp" : "inet6/stream/tcp";
	const char *dgram = family == AF_INET ? "inet/dgram/udp" : "inet6/dgram/udp";
	int fd = tcp_socket(family, 0);
	kind_note("tcp", fd, family, stream);
	struct sockaddr_storage pa;
	socklen_t palen = peer_addr(family, PEER_ECHO, &pa);
	expect_res("connect", res(connect(fd, (struct sockaddr *)&pa, palen)), 0);
	kind_note("tcp_connected", fd, family, stream);
	close(fd);
	fd = tcp_socket(family, SOCK_NONBLOCK | SOCK_CLOEXEC);
	kind_note("tcp_flags", fd, family, stream);
	close(fd);
	fd = socket(family, SOCK_STREAM, IPPROTO_TCP);
	kind_note("tcp_explicit", fd, family, stream);
	close(fd);
	expect_res("stream_udp", res(socket(family, SOCK_STREAM, IPPROTO_UDP)), -EPROTONOSUPPORT);
	expect_res("dgram_tcp", res(socket(family, SOCK_DGRAM, IPPROTO_TCP)), -EPROTONOSUPPORT);

	uint16_t port;
	int lfd = tcp_listen(family, 0, &port);
	kind_note("listener", lfd, family, stream);
	int ctl = peer_dial(family, port);
	int a = accept(lfd, NULL, NULL);
	if (a < 0)
		setup_fail("accept: %s", errno_name(errno));
	note("dial=%s", dial_result(ctl));
	kind_note("accepted", a, family, stream);
	close(a);
	close(ctl);
	close(lfd);

	fd = udp_socket(family, 0);
	kind_note("udp", fd, family, dgram);
	palen = peer_addr(family, PEER_UDP_ECHO, &pa);
	expect_res("udp_connect", res(connect(fd, (struct sockaddr *)&pa, palen)), 0);
	kind_note("udp_connected", fd, family, dgram);
	close(fd);
	fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK, IPPROTO_UDP);
	kind_note("udp_explicit", fd, family, dgram);
	/* Read-only options. */
	int one = 1;
	expect_res("set_so_type", res(setsockopt(fd, SOL_SOCKET, SO_TYPE, &one, sizeof(one))), -ENOPROTOOPT);
	expect_res("set_so_domain", res(setsockopt(fd, SOL_SOCKET, SO_DOMAIN, &one, sizeof(one))), -ENOPROTOOPT);
	close(fd);
}

CASE(sock_info_4) { sock_info(AF_INET); }
CASE(sock_info_6) { sock_info(AF_INET6); }

static socklen_t any_addr(int family, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = (sa_family_t)family;
	if (family == AF_INET) {
		((struct sockaddr_in *)ss)->sin_port = htons(port);
		return sizeof(struct sockaddr_in);
	}
	((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	return sizeof(struct sockaddr_in6);
}

static uint16_t port_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		setup_fail("getsockname: %s", errno_name(errno));
	return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
	                                     : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void reuseport(int family)
{
	int one = 1;
	struct sockaddr_storage ss;
	int l1 = tcp_socket(family, SOCK_NONBLOCK);
	expect_res("default", sockopt_int(l1, SOL_SOCKET, SO_REUSEPORT), 0);
	expect_res("set1", res(setsockopt(l1, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))), 0);
	expect_res("get1", sockopt_int(l1, SOL_SOCKET, SO_REUSEPORT), 1);
	socklen_t len = any_addr(family, 0, &ss);
	expect_res("bind1", res(bind(l1, (struct sockaddr *)&ss, len)), 0);
	uint16_t port = port_of(l1);
	len = any_addr(family, port, &ss);
	int l2 = tcp_socket(family, SOCK_NONBLOCK);
	expect_res("set2", res(setsockopt(l2, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))), 0);
	expect_res("bind2", res(bind(l2, (struct sockaddr *)&ss, len)), 0);
	expect_res("listen1", res(listen(l1, 8)), 0);
	expect_res("listen2", res(listen(l2, 8)), 0);
	int l3 = tcp_socket(family, 0);
	expect_res("bind_without", res(bind(l3, (struct sockaddr *)&ss, len)), -EADDRINUSE);
	close(l3);
	/* Connections are spread by a hash of the addresses: only the total is fixed. */
	enum { N = 4 };
	int ctl[N], got = 0;
	for (int i = 0; i < N; i++)
		ctl[i] = peer_dial(family, port);
	int64_t deadline = now_ms() + 3000;
	while (got < N && now_ms() < deadline) {
		struct pollfd pf[2] = { { .fd = l1, .events = POLLIN }, { .fd = l2, .events = POLLIN } };
		if (poll(pf, 2, 200) <= 0)
			continue;
		for (int i = 0; i < 2; i++) {
			int a = accept(pf[i].fd, NULL, NULL);
			if (a >= 0) {
				got++;
				close(a);
			}
		}
	}
	note("accepted=%d", got);
	expect(got == N, "want all %d connections accepted", N);
	for (int i = 0; i < N; i++)
		close(ctl[i]);
	close(l1);
	close(l2);

	/* UDP: two sockets on one port. */
	int u1 = udp_socket(family, 0), u2 = udp_socket(family, 0);
	setsockopt(u1, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	setsockopt(u2, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	len = any_addr(family, 0, &ss);
	expect_res("udp_bind1", res(bind(u1, (struct sockaddr *)&ss, len)), 0);
	len = any_addr(family, port_of(u1), &ss);
	expect_res("udp_bind2", res(bind(u2, (struct sockaddr *)&ss, len)), 0);
	int u3 = udp_socket(family, 0);
	expect_res("udp_bind_without", res(bind(u3, (struct sockaddr *)&ss, len)), -EADDRINUSE);
	close(u1);
	close(u2);
	close(u3);

	/* For UDP, SO_REUSEADDR on both lets two sockets share a port as well. */
	u1 = udp_socket(family, 0);
	u2 = udp_socket(family, 0);
	expect_res("udp_reuseaddr_set1", res(setsockopt(u1, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one))), 0);
	expect_res("udp_reuseaddr_set2", res(setsockopt(u2, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one))), 0);
	len = any_addr(family, 0, &ss);
	expect_res("udp_reuseaddr_bind1", res(bind(u1, (struct sockaddr *)&ss, len)), 0);
	len = any_addr(family, port_of(u1), &ss);
	expect_res("udp_reuseaddr_bind2", res(bind(u2, (struct sockaddr *)&ss, len)), 0);
	close(u1);
	close(u2);
}

CASE(reuseport_4) { reuseport(AF_INET); }
CASE(reuseport_6) { reuseport(AF_INET6); }

/* Reads one line from the peer, up to 3 s, with its spaces as colons so that it stays one token ("EOF:5").
 * Static buffer. */
static const char *read_line(int fd)
{
	static char line[64];
	snprintf(line, sizeof(line), "%s", dial_result(fd));
	for (char *p = line; *p; p++)
		if (*p == ' ')
			*p = ':';
	return line;
}

/* Connects to a PEER_WATCH data port: the request connection through *ctl. */
static int watch_connect(int family, int *ctl)
{
	*ctl = peer_connect(family, PEER_WATCH);
	send_all(*ctl, "watch\n", 6);
	const char *line = read_line(*ctl);
	unsigned long port = strtoul(line, NULL, 10);
	if (port == 0 || port > 65535)
		setup_fail("watch: peer said %s", line);
	struct sockaddr_storage ss;
	socklen_t len = peer_addr(family, PEER_ECHO, &ss);
	if (family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
	int fd = tcp_socket(family, 0);
	if (connect(fd, (struct sockaddr *)&ss, len) < 0)
		setup_fail("watch connect: %s", errno_name(errno));
	return fd;
}

static void linger_note(const char *key, int fd)
{
	struct linger lg = { -1, -1 };
	socklen_t len = sizeof(lg);
	long r = res(getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &len));
	note("%s=%s:%d,%d:len%u", key, res_str(r), lg.l_onoff, lg.l_linger, len);
}

/* Pings, then closes with the given linger (NULL: none set); notes what the peer saw. */
static void watch_close(const char *key, int fd, int ctl, const struct linger *lg)
{
	char k[48];
	echo_probe(fd);
	if (lg) {
		snprintf(k, sizeof(k), "%s_set", key);
		expect_res(k, res(setsockopt(fd, SOL_SOCKET, SO_LINGER, lg, sizeof(*lg))), 0);
		snprintf(k, sizeof(k), "%s_get", key);
		linger_note(k, fd);
	}
	snprintf(k, sizeof(k), "%s_close", key);
	expect_res(k, res(close(fd)), 0);
	note("%s_peer_saw=%s", key, read_line(ctl));
	close(ctl);
}

static void linger(int family)
{
	int ctl;
	int fd = watch_connect(family, &ctl);
	linger_note("default", fd);
	watch_close("plain", fd, ctl, NULL);

	fd = watch_connect(family, &ctl);
	watch_close("zero", fd, ctl, &(struct linger){ 1, 0 });

	fd = watch_connect(family, &ctl);
	watch_close("graceful", fd, ctl, &(struct linger){ 1, 2 });

	/* linger 0 on an accepted connection (the peer dialled in). */
	uint16_t port;
	int lfd = tcp_listen(family, 0, &port);
	ctl = peer_connect(family, PEER_DIAL);
	char req[32];
	int n = snprintf(req, sizeof(req), "%u watch\n", port);
	send_all(ctl, req, (size_t)n);
	int a = accept(lfd, NULL, NULL);
	if (a < 0)
		setup_fail("accept: %s", errno_name(errno));
	note("dial=%s", read_line(ctl));
	watch_close("accepted_zero", a, ctl, &(struct linger){ 1, 0 });
	close(lfd);

	/* shutdown then linger 0: the FIN went first, then the reset. */
	fd = watch_connect(family, &ctl);
	echo_probe(fd);
	expect_res("shut_wr", res(shutdown(fd, SHUT_WR)), 0);
	note("shut_peer_saw=%s", read_line(ctl));
	char c;
	expect_res("shut_eof", recv_upto(fd, &c, 1, 3000), 0);
	close(fd);
	close(ctl);
}

CASE(linger_4) { linger(AF_INET); }
CASE(linger_6) { linger(AF_INET6); }

static void buf_note(const char *key, int fd, int opt, int set)
{
	long before = sockopt_int(fd, SOL_SOCKET, opt);
	long r = res(setsockopt(fd, SOL_SOCKET, opt, &set, sizeof(set)));
	long after = sockopt_int(fd, SOL_SOCKET, opt);
	note("%s=default_%s:set%d=%s:ge=%s", key, before > 0 ? "positive" : res_str(before), set, res_str(r),
	     after >= set ? "yes" : "no");
	expect(r == 0 && after >= set, "%s: want at least what was set", key);
}

CASE(bufs_4)
{
	int fd = tcp_socket(AF_INET, 0);
	buf_note("tcp_rcvbuf", fd, SO_RCVBUF, 65536);
	buf_note("tcp_sndbuf", fd, SO_SNDBUF, 65536);
	struct sockaddr_storage pa;
	socklen_t palen = peer_addr(AF_INET, PEER_ECHO, &pa);
	expect_res("connect", res(connect(fd, (struct sockaddr *)&pa, palen)), 0);
	buf_note("tcp_rcvbuf_connected", fd, SO_RCVBUF, 200000);
	buf_note("tcp_sndbuf_connected", fd, SO_SNDBUF, 200000);
	echo_probe(fd);
	close(fd);
	fd = udp_socket(AF_INET, 0);
	buf_note("udp_rcvbuf", fd, SO_RCVBUF, 65536);
	buf_note("udp_sndbuf", fd, SO_SNDBUF, 65536);
	udp_probe("udp_echo", fd, AF_INET);
	close(fd);
	/* A negative size is taken as zero, and raised to the minimum. */
	fd = tcp_socket(AF_INET, 0);
	int neg = -1;
	expect_res("rcvbuf_negative", res(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &neg, sizeof(neg))), 0);
	long v = sockopt_int(fd, SOL_SOCKET, SO_RCVBUF);
	note("rcvbuf_negative_get=%s", v > 0 ? "positive" : res_str(v));
	expect_res("rcvbuf_short", res(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &neg, 2)), -EINVAL);
	close(fd);
}

static void timeo_note(const char *key, int fd, int opt)
{
	struct timeval tv = { -1, -1 };
	socklen_t len = sizeof(tv);
	long r = res(getsockopt(fd, SOL_SOCKET, opt, &tv, &len));
	note("%s=%s:%ld.%06ld:len%u", key, res_str(r), (long)tv.tv_sec, (long)tv.tv_usec, len);
}

CASE(timeo_4)
{
	int fds[2] = { tcp_socket(AF_INET, 0), udp_socket(AF_INET, 0) };
	const char *names[2] = { "tcp", "udp" };
	for (int i = 0; i < 2; i++) {
		char k[48];
		int fd = fds[i];
		struct timeval tv = { 1, 500000 };
		snprintf(k, sizeof(k), "%s_rcv_default", names[i]);
		timeo_note(k, fd, SO_RCVTIMEO);
		snprintf(k, sizeof(k), "%s_rcv_set", names[i]);
		expect_res(k, res(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv))), 0);
		snprintf(k, sizeof(k), "%s_rcv_get", names[i]);
		timeo_note(k, fd, SO_RCVTIMEO);
		tv = (struct timeval){ 2, 0 };
		snprintf(k, sizeof(k), "%s_snd_set", names[i]);
		expect_res(k, res(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv))), 0);
		snprintf(k, sizeof(k), "%s_snd_get", names[i]);
		timeo_note(k, fd, SO_SNDTIMEO);
		tv = (struct timeval){ 0, 1000000 };
		snprintf(k, sizeof(k), "%s_bad_usec", names[i]);
		note_res(k, res(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv))));
		snprintf(k, sizeof(k), "%s_short", names[i]);
		note_res(k, res(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, 4)));
		/* A timeout of 0 means none. */
		tv = (struct timeval){ 0, 0 };
		snprintf(k, sizeof(k), "%s_clear", names[i]);
		expect_res(k, res(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv))), 0);
		snprintf(k, sizeof(k), "%s_rcv_cleared", names[i]);
		timeo_note(k, fd, SO_RCVTIMEO);
	}
	/* The timeout at work on a UDP socket. */
	struct timeval tv = { 0, 150000 };
	setsockopt(fds[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_in any = { .sin_family = AF_INET };
	bind(fds[1], (struct sockaddr *)&any, sizeof(any));
	char c;
	int64_t t0 = now_ms();
	expect_res("udp_recv_timeout", res(recv(fds[1], &c, 1, 0)), -EAGAIN);
	note("waited=%s", now_ms() - t0 >= 100 ? "yes" : "no");
	close(fds[0]);
	close(fds[1]);
}

static long so_err(int fd)
{
	long v = sockopt_int(fd, SOL_SOCKET, SO_ERROR);
	return v > 0 ? -v : v;
}

CASE(error_acceptconn_4)
{
	int fd = tcp_socket(AF_INET, 0);
	expect_res("fresh_error", so_err(fd), 0);
	expect_res("fresh_acceptconn", sockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN), 0);
	struct sockaddr_in any = { .sin_family = AF_INET };
	expect_res("bind", res(bind(fd, (struct sockaddr *)&any, sizeof(any))), 0);
	expect_res("bound_acceptconn", sockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN), 0);
	expect_res("listen", res(listen(fd, 4)), 0);
	expect_res("listening_acceptconn", sockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN), 1);
	expect_res("listening_error", so_err(fd), 0);
	int one = 1;
	expect_res("set_acceptconn", res(setsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &one, sizeof(one))), -ENOPROTOOPT);
	expect_res("set_error", res(setsockopt(fd, SOL_SOCKET, SO_ERROR, &one, sizeof(one))), -ENOPROTOOPT);
	uint16_t port = port_of(fd);
	int ctl = peer_dial(AF_INET, port);
	int a = accept(fd, NULL, NULL);
	note("dial=%s", dial_result(ctl));
	expect_res("accepted_acceptconn", sockopt_int(a, SOL_SOCKET, SO_ACCEPTCONN), 0);
	close(a);
	close(ctl);
	expect_res("shutdown_listener", res(shutdown(fd, SHUT_RDWR)), 0);
	expect_res("after_shutdown_acceptconn", sockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN), 0);
	close(fd);

	fd = peer_connect(AF_INET, PEER_ECHO);
	expect_res("connected_acceptconn", sockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN), 0);
	expect_res("connected_error", so_err(fd), 0);
	close(fd);
	fd = udp_socket(AF_INET, 0);
	expect_res("udp_acceptconn", sockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN), 0);
	expect_res("udp_listen", res(listen(fd, 4)), -EOPNOTSUPP);
	expect_res("udp_error", so_err(fd), 0);
	close(fd);
	/* The error of a refused connect, once. */
	fd = tcp_socket(AF_INET, SOCK_NONBLOCK);
	struct sockaddr_storage ca;
	socklen_t clen = peer_addr(AF_INET, PEER_CLOSED, &ca);
	expect_res("connect_closed", res(connect(fd, (struct sockaddr *)&ca, clen)), -EINPROGRESS);
	wait_events(fd, POLLOUT, 3000);
	expect_res("refused_error", so_err(fd), -ECONNREFUSED);
	expect_res("refused_error_again", so_err(fd), 0);
	close(fd);
}

static void int_opt(const char *key, int fd, int level, int opt, int set)
{
	char k[48];
	snprintf(k, sizeof(k), "%s_set%d", key, set);
	note_res(k, res(setsockopt(fd, level, opt, &set, sizeof(set))));
	snprintf(k, sizeof(k), "%s_get", key);
	note_res(k, sockopt_int(fd, level, opt));
}

static const char *tcp_state_name(int s)
{
	static const char *const names[] = { "0", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
		                             "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING" };
	return s >= 0 && s < (int)(sizeof(names) / sizeof(names[0])) ? names[s] : "?";
}

static void tcp_info_note(const char *key, int fd)
{
	/* Bigger than any struct tcp_info: the kernel says how much it filled. */
	union {
		struct tcp_info ti;
		uint8_t raw[1024];
	} u;
	memset(&u, 0xff, sizeof(u));
	socklen_t len = sizeof(u);
	long r = res(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &u, &len));
	note("%s=%s:state=%s:len%u", key, res_str(r), r == 0 ? tcp_state_name(u.ti.tcpi_state) : "-", len);
}

static void tcp_opts(int family)
{
	int fd = tcp_socket(family, 0);
	tcp_info_note("info_fresh", fd);
	note_res("cork_default", sockopt_int(fd, IPPROTO_TCP, TCP_CORK));
	int_opt("keepidle", fd, IPPROTO_TCP, TCP_KEEPIDLE, 45);
	int_opt("keepintvl", fd, IPPROTO_TCP, TCP_KEEPINTVL, 7);
	int_opt("keepcnt", fd, IPPROTO_TCP, TCP_KEEPCNT, 4);
	int_opt("keepidle", fd, IPPROTO_TCP, TCP_KEEPIDLE, 0);
	int_opt("keepcnt", fd, IPPROTO_TCP, TCP_KEEPCNT, 1000);
	int_opt("keepalive", fd, SOL_SOCKET, SO_KEEPALIVE, 1);
	int_opt("user_timeout", fd, IPPROTO_TCP, TCP_USER_TIMEOUT, 5000);
	int_opt("user_timeout", fd, IPPROTO_TCP, TCP_USER_TIMEOUT, -1);
	int_opt("syncnt", fd, IPPROTO_TCP, TCP_SYNCNT, 3);
	int_opt("linger2", fd, IPPROTO_TCP, TCP_LINGER2, 10);
	int_opt("notsent_lowat", fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, 16384);
	char cc[32] = { 0 };
	socklen_t cclen = sizeof(cc);
	long r = res(getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, cc, &cclen));
	note("congestion=%s:%s", res_str(r), r == 0 ? cc : "-");
	note_res("congestion_set_bogus", res(setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, "no-such-cc", 10)));

	struct sockaddr_storage pa;
	socklen_t palen = peer_addr(family, PEER_ECHO, &pa);
	expect_res("connect", res(connect(fd, (struct sockaddr *)&pa, palen)), 0);
	tcp_info_note("info", fd);
	note_res("keepidle_connected", sockopt_int(fd, IPPROTO_TCP, TCP_KEEPIDLE));
	note_res("user_timeout_connected", sockopt_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT));
	note_res("maxseg", sockopt_int(fd, IPPROTO_TCP, TCP_MAXSEG));
	/* Corked, a small write waits; uncorking sends it. */
	int_opt("cork", fd, IPPROTO_TCP, TCP_CORK, 1);
	expect_res("send_corked", res(send(fd, "ping", 4, 0)), 4);
	int zero = 0;
	expect_res("uncork", res(setsockopt(fd, IPPROTO_TCP, TCP_CORK, &zero, sizeof(zero))), 0);
	char buf[8];
	long got = recv_upto(fd, buf, 4, 3000);
	note("corked_echo=%s", got == 4 && memcmp(buf, "ping", 4) == 0 ? "ok" : res_str(got));
	int_opt("nodelay", fd, IPPROTO_TCP, TCP_NODELAY, 1);
	/* A short buffer for TCP_INFO: the kernel fills what fits. */
	uint8_t state = 0xff;
	socklen_t len = 1;
	r = res(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &state, &len));
	note("info_1byte=%s:state=%s:len%u", res_str(r), tcp_state_name(state), len);
	expect_res("shutdown", res(shutdown(fd, SHUT_WR)), 0);
	expect_res("eof", recv_upto(fd, buf, 1, 3000), 0);
	tcp_info_note("info_closed", fd);
	close(fd);

	/* Listener options. */
	fd = tcp_socket(family, 0);
	int_opt("fastopen_before_listen", fd, IPPROTO_TCP, TCP_FASTOPEN, 5);
	struct sockaddr_storage ss;
	socklen_t slen = any_addr(family, 0, &ss);
	if (bind(fd, (struct sockaddr *)&ss, slen) < 0 || listen(fd, 8) < 0)
		setup_fail("listen: %s", errno_name(errno));
	tcp_info_note("info_listener", fd);
	int_opt("defer_accept", fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, 5);
	int_opt("defer_accept", fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, 0);
	int_opt("fastopen", fd, IPPROTO_TCP, TCP_FASTOPEN, 16);
	int_opt("listener_keepidle", fd, IPPROTO_TCP, TCP_KEEPIDLE, 30);
	close(fd);
	fd = tcp_socket(family, 0);
	int_opt("fastopen_connect", fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, 1);
	close(fd);
}

CASE(tcp_opts_4) { tcp_opts(AF_INET); }
CASE(tcp_opts_6) { tcp_opts(AF_INET6); }

CASE(ip_opts_4)
{
	int fds[2] = { tcp_socket(AF_INET, 0), udp_socket(AF_INET, 0) };
	const char *names[2] = { "tcp", "udp" };
	for (int i = 0; i < 2; i++) {
		char k[48];
		int fd = fds[i];
		snprintf(k, sizeof(k), "%s_tos_default", names[i]);
		note_res(k, sockopt_int(fd, IPPROTO_IP, IP_TOS));
		snprintf(k, sizeof(k), "%s_tos", names[i]);
		int_opt(k, fd, IPPROTO_IP, IP_TOS, 0x10);
		int_opt(k, fd, IPPROTO_IP, IP_TOS, 0x23);
		snprintf(k, sizeof(k), "%s_ttl_default", names[i]);
		note_res(k, sockopt_int(fd, IPPROTO_IP, IP_TTL));
		snprintf(k, sizeof(k), "%s_ttl", names[i]);
		int_opt(k, fd, IPPROTO_IP, IP_TTL, 33);
		int_opt(k, fd, IPPROTO_IP, IP_TTL, 0);
		int_opt(k, fd, IPPROTO_IP, IP_TTL, 256);
		int_opt(k, fd, IPPROTO_IP, IP_TTL, -1);
		snprintf(k, sizeof(k), "%s_pmtudisc", names[i]);
		int_opt(k, fd, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO);
		snprintf(k, sizeof(k), "%s_v6only_on_v4", names[i]);
		note_res(k, sockopt_int(fd, IPPROTO_IPV6, IPV6_V6ONLY));
	}
	/* The options hold on a connection. */
	int ttl = 17, tos = 0x08;
	setsockopt(fds[0], IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl));
	setsockopt(fds[0], IPPROTO_IP, IP_TOS, &tos, sizeof(tos));
	struct sockaddr_storage pa;
	socklen_t palen = peer_addr(AF_INET, PEER_ECHO, &pa);
	expect_res("connect", res(connect(fds[0], (struct sockaddr *)&pa, palen)), 0);
	note_res("ttl_connected", sockopt_int(fds[0], IPPROTO_IP, IP_TTL));
	note_res("tos_connected", sockopt_int(fds[0], IPPROTO_IP, IP_TOS));
	echo_probe(fds[0]);
	close(fds[0]);
	close(fds[1]);
}

CASE(ipv6_opts_6)
{
	int fds[2] = { tcp_socket(AF_INET6, 0), udp_socket(AF_INET6, 0) };
	const char *names[2] = { "tcp", "udp" };
	for (int i = 0; i < 2; i++) {
		char k[48];
		int fd = fds[i];
		snprintf(k, sizeof(k), "%s_v6only_default", names[i]);
		note_res(k, sockopt_int(fd, IPPROTO_IPV6, IPV6_V6ONLY));
		snprintf(k, sizeof(k), "%s_v6only", names[i]);
		int_opt(k, fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
		int_opt(k, fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
		snprintf(k, sizeof(k), "%s_hops", names[i]);
		int_opt(k, fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 10);
		int_opt(k, fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, -1);
		int_opt(k, fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 300);
		snprintf(k, sizeof(k), "%s_tclass", names[i]);
		int_opt(k, fd, IPPROTO_IPV6, IPV6_TCLASS, 0x20);
		snprintf(k, sizeof(k), "%s_ip_ttl_on_v6", names[i]);
		int_opt(k, fd, IPPROTO_IP, IP_TTL, 40);
	}
	/* IPV6_V6ONLY can't change once bound. */
	struct sockaddr_in6 any = { .sin6_family = AF_INET6 };
	expect_res("bind", res(bind(fds[0], (struct sockaddr *)&any, sizeof(any))), 0);
	int one = 1;
	note_res("v6only_after_bind", res(setsockopt(fds[0], IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))));
	close(fds[0]);
	close(fds[1]);
	/* A V6ONLY socket can't reach an IPv4 address, a dual-stack one can. */
	struct sockaddr_in6 m = { .sin6_family = AF_INET6, .sin6_port = htons(peer_port(PEER_ECHO)) };
	m.sin6_addr.s6_addr[10] = 0xff;
	m.sin6_addr.s6_addr[11] = 0xff;
	memcpy(&m.sin6_addr.s6_addr[12], &conform_ctx.peer4, 4);
	int fd = tcp_socket(AF_INET6, 0);
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	note_res("v6only_connect_mapped", res(connect(fd, (struct sockaddr *)&m, sizeof(m))));
	close(fd);
	fd = tcp_socket(AF_INET6, 0);
	expect_res("dual_connect_mapped", res(connect(fd, (struct sockaddr *)&m, sizeof(m))), 0);
	echo_probe(fd);
	close(fd);
}

/* Options the kernel refuses: the same errno, never a silent success. */
CASE(bad_opts_4)
{
	int fds[2] = { tcp_socket(AF_INET, 0), udp_socket(AF_INET, 0) };
	const char *names[2] = { "tcp", "udp" };
	for (int i = 0; i < 2; i++) {
		char k[48];
		int fd = fds[i], v = 1;
		socklen_t len = sizeof(v);
#define TRY(what, call)                                                                                            \
	do {                                                                                                       \
		snprintf(k, sizeof(k), "%s_%s", names[i], what);                                                   \
		len = sizeof(v);                                                                                   \
		note_res(k, res(call));                                                                            \
	} while (0)
		TRY("get_sol_socket_9999", getsockopt(fd, SOL_SOCKET, 9999, &v, &len));
		TRY("set_sol_socket_9999", setsockopt(fd, SOL_SOCKET, 9999, &v, sizeof(v)));
		TRY("get_level_12345", getsockopt(fd, 12345, 1, &v, &len));
		TRY("set_level_12345", setsockopt(fd, 12345, 1, &v, sizeof(v)));
		TRY("get_tcp_9999", getsockopt(fd, IPPROTO_TCP, 9999, &v, &len));
		TRY("set_tcp_9999", setsockopt(fd, IPPROTO_TCP, 9999, &v, sizeof(v)));
		TRY("get_ip_9999", getsockopt(fd, IPPROTO_IP, 9999, &v, &len));
		TRY("set_ip_9999", setsockopt(fd, IPPROTO_IP, 9999, &v, sizeof(v)));
		TRY("set_udp_cork", setsockopt(fd, IPPROTO_UDP, UDP_CORK, &v, sizeof(v)));
		TRY("get_tcp_nodelay", getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len));
		TRY("set_ipv6_level", setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof(v)));
		TRY("set_short", setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, 1));
		TRY("set_null", setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, NULL, sizeof(v)));
		TRY("set_linger_short", setsockopt(fd, SOL_SOCKET, SO_LINGER, &v, sizeof(v)));
		len = 0;
		snprintf(k, sizeof(k), "%s_get_zero_len", names[i]);
		long r = res(getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, &len));
		note("%s=%s:len%u", k, res_str(r), len);
		len = (socklen_t)-1;
		snprintf(k, sizeof(k), "%s_get_negative_len", names[i]);
		note_res(k, res(getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, &len)));
#undef TRY
	}
	int p[2];
	if (pipe(p) < 0)
		setup_fail("pipe");
	int v = 1;
	expect_res("pipe_setsockopt", res(setsockopt(p[0], SOL_SOCKET, SO_KEEPALIVE, &v, sizeof(v))), -ENOTSOCK);
	close(p[0]);
	close(p[1]);
	expect_res("closed_fd", res(setsockopt(p[0], SOL_SOCKET, SO_KEEPALIVE, &v, sizeof(v))), -EBADF);
	close(fds[0]);
	close(fds[1]);
}

/* A temporary file of n pattern bytes, unlinked. */
static int pattern_file(size_t n)
{
	char path[256];
	const char *dir = getenv("TMPDIR");
	snprintf(path, sizeof(path), "%s/conform-XXXXXX", dir && *dir ? dir : P_tmpdir);
	int fd = mkstemp(path);
	if (fd < 0)
		setup_fail("mkstemp: %s", errno_name(errno));
	unlink(path);
	uint8_t *buf = malloc(n);
	if (!buf)
		setup_fail("malloc");
	pattern_fill(buf, 0, n);
	if (write(fd, buf, n) != (ssize_t)n)
		setup_fail("write: %s", errno_name(errno));
	free(buf);
	return fd;
}

static uint32_t pattern_csum(size_t n)
{
	uint8_t *buf = malloc(n);
	if (!buf)
		setup_fail("malloc");
	pattern_fill(buf, 0, n);
	uint32_t c = csum_update(CSUM_INIT, buf, n);
	free(buf);
	return c;
}

/* Ends the upload and reads the PEER_SUM answer, noted as "key=N:csum_ok". */
static void sum_note(const char *key, int fd, size_t n)
{
	expect_res("shutdown", res(shutdown(fd, SHUT_WR)), 0);
	char reply[64] = { 0 };
	long r = recv_upto(fd, reply, sizeof(reply) - 1, 4000);
	unsigned long long got = 0;
	unsigned sum = 0;
	bool parsed = r > 0 && sscanf(reply, "%llu %x", &got, &sum) == 2;
	bool ok = parsed && got == n && sum == pattern_csum(n);
	note("%s=%llu:csum_%s", key, got, ok ? "ok" : "differs");
	expect(ok, "%s: peer got %llu bytes, want %zu with the pattern", key, got, n);
}

CASE(sendfile_4)
{
	enum { N = 300001 };
	int file = pattern_file(N);
	int fd = peer_connect(AF_INET, PEER_SUM);
	off_t off = 0;
	size_t sent = 0;
	long r = 0;
	while (sent < N) {
		r = res(sendfile(fd, file, &off, N - sent));
		if (r <= 0)
			break;
		sent += (size_t)r;
	}
	note("sendfile=%s:sent=%zu:off=%lld", r < 0 ? res_str(r) : "ok", sent, (long long)off);
	sum_note("peer", fd, N);
	close(fd);

	/* With no offset, from the file position. */
	lseek(file, 1000, SEEK_SET);
	fd = peer_connect(AF_INET, PEER_SUM);
	r = res(sendfile(fd, file, NULL, 5000));
	note("sendfile_pos=%s:pos=%lld", res_str(r), (long long)lseek(file, 0, SEEK_CUR));
	expect_res("shutdown_pos", res(shutdown(fd, SHUT_WR)), 0);
	note("peer_pos=%s", read_line(fd));
	close(fd);

	/* To a socket that can't send: the error of the socket (and SIGPIPE, ignored here). */
	signal(SIGPIPE, SIG_IGN);
	fd = tcp_socket(AF_INET, 0);
	off = 0;
	note_res("sendfile_unconnected", res(sendfile(fd, file, &off, 100)));
	close(fd);
	close(file);
}

CASE(splice_4)
{
	enum { N = 200003 };
	int file = pattern_file(N);
	int p[2];
	if (pipe(p) < 0)
		setup_fail("pipe");
	int fd = peer_connect(AF_INET, PEER_SUM);
	loff_t off = 0;
	size_t moved = 0;
	long r = 0;
	while (moved < N) {
		r = res(splice(file, &off, p[1], NULL, N - moved, 0));
		if (r <= 0)
			break;
		long left = r;
		while (left > 0) {
			long w = res(splice(p[0], NULL, fd, NULL, (size_t)left, 0));
			if (w <= 0) {
				r = w;
				break;
			}
			left -= w;
			moved += (size_t)w;
		}
		if (r <= 0)
			break;
	}
	note("splice_out=%s:moved=%zu", r < 0 ? res_str(r) : "ok", moved);
	sum_note("peer", fd, N);
	close(fd);

	/* And the other way: from a socket into a pipe. */
	enum { M = 100000 };
	fd = peer_source(AF_INET, M, 10000, 0);
	size_t in = 0;
	uint32_t csum = CSUM_INIT;
	static uint8_t buf[65536];
	for (;;) {
		if (!(wait_events(fd, POLLIN, 3000) & (POLLIN | POLLHUP)))
			break;
		r = res(splice(fd, NULL, p[1], NULL, sizeof(buf), SPLICE_F_NONBLOCK));
		if (r == -EAGAIN)
			continue;
		if (r <= 0)
			break;
		long got = res(read(p[0], buf, (size_t)r));
		if (got != r)
			setup_fail("pipe read: %s", res_str(got));
		csum = csum_update(csum, buf, (size_t)got);
		in += (size_t)got;
	}
	note("splice_in=%s:got=%zu:csum_%s", res_str(r), in, csum == pattern_csum(M) ? "ok" : "differs");
	expect(in == M && csum == pattern_csum(M), "splice from the socket: data");
	close(fd);
	close(p[0]);
	close(p[1]);
	close(file);
}

static long ioc(int fd, unsigned long req)
{
	int n = -1;
	long r = res(ioctl(fd, req, &n));
	return r < 0 ? r : n;
}

static const char *ge0(long v)
{
	return v >= 0 ? "ge0" : res_str(v);
}

CASE(ioctl_4)
{
	int fd = peer_source(AF_INET, 777, 777, 0);
	expect_res("arrived", wait_inq(fd, 777, 3000), 777);
	expect_res("fionread", ioc(fd, FIONREAD), 777);
	note("siocoutq=%s", ge0(ioc(fd, SIOCOUTQ)));
	note("siocoutqnsd=%s", ge0(ioc(fd, SIOCOUTQNSD)));
	expect_res("siocatmark", ioc(fd, SIOCATMARK), 0);
	close(fd);

	fd = peer_connect(AF_INET, PEER_ECHO);
	static uint8_t big[200000];
	send_all(fd, big, sizeof(big));
	note("siocoutq_sending=%s", ge0(ioc(fd, SIOCOUTQ)));
	long got = recv_upto(fd, big, sizeof(big), 4000);
	note_res("echoed", got);
	note("siocoutq_after=%s", ge0(ioc(fd, SIOCOUTQ)));
	expect_res("fionread_after", ioc(fd, FIONREAD), 0);
	note_res("tty_ioctl", ioc(fd, TCGETS));
	close(fd);

	uint16_t port;
	int lfd = tcp_listen(AF_INET, 0, &port);
	note_res("listener_fionread", ioc(lfd, FIONREAD));
	note_res("listener_siocoutq", ioc(lfd, SIOCOUTQ));
	close(lfd);

	/* UDP: FIONREAD is the size of the next datagram, SIOCOUTQ what is not yet sent. */
	fd = udp_socket(AF_INET, 0);
	note_res("udp_fionread_fresh", ioc(fd, FIONREAD));
	struct sockaddr_storage pa;
	socklen_t len = peer_addr(AF_INET, PEER_UDP_ECHO, &pa);
	expect_res("udp_send100", res(sendto(fd, big, 100, 0, (struct sockaddr *)&pa, len)), 100);
	wait_events(fd, POLLIN, 3000);
	expect_res("udp_send7", res(sendto(fd, big, 7, 0, (struct sockaddr *)&pa, len)), 7);
	expect_res("udp_fionread", ioc(fd, FIONREAD), 100);
	note("udp_siocoutq=%s", ge0(ioc(fd, SIOCOUTQ)));
	char b[128];
	expect_res("udp_recv", res(recv(fd, b, sizeof(b), 0)), 100);
	wait_events(fd, POLLIN, 3000);
	expect_res("udp_fionread_next", ioc(fd, FIONREAD), 7);
	close(fd);
}
