/*
 * IMAP sequence sets ("1:3,5,7:*"): parse, resolve "*", iterate, format,
 * and compress a sorted list of numbers back into ranges.
 */
#ifndef PROTOCOL_SEQSET_H
#define PROTOCOL_SEQSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

/*
 * "*" until resolved.  Every nz-number up to 4294967295 is a valid
 * sequence number or UID (RFC 9051 §9), and 0 is none, so 0 stands for
 * "*"; a resolved set holds no 0.
 */
#define SEQ_STAR	0
#define SEQSET_MAX_RANGES 10000		/* bounded memory */

struct seq_range {
	uint32_t	 lo, hi;		/* lo <= hi once normalised */
};

struct seqset {
	struct seq_range *r;
	size_t		 n, cap;
};

/* Parses text; false with *err on a syntax error or too many ranges. */
bool	 seqset_parse(struct seqset *, const char *, const char **err);
void	 seqset_clear(struct seqset *);
/*
 * Before resolving: every number names one of count messages, and "*" is
 * not used with none (RFC 3501 §9 seq-number: a sequence number past the
 * end, or "*" in an empty mailbox, is an error).  Not for UID sets.
 */
bool	 seqset_within(const struct seqset *, uint32_t count);
/* Replaces "*" by max (0 = empty mailbox: "*" matches nothing), orders
 * each range, sorts and merges overlaps. */
void	 seqset_resolve(struct seqset *, uint32_t max);
/* Membership in a resolved set; 0 is never a member. */
bool	 seqset_contains(const struct seqset *, uint32_t);
uint64_t seqset_count(const struct seqset *);
/* Ascending iteration over a resolved set: start with *v = 0. */
bool	 seqset_next(const struct seqset *, uint32_t *v);
bool	 seqset_add_range(struct seqset *, uint32_t lo, uint32_t hi);
/* Appends "1:3,5" ("*" for SEQ_STAR). */
void	 seqset_format(const struct seqset *, struct evbuffer *);
/* Appends sorted ascending uids compressed into ranges. */
void	 seqset_format_list(const uint32_t *, size_t, struct evbuffer *);

#endif
