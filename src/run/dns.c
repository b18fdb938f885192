/*
 * dns.c: the protected program's resolv.conf (mwrun --dns, or $MWCOMMS_DNS).
 *
 * With --dns, the command gets a mount namespace of its own, with the mount tree private (nothing it
 * mounts reaches the host, nothing is shared back), and a resolv.conf naming only the given nameservers is
 * bind-mounted read-only over /etc/resolv.conf.  When /etc/resolv.conf is a symlink, mount(2) follows it,
 * so the bind lands on the file it names; when that file does not exist (a dangling link, say
 * systemd-resolved's stub while resolved is stopped), a small tmpfs is mounted over the link's target
 * directory, in the command's mount namespace only, and the file is made there.  The nameservers are
 * reached through mwinsd: by the program's own sockets through the shim, and by glibc's resolver, which no
 * preload can interpose, through the forwarder in dnsfwd.c.
 *
 * Without --dns the program sees the host's resolv.conf unchanged.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "run.h"

#define RESOLV_CONF "/etc/resolv.conf"

int dns_host_default(char *buf, size_t len)
{
	char line[512];
	size_t off = 0;
	int n = 0;
	FILE *f = fopen("/etc/resolv.conf", "re");

	if (!f)
		return -errno;
	buf[0] = 0;
	/* Like glibc's resolver, the first MW_DNS_MAX nameservers and no more: a host that lists more must not
	 * stop every mwrun. */
	while (n < MW_DNS_MAX && fgets(line, sizeof(line), f)) {
		char *tok = strtok(line, " \t\r\n"), *addr;

		if (!tok || strcmp(tok, "nameserver") != 0 || !(addr = strtok(NULL, " \t\r\n")))
			continue;
		/* A scope id (fe80::1%eth0) names an interface the command's namespace does not have. */
		if (strchr(addr, '%') || off + strlen(addr) + 2 >= len)
			continue;
		off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? "," : "", addr);
		n++;
	}
	fclose(f);
	return off ? 0 : -ENOENT;
}

int dns_parse(struct run_cfg *cfg, const char *list, const char *what)
{
	const char *p = list;

	cfg->ndns = 0;
	if (!list || !list[0]) {
		fprintf(stderr, "mwrun: %s: no nameserver address given\n", what);
		return -EINVAL;
	}
	while (*p) {
		size_t n = strcspn(p, ",");
		char addr[INET6_ADDRSTRLEN + 1];
		unsigned char bin[sizeof(struct in6_addr)];

		if (n == 0 || n >= sizeof(addr)) {
			fprintf(stderr, "mwrun: %s: bad nameserver address '%.*s' in '%s' "
					"(want IPv4 or IPv6 literals separated by commas)\n",
				what, (int)(n > 64 ? 64 : n), p, list);
			return -EINVAL;
		}
		memcpy(addr, p, n);
		addr[n] = 0;
		if (inet_pton(AF_INET, addr, bin) == 1) {
			if (!memcmp(bin, "\0\0\0\0", 4)) {
				fprintf(stderr, "mwrun: %s: '%s' names no nameserver\n", what, addr);
				return -EINVAL;
			}
		} else if (inet_pton(AF_INET6, addr, bin) == 1) {
			struct in6_addr a6;

			memcpy(&a6, bin, sizeof(a6));
			if (IN6_IS_ADDR_UNSPECIFIED(&a6) || IN6_IS_ADDR_V4MAPPED(&a6) || IN6_IS_ADDR_MULTICAST(&a6)) {
				fprintf(stderr, "mwrun: %s: '%s' names no nameserver%s\n", what, addr,
					IN6_IS_ADDR_V4MAPPED(&a6) ? " (give the IPv4 address itself)" : "");
				return -EINVAL;
			}
		} else {
			fprintf(stderr, "mwrun: %s: '%s' is not an IPv4 or IPv6 address "
					"(want IPv4 or IPv6 literals separated by commas)\n", what, addr);
			return -EINVAL;
		}
		if (cfg->ndns == MW_DNS_MAX) {
			fprintf(stderr, "mwrun: %s: at most %d nameservers (the resolver ignores the rest)\n",
				what, MW_DNS_MAX);
			return -E2BIG;
		}
		memcpy(cfg->dns[cfg->ndns++], addr, n + 1);
		p += n;
		if (*p == ',') {
			p++;
			if (!*p) {
				fprintf(stderr, "mwrun: %s: trailing comma in '%s'\n", what, list);
				return -EINVAL;
			}
		}
	}
	return 0;
}

/* The resolv.conf text for cfg's nameservers. */
static int dns_text(const struct run_cfg *cfg, char *buf, size_t len)
{
	size_t off = 0;
	int n, i;

	n = snprintf(buf, len, "# written by mwrun --dns: these nameservers are reached through the INS\n");
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	off = (size_t)n;
	for (i = 0; i < cfg->ndns; i++) {
		n = snprintf(buf + off, len - off, "nameserver %s\n", cfg->dns[i]);
		if (n < 0 || (size_t)n >= len - off)
			return -ENOSPC;
		off += (size_t)n;
	}
	return (int)off;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Bind a new file holding text over target (a path mount(2) resolves, symlinks followed), read-only.  The
 * file is made in a private tmpfs mounted on a fresh directory under /tmp (visible in our mount namespace
 * only) and that tmpfs is detached once the bind holds it, so nothing is left behind on the host. */
static int bind_text(const char *target, const char *text, size_t len)
{
	char dir[] = "/tmp/mwrun-dns.XXXXXX", file[sizeof(dir) + 16];
	int fd, err = 0;

	if (!mkdtemp(dir))
		return -errno;
	if (mount("mwrun-dns", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,mode=0755") < 0) {
		err = -errno;
		rmdir(dir);
		return err;
	}
	snprintf(file, sizeof(file), "%s/resolv.conf", dir);
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		err = -errno;
	if (!err) {
		err = write_all(fd, text, len);
		if (fchmod(fd, 0644) < 0 && !err)
			err = -errno;
		close(fd);
	}
	if (!err && mount(file, target, NULL, MS_BIND, NULL) < 0)
		err = -errno;
	/* Read-only, so a root program can't edit it by accident; it's private to the command anyway. */
	if (!err)
		mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
		      NULL);
	umount2(dir, MNT_DETACH);
	rmdir(dir);
	return err;
}

/* /etc/resolv.conf is a symlink whose target does not exist: mount a tmpfs over the target's directory (in
 * our mount namespace only) and make the file there.  Returns 0 or -errno. */
static int dangling_target(const char *text, size_t len, char *where, size_t wlen)
{
	char link[PATH_MAX], target[PATH_MAX], dirbuf[PATH_MAX], *slash;
	int hops, fd, err;
	ssize_t n;

	snprintf(target, sizeof(target), "%s", RESOLV_CONF);
	/* Follow the chain of links by hand (realpath fails on a dangling one). */
	for (hops = 0; hops < 16; hops++) {
		n = readlink(target, link, sizeof(link) - 1);
		if (n < 0)
			break;
		link[n] = 0;
		if (link[0] == '/') {
			snprintf(target, sizeof(target), "%s", link);
		} else {
			snprintf(dirbuf, sizeof(dirbuf), "%s", target);
			slash = strrchr(dirbuf, '/');
			if (slash)
				*slash = 0;
			if ((size_t)snprintf(target, sizeof(target), "%s/%s", dirbuf, link) >= sizeof(target))
				return -ENAMETOOLONG;
		}
	}
	if (hops == 16)
		return -ELOOP;
	if (errno != EINVAL && errno != ENOENT)
		return -errno;
	snprintf(where, wlen, "%s", target);
	snprintf(dirbuf, sizeof(dirbuf), "%s", target);
	slash = strrchr(dirbuf, '/');
	if (!slash || slash == dirbuf)
		return -EINVAL;    /* never a tmpfs over / */
	*slash = 0;
	if (mount("mwrun-dns", dirbuf, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,mode=0755") < 0)
		return -errno;
	fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	err = write_all(fd, text, len);
	close(fd);
	if (!err)
		mount(NULL, dirbuf, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	return err;
}

int dns_apply(const struct run_cfg *cfg)
{
	char text[MW_DNS_MAX * (INET6_ADDRSTRLEN + 16) + 128], where[PATH_MAX] = "";
	struct stat st;
	int len, err;

	if (cfg->ndns == 0)
		return 0;
	len = dns_text(cfg, text, sizeof(text));
	if (len < 0)
		return len;
	if (unshare(CLONE_NEWNS) < 0) {
		err = -errno;
		fprintf(stderr, "mwrun: --dns: cannot give the command a mount namespace of its own: %s\n",
			strerror(-err));
		return err;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		err = -errno;
		fprintf(stderr, "mwrun: --dns: cannot make the mount tree private: %s\n", strerror(-err));
		return err;
	}
	if (lstat(RESOLV_CONF, &st) < 0) {
		err = -errno;
		fprintf(stderr, "mwrun: --dns: %s: %s (there is nothing to mount over)\n", RESOLV_CONF,
			strerror(-err));
		return err;
	}
	if (S_ISLNK(st.st_mode) && stat(RESOLV_CONF, &st) < 0 && errno == ENOENT) {
		err = dangling_target(text, (size_t)len, where, sizeof(where));
		if (err)
			fprintf(stderr, "mwrun: --dns: %s is a symlink to a missing file, and %s could not be "
					"made in a private tmpfs: %s\n", RESOLV_CONF, where, strerror(-err));
		return err;
	}
	err = bind_text(RESOLV_CONF, text, (size_t)len);
	if (err)
		fprintf(stderr, "mwrun: --dns: cannot mount a resolv.conf over %s: %s\n", RESOLV_CONF,
			strerror(-err));
	return err;
}
