/*
 * dgram.c: the UDP relay.  A UDP socket's carrier is a SOCK_SEQPACKET pair; each message is a struct mw_dgram
 * header and the payload.  Datagrams are never merged or split, and never queued here beyond one: a datagram
 * the program is not ready for is dropped and counted, as a full socket receive buffer drops it; a datagram the
 * network is not ready for waits (as a blocking sendto would), and the carrier is not read meanwhile.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ins.h"
#include "mwlib.h"

#define DGRAM_BUDGET 64

static char payload[MW_DGRAM_MAX + 1];

void dgram_post_error(struct ins_sock *s, int err)
{
	struct mw_dgram h = { .flags = MW_DGRAM_ERROR, .error = err };

	group_rec_publish(s, s->state == INS_CONNECTED ? MW_SS_CONNECTED : MW_SS_OPEN, err);
	h.error_seq = s->group->errseq[s->slot];
	/* If the carrier is full the page still has it: the program's next send or receive reports it. */
	send(s->car, &h, sizeof(h), MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Send one datagram on the real socket.  Returns 0, -EAGAIN (keep it), or another error (reported). */
static int dgram_out(struct ins_sock *s, const struct mw_addr *dst, const char *buf, size_t len)
{
	struct sockaddr_storage ss;
	ssize_t n;
	int sl = 0;

	if (dst->family) {
		sl = mw_addr_to_sockaddr(dst, &ss);
		if (sl < 0)
			return -EINVAL;
	}
	n = sendto(s->real, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL, sl ? (struct sockaddr *)&ss : NULL,
		   (socklen_t)sl);
	if (n < 0)
		return -errno;
	s->bytes_out += (uint64_t)n;
	ins.bytes_out += (uint64_t)n;
	if (!s->local.port) {
		/* The first send bound the socket: the program may ask for its port now. */
		socklen_t l = sizeof(ss);

		if (getsockname(s->real, (struct sockaddr *)&ss, &l) == 0)
			mw_addr_from_sockaddr(&s->local, (struct sockaddr *)&ss, l);
	}
	return 0;
}

/* program -> network.  Returns true if the carrier is finished (closed by the program). */
static bool dgram_up(struct ins_sock *s)
{
	for (int i = 0; i < DGRAM_BUDGET; i++) {
		struct mw_dgram h;
		struct iovec iov[2] = { { &h, sizeof(h) }, { payload, sizeof(payload) } };
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
		ssize_t n;
		int err;

		if (s->up.len) {
			err = dgram_out(s, &s->up_dst, s->up.buf, s->up.len);
			if (err == -EAGAIN)
				return false;
			if (err)
				dgram_post_error(s, -err);
			free(s->up.buf);
			s->up.buf = NULL;
			s->up.len = 0;
		}
		n = recvmsg(s->car, &m, MSG_DONTWAIT);
		if (n < 0)
			return errno != EAGAIN && errno != EINTR;
		if (n == 0)
			return true;
		/* The program's message: checked before use.  A malformed one is dropped, as a bad datagram is. */
		if ((size_t)n < sizeof(h) || (m.msg_flags & MSG_TRUNC) || h.flags ||
		    (h.addr.family && h.addr.family != s->domain)) {
			ins_log(1, "socket %#x: malformed datagram from the program dropped", s->id);
			continue;
		}
		err = dgram_out(s, &h.addr, payload, (size_t)n - sizeof(h));
		if (err == -EAGAIN) {
			s->up.buf = malloc((size_t)n - sizeof(h) + 1);
			if (!s->up.buf)
				return false;
			memcpy(s->up.buf, payload, (size_t)n - sizeof(h));
			s->up.len = (uint32_t)((size_t)n - sizeof(h));
			s->up_dst = h.addr;
			return false;
		}
		if (err)
			dgram_post_error(s, -err);
	}
	return false;
}

/* network -> program */
static void dgram_down(struct ins_sock *s)
{
	for (int i = 0; i < DGRAM_BUDGET; i++) {
		struct sockaddr_storage ss;
		struct mw_dgram h;
		struct iovec iov = { payload, sizeof(payload) };
		struct msghdr m = { .msg_name = &ss, .msg_namelen = sizeof(ss), .msg_iov = &iov, .msg_iovlen = 1 };
		struct iovec out[2];
		struct msghdr om = { .msg_iov = out, .msg_iovlen = 2 };
		ssize_t n = recvmsg(s->real, &m, MSG_DONTWAIT | MSG_TRUNC);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			dgram_post_error(s, errno); /* ECONNREFUSED and friends: ICMP on a connected socket */
			continue;
		}
		memset(&h, 0, sizeof(h));
		mw_addr_from_sockaddr(&h.addr, (struct sockaddr *)&ss, m.msg_namelen);
		h.len = (uint32_t)n;
		out[0] = (struct iovec){ &h, sizeof(h) };
		out[1] = (struct iovec){ payload, (size_t)n < sizeof(payload) ? (size_t)n : sizeof(payload) };
		if (sendmsg(s->car, &om, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
			s->drops++; /* the program is not keeping up: UDP drops */
			continue;
		}
		s->bytes_in += (uint64_t)n;
		ins.bytes_in += (uint64_t)n;
	}
	/* Budget spent: come back on the next loop iteration. */
	if (list_empty(&s->runq))
		list_add_tail(&ins.runq, &s->runq);
}

void dgram_pump(struct ins_sock *s)
{
	uint64_t before = s->bytes_in + s->bytes_out;

	if (s->dead)
		return;
	if (dgram_up(s)) {
		sock_free_deferred(s);
		return;
	}
	dgram_down(s);
	if (s->bytes_in + s->bytes_out != before)
		group_rec_publish(s, s->state == INS_CONNECTED ? MW_SS_CONNECTED : MW_SS_OPEN, 0);
}

void dgram_car_event(struct ins_ev *ev, uint32_t events)
{
	struct ins_sock *s = container_of(ev, struct ins_sock, ev_car);

	if (s->dead)
		return;
	if (events & (EPOLLHUP | EPOLLERR)) {
		/* Send what the program left behind, then go: a closed UDP socket sends what it was given. */
		dgram_up(s);
		sock_free_deferred(s);
		return;
	}
	dgram_pump(s);
}

void dgram_real_event(struct ins_ev *ev, uint32_t events)
{
	struct ins_sock *s = container_of(ev, struct ins_sock, ev_real);

	(void)events;
	dgram_pump(s);
}
