/*
 * respond.c: a client's answers.  Sent at once when the client's socket has room; otherwise queued, in order,
 * with the descriptor each carries, up to MW_MAX_PENDING_RSP, and the client dropped if it falls further behind.
 * Anything that answers a client (client.c now, relay.c for a connect that completes later) comes here.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "ins.h"
#include "mwlib.h"

void client_kill(struct ins_client *c, const char *why)
{
	if (c->dead)
		return;
	ins_log(c->group ? 1 : 2, "client pid %d: disconnected: %s", (int)c->pid, why);
	c->dead = true;
	idle_client_gone(c);
	epoll_ctl(ins.epfd, EPOLL_CTL_DEL, c->ev.fd, NULL);
}

static int client_flush(struct ins_client *c)
{
	while (c->q_len) {
		struct ins_rsp_q *e = &c->q[c->q_head];
		ssize_t n = mw_send_fd(c->ev.fd, &e->rsp, sizeof(e->rsp), e->fd, MSG_DONTWAIT);

		if (n == -EAGAIN)
			return -EAGAIN;
		if (e->fd >= 0)
			close(e->fd);
		c->q_head = (c->q_head + 1) % c->q_cap;
		c->q_len--;
		if (n < 0)
			return (int)n;
	}
	return 0;
}

static void client_want_out(struct ins_client *c, bool on)
{
	struct epoll_event e = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = &c->ev };

	epoll_ctl(ins.epfd, EPOLL_CTL_MOD, c->ev.fd, &e);
}

void client_respond(struct ins_client *c, const struct mw_rsp *r, int fd)
{
	struct ins_rsp_q *e;

	if (c->dead)
		goto drop;
	if (!c->q_len) {
		ssize_t n = mw_send_fd(c->ev.fd, r, sizeof(*r), fd, MSG_DONTWAIT);

		if (n == (ssize_t)sizeof(*r))
			goto drop; /* sent: our copy of fd is no longer needed */
		if (n != -EAGAIN) {
			client_kill(c, "send failed");
			goto drop;
		}
	}
	/* The client is not reading its responses.  Queue a bounded number, then give up on it. */
	if (c->q_len == c->q_cap) {
		uint32_t cap = c->q_cap ? c->q_cap * 2 : 16, i;
		struct ins_rsp_q *q;

		if (cap > MW_MAX_PENDING_RSP) {
			client_kill(c, "does not read its responses");
			goto drop;
		}
		q = malloc(cap * sizeof(*q));
		if (!q) {
			client_kill(c, "out of memory");
			goto drop;
		}
		for (i = 0; i < c->q_len; i++)
			q[i] = c->q[(c->q_head + i) % c->q_cap];
		free(c->q);
		c->q = q;
		c->q_cap = cap;
		c->q_head = 0;
	}
	e = &c->q[(c->q_head + c->q_len) % c->q_cap];
	e->rsp = *r;
	e->fd = fd;
	if (c->q_len++ == 0)
		client_want_out(c, true);
	return;
drop:
	if (fd >= 0)
		close(fd);
}

void client_writable(struct ins_client *c)
{
	int err = client_flush(c);

	if (err && err != -EAGAIN)
		client_kill(c, "send failed");
	else if (!err)
		client_want_out(c, false);
}
