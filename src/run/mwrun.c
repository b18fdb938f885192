/*
 * mwrun.c: run a command with no network of its own.  The command gets a fresh network namespace with only
 * loopback, and the shim preloaded, so its TCP sockets reach the network through an INS and nothing else.
 * If the namespace can't be made, the command does not run: isolation fails closed.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
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
		   "  -r, --registry DIR  registry root (default $MWCOMMS_REGISTRY or %s)\n"
		   "  -s, --sock PATH     attach to the INS at this rendezvous socket\n"
		   "      --embedded      always start an embedded mwinsd for this command\n"
		   "      --report        print what the embedded mwinsd saw when the command ends\n"
		   "      --dns ADDR[,ADDR...]\n"
		   "                      give CMD a resolv.conf naming these nameservers (at most %d IPv4/IPv6\n"
		   "                      addresses, default $MWCOMMS_DNS), bind-mounted over /etc/resolv.conf in\n"
		   "                      a private mount namespace; mwinsd must be able to reach them.  Without it\n"
		   "                      CMD sees the host's resolv.conf, whose nameservers it reaches through\n"
		   "                      mwinsd, from the INS's namespace\n"
		   "  -v, --verbose       say which INS is used\n"
		   "Exit status: CMD's; 128+N if it died of signal N; %d if mwrun itself failed.\n",
		MW_REGISTRY_DEFAULT, MW_DNS_MAX, EXIT_MWRUN);
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

static void child_exec(const struct run_cfg *cfg, const char *sock, char **argv)
{
	char shim[600], preload[PATH_MAX + 600];
	const char *old = getenv("LD_PRELOAD");
	int err;

	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "mwrun: cannot give the command a network namespace of its own: %s%s\n",
			strerror(errno), errno == EPERM ? " (mwrun needs CAP_SYS_ADMIN: run it as root)" : "");
		_exit(EXIT_MWRUN);
	}
	err = loopback_up();
	if (err) {
		fprintf(stderr, "mwrun: cannot bring up loopback: %s\n", strerror(-err));
		_exit(EXIT_MWRUN);
	}
	if (dns_apply(cfg) < 0)
		_exit(EXIT_MWRUN);
	snprintf(shim, sizeof(shim), "%s/libmwshim.so", cfg->bindir);
	if (access(shim, R_OK) < 0) {
		fprintf(stderr, "mwrun: %s: %s\n", shim, strerror(errno));
		_exit(EXIT_MWRUN);
	}
	snprintf(preload, sizeof(preload), "%s%s%s", shim, old && old[0] ? ":" : "", old ? old : "");
	setenv("LD_PRELOAD", preload, 1);
	setenv("MWCOMMS_SOCK", sock, 1);
	setenv("MWCOMMS_REGISTRY", cfg->registry, 1);
	execvp(argv[0], argv);
	fprintf(stderr, "mwrun: %s: %s\n", argv[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

static int bindir_init(struct run_cfg *cfg)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n <= 0)
		return -errno;
	exe[n] = 0;
	slash = strrchr(exe, '/');
	if (!slash)
		return -EINVAL;
	*slash = 0;
	if (strlen(exe) >= sizeof(cfg->bindir))
		return -ENAMETOOLONG;
	memcpy(cfg->bindir, exe, strlen(exe) + 1);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "registry", required_argument, NULL, 'r' }, { "sock", required_argument, NULL, 's' },
		{ "embedded", no_argument, NULL, 'E' },       { "report", no_argument, NULL, 'p' },
		{ "verbose", no_argument, NULL, 'v' },        { "help", no_argument, NULL, 'h' },
		{ "dns", required_argument, NULL, 'D' },      { NULL, 0, NULL, 0 },
	};
	struct run_cfg cfg = { .registry = mw_registry_root() };
	const char *dns = NULL, *dns_from = "--dns";
	char sock[512];
	pid_t ins_pid = -1;
	int c, status, err;
	struct sigaction sa = { .sa_handler = forward };

	while ((c = getopt_long(argc, argv, "+r:s:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (optarg[0] != '/') {
				fprintf(stderr, "mwrun: --registry must be an absolute path\n");
				return EXIT_MWRUN;
			}
			cfg.registry = optarg;
			break;
		case 's':
			cfg.sock = optarg;
			break;
		case 'E':
			cfg.embedded = true;
			break;
		case 'p':
			cfg.report = true;
			break;
		case 'D':
			dns = optarg;
			break;
		case 'v':
			cfg.verbose++;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_MWRUN;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_MWRUN;
	}
	if (!dns && getenv("MWCOMMS_DNS") && getenv("MWCOMMS_DNS")[0]) {
		dns = getenv("MWCOMMS_DNS");
		dns_from = "$MWCOMMS_DNS";
	}
	if (dns && dns_parse(&cfg, dns, dns_from) < 0)
		return EXIT_MWRUN;
	if (bindir_init(&cfg) < 0) {
		fprintf(stderr, "mwrun: cannot find where mwrun lives\n");
		return EXIT_MWRUN;
	}
	if (cfg.sock) {
		snprintf(sock, sizeof(sock), "%s", cfg.sock);
		err = ins_probe(sock);
		if (err)
			fprintf(stderr, "mwrun: the INS at %s does not answer (%s): the command runs with no network\n",
				sock, strerror(-err));
	} else if (cfg.embedded || cfg.report || ins_find_live(&cfg, sock, sizeof(sock)) < 0) {
		err = ins_start_embedded(&cfg, &ins_pid, sock, sizeof(sock));
		if (err) {
			fprintf(stderr, "mwrun: no INS is running in %s and none could be started; "
					"not running the command without one\n", cfg.registry);
			return EXIT_MWRUN;
		}
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	child = fork();
	if (child < 0) {
		fprintf(stderr, "mwrun: fork: %s\n", strerror(errno));
		if (ins_pid > 0)
			ins_stop_embedded(ins_pid);
		return EXIT_MWRUN;
	}
	if (child == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		child_exec(&cfg, sock, argv + optind);
	}
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	if (ins_pid > 0)
		ins_stop_embedded(ins_pid);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
