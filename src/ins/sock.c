/*
 * sock.c: the dispatcher (the original's xenevent.c): each control request becomes calls on a real socket.
 * Requests arrive here already framed and versioned by client.c; this file validates their arguments.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ins.h"
#include "mwlib.h"

static void sock_update_local(struct ins_sock *s)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(s->real, (struct sockaddr *)&ss, &len) == 0)
		mw_addr_from_sockaddr(&s->local, (struct sockaddr *)&ss, len);
}

/* A new carrier pair: *ours non-blocking, *prog for the program; records the program end's inode. */
static int carrier_pair(struct ins_sock *s, int type, int *ours, int *prog)
{
	struct stat st;
	int sv[2];

	if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	if (fcntl(sv[1], F_SETFL, O_NONBLOCK) < 0 || fstat(sv[0], &st) < 0) {
		int err = -errno;

		close(sv[0]);
		close(sv[1]);
		return err;
	}
	s->prog_ino = st.st_ino;
	if (type == SOCK_STREAM)
		sock_carrier_tune(sv[1]);
	*prog = sv[0];
	*ours = sv[1];
	return 0;
}

static int cmd_socket(struct ins_call *k)
{
	const struct mw_socket_args *a = &k->q->u.socket;
	bool dgram = a->type == SOCK_DGRAM;
	struct ins_client *c = k->c;
	int real, car = -1, err, *rfd = &k->rfd;
	struct ins_sock *s;

	real = socket(a->domain, a->type | SOCK_NONBLOCK | SOCK_CLOEXEC, dgram ? IPPROTO_UDP : IPPROTO_TCP);
	if (real < 0)
		return -errno;
	s = sock_new(c->group, a->domain, real, -1);
	if (!s) {
		close(real);
		return -EMFILE;
	}
	s->creator = c->pid;
	s->owner = c;
	s->proc = proc_ref(c->proc);
	c->nsocks++;
	s->dgram = dgram;
	err = carrier_pair(s, dgram ? SOCK_SEQPACKET : SOCK_STREAM, &car, rfd);
	if (err) {
		sock_event(s, SOCK_EV_BROKEN, 0);
		return err;
	}
	s->car = car;
	/* EPOLLOUT on the real socket only for a TCP connect's answer; otherwise only while bytes wait. */
	err = dgram ? sock_watch(s, dgram_car_event, dgram_real_event, false)
		    : sock_watch(s, relay_car_event, relay_real_event, true);
	if (err) {
		close(*rfd);
		*rfd = -1;
		sock_event(s, SOCK_EV_BROKEN, 0);
		return err;
	}
	sock_event(s, SOCK_EV_OPENED, 0);
	k->r->sock_id = s->id;
	ins_log(2, "pid %d: socket %#x", (int)c->pid, s->id);
	return 0;
}

static int cmd_bind(struct ins_call *k)
{
	struct ins_sock *s = k->s;
	const struct mw_req *q = k->q;
	struct sockaddr_storage ss;
	struct pol_verdict v;
	int len, err;

	if (q->u.addr.family != s->domain)
		return -EINVAL; /* the other of INET and INET6 (req_args_check refuses the rest) */
	len = mw_addr_to_sockaddr(&q->u.addr, &ss);
	if (len < 0)
		return len;
	/* A bind to a chosen port is a server getting ready: the policy's "listen".  Port 0 is any client's. */
	if (q->u.addr.port && (err = enforce_check(s, POL_OP_LISTEN, &q->u.addr, NULL, &v)) < 0)
		return err;
	if (bind(s->real, (struct sockaddr *)&ss, (socklen_t)len) < 0)
		return -errno;
	s->bound = true;
	sock_update_local(s);
	sock_publish(s);
	return 0;
}

static int cmd_listen(struct ins_call *k)
{
	struct ins_sock *s = k->s;
	int backlog = k->q->u.listen.backlog, err;

	if (s->dgram)
		return -EOPNOTSUPP;
	if (s->state != INS_OPEN && s->state != INS_LISTENING)
		return -EINVAL;
	if (s->state == INS_OPEN) {
		struct pol_verdict v;

		sock_update_local(s);
		err = enforce_check(s, POL_OP_LISTEN, &s->local, NULL, &v);
		if (err)
			return err;
	}
	if (listen(s->real, backlog) < 0)
		return -errno;
	if (s->state == INS_LISTENING)
		return 0; /* listen() again only changes the backlog */
	sock_update_local(s);
	return listen_start(s, backlog);
}

/* UDP: connect() only sets (or, with family 0, dissolves) the default peer, at once. */
static int cmd_connect_dgram(struct ins_sock *s, const struct mw_req *q)
{
	const struct mw_addr *a = &q->u.connect.addr;
	struct sockaddr_storage ss = { .ss_family = AF_UNSPEC };
	int len = sizeof(struct sockaddr);

	if (q->u.connect.flags)
		return -EINVAL;
	if (a->family) {
		if (a->family != s->domain)
			return -EAFNOSUPPORT;
		len = mw_addr_to_sockaddr(a, &ss);
		if (len < 0)
			return len;
	}
	if (a->family) {
		struct pol_verdict v;
		int err = enforce_check(s, POL_OP_SEND, &s->local, a, &v);

		if (err)
			return err;
	}
	if (connect(s->real, (struct sockaddr *)&ss, (socklen_t)len) < 0)
		return -errno;
	s->peer = *a;
	sock_update_local(s);
	sock_event(s, a->family ? SOCK_EV_PEER_SET : SOCK_EV_PEER_UNSET, 0);
	return 0;
}

/* A connect's failure at once.  With an answer, the answer says it.  Without one (MW_REQ_NOREPLY), the program
 * waits on its carrier: the error becomes the socket's pending error /before/ the send buffer comes back and
 * wakes it.  Either way the socket stays usable, as a kernel socket does. */
static int connect_refused(struct ins_sock *s, const struct mw_req *q, int err)
{
	sock_event(s, SOCK_EV_CONNECT_UNDONE, 0);
	if (q->flags & MW_REQ_NOREPLY)
		sock_event(s, SOCK_EV_ERROR, -err);
	relay_connect_undo_fill(s);
	return err;
}

/* A nonblocking connect: keep the program's carrier end (*fdp, taken), whose send buffer relay.c gives back
 * when the connect has its answer, and the size of the filler the shim put in front of the program's bytes. */
static int connect_keep_end(struct ins_sock *s, const struct mw_connect_args *a, int *fdp)
{
	struct stat st;

	/* Only this socket's own carrier end: its sndbuf is the one we will set. */
	if (fstat(*fdp, &st) < 0 || st.st_ino != s->prog_ino)
		return -EINVAL;
	s->tcp.prog_end = *fdp;
	*fdp = -1;
	s->tcp.fill = a->fill;
	s->tcp.sndbuf = a->sndbuf;
	return 0;
}

/* The SYN is out: the connection's flow starts, with what the policy said of it. */
static void connect_started(struct ins_sock *s, const struct pol_verdict *v)
{
	struct ins_flow *f;

	/* The kernel has chosen the local address and port already; the program may ask for them now. */
	sock_update_local(s);
	f = flow_new(s, IPPROTO_TCP, true, &s->local, &s->peer);
	if (f) {
		flow_hist(f, 'C');
		f->tcp_flags = 0x02;
		enforce_flow_start(f, v);
		flow_event(f, "attempt");
	}
}

/* Takes ownership of *fdp (sets it to -1) once the request is valid. */
static int cmd_connect(struct ins_call *k)
{
	const struct mw_req *q = k->q;
	const struct mw_connect_args *a = &q->u.connect;
	bool nonblock = a->flags & MW_CONNECT_NONBLOCK;
	struct ins_sock *s = k->s;
	struct sockaddr_storage ss;
	struct pol_verdict v;
	int len, err, *fdp = &k->fd;

	if (s->dgram)
		return cmd_connect_dgram(s, q);
	if (s->state == INS_CONNECTING)
		return -EALREADY;
	if (s->state == INS_CONNECTED)
		return -EISCONN;
	if (s->state == INS_LISTENING)
		return -EISCONN;
	if (nonblock && (err = connect_keep_end(s, a, fdp)) < 0)
		return err;
	/* The kernel's answer for AF_UNSPEC is disconnect; for a wrong family, EAFNOSUPPORT. */
	if (a->addr.family != s->domain)
		return connect_refused(s, q, -EAFNOSUPPORT);
	len = mw_addr_to_sockaddr(&a->addr, &ss);
	if (len < 0)
		return connect_refused(s, q, len);
	if (s->bound) {
		sock_update_local(s);
	} else {
		/* Unbound: what getsockname would say, without asking. */
		memset(&s->local, 0, sizeof(s->local));
		s->local.family = (uint16_t)s->domain;
	}
	err = enforce_check(s, POL_OP_CONNECT, &s->local, &a->addr, &v);
	if (err)
		return connect_refused(s, q, err); /* as a firewall's REJECT refuses: at once */
	s->peer = a->addr;
	err = connect(s->real, (struct sockaddr *)&ss, (socklen_t)len) < 0 ? -errno : 0;
	ins.n.connects++;
	if (err == -EINPROGRESS || !err)
		connect_started(s, &v);
	if (err == -EINPROGRESS) {
		sock_event(s, SOCK_EV_CONNECTING, 0);
		if (!nonblock) {
			s->tcp.waiter = k->c;
			s->tcp.waiter_req = q->req_id;
			k->later = true; /* answered when relay.c reports its end (life.c) */
			return 0;
		}
		return -EINPROGRESS;
	}
	if (err)
		return connect_refused(s, q, err); /* no route, bad address */
	relay_connected(s);
	return 0;
}

static int cmd_setsockopt(struct ins_call *k)
{
	const struct mw_opt_args *o = &k->q->u.opt;
	struct ins_sock *s = k->s;

	if (setsockopt(s->real, o->level, o->name, o->val, o->len) < 0) {
		int err = errno;

		ins_log(1, "socket %#x: setsockopt level %d name %d: %s", s->id, o->level, o->name, strerror(err));
		return -err;
	}
	if (o->level == SOL_SOCKET && o->name == SO_LINGER)
		s->linger_set = true;
	return 0;
}

static int cmd_getsockopt(struct ins_call *k)
{
	const struct mw_opt_args *o = &k->q->u.opt;
	struct ins_sock *s = k->s;
	struct mw_rsp *r = k->r;
	socklen_t len = o->len;

	if (getsockopt(s->real, o->level, o->name, r->u.opt.val, &len) < 0)
		return -errno;
	r->u.opt.level = o->level;
	r->u.opt.name = o->name;
	r->u.opt.len = len > MW_OPT_MAX ? MW_OPT_MAX : len;
	return 0;
}

static int cmd_shutdown(struct ins_call *k)
{
	struct ins_sock *s = k->s;

	if (s->dgram)
		return shutdown(s->real, SHUT_RD) < 0 ? -errno : 0;
	if (s->state == INS_LISTENING) {
		/* A listener shut for reading stops accepting: the program's blocked accept wakes to EINVAL.  The
		 * record says so /before/ the carrier wakes it: a hang-up with the record still listening means
		 * a dead INS to the shim (relisten.c). */
		sock_event(s, SOCK_EV_LISTEN_SHUT, 0);
		shutdown(s->car, SHUT_RDWR);
		return shutdown(s->real, SHUT_RD) < 0 ? -errno : 0;
	}
	if (s->state != INS_CONNECTED)
		return -ENOTCONN;
	if (shutdown(s->real, SHUT_RD) < 0)
		return -errno;
	/* From here on, bytes from the network are dropped, and the program reads EOF. */
	s->tcp.rd_shut = true;
	s->down.discard = true;
	s->down.eof = true;
	relay_pump(s);
	return 0;
}

/* TCP urgent data, one byte (proto.h, struct mw_oob_args).  The real socket gives the kernel's answers for
 * every state; we keep a sent byte behind the program's earlier bytes, and a received one from when it came. */
static int cmd_oob(struct ins_call *k)
{
	const struct mw_oob_args *o = &k->q->u.oob;
	uint8_t b = (uint8_t)o->byte;
	struct ins_sock *s = k->s;
	struct mw_rsp *r = k->r;
	ssize_t n;

	if (s->dgram)
		return -EOPNOTSUPP;
	if (o->op == MW_OOB_SEND) {
		if (s->state == INS_CONNECTED && !s->zombie && !relay_up_empty(s))
			return -EAGAIN; /* the bytes before it are still waiting for room */
		n = send(s->real, &b, 1, MSG_OOB | MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0)
			return -errno;
		relay_count_up(s, (size_t)n);
		return 0;
	}
	if (s->tcp.oob_have) {
		/* Taken from the real socket when it came (relay.c): read once, as the kernel's is. */
		r->u.oob.byte = s->tcp.oob_byte;
		r->u.oob.got = 1;
		s->tcp.oob_have = o->op == MW_OOB_PEEK;
		return 0;
	}
	n = recv(s->real, &b, 1, MSG_OOB | MSG_DONTWAIT | (o->op == MW_OOB_PEEK ? MSG_PEEK : 0));
	if (n < 0)
		return -errno;
	r->u.oob.byte = b;
	r->u.oob.got = n > 0;
	return 0;
}

static int cmd_ioctl(struct ins_call *k)
{
	const struct mw_req *q = k->q;
	struct ins_sock *s = k->s;
	struct mw_rsp *r = k->r;
	int v;

	if (q->u.ioctl.request == SIOCATMARK) {
		/* The shim says how many of the bytes we passed on it has not read yet (relay.c keeps the mark). */
		uint64_t unread = (uint64_t)q->u.ioctl.value;

		if (unread > s->bytes_in)
			return -EINVAL;
		r->u.ioctl.value = s->tcp.mark_known && s->bytes_in - unread == s->tcp.mark_at;
		return 0;
	}
	if (ioctl(s->real, q->u.ioctl.request, &v) < 0)
		return -errno;
	/* Bytes still in our relay buffer are, to the program, unsent bytes too. */
	r->u.ioctl.value = (int64_t)v + (s->up.len - s->up.off);
	return 0;
}

struct ins_sock *sock_find_by_ino(ino_t ino)
{
	struct list *l;

	for (l = ins.groups.next; l != &ins.groups; l = l->next) {
		struct ins_group *g = container_of(l, struct ins_group, link);

		for (uint32_t i = 1; i < g->nslots; i++) {
			struct ins_sock *s = g->sock[i];

			if (s && s->group == g && s->slot == i && !s->dead && s->prog_ino == ino)
				return s;
		}
	}
	return NULL;
}

/*
 * The errors a kernel UDP send gives at once (no route, broadcast without SO_BROADCAST, a v4-mapped address on
 * a v6-only socket) come from the route lookup, which connect() on a scratch socket with the same options
 * repeats without sending anything.  The shim asks once per new destination; sends themselves stay
 * asynchronous.
 */
static int cmd_dgram_check(struct ins_call *k)
{
	struct ins_sock *s = k->s;
	const struct mw_req *q = k->q;
	struct sockaddr_storage ss;
	int len, scratch, v = 0, err = 0;
	socklen_t vl = sizeof(v);

	if (!s->dgram)
		return -EOPNOTSUPP;
	if (!s->local.port) {
		struct mw_addr any = { .family = (uint16_t)s->domain };

		len = mw_addr_to_sockaddr(&any, &ss);
		if (bind(s->real, (struct sockaddr *)&ss, (socklen_t)len) < 0)
			return -errno;
		sock_update_local(s);
		sock_publish(s);
	}
	len = mw_addr_to_sockaddr(&q->u.addr, &ss);
	if (len < 0)
		return len;
	scratch = socket(s->domain, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
	if (scratch < 0)
		return -errno;
	if (getsockopt(s->real, SOL_SOCKET, SO_BROADCAST, &v, &vl) == 0)
		setsockopt(scratch, SOL_SOCKET, SO_BROADCAST, &v, sizeof(v));
	vl = sizeof(v);
	if (s->domain == AF_INET6 && getsockopt(s->real, IPPROTO_IPV6, IPV6_V6ONLY, &v, &vl) == 0)
		setsockopt(scratch, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof(v));
	if (connect(scratch, (struct sockaddr *)&ss, (socklen_t)len) < 0)
		err = -errno;
	close(scratch);
	/* The kernel would send it: now the policy.  An allowed destination gets its flow here, so the relay
	 * does not ask again when the datagram follows. */
	if (!err && !flow_udp_find(s, &q->u.addr))
		err = enforce_udp_send(s, &q->u.addr);
	return err;
}

/* Which socket, if any, has fd (received from the caller) as its program end; named for the caller's group. */
static int cmd_identify(struct ins_call *k)
{
	struct ins_client *c = k->c;
	struct mw_rsp *r = k->r;
	int fd = k->fd;
	struct ins_sock *s;
	struct stat st;
	uint32_t id;
	int err;

	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
		return -ENOENT;
	s = sock_find_by_ino(st.st_ino);
	if (!s)
		return -ENOENT;
	if (s->group == c->group) {
		id = s->id;
	} else {
		/* Passed across groups (SCM_RIGHTS to another mwrun's program): holding the fd is the right to
		 * use it, so the socket gets a second name in the receiver's group. */
		err = group_alias_add(c->group, s, &id);
		if (err)
			return err;
	}
	r->sock_id = id;
	r->u.ident.kind = s->dgram ? MW_KIND_DGRAM : s->state == INS_LISTENING ? MW_KIND_LISTEN : MW_KIND_STREAM;
	r->u.ident.family = (uint16_t)s->domain;
	return 0;
}

/* A hint that the sender closed an fd naming the socket (proto.h): never answered. */
static int cmd_close(struct ins_call *k)
{
	struct ins_sock *s = group_sock_find(k->c->group, k->q->sock_id);

	struct pollfd p;

	if (!s)
		return 0;
	sock_event(s, SOCK_EV_CLOSE_HINT, 0);
	if (s->dead || s->zombie)
		return 0;
	/* If that was the last fd, the carrier has hung up already: take the hang-up now, in order with the
	 * requests that follow, so that a bind to the port this socket held (a listener made anew) finds it free,
	 * as it would after a kernel socket's close.  Its epoll event, if still to come, finds it handled. */
	p = (struct pollfd){ .fd = s->car, .events = POLLRDHUP };
	if (poll(&p, 1, 0) == 1 && (p.revents & POLLHUP))
		s->ev_car.fn(&s->ev_car, EPOLLHUP);
	return 0;
}

/* Every request sent before it on the connection has run by now: that is the whole answer. */
static int cmd_barrier(struct ins_call *k)
{
	(void)k;
	return 0;
}

/* The handler of each command that decode.c lets through (its rules name the rest). */
static int (*const handlers[])(struct ins_call *k) = {
	[MW_CMD_SOCKET] = cmd_socket,	      [MW_CMD_CONNECT] = cmd_connect,
	[MW_CMD_BIND] = cmd_bind,	      [MW_CMD_LISTEN] = cmd_listen,
	[MW_CMD_BARRIER] = cmd_barrier,	      [MW_CMD_SETSOCKOPT] = cmd_setsockopt,
	[MW_CMD_GETSOCKOPT] = cmd_getsockopt, [MW_CMD_SHUTDOWN] = cmd_shutdown,
	[MW_CMD_IOCTL] = cmd_ioctl,	      [MW_CMD_IDENTIFY] = cmd_identify,
	[MW_CMD_DGRAM_CHECK] = cmd_dgram_check, [MW_CMD_CLOSE] = cmd_close,
	[MW_CMD_OOB] = cmd_oob,
};

/* The socket a request names, in the caller's group, or -EBADF. */
static int call_find_sock(struct ins_call *k)
{
	struct ins_sock *s = group_sock_find(k->c->group, k->q->sock_id);

	/* What the program sent on the carrier before this request goes out before the request acts (a datagram
	 * sent before SO_BROADCAST is cleared, bytes before TCP_CORK is lifted). */
	if (s && !s->zombie && s->state != INS_LISTENING && s->state != INS_CONNECTING)
		sock_pump(s);
	if (!s || s->dead)
		return -EBADF;
	s->calls++;
	if (s->flow)
		s->flow->calls++;
	k->s = s;
	return 0;
}

bool sock_dispatch(struct ins_client *c, const struct mw_req *q, int fd, struct mw_rsp *r, int *rfd)
{
	struct ins_call k = { .c = c, .q = q, .r = r, .fd = fd, .rfd = -1 };
	int ret = req_args_check(q);

	if (ret == -ENOPROTOOPT)
		ins_log(0, "socket %#x: option level %d name %d refused (ENOPROTOOPT): not for programs to use",
			q->sock_id, q->u.opt.level, q->u.opt.name);
	if (!ret && req_rule(q->cmd)->names_sock)
		ret = call_find_sock(&k);
	if (!ret)
		ret = q->cmd < sizeof(handlers) / sizeof(handlers[0]) && handlers[q->cmd] ? handlers[q->cmd](&k)
											    : -ENOTSUP;
	if (k.fd >= 0)
		close(k.fd);
	r->ret = ret;
	*rfd = k.rfd;
	return k.later;
}

void sock_pump(struct ins_sock *s)
{
	if (s->dead)
		return;
	if (s->dgram)
		dgram_pump(s);
	else if (s->state == INS_LISTENING)
		listen_pump(s);
	else
		relay_pump(s);
}

void sock_run_queue(void)
{
	struct list q;

	if (list_empty(&ins.runq))
		return;
	/* Take the whole queue: sockets that still have work re-queue themselves for the next round. */
	q = ins.runq;
	q.next->prev = &q;
	q.prev->next = &q;
	list_init(&ins.runq);
	while (!list_empty(&q)) {
		struct ins_sock *s = container_of(q.next, struct ins_sock, runq);

		list_del(&s->runq);
		if (s->dead)
			continue;
		if (s->dgram)
			dgram_pump(s);
		else if (s->state == INS_LISTENING)
			listen_pump(s);
		else
			relay_resume(s); /* a direction that spent its budget is still ready */
	}
}

void sock_kill(struct ins_flow *f, const char *why)
{
	struct ins_sock *s = enforce_kill(f, why);

	if (s && s->dgram)
		dgram_kill(s);
	else if (s)
		relay_kill(s);
}
