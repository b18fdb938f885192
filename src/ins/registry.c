/*
 * registry.c: mwinsd as files, the Linux form of the original's xenstore keys.
 *
 *   DIR/ins/ID/{pid,sock,version,ip_addrs,heartbeat,network_stats,listening_ports}
 *   DIR/clients/PID/{ins,exe,sockets}
 *
 * Every value is written whole to a temporary file and renamed into place, so `cat` never sees half a value.
 * The heartbeat is bumped every second from the event loop itself: if the loop stalls, the heartbeat stops,
 * which is what a watcher should see.  At start, mwinsd removes the entries of instances that are gone
 * (registry_tidy), which nothing else would: one killed with -9 cannot remove its own.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <stdarg.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ins.h"
#include "mwlib.h"

static int mkdir_p(const char *path)
{
	char buf[512];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int put(const char *dir, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int put(const char *dir, const char *name, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof(buf))
		return -EOVERFLOW;
	return mw_file_write_atomic(dir, name, buf, (size_t)n);
}

/* ---- start-up tidying ---- */

/*
 * An entry with neither a pid nor a live socket younger than this may be an instance between its mkdir and
 * its first file (microseconds, as registry_prepare writes the pid right after the mkdir), so it is kept.
 */
#define TIDY_GRACE_S 10

/* The first line of dfd/name, newline cut, into buf.  0 or -errno. */
static int tidy_read(int dfd, const char *name, char *buf, size_t len)
{
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n;

	buf[0] = 0;
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

/* Whether something accepts connections on the rendezvous socket at path (a stopped mwinsd still does: the
 * kernel queues the connect). */
static bool tidy_sock_live(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	bool live;
	int fd;

	if (!path[0] || strlen(path) >= sizeof(sun.sun_path))
		return false;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return true; /* cannot tell: keep it */
	live = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 || errno == EAGAIN;
	close(fd);
	return live;
}

/* Whether pid is a live mwinsd: pids are reused, so a live process of another name does not count. */
static bool tidy_pid_live(const char *text)
{
	char path[64], comm[32] = "";
	char *end;
	long pid = strtol(text, &end, 10);
	int dfd;

	if (!text[0] || *end || pid <= 0 || pid > INT32_MAX)
		return false;
	if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
		return false;
	snprintf(path, sizeof(path), "/proc/%ld", pid);
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return true; /* exists, cannot tell what it is: keep it */
	tidy_read(dfd, "comm", comm, sizeof(comm));
	close(dfd);
	return !comm[0] || !strcmp(comm, "mwinsd");
}

/* Unlinks every non-directory in dfd/name (entries are flat; no symlink is followed), then the directory.
 * 0 or -errno. */
static int tidy_remove(int dfd, const char *name)
{
	struct dirent *de;
	DIR *d;
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d)))
		if (de->d_type != DT_DIR && unlinkat(fd, de->d_name, 0) < 0 && errno != ENOENT)
			err = -errno;
	closedir(d);
	if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		err = -errno;
	return err;
}

/* Whether dfd/name's directory was changed within TIDY_GRACE_S (or cannot be read: then keep it too). */
static bool tidy_recent(int dfd, const char *name)
{
	struct stat st;

	return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || time(NULL) - st.st_mtime < TIDY_GRACE_S;
}

/* What tidy_walk asks of each entry: whether it is gone, judged from its files (efd), with what to say when
 * it is removed (why, up to len bytes). */
typedef bool tidy_judge(const char *root, int dfd, const char *name, int efd, char *why, size_t len);

/* Each entry of root/sub that judge calls gone is removed.  Returns how many were. */
static int tidy_walk(const char *root, const char *sub, tidy_judge *judge)
{
	char path[PATH_MAX], why[PATH_MAX + 64];
	struct dirent *de;
	DIR *d;
	int dfd, efd, err, n = 0;
	bool gone;

	snprintf(path, sizeof(path), "%s/%s", root, sub);
	d = opendir(path);
	if (!d)
		return 0;
	dfd = dirfd(d);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		efd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (efd < 0)
			continue;
		why[0] = '\0';
		gone = judge(root, dfd, de->d_name, efd, why, sizeof(why));
		close(efd);
		if (!gone)
			continue;
		err = tidy_remove(dfd, de->d_name);
		if (err) {
			ins_log(0, "registry: cannot remove %s/%s, which is gone: %s", sub, de->d_name, strerror(-err));
			continue;
		}
		if (why[0])
			ins_log(1, "registry: %s", why);
		n++;
	}
	closedir(d);
	return n;
}

/* An instance is gone when nobody listens on its socket and its pid is not a live mwinsd. */
static bool instance_gone(const char *root, int dfd, const char *name, int efd, char *why, size_t len)
{
	char pid[32], sock[PATH_MAX];

	(void)root;
	tidy_read(efd, "pid", pid, sizeof(pid));
	tidy_read(efd, "sock", sock, sizeof(sock));
	if (tidy_sock_live(sock) || tidy_pid_live(pid) || (!pid[0] && tidy_recent(dfd, name)))
		return false;
	snprintf(why, len, "removed the entry of instance %s (pid %s), which is gone", name, pid[0] ? pid : "unknown");
	return true;
}

/* A client is gone when its instance's entry is (a live instance removes its own clients' entries as they
 * leave). */
static bool client_gone(const char *root, int dfd, const char *name, int efd, char *why, size_t len)
{
	char path[PATH_MAX], id[NAME_MAX + 1];
	struct stat st;

	(void)why;
	(void)len;
	tidy_read(efd, "ins", id, sizeof(id));
	if (!id[0])
		return !tidy_recent(dfd, name);
	if (strchr(id, '/') || snprintf(path, sizeof(path), "%s/ins/%s", root, id) >= (int)sizeof(path))
		return false; /* not an id mwinsd writes: not ours to judge */
	return stat(path, &st) < 0;
}

/* Called once, before this instance's entry is made (with the privileges mwinsd started with). */
static void registry_tidy(const char *root)
{
	int n;

	tidy_walk(root, "ins", instance_gone);
	n = tidy_walk(root, "clients", client_gone);
	if (n)
		ins_log(1, "registry: removed %d client entr%s whose instance is gone", n, n == 1 ? "y" : "ies");
}

int registry_prepare(void)
{
	int err;

	if (snprintf(ins.dir, sizeof(ins.dir), "%s/ins/%s", ins.cfg.registry, ins.cfg.id) >= (int)sizeof(ins.dir) ||
	    snprintf(ins.sockpath, sizeof(ins.sockpath), "%s/ins.sock", ins.dir) >= (int)sizeof(ins.sockpath))
		return -ENAMETOOLONG;
	registry_tidy(ins.cfg.registry);
	err = mkdir_p(ins.dir);
	if (err)
		return err;
	/* The directories are readable by all: the protected programs' shims look up the socket here. */
	chmod(ins.cfg.registry, 0755);
	/* At once, so that another mwinsd starting now does not take the new entry for one that is gone. */
	return put(ins.dir, "pid", "%d\n", (int)getpid());
}

static void put_ip_addrs(void)
{
	struct ifaddrs *ifa, *i;
	char buf[4096];
	size_t off = 0;

	if (getifaddrs(&ifa) < 0)
		return;
	buf[0] = 0;
	for (i = ifa; i; i = i->ifa_next) {
		char ip[INET6_ADDRSTRLEN];
		int prefix = 0;
		const void *a, *m;
		size_t alen;

		if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			a = &((struct sockaddr_in *)i->ifa_addr)->sin_addr;
			m = i->ifa_netmask ? (const void *)&((struct sockaddr_in *)i->ifa_netmask)->sin_addr : NULL;
			alen = 4;
		} else {
			a = &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
			m = i->ifa_netmask ? (const void *)&((struct sockaddr_in6 *)i->ifa_netmask)->sin6_addr : NULL;
			alen = 16;
		}
		for (size_t k = 0; m && k < alen; k++)
			prefix += __builtin_popcount(((const unsigned char *)m)[k]);
		inet_ntop(i->ifa_addr->sa_family, a, ip, sizeof(ip));
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s/%d\n", ip, prefix);
		if (off >= sizeof(buf) - 64)
			break;
	}
	freeifaddrs(ifa);
	mw_file_write_atomic(ins.dir, "ip_addrs", buf, off);
}

static void put_listening(void)
{
	char buf[8192], a[64];
	size_t off = 0;
	struct list *l;

	buf[0] = 0;
	for (l = ins.groups.next; l != &ins.groups; l = l->next) {
		struct ins_group *g = container_of(l, struct ins_group, link);

		for (uint32_t i = 1; i < g->nslots && off < sizeof(buf) - 100; i++) {
			struct ins_sock *s = g->sock[i];

			if (s && !s->dead && s->state == INS_LISTENING)
				off += (size_t)snprintf(buf + off, sizeof(buf) - off, "tcp %s\n",
							mw_addr_str(&s->local, a, sizeof(a)));
		}
	}
	mw_file_write_atomic(ins.dir, "listening_ports", buf, off);
}

/* What registry_tick last wrote. */
static struct {
	uint64_t nsocks, bytes_in, bytes_out;
	uint32_t nclients;
	bool done, listen_done;
} stats_written;
static uint64_t listen_written;

void registry_tick(void)
{
	struct list *l;
	uint32_t nclients = 0;
	char dir[600];

	put(ins.dir, "heartbeat", "%llu\n", (unsigned long long)ins.heartbeat);
	for (l = ins.clients.next; l != &ins.clients; l = l->next) {
		struct ins_client *c = container_of(l, struct ins_client, link);

		if (c->dead || !c->group)
			continue;
		nclients++;
		/* Only what changed: with thousands of clients, a write each per second would stall the loop. */
		if (c->nsocks_written == c->nsocks + 1)
			continue;
		snprintf(dir, sizeof(dir), "%s/clients/%d", ins.cfg.registry, (int)c->pid);
		if (put(dir, "sockets", "%u\n", c->nsocks) == 0)
			c->nsocks_written = c->nsocks + 1;
	}
	/* Idle, only the heartbeat changes: the rest is rewritten when it does (a walk of every socket each
	 * second would be most of what thousands of idle connections cost). */
	if (ins.nsocks != stats_written.nsocks || ins.bytes_in != stats_written.bytes_in ||
	    ins.bytes_out != stats_written.bytes_out || nclients != stats_written.nclients || !stats_written.done) {
		if (put(ins.dir, "network_stats", "sockets %llu\nbytes_in %llu\nbytes_out %llu\nclients %u\n",
			(unsigned long long)ins.nsocks, (unsigned long long)ins.bytes_in,
			(unsigned long long)ins.bytes_out, nclients) == 0) {
			stats_written.nsocks = ins.nsocks;
			stats_written.bytes_in = ins.bytes_in;
			stats_written.bytes_out = ins.bytes_out;
			stats_written.nclients = nclients;
			stats_written.done = true;
		}
	}
	if (ins.listen_gen != listen_written || !stats_written.listen_done) {
		put_listening();
		listen_written = ins.listen_gen;
		stats_written.listen_done = true;
	}
	if (ins.heartbeat % 5 == 1)
		put_ip_addrs();
}

int registry_publish(void)
{
	int err;

	err = put(ins.dir, "pid", "%d\n", (int)getpid());
	if (!err)
		err = put(ins.dir, "sock", "%s\n", ins.sockpath);
	if (!err)
		err = put(ins.dir, "version", "%d\n", MW_PROTO_VERSION);
	/* mwrun makes the file read-only for the programs it runs: a reload must read what the operator wrote */
	if (!err && ins.cfg.policy[0]) {
		char abs[PATH_MAX];

		err = put(ins.dir, "policy", "%s\n", realpath(ins.cfg.policy, abs) ? abs : ins.cfg.policy);
	}
	if (err)
		return err;
	put_ip_addrs();
	registry_tick();
	return 0;
}

void registry_client_add(struct ins_client *c)
{
	char dir[600];

	snprintf(dir, sizeof(dir), "%s/clients/%d", ins.cfg.registry, (int)c->pid);
	if (mkdir_p(dir) < 0)
		return;
	put(dir, "ins", "%s\n", ins.cfg.id);
	put(dir, "exe", "%s\n", c->exe);
	put(dir, "sockets", "0\n");
}

static void rm_dir(const char *dir, const char *const *names)
{
	char path[700];

	for (; *names; names++) {
		snprintf(path, sizeof(path), "%s/%s", dir, *names);
		unlink(path);
	}
	rmdir(dir);
}

void registry_client_del(struct ins_client *c)
{
	static const char *const names[] = { "ins", "exe", "sockets", NULL };
	char dir[600], id[700];
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/clients/%d", ins.cfg.registry, (int)c->pid);
	/* A process may hold connections to two instances; only the one it names may remove it. */
	snprintf(id, sizeof(id), "%s/ins", dir);
	f = fopen(id, "re");
	if (f) {
		char line[80] = "";

		if (!fgets(line, sizeof(line), f))
			line[0] = 0;
		fclose(f);
		line[strcspn(line, "\n")] = 0;
		if (strcmp(line, ins.cfg.id) != 0)
			return;
	}
	rm_dir(dir, names);
}

void registry_remove(void)
{
	static const char *const names[] = { "pid",     "sock",          "version",         "ip_addrs",
					     "heartbeat", "network_stats", "listening_ports", "ins.sock",
					     "ctl",     "events",        "netflow",         "policy",
					     NULL };
	struct list *l;

	if (!ins.dir[0])
		return;
	for (l = ins.clients.next; l != &ins.clients; l = l->next) {
		struct ins_client *c = container_of(l, struct ins_client, link);

		if (c->group)
			registry_client_del(c);
	}
	rm_dir(ins.dir, names);
}
