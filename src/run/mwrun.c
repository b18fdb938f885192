/*
 * mwrun.c: run a command with no network of its own.  The command gets a fresh network namespace with only
 * loopback, and the shim preloaded, so its TCP and UDP sockets reach the network through an INS and nothing else.
 * If the namespace can't be made, the command does not run: isolation fails closed.  Run by a user who is
 * not root (or with --userns), the namespaces are made inside a user namespace of their own (userns.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mwlib.h"
#include "run.h"

#define EXIT_MWRUN 125

static pid_t child = -1;

static void forward(int sig)
{
	if (child > 0)
		kill(child, sig);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: mwrun [options] -- CMD [ARGS...]\n"
		   "  -r, --registry DIR  registry root (default $MWCOMMS_REGISTRY, else %s as root; for other\n"
		   "                      users $XDG_RUNTIME_DIR/mwcomms, else /tmp/mwcomms-UID, kept mode 0700)\n"
		   "  -s, --sock PATH     attach to the INS at this rendezvous socket\n"
		   "      --embedded      always start an embedded mwinsd for this command\n"
		   "      --report        print what the embedded mwinsd saw when the command ends\n"
		   "      --dns ADDR[,ADDR...]\n"
		   "                      resolve names through these nameservers (at most %d IPv4/IPv6 addresses;\n"
		   "                      default $MWCOMMS_DNS, else the host's /etc/resolv.conf nameservers), which\n"
		   "                      mwinsd must be able to reach.  CMD gets a resolv.conf naming them (in a\n"
		   "                      private mount namespace), and a forwarder at each ADDR:53 in CMD's\n"
		   "                      namespace carries glibc's queries (which no preload can see) through mwinsd\n"
		   "      --no-dns        no forwarder: CMD sees the host's resolv.conf, and only programs that make\n"
		   "                      their own DNS sockets (dig, c-ares) can resolve, through mwinsd\n"
		   "      --userns        make CMD's namespaces inside a new user namespace in which only your uid\n"
		   "                      and gid are mapped, each to itself: CMD runs as you, not as root inside,\n"
		   "                      and mwrun needs no privilege.  On by default when mwrun is not run as root.\n"
		   "                      Needs user namespaces: if sysctl user.max_user_namespaces is 0 (or\n"
		   "                      kernel.unprivileged_userns_clone is 0, where it exists), mwrun names the\n"
		   "                      sysctl to change, exits %d and does not run CMD\n"
		   "      --allow-unix PATH\n"
		   "                      let CMD connect to the host's AF_UNIX socket at PATH (repeatable); by\n"
		   "                      default it reaches none but its INS's and its own (connect gets EACCES)\n"
		   "      --deny-unix-dgram\n"
		   "                      no AF_UNIX datagram sockets for CMD (EACCES): by default they can send to\n"
		   "                      host datagram sockets its user may write (syslog's /dev/log)\n"
		   "      --no-new-privs  set no_new_privs for CMD: set-ID bits and file capabilities give it nothing\n"
		   "      --map-root-to UID\n"
		   "                      as root: uids and gids 0-65535 inside are UID..UID+65535 outside, so root\n"
		   "                      inside owns nothing of the host's (by default every id maps to itself)\n"
		   "  -v, --verbose       say which INS is used (and each host socket CMD was refused)\n"
		   "Exit status: CMD's; 128+N if it died of signal N; %d if mwrun itself failed.\n",
		MW_REGISTRY_DEFAULT, MW_DNS_MAX, EXIT_MWRUN, EXIT_MWRUN);
}

static int loopback_up(void)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), err = 0;

	if (fd < 0)
		return -errno;
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		err = -errno;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (!err && ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		err = -errno;
	close(fd);
	return err;
}

/* The shim's environment, for the command and for the DNS forwarder.  Exits on failure (in a child). */
static void shim_env(const struct run_cfg *cfg, const char *sock)
{
	char preload[PATH_MAX + 1100];
	const char *old = getenv("LD_PRELOAD"), *shim = cfg->shim;

	if (access(shim, R_OK) < 0) {
		fprintf(stderr, "mwrun: %s: %s\n", shim, strerror(errno));
		_exit(EXIT_MWRUN);
	}
	snprintf(preload, sizeof(preload), "%s%s%s", shim, old && old[0] ? ":" : "", old ? old : "");
	setenv("LD_PRELOAD", preload, 1);
	setenv("MWCOMMS_SOCK", sock, 1);
	/* With -s the command is pinned to that INS: if it goes, the shim must not look for another.  So is
	 * it to an embedded INS: any other in the registry belongs to another run. */
	setenv("MWCOMMS_REGISTRY", cfg->sock || cfg->embedded ? "none" : cfg->registry, 1);
}

/* The command's side.  With --dns, once its namespaces are made it says so on ready_w and waits on go_r
 * until the DNS forwarder listens in its namespace. */
static void child_exec(const struct run_cfg *cfg, const char *sock, char **argv, int ready_w, int go_r)
{
	int err;
	char c;

	if (contain_enter(cfg) < 0)
		_exit(EXIT_MWRUN);
	err = loopback_up();
	if (err) {
		fprintf(stderr, "mwrun: cannot bring up loopback: %s\n", strerror(-err));
		if (cfg->userns)
			userns_explain(err);
		_exit(EXIT_MWRUN);
	}
	err = dns_local_routes(cfg);
	if (err) {
		fprintf(stderr, "mwrun: --dns: cannot route the nameserver addresses to the forwarder: %s\n",
			strerror(-err));
		_exit(EXIT_MWRUN);
	}
	err = dns_apply(cfg);
	if (err) {
		if (cfg->userns)
			userns_explain(err);
		_exit(EXIT_MWRUN);
	}
	shim_env(cfg, sock);
	if (ready_w >= 0) {
		if (write(ready_w, "r", 1) != 1)
			_exit(EXIT_MWRUN);
		close(ready_w);
		if (read(go_r, &c, 1) != 1)
			_exit(EXIT_MWRUN);   /* mwrun gave up: it says why */
		close(go_r);
	}
	_exit(contain_run(cfg, sock, argv));
}

/* Start the DNS forwarder in the command's network namespace: it binds its listeners there, then execs
 * `mwrun --dns-forward` with the shim preloaded.  Returns its pid once it listens, or -errno (printed). */
static pid_t forwarder_start(const struct run_cfg *cfg, const char *sock, pid_t cmd)
{
	char path[64], exe[600], fd0[16];
	char *args[4 + MW_DNS_MAX];
	int st[2], nsfd, userfd = -1, err, i;
	pid_t pid, parent = getpid();
	ssize_t n;

	if (pipe2(st, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		err = -errno;
		close(st[0]);
		close(st[1]);
		return err;
	}
	if (pid == 0) {
		close(st[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		setpgid(0, 0);   /* the terminal's signals are for the command, not for its resolver */
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)cmd);
		nsfd = open(path, O_RDONLY | O_CLOEXEC);
		err = nsfd < 0 ? -errno : 0;
		if (!err && cfg->userns) {
			/*
			 * The command's network namespace belongs to its user namespace.  setns(CLONE_NEWNET)
			 * wants CAP_SYS_ADMIN both in the user namespace that owns the target and in our own: as
			 * a user who is not root we have the first (we run in the parent user namespace with
			 * the euid that created it, and such a process holds every capability in it) but not
			 * the second.  So join the command's user namespace first: that needs CAP_SYS_ADMIN in
			 * it (we have it, as its owner), a single thread and an unshared fs struct (a fresh
			 * fork).  We then hold every capability there, which also lets us bind port 53 in the
			 * command's namespace; the exec below gives them up, as the command's own does.  The
			 * ns files are opened before the switch, while we are still their owner outside.
			 */
			snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)cmd);
			userfd = open(path, O_RDONLY | O_CLOEXEC);
			if (userfd < 0 || setns(userfd, CLONE_NEWUSER) < 0)
				err = -errno;
			/* new credentials: be sure the parent-death signal still holds, then check again */
			if (!err)
				prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (!err && getppid() != parent)
				_exit(1);
		}
		if (!err && setns(nsfd, CLONE_NEWNET) < 0)
			err = -errno;
		if (!err)
			err = dnsfwd_listen(cfg, MW_DNSFWD_FD0);
		if (!err) {
			shim_env(cfg, sock);
#if defined(__SANITIZE_ADDRESS__)
			/* an ASan build (make SAN=1) of mwrun, exec'd with the shim preloaded ahead of libasan */
			{
				const char *ao = getenv("ASAN_OPTIONS");
				char opts[1024];

				snprintf(opts, sizeof(opts), "%s%sverify_asan_link_order=0", ao ? ao : "",
					 ao && ao[0] ? ":" : "");
				setenv("ASAN_OPTIONS", opts, 1);
			}
#endif
			snprintf(exe, sizeof(exe), "%s/mwrun", cfg->bindir);
			snprintf(fd0, sizeof(fd0), "%d", MW_DNSFWD_FD0);
			args[0] = "mwrun";
			args[1] = "--dns-forward";
			args[2] = fd0;
			for (i = 0; i < cfg->ndns; i++)
				args[3 + i] = (char *)cfg->dns[i];
			args[3 + i] = NULL;
			execv(exe, args);
			err = -errno;
		}
		if (write(st[1], &err, sizeof(err)) < 0)
			_exit(1);
		_exit(1);
	}
	close(st[1]);
	/* EOF: the exec happened (the pipe is close-on-exec), so the listeners are bound */
	while ((n = read(st[0], &err, sizeof(err))) < 0 && errno == EINTR)
		;
	close(st[0]);
	if (n == 0)
		return pid;
	if (n != sizeof(err) || err >= 0)
		err = -EIO;
	waitpid(pid, NULL, 0);
	fprintf(stderr, "mwrun: --dns: cannot start the DNS forwarder in the command's namespace: %s\n",
		strerror(-err));
	return err;
}

/* What the command line asked for beyond struct run_cfg. */
struct run_opts {
	const char *dns, *dns_from;
	bool no_dns, reg_given;
};

/* One option into cfg/o: 0, 1 for --help (done), or -1 (said why). */
static int option(int c, struct run_cfg *cfg, struct run_opts *o)
{
	char *end;
	unsigned long v;

	switch (c) {
	case 'r':
		if (optarg[0] != '/') {
			fprintf(stderr, "mwrun: --registry must be an absolute path\n");
			return -1;
		}
		cfg->registry = optarg;
		o->reg_given = true;
		return 0;
	case 's':
		cfg->sock = optarg;
		return 0;
	case 'E':
		cfg->embedded = true;
		return 0;
	case 'p':
		cfg->report = true;
		return 0;
	case 'D':
		o->dns = optarg;
		return 0;
	case 'N':
		o->no_dns = true;
		return 0;
	case 'U':
		cfg->userns = true;
		return 0;
	case 'A':
		if (optarg[0] != '/' || cfg->nallow_unix == MW_ALLOW_UNIX_MAX) {
			fprintf(stderr, "mwrun: --allow-unix takes an absolute path, at most %d times\n",
				MW_ALLOW_UNIX_MAX);
			return -1;
		}
		cfg->allow_unix[cfg->nallow_unix++] = optarg;
		return 0;
	case 'G':
		cfg->deny_unix_dgram = true;
		return 0;
	case 'P':
		cfg->no_new_privs = true;
		return 0;
	case 'M':
		v = strtoul(optarg, &end, 10);
		if (*end || end == optarg || v == 0 || v > 4294967295UL - 65536) {
			fprintf(stderr, "mwrun: --map-root-to takes a uid above 0 (ids UID..UID+65535 are used)\n");
			return -1;
		}
		cfg->root_map = (uint32_t)v;
		return 0;
	case 'v':
		cfg->verbose++;
		return 0;
	case 'h':
		usage(stdout);
		return 1;
	default:
		usage(stderr);
		return -1;
	}
}

/* The command line: the command's index in argv, 0 after --help, or -1 (said why). */
static int parse_options(int argc, char **argv, struct run_cfg *cfg, struct run_opts *o)
{
	static const struct option opts[] = {
		{ "registry", required_argument, NULL, 'r' }, { "sock", required_argument, NULL, 's' },
		{ "embedded", no_argument, NULL, 'E' },       { "report", no_argument, NULL, 'p' },
		{ "verbose", no_argument, NULL, 'v' },        { "help", no_argument, NULL, 'h' },
		{ "dns", required_argument, NULL, 'D' },      { "no-dns", no_argument, NULL, 'N' },
		{ "userns", no_argument, NULL, 'U' },         { "allow-unix", required_argument, NULL, 'A' },
		{ "deny-unix-dgram", no_argument, NULL, 'G' }, { "no-new-privs", no_argument, NULL, 'P' },
		{ "map-root-to", required_argument, NULL, 'M' },
		{ NULL, 0, NULL, 0 },
	};
	int c, r;

	while ((c = getopt_long(argc, argv, "+r:s:vh", opts, NULL)) != -1) {
		r = option(c, cfg, o);
		if (r)
			return r > 0 ? 0 : -1;
	}
	if (optind >= argc) {
		usage(stderr);
		return -1;
	}
	return optind;
}

/* The nameservers the command resolves through: --dns, $MWCOMMS_DNS, or by default the host's own, reached
 * through mwinsd (glibc's resolver makes its sockets inside libc, out of the shim's reach: it needs the
 * forwarder).  0 or -1 (said why). */
static int choose_dns(struct run_cfg *cfg, struct run_opts *o, char *host_dns, size_t cap)
{
	if (!o->dns && getenv("MWCOMMS_DNS") && getenv("MWCOMMS_DNS")[0]) {
		o->dns = getenv("MWCOMMS_DNS");
		o->dns_from = "$MWCOMMS_DNS";
	}
	if (!o->dns && !o->no_dns && dns_host_default(host_dns, cap) == 0) {
		o->dns = host_dns;
		o->dns_from = "/etc/resolv.conf";
	}
	if (o->no_dns)
		o->dns = NULL;
	return o->dns && dns_parse(cfg, o->dns, o->dns_from) < 0 ? -1 : 0;
}

/* Where mwrun lives, and the mode and registry a user without root gets.  0 or -1 (said why). */
static int choose_mode(struct run_cfg *cfg, const struct run_opts *o, char *own_reg, size_t cap)
{
	if (run_locate(cfg) < 0) {
		fprintf(stderr, "mwrun: cannot find where mwrun lives\n");
		return -1;
	}
	/* Without root there is no other way to make the namespaces, and /run/mwcomms is not ours to write. */
	if (geteuid() != 0) {
		cfg->userns = true;
		if (!o->reg_given && !cfg->sock) {
			if (userns_registry_default(own_reg, cap, cfg->verbose) < 0)
				return -1;
			cfg->registry = own_reg;
			cfg->own_registry = true;
		}
	}
	if (cfg->root_map && cfg->userns) {
		fprintf(stderr, "mwrun: --map-root-to needs root, without --userns (which maps only your own ids)\n");
		return -1;
	}
	return 0;
}

/* The INS the command is carried to: the one -s names, a live one in the registry, or one started here
 * (*ins_pid).  Its socket into sock.  0 or -1 (said why). */
static int choose_ins(struct run_cfg *cfg, char *sock, size_t cap, pid_t *ins_pid)
{
	int err;

	if (cfg->sock) {
		snprintf(sock, cap, "%s", cfg->sock);
		err = ins_probe(sock);
		if (err)
			fprintf(stderr, "mwrun: the INS at %s does not answer (%s): the command runs with no network\n",
				sock, strerror(-err));
		return 0;
	}
	if (!cfg->embedded && !cfg->report && ins_find_live(cfg, sock, cap) == 0)
		return 0;
	if (ins_start_embedded(cfg, ins_pid, sock, cap)) {
		fprintf(stderr, "mwrun: no INS is running in %s and none could be started; "
				"not running the command without one\n", cfg->registry);
		return -1;
	}
	cfg->embedded = true;
	/* mwinsd opens its registry root to 0755 for the shims of other users; this one is ours only.  (The
	 * rendezvous socket in it is 0666: the directory is what keeps other users out.) */
	if (cfg->own_registry)
		userns_registry_seal(cfg->registry);
	return 0;
}

/* Once the child's namespaces are ready (it says so on ready), start the DNS forwarder in them and let the
 * child go on (go).  Returns the forwarder's pid, or -1. */
static pid_t forwarder_after_ready(struct run_cfg *cfg, const char *sock, int ready, int go)
{
	pid_t fwd = -1;
	ssize_t n;
	char ch;

	while ((n = read(ready, &ch, 1)) < 0 && errno == EINTR)
		;
	close(ready);
	/* n == 0: the child failed before its namespaces were ready, and said why */
	if (n == 1)
		fwd = forwarder_start(cfg, sock, child);
	if (n == 1 && fwd > 0 && write(go, "g", 1) != 1) {
		kill(fwd, SIGKILL);
		waitpid(fwd, NULL, 0);
		fwd = -1;
	}
	close(go);   /* without "g", the child exits with EXIT_MWRUN */
	return fwd;
}

/* Run the command contained (contain.c), with the forwarder beside it if it has nameservers; its status. */
static int run_command(struct run_cfg *cfg, const char *sock, char **cmd)
{
	struct sigaction sa = { .sa_handler = forward };
	int ready[2] = { -1, -1 }, go[2] = { -1, -1 }, status;
	pid_t fwd = -1;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	if (cfg->ndns && (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0)) {
		fprintf(stderr, "mwrun: pipe: %s\n", strerror(errno));
		return -1;
	}
	child = fork();
	if (child < 0) {
		fprintf(stderr, "mwrun: fork: %s\n", strerror(errno));
		return -1;
	}
	if (child == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		if (cfg->ndns) {
			close(ready[0]);
			close(go[1]);
		}
		child_exec(cfg, sock, cmd, cfg->ndns ? ready[1] : -1, cfg->ndns ? go[0] : -1);
	}
	if (cfg->ndns) {
		close(ready[1]);
		close(go[0]);
		fwd = forwarder_after_ready(cfg, sock, ready[0], go[1]);
	}
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	if (fwd > 0) {
		kill(fwd, SIGTERM);
		while (waitpid(fwd, NULL, 0) < 0 && errno == EINTR)
			;
	}
	return status;
}

int main(int argc, char **argv)
{
	struct run_cfg cfg = { .registry = mw_registry_root() };
	const char *env_reg = getenv("MWCOMMS_REGISTRY");
	struct run_opts o = { .dns_from = "--dns", .reg_given = env_reg && env_reg[0] == '/' }; /* as mw_registry_root */
	char host_dns[1024], own_reg[256], sock[512];
	pid_t ins_pid = -1;
	int cmd, status;

	if (argc >= 2 && strcmp(argv[1], "--dns-forward") == 0)
		return dnsfwd_main(argc, argv);
	cmd = parse_options(argc, argv, &cfg, &o);
	if (cmd <= 0)
		return cmd == 0 ? 0 : EXIT_MWRUN;
	if (choose_dns(&cfg, &o, host_dns, sizeof(host_dns)) < 0 ||
	    choose_mode(&cfg, &o, own_reg, sizeof(own_reg)) < 0 ||
	    choose_ins(&cfg, sock, sizeof(sock), &ins_pid) < 0)
		return EXIT_MWRUN;
	status = run_command(&cfg, sock, argv + cmd);
	if (ins_pid > 0)
		ins_stop_embedded(ins_pid);
	if (status < 0)
		return EXIT_MWRUN;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
