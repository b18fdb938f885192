/*
 * fuzz_req.c: mwinsd's checks of a control request from a protected program.
 *
 * Input: one byte of flags, then the message as the kernel delivers it.
 *   bit 0  a descriptor came with it
 *   bit 1  the kernel cut the message or its ancillary data (mw_recv_fd's *truncated)
 *   bit 2  the client has already said HELLO
 * A message longer than struct mw_req is cut to it with the truncation flag set, as recvmsg does.
 *
 * What runs, and what is checked:
 *   1. req_frame_check (src/ins/decode.c), the function client_read calls.  The bytes of the request past
 *      what was received are poisoned, so reading a field of a short message is an ASan report.  An accepted
 *      request must meet the framing rules of proto.h, checked here against a separate statement of them.
 *   2. req_args_check, which sock_dispatch calls before anything else: every command's arguments.  What it
 *      lets through must meet what each handler of src/ins/sock.c takes for granted (stated here apart), and
 *      it answers only with the errnos the kernel gives for bad arguments.
 *   3. For a request it lets through, what can be reached without a socket: the address of BIND, CONNECT and
 *      DGRAM_CHECK through mw_addr_to_sockaddr (src/lib/addr.c) and back, and through policy_eval with a
 *      fixed policy (the example of docs/telemetry.md), as enforce_check does with it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <sanitizer/asan_interface.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>

#include "fuzz.h"
#include "ins.h"
#include "mwlib.h"

static struct policy *pol;

/* The example rules of docs/telemetry.md, less the list (a run-time rule may not name one). */
static const char *const rules[] = {
	"deny  name=no-metadata op=connect remote=169.254.0.0/16",
	"deny  name=bad op=connect,send remote=192.0.2.0/24,2001:db8::/32,::ffff:198.51.100.0/120",
	"kill  name=no-telnet op=connect rport=23",
	"log   name=dns op=send rport=53",
	"throttle name=slow-curl exe=/usr/bin/curl rate=1M per=program",
	"allow name=web op=listen lport=8000-8999",
	"deny  name=no-listen op=listen",
};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	pol = policy_new();
	FUZZ_CHECK(pol);
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		FUZZ_CHECK(policy_add_rule(pol, rules[i], 0, NULL, 0, err, sizeof(err)) == 0);
	return 0;
}

/* The rules of proto.h, stated apart from decode.c. */
static bool spec_takes_fd(const struct mw_req *q)
{
	return q->cmd == MW_CMD_IDENTIFY || (q->cmd == MW_CMD_CONNECT && (q->u.connect.flags & MW_CONNECT_NONBLOCK));
}

/* What sock.c's handlers take for granted of a request req_args_check let through, stated apart from it. */
static bool args_as_handlers_expect(const struct mw_req *q)
{
	switch (q->cmd) {
	case MW_CMD_SOCKET:
		return (q->u.socket.domain == AF_INET || q->u.socket.domain == AF_INET6) &&
		       (q->u.socket.type == SOCK_STREAM || q->u.socket.type == SOCK_DGRAM);
	case MW_CMD_BIND:
	case MW_CMD_DGRAM_CHECK:
		return q->u.addr.family == AF_INET || q->u.addr.family == AF_INET6;
	case MW_CMD_CONNECT:
		return !(q->u.connect.flags & ~(uint32_t)MW_CONNECT_NONBLOCK) && q->u.connect.fill <= (1U << 20) &&
		       (!q->u.connect.addr.family || q->u.connect.addr.family == AF_INET ||
			q->u.connect.addr.family == AF_INET6);
	case MW_CMD_SETSOCKOPT:
	case MW_CMD_GETSOCKOPT:
		return q->u.opt.len <= MW_OPT_MAX &&
		       !(q->u.opt.level == SOL_SOCKET && (q->u.opt.name == SO_BINDTODEVICE || q->u.opt.name == SO_MARK));
	case MW_CMD_SHUTDOWN:
		return q->u.shutdown.how == SHUT_RD;
	case MW_CMD_IOCTL:
		return q->u.ioctl.request == SIOCOUTQ || q->u.ioctl.request == SIOCOUTQNSD ||
		       (q->u.ioctl.request == SIOCATMARK && q->u.ioctl.value >= 0);
	case MW_CMD_OOB:
		return (q->u.oob.op == MW_OOB_SEND && q->u.oob.byte <= 255) || q->u.oob.op == MW_OOB_RECV ||
		       q->u.oob.op == MW_OOB_PEEK;
	case MW_CMD_RELEASE:
	case MW_CMD_ACCEPT:
		return false; /* reserved: answered -ENOTSUP, never run */
	default:
		return q->cmd <= MW_CMD_OOB;
	}
}

/* mw_addr_to_sockaddr and back: a family other than INET/INET6 is refused, the rest converts faithfully. */
static void addr_roundtrip(const struct mw_addr *a)
{
	struct sockaddr_storage ss;
	struct mw_addr back, untouched;
	int len = mw_addr_to_sockaddr(a, &ss);

	if (a->family != AF_INET && a->family != AF_INET6) {
		FUZZ_CHECK(len == -EINVAL);
		return;
	}
	FUZZ_CHECK(len == (a->family == AF_INET ? (int)sizeof(struct sockaddr_in) : (int)sizeof(struct sockaddr_in6)));
	FUZZ_CHECK(ss.ss_family == a->family);
	FUZZ_CHECK(mw_addr_from_sockaddr(&back, (struct sockaddr *)&ss, (socklen_t)len) == 0);
	FUZZ_CHECK(back.family == a->family && back.port == a->port && back.pad == 0);
	if (a->family == AF_INET) {
		FUZZ_CHECK(!memcmp(back.addr, a->addr, 4));
	} else {
		FUZZ_CHECK(!memcmp(back.addr, a->addr, 16));
		FUZZ_CHECK(back.flowinfo == a->flowinfo && back.scope_id == a->scope_id);
	}
	/* One byte short: refused, and *out left alone. */
	memset(&untouched, 0xa5, sizeof(untouched));
	back = untouched;
	FUZZ_CHECK(mw_addr_from_sockaddr(&back, (struct sockaddr *)&ss, (socklen_t)len - 1) == -EINVAL);
	FUZZ_CHECK(!memcmp(&back, &untouched, sizeof(back)));
}

/* What enforce_check asks the policy, with the program's address as it came. */
static void addr_policy(enum pol_op op, int proto, const struct mw_addr *local, const struct mw_addr *remote)
{
	static const struct mw_addr none;
	struct pol_query pq = {
		.op = op,
		.family = (local ? local : remote)->family,
		.proto = proto,
		.local = local ? *local : none,
		.remote = remote ? *remote : none,
		.exe = "/usr/bin/curl",
		.comm = "curl",
		.uid = 1000,
		.pid = 4242,
		.now_ms = 1,
	};
	struct pol_verdict v = { 0 };

	policy_eval(pol, &pq, &v);
	FUZZ_CHECK(v.action == POL_ALLOW || v.action == POL_DENY || v.action == POL_KILL);
	FUZZ_CHECK(memchr(v.rule, 0, sizeof(v.rule)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mw_req *q;
	size_t n;
	bool has_fd, trunc, hello_done;
	int ret;

	if (size < 1)
		return 0;
	has_fd = data[0] & 1;
	trunc = data[0] & 2;
	hello_done = data[0] & 4;
	data++;
	size--;
	n = size < sizeof(*q) ? size : sizeof(*q);
	trunc |= size > sizeof(*q);

	/* The receive buffer is a whole struct; only the first n bytes were written. */
	q = malloc(sizeof(*q));
	FUZZ_CHECK(q);
	memcpy(q, data, n);
	ASAN_POISON_MEMORY_REGION((char *)q + n, sizeof(*q) - n);
	ret = req_frame_check(q, n, has_fd, trunc, hello_done);
	ASAN_UNPOISON_MEMORY_REGION((char *)q + n, sizeof(*q) - n);
	FUZZ_CHECK(ret == 0 || ret == -EPROTO);
	if (ret) {
		free(q);
		return 0;
	}
	FUZZ_CHECK(n == sizeof(*q) && !trunc && q->version == MW_PROTO_VERSION);
	FUZZ_CHECK(has_fd == spec_takes_fd(q));
	FUZZ_CHECK(hello_done ? q->cmd != MW_CMD_HELLO : q->cmd == MW_CMD_HELLO);

	ret = req_args_check(q);
	FUZZ_CHECK(ret == 0 || ret == -EINVAL || ret == -EAFNOSUPPORT || ret == -EPROTONOSUPPORT ||
		   ret == -ENOPROTOOPT || ret == -ENOTTY || ret == -ENOTSUP);
	if (ret) {
		free(q);
		return 0;
	}
	FUZZ_CHECK(args_as_handlers_expect(q));
	switch (q->cmd) {
	case MW_CMD_BIND:
		addr_roundtrip(&q->u.addr);
		if (q->u.addr.family == AF_INET || q->u.addr.family == AF_INET6)
			addr_policy(POL_OP_LISTEN, IPPROTO_TCP, &q->u.addr, NULL);
		break;
	case MW_CMD_DGRAM_CHECK:
		addr_roundtrip(&q->u.addr);
		if (q->u.addr.family == AF_INET || q->u.addr.family == AF_INET6)
			addr_policy(POL_OP_SEND, IPPROTO_UDP, NULL, &q->u.addr);
		break;
	case MW_CMD_CONNECT:
		addr_roundtrip(&q->u.connect.addr);
		if (q->u.connect.addr.family == AF_INET || q->u.connect.addr.family == AF_INET6)
			addr_policy(POL_OP_CONNECT, IPPROTO_TCP, NULL, &q->u.connect.addr);
		break;
	default:
		break;
	}
	free(q);
	return 0;
}
