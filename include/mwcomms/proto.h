/*
 * mwcomms control protocol: the messages a protected process (the shim) and the isolated network stack
 * (mwinsd) exchange on the control channel.
 *
 * Who talks to whom
 *   Each protected process opens one SOCK_SEQPACKET connection to an mwinsd rendezvous socket (found through
 *   the registry).  The shim sends requests; mwinsd answers each with exactly one response carrying the same
 *   req_id.  Responses may arrive in any order: a connect that is still in progress does not hold up a
 *   setsockopt issued by another thread.  mwinsd never sends anything unprompted on this channel.
 *
 *   The bytes of a connection never cross this channel.  They flow on *carriers*: AF_UNIX socketpairs whose
 *   program end is the fd the program holds as its socket (see DESIGN.md, decision 1).  mwinsd makes every
 *   carrier itself and hands the program's end over as SCM_RIGHTS ancillary data on the response, so that it
 *   knows each program end's inode: possession of that fd is what MW_CMD_IDENTIFY later checks.
 *
 *     MW_CMD_SOCKET   rsp carries the program's end of a new carrier: SOCK_STREAM for TCP, SOCK_SEQPACKET
 *                     for UDP (struct mw_dgram messages).
 *     MW_CMD_LISTEN   the socket keeps its carrier, so every copy of it listens; mwinsd pushes one struct
 *                     mw_accept (plus the accepted connection's carrier end) per connection, one per sendmsg.
 *                     The shim fills the program's side so that a listener is never writable.
 *     MW_CMD_CONNECT  req carries, when nonblocking, the program's end of the carrier (see mw_connect_flags).
 *     MW_CMD_IDENTIFY req carries an fd the process received (SCM_RIGHTS, or inherited across exec); if it is
 *                     the program's end of a carrier, rsp names the socket for the caller's group.
 *
 *   mwinsd answers MW_CMD_HELLO with the group's shared state page (a memfd, as SCM_RIGHTS).  A *group* is
 *   every process in one network namespace: the tree that one mwrun started.  mwinsd learns the namespace from
 *   SO_PEERCRED and /proc, never from the program, and sockets are named per group, so a forked or exec'd
 *   child reaches the sockets it inherited simply by saying HELLO on its own connection.
 *
 * Usage, a connect:
 *     struct mw_req q = { .version = MW_PROTO_VERSION, .cmd = MW_CMD_CONNECT, .req_id = 7, .sock_id = id };
 *     mw_addr_from_sockaddr(&q.u.addr, sa, salen);
 *     send(ctl, &q, sizeof q, MSG_NOSIGNAL);          -> one struct mw_rsp with req_id 7 and ret 0 or -errno
 *
 * Rules both sides keep
 *   - Every message is exactly sizeof(struct mw_req) or sizeof(struct mw_rsp) bytes.  Anything else, a wrong
 *     version, an unknown field value or an unexpected fd is a protocol violation: mwinsd disconnects the
 *     sender; the shim treats the daemon as gone.  An unknown *command* is not a violation: it gets -ENOTSUP,
 *     as in PV Calls.
 *   - Each side copies a message once into private memory and validates the copy.  Nothing is read twice.
 *   - ret is 0 or a negative errno (Linux values).  Positive values are defined per command below.
 *   - All integers are host byte order (both ends run on one kernel), except mw_addr.port, which is network
 *     byte order as in struct sockaddr_in.
 *   - There is no flow control beyond the socket buffer: a client that floods requests without reading its
 *     responses is disconnected once mwinsd's per-client response queue is full (MW_MAX_PENDING_RSP).
 *
 * MW_CMD_CLOSE exists because a connection that has ended both ways leaves no trace on its carrier when the
 * program finally closes it, yet the program may still ask for its options (TCP_INFO) until then.  mwinsd keeps
 * such a finished socket until a close hint for it arrives, the group goes away, or too many pile up.  The
 * hint may come from one of several holders of the fd; acting on it early only makes later calls on that
 * socket fail with EBADF.  The shim hints every close, of every kind of socket: the hint arrives in order with
 * the process's next requests, so mwinsd takes a last close's hang-up then (the carrier has hung up already)
 * and frees the port the socket held before a bind that follows, as a kernel socket's close does.
 *
 * Command values 0..6 follow Xen PV Calls (socket 0, connect 1, release 2, bind 3, listen 4, accept 5,
 * poll 6).  Release, accept and poll are reserved and answered with -ENOTSUP: a socket is released when the
 * last reference to its carrier is closed, accept is a local receive on the listener's carrier, and readiness
 * is the carrier's own.
 */
#ifndef MWCOMMS_PROTO_H
#define MWCOMMS_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* 3: a listener keeps its stream carrier (no descriptor comes with MW_CMD_LISTEN), MW_CMD_OOB, MW_CMD_BARRIER.
 * A shim and an mwinsd of different versions do not talk: mwinsd ends the connection and logs both versions,
 * and mwrun passes over an INS whose registry entry names another version. */
#define MW_PROTO_VERSION 3

/* Limits both sides enforce. */
#define MW_OPT_MAX 512           /* largest socket option value carried (struct tcp_info fits, with room) */
#define MW_MAX_PENDING_RSP 4096  /* responses mwinsd queues for one client before it disconnects it */

enum mw_cmd {
	MW_CMD_SOCKET = 0,      /* u.socket; rsp sock_id: the new socket's id, fd: the program's carrier end */
	MW_CMD_CONNECT = 1,     /* u.connect; rsp when the connect has completed (or at once, if nonblocking) */
	MW_CMD_RELEASE = 2,     /* reserved: -ENOTSUP */
	MW_CMD_BIND = 3,        /* u.addr */
	MW_CMD_LISTEN = 4,      /* u.listen; no fd either way */
	MW_CMD_ACCEPT = 5,      /* reserved: -ENOTSUP */
	MW_CMD_BARRIER = 6,     /* rsp 0 once every request sent before it on this connection has run (the
				 * shim's fork waits for its unanswered setsockopts so) */
	MW_CMD_HELLO = 16,      /* first request on a connection; rsp u.hello + the page's memfd */
	MW_CMD_SETSOCKOPT = 18, /* u.opt */
	MW_CMD_GETSOCKOPT = 19, /* u.opt (optlen = caller's buffer size); rsp u.opt */
	MW_CMD_SHUTDOWN = 20,   /* u.shutdown; only SHUT_RD travels here, SHUT_WR is a local shutdown of the carrier */
	MW_CMD_IOCTL = 21,      /* u.ioctl: SIOCOUTQ and friends answered from the real socket */
	MW_CMD_IDENTIFY = 22,   /* fd: a possible carrier end; rsp sock_id and u.ident, or -ENOENT */
	MW_CMD_CLOSE = 24,      /* a hint, never answered: the sender closed an fd naming sock_id (see below) */
	MW_CMD_DGRAM_CHECK = 23, /* u.addr: would a UDP send to this address be refused at once?  Binds an unbound
				  * socket first, as the kernel's first send does.  rsp 0 or the send's errno */
	MW_CMD_OOB = 25,        /* u.oob: one byte of TCP urgent data either way; rsp ret 0 and u.oob, or -errno */
};

/* A socket address.  Exactly one layout for both families, so that no length field needs trusting. */
/*
 * Requests that need no answer.  A round trip costs two wake-ups, which on a small virtual machine is tens of
 * microseconds, the whole cost of a kernel connect; so what cannot fail, or can report its failure elsewhere,
 * is sent without one.  mwinsd executes a MW_REQ_NOREPLY request in order with the sender's other requests and
 * sends nothing back.  Allowed only on:
 *   MW_CMD_SETSOCKOPT  options that cannot fail on a TCP socket (the shim's list: TCP_NODELAY, TCP_CORK, ...);
 *                      a failure all the same is only logged.
 *   MW_CMD_CONNECT     with MW_CONNECT_NONBLOCK (a blocking connect(): the shim waits on the carrier, not for
 *                      a response).  Every outcome then goes through the page and the carrier: success and a
 *                      later failure as for any connect in progress, and a failure at once (a policy refusal,
 *                      no route) as the socket's pending error, posted before its send buffer is restored, so
 *                      that the waiting program wakes and finds it; the socket stays usable.
 *
 * Requests that may wait.  MW_REQ_IDLE asks mwinsd to answer when it has nothing else to do (or within a few
 * milliseconds at the latest), so that work done ahead of need (the shim's pool refill) never delays a
 * connect or a byte in flight.  Allowed only on MW_CMD_SOCKET, without MW_REQ_NOREPLY.  Responses are matched
 * by req_id, so an idle request may be answered after requests sent later.
 *
 * Anything else with a flag set is a protocol violation.
 */
enum mw_req_flags {
	MW_REQ_NOREPLY = 1U << 0,
	MW_REQ_IDLE = 1U << 1,
};

struct mw_addr {
	uint16_t family;   /* AF_INET, AF_INET6, or 0 for "none" */
	uint16_t port;     /* network byte order */
	uint32_t flowinfo; /* AF_INET6 only */
	uint8_t addr[16];  /* AF_INET: first 4 bytes */
	uint32_t scope_id; /* AF_INET6 only */
	uint32_t pad;      /* zero */
};
_Static_assert(sizeof(struct mw_addr) == 32, "mw_addr layout");

struct mw_socket_args {
	int32_t domain;   /* AF_INET or AF_INET6 */
	int32_t type;     /* SOCK_STREAM (carrier: SOCK_STREAM) or SOCK_DGRAM (carrier: SOCK_SEQPACKET, see
			   * struct mw_dgram); flags (NONBLOCK, CLOEXEC) are the carrier's business, not sent */
	int32_t protocol; /* 0, IPPROTO_TCP or IPPROTO_UDP */
	uint32_t pad;
};

enum mw_connect_flags {
	/* The shim filled the carrier's send buffer with `fill` bytes so that the program's end stays unwritable
	 * until the connect completes.  mwinsd discards exactly those bytes, and then sets the carrier end it
	 * received with the request (SCM_RIGHTS) back to a normal send buffer; that wakes EPOLLOUT. */
	MW_CONNECT_NONBLOCK = 1U << 0,
};

struct mw_connect_args {
	struct mw_addr addr; /* family 0 on a UDP socket: dissolve the association (connect to AF_UNSPEC) */
	uint32_t flags;  /* enum mw_connect_flags */
	uint32_t fill;   /* bytes of filler ahead of the program's data, with MW_CONNECT_NONBLOCK */
	uint32_t sndbuf; /* the carrier's send buffer to restore, as SO_SNDBUF reported it */
	uint32_t pad;
};

struct mw_listen_args {
	int32_t backlog;
	uint32_t pad;
};

struct mw_shutdown_args {
	int32_t how; /* SHUT_RD */
	uint32_t pad;
};

struct mw_opt_args {
	int32_t level;
	int32_t name;
	uint32_t len; /* <= MW_OPT_MAX */
	uint32_t pad;
	uint8_t val[MW_OPT_MAX];
};

struct mw_ioctl_args {
	uint32_t request; /* SIOCOUTQ, SIOCOUTQNSD, SIOCATMARK */
	uint32_t pad;
	int64_t value;    /* rsp */
};

/* TCP urgent data (MSG_OOB) does not travel on the carrier, which is a plain byte stream.  A sent urgent byte
 * goes out after everything the program wrote before it (-EAGAIN while any of that still waits for room); a
 * received one is read from the real socket, with the kernel's answers (EINVAL when there is none). */
enum mw_oob_op {
	MW_OOB_SEND = 1, /* req byte: send it with MSG_OOB */
	MW_OOB_RECV = 2, /* rsp byte: recv(MSG_OOB) */
	MW_OOB_PEEK = 3, /* rsp byte: recv(MSG_OOB | MSG_PEEK) */
};

struct mw_oob_args {
	uint32_t op;   /* enum mw_oob_op */
	uint16_t byte; /* req SEND, rsp RECV and PEEK: 0 to 255 */
	uint16_t got;  /* rsp RECV and PEEK: 1, or 0 for none (the end of the stream) */
};

enum mw_sock_kind {
	MW_KIND_STREAM = 1,  /* a TCP socket, not listening */
	MW_KIND_LISTEN = 2,  /* a listening TCP socket */
	MW_KIND_DGRAM = 3,   /* a UDP socket */
};

struct mw_ident_args {
	uint16_t kind;   /* rsp: enum mw_sock_kind */
	uint16_t family; /* rsp: AF_INET or AF_INET6 */
	uint32_t pad;
};

struct mw_hello_args {
	/* req: nothing (identity comes from SO_PEERCRED and /proc, never from the program).
	 * rsp: geometry of the shared state page that arrives with it as SCM_RIGHTS. */
	uint32_t page_size;  /* bytes to map */
	uint32_t nslots;     /* records in the page */
	uint32_t group;      /* mwinsd's id for the process group */
	uint32_t pad;
};

struct mw_req {
	uint16_t version; /* MW_PROTO_VERSION */
	uint16_t cmd;     /* enum mw_cmd */
	uint32_t req_id;  /* chosen by the shim, echoed in the response */
	uint32_t sock_id; /* the socket the command names; 0 for HELLO and SOCKET */
	uint32_t flags;   /* enum mw_req_flags */
	union {
		struct mw_socket_args socket;
		struct mw_connect_args connect;
		struct mw_addr addr;
		struct mw_listen_args listen;
		struct mw_shutdown_args shutdown;
		struct mw_opt_args opt;
		struct mw_ioctl_args ioctl;
		struct mw_hello_args hello;
		struct mw_oob_args oob;
		uint8_t raw[528];
	} u;
};
_Static_assert(sizeof(struct mw_req) == 544, "mw_req layout");
_Static_assert(offsetof(struct mw_req, u) == 16, "mw_req layout");

struct mw_rsp {
	uint16_t version;
	uint16_t cmd;     /* echoed */
	uint32_t req_id;  /* echoed */
	uint32_t sock_id; /* echoed, or the new socket's id for MW_CMD_SOCKET */
	int32_t ret;      /* 0, a positive per-command value, or -errno */
	union {
		struct mw_opt_args opt;
		struct mw_ioctl_args ioctl;
		struct mw_hello_args hello;
		struct mw_ident_args ident;
		struct mw_oob_args oob;
		uint8_t raw[528];
	} u;
};
_Static_assert(sizeof(struct mw_rsp) == 544, "mw_rsp layout");

/*
 * What mwinsd pushes on a listener's carrier for each accepted connection, in one sendmsg with the new
 * connection's SOCK_STREAM carrier end as SCM_RIGHTS.  The page record for sock_id is written before this is
 * sent.  If the shim finds no fd, or a record of any other size, it drops the message and closes what it got.
 */
struct mw_accept {
	uint16_t version;
	uint16_t pad;
	uint32_t sock_id;
	struct mw_addr peer;
	struct mw_addr local;
};
_Static_assert(sizeof(struct mw_accept) == 72, "mw_accept layout");

/*
 * A UDP socket's carrier is a SOCK_SEQPACKET pair carrying one datagram per message, in one of two forms:
 *
 *   framed: struct mw_dgram (magic first) and then the payload.  Sends name their destination, receives their
 *           source.  Every message on an unconnected socket is framed.
 *   raw:    the payload alone.  On a *connected* socket, sends to the connected peer and datagrams from it
 *           are raw, so that a program that bypasses libc for its datagram calls (libuv issues sendmmsg and
 *           recvmmsg as raw system calls) still sends and receives plain payloads.
 *
 * A message is framed if and only if it is at least sizeof(struct mw_dgram) long and starts with
 * MW_DGRAM_MAGIC; mwinsd frames any datagram from the peer that would look framed, so there is no ambiguity.
 *
 * Errors (an ICMP error on a connected socket) are posted in the page and announced by a message so that a
 * blocked receive wakes: a framed MW_DGRAM_ERROR message, or on a connected socket an empty raw message.  The
 * shim reports the page's error once, whichever call sees it first; an announcement whose error was already
 * reported is skipped (an empty datagram with no error pending is a real empty datagram).
 */
#define MW_DGRAM_MAGIC 0x6d774447U /* "mwDG" */

enum mw_dgram_flags {
	MW_DGRAM_ERROR = 1U << 0,
};

struct mw_dgram {
	uint32_t magic;      /* MW_DGRAM_MAGIC */
	uint32_t len;        /* from mwinsd: the datagram's full length, even if it was cut to fit (MSG_TRUNC) */
	uint16_t flags;      /* enum mw_dgram_flags */
	uint16_t pad;
	int32_t error;       /* with MW_DGRAM_ERROR: a positive errno */
	struct mw_addr addr; /* to mwinsd: the destination; from it: the source */
};
_Static_assert(sizeof(struct mw_dgram) == 48, "mw_dgram layout");

#define MW_DGRAM_MAX 65535 /* the largest payload carried either way */

/* Socket ids: the low 16 bits are the record's slot in the shared page; the rest is a generation count, so a
 * stale id never names a reused slot.  0 is never a valid id. */
#define MW_SOCK_SLOT(id) ((id) & 0xffffU)

/*
 * The shim's own system calls on sockets, past mwrun's filter.  Under mwrun, a program's bind, listen,
 * accept, getsockname, getpeername, getsockopt, setsockopt and shutdown are trapped and answered by mwrun's
 * supervisor
 * (src/run/sup.c), for programs that bypass the shim.  The shim makes these calls itself (on carriers, and
 * for the program on other fds) with MW_FD_UNTRAPPED(fd) as the first argument (all but accept, a
 * cancellation point that stays libc's): the kernel takes an fd
 * argument as an int and ignores the upper 32 bits, and the filter lets a call through untrapped when they
 * are not zero.  So a dynamically linked program pays nothing for the filter.  A program that sets them
 * itself only reaches the kernel, in its own network namespace: the namespace is the boundary, not the
 * filter.
 */
#define MW_FD_UNTRAPPED_MASK 0xffffffff00000000ULL
#define MW_FD_UNTRAPPED(fd) ((long)(unsigned)(fd) | (long)(1ULL << 32))

#endif /* MWCOMMS_PROTO_H */
