/* file.c: the registry's one way of writing a value: a temporary file, then rename, so readers never see a
 * half-written value. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mwlib.h"

const char *mw_registry_root(void)
{
	const char *r = getenv("MWCOMMS_REGISTRY");

	return r && r[0] == '/' ? r : MW_REGISTRY_DEFAULT;
}

int mw_file_write_atomic(const char *dir, const char *name, const char *value, size_t len)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	int fd, err = 0;
	size_t off = 0;

	if (snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name) >= (int)sizeof(tmp) ||
	    snprintf(dst, sizeof(dst), "%s/%s", dir, name) >= (int)sizeof(dst))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	while (off < len) {
		ssize_t n = write(fd, value + off, len - off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto out;
		}
		off += (size_t)n;
	}
out:
	close(fd);
	if (!err && rename(tmp, dst) < 0)
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}
