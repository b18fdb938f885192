/*
 * runner.c: `conform run` and `conform list`.
 *
 * Each case runs in its own forked process, as libuv's runner does: a case that crashes, hangs or leaves state behind
 * (a handler, a thread, an fd) cannot spoil the next one. The child arms an alarm with the case's timeout and writes
 * its outcome into a pipe as it goes; the runner prints "name: outcome" once the child is gone, adding
 * FAIL(timeout) or FAIL(signal SIG...) when it did not end by itself.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conform.h"

static const struct conform_case {
	const char *name;
	void (*fn)(void);
	unsigned timeout_s;
} cases[] = {
#define X(name, timeout_s) { #name, case_##name, timeout_s },
	CONFORM_CASES(X)
#undef X
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

static void run_usage(void)
{
	fprintf(stderr, "usage: conform run --peer4 ADDR --peer6 ADDR6 --port P --blackhole ADDR [--only NAME[,NAME]]...\n");
}

/* Runs one case in a child; fills out with its outcome, without the name. */
static void case_run(const struct conform_case *c, char *out, size_t outsz)
{
	int p[2];
	size_t len = 0;
	out[0] = '\0';
	if (pipe(p) < 0) {
		snprintf(out, outsz, " FAIL(runner: pipe: %s)", errno_name(errno));
		return;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(out, outsz, " FAIL(runner: fork: %s)", errno_name(errno));
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pid == 0) {
		close(p[0]);
		outcome_open(p[1]);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGALRM, SIG_DFL);
		alarm(c->timeout_s);
		c->fn();
		_exit(0);
	}
	close(p[1]);
	for (;;) {
		char buf[1024];
		ssize_t r = read(p[0], buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		/* Keep what fits; go on draining so that the child never blocks on a full pipe. */
		size_t take = (size_t)r;
		if (take > outsz - 1 - len)
			take = outsz - 1 - len;
		memcpy(out + len, buf, take);
		len += take;
		out[len] = '\0';
	}
	close(p[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			snprintf(out + len, outsz - len, " FAIL(runner: waitpid: %s)", errno_name(errno));
			return;
		}
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		if (sig == SIGALRM)
			snprintf(out + len, outsz - len, " FAIL(timeout)");
		else
			snprintf(out + len, outsz - len, " FAIL(signal SIG%s)", sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
	} else if (WEXITSTATUS(status) != 0 && !strstr(out, "FAIL")) {
		snprintf(out + len, outsz - len, " FAIL(exit %d)", WEXITSTATUS(status));
	}
}

static bool selected(const char *name, char **only, int nonly)
{
	if (nonly == 0)
		return true;
	for (int i = 0; i < nonly; i++) {
		/* --only takes a comma-separated list. */
		const char *s = only[i];
		size_t n = strlen(name);
		while (*s) {
			const char *comma = strchr(s, ',');
			size_t len = comma ? (size_t)(comma - s) : strlen(s);
			if (len == n && strncmp(s, name, n) == 0)
				return true;
			s += len + (comma ? 1 : 0);
		}
	}
	return false;
}

int runner_main(int argc, char **argv)
{
	char *only[64];
	int nonly = 0;
	bool have4 = false, have6 = false, haveport = false, haveblack = false;
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (!val) {
			run_usage();
			return 2;
		}
		i++;
		if (strcmp(opt, "--peer4") == 0)
			have4 = inet_pton(AF_INET, val, &conform_ctx.peer4) == 1;
		else if (strcmp(opt, "--peer6") == 0)
			have6 = inet_pton(AF_INET6, val, &conform_ctx.peer6) == 1;
		else if (strcmp(opt, "--blackhole") == 0)
			haveblack = inet_pton(AF_INET, val, &conform_ctx.blackhole4) == 1;
		else if (strcmp(opt, "--port") == 0) {
			char *end;
			unsigned long port = strtoul(val, &end, 10);
			haveport = *end == '\0' && port > 0 && port + PEER_CLOSED <= 65535;
			conform_ctx.port = (uint16_t)port;
		} else if (strcmp(opt, "--only") == 0 && nonly < 64)
			only[nonly++] = (char *)val;
		else {
			run_usage();
			return 2;
		}
	}
	if (!have4 || !have6 || !haveport || !haveblack) {
		run_usage();
		return 2;
	}
	for (int i = 0; i < nonly; i++) {
		/* A misspelt --only must not pass as an empty run. */
		char *copy = strdup(only[i]);
		for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
			bool known = false;
			for (size_t c = 0; c < NCASES; c++)
				known |= strcmp(cases[c].name, tok) == 0;
			if (!known) {
				fprintf(stderr, "conform run: no case named '%s' (see conform list)\n", tok);
				free(copy);
				return 2;
			}
		}
		free(copy);
	}

	/* A case's peer may vanish mid-write: that must show as EPIPE in its outcome, not kill the runner. */
	signal(SIGPIPE, SIG_IGN);
	unsigned passed = 0, failed = 0;
	for (size_t c = 0; c < NCASES; c++) {
		char out[4096];
		if (!selected(cases[c].name, only, nonly))
			continue;
		case_run(&cases[c], out, sizeof(out));
		if (strstr(out, "FAIL"))
			failed++;
		else
			passed++;
		printf("%s:%s\n", cases[c].name, out[0] ? out : " -");
		fflush(stdout);
	}
	printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}

int runner_list(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	for (size_t c = 0; c < NCASES; c++)
		printf("%s\n", cases[c].name);
	return 0;
}
