/*
 * page.c: reading the shared state pages that mwinsd writes, and the per-socket state the shim keeps beside
 * them.
 *
 * Each record is a seqlock; a copy is taken between two reads of seq and checked before any field is used.
 * mwinsd is not trusted: the copy's id must be the one we asked for, and its error a plausible errno.
 *
 * There is one page per *epoch*: each time the process attaches to an INS that is not the one before (it
 * died, and another took over), the epoch moves on and the old page stays mapped.  A socket made on the old
 * INS keeps reading its old record (which says it was connected, and never says EOF: so the shim reports the
 * reset), and can never be confused with a socket of the new INS that happens to have the same id.
 */
#include <string.h>
#include <time.h>

#include "shim.h"

#define EPOCHS 256 /* epoch numbers are 8 bits; the oldest mapping is reused after 255 INS changes */

struct page_epoch {
	const struct mw_sock_rec *recs;
	uint32_t nslots;
	uint32_t *consumed; /* per slot: the error_seq we already reported */
	uint64_t *dest;     /* per slot: a hash of the last UDP destination mwinsd approved */
	uint8_t *shut;      /* per slot: enum shim_shut bits this process applied */
};

/* Each epoch number's entry is published by pointer, so a reader takes one pointer and reads a whole entry.  When
 * the numbers wrap, the entry is filled in the other of two stores: the one a reader may still be using is never
 * written under it.  page_attach runs under the channel's lock: one writer. */
static struct page_epoch store[2][EPOCHS];
static struct page_epoch *_Atomic epochs[EPOCHS];
static unsigned wraps;
static _Atomic uint8_t epoch_now;

uint8_t page_epoch(void)
{
	return __atomic_load_n(&epoch_now, __ATOMIC_ACQUIRE);
}

uint8_t page_attach(const void *base, uint32_t nslots, uint32_t *consumed, uint64_t *dest, uint8_t *shut)
{
	/* Epoch 0 is never used, so that a zeroed entry names no page. */
	uint8_t next = (uint8_t)(page_epoch() + 1) ? (uint8_t)(page_epoch() + 1) : 1;
	struct page_epoch *p;

	if (next == 1 && page_epoch())
		wraps++;
	p = &store[wraps & 1][next];
	p->recs = (const struct mw_sock_rec *)((const char *)base + sizeof(struct mw_page_hdr));
	p->nslots = nslots;
	p->consumed = consumed;
	p->dest = dest;
	p->shut = shut;
	/* Readers see the entry, and then the new epoch, /after/ the entry is complete. */
	__atomic_store_n(&epochs[next], p, __ATOMIC_RELEASE);
	__atomic_store_n(&epoch_now, next, __ATOMIC_RELEASE);
	return next;
}

static const struct page_epoch *epoch_of(const struct shim_fd *e, uint32_t *slot)
{
	const struct page_epoch *p;

	if (!e->epoch || e->epoch > page_epoch() + 0u)
		return NULL;
	p = __atomic_load_n(&epochs[e->epoch], __ATOMIC_ACQUIRE);
	*slot = MW_SOCK_SLOT(e->sock_id);
	if (!p || !p->recs || *slot >= p->nslots)
		return NULL;
	return p;
}

int page_rec_check(const struct mw_sock_rec *rec, uint32_t sock_id)
{
	if (rec->sock_id != sock_id)
		return -ESTALE;
	if (rec->error < 0 || rec->error > 4095 || rec->state > MW_SS_CLOSED)
		return -EIO;
	return 0;
}

/* How long a reader waits for a record mwinsd is writing: 1,000 pauses, then up to 2,000 naps of 50 us
 * (100 ms in all) before it calls the page unreadable.  Only a writer that stopped mid-record waits so long. */
#define SPINS 1000
#define NAPS 2000
#define NAP_NS 50000

int page_read(const struct shim_fd *e, struct mw_sock_rec *out)
{
	uint32_t slot;
	const struct page_epoch *p = epoch_of(e, &slot);
	const struct mw_sock_rec *r;

	if (!p)
		return -EIO;
	r = &p->recs[slot];
	for (int i = 0; i < SPINS + NAPS; i++) {
		uint32_t s1 = __atomic_load_n(&r->seq, __ATOMIC_ACQUIRE), s2;

		if (s1 & 1) {
			/* mwinsd is mid-write.  It may have been preempted there (two cores, many threads): spin a
			 * little, then sleep, so that the writer gets the CPU and a busy machine is not a failure. */
			if (i < SPINS) {
				__builtin_ia32_pause();
			} else {
				struct timespec nap = { 0, NAP_NS };

				nanosleep(&nap, NULL);
			}
			continue;
		}
		__builtin_memcpy(out, (const void *)r, sizeof(*out));
		/* The copy /before/ the second read of seq. */
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		s2 = __atomic_load_n(&r->seq, __ATOMIC_RELAXED);
		if (s1 != s2)
			continue;
		return page_rec_check(out, e->sock_id);
	}
	return -EIO;
}

int page_take_error(const struct shim_fd *e)
{
	uint32_t slot, seen;
	const struct page_epoch *p = epoch_of(e, &slot);
	struct mw_sock_rec rec;

	if (!p || page_read(e, &rec) < 0 || !rec.error)
		return 0;
	seen = __atomic_load_n(&p->consumed[slot], __ATOMIC_ACQUIRE);
	if (seen == rec.error_seq)
		return 0;
	/* Only one caller gets each error, as with the kernel's sk_err. */
	if (!__atomic_compare_exchange_n(&p->consumed[slot], &seen, rec.error_seq, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		return 0;
	return rec.error;
}

/* FNV-1a over the address; never 0, so that 0 means "nothing approved". */
static uint64_t dest_hash(const struct mw_addr *a)
{
	const unsigned char *b = (const unsigned char *)a;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < sizeof(*a); i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h | 1;
}

bool page_dest_known(const struct shim_fd *e, const struct mw_addr *a)
{
	uint32_t slot;
	const struct page_epoch *p = epoch_of(e, &slot);

	return p && __atomic_load_n(&p->dest[slot], __ATOMIC_RELAXED) == dest_hash(a);
}

void page_dest_set(const struct shim_fd *e, const struct mw_addr *a)
{
	uint32_t slot;
	const struct page_epoch *p = epoch_of(e, &slot);

	if (p)
		__atomic_store_n(&p->dest[slot], a ? dest_hash(a) : 0, __ATOMIC_RELAXED);
}

void page_mark_shut(const struct shim_fd *e, uint8_t bits)
{
	uint32_t slot;
	const struct page_epoch *p = epoch_of(e, &slot);

	if (p)
		__atomic_fetch_or(&p->shut[slot], bits, __ATOMIC_RELAXED);
}

uint8_t page_shut(const struct shim_fd *e)
{
	uint32_t slot;
	const struct page_epoch *p = epoch_of(e, &slot);

	return p ? __atomic_load_n(&p->shut[slot], __ATOMIC_RELAXED) : 0;
}

bool page_ins_gone(const struct shim_fd *e, bool writing)
{
	struct mw_sock_rec rec;

	if (page_read(e, &rec) < 0 || rec.state == MW_SS_CLOSED)
		return false;
	if (writing)
		return !(page_shut(e) & SHIM_SHUT_WR);
	return !(rec.flags & MW_REC_EOF);
}

void page_slot_new(const struct shim_fd *e)
{
	uint32_t slot;
	const struct page_epoch *p = epoch_of(e, &slot);

	if (p)
		__atomic_store_n(&p->shut[slot], 0, __ATOMIC_RELAXED);
}

bool page_fin_send_begin(const struct shim_fd *e, uint64_t *sent)
{
	uint32_t slot;
	const struct page_epoch *p = epoch_of(e, &slot);
	struct mw_sock_rec rec;

	/* One load on the hot path: a connection whose peer is still sending costs nothing more. */
	if (!p || !(__atomic_load_n(&p->recs[slot].flags, __ATOMIC_RELAXED) & MW_REC_EOF) ||
	    (page_shut(e) & SHIM_FIN_SENT))
		return false;
	if (page_read(e, &rec) < 0 || rec.state != MW_SS_CONNECTED || !(rec.flags & MW_REC_EOF))
		return false;
	page_mark_shut(e, SHIM_FIN_SENT);
	*sent = rec.bytes_out;
	return true;
}

void page_fin_send_wait(const struct shim_fd *e, uint64_t target)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct mw_sock_rec rec;
		struct timespec nap = { 0, 20000 };

		if (page_read(e, &rec) < 0 || rec.state != MW_SS_CONNECTED || rec.bytes_out >= target)
			return;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) > 20000000)
			return; /* mwinsd cannot pass it on yet (the peer's window is full): no answer to wait for */
		nanosleep(&nap, NULL);
	}
}
