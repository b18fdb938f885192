/*
 * policy.c: `mwctl policy [show]` lists the policy in force, run-time rules
 * first, with each rule's hits; `mwctl policy reload` has mwinsd read its
 * policy file again (a file with an error is refused as a whole and the old
 * policy stays: the error, "FILE:LINE: ...", is printed and the exit status
 * is 1).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

static void policy_usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [-r DIR] policy [-i ID] [show] [--json]\n"
		"       %s [-r DIR] policy [-i ID] reload\n"
		"  show: the mode, the default, and each rule with its hits (--json: mwinsd's answer).\n"
		"  reload: reads the policy file again; on an error the old policy stays.\n",
		PROG_NAME, PROG_NAME);
}

/* The rule table's columns; TEXT, the rule as written, is last because it holds blanks. */
enum { PCOL_NAME, PCOL_LINE, PCOL_ACTION, PCOL_HITS, PCOL_EXPIRES, PCOL_TEXT, PNCOLS };

static const char *const policy_headings[PNCOLS] = { "NAME", "LINE", "ACTION", "HITS", "EXPIRES", "TEXT" };

#define POLICY_CELL 256

/*
 * "expires" may be absent or null (never), a number of seconds left, or a
 * time since the epoch (seconds or milliseconds), or a text; shown as the
 * time left where that can be known.
 */
static void policy_expires_fmt(json_t *v, char *buf, size_t size)
{
	double x, now = (double)time(NULL);

	if (json_is_string(v)) {
		ctl_text_safe(json_string_value(v), buf, size, true);
		return;
	}
	if (!json_is_number(v)) {
		snprintf(buf, size, "-");
		return;
	}
	x = json_number_value(v);
	if (x > 1e12)
		x /= 1000;
	if (x > 1e9)
		x -= now;
	if (x < 0)
		snprintf(buf, size, "expired");
	else
		flow_age_fmt(x, buf, size);
}

static void policy_cell_str(json_t *rule, const char *key, char *buf)
{
	json_t *v = json_object_get(rule, key);

	if (json_is_string(v))
		ctl_text_safe(json_string_value(v), buf, POLICY_CELL, strcmp(key, "text") != 0);
	else if (json_is_integer(v) && json_integer_value(v) > 0)
		snprintf(buf, POLICY_CELL, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_integer(v) && !strcmp(key, "hits"))
		snprintf(buf, POLICY_CELL, "0");
	else
		snprintf(buf, POLICY_CELL, "-");
}

static int policy_show_text(json_t *answer)
{
	char mode[64], def[64], (*cells)[PNCOLS][POLICY_CELL];
	json_t *rules = json_object_get(answer, "rules"), *m, *d;
	size_t n = json_array_size(rules), width[PNCOLS], i;
	int c;

	m = json_object_get(answer, "mode");
	d = json_object_get(answer, "default");
	ctl_text_safe(json_is_string(m) ? json_string_value(m) : "-", mode, sizeof(mode), true);
	ctl_text_safe(json_is_string(d) ? json_string_value(d) : "-", def, sizeof(def), true);
	printf("mode %s\ndefault %s\n", mode, def);
	if (rules && !json_is_array(rules)) {
		fprintf(stderr, "%s: mwinsd's \"rules\" is not an array\n", PROG_NAME);
		return -EPROTO;
	}
	cells = calloc(n + 1, sizeof(*cells));
	if (!cells) {
		fprintf(stderr, "%s: out of memory\n", PROG_NAME);
		return -ENOMEM;
	}
	for (c = 0; c < PNCOLS; c++)
		snprintf(cells[0][c], POLICY_CELL, "%s", policy_headings[c]);
	for (i = 0; i < n; i++) {
		json_t *r = json_array_get(rules, i);

		policy_cell_str(r, "name", cells[i + 1][PCOL_NAME]);
		policy_cell_str(r, "line", cells[i + 1][PCOL_LINE]);
		policy_cell_str(r, "action", cells[i + 1][PCOL_ACTION]);
		policy_cell_str(r, "hits", cells[i + 1][PCOL_HITS]);
		policy_expires_fmt(json_object_get(r, "expires"), cells[i + 1][PCOL_EXPIRES], POLICY_CELL);
		policy_cell_str(r, "text", cells[i + 1][PCOL_TEXT]);
	}
	for (c = 0; c < PNCOLS; c++) {
		width[c] = 0;
		for (i = 0; i <= n; i++)
			if (strlen(cells[i][c]) > width[c])
				width[c] = strlen(cells[i][c]);
	}
	for (i = 0; i <= n; i++)
		for (c = 0; c < PNCOLS; c++) {
			if (c == PNCOLS - 1)
				printf("%s\n", cells[i][c]);
			else
				printf("%-*s ", (int)width[c], cells[i][c]);
		}
	free(cells);
	return 0;
}

int policy_main(const char *root, int argc, char *argv[])
{
	static const struct option options[] = {
		{ "id",   required_argument, NULL, 'i' },
		{ "json", no_argument,       NULL, 'j' },
		{ "help", no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *id = NULL, *what = "show";
	json_t *answer, *rules;
	bool json = false;
	int c, err;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":i:h", options, NULL)) != -1) {
		switch (c) {
		case 'i':
			id = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			policy_usage(stdout);
			return 0;
		default:
			ctl_opt_complain("policy", c, optopt, argv[optind - 1]);
			policy_usage(stderr);
			return 1;
		}
	}
	if (argc - optind > 1 || (argc - optind == 1 && strcmp(argv[optind], "show") &&
				  strcmp(argv[optind], "reload"))) {
		fprintf(stderr, "%s: policy: expected 'show' or 'reload'\n", PROG_NAME);
		policy_usage(stderr);
		return 1;
	}
	if (argc - optind == 1)
		what = argv[optind];

	if (!strcmp(what, "reload")) {
		if (json) {
			fprintf(stderr, "%s: policy: --json goes with show\n", PROG_NAME);
			return 1;
		}
		if (ctl_simple_main(root, id, json_pack("{s:s}", "cmd", "policy_reload"), &answer))
			return 1;
		rules = json_object_get(answer, "rules");
		if (json_is_integer(rules))
			printf("rules %" JSON_INTEGER_FORMAT "\n", json_integer_value(rules));
		json_decref(answer);
		return ctl_finish(0);
	}

	if (ctl_simple_main(root, id, json_pack("{s:s}", "cmd", "policy"), &answer))
		return 1;
	if (json) {
		json_object_del(answer, "ok");
		err = json_dumpf(answer, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) < 0 ||
		      putchar('\n') == EOF;
	} else {
		err = policy_show_text(answer);
	}
	json_decref(answer);
	return ctl_finish(err ? 1 : 0);
}
