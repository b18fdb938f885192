/*
 * case-oob.c: TCP urgent data (MSG_OOB), between two ends of a loopback connection.
 *
 * send(MSG_OOB) sends every byte and marks the last urgent. Without SO_OOBINLINE the receiver's in-band reads stop
 * at the mark and skip the urgent byte, which recv(MSG_OOB) returns once (EINVAL after, and before any came);
 * SIOCATMARK says whether the next in-band byte is the one after the mark. With SO_OOBINLINE the byte stays in the
 * stream and recv(MSG_OOB) says EINVAL. telnet and rlogin-style programs, and libuv, use these.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "conform.h"

static void expect_bytes(const char *key, int fd, const char *want)
{
	char got[16] = { 0 };
	size_t n = strlen(want);
	long r = recv_upto(fd, got, n, 3000);
	note("%s=%s", key, r == (long)n && memcmp(got, want, n) == 0 ? "ok" : r < 0 ? res_str(r) : "wrong");
	expect(r == (long)n && memcmp(got, want, n) == 0, "%s: want %s", key, want);
}

static int at_mark(int fd)
{
	int v = -1;
	return ioctl(fd, SIOCATMARK, &v) < 0 ? -errno : v;
}

/*
 * Waits until fd's urgent byte has arrived, for 3 s at most: on the kernel's loopback it is there when send returns,
 * through mwinsd it crosses a hop. A carrier cannot show POLLPRI to wait for (README), so this asks, with
 * recv(MSG_OOB | MSG_PEEK), which leaves the byte where it is on both.
 */
static void wait_oob(int fd)
{
	int64_t end = now_ms() + 3000;
	char b;

	while (recv(fd, &b, 1, MSG_OOB | MSG_PEEK | MSG_DONTWAIT) != 1 && now_ms() < end)
		sleep_ms(5);
}

CASE(oob_4)
{
	int c, a;
	char b = 0;
	tcp_loop_pair(&c, &a);
	expect_res("recv_none", res(recv(a, &b, 1, MSG_OOB)), -EINVAL);
	expect_res("atmark_none", at_mark(a), 0);
	expect_res("send", res(send(c, "ab", 2, 0)), 2);
	expect_res("send_oob", res(send(c, "!", 1, MSG_OOB)), 1);
	expect_bytes("before_mark", a, "ab");
	wait_oob(a);
	expect_res("atmark", at_mark(a), 1);
	expect_res("peek_oob", res(recv(a, &b, 1, MSG_OOB | MSG_PEEK)), 1);
	expect_res("recv_oob", res(recv(a, &b, 1, MSG_OOB)), 1);
	note("oob_byte=%s", b == '!' ? "ok" : "wrong");
	expect(b == '!', "urgent byte: want !");
	expect_res("recv_oob_again", res(recv(a, &b, 1, MSG_OOB)), -EINVAL);

	/* Several bytes with MSG_OOB: the last is the urgent one, the rest in-band. */
	expect_res("send_oob3", res(send(c, "xyz", 3, MSG_OOB)), 3);
	expect_bytes("in_band", a, "xy");
	struct iovec iv = { &b, 1 };
	struct msghdr mh = { .msg_iov = &iv, .msg_iovlen = 1 };
	expect_res("recvmsg_oob", res(recvmsg(a, &mh, MSG_OOB)), 1);
	note("oob_byte=%s msg_oob=%s", b == 'z' ? "ok" : "wrong", mh.msg_flags & MSG_OOB ? "yes" : "no");
	expect(b == 'z', "urgent byte: want z");

	/* The stream goes on after the mark, and the other way too. */
	expect_res("send_after", res(send(c, "cd", 2, 0)), 2);
	expect_bytes("after_mark", a, "cd");
	expect_res("send_back_oob", res(send(a, "?", 1, MSG_OOB)), 1);
	wait_oob(c);
	expect_res("back_recv_oob", res(recv(c, &b, 1, MSG_OOB)), 1);
	note("back_byte=%s", b == '?' ? "ok" : "wrong");
	close(c);
	close(a);
}

CASE(oob_inline_4)
{
	int c, a, one = 1;
	char b = 0;
	tcp_loop_pair(&c, &a);
	expect_res("set_inline", res(setsockopt(a, SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one))), 0);
	expect_res("get_inline", sockopt_int(a, SOL_SOCKET, SO_OOBINLINE), 1);
	expect_res("send", res(send(c, "ab", 2, 0)), 2);
	expect_res("send_oob", res(send(c, "!", 1, MSG_OOB)), 1);
	expect_res("send_after", res(send(c, "cd", 2, 0)), 2);
	expect_bytes("before_mark", a, "ab");
	expect_bytes("inline", a, "!cd");
	expect_res("recv_oob", res(recv(a, &b, 1, MSG_OOB)), -EINVAL);
	close(c);
	close(a);
}
