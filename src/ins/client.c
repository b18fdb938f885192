/*
 * client.c: the control channel, mwinsd's side.  Accepts protected processes on the rendezvous socket,
 * reads their requests, and enforces the protocol's framing rules before anything else sees a message:
 * exact size, version, HELLO first, descriptors only where the command takes one.  A client that breaks a
 * rule is disconnected; the others are not affected.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "ins.h"
#include "mwlib.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

void client_reap(void)
{
	struct list *l, *n;

	for (l = ins.clients.next; l != &ins.clients; l = n) {
		struct ins_client *c = container_of(l, struct ins_client, link);

		n = l->next;
		if (!c->dead)
			continue;
		list_del(&c->link);
		ins.nclients--;
		sock_client_gone(c);
		while (c->q_len) {
			struct ins_rsp_q *e = &c->q[c->q_head];

			if (e->fd >= 0)
				close(e->fd);
			c->q_head = (c->q_head + 1) % c->q_cap;
			c->q_len--;
		}
		free(c->q);
		if (c->group) {
			registry_client_del(c);
			if (--c->group->nclients == 0)
				sock_group_orphaned(c->group);
			group_put_if_unused(c->group);
		}
		if (c->pidfd >= 0)
			close(c->pidfd);
		proc_put(c->proc);
		close(c->ev.fd);
		free(c);
	}
}

/* The network namespace of the client, checked against pid reuse when the kernel gives us a pidfd. */
static int client_netns(struct ins_client *c, uint64_t *netns)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)c->pid);
	if (stat(path, &st) < 0)
		return -errno;
	if (c->pidfd >= 0 && syscall(SYS_pidfd_send_signal, c->pidfd, 0, NULL, 0) < 0 && errno == ESRCH)
		return -ESRCH; /* the pid we just looked up may belong to someone else now */
	*netns = (uint64_t)st.st_ino;
	return 0;
}

static uint32_t client_count_netns(uint64_t netns)
{
	uint32_t n = 0;

	for (struct list *l = ins.clients.next; l != &ins.clients; l = l->next)
		n += container_of(l, struct ins_client, link)->netns == netns;
	return n;
}

/* The inode of /proc/PID/ns/pid (PID's own PID namespace), 0 if it can't be read. */
static uint64_t pidns_of(pid_t pid)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	return stat(path, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/* Who the client is, from the kernel's SCM_CREDENTIALS on its first message: the sender's own pid, and ids.
 * That is SO_PEERCRED's connector, except when mwrun's gate made the connect for a protected program
 * (src/run/gate.c): the connection is then the program's, and so is every record made for it.  A sender
 * can name a pid not its own only with CAP_SYS_ADMIN over its PID namespace's owner, which a program under
 * mwrun has only over namespaces it made itself: so another pid is taken only when it lives in the PID
 * namespace whose init made the connect (the gate's), where no program can lie.  Returns 0, or -errno when
 * the sender is gone. */
static int client_identify(struct ins_client *c, const struct ucred *cred)
{
	int off = 0, pidfd;
	uint64_t netns, ns;
	pid_t was = c->pid;

	/* Credentials cost every message a reference: they are wanted on the first one only. */
	setsockopt(c->ev.fd, SOL_SOCKET, SO_PASSCRED, &off, sizeof(off));
	if (cred->pid <= 0 || cred->pid == c->pid)
		return 0;
	ns = pidns_of(cred->pid);
	if (!ns || ns != pidns_of(c->pid) || proc_vpid(c->pid) != 1) {
		ins_log(0, "client pid %d: its claim to be pid %d refused (not in the PID namespace of the process "
			   "that connected it)", (int)c->pid, (int)cred->pid);
		return 0;
	}
	pidfd = (int)syscall(SYS_pidfd_open, cred->pid, 0);
	if (pidfd < 0 && errno == ESRCH)
		return -ESRCH;
	c->pid = cred->pid;
	c->uid = cred->uid;
	c->gid = cred->gid;
	if (c->pidfd >= 0)
		close(c->pidfd);
	c->pidfd = pidfd;
	if (client_netns(c, &netns) < 0)
		return -ESRCH;
	c->netns = netns;
	ins_log(2, "client pid %d: connected for it by pid %d", (int)c->pid, (int)was);
	return 0;
}

static void client_hello(struct ins_client *c, const struct mw_req *q, struct mw_rsp *r, int *rfd)
{
	uint64_t netns = 0;
	int err, fd;
	char path[64];
	ssize_t n;

	(void)q;
	(void)err;
	netns = c->netns;
	c->group = group_get(netns, ins.cfg.nslots);
	if (!c->group) {
		r->ret = -ENOMEM;
		return;
	}
	c->group->nclients++;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)c->pid);
	n = readlink(path, c->exe, sizeof(c->exe) - 1);
	c->exe[n > 0 ? n : 0] = 0;
	c->proc = proc_get(c->pid, c->uid, c->gid, c->pidfd);
	registry_client_add(c);
	fd = dup(c->group->memfd);
	if (fd < 0) {
		r->ret = -errno;
		return;
	}
	r->u.hello.page_size = (uint32_t)mw_page_size(c->group->nslots);
	r->u.hello.nslots = c->group->nslots;
	r->u.hello.group = (uint32_t)netns;
	r->ret = 0;
	*rfd = fd;
}

static void client_read(struct ins_client *c)
{
	/* A bounded batch per wakeup, so one chatty client can't starve the rest.  Up to MW_RX_MAX messages a
	 * call: a batch of requests costs one read, and a read that comes back short found the queue empty, with
	 * no further call to hear EAGAIN. */
	for (int budget = 64; budget > 0 && !c->dead;) {
		struct mw_req q[MW_RX_MAX];
		struct mw_rx rx[MW_RX_MAX];
		int want = budget < MW_RX_MAX ? budget : MW_RX_MAX, got;

		for (int i = 0; i < want; i++)
			rx[i] = (struct mw_rx){ .buf = &q[i], .len = sizeof(q[i]) };
		got = mw_recv_many(c->ev.fd, rx, want, MSG_DONTWAIT);
		if (got == -EAGAIN || got == -EINTR)
			return; /* level-triggered: an interrupted read comes back */
		if (got <= 0) {
			client_kill(c, "receive error");
			return;
		}
		for (int i = 0; i < got; i++) {
			if (c->dead) {
				/* killed by an earlier message of this read: the rest are dropped, their fds closed */
			} else if (rx[i].n == 0) {
				client_kill(c, "hung up");
			} else if (!c->group && client_identify(c, &rx[i].cred) < 0) {
				client_kill(c, "its sender is gone");
			} else if ((size_t)rx[i].n == sizeof(q[i]) && q[i].version != MW_PROTO_VERSION) {
				ins_log(0, "client pid %d speaks protocol version %u, this mwinsd %d: the shim and mwinsd "
					   "must come from one build", (int)c->pid, q[i].version, MW_PROTO_VERSION);
				client_kill(c, "another protocol version");
			} else if (req_frame_check(&q[i], (size_t)rx[i].n, rx[i].fd >= 0, rx[i].truncated,
						   c->group != NULL)) {
				client_kill(c, "protocol violation");
			} else if (!(q[i].flags & MW_REQ_IDLE) || !idle_defer(c, &q[i])) {
				client_exec(c, &q[i], rx[i].fd);
				continue; /* the fd is the handler's */
			}
			if (rx[i].fd >= 0)
				close(rx[i].fd);
		}
		if (got < want)
			return;
		budget -= got;
	}
	/* Budget used up with input possibly left: level-triggered epoll brings us back. */
}

void client_exec(struct ins_client *c, const struct mw_req *q, int fd)
{
	struct mw_rsp r;
	int rfd = -1;

	memset(&r, 0, sizeof(r));
	r.version = MW_PROTO_VERSION;
	r.cmd = q->cmd;
	r.req_id = q->req_id;
	r.sock_id = q->sock_id;
	if (q->cmd == MW_CMD_HELLO)
		client_hello(c, q, &r, &rfd);
	else if (sock_dispatch(c, q, fd, &r, &rfd))
		return; /* answered later */
	/* No answer for a hint or where the sender asked for none (proto.h): an fd meant for it goes. */
	if (rfd >= 0 && (r.ret < 0 || (q->flags & MW_REQ_NOREPLY) || req_rule(q->cmd)->hint)) {
		close(rfd);
		rfd = -1;
	}
	if (!(q->flags & MW_REQ_NOREPLY) && !req_rule(q->cmd)->hint)
		client_respond(c, &r, rfd);
}

static void client_event(struct ins_ev *ev, uint32_t events)
{
	struct ins_client *c = container_of(ev, struct ins_client, ev);

	if (c->dead)
		return;
	if (events & EPOLLOUT)
		client_writable(c);
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		client_read(c);
}

static void listen_event(struct ins_ev *ev, uint32_t events)
{
	(void)events;
	for (int i = 0; i < 32; i++) {
		struct ins_client *c;
		struct ucred cred;
		socklen_t len = sizeof(cred);
		int fd = accept4(ev->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		if (ins.nclients >= ins.max_clients) {
			/* Out of descriptors for more: a clear refusal now beats running out mid-request. */
			ins_log(0, "refusing a control connection: %u clients already", ins.nclients);
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
			free(c);
			close(fd);
			continue;
		}
		c->pid = cred.pid;
		c->uid = cred.uid;
		c->gid = cred.gid;
		len = sizeof(c->pidfd);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &c->pidfd, &len) < 0)
			c->pidfd = -1;
		if (client_netns(c, &c->netns) < 0 || client_count_netns(c->netns) >= ins.max_clients / 2) {
			/* One namespace may hold at most half of the connections we can afford. */
			ins_log(0, "refusing a control connection from pid %d", (int)c->pid);
			if (c->pidfd >= 0)
				close(c->pidfd);
			free(c);
			close(fd);
			continue;
		}
		if (ins_ev_add(&c->ev, fd, EPOLLIN, client_event) < 0) {
			if (c->pidfd >= 0)
				close(c->pidfd);
			free(c);
			close(fd);
			continue;
		}
		list_add_tail(&ins.clients, &c->link);
		ins.nclients++;
		ins_log(2, "client pid %d uid %d connected", (int)c->pid, (int)c->uid);
	}
}

int client_listen_init(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, err;

	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", ins.sockpath) >= (int)sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(ins.sockpath);
	/* Protected programs may run as any user: the socket is open to all, and the kernel says who came
	 * (SO_PEERCRED, and SCM_CREDENTIALS on the first message: SO_PASSCRED is inherited by each accepted
	 * connection, and client_identify turns it off again). */
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || chmod(ins.sockpath, 0666) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &(int){ 1 }, sizeof(int)) < 0 || listen(fd, 128) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return ins_ev_add(&ins.ev_listen, fd, EPOLLIN, listen_event);
}
