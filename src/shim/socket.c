/*
 * socket.c: the control calls that make and shape a socket: socket, bind, listen, accept, connect,
 * shutdown, close, and the dup family (a dup of a carrier is a carrier).
 */
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
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
	static const char zeros[16384];
	int one = 1, v = 0;
	socklen_t len = sizeof(v);
	uint32_t total = 0;

	if (real.getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &len) < 0 ||
	    real.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &one, sizeof(one)) < 0)
		return -errno;
	*sndbuf = (uint32_t)v;
	for (int i = 0; i < 16; i++) {
		ssize_t n = real.send(fd, zeros, sizeof(zeros), MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0)
			return errno == EAGAIN ? (int)total : -errno;
		total += (uint32_t)n;
		/* A non-blocking stream send takes what fits and stops: a short one means full, with no second
		 * call to hear EAGAIN.  (The minimum buffer holds about 5 KB.) */
		if ((size_t)n < sizeof(zeros))
			return (int)total;
	}
	return -ENOBUFS;
}

/* Take a carrier end from mwinsd: check it is what was asked for, and give it the flags the program asked for
 * (it arrives close-on-exec). */
static int carrier_adopt(int fd, int type, int flags)
{
	int t = 0;
	socklen_t tl = sizeof(t);

	if (real.getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &tl) < 0 || t != type)
		return -EIO;
	if (!(flags & SOCK_CLOEXEC) && real.fcntl(fd, F_SETFD, 0) < 0)
		return -errno;
	if ((flags & SOCK_NONBLOCK) && real.fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* No INS: a socket that fails every network call, never the kernel's network. */
static int socket_dead(int domain, int type)
{
	struct shim_fd e = { .kind = SHIM_DEAD, .family = (uint8_t)domain };
	int sv[2], err;

	if (real.socketpair(AF_UNIX, SOCK_STREAM | (type & (SOCK_CLOEXEC | SOCK_NONBLOCK)), 0, sv) < 0)
		return -1;
	syscall(SYS_close, sv[1]);
	err = fdtab_set(sv[0], &e);
	if (err) {
		syscall(SYS_close, sv[0]);
		return shim_ret(err);
	}
	return sv[0];
}

/* A TCP socket: a carrier from the pool (no round trip), moved to the number the kernel would have given. */
static int socket_tcp(int domain, int type)
{
	struct shim_fd e = { .kind = SHIM_STREAM, .family = (uint8_t)domain };
	bool pooled;
	int fd, low, err;

	err = pool_take(domain, &fd, &e.sock_id, &e.epoch, &pooled);
	if (err == -ENETUNREACH)
		return socket_dead(domain, type);
	if (err)
		return shim_ret(err == -EIO ? -ENOBUFS : err);
	if (pooled) {
		low = real.fcntl(fd, (type & SOCK_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
		err = low < 0 ? -errno : 0;
		syscall(SYS_close, fd);
		fd = low;
		if (!err && (type & SOCK_NONBLOCK) && real.fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
			err = -errno;
	} else {
		err = carrier_adopt(fd, SOCK_STREAM, type);
	}
	if (!err) {
		page_slot_new(&e);
		err = fdtab_set(fd, &e);
	}
	if (err) {
		if (fd >= 0)
			syscall(SYS_close, fd);
		return shim_ret(err == -EIO ? -ENOBUFS : err);
	}
	return fd;
}

/* A descriptor the kernel has just made is no carrier: an entry at its number is stale (its carrier was closed
 * by a raw system call the shim never saw, as a static or Go program makes them) and must not make the new
 * socket look like one. */
static int fresh_fd(int fd)
{
	if (fd >= 0)
		fdtab_clear(fd);
	return fd;
}

SHIM_EXPORT int socket(int domain, int type, int protocol)
{
	struct mw_req q = { .cmd = MW_CMD_SOCKET };
	struct mw_rsp r;
	struct shim_fd e = { .kind = SHIM_DGRAM, .family = (uint8_t)domain };
	int fd = -1, err;

	real_init();
	if (!shim_is_udp(domain, type, protocol) && !shim_is_tcp(domain, type, protocol))
		return fresh_fd(real.socket(domain, type, protocol));
	if (type & ~(0xff | SOCK_NONBLOCK | SOCK_CLOEXEC))
		return shim_ret(-EINVAL);
	if (shim_is_tcp(domain, type, protocol))
		return socket_tcp(domain, type);
	q.u.socket.domain = domain;
	q.u.socket.type = SOCK_DGRAM;
	q.u.socket.protocol = protocol;
	err = chan_call(&q, &e.epoch, -1, &r, &fd);
	if (err == -ENETUNREACH)
		return socket_dead(domain, type);
	if (!err && r.ret < 0)
		return shim_ret(r.ret);
	if (!err && fd < 0)
		err = -EIO;
	if (!err)
		err = carrier_adopt(fd, SOCK_SEQPACKET, type);
	e.sock_id = r.sock_id;
	if (!err) {
		page_slot_new(&e);
		err = fdtab_set(fd, &e);
	}
	if (err) {
		if (fd >= 0)
			syscall(SYS_close, fd);
		return shim_ret(err == -EIO ? -ENOBUFS : err);
	}
	return fd;
}

SHIM_EXPORT int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct mw_req q = { .cmd = MW_CMD_BIND };
	struct mw_rsp r;
	struct shim_fd e;
	int err;

	real_init();
	switch (fdtab_sock(fd, &e)) {
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
	err = chan_call_on(&e, &q, -1, &r, NULL);
	return shim_ret(err ? err : r.ret);
}

/* What relisten needs to make fd's listener again if its INS dies: the backlog and IPV6_V6ONLY. */
static void listen_remember(int fd, const struct shim_fd *e, int backlog)
{
	int v6only = -1;
	socklen_t len = sizeof(v6only);

	if (e->family == AF_INET6 && getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len) < 0)
		v6only = -1;
	relisten_note(fd, e, backlog, v6only);
}

/* A listening TCP socket is never writable: fill the carrier's send side (mwinsd never reads a listener's). */
static void listener_fill(int fd)
{
	int one = 1;

	real.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &one, sizeof(one));
	for (int i = 0; i < 64 && real.sendto(fd, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL, NULL, 0) == 1; i++)
		;
}

SHIM_EXPORT int listen(int fd, int backlog)
{
	struct mw_req q = { .cmd = MW_CMD_LISTEN };
	struct mw_rsp r;
	struct shim_fd e;
	int stray = -1, err;

	real_init();
	switch (fdtab_sock(fd, &e)) {
	case SHIM_NONE:
		return real.listen(fd, backlog);
	case SHIM_DEAD:
		return shim_ret(-ENETDOWN);
	case SHIM_DGRAM:
		return shim_ret(-EOPNOTSUPP);
	default:
		break;
	}
	q.sock_id = e.sock_id;
	q.u.listen.backlog = backlog;
	err = chan_call_on(&e, &q, -1, &r, &stray);
	if (stray >= 0)
		syscall(SYS_close, stray); /* the socket keeps its carrier: nothing may come */
	if (!err)
		err = r.ret;
	if (err)
		return shim_ret(err);
	if (e.kind != SHIM_LISTEN) {
		listener_fill(fd);
		e.kind = SHIM_LISTEN;
		fdtab_set(fd, &e);
	}
	listen_remember(fd, &e, backlog);
	return 0;
}

SHIM_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
	struct shim_fd e, ne = { .kind = SHIM_STREAM, .flags = SHIM_F_CONNECTED };
	struct mw_accept m;
	struct sockaddr_storage ss;

	real_init();
	switch (fdtab_sock(fd, &e)) {
	case SHIM_NONE:
		return fresh_fd(real.accept4(fd, addr, addrlen, flags));
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
		int nfd, trunc, len = -1, type = 0;
		socklen_t tl = sizeof(type);
		ssize_t n = mw_recv_fd(fd, &m, sizeof(m), &nfd, &trunc, 0);

		/* EOF, or the carrier's reset: the listener was shut down (TCP says EINVAL), or its INS is gone:
		 * then it is made again on the next INS, and this accept goes on there. */
		if (n == 0 || n == -ECONNRESET) {
			int err = relisten(fd, &e);

			if (err)
				return shim_ret(err == -ENOENT ? -EINVAL : err);
			if (fdtab_sock(fd, &e) != SHIM_LISTEN)
				return shim_ret(-EINVAL);
			continue;
		}
		if (n < 0)
			return shim_ret((int)n);
		/* mwinsd is not trusted: a wrong size, a missing or odd fd, a bad address, and it is dropped.  No
		 * field is read before the size is known to be whole. */
		if (n != (ssize_t)sizeof(m) || trunc || nfd < 0 || m.version != MW_PROTO_VERSION ||
		    (len = mw_addr_to_sockaddr(&m.peer, &ss)) < 0 || m.peer.family != e.family ||
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
		ne.epoch = e.epoch;
		ne.family = e.family;
		page_slot_new(&ne);
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

/* A blocking connect in progress: wait for the carrier to become writable (the filler leaves when mwinsd
 * has the answer), at most SO_SNDTIMEO, then read the answer from the page. */
/* A kernel connect to a nearby peer completes inside the call: the handshake runs in softirq before
 * connect() returns.  Ours completes in mwinsd a few microseconds later, but sleeping for it costs a wake-up,
 * which on a virtual machine is tens of microseconds.  So look for it briefly before sleeping: about the
 * time the kernel itself would have spent in the call. */
#define CONNECT_SPIN_NS 50000

static int connect_spin(struct pollfd *p)
{
	struct timespec t0, t;
	int n;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		n = poll(p, 1, 0);
		if (n)
			return n;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < CONNECT_SPIN_NS);
	return 0;
}

static int connect_wait(int fd, const struct shim_fd *e)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	struct timeval tv = { 0 };
	socklen_t tl = sizeof(tv);
	struct mw_sock_rec rec;
	int ms = -1, n, err, dummy;

	if (real.getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &tl) == 0 && (tv.tv_sec || tv.tv_usec))
		ms = (int)(tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000);
	n = connect_spin(&p);
	if (n == 0)
		n = poll(&p, 1, ms);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -EINPROGRESS;
	err = page_read(e, &rec);
	if (!err && rec.state == MW_SS_CONNECTED) {
		fdtab_add_flags(fd, e->sock_id, SHIM_F_CONNECTED | SHIM_F_CONNECT_TOLD);
		return 0;
	}
	/* Failed: the call reports the error and consumes it, the carrier's own signal with it. */
	tl = sizeof(dummy);
	real.getsockopt(fd, SOL_SOCKET, SO_ERROR, &dummy, &tl);
	err = page_take_error(e);
	return err ? -err : -ECONNABORTED;
}

SHIM_EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct mw_req q = { .cmd = MW_CMD_CONNECT };
	struct mw_rsp r;
	struct mw_sock_rec rec;
	struct shim_fd e;
	int err, fl;

	real_init();
	switch (fdtab_sock(fd, &e)) {
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
		err = chan_call_on(&e, &q, -1, &r, NULL);
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
	err = page_read(&e, &rec);
	if (err && err != -ESTALE)
		return shim_ret(err);
	if (err == -ESTALE || rec.state == MW_SS_CLOSED) {
		/* A connect that failed in the background: its error is the answer, once. */
		err = page_take_error(&e);
		return shim_ret(err ? -err : -ECONNABORTED);
	}
	if (rec.state == MW_SS_CONNECTED) {
		/* TCP answers the first connect after a background connect completed with 0, later ones EISCONN. */
		if (e.flags & SHIM_F_CONNECT_TOLD)
			return shim_ret(-EISCONN);
		fdtab_add_flags(fd, e.sock_id, SHIM_F_CONNECT_TOLD | SHIM_F_CONNECTED);
		return 0;
	}
	if (rec.state == MW_SS_CONNECTING)
		return shim_ret((fl & O_NONBLOCK) ? -EALREADY : connect_wait(fd, &e));
	/* Every connect goes out non-blocking, with the carrier filled until it is answered; a blocking one then
	 * waits on the carrier, so that SO_SNDTIMEO and signals end the wait as they end the kernel's. */
	err = shim_fill(fd, &q.u.connect.sndbuf);
	if (err < 0)
		return shim_ret(err);
	q.u.connect.flags = MW_CONNECT_NONBLOCK;
	q.u.connect.fill = (uint32_t)err;
	if (!(fl & O_NONBLOCK) && q.u.connect.addr.family == e.family) {
		/* Blocking: the carrier brings every outcome (proto.h, MW_REQ_NOREPLY), so no answer is awaited. */
		err = chan_send_noreply(&e, &q, fd);
		if (err)
			return shim_ret(err == -ENETUNREACH ? err : -ECONNABORTED);
		return shim_ret(connect_wait(fd, &e));
	}
	err = chan_call_on(&e, &q, fd, &r, NULL);
	if (err)
		return shim_ret(err == -ENETUNREACH ? err : -ECONNABORTED);
	if (r.ret == 0)
		fdtab_add_flags(fd, e.sock_id, SHIM_F_CONNECTED | SHIM_F_CONNECT_TOLD);
	if (r.ret != -EINPROGRESS || (fl & O_NONBLOCK))
		return shim_ret(r.ret);
	return shim_ret(connect_wait(fd, &e));
}

SHIM_EXPORT int shutdown(int fd, int how)
{
	struct mw_req q = { .cmd = MW_CMD_SHUTDOWN };
	struct mw_rsp r;
	struct mw_sock_rec rec;
	struct shim_fd e;
	int err;

	real_init();
	switch (fdtab_sock(fd, &e)) {
	case SHIM_NONE:
		return real.shutdown(fd, how);
	case SHIM_DEAD:
		return shim_ret(-ENOTCONN);
	default:
		break;
	}
	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
		return shim_ret(-EINVAL);
	if (e.kind == SHIM_DGRAM) {
		/* UDP: the carrier's own shutdown gives the kernel's wake-ups and poll bits; like the kernel, an
		 * unconnected socket is shut all the same and the call says ENOTCONN. */
		bool connected = page_read(&e, &rec) == 0 && rec.state == MW_SS_CONNECTED;

		page_mark_shut(&e, (how != SHUT_RD ? SHIM_SHUT_WR : 0) | (how != SHUT_WR ? SHIM_SHUT_RD : 0));
		if (real.shutdown(fd, how) < 0)
			return -1;
		return connected ? 0 : shim_ret(-ENOTCONN);
	}
	err = page_read(&e, &rec);
	if (err && err != -ESTALE)
		return shim_ret(err);
	if (e.kind != SHIM_LISTEN && (err || rec.state != MW_SS_CONNECTED))
		return shim_ret(-ENOTCONN);
	/* A listener shut for reading stops listening, as the kernel's does: its carrier's hang-up that follows
	 * is this, not a dead INS, and relisten must leave it alone. */
	if (e.kind == SHIM_LISTEN && how != SHUT_WR)
		page_mark_shut(&e, SHIM_SHUT_RD);
	/* Our own write side is the carrier's: mwinsd sees EOF and passes the FIN on after the last byte. */
	if (e.kind == SHIM_STREAM && how != SHUT_RD) {
		page_mark_shut(&e, SHIM_SHUT_WR);
		if (real.shutdown(fd, SHUT_WR) < 0)
			return -1;
	}
	if (how == SHUT_WR)
		return 0;
	q.sock_id = e.sock_id;
	q.u.shutdown.how = SHUT_RD;
	err = chan_call_on(&e, &q, -1, &r, NULL);
	if (!err)
		err = r.ret;
	/* mwinsd has already let go of a connection that ended both ways: to TCP that is "not connected". */
	return shim_ret(err == -EBADF ? -ENOTCONN : err);
}

SHIM_EXPORT int close(int fd)
{
	struct shim_fd e;
	int ret;

	if (!real.close)
		real_init();
	/* Forget the fd /before/ the kernel frees its number for reuse.  Then a hint (one non-blocking send, no
	 * lock, no allocation): mwinsd learns of a last close from the carrier itself, but the hint reaches it
	 * in order with this process's next requests, so a port the socket held is free for the next bind. */
	if (fdtab_get(fd, &e) == SHIM_NONE)
		return real.close(fd);
	fdtab_clear(fd);
	ret = real.close(fd);
	chan_hint_close(e.sock_id);
	return ret;
}

/* Several descriptors at once (a child closing what it inherited, libuv's and Python's spawn): every entry
 * in the range is forgotten first, as close() does for one; the close hints follow the close
 * (up to a stack's worth: beyond that mwinsd hears of the rest from their carriers). */
SHIM_EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
	uint32_t hint[64];
	unsigned nhint = 0;
	int ret;

	if (!real.close)
		real_init();
	/* With CLOSE_RANGE_CLOEXEC nothing closes now; exec ends the table anyway. */
	if (!(flags & CLOSE_RANGE_CLOEXEC)) {
		for (int fd = fdtab_next(first, last); fd >= 0; fd = fdtab_next((unsigned)fd + 1, last)) {
			struct shim_fd e;

			if (fdtab_get(fd, &e) == SHIM_NONE)
				continue;
			fdtab_clear(fd);
			if (nhint < sizeof(hint) / sizeof(hint[0]))
				hint[nhint++] = e.sock_id;
		}
	}
	ret = real.close_range ? real.close_range(first, last, flags)
			       : (int)mw_raw_syscall(SYS_close_range, first, last, flags);
	for (unsigned i = 0; i < nhint; i++)
		chan_hint_close(hint[i]);
	return ret;
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
