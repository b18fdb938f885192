/*
 * userns.c: mwrun without root.  A user who is not root can't make a network namespace (CLONE_NEWNET needs
 * CAP_SYS_ADMIN) nor write /run/mwcomms.  So, with --userns (the default when mwrun is not run as root):
 *
 *   - the command's namespaces are made inside a new user namespace, in which its caller's uid and gid map
 *     to themselves (nothing else is mapped).  The child holds every capability *in that namespace* until it
 *     execs: enough to bring lo up, add the DNS forwarder's local routes and bind-mount its resolv.conf, all
 *     in namespaces that this user namespace owns.  The command is then exec'd as the same user it was
 *     started as; for any user but root that is a uid other than 0 inside, so execve clears its
 *     capabilities (root with --userns stays root inside, its capabilities good in its namespaces only);
 *   - the registry, unless -r or $MWCOMMS_REGISTRY names one, is the user's own: $XDG_RUNTIME_DIR/mwcomms,
 *     else /tmp/mwcomms-UID, made mode 0700 and refused when someone else could have planted it.
 *
 * Why the command can't reach beyond its namespaces: a capability held in a user namespace acts only on
 * objects that namespace (or a descendant) owns.  The host's network namespace, and mwinsd's, are owned by
 * the initial user namespace; joining one (setns) or moving an interface out of one needs CAP_SYS_ADMIN or
 * CAP_NET_ADMIN there, which no process in the command's tree ever has.  After exec the command holds no
 * capability at all; the ways back to some are:
 *   - a nested user namespace of its own (unshare -U), with capabilities over the namespaces it then makes
 *     (new network namespaces with nothing in them, its own copy of the mount tree), not over its parents';
 *   - file capabilities on exec (ping's cap_net_raw, say): granted in the command's user namespace only, so
 *     at most such a program acts on the command's own namespaces (raw sockets on its lo, its routes, its
 *     mounts: it could remove the DNS routes or the resolv.conf bind mount, and break only its own DNS).
 *     Set-user-ID programs gain nothing: uid 0 (and every uid but the caller's) is unmapped in the
 *     namespace, and the kernel ignores a set-ID bit whose owner is unmapped.
 * None of that adds a way out of its network namespace: that stays the INS.  What it keeps, as without
 * mwrun, is its user's: files, filesystem AF_UNIX sockets (not per network namespace: that is how the shim
 * reaches mwinsd), the registry (a user's registry is writable by anything that runs as that user), and
 * signals to the user's processes.  It can't ptrace or join the namespaces of those outside its user
 * namespace, its embedded mwinsd included; but that mwinsd runs as the same user, so its control socket
 * (mode 0600, SO_PEERCRED checked against mwinsd's own uid) lets the command in: an INS whose policy must
 * hold against the program has to run as another user (root), found with -r.
 *
 * The capability bounding set is left full on purpose: emptying it would make exec of a binary with
 * effective file capabilities (ping) fail with EPERM, and it buys nothing beyond the namespace.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "mwlib.h"
#include "run.h"

/* The longest socket path an embedded mwinsd makes under the registry (sun_path holds 108 bytes). */
#define REG_SOCK_TAIL "/ins/embedded-4194304/ins.sock"
#define SUN_PATH_MAX 108

/* A sysctl's value as a number, or -1 if it does not exist or can't be read. */
static long sysctl_read(const char *path)
{
	char buf[32];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return strtol(buf, NULL, 10);
}

void userns_explain(int err)
{
	long max = sysctl_read("/proc/sys/user/max_user_namespaces");
	long clone = sysctl_read("/proc/sys/kernel/unprivileged_userns_clone");
	long aa = sysctl_read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");

	if (max == 0)
		fprintf(stderr, "mwrun: user namespaces are turned off (sysctl user.max_user_namespaces = 0); "
				"allow them with `sysctl -w user.max_user_namespaces=15000`, or run mwrun as root\n");
	else if (err == -ENOSPC)
		fprintf(stderr, "mwrun: the limit of user namespaces is reached (sysctl user.max_user_namespaces = "
				"%ld, counted per user), or they nest too deeply; raise the sysctl, or run mwrun as "
				"root\n", max);
	else if (err == -EPERM && clone == 0 && geteuid() != 0)
		fprintf(stderr, "mwrun: unprivileged user namespaces are turned off (sysctl "
				"kernel.unprivileged_userns_clone = 0); allow them with `sysctl -w "
				"kernel.unprivileged_userns_clone=1`, or run mwrun as root\n");
	else if (err == -EPERM && aa == 1 && geteuid() != 0)
		fprintf(stderr, "mwrun: AppArmor restricts unprivileged user namespaces (sysctl "
				"kernel.apparmor_restrict_unprivileged_userns = 1); set it to 0, or give mwrun an "
				"AppArmor profile that allows `userns,`, or run mwrun as root\n");
	else if (err == -EPERM)
		fprintf(stderr, "mwrun: user namespaces are not permitted here (mwrun may be in a chroot, or a "
				"seccomp filter forbids them, as in many containers); run mwrun as root\n");
	else if (err == -EINVAL)
		fprintf(stderr, "mwrun: this kernel has no user namespaces (CONFIG_USER_NS); run mwrun as root\n");
}

/* Write text to /proc/self/<name>.  Returns 0 or -errno. */
static int proc_self_write(const char *name, const char *text)
{
	char path[64];
	size_t len = strlen(text);
	ssize_t n;
	int fd, err = 0;

	snprintf(path, sizeof(path), "/proc/self/%s", name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, text, len);
	if (n < 0)
		err = -errno;
	else if ((size_t)n != len)
		err = -EIO;
	close(fd);
	return err;
}

int userns_enter(void)
{
	char map[64];
	uid_t uid = geteuid();
	gid_t gid = getegid();
	int err;

	if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0) {
		err = -errno;
		fprintf(stderr, "mwrun: cannot give the command a user namespace (and a network namespace in it): "
				"%s; not running the command\n", strerror(-err));
		userns_explain(err);
		return err;
	}
	/*
	 * The maps are written by this process, the one that made the namespace, for itself, rather than by
	 * mwrun's parent.  user_namespaces(7) lets a process without CAP_SETUID in the parent namespace write one
	 * line mapping its own effective uid (gid) if it has the same euid as the namespace's creator: here that
	 * holds by construction, with no second process to keep in step (no pipe round trip, no window in which
	 * the child would run unmapped, nothing for the parent to do if the child died early).  setgroups must
	 * be denied before an unprivileged gid_map is accepted; the caller's supplementary groups stay as they
	 * are (unmapped ones show as the overflow gid) and can't be dropped, so a group-based deny ACL still
	 * holds against the command.
	 */
	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
	err = proc_self_write("uid_map", map);
	if (!err) {
		err = proc_self_write("setgroups", "deny\n");
		if (err == -ENOENT)
			err = 0;   /* a kernel before 3.19: no setgroups file, and no such rule */
	}
	if (!err) {
		snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
		err = proc_self_write("gid_map", map);
	}
	if (err) {
		fprintf(stderr, "mwrun: cannot map uid %u and gid %u into the command's user namespace: %s; not "
				"running the command\n", (unsigned)uid, (unsigned)gid, strerror(-err));
		userns_explain(err);
	}
	return err;
}

/* Is the directory open at fd ours, and writable by nobody else?  Returns 0, or -EPERM with why in why. */
static int dir_private(int fd, char *why, size_t len)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, len, "is not a directory");
		return -ENOTDIR;
	}
	if (st.st_uid != geteuid()) {
		snprintf(why, len, "is owned by uid %u, not by you (uid %u)", (unsigned)st.st_uid,
			 (unsigned)geteuid());
		return -EPERM;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(why, len, "is writable by %s (mode %04o)",
			 (st.st_mode & S_IWOTH) ? "everyone" : "its group", (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* $XDG_RUNTIME_DIR, if it is set, absolute, ours, private and writable, and short enough for a socket path
 * under it.  Otherwise NULL, and the reason said with -v: the caller falls back to /tmp. */
static const char *xdg_usable(int verbose)
{
	const char *x = getenv("XDG_RUNTIME_DIR");
	char why[128] = "";
	int fd, err = 0;

	if (!x || !x[0])
		return NULL;
	if (x[0] != '/') {
		snprintf(why, sizeof(why), "is not an absolute path");
	} else if (strlen(x) + strlen("/mwcomms" REG_SOCK_TAIL) >= SUN_PATH_MAX) {
		snprintf(why, sizeof(why), "is too long for a socket path under it");
	} else if ((fd = open(x, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(why, sizeof(why), "can't be opened (%s)", strerror(errno));
	} else {
		err = dir_private(fd, why, sizeof(why));
		close(fd);
		if (!err && access(x, W_OK | X_OK) < 0)
			snprintf(why, sizeof(why), "is not writable (%s)", strerror(errno));
	}
	if (!why[0])
		return x;
	if (verbose)
		fprintf(stderr, "mwrun: not using $XDG_RUNTIME_DIR (%s): it %s\n", x, why);
	return NULL;
}

int userns_registry_default(char *buf, size_t len, int verbose)
{
	const char *xdg = xdg_usable(verbose);
	char why[128];
	int fd, err;
	bool made = false;

	if (xdg)
		snprintf(buf, len, "%s/mwcomms", xdg);
	else
		snprintf(buf, len, "/tmp/mwcomms-%u", (unsigned)geteuid());
	if (strlen(buf) + 1 >= len)
		return -ENAMETOOLONG;
	if (mkdir(buf, 0700) == 0)
		made = true;
	else if (errno != EEXIST)
		goto fail_errno;
	/* O_NOFOLLOW: a symlink planted at the name is refused, not followed to wherever it points. */
	fd = open(buf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP || errno == ENOTDIR) {
			snprintf(why, sizeof(why), "is not a directory (a symlink or a file)");
			err = -ENOTDIR;
			goto refuse;
		}
		goto fail_errno;
	}
	/* The umask may have taken bits from mkdir's mode; and it must not keep others out of less. */
	if (made && fchmod(fd, 0700) < 0) {
		err = -errno;
		close(fd);
		goto fail;
	}
	err = dir_private(fd, why, sizeof(why));
	close(fd);
	if (err == -EPERM || err == -ENOTDIR)
		goto refuse;
	if (err)
		goto fail;
	if (verbose)
		fprintf(stderr, "mwrun: registry %s (yours: mwrun is not root)\n", buf);
	return 0;
refuse:
	/* Another user could have made it: an INS of theirs there would see everything the command sends. */
	fprintf(stderr, "mwrun: refusing the registry %s: it %s, so another user could plant an INS in it; "
			"remove it, or name a registry with -r DIR or $MWCOMMS_REGISTRY\n", buf, why);
	return err;
fail_errno:
	err = -errno;
fail:
	fprintf(stderr, "mwrun: cannot make the registry %s: %s; name one with -r DIR or $MWCOMMS_REGISTRY\n",
		buf, strerror(-err));
	return err;
}

void userns_registry_seal(const char *registry)
{
	int fd = open(registry, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && st.st_uid == geteuid() && (st.st_mode & 077))
		fchmod(fd, 0700);
	close(fd);
}
