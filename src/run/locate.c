/*
 * locate.c: where mwrun finds what it runs beside the command: the shim, mwinsd, and itself.
 *
 * Two layouts.  In the build tree (build/, build-san/) all four files sit in one directory, beside mwrun.
 * Installed (make install, the Debian package), mwrun is in BINDIR, mwinsd in SBINDIR and the shim in
 * LIBDIR/mwcomms: the Makefile passes those directories as paths relative to BINDIR (MW_REL_SBINDIR,
 * MW_REL_PKGLIBDIR), so an installed tree still works when it is moved as a whole (a DESTDIR, a chroot).
 * Only /proc/self/exe is trusted for the starting point, never $PATH or argv[0]: mwrun runs as root and
 * preloads what it finds into the command.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run.h"

#ifndef MW_REL_SBINDIR
#define MW_REL_SBINDIR "../sbin"
#endif
#ifndef MW_REL_PKGLIBDIR
#define MW_REL_PKGLIBDIR "../lib/mwcomms"
#endif

/* dst = dir/rel/name, or dir/name when rel is NULL, with dir/rel resolved (no "..", no symlink: contain.c
 * compares these paths as strings when it makes them read-only).  A dir/rel that does not exist is left as it
 * is, for the error that names it later. */
static int path_set(char *dst, size_t cap, const char *dir, const char *rel, const char *name)
{
	char joined[PATH_MAX], real[PATH_MAX];
	int n;

	if (rel) {
		n = snprintf(joined, sizeof(joined), "%s/%s", dir, rel);
		if (n < 0 || (size_t)n >= sizeof(joined))
			return -ENAMETOOLONG;
		dir = realpath(joined, real) ? real : joined;
	}
	n = name ? snprintf(dst, cap, "%s/%s", dir, name) : snprintf(dst, cap, "%s", dir);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int run_locate(struct run_cfg *cfg)
{
	char exe[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int err;

	if (n <= 0)
		return n < 0 ? -errno : -EINVAL;
	exe[n] = 0;
	slash = strrchr(exe, '/');
	if (!slash)
		return -EINVAL;
	*slash = 0;
	if (strlen(exe) >= sizeof(cfg->bindir))
		return -ENAMETOOLONG;
	memcpy(cfg->bindir, exe, strlen(exe) + 1);

	/* The build tree: the shim beside mwrun decides it, and mwinsd is then beside it too. */
	err = path_set(cfg->shim, sizeof(cfg->shim), cfg->bindir, NULL, "libmwshim.so");
	if (!err && access(cfg->shim, F_OK) == 0) {
		memcpy(cfg->shimdir, cfg->bindir, sizeof(cfg->bindir));
		return path_set(cfg->mwinsd, sizeof(cfg->mwinsd), cfg->bindir, NULL, "mwinsd");
	}
	err = path_set(cfg->shimdir, sizeof(cfg->shimdir), cfg->bindir, MW_REL_PKGLIBDIR, NULL);
	if (!err)
		err = path_set(cfg->shim, sizeof(cfg->shim), cfg->bindir, MW_REL_PKGLIBDIR, "libmwshim.so");
	if (!err)
		err = path_set(cfg->mwinsd, sizeof(cfg->mwinsd), cfg->bindir, MW_REL_SBINDIR, "mwinsd");
	return err;
}
