/*
 * status.c: `mwctl status [--json]`. Shows each INS in the registry with its
 * health (its process, and its heartbeat's age), its sockets, counters,
 * addresses and listening ports, and the processes attached to it: in stable
 * columns for people, or as one JSON object for scripts.
 *
 * Problems in the registry are part of the output (error lines, or "errors"
 * objects in JSON), not failures: a broken entry must not hide the others.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/*
 * mwinsd bumps its heartbeat every second. One whose heartbeat is older than
 * this has missed two beats and is taken for dead, even if a process with its
 * pid exists: pids are reused, and a hung mwinsd serves no one.
 */
#define STATUS_HEARTBEAT_DEAD_MS 2500

/*
 * A heartbeat's mtime comes from the kernel's coarse clock, so it can trail
 * the clock we read but never lead it by much. Up to this far in the future
 * it counts as age 0; further, the clock was stepped or the file forged.
 */
#define STATUS_HEARTBEAT_SKEW_MS 1000

/* Column layout of the instance table. Values wider than a column push the rest right. */
#define STATUS_ROW "%-16s %-8s %-6s %-10s %-8s %-8s %-12s %-12s %s\n"
#define STATUS_CLIENT_ROW "    %-8s %-8s %s\n"

static void status_usage(FILE *f)
{
	fprintf(f, "Usage: %s [-r DIR] status [--json]\n", PROG_NAME);
}

/* ---- judging health ---- */

/* Heartbeat age in ms from its mtime, or -ERANGE when the mtime is implausible. */
static int heartbeat_age(const struct timespec *mtime, const struct timespec *now, int64_t *age_ms)
{
	int64_t ds;

	/* The mtime is anything a writer set with utimensat(); keep the arithmetic from overflowing. */
	if (__builtin_sub_overflow((int64_t)now->tv_sec, (int64_t)mtime->tv_sec, &ds) ||
	    ds > INT64_MAX / 1000 - 1 || ds < INT64_MIN / 1000 + 1)
		return -ERANGE;
	ds = ds * 1000 + ((int64_t)now->tv_nsec - (int64_t)mtime->tv_nsec) / 1000000;
	if (ds < -STATUS_HEARTBEAT_SKEW_MS)
		return -ERANGE;
	*age_ms = ds < 0 ? 0 : ds;
	return 0;
}

/* This function can't fail; what it cannot know makes the instance not alive. */
void status_health(const struct reg_instance *in, const struct timespec *now,
			  struct health *h)
{
	memset(h, 0, sizeof(*h));
	if (in->has_heartbeat && heartbeat_age(&in->heartbeat_mtime, now, &h->age_ms) == 0)
		h->has_age = true;

	/* EPERM means the process exists but belongs to someone else: that still counts. */
	if (!in->has_pid)
		snprintf(h->reason, sizeof(h->reason), "pid unknown (see errors)");
	else if (kill(in->pid, 0) < 0 && errno == ESRCH)
		snprintf(h->reason, sizeof(h->reason), "process %d does not exist", (int)in->pid);
	else if (!in->has_heartbeat)
		snprintf(h->reason, sizeof(h->reason), "heartbeat unknown (see errors)");
	else if (!h->has_age)
		snprintf(h->reason, sizeof(h->reason), "heartbeat time is in the future or implausible");
	else if (h->age_ms > STATUS_HEARTBEAT_DEAD_MS)
		snprintf(h->reason, sizeof(h->reason),
			 "heartbeat %" PRId64 ".%" PRId64 " s old (two beats missed)",
			 h->age_ms / 1000, h->age_ms % 1000 / 100);
	else
		h->alive = true;
	/* A live mwinsd bumps the heartbeat every second until it stops: the last one dates the death to
	 * within a second, whatever the reason (a kill -9 leaves nothing else behind that would). */
	if (!h->alive && h->has_age) {
		h->has_dead_for = true;
		h->dead_for_ms = h->age_ms;
	}
}

/* "45s", "12m05s", "3h07m", "2d04h": a duration in its two largest units. */
static void fmt_duration(char *buf, size_t size, int64_t ms)
{
	int64_t s = ms / 1000;

	if (s < 60)
		snprintf(buf, size, "%" PRId64 "s", s);
	else if (s < 3600)
		snprintf(buf, size, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, size, "%" PRId64 "h%02" PRId64 "m", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, size, "%" PRId64 "d%02" PRId64 "h", s / 86400, s % 86400 / 3600);
}

/* The wall-clock time t as "2026-12-03 16:20:11 UTC". */
static void fmt_time(char *buf, size_t size, const struct timespec *t)
{
	struct tm tm;
	time_t sec = t->tv_sec;

	if (!gmtime_r(&sec, &tm) || !strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm))
		snprintf(buf, size, "-");
}

/* The instance client c is attached to, or NULL. Instances are sorted by id. */
static const struct reg_instance *client_owner(const struct registry *reg,
					       const struct reg_client *c)
{
	size_t lo = 0, hi = reg->n_ins;

	if (!c->has_ins)
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(c->ins, reg->ins[mid].id);

		if (cmp == 0)
			return &reg->ins[mid];
		if (cmp < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* ---- columns ---- */

static void fmt_u64(char *buf, size_t size, bool ok, uint64_t v)
{
	if (ok)
		snprintf(buf, size, "%" PRIu64, v);
	else
		snprintf(buf, size, "-");
}

static void text_errors(const struct reg_errors *errs, const char *indent, const char *prefix)
{
	size_t i;

	for (i = 0; i < errs->n; i++)
		printf("%serror: %s%s: %s\n", indent, prefix, errs->v[i].where, errs->v[i].text);
	if (errs->dropped)
		printf("%serror: %zu more not shown\n", indent, errs->dropped);
}

static void text_instance(const struct registry *reg, const struct reg_instance *in,
			  const struct health *h)
{
	char pid[16], hb[32], version[16], sockets[24], bytes_in[24], bytes_out[24];
	size_t i, n = 0;

	fmt_u64(pid, sizeof(pid), in->has_pid, (uint64_t)in->pid);
	if (h->has_age)
		snprintf(hb, sizeof(hb), "%" PRId64 ".%" PRId64 "s", h->age_ms / 1000,
			 h->age_ms % 1000 / 100);
	else
		snprintf(hb, sizeof(hb), "-");
	fmt_u64(version, sizeof(version), in->has_version, in->version);
	fmt_u64(sockets, sizeof(sockets), in->has_stats, in->stats.sockets);
	fmt_u64(bytes_in, sizeof(bytes_in), in->has_stats, in->stats.bytes_in);
	fmt_u64(bytes_out, sizeof(bytes_out), in->has_stats, in->stats.bytes_out);
	printf(STATUS_ROW, in->id, pid, h->alive ? "yes" : "no", hb, version, sockets, bytes_in,
	       bytes_out, in->has_sock ? in->sock : "-");

	if (!h->alive && h->has_dead_for) {
		char since[40], dur[32];

		fmt_duration(dur, sizeof(dur), h->dead_for_ms);
		fmt_time(since, sizeof(since), &in->heartbeat_mtime);
		printf("  dead: %s; for %s, since its last heartbeat at %s\n", h->reason, dur, since);
	} else if (!h->alive) {
		printf("  dead: %s\n", h->reason);
	}
	text_errors(&in->errors, "  ", "");

	printf("  ip_addrs:");
	if (!in->has_ip_addrs)
		printf(" -");
	else if (in->n_ip_addrs == 0)
		printf(" none");
	for (i = 0; i < in->n_ip_addrs; i++)
		printf(" %s", in->ip_addrs[i].text);
	printf("\n  listening_ports:");
	if (!in->has_ports)
		printf(" -");
	else if (in->n_ports == 0)
		printf(" none");
	for (i = 0; i < in->n_ports; i++)
		printf(in->ports[i].family == AF_INET6 ? " %s [%s]:%u" : " %s %s:%u",
		       in->ports[i].proto, in->ports[i].addr, in->ports[i].port);
	printf("\n");

	/* O(instances x clients) over the two sorted lists: fine at registry sizes. */
	for (i = 0; i < reg->n_clients; i++)
		if (client_owner(reg, &reg->clients[i]) == in)
			n++;
	printf("  clients: %zu\n", n);
	if (n == 0)
		return;
	printf(STATUS_CLIENT_ROW, "PID", "SOCKETS", "EXE");
	for (i = 0; i < reg->n_clients; i++) {
		const struct reg_client *c = &reg->clients[i];

		if (client_owner(reg, c) != in)
			continue;
		fmt_u64(pid, sizeof(pid), true, (uint64_t)c->pid);
		fmt_u64(sockets, sizeof(sockets), c->has_sockets, c->sockets);
		printf(STATUS_CLIENT_ROW, pid, sockets, c->exe ? c->exe : "-");
		text_errors(&c->errors, "      ", "");
	}
}

/* Clients that belong to no listed instance: stale entries, or ones whose ins is broken. */
static void text_stray_clients(const struct registry *reg)
{
	char prefix[32];
	size_t i;

	for (i = 0; i < reg->n_clients; i++) {
		const struct reg_client *c = &reg->clients[i];

		if (client_owner(reg, c))
			continue;
		snprintf(prefix, sizeof(prefix), "clients/%d/", (int)c->pid);
		if (c->has_ins)
			printf("error: clients/%d: attached to %s, which is not in the registry\n",
			       (int)c->pid, c->ins);
		text_errors(&c->errors, "", prefix);
	}
}

static int status_print_text(const struct registry *reg, const struct health *health)
{
	size_t i;

	if (reg->n_ins == 0) {
		printf("no INS running\n");
	} else {
		printf(STATUS_ROW, "ID", "PID", "ALIVE", "HEARTBEAT", "VERSION", "SOCKETS", "BYTES_IN",
		       "BYTES_OUT", "SOCK");
		for (i = 0; i < reg->n_ins; i++)
			text_instance(reg, &reg->ins[i], &health[i]);
	}
	text_stray_clients(reg);
	text_errors(&reg->errors, "", "");
	return 0;
}

/* ---- JSON ---- */

/*
 * Every json_*_set_new()/append_new() below takes its value even on failure
 * (and a NULL value is itself a failure), so OR-ing their results into `bad`
 * and checking once at the end catches any allocation failure without leaks.
 */

static json_t *json_u64_or_null(bool ok, uint64_t v)
{
	return ok ? json_integer((json_int_t)v) : json_null();
}

/* Adds errs to the object obj, keyed by prefix + file. Returns 0 or -ENOMEM. */
static int json_errors_add(json_t *obj, const struct reg_errors *errs, const char *prefix)
{
	char key[REG_WHERE_MAX + 32];
	size_t i;
	int bad = 0;

	for (i = 0; i < errs->n; i++) {
		snprintf(key, sizeof(key), "%s%s", prefix, errs->v[i].where);
		bad |= json_object_set_new(obj, key, json_string(errs->v[i].text));
	}
	if (errs->dropped) {
		snprintf(key, sizeof(key), "%s(more)", prefix);
		bad |= json_object_set_new(obj, key, json_sprintf("%zu more not shown", errs->dropped));
	}
	return bad ? -ENOMEM : 0;
}

static json_t *json_client(const struct reg_client *c)
{
	json_t *o = json_object(), *errors = json_object();
	int bad = 0;

	bad |= json_object_set_new(o, "pid", json_integer(c->pid));
	bad |= json_object_set_new(o, "exe", c->exe ? json_string(c->exe) : json_null());
	bad |= json_object_set_new(o, "sockets", json_u64_or_null(c->has_sockets, c->sockets));
	bad |= json_errors_add(errors, &c->errors, "");
	bad |= json_object_set_new(o, "errors", errors);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *json_instance(const struct registry *reg, const struct reg_instance *in,
			     const struct health *h)
{
	json_t *o = json_object(), *addrs = NULL, *stats = NULL, *ports = NULL;
	json_t *clients = json_array(), *errors = json_object();
	size_t i;
	int bad = 0;

	bad |= json_object_set_new(o, "id", json_string(in->id));
	bad |= json_object_set_new(o, "pid", json_u64_or_null(in->has_pid, (uint64_t)in->pid));
	bad |= json_object_set_new(o, "alive", json_boolean(h->alive));
	bad |= json_object_set_new(o, "dead_reason", h->alive ? json_null() : json_string(h->reason));
	bad |= json_object_set_new(o, "heartbeat_age_s",
				   h->has_age ? json_real((double)h->age_ms / 1000.0) : json_null());
	bad |= json_object_set_new(o, "dead_for_s",
				   h->has_dead_for ? json_real((double)h->dead_for_ms / 1000.0) : json_null());
	bad |= json_object_set_new(o, "sock", in->has_sock ? json_string(in->sock) : json_null());
	bad |= json_object_set_new(o, "version", json_u64_or_null(in->has_version, in->version));

	if (in->has_ip_addrs) {
		addrs = json_array();
		for (i = 0; i < in->n_ip_addrs; i++)
			bad |= json_array_append_new(addrs, json_string(in->ip_addrs[i].text));
	}
	bad |= json_object_set_new(o, "ip_addrs", addrs ? addrs : json_null());

	if (in->has_stats) {
		stats = json_object();
		bad |= json_object_set_new(stats, "sockets", json_integer((json_int_t)in->stats.sockets));
		bad |= json_object_set_new(stats, "bytes_in", json_integer((json_int_t)in->stats.bytes_in));
		bad |= json_object_set_new(stats, "bytes_out",
					   json_integer((json_int_t)in->stats.bytes_out));
		if (in->stats.has_clients)
			bad |= json_object_set_new(stats, "clients",
						   json_integer((json_int_t)in->stats.clients));
	}
	bad |= json_object_set_new(o, "network_stats", stats ? stats : json_null());

	if (in->has_ports) {
		ports = json_array();
		for (i = 0; i < in->n_ports; i++) {
			const struct reg_port *p = &in->ports[i];

			bad |= json_array_append_new(ports, json_pack("{s:s, s:s, s:i}", "proto", p->proto,
								     "address", p->addr, "port", p->port));
		}
	}
	bad |= json_object_set_new(o, "listening_ports", ports ? ports : json_null());

	for (i = 0; i < reg->n_clients; i++)
		if (client_owner(reg, &reg->clients[i]) == in)
			bad |= json_array_append_new(clients, json_client(&reg->clients[i]));
	bad |= json_object_set_new(o, "clients", clients);

	bad |= json_errors_add(errors, &in->errors, "");
	bad |= json_object_set_new(o, "errors", errors);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Top-level errors: entries that belong to nothing listed, keyed by path under the root. */
static json_t *json_top_errors(const struct registry *reg)
{
	json_t *errors = json_object();
	char prefix[32], key[64];
	size_t i;
	int bad = 0;

	for (i = 0; i < reg->n_clients; i++) {
		const struct reg_client *c = &reg->clients[i];

		if (client_owner(reg, c))
			continue;
		snprintf(prefix, sizeof(prefix), "clients/%d/", (int)c->pid);
		if (c->has_ins) {
			snprintf(key, sizeof(key), "clients/%d", (int)c->pid);
			bad |= json_object_set_new(errors, key,
						   json_sprintf("attached to %s, which is not in the registry",
								c->ins));
		}
		bad |= json_errors_add(errors, &c->errors, prefix);
	}
	bad |= json_errors_add(errors, &reg->errors, "");
	if (bad) {
		json_decref(errors);
		return NULL;
	}
	return errors;
}

static int status_print_json(const struct registry *reg, const struct health *health)
{
	json_t *root = json_object(), *instances = json_array();
	size_t i;
	int bad = 0, err = 0;

	bad |= json_object_set_new(root, "registry", json_string(reg->root));
	for (i = 0; i < reg->n_ins; i++)
		bad |= json_array_append_new(instances, json_instance(reg, &reg->ins[i], &health[i]));
	bad |= json_object_set_new(root, "instances", instances);
	bad |= json_object_set_new(root, "errors", json_top_errors(reg));
	if (bad) {
		/* Also where the root path given by the user is not valid UTF-8. */
		fprintf(stderr, "%s: status: cannot build JSON (out of memory, or a path that is not UTF-8)\n",
			PROG_NAME);
		err = -ENOMEM;
		goto out;
	}
	if (json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) < 0 || putchar('\n') == EOF)
		err = -EIO;
out:
	json_decref(root);
	return err;
}

/* ---- the subcommand ---- */

int status_main(const char *root, int argc, char *argv[])
{
	struct health *health = NULL;
	struct registry reg;
	struct timespec now;
	bool json = false;
	int i, err, ret = 1;
	size_t k;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			status_usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "%s: status: unknown argument '%s'\n", PROG_NAME, argv[i]);
			status_usage(stderr);
			return 1;
		}
	}

	if (registry_load(root, &reg) < 0) {
		fprintf(stderr, "%s: cannot read registry %s: %s\n", PROG_NAME, root, reg.fatal);
		goto out;
	}
	/* Heartbeat mtimes are wall-clock times, so they are compared with the wall clock. */
	if (clock_gettime(CLOCK_REALTIME, &now) < 0) {
		fprintf(stderr, "%s: clock_gettime: %s\n", PROG_NAME, strerror(errno));
		goto out;
	}
	health = calloc(reg.n_ins ? reg.n_ins : 1, sizeof(*health));
	if (!health) {
		fprintf(stderr, "%s: out of memory\n", PROG_NAME);
		goto out;
	}
	for (k = 0; k < reg.n_ins; k++)
		status_health(&reg.ins[k], &now, &health[k]);

	err = json ? status_print_json(&reg, health) : status_print_text(&reg, health);
	if (!err && (fflush(stdout) == EOF || ferror(stdout)))
		err = -EIO;
	if (err == -EIO)
		fprintf(stderr, "%s: cannot write output\n", PROG_NAME);
	if (err)
		goto out;
	ret = 0;
out:
	free(health);
	registry_free(&reg);
	return ret;
}
