/*
 * proc.c: who a protected process is, read once when it attaches (HELLO) and kept with its sockets.
 *
 * The uid and gid come from SO_PEERCRED; the rest from /proc/PID, read by us.  A pid can be reused between
 * SO_PEERCRED and these reads; with a pidfd we check afterwards that the process is still the one that
 * connected, and if it is not we keep only what SO_PEERCRED said.  Nothing here comes from what the program
 * tells us about itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ins.h"

#define ARGV_MAX 16
#define ARG_MAX_LEN 256

static ssize_t read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n, got = 0;

	if (fd < 0)
		return -errno;
	while ((size_t)got < cap && (n = read(fd, buf + got, cap - (size_t)got)) > 0)
		got += n;
	close(fd);
	return got;
}

/* /proc/PID/cmdline: at most ARGV_MAX arguments of ARG_MAX_LEN bytes; a longer one is cut and ends "...". */
static void proc_read_argv(struct ins_proc *p, const char *path)
{
	char raw[ARGV_MAX * ARG_MAX_LEN], *out, *o;
	ssize_t n = read_small(path, raw, sizeof(raw));
	size_t i = 0;

	if (n <= 0)
		return;
	out = malloc(ARGV_MAX * (ARG_MAX_LEN + 4));
	if (!out)
		return;
	o = out;
	while (i < (size_t)n && p->argc < ARGV_MAX) {
		size_t len = strnlen(raw + i, (size_t)n - i);

		if (len >= ARG_MAX_LEN) {
			memcpy(o, raw + i, ARG_MAX_LEN - 3);
			memcpy(o + ARG_MAX_LEN - 3, "...", 4);
			o += ARG_MAX_LEN + 1;
		} else {
			memcpy(o, raw + i, len);
			o[len] = 0;
			o += len + 1;
		}
		p->argc++;
		i += len + 1;
	}
	p->argv = out;
}

/* The last pid on the NSpid line of a /proc/PID/status text (one per PID namespace level, outermost
 * first), or 0 if there is none. */
static pid_t status_vpid(const char *status)
{
	const char *l = strstr(status, "\nNSpid:");
	char *end;
	pid_t last = 0;

	if (!l)
		return 0;
	for (l += 7;; l = end) {
		long v = strtol(l, &end, 10);

		if (v <= 0 || end == l)
			return last;
		last = (pid_t)v;
		if (*end == '\n')
			return last;
	}
}

pid_t proc_vpid(pid_t pid)
{
	char path[64], buf[4096];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	n = read_small(path, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = 0;
	return status_vpid(buf);
}

struct ins_proc *proc_get(pid_t pid, uid_t uid, gid_t gid, int pidfd)
{
	struct ins_proc *p = calloc(1, sizeof(*p));
	char path[64], buf[4096], *l;
	ssize_t n;

	if (!p) {
		ins_log(0, "pid %d: no memory for its identity", (int)pid);
		return NULL;
	}
	p->refs = 1;
	p->pid = pid;
	p->uid = uid;
	p->gid = gid;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, p->exe, sizeof(p->exe) - 1);
	p->exe[n > 0 ? n : 0] = 0;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	n = read_small(path, p->comm, sizeof(p->comm) - 1);
	p->comm[n > 0 ? n : 0] = 0;
	p->comm[strcspn(p->comm, "\n")] = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	n = read_small(path, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = 0;
	l = strstr(buf, "\nPPid:");
	if (l)
		p->ppid = (pid_t)strtol(l + 6, NULL, 10);
	p->vpid = status_vpid(buf);
	if (!p->vpid)
		p->vpid = pid;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	proc_read_argv(p, path);
	if (pidfd >= 0 && syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0 && errno == ESRCH) {
		/* Not the process that connected any more: what /proc said was someone else's. */
		p->exe[0] = p->comm[0] = 0;
		p->ppid = 0;
		p->vpid = 0;
		free(p->argv);
		p->argv = NULL;
		p->argc = 0;
	}
	return p;
}

struct ins_proc *proc_ref(struct ins_proc *p)
{
	if (p)
		p->refs++;
	return p;
}

void proc_put(struct ins_proc *p)
{
	if (!p || --p->refs)
		return;
	free(p->argv);
	free(p);
}
