/*
 * relaycost.c: what carrying bytes between a TCP socket and a unix socket costs, three ways, side by side.
 *
 * mwinsd sits between a program's carrier (a unix stream socket) and the real TCP socket and copies between
 * them in user space.  The alternative the kernel offers is a BPF sockmap: an SK_SKB verdict program that
 * redirects each skb from one socket to the other, with no user-space relay at all.  This measures both
 * against no relay (the program holds the TCP socket itself), on the same machine in the same run:
 *
 *   direct   the "program" reads and writes the accepted TCP socket;
 *   relay    it reads and writes its end of a socketpair; a thread moves bytes with epoll, read and write
 *            (what mwinsd's relay does, without its bookkeeping);
 *   sockmap  the same socketpair, with the TCP socket and the relay's end in a SOCKHASH whose verdict
 *            program redirects every skb to the other socket (needs CAP_BPF; skipped without it).
 *
 * Two workloads, both 64-byte ping-pong through loopback: one connection (latency, us a round trip), and
 * 50 connections at once (throughput on a busy machine, messages/s; what redis-benchmark's 50 clients do).
 *
 *   cc -O2 -o relaycost bench/relaycost.c -lpthread && sudo ./relaycost [reps]
 *
 * The verdict program is eight instructions, written out here so that nothing but the kernel's headers is
 * needed: look up the skb's socket cookie in the SOCKHASH and redirect there (egress of the found socket);
 * not found: pass.  A unix skb's socket is its sender, so the relay's end is keyed by the program end's
 * cookie, and the TCP socket by its own.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CONNS 50
#define PP_ROUNDS 50000
#define MULTI_MSGS 400000

enum mode { DIRECT, RELAY, SOCKMAP, NMODES };
static const char *mode_name[NMODES] = { "direct", "relay", "sockmap" };

struct pair {
	int c, s; /* the peer's TCP socket, and the accepted one */
	int a, b; /* the relay's end of the socketpair, and the program's */
};

static int map_fd = -1;

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static long sys_bpf(int cmd, union bpf_attr *a)
{
	return syscall(__NR_bpf, cmd, a, sizeof(*a));
}

#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })

/* The SOCKHASH and its verdict program.  0, or -errno (no CAP_BPF, no sockmap in this kernel). */
static int sockmap_setup(void)
{
	union bpf_attr a;
	int prog;

	memset(&a, 0, sizeof(a));
	a.map_type = BPF_MAP_TYPE_SOCKHASH;
	a.key_size = 8;
	a.value_size = 8;
	a.max_entries = 4 * CONNS;
	map_fd = (int)sys_bpf(BPF_MAP_CREATE, &a);
	if (map_fd < 0)
		return -errno;
	struct bpf_insn p[] = {
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0), /* r6 = skb */
		INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_get_socket_cookie),
		INSN(BPF_STX | BPF_MEM | BPF_DW, 10, 0, -8, 0), /* key on the stack */
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, 1, 6, 0, 0),
		INSN(BPF_LD | BPF_DW | BPF_IMM, 2, BPF_PSEUDO_MAP_FD, 0, map_fd),
		INSN(0, 0, 0, 0, 0),
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, 3, 10, 0, 0),
		INSN(BPF_ALU64 | BPF_ADD | BPF_K, 3, 0, 0, -8),
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, 4, 0, 0, 0), /* egress of the socket found */
		INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_sk_redirect_hash),
		INSN(BPF_JMP | BPF_JNE | BPF_K, 0, 0, 1, 0),
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1), /* not found: SK_PASS */
		INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_SK_SKB;
	a.insns = (unsigned long)p;
	a.insn_cnt = sizeof(p) / sizeof(p[0]);
	a.license = (unsigned long)"GPL";
	prog = (int)sys_bpf(BPF_PROG_LOAD, &a);
	if (prog < 0)
		return -errno;
	memset(&a, 0, sizeof(a));
	a.target_fd = (unsigned)map_fd;
	a.attach_bpf_fd = (unsigned)prog;
	a.attach_type = BPF_SK_SKB_STREAM_VERDICT;
	if (sys_bpf(BPF_PROG_ATTACH, &a) < 0)
		return -errno;
	return 0;
}

static unsigned long long cookie(int fd)
{
	unsigned long long c = 0;
	socklen_t l = sizeof(c);

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &l) < 0)
		die("SO_COOKIE");
	return c;
}

static void map_put(unsigned long long key, int fd)
{
	unsigned long long v = (unsigned long long)fd;
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_fd = (unsigned)map_fd;
	a.key = (unsigned long)&key;
	a.value = (unsigned long)&v;
	a.flags = BPF_ANY;
	if (sys_bpf(BPF_MAP_UPDATE_ELEM, &a) < 0)
		die("sockhash update");
}

/* n connected pairs through a listener on loopback, set up for mode. */
static void pairs_make(struct pair *p, int n, enum mode m)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, n) < 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &sl) < 0)
		die("listen");
	for (int i = 0; i < n; i++) {
		int sv[2];

		p[i].c = socket(AF_INET, SOCK_STREAM, 0);
		if (p[i].c < 0 || connect(p[i].c, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			die("connect");
		p[i].s = accept(l, NULL, NULL);
		if (p[i].s < 0)
			die("accept");
		setsockopt(p[i].c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(p[i].s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		p[i].a = p[i].b = -1;
		if (m == DIRECT)
			continue;
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
			die("socketpair");
		p[i].a = sv[0];
		p[i].b = sv[1];
		if (m == SOCKMAP) {
			map_put(cookie(p[i].b), p[i].s); /* what the program writes goes out of the TCP socket */
			map_put(cookie(p[i].s), p[i].a); /* what TCP receives goes out of the relay's end */
		}
	}
	close(l);
}

static void pairs_close(struct pair *p, int n)
{
	for (int i = 0; i < n; i++) {
		close(p[i].c);
		close(p[i].s);
		if (p[i].a >= 0)
			close(p[i].a);
		if (p[i].b >= 0)
			close(p[i].b);
	}
}

/* The user-space relay: every readable end's bytes to its partner. */
struct relay_arg {
	struct pair *p;
	int n, stop;
};

static void *relay_main(void *x)
{
	struct relay_arg *ra = x;
	static char buf[65536];
	int ep = epoll_create1(0);

	for (int i = 0; i < ra->n; i++) {
		struct epoll_event e = { .events = EPOLLIN, .data.u64 = (uint64_t)i };

		epoll_ctl(ep, EPOLL_CTL_ADD, ra->p[i].a, &e);
		e.data.u64 = (uint64_t)i | 1ull << 32;
		epoll_ctl(ep, EPOLL_CTL_ADD, ra->p[i].s, &e);
	}
	while (!__atomic_load_n(&ra->stop, __ATOMIC_RELAXED)) {
		struct epoll_event ev[64];
		int k = epoll_wait(ep, ev, 64, 100);

		for (int i = 0; i < k; i++) {
			struct pair *p = &ra->p[ev[i].data.u64 & 0xffffffff];
			int tcp = (int)(ev[i].data.u64 >> 32), from = tcp ? p->s : p->a, to = tcp ? p->a : p->s;
			ssize_t r = read(from, buf, sizeof(buf));

			if (r <= 0 || write(to, buf, (size_t)r) != r)
				goto out;
		}
	}
out:
	close(ep);
	return NULL;
}

/* The program side: echo every message on fds until killed. */
static void echo_forever(const int *fds, int n)
{
	int ep = epoll_create1(0);
	char m[64];

	for (int i = 0; i < n; i++) {
		struct epoll_event e = { .events = EPOLLIN, .data.fd = fds[i] };

		epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e);
	}
	for (;;) {
		struct epoll_event ev[64];
		int k = epoll_wait(ep, ev, 64, -1);

		for (int i = 0; i < k; i++) {
			ssize_t r = read(ev[i].data.fd, m, sizeof(m));

			if (r <= 0 || write(ev[i].data.fd, m, (size_t)r) != r)
				_exit(0);
		}
	}
}

/* The peer: n connections, a 64-byte message in flight on each, until msgs have come back. */
static double peer_run(const int *fds, int n, long msgs)
{
	int ep = epoll_create1(0);
	char m[64] = { 0 };
	long got = 0;
	double t0 = now();

	for (int i = 0; i < n; i++) {
		struct epoll_event e = { .events = EPOLLIN, .data.fd = fds[i] };

		epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e);
		if (write(fds[i], m, sizeof(m)) != sizeof(m))
			die("write");
	}
	while (got < msgs) {
		struct epoll_event ev[64];
		int k = epoll_wait(ep, ev, 64, 5000);

		if (k <= 0)
			die("no answer in 5 s");
		for (int i = 0; i < k; i++) {
			ssize_t r = read(ev[i].data.fd, m, sizeof(m));

			if (r <= 0)
				die("read");
			got += r == sizeof(m); /* a message split in two counts once */
			if (write(ev[i].data.fd, m, (size_t)r) != r)
				die("write");
		}
	}
	close(ep);
	return now() - t0;
}

/* One measurement: n connections, msgs messages.  Returns the seconds it took. */
static double measure(enum mode m, int n, long msgs)
{
	struct pair p[CONNS];
	int prog[CONNS], peer[CONNS];
	struct relay_arg ra = { p, n, 0 };
	pthread_t t;
	pid_t pid;
	double secs;

	pairs_make(p, n, m);
	for (int i = 0; i < n; i++) {
		prog[i] = m == DIRECT ? p[i].s : p[i].b;
		peer[i] = p[i].c;
	}
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0)
		echo_forever(prog, n);
	if (m == RELAY && pthread_create(&t, NULL, relay_main, &ra) != 0)
		die("pthread_create");
	secs = peer_run(peer, n, msgs);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	if (m == RELAY) {
		__atomic_store_n(&ra.stop, 1, __ATOMIC_RELAXED);
		pthread_join(t, NULL);
	}
	pairs_close(p, n);
	return secs;
}

static int cmp(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return (a > b) - (a < b);
}

int main(int argc, char **argv)
{
	int reps = argc > 1 ? atoi(argv[1]) : 3, err;
	bool have_map;
	double pp[NMODES][16], mc[NMODES][16];

	if (reps < 1 || reps > 16) {
		fprintf(stderr, "usage: relaycost [reps: 1..16]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	err = sockmap_setup();
	have_map = err == 0;
	if (!have_map)
		fprintf(stderr, "relaycost: no sockmap (%s): that column is skipped\n", strerror(-err));
	for (int r = 0; r < reps; r++) {
		for (int k = 0; k < NMODES; k++) {
			enum mode m = (enum mode)((k + r) % NMODES); /* the order rotates each repetition */

			if (m == SOCKMAP && !have_map)
				continue;
			pp[m][r] = measure(m, 1, PP_ROUNDS) / PP_ROUNDS * 1e6;
			mc[m][r] = MULTI_MSGS / measure(m, CONNS, MULTI_MSGS);
		}
	}
	printf("%-8s %22s %10s %28s %10s\n", "", "1 connection: us/round trip", "/ direct", "50 connections: messages/s",
	       "/ direct");
	for (int m = 0; m < NMODES; m++) {
		if (m == SOCKMAP && !have_map)
			continue;
		qsort(pp[m], (size_t)reps, sizeof(double), cmp);
		qsort(mc[m], (size_t)reps, sizeof(double), cmp);
	}
	for (int m = 0; m < NMODES; m++) {
		if (m == SOCKMAP && !have_map)
			continue;
		printf("%-8s %22.1f %10.2f %28.0f %10.2f\n", mode_name[m], pp[m][reps / 2],
		       pp[m][reps / 2] / pp[DIRECT][reps / 2], mc[m][reps / 2], mc[m][reps / 2] / mc[DIRECT][reps / 2]);
	}
	printf("(medians of %d; round trips: lower is better, messages/s: higher is better)\n", reps);
	return 0;
}
