/*
 * case-threads.c: many threads on sockets at once.
 *
 * threads_echo_4: 64 threads, each on its own connection, do 1,000 request/response exchanges of 64 bytes with the
 * echo service; every byte is checked, and the line holds the totals and one checksum over all threads in order.
 *
 * threads_blocked_4: threads blocked at once in connect (to the blackhole), accept, recv and send (TCP) and recvfrom
 * (UDP), each for about 3 s, while the main thread makes a quick exchange of its own. That exchange must not wait
 * behind any of them ("prompt=yes": done within 2 s). Then each blocked call ends its own way, which is noted as a
 * count per result ("4xEINPROGRESS").
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "conform.h"

enum { ECHO_THREADS = 64, ECHO_ROUNDS = 1000, ECHO_MSG = 64 };

struct echo_thread {
	int index;
	uint64_t bytes;
	uint32_t csum;
	int errors;
	long first_error; /* -errno of the first failed call, or 0 */
};

static void *echo_thread_run(void *arg)
{
	struct echo_thread *t = arg;
	t->csum = CSUM_INIT;
	struct sockaddr_storage ss;
	socklen_t len = peer_addr(AF_INET, PEER_ECHO, &ss);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0) {
		t->first_error = -errno;
		t->errors++;
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	uint8_t out[ECHO_MSG], in[ECHO_MSG];
	for (int i = 0; i < ECHO_ROUNDS; i++) {
		pattern_fill(out, ((uint64_t)t->index * ECHO_ROUNDS + (uint64_t)i) * ECHO_MSG, ECHO_MSG);
		ssize_t w = send(fd, out, ECHO_MSG, MSG_NOSIGNAL);
		if (w != ECHO_MSG) {
			t->first_error = w < 0 ? -errno : -EIO;
			t->errors++;
			break;
		}
		size_t got = 0;
		while (got < ECHO_MSG) {
			ssize_t r = recv(fd, in + got, ECHO_MSG - got, 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				t->first_error = r < 0 ? -errno : -EPIPE;
				break;
			}
			got += (size_t)r;
		}
		t->bytes += got;
		t->csum = csum_update(t->csum, in, got);
		if (got != ECHO_MSG || memcmp(in, out, ECHO_MSG) != 0) {
			t->errors++;
			if (got != ECHO_MSG)
				break;
		}
	}
	close(fd);
	return NULL;
}

CASE(threads_echo_4)
{
	static struct echo_thread t[ECHO_THREADS];
	pthread_t tid[ECHO_THREADS];
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	int started = 0;
	for (int i = 0; i < ECHO_THREADS; i++) {
		t[i].index = i;
		if (pthread_create(&tid[i], &attr, echo_thread_run, &t[i]) != 0)
			break;
		started++;
	}
	pthread_attr_destroy(&attr);
	uint64_t total = 0;
	int errors = 0, failed_threads = 0;
	long first_error = 0;
	uint32_t all = CSUM_INIT;
	for (int i = 0; i < started; i++) {
		pthread_join(tid[i], NULL);
		total += t[i].bytes;
		errors += t[i].errors;
		failed_threads += t[i].errors != 0;
		if (!first_error && t[i].first_error)
			first_error = t[i].first_error;
		all = csum_update(all, &t[i].csum, sizeof(t[i].csum));
	}
	note("threads=%d bytes=%llu errors=%d csum=%08x", started, (unsigned long long)total, errors, all);
	if (first_error)
		note("first_error=%s failed_threads=%d", res_str(first_error), failed_threads);
	expect(started == ECHO_THREADS && errors == 0 && total == (uint64_t)ECHO_THREADS * ECHO_ROUNDS * ECHO_MSG,
	       "want 64 threads and 4096000 bytes without errors");
}

/* ---- blocked calls ---- */

enum blocked_kind { B_CONNECT, B_ACCEPT, B_RECV, B_SEND, B_UDP_RECV, B_KINDS };
static const char *const blocked_names[B_KINDS] = { "connect", "accept", "recv", "send", "udp_recv" };
enum { PER_KIND = 4, BLOCK_MS = 3000 };

struct blocked {
	enum blocked_kind kind;
	int fd;
	const uint8_t *buf; /* B_SEND */
	size_t len;
	long r;
	char result[24];
	int tid;  /* thread_announce */
	int done; /* set once the call has returned */
};

static void *blocked_run(void *arg)
{
	struct blocked *b = arg;
	char buf[64];
	thread_announce(&b->tid);
	switch (b->kind) {
	case B_CONNECT: {
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(peer_port(PEER_ECHO)),
			                   .sin_addr = conform_ctx.blackhole4 };
		b->r = res(connect(b->fd, (struct sockaddr *)&sin, sizeof(sin)));
		snprintf(b->result, sizeof(b->result), "%s", res_str(b->r));
		break;
	}
	case B_ACCEPT:
		b->r = res(accept(b->fd, NULL, NULL));
		snprintf(b->result, sizeof(b->result), "%s", b->r >= 0 ? "fd" : res_str(b->r));
		if (b->r >= 0)
			close((int)b->r);
		break;
	case B_RECV:
		b->r = res(recv(b->fd, buf, sizeof(buf), MSG_WAITALL));
		snprintf(b->result, sizeof(b->result), "%s", res_str(b->r));
		break;
	case B_SEND:
		/* Blocks once every buffer on the way is full; SO_SNDTIMEO ends it with what went, or EAGAIN. */
		b->r = res(send(b->fd, b->buf, b->len, MSG_NOSIGNAL));
		snprintf(b->result, sizeof(b->result), "%s",
		         b->r == -EAGAIN || (b->r > 0 && (size_t)b->r < b->len) ? "timedout" : res_str(b->r));
		break;
	case B_UDP_RECV:
		b->r = res(recv(b->fd, buf, sizeof(buf), 0));
		snprintf(b->result, sizeof(b->result), "%s", res_str(b->r));
		break;
	case B_KINDS:
		break;
	}
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* "4xEINPROGRESS", or the results in order when they differ. */
static void blocked_note(const struct blocked *b, int n)
{
	char out[256];
	size_t len = 0;
	bool same = true;
	for (int i = 1; i < n; i++)
		same &= strcmp(b[i].result, b[0].result) == 0;
	if (same) {
		snprintf(out, sizeof(out), "%dx%s", n, b[0].result);
	} else {
		out[0] = '\0';
		for (int i = 0; i < n; i++)
			len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s", i ? "," : "", b[i].result);
	}
	note("%s=%s", blocked_names[b[0].kind], out);
}

CASE(threads_blocked_4)
{
	static struct blocked b[B_KINDS][PER_KIND];
	pthread_t tid[B_KINDS][PER_KIND];
	uint16_t ports[PER_KIND];
	size_t big = 32u << 20;
	uint8_t *buf = calloc(1, big);
	if (!buf)
		setup_fail("calloc");
	struct timeval tmo = { .tv_sec = BLOCK_MS / 1000, .tv_usec = (BLOCK_MS % 1000) * 1000 };
	for (int i = 0; i < PER_KIND; i++) {
		/* A SYN to the blackhole gets no answer: SO_SNDTIMEO ends the wait (EINPROGRESS); should it be ignored,
		 * two SYN retries end it a few seconds later (ETIMEDOUT). */
		int fd = tcp_socket(AF_INET, 0);
		int syncnt = 2;
		setsockopt(fd, IPPROTO_TCP, TCP_SYNCNT, &syncnt, sizeof(syncnt));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof(tmo));
		b[B_CONNECT][i] = (struct blocked){ .kind = B_CONNECT, .fd = fd };
		b[B_ACCEPT][i] = (struct blocked){ .kind = B_ACCEPT, .fd = tcp_listen(AF_INET, 0, &ports[i]) };
		/* The peer answers after BLOCK_MS. */
		char req[64];
		fd = peer_connect(AF_INET, PEER_SOURCE);
		int n = snprintf(req, sizeof(req), "5 5 %d\n", BLOCK_MS);
		send_all(fd, req, (size_t)n);
		b[B_RECV][i] = (struct blocked){ .kind = B_RECV, .fd = fd };
		fd = peer_connect(AF_INET, PEER_HOLD);
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof(tmo));
		b[B_SEND][i] = (struct blocked){ .kind = B_SEND, .fd = fd, .buf = buf, .len = big };
		fd = udp_socket(AF_INET, 0);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof(tmo));
		struct sockaddr_in any = { .sin_family = AF_INET };
		bind(fd, (struct sockaddr *)&any, sizeof(any));
		b[B_UDP_RECV][i] = (struct blocked){ .kind = B_UDP_RECV, .fd = fd };
	}
	/* The recv threads want 64 bytes with MSG_WAITALL and get 5 and EOF. */
	for (int k = 0; k < B_KINDS; k++)
		for (int i = 0; i < PER_KIND; i++)
			if (pthread_create(&tid[k][i], NULL, blocked_run, &b[k][i]) != 0)
				setup_fail("pthread_create");
	int64_t start = now_ms();
	/* Until they are in their calls (a send may still be filling the buffers on the way after 3 s: then the
	 * exchange runs beside it, which is as good) */
	for (int k = 0; k < B_KINDS; k++)
		for (int i = 0; i < PER_KIND; i++)
			wait_blocked(&b[k][i].tid, 3000);

	/* The quick exchange: a connect, a TCP echo, a UDP echo, an option. */
	int64_t t0 = now_ms();
	int fd = peer_connect(AF_INET, PEER_ECHO);
	echo_probe(fd);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	close(fd);
	fd = udp_socket(AF_INET, 0);
	udp_probe("udp_echo", fd, AF_INET);
	close(fd);
	int64_t took = now_ms() - t0;
	/* Prompt: over before any blocked call returned, so it did not wait for one. The witnesses are the calls
	 * whose BLOCK_MS count from when they blocked (SO_SNDTIMEO, SO_RCVTIMEO); the accepts return only when
	 * dialed below (an exchange stuck behind them never ends, and the case times out); the recvs' peer counts
	 * from the request, sent before their threads started. */
	bool prompt = true;
	for (int i = 0; i < PER_KIND; i++)
		prompt &= !__atomic_load_n(&b[B_CONNECT][i].done, __ATOMIC_ACQUIRE) &&
		          !__atomic_load_n(&b[B_SEND][i].done, __ATOMIC_ACQUIRE) &&
		          !__atomic_load_n(&b[B_UDP_RECV][i].done, __ATOMIC_ACQUIRE);
	note("prompt=%s", prompt ? "yes" : "no");
	expect(prompt, "the quick exchange (%lld ms) ended after blocked calls had returned", (long long)took);

	/* The blocked accepts get a connection once the others have had their time. */
	int64_t left = BLOCK_MS - (now_ms() - start);
	if (left > 0)
		sleep_ms((int)left);
	int ctl[PER_KIND];
	for (int i = 0; i < PER_KIND; i++)
		ctl[i] = peer_dial(AF_INET, ports[i]);
	for (int k = 0; k < B_KINDS; k++) {
		for (int i = 0; i < PER_KIND; i++)
			pthread_join(tid[k][i], NULL);
		blocked_note(b[k], PER_KIND);
	}
	for (int i = 0; i < PER_KIND; i++) {
		close(ctl[i]);
		for (int k = 0; k < B_KINDS; k++)
			close(b[k][i].fd);
	}
	free(buf);
}
