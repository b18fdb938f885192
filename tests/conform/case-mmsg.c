/*
 * case-mmsg.c: recvmmsg's timeout, as the kernel keeps it.  The deadline runs from the call's start and is
 * looked at only after each datagram (the wait for one is not cut short: a documented kernel quirk), and the
 * time left is written back.  A bad timespec is EINVAL.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conform.h"

enum { N = 3 };

/* Send N datagrams to the echo service and receive them with recvmmsg(N) under timeout t. */
static int echo_mmsg(int fd, const struct sockaddr_storage *to, socklen_t tolen, struct timespec *t)
{
	static uint8_t in[N][64];
	struct mmsghdr rm[N];
	struct iovec iv[N];

	memset(rm, 0, sizeof(rm));
	for (int i = 0; i < N; i++) {
		if (sendto(fd, "mmsg", 4, 0, (const struct sockaddr *)to, tolen) != 4)
			setup_fail("sendto: %s", errno_name(errno));
		iv[i] = (struct iovec){ in[i], sizeof(in[i]) };
		rm[i].msg_hdr = (struct msghdr){ .msg_iov = &iv[i], .msg_iovlen = 1 };
	}
	return recvmmsg(fd, rm, N, 0, t);
}

static void mmsg_timeout(int family)
{
	struct sockaddr_storage to;
	socklen_t tolen = peer_addr(family, PEER_UDP_ECHO, &to);
	int fd = udp_socket(family, 0);
	struct mmsghdr m = { 0 };
	struct timespec t = { 10, 0 };
	char b[64];

	/* Time enough: all N, and less than the whole timeout left, but some. */
	expect_res("long", res(echo_mmsg(fd, &to, tolen, &t)), N);
	note("left=%s", t.tv_sec < 10 && (t.tv_sec > 0 || t.tv_nsec > 0) ? "some" : "wrong");
	/* None: the first datagram is waited for, then the deadline has passed. */
	t = (struct timespec){ 0, 0 };
	expect_res("zero", res(echo_mmsg(fd, &to, tolen, &t)), 1);
	note("left_zero=%s", t.tv_sec == 0 && t.tv_nsec == 0 ? "0" : "wrong");
	/* The other two are still there, for the calls that follow. */
	for (int i = 0; i < N - 1; i++)
		expect_res("rest", res(recv(fd, b, sizeof(b), 0)), 4);
	t = (struct timespec){ 0, 1000000000L };
	expect_res("bad_nsec", res(recvmmsg(fd, &m, 1, MSG_DONTWAIT, &t)), -EINVAL);
	t = (struct timespec){ -1, 0 };
	expect_res("bad_sec", res(recvmmsg(fd, &m, 1, MSG_DONTWAIT, &t)), -EINVAL);
	close(fd);
}

CASE(mmsg_timeout_4) { mmsg_timeout(AF_INET); }
CASE(mmsg_timeout_6) { mmsg_timeout(AF_INET6); }
