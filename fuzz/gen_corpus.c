/*
 * gen_corpus.c: writes the seed corpus of the harnesses in fuzz/, one directory per harness, from the
 * protocol headers themselves, so that the seeds keep the layouts the code has.  Built and run by
 * `make -f fuzz/Makefile corpus`; the output is checked in (fuzz/corpus/), and fuzz/run copies it before
 * fuzzing so that the checked-in seeds never change.
 *
 * Seeds: a valid request of every command (and the framing errors client.c refuses), a valid response to
 * each, records of every state, the example policy of docs/telemetry.md and variants of the grammar, run-time
 * rules, and every control API request of docs/telemetry.md.  Usage: gen_corpus DIR
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "mwcomms/page.h"
#include "mwcomms/proto.h"

static const char *root;

static void put(const char *harness, const char *name, const void *a, size_t alen, const void *b, size_t blen)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, harness);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", root, harness, name);
	f = fopen(path, "wb");
	if (!f || fwrite(a, 1, alen, f) != alen || (blen && fwrite(b, 1, blen, f) != blen) || fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void put_text(const char *harness, const char *name, const char *text)
{
	put(harness, name, text, strlen(text), NULL, 0);
}

static struct mw_addr addr4(const char *ip, uint16_t port)
{
	struct mw_addr a = { .family = AF_INET, .port = htons(port) };

	inet_pton(AF_INET, ip, a.addr);
	return a;
}

static struct mw_addr addr6(const char *ip, uint16_t port, uint32_t scope)
{
	struct mw_addr a = { .family = AF_INET6, .port = htons(port), .scope_id = scope };

	inet_pton(AF_INET6, ip, a.addr);
	return a;
}

/* ---- fuzz_req: flags byte (fd, trunc, hello done) + struct mw_req ---- */

static void req(const char *name, uint8_t flags, const struct mw_req *q, size_t len)
{
	put("fuzz_req", name, &flags, 1, q, len);
}

static void gen_req(void)
{
	struct mw_req q;

#define Q(c, id) (memset(&q, 0, sizeof(q)), q.version = MW_PROTO_VERSION, q.cmd = (c), q.req_id = 7, q.sock_id = (id))
	Q(MW_CMD_HELLO, 0);
	req("hello", 0, &q, sizeof(q));
	req("hello-again", 4, &q, sizeof(q));
	req("hello-short", 0, &q, 8);
	req("hello-trunc", 2, &q, sizeof(q));
	req("hello-fd", 1, &q, sizeof(q));
	Q(MW_CMD_SOCKET, 0);
	q.u.socket.domain = AF_INET;
	q.u.socket.type = SOCK_STREAM;
	req("socket-tcp4", 4, &q, sizeof(q));
	q.u.socket.domain = AF_INET6;
	q.u.socket.type = SOCK_DGRAM;
	q.u.socket.protocol = IPPROTO_UDP;
	req("socket-udp6", 4, &q, sizeof(q));
	req("socket-before-hello", 0, &q, sizeof(q));
	Q(MW_CMD_CONNECT, 0x10001);
	q.u.connect.addr = addr4("192.0.2.1", 80);
	req("connect4", 4, &q, sizeof(q));
	q.u.connect.addr = addr4("169.254.169.254", 80);
	req("connect4-metadata", 4, &q, sizeof(q));
	q.u.connect.addr = addr6("2001:db8::1", 443, 0);
	q.u.connect.flags = MW_CONNECT_NONBLOCK;
	q.u.connect.fill = 4608;
	q.u.connect.sndbuf = 212992;
	req("connect6-nonblock", 5, &q, sizeof(q));
	req("connect6-nonblock-nofd", 4, &q, sizeof(q));
	q.u.connect.addr = addr6("::ffff:169.254.1.1", 23, 0);
	req("connect6-mapped", 5, &q, sizeof(q));
	Q(MW_CMD_CONNECT, 0x20002);
	req("connect-unspec", 4, &q, sizeof(q));
	Q(MW_CMD_BIND, 0x10001);
	q.u.addr = addr4("0.0.0.0", 8080);
	req("bind4", 4, &q, sizeof(q));
	q.u.addr = addr6("fe80::1", 0, 2);
	req("bind6-scope", 4, &q, sizeof(q));
	q.u.addr.family = AF_UNIX;
	req("bind-unix", 4, &q, sizeof(q));
	Q(MW_CMD_LISTEN, 0x10001);
	q.u.listen.backlog = 128;
	req("listen", 4, &q, sizeof(q));
	Q(MW_CMD_SETSOCKOPT, 0x10001);
	q.u.opt.level = IPPROTO_TCP;
	q.u.opt.name = TCP_NODELAY;
	q.u.opt.len = sizeof(int);
	q.u.opt.val[0] = 1;
	req("setsockopt-nodelay", 4, &q, sizeof(q));
	q.u.opt.len = MW_OPT_MAX + 1;
	req("setsockopt-toolong", 4, &q, sizeof(q));
	Q(MW_CMD_GETSOCKOPT, 0x10001);
	q.u.opt.level = IPPROTO_TCP;
	q.u.opt.name = TCP_INFO;
	q.u.opt.len = MW_OPT_MAX;
	req("getsockopt-info", 4, &q, sizeof(q));
	Q(MW_CMD_SHUTDOWN, 0x10001);
	q.u.shutdown.how = SHUT_RD;
	req("shutdown-rd", 4, &q, sizeof(q));
	Q(MW_CMD_IOCTL, 0x10001);
	q.u.ioctl.request = SIOCOUTQ;
	req("ioctl-outq", 4, &q, sizeof(q));
	Q(MW_CMD_IDENTIFY, 0);
	req("identify", 5, &q, sizeof(q));
	req("identify-nofd", 4, &q, sizeof(q));
	Q(MW_CMD_CLOSE, 0x10001);
	req("close", 4, &q, sizeof(q));
	Q(MW_CMD_DGRAM_CHECK, 0x30003);
	q.u.addr = addr4("255.255.255.255", 9);
	req("dgram-check-bcast", 4, &q, sizeof(q));
	q.u.addr = addr6("ff02::fb", 5353, 0);
	req("dgram-check6", 4, &q, sizeof(q));
	Q(MW_CMD_OOB, 0x10001);
	q.u.oob.op = MW_OOB_SEND;
	q.u.oob.byte = '!';
	req("oob-send", 4, &q, sizeof(q));
	q.u.oob.op = MW_OOB_PEEK;
	req("oob-peek", 4, &q, sizeof(q));
	Q(MW_CMD_IOCTL, 0x10001);
	q.u.ioctl.request = SIOCATMARK;
	q.u.ioctl.value = 3;
	req("ioctl-atmark", 4, &q, sizeof(q));
	Q(MW_CMD_RELEASE, 0x10001);
	req("release", 4, &q, sizeof(q));
	Q(MW_CMD_ACCEPT, 0x10001);
	req("accept", 4, &q, sizeof(q));
	Q(MW_CMD_BARRIER, 0);
	req("barrier", 4, &q, sizeof(q));
	Q(99, 0x10001);
	req("unknown-cmd", 4, &q, sizeof(q));
	Q(MW_CMD_SOCKET, 0);
	q.version = 2;
	req("bad-version", 4, &q, sizeof(q));
#undef Q
}

/* ---- fuzz_rsp: header (flags, cmd, sock_id, req_id) + struct mw_rsp ---- */

static void rsp(const char *name, uint8_t flags, uint16_t cmd, uint32_t sock_id, uint32_t req_id,
		const struct mw_rsp *r, size_t len)
{
	uint8_t h[11] = { flags, (uint8_t)cmd, (uint8_t)(cmd >> 8) };

	for (int i = 0; i < 4; i++) {
		h[3 + i] = (uint8_t)(sock_id >> (8 * i));
		h[7 + i] = (uint8_t)(req_id >> (8 * i));
	}
	put("fuzz_rsp", name, h, sizeof(h), r, len);
}

static void gen_rsp(void)
{
	struct mw_rsp r;

#define R(c, id, rv) (memset(&r, 0, sizeof(r)), r.version = MW_PROTO_VERSION, r.cmd = (c), r.req_id = 9, r.sock_id = (id), r.ret = (rv))
	R(MW_CMD_HELLO, 0, 0);
	r.req_id = 0;
	r.u.hello.nslots = 4096;
	r.u.hello.page_size = (uint32_t)mw_page_size(4096);
	r.u.hello.group = 0xf0000001;
	rsp("hello", 1 | 8, MW_CMD_HELLO, 0, 0, &r, sizeof(r));
	rsp("hello-nofd", 8, MW_CMD_HELLO, 0, 0, &r, sizeof(r));
	r.u.hello.page_size--;
	rsp("hello-badsize", 1 | 8, MW_CMD_HELLO, 0, 0, &r, sizeof(r));
	r.u.hello.nslots = MW_PAGE_MAX_SLOTS + 1;
	r.u.hello.page_size = (uint32_t)mw_page_size(MW_PAGE_MAX_SLOTS + 1);
	rsp("hello-toomany", 1 | 8, MW_CMD_HELLO, 0, 0, &r, sizeof(r));
	r.ret = -ENOMEM;
	rsp("hello-enomem", 8, MW_CMD_HELLO, 0, 0, &r, sizeof(r));
	/* Found by fuzz_rsp: a HELLO ret that is no errno was passed on as one (strerror(-INT_MIN)). */
	r.ret = 1;
	rsp("hello-positive-ret", 1 | 8, MW_CMD_HELLO, 0, 0, &r, sizeof(r));
	r.ret = -2147483647 - 1;
	rsp("hello-int-min", 8, MW_CMD_HELLO, 0, 0, &r, sizeof(r));
	R(MW_CMD_SOCKET, 0x10001, 0);
	rsp("socket", 1 | 4, MW_CMD_SOCKET, 0, 9, &r, sizeof(r));
	r.ret = -EMFILE;
	rsp("socket-emfile", 4, MW_CMD_SOCKET, 0, 9, &r, sizeof(r));
	rsp("socket-emfile-fd", 1 | 4, MW_CMD_SOCKET, 0, 9, &r, sizeof(r));
	R(MW_CMD_CONNECT, 0x10001, 0);
	rsp("connect", 0, MW_CMD_CONNECT, 0x10001, 9, &r, sizeof(r));
	r.ret = -EINPROGRESS;
	rsp("connect-inprogress", 0, MW_CMD_CONNECT, 0x10001, 9, &r, sizeof(r));
	r.ret = -ECONNREFUSED;
	rsp("connect-refused", 0, MW_CMD_CONNECT, 0x10001, 9, &r, sizeof(r));
	rsp("connect-other-id", 0, MW_CMD_CONNECT, 0x20001, 9, &r, sizeof(r));
	rsp("connect-other-req", 0, MW_CMD_CONNECT, 0x10001, 10, &r, sizeof(r));
	R(MW_CMD_BIND, 0x10001, 0);
	rsp("bind", 0, MW_CMD_BIND, 0x10001, 9, &r, sizeof(r));
	R(MW_CMD_LISTEN, 0x10001, 0);
	rsp("listen", 1 | 4, MW_CMD_LISTEN, 0x10001, 9, &r, sizeof(r));
	rsp("listen-again", 4, MW_CMD_LISTEN, 0x10001, 9, &r, sizeof(r));
	rsp("listen-unwanted-fd", 1, MW_CMD_LISTEN, 0x10001, 9, &r, sizeof(r));
	R(MW_CMD_SETSOCKOPT, 0x10001, -ENOPROTOOPT);
	rsp("setsockopt-refused", 0, MW_CMD_SETSOCKOPT, 0x10001, 9, &r, sizeof(r));
	R(MW_CMD_GETSOCKOPT, 0x10001, 0);
	r.u.opt.level = IPPROTO_TCP;
	r.u.opt.name = TCP_INFO;
	r.u.opt.len = 232;
	rsp("getsockopt-info", 0, MW_CMD_GETSOCKOPT, 0x10001, 9, &r, sizeof(r));
	R(MW_CMD_SHUTDOWN, 0x10001, -ENOTCONN);
	rsp("shutdown-notconn", 0, MW_CMD_SHUTDOWN, 0x10001, 9, &r, sizeof(r));
	R(MW_CMD_IOCTL, 0x10001, 0);
	r.u.ioctl.request = SIOCOUTQ;
	r.u.ioctl.value = 4096;
	rsp("ioctl-outq", 0, MW_CMD_IOCTL, 0x10001, 9, &r, sizeof(r));
	R(MW_CMD_IDENTIFY, 0x30001, 0);
	r.u.ident.kind = MW_KIND_LISTEN;
	r.u.ident.family = AF_INET6;
	rsp("identify", 0, MW_CMD_IDENTIFY, 0, 9, &r, sizeof(r));
	r.ret = -ENOENT;
	rsp("identify-enoent", 0, MW_CMD_IDENTIFY, 0, 9, &r, sizeof(r));
	R(MW_CMD_DGRAM_CHECK, 0x30003, -ENETUNREACH);
	rsp("dgram-check-unreach", 0, MW_CMD_DGRAM_CHECK, 0x30003, 9, &r, sizeof(r));
	R(MW_CMD_BARRIER, 0, 0);
	rsp("barrier", 0, MW_CMD_BARRIER, 0, 9, &r, sizeof(r));
	R(MW_CMD_OOB, 0x10001, 0);
	r.u.oob.byte = '!';
	r.u.oob.got = 1;
	rsp("oob-byte", 0, MW_CMD_OOB, 0x10001, 9, &r, sizeof(r));
	r.u.oob.byte = 300;
	rsp("oob-byte-range", 0, MW_CMD_OOB, 0x10001, 9, &r, sizeof(r));
	R(MW_CMD_BIND, 0x10001, 1);
	rsp("bind-positive", 0, MW_CMD_BIND, 0x10001, 9, &r, sizeof(r));
	r.ret = -100000;
	rsp("bind-huge-errno", 0, MW_CMD_BIND, 0x10001, 9, &r, sizeof(r));
	R(MW_CMD_BIND, 0x10001, 0);
	rsp("short", 0, MW_CMD_BIND, 0x10001, 9, &r, 16);
	rsp("recv-error", 16, MW_CMD_BIND, 0x10001, 9, &r, sizeof(r));
	r.version = 0;
	rsp("bad-version", 0, MW_CMD_BIND, 0x10001, 9, &r, sizeof(r));
#undef R
}

/* ---- fuzz_rec: header (nslots-1, epoch/family, sock_id, addrlen) + records ---- */

static void rec(const char *name, uint8_t slots_m1, uint8_t sel, uint32_t sock_id, uint16_t addrlen,
		const struct mw_sock_rec *recs, size_t n)
{
	uint8_t h[8] = { slots_m1, sel, (uint8_t)sock_id, (uint8_t)(sock_id >> 8), (uint8_t)(sock_id >> 16),
			 (uint8_t)(sock_id >> 24), (uint8_t)addrlen, (uint8_t)(addrlen >> 8) };

	put("fuzz_rec", name, h, sizeof(h), recs, n * sizeof(*recs));
}

static void gen_rec(void)
{
	struct mw_sock_rec r[4];

	memset(r, 0, sizeof(r));
	r[1] = (struct mw_sock_rec){ .seq = 4, .sock_id = 0x10001, .state = MW_SS_CONNECTED,
				     .local = addr4("10.0.0.2", 40000), .peer = addr4("192.0.2.1", 80),
				     .bytes_in = 1234, .bytes_out = 99 };
	r[2] = (struct mw_sock_rec){ .seq = 2, .sock_id = 0x20002, .state = MW_SS_LISTENING,
				     .local = addr6("::", 8080, 0) };
	r[3] = (struct mw_sock_rec){ .seq = 8, .sock_id = 0x30003, .state = MW_SS_CLOSED, .error = ECONNRESET,
				     .error_seq = 1, .local = addr6("fe80::1", 5353, 2),
				     .peer = addr6("2001:db8::1", 443, 0) };
	rec("connected4", 3, 0, 0x10001, 16, r, 4);
	rec("connected4-shortbuf", 3, 0, 0x10001, 5, r, 4);
	rec("listening6", 3, 4, 0x20002, 28, r, 4);
	rec("closed6-reset", 3, 4, 0x30003, 128, r, 4);
	rec("stale-id", 3, 0, 0x40001, 16, r, 4);
	rec("slot-out-of-range", 1, 0, 0x10003, 16, r, 4);
	rec("no-epoch", 3, 1, 0x10001, 16, r, 4);
	rec("future-epoch", 3, 2, 0x10001, 16, r, 4);
	r[1].error = -1;
	r[1].state = MW_SS_CLOSED + 1;
	rec("garbled", 3, 0, 0x10001, 16, r, 4);
	r[1].state = MW_SS_OPEN;
	r[1].error = 0;
	r[1].local.family = AF_UNIX;
	rec("family-unix", 3, 0, 0x10001, 16, r, 4);
	r[1].local.family = 0;
	rec("family-none", 3, 4, 0x10001, 28, r, 4);
}

/* ---- fuzz_policy, fuzz_rule, fuzz_ctl: text ---- */

static const char example[] =
	"default allow                 # or deny: the verdict when no rule decides\n"
	"mode enforce                  # or monitor: log what enforce would do, and allow\n"
	"list badnets /etc/mwcomms/badnets.txt    # a file of CIDRs, one per line, # comments\n"
	"\n"
	"# ACTION key=value ...; the first rule whose every key matches decides (log and throttle do not decide:\n"
	"# they mark the flow and evaluation goes on).\n"
	"deny  name=no-metadata op=connect remote=169.254.0.0/16\n"
	"deny  name=bad op=connect,send remote=@badnets\n"
	"kill  name=no-telnet op=connect rport=23\n"
	"log   name=dns op=send rport=53\n"
	"throttle name=slow-curl exe=/usr/bin/curl rate=1M per=program\n"
	"allow name=web op=listen lport=8000-8999\n"
	"deny  name=no-listen op=listen\n";

static void gen_policy(void)
{
	static const char list_a[] = "# bad networks\n10.66.0.0/16\n192.0.2.1\n2001:db8:bad::/48  # v6\n"
				     "::ffff:198.51.100.0/120\n\n";
	static const char list_b[] = "169.254.169.254\n";
	char buf[4096];
	size_t n;

	/* The example verbatim: its list is outside the harness's files, so this one fails at line 3. */
	put_text("fuzz_policy", "example-verbatim", example);
	n = (size_t)snprintf(buf, sizeof(buf), "%s", example);
	{
		char *path = strstr(buf, "/etc/mwcomms/badnets.txt");

		/* The same line with a list file the harness has: "list badnets a". */
		path[0] = 'a';
		memset(path + 1, ' ', strlen("/etc/mwcomms/badnets.txt") - 1);
	}
	put("fuzz_policy", "example-with-list", buf, n + 1, list_a, sizeof(list_a) - 1);
	put_text("fuzz_policy", "monitor-deny",
		 "mode monitor\r\ndefault deny\r\nallow name=lo remote=127.0.0.0/8,::1 family=inet\r\n"
		 "allow op=accept,listen proto=tcp lport=1024-65535 uid=1000-1999\r\n");
	n = (size_t)snprintf(buf, sizeof(buf),
		     "list a a\nlist b /fuzz/b\n"
		     "deny name=two-lists remote=@a,@b,203.0.113.0/24 local=@b rport=1-1023,8080\n"
		     "kill name=by-pid pid=4242 for=10m\n"
		     "throttle name=per-flow comm=cu?l rate=512K for=2h\n"
		     "log name=v6 family=inet6 proto=udp remote=ff00::/8\n"
		     "deny exe=*bin/curl# not a comment\n");
	put("fuzz_policy", "lists-and-keys", buf, n + 1, "10.0.0.0/8\n", 12);
	memcpy(buf + n + 1, "10.0.0.0/8\n", 12);
	buf[n + 1 + 11] = 0;
	put("fuzz_policy", "lists-two-files", buf, n + 1 + 11 + 1, list_b, sizeof(list_b) - 1);
	put_text("fuzz_policy", "errors-host-bits", "deny remote=10.1.0.0/8\n");
	put_text("fuzz_policy", "errors-list-later", "deny remote=@later\nlist later a\n");
	put_text("fuzz_policy", "errors-dup-name", "deny name=x\nallow name=x\n");
	put_text("fuzz_policy", "errors-rate", "throttle rate=1.5M\n");
	put_text("fuzz_policy", "errors-for", "deny for=1h30m\n");
	put_text("fuzz_policy", "errors-empty-elem", "deny rport=80,,81\n");

	put_text("fuzz_rule", "block", "deny name=block-1 op=connect,send remote=192.0.2.0/24 rport=443 for=10m");
	put_text("fuzz_rule", "block6", "deny name=block-2 op=connect,send remote=2001:db8::/32");
	put_text("fuzz_rule", "quarantine", "deny name=quarantine-4242 pid=4242");
	put_text("fuzz_rule", "throttle", "throttle name=throttle-4242 pid=4242 rate=1M per=program");
	put_text("fuzz_rule", "unnamed", "kill op=accept lport=22 uid=0-999 exe=/usr/sbin/*");
	put_text("fuzz_rule", "rt-clash", "log name=rt-2 comm=curl");
	put_text("fuzz_rule", "list-refused", "deny remote=@badnets");
	put_text("fuzz_rule", "default-refused", "default deny");

	put_text("fuzz_ctl", "flows", "{\"cmd\":\"flows\"}\n");
	put_text("fuzz_ctl", "kill", "{\"cmd\":\"kill\",\"flow\":\"CTCP1\"}\n{\"cmd\":\"kill\",\"flow\":\"CTCP1\"}\n");
	put_text("fuzz_ctl", "block", "{\"cmd\":\"block\",\"cidr\":\"192.0.2.0/24\",\"port\":\"8000-8080\",\"for\":\"10m\"}\n"
				      "{\"cmd\":\"policy\"}\n");
	put_text("fuzz_ctl", "block-unblock", "{\"cmd\":\"block\",\"cidr\":\"2001:db8::1\"}\r\n"
					      "{\"cmd\":\"unblock\",\"rule\":\"block-1\"}\r\n");
	put_text("fuzz_ctl", "quarantine", "{\"cmd\":\"quarantine\",\"pid\":1234}\n");
	put_text("fuzz_ctl", "throttle-flow", "{\"cmd\":\"throttle\",\"flow\":\"CTCP1\",\"rate\":\"1M\"}\n"
					      "{\"cmd\":\"throttle\",\"flow\":\"CUDP1\",\"rate\":\"1M\"}\n");
	put_text("fuzz_ctl", "throttle-pid", "{\"cmd\":\"throttle\",\"pid\":1234,\"rate\":\"512K\"}\n"
					     "{\"cmd\":\"throttle\",\"pid\":1234,\"rate\":\"1G\"}\n");
	put_text("fuzz_ctl", "policy", "{\"cmd\":\"policy\"}\n");
	put_text("fuzz_ctl", "policy-reload", "{\"cmd\":\"policy_reload\"}\n");
	put_text("fuzz_ctl", "metrics", "{\"cmd\":\"metrics\"}\n");
	/* Found by fuzz_ctl: an error text that is not UTF-8 (request bytes in jansson's message, or a name cut
	 * mid-character at the 600-byte limit) made an answer without "error". */
	put_text("fuzz_ctl", "error-not-utf8", "{\"cmd\":\"\\u\xc3\xa9" "00\"}\n");
	n = (size_t)snprintf(buf, sizeof(buf), "{\"cmd\":\"unblock\",\"rule\":\"x");
	for (int i = 0; i < 300; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\xc3\xa9");
	snprintf(buf + n, sizeof(buf) - n, "\"}\n");
	put_text("fuzz_ctl", "unblock-cut-utf8", buf);
	put_text("fuzz_ctl", "errors", "[1,2]\n{}\n{\"cmd\":7}\n{\"cmd\":\"nope\"}\n{\"cmd\":\"kill\"}\n"
				       "{\"cmd\":\"kill\",\"cmd\":\"flows\"}\n\n");
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_corpus DIR\n");
		return 2;
	}
	root = argv[1];
	mkdir(root, 0755);
	gen_req();
	gen_rsp();
	gen_rec();
	gen_policy();
	return 0;
}
