/*
 * Sequence sets: parsing, "*", normalising, iteration, formatting.
 */
#include <event2/buffer.h>

#include "protocol/seqset.h"
#include "unit.h"

static char *
fmt(const struct seqset *s)
{
	static char	 out[256];
	struct evbuffer	*b = evbuffer_new();
	size_t		 n;

	seqset_format(s, b);
	n = evbuffer_remove(b, out, sizeof(out) - 1);
	out[n] = '\0';
	evbuffer_free(b);
	return out;
}

static void
parse_and_resolve(void)
{
	static const struct {
		const char	*in, *parsed, *resolved;
		uint32_t	 max;
		uint64_t	 count;
	} rows[] = {
		{ "1", "1", "1", 10, 1 },
		{ "1:3,5,7:*", "1:3,5,7:*", "1:3,5,7:10", 10, 8 },
		{ "10:8", "10:8", "8:10", 20, 3 },
		{ "*", "*", "20", 20, 1 },
		{ "*:4", "*:4", "4:6", 6, 3 },
		{ "2,1,3:5,4", "2,1,3:5,4", "1:5", 9, 5 },
		{ "1:*", "1:*", "", 0, 0 },	/* empty mailbox */
		{ "3,*", "3,*", "3", 0, 1 },
		{ "4294967294", "4294967294", "4294967294", 5, 1 },
		{ "4294967295", "4294967295", "4294967295", 5, 1 },
		{ "1:4294967295", "1:4294967295", "1:4294967295", 9,
		  4294967295ULL },
		{ "4294967295:*", "4294967295:*", "7:4294967295", 7,
		  4294967289ULL },
		{ "*:4294967295", "*:4294967295", "", 0, 0 },
	};
	struct seqset	 s = { 0 };
	const char	*err;
	size_t		 i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		CHECK(seqset_parse(&s, rows[i].in, &err));
		CHECK_STR(fmt(&s), rows[i].parsed);
		seqset_resolve(&s, rows[i].max);
		CHECK_STR(fmt(&s), rows[i].resolved);
		CHECK_INT(seqset_count(&s), rows[i].count);
	}
	seqset_clear(&s);
}

static void
parse_errors(void)
{
	static const struct {
		const char	*in, *why;
	} rows[] = {
		{ "", "number expected" },
		{ "0", "zero is not a valid number" },
		{ "1:0", "zero is not a valid number" },
		{ "1,", "number expected" },
		{ ",1", "number expected" },
		{ "1::2", "number expected" },
		{ "1:2:3", "invalid character in sequence set" },
		{ "a", "number expected" },
		{ "1 2", "invalid character in sequence set" },
		{ "4294967296", "number too large" },
		{ "1:4294967296", "number too large" },
		{ "42949672950", "number too large" },
		{ "99999999999999999999", "number too large" },
		{ "-1", "number expected" },
		{ "$", "number expected" },
	};
	struct seqset	 s = { 0 };
	const char	*err;
	size_t		 i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		err = NULL;
		CHECK(!seqset_parse(&s, rows[i].in, &err));
		CHECK_STR(err, rows[i].why);
		CHECK_INT(s.n, 0);
	}
}

static void
too_many_ranges(void)
{
	struct seqset	 s = { 0 };
	const char	*err;
	char		*big;
	size_t		 i, len = 0;

	big = malloc(SEQSET_MAX_RANGES * 8 + 16);
	for (i = 0; i <= SEQSET_MAX_RANGES; i++)
		len += sprintf(big + len, "%s%zu", i ? "," : "", i * 2 + 1);
	CHECK(!seqset_parse(&s, big, &err));
	CHECK_STR(err, "too many ranges");
	free(big);
}

static void
membership_and_iteration(void)
{
	struct seqset	 s = { 0 };
	const char	*err;
	uint32_t	 v = 0, seen[16];
	size_t		 n = 0;

	CHECK(seqset_parse(&s, "7:9,2,3,8:12,*", &err));
	seqset_resolve(&s, 14);
	CHECK_STR(fmt(&s), "2:3,7:12,14");
	CHECK(seqset_contains(&s, 2) && seqset_contains(&s, 10) &&
	    seqset_contains(&s, 14));
	CHECK(!seqset_contains(&s, 1) && !seqset_contains(&s, 4) &&
	    !seqset_contains(&s, 13) && !seqset_contains(&s, 15));
	while (seqset_next(&s, &v) && n < 16)
		seen[n++] = v;
	CHECK_INT(n, 9);
	CHECK_INT(seen[0], 2);
	CHECK_INT(seen[2], 7);
	CHECK_INT(seen[8], 14);
	seqset_clear(&s);
}

/*
 * The bug: "*" was UINT32_MAX, so UID 4294967295 (RFC 9051 uniqueid) was
 * "number too large" and "UID FETCH 1:4294967295" was refused.
 */
static void
largest_uid(void)
{
	struct seqset	 s = { 0 };
	const char	*err;
	uint32_t	 v = 4294967290U;
	size_t		 n = 0;

	CHECK(seqset_parse(&s, "4294967295,4294967293:4294967294", &err));
	seqset_resolve(&s, 3);
	CHECK_STR(fmt(&s), "4294967293:4294967295");
	CHECK(seqset_contains(&s, 4294967295U));
	CHECK(!seqset_contains(&s, 4294967292U));
	/* Iteration ends at the top without wrapping round to 0. */
	while (seqset_next(&s, &v) && n < 8)
		n++;
	CHECK_INT(n, 3);
	CHECK_INT(v, 4294967295U);

	/* "*" and 4294967295 stay apart until resolved. */
	CHECK(seqset_parse(&s, "4294967295,*", &err));
	CHECK_STR(fmt(&s), "4294967295,*");
	seqset_resolve(&s, 10);
	CHECK_STR(fmt(&s), "10,4294967295");
	CHECK_INT(seqset_count(&s), 2);
	seqset_clear(&s);
}

/*
 * Sessions ask whether a set not yet resolved holds 0 (FETCH 0 is BAD);
 * "*" must not look like it, and a set built by hand can hold "*".
 */
static void
star_is_not_zero(void)
{
	struct seqset	 s = { 0 };
	const char	*err;

	CHECK(seqset_parse(&s, "*", &err));
	CHECK(!seqset_contains(&s, 0));
	CHECK(seqset_parse(&s, "*:3,5", &err));
	CHECK(!seqset_contains(&s, 0));
	seqset_resolve(&s, 0);
	CHECK_STR(fmt(&s), "5");
	seqset_clear(&s);

	CHECK(seqset_add_range(&s, 5, SEQ_STAR));
	CHECK_STR(fmt(&s), "5:*");
	seqset_resolve(&s, 8);
	CHECK_STR(fmt(&s), "5:8");
	seqset_clear(&s);
}

static void
compress_list(void)
{
	static const uint32_t	 uids[] = { 1, 2, 3, 5, 7, 8, 9, 100 };
	struct evbuffer		*b = evbuffer_new();
	char			 out[64];
	size_t			 n;

	seqset_format_list(uids, 8, b);
	n = evbuffer_remove(b, out, sizeof(out) - 1);
	out[n] = '\0';
	CHECK_STR(out, "1:3,5,7:9,100");
	seqset_format_list(uids, 0, b);
	CHECK_INT(evbuffer_get_length(b), 0);
	evbuffer_free(b);
}

/* RFC 3501 §9: a sequence number past the end, or "*" with none. */
static void
within_the_mailbox(void)
{
	static const struct {
		const char	*text;
		uint32_t	 count;
		bool		 ok;
	} rows[] = {
		{ "1", 1, true }, { "1:*", 3, true }, { "*", 3, true },
		{ "3:1", 3, true }, { "4", 3, false }, { "1:4", 3, false },
		{ "4:*", 3, false }, { "*", 0, false }, { "1:*", 0, false },
		{ "1", 0, false }, { "2,4294967295", 4294967295u, true },
	};
	struct seqset	 s = { NULL, 0, 0 };
	const char	*err;
	size_t		 i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		CHECK(seqset_parse(&s, rows[i].text, &err));
		if (seqset_within(&s, rows[i].count) != rows[i].ok)
			printf("#   %s in %u\n", rows[i].text, rows[i].count),
			    CHECK(!"within");
		seqset_clear(&s);
	}
}

static const struct unit_case cases[] = {
	UNIT_CASE(within_the_mailbox),
	UNIT_CASE(parse_and_resolve),
	UNIT_CASE(parse_errors),
	UNIT_CASE(too_many_ranges),
	UNIT_CASE(membership_and_iteration),
	UNIT_CASE(largest_uid),
	UNIT_CASE(star_is_not_zero),
	UNIT_CASE(compress_list),
};

UNIT_MAIN(cases)
