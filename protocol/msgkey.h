/*
 * Message identity (DESIGN §4) from a header block: the normalised
 * Message-ID, the original id Exchange keeps when it rewrites one, and a
 * hash of Date/From/To/Subject for messages that have no id.  Every part is
 * normalised so that the legacy copy and the copy Exchange or a migration
 * tool re-rendered give the same key.  Sizes and body bytes are never used:
 * Exchange re-renders MIME.
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
					   X-MS-Exchange-Parent-Message-ID,
					   normalised; "" if none */
	char	hash[MSGKEY_MAX];	/* "h:" + 32 hex digits; "" only from
					   msgkey_parse_primary() where
					   msgid is set */
};

/*
 * Parses a header block as BODY.PEEK[HEADER.FIELDS (...)] returns it:
 * lines ending in CRLF or bare LF, maybe an empty line at the end, maybe
 * truncated, maybe 8-bit bytes or NUL.  Fills every field; never fails.
 */
void		 msgkey_parse(const char *hdr, size_t len, struct msgkey *);

/*
 * The same, but the header hash only where it is the primary key (no
 * Message-ID); hash is "" otherwise.  The hash of Date, From, To and
 * Subject is most of the parsing's cost, and a legacy message with an id
 * is known by its id alone (DESIGN §4).
 */
void		 msgkey_parse_primary(const char *hdr, size_t len,
		    struct msgkey *);

/* The key a message pairs by: msgid if set, else hash. */
const char	*msgkey_primary(const struct msgkey *);

/*
 * One Message-ID field value into out (MSGKEY_MAX bytes): comments and
 * whitespace gone, the "<...>" content, domain lower-cased; an id too long
 * for out becomes "l:" + 64 hex digits of its SHA-256.  false (and out "")
 * if the value holds no id.
 */
bool		 msgkey_normalise_id(const char *value, size_t len, char *out);

/* The first 8 bytes of SHA-256 of a key, big-endian, for in-memory
 * tables; never 0, which callers use for "no key". */
uint64_t	 msgkey_hash64(const char *key);

#endif
