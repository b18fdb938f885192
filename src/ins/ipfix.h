/*
 * ipfix.h: an IPFIX exporter (RFC 7011) over UDP, one bidirectional record (RFC 5103) per flow report.
 * The elements are listed in docs/telemetry.md ("IPFIX").
 *
 * A self-contained module: it knows nothing of mwinsd's objects; the caller fills struct ipfix_flow.  It
 * never blocks: the socket is non-blocking, and a message the kernel will not take is dropped and counted
 * (UDP export loses records under pressure by design; the event stream is the lossless-until-bounded path).
 *
 * Functions return 0 or a negative errno unless they say otherwise.
 */
#ifndef MW_IPFIX_H
#define MW_IPFIX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define IPFIX_PEN_DEFAULT 32473u /* RFC 5612: reserved for documentation (see docs/telemetry.md) */

enum ipfix_end_reason {
	IPFIX_END_IDLE = 1,
	IPFIX_END_ACTIVE = 2, /* a periodic report of a live flow */
	IPFIX_END_EOF = 3,
	IPFIX_END_FORCED = 4,
	IPFIX_END_RESOURCES = 5,
};

struct ipfix_flow {
	int family;                 /* AF_INET or AF_INET6 */
	uint8_t src[16], dst[16];   /* originator, responder; network order; 4 bytes used for AF_INET */
	uint16_t sport, dport;      /* host order */
	uint8_t proto;
	uint64_t start_ms, end_ms;  /* wall clock (ins_wall_ms) */
	uint64_t bytes, rbytes;     /* deltas since this flow's last record: originator's, responder's */
	uint64_t ops, rops;         /* relay transfers, exported as packetDeltaCount and its reverse */
	uint8_t end_reason;         /* enum ipfix_end_reason */
	uint16_t tcp_flags;         /* tcpControlBits: FIN 0x01 SYN 0x02 RST 0x04 ACK 0x10 */
	uint32_t pid, ppid, uid, gid;
	const char *exe, *comm, *rule; /* "" allowed, not NULL; cut to 255 bytes */
	uint8_t action;             /* 0 allow, 1 deny, 2 kill */
	uint8_t direction;          /* 0 outbound, 1 inbound */
};

struct ipfix_exporter;

/* Open an exporter to HOST:PORT (IPv4 dotted, [IPv6], or a name resolved once, now).  NULL with err filled. */
struct ipfix_exporter *ipfix_open(const char *collector, uint32_t domain, uint32_t pen, char *err,
				  size_t errlen);
void ipfix_close(struct ipfix_exporter *x); /* flushes first */

/* Queue one record; a message goes out when it is full (kept under 1,400 bytes so that it is never
 * fragmented on a 1,500-byte path) or at the next ipfix_flush. */
int ipfix_add(struct ipfix_exporter *x, const struct ipfix_flow *f, uint64_t now_ms);
/* Send what is queued.  Re-sends the templates when 60 s have passed since they last went. */
int ipfix_flush(struct ipfix_exporter *x, uint64_t now_ms);

struct ipfix_stats {
	uint64_t records, messages, dropped_messages;
};
void ipfix_get_stats(const struct ipfix_exporter *x, struct ipfix_stats *out);

/* The encoder, exposed for the unit tests and the fuzzer: builds into buf one complete IPFIX message
 * holding the templates (if with_templates) and the records given.  Returns its length, or -ENOSPC. */
ssize_t ipfix_encode(uint8_t *buf, size_t cap, uint32_t domain, uint32_t pen, uint32_t seq, uint32_t export_s,
		     int with_templates, const struct ipfix_flow *flows, size_t nflows);

#endif /* MW_IPFIX_H */
