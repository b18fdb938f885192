/*
 * listen.c: listeners.  A listener keeps its stream carrier: every copy of the program's end (a dup, a fork's,
 * one passed by SCM_RIGHTS before listen) is then the same listening socket, as on the kernel.  mwinsd pushes
 * one struct mw_accept with the connection's carrier per sendmsg (a unix stream read never runs past a
 * message with a descriptor attached), and the shim fills the other direction so that the fd is never
 * writable; we never read that filler.
 *
 * A connection is accepted from the kernel only when the carrier has room for it: the rest wait in the
 * kernel's backlog, as they would for a program that does not call accept().  Policy decides on each before
 * the program can see it (enforce.c); one it refuses gets a reset.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ins.h"
#include "mwlib.h"

/* A connection the listener l accepted (fd, from peer): its socket, CONNECTED, with the listener's options
 * and program, and its carrier's program end in *prog; NULL if the group is at its limit or a call failed
 * (fd closed). */
static struct ins_sock *accepted_new(struct ins_sock *l, int fd, const struct sockaddr *peer, socklen_t len,
				     int *prog)
{
	struct sockaddr_storage ss;
	struct ins_sock *c;
	struct stat st;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		close(fd);
		return NULL;
	}
	sock_carrier_tune(sv[1]);
	c = sock_new(l->group, l->domain, fd, sv[1]);
	if (!c) {
		/* The group is at its socket limit: refuse the connection rather than queue it. */
		close(fd);
		close(sv[0]);
		close(sv[1]);
		return NULL;
	}
	if (fcntl(sv[1], F_SETFL, O_NONBLOCK) < 0 || fstat(sv[0], &st) < 0) {
		sock_event(c, SOCK_EV_BROKEN, 0); /* closes fd and sv[1] */
		close(sv[0]);
		return NULL;
	}
	c->prog_ino = st.st_ino;
	c->state = INS_CONNECTED;
	c->linger_set = l->linger_set; /* an accepted socket inherits the listener's options */
	c->proc = proc_ref(l->proc);
	mw_addr_from_sockaddr(&c->peer, peer, len);
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		mw_addr_from_sockaddr(&c->local, (struct sockaddr *)&ss, len);
	*prog = sv[0];
	return c;
}

/* The connection held for the carrier goes to the program now.  Returns false if the carrier is full. */
static bool hand_over(struct ins_sock *l)
{
	ssize_t n = mw_send_fd(l->car, &l->held.msg, sizeof(l->held.msg), l->held.fd, MSG_DONTWAIT);
	struct ins_sock *c = l->held.sock;

	if (n == -EAGAIN)
		return false; /* the program is not accepting: the kernel's backlog holds the rest */
	close(l->held.fd);
	l->held.fd = -1;
	l->held.sock = NULL;
	if (n < 0) {
		sock_event(c, SOCK_EV_BROKEN, 0);
		return true;
	}
	relay_start(c);
	if (enforce_kill_rule(c))
		relay_kill(c);
	return true;
}

/* Hold c (its carrier's program end: prog) until the listener's carrier takes it. */
static void hold(struct ins_sock *l, struct ins_sock *c, int prog)
{
	sock_event(c, SOCK_EV_OPENED, 0);
	l->held.sock = c;
	l->held.fd = prog;
	memset(&l->held.msg, 0, sizeof(l->held.msg));
	l->held.msg.version = MW_PROTO_VERSION;
	l->held.msg.sock_id = c->id;
	l->held.msg.peer = c->peer;
	l->held.msg.local = c->local;
}

/* One connection from the kernel's queue.  Returns false when there is none (or accept failed for good). */
static bool accept_one(struct ins_sock *l)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct ins_sock *c;
	int fd, prog;

	fd = accept4(l->real, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == ECONNABORTED || errno == EINTR)
			return true;
		if (errno != EAGAIN)
			ins_log(0, "accept on socket %#x: %s", l->id, strerror(errno));
		return false;
	}
	c = accepted_new(l, fd, (struct sockaddr *)&ss, len, &prog);
	if (!c)
		return true;
	if (enforce_accept(c) < 0) {
		/* Refused: the peer gets a reset, and the program never sees the connection. */
		sock_event(c, SOCK_EV_REFUSED, 0);
		close(prog);
		return true;
	}
	hold(l, c, prog);
	return true;
}

void listen_pump(struct ins_sock *s)
{
	for (int i = 0; i < 64; i++) {
		if (s->held.sock && !hand_over(s))
			return;
		if (!s->held.sock && !accept_one(s))
			return;
	}
	sock_runq_add(s);
}

static void listen_car_event(struct ins_ev *ev, uint32_t events)
{
	struct ins_sock *s = container_of(ev, struct ins_sock, ev_car);

	if (s->dead)
		return;
	if (events & (EPOLLHUP | EPOLLERR)) {
		sock_event(s, SOCK_EV_PROG_CLOSED, 0); /* the program closed its listener */
		return;
	}
	listen_pump(s);
}

static void listen_real_event(struct ins_ev *ev, uint32_t events)
{
	struct ins_sock *s = container_of(ev, struct ins_sock, ev_real);

	(void)events;
	if (!s->dead)
		listen_pump(s);
}

int listen_start(struct ins_sock *s, int backlog)
{
	/* Accepted connections wait in the carrier only up to about the backlog (an accept record is one small
	 * skb of about 1 KiB truesize, and the kernel doubles the value); the rest stay in the kernel's queue. */
	int room = (backlog < 1 ? 1 : backlog > 4096 ? 4096 : backlog) * 512;
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLET, .data.ptr = &s->ev_car };

	setsockopt(s->car, SOL_SOCKET, SO_SNDBUF, &room, sizeof(room));
	if (epoll_ctl(ins.epfd, EPOLL_CTL_MOD, s->car, &ev) < 0)
		return -errno;
	s->ev_car.fn = listen_car_event;
	s->ev_real.fn = listen_real_event;
	sock_event(s, SOCK_EV_LISTENING, 0);
	ins_log(2, "socket %#x listening", s->id);
	listen_pump(s);
	return 0;
}
