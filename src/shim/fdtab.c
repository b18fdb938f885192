/*
 * fdtab.c: the carrier table.  Two levels of 1024 so that a process with a few fds costs one 8 KiB page,
 * and lookups are two atomic loads.  Second-level pages are mmap'ed, never freed (an fd number once used
 * is likely to be used again), and published with a release store so a lookup never sees a half-made page.
 */
#include <sys/mman.h>

#include "shim.h"

uint64_t *_Atomic shim_fdtab[FDTAB_L1];

int fdtab_set(int fd, const struct shim_fd *e)
{
	uint64_t *l2, v;
	unsigned i = (unsigned)fd / FDTAB_L2;

	if ((unsigned)fd >= FDTAB_L1 * FDTAB_L2)
		return -EMFILE;
	l2 = __atomic_load_n(&shim_fdtab[i], __ATOMIC_ACQUIRE);
	if (!l2) {
		uint64_t *expect = NULL;

		l2 = mmap(NULL, FDTAB_L2 * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);
		if (l2 == MAP_FAILED)
			return -ENOMEM;
		if (!__atomic_compare_exchange_n(&shim_fdtab[i], &expect, l2, false, __ATOMIC_ACQ_REL,
						 __ATOMIC_ACQUIRE)) {
			munmap(l2, FDTAB_L2 * sizeof(uint64_t));
			l2 = expect;
		}
	}
	__builtin_memcpy(&v, e, sizeof(v));
	__atomic_store_n(&l2[(unsigned)fd % FDTAB_L2], v, __ATOMIC_RELEASE);
	return 0;
}

void fdtab_clear(int fd)
{
	uint64_t *l2;

	if ((unsigned)fd >= FDTAB_L1 * FDTAB_L2)
		return;
	l2 = __atomic_load_n(&shim_fdtab[(unsigned)fd / FDTAB_L2], __ATOMIC_ACQUIRE);
	if (l2)
		__atomic_store_n(&l2[(unsigned)fd % FDTAB_L2], 0, __ATOMIC_RELEASE);
}

int fdtab_next(unsigned from, unsigned last)
{
	if (last >= FDTAB_L1 * FDTAB_L2)
		last = FDTAB_L1 * FDTAB_L2 - 1;
	for (unsigned fd = from; fd <= last;) {
		uint64_t *l2 = __atomic_load_n(&shim_fdtab[fd / FDTAB_L2], __ATOMIC_ACQUIRE);

		if (!l2) {
			fd = (fd / FDTAB_L2 + 1) * FDTAB_L2; /* a page never made holds nothing */
			continue;
		}
		if (__atomic_load_n(&l2[fd % FDTAB_L2], __ATOMIC_ACQUIRE))
			return (int)fd;
		fd++;
	}
	return -1;
}

static void fdtab_change_flags(int fd, uint32_t sock_id, uint8_t set, uint8_t clear)
{
	uint64_t *l2, old, new;
	struct shim_fd e;

	if ((unsigned)fd >= FDTAB_L1 * FDTAB_L2)
		return;
	l2 = __atomic_load_n(&shim_fdtab[(unsigned)fd / FDTAB_L2], __ATOMIC_ACQUIRE);
	if (!l2)
		return;
	old = __atomic_load_n(&l2[(unsigned)fd % FDTAB_L2], __ATOMIC_ACQUIRE);
	do {
		__builtin_memcpy(&e, &old, sizeof(e));
		if (!old || e.sock_id != sock_id)
			return;
		e.flags = (uint8_t)((e.flags | set) & ~clear);
		__builtin_memcpy(&new, &e, sizeof(new));
	} while (!__atomic_compare_exchange_n(&l2[(unsigned)fd % FDTAB_L2], &old, new, false, __ATOMIC_ACQ_REL,
					      __ATOMIC_ACQUIRE));
}

void fdtab_add_flags(int fd, uint32_t sock_id, uint8_t flags)
{
	fdtab_change_flags(fd, sock_id, flags, 0);
}

void fdtab_clear_flags(int fd, uint32_t sock_id, uint8_t flags)
{
	fdtab_change_flags(fd, sock_id, 0, flags);
}

void fdtab_connected(int fd, struct shim_fd *e, const struct mw_sock_rec *rec)
{
	fdtab_add_flags(fd, e->sock_id, SHIM_F_CONNECTED);
	e->flags |= SHIM_F_CONNECTED;
	if ((rec->flags & MW_REC_SNDBUF) && rec->sndbuf) {
		/* SO_SNDBUF reports twice what was set: set half of what it reported before the connect. */
		int v = (int)(rec->sndbuf / 2);

		if (real.setsockopt)
			real.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	}
}

enum shim_kind fdtab_settle(int fd, struct shim_fd *e)
{
	struct mw_sock_rec rec;

	if (page_read(e, &rec) < 0)
		return (enum shim_kind)e->kind;
	if (rec.state == MW_SS_CONNECTED) {
		fdtab_connected(fd, e, &rec);
	} else if (rec.state == MW_SS_LISTENING) {
		e->kind = SHIM_LISTEN;
		fdtab_set(fd, e);
	}
	return (enum shim_kind)e->kind;
}
