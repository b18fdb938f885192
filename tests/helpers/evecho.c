/*
 * evecho: a libevent echo server and load client (bufferevents over the default backend, epoll).
 *
 *   evecho server PORT
 *       Listens on [::]:PORT (dual stack) and echoes each connection; when the peer half-closes it flushes
 *       what is left, half-closes too and frees the connection.  Prints "listening PORT" when ready and
 *       "conn ADDR PORT BYTES" per connection when it ends.
 *
 *   evecho client ADDR PORT CONNS BYTES [TIMEOUT_S]
 *       Opens CONNS connections at once.  Each sends BYTES of a pattern of its own (a PRNG seeded by the
 *       connection's number), half-closes once everything is written, and checks every byte of the echo
 *       against the same pattern as it arrives; at EOF it must have seen exactly BYTES.  Prints
 *       "ok CONNS BYTES*CONNS" and exits 0, or prints each failure and exits 1 (2 on timeout).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

/* ------------------------------------------------------------------ the pattern */

static uint8_t pat_next(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (uint8_t)((*s * 0x2545F4914F6CDD1DULL) >> 56);
}

static uint64_t pat_seed(int conn)
{
	return 0x9E3779B97F4A7C15ULL * (uint64_t)(conn + 1) + 12345;
}

/* ------------------------------------------------------------------ server */

struct sconn {
	struct bufferevent *bev;
	char peer[INET6_ADDRSTRLEN];
	int port;
	size_t bytes;
	int closing;
};

static void sconn_done(struct sconn *c)
{
	evutil_socket_t fd = bufferevent_getfd(c->bev);

	if (fd >= 0)
		shutdown(fd, SHUT_WR);
	printf("conn %s %d %zu\n", c->peer, c->port, c->bytes);
	fflush(stdout);
	bufferevent_free(c->bev);
	free(c);
}

static void s_read(struct bufferevent *bev, void *arg)
{
	struct sconn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	c->bytes += evbuffer_get_length(in);
	bufferevent_write_buffer(bev, in);
}

static void s_write(struct bufferevent *bev, void *arg)
{
	struct sconn *c = arg;

	if (c->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		sconn_done(c);
}

static void s_event(struct bufferevent *bev, short what, void *arg)
{
	struct sconn *c = arg;

	if (what & BEV_EVENT_EOF) {
		s_read(bev, c);
		c->closing = 1;
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			sconn_done(c);
		/* else s_write finishes once the echo is flushed */
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		fprintf(stderr, "server: connection from %s %d: %s\n", c->peer, c->port,
			evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		bufferevent_free(bev);
		free(c);
	}
}

static void s_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct event_base *base = evconnlistener_get_base(l);
	struct sconn *c = calloc(1, sizeof(*c));

	(void)arg;
	(void)salen;
	if (!c) {
		evutil_closesocket(fd);
		return;
	}
	if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], c->peer, sizeof(c->peer));
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, c->peer, sizeof(c->peer));
		c->port = ntohs(s6->sin6_port);
	} else if (sa->sa_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, c->peer, sizeof(c->peer));
		c->port = ntohs(s4->sin_port);
	} else {
		snprintf(c->peer, sizeof(c->peer), "family-%d", sa->sa_family);
	}
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, s_read, s_write, s_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static int server(int port)
{
	struct event_base *base = event_base_new();
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port),
				     .sin6_addr = IN6ADDR_ANY_INIT };
	struct evconnlistener *l;
	evutil_socket_t fd;
	int off = 0, on = 1;

	if (!base)
		return 1;
	fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
	    bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) < 0) {
		perror("server: socket/bind");
		return 1;
	}
	l = evconnlistener_new(base, s_accept, NULL, LEV_OPT_CLOSE_ON_FREE, 128, fd);
	if (!l) {
		perror("server: listen");
		return 1;
	}
	printf("listening %d (backend %s)\n", port, event_base_get_method(base));
	fflush(stdout);
	event_base_dispatch(base);
	return 0;
}

/* ------------------------------------------------------------------ client */

struct cconn {
	int id;
	struct bufferevent *bev;
	uint64_t send_state, check_state;
	size_t sent, got, total;
	int done, failed, shut;
};

static int live, failures;
static struct event_base *cbase;

static void c_finish(struct cconn *c, const char *why)
{
	if (c->done)
		return;
	c->done = 1;
	if (why) {
		c->failed = 1;
		failures++;
		printf("conn %d failed: %s (sent %zu, got %zu of %zu)\n", c->id, why, c->sent, c->got, c->total);
	}
	bufferevent_free(c->bev);
	c->bev = NULL;
	if (--live == 0)
		event_base_loopbreak(cbase);
}

/* Queue more of the pattern while the output buffer is short. */
static void c_fill(struct cconn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	uint8_t buf[16384];

	while (c->sent < c->total && evbuffer_get_length(out) < 256 * 1024) {
		size_t n = c->total - c->sent, i;

		if (n > sizeof(buf))
			n = sizeof(buf);
		for (i = 0; i < n; i++)
			buf[i] = pat_next(&c->send_state);
		evbuffer_add(out, buf, n);
		c->sent += n;
	}
}

static void c_write(struct bufferevent *bev, void *arg)
{
	struct cconn *c = arg;

	c_fill(c);
	if (c->sent == c->total && !c->shut && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		c->shut = 1;
		if (shutdown(bufferevent_getfd(bev), SHUT_WR) < 0)
			c_finish(c, strerror(errno));
	}
}

static void c_read(struct bufferevent *bev, void *arg)
{
	struct cconn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t buf[16384];
	int n;

	while ((n = evbuffer_remove(in, buf, sizeof(buf))) > 0) {
		for (int i = 0; i < n; i++) {
			if (c->got >= c->total) {
				c_finish(c, "more bytes than were sent");
				return;
			}
			if (buf[i] != pat_next(&c->check_state)) {
				char why[64];

				snprintf(why, sizeof(why), "byte %zu differs", c->got);
				c_finish(c, why);
				return;
			}
			c->got++;
		}
	}
}

static void c_event(struct bufferevent *bev, short what, void *arg)
{
	struct cconn *c = arg;

	if (what & BEV_EVENT_CONNECTED) {
		c_write(bev, c);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		c_read(bev, c);
		if (c->done)
			return;
		c_finish(c, c->got == c->total && c->shut ? NULL : "early EOF");
		return;
	}
	if (what & BEV_EVENT_ERROR)
		c_finish(c, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static int client(const char *addr, int port, int conns, size_t bytes, int timeout)
{
	struct sockaddr_storage ss;
	int sslen = sizeof(ss);
	char spec[128];
	struct cconn *cs;
	struct timeval tv = { .tv_sec = timeout };
	int i;

	snprintf(spec, sizeof(spec), strchr(addr, ':') ? "[%s]:%d" : "%s:%d", addr, port);
	if (evutil_parse_sockaddr_port(spec, (struct sockaddr *)&ss, &sslen) < 0) {
		fprintf(stderr, "client: bad address %s\n", spec);
		return 1;
	}
	cbase = event_base_new();
	cs = calloc((size_t)conns, sizeof(*cs));
	if (!cbase || !cs)
		return 1;
	for (i = 0; i < conns; i++) {
		struct cconn *c = &cs[i];

		c->id = i;
		c->total = bytes;
		c->send_state = c->check_state = pat_seed(i);
		c->bev = bufferevent_socket_new(cbase, -1, BEV_OPT_CLOSE_ON_FREE);
		bufferevent_setcb(c->bev, c_read, c_write, c_event, c);
		bufferevent_enable(c->bev, EV_READ | EV_WRITE);
		live++;
		if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&ss, sslen) < 0) {
			/* libevent has already freed nothing; the error comes as an event or here */
			c_finish(c, "connect failed at once");
		}
	}
	if (live > 0) {
		event_base_loopexit(cbase, &tv);
		event_base_dispatch(cbase);
	}
	if (live > 0) {
		for (i = 0; i < conns; i++)
			if (!cs[i].done)
				printf("conn %d timed out (sent %zu, got %zu of %zu)\n", i, cs[i].sent, cs[i].got,
				       cs[i].total);
		return 2;
	}
	if (failures)
		return 1;
	printf("ok %d %zu (backend %s)\n", conns, bytes * (size_t)conns, event_base_get_method(cbase));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "server") == 0)
		return server(atoi(argv[2]));
	if ((argc == 6 || argc == 7) && strcmp(argv[1], "client") == 0)
		return client(argv[2], atoi(argv[3]), atoi(argv[4]), (size_t)strtoull(argv[5], NULL, 10),
			      argc == 7 ? atoi(argv[6]) : 60);
	fprintf(stderr, "usage: evecho server PORT | evecho client ADDR PORT CONNS BYTES [TIMEOUT_S]\n");
	return 64;
}
