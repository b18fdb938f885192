/*
 * sup.c: the supervisor.  The socket calls of programs that bypass the shim (static and Go binaries make
 * them with the raw instruction), trapped by the gate's filter (gate.c) and carried out here on the same
 * carriers, protocol and page the shim uses.  A Go program's TCP socket is then a carrier, as a shim
 * program's is: its reads, writes and epoll go straight to the kernel, untrapped.
 *
 * It runs as a thread of mwrun's init (I, PID 1 of the command's PID namespace), beside the gate's thread,
 * which receives every notification and hands over the ones that are ours through a pipe.  One thread:
 * every call is answered in the order it came, from a loop that never waits for the program.  A blocking
 * connect is the one call that waits, and it waits in that loop (on its carrier), not in a handler.
 *
 * Who speaks to mwinsd.  The supervisor opens one control connection per protected process that makes a
 * trapped call, and says HELLO on it with SCM_CREDENTIALS naming that process (its pid, uid and gid), not
 * itself.  The kernel lets a sender name another pid only with CAP_SYS_ADMIN over its PID namespace's owner,
 * which the init has; mwinsd takes such a claim only from the PID namespace's init and only for a pid of that
 * namespace (src/ins/client.c, client_identify), and then reads the process's exe, argv and namespace from
 * /proc itself.  So mwinsd's records name the program (hey, caddy), with its pid, as for a shim program;
 * nothing the program says decides it.
 *
 * Which fd is a carrier: one this supervisor installed (its inode is in the table, by page slot), or one
 * mwinsd recognises (MW_CMD_IDENTIFY: a carrier a shim program made and passed on).  A call on any other fd
 * continues to the kernel (SECCOMP_USER_NOTIF_FLAG_CONTINUE), which re-reads the arguments: that is safe only
 * because the command's network namespace is the boundary, so nothing a continued call can do reaches a
 * network.  No value read from the program's memory decides anything the namespace does not also enforce,
 * and each pointer argument is read once, into our memory, before it is used.
 *
 * Signals: the filter asks SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (gate.c), so once a call is here only a
 * fatal signal takes it back.  A signal that comes earlier restarts the call before we saw it, as the
 * kernel's would; one that comes later is delivered when the call returns.  So nothing is done twice or
 * lost under Go's SIGURG preemption; Go makes no blocking socket calls, so the delay is never noticed there.
 * A blocking connect (a C program's) delays a handled signal until it ends, as a connect to a local peer does.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "mwcomms/page.h"
#include "mwlib.h"
#include "run.h"

#ifndef SECCOMP_ADDFD_FLAG_SEND
#define SECCOMP_ADDFD_FLAG_SEND (1UL << 1)
#endif
#ifndef SO_RCVTIMEO_NEW
#define SO_RCVTIMEO_NEW 66
#define SO_SNDTIMEO_NEW 67
#endif

#define CALL_TIMEOUT_S 10 /* mwinsd answers at once; one that does not is treated as gone */

/* What the gate's thread hands over: one notification, and for a connect the gate's duplicate of the
 * program's socket and the address it read.  Written to a pipe in one write (under PIPE_BUF: atomic). */
struct sup_msg {
	struct seccomp_notif n;
	pid_t tgid;
	int fd;
	socklen_t alen;
	struct sockaddr_storage addr;
};

/* A carrier we know, by its slot in the page.  Entries are replaced when mwinsd reuses the slot. */
struct sup_sock {
	uint64_t ino;       /* the program's end's inode; 0: free */
	uint32_t sock_id;
	uint16_t family;
	bool told;          /* a completed connect was reported (a later one gets EISCONN, as TCP's does) */
	uint32_t consumed;  /* the page's error_seq already reported */
};

/* A protected process with a control connection of ours. */
struct sup_proc {
	pid_t tgid;
	int pidfd;
	int ctl;
	struct sup_proc *next;
};

/* A blocking connect waiting for its carrier to become writable. */
struct sup_wait {
	uint64_t id;  /* the notification */
	int fd;       /* our duplicate of the carrier */
	uint32_t slot;
	bool accept;        /* a blocking accept (else a blocking connect) */
	struct sup_msg msg; /* the accept's call */
	struct sup_wait *next;
};

static struct {
	const struct gate *g;
	int lfd;
	int ep;
	int pipe[2];
	bool started;
	bool addfd;         /* the kernel has SECCOMP_IOCTL_NOTIF_ADDFD (5.9) */
	bool addfd_send;    /* ... and SECCOMP_ADDFD_FLAG_SEND (5.14) */
	const struct mw_sock_rec *recs;
	uint32_t nslots;
	uint64_t page_ino;      /* the mapped page's memfd, to see a new group's */
	size_t page_len;
	struct sup_sock *socks; /* nslots entries */
	int32_t *hash;          /* inode -> slot, open addressing; hcap entries, -1 empty */
	uint32_t hcap;
	struct sup_proc *procs;
	struct sup_wait *waits;
	uint32_t req_id;
} sup = { .pipe = { -1, -1 } };

static int accept_one(const struct sup_msg *m, struct sup_sock *s, int fd);

/* ---------------------------------------------------------------- answers */

/* Answer with val, or with err (a positive errno) when it is not 0. */
static void reply(uint64_t id, int64_t val, int err)
{
	struct seccomp_notif_resp r = { .id = id, .val = err ? 0 : val, .error = -err };

	ioctl(sup.lfd, SECCOMP_IOCTL_NOTIF_SEND, &r); /* ENOENT: the caller is gone; nothing to do */
}

static void reply_continue(uint64_t id)
{
	struct seccomp_notif_resp r = { .id = id, .flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE };

	ioctl(sup.lfd, SECCOMP_IOCTL_NOTIF_SEND, &r);
}

/* Install fd in the caller as the call's result.  Returns the new fd number, or -errno (-ENOENT: the caller
 * is gone, and has no new fd). */
static int reply_fd(uint64_t id, int fd, bool cloexec)
{
	struct seccomp_notif_addfd a = { .id = id, .srcfd = (uint32_t)fd, .newfd_flags = cloexec ? O_CLOEXEC : 0 };
	int nfd;

	if (sup.addfd_send) {
		a.flags = SECCOMP_ADDFD_FLAG_SEND;
		nfd = ioctl(sup.lfd, SECCOMP_IOCTL_NOTIF_ADDFD, &a);
		return nfd < 0 ? -errno : nfd;
	}
	/* Without SEND the fd is installed first and the answer follows: a caller killed in between leaves
	 * nothing behind, since its descriptor table goes with it. */
	nfd = ioctl(sup.lfd, SECCOMP_IOCTL_NOTIF_ADDFD, &a);
	if (nfd < 0)
		return -errno;
	reply(id, nfd, 0);
	return nfd;
}

static bool gone(uint64_t id)
{
	return ioctl(sup.lfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) < 0;
}

/* ---------------------------------------------------------------- the program's memory */

static int mem_read(pid_t tid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len }, remote = { (void *)(uintptr_t)addr, len };

	if (!len)
		return 0;
	return process_vm_readv(tid, &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -EFAULT;
}

static int mem_write(pid_t tid, uint64_t addr, const void *buf, size_t len)
{
	struct iovec local = { (void *)buf, len }, remote = { (void *)(uintptr_t)addr, len };

	if (!len)
		return 0;
	return process_vm_writev(tid, &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -EFAULT;
}

/* Store an option value of vlen bytes for a getsockopt whose caller's buffer said ulen, as the kernel does
 * for its own options: what fits, and the length stored. */
static int opt_out(pid_t tid, const struct seccomp_notif *n, const void *v, uint32_t vlen, int ulen)
{
	uint32_t len = (uint32_t)ulen < vlen ? (uint32_t)ulen : vlen;
	int err = mem_write(tid, n->data.args[3], v, len);

	return err ? err : mem_write(tid, n->data.args[4], &len, sizeof(len));
}

/* ---------------------------------------------------------------- the page */

/* A copy of slot's record, taken between two equal even reads of its seqlock (page.h); mwinsd is not
 * trusted: the copy must name sock_id, and its fields be in range.  Returns 0, -ESTALE (another socket's
 * now) or -EIO. */
static int rec_read(uint32_t slot, uint32_t sock_id, struct mw_sock_rec *out)
{
	const struct mw_sock_rec *r;

	if (!sup.recs || slot >= sup.nslots)
		return -EIO;
	r = &sup.recs[slot];
	for (int i = 0; i < 10000; i++) {
		uint32_t s1 = __atomic_load_n(&r->seq, __ATOMIC_ACQUIRE), s2;

		if (s1 & 1) {
			if (i > 100)
				nanosleep(&(struct timespec){ 0, 20000 }, NULL);
			continue;
		}
		memcpy(out, (const void *)r, sizeof(*out));
		/* The copy /before/ the second read of seq. */
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		s2 = __atomic_load_n(&r->seq, __ATOMIC_RELAXED);
		if (s1 != s2)
			continue;
		if (out->sock_id != sock_id)
			return -ESTALE;
		if (out->error < 0 || out->error > 4095 || out->state > MW_SS_CLOSED)
			return -EIO;
		return 0;
	}
	return -EIO;
}

/* The socket's pending error, once (positive errno, 0 for none). */
static int take_error(struct sup_sock *s, uint32_t slot)
{
	struct mw_sock_rec rec;

	if (rec_read(slot, s->sock_id, &rec) || !rec.error || rec.error_seq == s->consumed)
		return 0;
	s->consumed = rec.error_seq;
	return rec.error;
}

/* Map the group's page from HELLO's memfd.  mwinsd frees a group that has no client and no socket left (the
 * last process of the command ended, and with it our connection for it), and a later HELLO makes a new
 * one, with a new page: then the old page and the table go (no socket of the old group is left).  Returns
 * 0 or -errno. */
static int page_map(int memfd, const struct mw_hello_args *h)
{
	struct stat st;
	void *p;

	if (fstat(memfd, &st) < 0)
		return -errno;
	if (sup.recs && (uint64_t)st.st_ino == sup.page_ino)
		return 0;
	if (sup.recs) {
		munmap((char *)sup.recs - sizeof(struct mw_page_hdr), sup.page_len);
		free(sup.socks);
		free(sup.hash);
		sup.recs = NULL;
		sup.socks = NULL;
		sup.hash = NULL;
		sup.nslots = 0;
	}
	if (!h->nslots || h->nslots > MW_PAGE_MAX_SLOTS || h->page_size != mw_page_size(h->nslots) ||
	    (uint64_t)st.st_size < h->page_size)
		return -EIO;
	p = mmap(NULL, h->page_size, PROT_READ, MAP_SHARED, memfd, 0);
	if (p == MAP_FAILED)
		return -errno;
	sup.socks = calloc(h->nslots, sizeof(*sup.socks));
	for (sup.hcap = 2; sup.hcap < 2 * h->nslots; sup.hcap <<= 1)
		;
	sup.hash = malloc(sup.hcap * sizeof(*sup.hash));
	if (!sup.socks || !sup.hash) {
		munmap(p, h->page_size);
		free(sup.socks);
		free(sup.hash);
		sup.socks = NULL;
		sup.hash = NULL;
		return -ENOMEM;
	}
	memset(sup.hash, 0xff, sup.hcap * sizeof(*sup.hash));
	sup.recs = (const struct mw_sock_rec *)((const char *)p + sizeof(struct mw_page_hdr));
	sup.nslots = h->nslots;
	sup.page_ino = (uint64_t)st.st_ino;
	sup.page_len = h->page_size;
	return 0;
}

/* ---------------------------------------------------------------- the carrier table */

static uint32_t ino_hash(uint64_t ino)
{
	return (uint32_t)((ino * 0x9e3779b97f4a7c15ULL) >> 32) & (sup.hcap - 1);
}

static int32_t hash_find(uint64_t ino)
{
	for (uint32_t i = ino_hash(ino);; i = (i + 1) & (sup.hcap - 1)) {
		int32_t slot = sup.hash[i];

		if (slot < 0)
			return -1;
		if (sup.socks[slot].ino == ino)
			return slot;
	}
}

/* Remove the entry for ino, moving later entries of its run back so that no lookup stops short. */
static void hash_del(uint64_t ino)
{
	uint32_t i = ino_hash(ino), j, k;

	for (;; i = (i + 1) & (sup.hcap - 1)) {
		if (sup.hash[i] < 0)
			return;
		if (sup.socks[sup.hash[i]].ino == ino)
			break;
	}
	sup.hash[i] = -1;
	for (j = (i + 1) & (sup.hcap - 1); sup.hash[j] >= 0; j = (j + 1) & (sup.hcap - 1)) {
		k = ino_hash(sup.socks[sup.hash[j]].ino);
		/* Move it back if its home is not cyclically within (i, j]. */
		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			sup.hash[i] = sup.hash[j];
			sup.hash[j] = -1;
			i = j;
		}
	}
}

static struct sup_sock *sock_add(uint64_t ino, uint32_t sock_id, uint16_t family)
{
	uint32_t slot = MW_SOCK_SLOT(sock_id), i;
	struct sup_sock *s;
	int32_t old;

	if (!sup.socks || slot >= sup.nslots)
		return NULL;
	s = &sup.socks[slot];
	if (s->ino)
		hash_del(s->ino);
	old = hash_find(ino);
	if (old >= 0) {
		hash_del(ino);
		sup.socks[old].ino = 0;
	}
	*s = (struct sup_sock){ .ino = ino, .sock_id = sock_id, .family = family };
	for (i = ino_hash(ino); sup.hash[i] >= 0; i = (i + 1) & (sup.hcap - 1))
		;
	sup.hash[i] = (int32_t)slot;
	return s;
}

/* ---------------------------------------------------------------- control connections */

static void proc_drop(struct sup_proc *p)
{
	struct sup_proc **pp;

	for (pp = &sup.procs; *pp && *pp != p; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = p->next;
	epoll_ctl(sup.ep, EPOLL_CTL_DEL, p->pidfd, NULL);
	close(p->pidfd);
	close(p->ctl);
	free(p);
}

/* One request, one answer, on p's connection (mwinsd answers everything we send at once: connects go out
 * non-blocking).  A descriptor that comes back is stored in *rfd (-1 if none).  Returns 0, or -errno when the
 * connection failed (it is then dropped: the process's next call makes a new one). */
static int call(struct sup_proc *p, struct mw_req *q, int fd, struct mw_rsp *r, int *rfd)
{
	int trunc, got = -1;
	ssize_t n;

	q->version = MW_PROTO_VERSION;
	q->req_id = ++sup.req_id;
	if (rfd)
		*rfd = -1;
	n = mw_send_fd(p->ctl, q, sizeof(*q), fd, 0);
	if (n != (ssize_t)sizeof(*q))
		goto broken;
	do {
		n = mw_recv_fd(p->ctl, r, sizeof(*r), &got, &trunc, 0);
	} while (n == -EINTR);
	if (n != (ssize_t)sizeof(*r) || trunc || r->version != MW_PROTO_VERSION || r->req_id != q->req_id ||
	    r->cmd != q->cmd)
		goto broken;
	if (rfd)
		*rfd = got;
	else if (got >= 0)
		close(got);
	return 0;
broken:
	if (got >= 0)
		close(got);
	proc_drop(p);
	return -ECONNABORTED;
}

/* The real uid and gid of process tgid, as /proc says them in our user namespace. */
static int proc_ids(pid_t tgid, uid_t *uid, gid_t *gid)
{
	char path[64], line[256];
	unsigned u = (unsigned)-1, g = (unsigned)-1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tgid);
	f = fopen(path, "re");
	if (!f)
		return -ESRCH;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Uid: %u", &u) == 1 || sscanf(line, "Gid: %u", &g) == 1)
			continue;
	fclose(f);
	if (u == (unsigned)-1 || g == (unsigned)-1)
		return -ESRCH;
	*uid = u;
	*gid = g;
	return 0;
}

/* HELLO for tgid on a new connection, naming it in SCM_CREDENTIALS.  Returns 0 or -errno. */
static int proc_hello(struct sup_proc *p)
{
	struct mw_req q = { .version = MW_PROTO_VERSION, .cmd = MW_CMD_HELLO, .req_id = ++sup.req_id };
	struct mw_rsp r;
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(struct ucred))];
	} c = { 0 };
	struct iovec iov = { &q, sizeof(q) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.b, .msg_controllen = sizeof(c.b) };
	struct ucred cred = { .pid = p->tgid };
	int memfd = -1, trunc, err;
	ssize_t n;

	if ((err = proc_ids(p->tgid, &cred.uid, &cred.gid)) < 0)
		return err;
	c.h.cmsg_level = SOL_SOCKET;
	c.h.cmsg_type = SCM_CREDENTIALS;
	c.h.cmsg_len = CMSG_LEN(sizeof(cred));
	memcpy(CMSG_DATA(&c.h), &cred, sizeof(cred));
	if (sendmsg(p->ctl, &m, MSG_NOSIGNAL) != (ssize_t)sizeof(q))
		return -errno;
	do {
		n = mw_recv_fd(p->ctl, &r, sizeof(r), &memfd, &trunc, 0);
	} while (n == -EINTR);
	err = n != (ssize_t)sizeof(r) || trunc || r.version != MW_PROTO_VERSION || r.req_id != q.req_id ? -EPROTO
	      : r.ret < 0 ? r.ret
	      : memfd < 0 ? -EPROTO
			  : page_map(memfd, &r.u.hello);
	if (memfd >= 0)
		close(memfd);
	return err;
}

/* The control connection for process tgid, made (and HELLO said) if it has none.  The caller's notification
 * id is checked after the pidfd is taken: a pid we name is the caller's.  Returns NULL on failure. */
static struct sup_proc *proc_get(pid_t tgid, uint64_t id)
{
	struct sup_proc *p;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = CALL_TIMEOUT_S };

	for (p = sup.procs; p; p = p->next) {
		if (p->tgid != tgid)
			continue;
		/* A pid reused before we saw its process end: that connection was someone else's. */
		if (poll(&(struct pollfd){ .fd = p->pidfd, .events = POLLIN }, 1, 0) == 0)
			return p;
		proc_drop(p);
		break;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->tgid = tgid;
	p->ctl = -1;
	p->pidfd = (int)syscall(SYS_pidfd_open, tgid, 0);
	if (p->pidfd < 0 || gone(id))
		goto fail;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sup.g->ins_sock);
	p->ctl = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (p->ctl < 0 || connect(p->ctl, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    setsockopt(p->ctl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(p->ctl, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 || proc_hello(p) < 0)
		goto fail;
	/* Its end (the pidfd reads ready) closes the connection. */
	if (epoll_ctl(sup.ep, EPOLL_CTL_ADD, p->pidfd, &(struct epoll_event){ .events = EPOLLIN, .data.ptr = p }) < 0)
		goto fail;
	p->next = sup.procs;
	sup.procs = p;
	return p;
fail:
	if (sup.g->cfg->verbose)
		fprintf(stderr, "mwrun: supervisor: no control connection for pid %d: %s\n", (int)tgid, strerror(errno));
	if (p->ctl >= 0)
		close(p->ctl);
	if (p->pidfd >= 0)
		close(p->pidfd);
	free(p);
	return NULL;
}

/* ---------------------------------------------------------------- which fd is a carrier */

/* The gate's duplicate of the caller's fd n.  Returns the fd or -errno (-EBADF: the caller has no such fd). */
static int fd_take(pid_t tgid, int n)
{
	int pidfd = (int)syscall(SYS_pidfd_open, tgid, 0), fd;

	if (pidfd < 0)
		return -errno;
	fd = (int)syscall(SYS_pidfd_getfd, pidfd, n, 0);
	if (fd < 0)
		fd = -errno;
	close(pidfd);
	return fd;
}

/* Is fd (ours) a stream carrier?  Returns its entry, or NULL: not one (the call goes to the kernel). */
static struct sup_sock *carrier_of(int fd, struct sup_proc *p)
{
	struct mw_req q = { .cmd = MW_CMD_IDENTIFY };
	struct mw_rsp r;
	struct ucred cred;
	struct stat st;
	int v;
	socklen_t l = sizeof(v), cl = sizeof(cred);
	int32_t slot;

	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
		return NULL;
	if (sup.hash && (slot = hash_find((uint64_t)st.st_ino)) >= 0)
		return &sup.socks[slot];
	/* Not one we made: ask mwinsd only about a connected unix stream socket whose peer is outside the
	 * command's PID namespace (mwinsd made every carrier: the kernel says pid 0 for it here). */
	if (!p || getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &l) < 0 || v != AF_UNIX ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &l) < 0 || v != SOCK_STREAM ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 || cred.pid != 0)
		return NULL;
	if (call(p, &q, fd, &r, NULL) < 0 || r.ret < 0 || r.u.ident.kind == MW_KIND_DGRAM ||
	    (r.u.ident.family != AF_INET && r.u.ident.family != AF_INET6))
		return NULL;
	return sock_add((uint64_t)st.st_ino, r.sock_id, r.u.ident.family);
}

/* ---------------------------------------------------------------- the calls */

static void do_socket(const struct sup_msg *m)
{
	const struct seccomp_notif *n = &m->n;
	int domain = (int)n->data.args[0], type = (int)n->data.args[1], proto = (int)n->data.args[2];
	struct mw_req q = { .cmd = MW_CMD_SOCKET };
	struct mw_rsp r;
	struct sup_proc *p;
	struct stat st;
	int fd, nfd, t = 0;
	socklen_t tl = sizeof(t);

	/* UDP, raw sockets and flags the kernel refuses: the kernel's, in the command's namespace. */
	if ((type & 0xf) != SOCK_STREAM || (type & ~(0xf | SOCK_NONBLOCK | SOCK_CLOEXEC)) ||
	    (proto != 0 && proto != IPPROTO_TCP) || !sup.addfd) {
		reply_continue(n->id);
		return;
	}
	p = proc_get(m->tgid, n->id);
	if (!p) {
		reply(n->id, 0, gone(n->id) ? 0 : ENETDOWN);
		return;
	}
	q.u.socket = (struct mw_socket_args){ .domain = domain, .type = SOCK_STREAM, .protocol = proto };
	if (call(p, &q, -1, &r, &fd) < 0) {
		reply(n->id, 0, ENETDOWN);
		return;
	}
	if (r.ret < 0 || fd < 0) {
		if (fd >= 0)
			close(fd);
		reply(n->id, 0, r.ret < 0 ? -r.ret : EIO);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &tl) < 0 || t != SOCK_STREAM || fstat(fd, &st) < 0 ||
	    ((type & SOCK_NONBLOCK) && fcntl(fd, F_SETFL, O_NONBLOCK) < 0)) {
		close(fd);
		reply(n->id, 0, EIO);
		return;
	}
	nfd = reply_fd(n->id, fd, type & SOCK_CLOEXEC);
	if (nfd >= 0)
		sock_add((uint64_t)st.st_ino, r.sock_id, (uint16_t)domain);
	else if (nfd != -ENOENT)
		reply(n->id, 0, -nfd);
	close(fd); /* the program's copy is the socket now; a caller gone before it took it leaves none */
}

/* Fill the carrier's send side so that it stays unwritable until mwinsd has the connect's outcome (as the
 * shim does: socket.c shim_fill).  Returns the bytes written or -errno; *sndbuf gets the buffer to restore. */
static int carrier_fill(int fd, uint32_t *sndbuf)
{
	static const char zeros[16384];
	int one = 1, v = 0;
	socklen_t len = sizeof(v);
	uint32_t total = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &len) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &one, sizeof(one)) < 0)
		return -errno;
	*sndbuf = (uint32_t)v;
	for (int i = 0; i < 16; i++) {
		ssize_t k = send(fd, zeros, sizeof(zeros), MSG_DONTWAIT | MSG_NOSIGNAL);

		if (k < 0)
			return errno == EAGAIN ? (int)total : -errno;
		total += (uint32_t)k;
		if ((size_t)k < sizeof(zeros))
			return (int)total;
	}
	return -ENOBUFS;
}

/* A connect's outcome once its carrier woke: 0 or -errno. */
static int connect_outcome(int fd, struct sup_sock *s, uint32_t slot)
{
	struct mw_sock_rec rec;
	int dummy, err;
	socklen_t tl = sizeof(dummy);

	if (rec_read(slot, s->sock_id, &rec) == 0 && rec.state == MW_SS_CONNECTED) {
		s->told = true;
		return 0;
	}
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &dummy, &tl); /* the carrier's own error is only our signal */
	err = take_error(s, slot);
	return err ? -err : -ECONNABORTED;
}

/* Returns true when fd was kept (a blocking connect now waits on it). */
static bool do_connect(const struct sup_msg *m, struct sup_sock *s, struct sup_proc *p, int fd)
{
	uint32_t slot = MW_SOCK_SLOT(s->sock_id);
	struct mw_req q = { .cmd = MW_CMD_CONNECT, .sock_id = s->sock_id };
	struct mw_sock_rec rec;
	struct mw_rsp r;
	struct sup_wait *w;
	int err, fl, fill;

	err = mw_addr_from_sockaddr(&q.u.connect.addr, (const struct sockaddr *)&m->addr, m->alen);
	if (err)
		goto answer;
	fl = fcntl(fd, F_GETFL);
	err = rec_read(slot, s->sock_id, &rec);
	if (err && err != -ESTALE)
		goto answer;
	if (err == -ESTALE || rec.state == MW_SS_CLOSED) {
		/* A connect that failed in the background: its error is the answer, once. */
		err = take_error(s, slot);
		err = err ? -err : -ECONNABORTED;
		goto answer;
	}
	if (rec.state == MW_SS_LISTENING) {
		err = -EISCONN;
		goto answer;
	}
	if (rec.state == MW_SS_CONNECTED) {
		err = s->told ? -EISCONN : 0;
		s->told = true;
		goto answer;
	}
	if (rec.state == MW_SS_CONNECTING) {
		if (fl & O_NONBLOCK) {
			err = -EALREADY;
			goto answer;
		}
		goto wait;
	}
	fill = carrier_fill(fd, &q.u.connect.sndbuf);
	if (fill < 0) {
		err = fill;
		goto answer;
	}
	q.u.connect.flags = MW_CONNECT_NONBLOCK;
	q.u.connect.fill = (uint32_t)fill;
	if (!p || call(p, &q, fd, &r, NULL) < 0) {
		err = -ECONNABORTED;
		goto answer;
	}
	err = r.ret;
	if (!err)
		s->told = true;
	if (err != -EINPROGRESS || (fl & O_NONBLOCK))
		goto answer;
wait:
	/* Blocking: the carrier wakes when mwinsd has the outcome (its send buffer back, or its end closed). */
	w = calloc(1, sizeof(*w));
	if (!w || epoll_ctl(sup.ep, EPOLL_CTL_ADD, fd, &(struct epoll_event){ .events = EPOLLOUT, .data.ptr = w }) < 0) {
		free(w);
		err = -ENOMEM;
		goto answer;
	}
	*w = (struct sup_wait){ .id = m->n.id, .fd = fd, .slot = slot, .next = sup.waits };
	sup.waits = w;
	return true;
answer:
	reply(m->n.id, 0, -err);
	return false;
}

static void wait_end(struct sup_wait *w, int err)
{
	struct sup_wait **pp;

	for (pp = &sup.waits; *pp && *pp != w; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = w->next;
	if (err != 1)
		reply(w->id, 0, -err);
	epoll_ctl(sup.ep, EPOLL_CTL_DEL, w->fd, NULL);
	close(w->fd);
	free(w);
}

static void wait_done(struct sup_wait *w)
{
	struct sup_sock *s = &sup.socks[w->slot];
	int ret;

	if (!w->accept) {
		wait_end(w, s->ino ? connect_outcome(w->fd, s, w->slot) : -ECONNABORTED);
		return;
	}
	ret = s->ino ? accept_one(&w->msg, s, w->fd) : -EINVAL;
	if (ret != -EAGAIN)
		wait_end(w, ret == 2 ? 1 : ret); /* 2: answered with its fd */
}

/* getsockname, getpeername: from the page. */
static int do_name(const struct sup_msg *m, struct sup_sock *s, bool peer)
{
	const struct seccomp_notif *n = &m->n;
	uint32_t slot = MW_SOCK_SLOT(s->sock_id);
	struct mw_addr any = { .family = s->family };
	struct sockaddr_storage ss;
	struct mw_sock_rec rec;
	int ulen, len, err;

	if ((err = mem_read(n->pid, n->data.args[2], &ulen, sizeof(ulen))) < 0)
		return err;
	if (ulen < 0)
		return -EINVAL;
	err = rec_read(slot, s->sock_id, &rec);
	if (peer) {
		if (err)
			return err == -ESTALE ? -ENOTCONN : err;
		if (rec.state != MW_SS_CONNECTED || !rec.peer.family)
			return -ENOTCONN;
	} else if (err && err != -ESTALE) {
		return err;
	}
	len = mw_addr_to_sockaddr(peer ? &rec.peer : !err && rec.local.family ? &rec.local : &any, &ss);
	if (len < 0)
		return -EIO;
	err = mem_write(n->pid, n->data.args[1], &ss, (size_t)(ulen < len ? ulen : len));
	return err ? err : mem_write(n->pid, n->data.args[2], &len, sizeof(len));
}

static bool opt_is_carriers(int level, int name)
{
	return level == SOL_SOCKET && (name == SO_RCVTIMEO_OLD || name == SO_SNDTIMEO_OLD ||
				       name == SO_RCVTIMEO_NEW || name == SO_SNDTIMEO_NEW);
}

/* Returns 1 when the call goes to the kernel (on the carrier), else 0 or -errno for the program. */
static int do_getsockopt(const struct sup_msg *m, struct sup_sock *s, struct sup_proc *p, int fd)
{
	const struct seccomp_notif *n = &m->n;
	int level = (int)n->data.args[1], name = (int)n->data.args[2], ulen, v, err;
	struct mw_req q = { .cmd = MW_CMD_GETSOCKOPT, .sock_id = s->sock_id };
	struct mw_rsp r;
	struct mw_sock_rec rec;

	if (opt_is_carriers(level, name))
		return 1;
	if ((err = mem_read(n->pid, n->data.args[4], &ulen, sizeof(ulen))) < 0)
		return err;
	if (ulen < 0)
		return -EINVAL;
	if (level == SOL_SOCKET) {
		switch (name) {
		case SO_ERROR: {
			int dummy;
			socklen_t dl = sizeof(dummy);

			getsockopt(fd, SOL_SOCKET, SO_ERROR, &dummy, &dl);
			v = take_error(s, MW_SOCK_SLOT(s->sock_id));
			return opt_out(n->pid, n, &v, sizeof(v), ulen);
		}
		case SO_TYPE:
			v = SOCK_STREAM;
			return opt_out(n->pid, n, &v, sizeof(v), ulen);
		case SO_DOMAIN:
			v = s->family;
			return opt_out(n->pid, n, &v, sizeof(v), ulen);
		case SO_PROTOCOL:
			v = IPPROTO_TCP;
			return opt_out(n->pid, n, &v, sizeof(v), ulen);
		case SO_ACCEPTCONN:
			v = rec_read(MW_SOCK_SLOT(s->sock_id), s->sock_id, &rec) == 0 && rec.state == MW_SS_LISTENING;
			return opt_out(n->pid, n, &v, sizeof(v), ulen);
		default:
			break;
		}
	}
	q.u.opt.level = level;
	q.u.opt.name = name;
	q.u.opt.len = ulen > MW_OPT_MAX ? MW_OPT_MAX : (uint32_t)ulen;
	if (!p || call(p, &q, -1, &r, NULL) < 0)
		return -ENETDOWN;
	if (r.ret < 0)
		return r.ret;
	if (r.u.opt.len > q.u.opt.len)
		return -EIO;
	return opt_out(n->pid, n, r.u.opt.val, r.u.opt.len, (int)r.u.opt.len);
}

static int do_setsockopt(const struct sup_msg *m, struct sup_sock *s, struct sup_proc *p)
{
	const struct seccomp_notif *n = &m->n;
	int level = (int)n->data.args[1], name = (int)n->data.args[2], err;
	uint32_t len = (uint32_t)n->data.args[4];
	struct mw_req q = { .cmd = MW_CMD_SETSOCKOPT, .sock_id = s->sock_id };
	struct mw_rsp r;

	if (opt_is_carriers(level, name))
		return 1;
	if ((int)len < 0 || len > MW_OPT_MAX)
		return -EINVAL;
	if ((err = mem_read(n->pid, n->data.args[3], q.u.opt.val, len)) < 0)
		return err;
	if (gone(n->id))
		return 0; /* what we read may be another process's: nothing is done */
	q.u.opt.level = level;
	q.u.opt.name = name;
	q.u.opt.len = len;
	if (!p || call(p, &q, -1, &r, NULL) < 0)
		return -ENETDOWN;
	return r.ret;
}

static int do_shutdown(const struct sup_msg *m, struct sup_sock *s, struct sup_proc *p, int fd)
{
	int how = (int)m->n.data.args[1];
	struct mw_req q = { .cmd = MW_CMD_SHUTDOWN, .sock_id = s->sock_id };
	struct mw_sock_rec rec;
	struct mw_rsp r;
	int err;

	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
		return -EINVAL;
	err = rec_read(MW_SOCK_SLOT(s->sock_id), s->sock_id, &rec);
	if (err && err != -ESTALE)
		return err;
	if (err || (rec.state != MW_SS_CONNECTED && rec.state != MW_SS_LISTENING))
		return -ENOTCONN;
	/* Our write side is the carrier's: mwinsd sees its EOF and passes the FIN on after the last byte. */
	if (rec.state == MW_SS_CONNECTED && how != SHUT_RD && shutdown(fd, SHUT_WR) < 0)
		return -errno;
	if (how == SHUT_WR)
		return 0;
	q.u.shutdown.how = SHUT_RD;
	if (!p || call(p, &q, -1, &r, NULL) < 0)
		return -ENETDOWN;
	return r.ret;
}

static int do_bind(const struct sup_msg *m, struct sup_sock *s, struct sup_proc *p)
{
	const struct seccomp_notif *n = &m->n;
	struct sockaddr_storage ss;
	uint64_t ulen = n->data.args[2];
	struct mw_req q = { .cmd = MW_CMD_BIND, .sock_id = s->sock_id };
	struct mw_rsp r;
	int err;

	if ((int)ulen < 0 || ulen > sizeof(ss))
		return -EINVAL; /* as the kernel's move_addr_to_kernel */
	if ((err = mem_read(n->pid, n->data.args[1], &ss, ulen)) < 0)
		return err;
	if (gone(n->id))
		return 0;
	if ((err = mw_addr_from_sockaddr(&q.u.addr, (struct sockaddr *)&ss, (socklen_t)ulen)) < 0)
		return err;
	if (!p || call(p, &q, -1, &r, NULL) < 0)
		return -ENETDOWN;
	return r.ret;
}

/* A listener keeps its carrier; its send side is filled so that it is never writable, as TCP's is not
 * (the shim's listener_fill). */
static int do_listen(const struct sup_msg *m, struct sup_sock *s, struct sup_proc *p, int fd)
{
	struct mw_req q = { .cmd = MW_CMD_LISTEN, .sock_id = s->sock_id };
	struct mw_rsp r;
	struct mw_sock_rec rec;
	int one = 1, stray = -1, was;

	was = rec_read(MW_SOCK_SLOT(s->sock_id), s->sock_id, &rec) == 0 && rec.state == MW_SS_LISTENING;
	q.u.listen.backlog = (int32_t)m->n.data.args[1];
	if (!p || call(p, &q, -1, &r, &stray) < 0)
		return -ENETDOWN;
	if (stray >= 0)
		close(stray);
	if (r.ret < 0)
		return r.ret;
	if (!was) {
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &one, sizeof(one));
		for (int i = 0; i < 64 && send(fd, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1; i++)
			;
	}
	return 0;
}

/* One accepted connection from listener fd's carrier, installed in the caller.  Returns the new fd, -EAGAIN
 * when none is pending, or -errno. */
static int accept_one(const struct sup_msg *m, struct sup_sock *s, int fd)
{
	const struct seccomp_notif *n = &m->n;
	int flags = n->data.nr == __NR_accept4 ? (int)n->data.args[3] : 0;
	struct sockaddr_storage ss;
	struct mw_accept a;
	struct stat st;
	int nfd = -1, trunc, type = 0, len, ulen = 0, err;
	socklen_t tl = sizeof(type);
	ssize_t k;

	if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
		return -EINVAL;
	if (n->data.args[1] && n->data.args[2] && (err = mem_read(n->pid, n->data.args[2], &ulen, sizeof(ulen))) < 0)
		return err;
	if (ulen < 0)
		return -EINVAL;
	for (;;) {
		k = mw_recv_fd(fd, &a, sizeof(a), &nfd, &trunc, MSG_DONTWAIT);
		if (k == 0 || k == -ECONNRESET)
			return -EINVAL; /* shut down, or its INS gone: TCP says EINVAL */
		if (k < 0)
			return k == -EAGAIN ? -EAGAIN : (int)k;
		/* mwinsd is not trusted: a wrong size, a missing or odd fd, a bad address, and it is dropped. */
		if (k != (ssize_t)sizeof(a) || trunc || nfd < 0 || a.version != MW_PROTO_VERSION ||
		    (len = mw_addr_to_sockaddr(&a.peer, &ss)) < 0 || a.peer.family != s->family ||
		    getsockopt(nfd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_STREAM || fstat(nfd, &st) < 0) {
			if (nfd >= 0)
				close(nfd);
			continue;
		}
		break;
	}
	/* The address first, as the kernel's accept: once the answer is sent the program runs on. */
	err = 0;
	if (n->data.args[1] && n->data.args[2]) {
		err = mem_write(n->pid, n->data.args[1], &ss, (size_t)(ulen < len ? ulen : len));
		if (!err)
			err = mem_write(n->pid, n->data.args[2], &len, sizeof(len));
	}
	if (!err && (flags & SOCK_NONBLOCK) && fcntl(nfd, F_SETFL, O_NONBLOCK) < 0)
		err = -errno;
	if (!err) {
		err = reply_fd(n->id, nfd, flags & SOCK_CLOEXEC);
		if (err >= 0) {
			struct sup_sock *ns = sock_add((uint64_t)st.st_ino, a.sock_id, s->family);

			if (ns)
				ns->told = true;
		}
	}
	close(nfd); /* the program's copy is the connection now (or, on failure, it is closed: lost, as the
		     * kernel's accept loses one whose address it could not store) */
	return err < 0 ? err : 2;
}

/* Returns true when fd was kept (a blocking accept now waits on it). */
static bool do_accept(const struct sup_msg *m, struct sup_sock *s, int fd)
{
	struct mw_sock_rec rec;
	struct sup_wait *w;
	int ret;

	if (rec_read(MW_SOCK_SLOT(s->sock_id), s->sock_id, &rec) != 0 || rec.state != MW_SS_LISTENING) {
		reply(m->n.id, 0, EINVAL);
		return false;
	}
	ret = accept_one(m, s, fd);
	if (ret != -EAGAIN || (fcntl(fd, F_GETFL) & O_NONBLOCK)) {
		if (ret != 2)
			reply(m->n.id, 0, -ret);
		return false;
	}
	w = calloc(1, sizeof(*w));
	if (!w || epoll_ctl(sup.ep, EPOLL_CTL_ADD, fd, &(struct epoll_event){ .events = EPOLLIN, .data.ptr = w }) < 0) {
		free(w);
		reply(m->n.id, 0, ENOMEM);
		return false;
	}
	*w = (struct sup_wait){ .id = m->n.id, .fd = fd, .slot = MW_SOCK_SLOT(s->sock_id), .next = sup.waits,
				.accept = true, .msg = *m };
	sup.waits = w;
	return true;
}

/* One notification.  Every path answers it exactly once (or leaves it to a wait that will). */
static void handle(struct sup_msg *m)
{
	const struct seccomp_notif *n = &m->n;
	struct sup_sock *s;
	struct sup_proc *p;
	int fd = m->fd, ret;

	if (n->data.nr == __NR_socket) {
		do_socket(m);
		return;
	}
	if (fd < 0) {
		fd = fd_take(m->tgid, (int)n->data.args[0]);
		if (fd < 0) {
			reply_continue(n->id); /* no such fd: the kernel says so */
			return;
		}
	}
	s = carrier_of(fd, NULL);
	p = s || n->data.nr == __NR_connect ? proc_get(m->tgid, n->id) : NULL;
	if (!s && n->data.nr == __NR_connect)
		s = carrier_of(fd, p);
	if (!s && n->data.nr != __NR_connect) {
		/* Maybe a carrier a shim program made and passed on: only mwinsd can tell. */
		struct ucred cred;
		socklen_t cl = sizeof(cred);

		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0 && cred.pid == 0) {
			p = proc_get(m->tgid, n->id);
			s = carrier_of(fd, p);
		}
	}
	if (!s) {
		/* Not a carrier.  A connect the gate passed here is a connected unix stream socket's: EISCONN, as
		 * before; any other call is the kernel's, in the command's namespace. */
		if (n->data.nr == __NR_connect)
			reply(n->id, 0, EISCONN);
		else
			reply_continue(n->id);
		close(fd);
		return;
	}
	switch (n->data.nr) {
	case __NR_connect:
		if (do_connect(m, s, p, fd))
			return; /* fd waits */
		ret = 2;
		break;
	case __NR_getsockname:
		ret = do_name(m, s, false);
		break;
	case __NR_getpeername:
		ret = do_name(m, s, true);
		break;
	case __NR_getsockopt:
		ret = do_getsockopt(m, s, p, fd);
		break;
	case __NR_setsockopt:
		ret = do_setsockopt(m, s, p);
		break;
	case __NR_shutdown:
		ret = do_shutdown(m, s, p, fd);
		break;
	case __NR_bind:
		ret = do_bind(m, s, p);
		break;
	case __NR_listen:
		ret = do_listen(m, s, p, fd);
		break;
	case __NR_accept:
	case __NR_accept4:
		if (do_accept(m, s, fd))
			return; /* fd waits */
		ret = 2;
		break;
	default:
		ret = 1;
		break;
	}
	if (ret == 1)
		reply_continue(n->id);
	else if (ret != 2)
		reply(n->id, 0, -ret);
	close(fd);
}

/* ---------------------------------------------------------------- the loop */

static void *sup_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct epoll_event ev[16];
		int k = epoll_wait(sup.ep, ev, 16, sup.waits ? 1000 : -1);

		if (k < 0 && errno != EINTR)
			break;
		for (int i = 0; i < k; i++) {
			if (ev[i].data.ptr == &sup.pipe) {
				struct sup_msg msg;
				ssize_t got = read(sup.pipe[0], &msg, sizeof(msg));

				if (got == 0)
					return NULL;
				if (got == (ssize_t)sizeof(msg))
					handle(&msg);
				continue;
			}
			for (struct sup_wait *w = sup.waits; w; w = w->next)
				if (w == ev[i].data.ptr) {
					wait_done(w);
					goto next;
				}
			for (struct sup_proc *p = sup.procs; p; p = p->next)
				if (p == ev[i].data.ptr) {
					proc_drop(p); /* the process ended */
					break;
				}
next:;
		}
		/* A blocking connect whose caller was killed needs no answer. */
		for (struct sup_wait *w = sup.waits, *nx; w; w = nx) {
			nx = w->next;
			if (gone(w->id))
				wait_end(w, 1);
		}
	}
	return NULL;
}

/* Does the kernel have SECCOMP_IOCTL_NOTIF_ADDFD, and its SEND flag?  An id that waits for nothing tells:
 * ENOENT once the request is understood, EINVAL before. */
static void probe_addfd(void)
{
	struct seccomp_notif_addfd a = { .id = 0, .srcfd = (uint32_t)sup.pipe[0], .flags = SECCOMP_ADDFD_FLAG_SEND };

	if (ioctl(sup.lfd, SECCOMP_IOCTL_NOTIF_ADDFD, &a) < 0 && errno == ENOENT) {
		sup.addfd = sup.addfd_send = true;
		return;
	}
	a.flags = 0;
	sup.addfd = ioctl(sup.lfd, SECCOMP_IOCTL_NOTIF_ADDFD, &a) < 0 && errno == ENOENT;
}

int sup_start(const struct gate *g, int lfd)
{
	pthread_t t;
	pthread_attr_t attr;
	int err;

	if (sup.started)
		return 0;
	sup.g = g;
	sup.lfd = lfd;
	sup.ep = epoll_create1(EPOLL_CLOEXEC);
	if (sup.ep < 0 || pipe2(sup.pipe, O_CLOEXEC) < 0 ||
	    epoll_ctl(sup.ep, EPOLL_CTL_ADD, sup.pipe[0], &(struct epoll_event){ .events = EPOLLIN, .data.ptr = &sup.pipe }) < 0)
		return -errno;
	probe_addfd();
	if (!sup.addfd)
		fprintf(stderr, "mwrun: this kernel has no SECCOMP_IOCTL_NOTIF_ADDFD (Linux 5.9): programs that "
				"bypass the shim (static, Go) get no network\n");
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	err = pthread_create(&t, &attr, sup_main, NULL);
	pthread_attr_destroy(&attr);
	if (err)
		return -err;
	sup.started = true;
	return 0;
}

int sup_take(const struct seccomp_notif *n, pid_t tgid, int fd, const struct sockaddr_storage *addr, socklen_t alen)
{
	struct sup_msg m = { .n = *n, .tgid = tgid, .fd = fd, .alen = alen };

	_Static_assert(sizeof(m) <= PIPE_BUF, "one atomic write");
	if (!sup.started)
		return -ENOSYS;
	if (addr)
		memcpy(&m.addr, addr, alen <= sizeof(m.addr) ? alen : sizeof(m.addr));
	return write(sup.pipe[1], &m, sizeof(m)) == (ssize_t)sizeof(m) ? 0 : -EIO;
}
