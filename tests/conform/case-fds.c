/*
 * case-fds.c: the fd numbers socket() returns, and sockets made and set up around fork and mass closes.
 *
 * The shim makes TCP sockets ahead of need and keeps them, and its control connection, at high numbers; these
 * cases pin down that a program can't tell: socket() returns the lowest free number every time, a program that
 * closes every fd and reuses the numbers keeps its own files and still gets working sockets, and an option set
 * just before fork is seen by the child.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conform.h"

static int lowest_free(void)
{
	int fd = fcntl(0, F_DUPFD, 0);

	if (fd < 0)
		setup_fail("dup: %s", strerror(errno));
	close(fd);
	return fd;
}

static long connect_echo(int fd, int family)
{
	struct sockaddr_storage ss;
	socklen_t len = peer_addr(family, PEER_ECHO, &ss);

	return res(connect(fd, (struct sockaddr *)&ss, len));
}

/* Twenty sockets in a row, and two more into holes: always the lowest free number. */
CASE(socket_lowest_fd_4)
{
	int fds[20], wrong = 0;

	for (int i = 0; i < 20; i++) {
		int want = lowest_free();

		fds[i] = tcp_socket(AF_INET, 0);
		wrong += fds[i] != want;
	}
	expect(wrong == 0, "socket_not_lowest=%d", wrong);
	close(fds[3]);
	close(fds[11]);
	expect_res("hole_1", res(socket(AF_INET, SOCK_STREAM, 0)), fds[3]);
	expect_res("hole_2", res(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)), fds[11]);
	expect_res("cloexec", res(fcntl(fds[11], F_GETFD)), FD_CLOEXEC);
	expect_res("not_cloexec", res(fcntl(fds[3], F_GETFD)), 0);
	note("wrong=%d", wrong);
	for (int i = 0; i < 20; i++)
		close(fds[i]);
}

/* Close everything, put files on every number up to 1024, and make a connection: it works, and every file is
 * still open. */
CASE(closerange_reuse_4)
{
	int fds[6], dn, lost = 0, fd, out;

	for (int i = 0; i < 6; i++)
		fds[i] = tcp_socket(AF_INET, 0);
	for (int i = 0; i < 6; i++)
		close(fds[i]);
	/* Every fd but the outcome's: as a daemon or a spawner does before it goes on. */
	out = outcome_pipe();
	if (out > 3)
		expect_res("close_low", res(syscall(SYS_close_range, 3U, (unsigned)out - 1, 0U)), 0);
	expect_res("close_range", res(syscall(SYS_close_range, (unsigned)out + 1, ~0U, 0U)), 0);
	dn = open("/dev/null", O_RDONLY);
	if (dn < 0)
		setup_fail("open /dev/null: %s", strerror(errno));
	for (int i = dn + 1; i < 1024; i++) {
		if (i != out && dup2(dn, i) != i)
			setup_fail("dup2 %d: %s", i, strerror(errno));
	}
	close(dn);
	fd = res(socket(AF_INET, SOCK_STREAM, 0));
	expect(fd >= 0 && fd < 1024 && fd == dn, "socket=%s", res_str(fd));
	if (fd >= 0) {
		expect_res("connect", connect_echo(fd, AF_INET), 0);
		echo_probe(fd);
		close(fd);
	}
	for (int i = dn + 1; i < 1024; i++)
		lost += i != out && fcntl(i, F_GETFD) < 0;
	expect(lost == 0, "files_lost=%d", lost);
	note("lost=%d", lost);
}

/* An option set just before fork is what the child reads: both socket() and setsockopt answer at once. */
CASE(fork_sees_opts_4)
{
	int fd = tcp_socket(AF_INET, 0), v = 1, st = 0;
	pid_t pid;

	expect_res("keepalive", res(setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof(v))), 0);
	expect_res("nodelay", res(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v))), 0);
	pid = fork();
	if (pid < 0)
		setup_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		int a = 0, b = 0;
		socklen_t l = sizeof(a);

		if (getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &a, &l) < 0)
			_exit(100);
		l = sizeof(b);
		if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &b, &l) < 0)
			_exit(101);
		_exit((a ? 1 : 0) | (b ? 2 : 0));
	}
	waitpid(pid, &st, 0);
	expect_res("child_sees", WIFEXITED(st) ? WEXITSTATUS(st) : -1, 3);
	expect_res("connect", connect_echo(fd, AF_INET), 0);
	echo_probe(fd);
	close(fd);
}

/* Connections one after another, so that the shim asks for sockets ahead (pool.c), with a fork in between:
 * the child's sockets are its own and work, the parent's go on working, and every socket() is the lowest
 * free number in both. */
static int conns_in_row(int n)
{
	int bad = 0;

	for (int i = 0; i < n; i++) {
		int want = lowest_free(), fd = socket(AF_INET, SOCK_STREAM, 0);
		char c = 'x';

		if (fd != want || connect_echo(fd, AF_INET) != 0 || write(fd, &c, 1) != 1 || read(fd, &c, 1) != 1 ||
		    c != 'x')
			bad++;
		if (fd >= 0)
			close(fd);
	}
	return bad;
}

CASE(pool_ahead_fork_4)
{
	int st = 0;
	pid_t pid;

	expect_res("before_fork", conns_in_row(13), 0);
	pid = fork();
	if (pid < 0)
		setup_fail("fork: %s", strerror(errno));
	if (pid == 0)
		_exit(conns_in_row(20) ? 1 : 0);
	expect_res("parent_during", conns_in_row(20), 0);
	waitpid(pid, &st, 0);
	expect_res("child", WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0);
	expect_res("parent_after", conns_in_row(10), 0);
}
