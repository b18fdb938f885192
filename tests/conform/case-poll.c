/*
 * case-poll.c: poll, select and epoll (level- and edge-triggered), with the socket among a pipe and a regular file.
 *
 * The other fds are there so that a readiness layer that handles sockets specially, or that only works when every
 * fd is a socket, shows itself. A regular file is always ready for poll and select, and epoll refuses it (EPERM).
 * Every check first waits until the state is settled (the bytes have arrived, the FIN has come), then looks with a
 * zero timeout, so the outcome does not depend on timing.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <unistd.h>

#include "conform.h"

enum mixed_role { ROLE_SOCK, ROLE_PIPE_R, ROLE_PIPE_W, ROLE_FILE, ROLE_LISTENER, ROLE_N };

static const char *const role_names[ROLE_N] = { "sock", "pipe_r", "pipe_w", "file", "listener" };

struct mixed {
	int fd[ROLE_N];
};

static void mixed_open(struct mixed *m)
{
	int p[2];
	char path[256];
	const char *dir = getenv("TMPDIR");
	snprintf(path, sizeof(path), "%s/conform-XXXXXX", dir && *dir ? dir : P_tmpdir);
	m->fd[ROLE_SOCK] = peer_connect(AF_INET, PEER_ECHO);
	if (pipe(p) < 0)
		setup_fail("pipe: %s", errno_name(errno));
	m->fd[ROLE_PIPE_R] = p[0];
	m->fd[ROLE_PIPE_W] = p[1];
	m->fd[ROLE_FILE] = mkstemp(path);
	if (m->fd[ROLE_FILE] < 0)
		setup_fail("mkstemp: %s", errno_name(errno));
	unlink(path);
	m->fd[ROLE_LISTENER] = -1;
}

static void mixed_close(struct mixed *m)
{
	for (int r = 0; r < ROLE_N; r++)
		if (m->fd[r] >= 0)
			close(m->fd[r]);
}

/* poll() with a zero timeout over the mixed set; notes "key=N:role=EVENTS,...". Returns the socket's revents. */
static unsigned poll_note(const char *key, struct mixed *m)
{
	struct pollfd pf[4] = {
		{ .fd = m->fd[ROLE_SOCK], .events = POLLIN | POLLOUT | POLLRDHUP },
		{ .fd = m->fd[ROLE_PIPE_R], .events = POLLIN },
		{ .fd = m->fd[ROLE_PIPE_W], .events = POLLOUT },
		{ .fd = m->fd[ROLE_FILE], .events = POLLIN | POLLOUT },
	};
	long n = res(poll(pf, 4, 0));
	note("%s=%s:sock=%s,pipe_r=%s,pipe_w=%s,file=%s", key, res_str(n), events_str(pf[0].revents),
	     events_str(pf[1].revents), events_str(pf[2].revents), events_str(pf[3].revents));
	return (unsigned)pf[0].revents;
}

/* Waits for the echo of what was just sent, and for the pipe byte, so that the next look sees a settled state. */
static void mixed_feed(struct mixed *m, const char *data)
{
	size_t n = strlen(data);
	send_all(m->fd[ROLE_SOCK], data, n);
	if (write(m->fd[ROLE_PIPE_W], "x", 1) != 1)
		setup_fail("pipe write: %s", errno_name(errno));
	long q = wait_inq(m->fd[ROLE_SOCK], (long)n, 3000);
	if (q != (long)n)
		setup_fail("echo of %zu bytes: FIONREAD %s", n, res_str(q));
}

static void mixed_drain(struct mixed *m, size_t n)
{
	char buf[64];
	expect_res("recv", res(recv(m->fd[ROLE_SOCK], buf, sizeof(buf), 0)), (long)n);
	expect_res("pipe_read", res(read(m->fd[ROLE_PIPE_R], buf, sizeof(buf))), 1);
}

/*
 * Half-closes our side; the echo peer then closes. Waits until both directions are shut (HUP), not only for the
 * peer's FIN (RDHUP), which the stack may show a moment before it finishes closing.
 */
static void mixed_finish(struct mixed *m)
{
	expect_res("shutdown", res(shutdown(m->fd[ROLE_SOCK], SHUT_WR)), 0);
	int64_t deadline = now_ms() + 3000;
	unsigned ev = 0;
	while (now_ms() < deadline) {
		ev = wait_events(m->fd[ROLE_SOCK], POLLRDHUP, (int)(deadline - now_ms()));
		if (ev & POLLHUP)
			break;
		sleep_ms(2); /* RDHUP alone makes poll return at once: pace the loop */
	}
	if (!(ev & POLLRDHUP))
		setup_fail("no FIN from the echo peer: %s", events_str(ev));
}

CASE(poll_mixed_4)
{
	struct mixed m;
	mixed_open(&m);
	unsigned ev = poll_note("idle", &m);
	expect(ev == POLLOUT, "idle socket: want OUT");
	mixed_feed(&m, "hello");
	ev = poll_note("data", &m);
	expect(ev == (POLLIN | POLLOUT), "socket with data: want IN|OUT");
	mixed_drain(&m, 5);
	ev = poll_note("drained", &m);
	expect(ev == POLLOUT, "drained socket: want OUT");
	mixed_finish(&m);
	ev = poll_note("eof", &m);
	expect((ev & (POLLIN | POLLRDHUP)) == (POLLIN | POLLRDHUP), "socket at EOF: want IN and RDHUP");
	char c;
	expect_res("recv_eof", res(recv(m.fd[ROLE_SOCK], &c, 1, 0)), 0);
	mixed_close(&m);
}

/* select() with a zero timeout; notes "key=N:role=rw,..." ('-' for not ready). Returns "r", "w", "rw" bits. */
static unsigned select_note(const char *key, struct mixed *m)
{
	fd_set rd, wr;
	FD_ZERO(&rd);
	FD_ZERO(&wr);
	int maxfd = -1;
	static const int want_read[] = { ROLE_SOCK, ROLE_PIPE_R, ROLE_FILE };
	static const int want_write[] = { ROLE_SOCK, ROLE_PIPE_W, ROLE_FILE };
	for (size_t i = 0; i < 3; i++) {
		FD_SET(m->fd[want_read[i]], &rd);
		FD_SET(m->fd[want_write[i]], &wr);
		if (m->fd[want_read[i]] > maxfd)
			maxfd = m->fd[want_read[i]];
		if (m->fd[want_write[i]] > maxfd)
			maxfd = m->fd[want_write[i]];
	}
	struct timeval tv = { 0, 0 };
	long n = res(select(maxfd + 1, &rd, &wr, NULL, &tv));
	char s[ROLE_FILE + 1][3];
	for (int r = 0; r <= ROLE_FILE; r++) {
		bool isr = FD_ISSET(m->fd[r], &rd), isw = FD_ISSET(m->fd[r], &wr);
		snprintf(s[r], sizeof(s[r]), "%s%s", isr ? "r" : "", isw ? "w" : "");
		if (!isr && !isw)
			snprintf(s[r], sizeof(s[r]), "-");
	}
	note("%s=%s:sock=%s,pipe_r=%s,pipe_w=%s,file=%s", key, res_str(n), s[ROLE_SOCK], s[ROLE_PIPE_R],
	     s[ROLE_PIPE_W], s[ROLE_FILE]);
	return (FD_ISSET(m->fd[ROLE_SOCK], &rd) ? 1u : 0u) | (FD_ISSET(m->fd[ROLE_SOCK], &wr) ? 2u : 0u);
}

CASE(select_mixed_4)
{
	struct mixed m;
	mixed_open(&m);
	expect(select_note("idle", &m) == 2, "idle socket: want w");
	mixed_feed(&m, "hello");
	expect(select_note("data", &m) == 3, "socket with data: want rw");
	mixed_drain(&m, 5);
	expect(select_note("drained", &m) == 2, "drained socket: want w");
	mixed_finish(&m);
	expect(select_note("eof", &m) == 3, "socket at EOF: want rw");
	mixed_close(&m);
}

static long epoll_add(int ep, struct mixed *m, int role, unsigned events)
{
	struct epoll_event ev = { .events = events, .data.u32 = (uint32_t)role };
	return res(epoll_ctl(ep, EPOLL_CTL_ADD, m->fd[role], &ev));
}

/*
 * epoll_wait() for up to timeout_ms; notes "key=N:role=EVENTS,..." in role order (the ready list's order is the
 * order things became ready, which is timing). Returns the socket's (or listener's) events.
 */
/*
 * Notes one epoll_wait: "KEY=N:role=EVENTS,...". With want nonzero it waits instead for the first wake-up whose
 * events include one of want, for up to timeout_ms, and notes that one: an edge-triggered socket may reach its
 * final state in more than one step, each an edge (through mwinsd a carrier's close wakes the program with
 * HUP|ERR, and frees its send side, OUT, a moment later), and that is timing, not what a case checks.
 */
static unsigned epoll_note_until(const char *key, int ep, unsigned want, int timeout_ms)
{
	struct epoll_event evs[8];
	unsigned by_role[ROLE_N];
	bool seen[ROLE_N];
	int64_t end = now_ms() + timeout_ms;
	long n;
	for (;;) {
		memset(by_role, 0, sizeof(by_role));
		memset(seen, 0, sizeof(seen));
		n = res(epoll_wait(ep, evs, 8, want ? (int)(end > now_ms() ? end - now_ms() : 0) : timeout_ms));
		for (long i = 0; i < n; i++)
			if (evs[i].data.u32 < ROLE_N) {
				by_role[evs[i].data.u32] = evs[i].events;
				seen[evs[i].data.u32] = true;
			}
		if (!want || n < 0 || (by_role[ROLE_SOCK] | by_role[ROLE_LISTENER]) & want || now_ms() >= end)
			break;
	}
	char buf[256];
	size_t len = (size_t)snprintf(buf, sizeof(buf), "%s=%s", key, res_str(n));
	const char *sep = ":";
	for (int r = 0; r < ROLE_N; r++) {
		if (!seen[r])
			continue;
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s=%s", sep, role_names[r], events_str(by_role[r]));
		sep = ",";
	}
	note("%s", buf);
	return by_role[ROLE_SOCK] | by_role[ROLE_LISTENER];
}

static unsigned epoll_note(const char *key, int ep, int timeout_ms)
{
	return epoll_note_until(key, ep, 0, timeout_ms);
}

CASE(epoll_level_4)
{
	struct mixed m;
	mixed_open(&m);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		setup_fail("epoll_create1: %s", errno_name(errno));
	expect_res("add_sock", epoll_add(ep, &m, ROLE_SOCK, EPOLLIN), 0);
	expect_res("add_pipe", epoll_add(ep, &m, ROLE_PIPE_R, EPOLLIN), 0);
	expect_res("add_file", epoll_add(ep, &m, ROLE_FILE, EPOLLIN), -EPERM);
	expect(epoll_note("idle", ep, 0) == 0, "idle: want no socket event");
	mixed_feed(&m, "hello");
	expect(epoll_note("data", ep, 0) == EPOLLIN, "data: want IN");
	expect(epoll_note("data_again", ep, 0) == EPOLLIN, "level-triggered: want IN again");
	char buf[8];
	expect_res("recv_part", res(recv(m.fd[ROLE_SOCK], buf, 2, 0)), 2);
	expect(epoll_note("partial", ep, 0) == EPOLLIN, "partly read: want IN");
	mixed_drain(&m, 3);
	expect(epoll_note("drained", ep, 0) == 0, "drained: want nothing");
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.u32 = ROLE_SOCK };
	expect_res("mod_sock", res(epoll_ctl(ep, EPOLL_CTL_MOD, m.fd[ROLE_SOCK], &ev)), 0);
	expect(epoll_note("mod_out", ep, 0) == EPOLLOUT, "after MOD: want OUT");
	expect_res("del_sock", res(epoll_ctl(ep, EPOLL_CTL_DEL, m.fd[ROLE_SOCK], NULL)), 0);
	expect(epoll_note("deleted", ep, 0) == 0, "after DEL: want nothing");
	close(ep);
	mixed_close(&m);
}

CASE(epoll_edge_4)
{
	struct mixed m;
	mixed_open(&m);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		setup_fail("epoll_create1: %s", errno_name(errno));
	expect_res("add_sock", epoll_add(ep, &m, ROLE_SOCK, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET), 0);
	expect_res("add_pipe", epoll_add(ep, &m, ROLE_PIPE_R, EPOLLIN | EPOLLET), 0);
	expect(epoll_note("initial", ep, 0) == EPOLLOUT, "initial: want OUT once");
	expect(epoll_note("initial_again", ep, 0) == 0, "edge-triggered: want nothing the second time");

	send_all(m.fd[ROLE_SOCK], "hello", 5);
	if (wait_inq(m.fd[ROLE_SOCK], 5, 3000) != 5)
		setup_fail("echo did not come back");
	expect(epoll_note("data", ep, 0) == (EPOLLIN | EPOLLOUT), "data: want IN|OUT");
	expect(epoll_note("data_again", ep, 0) == 0, "edge-triggered: want nothing while unread data waits");
	char buf[16];
	expect_res("recv_part", res(recv(m.fd[ROLE_SOCK], buf, 2, 0)), 2);
	epoll_note("partial", ep, 0);

	send_all(m.fd[ROLE_SOCK], "abc", 3);
	if (wait_inq(m.fd[ROLE_SOCK], 6, 3000) != 6)
		setup_fail("echo did not come back");
	expect(epoll_note("more", ep, 0) == (EPOLLIN | EPOLLOUT), "more data: want a new IN|OUT edge");
	if (write(m.fd[ROLE_PIPE_W], "x", 1) != 1)
		setup_fail("pipe write: %s", errno_name(errno));
	expect(epoll_note("pipe", ep, 0) == 0, "pipe write: want an event for the pipe alone");
	expect_res("recv_rest", res(recv(m.fd[ROLE_SOCK], buf, sizeof(buf), 0)), 6);
	expect_res("recv_empty", res(recv(m.fd[ROLE_SOCK], buf, sizeof(buf), MSG_DONTWAIT)), -EAGAIN);

	/*
	 * Our FIN being acked, the peer's FIN and the close that follows may each wake the socket, and how many of
	 * those edges one epoll_wait sees is timing: wait for an edge that carries RDHUP, then look at the settled
	 * state with poll.
	 */
	expect_res("shutdown", res(shutdown(m.fd[ROLE_SOCK], SHUT_WR)), 0);
	unsigned last = 0;
	int64_t deadline = now_ms() + 3000;
	while (!(last & EPOLLRDHUP) && now_ms() < deadline) {
		struct epoll_event ev[4];
		int n = epoll_wait(ep, ev, 4, 100);
		for (int i = 0; i < n; i++)
			if (ev[i].data.u32 == ROLE_SOCK)
				last = ev[i].events;
	}
	note("eof_edge=%s", last & EPOLLRDHUP ? "RDHUP" : "none");
	expect(last & EPOLLRDHUP, "eof: want an edge carrying RDHUP");
	unsigned ev = wait_events(m.fd[ROLE_SOCK], POLLHUP, 3000);
	note("eof_state=%s", events_str(wait_events(m.fd[ROLE_SOCK], POLLIN | POLLOUT | POLLRDHUP, 0)));
	expect(ev & POLLHUP, "eof: want HUP once both sides are shut");
	close(ep);
	mixed_close(&m);
}

CASE(epoll_listen_4)
{
	struct mixed m = { .fd = { -1, -1, -1, -1, -1 } };
	uint16_t port;
	m.fd[ROLE_LISTENER] = tcp_listen(AF_INET, SOCK_NONBLOCK, &port);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		setup_fail("epoll_create1: %s", errno_name(errno));
	expect_res("add_listener", epoll_add(ep, &m, ROLE_LISTENER, EPOLLIN), 0);
	expect(epoll_note("idle", ep, 0) == 0, "idle listener: want nothing");
	int ctl = peer_dial(AF_INET, port);
	note("dial=%s", dial_result(ctl));
	expect(epoll_note("pending", ep, 3000) == EPOLLIN, "pending: want IN");
	int fd = accept(m.fd[ROLE_LISTENER], NULL, NULL);
	note("accept=%s", fd >= 0 ? "fd" : errno_name(errno));
	expect(epoll_note("drained", ep, 0) == 0, "drained listener: want nothing");
	expect_res("accept_again", res(accept(m.fd[ROLE_LISTENER], NULL, NULL)), -EAGAIN);
	if (fd >= 0) {
		echo_probe(fd);
		close(fd);
	}
	close(ctl);
	close(ep);
	mixed_close(&m);
}

static void epoll_connect(int service)
{
	struct mixed m = { .fd = { -1, -1, -1, -1, -1 } };
	struct sockaddr_storage ss;
	socklen_t len = peer_addr(AF_INET, service, &ss);
	m.fd[ROLE_SOCK] = tcp_socket(AF_INET, SOCK_NONBLOCK);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		setup_fail("epoll_create1: %s", errno_name(errno));
	const char *which = service == PEER_CLOSED ? "refused" : "ok";
	char key[32];
	snprintf(key, sizeof(key), "%s_connect", which);
	expect_res(key, res(connect(m.fd[ROLE_SOCK], (struct sockaddr *)&ss, len)), -EINPROGRESS);
	expect_res("add", epoll_add(ep, &m, ROLE_SOCK, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET), 0);
	snprintf(key, sizeof(key), "%s_done", which);
	unsigned ev = epoll_note_until(key, ep, EPOLLOUT, 3000);
	expect(ev & EPOLLOUT, "%s: want OUT among the events", key);
	snprintf(key, sizeof(key), "%s_again", which);
	expect(epoll_note(key, ep, 0) == 0, "%s: want nothing", key);
	int err = -1;
	socklen_t elen = sizeof(err);
	getsockopt(m.fd[ROLE_SOCK], SOL_SOCKET, SO_ERROR, &err, &elen);
	snprintf(key, sizeof(key), "%s_so_error", which);
	expect_res(key, -err, service == PEER_CLOSED ? -ECONNREFUSED : 0);
	close(ep);
	mixed_close(&m);
}

CASE(epoll_connect_4)
{
	epoll_connect(PEER_ECHO);
	epoll_connect(PEER_CLOSED);
}
