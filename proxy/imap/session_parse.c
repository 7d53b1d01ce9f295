/*
 * Reading client input: commands through the IMAP parser, and the raw
 * lines of an AUTHENTICATE exchange.  Limits are strict before login (a
 * stranger gets 8 kB lines, but ID its RFC's 64 kB, and no literal over
 * 8 kB) and relaxed after.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "protocol/imap_parser.h"
#include "proxy/core/log.h"
#include "proxy/core/server.h"
#include "proxy/imap/session_impl.h"

#define PREAUTH_MAX_LINE	8192
/*
 * ID's own bounds (RFC 2971 §3.3): 30 pairs, fields of 30 octets, values
 * of 1024, each quoted with every octet escaped at worst.
 */
#define PREAUTH_MAX_ID_LINE	(30 * (2 + 2 * 30 + 1 + 2 + 2 * 1024 + 1) + 64)
#define PREAUTH_MAX_LITERAL	8192
#define AUTH_LINE_MAX		8192

static void
limits_for(struct imap_parser_limits *l, int authenticated)
{
	imap_parser_default_limits(l);
	if (!authenticated) {
		l->max_line = PREAUTH_MAX_LINE;
		l->max_literal = PREAUTH_MAX_LITERAL;
		l->max_inline_literal = PREAUTH_MAX_LITERAL;
		l->max_depth = 4;
		l->max_args = 64;
	}
}

struct imap_parser *
sess_parser_new(void)
{
	struct imap_parser_limits	 l;
	struct imap_parser		*p;

	limits_for(&l, 0);
	if ((p = imap_parser_new(IMAP_PARSER_COMMAND, &l)) != NULL)
		imap_parser_long_line(p, "ID", PREAUTH_MAX_ID_LINE);
	return p;
}

/* Logged in: an APPEND's message may be as big as the limit, and
 * streams (cmd_append.c); every other literal stays small. */
void
sess_parser_relax(struct imap_session *s)
{
	struct imap_parser_limits	 l;

	limits_for(&l, 1);
	l.max_literal = s->conf->max_message_size;
	imap_parser_set_limits(s->parser, &l);
	imap_parser_long_line(s->parser, NULL, 0);
	imap_parser_stream_only(s->parser, "APPEND");
	imap_parser_set_stream(s->parser, true, SESS_APPEND_STREAM_MIN);
}

/*
 * One step of command input: 1 if a command was dispatched or an error
 * answered (the caller loops), 0 if more input is needed.
 */
int
sess_parse_command(struct imap_session *s, struct evbuffer *in)
{
	const struct imap_command	*c;
	const char			*tag, *name, *err;

	switch (imap_parser_read(s->parser, in)) {
	case IMAP_PARSE_MORE:
		return 0;
	case IMAP_PARSE_CONTINUE:
		if (imap_parser_literal_streamed(s->parser))
			return sess_append_begin(s, s->parser);
		if ((name = imap_parser_name(s->parser)) != NULL &&
		    strcasecmp(name, "APPEND") == 0 &&
		    (err = sess_append_precheck(s, s->parser)) != NULL) {
			/* The client waits for "+": it sends nothing more
			 * of this command. */
			sess_printf(s, "%s %s\r\n",
			    imap_parser_tag(s->parser), err);
			imap_parser_reset(s->parser);
			return 1;
		}
		sess_printf(s, "+ Ready for literal data\r\n");
		return 1;
	case IMAP_PARSE_LITERAL:
		/* Only APPEND's message streams (sess_parser_relax). */
		return sess_append_begin(s, s->parser);
	case IMAP_PARSE_ERROR:
		tag = imap_parser_error_tag(s->parser);
		if (tag != NULL && imap_parser_name(s->parser) != NULL &&
		    strcasecmp(imap_parser_name(s->parser), "APPEND") == 0 &&
		    strcmp(imap_parser_error(s->parser),
		    "literal too large") == 0) {
			sess_printf(s, "%s NO [TOOBIG] The message is larger "
			    "than %llu bytes\r\n", tag, (unsigned long long)
			    s->conf->max_message_size);
			s->bad_commands++;
		} else
			sess_syntax_error(s, tag, imap_parser_error(s->parser));
		if (imap_parser_must_close(s->parser)) {
			sess_printf(s, "* BYE Literal too large\r\n");
			sess_close(s, "literal over the limit");
			return 0;
		}
		imap_parser_reset(s->parser);
		return 1;
	case IMAP_PARSE_DONE:
		c = imap_parser_command(s->parser);
		sess_dispatch(s, c->tag, c->name, c->args, c->nargs);
		return 1;
	}
	return 0;
}

/* A line of SASL data: never logged, bounded, CRLF stripped. */
int
sess_auth_line(struct imap_session *s, struct evbuffer *in)
{
	struct evbuffer_ptr	 p;
	char			*line;
	size_t			 len;

	p = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
	if (p.pos == -1) {
		if (evbuffer_get_length(in) > AUTH_LINE_MAX) {
			sess_printf(s, "* BYE Line too long\r\n");
			sess_close(s, "AUTHENTICATE line too long");
		}
		return 0;
	}
	len = (size_t)p.pos;
	if (len > AUTH_LINE_MAX || (line = malloc(len + 1)) == NULL) {
		sess_printf(s, "* BYE Line too long\r\n");
		sess_close(s, "AUTHENTICATE line too long");
		return 0;
	}
	evbuffer_remove(in, line, len);
	evbuffer_drain(in, 1);
	line[len] = '\0';
	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	sess_auth_step(s, line);
	memset(line, 0, len);
	free(line);
	return 1;
}
