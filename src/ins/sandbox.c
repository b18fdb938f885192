/*
 * sandbox.c: sandbox_enter (see sandbox.h): the switch to an unprivileged user, no_new_privs, and the
 * system call allowlist.
 *
 * The allowlist is what mwinsd calls once it serves: found by reading src/ins/, and by tracing it (strace -f)
 * through the end-to-end tests (curl, faults, conformance, servers, DNS, systemd), as root and as nobody; plus
 * the families its telemetry uses (event stream, log rotation, IPFIX, metrics, policy reload).  Each group
 * says why it is there.  Two rules:
 *
 *   - A call mwinsd never makes kills the process: it is an exploit, or a bug that must be loud.  Programs
 *     attached to a dead mwinsd fail closed (their carriers and control connections hang up).
 *   - A call it does make, with an argument it never uses (a socket family, an ioctl request, a prctl option,
 *     executable memory, a seek), fails with the errno a kernel without that feature would give.  A library
 *     that probes (isatty, if_nametoindex, dlopen) then degrades instead of taking down the network of every
 *     protected program.
 *
 * To find a call that is missing: the kernel logs each kill (`dmesg`: audit type=1326 ... syscall=NR); or run
 * mwinsd with --no-seccomp under `strace -f`.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/netlink.h>
#include <linux/sockios.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox.h"

#ifndef PR_SET_PTRACER
#define PR_SET_PTRACER 0x59616d61
#endif

static int fail(char *err, size_t errlen, int e, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int e, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (err && errlen) {
		n = snprintf(err, errlen, "sandbox: ");
		va_start(ap, fmt);
		if (n > 0 && (size_t)n < errlen)
			vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -(e ? e : EINVAL);
}

/* ---- 1. the user ------------------------------------------------------------------------------------- */

static int user_find(const char *name, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
	struct passwd pw, *res = NULL;
	char buf[16384], *end;
	int e;

	e = getpwnam_r(name, &pw, buf, sizeof(buf), &res);
	if (!res && name[0] >= '0' && name[0] <= '9') {
		unsigned long v = strtoul(name, &end, 10);

		if (!*end && v < (uid_t)-1)
			e = getpwuid_r((uid_t)v, &pw, buf, sizeof(buf), &res);
	}
	if (!res)
		return fail(err, errlen, e ? e : ENOENT, "--user %s: %s", name, e ? strerror(e) : "no such user");
	if (pw.pw_uid == 0 || pw.pw_gid == 0)
		return fail(err, errlen, EINVAL, "--user %s: uid %u gid %u is root's: name an unprivileged user",
			    name, (unsigned)pw.pw_uid, (unsigned)pw.pw_gid);
	*uid = pw.pw_uid;
	*gid = pw.pw_gid;
	return 0;
}

/*
 * Give the directory dfd (named path, for messages) and everything in it, depth levels down, to uid:gid.
 * Symlinks are changed themselves, never followed: the registry makes none, and following one would hand its
 * target over.  Nothing else writes here meanwhile (the loop has not started; the parent is root's).
 */
static int chown_tree(int dfd, const char *path, uid_t uid, gid_t gid, int depth, char *err, size_t errlen)
{
	struct dirent *de;
	DIR *d;
	int fd, ret = 0;

	if (fchown(dfd, uid, gid) < 0)
		return fail(err, errlen, errno, "chown %s: %s", path, strerror(errno));
	fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d = fdopendir(fd))) {
		ret = fail(err, errlen, errno, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	while (!ret && (errno = 0, de = readdir(d))) {
		char sub[1024];
		struct stat st;
		int cfd;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			ret = fail(err, errlen, errno, "%s: %s", sub, strerror(errno));
		} else if (!S_ISDIR(st.st_mode)) {
			if (fchownat(dfd, de->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
				ret = fail(err, errlen, errno, "chown %s: %s", sub, strerror(errno));
		} else if (depth <= 0) {
			ret = fail(err, errlen, ELOOP, "%s: nested too deep", sub);
		} else if ((cfd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
			ret = fail(err, errlen, errno, "%s: %s", sub, strerror(errno));
		} else {
			ret = chown_tree(cfd, sub, uid, gid, depth - 1, err, errlen);
			close(cfd);
		}
	}
	if (!ret && errno)
		ret = fail(err, errlen, errno, "reading %s: %s", path, strerror(errno));
	closedir(d);
	return ret;
}

static int dirs_give(const struct sandbox_cfg *cfg, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	int fd, ret;

	if (cfg->instance_dir) {
		fd = open(cfg->instance_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return fail(err, errlen, errno, "%s: %s", cfg->instance_dir, strerror(errno));
		ret = chown_tree(fd, cfg->instance_dir, uid, gid, 4, err, errlen);
		close(fd);
		if (ret)
			return ret;
	}
	for (const char *const *p = cfg->shared_dirs; p && *p; p++) {
		if (mkdir(*p, 0755) < 0 && errno != EEXIST)
			return fail(err, errlen, errno, "mkdir %s: %s", *p, strerror(errno));
		fd = open(*p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || fchown(fd, uid, gid) < 0) {
			ret = fail(err, errlen, errno, "chown %s: %s", *p, strerror(errno));
			if (fd >= 0)
				close(fd);
			return ret;
		}
		close(fd);
	}
	return 0;
}

static int caps_get(uint64_t *eff, uint64_t *prm, uint64_t *inh)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d) < 0)
		return -errno;
	*eff = d[0].effective | (uint64_t)d[1].effective << 32;
	*prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
	*inh = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
	return 0;
}

/*
 * Root to uid:gid, keeping SANDBOX_CAPS.  The order is forced: the bounding set can only shrink while we hold
 * CAP_SETPCAP, the ids only change while we hold CAP_SETUID/CAP_SETGID, and the kept capabilities survive
 * setresuid only in the permitted set (PR_SET_KEEPCAPS), from which capset puts them back in effect.
 */
static int user_switch(uid_t uid, gid_t gid, char *err, size_t errlen)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = { { 0 } };
	const uint64_t keep = SANDBOX_CAPS;
	uint64_t eff = 0, prm = 0, inh = 0;
	uid_t ru, eu, su;
	int ret;

	for (unsigned int c = 0; c < 64; c++) {
		if (keep >> c & 1)
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
			if (errno == EINVAL)
				break; /* past the last capability this kernel has */
			return fail(err, errlen, errno, "dropping capability %u from the bounding set: %s", c,
				    strerror(errno));
		}
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return fail(err, errlen, errno, "clearing ambient capabilities: %s", strerror(errno));
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return fail(err, errlen, errno, "PR_SET_KEEPCAPS: %s", strerror(errno));
	if (setgroups(1, &gid) < 0)
		return fail(err, errlen, errno, "setgroups(%u): %s", (unsigned)gid, strerror(errno));
	if (setresgid(gid, gid, gid) < 0)
		return fail(err, errlen, errno, "setresgid(%u): %s", (unsigned)gid, strerror(errno));
	if (setresuid(uid, uid, uid) < 0)
		return fail(err, errlen, errno, "setresuid(%u): %s", (unsigned)uid, strerror(errno));
	d[0].effective = d[0].permitted = (uint32_t)keep;
	d[1].effective = d[1].permitted = (uint32_t)(keep >> 32);
	if (syscall(SYS_capset, &h, d) < 0)
		return fail(err, errlen, errno, "capset: %s", strerror(errno));
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return fail(err, errlen, errno, "PR_SET_KEEPCAPS: %s", strerror(errno));

	/* Trust, but check: what the kernel says we are now. */
	if (getresuid(&ru, &eu, &su) < 0 || ru != uid || eu != uid || su != uid || setuid(0) == 0)
		return fail(err, errlen, EPERM, "still able to be root after the switch to uid %u", (unsigned)uid);
	if ((ret = caps_get(&eff, &prm, &inh)) < 0)
		return fail(err, errlen, -ret, "capget: %s", strerror(-ret));
	if (eff != keep || prm != keep || inh)
		return fail(err, errlen, EPERM, "capabilities after the switch: effective %#llx permitted %#llx "
			    "inheritable %#llx, expected %#llx", (unsigned long long)eff, (unsigned long long)prm,
			    (unsigned long long)inh, (unsigned long long)keep);
	return 0;
}

/* ---- 3. the system call filter ----------------------------------------------------------------------- */

#if defined(__x86_64__) && !defined(__ILP32__)

/* Allowed whatever their arguments. */
static const char *const allowed[] = {
	/* the loop: readiness (epoll, and poll for one socket's state), the heartbeat timer, signals read as a
	 * descriptor; abort() resets SIGABRT's action; signal frames, and restarts after SIGSTOP/SIGCONT */
	"epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll",
	"timerfd_create", "timerfd_settime", "timerfd_gettime", "signalfd4", "rt_sigprocmask", "rt_sigaction",
	"rt_sigreturn", "restart_syscall",
	/* wait.c's spin gives the CPU to anything else runnable between its looks */
	"sched_yield",
	/* time: the vDSO answers these, the calls are its fallback */
	"clock_gettime", "clock_getres", "gettimeofday", "time",
	/* descriptors: carriers, real sockets, pidfds, files; a pipe for splice */
	"read", "write", "readv", "writev", "close", "dup", "dup2", "dup3", "fcntl", "pipe2", "splice",
	/* sockets (socket, socketpair and ioctl come below, with their arguments checked): the relay, the
	 * control channel and SCM_RIGHTS, accepting on listeners (programs', the event stream's, the control
	 * API's, metrics'), the UDP relay and IPFIX, sd_notify, the options programs set */
	"bind", "listen", "connect", "accept", "accept4", "shutdown", "getsockname", "getpeername",
	"getsockopt", "setsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
	/* files: registry values (write, rename), clients' entries (mkdir, unlink, rmdir), socket modes, the
	 * event log and its rotation, the policy file, a client's /proc/PID (stat of ns/net, readlink of exe;
	 * cmdline, comm, status), directory listings */
	"open", "openat", "fstat", "stat", "lstat", "newfstatat", "statx", "readlink", "readlinkat",
	"getdents64", "access", "faccessat", "faccessat2", "unlink", "unlinkat", "rename", "renameat",
	"renameat2", "mkdir", "mkdirat", "rmdir", "chmod", "fchmod", "fchmodat", "ftruncate", "fsync",
	"fdatasync",
	/* memory: malloc (brk; mmap, mremap and munmap for big blocks; madvise when it trims), the shared state
	 * pages (memfd, sealed with fcntl, mapped with mmap below); futex for libc's locks */
	"brk", "munmap", "mremap", "madvise", "memfd_create", "futex",
	/* who we are (sd_notify asks), a pidfd for a client pid, randomness for flow ids and hash seeds, limits
	 * and usage for metrics, sysinfo for glibc's qsort (the policy's lists) */
	"getpid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "pidfd_open",
	"getrandom", "getrlimit", "getrusage", "sysinfo",
	"exit_group",
};

#if defined(__SANITIZE_ADDRESS__)
/* ASan builds only.  LeakSanitizer's check at exit stops the world from a helper task: it clones one (flags
 * below) on a stack with a guard page, lets it trace us (PR_SET_DUMPABLE, PR_SET_PTRACER), and the helper
 * checks its parent (getppid), lists our threads (the old getdents), attaches with ptrace, reads the
 * registers, waits with wait4 and sched_yield, and exits.  A call missing here kills the helper, and the
 * exit then hangs. */
static const char *const allowed_asan[] = { "ptrace", "wait4", "getdents", "getppid", "sched_yield",
					    "sigaltstack", "exit" };
#define ASAN_LSAN_CLONE (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_UNTRACED)
#endif

struct filter {
	scmp_filter_ctx ctx;
	char *err;
	size_t errlen;
};

/* Argument i compared with v; (argument i & mask) == v.  Both of libseccomp's data are always given (clang's
 * -Wextra wants every field of the compound literal). */
#define ARG(i, op, v) SCMP_CMP(i, SCMP_CMP_##op, v, 0)
#define ARG_MASK(i, mask, v) SCMP_CMP(i, SCMP_CMP_MASKED_EQ, mask, v)

/* Add act for nr when all n (at most 3) argument comparisons that follow (ARG, ARG_MASK) hold. */
static int rule(struct filter *f, uint32_t act, int nr, const char *what, unsigned int n, ...)
{
	struct scmp_arg_cmp cmp[3];
	va_list ap;
	int ret;

	if (n > 3)
		return fail(f->err, f->errlen, EINVAL, "filter rule for %s: %u comparisons", what, n);
	va_start(ap, n);
	for (unsigned int i = 0; i < n; i++)
		cmp[i] = va_arg(ap, struct scmp_arg_cmp);
	va_end(ap);
	ret = seccomp_rule_add_array(f->ctx, act, nr, n, cmp);
	if (ret < 0)
		return fail(f->err, f->errlen, -ret, "filter rule for %s: %s", what, strerror(-ret));
	return 0;
}

/* Allow nr when argument arg is one of vals[0..n-1]. */
static int rule_in(struct filter *f, int nr, const char *what, unsigned int arg, const uint64_t *vals, size_t n)
{
	int ret;

	for (size_t i = 0; i < n; i++)
		if ((ret = rule(f, SCMP_ACT_ALLOW, nr, what, 1, ARG(arg, EQ, vals[i]))))
			return ret;
	return 0;
}

/*
 * Give act (an errno) to nr when argument arg is none of vals[0..n-1].  A rule may compare each argument only
 * once, so the values between two listed ones are covered by aligned blocks, (value & ~(size - 1)) == base,
 * as a range of addresses is covered by CIDR prefixes; below the first and above the last are one comparison
 * each.  A handful of rules per gap.
 */
static int rule_outside(struct filter *f, int nr, const char *what, unsigned int arg, const uint64_t *vals,
			size_t n, uint32_t act)
{
	uint64_t v[16];
	int ret;

	if (n == 0 || n > 16)
		return fail(f->err, f->errlen, EINVAL, "filter rule for %s: %zu values", what, n);
	memcpy(v, vals, n * sizeof(v[0]));
	for (size_t i = 1; i < n; i++) /* insertion sort */
		for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
			uint64_t t = v[j];

			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	if (v[0] > 0 && (ret = rule(f, act, nr, what, 1, ARG(arg, LT, v[0]))))
		return ret;
	for (size_t i = 0; i + 1 < n; i++) {
		uint64_t lo = v[i] + 1, hi = v[i + 1] - 1;

		if (v[i + 1] - v[i] < 2)
			continue; /* no gap (or the same value twice) */
		for (;;) {
			uint64_t size = lo & -lo; /* lo > 0: the largest block aligned at lo ... */

			while (size - 1 > hi - lo) /* ... that ends by hi */
				size >>= 1;
			ret = rule(f, act, nr, what, 1, ARG_MASK(arg, ~(size - 1), lo));
			if (ret)
				return ret;
			if (hi - lo == size - 1)
				break;
			lo += size;
		}
	}
	if (v[n - 1] < UINT64_MAX && (ret = rule(f, act, nr, what, 1, ARG(arg, GT, v[n - 1]))))
		return ret;
	return 0;
}

static int rule_only(struct filter *f, int nr, const char *what, unsigned int arg, const uint64_t *vals, size_t n,
		     uint32_t act)
{
	int ret = rule_in(f, nr, what, arg, vals, n);

	return ret ? ret : rule_outside(f, nr, what, arg, vals, n, act);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static int filter_rules(struct filter *f)
{
	static const uint64_t inet_unix[] = { AF_UNIX, AF_INET, AF_INET6 };
	static const uint64_t families[] = { AF_UNIX, AF_INET, AF_INET6, AF_NETLINK };
	static const uint64_t unix_only[] = { AF_UNIX };
	/* isatty (stdio), the queue sizes and urgent mark programs ask for (SIOCINQ is FIONREAD, SIOCOUTQ is
	 * TIOCOUTQ), non-blocking and close-on-exec flags, and the interface name <-> index lookups libc makes for IPv6
	 * scope ids */
	static const uint64_t ioctls[] = { TCGETS, FIONREAD, TIOCOUTQ, SIOCOUTQNSD, SIOCATMARK, FIONBIO, FIOCLEX,
					   FIONCLEX, SIOCGIFNAME, SIOCGIFINDEX };
	/* queries libraries make, and thread names */
	static const uint64_t prctls[] = {
		PR_GET_DUMPABLE, PR_SET_NAME, PR_GET_NAME, PR_GET_SECCOMP, PR_CAPBSET_READ, PR_GET_NO_NEW_PRIVS,
#if defined(__SANITIZE_ADDRESS__)
		PR_SET_DUMPABLE, PR_SET_PTRACER, PR_SET_PDEATHSIG,
#endif
	};
	int ret;

	for (size_t i = 0; i < N(allowed); i++) {
		int nr = seccomp_syscall_resolve_name(allowed[i]);

		/* A libseccomp older than the call does not know it, nor did the libc of its day: leaving it out
		 * can only make the filter stricter. */
		if (nr != __NR_SCMP_ERROR && (ret = rule(f, SCMP_ACT_ALLOW, nr, allowed[i], 0)))
			return ret;
	}

	/* socket: the relay's TCP and UDP, AF_UNIX (scratch pairs, sd_notify), and NETLINK_ROUTE for
	 * getifaddrs (the registry's ip_addrs).  Another family fails as on a kernel built without it. */
	if ((ret = rule_in(f, SCMP_SYS(socket), "socket", 0, inet_unix, N(inet_unix))) ||
	    (ret = rule(f, SCMP_ACT_ALLOW, SCMP_SYS(socket), "socket", 2, ARG(0, EQ, AF_NETLINK),
			ARG(2, EQ, NETLINK_ROUTE))) ||
	    (ret = rule(f, SCMP_ACT_ERRNO(EPROTONOSUPPORT), SCMP_SYS(socket), "socket", 2, ARG(0, EQ, AF_NETLINK),
			ARG(2, NE, NETLINK_ROUTE))) ||
	    (ret = rule_outside(f, SCMP_SYS(socket), "socket", 0, families, N(families),
				SCMP_ACT_ERRNO(EAFNOSUPPORT))))
		return ret;
	/* carriers are AF_UNIX pairs */
	if ((ret = rule_only(f, SCMP_SYS(socketpair), "socketpair", 0, unix_only, N(unix_only),
			     SCMP_ACT_ERRNO(EAFNOSUPPORT))))
		return ret;
	if ((ret = rule_only(f, SCMP_SYS(ioctl), "ioctl", 1, ioctls, N(ioctls), SCMP_ACT_ERRNO(ENOTTY))))
		return ret;
	if ((ret = rule_only(f, SCMP_SYS(prctl), "prctl", 0, prctls, N(prctls), SCMP_ACT_ERRNO(EINVAL))))
		return ret;

	/* Memory, never executable: mwinsd maps no code once it serves.  A dlopen a library might try (NSS,
	 * iconv) fails as on a noexec mount. */
	if ((ret = rule(f, SCMP_ACT_ALLOW, SCMP_SYS(mmap), "mmap", 1, ARG_MASK(2, PROT_EXEC, 0))) ||
	    (ret = rule(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(mmap), "mmap", 1, ARG_MASK(2, PROT_EXEC, PROT_EXEC))) ||
	    (ret = rule(f, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), "mprotect", 1, ARG_MASK(2, PROT_EXEC, 0))) ||
	    (ret = rule(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(mprotect), "mprotect", 1,
			ARG_MASK(2, PROT_EXEC, PROT_EXEC))))
		return ret;

	/* lseek by 0 only: stdio's fopen("a") and ftell.  With no other seek, and no pread/pwrite, a
	 * /proc/PID/mem that CAP_SYS_PTRACE could open (a process of our own uid) is stuck at address 0. */
	if ((ret = rule(f, SCMP_ACT_ALLOW, SCMP_SYS(lseek), "lseek", 1, ARG(1, EQ, 0))) ||
	    (ret = rule(f, SCMP_ACT_ERRNO(ESPIPE), SCMP_SYS(lseek), "lseek", 1, ARG(1, NE, 0))))
		return ret;

	/* Signals: 0 through a client's pidfd (is the pid still that client?), and to ourselves (abort). */
	if ((ret = rule(f, SCMP_ACT_ALLOW, SCMP_SYS(pidfd_send_signal), "pidfd_send_signal", 1, ARG(1, EQ, 0))) ||
	    (ret = rule(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(pidfd_send_signal), "pidfd_send_signal", 1,
			ARG(1, NE, 0))) ||
	    (ret = rule(f, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), "tgkill", 1, ARG(0, EQ, (uint64_t)getpid()))))
		return ret;

	/* Our own limits, read only (metrics): prlimit64(0, resource, NULL, &old). */
	if ((ret = rule(f, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), "prlimit64", 2, ARG(0, EQ, 0), ARG(2, EQ, 0))) ||
	    (ret = rule(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(prlimit64), "prlimit64", 1, ARG(0, NE, 0))) ||
	    (ret = rule(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(prlimit64), "prlimit64", 2, ARG(0, EQ, 0),
			ARG(2, NE, 0))))
		return ret;

#if defined(__SANITIZE_ADDRESS__)
	{
		static const uint64_t lsan_clone[] = { ASAN_LSAN_CLONE };

		for (size_t i = 0; i < N(allowed_asan); i++)
			if ((ret = rule(f, SCMP_ACT_ALLOW, seccomp_syscall_resolve_name(allowed_asan[i]),
					allowed_asan[i], 0)))
				return ret;
		/* Any other clone (a symbolizer the report would spawn) fails, and the report goes out
		 * unsymbolized instead of not at all.  execve still kills. */
		if ((ret = rule_only(f, SCMP_SYS(clone), "clone", 0, lsan_clone, N(lsan_clone),
				     SCMP_ACT_ERRNO(EPERM))) ||
		    (ret = rule(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), "clone3", 0)) ||
		    (ret = rule(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(fork), "fork", 0)) ||
		    (ret = rule(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(vfork), "vfork", 0)))
			return ret;
	}
#endif
	return 0;
}

static int filter_load(char *err, size_t errlen)
{
	struct filter f = { .err = err, .errlen = errlen };
	int ret;

	f.ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!f.ctx)
		return fail(err, errlen, ENOSYS, "seccomp_init failed (a kernel before 4.14 has no KILL_PROCESS)");
	/*
	 * The filter holds the native architecture only (seccomp_init adds no other).  A call made through the
	 * i386 ABI (int 0x80) carries another AUDIT_ARCH, and an x32 call has __X32_SYSCALL_BIT in its number:
	 * libseccomp's x86_64 filter sends both to the bad-arch action, which kills as the default does.
	 * no_new_privs is not left to libseccomp: step 2 set it, in the open.  TSYNC: a thread some library
	 * started would get the filter too (or the load fails).
	 */
	if ((ret = seccomp_attr_set(f.ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) < 0 ||
	    (ret = seccomp_attr_set(f.ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0 ||
	    (ret = seccomp_attr_set(f.ctx, SCMP_FLTATR_CTL_TSYNC, 1)) < 0) {
		ret = fail(err, errlen, -ret, "seccomp attributes: %s", strerror(-ret));
		goto out;
	}
#if SCMP_VER_MAJOR > 2 || (SCMP_VER_MAJOR == 2 && SCMP_VER_MINOR >= 5)
	/* A binary search on the call number instead of a linear scan: every relay read and write pays it. */
	seccomp_attr_set(f.ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
#endif
	ret = filter_rules(&f);
	if (ret)
		goto out;
	ret = seccomp_load(f.ctx);
	if (ret < 0)
		ret = fail(err, errlen, -ret, "loading the system call filter: %s", strerror(-ret));
out:
	seccomp_release(f.ctx);
	return ret;
}

#else /* not x86_64 */

static int filter_load(char *err, size_t errlen)
{
	return fail(err, errlen, ENOTSUP, "the system call filter is written for x86_64 (64-bit ABI) only; on "
		    "this architecture run with --no-seccomp");
}

#endif

/* ---- the one entry ----------------------------------------------------------------------------------- */

int sandbox_enter(const struct sandbox_cfg *cfg, char *err, size_t errlen)
{
	int ret;

	if (err && errlen)
		err[0] = 0;
	if (cfg->user) {
		uid_t uid;
		gid_t gid;

		ret = user_find(cfg->user, &uid, &gid, err, errlen);
		if (ret)
			return ret;
		if (geteuid() == 0) {
			ret = dirs_give(cfg, uid, gid, err, errlen);
			if (!ret)
				ret = user_switch(uid, gid, err, errlen);
			if (ret)
				return ret;
		} else if (getuid() != uid || geteuid() != uid) {
			return fail(err, errlen, EPERM, "--user %s: only root can switch users (we are uid %u)",
				    cfg->user, (unsigned)geteuid());
		}
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail(err, errlen, errno, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
	if (cfg->no_seccomp)
		return 0;
	return filter_load(err, errlen);
}
