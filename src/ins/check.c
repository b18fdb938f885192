/*
 * check.c: the framing rules of a control request, as one pure function.  client.c applies it to every
 * message before anything else reads it, and fuzz/fuzz_req.c feeds it hostile bytes: the daemon runs exactly
 * the code that is fuzzed.
 */
#include <errno.h>

#include "ins.h"

/* Which commands take a descriptor with them. */
static bool cmd_takes_fd(const struct mw_req *q)
{
	switch (q->cmd) {
	case MW_CMD_IDENTIFY:
		return true;
	case MW_CMD_CONNECT:
		return q->u.connect.flags & MW_CONNECT_NONBLOCK;
	default:
		return false;
	}
}

int client_check_req(const struct mw_req *q, size_t n, bool has_fd, bool trunc, bool hello_done)
{
	/* The size first: a short message leaves the rest of *q unwritten, so no field may be read before. */
	if (n != sizeof(*q) || trunc || q->version != MW_PROTO_VERSION)
		return -EPROTO;
	if (has_fd != cmd_takes_fd(q))
		return -EPROTO;
	/* No answer only where the protocol says the outcome needs none (proto.h, enum mw_req_flags). */
	if (q->flags & ~(uint32_t)(MW_REQ_NOREPLY | MW_REQ_IDLE))
		return -EPROTO;
	if ((q->flags & MW_REQ_IDLE) && (q->cmd != MW_CMD_SOCKET || (q->flags & MW_REQ_NOREPLY)))
		return -EPROTO;
	if ((q->flags & MW_REQ_NOREPLY) && q->cmd != MW_CMD_SETSOCKOPT &&
	    !(q->cmd == MW_CMD_CONNECT && (q->u.connect.flags & MW_CONNECT_NONBLOCK)))
		return -EPROTO;
	/* HELLO first, and only once. */
	if (hello_done == (q->cmd == MW_CMD_HELLO))
		return -EPROTO;
	return 0;
}
