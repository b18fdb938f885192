/*
 * shim.h: libmwshim's private header.  The shim is preloaded into a protected program.  It turns each
 * AF_INET/AF_INET6 TCP and UDP socket into a carrier (one end of an AF_UNIX socketpair whose other end mwinsd
 * holds with the real socket), sends the control calls to mwinsd, and leaves data calls to the kernel except
 * where a carrier must add meaning (the real errno for a reset, no AF_UNIX addresses, no SIGPIPE where TCP has
 * none, UDP's frames).
 *
 * Rules every file here keeps:
 *   - A call on an fd that is not a carrier costs one table lookup and goes to libc.
 *   - Paths reachable from close/read/write/send/recv take no lock and allocate nothing (async-signal safety);
 *     urgent data (MSG_OOB) alone takes a round trip.
 *   - mwinsd is hostile: every response and page record is copied once and checked before use.
 *   - Internal functions return 0 or a negative errno; only the exported libc functions set errno, and the
 *     halves they hand a whole call to, which say so (dgram.c's, io.c's urgent data), answer as they do.
 */
#ifndef MW_SHIM_H
#define MW_SHIM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/uio.h>

#include "mwcomms/page.h"
#include "mwcomms/proto.h"

#define SHIM_EXPORT __attribute__((visibility("default")))

/* The libc functions we interpose, resolved with dlsym(RTLD_NEXT). */
struct shim_real {
	int (*socket)(int, int, int);
	int (*socketpair)(int, int, int, int *);
	int (*connect)(int, const struct sockaddr *, socklen_t);
	int (*bind)(int, const struct sockaddr *, socklen_t);
	int (*listen)(int, int);
	int (*accept)(int, struct sockaddr *, socklen_t *);
	int (*accept4)(int, struct sockaddr *, socklen_t *, int);
	int (*shutdown)(int, int);
	int (*close)(int);
	int (*getsockopt)(int, int, int, void *, socklen_t *);
	int (*setsockopt)(int, int, int, const void *, socklen_t);
	int (*getsockname)(int, struct sockaddr *, socklen_t *);
	int (*getpeername)(int, struct sockaddr *, socklen_t *);
	int (*fcntl)(int, int, ...);
	int (*ioctl)(int, unsigned long, ...);
	int (*dup)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*write)(int, const void *, size_t);
	ssize_t (*readv)(int, const struct iovec *, int);
	ssize_t (*writev)(int, const struct iovec *, int);
	ssize_t (*recv)(int, void *, size_t, int);
	ssize_t (*send)(int, const void *, size_t, int);
	ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	int (*recvmmsg)(int, struct mmsghdr *, unsigned int, int, struct timespec *);
	int (*sendmmsg)(int, struct mmsghdr *, unsigned int, int);
	int (*epoll_ctl)(int, int, int, struct epoll_event *);
	int (*close_range)(unsigned int, unsigned int, int);
	long (*libc_syscall)(long, ...); /* libc's syscall(): sys.c */
};

extern struct shim_real real;

/* real.c: resolve the libc functions; safe to call many times and before our constructor has run. */
void real_init(void);

/* fdtab.c: which fds are carriers.  A lock-free two-level table indexed by fd. */
enum shim_kind {
	SHIM_NONE = 0,
	SHIM_STREAM,  /* a TCP socket, not listening: a SOCK_STREAM carrier */
	SHIM_LISTEN,  /* a listening TCP socket: the same SOCK_STREAM carrier, of accept records */
	SHIM_DEAD,    /* made while no INS could be reached: every network call on it fails */
	SHIM_DGRAM,   /* a UDP socket: a SOCK_SEQPACKET carrier of struct mw_dgram messages */
};

enum shim_fd_flags {
	SHIM_F_CONNECTED = 1U << 0, /* seen connected: writes need no check of the page */
	SHIM_F_CONNECT_TOLD = 1U << 1, /* connect() has returned 0 once: the next says EISCONN, as TCP does */
};

struct shim_fd {
	uint32_t sock_id;
	uint8_t kind;   /* enum shim_kind */
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t flags;  /* enum shim_fd_flags */
	uint8_t epoch;  /* which INS made it (page.c): an id means something only to its own INS */
};
_Static_assert(sizeof(struct shim_fd) == sizeof(uint64_t), "fdtab.c stores an entry as one 64-bit word");

/* Look fd up; returns its kind (SHIM_NONE for anything that is not ours).  Async-signal safe. */
static inline enum shim_kind fdtab_get(int fd, struct shim_fd *out);
/* Record fd as a carrier.  Returns -EMFILE if fd is beyond the table. */
int fdtab_set(int fd, const struct shim_fd *e);
/* Forget fd.  Async-signal safe. */
void fdtab_clear(int fd);
/* The lowest fd in [from, last] that has an entry, or -1.  Skips the pages never used.  Async-signal safe. */
int fdtab_next(unsigned from, unsigned last);
/* Set or clear flags on fd's entry if it still names sock_id.  Async-signal safe. */
void fdtab_add_flags(int fd, uint32_t sock_id, uint8_t flags);
void fdtab_clear_flags(int fd, uint32_t sock_id, uint8_t flags);

#define FDTAB_L1 1024
#define FDTAB_L2 1024
extern uint64_t *_Atomic shim_fdtab[FDTAB_L1];

static inline enum shim_kind fdtab_get(int fd, struct shim_fd *out)
{
	uint64_t *l2, v;

	if ((unsigned)fd >= FDTAB_L1 * FDTAB_L2)
		return SHIM_NONE;
	l2 = __atomic_load_n(&shim_fdtab[(unsigned)fd / FDTAB_L2], __ATOMIC_ACQUIRE);
	if (!l2)
		return SHIM_NONE;
	v = __atomic_load_n(&l2[(unsigned)fd % FDTAB_L2], __ATOMIC_ACQUIRE);
	if (!v)
		return SHIM_NONE;
	__builtin_memcpy(out, &v, sizeof(*out));
	return (enum shim_kind)out->kind;
}

/* fdtab_get for the socket calls.  A stream socket never seen connected may have been made a listener by
 * listen() on another copy of it (a dup, or a copy made before a fork or passed by SCM_RIGHTS): the entry
 * follows its record, as every copy of a kernel socket is the same socket.  Async-signal safe. */
enum shim_kind fdtab_settle(int fd, struct shim_fd *e);
/* rec says e's socket is connected: remember it in the entry (later calls need no look at the page), and give
 * the carrier its send buffer back if mwinsd left that to us (MW_REC_SNDBUF).  Async-signal safe. */
void fdtab_connected(int fd, struct shim_fd *e, const struct mw_sock_rec *rec);

static inline enum shim_kind fdtab_sock(int fd, struct shim_fd *out)
{
	enum shim_kind k = fdtab_get(fd, out);

	return k == SHIM_STREAM && !(out->flags & SHIM_F_CONNECTED) ? fdtab_settle(fd, out) : k;
}

/* sys.c: the shim's own raw system calls (the build names every syscall() call here so; see sys.c). */
long mw_raw_syscall(long nr, ...);

/* chan.c: the control channel to mwinsd. */

/* Send q (with fd as SCM_RIGHTS if fd >= 0) and wait for its response in *r.  Fills version and req_id.
 * *epoch: the epoch of the socket q names, or 0 if it names none (SOCKET, IDENTIFY); a socket of an INS that
 * is gone gets -ENETDOWN and nothing is sent (its id would name another socket on the new INS).  On return
 * *epoch is the epoch of the INS that answered.  A request that names no socket is tried once more on
 * another INS if the first is found dead.
 * Returns 0 when *r holds a checked response (its ret may still be an error), or -ENETUNREACH when no INS
 * can be reached, or -EIO when the INS broke the protocol or went away.  A descriptor that comes with a
 * successful response is stored in *rfd (-1 if none); rfd may be NULL only where none may come. */
int chan_call(struct mw_req *q, uint8_t *epoch, int fd, struct mw_rsp *r, int *rfd);
/* Up to this many requests go out in one chan_call_many. */
#define CHAN_BATCH_MAX 8
/* n (1..CHAN_BATCH_MAX) MW_CMD_SOCKET requests sent back to back, their responses awaited together: one round
 * trip.  r[i] and rfd[i] as for chan_call.  Returns 0 only when every response arrived and checked. */
int chan_call_many(struct mw_req *q, int n, uint8_t *epoch, struct mw_rsp *r, int *rfd);
/* The asynchronous batch (one per process): n (1..CHAN_BATCH_MAX) MW_CMD_SOCKET requests sent now, their
 * responses collected later, so that the round trip overlaps the program's own work.  Their descriptors are
 * moved up out of the program's way as they arrive, whichever thread reads them.
 * chan_async_send: 0 once sent; -EBUSY if a batch is still out; else as chan_call.
 * chan_async_collect, never blocking: 0 with r[0..*n-1], rfd[] (a failed one has ret < 0 and rfd -1) and the
 * epoch they came from; -EAGAIN if some have not come yet; -ENOENT if none is out.  Fork drops a batch. */
int chan_async_send(struct mw_req *q, int n);
int chan_async_collect(struct mw_rsp *r, int *rfd, int *n, uint8_t *epoch);
/* Send q for socket e with MW_REQ_NOREPLY (and fd as SCM_RIGHTS if fd >= 0), and do not wait: mwinsd answers
 * nothing (proto.h says which requests may).  0 once sent; -ENETDOWN (e is of a dead INS), -ENETUNREACH,
 * -EIO as chan_call.  A fork waits first for what was sent this way (chan.c). */
int chan_send_noreply(const struct shim_fd *e, struct mw_req *q, int fd);
/* chan_call for a request naming the socket of table entry e. */
#define chan_call_on(e, q, fd, r, rfd)                                                                    \
	({                                                                                                \
		uint8_t ep_ = (e)->epoch;                                                                  \
		chan_call((q), &ep_, (fd), (r), (rfd));                                                    \
	})

/* Move fd (close-on-exec) up among the numbers programs leave alone, as the control connection is; returns
 * the new number, or fd itself if it could not move. */
int shim_fd_move_high(int fd);

/* pool.c: TCP sockets made ahead of need, so that socket() costs no round trip. */

/* A new TCP socket of domain: its carrier in *fd, its id and epoch.  *pooled: it was waiting in the pool, at a
 * high number, close-on-exec (the caller moves it); else it just came from mwinsd (lowest number, close-on-
 * exec, type unchecked).  0 or a negative errno as chan_call (-ENETUNREACH: no INS). */
int pool_take(int domain, int *fd, uint32_t *sock_id, uint8_t *epoch, bool *pooled);

/* ident.c: learning that a descriptor the process was given (SCM_RIGHTS, or across exec) is a carrier. */

/* If fd is the program end of a carrier, record it in the table.  Returns 0 if it is now known as a carrier,
 * -ENOENT if it is not one, or another negative errno. */
int ident_fd(int fd);
/* Ask about every descriptor in the SCM_RIGHTS of a received message. */
void ident_cmsgs(const struct msghdr *msg);

/* rspcheck.c: the checks of a response from mwinsd, pure functions (fuzz/fuzz_rsp.c).  Each returns 0 when
 * the response may be used, else -EIO (the INS broke the protocol) unless it says otherwise. */

/* A message just received on the control channel: n is what mw_recv_fd returned, trunc what it said.  Reads
 * no field of r unless n is its full size.  Size and version. */
int chan_rsp_frame_check(const struct mw_rsp *r, ssize_t n, bool trunc);
/* A framed response r to request q (has_fd: a descriptor came with it; fd_wanted: the caller takes one):
 * req_id and cmd echoed, sock_id echoed unless q made or named a new one, ret 0 or a negative errno, a
 * descriptor only where wanted and not with an error. */
int chan_rsp_check(const struct mw_req *q, const struct mw_rsp *r, bool has_fd, bool fd_wanted);
/* The answer to HELLO, as received (n, trunc as above; has_fd: the page's memfd came): framed, req_id 0,
 * cmd HELLO, ret 0 or a negative errno (returned as it is), and then a memfd and a page geometry that is
 * consistent (1 to MW_PAGE_MAX_SLOTS slots, page_size exactly mw_page_size(nslots)).  The memfd's real
 * size is the caller's to check. */
int chan_hello_check(const struct mw_rsp *r, ssize_t n, bool trunc, bool has_fd);

/* Tell mwinsd, without waiting, that this process closed an fd naming sock_id (MW_CMD_CLOSE).
 * Async-signal safe. */
void chan_hint_close(uint32_t sock_id);

/* Where the INS is, as the environment said before main (programs rebuild their environment). */
const char *chan_env_sock(void);
const char *chan_env_registry(void);

/* Connect and say HELLO if not yet done in this process.  Returns 0 or -ENETUNREACH (the reason printed
 * once to stderr). */
int chan_ensure(void);

/* relisten.c: listeners re-created on the next INS when theirs dies. */

/* fd (entry e) now listens with this backlog; v6only: its IPV6_V6ONLY, -1 for AF_INET. */
void relisten_note(int fd, const struct shim_fd *e, int backlog, int v6only);
/* An epoll_ctl that succeeded on listener fd: remembered, to be made again on a re-created carrier. */
void relisten_epoll(int epfd, int op, int fd, const struct shim_fd *e, const struct epoll_event *ev);
/* fd's carrier hung up: if its INS died (the record still says listening), make the listener again on the
 * current INS in fd's place.  0, -ENOENT if it is not a listener to re-create (it was shut down), or another
 * negative errno (-ECONNABORTED while no INS can be reached: try again later). */
int relisten(int fd, const struct shim_fd *e);

/* page.c: reading the shared state pages, one per INS this process has attached to (an epoch). */

/* What this process did to a socket, kept per slot: what it shut, so that an EPIPE or EOF it then meets is
 * known for its own doing, and whether it has made its one waited send after the peer's FIN. */
enum shim_shut {
	SHIM_SHUT_WR = 1U << 0,
	SHIM_SHUT_RD = 1U << 1,
	SHIM_FIN_SENT = 1U << 2,
};

/* The current epoch (the INS new sockets are made on); 0 before the first HELLO.  Async-signal safe. */
uint8_t page_epoch(void);
/* A new INS's page (called by chan.c after HELLO), with the per-slot local arrays.  Returns its epoch. */
uint8_t page_attach(const void *base, uint32_t nslots, uint32_t *consumed, uint64_t *dest, uint8_t *shut);

/* The rest are async-signal safe and take the socket's table entry (its id and epoch). */

/* Copy e's record into *out.  Returns 0, -ESTALE if the record now describes another socket, -EIO if there
 * is no page for it or the page is garbled or kept locked. */
int page_read(const struct shim_fd *e, struct mw_sock_rec *out);
/* The checks page_read makes of its private copy of a record for sock_id (pure; fuzz/fuzz_rec.c): 0,
 * -ESTALE if it describes another socket, -EIO if its state or error is out of range. */
int page_rec_check(const struct mw_sock_rec *rec, uint32_t sock_id);
/* e's pending error, taken so that no other caller gets it too: a positive errno, or 0. */
int page_take_error(const struct shim_fd *e);
/* Has mwinsd approved UDP sends from e to a (the last destination checked)? */
bool page_dest_known(const struct shim_fd *e, const struct mw_addr *a);
/* Remember a as approved for e; NULL forgets (its options changed). */
void page_dest_set(const struct shim_fd *e, const struct mw_addr *a);
void page_mark_shut(const struct shim_fd *e, uint8_t bits);
uint8_t page_shut(const struct shim_fd *e); /* enum shim_shut bits */
/* A new socket in e's slot: forget what this process did to the slot's last socket.  Async-signal safe. */
void page_slot_new(const struct shim_fd *e);
/* A send on a connection whose peer has finished (its FIN reached us) learns of the reset it draws before
 * the next send, as on a kernel socket: page_fin_send_begin says whether this send should wait (the first
 * after the FIN, in this process) and the bytes passed on so far; page_fin_send_wait then waits, at most
 * 20 ms (mwinsd takes microseconds unless the peer's window is full), until mwinsd has passed on n more or
 * failed the socket.  Async-signal safe. */
bool page_fin_send_begin(const struct shim_fd *e, uint64_t *sent);
void page_fin_send_wait(const struct shim_fd *e, uint64_t target);
/* e's carrier ended (EOF when reading, EPIPE when writing) with no error posted: did mwinsd go away, rather
 * than the connection end?  True unless the record says closed, or the end was a real one (the peer's FIN
 * when reading; our own SHUT_WR when writing). */
bool page_ins_gone(const struct shim_fd *e, bool writing);

/* dgram.c: UDP sends and receives on a carrier, in libc's convention (-1 and errno). */
ssize_t dgram_sendmsg(int fd, const struct shim_fd *e, const struct msghdr *msg, int flags);
ssize_t dgram_recvmsg(int fd, const struct shim_fd *e, struct msghdr *msg, int flags);
/* Take an error marker off the head of the carrier (its error was reported another way). */
void dgram_drop_marker(int fd);

/* addr helpers for the exported calls. */
int shim_addr_out(const struct mw_addr *a, int family, struct sockaddr *addr, socklen_t *addrlen);

/* Return -1 with errno = -err (err < 0), else err.  The one place a negative errno becomes libc's form. */
static inline int shim_ret(int err);

#include <errno.h>
static inline int shim_ret(int err)
{
	if (err < 0) {
		errno = -err;
		return -1;
	}
	return err;
}

#endif /* MW_SHIM_H */
