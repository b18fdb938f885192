/*
 * run.h: mwrun's private header.  mwrun runs one command isolated: in a network namespace of its own that
 * has only loopback, with the shim preloaded, attached to an INS that it finds in the registry or starts.
 */
#ifndef MW_RUN_H
#define MW_RUN_H

#include <netinet/in.h>
#include <stdbool.h>
#include <sys/types.h>

#define MW_DNS_MAX 3        /* glibc's MAXNS: the resolver reads no more nameservers than this */
#define MW_ALLOW_UNIX_MAX 16

struct run_cfg {
	const char *registry;
	const char *sock;   /* -s: an INS rendezvous socket given directly */
	bool embedded;      /* --embedded (always start our own INS); set too when none was found and one was
			     * started: the command is then pinned to this run's own INS */
	bool report;
	bool userns;        /* --userns, or not root: the command's namespaces inside a user namespace */
	bool own_registry;  /* the registry is the user's default one (userns.c), kept mode 0700 */
	int verbose;
	char bindir[512];   /* where mwrun lives (locate.c) */
	char shimdir[1024]; /* the directory of libmwshim.so: bindir in the build tree, LIBDIR/mwcomms installed */
	char shim[1024];    /* libmwshim.so, preloaded into the command */
	char mwinsd[1024];  /* the mwinsd an embedded INS runs: beside mwrun in the build tree, SBINDIR installed */
	int ndns;           /* --dns / $MWCOMMS_DNS: nameservers for the command's resolv.conf (0: the host's) */
	char dns[MW_DNS_MAX][INET6_ADDRSTRLEN];
	int nallow_unix;    /* --allow-unix PATH: host AF_UNIX sockets the command may connect to */
	const char *allow_unix[MW_ALLOW_UNIX_MAX];
	bool deny_unix_dgram; /* --deny-unix-dgram: no AF_UNIX datagram sockets (they are not gated: gate.c) */
	bool no_new_privs;  /* --no-new-privs: set-ID bits and file capabilities give the command nothing */
	uint32_t root_map;  /* --map-root-to UID: uids and gids 0-65535 inside are UID.. outside (0: root is root) */
};

/* dns.c */

/* The host's nameservers (the first MW_DNS_MAX in /etc/resolv.conf, as glibc reads them) as "ADDR,ADDR" in
 * buf.  Returns 0, or -ENOENT if it names none, or -errno. */
int dns_host_default(char *buf, size_t len);
/* Parse a comma-separated list of IPv4/IPv6 literals into cfg->dns.  what names the source in messages
 * ("--dns", "$MWCOMMS_DNS").  Returns 0, or a negative errno with the reason printed. */
int dns_parse(struct run_cfg *cfg, const char *list, const char *what);
/* In the child, after its network namespace is made: if cfg names nameservers, give the child a private
 * mount namespace in which /etc/resolv.conf names them.  Returns 0 or a negative errno, reason printed. */
int dns_apply(const struct run_cfg *cfg);

/* dnsfwd.c: the forwarder that answers at the --dns addresses inside the command's namespace (see there) */

#define MW_DNSFWD_FD0 64    /* the forwarder's listeners: fd FD0+2i is UDP, FD0+2i+1 TCP, for nameserver i */

/* In the command's namespace: a local (AnyIP) route on lo for each nameserver.  Returns 0 or -errno. */
int dns_local_routes(const struct run_cfg *cfg);
/* In the forwarder, in the command's network namespace, before exec: bind UDP and TCP listeners on each
 * nameserver's port 53 at fds first_fd + 2i and first_fd + 2i + 1.  Returns 0 or -errno. */
int dnsfwd_listen(const struct run_cfg *cfg, int first_fd);
/* mwrun --dns-forward FIRST_FD ADDR...: the forwarder itself (runs with the shim preloaded). */
int dnsfwd_main(int argc, char **argv);

/* locate.c */

/* cfg->bindir, shimdir, shim and mwinsd, from /proc/self/exe: the build tree's layout (all beside mwrun) if
 * libmwshim.so is beside it, else the installed one.  Nothing is checked to exist.  Returns 0 or -errno. */
int run_locate(struct run_cfg *cfg);

/* ins_find.c */

/* The first line of dir/name, without its newline, into buf ("" on failure).  Returns 0 or -errno. */
int ins_read_line(const char *dir, const char *name, char *buf, size_t len);
/* Call fn(dir, id, arg) for each instance directory REGISTRY/ins/ID until it returns nonzero.  Returns that
 * value, or 0 (also when the registry has no instances). */
int ins_each(const char *registry, int (*fn)(const char *dir, const char *id, void *arg), void *arg);
/* Does an INS answer at this rendezvous socket?  Returns 0 or the connect's negative errno. */
int ins_probe(const char *path);

/* Find a live INS in the registry and store its socket path in sock (len bytes).  Returns 0 or -ENOENT. */
int ins_find_live(const struct run_cfg *cfg, char *sock, size_t len);
/* Start an embedded mwinsd in our own namespace and wait until it serves.  Stores its pid and socket path.
 * Returns 0 or a negative errno, with the reason printed. */
int ins_start_embedded(const struct run_cfg *cfg, pid_t *pid, char *sock, size_t len);
/* Stop the embedded INS and reap it. */
void ins_stop_embedded(pid_t pid);

/* userns.c: running without root (see there for what the command can and can't do) */

/* In mwrun's child: a new user namespace and a network namespace in it, with the caller's euid and egid
 * mapped to themselves, written by the child itself.  Returns 0, or a negative errno with the reason (and
 * the sysctl to change, if one is to blame) printed. */
int userns_enter(void);
/* Print why user namespaces are unavailable, naming the sysctl that forbids them, for the error err that
 * unshare(CLONE_NEWUSER) or a step in the new namespace gave.  Prints nothing if no cause is known. */
void userns_explain(int err);
/* The registry of a user who is not root: $XDG_RUNTIME_DIR/mwcomms if XDG_RUNTIME_DIR is usable, else
 * /tmp/mwcomms-UID, made mode 0700 if missing, into buf.  Returns 0, or a negative errno with the reason
 * printed: -EPERM/-ENOTDIR when it exists and is not the user's own private directory. */
int userns_registry_default(char *buf, size_t len, int verbose);
/* Put the user's registry back to mode 0700 (mwinsd opens its registry root to 0755).  Can't fail. */
void userns_registry_seal(const char *registry);

/* contain.c: the command's confinement (see there for the process tree and what each step is for) */

/* In mwrun's child, first: the network namespace (inside a user namespace of its own with --userns), a
 * mount namespace, and a PID namespace for the processes it makes next.  Returns 0, or -1 with the reason
 * printed. */
int contain_enter(const struct run_cfg *cfg);
/* In mwrun's child, once its namespaces are set up: start the init (PID 1 of the new PID namespace), which
 * makes mwcomms's files read-only, runs the command in a user namespace of its own under the gate's filter,
 * and ends every process left behind when the command ends.  Returns the command's exit status (128+N for
 * signal N; 125 if it could not be started). */
int contain_run(const struct run_cfg *cfg, const char *sock, char **argv);

/* gate.c: the command's connects, decided outside it (see there) */

struct gate {
	const struct run_cfg *cfg;
	const char *ins_sock;   /* the INS's rendezvous socket: always reachable */
};
/* In the command's process, before exec: install the filter that hands its connects to the gate, and store
 * the notification listener in *listener.  Returns 0, or a negative errno (a kernel without seccomp user
 * notification gives -EINVAL or -ENOSYS). */
int gate_filter_install(const struct run_cfg *cfg, int *listener);
/* Answer one notification waiting on listener lfd.  Returns 0 (also when the caller went away first), or a
 * negative errno when the listener itself failed. */
int gate_serve(const struct gate *g, int lfd);

/* sup.c: the supervisor, the INET socket calls of programs that bypass the shim (see there) */

struct seccomp_notif;
struct sockaddr_storage;
/* Start the supervisor's thread, answering notifications of listener lfd, once (later calls do nothing).
 * Returns 0 or -errno.  On a kernel without SECCOMP_IOCTL_NOTIF_ADDFD it says so and lets every trapped
 * call through to the kernel: the program fails closed, in its namespace. */
int sup_start(const struct gate *g, int lfd);
/* Hand notification n of process tgid to the supervisor, which answers it.  For a connect, fd is the gate's
 * duplicate of the socket (the supervisor closes it) and addr (alen bytes) the address read from the
 * program; else fd is -1.  Returns 0, or -errno (not handed over: the caller answers). */
int sup_take(const struct seccomp_notif *n, pid_t tgid, int fd, const struct sockaddr_storage *addr, socklen_t alen);

#endif /* MW_RUN_H */
