/*
 * mwctl.c: mwctl, the command-line interface to mwcomms. main() reads the
 * global options, settles the registry root, and runs one subcommand from the
 * table below. Each subcommand lives in a file of its own (status.c,
 * flows.c, ...), as in WireGuard's wg.c; those that talk to mwinsd do it
 * through client.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "mwlib.h"

const char *PROG_NAME = "mwctl";

static int help_main(const char *root, int argc, char *argv[]);

static const struct {
	const char *name;
	int (*function)(const char *root, int argc, char *argv[]);
	const char *description;
} subcommands[] = {
	{ "status",     status_main,     "Shows each INS, its health, and the processes attached to it" },
	{ "flows",      flows_main,      "Lists an INS's live flows, as ss lists sockets" },
	{ "top",        top_main,        "Shows the busiest flows live, redrawn every second" },
	{ "events",     events_main,     "Prints an INS's events (JSON lines) as they come" },
	{ "kill",       kill_main,       "Resets a flow: the program sees ECONNRESET" },
	{ "block",      block_main,      "Denies new connects and datagrams to an address, net or port" },
	{ "unblock",    unblock_main,    "Removes a rule added by block, quarantine or throttle --pid" },
	{ "quarantine", quarantine_main, "Resets a process's flows and denies its new ones" },
	{ "throttle",   throttle_main,   "Limits a flow's, or a process's, bytes per second" },
	{ "policy",     policy_main,     "Shows the policy and its rules' hits, or reloads it" },
	{ "capture",    capture_main,    "Writes the packets of a process's flows to a pcapng file" },
	{ "help",       help_main,       "Shows this help" },
};

static void show_usage(FILE *f)
{
	size_t i;

	fprintf(f, "Usage: %s [-r DIR] <cmd> [<args>]\n\n", PROG_NAME);
	fprintf(f, "Options:\n");
	fprintf(f, "  -r, --registry DIR  registry root (default: $MWCOMMS_REGISTRY if absolute, else %s)\n\n",
		MW_REGISTRY_DEFAULT);
	fprintf(f, "Available subcommands:\n");
	for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(f, "  %-11s %s\n", subcommands[i].name, subcommands[i].description);
	fprintf(f, "\nAll but status and help talk to one INS: '-i ID' names it; without it, the only\n"
		   "INS running is used.\n");
	fprintf(f, "Run '%s <cmd> --help' for the options of a subcommand.\n", PROG_NAME);
}

static int help_main(const char *root, int argc, char *argv[])
{
	(void)root;
	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "%s: help takes no arguments\n", PROG_NAME);
		show_usage(stderr);
		return 1;
	}
	show_usage(stdout);
	return 0;
}

int main(int argc, char *argv[])
{
	static const struct option options[] = {
		{ "registry", required_argument, NULL, 'r' },
		{ "help",     no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *root = NULL, *slash;
	size_t i;
	int c;

	if (argc > 0 && argv[0][0]) {
		slash = strrchr(argv[0], '/');
		PROG_NAME = slash ? slash + 1 : argv[0];
	}

	/*
	 * '+': stop at the subcommand, whose own options are its business.
	 * ':': report a missing argument as ':', so the messages are ours.
	 */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:r:h", options, NULL)) != -1) {
		switch (c) {
		case 'r':
			root = optarg;
			break;
		case 'h':
			show_usage(stdout);
			return 0;
		default:
			/* optopt names a bad short option; a bad long one is the argument just read. */
			if (optopt)
				fprintf(stderr, "%s: option '-%c' %s\n", PROG_NAME, optopt,
					c == ':' ? "needs an argument" : "is unknown");
			else
				fprintf(stderr, "%s: option '%s' %s\n", PROG_NAME, argv[optind - 1],
					c == ':' ? "needs an argument" : "is unknown");
			show_usage(stderr);
			return 1;
		}
	}
	if (root && !root[0]) {
		fprintf(stderr, "%s: -r needs a directory\n", PROG_NAME);
		return 1;
	}
	/* The same default as mwinsd's and mwrun's, so that all of them meet in one registry. */
	if (!root)
		root = mw_registry_root();
	if (optind >= argc) {
		show_usage(stderr);
		return 1;
	}

	for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (!strcmp(argv[optind], subcommands[i].name))
			return subcommands[i].function(root, argc - optind, argv + optind);

	fprintf(stderr, "%s: unknown subcommand '%s'\n", PROG_NAME, argv[optind]);
	show_usage(stderr);
	return 1;
}
