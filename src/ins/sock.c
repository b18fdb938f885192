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

static uint16_t sock_page_state(const struct ins_sock *s)
{
	static const uint16_t map[] = {
		[INS_OPEN] = MW_SS_OPEN,
		[INS_CONNECTING] = MW_SS_CONNECTING,
		[INS_CONNECTED] = MW_SS_CONNECTED,
		[INS_LISTENING] = MW_SS_LISTENING,
	};
	return map[s->state];
}

struct ins_sock *sock_new(struct ins_group *g, int domain, int real, int car)
{
	struct ins_sock *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	if (group_slot_alloc(g, s) < 0) {
		free(s);
		return NULL;
	}
	s->group = g;
	s->domain = domain;
	s->real = real;
	s->car = car;
	s->prog_end = -1;
	s->held_fd = -1;
	s->local.family = (uint16_t)domain;
	s->t_start_ms = ins_now_ms();
	list_init(&s->runq);
	list_init(&s->idlel);
	list_init(&s->zlink);
	list_init(&s->uflows);
	list_init(&s->throttled);
	ins.nsocks++;
	return s;
}

static void sock_report(struct ins_sock *s)
{
	const struct mw_addr *orig = s->creator ? &s->local : &s->peer, *resp = s->creator ? &s->peer : &s->local;
	char o[64], r[64];

	if (!ins.cfg.report || s->state == INS_LISTENING || !s->peer.family)
		return;
	/* Originator first, as connection logs have it; "sent" is what the program sent. */
	fprintf(stderr, "mwinsd: %-6s %-8s tcp %s -> %s  sent %llu  received %llu  %llu ms\n",
		s->dead ? "closed" : "open", s->creator ? "outbound" : "inbound", mw_addr_str(orig, o, sizeof(o)),
		mw_addr_str(resp, r, sizeof(r)), (unsigned long long)s->bytes_out,
		(unsigned long long)s->bytes_in, (unsigned long long)(ins_now_ms() - s->t_start_ms));
}

void sock_report_all(void)
{
	struct list *l;

	for (l = ins.groups.next; l != &ins.groups; l = l->next) {
		struct ins_group *g = container_of(l, struct ins_group, link);

		for (uint32_t i = 1; i < g->nslots; i++) {
			if (g->sock[i] && !g->sock[i]->dead)
				sock_report(g->sock[i]);
		}
	}
}

#define MAX_ZOMBIES 4096

/* Whether getpeername on the real socket would still answer: in every TCP state but CLOSE (a socket whose
 * connection is in TIME_WAIT is CLOSE to its owner) and SYN_SENT.  A program that shut both ways before the
 * peer did still has a connection in FIN_WAIT, and asks about it. */
static bool sock_has_peer(const struct ins_sock *s)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	return getsockopt(s->real, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && ti.tcpi_state != TCP_CLOSE &&
	       ti.tcpi_state != TCP_TIME_WAIT && ti.tcpi_state != TCP_SYN_SENT;
}

/* Once a second: a zombie whose connection has since ended no longer names its peer. */
void sock_zombies_tick(void)
{
	for (struct list *l = ins.zombies.next; l != &ins.zombies; l = l->next) {
		struct ins_sock *s = container_of(l, struct ins_sock, zlink);

		if (s->peered && !s->dead && !sock_has_peer(s)) {
			s->peered = false;
			group_rec_publish(s, MW_SS_CLOSED);
		}
	}
}

void sock_make_zombie(struct ins_sock *s)
{
	if (s->zombie || s->dead)
		return;
	if (s->close_hinted) {
		sock_free_deferred(s); /* the program has already said it closed it */
		return;
	}
	/* The carrier has nothing more to say; the real socket stays for TCP_INFO and friends, unwatched.  Our
	 * carrier end has no other copy, so its close takes it out of the epoll set. */
	epoll_ctl(ins.epfd, EPOLL_CTL_DEL, s->real, NULL);
	close(s->car);
	s->car = -1;
	s->zombie = true;
	idle_sock_gone(s); /* a hang-up queued for idle time is over */
	s->peered = sock_has_peer(s);
	group_rec_publish(s, s->peered ? MW_SS_CONNECTED : MW_SS_CLOSED);
	list_add_tail(&ins.zombies, &s->zlink);
	if (++ins.nzombies > MAX_ZOMBIES)
		sock_free_deferred(container_of(ins.zombies.next, struct ins_sock, zlink));
}

void sock_group_orphaned(struct ins_group *g)
{
	struct list *l, *n;

	for (l = ins.zombies.next; l != &ins.zombies; l = n) {
		struct ins_sock *s = container_of(l, struct ins_sock, zlink);

		n = l->next;
		if (s->group == g)
			sock_free_deferred(s);
	}
	/* A connect in flight holds a copy of the program's carrier end (to give back its send buffer): drop
	 * it, so that the end goes away with the program and the carrier hangs up. */
	for (uint32_t i = 1; i < g->nslots; i++) {
		struct ins_sock *s = g->sock[i];

		if (s && s->group == g && s->prog_end >= 0) {
			close(s->prog_end);
			s->prog_end = -1;
		}
	}
}

/* Mark s for freeing at the end of this loop iteration. */
void sock_free_deferred(struct ins_sock *s)
{
	if (s->dead)
		return;
	s->dead = true;
	if (ins.ndead == ins.dead_cap) {
		uint32_t cap = ins.dead_cap ? ins.dead_cap * 2 : 64;
		struct ins_sock **d = realloc(ins.dead_socks, cap * sizeof(*d));

		if (!d)
			abort(); /* can't keep the socket and can't free it: nothing sane is left */
		ins.dead_socks = d;
		ins.dead_cap = cap;
	}
	ins.dead_socks[ins.ndead++] = s;
	/* Deregister now: a closed fd number may be reused by a new socket in this same iteration.  (A zombie's
	 * real socket is already out of the set.) */
	if (s->real >= 0 && !s->zombie)
		epoll_ctl(ins.epfd, EPOLL_CTL_DEL, s->real, NULL);
	if (s->car >= 0)
		epoll_ctl(ins.epfd, EPOLL_CTL_DEL, s->car, NULL);
}

static void sock_destroy(struct ins_sock *s)
{
	if (s->state == INS_LISTENING)
		ins.listen_gen++;
	sock_report(s);
	flow_sock_gone(s);
	if (!list_empty(&s->throttled))
		list_del(&s->throttled);
	proc_put(s->proc);
	if (s->owner)
		s->owner->nsocks--;
	/* The record outlives the socket, marked closed, until its slot is reused: a program that still holds
	 * the carrier can go on asking getsockname/getpeername. */
	group_rec_publish(s, MW_SS_CLOSED);
	if (s->held) {
		close(s->held_fd);
		sock_destroy(s->held);
	}
	if (!list_empty(&s->runq))
		list_del(&s->runq);
	idle_sock_gone(s);
	if (s->zombie) {
		list_del(&s->zlink);
		ins.nzombies--;
	}
	if (s->real >= 0)
		close(s->real);
	if (s->car >= 0)
		close(s->car);
	if (s->prog_end >= 0)
		close(s->prog_end);
	dir_free(&s->up);
	dir_free(&s->down);
	group_names_free(s);
	ins.nsocks--;
	group_put_if_unused(s->group);
	free(s);
}

void sock_reap(void)
{
	for (uint32_t i = 0; i < ins.ndead; i++)
		sock_destroy(ins.dead_socks[i]);
	ins.ndead = 0;
}

void sock_client_gone(struct ins_client *c)
{
	struct ins_group *g = c->group;

	if (!g)
		return;
	for (uint32_t i = 1; i < g->nslots; i++) {
		if (g->sock[i] && g->sock[i]->waiter == c)
			g->sock[i]->waiter = NULL;
		if (g->sock[i] && g->sock[i]->owner == c)
			g->sock[i]->owner = NULL;
	}
}

void sock_carrier_tune(int car)
{
	/* The default AF_UNIX send buffer (wmem_default, about 200 KB) holds the relay back on the way to the
	 * program: each fill costs an EAGAIN and a wake-up.  4 MB took iperf3's receive ratio from 0.56 to 0.97
	 * (bench/results).  It is a limit, not an allocation (an idle carrier holds nothing), and no more than a
	 * kernel TCP socket lets a program that does not read leave queued (tcp_rmem's maximum is 6 MB). */
	int big = 4 << 20;

	setsockopt(car, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
}

struct ins_sock *sock_accepted(struct ins_sock *l, int fd, const struct sockaddr *peer, socklen_t len, int *prog)
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
		sock_free_deferred(c); /* closes fd and sv[1] */
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
		sock_free_deferred(s);
		return err;
	}
	s->car = car;
	/* EPOLLOUT on the real socket only for a TCP connect's answer; otherwise only while bytes wait. */
	err = ins_ev_add(&s->ev_car, car, relay_watch(s, false), dgram ? dgram_car_event : relay_car_event);
	if (!err)
		err = ins_ev_add(&s->ev_real, real, relay_watch(s, true) | (dgram ? 0 : EPOLLOUT),
				 dgram ? dgram_real_event : relay_real_event);
	s->out_real = !dgram;
	if (err) {
		close(*rfd);
		*rfd = -1;
		sock_free_deferred(s);
		return err;
	}
	group_rec_clear_error(s, MW_SS_OPEN);
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
	group_rec_publish(s, sock_page_state(s));
	return 0;
}

/* A listener keeps its stream carrier: every copy of the program's end (a dup, a fork's, one passed by
 * SCM_RIGHTS before listen) is then the same listening socket, as on the kernel.  mwinsd pushes one struct
 * mw_accept with the connection's carrier per sendmsg, and the shim fills the other direction so that the
 * fd is never writable; we never read that filler. */
static int listener_carrier(struct ins_sock *s, int backlog)
{
	/* Accepted connections wait in the carrier only up to about the backlog (an accept record is one small
	 * skb of about 1 KiB truesize, and the kernel doubles the value); the rest stay in the kernel's queue. */
	int room = (backlog < 1 ? 1 : backlog > 4096 ? 4096 : backlog) * 512;
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLET, .data.ptr = &s->ev_car };

	setsockopt(s->car, SOL_SOCKET, SO_SNDBUF, &room, sizeof(room));
	return epoll_ctl(ins.epfd, EPOLL_CTL_MOD, s->car, &ev) < 0 ? -errno : 0;
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
	err = listener_carrier(s, backlog);
	if (err)
		return err;
	s->state = INS_LISTENING;
	ins.listen_gen++;
	sock_update_local(s);
	group_rec_publish(s, MW_SS_LISTENING);
	ins_log(2, "socket %#x listening", s->id);
	relay_pump(s);
	return 0;
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
	s->state = a->family ? INS_CONNECTED : INS_OPEN;
	sock_update_local(s);
	group_rec_clear_error(s, a->family ? MW_SS_CONNECTED : MW_SS_OPEN);
	return 0;
}

/* A connect's failure at once.  With an answer, the answer says it.  Without one (MW_REQ_NOREPLY), the program
 * waits on its carrier: the error becomes the socket's pending error /before/ the send buffer comes back and
 * wakes it.  Either way the socket stays usable, as a kernel socket does. */
static int connect_refused(struct ins_sock *s, const struct mw_req *q, int err)
{
	memset(&s->peer, 0, sizeof(s->peer));
	if (q->flags & MW_REQ_NOREPLY)
		group_rec_post_error(s, MW_SS_OPEN, -err);
	relay_connect_undo_fill(s);
	return err;
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
	if (nonblock) {
		struct stat st;

		/* Only this socket's own carrier end: its sndbuf is the one we will set. */
		if (fstat(*fdp, &st) < 0 || st.st_ino != s->prog_ino)
			return -EINVAL;
		s->prog_end = *fdp;
		*fdp = -1;
		s->fill = a->fill;
		s->sndbuf = a->sndbuf;
	}
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
	if (err == -EINPROGRESS || !err) {
		struct ins_flow *f;

		/* The kernel has chosen the local address and port already; the program may ask for them now. */
		sock_update_local(s);
		f = flow_new(s, IPPROTO_TCP, true, &s->local, &s->peer);
		if (f) {
			flow_hist(f, 'C');
			f->tcp_flags = 0x02;
			enforce_flow_start(f, &v);
			flow_event(f, "attempt");
		}
	}
	if (err == -EINPROGRESS) {
		s->state = INS_CONNECTING;
		group_rec_clear_error(s, MW_SS_CONNECTING);
		if (!nonblock) {
			s->waiter = k->c;
			s->waiter_req = q->req_id;
			k->later = true; /* relay.c answers when the connect completes */
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
		group_rec_publish(s, MW_SS_CLOSED);
		shutdown(s->car, SHUT_RDWR);
		return shutdown(s->real, SHUT_RD) < 0 ? -errno : 0;
	}
	if (s->state != INS_CONNECTED)
		return -ENOTCONN;
	if (shutdown(s->real, SHUT_RD) < 0)
		return -errno;
	/* From here on, bytes from the network are dropped, and the program reads EOF. */
	s->rd_shut = true;
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
	if (s->oob_have) {
		/* Taken from the real socket when it came (relay.c): read once, as the kernel's is. */
		r->u.oob.byte = s->oob_byte;
		r->u.oob.got = 1;
		s->oob_have = o->op == MW_OOB_PEEK;
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
		r->u.ioctl.value = s->mark_known && s->bytes_in - unread == s->mark_at;
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
		group_rec_publish(s, sock_page_state(s));
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

	if (s && s->zombie)
		sock_free_deferred(s);
	else if (s)
		s->close_hinted = true; /* the hint may overtake the carrier's hang-up */
	if (s && s->prog_end >= 0) {
		/* Our copy of the program's end must not keep it alive: without it the carrier hangs up if this was
		 * the last fd.  (If not, the filler still leaves when the connect is done.) */
		close(s->prog_end);
		s->prog_end = -1;
	}
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
		relay_pump(s);
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
