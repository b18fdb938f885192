/*
 * outcome.c: a case's canonical outcome line, and the names it is spelled with.
 *
 * Everything here prints symbols, not numbers that depend on the machine: errno names rather than strerror text
 * (which varies with the libc and the locale), poll flags by name.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <poll.h>
#include <unistd.h>

#include "conform.h"

static int outcome_fd = -1;

int outcome_pipe(void)
{
	return outcome_fd;
}

void outcome_open(int fd)
{
	outcome_fd = fd;
}

int outcome_fd_get(void)
{
	return outcome_fd;
}

/* Writes one token at once: a case that dies later still leaves what it saw. */
static void outcome_emit(const char *prefix, const char *fmt, va_list ap, const char *suffix)
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf), " %s", prefix);
	if (n < 0)
		return;
	int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	if (m < 0)
		return;
	size_t len = strnlen(buf, sizeof(buf) - 1);
	len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s", suffix);
	if (len >= sizeof(buf))
		len = sizeof(buf) - 1;
	/* The outcome is a single line: a stray newline in a note would split it. */
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\n')
			buf[i] = ' ';
	int fd = outcome_fd >= 0 ? outcome_fd : STDOUT_FILENO;
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, buf + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		off += (size_t)w;
	}
}

void note(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	outcome_emit("", fmt, ap, "");
	va_end(ap);
	errno = saved;
}

bool expect(bool ok, const char *fmt, ...)
{
	if (ok)
		return true;
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	outcome_emit("FAIL(", fmt, ap, ")");
	va_end(ap);
	errno = saved;
	return false;
}

_Noreturn void setup_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	outcome_emit("FAIL(setup: ", fmt, ap, ")");
	va_end(ap);
	_exit(1);
}

long res(long rc)
{
	return rc >= 0 ? rc : -(long)errno;
}

/* A few buffers in turn, so that one printf can hold several results. */
static char *rotating_buf(void)
{
	static char bufs[8][160];
	static unsigned next;
	return bufs[next++ % 8];
}

const char *res_str(long r)
{
	if (r < 0)
		return errno_name((int)-r);
	char *b = rotating_buf();
	snprintf(b, 160, "%ld", r);
	return b;
}

void note_res(const char *key, long r)
{
	note("%s=%s", key, res_str(r));
}

void expect_res(const char *key, long r, long want)
{
	note_res(key, r);
	expect(r == want, "%s: want %s got %s", key, res_str(want), res_str(r));
}

const char *errno_name(int err)
{
	static const struct {
		int err;
		const char *name;
	} names[] = {
#define E(x) { x, #x }
		E(EPERM), E(ENOENT), E(EINTR), E(EIO), E(EBADF), E(EAGAIN), E(ENOMEM), E(EACCES), E(EFAULT),
		E(EBUSY), E(EEXIST), E(ENODEV), E(EINVAL), E(ENFILE), E(EMFILE), E(ENOTTY), E(ENOSPC), E(ESPIPE),
		E(EPIPE), E(ENOSYS), E(ENOTSOCK), E(EDESTADDRREQ), E(EMSGSIZE), E(EPROTOTYPE), E(ENOPROTOOPT),
		E(EPROTONOSUPPORT), E(EOPNOTSUPP), E(EAFNOSUPPORT), E(EADDRINUSE), E(EADDRNOTAVAIL), E(ENETDOWN),
		E(ENETUNREACH), E(ENETRESET), E(ECONNABORTED), E(ECONNRESET), E(ENOBUFS), E(EISCONN), E(ENOTCONN),
		E(ESHUTDOWN), E(ETIMEDOUT), E(ECONNREFUSED), E(EHOSTDOWN), E(EHOSTUNREACH), E(EALREADY),
		E(EINPROGRESS), E(EBADMSG), E(EPROTO), E(ENOTSUP), E(ENODATA), E(ERANGE), E(EDOM),
#undef E
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].err == err)
			return names[i].name;
	char *b = rotating_buf();
	snprintf(b, 160, "E%d", err);
	return b;
}

const char *events_str(unsigned events)
{
	/* poll and epoll share these bit values on Linux; EPOLLRDHUP == POLLRDHUP. */
	static const struct {
		unsigned bit;
		const char *name;
	} flags[] = {
		{ POLLIN, "IN" },         { POLLPRI, "PRI" },       { POLLOUT, "OUT" },
		{ POLLERR, "ERR" },       { POLLHUP, "HUP" },       { POLLNVAL, "NVAL" },
		{ POLLRDNORM, "RDNORM" }, { POLLRDBAND, "RDBAND" }, { POLLWRNORM, "WRNORM" },
		{ POLLWRBAND, "WRBAND" }, { POLLRDHUP, "RDHUP" },
	};
	char *b = rotating_buf();
	size_t len = 0;
	b[0] = '\0';
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		if (!(events & flags[i].bit))
			continue;
		events &= ~flags[i].bit;
		len += (size_t)snprintf(b + len, 160 - len, "%s%s", len ? "|" : "", flags[i].name);
	}
	if (events)
		len += (size_t)snprintf(b + len, 160 - len, "%s0x%x", len ? "|" : "", events);
	if (!len)
		snprintf(b, 160, "0");
	return b;
}

uint8_t pattern_byte(uint64_t i)
{
	/* Not periodic at 256: a chunk delivered at the wrong offset changes the checksum. */
	return (uint8_t)((i * 131u) ^ (i >> 8) ^ (i >> 17));
}

void pattern_fill(uint8_t *buf, uint64_t offset, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = pattern_byte(offset + i);
}

uint32_t csum_update(uint32_t h, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}
