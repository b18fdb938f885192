/*
 * main.c: the conformance program's subcommands.
 *
 *     conform peer --port P        the helper peer (run it in the namespace that has the network)
 *     conform run --peer4 A --peer6 B --port P --blackhole C [--only NAME]...
 *                                  runs the cases against the peer, one outcome line each
 *     conform list                 prints the case names
 *
 * `conform exec-helper` is not for people: it is what the exec cases of case-process.c run (see there).
 */
#include <stdio.h>
#include <string.h>

#include "conform.h"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *description;
} subcommands[] = {
	{ "peer", peer_main, "serve the helper services on TCP ports P..P+7 and UDP P..P+2, IPv4 and IPv6" },
	{ "run", runner_main, "run the cases against a peer and print one outcome line per case" },
	{ "list", runner_list, "print the names of the cases" },
	{ "exec-helper", process_helper_main, NULL },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: conform SUBCOMMAND [ARGS]\n");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (subcommands[i].description)
			fprintf(f, "  %-6s %s\n", subcommands[i].name, subcommands[i].description);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (strcmp(argv[1], subcommands[i].name) == 0)
			return subcommands[i].fn(argc - 1, argv + 1);
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "conform: unknown subcommand '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
