/*
 * libFuzzer target: sequence sets.  A parsed set formats back to something
 * that parses to the same set; a resolved set is sorted, disjoint, within
 * its maximum, and iterates exactly count times.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "protocol/seqset.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct seqset	 s = { 0 }, t = { 0 };
	struct evbuffer	*b;
	const char	*err;
	char		*text;
	uint32_t	 max, v = 0;
	uint64_t	 n = 0;
	size_t		 i;

	if (len < 2 || len > 4096)
		return 0;
	max = data[0] * 97u;
	if ((text = malloc(len)) == NULL)
		return 0;
	memcpy(text, data + 1, len - 1);
	text[len - 1] = '\0';
	if (!seqset_parse(&s, text, &err)) {
		free(text);
		return 0;
	}
	b = evbuffer_new();
	seqset_format(&s, b);
	evbuffer_add(b, "", 1);
	if (!seqset_parse(&t, (char *)evbuffer_pullup(b, -1), &err) ||
	    t.n != s.n)
		abort();
	seqset_resolve(&s, max);
	for (i = 0; i < s.n; i++)
		if (s.r[i].lo == 0 || s.r[i].lo > s.r[i].hi ||
		    (i > 0 && s.r[i].lo <= s.r[i - 1].hi + 1))
			abort();
	if (seqset_count(&s) < 100000) {
		while (seqset_next(&s, &v)) {
			if (!seqset_contains(&s, v))
				abort();
			n++;
		}
		if (n != seqset_count(&s))
			abort();
	}
	seqset_clear(&s);
	seqset_clear(&t);
	evbuffer_free(b);
	free(text);
	return 0;
}
