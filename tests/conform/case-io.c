/*
 * case-io.c: the data calls on a connected socket, and the receive flags (MSG_PEEK, MSG_WAITALL, MSG_DONTWAIT),
 * half-close, and a 1 MB round trip.
 *
 * Byte counts are only printed where TCP fixes them: after waiting with FIONREAD until everything has arrived, or
 * with MSG_WAITALL. A plain recv right after a send may legitimately return less.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "conform.h"

/* Waits until n echoed bytes are queued, so that the next read returns them all. */
static void await(int fd, long n)
{
	long q = wait_inq(fd, n, 3000);
	if (q != n)
		setup_fail("waiting for %ld bytes: FIONREAD %s", n, res_str(q));
}

static void expect_data(const char *key, const char *got, const char *want, size_t n)
{
	bool same = memcmp(got, want, n) == 0;
	note("%s=%s", key, same ? "same" : "differs");
	expect(same, "%s: data differs", key);
}

CASE(io_calls_4)
{
	int fd = peer_connect(AF_INET, PEER_ECHO);
	char buf[64];

	expect_res("write", res(write(fd, "0123456789", 10)), 10);
	await(fd, 10);
	expect_res("read", res(read(fd, buf, sizeof(buf))), 10);
	expect_data("read_data", buf, "0123456789", 10);

	struct iovec wv[3] = { { "ab", 2 }, { "cde", 3 }, { "fghij", 5 } };
	expect_res("writev", res(writev(fd, wv, 3)), 10);
	await(fd, 10);
	char r1[4], r2[16];
	struct iovec rv[2] = { { r1, sizeof(r1) }, { r2, sizeof(r2) } };
	expect_res("readv", res(readv(fd, rv, 2)), 10);
	expect_data("readv_data1", r1, "abcd", 4);
	expect_data("readv_data2", r2, "efghij", 6);

	expect_res("send", res(send(fd, "send-recv!", 10, 0)), 10);
	await(fd, 10);
	expect_res("recv", res(recv(fd, buf, sizeof(buf), 0)), 10);
	expect_data("recv_data", buf, "send-recv!", 10);

	/* On a connected stream socket, Linux ignores sendto's address and recvfrom fills none (addrlen 0). */
	expect_res("sendto_null", res(sendto(fd, "sendto-nul", 10, 0, NULL, 0)), 10);
	struct sockaddr_storage other;
	socklen_t olen = peer_addr(AF_INET, PEER_CLOSED, &other);
	expect_res("sendto_addr", res(sendto(fd, "sendto-adr", 10, 0, (struct sockaddr *)&other, olen)), 10);
	await(fd, 20);
	struct sockaddr_storage from;
	memset(&from, 0xa5, sizeof(from));
	socklen_t flen = sizeof(from);
	expect_res("recvfrom", res(recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen)), 20);
	expect_data("recvfrom_data", buf, "sendto-nulsendto-adr", 20);
	note("recvfrom_addrlen=%u", flen);
	flen = sizeof(from);

	char m1[] = "msg", m2[] = "-parts";
	struct iovec sv[2] = { { m1, 3 }, { m2, 6 } };
	struct msghdr mh = { .msg_iov = sv, .msg_iovlen = 2 };
	expect_res("sendmsg", res(sendmsg(fd, &mh, 0)), 9);
	await(fd, 9);
	char in1[5], in2[8];
	struct iovec iv[2] = { { in1, sizeof(in1) }, { in2, sizeof(in2) } };
	struct sockaddr_storage name;
	struct msghdr rh = { .msg_name = &name, .msg_namelen = sizeof(name), .msg_iov = iv, .msg_iovlen = 2 };
	expect_res("recvmsg", res(recvmsg(fd, &rh, 0)), 9);
	expect_data("recvmsg_data1", in1, "msg-p", 5);
	expect_data("recvmsg_data2", in2, "arts", 4);
	note("recvmsg_namelen=%u recvmsg_flags=0x%x", rh.msg_namelen, (unsigned)rh.msg_flags);

	/*
	 * Zero-length calls move nothing. read() of 0 bytes returns 0 at once, but TCP's recv waits for at least one
	 * byte to be there (SO_RCVLOWAT is at least 1), so with MSG_DONTWAIT on an empty socket it says EAGAIN.
	 */
	expect_res("write0", res(write(fd, buf, 0)), 0);
	expect_res("send0", res(send(fd, buf, 0, 0)), 0);
	expect_res("recv0", res(recv(fd, buf, 0, MSG_DONTWAIT)), -EAGAIN);
	expect_res("read0", res(read(fd, buf, 0)), 0);
	expect_res("recv_empty", res(recv(fd, buf, sizeof(buf), MSG_DONTWAIT)), -EAGAIN);
	close(fd);
}

/* A 1 MB round trip through the echo service, with both directions in flight at once (poll-driven). */
static void echo_1mb(int family)
{
	enum { TOTAL = 1 << 20, CHUNK = 65536 };
	int fd = peer_connect(family, PEER_ECHO);
	if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
		setup_fail("fcntl: %s", errno_name(errno));
	uint8_t *out = malloc(CHUNK), *in = malloc(CHUNK);
	if (!out || !in)
		setup_fail("malloc");
	uint32_t sent_sum = CSUM_INIT, got_sum = CSUM_INIT;
	size_t sent = 0, got = 0;
	long err = 0;
	bool shut = false;
	int64_t deadline = now_ms() + 4000;
	while (got < TOTAL && err == 0 && now_ms() < deadline) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN | (sent < TOTAL ? POLLOUT : 0) };
		if (poll(&pfd, 1, 500) < 0 && errno != EINTR)
			setup_fail("poll: %s", errno_name(errno));
		if ((pfd.revents & POLLOUT) && sent < TOTAL) {
			size_t n = TOTAL - sent < CHUNK ? TOTAL - sent : CHUNK;
			pattern_fill(out, sent, n);
			ssize_t w = send(fd, out, n, MSG_NOSIGNAL);
			if (w > 0) {
				sent_sum = csum_update(sent_sum, out, (size_t)w);
				sent += (size_t)w;
			} else if (w < 0 && errno != EAGAIN && errno != EINTR)
				err = -errno;
		}
		if (sent == TOTAL && !shut) {
			expect_res("shutdown", res(shutdown(fd, SHUT_WR)), 0);
			shut = true;
		}
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = recv(fd, in, CHUNK, 0);
			if (r > 0) {
				got_sum = csum_update(got_sum, in, (size_t)r);
				got += (size_t)r;
			} else if (r == 0)
				break;
			else if (errno != EAGAIN && errno != EINTR)
				err = -errno;
		}
	}
	note("sent=%zu got=%zu csum=%08x", sent, got, got_sum);
	if (err)
		note_res("error", err);
	expect(sent == TOTAL && got == TOTAL && sent_sum == got_sum, "round trip: sent %zu got %zu", sent, got);
	char c;
	if (got == TOTAL)
		expect_res("eof", res(recv_upto(fd, &c, 1, 3000)), 0);
	free(out);
	free(in);
	close(fd);
}

CASE(echo_1mb_4) { echo_1mb(AF_INET); }
CASE(echo_1mb_6) { echo_1mb(AF_INET6); }

/*
 * One direction at a time, each ended by a FIN right behind the data: every byte must arrive before the EOF.
 * (echo_1mb mixes both directions; these two tell which one loses the tail if it goes wrong.)
 */
CASE(upload_shutdown_4)
{
	enum { TOTAL = 1 << 20 };
	static uint8_t buf[TOTAL];
	int fd = peer_connect(AF_INET, PEER_COUNT);
	pattern_fill(buf, 0, TOTAL);
	send_all(fd, buf, TOTAL);
	expect_res("shutdown", res(shutdown(fd, SHUT_WR)), 0);
	char reply[32] = { 0 };
	long r = recv_upto(fd, reply, sizeof(reply) - 1, 4000);
	note("peer_counted=%.*s", r > 0 ? (int)r - 1 : 0, reply);
	expect(strcmp(reply, "1048576\n") == 0, "peer counted %.*s bytes, want 1048576", r > 0 ? (int)r - 1 : 0, reply);
	close(fd);
}

CASE(download_eof_4)
{
	enum { TOTAL = 1 << 20 };
	static uint8_t buf[TOTAL + 1];
	int fd = peer_source(AF_INET, TOTAL, 65536, 0);
	long r = recv_upto(fd, buf, sizeof(buf), 4000);
	note_res("got", r);
	if (r > 0)
		note("csum=%08x", csum_update(CSUM_INIT, buf, (size_t)r));
	uint8_t *want = malloc(TOTAL);
	if (!want)
		setup_fail("malloc");
	pattern_fill(want, 0, TOTAL);
	/* recv_upto stops at EOF or after 4 s without data: tell the two apart. */
	unsigned ev = wait_events(fd, POLLIN, 0);
	bool eof = ev & (POLLIN | POLLHUP);
	note("eof_seen=%s", eof ? "yes" : "no");
	if (r != TOTAL) {
		/* Only on failure, for whoever debugs it: is anything queued that recv does not return? */
		note("diag_revents=%s diag_inq=%s", events_str(ev), res_str(wait_inq(fd, 1, 0)));
		note("diag_recv=%s", res_str(res(recv(fd, buf, sizeof(buf), MSG_DONTWAIT))));
	}
	expect(r == TOTAL && memcmp(buf, want, TOTAL) == 0, "download: got %s of 1048576 bytes%s", res_str(r),
	       eof ? "" : ", then the stream stalled");
	free(want);
	if (eof)
		expect_res("eof", res(recv(fd, buf, 1, 0)), 0);
	close(fd);
}

/* SHUT_WR: the peer sees EOF and answers; we can no longer send, but we still receive. */
static void halfclose(int family)
{
	int fd = peer_connect(family, PEER_COUNT);
	uint8_t buf[1000];
	pattern_fill(buf, 0, sizeof(buf));
	expect_res("send", res(send(fd, buf, sizeof(buf), 0)), 1000);
	expect_res("shutdown", res(shutdown(fd, SHUT_WR)), 0);
	expect_res("send_after", res(send(fd, "x", 1, MSG_NOSIGNAL)), -EPIPE);
	char reply[32] = { 0 };
	long r = recv_upto(fd, reply, sizeof(reply) - 1, 3000);
	note_res("reply_len", r);
	expect(r == 5 && memcmp(reply, "1000\n", 5) == 0, "peer counted '%.*s', want 1000", r > 0 ? (int)r - 1 : 0,
	       reply);
	expect_res("recv_eof", res(recv(fd, reply, sizeof(reply), 0)), 0);
	expect_res("recv_eof_again", res(recv(fd, reply, sizeof(reply), 0)), 0);
	/* Both FINs are through: the socket is closed (TIME_WAIT), and shutdown says so. */
	expect_res("shutdown_rd", res(shutdown(fd, SHUT_RD)), -ENOTCONN);
	close(fd);

	fd = tcp_socket(family, 0);
	expect_res("shutdown_unconnected", res(shutdown(fd, SHUT_WR)), -ENOTCONN);
	close(fd);
}

CASE(halfclose_4) { halfclose(AF_INET); }
CASE(halfclose_6) { halfclose(AF_INET6); }

CASE(halfclose_echo_4)
{
	enum { N = 3000 };
	int fd = peer_connect(AF_INET, PEER_ECHO);
	uint8_t out[N], in[N + 1];
	pattern_fill(out, 0, N);
	send_all(fd, out, N);
	expect_res("shutdown", res(shutdown(fd, SHUT_WR)), 0);
	/* The echo goes on after our FIN: everything comes back, then the peer's EOF. */
	long r = recv_upto(fd, in, sizeof(in), 3000);
	note_res("echoed", r);
	expect(r == N && memcmp(in, out, N) == 0, "echo after SHUT_WR: got %s bytes", res_str(r));
	expect_res("recv_eof", res(recv(fd, in, sizeof(in), 0)), 0);
	close(fd);
}

CASE(peek_4)
{
	int fd = peer_connect(AF_INET, PEER_ECHO);
	char buf[64];
	send_all(fd, "hello world", 11);
	await(fd, 11);
	expect_res("peek", res(recv(fd, buf, sizeof(buf), MSG_PEEK)), 11);
	expect_data("peek_data", buf, "hello world", 11);
	expect_res("peek_again", res(recv(fd, buf, sizeof(buf), MSG_PEEK)), 11);
	expect_res("peek_5", res(recv(fd, buf, 5, MSG_PEEK)), 5);
	expect_res("recv_5", res(recv(fd, buf, 5, 0)), 5);
	expect_data("recv_5_data", buf, "hello", 5);
	expect_res("peek_rest", res(recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT)), 6);
	expect_data("peek_rest_data", buf, " world", 6);
	expect_res("recv_rest", res(recv(fd, buf, sizeof(buf), 0)), 6);
	expect_res("peek_empty", res(recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT)), -EAGAIN);

	/* A blocking peek waits for data, and then leaves it there. */
	send_all(fd, "later", 5);
	long r = res(recv(fd, buf, sizeof(buf), MSG_PEEK));
	note("peek_blocking=%s", r > 0 ? "data" : res_str(r));
	await(fd, 5);
	expect_res("recv_later", res(recv(fd, buf, sizeof(buf), 0)), 5);
	close(fd);
}

CASE(waitall_4)
{
	/* The peer sends 3000 bytes as three 1000-byte chunks 100 ms apart: a plain recv would return after the first. */
	int fd = peer_source(AF_INET, 3000, 1000, 100);
	uint8_t buf[4000], want[3000];
	pattern_fill(want, 0, sizeof(want));
	expect_res("waitall", res(recv(fd, buf, 3000, MSG_WAITALL)), 3000);
	expect(memcmp(buf, want, 3000) == 0, "waitall: data differs");
	note("csum=%08x", csum_update(CSUM_INIT, buf, 3000));
	expect_res("eof", res(recv(fd, buf, sizeof(buf), MSG_WAITALL)), 0);
	close(fd);

	/* MSG_WAITALL returns short when EOF comes first. */
	fd = peer_source(AF_INET, 500, 500, 50);
	expect_res("waitall_short", res(recv(fd, buf, 1000, MSG_WAITALL)), 500);
	expect_res("eof_short", res(recv(fd, buf, 1000, MSG_WAITALL)), 0);
	close(fd);

	/* readv-style WAITALL through recvmsg, across two buffers. */
	fd = peer_source(AF_INET, 2000, 500, 50);
	struct iovec iv[2] = { { buf, 1200 }, { buf + 1200, 800 } };
	struct msghdr mh = { .msg_iov = iv, .msg_iovlen = 2 };
	expect_res("recvmsg_waitall", res(recvmsg(fd, &mh, MSG_WAITALL)), 2000);
	uint8_t want2[2000];
	pattern_fill(want2, 0, sizeof(want2));
	expect(memcmp(buf, want2, 2000) == 0, "recvmsg waitall: data differs");
	close(fd);
}

CASE(dontwait_4)
{
	int fd = peer_connect(AF_INET, PEER_ECHO);
	char buf[16];
	expect_res("recv_dontwait", res(recv(fd, buf, sizeof(buf), MSG_DONTWAIT)), -EAGAIN);
	expect_res("recvfrom_dontwait", res(recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, NULL, NULL)), -EAGAIN);
	int fl = fcntl(fd, F_GETFL);
	note("still_blocking=%s", fl >= 0 && !(fl & O_NONBLOCK) ? "yes" : "no");
	expect(fl >= 0 && !(fl & O_NONBLOCK), "MSG_DONTWAIT left O_NONBLOCK set");
	expect_res("send_dontwait", res(send(fd, "x", 1, MSG_DONTWAIT)), 1);
	await(fd, 1);
	expect_res("recv_dontwait_data", res(recv(fd, buf, sizeof(buf), MSG_DONTWAIT)), 1);

	/* And on a socket made non-blocking, every read call says EAGAIN. */
	expect_res("set_nonblock", res(fcntl(fd, F_SETFL, fl | O_NONBLOCK)), 0);
	expect_res("recv_nb", res(recv(fd, buf, sizeof(buf), 0)), -EAGAIN);
	expect_res("read_nb", res(read(fd, buf, sizeof(buf))), -EAGAIN);
	struct iovec iv = { buf, sizeof(buf) };
	expect_res("readv_nb", res(readv(fd, &iv, 1)), -EAGAIN);
	struct msghdr mh = { .msg_iov = &iv, .msg_iovlen = 1 };
	expect_res("recvmsg_nb", res(recvmsg(fd, &mh, 0)), -EAGAIN);
	close(fd);
}
