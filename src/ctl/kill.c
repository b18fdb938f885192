/*
 * kill.c: `mwctl kill FLOW_UID`: mwinsd resets the flow; the program sees
 * ECONNRESET on its next call on the socket (docs/telemetry.md, "Control API").
 */
#include <stdio.h>

#include "ctl.h"

static void kill_usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [-r DIR] kill [-i ID] FLOW_UID\n"
		"  Resets the flow (its UID from 'mwctl flows'): the program sees ECONNRESET.\n",
		PROG_NAME);
}

int kill_main(const char *root, int argc, char *argv[])
{
	const char *id, *uid;
	char safe[64];
	int first, status;

	if (ctl_args_simple("kill", argc, argv, 1, 1, kill_usage, &id, &first, &status))
		return status;
	uid = argv[first];
	if (!flow_uid_valid(uid)) {
		ctl_text_safe(uid, safe, sizeof(safe), false);
		fprintf(stderr, "%s: kill: '%s' is not a flow uid (see '%s flows')\n", PROG_NAME, safe,
			PROG_NAME);
		return 1;
	}
	return ctl_simple_main(root, id, json_pack("{s:s, s:s}", "cmd", "kill", "flow", uid), NULL);
}
