/*
 * registry.c: mwinsd as files, the Linux form of the original's xenstore keys.
 *
 *   DIR/ins/ID/{pid,sock,version,ip_addrs,heartbeat,network_stats,listening_ports}
 *   DIR/clients/PID/{ins,exe,sockets}
 *
 * Every value is written whole to a temporary file and renamed into place, so `cat` never sees half a value.
 * The heartbeat is bumped every second from the event loop itself: if the loop stalls, the heartbeat stops,
 * which is what a watcher should see.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

int registry_prepare(void)
{
	int err;

	if (snprintf(ins.dir, sizeof(ins.dir), "%s/ins/%s", ins.cfg.registry, ins.cfg.id) >= (int)sizeof(ins.dir) ||
	    snprintf(ins.sockpath, sizeof(ins.sockpath), "%s/ins.sock", ins.dir) >= (int)sizeof(ins.sockpath))
		return -ENAMETOOLONG;
	err = mkdir_p(ins.dir);
	if (err)
		return err;
	/* The directories are readable by all: the protected programs' shims look up the socket here. */
	chmod(ins.cfg.registry, 0755);
	return 0;
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
