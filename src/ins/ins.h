/*
 * ins.h: mwinsd's private header.  mwinsd is the isolated network stack: it holds the real sockets of every
 * protected process, executes their control requests, and relays bytes between each real socket and the
 * carrier (an AF_UNIX socketpair) whose other end the program holds as its socket.
 *
 * Objects and who owns whom:
 *   struct ins_group   every process of one network namespace (one mwrun tree); owns the shared state page
 *                      and names sockets by slot.  Lives while it has clients or sockets.
 *   struct ins_client  one control connection (one process).  Borrowed by a socket only while that socket
 *                      owes it a connect response.
 *   struct ins_sock    one program socket: the real socket and the carrier end.  Lives until the carrier is
 *                      gone from the program's side (last close) or the connection has ended both ways.
 *
 * Everything runs on one thread, in one epoll loop.  No call blocks: every fd is non-blocking and a request
 * whose answer needs the network (connect) is answered when the network answers.
 *
 * Files, in dependency order: each calls only files on lines below its own.
 *
 *   main.c                      options, start-up, the loop
 *   client.c  ctl.c             a program's control connection; the operators' control API
 *   sock.c                      the commands (one handler per request), and pumping a socket by its kind
 *   listen.c                    listeners: accepting, policy on each connection, handing it over
 *   relay.c   dgram.c           moving bytes (TCP, UDP), and reporting what the network says as events
 *   enforce.c                   policy decisions, kill marks, throttles (decides; the callers act)
 *   life.c                      a socket's life: the one table of (state, event) -> what follows
 *   flow.c  events.c  ipfix.c  metrics.c  conn.c      telemetry and the operators' line servers
 *   group.c  proc.c  respond.c  pipe.c  idle.c  decode.c  policy.c  registry.c  sandbox.c  wait.c
 *   base.c                      the daemon's state, the clocks, the log, loop registration
 *
 * Functions return 0 or a negative errno unless they say otherwise.
 */
#ifndef MW_INS_H
#define MW_INS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <jansson.h>

#include "mwcomms/page.h"
#include "mwcomms/proto.h"
#include "policy.h"

/* One epoll registration.  data.ptr points at it; fn is called with the epoll events. */
struct ins_ev {
	int fd;
	void (*fn)(struct ins_ev *ev, uint32_t events);
};

struct list {
	struct list *prev, *next;
};

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

static inline void list_init(struct list *l) { l->prev = l->next = l; }
static inline bool list_empty(const struct list *l) { return l->next == l; }
static inline void list_add_tail(struct list *l, struct list *n)
{
	n->prev = l->prev;
	n->next = l;
	l->prev->next = n;
	l->prev = n;
}
static inline void list_del(struct list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	list_init(n);
}

struct ins_group {
	struct list link;       /* in ins.groups */
	uint64_t netns;         /* inode of the clients' network namespace */
	int memfd;              /* the shared state page; sealed against writes through new mappings */
	struct mw_sock_rec *rec;
	uint32_t *seq;          /* private copy of each record's seqlock: we never read back shared memory */
	uint16_t *gen;          /* generation of each slot, for ids */
	uint32_t *ids;          /* the id each slot names now (an alias slot names another group's socket) */
	uint32_t *errseq;       /* private copy of each record's error_seq */
	struct ins_sock **sock; /* by slot */
	uint32_t *freeq;        /* FIFO of free slots: a freed record stays readable as long as possible */
	uint32_t free_head, free_count;
	uint32_t nslots;
	uint32_t nclients, nsocks;
	uint32_t max_socks;     /* this group's share of mwinsd's descriptors (see ins.max_socks) */
};

/* A token bucket: rate bytes per second, at most a tenth of a second's worth saved up. */
struct ins_bucket {
	uint64_t rate;   /* 0: no limit */
	uint64_t tokens;
	uint64_t last_ms;
};

/* One process as mwinsd saw it when it attached: read from the kernel (SO_PEERCRED, /proc), never taken from
 * what the process says.  Shared by its sockets and flows, which may outlive its control connection. */
struct ins_proc {
	uint32_t refs;
	pid_t pid, ppid;
	pid_t vpid;      /* its pid in its own PID namespace (mwrun gives the command one): what it calls itself */
	uid_t uid;
	gid_t gid;
	char exe[256];
	char comm[20];
	char *argv;      /* argc strings, each NUL-terminated, back to back */
	uint32_t argc;
	struct ins_bucket bucket; /* throttle over all its flows (per=program) */
};

struct ins_flow;

/* A response waiting for room in the client's socket. */
struct ins_rsp_q {
	struct mw_rsp rsp;
	int fd;
};

struct ins_client {
	struct ins_ev ev;
	struct list link;       /* in ins.clients */
	pid_t pid;
	uid_t uid;
	gid_t gid;
	int pidfd;              /* SO_PEERPIDFD, -1 if the kernel has none: pins the pid against reuse */
	struct ins_group *group; /* NULL until HELLO */
	uint64_t netns;         /* its network namespace, learnt when it connected */
	char exe[256];
	struct ins_proc *proc;  /* its identity, from HELLO on */
	struct ins_rsp_q *q;    /* ring of responses the socket had no room for */
	uint32_t q_head, q_len, q_cap;
	bool dead;              /* protocol violation or hangup: freed at the end of the loop iteration */
	uint32_t nsocks;        /* sockets it made that are still open */
	uint32_t nsocks_written; /* what the registry last said, +1 (0: never written) */
};

enum ins_sock_state {
	INS_OPEN,
	INS_CONNECTING,
	INS_CONNECTED,
	INS_LISTENING,
};

/* One direction of a relay: bytes read from src that dst had no room for yet, copied (buf) or, while the
 * direction moves bulk, spliced (pipe: borrowed from relay.c's pool only while bytes are in it). */
struct ins_pipe;
struct ins_dir {
	char *buf;
	uint32_t off, len;
	struct ins_pipe *pipe;
	uint32_t piped; /* bytes in pipe */
	bool bulk;    /* reads fill whole chunks: splice instead of copying (relay.c) */
	bool eof;     /* src said EOF (or we gave up on it) */
	bool shut;    /* and dst was shut for writing after the last byte */
	bool discard; /* dst is gone: read src and drop */
	bool ready;   /* src may have bytes: an edge came and no read since came back short (relay.c) */
	bool rdhup;   /* src reported its end (EPOLLRDHUP): read on to EOF, short reads or not */
	bool urg;     /* src reported TCP urgent data (EPOLLPRI): copy, and read to EAGAIN (relay.c) */
};

/* A socket: the core every kind has, then one part per kind (a TCP connection, a listener, UDP). */
struct ins_sock {
	struct ins_group *group;
	uint32_t id, slot;
	int domain;
	bool dgram;                /* UDP: a SOCK_SEQPACKET carrier of struct mw_dgram messages */
	enum ins_sock_state state;
	int real;                  /* the real socket, in the INS's namespace */
	int car;                   /* our end of the carrier: SOCK_STREAM (TCP, listening or not) or SEQPACKET */
	struct ins_ev ev_real, ev_car;
	bool out_real, out_car;    /* EPOLLOUT is wanted: only while bytes wait for room there */
	pid_t creator;             /* pid of the client that made it (0 when accepted) */
	struct ins_client *owner;  /* that client while it is connected, for its socket count */
	ino_t prog_ino;            /* inode of the program's carrier end: holding that fd names this socket */
	struct {
		struct ins_group *group;
		uint32_t slot;
	} alias[4];                /* names in other groups (the socket was passed there with SCM_RIGHTS) */
	uint32_t nalias;
	struct mw_addr local, peer;
	uint64_t bytes_in, bytes_out;
	uint64_t t_start_ms;
	bool bound;                /* bind() succeeded: the local address is the program's choice */
	bool linger_set;           /* SO_LINGER was set (or inherited from the listener): worth asking at EOF */
	struct ins_dir up;         /* program -> network (UDP: one datagram the real socket had no room for) */
	struct ins_dir down;       /* network -> program */
	bool car_hup;              /* the program's side is finished (last close, or both directions shut) */

	/* its life (life.c) */
	uint16_t shown;            /* the state its record shows (enum mw_sock_state) */
	uint16_t rec_flags;        /* enum mw_rec_flags, published with the record */
	bool zombie;
	bool dead;
	bool close_hinted;         /* a MW_CMD_CLOSE came for it: no need to keep it once finished */
	bool peered;               /* a zombie whose real socket still names a peer (tick rechecks) */
	struct list zlink;         /* in ins.zombies while finished but maybe still held by the program */

	/* telemetry and scheduling */
	struct ins_proc *proc;     /* the program it belongs to (an accepted socket: the listener's) */
	struct ins_flow *flow;     /* a TCP connection's flow */
	uint32_t calls;            /* control calls before the flow existed (bind, setsockopt...) */
	struct list throttled;     /* in ins.throttled while a bucket holds it back */
	struct list runq;          /* in ins.runq while it has work left over from its budget */
	struct list idlel;         /* in idle.c's queue while its program's close waits to be handled */
	uint64_t idle_ns;          /* since when */

	/* a TCP connection (sock.c's connect, relay.c) */
	struct {
		struct ins_client *waiter; /* blocking connect: who gets the response; NULL otherwise */
		uint32_t waiter_req;
		int prog_end;              /* nonblocking connect: the program's carrier end, to restore its sndbuf */
		uint32_t sndbuf;
		uint32_t fill;             /* filler bytes still to discard from the carrier */
		bool rd_shut;              /* the program shut it for reading: what it drops is its choice */
		/* urgent data (relay.c, cmd_oob): the byte, taken from the real socket before our reads step over
		 * its mark (which drops it), and where the mark is among the bytes passed to the program */
		bool oob_have, mark_known;
		uint8_t oob_byte;
		uint64_t mark_at;
	} tcp;
	/* a listener (listen.c): a connection accepted that the carrier had no room for yet */
	struct {
		struct ins_sock *sock;
		int fd;
		struct mw_accept msg;
	} held;
	/* UDP (dgram.c) */
	struct {
		struct mw_addr up_dst;     /* the destination of the datagram waiting in up */
		uint64_t drops;            /* datagrams dropped because the program did not read them in time */
		struct list flows;         /* one flow per remote address */
		uint32_t nflows;
	} udp;
};

/* One connection (TCP) or one socket's traffic with one remote address (UDP), as docs/telemetry.md describes
 * it.  "orig" is the side that started it: the program for an outbound flow, the peer for an inbound one. */
struct ins_flow {
	struct list link;          /* in ins.flows */
	struct list slink;         /* UDP: in its socket's uflows */
	struct ins_sock *sock;     /* NULL once the socket is gone (the flow ends with it) */
	struct ins_proc *proc;     /* a reference */
	char uid[20];
	char community_id[32];
	uint8_t proto;             /* IPPROTO_TCP, IPPROTO_UDP */
	bool outbound;
	struct mw_addr orig, resp;
	uint64_t start_ms, last_ms, update_ms, ipfix_ms;
	uint64_t orig_bytes, resp_bytes, orig_ops, resp_ops;
	uint64_t x_bytes, x_rbytes, x_ops, x_rops; /* what IPFIX has already reported */
	uint32_t calls;
	char history[24];
	uint8_t hlen;
	bool established, fin_orig, fin_resp, rst_orig, rst_resp, killed;
	uint16_t tcp_flags;
	uint8_t action;            /* enum pol_action: allow, deny or kill */
	bool monitor;
	char rule[48];
	char log_rule[48];         /* a log rule that matched it, "" if none */
	struct ins_bucket bucket;  /* per=flow throttle */
};

struct ins_cfg {
	char registry[256];
	char id[64];
	int ready_fd;
	bool report;
	int verbose;
	uint32_t nslots;
	char policy[256];       /* --policy FILE, "" for none */
	char event_log[256];    /* --event-log FILE */
	uint64_t event_log_size;
	uint32_t event_log_keep;
	char ipfix[128];        /* --ipfix HOST:PORT */
	uint32_t ipfix_domain, ipfix_pen;
	char metrics[128];      /* --metrics ADDR:PORT */
	uint32_t spin_us;       /* --spin-us: the longest poll before sleeping (wait.c) */
};

#define INS_SPIN_US_DEFAULT 50

struct ins {
	struct ins_cfg cfg;
	int epfd;
	struct ins_ev ev_listen, ev_timer, ev_signal;
	char dir[512];      /* registry directory of this instance */
	char sockpath[512];
	struct list groups, clients, runq, zombies;
	uint32_t nzombies;
	struct ins_sock **dead_socks;
	uint32_t ndead, dead_cap;
	uint64_t heartbeat;
	uint64_t listen_gen; /* bumped when a socket starts or stops listening: registry.c rewrites the list */
	uint64_t bytes_in, bytes_out, nsocks;
	uint32_t nclients;
	/* Descriptor budget (main.c), from RLIMIT_NOFILE less 64 and the relay's pipes: a client costs two fds,
	 * a socket two; there may be a 32nd as many clients as fds, and the rest go to sockets.  One group may take all sockets but a reserve (256, or an
	 * eighth), one namespace half of the client connections, so that no program can starve the others. */
	uint32_t max_socks, max_clients;
	bool quit;

	/* telemetry and policy */
	struct list flows, throttled;
	uint32_t nflows;
	uint64_t flows_total, events_seq;
	struct policy *pol_file, *pol_rt;
	struct ipfix_exporter *ipfix;
	struct ins_ev ev_throttle;
	bool throttle_armed;
	struct ins_counters {
		uint64_t flows_ended, denied, killed, throttled_ms;
		uint64_t events, events_dropped;
		uint64_t policy_loads, policy_errors, actions;
		uint64_t connects, accepts;
	} n;
};

extern struct ins ins;

/* base.c: what every file uses (main.c runs the loop).  Register fd with the loop: fn(ev, events) runs for
 * each event.  0 or -errno. */
int ins_ev_add(struct ins_ev *ev, int fd, uint32_t events, void (*fn)(struct ins_ev *, uint32_t));
/* Milliseconds on CLOCK_MONOTONIC: every duration, timer and token bucket, so that a step of the wall clock
 * neither freezes a throttled flow nor ends an idle one early. */
uint64_t ins_now_ms(void);
/* A time of ins_now_ms's as wall-clock milliseconds since the epoch, for what people and collectors read. */
uint64_t ins_wall_ms(uint64_t now_ms);
void ins_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* respond.c: a client's answers, in order; a client that does not read them is dropped. */
void client_respond(struct ins_client *c, const struct mw_rsp *r, int fd);
/* c's socket has room: send what is queued (and stop asking for EPOLLOUT once it is all out). */
void client_writable(struct ins_client *c);
/* Stop serving c (why goes to the log); it is freed at the end of the loop's turn (client_reap). */
void client_kill(struct ins_client *c, const char *why);

/* client.c */
int client_listen_init(void);
/* Execute a checked request (fd: the descriptor that came with it, or -1; ours from here) and answer it. */
void client_exec(struct ins_client *c, const struct mw_req *q, int fd);

/* idle.c: requests that may wait (MW_REQ_IDLE) until the loop has nothing else to do.  It runs what waited
 * with the two functions main.c gives it (client_exec and relay_pump), and knows no other file. */
void idle_init(void (*run_request)(struct ins_client *c, const struct mw_req *q, int fd),
	       void (*run_close)(struct ins_sock *s));
/* Queue q for later; false if the queue is full (then execute it now). */
bool idle_defer(struct ins_client *c, const struct mw_req *q);
/* c is going: its queued requests are dropped (nobody is left to answer). */
void idle_client_gone(struct ins_client *c);
/* The program has closed s's carrier with nothing unread: its close (FIN, freeing) may wait too.  A socket
 * freed meanwhile leaves the queue (sock.c calls idle_sock_gone). */
void idle_sock(struct ins_sock *s);
void idle_sock_gone(struct ins_sock *s);
bool idle_pending(void);
/* Execute one queued request if the loop found nothing to do (idle), or if the oldest has waited too long. */
void idle_run(bool idle);
void client_reap(void);

/* group.c */
struct ins_group *group_get(uint64_t netns, uint32_t nslots); /* NULL on failure (logged) */
void group_put_if_unused(struct ins_group *g);
int group_slot_alloc(struct ins_group *g, struct ins_sock *s); /* -EMFILE when full; sets s->slot, s->id */
struct ins_sock *group_sock_find(struct ins_group *g, uint32_t id); /* NULL if not a live socket */
/* Give s a name in g (not its own group).  Returns 0 with *id, -EMFILE if g or s has no room. */
int group_alias_add(struct ins_group *g, struct ins_sock *s, uint32_t *id);
/* Free every name s has (its own slot last). */
void group_names_free(struct ins_sock *s);
/* Publish s's fields and state to its records (seqlock; its own and its aliases').  The pending error the
 * program will read next: left as it is, posted anew (err > 0, a new error_seq: reported once more), or
 * cleared. */
void group_rec_publish(struct ins_sock *s, uint16_t state);
void group_rec_post_error(struct ins_sock *s, uint16_t state, int err);
void group_rec_clear_error(struct ins_sock *s, uint16_t state);

/* life.c: a socket's life.  Only life.c makes a socket a zombie, frees it, changes what its record shows, or
 * answers a waiting connect: the other files report events, and life.c's table decides (docs/design.md). */
enum sock_ev {
	SOCK_EV_OPENED,         /* made (or accepted): show its state, no pending error */
	SOCK_EV_CONNECTING,     /* a TCP connect is in flight */
	SOCK_EV_CONNECTED,      /* ... and has completed (or completed at once) */
	SOCK_EV_CONNECT_UNDONE, /* a connect refused at once: no peer */
	SOCK_EV_PEER_SET,       /* UDP: connect() named a default peer */
	SOCK_EV_PEER_UNSET,     /* UDP: connect(AF_UNSPEC) dissolved it */
	SOCK_EV_LISTENING,
	SOCK_EV_LISTEN_SHUT,    /* a listener shut for reading: accepts no more */
	SOCK_EV_ERROR,          /* err: the program's next call reports it (a UDP send or ICMP error, a refusal) */
	SOCK_EV_NET_EOF,        /* the peer's FIN has been passed on */
	SOCK_EV_NET_FAILED,     /* err: the connect failed, or the connection was reset or timed out */
	SOCK_EV_BOTH_SHUT,      /* both directions ended in order (or the program shut both) */
	SOCK_EV_PROG_CLOSED,    /* the program's carrier hung up: its last fd is closed */
	SOCK_EV_PROG_RESET,     /* ... with bytes unread: the peer gets a reset */
	SOCK_EV_REFUSED,        /* policy refused an accepted connection: reset, and the program never sees it */
	SOCK_EV_BROKEN,         /* a call it needs failed (registering, handing over an accept): drop it */
	SOCK_EV_CLOSE_HINT,     /* the program closed an fd of it (MW_CMD_CLOSE) */
	SOCK_EV_GROUP_GONE,     /* no process is left in its group */
	SOCK_EV_PEER_GONE,      /* a zombie's TCP connection has ended */
	SOCK_EV_EVICTED,        /* a zombie pushed out by newer ones */
};
/* A new socket in group g over real and car, with a slot and an id; NULL when the group is full. */
struct ins_sock *sock_new(struct ins_group *g, int domain, int real, int car);
/* Apply ev (err: its errno, where it has one) by the table.  Nothing happens to a socket already dead. */
void sock_event(struct ins_sock *s, enum sock_ev ev, int err);
/* Publish s's fields and counters, its record still showing what it shows. */
void sock_publish(struct ins_sock *s);
/* Register s's carrier and real socket with the loop (EPOLLOUT on the real one too if real_out).  0 or
 * -errno. */
int sock_watch(struct ins_sock *s, void (*car_fn)(struct ins_ev *, uint32_t),
	       void (*real_fn)(struct ins_ev *, uint32_t), bool real_out);
/* What s's carrier end or real socket is watched for, EPOLLOUT aside (edge-triggered): a TCP real socket also
 * for urgent data, which stops splice and recv at its mark (relay.c). */
static inline uint32_t sock_watch_events(const struct ins_sock *s, bool real)
{
	return EPOLLIN | EPOLLRDHUP | EPOLLET | (real && !s->dgram ? EPOLLPRI : 0);
}
/* Ask for (or stop asking for) EPOLLOUT on the real socket or the carrier.  Asked only while something waits
 * for room: otherwise every read the program makes, and every ACK, would wake us for nothing. */
void sock_want_out(struct ins_sock *s, bool real, bool on);
/* s has work left over from a budget (or a throttle's tokens came): sock.c pumps it next turn. */
void sock_runq_add(struct ins_sock *s);
void sock_reap(void); /* free the sockets that went during this turn */
void sock_report_all(void); /* --report: print the connections still open */
void sock_client_gone(struct ins_client *c);
void sock_zombies_tick(void); /* once a second: zombies whose connection ended stop naming the peer */
/* The group has no process left: its finished sockets can have no more questions. */
void sock_group_orphaned(struct ins_group *g);
/* Size our end of a stream carrier for bulk transfers to the program. */
void sock_carrier_tune(int car);

/* sock.c: the commands.  A request being run: sock_dispatch fills it in, and one handler of sock.c's table
 * does the work. */
struct ins_call {
	struct ins_client *c;
	const struct mw_req *q;
	struct ins_sock *s;  /* the socket q names, if its rule says it names one */
	struct mw_rsp *r;    /* the answer; its ret is the handler's return value */
	int fd;              /* the descriptor that came with q, or -1; a handler that keeps it sets -1 */
	int rfd;             /* a descriptor to send with the answer, or -1 */
	bool later;          /* the handler answers later itself (a blocking connect) */
};
/* Run q (arguments checked, its socket found, its handler called) and fill in *r.  fd: the descriptor that
 * came with it (consumed).  *rfd: one to send with the answer, or -1.  Returns true if the answer is not
 * client_exec's to send: it comes later (a blocking connect). */
bool sock_dispatch(struct ins_client *c, const struct mw_req *q, int fd, struct mw_rsp *r, int *rfd);
/* Move what s has to move, by its kind (relay.c, dgram.c, listen.c). */
void sock_pump(struct ins_sock *s);
void sock_run_queue(void); /* pump every socket on the run queue once */
/* Reset f's connection (mwctl kill, quarantine): the peer gets a RST, the program ECONNRESET (UDP: what an
 * ICMP unreachable says).  why: "mwctl", "quarantine".  May free f. */
void sock_kill(struct ins_flow *f, const char *why);

/* listen.c: listeners */
/* s (OPEN, a stream) listens: its carrier becomes the queue of accepted connections.  0 or -errno. */
int listen_start(struct ins_sock *s, int backlog);
/* Accept what the kernel has queued, as far as the carrier has room. */
void listen_pump(struct ins_sock *s);

/* relay.c: a TCP connection's bytes, both ways, and what the network reports on it (connect answers, EOF,
 * resets), which it hands to life.c as events. */
bool relay_up_empty(struct ins_sock *s);          /* nothing from the program waits, in the carrier or here */
void relay_count_up(struct ins_sock *s, size_t n); /* n bytes sent outside the relay (urgent data) */
/* An accepted connection's socket: watch it and move what is there. */
void relay_start(struct ins_sock *s);
void relay_car_event(struct ins_ev *ev, uint32_t events);
void relay_real_event(struct ins_ev *ev, uint32_t events);
/* Pump both directions, from outside an event (a request, a timer): either side may have bytes. */
void relay_pump(struct ins_sock *s);
/* Pump again what a spent budget or a throttle stopped, each direction as ready as it was. */
void relay_resume(struct ins_sock *s);
/* The real socket is connected: publish it, answer a blocking connect, and give the carrier back. */
void relay_connected(struct ins_sock *s);
/* Restore the program's end of the carrier after the shim's filler (see mw_connect_flags). */
void relay_connect_undo_fill(struct ins_sock *s);
/* Reset the connection (a kill): the peer gets a RST, the program ECONNRESET after what it had been sent. */
void relay_kill(struct ins_sock *s);

/* pipe.c: pipes to splice through, and a direction's holdings */
#define RELAY_CHUNK (256 * 1024) /* the most the relay moves in one step */
struct ins_pipe {
	int r, w;
};
/* Pipes for splicing open at once, pooled or holding bytes; each is two fds, which main.c keeps out of the
 * sockets' share.  Beyond it, bulk is copied. */
#define RELAY_PIPES_MAX 64
/* A pipe (F_SETPIPE_SZ'd to a relay chunk where the user's quota allows), or NULL when RELAY_PIPES_MAX are out
 * or none can be made. */
struct ins_pipe *pipe_get(void);
/* Give d's pipe back to the pool; one with bytes still in it (the socket is going) is closed with them. */
void pipe_put(struct ins_dir *d);
/* Free what a direction holds (its remainder, its pipe) when its socket goes. */
void dir_free(struct ins_dir *d);

/* wait.c: the loop's wait for events (a short adaptive spin, then epoll_wait).  more_work: something is on
 * the run queue, so only look.  Returns what epoll_wait returns. */
int wait_events(struct epoll_event *evs, int max, bool more_work);

/* dgram.c: the UDP relay. */
void dgram_car_event(struct ins_ev *ev, uint32_t events);
void dgram_real_event(struct ins_ev *ev, uint32_t events);
void dgram_pump(struct ins_sock *s);
/* Post err (a send or ICMP error) so that the program's next call reports it, and wake a blocked receive. */
void dgram_post_error(struct ins_sock *s, int err);
/* A kill: UDP has no reset, so the program hears what an ICMP unreachable would say. */
void dgram_kill(struct ins_sock *s);

/* proc.c: process identity */
/* Read pid's identity now (checked against pid reuse with pidfd if >= 0).  NULL on ENOMEM (logged). */
struct ins_proc *proc_get(pid_t pid, uid_t uid, gid_t gid, int pidfd);
/* pid's pid in its own (innermost) PID namespace, from /proc/PID/status; 0 if it can't be read. */
pid_t proc_vpid(pid_t pid);
struct ins_proc *proc_ref(struct ins_proc *p);
void proc_put(struct ins_proc *p);

/* flow.c: the connection records */
/* A new flow of s (TCP: it becomes s->flow; UDP: one of s->uflows).  NULL on ENOMEM. */
struct ins_flow *flow_new(struct ins_sock *s, uint8_t proto, bool outbound, const struct mw_addr *orig,
			  const struct mw_addr *resp);
/* The UDP flow of s with this remote address, made if there is none (outbound says who spoke first). */
struct ins_flow *flow_udp(struct ins_sock *s, const struct mw_addr *remote, bool outbound);
struct ins_flow *flow_udp_find(struct ins_sock *s, const struct mw_addr *remote);
void flow_hist(struct ins_flow *f, char op);
/* Bytes the relay moved: up = program -> network. */
void flow_bytes(struct ins_flow *f, bool up, uint64_t n);
void flow_event(struct ins_flow *f, const char *type);
/* The flow is over: emit closed (or killed/denied), export it, free it. err: 0 or the errno behind it. */
void flow_end(struct ins_flow *f, const char *reason, int err);
/* A flow refused by policy before it existed: one "denied" event with the record. */
void flow_denied(struct ins_sock *s, uint8_t proto, bool outbound, const struct mw_addr *local,
		 const struct mw_addr *remote, const struct pol_verdict *v, int err);
/* End the flows of a socket that is going away. */
void flow_sock_gone(struct ins_sock *s);
struct ins_flow *flow_find(const char *uid);
/* Every second: updates, IPFIX active reports, idle UDP flows. */
void flow_tick(uint64_t now_ms);
/* The flow as JSON (a new reference); live flows say "state" and "age" too. */
json_t *flow_json(const struct ins_flow *f, uint64_t now_ms);
void flow_shutdown(void); /* mwinsd exits: end every flow ("ins_exit") */
/* What the relay saw, in the flow's terms: */
void flow_fin(struct ins_sock *s, bool up);     /* a FIN: the program's (up) or the peer's */
void flow_established(struct ins_sock *s);
void flow_failed(struct ins_sock *s, int err);  /* the network ended it (or a kill did): the flow ends now */
void flow_prog_reset(struct ins_sock *s);       /* the program closed with bytes unread: we reset */

/* enforce.c: policy decisions, kills and throttles */
int enforce_init(void);             /* loads --policy, if any */
int enforce_reload(char *err, size_t errlen);
/* Decide op for s.  Fills v; returns 0 to go ahead, or the negative errno the program sees. */
int enforce_check(struct ins_sock *s, enum pol_op op, const struct mw_addr *local, const struct mw_addr *remote,
		  struct pol_verdict *v);
/* Apply the verdict's marks (log, throttle, kill on establish) to a new flow. */
void enforce_flow_start(struct ins_flow *f, const struct pol_verdict *v);
/* Mark f killed and say so (an event).  Returns its socket, which the caller resets (sock_kill, relay_kill,
 * dgram_kill), or NULL if there is none left to reset (then f has ended, and may be freed).  why: "mwctl",
 * "rule", "quarantine". */
struct ins_sock *enforce_kill(struct ins_flow *f, const char *why);
/* How many bytes s may move now in direction up (SIZE_MAX: unlimited); 0 puts it on the wait list. */
size_t enforce_allowance(struct ins_sock *s, bool up);
void enforce_used(struct ins_sock *s, bool up, size_t n);
void enforce_tick(uint64_t now_ms);
/* After establishment: whether a kill rule matched s's flow (then it is marked killed, and the caller resets
 * it now). */
bool enforce_kill_rule(struct ins_sock *s);
/* An inbound connection on a listener: 0 and a flow, or the errno to refuse it with (the caller resets). */
int enforce_accept(struct ins_sock *c);
/* A datagram to a destination s has no flow with yet: 0 and a new flow, or the errno (EPERM) to post. */
int enforce_udp_send(struct ins_sock *s, const struct mw_addr *dst);

/* events.c: the event stream, the event log, and where every event goes */
int events_init(void);
bool events_wanted(void);           /* false: nobody listens, do not even build the event */
/* Emit obj (consumed) as event type. */
void events_emit(const char *type, json_t *obj);

/* conn.c: the small line-oriented servers (control API, event stream, metrics) */
struct ins_conn;
struct ins_conn_ops {
	const char *name;           /* for the log */
	/* Only operators may connect: root or mwinsd's user, from outside a protected program's namespace
	 * (conn_peer_refused).  For AF_UNIX listeners, checked at accept from SO_PEERCRED. */
	bool operators_only;
	/* A complete line (NUL-terminated, without its newline); return <0 to close the connection. */
	int (*line)(struct ins_conn *c, char *line, size_t len);
	void (*gone)(struct ins_conn *c);
	size_t max_out;             /* output beyond this is dropped and counted */
	size_t max_line;
};
struct ins_conn {
	struct ins_ev ev;
	struct list link;
	const struct ins_conn_ops *ops;
	uid_t uid;
	pid_t pid;                  /* SO_PEERCRED's, 0 over TCP */
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_off, out_len, out_cap;
	uint64_t dropped;           /* output lines that did not fit */
	bool close_after_flush, dead, want_out;
	void *priv;
};
/* Listen on an AF_UNIX stream socket at path (mode 0600) or, if path has no '/', on TCP ADDR:PORT. */
int conn_listen(const char *where, const struct ins_conn_ops *ops, struct list *conns);
/* Queue bytes; returns -ENOBUFS (counted in c->dropped) if they do not fit. */
int conn_write(struct ins_conn *c, const char *buf, size_t len);
void conn_close(struct ins_conn *c);
void conn_finish(struct ins_conn *c); /* close once what is queued has gone */
void conn_reap(void);
void conn_shutdown(void); /* mwinsd exits: every listener and connection goes */
/* Is dst the address of one of mwinsd's own TCP servers (the metrics endpoint): its port, at any address of
 * this host (loopback, unspecified, v4-mapped, or local)?  A protected program's connect there is refused:
 * what mwinsd serves is for operators, and the program's bytes would come from mwinsd itself. */
bool conn_is_own_service(const struct mw_addr *dst);

/* ctl.c: the control API */
int ctl_init(void);

/* metrics.c */
int metrics_init(void);
/* The Prometheus text into buf (malloc'ed, *len). */
char *metrics_text(size_t *len);

/* decode.c: what a request may be, as a table and two pure functions (fuzz/fuzz_req.c runs them). */
enum req_when {
	REQ_NEVER = 0,
	REQ_ALWAYS,
	REQ_IF_NONBLOCK, /* a connect with MW_CONNECT_NONBLOCK */
};

struct req_rule {
	bool known;            /* a command of proto.h, the reserved ones included */
	bool names_sock;       /* sock_id must name a live socket of the caller's group */
	bool idle;             /* MW_REQ_IDLE is allowed */
	bool hint;             /* never answered (MW_CMD_CLOSE) */
	enum req_when fd;      /* when a descriptor comes with it */
	enum req_when noreply; /* when MW_REQ_NOREPLY is allowed */
	int (*args)(const struct mw_req *q); /* its part of req_args_check */
};

/* The rule of a command; never NULL (an unknown command's rule answers -ENOTSUP). */
const struct req_rule *req_rule(uint16_t cmd);
/* The framing rules of a request just received (n bytes; a descriptor came with it; the kernel cut it or its
 * ancillary data; the client has said HELLO): exact size, version, a descriptor exactly where the command
 * takes one, only the flags its rule allows, HELLO first and once.  Reads no field of q unless n is its full
 * size.  0, or -EPROTO: the client is disconnected. */
int req_frame_check(const struct mw_req *q, size_t n, bool has_fd, bool trunc, bool hello_done);
/* The arguments of a framed request, as far as they can be judged without its socket: 0, or the -errno to
 * answer at once (the kernel's for the same call), with nothing run. */
int req_args_check(const struct mw_req *q);
/* Socket options a program may not set or read: they reach past its own socket into the INS's host. */
bool req_opt_refused(int level, int name);

/* registry.c */
int registry_prepare(void); /* creates the instance's directory and names the rendezvous socket */
int registry_publish(void);
void registry_tick(void);
void registry_client_add(struct ins_client *c);
void registry_client_del(struct ins_client *c);
void registry_remove(void);

#endif /* MW_INS_H */
