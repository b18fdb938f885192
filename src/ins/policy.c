/*
 * policy.c: rules files (docs/telemetry.md, "Policy") parsed into flat arrays, evaluated by a linear scan
 * over the rules.  Address sets (a rule's CIDRs, a list file) are sorted, merged ranges searched by
 * bisection, so that a list of 10,000 networks costs a rule about fourteen comparisons, not 10,000.
 *
 * Grammar, where the document leaves a choice:
 *   - A line is at most 4096 bytes, its newline not counted; a NUL byte in it is an error.  Blanks are space,
 *     tab, CR, VT and FF (so CRLF files read as they look).
 *   - '#' starts a comment only where a word starts (at the start of the line or after a blank), so that
 *     exe=/opt/a#b is a glob, not a cut-off one.  The same holds in list files.
 *   - Values hold no blanks ('?' in a glob matches one).  Comma lists: op=, remote=, local=, rport=, lport=;
 *     an empty element ("80,,81", "80,") is an error.  A key may appear once per rule, and "key=" is an error.
 *   - `default` and `mode` at most once each, anywhere in the file.  `list NAME PATH` must come before the
 *     first rule that says @NAME; a list name is defined once.  A list file holds one address or CIDR per
 *     line; an empty list file is a list that matches nothing.
 *   - Names (rules and lists): 1 to 47 bytes of [A-Za-z0-9_.:-], unique within the policy; "default" is
 *     reserved for the verdict of no rule.  A rule without name= is "line-N" in a file, "rt-N" at run time.
 *   - Addresses are what inet_pton(3) reads; /PREFIX is decimal, 0-32 or 0-128.  Host bits set below the
 *     prefix (10.1.0.0/8) is an error: it is more often a typo than a wish.  An IPv6 CIDR inside
 *     ::ffff:0:0/96 is taken as the IPv4 CIDR it spells.  IPv4 CIDRs match IPv4 addresses and IPv4-mapped
 *     IPv6 ones; IPv6 CIDRs match IPv6 addresses only (::/0 does not match 192.0.2.1, but does match
 *     ::ffff:192.0.2.1, which is an IPv6 address).
 *   - Ports 0-65535, "LO-HI" with LO <= HI.  uid= 0-4294967295 or "LO-HI".  pid= 1-2147483647.
 *   - exe=, comm=: fnmatch(3) with no flags: '*' matches '/' too, so exe=*bin/curl matches
 *     /usr/bin/curl and /opt/x/bin/curl alike.
 *   - rate=: decimal digits and at most one suffix K, M or G (either case; powers of 1024).  Nothing else:
 *     "1.5M", "1MB", "1 M", "+1" are errors (write 1536K).  1 byte/s to 1024G (1 TiB/s): "0" and more than
 *     that are errors, which keeps a relay's rate * time arithmetic far from overflowing.  rate= and per=
 *     only on throttle, and throttle needs rate=; per= defaults to flow.
 *   - for=: decimal digits and at most one suffix s, m, h or d (lower case only: "10M" would read as mega);
 *     plain digits are seconds.  1 s to 3650d; "0", "1.5h" and sums ("1h30m": write 90m) are errors.
 *   - Errors say "FILE:LINE: what", "LISTFILE:LINE: what" for a list file's own lines, and "line 1: what"
 *     for a run-time rule (it is the one line given).
 *   - Limits: 65,536 rules per policy, 1,024 lists, 1,000,000 list entries over all of a policy's lists.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy.h"

#define POL_LINE_MAX 4096
#define POL_RULES_MAX 65536
#define POL_LISTS_MAX 1024
#define POL_ENTRIES_MAX 1000000
#define POL_RATE_MAX (1ULL << 40)                       /* 1024G */
#define POL_DURATION_MAX_S (3650ULL * 24 * 3600)        /* 3650d */

/* One CIDR as parsed: the network address (host bits zero) and its prefix length. */
struct pol_cidr {
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t plen;
	uint8_t addr[16];
};

/*
 * A set of addresses as disjoint ranges sorted by their first address, one array per family.  A range is
 * its first and last address, big-endian, back to back (8 bytes for IPv4, 32 for IPv6): big-endian bytes
 * compare with memcmp in numeric order, which is all the bisection needs.
 */
struct pol_netset {
	uint8_t *r4, *r6;
	size_t n4, n6;
};

struct pol_list {
	char name[POL_NAME_MAX];
	unsigned line;
	struct pol_netset set;
};

/* remote= or local=: its own CIDRs plus the lists it names (owned by the policy, never by the rule). */
struct pol_addrs {
	struct pol_netset own;
	const struct pol_list **lists;
	size_t nlists;
};

struct pol_ports {
	struct pol_port_range {
		uint16_t lo, hi;
	} *r;
	size_t n;
};

/* The keys, in the order of pol_keys[]; a rule's `keys` has bit K for each key it has. */
enum pol_key_id {
	K_NAME, K_OP, K_FAMILY, K_PROTO, K_REMOTE, K_LOCAL, K_RPORT, K_LPORT,
	K_EXE, K_COMM, K_UID, K_PID, K_RATE, K_PER, K_FOR, K_COUNT
};
#define HAS(r, k) ((r)->keys & (1u << (k)))

struct pol_rule {
	char name[POL_NAME_MAX];
	enum pol_action action;
	unsigned line;            /* 0: added at run time */
	char *text;
	uint64_t hits;
	uint64_t expires_ms;      /* 0: never */
	unsigned keys;
	unsigned ops;             /* enum pol_op bits */
	int family, proto;
	struct pol_addrs remote, local;
	struct pol_ports rport, lport;
	char *exe, *comm;
	uint32_t uid_lo, uid_hi;
	pid_t pid;
	uint64_t rate;
	enum pol_per per;
};

struct policy {
	enum pol_action deflt;
	bool monitor;
	struct pol_rule **rules;
	size_t nrules, cap;
	/* Rule names, open addressing with linear probing, so that loading 65,536 rules does not compare every
	 * name with every other.  Rebuilt whole on removal: removals are rare (mwctl unblock, expiry). */
	struct pol_rule **names;
	size_t names_cap;         /* a power of two, at least twice nrules */
	struct pol_list **lists;
	size_t nlists;
	size_t nentries;          /* list entries over all lists, against POL_ENTRIES_MAX */
	unsigned rt_seq;          /* the last N given to an "rt-N" */
};

/* One parse: where errors are reported, and what the line may use. */
struct pol_ctx {
	struct policy *p;
	const char *file;         /* NULL: a run-time rule, errors say "line N" */
	const char *dir;          /* the rules file's directory with its '/', "" if none: relative list paths */
	FILE *f;                  /* the rules file, to look ahead for a misplaced list; NULL otherwise */
	unsigned line;
	uint64_t now_ms;
	unsigned default_line, mode_line;
	char *err;
	size_t errlen;
};

static int pol_err(struct pol_ctx *c, int ret, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int pol_err(struct pol_ctx *c, int ret, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!c->err || !c->errlen)
		return ret;
	if (c->file)
		n = snprintf(c->err, c->errlen, "%s:%u: ", c->file, c->line);
	else
		n = snprintf(c->err, c->errlen, "line %u: ", c->line);
	if (n < 0 || (size_t)n >= c->errlen)
		return ret;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return ret;
}

/* ---- lines and words ---- */

static bool pol_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* Read one line of f into buf (POL_LINE_MAX + 1 bytes) without its newline.  Returns its length, -1 at the
 * end of the file, -E2BIG for a longer line, -EILSEQ for a NUL byte, or the read error. */
static int pol_read_line(FILE *f, char *buf)
{
	size_t n = 0;
	int ch;

	errno = 0;
	while ((ch = getc_unlocked(f)) != EOF && ch != '\n') {
		if (n == POL_LINE_MAX)
			return -E2BIG;
		if (ch == 0)
			return -EILSEQ;
		buf[n++] = (char)ch;
	}
	if (ferror(f))
		return errno ? -errno : -EIO;
	if (ch == EOF && n == 0)
		return -1;
	buf[n] = 0;
	return (int)n;
}

static int pol_line_error(struct pol_ctx *c, int n)
{
	if (n == -E2BIG)
		return pol_err(c, -EINVAL, "line longer than %d bytes", POL_LINE_MAX);
	if (n == -EILSEQ)
		return pol_err(c, -EINVAL, "NUL byte in line");
	return pol_err(c, n, "read error: %s", strerror(-n));
}

/* Cut the comment and the blanks around the statement; returns its start. */
static char *pol_strip(char *s)
{
	char *e;

	for (e = s; *e; e++) {
		if (*e == '#' && (e == s || pol_blank(e[-1]))) {
			*e = 0;
			break;
		}
	}
	while (e > s && pol_blank(e[-1]))
		*--e = 0;
	while (pol_blank(*s))
		s++;
	return s;
}

/* The next blank-separated word of *cur, NUL-terminated in place; NULL at the end. */
static char *pol_word(char **cur)
{
	char *s = *cur, *w;

	while (pol_blank(*s))
		s++;
	if (!*s) {
		*cur = s;
		return NULL;
	}
	w = s;
	while (*s && !pol_blank(*s))
		s++;
	if (*s)
		*s++ = 0;
	*cur = s;
	return w;
}

/* ---- numbers ---- */

/* Decimal digits at s, at least one, into *out; *end is left at the first other byte.  -EINVAL without a
 * digit, -ERANGE past max. */
static int pol_parse_num(const char *s, const char **end, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (max - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*end = p;
	*out = v;
	return 0;
}

/* "N" or "LO-HI", each at most max, LO <= HI.  Nothing may follow. */
static int pol_parse_range(const char *s, uint64_t max, uint64_t *lo, uint64_t *hi)
{
	const char *e;

	if (pol_parse_num(s, &e, max, lo))
		return -EINVAL;
	if (!*e) {
		*hi = *lo;
		return 0;
	}
	if (*e != '-' || pol_parse_num(e + 1, &e, max, hi) || *e || *hi < *lo)
		return -EINVAL;
	return 0;
}

int pol_parse_rate(const char *s, uint64_t *out)
{
	uint64_t v;
	const char *e;
	unsigned shift = 0;

	if (!s || pol_parse_num(s, &e, UINT64_MAX, &v))
		return -EINVAL;
	switch (*e) {
	case 0:
		break;
	case 'K': case 'k':
		shift = 10;
		break;
	case 'M': case 'm':
		shift = 20;
		break;
	case 'G': case 'g':
		shift = 30;
		break;
	default:
		return -EINVAL;
	}
	if (shift && e[1])
		return -EINVAL;
	if (v == 0 || v > POL_RATE_MAX >> shift)
		return -EINVAL;
	*out = v << shift;
	return 0;
}

int pol_parse_duration(const char *s, uint64_t *out_ms)
{
	uint64_t v, mul = 1;
	const char *e;

	if (!s || pol_parse_num(s, &e, UINT64_MAX, &v))
		return -EINVAL;
	switch (*e) {
	case 0:
	case 's':
		break;
	case 'm':
		mul = 60;
		break;
	case 'h':
		mul = 3600;
		break;
	case 'd':
		mul = 24 * 3600;
		break;
	default:
		return -EINVAL;
	}
	if (*e && e[1])
		return -EINVAL;
	if (v == 0 || v > POL_DURATION_MAX_S / mul)
		return -EINVAL;
	*out_ms = v * mul * 1000;
	return 0;
}

/* ---- addresses ---- */

static bool pol_v4mapped(const uint8_t *a)
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return memcmp(a, prefix, sizeof(prefix)) == 0;
}

/* "ADDR" or "ADDR/PREFIX".  Returns 0, or -EINVAL with a reason in *why. */
static int pol_parse_cidr(const char *s, struct pol_cidr *out, const char **why)
{
	char buf[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned bits;
	uint64_t plen;

	*why = "not an IPv4 or IPv6 address";
	if (alen == 0 || alen >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, alen);
	buf[alen] = 0;
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = AF_INET;
		bits = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->family = AF_INET6;
		bits = 128;
	} else {
		return -EINVAL;
	}
	plen = bits;
	if (slash) {
		const char *e;

		*why = "bad prefix length";
		if (pol_parse_num(slash + 1, &e, bits, &plen) || *e)
			return -EINVAL;
	}
	out->plen = (uint8_t)plen;
	for (unsigned i = out->plen; i < bits; i++) {
		if (out->addr[i / 8] & (0x80 >> (i % 8))) {
			*why = "host bits set below the prefix";
			return -EINVAL;
		}
	}
	/* ::ffff:a.b.c.d/N with N >= 96 names IPv4 space: store it as the IPv4 CIDR so that it matches IPv4
	 * addresses and mapped ones alike, as that CIDR written in IPv4 does. */
	if (out->family == AF_INET6 && out->plen >= 96 && pol_v4mapped(out->addr)) {
		memmove(out->addr, out->addr + 12, 4);
		memset(out->addr + 4, 0, 12);
		out->family = AF_INET;
		out->plen -= 96;
	}
	return 0;
}

struct pol_cidrs {
	struct pol_cidr *v;
	size_t n, cap;
};

static int pol_cidrs_push(struct pol_cidrs *cs, const struct pol_cidr *c)
{
	if (cs->n == cs->cap) {
		size_t cap = cs->cap ? cs->cap * 2 : 16;
		struct pol_cidr *v = realloc(cs->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		cs->v = v;
		cs->cap = cap;
	}
	cs->v[cs->n++] = *c;
	return 0;
}

static int pol_cmp_r4(const void *a, const void *b)
{
	return memcmp(a, b, 4);
}

static int pol_cmp_r6(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

/* Ranges of one family (address width w) from cs, sorted, with nested and overlapping ones merged. */
static int pol_ranges_build(const struct pol_cidrs *cs, int family, size_t w, uint8_t **out, size_t *nout)
{
	size_t n = 0, m = 0;
	uint8_t *r;

	for (size_t i = 0; i < cs->n; i++)
		n += cs->v[i].family == family;
	*out = NULL;
	*nout = 0;
	if (!n)
		return 0;
	r = malloc(n * 2 * w);
	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < cs->n; i++) {
		const struct pol_cidr *c = &cs->v[i];
		uint8_t *lo = r + m * 2 * w, *hi = lo + w;

		if (c->family != family)
			continue;
		memcpy(lo, c->addr, w);
		memcpy(hi, c->addr, w);
		for (size_t b = c->plen; b < w * 8; b++)
			hi[b / 8] |= (uint8_t)(0x80 >> (b % 8));
		m++;
	}
	qsort(r, n, 2 * w, w == 4 ? pol_cmp_r4 : pol_cmp_r6);
	/* CIDRs nest or are disjoint, so after sorting by first address a range either starts past the last
	 * kept one's end or overlaps it; merging keeps the kept ranges disjoint for the bisection. */
	m = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t *cur = r + i * 2 * w;

		if (m) {
			uint8_t *last_hi = r + (m - 1) * 2 * w + w;

			if (memcmp(cur, last_hi, w) <= 0) {
				if (memcmp(cur + w, last_hi, w) > 0)
					memcpy(last_hi, cur + w, w);
				continue;
			}
		}
		if (i != m)
			memmove(r + m * 2 * w, cur, 2 * w);
		m++;
	}
	*out = r;
	*nout = m;
	return 0;
}

static void pol_netset_free(struct pol_netset *s)
{
	free(s->r4);
	free(s->r6);
	memset(s, 0, sizeof(*s));
}

static int pol_netset_build(struct pol_netset *s, const struct pol_cidrs *cs)
{
	int err = pol_ranges_build(cs, AF_INET, 4, &s->r4, &s->n4);

	if (!err)
		err = pol_ranges_build(cs, AF_INET6, 16, &s->r6, &s->n6);
	if (err)
		pol_netset_free(s);
	return err;
}

/* Is key (w bytes) inside one of the n ranges at r? */
static bool pol_ranges_find(const uint8_t *r, size_t n, size_t w, const uint8_t *key)
{
	size_t lo = 0, hi = n;

	/* Find the first range that starts after key; the one before it is the only candidate. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(r + mid * 2 * w, key, w) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && memcmp(key, r + (lo - 1) * 2 * w + w, w) <= 0;
}

static bool pol_netset_has(const struct pol_netset *s, const struct mw_addr *a)
{
	if (a->family == AF_INET)
		return pol_ranges_find(s->r4, s->n4, 4, a->addr);
	if (a->family != AF_INET6)
		return false;
	if (pol_v4mapped(a->addr) && pol_ranges_find(s->r4, s->n4, 4, a->addr + 12))
		return true;
	return pol_ranges_find(s->r6, s->n6, 16, a->addr);
}

static bool pol_addrs_match(const struct pol_addrs *m, const struct mw_addr *a)
{
	if (pol_netset_has(&m->own, a))
		return true;
	for (size_t i = 0; i < m->nlists; i++)
		if (pol_netset_has(&m->lists[i]->set, a))
			return true;
	return false;
}

/* ---- names ---- */

static bool pol_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= POL_NAME_MAX)
		return false;
	for (; *s; s++) {
		char ch = *s;

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '_' || ch == '.' || ch == ':' || ch == '-'))
			return false;
	}
	return true;
}

static size_t pol_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
	return (size_t)h;
}

/* The slot holding the rule called name, or the empty slot where it would go.  names_cap is never 0 here. */
static struct pol_rule **pol_names_slot(const struct policy *p, const char *name)
{
	size_t mask = p->names_cap - 1, i = pol_hash(name) & mask;

	while (p->names[i] && strcmp(p->names[i]->name, name))
		i = (i + 1) & mask;
	return &p->names[i];
}

static struct pol_rule *pol_find(const struct policy *p, const char *name)
{
	return p->names_cap ? *pol_names_slot(p, name) : NULL;
}

/* Re-enter every rule's name into a table of cap slots (cap 0: keep the current one, which can't fail). */
static int pol_names_rebuild(struct policy *p, size_t cap)
{
	if (cap) {
		struct pol_rule **t = calloc(cap, sizeof(*t));

		if (!t)
			return -ENOMEM;
		free(p->names);
		p->names = t;
		p->names_cap = cap;
	} else {
		memset(p->names, 0, p->names_cap * sizeof(*p->names));
	}
	for (size_t i = 0; i < p->nrules; i++)
		*pol_names_slot(p, p->rules[i]->name) = p->rules[i];
	return 0;
}

static const struct pol_list *pol_list_find(const struct policy *p, const char *name)
{
	for (size_t i = 0; i < p->nlists; i++)
		if (!strcmp(p->lists[i]->name, name))
			return p->lists[i];
	return NULL;
}

/* ---- rules ---- */

static void pol_rule_free(struct pol_rule *r)
{
	if (!r)
		return;
	pol_netset_free(&r->remote.own);
	pol_netset_free(&r->local.own);
	free(r->remote.lists);
	free(r->local.lists);
	free(r->rport.r);
	free(r->lport.r);
	free(r->exe);
	free(r->comm);
	free(r->text);
	free(r);
}

/* The line number of a `list name` statement further down the rules file, 0 if none.  Only on the error
 * path: it turns "unknown list" into the better "defined after its first use". */
static unsigned pol_list_later(struct pol_ctx *c, const char *name)
{
	char buf[POL_LINE_MAX + 1];
	unsigned line = c->line;
	int n;

	if (!c->f)
		return 0;
	while ((n = pol_read_line(c->f, buf)) != -1) {
		char *cur, *w;

		line++;
		if (n < 0)
			return 0;
		cur = pol_strip(buf);
		w = pol_word(&cur);
		if (w && !strcmp(w, "list") && (w = pol_word(&cur)) && !strcmp(w, name))
			return line;
	}
	return 0;
}

static int pol_key_addrs(struct pol_ctx *c, struct pol_addrs *m, char *val, const char *key)
{
	struct pol_cidrs cs = { 0 };
	char *el;
	int err = 0;

	while ((el = strsep(&val, ","))) {
		struct pol_cidr cidr;
		const char *why;

		if (!*el) {
			err = pol_err(c, -EINVAL, "empty element in %s=", key);
			break;
		}
		if (*el == '@') {
			const struct pol_list *l;
			const struct pol_list **v;
			unsigned later;

			if (!c->file) {
				err = pol_err(c, -EINVAL, "lists (%s) are not allowed in run-time rules", el);
				break;
			}
			l = pol_list_find(c->p, el + 1);
			if (!l) {
				later = pol_list_later(c, el + 1);
				if (later)
					err = pol_err(c, -EINVAL, "list %s is defined after its first use, at line %u",
						      el + 1, later);
				else
					err = pol_err(c, -EINVAL, "unknown list %s", el);
				break;
			}
			v = realloc(m->lists, (m->nlists + 1) * sizeof(*v));
			if (!v) {
				err = -ENOMEM;
				break;
			}
			m->lists = v;
			m->lists[m->nlists++] = l;
			continue;
		}
		if (pol_parse_cidr(el, &cidr, &why)) {
			err = pol_err(c, -EINVAL, "bad address in %s=%.64s: %s", key, el, why);
			break;
		}
		err = pol_cidrs_push(&cs, &cidr);
		if (err)
			break;
	}
	if (!err)
		err = pol_netset_build(&m->own, &cs);
	free(cs.v);
	return err;
}

static int pol_key_ports(struct pol_ctx *c, struct pol_ports *ps, char *val, const char *key)
{
	char *el;

	while ((el = strsep(&val, ","))) {
		struct pol_port_range *v;
		uint64_t lo, hi;

		if (pol_parse_range(el, 65535, &lo, &hi))
			return pol_err(c, -EINVAL, "bad port in %s=: '%.64s' (a port 0-65535 or LO-HI)", key, el);
		v = realloc(ps->r, (ps->n + 1) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		ps->r = v;
		ps->r[ps->n].lo = (uint16_t)lo;
		ps->r[ps->n].hi = (uint16_t)hi;
		ps->n++;
	}
	return 0;
}

static int pol_key_name(struct pol_ctx *c, struct pol_rule *r, char *val)
{
	if (!pol_name_ok(val))
		return pol_err(c, -EINVAL, "bad name '%.64s' (1 to %d of A-Z a-z 0-9 _ . : -)", val,
			       POL_NAME_MAX - 1);
	if (!strcmp(val, "default"))
		return pol_err(c, -EINVAL, "the name default is reserved for the verdict of no rule");
	strcpy(r->name, val);
	return 0;
}

static int pol_key_op(struct pol_ctx *c, struct pol_rule *r, char *val)
{
	static const struct {
		const char *name;
		enum pol_op op;
	} ops[] = {
		{ "connect", POL_OP_CONNECT },
		{ "accept", POL_OP_ACCEPT },
		{ "listen", POL_OP_LISTEN },
		{ "send", POL_OP_SEND },
	};
	char *el;

	while ((el = strsep(&val, ","))) {
		size_t i;

		for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
			if (!strcmp(el, ops[i].name))
				break;
		if (i == sizeof(ops) / sizeof(ops[0]))
			return pol_err(c, -EINVAL, "bad op '%.64s' (connect, accept, listen or send)", el);
		r->ops |= ops[i].op;
	}
	return 0;
}

static int pol_key_family(struct pol_ctx *c, struct pol_rule *r, char *val)
{
	if (!strcmp(val, "inet"))
		r->family = AF_INET;
	else if (!strcmp(val, "inet6"))
		r->family = AF_INET6;
	else
		return pol_err(c, -EINVAL, "bad family '%.64s' (inet or inet6)", val);
	return 0;
}

static int pol_key_proto(struct pol_ctx *c, struct pol_rule *r, char *val)
{
	if (!strcmp(val, "tcp"))
		r->proto = IPPROTO_TCP;
	else if (!strcmp(val, "udp"))
		r->proto = IPPROTO_UDP;
	else
		return pol_err(c, -EINVAL, "bad proto '%.64s' (tcp or udp)", val);
	return 0;
}

static int pol_key_remote(struct pol_ctx *c, struct pol_rule *r, char *val)
{
	return pol_key_addrs(c, &r->remote, val, "remote");
}

static int pol_key_local(struct pol_ctx *c, struct pol_rule *r, char *val)
{
	return pol_key_addrs(c, &r->local, val, "local");
}

static int pol_key_rport(struct pol_ctx *c, struct pol_rule *r, char *val)
{
	return pol_key_ports(c, &r->rport, val, "rport");
}

static int pol_key_lport(struct pol_ctx *c, struct pol_rule *r, char *val)
{
	return pol_key_ports(c, &r->lport, val, "lport");
}

static int pol_key_exe(struct pol_ctx *c, struct pol_rule *r, char *val)
{
	r->exe = strdup(val);
	return r->exe ? 0 : -ENOMEM;
}

static int pol_key_comm(struct pol_ctx *c, struct pol_rule *r, char *val)
{
	r->comm = strdup(val);
	return r->comm ? 0 : -ENOMEM;
}

static int pol_key_uid(struct pol_ctx *c, struct pol_rule *r, char *val)
{
	uint64_t lo, hi;

	if (pol_parse_range(val, UINT32_MAX, &lo, &hi))
		return pol_err(c, -EINVAL, "bad uid '%.64s' (a number or LO-HI)", val);
	r->uid_lo = (uint32_t)lo;
	r->uid_hi = (uint32_t)hi;
	return 0;
}

static int pol_key_pid(struct pol_ctx *c, struct pol_rule *r, char *val)
{
	uint64_t v;
	const char *e;

	if (pol_parse_num(val, &e, INT32_MAX, &v) || *e || v == 0)
		return pol_err(c, -EINVAL, "bad pid '%.64s'", val);
	r->pid = (pid_t)v;
	return 0;
}

static int pol_key_rate(struct pol_ctx *c, struct pol_rule *r, char *val)
{
	if (pol_parse_rate(val, &r->rate))
		return pol_err(c, -EINVAL, "bad rate '%.64s' (bytes per second: digits and K, M or G; 1 to 1024G)",
			       val);
	return 0;
}

static int pol_key_per(struct pol_ctx *c, struct pol_rule *r, char *val)
{
	if (!strcmp(val, "flow"))
		r->per = POL_PER_FLOW;
	else if (!strcmp(val, "program"))
		r->per = POL_PER_PROGRAM;
	else
		return pol_err(c, -EINVAL, "bad per '%.64s' (flow or program)", val);
	return 0;
}

static int pol_key_for(struct pol_ctx *c, struct pol_rule *r, char *val)
{
	uint64_t ms;

	if (pol_parse_duration(val, &ms))
		return pol_err(c, -EINVAL, "bad duration '%.64s' (digits and s, m, h or d; 1s to 3650d)", val);
	/* Saturate rather than wrap to a time long past: a caller's odd clock must not make the rule void. */
	r->expires_ms = ms > UINT64_MAX - c->now_ms ? UINT64_MAX : c->now_ms + ms;
	return 0;
}

static const struct pol_key {
	const char *name;
	int (*parse)(struct pol_ctx *c, struct pol_rule *r, char *val);
} pol_keys[K_COUNT] = {
	[K_NAME] = { "name", pol_key_name },
	[K_OP] = { "op", pol_key_op },
	[K_FAMILY] = { "family", pol_key_family },
	[K_PROTO] = { "proto", pol_key_proto },
	[K_REMOTE] = { "remote", pol_key_remote },
	[K_LOCAL] = { "local", pol_key_local },
	[K_RPORT] = { "rport", pol_key_rport },
	[K_LPORT] = { "lport", pol_key_lport },
	[K_EXE] = { "exe", pol_key_exe },
	[K_COMM] = { "comm", pol_key_comm },
	[K_UID] = { "uid", pol_key_uid },
	[K_PID] = { "pid", pol_key_pid },
	[K_RATE] = { "rate", pol_key_rate },
	[K_PER] = { "per", pol_key_per },
	[K_FOR] = { "for", pol_key_for },
};

static const char *const pol_action_names[] = {
	[POL_ALLOW] = "allow",
	[POL_DENY] = "deny",
	[POL_KILL] = "kill",
	[POL_LOG] = "log",
	[POL_THROTTLE] = "throttle",
};

const char *pol_action_name(enum pol_action a)
{
	if ((unsigned)a >= sizeof(pol_action_names) / sizeof(pol_action_names[0]))
		return "?";
	return pol_action_names[a];
}

static int pol_action_parse(const char *s, enum pol_action *a)
{
	for (size_t i = 0; i < sizeof(pol_action_names) / sizeof(pol_action_names[0]); i++) {
		if (!strcmp(s, pol_action_names[i])) {
			*a = (enum pol_action)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* One key=value word into r. */
static int pol_rule_key(struct pol_ctx *c, struct pol_rule *r, char *word)
{
	char *eq = strchr(word, '=');
	size_t k;

	if (!eq)
		return pol_err(c, -EINVAL, "expected KEY=VALUE, not '%.64s'", word);
	*eq = 0;
	for (k = 0; k < K_COUNT; k++)
		if (!strcmp(word, pol_keys[k].name))
			break;
	if (k == K_COUNT)
		return pol_err(c, -EINVAL, "unknown key %.64s=", word);
	if (HAS(r, k))
		return pol_err(c, -EINVAL, "duplicate key %s=", word);
	if (!eq[1])
		return pol_err(c, -EINVAL, "empty value for %s=", word);
	r->keys |= 1u << k;
	return pol_keys[k].parse(c, r, eq + 1);
}

/* Parse the words after the action into a new rule; *out on success.  text is the statement as written. */
static int pol_rule_parse(struct pol_ctx *c, enum pol_action a, const char *text, char *cur,
			  struct pol_rule **out)
{
	struct pol_rule *r = calloc(1, sizeof(*r));
	char *w;
	int err = 0;

	if (!r)
		return -ENOMEM;
	r->action = a;
	r->text = strdup(text);
	if (!r->text) {
		err = -ENOMEM;
		goto fail;
	}
	while ((w = pol_word(&cur))) {
		err = pol_rule_key(c, r, w);
		if (err)
			goto fail;
	}
	if (a == POL_THROTTLE && !HAS(r, K_RATE))
		err = pol_err(c, -EINVAL, "throttle needs rate=");
	else if (a != POL_THROTTLE && HAS(r, K_RATE))
		err = pol_err(c, -EINVAL, "rate= is only for throttle");
	else if (a != POL_THROTTLE && HAS(r, K_PER))
		err = pol_err(c, -EINVAL, "per= is only for throttle");
	if (err)
		goto fail;
	*out = r;
	return 0;
fail:
	pol_rule_free(r);
	return err;
}

/* Append r (named already, or named here), or fail and leave the policy as it was; r is then not taken. */
static int pol_rule_append(struct pol_ctx *c, struct pol_rule *r)
{
	struct policy *p = c->p;
	struct pol_rule *other;
	int err;

	if (p->nrules >= POL_RULES_MAX)
		return pol_err(c, -ENOSPC, "too many rules (at most %d)", POL_RULES_MAX);
	if (!HAS(r, K_NAME)) {
		if (c->file) {
			snprintf(r->name, sizeof(r->name), "line-%u", c->line);
		} else {
			/* Skip names taken by hand (name=rt-3): N counts up, never reused. */
			do
				snprintf(r->name, sizeof(r->name), "rt-%u", ++p->rt_seq);
			while (pol_find(p, r->name));
		}
	}
	other = pol_find(p, r->name);
	if (other) {
		if (other->line)
			return pol_err(c, -EEXIST, "name %s is already used at line %u", r->name, other->line);
		return pol_err(c, -EEXIST, "name %s is already used", r->name);
	}
	if (p->nrules == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		struct pol_rule **v = realloc(p->rules, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		p->rules = v;
		p->cap = cap;
	}
	if ((p->nrules + 1) * 2 > p->names_cap) {
		err = pol_names_rebuild(p, p->names_cap ? p->names_cap * 2 : 32);
		if (err)
			return err;
	}
	p->rules[p->nrules++] = r;
	*pol_names_slot(p, r->name) = r;
	return 0;
}

/* ---- statements ---- */

static int pol_stmt_default(struct pol_ctx *c, char *cur)
{
	char *w = pol_word(&cur);

	if (c->default_line)
		return pol_err(c, -EINVAL, "default is already set at line %u", c->default_line);
	if (!w || pol_word(&cur) || (strcmp(w, "allow") && strcmp(w, "deny")))
		return pol_err(c, -EINVAL, "default takes one word: allow or deny");
	c->p->deflt = strcmp(w, "allow") ? POL_DENY : POL_ALLOW;
	c->default_line = c->line;
	return 0;
}

static int pol_stmt_mode(struct pol_ctx *c, char *cur)
{
	char *w = pol_word(&cur);

	if (c->mode_line)
		return pol_err(c, -EINVAL, "mode is already set at line %u", c->mode_line);
	if (!w || pol_word(&cur) || (strcmp(w, "enforce") && strcmp(w, "monitor")))
		return pol_err(c, -EINVAL, "mode takes one word: enforce or monitor");
	c->p->monitor = !strcmp(w, "monitor");
	c->mode_line = c->line;
	return 0;
}

/* Read list file path into cs.  Its own errors are reported at its own lines. */
static int pol_list_read(struct pol_ctx *c, const char *path, struct pol_cidrs *cs)
{
	struct pol_ctx lc = { .p = c->p, .file = path, .err = c->err, .errlen = c->errlen };
	char buf[POL_LINE_MAX + 1];
	FILE *f = fopen(path, "re");
	int n, err = 0;

	if (!f) {
		err = -errno;
		return pol_err(c, err, "cannot read list file %s: %s", path, strerror(-err));
	}
	while ((n = pol_read_line(f, buf)) != -1) {
		struct pol_cidr cidr;
		const char *why;
		char *cur, *w;

		lc.line++;
		if (n < 0) {
			err = pol_line_error(&lc, n);
			break;
		}
		cur = pol_strip(buf);
		w = pol_word(&cur);
		if (!w)
			continue;
		if (pol_word(&cur)) {
			err = pol_err(&lc, -EINVAL, "one address or CIDR per line");
			break;
		}
		if (pol_parse_cidr(w, &cidr, &why)) {
			err = pol_err(&lc, -EINVAL, "bad address '%.64s': %s", w, why);
			break;
		}
		if (c->p->nentries >= POL_ENTRIES_MAX) {
			err = pol_err(&lc, -ENOSPC, "too many list entries (at most %d over all lists)",
				      POL_ENTRIES_MAX);
			break;
		}
		err = pol_cidrs_push(cs, &cidr);
		if (err)
			break;
		c->p->nentries++;
	}
	fclose(f);
	return err;
}

static int pol_stmt_list(struct pol_ctx *c, char *cur)
{
	char *name = pol_word(&cur), *file = pol_word(&cur);
	char path[PATH_MAX];
	struct pol_cidrs cs = { 0 };
	const struct pol_list *other;
	struct pol_list *l, **v;
	int err;

	if (!name || !file || pol_word(&cur))
		return pol_err(c, -EINVAL, "list takes a name and a file: list NAME PATH");
	if (!pol_name_ok(name))
		return pol_err(c, -EINVAL, "bad list name '%.64s' (1 to %d of A-Z a-z 0-9 _ . : -)", name,
			       POL_NAME_MAX - 1);
	other = pol_list_find(c->p, name);
	if (other)
		return pol_err(c, -EINVAL, "list %s is already defined at line %u", name, other->line);
	if (c->p->nlists >= POL_LISTS_MAX)
		return pol_err(c, -ENOSPC, "too many lists (at most %d)", POL_LISTS_MAX);
	if (snprintf(path, sizeof(path), "%s%s", file[0] == '/' ? "" : c->dir, file) >= (int)sizeof(path))
		return pol_err(c, -ENAMETOOLONG, "list file name too long");
	err = pol_list_read(c, path, &cs);
	if (err)
		goto out;
	err = -ENOMEM;
	l = calloc(1, sizeof(*l));
	v = realloc(c->p->lists, (c->p->nlists + 1) * sizeof(*v));
	if (v)
		c->p->lists = v;
	if (!l || !v || pol_netset_build(&l->set, &cs)) {
		free(l);
		goto out;
	}
	strcpy(l->name, name);
	l->line = c->line;
	c->p->lists[c->p->nlists++] = l;
	err = 0;
out:
	free(cs.v);
	return err;
}

/* One line of a rules file, or the one line of a run-time rule (no default, mode or list there). */
static int pol_stmt(struct pol_ctx *c, char *line)
{
	const char *text = pol_strip(line);
	char words[POL_LINE_MAX + 1], *cur = words, *w;
	struct pol_rule *r;
	enum pol_action a;
	int err;

	/* The words are cut apart in a copy: text stays as written, for mwctl. */
	memcpy(words, text, strlen(text) + 1);
	w = pol_word(&cur);
	if (!w)
		return c->file ? 0 : pol_err(c, -EINVAL, "empty rule");
	if (!strcmp(w, "default") || !strcmp(w, "mode") || !strcmp(w, "list")) {
		if (!c->file)
			return pol_err(c, -EINVAL, "%s belongs in the rules file, not in a run-time rule", w);
		if (w[0] == 'd')
			return pol_stmt_default(c, cur);
		return w[0] == 'm' ? pol_stmt_mode(c, cur) : pol_stmt_list(c, cur);
	}
	if (pol_action_parse(w, &a))
		return pol_err(c, -EINVAL, "unknown action '%.64s' (allow, deny, kill, log or throttle)", w);
	err = pol_rule_parse(c, a, text, cur, &r);
	if (err)
		return err;
	r->line = c->file ? c->line : 0;
	err = pol_rule_append(c, r);
	if (err)
		pol_rule_free(r);
	return err;
}

/* ---- policies ---- */

struct policy *policy_new(void)
{
	struct policy *p = calloc(1, sizeof(*p));

	if (p)
		p->deflt = POL_ALLOW;
	return p;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nrules; i++)
		pol_rule_free(p->rules[i]);
	for (size_t i = 0; i < p->nlists; i++) {
		pol_netset_free(&p->lists[i]->set);
		free(p->lists[i]);
	}
	free(p->rules);
	free(p->names);
	free(p->lists);
	free(p);
}

struct policy *policy_load(const char *path, uint64_t now_ms, char *err, size_t errlen)
{
	struct pol_ctx c = { .file = path, .now_ms = now_ms, .err = err, .errlen = errlen };
	char buf[POL_LINE_MAX + 1], dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int n, ret = 0;

	if (err && errlen)
		err[0] = 0;
	/* dir keeps its '/', so that "rules" (no directory) leaves relative list paths as they are. */
	if (slash && (size_t)(slash - path + 1) >= sizeof(dir)) {
		pol_err(&c, -ENAMETOOLONG, "file name too long");
		return NULL;
	}
	n = slash ? (int)(slash - path + 1) : 0;
	memcpy(dir, path, (size_t)n);
	dir[n] = 0;
	c.dir = dir;
	c.f = fopen(path, "re");
	if (!c.f) {
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	c.p = policy_new();
	if (!c.p) {
		ret = -ENOMEM;
		goto out;
	}
	while ((n = pol_read_line(c.f, buf)) != -1) {
		c.line++;
		ret = n < 0 ? pol_line_error(&c, n) : pol_stmt(&c, buf);
		if (ret)
			break;
	}
out:
	fclose(c.f);
	if (ret == -ENOMEM)
		pol_err(&c, ret, "out of memory");
	if (ret) {
		policy_free(c.p);
		return NULL;
	}
	return c.p;
}

int policy_add_rule(struct policy *p, const char *line, uint64_t now_ms, char *name_out, size_t name_len,
		    char *err, size_t errlen)
{
	struct pol_ctx c = { .p = p, .line = 1, .now_ms = now_ms, .err = err, .errlen = errlen };
	size_t len = strlen(line);
	char *copy;
	int ret;

	if (err && errlen)
		err[0] = 0;
	if (len > POL_LINE_MAX)
		return pol_err(&c, -EINVAL, "line longer than %d bytes", POL_LINE_MAX);
	if (strchr(line, '\n'))
		return pol_err(&c, -EINVAL, "a rule is one line");
	copy = strdup(line);
	if (!copy)
		return -ENOMEM;
	ret = pol_stmt(&c, copy);
	free(copy);
	if (ret == -ENOMEM)
		return pol_err(&c, ret, "out of memory");
	if (!ret && name_out && name_len)
		snprintf(name_out, name_len, "%s", p->rules[p->nrules - 1]->name);
	return ret;
}

int policy_remove_rule(struct policy *p, const char *name)
{
	struct pol_rule *r = pol_find(p, name);
	size_t i;

	if (!r)
		return -ENOENT;
	for (i = 0; p->rules[i] != r; i++)
		;
	memmove(&p->rules[i], &p->rules[i + 1], (p->nrules - i - 1) * sizeof(*p->rules));
	p->nrules--;
	pol_rule_free(r);
	pol_names_rebuild(p, 0);
	return 0;
}

static bool pol_expired(const struct pol_rule *r, uint64_t now_ms)
{
	return r->expires_ms && now_ms >= r->expires_ms;
}

int policy_expire(struct policy *p, uint64_t now_ms)
{
	size_t i, m = 0;
	int gone = 0;

	for (i = 0; i < p->nrules; i++) {
		if (pol_expired(p->rules[i], now_ms)) {
			pol_rule_free(p->rules[i]);
			gone++;
		} else {
			p->rules[m++] = p->rules[i];
		}
	}
	p->nrules = m;
	if (gone)
		pol_names_rebuild(p, 0);
	return gone;
}

/* ---- evaluation ---- */

static bool pol_ports_match(const struct pol_ports *ps, const struct mw_addr *a)
{
	uint16_t port = ntohs(a->port);

	for (size_t i = 0; i < ps->n; i++)
		if (port >= ps->r[i].lo && port <= ps->r[i].hi)
			return true;
	return false;
}

/* Cheap tests first; the address bisection and fnmatch last. */
static bool pol_rule_matches(const struct pol_rule *r, const struct pol_query *q)
{
	if (pol_expired(r, q->now_ms))
		return false;
	if (r->ops && !(r->ops & q->op))
		return false;
	if (r->family && r->family != q->family)
		return false;
	if (r->proto && r->proto != q->proto)
		return false;
	if (HAS(r, K_PID) && r->pid != q->pid)
		return false;
	if (HAS(r, K_UID) && ((uint32_t)q->uid < r->uid_lo || (uint32_t)q->uid > r->uid_hi))
		return false;
	/* No address yet (a listen has no remote; a socket may have no local): a rule about it can't match. */
	if ((HAS(r, K_REMOTE) || HAS(r, K_RPORT)) && !q->remote.family)
		return false;
	if ((HAS(r, K_LOCAL) || HAS(r, K_LPORT)) && !q->local.family)
		return false;
	if (HAS(r, K_RPORT) && !pol_ports_match(&r->rport, &q->remote))
		return false;
	if (HAS(r, K_LPORT) && !pol_ports_match(&r->lport, &q->local))
		return false;
	if (HAS(r, K_REMOTE) && !pol_addrs_match(&r->remote, &q->remote))
		return false;
	if (HAS(r, K_LOCAL) && !pol_addrs_match(&r->local, &q->local))
		return false;
	if (r->comm && fnmatch(r->comm, q->comm ? q->comm : "", 0))
		return false;
	if (r->exe && fnmatch(r->exe, q->exe ? q->exe : "", 0))
		return false;
	return true;
}

bool policy_eval_rules(struct policy *p, const struct pol_query *q, struct pol_verdict *v)
{
	for (size_t i = 0; i < p->nrules; i++) {
		struct pol_rule *r = p->rules[i];

		if (!pol_rule_matches(r, q))
			continue;
		r->hits++;
		switch (r->action) {
		case POL_LOG:
			if (!v->log) {
				v->log = true;
				memcpy(v->log_rule, r->name, sizeof(v->log_rule));
			}
			break;
		case POL_THROTTLE:
			if (!v->rate) {
				v->rate = r->rate;
				v->per = r->per;
				memcpy(v->throttle_rule, r->name, sizeof(v->throttle_rule));
			}
			break;
		default:
			v->action = r->action;
			memcpy(v->rule, r->name, sizeof(v->rule));
			v->monitor = p->monitor;
			return true;
		}
	}
	return false;
}

void policy_eval(struct policy *p, const struct pol_query *q, struct pol_verdict *v)
{
	if (policy_eval_rules(p, q, v))
		return;
	v->action = p->deflt;
	snprintf(v->rule, sizeof(v->rule), "default");
	v->monitor = p->monitor;
}

size_t policy_nrules(const struct policy *p)
{
	return p->nrules;
}

enum pol_action policy_default(const struct policy *p)
{
	return p->deflt;
}

bool policy_monitor(const struct policy *p)
{
	return p->monitor;
}

int policy_rule_info(const struct policy *p, size_t i, struct pol_rule_info *out)
{
	const struct pol_rule *r;

	if (i >= p->nrules)
		return -ENOENT;
	r = p->rules[i];
	out->name = r->name;
	out->line = r->line;
	out->action = r->action;
	out->text = r->text;
	out->hits = r->hits;
	out->expires_ms = r->expires_ms;
	return 0;
}
