/*
 * case-udp.c: UDP over IPv4 and IPv6 against the peer's UDP services (enum peer_udp_service).
 *
 * The data calls (sendto/recvfrom, sendmsg/recvmsg, sendmmsg/recvmmsg), connected UDP, the receive flags
 * (MSG_TRUNC, MSG_PEEK, MSG_DONTWAIT), SO_BROADCAST, readiness, ICMP port unreachable as ECONNREFUSED, and the
 * names a socket gets from bind and from an implicit bind. Addresses are printed with sa_desc ("inet:peer+0"), so
 * that "the reply came from where it was sent" shows without numbers.
 *
 * The peer and the cases are one hop apart on a veth: datagrams are neither lost nor reordered there, so waiting
 * for each echo before looking makes every count exact.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "conform.h"

static socklen_t full_len(int family)
{
	return family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

/* getsockname or getpeername, described. */
static void name_note(const char *key, int fd, bool peer)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	socklen_t len = sizeof(ss);
	struct sockaddr *sa = (struct sockaddr *)&ss;
	long r = res(peer ? getpeername(fd, sa, &len) : getsockname(fd, sa, &len));
	if (r < 0)
		note_res(key, r);
	else
		note("%s=%s:len%u", key, sa_desc(&ss, len), len);
}

static long send_to(int fd, int family, int service, const void *buf, size_t n)
{
	struct sockaddr_storage to;
	socklen_t len = peer_addr(family, service, &to);
	return res(sendto(fd, buf, n, 0, (struct sockaddr *)&to, len));
}

/* Waits up to 3 s until a datagram is queued; notes the readiness then, looked at with a zero timeout. */
static void await_dgram(const char *key, int fd)
{
	wait_events(fd, POLLIN, 3000);
	note("%s=%s", key, events_str(wait_events(fd, POLLIN | POLLOUT, 0)));
}

static long inq(int fd)
{
	int n = -1;
	long r = res(ioctl(fd, FIONREAD, &n));
	return r < 0 ? r : n;
}

/* Receives one datagram (waiting for it) and notes "key=LEN:SRC" and whether its bytes are the ones sent. */
static void recv_note(const char *key, int fd, const void *want, size_t wantlen)
{
	static char buf[70000];
	struct sockaddr_storage from;
	memset(&from, 0, sizeof(from));
	socklen_t flen = sizeof(from);
	long r = udp_recv(fd, buf, sizeof(buf), &from, &flen, 3000);
	if (r < 0) {
		note_res(key, r);
		expect(false, "%s: no datagram", key);
		return;
	}
	bool same = (size_t)r == wantlen && memcmp(buf, want, wantlen) == 0;
	note("%s=%ld:%s:%s", key, r, sa_desc(&from, flen), same ? "same" : "differs");
	expect(same, "%s: data differs", key);
}

static void udp_sendto(int family)
{
	int fd = udp_socket(family, 0);
	char buf[64];
	name_note("sockname_fresh", fd, false);
	note("fresh=%s", events_str(wait_events(fd, POLLIN | POLLOUT, 0)));
	expect_res("recv_empty", res(recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, NULL, NULL)), -EAGAIN);
	expect_res("send_noaddr", res(send(fd, "x", 1, 0)), -EDESTADDRREQ);
	name_note("peername", fd, true);

	expect_res("sendto", send_to(fd, family, PEER_UDP_ECHO, "hello", 5), 5);
	/* sendto bound the socket to the wildcard address and a port of the kernel's choice. */
	name_note("sockname_implicit", fd, false);
	await_dgram("arrived", fd);
	expect_res("fionread", inq(fd), 5);
	recv_note("recvfrom", fd, "hello", 5);
	note("drained=%s", events_str(wait_events(fd, POLLIN | POLLOUT, 0)));
	expect_res("fionread_empty", inq(fd), 0);

	/* Boundaries hold, and FIONREAD is the size of the next datagram only. */
	static char big[65536];
	pattern_fill((uint8_t *)big, 0, sizeof(big));
	expect_res("sendto_1", send_to(fd, family, PEER_UDP_ECHO, big, 1), 1);
	expect_res("sendto_100", send_to(fd, family, PEER_UDP_ECHO, big, 100), 100);
	expect_res("sendto_1000", send_to(fd, family, PEER_UDP_ECHO, big, 1000), 1000);
	await_dgram("three", fd);
	expect_res("fionread_first", inq(fd), 1);
	recv_note("recv_1", fd, big, 1);
	recv_note("recv_100", fd, big, 100);
	recv_note("recv_1000", fd, big, 1000);

	/* An empty datagram is a datagram. */
	expect_res("sendto_empty", send_to(fd, family, PEER_UDP_ECHO, "", 0), 0);
	await_dgram("empty_arrived", fd);
	expect_res("fionread_emptydgram", inq(fd), 0);
	recv_note("recv_empty_dgram", fd, "", 0);

	/* The largest datagram, fragmented on the way; one byte more does not fit in the 16-bit length. */
	size_t max = family == AF_INET ? 65507 : 65527;
	expect_res("sendto_max", send_to(fd, family, PEER_UDP_ECHO, big, max), (long)max);
	recv_note("recv_max", fd, big, max);
	expect_res("sendto_too_big", send_to(fd, family, PEER_UDP_ECHO, big, max + 1), -EMSGSIZE);

	/* A short address buffer is filled as far as it goes; the full length comes back. */
	expect_res("sendto_again", send_to(fd, family, PEER_UDP_ECHO, "again", 5), 5);
	struct sockaddr_storage from;
	memset(&from, 0, sizeof(from));
	socklen_t flen = 4;
	long r = udp_recv(fd, buf, sizeof(buf), &from, &flen, 3000);
	note("recvfrom_short_name=%s:len%u:family_%s", res_str(r), flen, from.ss_family == family ? "ok" : "other");
	expect(flen == full_len(family), "short name buffer: want the full length back");
	/* And no address at all is fine. */
	expect_res("sendto_noname", send_to(fd, family, PEER_UDP_ECHO, "nonam", 5), 5);
	wait_events(fd, POLLIN, 3000);
	expect_res("recvfrom_noname", res(recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, NULL, NULL)), 5);
	expect_res("read_write", res(write(fd, "x", 1)), -EDESTADDRREQ);
	close(fd);

	/* Bound explicitly to port 0: a port is chosen at bind. */
	fd = udp_socket(family, 0);
	struct sockaddr_storage any;
	memset(&any, 0, sizeof(any));
	any.ss_family = (sa_family_t)family;
	expect_res("bind_any", res(bind(fd, (struct sockaddr *)&any, full_len(family))), 0);
	name_note("sockname_bound", fd, false);
	expect_res("bind_again", res(bind(fd, (struct sockaddr *)&any, full_len(family))), -EINVAL);
	udp_probe("bound_echo", fd, family);
	close(fd);
}

CASE(udp_sendto_4) { udp_sendto(AF_INET); }
CASE(udp_sendto_6) { udp_sendto(AF_INET6); }

static void udp_msg(int family)
{
	int fd = udp_socket(family, 0);
	char m1[] = "msg", m2[] = "-parts";
	struct sockaddr_storage to;
	socklen_t tolen = peer_addr(family, PEER_UDP_ECHO, &to);
	struct iovec sv[2] = { { m1, 3 }, { m2, 6 } };
	struct msghdr mh = { .msg_name = &to, .msg_namelen = tolen, .msg_iov = sv, .msg_iovlen = 2 };
	expect_res("sendmsg", res(sendmsg(fd, &mh, 0)), 9);
	wait_events(fd, POLLIN, 3000);

	char in1[4], in2[16];
	struct sockaddr_storage name;
	memset(&name, 0, sizeof(name));
	struct iovec iv[2] = { { in1, sizeof(in1) }, { in2, sizeof(in2) } };
	struct msghdr rh = { .msg_name = &name, .msg_namelen = sizeof(name), .msg_iov = iv, .msg_iovlen = 2 };
	long r = res(recvmsg(fd, &rh, 0));
	note("recvmsg=%s:%s:len%u:flags=%s", res_str(r), sa_desc(&name, rh.msg_namelen), rh.msg_namelen,
	     rh.msg_flags ? "set" : "0");
	expect(r == 9 && memcmp(in1, "msg-", 4) == 0 && memcmp(in2, "parts", 5) == 0, "recvmsg: data");

	/* A buffer shorter than the datagram: the rest is lost, and msg_flags says so. */
	static const char twenty[] = "0123456789abcdefghij";
	expect_res("send20", send_to(fd, family, PEER_UDP_ECHO, twenty, 20), 20);
	wait_events(fd, POLLIN, 3000);
	char small[8];
	struct iovec sv1 = { small, sizeof(small) };
	rh = (struct msghdr){ .msg_name = &name, .msg_namelen = sizeof(name), .msg_iov = &sv1, .msg_iovlen = 1 };
	r = res(recvmsg(fd, &rh, 0));
	note("recvmsg_short=%s:trunc=%s", res_str(r), rh.msg_flags & MSG_TRUNC ? "yes" : "no");
	expect(r == 8 && (rh.msg_flags & MSG_TRUNC) && memcmp(small, twenty, 8) == 0, "short recvmsg");
	expect_res("rest_gone", res(recv(fd, small, sizeof(small), MSG_DONTWAIT)), -EAGAIN);

	/* MSG_TRUNC asks for the real length. */
	expect_res("send30", send_to(fd, family, PEER_UDP_ECHO, "0123456789abcdefghij0123456789", 30), 30);
	wait_events(fd, POLLIN, 3000);
	expect_res("recv_flag_trunc", res(recv(fd, small, sizeof(small), MSG_TRUNC)), 30);
	expect_res("send12", send_to(fd, family, PEER_UDP_ECHO, "twelve bytes", 12), 12);
	wait_events(fd, POLLIN, 3000);
	rh = (struct msghdr){ .msg_iov = &sv1, .msg_iovlen = 1 };
	r = res(recvmsg(fd, &rh, MSG_TRUNC));
	note("recvmsg_flag_trunc=%s:trunc=%s", res_str(r), rh.msg_flags & MSG_TRUNC ? "yes" : "no");

	/* MSG_PEEK leaves the datagram queued, whole even after a short peek. */
	expect_res("send_peek", send_to(fd, family, PEER_UDP_ECHO, "peeked", 6), 6);
	wait_events(fd, POLLIN, 3000);
	char pb[16];
	expect_res("peek_short", res(recv(fd, pb, 2, MSG_PEEK)), 2);
	expect_res("peek", res(recv(fd, pb, sizeof(pb), MSG_PEEK)), 6);
	expect_res("peek_fionread", inq(fd), 6);
	memset(&name, 0, sizeof(name));
	socklen_t nlen = sizeof(name);
	r = res(recvfrom(fd, pb, sizeof(pb), MSG_PEEK | MSG_TRUNC, (struct sockaddr *)&name, &nlen));
	note("peek_from=%s:%s", res_str(r), sa_desc(&name, nlen));
	expect_res("recv_after_peek", res(recv(fd, pb, sizeof(pb), 0)), 6);
	expect(memcmp(pb, "peeked", 6) == 0, "peeked data");

	/* MSG_DONTWAIT on a blocking socket, and the same through SO_RCVTIMEO. */
	expect_res("dontwait", res(recv(fd, pb, sizeof(pb), MSG_DONTWAIT)), -EAGAIN);
	expect_res("recvmsg_dontwait", res(recvmsg(fd, &rh, MSG_DONTWAIT)), -EAGAIN);
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
	expect_res("rcvtimeo", res(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv))), 0);
	expect_res("recv_timeout", res(recv(fd, pb, sizeof(pb), 0)), -EAGAIN);

	/* O_NONBLOCK. */
	expect_res("setfl", res(fcntl(fd, F_SETFL, O_NONBLOCK)), 0);
	expect_res("recv_nonblock", res(recv(fd, pb, sizeof(pb), 0)), -EAGAIN);
	udp_probe("nonblock_echo", fd, family);
	close(fd);
}

CASE(udp_msg_4) { udp_msg(AF_INET); }
CASE(udp_msg_6) { udp_msg(AF_INET6); }

/* sendmmsg and recvmmsg as libc's wrappers make them, or through libc's syscall() function, as libuv does. */
static bool mmsg_via_syscall;

static int do_sendmmsg(int fd, struct mmsghdr *v, unsigned n, int flags)
{
	return mmsg_via_syscall ? (int)syscall(SYS_sendmmsg, fd, v, n, flags) : sendmmsg(fd, v, n, flags);
}

static int do_recvmmsg(int fd, struct mmsghdr *v, unsigned n, int flags)
{
	return mmsg_via_syscall ? (int)syscall(SYS_recvmmsg, fd, v, n, flags, NULL) : recvmmsg(fd, v, n, flags, NULL);
}

static void udp_mmsg(int family)
{
	enum { N = 4 };
	int fd = udp_socket(family, 0);
	struct sockaddr_storage to;
	socklen_t tolen = peer_addr(family, PEER_UDP_ECHO, &to);
	static uint8_t out[N][64], in[N][128];
	struct iovec ov[N], iv[N];
	struct mmsghdr sm[N], rm[N];
	struct sockaddr_storage names[N];
	memset(sm, 0, sizeof(sm));
	memset(rm, 0, sizeof(rm));
	memset(names, 0, sizeof(names));
	for (int i = 0; i < N; i++) {
		pattern_fill(out[i], (uint64_t)i * 1000, sizeof(out[i]));
		ov[i] = (struct iovec){ out[i], (size_t)(10 * (i + 1)) };
		sm[i].msg_hdr =
			(struct msghdr){ .msg_name = &to, .msg_namelen = tolen, .msg_iov = &ov[i], .msg_iovlen = 1 };
		iv[i] = (struct iovec){ in[i], sizeof(in[i]) };
		rm[i].msg_hdr = (struct msghdr){
			.msg_name = &names[i], .msg_namelen = sizeof(names[i]), .msg_iov = &iv[i], .msg_iovlen = 1
		};
	}
	expect_res("recvmmsg_empty", res(do_recvmmsg(fd, rm, N, MSG_DONTWAIT)), -EAGAIN);
	expect_res("sendmmsg", res(do_sendmmsg(fd, sm, N, 0)), N);
	note("sent_lens=%u,%u,%u,%u", sm[0].msg_len, sm[1].msg_len, sm[2].msg_len, sm[3].msg_len);
	/* Blocking, without MSG_WAITFORONE: returns once all N are in. */
	expect_res("recvmmsg", res(do_recvmmsg(fd, rm, N, 0)), N);
	for (int i = 0; i < N; i++) {
		bool same = rm[i].msg_len == (unsigned)(10 * (i + 1)) && memcmp(in[i], out[i], rm[i].msg_len) == 0;
		note("msg%d=%u:%s:%s:flags=%s", i, rm[i].msg_len, sa_desc(&names[i], rm[i].msg_hdr.msg_namelen),
		     same ? "same" : "differs", rm[i].msg_hdr.msg_flags ? "set" : "0");
		expect(same, "msg%d: data", i);
	}
	expect_res("recvmmsg_drained", res(do_recvmmsg(fd, rm, N, MSG_DONTWAIT)), -EAGAIN);

	/* Connected: no names. One short buffer among them gets MSG_TRUNC. */
	struct sockaddr_storage pa;
	socklen_t palen = peer_addr(family, PEER_UDP_ECHO, &pa);
	int c = udp_socket(family, 0);
	expect_res("connect", res(connect(c, (struct sockaddr *)&pa, palen)), 0);
	for (int i = 0; i < N; i++) {
		sm[i].msg_hdr.msg_name = NULL;
		sm[i].msg_hdr.msg_namelen = 0;
		rm[i].msg_hdr.msg_name = NULL;
		rm[i].msg_hdr.msg_namelen = 0;
		rm[i].msg_len = 0;
	}
	iv[1].iov_len = 5;
	expect_res("sendmmsg_connected", res(do_sendmmsg(c, sm, 3, 0)), 3);
	expect_res("recvmmsg_connected", res(do_recvmmsg(c, rm, 3, 0)), 3);
	note("lens=%u,%u,%u trunc=%s,%s,%s", rm[0].msg_len, rm[1].msg_len, rm[2].msg_len,
	     rm[0].msg_hdr.msg_flags & MSG_TRUNC ? "yes" : "no", rm[1].msg_hdr.msg_flags & MSG_TRUNC ? "yes" : "no",
	     rm[2].msg_hdr.msg_flags & MSG_TRUNC ? "yes" : "no");
	close(c);
	close(fd);
}

CASE(udp_mmsg_4) { udp_mmsg(AF_INET); }
CASE(udp_mmsg_6) { udp_mmsg(AF_INET6); }
CASE(udp_mmsg_syscall_4)
{
	mmsg_via_syscall = true;
	udp_mmsg(AF_INET);
}

static void udp_connected(int family)
{
	struct sockaddr_storage pa;
	socklen_t palen = peer_addr(family, PEER_UDP_ECHO, &pa);
	int fd = udp_socket(family, 0);
	char buf[64];
	expect_res("connect", res(connect(fd, (struct sockaddr *)&pa, palen)), 0);
	name_note("peername", fd, true);
	name_note("sockname", fd, false);
	note("idle=%s", events_str(wait_events(fd, POLLIN | POLLOUT, 0)));

	expect_res("send", res(send(fd, "conn", 4, 0)), 4);
	wait_events(fd, POLLIN, 3000);
	expect_res("recv", res(recv(fd, buf, sizeof(buf), 0)), 4);
	expect_res("write", res(write(fd, "written", 7)), 7);
	wait_events(fd, POLLIN, 3000);
	expect_res("read", res(read(fd, buf, sizeof(buf))), 7);
	expect_res("sendto_null", res(sendto(fd, "tonull", 6, 0, NULL, 0)), 6);
	recv_note("recvfrom", fd, "tonull", 6);
	/* A connected UDP socket may still name a destination. */
	expect_res("sendto_addr", send_to(fd, family, PEER_UDP_ECHO, "toaddr", 6), 6);
	recv_note("recvfrom_addr", fd, "toaddr", 6);

	/* Connected to PEER_UDP_OTHER, whose replies come from another port: the kernel drops them. */
	struct sockaddr_storage oa;
	socklen_t oalen = peer_addr(family, PEER_UDP_OTHER, &oa);
	expect_res("reconnect", res(connect(fd, (struct sockaddr *)&oa, oalen)), 0);
	name_note("peername_other", fd, true);
	expect_res("send_other", res(send(fd, "other", 5, 0)), 5);
	unsigned ev = wait_events(fd, POLLIN, 300);
	note("reply_from_other_port=%s", ev & POLLIN ? "delivered" : "dropped");
	expect_res("recv_other", res(recv(fd, buf, sizeof(buf), MSG_DONTWAIT)), -EAGAIN);

	/* AF_UNSPEC dissolves the association. */
	struct sockaddr unspec = { .sa_family = AF_UNSPEC };
	expect_res("disconnect", res(connect(fd, &unspec, sizeof(unspec))), 0);
	expect_res("peername_after", res(getpeername(fd, (struct sockaddr *)&pa, &palen)), -ENOTCONN);
	expect_res("send_after", res(send(fd, "x", 1, 0)), -EDESTADDRREQ);
	/* Unconnected, the other port's reply is taken, from where it came. */
	expect_res("sendto_other", send_to(fd, family, PEER_UDP_OTHER, "other", 5), 5);
	recv_note("recvfrom_other", fd, "other", 5);
	close(fd);
}

CASE(udp_connected_4) { udp_connected(AF_INET); }
CASE(udp_connected_6) { udp_connected(AF_INET6); }

/* SO_ERROR as -errno, so that it prints as a name. */
static long so_err(int fd)
{
	long v = sockopt_int(fd, SOL_SOCKET, SO_ERROR);
	return v > 0 ? -v : v;
}

/* Waits for the ICMP error to reach the socket (POLLERR comes whatever is asked), then notes the readiness. */
static void await_error(const char *key, int fd)
{
	wait_events(fd, POLLIN, 3000);
	note("%s=%s", key, events_str(wait_events(fd, POLLIN | POLLOUT, 0)));
}

static void udp_refused(int family)
{
	struct sockaddr_storage ca;
	socklen_t calen = peer_addr(family, PEER_CLOSED, &ca);
	int fd = udp_socket(family, 0);
	char buf[16];
	expect_res("connect", res(connect(fd, (struct sockaddr *)&ca, calen)), 0);
	expect_res("send1", res(send(fd, "x", 1, 0)), 1);
	await_error("revents1", fd);
	expect_res("recv1", res(recv(fd, buf, sizeof(buf), 0)), -ECONNREFUSED);
	expect_res("recv1_again", res(recv(fd, buf, sizeof(buf), MSG_DONTWAIT)), -EAGAIN);
	note("revents1_after=%s", events_str(wait_events(fd, POLLIN | POLLOUT, 0)));

	expect_res("send2", res(send(fd, "x", 1, 0)), 1);
	await_error("revents2", fd);
	note_res("send2_again", res(send(fd, "y", 1, 0)));
	note_res("so_error2", so_err(fd));

	/* Should that send have gone out after all, its ICMP must not spill into the SO_ERROR round. */
	sleep_ms(100);
	recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	so_err(fd);
	expect_res("send3", res(send(fd, "x", 1, 0)), 1);
	await_error("revents3", fd);
	expect_res("so_error3", so_err(fd), -ECONNREFUSED);
	expect_res("so_error3_again", so_err(fd), 0);
	note("revents3_after=%s", events_str(wait_events(fd, POLLIN | POLLOUT, 0)));
	close(fd);

	/* Unconnected, the same ICMP error is not reported. */
	fd = udp_socket(family, 0);
	expect_res("sendto_closed", send_to(fd, family, PEER_CLOSED, "x", 1), 1);
	unsigned ev = wait_events(fd, POLLIN, 300);
	note("unconnected_revents=%s", events_str(ev));
	expect_res("unconnected_recv", res(recv(fd, buf, sizeof(buf), MSG_DONTWAIT)), -EAGAIN);
	expect_res("unconnected_so_error", so_err(fd), 0);
	udp_probe("still_works", fd, family);
	close(fd);
}

CASE(udp_refused_4) { udp_refused(AF_INET); }
CASE(udp_refused_6) { udp_refused(AF_INET6); }

/* With IP_RECVERR an unconnected socket hears of ICMP errors too, as a pending error that the next send or
 * receive returns.  (The kernel also queues the error for MSG_ERRQUEUE, which mwcomms does not carry.) */
CASE(udp_recverr_unconnected_4)
{
	int fd = udp_socket(AF_INET, 0), one = 1;
	char buf[16];
	expect_res("recverr", res(setsockopt(fd, IPPROTO_IP, IP_RECVERR, &one, sizeof(one))), 0);
	expect_res("sendto1", send_to(fd, AF_INET, PEER_CLOSED, "x", 1), 1);
	unsigned ev = wait_events(fd, POLLIN, 3000);
	note("revents1=%s", events_str(ev));
	expect(ev != 0, "no ICMP error reached the socket");
	expect_res("sendto2", send_to(fd, AF_INET, PEER_CLOSED, "x", 1), -ECONNREFUSED);
	expect_res("so_error", so_err(fd), 0);
	expect_res("recv", res(recv(fd, buf, sizeof(buf), MSG_DONTWAIT)), -EAGAIN);
	close(fd);
}

CASE(udp_broadcast_4)
{
	int fd = udp_socket(AF_INET, 0);
	/* The peer's subnet's broadcast address (the suite's topology is a /24), and the limited broadcast. */
	struct sockaddr_in bc = { .sin_family = AF_INET, .sin_port = htons(peer_port(PEER_CLOSED)) };
	bc.sin_addr.s_addr = conform_ctx.peer4.s_addr | htonl(0xff);
	struct sockaddr_in lb = { .sin_family = AF_INET, .sin_port = htons(peer_port(PEER_CLOSED)),
		                  .sin_addr.s_addr = htonl(INADDR_BROADCAST) };
	expect_res("default", sockopt_int(fd, SOL_SOCKET, SO_BROADCAST), 0);
	expect_res("subnet_without", res(sendto(fd, "b", 1, 0, (struct sockaddr *)&bc, sizeof(bc))), -EACCES);
	/* Where the limited broadcast goes depends on the routes: whatever the kernel says, without and with. */
	note_res("limited_without", res(sendto(fd, "b", 1, 0, (struct sockaddr *)&lb, sizeof(lb))));
	int one = 1, zero = 0;
	expect_res("set", res(setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one))), 0);
	expect_res("get", sockopt_int(fd, SOL_SOCKET, SO_BROADCAST), 1);
	expect_res("subnet_with", res(sendto(fd, "b", 1, 0, (struct sockaddr *)&bc, sizeof(bc))), 1);
	note_res("limited_with", res(sendto(fd, "b", 1, 0, (struct sockaddr *)&lb, sizeof(lb))));
	expect_res("clear", res(setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &zero, sizeof(zero))), 0);
	expect_res("get_cleared", sockopt_int(fd, SOL_SOCKET, SO_BROADCAST), 0);
	expect_res("subnet_cleared", res(sendto(fd, "b", 1, 0, (struct sockaddr *)&bc, sizeof(bc))), -EACCES);
	/* Connecting to a broadcast address needs it too. */
	expect_res("connect_without", res(connect(fd, (struct sockaddr *)&bc, sizeof(bc))), -EACCES);
	udp_probe("echo", fd, AF_INET);
	close(fd);
}

static void udp_poll(int family)
{
	int fd = udp_socket(family, 0);
	struct sockaddr_storage any;
	memset(&any, 0, sizeof(any));
	any.ss_family = (sa_family_t)family;
	if (bind(fd, (struct sockaddr *)&any, full_len(family)) < 0)
		setup_fail("bind: %s", errno_name(errno));
	int lt = epoll_create1(EPOLL_CLOEXEC), et = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.fd = fd };
	expect_res("epoll_lt_add", res(epoll_ctl(lt, EPOLL_CTL_ADD, fd, &ev)), 0);
	ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
	expect_res("epoll_et_add", res(epoll_ctl(et, EPOLL_CTL_ADD, fd, &ev)), 0);

#define LOOK(key)                                                                                                  \
	do {                                                                                                       \
		struct epoll_event out[2];                                                                         \
		int n1 = epoll_wait(lt, out, 2, 0);                                                                \
		unsigned e1 = n1 > 0 ? out[0].events : 0;                                                          \
		int n2 = epoll_wait(et, out, 2, 0);                                                                \
		unsigned e2 = n2 > 0 ? out[0].events : 0;                                                          \
		fd_set r, w;                                                                                       \
		FD_ZERO(&r);                                                                                       \
		FD_ZERO(&w);                                                                                       \
		FD_SET(fd, &r);                                                                                    \
		FD_SET(fd, &w);                                                                                    \
		struct timeval tz = { 0, 0 };                                                                      \
		int ns = select(fd + 1, &r, &w, NULL, &tz);                                                        \
		note("%s=poll:%s,lt:%d:%s,et:%d:%s,select:%d:%s%s", key,                                           \
		     events_str(wait_events(fd, POLLIN | POLLOUT, 0)), n1, events_str(e1), n2, events_str(e2), ns, \
		     FD_ISSET(fd, &r) ? "r" : "", FD_ISSET(fd, &w) ? "w" : "");                                    \
	} while (0)

	LOOK("idle");
	LOOK("idle_again");
	expect_res("send1", send_to(fd, family, PEER_UDP_ECHO, "one", 3), 3);
	wait_events(fd, POLLIN, 3000);
	LOOK("one_queued");
	LOOK("one_queued_again");
	expect_res("send2", send_to(fd, family, PEER_UDP_ECHO, "two", 3), 3);
	/* Take the first, then wait for the second to be there. */
	char buf[16];
	expect_res("recv1", res(recv(fd, buf, sizeof(buf), 0)), 3);
	wait_events(fd, POLLIN, 3000);
	LOOK("second_arrived");
	expect_res("recv2", res(recv(fd, buf, sizeof(buf), 0)), 3);
	LOOK("drained");
#undef LOOK
	close(lt);
	close(et);
	close(fd);
}

CASE(udp_poll_4) { udp_poll(AF_INET); }
CASE(udp_poll_6) { udp_poll(AF_INET6); }

/* An IPv6 socket talks to IPv4 peers through v4-mapped addresses, unless IPV6_V6ONLY. */
CASE(udp_mapped_6)
{
	int fd = udp_socket(AF_INET6, 0);
	struct sockaddr_in6 m = { .sin6_family = AF_INET6, .sin6_port = htons(peer_port(PEER_UDP_ECHO)) };
	m.sin6_addr.s6_addr[10] = 0xff;
	m.sin6_addr.s6_addr[11] = 0xff;
	memcpy(&m.sin6_addr.s6_addr[12], &conform_ctx.peer4, 4);
	expect_res("v6only", sockopt_int(fd, IPPROTO_IPV6, IPV6_V6ONLY), 0);
	expect_res("sendto_mapped", res(sendto(fd, "mapped", 6, 0, (struct sockaddr *)&m, sizeof(m))), 6);
	name_note("sockname", fd, false);
	recv_note("recvfrom_mapped", fd, "mapped", 6);
	expect_res("connect_mapped", res(connect(fd, (struct sockaddr *)&m, sizeof(m))), 0);
	name_note("peername", fd, true);
	name_note("sockname_connected", fd, false);
	udp_probe("connected_echo", fd, 0);
	close(fd);

	fd = udp_socket(AF_INET6, 0);
	int one = 1;
	expect_res("set_v6only", res(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))), 0);
	note_res("sendto_mapped_v6only", res(sendto(fd, "mapped", 6, 0, (struct sockaddr *)&m, sizeof(m))));
	note_res("connect_mapped_v6only", res(connect(fd, (struct sockaddr *)&m, sizeof(m))));
	udp_probe("v6only_echo6", fd, AF_INET6);
	close(fd);
}

struct udp_blocked {
	int fd;
	long r;
	int tid; /* thread_announce */
};

static void *udp_blocked_recv(void *arg)
{
	struct udp_blocked *b = arg;
	char buf[16];
	thread_announce(&b->tid);
	b->r = res(recv(b->fd, buf, sizeof(buf), 0));
	return NULL;
}

/*
 * shutdown on UDP: programs use SHUT_RD to wake a thread blocked in recvfrom. On an unconnected socket the kernel
 * answers ENOTCONN and still wakes it, with 0. On a connected one SHUT_WR makes send fail with EPIPE.
 */
CASE(udp_shutdown_4)
{
	int fd = udp_socket(AF_INET, 0);
	struct sockaddr_in any = { .sin_family = AF_INET };
	if (bind(fd, (struct sockaddr *)&any, sizeof(any)) < 0)
		setup_fail("bind: %s", errno_name(errno));
	struct udp_blocked b = { .fd = fd, .r = -EINPROGRESS };
	pthread_t t;
	if (pthread_create(&t, NULL, udp_blocked_recv, &b) != 0)
		setup_fail("pthread_create");
	if (!wait_blocked(&b.tid, 3000))
		setup_fail("the thread did not block in recv within 3 s");
	expect_res("shutdown_rd_unconnected", res(shutdown(fd, SHUT_RD)), -ENOTCONN);
	int64_t deadline = now_ms() + 2000;
	while (b.r == -EINPROGRESS && now_ms() < deadline)
		sleep_ms(10);
	if (b.r == -EINPROGRESS) {
		/* Left blocked: the rest of the case goes on beside it, and _exit ends it. */
		note("blocked_recv=still_blocked");
		expect(false, "SHUT_RD did not wake the blocked recv");
	} else {
		pthread_join(t, NULL);
		note_res("blocked_recv", b.r);
		note("revents=%s", events_str(wait_events(fd, POLLIN | POLLOUT | POLLRDHUP, 0)));
		char c;
		note_res("recv_after", res(recv(fd, &c, 1, MSG_DONTWAIT)));
		close(fd);
	}

	fd = udp_socket(AF_INET, 0);
	struct sockaddr_storage pa;
	socklen_t len = peer_addr(AF_INET, PEER_UDP_ECHO, &pa);
	expect_res("connect", res(connect(fd, (struct sockaddr *)&pa, len)), 0);
	udp_probe("echo", fd, 0);
	expect_res("shutdown_wr", res(shutdown(fd, SHUT_WR)), 0);
	note_res("send_after_wr", res(send(fd, "x", 1, MSG_NOSIGNAL)));
	note("revents_wr=%s", events_str(wait_events(fd, POLLIN | POLLOUT | POLLRDHUP, 0)));
	expect_res("shutdown_rd", res(shutdown(fd, SHUT_RD)), 0);
	char c;
	note_res("recv_after_rd", res(recv(fd, &c, 1, MSG_DONTWAIT)));
	note("revents_rdwr=%s", events_str(wait_events(fd, POLLIN | POLLOUT | POLLRDHUP, 0)));
	close(fd);
}

/* A non-blocking unconnected sender floods a receiver that never reads (the blackhole: world drops it, no
 * ICMP comes back).  The kernel sends every datagram (at most a full send buffer now and then: EAGAIN, then
 * POLLOUT again); a sender that gets EAGAIN and never POLLOUT again has stalled for good.  Bounded: 20,000
 * datagrams, and 5 s of waiting for POLLOUT at any one time. */
CASE(udp_flood_nonblocking)
{
	static char kb[1024];
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9), .sin_addr = conform_ctx.blackhole4 };
	int fd = udp_socket(AF_INET, SOCK_NONBLOCK), sent = 0;
	const char *how = "all";

	while (sent < 20000) {
		long r = res(sendto(fd, kb, sizeof(kb), 0, (struct sockaddr *)&to, sizeof(to)));

		if (r == (long)sizeof(kb)) {
			sent++;
		} else if (r == -EAGAIN) {
			if (!(wait_events(fd, POLLOUT, 5000) & POLLOUT)) {
				how = "stalled";
				break;
			}
		} else {
			note_res("flood_error", r);
			how = "error";
			break;
		}
	}
	note("flood=%s", how);
	expect(sent == 20000, "flood: sent %d of 20000 datagrams", sent);
	close(fd);
}
