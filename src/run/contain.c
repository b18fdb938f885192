/*
 * contain.c: the command's confinement, in one place.  The command, whatever user it starts as and
 * whatever it does afterwards, reaches the network only through its INS, and can neither see, signal nor
 * trace mwinsd, mwrun or any host process, nor change what mwcomms relies on.
 *
 *   mwrun                        host namespaces; starts the DNS forwarder in the command's network namespace
 *    `- C                        contain_enter: the network namespace N (lo only; with --userns inside a
 *        |                       user namespace U of its own), a mount namespace, a PID namespace for its
 *        |                       children; then waits for I, passing signals on
 *        `- I: PID 1             init_main: mounts /proc for the new PID namespace (host processes vanish
 *            |                   from it), binds mwcomms's files read-only, runs the gate (gate.c), reaps
 *            |                   orphans and passes signals on.  When the command ends, I exits, and the
 *            |                   kernel kills whatever the command left behind: a program's network ends
 *            |                   with the run that gave it
 *            `- X: the command   command_main: a user namespace of its own, U2, and a mount namespace in
 *                                it (every mount made above is locked there: it can't be unmounted to show
 *                                what it covers, nor made writable), the gate's filter, then exec
 *
 * Why a user namespace for root too: a capability acts only on what its user namespace owns.  The host's
 * network namespaces (and the ones `ip netns` pins in /run/netns) are owned by the initial user namespace,
 * so setns() into any of them fails with EPERM, as do moving interfaces out of N, ptrace of a process of
 * another user namespace, and mounting a procfs that would show host processes.  Root inside maps to root
 * outside (uid 0 to 0, and every other uid to itself), so programs that start as root and switch users
 * (nginx, sshd) work as they do outside, and files keep their owners.  What that leaves root inside: the
 * host's files, with root's access, except the ones bound read-only here (the registry, mwrun's directory
 * with mwinsd and the shim, /etc/mwcomms, the INS's policy file).  A file it writes that a host process later
 * runs (a cron job) runs outside the channel: contain a program that must not have that with a user that
 * owns nothing, as for any other program.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mwlib.h"
#include "run.h"

#define EXIT_MWRUN 125

static const int passed_on[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT };

/* If our parent dies (mwrun killed with SIGKILL), so do we, and with us, in turn, the init and so the whole
 * PID namespace: nothing of the run outlives it.  Set after every credential change (which clears it), and
 * checked against a parent that died already: by its pid, or, for the init (whose parent is outside its PID
 * namespace: getppid() says 0), by the hang-up of a pipe the parent holds open (alive_fd; -1 for none).
 * Returns 0, or -1 (printed). */
static int die_with_parent(pid_t parent, int alive_fd)
{
	struct pollfd p = { .fd = alive_fd, .events = POLLIN };

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || (alive_fd < 0 && getppid() != parent) ||
	    (alive_fd >= 0 && poll(&p, 1, 0) != 0)) {
		fprintf(stderr, "mwrun: the run's parent is gone\n");
		return -1;
	}
	return 0;
}

int contain_enter(const struct run_cfg *cfg)
{
	pid_t mwrun_pid = getppid();

	if (cfg->userns) {
		/* From here on this process holds every capability in its new user namespace (and none
		 * outside it), enough for what follows (userns.c). */
		if (userns_enter() < 0)
			return -1;
	} else if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "mwrun: cannot give the command a network namespace of its own: %s%s\n",
			strerror(errno), errno == EPERM ? " (mwrun needs CAP_SYS_ADMIN: run it as root, or with "
							  "--userns)" : "");
		return -1;
	}
	if (unshare(CLONE_NEWNS | CLONE_NEWPID) < 0) {
		fprintf(stderr, "mwrun: cannot give the command mount and PID namespaces of its own: %s\n",
			strerror(errno));
		return -1;
	}
	return die_with_parent(mwrun_pid, -1);
}

/* Bind path over itself read-only, keeping the flags the mount under it has (a user namespace may not
 * clear them).  A path that does not exist has nothing to protect.  Returns 0 or -errno. */
static int bind_read_only(const char *path)
{
	struct statvfs vfs;
	unsigned long keep = 0;

	if (access(path, F_OK) < 0)
		return 0;
	if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0 || statvfs(path, &vfs) < 0)
		return -errno;
	keep |= vfs.f_flag & ST_NOSUID ? MS_NOSUID : 0;
	keep |= vfs.f_flag & ST_NODEV ? MS_NODEV : 0;
	keep |= vfs.f_flag & ST_NOEXEC ? MS_NOEXEC : 0;
	keep |= vfs.f_flag & ST_NOATIME ? MS_NOATIME : 0;
	keep |= vfs.f_flag & ST_NODIRATIME ? MS_NODIRATIME : 0;
	keep |= vfs.f_flag & ST_RELATIME ? MS_RELATIME : 0;
	if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, NULL) < 0)
		return -errno;
	return 0;
}

/* The INS's policy file, as it names it in the registry beside its socket, into buf ("" if none). */
static void ins_policy_path(const char *sock, char *buf, size_t len)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(sock, '/');

	buf[0] = 0;
	if (slash && snprintf(dir, sizeof(dir), "%.*s", (int)(slash - sock), sock) < (int)sizeof(dir) &&
	    (ins_read_line(dir, "policy", buf, len) || buf[0] != '/'))
		buf[0] = 0;
}

/* Whether path is dir or lies under it. */
static bool path_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return !strncmp(path, dir, n) && (path[n] == 0 || path[n] == '/');
}

/* In I: a /proc of the new PID namespace, and what mwcomms relies on made read-only.  Returns 0, or -1 with
 * the reason printed. */
static int mounts_set(const struct run_cfg *cfg, const char *sock)
{
	char policy[PATH_MAX];
	const char *what[] = { cfg->registry, cfg->bindir, cfg->shimdir, cfg->mwinsd, "/etc/mwcomms", policy };
	int err = 0;

	ins_policy_path(sock, policy, sizeof(policy));
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
		fprintf(stderr, "mwrun: cannot mount /proc for the command's PID namespace: %s\n", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < sizeof(what) / sizeof(what[0]) && !err; i++) {
		bool done = false;

		if (!what[i] || what[i][0] != '/')
			continue;
		for (size_t j = 0; j < i; j++)
			done |= what[j] && what[j][0] == '/' && path_under(what[i], what[j]);
		if (done)
			continue;
		err = bind_read_only(what[i]);
		if (err)
			fprintf(stderr, "mwrun: cannot make %s read-only for the command: %s\n", what[i], strerror(-err));
	}
	return err ? -1 : 0;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		err = -errno;
	close(fd);
	return err;
}

/* In I: map the command's new user namespace.  As root, every id to itself (root inside is root on the
 * host's files, and the users it switches to are the host's), or with --map-root-to UID ids 0-65535 to
 * UID..UID+65535 (root inside owns nothing outside, as in rootless containers); with --userns, only ours,
 * as in U. */
static int map_user(const struct run_cfg *cfg, pid_t pid)
{
	char path[64], uid[64], gid[64], sg[16] = "";
	int fd, err;

	if (cfg->userns) {
		snprintf(uid, sizeof(uid), "%u %u 1\n", (unsigned)getuid(), (unsigned)getuid());
		snprintf(gid, sizeof(gid), "%u %u 1\n", (unsigned)getgid(), (unsigned)getgid());
		/* a user namespace whose parent may not setgroups may not either */
		fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && read(fd, sg, sizeof(sg) - 1) > 0 && strncmp(sg, "deny", 4) == 0) {
			snprintf(path, sizeof(path), "/proc/%d/setgroups", (int)pid);
			if ((err = write_file(path, "deny")) < 0) {
				close(fd);
				return err;
			}
		}
		if (fd >= 0)
			close(fd);
	} else if (cfg->root_map) {
		snprintf(uid, sizeof(uid), "0 %u 65536\n", (unsigned)cfg->root_map);
		snprintf(gid, sizeof(gid), "0 %u 65536\n", (unsigned)cfg->root_map);
	} else {
		snprintf(uid, sizeof(uid), "0 0 4294967295\n");
		snprintf(gid, sizeof(gid), "0 0 4294967295\n");
	}
	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
	if ((err = write_file(path, uid)) < 0)
		return err;
	snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
	return write_file(path, gid);
}

/* X: the command.  Never returns. */
static void command_main(const struct run_cfg *cfg, char **argv, int sp, const sigset_t *mask)
{
	int lfd = -1, err;
	char c;

	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) {
		fprintf(stderr, "mwrun: cannot give the command a user namespace of its own: %s\n", strerror(errno));
		_exit(EXIT_MWRUN);
	}
	if (write(sp, "u", 1) != 1 || read(sp, &c, 1) != 1)
		_exit(EXIT_MWRUN); /* I said why */
	/* Mapped to a range without host root: become its root (our host ids are not mapped in it), without
	 * the host's supplementary groups. */
	if (cfg->root_map && (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)) {
		fprintf(stderr, "mwrun: --map-root-to: cannot become root of the command's namespace: %s\n",
			strerror(errno));
		_exit(EXIT_MWRUN);
	}
	for (size_t i = 0; i < sizeof(passed_on) / sizeof(passed_on[0]); i++)
		signal(passed_on[i], SIG_DFL);
	sigprocmask(SIG_SETMASK, mask, NULL);
	if (cfg->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		fprintf(stderr, "mwrun: --no-new-privs: %s\n", strerror(errno));
		_exit(EXIT_MWRUN);
	}
	err = gate_filter_install(cfg, &lfd);
	if (err) {
		fprintf(stderr, "mwrun: cannot install the filter that keeps the command's connects inside: %s "
				"(it needs seccomp user notification, Linux 5.0, and pidfd_getfd, 5.6); not running "
				"the command\n", strerror(-err));
		_exit(EXIT_MWRUN);
	}
	if (mw_send_fd(sp, "l", 1, lfd, 0) != 1)
		_exit(EXIT_MWRUN);
	close(lfd);
	close(sp);
	execvp(argv[0], argv);
	fprintf(stderr, "mwrun: %s: %s\n", argv[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

/* I's loop: the gate's notifications, signals to pass on, orphans to reap, until the command ends.
 * Returns its exit status as mwrun reports it. */
static int supervise(const struct gate *g, pid_t cmd, int sfd, int lfd)
{
	int status = EXIT_MWRUN << 8;
	bool done = false;

	while (!done) {
		struct pollfd p[2] = { { .fd = sfd, .events = POLLIN }, { .fd = lfd, .events = POLLIN } };
		struct signalfd_siginfo si;

		if (poll(p, lfd >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if ((p[0].revents & POLLIN) && read(sfd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo != SIGCHLD)
				kill(cmd, (int)si.ssi_signo);
			for (pid_t pid; (pid = waitpid(-1, &status, WNOHANG)) > 0;)
				done |= pid == cmd;
		}
		if (lfd >= 0 && (p[1].revents & POLLIN) && gate_serve(g, lfd) < 0) {
			close(lfd);
			lfd = -1;
		}
		if (lfd >= 0 && (p[1].revents & (POLLHUP | POLLERR | POLLNVAL))) {
			close(lfd); /* nothing is left under the filter */
			lfd = -1;
		}
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* In I, after the read-only binds: the working directory again, by its path.  The one inherited still
 * points into the mount that was there before the binds, writable: a command started in the registry or in
 * mwrun's directory would write through it.  Returns 0, or -1 (printed) when the path can't be walked again
 * (then the command starts in /). */
static int cwd_again(void)
{
	char cwd[PATH_MAX];

	if (getcwd(cwd, sizeof(cwd)) && chdir(cwd) == 0)
		return 0;
	fprintf(stderr, "mwrun: the working directory can't be found again after the read-only binds (%s); the "
			"command starts in /\n", strerror(errno));
	return chdir("/") < 0 ? -1 : 0;
}

/* I: PID 1 of the command's PID namespace; alive_fd hangs up if C dies.  Returns the command's exit status. */
static int init_main(const struct run_cfg *cfg, const char *sock, char **argv, int alive_fd)
{
	struct gate g = { .cfg = cfg, .ins_sock = sock };
	sigset_t set, old;
	int sp[2], sfd, lfd = -1, trunc;
	pid_t cmd;
	char c;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t i = 0; i < sizeof(passed_on) / sizeof(passed_on[0]); i++)
		sigaddset(&set, passed_on[i]);
	sigprocmask(SIG_BLOCK, &set, &old);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (die_with_parent(0, alive_fd) < 0 || sfd < 0 || mounts_set(cfg, sock) < 0 || cwd_again() < 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return EXIT_MWRUN;
	cmd = fork();
	if (cmd < 0)
		return EXIT_MWRUN;
	if (cmd == 0) {
		close(sp[0]);
		close(sfd);
		command_main(cfg, argv, sp[1], &old);
	}
	close(sp[1]);
	if (read(sp[0], &c, 1) == 1) {
		int err = map_user(cfg, cmd);

		if (err)
			fprintf(stderr, "mwrun: cannot map the command's user namespace: %s\n", strerror(-err));
		else if (write(sp[0], "m", 1) == 1 && mw_recv_fd(sp[0], &c, 1, &lfd, &trunc, 0) != 1 && lfd >= 0) {
			close(lfd);
			lfd = -1;
		}
	}
	close(sp[0]); /* without "m", the command exits with EXIT_MWRUN before it runs */
	return supervise(&g, cmd, sfd, lfd);
}

static pid_t init_pid = -1;

static void pass_on(int sig)
{
	if (init_pid > 0)
		kill(init_pid, sig);
}

int contain_run(const struct run_cfg *cfg, const char *sock, char **argv)
{
	struct sigaction sa = { .sa_handler = pass_on };
	int status, alive[2];

	if (pipe2(alive, O_CLOEXEC) < 0 || (init_pid = fork()) < 0) {
		fprintf(stderr, "mwrun: cannot start the command's init: %s\n", strerror(errno));
		return EXIT_MWRUN;
	}
	if (init_pid == 0) {
		close(alive[1]);
		_exit(init_main(cfg, sock, argv, alive[0]));
	}
	close(alive[0]); /* alive[1] stays open while we live */
	for (size_t i = 0; i < sizeof(passed_on) / sizeof(passed_on[0]); i++)
		sigaction(passed_on[i], &sa, NULL);
	while (waitpid(init_pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}
