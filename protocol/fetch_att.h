/*
 * The item argument of a client's FETCH and UID FETCH (RFC 3501 and
 * RFC 9051 §6.4.5, RFC 3516 BINARY): which items the proxy answers from
 * its own view and which go to the backend that serves each message.
 * Backend items are passed on under the client's own item names, so that
 * the backend's answers carry the names the client expects.
 */
#ifndef PROTOCOL_FETCH_ATT_H
#define PROTOCOL_FETCH_ATT_H

#include <stdbool.h>
#include <stddef.h>

struct imap_arg;

#define FETCH_UID		0x01
#define FETCH_FLAGS		0x02
#define FETCH_INTERNALDATE	0x04
#define FETCH_RFC822_SIZE	0x08

#define FETCH_ATT_MAX_ITEMS	100	/* in one parenthesised list */
#define FETCH_ATT_MAX_UPSTREAM	8192	/* bytes of fetch_att.upstream */

struct fetch_att {
	unsigned int	 local;		/* FETCH_* answered by the proxy */
	bool		 sets_seen;	/* a non-peek body item is present */
	bool		 backend;	/* some item needs the backend */
	char		*upstream;	/* malloc'd backend items, canonical,
					   space-separated, no parentheses:
					   "ENVELOPE BODY.PEEK[1]<0.10>";
					   NULL when !backend */
};

/*
 * args/nargs: the FETCH arguments after the sequence set, which must be
 * exactly one: an item, a macro (ALL, FAST, FULL) or a list of items.
 * Overwrites *fa without freeing it.  False with *err, static text fit
 * for "BAD <err>", on a syntax error, and then *fa holds nothing.
 */
bool	 fetch_att_parse(const struct imap_arg *args, size_t nargs,
	    struct fetch_att *fa, const char **err);
void	 fetch_att_clear(struct fetch_att *);

#endif
