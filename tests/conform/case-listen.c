/*
 * case-listen.c: listen() on one copy of a socket, seen from the others.
 *
 * On the kernel every copy of a socket (a dup, the copy a child inherits, one passed by SCM_RIGHTS) is the same
 * socket, so listen() on any copy makes every copy the listener, in every process. libuv's IPC passes a server
 * handle and then asks the received fd what it is; prefork servers bind, fork and listen in either order.
 *
 * A forked child's notes start with "c_"; the parent waits for it before noting more, so the line's order is fixed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conform.h"

/* A stream socket bound to an ephemeral port on the wildcard address, not listening yet. */
static int bound_socket(int family, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = (sa_family_t)family;
	int fd = tcp_socket(family, 0);
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		setup_fail("bind: %s", errno_name(errno));
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		setup_fail("getsockname: %s", errno_name(errno));
	*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
	                                : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

/* What any copy of a listener shows: the listener's options and address, no data calls, nothing pending; then one
 * connection from the peer, accepted on this copy. */
static void listener_probe(const char *p, int fd, int family, uint16_t port)
{
	char k[48];
	long v = sockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN);
	note("%sacceptconn=%ld", p, v);
	expect(v == 1, "%sSO_ACCEPTCONN: want 1", p);
	v = sockopt_int(fd, SOL_SOCKET, SO_DOMAIN);
	note("%sdomain=%s", p, v == AF_INET ? "inet" : v == AF_INET6 ? "inet6" : v == AF_UNIX ? "unix" : "other");
	expect(v == family, "%sSO_DOMAIN: want the socket's family", p);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	snprintf(k, sizeof(k), "%sgetsockname", p);
	expect_res(k, res(getsockname(fd, (struct sockaddr *)&ss, &len)), 0);
	uint16_t got = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
	                                       : ((struct sockaddr_in6 *)&ss)->sin6_port);
	note("%ssame_port=%s", p, ss.ss_family == family && got == port ? "yes" : "no");
	unsigned ev = wait_events(fd, POLLIN | POLLOUT, 0);
	note("%sidle=%s", p, events_str(ev));
	expect(ev == 0, "%sidle listener: want 0", p);
	char b;
	snprintf(k, sizeof(k), "%ssend", p);
	expect_res(k, res(send(fd, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT)), -EPIPE);
	snprintf(k, sizeof(k), "%srecv", p);
	expect_res(k, res(recv(fd, &b, 1, MSG_DONTWAIT)), -ENOTCONN);

	int ctl = peer_dial(family, port);
	ev = wait_events(fd, POLLIN | POLLOUT, 3000);
	note("%spending=%s", p, events_str(ev));
	expect(ev == POLLIN, "%sa pending connection: want IN", p);
	int a = accept(fd, NULL, NULL);
	note("%saccept=%s", p, a >= 0 ? "fd" : errno_name(errno));
	note("%sdial=%s", p, dial_result(ctl));
	if (a >= 0)
		echo_probe(a);
	close(a);
	close(ctl);
}

/* listen() on one fd; its dup, made before, is the listener too (and may listen again: only the backlog changes). */
static void listen_dup(int family)
{
	uint16_t port;
	int s = bound_socket(family, &port);
	int d = dup(s);
	if (d < 0)
		setup_fail("dup: %s", errno_name(errno));
	expect_res("listen", res(listen(s, 8)), 0);
	listener_probe("dup_", d, family, port);
	expect_res("listen_dup", res(listen(d, 16)), 0);
	close(d);
	listener_probe("orig_", s, family, port);
	close(s);
}

CASE(listen_dup_4) { listen_dup(AF_INET); }
CASE(listen_dup_6) { listen_dup(AF_INET6); }

/* The child's side: wait for the parent's go. */
static void await_go(int fd)
{
	char go;
	if (!(wait_events(fd, POLLIN, 3000) & POLLIN) || read(fd, &go, 1) != 1)
		setup_fail("no go");
}

/* The parent's side: listen on s, let the child go on (not noted: the child may be noting already), wait for it. */
static void listen_then_go(int s, int fd, pid_t pid)
{
	expect_res("listen", res(listen(s, 8)), 0);
	if (write(fd, "g", 1) != 1)
		setup_fail("go: %s", errno_name(errno));
	child_status_note("child", pid);
}

/* A socketpair to a forked child; the parent gets the child's pid, the child 0. */
static pid_t fork_with_pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		setup_fail("socketpair: %s", errno_name(errno));
	pid_t pid = fork();
	if (pid < 0)
		setup_fail("fork: %s", errno_name(errno));
	close(pid ? sv[1] : sv[0]);
	return pid;
}

/* A child inherits the socket before the parent listens; it waits for the go, then accepts on its copy. */
CASE(listen_after_fork_4)
{
	uint16_t port;
	int s = bound_socket(AF_INET, &port);
	int sv[2];
	pid_t pid = fork_with_pair(sv);
	if (pid == 0) {
		await_go(sv[1]);
		listener_probe("c_", s, AF_INET, port);
		_exit(0);
	}
	listen_then_go(s, sv[0], pid);
	listener_probe("p_", s, AF_INET, port);
	close(sv[0]);
	close(s);
}

/* A copy passed by SCM_RIGHTS before listen(): to another process, which then accepts on it. */
CASE(listen_after_scm_rights_4)
{
	uint16_t port;
	int s = bound_socket(AF_INET, &port);
	int sv[2];
	pid_t pid = fork_with_pair(sv);
	if (pid == 0) {
		int fds[3] = { -1, -1, -1 };
		close(s);
		long n = recv_fds(sv[1], fds);
		if (n != 1)
			setup_fail("SCM_RIGHTS: %s", res_str(n));
		await_go(sv[1]);
		listener_probe("c_", fds[0], AF_INET, port);
		_exit(0);
	}
	expect_res("sent", send_fds(sv[0], &s, 1), 3);
	listen_then_go(s, sv[0], pid);
	close(sv[0]);
	close(s);
}

/* The received copy is the one that listens; the sender's original is then the listener. */
CASE(listen_on_received_4)
{
	uint16_t port;
	int s = bound_socket(AF_INET, &port);
	int sv[2], fds[3] = { -1, -1, -1 };
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		setup_fail("socketpair: %s", errno_name(errno));
	expect_res("sent", send_fds(sv[0], &s, 1), 3);
	long n = recv_fds(sv[1], fds);
	note("received=%s", res_str(n));
	if (n != 1)
		setup_fail("SCM_RIGHTS: want 1 fd");
	expect_res("listen", res(listen(fds[0], 8)), 0);
	listener_probe("orig_", s, AF_INET, port);
	close(fds[0]);
	close(s);
	close(sv[0]);
	close(sv[1]);
}
