/*
 * case-unix.c: sockets that are not INET must reach the kernel untouched.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "conform.h"

static void pair_dgram(int type, const char *key)
{
	int sv[2];
	char buf[64], k[48];
	snprintf(k, sizeof(k), "%s_pair", key);
	expect_res(k, res(socketpair(AF_UNIX, type, 0, sv)), 0);
	snprintf(k, sizeof(k), "%s_send1", key);
	expect_res(k, res(send(sv[0], "ab", 2, 0)), 2);
	snprintf(k, sizeof(k), "%s_send2", key);
	expect_res(k, res(send(sv[0], "cde", 3, 0)), 3);
	/* Message boundaries hold. */
	snprintf(k, sizeof(k), "%s_recv1", key);
	expect_res(k, res(recv(sv[1], buf, sizeof(buf), 0)), 2);
	struct iovec iv = { buf, 2 };
	struct msghdr mh = { .msg_iov = &iv, .msg_iovlen = 1 };
	snprintf(k, sizeof(k), "%s_recv2_short", key);
	expect_res(k, res(recvmsg(sv[1], &mh, 0)), 2);
	note("%s_trunc=%s", key, mh.msg_flags & MSG_TRUNC ? "yes" : "no");
	expect(mh.msg_flags & MSG_TRUNC, "%s: a short read of a datagram sets MSG_TRUNC", key);
	snprintf(k, sizeof(k), "%s_empty", key);
	expect_res(k, res(recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT)), -EAGAIN);
	close(sv[0]);
	close(sv[1]);
}

CASE(unix_pair)
{
	int sv[2];
	char buf[16];
	expect_res("stream_pair", res(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)), 0);
	note("idle=%s", events_str(wait_events(sv[1], POLLIN | POLLOUT, 0)));
	expect_res("write", res(write(sv[0], "hello", 5)), 5);
	unsigned ev = wait_events(sv[1], POLLIN | POLLOUT, 0);
	note("data=%s", events_str(ev));
	expect(ev == (POLLIN | POLLOUT), "data: want IN|OUT");
	expect_res("fionread", wait_inq(sv[1], 5, 0), 5);
	expect_res("read", res(read(sv[1], buf, sizeof(buf))), 5);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	expect_res("getsockname", res(getsockname(sv[0], (struct sockaddr *)&ss, &len)), 0);
	note("family=%s len=%u", ss.ss_family == AF_UNIX ? "unix" : "other", len);
	expect(ss.ss_family == AF_UNIX, "getsockname: want AF_UNIX");
	expect_res("shutdown", res(shutdown(sv[0], SHUT_WR)), 0);
	expect_res("read_eof", res(read(sv[1], buf, sizeof(buf))), 0);
	expect_res("reverse", res(write(sv[1], "back", 4)), 4);
	expect_res("reverse_read", res(read(sv[0], buf, sizeof(buf))), 4);
	close(sv[0]);
	close(sv[1]);

	pair_dgram(SOCK_DGRAM, "dgram");
	pair_dgram(SOCK_SEQPACKET, "seqpacket");
}

CASE(unix_listen)
{
	/* An abstract name: nothing on disk to clean up, and unique per process. */
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int n = snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1, "conform-%d", (int)getpid());
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (lfd < 0)
		setup_fail("socket: %s", errno_name(errno));
	expect_res("bind", res(bind(lfd, (struct sockaddr *)&sun, len)), 0);
	expect_res("listen", res(listen(lfd, 4)), 0);
	note("idle=%s", events_str(wait_events(lfd, POLLIN, 0)));
	int c = socket(AF_UNIX, SOCK_STREAM, 0);
	expect_res("connect", res(connect(c, (struct sockaddr *)&sun, len)), 0);
	unsigned ev = wait_events(lfd, POLLIN, 0);
	note("pending=%s", events_str(ev));
	expect(ev == POLLIN, "pending: want IN");
	int a = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	note("accept4=%s", a >= 0 ? "fd" : errno_name(errno));
	int fl = fcntl(a, F_GETFL), fdfl = fcntl(a, F_GETFD);
	note("nonblock=%s cloexec=%s", fl >= 0 && (fl & O_NONBLOCK) ? "yes" : "no",
	     fdfl >= 0 && (fdfl & FD_CLOEXEC) ? "yes" : "no");
	char buf[8];
	expect_res("recv_empty", res(recv(a, buf, sizeof(buf), 0)), -EAGAIN);
	expect_res("send", res(send(c, "unix", 4, 0)), 4);
	expect_res("recv", res(recv(a, buf, sizeof(buf), 0)), 4);
	expect_res("listener_nonblock", res(fcntl(lfd, F_SETFL, O_NONBLOCK)), 0);
	expect_res("accept_empty", res(accept(lfd, NULL, NULL)), -EAGAIN);
	close(a);
	close(c);
	close(lfd);
}

/* An AF_UNIX address longer than struct sockaddr_un (but within a sockaddr_storage): the kernel refuses it
 * with EINVAL, and so must whatever handles the connect in its place. */
CASE(unix_long_address)
{
	struct sockaddr_storage ss;
	memset(&ss, 'A', sizeof(ss));
	ss.ss_family = AF_UNIX;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		setup_fail("socket: %s", errno_name(errno));
	expect_res("connect_128", res(connect(fd, (struct sockaddr *)&ss, sizeof(ss))), -EINVAL);
	expect_res("connect_111", res(connect(fd, (struct sockaddr *)&ss, sizeof(struct sockaddr_un) + 1)), -EINVAL);
	close(fd);
}
