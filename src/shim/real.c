/* real.c: the libc functions behind our interposers, found with dlsym(RTLD_NEXT). */
#include <dlfcn.h>
#include <sys/syscall.h>

#include "shim.h"

struct shim_real real;

/* The shim's own calls that mwrun's filter would trap (proto.h, MW_FD_UNTRAPPED): the same calls, with the
 * fd marked.  None of them is a cancellation point, so nothing of libc's wrapper is missed.  (accept is one,
 * and stays libc's: a dynamic program's accept on a socket that is not a carrier costs it a trapped call.) */
static int untrapped_getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	return (int)real.libc_syscall(SYS_getsockopt, MW_FD_UNTRAPPED(fd), level, name, val, len);
}

static int untrapped_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	return (int)real.libc_syscall(SYS_setsockopt, MW_FD_UNTRAPPED(fd), level, name, val, (long)len);
}

static int untrapped_getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
	return (int)real.libc_syscall(SYS_getsockname, MW_FD_UNTRAPPED(fd), addr, len);
}

static int untrapped_getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
	return (int)real.libc_syscall(SYS_getpeername, MW_FD_UNTRAPPED(fd), addr, len);
}

static int untrapped_bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	return (int)real.libc_syscall(SYS_bind, MW_FD_UNTRAPPED(fd), addr, (long)len);
}

static int untrapped_listen(int fd, int backlog)
{
	return (int)real.libc_syscall(SYS_listen, MW_FD_UNTRAPPED(fd), backlog);
}

static int untrapped_shutdown(int fd, int how)
{
	return (int)real.libc_syscall(SYS_shutdown, MW_FD_UNTRAPPED(fd), how);
}

#define RESOLVE(name)                                                                                         \
	do {                                                                                                  \
		if (!real.name)                                                                               \
			*(void **)&real.name = dlsym(RTLD_NEXT, #name);                                       \
	} while (0)

void real_init(void)
{
	/* Idempotent and race-free enough: two threads store the same pointers. */
	RESOLVE(socket);
	RESOLVE(socketpair);
	RESOLVE(connect);
	RESOLVE(bind);
	RESOLVE(listen);
	RESOLVE(accept);
	RESOLVE(accept4);
	RESOLVE(shutdown);
	RESOLVE(close);
	RESOLVE(getsockopt);
	RESOLVE(setsockopt);
	RESOLVE(getsockname);
	RESOLVE(getpeername);
	RESOLVE(fcntl);
	RESOLVE(ioctl);
	RESOLVE(dup);
	RESOLVE(dup2);
	RESOLVE(dup3);
	RESOLVE(read);
	RESOLVE(write);
	RESOLVE(readv);
	RESOLVE(writev);
	RESOLVE(recv);
	RESOLVE(send);
	RESOLVE(recvfrom);
	RESOLVE(sendto);
	RESOLVE(recvmsg);
	RESOLVE(sendmsg);
	RESOLVE(recvmmsg);
	RESOLVE(close_range);
	/* by its name as a string: the shim's sources call mw_raw_syscall where they write syscall (sys.c) */
	if (!real.libc_syscall)
		*(void **)&real.libc_syscall = dlsym(RTLD_NEXT, "syscall");
	RESOLVE(sendmmsg);
	RESOLVE(epoll_ctl);
	if (real.libc_syscall) {
		real.getsockopt = untrapped_getsockopt;
		real.setsockopt = untrapped_setsockopt;
		real.getsockname = untrapped_getsockname;
		real.getpeername = untrapped_getpeername;
		real.shutdown = untrapped_shutdown;
		real.bind = untrapped_bind;
		real.listen = untrapped_listen;
	}
}

__attribute__((constructor(101))) static void real_ctor(void)
{
	real_init();
}
