/*
 * socket.c: the control calls that make and shape a socket: socket, bind, listen, accept, connect,
 * shutdown, close, and the dup family (a dup of a carrier is a carrier).
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mwlib.h"
#include "shim.h"

static bool shim_is_tcp(int domain, int type, int protocol)
{
	return (domain == AF_INET || domain == AF_INET6) && (type & 0xff) == SOCK_STREAM &&
	       (protocol == 0 || protocol == IPPROTO_TCP);
}

static bool shim_is_udp(int domain, int type, int protocol)
{
	return (domain == AF_INET || domain == AF_INET6) && (type & 0xff) == SOCK_DGRAM &&
	       (protocol == 0 || protocol == IPPROTO_UDP);
}

/* Fill the program's end of a fresh carrier so it stays unwritable while the connect is in flight. */
static int shim_fill(int fd, uint32_t *sndbuf)
{
	static const char zeros[4096];
	int one = 1, v = 0;
	socklen_t len = sizeof(v);
	uint32_t total = 0;

	if (real.getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &len) < 0 ||
	    real.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &one, sizeof(one)) < 0)
		return -errno;
	*sndbuf = (uint32_t)v;
	for (int i = 0; i < 64; i++) {
		ssize_t n = real.send(fd, zeros, sizeof(zeros), MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0)
			return errno == EAGAIN ? (int)total : -errno;
		total += (uint32_t)n;
	}
	return -ENOBUFS;
}

SHIM_EXPORT int socket(int domain, int type, int protocol)
{
	struct mw_req q = { .cmd = MW_CMD_SOCKET };
	struct mw_rsp r;
	struct shim_fd e = { .kind = SHIM_STREAM, .family = (uint8_t)domain };
	int sv[2], err;

	bool udp;

	real_init();
	udp = shim_is_udp(domain, type, protocol);
	if (!udp && !shim_is_tcp(domain, type, protocol))
		return real.socket(domain, type, protocol);
	if (type & ~(0xff | SOCK_NONBLOCK | SOCK_CLOEXEC))
		return shim_ret(-EINVAL);
	if (real.socketpair(AF_UNIX, (udp ? SOCK_SEQPACKET : SOCK_STREAM) | (type & SOCK_CLOEXEC), 0, sv) < 0)
		return -1;
	if (udp)
		e.kind = SHIM_DGRAM;
	if ((type & SOCK_NONBLOCK) && real.fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0)
		goto err_errno;
	q.u.socket.domain = domain;
	q.u.socket.type = udp ? SOCK_DGRAM : SOCK_STREAM;
	q.u.socket.protocol = protocol;
	err = chan_call(&q, sv[1], &r);
	syscall(SYS_close, sv[1]);
	if (err == -ENETUNREACH) {
		/* No INS: hand out a socket that fails every network call, never the kernel's network. */
		e.kind = SHIM_DEAD;
	} else if (err || r.ret < 0) {
		syscall(SYS_close, sv[0]);
		return shim_ret(err ? -ENOBUFS : r.ret);
	}
	e.sock_id = err ? 0 : r.sock_id;
	err = fdtab_set(sv[0], &e);
	if (err) {
		syscall(SYS_close, sv[0]);
		return shim_ret(err);
	}
	return sv[0];
err_errno:
	err = -errno;
	syscall(SYS_close, sv[0]);
	syscall(SYS_close, sv[1]);
	return shim_ret(err);
}

SHIM_EXPORT int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct mw_req q = { .cmd = MW_CMD_BIND };
	struct mw_rsp r;
	struct shim_fd e;
	int err;

	real_init();
	switch (fdtab_get(fd, &e)) {
	case SHIM_NONE:
		return real.bind(fd, addr, len);
	case SHIM_DEAD:
		return shim_ret(-EADDRNOTAVAIL);
	default:
		break;
	}
	err = mw_addr_from_sockaddr(&q.u.addr, addr, len);
	if (err)
		return shim_ret(err == -EAFNOSUPPORT && e.family == AF_INET ? -EAFNOSUPPORT : err);
	q.sock_id = e.sock_id;
	err = chan_call(&q, -1, &r);
	return shim_ret(err ? err : r.ret);
}

SHIM_EXPORT int listen(int fd, int backlog)
{
	struct mw_req q = { .cmd = MW_CMD_LISTEN };
	struct mw_rsp r;
	struct shim_fd e;
	int lv[2], err, fl, fdfl, one = 1;

	real_init();
	switch (fdtab_get(fd, &e)) {
	case SHIM_NONE:
		return real.listen(fd, backlog);
	case SHIM_DEAD:
		return shim_ret(-ENETDOWN);
	case SHIM_DGRAM:
		return shim_ret(-EOPNOTSUPP);
	default:
		break;
	}
	fl = real.fcntl(fd, F_GETFL);
	fdfl = real.fcntl(fd, F_GETFD);
	if (fl < 0 || fdfl < 0)
		return -1;
	if (real.socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, lv) < 0)
		return -1;
	/* A listening TCP socket is never writable: fill the message carrier's send side so it is not either.
	 * mwinsd never reads these messages. */
	real.setsockopt(lv[0], SOL_SOCKET, SO_SNDBUF, &one, sizeof(one));
	for (int i = 0; i < 64 && real.send(lv[0], "", 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1; i++)
		;
	q.sock_id = e.sock_id;
	q.u.listen.backlog = backlog;
	err = chan_call(&q, lv[1], &r);
	syscall(SYS_close, lv[1]);
	if (!err)
		err = r.ret;
	if (err || e.kind == SHIM_LISTEN) {
		syscall(SYS_close, lv[0]);
		return shim_ret(err);
	}
	/* Put the message carrier in the socket's place, keeping the fd number and its flags. */
	if ((fl & O_NONBLOCK) && real.fcntl(lv[0], F_SETFL, O_NONBLOCK) < 0)
		goto err_errno;
	e.kind = SHIM_LISTEN;
	if (real.dup3(lv[0], fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0)
		goto err_errno;
	syscall(SYS_close, lv[0]);
	fdtab_set(fd, &e);
	return 0;
err_errno:
	err = -errno;
	syscall(SYS_close, lv[0]);
	return shim_ret(err);
}

SHIM_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
	struct shim_fd e, ne = { .kind = SHIM_STREAM, .flags = SHIM_F_CONNECTED };
	struct mw_accept m;
	struct sockaddr_storage ss;

	real_init();
	switch (fdtab_get(fd, &e)) {
	case SHIM_NONE:
		return real.accept4(fd, addr, addrlen, flags);
	case SHIM_LISTEN:
		break;
	case SHIM_DGRAM:
		return shim_ret(-EOPNOTSUPP);
	default:
		return shim_ret(-EINVAL);
	}
	if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
		return shim_ret(-EINVAL);
	for (;;) {
		int nfd, trunc, len, type = 0;
		socklen_t tl = sizeof(type);
		ssize_t n = mw_recv_fd(fd, &m, sizeof(m), &nfd, &trunc, 0);

		/* EOF, or the carrier's reset: the listener was shut down, or the INS is gone.  TCP says EINVAL. */
		if (n == 0 || n == -ECONNRESET)
			return shim_ret(-EINVAL);
		if (n < 0)
			return shim_ret((int)n);
		/* mwinsd is not trusted: a wrong size, a missing or odd fd, a bad address, and it is dropped. */
		len = mw_addr_to_sockaddr(&m.peer, &ss);
		if (n != (ssize_t)sizeof(m) || trunc || nfd < 0 || m.version != MW_PROTO_VERSION || len < 0 ||
		    m.peer.family != e.family ||
		    real.getsockopt(nfd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_STREAM) {
			if (nfd >= 0)
				syscall(SYS_close, nfd);
			continue;
		}
		if ((!(flags & SOCK_CLOEXEC) && real.fcntl(nfd, F_SETFD, 0) < 0) ||
		    ((flags & SOCK_NONBLOCK) && real.fcntl(nfd, F_SETFL, O_NONBLOCK) < 0)) {
			int err = -errno;

			syscall(SYS_close, nfd);
			return shim_ret(err);
		}
		ne.sock_id = m.sock_id;
		ne.family = e.family;
		if (fdtab_set(nfd, &ne) < 0) {
			syscall(SYS_close, nfd);
			return shim_ret(-EMFILE);
		}
		mw_sockaddr_copy_out(addr, addrlen, &ss, (socklen_t)len);
		return nfd;
	}
}

SHIM_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
	return accept4(fd, addr, addrlen, 0);
}

SHIM_EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct mw_req q = { .cmd = MW_CMD_CONNECT };
	struct mw_rsp r;
	struct mw_sock_rec rec;
	struct shim_fd e;
	int err, fl, sendfd = -1;

	real_init();
	switch (fdtab_get(fd, &e)) {
	case SHIM_NONE:
		return real.connect(fd, addr, len);
	case SHIM_DEAD:
		return shim_ret(-ENETUNREACH);
	case SHIM_LISTEN:
		return shim_ret(-EISCONN);
	case SHIM_DGRAM:
		/* UDP: only the default peer changes; AF_UNSPEC dissolves it. */
		q.sock_id = e.sock_id;
		if (!addr || len < sizeof(sa_family_t))
			return shim_ret(-EINVAL);
		if (addr->sa_family != AF_UNSPEC) {
			err = mw_addr_from_sockaddr(&q.u.connect.addr, addr, len);
			if (err)
				return shim_ret(err);
		}
		err = chan_call(&q, -1, &r);
		return shim_ret(err ? err : r.ret);
	default:
		break;
	}
	err = mw_addr_from_sockaddr(&q.u.connect.addr, addr, len);
	if (err)
		return shim_ret(err);
	fl = real.fcntl(fd, F_GETFL);
	if (fl < 0)
		return -1;
	q.sock_id = e.sock_id;
	err = page_read(e.sock_id, &rec);
	if (err && err != -ESTALE)
		return shim_ret(err);
	if (err == -ESTALE || rec.state == MW_SS_CLOSED) {
		/* A connect that failed in the background: its error is the answer, once. */
		err = page_take_error(e.sock_id);
		return shim_ret(err ? -err : -ECONNABORTED);
	}
	if (rec.state == MW_SS_CONNECTED) {
		/* TCP answers the first connect after a background connect completed with 0, later ones EISCONN. */
		if (e.flags & SHIM_F_CONNECT_TOLD)
			return shim_ret(-EISCONN);
		fdtab_add_flags(fd, e.sock_id, SHIM_F_CONNECT_TOLD | SHIM_F_CONNECTED);
		return 0;
	}
	if ((fl & O_NONBLOCK) && rec.state == MW_SS_OPEN) {
		err = shim_fill(fd, &q.u.connect.sndbuf);
		if (err < 0)
			return shim_ret(err);
		q.u.connect.flags = MW_CONNECT_NONBLOCK;
		q.u.connect.fill = (uint32_t)err;
		sendfd = fd;
	}
	err = chan_call(&q, sendfd, &r);
	if (err)
		return shim_ret(err == -ENETUNREACH ? err : -ECONNABORTED);
	if (r.ret == 0)
		fdtab_add_flags(fd, e.sock_id, SHIM_F_CONNECTED | SHIM_F_CONNECT_TOLD);
	return shim_ret(r.ret);
}

SHIM_EXPORT int shutdown(int fd, int how)
{
	struct mw_req q = { .cmd = MW_CMD_SHUTDOWN };
	struct mw_rsp r;
	struct mw_sock_rec rec;
	struct shim_fd e;
	int err;

	real_init();
	switch (fdtab_get(fd, &e)) {
	case SHIM_NONE:
		return real.shutdown(fd, how);
	case SHIM_DEAD:
		return shim_ret(-ENOTCONN);
	default:
		break;
	}
	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
		return shim_ret(-EINVAL);
	err = page_read(e.sock_id, &rec);
	if (err && err != -ESTALE)
		return shim_ret(err);
	if (e.kind != SHIM_LISTEN && (err || rec.state != MW_SS_CONNECTED))
		return shim_ret(-ENOTCONN);
	if (e.kind == SHIM_DGRAM && how == SHUT_WR)
		return 0; /* a UDP socket's SHUT_WR has no FIN to send */
	/* Our own write side is the carrier's: mwinsd sees EOF and passes the FIN on after the last byte. */
	if (e.kind == SHIM_STREAM && how != SHUT_RD && real.shutdown(fd, SHUT_WR) < 0)
		return -1;
	if (how == SHUT_WR)
		return 0;
	q.sock_id = e.sock_id;
	q.u.shutdown.how = SHUT_RD;
	err = chan_call(&q, -1, &r);
	if (!err)
		err = r.ret;
	/* mwinsd has already let go of a connection that ended both ways: to TCP that is "not connected". */
	return shim_ret(err == -EBADF ? -ENOTCONN : err);
}

SHIM_EXPORT int close(int fd)
{
	struct shim_fd e;

	if (!real.close)
		real_init();
	/* Forget the fd /before/ the kernel frees its number for reuse.  mwinsd learns of the last close from
	 * the carrier itself, so nothing is sent, and nothing here allocates or locks. */
	if (fdtab_get(fd, &e) != SHIM_NONE)
		fdtab_clear(fd);
	return real.close(fd);
}

static int shim_dup_done(int oldfd, int newfd)
{
	struct shim_fd e;

	if (newfd < 0)
		return newfd;
	if (fdtab_get(oldfd, &e) != SHIM_NONE) {
		if (fdtab_set(newfd, &e) < 0) {
			real.close(newfd);
			return shim_ret(-EMFILE);
		}
	} else {
		fdtab_clear(newfd);
	}
	return newfd;
}

SHIM_EXPORT int dup(int fd)
{
	real_init();
	return shim_dup_done(fd, real.dup(fd));
}

SHIM_EXPORT int dup2(int oldfd, int newfd)
{
	real_init();
	return oldfd == newfd ? real.dup2(oldfd, newfd) : shim_dup_done(oldfd, real.dup2(oldfd, newfd));
}

SHIM_EXPORT int dup3(int oldfd, int newfd, int flags)
{
	real_init();
	return shim_dup_done(oldfd, real.dup3(oldfd, newfd, flags));
}
