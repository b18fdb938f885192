/*
 * page.c: reading the shared state page that mwinsd writes.  Each record is a seqlock; a copy is taken
 * between two reads of seq and checked before any field is used.  mwinsd is not trusted: the copy's id must be
 * the one we asked for, and its error must be a plausible errno.
 */
#include <string.h>

#include "shim.h"

static const struct mw_sock_rec *_Atomic page_recs;
static _Atomic uint32_t page_nslots;
static uint32_t *_Atomic page_consumed; /* per slot: the error_seq we already reported */
static uint64_t *_Atomic page_dest;     /* per slot: a hash of the last UDP destination mwinsd approved */
static uint8_t *_Atomic page_shutwr;    /* per slot: enum shim_shut bits this process applied */

void page_attach(const void *base, uint32_t nslots, uint32_t *consumed, uint64_t *dest, uint8_t *shutwr)
{
	__atomic_store_n(&page_shutwr, shutwr, __ATOMIC_RELEASE);
	__atomic_store_n(&page_dest, dest, __ATOMIC_RELEASE);
	__atomic_store_n(&page_consumed, consumed, __ATOMIC_RELEASE);
	__atomic_store_n(&page_nslots, nslots, __ATOMIC_RELEASE);
	__atomic_store_n(&page_recs, (const struct mw_sock_rec *)((const char *)base + sizeof(struct mw_page_hdr)),
			 __ATOMIC_RELEASE);
}

int page_read(uint32_t sock_id, struct mw_sock_rec *out)
{
	const struct mw_sock_rec *recs = __atomic_load_n(&page_recs, __ATOMIC_ACQUIRE);
	uint32_t slot = MW_SOCK_SLOT(sock_id);
	const struct mw_sock_rec *r;

	if (!recs)
		return -ENOTCONN;
	if (slot >= __atomic_load_n(&page_nslots, __ATOMIC_ACQUIRE))
		return -EIO;
	r = &recs[slot];
	for (int i = 0; i < 1000; i++) {
		uint32_t s1 = __atomic_load_n(&r->seq, __ATOMIC_ACQUIRE), s2;

		if (s1 & 1) {
			__builtin_ia32_pause();
			continue;
		}
		__builtin_memcpy(out, (const void *)r, sizeof(*out));
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

int page_take_error(uint32_t sock_id)
{
	uint32_t *consumed = __atomic_load_n(&page_consumed, __ATOMIC_ACQUIRE);
	struct mw_sock_rec rec;
	uint32_t seen;

	if (!consumed || page_read(sock_id, &rec) < 0 || !rec.error)
		return 0;
	seen = __atomic_load_n(&consumed[MW_SOCK_SLOT(sock_id)], __ATOMIC_ACQUIRE);
	if (seen == rec.error_seq)
		return 0;
	/* Only one caller gets each error, as with the kernel's sk_err. */
	if (!__atomic_compare_exchange_n(&consumed[MW_SOCK_SLOT(sock_id)], &seen, rec.error_seq, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return 0;
	return rec.error;
}

/* FNV-1a over the address; never 0, so that 0 means "nothing approved". */
static uint64_t dest_hash(const struct mw_addr *a)
{
	const unsigned char *p = (const unsigned char *)a;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < sizeof(*a); i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h | 1;
}

bool page_dest_known(uint32_t sock_id, const struct mw_addr *a)
{
	uint64_t *dest = __atomic_load_n(&page_dest, __ATOMIC_ACQUIRE);
	uint32_t slot = MW_SOCK_SLOT(sock_id);

	return dest && slot < __atomic_load_n(&page_nslots, __ATOMIC_ACQUIRE) &&
	       __atomic_load_n(&dest[slot], __ATOMIC_RELAXED) == dest_hash(a);
}

void page_dest_set(uint32_t sock_id, const struct mw_addr *a)
{
	uint64_t *dest = __atomic_load_n(&page_dest, __ATOMIC_ACQUIRE);
	uint32_t slot = MW_SOCK_SLOT(sock_id);

	if (dest && slot < __atomic_load_n(&page_nslots, __ATOMIC_ACQUIRE))
		__atomic_store_n(&dest[slot], a ? dest_hash(a) : 0, __ATOMIC_RELAXED);
}

void page_mark_shut(uint32_t sock_id, uint8_t bits)
{
	uint8_t *sw = __atomic_load_n(&page_shutwr, __ATOMIC_ACQUIRE);
	uint32_t slot = MW_SOCK_SLOT(sock_id);

	if (sw && slot < __atomic_load_n(&page_nslots, __ATOMIC_ACQUIRE))
		__atomic_fetch_or(&sw[slot], bits, __ATOMIC_RELAXED);
}

uint8_t page_shut(uint32_t sock_id)
{
	uint8_t *sw = __atomic_load_n(&page_shutwr, __ATOMIC_ACQUIRE);
	uint32_t slot = MW_SOCK_SLOT(sock_id);

	if (!sw || slot >= __atomic_load_n(&page_nslots, __ATOMIC_ACQUIRE))
		return 0;
	return __atomic_load_n(&sw[slot], __ATOMIC_RELAXED);
}

bool page_ins_gone(uint32_t sock_id, bool writing)
{
	uint8_t *sw = __atomic_load_n(&page_shutwr, __ATOMIC_ACQUIRE);
	struct mw_sock_rec rec;

	if (page_read(sock_id, &rec) < 0 || rec.state == MW_SS_CLOSED)
		return false;
	if (writing)
		return !(sw && (__atomic_load_n(&sw[MW_SOCK_SLOT(sock_id)], __ATOMIC_RELAXED) & SHIM_SHUT_WR));
	return !(rec.flags & MW_REC_EOF);
}
