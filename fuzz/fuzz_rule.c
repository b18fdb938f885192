/*
 * fuzz_rule.c: a run-time rule (policy_add_rule, src/ins/policy.c): what mwctl block, quarantine and
 * throttle --pid turn into a rule line, parsed by the same statement parser as the rules file but with the
 * run-time restrictions (one line, no default/mode/list, "rt-N" names).
 *
 * Input: the line, bytes as they come (a NUL ends it early, as it would end a C string).  Each run starts
 * from a fresh policy holding two rules, so that name clashes ("rt-1", "base") are reachable.
 *
 * Checked: the error text is set exactly when the rule is refused, a refused rule leaves the policy as it
 * was, an added one can be evaluated, listed, expired and removed by the name it was given.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "policy.h"

static void eval(struct policy *p, enum pol_op op, int family, const char *ip, uint16_t port)
{
	struct pol_query q = {
		.op = op,
		.family = family,
		.proto = op == POL_OP_SEND ? IPPROTO_UDP : IPPROTO_TCP,
		.exe = "/usr/bin/curl",
		.comm = "curl",
		.uid = 1000,
		.pid = 1234,
		.now_ms = 5000,
	};
	struct pol_verdict v = { 0 };

	q.remote.family = (uint16_t)family;
	q.remote.port = htons(port);
	FUZZ_CHECK(inet_pton(family, ip, q.remote.addr) == 1);
	q.local.family = (uint16_t)family;
	policy_eval(p, &q, &v);
	FUZZ_CHECK(v.action == POL_ALLOW || v.action == POL_DENY || v.action == POL_KILL);
	FUZZ_CHECK(memchr(v.rule, 0, sizeof(v.rule)) && v.rate <= (1ULL << 40));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1), name[POL_NAME_MAX], err[512];
	struct policy *p = policy_new();
	struct pol_rule_info ri;
	int ret;

	FUZZ_CHECK(line && p);
	memcpy(line, data, size);
	line[size] = 0;
	FUZZ_CHECK(policy_add_rule(p, "deny name=base remote=10.0.0.0/8", 0, NULL, 0, NULL, 0) == 0);
	FUZZ_CHECK(policy_add_rule(p, "log op=send", 0, name, sizeof(name), NULL, 0) == 0 && !strcmp(name, "rt-1"));

	memset(err, 0x5a, sizeof(err));
	memset(name, 0x5a, sizeof(name));
	ret = policy_add_rule(p, line, 1000, name, sizeof(name), err, sizeof(err));
	FUZZ_CHECK(memchr(err, 0, sizeof(err)));
	if (ret) {
		FUZZ_CHECK(ret < 0 && err[0]);
		FUZZ_CHECK(!strncmp(err, "line 1: ", 8));
		FUZZ_CHECK(policy_nrules(p) == 2);
	} else {
		FUZZ_CHECK(!err[0] && memchr(name, 0, sizeof(name)) && name[0]);
		FUZZ_CHECK(policy_nrules(p) == 3);
		FUZZ_CHECK(policy_rule_info(p, 2, &ri) == 0 && !strcmp(ri.name, name) && ri.line == 0);
	}
	eval(p, POL_OP_CONNECT, AF_INET, "10.1.2.3", 443);
	eval(p, POL_OP_SEND, AF_INET6, "2001:db8::53", 53);
	eval(p, POL_OP_LISTEN, AF_INET6, "::ffff:192.0.2.1", 8080);
	FUZZ_CHECK(policy_expire(p, 3650ULL * 24 * 3600 * 1000 * 2) >= 0);
	if (!ret && policy_nrules(p) == 3)
		FUZZ_CHECK(policy_remove_rule(p, name) == 0);
	eval(p, POL_OP_CONNECT, AF_INET, "10.1.2.3", 443);
	policy_free(p);
	free(line);
	return 0;
}
