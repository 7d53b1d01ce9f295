/*
 * FETCH items (see fetch_att.h).
 *
 * The command parser hands a section with its brackets, field list and
 * partial as one atom ("BODY.PEEK[HEADER.FIELDS (From To)]<0.100>"), so
 * each item is one string to check against the grammar of RFC 9051 §9:
 *
 *   section-spec = section-msgtext / (section-part ["." section-text])
 *   section-part = nz-number *("." nz-number)
 *   section-text = section-msgtext / "MIME"
 *   partial      = "<" number "." nz-number ">"   (RFC 3501: "<" n ">"
 *                   is only in responses, but clients send it; accepted)
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "protocol/fetch_att.h"
#include "protocol/imap_parser.h"

enum item_kind {
	K_LOCAL,		/* answered from the view */
	K_PLAIN,		/* backend, no section */
	K_SECTION,		/* BODY[...] and BODY.PEEK[...] */
	K_BINARY,		/* BINARY[...], BINARY.PEEK[...] */
	K_BINARY_SIZE,
};

static const struct {
	const char	*name;
	enum item_kind	 kind;
	unsigned int	 local;
	bool		 seen;
} items[] = {
	{ "UID", K_LOCAL, FETCH_UID, false },
	{ "FLAGS", K_LOCAL, FETCH_FLAGS, false },
	{ "INTERNALDATE", K_LOCAL, FETCH_INTERNALDATE, false },
	{ "RFC822.SIZE", K_LOCAL, FETCH_RFC822_SIZE, false },
	{ "ENVELOPE", K_PLAIN, 0, false },
	{ "BODYSTRUCTURE", K_PLAIN, 0, false },
	{ "BODY", K_PLAIN, 0, false },
	{ "RFC822", K_PLAIN, 0, true },
	{ "RFC822.HEADER", K_PLAIN, 0, false },
	{ "RFC822.TEXT", K_PLAIN, 0, true },
	{ "BODY[", K_SECTION, 0, true },
	{ "BODY.PEEK[", K_SECTION, 0, false },
	{ "BINARY[", K_BINARY, 0, true },
	{ "BINARY.PEEK[", K_BINARY, 0, false },
	{ "BINARY.SIZE[", K_BINARY_SIZE, 0, false },
};

/* A number of at most 32 bits; nz: not zero and no leading zero. */
static bool
number(const char **pp, bool nz)
{
	const char	*p = *pp;
	uint64_t	 v = 0;

	if (!isdigit((unsigned char)*p) || (nz && *p == '0'))
		return false;
	for (; isdigit((unsigned char)*p); p++)
		if ((v = v * 10 + (uint64_t)(*p - '0')) > UINT32_MAX)
			return false;
	*pp = p;
	return true;
}

/* " (astring astring ...)" of HEADER.FIELDS. */
static bool
field_list(const char **pp)
{
	const char	*p = *pp;
	int		 n = 0;

	if (*p++ != ' ' || *p++ != '(')
		return false;
	for (;;) {
		if (*p == '"') {
			for (p++; *p != '"'; p++) {
				if (*p == '\0' || *p == '\r' || *p == '\n')
					return false;
				if (*p == '\\' && p[1] != '\0')
					p++;
			}
			p++;
		} else {
			const char *start = p;

			while (*p != '\0' && *p != ' ' && *p != ')' &&
			    *p != '(' && *p != '"' && *p != '{' &&
			    (unsigned char)*p > 0x20 && *p != 0x7f &&
			    *p != '%' && *p != '*')
				p++;
			if (p == start)
				return false;
		}
		n++;
		if (*p == ')')
			break;
		if (*p++ != ' ')
			return false;
	}
	*pp = p + 1;
	return n > 0;
}

static bool
section_text(const char **pp, bool after_part)
{
	const char	*p = *pp;

	if (strncasecmp(p, "HEADER.FIELDS.NOT", 17) == 0) {
		p += 17;
		if (!field_list(&p))
			return false;
	} else if (strncasecmp(p, "HEADER.FIELDS", 13) == 0) {
		p += 13;
		if (!field_list(&p))
			return false;
	} else if (strncasecmp(p, "HEADER", 6) == 0)
		p += 6;
	else if (strncasecmp(p, "TEXT", 4) == 0)
		p += 4;
	else if (after_part && strncasecmp(p, "MIME", 4) == 0)
		p += 4;
	else
		return false;
	*pp = p;
	return true;
}

/* What is between "[" and "]"; binary: part numbers only. */
static bool
section(const char **pp, bool binary)
{
	const char	*p = *pp;
	bool		 part = false;

	if (*p == ']')
		return true;
	while (isdigit((unsigned char)*p)) {
		if (!number(&p, true))
			return false;
		part = true;
		if (*p != '.')
			break;
		p++;
		if (!isdigit((unsigned char)*p)) {
			if (binary || !section_text(&p, true))
				return false;
			break;
		}
	}
	if (!part && (binary || !section_text(&p, false)))
		return false;
	*pp = p;
	return *p == ']';
}

static bool
partial(const char **pp)
{
	const char	*p = *pp;

	if (*p != '<')
		return true;
	p++;
	if (!number(&p, false))
		return false;
	if (*p == '.') {
		p++;
		if (!number(&p, true))
			return false;
	}
	if (*p++ != '>')
		return false;
	*pp = p;
	return true;
}

/* Upper-cases the item name, keeps header field names as sent. */
static bool
add_upstream(struct fetch_att *fa, const char *item, size_t *used)
{
	size_t	 len = strlen(item), i;
	bool	 inlist = false;
	char	*up;

	if (*used + len + 2 > FETCH_ATT_MAX_UPSTREAM)
		return false;
	if (fa->upstream == NULL &&
	    (fa->upstream = malloc(FETCH_ATT_MAX_UPSTREAM)) == NULL)
		return false;
	up = fa->upstream + *used;
	if (*used > 0)
		*up++ = ' ';
	for (i = 0; i < len; i++) {
		if (item[i] == '(')
			inlist = true;
		else if (item[i] == ')')
			inlist = false;
		*up++ = inlist ? item[i] : (char)toupper((unsigned char)item[i]);
	}
	*up = '\0';
	*used = (size_t)(up - fa->upstream);
	fa->backend = true;
	return true;
}

static bool
one_item(struct fetch_att *fa, const char *a, size_t *used,
    const char **err)
{
	const char	*p;
	size_t		 i, n;

	for (i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
		n = strlen(items[i].name);
		if (strncasecmp(a, items[i].name, n) != 0)
			continue;
		if (items[i].kind < K_SECTION && a[n] != '\0')
			continue;
		if (items[i].kind == K_LOCAL) {
			fa->local |= items[i].local;
			return true;
		}
		p = a + n;
		if (items[i].kind >= K_SECTION) {
			if (!section(&p, items[i].kind != K_SECTION))
				goto bad;
			p++;			/* "]" */
			if (items[i].kind != K_BINARY_SIZE && !partial(&p))
				goto bad;
			if (*p != '\0')
				goto bad;
		}
		if (items[i].seen)
			fa->sets_seen = true;
		if (!add_upstream(fa, a, used)) {
			*err = "Too many FETCH items";
			return false;
		}
		return true;
	}
 bad:
	*err = "Invalid FETCH item";
	return false;
}

static bool
macro(struct fetch_att *fa, const char *a, size_t *used)
{
	if (strcasecmp(a, "FAST") != 0 && strcasecmp(a, "ALL") != 0 &&
	    strcasecmp(a, "FULL") != 0)
		return false;
	fa->local |= FETCH_FLAGS | FETCH_INTERNALDATE | FETCH_RFC822_SIZE;
	if (strcasecmp(a, "FAST") != 0)
		add_upstream(fa, "ENVELOPE", used);
	if (strcasecmp(a, "FULL") == 0)
		add_upstream(fa, "BODY", used);
	return true;
}

bool
fetch_att_parse(const struct imap_arg *args, size_t nargs,
    struct fetch_att *fa, const char **err)
{
	const struct imap_arg	*list;
	const char		*a;
	size_t			 n, i, used = 0;

	memset(fa, 0, sizeof(*fa));
	*err = "Invalid FETCH items";
	if (nargs != 1)
		return false;
	if (imap_arg_get_atom(&args[0], &a)) {
		if (macro(fa, a, &used))
			return true;
		if (one_item(fa, a, &used, err))
			return true;
		fetch_att_clear(fa);
		return false;
	}
	if (!imap_arg_get_list(&args[0], &list, &n) || n == 0 ||
	    n > FETCH_ATT_MAX_ITEMS)
		return false;
	for (i = 0; i < n; i++)
		if (!imap_arg_get_atom(&list[i], &a) ||
		    !one_item(fa, a, &used, err)) {
			if (list[i].type != IMAP_ARG_ATOM)
				*err = "Invalid FETCH item";
			fetch_att_clear(fa);
			return false;
		}
	return true;
}

void
fetch_att_clear(struct fetch_att *fa)
{
	free(fa->upstream);
	memset(fa, 0, sizeof(*fa));
}
