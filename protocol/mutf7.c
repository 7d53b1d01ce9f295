/*
 * Modified UTF-7 <-> UTF-8 (see mutf7.h).
 *
 * Printable ASCII stands for itself except "&", written "&-"; everything
 * else is UTF-16 in base64 with "," for "/", between "&" and "-", without
 * padding.  The decoder refuses every form an encoder would not produce:
 * printable ASCII inside a shift, two shifts back to back, non-zero or
 * excess padding bits, broken surrogate pairs, and bytes outside 0x20-0x7e.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/mutf7.h"

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

struct sbuf {
	char	*s;
	size_t	 len, cap;
};

static int
sb_add(struct sbuf *b, char c)
{
	char	*n;

	if (b->len + 2 > b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		if ((n = realloc(b->s, b->cap)) == NULL)
			return -1;
		b->s = n;
	}
	b->s[b->len++] = c;
	b->s[b->len] = '\0';
	return 0;
}

static char *
sb_fail(struct sbuf *b, const char **err, const char *why)
{
	free(b->s);
	*err = why;
	return NULL;
}

/* One code point from UTF-8, shortest form only; -1 if invalid. */
static int32_t
utf8_next(const unsigned char *s, size_t len, size_t *i)
{
	uint32_t	 c = s[*i], min;
	size_t		 n, k;

	if (c < 0x80) {
		(*i)++;
		return c;
	}
	if ((c & 0xe0) == 0xc0) {
		n = 1; c &= 0x1f; min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 2; c &= 0x0f; min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 3; c &= 0x07; min = 0x10000;
	} else
		return -1;
	if (*i + n >= len)
		return -1;
	for (k = 1; k <= n; k++) {
		if ((s[*i + k] & 0xc0) != 0x80)
			return -1;
		c = c << 6 | (s[*i + k] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return -1;
	*i += n + 1;
	return (int32_t)c;
}

static int
flush_units(struct sbuf *b, const uint16_t *u, size_t n)
{
	uint32_t	 bits = 0;
	int		 nbits = 0;
	size_t		 i;

	if (n == 0)
		return 0;
	if (sb_add(b, '&') == -1)
		return -1;
	for (i = 0; i < n; i++) {
		bits = bits << 16 | u[i];
		nbits += 16;
		while (nbits >= 6) {
			nbits -= 6;
			if (sb_add(b, b64chars[(bits >> nbits) & 0x3f]) == -1)
				return -1;
		}
	}
	if (nbits > 0 && sb_add(b, b64chars[(bits << (6 - nbits)) & 0x3f]) ==
	    -1)
		return -1;
	return sb_add(b, '-');
}

char *
mutf7_encode(const char *utf8, size_t len, const char **err)
{
	const unsigned char	*s = (const unsigned char *)utf8;
	struct sbuf		 b = { NULL, 0, 0 };
	uint16_t		*units;
	size_t			 i = 0, n = 0;
	int32_t			 c;

	if ((units = malloc((len + 1) * 2 * sizeof(*units))) == NULL)
		return sb_fail(&b, err, "out of memory");
	if (sb_add(&b, '\0') == -1)
		goto oom;
	b.len = 0;
	while (i < len) {
		if ((c = utf8_next(s, len, &i)) < 0) {
			free(units);
			return sb_fail(&b, err, "invalid UTF-8");
		}
		if (c >= 0x20 && c <= 0x7e) {
			if (flush_units(&b, units, n) == -1 ||
			    sb_add(&b, (char)c) == -1 ||
			    (c == '&' && sb_add(&b, '-') == -1))
				goto oom;
			n = 0;
		} else if (c == 0) {
			free(units);
			return sb_fail(&b, err, "NUL in name");
		} else if (c < 0x10000)
			units[n++] = (uint16_t)c;
		else {
			c -= 0x10000;
			units[n++] = 0xd800 | (c >> 10);
			units[n++] = 0xdc00 | (c & 0x3ff);
		}
	}
	if (flush_units(&b, units, n) == -1)
		goto oom;
	free(units);
	return b.s;
 oom:
	free(units);
	return sb_fail(&b, err, "out of memory");
}

static int
put_utf8(struct sbuf *b, uint32_t c)
{
	if (c < 0x80)
		return sb_add(b, (char)c);
	if (c < 0x800)
		return sb_add(b, (char)(0xc0 | c >> 6)) |
		    sb_add(b, (char)(0x80 | (c & 0x3f)));
	if (c < 0x10000)
		return sb_add(b, (char)(0xe0 | c >> 12)) |
		    sb_add(b, (char)(0x80 | ((c >> 6) & 0x3f))) |
		    sb_add(b, (char)(0x80 | (c & 0x3f)));
	return sb_add(b, (char)(0xf0 | c >> 18)) |
	    sb_add(b, (char)(0x80 | ((c >> 12) & 0x3f))) |
	    sb_add(b, (char)(0x80 | ((c >> 6) & 0x3f))) |
	    sb_add(b, (char)(0x80 | (c & 0x3f)));
}

static int
b64val(unsigned char c)
{
	const char	*p;

	if (c == '\0' || (p = strchr(b64chars, c)) == NULL)
		return -1;
	return (int)(p - b64chars);
}

/* Decodes one shift; *i points after "&", ends after "-". */
static const char *
decode_shift(const unsigned char *s, size_t len, size_t *i, struct sbuf *b)
{
	uint32_t	 bits = 0, hi = 0;
	int		 nbits = 0, v;
	size_t		 start = *i;

	for (; *i < len && s[*i] != '-'; (*i)++) {
		if ((v = b64val(s[*i])) < 0)
			return "invalid base64 in shift";
		bits = (bits << 6 | (uint32_t)v) & 0xffffff;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		v = (int)((bits >> nbits) & 0xffff);
		if (hi != 0) {
			if (v < 0xdc00 || v > 0xdfff)
				return "broken surrogate pair";
			if (put_utf8(b, 0x10000 + ((hi - 0xd800) << 10) +
			    (v - 0xdc00)) == -1)
				return "out of memory";
			hi = 0;
		} else if (v >= 0xd800 && v <= 0xdbff)
			hi = (uint32_t)v;
		else if (v >= 0xdc00 && v <= 0xdfff)
			return "broken surrogate pair";
		else if (v >= 0x20 && v <= 0x7e)
			return "printable ASCII inside a shift";
		else if (v == 0)
			return "NUL in name";
		else if (put_utf8(b, (uint32_t)v) == -1)
			return "out of memory";
	}
	if (*i >= len)
		return "unterminated shift";
	if (*i == start)
		return "empty shift";
	if (hi != 0)
		return "broken surrogate pair";
	if (nbits >= 6 || (bits & ((1u << nbits) - 1)) != 0)
		return "bad padding bits";
	(*i)++;
	return NULL;
}

char *
mutf7_decode(const char *mutf7, size_t len, const char **err)
{
	const unsigned char	*s = (const unsigned char *)mutf7;
	struct sbuf		 b = { NULL, 0, 0 };
	const char		*why;
	size_t			 i = 0, last_shift_end = (size_t)-1;

	if (sb_add(&b, '\0') == -1)
		return sb_fail(&b, err, "out of memory");
	b.len = 0;
	while (i < len) {
		if (s[i] < 0x20 || s[i] > 0x7e)
			return sb_fail(&b, err, "invalid character");
		if (s[i] != '&') {
			if (sb_add(&b, (char)s[i++]) == -1)
				return sb_fail(&b, err, "out of memory");
			continue;
		}
		if (i + 1 < len && s[i + 1] == '-') {
			if (sb_add(&b, '&') == -1)
				return sb_fail(&b, err, "out of memory");
			i += 2;
			continue;
		}
		if (i == last_shift_end)
			return sb_fail(&b, err, "two shifts back to back");
		i++;
		if ((why = decode_shift(s, len, &i, &b)) != NULL)
			return sb_fail(&b, err, why);
		last_shift_end = i;
	}
	return b.s;
}
