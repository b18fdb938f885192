/*
 * wait.c: how the loop waits for events: a short spin before it sleeps, sized by how long sleeps turn out.
 *
 * Every message through mwinsd is a hop between processes, and on a virtual machine waking a sleeping CPU
 * costs tens of microseconds (the hypervisor delivers the interrupt; guests often run with halt polling off).
 * A connection's set-up and each request/response cross mwinsd several times, so those wake-ups, not the
 * work, set the connection rate and latency.  Right after it has worked, mwinsd is likely to be handed more
 * within microseconds (the other half of a round trip), so it polls epoll without sleeping for a while first,
 * like the kernel's own busy polling (SO_BUSY_POLL) and the guest haltpoll governor.
 *
 * The window adapts as haltpoll's does: a sleep that ended soon after the window would have ended it
 * doubles the window (up to --spin-us); a long sleep halves it, so a daemon that is only woken now and then
 * stops spinning altogether.  An idle daemon never spins: spinning only follows work.
 */
#include <errno.h>
#include <sched.h>
#include <time.h>

#include "ins.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint32_t window_us; /* the spin before the next sleep */

int wait_events(struct epoll_event *evs, int max, bool more_work)
{
	uint32_t cap = ins.cfg.spin_us;
	uint64_t t0, slept;
	int n;

	if (more_work)
		return epoll_wait(ins.epfd, evs, max, 0);
	if (window_us) {
		t0 = now_ns();
		do {
			n = epoll_wait(ins.epfd, evs, max, 0);
			if (n)
				return n;
			/* On a machine with fewer CPUs than busy processes the spin must not take the CPU from the
			 * programs whose messages it waits for: anything runnable here goes first. */
			sched_yield();
		} while (now_ns() - t0 < window_us * 1000ULL);
	}
	t0 = now_ns();
	n = epoll_wait(ins.epfd, evs, max, -1);
	slept = (now_ns() - t0) / 1000;
	if (slept <= 2ULL * cap)
		window_us = window_us ? (window_us * 2 < cap ? window_us * 2 : cap) : (cap < 4 ? cap : 4);
	else if (slept > 16ULL * cap)
		window_us /= 2;
	return n;
}
