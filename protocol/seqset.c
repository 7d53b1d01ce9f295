/*
 * Sequence sets (see seqset.h).  RFC 9051 §9: seq-number is nz-number or
 * "*", seq-range is "a:b" in either order, a set is ranges joined by ",".
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "protocol/seqset.h"

void
seqset_clear(struct seqset *s)
{
	free(s->r);
	memset(s, 0, sizeof(*s));
}

bool
seqset_add_range(struct seqset *s, uint32_t lo, uint32_t hi)
{
	struct seq_range	*n;
	size_t			 cap;

	if (s->n == s->cap) {
		if (s->cap >= SEQSET_MAX_RANGES)
			return false;
		cap = s->cap ? s->cap * 2 : 8;
		if (cap > SEQSET_MAX_RANGES)
			cap = SEQSET_MAX_RANGES;
		if ((n = reallocarray(s->r, cap, sizeof(*n))) == NULL)
			return false;
		s->r = n;
		s->cap = cap;
	}
	s->r[s->n].lo = lo;
	s->r[s->n].hi = hi;
	s->n++;
	return true;
}

static const char *
parse_number(const char **p, uint32_t *v)
{
	uint64_t	 n = 0;

	if (**p == '*') {
		(*p)++;
		*v = SEQ_STAR;
		return NULL;
	}
	if (**p < '1' || **p > '9')
		return **p == '0' ? "zero is not a valid number" :
		    "number expected";
	while (**p >= '0' && **p <= '9') {
		n = n * 10 + (uint64_t)(*(*p)++ - '0');
		if (n > UINT32_MAX)
			return "number too large";
	}
	*v = (uint32_t)n;
	return NULL;
}

bool
seqset_parse(struct seqset *s, const char *text, const char **err)
{
	const char	*p = text;
	uint32_t	 a, b;

	seqset_clear(s);
	for (;;) {
		if ((*err = parse_number(&p, &a)) != NULL)
			goto fail;
		b = a;
		if (*p == ':') {
			p++;
			if ((*err = parse_number(&p, &b)) != NULL)
				goto fail;
		}
		if (!seqset_add_range(s, a, b)) {
			*err = "too many ranges";
			goto fail;
		}
		if (*p == '\0')
			return true;
		if (*p++ != ',') {
			*err = "invalid character in sequence set";
			goto fail;
		}
	}
 fail:
	seqset_clear(s);
	return false;
}

static int
range_cmp(const void *a, const void *b)
{
	const struct seq_range	*x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

void
seqset_resolve(struct seqset *s, uint32_t max)
{
	size_t		 i, o = 0;
	uint32_t	 t;

	for (i = 0; i < s->n; i++) {
		struct seq_range *r = &s->r[i];

		/* In an empty mailbox "*" names nothing, and so do ranges
		 * that end at it. */
		if (max == 0 && (r->lo == SEQ_STAR || r->hi == SEQ_STAR))
			continue;
		if (r->lo == SEQ_STAR)
			r->lo = max;
		if (r->hi == SEQ_STAR)
			r->hi = max;
		if (r->lo > r->hi) {
			t = r->lo;
			r->lo = r->hi;
			r->hi = t;
		}
		s->r[o++] = *r;
	}
	s->n = o;
	qsort(s->r, s->n, sizeof(*s->r), range_cmp);
	for (i = 0, o = 0; i < s->n; i++) {
		if (o > 0 && (uint64_t)s->r[i].lo <= (uint64_t)s->r[o - 1].hi + 1) {
			if (s->r[i].hi > s->r[o - 1].hi)
				s->r[o - 1].hi = s->r[i].hi;
		} else
			s->r[o++] = s->r[i];
	}
	s->n = o;
}

bool
seqset_within(const struct seqset *s, uint32_t count)
{
	size_t	 i;

	for (i = 0; i < s->n; i++) {
		const struct seq_range *r = &s->r[i];

		if ((r->lo == SEQ_STAR || r->hi == SEQ_STAR) && count == 0)
			return false;
		if (r->lo > count || r->hi > count)
			return false;
	}
	return true;
}

bool
seqset_contains(const struct seqset *s, uint32_t v)
{
	size_t	 lo = 0, hi = s->n;

	/* No message has number 0.  Before resolving, 0 is "*": a caller
	 * that looks for a zero number there must not find "*" instead. */
	if (v == 0)
		return false;
	while (lo < hi) {
		size_t	 mid = lo + (hi - lo) / 2;

		if (v < s->r[mid].lo)
			hi = mid;
		else if (v > s->r[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

uint64_t
seqset_count(const struct seqset *s)
{
	uint64_t	 n = 0;
	size_t		 i;

	for (i = 0; i < s->n; i++)
		n += (uint64_t)s->r[i].hi - s->r[i].lo + 1;
	return n;
}

bool
seqset_next(const struct seqset *s, uint32_t *v)
{
	size_t	 i;

	for (i = 0; i < s->n; i++) {
		if (*v < s->r[i].lo) {
			*v = s->r[i].lo;
			return true;
		}
		if (*v < s->r[i].hi) {
			(*v)++;
			return true;
		}
	}
	return false;
}

static void
put_number(struct evbuffer *out, uint32_t v)
{
	if (v == SEQ_STAR)
		evbuffer_add(out, "*", 1);
	else
		evbuffer_add_printf(out, "%u", v);
}

void
seqset_format(const struct seqset *s, struct evbuffer *out)
{
	size_t	 i;

	for (i = 0; i < s->n; i++) {
		if (i > 0)
			evbuffer_add(out, ",", 1);
		put_number(out, s->r[i].lo);
		if (s->r[i].hi != s->r[i].lo) {
			evbuffer_add(out, ":", 1);
			put_number(out, s->r[i].hi);
		}
	}
}

void
seqset_format_list(const uint32_t *v, size_t n, struct evbuffer *out)
{
	size_t	 i = 0, j;

	while (i < n) {
		for (j = i; j + 1 < n && v[j + 1] == v[j] + 1; j++)
			;
		if (i > 0)
			evbuffer_add(out, ",", 1);
		if (j == i)
			evbuffer_add_printf(out, "%u", v[i]);
		else
			evbuffer_add_printf(out, "%u:%u", v[i], v[j]);
		i = j + 1;
	}
}
