/*
 * unblock.c: `mwctl unblock RULE`: removes a rule added at run time (by
 * block, quarantine or throttle --pid). The file's rules are changed by
 * editing the file and `mwctl policy reload`.
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static void unblock_usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [-r DIR] unblock [-i ID] RULE\n"
		"  Removes a run-time rule (the name 'mwctl block' or 'quarantine' printed).\n",
		PROG_NAME);
}

int unblock_main(const char *root, int argc, char *argv[])
{
	const char *id, *rule;
	int first, status;

	if (ctl_args_simple("unblock", argc, argv, 1, 1, unblock_usage, &id, &first, &status))
		return status;
	rule = argv[first];
	if (!*rule || strlen(rule) > 256) {
		fprintf(stderr, "%s: unblock: not a rule name\n", PROG_NAME);
		return 1;
	}
	/* The name is mwinsd's to judge; a name that is not UTF-8 fails in json_pack (reported). */
	return ctl_simple_main(root, id, json_pack("{s:s, s:s}", "cmd", "unblock", "rule", rule), NULL);
}
