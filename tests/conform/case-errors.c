/*
 * case-errors.c: the errors a program must see as the kernel gives them: EPIPE with and without SIGPIPE, a peer's
 * reset as ECONNRESET (not as a plain EOF), and the EAGAIN of SO_RCVTIMEO and SO_SNDTIMEO.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "conform.h"

static volatile sig_atomic_t sigpipe_count;

static void on_sigpipe(int sig)
{
	(void)sig;
	sigpipe_count++;
}

CASE(sigpipe_4)
{
	struct sigaction sa = { .sa_handler = on_sigpipe };
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGPIPE, &sa, NULL) < 0)
		setup_fail("sigaction: %s", errno_name(errno));
	int fd = peer_connect(AF_INET, PEER_ECHO);
	expect_res("shutdown", res(shutdown(fd, SHUT_WR)), 0);

	/* Each call is followed by the count of SIGPIPEs so far: the signal is due before the call returns. */
	expect_res("send_nosignal", res(send(fd, "x", 1, MSG_NOSIGNAL)), -EPIPE);
	note("signals=%d", (int)sigpipe_count);
	expect_res("send", res(send(fd, "x", 1, 0)), -EPIPE);
	note("signals=%d", (int)sigpipe_count);
	expect_res("write", res(write(fd, "x", 1)), -EPIPE);
	note("signals=%d", (int)sigpipe_count);
	struct iovec iv = { "x", 1 };
	expect_res("writev", res(writev(fd, &iv, 1)), -EPIPE);
	note("signals=%d", (int)sigpipe_count);
	expect_res("sendto_nosignal", res(sendto(fd, "x", 1, MSG_NOSIGNAL, NULL, 0)), -EPIPE);
	struct msghdr mh = { .msg_iov = &iv, .msg_iovlen = 1 };
	expect_res("sendmsg_nosignal", res(sendmsg(fd, &mh, MSG_NOSIGNAL)), -EPIPE);
	expect_res("sendmsg", res(sendmsg(fd, &mh, 0)), -EPIPE);
	note("signals=%d", (int)sigpipe_count);
	expect(sigpipe_count == 4, "want 4 SIGPIPEs (send, write, writev, sendmsg) got %d", (int)sigpipe_count);
	close(fd);
}

/* The peer has closed: the first send goes out and draws a reset, and once that is in (the socket hangs up)
 * the next send fails with EPIPE, the error TCP gives a reset in CLOSE_WAIT.  The case waits for the hang-up
 * rather than counting sends: on a nearby peer the reset is usually in before send() returns, but a loaded
 * machine defers that work, to a kernel socket as much as to the relay.  A relay that learns of the reset only
 * when its own sends fail never hangs up. */
CASE(send_after_peer_close_4)
{
	int fd = peer_source(AF_INET, 0, 1, 0);
	char b[8];
	expect_res("eof", recv_upto(fd, b, sizeof(b), 3000), 0);
	expect_res("send1", res(send(fd, "x", 1, MSG_NOSIGNAL)), 1);
	unsigned ev = wait_events(fd, POLLHUP, 3000);
	note("hup=%s", ev & POLLHUP ? "yes" : "no");
	expect(ev & POLLHUP, "no hang-up within 3 s of the send that draws the reset");
	expect_res("send2", res(send(fd, "x", 1, MSG_NOSIGNAL)), -EPIPE);
	expect_res("send3", res(send(fd, "x", 1, MSG_NOSIGNAL)), -EPIPE);
	close(fd);
}

/* Connects to the reset service and triggers the RST. */
static int reset_connect(int family)
{
	int fd = peer_connect(family, PEER_RESET);
	send_all(fd, "x", 1);
	return fd;
}

static void reset_recv(int family)
{
	int fd = reset_connect(family);
	char buf[16];
	/* Blocked in recv when the RST comes. */
	expect_res("recv", res(recv(fd, buf, sizeof(buf), 0)), -ECONNRESET);
	/* The error is reported once; after it the socket reads as closed. */
	expect_res("recv_again", res(recv(fd, buf, sizeof(buf), 0)), 0);
	expect_res("send", res(send(fd, "y", 1, MSG_NOSIGNAL)), -EPIPE);
	close(fd);

	/* The same seen through read() on a socket that was not waiting. */
	fd = reset_connect(family);
	unsigned ev = wait_events(fd, POLLRDHUP, 3000);
	if (!(ev & POLLRDHUP))
		setup_fail("no reset from the peer: %s", events_str(ev));
	expect_res("read", res(read(fd, buf, sizeof(buf))), -ECONNRESET);
	expect_res("read_again", res(read(fd, buf, sizeof(buf))), 0);
	close(fd);

	/* A send into a reset connection gets ECONNRESET first, then EPIPE. */
	fd = reset_connect(family);
	wait_events(fd, POLLRDHUP, 3000);
	expect_res("send_first", res(send(fd, "y", 1, MSG_NOSIGNAL)), -ECONNRESET);
	expect_res("send_next", res(send(fd, "y", 1, MSG_NOSIGNAL)), -EPIPE);
	close(fd);
}

CASE(reset_recv_4) { reset_recv(AF_INET); }
CASE(reset_recv_6) { reset_recv(AF_INET6); }

CASE(reset_poll_4)
{
	int fd = reset_connect(AF_INET);
	/* The socket is writable all along: wait for the reset itself, then look. */
	unsigned ev = wait_events(fd, POLLRDHUP, 3000);
	if (!(ev & POLLRDHUP))
		setup_fail("no reset from the peer: %s", events_str(ev));
	ev = wait_events(fd, POLLIN | POLLOUT | POLLRDHUP, 0);
	note("revents=%s", events_str(ev));
	/* The kernel adds POLLERR; the channel can't (see KNOWN in tests/test_conform.py), so the self-check asks
	 * only for what both give, and the comparison with the kernel shows the rest. */
	expect((ev & (POLLIN | POLLHUP)) == (POLLIN | POLLHUP), "after reset: want IN and HUP");
	int err = -1;
	socklen_t len = sizeof(err);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
	expect_res("so_error", -err, -ECONNRESET);
	char buf[8];
	expect_res("recv", res(recv(fd, buf, sizeof(buf), 0)), 0);
	ev = wait_events(fd, POLLIN | POLLOUT | POLLRDHUP, 0);
	note("revents_after=%s", events_str(ev));
	close(fd);
}

/* A reset connection is still a socket: options can be set and read on it (nginx lifts TCP_CORK on a
 * keepalive connection the client has just reset, and logs an alert if that fails). */
CASE(reset_options_4)
{
	int fd = reset_connect(AF_INET), v = 0, got = -1;
	socklen_t len = sizeof(got);
	unsigned ev = wait_events(fd, POLLRDHUP, 3000);

	if (!(ev & POLLRDHUP))
		setup_fail("no reset from the peer: %s", events_str(ev));
	expect_res("cork_off", res(setsockopt(fd, IPPROTO_TCP, TCP_CORK, &v, sizeof(v))), 0);
	v = 1;
	expect_res("nodelay_on", res(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v))), 0);
	expect_res("nodelay_get", res(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &got, &len)), 0);
	expect_res("nodelay_val", got, 1);
	char buf[8];
	expect_res("recv", res(recv(fd, buf, sizeof(buf), 0)), -ECONNRESET);
	v = 0;
	expect_res("cork_after_read", res(setsockopt(fd, IPPROTO_TCP, TCP_CORK, &v, sizeof(v))), 0);
	close(fd);
}

static void set_timeout(int fd, int opt, const char *key, int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	expect_res(key, res(setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv))), 0);
	struct timeval got = { -1, -1 };
	socklen_t len = sizeof(got);
	long r = res(getsockopt(fd, SOL_SOCKET, opt, &got, &len));
	note("%s_get=%s:%ld.%06ld", key, res_str(r), (long)got.tv_sec, (long)got.tv_usec);
	expect(r == 0 && got.tv_sec == tv.tv_sec && got.tv_usec == tv.tv_usec, "%s: read back differs", key);
}

/* Notes "key=ERR key_waited=yes": the call failed with ERR no sooner than 90% of the timeout. */
static void timed_call_note(const char *key, long r, int64_t start, int timeout_ms)
{
	bool waited = now_ms() - start >= timeout_ms * 9 / 10;
	note_res(key, r);
	note("%s_waited=%s", key, waited ? "yes" : "no");
	expect(r == -EAGAIN && waited, "%s: want EAGAIN after the timeout", key);
}

CASE(rcvtimeo_4)
{
	enum { TIMEOUT_MS = 300 };
	int fd = peer_connect(AF_INET, PEER_ECHO);
	set_timeout(fd, SO_RCVTIMEO, "rcvtimeo", TIMEOUT_MS);
	char buf[8];
	int64_t start = now_ms();
	timed_call_note("recv", res(recv(fd, buf, sizeof(buf), 0)), start, TIMEOUT_MS);
	start = now_ms();
	timed_call_note("read", res(read(fd, buf, sizeof(buf))), start, TIMEOUT_MS);
	/* The timeout does not get in the way of data that comes. */
	echo_probe(fd);
	close(fd);
}

CASE(sndtimeo_4)
{
	enum { TIMEOUT_MS = 300, CHUNK = 65536 };
	static char chunk[CHUNK];
	int fd = peer_connect(AF_INET, PEER_HOLD);
	set_timeout(fd, SO_SNDTIMEO, "sndtimeo", TIMEOUT_MS);
	/*
	 * The peer never reads, so the buffers fill. A send that queued part of its data returns that count after
	 * the timeout; the next one returns EAGAIN. How much fits is the stack's business and is not printed.
	 */
	long r = 0;
	int64_t start = 0, deadline = now_ms() + 8000;
	unsigned long long total = 0;
	while (now_ms() < deadline && total < (1ull << 30)) {
		start = now_ms();
		r = res(send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL));
		if (r < 0)
			break;
		total += (unsigned long long)r;
	}
	note("filled=%s", total > 0 ? "yes" : "no");
	timed_call_note("send", r, start, TIMEOUT_MS);
	close(fd);
}
