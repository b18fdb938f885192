/*
 * mwlib: the few helpers that more than one mwcomms program needs: address conversion between struct
 * sockaddr and the protocol's struct mw_addr, descriptor passing, and the registry's location.
 * All functions return 0 (or a count) on success and a negative errno on failure.  errno itself is not
 * theirs to keep: the system calls inside them may change it either way.
 */
#ifndef MWLIB_H
#define MWLIB_H

#include <stddef.h>
#include <sys/socket.h>

#include "mwcomms/proto.h"

#define MW_REGISTRY_DEFAULT "/run/mwcomms"

/* The registry root: $MWCOMMS_REGISTRY if set and absolute, else MW_REGISTRY_DEFAULT.  Can't fail. */
const char *mw_registry_root(void);

/* Convert an AF_INET/AF_INET6 sockaddr of salen bytes into *out.  Returns -EINVAL for a short length and
 * -EAFNOSUPPORT for another family; *out is then unaltered. */
int mw_addr_from_sockaddr(struct mw_addr *out, const struct sockaddr *sa, socklen_t salen);

/* Convert *in into a sockaddr in ss, returning its length, or -EINVAL if in->family is not INET/INET6.
 * Never reads beyond *in. */
int mw_addr_to_sockaddr(const struct mw_addr *in, struct sockaddr_storage *ss);

/* "192.0.2.1:80" or "[2001:db8::1]:443" into buf (len bytes); returns buf.  Can't fail. */
const char *mw_addr_str(const struct mw_addr *a, char *buf, size_t len);

/* Copy sockaddr ss (length len) to a caller's buffer the way the kernel does: truncate to *addrlen and store
 * the full length in *addrlen.  addr may be NULL (then nothing is stored). */
void mw_sockaddr_copy_out(struct sockaddr *addr, socklen_t *addrlen, const struct sockaddr_storage *ss,
			  socklen_t len);

/* Send len bytes from buf on a SOCK_SEQPACKET/STREAM socket with fd (if fd >= 0) as SCM_RIGHTS, MSG_NOSIGNAL.
 * Returns the bytes sent or -errno. */
ssize_t mw_send_fd(int sock, const void *buf, size_t len, int fd, int flags);

/* Receive one message of up to len bytes with at most one descriptor, stored in *fd (-1 if none).  Extra
 * descriptors, or any other ancillary data, are closed and dropped and *truncated is set, so a hostile peer
 * can't make us leak fds.  flags are recvmsg flags (MSG_CMSG_CLOEXEC is always added). Returns bytes or -errno;
 * -EINTR is returned, not retried, so that a blocking caller can honour signals. */
ssize_t mw_recv_fd(int sock, void *buf, size_t len, int *fd, int *truncated, int flags);

/* One message for mw_recv_many: buf and len are the caller's; n (bytes, 0 for the peer's end), fd and
 * truncated are filled in as mw_recv_fd fills them. */
struct mw_rx {
	void *buf;
	size_t len;
	ssize_t n;
	int fd;
	int truncated;
	struct ucred cred;  /* SCM_CREDENTIALS, when the socket has SO_PASSCRED (the kernel's word on the
			     * sender); pid 0 when the message carried none */
};

/* Receive up to n (at most MW_RX_MAX) messages of a SOCK_SEQPACKET socket in one call (recvmmsg), each
 * checked as mw_recv_fd checks one.  Returns how many came, or -errno (-EAGAIN: none with MSG_DONTWAIT).
 * Fewer than n with MSG_DONTWAIT means there were no more. */
#define MW_RX_MAX 16
int mw_recv_many(int sock, struct mw_rx *rx, int n, int flags);

/* Write value (len bytes) to dir/name atomically: a temporary file in dir, then rename. */
int mw_file_write_atomic(const char *dir, const char *name, const char *value, size_t len);

#endif /* MWLIB_H */
