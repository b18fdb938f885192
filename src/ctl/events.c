/*
 * events.c: `mwctl events [--count N]`: prints mwinsd's events as they come,
 * one JSON object per line (docs/telemetry.md, "Events"), from the event
 * stream socket whose path is in the registry file ins/ID/netflow.
 *
 * Lines are passed through as mwinsd wrote them, so that jq and friends see
 * the original, once checked: a line must be a JSON object and hold no raw
 * control characters (inside JSON strings they arrive escaped, and an escape
 * is harmless on a terminal). A line that fails is reported and skipped.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctl.h"

#define EVENTS_LINE_MAX (1 << 20)   /* an event is a flow record and a few fields: far below this */

static void events_usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [-r DIR] events [-i ID] [--count N]\n"
		"  Prints the INS's events (JSON lines) as they come, until interrupted or, with\n"
		"  --count, after N events.\n",
		PROG_NAME);
}

static void events_on_signal(int sig)
{
	(void)sig;
	ctl_stopping = 1;
}

/* True when line[0..len) may go to the terminal as it is: a JSON object without raw controls. */
static bool events_line_ok(const char *line, size_t len)
{
	json_t *v;
	size_t i;
	bool ok;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		/* C0 and DEL; and C1 as UTF-8 (0xc2 0x80..0x9f), which JSON allows unescaped. */
		if (c < 0x20 || c == 0x7f || (c == 0xc2 && i + 1 < len && (unsigned char)line[i + 1] < 0xa0))
			return false;
	}
	v = json_loadb(line, len, 0, NULL);
	ok = json_is_object(v);
	json_decref(v);
	return ok;
}

/* Connects to the path in ins/ID/netflow. Returns 0 with *fdp, or a negative errno after printing why. */
int events_connect(const struct ctl_target *t, int *fdp)
{
	char path[REG_VALUE_MAX], why[REG_TEXT_MAX], *slash;
	int err;

	err = registry_value_read(t->root, t->id, "netflow", path, sizeof(path), why, sizeof(why));
	if (err == -ENOENT) {
		fprintf(stderr, "%s: INS %s has no event stream (no ins/%s/netflow)\n", PROG_NAME, t->id, t->id);
		return err;
	}
	if (err) {
		fprintf(stderr, "%s: ins/%s/netflow: %s\n", PROG_NAME, t->id, why);
		return err;
	}
	slash = strrchr(path, '/');
	if (path[0] != '/' || !slash[1]) {
		fprintf(stderr, "%s: ins/%s/netflow: not an absolute socket path\n", PROG_NAME, t->id);
		return -EINVAL;
	}
	*slash = '\0';
	err = ctl_unix_connect(slash == path ? "/" : path, slash + 1, false, CTL_TIMEOUT_MS, fdp);
	*slash = '/';
	if (err) {
		char safe[256];

		ctl_text_safe(path, safe, sizeof(safe), false);
		fprintf(stderr, "%s: cannot connect to the event stream %s: %s\n", PROG_NAME, safe,
			strerror(-err));
	}
	return err;
}

int events_main(const char *root, int argc, char *argv[])
{
	static const struct option options[] = {
		{ "id",    required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'n' },
		{ "help",  no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sigaction sa = { .sa_handler = events_on_signal };
	uint64_t count = 0, seen = 0, skipped = 0;
	size_t len = 0, cap = 65536, start;
	const char *id = NULL;
	struct ctl_target t;
	int c, fd = -1, ret = 1;
	char *buf = NULL;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":i:n:h", options, NULL)) != -1) {
		switch (c) {
		case 'i':
			id = optarg;
			break;
		case 'n':
			if (ctl_parse_u64(optarg, 1, UINT64_MAX, &count)) {
				fprintf(stderr, "%s: events: --count needs a positive number\n", PROG_NAME);
				return 1;
			}
			break;
		case 'h':
			events_usage(stdout);
			return 0;
		default:
			ctl_opt_complain("events", c, optopt, argv[optind - 1]);
			events_usage(stderr);
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: events: unexpected argument '%s'\n", PROG_NAME, argv[optind]);
		events_usage(stderr);
		return 1;
	}
	if (ctl_target_find(root, id, &t) || events_connect(&t, &fd))
		return 1;
	/* No SA_RESTART: a signal must wake the poll below. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	buf = malloc(cap);
	if (!buf) {
		fprintf(stderr, "%s: out of memory\n", PROG_NAME);
		goto out;
	}

	while (!ctl_stopping && (!count || seen < count)) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;
		char *nl;

		if (len == cap) {
			char *p;

			if (cap >= EVENTS_LINE_MAX) {
				fprintf(stderr, "%s: events: a line longer than %d bytes\n", PROG_NAME,
					EVENTS_LINE_MAX);
				goto out;
			}
			p = realloc(buf, cap * 2);
			if (!p) {
				fprintf(stderr, "%s: out of memory\n", PROG_NAME);
				goto out;
			}
			buf = p;
			cap *= 2;
		}
		if (poll(&pfd, 1, -1) < 0)
			continue;   /* EINTR: the loop condition looks at ctl_stopping */
		n = recv(fd, buf + len, cap - len, 0);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fprintf(stderr, "%s: events: %s\n", PROG_NAME, strerror(errno));
			goto out;
		}
		if (n == 0) {
			fprintf(stderr, "%s: events: mwinsd closed the event stream\n", PROG_NAME);
			goto out;
		}
		len += (size_t)n;
		start = 0;
		while ((!count || seen < count) && (nl = memchr(buf + start, '\n', len - start))) {
			size_t l = (size_t)(nl - (buf + start));

			if (events_line_ok(buf + start, l)) {
				if (fwrite(buf + start, 1, l + 1, stdout) != l + 1 || fflush(stdout) == EOF) {
					fprintf(stderr, "%s: cannot write output\n", PROG_NAME);
					goto out;
				}
				seen++;
			} else if (skipped++ < 10) {
				fprintf(stderr, "%s: events: skipped a line that is not a clean JSON object\n",
					PROG_NAME);
			}
			start += l + 1;
		}
		memmove(buf, buf + start, len - start);
		len -= start;
	}
	ret = 0;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return ctl_finish(ret);
}
