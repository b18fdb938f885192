/*
 * case-rebind.c: a port is free again as soon as close() returns.  Test frameworks and servers that re-create
 * a listener (or a UDP socket) on its port do exactly this, at once, and a kernel socket lets them: a
 * listener with no connections, an unconnected bound TCP socket and a UDP socket leave nothing behind.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "conform.h"

#define ROUNDS 20

/* ROUNDS times: a socket of type (listening if listen_too) bound to the port the first round got, closed. */
static void rebind(int type, bool listen_too)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int ok = 0, first_err = 0;

	for (int i = 0; i < ROUNDS; i++) {
		int fd = type == SOCK_STREAM ? tcp_socket(AF_INET, 0) : udp_socket(AF_INET, 0);
		int r = bind(fd, (struct sockaddr *)&sin, sizeof(sin));

		if (r == 0 && listen_too)
			r = listen(fd, 4);
		if (r == 0 && i == 0) {
			socklen_t len = sizeof(sin);

			if (getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
				setup_fail("getsockname: %s", errno_name(errno));
		}
		if (r == 0)
			ok++;
		else if (!first_err)
			first_err = errno;
		close(fd);
	}
	note("rounds_ok=%d first_error=%s", ok, first_err ? errno_name(first_err) : "none");
	expect(ok == ROUNDS, "%d of %d rounds bound the port again", ok, ROUNDS);
}

CASE(rebind_listener_4) { rebind(SOCK_STREAM, true); }
CASE(rebind_bound_4) { rebind(SOCK_STREAM, false); }
CASE(rebind_udp_4) { rebind(SOCK_DGRAM, false); }
