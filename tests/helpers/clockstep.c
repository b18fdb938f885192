/*
 * clockstep.c: a preloaded library that steps a process's wall clock back an hour, as an administrator or an NTP
 * daemon may step a machine's clock, to show what the process measures with it.
 *
 *     CLOCKSTEP_AFTER_MS=N LD_PRELOAD=clockstep.so PROGRAM
 *
 * N milliseconds after the process's first clock_gettime, every CLOCK_REALTIME reading is an hour earlier.  Other
 * clocks are left alone: a program that measures with CLOCK_MONOTONIC sees nothing.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

static int (*real_clock_gettime)(clockid_t, struct timespec *);
static long long first_ms = -1, after_ms = -1;

static long long mono_ms(void)
{
	struct timespec m;

	real_clock_gettime(CLOCK_MONOTONIC, &m);
	return m.tv_sec * 1000LL + m.tv_nsec / 1000000;
}

int clock_gettime(clockid_t clk, struct timespec *ts)
{
	int r;

	if (!real_clock_gettime) {
		const char *a = getenv("CLOCKSTEP_AFTER_MS");

		*(void **)&real_clock_gettime = dlsym(RTLD_NEXT, "clock_gettime");
		after_ms = a ? atoll(a) : -1;
		first_ms = mono_ms();
	}
	r = real_clock_gettime(clk, ts);
	if (r == 0 && after_ms >= 0 && (clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE) &&
	    mono_ms() - first_ms >= after_ms)
		ts->tv_sec -= 3600;
	return r;
}
