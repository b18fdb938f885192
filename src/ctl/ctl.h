/*
 * ctl.h: mwctl's private header. Prototypes are grouped by the file that
 * defines them.
 *
 * Conventions: a subcommand's *_main() returns a process exit status (0 on
 * success, 1 on a usage error or failure). Every other function returns 0 or
 * a negative errno.
 */
#ifndef MWCOMMS_CTL_H
#define MWCOMMS_CTL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/*
 * Bounds on what is read from the registry. A value past a bound is reported
 * as an error; it is never silently truncated.
 */
#define REG_ID_MAX        64      /* instance id: [A-Za-z0-9._-], not starting with '.' */
#define REG_VALUE_MAX     4096    /* a one-line value file (pid, sock, exe, ...) */
#define REG_LIST_MAX      65536   /* a multi-line file (ip_addrs, listening_ports, ...) */
#define REG_ADDRS_MAX     256     /* lines in ip_addrs */
#define REG_PORTS_MAX     1024    /* lines in listening_ports */
#define REG_INSTANCES_MAX 1024    /* entries under ins/ */
#define REG_CLIENTS_MAX   16384   /* entries under clients/ */
#define REG_ERRORS_MAX    64      /* messages kept per list; later ones are only counted */
#define REG_PID_MAX       4194304 /* PID_MAX_LIMIT on 64-bit Linux */
#define REG_SOCK_PATH_MAX 108     /* sizeof(sun_path), the terminating NUL included */
#define REG_WHERE_MAX     96
#define REG_TEXT_MAX      160

/* One problem found in the registry: which file, and what is wrong with it. */
struct reg_error {
	char where[REG_WHERE_MAX]; /* a file name, relative to its entry or to the root */
	char text[REG_TEXT_MAX];
};

struct reg_errors {
	struct reg_error *v;
	size_t n;
	size_t dropped; /* messages not kept: past REG_ERRORS_MAX, or out of memory */
};

struct reg_ip_addr {
	int family;                           /* AF_INET or AF_INET6 */
	char text[INET6_ADDRSTRLEN + 4];      /* canonical "addr/prefix" or "addr" */
};

struct reg_port {
	char proto[4];                        /* "tcp" or "udp" */
	int family;                           /* AF_INET or AF_INET6 */
	char addr[INET6_ADDRSTRLEN];          /* canonical, without brackets */
	uint16_t port;
};

struct reg_net_stats {
	uint64_t sockets, bytes_in, bytes_out, clients;
	bool has_clients;                     /* "clients" is optional */
};

/*
 * One DIR/ins/<id>/ entry. Each has_* flag says the value was present and
 * valid; when it is false, errors says why.
 */
struct reg_instance {
	char id[REG_ID_MAX + 1];
	bool has_pid, has_heartbeat, has_sock, has_version;
	bool has_ip_addrs, has_stats, has_ports;
	pid_t pid;
	struct timespec heartbeat_mtime;
	char sock[REG_SOCK_PATH_MAX];
	uint32_t version;
	struct reg_ip_addr *ip_addrs;
	size_t n_ip_addrs;
	struct reg_net_stats stats;
	struct reg_port *ports;
	size_t n_ports;
	struct reg_errors errors;
};

/* One DIR/clients/<pid>/ entry: a process attached to an instance. */
struct reg_client {
	pid_t pid;                            /* from the directory name */
	bool has_ins, has_sockets;
	char ins[REG_ID_MAX + 1];
	char *exe;                            /* NULL when missing or invalid */
	uint32_t sockets;
	struct reg_errors errors;
};

/* A snapshot of the whole registry, instances sorted by id and clients by pid. */
struct registry {
	const char *root;
	struct reg_instance *ins;
	size_t n_ins;
	struct reg_client *clients;
	size_t n_clients;
	struct reg_errors errors;             /* entries that belong to no instance or client */
	char fatal[REG_TEXT_MAX];             /* why registry_load() failed */
};

/* mwctl.c */
extern const char *PROG_NAME;

/* status.c */

/*
 * `mwctl status [--json]`: prints every instance in the registry at root with
 * its health and attached processes. argv[0] is "status". Returns 0 when the
 * registry could be read (even if it holds nothing), 1 on a usage error, an
 * unreadable registry or a failed write to stdout, with the reason on stderr.
 */
int status_main(const char *root, int argc, char *argv[]);

/* registry_read.c */

/*
 * Reads the registry at root into reg. Bad, missing or oversized values are not
 * failures: they are recorded in the errors list of the entry they belong to.
 * Returns 0, or a negative errno when root, root/ins or root/clients exists
 * but cannot be read, with the reason in reg->fatal. A missing ins/ or
 * clients/ reads as empty. Call registry_free() afterwards, whatever this
 * returned.
 */
int registry_load(const char *root, struct registry *reg);

/* Frees what registry_load() allocated. Safe on a zeroed or failed registry. */
void registry_free(struct registry *reg);

#endif /* MWCOMMS_CTL_H */
