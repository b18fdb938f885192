/*
 * dgram.c: the UDP relay.  A UDP socket's carrier is a SOCK_SEQPACKET pair of datagrams, framed with a struct
 * mw_dgram or raw (a connected socket's traffic with its peer): see proto.h.  Datagrams are never merged or split, and never queued here beyond one: a datagram
 * the program is not ready for is dropped and counted, as a full socket receive buffer drops it; a datagram the
 * network is not ready for waits (as a blocking sendto would), and the carrier is not read meanwhile.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ins.h"
#include "mwlib.h"

#define DGRAM_BUDGET 64

/* A frame and the largest payload, plus one byte to tell an oversized message. */
static char payload[sizeof(struct mw_dgram) + MW_DGRAM_MAX + 1];

static bool dgram_is_framed(const void *buf, size_t len)
{
	uint32_t magic;

	if (len < sizeof(struct mw_dgram))
		return false;
	memcpy(&magic, buf, sizeof(magic));
	return magic == MW_DGRAM_MAGIC;
}

void dgram_post_error(struct ins_sock *s, int err)
{
	struct mw_dgram h = { .magic = MW_DGRAM_MAGIC, .flags = MW_DGRAM_ERROR, .error = err };

	sock_event(s, SOCK_EV_ERROR, err);
	/* If the carrier is full the page still has it: the program's next send or receive reports it. */
	if (s->state == INS_CONNECTED)
		send(s->car, "", 0, MSG_DONTWAIT | MSG_NOSIGNAL);
	else
		send(s->car, &h, sizeof(h), MSG_DONTWAIT | MSG_NOSIGNAL);
}

void dgram_kill(struct ins_sock *s)
{
	dgram_post_error(s, ECONNREFUSED);
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
	{
		struct ins_flow *f = flow_udp(s, dst->family ? dst : &s->peer, true);

		if (f)
			flow_bytes(f, true, (uint64_t)n);
	}
	if (!s->local.port) {
		/* The first send bound the socket: the program may ask for its port now. */
		socklen_t l = sizeof(ss);

		if (getsockname(s->real, (struct sockaddr *)&ss, &l) == 0)
			mw_addr_from_sockaddr(&s->local, (struct sockaddr *)&ss, l);
	}
	return 0;
}

/* The datagram the real socket had no room for, again.  Returns -EAGAIN while it still waits, else 0. */
static int up_retry(struct ins_sock *s)
{
	int err;

	if (!s->up.len)
		return 0;
	err = dgram_out(s, &s->udp.up_dst, s->up.buf, s->up.len);
	if (err == -EAGAIN)
		return err;
	sock_want_out(s, true, false);
	if (err)
		dgram_post_error(s, -err);
	free(s->up.buf);
	s->up.buf = NULL;
	s->up.len = 0;
	return 0;
}

/* The program's message of n bytes in payload, checked before use: its destination (none: the peer's) and
 * its data.  Returns false if it is dropped, as a bad datagram is (or refused, with EDESTADDRREQ posted). */
static bool up_parse(struct ins_sock *s, size_t n, struct mw_addr *to, const char **data, size_t *len)
{
	struct mw_dgram h;

	*data = payload;
	*len = n;
	memset(to, 0, sizeof(*to));
	if (n > sizeof(payload)) {
		ins_log(1, "socket %#x: oversized datagram from the program dropped", s->id);
		return false;
	}
	if (dgram_is_framed(payload, n)) {
		memcpy(&h, payload, sizeof(h));
		if (h.flags || (h.addr.family != AF_INET && h.addr.family != AF_INET6)) {
			ins_log(1, "socket %#x: malformed datagram from the program dropped", s->id);
			return false;
		}
		*to = h.addr;
		*data += sizeof(h);
		*len -= sizeof(h);
	} else if (s->state != INS_CONNECTED) {
		dgram_post_error(s, EDESTADDRREQ);
		return false;
	}
	return true;
}

/* Send one datagram of the program's to `to` (family 0: the peer), after policy.  Returns false if the real
 * socket had no room: it waits in up, and the carrier is not read meanwhile. */
static bool up_send(struct ins_sock *s, const struct mw_addr *to, const char *data, size_t len)
{
	const struct mw_addr *d = to->family ? to : &s->peer;
	int err = 0;

	/* A new destination asks the policy first (the shim asked already, with DGRAM_CHECK, but a rule may have
	 * come since, or the program may not use the shim's path). */
	if (!flow_udp_find(s, d))
		err = enforce_udp_send(s, d);
	if (!err)
		err = dgram_out(s, to, data, len);
	if (err == -EAGAIN) {
		s->up.buf = malloc(len + 1);
		if (!s->up.buf)
			return false;
		memcpy(s->up.buf, data, len);
		s->up.len = (uint32_t)len;
		s->udp.up_dst = *to;
		sock_want_out(s, true, true);
		return false;
	}
	if (err)
		dgram_post_error(s, -err);
	return true;
}

/* Whether a read of 0 from the carrier is its end: seqpacket says 0 for an empty datagram too.  The end is the
 * program's close (HUP: returns true) or its SHUT_WR (RDHUP only: it may still receive; up.eof is set). */
static bool up_ended(struct ins_sock *s)
{
	struct pollfd p = { .fd = s->car, .events = POLLRDHUP };

	if (s->car_hup || (poll(&p, 1, 0) == 1 && (p.revents & POLLHUP)))
		return true;
	if (p.revents & POLLRDHUP)
		s->up.eof = true;
	return false;
}

/* program -> network.  Returns true if the carrier is finished (closed by the program). */
static bool dgram_up(struct ins_sock *s)
{
	for (int i = 0; i < DGRAM_BUDGET; i++) {
		struct mw_addr to;
		const char *data;
		size_t len;
		ssize_t n;

		if (up_retry(s) == -EAGAIN || s->up.eof)
			return false;
		n = recv(s->car, payload, sizeof(payload), MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0)
			return errno != EAGAIN && errno != EINTR;
		if (n == 0 && (up_ended(s) || s->up.eof))
			return !s->up.eof;
		if (up_parse(s, (size_t)n, &to, &data, &len) && !up_send(s, &to, data, len))
			return false;
	}
	/* Budget spent with datagrams possibly left in the carrier: its edge has come and gone, so nothing else
	 * brings us back.  Come back on the next loop iteration. */
	sock_runq_add(s);
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
		size_t got;
		ssize_t n = recvmsg(s->real, &m, MSG_DONTWAIT | MSG_TRUNC);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			dgram_post_error(s, errno); /* ECONNREFUSED and friends: ICMP on a connected socket */
			continue;
		}
		got = (size_t)n < sizeof(payload) ? (size_t)n : sizeof(payload);
		memset(&h, 0, sizeof(h));
		h.magic = MW_DGRAM_MAGIC;
		mw_addr_from_sockaddr(&h.addr, (struct sockaddr *)&ss, m.msg_namelen);
		h.len = (uint32_t)n;
		out[0] = (struct iovec){ &h, sizeof(h) };
		out[1] = (struct iovec){ payload, got };
		/* A connected socket receives only from its peer: raw, unless it would look framed, or is empty
		 * (an empty raw message announces an error). */
		if (s->state == INS_CONNECTED && got == (size_t)n && n > 0 && !dgram_is_framed(payload, got)) {
			om.msg_iov = &out[1];
			om.msg_iovlen = 1;
		}
		if (sendmsg(s->car, &om, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
			s->udp.drops++; /* the program is not keeping up: UDP drops */
			continue;
		}
		s->bytes_in += (uint64_t)n;
		ins.bytes_in += (uint64_t)n;
		{
			struct ins_flow *f = flow_udp(s, &h.addr, false);

			if (f)
				flow_bytes(f, false, (uint64_t)n);
		}
	}
	/* Budget spent: come back on the next loop iteration. */
	sock_runq_add(s);
}

void dgram_pump(struct ins_sock *s)
{
	uint64_t before = s->bytes_in + s->bytes_out;

	if (s->dead)
		return;
	if (dgram_up(s)) {
		sock_event(s, SOCK_EV_PROG_CLOSED, 0);
		return;
	}
	dgram_down(s);
	if (s->bytes_in + s->bytes_out != before)
		sock_publish(s);
}

void dgram_car_event(struct ins_ev *ev, uint32_t events)
{
	struct ins_sock *s = container_of(ev, struct ins_sock, ev_car);

	if (s->dead)
		return;
	if (events & (EPOLLHUP | EPOLLERR)) {
		/* Send what the program left behind, then go: a closed UDP socket sends what it was given. */
		s->car_hup = true;
		dgram_up(s);
		sock_event(s, SOCK_EV_PROG_CLOSED, 0);
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
