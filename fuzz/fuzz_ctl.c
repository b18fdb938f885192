/*
 * fuzz_ctl.c: the control API's request parser (src/ins/ctl.c, ctl_line): JSON in, field checks, rule lines
 * built from request fields and parsed by src/ins/policy.c, JSON out.
 *
 * The cut: ctl.c and policy.c are linked as they are; the rest of mwinsd is replaced by the stubs below.
 * ctl_init registers ctl_line through conn_listen, and the stub keeps the ops, so the harness calls the
 * static ctl_line exactly as conn.c does.  The stubs keep a small world for the requests to act on: two
 * flows (a TCP one, "CTCP1", and a UDP one, "CUDP1", both of pid 1234), a file policy, and a run-time policy
 * made afresh for each input.
 *
 * The connection is root's, from the harness's own pid (mwinsd's network namespace), so that it is let in.
 *
 * Input: the bytes a client sends, cut into lines at '\n' with a '\r' before it dropped, as conn.c does;
 * the last line needs no '\n'.  At most 64 lines.
 *
 * Checked, on every answer: one line, a JSON object, "ok" a boolean, and "error" a string when ok is false
 * (docs/telemetry.md: "Every answer has "ok": true or "ok": false, "error": "...""); every %s that ctl.c
 * hands to ins_log is a string; every event is an object.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <unistd.h>

#include "fuzz.h"
#include "ins.h"

struct ins ins;

static const struct ins_conn_ops *ctl_ops;
static unsigned long answers;
static struct ins_flow flows[2];
static struct ins_proc proc = { .refs = 1, .pid = 1234, .exe = "/usr/bin/curl", .comm = "curl" };

/* ---- the stubs: what ctl.c calls in the rest of mwinsd ---- */

int conn_listen(const char *where, const struct ins_conn_ops *ops, struct list *conns)
{
	ctl_ops = ops;
	return 0;
}

int conn_write(struct ins_conn *c, const char *buf, size_t len)
{
	json_error_t jerr;
	json_t *o, *ok, *err;

	FUZZ_CHECK(len > 0 && buf[len - 1] == '\n' && !memchr(buf, '\n', len - 1));
	o = json_loadb(buf, len - 1, 0, &jerr);
	FUZZ_CHECK(json_is_object(o));
	ok = json_object_get(o, "ok");
	err = json_object_get(o, "error");
	FUZZ_CHECK(json_is_boolean(ok));
	FUZZ_CHECK(json_is_true(ok) || json_is_string(err));
	json_decref(o);
	answers++;
	return 0;
}

void conn_close(struct ins_conn *c)
{
	c->dead = true;
}

/* A check of the one printf-like call ctl.c makes with strings from a request: no %s gets NULL. */
void ins_log(int level, const char *fmt, ...)
{
	char buf[1024];
	va_list ap, aq;

	va_start(ap, fmt);
	va_copy(aq, ap);
	for (const char *f = fmt; *f; f++) {
		int longs = 0, size_t_ = 0;

		if (*f != '%')
			continue;
		f++;
		while (*f && strchr("-+ #0123456789.", *f))
			f++;
		for (; *f == 'l' || *f == 'z'; f++)
			*f == 'l' ? longs++ : size_t_++;
		switch (*f) {
		case 's':
			FUZZ_CHECK(va_arg(aq, const char *) != NULL);
			break;
		case 'd': case 'i': case 'u': case 'x': case 'c':
			if (size_t_)
				(void)va_arg(aq, size_t);
			else if (longs)
				(void)va_arg(aq, long);
			else
				(void)va_arg(aq, int);
			break;
		case 'p':
			(void)va_arg(aq, void *);
			break;
		case '%':
			break;
		default:
			FUZZ_CHECK(!"a conversion this stub does not know");
		}
		if (!*f)
			break;
	}
	va_end(aq);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
}

uint64_t ins_now_ms(void)
{
	return 1700000000000ULL;
}

uint64_t ins_wall_ms(uint64_t now_ms)
{
	return now_ms;
}

struct ins_flow *flow_find(const char *uid)
{
	for (size_t i = 0; i < sizeof(flows) / sizeof(flows[0]); i++)
		if (!strcmp(flows[i].uid, uid))
			return &flows[i];
	return NULL;
}

json_t *flow_json(const struct ins_flow *f, uint64_t now_ms)
{
	return json_pack("{s:s, s:i}", "uid", f->uid, "proto", (int)f->proto);
}

void sock_kill(struct ins_flow *f, const char *why)
{
	FUZZ_CHECK(!f->killed);
	f->killed = true;
}

int enforce_reload(char *err, size_t errlen)
{
	snprintf(err, errlen, "/etc/mwcomms/policy:3: unknown action 'dney'");
	return -EINVAL;
}

bool events_wanted(void)
{
	return true;
}

void events_emit(const char *type, json_t *obj)
{
	FUZZ_CHECK(json_is_object(obj));
	json_decref(obj);
}

char *metrics_text(size_t *len)
{
	static const char text[] = "mwcomms_flows_total 2\n";
	char *s = strdup(text);

	*len = s ? sizeof(text) - 1 : 0;
	return s;
}

/* ---- the harness ---- */

static void world_reset(void)
{
	static const char *const uids[] = { "CTCP1", "CUDP1" };

	list_init(&ins.flows);
	for (size_t i = 0; i < sizeof(flows) / sizeof(flows[0]); i++) {
		memset(&flows[i], 0, sizeof(flows[i]));
		snprintf(flows[i].uid, sizeof(flows[i].uid), "%s", uids[i]);
		flows[i].proto = i ? IPPROTO_UDP : IPPROTO_TCP;
		flows[i].proc = &proc;
		list_add_tail(&ins.flows, &flows[i].link);
	}
	proc.bucket.rate = 0;
	ins.pol_rt = policy_new();
	FUZZ_CHECK(ins.pol_rt);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const rules[] = {
		"deny name=no-metadata op=connect remote=169.254.0.0/16",
		"throttle name=slow-curl exe=/usr/bin/curl rate=1M per=program for=1d",
	};

	snprintf(ins.cfg.policy, sizeof(ins.cfg.policy), "/etc/mwcomms/policy");
	ins.pol_file = policy_new();
	FUZZ_CHECK(ins.pol_file);
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		FUZZ_CHECK(policy_add_rule(ins.pol_file, rules[i], ins_now_ms(), NULL, 0, NULL, 0) == 0);
	FUZZ_CHECK(ctl_init() == 0 && ctl_ops);
	/* The harness must reach the parser: one request, one answer (a peer check that turned the harness's
	 * connection away would otherwise leave the fuzzer running nothing). */
	world_reset();
	{
		struct ins_conn conn = { .uid = 0, .pid = getpid() };
		char req[] = "{\"cmd\":\"policy\"}";

		FUZZ_CHECK(ctl_ops->line(&conn, req, strlen(req)) == 0 && answers == 1);
	}
	policy_free(ins.pol_rt);
	ins.pol_rt = NULL;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Root, from our own process (so our own network namespace): a peer the control API lets in. */
	struct ins_conn conn = { .uid = 0, .pid = getpid() };
	const uint8_t *cur = data, *end = data + size;

	world_reset();
	for (int lines = 0; lines < 64 && cur < end && !conn.dead; lines++) {
		const uint8_t *nl = memchr(cur, '\n', (size_t)(end - cur));
		size_t raw = nl ? (size_t)(nl - cur) : (size_t)(end - cur), len = raw;
		char *line = malloc(len + 1);

		FUZZ_CHECK(line);
		memcpy(line, cur, len);
		line[len] = 0;
		if (len && line[len - 1] == '\r')
			line[--len] = 0;
		if (ctl_ops->line(&conn, line, len) < 0)
			conn.dead = true;
		free(line);
		cur += raw + (nl ? 1 : 0);
	}
	policy_free(ins.pol_rt);
	ins.pol_rt = NULL;
	return 0;
}
