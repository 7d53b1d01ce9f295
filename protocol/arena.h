/*
 * An alloc-only arena: everything one IMAP command or response needs is
 * taken from it and given back at once by arena_reset() (Dovecot's data
 * stack pools serve the same purpose).  Big blocks, no per-item free.
 */
#ifndef PROTOCOL_ARENA_H
#define PROTOCOL_ARENA_H

#include <stddef.h>

struct arena;

struct arena	*arena_new(size_t block);
void		 arena_free(struct arena **);
/* Keeps the first block, frees the others. */
void		 arena_reset(struct arena *);
/* NULL only when out of memory; aligned for any type. */
void		*arena_alloc(struct arena *, size_t);
/* A NUL-terminated copy of len bytes. */
char		*arena_strndup(struct arena *, const void *, size_t len);
/* Bytes held by the arena now, for memory accounting. */
size_t		 arena_size(const struct arena *);

#endif
