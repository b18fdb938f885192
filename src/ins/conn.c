/*
 * conn.c: the small servers mwinsd runs beside the data path: the control API, the event stream and the
 * metrics endpoint.  Each is a listening socket whose connections read lines and queue output.
 *
 * None of them may slow the data path: every fd is non-blocking, input is read in bounded lines (a longer
 * one closes the connection), and output waits in a per-connection queue with a bound (ops->max_out); what
 * does not fit is dropped and counted, never waited for.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ins.h"
#include "mwlib.h"

struct conn_listener {
	struct ins_ev ev;
	struct list link;       /* in listeners */
	const struct ins_conn_ops *ops;
	struct list *conns;
	uint16_t tcp_port;      /* a TCP listener's port, network order (0 for AF_UNIX) */
};

static struct list dead_conns = { &dead_conns, &dead_conns };
static struct list listeners = { &listeners, &listeners };

static void conn_set_out(struct ins_conn *c, bool on)
{
	struct epoll_event e = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = &c->ev };

	if (c->want_out == on)
		return;
	if (epoll_ctl(ins.epfd, EPOLL_CTL_MOD, c->ev.fd, &e) == 0)
		c->want_out = on;
}

void conn_close(struct ins_conn *c)
{
	if (c->dead)
		return;
	c->dead = true;
	epoll_ctl(ins.epfd, EPOLL_CTL_DEL, c->ev.fd, NULL);
	list_del(&c->link);
	list_add_tail(&dead_conns, &c->link);
	if (c->ops->gone)
		c->ops->gone(c);
}

void conn_reap(void)
{
	while (!list_empty(&dead_conns)) {
		struct ins_conn *c = container_of(dead_conns.next, struct ins_conn, link);

		list_del(&c->link);
		close(c->ev.fd);
		free(c->in);
		free(c->out);
		free(c);
	}
}

void conn_finish(struct ins_conn *c)
{
	c->close_after_flush = true;
	if (c->out_len == c->out_off)
		conn_close(c);
}

static int conn_flush(struct ins_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->ev.fd, c->out + c->out_off, c->out_len - c->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				conn_set_out(c, true);
				return 0;
			}
			return -errno;
		}
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
	conn_set_out(c, false);
	if (c->close_after_flush)
		conn_close(c);
	return 0;
}

int conn_write(struct ins_conn *c, const char *buf, size_t len)
{
	if (c->dead)
		return -EPIPE;
	if (c->out_len - c->out_off + len > c->ops->max_out) {
		c->dropped++;
		return -ENOBUFS;
	}
	if (c->out_off && c->out_len + len > c->out_cap) {
		/* Make room by moving the unsent part to the front before growing. */
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		char *p;

		while (cap < c->out_len + len)
			cap *= 2;
		p = realloc(c->out, cap);
		if (!p) {
			c->dropped++;
			return -ENOBUFS;
		}
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, buf, len);
	c->out_len += len;
	if (!c->want_out) {
		int err = conn_flush(c);

		if (err) {
			conn_close(c);
			return err;
		}
	}
	return 0;
}

static void conn_read(struct ins_conn *c)
{
	for (int budget = 16; budget > 0 && !c->dead; budget--) {
		char *nl;
		ssize_t n;

		if (c->in_cap - c->in_len < 1024) {
			size_t cap = c->in_cap ? c->in_cap * 2 : 4096;
			char *p;

			if (cap > c->ops->max_line + 4096)
				cap = c->ops->max_line + 4096;
			if (cap <= c->in_cap) {
				ins_log(1, "a control connection sent a line over %zu bytes: closed", c->ops->max_line);
				conn_close(c);
				return;
			}
			p = realloc(c->in, cap);
			if (!p) {
				conn_close(c);
				return;
			}
			c->in = p;
			c->in_cap = cap;
		}
		n = recv(c->ev.fd, c->in + c->in_len, c->in_cap - c->in_len - 1, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			conn_close(c);
			return;
		}
		c->in_len += (size_t)n;
		while (!c->dead && (nl = memchr(c->in, '\n', c->in_len))) {
			size_t len = (size_t)(nl - c->in), used = len + 1;

			*nl = 0;
			if (len && nl[-1] == '\r')
				nl[--len] = 0;
			if (c->ops->line(c, c->in, len) < 0) {
				conn_close(c);
				return;
			}
			if (c->dead)
				return;
			memmove(c->in, c->in + used, c->in_len - used);
			c->in_len -= used;
		}
		if (c->in_len > c->ops->max_line) {
			ins_log(1, "a control connection sent a line over %zu bytes: closed", c->ops->max_line);
			conn_close(c);
			return;
		}
	}
}

static void conn_event(struct ins_ev *ev, uint32_t events)
{
	struct ins_conn *c = container_of(ev, struct ins_conn, ev);

	if (c->dead)
		return;
	if ((events & EPOLLOUT) && conn_flush(c) < 0) {
		conn_close(c);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		conn_read(c);
}

/* Does pid's network namespace have an interface besides lo?  (/proc/PID/net/dev is that namespace's view.) */
static bool netns_has_network(pid_t pid)
{
	char path[64], line[256];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/net/dev", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':'), *name = line;

		if (!colon)
			continue; /* the two header lines */
		*colon = 0;
		name += strspn(name, " ");
		found = strcmp(name, "lo") != 0;
	}
	fclose(f);
	return found;
}

/* Who is an operator: root or mwinsd's own user (the sockets' 0600 mode is the first wall), from mwinsd's
 * own network namespace or from one that has a network.  A protected program always runs in a namespace
 * mwrun made with nothing but lo, so the second rule keeps it out even when it is root on the host's files
 * (root under mwrun, or root in a user namespace that maps 0 to 0) or runs as mwinsd's user (an embedded
 * mwinsd under a non-root mwrun).  Kernel facts only: SO_PEERCRED, and /proc of the pid it names.
 * NULL if allowed, else why. */
static const char *conn_peer_refused(pid_t pid, uid_t uid)
{
	char path[64];
	struct stat peer, self;

	if (uid != 0 && uid != geteuid())
		return "not root and not mwinsd's user";
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	if (pid <= 0 || stat(path, &peer) < 0 || stat("/proc/self/ns/net", &self) < 0)
		return "its network namespace can't be read";
	if ((peer.st_ino != self.st_ino || peer.st_dev != self.st_dev) && !netns_has_network(pid))
		return "it runs in a loopback-only network namespace (a protected program's)";
	return NULL;
}

static void listen_event(struct ins_ev *ev, uint32_t events)
{
	struct conn_listener *srv = container_of(ev, struct conn_listener, ev);

	(void)events;
	for (int i = 0; i < 16; i++) {
		struct ins_conn *c;
		struct ucred cred = { .uid = (uid_t)-1 };
		socklen_t len = sizeof(cred);
		int fd = accept4(ev->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len); /* TCP (metrics): stays -1 */
		c->uid = cred.uid;
		c->pid = cred.pid;
		if (srv->ops->operators_only) {
			const char *why = conn_peer_refused(cred.pid, cred.uid);

			if (why) {
				ins_log(0, "%s connection from pid %d uid %d refused: %s", srv->ops->name,
					(int)cred.pid, (int)cred.uid, why);
				free(c);
				close(fd);
				continue;
			}
		}
		c->ops = srv->ops;
		if (ins_ev_add(&c->ev, fd, EPOLLIN, conn_event) < 0) {
			free(c);
			close(fd);
			continue;
		}
		list_add_tail(srv->conns, &c->link);
	}
}

/* HOST:PORT or [V6]:PORT into ss. */
static int parse_hostport(const char *where, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[128];
	const char *colon = strrchr(where, ':'), *h = where;
	size_t hl;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_PASSIVE }, *ai;

	if (!colon || colon == where)
		return -EINVAL;
	hl = (size_t)(colon - where);
	if (*h == '[' && colon[-1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = 0;
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
		return -EINVAL;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

int conn_listen(const char *where, const struct ins_conn_ops *ops, struct list *conns)
{
	struct conn_listener *l;
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd, one = 1, err;
	bool unix_path = strchr(where, '/') != NULL;

	if (unix_path) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&ss;

		sun->sun_family = AF_UNIX;
		if (strlen(where) >= sizeof(sun->sun_path))
			return -ENAMETOOLONG;
		strcpy(sun->sun_path, where);
		len = sizeof(*sun);
	} else if (parse_hostport(where, &ss, &len) < 0) {
		return -EINVAL;
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		free(l);
		return -errno;
	}
	if (unix_path)
		unlink(where);
	else
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || (unix_path && chmod(where, 0600) < 0) ||
	    listen(fd, 64) < 0) {
		err = -errno;
		close(fd);
		free(l);
		return err;
	}
	l->ops = ops;
	l->conns = conns;
	if (!unix_path) {
		struct mw_addr a;

		if (mw_addr_from_sockaddr(&a, (struct sockaddr *)&ss, len) == 0)
			l->tcp_port = a.port;
	}
	err = ins_ev_add(&l->ev, fd, EPOLLIN, listen_event);
	if (err) {
		close(fd);
		free(l);
		return err;
	}
	list_add_tail(&listeners, &l->link);
	return 0;
}

/* Is a one of this host's own addresses?  The kernel's answer: a connected UDP socket to a local address
 * takes that same address as its source (no packet is sent). */
static bool addr_is_local(const struct mw_addr *a)
{
	struct sockaddr_storage ss, src;
	socklen_t len = sizeof(src);
	int n = mw_addr_to_sockaddr(a, &ss), fd;
	bool local = false;

	if (n < 0)
		return false;
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	if (connect(fd, (struct sockaddr *)&ss, (socklen_t)n) == 0 &&
	    getsockname(fd, (struct sockaddr *)&src, &len) == 0) {
		struct mw_addr s;

		local = mw_addr_from_sockaddr(&s, (struct sockaddr *)&src, len) == 0 &&
			memcmp(s.addr, a->addr, sizeof(s.addr)) == 0;
	}
	close(fd);
	return local;
}

/* Loopback (127/8, ::1) or unspecified (0.0.0.0, ::: the kernel takes either as this host) for a, an
 * IPv4 address in the IPv4 form. */
static bool addr_is_self(const struct mw_addr *a)
{
	static const uint8_t zero[16], one6[16] = { [15] = 1 };

	if (a->family == AF_INET)
		return a->addr[0] == 127 || !memcmp(a->addr, zero, 4);
	return !memcmp(a->addr, zero, 16) || !memcmp(a->addr, one6, 16);
}

bool conn_is_own_service(const struct mw_addr *dst)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	struct mw_addr d = *dst;

	if (d.family == AF_INET6 && !memcmp(d.addr, mapped, sizeof(mapped))) {
		/* ::ffff:a.b.c.d is a.b.c.d */
		memmove(d.addr, d.addr + 12, 4);
		memset(d.addr + 4, 0, 12);
		d.family = AF_INET;
	}
	/* By port: any address of this host reaches a wildcard or dual-stack listener, and a local address is
	 * refused on that port whatever the listener's own (over-refusing another local server on the same
	 * port is the price of not reasoning about which address reaches which listener). */
	for (struct list *i = listeners.next; i != &listeners; i = i->next) {
		uint16_t port = container_of(i, struct conn_listener, link)->tcp_port;

		if (port && port == d.port && (addr_is_self(&d) || addr_is_local(&d)))
			return true;
	}
	return false;
}

void conn_shutdown(void)
{
	while (!list_empty(&listeners)) {
		struct conn_listener *l = container_of(listeners.next, struct conn_listener, link);

		list_del(&l->link);
		while (!list_empty(l->conns))
			conn_close(container_of(l->conns->next, struct ins_conn, link));
		close(l->ev.fd);
		free(l);
	}
	conn_reap();
}
