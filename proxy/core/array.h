/*
 * Growable arrays: one helper instead of a realloc loop in every file.
 */
#ifndef PROXY_ARRAY_H
#define PROXY_ARRAY_H

#include <stdlib.h>

/*
 * Makes room for need elements of size bytes in *p (capacity *cap),
 * doubling from 64; -1 when out of memory, *p untouched then.
 */
static inline int
array_grow(void *pp, size_t *cap, size_t need, size_t size)
{
	void	**p = pp, *np;
	size_t	 ncap;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap : 64;
	while (ncap < need)
		ncap *= 2;
	if ((np = reallocarray(*p, ncap, size)) == NULL)
		return -1;
	*p = np;
	*cap = ncap;
	return 0;
}

#endif
