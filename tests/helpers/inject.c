/* inject: make a running process issue system calls of our choosing, the way an exploit inside it would, so
 * that a test can see what that process's seccomp filter does with them.
 *
 *     inject PID CALL [CALL...]
 *
 * CALL is NR[,ARG...]: a system call number and up to six arguments, each a number (decimal, or 0x... hex,
 * negative allowed) or "sp-N", an address N bytes below the process's stack pointer (scratch memory for a
 * call that writes through a pointer; keep N past the 128-byte red zone).
 *
 * Prints one line per call made, in order:
 *     ret VALUE          the raw return value: a result, or -errno
 * and, if a call ended the process:
 *     killed SIGNAME     (or "exited STATUS")
 * Exit status: 0 when every call was made or the process died of one; 1 with a message on stderr when the
 * injection itself failed (no such process, ptrace refused, no syscall instruction found); 64 for bad usage.
 *
 * How: attach with PTRACE_SEIZE and stop the process with PTRACE_INTERRUPT; save its general-purpose registers;
 * for each call, point the instruction pointer at a `syscall` instruction found in its own executable mappings,
 * load the number and arguments, single-step over it, and read the result; then restore the saved registers and
 * detach.  Only the general-purpose registers are read and written (PTRACE_GETREGS/SETREGS): the injected code
 * is one instruction that touches no vector or extended state, so nothing depends on which of those the CPU
 * has, and nothing needs a debugger.  x86_64 only, like mwinsd's filter. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#if !defined(__x86_64__)
#error "inject is written for x86_64 (the ABI mwinsd's filter is written for)"
#endif

#define MAX_ARGS 6

static int die(const char *what)
{
	fprintf(stderr, "inject: %s: %s\n", what, strerror(errno));
	return 1;
}

/* Scans one executable mapping [lo, hi) of pid through /proc/PID/mem for the two bytes 0f 05 (syscall).
 * Returns its address, or 0 when there is none (or the mapping can't be read, as [vsyscall] can't). */
static uint64_t scan_mapping(int mem, uint64_t lo, uint64_t hi)
{
	unsigned char buf[1 << 16];
	for (uint64_t at = lo; at < hi; at += sizeof(buf) - 1) {
		size_t want = hi - at < sizeof(buf) ? hi - at : sizeof(buf);
		ssize_t n = pread(mem, buf, want, (off_t)at);
		if (n < 2)
			return 0;
		for (ssize_t i = 0; i + 1 < n; i++)
			if (buf[i] == 0x0f && buf[i + 1] == 0x05)
				return at + (uint64_t)i;
	}
	return 0;
}

/* The address of a syscall instruction in pid's executable mappings, or 0 (errno set) if none. */
static uint64_t find_syscall_insn(pid_t pid)
{
	char path[64], line[512];
	uint64_t found = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *maps = fopen(path, "re");
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	int mem = open(path, O_RDONLY | O_CLOEXEC);
	if (!maps || mem < 0)
		goto out;
	while (!found && fgets(line, sizeof(line), maps)) {
		uint64_t lo, hi;
		char perms[8];
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s", &lo, &hi, perms) == 3 && perms[2] == 'x')
			found = scan_mapping(mem, lo, hi);
	}
	if (!found)
		errno = ENOENT;
out:
	if (maps)
		fclose(maps);
	if (mem >= 0)
		close(mem);
	return found;
}

/* Parses "NR[,ARG...]" into regs (number in rax, arguments in the syscall ABI's registers). */
static int parse_call(const char *spec, const struct user_regs_struct *saved, struct user_regs_struct *regs)
{
	unsigned long long *argreg[MAX_ARGS] = {&regs->rdi, &regs->rsi, &regs->rdx, &regs->r10, &regs->r8,
						&regs->r9};
	char *copy = strdup(spec), *save = NULL, *tok;
	int i = -1;
	if (!copy)
		return -1;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save), i++) {
		char *end;
		long long v;
		if (i >= MAX_ARGS)
			goto bad;
		if (i >= 0 && strncmp(tok, "sp-", 3) == 0)
			v = (long long)(saved->rsp - strtoull(tok + 3, &end, 0));
		else
			v = strtoll(tok, &end, 0);
		if (*end || end == tok)
			goto bad;
		if (i < 0)
			regs->rax = (unsigned long long)v;
		else
			*argreg[i] = (unsigned long long)v;
	}
	free(copy);
	return i < 0 ? -1 : 0;
bad:
	free(copy);
	return -1;
}

/* Reports how the process ended, from a wait status that is not a stop.  Returns 0. */
static int report_end(int st)
{
	if (WIFSIGNALED(st))
		printf("killed %s\n", sigabbrev_np(WTERMSIG(st)) ? sigabbrev_np(WTERMSIG(st)) : "?");
	else
		printf("exited %d\n", WEXITSTATUS(st));
	return 0;
}

/* Makes one call in the stopped pid.  Returns 1 when it returned (result printed), 0 when the process ended
 * (how printed), -1 on an injection failure. */
static int call_one(pid_t pid, const struct user_regs_struct *saved, uint64_t insn, const char *spec)
{
	struct user_regs_struct regs = *saved;
	int st;
	if (parse_call(spec, saved, &regs) < 0) {
		fprintf(stderr, "inject: bad call '%s' (NR[,ARG...], at most %d arguments)\n", spec, MAX_ARGS);
		return -1;
	}
	regs.rip = insn;
	/* Not inside a system call: the kernel must not apply its restart logic to the saved state. */
	regs.orig_rax = (unsigned long long)-1;
	if (ptrace(PTRACE_SETREGS, pid, 0, &regs) < 0 || ptrace(PTRACE_SINGLESTEP, pid, 0, 0) < 0)
		return die("setting up the call"), -1;
	if (waitpid(pid, &st, __WALL) < 0)
		return die("waitpid"), -1;
	if (!WIFSTOPPED(st))
		return report_end(st);
	if (WSTOPSIG(st) != SIGTRAP) {
		fprintf(stderr, "inject: stopped by %s instead of the single step\n", strsignal(WSTOPSIG(st)));
		return -1;
	}
	if (ptrace(PTRACE_GETREGS, pid, 0, &regs) < 0)
		return die("reading the result"), -1;
	printf("ret %lld\n", (long long)regs.rax);
	fflush(stdout);
	return 1;
}

int main(int argc, char **argv)
{
	struct user_regs_struct saved;
	pid_t pid;
	int st, r = 1;
	if (argc < 3 || (pid = (pid_t)atoi(argv[1])) <= 0) {
		fprintf(stderr, "usage: inject PID NR[,ARG...] [NR[,ARG...]...]\n");
		return 64;
	}
	if (ptrace(PTRACE_SEIZE, pid, 0, 0) < 0)
		return die("PTRACE_SEIZE");
	if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) < 0 || waitpid(pid, &st, __WALL) < 0)
		return die("stopping the process");
	if (!WIFSTOPPED(st))
		return report_end(st);
	if (ptrace(PTRACE_GETREGS, pid, 0, &saved) < 0)
		return die("PTRACE_GETREGS");
	uint64_t insn = find_syscall_insn(pid);
	if (!insn) {
		die("no syscall instruction in the process's executable mappings");
		goto detach;
	}
	for (int i = 2; i < argc; i++) {
		r = call_one(pid, &saved, insn, argv[i]);
		if (r == 0)
			return 0;       /* the process ended */
		if (r < 0) {
			r = 1;          /* still stopped: put it back as it was */
			goto detach;
		}
	}
	r = 0;
detach:
	/* The saved registers include a system call the stop interrupted (orig_rax): the kernel restarts it as
	 * it would after any ptrace stop. */
	if (ptrace(PTRACE_SETREGS, pid, 0, &saved) < 0 || ptrace(PTRACE_DETACH, pid, 0, 0) < 0)
		return die("restoring the process");
	return r;
}
