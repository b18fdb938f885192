/*
 * decode.c: what a control request may be, as a table and two pure functions.  client.c applies them to every
 * message before anything else reads it, and fuzz/fuzz_req.c feeds them hostile bytes: mwinsd runs exactly the
 * code that is fuzzed.  Nothing here touches the system.
 *
 *   req_frame_check  the framing: size, version, a descriptor exactly where the command takes one, the flags a
 *                    command may carry, HELLO first and once.  A request that fails it ends the connection.
 *   req_args_check   the arguments, as far as they can be judged without the socket: what fails here is
 *                    answered with the errno the kernel would give, and nothing runs.
 *
 * Adding a command is one row of `rules` (and its argument check) here, and one handler in sock.c.
 */
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "ins.h"
#include "mwlib.h"

static int args_socket(const struct mw_req *q)
{
	const struct mw_socket_args *a = &q->u.socket;

	if (a->domain != AF_INET && a->domain != AF_INET6)
		return -EAFNOSUPPORT;
	if (a->type != SOCK_STREAM && a->type != SOCK_DGRAM)
		return -EPROTONOSUPPORT;
	if (a->protocol != 0 && a->protocol != (a->type == SOCK_DGRAM ? IPPROTO_UDP : IPPROTO_TCP))
		return -EPROTONOSUPPORT;
	return 0;
}

/* An address of family INET or INET6 that converts; any other family is the kernel's EAFNOSUPPORT. */
static int args_inet_addr(const struct mw_addr *a)
{
	struct sockaddr_storage ss;

	if (a->family != AF_INET && a->family != AF_INET6)
		return -EAFNOSUPPORT;
	return mw_addr_to_sockaddr(a, &ss) < 0 ? -EINVAL : 0;
}

static int args_addr(const struct mw_req *q)
{
	return args_inet_addr(&q->u.addr);
}

static int args_connect(const struct mw_req *q)
{
	const struct mw_connect_args *a = &q->u.connect;

	if (a->flags & ~(uint32_t)MW_CONNECT_NONBLOCK || a->fill > (1U << 20))
		return -EINVAL;
	/* Family 0 dissolves a UDP association; on TCP the handler answers what the kernel does. */
	return a->addr.family ? args_inet_addr(&a->addr) : 0;
}

/* Options that would reach past the program's own socket into the INS's host; and the timeouts, which are
 * the carrier's (the shim keeps them). */
bool req_opt_refused(int level, int name)
{
	return level == SOL_SOCKET && (name == SO_BINDTODEVICE || name == SO_ATTACH_FILTER ||
				       name == SO_ATTACH_BPF || name == SO_MARK || name == SO_RCVTIMEO ||
				       name == SO_SNDTIMEO);
}

static int args_opt(const struct mw_req *q)
{
	if (q->u.opt.len > MW_OPT_MAX)
		return -EINVAL;
	return req_opt_refused(q->u.opt.level, q->u.opt.name) ? -ENOPROTOOPT : 0;
}

static int args_shutdown(const struct mw_req *q)
{
	return q->u.shutdown.how == SHUT_RD ? 0 : -EINVAL; /* SHUT_WR is the carrier's own */
}

static int args_ioctl(const struct mw_req *q)
{
	switch (q->u.ioctl.request) {
	case SIOCOUTQ:
	case SIOCOUTQNSD:
		return 0;
	case SIOCATMARK:
		return q->u.ioctl.value < 0 ? -EINVAL : 0; /* the shim's unread byte count */
	default:
		return -ENOTTY;
	}
}

static int args_oob(const struct mw_req *q)
{
	const struct mw_oob_args *o = &q->u.oob;

	if (o->op == MW_OOB_SEND)
		return o->byte > 255 ? -EINVAL : 0;
	return o->op == MW_OOB_RECV || o->op == MW_OOB_PEEK ? 0 : -EINVAL;
}

static int args_reserved(const struct mw_req *q)
{
	(void)q;
	return -ENOTSUP;
}

static int args_none(const struct mw_req *q)
{
	(void)q;
	return 0;
}

/* One row per command (proto.h says what each means). */
static const struct req_rule rules[] = {
	[MW_CMD_SOCKET] = { .known = true, .idle = true, .args = args_socket },
	[MW_CMD_CONNECT] = { .known = true, .names_sock = true, .fd = REQ_IF_NONBLOCK,
			     .noreply = REQ_IF_NONBLOCK, .args = args_connect },
	[MW_CMD_RELEASE] = { .known = true, .args = args_reserved },
	[MW_CMD_BIND] = { .known = true, .names_sock = true, .args = args_addr },
	[MW_CMD_LISTEN] = { .known = true, .names_sock = true, .args = args_none },
	[MW_CMD_ACCEPT] = { .known = true, .args = args_reserved },
	[MW_CMD_BARRIER] = { .known = true, .args = args_none },
	[MW_CMD_HELLO] = { .known = true, .args = args_none },
	[MW_CMD_SETSOCKOPT] = { .known = true, .names_sock = true, .noreply = REQ_ALWAYS, .args = args_opt },
	[MW_CMD_GETSOCKOPT] = { .known = true, .names_sock = true, .args = args_opt },
	[MW_CMD_SHUTDOWN] = { .known = true, .names_sock = true, .args = args_shutdown },
	[MW_CMD_IOCTL] = { .known = true, .names_sock = true, .args = args_ioctl },
	[MW_CMD_IDENTIFY] = { .known = true, .fd = REQ_ALWAYS, .args = args_none },
	[MW_CMD_DGRAM_CHECK] = { .known = true, .names_sock = true, .args = args_addr },
	[MW_CMD_CLOSE] = { .known = true, .hint = true, .args = args_none },
	[MW_CMD_OOB] = { .known = true, .names_sock = true, .args = args_oob },
};

const struct req_rule *req_rule(uint16_t cmd)
{
	static const struct req_rule unknown = { .args = args_reserved };

	return cmd < sizeof(rules) / sizeof(rules[0]) && rules[cmd].known ? &rules[cmd] : &unknown;
}

/* Whether the request's command and arguments make `when` hold. */
static bool req_when(enum req_when when, const struct mw_req *q)
{
	switch (when) {
	case REQ_ALWAYS:
		return true;
	case REQ_IF_NONBLOCK:
		return q->u.connect.flags & MW_CONNECT_NONBLOCK;
	default:
		return false;
	}
}

int req_frame_check(const struct mw_req *q, size_t n, bool has_fd, bool trunc, bool hello_done)
{
	const struct req_rule *rule;

	/* The size first: a short message leaves the rest of *q unwritten, so no field may be read before. */
	if (n != sizeof(*q) || trunc || q->version != MW_PROTO_VERSION)
		return -EPROTO;
	rule = req_rule(q->cmd);
	if (has_fd != req_when(rule->fd, q))
		return -EPROTO;
	if (q->flags & ~(uint32_t)(MW_REQ_NOREPLY | MW_REQ_IDLE))
		return -EPROTO;
	/* Waiting for idle time, or no answer, only where proto.h (enum mw_req_flags) allows it. */
	if ((q->flags & MW_REQ_IDLE) && (!rule->idle || (q->flags & MW_REQ_NOREPLY)))
		return -EPROTO;
	if ((q->flags & MW_REQ_NOREPLY) && !req_when(rule->noreply, q))
		return -EPROTO;
	/* HELLO first, and only once. */
	if (hello_done == (q->cmd == MW_CMD_HELLO))
		return -EPROTO;
	return 0;
}

int req_args_check(const struct mw_req *q)
{
	return req_rule(q->cmd)->args(q);
}
