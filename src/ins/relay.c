/*
 * relay.c: moving a TCP connection's bytes between its real socket and its carrier, and reporting what the
 * network says (connect results, resets, EOF) to life.c as events; life.c's table decides what follows.
 *
 * Both fds of a connection are registered edge-triggered, and every event runs one pump over both directions.
 * A direction stops when its source has nothing (EAGAIN, or a short read: an edge will come), when its
 * destination is full (it asks for EPOLLOUT there), at EOF, when a throttle has no tokens left (the throttle's
 * timer queues it again), or when its budget is spent (then the socket goes on the run queue, so one fast
 * connection can't starve the others).
 *
 * Memory: bytes go through one shared scratch buffer.  Only a remainder the destination had no room for is
 * kept per connection, so an idle connection costs no buffer at all.
 *
 * How the program learns what happened, in the kernel's own terms (see DESIGN.md, decision 1):
 *   - connect completes: the program's end gets its normal send buffer back, which wakes EPOLLOUT.  Until
 *     then the shim's filler keeps it unwritable.
 *   - connect fails, or the connection is reset: what arrived before is passed on, then life.c posts the
 *     error in the page record *first*, and only then closes the carrier.  Closed with the filler (or any unread bytes) still in it, the kernel gives the
 *     program's end POLLERR|POLLHUP, as a refused TCP socket has; the shim reads the real errno from the page.
 *   - the peer's FIN: shutdown(carrier, SHUT_WR), after every byte before it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ins.h"
#include "mwlib.h"

enum pump_result {
	PUMP_BLOCKED, /* waiting for an edge */
	PUMP_MORE,    /* budget spent, work left */
	PUMP_DONE,    /* EOF passed on */
	PUMP_ERR_SRC, /* errno in *err */
	PUMP_ERR_DST,
	/* inside dir_pump only: */
	PUMP_NEXT,    /* a step moved bytes: go round again */
	PUMP_COPY,    /* bulk gave way: copy this round */
};

#define RELAY_BUDGET 16 /* chunks per direction per pump */

static char scratch[RELAY_CHUNK];

static void account(struct ins_sock *s, bool up, size_t n)
{
	if (s->flow)
		flow_bytes(s->flow, up, n);
	if (up) {
		s->bytes_out += n;
		ins.bytes_out += n;
	} else {
		s->bytes_in += n;
		ins.bytes_in += n;
	}
}

/* Drop the shim's filler from the front of the carrier. */
static int skip_fill(struct ins_sock *s)
{
	while (s->tcp.fill) {
		size_t want = s->tcp.fill < sizeof(scratch) ? s->tcp.fill : sizeof(scratch);
		ssize_t n = recv(s->car, scratch, want, MSG_DONTWAIT);

		if (n <= 0)
			return n < 0 && errno == EAGAIN ? -EAGAIN : -EPIPE;
		s->tcp.fill -= (uint32_t)n;
	}
	return 0;
}

static bool sock_linger_zero(struct ins_sock *s)
{
	struct linger lg = { 0 };
	socklen_t len = sizeof(lg);

	if (!s->linger_set)
		return false; /* no need to ask the kernel about an option nobody set */
	return getsockopt(s->real, SOL_SOCKET, SO_LINGER, &lg, &len) == 0 && lg.l_onoff && !lg.l_linger;
}

/*
 * Splicing.  A direction whose reads fill whole chunks moves its bytes through a pipe instead of the scratch
 * buffer: splice() from the source hands the pipe references to the source's pages, and splice() to the
 * destination hands those same pages on, so the relay copies nothing and the program's copy and the peer's
 * copy are the only ones, as with a direct socket.  Small messages stay on the copy path: a page per message
 * costs more than copying a few bytes (a unix socket's linear data is copied into a new page to be spliced).
 * The pipes come from pipe.c's pool.
 */
#define BULK_ENTER (64 * 1024) /* a copy read this large: the next reads splice */
#define BULK_LEAVE (4 * 1024)  /* a splice this small: back to copying */

/* Move what d holds (a copied remainder, or spliced bytes) on to dst.  PUMP_DONE: it all went. */
static int dir_flush(struct ins_sock *s, struct ins_dir *d, int dst, bool up, int *err)
{
	ssize_t n;

	if (d->len) {
		if (d->discard) {
			d->off = d->len;
		} else {
			n = send(dst, d->buf + d->off, d->len - d->off, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0)
				goto fail;
			account(s, up, (size_t)n);
			d->off += (uint32_t)n;
			if (d->off < d->len)
				goto full;
		}
		sock_want_out(s, up, false);
		free(d->buf);
		d->buf = NULL;
		d->off = d->len = 0;
	}
	if (d->piped) {
		if (d->discard) {
			pipe_put(d); /* closes it, and its bytes with it */
		} else {
			n = splice(d->pipe->r, NULL, dst, NULL, d->piped, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n < 0)
				goto fail;
			account(s, up, (size_t)n);
			d->piped -= (uint32_t)n;
			if (d->piped)
				goto full;
		}
		sock_want_out(s, up, false);
	}
	return PUMP_DONE;
fail:
	if (errno != EAGAIN) {
		*err = errno;
		return PUMP_ERR_DST;
	}
full:
	sock_want_out(s, up, true);
	return PUMP_BLOCKED;
}

/* One splice from src into d's pipe.  Returns bytes read, 0 at EOF, or -errno. */
static ssize_t dir_splice_in(struct ins_dir *d, int src, size_t want)
{
	ssize_t n;

	if (!d->pipe && !(d->pipe = pipe_get()))
		return -ENOMEM;
	n = splice(src, NULL, d->pipe->w, NULL, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (n <= 0) {
		int e = errno;

		pipe_put(d); /* empty: back to the pool */
		return n < 0 ? -e : 0;
	}
	d->piped = (uint32_t)n;
	if ((size_t)n < BULK_LEAVE)
		d->bulk = false;
	return n;
}

/* If our reads stand at the mark now (they stop there), note where it falls among the program's bytes: after
 * those passed on (bytes_in) and the `ahead` read but not yet passed on. */
static void urg_mark(struct ins_sock *s, size_t ahead)
{
	int at = 0;

	if (ioctl(s->real, SIOCATMARK, &at) == 0 && at) {
		s->tcp.mark_at = s->bytes_in + ahead;
		s->tcp.mark_known = true;
	}
}

/* Urgent data toward the program: the byte must be taken before a read steps over its mark, which drops it
 * (the kernel keeps it only until then).  With SO_OOBINLINE it stays in the stream and this finds nothing. */
static void urg_take(struct ins_sock *s)
{
	uint8_t b;

	if (recv(s->real, &b, 1, MSG_OOB | MSG_DONTWAIT) == 1) {
		s->tcp.oob_byte = b;
		s->tcp.oob_have = true;
		s->tcp.mark_known = false;
		/* Our reads may have reached the mark before its EPOLLPRI came. */
		urg_mark(s, (s->down.len - s->down.off) + s->down.piped);
	}
}

/* The source said EOF and everything before it is out: pass the FIN on (or, for a program that closed with
 * SO_LINGER {1, 0}, nothing: its close resets). */
static int dir_end(struct ins_sock *s, struct ins_dir *d, int dst, bool up)
{
	pipe_put(d);
	if (!d->shut && up && s->car_hup && sock_linger_zero(s)) {
		d->shut = true;
		return PUMP_DONE;
	}
	if (!d->shut) {
		if (!up)
			sock_event(s, SOCK_EV_NET_EOF, 0); /* a real EOF /before/ the program can see it (MW_REC_EOF) */
		shutdown(dst, SHUT_WR);
		d->shut = true;
		flow_fin(s, up);
	}
	return PUMP_DONE;
}

/* Bulk toward the program: splice up to want bytes into the direction's pipe. */
static int dir_splice_step(struct ins_sock *s, struct ins_dir *d, int src, size_t want, bool up, int *err)
{
	ssize_t n = dir_splice_in(d, src, want);

	if (n == -ENOMEM || n == 0) {
		/* No pipe to be had; or an end, or an urgent mark with a FIN queued behind it (splice from TCP
		 * stops at the mark, where recv steps over it): the copy tells which. */
		d->bulk = false;
		return PUMP_COPY;
	}
	if (n == -EAGAIN) {
		/* Nothing, or stopped at an urgent mark: that mark's EPOLLPRI is on its way (urg). */
		d->ready = false;
		return PUMP_BLOCKED;
	}
	if (n < 0) {
		*err = (int)-n;
		return PUMP_ERR_SRC;
	}
	/* A short splice may only mean the pipe was full: the source stays ready. */
	enforce_used(s, up, (size_t)n);
	return PUMP_NEXT;
}

/* What a copy of m of n bytes read (want asked for) could not send waits in the direction's buffer. */
static int dir_keep(struct ins_sock *s, struct ins_dir *d, ssize_t n, ssize_t m, size_t want, bool up, int *err)
{
	d->buf = malloc((size_t)(n - m));
	if (!d->buf) {
		*err = ENOMEM;
		return PUMP_ERR_DST;
	}
	memcpy(d->buf, scratch + m, (size_t)(n - m));
	d->len = (uint32_t)(n - m);
	d->off = 0;
	sock_want_out(s, up, true);
	if ((size_t)n < want && !d->rdhup && !d->urg)
		d->ready = false;
	return PUMP_BLOCKED;
}

/* One read of up to want bytes through the scratch buffer, and its send. */
static int dir_copy_step(struct ins_sock *s, struct ins_dir *d, int src, int dst, size_t want, bool up, int *err)
{
	ssize_t n, m;

	if (!up && d->urg && !s->tcp.oob_have)
		urg_take(s);
	n = recv(src, scratch, want, MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN) {
			d->ready = false;
			d->urg = false; /* read past any mark: all that came is read */
			return PUMP_BLOCKED;
		}
		*err = errno;
		return PUMP_ERR_SRC;
	}
	enforce_used(s, up, (size_t)n);
	if (n == 0)
		d->eof = true;
	if (n == 0 || d->discard)
		return PUMP_NEXT;
	if (!up && d->urg)
		urg_mark(s, (size_t)n);
	d->bulk = !up && (size_t)n >= BULK_ENTER && !d->urg;
	m = send(dst, scratch, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (m < 0 && errno != EAGAIN) {
		*err = errno;
		return PUMP_ERR_DST;
	}
	m = m < 0 ? 0 : m;
	account(s, up, (size_t)m);
	if (m < n)
		return dir_keep(s, d, n, m, want, up, err);
	if ((size_t)n < want && !d->rdhup && !d->urg) {
		/* A stream read that came back short took everything there was; the next byte to arrive brings a
		 * new edge.  Not reading again to hear EAGAIN halves the calls per message.  Not so once the source
		 * has reported its end: that FIN came with an edge already seen, and only a read that returns 0
		 * finds it.  Nor with urgent data: a read stops short at its mark, with bytes behind it whose edge
		 * has been seen. */
		d->ready = false;
		return PUMP_BLOCKED;
	}
	return PUMP_NEXT;
}

static int dir_pump(struct ins_sock *s, struct ins_dir *d, int src, int dst, bool up, int *err)
{
	for (int i = 0; i < RELAY_BUDGET; i++) {
		int r = dir_flush(s, d, dst, up, err);
		size_t want;

		if (r != PUMP_DONE)
			return r;
		if (d->pipe && !d->bulk)
			pipe_put(d);
		if (d->eof)
			return dir_end(s, d, dst, up);
		want = enforce_allowance(s, up);
		if (!want || !d->ready) {
			/* No tokens (the throttle's timer queues it again), or nothing until the next edge. */
			pipe_put(d);
			return PUMP_BLOCKED;
		}
		if (want > sizeof(scratch))
			want = sizeof(scratch);
		r = d->bulk && !d->discard && !d->urg ? dir_splice_step(s, d, src, want, up, err) : PUMP_COPY;
		if (r == PUMP_COPY)
			r = dir_copy_step(s, d, src, dst, want, up, err);
		if (r != PUMP_NEXT)
			return r;
	}
	return PUMP_MORE;
}

/* The connection failed on the network side (err): what arrived before is the program's to read, as on a
 * kernel socket, and then life.c posts err and ends it. */
static void relay_fail(struct ins_sock *s, int err)
{
	char a[64];

	ins_log(2, "socket %#x to %s: %s", s->id, mw_addr_str(&s->peer, a, sizeof(a)), strerror(err));
	if (!s->tcp.waiter && !s->zombie && !s->down.discard) {
		if (s->down.len)
			send(s->car, s->down.buf + s->down.off, s->down.len - s->down.off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (s->down.piped)
			splice(s->down.pipe->r, NULL, s->car, NULL, s->down.piped, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	}
	sock_event(s, SOCK_EV_NET_FAILED, err);
}

void relay_kill(struct ins_sock *s)
{
	/* connect(AF_UNSPEC) on a TCP socket is the kernel's tcp_disconnect: it sends the peer a RST and leaves
	 * the socket open, so that the program may still ask about it (a zombie). */
	struct sockaddr sa = { .sa_family = AF_UNSPEC };

	connect(s->real, &sa, sizeof(sa));
	relay_fail(s, ECONNRESET);
}

void relay_start(struct ins_sock *s)
{
	if (sock_watch(s, relay_car_event, relay_real_event, false) < 0) {
		sock_event(s, SOCK_EV_BROKEN, 0);
		return;
	}
	relay_pump(s);
}

void relay_connected(struct ins_sock *s)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	sock_want_out(s, true, false); /* it was there for the connect's answer */
	if (!s->local.port && getsockname(s->real, (struct sockaddr *)&ss, &len) == 0)
		mw_addr_from_sockaddr(&s->local, (struct sockaddr *)&ss, len);
	sock_event(s, SOCK_EV_CONNECTED, 0);
	relay_connect_undo_fill(s);
	if (enforce_kill_rule(s))
		relay_kill(s);
}

void relay_connect_undo_fill(struct ins_sock *s)
{
	if (s->tcp.prog_end >= 0) {
		/* Giving the program's end its send buffer back is what makes it writable: the filler in it is
		 * then well under a quarter of the buffer.  The kernel wakes the program's poll right here. */
		int v = (int)(s->tcp.sndbuf / 2);

		if (v > 0)
			setsockopt(s->tcp.prog_end, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
		close(s->tcp.prog_end);
		s->tcp.prog_end = -1;
	}
	relay_pump(s);
}

/* A reset after the peer's FIN: reading no longer finds it, so the program would hear of it only when a
 * send of ours failed, a carrier's worth of writes later.  The kernel says it at once: fail the socket, and
 * say so.  (A program that writes after the peer's FIN waits in the shim until its bytes are passed on.) */
static bool reset_after_fin(struct ins_sock *s)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (!s->down.eof || getsockopt(s->real, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || !err)
		return false;
	relay_fail(s, err);
	return true;
}

static void pump(struct ins_sock *s);

void relay_resume(struct ins_sock *s)
{
	pump(s);
}

void relay_pump(struct ins_sock *s)
{
	/* From outside an event (a request, the run of a timer): either side may have bytes, and the network
	 * urgent data whose EPOLLPRI is still on its way.  Look for that before reading: a second read stepping
	 * over its mark (a program polling SIOCATMARK pumps once per question) would drop the byte. */
	s->up.ready = s->down.ready = true;
	s->down.urg = true;
	pump(s);
}

/* Both directions; each reads its source only while it is ready (struct ins_dir). */
static void pump(struct ins_sock *s)
{
	enum pump_result up, down;
	uint64_t before, sent;
	int err = 0;

	if (s->dead || s->zombie)
		return; /* a zombie's carrier is gone: nothing to move */
	/* The filler keeps the program's end unwritable: it stays until the connect has an answer. */
	if (s->tcp.fill && s->state != INS_CONNECTING && skip_fill(s) == -EPIPE)
		s->car_hup = true;
	if (s->state != INS_CONNECTED) {
		if (s->car_hup)
			sock_event(s, SOCK_EV_PROG_CLOSED, 0); /* closed before it connected: the connect is abandoned */
		return;
	}
	if (s->tcp.fill)
		return; /* the rest of the filler is still on its way */
	before = s->bytes_in + s->bytes_out;
	sent = s->bytes_out;
	up = dir_pump(s, &s->up, s->car, s->real, true, &err);
	/* On a local peer the reset that data after its FIN draws is in before send() returns. */
	if (s->bytes_out != sent && reset_after_fin(s))
		return;
	if (up == PUMP_ERR_SRC) {
		/* The program's end went away with bytes unread: the kernel's answer to that is a reset. */
		sock_event(s, SOCK_EV_PROG_RESET, 0);
		return;
	}
	if (up == PUMP_ERR_DST) {
		relay_fail(s, err);
		return;
	}
	down = dir_pump(s, &s->down, s->real, s->car, false, &err);
	if (down == PUMP_ERR_SRC) {
		relay_fail(s, err);
		return;
	}
	if (down == PUMP_ERR_DST) {
		/* The program can no longer read (it is gone): drop what the network sends from now on. */
		s->down.discard = true;
		down = PUMP_MORE;
	}
	if (s->bytes_in + s->bytes_out != before)
		sock_publish(s);
	if (s->car_hup && s->up.shut) {
		/* Both ways ended in order (or the program shut both itself, and the hang-up is that, not a close):
		 * the program may still hold the fd and ask about it.  Otherwise the program has closed it: close
		 * the real one.  Whatever the network still sends, nobody will read; the kernel resets if any is
		 * unread. */
		bool ended = s->down.shut && (!s->down.discard || s->tcp.rd_shut);

		sock_event(s, ended ? SOCK_EV_BOTH_SHUT : SOCK_EV_PROG_CLOSED, 0);
		return;
	}
	if (up == PUMP_MORE || down == PUMP_MORE)
		sock_runq_add(s);
}

bool relay_up_empty(struct ins_sock *s)
{
	int n = 0;

	return !s->tcp.fill && !s->up.len && !s->up.piped && ioctl(s->car, SIOCINQ, &n) == 0 && n == 0;
}

void relay_count_up(struct ins_sock *s, size_t n)
{
	account(s, true, n);
	sock_publish(s);
}

void relay_car_event(struct ins_ev *ev, uint32_t events)
{
	struct ins_sock *s = container_of(ev, struct ins_sock, ev_car);

	if (s->dead)
		return;
	if (events & (EPOLLHUP | EPOLLERR)) {
		s->car_hup = true;
		s->down.discard = s->down.discard || !s->down.shut;
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		s->up.ready = true;
	if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		s->up.rdhup = true;
	if ((events & EPOLLHUP) && s->state == INS_CONNECTED && relay_up_empty(s)) {
		/* The program has closed it and left nothing to send: only the FIN and the freeing are left,
		 * and they can wait until the loop is idle rather than delay another socket's bytes.  Nothing can
		 * come after a hang-up, so the empty carrier is already its end: no read to hear that. */
		s->up.eof = true;
		idle_sock(s);
		return;
	}
	pump(s);
}

void relay_real_event(struct ins_ev *ev, uint32_t events)
{
	struct ins_sock *s = container_of(ev, struct ins_sock, ev_real);

	if (s->dead)
		return;
	if (s->state == INS_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		/* epoll reports the socket's state as it is now, not as it was at the edge, and TCP is never
		 * writable while its SYN is out: writable and not hung up is connected, with nothing to ask. */
		if (!(events & (EPOLLERR | EPOLLHUP))) {
			relay_connected(s);
			return;
		}
		if (getsockopt(s->real, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			relay_fail(s, err);
			return;
		}
		/* An edge from before the connect (a fresh socket is writable) can arrive after it: only a peer
		 * address proves the connection is up. */
		{
			struct sockaddr_storage ss;
			socklen_t sl = sizeof(ss);

			if (getpeername(s->real, (struct sockaddr *)&ss, &sl) < 0)
				return;
		}
		relay_connected(s);
		return;
	}
	if ((events & EPOLLERR) && reset_after_fin(s))
		return;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		s->down.ready = true;
	if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		s->down.rdhup = true;
	if (events & EPOLLPRI) {
		s->down.urg = s->down.ready = true;
		urg_take(s);
	}
	pump(s);
}
