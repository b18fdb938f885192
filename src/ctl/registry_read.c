/*
 * registry_read.c: reads the mwcomms registry (DIR/ins/<id>/ and
 * DIR/clients/<pid>/, formats in docs/interfaces.md) into a validated
 * snapshot for mwctl.
 *
 * The registry is written by other processes, any of which may be buggy or
 * hostile, so every file in it is untrusted input. Each file is opened without
 * following symlinks, must be a regular file, is read once with a size bound,
 * and must be valid UTF-8 text without control characters (its values end up
 * on terminals and in JSON). Every value is then parsed strictly. A bad value
 * becomes a message in the errors list of the entry it belongs to; it never
 * stops the scan, and messages never echo the bad bytes back.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"

/* ---- error lists ---- */

/*
 * Appends a message about file `where` to errs. This function can't fail: a
 * message it cannot keep (past REG_ERRORS_MAX, or out of memory) is counted
 * in errs->dropped.
 */
static void __attribute__((format(printf, 3, 0)))
errors_addv(struct reg_errors *errs, const char *where, const char *fmt, va_list ap)
{
	struct reg_error *v;

	if (errs->n >= REG_ERRORS_MAX) {
		errs->dropped++;
		return;
	}
	/* One realloc per message: O(n^2) copying, fine for at most 64 small entries. */
	v = realloc(errs->v, (errs->n + 1) * sizeof(*v));
	if (!v) {
		errs->dropped++;
		return;
	}
	errs->v = v;
	snprintf(v[errs->n].where, sizeof(v[errs->n].where), "%s", where);
	vsnprintf(v[errs->n].text, sizeof(v[errs->n].text), fmt, ap);
	errs->n++;
}

static void __attribute__((format(printf, 3, 4)))
errors_add(struct reg_errors *errs, const char *where, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errors_addv(errs, where, fmt, ap);
	va_end(ap);
}

/* Records a problem with file `where` and returns err, so a reader can end with `return reg_fail(...)`. */
static int __attribute__((format(printf, 4, 5)))
reg_fail(struct reg_errors *errs, const char *where, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errors_addv(errs, where, fmt, ap);
	va_end(ap);
	return err;
}

static void errors_free(struct reg_errors *errs)
{
	free(errs->v);
	memset(errs, 0, sizeof(*errs));
}

/*
 * Writes a printable form of an untrusted directory entry name into out:
 * bytes other than printable ASCII become \xNN, and a long name is cut short
 * with "...". size must be at least 4.
 */
static void name_escape(const char *in, char *out, size_t size)
{
	size_t o = 0;

	for (; *in; in++) {
		unsigned char c = (unsigned char)*in;
		char tmp[5];
		int n;

		if (c > 0x20 && c < 0x7f && c != '\\')
			n = snprintf(tmp, sizeof(tmp), "%c", c);
		else
			n = snprintf(tmp, sizeof(tmp), "\\x%02x", c);
		if (o + (size_t)n > size - 4) {
			memcpy(out + o, "...", 4);
			return;
		}
		memcpy(out + o, tmp, (size_t)n);
		o += (size_t)n;
	}
	out[o] = '\0';
}

/* ---- reading and checking files ---- */

/*
 * Reads dirfd/name into buf, NUL-terminated, and its length into *len; if st
 * is not NULL, also the file's status. The file must be a regular file (not a
 * symlink, FIFO or device) shorter than size bytes, without NUL bytes.
 * Returns 0 or a negative errno, which is also recorded in errs.
 */
static int file_read(int dirfd, const char *name, char *buf, size_t size, size_t *len,
		     struct stat *st, struct reg_errors *errs)
{
	struct stat sb;
	size_t off = 0;
	int fd, err = 0;

	/* O_NONBLOCK: a FIFO planted in the registry must not hang us before fstat() rejects it. */
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		if (err == -ENOENT)
			return reg_fail(errs, name, err, "missing");
		if (err == -ELOOP)
			return reg_fail(errs, name, err, "is a symbolic link (refused)");
		return reg_fail(errs, name, err, "cannot open: %s", strerror(-err));
	}
	if (fstat(fd, &sb) < 0) {
		err = -errno;
		reg_fail(errs, name, err, "cannot stat: %s", strerror(-err));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		err = reg_fail(errs, name, -EINVAL, "not a regular file");
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, buf + off, size - off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			reg_fail(errs, name, err, "cannot read: %s", strerror(-err));
			goto out;
		}
		if (r == 0)
			break;
		off += (size_t)r;
		/* A full buffer leaves no room for the NUL: the file is over the bound. */
		if (off == size) {
			err = reg_fail(errs, name, -EFBIG, "larger than %zu bytes", size - 1);
			goto out;
		}
	}
	if (memchr(buf, '\0', off)) {
		err = reg_fail(errs, name, -EINVAL, "contains a NUL byte");
		goto out;
	}
	buf[off] = '\0';
	*len = off;
	if (st)
		*st = sb;
out:
	close(fd);
	return err;
}

/*
 * Returns NULL when s[0..len) is well-formed UTF-8 without control characters
 * ('\n' is allowed when multiline), else what is wrong with it. Overlong
 * forms, surrogates and C1 controls are refused: they are how escape sequences
 * sneak onto a terminal.
 */
static const char *text_check(const char *str, size_t len, bool multiline)
{
	static const uint32_t min_for_len[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		uint32_t c = s[i];
		size_t n, k;

		if (c < 0x80) {
			n = 1;
		} else if ((c & 0xe0) == 0xc0) {
			n = 2;
			c &= 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 3;
			c &= 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 4;
			c &= 0x07;
		} else {
			return "is not valid UTF-8";
		}
		if (len - i < n)
			return "is not valid UTF-8";
		for (k = 1; k < n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return "is not valid UTF-8";
			c = (c << 6) | (s[i + k] & 0x3f);
		}
		if (c < min_for_len[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return "is not valid UTF-8";
		if ((c < 0x20 && !(multiline && c == '\n')) || (c >= 0x7f && c < 0xa0))
			return "contains control characters";
		i += n;
	}
	return NULL;
}

/*
 * Reads a one-line value into buf: valid text, not empty, at most one
 * trailing newline (which is removed). Returns 0 or a negative errno,
 * recorded in errs.
 */
static int value_read(int dirfd, const char *name, char *buf, size_t size, struct stat *st,
		      struct reg_errors *errs)
{
	const char *why;
	size_t len;
	int err;

	err = file_read(dirfd, name, buf, size, &len, st, errs);
	if (err)
		return err;
	if (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	if (len == 0)
		return reg_fail(errs, name, -EINVAL, "empty");
	if (memchr(buf, '\n', len))
		return reg_fail(errs, name, -EINVAL, "has more than one line");
	why = text_check(buf, len, false);
	if (why)
		return reg_fail(errs, name, -EINVAL, "%s", why);
	return 0;
}

/*
 * Parses a plain decimal number, digits only (no sign, space or hex prefix),
 * not above max. Returns 0, -EINVAL (not a number) or -ERANGE (too large).
 */
static int u64_parse(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return -EINVAL;
	for (; *s; s++) {
		unsigned int d;

		if (*s < '0' || *s > '9')
			return -EINVAL;
		d = (unsigned int)(*s - '0');
		if (d > max || v > (max - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* Reads a one-line decimal value in [min, max]. Returns 0 or a negative errno, recorded in errs. */
static int value_read_u64(int dirfd, const char *name, uint64_t min, uint64_t max,
			  uint64_t *out, struct stat *st, struct reg_errors *errs)
{
	char buf[REG_VALUE_MAX];
	uint64_t v = 0;
	int err;

	err = value_read(dirfd, name, buf, sizeof(buf), st, errs);
	if (err)
		return err;
	err = u64_parse(buf, max, &v);
	if (err == -EINVAL)
		return reg_fail(errs, name, err, "not a decimal number");
	if (err || v < min)
		return reg_fail(errs, name, -ERANGE, "out of range (%" PRIu64 " to %" PRIu64 ")",
				min, max);
	*out = v;
	return 0;
}

/*
 * Reads a multi-line file into a new buffer *bufp (free it), checked as text.
 * Returns 0 or a negative errno, recorded in errs.
 */
static int list_read(int dirfd, const char *name, char **bufp, struct reg_errors *errs)
{
	const char *why;
	size_t len;
	char *buf;
	int err;

	*bufp = NULL;
	buf = malloc(REG_LIST_MAX);
	if (!buf)
		return reg_fail(errs, name, -ENOMEM, "out of memory");
	err = file_read(dirfd, name, buf, REG_LIST_MAX, &len, NULL, errs);
	if (err)
		goto err;
	why = text_check(buf, len, true);
	if (why) {
		err = reg_fail(errs, name, -EINVAL, "%s", why);
		goto err;
	}
	*bufp = buf;
	return 0;
err:
	free(buf);
	return err;
}

/* Lines in buf; a final newline does not start another line. This function can't fail. */
static size_t line_count(const char *buf)
{
	size_t n = 0;

	for (; *buf; buf++)
		if (*buf == '\n' || buf[1] == '\0')
			n++;
	return n;
}

/*
 * Returns the next line at *cursor, NUL-terminated in place, and advances
 * *cursor past it; NULL at the end of the buffer.
 */
static char *line_next(char **cursor)
{
	char *line = *cursor, *nl;

	if (*line == '\0')
		return NULL;
	nl = strchr(line, '\n');
	if (nl) {
		*nl = '\0';
		*cursor = nl + 1;
	} else {
		*cursor = line + strlen(line);
	}
	return line;
}

/* True when id is a valid instance id: 1 to REG_ID_MAX of [A-Za-z0-9._-], not starting with '.'. */
static bool id_valid(const char *id)
{
	size_t n;

	if (id[0] == '.')
		return false;
	for (n = 0; id[n]; n++) {
		char c = id[n];

		if (n == REG_ID_MAX)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return n > 0;
}

/* ---- DIR/ins/<id>/ ---- */

static int instance_read_pid(int fd, struct reg_instance *in)
{
	uint64_t v;
	int err;

	/* pid 0 or a negative pid would make kill(pid, 0) probe a whole process group. */
	err = value_read_u64(fd, "pid", 1, REG_PID_MAX, &v, NULL, &in->errors);
	if (err)
		return err;
	in->pid = (pid_t)v;
	in->has_pid = true;
	return 0;
}

/* The heartbeat's age comes from its mtime; its content, a counter, must still be well-formed. */
static int instance_read_heartbeat(int fd, struct reg_instance *in)
{
	struct stat st;
	uint64_t v;
	int err;

	err = value_read_u64(fd, "heartbeat", 0, UINT64_MAX, &v, &st, &in->errors);
	if (err)
		return err;
	in->heartbeat_mtime = st.st_mtim;
	in->has_heartbeat = true;
	return 0;
}

static int instance_read_sock(int fd, struct reg_instance *in)
{
	char buf[REG_VALUE_MAX];
	size_t len;
	int err;

	err = value_read(fd, "sock", buf, sizeof(buf), NULL, &in->errors);
	if (err)
		return err;
	if (buf[0] != '/')
		return reg_fail(&in->errors, "sock", -EINVAL, "not an absolute path");
	len = strlen(buf);
	if (len >= sizeof(in->sock))
		return reg_fail(&in->errors, "sock", -ENAMETOOLONG,
				"longer than a unix socket path (%zu bytes)", sizeof(in->sock) - 1);
	memcpy(in->sock, buf, len + 1);
	in->has_sock = true;
	return 0;
}

static int instance_read_version(int fd, struct reg_instance *in)
{
	uint64_t v;
	int err;

	err = value_read_u64(fd, "version", 0, UINT32_MAX, &v, NULL, &in->errors);
	if (err)
		return err;
	in->version = (uint32_t)v;
	in->has_version = true;
	return 0;
}

/* Parses "ADDR" or "ADDR/PREFIX" (IPv4 or IPv6) into its canonical text. Returns 0 or -EINVAL. */
static int ip_addr_parse(char *s, struct reg_ip_addr *a)
{
	unsigned char bin[sizeof(struct in6_addr)];
	char canon[INET6_ADDRSTRLEN];
	char *slash = strchr(s, '/');
	uint64_t prefix = 0;

	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, s, bin) == 1)
		a->family = AF_INET;
	else if (inet_pton(AF_INET6, s, bin) == 1)
		a->family = AF_INET6;
	else
		return -EINVAL;
	if (slash && u64_parse(slash + 1, a->family == AF_INET ? 32 : 128, &prefix))
		return -EINVAL;
	if (!inet_ntop(a->family, bin, canon, sizeof(canon)))
		return -EINVAL;
	if (slash)
		snprintf(a->text, sizeof(a->text), "%s/%u", canon, (unsigned int)(prefix & 0xff));
	else
		snprintf(a->text, sizeof(a->text), "%s", canon);
	return 0;
}

static int instance_read_ip_addrs(int fd, struct reg_instance *in)
{
	char *buf, *cursor, *line;
	unsigned int lineno = 0;
	size_t n;
	int err;

	err = list_read(fd, "ip_addrs", &buf, &in->errors);
	if (err)
		return err;
	n = line_count(buf);
	if (n > REG_ADDRS_MAX) {
		err = reg_fail(&in->errors, "ip_addrs", -E2BIG, "more than %d lines", REG_ADDRS_MAX);
		goto out;
	}
	in->ip_addrs = calloc(n ? n : 1, sizeof(*in->ip_addrs));
	if (!in->ip_addrs) {
		err = reg_fail(&in->errors, "ip_addrs", -ENOMEM, "out of memory");
		goto out;
	}
	cursor = buf;
	while ((line = line_next(&cursor))) {
		lineno++;
		if (ip_addr_parse(line, &in->ip_addrs[in->n_ip_addrs])) {
			err = reg_fail(&in->errors, "ip_addrs", -EINVAL,
				       "line %u: not an address (ADDR or ADDR/PREFIX)", lineno);
			goto out;
		}
		in->n_ip_addrs++;
	}
	in->has_ip_addrs = true;
out:
	if (err) {
		free(in->ip_addrs);
		in->ip_addrs = NULL;
		in->n_ip_addrs = 0;
	}
	free(buf);
	return err;
}

enum stats_key {
	STATS_SOCKETS   = 1U << 0,
	STATS_BYTES_IN  = 1U << 1,
	STATS_BYTES_OUT = 1U << 2,
	STATS_CLIENTS   = 1U << 3,
};

static const struct {
	const char *name;
	enum stats_key key;
	bool required;
} stats_keys[] = {
	{ "sockets",   STATS_SOCKETS,   true },
	{ "bytes_in",  STATS_BYTES_IN,  true },
	{ "bytes_out", STATS_BYTES_OUT, true },
	{ "clients",   STATS_CLIENTS,   false },
};

/* True for a plausible counter name, [a-z0-9_]{1,32}: safe to print, and to skip if unknown. */
static bool stats_key_valid(const char *key)
{
	size_t n;

	for (n = 0; key[n]; n++) {
		char c = key[n];

		if (n == 32 || !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return n > 0;
}

static int instance_read_stats(int fd, struct reg_instance *in)
{
	struct reg_net_stats *st = &in->stats;
	char *buf, *cursor, *line;
	unsigned int lineno = 0, seen = 0;
	size_t i;
	int err;

	err = list_read(fd, "network_stats", &buf, &in->errors);
	if (err)
		return err;
	cursor = buf;
	while ((line = line_next(&cursor))) {
		char *value = strchr(line, ' ');
		uint64_t v;

		lineno++;
		if (!value) {
			err = reg_fail(&in->errors, "network_stats", -EINVAL,
				       "line %u: expected 'NAME NUMBER'", lineno);
			goto out;
		}
		*value++ = '\0';
		if (!stats_key_valid(line)) {
			err = reg_fail(&in->errors, "network_stats", -EINVAL,
				       "line %u: not a counter name", lineno);
			goto out;
		}
		err = u64_parse(value, INT64_MAX, &v);
		if (err) {
			reg_fail(&in->errors, "network_stats", err, "line %u: %s: %s", lineno, line,
				 err == -ERANGE ? "number too large" : "not a decimal number");
			goto out;
		}
		for (i = 0; i < sizeof(stats_keys) / sizeof(stats_keys[0]); i++)
			if (!strcmp(line, stats_keys[i].name))
				break;
		/* A counter this mwctl does not know is from a newer mwinsd: skip it. */
		if (i == sizeof(stats_keys) / sizeof(stats_keys[0]))
			continue;
		if (seen & stats_keys[i].key) {
			err = reg_fail(&in->errors, "network_stats", -EINVAL,
				       "line %u: %s appears twice", lineno, line);
			goto out;
		}
		seen |= stats_keys[i].key;
		switch (stats_keys[i].key) {
		case STATS_SOCKETS:   st->sockets = v;   break;
		case STATS_BYTES_IN:  st->bytes_in = v;  break;
		case STATS_BYTES_OUT: st->bytes_out = v; break;
		case STATS_CLIENTS:   st->clients = v;   st->has_clients = true; break;
		}
	}
	for (i = 0; i < sizeof(stats_keys) / sizeof(stats_keys[0]); i++) {
		if (stats_keys[i].required && !(seen & stats_keys[i].key)) {
			err = reg_fail(&in->errors, "network_stats", -EINVAL, "%s missing",
				       stats_keys[i].name);
			goto out;
		}
	}
	in->has_stats = true;
out:
	if (err)
		memset(st, 0, sizeof(*st));
	free(buf);
	return err;
}

/* Parses "PROTO ADDR:PORT", with an IPv6 ADDR in brackets. Returns 0 or -EINVAL. */
static int port_parse(char *line, struct reg_port *p)
{
	unsigned char bin[sizeof(struct in6_addr)];
	char *addr, *colon, *sp = strchr(line, ' ');
	uint64_t port;

	if (!sp)
		return -EINVAL;
	*sp = '\0';
	if (strcmp(line, "tcp") && strcmp(line, "udp"))
		return -EINVAL;
	memcpy(p->proto, line, 4);
	addr = sp + 1;
	if (*addr == '[') {
		char *close = strchr(addr, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		*close = '\0';
		addr++;
		colon = close + 1;
		p->family = AF_INET6;
	} else {
		colon = strrchr(addr, ':');
		if (!colon)
			return -EINVAL;
		p->family = AF_INET;
	}
	*colon = '\0';
	if (inet_pton(p->family, addr, bin) != 1)
		return -EINVAL;
	if (u64_parse(colon + 1, 65535, &port) || port == 0)
		return -EINVAL;
	if (!inet_ntop(p->family, bin, p->addr, sizeof(p->addr)))
		return -EINVAL;
	p->port = (uint16_t)port;
	return 0;
}

static int instance_read_ports(int fd, struct reg_instance *in)
{
	char *buf, *cursor, *line;
	unsigned int lineno = 0;
	size_t n;
	int err;

	err = list_read(fd, "listening_ports", &buf, &in->errors);
	if (err)
		return err;
	n = line_count(buf);
	if (n > REG_PORTS_MAX) {
		err = reg_fail(&in->errors, "listening_ports", -E2BIG, "more than %d lines",
			       REG_PORTS_MAX);
		goto out;
	}
	in->ports = calloc(n ? n : 1, sizeof(*in->ports));
	if (!in->ports) {
		err = reg_fail(&in->errors, "listening_ports", -ENOMEM, "out of memory");
		goto out;
	}
	cursor = buf;
	while ((line = line_next(&cursor))) {
		lineno++;
		if (port_parse(line, &in->ports[in->n_ports])) {
			err = reg_fail(&in->errors, "listening_ports", -EINVAL,
				       "line %u: expected 'tcp|udp ADDR:PORT' ([ADDR] for IPv6)", lineno);
			goto out;
		}
		in->n_ports++;
	}
	in->has_ports = true;
out:
	if (err) {
		free(in->ports);
		in->ports = NULL;
		in->n_ports = 0;
	}
	free(buf);
	return err;
}

static void instance_free(struct reg_instance *in)
{
	free(in->ip_addrs);
	free(in->ports);
	errors_free(&in->errors);
}

/*
 * Fills in (whose id is already set) from insfd/<id>/. Returns 0 once the
 * directory is open, whatever its files hold: each reader records its own
 * failure in in->errors, and one bad file does not hide the others. Returns a
 * negative errno when the directory cannot be opened (-ENOENT if it vanished,
 * -ENOTDIR or -ELOOP if it is not a directory).
 */
static int instance_load(int insfd, struct reg_instance *in)
{
	int fd;

	fd = openat(insfd, in->id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	instance_read_pid(fd, in);
	instance_read_heartbeat(fd, in);
	instance_read_sock(fd, in);
	instance_read_version(fd, in);
	instance_read_ip_addrs(fd, in);
	instance_read_stats(fd, in);
	instance_read_ports(fd, in);
	close(fd);
	return 0;
}

/* ---- DIR/clients/<pid>/ ---- */

static int client_read_ins(int fd, struct reg_client *c)
{
	char buf[REG_VALUE_MAX];
	int err;

	err = value_read(fd, "ins", buf, sizeof(buf), NULL, &c->errors);
	if (err)
		return err;
	if (!id_valid(buf))
		return reg_fail(&c->errors, "ins", -EINVAL, "not a valid instance id");
	memcpy(c->ins, buf, strlen(buf) + 1);
	c->has_ins = true;
	return 0;
}

static int client_read_exe(int fd, struct reg_client *c)
{
	char buf[REG_VALUE_MAX];
	int err;

	err = value_read(fd, "exe", buf, sizeof(buf), NULL, &c->errors);
	if (err)
		return err;
	c->exe = strdup(buf);
	if (!c->exe)
		return reg_fail(&c->errors, "exe", -ENOMEM, "out of memory");
	return 0;
}

static int client_read_sockets(int fd, struct reg_client *c)
{
	uint64_t v;
	int err;

	err = value_read_u64(fd, "sockets", 0, UINT32_MAX, &v, NULL, &c->errors);
	if (err)
		return err;
	c->sockets = (uint32_t)v;
	c->has_sockets = true;
	return 0;
}

static void client_free(struct reg_client *c)
{
	free(c->exe);
	errors_free(&c->errors);
}

/* As instance_load(), for clientsfd/<pid>/. */
static int client_load(int clientsfd, const char *name, struct reg_client *c)
{
	int fd;

	fd = openat(clientsfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	client_read_ins(fd, c);
	client_read_exe(fd, c);
	client_read_sockets(fd, c);
	close(fd);
	return 0;
}

/* ---- the scan ---- */

static int instance_cmp(const void *a, const void *b)
{
	return strcmp(((const struct reg_instance *)a)->id, ((const struct reg_instance *)b)->id);
}

static int client_cmp(const void *a, const void *b)
{
	pid_t x = ((const struct reg_client *)a)->pid, y = ((const struct reg_client *)b)->pid;

	return (x > y) - (x < y);
}

/*
 * Opens rootfd/sub as a directory stream. Returns 0 with *dirp NULL when sub
 * does not exist, 0 with *dirp set, or a negative errno with reg->fatal set.
 */
static int registry_dir_open(int rootfd, const char *sub, DIR **dirp, struct registry *reg)
{
	int fd, err;

	*dirp = NULL;
	fd = openat(rootfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		err = -errno;
		goto err;
	}
	*dirp = fdopendir(fd);
	if (!*dirp) {
		err = -errno;
		close(fd);
		goto err;
	}
	return 0;
err:
	snprintf(reg->fatal, sizeof(reg->fatal), "%s/: %s", sub,
		 err == -ELOOP ? "is a symbolic link (refused)" : strerror(-err));
	return err;
}

/*
 * Returns the next entry of dir other than dot-names ("." and "..", and a
 * writer's work in progress, which it renames into place), or NULL at the end
 * with *err 0 or a negative errno.
 */
static struct dirent *registry_dir_next(DIR *dir, int *err)
{
	struct dirent *de;

	for (;;) {
		errno = 0;
		de = readdir(dir);
		if (!de) {
			*err = -errno;
			return NULL;
		}
		if (de->d_name[0] != '.')
			return de;
	}
}

/* Records why entry sub/name was skipped, in reg->errors. */
static void registry_skip(struct registry *reg, const char *sub, const char *name, const char *why)
{
	char esc[64], where[REG_WHERE_MAX];

	name_escape(name, esc, sizeof(esc));
	snprintf(where, sizeof(where), "%s/%s", sub, esc);
	errors_add(&reg->errors, where, "%s; skipped", why);
}

static int registry_scan_instances(int rootfd, struct registry *reg)
{
	struct dirent *de;
	size_t cap = 0;
	DIR *dir;
	int err;

	err = registry_dir_open(rootfd, "ins", &dir, reg);
	if (err || !dir)
		return err;
	while ((de = registry_dir_next(dir, &err))) {
		struct reg_instance *in;

		if (!id_valid(de->d_name)) {
			registry_skip(reg, "ins", de->d_name,
				      "not a valid instance id ([A-Za-z0-9._-], at most 64)");
			continue;
		}
		if (reg->n_ins == REG_INSTANCES_MAX) {
			errors_add(&reg->errors, "ins/", "more than %d instances; the rest are not shown",
				   REG_INSTANCES_MAX);
			break;
		}
		if (reg->n_ins == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			void *p = realloc(reg->ins, ncap * sizeof(*reg->ins));

			if (!p) {
				err = -ENOMEM;
				break;
			}
			reg->ins = p;
			cap = ncap;
		}
		in = &reg->ins[reg->n_ins];
		memset(in, 0, sizeof(*in));
		memcpy(in->id, de->d_name, strlen(de->d_name) + 1);
		err = instance_load(dirfd(dir), in);
		if (err) {
			/* ENOENT: it exited between readdir and open; it is gone, not broken. */
			if (err != -ENOENT)
				registry_skip(reg, "ins", de->d_name,
					      err == -ENOTDIR || err == -ELOOP ? "not a directory"
									      : strerror(-err));
			instance_free(in);
			err = 0;
			continue;
		}
		reg->n_ins++;
	}
	closedir(dir);
	if (err) {
		snprintf(reg->fatal, sizeof(reg->fatal), "ins/: %s", strerror(-err));
		return err;
	}
	if (reg->n_ins > 1)
		qsort(reg->ins, reg->n_ins, sizeof(*reg->ins), instance_cmp);
	return 0;
}

static int registry_scan_clients(int rootfd, struct registry *reg)
{
	struct dirent *de;
	size_t cap = 0;
	DIR *dir;
	int err;

	err = registry_dir_open(rootfd, "clients", &dir, reg);
	if (err || !dir)
		return err;
	while ((de = registry_dir_next(dir, &err))) {
		struct reg_client *c;
		uint64_t pid;

		/* The name is the pid, in canonical form, so that one process has one entry. */
		if (de->d_name[0] == '0' || u64_parse(de->d_name, REG_PID_MAX, &pid)) {
			registry_skip(reg, "clients", de->d_name, "not a pid");
			continue;
		}
		if (reg->n_clients == REG_CLIENTS_MAX) {
			errors_add(&reg->errors, "clients/", "more than %d clients; the rest are not shown",
				   REG_CLIENTS_MAX);
			break;
		}
		if (reg->n_clients == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			void *p = realloc(reg->clients, ncap * sizeof(*reg->clients));

			if (!p) {
				err = -ENOMEM;
				break;
			}
			reg->clients = p;
			cap = ncap;
		}
		c = &reg->clients[reg->n_clients];
		memset(c, 0, sizeof(*c));
		c->pid = (pid_t)pid;
		err = client_load(dirfd(dir), de->d_name, c);
		if (err) {
			if (err != -ENOENT)
				registry_skip(reg, "clients", de->d_name,
					      err == -ENOTDIR || err == -ELOOP ? "not a directory"
									      : strerror(-err));
			client_free(c);
			err = 0;
			continue;
		}
		reg->n_clients++;
	}
	closedir(dir);
	if (err) {
		snprintf(reg->fatal, sizeof(reg->fatal), "clients/: %s", strerror(-err));
		return err;
	}
	if (reg->n_clients > 1)
		qsort(reg->clients, reg->n_clients, sizeof(*reg->clients), client_cmp);
	return 0;
}

int registry_load(const char *root, struct registry *reg)
{
	int rootfd, err;

	memset(reg, 0, sizeof(*reg));
	reg->root = root;
	/* root itself comes from the user (-r or the environment), so a symlink there is followed. */
	rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		err = -errno;
		snprintf(reg->fatal, sizeof(reg->fatal), "%s", strerror(-err));
		return err;
	}
	err = registry_scan_instances(rootfd, reg);
	if (!err)
		err = registry_scan_clients(rootfd, reg);
	close(rootfd);
	return err;
}

void registry_free(struct registry *reg)
{
	size_t i;

	for (i = 0; i < reg->n_ins; i++)
		instance_free(&reg->ins[i]);
	free(reg->ins);
	for (i = 0; i < reg->n_clients; i++)
		client_free(&reg->clients[i]);
	free(reg->clients);
	errors_free(&reg->errors);
	reg->ins = NULL;
	reg->clients = NULL;
	reg->n_ins = reg->n_clients = 0;
}

int registry_value_read(const char *root, const char *id, const char *name, char *buf, size_t size,
			char *why, size_t whylen)
{
	struct reg_errors errs = { 0 };
	char path[PATH_MAX];
	int fd, err;

	if (!id_valid(id)) {
		snprintf(why, whylen, "not a valid instance id");
		return -EINVAL;
	}
	if (snprintf(path, sizeof(path), "%s/ins/%s", root, id) >= (int)sizeof(path)) {
		snprintf(why, whylen, "path too long");
		return -ENAMETOOLONG;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		snprintf(why, whylen, "ins/%s: %s", id, strerror(-err));
		return err;
	}
	err = value_read(fd, name, buf, size, NULL, &errs);
	close(fd);
	if (err)
		snprintf(why, whylen, "%s", errs.n ? errs.v[0].text : strerror(-err));
	errors_free(&errs);
	return err;
}
