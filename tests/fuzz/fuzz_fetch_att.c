/*
 * libFuzzer target: FETCH items.  The bytes go through the command parser
 * as "a FETCH 1 <bytes>\r\n", the arguments after the sequence set to
 * fetch_att_parse().  Invariants: a failure says why and leaves nothing
 * behind; a success has only known local bits, an upstream text exactly
 * when the backend is needed and within its bound, and that text is a
 * fixed point: parsed again as "(<upstream>)" it gives itself back, with
 * the same \Seen effect and nothing local.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/fetch_att.h"
#include "protocol/imap_parser.h"

#define FETCH_LOCAL_ALL	(FETCH_UID | FETCH_FLAGS | FETCH_INTERNALDATE | \
			    FETCH_RFC822_SIZE)

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* The first command in line, fed whole; NULL unless it parsed. */
static const struct imap_command *
parse_line(struct imap_parser *p, const char *line, size_t len)
{
	enum imap_parse_result	 r;
	size_t			 off = 0, used;

	do {
		r = imap_parser_feed(p, (const unsigned char *)line + off,
		    len - off, &used);
		off += used;
	} while (r == IMAP_PARSE_CONTINUE && off < len);
	if (r != IMAP_PARSE_DONE)
		return NULL;
	return imap_parser_command(p);
}

static void
check_result(bool ok, const struct fetch_att *fa, const char *err)
{
	if (!ok) {
		if (err == NULL || *err == '\0' || fa->upstream != NULL ||
		    fa->local != 0 || fa->backend || fa->sets_seen)
			abort();
		return;
	}
	if ((fa->local & ~FETCH_LOCAL_ALL) != 0 ||
	    fa->backend != (fa->upstream != NULL))
		abort();
	if (fa->upstream != NULL && (*fa->upstream == '\0' ||
	    strlen(fa->upstream) > FETCH_ATT_MAX_UPSTREAM))
		abort();
	if (!fa->backend && fa->sets_seen)
		abort();
}

/* The canonical text parses to itself. */
static void
round_trip(const struct fetch_att *fa)
{
	struct imap_parser		*p;
	const struct imap_command	*c;
	struct fetch_att		 again;
	const char			*err = NULL;
	char				*line;
	int				 n;

	if ((n = asprintf(&line, "a FETCH 1 (%s)\r\n", fa->upstream)) < 0)
		return;
	if ((p = imap_parser_new(IMAP_PARSER_COMMAND, NULL)) == NULL) {
		free(line);
		return;
	}
	/* A field name with an unbalanced "[" keeps the parser's atom open
	 * to the end of the line: then the text cannot be parsed in a list
	 * at all, which says nothing about fetch_att. */
	if ((c = parse_line(p, line, (size_t)n)) != NULL && c->nargs >= 1) {
		if (!fetch_att_parse(c->args + 1, c->nargs - 1, &again, &err))
			abort();
		if (again.local != 0 || again.sets_seen != fa->sets_seen ||
		    again.upstream == NULL ||
		    strcmp(again.upstream, fa->upstream) != 0)
			abort();
		fetch_att_clear(&again);
	}
	imap_parser_free(&p);
	free(line);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct imap_parser		*p;
	const struct imap_command	*c;
	struct fetch_att		 fa;
	const char			*err = NULL;
	char				*line;
	bool				 ok;

	if (len > 16384 || (line = malloc(len + 13)) == NULL)
		return 0;
	memcpy(line, "a FETCH 1 ", 10);
	memcpy(line + 10, data, len);
	memcpy(line + 10 + len, "\r\n", 2);
	if ((p = imap_parser_new(IMAP_PARSER_COMMAND, NULL)) == NULL) {
		free(line);
		return 0;
	}
	if ((c = parse_line(p, line, len + 12)) != NULL && c->nargs >= 1) {
		ok = fetch_att_parse(c->args + 1, c->nargs - 1, &fa, &err);
		check_result(ok, &fa, err);
		if (ok && fa.upstream != NULL)
			round_trip(&fa);
		fetch_att_clear(&fa);
	}
	imap_parser_free(&p);
	free(line);
	return 0;
}
