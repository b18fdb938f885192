/*
 * main.c: mwinsd's entry point: options, the registry entry, and the one epoll loop everything runs in.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "ins.h"
#include "ipfix.h"
#include "sandbox.h"
#include "mwlib.h"

static const char *sandbox_user;
static bool sandbox_no_seccomp;

static void on_timer(struct ins_ev *ev, uint32_t events)
{
	uint64_t ticks;

	(void)events;
	if (read(ev->fd, &ticks, sizeof(ticks)) != sizeof(ticks))
		return;
	ins.heartbeat += ticks;
	registry_tick();
	flow_tick(ins_now_ms());
	enforce_tick(ins_now_ms());
	sock_zombies_tick();
	/* The watchdog is fed from the loop itself, with the heartbeat: a stalled loop starves both. */
	sd_notify(0, "WATCHDOG=1");
}

static void on_signal(struct ins_ev *ev, uint32_t events)
{
	struct signalfd_siginfo si;

	(void)events;
	while (read(ev->fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
			ins.quit = true;
		} else if (si.ssi_signo == SIGHUP) {
			char err[512];

			if (enforce_reload(err, sizeof(err)) < 0 && ins.cfg.policy[0])
				ins_log(0, "SIGHUP: %s", err);
		}
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: mwinsd [-r DIR] [-i ID] [--policy FILE] [--event-log FILE] [--ipfix HOST:PORT]\n"
		   "              [--metrics ADDR:PORT] [--ready-fd N] [--report] [-v]\n"
		   "  -r, --registry DIR       registry root (default $MWCOMMS_REGISTRY or %s)\n"
		   "  -i, --id ID              instance id (default ins-PID)\n"
		   "      --policy FILE        rules file (docs/telemetry.md), reloaded on SIGHUP\n"
		   "      --event-log FILE     append every event to FILE as JSON lines\n"
		   "      --event-log-size N   rotate the event log at N bytes (default 64M; K, M, G)\n"
		   "      --event-log-keep N   keep N rotated logs (default 5)\n"
		   "      --ipfix HOST:PORT    export flows as IPFIX over UDP to a collector\n"
		   "      --ipfix-domain N     observation domain id (default 1)\n"
		   "      --ipfix-pen N        enterprise number of mwcomms' own elements (default %u)\n"
		   "      --metrics ADDR:PORT  serve Prometheus metrics on GET /metrics\n"
		   "      --ready-fd N         write a line to fd N once serving\n"
		   "      --report             print every connection seen to stderr when it ends\n"
		   "      --spin-us N          poll up to N us for more work before sleeping, after work (default\n"
		   "                           %u; 0: never).  Adapts: an idle mwinsd does not spin\n"
		   "  -v, --verbose            log more (repeat for more)\n"
		   "      --user USER          once set up, run as USER (when started as root)\n"
		   "      --no-seccomp         no system call filter (to find a call the filter lacks)\n",
		MW_REGISTRY_DEFAULT, IPFIX_PEN_DEFAULT, INS_SPIN_US_DEFAULT);
}

static int opt_path(char *dst, size_t cap, const char *arg, const char *opt)
{
	if (!arg[0] || strlen(arg) >= cap) {
		fprintf(stderr, "mwinsd: bad %s '%s'\n", opt, arg);
		return -EINVAL;
	}
	strcpy(dst, arg);
	return 0;
}

/* An unsigned number of at most max, for opt (said why when not). */
static int opt_number(const char *arg, unsigned long max, uint32_t *out, const char *opt)
{
	char *end;
	unsigned long v = strtoul(arg, &end, 10);

	if (*end || !*arg || v > max) {
		fprintf(stderr, "mwinsd: bad %s '%s' (0 to %lu)\n", opt, arg, max);
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

/* The identity options: where the registry is, the instance's id, the fd to say "ready" on. */
static int opt_identity(int c, const char *arg)
{
	uint32_t v;

	switch (c) {
	case 'r':
		if (arg[0] != '/' || strlen(arg) >= sizeof(ins.cfg.registry) - 64) {
			fprintf(stderr, "mwinsd: registry must be an absolute path of reasonable length\n");
			return -EINVAL;
		}
		snprintf(ins.cfg.registry, sizeof(ins.cfg.registry), "%s", arg);
		return 0;
	case 'i':
		if (!arg[0] || strlen(arg) >= sizeof(ins.cfg.id) || strpbrk(arg, "/ \t\n") || arg[0] == '.') {
			fprintf(stderr, "mwinsd: bad instance id '%s'\n", arg);
			return -EINVAL;
		}
		snprintf(ins.cfg.id, sizeof(ins.cfg.id), "%s", arg);
		return 0;
	default: /* 'R' */
		if (opt_number(arg, 65535, &v, "--ready-fd") < 0)
			return -EINVAL;
		ins.cfg.ready_fd = (int)v;
		return 0;
	}
}

/* The telemetry options: the event log, IPFIX, metrics. */
static int opt_telemetry(int c, const char *arg)
{
	switch (c) {
	case 'E':
		return opt_path(ins.cfg.event_log, sizeof(ins.cfg.event_log), arg, "--event-log");
	case 'S':
		if (pol_parse_rate(arg, &ins.cfg.event_log_size) < 0 || ins.cfg.event_log_size < 4096) {
			fprintf(stderr, "mwinsd: bad --event-log-size '%s' (at least 4K)\n", arg);
			return -EINVAL;
		}
		return 0;
	case 'K':
		return opt_number(arg, 100, &ins.cfg.event_log_keep, "--event-log-keep");
	case 'D':
		return opt_number(arg, 0xffffffffUL, &ins.cfg.ipfix_domain, "--ipfix-domain");
	case 'N':
		return opt_number(arg, 0xffffffffUL, &ins.cfg.ipfix_pen, "--ipfix-pen");
	default: /* 'X', 'M' */
		if (strlen(arg) >= sizeof(ins.cfg.ipfix) || !strchr(arg, ':')) {
			fprintf(stderr, "mwinsd: bad address '%s': HOST:PORT\n", arg);
			return -EINVAL;
		}
		strcpy(c == 'X' ? ins.cfg.ipfix : ins.cfg.metrics, arg);
		return 0;
	}
}

/* One option: 0, or -EINVAL (said why). */
static int option(int c, const char *arg)
{
	switch (c) {
	case 'r':
	case 'i':
	case 'R':
		return opt_identity(c, arg);
	case 'E':
	case 'S':
	case 'K':
	case 'D':
	case 'N':
	case 'X':
	case 'M':
		return opt_telemetry(c, arg);
	case 'P':
		return opt_path(ins.cfg.policy, sizeof(ins.cfg.policy), arg, "--policy");
	case 'W':
		return opt_number(arg, 1000, &ins.cfg.spin_us, "--spin-us");
	case 'p':
		ins.cfg.report = true;
		return 0;
	case 'u':
		sandbox_user = arg;
		return 0;
	case 'Z':
		sandbox_no_seccomp = true;
		return 0;
	case 'v':
		ins.cfg.verbose++;
		return 0;
	case 'h':
		usage(stdout);
		exit(0);
	default:
		usage(stderr);
		return -EINVAL;
	}
}

static int parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "registry", required_argument, NULL, 'r' }, { "id", required_argument, NULL, 'i' },
		{ "ready-fd", required_argument, NULL, 'R' }, { "report", no_argument, NULL, 'p' },
		{ "verbose", no_argument, NULL, 'v' },        { "help", no_argument, NULL, 'h' },
		{ "policy", required_argument, NULL, 'P' },   { "event-log", required_argument, NULL, 'E' },
		{ "event-log-size", required_argument, NULL, 'S' }, { "event-log-keep", required_argument, NULL, 'K' },
		{ "ipfix", required_argument, NULL, 'X' },    { "ipfix-domain", required_argument, NULL, 'D' },
		{ "ipfix-pen", required_argument, NULL, 'N' }, { "metrics", required_argument, NULL, 'M' },
		{ "user", required_argument, NULL, 'u' },     { "no-seccomp", no_argument, NULL, 'Z' },
		{ "spin-us", required_argument, NULL, 'W' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	snprintf(ins.cfg.registry, sizeof(ins.cfg.registry), "%s", mw_registry_root());
	snprintf(ins.cfg.id, sizeof(ins.cfg.id), "ins-%d", (int)getpid());
	ins.cfg.ready_fd = -1;
	ins.cfg.nslots = 16384;
	ins.cfg.event_log_size = 64u << 20;
	ins.cfg.event_log_keep = 5;
	ins.cfg.ipfix_domain = 1;
	ins.cfg.ipfix_pen = IPFIX_PEN_DEFAULT;
	ins.cfg.spin_us = INS_SPIN_US_DEFAULT;
	while ((c = getopt_long(argc, argv, "r:i:vh", opts, NULL)) != -1)
		if (option(c, optarg) < 0)
			return -EINVAL;
	if (optind != argc) {
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

static int setup_loop(void)
{
	struct itimerspec its = { .it_interval = { 1, 0 }, .it_value = { 1, 0 } };
	sigset_t mask;
	int fd, err;

	ins.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ins.epfd < 0)
		return -errno;
	fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fd < 0 || timerfd_settime(fd, 0, &its, NULL) < 0)
		return -errno;
	err = ins_ev_add(&ins.ev_timer, fd, EPOLLIN, on_timer);
	if (err)
		return err;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	return ins_ev_add(&ins.ev_signal, fd, EPOLLIN, on_signal);
}

/* Policy, event stream and log, control API, IPFIX, metrics: everything that watches and acts on flows. */
static int telemetry_init(void)
{
	char msg[512];
	int err = enforce_init();

	if (!err)
		err = events_init();
	if (!err)
		err = ctl_init();
	if (!err && ins.cfg.metrics[0]) {
		err = metrics_init();
		if (err)
			fprintf(stderr, "mwinsd: --metrics %s: %s\n", ins.cfg.metrics, strerror(-err));
	}
	if (!err && ins.cfg.ipfix[0]) {
		ins.ipfix = ipfix_open(ins.cfg.ipfix, ins.cfg.ipfix_domain, ins.cfg.ipfix_pen, msg, sizeof(msg));
		if (!ins.ipfix) {
			fprintf(stderr, "mwinsd: --ipfix %s: %s\n", ins.cfg.ipfix, msg);
			err = -EINVAL;
		}
	}
	return err;
}

int main(int argc, char **argv)
{
	struct epoll_event evs[128];
	int err;

	signal(SIGPIPE, SIG_IGN);
	{
		/* Every connection costs us two fds: take all the kernel allows. */
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur > 1U << 24)
			rl.rlim_cur = 1U << 24;
		/* for the loop, the registry, ..., and the relay's pipes */
		rl.rlim_cur = rl.rlim_cur > 256 + 2 * RELAY_PIPES_MAX ? rl.rlim_cur - 64 - 2 * RELAY_PIPES_MAX : 64;
		ins.max_clients = (uint32_t)(rl.rlim_cur / 32);
		ins.max_socks = (uint32_t)(rl.rlim_cur - 2 * ins.max_clients) / 2;
	}
	list_init(&ins.groups);
	list_init(&ins.clients);
	list_init(&ins.runq);
	idle_init(client_exec, sock_pump);
	list_init(&ins.zombies);
	list_init(&ins.flows);
	list_init(&ins.throttled);
	if (parse_args(argc, argv) < 0)
		return 2;
	err = setup_loop();
	if (!err)
		err = registry_prepare();
	if (!err)
		err = client_listen_init();
	if (!err)
		err = telemetry_init();
	if (!err)
		err = registry_publish();
	if (!err) {
		/* The last step of start-up, in one place: everything mwinsd will ever open is open by now. */
		char clients[sizeof(ins.cfg.registry) + 16], why[512];
		const char *shared[] = { clients, NULL };
		struct sandbox_cfg sb = { .user = sandbox_user, .no_seccomp = sandbox_no_seccomp,
					  .instance_dir = ins.dir, .shared_dirs = shared };

		snprintf(clients, sizeof(clients), "%s/clients", ins.cfg.registry);
		err = sandbox_enter(&sb, why, sizeof(why));
		if (err)
			fprintf(stderr, "mwinsd: %s\n", why);
	}
	if (err) {
		fprintf(stderr, "mwinsd: cannot start: %s\n", strerror(-err));
		registry_remove();
		return 1;
	}
	ins_log(1, "serving on %s", ins.sockpath);
	sd_notifyf(0, "READY=1\nSTATUS=serving on %s", ins.sockpath);
	if (ins.cfg.ready_fd >= 0) {
		if (write(ins.cfg.ready_fd, "ready\n", 6) < 0)
			ins_log(0, "ready fd: %s", strerror(errno));
		close(ins.cfg.ready_fd);
	}
	while (!ins.quit) {
		int i, n = wait_events(evs, 128, !list_empty(&ins.runq) || idle_pending());

		if (n < 0 && errno != EINTR) {
			ins_log(0, "epoll_wait: %s", strerror(errno));
			break;
		}
		for (i = 0; i < n; i++) {
			struct ins_ev *ev = evs[i].data.ptr;

			ev->fn(ev, evs[i].events);
		}
		sock_run_queue();
		idle_run(n == 0);
		/* Objects die here, never inside a handler: a later event of this batch may still name them. */
		sock_reap();
		client_reap();
		conn_reap();
	}
	sd_notify(0, "STOPPING=1");
	flow_shutdown();
	if (ins.ipfix)
		ipfix_close(ins.ipfix);
	conn_shutdown();
	policy_free(ins.pol_file);
	policy_free(ins.pol_rt);
	if (ins.cfg.report)
		sock_report_all();
	registry_remove();
	ins_log(1, "exiting");
	return 0;
}
