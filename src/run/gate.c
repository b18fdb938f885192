/*
 * gate.c: the command's connects, decided outside it.
 *
 * The command's network namespace bounds its INET sockets, but AF_UNIX pathname sockets are found through
 * the filesystem it shares with the host: a container engine's socket, the system bus, a local proxy are a
 * connect() away, and some of them are a way out of every boundary.  So the command runs under a seccomp
 * filter (installed before exec, inherited by every child and exec) that:
 *
 *   - hands every connect() to the gate (SECCOMP_RET_USER_NOTIF), which runs in mwrun's init, PID 1 of the
 *     command's PID namespace, outside its user namespace;
 *   - with --deny-unix-dgram, refuses AF_UNIX datagram sockets (EACCES from socket and socketpair, for
 *     SOCK_DGRAM and SOCK_RAW, which AF_UNIX makes a datagram socket too).  A
 *     datagram socket, a socketpair's too, may name any peer in each sendmsg, whose address seccomp can't
 *     see, and trapping every sendmsg would tax every carrier write.  So by default a datagram can reach a
 *     host datagram socket the command's user may write (syslog's /dev/log, journald's): logging, not a
 *     way out of the namespace; programs that use datagram socketpairs for their own IPC keep working;
 *   - refuses io_uring_setup (ENOSYS, as on a kernel without it), whose IORING_OP_CONNECT would not pass
 *     through connect(), and sockets of the families no network namespace bounds (AF_VSOCK, which reaches
 *     the hypervisor, and hardware ones: EAFNOSUPPORT);
 *   - hands the socket calls of programs that bypass the shim to the supervisor (sup.c, a thread of this
 *     process): socket() for AF_INET and AF_INET6, and the calls on an fd that may be a carrier, unless the
 *     fd argument is marked MW_FD_UNTRAPPED (the shim's own calls: proto.h); a connect on a connected unix
 *     stream socket (a carrier) goes there too, after the gate has read its address;
 *   - lets every other call through, and calls of another ABI fail with ENOSYS (32-bit programs do not run).
 *
 * The gate makes the connect itself, on its own duplicate of the program's socket (pidfd_getfd), with the
 * address it copied once out of the program's memory: what it checked is what it connects, however the
 * program changes its memory or its descriptor table meanwhile (a continued call would read them again).
 * An AF_UNIX pathname is resolved to an inode the gate holds open (O_PATH) and checks, then connected through
 * /proc/self/fd/N, so a rename between the check and the connect changes nothing; the path is walked and
 * the socket written to with the caller's filesystem ids and groups (as_caller), so permissions hold as for
 * the caller.  It may connect to:
 *   - its INS's rendezvous socket (or, unless pinned to it, any INS's the registry lists: the shim moves to
 *     another when its INS dies), and each --allow-unix PATH (the inode that path names at connect time);
 *   - a socket bound in the command's own network namespace (unix_diag, UDIAG_SHOW_VFS: the kernel's list);
 *   - any abstract name (the abstract namespace is per network namespace: the command's own).
 * Anything else gets EACCES, as a socket file one may not write would.  A connected stream or seqpacket
 * socket (a carrier: made in mwinsd's namespace) gets EISCONN without a lookup.  Connects of AF_INET,
 * AF_INET6 and AF_NETLINK are made as asked: they reach the command's namespace, which has nothing but lo;
 * any other family gets EAFNOSUPPORT.
 *
 * The peer of a connect made here sees the gate as the connecting process (SO_PEERCRED); mwinsd knows its
 * clients by SCM_CREDENTIALS instead (src/ins/client.c), so its records still name the program.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/seccomp.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "mwcomms/proto.h"
#include "run.h"

#define NGROUPS_MAX_GATE 256

#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

/* Load ctx's program with a notification listener, by hand: libseccomp 2.5 can't ask that, once the gate
 * holds a call, only a fatal signal takes it back (SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, Linux 5.19).
 * Without it an interrupted connect would run again after the gate made the first one; on older kernels
 * that is what happens (a restarted connect then gets EISCONN).  Returns 0 or -errno. */
static int filter_load(scmp_filter_ctx ctx, int *listener)
{
	struct sock_filter insns[1024];
	struct sock_fprog prog = { .filter = insns };
	ssize_t n, got = 0;
	int fd = memfd_create("mwrun-filter", MFD_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = seccomp_export_bpf(ctx, fd);
	while (!ret && (n = pread(fd, (char *)insns + got, sizeof(insns) - (size_t)got, got)) > 0)
		got += n;
	close(fd);
	if (ret)
		return ret;
	if (got <= 0 || got % (ssize_t)sizeof(insns[0]) || got == (ssize_t)sizeof(insns))
		return -E2BIG;
	prog.len = (unsigned short)(got / (ssize_t)sizeof(insns[0]));
	fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
			  SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &prog);
	if (fd < 0 && errno == EINVAL)
		fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	if (fd < 0)
		return -errno;
	*listener = fd;
	return 0;
}

int gate_filter_install(const struct run_cfg *cfg, int *listener)
{
	static const int unbounded[] = { AF_VSOCK, AF_BLUETOOTH, AF_NFC, AF_CAIF, AF_QIPCRTR, AF_IUCV };
	const int fd_calls[] = { SCMP_SYS(getsockname), SCMP_SYS(getpeername), SCMP_SYS(getsockopt),
				 SCMP_SYS(setsockopt), SCMP_SYS(shutdown), SCMP_SYS(bind), SCMP_SYS(listen),
				 SCMP_SYS(accept), SCMP_SYS(accept4) };
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int ret;

	if (!ctx)
		return -ENOMEM;
	if ((ret = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO(ENOSYS))) < 0 ||
	    (ret = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0 ||
	    (ret = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(connect), 0)) < 0 ||
	    (ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(io_uring_setup), 0)) < 0)
		goto out;
	/* The supervisor's calls (sup.c): INET sockets, and the calls on an fd that may be a carrier, unless
	 * the fd argument carries MW_FD_UNTRAPPED (the shim's own calls: they cost a dynamic program nothing). */
	for (int f = 0; f < 2; f++)
		if ((ret = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(socket), 1,
					    SCMP_A0(SCMP_CMP_EQ, f ? AF_INET6 : AF_INET))) < 0)
			goto out;
	for (size_t i = 0; i < sizeof(fd_calls) / sizeof(fd_calls[0]); i++)
		if ((ret = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, fd_calls[i], 1,
					    SCMP_A0(SCMP_CMP_MASKED_EQ, MW_FD_UNTRAPPED_MASK, 0))) < 0)
			goto out;
	/* Families that no network namespace bounds (AF_VSOCK reaches the hypervisor; the others, hardware):
	 * as on a kernel without them. */
	for (size_t i = 0; i < sizeof(unbounded) / sizeof(unbounded[0]); i++)
		if ((ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
					    SCMP_A0(SCMP_CMP_EQ, unbounded[i]))) < 0)
			goto out;
	/* SOCK_RAW is a datagram socket too, for AF_UNIX. */
	for (int t = 0; cfg->deny_unix_dgram && t < 2; t++) {
		int type = t ? SOCK_RAW : SOCK_DGRAM;

		if ((ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 2, SCMP_A0(SCMP_CMP_EQ, AF_UNIX),
					    SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, type))) < 0 ||
		    (ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socketpair), 2,
					    SCMP_A0(SCMP_CMP_EQ, AF_UNIX), SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, type))) < 0)
			goto out;
	}
	ret = filter_load(ctx, listener);
out:
	seccomp_release(ctx);
	return ret;
}

/* Is (dev, ino) the file of a socket bound in our network namespace (the command's)?  unix_diag lists every
 * AF_UNIX socket of the namespace with the inode its path names.  A kernel without unix_diag answers no. */
static bool bound_here(dev_t dev, ino_t ino)
{
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req req;
	} q = {
		.nlh = { .nlmsg_len = sizeof(q), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
		.req = { .sdiag_family = AF_UNIX, .udiag_states = ~0u, .udiag_show = UDIAG_SHOW_VFS },
	};
	static char buf[32768];
	bool found = false, done = false;
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);

	if (fd < 0)
		return false;
	if (send(fd, &q, sizeof(q), 0) != sizeof(q))
		done = true;
	while (!done) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h = (struct nlmsghdr *)buf;

		if (n <= 0)
			break;
		for (; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			struct unix_diag_msg *m = NLMSG_DATA(h);
			int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*m));

			if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
				done = true;
				break;
			}
			if (len < 0)
				continue;
			for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
				struct unix_diag_vfs v;

				if (a->rta_type != UNIX_DIAG_VFS || RTA_PAYLOAD(a) < sizeof(v))
					continue;
				memcpy(&v, RTA_DATA(a), sizeof(v));
				/* the kernel's own dev_t: 12 bits of major above 20 of minor */
				if (v.udiag_vfs_ino == ino && makedev(v.udiag_vfs_dev >> 20, v.udiag_vfs_dev & 0xfffff) == dev)
					found = true;
			}
		}
	}
	close(fd);
	return found;
}

static bool same_file(const char *path, const struct stat *st)
{
	struct stat p;

	return stat(path, &p) == 0 && p.st_dev == st->st_dev && p.st_ino == st->st_ino;
}

/* 1 if the socket the instance in dir names (its "sock" file) is the file st points at. */
static int names_socket(const char *dir, const char *id, void *st)
{
	char sock[PATH_MAX];

	(void)id;
	return !ins_read_line(dir, "sock", sock, sizeof(sock)) && same_file(sock, st);
}

/* Is st the rendezvous socket of an INS the registry lists?  When its INS goes, the shim attaches to another
 * one there (unless pinned to its INS: -s, or this run's own INS).  The registry is read-only to the command:
 * what it names, an operator's mwinsd wrote. */
static bool registry_ins(const struct gate *g, const struct stat *st)
{
	return !g->cfg->sock && !g->cfg->embedded && ins_each(g->cfg->registry, names_socket, (void *)st);
}

/* May the command connect to the socket file st?  (See the top of this file.) */
static bool unix_allowed(const struct gate *g, const struct stat *st)
{
	if (same_file(g->ins_sock, st) || registry_ins(g, st))
		return true;
	for (int i = 0; i < g->cfg->nallow_unix; i++)
		if (same_file(g->cfg->allow_unix[i], st))
			return true;
	return bound_here(st->st_dev, st->st_ino);
}

/* Take on (on true) the filesystem ids and groups of thread tid, as /proc says them, or go back to ours (on
 * false).  The gate is single-threaded: nothing else runs meanwhile.  Changing the filesystem uid away from
 * 0 also drops the capabilities that override file permissions, as for any process.  Returns 0 or -EACCES
 * (the caller's ids could not be read or taken: the connect is refused). */
static int as_caller(pid_t tid, bool on)
{
	static gid_t own_groups[NGROUPS_MAX_GATE], groups[NGROUPS_MAX_GATE];
	static int own_n = -1;
	char path[64], line[1024];
	unsigned fsuid = (unsigned)-1, fsgid = (unsigned)-1, u[3];
	int n = 0;
	FILE *f;

	if (!on) {
		setfsuid(geteuid());
		setfsgid(getegid());
		if (own_n >= 0)
			setgroups((size_t)own_n, own_groups);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return -EACCES;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Uid: %u %u %u %u", &u[0], &u[1], &u[2], &fsuid) == 4 ||
		    sscanf(line, "Gid: %u %u %u %u", &u[0], &u[1], &u[2], &fsgid) == 4)
			continue;
		if (strncmp(line, "Groups:", 7) == 0)
			for (char *t = strtok(line + 7, " \t\n"); t && n < NGROUPS_MAX_GATE; t = strtok(NULL, " \t\n"))
				groups[n++] = (gid_t)strtoul(t, NULL, 10);
	}
	fclose(f);
	if (fsuid == (unsigned)-1 || fsgid == (unsigned)-1)
		return -EACCES;
	if (own_n < 0)
		own_n = getgroups(NGROUPS_MAX_GATE, own_groups);
	/* In a user namespace whose setgroups is denied (mwrun --userns) the caller's groups are ours anyway. */
	if (setgroups((size_t)n, groups) < 0 && errno != EPERM)
		return -EACCES;
	setfsgid(fsgid);
	setfsuid(fsuid);
	if ((unsigned)setfsuid((uid_t)-1) != fsuid || (unsigned)setfsgid((gid_t)-1) != fsgid) {
		as_caller(tid, false);
		return -EACCES;
	}
	return 0;
}

/* connect(fd, sun of len bytes) for pid, resolving a pathname in its working directory.  Returns 0 or
 * -errno, as the program's connect would have. */
static int connect_unix_path(const struct gate *g, pid_t pid, int fd, const struct sockaddr_un *sun, socklen_t len)
{
	char path[sizeof(sun->sun_path) + 1], via[64];
	struct sockaddr_un to = { .sun_family = AF_UNIX };
	size_t plen = len - offsetof(struct sockaddr_un, sun_path);
	struct stat st;
	int cwd, target, ret = 0;

	memcpy(path, sun->sun_path, plen);
	path[plen] = 0; /* the kernel, too, takes the name up to its first NUL */
	snprintf(via, sizeof(via), "/proc/%d/cwd", (int)pid);
	cwd = open(via, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cwd < 0)
		return -ENOENT;
	/* The path is walked, and the socket written to, with the caller's filesystem credentials: a command
	 * that dropped to nobody gets what nobody would, not what the gate's root could. */
	ret = as_caller(pid, true);
	target = ret ? -1 : openat(cwd, path, O_PATH | O_CLOEXEC);
	if (!ret && target < 0)
		ret = errno == ENOENT || errno == ENOTDIR || errno == EACCES || errno == ELOOP ? -errno : -ENOENT;
	close(cwd);
	if (ret)
		;
	else if (fstat(target, &st) < 0 || !S_ISSOCK(st.st_mode))
		ret = -ECONNREFUSED; /* what connecting to a file that is not a socket gives */
	else if (!unix_allowed(g, &st))
		ret = -EACCES;
	if (!ret) {
		snprintf(to.sun_path, sizeof(to.sun_path), "/proc/self/fd/%d", target);
		if (connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0)
			ret = -errno;
	}
	as_caller(pid, false);
	if (ret == -EACCES && g->cfg->verbose)
		fprintf(stderr, "mwrun: the command's connect to %s refused (a host socket: --allow-unix %s lets it "
				"through)\n", path, path);
	if (target >= 0)
		close(target);
	return ret;
}

/* The connect itself, on fd (the gate's duplicate of the caller's socket), to ss (len bytes, the gate's own
 * copy).  Returns 0 or -errno. */
static int connect_checked(const struct gate *g, pid_t pid, int fd, const struct sockaddr_storage *ss, socklen_t len)
{
	const struct sockaddr_un *sun = (const struct sockaddr_un *)ss;
	int domain, type;
	socklen_t dl = sizeof(domain), tl = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dl) < 0 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0)
		return -errno;
	/* Families bound by a network namespace only: another (AF_VSOCK reaches the hypervisor) goes nowhere. */
	if (domain != AF_UNIX && domain != AF_INET && domain != AF_INET6 && domain != AF_NETLINK)
		return -EAFNOSUPPORT;
	if (domain != AF_UNIX)
		return connect(fd, (const struct sockaddr *)ss, len) < 0 ? -errno : 0;
	if (len > sizeof(*sun))
		return -EINVAL; /* as the kernel's unix_validate_addr */
	/* A connected stream or seqpacket socket (every carrier: made in mwinsd's namespace) can't connect
	 * again; the kernel would look the name up first, in the socket's own namespace. */
	if (type != SOCK_DGRAM && getpeername(fd, (struct sockaddr *)&(struct sockaddr_storage){ 0 },
					      &(socklen_t){ sizeof(struct sockaddr_storage) }) == 0)
		return -EISCONN;
	if (len > offsetof(struct sockaddr_un, sun_path) && sun->sun_family == AF_UNIX && sun->sun_path[0])
		return connect_unix_path(g, pid, fd, sun, len);
	return connect(fd, (const struct sockaddr *)ss, len) < 0 ? -errno : 0;
}

/* The process (thread group) of thread tid, from /proc: tid itself if that can't be read. */
static pid_t thread_group(pid_t tid)
{
	char path[64], line[128];
	pid_t tgid = tid;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return tid;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid;
}

/* Is the call of req no longer waiting (its thread killed, its process gone)? */
static bool gone(int lfd, struct seccomp_notif *req)
{
	return ioctl(lfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) < 0;
}

/* Is fd a connected AF_UNIX stream socket (which a carrier is)? */
static bool is_connected_stream(int fd)
{
	int domain, type;
	socklen_t dl = sizeof(domain), tl = sizeof(type);

	return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dl) == 0 && domain == AF_UNIX &&
	       getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_STREAM &&
	       getpeername(fd, (struct sockaddr *)&(struct sockaddr_storage){ 0 },
			   &(socklen_t){ sizeof(struct sockaddr_storage) }) == 0;
}

/* The connect that notification req asks for, made here.  Returns 0 or -errno for the program, or 1 when
 * the call is gone (the program died, or the thread was killed) and needs no answer: a call that still
 * waits always gets one. */
static int gate_connect(const struct gate *g, int lfd, struct seccomp_notif *req)
{
	struct sockaddr_storage ss;
	uint64_t ulen = req->data.args[2];
	struct iovec local = { &ss, 0 }, remote = { (void *)(uintptr_t)req->data.args[1], 0 };
	int pidfd, fd, ret;
	pid_t tgid;

	if ((int)ulen < 0 || ulen > sizeof(ss))
		return -EINVAL; /* as the kernel's move_addr_to_kernel */
	local.iov_len = remote.iov_len = ulen;
	/* req->pid is the calling thread's; a pidfd names its process (the thread group's leader) */
	tgid = thread_group(req->pid);
	pidfd = (int)syscall(SYS_pidfd_open, tgid, 0);
	if (pidfd < 0)
		return gone(lfd, req) ? 1 : -EACCES;
	fd = (int)syscall(SYS_pidfd_getfd, pidfd, (int)req->data.args[0], 0);
	close(pidfd);
	if (fd < 0)
		return errno == EBADF ? -EBADF : gone(lfd, req) ? 1 : -EACCES;
	if (ulen && process_vm_readv(req->pid, &local, 1, &remote, 1, 0) != (ssize_t)ulen)
		ret = -EFAULT;
	/* The pid read from is the caller still (not a new process with its number). */
	else if (gone(lfd, req))
		ret = 1;
	else if (is_connected_stream(fd) && sup_start(g, lfd) == 0 && sup_take(req, tgid, fd, &ss, (socklen_t)ulen) == 0)
		return 1; /* maybe a carrier: the supervisor answers, and closes fd */
	else
		ret = connect_checked(g, req->pid, fd, &ss, (socklen_t)ulen);
	close(fd);
	return ret;
}


int gate_serve(const struct gate *g, int lfd)
{
	struct seccomp_notif *req;
	struct seccomp_notif_resp *rsp;
	struct seccomp_notif_sizes sz;
	int ret;

	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz) < 0)
		return -errno;
	/* the kernel's structures may have grown: allocate what it says, at least what we know */
	req = calloc(1, sz.seccomp_notif > sizeof(*req) ? sz.seccomp_notif : sizeof(*req));
	rsp = calloc(1, sz.seccomp_notif_resp > sizeof(*rsp) ? sz.seccomp_notif_resp : sizeof(*rsp));
	if (!req || !rsp) {
		ret = -ENOMEM;
		goto out;
	}
	if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, req) < 0) {
		ret = errno == EINTR || errno == ENOENT ? 0 : -errno; /* ENOENT: the caller went away first */
		goto out;
	}
	/* Everything but connect is the supervisor's (sup.c); it answers them itself. */
	if (req->data.nr == __NR_connect)
		ret = gate_connect(g, lfd, req);
	else if (sup_start(g, lfd) == 0 && sup_take(req, thread_group(req->pid), -1, NULL, 0) == 0)
		ret = 1;
	else
		ret = -ENETDOWN; /* the supervisor could not start: fail closed */
	if (ret != 1) {
		rsp->id = req->id;
		rsp->error = ret;
		ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, rsp); /* ENOENT: it died meanwhile; nothing to do */
	}
	ret = 0;
out:
	free(req);
	free(rsp);
	return ret;
}
