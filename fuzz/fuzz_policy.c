/*
 * fuzz_policy.c: the policy rules file parser (src/ins/policy.c, policy_load) and what a loaded policy
 * then does.
 *
 * Input: the rules file, then optionally a NUL byte and list file "a", then a NUL byte and list file "b"
 * (a NUL byte is an error inside a rules or list file anyway, so it is free as a separator).  The rules file
 * is FUZZ_DIR/rules; "list NAME a" (or FUZZ_DIR/a) reaches the first list file.
 *
 * The harness is linked with -Wl,--wrap=fopen: while policy_load runs, fopen opens these three files from
 * the input (fmemopen, no file system) and fails with ENOENT for any other path, so that a rules file that
 * names /dev/stdin or a FIFO can't hang the fuzzer and no real file is read.  Everything else is policy.c as
 * mwinsd runs it.
 *
 * On a successful load: policy_eval and policy_eval_rules with a set of fixed queries (IPv4, IPv6,
 * IPv4-mapped; every op), policy_rule_info over every rule, a run-time rule added and removed, and
 * policy_expire.  Checked: the error text is set exactly when the load fails, verdicts are verdicts, names
 * are NUL-terminated, a rate is within the grammar's limit, and ASan's leak check at exit of every run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "policy.h"

#define FUZZ_DIR "/fuzz/"

static struct {
	const char *path;
	const uint8_t *data;
	size_t len;
} files[3] = { { FUZZ_DIR "rules", NULL, 0 }, { FUZZ_DIR "a", NULL, 0 }, { FUZZ_DIR "b", NULL, 0 } };
static bool fuzz_files_on;

FILE *__real_fopen(const char *path, const char *mode);
FILE *__wrap_fopen(const char *path, const char *mode);
FILE *__wrap_fopen(const char *path, const char *mode)
{
	if (!fuzz_files_on)
		return __real_fopen(path, mode); /* libFuzzer's own files */
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (strcmp(path, files[i].path))
			continue;
		if (!files[i].len)
			return __real_fopen("/dev/null", "re");
		return fmemopen((void *)files[i].data, files[i].len, "r");
	}
	errno = ENOENT;
	return NULL;
}

static void addr4(struct mw_addr *a, const char *ip, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->family = AF_INET;
	a->port = htons(port);
	FUZZ_CHECK(inet_pton(AF_INET, ip, a->addr) == 1);
}

static void addr6(struct mw_addr *a, const char *ip, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->family = AF_INET6;
	a->port = htons(port);
	FUZZ_CHECK(inet_pton(AF_INET6, ip, a->addr) == 1);
}

static void verdict_ok(const struct pol_verdict *v, bool decided)
{
	if (decided)
		FUZZ_CHECK(v->action == POL_ALLOW || v->action == POL_DENY || v->action == POL_KILL);
	FUZZ_CHECK(memchr(v->rule, 0, sizeof(v->rule)));
	FUZZ_CHECK(memchr(v->log_rule, 0, sizeof(v->log_rule)));
	FUZZ_CHECK(memchr(v->throttle_rule, 0, sizeof(v->throttle_rule)));
	FUZZ_CHECK(v->rate <= (1ULL << 40));
	FUZZ_CHECK(!v->log || v->log_rule[0]);
	FUZZ_CHECK(!v->rate || v->throttle_rule[0]);
}

static void queries(struct policy *p)
{
	static const struct {
		enum pol_op op;
		int proto;
		int v6;          /* 0: IPv4, 1: IPv6, 2: IPv4-mapped IPv6 */
		const char *remote;
		uint16_t rport, lport;
		const char *exe, *comm;
		uid_t uid;
		pid_t pid;
	} qs[] = {
		{ POL_OP_CONNECT, IPPROTO_TCP, 0, "169.254.169.254", 80, 40000, "/usr/bin/curl", "curl", 1000, 42 },
		{ POL_OP_CONNECT, IPPROTO_TCP, 0, "10.1.2.3", 23, 40001, "/usr/bin/telnet", "telnet", 0, 1 },
		{ POL_OP_SEND, IPPROTO_UDP, 0, "192.0.2.53", 53, 5353, "/usr/sbin/unbound", "unbound", 53, 99 },
		{ POL_OP_LISTEN, IPPROTO_TCP, 0, NULL, 0, 8080, "/usr/sbin/nginx", "nginx", 33, 7 },
		{ POL_OP_ACCEPT, IPPROTO_TCP, 1, "2001:db8::1", 51000, 443, "/opt/x/bin/srv", "srv", 65534, 2147483647 },
		{ POL_OP_CONNECT, IPPROTO_TCP, 2, "::ffff:169.254.1.1", 443, 40002, "", "", 4294967294u, 3 },
		{ POL_OP_SEND, IPPROTO_UDP, 1, "ff02::fb", 5353, 5353, "/usr/bin/avahi", "avahi", 100, 100 },
	};

	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		struct pol_query q = {
			.op = qs[i].op,
			.family = qs[i].v6 ? AF_INET6 : AF_INET,
			.proto = qs[i].proto,
			.exe = qs[i].exe,
			.comm = qs[i].comm,
			.uid = qs[i].uid,
			.pid = qs[i].pid,
			.now_ms = 1000 * (uint64_t)i,
		};
		struct pol_verdict v = { 0 }, w = { 0 };
		bool decided;

		if (qs[i].v6) {
			addr6(&q.local, "::", qs[i].lport);
			if (qs[i].remote)
				addr6(&q.remote, qs[i].remote, qs[i].rport);
		} else {
			addr4(&q.local, "0.0.0.0", qs[i].lport);
			if (qs[i].remote)
				addr4(&q.remote, qs[i].remote, qs[i].rport);
		}
		policy_eval(p, &q, &v);
		verdict_ok(&v, true);
		decided = policy_eval_rules(p, &q, &w);
		verdict_ok(&w, decided);
	}
}

static void exercise(struct policy *p)
{
	struct pol_rule_info ri;
	char name[POL_NAME_MAX], err[512];
	size_t n = policy_nrules(p), i;

	queries(p);
	for (i = 0; policy_rule_info(p, i, &ri) == 0; i++) {
		FUZZ_CHECK(ri.name && ri.text && strlen(ri.name) < POL_NAME_MAX);
		FUZZ_CHECK(ri.action <= POL_THROTTLE);
		(void)pol_action_name(ri.action);
	}
	FUZZ_CHECK(i == n);
	FUZZ_CHECK(policy_default(p) == POL_ALLOW || policy_default(p) == POL_DENY);
	if (policy_add_rule(p, "deny op=connect remote=203.0.113.0/24 for=1m", 0, name, sizeof(name), err,
			    sizeof(err)) == 0) {
		FUZZ_CHECK(policy_nrules(p) == n + 1);
		FUZZ_CHECK(policy_remove_rule(p, name) == 0);
		FUZZ_CHECK(policy_nrules(p) == n);
	}
	if (n && policy_rule_info(p, 0, &ri) == 0) {
		char first[POL_NAME_MAX];

		snprintf(first, sizeof(first), "%s", ri.name);
		FUZZ_CHECK(policy_remove_rule(p, first) == 0);
		FUZZ_CHECK(policy_remove_rule(p, first) == -ENOENT);
		n--;
	}
	queries(p);
	/* Ten years on, every rule with for= has gone. */
	FUZZ_CHECK(policy_expire(p, 3650ULL * 24 * 3600 * 1000 * 2) >= 0);
	queries(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *cur = data, *end = data + size;
	struct policy *p;
	char err[512];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		const uint8_t *nul = cur < end ? memchr(cur, 0, (size_t)(end - cur)) : NULL;
		size_t len = nul ? (size_t)(nul - cur) : (size_t)(end - cur);

		files[i].data = cur;
		files[i].len = len;
		cur += len + (nul ? 1 : 0);
	}
	memset(err, 0x5a, sizeof(err));
	fuzz_files_on = true;
	p = policy_load(files[0].path, 0, err, sizeof(err));
	fuzz_files_on = false;
	FUZZ_CHECK(memchr(err, 0, sizeof(err)));
	if (!p) {
		FUZZ_CHECK(err[0]); /* a refusal always says why */
		return 0;
	}
	FUZZ_CHECK(!err[0]);
	exercise(p);
	policy_free(p);
	return 0;
}
