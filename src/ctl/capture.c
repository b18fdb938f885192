/*
 * capture.c: `mwctl capture --pid PID -w FILE.pcapng`: the packets of one
 * program's flows, as they cross the INS's real network.
 *
 * The program itself has no network to sniff: its sockets are carried to
 * mwinsd, whose real sockets send the packets from mwinsd's network
 * namespace. So capture enters that namespace (setns on /proc/PID/ns/net,
 * mwinsd's pid from the registry), opens libpcap's "any" device there, and
 * keeps a BPF filter that matches exactly the program's flows: every second
 * it asks mwinsd for "flows", takes that pid's 5-tuples (the addresses in a
 * flow record are the real sockets'), and recompiles the filter when the set
 * changed. With no flow yet, the filter matches nothing.
 *
 * Honest limits: a flow enters the filter up to a second after it begins, so
 * its first packets (the handshake) can be missed; a flow that ended stays in
 * the filter for CAPTURE_LINGER_S so that its last packets are not. Packets
 * are written with pcapng.c, since libpcap 1.10 cannot write pcapng.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "pcapng.h"

#define CAPTURE_REFRESH_S   1.0      /* how often the flow list is asked for */
#define CAPTURE_LINGER_S    5.0      /* how long a vanished flow stays in the filter */
#define CAPTURE_FLOWS_MAX   64       /* tuples in one filter: keeps it far below BPF's 4096 instructions */
#define CAPTURE_SNAPLEN     262144
#define CAPTURE_TUPLE_MAX   (2 * INET6_ADDRSTRLEN + 24)

/* One flow as the filter sees it: "proto local_h local_p remote_h remote_p", canonical. */
struct capture_tuple {
	char key[CAPTURE_TUPLE_MAX];
	char proto[4];
	char local_h[INET6_ADDRSTRLEN], remote_h[INET6_ADDRSTRLEN];
	uint16_t local_p, remote_p;
	double last_seen;
};

struct capture {
	pcap_t *p;
	struct pcapng_writer w;
	uint32_t ifid;
	bool nano;                            /* timestamps in ns (else us) */
	uint64_t count;                       /* stop after this many packets; 0: no limit */
	pid_t pid;
	struct capture_tuple *tuples;         /* sorted by key: the set the filter matches */
	size_t n_tuples;
	bool filter_set, warned_max;
	int err;                              /* a write error: ends the capture */
};

static void capture_usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [-r DIR] capture [-i ID] --pid PID -w FILE [--duration S] [--count N]\n"
		"  Captures the packets of process PID's flows on the INS side (in mwinsd's network\n"
		"  namespace; needs root) into FILE in pcapng format ('-': stdout). Stops on SIGINT\n"
		"  or SIGTERM, after S seconds, or after N packets; prints the count to stderr.\n",
		PROG_NAME);
}

static void capture_on_signal(int sig)
{
	(void)sig;
	ctl_stopping = 1;
}

/* ---- the filter ---- */

/* An address for a BPF filter: canonical, and an IPv4-mapped IPv6 address as the IPv4 one it is. */
static void capture_addr(const char *in, char *out)
{
	struct in6_addr a6;

	if (strchr(in, ':') && inet_pton(AF_INET6, in, &a6) == 1 && IN6_IS_ADDR_V4MAPPED(&a6)) {
		inet_ntop(AF_INET, &a6.s6_addr[12], out, INET6_ADDRSTRLEN);
		return;
	}
	memcpy(out, in, INET6_ADDRSTRLEN);
}

static int tuple_cmp(const void *a, const void *b)
{
	return strcmp(((const struct capture_tuple *)a)->key, ((const struct capture_tuple *)b)->key);
}

/*
 * The program's flows now, merged with the set the filter has: a flow seen
 * now is (re)stamped, one not seen for CAPTURE_LINGER_S is dropped. Returns
 * 1 when the set changed, 0 when not, or -ENOMEM.
 */
static int capture_tuples_update(struct capture *cap, const struct ctl_flows *fl, double now)
{
	struct capture_tuple *v, key;
	size_t i, n = 0, kept = 0;
	bool changed = false;

	v = calloc(cap->n_tuples + fl->n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	/* Known ones first, those still fresh. */
	for (i = 0; i < cap->n_tuples; i++)
		if (now - cap->tuples[i].last_seen <= CAPTURE_LINGER_S)
			v[n++] = cap->tuples[i];
	kept = n;
	if (kept != cap->n_tuples)
		changed = true;
	for (i = 0; i < fl->n; i++) {
		const struct ctl_flow *f = &fl->v[i];
		struct capture_tuple *t;

		if (f->pid != cap->pid)
			continue;
		memset(&key, 0, sizeof(key));
		snprintf(key.proto, sizeof(key.proto), "%s", f->proto);
		capture_addr(f->local_h, key.local_h);
		capture_addr(f->remote_h, key.remote_h);
		key.local_p = f->local_p;
		key.remote_p = f->remote_p;
		snprintf(key.key, sizeof(key.key), "%s %s %u %s %u", key.proto, key.local_h, key.local_p,
			 key.remote_h, key.remote_p);
		key.last_seen = now;
		t = kept ? bsearch(&key, v, kept, sizeof(*v), tuple_cmp) : NULL;
		if (t) {
			t->last_seen = now;
			continue;
		}
		/* O(n^2) over one program's flows for duplicates among the new: fine at its scale. */
		for (t = v + kept; t < v + n; t++)
			if (!strcmp(t->key, key.key))
				break;
		if (t < v + n)
			continue;
		v[n++] = key;
		changed = true;
	}
	qsort(v, n, sizeof(*v), tuple_cmp);
	free(cap->tuples);
	cap->tuples = v;
	cap->n_tuples = n;
	return changed;
}

/* Appends the filter term for one tuple: its packets both ways. */
static int capture_filter_term(char *buf, size_t size, size_t *off, const struct capture_tuple *t)
{
	int n = snprintf(buf + *off, size - *off,
			 "%s(%s and ((src host %s and src port %u and dst host %s and dst port %u) or "
			 "(src host %s and src port %u and dst host %s and dst port %u)))",
			 *off ? " or " : "", t->proto, t->local_h, t->local_p, t->remote_h, t->remote_p,
			 t->remote_h, t->remote_p, t->local_h, t->local_p);

	if (n < 0 || (size_t)n >= size - *off)
		return -ENOSPC;
	*off += (size_t)n;
	return 0;
}

/* Installs the filter for cap->tuples; with none, a filter that matches nothing. */
static int capture_filter_set(struct capture *cap)
{
	static struct bpf_insn reject = BPF_STMT(BPF_RET | BPF_K, 0);
	struct bpf_program prog = { .bf_len = 1, .bf_insns = &reject };
	char *text;
	size_t size = (size_t)CAPTURE_FLOWS_MAX * 2 * CAPTURE_TUPLE_MAX + 64, off = 0, i, n = cap->n_tuples;
	int err = 0;

	if (n == 0) {
		if (pcap_setfilter(cap->p, &prog) < 0) {
			fprintf(stderr, "%s: capture: cannot set a filter: %s\n", PROG_NAME, pcap_geterr(cap->p));
			return -EIO;
		}
		return 0;
	}
	if (n > CAPTURE_FLOWS_MAX) {
		if (!cap->warned_max)
			fprintf(stderr, "%s: capture: process has more than %d flows; only %d are captured\n",
				PROG_NAME, CAPTURE_FLOWS_MAX, CAPTURE_FLOWS_MAX);
		cap->warned_max = true;
		n = CAPTURE_FLOWS_MAX;
	}
	text = malloc(size);
	if (!text)
		return -ENOMEM;
	for (i = 0; i < n && !err; i++)
		err = capture_filter_term(text, size, &off, &cap->tuples[i]);
	/* Every address in the text went through inet_pton/inet_ntop: nothing else reaches the compiler. */
	if (!err && pcap_compile(cap->p, &prog, text, 1, PCAP_NETMASK_UNKNOWN) < 0) {
		fprintf(stderr, "%s: capture: cannot compile the filter: %s\n", PROG_NAME, pcap_geterr(cap->p));
		err = -EINVAL;
	} else if (!err) {
		if (pcap_setfilter(cap->p, &prog) < 0) {
			fprintf(stderr, "%s: capture: cannot set the filter: %s\n", PROG_NAME,
				pcap_geterr(cap->p));
			err = -EIO;
		}
		pcap_freecode(&prog);
	}
	free(text);
	return err;
}

/* Asks for the flows and updates the filter if the program's set changed. */
static int capture_refresh(struct capture *cap, struct ctl_conn *conn)
{
	struct ctl_flows fl;
	int err, changed;

	err = flows_fetch(conn, &fl);
	if (err)
		return err;
	changed = capture_tuples_update(cap, &fl, ctl_now());
	flows_free(&fl);
	if (changed < 0)
		return changed;
	if (!changed && cap->filter_set)
		return 0;
	err = capture_filter_set(cap);
	if (err)
		return err;
	cap->filter_set = true;
	fprintf(stderr, "%s: capture: filter covers %zu flow%s of process %d\n", PROG_NAME, cap->n_tuples,
		cap->n_tuples == 1 ? "" : "s", (int)cap->pid);
	return 0;
}

/* ---- packets ---- */

static void capture_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
	struct capture *cap = (struct capture *)user;
	uint64_t ts = (uint64_t)h->ts.tv_sec * (cap->nano ? 1000000000u : 1000000u) + (uint64_t)h->ts.tv_usec;
	int err;

	if (cap->err || (cap->count && cap->w.packets >= cap->count))
		return;
	err = pcapng_write_packet(&cap->w, cap->ifid, ts, bytes, h->caplen, h->len);
	if (err) {
		cap->err = err;
		pcap_breakloop(cap->p);
	} else if (cap->count && cap->w.packets >= cap->count) {
		pcap_breakloop(cap->p);
	}
}

/* libpcap's DLT_ values are pcapng's LINKTYPE_ values but for a few; of those, only raw IP can come here. */
static uint16_t capture_linktype(int dlt)
{
	return dlt == DLT_RAW ? PCAPNG_LINKTYPE_RAW : (uint16_t)dlt;
}

/* ---- setting up ---- */

/* Enters the network namespace of process pid (unless we are in it already). */
static int capture_enter_netns(pid_t pid)
{
	char path[64];
	struct stat ours, theirs;
	int fd, err = 0;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		fprintf(stderr, "%s: capture: cannot open %s: %s\n", PROG_NAME, path, strerror(-err));
		return err;
	}
	if (fstat(fd, &theirs) == 0 && stat("/proc/self/ns/net", &ours) == 0 && ours.st_ino == theirs.st_ino &&
	    ours.st_dev == theirs.st_dev)
		goto out;
	if (setns(fd, CLONE_NEWNET) < 0) {
		err = -errno;
		fprintf(stderr, "%s: capture: cannot enter mwinsd's network namespace: %s%s\n", PROG_NAME,
			strerror(-err), err == -EPERM ? " (needs root)" : "");
	}
out:
	close(fd);
	return err;
}

static int capture_open_pcap(struct capture *cap)
{
	char errbuf[PCAP_ERRBUF_SIZE] = "";
	int r;

	cap->p = pcap_create("any", errbuf);
	if (!cap->p) {
		fprintf(stderr, "%s: capture: %s\n", PROG_NAME, errbuf);
		return -ENODEV;
	}
	pcap_set_snaplen(cap->p, CAPTURE_SNAPLEN);
	pcap_set_promisc(cap->p, 0);
	pcap_set_immediate_mode(cap->p, 1);
	pcap_set_buffer_size(cap->p, 8 << 20);
	cap->nano = pcap_set_tstamp_precision(cap->p, PCAP_TSTAMP_PRECISION_NANO) == 0;
	r = pcap_activate(cap->p);
	if (r < 0) {
		fprintf(stderr, "%s: capture: cannot capture on \"any\": %s%s\n", PROG_NAME,
			r == PCAP_ERROR ? pcap_geterr(cap->p) : pcap_statustostr(r),
			r == PCAP_ERROR_PERM_DENIED ? " (needs root)" : "");
		return -EPERM;
	}
	if (r > 0)
		fprintf(stderr, "%s: capture: warning: %s\n", PROG_NAME,
			r == PCAP_WARNING ? pcap_geterr(cap->p) : pcap_statustostr(r));
	cap->nano = pcap_get_tstamp_precision(cap->p) == PCAP_TSTAMP_PRECISION_NANO;
	/* Nothing is wanted until the program's flows are known; libpcap also filters what is queued. */
	if (capture_filter_set(cap))
		return -EIO;
	if (pcap_setnonblock(cap->p, 1, errbuf) < 0) {
		fprintf(stderr, "%s: capture: %s\n", PROG_NAME, errbuf);
		return -EIO;
	}
	return 0;
}

/* ---- the subcommand ---- */

int capture_main(const char *root, int argc, char *argv[])
{
	static const struct option options[] = {
		{ "id",       required_argument, NULL, 'i' },
		{ "pid",      required_argument, NULL, 'p' },
		{ "write",    required_argument, NULL, 'w' },
		{ "duration", required_argument, NULL, 'd' },
		{ "count",    required_argument, NULL, 'n' },
		{ "help",     no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sigaction sa = { .sa_handler = capture_on_signal };
	struct capture cap = { 0 };
	const char *id = NULL, *file = NULL;
	double duration = 0, start, next_refresh;
	struct ctl_conn conn = { .fd = -1 };
	struct pcap_stat ps;
	struct ctl_target t;
	uint64_t v;
	int c, pfd, err = 0, ret = 1;
	bool opened = false;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":i:w:h", options, NULL)) != -1) {
		switch (c) {
		case 'i':
			id = optarg;
			break;
		case 'p':
			if (ctl_parse_u64(optarg, 1, REG_PID_MAX, &v)) {
				fprintf(stderr, "%s: capture: --pid needs a process id\n", PROG_NAME);
				return 1;
			}
			cap.pid = (pid_t)v;
			break;
		case 'w':
			file = optarg;
			break;
		case 'd':
			if (ctl_parse_seconds(optarg, 0.001, 1e9, &duration)) {
				fprintf(stderr, "%s: capture: --duration is a positive number of seconds\n",
					PROG_NAME);
				return 1;
			}
			break;
		case 'n':
			if (ctl_parse_u64(optarg, 1, UINT64_MAX, &cap.count)) {
				fprintf(stderr, "%s: capture: --count needs a positive number\n", PROG_NAME);
				return 1;
			}
			break;
		case 'h':
			capture_usage(stdout);
			return 0;
		default:
			ctl_opt_complain("capture", c, optopt, argv[optind - 1]);
			capture_usage(stderr);
			return 1;
		}
	}
	if (optind < argc || !cap.pid || !file || !*file) {
		if (optind < argc)
			fprintf(stderr, "%s: capture: unexpected argument '%s'\n", PROG_NAME, argv[optind]);
		else
			fprintf(stderr, "%s: capture: --pid and -w are required\n", PROG_NAME);
		capture_usage(stderr);
		return 1;
	}

	/* The control socket is a path: connected from here, it stays usable from mwinsd's namespace. */
	if (ctl_target_find(root, id, &t) || ctl_conn_open(&t, &conn))
		return 1;
	if (capture_enter_netns(t.pid) || capture_open_pcap(&cap))
		goto out;
	err = pcapng_open(&cap.w, file, "mwctl capture");
	if (err) {
		fprintf(stderr, "%s: capture: cannot create %s: %s\n", PROG_NAME, file, strerror(-err));
		goto out;
	}
	opened = true;
	err = pcapng_add_interface(&cap.w, capture_linktype(pcap_datalink(cap.p)),
				   (uint32_t)pcap_snapshot(cap.p), "any", cap.nano ? 9 : 6, &cap.ifid);
	if (err) {
		fprintf(stderr, "%s: capture: cannot write %s: %s\n", PROG_NAME, file, strerror(-err));
		goto out;
	}

	/* No SA_RESTART: a signal must end the poll below. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	pfd = pcap_get_selectable_fd(cap.p);
	start = ctl_now();
	next_refresh = start;
	while (!ctl_stopping && !cap.err && !(cap.count && cap.w.packets >= cap.count)) {
		struct pollfd pf = { .fd = pfd, .events = POLLIN };
		double now = ctl_now(), until = next_refresh;

		if (duration && now - start >= duration)
			break;
		if (now >= next_refresh) {
			err = capture_refresh(&cap, &conn);
			if (err)
				break;
			next_refresh = now + CAPTURE_REFRESH_S;
			continue;
		}
		if (duration && start + duration < until)
			until = start + duration;
		/* At most 100 ms: libpcap may hold packets in a ring block past a poll wakeup. */
		if (until - now > 0.1)
			until = now + 0.1;
		poll(&pf, 1, (int)((until - now) * 1000) + 1);
		if (pcap_dispatch(cap.p, -1, capture_packet, (u_char *)&cap) == PCAP_ERROR) {
			fprintf(stderr, "%s: capture: %s\n", PROG_NAME, pcap_geterr(cap.p));
			err = -EIO;
			break;
		}
	}
	if (err == -EINTR)
		err = 0;
	/* What the ring still holds was captured before we stopped: write it too. */
	if (!cap.err && !(cap.count && cap.w.packets >= cap.count))
		pcap_dispatch(cap.p, -1, capture_packet, (u_char *)&cap);
	if (cap.err) {
		fprintf(stderr, "%s: capture: cannot write %s: %s\n", PROG_NAME, file, strerror(-cap.err));
		err = cap.err;
	}
	ret = err ? 1 : 0;
out:
	if (opened) {
		int cerr = pcapng_close(&cap.w);

		if (cerr && !cap.err) {
			fprintf(stderr, "%s: capture: cannot write %s: %s\n", PROG_NAME, file, strerror(-cerr));
			ret = 1;
		}
		fprintf(stderr, "%s: capture: %" PRIu64 " packet%s written to %s", PROG_NAME, cap.w.packets,
			cap.w.packets == 1 ? "" : "s", file);
		if (cap.p && pcap_stats(cap.p, &ps) == 0 && ps.ps_drop)
			fprintf(stderr, " (%u dropped by the kernel)", ps.ps_drop);
		fputc('\n', stderr);
	}
	if (cap.p)
		pcap_close(cap.p);
	free(cap.tuples);
	ctl_conn_close(&conn);
	return ret;
}
