/*
 * test_ipfix.c: the IPFIX exporter (src/ins/ipfix.c) alone.  What ipfix_encode and the exporter's socket
 * produce is read back by the small decoder below, written from RFC 7011/5103 and docs/telemetry.md, not from
 * ipfix.c: it learns the templates from the wire the way a collector does and checks every field of every
 * record, the lengths, the sets' padding, and when the templates go.
 *
 *   test_ipfix                  the unit test, TAP on stdout
 *   test_ipfix send HOST:PORT N export N known sample flows to a real collector (tests/test_ipfix_collector.py)
 *                               and print one line per flow:
 *                               flow I FAMILY SRC SPORT DST DPORT PROTO BYTES RBYTES PACKETS RPACKETS
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ipfix.h"
#include "tap.h"

#define MSG_MAX 1400     /* ipfix.h: messages are kept under 1,400 bytes */
#define PEN_REVERSE 29305u
#define VARLEN 65535u
#define T0 1700000000000ull /* a fixed "now" in ms for the exporter's clock */

/* ---- the decoder ---- */

struct dfield {
	uint16_t id, len;
	uint32_t pen; /* 0: IANA */
};

struct dtmpl {
	uint16_t id, n;
	struct dfield f[64];
};

/* One decoded field value: a number (fields of 1 to 8 bytes) or bytes (addresses, strings). */
struct dval {
	uint64_t num;
	const uint8_t *bytes;
	size_t len;
	int lenform; /* for a variable-length field: 1 or 3, the length prefix's size */
};

struct drec {
	uint16_t tmpl;
	uint16_t n;
	struct dfield f[64];
	struct dval v[64];
};

struct dset {
	uint16_t id, len;
	size_t pad; /* bytes after the last record */
	bool pad_zero;
};

struct dmsg {
	uint16_t version, length;
	uint32_t export_s, seq, domain;
	int nsets, nrecs, ntmpls;
	struct dset sets[16];
	struct drec recs[64];
	uint16_t tmpl_ids[8];
	const char *error;
};

/* The templates seen so far, as a collector keeps them across messages. */
static struct dtmpl known[8];
static int nknown;

static uint64_t get(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static const struct dtmpl *find_tmpl(uint16_t id)
{
	for (int i = 0; i < nknown; i++)
		if (known[i].id == id)
			return &known[i];
	return NULL;
}

static void learn_tmpl(const struct dtmpl *t)
{
	for (int i = 0; i < nknown; i++) {
		if (known[i].id == t->id) {
			known[i] = *t;
			return;
		}
	}
	if (nknown < 8)
		known[nknown++] = *t;
}

static int dec_fail(struct dmsg *m, const char *why)
{
	if (!m->error)
		m->error = why;
	return -1;
}

static int dec_templates(struct dmsg *m, const uint8_t *p, size_t len)
{
	size_t off = 0;

	while (len - off >= 4) {
		struct dtmpl t = { .id = (uint16_t)get(p + off, 2), .n = (uint16_t)get(p + off + 2, 2) };

		off += 4;
		if (t.id < 256 || t.n == 0 || t.n > 64)
			return dec_fail(m, "bad template header");
		for (int i = 0; i < t.n; i++) {
			if (len - off < 4)
				return dec_fail(m, "template runs past its set");
			t.f[i].id = (uint16_t)get(p + off, 2);
			t.f[i].len = (uint16_t)get(p + off + 2, 2);
			off += 4;
			if (t.f[i].id & 0x8000) {
				if (len - off < 4)
					return dec_fail(m, "template PEN runs past its set");
				t.f[i].id &= 0x7fff;
				t.f[i].pen = (uint32_t)get(p + off, 4);
				off += 4;
			}
		}
		learn_tmpl(&t);
		if (m->ntmpls < 8)
			m->tmpl_ids[m->ntmpls] = t.id;
		m->ntmpls++;
	}
	if (off != len)
		return dec_fail(m, "template set has trailing bytes");
	return 0;
}

static size_t min_rec_len(const struct dtmpl *t)
{
	size_t n = 0;

	for (int i = 0; i < t->n; i++)
		n += t->f[i].len == VARLEN ? 1 : t->f[i].len;
	return n;
}

static int dec_data(struct dmsg *m, struct dset *s, const uint8_t *p, size_t len)
{
	const struct dtmpl *t = find_tmpl(s->id);
	size_t off = 0, min;

	if (!t)
		return dec_fail(m, "data set without a template");
	min = min_rec_len(t);
	while (len - off >= min) {
		struct drec *r;

		if (m->nrecs >= 64)
			return dec_fail(m, "too many records for the decoder");
		r = &m->recs[m->nrecs++];
		r->tmpl = t->id;
		r->n = t->n;
		for (int i = 0; i < t->n; i++) {
			struct dval *v = &r->v[i];
			size_t fl = t->f[i].len;

			r->f[i] = t->f[i];
			memset(v, 0, sizeof(*v));
			if (fl == VARLEN) {
				if (len - off < 1)
					return dec_fail(m, "string length past the set");
				fl = p[off++];
				v->lenform = 1;
				if (fl == 255) {
					if (len - off < 2)
						return dec_fail(m, "long string length past the set");
					fl = (size_t)get(p + off, 2);
					off += 2;
					v->lenform = 3;
				}
			}
			if (len - off < fl)
				return dec_fail(m, "field past the set");
			v->bytes = p + off;
			v->len = fl;
			if (fl <= 8)
				v->num = get(p + off, fl);
			off += fl;
		}
	}
	s->pad = len - off;
	s->pad_zero = true;
	for (size_t i = off; i < len; i++)
		if (p[i])
			s->pad_zero = false;
	return 0;
}

/* Decode one message; 0, or -1 with m->error saying what is wrong. */
static int decode(struct dmsg *m, const uint8_t *p, size_t len)
{
	size_t off = 16;

	memset(m, 0, sizeof(*m));
	if (len < 16)
		return dec_fail(m, "shorter than a header");
	m->version = (uint16_t)get(p, 2);
	m->length = (uint16_t)get(p + 2, 2);
	m->export_s = (uint32_t)get(p + 4, 4);
	m->seq = (uint32_t)get(p + 8, 4);
	m->domain = (uint32_t)get(p + 12, 4);
	if (m->version != 10)
		return dec_fail(m, "version is not 10");
	if (m->length != len)
		return dec_fail(m, "header length is not the message's length");
	while (off < len) {
		struct dset *s;

		if (len - off < 4 || m->nsets >= 16)
			return dec_fail(m, "truncated set header");
		s = &m->sets[m->nsets++];
		s->id = (uint16_t)get(p + off, 2);
		s->len = (uint16_t)get(p + off + 2, 2);
		s->pad_zero = true;
		if (s->len < 4 || s->len > len - off)
			return dec_fail(m, "set length out of the message");
		if (s->id == 2) {
			if (dec_templates(m, p + off + 4, s->len - 4u))
				return -1;
		} else if (s->id >= 256) {
			if (dec_data(m, s, p + off + 4, s->len - 4u))
				return -1;
		} else {
			return dec_fail(m, "unexpected set id");
		}
		off += s->len;
	}
	return 0;
}

/* decode() for what send or ipfix_encode returned: n <= 0 is an error too.  Called before ok(), whose
 * arguments are evaluated in no given order. */
static int dec(struct dmsg *m, const uint8_t *p, ssize_t n)
{
	if (n <= 0) {
		memset(m, 0, sizeof(*m));
		m->error = "no message";
		return -1;
	}
	return decode(m, p, (size_t)n);
}

static const struct dval *field(const struct drec *r, uint32_t pen, uint16_t id)
{
	static const struct dval none;

	for (int i = 0; i < r->n; i++)
		if (r->f[i].pen == pen && r->f[i].id == id)
			return &r->v[i];
	return &none;
}

static bool str_is(const struct dval *v, const char *s)
{
	return v->bytes && v->len == strlen(s) && memcmp(v->bytes, s, v->len) == 0;
}

/* ---- what the exporter should send ---- */

/* The elements of docs/telemetry.md, in the order ipfix.c's templates list them. */
static const struct dfield want_common[] = {
	{ 7, 2, 0 },   { 11, 2, 0 },  { 4, 1, 0 },
	{ 1, 8, 0 },   { 1, 8, PEN_REVERSE },
	{ 2, 8, 0 },   { 2, 8, PEN_REVERSE },
	{ 152, 8, 0 }, { 153, 8, 0 }, { 136, 1, 0 }, { 6, 2, 0 },
	{ 1, 4, 1 },   { 2, 4, 1 },   { 3, 4, 1 },   { 4, 4, 1 }, /* pen 1: the exporter's PEN */
	{ 5, VARLEN, 1 }, { 6, VARLEN, 1 }, { 7, VARLEN, 1 },
	{ 8, 1, 1 },   { 9, 1, 1 },
};
#define NCOMMON (sizeof(want_common) / sizeof(want_common[0]))

static bool tmpl_is(const struct dtmpl *t, int family, uint32_t pen)
{
	uint16_t a = family == AF_INET ? 8 : 27, b = family == AF_INET ? 12 : 28, l = family == AF_INET ? 4 : 16;

	if (!t || t->n != 2 + NCOMMON)
		return false;
	if (t->f[0].id != a || t->f[0].len != l || t->f[0].pen || t->f[1].id != b || t->f[1].len != l ||
	    t->f[1].pen)
		return false;
	for (size_t i = 0; i < NCOMMON; i++) {
		const struct dfield *w = &want_common[i], *g = &t->f[2 + i];

		if (g->id != w->id || g->len != w->len || g->pen != (w->pen == 1 ? pen : w->pen))
			return false;
	}
	return true;
}

static struct ipfix_flow sample(int i, int family)
{
	static char exe[64][48], comm[64][24], rule[64][24];
	struct ipfix_flow f = { .family = family };
	int k = i % 64;
	static const uint16_t dports[] = { 80, 443, 53, 8080 };

	if (family == AF_INET) {
		uint8_t s[4] = { 10, 1, (uint8_t)(i >> 8), (uint8_t)(i & 0xff) };
		uint8_t d[4] = { 198, 51, 100, (uint8_t)(i % 200 + 1) };

		memcpy(f.src, s, 4);
		memcpy(f.dst, d, 4);
	} else {
		uint8_t s[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, (uint8_t)(i >> 8),
				  (uint8_t)i };
		uint8_t d[16] = { 0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0,
				  (uint8_t)(i % 200 + 1) };

		memcpy(f.src, s, 16);
		memcpy(f.dst, d, 16);
	}
	f.sport = (uint16_t)(40000 + i);
	f.dport = dports[i % 4];
	f.proto = f.dport == 53 ? 17 : 6;
	f.bytes = 1000ull * (uint64_t)(i + 1) + 7u * (uint64_t)i;
	f.rbytes = 50001ull + 13ull * (uint64_t)i * (uint64_t)i;
	f.ops = (uint64_t)i + 1;
	f.rops = 2ull * (uint64_t)i + 3;
	f.start_ms = T0 - 5000 - (uint64_t)i;
	f.end_ms = T0 - (uint64_t)i;
	f.end_reason = (uint8_t)(i % 5 + 1);
	f.tcp_flags = f.proto == 6 ? 0x13 : 0;
	f.pid = 1000u + (uint32_t)i;
	f.ppid = 1;
	f.uid = 500u + (uint32_t)i;
	f.gid = 600u + (uint32_t)i;
	snprintf(exe[k], sizeof(exe[k]), "/usr/bin/sample-%d", i);
	snprintf(comm[k], sizeof(comm[k]), "sample%d", i);
	rule[k][0] = 0;
	if (i % 3)
		snprintf(rule[k], sizeof(rule[k]), "line-%d", i);
	f.exe = exe[k];
	f.comm = comm[k];
	f.rule = rule[k];
	f.action = (uint8_t)(i % 3);
	f.direction = (uint8_t)(i % 2);
	return f;
}

/* Every element of record i of m against flow f: NULL if all are equal, else the first that is not. */
static const char *rec_diff(const struct dmsg *m, int i, const struct ipfix_flow *f, uint32_t pen)
{
	const struct drec *r = &m->recs[i];
	size_t alen = f->family == AF_INET ? 4 : 16;
	uint16_t sa = f->family == AF_INET ? 8 : 27, da = f->family == AF_INET ? 12 : 28;
	const struct dval *v;

#define CHECK(cond, name)              \
	do {                           \
		if (!(cond))           \
			return name;   \
	} while (0)
	if (i >= m->nrecs)
		return "no such record";
	CHECK(r->tmpl == (f->family == AF_INET ? 256 : 257), "template id");
	v = field(r, 0, sa);
	CHECK(v->len == alen && memcmp(v->bytes, f->src, alen) == 0, "source address");
	v = field(r, 0, da);
	CHECK(v->len == alen && memcmp(v->bytes, f->dst, alen) == 0, "destination address");
	CHECK(field(r, 0, 7)->num == f->sport, "sourceTransportPort");
	CHECK(field(r, 0, 11)->num == f->dport, "destinationTransportPort");
	CHECK(field(r, 0, 4)->num == f->proto, "protocolIdentifier");
	CHECK(field(r, 0, 1)->num == f->bytes, "octetDeltaCount");
	CHECK(field(r, PEN_REVERSE, 1)->num == f->rbytes, "reverse octetDeltaCount");
	CHECK(field(r, 0, 2)->num == f->ops, "packetDeltaCount");
	CHECK(field(r, PEN_REVERSE, 2)->num == f->rops, "reverse packetDeltaCount");
	CHECK(field(r, 0, 152)->num == f->start_ms, "flowStartMilliseconds");
	CHECK(field(r, 0, 153)->num == f->end_ms, "flowEndMilliseconds");
	CHECK(field(r, 0, 136)->num == f->end_reason, "flowEndReason");
	CHECK(field(r, 0, 6)->num == f->tcp_flags, "tcpControlBits");
	CHECK(field(r, pen, 1)->num == f->pid, "mwPid");
	CHECK(field(r, pen, 2)->num == f->ppid, "mwPpid");
	CHECK(field(r, pen, 3)->num == f->uid, "mwUid");
	CHECK(field(r, pen, 4)->num == f->gid, "mwGid");
	CHECK(str_is(field(r, pen, 5), f->exe), "mwExe");
	CHECK(str_is(field(r, pen, 6), f->comm), "mwComm");
	CHECK(str_is(field(r, pen, 7), f->rule), "mwRule");
	CHECK(field(r, pen, 8)->num == f->action, "mwAction");
	CHECK(field(r, pen, 9)->num == f->direction, "mwDirection");
#undef CHECK
	return NULL;
}

static const char *why(const char *what)
{
	return what ? what : "ok";
}

static bool sets_padded(const struct dmsg *m)
{
	for (int i = 0; i < m->nsets; i++)
		if (m->sets[i].len % 4 || m->sets[i].pad >= 4 || !m->sets[i].pad_zero)
			return false;
	return true;
}

/* ---- ipfix_encode ---- */

static void test_encode_v4_v6(void)
{
	uint8_t buf[2048];
	struct ipfix_flow fl[2] = { sample(1, AF_INET), sample(2, AF_INET6) };
	struct dmsg m = { 0 };
	int d;
	const char *what = NULL;
	ssize_t n;

	nknown = 0;
	n = ipfix_encode(buf, sizeof(buf), 7, IPFIX_PEN_DEFAULT, 1234, 1700000123, 1, fl, 2);
	ok(n > 0 && n <= MSG_MAX, "encode: templates + v4 + v6 records, %zd bytes", n);
	d = dec(&m, buf, n);
	ok(d == 0, "encode: decodes (%s)", m.error ? m.error : "ok");
	ok(m.version == 10 && m.length == n, "header: version 10, length %u", m.length);
	ok(m.export_s == 1700000123 && m.seq == 1234 && m.domain == 7, "header: export time, sequence, domain");
	ok(m.nsets == 3 && m.sets[0].id == 2 && m.sets[1].id == 256 && m.sets[2].id == 257,
	   "sets: templates, then an IPv4 and an IPv6 data set (%d sets)", m.nsets);
	ok(m.ntmpls == 2 && m.tmpl_ids[0] == 256 && m.tmpl_ids[1] == 257, "two templates, ids 256 and 257");
	ok(tmpl_is(find_tmpl(256), AF_INET, IPFIX_PEN_DEFAULT), "IPv4 template: every element, length, PEN");
	ok(tmpl_is(find_tmpl(257), AF_INET6, IPFIX_PEN_DEFAULT), "IPv6 template: every element, length, PEN");
	ok(m.nrecs == 2, "two records");
	what = rec_diff(&m, 0, &fl[0], IPFIX_PEN_DEFAULT);
	ok(!what, "IPv4 record: every field (%s)", why(what));
	what = rec_diff(&m, 1, &fl[1], IPFIX_PEN_DEFAULT);
	ok(!what, "IPv6 record: every field (%s)", why(what));
	ok(sets_padded(&m), "sets: length a multiple of 4, padding < 4 zero bytes");
	ok(m.sets[0].len == 4 + 2 * (4 + 8 + 9 * 4 + 11 * 8), "template set length %u", m.sets[0].len);
}

static void test_encode_sets(void)
{
	uint8_t buf[MSG_MAX];
	struct ipfix_flow fl[5] = { sample(3, AF_INET), sample(4, AF_INET), sample(5, AF_INET6), sample(6, AF_INET),
				    sample(7, AF_INET6) };
	struct dmsg m = { 0 };
	int d;
	const char *what = NULL;
	ssize_t n;

	/* Templates are known from the previous test, as a collector would have kept them. */
	n = ipfix_encode(buf, sizeof(buf), 1, IPFIX_PEN_DEFAULT, 2, 3, 0, fl, 5);
	d = dec(&m, buf, n);
	ok(d == 0, "without templates: decodes (%s)", m.error ? m.error : "ok");
	ok(m.ntmpls == 0 && m.nsets == 4, "without templates: no template set, a data set per run of one family (%d)",
	   m.nsets);
	ok(m.nsets == 4 && m.sets[0].id == 256 && m.sets[1].id == 257 && m.sets[2].id == 256 && m.sets[3].id == 257,
	   "data sets in the order of the records");
	ok(m.nrecs == 5, "five records");
	for (int i = 0; i < 5 && !what; i++)
		what = rec_diff(&m, i, &fl[i], IPFIX_PEN_DEFAULT);
	ok(!what, "five records in order, every field (%s)", why(what));
	ok(sets_padded(&m), "every data set padded to 4 with zeros");

	n = ipfix_encode(buf, sizeof(buf), 1, IPFIX_PEN_DEFAULT, 0, 0, 0, NULL, 0);
	ok(n == 16, "no templates and no records: a bare header (%zd)", n);
	n = ipfix_encode(buf, sizeof(buf), 1, IPFIX_PEN_DEFAULT, 0, 0, 1, NULL, 0);
	d = dec(&m, buf, n);
	ok(n > 16 && d == 0 && m.ntmpls == 2 && m.nrecs == 0,
	   "templates alone: %zd bytes", n);
}

static void test_encode_pen(void)
{
	uint8_t buf[MSG_MAX];
	struct ipfix_flow f = sample(8, AF_INET);
	struct dmsg m = { 0 };
	int d;
	const char *what = NULL;
	ssize_t n;

	nknown = 0;
	n = ipfix_encode(buf, sizeof(buf), 1, 12345, 0, 0, 1, &f, 1);
	d = dec(&m, buf, n);
	ok(d == 0, "PEN 12345: decodes");
	ok(tmpl_is(find_tmpl(256), AF_INET, 12345) && tmpl_is(find_tmpl(257), AF_INET6, 12345),
	   "PEN 12345 on mwcomms' elements, 29305 still on the reverse counters");
	what = rec_diff(&m, 0, &f, 12345);
	ok(!what, "PEN 12345: record (%s)", why(what));
	ok(m.nrecs == 1 && field(&m.recs[0], IPFIX_PEN_DEFAULT, 1)->bytes == NULL,
	   "PEN 12345: no element under the default PEN");
}

static void test_encode_strings(void)
{
	static const size_t lens[] = { 0, 1, 254, 255, 256, 300, 1000 };
	static char s[1001];
	uint8_t buf[MSG_MAX];
	struct dmsg m = { 0 };
	int d;

	memset(s, 'x', sizeof(s) - 1);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct ipfix_flow f = sample(9, AF_INET6);
		char *str = strndup(s, lens[i]);
		size_t want = lens[i] > 255 ? 255 : lens[i];
		const struct dval *v;
		ssize_t n;

		f.exe = str;
		f.comm = str;
		f.rule = str;
		nknown = 0;
		n = ipfix_encode(buf, sizeof(buf), 1, IPFIX_PEN_DEFAULT, 0, 0, 1, &f, 1);
		if (dec(&m, buf, n) || m.nrecs != 1) {
			ok(0, "string of %zu bytes: encode %zd, decode %s", lens[i], n, m.error ? m.error : "?");
			free(str);
			continue;
		}
		for (uint16_t id = 5; id <= 7; id++) {
			v = field(&m.recs[0], IPFIX_PEN_DEFAULT, id);
			ok(v->len == want && memcmp(v->bytes, s, want) == 0 && v->lenform == (want < 255 ? 1 : 3),
			   "string of %zu bytes (element %u): %zu bytes out, %d-byte length form", lens[i], id, v->len,
			   v->lenform);
		}
		ok(sets_padded(&m) && m.length <= MSG_MAX, "string of %zu bytes: padded, %u bytes", lens[i], m.length);
		free(str);
	}

	/* A cut never leaves half a UTF-8 character: U+00E9 (2 bytes) straddling byte 255. */
	{
		struct ipfix_flow f = sample(10, AF_INET);
		char u[300];
		const struct dval *v;
		ssize_t n;

		memset(u, 'a', sizeof(u));
		u[254] = (char)0xc3;
		u[255] = (char)0xa9;
		u[299] = 0;
		f.exe = u;
		n = ipfix_encode(buf, sizeof(buf), 1, IPFIX_PEN_DEFAULT, 0, 0, 1, &f, 1);
		d = dec(&m, buf, n);
		ok(d == 0 && m.nrecs == 1, "UTF-8 cut: decodes");
		v = field(&m.recs[0], IPFIX_PEN_DEFAULT, 5);
		ok(m.nrecs == 1 && v->len == 254 && memcmp(v->bytes, u, 254) == 0,
		   "UTF-8 cut: a character across byte 255 is left out whole (%zu bytes)", v->len);
	}
}

static void test_encode_nospace(void)
{
	uint8_t buf[4096];
	struct ipfix_flow fl[40];
	struct dmsg m = { 0 };
	int d;
	ssize_t n, full;
	size_t fit = 0;

	for (int i = 0; i < 40; i++)
		fl[i] = sample(i, i % 3 ? AF_INET : AF_INET6);
	ok(ipfix_encode(buf, 15, 1, IPFIX_PEN_DEFAULT, 0, 0, 0, NULL, 0) == -ENOSPC, "cap 15: -ENOSPC");
	ok(ipfix_encode(buf, 100, 1, IPFIX_PEN_DEFAULT, 0, 0, 1, NULL, 0) == -ENOSPC,
	   "templates in 100 bytes: -ENOSPC");
	full = ipfix_encode(buf, sizeof(buf), 1, IPFIX_PEN_DEFAULT, 0, 0, 1, fl, 1);
	ok(full > 0 && ipfix_encode(buf, (size_t)full, 1, IPFIX_PEN_DEFAULT, 0, 0, 1, fl, 1) == full,
	   "a cap of exactly the message's length is enough (%zd)", full);
	ok(ipfix_encode(buf, (size_t)full - 1, 1, IPFIX_PEN_DEFAULT, 0, 0, 1, fl, 1) == -ENOSPC,
	   "one byte less: -ENOSPC");
	ok(ipfix_encode(buf, sizeof(buf), 1, IPFIX_PEN_DEFAULT, 0, 0, 1, fl, 40) == -ENOSPC,
	   "40 records in a 4 KiB buffer: -ENOSPC (a message stays under %d bytes)", MSG_MAX);
	for (size_t k = 1; k <= 40; k++) {
		n = ipfix_encode(buf, sizeof(buf), 1, IPFIX_PEN_DEFAULT, 0, 0, 1, fl, k);
		if (n < 0)
			break;
		fit = k;
		full = n;
	}
	ok(fit > 1 && fit < 40 && full <= MSG_MAX, "%zu records fit one message of %zd bytes", fit, full);
	nknown = 0;
	ok(decode(&m, buf, 0) != 0 && decode(&m, buf, 15) != 0, "the decoder refuses a message shorter than a header");
	n = ipfix_encode(buf, sizeof(buf), 1, IPFIX_PEN_DEFAULT, 0, 0, 1, fl, fit);
	d = dec(&m, buf, n);
	ok(d == 0 && m.nrecs == (int)fit && sets_padded(&m),
	   "the fullest message decodes: %d records, sets padded (%s)", m.nrecs, m.error ? m.error : "ok");

	{
		struct ipfix_flow bad = sample(1, AF_UNIX);

		ok(ipfix_encode(buf, sizeof(buf), 1, IPFIX_PEN_DEFAULT, 0, 0, 1, &bad, 1) < 0,
		   "a flow of another family is refused");
	}
}

/* ---- the exporter, against a socket playing the collector ---- */

static int collector_open(struct sockaddr_in *sin)
{
	socklen_t sl = sizeof(*sin);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)sin, sizeof(*sin)) < 0 ||
	    getsockname(fd, (struct sockaddr *)sin, &sl) < 0) {
		perror("collector");
		exit(2);
	}
	return fd;
}

/* One message within timeout_ms, or -1. */
static ssize_t collector_recv(int fd, uint8_t *buf, size_t cap, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	return recv(fd, buf, cap, MSG_DONTWAIT);
}

static void test_exporter(void)
{
	struct sockaddr_in sin;
	int cfd = collector_open(&sin);
	char addr[64], err[256] = "";
	struct ipfix_exporter *x;
	struct ipfix_stats st;
	uint8_t buf[65536];
	struct ipfix_flow fl[40];
	struct dmsg m = { 0 };
	int d;
	const char *what = NULL;
	ssize_t n;
	int nmsg = 0, got = 0;
	uint32_t seq_ok = 1, expect_seq;
	bool all = true, small = true, padded = true;

	for (int i = 0; i < 40; i++)
		fl[i] = sample(i, i % 2 ? AF_INET6 : AF_INET);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sin.sin_port));
	x = ipfix_open(addr, 42, IPFIX_PEN_DEFAULT, err, sizeof(err));
	ok(x != NULL, "ipfix_open %s (%s)", addr, err);
	if (!x)
		return;
	nknown = 0;

	/* First data: the templates go in front of it. */
	ok(ipfix_add(x, &fl[0], T0) == 0 && ipfix_add(x, &fl[1], T0) == 0, "two records queued");
	ok(collector_recv(cfd, buf, sizeof(buf), 50) < 0, "nothing is sent before the flush");
	ok(ipfix_flush(x, T0 + 10) == 0, "flush");
	n = collector_recv(cfd, buf, sizeof(buf), 2000);
	d = dec(&m, buf, n);
	ok(d == 0, "first message decodes (%s)", m.error ? m.error : "ok");
	ok(m.ntmpls == 2 && m.sets[0].id == 2, "first message: the templates come first");
	ok(m.seq == 0 && m.domain == 42 && m.export_s == (T0 + 10) / 1000,
	   "first message: sequence 0, domain 42, export time now_ms / 1000");
	what = rec_diff(&m, 0, &fl[0], IPFIX_PEN_DEFAULT);
	if (!what)
		what = rec_diff(&m, 1, &fl[1], IPFIX_PEN_DEFAULT);
	ok(m.nrecs == 2 && !what, "first message: both records, every field (%s)", why(what));
	ok(ipfix_flush(x, T0 + 20) == 0 && collector_recv(cfd, buf, sizeof(buf), 50) < 0,
	   "a flush with nothing queued sends nothing");

	/* 59.99 s later: no templates.  The sequence counts the two records sent before. */
	ipfix_add(x, &fl[2], T0 + 59999);
	ipfix_flush(x, T0 + 59999 + 10);
	n = collector_recv(cfd, buf, sizeof(buf), 2000);
	d = dec(&m, buf, n);
	ok(d == 0 && m.ntmpls == 0 && m.nrecs == 1 && m.seq == 2,
	   "59.99 s later: no templates, sequence 2 (templates %d, sequence %u)", m.ntmpls, m.seq);
	what = rec_diff(&m, 0, &fl[2], IPFIX_PEN_DEFAULT);
	ok(!what, "and its record (%s)", why(what));

	/* 60 s after they last went: the templates again. */
	ipfix_add(x, &fl[3], T0 + 60010);
	ipfix_flush(x, T0 + 60010);
	n = collector_recv(cfd, buf, sizeof(buf), 2000);
	d = dec(&m, buf, n);
	ok(d == 0 && m.ntmpls == 2 && m.nrecs == 1 && m.seq == 3,
	   "60 s later: templates again, sequence 3 (templates %d, sequence %u)", m.ntmpls, m.seq);
	ipfix_add(x, &fl[4], T0 + 60020);
	ipfix_flush(x, T0 + 60020);
	n = collector_recv(cfd, buf, sizeof(buf), 2000);
	d = dec(&m, buf, n);
	ok(d == 0 && m.ntmpls == 0 && m.seq == 4,
	   "and not in the message after that");

	/* A clock that goes back: templates again rather than never. */
	ipfix_add(x, &fl[5], T0 + 1000);
	ipfix_flush(x, T0 + 1000);
	n = collector_recv(cfd, buf, sizeof(buf), 2000);
	d = dec(&m, buf, n);
	ok(d == 0 && m.ntmpls == 2 && m.seq == 5,
	   "the wall clock went back: templates again");

	/* Many records: full messages go out from ipfix_add, each under 1,400 bytes, the sequence counting. */
	ipfix_get_stats(x, &st);
	ok(st.records == 6 && st.messages == 5 && st.dropped_messages == 0, "stats: 6 records in 5 messages, 0 dropped");
	for (int i = 0; i < 40; i++)
		if (ipfix_add(x, &fl[i], T0 + 61000) != 0)
			all = false;
	ok(all, "40 records queued");
	ok(ipfix_flush(x, T0 + 61000) == 0, "flush");
	expect_seq = 6;
	all = true;
	what = NULL;
	while ((n = collector_recv(cfd, buf, sizeof(buf), 500)) > 0) {
		nmsg++;
		small = small && n <= MSG_MAX;
		if (decode(&m, buf, (size_t)n)) {
			all = false;
			break;
		}
		padded = padded && sets_padded(&m);
		if (m.seq != expect_seq)
			seq_ok = 0;
		for (int i = 0; i < m.nrecs && !what; i++)
			what = got + i < 40 ? rec_diff(&m, i, &fl[got + i], IPFIX_PEN_DEFAULT) : "too many records";
		got += m.nrecs;
		expect_seq += (uint32_t)m.nrecs;
	}
	ok(nmsg > 1 && small, "40 records: %d messages, each at most %d bytes", nmsg, MSG_MAX);
	ok(got == 40 && all && !what, "40 records arrive in order, every field (%d, %s)", got, why(what));
	ok(seq_ok, "each message's sequence is the count of the records before it");
	ok(padded, "every set padded");
	ipfix_get_stats(x, &st);
	ok(st.records == 46 && st.messages == 5 + (uint64_t)nmsg && st.dropped_messages == 0,
	   "stats: %llu records, %llu messages, %llu dropped", (unsigned long long)st.records,
	   (unsigned long long)st.messages, (unsigned long long)st.dropped_messages);

	{
		struct ipfix_flow bad = fl[0];

		bad.family = AF_UNIX;
		ok(ipfix_add(x, &bad, T0) == -EAFNOSUPPORT, "ipfix_add: another family is -EAFNOSUPPORT");
	}

	/* ipfix_close flushes. */
	ipfix_add(x, &fl[7], T0 + 62000);
	ipfix_close(x);
	n = collector_recv(cfd, buf, sizeof(buf), 2000);
	d = dec(&m, buf, n);
	what = d ? "no message" : rec_diff(&m, 0, &fl[7], IPFIX_PEN_DEFAULT);
	ok(m.nrecs == 1 && m.seq == 46 && !what, "ipfix_close sends what is queued (sequence %u, %s)", m.seq,
	   why(what));
	close(cfd);
}

/*
 * The first message is already full when it goes: the templates do not fit with it and go just before, in a
 * message of their own with the same sequence number.
 */
static void test_exporter_templates_alone(void)
{
	struct sockaddr_in sin;
	int cfd = collector_open(&sin);
	char addr[64], err[256] = "";
	struct ipfix_exporter *x;
	struct ipfix_flow fl[12];
	uint8_t buf[65536];
	struct dmsg m = { 0 };
	const char *what = NULL;
	int nmsg = 0, got = 0, first_tmpls = -1, first_recs = -1, data_tmpls = 0;
	uint32_t first_seq = 99, second_seq = 99;
	ssize_t n;

	for (int i = 0; i < 12; i++)
		fl[i] = sample(i, i % 2 ? AF_INET6 : AF_INET);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sin.sin_port));
	x = ipfix_open(addr, 1, IPFIX_PEN_DEFAULT, err, sizeof(err));
	ok(x != NULL, "ipfix_open %s (%s)", addr, err);
	if (!x)
		return;
	for (int i = 0; i < 12; i++)
		ipfix_add(x, &fl[i], T0);
	ipfix_flush(x, T0);
	nknown = 0;
	while ((n = collector_recv(cfd, buf, sizeof(buf), 500)) > 0) {
		if (dec(&m, buf, n)) {
			what = m.error;
			break;
		}
		if (nmsg == 0) {
			first_tmpls = m.ntmpls;
			first_recs = m.nrecs;
			first_seq = m.seq;
		} else {
			data_tmpls += m.ntmpls;
		}
		if (nmsg == 1)
			second_seq = m.seq;
		for (int i = 0; i < m.nrecs && !what; i++)
			what = got + i < 12 ? rec_diff(&m, i, &fl[got + i], IPFIX_PEN_DEFAULT) : "too many records";
		got += m.nrecs;
		nmsg++;
	}
	ok(first_tmpls == 2 && first_recs == 0 && first_seq == 0,
	   "a full first message: the templates go alone before it (templates %d, records %d, sequence %u)",
	   first_tmpls, first_recs, first_seq);
	ok(second_seq == 0 && data_tmpls == 0, "then the data, sequence 0 too, without templates");
	ok(got == 12 && !what, "all 12 records, in order, every field (%d, %s)", got, why(what));
	ipfix_close(x);
	close(cfd);
}

/*
 * The exporter's socket, found among our fds as the datagram socket connected to `to` (ipfix.h does not give it
 * out), or -1.
 */
static int exporter_fd(const struct sockaddr_in *to)
{
	for (int fd = 0; fd < 1024; fd++) {
		struct sockaddr_in peer;
		socklen_t len = sizeof(peer);
		int type = 0;
		socklen_t tlen = sizeof(type);

		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || type != SOCK_DGRAM ||
		    getpeername(fd, (struct sockaddr *)&peer, &len) < 0 || peer.sin_family != AF_INET ||
		    peer.sin_port != to->sin_port || peer.sin_addr.s_addr != to->sin_addr.s_addr)
			continue;
		return fd;
	}
	return -1;
}

/*
 * No collector: the kernel answers with ICMP port unreachable, and the next send fails with ECONNREFUSED.
 * The message is dropped and counted; nothing blocks, nothing fails; templates that did not go are due again.
 */
static void test_exporter_refused(void)
{
	struct sockaddr_in sin;
	int cfd = collector_open(&sin);
	char addr[64], err[256] = "";
	struct ipfix_exporter *x;
	struct ipfix_stats st;
	struct ipfix_flow f = sample(11, AF_INET);
	uint8_t buf[2048];
	struct dmsg m = { 0 };
	int d;
	int one = 1;
	ssize_t n;

	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sin.sin_port));
	close(cfd);
	x = ipfix_open(addr, 1, IPFIX_PEN_DEFAULT, err, sizeof(err));
	ok(x != NULL, "ipfix_open to a port nobody listens on (%s)", err);
	if (!x)
		return;
	ipfix_add(x, &f, T0);
	ok(ipfix_flush(x, T0) == 0, "first send to nobody: 0 (the kernel took it)");
	/* Until the ICMP error is back: the socket shows POLLERR (poll does not consume it, as SO_ERROR would). */
	struct pollfd pe = { .fd = exporter_fd(&sin) };
	int pr = pe.fd >= 0 ? poll(&pe, 1, 5000) : -1;
	ok(pr == 1 && (pe.revents & POLLERR), "the ICMP port unreachable comes back (fd %d, poll %d, revents %#x)",
	   pe.fd, pr, (unsigned)pe.revents);
	ipfix_add(x, &f, T0 + 61000);
	ok(ipfix_flush(x, T0 + 61000) == 0, "next send, with the templates due: refused, yet flush says 0");
	ipfix_get_stats(x, &st);
	ok(st.messages == 1 && st.dropped_messages == 1 && st.records == 1,
	   "ECONNREFUSED: the message counted as dropped (sent %llu, dropped %llu, records %llu)",
	   (unsigned long long)st.messages, (unsigned long long)st.dropped_messages,
	   (unsigned long long)st.records);

	/* The collector comes back on the same port. */
	cfd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	setsockopt(cfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(cfd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		ok(0, "rebind the collector's port: %s", strerror(errno));
		ipfix_close(x);
		close(cfd);
		return;
	}
	ipfix_add(x, &f, T0 + 61500);
	ok(ipfix_flush(x, T0 + 61500) == 0, "flush with the collector back");
	n = collector_recv(cfd, buf, sizeof(buf), 2000);
	nknown = 0;
	d = dec(&m, buf, n);
	ok(d == 0 && m.nrecs == 1,
	   "collector back: the next message arrives (%s)", m.error ? m.error : "ok");
	ok(m.seq == 2, "its sequence counts the dropped record too, so the collector sees the loss (%u)", m.seq);
	ok(m.ntmpls == 2, "the templates of the dropped message go again in the next one (templates %d)", m.ntmpls);
	ipfix_close(x);
	close(cfd);
}

static bool have_ipv6_loopback(void)
{
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_port = htons(9), .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool r = fd >= 0 && connect(fd, (struct sockaddr *)&s6, sizeof(s6)) == 0;

	if (fd >= 0)
		close(fd);
	return r;
}

static void test_open_syntax(void)
{
	static const char *const bad[] = {
		"",
		"127.0.0.1",
		"127.0.0.1:",
		"127.0.0.1:0",
		"127.0.0.1:65536",
		"127.0.0.1:47x",
		"127.0.0.1:-1",
		"127.0.0.1:http",
		":4739",
		"::1:4739",
		"[::1",
		"[::1]",
		"[::1]4739",
		"[]:4739",
		"[127.0.0.1]:4739",
		"no-such-host.invalid:4739",
	};
	char err[256];
	struct ipfix_exporter *x;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		x = ipfix_open(bad[i], 1, IPFIX_PEN_DEFAULT, err, sizeof(err));
		ok(!x && err[0] && strstr(err, bad[i]), "refused '%s': %s", bad[i], err);
		ipfix_close(x);
	}
	x = ipfix_open("127.0.0.1:4739", 1, IPFIX_PEN_DEFAULT, NULL, 0);
	ok(x != NULL, "127.0.0.1:4739 opens (err may be NULL)");
	ipfix_close(x);
	x = ipfix_open("localhost:4739", 1, IPFIX_PEN_DEFAULT, err, sizeof(err));
	ok(x != NULL, "localhost:4739 resolves and opens (%s)", x ? "ok" : err);
	ipfix_close(x);
	ok(ipfix_open("nope", 1, IPFIX_PEN_DEFAULT, NULL, 0) == NULL, "a bad collector with no err buffer: NULL");
	if (have_ipv6_loopback()) {
		x = ipfix_open("[::1]:4739", 1, IPFIX_PEN_DEFAULT, err, sizeof(err));
		ok(x != NULL, "[::1]:4739 opens (%s)", x ? "ok" : err);
		ipfix_close(x);
	} else {
		ok(1, "# SKIP [::1]:4739: this host has no IPv6 loopback");
	}
	err[0] = 0;
	x = ipfix_open("127.0.0.1:4739", 1, IPFIX_PEN_DEFAULT, err, 1);
	ok(x != NULL && err[0] == 0, "a one-byte err buffer is left as it is on success");
	ipfix_close(x);
	ok(ipfix_open("[::1]x", 1, IPFIX_PEN_DEFAULT, err, 8) == NULL && strlen(err) == 7,
	   "an error is cut to errlen: '%s'", err);
}

/* ---- send mode ---- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int send_samples(const char *collector, int n)
{
	char err[256], src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
	struct ipfix_exporter *x = ipfix_open(collector, 1, IPFIX_PEN_DEFAULT, err, sizeof(err));
	struct ipfix_stats st;
	uint64_t now = now_ms();
	int e, rc = 0;

	if (!x) {
		fprintf(stderr, "test_ipfix: %s\n", err);
		return 2;
	}
	for (int i = 0; i < n; i++) {
		struct ipfix_flow f = sample(i, i % 2 ? AF_INET6 : AF_INET);

		/* Real times, so that a collector files the flows under today. */
		f.start_ms = now - 5000 - (uint64_t)i;
		f.end_ms = now - (uint64_t)i;
		e = ipfix_add(x, &f, now);
		if (e) {
			fprintf(stderr, "test_ipfix: ipfix_add: %s\n", strerror(-e));
			rc = 1;
		}
		inet_ntop(f.family, f.src, src, sizeof(src));
		inet_ntop(f.family, f.dst, dst, sizeof(dst));
		printf("flow %d %d %s %u %s %u %u %llu %llu %llu %llu\n", i, f.family == AF_INET ? 4 : 6, src, f.sport,
		       dst, f.dport, f.proto, (unsigned long long)f.bytes, (unsigned long long)f.rbytes,
		       (unsigned long long)f.ops, (unsigned long long)f.rops);
	}
	e = ipfix_flush(x, now);
	if (e) {
		fprintf(stderr, "test_ipfix: ipfix_flush: %s\n", strerror(-e));
		rc = 1;
	}
	ipfix_get_stats(x, &st);
	printf("stats records %llu messages %llu dropped %llu\n", (unsigned long long)st.records,
	       (unsigned long long)st.messages, (unsigned long long)st.dropped_messages);
	if (st.dropped_messages)
		rc = 1;
	ipfix_close(x);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "send") == 0) {
		char *end;
		long n;

		if (argc != 4) {
			fprintf(stderr, "usage: test_ipfix send HOST:PORT N\n");
			return 2;
		}
		n = strtol(argv[3], &end, 10);
		if (*end || n < 0 || n > 65535) {
			fprintf(stderr, "test_ipfix: N must be 0..65535\n");
			return 2;
		}
		return send_samples(argv[2], (int)n);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* The one name meant not to resolve should fail fast on a host whose resolver is unreachable. */
	setenv("RES_OPTIONS", "timeout:1 attempts:1", 1);
	test_encode_v4_v6();
	test_encode_sets();
	test_encode_pen();
	test_encode_strings();
	test_encode_nospace();
	test_exporter();
	test_exporter_templates_alone();
	test_exporter_refused();
	test_open_syntax();
	return tap_done();
}
