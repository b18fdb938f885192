/* addr.c: conversions between struct sockaddr and struct mw_addr, the protocol's one address layout. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <netinet/in.h>
#include <string.h>

#include "mwlib.h"

int mw_addr_from_sockaddr(struct mw_addr *out, const struct sockaddr *sa, socklen_t salen)
{
	struct mw_addr a;

	if (!sa || salen < (socklen_t)sizeof(sa_family_t))
		return -EINVAL;
	memset(&a, 0, sizeof(a));
	switch (sa->sa_family) {
	case AF_INET: {
		struct sockaddr_in sin;

		if (salen < (socklen_t)sizeof(sin))
			return -EINVAL;
		memcpy(&sin, sa, sizeof(sin));
		a.family = AF_INET;
		a.port = sin.sin_port;
		memcpy(a.addr, &sin.sin_addr, 4);
		break;
	}
	case AF_INET6: {
		struct sockaddr_in6 sin6;

		if (salen < (socklen_t)sizeof(sin6))
			return -EINVAL;
		memcpy(&sin6, sa, sizeof(sin6));
		a.family = AF_INET6;
		a.port = sin6.sin6_port;
		a.flowinfo = sin6.sin6_flowinfo;
		memcpy(a.addr, &sin6.sin6_addr, 16);
		a.scope_id = sin6.sin6_scope_id;
		break;
	}
	default:
		return -EAFNOSUPPORT;
	}
	*out = a;
	return 0;
}

int mw_addr_to_sockaddr(const struct mw_addr *in, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (in->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = in->port;
		memcpy(&sin->sin_addr, in->addr, 4);
		return sizeof(*sin);
	}
	if (in->family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = in->port;
		sin6->sin6_flowinfo = in->flowinfo;
		memcpy(&sin6->sin6_addr, in->addr, 16);
		sin6->sin6_scope_id = in->scope_id;
		return sizeof(*sin6);
	}
	return -EINVAL;
}

void mw_sockaddr_copy_out(struct sockaddr *addr, socklen_t *addrlen, const struct sockaddr_storage *ss,
			  socklen_t len)
{
	socklen_t n;

	if (!addr || !addrlen)
		return;
	n = *addrlen < len ? *addrlen : len;
	memcpy(addr, ss, n);
	*addrlen = len;
}

const char *mw_addr_str(const struct mw_addr *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (a->family == AF_INET)
		inet_ntop(AF_INET, a->addr, ip, sizeof(ip));
	else if (a->family == AF_INET6)
		inet_ntop(AF_INET6, a->addr, ip, sizeof(ip));
	snprintf(buf, len, a->family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, ntohs(a->port));
	return buf;
}
