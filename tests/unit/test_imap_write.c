/*
 * The IMAP string writer: the form chosen for each kind of value, and what
 * the parser reads back from it.
 */
#include <event2/buffer.h>

#include "protocol/imap_parser.h"
#include "protocol/imap_write.h"
#include "unit.h"

static char *
take(struct evbuffer *b)
{
	static char	 out[4096];
	size_t		 n = evbuffer_remove(b, out, sizeof(out) - 1);

	out[n] = '\0';
	return out;
}

static void
astrings(void)
{
	static const struct {
		const char	*in, *out;
		int		 flags;
	} rows[] = {
		{ "INBOX", "INBOX", 0 },
		{ "Sent Items", "\"Sent Items\"", 0 },
		{ "", "\"\"", 0 },
		{ "a\"b\\c", "\"a\\\"b\\\\c\"", 0 },
		{ "NIL", "\"NIL\"", 0 },
		{ "&kAFP4W4IMH8-", "&kAFP4W4IMH8-", 0 },
		{ "50%", "\"50%\"", 0 },
		{ "a]b", "\"a]b\"", 0 },
		{ "line\r\nbreak", "{11}\r\nline\r\nbreak", 0 },
		{ "line\nx", "{6+}\r\nline\nx", IMAP_WRITE_NONSYNC },
		{ "\xe9\x80\x81", "{3}\r\n\xe9\x80\x81", 0 },
		{ "\xe9\x80\x81", "\"\xe9\x80\x81\"", IMAP_WRITE_UTF8 },
	};
	struct evbuffer	*b = evbuffer_new();
	size_t		 i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		imap_write_astring(b, rows[i].in, strlen(rows[i].in),
		    rows[i].flags);
		CHECK_STR(take(b), rows[i].out);
	}
	imap_write_string(b, "atom", 4, 0);
	CHECK_STR(take(b), "\"atom\"");
	imap_write_nstring(b, NULL, 0, 0);
	CHECK_STR(take(b), "NIL");
	imap_write_mailbox(b, "inbox", 0);
	CHECK_STR(take(b), "INBOX");
	imap_write_astring(b, "a\0b", 3, IMAP_WRITE_NONSYNC);
	CHECK_MEM(evbuffer_pullup(b, -1), evbuffer_get_length(b),
	    "~{3+}\r\na\0b", 10);
	evbuffer_drain(b, evbuffer_get_length(b));
	evbuffer_free(b);
}

static void
long_strings_become_literals(void)
{
	char	 s[IMAP_QUOTED_MAX + 2];

	memset(s, 'x', sizeof(s));
	CHECK_INT(imap_string_kind(s, IMAP_QUOTED_MAX, 0), IMAP_STR_ATOM);
	CHECK_INT(imap_string_kind(s, IMAP_QUOTED_MAX + 1, 0),
	    IMAP_STR_LITERAL);
}

/* Whatever the writer makes, the parser reads back the same bytes. */
static void
round_trip_through_parser(void)
{
	static const char *const vals[] = { "plain", "two words", "q\"uo\\te",
	    "", "NIL", "cr\rlf\n", "\xe3\x81\x82", "(paren)", "{5}" };
	struct imap_parser	*p = imap_parser_new(IMAP_PARSER_COMMAND, NULL);
	struct evbuffer		*b = evbuffer_new();
	const struct imap_command *c;
	const char		*got;
	size_t			 i, len;
	enum imap_parse_result	 r;

	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		evbuffer_add(b, "t X ", 4);
		imap_write_astring(b, vals[i], strlen(vals[i]),
		    IMAP_WRITE_NONSYNC);
		evbuffer_add(b, "\r\n", 2);
		r = imap_parser_read(p, b);
		CHECK_INT(r, IMAP_PARSE_DONE);
		if (r == IMAP_PARSE_DONE) {
			c = imap_parser_command(p);
			CHECK(c->nargs == 1 && imap_arg_get_astring_len(
			    &c->args[0], &got, &len));
			CHECK_MEM(got, len, vals[i], strlen(vals[i]));
		}
		imap_parser_reset(p);
	}
	imap_parser_free(&p);
	evbuffer_free(b);
}

static void
flags_and_text(void)
{
	static const char *const f[] = { "\\Seen", "\\Answered", "$Label1" };
	struct evbuffer	*b = evbuffer_new();

	imap_write_flags(b, f, 3);
	CHECK_STR(take(b), "(\\Seen \\Answered $Label1)");
	imap_write_flags(b, f, 0);
	CHECK_STR(take(b), "()");
	imap_write_text(b, "bad\r\n* OK forged\x1b[0m");
	CHECK_STR(take(b), "bad  * OK forged [0m");
	evbuffer_free(b);
}

static const struct unit_case cases[] = {
	UNIT_CASE(astrings),
	UNIT_CASE(long_strings_become_literals),
	UNIT_CASE(round_trip_through_parser),
	UNIT_CASE(flags_and_text),
};

UNIT_MAIN(cases)
