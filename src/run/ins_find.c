/* ins_find.c: finding a live INS in the registry, or starting an embedded one. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mwcomms/proto.h"
#include "run.h"

int ins_read_line(const char *dir, const char *name, char *buf, size_t len)
{
	char path[1024];
	FILE *f;
	int err = 0;

	buf[0] = 0;
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	f = fopen(path, "re");
	if (!f)
		return -errno;
	if (!fgets(buf, (int)len, f))
		err = -EIO;
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	return err;
}

int ins_each(const char *registry, int (*fn)(const char *dir, const char *id, void *arg), void *arg)
{
	char dirpath[600];
	struct dirent *de;
	DIR *d;
	int ret = 0;

	snprintf(dirpath, sizeof(dirpath), "%s/ins", registry);
	d = opendir(dirpath);
	if (!d)
		return 0;
	while (!ret && (de = readdir(d))) {
		char dir[1200];

		if (de->d_name[0] == '.')
			continue;
		snprintf(dir, sizeof(dir), "%s/%s", dirpath, de->d_name);
		ret = fn(dir, de->d_name, arg);
	}
	closedir(d);
	return ret;
}

int ins_probe(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, err = 0;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		err = -errno;
	close(fd);
	return err;
}

struct live {
	const struct run_cfg *cfg;
	char *sock;
	size_t len;
};

/* 1 when the instance in dir is live (its pid exists, its heartbeat is fresh, its socket answers), with its
 * socket stored; else 0, to look on. */
static int live_one(const char *dir, const char *id, void *arg)
{
	struct live *l = arg;
	char pidbuf[32], hb[1300], ver[16] = "";
	struct stat st;
	long pid;

	if (ins_read_line(dir, "pid", pidbuf, sizeof(pidbuf)) || (pid = strtol(pidbuf, NULL, 10)) <= 0 ||
	    (kill((pid_t)pid, 0) < 0 && errno == ESRCH))
		return 0;
	/* Two missed heartbeats and an instance counts as dead, whatever its socket says. */
	snprintf(hb, sizeof(hb), "%s/heartbeat", dir);
	if (stat(hb, &st) < 0 || time(NULL) - st.st_mtime > 2)
		return 0;
	if (ins_read_line(dir, "version", ver, sizeof(ver)) || strtol(ver, NULL, 10) != MW_PROTO_VERSION) {
		fprintf(stderr, "mwrun: passing over INS %s: it speaks protocol version %s, this mwrun %d (they "
				"must come from one build)\n", id, ver[0] ? ver : "?", MW_PROTO_VERSION);
		return 0;
	}
	if (ins_read_line(dir, "sock", l->sock, l->len) || ins_probe(l->sock) < 0)
		return 0;
	if (l->cfg->verbose)
		fprintf(stderr, "mwrun: using INS %s (%s)\n", id, l->sock);
	return 1;
}

int ins_find_live(const struct run_cfg *cfg, char *sock, size_t len)
{
	struct live l = { cfg, sock, len };

	return ins_each(cfg->registry, live_one, &l) ? 0 : -ENOENT;
}

int ins_start_embedded(const struct run_cfg *cfg, pid_t *pidp, char *sock, size_t len)
{
	char exe[sizeof(cfg->mwinsd)], id[64], fdarg[16], line[16];
	struct pollfd pfd;
	int p[2], n;
	pid_t pid, parent;

	memcpy(exe, cfg->mwinsd, sizeof(exe));
	snprintf(id, sizeof(id), "embedded-%d", (int)getpid());
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	parent = getpid();
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		char *argv[12];
		int i = 0;

		/* An embedded INS serves this run only: if mwrun is killed, it goes too (SIGTERM: it cleans up). */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
			_exit(127);
		/* fd 3 is the ready pipe, without close-on-exec. */
		if (dup2(p[1], 3) < 0)
			_exit(127);
		snprintf(fdarg, sizeof(fdarg), "%d", 3);
		argv[i++] = exe;
		argv[i++] = "-r";
		argv[i++] = (char *)cfg->registry;
		argv[i++] = "-i";
		argv[i++] = id;
		argv[i++] = "--ready-fd";
		argv[i++] = fdarg;
		if (cfg->report)
			argv[i++] = "--report";
		if (cfg->verbose)
			argv[i++] = "-v";
		argv[i] = NULL;
		setpgid(0, 0); /* the program's Ctrl-C is for the program; mwrun stops us when it ends */
		execv(exe, argv);
		fprintf(stderr, "mwrun: cannot run %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	close(p[1]);
	pfd.fd = p[0];
	pfd.events = POLLIN;
	n = poll(&pfd, 1, 10000);
	if (n <= 0 || read(p[0], line, sizeof(line)) <= 0) {
		close(p[0]);
		fprintf(stderr, "mwrun: the embedded mwinsd did not start%s\n", n == 0 ? " in 10 s" : "");
		ins_stop_embedded(pid);
		return -EIO;
	}
	close(p[0]);
	snprintf(sock, len, "%s/ins/%s/ins.sock", cfg->registry, id);
	*pidp = pid;
	if (cfg->verbose)
		fprintf(stderr, "mwrun: started embedded INS %s (pid %d)\n", id, (int)pid);
	return 0;
}

void ins_stop_embedded(pid_t pid)
{
	int status;

	kill(pid, SIGTERM);
	for (int i = 0; i < 500; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}
