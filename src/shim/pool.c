/*
 * pool.c: TCP sockets made ahead of need, so that socket() costs no round trip.
 *
 * A round trip to mwinsd is two wake-ups; on a small virtual machine each is tens of microseconds, more than
 * a loopback connect.  A program that makes connections one after another (a client, a proxy, a crawler) would
 * pay it on every socket().  So when a process has made a few TCP sockets, the next request asks for several
 * at once (chan_call_many: one round trip) and keeps the rest here, per address family.
 *
 * What the program could notice, and why it can't:
 *   - fd numbers: pooled carriers wait at high numbers (as the control connection does); socket() moves the
 *     one it takes to the lowest free number, which is what the kernel would have returned.
 *   - exec and fork: the waiting carriers are close-on-exec, and a child drops its copies (they are its
 *     parent's); mwinsd frees a carrier's socket when its last copy is closed.
 *   - a program that closes every fd it does not know (close_range, a loop to the limit) closes ours too, and
 *     the number may then name one of its own files: each entry keeps its carrier's inode and is checked
 *     with fstat before use; a stale entry is forgotten, never closed.
 *   - an INS that died: an entry whose carrier has hung up, or of an old epoch, is dropped; when none is left
 *     the batch request finds the dead INS and goes to the next, as any request naming no socket does.
 * A program that keeps making sockets gets its next batch asked for ahead (chan_async_send) when the pool runs
 * half empty, and collected when it is next needed: the round trip then overlaps the program's own work (its
 * connects and reads) instead of adding to it.  It was half of what a socket() under mwrun still cost
 * (bench/connrate: 30 us a connection, against 4 us for the kernel's socket()).
 *
 * The cost: at most 2 * CHAN_BATCH_MAX - 1 sockets per family made and never used, held in mwinsd until exit.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

struct pool_ent {
	int fd;
	uint32_t sock_id;
	uint8_t epoch;
	ino_t ino;
};

static struct {
	pthread_mutex_t lock;
	struct pool_ent ent[2][2 * CHAN_BATCH_MAX]; /* [0]: AF_INET, [1]: AF_INET6 */
	int n[2];
	unsigned made[2]; /* sockets this process has asked for: the next batch's size grows with it */
	int ahead;        /* the family whose batch is out (chan_async_send), or -1 */
	bool atfork;
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER, .ahead = -1 };

/* Held across a fork, so that a batch being kept (its descriptors in a local array) is either all in the pool,
 * where the child's handler closes its copies, or not yet received. */
static void pool_atfork_prepare(void)
{
	pthread_mutex_lock(&pool.lock);
}

static void pool_atfork_parent(void)
{
	pthread_mutex_unlock(&pool.lock);
}

static void pool_atfork_child(void)
{
	/* The waiting carriers are the parent's to use: ours are only copies. */
	pthread_mutex_init(&pool.lock, NULL);
	for (int f = 0; f < 2; f++) {
		for (int i = 0; i < pool.n[f]; i++)
			syscall(SYS_close, pool.ent[f][i].fd);
		pool.n[f] = 0;
		pool.made[f] = 0;
	}
	pool.ahead = -1; /* chan.c drops the batch */
}

/* Is ent's fd still the carrier we put there? */
static bool pool_ent_ours(const struct pool_ent *ent)
{
	struct stat st;

	return fstat(ent->fd, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == ent->ino;
}

/* mwinsd's end is closed: its INS died (the epoch changes only once we notice, at the next request). */
static bool pool_ent_hung_up(const struct pool_ent *ent)
{
	struct pollfd p = { .fd = ent->fd, .events = POLLOUT };

	return poll(&p, 1, 0) != 1 || (p.revents & (POLLHUP | POLLERR));
}

/* Check a carrier that came in a batch and put it out of the program's way (high: chan.c has moved it).  The
 * fd is ours from here: kept, or closed on failure. */
static int pool_keep(int f, int fd, uint32_t sock_id, uint8_t epoch, bool high)
{
	struct pool_ent *ent = &pool.ent[f][pool.n[f]];
	struct stat st;
	int t = 0;
	socklen_t tl = sizeof(t);

	if (pool.n[f] == 2 * CHAN_BATCH_MAX ||
	    real.getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &tl) < 0 || t != SOCK_STREAM) {
		syscall(SYS_close, fd);
		return -EIO;
	}
	if (!high)
		fd = shim_fd_move_high(fd);
	if (fstat(fd, &st) < 0) {
		syscall(SYS_close, fd);
		return -EIO;
	}
	ent->fd = fd;
	ent->sock_id = sock_id;
	ent->epoch = epoch;
	ent->ino = st.st_ino;
	pool.n[f]++;
	return 0;
}

/* Ask for a batch: the first socket is the caller's, the rest wait here.  Lock held. */
static int pool_fill_locked(int domain, int f, int *fd, uint32_t *sock_id, uint8_t *epoch)
{
	struct mw_req q[CHAN_BATCH_MAX] = { 0 };
	struct mw_rsp r[CHAN_BATCH_MAX];
	int rfd[CHAN_BATCH_MAX], n, err;

	/* One at a time at first: a program that makes one socket gets one.  One also while a batch asked ahead
	 * is out: that batch is on its way. */
	if (pool.ahead == f || pool.made[f] < 2)
		n = 1;
	else
		n = pool.made[f] < CHAN_BATCH_MAX ? (int)pool.made[f] : CHAN_BATCH_MAX;
	for (int i = 0; i < n; i++) {
		q[i].cmd = MW_CMD_SOCKET;
		q[i].u.socket.domain = domain;
		q[i].u.socket.type = SOCK_STREAM;
		q[i].u.socket.protocol = IPPROTO_TCP;
	}
	err = chan_call_many(q, n, epoch, r, rfd);
	if (err)
		return err;
	*fd = -1;
	err = 0;
	for (int i = 0; i < n; i++) {
		if (r[i].ret < 0 || rfd[i] < 0) {
			if (!err)
				err = r[i].ret < 0 ? r[i].ret : -EIO;
			if (rfd[i] >= 0)
				syscall(SYS_close, rfd[i]);
			continue;
		}
		pool.made[f]++;
		if (*fd < 0) {
			*fd = rfd[i];
			*sock_id = r[i].sock_id;
		} else {
			pool_keep(f, rfd[i], r[i].sock_id, *epoch, false);
		}
	}
	return *fd >= 0 ? 0 : err;
}

/* Keep what the batch sent ahead has brought, if it is all back.  Lock held. */
static void pool_collect_locked(void)
{
	struct mw_rsp r[CHAN_BATCH_MAX];
	int rfd[CHAN_BATCH_MAX], n, f = pool.ahead;
	uint8_t epoch;

	if (f < 0)
		return;
	if (chan_async_collect(r, rfd, &n, &epoch) == -EAGAIN)
		return;
	pool.ahead = -1;
	for (int i = 0; i < n; i++) {
		if (rfd[i] < 0)
			continue; /* failed: the next fill asks again, and reports */
		if (r[i].ret < 0)
			syscall(SYS_close, rfd[i]);
		else
			pool_keep(f, rfd[i], r[i].sock_id, epoch, true);
	}
}

/* Ask for the next batch before it is needed.  Lock held. */
static void pool_ask_ahead_locked(int domain, int f)
{
	struct mw_req q[CHAN_BATCH_MAX] = { 0 };

	for (int i = 0; i < CHAN_BATCH_MAX; i++) {
		q[i].cmd = MW_CMD_SOCKET;
		q[i].u.socket.domain = domain;
		q[i].u.socket.type = SOCK_STREAM;
		q[i].u.socket.protocol = IPPROTO_TCP;
	}
	if (chan_async_send(q, CHAN_BATCH_MAX) == 0)
		pool.ahead = f;
}

static bool pool_take_locked(int f, int *fd, uint32_t *sock_id, uint8_t *epoch)
{
	while (pool.n[f] > 0) {
		struct pool_ent ent = pool.ent[f][--pool.n[f]];

		if (!pool_ent_ours(&ent))
			continue; /* the number is the program's now: forget it, never close it */
		if (ent.epoch != page_epoch() || pool_ent_hung_up(&ent)) {
			syscall(SYS_close, ent.fd); /* of an INS that is gone */
			continue;
		}
		*fd = ent.fd;
		*sock_id = ent.sock_id;
		*epoch = ent.epoch;
		return true;
	}
	return false;
}

int pool_take(int domain, int *fd, uint32_t *sock_id, uint8_t *epoch, bool *pooled)
{
	int f = domain == AF_INET6, err = 0;

	pthread_mutex_lock(&pool.lock);
	if (!pool.atfork) {
		pool.atfork = true;
		pthread_atfork(pool_atfork_prepare, pool_atfork_parent, pool_atfork_child);
	}
	*fd = -1;
	pool_collect_locked();
	*pooled = pool_take_locked(f, fd, sock_id, epoch);
	/* The batch asked ahead not back yet (mwinsd makes it when it is idle, or within 2 ms): one socket now,
	 * rather than a wait behind whatever keeps mwinsd busy; the batch stays out, to be kept when it comes. */
	if (!*pooled)
		err = pool_fill_locked(domain, f, fd, sock_id, epoch);
	else if (pool.n[f] < CHAN_BATCH_MAX / 2 && pool.ahead < 0 && pool.made[f] >= CHAN_BATCH_MAX)
		pool_ask_ahead_locked(domain, f);
	pthread_mutex_unlock(&pool.lock);
	return err;
}
