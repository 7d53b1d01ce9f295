/*
 * Alloc-only arena (see arena.h).  Allocations larger than a quarter block
 * get a block of their own so that one big literal does not waste the
 * rest of a normal block.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/arena.h"

#define ALIGN	(sizeof(max_align_t))

struct block {
	struct block	*next;
	size_t		 size;		/* usable bytes after the header */
	size_t		 used;
	max_align_t	 data[];
};

struct arena {
	struct block	*head;		/* current block */
	struct block	*first;		/* kept across resets */
	size_t		 block;
	size_t		 total;
};

static struct block *
block_new(size_t size)
{
	struct block	*b;

	if (size > SIZE_MAX - sizeof(*b) || (b = malloc(sizeof(*b) + size)) ==
	    NULL)
		return NULL;
	b->next = NULL;
	b->size = size;
	b->used = 0;
	return b;
}

struct arena *
arena_new(size_t block)
{
	struct arena	*a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->block = block < 256 ? 256 : block;
	if ((a->head = block_new(a->block)) == NULL) {
		free(a);
		return NULL;
	}
	a->first = a->head;
	a->total = a->block;
	return a;
}

void
arena_free(struct arena **ap)
{
	struct arena	*a = *ap;
	struct block	*b;

	if (a == NULL)
		return;
	while ((b = a->head) != NULL) {
		a->head = b->next;
		free(b);
	}
	free(a);
	*ap = NULL;
}

void
arena_reset(struct arena *a)
{
	struct block	*b, *next;

	for (b = a->head; b != NULL; b = next) {
		next = b->next;
		if (b != a->first)
			free(b);
	}
	a->head = a->first;
	a->head->next = NULL;
	a->head->used = 0;
	a->total = a->first->size;
}

void *
arena_alloc(struct arena *a, size_t len)
{
	struct block	*b = a->head, *nb;
	size_t		 need;

	if (len > SIZE_MAX - ALIGN)
		return NULL;
	need = (len + ALIGN - 1) & ~(ALIGN - 1);
	if (need == 0)
		need = ALIGN;
	if (b->size - b->used >= need) {
		b->used += need;
		return (char *)b->data + b->used - need;
	}
	if ((nb = block_new(need > a->block / 4 ? need : a->block)) == NULL)
		return NULL;
	a->total += nb->size;
	if (need > a->block / 4 && b->size - b->used >= a->block / 4) {
		/* Keep filling the current block: slip the big one behind. */
		nb->next = b->next;
		b->next = nb;
		nb->used = need;
		return nb->data;
	}
	nb->next = b;
	a->head = nb;
	nb->used = need;
	return nb->data;
}

char *
arena_strndup(struct arena *a, const void *s, size_t len)
{
	char	*p;

	if (len == SIZE_MAX || (p = arena_alloc(a, len + 1)) == NULL)
		return NULL;
	if (len > 0)
		memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

size_t
arena_size(const struct arena *a)
{
	return a->total;
}
