/*
 * case-opts.c: socket names, options, FIONREAD, and the O_NONBLOCK flag.
 *
 * Addresses and ports differ from run to run, so they are printed as relations: "port=nonzero", "port=expected"
 * (the port connected to), "addr=peer" (the address connected to), "addr=any".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "conform.h"

static const char *family_name(int f)
{
	return f == AF_INET ? "inet" : f == AF_INET6 ? "inet6" : f == AF_UNSPEC ? "unspec" : "other";
}

/* Describes a name relative to what the case knows: the family, the length, the port and the address. */
static void name_note(const char *key, long r, const struct sockaddr_storage *ss, socklen_t len, uint16_t want_port,
                      bool want_peer_addr)
{
	if (r < 0) {
		note_res(key, r);
		return;
	}
	uint16_t port = 0;
	const char *addr = "other";
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		port = ntohs(sin->sin_port);
		if (sin->sin_addr.s_addr == htonl(INADDR_ANY))
			addr = "any";
		else if (want_peer_addr && sin->sin_addr.s_addr == conform_ctx.peer4.s_addr)
			addr = "peer";
		else
			addr = "specific";
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		port = ntohs(sin6->sin6_port);
		if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr))
			addr = "any";
		else if (want_peer_addr && IN6_ARE_ADDR_EQUAL(&sin6->sin6_addr, &conform_ctx.peer6))
			addr = "peer";
		else
			addr = "specific";
	}
	const char *p = port == 0 ? "zero" : port == want_port ? "expected" : "nonzero";
	note("%s=%s:%s:len%u:port=%s:addr=%s", key, res_str(r), family_name(ss->ss_family), len, p, addr);
}

static void names(int family)
{
	socklen_t full = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = tcp_socket(family, 0);

	memset(&ss, 0xa5, sizeof(ss));
	len = sizeof(ss);
	expect_res("peername_unconnected", res(getpeername(fd, (struct sockaddr *)&ss, &len)), -ENOTCONN);
	memset(&ss, 0, sizeof(ss));
	len = sizeof(ss);
	long r = res(getsockname(fd, (struct sockaddr *)&ss, &len));
	name_note("sockname_unbound", r, &ss, len, 0, false);
	expect(r == 0 && ss.ss_family == family && len == full, "unbound getsockname: family/len");

	struct sockaddr_storage pa;
	socklen_t plen = peer_addr(family, PEER_ECHO, &pa);
	expect_res("connect", res(connect(fd, (struct sockaddr *)&pa, plen)), 0);
	memset(&ss, 0, sizeof(ss));
	len = sizeof(ss);
	r = res(getsockname(fd, (struct sockaddr *)&ss, &len));
	name_note("sockname", r, &ss, len, 0, false);
	expect(r == 0 && ss.ss_family == family && len == full, "getsockname: family/len");
	memset(&ss, 0, sizeof(ss));
	len = sizeof(ss);
	r = res(getpeername(fd, (struct sockaddr *)&ss, &len));
	name_note("peername", r, &ss, len, peer_port(PEER_ECHO), true);
	expect(r == 0 && ss.ss_family == family && len == full, "getpeername: family/len");

	/* A short buffer is filled as far as it goes, and the full length is returned. */
	memset(&ss, 0, sizeof(ss));
	len = 4;
	r = res(getpeername(fd, (struct sockaddr *)&ss, &len));
	note("peername_short=%s:len%u:family=%s", res_str(r), len, family_name(ss.ss_family));
	expect(r == 0 && len == full && ss.ss_family == family, "getpeername with a 4-byte buffer");
	close(fd);

	/* Bound to the wildcard address and port 0: the kernel picks a port, the address stays "any". */
	fd = tcp_socket(family, 0);
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = (sa_family_t)family;
	expect_res("bind_any", res(bind(fd, (struct sockaddr *)&ss, full)), 0);
	memset(&ss, 0, sizeof(ss));
	len = sizeof(ss);
	r = res(getsockname(fd, (struct sockaddr *)&ss, &len));
	name_note("sockname_bound", r, &ss, len, 0, false);
	expect(r == 0 && ss.ss_family == family && ntohs(((struct sockaddr_in *)&ss)->sin_port) != 0,
	       "bound socket has no port");
	expect_res("peername_bound", res(getpeername(fd, (struct sockaddr *)&ss, &len)), -ENOTCONN);
	close(fd);
}

CASE(names_4) { names(AF_INET); }
CASE(names_6) { names(AF_INET6); }

static long get_int_opt(int fd, int level, int opt, socklen_t *len)
{
	int v = -1;
	*len = sizeof(v);
	long r = res(getsockopt(fd, level, opt, &v, len));
	return r < 0 ? r : v;
}

static void int_opt_check(int fd, int level, int opt, const char *key, int set, long want)
{
	char k[48];
	socklen_t len;
	snprintf(k, sizeof(k), "%s_set%d", key, set);
	expect_res(k, res(setsockopt(fd, level, opt, &set, sizeof(set))), 0);
	snprintf(k, sizeof(k), "%s_get", key);
	long v = get_int_opt(fd, level, opt, &len);
	expect_res(k, v, want);
	expect(len == sizeof(int), "%s: optlen %u", key, len);
}

CASE(reuseaddr_4)
{
	int fd = tcp_socket(AF_INET, 0);
	socklen_t len;
	expect_res("default", get_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, &len), 0);
	int_opt_check(fd, SOL_SOCKET, SO_REUSEADDR, "reuseaddr", 1, 1);
	int_opt_check(fd, SOL_SOCKET, SO_REUSEADDR, "reuseaddr", 0, 0);
	/* Any nonzero value means on, and reads back as 1. */
	int_opt_check(fd, SOL_SOCKET, SO_REUSEADDR, "reuseaddr", 5, 1);
	/* It survives bind and listen. */
	struct sockaddr_in sin = { .sin_family = AF_INET };
	expect_res("bind", res(bind(fd, (struct sockaddr *)&sin, sizeof(sin))), 0);
	expect_res("listen", res(listen(fd, 4)), 0);
	expect_res("after_listen", get_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, &len), 1);
	close(fd);
}

/*
 * What SO_REUSEADDR is for: binding a port that a closed connection still holds. Our side closes first, so our end
 * of the accepted connection lingers (FIN_WAIT2 or TIME_WAIT) on the listener's port.
 */
CASE(reuseaddr_rebind_4)
{
	uint16_t port;
	int one = 1;
	int lfd = tcp_socket(AF_INET, 0);
	expect_res("listener_reuseaddr", res(setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one))), 0);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(lfd, 4) < 0)
		setup_fail("listen: %s", errno_name(errno));
	socklen_t len = sizeof(sin);
	getsockname(lfd, (struct sockaddr *)&sin, &len);
	port = ntohs(sin.sin_port);
	int ctl = peer_dial(AF_INET, port);
	int fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		setup_fail("accept: %s", errno_name(errno));
	note("dial=%s", dial_result(ctl));
	close(lfd);
	close(fd);
	/* The peer closes the request connection once its end of the dialled one is closed. */
	char c;
	recv_upto(ctl, &c, 1, 3000);
	close(ctl);

	sin.sin_addr.s_addr = htonl(INADDR_ANY);
	int s1 = tcp_socket(AF_INET, 0);
	expect_res("bind_plain", res(bind(s1, (struct sockaddr *)&sin, sizeof(sin))), -EADDRINUSE);
	close(s1);
	int s2 = tcp_socket(AF_INET, 0);
	expect_res("set", res(setsockopt(s2, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one))), 0);
	expect_res("bind_reuseaddr", res(bind(s2, (struct sockaddr *)&sin, sizeof(sin))), 0);
	expect_res("listen", res(listen(s2, 4)), 0);
	close(s2);
}

static void nodelay(int family)
{
	int fd = tcp_socket(family, 0);
	socklen_t len;
	expect_res("default", get_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, &len), 0);
	int_opt_check(fd, IPPROTO_TCP, TCP_NODELAY, "nodelay", 1, 1);
	struct sockaddr_storage ss;
	socklen_t slen = peer_addr(family, PEER_ECHO, &ss);
	expect_res("connect", res(connect(fd, (struct sockaddr *)&ss, slen)), 0);
	expect_res("after_connect", get_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, &len), 1);
	int_opt_check(fd, IPPROTO_TCP, TCP_NODELAY, "nodelay", 0, 0);
	int_opt_check(fd, IPPROTO_TCP, TCP_NODELAY, "nodelay", 7, 1);
	echo_probe(fd);
	close(fd);
}

CASE(nodelay_4) { nodelay(AF_INET); }
CASE(nodelay_6) { nodelay(AF_INET6); }

/* The options servers commonly set (redis, nginx): keepalive and its timers, and SO_LINGER. */
CASE(sockopts_misc_4)
{
	int fd = tcp_socket(AF_INET, 0);
	socklen_t len;
	expect_res("keepalive_default", get_int_opt(fd, SOL_SOCKET, SO_KEEPALIVE, &len), 0);
	int_opt_check(fd, SOL_SOCKET, SO_KEEPALIVE, "keepalive", 1, 1);
	int_opt_check(fd, IPPROTO_TCP, TCP_KEEPIDLE, "keepidle", 30, 30);
	int_opt_check(fd, IPPROTO_TCP, TCP_KEEPINTVL, "keepintvl", 5, 5);
	int_opt_check(fd, IPPROTO_TCP, TCP_KEEPCNT, "keepcnt", 3, 3);
	struct linger lg = { -1, -1 };
	len = sizeof(lg);
	long r = res(getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &len));
	note("linger_default=%s:%d,%d", res_str(r), lg.l_onoff, lg.l_linger);
	lg = (struct linger){ 1, 5 };
	expect_res("linger_set", res(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg))), 0);
	lg = (struct linger){ -1, -1 };
	len = sizeof(lg);
	r = res(getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &len));
	note("linger_get=%s:%d,%d", res_str(r), lg.l_onoff, lg.l_linger);
	expect(r == 0 && lg.l_onoff == 1 && lg.l_linger == 5, "SO_LINGER: read back differs");
	struct sockaddr_storage ss;
	socklen_t slen = peer_addr(AF_INET, PEER_ECHO, &ss);
	expect_res("connect", res(connect(fd, (struct sockaddr *)&ss, slen)), 0);
	expect_res("keepalive_connected", get_int_opt(fd, SOL_SOCKET, SO_KEEPALIVE, &len), 1);
	expect_res("keepidle_connected", get_int_opt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &len), 30);
	echo_probe(fd);
	lg = (struct linger){ 0, 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

static long inq(int fd, unsigned long req)
{
	int n = -1;
	long r = res(ioctl(fd, req, &n));
	return r < 0 ? r : n;
}

CASE(fionread_4)
{
	int fd = tcp_socket(AF_INET, 0);
	note_res("unconnected", inq(fd, FIONREAD));
	close(fd);

	fd = peer_source(AF_INET, 1234, 1234, 0);
	expect_res("arrived", wait_inq(fd, 1234, 3000), 1234);
	expect_res("fionread", inq(fd, FIONREAD), 1234);
	expect_res("siocinq", inq(fd, SIOCINQ), 1234);
	uint8_t buf[1234], want[1234];
	pattern_fill(want, 0, sizeof(want));
	expect_res("recv", res(recv(fd, buf, 1000, 0)), 1000);
	expect_res("fionread_rest", inq(fd, FIONREAD), 234);
	expect_res("recv_rest", res(recv(fd, buf + 1000, sizeof(buf), 0)), 234);
	expect(memcmp(buf, want, sizeof(buf)) == 0, "data differs");
	expect_res("fionread_empty", inq(fd, FIONREAD), 0);
	expect_res("recv_eof", res(recv(fd, buf, sizeof(buf), 0)), 0);
	expect_res("fionread_eof", inq(fd, FIONREAD), 0);
	close(fd);

	uint16_t port;
	int lfd = tcp_listen(AF_INET, 0, &port);
	expect_res("listener", inq(lfd, FIONREAD), -EINVAL);
	close(lfd);
}

static void flags_note(const char *key, int fd, bool want_nonblock)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0) {
		note_res(key, -errno);
		expect(false, "%s: F_GETFL failed", key);
		return;
	}
	bool nb = fl & O_NONBLOCK;
	note("%s=%s%s", key, (fl & O_ACCMODE) == O_RDWR ? "rdwr" : "acc?", nb ? "|nonblock" : "");
	expect(nb == want_nonblock && (fl & O_ACCMODE) == O_RDWR, "%s: want %s", key,
	       want_nonblock ? "rdwr|nonblock" : "rdwr");
}

static long connect_echo(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = peer_addr(AF_INET, PEER_ECHO, &ss);
	return res(connect(fd, (struct sockaddr *)&ss, len));
}

CASE(nonblock_4)
{
	int fd = tcp_socket(AF_INET, 0);
	flags_note("fresh", fd, false);
	expect_res("setfl", res(fcntl(fd, F_SETFL, O_NONBLOCK)), 0);
	flags_note("setfl", fd, true);
	expect_res("connect", connect_echo(fd), -EINPROGRESS);
	wait_events(fd, POLLOUT, 3000);
	char c;
	expect_res("recv", res(recv(fd, &c, 1, 0)), -EAGAIN);
	expect_res("clearfl", res(fcntl(fd, F_SETFL, 0)), 0);
	flags_note("clearfl", fd, false);
	echo_probe(fd);
	close(fd);

	fd = tcp_socket(AF_INET, SOCK_NONBLOCK);
	flags_note("sock_nonblock", fd, true);
	int fdfl = fcntl(fd, F_GETFD);
	note("cloexec=%s", fdfl >= 0 && (fdfl & FD_CLOEXEC) ? "yes" : "no");
	expect_res("connect_nb", connect_echo(fd), -EINPROGRESS);
	close(fd);

	fd = tcp_socket(AF_INET, SOCK_NONBLOCK | SOCK_CLOEXEC);
	fdfl = fcntl(fd, F_GETFD);
	note("sock_cloexec=%s", fdfl >= 0 && (fdfl & FD_CLOEXEC) ? "yes" : "no");
	expect(fdfl >= 0 && (fdfl & FD_CLOEXEC), "SOCK_CLOEXEC: want FD_CLOEXEC");
	expect_res("clear_sock_nonblock", res(fcntl(fd, F_SETFL, 0)), 0);
	flags_note("cleared", fd, false);
	expect_res("connect_blocking", connect_echo(fd), 0);
	close(fd);

	fd = tcp_socket(AF_INET, 0);
	int on = 1, off = 0;
	expect_res("fionbio_on", res(ioctl(fd, FIONBIO, &on)), 0);
	flags_note("fionbio_on", fd, true);
	expect_res("fionbio_off", res(ioctl(fd, FIONBIO, &off)), 0);
	flags_note("fionbio_off", fd, false);
	close(fd);
}
