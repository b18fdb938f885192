/*
 * dgram.c: UDP sockets.  The carrier is a SOCK_SEQPACKET pair; each message is a struct mw_dgram header and
 * the payload.  Here the header is added to what the program sends and taken off what it receives, with the
 * destination or source address in it, so the program sees plain UDP.  Async-signal safe: no locks, no
 * allocation (the iovec array is on the stack).
 */
#include <limits.h>
#include <netinet/in.h>
#include <string.h>

#include "mwlib.h"
#include "shim.h"

/* The largest UDP payload the kernel would send for this family. */
static size_t dgram_max(int family)
{
	return family == AF_INET6 ? 65527 : 65507;
}

void dgram_drop_marker(int fd)
{
	struct mw_dgram h;
	ssize_t n = real.recv(fd, &h, sizeof(h), MSG_PEEK | MSG_DONTWAIT);

	/* The error it announces was reported: like the kernel's sk_err, it must not show as readable. */
	if (n == (ssize_t)sizeof(h) && (h.flags & MW_DGRAM_ERROR))
		real.recv(fd, &h, sizeof(h), MSG_DONTWAIT);
}

ssize_t dgram_sendmsg(int fd, const struct shim_fd *e, const struct msghdr *msg, int flags)
{
	struct iovec iov[IOV_MAX + 1];
	struct mw_dgram h;
	struct msghdr m = { .msg_iov = iov };
	size_t total = 0;
	ssize_t n;
	int err;

	if (msg->msg_iovlen > IOV_MAX)
		return shim_ret(-EMSGSIZE);
	if (flags & MSG_OOB)
		return shim_ret(-EOPNOTSUPP);
	memset(&h, 0, sizeof(h));
	for (size_t i = 0; i < msg->msg_iovlen; i++) {
		iov[i + 1] = msg->msg_iov[i];
		total += msg->msg_iov[i].iov_len;
	}
	if (total > dgram_max(e->family))
		return shim_ret(-EMSGSIZE);
	/* An ICMP error that arrived since the last call is this call's answer, as on a kernel UDP socket. */
	err = page_take_error(e->sock_id);
	if (err) {
		dgram_drop_marker(fd);
		return shim_ret(-err);
	}
	if (msg->msg_name && msg->msg_namelen >= sizeof(sa_family_t) &&
	    ((const struct sockaddr *)msg->msg_name)->sa_family != AF_UNSPEC) {
		err = mw_addr_from_sockaddr(&h.addr, msg->msg_name, msg->msg_namelen);
		if (err)
			return shim_ret(err);
		if (e->family == AF_INET && h.addr.family != AF_INET)
			return shim_ret(-EAFNOSUPPORT);
		if (h.addr.family == AF_INET && e->family == AF_INET6) {
			/* A dual-stack socket sends to IPv4 as a v4-mapped IPv6 address. */
			struct mw_addr v6 = { .family = AF_INET6, .port = h.addr.port };

			memcpy(v6.addr + 10, "\xff\xff", 2);
			memcpy(v6.addr + 12, h.addr.addr, 4);
			h.addr = v6;
		}
		if (!page_dest_known(e->sock_id, &h.addr)) {
			/* A new destination: the errors the kernel gives at once (no route, EACCES for broadcast)
			 * must come from this call, so ask mwinsd once; it also binds the socket, as a first send
			 * does, so getsockname shows the port right after. */
			struct mw_req q = { .cmd = MW_CMD_DGRAM_CHECK, .sock_id = e->sock_id };
			struct mw_rsp r;

			q.u.addr = h.addr;
			err = chan_call(&q, -1, &r, NULL);
			if (!err)
				err = r.ret;
			if (err)
				return shim_ret(err);
			page_dest_set(e->sock_id, &h.addr);
		}
	} else {
		struct mw_sock_rec rec;

		if (page_read(e->sock_id, &rec) < 0 || rec.state != MW_SS_CONNECTED)
			return shim_ret(-EDESTADDRREQ);
	}
	iov[0] = (struct iovec){ &h, sizeof(h) };
	m.msg_iovlen = msg->msg_iovlen + 1;
	n = real.sendmsg(fd, &m, (flags & MSG_DONTWAIT) | MSG_NOSIGNAL);
	if (n < 0)
		return shim_ret(errno == EPIPE ? -ENETDOWN : -errno); /* EPIPE: the INS is gone */
	return n - (ssize_t)sizeof(h);
}

ssize_t dgram_recvmsg(int fd, const struct shim_fd *e, struct msghdr *msg, int flags)
{
	struct iovec iov[IOV_MAX + 1];
	struct mw_dgram h;
	struct msghdr m = { .msg_iov = iov };
	int cflags = flags & (MSG_PEEK | MSG_DONTWAIT);

	if (msg->msg_iovlen > IOV_MAX)
		return shim_ret(-EMSGSIZE);
	if (flags & (MSG_OOB | MSG_ERRQUEUE))
		return shim_ret(flags & MSG_OOB ? -EOPNOTSUPP : -EAGAIN);
	for (size_t i = 0; i < msg->msg_iovlen; i++)
		iov[i + 1] = msg->msg_iov[i];
	m.msg_iovlen = msg->msg_iovlen + 1;
	for (;;) {
		ssize_t n, len;
		int err;

		iov[0] = (struct iovec){ &h, sizeof(h) };
		m.msg_flags = 0;
		n = real.recvmsg(fd, &m, cflags);
		if (n < 0)
			return n;
		if (n == 0)
			return shim_ret(-ENETDOWN); /* the carrier ended: the INS is gone */
		if ((size_t)n < sizeof(h))
			continue; /* not a message mwinsd may send: dropped */
		if (h.flags & MW_DGRAM_ERROR) {
			if (cflags & MSG_PEEK) {
				/* Take the marker off the queue, or a peek would find it for ever. */
				struct iovec one = { &h, sizeof(h) };
				struct msghdr om = { .msg_iov = &one, .msg_iovlen = 1 };

				real.recvmsg(fd, &om, MSG_DONTWAIT);
			}
			err = page_take_error(e->sock_id);
			if (err)
				return shim_ret(-err);
			continue; /* a send already reported it */
		}
		len = n - (ssize_t)sizeof(h);
		msg->msg_flags = 0;
		if ((m.msg_flags & MSG_TRUNC) || h.len > (uint32_t)len)
			msg->msg_flags |= MSG_TRUNC;
		if (msg->msg_name) {
			struct sockaddr_storage ss;
			int sl = mw_addr_to_sockaddr(&h.addr, &ss);

			if (sl < 0)
				msg->msg_namelen = 0;
			else
				mw_sockaddr_copy_out(msg->msg_name, &msg->msg_namelen, &ss, (socklen_t)sl);
		}
		msg->msg_controllen = 0;
		if (flags & MSG_TRUNC)
			return h.len <= MW_DGRAM_MAX ? (ssize_t)h.len : len;
		return len;
	}
}
