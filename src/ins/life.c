/*
 * life.c: a socket's life.  Made here, changed here, freed here: every other file reports what happened to a
 * socket as an event (sock_event), and one table says, for the event and the socket's state, what it becomes,
 * what its page record shows, and what is done.  This is the only file that zombifies or frees a socket,
 * publishes its state or pending error, or answers a waiting connect.
 *
 * A socket is live, then maybe a zombie (both directions over, the carrier closed, the real socket kept so
 * that the program may still ask TCP_INFO, SO_ERROR or getpeername of the fd it holds), then dead: marked,
 * out of the epoll set, and freed at the end of the loop's turn (sock_reap), so that no event handler of
 * this turn is left holding a freed socket.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ins.h"
#include "mwlib.h"

#define MAX_ZOMBIES 4096

/* What the state shows on the page while the socket is live. */
static uint16_t state_shown(enum ins_sock_state st)
{
	static const uint16_t map[] = {
		[INS_OPEN] = MW_SS_OPEN,
		[INS_CONNECTING] = MW_SS_CONNECTING,
		[INS_CONNECTED] = MW_SS_CONNECTED,
		[INS_LISTENING] = MW_SS_LISTENING,
	};
	return map[st];
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
	s->ev_car.fd = s->ev_real.fd = -1;
	s->tcp.prog_end = -1;
	s->held.fd = -1;
	s->local.family = (uint16_t)domain;
	s->shown = MW_SS_OPEN;
	s->t_start_ms = ins_now_ms();
	list_init(&s->runq);
	list_init(&s->idlel);
	list_init(&s->zlink);
	list_init(&s->udp.flows);
	list_init(&s->throttled);
	ins.nsocks++;
	return s;
}

int sock_watch(struct ins_sock *s, void (*car_fn)(struct ins_ev *, uint32_t),
	       void (*real_fn)(struct ins_ev *, uint32_t), bool real_out)
{
	int err = ins_ev_add(&s->ev_car, s->car, sock_watch_events(s, false), car_fn);

	if (!err)
		err = ins_ev_add(&s->ev_real, s->real, sock_watch_events(s, true) | (real_out ? EPOLLOUT : 0),
				 real_fn);
	if (!err)
		s->out_real = real_out;
	return err;
}

void sock_want_out(struct ins_sock *s, bool real, bool on)
{
	bool *cur = real ? &s->out_real : &s->out_car;
	struct ins_ev *ev = real ? &s->ev_real : &s->ev_car;
	struct epoll_event e = { .data.ptr = ev };

	if (*cur == on || s->dead || ev->fd < 0)
		return;
	/* Re-arming an edge-triggered fd reports what is ready now, so no edge is lost in between. */
	e.events = sock_watch_events(s, real) | (on ? EPOLLOUT : 0);
	if (epoll_ctl(ins.epfd, EPOLL_CTL_MOD, ev->fd, &e) == 0)
		*cur = on;
}

void sock_runq_add(struct ins_sock *s)
{
	if (list_empty(&s->runq))
		list_add_tail(&ins.runq, &s->runq);
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

void sock_publish(struct ins_sock *s)
{
	group_rec_publish(s, s->shown);
}

/*
 * The table.  Rows are tried in order; the first whose event matches and whose condition holds is applied:
 * the flow hears of it, the state changes, the page shows the new state (with the pending error kept,
 * posted or cleared), a waiting connect is answered, and the socket becomes a zombie or goes.
 */
enum when { ANY, IF_ZOMBIE, IF_WAITER, IF_CONNECTED };
enum next { SAME, TO_OPEN, TO_CONNECTING, TO_CONNECTED, TO_LISTENING, TO_ZOMBIE, TO_GONE };
enum shown { KEEP, SHOW_STATE, SHOW_CLOSED };
enum errop { ERR_KEEP, ERR_POST, ERR_CLEAR };
enum act {
	ANSWER = 1 << 0,       /* answer the waiting connect: 0, or -err */
	FLOW_UP = 1 << 1,      /* the flow is established */
	FLOW_FAILED = 1 << 2,  /* the flow ends with err */
	RESET = 1 << 3,        /* the peer gets a reset when the real socket closes (linger 0) */
	FLOW_RESET = 1 << 4,   /* ... because the program closed with bytes unread */
	NO_PEER = 1 << 5,      /* the socket names no peer any more */
	EOF_FLAG = 1 << 6,     /* the peer's FIN is real (MW_REC_EOF) */
	HINTED = 1 << 7,       /* the program has closed an fd of it: no need to keep it once finished */
	DROP_PROG_END = 1 << 8, /* let go of our copy of the program's carrier end */
	HAND_BACK = 1 << 11,   /* ... and leave giving its send buffer back to the shim (MW_REC_SNDBUF) */
	LISTEN_GEN = 1 << 9,   /* the registry's list of listeners changes */
	UNPEERED = 1 << 10,    /* a zombie's connection has ended: it stops naming the peer */
};

struct life_row {
	enum sock_ev ev;
	enum when when;
	enum next next;
	enum shown shown;
	enum errop err;
	unsigned acts;
};

static const struct life_row table[] = {
	{ SOCK_EV_OPENED, ANY, SAME, SHOW_STATE, ERR_CLEAR, 0 },
	{ SOCK_EV_CONNECTING, ANY, TO_CONNECTING, SHOW_STATE, ERR_CLEAR, 0 },
	{ SOCK_EV_CONNECTED, ANY, TO_CONNECTED, SHOW_STATE, ERR_CLEAR, FLOW_UP | ANSWER },
	{ SOCK_EV_PEER_SET, ANY, TO_CONNECTED, SHOW_STATE, ERR_CLEAR, 0 },
	{ SOCK_EV_PEER_UNSET, ANY, TO_OPEN, SHOW_STATE, ERR_CLEAR, NO_PEER },
	{ SOCK_EV_CONNECT_UNDONE, ANY, TO_OPEN, KEEP, ERR_KEEP, NO_PEER },
	{ SOCK_EV_LISTENING, ANY, TO_LISTENING, SHOW_STATE, ERR_KEEP, LISTEN_GEN },
	{ SOCK_EV_LISTEN_SHUT, ANY, SAME, SHOW_CLOSED, ERR_KEEP, 0 },
	{ SOCK_EV_ERROR, ANY, SAME, SHOW_STATE, ERR_POST, 0 },
	{ SOCK_EV_NET_EOF, ANY, SAME, SHOW_STATE, ERR_KEEP, EOF_FLAG },
	/* A blocking connect that failed: its answer says so, and the socket may connect again. */
	{ SOCK_EV_NET_FAILED, IF_WAITER, TO_OPEN, SHOW_STATE, ERR_CLEAR, FLOW_FAILED | ANSWER | NO_PEER },
	{ SOCK_EV_NET_FAILED, IF_ZOMBIE, SAME, SHOW_CLOSED, ERR_POST, FLOW_FAILED },
	/* A connection that was up stays a socket after a reset: the program may still set options on it (nginx
	 * lifts TCP_CORK on a keepalive connection the client has just reset) or ask TCP_INFO, and the kernel
	 * would answer.  A failed connect has nothing left to ask about. */
	{ SOCK_EV_NET_FAILED, IF_CONNECTED, TO_ZOMBIE, SHOW_CLOSED, ERR_POST, FLOW_FAILED },
	{ SOCK_EV_NET_FAILED, ANY, TO_GONE, SHOW_CLOSED, ERR_POST, FLOW_FAILED },
	{ SOCK_EV_BOTH_SHUT, ANY, TO_ZOMBIE, KEEP, ERR_KEEP, 0 },
	{ SOCK_EV_PROG_CLOSED, ANY, TO_GONE, KEEP, ERR_KEEP, 0 },
	{ SOCK_EV_PROG_RESET, ANY, TO_GONE, KEEP, ERR_KEEP, RESET | FLOW_RESET },
	{ SOCK_EV_REFUSED, ANY, TO_GONE, KEEP, ERR_KEEP, RESET },
	{ SOCK_EV_BROKEN, ANY, TO_GONE, KEEP, ERR_KEEP, 0 },
	{ SOCK_EV_CLOSE_HINT, IF_ZOMBIE, TO_GONE, KEEP, ERR_KEEP, DROP_PROG_END },
	{ SOCK_EV_CLOSE_HINT, ANY, SAME, KEEP, ERR_KEEP, HINTED | HAND_BACK | DROP_PROG_END },
	{ SOCK_EV_GROUP_GONE, IF_ZOMBIE, TO_GONE, KEEP, ERR_KEEP, DROP_PROG_END },
	{ SOCK_EV_GROUP_GONE, ANY, SAME, KEEP, ERR_KEEP, DROP_PROG_END },
	{ SOCK_EV_PEER_GONE, IF_ZOMBIE, SAME, SHOW_CLOSED, ERR_KEEP, UNPEERED },
	{ SOCK_EV_EVICTED, ANY, TO_GONE, KEEP, ERR_KEEP, 0 },
};

static bool row_applies(const struct life_row *r, const struct ins_sock *s, enum sock_ev ev)
{
	if (r->ev != ev)
		return false;
	switch (r->when) {
	case IF_ZOMBIE:
		return s->zombie;
	case IF_WAITER:
		return s->tcp.waiter != NULL;
	case IF_CONNECTED:
		return s->state == INS_CONNECTED;
	default:
		return true;
	}
}

/* Whether getpeername on the real socket would still answer: in every TCP state but CLOSE (a socket whose
 * connection is in TIME_WAIT is CLOSE to its owner) and SYN_SENT.  A program that shut both ways before the
 * peer did still has a connection in FIN_WAIT, and asks about it. */
static bool has_peer(const struct ins_sock *s)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	return getsockopt(s->real, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && ti.tcpi_state != TCP_CLOSE &&
	       ti.tcpi_state != TCP_TIME_WAIT && ti.tcpi_state != TCP_SYN_SENT;
}

/* Mark s for freeing at the end of this loop iteration. */
static void gone_later(struct ins_sock *s)
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
	 * real socket is already out of the set.)  The real socket closes now too, not with the rest: its port
	 * is free for the next request of this turn, as a kernel socket's is once close() returns. */
	if (s->real >= 0 && !s->zombie)
		epoll_ctl(ins.epfd, EPOLL_CTL_DEL, s->real, NULL);
	if (s->car >= 0)
		epoll_ctl(ins.epfd, EPOLL_CTL_DEL, s->car, NULL);
	if (s->real >= 0)
		close(s->real);
	s->real = -1;
}

/* Both ways are over: keep the real socket for the program's last questions, unwatched.  Our carrier end
 * has no other copy, so its close takes it out of the epoll set.  Returns false if s went instead. */
static bool zombie_enter(struct ins_sock *s)
{
	if (s->close_hinted) {
		gone_later(s); /* the program has already said it closed it */
		return false;
	}
	epoll_ctl(ins.epfd, EPOLL_CTL_DEL, s->real, NULL);
	close(s->car);
	s->car = -1;
	s->zombie = true;
	dir_free(&s->down); /* a zombie keeps no buffer or pipe */
	idle_sock_gone(s);  /* a hang-up queued for idle time is over */
	s->peered = has_peer(s);
	list_add_tail(&ins.zombies, &s->zlink);
	if (++ins.nzombies > MAX_ZOMBIES)
		sock_event(container_of(ins.zombies.next, struct ins_sock, zlink), SOCK_EV_EVICTED, 0);
	return true;
}

static void flow_acts(struct ins_sock *s, unsigned acts, int err)
{
	if (acts & FLOW_UP)
		flow_established(s);
	if (acts & FLOW_FAILED)
		flow_failed(s, err);
	if (acts & FLOW_RESET)
		flow_prog_reset(s);
}

static void answer_waiter(struct ins_sock *s, int ret)
{
	struct mw_rsp r = { .version = MW_PROTO_VERSION, .cmd = MW_CMD_CONNECT, .req_id = s->tcp.waiter_req,
			    .sock_id = s->id, .ret = ret };

	client_respond(s->tcp.waiter, &r, -1);
	s->tcp.waiter = NULL;
}

/* What changes on the socket itself, before anything is shown. */
static void socket_acts(struct ins_sock *s, unsigned acts)
{
	if (acts & RESET) {
		struct linger lg = { 1, 0 };

		setsockopt(s->real, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	if (acts & NO_PEER)
		memset(&s->peer, 0, sizeof(s->peer));
	if (acts & EOF_FLAG)
		s->rec_flags |= MW_REC_EOF;
	if (acts & HINTED)
		s->close_hinted = true; /* the hint may overtake the carrier's hang-up */
	if (acts & UNPEERED)
		s->peered = false;
	if (acts & LISTEN_GEN)
		ins.listen_gen++;
	if ((acts & DROP_PROG_END) && s->tcp.prog_end >= 0) {
		/* Our copy of the program's end must not keep it alive: without it the carrier hangs up if this was
		 * the last fd.  If it was not, the filler still leaves when the connect is done, and the copy left
		 * gets its send buffer back from the shim; giving it back from here now would let the program write
		 * ahead of the filler. */
		if ((acts & HAND_BACK) && s->state == INS_CONNECTING)
			s->rec_flags |= MW_REC_SNDBUF;
		close(s->tcp.prog_end);
		s->tcp.prog_end = -1;
	}
}

static void show(struct ins_sock *s, const struct life_row *r, int err)
{
	uint16_t st = r->shown == SHOW_CLOSED ? MW_SS_CLOSED : state_shown(s->state);

	if (r->shown == KEEP)
		return;
	s->shown = st;
	if (r->err == ERR_POST)
		group_rec_post_error(s, st, err);
	else if (r->err == ERR_CLEAR)
		group_rec_clear_error(s, st);
	else
		group_rec_publish(s, st);
}

void sock_event(struct ins_sock *s, enum sock_ev ev, int err)
{
	static const enum ins_sock_state to[] = {
		[TO_OPEN] = INS_OPEN, [TO_CONNECTING] = INS_CONNECTING,
		[TO_CONNECTED] = INS_CONNECTED, [TO_LISTENING] = INS_LISTENING,
	};
	const struct life_row *r = NULL;

	if (s->dead)
		return;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]) && !r; i++)
		if (row_applies(&table[i], s, ev))
			r = &table[i];
	if (!r)
		return;
	flow_acts(s, r->acts, err);
	socket_acts(s, r->acts);
	if (r->next >= TO_OPEN && r->next <= TO_LISTENING)
		s->state = to[r->next];
	show(s, r, err);
	if ((r->acts & ANSWER) && s->tcp.waiter)
		answer_waiter(s, ev == SOCK_EV_CONNECTED ? 0 : -err);
	if (r->next == TO_ZOMBIE && !s->zombie && zombie_enter(s)) {
		/* A zombie whose TCP connection still names a peer shows CONNECTED until the tick sees it end. */
		s->shown = s->peered && r->shown != SHOW_CLOSED ? MW_SS_CONNECTED : MW_SS_CLOSED;
		group_rec_publish(s, s->shown);
	} else if (r->next == TO_GONE) {
		gone_later(s);
	}
}

/* Once a second: a zombie whose connection has since ended no longer names its peer. */
void sock_zombies_tick(void)
{
	for (struct list *l = ins.zombies.next; l != &ins.zombies; l = l->next) {
		struct ins_sock *s = container_of(l, struct ins_sock, zlink);

		if (s->peered && !s->dead && !has_peer(s))
			sock_event(s, SOCK_EV_PEER_GONE, 0);
	}
}

void sock_group_orphaned(struct ins_group *g)
{
	for (uint32_t i = 1; i < g->nslots; i++) {
		struct ins_sock *s = g->sock[i];

		/* A connect in flight holds a copy of the program's carrier end (to give back its send buffer):
		 * dropping it lets the end go away with the program, and the carrier hang up. */
		if (s && s->group == g && s->slot == i)
			sock_event(s, SOCK_EV_GROUP_GONE, 0);
	}
}

void sock_client_gone(struct ins_client *c)
{
	struct ins_group *g = c->group;

	if (!g)
		return;
	for (uint32_t i = 1; i < g->nslots; i++) {
		if (g->sock[i] && g->sock[i]->tcp.waiter == c)
			g->sock[i]->tcp.waiter = NULL;
		if (g->sock[i] && g->sock[i]->owner == c)
			g->sock[i]->owner = NULL;
	}
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
	if (s->held.sock) {
		close(s->held.fd);
		sock_destroy(s->held.sock);
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
	if (s->tcp.prog_end >= 0)
		close(s->tcp.prog_end);
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
