/* rawconnect: make the socket and connect system calls directly, with the
 * syscall instruction itself: not libc's wrappers, nor libc's syscall()
 * function (both of which a preloaded shim interposes), the way a Go binary
 * does.
 *
 *     rawconnect ADDR PORT
 *
 * Prints one line and exits:
 *     connected                  exit 0 (after sending "rawconnect\n")
 *     error <ERRNAME> <errno>    exit 2 (socket or connect failed)
 *     usage ...                  exit 64
 * connect is bounded by a 5 s SO_SNDTIMEO, so it never hangs. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

static const char *errname(int e)
{
    switch (e) {
    case ENETUNREACH: return "ENETUNREACH";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EINPROGRESS: return "EINPROGRESS";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    default: return "OTHER";
    }
}

/* One system call by the instruction: the kernel's result, -errno on failure. */
static long raw(long nr, long a, long b, long c, long d, long e)
{
#if defined(__x86_64__)
    register long r10 __asm__("r10") = d, r8 __asm__("r8") = e;
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
                     : "rcx", "r11", "memory");
    return ret;
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = nr, x0 __asm__("x0") = a, x1 __asm__("x1") = b, x2 __asm__("x2") = c,
                  x3 __asm__("x3") = d, x4 __asm__("x4") = e;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4) : "memory");
    return x0;
#else
#error "rawconnect: no raw system call for this architecture"
#endif
}

/* raw() in libc's convention: -1 and errno. */
static long sys(long nr, long a, long b, long c, long d, long e)
{
    long r = raw(nr, a, b, c, d, e);
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

static int fail(int e)
{
    printf("error %s %d\n", errname(e), e);
    return 2;
}

int main(int argc, char **argv)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int family;

    if (argc != 3) {
        fprintf(stderr, "usage: rawconnect ADDR PORT\n");
        return 64;
    }
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    int port = atoi(argv[2]);
    if (inet_pton(AF_INET, argv[1], &s4->sin_addr) == 1) {
        family = AF_INET;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        len = sizeof *s4;
    } else if (inet_pton(AF_INET6, argv[1], &s6->sin6_addr) == 1) {
        family = AF_INET6;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        len = sizeof *s6;
    } else {
        fprintf(stderr, "usage: rawconnect ADDR PORT (bad address)\n");
        return 64;
    }

    long fd = sys(SYS_socket, family, SOCK_STREAM, 0, 0, 0);
    if (fd < 0)
        return fail(errno);
    struct timeval tv = { .tv_sec = 5, .tv_usec = 0 };
    if (sys(SYS_setsockopt, fd, SOL_SOCKET, SO_SNDTIMEO, (long)&tv, sizeof tv) < 0)
        return fail(errno);
    if (sys(SYS_connect, fd, (long)&ss, len, 0, 0) < 0)
        return fail(errno);
    static const char msg[] = "rawconnect\n";
    sys(SYS_write, fd, (long)msg, sizeof msg - 1, 0, 0);
    sys(SYS_close, fd, 0, 0, 0, 0);
    printf("connected\n");
    return 0;
}
