/*
 * relisten.c: a listening socket outlives its INS.  When the mwinsd that holds a program's listener dies,
 * the listener's carrier hangs up; the program's next accept() re-creates the listener on the INS the
 * process attaches to next (same address, same backlog, same IPV6_V6ONLY) and puts the new carrier in the
 * old one's place: the same fd number with the same flags.  The original system did the same by copying
 * listeners to each new INS.
 *
 * Event loops watch listeners with epoll, and an epoll registration belongs to the old carrier's open file,
 * which dup3 releases.  So epoll_ctl is interposed for listeners (one table lookup for any other fd), their
 * registrations are remembered, and they are made again on the new carrier.
 *
 * Known limit: a listener shared by several processes (a prefork server's workers) is re-created by the
 * first process that calls accept; the others find the address taken.  Their listener is then parked: a
 * carrier that never brings a connection (its other end stays open here), so that they neither spin on a
 * hung-up carrier nor fail; the first process serves alone.
 *
 * Locking: one mutex over the table.  listen, accept and epoll_ctl are not on the async-signal-safe paths
 * the shim keeps lock-free (close, read, write, send, recv), and an entry is never trusted unless it still
 * names the socket the fd table names (close needs no hook: a closed listener's entry goes stale).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mwlib.h"
#include "shim.h"

#define RELISTEN_REGS 8 /* epoll sets one listener can be in, remembered */

struct relisten {
	int fd;
	uint32_t sock_id;
	uint8_t epoch;
	int backlog;
	int v6only; /* -1: not an AF_INET6 socket */
	struct {
		int epfd;
		struct epoll_event ev;
	} reg[RELISTEN_REGS];
	int nreg;
	int parked; /* the other end of a parked carrier (see above), or -1 */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct relisten *tab;
static size_t ntab, captab;

/* The live entry for fd, or NULL; stale entries (the fd now names another socket) are dropped. */
static struct relisten *find(int fd, const struct shim_fd *e)
{
	for (size_t i = 0; i < ntab; i++) {
		if (tab[i].fd != fd)
			continue;
		if (tab[i].sock_id == e->sock_id && tab[i].epoch == e->epoch)
			return &tab[i];
		if (tab[i].parked >= 0)
			syscall(SYS_close, tab[i].parked);
		tab[i] = tab[--ntab];
		return NULL;
	}
	return NULL;
}

void relisten_note(int fd, const struct shim_fd *e, int backlog, int v6only)
{
	struct relisten *l;

	pthread_mutex_lock(&lock);
	l = find(fd, e);
	if (!l) {
		if (ntab == captab) {
			size_t cap = captab ? captab * 2 : 16;
			struct relisten *t = realloc(tab, cap * sizeof(*t));

			if (!t) {
				pthread_mutex_unlock(&lock); /* it just won't survive its INS */
				return;
			}
			tab = t;
			captab = cap;
		}
		l = &tab[ntab++];
		memset(l, 0, sizeof(*l));
		l->fd = fd;
		l->sock_id = e->sock_id;
		l->epoch = e->epoch;
		l->parked = -1;
	}
	l->backlog = backlog;
	l->v6only = v6only;
	pthread_mutex_unlock(&lock);
}

void relisten_epoll(int epfd, int op, int fd, const struct shim_fd *e, const struct epoll_event *ev)
{
	struct relisten *l;
	int i;

	pthread_mutex_lock(&lock);
	l = find(fd, e);
	if (l) {
		for (i = 0; i < l->nreg && l->reg[i].epfd != epfd; i++)
			;
		if (op == EPOLL_CTL_DEL) {
			if (i < l->nreg)
				l->reg[i] = l->reg[--l->nreg];
		} else if (ev && (i < l->nreg || l->nreg < RELISTEN_REGS)) {
			if (i == l->nreg)
				l->nreg++;
			l->reg[i].epfd = epfd;
			l->reg[i].ev = *ev;
		}
	}
	pthread_mutex_unlock(&lock);
}

/* A listener made on the current INS, bound where the dead one was: its fd, or a negative errno. */
static int relisten_make(const struct relisten *l, uint8_t family, const struct mw_addr *local)
{
	struct sockaddr_storage ss;
	struct shim_fd ne;
	int one = 1, nfd, len, err = 0;

	len = mw_addr_to_sockaddr(local, &ss);
	if (len < 0)
		return len;
	nfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (nfd < 0)
		return -errno;
	if (fdtab_get(nfd, &ne) != SHIM_STREAM) {
		err = -ECONNABORTED; /* no INS yet: the program retries, as after any aborted connection */
	} else if (setsockopt(nfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		   (l->v6only >= 0 &&
		    setsockopt(nfd, IPPROTO_IPV6, IPV6_V6ONLY, &l->v6only, sizeof(l->v6only)) < 0) ||
		   bind(nfd, (struct sockaddr *)&ss, (socklen_t)len) < 0 || listen(nfd, l->backlog) < 0) {
		err = -errno;
	}
	if (err) {
		close(nfd);
		return err;
	}
	return nfd;
}

/* Another process holding the same listener re-created it first: park ours (see the top of the file). */
static int relisten_park(int fd, const struct shim_fd *e, int fl, int fdfl)
{
	struct relisten *l;
	int sv[2], err = 0;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	if (real.fcntl(sv[0], F_SETFL, fl & O_NONBLOCK) < 0 ||
	    real.dup3(sv[0], fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0)
		err = -errno;
	syscall(SYS_close, sv[0]);
	if (err) {
		syscall(SYS_close, sv[1]);
		return err;
	}
	pthread_mutex_lock(&lock);
	l = find(fd, e);
	if (l && l->parked < 0)
		l->parked = sv[1];
	else
		syscall(SYS_close, sv[1]); /* no entry to keep it in: the carrier hangs up, accept says EINVAL */
	pthread_mutex_unlock(&lock);
	return 0;
}

int relisten(int fd, const struct shim_fd *e)
{
	struct mw_sock_rec rec;
	struct relisten *l, copy;
	struct shim_fd ne;
	int nfd, fl, fdfl;

	/* Only a listener whose INS died: one that was shut down or closed says so in its record. */
	if (page_read(e, &rec) < 0 || rec.state != MW_SS_LISTENING || page_epoch() == 0 ||
	    (page_shut(e) & SHIM_SHUT_RD))
		return -ENOENT;
	pthread_mutex_lock(&lock);
	l = find(fd, e);
	if (l)
		copy = *l;
	pthread_mutex_unlock(&lock);
	if (!l)
		return -ENOENT;
	fl = real.fcntl(fd, F_GETFL);
	fdfl = real.fcntl(fd, F_GETFD);
	if (fl < 0 || fdfl < 0)
		return -errno;
	nfd = relisten_make(&copy, e->family, &rec.local);
	if (nfd == -EADDRINUSE)
		return relisten_park(fd, e, fl, fdfl);
	if (nfd < 0)
		return nfd;
	/* The new carrier takes the old one's place, with the program's flags. */
	if (fdtab_get(nfd, &ne) != SHIM_LISTEN || real.fcntl(nfd, F_SETFL, fl & O_NONBLOCK) < 0 ||
	    real.dup3(nfd, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
		int err = -errno;

		close(nfd);
		return err ? err : -EIO;
	}
	fdtab_set(fd, &ne);
	fdtab_clear(nfd);
	syscall(SYS_close, nfd); /* no close hint: the socket lives on at fd */
	pthread_mutex_lock(&lock);
	l = find(fd, e); /* the entry still names the old socket */
	if (l) {
		l->sock_id = ne.sock_id;
		l->epoch = ne.epoch;
	}
	pthread_mutex_unlock(&lock);
	/* The old carrier's epoll registrations went with it: make them again. */
	for (int i = 0; i < copy.nreg; i++) {
		struct epoll_event ev = copy.reg[i].ev;

		real.epoll_ctl(copy.reg[i].epfd, EPOLL_CTL_ADD, fd, &ev);
	}
	return 0;
}

SHIM_EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	struct shim_fd e;
	int ret;

	real_init();
	ret = real.epoll_ctl(epfd, op, fd, ev);
	if (ret == 0 && fdtab_sock(fd, &e) == SHIM_LISTEN)
		relisten_epoll(epfd, op, fd, &e, ev);
	return ret;
}
