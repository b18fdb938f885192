/*
 * case-accept.c: listening and accepting, with the peer connecting in (PEER_DIAL).
 *
 * "The listener is readable" must mean exactly "a connection is pending": before the peer connects, and after the
 * last pending one is accepted, poll with a zero timeout shows nothing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "conform.h"

static uint16_t sockaddr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return 0;
}

static const char *family_str(int family)
{
	return family == AF_INET ? "inet" : family == AF_INET6 ? "inet6" : family == AF_UNIX ? "unix" : "other";
}

static void accept_basic(int family)
{
	uint16_t port;
	int lfd = tcp_listen(family, 0, &port);
	int ctl = peer_dial(family, port);
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	socklen_t len = sizeof(ss);
	int fd = accept(lfd, (struct sockaddr *)&ss, &len);
	long r = res(fd);
	note("accept=%s", r >= 0 ? "fd" : res_str(r));
	if (fd < 0)
		return;
	socklen_t want_len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	note("peer_family=%s peer_len_ok=%s peer_port_nonzero=%s", family_str(ss.ss_family),
	     len == want_len ? "yes" : "no", sockaddr_port(&ss) ? "yes" : "no");
	expect(ss.ss_family == family && len == want_len, "peer address: family %d len %u", ss.ss_family, len);
	const char *dial = dial_result(ctl);
	note("dial=%s", dial);
	expect(strcmp(dial, "ok") == 0, "dial: want ok");
	memset(&ss, 0, sizeof(ss));
	len = sizeof(ss);
	expect_res("getsockname", res(getsockname(fd, (struct sockaddr *)&ss, &len)), 0);
	note("local_family=%s local_port_is_listener=%s", family_str(ss.ss_family),
	     sockaddr_port(&ss) == port ? "yes" : "no");
	expect(sockaddr_port(&ss) == port, "accepted socket's local port is not the listener's");
	echo_probe(fd);
	close(fd);
	close(ctl);
	close(lfd);
}

CASE(accept_4) { accept_basic(AF_INET); }
CASE(accept_6) { accept_basic(AF_INET6); }

static const char *in6_kind(const struct sockaddr_storage *ss)
{
	if (ss->ss_family != AF_INET6)
		return family_str(ss->ss_family);
	const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
	return IN6_IS_ADDR_V4MAPPED(a) ? "v4mapped" : IN6_IS_ADDR_UNSPECIFIED(a) ? "any" : "v6";
}

/* An IPv6 listener takes IPv4 connections too, with v4-mapped addresses, unless IPV6_V6ONLY is on. */
CASE(accept_mapped_6)
{
	uint16_t port;
	int lfd = tcp_listen(AF_INET6, 0, &port);
	int v6only = -1;
	socklen_t olen = sizeof(v6only);
	long r = res(getsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &olen));
	note("v6only=%s", r < 0 ? res_str(r) : v6only ? "1" : "0");
	int ctl = peer_dial(AF_INET, port);
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	socklen_t len = sizeof(ss);
	int fd = accept(lfd, (struct sockaddr *)&ss, &len);
	note("accept=%s", fd >= 0 ? "fd" : errno_name(errno));
	if (fd < 0)
		setup_fail("accept failed");
	note("peer=%s:len%u", in6_kind(&ss), len);
	expect(ss.ss_family == AF_INET6 && len == sizeof(struct sockaddr_in6) &&
	               IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&ss)->sin6_addr),
	       "IPv4 peer on an IPv6 listener: want a v4-mapped sockaddr_in6");
	note("dial=%s", dial_result(ctl));
	memset(&ss, 0, sizeof(ss));
	len = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &len);
	note("local=%s:len%u", in6_kind(&ss), len);
	echo_probe(fd);
	close(fd);
	close(ctl);
	close(lfd);

	int one = 1;
	lfd = tcp_socket(AF_INET6, 0);
	expect_res("set_v6only", res(setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))), 0);
	struct sockaddr_in6 any = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
	if (bind(lfd, (struct sockaddr *)&any, sizeof(any)) < 0 || listen(lfd, 4) < 0)
		setup_fail("v6only listener: %s", errno_name(errno));
	len = sizeof(any);
	getsockname(lfd, (struct sockaddr *)&any, &len);
	ctl = peer_dial(AF_INET, ntohs(any.sin6_port));
	const char *d = dial_result(ctl);
	note("v6only_dial4=%s", d);
	expect(strcmp(d, "ECONNREFUSED") == 0, "IPv4 to a V6ONLY listener: want ECONNREFUSED");
	close(ctl);
	ctl = peer_dial(AF_INET6, ntohs(any.sin6_port));
	note("v6only_dial6=%s", dial_result(ctl));
	fd = accept(lfd, NULL, NULL);
	note("v6only_accept=%s", fd >= 0 ? "fd" : errno_name(errno));
	close(fd);
	close(ctl);
	close(lfd);
}

static void note_fd_flags(const char *key, int fd, bool want_nonblock, bool want_cloexec)
{
	int fl = fcntl(fd, F_GETFL);
	int fdfl = fcntl(fd, F_GETFD);
	bool nb = fl >= 0 && (fl & O_NONBLOCK), ce = fdfl >= 0 && (fdfl & FD_CLOEXEC);
	note("%s_nonblock=%s %s_cloexec=%s", key, nb ? "yes" : "no", key, ce ? "yes" : "no");
	expect(nb == want_nonblock && ce == want_cloexec, "%s: flags", key);
}

CASE(accept4_flags_4)
{
	uint16_t port;
	int lfd = tcp_listen(AF_INET, SOCK_NONBLOCK, &port);
	int ctl = peer_dial(AF_INET, port);
	note("pending=%s", events_str(wait_events(lfd, POLLIN, 3000)));
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	long r = res(fd);
	note("accept4=%s", r >= 0 ? "fd" : res_str(r));
	if (fd >= 0) {
		note_fd_flags("accept4", fd, true, true);
		echo_probe(fd);
		close(fd);
	}
	close(ctl);

	/* A plain accept gives a blocking fd without FD_CLOEXEC, even from a non-blocking listener. */
	ctl = peer_dial(AF_INET, port);
	note("pending=%s", events_str(wait_events(lfd, POLLIN, 3000)));
	fd = accept(lfd, NULL, NULL);
	r = res(fd);
	note("accept=%s", r >= 0 ? "fd" : res_str(r));
	if (fd >= 0) {
		note_fd_flags("accept", fd, false, false);
		echo_probe(fd);
		close(fd);
	}
	close(ctl);
	close(lfd);
}

CASE(accept_eagain_4)
{
	uint16_t port;
	int lfd = tcp_listen(AF_INET, SOCK_NONBLOCK, &port);
	expect_res("accept", res(accept(lfd, NULL, NULL)), -EAGAIN);
	expect_res("accept4", res(accept4(lfd, NULL, NULL, SOCK_CLOEXEC)), -EAGAIN);
	close(lfd);
	/* The same with O_NONBLOCK set through fcntl on a listener created blocking. */
	lfd = tcp_listen(AF_INET, 0, &port);
	expect_res("set_nonblock", res(fcntl(lfd, F_SETFL, O_NONBLOCK)), 0);
	expect_res("accept_fcntl", res(accept(lfd, NULL, NULL)), -EAGAIN);
	close(lfd);
}

static void listen_readable(int family)
{
	uint16_t port;
	int lfd = tcp_listen(family, 0, &port);
	unsigned ev = wait_events(lfd, POLLIN | POLLOUT, 0);
	note("idle=%s", events_str(ev));
	expect(ev == 0, "idle listener: want 0");

	int ctl1 = peer_dial(family, port);
	const char *d = dial_result(ctl1);
	note("dial1=%s", d);
	int ctl2 = peer_dial(family, port);
	d = dial_result(ctl2);
	note("dial2=%s", d);

	ev = wait_events(lfd, POLLIN | POLLOUT, 3000);
	note("two_pending=%s", events_str(ev));
	expect(ev == POLLIN, "two pending: want IN");
	int a1 = accept(lfd, NULL, NULL);
	note("accept1=%s", a1 >= 0 ? "fd" : errno_name(errno));
	ev = wait_events(lfd, POLLIN | POLLOUT, 3000);
	note("one_pending=%s", events_str(ev));
	expect(ev == POLLIN, "one pending: want IN");
	int a2 = accept(lfd, NULL, NULL);
	note("accept2=%s", a2 >= 0 ? "fd" : errno_name(errno));
	ev = wait_events(lfd, POLLIN | POLLOUT, 0);
	note("drained=%s", events_str(ev));
	expect(ev == 0, "drained listener: want 0");
	if (a1 >= 0)
		echo_probe(a1);
	if (a2 >= 0)
		echo_probe(a2);
	close(a1);
	close(a2);
	close(ctl1);
	close(ctl2);
	close(lfd);
}

CASE(listen_readable_4) { listen_readable(AF_INET); }
CASE(listen_readable_6) { listen_readable(AF_INET6); }
