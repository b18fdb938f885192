/*
 * block.c: `mwctl block CIDR[:PORT[-PORT]] [--for DURATION]`: a run-time deny
 * rule; new connects and datagrams to the destination are refused
 * (ECONNREFUSED, EPERM), flows already up are left alone. It is evaluated
 * before the file's rules, survives a policy reload, and ends with `mwctl
 * unblock` or when DURATION has passed.
 *
 * The destination is checked here, so that a typo gets a precise message and
 * mwinsd gets a canonical CIDR.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

/* A parsed destination: the canonical "ADDR/LEN" and the port ("P" or "LO-HI"), "" for any. */
struct block_dest {
	char cidr[INET6_ADDRSTRLEN + 4];
	char port[12];
};

static void block_usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [-r DIR] block [-i ID] CIDR[:PORT[-PORT]] [--for DURATION]\n"
		"  Denies new connects and datagrams to CIDR (an address, or ADDR/LEN), on PORT or\n"
		"  the range PORT-PORT if given. IPv6: [ADDR/LEN]:PORT, or ADDR/LEN without a port.\n"
		"  --for DURATION  remove the rule after N s, m, h or d (e.g. 10m)\n"
		"  Prints the rule's name ('rule NAME'), for 'mwctl unblock'.\n",
		PROG_NAME);
}

/* "ADDR" or "ADDR/LEN" of family fam (0: either) into d->cidr. Returns 0 or -EINVAL. */
static int block_cidr_parse(char *s, int fam, struct block_dest *d)
{
	unsigned char bin[sizeof(struct in6_addr)];
	char canon[INET6_ADDRSTRLEN], *slash = strchr(s, '/');
	uint64_t len;

	if (slash)
		*slash = '\0';
	if ((fam == 0 || fam == AF_INET) && inet_pton(AF_INET, s, bin) == 1)
		fam = AF_INET;
	else if ((fam == 0 || fam == AF_INET6) && inet_pton(AF_INET6, s, bin) == 1)
		fam = AF_INET6;
	else
		return -EINVAL;
	len = fam == AF_INET ? 32 : 128;
	if (slash && ctl_parse_u64(slash + 1, 0, len, &len))
		return -EINVAL;
	inet_ntop(fam, bin, canon, sizeof(canon));
	snprintf(d->cidr, sizeof(d->cidr), "%s/%u", canon, (unsigned int)len);
	return 0;
}

/* "P" or "LO-HI", 1 to 65535, LO <= HI, into d->port. Returns 0 or -EINVAL. */
static int block_port_parse(char *s, struct block_dest *d)
{
	char *dash = strchr(s, '-');
	uint64_t lo, hi;

	if (dash)
		*dash = '\0';
	if (ctl_parse_u64(s, 1, 65535, &lo))
		return -EINVAL;
	hi = lo;
	if (dash && (ctl_parse_u64(dash + 1, 1, 65535, &hi) || hi < lo))
		return -EINVAL;
	if (hi == lo)
		snprintf(d->port, sizeof(d->port), "%u", (unsigned int)lo);
	else
		snprintf(d->port, sizeof(d->port), "%u-%u", (unsigned int)lo, (unsigned int)hi);
	return 0;
}

static int block_dest_parse(const char *arg, struct block_dest *d)
{
	char buf[128], *addr = buf, *port = NULL, *colon;
	int fam = 0;

	memset(d, 0, sizeof(*d));
	if (strlen(arg) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, arg);
	if (buf[0] == '[') {
		char *close = strchr(buf, ']');

		if (!close || (close[1] && close[1] != ':'))
			return -EINVAL;
		*close = '\0';
		addr = buf + 1;
		port = close[1] ? close + 2 : NULL;
		fam = AF_INET6;
	} else if ((colon = strchr(buf, ':')) && !strchr(colon + 1, ':')) {
		/* One colon: IPv4 with a port. More than one: IPv6 without a port. */
		*colon = '\0';
		port = colon + 1;
		fam = AF_INET;
	}
	if (block_cidr_parse(addr, fam, d))
		return -EINVAL;
	if (port && block_port_parse(port, d))
		return -EINVAL;
	return 0;
}

/* "N" (seconds) or "N" followed by s, m, h or d, N > 0, into "N<unit>". Returns 0 or -EINVAL. */
static int block_duration_parse(const char *s, char *out, size_t size)
{
	size_t n = strspn(s, "0123456789");
	char digits[12];
	uint64_t v;

	if (n == 0 || n >= sizeof(digits) || (s[n] && (!strchr("smhd", s[n]) || s[n + 1])))
		return -EINVAL;
	memcpy(digits, s, n);
	digits[n] = '\0';
	if (ctl_parse_u64(digits, 1, 100000000, &v))
		return -EINVAL;
	snprintf(out, size, "%u%c", (unsigned int)v, s[n] ? s[n] : 's');
	return 0;
}

int block_main(const char *root, int argc, char *argv[])
{
	static const struct option options[] = {
		{ "id",   required_argument, NULL, 'i' },
		{ "for",  required_argument, NULL, 'f' },
		{ "help", no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *id = NULL, *dur_arg = NULL;
	char dur[16], safe[128];
	struct block_dest d;
	json_t *req, *answer, *rule;
	int c, bad = 0;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":i:h", options, NULL)) != -1) {
		switch (c) {
		case 'i':
			id = optarg;
			break;
		case 'f':
			dur_arg = optarg;
			break;
		case 'h':
			block_usage(stdout);
			return 0;
		default:
			ctl_opt_complain("block", c, optopt, argv[optind - 1]);
			block_usage(stderr);
			return 1;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "%s: block: %s\n", PROG_NAME,
			argc - optind < 1 ? "missing destination" : "one destination at a time");
		block_usage(stderr);
		return 1;
	}
	if (block_dest_parse(argv[optind], &d)) {
		ctl_text_safe(argv[optind], safe, sizeof(safe), false);
		fprintf(stderr, "%s: block: '%s' is not CIDR[:PORT[-PORT]] ([ADDR/LEN]:PORT for IPv6)\n",
			PROG_NAME, safe);
		return 1;
	}
	if (dur_arg && block_duration_parse(dur_arg, dur, sizeof(dur))) {
		ctl_text_safe(dur_arg, safe, sizeof(safe), false);
		fprintf(stderr, "%s: block: --for '%s' is not a duration (30s, 10m, 2h, 1d)\n", PROG_NAME,
			safe);
		return 1;
	}

	req = json_pack("{s:s, s:s}", "cmd", "block", "cidr", d.cidr);
	if (req && d.port[0])
		bad |= json_object_set_new(req, "port", json_string(d.port));
	if (req && dur_arg)
		bad |= json_object_set_new(req, "for", json_string(dur));
	if (bad) {
		json_decref(req);
		req = NULL;
	}
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
