/*
 * top.c: `mwctl top`: a live view of an INS's flows, busiest first. It asks
 * mwinsd for "flows" every interval over one control connection and computes
 * each flow's current rate from the byte counts' change since the last poll.
 *
 * On a terminal it redraws in place (plain ANSI: home, erase; no curses) on
 * the alternate screen, reads keys without echo ('q' quits), and puts the
 * terminal back as it found it however it ends (q, --iterations, SIGINT,
 * SIGTERM, an error). When stdout is not a terminal it prints each frame after
 * the previous one, without escapes, so it can be logged or tested.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

/* A flow's counts at the previous poll, to compute rates from. */
struct top_prev {
	char uid[FLOW_UID_MAX + 1];
	uint64_t out, in;
};

/* One row of a frame. */
struct top_row {
	const struct ctl_flow *f;
	double rate_out, rate_in;             /* bytes per second; -1: not known yet */
};

struct top_state {
	bool tty_out, tty_in, stdin_open;
	struct termios saved;                 /* stdin's settings, restored at the end */
	bool termios_saved;
	int saved_stderr;                     /* -1, or stderr's descriptor while it goes to held_stderr */
	FILE *held_stderr;                    /* messages held back while the alternate screen is up */
	struct top_prev *prev;                /* sorted by uid */
	size_t n_prev;
	double prev_time;                     /* ctl_now() of the previous poll; 0: none yet */
};

static void top_usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [-r DIR] top [-i ID] [--interval S] [--iterations N]\n"
		"  A live view of the INS's flows sorted by their current rate, redrawn every S\n"
		"  seconds (default 1). 'q' quits, as does the end of N frames. Without a terminal,\n"
		"  frames are printed one after another.\n",
		PROG_NAME);
}

static void top_on_signal(int sig)
{
	(void)sig;
	ctl_stopping = 1;
}

/* ---- the terminal ---- */

static void top_term_enter(struct top_state *st)
{
	struct termios raw;

	if (st->tty_in && tcgetattr(STDIN_FILENO, &st->saved) == 0) {
		st->termios_saved = true;
		raw = st->saved;
		/* Keys one at a time, not echoed; ISIG stays, so ^C is SIGINT and lands in our handler. */
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	}
	st->saved_stderr = -1;
	if (st->tty_out) {
		/*
		 * A message written to the terminal now would vanish with the
		 * alternate screen: hold stderr in a file and show it on leaving.
		 */
		if (isatty(STDERR_FILENO) && (st->held_stderr = tmpfile())) {
			fflush(stderr);
			st->saved_stderr = dup(STDERR_FILENO);
			if (st->saved_stderr < 0 || dup2(fileno(st->held_stderr), STDERR_FILENO) < 0) {
				if (st->saved_stderr >= 0)
					close(st->saved_stderr);
				st->saved_stderr = -1;
				fclose(st->held_stderr);
				st->held_stderr = NULL;
			}
		}
		/* alternate screen, cursor hidden */
		fputs("\033[?1049h\033[?25l", stdout);
		fflush(stdout);
	}
}

static void top_term_leave(struct top_state *st)
{
	if (st->tty_out) {
		fputs("\033[?25h\033[?1049l", stdout);
		fflush(stdout);
	}
	if (st->termios_saved)
		tcsetattr(STDIN_FILENO, TCSANOW, &st->saved);
	if (st->saved_stderr >= 0) {
		char buf[4096];
		size_t n;

		fflush(stderr);
		dup2(st->saved_stderr, STDERR_FILENO);
		close(st->saved_stderr);
		rewind(st->held_stderr);
		while ((n = fread(buf, 1, sizeof(buf), st->held_stderr)) > 0)
			fwrite(buf, 1, n, stderr);
		fclose(st->held_stderr);
	}
}

/* Waits up to secs for 'q'. Returns true when the user asked to quit (or a signal did). */
static bool top_wait(struct top_state *st, double secs)
{
	double deadline = ctl_now() + secs;

	while (!ctl_stopping) {
		struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
		double left = deadline - ctl_now();
		char keys[64];
		ssize_t n, i;
		int r;

		if (left <= 0)
			return false;
		r = poll(&pfd, st->stdin_open ? 1 : 0, (int)(left * 1000) + 1);
		if (r <= 0)
			continue;
		n = read(STDIN_FILENO, keys, sizeof(keys));
		if (n <= 0) {
			/* EOF (or an unreadable stdin): no more keys will come; only the clock counts. */
			if (n == 0 || (errno != EINTR && errno != EAGAIN))
				st->stdin_open = false;
			continue;
		}
		for (i = 0; i < n; i++)
			if (keys[i] == 'q' || keys[i] == 'Q')
				return true;
	}
	return true;
}

/* ---- rates ---- */

static int top_prev_cmp(const void *a, const void *b)
{
	return strcmp(((const struct top_prev *)a)->uid, ((const struct top_prev *)b)->uid);
}

/* Remembers this poll's counts for the next one. Returns 0 or -ENOMEM. */
static int top_prev_save(struct top_state *st, const struct ctl_flows *fl, double now)
{
	struct top_prev *p = calloc(fl->n + 1, sizeof(*p));
	size_t i;

	if (!p)
		return -ENOMEM;
	for (i = 0; i < fl->n; i++) {
		snprintf(p[i].uid, sizeof(p[i].uid), "%s", fl->v[i].uid);
		p[i].out = fl->v[i].bytes_out;
		p[i].in = fl->v[i].bytes_in;
	}
	qsort(p, fl->n, sizeof(*p), top_prev_cmp);
	free(st->prev);
	st->prev = p;
	st->n_prev = fl->n;
	st->prev_time = now;
	return 0;
}

static double top_rate(uint64_t cur, uint64_t old, double secs)
{
	return cur > old ? (double)(cur - old) / secs : 0;
}

/*
 * A flow seen at the previous poll: its counts' change over the time between.
 * A new one: its bytes over its age, or over the interval if it is older (it
 * was missed, or began between two polls). The first frame has no rates.
 */
static void top_rates(const struct top_state *st, const struct ctl_flow *f, double now, struct top_row *r)
{
	struct top_prev key, *p;
	double secs = now - st->prev_time;

	r->f = f;
	r->rate_out = r->rate_in = -1;
	if (st->prev_time == 0 || secs <= 0)
		return;
	snprintf(key.uid, sizeof(key.uid), "%s", f->uid);
	p = bsearch(&key, st->prev, st->n_prev, sizeof(*st->prev), top_prev_cmp);
	if (p) {
		r->rate_out = top_rate(f->bytes_out, p->out, secs);
		r->rate_in = top_rate(f->bytes_in, p->in, secs);
		return;
	}
	if (f->age >= 0 && f->age < secs)
		secs = f->age < 0.05 ? 0.05 : f->age;
	r->rate_out = top_rate(f->bytes_out, 0, secs);
	r->rate_in = top_rate(f->bytes_in, 0, secs);
}

static int top_row_cmp(const void *a, const void *b)
{
	const struct top_row *x = a, *y = b;
	double rx = x->rate_out + x->rate_in, ry = y->rate_out + y->rate_in;
	uint64_t bx = x->f->bytes_out + x->f->bytes_in, by = y->f->bytes_out + y->f->bytes_in;

	if (rx != ry)
		return rx < ry ? 1 : -1;
	if (bx != by)
		return bx < by ? 1 : -1;
	return strcmp(x->f->uid, y->f->uid);
}

/* ---- drawing ---- */

/* Bytes (per second) in powers of 1024, as the policy writes rates: "512", "1.5K", "20.0M". */
static void top_bytes_fmt(double v, char *buf, size_t size)
{
	static const char units[] = "KMGTP";
	int u = -1;

	if (v < 0) {
		snprintf(buf, size, "-");
		return;
	}
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, size, "%.0f", v);
	else
		snprintf(buf, size, "%.1f%c", v, units[u]);
}

/*
 * Writes line to f, cut to cols display columns when cols > 0 (every
 * character counts one: the text is ASCII but for a program's name), and
 * clears the rest of the terminal line when tty.
 */
static void top_line(FILE *f, const char *line, int cols, bool tty)
{
	const char *s = line;
	int n = 0;

	if (cols > 0) {
		for (; *s; s++) {
			if (((unsigned char)*s & 0xc0) != 0x80 && n++ == cols)
				break;
		}
		fwrite(line, 1, (size_t)(s - line), f);
	} else {
		fputs(line, f);
	}
	fputs(tty ? "\033[K\n" : "\n", f);
}

#define TOP_ROW "%-8s %-8s %-5s %-5s %-24s %-24s %-20s %-7s %s"

static int top_draw(struct top_state *st, const char *id, const struct ctl_flows *fl, double now)
{
	char line[512], ro[24], ri[24], to[24], ti[24], local[64], remote[64], who[64], age[24], clock[16];
	double sum_out = 0, sum_in = 0;
	uint64_t tot_out = 0, tot_in = 0;
	struct top_row *rows;
	struct winsize ws;
	int cols = 0, max_rows = -1;
	time_t wall = time(NULL);
	struct tm tm;
	size_t i;

	rows = calloc(fl->n + 1, sizeof(*rows));
	if (!rows)
		return -ENOMEM;
	for (i = 0; i < fl->n; i++) {
		top_rates(st, &fl->v[i], now, &rows[i]);
		if (rows[i].rate_out > 0)
			sum_out += rows[i].rate_out;
		if (rows[i].rate_in > 0)
			sum_in += rows[i].rate_in;
		tot_out += fl->v[i].bytes_out;
		tot_in += fl->v[i].bytes_in;
	}
	qsort(rows, fl->n, sizeof(*rows), top_row_cmp);

	if (st->tty_out && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
		cols = ws.ws_col;
		max_rows = ws.ws_row > 4 ? ws.ws_row - 4 : 1;
	}
	if (st->tty_out)
		fputs("\033[H", stdout);

	localtime_r(&wall, &tm);
	strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
	top_bytes_fmt(st->prev_time ? sum_out : -1, ro, sizeof(ro));
	top_bytes_fmt(st->prev_time ? sum_in : -1, ri, sizeof(ri));
	top_bytes_fmt((double)tot_out, to, sizeof(to));
	top_bytes_fmt((double)tot_in, ti, sizeof(ti));
	snprintf(line, sizeof(line), "INS %s  %s  flows %zu  rate out %s/s in %s/s  bytes out %s in %s%s",
		 id, clock, fl->n, ro, ri, to, ti, st->tty_out ? "  (q quits)" : "");
	top_line(stdout, line, cols, st->tty_out);
	top_line(stdout, "", cols, st->tty_out);
	snprintf(line, sizeof(line), TOP_ROW, "RATE_OUT", "RATE_IN", "STATE", "PROTO", "LOCAL", "REMOTE",
		 "PID/EXE", "AGE", "UID");
	top_line(stdout, line, cols, st->tty_out);
	for (i = 0; i < fl->n; i++) {
		const struct ctl_flow *f = rows[i].f;
		char state[16];

		if (max_rows >= 0 && (int)i >= max_rows) {
			snprintf(line, sizeof(line), "... %zu more", fl->n - i);
			top_line(stdout, line, cols, st->tty_out);
			break;
		}
		top_bytes_fmt(rows[i].rate_out, ro, sizeof(ro));
		top_bytes_fmt(rows[i].rate_in, ri, sizeof(ri));
		ctl_text_safe(*f->state ? f->state : "-", state, sizeof(state), true);
		flow_endpoint_fmt(f->local_h, f->local_p, local, sizeof(local));
		flow_endpoint_fmt(f->remote_h, f->remote_p, remote, sizeof(remote));
		flow_who_fmt(f, who, sizeof(who));
		flow_age_fmt(f->age, age, sizeof(age));
		snprintf(line, sizeof(line), TOP_ROW, ro, ri, state, f->proto, local, remote, who, age, f->uid);
		top_line(stdout, line, cols, st->tty_out);
	}
	if (fl->bad) {
		snprintf(line, sizeof(line), "(%zu malformed records not shown)", fl->bad);
		top_line(stdout, line, cols, st->tty_out);
	}
	/* Erase what the previous, longer frame left below; a blank line between frames otherwise. */
	fputs(st->tty_out ? "\033[J" : "\n", stdout);
	free(rows);
	return fflush(stdout) == EOF || ferror(stdout) ? -EIO : 0;
}

/* ---- the subcommand ---- */

int top_main(const char *root, int argc, char *argv[])
{
	static const struct option options[] = {
		{ "id",         required_argument, NULL, 'i' },
		{ "interval",   required_argument, NULL, 't' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "help",       no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sigaction sa = { .sa_handler = top_on_signal };
	struct top_state st = { 0 };
	uint64_t iterations = 0, frame;
	double interval = 1.0;
	const char *id = NULL;
	struct ctl_target t;
	struct ctl_conn conn;
	int c, err = 0;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":i:h", options, NULL)) != -1) {
		switch (c) {
		case 'i':
			id = optarg;
			break;
		case 't':
			if (ctl_parse_seconds(optarg, 0.1, 3600, &interval)) {
				fprintf(stderr, "%s: top: --interval is seconds, 0.1 to 3600\n", PROG_NAME);
				return 1;
			}
			break;
		case 'n':
			if (ctl_parse_u64(optarg, 1, UINT32_MAX, &iterations)) {
				fprintf(stderr, "%s: top: --iterations needs a positive number\n", PROG_NAME);
				return 1;
			}
			break;
		case 'h':
			top_usage(stdout);
			return 0;
		default:
			ctl_opt_complain("top", c, optopt, argv[optind - 1]);
			top_usage(stderr);
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: top: unexpected argument '%s'\n", PROG_NAME, argv[optind]);
		top_usage(stderr);
		return 1;
	}
	if (ctl_target_find(root, id, &t) || ctl_conn_open(&t, &conn))
		return 1;

	/* No SA_RESTART: a signal must end the waits. SIGHUP too: a closed terminal is a quit. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	st.tty_out = isatty(STDOUT_FILENO);
	st.tty_in = isatty(STDIN_FILENO);
	st.stdin_open = true;
	top_term_enter(&st);

	for (frame = 1; !ctl_stopping; frame++) {
		struct ctl_flows fl;
		double now;

		err = flows_fetch(&conn, &fl);
		if (err)
			break;
		now = ctl_now();
		err = top_draw(&st, t.id, &fl, now);
		if (!err)
			err = top_prev_save(&st, &fl, now);
		flows_free(&fl);
		if (err || (iterations && frame >= iterations))
			break;
		if (top_wait(&st, interval))
			break;
	}

	top_term_leave(&st);
	ctl_conn_close(&conn);
	free(st.prev);
	if (err == -EINTR)
		err = 0;
	if (err == -ENOMEM)
		fprintf(stderr, "%s: out of memory\n", PROG_NAME);
	else if (err == -EIO)
		fprintf(stderr, "%s: cannot write output\n", PROG_NAME);
	return err ? 1 : 0;
}
