/*
 * Writing IMAP strings: the right form for each value (atom, quoted string
 * or literal), mailbox names, flag lists, and safe response text.
 *
 * Contract for command writers that talk to servers without LITERAL+: a
 * string for which imap_string_kind() says IMAP_STR_LITERAL needs a
 * synchronising literal, so the command must be cut after "{n}\r\n" and
 * the rest sent only after the server's "+".  With LITERAL+ (or to
 * clients, which always get literals without waiting) write it at once
 * with IMAP_WRITE_NONSYNC.
 */
#ifndef PROTOCOL_IMAP_WRITE_H
#define PROTOCOL_IMAP_WRITE_H

#include <stddef.h>

struct evbuffer;

enum imap_str_kind {
	IMAP_STR_ATOM,
	IMAP_STR_QUOTED,
	IMAP_STR_LITERAL,
};

#define IMAP_WRITE_NONSYNC	0x01	/* {n+} instead of {n} */
#define IMAP_WRITE_UTF8		0x02	/* peer takes 8-bit in quoted */
#define IMAP_QUOTED_MAX		1024	/* longer strings become literals */

enum imap_str_kind imap_string_kind(const char *, size_t, int flags);

/* An astring: atom if it can be, else quoted, else literal. */
void	imap_write_astring(struct evbuffer *, const char *, size_t, int);
/* A string (never an atom), NIL for NULL with imap_write_nstring. */
void	imap_write_string(struct evbuffer *, const char *, size_t, int);
void	imap_write_nstring(struct evbuffer *, const char *, size_t, int);
/* A mailbox name already in wire form (mUTF-7); INBOX stays an atom. */
void	imap_write_mailbox(struct evbuffer *, const char *, int);
void	imap_write_literal_prefix(struct evbuffer *, size_t, int nonsync,
	    int literal8);
/* "(\Seen \Answered)" from an array of flag atoms. */
void	imap_write_flags(struct evbuffer *, const char *const *, size_t);
/* Free text for "tag NO text": CR, LF and other controls become spaces. */
void	imap_write_text(struct evbuffer *, const char *);

#endif
