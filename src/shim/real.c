/* real.c: the libc functions behind our interposers, found with dlsym(RTLD_NEXT). */
#include <dlfcn.h>

#include "shim.h"

struct shim_real real;

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
}

__attribute__((constructor(101))) static void real_ctor(void)
{
	real_init();
}
