/*
 * test_policy.c: the rules-file parser and evaluator (src/ins/policy.c) alone.  Rules files and list files
 * are written into a fresh mkdtemp directory, removed at the end.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "policy.h"
#include "tap.h"

#define NOW 1700000000000ULL

static char dir[PATH_MAX];
static char err[512];

/* dir/name, in a rotating set of buffers so that a test can hold a few at once. */
static const char *path_of(const char *name)
{
	static char bufs[4][PATH_MAX];
	static int i;
	char *b = bufs[i++ % 4];

	if (snprintf(b, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX)
		abort();
	return b;
}

static const char *write_file(const char *name, const char *text, size_t len)
{
	const char *path = path_of(name);
	FILE *f = fopen(path, "w");

	if (!f || fwrite(text, 1, len, f) != len || fclose(f)) {
		perror(path);
		exit(2);
	}
	return path;
}

static const char *write_str(const char *name, const char *text)
{
	return write_file(name, text, strlen(text));
}

static struct policy *load_text(const char *text)
{
	return policy_load(write_str("p.rules", text), NOW, err, sizeof(err));
}

/* The load failed, err starts with exactly "FILE:LINE: " and says what. */
static bool failed_at(struct policy *p, const char *file, unsigned line, const char *what)
{
	char prefix[PATH_MAX + 32];
	bool good;

	snprintf(prefix, sizeof(prefix), "%s:%u: ", file, line);
	good = !p && !strncmp(err, prefix, strlen(prefix)) && strstr(err + strlen(prefix), what);
	if (!good)
		printf("# wanted \"%s...%s\", got \"%s\"%s\n", prefix, what, err, p ? " and a policy" : "");
	policy_free(p);
	return good;
}

static struct mw_addr addr(const char *ip, unsigned port)
{
	struct mw_addr a = { 0 };

	if (!ip)
		return a;
	if (inet_pton(AF_INET, ip, a.addr) == 1)
		a.family = AF_INET;
	else if (inet_pton(AF_INET6, ip, a.addr) == 1)
		a.family = AF_INET6;
	else
		abort();
	a.port = htons((uint16_t)port);
	return a;
}

/* A query by curl (uid 1000, pid 42) now; send is UDP, the rest TCP. */
static struct pol_query query(enum pol_op op, const char *remote, unsigned rport)
{
	struct pol_query q = {
		.op = op,
		.proto = op == POL_OP_SEND ? IPPROTO_UDP : IPPROTO_TCP,
		.remote = addr(remote, rport),
		.exe = "/usr/bin/curl",
		.comm = "curl",
		.uid = 1000,
		.pid = 42,
		.now_ms = NOW,
	};

	q.family = q.remote.family ? q.remote.family : AF_INET;
	return q;
}

static struct pol_verdict eval(struct policy *p, const struct pol_query *q)
{
	struct pol_verdict v = { 0 };

	policy_eval(p, q, &v);
	return v;
}

/* The deciding rule's name for q, or "?" when it decided allow/deny/kill differently than want. */
static const char *decides(struct policy *p, const struct pol_query *q, enum pol_action want)
{
	static struct pol_verdict v;

	v = eval(p, q);
	return v.action == want ? v.rule : "?";
}

static uint64_t hits(struct policy *p, size_t i)
{
	struct pol_rule_info ri;

	return policy_rule_info(p, i, &ri) ? UINT64_MAX : ri.hits;
}

static void test_numbers(void)
{
	static const struct {
		const char *s;
		int ret;
		uint64_t v;
	} rates[] = {
		{ "1", 0, 1 }, { "1K", 0, 1024 }, { "1k", 0, 1024 }, { "1M", 0, 1048576 },
		{ "3G", 0, 3ULL << 30 }, { "1024G", 0, 1ULL << 40 }, { "1099511627776", 0, 1ULL << 40 },
		{ "0", -EINVAL, 0 }, { "0K", -EINVAL, 0 }, { "1.5M", -EINVAL, 0 }, { "1MB", -EINVAL, 0 },
		{ "1025G", -EINVAL, 0 }, { "1099511627777", -EINVAL, 0 }, { "18446744073709551616", -EINVAL, 0 },
		{ "99999999999999999999999K", -EINVAL, 0 }, { "", -EINVAL, 0 }, { "-1", -EINVAL, 0 },
		{ "+1", -EINVAL, 0 }, { "M", -EINVAL, 0 }, { "1 M", -EINVAL, 0 }, { "1T", -EINVAL, 0 },
	};
	static const struct {
		const char *s;
		int ret;
		uint64_t ms;
	} durs[] = {
		{ "30s", 0, 30000 }, { "10m", 0, 600000 }, { "2h", 0, 7200000 }, { "1d", 0, 86400000 },
		{ "45", 0, 45000 }, { "3650d", 0, 3650ULL * 86400000 }, { "0", -EINVAL, 0 }, { "0s", -EINVAL, 0 },
		{ "3651d", -EINVAL, 0 }, { "1h30m", -EINVAL, 0 }, { "1.5h", -EINVAL, 0 }, { "10M", -EINVAL, 0 },
		{ "", -EINVAL, 0 }, { "s", -EINVAL, 0 }, { "-5s", -EINVAL, 0 }, { "1w", -EINVAL, 0 },
		{ "99999999999999999999", -EINVAL, 0 },
	};
	bool all = true;

	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		uint64_t v = 7;
		int ret = pol_parse_rate(rates[i].s, &v);

		if (ret != rates[i].ret || (!ret && v != rates[i].v) || (ret && v != 7)) {
			printf("# rate \"%s\": %d %llu\n", rates[i].s, ret, (unsigned long long)v);
			all = false;
		}
	}
	ok(all, "rates: digits with K/M/G (1024s), 1 to 1024G; 0, fractions, units, signs, overflow refused");
	all = true;
	for (size_t i = 0; i < sizeof(durs) / sizeof(durs[0]); i++) {
		uint64_t v = 7;
		int ret = pol_parse_duration(durs[i].s, &v);

		if (ret != durs[i].ret || (!ret && v != durs[i].ms) || (ret && v != 7)) {
			printf("# duration \"%s\": %d %llu\n", durs[i].s, ret, (unsigned long long)v);
			all = false;
		}
	}
	ok(all, "durations: digits with s/m/h/d, 1s to 3650d; 0, sums, fractions, M refused");
	ok(!strcmp(pol_action_name(POL_ALLOW), "allow") && !strcmp(pol_action_name(POL_KILL), "kill") &&
		   !strcmp(pol_action_name(POL_THROTTLE), "throttle") &&
		   !strcmp(pol_action_name((enum pol_action)99), "?"),
	   "action names");
}

static void test_load(void)
{
	struct policy *p = policy_new();
	struct pol_rule_info ri;

	ok(p && policy_nrules(p) == 0 && policy_default(p) == POL_ALLOW && !policy_monitor(p),
	   "policy_new: empty, default allow, enforce");
	policy_free(p);

	p = load_text("");
	ok(p && policy_nrules(p) == 0 && !err[0], "an empty file loads");
	policy_free(p);

	write_str("badnets.txt", "# bad\n203.0.113.0/24\n\n2001:db8:bad::/48  # v6\n");
	p = load_text("# the document's example\n"
		      "default deny                  # or deny\n"
		      "mode monitor\n"
		      "list badnets badnets.txt\n"
		      "\n"
		      "deny  name=no-metadata op=connect remote=169.254.0.0/16\n"
		      "deny  name=bad op=connect,send remote=@badnets\n"
		      "kill  name=no-telnet op=connect rport=23\n"
		      "log   name=dns op=send rport=53\n"
		      "throttle name=slow-curl exe=/usr/bin/curl rate=1M per=program\n"
		      "allow name=web op=listen lport=8000-8999\n"
		      "deny  name=no-listen op=listen\n"
		      "\tallow\top=connect   rport=443 # unnamed\r\n");
	ok(p && policy_nrules(p) == 8 && policy_default(p) == POL_DENY && policy_monitor(p),
	   "the example loads: 8 rules, default deny, monitor (%s)", err);
	if (!p)
		return;
	ok(!policy_rule_info(p, 1, &ri) && !strcmp(ri.name, "bad") && ri.line == 7 && ri.action == POL_DENY &&
		   !strcmp(ri.text, "deny  name=bad op=connect,send remote=@badnets") && ri.hits == 0 &&
		   ri.expires_ms == 0,
	   "rule info: name, line, action, text as written, hits, expiry");
	ok(!policy_rule_info(p, 7, &ri) && !strcmp(ri.name, "line-13") && ri.line == 13 &&
		   !strcmp(ri.text, "allow\top=connect   rport=443"),
	   "an unnamed rule is line-N; text loses only the comment and outer blanks (\"%s\")",
	   policy_rule_info(p, 7, &ri) ? "" : ri.text);
	ok(policy_rule_info(p, 8, &ri) == -ENOENT, "rule info past the end: -ENOENT");
	policy_free(p);
}

static void test_errors(void)
{
	static const struct {
		const char *text;
		unsigned line;
		const char *what;
	} cases[] = {
		{ "allow\n\n# c\nallow bogus=1\n", 4, "unknown key bogus=" },
		{ "deny rport=1 rport=2\n", 1, "duplicate key rport=" },
		{ "allow\npermit op=connect\n", 2, "unknown action 'permit'" },
		{ "deny remote=10.0.0.0/33\n", 1, "bad prefix length" },
		{ "deny remote=10.1.0.0/8\n", 1, "host bits" },
		{ "deny remote=2001:db8::1/64\n", 1, "host bits" },
		{ "deny remote=10.0.0.256\n", 1, "not an IPv4 or IPv6 address" },
		{ "deny remote=fe80::1%eth0\n", 1, "not an IPv4 or IPv6 address" },
		{ "deny remote=10.0.0.0/8,,10.1.0.0/16\n", 1, "empty element" },
		{ "deny remote=\n", 1, "empty value for remote=" },
		{ "deny remote\n", 1, "expected KEY=VALUE" },
		{ "deny rport=65536\n", 1, "bad port" },
		{ "deny lport=90-80\n", 1, "bad port" },
		{ "deny rport=80,\n", 1, "bad port" },
		{ "deny op=connect,bind\n", 1, "bad op 'bind'" },
		{ "deny family=ipv4\n", 1, "bad family" },
		{ "deny proto=icmp\n", 1, "bad proto" },
		{ "deny uid=5-3\n", 1, "bad uid" },
		{ "deny uid=4294967296\n", 1, "bad uid" },
		{ "deny pid=0\n", 1, "bad pid" },
		{ "deny pid=12x\n", 1, "bad pid" },
		{ "deny for=0\n", 1, "bad duration" },
		{ "throttle exe=/x\n", 1, "throttle needs rate=" },
		{ "throttle rate=1.5M\n", 1, "bad rate '1.5M'" },
		{ "deny rate=1M\n", 1, "rate= is only for throttle" },
		{ "allow per=flow\n", 1, "per= is only for throttle" },
		{ "throttle rate=1M per=thread\n", 1, "bad per" },
		{ "allow name=a\ndeny name=b\nlog name=a\n", 3, "name a is already used at line 1" },
		{ "allow name=line-3\nlog\ndeny\n", 3, "name line-3 is already used at line 1" },
		{ "allow name=default\n", 1, "reserved" },
		{ "allow name=has/slash\n", 1, "bad name" },
		{ "allow name=abcdefghijabcdefghijabcdefghijabcdefghijabcdefgh\n", 1, "bad name" },
		{ "default maybe\n", 1, "default takes one word" },
		{ "default allow\nmode enforce\ndefault deny\n", 3, "default is already set at line 1" },
		{ "mode enforce monitor\n", 1, "mode takes one word" },
		{ "mode monitor\nmode monitor\n", 2, "mode is already set at line 1" },
		{ "deny remote=@nowhere\n", 1, "unknown list @nowhere" },
		{ "allow\ndeny remote=@late\nlist late l1.txt\n", 2,
		  "list late is defined after its first use, at line 3" },
		{ "list a l1.txt\nlist a l1.txt\n", 2, "list a is already defined at line 1" },
		{ "list a\n", 1, "list takes a name and a file" },
		{ "list a/b l1.txt\n", 1, "bad list name" },
		{ "allow\nlist missing does-not-exist.txt\n", 2, "cannot read list file" },
	};
	char *big;
	struct policy *p;

	write_str("l1.txt", "192.0.2.0/24\n");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ok(failed_at(load_text(cases[i].text), path_of("p.rules"), cases[i].line, cases[i].what),
		   "error at line %u: %s", cases[i].line, cases[i].what);

	/* A list file's own errors point into it. */
	write_str("l2.txt", "10.0.0.0/8\n# fine\n10.0.0.1/8\n");
	ok(failed_at(load_text("allow\nlist two l2.txt\n"), path_of("l2.txt"), 3, "host bits"),
	   "a list file's bad line: LISTFILE:LINE");
	write_str("l3.txt", "10.0.0.0/8 10.1.0.0/16\n");
	ok(failed_at(load_text("list three l3.txt\n"), path_of("l3.txt"), 1, "one address"),
	   "a list file's line holds one address");

	/* Lines: 4096 bytes pass, 4097 do not; a NUL byte is refused. */
	big = malloc(8200);
	memset(big, ' ', 8200);
	memcpy(big, "allow", 5);
	big[4096] = '\n';
	memcpy(big + 4097, "allow", 5);
	big[4097 + 4097] = '\n';
	p = policy_load(write_file("big.rules", big, 4097), NOW, err, sizeof(err));
	ok(p && policy_nrules(p) == 1, "a line of 4096 bytes is fine (%s)", err);
	policy_free(p);
	ok(failed_at(policy_load(write_file("big.rules", big, 4097 + 4098), NOW, err, sizeof(err)),
		     path_of("big.rules"), 2, "longer than 4096"),
	   "a line of 4097 bytes is an error at its line");
	free(big);
	ok(failed_at(policy_load(write_file("nul.rules", "allow\ndeny\0 x\n", 14), NOW, err, sizeof(err)),
		     path_of("nul.rules"), 2, "NUL"),
	   "a NUL byte is an error");

	p = policy_load(path_of("no-such.rules"), NOW, err, sizeof(err));
	ok(!p && strstr(err, "no-such.rules") && strstr(err, strerror(ENOENT)), "a missing file: NULL, and why");
	ok(!policy_load(dir, NOW, err, sizeof(err)) && strstr(err, dir), "a directory: NULL (%s)", err);
	write_str("p.rules", "deny bogus=1\n");
	ok(!policy_load(path_of("p.rules"), NOW, NULL, 0), "a bad file without an error buffer: NULL");

	/* Good lines before and after the bad one: nothing is kept. */
	p = load_text("default deny\nallow name=a\ndeny name=b remote=1.2.3.4/40\nallow name=c\n");
	ok(failed_at(p, path_of("p.rules"), 3, "bad prefix"), "one bad line among good ones: NULL");
}

static void test_first_match(void)
{
	struct policy *p = load_text("log name=seen\n"
				     "throttle name=t1 op=connect rate=2K\n"
				     "allow name=a op=connect rport=80\n"
				     "throttle name=t2 rate=1M per=program\n"
				     "deny name=d op=connect\n"
				     "kill name=k\n");
	struct pol_query q;
	struct pol_verdict v;

	ok(p != NULL, "first-match policy loads (%s)", err);
	if (!p)
		return;
	q = query(POL_OP_CONNECT, "192.0.2.1", 80);
	v = eval(p, &q);
	ok(v.action == POL_ALLOW && !strcmp(v.rule, "a") && !v.monitor, "the first deciding rule wins (%s)", v.rule);
	ok(v.log && !strcmp(v.log_rule, "seen"), "a log rule on the way marks the verdict");
	ok(v.rate == 2048 && v.per == POL_PER_FLOW && !strcmp(v.throttle_rule, "t1"),
	   "a throttle rule on the way sets rate and per");
	q.remote.port = htons(81);
	v = eval(p, &q);
	ok(v.action == POL_DENY && !strcmp(v.rule, "d") && v.rate == 2048 && !strcmp(v.throttle_rule, "t1"),
	   "the first throttle rule sets the rate; a later one does not (%s, %llu)", v.throttle_rule,
	   (unsigned long long)v.rate);
	q = query(POL_OP_SEND, "192.0.2.1", 53);
	v = eval(p, &q);
	ok(v.action == POL_KILL && !strcmp(v.rule, "k") && v.rate == 1048576 && v.per == POL_PER_PROGRAM &&
		   !strcmp(v.throttle_rule, "t2"),
	   "log and throttle go on to the deciding rule");
	ok(hits(p, 0) == 3 && hits(p, 1) == 2 && hits(p, 2) == 1 && hits(p, 3) == 2 && hits(p, 4) == 1 &&
		   hits(p, 5) == 1,
	   "hits: every rule that matched, none past the decision (%llu %llu %llu %llu %llu %llu)",
	   (unsigned long long)hits(p, 0), (unsigned long long)hits(p, 1), (unsigned long long)hits(p, 2),
	   (unsigned long long)hits(p, 3), (unsigned long long)hits(p, 4), (unsigned long long)hits(p, 5));
	policy_free(p);

	p = load_text("default deny\nmode monitor\nlog name=l rport=25\nlog name=l2\nallow name=w rport=443\n");
	q = query(POL_OP_CONNECT, "192.0.2.1", 25);
	v = eval(p, &q);
	ok(p && v.action == POL_DENY && !strcmp(v.rule, "default") && v.monitor && v.log,
	   "no deciding rule: the default, named default; monitor copied; marks kept");
	ok(!strcmp(v.log_rule, "l") && hits(p, 1) == 1, "the first log rule names the mark; a later one counts a hit");
	q.remote.port = htons(443);
	v = eval(p, &q);
	ok(v.action == POL_ALLOW && !strcmp(v.rule, "w") && v.monitor && !strcmp(v.log_rule, "l2") && v.rate == 0,
	   "monitor is set on a rule's verdict too");
	{
		struct pol_verdict w = { 0 };

		q.remote.port = htons(25);
		ok(!policy_eval_rules(p, &q, &w) && w.log && !w.rule[0] && w.action == 0,
		   "eval_rules without a decision: false, only the marks");
	}
	policy_free(p);
}

static void test_addresses(void)
{
	struct policy *p = load_text("deny name=v4 remote=10.0.0.0/8,192.0.2.7\n"
				     "deny name=v6 remote=2001:db8::/32,2001:db8:ffff::1\n"
				     "deny name=mapped remote=::ffff:198.51.100.0/120\n"
				     "deny name=all6 remote=::/0\n");
	struct pol_query q;

	ok(p != NULL, "address policy loads (%s)", err);
	if (!p)
		return;
#define REMOTE(ip) (q = query(POL_OP_CONNECT, ip, 443), decides(p, &q, POL_DENY))
	ok(!strcmp(REMOTE("10.255.255.255"), "v4") && !strcmp(REMOTE("10.0.0.0"), "v4"), "IPv4 CIDR: inside");
	q = query(POL_OP_CONNECT, "11.0.0.0", 443);
	ok(!strcmp(decides(p, &q, POL_ALLOW), "default"), "IPv4 CIDR: outside");
	ok(!strcmp(REMOTE("192.0.2.7"), "v4") && strcmp(REMOTE("192.0.2.8"), "v4"), "a bare IPv4 address is a /32");
	ok(!strcmp(REMOTE("::ffff:10.1.2.3"), "v4"), "an IPv4-mapped IPv6 address matches an IPv4 CIDR");
	ok(!strcmp(REMOTE("2001:db8:1::5"), "v6"), "IPv6 CIDR: inside");
	ok(!strcmp(REMOTE("2001:db8:ffff::1"), "v6") && !strcmp(REMOTE("2001:db8:ffff::2"), "v6"),
	   "a bare IPv6 address inside the CIDR too");
	ok(!strcmp(REMOTE("2001:db9::1"), "all6"), "IPv6 outside 2001:db8::/32: only ::/0");
	ok(!strcmp(REMOTE("::a00:1"), "all6"), "an IPv6 address with IPv4-looking low bits is not 10.0.0.1");
	ok(!strcmp(REMOTE("198.51.100.9"), "mapped"), "a ::ffff:a.b.c.d/N CIDR matches plain IPv4");
	ok(!strcmp(REMOTE("::ffff:198.51.100.9"), "mapped"), "... and the mapped address");
	q = query(POL_OP_CONNECT, "203.0.113.1", 443);
	ok(eval(p, &q).action == POL_ALLOW, "::/0 does not match a plain IPv4 address");
#undef REMOTE
	policy_free(p);

	p = load_text("allow name=host6 remote=2001:db8::1\n"
		      "allow name=v4all remote=0.0.0.0/0\n"
		      "deny name=rest\n");
	q = query(POL_OP_CONNECT, "2001:db8::1", 1);
	ok(p && !strcmp(decides(p, &q, POL_ALLOW), "host6"), "a bare IPv6 address is a /128: itself");
	q = query(POL_OP_CONNECT, "2001:db8::2", 1);
	ok(!strcmp(decides(p, &q, POL_DENY), "rest"), "... and nothing beside it; 0.0.0.0/0 never matches IPv6");
	q = query(POL_OP_CONNECT, "255.255.255.255", 1);
	ok(!strcmp(decides(p, &q, POL_ALLOW), "v4all"), "0.0.0.0/0 matches every IPv4 address");
	policy_free(p);

	/* Listen has no remote; a socket may not have a local yet. */
	p = load_text("deny name=r remote=0.0.0.0/0\n"
		      "deny name=rp rport=0-65535\n"
		      "deny name=l local=127.0.0.0/8\n"
		      "deny name=lp lport=0-1023\n"
		      "allow name=rest\n");
	q = query(POL_OP_LISTEN, NULL, 0);
	ok(p && !strcmp(decides(p, &q, POL_ALLOW), "rest"), "listen (remote family 0) skips remote= and rport=, "
	   "and local= and lport= without a local address");
	q.local = addr("127.0.0.1", 8080);
	ok(!strcmp(decides(p, &q, POL_DENY), "l"), "local= matches once the local address is known");
	q.local = addr("192.0.2.1", 80);
	ok(!strcmp(decides(p, &q, POL_DENY), "lp"), "lport= matches the local port");
	policy_free(p);
}

static void test_keys(void)
{
	struct policy *p = load_text("allow name=web lport=8000-8999,443\n"
				     "deny name=ports rport=22,25-26,65535\n"
				     "deny name=curl exe=/usr/*/cu?l comm=curl\n"
				     "deny name=py exe=*python3*\n"
				     "deny name=users uid=2000-2999\n"
				     "deny name=root uid=0\n"
				     "deny name=pid pid=4242\n"
				     "deny name=v6tcp family=inet6 proto=tcp\n"
				     "deny name=udp proto=udp op=send\n"
				     "deny name=hash exe=/opt/a#b # a comment starts a word\n"
				     "allow name=rest\n");
	struct pol_query q;

	ok(p != NULL, "key policy loads (%s)", err);
	if (!p)
		return;
	q = query(POL_OP_LISTEN, NULL, 0);
	q.exe = "/bin/nc";
	q.comm = "nc";
	q.local = addr("0.0.0.0", 8000);
	ok(!strcmp(decides(p, &q, POL_ALLOW), "web"), "port range: low end");
	q.local.port = htons(8999);
	ok(!strcmp(decides(p, &q, POL_ALLOW), "web"), "port range: high end");
	q.local.port = htons(443);
	ok(!strcmp(decides(p, &q, POL_ALLOW), "web"), "port list: single port");
	q.local.port = htons(9000);
	ok(!strcmp(decides(p, &q, POL_ALLOW), "rest"), "port range: past the high end");
	q.local.port = htons(7999);
	ok(!strcmp(decides(p, &q, POL_ALLOW), "rest"), "port range: below the low end");

	q = query(POL_OP_CONNECT, "192.0.2.1", 25);
	q.exe = "/bin/nc";
	q.comm = "nc";
	ok(!strcmp(decides(p, &q, POL_DENY), "ports"), "rport list: a range");
	q.remote.port = htons(65535);
	ok(!strcmp(decides(p, &q, POL_DENY), "ports"), "rport list: 65535");
	q.remote.port = htons(24);
	ok(!strcmp(decides(p, &q, POL_ALLOW), "rest"), "rport list: not in it");

	q.exe = "/usr/bin/curl";
	ok(!strcmp(decides(p, &q, POL_ALLOW), "rest"), "exe= matches but comm= does not: no match");
	q.comm = "curl";
	ok(!strcmp(decides(p, &q, POL_DENY), "curl"), "exe= and comm= globs both match");
	q.exe = "/usr/local/bin/curl";
	ok(!strcmp(decides(p, &q, POL_DENY), "curl"), "exe glob: '*' matches across '/' (no FNM_PATHNAME)");
	q.exe = "/usr/bin/curl2";
	ok(!strcmp(decides(p, &q, POL_ALLOW), "rest"), "exe glob: the whole path must match");
	q.exe = "/opt/venv/bin/python3.12";
	ok(!strcmp(decides(p, &q, POL_DENY), "py"), "exe glob: *python3*");

	q.exe = "/bin/nc";
	q.comm = "nc";
	q.uid = 2000;
	ok(!strcmp(decides(p, &q, POL_DENY), "users"), "uid range: low end");
	q.uid = 2999;
	ok(!strcmp(decides(p, &q, POL_DENY), "users"), "uid range: high end");
	q.uid = 3000;
	ok(!strcmp(decides(p, &q, POL_ALLOW), "rest"), "uid range: past it");
	q.uid = 0;
	ok(!strcmp(decides(p, &q, POL_DENY), "root"), "uid=0");
	q.uid = 1000;
	q.pid = 4242;
	ok(!strcmp(decides(p, &q, POL_DENY), "pid"), "pid=");
	q.pid = 4243;
	ok(!strcmp(decides(p, &q, POL_ALLOW), "rest"), "another pid");
	q = query(POL_OP_CONNECT, "2001:db8::1", 24);
	q.exe = "/bin/nc";
	ok(!strcmp(decides(p, &q, POL_DENY), "v6tcp"), "family= and proto=");
	q = query(POL_OP_SEND, "192.0.2.1", 24);
	q.exe = "/bin/nc";
	ok(!strcmp(decides(p, &q, POL_DENY), "udp"), "proto=udp op=send");
	q.op = POL_OP_CONNECT;
	ok(!strcmp(decides(p, &q, POL_ALLOW), "rest"), "op= limits the rule to its ops");
	q.exe = "/opt/a#b";
	ok(!strcmp(decides(p, &q, POL_DENY), "hash"), "'#' inside a word is not a comment");
	policy_free(p);
}

/*
 * The CPU time of one evaluation against p, in ns: the best of 5 rounds of 20,000, over addresses that fall among
 * and between the networks of list_networks(). Only for comparing two policies measured alike.
 */
static double eval_ns(struct policy *p)
{
	struct pol_query q = query(POL_OP_CONNECT, "50.0.7.1", 80);
	struct timespec t0, t1;
	double best = 0;

	for (int round = 0; round < 5; round++) {
		int n;

		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
		for (n = 0; n < 20000; n++) {
			q.remote.addr[1] = (uint8_t)n;
			q.remote.addr[0] = (uint8_t)(11 + (n >> 8) % 40);
			eval(p, &q);
		}
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
		double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / n;
		if (!round || ns < best)
			best = ns;
	}
	return best;
}

/* Writes `name`, a list of count /25 networks in a scrambled order (count at most 10,000). */
static void list_networks(const char *name, unsigned count)
{
	char *text = malloc(count * 24);
	size_t len = 0;

	if (!text)
		abort();
	for (unsigned i = 0; i < count; i++) {
		unsigned k = (i * 7919) % count;

		len += (size_t)sprintf(text + len, "%u.%u.%u.0/25\n", 11 + k / 256, k % 256, 7);
	}
	write_file(name, text, len);
	free(text);
}

static void test_lists(void)
{
	struct policy *p;
	struct pol_query q;
	char sub[PATH_MAX];
	bool all = true;

	/* Relative list paths are relative to the rules file's directory, not to the working directory. */
	if (snprintf(sub, sizeof(sub), "%s/sub", dir) >= (int)sizeof(sub) || mkdir(sub, 0700))
		perror(sub);
	write_str("sub/nets.txt", "# nested and overlapping on purpose\n10.0.0.0/8\n10.1.0.0/16\n10.1.2.3\n"
		  "172.16.0.0/12 # comment after\n2001:db8::/48\n::ffff:100.64.0.0/106\n");
	write_str("sub/empty.txt", "# nothing\n\n");
	write_str("sub/p.rules", "list nets nets.txt\nlist empty ./empty.txt\n"
		  "deny name=e remote=@empty\ndeny name=n remote=192.0.2.1,@nets lport=1-65535\n");
	p = policy_load(path_of("sub/p.rules"), NOW, err, sizeof(err));
	ok(p != NULL, "a relative list path is found beside the rules file (%s)", err);
	if (!p)
		return;
	q = query(POL_OP_CONNECT, "10.200.0.1", 80);
	q.local = addr("10.0.0.2", 40000);
	ok(!strcmp(decides(p, &q, POL_DENY), "n"), "list: an address in the outer of nested CIDRs");
	q.remote = addr("10.1.2.3", 80);
	ok(!strcmp(decides(p, &q, POL_DENY), "n"), "list: an address in all three");
	q.remote = addr("172.31.255.255", 80);
	ok(!strcmp(decides(p, &q, POL_DENY), "n"), "list: the last address of a /12");
	q.remote = addr("172.32.0.0", 80);
	ok(!strcmp(decides(p, &q, POL_ALLOW), "default"), "list: just past it");
	q.remote = addr("2001:db8:0:ffff::1", 80);
	ok(!strcmp(decides(p, &q, POL_DENY), "n"), "list: IPv6");
	q.remote = addr("100.127.0.1", 80);
	ok(!strcmp(decides(p, &q, POL_DENY), "n"), "list: a mapped CIDR in a list matches IPv4");
	q.remote = addr("192.0.2.1", 80);
	ok(!strcmp(decides(p, &q, POL_DENY), "n"), "a rule's own CIDRs and its lists together");
	ok(hits(p, 0) == 0, "an empty list matches nothing");
	policy_free(p);

	/* 10,000 networks, in a scrambled order: every one is found, the gaps between them are not, and an
	 * evaluation costs about what one against 10 networks does (bisection, not a scan). */
	list_networks("big.txt", 10000);
	p = load_text("list big big.txt\ndeny name=big op=connect remote=@big\n");
	ok(p != NULL, "a list of 10,000 networks loads (%s)", err);
	if (!p)
		return;
	for (unsigned k = 0; k < 10000; k++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "%u.%u.7.%u", 11 + k / 256, k % 256, k % 128);
		q = query(POL_OP_CONNECT, ip, 80);
		all &= eval(p, &q).action == POL_DENY;
		snprintf(ip, sizeof(ip), "%u.%u.7.%u", 11 + k / 256, k % 256, 128 + k % 128);
		q = query(POL_OP_CONNECT, ip, 80);
		all &= eval(p, &q).action == POL_ALLOW;
	}
	ok(all, "every one of 10,000 networks matches, and no address beside them");
	/* A scan would make 10,000 networks cost about 1,000 times 10; bisection, 14 steps against 4, a few
	 * times (more with cache misses). Both are measured here, on the same machine at the same moment (and
	 * in the same build, sanitized or not), so only the ratio counts. */
	list_networks("small.txt", 10);
	struct policy *small = load_text("list small small.txt\ndeny name=small op=connect remote=@small\n");
	ok(small != NULL, "a list of 10 networks loads (%s)", err);
	if (small) {
		double big_ns = eval_ns(p), small_ns = eval_ns(small);
		ok(big_ns < 40 * small_ns,
		   "an evaluation against 10,000 networks costs %.1f times one against 10 (%.0f ns, %.0f ns): under 40",
		   big_ns / small_ns, big_ns, small_ns);
	}
	policy_free(small);
	policy_free(p);
}

static void test_expiry(void)
{
	struct policy *p = load_text("deny name=short op=connect for=10m\n"
				     "deny name=long op=connect for=1d\n"
				     "allow name=keep\n");
	struct pol_rule_info ri;
	struct pol_query q = query(POL_OP_CONNECT, "192.0.2.1", 80);

	ok(p && !policy_rule_info(p, 0, &ri) && ri.expires_ms == NOW + 600000, "for=10m: expires 10 min after load");
	if (!p)
		return;
	q.now_ms = NOW + 599999;
	ok(!strcmp(decides(p, &q, POL_DENY), "short"), "a rule matches until its time is up");
	q.now_ms = NOW + 600000;
	ok(!strcmp(decides(p, &q, POL_DENY), "long"), "an expired rule never matches, even before policy_expire");
	ok(hits(p, 0) == 1, "an expired rule counts no hits");
	ok(policy_expire(p, NOW + 600000) == 1 && policy_nrules(p) == 2 && !policy_rule_info(p, 0, &ri) &&
		   !strcmp(ri.name, "long"),
	   "policy_expire drops the expired rule");
	ok(policy_expire(p, NOW + 600001) == 0, "and nothing more until the next one is due");
	ok(policy_add_rule(p, "log name=short", NOW, NULL, 0, err, sizeof(err)) == 0,
	   "an expired rule's name is free again");
	ok(policy_expire(p, NOW + 86400000) == 1 && policy_nrules(p) == 2, "for=1d goes after a day");
	policy_free(p);
}

static void test_runtime(void)
{
	struct policy *rt = policy_new(), *file = load_text("mode monitor\nthrottle name=ft rate=5K\n"
							     "log name=fl\ndeny name=fd rport=25\n");
	char name[POL_NAME_MAX];
	struct pol_query q = query(POL_OP_CONNECT, "198.51.100.7", 443);
	struct pol_verdict v = { 0 };
	struct pol_rule_info ri;
	int ret;

	ok(rt && file, "run-time and file policies");
	if (!rt || !file)
		return;
	ret = policy_add_rule(rt, "throttle pid=42 rate=1M per=program", NOW, name, sizeof(name), err,
			      sizeof(err));
	ok(ret == 0 && !strcmp(name, "rt-1"), "a run-time rule without a name is rt-1 (%d %s)", ret, err);
	ret = policy_add_rule(rt, "deny remote=198.51.100.0/24 for=10m", NOW, name, sizeof(name), err,
			      sizeof(err));
	ok(ret == 0 && !strcmp(name, "rt-2"), "the next is rt-2");
	ok(!policy_rule_info(rt, 1, &ri) && ri.line == 0 && ri.expires_ms == NOW + 600000 &&
		   !strcmp(ri.text, "deny remote=198.51.100.0/24 for=10m"),
	   "run-time rules: line 0, expiry from now_ms, text kept");
	ret = policy_add_rule(rt, "allow name=rt-3 pid=1", NOW, name, sizeof(name), err, sizeof(err));
	ok(ret == 0 && !strcmp(name, "rt-3"), "a hand-given name");
	ret = policy_add_rule(rt, "allow pid=2", NOW, name, sizeof(name), err, sizeof(err));
	ok(ret == 0 && !strcmp(name, "rt-4"), "made-up names skip taken ones (%s)", name);
	ret = policy_add_rule(rt, "deny name=rt-1", NOW, name, sizeof(name), err, sizeof(err));
	ok(ret == -EEXIST && !strncmp(err, "line 1: ", 8) && strstr(err, "already used") && policy_nrules(rt) == 4,
	   "a name clash: -EEXIST, nothing added (%s)", err);
	ret = policy_add_rule(rt, "deny remote=@badnets", NOW, name, sizeof(name), err, sizeof(err));
	ok(ret == -EINVAL && !strncmp(err, "line 1: ", 8) && strstr(err, "not allowed"), "no lists at run time (%s)",
	   err);
	ret = policy_add_rule(rt, "deny rport=99999", NOW, name, sizeof(name), err, sizeof(err));
	ok(ret == -EINVAL && !strcmp(err, "line 1: bad port in rport=: '99999' (a port 0-65535 or LO-HI)"),
	   "a bad run-time rule: \"line 1: ...\" (%s)", err);
	ok(policy_add_rule(rt, "default deny", NOW, name, sizeof(name), err, sizeof(err)) == -EINVAL &&
		   policy_add_rule(rt, "   # nothing", NOW, name, sizeof(name), err, sizeof(err)) == -EINVAL &&
		   policy_add_rule(rt, "deny\nallow", NOW, name, sizeof(name), err, sizeof(err)) == -EINVAL &&
		   policy_nrules(rt) == 4,
	   "no default/mode/list, no empty rule, one line only at run time");

	/* The chain mwinsd runs: the run-time policy first, then the file's. */
	q.pid = 42;
	if (!policy_eval_rules(rt, &q, &v))
		policy_eval(file, &q, &v);
	ok(v.action == POL_DENY && !strcmp(v.rule, "rt-2") && !v.monitor && v.rate == 1048576 &&
		   v.per == POL_PER_PROGRAM && !strcmp(v.throttle_rule, "rt-1") && !v.log,
	   "chain: a run-time rule decides, in the run-time policy's (enforce) mode");
	memset(&v, 0, sizeof(v));
	q.remote = addr("203.0.113.9", 25);
	if (!policy_eval_rules(rt, &q, &v))
		policy_eval(file, &q, &v);
	ok(v.action == POL_DENY && !strcmp(v.rule, "fd") && v.monitor && v.rate == 1048576 &&
		   !strcmp(v.throttle_rule, "rt-1") && v.log && !strcmp(v.log_rule, "fl"),
	   "chain: the run-time throttle mark survives, the file decides in monitor mode");

	ok(policy_remove_rule(rt, "rt-2") == 0 && policy_nrules(rt) == 3, "remove a rule by name");
	ok(policy_remove_rule(rt, "rt-2") == -ENOENT, "removing it again: -ENOENT");
	ok(policy_remove_rule(rt, "default") == -ENOENT, "no rule is called default");
	memset(&v, 0, sizeof(v));
	q.remote = addr("198.51.100.7", 443);
	ok(!policy_eval_rules(rt, &q, &v) && v.rate == 1048576, "the removed rule no longer decides");
	ok(policy_add_rule(rt, "log", NOW, name, sizeof(name), err, sizeof(err)) == 0 && !strcmp(name, "rt-5"),
	   "N keeps counting after a removal (%s)", name);
	ok(policy_add_rule(rt, "allow name=rt-2", NOW, name, sizeof(name), err, sizeof(err)) == 0,
	   "a removed rule's name can be used again");
	policy_free(file);
	policy_free(rt);
}

static void test_limits(void)
{
	struct policy *p = policy_new();
	char name[POL_NAME_MAX];
	int ret = 0, i;
	char *text, *t;

	for (i = 0; i < 65536 && !ret; i++)
		ret = policy_add_rule(p, "deny pid=7", NOW, name, sizeof(name), err, sizeof(err));
	ok(!ret && policy_nrules(p) == 65536 && !strcmp(name, "rt-65536"), "65,536 run-time rules fit");
	ret = policy_add_rule(p, "deny pid=7", NOW, name, sizeof(name), err, sizeof(err));
	ok(ret == -ENOSPC && strstr(err, "too many rules"), "the 65,537th does not: -ENOSPC (%s)", err);
	ok(policy_remove_rule(p, "rt-30000") == 0 && policy_remove_rule(p, "rt-65536") == 0 &&
		   policy_add_rule(p, "deny pid=7", NOW, name, sizeof(name), err, sizeof(err)) == 0,
	   "after removals there is room again");
	policy_free(p);

	t = text = malloc(65537 * 6);
	for (i = 0; i < 65537; i++)
		t += sprintf(t, "%s\n", i % 2 ? "log" : "allow");
	write_file("many.rules", text, (size_t)(t - text));
	free(text);
	ok(failed_at(policy_load(path_of("many.rules"), NOW, err, sizeof(err)), path_of("many.rules"), 65537,
		     "too many rules"),
	   "a file of 65,537 rules: an error at the last line");

	/* 1,000,000 list entries over all lists: two lists of 500,000 fit, one more entry does not. */
	t = text = malloc(500000 * 20);
	for (i = 0; i < 500000; i++)
		t += sprintf(t, "%d.%d.%d.0/24\n", 1 + i / 65536, (i / 256) % 256, i % 256);
	write_file("half.txt", text, (size_t)(t - text));
	free(text);
	write_str("one.txt", "192.0.2.1\n");
	p = load_text("list a half.txt\nlist b half.txt\ndeny remote=@a,@b\n");
	ok(p != NULL, "1,000,000 list entries load (%s)", err);
	policy_free(p);
	ok(failed_at(load_text("list a half.txt\nlist b half.txt\nlist c one.txt\n"), path_of("one.txt"), 1,
		     "too many list entries"),
	   "the 1,000,001st list entry is an error in its list file");
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");

	if (snprintf(dir, sizeof(dir), "%s/test_policy.XXXXXX", tmp && tmp[0] == '/' ? tmp : "/tmp") >=
		    (int)sizeof(dir) || !mkdtemp(dir)) {
		perror(dir);
		return 2;
	}
	test_numbers();
	test_load();
	test_errors();
	test_first_match();
	test_addresses();
	test_keys();
	test_lists();
	test_expiry();
	test_runtime();
	test_limits();
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}
