/*
 * io.c: the data calls.  On a carrier the bytes go straight to the kernel; the shim only adds what a carrier
 * can't say by itself:
 *   - the real errno when the connection failed (the carrier shows EOF or EPIPE; the page says why);
 *   - SIGPIPE exactly when TCP would raise it (carriers always send with MSG_NOSIGNAL, and we raise it
 *     ourselves), so that a reset's first send gets ECONNRESET and no signal, as on TCP;
 *   - no AF_UNIX source address from recvfrom/recvmsg;
 *   - the TCP answers for a listener or a never-connected socket;
 *   - urgent data (MSG_OOB), which the carrier cannot carry: a round trip to mwinsd.
 * All of it but MSG_OOB is async-signal safe: no locks, no allocation.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

static size_t iov_total(const struct iovec *iov, size_t n)
{
	size_t t = 0;

	for (size_t i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

/* Check that a stream socket may send: a socket that never connected would otherwise put bytes into the
 * carrier ahead of the connect's filler. */
static int send_precheck(int fd, const struct shim_fd *e)
{
	struct mw_sock_rec rec;
	int err;

	if (e->kind == SHIM_LISTEN || e->kind == SHIM_DEAD)
		return -EPIPE;
	if (e->flags & SHIM_F_CONNECTED)
		return 0;
	err = page_read(e, &rec);
	if (err)
		return err == -ESTALE ? -EPIPE : err;
	if (rec.state == MW_SS_CONNECTED) {
		struct shim_fd c = *e;

		fdtab_connected(fd, &c, &rec);
		return 0;
	}
	if (rec.state == MW_SS_CONNECTING)
		return 0; /* the filler keeps the carrier unwritable: the kernel blocks or says EAGAIN */
	err = page_take_error(e);
	return err ? -err : -EPIPE;
}

/* A send refused before it reached the carrier: EPIPE raises SIGPIPE unless told not to, as on TCP. */
static ssize_t precheck_fail(int err, int flags)
{
	if (err == -EPIPE && !(flags & MSG_NOSIGNAL))
		raise(SIGPIPE);
	return shim_ret(err);
}

/* After a carrier send failed with EPIPE: the real error if the connection failed, else EPIPE. */
static ssize_t send_fail(const struct shim_fd *e, int err, int flags)
{
	if (err == -EPIPE && e->kind == SHIM_STREAM) {
		int pending = page_take_error(e);

		if (pending)
			return shim_ret(-pending);
		/* mwinsd died under the connection: a reset, and no SIGPIPE, as TCP's first send after one. */
		if (page_ins_gone(e, true))
			return shim_ret(-ECONNRESET);
	}
	if (err == -EPIPE && !(flags & MSG_NOSIGNAL))
		raise(SIGPIPE);
	return shim_ret(err);
}

/* After a carrier receive of want bytes returned n: turn EOF of a failed connection into its error. */
static ssize_t recv_done(const struct shim_fd *e, ssize_t n, size_t want)
{
	int pending;

	if (n > 0 || (n == 0 && want == 0) || (n < 0 && errno != ECONNRESET && errno != EPIPE))
		return n;
	pending = page_take_error(e);
	if (pending)
		return shim_ret(-pending);
	/* An end of stream nobody announced: mwinsd is gone, and the connection with it. */
	if (page_ins_gone(e, false))
		return shim_ret(-ECONNRESET);
	/* The carrier's own ECONNRESET only means mwinsd closed it with bytes unread: to the program that is
	 * the end of the stream, and any real error was given above. */
	return n < 0 ? 0 : n;
}

/* One byte of urgent data through mwinsd (proto.h, MW_CMD_OOB), retried while the bytes before it wait for
 * room, unless the call may not block.  A round trip: unlike the other sends, not async-signal safe. */
static int oob_send_byte(int fd, const struct shim_fd *e, uint8_t b, int flags)
{
	struct mw_req q = { .cmd = MW_CMD_OOB, .sock_id = e->sock_id };
	bool nonblock = (flags & MSG_DONTWAIT) || (real.fcntl(fd, F_GETFL) & O_NONBLOCK);
	struct mw_rsp r;
	int err;

	q.u.oob.op = MW_OOB_SEND;
	q.u.oob.byte = b;
	for (;;) {
		struct timespec nap = { 0, 1000000 };

		err = chan_call_on(e, &q, -1, &r, NULL);
		if (!err)
			err = r.ret > 0 ? -EIO : r.ret;
		if (err != -EAGAIN || nonblock)
			return err;
		nanosleep(&nap, NULL);
	}
}

/* MSG_OOB: TCP sends all the bytes and marks the last urgent.  The carrier is a plain byte stream, so all but
 * the last go on it as usual, and the last through mwinsd, which sends it after them. */
static ssize_t send_oob(int fd, const struct shim_fd *e, const struct msghdr *msg, int flags)
{
	struct iovec iov[IOV_MAX];
	struct msghdr m = { .msg_iov = iov };
	size_t total = iov_total(msg->msg_iov, msg->msg_iovlen), last = 0;
	ssize_t head = 0;
	uint8_t b;
	int err;

	err = send_precheck(fd, e);
	if (err)
		return precheck_fail(err, flags);
	if (msg->msg_iovlen > IOV_MAX)
		return shim_ret(-EMSGSIZE);
	if (!total)
		return 0;
	for (size_t i = 0; i < msg->msg_iovlen; i++) {
		iov[i] = msg->msg_iov[i];
		if (iov[i].iov_len)
			last = i;
	}
	b = ((const uint8_t *)iov[last].iov_base)[iov[last].iov_len - 1];
	iov[last].iov_len--;
	m.msg_iovlen = last + 1;
	if (total > 1) {
		head = real.sendmsg(fd, &m, (flags & ~MSG_OOB) | MSG_NOSIGNAL);
		if (head < 0)
			return send_fail(e, -errno, flags);
		if ((size_t)head < total - 1)
			return head; /* short: the urgent byte was not reached */
	}
	err = oob_send_byte(fd, e, b, flags);
	if (err)
		return head ? head : send_fail(e, err, flags);
	return head + 1;
}

/* recv(MSG_OOB): the real socket's urgent byte, through mwinsd; never blocks, as on TCP. */
static ssize_t recv_oob(const struct shim_fd *e, struct msghdr *msg, int flags)
{
	struct mw_req q = { .cmd = MW_CMD_OOB, .sock_id = e->sock_id };
	struct mw_rsp r;
	int err;

	if (e->kind != SHIM_STREAM)
		return shim_ret(-EINVAL);
	q.u.oob.op = (flags & MSG_PEEK) ? MW_OOB_PEEK : MW_OOB_RECV;
	err = chan_call_on(e, &q, -1, &r, NULL);
	if (!err)
		err = r.ret > 0 ? -EIO : r.ret;
	if (err)
		return shim_ret(err);
	/* mwinsd is not trusted: one byte or none. */
	if (r.u.oob.got > 1 || r.u.oob.byte > 255)
		return shim_ret(-EIO);
	msg->msg_flags = 0;
	msg->msg_namelen = 0;
	if (!r.u.oob.got)
		return 0;
	for (size_t i = 0; i < msg->msg_iovlen; i++) {
		if (msg->msg_iov[i].iov_len) {
			*(uint8_t *)msg->msg_iov[i].iov_base = (uint8_t)r.u.oob.byte;
			msg->msg_flags = MSG_OOB;
			return 1;
		}
	}
	msg->msg_flags = MSG_TRUNC;
	return 0;
}

static ssize_t shim_sendmsg(int fd, const struct shim_fd *e, const struct msghdr *msg, int flags)
{
	struct msghdr m = *msg;
	uint64_t sent = 0;
	ssize_t n;
	bool fin;
	int err;

	if (e->kind == SHIM_DGRAM)
		return dgram_sendmsg(fd, e, msg, flags);
	if (flags & MSG_OOB)
		return send_oob(fd, e, msg, flags);
	err = send_precheck(fd, e);
	if (err)
		return precheck_fail(err, flags);
	/* TCP ignores a destination on a connected socket; a unix stream socket would refuse it. */
	m.msg_name = NULL;
	m.msg_namelen = 0;
	fin = page_fin_send_begin(e, &sent);
	n = real.sendmsg(fd, &m, flags | MSG_NOSIGNAL);
	if (n < 0)
		return send_fail(e, -errno, flags);
	if (fin && n > 0)
		page_fin_send_wait(e, sent + (uint64_t)n);
	return n;
}

SHIM_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct shim_fd e;

	if (fdtab_sock(fd, &e) == SHIM_NONE) {
		if (!real.sendmsg)
			real_init();
		return real.sendmsg(fd, msg, flags);
	}
	return shim_sendmsg(fd, &e, msg, flags);
}

SHIM_EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
			   socklen_t tolen)
{
	struct iovec iov = { (void *)buf, len };
	struct msghdr m = { .msg_name = (void *)to, .msg_namelen = to ? tolen : 0, .msg_iov = &iov, .msg_iovlen = 1 };
	struct shim_fd e;

	if (fdtab_sock(fd, &e) == SHIM_NONE) {
		if (!real.sendto)
			real_init();
		return real.sendto(fd, buf, len, flags, to, tolen);
	}
	return shim_sendmsg(fd, &e, &m, flags);
}

SHIM_EXPORT ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	return sendto(fd, buf, len, flags, NULL, 0);
}

/* fd's carrier was closed behind the shim's back (by a raw close system call, as a static or Go program makes
 * it) and the number now names something that is no socket: forget the entry, so that write() and writev()
 * reach it as themselves.  Only on a path that is already slow or failing: it costs an fstat. */
static bool entry_stale(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0 || S_ISSOCK(st.st_mode))
		return false;
	fdtab_clear(fd);
	return true;
}

/* Whether write() and writev() should look first: a stream never seen connected is answered from the page,
 * which for a stale entry would be EPIPE and a SIGPIPE. */
static bool write_checks_first(int fd, const struct shim_fd *e)
{
	return e->kind == SHIM_STREAM && !(e->flags & SHIM_F_CONNECTED) && entry_stale(fd);
}

SHIM_EXPORT ssize_t write(int fd, const void *buf, size_t len)
{
	struct iovec iov = { (void *)buf, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct shim_fd e;
	ssize_t n;

	if (!real.write)
		real_init();
	if (fdtab_sock(fd, &e) == SHIM_NONE || write_checks_first(fd, &e))
		return real.write(fd, buf, len);
	n = shim_sendmsg(fd, &e, &m, 0);
	if (n < 0 && errno == ENOTSOCK && entry_stale(fd))
		return real.write(fd, buf, len);
	return n;
}

SHIM_EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)(iovcnt < 0 ? 0 : iovcnt) };
	struct shim_fd e;
	ssize_t n;

	if (!real.writev)
		real_init();
	if (fdtab_sock(fd, &e) == SHIM_NONE || iovcnt < 0 || write_checks_first(fd, &e))
		return real.writev(fd, iov, iovcnt);
	n = shim_sendmsg(fd, &e, &m, 0);
	if (n < 0 && errno == ENOTSOCK && entry_stale(fd))
		return real.writev(fd, iov, iovcnt);
	return n;
}

SHIM_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	struct shim_fd e;
	void *name;
	ssize_t n;

	if (!real.recvmsg)
		real_init();
	if (fdtab_sock(fd, &e) == SHIM_NONE) {
		n = real.recvmsg(fd, msg, flags);
		/* Descriptors passed to us may be carriers: learn which (a round trip only for unix sockets). */
		if (n >= 0 && msg->msg_controllen)
			ident_cmsgs(msg);
		return n;
	}
	if (e.kind == SHIM_DGRAM)
		return dgram_recvmsg(fd, &e, msg, flags);
	if (e.kind == SHIM_LISTEN || e.kind == SHIM_DEAD)
		return shim_ret(-ENOTCONN);
	if (flags & MSG_OOB)
		return recv_oob(&e, msg, flags);
	/* No AF_UNIX address may reach the program: TCP leaves msg_name alone and msg_namelen 0. */
	name = msg->msg_name;
	msg->msg_name = NULL;
	n = real.recvmsg(fd, msg, flags);
	msg->msg_name = name;
	msg->msg_namelen = 0;
	return recv_done(&e, n, iov_total(msg->msg_iov, msg->msg_iovlen));
}

SHIM_EXPORT ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from,
			     socklen_t *fromlen)
{
	struct shim_fd e;
	ssize_t n;

	if (!real.recvfrom)
		real_init();
	if (fdtab_sock(fd, &e) == SHIM_NONE)
		return real.recvfrom(fd, buf, len, flags, from, fromlen);
	if (e.kind == SHIM_DGRAM) {
		struct iovec iov = { buf, len };
		struct msghdr m = { .msg_name = from, .msg_namelen = from && fromlen ? *fromlen : 0,
				    .msg_iov = &iov, .msg_iovlen = 1 };

		n = dgram_recvmsg(fd, &e, &m, flags);
		if (n >= 0 && from && fromlen)
			*fromlen = m.msg_namelen;
		return n;
	}
	if (e.kind == SHIM_LISTEN || e.kind == SHIM_DEAD)
		return shim_ret(-ENOTCONN);
	if (flags & MSG_OOB) {
		struct iovec iov = { buf, len };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

		n = recv_oob(&e, &m, flags);
		if (n >= 0 && from && fromlen)
			*fromlen = 0;
		return n;
	}
	n = real.recvfrom(fd, buf, len, flags, NULL, NULL);
	if (n >= 0 && from && fromlen)
		*fromlen = 0;
	return recv_done(&e, n, len);
}

SHIM_EXPORT ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	return recvfrom(fd, buf, len, flags, NULL, NULL);
}

SHIM_EXPORT ssize_t read(int fd, void *buf, size_t len)
{
	struct shim_fd e;

	if (!real.read)
		real_init();
	if (fdtab_sock(fd, &e) == SHIM_NONE)
		return real.read(fd, buf, len);
	if (e.kind == SHIM_DGRAM)
		return recvfrom(fd, buf, len, 0, NULL, NULL);
	if (e.kind == SHIM_LISTEN || e.kind == SHIM_DEAD)
		return shim_ret(-ENOTCONN);
	return recv_done(&e, real.read(fd, buf, len), len);
}

SHIM_EXPORT ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
	struct shim_fd e;

	if (!real.readv)
		real_init();
	if (fdtab_sock(fd, &e) == SHIM_NONE)
		return real.readv(fd, iov, iovcnt);
	if (e.kind == SHIM_DGRAM) {
		struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)(iovcnt < 0 ? 0 : iovcnt) };

		return iovcnt < 0 ? shim_ret(-EINVAL) : dgram_recvmsg(fd, &e, &m, 0);
	}
	if (e.kind == SHIM_LISTEN || e.kind == SHIM_DEAD)
		return shim_ret(-ENOTCONN);
	return recv_done(&e, real.readv(fd, iov, iovcnt), iovcnt > 0 ? iov_total(iov, (size_t)iovcnt) : 0);
}

/* The batch calls, one message at a time through the calls above.  The timeout argument is not supported. */
SHIM_EXPORT int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
	struct shim_fd e;
	unsigned int i;

	if (fdtab_sock(fd, &e) == SHIM_NONE) {
		if (!real.sendmmsg)
			real_init();
		return real.sendmmsg(fd, vec, vlen, flags);
	}
	for (i = 0; i < vlen && i < 1024; i++) {
		ssize_t n = shim_sendmsg(fd, &e, &vec[i].msg_hdr, flags);

		if (n < 0)
			return i ? (int)i : -1;
		vec[i].msg_len = (unsigned int)n;
	}
	return (int)i;
}

/* recvmmsg's timeout, as the kernel keeps it: a deadline from the call's start, looked at only after each
 * datagram (a wait for one is not cut short), with the time left written back. */
static void mmsg_deadline(const struct timespec *t, struct timespec *end)
{
	clock_gettime(CLOCK_MONOTONIC, end);
	end->tv_sec += t->tv_sec;
	end->tv_nsec += t->tv_nsec;
	if (end->tv_nsec >= 1000000000L) {
		end->tv_sec++;
		end->tv_nsec -= 1000000000L;
	}
}

/* The time left till end, into *left; true if none is (then the call returns what it has). */
static bool mmsg_time_left(const struct timespec *end, struct timespec *left)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	left->tv_sec = end->tv_sec - now.tv_sec;
	left->tv_nsec = end->tv_nsec - now.tv_nsec;
	if (left->tv_nsec < 0) {
		left->tv_sec--;
		left->tv_nsec += 1000000000L;
	}
	if (left->tv_sec < 0)
		left->tv_sec = left->tv_nsec = 0;
	return !left->tv_sec && !left->tv_nsec;
}

SHIM_EXPORT int recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags, struct timespec *timeout)
{
	struct timespec end;
	struct shim_fd e;
	unsigned int i;

	if (fdtab_sock(fd, &e) == SHIM_NONE) {
		if (!real.recvmmsg)
			real_init();
		return real.recvmmsg(fd, vec, vlen, flags, timeout);
	}
	if (timeout && (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000L))
		return shim_ret(-EINVAL);
	if (timeout)
		mmsg_deadline(timeout, &end);
	for (i = 0; i < vlen && i < 1024; i++) {
		int f = flags & ~MSG_WAITFORONE;
		ssize_t n;

		/* As the kernel does: after the first message only MSG_WAITFORONE stops waiting for more. */
		if (i && (flags & MSG_WAITFORONE))
			f |= MSG_DONTWAIT;
		n = recvmsg(fd, &vec[i].msg_hdr, f);

		if (n < 0)
			return i ? (int)i : -1;
		vec[i].msg_len = (unsigned int)n;
		if (timeout && mmsg_time_left(&end, timeout))
			return (int)i + 1;
	}
	return (int)i;
}

/* sendfile and splice move bytes into the carrier in the kernel; the shim only stops them where TCP would
 * (a socket never connected), so that nothing lands in the carrier ahead of a connect. */
static ssize_t (*real_sendfile)(int, int, off_t *, size_t);
static ssize_t (*real_splice)(int, loff_t *, int, loff_t *, size_t, unsigned int);

SHIM_EXPORT ssize_t sendfile(int out, int in, off_t *off, size_t count)
{
	struct shim_fd e;
	int err;

	if (!real_sendfile)
		*(void **)&real_sendfile = dlsym(RTLD_NEXT, "sendfile");
	enum shim_kind k = fdtab_sock(out, &e);

	if (k == SHIM_STREAM || k == SHIM_LISTEN || k == SHIM_DEAD) {
		err = send_precheck(out, &e);
		if (err)
			return precheck_fail(err, 0);
	}
	return real_sendfile(out, in, off, count);
}

SHIM_EXPORT ssize_t sendfile64(int out, int in, off_t *off, size_t count) __attribute__((alias("sendfile")));

SHIM_EXPORT ssize_t splice(int in, loff_t *off_in, int out, loff_t *off_out, size_t len, unsigned int flags)
{
	struct shim_fd e;
	int err;

	if (!real_splice)
		*(void **)&real_splice = dlsym(RTLD_NEXT, "splice");
	enum shim_kind k = fdtab_sock(out, &e);

	if (k == SHIM_STREAM || k == SHIM_LISTEN || k == SHIM_DEAD) {
		err = send_precheck(out, &e);
		if (err)
			return precheck_fail(err, 0);
	}
	return real_splice(in, off_in, out, off_out, len, flags);
}

/* The fortified variants glibc emits under _FORTIFY_SOURCE. */
SHIM_EXPORT ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen)
{
	if (len > buflen)
		abort();
	return read(fd, buf, len);
}

SHIM_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
	if (len > buflen)
		abort();
	return recv(fd, buf, len, flags);
}

SHIM_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
				   struct sockaddr *from, socklen_t *fromlen)
{
	if (len > buflen)
		abort();
	return recvfrom(fd, buf, len, flags, from, fromlen);
}
