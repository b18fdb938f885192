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
	free(g->ids);
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
	/* All but a reserve, so that one program can hold many connections and still not starve the others. */
	g->max_socks = ins.max_socks - (ins.max_socks / 8 < 256 ? ins.max_socks / 8 : 256);
	if (g->max_socks > nslots - 1)
		g->max_socks = nslots - 1;
	g->seq = calloc(nslots, sizeof(*g->seq));
	g->gen = calloc(nslots, sizeof(*g->gen));
	g->ids = calloc(nslots, sizeof(*g->ids));
	g->errseq = calloc(nslots, sizeof(*g->errseq));
	g->sock = calloc(nslots, sizeof(*g->sock));
	g->freeq = calloc(nslots, sizeof(*g->freeq));
	if (!g->seq || !g->gen || !g->ids || !g->errseq || !g->sock || !g->freeq)
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

static int slot_take(struct ins_group *g, struct ins_sock *s, uint32_t *slotp, uint32_t *idp)
{
	uint32_t slot;

	if (!g->free_count || g->nsocks >= g->max_socks || ins.nsocks >= ins.max_socks)
		return -EMFILE;
	slot = g->freeq[g->free_head];
	g->free_head = (g->free_head + 1) % g->nslots;
	g->free_count--;
	g->gen[slot]++;
	if (!g->gen[slot])
		g->gen[slot] = 1;
	g->ids[slot] = ((uint32_t)g->gen[slot] << 16) | slot;
	g->sock[slot] = s;
	g->nsocks++;
	*slotp = slot;
	*idp = g->ids[slot];
	return 0;
}

static void slot_give_back(struct ins_group *g, uint32_t slot)
{
	g->sock[slot] = NULL;
	g->freeq[(g->free_head + g->free_count) % g->nslots] = slot;
	g->free_count++;
	g->nsocks--;
}

int group_slot_alloc(struct ins_group *g, struct ins_sock *s)
{
	return slot_take(g, s, &s->slot, &s->id);
}

int group_alias_add(struct ins_group *g, struct ins_sock *s, uint32_t *id)
{
	uint32_t slot;
	int err;

	for (uint32_t i = 0; i < s->nalias; i++) {
		if (s->alias[i].group == g) {
			*id = g->ids[s->alias[i].slot];
			return 0;
		}
	}
	if (s->nalias == sizeof(s->alias) / sizeof(s->alias[0]))
		return -EMFILE;
	err = slot_take(g, s, &slot, id);
	if (err)
		return err;
	s->alias[s->nalias].group = g;
	s->alias[s->nalias].slot = slot;
	s->nalias++;
	group_rec_publish(s, MW_SS_OPEN);
	return 0;
}

void group_names_free(struct ins_sock *s)
{
	for (uint32_t i = 0; i < s->nalias; i++) {
		slot_give_back(s->alias[i].group, s->alias[i].slot);
		group_put_if_unused(s->alias[i].group);
	}
	s->nalias = 0;
	slot_give_back(s->group, s->slot);
}

struct ins_sock *group_sock_find(struct ins_group *g, uint32_t id)
{
	uint32_t slot = MW_SOCK_SLOT(id);
	struct ins_sock *s;

	if (slot == 0 || slot >= g->nslots)
		return NULL;
	s = g->sock[slot];
	return s && g->ids[slot] == id && !s->dead ? s : NULL;
}

enum { REC_KEEP = 0, REC_CLEAR = -1 }; /* rec_write's error, besides a positive errno to post */

static void rec_write(struct ins_group *g, uint32_t slot, const struct ins_sock *s, uint16_t state, int error)
{
	struct mw_sock_rec *r = &g->rec[slot];
	uint32_t seq = g->seq[slot];

	/* Readers see an odd seq /before/ any field changes ... */
	__atomic_store_n(&r->seq, seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	r->sock_id = g->ids[slot];
	r->state = state;
	r->flags = s->rec_flags;
	r->sndbuf = s->rec_flags & MW_REC_SNDBUF ? s->tcp.sndbuf : 0;
	if (error > 0) {
		r->error = error;
		r->error_seq = ++g->errseq[slot];
	} else if (error == REC_CLEAR) {
		r->error = 0;
	}
	r->local = s->local;
	r->peer = s->peer;
	r->bytes_in = s->bytes_in;
	r->bytes_out = s->bytes_out;
	/* ... and the even seq only /after/ all of them. */
	__atomic_store_n(&r->seq, seq + 2, __ATOMIC_RELEASE);
	g->seq[slot] = seq + 2;
}

/* error: REC_KEEP, REC_CLEAR, or a positive errno to post. */
static void rec_write_all(struct ins_sock *s, uint16_t state, int error)
{
	rec_write(s->group, s->slot, s, state, error);
	for (uint32_t i = 0; i < s->nalias; i++)
		rec_write(s->alias[i].group, s->alias[i].slot, s, state, error);
}

void group_rec_publish(struct ins_sock *s, uint16_t state)
{
	rec_write_all(s, state, REC_KEEP);
}

void group_rec_post_error(struct ins_sock *s, uint16_t state, int err)
{
	rec_write_all(s, state, err > 0 ? err : EIO);
}

void group_rec_clear_error(struct ins_sock *s, uint16_t state)
{
	rec_write_all(s, state, REC_CLEAR);
}
