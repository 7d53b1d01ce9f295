/*
 * Message identity (DESIGN §4) from a header block: the normalised
 * Message-ID, the original id Exchange keeps when it rewrites one, and a
 * hash of Date/From/To/Subject for messages that have no id.  Sizes and
 * body bytes are never used: Exchange re-renders MIME.
 */
#ifndef PROTOCOL_MSGKEY_H
#define PROTOCOL_MSGKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MSGKEY_MAX	256	/* a key, NUL included */

struct msgkey {
	char	msgid[MSGKEY_MAX];	/* normalised Message-ID, "" if none */
	char	alias[MSGKEY_MAX];	/* X-Microsoft-Original-Message-ID, else
					   X-MS-Exchange-Parent-Message-ID */
	char	hash[MSGKEY_MAX];	/* "h:" + 32 hex digits, always set */
};

/*
 * Parses a header block as BODY.PEEK[HEADER.FIELDS (...)] returns it:
 * CRLF or bare LF, maybe an empty line at the end, maybe truncated, maybe
 * 8-bit bytes or NUL.  Fills every field; never fails.
 */
void		 msgkey_parse(const char *hdr, size_t len, struct msgkey *);

/* The key a message pairs by: msgid if set, else hash. */
const char	*msgkey_primary(const struct msgkey *);

/* One Message-ID value into out (MSGKEY_MAX bytes); false if no id. */
bool		 msgkey_normalise_id(const char *value, size_t len, char *out);

/* 64 bits of SHA-256 of a key, for in-memory tables; never 0. */
uint64_t	 msgkey_hash64(const char *key);

#endif
