/* escape: one attempt to leave mwrun's containment, the way a hostile program would, with raw system calls
 * (no libc socket wrappers, so no shim), for tests/test_containment.py.  Built static.
 *
 *     escape ATTEMPT WORLD_ADDR WORLD_PORT [ARG]
 *
 * Prints one line: "ATTEMPT OUTCOME [DETAIL]" and exits 0.  OUTCOME is
 *     reached     it got an HTTP answer from WORLD_ADDR:WORLD_PORT over a kernel socket of its own
 *     done        the step succeeded (what it shows is in DETAIL), but world was not tried or not reached
 *     blocked     the step failed: DETAIL is the errno's name
 * Attempts (ARG in brackets):
 *     setns PATH          join the network namespace at PATH (/proc/PID/ns/net, /run/netns/NAME), then reach
 *     raw                 reach world from where it is
 *     ptrace PID          PTRACE_ATTACH (then detach)
 *     vmread PID          process_vm_readv of a byte of PID's stack area (its auxv's first address)
 *     kill PID            kill(PID, 0)
 *     read PATH           read a byte of PATH (/proc/PID/environ, /proc/PID/mem at offset 0x400000)
 *     write PATH          open PATH for writing (nothing is written)
 *     mkdir PATH          make (and remove) a directory
 *     unix PATH           connect an AF_UNIX stream socket to PATH and read up to 64 bytes (1 s)
 *     uring               connect to world with io_uring (IORING_OP_CONNECT), then reach
 *     mountproc PID       mount a procfs on a new directory and look for PID in it
 *     chroot PID          break out of a chroot the classic way, then look for /proc/PID
 *     pivot PATH          a new mount namespace, pivot_root into a tmpfs, then open OLD/PATH for writing */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *name;

static int out(const char *outcome, const char *detail)
{
	printf("%s %s%s%s\n", name, outcome, detail ? " " : "", detail ? detail : "");
	return 0;
}

static int blocked(int e)
{
	const char *n = strerrorname_np(e);
	return out("blocked", n ? n : "?");
}

/* An HTTP request on connected socket fd: "reached" if world answers, else blocked with the errno. */
static int http_probe(int fd)
{
	struct timeval tv = { 3, 0 };
	char buf[64] = "";
	const char req[] = "GET /escape-probe HTTP/1.0\r\n\r\n";
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (write(fd, req, sizeof(req) - 1) < 0 || read(fd, buf, sizeof(buf) - 1) < 5)
		return blocked(errno ? errno : EIO);
	return out(strncmp(buf, "HTTP/", 5) == 0 ? "reached" : "done", "no HTTP answer");
}

/* A raw TCP connect to world and an HTTP request: "reached", or blocked with the errno. */
static int reach(const char *addr, int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { 3, 0 };
	int fd = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return blocked(errno);
	inet_pton(AF_INET, addr, &sin.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (syscall(SYS_connect, fd, &sin, sizeof(sin)) < 0)
		return blocked(errno);
	return http_probe(fd);
}

static int unix_talk(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { 1, 0 };
	char buf[65] = "";
	int fd = (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (fd < 0 || syscall(SYS_connect, fd, &sun, sizeof(sun)) < 0)
		return blocked(errno);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* the control API answers a request; the others speak first or stay silent */
	syscall(SYS_sendto, fd, "{\"cmd\":\"flows\"}\n", 16, MSG_NOSIGNAL, NULL, 0);
	ssize_t n = read(fd, buf, 64);
	if (n > 0) {
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] <= ' ')
				buf[i] = '_';
		return out("done", buf);
	}
	return out("done", n == 0 ? "closed" : errno == EAGAIN ? "open" : strerrorname_np(errno));
}

/* A TCP connect to world made by io_uring (IORING_OP_CONNECT: no connect() call at all), then the request
 * as in reach(). */
static int uring_connect(const char *addr, int port)
{
	struct io_uring_params p = { 0 };
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int ring = (int)syscall(__NR_io_uring_setup, 4, &p), fd;
	if (ring < 0)
		return blocked(errno);
	inet_pton(AF_INET, addr, &sin.sin_addr);
	fd = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
	size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	char *sq = mmap(NULL, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQ_RING);
	char *cq = mmap(NULL, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_CQ_RING);
	struct io_uring_sqe *sqe = mmap(NULL, p.sq_entries * sizeof(*sqe), PROT_READ | PROT_WRITE,
					MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQES);
	if (fd < 0 || sq == MAP_FAILED || cq == MAP_FAILED || sqe == MAP_FAILED)
		return blocked(errno);
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_CONNECT;
	sqe->fd = fd;
	sqe->addr = (unsigned long)&sin;
	sqe->off = sizeof(sin);
	((unsigned *)(sq + p.sq_off.array))[0] = 0;
	__atomic_store_n((unsigned *)(sq + p.sq_off.tail), 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
		return blocked(errno);
	struct io_uring_cqe *cqe = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	if (cqe->res < 0)
		return blocked(-cqe->res);
	return http_probe(fd);
}

static int see_pid(const char *proc, const char *pid)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", proc, pid);
	return access(path, F_OK) == 0 ? out("done", "sees-it") : blocked(errno);
}

static int chroot_escape(const char *pid)
{
	char dir[] = "/tmp/escape-XXXXXX";
	if (!mkdtemp(dir))
		return blocked(errno);
	int keep = open("/", O_RDONLY | O_DIRECTORY);
	if (chroot(dir) < 0) {
		int e = errno;
		rmdir(dir);
		return blocked(e);
	}
	if (fchdir(keep) < 0)
		return blocked(errno);
	for (int i = 0; i < 64; i++)
		(void)!chdir("..");
	(void)!chroot(".");
	rmdir(dir);
	return see_pid("/proc", pid);
}

static int pivot(const char *path)
{
	char root[] = "/tmp/escape-root-XXXXXX", put_old[64], target[512];
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return blocked(errno);
	if (!mkdtemp(root) || mount("none", root, "tmpfs", 0, NULL) < 0) {
		int e = errno;
		rmdir(root);
		return blocked(e);
	}
	snprintf(put_old, sizeof(put_old), "%s/old", root);
	mkdir(put_old, 0700);
	if (syscall(SYS_pivot_root, root, put_old) < 0 || chdir("/") < 0)
		return blocked(errno);
	/* the directory itself stays behind in the old root's /tmp: the test removes it */
	snprintf(target, sizeof(target), "/old%s", path);
	int fd = open(target, O_WRONLY);
	return fd < 0 ? blocked(errno) : out("done", "writable");
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: escape ATTEMPT WORLD_ADDR WORLD_PORT [ARG]\n");
		return 64;
	}
	name = argv[1];
	const char *arg = argc > 4 ? argv[4] : "", *world = argv[2];
	int port = atoi(argv[3]);
	pid_t pid = (pid_t)atoi(arg);
	setvbuf(stdout, NULL, _IONBF, 0);

	if (!strcmp(name, "setns")) {
		int fd = open(arg, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
			return blocked(errno);
		printf("%s joined\n", name); /* then, if that namespace has a route to world: */
		return reach(world, port);
	}
	if (!strcmp(name, "raw"))
		return reach(world, port);
	if (!strcmp(name, "ptrace")) {
		if (ptrace(PTRACE_ATTACH, pid, 0, 0) < 0)
			return blocked(errno);
		waitpid(pid, NULL, __WALL);
		ptrace(PTRACE_DETACH, pid, 0, 0);
		return out("done", "attached");
	}
	if (!strcmp(name, "vmread")) {
		char b, path[64];
		unsigned long at = 0;
		snprintf(path, sizeof(path), "/proc/%d/auxv", (int)pid);
		FILE *f = fopen(path, "r");
		if (f) {
			unsigned long kv[2];
			while (fread(kv, sizeof(kv), 1, f) == 1)
				if (kv[0] == 31 /* AT_EXECFN */)
					at = kv[1];
			fclose(f);
		}
		struct iovec l = { &b, 1 }, r = { (void *)at, 1 };
		return process_vm_readv(pid, &l, 1, &r, 1, 0) == 1 ? out("done", "read") : blocked(errno);
	}
	if (!strcmp(name, "kill"))
		return kill(pid, 0) == 0 ? out("done", "signalled") : blocked(errno);
	if (!strcmp(name, "read")) {
		char b;
		int fd = open(arg, O_RDONLY);
		off_t off = strstr(arg, "/mem") ? 0x400000 : 0;
		if (fd < 0)
			return blocked(errno);
		ssize_t n = pread(fd, &b, 1, off);
		/* /proc/PID/mem opens and then checks: a read that fails with EIO is an unmapped address, not a
		 * refusal (the open itself needed ptrace access) */
		return n == 1 || (n < 0 && errno == EIO) ? out("done", "read") : blocked(errno);
	}
	if (!strcmp(name, "write")) {
		int fd = open(arg, O_WRONLY);
		return fd < 0 ? blocked(errno) : out("done", "writable");
	}
	if (!strcmp(name, "mkdir")) {
		if (mkdir(arg, 0755) < 0)
			return blocked(errno);
		rmdir(arg);
		return out("done", "made");
	}
	if (!strcmp(name, "unix"))
		return unix_talk(arg);
	if (!strcmp(name, "uring"))
		return uring_connect(world, port);
	if (!strcmp(name, "mountproc")) {
		char dir[] = "/tmp/escape-proc-XXXXXX";
		if (!mkdtemp(dir))
			return blocked(errno);
		if (mount("proc", dir, "proc", 0, NULL) < 0) {
			int e = errno;
			rmdir(dir);
			return blocked(e);
		}
		int r = see_pid(dir, arg);
		umount(dir);
		rmdir(dir);
		return r;
	}
	if (!strcmp(name, "chroot"))
		return chroot_escape(arg);
	if (!strcmp(name, "pivot"))
		return pivot(arg);
	fprintf(stderr, "escape: unknown attempt %s\n", name);
	return 64;
}
