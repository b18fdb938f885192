/*
 * sys.c: libc's syscall() function, interposed.  Programs that make system calls through syscall() rather
 * than libc's wrappers reach the same interposers as everyone else: libuv closes every descriptor with
 * syscall(SYS_close, fd), so a carrier's table entry would outlive its descriptor and the next descriptor
 * given that number would be taken for a carrier; Debian 12's libuv sends and receives UDP with
 * syscall(__NR_sendmmsg/__NR_recvmmsg), which would lose the datagrams' addresses.  A call made with the
 * raw instruction (a static or Go program) can't be seen here: the command's namespace bounds it.
 *
 * The shim's own raw calls must not come back here: they act on carriers behind the interposers' backs on
 * purpose.  The shim is built with -Dsyscall=mw_raw_syscall (Makefile), so every one of them calls
 * mw_raw_syscall, which goes straight to libc's syscall(); only the exported symbol is named "syscall".
 */
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

#define TAKE_ARGS(a, nr)                                                                                      \
	do {                                                                                                  \
		va_list ap_;                                                                                  \
		va_start(ap_, nr);                                                                            \
		for (int i_ = 0; i_ < 6; i_++)                                                                \
			(a)[i_] = va_arg(ap_, long);                                                          \
		va_end(ap_);                                                                                  \
	} while (0)

/* Like libc's, six arguments read whatever the caller passed: the kernel ignores those a call does not take. */
long mw_raw_syscall(long nr, ...)
{
	long a[6];

	TAKE_ARGS(a, nr);
	if (!real.libc_syscall)
		real_init();
	return real.libc_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

SHIM_EXPORT long shim_syscall(long nr, ...) __asm__("syscall");

long shim_syscall(long nr, ...)
{
	long a[6];

	TAKE_ARGS(a, nr);
	switch (nr) {
	case SYS_close:
		return close((int)a[0]);
	case SYS_close_range:
		return close_range((unsigned)a[0], (unsigned)a[1], (int)a[2]);
#ifdef SYS_dup2
	case SYS_dup2:
		return dup2((int)a[0], (int)a[1]);
#endif
	case SYS_dup3:
		return dup3((int)a[0], (int)a[1], (int)a[2]);
	case SYS_socket:
		return socket((int)a[0], (int)a[1], (int)a[2]);
	case SYS_connect:
		return connect((int)a[0], (const struct sockaddr *)a[1], (socklen_t)a[2]);
	case SYS_bind:
		return bind((int)a[0], (const struct sockaddr *)a[1], (socklen_t)a[2]);
	case SYS_listen:
		return listen((int)a[0], (int)a[1]);
#ifdef SYS_accept
	case SYS_accept:
		return accept((int)a[0], (struct sockaddr *)a[1], (socklen_t *)a[2]);
#endif
	case SYS_accept4:
		return accept4((int)a[0], (struct sockaddr *)a[1], (socklen_t *)a[2], (int)a[3]);
	case SYS_shutdown:
		return shutdown((int)a[0], (int)a[1]);
	case SYS_getsockname:
		return getsockname((int)a[0], (struct sockaddr *)a[1], (socklen_t *)a[2]);
	case SYS_getpeername:
		return getpeername((int)a[0], (struct sockaddr *)a[1], (socklen_t *)a[2]);
	case SYS_getsockopt:
		return getsockopt((int)a[0], (int)a[1], (int)a[2], (void *)a[3], (socklen_t *)a[4]);
	case SYS_setsockopt:
		return setsockopt((int)a[0], (int)a[1], (int)a[2], (const void *)a[3], (socklen_t)a[4]);
	case SYS_sendto:
		return sendto((int)a[0], (const void *)a[1], (size_t)a[2], (int)a[3], (const struct sockaddr *)a[4],
			      (socklen_t)a[5]);
	case SYS_recvfrom:
		return recvfrom((int)a[0], (void *)a[1], (size_t)a[2], (int)a[3], (struct sockaddr *)a[4],
				(socklen_t *)a[5]);
	case SYS_sendmsg:
		return sendmsg((int)a[0], (const struct msghdr *)a[1], (int)a[2]);
	case SYS_recvmsg:
		return recvmsg((int)a[0], (struct msghdr *)a[1], (int)a[2]);
	case SYS_sendmmsg:
		return sendmmsg((int)a[0], (struct mmsghdr *)a[1], (unsigned)a[2], (int)a[3]);
	case SYS_recvmmsg:
		return recvmmsg((int)a[0], (struct mmsghdr *)a[1], (unsigned)a[2], (int)a[3], (struct timespec *)a[4]);
	default:
		return mw_raw_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	}
}
