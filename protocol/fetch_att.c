/*
 * FETCH items (see fetch_att.h).
 *
 * The command parser keeps a bracketed section in one atom, together with
 * whatever follows the "]" up to the next space or parenthesis: the item
 * BODY.PEEK[HEADER.FIELDS (From "X-A")]<0.100> arrives as one
 * IMAP_ARG_ATOM, its spaces, parentheses and quotes included.  So each
 * item is one string, checked here against RFC 9051 §9 and RFC 3516:
 *
 *   section-spec    = section-msgtext / (section-part ["." section-text])
 *   section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list /
 *                     "TEXT"
 *   section-part    = nz-number *("." nz-number)
 *   section-text    = section-msgtext / "MIME"
 *   header-list     = "(" header-fld-name *(SP header-fld-name) ")"
 *   section-binary  = "[" [section-part] "]"
 *   partial         = "<" number "." nz-number ">"
 *
 * and written again for the backend in one canonical form: names upper
 * case, numbers without leading zeros, header field names in their case as
 * sent but quoted only where an atom will not do.  Checking strictly means
 * a backend sees nothing a client could not have sent to a real server,
 * and the text we send is ours, not a copy of whatever the client typed.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "protocol/fetch_att.h"
#include "protocol/imap_parser.h"
#include "protocol/imap_write.h"

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

/* Longer field names would need a literal, which the upstream text, one
 * line, cannot hold.  RFC 5322 lines end at 998 octets anyway. */
#define FIELD_MAX	IMAP_QUOTED_MAX

#define LOCAL_FAST	(FETCH_FLAGS | FETCH_INTERNALDATE | FETCH_RFC822_SIZE)

enum section_kind {
	SECT_NONE,		/* a plain item, no "[" */
	SECT_BODY,		/* section-spec */
	SECT_BINARY,		/* section-binary: part numbers only */
};

/* BODY is here twice: alone it is BODYSTRUCTURE without extensions, with
 * a section it is content and sets \Seen. */
static const struct item {
	const char		*name;
	unsigned int		 local;		/* FETCH_*; 0: the backend's */
	enum section_kind	 section;
	bool			 partial;	/* "<n.m>" may follow "]" */
	bool			 seen;		/* fetching sets \Seen */
} items[] = {
	{ "UID",		FETCH_UID, SECT_NONE, false, false },
	{ "FLAGS",		FETCH_FLAGS, SECT_NONE, false, false },
	{ "INTERNALDATE",	FETCH_INTERNALDATE, SECT_NONE, false, false },
	{ "RFC822.SIZE",	FETCH_RFC822_SIZE, SECT_NONE, false, false },
	{ "ENVELOPE",		0, SECT_NONE, false, false },
	{ "BODYSTRUCTURE",	0, SECT_NONE, false, false },
	{ "BODY",		0, SECT_NONE, false, false },
	{ "BODY",		0, SECT_BODY, true, true },
	{ "BODY.PEEK",		0, SECT_BODY, true, false },
	{ "BINARY",		0, SECT_BINARY, true, true },
	{ "BINARY.PEEK",	0, SECT_BINARY, true, false },
	{ "BINARY.SIZE",	0, SECT_BINARY, false, false },
	{ "RFC822",		0, SECT_NONE, false, true },
	{ "RFC822.HEADER",	0, SECT_NONE, false, false },
	{ "RFC822.TEXT",	0, SECT_NONE, false, true },
};

/* Macros stand alone: RFC 9051 fetch = ... SP ("ALL" / "FULL" / "FAST" /
 * fetch-att / "(" fetch-att *(SP fetch-att) ")"). */
static const struct {
	const char	*name;
	const char	*upstream;
} macros[] = {
	{ "ALL",	"ENVELOPE" },
	{ "FAST",	NULL },
	{ "FULL",	"ENVELOPE BODY" },
};

/* section-text keywords; fields: SP header-list follows. */
static const struct {
	const char	*name;
	bool		 fields;
	bool		 part_only;	/* MIME: only after a part number */
} texts[] = {
	{ "HEADER.FIELDS.NOT",	true,	false },
	{ "HEADER.FIELDS",	true,	false },
	{ "HEADER",		false,	false },
	{ "TEXT",		false,	false },
	{ "MIME",		false,	true },
};

struct scan {
	const char	*p;	/* next character of the item */
	struct evbuffer	*out;	/* the upstream text so far */
};

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* ASTRING-CHAR: ATOM-CHAR or "]". */
static bool
astring_char(char c)
{
	return c > ' ' && c < 0x7f && strchr("(){%*\"\\", c) == NULL;
}

/* number, or nz-number (no leading zero), of at most 32 bits. */
static bool
scan_number(struct scan *s, bool nz, uint32_t *v_r)
{
	const char	*p = s->p;
	uint64_t	 v = 0;

	if (!is_digit(*p) || (nz && *p == '0'))
		return false;
	for (; is_digit(*p); p++)
		if ((v = v * 10 + (uint64_t)(*p - '0')) > UINT32_MAX)
			return false;
	*v_r = (uint32_t)v;
	s->p = p;
	return true;
}

/* section-part; leaves a "." that does not lead a number for the text. */
static bool
scan_part(struct scan *s)
{
	uint32_t	 n;

	for (;;) {
		if (!scan_number(s, true, &n))
			return false;
		evbuffer_add_printf(s->out, "%" PRIu32, n);
		if (s->p[0] != '.' || !is_digit(s->p[1]))
			return true;
		evbuffer_add(s->out, ".", 1);
		s->p++;
	}
}

static bool
scan_quoted(struct scan *s, char *name, size_t *len_r)
{
	const char	*p = s->p + 1;
	size_t		 len = 0;

	for (; *p != '"'; p++) {
		if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
			p++;
		else if (*p == '\\' || *p == '\0')
			return false;
		if (len == FIELD_MAX)
			return false;
		name[len++] = *p;
	}
	s->p = p + 1;
	*len_r = len;
	return true;
}

static bool
scan_bare(struct scan *s, char *name, size_t *len_r)
{
	size_t	 len = 0;

	for (; astring_char(*s->p); s->p++) {
		if (len == FIELD_MAX)
			return false;
		name[len++] = *s->p;
	}
	*len_r = len;
	return len > 0;
}

/*
 * header-fld-name, an astring.  A literal cannot arrive inside an atom,
 * and none may leave: the command parser lets no 8-bit byte into an atom,
 * but args from elsewhere might hold one.
 */
static bool
scan_field(struct scan *s)
{
	char	 name[FIELD_MAX];
	size_t	 len;

	if (*s->p == '"') {
		if (!scan_quoted(s, name, &len))
			return false;
	} else if (!scan_bare(s, name, &len))
		return false;
	if (imap_string_kind(name, len, 0) == IMAP_STR_LITERAL)
		return false;
	imap_write_astring(s->out, name, len, 0);
	return true;
}

static bool
scan_header_list(struct scan *s)
{
	if (s->p[0] != ' ' || s->p[1] != '(')
		return false;
	s->p += 2;
	evbuffer_add(s->out, " (", 2);
	for (;;) {
		if (!scan_field(s))
			return false;
		if (*s->p == ')')
			break;
		if (*s->p++ != ' ')
			return false;
		evbuffer_add(s->out, " ", 1);
	}
	s->p++;
	evbuffer_add(s->out, ")", 1);
	return true;
}

static bool
scan_text(struct scan *s, bool after_part)
{
	size_t	 i, n;

	for (i = 0; i < nitems(texts); i++) {
		n = strlen(texts[i].name);
		if (strncasecmp(s->p, texts[i].name, n) != 0 ||
		    s->p[n] != (texts[i].fields ? ' ' : ']'))
			continue;
		if (texts[i].part_only && !after_part)
			return false;
		evbuffer_add(s->out, texts[i].name, n);
		s->p += n;
		return !texts[i].fields || scan_header_list(s);
	}
	return false;
}

/* From "[" to "]", both included. */
static bool
scan_section(struct scan *s, enum section_kind kind)
{
	bool	 part = false;

	s->p++;
	evbuffer_add(s->out, "[", 1);
	if (is_digit(*s->p)) {
		if (!scan_part(s))
			return false;
		part = true;
	}
	if (kind == SECT_BODY && *s->p != ']') {
		if (part && *s->p++ != '.')
			return false;
		if (part)
			evbuffer_add(s->out, ".", 1);
		if (!scan_text(s, part))
			return false;
	}
	if (*s->p != ']')
		return false;
	s->p++;
	evbuffer_add(s->out, "]", 1);
	return true;
}

/*
 * RFC 3501 and 9051 want "<offset.length>" with a non-zero length; a bare
 * "<offset>" (the form of the response) is taken as "to the end".
 */
static bool
scan_partial(struct scan *s)
{
	uint32_t	 off, len;

	if (*s->p != '<')
		return true;
	s->p++;
	if (!scan_number(s, false, &off))
		return false;
	if (*s->p == '.') {
		s->p++;
		if (!scan_number(s, true, &len))
			return false;
		evbuffer_add_printf(s->out, "<%" PRIu32 ".%" PRIu32 ">", off,
		    len);
	} else
		evbuffer_add_printf(s->out, "<%" PRIu32 ">", off);
	return *s->p++ == '>';
}

static const struct item *
find_item(const char *name, size_t len, bool bracket)
{
	size_t	 i;

	for (i = 0; i < nitems(items); i++)
		if (strlen(items[i].name) == len &&
		    strncasecmp(name, items[i].name, len) == 0 &&
		    (items[i].section != SECT_NONE) == bracket)
			return &items[i];
	return NULL;
}

static bool
scan_item(struct fetch_att *fa, struct scan *s, const char **err)
{
	const struct item	*it;
	size_t			 len = strcspn(s->p, "[");

	if ((it = find_item(s->p, len, s->p[len] == '[')) == NULL) {
		*err = "Unknown FETCH item";
		return false;
	}
	fa->local |= it->local;
	if (it->local != 0)
		return true;
	if (it->seen)
		fa->sets_seen = true;
	if (evbuffer_get_length(s->out) > 0)
		evbuffer_add(s->out, " ", 1);
	evbuffer_add(s->out, it->name, strlen(it->name));
	s->p += len;
	if (it->section == SECT_NONE)
		return true;
	if (!scan_section(s, it->section)) {
		*err = "Invalid FETCH section";
		return false;
	}
	if (it->partial && !scan_partial(s)) {
		*err = "Invalid FETCH partial range";
		return false;
	}
	if (*s->p != '\0') {
		*err = "Invalid text after FETCH section";
		return false;
	}
	return true;
}

static bool
scan_macro(struct fetch_att *fa, struct scan *s)
{
	size_t	 i;

	for (i = 0; i < nitems(macros); i++) {
		if (strcasecmp(s->p, macros[i].name) != 0)
			continue;
		fa->local |= LOCAL_FAST;
		if (macros[i].upstream != NULL)
			evbuffer_add(s->out, macros[i].upstream,
			    strlen(macros[i].upstream));
		return true;
	}
	return false;
}

/* One element of the list: an atom, never a macro. */
static bool
scan_list_item(struct fetch_att *fa, struct scan *s,
    const struct imap_arg *arg, const char **err)
{
	if (!imap_arg_get_atom(arg, &s->p)) {
		*err = "Invalid FETCH item";
		return false;
	}
	if (scan_macro(fa, s)) {
		*err = "FETCH macro inside a list";
		return false;
	}
	if (!scan_item(fa, s, err))
		return false;
	/* The parser's line limit bounds the whole, but there is no point
	 * in going on once past ours. */
	if (evbuffer_get_length(s->out) > FETCH_ATT_MAX_UPSTREAM) {
		*err = "FETCH items too long";
		return false;
	}
	return true;
}

static bool
scan_arg(struct fetch_att *fa, struct scan *s, const struct imap_arg *arg,
    const char **err)
{
	const struct imap_arg	*list;
	size_t			 n, i;

	if (imap_arg_get_atom(arg, &s->p))
		return scan_macro(fa, s) || scan_item(fa, s, err);
	if (!imap_arg_get_list(arg, &list, &n)) {
		*err = "Invalid FETCH item";
		return false;
	}
	if (n == 0) {
		*err = "Empty FETCH item list";
		return false;
	}
	if (n > FETCH_ATT_MAX_ITEMS) {
		*err = "Too many FETCH items";
		return false;
	}
	for (i = 0; i < n; i++)
		if (!scan_list_item(fa, s, &list[i], err))
			return false;
	return true;
}

/* The upstream text from the buffer; NULL when no item needs it. */
static bool
finish(struct fetch_att *fa, struct evbuffer *out, const char **err)
{
	size_t	 len = evbuffer_get_length(out);

	if (len > FETCH_ATT_MAX_UPSTREAM) {
		*err = "FETCH items too long";
		return false;
	}
	if (len == 0)
		return true;
	if ((fa->upstream = malloc(len + 1)) == NULL) {
		*err = "Out of memory";
		return false;
	}
	if (evbuffer_remove(out, fa->upstream, len) != (int)len) {
		*err = "Out of memory";
		return false;
	}
	fa->upstream[len] = '\0';
	fa->backend = true;
	return true;
}

bool
fetch_att_parse(const struct imap_arg *args, size_t nargs,
    struct fetch_att *fa, const char **err)
{
	struct scan	 s;
	bool		 ok;

	memset(fa, 0, sizeof(*fa));
	/* Two arguments would be RFC 4466 fetch modifiers (CONDSTORE's
	 * CHANGEDSINCE), which the proxy does not offer. */
	if (nargs != 1) {
		*err = nargs == 0 ? "Missing FETCH items" :
		    "Too many FETCH arguments";
		return false;
	}
	if ((s.out = evbuffer_new()) == NULL) {
		*err = "Out of memory";
		return false;
	}
	ok = scan_arg(fa, &s, &args[0], err) && finish(fa, s.out, err);
	evbuffer_free(s.out);
	if (!ok)
		fetch_att_clear(fa);
	return ok;
}

void
fetch_att_clear(struct fetch_att *fa)
{
	free(fa->upstream);
	memset(fa, 0, sizeof(*fa));
}
