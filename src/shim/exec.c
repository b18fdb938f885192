/*
 * exec.c: keeping the channel across exec.
 *
 * A program may exec with an environment it built itself (nginx keeps only TZ; daemons often clear it), which
 * would drop LD_PRELOAD: the new image would then run without the shim, with only the loopback of its
 * namespace (it fails closed, but loses the network).  So every exec and spawn goes out with LD_PRELOAD naming
 * this shim first and with the MWCOMMS_* settings, whatever envp the program passed.  The new image's shim
 * then asks mwinsd which of the descriptors it was born with are carriers.
 *
 * Exec may be called in a vfork child, so nothing here allocates or locks: the new environment is built on
 * the stack.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

extern char **environ;

static char shim_path[512];

static int (*real_execve)(const char *, char *const[], char *const[]);
static int (*real_execvpe)(const char *, char *const[], char *const[]);
static int (*real_fexecve)(int, char *const[], char *const[]);
static int (*real_posix_spawn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
			       const posix_spawnattr_t *, char *const[], char *const[]);
static int (*real_posix_spawnp)(pid_t *, const char *, const posix_spawn_file_actions_t *,
				const posix_spawnattr_t *, char *const[], char *const[]);

static void exec_resolve(void)
{
	*(void **)&real_execve = dlsym(RTLD_NEXT, "execve");
	*(void **)&real_execvpe = dlsym(RTLD_NEXT, "execvpe");
	*(void **)&real_fexecve = dlsym(RTLD_NEXT, "fexecve");
	*(void **)&real_posix_spawn = dlsym(RTLD_NEXT, "posix_spawn");
	*(void **)&real_posix_spawnp = dlsym(RTLD_NEXT, "posix_spawnp");
}

/* Resolve what the wrappers call, if our constructor has not run yet (a library's constructor may exec). */
static void exec_ready(void)
{
	if (!real_execve)
		exec_resolve();
	real_init();
}

/*
 * Before main: where we are, and which inherited fds are carriers.  Any unix stream or seqpacket socket we
 * were born with may be one (kept across exec, or moved to another number by posix_spawn's file actions), so
 * each is put to mwinsd; other fds cost nothing.
 */
__attribute__((constructor(300))) static void exec_ctor(void)
{
	Dl_info info;
	struct dirent *de;
	DIR *d;

	exec_resolve();
	if (dladdr((void *)exec_ctor, &info) && info.dli_fname && strlen(info.dli_fname) < sizeof(shim_path))
		strcpy(shim_path, info.dli_fname);
	if (!chan_env_sock()[0])
		return;
	d = opendir("/proc/self/fd");
	if (!d)
		return;
	while ((de = readdir(d))) {
		char *end;
		long fd = strtol(de->d_name, &end, 10);

		if (*end || end == de->d_name || fd == dirfd(d) || fd < 0 || fd >= 1 << 20)
			continue;
		ident_fd((int)fd);
	}
	closedir(d);
}

static bool env_is(const char *e, const char *name)
{
	size_t n = strlen(name);

	return !strncmp(e, name, n) && e[n] == '=';
}

#define ENV_EXTRA 3

/*
 * Fill out (room for n + ENV_EXTRA + 1 pointers) with envp plus our settings; the strings live in bufs.
 * LD_PRELOAD keeps what the program had, after the shim.
 */
struct env_bufs {
	char preload[4096];
	char sock[600];
	char registry[600];
};

static char *const *env_fix(char *const *envp, char **out, struct env_bufs *b)
{
	const char *old_preload = NULL;
	size_t k = 0;

	if (!envp)
		envp = environ;
	for (char *const *e = envp; e && *e; e++) {
		if (env_is(*e, "LD_PRELOAD")) {
			old_preload = *e + strlen("LD_PRELOAD=");
			continue;
		}
		if (env_is(*e, "MWCOMMS_SOCK") || env_is(*e, "MWCOMMS_REGISTRY"))
			continue;
		out[k++] = *e;
	}
	if (shim_path[0]) {
		if (old_preload && strstr(old_preload, shim_path))
			snprintf(b->preload, sizeof(b->preload), "LD_PRELOAD=%s", old_preload);
		else
			snprintf(b->preload, sizeof(b->preload), "LD_PRELOAD=%s%s%s", shim_path,
				 old_preload && *old_preload ? ":" : "", old_preload ? old_preload : "");
		out[k++] = b->preload;
	}
	if (chan_env_sock()[0]) {
		snprintf(b->sock, sizeof(b->sock), "MWCOMMS_SOCK=%s", chan_env_sock());
		out[k++] = b->sock;
	}
	snprintf(b->registry, sizeof(b->registry), "MWCOMMS_REGISTRY=%s",
		 chan_env_registry()[0] ? chan_env_registry() : "none");
	out[k++] = b->registry;
	out[k] = NULL;
	return out;
}

static size_t env_count(char *const *envp)
{
	size_t n = 0;

	if (!envp)
		envp = environ;
	while (envp && envp[n])
		n++;
	return n;
}

SHIM_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	char *out[env_count(envp) + ENV_EXTRA + 1];
	struct env_bufs b;

	exec_ready();
	return real_execve(path, argv, env_fix(envp, out, &b));
}

SHIM_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	char *out[env_count(envp) + ENV_EXTRA + 1];
	struct env_bufs b;

	exec_ready();
	return real_execvpe(file, argv, env_fix(envp, out, &b));
}

SHIM_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	char *out[env_count(envp) + ENV_EXTRA + 1];
	struct env_bufs b;

	exec_ready();
	return real_fexecve(fd, argv, env_fix(envp, out, &b));
}

SHIM_EXPORT int execv(const char *path, char *const argv[])
{
	return execve(path, argv, environ);
}

SHIM_EXPORT int execvp(const char *file, char *const argv[])
{
	return execvpe(file, argv, environ);
}

/* The execl family: the arguments onto the stack, then the calls above. */
#define COLLECT_ARGS(arg0, ap, argv)                                                                      \
	size_t argc_ = 1;                                                                                 \
	va_list cp_;                                                                                      \
	va_copy(cp_, ap);                                                                                 \
	while (va_arg(cp_, char *))                                                                       \
		argc_++;                                                                                  \
	va_end(cp_);                                                                                      \
	char *argv[argc_ + 1];                                                                            \
	argv[0] = (char *)(arg0);                                                                         \
	for (size_t i_ = 1; i_ <= argc_; i_++)                                                            \
		argv[i_] = va_arg(ap, char *)

SHIM_EXPORT int execl(const char *path, const char *arg, ...)
{
	va_list ap;

	va_start(ap, arg);
	COLLECT_ARGS(arg, ap, argv);
	va_end(ap);
	return execve(path, argv, environ);
}

SHIM_EXPORT int execlp(const char *file, const char *arg, ...)
{
	va_list ap;

	va_start(ap, arg);
	COLLECT_ARGS(arg, ap, argv);
	va_end(ap);
	return execvpe(file, argv, environ);
}

SHIM_EXPORT int execle(const char *path, const char *arg, ...)
{
	char *const *envp;
	va_list ap;

	va_start(ap, arg);
	COLLECT_ARGS(arg, ap, argv);
	envp = va_arg(ap, char *const *);
	va_end(ap);
	return execve(path, argv, envp);
}

SHIM_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
			    const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	char *out[env_count(envp) + ENV_EXTRA + 1];
	struct env_bufs b;

	exec_ready();
	return real_posix_spawn(pid, path, fa, attr, argv, env_fix(envp, out, &b));
}

SHIM_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
			     const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	char *out[env_count(envp) + ENV_EXTRA + 1];
	struct env_bufs b;

	exec_ready();
	return real_posix_spawnp(pid, file, fa, attr, argv, env_fix(envp, out, &b));
}
