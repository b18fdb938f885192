/*
 * case-process.c: sockets across processes and descriptors: fork (prefork servers), exec (inetd style, also with an
 * environment rebuilt without LD_PRELOAD), vfork, posix_spawn, dup/dup2/dup3/F_DUPFD_CLOEXEC, close-on-exec, and
 * SCM_RIGHTS to a forked child and to an exec'd program.
 *
 * An exec'd program is this program again, as the hidden subcommand `conform exec-helper` (process_helper_main):
 * it is told the outcome fd, the peer, and the fds to check by number on its command line, and writes its notes
 * (keys starting "x_") straight into the case's outcome. A forked child's notes start with "c_". The parent waits
 * for the child before it notes anything more, so the line's order is fixed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conform.h"

extern char **environ;

/* ---- what a receiving process checks ---- */

static void peer_note(const char *p, const char *what, int fd, bool peer)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	socklen_t len = sizeof(ss);
	struct sockaddr *sa = (struct sockaddr *)&ss;
	long r = res(peer ? getpeername(fd, sa, &len) : getsockname(fd, sa, &len));
	note("%s%s=%s", p, what, r < 0 ? res_str(r) : sa_desc(&ss, len));
}

/* Sends "ping" on a TCP socket and expects it back. */
static void tcp_ping(const char *p, const char *what, int fd)
{
	char buf[8];
	long w = res(send(fd, "ping", 4, MSG_NOSIGNAL));
	long r = w == 4 ? recv_upto(fd, buf, 4, 3000) : w;
	bool ok = r == 4 && memcmp(buf, "ping", 4) == 0;
	note("%s%s=%s", p, what, ok ? "ok" : res_str(r));
	expect(ok, "%s%s: echo", p, what);
}

/* What every process that was handed sockets checks; -1 skips one. */
static void use_fds(const char *p, int tcp, int udp, int lfd)
{
	char k[64];
	if (tcp >= 0) {
		note("%stcp=%s", p, sock_kind(tcp));
		peer_note(p, "tcp_peer", tcp, true);
		peer_note(p, "tcp_local", tcp, false);
		tcp_ping(p, "tcp_echo", tcp);
		int one = 1;
		snprintf(k, sizeof(k), "%stcp_nodelay_set", p);
		expect_res(k, res(setsockopt(tcp, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))), 0);
		snprintf(k, sizeof(k), "%stcp_nodelay_get", p);
		expect_res(k, sockopt_int(tcp, IPPROTO_TCP, TCP_NODELAY), 1);
	}
	if (udp >= 0) {
		note("%sudp=%s", p, sock_kind(udp));
		peer_note(p, "udp_peer", udp, true);
		snprintf(k, sizeof(k), "%sudp_echo", p);
		udp_probe(k, udp, 0);
	}
	if (lfd >= 0) {
		note("%slistener=%s", p, sock_kind(lfd));
		snprintf(k, sizeof(k), "%sacceptconn", p);
		expect_res(k, sockopt_int(lfd, SOL_SOCKET, SO_ACCEPTCONN), 1);
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		if (getsockname(lfd, (struct sockaddr *)&ss, &len) < 0)
			setup_fail("listener getsockname: %s", errno_name(errno));
		uint16_t port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
		                                              : ((struct sockaddr_in6 *)&ss)->sin6_port);
		int ctl = peer_dial(ss.ss_family, port);
		note("%sdial=%s", p, dial_result(ctl));
		int a = accept(lfd, NULL, NULL);
		note("%saccept=%s", p, a >= 0 ? "fd" : errno_name(errno));
		if (a >= 0) {
			tcp_ping(p, "accepted_echo", a);
			close(a);
		}
		close(ctl);
	}
	/* A socket made here reaches the peer too. */
	struct sockaddr_storage pa;
	socklen_t palen = peer_addr(AF_INET, PEER_ECHO, &pa);
	int n = socket(AF_INET, SOCK_STREAM, 0);
	long r = res(connect(n, (struct sockaddr *)&pa, palen));
	note("%snew_connect=%s", p, res_str(r));
	expect(r == 0, "%snew_connect", p);
	if (r == 0)
		tcp_ping(p, "new_echo", n);
	close(n);
	n = socket(AF_INET, SOCK_DGRAM, 0);
	snprintf(k, sizeof(k), "%snew_udp", p);
	udp_probe(k, n, AF_INET);
	close(n);
}

/* The receiving side of SCM_RIGHTS: tcp, udp and a listener in one message. */
static void scm_receive(const char *p, int us)
{
	int fds[3] = { -1, -1, -1 };
	long n = recv_fds(us, fds);
	note("%sreceived=%s", p, res_str(n));
	if (n != 3)
		setup_fail("SCM_RIGHTS: want 3 fds");
	/* The sender closes its copies, then says go: from here on ours are the only ones. */
	char go;
	if (!(wait_events(us, POLLIN, 3000) & POLLIN) || read(us, &go, 1) != 1)
		setup_fail("SCM_RIGHTS: no go");
	int fl = fcntl(fds[0], F_GETFD);
	note("%sreceived_cloexec=%s", p, fl >= 0 && (fl & FD_CLOEXEC) ? "yes" : "no");
	use_fds(p, fds[0], fds[1], fds[2]);
	/* And back the other way: the TCP socket goes home. */
	char k[48];
	snprintf(k, sizeof(k), "%ssend_back", p);
	expect_res(k, send_fds(us, fds, 1), 3);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
}

/* ---- the exec'd helper ---- */

static const char *self_exe(void)
{
	static char path[4096];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	if (n <= 0)
		setup_fail("readlink /proc/self/exe: %s", errno_name(errno));
	path[n] = '\0';
	return path;
}

/* argv for the helper: conform exec-helper OUTFD PEER4 PEER6 PORT MODE ARG... (args are fd numbers). */
struct helper_argv {
	char *argv[16];
	char strs[16][64];
	int argc;
};

static void helper_argv_init(struct helper_argv *h, const char *mode)
{
	const char *fixed[6];
	char p4[INET_ADDRSTRLEN], p6[INET6_ADDRSTRLEN], port[16], out[16];
	inet_ntop(AF_INET, &conform_ctx.peer4, p4, sizeof(p4));
	inet_ntop(AF_INET6, &conform_ctx.peer6, p6, sizeof(p6));
	snprintf(port, sizeof(port), "%u", conform_ctx.port);
	snprintf(out, sizeof(out), "%d", outcome_fd_get());
	fixed[0] = "exec-helper";
	fixed[1] = out;
	fixed[2] = p4;
	fixed[3] = p6;
	fixed[4] = port;
	fixed[5] = mode;
	h->argc = 0;
	snprintf(h->strs[h->argc], sizeof(h->strs[0]), "%s", "conform");
	h->argv[h->argc] = h->strs[h->argc];
	h->argc++;
	for (int i = 0; i < 6; i++, h->argc++) {
		snprintf(h->strs[h->argc], sizeof(h->strs[0]), "%s", fixed[i]);
		h->argv[h->argc] = h->strs[h->argc];
	}
	h->argv[h->argc] = NULL;
}

static void helper_argv_fd(struct helper_argv *h, int fd)
{
	snprintf(h->strs[h->argc], sizeof(h->strs[0]), "%d", fd);
	h->argv[h->argc] = h->strs[h->argc];
	h->argc++;
	h->argv[h->argc] = NULL;
}

int process_helper_main(int argc, char **argv)
{
	/* argv[0] is "exec-helper". */
	if (argc < 6)
		return 2;
	outcome_open(atoi(argv[1]));
	if (inet_pton(AF_INET, argv[2], &conform_ctx.peer4) != 1 ||
	    inet_pton(AF_INET6, argv[3], &conform_ctx.peer6) != 1)
		setup_fail("helper: bad peer address");
	conform_ctx.port = (uint16_t)atoi(argv[4]);
	const char *mode = argv[5];
	int fd[8];
	int nfd = 0;
	for (int i = 6; i < argc && nfd < 8; i++)
		fd[nfd++] = atoi(argv[i]);
	alarm(10);
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(mode, "use") == 0 && nfd == 2) {
		use_fds("x_", fd[0], fd[1], -1);
	} else if (strcmp(mode, "gone") == 0) {
		for (int i = 0; i < nfd; i++) {
			char k[32];
			snprintf(k, sizeof(k), "x_fd%d", i);
			expect_res(k, res(fcntl(fd[i], F_GETFD)), -EBADF);
		}
	} else if (strcmp(mode, "kept") == 0) {
		for (int i = 0; i < nfd; i++)
			tcp_ping("x_", "kept_echo", fd[i]);
	} else if (strcmp(mode, "scm") == 0 && nfd == 1) {
		scm_receive("x_", fd[0]);
	} else {
		setup_fail("helper: bad mode %s", mode);
	}
	return 0;
}

/* fork + execve of the helper. envp NULL means the current environment. */
static pid_t helper_spawn(struct helper_argv *h, char *const *envp)
{
	const char *exe = self_exe();
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		execve(exe, h->argv, envp ? envp : environ);
		_exit(127);
	}
	return pid;
}

/* ---- the cases ---- */

static void make_pair(int *tcp, int *udp)
{
	*tcp = peer_connect(AF_INET, PEER_ECHO);
	*udp = udp_socket(AF_INET, 0);
	struct sockaddr_storage pa;
	socklen_t len = peer_addr(AF_INET, PEER_UDP_ECHO, &pa);
	if (connect(*udp, (struct sockaddr *)&pa, len) < 0)
		setup_fail("udp connect: %s", errno_name(errno));
}

/* The parent closes its copies first; the child's still work, and the listener goes when the child exits. */
CASE(fork_listener_4)
{
	uint16_t port;
	int lfd = tcp_listen(AF_INET, 0, &port);
	int tcp, udp;
	make_pair(&tcp, &udp);
	int go[2];
	if (pipe(go) < 0)
		setup_fail("pipe");
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(3);
		use_fds("c_", tcp, udp, lfd);
		_exit(0);
	}
	close(go[0]);
	expect_res("close_tcp", res(close(tcp)), 0);
	expect_res("close_udp", res(close(udp)), 0);
	expect_res("close_listener", res(close(lfd)), 0);
	if (write(go[1], "g", 1) != 1)
		setup_fail("pipe write");
	close(go[1]);
	child_status_note("child", pid);
	/* The child held the last reference to the listener: it is gone. */
	int ctl = peer_dial(AF_INET, port);
	note("dial_after=%s", dial_result(ctl));
	close(ctl);
}

/* Prefork: parent and child both block in accept on one listener; two connections come, each takes one. */
CASE(fork_accept_both_4)
{
	uint16_t port;
	int lfd = tcp_listen(AF_INET, 0, &port);
	struct timeval tv = { .tv_sec = 3 };
	expect_res("rcvtimeo", res(setsockopt(lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv))), 0);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		int a = accept(lfd, NULL, NULL);
		if (a < 0)
			_exit(10 + (errno == EAGAIN));
		char buf[8];
		long w = send(a, "ping", 4, MSG_NOSIGNAL);
		long r = w == 4 ? recv_upto(a, buf, 4, 3000) : -1;
		_exit(r == 4 && memcmp(buf, "ping", 4) == 0 ? 0 : 20);
	}
	sleep_ms(200);
	int ctl1 = peer_dial(AF_INET, port);
	int ctl2 = peer_dial(AF_INET, port);
	int a = accept(lfd, NULL, NULL);
	note("parent_accept=%s", a >= 0 ? "fd" : errno_name(errno));
	if (a >= 0) {
		tcp_ping("parent_", "echo", a);
		close(a);
	}
	child_status_note("child", pid);
	note("dial1=%s dial2=%s", dial_result(ctl1), dial_result(ctl2));
	close(ctl1);
	close(ctl2);
	close(lfd);
}

static void exec_env(char *const *envp)
{
	int tcp, udp;
	make_pair(&tcp, &udp);
	struct helper_argv h;
	helper_argv_init(&h, "use");
	helper_argv_fd(&h, tcp);
	helper_argv_fd(&h, udp);
	child_status_note("helper", helper_spawn(&h, envp));
	/* The child's exit closed its copies only. */
	tcp_ping("", "parent_tcp_echo", tcp);
	udp_probe("parent_udp_echo", udp, 0);
	close(tcp);
	close(udp);
}

CASE(exec_env_inherit_4) { exec_env(NULL); }

/* execve with an empty environment: no LD_PRELOAD in it. */
CASE(exec_env_empty_4)
{
	char *const empty[] = { NULL };
	exec_env(empty);
}

/* An environment rebuilt from scratch, as sudo or env -i do. */
CASE(exec_env_rebuilt_4)
{
	char *const rebuilt[] = { "PATH=/usr/bin:/bin", "LANG=C", "HOME=/", NULL };
	exec_env(rebuilt);
}

static pid_t vfork_exec(const char *exe, char *const *argv)
{
	pid_t pid = vfork();
	if (pid == 0) {
		execve(exe, argv, environ);
		_exit(127);
	}
	return pid;
}

CASE(vfork_exec_4)
{
	int tcp, udp;
	make_pair(&tcp, &udp);
	struct helper_argv h;
	helper_argv_init(&h, "use");
	helper_argv_fd(&h, tcp);
	helper_argv_fd(&h, udp);
	const char *exe = self_exe();
	fflush(NULL);
	child_status_note("helper", vfork_exec(exe, h.argv));
	tcp_ping("", "parent_tcp_echo", tcp);
	close(tcp);
	close(udp);
}

/* posix_spawn, with the sockets moved to other numbers by its file actions; once more with an empty environment. */
CASE(posix_spawn_4)
{
	int tcp, udp;
	make_pair(&tcp, &udp);
	const char *exe = self_exe();
	for (int round = 0; round < 2; round++) {
		struct helper_argv h;
		helper_argv_init(&h, "use");
		helper_argv_fd(&h, 40);
		helper_argv_fd(&h, 41);
		posix_spawn_file_actions_t fa;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, tcp, 40);
		posix_spawn_file_actions_adddup2(&fa, udp, 41);
		posix_spawn_file_actions_addclose(&fa, tcp);
		posix_spawn_file_actions_addclose(&fa, udp);
		char *const empty[] = { NULL };
		pid_t pid;
		fflush(NULL);
		int e = posix_spawn(&pid, exe, &fa, NULL, h.argv, round == 0 ? environ : empty);
		posix_spawn_file_actions_destroy(&fa);
		/* The helper notes as it goes: ours wait until it is done. */
		errno = e;
		child_status_note(round == 0 ? "helper" : "helper_empty_env", e == 0 ? pid : -1);
		note("spawn%d=%s", round, e == 0 ? "0" : errno_name(e));
	}
	tcp_ping("", "parent_tcp_echo", tcp);
	close(tcp);
	close(udp);
}

static const char *cloexec_str(int fd)
{
	int fl = fcntl(fd, F_GETFD);
	return fl < 0 ? errno_name(errno) : fl & FD_CLOEXEC ? "cloexec" : "0";
}

/* Close-on-exec, however it was set, closes the socket in the exec'd program only. */
CASE(exec_cloexec_4)
{
	uint16_t port;
	int s1 = tcp_socket(AF_INET, SOCK_CLOEXEC);
	struct sockaddr_storage pa;
	socklen_t palen = peer_addr(AF_INET, PEER_ECHO, &pa);
	if (connect(s1, (struct sockaddr *)&pa, palen) < 0)
		setup_fail("connect: %s", errno_name(errno));
	int plain = peer_connect(AF_INET, PEER_ECHO);
	int s2 = dup3(plain, 50, O_CLOEXEC);
	int s3 = fcntl(plain, F_DUPFD_CLOEXEC, 60);
	int s4 = peer_connect(AF_INET, PEER_ECHO);
	expect_res("setfd", res(fcntl(s4, F_SETFD, FD_CLOEXEC)), 0);
	int lfd = tcp_listen(AF_INET, SOCK_CLOEXEC, &port);
	int s5 = udp_socket(AF_INET, SOCK_CLOEXEC);
	note("flags=%s,%s,%s,%s,%s,%s plain=%s", cloexec_str(s1), cloexec_str(s2), cloexec_str(s3), cloexec_str(s4),
	     cloexec_str(lfd), cloexec_str(s5), cloexec_str(plain));

	struct helper_argv h;
	helper_argv_init(&h, "gone");
	int gone[] = { s1, s2, s3, s4, lfd, s5 };
	for (int i = 0; i < 6; i++)
		helper_argv_fd(&h, gone[i]);
	child_status_note("helper_gone", helper_spawn(&h, NULL));
	helper_argv_init(&h, "kept");
	helper_argv_fd(&h, plain);
	child_status_note("helper_kept", helper_spawn(&h, NULL));
	/* Nothing was closed here. */
	tcp_ping("", "s1_echo", s1);
	tcp_ping("", "s2_echo", s2);
	tcp_ping("", "s4_echo", s4);
	close(s1);
	close(s2);
	close(s3);
	close(s4);
	close(s5);
	close(plain);
	close(lfd);
}

CASE(dup_calls_4)
{
	int fd = peer_connect(AF_INET, PEER_ECHO);
	int d1 = dup(fd);
	int d2 = dup2(fd, 70);
	int d3 = dup3(fd, 71, O_CLOEXEC);
	int d4 = fcntl(fd, F_DUPFD, 72);
	int d5 = fcntl(fd, F_DUPFD_CLOEXEC, 72);
	note("fds=%s,%s,%s,%s,%s", d1 >= 0 ? "fd" : errno_name(errno), d2 == 70 ? "70" : "other",
	     d3 == 71 ? "71" : "other", d4 >= 72 ? "ge72" : "other", d5 > 72 ? "gt72" : "other");
	note("fd_flags=%s,%s,%s,%s,%s,%s", cloexec_str(fd), cloexec_str(d1), cloexec_str(d2), cloexec_str(d3),
	     cloexec_str(d4), cloexec_str(d5));
	long r = res(dup2(fd, fd));
	note("dup2_same=%s", r == fd ? "fd" : res_str(r));
	expect(r == fd, "dup2 onto itself: want the fd");
	expect_res("dup3_same", res(dup3(fd, fd, 0)), -EINVAL);
	expect_res("dup3_badflags", res(dup3(fd, 73, 0x1234)), -EINVAL);
	expect_res("dup_badfd", res(dup(1000)), -EBADF);
	/* One socket under every number: an option set through one is seen through another. */
	int one = 1;
	expect_res("nodelay_set_d3", res(setsockopt(d3, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))), 0);
	expect_res("nodelay_get_fd", sockopt_int(fd, IPPROTO_TCP, TCP_NODELAY), 1);
	note("kind_d4=%s", sock_kind(d4));
	peer_note("", "peer_d5", d5, true);
	expect_res("setfd_d1", res(fcntl(d1, F_SETFD, FD_CLOEXEC)), 0);
	note("after_setfd=%s,%s", cloexec_str(d1), cloexec_str(fd));
	/* Bytes sent through one copy come back through another. */
	expect_res("send_d2", res(send(d2, "dupd", 4, 0)), 4);
	char buf[8];
	expect_res("recv_d4", recv_upto(d4, buf, 4, 3000), 4);
	expect_res("close_fd", res(close(fd)), 0);
	expect_res("close_d1", res(close(d1)), 0);
	tcp_ping("", "d5_echo", d5);
	/* dup2 onto a live socket's number closes that socket first. */
	int udp = udp_socket(AF_INET, 0);
	r = res(dup2(d5, udp));
	note("dup2_over_udp=%s", r == udp ? "newfd" : res_str(r));
	expect(r == udp, "dup2 over a socket: want newfd");
	note("kind_after=%s", sock_kind(udp));
	tcp_ping("", "over_echo", udp);
	close(udp);
	close(d2);
	close(d3);
	close(d4);
	expect_res("close_d5", res(close(d5)), 0);
	expect_res("close_again", res(close(d5)), -EBADF);

	/* UDP through copies. */
	udp = udp_socket(AF_INET, 0);
	int ud = dup(udp);
	struct sockaddr_storage pa;
	socklen_t len = peer_addr(AF_INET, PEER_UDP_ECHO, &pa);
	expect_res("udp_sendto_dup", res(sendto(ud, "udp", 3, 0, (struct sockaddr *)&pa, len)), 3);
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	r = udp_recv(udp, buf, sizeof(buf), &from, &flen, 3000);
	note("udp_recv_orig=%s:%s", res_str(r), r >= 0 ? sa_desc(&from, flen) : "-");
	close(ud);
	udp_probe("udp_after_close_dup", udp, AF_INET);
	close(udp);
}

static void scm_fork(int family)
{
	uint16_t port;
	int tcp = peer_connect(family, PEER_ECHO);
	int udp = udp_socket(family, 0);
	struct sockaddr_storage pa;
	socklen_t len = peer_addr(family, PEER_UDP_ECHO, &pa);
	if (connect(udp, (struct sockaddr *)&pa, len) < 0)
		setup_fail("udp connect: %s", errno_name(errno));
	int lfd = tcp_listen(family, 0, &port);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		setup_fail("socketpair: %s", errno_name(errno));
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		/* The child starts without any of the three: it gets them only by SCM_RIGHTS. */
		close(tcp);
		close(udp);
		close(lfd);
		close(sv[0]);
		scm_receive("c_", sv[1]);
		_exit(0);
	}
	close(sv[1]);
	int fds[3] = { tcp, udp, lfd };
	long sent = send_fds(sv[0], fds, 3);
	/* Ours are closed before the child uses its copies. */
	close(tcp);
	close(udp);
	close(lfd);
	if (write(sv[0], "g", 1) != 1)
		setup_fail("write: %s", errno_name(errno));
	child_status_note("child", pid);
	expect_res("sendmsg", sent, 3);
	int back = -1;
	long n = recv_fds(sv[0], &back);
	note_res("got_back", n);
	if (n == 1) {
		note("back=%s", sock_kind(back));
		peer_note("", "back_peer", back, true);
		tcp_ping("", "back_echo", back);
		close(back);
	}
	close(sv[0]);
}

CASE(scm_rights_fork_4) { scm_fork(AF_INET); }
CASE(scm_rights_fork_6) { scm_fork(AF_INET6); }

CASE(scm_rights_exec_4)
{
	uint16_t port;
	int tcp, udp;
	make_pair(&tcp, &udp);
	int lfd = tcp_listen(AF_INET, 0, &port);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		setup_fail("socketpair: %s", errno_name(errno));
	/* The helper gets only its end of the pair across exec. */
	fcntl(sv[0], F_SETFD, FD_CLOEXEC);
	fcntl(tcp, F_SETFD, FD_CLOEXEC);
	fcntl(udp, F_SETFD, FD_CLOEXEC);
	fcntl(lfd, F_SETFD, FD_CLOEXEC);
	struct helper_argv h;
	helper_argv_init(&h, "scm");
	helper_argv_fd(&h, sv[1]);
	pid_t pid = helper_spawn(&h, NULL);
	close(sv[1]);
	int fds[3] = { tcp, udp, lfd };
	long sent = send_fds(sv[0], fds, 3);
	close(tcp);
	close(udp);
	close(lfd);
	if (write(sv[0], "g", 1) != 1)
		setup_fail("write: %s", errno_name(errno));
	child_status_note("helper", pid);
	expect_res("sendmsg", sent, 3);
	int back = -1;
	long n = recv_fds(sv[0], &back);
	note_res("got_back", n);
	if (n == 1) {
		note("back=%s", sock_kind(back));
		tcp_ping("", "back_echo", back);
		close(back);
	}
	close(sv[0]);
}
