/*
 * conform.h: what the parts of the conformance program share.
 *
 * `conform run` runs every case of case-list.h in its own forked process, under an alarm, against a helper
 * `conform peer` that serves in another network namespace. Each case prints one canonical line: return values,
 * errno names, poll flags, byte counts and checksums, never timings, addresses or port numbers. Run on kernel
 * sockets (the oracle) and again under mwrun, the two outputs must be identical. Each case also checks the answers
 * that the kernel fixes and notes FAIL(...) when they are wrong, so that it fails on its own too.
 *
 * Usage, from the test suite:
 *
 *     ip netns exec world conform peer --port 20000
 *     ip netns exec ins   conform run --peer4 10.77.0.2 --peer6 fd77::2 --port 20000 --blackhole 10.77.9.1
 *     ip netns exec ins   mwrun -- conform run ...same arguments...
 */
#ifndef CONFORM_H
#define CONFORM_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/*
 * The services of `conform peer`, as offsets from its base port. Each listens on IPv4 and IPv6 and serves every
 * connection in its own process. Where a service needs to be told something, the client sends one request line.
 */
enum peer_service {
	PEER_ECHO = 0,   /* echoes everything until EOF, then closes */
	PEER_SOURCE = 1, /* request "N CHUNK DELAY_MS\n": sends N pattern bytes, CHUNK at a time, each chunk after a
	                    DELAY_MS pause, then closes */
	PEER_RESET = 2,  /* reads one byte of request, then closes with SO_LINGER {1, 0}: the client gets an RST */
	PEER_COUNT = 3,  /* reads until EOF, replies "N\n" (the byte count), then closes */
	PEER_HOLD = 4,   /* accepts and never reads, so that the client's buffers fill */
	PEER_DIAL = 5,   /* request "PORT\n": connects back to the requester's address at PORT, replies "ok\n" or
	                    "ERRNO_NAME\n" on the request connection, then echoes on the new connection until EOF.
	                    Request "PORT watch\n": the same, but the new connection is watched (see PEER_WATCH) */
	PEER_WATCH = 6,  /* request "watch\n": opens a listener on a fresh port and replies "PORT\n"; the client
	                    connects there; the peer echoes on that connection until EOF or an error, then reports what
	                    ended it on the request connection: "EOF N\n" or "ECONNRESET N\n" (N = bytes it read) */
	PEER_SUM = 7,    /* reads until EOF, replies "N CSUM\n" (byte count, csum_update of the bytes as %08x) */
	PEER_NSERVICES = 8,
	PEER_CLOSED = 9, /* nothing listens here, TCP or UDP: a connect is refused, a datagram draws ICMP unreachable */
};

/*
 * The peer's UDP services, on the same base port (UDP and TCP port numbers are separate). Like the TCP services
 * they take IPv4 and IPv6 on one socket.
 */
enum peer_udp_service {
	PEER_UDP_ECHO = 0,  /* sends each datagram back to its sender, from the same port */
	PEER_UDP_OTHER = 1, /* sends each datagram back to its sender, but from PEER_UDP_REPLY */
	PEER_UDP_REPLY = 2, /* where PEER_UDP_OTHER's replies come from; what arrives here is dropped */
};

/* What `conform run` was told about the peer. Set once before the first case is forked. */
struct conform_ctx {
	struct in_addr peer4;
	struct in6_addr peer6;
	struct in_addr blackhole4;
	uint16_t port; /* the peer's base port */
};
extern struct conform_ctx conform_ctx;

/* The subcommands (main.c dispatches to them). Each returns the process exit status. */
int peer_main(int argc, char **argv);
int runner_main(int argc, char **argv);
int runner_list(int argc, char **argv);
/* `conform exec-helper ...`: the program that the exec cases of case-process.c run; not for people. */
int process_helper_main(int argc, char **argv);

/*
 * outcome.c: building a case's one-line outcome. A case runs in a child process whose outcome goes to the runner
 * through a pipe; each note is written at once, so that a case killed by its alarm still shows how far it got.
 */
void outcome_open(int fd);
/* The fd the outcome goes to (a case that closes fds wholesale must spare it). */
int outcome_pipe(void);
/* Appends one space-separated token. */
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Appends "FAIL(...)" unless ok. Returns ok. */
bool expect(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Notes FAIL(setup: ...) and ends the case: for failures of the scaffolding rather than of the call under test. */
_Noreturn void setup_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * A call's result as one number: the return value when >= 0, else -errno. Call it directly on the call, so that
 * errno is read before anything can change it: `long r = res(connect(...));`.
 */
long res(long rc);
/* "0", "17" or "ECONNREFUSED". Returns one of a few rotating static buffers. */
const char *res_str(long r);
/* Notes "key=<res_str(r)>". */
void note_res(const char *key, long r);
/* Notes "key=<res_str(r)>", and a FAIL unless r == want. */
void expect_res(const char *key, long r, long want);
/* "ECONNREFUSED", or "E<number>" for one not in the table. */
const char *errno_name(int err);
/* Poll or epoll event bits as "IN|OUT|HUP", or "0". Same static-buffer rule as res_str. */
const char *events_str(unsigned events);

/* The byte pattern the peer sends and the cases send: byte i of a stream depends on i, so reordering shows. */
uint8_t pattern_byte(uint64_t i);
void pattern_fill(uint8_t *buf, uint64_t offset, size_t n);
/* FNV-1a, 32 bits: start with CSUM_INIT. */
#define CSUM_INIT 2166136261u
uint32_t csum_update(uint32_t h, const void *buf, size_t n);

/*
 * net.c: the scaffolding the cases build on. Helpers whose failure is not the point of a case call setup_fail.
 */
/* The peer's address for a service. Returns the address length. */
socklen_t peer_addr(int family, int service, struct sockaddr_storage *ss);
uint16_t peer_port(int service);
/* socket(family, SOCK_STREAM | flags, 0), or setup_fail. */
int tcp_socket(int family, int flags);
/* A blocking connect to a service of the peer, or setup_fail. */
int peer_connect(int family, int service);
/* Connects to PEER_SOURCE and sends its request line. */
int peer_source(int family, size_t n, size_t chunk, int delay_ms);
/* A listener on the wildcard address and an ephemeral port; the port through *port. */
int tcp_listen(int family, int flags, uint16_t *port);
/* A connection to ourselves over IPv4 loopback: both ends, made and accepted, or setup_fail. */
void tcp_loop_pair(int *client, int *server);
/* Asks the peer to connect to our `port`; returns the request connection, on which dial_result reads the answer. */
int peer_dial(int family, uint16_t port);
/* The peer's answer to a dial: "ok" or an errno name (or "EOF"/"timeout"). Static buffer. */
const char *dial_result(int ctl);

/* poll() on one fd for up to timeout_ms: the revents, 0 on timeout. */
unsigned wait_events(int fd, short events, int timeout_ms);
/* Waits until FIONREAD reaches want or timeout_ms passes: the last value read (or -errno). */
long wait_inq(int fd, long want, int timeout_ms);
/* Sends all of buf (blocking, MSG_NOSIGNAL), or setup_fail. */
void send_all(int fd, const void *buf, size_t n);
/* Reads until n bytes or EOF or error; the byte count, or -errno when nothing was read. Waits with poll, so it works
 * on non-blocking fds too, and gives up after timeout_ms. */
long recv_upto(int fd, void *buf, size_t n, int timeout_ms);
/* Sends "ping", expects "ping" back, notes "echo=ok" or a FAIL. */
void echo_probe(int fd);
/* Sends n (up to 3) fds in one SCM_RIGHTS message with 3 bytes of data; the byte count, or -errno. */
long send_fds(int us, const int *fds, int n);
/* Receives up to 3 fds from one SCM_RIGHTS message (waiting up to 3 s); the count, or -errno. */
long recv_fds(int us, int *fds);
/* Waits for a child and notes "key=exit0" (or the signal), with a FAIL unless it exited 0. */
void child_status_note(const char *key, pid_t pid);
/* socket(family, SOCK_DGRAM | flags, 0), or setup_fail. */
int udp_socket(int family, int flags);
/*
 * An address described relative to what the cases know, without numbers that vary: "inet:peer+0" (the peer's
 * address, at base port + 0), "inet6:mapped+0" (the peer's IPv4 address v4-mapped), "inet:any:port0",
 * "inet6:local:port" (another address, a nonzero port), "unix", "unspec", "short" (len too small to say).
 * Same static-buffer rule as res_str.
 */
const char *sa_desc(const struct sockaddr_storage *ss, socklen_t len);
/* Waits up to timeout_ms for a datagram, then receives it with recvfrom(MSG_DONTWAIT): the length or -errno. */
long udp_recv(int fd, void *buf, size_t n, struct sockaddr_storage *from, socklen_t *fromlen, int timeout_ms);
/* Sends "udp-ping" to the peer's UDP echo (to the connected peer when family is 0), expects it back from there,
 * notes "key=ok" or a FAIL. */
void udp_probe(const char *key, int fd, int family);
/* getsockopt of an int: the value, or -errno. */
long sockopt_int(int fd, int level, int opt);
/* SO_DOMAIN/SO_TYPE/SO_PROTOCOL as "inet/stream/tcp" (or "unix/seqpacket/0", ...). Same static-buffer rule. */
const char *sock_kind(int fd);
/* The fd a case's outcome goes to (for a helper that execs: it passes the number on). */
int outcome_fd_get(void);

/* Milliseconds on the monotonic clock. */
int64_t now_ms(void);
/* Sleeps for ms milliseconds. */
void sleep_ms(int ms);
/* Called by a thread right before it makes a blocking call: stores its thread id in *tid, for wait_blocked. */
void thread_announce(int *tid);
/* Waits until the thread that announced itself in *tid is asleep in the kernel (state S in
 * /proc/self/task/TID/stat: its blocking call is under way) or has ended, for up to timeout_ms. Returns false when
 * neither happened in time. What a thread does between its announcement and its call must not sleep. */
bool wait_blocked(const int *tid, int timeout_ms);

/* Every case is `void case_<name>(void)`. */
#define CASE(name) void case_##name(void)

#define X(name, timeout_s) CASE(name);
#include "case-list.h"
CONFORM_CASES(X)
#undef X

#endif
