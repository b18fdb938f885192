/*
 * quarantine.c: `mwctl quarantine PID`: every current flow of the process is
 * killed and its new connections and datagrams are denied, by a run-time rule
 * that `mwctl unblock` removes.
 */
#include <inttypes.h>
#include <stdio.h>

#include "ctl.h"

static void quarantine_usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [-r DIR] quarantine [-i ID] PID\n"
		"  Resets every flow of process PID and denies its new ones. Prints the rule's\n"
		"  name ('rule NAME', for 'mwctl unblock') and how many flows were killed.\n",
		PROG_NAME);
}

int quarantine_main(const char *root, int argc, char *argv[])
{
	json_t *answer, *rule, *killed;
	const char *id;
	char safe[128];
	int first, status;
	uint64_t pid;

	if (ctl_args_simple("quarantine", argc, argv, 1, 1, quarantine_usage, &id, &first, &status))
		return status;
	if (ctl_parse_u64(argv[first], 1, REG_PID_MAX, &pid)) {
		fprintf(stderr, "%s: quarantine: PID must be a process id\n", PROG_NAME);
		return 1;
	}
	if (ctl_simple_main(root, id, json_pack("{s:s, s:I}", "cmd", "quarantine", "pid", (json_int_t)pid),
			    &answer))
		return 1;
	rule = json_object_get(answer, "rule");
	killed = json_object_get(answer, "killed");
	if (json_is_string(rule)) {
		ctl_text_safe(json_string_value(rule), safe, sizeof(safe), true);
		printf("rule %s\n", safe);
	}
	if (json_is_integer(killed))
		printf("killed %" JSON_INTEGER_FORMAT "\n", json_integer_value(killed));
	json_decref(answer);
	return ctl_finish(0);
}
