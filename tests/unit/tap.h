/*
 * tap.h: the few lines of TAP the unit tests print.  ok(cond, fmt, ...) records one check; tap_done()
 * prints the plan and returns the exit status (1 if any check failed).  tests/test_unit.py reads the output.
 */
#ifndef MW_TAP_H
#define MW_TAP_H

#include <stdarg.h>
#include <stdio.h>

static int tap_n, tap_failed;

__attribute__((format(printf, 2, 3))) static int ok(int cond, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d - ", cond ? "" : "not ", ++tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (!cond)
		tap_failed++;
	return cond;
}

static int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif /* MW_TAP_H */
