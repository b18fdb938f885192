/*
 * pipe.c: the pipes the relay splices through, and what a relay direction holds (struct ins_dir).
 *
 * A pipe is borrowed from a small pool only while bytes are in it, so an idle connection still holds no
 * buffer and no fds.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "ins.h"

#define PIPE_POOL_MAX 32

static struct ins_pipe *pipe_pool[PIPE_POOL_MAX];
static unsigned pipe_npool;
static unsigned pipes_open; /* pooled or lent: at most RELAY_PIPES_MAX */

struct ins_pipe *pipe_get(void)
{
	struct ins_pipe *p;
	int fds[2];

	if (pipe_npool)
		return pipe_pool[--pipe_npool];
	if (pipes_open == RELAY_PIPES_MAX || pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
		return NULL;
	p = malloc(sizeof(*p));
	if (!p) {
		close(fds[0]);
		close(fds[1]);
		return NULL;
	}
	pipes_open++;
	p->r = fds[0];
	p->w = fds[1];
	/* A chunk's worth of slots: a pipe holds 16 buffers by default, and a splice takes one per page or per
	 * skb fragment.  Refused (a user over its pipe quota): the default still works, in smaller steps. */
	fcntl(p->w, F_SETPIPE_SZ, RELAY_CHUNK);
	return p;
}

void pipe_put(struct ins_dir *d)
{
	struct ins_pipe *p = d->pipe;

	if (!p)
		return;
	d->pipe = NULL;
	if (!d->piped && pipe_npool < PIPE_POOL_MAX) {
		pipe_pool[pipe_npool++] = p;
		return;
	}
	d->piped = 0;
	close(p->r);
	close(p->w);
	free(p);
	pipes_open--;
}

void dir_free(struct ins_dir *d)
{
	free(d->buf);
	d->buf = NULL;
	d->off = d->len = 0;
	pipe_put(d);
}
