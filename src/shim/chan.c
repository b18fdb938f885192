/*
 * chan.c: the shim's side of the control channel.
 *
 * One SOCK_SEQPACKET connection per process.  Sending needs no lock: a seqpacket send is atomic, so threads
 * send their requests concurrently.  Receiving is shared: whichever waiting thread finds nobody reading
 * becomes the reader, and hands each response it reads to the thread whose req_id it carries (a
 * leader/follower scheme).  So a thread blocked in connect never holds up another thread's setsockopt.
 *
 * After fork the child must not touch its parent's connection (their responses would mix): the atfork
 * handler drops it, and the child's first call opens its own.  mwinsd places the new connection in the same
 * group (it goes by network namespace), so inherited sockets stay reachable.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "mwlib.h"
#include "shim.h"

struct waiter {
	struct waiter *next;
	uint32_t req_id;
	bool done;
	int err;
	int fd; /* a descriptor that came with the response, or -1 */
	struct mw_rsp rsp;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int fd;
	bool reading;
	bool warned;
	struct waiter *waiters;
	uint32_t group;
	uint32_t nslots;
	uint32_t next_req;
	uint8_t epoch;
	pid_t ins_pid; /* SO_PEERCRED of the INS we said HELLO to: an INS restarted in place is a new one */
	ino_t page_ino; /* the page's memfd: the same id may come back with a new page */
	ino_t fd_ino;   /* the connection's own: a program that closed every fd may have reused the number */
	/* MW_REQ_NOREPLY requests sent, and how many of them an answered request sent later has covered. */
	uint64_t noreply_sent;
	uint64_t noreply_done;
	/* A descriptor the reader has received and not yet handed to its waiter: a fork meanwhile gives the child
	 * a copy that nothing of the child's knows of, which its atfork handler closes. */
	int inflight;
} chan = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, -1, false, false, NULL, 0, 0, 1, 0, 0, 0, 0, 0, 0, -1 };

/* The asynchronous batch: its waiters live here, not on a caller's stack (chan_async_send). */
static struct {
	struct waiter w[CHAN_BATCH_MAX];
	struct mw_req q[CHAN_BATCH_MAX];
	int n; /* requests out; 0: none */
	uint8_t epoch;
} async;

static bool waiter_is_async(const struct waiter *w)
{
	return w >= async.w && w < async.w + CHAN_BATCH_MAX;
}

/* Before fork: what this process set without an answer must be done before the child can ask about it on a
 * connection of its own (mwinsd keeps order within one connection only).  One answered request is the
 * barrier: mwinsd has handled everything sent before it. */
static void chan_atfork_prepare(void)
{
	struct mw_req q = { .cmd = MW_CMD_BARRIER };
	struct mw_rsp r;
	uint8_t epoch = 0;
	bool pending;

	pthread_mutex_lock(&chan.lock);
	pending = chan.noreply_sent != chan.noreply_done && chan.fd >= 0;
	pthread_mutex_unlock(&chan.lock);
	if (pending)
		chan_call(&q, &epoch, -1, &r, NULL);
	/* Held across the fork: a descriptor a reader has received is then either filed where the child's
	 * handler finds it, or still chan.inflight. */
	pthread_mutex_lock(&chan.lock);
}

static void chan_atfork_parent(void)
{
	pthread_mutex_unlock(&chan.lock);
}

static void chan_atfork_child(void)
{
	/* Only this thread exists now; locks another thread held are reset, never unlocked. */
	pthread_mutex_init(&chan.lock, NULL);
	pthread_cond_init(&chan.cond, NULL);
	if (chan.fd >= 0)
		syscall(SYS_close, chan.fd);
	chan.fd = -1;
	chan.reading = false;
	chan.waiters = NULL;
	chan.noreply_sent = chan.noreply_done = 0;
	/* The parent's batch: its responses go to the parent; copies of what already came are not ours. */
	for (int i = 0; i < async.n; i++) {
		if (async.w[i].fd >= 0)
			syscall(SYS_close, async.w[i].fd);
	}
	async.n = 0;
	/* Received by a reader in the parent, not handed on yet (a response to another thread's call is that
	 * thread's socket, not the child's either).  A fork inside the read itself can still leave a copy. */
	if (chan.inflight >= 0)
		syscall(SYS_close, chan.inflight);
	chan.inflight = -1;
}

/* Where the INS is, as the environment said when the program started.  Programs rebuild their environment
 * (nginx keeps only TZ for its workers), so it is read once, before main. */
static char env_sock[512];
static char env_registry[512];

__attribute__((constructor(200))) static void chan_ctor(void)
{
	const char *v = getenv("MWCOMMS_SOCK");

	if (v && strlen(v) < sizeof(env_sock))
		strcpy(env_sock, v);
	/* "none": pinned to MWCOMMS_SOCK (mwrun -s), no other INS may be used. */
	v = getenv("MWCOMMS_REGISTRY");
	if (!v || strcmp(v, "none") != 0)
		snprintf(env_registry, sizeof(env_registry), "%s", mw_registry_root());
	pthread_atfork(chan_atfork_prepare, chan_atfork_parent, chan_atfork_child);
}

static void chan_warn(const char *what, int err)
{
	if (chan.warned)
		return;
	chan.warned = true;
	fprintf(stderr, "mwcomms: no network: %s%s%s (sockets fail closed)\n", what, err ? ": " : "",
		err ? strerror(err) : "");
}

const char *chan_env_sock(void)
{
	return env_sock;
}

const char *chan_env_registry(void)
{
	return env_registry;
}

static int chan_connect_path(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);
	fd = (int)syscall(SYS_socket, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (syscall(SYS_connect, fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int err = -errno;

		syscall(SYS_close, fd);
		return err;
	}
	return fd;
}

/* Find a live INS: $MWCOMMS_SOCK (mwrun sets it), else the registry's instances in turn. */
static int chan_find(void)
{
	char dirpath[600];
	struct dirent *de;
	DIR *d;
	int fd = -ENOENT;
	int first = -ENOENT;

	/* The INS mwrun chose first; if it is gone, any live one in the registry. */
	if (env_sock[0]) {
		fd = chan_connect_path(env_sock);
		if (fd >= 0)
			return fd;
		first = fd;
	}
	if (!env_registry[0])
		return first;
	snprintf(dirpath, sizeof(dirpath), "%s/ins", env_registry);
	d = opendir(dirpath);
	if (!d)
		return first;
	while ((de = readdir(d))) {
		char path[1024], sock[512];
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/sock", dirpath, de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(sock, sizeof(sock), f)) {
			sock[strcspn(sock, "\n")] = 0;
			fd = chan_connect_path(sock);
		}
		fclose(f);
		if (fd >= 0)
			break;
	}
	closedir(d);
	return fd;
}

static int chan_hello(int fd)
{
	struct mw_req q = { .version = MW_PROTO_VERSION, .cmd = MW_CMD_HELLO, .req_id = 0 };
	struct ucred cred = { 0 };
	socklen_t cl = sizeof(cred);
	pid_t ins_pid;
	struct mw_rsp r;
	struct stat st;
	int memfd, trunc, err;
	ssize_t n;
	void *map;
	uint32_t *consumed;
	uint64_t *dest;
	uint8_t *shutwr;

	if (syscall(SYS_getsockopt, MW_FD_UNTRAPPED(fd), SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0)
		return -errno;
	ins_pid = cred.pid;
	n = mw_send_fd(fd, &q, sizeof(q), -1, 0);
	if (n != (ssize_t)sizeof(q))
		return n < 0 ? (int)n : -EIO;
	do
		n = mw_recv_fd(fd, &r, sizeof(r), &memfd, &trunc, 0);
	while (n == -EINTR);
	err = chan_hello_check(&r, n, trunc, memfd >= 0);
	if (!err && (fstat(memfd, &st) < 0 || (uint64_t)st.st_size < r.u.hello.page_size))
		err = -EIO; /* a page smaller than it says would be SIGBUS on a read */
	if (err) {
		if (memfd >= 0)
			syscall(SYS_close, memfd);
		return err;
	}
	if (chan.epoch && chan.group == r.u.hello.group && chan.nslots == r.u.hello.nslots &&
	    chan.ins_pid == ins_pid && chan.page_ino == st.st_ino) {
		/* The same page as before a fork: the mapping we inherited is this very page.  (The group id
		 * alone is not enough: a group whose last process let go is made anew with the same id.) */
		syscall(SYS_close, memfd);
		return 0;
	}
	map = mmap(NULL, r.u.hello.page_size, PROT_READ, MAP_SHARED, memfd, 0);
	syscall(SYS_close, memfd);
	if (map == MAP_FAILED)
		return -errno;
	consumed = calloc(r.u.hello.nslots, sizeof(*consumed));
	dest = calloc(r.u.hello.nslots, sizeof(*dest));
	shutwr = calloc(r.u.hello.nslots, sizeof(*shutwr));
	if (!consumed || !dest || !shutwr || ((const struct mw_page_hdr *)map)->magic != MW_PAGE_MAGIC) {
		free(consumed);
		free(dest);
		free(shutwr);
		munmap(map, r.u.hello.page_size);
		return -EIO;
	}
	/* A page from an earlier INS stays mapped: another thread may be reading it right now. */
	chan.epoch = page_attach(map, r.u.hello.nslots, consumed, dest, shutwr);
	chan.group = r.u.hello.group;
	chan.nslots = r.u.hello.nslots;
	chan.ins_pid = ins_pid;
	chan.page_ino = st.st_ino;
	return 0;
}

static int chan_ensure_locked(void)
{
	int fd, err;

	if (chan.fd >= 0)
		return 0;
	fd = chan_find();
	if (fd < 0) {
		chan_warn("cannot reach an INS (mwinsd)", -fd);
		return -ENETUNREACH;
	}
	err = chan_hello(fd);
	if (err) {
		syscall(SYS_close, fd);
		chan_warn("the INS refused us", -err);
		return -ENETUNREACH;
	}
	chan.fd = shim_fd_move_high(fd);
	{
		struct stat st;

		chan.fd_ino = fstat(chan.fd, &st) == 0 ? st.st_ino : 0;
	}
	return 0;
}

int shim_fd_move_high(int fd)
{
	/* Out of the way of the low numbers programs expect to find free (an exec'd helper checks that the
	 * close-on-exec fds it was not given are gone).  The floor comes from RLIMIT_NOFILE, asked once: a
	 * program that lowers its limit under the floor makes the dup fail with EINVAL, and we ask again. */
	static int floor_cached;
	struct rlimit rl;
	int base = __atomic_load_n(&floor_cached, __ATOMIC_RELAXED), hi;

	for (int tries = 0; tries < 2; tries++) {
		if (base <= 0) {
			if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur <= 256)
				return fd;
			base = (int)(rl.rlim_cur > 1024 ? 1024 - 64 : rl.rlim_cur - 64);
			__atomic_store_n(&floor_cached, base, __ATOMIC_RELAXED);
		}
		hi = (int)syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, (long)base);
		if (hi >= 0) {
			syscall(SYS_close, fd);
			return hi;
		}
		if (errno != EINVAL)
			return fd;
		base = 0;
	}
	return fd;
}

void chan_hint_close(uint32_t sock_id)
{
	struct mw_req q = { .version = MW_PROTO_VERSION, .cmd = MW_CMD_CLOSE, .sock_id = sock_id };
	int fd = __atomic_load_n(&chan.fd, __ATOMIC_ACQUIRE);

	/* One atomic seqpacket send: no lock, no allocation, safe in a signal handler.  If the channel is not
	 * open in this process, there is nobody to tell, and mwinsd frees the socket later anyway. */
	if (fd >= 0)
		syscall(SYS_sendto, fd, &q, sizeof(q), MSG_DONTWAIT | MSG_NOSIGNAL, NULL, 0);
}

int chan_ensure(void)
{
	int err;

	pthread_mutex_lock(&chan.lock);
	err = chan_ensure_locked();
	pthread_mutex_unlock(&chan.lock);
	return err;
}

/* The connection is broken: fail every waiter, and let the next call try to find an INS again. */
static void chan_broken_locked(int fd)
{
	if (chan.fd == fd) {
		struct stat st;

		/* Closed under us (close_range) and the number reused: it is the program's now. */
		if (fstat(fd, &st) == 0 && st.st_ino == chan.fd_ino)
			syscall(SYS_close, fd);
		chan.fd = -1;
	}
	for (struct waiter *w = chan.waiters; w; w = w->next) {
		w->done = true;
		w->err = -EIO;
	}
	pthread_cond_broadcast(&chan.cond);
}

/* Read one response and hand it to its waiter.  flags: MSG_DONTWAIT to only look (-EAGAIN: nothing yet). */
static int chan_read_one_locked(int fd, int flags)
{
	struct mw_rsp r;
	int rfd, trunc;
	ssize_t n;

	chan.reading = true;
	pthread_mutex_unlock(&chan.lock);
	n = mw_recv_fd(fd, &r, sizeof(r), &rfd, &trunc, flags);
	if (n >= 0 && rfd >= 0)
		__atomic_store_n(&chan.inflight, rfd, __ATOMIC_RELAXED);
	pthread_mutex_lock(&chan.lock);
	chan.reading = false;
	chan.inflight = -1; /* from here the lock keeps fork out (chan_atfork_prepare) until it is filed or closed */
	if (n == -EINTR || n == -EAGAIN) {
		pthread_cond_broadcast(&chan.cond);
		return (int)n;
	}
	if (chan_rsp_frame_check(&r, n, trunc)) {
		if (rfd >= 0)
			syscall(SYS_close, rfd);
		chan_broken_locked(fd);
		return -EIO;
	}
	for (struct waiter *w = chan.waiters; w; w = w->next) {
		if (w->req_id == r.req_id && !w->done) {
			/* Nobody may be waiting for a batch's socket yet: up out of the low numbers at once. */
			if (rfd >= 0 && waiter_is_async(w))
				rfd = shim_fd_move_high(rfd);
			w->rsp = r;
			w->fd = rfd;
			w->done = true;
			rfd = -1;
			break;
		}
	}
	if (rfd >= 0)
		syscall(SYS_close, rfd);
	/* A response nobody waits for belongs to a thread that is gone (exec, or a signal): dropped. */
	pthread_cond_broadcast(&chan.cond);
	return 0;
}

static void chan_unlink_locked(struct waiter *w)
{
	for (struct waiter **pp = &chan.waiters; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			return;
		}
	}
}

/* Send q[0..n): the first carries fd if there is one.  Returns how many went, all of them unless the channel
 * broke.  One sendmmsg for a batch: a request per call would be a system call per socket asked for. */
static int chan_send_reqs(int cfd, struct mw_req *q, int n, int fd)
{
	struct mmsghdr mm[CHAN_BATCH_MAX];
	struct iovec iov[CHAN_BATCH_MAX];
	int sent = 0;

	if (fd >= 0 || n == 1) {
		if (mw_send_fd(cfd, &q[0], sizeof(q[0]), fd, 0) != (ssize_t)sizeof(q[0]))
			return 0;
		sent = 1;
	}
	while (sent < n) {
		int k = n - sent, m;

		for (int i = 0; i < k; i++) {
			iov[i] = (struct iovec){ .iov_base = &q[sent + i], .iov_len = sizeof(q[0]) };
			mm[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
		}
		m = (int)syscall(SYS_sendmmsg, cfd, mm, (unsigned)k, MSG_NOSIGNAL);
		if (m < 0 && errno == EINTR)
			continue;
		if (m <= 0)
			break;
		for (int i = 0; i < m; i++) {
			if (mm[i].msg_len != sizeof(q[0]))
				return sent + i; /* a seqpacket send is all or nothing: cannot happen */
		}
		sent += m;
	}
	return sent;
}

/* Number n requests and queue a waiter for each, on the channel that is open now (connecting it if need be).
 * Returns its fd, or a negative errno (-ENETDOWN: *epoch names an INS that is gone).  *covers: the
 * unanswered requests sent before these, which their answers show handled. */
static int chan_enqueue(struct mw_req *q, int n, uint8_t *epoch, struct waiter *w, uint64_t *covers)
{
	int err, cfd;

	memset(w, 0, sizeof(*w) * (size_t)n);
	pthread_mutex_lock(&chan.lock);
	err = chan_ensure_locked();
	if (!err && *epoch && *epoch != chan.epoch)
		err = -ENETDOWN; /* made on an INS that is gone: its id means nothing here */
	if (err) {
		pthread_mutex_unlock(&chan.lock);
		return err;
	}
	*epoch = chan.epoch;
	cfd = chan.fd;
	*covers = chan.noreply_sent;
	for (int i = 0; i < n; i++) {
		w[i].fd = -1;
		q[i].version = MW_PROTO_VERSION;
		q[i].req_id = w[i].req_id = chan.next_req++;
		if (!chan.next_req)
			chan.next_req = 1; /* 0 is HELLO's */
		w[i].next = chan.waiters;
		chan.waiters = &w[i];
	}
	pthread_mutex_unlock(&chan.lock);
	return cfd;
}

/* Wait until every waiter has its answer (or the channel broke: sent < n fails them all). */
static void chan_await(int cfd, struct waiter *w, int n, int sent, uint64_t covers)
{
	pthread_mutex_lock(&chan.lock);
	if (sent < n) {
		for (int i = 0; i < n; i++) {
			w[i].done = true;
			w[i].err = -EIO;
		}
		chan_broken_locked(cfd);
	}
	for (int i = 0; i < n; i++) {
		while (!w[i].done) {
			if (!chan.reading)
				chan_read_one_locked(cfd, 0);
			else
				pthread_cond_wait(&chan.cond, &chan.lock);
		}
	}
	for (int i = 0; i < n; i++)
		chan_unlink_locked(&w[i]);
	if (!w[0].err && covers > chan.noreply_done)
		chan.noreply_done = covers; /* answered: mwinsd has handled everything sent before it */
	pthread_mutex_unlock(&chan.lock);
}

/* The first error among the answers (a response that breaks the protocol is -EIO: nothing of it is used);
 * on one, every descriptor that came is closed. */
static int chan_answers_check(const struct mw_req *q, struct waiter *w, int n, bool want_fd)
{
	int err = 0;

	for (int i = 0; i < n; i++) {
		if (!w[i].err && chan_rsp_check(&q[i], &w[i].rsp, w[i].fd >= 0, want_fd))
			w[i].err = -EIO;
		if (w[i].err && !err)
			err = w[i].err;
	}
	for (int i = 0; err && i < n; i++) {
		if (w[i].fd >= 0)
			syscall(SYS_close, w[i].fd);
	}
	return err;
}

/* Send n requests (q[0] with fd, if fd >= 0) back to back and wait for every response: one round trip for
 * all of them, since mwinsd answers a batch in one wake-up.  rfd[i] (if rfd) gets each one's descriptor. */
static int chan_exchange(struct mw_req *q, int n, uint8_t *epoch, int fd, struct mw_rsp *r, int *rfd)
{
	struct waiter w[CHAN_BATCH_MAX];
	int cfd, err, tries = *epoch ? 1 : 2;
	uint64_t covers = 0;

	for (;;) {
		cfd = chan_enqueue(q, n, epoch, w, &covers);
		if (cfd < 0)
			return cfd;
		chan_await(cfd, w, n, chan_send_reqs(cfd, q, n, fd), covers);
		err = chan_answers_check(q, w, n, rfd != NULL);
		/* The INS died under us: a request that names no socket may go to the next one. */
		if (err != -EIO || --tries <= 0)
			break;
		*epoch = 0;
	}
	if (err)
		return err;
	for (int i = 0; i < n; i++) {
		r[i] = w[i].rsp;
		if (rfd)
			rfd[i] = w[i].fd;
	}
	return 0;
}

int chan_call(struct mw_req *q, uint8_t *epoch, int fd, struct mw_rsp *r, int *rfd)
{
	return chan_exchange(q, 1, epoch, fd, r, rfd);
}

int chan_call_many(struct mw_req *q, int n, uint8_t *epoch, struct mw_rsp *r, int *rfd)
{
	*epoch = 0;
	if (n < 1 || n > CHAN_BATCH_MAX)
		return -EINVAL;
	for (int i = 0; i < n; i++) {
		if (q[i].cmd != MW_CMD_SOCKET)
			return -EINVAL; /* only requests that name no socket may move to another INS on a retry */
	}
	return chan_exchange(q, n, epoch, -1, r, rfd);
}

int chan_async_send(struct mw_req *q, int n)
{
	int cfd, err, sent;

	if (n < 1 || n > CHAN_BATCH_MAX)
		return -EINVAL;
	pthread_mutex_lock(&chan.lock);
	err = async.n ? -EBUSY : chan_ensure_locked();
	if (err) {
		pthread_mutex_unlock(&chan.lock);
		return err;
	}
	for (int i = 0; i < n; i++) {
		if (q[i].cmd != MW_CMD_SOCKET) {
			pthread_mutex_unlock(&chan.lock);
			return -EINVAL; /* checked before any waiter is linked */
		}
	}
	cfd = chan.fd;
	async.epoch = chan.epoch;
	for (int i = 0; i < n; i++) {
		q[i].version = MW_PROTO_VERSION;
		q[i].flags = MW_REQ_IDLE; /* made when mwinsd has nothing else to do (proto.h) */
		q[i].req_id = chan.next_req++;
		if (!chan.next_req)
			chan.next_req = 1; /* 0 is HELLO's */
		async.q[i] = q[i];
		async.w[i] = (struct waiter){ .req_id = q[i].req_id, .fd = -1, .next = chan.waiters };
		chan.waiters = &async.w[i];
	}
	async.n = n;
	pthread_mutex_unlock(&chan.lock);

	sent = chan_send_reqs(cfd, q, n, -1);
	if (sent < n) {
		pthread_mutex_lock(&chan.lock);
		chan_broken_locked(cfd); /* every waiter, ours too, is done with -EIO */
		pthread_mutex_unlock(&chan.lock);
	}
	return 0;
}

int chan_async_collect(struct mw_rsp *r, int *rfd, int *n, uint8_t *epoch)
{
	pthread_mutex_lock(&chan.lock);
	if (!async.n) {
		pthread_mutex_unlock(&chan.lock);
		return -ENOENT;
	}
	for (int i = 0; i < async.n; i++) {
		while (!async.w[i].done) {
			/* Another thread reading: it files what it reads, and we look again next time. */
			if (chan.reading || chan_read_one_locked(chan.fd, MSG_DONTWAIT) == -EAGAIN) {
				pthread_mutex_unlock(&chan.lock);
				return -EAGAIN;
			}
		}
	}
	for (int i = 0; i < async.n; i++) {
		struct waiter *w = &async.w[i];

		chan_unlink_locked(w);
		if (!w->err && chan_rsp_check(&async.q[i], &w->rsp, w->fd >= 0, true))
			w->err = -EIO; /* mwinsd broke the protocol: nothing of this response is used */
		r[i] = w->rsp;
		if (w->err) {
			r[i].ret = w->err;
			if (w->fd >= 0)
				syscall(SYS_close, w->fd);
			w->fd = -1;
		}
		rfd[i] = w->fd;
	}
	*n = async.n;
	*epoch = async.epoch;
	async.n = 0;
	pthread_mutex_unlock(&chan.lock);
	return 0;
}

int chan_send_noreply(const struct shim_fd *e, struct mw_req *q, int fd)
{
	int cfd, err;
	ssize_t n;

	pthread_mutex_lock(&chan.lock);
	err = chan_ensure_locked();
	if (!err && e->epoch != chan.epoch)
		err = -ENETDOWN;
	cfd = chan.fd;
	pthread_mutex_unlock(&chan.lock);
	if (err)
		return err;
	q->version = MW_PROTO_VERSION;
	q->req_id = 0; /* never answered, so never matched */
	q->flags |= MW_REQ_NOREPLY;
	n = mw_send_fd(cfd, q, sizeof(*q), fd, 0);
	pthread_mutex_lock(&chan.lock);
	/* Counted once sent: an answered request that read the count before has certainly been sent after. */
	if (n == (ssize_t)sizeof(*q))
		chan.noreply_sent++;
	else
		chan_broken_locked(cfd);
	pthread_mutex_unlock(&chan.lock);
	return n == (ssize_t)sizeof(*q) ? 0 : -EIO;
}
