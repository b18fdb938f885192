/*
 * dgram.c: UDP sockets.  The carrier is a SOCK_SEQPACKET pair of datagrams, framed (struct mw_dgram, with the
 * destination or source) or raw (a connected socket's traffic with its peer); proto.h says which is which.
 * Here frames are added to what the program sends and taken off what it receives, so the program sees plain
 * UDP.  Async-signal safe: no locks, no allocation (the iovec array is on the stack).
 */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
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

	/* The error it announces was reported: like the kernel's sk_err, it must not show as readable.  (An
	 * empty message at the head of a connected socket is taken for the announcement.) */
	if (n == 0 || (n == (ssize_t)sizeof(h) && h.magic == MW_DGRAM_MAGIC && (h.flags & MW_DGRAM_ERROR)))
		real.recv(fd, &h, sizeof(h), MSG_DONTWAIT);
}

static bool looks_framed(const struct iovec *iov, size_t cnt)
{
	uint32_t magic;
	size_t got = 0, total = 0;

	for (size_t i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	if (total < sizeof(struct mw_dgram))
		return false;
	for (size_t i = 0; i < cnt && got < sizeof(magic); i++) {
		size_t k = iov[i].iov_len < sizeof(magic) - got ? iov[i].iov_len : sizeof(magic) - got;

		memcpy((char *)&magic + got, iov[i].iov_base, k);
		got += k;
	}
	return magic == MW_DGRAM_MAGIC;
}

ssize_t dgram_sendmsg(int fd, const struct shim_fd *e, const struct msghdr *msg, int flags)
{
	struct iovec iov[IOV_MAX + 1];
	struct mw_dgram h;
	struct mw_sock_rec rec;
	struct msghdr m = { .msg_iov = iov };
	size_t total = 0;
	bool framed = true;
	ssize_t n;
	int err;

	if (msg->msg_iovlen > IOV_MAX)
		return shim_ret(-EMSGSIZE);
	if (flags & MSG_OOB)
		return shim_ret(-EOPNOTSUPP);
	memset(&h, 0, sizeof(h));
	h.magic = MW_DGRAM_MAGIC;
	for (size_t i = 0; i < msg->msg_iovlen; i++) {
		iov[i + 1] = msg->msg_iov[i];
		total += msg->msg_iov[i].iov_len;
	}
	if (total > dgram_max(e->family))
		return shim_ret(-EMSGSIZE);
	/* An ICMP error that arrived since the last call is this call's answer, as on a kernel UDP socket. */
	err = page_take_error(e);
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
		if (!page_dest_known(e, &h.addr)) {
			/* A new destination: the errors the kernel gives at once (no route, EACCES for broadcast)
			 * must come from this call, so ask mwinsd once; it also binds the socket, as a first send
			 * does, so getsockname shows the port right after. */
			struct mw_req q = { .cmd = MW_CMD_DGRAM_CHECK, .sock_id = e->sock_id };
			struct mw_rsp r;

			q.u.addr = h.addr;
			err = chan_call_on(e, &q, -1, &r, NULL);
			if (!err)
				err = r.ret;
			if (err)
				return shim_ret(err);
			page_dest_set(e, &h.addr);
		}
	} else {
		if (page_read(e, &rec) < 0 || rec.state != MW_SS_CONNECTED)
			return shim_ret(-EDESTADDRREQ);
		/* To the connected peer: raw, unless the payload itself would pass for a frame. */
		framed = looks_framed(msg->msg_iov, msg->msg_iovlen);
		h.addr = rec.peer;
	}
	iov[0] = (struct iovec){ &h, sizeof(h) };
	m.msg_iov = framed ? iov : iov + 1;
	m.msg_iovlen = msg->msg_iovlen + framed;
	n = real.sendmsg(fd, &m, (flags & MSG_DONTWAIT) | MSG_NOSIGNAL);
	if (n < 0 && errno == EPIPE && (page_shut(e) & SHIM_SHUT_WR)) {
		if (!(flags & MSG_NOSIGNAL))
			raise(SIGPIPE);
		return shim_ret(-EPIPE);
	}
	if (n < 0)
		return shim_ret(errno == EPIPE ? -ENETDOWN : -errno); /* EPIPE: the INS is gone */
	return framed ? n - (ssize_t)sizeof(h) : n;
}

/* Write len bytes at logical offset off of an iovec array (bounded by its capacity). */
static void iov_put(const struct iovec *iov, size_t cnt, size_t off, const char *src, size_t len)
{
	for (size_t i = 0; i < cnt && len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t k = iov[i].iov_len - off < len ? iov[i].iov_len - off : len;

		memcpy((char *)iov[i].iov_base + off, src, k);
		src += k;
		len -= k;
		off = 0;
	}
}

static char *iov_at(const struct iovec *iov, size_t cnt, size_t off)
{
	for (size_t i = 0; i < cnt; i++) {
		if (off < iov[i].iov_len)
			return (char *)iov[i].iov_base + off;
		off -= iov[i].iov_len;
	}
	return NULL;
}

/*
 * A raw message was read as [our header buffer][the program's buffers]: its first bytes sit in head.  Put them
 * in front of the rest, within the buffers' capacity cap; tail bytes are already at offset 0.
 */
static void iov_unsplit(const struct iovec *iov, size_t cnt, size_t cap, const char *head, size_t headlen,
			size_t tail)
{
	size_t len = headlen + tail < cap ? headlen + tail : cap;

	if (cnt == 1) {
		if (len > headlen)
			memmove((char *)iov[0].iov_base + headlen, iov[0].iov_base, len - headlen);
	} else {
		for (size_t k = len; k-- > headlen;)
			*iov_at(iov, cnt, k) = *iov_at(iov, cnt, k - headlen);
	}
	iov_put(iov, cnt, 0, head, headlen < len ? headlen : len);
}

ssize_t dgram_recvmsg(int fd, const struct shim_fd *e, struct msghdr *msg, int flags)
{
	struct iovec iov[IOV_MAX + 1];
	struct mw_dgram h;
	struct msghdr m = { .msg_iov = iov };
	int cflags = (flags & (MSG_PEEK | MSG_DONTWAIT)) | MSG_TRUNC;
	size_t cap = 0;

	if (msg->msg_iovlen > IOV_MAX)
		return shim_ret(-EMSGSIZE);
	if (flags & (MSG_OOB | MSG_ERRQUEUE))
		return shim_ret(flags & MSG_OOB ? -EOPNOTSUPP : -EAGAIN);
	for (size_t i = 0; i < msg->msg_iovlen; i++) {
		iov[i + 1] = msg->msg_iov[i];
		cap += msg->msg_iov[i].iov_len;
	}
	m.msg_iovlen = msg->msg_iovlen + 1;
	for (;;) {
		struct mw_addr from;
		size_t len, got;
		ssize_t n;
		int err;

		iov[0] = (struct iovec){ &h, sizeof(h) };
		m.msg_flags = 0;
		n = real.recvmsg(fd, &m, cflags); /* with MSG_TRUNC: the message's whole length */
		if (n < 0)
			return n;
		if ((size_t)n >= sizeof(h) && h.magic == MW_DGRAM_MAGIC) {
			if (h.flags & MW_DGRAM_ERROR) {
				if (cflags & MSG_PEEK)
					dgram_drop_marker(fd);
				err = page_take_error(e);
				if (err)
					return shim_ret(-err);
				continue; /* a send already reported it */
			}
			len = h.len <= MW_DGRAM_MAX ? h.len : (size_t)n - sizeof(h);
			got = (size_t)n - sizeof(h) < cap ? (size_t)n - sizeof(h) : cap;
			from = h.addr;
		} else {
			struct mw_sock_rec rec;

			if (page_read(e, &rec) < 0)
				memset(&rec, 0, sizeof(rec));
			if (n == 0) {
				/* An empty message: an error's announcement, a real empty datagram, or the end that
				 * our own SHUT_RD made (where a kernel UDP socket returns 0 only to a blocking read). */
				err = page_take_error(e);
				if (err)
					return shim_ret(-err);
				if (page_shut(e) & SHIM_SHUT_RD) {
					int fl = real.fcntl(fd, F_GETFL);

					return (flags & MSG_DONTWAIT) || (fl >= 0 && (fl & O_NONBLOCK)) ? shim_ret(-EAGAIN) : 0;
				}
				if (rec.state != MW_SS_CONNECTED && rec.state != MW_SS_OPEN)
					return shim_ret(-ENETDOWN); /* the carrier ended: the INS is gone */
			}
			len = (size_t)n;
			got = len < cap ? len : cap;
			iov_unsplit(msg->msg_iov, msg->msg_iovlen, cap, (const char *)&h,
				    len < sizeof(h) ? len : sizeof(h), len > sizeof(h) ? len - sizeof(h) : 0);
			from = rec.peer;
		}
		msg->msg_flags = len > got ? MSG_TRUNC : 0;
		if (msg->msg_name) {
			struct sockaddr_storage ss;
			int sl = mw_addr_to_sockaddr(&from, &ss);

			if (sl < 0)
				msg->msg_namelen = 0;
			else
				mw_sockaddr_copy_out(msg->msg_name, &msg->msg_namelen, &ss, (socklen_t)sl);
		}
		msg->msg_controllen = 0;
		return (flags & MSG_TRUNC) ? (ssize_t)len : (ssize_t)got;
	}
}
