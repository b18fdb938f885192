/*
 * flow.c: the connection record (docs/telemetry.md): one per TCP connection, one per UDP socket and remote
 * address.  The relay and the dispatcher tell it what happened (flow_hist, flow_bytes); it turns that into
 * Zeek-style fields, events, and IPFIX records.
 *
 * Cost: a flow is one allocation and a few counters bumped on the data path.  Nothing is formatted unless
 * someone listens (events_wanted) or an exporter is configured, so the record costs nothing on a quiet INS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "ins.h"
#include "ipfix.h"

#define UPDATE_MS 10000       /* an "update" event for each live flow this often */
#define IPFIX_ACTIVE_MS 60000 /* and an IPFIX record (active timeout) */
#define UDP_IDLE_MS 60000     /* a UDP flow with no datagram for this long has ended */
#define UDP_FLOWS_MAX 64      /* per socket: past that the quietest ends */

/* "C" and 17 base62 characters from getrandom, as Zeek's uids look. */
static void make_uid(char out[20])
{
	static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	static uint8_t pool[1024];
	static size_t left;
	static uint64_t fallback;

	out[0] = 'C';
	for (int i = 1; i < 18; i++) {
		if (!left) {
			if (getrandom(pool, sizeof(pool), GRND_NONBLOCK) == (ssize_t)sizeof(pool)) {
				left = sizeof(pool);
			} else {
				/* No entropy yet (early boot): unique is what matters here, not unpredictable. */
				uint64_t v = ++fallback ^ ins_now_ms() << 20;

				for (size_t k = 0; k < sizeof(pool); k++)
					pool[k] = (uint8_t)(v >> (k % 8 * 8)) ^ (uint8_t)k;
				left = sizeof(pool);
			}
		}
		/* 248 = 4 * 62: taking the byte modulo 62 only below it keeps the characters uniform. */
		while (left && pool[left - 1] >= 248)
			left--;
		if (!left) {
			i--;
			continue;
		}
		out[i] = b62[pool[--left] % 62];
	}
	out[18] = 0;
}

static size_t addr_len(const struct mw_addr *a)
{
	return a->family == AF_INET6 ? 16 : 4;
}

/* Community ID v1 (seed 0): sha1(seed, saddr, daddr, proto, 0, sport, dport) with the endpoints ordered. */
static void make_community_id(struct ins_flow *f)
{
	const struct mw_addr *a = &f->orig, *b = &f->resp;
	uint8_t buf[2 + 16 + 16 + 2 + 4], dig[SHA1_DIGEST_SIZE];
	size_t n = 0, alen = addr_len(a);
	struct sha1_ctx ctx;
	int c;

	if (a->family != b->family || !a->family) {
		f->community_id[0] = 0;
		return;
	}
	c = memcmp(a->addr, b->addr, alen);
	if (c > 0 || (c == 0 && ntohs(a->port) > ntohs(b->port))) {
		const struct mw_addr *t = a;

		a = b;
		b = t;
	}
	buf[n++] = 0;
	buf[n++] = 0;
	memcpy(buf + n, a->addr, alen);
	n += alen;
	memcpy(buf + n, b->addr, alen);
	n += alen;
	buf[n++] = f->proto;
	buf[n++] = 0;
	memcpy(buf + n, &a->port, 2); /* already network order */
	n += 2;
	memcpy(buf + n, &b->port, 2);
	n += 2;
	sha1_init(&ctx);
	sha1_update(&ctx, n, buf);
	sha1_digest(&ctx, sizeof(dig), dig);
	memcpy(f->community_id, "1:", 2);
	base64_encode_raw((char *)f->community_id + 2, sizeof(dig), dig);
	f->community_id[2 + BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE)] = 0;
}

/* An IPv4 peer of a dual-stack socket is ::ffff:a.b.c.d to the kernel; records say a.b.c.d, as Zeek's and
 * every collector's do, so that tuples and community ids match what other sensors saw on the wire. */
static struct mw_addr addr_norm(const struct mw_addr *a)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	struct mw_addr n = *a;

	if (a->family == AF_INET6 && !memcmp(a->addr, mapped, sizeof(mapped))) {
		memset(&n, 0, sizeof(n));
		n.family = AF_INET;
		n.port = a->port;
		memcpy(n.addr, a->addr + 12, 4);
	}
	return n;
}

static uint32_t udp_flows; /* they end by idling out: flow_tick must look at them */

struct ins_flow *flow_new(struct ins_sock *s, uint8_t proto, bool outbound, const struct mw_addr *orig,
			  const struct mw_addr *resp)
{
	struct ins_flow *f = calloc(1, sizeof(*f));

	if (!f) {
		ins_log(0, "socket %#x: no memory for its flow record", s->id);
		return NULL;
	}
	make_uid(f->uid);
	f->sock = s;
	f->proc = proc_ref(s->proc);
	f->proto = proto;
	f->outbound = outbound;
	f->orig = addr_norm(orig);
	f->resp = addr_norm(resp);
	make_community_id(f);
	f->start_ms = f->last_ms = f->update_ms = f->ipfix_ms = ins_now_ms();
	f->calls = s->calls;
	strcpy(f->rule, "default");
	list_init(&f->slink);
	list_add_tail(&ins.flows, &f->link);
	ins.nflows++;
	ins.flows_total++;
	if (proto == IPPROTO_TCP) {
		s->flow = f;
	} else {
		list_add_tail(&s->udp.flows, &f->slink);
		s->udp.nflows++;
		udp_flows++;
	}
	return f;
}

static bool addr_eq(const struct mw_addr *a, const struct mw_addr *b)
{
	return a->family == b->family && a->port == b->port && !memcmp(a->addr, b->addr, addr_len(a));
}

struct ins_flow *flow_udp_find(struct ins_sock *s, const struct mw_addr *remote)
{
	struct mw_addr r = addr_norm(remote);

	for (struct list *l = s->udp.flows.next; l != &s->udp.flows; l = l->next) {
		struct ins_flow *f = container_of(l, struct ins_flow, slink);

		if (addr_eq(f->outbound ? &f->resp : &f->orig, &r))
			return f;
	}
	return NULL;
}

struct ins_flow *flow_udp(struct ins_sock *s, const struct mw_addr *remote, bool outbound)
{
	struct ins_flow *f = flow_udp_find(s, remote), *oldest = NULL;

	if (f)
		return f;
	for (struct list *l = s->udp.flows.next; l != &s->udp.flows; l = l->next) {
		f = container_of(l, struct ins_flow, slink);
		if (!oldest || f->last_ms < oldest->last_ms)
			oldest = f;
	}
	if (s->udp.nflows >= UDP_FLOWS_MAX && oldest)
		flow_end(oldest, "idle", 0); /* a socket talking to many peers: keep the active ones */
	f = flow_new(s, IPPROTO_UDP, outbound, outbound ? &s->local : remote, outbound ? remote : &s->local);
	if (f) {
		flow_hist(f, outbound ? 'D' : 'd');
		flow_event(f, "attempt");
	}
	return f;
}

void flow_hist(struct ins_flow *f, char op)
{
	if (!f)
		return;
	if (f->hlen && f->history[f->hlen - 1] == op)
		return;
	if (f->hlen < sizeof(f->history) - 1) {
		f->history[f->hlen++] = op;
		f->history[f->hlen] = 0;
	}
}

void flow_bytes(struct ins_flow *f, bool up, uint64_t n)
{
	/* up is the program's direction; orig is the program only for an outbound flow. */
	bool from_orig = up == f->outbound;

	if (from_orig) {
		f->orig_bytes += n;
		f->orig_ops++;
	} else {
		f->resp_bytes += n;
		f->resp_ops++;
	}
	if (n)
		flow_hist(f, from_orig ? 'D' : 'd');
	f->last_ms = ins_now_ms();
}

static const char *conn_state(const struct ins_flow *f, bool live, int err)
{
	if (f->proto == IPPROTO_UDP)
		return f->outbound ? (f->resp_ops ? "SF" : "S0") : (f->orig_ops && f->resp_ops ? "SF" : "S0");
	if (!f->established) {
		if (err == ECONNREFUSED)
			return "REJ";
		return f->action == POL_DENY && !f->monitor ? "OTH" : "S0";
	}
	if (f->rst_orig)
		return "RSTO";
	if (f->rst_resp)
		return "RSTR";
	if (live && !f->fin_orig && !f->fin_resp)
		return "S1";
	if (f->fin_orig && f->fin_resp)
		return "SF";
	if (f->fin_orig)
		return "S2";
	if (f->fin_resp)
		return "S3";
	return live ? "S1" : "OTH";
}

static json_t *addr_host(const struct mw_addr *a)
{
	char ip[INET6_ADDRSTRLEN] = "";

	if (a->family)
		inet_ntop(a->family, a->addr, ip, sizeof(ip));
	return json_string(ip);
}

static json_t *proc_json_argv(const struct ins_proc *p)
{
	json_t *a = json_array();
	const char *s = p ? p->argv : NULL;

	for (uint32_t i = 0; s && i < p->argc; i++) {
		json_array_append_new(a, json_string(s)); /* NULL (not UTF-8) appends nothing */
		s += strlen(s) + 1;
	}
	return a;
}

/* Fill the fields every record has; live: the flow is still going (state, age). */
static json_t *flow_json_common(const struct ins_flow *f, uint64_t now_ms, bool live, const char *reason, int err)
{
	json_t *o = json_object();
	const struct ins_proc *p = f->proc;

	json_object_set_new(o, "uid", json_string(f->uid));
	if (f->community_id[0])
		json_object_set_new(o, "community_id", json_string(f->community_id));
	json_object_set_new(o, "ts", json_real((double)ins_wall_ms(f->start_ms) / 1000.0));
	json_object_set_new(o, "duration", json_real((double)(now_ms - f->start_ms) / 1000.0));
	json_object_set_new(o, "id.orig_h", addr_host(&f->orig));
	json_object_set_new(o, "id.orig_p", json_integer(ntohs(f->orig.port)));
	json_object_set_new(o, "id.resp_h", addr_host(&f->resp));
	json_object_set_new(o, "id.resp_p", json_integer(ntohs(f->resp.port)));
	json_object_set_new(o, "proto", json_string(f->proto == IPPROTO_UDP ? "udp" : "tcp"));
	json_object_set_new(o, "direction", json_string(f->outbound ? "outbound" : "inbound"));
	json_object_set_new(o, "orig_bytes", json_integer((json_int_t)f->orig_bytes));
	json_object_set_new(o, "resp_bytes", json_integer((json_int_t)f->resp_bytes));
	json_object_set_new(o, "orig_ops", json_integer((json_int_t)f->orig_ops));
	json_object_set_new(o, "resp_ops", json_integer((json_int_t)f->resp_ops));
	json_object_set_new(o, "calls", json_integer(f->calls));
	json_object_set_new(o, "conn_state", json_string(conn_state(f, live, err)));
	json_object_set_new(o, "history", json_string(f->history));
	if (reason)
		json_object_set_new(o, "end_reason", json_string(reason));
	if (err)
		json_object_set_new(o, "errno", json_string(strerrorname_np(err) ? strerrorname_np(err) : "EUNKNOWN"));
	if (p) {
		json_object_set_new(o, "proc.pid", json_integer(p->pid));
		json_object_set_new(o, "proc.ppid", json_integer(p->ppid));
		json_object_set_new(o, "proc.vpid", json_integer(p->vpid));
		json_object_set_new(o, "proc.uid", json_integer(p->uid));
		json_object_set_new(o, "proc.gid", json_integer(p->gid));
		json_object_set_new(o, "proc.exe", json_string(p->exe));
		json_object_set_new(o, "proc.comm", json_string(p->comm));
		json_object_set_new(o, "proc.argv", proc_json_argv(p));
	}
	json_object_set_new(o, "rule", json_string(f->rule));
	json_object_set_new(o, "action", json_string(pol_action_name((enum pol_action)f->action)));
	json_object_set_new(o, "mode", json_string(f->monitor ? "monitor" : "enforce"));
	if (f->log_rule[0])
		json_object_set_new(o, "log", json_string(f->log_rule));
	if (f->bucket.rate || (p && p->bucket.rate))
		json_object_set_new(o, "throttle",
				    json_integer((json_int_t)(f->bucket.rate ? f->bucket.rate : p->bucket.rate)));
	if (live) {
		json_object_set_new(o, "state", json_string(conn_state(f, true, 0)));
		json_object_set_new(o, "age", json_real((double)(now_ms - f->start_ms) / 1000.0));
	}
	return o;
}

json_t *flow_json(const struct ins_flow *f, uint64_t now_ms)
{
	return flow_json_common(f, now_ms, true, NULL, 0);
}

void flow_event(struct ins_flow *f, const char *type)
{
	if (!f || !events_wanted())
		return;
	events_emit(type, flow_json_common(f, ins_now_ms(), true, NULL, 0));
}

static void flow_ipfix(struct ins_flow *f, uint64_t now_ms, uint8_t reason)
{
	struct ipfix_flow x = { 0 };
	const struct ins_proc *p = f->proc;

	if (!ins.ipfix || !f->orig.family || f->orig.family != f->resp.family)
		return;
	x.family = f->orig.family;
	memcpy(x.src, f->orig.addr, addr_len(&f->orig));
	memcpy(x.dst, f->resp.addr, addr_len(&f->resp));
	x.sport = ntohs(f->orig.port);
	x.dport = ntohs(f->resp.port);
	x.proto = f->proto;
	/* What this record counts: from the flow's start, or the last report's end (wall clock, for collectors). */
	x.start_ms = ins_wall_ms(f->ipfix_ms);
	x.end_ms = ins_wall_ms(now_ms);
	x.bytes = f->orig_bytes - f->x_bytes;
	x.rbytes = f->resp_bytes - f->x_rbytes;
	x.ops = f->orig_ops - f->x_ops;
	x.rops = f->resp_ops - f->x_rops;
	x.end_reason = reason;
	x.tcp_flags = f->tcp_flags;
	x.pid = p ? (uint32_t)p->pid : 0;
	x.ppid = p ? (uint32_t)p->ppid : 0;
	x.uid = p ? (uint32_t)p->uid : 0;
	x.gid = p ? (uint32_t)p->gid : 0;
	x.exe = p ? p->exe : "";
	x.comm = p ? p->comm : "";
	x.rule = f->rule;
	x.action = f->action == POL_DENY ? 1 : f->action == POL_KILL ? 2 : 0;
	x.direction = f->outbound ? 0 : 1;
	ipfix_add(ins.ipfix, &x, now_ms);
	f->x_bytes = f->orig_bytes;
	f->x_rbytes = f->resp_bytes;
	f->x_ops = f->orig_ops;
	f->x_rops = f->resp_ops;
	f->ipfix_ms = now_ms;
}

static uint8_t ipfix_reason(const char *reason)
{
	if (!strcmp(reason, "idle"))
		return IPFIX_END_IDLE;
	if (!strcmp(reason, "killed") || !strcmp(reason, "ins_exit"))
		return IPFIX_END_FORCED;
	return IPFIX_END_EOF;
}

void flow_end(struct ins_flow *f, const char *reason, int err)
{
	uint64_t now = ins_now_ms();
	struct ins_sock *s = f->sock;

	if (f->proto == IPPROTO_TCP) {
		if (f->rst_orig || f->rst_resp)
			f->tcp_flags |= 0x04;
		else if (f->fin_orig || f->fin_resp)
			f->tcp_flags |= 0x01;
	}
	if (events_wanted())
		events_emit("closed", flow_json_common(f, now, false, reason, err));
	flow_ipfix(f, now, ipfix_reason(reason));
	ins.n.flows_ended++;
	if (s && s->flow == f)
		s->flow = NULL;
	if (s && f->proto == IPPROTO_UDP) {
		list_del(&f->slink);
		s->udp.nflows--;
	}
	if (f->proto == IPPROTO_UDP)
		udp_flows--;
	list_del(&f->link);
	ins.nflows--;
	proc_put(f->proc);
	free(f);
}

void flow_denied(struct ins_sock *s, uint8_t proto, bool outbound, const struct mw_addr *local,
		 const struct mw_addr *remote, const struct pol_verdict *v, int err)
{
	struct ins_flow f = { 0 };
	uint64_t now = ins_now_ms();

	ins.n.denied++;
	if (!events_wanted())
		return;
	/* Never a live flow: the record is built on the stack, emitted, and gone. */
	make_uid(f.uid);
	f.proc = s->proc;
	f.proto = proto;
	f.outbound = outbound;
	f.orig = addr_norm(outbound ? local : remote);
	f.resp = addr_norm(outbound ? remote : local);
	make_community_id(&f);
	f.start_ms = now;
	f.calls = s->calls;
	f.action = (uint8_t)v->action;
	f.monitor = v->monitor;
	snprintf(f.rule, sizeof(f.rule), "%s", v->rule);
	flow_hist(&f, 'N');
	events_emit("denied", flow_json_common(&f, now, false, "denied", err));
}

/* The program's side sent its FIN (up), or the peer's arrived. */
void flow_fin(struct ins_sock *s, bool up)
{
	struct ins_flow *f = s->flow;
	bool orig = up == (f && f->outbound);

	if (!f)
		return;
	if (orig)
		f->fin_orig = true;
	else
		f->fin_resp = true;
	flow_hist(f, orig ? 'F' : 'f');
}

void flow_established(struct ins_sock *s)
{
	struct ins_flow *f = s->flow;

	if (!f)
		return;
	f->established = true;
	f->tcp_flags |= 0x12;
	if (f->outbound) {
		f->orig = addr_norm(&s->local); /* the port is the kernel's choice, known for sure only now */
		make_community_id(f);
	}
	flow_hist(f, 'E');
	flow_event(f, "established");
}

static const char *fail_reason(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return "refused";
	case ETIMEDOUT:
		return "timeout";
	case ECONNRESET:
		return "reset";
	case EHOSTUNREACH:
	case ENETUNREACH:
		return "unreachable";
	default:
		return "error";
	}
}

void flow_failed(struct ins_sock *s, int err)
{
	struct ins_flow *f = s->flow;

	if (!f)
		return;
	if (f->killed) {
		flow_end(f, "killed", ECONNRESET);
		return;
	}
	if (err == ECONNRESET && f->established) {
		/* The peer reset it. */
		if (f->outbound)
			f->rst_resp = true;
		else
			f->rst_orig = true;
		f->tcp_flags |= 0x04;
		flow_hist(f, f->outbound ? 'r' : 'R');
	}
	flow_end(f, fail_reason(err), err);
}

void flow_prog_reset(struct ins_sock *s)
{
	struct ins_flow *f = s->flow;

	if (!f)
		return;
	if (f->outbound)
		f->rst_orig = true;
	else
		f->rst_resp = true;
	f->tcp_flags |= 0x04;
	flow_hist(f, f->outbound ? 'R' : 'r');
}

/* The end of a TCP flow whose socket is going away, in the words the relay left in the socket. */
static void flow_tcp_gone(struct ins_flow *f, struct ins_sock *s)
{
	bool prog_orig = f->outbound;

	if (f->killed) {
		flow_end(f, "killed", ECONNRESET);
		return;
	}
	if (!f->established) {
		flow_end(f, "closed", 0); /* the program gave up before an answer */
		return;
	}
	if (s->up.shut || s->car_hup) {
		/* The program's side finished: a FIN, unless it closed with SO_LINGER {1, 0} or unread bytes. */
		if (prog_orig ? !f->rst_orig : !f->rst_resp) {
			if (prog_orig)
				f->fin_orig = true;
			else
				f->fin_resp = true;
		}
	}
	if (s->down.eof && !(prog_orig ? f->rst_resp : f->rst_orig)) {
		if (prog_orig)
			f->fin_resp = true;
		else
			f->fin_orig = true;
	}
	flow_hist(f, 'X');
	if (f->rst_orig || f->rst_resp)
		flow_end(f, (prog_orig ? f->rst_resp : f->rst_orig) ? "reset" : "closed", 0);
	else
		flow_end(f, s->down.eof && !s->up.shut && !s->car_hup ? "peer_closed" : "closed", 0);
}

void flow_sock_gone(struct ins_sock *s)
{
	if (s->flow)
		flow_tcp_gone(s->flow, s);
	while (!list_empty(&s->udp.flows))
		flow_end(container_of(s->udp.flows.next, struct ins_flow, slink), "closed", 0);
}

struct ins_flow *flow_find(const char *uid)
{
	for (struct list *l = ins.flows.next; l != &ins.flows; l = l->next) {
		struct ins_flow *f = container_of(l, struct ins_flow, link);

		if (!strcmp(f->uid, uid))
			return f;
	}
	return NULL;
}

void flow_tick(uint64_t now_ms)
{
	struct list *l, *n;

	/* Nothing to time out, report or export: idle TCP connections cost no walk (thousands of them would
	 * otherwise cost a millisecond a second, which is what the idle rows of bench/ measure). */
	if (!udp_flows && !ins.ipfix && !events_wanted())
		return;

	for (l = ins.flows.next; l != &ins.flows; l = n) {
		struct ins_flow *f = container_of(l, struct ins_flow, link);

		n = l->next;
		if (f->proto == IPPROTO_UDP && now_ms - f->last_ms >= UDP_IDLE_MS) {
			flow_end(f, "idle", 0);
			continue;
		}
		if (now_ms - f->update_ms >= UPDATE_MS) {
			f->update_ms = now_ms;
			flow_event(f, "update");
		}
		if (ins.ipfix && now_ms - f->ipfix_ms >= IPFIX_ACTIVE_MS)
			flow_ipfix(f, now_ms, IPFIX_END_ACTIVE);
	}
	if (ins.ipfix)
		ipfix_flush(ins.ipfix, now_ms);
}

void flow_shutdown(void)
{
	while (!list_empty(&ins.flows)) {
		struct ins_flow *f = container_of(ins.flows.next, struct ins_flow, link);

		if (f->sock && f->sock->flow == f)
			f->sock->flow = NULL;
		if (f->sock && f->proto == IPPROTO_UDP) {
			list_del(&f->slink);
			f->sock->udp.nflows--;
		}
		f->sock = NULL;
		flow_end(f, "ins_exit", 0);
	}
	if (ins.ipfix)
		ipfix_flush(ins.ipfix, ins_now_ms());
}
