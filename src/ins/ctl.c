/*
 * ctl.c: the control API (docs/telemetry.md, "Control API"): mwctl and detection engines ask for flows and
 * act on them here.  One JSON object per line in, one per line out.
 *
 * The socket is mode 0600, and conn.c lets in only operators (conn_peer_refused): the protected programs
 * (any uid) must never reach it.  Requests are still parsed as hostile input: every field is type-checked, and a
 * request that is not what this file expects gets an error, not a guess.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ins.h"
#include "mwlib.h"

#define CTL_LINE_MAX (64 * 1024)
#define CTL_OUT_MAX (64u << 20) /* a flows answer for 100,000 flows fits */

static struct list ctl_conns = { &ctl_conns, &ctl_conns };
static unsigned block_seq;

static void reply(struct ins_conn *c, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
	size_t len;

	json_decref(o);
	if (!s) {
		conn_close(c);
		return;
	}
	len = strlen(s);
	s[len++] = '\n';
	if (conn_write(c, s, len) < 0)
		conn_close(c); /* an answer cut short would be worse than none */
	free(s);
}

static json_t *ok(void)
{
	json_t *o = json_object();

	json_object_set_new(o, "ok", json_true());
	return o;
}

static json_t *fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *fail(const char *fmt, ...)
{
	char buf[600];
	va_list ap;
	json_t *o = json_object(), *s;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	s = json_string(buf);
	if (!s) {
		/* The text quotes the request (or was cut inside a character): a JSON string must be UTF-8. */
		for (char *p = buf; *p; p++) {
			if ((unsigned char)*p >= 0x80)
				*p = '?';
		}
		s = json_string(buf);
	}
	json_object_set_new(o, "ok", json_false());
	json_object_set_new(o, "error", s);
	return o;
}

/* Every request that acts is an event too. */
static void action_event(const json_t *req, const json_t *ans)
{
	json_t *o;

	ins.n.actions++;
	if (!events_wanted())
		return;
	o = json_deep_copy(req);
	json_object_set_new(o, "result", json_deep_copy(ans));
	events_emit("action", o);
}

static json_t *cmd_flows(void)
{
	json_t *o = ok(), *a = json_array();
	uint64_t now = ins_now_ms();

	for (struct list *l = ins.flows.next; l != &ins.flows; l = l->next)
		json_array_append_new(a, flow_json(container_of(l, struct ins_flow, link), now));
	json_object_set_new(o, "flows", a);
	return o;
}

static const char *str_arg(const json_t *req, const char *key)
{
	const json_t *v = json_object_get(req, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool pid_arg(const json_t *req, pid_t *out)
{
	const json_t *v = json_object_get(req, "pid");

	if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > 4194304)
		return false;
	*out = (pid_t)json_integer_value(v);
	return true;
}

static json_t *cmd_kill(const json_t *req)
{
	const char *uid = str_arg(req, "flow");
	struct ins_flow *f = uid ? flow_find(uid) : NULL;

	if (!uid)
		return fail("kill needs \"flow\": a flow uid");
	if (!f)
		return fail("no flow %s", uid);
	if (f->killed)
		return fail("flow %s is already killed", uid);
	sock_kill(f, "mwctl");
	return ok();
}

/* Only these characters reach a rule line: the CIDR, port and duration go through the rule parser, which
 * must never see a second key smuggled in with a space. */
static bool plain(const char *s, const char *allowed)
{
	return s && *s && strspn(s, allowed) == strlen(s) && strlen(s) < 128;
}

static json_t *add_rule(const char *line)
{
	char name[POL_NAME_MAX], err[512];
	json_t *o;

	if (policy_add_rule(ins.pol_rt, line, ins_now_ms(), name, sizeof(name), err, sizeof(err)) < 0)
		return fail("%s", err);
	o = ok();
	json_object_set_new(o, "rule", json_string(name));
	return o;
}

static json_t *cmd_block(const json_t *req)
{
	const char *cidr = str_arg(req, "cidr"), *port = str_arg(req, "port"), *dur = str_arg(req, "for");
	char line[512];
	int n;

	if (!plain(cidr, "0123456789abcdefABCDEF.:/"))
		return fail("block needs \"cidr\": an address or CIDR");
	if (port && !plain(port, "0123456789-"))
		return fail("bad port \"%s\": a port or LO-HI", port);
	if (dur && !plain(dur, "0123456789smhd"))
		return fail("bad duration \"%s\": like 30s, 10m, 2h, 1d", dur);
	n = snprintf(line, sizeof(line), "deny name=block-%u op=connect,send remote=%s%s%s%s%s", ++block_seq, cidr,
		     port ? " rport=" : "", port ? port : "", dur ? " for=" : "", dur ? dur : "");
	if (n >= (int)sizeof(line))
		return fail("block: arguments too long");
	return add_rule(line);
}

static json_t *cmd_unblock(const json_t *req)
{
	const char *name = str_arg(req, "rule");

	if (!name)
		return fail("unblock needs \"rule\": a rule name");
	if (policy_remove_rule(ins.pol_rt, name) < 0)
		return fail("no run-time rule %s", name);
	return ok();
}

static json_t *cmd_quarantine(const json_t *req)
{
	char line[128];
	pid_t pid;
	json_t *o;
	int killed = 0;

	if (!pid_arg(req, &pid))
		return fail("quarantine needs \"pid\": a process id");
	snprintf(line, sizeof(line), "deny name=quarantine-%d pid=%d", (int)pid, (int)pid);
	o = add_rule(line);
	if (!json_is_true(json_object_get(o, "ok")))
		return o;
	/* Then its current flows: new ones can no longer start, so this list only shrinks. */
	for (struct list *l = ins.flows.next, *n; l != &ins.flows; l = n) {
		struct ins_flow *f = container_of(l, struct ins_flow, link);

		n = l->next;
		if (f->proc && f->proc->pid == pid && !f->killed) {
			/* sock_kill may end (free) f, and with UDP the next flow of its socket too: restart. */
			sock_kill(f, "quarantine");
			killed++;
			n = ins.flows.next;
		}
	}
	json_object_set_new(o, "killed", json_integer(killed));
	return o;
}

static json_t *cmd_throttle(const json_t *req)
{
	const char *rate_s = str_arg(req, "rate"), *uid = str_arg(req, "flow");
	uint64_t rate;
	pid_t pid;

	if (!rate_s || pol_parse_rate(rate_s, &rate) < 0)
		return fail("throttle needs \"rate\": bytes per second, like 512K or 1M");
	if (uid) {
		struct ins_flow *f = flow_find(uid);

		if (!f)
			return fail("no flow %s", uid);
		if (f->proto != IPPROTO_TCP)
			return fail("flow %s is UDP: only TCP flows can be throttled", uid);
		f->bucket.rate = rate;
		f->bucket.last_ms = 0;
		return ok();
	}
	if (pid_arg(req, &pid)) {
		char line[128];
		json_t *o;
		int n = 0;

		snprintf(line, sizeof(line), "throttle name=throttle-%d pid=%d rate=%s per=program", (int)pid, (int)pid,
			 rate_s);
		{
			char name[32];

			snprintf(name, sizeof(name), "throttle-%d", (int)pid);
			policy_remove_rule(ins.pol_rt, name); /* a new rate replaces the old */
		}
		o = add_rule(line);
		if (!json_is_true(json_object_get(o, "ok")))
			return o;
		for (struct list *l = ins.flows.next; l != &ins.flows; l = l->next) {
			struct ins_flow *f = container_of(l, struct ins_flow, link);

			if (f->proc && f->proc->pid == pid && f->proto == IPPROTO_TCP) {
				f->proc->bucket.rate = rate;
				f->proc->bucket.last_ms = 0;
				n++;
			}
		}
		json_object_set_new(o, "flows", json_integer(n));
		return o;
	}
	return fail("throttle needs \"flow\" (a flow uid) or \"pid\"");
}

static json_t *rules_json(const struct policy *p, bool runtime)
{
	json_t *a = json_array();
	struct pol_rule_info ri;

	for (size_t i = 0; p && policy_rule_info(p, i, &ri) == 0; i++) {
		json_t *r = json_object();

		json_object_set_new(r, "name", json_string(ri.name));
		json_object_set_new(r, "line", json_integer(ri.line));
		json_object_set_new(r, "action", json_string(pol_action_name(ri.action)));
		json_object_set_new(r, "text", json_string(ri.text));
		json_object_set_new(r, "hits", json_integer((json_int_t)ri.hits));
		json_object_set_new(r, "expires", ri.expires_ms ? json_real((double)ins_wall_ms(ri.expires_ms) / 1000.0)
							    : json_null());
		json_object_set_new(r, "runtime", json_boolean(runtime));
		json_array_append_new(a, r);
	}
	return a;
}

static json_t *cmd_policy(void)
{
	json_t *o = ok(), *rules = rules_json(ins.pol_rt, true), *file = rules_json(ins.pol_file, false);

	json_array_extend(rules, file); /* copies the references: ours still goes */
	json_decref(file);
	json_object_set_new(o, "file", json_string(ins.cfg.policy));
	json_object_set_new(o, "mode", json_string(ins.pol_file && policy_monitor(ins.pol_file) ? "monitor" : "enforce"));
	json_object_set_new(o, "default", json_string(pol_action_name(ins.pol_file ? policy_default(ins.pol_file)
										   : POL_ALLOW)));
	json_object_set_new(o, "rules", rules);
	return o;
}

static json_t *cmd_reload(void)
{
	char err[512];
	json_t *o;

	if (enforce_reload(err, sizeof(err)) < 0)
		return fail("%s", err);
	o = ok();
	json_object_set_new(o, "rules", json_integer((json_int_t)policy_nrules(ins.pol_file)));
	return o;
}

static json_t *cmd_metrics(void)
{
	size_t len;
	char *text = metrics_text(&len);
	json_t *o;

	if (!text)
		return fail("out of memory");
	o = ok();
	json_object_set_new(o, "text", json_stringn(text, len));
	free(text);
	return o;
}

static int ctl_line(struct ins_conn *c, char *line, size_t len)
{
	json_error_t jerr;
	json_t *req, *ans;
	const char *cmd;
	bool acts = true;

	if (!len)
		return 0;
	req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(req)) {
		json_decref(req);
		reply(c, fail("not a JSON object: %s", jerr.text));
		return 0;
	}
	cmd = str_arg(req, "cmd");
	if (!cmd) {
		ans = fail("no \"cmd\"");
		acts = false;
	} else if (!strcmp(cmd, "flows")) {
		ans = cmd_flows();
		acts = false;
	} else if (!strcmp(cmd, "policy")) {
		ans = cmd_policy();
		acts = false;
	} else if (!strcmp(cmd, "metrics")) {
		ans = cmd_metrics();
		acts = false;
	} else if (!strcmp(cmd, "kill")) {
		ans = cmd_kill(req);
	} else if (!strcmp(cmd, "block")) {
		ans = cmd_block(req);
	} else if (!strcmp(cmd, "unblock")) {
		ans = cmd_unblock(req);
	} else if (!strcmp(cmd, "quarantine")) {
		ans = cmd_quarantine(req);
	} else if (!strcmp(cmd, "throttle")) {
		ans = cmd_throttle(req);
	} else if (!strcmp(cmd, "policy_reload")) {
		ans = cmd_reload();
	} else {
		ans = fail("unknown cmd \"%s\"", cmd);
		acts = false;
	}
	if (acts) {
		ins_log(1, "control: %s: %s", cmd,
			json_is_true(json_object_get(ans, "ok")) ? "done" : str_arg(ans, "error"));
		action_event(req, ans);
	}
	json_decref(req);
	reply(c, ans);
	return 0;
}

static const struct ins_conn_ops ctl_ops = {
	.name = "control",
	.operators_only = true, /* it acts on every flow: a protected program must never reach it */
	.line = ctl_line,
	.max_out = CTL_OUT_MAX,
	.max_line = CTL_LINE_MAX,
};

int ctl_init(void)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/ctl", ins.dir);
	return conn_listen(path, &ctl_ops, &ctl_conns);
}

