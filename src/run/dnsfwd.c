/*
 * dnsfwd.c: the DNS forwarder that answers at the --dns addresses inside the command's namespace.
 *
 * Why it exists: glibc's resolver (getaddrinfo, gethostbyname, getent, res_query, and so curl, python, ...)
 * lives inside libc.so since glibc 2.34 and calls socket/connect/sendmmsg/recvfrom through libc-internal
 * aliases, which no LD_PRELOAD library can interpose.  Its queries therefore reach the kernel of the
 * command's namespace, which has only loopback.  So, for each nameserver ADDR:
 *
 *   - mwrun adds a "local" route for ADDR on lo in the command's namespace (an AnyIP route: ADDR is
 *     delivered locally, but it is no interface address, so AI_ADDRCONFIG and getifaddrs see nothing new);
 *   - a forwarder process (mwrun --dns-forward, with the shim preloaded, in the command's network
 *     namespace) listens on ADDR:53 over UDP and TCP there, and sends each query on to ADDR with ordinary
 *     sockets, which the shim carries to mwinsd like any other.
 *
 * Programs whose own code makes the socket calls (dig, c-ares, node's dns.resolve) reach ADDR through the
 * shim directly; glibc's resolver reaches it through the forwarder, and then through the shim.  Either way
 * the query leaves through mwinsd, and nothing leaves the namespace by itself.
 *
 * UDP queries go upstream over UDP; if the upstream UDP socket fails or no answer comes within 1.5 s (the
 * channel does not carry UDP, or policy drops it) the query is asked again over TCP and the answer comes
 * back over UDP (truncated, with TC set, if it would not fit 512 bytes: the client then asks again over
 * TCP).  TCP connections are relayed
 * byte for byte.  A query that would come back to the forwarder itself (an upstream socket the shim did not
 * carry, so the kernel delivered it to our own listener) is detected and refused, so there is no loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "run.h"

#define FWD_JOBS 64
#define FWD_UDP_TIMEOUT_MS 1500   /* then the query is asked again over TCP (glibc waits 5 s) */
#define FWD_TCP_TIMEOUT_MS 4000
#define FWD_TCP_IDLE_MS 10000
#define FWD_BUF 16384
#define DNS_UDP_MAX 512

/* ------------------------------------------------------------------ addresses */

static int addr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len, uint16_t port)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*len = sizeof(*s6);
		return 0;
	}
	return -EINVAL;
}

static bool addr_same(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port && !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
	}
	return false;
}

/* ------------------------------------------------------------------ the local routes (in mwrun's child) */

int dns_local_routes(const struct run_cfg *cfg)
{
	int fd, i, err = 0;
	unsigned lo = if_nametoindex("lo");

	if (cfg->ndns == 0)
		return 0;
	if (!lo)
		return -ENODEV;
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	for (i = 0; i < cfg->ndns && !err; i++) {
		struct {
			struct nlmsghdr nh;
			struct rtmsg rt;
			char attrs[64];
		} req;
		struct {
			struct nlmsghdr nh;
			struct nlmsgerr e;
			char more[256];
		} ack;
		struct sockaddr_storage ss;
		socklen_t sl;
		struct rtattr *rta;
		const void *a;
		size_t alen;
		ssize_t n;

		if (addr_parse(cfg->dns[i], &ss, &sl, 53) < 0) {
			err = -EINVAL;
			break;
		}
		if (ss.ss_family == AF_INET) {
			a = &((struct sockaddr_in *)&ss)->sin_addr;
			alen = 4;
		} else {
			a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
			alen = 16;
		}
		memset(&req, 0, sizeof(req));
		req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
		req.nh.nlmsg_type = RTM_NEWROUTE;
		req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;
		req.nh.nlmsg_seq = (uint32_t)i + 1;
		req.rt.rtm_family = (unsigned char)ss.ss_family;
		req.rt.rtm_dst_len = (unsigned char)(alen * 8);
		req.rt.rtm_table = RT_TABLE_LOCAL;
		req.rt.rtm_protocol = RTPROT_BOOT;
		req.rt.rtm_scope = RT_SCOPE_HOST;
		req.rt.rtm_type = RTN_LOCAL;
		rta = (struct rtattr *)((char *)&req + NLMSG_ALIGN(req.nh.nlmsg_len));
		rta->rta_type = RTA_DST;
		rta->rta_len = (unsigned short)RTA_LENGTH(alen);
		memcpy(RTA_DATA(rta), a, alen);
		req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_ALIGN(rta->rta_len);
		rta = (struct rtattr *)((char *)&req + req.nh.nlmsg_len);
		rta->rta_type = RTA_OIF;
		rta->rta_len = (unsigned short)RTA_LENGTH(sizeof(int));
		memcpy(RTA_DATA(rta), &lo, sizeof(int));
		req.nh.nlmsg_len += RTA_ALIGN(rta->rta_len);
		if (send(fd, &req, req.nh.nlmsg_len, 0) < 0) {
			err = -errno;
			break;
		}
		n = recv(fd, &ack, sizeof(ack), 0);
		if (n < 0)
			err = -errno;
		else if ((size_t)n < NLMSG_LENGTH(sizeof(struct nlmsgerr)) || ack.nh.nlmsg_type != NLMSG_ERROR)
			err = -EPROTO;
		else if (ack.e.error && ack.e.error != -EEXIST)   /* EEXIST: already local (127.x, ::1) */
			err = ack.e.error;
	}
	close(fd);
	return err;
}

/* ------------------------------------------------------------------ the listeners (in the forwarder, before exec) */

int dnsfwd_listen(const struct run_cfg *cfg, int first_fd)
{
	int i;

	for (i = 0; i < cfg->ndns; i++) {
		struct sockaddr_storage ss;
		socklen_t sl;
		int types[2] = { SOCK_DGRAM, SOCK_STREAM }, t, on = 1;

		if (addr_parse(cfg->dns[i], &ss, &sl, 53) < 0)
			return -EINVAL;
		for (t = 0; t < 2; t++) {
			int fd = socket(ss.ss_family, types[t] | SOCK_CLOEXEC, 0), want = first_fd + 2 * i + t;

			if (fd < 0)
				return -errno;
			if (fd >= first_fd && fd < first_fd + 2 * MW_DNS_MAX) {
				close(fd);
				return -EMFILE;   /* would be clobbered by a later dup2 */
			}
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
			if (ss.ss_family == AF_INET6) {
				setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
				/* the address is a local route, not an interface address */
				setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &on, sizeof(on));
			} else {
				setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &on, sizeof(on));
			}
			if (bind(fd, (struct sockaddr *)&ss, sl) < 0 ||
			    (types[t] == SOCK_STREAM && listen(fd, 64) < 0)) {
				int e = -errno;

				close(fd);
				return e;
			}
			if (fd != want) {
				if (dup2(fd, want) < 0)
					return -errno;
				close(fd);
			}
			/* dup2 clears FD_CLOEXEC: the forwarder inherits want */
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ the forwarder (mwrun --dns-forward) */

enum job_kind { JOB_FREE, JOB_UDP, JOB_UDP_TCP, JOB_TCP };

struct job {
	enum job_kind kind;
	int ns;                          /* which nameserver / listener pair */
	int up;                          /* the upstream socket (through the shim) */
	int cl;                          /* JOB_TCP: the client's connection */
	struct sockaddr_storage client;  /* JOB_UDP*: where to answer */
	socklen_t clen;
	struct sockaddr_storage uplocal; /* the upstream socket's own address: loop detection */
	bool connected, up_eof, cl_eof;
	int64_t deadline;
	uint8_t *q;                      /* JOB_UDP*: the query; JOB_UDP_TCP: 2-byte length + query */
	size_t qlen, qoff;
	uint8_t *in;                     /* JOB_UDP_TCP: the answer being read; JOB_TCP: upstream -> client */
	size_t inlen, inoff;
	uint8_t *out;                    /* JOB_TCP: client -> upstream */
	size_t outlen, outoff;
};

struct fwd {
	int n;
	struct sockaddr_storage up[MW_DNS_MAX];
	socklen_t uplen[MW_DNS_MAX];
	int udp[MW_DNS_MAX], tcp[MW_DNS_MAX];
	struct job jobs[FWD_JOBS];
	int verbose;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void job_free(struct job *j)
{
	if (j->up >= 0)
		close(j->up);
	if (j->cl >= 0)
		close(j->cl);
	free(j->q);
	free(j->in);
	free(j->out);
	memset(j, 0, sizeof(*j));
	j->kind = JOB_FREE;
	j->up = j->cl = -1;
}

static struct job *job_new(struct fwd *f)
{
	for (int i = 0; i < FWD_JOBS; i++)
		if (f->jobs[i].kind == JOB_FREE)
			return &f->jobs[i];
	return NULL;
}

/* Is this source address one of our own upstream sockets (the kernel looped it back to us)? */
static struct job *job_by_uplocal(struct fwd *f, const struct sockaddr_storage *src)
{
	for (int i = 0; i < FWD_JOBS; i++)
		if (f->jobs[i].kind != JOB_FREE && f->jobs[i].up >= 0 && addr_same(&f->jobs[i].uplocal, src))
			return &f->jobs[i];
	return NULL;
}

/* A nonblocking upstream socket of type, connecting to nameserver ns.  Returns the fd or -errno. */
static int up_open(struct fwd *f, struct job *j, int type)
{
	socklen_t sl = sizeof(j->uplocal);
	int fd = socket(f->up[j->ns].ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&f->up[j->ns], f->uplen[j->ns]) < 0 && errno != EINPROGRESS) {
		int e = -errno;

		close(fd);
		return e;
	}
	memset(&j->uplocal, 0, sizeof(j->uplocal));
	if (getsockname(fd, (struct sockaddr *)&j->uplocal, &sl) < 0)
		memset(&j->uplocal, 0, sizeof(j->uplocal));
	return fd;
}

static void udp_answer(struct fwd *f, struct job *j, const uint8_t *a, size_t len)
{
	uint8_t tc[12];

	if (len < 12 || j->qlen < 2 || a[0] != j->q[j->kind == JOB_UDP_TCP ? 2 : 0] ||
	    a[1] != j->q[j->kind == JOB_UDP_TCP ? 3 : 1])
		return;   /* not an answer to this query */
	if (j->kind == JOB_UDP_TCP && len > DNS_UDP_MAX) {
		/* too big for plain UDP: the header alone, truncated, so the client asks over TCP */
		memcpy(tc, a, 12);
		tc[2] |= 0x02;
		memset(tc + 4, 0, 8);
		a = tc;
		len = 12;
	}
	sendto(f->udp[j->ns], a, len, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&j->client, j->clen);
}

/* The UDP upstream failed: ask over TCP instead. */
static void udp_to_tcp(struct fwd *f, struct job *j)
{
	uint8_t *q2 = malloc(j->qlen + 2);
	int fd;

	if (j->up >= 0) {
		close(j->up);
		j->up = -1;
	}
	if (!q2) {
		job_free(j);
		return;
	}
	q2[0] = (uint8_t)(j->qlen >> 8);
	q2[1] = (uint8_t)j->qlen;
	memcpy(q2 + 2, j->q, j->qlen);
	free(j->q);
	j->q = q2;
	j->qlen += 2;
	j->qoff = 0;
	j->kind = JOB_UDP_TCP;
	j->connected = false;
	fd = up_open(f, j, SOCK_STREAM);
	if (fd < 0) {
		job_free(j);
		return;
	}
	j->up = fd;
	j->deadline = now_ms() + FWD_TCP_TIMEOUT_MS;
}

static void on_udp_query(struct fwd *f, int ns)
{
	uint8_t buf[65536];
	struct sockaddr_storage src;
	socklen_t sl = sizeof(src);
	ssize_t n = recvfrom(f->udp[ns], buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&src, &sl);
	struct job *j;
	int fd;

	if (n < 12)
		return;
	j = job_by_uplocal(f, &src);
	if (j) {
		/* our own upstream query came back: the shim did not carry that socket */
		if (f->verbose)
			fprintf(stderr, "mwrun dns: upstream UDP is not carried by the channel; using TCP\n");
		if (j->kind == JOB_UDP)
			udp_to_tcp(f, j);
		else
			job_free(j);
		return;
	}
	j = job_new(f);
	if (!j)
		return;   /* busy: the client will ask again */
	j->up = j->cl = -1;
	j->ns = ns;
	j->client = src;
	j->clen = sl;
	j->q = malloc((size_t)n);
	if (!j->q)
		return;
	memcpy(j->q, buf, (size_t)n);
	j->qlen = (size_t)n;
	j->kind = JOB_UDP;
	j->deadline = now_ms() + FWD_UDP_TIMEOUT_MS;
	fd = up_open(f, j, SOCK_DGRAM);
	if (fd >= 0 && send(fd, j->q, j->qlen, MSG_NOSIGNAL) == (ssize_t)j->qlen) {
		j->up = fd;
		return;
	}
	if (fd >= 0)
		close(fd);
	udp_to_tcp(f, j);
}

static void on_tcp_accept(struct fwd *f, int ns)
{
	struct sockaddr_storage src;
	socklen_t sl = sizeof(src);
	int cl = accept4(f->tcp[ns], (struct sockaddr *)&src, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct job *j, *loop;

	if (cl < 0)
		return;
	loop = job_by_uplocal(f, &src);
	if (loop) {
		/* our own upstream connection came back to us: refuse it, and fail that job */
		if (f->verbose)
			fprintf(stderr, "mwrun dns: upstream TCP is not carried by the channel\n");
		close(cl);
		job_free(loop);
		return;
	}
	j = job_new(f);
	if (!j) {
		close(cl);
		return;
	}
	j->up = -1;
	j->cl = cl;
	j->ns = ns;
	j->kind = JOB_TCP;
	j->in = malloc(FWD_BUF);
	j->out = malloc(FWD_BUF);
	if (!j->in || !j->out) {
		job_free(j);
		return;
	}
	j->up = up_open(f, j, SOCK_STREAM);
	if (j->up < 0) {
		j->up = -1;
		job_free(j);
		return;
	}
	j->deadline = now_ms() + FWD_TCP_IDLE_MS;
}

/* Move bytes from fd `from` into buf, and from buf to fd `to`.  Returns -1 when the job must end. */
static int relay(int from, int to, uint8_t *buf, size_t *len, size_t *off, bool *eof, bool *progress)
{
	ssize_t n;

	if (!*eof && *len == 0) {
		n = recv(from, buf, FWD_BUF, MSG_DONTWAIT);
		if (n > 0) {
			*len = (size_t)n;
			*off = 0;
			*progress = true;
		} else if (n == 0) {
			*eof = true;
			shutdown(to, SHUT_WR);
			*progress = true;
		} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			return -1;
		}
	}
	while (*off < *len) {
		n = send(to, buf + *off, *len - *off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				break;
			return -1;
		}
		*off += (size_t)n;
		*progress = true;
	}
	if (*off == *len)
		*len = *off = 0;
	return 0;
}

static void job_step(struct fwd *f, struct job *j, short up_ev, short cl_ev)
{
	uint8_t buf[65536];
	ssize_t n;
	bool progress = false;

	switch (j->kind) {
	case JOB_UDP:
		if (up_ev & (POLLIN | POLLERR | POLLHUP)) {
			n = recv(j->up, buf, sizeof(buf), MSG_DONTWAIT);
			if (n > 0) {
				udp_answer(f, j, buf, (size_t)n);
				job_free(j);
			} else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
				udp_to_tcp(f, j);
			}
		}
		break;
	case JOB_UDP_TCP:
		if (!(up_ev & (POLLIN | POLLOUT | POLLERR | POLLHUP)))
			break;
		while (j->qoff < j->qlen) {
			n = send(j->up, j->q + j->qoff, j->qlen - j->qoff, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINPROGRESS ||
				    errno == ENOTCONN)
					return;
				job_free(j);
				return;
			}
			j->qoff += (size_t)n;
		}
		if (!j->in) {
			j->in = malloc(65536 + 2);
			if (!j->in) {
				job_free(j);
				return;
			}
		}
		for (;;) {
			size_t want = j->inoff < 2 ? 2 : 2 + (((size_t)j->in[0] << 8) | j->in[1]);

			if (j->inoff == want && want > 2) {
				udp_answer(f, j, j->in + 2, want - 2);
				job_free(j);
				return;
			}
			n = recv(j->up, j->in + j->inoff, want - j->inoff, MSG_DONTWAIT);
			if (n > 0) {
				j->inoff += (size_t)n;
				continue;
			}
			if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
				job_free(j);
			return;
		}
	case JOB_TCP:
		if (relay(j->cl, j->up, j->out, &j->outlen, &j->outoff, &j->cl_eof, &progress) < 0 ||
		    relay(j->up, j->cl, j->in, &j->inlen, &j->inoff, &j->up_eof, &progress) < 0) {
			job_free(j);
			return;
		}
		if (j->cl_eof && j->up_eof && !j->inlen && !j->outlen) {
			job_free(j);
			return;
		}
		if (progress)
			j->deadline = now_ms() + FWD_TCP_IDLE_MS;
		(void)cl_ev;
		break;
	case JOB_FREE:
		break;
	}
}

int dnsfwd_main(int argc, char **argv)
{
	static struct fwd f;
	struct pollfd pfd[2 * MW_DNS_MAX + 2 * FWD_JOBS];
	struct job *pj[2 * MW_DNS_MAX + 2 * FWD_JOBS];
	int i;

	signal(SIGPIPE, SIG_IGN);
	f.verbose = getenv("MWRUN_DNS_VERBOSE") != NULL;
	/* argv: mwrun --dns-forward FIRST_FD ADDR... */
	if (argc < 4 || argc - 3 > MW_DNS_MAX) {
		fprintf(stderr, "mwrun --dns-forward: internal mode, started by mwrun --dns\n");
		return 2;
	}
	f.n = argc - 3;
	for (i = 0; i < f.n; i++) {
		if (addr_parse(argv[3 + i], &f.up[i], &f.uplen[i], 53) < 0)
			return 2;
		f.udp[i] = atoi(argv[2]) + 2 * i;
		f.tcp[i] = f.udp[i] + 1;
		fcntl(f.udp[i], F_SETFD, FD_CLOEXEC);
		fcntl(f.tcp[i], F_SETFD, FD_CLOEXEC);
	}
	for (i = 0; i < FWD_JOBS; i++) {
		f.jobs[i].up = f.jobs[i].cl = -1;
		f.jobs[i].kind = JOB_FREE;
	}
	for (;;) {
		int n = 0, timeout = -1, r, k;
		int64_t now = now_ms();

		for (i = 0; i < f.n; i++) {
			pfd[n] = (struct pollfd){ .fd = f.udp[i], .events = POLLIN };
			pj[n++] = NULL;
			pfd[n] = (struct pollfd){ .fd = f.tcp[i], .events = POLLIN };
			pj[n++] = NULL;
		}
		for (i = 0; i < FWD_JOBS; i++) {
			struct job *j = &f.jobs[i];
			short ev;

			if (j->kind == JOB_FREE)
				continue;
			if (now >= j->deadline) {
				if (j->kind == JOB_UDP)
					udp_to_tcp(&f, j);   /* no UDP answer: ask over TCP */
				else
					job_free(j);
				if (j->kind == JOB_FREE)
					continue;
			}
			if (timeout < 0 || j->deadline - now < timeout)
				timeout = (int)(j->deadline - now);
			if (j->up >= 0) {
				ev = POLLIN;
				if (j->kind == JOB_UDP_TCP && j->qoff < j->qlen)
					ev |= POLLOUT;
				if (j->kind == JOB_TCP && (j->outlen || !j->connected))
					ev |= POLLOUT;
				if (j->kind == JOB_TCP && (j->inlen || j->up_eof))
					ev &= (short)~POLLIN;
				/* a side with nothing to wait for is left out: its POLLHUP would spin the loop */
				if (ev) {
					pfd[n] = (struct pollfd){ .fd = j->up, .events = ev };
					pj[n++] = j;
				}
			}
			if (j->cl >= 0) {
				ev = 0;
				if (!j->outlen && !j->cl_eof)
					ev |= POLLIN;
				if (j->inlen)
					ev |= POLLOUT;
				if (ev) {
					pfd[n] = (struct pollfd){ .fd = j->cl, .events = ev };
					pj[n++] = j;
				}
			}
		}
		r = poll(pfd, (nfds_t)n, timeout);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		for (k = 0; k < n; k++) {
			struct job *j = pj[k];

			if (!pfd[k].revents)
				continue;
			if (!j) {
				for (i = 0; i < f.n; i++) {
					if (pfd[k].fd == f.udp[i])
						on_udp_query(&f, i);
					else if (pfd[k].fd == f.tcp[i])
						on_tcp_accept(&f, i);
				}
				continue;
			}
			if (j->kind == JOB_FREE)
				continue;   /* ended earlier in this round */
			if (pfd[k].fd == j->up) {
				if (j->kind == JOB_TCP && (pfd[k].revents & POLLOUT))
					j->connected = true;
				job_step(&f, j, pfd[k].revents, 0);
			} else if (pfd[k].fd == j->cl) {
				job_step(&f, j, 0, pfd[k].revents);
			}
		}
	}
}
