/*
 * client.c: mwctl's side of mwinsd's control API (docs/telemetry.md,
 * "Control API"). It finds the instance to talk to in the registry, connects
 * to its control socket ROOT/ins/ID/ctl, and exchanges JSON lines: one
 * request out, one answer in, in order, over one connection that may carry
 * many requests (top and capture poll over one).
 *
 * mwinsd is trusted to act, not to be well-formed: an answer is bounded in
 * size and time, must be a JSON object with a boolean "ok", and any text from
 * it is cleaned of control characters before it reaches a terminal.
 *
 * Also here: the few parsers and the output cleaner that more than one
 * subcommand uses.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

volatile sig_atomic_t ctl_stopping;

/* ---- output ---- */

/*
 * Length of the UTF-8 sequence at s when it is well-formed and visible, or 0
 * when it is malformed or a control character (C0, DEL, or C1: U+0080 to
 * U+009F, which some terminals obey as escapes).
 */
static size_t utf8_visible(const unsigned char *s)
{
	static const uint32_t min_for_len[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	uint32_t c = s[0];
	size_t n, k;

	if (c < 0x80)
		return (c < 0x20 || c == 0x7f) ? 0 : 1;
	if ((c & 0xe0) == 0xc0) {
		n = 2;
		c &= 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3;
		c &= 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4;
		c &= 0x07;
	} else {
		return 0;
	}
	/* A NUL fails the continuation test, so this never reads past the string. */
	for (k = 1; k < n; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[k] & 0x3f);
	}
	if (c < min_for_len[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff) || c < 0xa0)
		return 0;
	return n;
}

void ctl_text_safe(const char *in, char *out, size_t size, bool nospace)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t o = 0, mark = 0; /* mark: the last cut point that leaves room for "..." */

	while (*s) {
		size_t n = utf8_visible(s), len = n ? n : 1;
		const unsigned char *piece = s;
		unsigned char repl;

		if (!n || (nospace && *s == ' ')) {
			repl = n ? '_' : '?';
			piece = &repl;
		}
		if (o + len > size - 1) {
			memcpy(out + mark, "...", 4);
			return;
		}
		memcpy(out + o, piece, len);
		o += len;
		s += len;
		if (o + 4 <= size)
			mark = o;
	}
	out[o] = '\0';
}

/* ---- parsing arguments ---- */

int ctl_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		unsigned int d;

		if (*s < '0' || *s > '9')
			return -EINVAL;
		d = (unsigned int)(*s - '0');
		if (v > (max - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	if (v < min)
		return -ERANGE;
	*out = v;
	return 0;
}

int ctl_parse_seconds(const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (*end == 's' && end[1] == '\0')
		end++;
	if (errno || *end || v != v)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

void ctl_opt_complain(const char *cmd, int c, int opt, const char *arg)
{
	if (opt)
		fprintf(stderr, "%s: %s: option '-%c' %s\n", PROG_NAME, cmd, opt,
			c == ':' ? "needs an argument" : "is unknown");
	else
		fprintf(stderr, "%s: %s: option '%s' %s\n", PROG_NAME, cmd, arg,
			c == ':' ? "needs an argument" : "is unknown");
}

double ctl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- finding the instance ---- */

int ctl_target_find(const char *root, const char *id, struct ctl_target *t)
{
	char safe[REG_ID_MAX * 3 + 8], list[256];
	const struct reg_instance *found = NULL;
	struct registry reg;
	struct timespec now;
	struct health h;
	size_t i, live = 0;
	int err = -ENOENT;

	memset(t, 0, sizeof(*t));
	if (registry_load(root, &reg) < 0) {
		ctl_text_safe(root, list, sizeof(list), false);
		fprintf(stderr, "%s: cannot read registry %s: %s\n", PROG_NAME, list, reg.fatal);
		err = -EIO;
		goto out;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	list[0] = '\0';
	for (i = 0; i < reg.n_ins; i++) {
		const struct reg_instance *in = &reg.ins[i];

		if (id) {
			if (strcmp(in->id, id))
				continue;
			status_health(in, &now, &h);
			if (!h.alive) {
				fprintf(stderr, "%s: INS %s is not running: %s\n", PROG_NAME, in->id, h.reason);
				err = -ESRCH;
				goto out;
			}
			found = in;
			break;
		}
		status_health(in, &now, &h);
		if (!h.alive)
			continue;
		/* Ids are [A-Za-z0-9._-]: safe to print as they are. */
		if (strlen(list) + strlen(in->id) + 8 < sizeof(list))
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", live ? ", " : "", in->id);
		live++;
		found = in;
	}
	if (id && !found) {
		ctl_text_safe(id, safe, sizeof(safe), false);
		fprintf(stderr, "%s: no INS '%s' in the registry\n", PROG_NAME, safe);
		goto out;
	}
	if (!id && live == 0) {
		fprintf(stderr, "%s: no INS running\n", PROG_NAME);
		goto out;
	}
	if (!id && live > 1) {
		fprintf(stderr, "%s: %zu INS are running (%s): choose one with -i ID\n", PROG_NAME, live, list);
		err = -EEXIST;
		goto out;
	}
	if (snprintf(t->dir, sizeof(t->dir), "%s/ins/%s", root, found->id) >= (int)sizeof(t->dir)) {
		fprintf(stderr, "%s: registry path too long\n", PROG_NAME);
		err = -ENAMETOOLONG;
		goto out;
	}
	memcpy(t->id, found->id, sizeof(t->id));
	t->root = root;
	t->pid = found->pid;
	err = 0;
out:
	registry_free(&reg);
	return err;
}

/* ---- connecting ---- */

int ctl_unix_connect(const char *dir, const char *name, bool must_be_socket, int timeout_ms, int *fdp)
{
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int dfd, fd = -1, err = 0;
	struct stat st;

	dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	if (must_be_socket) {
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			err = -errno;
			goto out;
		}
		if (!S_ISSOCK(st.st_mode)) {
			err = -ENOTSOCK;
			goto out;
		}
	}
	/* A path too long for sun_path is reached through the directory descriptor we hold. */
	if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, name) >= (int)sizeof(sa.sun_path) &&
	    snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dfd, name) >=
		    (int)sizeof(sa.sun_path)) {
		err = -ENAMETOOLONG;
		goto out;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	/* On AF_UNIX, SO_SNDTIMEO bounds a connect to a full backlog as well as writes. */
	if (timeout_ms > 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		/* A connect that a signal interrupted may have gone through: retrying says so with EISCONN. */
		if (errno == EISCONN)
			break;
		if (errno == EINTR && !ctl_stopping)
			continue;
		err = errno == EINPROGRESS ? -ETIMEDOUT : -errno;
		close(fd);
		fd = -1;
		goto out;
	}
	*fdp = fd;
out:
	close(dfd);
	return err;
}

int ctl_conn_open(const struct ctl_target *t, struct ctl_conn *c)
{
	int err;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	memcpy(c->id, t->id, sizeof(c->id));
	err = ctl_unix_connect(t->dir, "ctl", true, CTL_TIMEOUT_MS, &c->fd);
	if (err == -ENOENT)
		fprintf(stderr, "%s: INS %s has no control socket (an mwinsd without the control API?)\n",
			PROG_NAME, t->id);
	else if (err == -ENOTSOCK)
		fprintf(stderr, "%s: ins/%s/ctl is not a socket\n", PROG_NAME, t->id);
	else if (err == -EACCES || err == -EPERM)
		fprintf(stderr, "%s: cannot connect to INS %s: %s (only mwinsd's user and root may)\n",
			PROG_NAME, t->id, strerror(-err));
	else if (err)
		fprintf(stderr, "%s: cannot connect to INS %s: %s\n", PROG_NAME, t->id, strerror(-err));
	return err;
}

void ctl_conn_close(struct ctl_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	c->fd = -1;
	c->buf = NULL;
	c->len = c->cap = 0;
}

/* ---- one exchange ---- */

static int conn_send(struct ctl_conn *c, const char *line, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(c->fd, line + off, len - off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR && !ctl_stopping)
				continue;
			if (errno == EINTR)
				return -EINTR;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				fprintf(stderr, "%s: mwinsd (INS %s) does not read its control socket\n",
					PROG_NAME, c->id);
				return -ETIMEDOUT;
			}
			fprintf(stderr, "%s: cannot send to INS %s: %s\n", PROG_NAME, c->id, strerror(errno));
			return -errno;
		}
		off += (size_t)n;
	}
	return 0;
}

/* Reads until c->buf holds a whole line; returns its length (without '\n') or a negative errno. */
static long conn_recv_line(struct ctl_conn *c)
{
	double deadline = ctl_now() + CTL_TIMEOUT_MS / 1000.0;
	size_t scanned = 0;

	for (;;) {
		char *nl = c->len > scanned ? memchr(c->buf + scanned, '\n', c->len - scanned) : NULL;
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		double left;
		ssize_t n;
		int r;

		if (nl)
			return nl - c->buf;
		scanned = c->len;
		if (c->len > CTL_ANSWER_MAX) {
			fprintf(stderr, "%s: mwinsd's answer is larger than %d MiB\n", PROG_NAME,
				CTL_ANSWER_MAX >> 20);
			return -EMSGSIZE;
		}
		if (c->cap - c->len < 65536) {
			size_t ncap = c->cap ? c->cap * 2 : 65536;
			char *p;

			if (ncap > CTL_ANSWER_MAX + 65536)
				ncap = CTL_ANSWER_MAX + 65536;
			p = realloc(c->buf, ncap);
			if (!p) {
				fprintf(stderr, "%s: out of memory\n", PROG_NAME);
				return -ENOMEM;
			}
			c->buf = p;
			c->cap = ncap;
		}
		left = deadline - ctl_now();
		if (left <= 0) {
			fprintf(stderr, "%s: mwinsd (INS %s) did not answer within %d s\n", PROG_NAME, c->id,
				CTL_TIMEOUT_MS / 1000);
			return -ETIMEDOUT;
		}
		r = poll(&pfd, 1, (int)(left * 1000) + 1);
		if (r < 0 && errno == EINTR) {
			if (ctl_stopping)
				return -EINTR;
			continue;
		}
		if (r <= 0)
			continue;
		n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fprintf(stderr, "%s: cannot read from INS %s: %s\n", PROG_NAME, c->id, strerror(errno));
			return -errno;
		}
		if (n == 0) {
			fprintf(stderr, "%s: mwinsd (INS %s) closed the control connection without answering\n",
				PROG_NAME, c->id);
			return -ECONNRESET;
		}
		c->len += (size_t)n;
	}
}

int ctl_conn_call(struct ctl_conn *c, json_t *req, json_t **answer)
{
	char safe[1024], *line;
	json_error_t jerr;
	json_t *a = NULL, *ok, *error;
	size_t len;
	long n;
	int err;

	*answer = NULL;
	line = json_dumps(req, JSON_COMPACT);
	if (!line) {
		fprintf(stderr, "%s: cannot build the request (out of memory, or text that is not UTF-8)\n",
			PROG_NAME);
		return -ENOMEM;
	}
	len = strlen(line);
	if (len + 1 > CTL_REQUEST_MAX) {
		fprintf(stderr, "%s: request larger than %d KiB\n", PROG_NAME, CTL_REQUEST_MAX >> 10);
		free(line);
		return -EMSGSIZE;
	}
	line[len] = '\n';   /* json_dumps's NUL becomes the line end; the length is kept apart */
	err = conn_send(c, line, len + 1);
	free(line);
	if (err)
		return err;

	n = conn_recv_line(c);
	if (n < 0)
		return (int)n;
	a = json_loadb(c->buf, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
	/* Keep what followed the line: answers come in order, one per request. */
	memmove(c->buf, c->buf + n + 1, c->len - (size_t)n - 1);
	c->len -= (size_t)n + 1;
	if (!a) {
		ctl_text_safe(jerr.text, safe, sizeof(safe), false);
		fprintf(stderr, "%s: mwinsd's answer is not JSON: %s\n", PROG_NAME, safe);
		return -EPROTO;
	}
	ok = json_object_get(a, "ok");
	if (!json_is_object(a) || !json_is_boolean(ok)) {
		fprintf(stderr, "%s: mwinsd's answer has no \"ok\"\n", PROG_NAME);
		json_decref(a);
		return -EPROTO;
	}
	if (!json_is_true(ok)) {
		error = json_object_get(a, "error");
		ctl_text_safe(json_is_string(error) ? json_string_value(error) : "(no reason given)", safe,
			      sizeof(safe), false);
		fprintf(stderr, "%s: mwinsd said: %s\n", PROG_NAME, safe);
		json_decref(a);
		return -EREMOTEIO;
	}
	*answer = a;
	return 0;
}

int ctl_request(const char *root, const char *id, json_t *req, json_t **answer)
{
	struct ctl_target t;
	struct ctl_conn c;
	int err;

	*answer = NULL;
	if (!req) {
		fprintf(stderr, "%s: out of memory\n", PROG_NAME);
		return -ENOMEM;
	}
	err = ctl_target_find(root, id, &t);
	if (err)
		return err;
	err = ctl_conn_open(&t, &c);
	if (err)
		return err;
	err = ctl_conn_call(&c, req, answer);
	ctl_conn_close(&c);
	return err;
}

int ctl_simple_main(const char *root, const char *id, json_t *req, json_t **answer)
{
	json_t *a = NULL;
	int err;

	err = ctl_request(root, id, req, &a);
	json_decref(req);
	if (err)
		return 1;
	if (answer)
		*answer = a;
	else
		json_decref(a);
	return 0;
}

int ctl_finish(int status)
{
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "%s: cannot write output\n", PROG_NAME);
		return 1;
	}
	return status;
}

bool ctl_args_simple(const char *cmd, int argc, char *argv[], int nmin, int nmax,
		     void (*usage)(FILE *f), const char **id, int *first, int *status)
{
	static const struct option options[] = {
		{ "id",   required_argument, NULL, 'i' },
		{ "help", no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, n;

	optind = 0;
	opterr = 0;
	*id = NULL;
	while ((c = getopt_long(argc, argv, ":i:h", options, NULL)) != -1) {
		switch (c) {
		case 'i':
			*id = optarg;
			break;
		case 'h':
			usage(stdout);
			*status = 0;
			return true;
		default:
			ctl_opt_complain(cmd, c, optopt, argv[optind - 1]);
			usage(stderr);
			*status = 1;
			return true;
		}
	}
	n = argc - optind;
	if (n < nmin || n > nmax) {
		if (n < nmin)
			fprintf(stderr, "%s: %s: missing argument\n", PROG_NAME, cmd);
		else
			fprintf(stderr, "%s: %s: unexpected argument '%s'\n", PROG_NAME, cmd, argv[optind + nmax]);
		usage(stderr);
		*status = 1;
		return true;
	}
	*first = optind;
	return false;
}
