/*
 * ident.c: descriptors that arrive already made.  A carrier can reach this process by SCM_RIGHTS from another
 * process, or across exec (where the table is empty again).  To the kernel such an fd is just an AF_UNIX
 * socket; mwinsd, which made every carrier and knows each program end's inode, says whether it is one.
 */
#include <stdlib.h>
#include <string.h>

#include "shim.h"

int ident_fd(int fd)
{
	struct mw_req q = { .cmd = MW_CMD_IDENTIFY };
	struct shim_fd e = { 0 }, cur;
	struct mw_rsp r;
	int d = 0, t = 0, err;
	socklen_t l = sizeof(d);

	if (fdtab_get(fd, &cur) != SHIM_NONE)
		return 0;
	/* Only a unix stream or seqpacket socket can be a carrier: anything else costs no round trip. */
	if (real.getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &d, &l) < 0 || d != AF_UNIX)
		return -ENOENT;
	l = sizeof(t);
	if (real.getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &l) < 0 || (t != SOCK_STREAM && t != SOCK_SEQPACKET))
		return -ENOENT;
	err = chan_call(&q, &e.epoch, fd, &r, NULL);
	if (!err)
		err = r.ret;
	if (err)
		return err;
	switch (r.u.ident.kind) {
	case MW_KIND_STREAM:
		e.kind = SHIM_STREAM;
		break;
	case MW_KIND_LISTEN:
		e.kind = SHIM_LISTEN;
		break;
	case MW_KIND_DGRAM:
		e.kind = SHIM_DGRAM;
		break;
	default:
		return -EIO;
	}
	/* mwinsd is not trusted: its answer must agree with what the kernel says the fd is. */
	if ((e.kind == SHIM_DGRAM) != (t == SOCK_SEQPACKET) ||
	    (r.u.ident.family != AF_INET && r.u.ident.family != AF_INET6))
		return -EIO;
	e.family = (uint8_t)r.u.ident.family;
	e.sock_id = r.sock_id;
	return fdtab_set(fd, &e);
}

void ident_cmsgs(const struct msghdr *msg)
{
	struct cmsghdr *c;

	if (!msg->msg_control || msg->msg_controllen < sizeof(struct cmsghdr))
		return;
	for (c = CMSG_FIRSTHDR((struct msghdr *)msg); c; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			ident_fd(fd);
		}
	}
}
