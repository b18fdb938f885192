/*
 * flows.c: `mwctl flows`, the live flows of an INS, as ss shows sockets: one
 * row per flow with the program's side as LOCAL and its bytes counted from
 * its own point of view, or the records themselves with --json. Also the
 * reading of the "flows" answer that top and capture share.
 *
 * A record is checked before use (docs/telemetry.md, "The flow record"):
 * addresses must parse (capture turns them into a BPF filter), numbers must
 * be numbers. A malformed record is skipped and counted, never guessed at.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctl.h"

/* ---- reading records ---- */

/*
 * A field of a record. The spec names them with dots, flat as in Zeek's JSON
 * ("id.orig_h"); a nested form ({"id": {"orig_h": ...}}) is read as well.
 */
static json_t *flow_field(json_t *rec, const char *key)
{
	json_t *v = json_object_get(rec, key);
	const char *dot = strchr(key, '.');
	char head[16];

	if (v || !dot || (size_t)(dot - key) >= sizeof(head))
		return v;
	memcpy(head, key, (size_t)(dot - key));
	head[dot - key] = '\0';
	v = json_object_get(rec, head);
	return json_is_object(v) ? json_object_get(v, dot + 1) : NULL;
}

static const char *flow_str(json_t *rec, const char *key)
{
	json_t *v = flow_field(rec, key);

	return json_is_string(v) ? json_string_value(v) : "";
}

/* A non-negative count: absent reads as 0, anything else that is not one is an error. */
static int flow_u64(json_t *rec, const char *key, uint64_t *out)
{
	json_t *v = flow_field(rec, key);

	*out = 0;
	if (!v)
		return 0;
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) < 1.8e19) {
		*out = (uint64_t)json_real_value(v);
		return 0;
	}
	return -EINVAL;
}

/* An address and port: canonical text in h (INET6_ADDRSTRLEN), the family in *family. */
static int flow_endpoint_read(json_t *rec, const char *hkey, const char *pkey, char *h, uint16_t *p,
			      int *family)
{
	unsigned char bin[sizeof(struct in6_addr)];
	json_t *port = flow_field(rec, pkey);
	const char *addr = flow_str(rec, hkey);
	int fam = strchr(addr, ':') ? AF_INET6 : AF_INET;

	if (inet_pton(fam, addr, bin) != 1 || !inet_ntop(fam, bin, h, INET6_ADDRSTRLEN))
		return -EINVAL;
	if (!json_is_integer(port) || json_integer_value(port) < 0 || json_integer_value(port) > 65535)
		return -EINVAL;
	*p = (uint16_t)json_integer_value(port);
	*family = fam;
	return 0;
}

/* True for a uid as mwinsd makes them: letters and digits, at most FLOW_UID_MAX. */
bool flow_uid_valid(const char *uid)
{
	size_t n;

	for (n = 0; uid[n]; n++)
		if (n == FLOW_UID_MAX || !((uid[n] >= '0' && uid[n] <= '9') ||
					   (uid[n] >= 'a' && uid[n] <= 'z') || (uid[n] >= 'A' && uid[n] <= 'Z')))
			return false;
	return n > 0;
}

static int flow_parse(json_t *rec, struct ctl_flow *f)
{
	char orig_h[INET6_ADDRSTRLEN], resp_h[INET6_ADDRSTRLEN];
	uint64_t orig_bytes, resp_bytes;
	uint16_t orig_p, resp_p;
	const char *dir;
	int fam_o, fam_r;
	json_t *v;

	memset(f, 0, sizeof(*f));
	if (!json_is_object(rec))
		return -EINVAL;
	f->rec = rec;
	f->uid = flow_str(rec, "uid");
	f->proto = flow_str(rec, "proto");
	f->state = flow_str(rec, "state");
	if (!*f->state)
		f->state = flow_str(rec, "conn_state");
	f->comm = flow_str(rec, "proc.comm");
	f->exe = flow_str(rec, "proc.exe");
	dir = flow_str(rec, "direction");
	if (!flow_uid_valid(f->uid) || (strcmp(f->proto, "tcp") && strcmp(f->proto, "udp")))
		return -EINVAL;
	if (strcmp(dir, "outbound") && strcmp(dir, "inbound"))
		return -EINVAL;
	f->inbound = !strcmp(dir, "inbound");
	if (flow_endpoint_read(rec, "id.orig_h", "id.orig_p", orig_h, &orig_p, &fam_o) ||
	    flow_endpoint_read(rec, "id.resp_h", "id.resp_p", resp_h, &resp_p, &fam_r) || fam_o != fam_r)
		return -EINVAL;
	if (flow_u64(rec, "orig_bytes", &orig_bytes) || flow_u64(rec, "resp_bytes", &resp_bytes))
		return -EINVAL;
	f->family = fam_o;
	/* The program is the originator of an outbound flow and the responder of an inbound one. */
	if (f->inbound) {
		memcpy(f->local_h, resp_h, sizeof(resp_h));
		memcpy(f->remote_h, orig_h, sizeof(orig_h));
		f->local_p = resp_p;
		f->remote_p = orig_p;
		f->bytes_out = resp_bytes;
		f->bytes_in = orig_bytes;
	} else {
		memcpy(f->local_h, orig_h, sizeof(orig_h));
		memcpy(f->remote_h, resp_h, sizeof(resp_h));
		f->local_p = orig_p;
		f->remote_p = resp_p;
		f->bytes_out = orig_bytes;
		f->bytes_in = resp_bytes;
	}
	v = flow_field(rec, "proc.pid");
	f->pid = json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) <= REG_PID_MAX
			 ? (pid_t)json_integer_value(v) : -1;
	v = flow_field(rec, "age");
	if (!v)
		v = flow_field(rec, "duration");
	f->age = json_is_number(v) && json_number_value(v) >= 0 ? json_number_value(v) : -1;
	return 0;
}

int flows_fetch(struct ctl_conn *c, struct ctl_flows *fl)
{
	json_t *req, *answer = NULL, *arr;
	size_t i;
	int err;

	memset(fl, 0, sizeof(*fl));
	req = json_pack("{s:s}", "cmd", "flows");
	if (!req) {
		fprintf(stderr, "%s: out of memory\n", PROG_NAME);
		return -ENOMEM;
	}
	err = ctl_conn_call(c, req, &answer);
	json_decref(req);
	if (err)
		return err;
	arr = json_object_get(answer, "flows");
	if (!json_is_array(arr)) {
		fprintf(stderr, "%s: mwinsd's answer to \"flows\" has no \"flows\" array\n", PROG_NAME);
		json_decref(answer);
		return -EPROTO;
	}
	fl->array = json_incref(arr);
	json_decref(answer);
	fl->v = calloc(json_array_size(arr) + 1, sizeof(*fl->v));
	if (!fl->v) {
		fprintf(stderr, "%s: out of memory\n", PROG_NAME);
		flows_free(fl);
		return -ENOMEM;
	}
	for (i = 0; i < json_array_size(arr); i++) {
		if (flow_parse(json_array_get(arr, i), &fl->v[fl->n]))
			fl->bad++;
		else
			fl->n++;
	}
	return 0;
}

void flows_free(struct ctl_flows *fl)
{
	json_decref(fl->array);
	free(fl->v);
	memset(fl, 0, sizeof(*fl));
}

void flows_warn_bad(const struct ctl_flows *fl)
{
	if (fl->bad)
		fprintf(stderr, "%s: %zu flow record%s from mwinsd malformed (not shown)\n", PROG_NAME,
			fl->bad, fl->bad == 1 ? " was" : "s were");
}

void flow_endpoint_fmt(const char *h, uint16_t p, char *buf, size_t size)
{
	snprintf(buf, size, strchr(h, ':') ? "[%s]:%u" : "%s:%u", h, p);
}

void flow_who_fmt(const struct ctl_flow *f, char *buf, size_t size)
{
	char comm[64];

	ctl_text_safe(*f->comm ? f->comm : "-", comm, sizeof(comm), true);
	if (f->pid > 0)
		snprintf(buf, size, "%d/%s", (int)f->pid, comm);
	else
		snprintf(buf, size, "-/%s", comm);
}

void flow_age_fmt(double age, char *buf, size_t size)
{
	uint64_t s = (uint64_t)age;

	if (age < 0)
		snprintf(buf, size, "-");
	else if (age < 60)
		snprintf(buf, size, "%.1fs", age);
	else if (s < 3600)
		snprintf(buf, size, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, size, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, size, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, s % 86400 / 3600);
}

/* ---- the subcommand ---- */

struct flows_filter {
	int64_t pid;            /* -1: any */
	const char *exe;        /* glob, NULL: any */
	const char *state;      /* NULL: any */
	const char *proto;      /* NULL: any */
};

static bool flows_match(const struct flows_filter *flt, const struct ctl_flow *f)
{
	if (flt->pid >= 0 && f->pid != flt->pid)
		return false;
	if (flt->state && strcasecmp(flt->state, f->state))
		return false;
	if (flt->proto && strcmp(flt->proto, f->proto))
		return false;
	if (flt->exe) {
		const char *base = strrchr(f->exe, '/');

		/* A glob without '/' is matched against the name alone, as people say "curl". */
		if (strchr(flt->exe, '/'))
			return fnmatch(flt->exe, f->exe, 0) == 0;
		return fnmatch(flt->exe, base ? base + 1 : f->exe, 0) == 0 || fnmatch(flt->exe, f->comm, 0) == 0;
	}
	return true;
}

/* The table's columns; the widths follow the widest value, so every row splits on blanks. */
enum { COL_STATE, COL_PROTO, COL_LOCAL, COL_REMOTE, COL_WHO, COL_OUT, COL_IN, COL_AGE, COL_UID, NCOLS };

static const char *const flows_headings[NCOLS] = {
	"STATE", "PROTO", "LOCAL", "REMOTE", "PID/EXE", "BYTES_OUT", "BYTES_IN", "AGE", "UID",
};

#define FLOWS_CELL 64    /* "[" IPv6 "]:" port fits; longer text is cut with "..." */

static int flows_print_text(const struct ctl_flows *fl, const struct flows_filter *flt)
{
	char (*cells)[NCOLS][FLOWS_CELL];
	size_t width[NCOLS], i, rows = 0;
	int c;

	cells = calloc(fl->n + 1, sizeof(*cells));
	if (!cells) {
		fprintf(stderr, "%s: out of memory\n", PROG_NAME);
		return -ENOMEM;
	}
	for (c = 0; c < NCOLS; c++)
		snprintf(cells[0][c], FLOWS_CELL, "%s", flows_headings[c]);
	for (i = 0; i < fl->n; i++) {
		const struct ctl_flow *f = &fl->v[i];
		char (*row)[FLOWS_CELL] = cells[rows + 1];

		if (!flows_match(flt, f))
			continue;
		ctl_text_safe(*f->state ? f->state : "-", row[COL_STATE], FLOWS_CELL, true);
		snprintf(row[COL_PROTO], FLOWS_CELL, "%s", f->proto);
		flow_endpoint_fmt(f->local_h, f->local_p, row[COL_LOCAL], FLOWS_CELL);
		flow_endpoint_fmt(f->remote_h, f->remote_p, row[COL_REMOTE], FLOWS_CELL);
		flow_who_fmt(f, row[COL_WHO], FLOWS_CELL);
		snprintf(row[COL_OUT], FLOWS_CELL, "%" PRIu64, f->bytes_out);
		snprintf(row[COL_IN], FLOWS_CELL, "%" PRIu64, f->bytes_in);
		flow_age_fmt(f->age, row[COL_AGE], FLOWS_CELL);
		snprintf(row[COL_UID], FLOWS_CELL, "%s", f->uid);
		rows++;
	}
	for (c = 0; c < NCOLS; c++) {
		width[c] = 0;
		for (i = 0; i <= rows; i++)
			if (strlen(cells[i][c]) > width[c])
				width[c] = strlen(cells[i][c]);
	}
	for (i = 0; i <= rows; i++) {
		for (c = 0; c < NCOLS; c++) {
			if (c == NCOLS - 1)
				printf("%s\n", cells[i][c]);
			else
				printf("%-*s ", (int)width[c], cells[i][c]);
		}
	}
	free(cells);
	return 0;
}

static int flows_print_json(const struct ctl_flows *fl, const struct flows_filter *flt)
{
	json_t *out = json_array();
	size_t i;
	int bad = 0, err = 0;

	for (i = 0; i < fl->n; i++)
		if (flows_match(flt, &fl->v[i]))
			bad |= json_array_append(out, fl->v[i].rec);
	if (bad || !out) {
		fprintf(stderr, "%s: out of memory\n", PROG_NAME);
		err = -ENOMEM;
	} else if (json_dumpf(out, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) < 0 ||
		   putchar('\n') == EOF) {
		err = -EIO;
	}
	json_decref(out);
	return err;
}

static void flows_usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [-r DIR] flows [-i ID] [--pid N] [--exe GLOB] [--state S] [--proto tcp|udp] [--json]\n"
		"  Lists the live flows of the INS, from the program's side: LOCAL is the program's end,\n"
		"  BYTES_OUT what it sent, BYTES_IN what it received.\n"
		"  -i, --id ID     the INS (default: the only one running)\n"
		"      --pid N     only the flows of process N\n"
		"      --exe GLOB  only programs whose exe path matches GLOB (a GLOB without '/' matches\n"
		"                  the exe's name or the comm)\n"
		"      --state S   only flows in state S (S0, S1, SF, REJ, ... see docs/telemetry.md)\n"
		"      --proto P   only tcp or udp flows\n"
		"      --json      print the flow records as a JSON array\n",
		PROG_NAME);
}

int flows_main(const char *root, int argc, char *argv[])
{
	static const struct option options[] = {
		{ "id",    required_argument, NULL, 'i' },
		{ "pid",   required_argument, NULL, 'p' },
		{ "exe",   required_argument, NULL, 'e' },
		{ "state", required_argument, NULL, 's' },
		{ "proto", required_argument, NULL, 'P' },
		{ "json",  no_argument,       NULL, 'j' },
		{ "help",  no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct flows_filter flt = { .pid = -1 };
	struct ctl_target t;
	struct ctl_flows fl;
	struct ctl_conn conn;
	const char *id = NULL;
	bool json = false;
	uint64_t v;
	int c, err;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":i:h", options, NULL)) != -1) {
		switch (c) {
		case 'i':
			id = optarg;
			break;
		case 'p':
			if (ctl_parse_u64(optarg, 1, REG_PID_MAX, &v)) {
				fprintf(stderr, "%s: flows: --pid needs a process id\n", PROG_NAME);
				return 1;
			}
			flt.pid = (int64_t)v;
			break;
		case 'e':
			flt.exe = optarg;
			break;
		case 's':
			flt.state = optarg;
			break;
		case 'P':
			if (strcmp(optarg, "tcp") && strcmp(optarg, "udp")) {
				fprintf(stderr, "%s: flows: --proto is tcp or udp\n", PROG_NAME);
				return 1;
			}
			flt.proto = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			flows_usage(stdout);
			return 0;
		default:
			ctl_opt_complain("flows", c, optopt, argv[optind - 1]);
			flows_usage(stderr);
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: flows: unexpected argument '%s'\n", PROG_NAME, argv[optind]);
		flows_usage(stderr);
		return 1;
	}

	if (ctl_target_find(root, id, &t) || ctl_conn_open(&t, &conn))
		return 1;
	err = flows_fetch(&conn, &fl);
	ctl_conn_close(&conn);
	if (err)
		return 1;
	flows_warn_bad(&fl);
	err = json ? flows_print_json(&fl, &flt) : flows_print_text(&fl, &flt);
	flows_free(&fl);
	return ctl_finish(err ? 1 : 0);
}
