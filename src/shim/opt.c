/*
 * opt.c: socket options, names, fcntl and ioctl.  What the shared page knows (addresses, SO_ERROR) is answered
 * from it with no round trip; what the carrier itself implements (timeouts, O_NONBLOCK, FIONREAD) stays on the
 * carrier; everything else is asked of the real socket in mwinsd.
 */
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>

#include "mwlib.h"
#include "shim.h"

int shim_addr_out(const struct mw_addr *a, int family, struct sockaddr *addr, socklen_t *addrlen)
{
	struct sockaddr_storage ss;
	struct mw_addr any = { .family = (uint16_t)family };
	int len;

	if (!addr || !addrlen)
		return -EFAULT;
	if ((int)*addrlen < 0)
		return -EINVAL;
	len = mw_addr_to_sockaddr(a->family ? a : &any, &ss);
	if (len < 0)
		return -EIO;
	mw_sockaddr_copy_out(addr, addrlen, &ss, (socklen_t)len);
	return 0;
}

SHIM_EXPORT int getsockname(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
	struct mw_sock_rec rec = { 0 };
	struct shim_fd e;
	int err;

	real_init();
	if (fdtab_sock(fd, &e) == SHIM_NONE)
		return real.getsockname(fd, addr, addrlen);
	if (e.kind != SHIM_DEAD) {
		err = page_read(&e, &rec);
		if (err && err != -ESTALE)
			return shim_ret(err);
		if (err)
			memset(&rec, 0, sizeof(rec));
	}
	return shim_ret(shim_addr_out(&rec.local, e.family, addr, addrlen));
}

SHIM_EXPORT int getpeername(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
	struct mw_sock_rec rec;
	struct shim_fd e;
	int err;

	real_init();
	if (fdtab_sock(fd, &e) == SHIM_NONE)
		return real.getpeername(fd, addr, addrlen);
	if (e.kind != SHIM_STREAM && e.kind != SHIM_DGRAM)
		return shim_ret(-ENOTCONN);
	err = page_read(&e, &rec);
	if (err)
		return shim_ret(err == -ESTALE ? -ENOTCONN : err);
	if (rec.state != MW_SS_CONNECTED || !rec.peer.family)
		return shim_ret(-ENOTCONN);
	return shim_ret(shim_addr_out(&rec.peer, e.family, addr, addrlen));
}

static int int_out(void *val, socklen_t *len, int v)
{
	if (!val || !len || (int)*len < 0)
		return -EFAULT;
	if (*len >= sizeof(int)) {
		memcpy(val, &v, sizeof(int));
		*len = sizeof(int);
	} else if (*len > 0) {
		/* The kernel copies what fits of a short buffer. */
		memcpy(val, &v, *len);
	}
	return 0;
}

SHIM_EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	struct mw_req q = { .cmd = MW_CMD_GETSOCKOPT };
	struct mw_rsp r;
	struct shim_fd e;
	int err;

	real_init();
	if (fdtab_sock(fd, &e) == SHIM_NONE)
		return real.getsockopt(fd, level, name, val, len);
	if (level == SOL_SOCKET) {
		switch (name) {
		case SO_ERROR: {
			int dummy;
			socklen_t dl = sizeof(dummy);

			int pending;

			/* The carrier's own error is only our signal; the page holds the real one. */
			real.getsockopt(fd, SOL_SOCKET, SO_ERROR, &dummy, &dl);
			pending = e.kind == SHIM_DEAD ? 0 : page_take_error(&e);
			if (pending && e.kind == SHIM_DGRAM)
				dgram_drop_marker(fd);
			return shim_ret(int_out(val, len, pending));
		}
		case SO_TYPE:
			return shim_ret(int_out(val, len, e.kind == SHIM_DGRAM ? SOCK_DGRAM : SOCK_STREAM));
		case SO_DOMAIN:
			return shim_ret(int_out(val, len, e.family));
		case SO_PROTOCOL:
			return shim_ret(int_out(val, len, e.kind == SHIM_DGRAM ? IPPROTO_UDP : IPPROTO_TCP));
		case SO_ACCEPTCONN: {
			struct mw_sock_rec rec;

			return shim_ret(int_out(val, len, e.kind == SHIM_LISTEN && page_read(&e, &rec) == 0 &&
							   rec.state == MW_SS_LISTENING));
		}
		case SO_RCVTIMEO_OLD:
		case SO_SNDTIMEO_OLD:
			/* Blocking happens on the carrier, so its timeouts are the socket's. */
			return real.getsockopt(fd, level, name, val, len);
		default:
			break;
		}
	}
	if (e.kind == SHIM_DEAD)
		return shim_ret(-ENOPROTOOPT);
	if (!len)
		return shim_ret(-EFAULT);
	if ((int)*len < 0)
		return shim_ret(-EINVAL);
	q.sock_id = e.sock_id;
	q.u.opt.level = level;
	q.u.opt.name = name;
	q.u.opt.len = *len > MW_OPT_MAX ? MW_OPT_MAX : *len;
	err = chan_call_on(&e, &q, -1, &r, NULL);
	if (!err)
		err = r.ret;
	if (err)
		return shim_ret(err);
	if (r.u.opt.len > MW_OPT_MAX || r.u.opt.len > q.u.opt.len)
		return shim_ret(-EIO);
	memcpy(val, r.u.opt.val, r.u.opt.len);
	*len = r.u.opt.len;
	return 0;
}

/* Options that cannot fail on a TCP socket once their value holds an int (any value is taken as a boolean):
 * set without waiting for an answer (MW_REQ_NOREPLY).  Programs set these on every connection (TCP_NODELAY on
 * each accepted one), and a round trip would cost more than the connection's own handshake.  UDP sockets are
 * left out: a datagram sent after SO_BROADCAST must find it set, and the carrier is not ordered with the
 * control channel. */
static bool opt_infallible(int level, int name)
{
	if (level == SOL_SOCKET)
		return name == SO_KEEPALIVE || name == SO_REUSEADDR || name == SO_REUSEPORT || name == SO_OOBINLINE;
	if (level == IPPROTO_TCP)
		return name == TCP_NODELAY || name == TCP_CORK || name == TCP_QUICKACK;
	return false;
}

SHIM_EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	struct mw_req q = { .cmd = MW_CMD_SETSOCKOPT };
	struct mw_rsp r;
	struct shim_fd e;
	int err;

	real_init();
	if (fdtab_sock(fd, &e) == SHIM_NONE)
		return real.setsockopt(fd, level, name, val, len);
	if (level == SOL_SOCKET && (name == SO_RCVTIMEO_OLD || name == SO_SNDTIMEO_OLD))
		return real.setsockopt(fd, level, name, val, len);
	if (e.kind == SHIM_DEAD)
		return shim_ret(-ENOPROTOOPT);
	if (len > MW_OPT_MAX)
		return shim_ret(-EINVAL);
	if (len && !val)
		return shim_ret(-EFAULT);
	q.sock_id = e.sock_id;
	q.u.opt.level = level;
	q.u.opt.name = name;
	q.u.opt.len = len;
	if (len)
		memcpy(q.u.opt.val, val, len);
	if (e.kind != SHIM_DGRAM && len >= sizeof(int) && opt_infallible(level, name))
		return shim_ret(chan_send_noreply(&e, &q, -1));
	err = chan_call_on(&e, &q, -1, &r, NULL);
	if (!err)
		err = r.ret;
	/* An option may change what sends are allowed (SO_BROADCAST, IPV6_V6ONLY): check destinations anew. */
	if (!err && e.kind == SHIM_DGRAM)
		page_dest_set(&e, NULL);
	return shim_ret(err);
}

SHIM_EXPORT int fcntl(int fd, int cmd, ...)
{
	struct shim_fd e;
	va_list ap;
	long arg;
	int ret;

	real_init();
	va_start(ap, cmd);
	arg = va_arg(ap, long);
	va_end(ap);
	ret = real.fcntl(fd, cmd, arg);
	/* A dup of a carrier is a carrier; a new fd from anything else must not inherit a stale entry. */
	if (ret >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)) {
		if (fdtab_sock(fd, &e) != SHIM_NONE)
			fdtab_set(ret, &e);
		else
			fdtab_clear(ret);
	}
	return ret;
}

SHIM_EXPORT int fcntl64(int fd, int cmd, ...) __attribute__((alias("fcntl")));

SHIM_EXPORT int ioctl(int fd, unsigned long req, ...)
{
	struct mw_req q = { .cmd = MW_CMD_IOCTL };
	struct mw_rsp r;
	struct shim_fd e;
	va_list ap;
	void *arg;
	int err;

	real_init();
	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (fdtab_sock(fd, &e) == SHIM_NONE ||
	    (req != SIOCOUTQ && req != SIOCOUTQNSD && req != SIOCINQ && req != SIOCATMARK))
		return real.ioctl(fd, req, arg);
	if (e.kind == SHIM_LISTEN || e.kind == SHIM_DEAD)
		return shim_ret(-EINVAL);
	if (req == SIOCINQ && e.kind == SHIM_DGRAM) {
		/* UDP's FIONREAD is the next datagram's payload: the carrier's next message, less our header.  (The
		 * carrier's own SIOCINQ would count every queued message.) */
		struct mw_dgram h;
		ssize_t n = real.recv(fd, &h, sizeof(h), MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
		bool framed = n >= (ssize_t)sizeof(h) && h.magic == MW_DGRAM_MAGIC;
		int v = n <= 0 || (framed && (h.flags & MW_DGRAM_ERROR)) ? 0
			: (int)(framed ? n - (ssize_t)sizeof(h) : n);

		memcpy(arg, &v, sizeof(v));
		return 0;
	}
	if (req == SIOCINQ)
		return real.ioctl(fd, req, arg);
	if (!arg)
		return shim_ret(-EFAULT);
	q.sock_id = e.sock_id;
	q.u.ioctl.request = (uint32_t)req;
	if (req == SIOCATMARK) {
		/* mwinsd knows where the mark is among the bytes it passed on; we say how many we have not read. */
		int unread = 0;

		if (e.kind != SHIM_STREAM || real.ioctl(fd, SIOCINQ, &unread) < 0)
			return shim_ret(e.kind == SHIM_DGRAM ? -ENOTTY : -EINVAL);
		q.u.ioctl.value = unread;
	}
	err = chan_call_on(&e, &q, -1, &r, NULL);
	if (!err)
		err = r.ret;
	if (err)
		return shim_ret(err);
	if (req == SIOCATMARK) {
		int v = r.u.ioctl.value == 1;

		memcpy(arg, &v, sizeof(v));
		return 0;
	}
	{
		/* Unsent bytes: those still in the carrier, plus those mwinsd holds or the real socket has. */
		int mine = 0, v;

		real.ioctl(fd, SIOCOUTQ, &mine);
		/* mwinsd's number is checked before any arithmetic: a hostile one must not overflow it. */
		if (r.u.ioctl.value < 0 || r.u.ioctl.value > 0x7fffffff || mine < 0)
			return shim_ret(-EIO);
		v = (int)(r.u.ioctl.value + mine > 0x7fffffff ? 0x7fffffff : r.u.ioctl.value + mine);
		memcpy(arg, &v, sizeof(v));
	}
	return 0;
}
