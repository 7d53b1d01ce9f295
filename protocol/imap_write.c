/*
 * IMAP string writer (see imap_write.h).  Atom characters follow RFC 9051
 * ATOM-CHAR; a quoted string may hold any 7-bit text character but CR and
 * LF, with '"' and '\' escaped; everything else goes in a literal.
 */
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "protocol/imap_write.h"

static int
atom_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){ %*\"\\]", c) == NULL;
}

enum imap_str_kind
imap_string_kind(const char *s, size_t len, int flags)
{
	enum imap_str_kind	 kind = len > 0 ? IMAP_STR_ATOM : IMAP_STR_QUOTED;
	size_t			 i;
	unsigned char		 c;

	if (len > IMAP_QUOTED_MAX)
		return IMAP_STR_LITERAL;
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c == '\0' || c == '\r' || c == '\n')
			return IMAP_STR_LITERAL;
		if (c >= 0x80 && !(flags & IMAP_WRITE_UTF8))
			return IMAP_STR_LITERAL;
		if (!atom_char(c))
			kind = IMAP_STR_QUOTED;
	}
	/* "NIL" as an atom would mean no string at all. */
	if (kind == IMAP_STR_ATOM && len == 3 && strncasecmp(s, "NIL", 3) == 0)
		kind = IMAP_STR_QUOTED;
	return kind;
}

void
imap_write_literal_prefix(struct evbuffer *out, size_t len, int nonsync,
    int literal8)
{
	evbuffer_add_printf(out, "%s{%zu%s}\r\n", literal8 ? "~" : "", len,
	    nonsync ? "+" : "");
}

static void
write_quoted(struct evbuffer *out, const char *s, size_t len)
{
	size_t	 i, start = 0;

	evbuffer_add(out, "\"", 1);
	for (i = 0; i < len; i++) {
		if (s[i] != '"' && s[i] != '\\')
			continue;
		evbuffer_add(out, s + start, i - start);
		evbuffer_add(out, "\\", 1);
		start = i;
	}
	evbuffer_add(out, s + start, len - start);
	evbuffer_add(out, "\"", 1);
}

static void
write_kind(struct evbuffer *out, const char *s, size_t len, int flags,
    enum imap_str_kind kind)
{
	switch (kind) {
	case IMAP_STR_ATOM:
		evbuffer_add(out, s, len);
		break;
	case IMAP_STR_QUOTED:
		write_quoted(out, s, len);
		break;
	case IMAP_STR_LITERAL:
		imap_write_literal_prefix(out, len, flags & IMAP_WRITE_NONSYNC,
		    memchr(s, '\0', len) != NULL);
		evbuffer_add(out, s, len);
		break;
	}
}

void
imap_write_astring(struct evbuffer *out, const char *s, size_t len, int flags)
{
	write_kind(out, s, len, flags, imap_string_kind(s, len, flags));
}

void
imap_write_string(struct evbuffer *out, const char *s, size_t len, int flags)
{
	enum imap_str_kind	 kind = imap_string_kind(s, len, flags);

	write_kind(out, s, len, flags, kind == IMAP_STR_ATOM ?
	    IMAP_STR_QUOTED : kind);
}

void
imap_write_nstring(struct evbuffer *out, const char *s, size_t len, int flags)
{
	if (s == NULL)
		evbuffer_add(out, "NIL", 3);
	else
		imap_write_string(out, s, len, flags);
}

void
imap_write_mailbox(struct evbuffer *out, const char *name, int flags)
{
	if (strcasecmp(name, "INBOX") == 0)
		evbuffer_add(out, "INBOX", 5);
	else
		imap_write_astring(out, name, strlen(name), flags);
}

void
imap_write_flags(struct evbuffer *out, const char *const *flags, size_t n)
{
	size_t	 i;

	evbuffer_add(out, "(", 1);
	for (i = 0; i < n; i++) {
		if (i > 0)
			evbuffer_add(out, " ", 1);
		evbuffer_add(out, flags[i], strlen(flags[i]));
	}
	evbuffer_add(out, ")", 1);
}

void
imap_write_text(struct evbuffer *out, const char *text)
{
	const unsigned char	*p;

	for (p = (const unsigned char *)text; *p != '\0'; p++) {
		char	 c = *p < 0x20 || *p == 0x7f ? ' ' : (char)*p;

		evbuffer_add(out, &c, 1);
	}
}
