/*
 * case-close.c: a socket's lifetime across close, dup and fork.
 *
 * close() while another thread is blocked in recv or accept on the same socket: on Linux the blocked call holds its
 * own reference to the socket, so close() does not wake it, and the connection lives on until that call returns.
 * The cases then make the peer act (send, or connect in) and record what the blocked call returns. shutdown() is the
 * call that does wake a blocked accept.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conform.h"

struct blocked_call {
	int fd;
	bool accept;
	long r;
	char buf[16];
	int tid; /* thread_announce */
};

static void *blocked_call_run(void *arg)
{
	struct blocked_call *b = arg;
	thread_announce(&b->tid);
	if (b->accept)
		b->r = res(accept(b->fd, NULL, NULL));
	else
		b->r = res(recv(b->fd, b->buf, sizeof(b->buf), 0));
	return NULL;
}

static void blocked_call_start(pthread_t *t, struct blocked_call *b)
{
	if (pthread_create(t, NULL, blocked_call_run, b) != 0)
		setup_fail("pthread_create");
	/* Until the thread is inside the call: one that is not yet finds the fd closed (EBADF). */
	if (!wait_blocked(&b->tid, 3000))
		setup_fail("the thread did not block in its call within 3 s");
}

/* Joins within timeout_ms. Returns false when the call is still blocked. */
static bool blocked_call_join(pthread_t t, int timeout_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return pthread_timedjoin_np(t, NULL, &ts) == 0;
}

CASE(close_in_recv_4)
{
	/* The peer sends 5 bytes 800 ms after the request, then closes. */
	struct blocked_call b = { .fd = peer_source(AF_INET, 5, 5, 800) };
	pthread_t t;
	blocked_call_start(&t, &b);
	expect_res("close", res(close(b.fd)), 0);
	if (!blocked_call_join(t, 2500)) {
		note("recv=still_blocked");
		expect(false, "recv did not return after the peer sent and closed");
		_exit(1);
	}
	note_res("recv", b.r);
	expect(b.r == 5, "blocked recv: want the 5 bytes the peer sent after close");
}

CASE(close_in_accept_4)
{
	uint16_t port;
	struct blocked_call b = { .accept = true };
	b.fd = tcp_listen(AF_INET, 0, &port);
	pthread_t t;
	blocked_call_start(&t, &b);
	expect_res("close", res(close(b.fd)), 0);
	int ctl = peer_dial(AF_INET, port);
	note("dial=%s", dial_result(ctl));
	if (!blocked_call_join(t, 2500)) {
		note("accept=still_blocked");
		expect(false, "accept did not return after a connection came");
		_exit(1);
	}
	note("accept=%s", b.r >= 0 ? "fd" : res_str(b.r));
	expect(b.r >= 0, "blocked accept: want the connection that came after close");
	if (b.r >= 0) {
		echo_probe((int)b.r);
		close((int)b.r);
	}
	close(ctl);
}

CASE(shutdown_in_accept_4)
{
	uint16_t port;
	struct blocked_call b = { .accept = true };
	b.fd = tcp_listen(AF_INET, 0, &port);
	pthread_t t;
	blocked_call_start(&t, &b);
	expect_res("shutdown", res(shutdown(b.fd, SHUT_RDWR)), 0);
	if (!blocked_call_join(t, 2500)) {
		note("accept=still_blocked");
		expect(false, "shutdown did not wake the blocked accept");
		_exit(1);
	}
	expect_res("accept", b.r, -EINVAL);
	/* The listener no longer listens. */
	int ctl = peer_dial(AF_INET, port);
	const char *d = dial_result(ctl);
	note("dial=%s", d);
	expect(strcmp(d, "ECONNREFUSED") == 0, "dial after shutdown: want ECONNREFUSED");
	close(ctl);
	close(b.fd);
}

CASE(dup_close_4)
{
	int fd = peer_connect(AF_INET, PEER_ECHO);
	int d = dup(fd);
	note("dup=%s", d >= 0 ? "fd" : errno_name(errno));
	/* Closing one of two descriptors closes nothing underneath. */
	expect_res("close_orig", res(close(fd)), 0);
	echo_probe(d);
	int d2 = fcntl(d, F_DUPFD_CLOEXEC, 100);
	note("dupfd=%s", d2 >= 100 ? "fd" : res_str(res(d2)));
	expect_res("close_dup", res(close(d)), 0);
	echo_probe(d2);
	expect_res("shutdown", res(shutdown(d2, SHUT_WR)), 0);
	char c;
	expect_res("recv_eof", res(recv_upto(d2, &c, 1, 3000)), 0);
	expect_res("close_last", res(close(d2)), 0);
	expect_res("close_again", res(close(d2)), -EBADF);

	/* dup2 onto a socket closes that socket and makes the number an alias of the first. */
	int a = peer_connect(AF_INET, PEER_ECHO);
	int b = peer_connect(AF_INET, PEER_COUNT);
	long r = res(dup2(a, b));
	note("dup2=%s", r == b ? "newfd" : res_str(r));
	expect(r == b, "dup2: want newfd");
	expect_res("close_a", res(close(a)), 0);
	echo_probe(b);
	close(b);
}

/* A socket closed behind the interposers' backs, then its number given to something else, which must behave
 * as itself: an AF_UNIX socket (libuv closes with syscall(SYS_close) and may make a pipe server next), and a
 * file after it. */
/* close(2) as the instruction itself, as a static or Go program makes it: nothing in libc sees it. */
static long raw_close(int fd)
{
#if defined(__x86_64__)
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "0"((long)SYS_close), "D"((long)fd) : "rcx", "r11", "memory");
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = SYS_close;
	register long r __asm__("x0") = fd;
	__asm__ volatile("svc 0" : "+r"(r) : "r"(x8) : "memory");
#else
	long r = syscall(SYS_close, fd);
#endif
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

static long close_by(const char *how, int fd)
{
	if (!strcmp(how, "syscall"))
		return syscall(SYS_close, fd);
	if (!strcmp(how, "raw"))
		return raw_close(fd);
	return close_range((unsigned)fd, (unsigned)fd, 0);
}

static void number_reused(const char *how)
{
	int fd = peer_connect(AF_INET, PEER_ECHO);
	long r = close_by(how, fd);
	expect_res("close", res(r), 0);
	int u = socket(AF_UNIX, SOCK_STREAM, 0);
	note("same_number=%s", u == fd ? "yes" : "no");
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int n = snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1, "conform-reuse-%d", (int)getpid());
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	expect_res("bind_unix", res(bind(u, (struct sockaddr *)&sun, len)), 0);
	expect_res("listen_unix", res(listen(u, 4)), 0);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	expect_res("getsockname", res(getsockname(u, (struct sockaddr *)&ss, &sl)), 0);
	note("family=%s", ss.ss_family == AF_UNIX ? "unix" : "other");
	int acc = 0;
	socklen_t al = sizeof(acc);
	expect_res("acceptconn", res(getsockopt(u, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al)), 0);
	note("listening=%d", acc);
	r = close_by(how, u);
	expect_res("close_unix", res(r), 0);
	int f = open("/dev/null", O_RDONLY);
	char c;
	note("file_same_number=%s", f == fd ? "yes" : "no");
	expect_res("read_file", res(read(f, &c, 1)), 0);
	close(f);
}

CASE(close_syscall_reuse_4) { number_reused("syscall"); }
CASE(close_range_reuse_4) { number_reused("close_range"); }
CASE(close_raw_reuse_4) { number_reused("raw"); }

/* A file opened at the number of a socket closed by the raw instruction, connected or never connected: it is
 * written as a file (not refused as no socket, nor answered EPIPE from the socket's record). */
CASE(close_raw_file_4)
{
	for (int i = 0; i < 2; i++) {
		int fd = i ? tcp_socket(AF_INET, 0) : peer_connect(AF_INET, PEER_ECHO);
		expect_res(i ? "close_fresh" : "close_connected", raw_close(fd), 0);
		int f = open("/dev/null", O_WRONLY);
		note("same_number=%s", f == fd ? "yes" : "no");
		expect_res("write", res(write(f, "x", 1)), 1);
		struct iovec iv = { "y", 1 };
		expect_res("writev", res(writev(f, &iv, 1)), 1);
		close(f);
	}
}

CASE(fork_inherit_4)
{
	int fd = peer_connect(AF_INET, PEER_ECHO);
	char buf[16];
	for (int round = 0; round < 2; round++) {
		pid_t pid = fork();
		if (pid < 0)
			setup_fail("fork: %s", errno_name(errno));
		if (pid == 0) {
			send_all(fd, "child", 5);
			/* Round 0 closes its copy explicitly; round 1 leaves it to exit. Neither closes the parent's. */
			if (round == 0)
				close(fd);
			_exit(0);
		}
		int status;
		waitpid(pid, &status, 0);
		note("child%d=%s", round, WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ok" : "failed");
		long r = recv_upto(fd, buf, 5, 3000);
		expect_res(round == 0 ? "echo_of_child0" : "echo_of_child1", r, 5);
		echo_probe(fd);
	}
	close(fd);
}

/* shutdown(SHUT_RDWR) ends the data, not the socket: it keeps its peer's address and takes options until it is
 * closed, and a close with SO_LINGER {1, 0} then resets the connection (the peer's next send fails). */
CASE(shutdown_rdwr_then_linger_4)
{
	int c, a;
	tcp_loop_pair(&c, &a);
	struct sockaddr_in want;
	socklen_t len = sizeof(want);
	if (getsockname(a, (struct sockaddr *)&want, &len) < 0)
		setup_fail("getsockname: %s", errno_name(errno));
	expect_res("shutdown", res(shutdown(c, SHUT_RDWR)), 0);
	char b[8];
	expect_res("a_eof", recv_upto(a, b, sizeof(b), 3000), 0);
	expect_res("c_recv", res(recv(c, b, sizeof(b), MSG_DONTWAIT)), 0);
	expect_res("c_send", res(send(c, "x", 1, MSG_NOSIGNAL)), -EPIPE);
	struct sockaddr_in got;
	len = sizeof(got);
	memset(&got, 0, sizeof(got));
	expect_res("getpeername", res(getpeername(c, (struct sockaddr *)&got, &len)), 0);
	note("peer_port_ok=%s", got.sin_port == want.sin_port ? "yes" : "no");
	struct linger lg = { 1, 0 };
	expect_res("linger", res(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg))), 0);
	expect_res("close", res(close(c)), 0);
	unsigned ev = wait_events(a, 0, 3000); /* only ERR and HUP: the reset */
	note("a_hup=%s", ev & POLLHUP ? "yes" : "no");
	expect(ev & POLLHUP, "no reset reached the peer");
	expect_res("a_send", res(send(a, "x", 1, MSG_NOSIGNAL)), -EPIPE);
	close(a);
}
