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

#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

/* What status concludes about one instance. */
struct health {
	bool alive;
	bool has_age;
	int64_t age_ms;
	char reason[128];                     /* why it is not alive */
	bool has_dead_for;                    /* dead, with a plausible last heartbeat: */
	int64_t dead_for_ms;                  /* for this long (the heartbeat beats every second while alive) */
};

/*
 * Judges whether instance in is alive at wall-clock time now: its process
 * exists and its heartbeat is fresh. This function can't fail; what it cannot
 * know makes the instance not alive, with the reason in h->reason.
 */
void status_health(const struct reg_instance *in, const struct timespec *now, struct health *h);

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

/*
 * Reads the one-line value file root/ins/<id>/<name> into buf (size bytes,
 * the NUL included), with the checks every registry value gets: a regular
 * file, not a symlink, valid text, one line, not empty. Returns 0, or a
 * negative errno with a reason that does not echo the file's bytes in why.
 */
int registry_value_read(const char *root, const char *id, const char *name, char *buf, size_t size,
			char *why, size_t whylen);

/* client.c: the control API's client side (docs/telemetry.md, "Control API") */

#define CTL_TIMEOUT_MS  10000          /* for a connect, and for each answer */
#define CTL_REQUEST_MAX (64 << 10)     /* mwinsd ends a connection that sends a longer line */
#define CTL_ANSWER_MAX  (64 << 20)     /* an answer longer than this, its newline included, is refused */

/* The instance to talk to. */
struct ctl_target {
	char id[REG_ID_MAX + 1];
	const char *root;
	char dir[PATH_MAX];                   /* ROOT/ins/ID */
	pid_t pid;                            /* mwinsd's, from the registry */
};

/* One connection to the control socket; it carries any number of requests, one at a time. */
struct ctl_conn {
	int fd;
	char id[REG_ID_MAX + 1];              /* for messages */
	char *buf;                            /* bytes read but not yet answered */
	size_t len, cap;
};

/*
 * Set by the signal handlers of the subcommands that run until stopped
 * (events, top, capture). A wait in this file that a signal interrupts gives
 * up with -EINTR once it is set.
 */
extern volatile sig_atomic_t ctl_stopping;

/*
 * Finds the instance named id in the registry at root, or, when id is NULL,
 * the only live one. It must be alive (see status_health()). Returns 0 with
 * *t filled in, or a negative errno after printing why to stderr ("no INS
 * running", several running, the named one absent or dead).
 */
int ctl_target_find(const char *root, const char *id, struct ctl_target *t);

/*
 * Connects c to t's control socket, ROOT/ins/ID/ctl, which must be a socket
 * (not a symlink). Returns 0, or a negative errno after printing why.
 * Call ctl_conn_close() after success.
 */
int ctl_conn_open(const struct ctl_target *t, struct ctl_conn *c);

/*
 * Sends req (not consumed) as one line and reads one answer line, waiting at
 * most CTL_TIMEOUT_MS. Returns 0 with the answer, an object whose "ok" is
 * true, in *answer (json_decref it); otherwise a negative errno after
 * printing why: -EREMOTEIO when mwinsd answered "ok": false (printed as
 * "mwinsd said: ERROR"), -EPROTO for an answer that is not such an object,
 * -ETIMEDOUT, -EINTR when ctl_stopping was set, or the socket's error.
 */
int ctl_conn_call(struct ctl_conn *c, json_t *req, json_t **answer);

/* Closes c. Safe on a closed or zeroed-with-fd-minus-one connection. */
void ctl_conn_close(struct ctl_conn *c);

/*
 * ctl_target_find(), ctl_conn_open() and ctl_conn_call() in one: a request
 * over a connection of its own. req NULL (a failed json_pack) is reported as
 * out of memory. Returns as ctl_conn_call().
 */
int ctl_request(const char *root, const char *id, json_t *req, json_t **answer);

/*
 * For a subcommand's *_main(): sends req (consumed, may be NULL) with
 * ctl_request(), and returns 0 with the answer in *answer (NULL: dropped),
 * or 1 when it failed (the reason is printed).
 */
int ctl_simple_main(const char *root, const char *id, json_t *req, json_t **answer);

/*
 * Connects a stream socket to dir/name, which must be a socket when
 * must_be_socket (symlinks refused); a path longer than sun_path is reached
 * through a descriptor of dir. timeout_ms > 0 bounds the connect and later
 * writes. Returns 0 with the socket in *fdp, or a negative errno.
 */
int ctl_unix_connect(const char *dir, const char *name, bool must_be_socket, int timeout_ms, int *fdp);

/*
 * Copies text from mwinsd or the registry into out (size >= 4) for a
 * terminal: control characters and malformed UTF-8 become '?', spaces become
 * '_' when nospace (so a value stays one column), and text that does not fit
 * ends in "...". This function can't fail.
 */
void ctl_text_safe(const char *in, char *out, size_t size, bool nospace);

/* Parses a plain decimal number in [min, max]. Returns 0, -EINVAL or -ERANGE. */
int ctl_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Parses a number of seconds ("0.5", "2", "2s") in [min, max]. Returns 0, -EINVAL or -ERANGE. */
int ctl_parse_seconds(const char *s, double min, double max, double *out);

/* Prints getopt's complaint c (':' or '?') about option opt (0: the long option arg) of subcommand cmd. */
void ctl_opt_complain(const char *cmd, int c, int opt, const char *arg);

/*
 * Reads the arguments of a subcommand whose only options are -i ID and
 * --help, with nmin to nmax positional arguments, which start at
 * argv[*first]. Returns false when the caller goes on; true when it must
 * return *status: 0 after --help, 1 after a usage error (both printed with
 * usage()).
 */
bool ctl_args_simple(const char *cmd, int argc, char *argv[], int nmin, int nmax,
		     void (*usage)(FILE *f), const char **id, int *first, int *status);

/* CLOCK_MONOTONIC in seconds. */
double ctl_now(void);

/* Flushes stdout; returns status, or 1 (with a message) if the output could not be written. */
int ctl_finish(int status);

/* flows.c */

#define FLOW_UID_MAX 32                 /* mwinsd's are "C" + 17 base62 characters */

/* One flow record, checked, and seen from the program's side. */
struct ctl_flow {
	json_t *rec;                          /* the record as mwinsd sent it (owned by the list) */
	const char *uid, *proto, *state;      /* never NULL; state "" when absent */
	const char *comm, *exe;               /* never NULL, "" when absent; not yet made safe to print */
	bool inbound;
	int family;                           /* AF_INET or AF_INET6 */
	char local_h[INET6_ADDRSTRLEN];       /* canonical; the program's end (orig or resp) */
	char remote_h[INET6_ADDRSTRLEN];
	uint16_t local_p, remote_p;
	uint64_t bytes_out, bytes_in;         /* what the program sent, and received */
	pid_t pid;                            /* -1 when unknown */
	double age;                           /* seconds, -1 when unknown */
};

struct ctl_flows {
	json_t *array;                        /* the answer's "flows" (a reference held) */
	struct ctl_flow *v;
	size_t n;
	size_t bad;                           /* records skipped as malformed */
};

/* `mwctl flows`: see flows_usage(). Returns 0, or 1 with the reason on stderr. */
int flows_main(const char *root, int argc, char *argv[]);

/*
 * Asks c for "flows" and checks each record. Returns 0 with the list in *fl
 * (flows_free() it), or a negative errno after printing why (as
 * ctl_conn_call()). Malformed records are not an error: fl->bad counts them.
 */
int flows_fetch(struct ctl_conn *c, struct ctl_flows *fl);

/* Frees what flows_fetch() filled in. Safe on a zeroed list. */
void flows_free(struct ctl_flows *fl);

/* Prints to stderr how many records were malformed, if any. */
void flows_warn_bad(const struct ctl_flows *fl);

/* True for a syntactically valid flow uid: 1 to FLOW_UID_MAX letters and digits. */
bool flow_uid_valid(const char *uid);

/* "ADDR:PORT", or "[ADDR]:PORT" for IPv6. */
void flow_endpoint_fmt(const char *h, uint16_t p, char *buf, size_t size);
/* "PID/COMM", safe to print and one column wide. */
void flow_who_fmt(const struct ctl_flow *f, char *buf, size_t size);
/* An age in seconds as "12.3s", "5m07s", "3h05m" or "2d03h"; "-" when negative (unknown). */
void flow_age_fmt(double age, char *buf, size_t size);

/*
 * The actions, one file each: kill.c, block.c, unblock.c, quarantine.c,
 * throttle.c, policy.c. Each returns 0, or 1 with the reason on stderr.
 */
int kill_main(const char *root, int argc, char *argv[]);
int block_main(const char *root, int argc, char *argv[]);
int unblock_main(const char *root, int argc, char *argv[]);
int quarantine_main(const char *root, int argc, char *argv[]);
int throttle_main(const char *root, int argc, char *argv[]);
int policy_main(const char *root, int argc, char *argv[]);

/*
 * events.c: `mwctl events`. Returns 0 after --count events or an interrupt
 * (SIGINT, SIGTERM), 1 when the stream cannot be reached or ends first.
 */
int events_main(const char *root, int argc, char *argv[]);

/*
 * Connects to t's event stream, the socket named by the registry file
 * ins/ID/netflow. Returns 0 with the socket in *fdp, or a negative errno after
 * printing why.
 */
int events_connect(const struct ctl_target *t, int *fdp);

/*
 * top.c: `mwctl top`. Returns 0 on 'q', after --iterations, or on an
 * interrupt, with the terminal restored; 1 when mwinsd cannot be asked.
 */
int top_main(const char *root, int argc, char *argv[]);

/*
 * capture.c: `mwctl capture`. Returns 0 when it stopped as asked (signal,
 * --duration, --count) with every packet written; 1 otherwise. Once the file
 * is open, the packet count is printed to stderr in either case.
 */
int capture_main(const char *root, int argc, char *argv[]);

#endif /* MWCOMMS_CTL_H */
