/*
 * idle.c: requests that may wait (MW_REQ_IDLE) until the loop has nothing else to do.
 *
 * The shim asks for its next batch of sockets before it needs them (shim/pool.c).  Made at once, they would
 * cost the connect or the bytes that follow them in the queue the time of making eight sockets: mwinsd is one
 * thread, and a sequential client is waiting on it.  Made one at a time whenever a look at the events finds
 * none, they fill the gaps: the time a client spends waiting for its server.
 *
 * The same goes for a connection its program has closed with nothing left to send: its FIN and the freeing
 * of the real socket (the kernel's close work, which a direct client does in its own close()) wait for a gap.
 *
 * Nothing waits much more than IDLE_MAX_NS: a busy loop runs everything that has waited that long, at the end
 * of each turn.  The shim never waits on such a batch: with its pool empty, it asks for one socket outright.
 */
#include <time.h>

#include "ins.h"

#define IDLE_QUEUE 64
#define IDLE_MAX_NS (2 * 1000 * 1000)
#define IDLE_DUE_MAX 64 /* items run in one busy turn */

static struct {
	struct ins_client *c; /* NULL: its client went away */
	struct mw_req q;
	uint64_t t_ns;
} queue[IDLE_QUEUE];
static unsigned head, len;
static struct list socks = { &socks, &socks };
static void (*run_request)(struct ins_client *c, const struct mw_req *q, int fd);
static void (*run_close)(struct ins_sock *s);

void idle_init(void (*req)(struct ins_client *c, const struct mw_req *q, int fd), void (*closed)(struct ins_sock *s))
{
	run_request = req;
	run_close = closed;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

bool idle_defer(struct ins_client *c, const struct mw_req *q)
{
	unsigned i;

	if (len == IDLE_QUEUE)
		return false;
	i = (head + len++) % IDLE_QUEUE;
	queue[i].c = c;
	queue[i].q = *q;
	queue[i].t_ns = now_ns();
	return true;
}

void idle_client_gone(struct ins_client *c)
{
	for (unsigned k = 0; k < len; k++) {
		unsigned i = (head + k) % IDLE_QUEUE;

		if (queue[i].c == c)
			queue[i].c = NULL;
	}
}

void idle_sock(struct ins_sock *s)
{
	if (!list_empty(&s->idlel))
		return;
	s->idle_ns = now_ns();
	list_add_tail(&socks, &s->idlel);
}

void idle_sock_gone(struct ins_sock *s)
{
	if (!list_empty(&s->idlel))
		list_del(&s->idlel);
}

bool idle_pending(void)
{
	return len > 0 || !list_empty(&socks);
}

void idle_run(bool idle)
{
	/* Idle: one item, then back to epoll to see whether work came meanwhile.  Busy: every item that has
	 * waited IDLE_MAX_NS (up to IDLE_DUE_MAX a turn), closes and requests alike, so that the bound holds
	 * however busy the loop is and whatever keeps it busy. */
	unsigned budget = idle ? 1 : IDLE_DUE_MAX;
	uint64_t t = 0;

	if (!idle_pending())
		return;
	if (!idle)
		t = now_ns();
	/* Closes first: they give back what the requests would take. */
	while (budget && !list_empty(&socks)) {
		struct ins_sock *s = container_of(socks.next, struct ins_sock, idlel);

		if (!idle && t - s->idle_ns < IDLE_MAX_NS)
			break;
		list_del(&s->idlel);
		run_close(s);
		budget--;
	}
	while (budget) {
		unsigned i;

		while (len && !queue[head].c) {
			head = (head + 1) % IDLE_QUEUE;
			len--;
		}
		if (!len || (!idle && t - queue[head].t_ns < IDLE_MAX_NS))
			break;
		i = head;
		head = (head + 1) % IDLE_QUEUE;
		len--;
		run_request(queue[i].c, &queue[i].q, -1);
		budget--;
	}
}
