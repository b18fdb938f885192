/*
 * metrics.c: mwinsd's counters in the Prometheus text format (version 0.0.4), served on --metrics ADDR:PORT
 * for GET /metrics, and through the control API.
 *
 * The HTTP side is as small as a scrape needs: one request per connection, answered and closed.  Anything
 * else gets 404 or 400.  It shares conn.c's bounds, so a client that never reads can't hold memory.
 */
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ins.h"
#include "ipfix.h"

static struct list metric_conns = { &metric_conns, &metric_conns };

struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 8192;
		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);

		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

static void metric(struct buf *b, const char *name, const char *type, const char *help, uint64_t v)
{
	put(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name, (unsigned long long)v);
}

char *metrics_text(size_t *len)
{
	struct buf b = { 0 };
	uint64_t tcp = 0, udp = 0, est = 0;

	for (struct list *l = ins.flows.next; l != &ins.flows; l = l->next) {
		const struct ins_flow *f = container_of(l, struct ins_flow, link);

		if (f->proto == IPPROTO_UDP) {
			udp++;
		} else {
			tcp++;
			est += f->established;
		}
	}
	metric(&b, "mwcomms_up", "gauge", "1 while mwinsd serves", 1);
	metric(&b, "mwcomms_clients", "gauge", "Processes attached", ins.nclients);
	metric(&b, "mwcomms_sockets", "gauge", "Program sockets held", ins.nsocks);
	put(&b, "# HELP mwcomms_flows Live flows\n# TYPE mwcomms_flows gauge\n"
		"mwcomms_flows{proto=\"tcp\"} %llu\nmwcomms_flows{proto=\"udp\"} %llu\n",
	    (unsigned long long)tcp, (unsigned long long)udp);
	metric(&b, "mwcomms_flows_established", "gauge", "Live TCP flows that are established", est);
	metric(&b, "mwcomms_flows_total", "counter", "Flows started", ins.flows_total);
	metric(&b, "mwcomms_flows_ended_total", "counter", "Flows ended", ins.n.flows_ended);
	put(&b, "# HELP mwcomms_bytes_total Payload bytes relayed\n# TYPE mwcomms_bytes_total counter\n"
		"mwcomms_bytes_total{direction=\"out\"} %llu\nmwcomms_bytes_total{direction=\"in\"} %llu\n",
	    (unsigned long long)ins.bytes_out, (unsigned long long)ins.bytes_in);
	metric(&b, "mwcomms_connects_total", "counter", "Outbound TCP connects the policy let through",
	       ins.n.connects);
	metric(&b, "mwcomms_accepts_total", "counter", "Inbound TCP connections the policy let through",
	       ins.n.accepts);
	metric(&b, "mwcomms_denied_total", "counter", "Operations denied by policy", ins.n.denied);
	metric(&b, "mwcomms_killed_total", "counter", "Flows killed", ins.n.killed);
	metric(&b, "mwcomms_throttle_wait_ms_total", "counter", "Milliseconds some flow waited on a throttle",
	       ins.n.throttled_ms);
	metric(&b, "mwcomms_events_total", "counter", "Events emitted", ins.n.events);
	metric(&b, "mwcomms_events_dropped_total", "counter", "Event lines a consumer or the log missed",
	       ins.n.events_dropped);
	metric(&b, "mwcomms_policy_loads_total", "counter", "Policy files loaded", ins.n.policy_loads);
	metric(&b, "mwcomms_policy_errors_total", "counter", "Policy files refused", ins.n.policy_errors);
	metric(&b, "mwcomms_actions_total", "counter", "Control actions", ins.n.actions);
	metric(&b, "mwcomms_heartbeat", "counter", "Seconds the event loop has ticked", ins.heartbeat);
	if (ins.ipfix) {
		struct ipfix_stats st;

		ipfix_get_stats(ins.ipfix, &st);
		metric(&b, "mwcomms_ipfix_records_total", "counter", "IPFIX data records exported", st.records);
		metric(&b, "mwcomms_ipfix_messages_total", "counter", "IPFIX messages sent", st.messages);
		metric(&b, "mwcomms_ipfix_dropped_messages_total", "counter", "IPFIX messages the socket refused",
		       st.dropped_messages);
	}
	{
		struct pol_rule_info ri;
		bool head = false;

		for (int k = 0; k < 2; k++) {
			const struct policy *p = k ? ins.pol_file : ins.pol_rt;

			for (size_t i = 0; p && policy_rule_info(p, i, &ri) == 0; i++) {
				if (!head) {
					put(&b, "# HELP mwcomms_rule_hits_total Policy rule matches\n"
						"# TYPE mwcomms_rule_hits_total counter\n");
					head = true;
				}
				put(&b, "mwcomms_rule_hits_total{rule=\"%s\",action=\"%s\"} %llu\n", ri.name,
				    pol_action_name(ri.action), (unsigned long long)ri.hits);
			}
		}
	}
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	*len = b.len;
	return b.p;
}

/* The request line is all we look at; headers are read and ignored up to the blank line. */
static int http_line(struct ins_conn *c, char *line, size_t len)
{
	static const char bad[] = "HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
	static const char nf[] = "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
	char head[160], *text;
	size_t tlen;

	if (c->priv == NULL) {
		/* The request line. */
		if (strncmp(line, "GET ", 4) != 0) {
			conn_write(c, bad, sizeof(bad) - 1);
			conn_finish(c);
			return 0;
		}
		c->priv = strncmp(line + 4, "/metrics", 8) == 0 && (line[12] == ' ' || line[12] == '?' || !line[12])
				  ? (void *)1
				  : (void *)2;
		return 0;
	}
	if (len)
		return 0; /* a header */
	if (c->priv == (void *)2) {
		conn_write(c, nf, sizeof(nf) - 1);
		conn_finish(c);
		return 0;
	}
	text = metrics_text(&tlen);
	if (!text)
		return -1;
	snprintf(head, sizeof(head),
		 "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: %zu\r\n"
		 "Connection: close\r\n\r\n",
		 tlen);
	conn_write(c, head, strlen(head));
	conn_write(c, text, tlen);
	free(text);
	conn_finish(c);
	return 0;
}

static const struct ins_conn_ops http_ops = {
	.name = "metrics",
	.line = http_line,
	.max_out = 16u << 20,
	.max_line = 8192,
};

int metrics_init(void)
{
	if (!ins.cfg.metrics[0])
		return 0;
	return conn_listen(ins.cfg.metrics, &http_ops, &metric_conns);
}
