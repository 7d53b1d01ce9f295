/*
 * Message identity keys (see msgkey.h and DESIGN §4).
 *
 * A header block comes from a server and is untrusted, so every step here
 * is a constant number of linear passes over its bytes and nothing is
 * allocated but libcrypto's digest context.  The wanted fields are found
 * once, as spans of the block with their folded lines inside: CR and LF
 * count as whitespace everywhere below, which is what unfolding and then
 * collapsing whitespace gives.  The normalised Date/From/To/Subject are
 * never built as strings but stream straight into SHA-256, and an overlong
 * Message-ID is hashed whole, so no value is ever silently cut short.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "protocol/msgkey.h"

#define NONE		SIZE_MAX
#define DATE_MAX	128	/* a date-time without comments, and more */

enum field {
	F_MSGID,
	F_XORIG,
	F_XPARENT,
	F_DATE,
	F_FROM,
	F_TO,
	F_SUBJECT,
	F_COUNT
};

static const char *const field_names[F_COUNT] = {
	"Message-ID", "X-Microsoft-Original-Message-ID",
	"X-MS-Exchange-Parent-Message-ID", "Date", "From", "To", "Subject",
};

struct span {
	const unsigned char	*p;
	size_t			 len;
};

struct fields {
	struct span	 v[F_COUNT];
	bool		 seen[F_COUNT];
};

enum lexkind {
	LX_TEXT,
	LX_QUOTED,		/* a quoted string, its quotes included */
	LX_COMMENT		/* a comment, its parentheses included */
};

struct lexer {
	const unsigned char	*p;
	size_t			 len, i;
	size_t			 depth;		/* comment nesting */
	bool			 quotes;	/* quoted strings are known */
	bool			 inquote, escaped;
};

struct digest {
	EVP_MD_CTX	*ctx;
	size_t		 n;
	unsigned char	 buf[512];
};

/* Whitespace runs become one space, none at either end. */
struct collapse {
	struct digest	*d;
	bool		 any, space;
};

static int
lower(int c)
{
	/* Not tolower(): the locale must not change a key. */
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static bool
is_ws(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* What may stay in a key: no whitespace, controls or NUL. */
static bool
is_kept(int c)
{
	return c > ' ' && c != 0x7f;
}

static void
hex(const unsigned char *in, size_t n, char *out)
{
	static const char	 digits[] = "0123456789abcdef";
	size_t			 i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/*
 * libcrypto fails here only when memory is exhausted.  A made-up key could
 * pair two unrelated messages, and a STORE \Deleted would then reach both
 * of them: stopping is the only safe answer.
 */
static void
dg_check(bool ok)
{
	if (!ok)
		abort();
}

/*
 * SHA-256, fetched from the provider once: EVP_sha256() makes every
 * EVP_DigestInit_ex() look the algorithm up again under libcrypto's
 * locks, once per message of a cold SELECT.  Kept for the process's life.
 */
static EVP_MD *dg_sha256;

static void
dg_init(struct digest *d)
{
	if (dg_sha256 == NULL)
		dg_sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
	d->n = 0;
	d->ctx = EVP_MD_CTX_new();
	dg_check(dg_sha256 != NULL && d->ctx != NULL &&
	    EVP_DigestInit_ex(d->ctx, dg_sha256, NULL) == 1);
}

static void
dg_put(struct digest *d, int c)
{
	if (d->n == sizeof(d->buf)) {
		dg_check(EVP_DigestUpdate(d->ctx, d->buf, d->n) == 1);
		d->n = 0;
	}
	d->buf[d->n++] = (unsigned char)c;
}

static void
dg_puts(struct digest *d, const char *s)
{
	while (*s != '\0')
		dg_put(d, (unsigned char)*s++);
}

static void
dg_final(struct digest *d, unsigned char md[32])
{
	unsigned int	 n = 32;

	dg_check(EVP_DigestUpdate(d->ctx, d->buf, d->n) == 1 &&
	    EVP_DigestFinal_ex(d->ctx, md, &n) == 1);
	EVP_MD_CTX_free(d->ctx);
	d->ctx = NULL;
}

static void
cl_put(struct collapse *cl, int c)
{
	if (is_ws(c)) {
		cl->space = cl->any;
		return;
	}
	if (cl->space)
		dg_put(cl->d, ' ');
	cl->space = false;
	cl->any = true;
	dg_put(cl->d, c);
}

/* The fallback for a value that does not parse: its bytes, collapsed. */
static void
collapsed(const struct span *v, struct digest *d)
{
	struct collapse	 cl = { d, false, false };
	size_t		 i;

	for (i = 0; i < v->len; i++)
		cl_put(&cl, v->p[i]);
}

static bool
name_is(const unsigned char *name, size_t n, const char *want)
{
	size_t	 i;

	if (strlen(want) != n)
		return false;
	for (i = 0; i < n; i++)
		if (lower(name[i]) != lower((unsigned char)want[i]))
			return false;
	return true;
}

static enum field
field_of(const unsigned char *name, size_t n)
{
	int	 i;

	/* RFC 5322 §4.5 (obs-optional): WSP may come before the colon. */
	while (n > 0 && (name[n - 1] == ' ' || name[n - 1] == '\t'))
		n--;
	for (i = 0; i < F_COUNT; i++)
		if (name_is(name, n, field_names[i]))
			return (enum field)i;
	return F_COUNT;
}

/* The wanted fields as spans of the block, folded lines included. */
static void
split(const unsigned char *hdr, size_t len, struct fields *f)
{
	const unsigned char	*nl, *colon;
	size_t			 pos = 0, eol, end;
	enum field		 cur = F_COUNT;

	while (pos < len) {
		nl = memchr(hdr + pos, '\n', len - pos);
		eol = nl != NULL ? (size_t)(nl - hdr) : len;
		end = eol > pos && hdr[eol - 1] == '\r' ? eol - 1 : eol;
		if (end == pos)
			break;			/* the empty line */
		if (hdr[pos] == ' ' || hdr[pos] == '\t') {
			if (cur != F_COUNT)
				f->v[cur].len = end - (size_t)(f->v[cur].p - hdr);
		} else if ((colon = memchr(hdr + pos, ':', end - pos)) != NULL) {
			cur = field_of(hdr + pos, (size_t)(colon - hdr) - pos);
			/* The first occurrence counts; the others, folded
			 * lines and all, are skipped. */
			if (cur != F_COUNT && f->seen[cur])
				cur = F_COUNT;
			if (cur != F_COUNT) {
				f->seen[cur] = true;
				f->v[cur].p = colon + 1;
				f->v[cur].len = end - (size_t)(colon + 1 - hdr);
			}
		} else
			cur = F_COUNT;		/* garbage: skip it */
		pos = eol + 1;
	}
}

static void
lex_init(struct lexer *lx, const struct span *v, bool quotes)
{
	memset(lx, 0, sizeof(*lx));
	lx->p = v->p;
	lx->len = v->len;
	lx->quotes = quotes;
}

/*
 * The next byte and what it is part of (RFC 5322 §3.2.1-3.2.4); false at
 * the end.  A backslash quotes the next byte in a comment or a quoted
 * string, so "\)" closes no comment.  Inside quotes "(" is just a byte.
 */
static bool
lex_next(struct lexer *lx, int *c, enum lexkind *kind)
{
	if (lx->i >= lx->len)
		return false;
	*c = lx->p[lx->i++];
	if (lx->escaped) {
		lx->escaped = false;
		*kind = lx->depth > 0 ? LX_COMMENT : LX_QUOTED;
	} else if (lx->depth > 0) {
		*kind = LX_COMMENT;
		if (*c == '\\')
			lx->escaped = true;
		else if (*c == '(')
			lx->depth++;
		else if (*c == ')')
			lx->depth--;
	} else if (lx->inquote) {
		*kind = LX_QUOTED;
		if (*c == '\\')
			lx->escaped = true;
		else if (*c == '"')
			lx->inquote = false;
	} else if (*c == '(') {
		*kind = LX_COMMENT;
		lx->depth = 1;
	} else if (*c == '"' && lx->quotes) {
		*kind = LX_QUOTED;
		lx->inquote = true;
	} else
		*kind = LX_TEXT;
	return true;
}

/*
 * Message-ID.  Quoted strings are not special here: DESIGN §4 asks for
 * comments and whitespace out, then the "<...>" content, and real ids do
 * not quote.
 */
static bool
id_next(struct lexer *lx, int *c)
{
	enum lexkind	 kind;

	while (lex_next(lx, c, &kind))
		if (kind != LX_COMMENT && is_kept(*c))
			return true;
	return false;
}

struct idpos {
	size_t	 start, end;	/* the id, counted in kept bytes */
	size_t	 at;		/* its last '@', or NONE */
};

/* Between the first '<' and the next '>' (or the end), else all of it. */
static void
id_locate(const struct span *v, struct idpos *ip)
{
	struct lexer	 lx;
	size_t		 n, lt = NONE, gt = NONE;
	int		 c;

	ip->at = NONE;
	lex_init(&lx, v, false);
	for (n = 0; id_next(&lx, &c); n++) {
		if (c == '<' && lt == NONE) {
			lt = n;
			ip->at = NONE;
		} else if (c == '>' && lt != NONE && gt == NONE)
			gt = n;
		else if (c == '@' && gt == NONE)
			ip->at = n;
	}
	ip->start = lt == NONE ? 0 : lt + 1;
	ip->end = gt == NONE ? n : gt;
}

/*
 * The domain is case-insensitive and the local part is not (RFC 5321
 * §2.4).  An id too long for a key is hashed whole rather than cut, so
 * that two ids sharing a long prefix stay two.
 */
static void
id_write(const struct span *v, const struct idpos *ip, char *out)
{
	struct lexer	 lx;
	struct digest	 d;
	unsigned char	 md[32];
	size_t		 n, o = 0;
	bool		 big = ip->end - ip->start > MSGKEY_MAX - 1;
	int		 c;

	if (big)
		dg_init(&d);
	lex_init(&lx, v, false);
	for (n = 0; n < ip->end && id_next(&lx, &c); n++) {
		if (n < ip->start)
			continue;
		if (ip->at != NONE && n > ip->at)
			c = lower(c);
		if (big)
			dg_put(&d, c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	if (big) {
		dg_final(&d, md);
		memcpy(out, "l:", 2);
		hex(md, sizeof(md), out + 2);
	}
}

bool
msgkey_normalise_id(const char *value, size_t len, char *out)
{
	struct span	 v = { (const unsigned char *)value, len };
	struct idpos	 ip;

	out[0] = '\0';
	if (len == 0)
		return false;
	id_locate(&v, &ip);
	if (ip.end <= ip.start)
		return false;
	id_write(&v, &ip, out);
	return true;
}

/*
 * Date.  RFC 5322 §3.3 with the obsolete forms of §4.3, written as seconds
 * since 1970 UTC, so that "+0000" from one server and "+0100 (CET)" from
 * the other agree.  The text is first taken without comments and with
 * whitespace runs as one space; a date-time is far shorter than DATE_MAX
 * then, so anything longer is not one.
 */
static bool
date_text(const struct span *v, char *buf)
{
	struct lexer	 lx;
	enum lexkind	 kind;
	size_t		 o = 0;
	bool		 space = false;
	int		 c;

	lex_init(&lx, v, false);
	while (lex_next(&lx, &c, &kind)) {
		if (kind == LX_COMMENT || is_ws(c)) {
			space = true;
			continue;
		}
		if (c < ' ' || c > '~' || o + 3 > DATE_MAX)
			return false;
		if (space && o > 0)
			buf[o++] = ' ';
		space = false;
		buf[o++] = (char)c;
	}
	buf[o] = '\0';
	return true;
}

static const char *
skip_sp(const char *s)
{
	while (*s == ' ')
		s++;
	return s;
}

/* A run of ndigits within [min, max], after optional spaces. */
static bool
number(const char **sp, size_t min, size_t max, int *v, size_t *ndigits)
{
	const char	*s = skip_sp(*sp);
	size_t		 n;

	*v = 0;
	for (n = 0; s[n] >= '0' && s[n] <= '9'; n++)
		if (n < max)
			*v = *v * 10 + (s[n] - '0');
	if (n < min || n > max)
		return false;
	if (ndigits != NULL)
		*ndigits = n;
	*sp = s + n;
	return true;
}

/* A run of letters after optional spaces; its length, 0 if none. */
static size_t
word(const char **sp, const char **w)
{
	const char	*s = skip_sp(*sp);
	size_t		 n;

	for (n = 0; (s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' &&
	    s[n] <= 'Z'); n++)
		;
	*w = s;
	*sp = s + n;
	return n;
}

static bool
punct(const char **sp, char c)
{
	const char	*s = skip_sp(*sp);

	if (*s != c)
		return false;
	*sp = s + 1;
	return true;
}

static int
month_of(const char **sp)
{
	static const char *const months[] = { "jan", "feb", "mar", "apr",
	    "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec" };
	const char	*w;
	int		 i;

	if (word(sp, &w) == 3)
		for (i = 0; i < 12; i++)
			if (name_is((const unsigned char *)w, 3, months[i]))
				return i + 1;
	return 0;
}

/* An optional day-of-week; its name is checked, its truth is not. */
static bool
day_of_week(const char **sp)
{
	static const char *const days[] = { "mon", "tue", "wed", "thu",
	    "fri", "sat", "sun" };
	const char	*w, *s = *sp;
	size_t		 n, i;

	if ((n = word(&s, &w)) == 0)
		return true;
	for (i = 0; i < 7; i++)
		if (n == 3 && name_is((const unsigned char *)w, 3, days[i]))
			break;
	if (i == 7)
		return false;
	(void)punct(&s, ',');
	*sp = s;
	return true;
}

/* Minutes east of UTC; a missing zone, military letters (RFC 5322 §4.3
 * says they were never used consistently) and unknown names are UTC. */
static bool
zone_of(const char **sp, int *minutes)
{
	static const struct {
		const char	*name;
		int		 hours;
	} names[] = {
		{ "ut", 0 }, { "gmt", 0 }, { "est", -5 }, { "edt", -4 },
		{ "cst", -6 }, { "cdt", -5 }, { "mst", -7 }, { "mdt", -6 },
		{ "pst", -8 }, { "pdt", -7 },
	};
	const char	*w, *s = skip_sp(*sp);
	size_t		 n, i;
	int		 v, sign;

	*minutes = 0;
	if (*s == '+' || *s == '-') {
		sign = *s++ == '-' ? -1 : 1;
		if (!number(&s, 4, 4, &v, NULL) || v % 100 > 59)
			return false;
		*minutes = sign * (v / 100 * 60 + v % 100);
	} else if ((n = word(&s, &w)) > 0) {
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (name_is((const unsigned char *)w, n, names[i].name))
				*minutes = names[i].hours * 60;
	}
	*sp = s;
	return true;
}

/* Howard Hinnant's days_from_civil: days since 1970-01-01. */
static long long
days_from_civil(long long y, int m, int d)
{
	long long	 era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int
month_days(int year, int month)
{
	static const int	 days[] = { 31, 28, 31, 30, 31, 30, 31, 31,
				    30, 31, 30, 31 };
	bool			 leap;

	leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	return days[month - 1] + (month == 2 && leap);
}

static bool
parse_date(const char *s, long long *t)
{
	int	 day, mon, year, hh, mm, ss = 0, zone;
	size_t	 ydigits;

	if (!day_of_week(&s) || !number(&s, 1, 2, &day, NULL) ||
	    (mon = month_of(&s)) == 0 ||
	    !number(&s, 2, 4, &year, &ydigits) ||
	    !number(&s, 1, 2, &hh, NULL) || !punct(&s, ':') ||
	    !number(&s, 2, 2, &mm, NULL))
		return false;
	if (punct(&s, ':') && !number(&s, 2, 2, &ss, NULL))
		return false;
	if (!zone_of(&s, &zone) || *skip_sp(s) != '\0')
		return false;
	/* RFC 5322 §4.3: 00-49 is 20xx, 50-99 is 19xx, 3 digits +1900. */
	if (ydigits == 2)
		year += year < 50 ? 2000 : 1900;
	else if (ydigits == 3)
		year += 1900;
	if (day < 1 || day > month_days(year, mon) || hh > 23 || mm > 59 ||
	    ss > 60)
		return false;
	*t = days_from_civil(year, mon, day) * 86400 + hh * 3600LL +
	    mm * 60 + ss - zone * 60LL;
	return true;
}

static void
date_part(const struct span *v, struct digest *d)
{
	char		 buf[DATE_MAX], num[32];
	long long	 t;

	if (!date_text(v, buf) || !parse_date(buf, &t)) {
		collapsed(v, d);
		return;
	}
	snprintf(num, sizeof(num), "%lld", t);
	dg_puts(d, num);
}

/*
 * From and To: the addr-specs only, lower-cased and joined by ",", since
 * display names get re-quoted, re-encoded or dropped on the way.  An item
 * of the list ends at ',' (or at ':' and ';' of group syntax) outside
 * brackets, quotes and comments.  It is read twice: once to find its
 * brackets, once to write the address.  A display name needs brackets
 * after it, so in an item without them a quoted string is a local part
 * ("john doe"@example.com) and stays.
 */
struct item {
	struct lexer	 from;		/* the lexer at its start */
	size_t		 end;		/* offset of its delimiter */
	size_t		 lt, gt;	/* offsets of '<' and '>', or NONE */
	size_t		 route;		/* last ':' inside, or NONE */
	size_t		 kept;		/* bytes of the address in brackets */
	bool		 at;		/* an '@' outside quotes and comments */
};

static void
item_bracket(struct item *it, int c, enum lexkind kind, size_t pos)
{
	if (kind == LX_COMMENT)
		return;
	if (kind == LX_TEXT && c == '>')
		it->gt = pos;
	else if (kind == LX_TEXT && c == ':') {
		/* obs-route (RFC 5322 §4.4): "<@relay,@relay:user@host>" */
		it->route = pos;
		it->kept = 0;
	} else if (is_kept(c))
		it->kept++;
}

static bool
item_scan(struct lexer *lx, struct item *it)
{
	enum lexkind	 kind;
	size_t		 pos;
	int		 c;

	if (lx->i >= lx->len)
		return false;
	memset(it, 0, sizeof(*it));
	it->from = *lx;
	it->end = lx->len;
	it->lt = it->gt = it->route = NONE;
	while (lex_next(lx, &c, &kind)) {
		pos = lx->i - 1;
		if (it->lt != NONE && it->gt == NONE)
			item_bracket(it, c, kind, pos);
		else if (kind != LX_TEXT)
			continue;
		else if (c == ',' || c == ';' || c == ':') {
			it->end = pos;
			break;
		} else if (c == '<' && it->lt == NONE)
			it->lt = pos;
		else if (c == '@')
			it->at = true;
	}
	return true;
}

/* Writes the item's address, "," first unless it is the first; false if
 * the item holds none (a display name alone, a group name, "<>"). */
static bool
item_write(const struct item *it, struct digest *d, bool first)
{
	struct lexer	 lx = it->from;
	enum lexkind	 kind;
	size_t		 lo, hi;
	int		 c;

	if (it->lt != NONE && it->kept > 0) {
		lo = (it->route != NONE ? it->route : it->lt) + 1;
		hi = it->gt != NONE ? it->gt : it->end;
	} else if (it->lt == NONE && it->at) {
		lo = it->from.i;
		hi = it->end;
	} else
		return false;
	if (!first)
		dg_put(d, ',');
	while (lx.i < hi && lex_next(&lx, &c, &kind))
		if (lx.i - 1 >= lo && kind != LX_COMMENT && is_kept(c))
			dg_put(d, lower(c));
	return true;
}

static void
addr_part(const struct span *v, struct digest *d)
{
	struct lexer	 lx;
	struct item	 it;
	bool		 any = false;

	lex_init(&lx, v, true);
	while (item_scan(&lx, &it))
		if (item_write(&it, d, !any))
			any = true;
	if (!any)
		collapsed(v, d);
}

/*
 * Subject: RFC 2047 encoded-words decoded to their bytes (no charset
 * conversion: both copies were written in the same one, or were decoded by
 * the same rules), then whitespace collapsed.  A word is decoded wherever
 * it stands, as mail clients do, not only between whitespace.
 */
struct eword {
	char	 enc;			/* 'B' or 'Q' */
	size_t	 text, tlen;		/* the encoded text */
	size_t	 end;			/* offset after "?=" */
};

static bool
charset_char(int c)
{
	/* RFC 2047 §2: token, i.e. no SPACE, CTLs or especials. */
	return c > ' ' && c < 0x7f && strchr("()<>@,;:\"/[]?.=", c) == NULL;
}

static int
b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = lower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Is the encoded text well formed?  Padding only at the end for B, "="
 * only before two hex digits for Q. */
static bool
ew_valid(const unsigned char *t, size_t n, char enc)
{
	size_t	 i;
	bool	 pad = false;

	for (i = 0; i < n; i++) {
		if (enc == 'B') {
			if (t[i] == '=')
				pad = true;
			else if (pad || b64val(t[i]) < 0)
				return false;
		} else if (t[i] == '=') {
			if (i + 2 >= n || hexval(t[i + 1]) < 0 ||
			    hexval(t[i + 2]) < 0)
				return false;
			i += 2;
		}
	}
	return true;
}

/*
 * "=?charset?enc?text?=" at offset i.  Each attempt stops at whitespace or
 * at the third '?' after "=?", and attempts start only at "=?", so a run
 * of them reads every byte a bounded number of times.
 */
static bool
ew_match(const struct span *v, size_t i, struct eword *ew)
{
	const unsigned char	*p = v->p;
	size_t			 j = i + 2;

	if (i + 1 >= v->len || p[i] != '=' || p[i + 1] != '?')
		return false;
	while (j < v->len && charset_char(p[j]))
		j++;
	if (j == i + 2 || j + 2 >= v->len || p[j] != '?' || p[j + 2] != '?')
		return false;
	ew->enc = (char)(p[j + 1] == 'b' || p[j + 1] == 'B' ? 'B' :
	    p[j + 1] == 'q' || p[j + 1] == 'Q' ? 'Q' : 0);
	if (ew->enc == 0)
		return false;
	ew->text = j = j + 3;
	while (j < v->len && p[j] != '?' && p[j] > ' ' && p[j] < 0x7f)
		j++;
	if (j + 1 >= v->len || p[j] != '?' || p[j + 1] != '=')
		return false;
	ew->tlen = j - ew->text;
	ew->end = j + 2;
	return ew_valid(p + ew->text, ew->tlen, ew->enc);
}

static void
ew_decode(const struct span *v, const struct eword *ew, struct collapse *cl)
{
	const unsigned char	*t = v->p + ew->text;
	unsigned int		 acc = 0;
	size_t			 i;
	int			 bits = 0;

	for (i = 0; i < ew->tlen; i++) {
		if (ew->enc == 'B') {
			if (t[i] == '=')
				break;
			acc = (acc << 6 | (unsigned)b64val(t[i])) & 0xffff;
			if ((bits += 6) >= 8) {
				bits -= 8;
				cl_put(cl, (int)(acc >> bits) & 0xff);
			}
		} else if (t[i] == '_')
			cl_put(cl, ' ');	/* RFC 2047 §4.2 (2) */
		else if (t[i] == '=') {
			cl_put(cl, hexval(t[i + 1]) << 4 | hexval(t[i + 2]));
			i += 2;
		} else
			cl_put(cl, t[i]);
	}
}

static void
subject_part(const struct span *v, struct digest *d)
{
	struct collapse	 cl = { d, false, false };
	struct eword	 ew;
	size_t		 i = 0, j;
	bool		 after_word = false;

	while (i < v->len) {
		if (is_ws(v->p[i])) {
			for (j = i; j < v->len && is_ws(v->p[j]); j++)
				;
			/* RFC 2047 §6.2: whitespace between two words
			 * is not displayed. */
			if (!after_word || !ew_match(v, j, &ew))
				cl_put(&cl, ' ');
			i = j;
			after_word = false;
		} else if (ew_match(v, i, &ew)) {
			ew_decode(v, &ew, &cl);
			i = ew.end;
			after_word = true;
		} else {
			cl_put(&cl, v->p[i++]);
			after_word = false;
		}
	}
}

/* SHA-256 over "date\nfrom\nto\nsubject"; none of the normalised parts
 * can hold a LF, so the parts cannot run into each other. */
static void
header_hash(const struct fields *f, char *out)
{
	struct digest	 d;
	unsigned char	 md[32];

	dg_init(&d);
	date_part(&f->v[F_DATE], &d);
	dg_put(&d, '\n');
	addr_part(&f->v[F_FROM], &d);
	dg_put(&d, '\n');
	addr_part(&f->v[F_TO], &d);
	dg_put(&d, '\n');
	subject_part(&f->v[F_SUBJECT], &d);
	dg_final(&d, md);
	memcpy(out, "h:", 2);
	hex(md, 16, out + 2);
}

static bool
normalise_span(const struct span *v, char *out)
{
	return msgkey_normalise_id((const char *)v->p, v->len, out);
}

static void
parse(const char *hdr, size_t len, struct msgkey *k, bool always_hash)
{
	static const unsigned char	 empty[1];
	struct fields			 f;
	int				 i;

	memset(k, 0, sizeof(*k));
	for (i = 0; i < F_COUNT; i++) {
		f.v[i].p = empty;
		f.v[i].len = 0;
		f.seen[i] = false;
	}
	split((const unsigned char *)hdr, len, &f);
	(void)normalise_span(&f.v[F_MSGID], k->msgid);
	/* Exchange keeps the id it replaced in one of two fields. */
	if (!normalise_span(&f.v[F_XORIG], k->alias))
		(void)normalise_span(&f.v[F_XPARENT], k->alias);
	if (always_hash || k->msgid[0] == '\0')
		header_hash(&f, k->hash);
}

void
msgkey_parse(const char *hdr, size_t len, struct msgkey *k)
{
	parse(hdr, len, k, true);
}

void
msgkey_parse_primary(const char *hdr, size_t len, struct msgkey *k)
{
	parse(hdr, len, k, false);
}

const char *
msgkey_primary(const struct msgkey *k)
{
	return k->msgid[0] != '\0' ? k->msgid : k->hash;
}

uint64_t
msgkey_hash64(const char *key)
{
	struct digest	 d;
	unsigned char	 md[32];
	uint64_t	 h = 0;
	int		 i;

	dg_init(&d);
	dg_puts(&d, key);
	dg_final(&d, md);
	for (i = 0; i < 8; i++)
		h = h << 8 | md[i];
	return h != 0 ? h : 1;
}
