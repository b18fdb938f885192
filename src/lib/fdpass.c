/*
 * fdpass.c: sending and receiving one descriptor with a message (SCM_RIGHTS), defensively.
 *
 * These make raw system calls, not libc calls: linked into the shim, a libc call would come back through the
 * shim's own interposers (and the fds here are carriers, which the interposers treat specially).
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mwlib.h"

ssize_t mw_send_fd(int sock, const void *buf, size_t len, int fd, int flags)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof(ctl.buf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	do
		n = syscall(SYS_sendmsg, sock, &msg, flags | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* Room for a handful of descriptors: a hostile sender may attach several, and we must see them all to close
 * them; anything beyond this is cut by the kernel (MSG_CTRUNC) and closed by it. */
union rx_ctl {
	struct cmsghdr align;
	char buf[CMSG_SPACE(8 * sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))];
};

/* The one descriptor a received message may carry; every other one is closed, and anything unexpected marks
 * the message truncated.  Credentials (cred, if not NULL) are taken as the kernel wrote them. */
static void rx_take_fds(struct msghdr *msg, int *fd, int *truncated, struct ucred *cred)
{
	struct cmsghdr *c;

	*fd = -1;
	*truncated = (msg->msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
	if (cred)
		memset(cred, 0, sizeof(*cred));
	for (c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		size_t i, nfd;

		if (cred && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
		    c->cmsg_len == CMSG_LEN(sizeof(*cred))) {
			memcpy(cred, CMSG_DATA(c), sizeof(*cred));
			continue;
		}
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			*truncated = 1;
			continue;
		}
		nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < nfd; i++) {
			int x;

			memcpy(&x, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*fd < 0) {
				*fd = x;
			} else {
				syscall(SYS_close, x);
				*truncated = 1;
			}
		}
	}
}

ssize_t mw_recv_fd(int sock, void *buf, size_t len, int *fd, int *truncated, int flags)
{
	union rx_ctl ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			      .msg_controllen = sizeof(ctl.buf) };
	ssize_t n;

	*fd = -1;
	*truncated = 0;
	n = syscall(SYS_recvmsg, sock, &msg, flags | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	rx_take_fds(&msg, fd, truncated, NULL);
	return n;
}

int mw_recv_many(int sock, struct mw_rx *rx, int n, int flags)
{
	union rx_ctl ctl[MW_RX_MAX];
	struct iovec iov[MW_RX_MAX];
	struct mmsghdr mm[MW_RX_MAX];
	int got;

	if (n < 1 || n > MW_RX_MAX)
		return -EINVAL;
	for (int i = 0; i < n; i++) {
		iov[i] = (struct iovec){ .iov_base = rx[i].buf, .iov_len = rx[i].len };
		mm[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1, .msg_control = ctl[i].buf,
						       .msg_controllen = sizeof(ctl[i].buf) } };
	}
	got = (int)syscall(SYS_recvmmsg, sock, mm, (unsigned)n, flags | MSG_CMSG_CLOEXEC, NULL);
	if (got < 0)
		return -errno;
	for (int i = 0; i < got; i++) {
		rx[i].n = (ssize_t)mm[i].msg_len;
		rx_take_fds(&mm[i].msg_hdr, &rx[i].fd, &rx[i].truncated, &rx[i].cred);
	}
	return got;
}
