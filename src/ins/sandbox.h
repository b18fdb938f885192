/*
 * sandbox.h: how mwinsd gives up what it does not need, in one place and in a fixed order.
 *
 * mwinsd faces the network on one side and every protected program on the other (DESIGN.md, decision 3).
 * Whatever a bug in it lets either side do is bounded by what this call leaves.  mwinsd calls it once, at the
 * end of its start-up: after every listening socket, registry directory, log file and timer exists, and
 * before it serves anyone.  The steps, in this order:
 *
 *   1. cfg->user, when started as root: the instance directory (and every entry of it) and each of
 *      cfg->shared_dirs are given to that user; every capability but SANDBOX_CAPS leaves the bounding set;
 *      the process becomes the user (supplementary groups, gid, uid), keeping SANDBOX_CAPS alone in its
 *      permitted and effective sets, none inheritable, none ambient.
 *   2. no_new_privs: nothing it could still execute would gain privileges.
 *   3. Unless cfg->no_seccomp: a seccomp filter that allows the system calls mwinsd makes and kills the
 *      process (SIGSYS) on any other.  sandbox.c lists them, with why.  Native x86_64 only: a call through
 *      another ABI (i386 int 0x80, x32) kills too, and a build for another architecture refuses to start
 *      with the filter asked for.
 *
 * Without cfg->user, step 1 does nothing: a root mwinsd keeps root and every capability, and only the filter
 * bounds it.  Not started as root, cfg->user must name who we already are.  Deployments should give mwinsd a
 * user of its own, not nobody: every process of that user can tamper with the registry entry it is given.
 *
 * What mwinsd keeps (SANDBOX_CAPS), and why:
 *   CAP_NET_BIND_SERVICE  programs bind ports below 1024 (a web server on 80) through mwinsd.
 *   CAP_SYS_PTRACE        at attach, mwinsd reads the client's /proc/PID/ns/net and /proc/PID/exe: the kernel
 *                         allows both only if ptrace_may_access(PTRACE_MODE_READ_FSCREDS) does, which for a
 *                         client of another uid (or root's, with more capabilities than ours) takes
 *                         CAP_SYS_PTRACE.  (/proc/PID/{cmdline,comm,status} are world-readable.)  It does not
 *                         open other users' /proc/PID/{mem,environ,fd}: those are mode 0600/0400/0500 files
 *                         of their owner, and DAC still applies.  ptrace, process_vm_*, pidfd_getfd, kcmp
 *                         and seeking (what /proc/PID/mem of a same-uid process needs) are not in the filter.
 * Not kept: CAP_NET_ADMIN and CAP_NET_RAW (nothing mwinsd does needs them; kept, they would be lent to every
 * program: SO_SNDBUFFORCE, SO_PRIORITY above 6, IP_TRANSPARENT now fail with EPERM as for an unprivileged
 * program), CAP_KILL (signal 0 on the pidfd of another uid's client answers EPERM, which means "alive": only
 * ESRCH means gone), CAP_DAC_* and CAP_CHOWN.
 *
 * With cfg->user, what mwinsd touches after the switch must be the user's to touch: the event log's directory
 * (rotation renames in it), the policy file (read on SIGHUP), NOTIFY_SOCKET (systemd's is mode 0777).  At exit
 * the emptied instance directory stays: its parent is root's.
 *
 * Usage, at the end of main's start-up:
 *
 *	const char *shared[] = { clients_dir, NULL };
 *	struct sandbox_cfg sb = { .user = user, .instance_dir = ins.dir, .shared_dirs = shared };
 *	char why[512];
 *
 *	if (sandbox_enter(&sb, why, sizeof(why)) < 0) {
 *		fprintf(stderr, "mwinsd: %s\n", why);
 *		exit(1);
 *	}
 */
#ifndef MW_SANDBOX_H
#define MW_SANDBOX_H

#include <linux/capability.h>
#include <stdbool.h>
#include <stddef.h>

#define SANDBOX_CAPS ((1ULL << CAP_NET_BIND_SERVICE) | (1ULL << CAP_SYS_PTRACE))

struct sandbox_cfg {
	const char *user;               /* run as this user (a name, or a numeric uid with a passwd entry); it
					 * must not be root.  NULL: stay who we are */
	bool no_seccomp;                /* no system call filter (to debug a missing call); steps 1-2 still run */
	const char *instance_dir;       /* mwinsd's own registry directory, which it rewrites with write+rename:
					 * it and its entries go to user.  NULL: none */
	const char *const *shared_dirs; /* NULL-terminated, or NULL: directories mwinsd creates entries in that
					 * other instances share (the registry's clients/).  Each is made (0755)
					 * if missing and given to user; what is inside is left to its owners */
};

/*
 * Enter the sandbox.  Call once; it is not undone.  Returns 0, or a negative errno with a one-line reason
 * ("sandbox: setresuid(65534): Operation not permitted") in err.  On failure the process may be half-way
 * (already another user, say): the caller must exit without serving.  The filter is process-wide; any
 * thread started later inherits it.
 */
int sandbox_enter(const struct sandbox_cfg *cfg, char *err, size_t errlen);

#endif /* MW_SANDBOX_H */
