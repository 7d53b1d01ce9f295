/*
 * Message identity keys (see msgkey.h and DESIGN §4).
 *
 * Everything works in fixed buffers on the stack: a header block from a
 * server is untrusted, and a key must come out of any input in bounded
 * time and memory.  Field values longer than FIELD_MAX are cut there; both
 * servers' copies of one message are cut the same way, so the keys still
 * agree.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "protocol/msgkey.h"

#define FIELD_MAX	4096

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

struct fields {
	char	 v[F_COUNT][FIELD_MAX];
	size_t	 len[F_COUNT];
	bool	 seen[F_COUNT];
};

static void
sha256(const void *data, size_t len, unsigned char out[32])
{
	unsigned int	 n = 32;

	if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1)
		memset(out, 0, 32);
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

static void
append(struct fields *f, int which, const char *p, size_t n)
{
	size_t	 room = FIELD_MAX - 1 - f->len[which];

	if (n > room)
		n = room;
	memcpy(f->v[which] + f->len[which], p, n);
	f->len[which] += n;
	f->v[which][f->len[which]] = '\0';
}

static int
field_of(const char *name, size_t n)
{
	int	 i;

	while (n > 0 && (name[n - 1] == ' ' || name[n - 1] == '\t'))
		n--;
	for (i = 0; i < F_COUNT; i++)
		if (strlen(field_names[i]) == n &&
		    strncasecmp(field_names[i], name, n) == 0)
			return i;
	return -1;
}

/* Splits the block into the fields we want, unfolded; the first wins. */
static void
split(const char *hdr, size_t len, struct fields *f)
{
	size_t		 pos = 0, eol, end;
	const char	*colon;
	int		 cur = -1;

	while (pos < len) {
		const char *nl = memchr(hdr + pos, '\n', len - pos);

		eol = nl != NULL ? (size_t)(nl - hdr) : len;
		end = eol;
		if (end > pos && hdr[end - 1] == '\r')
			end--;
		if (end == pos)
			break;			/* the empty line */
		if (hdr[pos] == ' ' || hdr[pos] == '\t') {
			if (cur >= 0)
				append(f, cur, hdr + pos, end - pos);
		} else if ((colon = memchr(hdr + pos, ':', end - pos)) != NULL) {
			cur = field_of(hdr + pos, (size_t)(colon - hdr) - pos);
			if (cur >= 0 && f->seen[cur])
				cur = -1;
			if (cur >= 0) {
				f->seen[cur] = true;
				append(f, cur, colon + 1,
				    end - (size_t)(colon + 1 - hdr));
			}
		} else
			cur = -1;
		pos = eol + 1;
	}
}

/* Drops RFC 5322 comments (nested, with quoted-pairs) into out. */
static size_t
uncomment(const char *in, size_t n, char *out, bool keep_quoted)
{
	size_t	 i, o = 0;
	int	 depth = 0;
	bool	 quoted = false;

	for (i = 0; i < n; i++) {
		char c = in[i];

		if (quoted) {
			if (c == '\\' && i + 1 < n)
				i++;
			else if (c == '"')
				quoted = false;
			if (keep_quoted)
				out[o++] = c;
			continue;
		}
		if (depth > 0) {
			if (c == '\\' && i + 1 < n)
				i++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			continue;
		}
		if (c == '(') {
			depth = 1;
			continue;
		}
		if (c == '"') {
			quoted = true;
			if (keep_quoted)
				out[o++] = c;
			continue;
		}
		out[o++] = c;
	}
	out[o] = '\0';
	return o;
}

bool
msgkey_normalise_id(const char *value, size_t len, char *out)
{
	char		 buf[FIELD_MAX], id[FIELD_MAX];
	unsigned char	 d[32];
	size_t		 n, i, o = 0;
	const char	*lt, *gt, *s;
	char		*at;

	if (len >= FIELD_MAX)
		len = FIELD_MAX - 1;
	n = uncomment(value, len, buf, true);
	/* Whitespace, controls and NUL never belong to an id. */
	for (i = 0; i < n; i++)
		if ((unsigned char)buf[i] > 0x20 && buf[i] != 0x7f)
			id[o++] = buf[i];
	id[o] = '\0';
	s = id;
	if ((lt = strchr(id, '<')) != NULL) {
		s = lt + 1;
		if ((gt = strchr(s, '>')) != NULL)
			id[gt - id] = '\0';
	}
	if (*s == '\0')
		return false;
	if ((at = strrchr(s, '@')) != NULL)
		for (; *at != '\0'; at++)
			*at = (char)tolower((unsigned char)*at);
	if (strlen(s) >= MSGKEY_MAX) {
		sha256(s, strlen(s), d);
		memcpy(out, "l:", 2);
		hex(d, 32, out + 2);
		return true;
	}
	memcpy(out, s, strlen(s) + 1);
	return true;
}

/* Whitespace runs to one space, trimmed, in place. */
static void
collapse(char *s)
{
	char	*r = s, *w = s;
	bool	 space = false;

	while (*r == ' ' || *r == '\t' || *r == '\r' || *r == '\n')
		r++;
	for (; *r != '\0'; r++) {
		if (*r == ' ' || *r == '\t' || *r == '\r' || *r == '\n') {
			space = true;
			continue;
		}
		if (space)
			*w++ = ' ';
		space = false;
		*w++ = *r;
	}
	*w = '\0';
}

/*
 * Date: RFC 5322 §3.3 with the obsolete forms of §4.3, to seconds since
 * 1970 UTC, so that a server writing "+0000" and one writing "+0900 (JST)"
 * agree.  false if it does not parse.
 */
static long long
days_from_civil(long long y, unsigned m, unsigned d)
{
	long long	 era;
	unsigned	 yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

static int
zone_minutes(const char *z)
{
	static const struct {
		const char	*name;
		int		 hours;
	} names[] = {
		{ "UT", 0 }, { "GMT", 0 }, { "Z", 0 }, { "EST", -5 },
		{ "EDT", -4 }, { "CST", -6 }, { "CDT", -5 }, { "MST", -7 },
		{ "MDT", -6 }, { "PST", -8 }, { "PDT", -7 },
	};
	size_t	 i;
	int	 v;

	if ((z[0] == '+' || z[0] == '-') && strlen(z) == 5 &&
	    strspn(z + 1, "0123456789") == 4) {
		v = ((z[1] - '0') * 10 + (z[2] - '0')) * 60 +
		    (z[3] - '0') * 10 + (z[4] - '0');
		return z[0] == '-' ? -v : v;
	}
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(z, names[i].name) == 0)
			return names[i].hours * 60;
	return 0;	/* RFC 5322 §4.3: unknown zones mean UTC */
}

/* Digits only, at most four of them (callers check). */
static int
atoi_bounded(const char *s)
{
	int	 v = 0;

	for (; *s >= '0' && *s <= '9' && v < 100000; s++)
		v = v * 10 + (*s - '0');
	return v;
}

static bool
parse_date(const char *text, long long *out)
{
	static const char *const months[] = { "jan", "feb", "mar", "apr",
	    "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec" };
	char		 buf[FIELD_MAX], *tok[8], *save = NULL, *t;
	int		 ntok = 0, i = 0, day, mon, year, hh, mm, ss = 0;
	size_t		 n;

	n = uncomment(text, strlen(text), buf, false);
	buf[n] = '\0';
	for (t = strtok_r(buf, " \t,", &save); t != NULL && ntok < 8;
	    t = strtok_r(NULL, " \t,", &save))
		tok[ntok++] = t;
	if (ntok > 0 && isalpha((unsigned char)tok[0][0]))
		i = 1;				/* day of week */
	if (ntok - i < 4 || strspn(tok[i], "0123456789") != strlen(tok[i]) ||
	    strlen(tok[i]) > 2)
		return false;
	day = atoi_bounded(tok[i]);
	for (mon = 0; mon < 12; mon++)
		if (strncasecmp(tok[i + 1], months[mon], 3) == 0 &&
		    strlen(tok[i + 1]) == 3)
			break;
	if (mon == 12 || strspn(tok[i + 2], "0123456789") !=
	    strlen(tok[i + 2]) || strlen(tok[i + 2]) < 2 ||
	    strlen(tok[i + 2]) > 4)
		return false;
	year = atoi_bounded(tok[i + 2]);
	if (strlen(tok[i + 2]) == 2)
		year += year < 50 ? 2000 : 1900;
	else if (strlen(tok[i + 2]) == 3)
		year += 1900;
	if (sscanf(tok[i + 3], "%2d:%2d:%2d", &hh, &mm, &ss) < 2 ||
	    day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60)
		return false;
	*out = days_from_civil(year, (unsigned)mon + 1, (unsigned)day) *
	    86400 + hh * 3600 + mm * 60 + ss;
	if (ntok - i >= 5)
		*out -= zone_minutes(tok[i + 4]) * 60LL;
	return true;
}

/*
 * From and To: the addr-specs only, lower-cased and joined by ",", since
 * display names get re-quoted and re-encoded on the way.
 */
static void
addresses(const char *text, char *out)
{
	char	 buf[FIELD_MAX], *p, *piece, *save = NULL, *lt, *gt;
	size_t	 n, o = 0, l;

	n = uncomment(text, strlen(text), buf, false);
	buf[n] = '\0';
	out[0] = '\0';
	for (piece = strtok_r(buf, ",;:", &save); piece != NULL;
	    piece = strtok_r(NULL, ",;:", &save)) {
		if ((lt = strchr(piece, '<')) != NULL) {
			piece = lt + 1;
			if ((gt = strchr(piece, '>')) != NULL)
				*gt = '\0';
		}
		collapse(piece);
		if (strchr(piece, '@') == NULL || strchr(piece, ' ') != NULL)
			continue;
		for (p = piece; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
		l = strlen(piece);
		if (o + l + 2 >= FIELD_MAX)
			break;
		if (o > 0)
			out[o++] = ',';
		memcpy(out + o, piece, l + 1);
		o += l;
	}
	if (o == 0) {
		snprintf(out, FIELD_MAX, "%s", text);
		collapse(out);
	}
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
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes the encoded text of one word into out; its length or -1. */
static int
decode_word(char enc, const char *t, size_t n, char *out, size_t room)
{
	size_t	 i, o = 0;
	unsigned acc = 0;
	int	 bits = 0, v, h, l;

	for (i = 0; i < n && o < room; i++) {
		if (enc == 'B') {
			if (t[i] == '=')
				break;
			if ((v = b64val((unsigned char)t[i])) < 0)
				return -1;
			acc = (acc << 6) | (unsigned)v;
			if ((bits += 6) >= 8) {
				bits -= 8;
				out[o++] = (char)((acc >> bits) & 0xff);
			}
		} else if (t[i] == '_')
			out[o++] = ' ';
		else if (t[i] == '=') {
			if (i + 2 >= n + 0 || (h = hexval((unsigned char)
			    t[i + 1])) < 0 || (l = hexval((unsigned char)
			    t[i + 2])) < 0)
				return -1;
			out[o++] = (char)(h * 16 + l);
			i += 2;
		} else
			out[o++] = t[i];
	}
	return (int)o;
}

/* One "=?charset?e?text?=" at s; its length in *used, or false. */
static bool
encoded_word(const char *s, size_t *used, char *out, size_t room, int *len)
{
	const char	*q1, *q2, *end;
	char		 enc;

	if (s[0] != '=' || s[1] != '?' || (q1 = strchr(s + 2, '?')) == NULL ||
	    q1[1] == '\0' || q1[2] != '?')
		return false;
	enc = (char)toupper((unsigned char)q1[1]);
	q2 = q1 + 3;
	if ((enc != 'B' && enc != 'Q') || (end = strstr(q2, "?=")) == NULL ||
	    memchr(q2, ' ', (size_t)(end - q2)) != NULL)
		return false;
	if ((*len = decode_word(enc, q2, (size_t)(end - q2), out, room)) < 0)
		return false;
	*used = (size_t)(end + 2 - s);
	return true;
}

/* Subject: RFC 2047 words decoded (charset kept), whitespace collapsed. */
static void
subject(const char *text, char *out)
{
	size_t	 i = 0, o = 0, used, ws;
	int	 len;
	bool	 last_word = false;

	while (text[i] != '\0' && o < FIELD_MAX - 1) {
		if (encoded_word(text + i, &used, out + o, FIELD_MAX - 1 - o,
		    &len)) {
			o += (size_t)len;
			i += used;
			last_word = true;
			/* RFC 2047 §6.2: space between two words goes. */
			ws = strspn(text + i, " \t\r\n");
			if (text[i + ws] == '=' && text[i + ws + 1] == '?' &&
			    encoded_word(text + i + ws, &used, out + o, 0,
			    &len))
				i += ws;
			continue;
		}
		last_word = false;
		out[o++] = text[i++];
	}
	(void)last_word;
	out[o] = '\0';
	/* Decoded bytes may hold NUL: keep the string a string. */
	for (i = 0; i < o; i++)
		if (out[i] == '\0')
			out[i] = ' ';
	collapse(out);
}

static void
header_hash(const struct fields *f, char *out)
{
	static char	 date[FIELD_MAX], from[FIELD_MAX], to[FIELD_MAX],
			 subj[FIELD_MAX], all[4 * FIELD_MAX + 4];
	unsigned char	 d[32];
	long long	 t;

	if (parse_date(f->v[F_DATE], &t))
		snprintf(date, sizeof(date), "%lld", t);
	else {
		snprintf(date, sizeof(date), "%s", f->v[F_DATE]);
		collapse(date);
	}
	addresses(f->v[F_FROM], from);
	addresses(f->v[F_TO], to);
	subject(f->v[F_SUBJECT], subj);
	snprintf(all, sizeof(all), "%s\n%s\n%s\n%s", date, from, to, subj);
	sha256(all, strlen(all), d);
	memcpy(out, "h:", 2);
	hex(d, 16, out + 2);
}

void
msgkey_parse(const char *hdr, size_t len, struct msgkey *k)
{
	static struct fields	 f;
	int			 i;

	memset(k, 0, sizeof(*k));
	for (i = 0; i < F_COUNT; i++) {
		f.v[i][0] = '\0';
		f.len[i] = 0;
		f.seen[i] = false;
	}
	split(hdr, len, &f);
	/* NUL inside a value ends it: what follows cannot be trusted. */
	for (i = 0; i < F_COUNT; i++)
		f.len[i] = strlen(f.v[i]);
	if (!msgkey_normalise_id(f.v[F_MSGID], f.len[F_MSGID], k->msgid))
		k->msgid[0] = '\0';
	if (!msgkey_normalise_id(f.v[F_XORIG], f.len[F_XORIG], k->alias) &&
	    !msgkey_normalise_id(f.v[F_XPARENT], f.len[F_XPARENT], k->alias))
		k->alias[0] = '\0';
	header_hash(&f, k->hash);
}

const char *
msgkey_primary(const struct msgkey *k)
{
	return k->msgid[0] != '\0' ? k->msgid : k->hash;
}

uint64_t
msgkey_hash64(const char *key)
{
	unsigned char	 d[32];
	uint64_t	 h = 0;
	int		 i;

	sha256(key, strlen(key), d);
	for (i = 0; i < 8; i++)
		h = (h << 8) | d[i];
	return h != 0 ? h : 1;
}
