/*
 * base.c: what every part of mwinsd uses and nothing else: the daemon's state, the clocks, the log, and
 * registering a descriptor with the one epoll loop (main.c runs it).  It calls into no other file, so that no
 * file needs main.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <time.h>

#include "ins.h"

struct ins ins;

uint64_t ins_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t ins_wall_ms(uint64_t now_ms)
{
	struct timespec w, m;

	clock_gettime(CLOCK_REALTIME, &w);
	clock_gettime(CLOCK_MONOTONIC, &m);
	return now_ms + (uint64_t)((int64_t)(w.tv_sec - m.tv_sec) * 1000 + (w.tv_nsec - m.tv_nsec) / 1000000);
}

void ins_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (level > ins.cfg.verbose)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "mwinsd[%s]: ", ins.cfg.id);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

int ins_ev_add(struct ins_ev *ev, int fd, uint32_t events, void (*fn)(struct ins_ev *, uint32_t))
{
	struct epoll_event e = { .events = events, .data.ptr = ev };

	ev->fd = fd;
	ev->fn = fn;
	return epoll_ctl(ins.epfd, EPOLL_CTL_ADD, fd, &e) < 0 ? -errno : 0;
}
