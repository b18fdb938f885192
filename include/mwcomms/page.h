/*
 * mwcomms shared state page: one memfd per process group, written only by mwinsd and mapped read-only by
 * the shim.  It holds one record per socket so that getsockname, getpeername and SO_ERROR need no round trip,
 * and so that the shim can turn a carrier's EOF into the real errno (ECONNRESET, ETIMEDOUT, ...).
 *
 * Layout: struct mw_page_hdr at offset 0, then nslots struct mw_sock_rec, slot i at
 * sizeof(struct mw_page_hdr) + i * sizeof(struct mw_sock_rec).
 *
 * Concurrency: each record is a seqlock.  mwinsd (the only writer) makes seq odd, writes the fields, makes seq
 * even again.  A reader copies the whole record between two reads of seq and retries if they differ or are
 * odd.  The shim gives up after a few retries (a hostile mwinsd could keep seq odd forever) and reports EIO.
 * The shim treats every value as hostile: it checks the copy's sock_id against the id it expects, the family
 * against AF_INET/AF_INET6, and error against the errno range.
 */
#ifndef MWCOMMS_PAGE_H
#define MWCOMMS_PAGE_H

#include <stdint.h>

#include "proto.h"

#define MW_PAGE_MAGIC 0x6d77706167650001ULL /* "mwpage", layout 1 */
#define MW_PAGE_MAX_SLOTS 65536             /* slot numbers are 16 bits (MW_SOCK_SLOT) */

enum mw_sock_state {
	MW_SS_FREE = 0,
	MW_SS_OPEN,        /* created, not connected */
	MW_SS_CONNECTING,
	MW_SS_CONNECTED,
	MW_SS_LISTENING,
	MW_SS_CLOSED,      /* the connection ended; error says how, if it did not end cleanly */
};

struct mw_page_hdr {
	uint64_t magic;
	uint32_t nslots;
	uint32_t pad;
	uint64_t pad2[6];
};
_Static_assert(sizeof(struct mw_page_hdr) == 64, "page header layout");

enum mw_rec_flags {
	/* The program's end of the carrier was given EOF on purpose (the peer's FIN, or the program's own
	 * SHUT_RD), set /before/ the EOF is sent.  An EOF without it, on a socket not closed, means mwinsd went
	 * away: the shim reports ECONNRESET, not a clean end of stream. */
	MW_REC_EOF = 1U << 0,
	/* The program closed a copy of the socket while its connect was in flight, and mwinsd let go of its own
	 * copy of the program's end (it must not keep the carrier alive): the shim gives the carrier its send
	 * buffer back itself (sndbuf, as SO_SNDBUF reported it) once it sees the socket connected. */
	MW_REC_SNDBUF = 1U << 1,
};

struct mw_sock_rec {
	uint32_t seq;       /* seqlock: odd while mwinsd writes */
	uint32_t sock_id;   /* the id this record describes; 0 when free */
	uint16_t state;     /* enum mw_sock_state */
	uint16_t flags;     /* enum mw_rec_flags */
	int32_t error;      /* pending socket error, positive errno, 0 for none */
	uint32_t error_seq; /* bumped each time a new error is posted; the shim remembers which it consumed */
	uint32_t sndbuf;    /* with MW_REC_SNDBUF: the carrier's send buffer to restore; else 0 */
	struct mw_addr local;
	struct mw_addr peer;
	uint64_t bytes_in;  /* bytes delivered to the program */
	uint64_t bytes_out; /* bytes the program sent that reached the real socket */
};
_Static_assert(sizeof(struct mw_sock_rec) == 104, "socket record layout");

static inline uint64_t mw_page_size(uint32_t nslots)
{
	return sizeof(struct mw_page_hdr) + (uint64_t)nslots * sizeof(struct mw_sock_rec);
}

#endif /* MWCOMMS_PAGE_H */
