/* rawconnect: make the socket and connect system calls directly, bypassing
 * libc's wrappers (and so any LD_PRELOAD shim), the way a static or Go binary
 * would.
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

    long fd = syscall(SYS_socket, family, SOCK_STREAM, 0);
    if (fd < 0)
        return fail(errno);
    struct timeval tv = { .tv_sec = 5, .tv_usec = 0 };
    if (syscall(SYS_setsockopt, fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
        return fail(errno);
    if (syscall(SYS_connect, fd, &ss, len) < 0)
        return fail(errno);
    static const char msg[] = "rawconnect\n";
    syscall(SYS_write, fd, msg, sizeof msg - 1);
    syscall(SYS_close, fd);
    printf("connected\n");
    return 0;
}
