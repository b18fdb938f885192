/*
 * enforce.c: the policy in force, and the three things mwinsd can do to a flow besides relaying it: refuse
 * it, reset it, slow it.
 *
 * Two policies are consulted, the run-time one (mwctl block, quarantine, throttle --pid) first, then the
 * file's.  Run-time rules are an operator's direct order: they are enforced even when the file says monitor.
 *
 * Throttling is a token bucket per flow and one per program, refilled every THROTTLE_TICK_MS while some
 * socket waits on one.  A held-back direction simply stops reading its source, so the kernel's own flow
 * control (the peer's window, the program's full carrier) pushes back, as a slow link would.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "ins.h"
#include "mwlib.h"

#define THROTTLE_TICK_MS 10

static void policy_event(int rules, const char *error)
{
	json_t *o;

	if (!events_wanted())
		return;
	o = json_object();
	json_object_set_new(o, "file", json_string(ins.cfg.policy));
	if (error)
		json_object_set_new(o, "error", json_string(error));
	else
		json_object_set_new(o, "rules", json_integer(rules));
	events_emit("policy", o);
}

int enforce_reload(char *err, size_t errlen)
{
	struct policy *p;

	if (!ins.cfg.policy[0]) {
		snprintf(err, errlen, "no policy file (mwinsd was started without --policy)");
		return -ENOENT;
	}
	p = policy_load(ins.cfg.policy, ins_now_ms(), err, errlen);
	if (!p) {
		ins.n.policy_errors++;
		ins_log(0, "policy not loaded, the old one stays: %s", err);
		policy_event(0, err);
		return -EINVAL;
	}
	policy_free(ins.pol_file);
	ins.pol_file = p;
	ins.n.policy_loads++;
	ins_log(1, "policy %s: %zu rules, default %s, %s", ins.cfg.policy, policy_nrules(p),
		pol_action_name(policy_default(p)), policy_monitor(p) ? "monitor" : "enforce");
	policy_event((int)policy_nrules(p), NULL);
	return 0;
}

static void throttle_event(struct ins_ev *ev, uint32_t events);

int enforce_init(void)
{
	char err[512];
	int fd;

	ins.pol_rt = policy_new();
	if (!ins.pol_rt)
		return -ENOMEM;
	fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fd < 0 || ins_ev_add(&ins.ev_throttle, fd, EPOLLIN, throttle_event) < 0)
		return -errno;
	if (!ins.cfg.policy[0])
		return 0;
	if (enforce_reload(err, sizeof(err)) < 0) {
		fprintf(stderr, "mwinsd: %s\n", err);
		return -EINVAL;
	}
	return 0;
}

static int deny_errno(enum pol_op op)
{
	switch (op) {
	case POL_OP_CONNECT:
		return ECONNREFUSED; /* what a firewall's REJECT gives a connect */
	case POL_OP_LISTEN:
		return EACCES;       /* as binding a port one may not */
	case POL_OP_SEND:
		return EPERM;        /* as a DROP in the OUTPUT chain */
	case POL_OP_ACCEPT:
	default:
		return ECONNREFUSED;
	}
}

int enforce_check(struct ins_sock *s, enum pol_op op, const struct mw_addr *local, const struct mw_addr *remote,
		  struct pol_verdict *v)
{
	static const struct mw_addr none;
	const struct ins_proc *p = s->proc;
	struct pol_query q = {
		.op = op,
		.family = s->domain,
		.proto = s->dgram ? IPPROTO_UDP : IPPROTO_TCP,
		.local = local ? *local : none,
		.remote = remote ? *remote : none,
		.exe = p ? p->exe : "",
		.comm = p ? p->comm : "",
		.uid = p ? p->uid : (uid_t)-1,
		.pid = p ? p->pid : 0,
		.now_ms = ins_now_ms(),
	};
	struct pol_verdict fv;
	int err;

	memset(v, 0, sizeof(*v));
	memset(&fv, 0, sizeof(fv));
	if (op == POL_OP_CONNECT && remote && conn_is_own_service(remote)) {
		v->action = POL_DENY;
		strcpy(v->rule, "mwinsd-service");
		goto deny;
	}
	if (policy_eval_rules(ins.pol_rt, &q, v)) {
		/* An operator's rule decided; the file may still mark the flow (log, throttle). */
		if (ins.pol_file)
			policy_eval_rules(ins.pol_file, &q, &fv);
	} else {
		if (ins.pol_file) {
			policy_eval(ins.pol_file, &q, &fv);
		} else {
			fv.action = POL_ALLOW;
			strcpy(fv.rule, "default");
		}
		v->action = fv.action;
		v->monitor = fv.monitor;
		memcpy(v->rule, fv.rule, sizeof(v->rule));
	}
	if (!v->log && fv.log) {
		v->log = true;
		memcpy(v->log_rule, fv.log_rule, sizeof(v->log_rule));
	}
	if (!v->rate && fv.rate) {
		v->rate = fv.rate;
		v->per = fv.per;
		memcpy(v->throttle_rule, fv.throttle_rule, sizeof(v->throttle_rule));
	}
	if (v->monitor || v->action == POL_ALLOW)
		return 0;
	if (v->action == POL_KILL && (op == POL_OP_CONNECT || op == POL_OP_ACCEPT))
		return 0; /* it connects, then it is reset: enforce_flow_start marks it */
deny:
	err = deny_errno(op);
	if (op != POL_OP_LISTEN)
		flow_denied(s, (uint8_t)q.proto, op != POL_OP_ACCEPT, local ? local : &none, remote ? remote : &none,
			    v, err);
	else
		ins.n.denied++;
	ins_log(1, "pid %d: %s to %s denied by rule %s", p ? (int)p->pid : 0,
		op == POL_OP_CONNECT ? "connect" : op == POL_OP_ACCEPT ? "accept" : op == POL_OP_SEND ? "send" : "listen",
		remote && remote->family ? mw_addr_str(remote, (char[64]){ 0 }, 64) : "-", v->rule);
	return -err;
}

void enforce_flow_start(struct ins_flow *f, const struct pol_verdict *v)
{
	if (!f)
		return;
	f->action = (uint8_t)v->action;
	f->monitor = v->monitor;
	if (v->log)
		snprintf(f->log_rule, sizeof(f->log_rule), "%s", v->log_rule);
	snprintf(f->rule, sizeof(f->rule), "%s", v->rule);
	if (v->rate && !v->monitor) {
		if (v->per == POL_PER_PROGRAM && f->proc)
			f->proc->bucket.rate = v->rate;
		else
			f->bucket.rate = v->rate;
	}
}

struct ins_sock *enforce_kill(struct ins_flow *f, const char *why)
{
	struct ins_sock *s = f->sock;

	if (f->killed)
		return NULL;
	f->killed = true;
	ins.n.killed++;
	flow_hist(f, 'K');
	if (events_wanted()) {
		json_t *o = flow_json(f, ins_now_ms());

		json_object_set_new(o, "by", json_string(why));
		events_emit("killed", o);
	}
	if (!s || s->dead) {
		flow_end(f, "killed", ECONNRESET);
		return NULL;
	}
	if (f->proto == IPPROTO_UDP) {
		flow_end(f, "killed", ECONNREFUSED);
		return s;
	}
	if (f->outbound)
		f->rst_orig = true;
	else
		f->rst_resp = true;
	f->tcp_flags |= 0x04;
	return s;
}

bool enforce_kill_rule(struct ins_sock *s)
{
	struct ins_flow *f = s->flow;

	return !s->dead && !s->zombie && f && f->action == POL_KILL && !f->monitor && !f->killed &&
	       enforce_kill(f, "rule");
}

int enforce_accept(struct ins_sock *c)
{
	struct pol_verdict v;
	struct ins_flow *f;
	int err = enforce_check(c, POL_OP_ACCEPT, &c->local, &c->peer, &v);

	if (err)
		return err;
	ins.n.accepts++;
	f = flow_new(c, IPPROTO_TCP, false, &c->peer, &c->local);
	if (f) {
		flow_hist(f, 'c');
		f->established = true;
		f->tcp_flags = 0x12;
		enforce_flow_start(f, &v);
		flow_hist(f, 'E');
		flow_event(f, "established");
	}
	return 0;
}

int enforce_udp_send(struct ins_sock *s, const struct mw_addr *dst)
{
	struct pol_verdict v;
	struct ins_flow *f;
	int err = enforce_check(s, POL_OP_SEND, &s->local, dst, &v);

	if (err)
		return err;
	if (v.action == POL_KILL && !v.monitor)
		return -EPERM; /* a datagram can't be "connected, then reset": kill is deny here */
	f = flow_udp(s, dst, true);
	enforce_flow_start(f, &v);
	return 0;
}

/* Refill b for the time since it was last used; a tenth of a second's worth (at least 4 KiB) is the most
 * it saves, so that a quiet flow can't burst far past its rate. */
static uint64_t bucket_take(struct ins_bucket *b, uint64_t now)
{
	uint64_t burst = b->rate / 10 > 4096 ? b->rate / 10 : 4096;

	if (!b->last_ms) {
		b->last_ms = now;
		b->tokens = burst;
	}
	if (now > b->last_ms) {
		uint64_t add = (now - b->last_ms) * b->rate / 1000;

		b->tokens = b->tokens + add > burst ? burst : b->tokens + add;
		b->last_ms = now;
	}
	return b->tokens;
}

static void throttle_arm(bool on)
{
	struct itimerspec its = { 0 };

	if (ins.throttle_armed == on)
		return;
	if (on) {
		its.it_interval.tv_nsec = THROTTLE_TICK_MS * 1000000L;
		its.it_value = its.it_interval;
	}
	timerfd_settime(ins.ev_throttle.fd, 0, &its, NULL);
	ins.throttle_armed = on;
}

size_t enforce_allowance(struct ins_sock *s, bool up)
{
	struct ins_flow *f = s->flow;
	uint64_t now, a = SIZE_MAX;

	(void)up;
	if (!f || (!f->bucket.rate && !(f->proc && f->proc->bucket.rate)))
		return SIZE_MAX;
	now = ins_now_ms();
	if (f->bucket.rate)
		a = bucket_take(&f->bucket, now);
	if (f->proc && f->proc->bucket.rate) {
		uint64_t pa = bucket_take(&f->proc->bucket, now);

		a = pa < a ? pa : a;
	}
	if (!a) {
		flow_hist(f, 'T');
		if (list_empty(&s->throttled))
			list_add_tail(&ins.throttled, &s->throttled);
		throttle_arm(true);
	}
	return (size_t)a;
}

void enforce_used(struct ins_sock *s, bool up, size_t n)
{
	struct ins_flow *f = s->flow;

	(void)up;
	if (!f)
		return;
	if (f->bucket.rate)
		f->bucket.tokens = f->bucket.tokens > n ? f->bucket.tokens - n : 0;
	if (f->proc && f->proc->bucket.rate)
		f->proc->bucket.tokens = f->proc->bucket.tokens > n ? f->proc->bucket.tokens - n : 0;
}

static void throttle_event(struct ins_ev *ev, uint32_t events)
{
	struct list waiting;
	uint64_t ticks;

	(void)events;
	if (read(ev->fd, &ticks, sizeof(ticks)) != sizeof(ticks))
		return;
	ins.n.throttled_ms += ticks * THROTTLE_TICK_MS;
	/* Each waiting socket is pumped once more (the run queue); one still short of tokens comes back here. */
	list_init(&waiting);
	if (!list_empty(&ins.throttled)) {
		waiting.next = ins.throttled.next;
		waiting.prev = ins.throttled.prev;
		waiting.next->prev = &waiting;
		waiting.prev->next = &waiting;
		list_init(&ins.throttled);
	}
	while (!list_empty(&waiting)) {
		struct ins_sock *s = container_of(waiting.next, struct ins_sock, throttled);

		list_del(&s->throttled);
		if (!s->dead)
			sock_runq_add(s);
	}
	if (list_empty(&ins.throttled))
		throttle_arm(false);
}

void enforce_tick(uint64_t now_ms)
{
	policy_expire(ins.pol_rt, now_ms);
	if (ins.pol_file)
		policy_expire(ins.pol_file, now_ms);
}
