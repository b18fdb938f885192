/*
 * group.c: process groups and their shared state pages.
 *
 * A group is every client in one network namespace.  Its page is a memfd that we map read-write and then seal
 * (F_SEAL_FUTURE_WRITE, F_SEAL_SHRINK, F_SEAL_GROW) before any client sees it: clients can map it only
 * read-only, and none can shrink it under us (which would turn our next write into SIGBUS).  Even so we never
 * read the page back: the seqlock counters we bump are private copies.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ins.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

static void group_free(struct ins_group *g)
{
	if (g->rec)
		munmap((char *)g->rec - sizeof(struct mw_page_hdr), mw_page_size(g->nslots));
	if (g->memfd >= 0)
		close(g->memfd);
	free(g->seq);
	free(g->gen);
	free(g->errseq);
	free(g->sock);
	free(g->freeq);
	free(g);
}

struct ins_group *group_get(uint64_t netns, uint32_t nslots)
{
	struct ins_group *g;
	struct list *l;
	struct mw_page_hdr *hdr;
	uint64_t size = mw_page_size(nslots);
	void *map;
	uint32_t i;

	for (l = ins.groups.next; l != &ins.groups; l = l->next) {
		g = container_of(l, struct ins_group, link);
		if (g->netns == netns)
			return g;
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->memfd = -1;
	g->netns = netns;
	g->nslots = nslots;
	g->seq = calloc(nslots, sizeof(*g->seq));
	g->gen = calloc(nslots, sizeof(*g->gen));
	g->errseq = calloc(nslots, sizeof(*g->errseq));
	g->sock = calloc(nslots, sizeof(*g->sock));
	g->freeq = calloc(nslots, sizeof(*g->freeq));
	if (!g->seq || !g->gen || !g->errseq || !g->sock || !g->freeq)
		goto err;
	g->memfd = memfd_create("mwcomms-page", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (g->memfd < 0 || ftruncate(g->memfd, (off_t)size) < 0)
		goto err;
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, g->memfd, 0);
	if (map == MAP_FAILED)
		goto err;
	hdr = map;
	hdr->magic = MW_PAGE_MAGIC;
	hdr->nslots = nslots;
	g->rec = (struct mw_sock_rec *)(hdr + 1);
	if (fcntl(g->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) < 0) {
		ins_log(0, "sealing the state page: %s", strerror(errno));
		goto err;
	}
	/* Slot 0 is never handed out, so that id 0 stays invalid whatever the generation. */
	for (i = 1; i < nslots; i++)
		g->freeq[g->free_count++] = i;
	list_add_tail(&ins.groups, &g->link);
	return g;
err:
	ins_log(0, "cannot create a group page: %s", strerror(errno));
	group_free(g);
	return NULL;
}

void group_put_if_unused(struct ins_group *g)
{
	if (g->nclients || g->nsocks)
		return;
	list_del(&g->link);
	group_free(g);
}

int group_slot_alloc(struct ins_group *g, struct ins_sock *s)
{
	uint32_t slot;

	if (!g->free_count)
		return -EMFILE;
	slot = g->freeq[g->free_head];
	g->free_head = (g->free_head + 1) % g->nslots;
	g->free_count--;
	g->gen[slot]++;
	if (!g->gen[slot])
		g->gen[slot] = 1;
	s->slot = slot;
	s->id = ((uint32_t)g->gen[slot] << 16) | slot;
	g->sock[slot] = s;
	g->nsocks++;
	return 0;
}

void group_slot_free(struct ins_group *g, struct ins_sock *s)
{
	g->sock[s->slot] = NULL;
	g->freeq[(g->free_head + g->free_count) % g->nslots] = s->slot;
	g->free_count++;
	g->nsocks--;
}

struct ins_sock *group_sock_find(struct ins_group *g, uint32_t id)
{
	uint32_t slot = MW_SOCK_SLOT(id);
	struct ins_sock *s;

	if (slot == 0 || slot >= g->nslots)
		return NULL;
	s = g->sock[slot];
	return s && s->id == id && !s->dead ? s : NULL;
}

void group_rec_publish(struct ins_sock *s, uint16_t state, int error)
{
	struct ins_group *g = s->group;
	struct mw_sock_rec *r = &g->rec[s->slot];
	uint32_t seq = g->seq[s->slot];

	/* Readers see an odd seq /before/ any field changes ... */
	__atomic_store_n(&r->seq, seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	r->sock_id = s->id;
	r->state = state;
	if (error > 0) {
		r->error = error;
		r->error_seq = ++g->errseq[s->slot];
	} else if (error < 0) {
		r->error = 0;
	}
	r->local = s->local;
	r->peer = s->peer;
	r->bytes_in = s->bytes_in;
	r->bytes_out = s->bytes_out;
	/* ... and the even seq only /after/ all of them. */
	__atomic_store_n(&r->seq, seq + 2, __ATOMIC_RELEASE);
	g->seq[s->slot] = seq + 2;
}
