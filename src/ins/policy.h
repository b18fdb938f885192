/*
 * policy.h: the rules that decide what a protected program may do (docs/telemetry.md, "Policy").
 *
 * A pure module: it parses rules files and evaluates queries; it never touches a socket, and it knows
 * nothing of mwinsd's objects.  mwinsd keeps two policies: the file's, replaced as a whole on reload, and the
 * run-time one (mwctl block, quarantine, throttle --pid), which survives reloads and is evaluated first.
 *
 * Functions return 0 or a negative errno unless they say otherwise.  Error texts are written into the
 * caller's buffer as "FILE:LINE: what is wrong" (or "line N: ..." for a single rule added at run time;
 * N is then always 1).  The grammar's fine print and the limits are at the top of policy.c.
 */
#ifndef MW_POLICY_H
#define MW_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mwcomms/proto.h"

enum pol_op {
	POL_OP_CONNECT = 1, /* outbound TCP connect */
	POL_OP_ACCEPT = 2,  /* an inbound TCP connection, before the program sees it */
	POL_OP_LISTEN = 4,  /* bind and listen */
	POL_OP_SEND = 8,    /* a UDP datagram to a new destination */
};

enum pol_action {
	POL_ALLOW,
	POL_DENY,
	POL_KILL,
	POL_LOG,      /* not a verdict: marks the flow, evaluation goes on */
	POL_THROTTLE, /* not a verdict: limits the flow, evaluation goes on */
};

enum pol_per { POL_PER_FLOW, POL_PER_PROGRAM };

/* What is being asked.  Strings may be "" but not NULL. */
struct pol_query {
	enum pol_op op;
	int family;             /* AF_INET, AF_INET6 */
	int proto;              /* IPPROTO_TCP, IPPROTO_UDP */
	struct mw_addr local;   /* family 0 when not known yet */
	struct mw_addr remote;  /* family 0 for listen */
	const char *exe, *comm;
	uid_t uid;
	pid_t pid;
	uint64_t now_ms;        /* CLOCK_REALTIME milliseconds, for rules that expire */
};

#define POL_NAME_MAX 48

struct pol_verdict {
	enum pol_action action;          /* POL_ALLOW, POL_DENY or POL_KILL: what enforce mode does */
	char rule[POL_NAME_MAX];         /* the deciding rule's name, "default" when none decided */
	bool monitor;                    /* monitor mode: the caller logs action but allows */
	bool log;                        /* a log rule matched on the way */
	char log_rule[POL_NAME_MAX];
	uint64_t rate;                   /* bytes per second, 0: no throttle rule matched */
	enum pol_per per;
	char throttle_rule[POL_NAME_MAX];
};

struct policy;

/* An empty policy: default allow, enforce, no rules. NULL on ENOMEM. */
struct policy *policy_new(void);
/* Parse a rules file.  NULL with err filled ("FILE:LINE: ...") if any line is wrong: nothing is half-loaded. */
struct policy *policy_load(const char *path, uint64_t now_ms, char *err, size_t errlen);
void policy_free(struct policy *p);

/* Evaluate q: rules in order, the first deciding rule wins, log and throttle rules mark and go on; no
 * deciding rule: the default.  Counts a hit on every rule that matched.  Expired rules never match.
 * v must start zeroed (struct pol_verdict v = { 0 }): neither function clears it, so that marks made by the
 * run-time policy survive the file's evaluation in a chain, and the first throttle over both is the one.
 * monitor is the mode of the policy whose rule (or default) decided. */
void policy_eval(struct policy *p, const struct pol_query *q, struct pol_verdict *v);
/* As policy_eval, but reports whether a deciding rule matched (false: v->action is not set, only the
 * marks), so that a caller can chain the run-time policy before the file's. */
bool policy_eval_rules(struct policy *p, const struct pol_query *q, struct pol_verdict *v);

/* Add one rule at the end, in the file syntax ("deny name=x remote=10.0.0.0/8 for=10m").  Lists (@NAME)
 * are not allowed here.  With no name= one is made up ("rt-N").  The name is copied to name_out. */
int policy_add_rule(struct policy *p, const char *line, uint64_t now_ms, char *name_out, size_t name_len,
		    char *err, size_t errlen);
/* Remove the rule with this name: 0, or -ENOENT. */
int policy_remove_rule(struct policy *p, const char *name);
/* Drop rules whose time is up.  Returns how many went. */
int policy_expire(struct policy *p, uint64_t now_ms);

size_t policy_nrules(const struct policy *p);
enum pol_action policy_default(const struct policy *p);
bool policy_monitor(const struct policy *p);

/* Rule i (0-based) as mwctl shows it: name, line number in the file (0 for run-time rules), action, the
 * line's text as written, hits, and the expiry time in ms (0: never).  -ENOENT past the end. */
struct pol_rule_info {
	const char *name;
	unsigned line;
	enum pol_action action;
	const char *text;
	uint64_t hits;
	uint64_t expires_ms;
};
int policy_rule_info(const struct policy *p, size_t i, struct pol_rule_info *out);

const char *pol_action_name(enum pol_action a);
/* "1M" -> 1048576; plain digits are bytes.  -EINVAL for anything else, or 0. */
int pol_parse_rate(const char *s, uint64_t *out);
/* "30s", "10m", "2h", "1d", or plain seconds -> milliseconds.  -EINVAL otherwise. */
int pol_parse_duration(const char *s, uint64_t *out_ms);

#endif /* MW_POLICY_H */
