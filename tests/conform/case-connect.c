/*
 * case-connect.c: blocking and non-blocking connect, to a service, to a closed port, and into a black hole.
 *
 * The non-blocking cases pin down the contract that event loops rely on: connect says EINPROGRESS, POLLOUT fires
 * only once the attempt is over, and SO_ERROR then gives its result once (a second read gives 0).
 */
#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "conform.h"

static long so_error(int fd)
{
	int err = -1;
	socklen_t len = sizeof(err);
	long r = res(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len));
	if (r < 0)
		return r;
	return -err;
}

static long connect_to(int fd, int family, int service)
{
	struct sockaddr_storage ss;
	socklen_t len = peer_addr(family, service, &ss);
	return res(connect(fd, (struct sockaddr *)&ss, len));
}

static void connect_ok(int family)
{
	int fd = tcp_socket(family, 0);
	expect_res("connect", connect_to(fd, family, PEER_ECHO), 0);
	echo_probe(fd);
	expect_res("connect_again", connect_to(fd, family, PEER_ECHO), -EISCONN);
	close(fd);
}

CASE(connect_ok_4) { connect_ok(AF_INET); }
CASE(connect_ok_6) { connect_ok(AF_INET6); }

static void connect_refused(int family)
{
	int fd = tcp_socket(family, 0);
	expect_res("connect", connect_to(fd, family, PEER_CLOSED), -ECONNREFUSED);
	/* The error was returned by connect, so it is not pending any more. */
	expect_res("so_error", so_error(fd), 0);
	close(fd);
}

CASE(connect_refused_4) { connect_refused(AF_INET); }
CASE(connect_refused_6) { connect_refused(AF_INET6); }

static void connect_nb_ok(int family)
{
	int fd = tcp_socket(family, SOCK_NONBLOCK);
	expect_res("connect", connect_to(fd, family, PEER_ECHO), -EINPROGRESS);
	unsigned ev = wait_events(fd, POLLIN | POLLOUT, 3000);
	note("revents=%s", events_str(ev));
	expect(ev == POLLOUT, "revents: want OUT");
	expect_res("so_error", so_error(fd), 0);
	echo_probe(fd);
	close(fd);
}

CASE(connect_nb_ok_4) { connect_nb_ok(AF_INET); }
CASE(connect_nb_ok_6) { connect_nb_ok(AF_INET6); }

static void connect_nb_refused(int family)
{
	int fd = tcp_socket(family, SOCK_NONBLOCK);
	expect_res("connect", connect_to(fd, family, PEER_CLOSED), -EINPROGRESS);
	unsigned ev = wait_events(fd, POLLOUT, 3000);
	note("revents=%s", events_str(ev));
	expect(ev & POLLOUT, "revents: want OUT among them");
	expect_res("so_error", so_error(fd), -ECONNREFUSED);
	expect_res("so_error_again", so_error(fd), 0);
	close(fd);
}

CASE(connect_nb_refused_4) { connect_nb_refused(AF_INET); }
CASE(connect_nb_refused_6) { connect_nb_refused(AF_INET6); }

/* Two SYNs (the first and one retransmission) before ETIMEDOUT: about 3 s instead of two minutes. */
static int blackhole_socket(int flags)
{
	int fd = tcp_socket(AF_INET, flags);
	int syncnt = 1;
	expect_res("syncnt", res(setsockopt(fd, IPPROTO_TCP, TCP_SYNCNT, &syncnt, sizeof(syncnt))), 0);
	return fd;
}

static long connect_blackhole(int fd)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(peer_port(PEER_ECHO)),
		                   .sin_addr = conform_ctx.blackhole4 };
	return res(connect(fd, (struct sockaddr *)&sin, sizeof(sin)));
}

CASE(connect_nb_timeout_4)
{
	int fd = blackhole_socket(SOCK_NONBLOCK);
	expect_res("connect", connect_blackhole(fd), -EINPROGRESS);
	/* Nothing can have answered: the socket must not look writable yet. */
	unsigned ev = wait_events(fd, POLLIN | POLLOUT, 0);
	note("revents_now=%s", events_str(ev));
	expect(ev == 0, "revents_now: want 0");
	expect_res("so_error_now", so_error(fd), 0);
	expect_res("connect_again", connect_blackhole(fd), -EALREADY);
	/* The local address and port are chosen when the SYN leaves, not when the handshake ends. */
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	memset(&sin, 0, sizeof(sin));
	expect_res("getsockname", res(getsockname(fd, (struct sockaddr *)&sin, &len)), 0);
	note("local=%s:port_%s", sin.sin_family == AF_INET ? "inet" : "other", sin.sin_port ? "nonzero" : "zero");
	expect(sin.sin_family == AF_INET && sin.sin_port != 0, "pending connect: want a local port");
	expect_res("getpeername", res(getpeername(fd, (struct sockaddr *)&sin, &len)), -ENOTCONN);
	int64_t start = now_ms();
	ev = wait_events(fd, POLLOUT, 8000);
	note("revents=%s", events_str(ev));
	expect(ev & POLLOUT, "revents: want OUT among them");
	bool slow = now_ms() - start >= 2000;
	note("waited_2s=%s", slow ? "yes" : "no");
	expect(slow, "POLLOUT came before the SYN retransmission");
	expect_res("so_error", so_error(fd), -ETIMEDOUT);
	close(fd);
}

/*
 * Some programs learn the outcome of a non-blocking connect by calling connect again once the socket is writable.
 * The kernel reports the result through that call: 0 and then EISCONN, or the error (which it consumes, so that
 * SO_ERROR is 0 after). A further connect after a failure would start a new attempt, whose outcome is timing.
 */
CASE(connect_nb_recheck_4)
{
	int fd = tcp_socket(AF_INET, SOCK_NONBLOCK);
	expect_res("ok_connect", connect_to(fd, AF_INET, PEER_ECHO), -EINPROGRESS);
	note("ok_revents=%s", events_str(wait_events(fd, POLLOUT, 3000)));
	expect_res("ok_again", connect_to(fd, AF_INET, PEER_ECHO), 0);
	expect_res("ok_again2", connect_to(fd, AF_INET, PEER_ECHO), -EISCONN);
	expect_res("ok_so_error", so_error(fd), 0);
	echo_probe(fd);
	close(fd);

	fd = tcp_socket(AF_INET, SOCK_NONBLOCK);
	expect_res("refused_connect", connect_to(fd, AF_INET, PEER_CLOSED), -EINPROGRESS);
	/* The settled events, once OUT shows (3 s at most): a carrier closed by mwinsd wakes the program with
	 * HUP|ERR, and its send side frees (OUT) a few instructions later in the same close, which a poll running
	 * on another CPU may see half done. */
	int64_t end = now_ms() + 3000;
	unsigned rev;
	while (!((rev = wait_events(fd, POLLOUT, 100)) & POLLOUT) && now_ms() < end)
		if (rev)
			sleep_ms(1); /* HUP|ERR without OUT: poll would return at once */
	note("refused_revents=%s", events_str(rev));
	expect_res("refused_again", connect_to(fd, AF_INET, PEER_CLOSED), -ECONNREFUSED);
	expect_res("refused_so_error", so_error(fd), 0);
	close(fd);
}

CASE(connect_timeout_4)
{
	int fd = blackhole_socket(0);
	expect_res("connect", connect_blackhole(fd), -ETIMEDOUT);
	close(fd);
}
