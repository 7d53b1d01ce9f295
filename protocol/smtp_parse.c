/*
 * SMTP command lines, replies and the DATA stream (see smtp_parse.h).
 *
 * RFC 5321 is the reference: §4.1 command syntax (paths, parameters),
 * §4.2 replies (multi-line with "-"), §4.5.2 transparency (dot-stuffing),
 * §4.5.3 limits; RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 3463 enhanced codes.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "protocol/smtp_parse.h"

#define SMTP_MAX_PATH	256

static enum smtp_result
err(struct smtp_error *e, int code, const char *enhanced, const char *text)
{
	e->code = code;
	e->enhanced = enhanced;
	e->text = text;
	return SMTP_ERROR;
}

enum smtp_result
smtp_read_line(struct smtp_line_reader *r, struct evbuffer *in, char **line_r,
    struct smtp_error *e)
{
	struct evbuffer_ptr	 p;
	size_t			 len;
	char			*line;

	for (;;) {
		p = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
		if (p.pos == -1) {
			len = evbuffer_get_length(in);
			if (r->skipping || len > r->max) {
				evbuffer_drain(in, len);
				if (!r->skipping) {
					r->skipping = true;
					return err(e, 500, "5.5.2",
					    "Line too long");
				}
			}
			return SMTP_MORE;
		}
		if (r->skipping) {
			evbuffer_drain(in, p.pos + 1);
			r->skipping = false;
			continue;
		}
		break;
	}
	len = (size_t)p.pos;
	if (len > r->max + 1) {
		evbuffer_drain(in, len + 1);
		return err(e, 500, "5.5.2", "Line too long");
	}
	if ((line = malloc(len + 1)) == NULL) {
		evbuffer_drain(in, len + 1);
		return err(e, 451, "4.3.0", "Out of memory");
	}
	evbuffer_remove(in, line, len);
	evbuffer_drain(in, 1);
	if (len == 0 || line[len - 1] != '\r') {
		free(line);
		return err(e, 500, "5.5.2", "Bare LF is not allowed");
	}
	line[--len] = '\0';
	if (memchr(line, '\0', len) != NULL || memchr(line, '\r', len) != NULL) {
		free(line);
		return err(e, 500, "5.5.2", "Invalid character in command");
	}
	*line_r = line;
	return SMTP_DONE;
}

/*
 * Commands.
 */

static const struct {
	const char	*name;
	enum smtp_verb	 verb;
	int		 args;		/* 0 none, 1 optional, 2 required */
} verbs[] = {
	{ "EHLO", SMTP_EHLO, 2 }, { "HELO", SMTP_HELO, 2 },
	{ "MAIL", SMTP_MAIL, 2 }, { "RCPT", SMTP_RCPT, 2 },
	{ "DATA", SMTP_DATA, 0 }, { "RSET", SMTP_RSET, 0 },
	{ "NOOP", SMTP_NOOP, 1 }, { "QUIT", SMTP_QUIT, 0 },
	{ "STARTTLS", SMTP_STARTTLS, 0 }, { "AUTH", SMTP_AUTH, 2 },
	{ "HELP", SMTP_HELP, 1 }, { "VRFY", SMTP_VRFY, 2 },
};

/* "<path>" at *s: the address without brackets and source route. */
static bool
parse_path(char **s, char **path_r, bool null_ok)
{
	char	*p = *s, *start, *end;
	bool	 quoted = false;

	if (*p != '<')
		return false;
	start = ++p;
	for (; *p != '\0'; p++) {
		if (*p == '"')
			quoted = !quoted;
		else if (*p == '\\' && quoted && p[1] != '\0')
			p++;
		else if (!quoted && (*p == '>' || *p == ' ' || *p == '<'))
			break;
		else if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	}
	if (*p != '>' || p - start > SMTP_MAX_PATH)
		return false;
	end = p;
	*end = '\0';
	/* A source route "@a,@b:" is accepted and ignored (§4.1.1.3). */
	if (*start == '@') {
		char	*colon = strchr(start, ':');

		if (colon == NULL)
			return false;
		start = colon + 1;
	}
	if (*start == '\0' && !null_ok)
		return false;
	if (*start != '\0' && strchr(start, '@') == NULL)
		return false;
	*path_r = start;
	*s = end + 1;
	return true;
}

static bool
parse_size(const char *v, uint64_t *size_r)
{
	uint64_t	 n = 0;

	if (v == NULL || *v == '\0' || strlen(v) > 20)
		return false;
	for (; *v != '\0'; v++) {
		if (*v < '0' || *v > '9' || n > (UINT64_MAX - 9) / 10)
			return false;
		n = n * 10 + (uint64_t)(*v - '0');
	}
	*size_r = n;
	return true;
}

static bool
parse_params(char *s, struct smtp_command *c, struct smtp_error *e)
{
	char	*tok, *eq, *k;

	while ((tok = strsep(&s, " ")) != NULL) {
		if (*tok == '\0')
			continue;
		if (c->nparams == SMTP_MAX_PARAMS) {
			err(e, 501, "5.5.4", "Too many parameters");
			return false;
		}
		if ((eq = strchr(tok, '=')) != NULL)
			*eq++ = '\0';
		for (k = tok; *k != '\0'; k++) {
			if (!isalnum((unsigned char)*k) && *k != '-') {
				err(e, 501, "5.5.4", "Invalid parameter");
				return false;
			}
			*k = (char)toupper((unsigned char)*k);
		}
		c->params[c->nparams].key = tok;
		c->params[c->nparams].value = eq;
		c->nparams++;
		if (strcmp(tok, "SIZE") == 0) {
			if (!parse_size(eq, &c->size)) {
				err(e, 501, "5.5.4", "Invalid SIZE");
				return false;
			}
			c->has_size = true;
		} else if (strcmp(tok, "BODY") == 0) {
			if (eq != NULL && strcasecmp(eq, "7BIT") == 0)
				c->body = SMTP_BODY_7BIT;
			else if (eq != NULL && strcasecmp(eq, "8BITMIME") == 0)
				c->body = SMTP_BODY_8BITMIME;
			else {
				err(e, 501, "5.5.4", "Invalid BODY");
				return false;
			}
		}
	}
	return true;
}

static bool
parse_mail_rcpt(char *args, struct smtp_command *c, struct smtp_error *e)
{
	const char	*prefix = c->verb == SMTP_MAIL ? "FROM:" : "TO:";
	size_t		 plen = strlen(prefix);

	if (strncasecmp(args, prefix, plen) != 0) {
		err(e, 501, "5.5.4", c->verb == SMTP_MAIL ?
		    "Syntax: MAIL FROM:<address>" : "Syntax: RCPT TO:<address>");
		return false;
	}
	args += plen;
	while (*args == ' ')		/* "MAIL FROM: <a@b>" is common */
		args++;
	if (!parse_path(&args, &c->path, c->verb == SMTP_MAIL)) {
		err(e, 501, "5.1.7", "Invalid address");
		return false;
	}
	if (*args != '\0' && *args != ' ') {
		err(e, 501, "5.5.4", "Syntax error after address");
		return false;
	}
	return parse_params(args, c, e);
}

bool
smtp_parse_command(char *line, struct smtp_command *c, struct smtp_error *e)
{
	char	*args;
	size_t	 i, vlen;

	memset(c, 0, sizeof(*c));
	vlen = strcspn(line, " ");
	args = line[vlen] == ' ' ? line + vlen + 1 : line + vlen;
	line[vlen] = '\0';
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcasecmp(line, verbs[i].name) == 0)
			break;
	if (i == sizeof(verbs) / sizeof(verbs[0])) {
		err(e, 500, "5.5.2", "Command unrecognized");
		return false;
	}
	c->verb = verbs[i].verb;
	if (verbs[i].args == 0 && *args != '\0') {
		err(e, 501, "5.5.4", "No parameters allowed");
		return false;
	}
	if (verbs[i].args == 2 && *args == '\0') {
		err(e, 501, "5.5.4", "Parameter required");
		return false;
	}
	switch (c->verb) {
	case SMTP_MAIL:
	case SMTP_RCPT:
		return parse_mail_rcpt(args, c, e);
	case SMTP_EHLO:
	case SMTP_HELO:
		if (strchr(args, ' ') != NULL) {
			err(e, 501, "5.5.4", "Syntax: EHLO hostname");
			return false;
		}
		c->arg = args;
		return true;
	case SMTP_AUTH:
		c->arg = strsep(&args, " ");
		c->arg2 = args;
		if (args != NULL && (*args == '\0' || strchr(args, ' '))) {
			err(e, 501, "5.5.4", "Syntax: AUTH mechanism "
			    "[initial-response]");
			return false;
		}
		return true;
	default:
		c->arg = *args != '\0' ? args : NULL;
		return true;
	}
}

/*
 * Replies.
 */

void
smtp_reply_reader_init(struct smtp_reply_reader *r, size_t max)
{
	memset(r, 0, sizeof(*r));
	r->lines.max = max;
}

void
smtp_reply_reader_clear(struct smtp_reply_reader *r)
{
	free(r->reply.text);
	memset(&r->reply, 0, sizeof(r->reply));
	r->textlen = 0;
}

static void
reply_enhanced(struct smtp_reply *rep, const char *text)
{
	size_t	 n = strspn(text, "0123456789.");

	/* class.subject.detail with the class matching the code. */
	if (n < 5 || n >= sizeof(rep->enhanced) || text[0] - '0' !=
	    rep->code / 100 || text[1] != '.' ||
	    (text[n] != ' ' && text[n] != '\0'))
		return;
	memcpy(rep->enhanced, text, n);
	rep->enhanced[n] = '\0';
}

static bool
reply_append(struct smtp_reply_reader *r, const char *text)
{
	size_t	 add = strlen(text);
	char	*n;

	if ((n = realloc(r->reply.text, r->textlen + add + 2)) == NULL)
		return false;
	r->reply.text = n;
	if (r->textlen > 0)
		n[r->textlen++] = '\n';
	memcpy(n + r->textlen, text, add + 1);
	r->textlen += add;
	return true;
}

enum smtp_result
smtp_read_reply(struct smtp_reply_reader *r, struct evbuffer *in,
    const struct smtp_reply **rep_r, struct smtp_error *e)
{
	enum smtp_result	 res;
	char			*line;
	int			 code;
	bool			 last;

	for (;;) {
		if ((res = smtp_read_line(&r->lines, in, &line, e)) != SMTP_DONE)
			return res;
		if (strlen(line) < 3 || !isdigit((unsigned char)line[0]) ||
		    !isdigit((unsigned char)line[1]) ||
		    !isdigit((unsigned char)line[2]) ||
		    (line[3] != '\0' && line[3] != ' ' && line[3] != '-')) {
			free(line);
			return err(e, 451, "4.5.0", "Malformed reply");
		}
		code = atoi(line);
		last = line[3] != '-';
		if (code < 200 || code > 599 ||
		    (r->reply.nlines > 0 && code != r->reply.code) ||
		    r->reply.nlines >= SMTP_REPLY_MAX_LINES) {
			free(line);
			return err(e, 451, "4.5.0", "Malformed reply");
		}
		if (r->reply.nlines++ == 0) {
			r->reply.code = code;
			reply_enhanced(&r->reply, line[3] ? line + 4 : "");
		}
		if (!reply_append(r, line[3] ? line + 4 : "")) {
			free(line);
			return err(e, 451, "4.3.0", "Out of memory");
		}
		free(line);
		if (last) {
			*rep_r = &r->reply;
			return SMTP_DONE;
		}
	}
}

/*
 * DATA.
 */

enum {
	D_BOL, D_MID, D_CR, D_DOT, D_DOT_CR,
};

void
smtp_data_init(struct smtp_data *d, smtp_header_cb *cb, void *arg)
{
	memset(d, 0, sizeof(*d));
	d->state = D_BOL;
	d->in_headers = true;
	d->header_cb = cb;
	d->header_arg = arg;
}

static void
hdr_flush(struct smtp_data *d)
{
	if (d->hdrlen > 0 && d->header_cb != NULL)
		d->header_cb(d->hdr, d->hdrlen, d->header_arg);
	d->hdrlen = 0;
}

/* A content byte at the start of a line decides folding. */
static void
hdr_char(struct smtp_data *d, unsigned char c)
{
	if (!d->in_headers)
		return;
	if (d->linelen == 0 && c != ' ' && c != '\t')
		hdr_flush(d);
	if (d->hdrlen < sizeof(d->hdr) - 1)
		d->hdr[d->hdrlen++] = (char)c;
}

static void
hdr_eol(struct smtp_data *d)
{
	if (!d->in_headers)
		return;
	if (d->linelen == 0) {		/* the blank line: body follows */
		hdr_flush(d);
		d->in_headers = false;
	}
}

static void
content(struct smtp_data *d, unsigned char c)
{
	d->size++;
	if (c >= 0x80)
		d->eight_bit = true;
	hdr_char(d, c);
	if (++d->linelen > 998)
		d->long_lines = true;
}

static void
line_end(struct smtp_data *d)
{
	d->size += 2;
	hdr_eol(d);
	d->linelen = 0;
	d->state = D_BOL;
}

size_t
smtp_data_scan(struct smtp_data *d, const unsigned char *buf, size_t len)
{
	size_t		 i;
	unsigned char	 c;

	for (i = 0; i < len && !d->done; i++) {
		c = buf[i];
		switch (d->state) {
		case D_BOL:
			if (c == '.') {
				d->state = D_DOT;
				break;
			}
			/* FALLTHROUGH */
		case D_MID:
			if (c == '\r')
				d->state = D_CR;
			else if (c == '\n') {
				d->bare_eol = true;
				line_end(d);
				d->size--;	/* one byte, not two */
			} else {
				content(d, c);
				d->state = D_MID;
			}
			break;
		case D_CR:
			if (c == '\n') {
				line_end(d);
				break;
			}
			d->bare_eol = true;
			content(d, '\r');
			d->state = D_MID;
			i--;			/* c again, mid-line */
			break;
		case D_DOT:
			if (c == '\r') {
				d->state = D_DOT_CR;
				break;
			}
			/* The dot was stuffing: drop it, c is content. */
			d->state = D_MID;
			i--;
			break;
		case D_DOT_CR:
			if (c == '\n') {
				d->done = true;
				hdr_flush(d);
				break;
			}
			/* ".\rX": a line holding "\rX" after stuffing. */
			d->bare_eol = true;
			content(d, '\r');
			d->state = D_MID;
			i--;
			break;
		}
	}
	return i;
}

void
smtp_dot_stuff(struct evbuffer *out, const char *msg, size_t len)
{
	size_t	 i, start = 0;
	bool	 bol = true;

	for (i = 0; i < len; i++) {
		if (bol && msg[i] == '.')
			evbuffer_add(out, ".", 1);
		bol = false;
		if (msg[i] != '\n')
			continue;
		/* Write the line; a bare LF becomes CRLF. */
		if (i > start && msg[i - 1] == '\r')
			evbuffer_add(out, msg + start, i + 1 - start);
		else {
			evbuffer_add(out, msg + start, i - start);
			evbuffer_add(out, "\r\n", 2);
		}
		start = i + 1;
		bol = true;
	}
	if (start < len) {
		evbuffer_add(out, msg + start, len - start);
		evbuffer_add(out, "\r\n", 2);
	}
	evbuffer_add(out, ".\r\n", 3);
}
