/*
 * throttle.c: `mwctl throttle (FLOW_UID | --pid PID) RATE`: limits one flow,
 * or every flow of a process (current and new, by a run-time rule), to RATE
 * bytes per second each way, in mwinsd's relay.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static void throttle_usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [-r DIR] throttle [-i ID] (FLOW_UID | --pid PID) RATE\n"
		"  Limits the flow, or every flow of process PID, current and new, to RATE bytes\n"
		"  per second each way. RATE: a number with an optional suffix K, M or G (powers\n"
		"  of 1024), e.g. 512K. With --pid, prints the rule's name ('rule NAME').\n",
		PROG_NAME);
}

/* RATE as the policy has it: digits, then at most one of K, M, G; not zero. */
static bool rate_valid(const char *s)
{
	size_t n = strspn(s, "0123456789");
	uint64_t v;
	char digits[20];

	if (n == 0 || n >= sizeof(digits) || (s[n] && (strchr("KMG", s[n]) == NULL || s[n + 1])))
		return false;
	memcpy(digits, s, n);
	digits[n] = '\0';
	return ctl_parse_u64(digits, 1, UINT32_MAX, &v) == 0;
}

int throttle_main(const char *root, int argc, char *argv[])
{
	static const struct option options[] = {
		{ "id",   required_argument, NULL, 'i' },
		{ "pid",  required_argument, NULL, 'p' },
		{ "help", no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *id = NULL, *uid = NULL, *rate;
	json_t *req, *answer, *rule;
	uint64_t pid = 0;
	char safe[128];
	int c, want;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":i:h", options, NULL)) != -1) {
		switch (c) {
		case 'i':
			id = optarg;
			break;
		case 'p':
			if (ctl_parse_u64(optarg, 1, REG_PID_MAX, &pid)) {
				fprintf(stderr, "%s: throttle: --pid needs a process id\n", PROG_NAME);
				return 1;
			}
			break;
		case 'h':
			throttle_usage(stdout);
			return 0;
		default:
			ctl_opt_complain("throttle", c, optopt, argv[optind - 1]);
			throttle_usage(stderr);
			return 1;
		}
	}
	want = pid ? 1 : 2;
	if (argc - optind != want) {
		fprintf(stderr, "%s: throttle: %s\n", PROG_NAME,
			argc - optind < want ? "missing argument" : "unexpected argument");
		throttle_usage(stderr);
		return 1;
	}
	if (!pid) {
		uid = argv[optind];
		if (!flow_uid_valid(uid)) {
			ctl_text_safe(uid, safe, sizeof(safe), false);
			fprintf(stderr, "%s: throttle: '%s' is not a flow uid\n", PROG_NAME, safe);
			return 1;
		}
	}
	rate = argv[argc - 1];
	if (!rate_valid(rate)) {
		ctl_text_safe(rate, safe, sizeof(safe), false);
		fprintf(stderr, "%s: throttle: '%s' is not a rate (bytes per second, suffix K, M or G)\n",
			PROG_NAME, safe);
		return 1;
	}
	if (pid)
		req = json_pack("{s:s, s:I, s:s}", "cmd", "throttle", "pid", (json_int_t)pid, "rate", rate);
	else
		req = json_pack("{s:s, s:s, s:s}", "cmd", "throttle", "flow", uid, "rate", rate);
	if (ctl_simple_main(root, id, req, &answer))
		return 1;
	rule = json_object_get(answer, "rule");
	if (json_is_string(rule)) {
		ctl_text_safe(json_string_value(rule), safe, sizeof(safe), true);
		printf("rule %s\n", safe);
	}
	json_decref(answer);
	return ctl_finish(0);
}
