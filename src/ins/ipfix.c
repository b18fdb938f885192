/*
 * ipfix.c: the IPFIX exporter (RFC 7011) of ipfix.h: one UDP message at a time, built in place, each data
 * record a biflow (RFC 5103).  The wire layout, all integers big-endian:
 *
 *   message header   version 10 | length | export time (s) | sequence | observation domain     16 bytes
 *   template set     set id 2 | length | template 256 (IPv4) | template 257 (IPv6)
 *   data set         set id 256 or 257 | length | records... | 0-3 zero bytes of padding
 *
 * A field specifier with the enterprise bit (0x8000) set is followed by its PEN: 29305 for the reverse
 * counters (RFC 5103 section 6.1: same element id as the forward one), the caller's PEN for mwcomms' own
 * elements.  The elements and their order are the table below (docs/telemetry.md describes them).
 */
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ipfix.h"

#define IPFIX_VERSION 10
#define IPFIX_HDR_LEN 16
#define IPFIX_SET_HDR_LEN 4
#define IPFIX_SET_TEMPLATE 2
#define IPFIX_TMPL_V4 256
#define IPFIX_TMPL_V6 257
#define IPFIX_PEN_REVERSE 29305u /* RFC 5103 */
#define IPFIX_ENTERPRISE 0x8000u
#define IPFIX_VARLEN 65535u
#define IPFIX_STR_MAX 255        /* ipfix.h: strings are cut to 255 bytes */
#define IPFIX_MSG_MAX 1400       /* no message is longer: 1,400 + 8 (UDP) + 40 (IPv6) fits a 1,500-byte MTU */
#define IPFIX_TMPL_EVERY_MS 60000

/* Who defines an element: IANA, IANA's reverse (RFC 5103), or the PEN given to ipfix_open. */
enum ipfix_field_owner {
	FIELD_IANA,
	FIELD_REVERSE,
	FIELD_OWN,
};

struct ipfix_field {
	uint16_t id;
	uint16_t len; /* IPFIX_VARLEN for a variable-length string */
	uint8_t owner;
};

static const struct ipfix_field ipfix_addr_v4[] = {
	{ 8, 4, FIELD_IANA },   /* sourceIPv4Address */
	{ 12, 4, FIELD_IANA },  /* destinationIPv4Address */
};

static const struct ipfix_field ipfix_addr_v6[] = {
	{ 27, 16, FIELD_IANA }, /* sourceIPv6Address */
	{ 28, 16, FIELD_IANA }, /* destinationIPv6Address */
};

/*
 * Every record carries these after its two addresses, in this order; ipfix_buf_put_record writes them so.
 * An X-macro, so that the template's and the record's lengths below are compile-time constants.
 * octetDeltaCount with PEN 29305 is RFC 5103's reverse octetDeltaCount, the form the contract asks for;
 * nfdump 1.7.1 maps it (and reverse packetDeltaCount) to its out bytes / out packets, as it maps
 * postOctetDeltaCount (23): tests/test_ipfix_collector.py checks this against a real nfcapd, so no standard
 * duplicate of the responder's counts is needed.
 */
#define IPFIX_COMMON_FIELDS(F)                                                  \
	F(7, 2, FIELD_IANA)             /* sourceTransportPort */               \
	F(11, 2, FIELD_IANA)            /* destinationTransportPort */          \
	F(4, 1, FIELD_IANA)             /* protocolIdentifier */                \
	F(1, 8, FIELD_IANA)             /* octetDeltaCount */                   \
	F(1, 8, FIELD_REVERSE)          /* reverse octetDeltaCount */           \
	F(2, 8, FIELD_IANA)             /* packetDeltaCount */                  \
	F(2, 8, FIELD_REVERSE)          /* reverse packetDeltaCount */          \
	F(152, 8, FIELD_IANA)           /* flowStartMilliseconds */             \
	F(153, 8, FIELD_IANA)           /* flowEndMilliseconds */               \
	F(136, 1, FIELD_IANA)           /* flowEndReason */                     \
	F(6, 2, FIELD_IANA)             /* tcpControlBits (unsigned16, RFC 7125) */ \
	F(1, 4, FIELD_OWN)              /* mwPid */                             \
	F(2, 4, FIELD_OWN)              /* mwPpid */                            \
	F(3, 4, FIELD_OWN)              /* mwUid */                             \
	F(4, 4, FIELD_OWN)              /* mwGid */                             \
	F(5, IPFIX_VARLEN, FIELD_OWN)   /* mwExe */                             \
	F(6, IPFIX_VARLEN, FIELD_OWN)   /* mwComm */                            \
	F(7, IPFIX_VARLEN, FIELD_OWN)   /* mwRule */                            \
	F(8, 1, FIELD_OWN)              /* mwAction */                          \
	F(9, 1, FIELD_OWN)              /* mwDirection */

#define FIELD_ENTRY(id, len, owner) { id, len, owner },
#define FIELD_SPEC_LEN(id, len, owner) +((owner) == FIELD_IANA ? 4 : 8)
#define FIELD_DATA_LEN(id, len, owner) +((len) == IPFIX_VARLEN ? 1 : (len))
#define FIELD_COUNT(id, len, owner) +1

static const struct ipfix_field ipfix_common[] = { IPFIX_COMMON_FIELDS(FIELD_ENTRY) };

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define IPFIX_NFIELDS (2 IPFIX_COMMON_FIELDS(FIELD_COUNT))
#define IPFIX_NSTRINGS 3

/* A template: id, count, and the field specifiers (4 bytes, 8 with a PEN); both families' in one set. */
#define IPFIX_TMPL_REC_LEN (4 + 2 * 4 IPFIX_COMMON_FIELDS(FIELD_SPEC_LEN))
#define IPFIX_TMPL_SET_LEN (IPFIX_SET_HDR_LEN + 2 * IPFIX_TMPL_REC_LEN)
/* A record's fixed part: all but the addresses, with one length byte for each (empty) string. */
#define IPFIX_REC_FIXED (0 IPFIX_COMMON_FIELDS(FIELD_DATA_LEN))
#define IPFIX_REC_MAX (IPFIX_REC_FIXED + 2 * 16 + IPFIX_NSTRINGS * (2 + IPFIX_STR_MAX))

/* The largest record always fits one message, with the templates and with a set's header and padding. */
_Static_assert(IPFIX_HDR_LEN + IPFIX_TMPL_SET_LEN + IPFIX_SET_HDR_LEN + IPFIX_REC_MAX + 3 <= IPFIX_MSG_MAX,
	       "an IPFIX record does not fit one message");
_Static_assert(IPFIX_TMPL_SET_LEN % 4 == 0, "the template set needs no padding");

/* A message (or the data part of one) being filled: the open data set starts at set, for family. */
struct ipfix_buf {
	uint8_t *p;
	size_t cap, len;
	size_t set;
	int family; /* of the open data set; 0 if none is open */
};

struct ipfix_exporter {
	int fd;
	uint32_t domain, pen;
	uint32_t seq;            /* data records exported so far in this domain: the next header's sequence */
	bool tmpl_sent;
	uint64_t tmpl_ms;        /* when the templates last went, if tmpl_sent */
	int error;               /* a send error not yet returned (by ipfix_flush) */
	struct ipfix_buf data;   /* the queued data sets: they fit a message with its header, maybe not with
				  * the templates, which then go in a message of their own */
	uint32_t nrec;           /* records in data */
	struct ipfix_stats stats;
	uint8_t databuf[IPFIX_MSG_MAX - IPFIX_HDR_LEN];
	uint8_t msg[IPFIX_MSG_MAX];
};

static uint8_t *put8(uint8_t *p, uint8_t v)
{
	*p = v;
	return p + 1;
}

static uint8_t *put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
	p = put16(p, (uint16_t)(v >> 16));
	return put16(p, (uint16_t)v);
}

static uint8_t *put64(uint8_t *p, uint64_t v)
{
	p = put32(p, (uint32_t)(v >> 32));
	return put32(p, (uint32_t)v);
}

static uint8_t *putn(uint8_t *p, const void *src, size_t n)
{
	memcpy(p, src, n);
	return p + n;
}

/*
 * How many bytes of s go out: at most 255, and not ending inside a UTF-8 sequence (IPFIX strings are UTF-8,
 * RFC 7011 section 6.1.6): if the cut falls on a continuation byte, the whole character is left out.
 */
static size_t ipfix_str_len(const char *s)
{
	size_t n;

	if (!s)
		return 0;
	n = strnlen(s, IPFIX_STR_MAX);
	if (n == IPFIX_STR_MAX && ((unsigned char)s[n] & 0xc0) == 0x80) {
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	return n;
}

/* RFC 7011 section 7: one length byte below 255, else 255 and a two-byte length. */
static size_t ipfix_varlen_size(size_t n)
{
	return n < 255 ? 1 + n : 3 + n;
}

static uint8_t *put_string(uint8_t *p, const char *s, size_t n)
{
	if (n < 255) {
		p = put8(p, (uint8_t)n);
	} else {
		p = put8(p, 255);
		p = put16(p, (uint16_t)n);
	}
	return n ? putn(p, s, n) : p;
}

static size_t ipfix_addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

static size_t ipfix_record_len(const struct ipfix_flow *f)
{
	/* IPFIX_REC_FIXED counts one length byte per string; ipfix_varlen_size counts it again. */
	return IPFIX_REC_FIXED - IPFIX_NSTRINGS + 2 * ipfix_addr_len(f->family) +
	       ipfix_varlen_size(ipfix_str_len(f->exe)) + ipfix_varlen_size(ipfix_str_len(f->comm)) +
	       ipfix_varlen_size(ipfix_str_len(f->rule));
}

static uint8_t *put_fields(uint8_t *p, const struct ipfix_field *fl, size_t n, uint32_t pen)
{
	for (size_t i = 0; i < n; i++) {
		if (fl[i].owner == FIELD_IANA) {
			p = put16(p, fl[i].id);
			p = put16(p, fl[i].len);
			continue;
		}
		p = put16(p, (uint16_t)(fl[i].id | IPFIX_ENTERPRISE));
		p = put16(p, fl[i].len);
		p = put32(p, fl[i].owner == FIELD_REVERSE ? IPFIX_PEN_REVERSE : pen);
	}
	return p;
}

/* The template set, IPFIX_TMPL_SET_LEN bytes at p.  Can't fail. */
static void ipfix_put_templates(uint8_t *p, uint32_t pen)
{
	p = put16(p, IPFIX_SET_TEMPLATE);
	p = put16(p, IPFIX_TMPL_SET_LEN);
	p = put16(p, IPFIX_TMPL_V4);
	p = put16(p, IPFIX_NFIELDS);
	p = put_fields(p, ipfix_addr_v4, ARRAY_SIZE(ipfix_addr_v4), pen);
	p = put_fields(p, ipfix_common, ARRAY_SIZE(ipfix_common), pen);
	p = put16(p, IPFIX_TMPL_V6);
	p = put16(p, IPFIX_NFIELDS);
	p = put_fields(p, ipfix_addr_v6, ARRAY_SIZE(ipfix_addr_v6), pen);
	put_fields(p, ipfix_common, ARRAY_SIZE(ipfix_common), pen);
}

static void ipfix_put_header(uint8_t *p, size_t len, uint32_t export_s, uint32_t seq, uint32_t domain)
{
	p = put16(p, IPFIX_VERSION);
	p = put16(p, (uint16_t)len);
	p = put32(p, export_s);
	p = put32(p, seq);
	put32(p, domain);
}

/* Pad the open data set with zeros to a multiple of 4 (RFC 7011 section 3.3.1) and write its length. */
static void ipfix_buf_close_set(struct ipfix_buf *b)
{
	size_t pad;

	if (!b->family)
		return;
	pad = (4 - (b->len - b->set) % 4) % 4;
	memset(b->p + b->len, 0, pad);
	b->len += pad;
	put16(b->p + b->set + 2, (uint16_t)(b->len - b->set));
	b->family = 0;
}

/*
 * Append one record, in a data set of its family (a new one if the open set is of the other family).  Room
 * is kept for the set's padding, so that closing never overflows.  -ENOSPC if it doesn't fit (nothing
 * written), -EAFNOSUPPORT for a family other than AF_INET/AF_INET6.
 */
static int ipfix_buf_put_record(struct ipfix_buf *b, const struct ipfix_flow *f)
{
	size_t exe = ipfix_str_len(f->exe), comm = ipfix_str_len(f->comm), rule = ipfix_str_len(f->rule);
	size_t rec, start, end, pad;
	size_t alen = ipfix_addr_len(f->family);
	uint8_t *p;

	if (f->family != AF_INET && f->family != AF_INET6)
		return -EAFNOSUPPORT;
	rec = ipfix_record_len(f);
	start = b->family == f->family ? b->set : b->len;
	end = b->len + (b->family == f->family ? 0 : IPFIX_SET_HDR_LEN) + rec;
	pad = (4 - (end - start) % 4) % 4;
	if (b->family != f->family && b->family)
		pad += (4 - (b->len - b->set) % 4) % 4; /* the open set's padding comes first */
	if (end + pad > b->cap)
		return -ENOSPC;
	if (b->family != f->family) {
		ipfix_buf_close_set(b);
		b->set = b->len;
		put16(b->p + b->set, f->family == AF_INET ? IPFIX_TMPL_V4 : IPFIX_TMPL_V6);
		put16(b->p + b->set + 2, 0); /* written by ipfix_buf_close_set */
		b->len += IPFIX_SET_HDR_LEN;
		b->family = f->family;
	}
	p = b->p + b->len;
	p = putn(p, f->src, alen);
	p = putn(p, f->dst, alen);
	p = put16(p, f->sport);
	p = put16(p, f->dport);
	p = put8(p, f->proto);
	p = put64(p, f->bytes);
	p = put64(p, f->rbytes);
	p = put64(p, f->ops);
	p = put64(p, f->rops);
	p = put64(p, f->start_ms);
	p = put64(p, f->end_ms);
	p = put8(p, f->end_reason);
	p = put16(p, f->tcp_flags);
	p = put32(p, f->pid);
	p = put32(p, f->ppid);
	p = put32(p, f->uid);
	p = put32(p, f->gid);
	p = put_string(p, f->exe, exe);
	p = put_string(p, f->comm, comm);
	p = put_string(p, f->rule, rule);
	p = put8(p, f->action);
	put8(p, f->direction);
	b->len += rec;
	return 0;
}

/*
 * A cap above IPFIX_MSG_MAX counts as IPFIX_MSG_MAX: what ipfix_encode builds is one message as the exporter
 * would send it, so records beyond that are -ENOSPC here too.  A flow of another family is -EAFNOSUPPORT.
 */
ssize_t ipfix_encode(uint8_t *buf, size_t cap, uint32_t domain, uint32_t pen, uint32_t seq, uint32_t export_s,
		     int with_templates, const struct ipfix_flow *flows, size_t nflows)
{
	struct ipfix_buf b;
	size_t off = IPFIX_HDR_LEN;
	int err;

	if (cap > IPFIX_MSG_MAX)
		cap = IPFIX_MSG_MAX;
	if (off + (with_templates ? IPFIX_TMPL_SET_LEN : 0) > cap)
		return -ENOSPC;
	if (with_templates) {
		ipfix_put_templates(buf + off, pen);
		off += IPFIX_TMPL_SET_LEN;
	}
	b = (struct ipfix_buf){ .p = buf + off, .cap = cap - off };
	for (size_t i = 0; i < nflows; i++) {
		err = ipfix_buf_put_record(&b, &flows[i]);
		if (err)
			return err;
	}
	ipfix_buf_close_set(&b);
	off += b.len;
	ipfix_put_header(buf, off, export_s, seq, domain);
	return (ssize_t)off;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * Split "HOST:PORT", "[V6]:PORT" into host and port.  A bare IPv6 address ("::1:4739") is refused rather
 * than guessed at: its last group could be the port or part of the address.
 */
static int ipfix_parse_collector(const char *s, char *host, size_t hostlen, char *port, size_t portlen,
				 char *err, size_t errlen)
{
	const char *h = s, *colon;
	size_t hl;
	unsigned long pn;
	char *end;

	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':') {
			seterr(err, errlen, "ipfix collector '%s': expected [IPV6]:PORT", s);
			return -EINVAL;
		}
		h = s + 1;
		hl = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon) {
			seterr(err, errlen, "ipfix collector '%s': expected HOST:PORT", s);
			return -EINVAL;
		}
		if (memchr(s, ':', (size_t)(colon - s))) {
			seterr(err, errlen, "ipfix collector '%s': an IPv6 address goes in brackets: [ADDR]:PORT", s);
			return -EINVAL;
		}
		hl = (size_t)(colon - s);
	}
	if (hl == 0) {
		seterr(err, errlen, "ipfix collector '%s': no host", s);
		return -EINVAL;
	}
	if (hl >= hostlen) {
		seterr(err, errlen, "ipfix collector '%s': host name too long", s);
		return -EINVAL;
	}
	errno = 0;
	pn = strtoul(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end || errno || pn == 0 || pn > 65535) {
		seterr(err, errlen, "ipfix collector '%s': the port must be a number from 1 to 65535", s);
		return -EINVAL;
	}
	memcpy(host, h, hl);
	host[hl] = 0;
	snprintf(port, portlen, "%lu", pn);
	return 0;
}

struct ipfix_exporter *ipfix_open(const char *collector, uint32_t domain, uint32_t pen, char *err,
				  size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_protocol = IPPROTO_UDP,
				  .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL, *ai;
	struct ipfix_exporter *x = NULL;
	char host[256], port[8];
	int e, fd = -1, saved = 0;

	if (!collector) {
		seterr(err, errlen, "ipfix collector: none given");
		errno = EINVAL;
		return NULL;
	}
	e = ipfix_parse_collector(collector, host, sizeof(host), port, sizeof(port), err, errlen);
	if (e) {
		errno = -e;
		return NULL;
	}
	if (*collector == '[') {
		hints.ai_family = AF_INET6;
		hints.ai_flags |= AI_NUMERICHOST;
	}
	/* Resolved once, here: mwinsd's loop must never wait for DNS later. */
	e = getaddrinfo(host, port, &hints, &res);
	if (e && *collector == '[' && e != EAI_SYSTEM) {
		seterr(err, errlen, "ipfix collector '%s': '%s' is not an IPv6 address", collector, host);
		errno = EINVAL;
		return NULL;
	}
	if (e) {
		seterr(err, errlen, "ipfix collector '%s': %s", collector,
		       e == EAI_SYSTEM ? strerror(errno) : gai_strerror(e));
		errno = e == EAI_SYSTEM ? errno : EINVAL;
		return NULL;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_UDP);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		/* Connected: the kernel then filters what comes back and reports ICMP errors on our sends. */
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		seterr(err, errlen, "ipfix collector '%s': %s", collector, strerror(saved));
		errno = saved;
		return NULL;
	}
	x = calloc(1, sizeof(*x));
	if (!x) {
		seterr(err, errlen, "ipfix: out of memory");
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	x->fd = fd;
	x->domain = domain;
	x->pen = pen;
	x->data = (struct ipfix_buf){ .p = x->databuf, .cap = sizeof(x->databuf) };
	return x;
}

/*
 * Hand one message (len bytes of x->msg) to the kernel.  Whatever the outcome the message is gone: UDP
 * export drops rather than queues.  The errors of a busy or absent collector (EAGAIN, ENOBUFS, ECONNREFUSED
 * from an earlier ICMP port unreachable) come back as -EAGAIN, the message only counted as dropped; any other
 * is returned as it is, for the caller to log.
 */
static int ipfix_send(struct ipfix_exporter *x, size_t len, bool with_templates, uint64_t now_ms)
{
	if (send(x->fd, x->msg, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		x->stats.dropped_messages++;
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS || errno == ECONNREFUSED)
			return -EAGAIN;
		return -errno;
	}
	x->stats.messages++;
	/* Only templates that reached the kernel count as sent: else the next message carries them. */
	if (with_templates) {
		x->tmpl_sent = true;
		x->tmpl_ms = now_ms;
	}
	return 0;
}

static bool ipfix_templates_due(const struct ipfix_exporter *x, uint64_t now_ms)
{
	/* A wall clock that went back counts as due: better a template too many than a minute without. */
	return !x->tmpl_sent || now_ms < x->tmpl_ms || now_ms - x->tmpl_ms >= IPFIX_TMPL_EVERY_MS;
}

/*
 * Send the queued records, after the templates if they are due: in the same message if it has room, else
 * in a message of their own just before.  The sequence number counts a dropped message's records too, so
 * that the collector sees the gap (RFC 7011 section 3.1: the sequence number is how a collector learns that
 * records were missed) instead of silently missing them.  Returns the first error, -EAGAIN for a drop.
 */
static int ipfix_send_queued(struct ipfix_exporter *x, uint64_t now_ms)
{
	uint32_t export_s = (uint32_t)(now_ms / 1000);
	size_t len = IPFIX_HDR_LEN;
	bool tmpl;
	int err = 0, e;

	if (!x->nrec)
		return 0;
	ipfix_buf_close_set(&x->data);
	tmpl = ipfix_templates_due(x, now_ms);
	if (tmpl && IPFIX_HDR_LEN + IPFIX_TMPL_SET_LEN + x->data.len > IPFIX_MSG_MAX) {
		/* If this one is lost the data still goes: the templates stay due for the next message. */
		ipfix_put_templates(x->msg + IPFIX_HDR_LEN, x->pen);
		ipfix_put_header(x->msg, IPFIX_HDR_LEN + IPFIX_TMPL_SET_LEN, export_s, x->seq, x->domain);
		err = ipfix_send(x, IPFIX_HDR_LEN + IPFIX_TMPL_SET_LEN, true, now_ms);
		tmpl = false;
	}
	if (tmpl) {
		ipfix_put_templates(x->msg + len, x->pen);
		len += IPFIX_TMPL_SET_LEN;
	}
	memcpy(x->msg + len, x->data.p, x->data.len);
	len += x->data.len;
	ipfix_put_header(x->msg, len, export_s, x->seq, x->domain);
	e = ipfix_send(x, len, tmpl, now_ms);
	if (!e)
		x->stats.records += x->nrec;
	if (!err)
		err = e;
	x->seq += x->nrec;
	x->nrec = 0;
	x->data.len = 0;
	x->data.family = 0;
	return err;
}

int ipfix_add(struct ipfix_exporter *x, const struct ipfix_flow *f, uint64_t now_ms)
{
	int err;

	err = ipfix_buf_put_record(&x->data, f);
	if (err == -ENOSPC) {
		err = ipfix_send_queued(x, now_ms);
		if (err && err != -EAGAIN && !x->error)
			x->error = err;
		err = ipfix_buf_put_record(&x->data, f);
	}
	if (err)
		return err;
	x->nrec++;
	return 0;
}

int ipfix_flush(struct ipfix_exporter *x, uint64_t now_ms)
{
	int err = ipfix_send_queued(x, now_ms);

	if (err == -EAGAIN)
		err = 0;
	if (!err) {
		err = x->error;
		x->error = 0;
	}
	return err;
}

void ipfix_close(struct ipfix_exporter *x)
{
	struct timespec ts;

	if (!x)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	ipfix_flush(x, (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
	close(x->fd);
	free(x);
}

/*
 * records: data records in messages the kernel took.  messages: messages it took (templates-only ones too).
 * dropped_messages: messages it refused, whose records are lost.
 */
void ipfix_get_stats(const struct ipfix_exporter *x, struct ipfix_stats *out)
{
	*out = x->stats;
}
