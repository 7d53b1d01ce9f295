/*
 * FETCH items: every item of RFC 3501 and RFC 9051 §6.4.5 and RFC 3516,
 * the RFCs' examples, macros, case, quoting of header field names, limits
 * and malformed items.  Each row goes through the real command parser,
 * fed byte by byte, as "a FETCH 1 <text>", so the rows also pin down how
 * the parser cuts sections into arguments.
 */
#include "protocol/fetch_att.h"
#include "protocol/imap_parser.h"
#include "unit.h"

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

#define L_UID	FETCH_UID
#define L_FL	FETCH_FLAGS
#define L_ID	FETCH_INTERNALDATE
#define L_SIZE	FETCH_RFC822_SIZE
#define L_FAST	(FETCH_FLAGS | FETCH_INTERNALDATE | FETCH_RFC822_SIZE)

/* Feeds "a FETCH 1 <text>\r\n" (no space for an empty text) one byte at a
 * time; the command, living until p is reset, or NULL. */
static const struct imap_command *
parse_fetch(struct imap_parser *p, const char *text)
{
	enum imap_parse_result	 r = IMAP_PARSE_MORE;
	char			*line;
	size_t			 i, len, used;
	int			 n;

	n = asprintf(&line, "a FETCH 1%s%s\r\n", *text ? " " : "", text);
	if (!CHECK(n > 0))
		return NULL;
	len = (size_t)n;
	for (i = 0; i < len; i += used) {
		r = imap_parser_feed(p, (const unsigned char *)line + i, 1,
		    &used);
		if (r != IMAP_PARSE_MORE && r != IMAP_PARSE_CONTINUE)
			break;
	}
	free(line);
	if (!CHECK(r == IMAP_PARSE_DONE)) {
		printf("#   parser: %s (%s)\n", imap_parser_error(p), text);
		return NULL;
	}
	return imap_parser_command(p);
}

/* Parses text as the FETCH items; fa filled and err set either way. */
static bool
parse_items(const char *text, struct fetch_att *fa, const char **err)
{
	struct imap_parser		*p;
	const struct imap_command	*c;
	bool				 ok = false;

	p = imap_parser_new(IMAP_PARSER_COMMAND, NULL);
	*err = NULL;
	memset(fa, 0, sizeof(*fa));
	if ((c = parse_fetch(p, text)) != NULL && CHECK(c->nargs >= 1))
		ok = fetch_att_parse(c->args + 1, c->nargs - 1, fa, err);
	imap_parser_free(&p);
	return ok;
}

/*
 * The parser keeps a section in its atom, spaces, parentheses and the
 * partial included: BODY[HEADER.FIELDS (A B)] is one argument, not an
 * atom, a list and a "]".
 */
static void
tokenisation(void)
{
	static const struct {
		const char	*text;
		size_t		 n;		/* 0: one atom, text itself */
		const char	*atoms[3];
	} rows[] = {
		{ "BODY[HEADER.FIELDS (From To)]<0.100>", 0, { NULL } },
		{ "BODY.PEEK[1.2.MIME]", 0, { NULL } },
		{ "BODY[]", 0, { NULL } },
		{ "BODY[HEADER.FIELDS (\"X y\" {3})]", 0, { NULL } },
		{ "(FLAGS BODY[] BODY.PEEK[1.2.MIME])", 3,
		    { "FLAGS", "BODY[]", "BODY.PEEK[1.2.MIME]" } },
		{ "(BODY[HEADER.FIELDS (DATE FROM)]<0.10> UID)", 2,
		    { "BODY[HEADER.FIELDS (DATE FROM)]<0.10>", "UID" } },
	};
	struct imap_parser		*p;
	const struct imap_command	*c;
	const struct imap_arg		*list;
	const char			*s;
	size_t				 i, j, n;

	for (i = 0; i < nitems(rows); i++) {
		p = imap_parser_new(IMAP_PARSER_COMMAND, NULL);
		if ((c = parse_fetch(p, rows[i].text)) != NULL &&
		    CHECK(c->nargs == 2)) {
			if (rows[i].n == 0) {
				CHECK(imap_arg_get_atom(&c->args[1], &s));
				CHECK_STR(s, rows[i].text);
			} else if (CHECK(imap_arg_get_list(&c->args[1], &list,
			    &n)) && CHECK(n == rows[i].n)) {
				for (j = 0; j < n; j++) {
					CHECK(imap_arg_get_atom(&list[j], &s));
					CHECK_STR(s, rows[i].atoms[j]);
				}
			}
		}
		imap_parser_free(&p);
	}
}

static const struct {
	const char	*text;
	unsigned int	 local;
	bool		 seen;
	const char	*upstream;	/* NULL: nothing for the backend */
} good[] = {
	/* Every item alone. */
	{ "UID", L_UID, false, NULL },
	{ "FLAGS", L_FL, false, NULL },
	{ "INTERNALDATE", L_ID, false, NULL },
	{ "RFC822.SIZE", L_SIZE, false, NULL },
	{ "ENVELOPE", 0, false, "ENVELOPE" },
	{ "BODYSTRUCTURE", 0, false, "BODYSTRUCTURE" },
	{ "BODY", 0, false, "BODY" },
	{ "RFC822", 0, true, "RFC822" },
	{ "RFC822.HEADER", 0, false, "RFC822.HEADER" },
	{ "RFC822.TEXT", 0, true, "RFC822.TEXT" },
	{ "BODY[]", 0, true, "BODY[]" },
	{ "BODY.PEEK[]", 0, false, "BODY.PEEK[]" },
	{ "BINARY[]", 0, true, "BINARY[]" },
	{ "BINARY.PEEK[]", 0, false, "BINARY.PEEK[]" },
	{ "BINARY.SIZE[]", 0, false, "BINARY.SIZE[]" },

	/* The RFCs' examples. */
	{ "(FLAGS BODY[HEADER.FIELDS (DATE FROM)])", L_FL, true,
	    "BODY[HEADER.FIELDS (DATE FROM)]" },
	{ "(BODY[])", 0, true, "BODY[]" },
	{ "BODY[TEXT]<0.2048>", 0, true, "BODY[TEXT]<0.2048>" },
	{ "BODY[1.2.MIME]", 0, true, "BODY[1.2.MIME]" },
	{ "BODY[4.2.HEADER]", 0, true, "BODY[4.2.HEADER]" },
	{ "BODY[3.TEXT]", 0, true, "BODY[3.TEXT]" },
	{ "BODY[4.2.2.1]", 0, true, "BODY[4.2.2.1]" },
	{ "BODY[HEADER]", 0, true, "BODY[HEADER]" },
	{ "BINARY[1]", 0, true, "BINARY[1]" },
	{ "BINARY.PEEK[1.2]<0.10>", 0, false, "BINARY.PEEK[1.2]<0.10>" },
	{ "BINARY.SIZE[2]", 0, false, "BINARY.SIZE[2]" },
	{ "(FLAGS BINARY.SIZE[1] BINARY[1])", L_FL, true,
	    "BINARY.SIZE[1] BINARY[1]" },

	/* Sections. */
	{ "BODY.PEEK[HEADER.FIELDS.NOT (Received X-Spam)]", 0, false,
	    "BODY.PEEK[HEADER.FIELDS.NOT (Received X-Spam)]" },
	{ "BODY[2.HEADER.FIELDS (Subject)]", 0, true,
	    "BODY[2.HEADER.FIELDS (Subject)]" },
	{ "BODY.PEEK[1.HEADER.FIELDS.NOT (A)]<5.6>", 0, false,
	    "BODY.PEEK[1.HEADER.FIELDS.NOT (A)]<5.6>" },
	{ "BODY[4294967295]", 0, true, "BODY[4294967295]" },
	/* "]" is an ASTRING-CHAR but ends the parser's bracketed atom, so
	 * only a balanced "[...]" can be in a field name. */
	{ "BODY[HEADER.FIELDS (X[Y])]", 0, true,
	    "BODY[HEADER.FIELDS (\"X[Y]\")]" },

	/* Partials: a bare offset, leading zeros in the offset. */
	{ "BODY[]<0>", 0, true, "BODY[]<0>" },
	{ "BODY[]<007.10>", 0, true, "BODY[]<7.10>" },
	{ "BODY[]<4294967295.4294967295>", 0, true,
	    "BODY[]<4294967295.4294967295>" },
	{ "BINARY[1]<5.1>", 0, true, "BINARY[1]<5.1>" },

	/* Macros. */
	{ "ALL", L_FAST, false, "ENVELOPE" },
	{ "FAST", L_FAST, false, NULL },
	{ "FULL", L_FAST, false, "ENVELOPE BODY" },
	{ "full", L_FAST, false, "ENVELOPE BODY" },

	/* Case: names upper case, field names as sent. */
	{ "body.peek[header.fields (From to)]<0.100>", 0, false,
	    "BODY.PEEK[HEADER.FIELDS (From to)]<0.100>" },
	{ "(uid Flags bodyStructure rfc822.size)", L_UID | L_FL | L_SIZE,
	    false, "BODYSTRUCTURE" },
	{ "Body[1.mime]", 0, true, "BODY[1.MIME]" },
	{ "binary.peek[3]", 0, false, "BINARY.PEEK[3]" },

	/* Field names: quoted only where an atom will not do. */
	{ "BODY.PEEK[HEADER.FIELDS (\"From\" \"X-My Header\" \"a\\\\b\")]",
	    0, false,
	    "BODY.PEEK[HEADER.FIELDS (From \"X-My Header\" \"a\\\\b\")]" },
	{ "BODY.PEEK[HEADER.FIELDS (\"\" NIL \"q\\\"\")]", 0, false,
	    "BODY.PEEK[HEADER.FIELDS (\"\" \"NIL\" \"q\\\"\")]" },

	/* Mixtures, duplicates, what a real client sends. */
	{ "(FLAGS FLAGS BODY[] BODY[])", L_FL, true, "BODY[] BODY[]" },
	{ "(BODY.PEEK[] RFC822.HEADER)", 0, false,
	    "BODY.PEEK[] RFC822.HEADER" },
	{ "(BODY.PEEK[1] BODY[2])", 0, true, "BODY.PEEK[1] BODY[2]" },
	{ "(UID FLAGS INTERNALDATE RFC822.SIZE)", L_UID | L_FAST, false,
	    NULL },
	{ "(UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc "
	    "Subject Date Message-ID Priority X-Priority References "
	    "Newsgroups In-Reply-To Content-Type Reply-To)])",
	    L_UID | L_SIZE | L_FL, false,
	    "BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID "
	    "Priority X-Priority References Newsgroups In-Reply-To "
	    "Content-Type Reply-To)]" },
};

static void
valid_items(void)
{
	struct fetch_att	 fa;
	const char		*err;
	size_t			 i;

	for (i = 0; i < nitems(good); i++) {
		if (!CHECK(parse_items(good[i].text, &fa, &err))) {
			printf("#   %s: %s\n", good[i].text, err);
			continue;
		}
		CHECK_INT(fa.local, good[i].local);
		CHECK_INT(fa.sets_seen, good[i].seen);
		CHECK_INT(fa.backend, good[i].upstream != NULL);
		if (good[i].upstream == NULL)
			CHECK(fa.upstream == NULL);
		else
			CHECK_STR(fa.upstream, good[i].upstream);
		fetch_att_clear(&fa);
	}
}

#define E_ITEM		"Invalid FETCH item"
#define E_UNKNOWN	"Unknown FETCH item"
#define E_SECTION	"Invalid FETCH section"
#define E_PARTIAL	"Invalid FETCH partial range"
#define E_AFTER		"Invalid text after FETCH section"

static const struct {
	const char	*text, *err;
} bad[] = {
	{ "", "Missing FETCH items" },
	{ "FLAGS UID", "Too many FETCH arguments" },
	{ "(FLAGS) (CHANGEDSINCE 12)", "Too many FETCH arguments" },
	{ "()", "Empty FETCH item list" },
	{ "(ALL)", "FETCH macro inside a list" },
	{ "(FLAGS fast)", "FETCH macro inside a list" },

	/* Not an atom. */
	{ "\"FLAGS\"", E_ITEM },
	{ "(FLAGS \"UID\")", E_ITEM },
	{ "(FLAGS (UID))", E_ITEM },
	{ "{5}\r\nFLAGS", E_ITEM },
	{ "(UID {5+}\r\nFLAGS)", E_ITEM },

	/* Unknown names. */
	{ "FOO", E_UNKNOWN },
	{ "(FLAGS FOO)", E_UNKNOWN },
	{ "NIL", E_UNKNOWN },
	{ "RFC822.SIZE.PEEK", E_UNKNOWN },
	{ "RFC822.PEEK", E_UNKNOWN },
	{ "BODY.PEEK", E_UNKNOWN },
	{ "BINARY", E_UNKNOWN },
	{ "BINARY.SIZE", E_UNKNOWN },
	{ "UID[]", E_UNKNOWN },
	{ "ENVELOPE[1]", E_UNKNOWN },
	{ "RFC822[]", E_UNKNOWN },
	{ "BODYSTRUCTURE[]", E_UNKNOWN },
	{ "BODY.PEEK.PEEK[]", E_UNKNOWN },
	{ "[]", E_UNKNOWN },

	/* Sections. */
	{ "BODY[0]", E_SECTION },
	{ "BODY[1.]", E_SECTION },
	{ "BODY[1.0]", E_SECTION },
	{ "BODY[01]", E_SECTION },
	{ "BODY[.1]", E_SECTION },
	{ "BODY[1..2]", E_SECTION },
	{ "BODY[4294967296]", E_SECTION },
	{ "BODY[MIME]", E_SECTION },
	{ "BODY[TEXT.MIME]", E_SECTION },
	{ "BODY[1.2.HEADER.MIME]", E_SECTION },
	{ "BODY[HEADER.TEXT]", E_SECTION },
	{ "BODY[HEADERS]", E_SECTION },
	{ "BODY[1 ]", E_SECTION },
	{ "BODY[ ]", E_SECTION },
	{ "BODY[1", E_SECTION },
	{ "BODY[HEADER.FIELDS]", E_SECTION },
	{ "BODY[HEADER.FIELDS ()]", E_SECTION },
	{ "BODY[HEADER.FIELDS(A)]", E_SECTION },
	{ "BODY[HEADER.FIELDS  (A)]", E_SECTION },
	{ "BODY[HEADER.FIELDS (A  B)]", E_SECTION },
	{ "BODY[HEADER.FIELDS ( A)]", E_SECTION },
	{ "BODY[HEADER.FIELDS (A )]", E_SECTION },
	{ "BODY[HEADER.FIELDS (A B]", E_SECTION },
	{ "BODY[HEADER.FIELDS (A) ]", E_SECTION },
	{ "BODY[HEADER.FIELDS (A%)]", E_SECTION },
	{ "BODY[HEADER.FIELDS (A\\B)]", E_SECTION },
	{ "BODY[HEADER.FIELDS ((A))]", E_SECTION },
	{ "BODY[HEADER.FIELDS ({1}A)]", E_SECTION },
	{ "BODY[HEADER.FIELDS (\"A)]", E_SECTION },
	{ "BODY[HEADER.FIELDS (\"A\"B)]", E_SECTION },
	{ "BODY[HEADER.FIELDS (\"a\\b\")]", E_SECTION },
	{ "BODY[TEXT (A)]", E_SECTION },
	{ "BINARY[1.MIME]", E_SECTION },
	{ "BINARY[HEADER]", E_SECTION },
	{ "BINARY.PEEK[TEXT]", E_SECTION },
	{ "BINARY.SIZE[0]", E_SECTION },
	{ "BINARY[1.]", E_SECTION },

	/* Partials. */
	{ "BODY[]<0.0>", E_PARTIAL },
	{ "BODY[]<99999999999>", E_PARTIAL },
	{ "BODY[]<4294967296.1>", E_PARTIAL },
	{ "BODY[]<0.99999999999>", E_PARTIAL },
	{ "BODY[]<1.05>", E_PARTIAL },
	{ "BODY[]<1.>", E_PARTIAL },
	{ "BODY[]<.5>", E_PARTIAL },
	{ "BODY[]<>", E_PARTIAL },
	{ "BODY[]<1.2", E_PARTIAL },
	{ "BODY[]<-1.2>", E_PARTIAL },
	{ "BODY[]<1:2>", E_PARTIAL },
	{ "BINARY.PEEK[1]<0.0>", E_PARTIAL },

	/* Text after the section or partial. */
	{ "BODY[1]extra", E_AFTER },
	{ "BODY[]<0.10>x", E_AFTER },
	{ "BODY[]<0.10><0.10>", E_AFTER },
	{ "BODY[]]", E_AFTER },
	{ "BODY[][]", E_AFTER },
	{ "BODY.PEEK[]PEEK", E_AFTER },
	{ "BINARY.SIZE[1]<0.10>", E_AFTER },
};

static void
invalid_items(void)
{
	struct fetch_att	 fa;
	const char		*err;
	size_t			 i;

	for (i = 0; i < nitems(bad); i++) {
		if (!CHECK(!parse_items(bad[i].text, &fa, &err))) {
			printf("#   accepted %s\n", bad[i].text);
			fetch_att_clear(&fa);
			continue;
		}
		CHECK_STR(err, bad[i].err);
		/* Nothing left behind on failure. */
		CHECK(fa.upstream == NULL && fa.local == 0 && !fa.backend &&
		    !fa.sets_seen);
	}
}

/* A list of n items, each "BODY.PEEK[HEADER.FIELDS (<fields>)]", or
 * "FLAGS" for NULL fields. */
static char *
make_list(size_t n, const char *fields)
{
	char	*s, *t;
	size_t	 i;

	s = strdup("(");
	for (i = 0; i < n && s != NULL; i++) {
		if (fields == NULL)
			CHECK(asprintf(&t, "%s%sFLAGS", s, i ? " " : "") > 0);
		else
			CHECK(asprintf(&t, "%s%sBODY.PEEK[HEADER.FIELDS (%s)]",
			    s, i ? " " : "", fields) > 0);
		free(s);
		s = t;
	}
	CHECK(asprintf(&t, "%s)", s) > 0);
	free(s);
	return t;
}

static char *
repeat(char c, size_t n)
{
	char	*s = malloc(n + 1);

	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void
limits(void)
{
	struct fetch_att	 fa;
	const char		*err;
	char			*text, *name, *fields;

	text = make_list(FETCH_ATT_MAX_ITEMS, NULL);
	CHECK(parse_items(text, &fa, &err));
	CHECK_INT(fa.local, L_FL);
	fetch_att_clear(&fa);
	free(text);

	text = make_list(FETCH_ATT_MAX_ITEMS + 1, NULL);
	CHECK(!parse_items(text, &fa, &err));
	CHECK_STR(err, "Too many FETCH items");
	free(text);

	/* A field name as long as a quoted string may be, and one more. */
	name = repeat('X', 1024);
	CHECK(asprintf(&text, "BODY[HEADER.FIELDS (%s)]", name) > 0);
	CHECK(parse_items(text, &fa, &err));
	CHECK_INT(strlen(fa.upstream), strlen(text));
	fetch_att_clear(&fa);
	free(text);
	CHECK(asprintf(&text, "BODY[HEADER.FIELDS (%sX)]", name) > 0);
	CHECK(!parse_items(text, &fa, &err));
	CHECK_STR(err, E_SECTION);
	free(text);
	free(name);

	/* One item of exactly FETCH_ATT_MAX_UPSTREAM bytes and one more:
	 * "BODY.PEEK[HEADER.FIELDS (" 25, ")]" 2, 8 x 1000 + 7 spaces. */
	name = repeat('A', 1000);
	CHECK(asprintf(&fields, "%s %s %s %s %s %s %s %s", name, name, name,
	    name, name, name, name, name) > 0);
	free(name);
	name = repeat('B', FETCH_ATT_MAX_UPSTREAM - 27 - 8007 - 1);
	CHECK(asprintf(&text, "BODY.PEEK[HEADER.FIELDS (%s %s)]", fields,
	    name) > 0);
	CHECK_INT(strlen(text), FETCH_ATT_MAX_UPSTREAM);
	CHECK(parse_items(text, &fa, &err));
	CHECK_INT(fa.upstream ? strlen(fa.upstream) : 0,
	    FETCH_ATT_MAX_UPSTREAM);
	fetch_att_clear(&fa);
	free(text);
	CHECK(asprintf(&text, "BODY.PEEK[HEADER.FIELDS (%s %sB)]", fields,
	    name) > 0);
	CHECK(!parse_items(text, &fa, &err));
	CHECK_STR(err, "FETCH items too long");
	free(text);
	free(name);
	free(fields);

	/* Many items, each short enough, together too long. */
	fields = repeat('C', 250);
	text = make_list(40, fields);
	CHECK(!parse_items(text, &fa, &err));
	CHECK_STR(err, "FETCH items too long");
	free(text);
	free(fields);
}

static void
clear_twice(void)
{
	struct fetch_att	 fa = { 0 };
	const char		*err;

	fetch_att_clear(&fa);
	CHECK(parse_items("(UID ENVELOPE)", &fa, &err));
	fetch_att_clear(&fa);
	fetch_att_clear(&fa);
	CHECK(fa.upstream == NULL && fa.local == 0 && !fa.backend);
}

static const struct unit_case cases[] = {
	UNIT_CASE(tokenisation),
	UNIT_CASE(valid_items),
	UNIT_CASE(invalid_items),
	UNIT_CASE(limits),
	UNIT_CASE(clear_twice),
};

UNIT_MAIN(cases)
