/*
 * The IMAP parser, table-driven: each input is fed whole, byte by byte and
 * in seeded random chunkings, and every way must give the same dump of the
 * parsed structure.  Commands and responses come from RFC 9051 §6-7 and
 * the RFC 3501 §8 sample session, FETCH data from the formal syntax of
 * RFC 9051 §9 and RFC 3501 §9; malformed input must give an error, never
 * a crash.
 */
#include <stdarg.h>
#include <stdbool.h>

#include <event2/buffer.h>

#include "protocol/imap_parser.h"
#include "unit.h"

static void
dump_args(char *out, size_t len, const struct imap_arg *args, size_t n);

static void
cat(char *out, size_t len, const char *s)
{
	size_t	 l = strlen(out);

	snprintf(out + l, len - l, "%s", s);
}

static void
dump_arg(char *out, size_t len, const struct imap_arg *a)
{
	char	 buf[128];

	switch (a->type) {
	case IMAP_ARG_ATOM:
		cat(out, len, a->v.str);
		break;
	case IMAP_ARG_NIL:
		cat(out, len, "NIL");
		break;
	case IMAP_ARG_QUOTED:
		cat(out, len, "\"");
		cat(out, len, a->v.str);
		cat(out, len, "\"");
		break;
	case IMAP_ARG_LITERAL:
		snprintf(buf, sizeof(buf), "%s{%zu}", a->literal8 ? "~" : "",
		    a->len);
		cat(out, len, buf);
		cat(out, len, a->v.str);
		break;
	case IMAP_ARG_LITERAL_SIZE:
		snprintf(buf, sizeof(buf), "<%llu>",
		    (unsigned long long)a->v.size);
		cat(out, len, buf);
		break;
	case IMAP_ARG_LIST:
		cat(out, len, "(");
		dump_args(out, len, a->v.list, a->len);
		cat(out, len, ")");
		break;
	}
}

static void
dump_args(char *out, size_t len, const struct imap_arg *args, size_t n)
{
	size_t	 i;

	/* A list that came right after ")" is shown so, as sent. */
	for (i = 0; i < n; i++) {
		if (i > 0 && !args[i].joined)
			cat(out, len, " ");
		dump_arg(out, len, &args[i]);
	}
}

static void
dump(const struct imap_parser *p, char *out, size_t len)
{
	const struct imap_command	*c = imap_parser_command(p);
	const struct imap_response	*r = imap_parser_response(p);
	char				 buf[64];

	out[0] = '\0';
	if (c != NULL) {
		cat(out, len, c->tag);
		cat(out, len, "|");
		cat(out, len, c->name);
		cat(out, len, "|");
		dump_args(out, len, c->args, c->nargs);
		return;
	}
	if (r == NULL)
		return;
	cat(out, len, r->type == IMAP_RESPONSE_TAGGED ? r->tag :
	    r->type == IMAP_RESPONSE_UNTAGGED ? "*" : "+");
	cat(out, len, "|");
	if (r->has_number) {
		snprintf(buf, sizeof(buf), "%u ", r->number);
		cat(out, len, buf);
	}
	if (r->keyword != NULL)
		cat(out, len, r->keyword);
	cat(out, len, "|");
	if (r->code != NULL) {
		cat(out, len, "[");
		cat(out, len, r->code);
		if (r->ncode_args > 0) {
			cat(out, len, " ");
			dump_args(out, len, r->code_args, r->ncode_args);
		}
		cat(out, len, "]");
	}
	cat(out, len, "|");
	if (r->text != NULL)
		cat(out, len, r->text);
	cat(out, len, "|");
	dump_args(out, len, r->args, r->nargs);
}

/*
 * Feeds input in chunks (0: whole, 1: byte by byte, else seeded random),
 * answering CONTINUE events; returns the final result and dump.
 */
static enum imap_parse_result
run(enum imap_parser_mode mode, const char *in, size_t inlen, int chunking,
    uint32_t seed, char *out, size_t outlen, int *continues)
{
	struct imap_parser	*p = imap_parser_new(mode, NULL);
	enum imap_parse_result	 r = IMAP_PARSE_MORE;
	size_t			 off = 0, n, used;

	*continues = 0;
	out[0] = '\0';
	while (off < inlen) {
		n = chunking == 0 ? inlen - off : chunking == 1 ? 1 :
		    1 + unit_rand(&seed) % 7;
		if (n > inlen - off)
			n = inlen - off;
		while (n > 0) {
			r = imap_parser_feed(p, (const unsigned char *)in + off,
			    n, &used);
			off += used;
			n -= used;
			if (r == IMAP_PARSE_CONTINUE) {
				(*continues)++;
				continue;
			}
			if (r != IMAP_PARSE_MORE)
				break;
		}
		if (r == IMAP_PARSE_DONE || r == IMAP_PARSE_ERROR)
			break;
	}
	if (r == IMAP_PARSE_DONE)
		dump(p, out, outlen);
	else if (r == IMAP_PARSE_ERROR)
		snprintf(out, outlen, "ERROR %s", imap_parser_error(p));
	imap_parser_free(&p);
	return r;
}

struct row {
	const char	*in;
	size_t		 len;		/* embedded NULs count */
	const char	*want;		/* dump, or "ERROR reason" */
	int		 continues;	/* -1: any */
};

#define R(in, want, continues)	{ in, sizeof(in) - 1, want, continues }

static void
check_rows(enum imap_parser_mode mode, const struct row *rows, size_t n)
{
	char		 got[4096];
	size_t		 i;
	int		 chunking, conts;
	uint32_t	 seed;

	for (i = 0; i < n; i++) {
		for (chunking = 0; chunking < 6; chunking++) {
			seed = 0x9e3779b9u + i * 7919 + chunking;
			run(mode, rows[i].in, rows[i].len, chunking,
			    seed, got, sizeof(got), &conts);
			if (strcmp(got, rows[i].want) != 0 ||
			    (rows[i].continues >= 0 &&
			    conts != rows[i].continues)) {
				CHECK_STR(got, rows[i].want);
				CHECK_INT(conts, rows[i].continues);
				printf("#   row %zu chunking %d: %s", i,
				    chunking, rows[i].in);
				break;
			}
		}
	}
}

/* RFC 9051 §6 command examples (and RFC 3501 §8), one per command. */
static const struct row commands[] = {
	R("a001 CAPABILITY\r\n", "a001|CAPABILITY|", 0),
	R("a002 NOOP\r\n", "a002|NOOP|", 0),
	R("A023 LOGOUT\r\n", "A023|LOGOUT|", 0),
	R("a001 STARTTLS\r\n", "a001|STARTTLS|", 0),
	R("A001 AUTHENTICATE GSSAPI\r\n", "A001|AUTHENTICATE|GSSAPI", 0),
	R("a001 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n",
	  "a001|AUTHENTICATE|PLAIN AGFsaWNlAHNlY3JldA==", 0),
	R("a001 LOGIN SMITH SESAME\r\n", "a001|LOGIN|SMITH SESAME", 0),
	R("a001 login mrc secret\r\n", "a001|login|mrc secret", 0),
	R("A142 SELECT INBOX\r\n", "A142|SELECT|INBOX", 0),
	R("A932 EXAMINE blurdybloop\r\n", "A932|EXAMINE|blurdybloop", 0),
	R("A003 CREATE owatagusiam/\r\n", "A003|CREATE|owatagusiam/", 0),
	R("A683 DELETE blurdybloop\r\n", "A683|DELETE|blurdybloop", 0),
	R("A683 RENAME blurdybloop sarasoop\r\n",
	  "A683|RENAME|blurdybloop sarasoop", 0),
	R("A002 SUBSCRIBE #news.comp.mail.mime\r\n",
	  "A002|SUBSCRIBE|#news.comp.mail.mime", 0),
	R("A101 LIST \"\" \"\"\r\n", "A101|LIST|\"\" \"\"", 0),
	R("A102 LIST #news.comp.mail.misc \"\"\r\n",
	  "A102|LIST|#news.comp.mail.misc \"\"", 0),
	R("A202 LIST ~/Mail/ %\r\n", "A202|LIST|~/Mail/ %", 0),
	R("A02 LIST (SUBSCRIBED) \"\" \"*\"\r\n",
	  "A02|LIST|(SUBSCRIBED) \"\" \"*\"", 0),
	R("A04 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\" RETURN "
	  "(CHILDREN)\r\n", "A04|LIST|(SUBSCRIBED RECURSIVEMATCH) \"\" "
	  "\"%\" RETURN (CHILDREN)", 0),
	R("A05 LIST \"\" (\"Fruit/*\" \"Vegetable/*\")\r\n",
	  "A05|LIST|\"\" (\"Fruit/*\" \"Vegetable/*\")", 0),
	R("t1 LIST \"\" \"*\" RETURN (SPECIAL-USE STATUS (MESSAGES))\r\n",
	  "t1|LIST|\"\" \"*\" RETURN (SPECIAL-USE STATUS (MESSAGES))", 0),
	R("A042 STATUS blurdybloop (UIDNEXT MESSAGES)\r\n",
	  "A042|STATUS|blurdybloop (UIDNEXT MESSAGES)", 0),
	R("A003 APPEND saved-messages (\\Seen) {12}\r\nHello World!\r\n",
	  "A003|APPEND|saved-messages (\\Seen) {12}Hello World!", 1),
	R("A003 APPEND saved-messages (\\Seen) \"05-Jan-2024 14:00:00 "
	  "+0900\" {5+}\r\nHi!\r\n\r\n", "A003|APPEND|saved-messages "
	  "(\\Seen) \"05-Jan-2024 14:00:00 +0900\" {5}Hi!\r\n", 0),
	R("A003 APPEND x ~{3}\r\na\0b\r\n", "A003|APPEND|x ~{3}a", 1),
	R("FXXZ CHECK\r\n", "FXXZ|CHECK|", 0),
	R("A341 CLOSE\r\n", "A341|CLOSE|", 0),
	R("z1 UNSELECT\r\n", "z1|UNSELECT|", 0),
	R("A202 EXPUNGE\r\n", "A202|EXPUNGE|", 0),
	R("A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT "
	  "FROM \"Smith\"\r\n", "A282|SEARCH|RETURN (MIN COUNT) FLAGGED "
	  "SINCE 1-Feb-1994 NOT FROM \"Smith\"", 0),
	R("A284 SEARCH CHARSET UTF-8 TEXT {12}\r\n\xe6\x97\xa5\xe6\x9c\xac"
	  "\xe8\xaa\x9e\xe3\x81\xa7\r\n", "A284|SEARCH|CHARSET UTF-8 TEXT "
	  "{12}\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xa7", 1),
	R("A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n",
	  "A654|FETCH|2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])", 0),
	R("A999 UID FETCH 4827313:4828442 FLAGS\r\n",
	  "A999|UID|FETCH 4827313:4828442 FLAGS", 0),
	R("a FETCH 1 BODY.PEEK[1.2.MIME]<0.2048>\r\n",
	  "a|FETCH|1 BODY.PEEK[1.2.MIME]<0.2048>", 0),
	R("a FETCH 1:* (UID RFC822.SIZE BINARY.PEEK[1]<0.100>)\r\n",
	  "a|FETCH|1:* (UID RFC822.SIZE BINARY.PEEK[1]<0.100>)", 0),
	R("A003 STORE 2:4 +FLAGS (\\Deleted)\r\n",
	  "A003|STORE|2:4 +FLAGS (\\Deleted)", 0),
	R("A003 COPY 2:4 MEETING\r\n", "A003|COPY|2:4 MEETING", 0),
	R("a MOVE 1:* \"Deleted Items\"\r\n",
	  "a|MOVE|1:* \"Deleted Items\"", 0),
	R("a001 ENABLE IMAP4rev2\r\n", "a001|ENABLE|IMAP4rev2", 0),
	R("a023 ID (\"name\" \"sodr\" \"version\" NIL)\r\n",
	  "a023|ID|(\"name\" \"sodr\" \"version\" NIL)", 0),
	R("a002 IDLE\r\n", "a002|IDLE|", 0),
	R("A001 NAMESPACE\r\n", "A001|NAMESPACE|", 0),
	R("a LOGIN {5}\r\nalice {6}\r\nsec\"et\r\n",
	  "a|LOGIN|{5}alice {6}sec\"et", 2),
	R("a LOGIN \"al\\\\ice\" \"p\\\"w\"\r\n",
	  "a|LOGIN|\"al\\ice\" \"p\"w\"", 0),
	R("a SELECT &kAFP4W4IMH8-\r\n", "a|SELECT|&kAFP4W4IMH8-", 0),
	R("a LIST \"\" {0}\r\n\r\n", "a|LIST|\"\" {0}", 1),
	R("a NOOP\n", "a|NOOP|", 0),
	R("a SELECT \"\"\r\n", "a|SELECT|\"\"", 0),
	R("A282 UID SEARCH RETURN (ALL) UNDELETED UID 1:* LARGER 1000\r\n",
	  "A282|UID|SEARCH RETURN (ALL) UNDELETED UID 1:* LARGER 1000", 0),
	R("a STATUS \"Sent Items\" (MESSAGES UIDNEXT UIDVALIDITY UNSEEN "
	  "DELETED SIZE)\r\n", "a|STATUS|\"Sent Items\" (MESSAGES UIDNEXT "
	  "UIDVALIDITY UNSEEN DELETED SIZE)", 0),
	R("a STORE 1 FLAGS (\\Seen $Forwarded)\r\n",
	  "a|STORE|1 FLAGS (\\Seen $Forwarded)", 0),
};

static const struct row bad_commands[] = {
	R("\r\n", "ERROR missing command", -1),
	R(" NOOP\r\n", "ERROR missing tag", -1),
	R("a\r\n", "ERROR missing command", -1),
	R("a \r\n", "ERROR missing command", -1),
	R("* NOOP\r\n", "ERROR invalid tag", -1),
	R("+ NOOP\r\n", "ERROR invalid tag", -1),
	R("a\"b NOOP\r\n", "ERROR invalid tag", -1),
	R("a{1} NOOP\r\n", "ERROR invalid tag", -1),
	R("a FETCH 1 (FLAGS\r\n", "ERROR unbalanced (", -1),
	R("a FETCH 1 FLAGS)\r\n", "ERROR unexpected )", -1),
	R("a FETCH 1 (FLAGS))\r\n", "ERROR unexpected )", -1),
	R("a LOGIN {}\r\n", "ERROR bad literal size", -1),
	R("a LOGIN {12a}\r\n", "ERROR bad literal size", -1),
	R("a LOGIN {-1}\r\n", "ERROR bad literal size", -1),
	R("a LOGIN {99999999999999999999999}\r\n",
	  "ERROR literal size too large", -1),
	R("a LOGIN {99999999999}\r\n", "ERROR literal too large", -1),
	R("a LOGIN {5}x\r\n", "ERROR missing CRLF after literal size", -1),
	R("a LOGIN {5}\rx\n", "ERROR missing LF after literal size", -1),
	R("a LOGIN {5++}\r\n", "ERROR bad literal size", -1),
	R("a LOGIN al\0ce x\r\n", "ERROR NUL in atom", -1),
	R("a LOGIN \"al\0ce\" x\r\n",
	  "ERROR invalid character in quoted string", -1),
	R("a LOGIN \"a\\b\" x\r\n", "ERROR invalid escape in quoted string",
	  -1),
	R("a LOGIN \"\xe3\x81\x82\" x\r\n",
	  "ERROR 8-bit character in quoted string", -1),
	R("a LOGIN \xe3\x81\x82 x\r\n",
	  "ERROR 8-bit character outside a literal", -1),
	R("a NOOP\rx\n", "ERROR CR without LF", -1),
	R("a LOGIN \"abc\r\n", "ERROR invalid character in quoted string",
	  -1),
	R("a LOGIN \"a\"\"b\"\r\n", "ERROR missing space between arguments",
	  -1),
	R("a LOGIN {3}\r\na\0b\r\n", "ERROR NUL in literal", -1),
};

static void
command_examples(void)
{
	check_rows(IMAP_PARSER_COMMAND, commands,
	    sizeof(commands) / sizeof(commands[0]));
}

static void
malformed_commands(void)
{
	check_rows(IMAP_PARSER_COMMAND, bad_commands,
	    sizeof(bad_commands) / sizeof(bad_commands[0]));
}

/* RFC 9051 §7 response examples. */
static const struct row responses[] = {
	R("* OK IMAP4rev2 server ready\r\n", "*|OK||IMAP4rev2 server ready|",
	  0),
	R("* OK [ALERT] System shutdown in 10 minutes\r\n",
	  "*|OK|[ALERT]|System shutdown in 10 minutes|", 0),
	R("A001 OK LOGIN Completed\r\n", "A001|OK||LOGIN Completed|", 0),
	R("* NO Disk is 98% full, please delete unnecessary data\r\n",
	  "*|NO||Disk is 98% full, please delete unnecessary data|", 0),
	R("A223 NO COPY failed: disk is full\r\n",
	  "A223|NO||COPY failed: disk is full|", 0),
	R("* BAD Command line too long\r\n",
	  "*|BAD||Command line too long|", 0),
	R("* PREAUTH IMAP4rev2 server logged in as Smith\r\n",
	  "*|PREAUTH||IMAP4rev2 server logged in as Smith|", 0),
	R("* BYE Autologout; idle for too long\r\n",
	  "*|BYE||Autologout; idle for too long|", 0),
	R("* CAPABILITY IMAP4rev2 STARTTLS AUTH=GSSAPI XPIG-LATIN\r\n",
	  "*|CAPABILITY|||IMAP4rev2 STARTTLS AUTH=GSSAPI XPIG-LATIN", 0),
	R("* ENABLED CONDSTORE QRESYNC\r\n",
	  "*|ENABLED|||CONDSTORE QRESYNC", 0),
	R("* LIST (\\Noselect) \"/\" ~/Mail/foo\r\n",
	  "*|LIST|||(\\Noselect) \"/\" ~/Mail/foo", 0),
	R("* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\"\r\n",
	  "*|LIST|||(\\HasNoChildren \\Sent) \"/\" \"Sent Items\"", 0),
	R("* LIST () \".\" {12}\r\n\xe9\x80\x81\xe4\xbf\xa1\xe6\xb8\x88"
	  "\xe3\x81\xbf\r\n", "*|LIST|||() \".\" {12}\xe9\x80\x81\xe4\xbf"
	  "\xa1\xe6\xb8\x88\xe3\x81\xbf", 0),
	R("* NAMESPACE ((\"\" \"/\")) ((\"~\" \"/\")) NIL\r\n",
	  "*|NAMESPACE|||((\"\" \"/\")) ((\"~\" \"/\")) NIL", 0),
	R("* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n",
	  "*|STATUS|||blurdybloop (MESSAGES 231 UIDNEXT 44292)", 0),
	R("* ESEARCH (TAG \"A282\") MIN 2 COUNT 3\r\n",
	  "*|ESEARCH|||(TAG \"A282\") MIN 2 COUNT 3", 0),
	R("* SEARCH 2 3 6\r\n", "*|SEARCH|||2 3 6", 0),
	R("* SEARCH\r\n", "*|SEARCH|||", 0),
	R("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n",
	  "*|FLAGS|||(\\Answered \\Flagged \\Deleted \\Seen \\Draft)", 0),
	R("* 23 EXISTS\r\n", "*|23 EXISTS|||", 0),
	R("* 44 EXPUNGE\r\n", "*|44 EXPUNGE|||", 0),
	R("* 5 RECENT\r\n", "*|5 RECENT|||", 0),
	R("* 23 FETCH (FLAGS (\\Seen) RFC822.SIZE 44827)\r\n",
	  "*|23 FETCH|||(FLAGS (\\Seen) RFC822.SIZE 44827)", 0),
	R("* 12 FETCH (BODY[HEADER] {21}\r\nSubject: x\r\nFrom: y\r\n"
	  " UID 7)\r\n", "*|12 FETCH|||(BODY[HEADER] {21}Subject: x\r\n"
	  "From: y\r\n UID 7)", 0),
	R("* 12 FETCH (BODY[HEADER] {22}\r\nSubject: x\r\nFrom: y\r\n"
	  " UID 7)\r\n", "ERROR missing space between arguments", 0),
	R("* 12 FETCH (BODY[HEADER.FIELDS (FROM)] {9}\r\nFrom: y\r\n)\r\n",
	  "*|12 FETCH|||(BODY[HEADER.FIELDS (FROM)] {9}From: y\r\n)", 0),
	R("* 1 FETCH (ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" "
	  "\"IMAP4rev2 WG mtg summary\" ((\"Terry Gray\" NIL \"gray\" "
	  "\"cac.washington.edu\")) NIL NIL NIL NIL \"<B27397-0100000@"
	  "cac.washington.edu>\"))\r\n", "*|1 FETCH|||(ENVELOPE (\"Wed, 17 "
	  "Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev2 WG mtg summary\" "
	  "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) NIL NIL "
	  "NIL NIL \"<B27397-0100000@cac.washington.edu>\"))", 0),
	R("* OK [UIDVALIDITY 3857529045] UIDs valid\r\n",
	  "*|OK|[UIDVALIDITY 3857529045]|UIDs valid|", 0),
	R("* OK [UIDNEXT 4392] Predicted next UID\r\n",
	  "*|OK|[UIDNEXT 4392]|Predicted next UID|", 0),
	R("* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n",
	  "*|OK|[PERMANENTFLAGS (\\Deleted \\Seen \\*)]|Limited|", 0),
	R("A003 OK [APPENDUID 38505 3955] APPEND completed\r\n",
	  "A003|OK|[APPENDUID 38505 3955]|APPEND completed|", 0),
	R("A004 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n",
	  "A004|OK|[COPYUID 38505 304,319:320 3956:3958]|Done|", 0),
	R("A142 OK [READ-WRITE] SELECT completed\r\n",
	  "A142|OK|[READ-WRITE]|SELECT completed|", 0),
	R("* OK [CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE LITERAL+ "
	  "AUTH=PLAIN] Dovecot ready.\r\n", "*|OK|[CAPABILITY IMAP4rev1 "
	  "SASL-IR ID ENABLE IDLE LITERAL+ AUTH=PLAIN]|Dovecot ready.|", 0),
	R("a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
	  "a|NO|[AUTHENTICATIONFAILED]|Authentication failed.|", 0),
	R("a NO [BADCHARSET (UTF-8)] x\r\n", "a|NO|[BADCHARSET (UTF-8)]|x|",
	  0),
	R("a BAD Request is throttled. Suggested Backoff Time: 250 "
	  "milliseconds\r\n", "a|BAD||Request is throttled. Suggested "
	  "Backoff Time: 250 milliseconds|", 0),
	R("+ Ready for additional command text\r\n",
	  "+|||Ready for additional command text|", 0),
	R("+ \r\n", "+||||", 0),
	R("+\r\n", "+||||", 0),
	R("+ eyJzdGF0dXMiOiI0MDEifQ==\r\n", "+|||eyJzdGF0dXMiOiI0MDEifQ==|",
	  0),
	R("a OK\r\n", "a|OK|||", 0),
	R("* OK (unbalanced \"text [ok\r\n", "*|OK||(unbalanced \"text [ok|",
	  0),
	R("* VANISHED (EARLIER) 41,43:116,118,120:211,214:540\r\n",
	  "*|VANISHED|||(EARLIER) 41,43:116,118,120:211,214:540", 0),
	R("* ID (\"name\" \"Dovecot\")\r\n", "*|ID|||(\"name\" \"Dovecot\")",
	  0),
	R("* 12 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" "
	  "\"US-ASCII\") NIL NIL \"7BIT\" 3028 92))\r\n", "*|12 FETCH|||"
	  "(BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL "
	  "NIL \"7BIT\" 3028 92))", 0),
	R("* 3 FETCH (BINARY[1] ~{5}\r\na\0b\r\n)\r\n", "*|3 FETCH|||(BINARY[1] "
	  "~{5}a)", 0),
	R("* LSUB () \".\" #news.comp.mail.misc\r\n", "*|LSUB|||() \".\" "
	  "#news.comp.mail.misc", 0),
	R("* 14 FETCH (FLAGS (\\Seen \\Deleted))\r\n", "*|14 FETCH|||(FLAGS "
	  "(\\Seen \\Deleted))", 0),
	R("+ idling\r\n", "+|||idling|", 0),
	R("* OK [HIGHESTMODSEQ 715194045007] Highest\r\n", "*|OK|"
	  "[HIGHESTMODSEQ 715194045007]|Highest|", 0),
};

static const struct row bad_responses[] = {
	R("\r\n", "ERROR empty response", -1),
	R("*\r\n", "ERROR truncated response", -1),
	R("a001 FOO bar\r\n", "ERROR tagged response without status", -1),
	R("a001 BYE x\r\n", "ERROR bad tagged status", -1),
	R("* 1 FETCH (FLAGS (\\Seen)\r\n", "ERROR unbalanced (", -1),
	R("* OK [UIDVALIDITY 3\r\n", "ERROR unterminated response code", -1),
	R("* 99999999999 EXISTS\r\n", "ERROR number out of range", -1),
	R("* 4294967296 EXISTS\r\n", "ERROR number out of range", -1),
	/* 2^64 + 1: once wrapped round to "* 1 EXISTS" */
	R("* 18446744073709551617 EXISTS\r\n", "ERROR number out of range",
	  -1),
	R("* 1 FETCH (BODY[] {5}\r\nabc", "", -1),
};

static void
response_examples(void)
{
	check_rows(IMAP_PARSER_RESPONSE, responses,
	    sizeof(responses) / sizeof(responses[0]));
}

static void
malformed_responses(void)
{
	check_rows(IMAP_PARSER_RESPONSE, bad_responses,
	    sizeof(bad_responses) / sizeof(bad_responses[0]));
}

/*
 * FETCH data a server may send, production by production (RFC 9051 §9,
 * RFC 3501 §9).  F() rows are their own dump: every byte, ")(" included,
 * comes back as it was sent.
 */
#define F(num, items) { "* " num " FETCH " items "\r\n",		\
	sizeof("* " num " FETCH " items "\r\n") - 1,			\
	"*|" num " FETCH|||" items, 0 }

/* body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP
 * body-fld-octets, then body-fld-lines for text, then extension data. */
#define PLAIN	"(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL " \
		"\"7bit\" 8 1 NIL NIL NIL NIL)"
#define HTML	"(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL " \
		"\"quoted-printable\" 40 2 NIL NIL NIL NIL)"
#define PNG	"(\"image\" \"png\" (\"name\" \"a.png\") \"<img1@x.jp>\" " \
		"NIL \"base64\" 100 NIL (\"inline\" (\"filename\" " \
		"\"a.png\")) NIL NIL)"
#define PDF	"(\"application\" \"pdf\" (\"name\" \"a.pdf\") NIL NIL " \
		"\"base64\" 4096 NIL (\"attachment\" (\"filename\" " \
		"\"a.pdf\")) NIL NIL)"
#define ADDR_A	"(\"A\" NIL \"a\" \"x.jp\")"
#define ADDR_B	"(\"B\" NIL \"b\" \"x.jp\")"
#define INNER_ENV "(\"Tue, 2 Jan 2024 10:00:00 +0000\" \"inner\" " \
		"((\"In\" NIL \"in\" \"z.example\")) ((\"In\" NIL \"in\" " \
		"\"z.example\")) ((\"In\" NIL \"in\" \"z.example\")) " \
		"((NIL NIL \"to\" \"z.example\")) NIL NIL NIL " \
		"\"<inner@z.example>\")"
#define UTF8_JA	"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"	/* 9 bytes */

/* Rows whose trees fetch_tree_shapes() walks. */
#define NESTED3	"(UID 9 BODYSTRUCTURE ((((\"text\" \"html\" " \
		"(\"charset\" \"utf-8\") NIL NIL \"7bit\" 10 1 NIL NIL " \
		"NIL NIL)" PNG " \"related\" (\"boundary\" \"r\") NIL NIL " \
		"NIL)" PLAIN " \"alternative\" (\"boundary\" \"a\") NIL NIL " \
		"NIL)" PDF " \"mixed\" (\"boundary\" \"m\") NIL NIL NIL))"
#define RFC822_PART "(BODYSTRUCTURE (" PLAIN "(\"message\" \"rfc822\" " \
		"(\"name\" \"fwd.eml\") NIL NIL \"7bit\" 900 " INNER_ENV \
		" (" PLAIN HTML " \"alternative\" (\"boundary\" \"in\") NIL " \
		"NIL NIL) 30 NIL (\"attachment\" (\"filename\" " \
		"\"fwd.eml\")) NIL NIL) \"mixed\" (\"boundary\" \"out\") NIL " \
		"NIL NIL))"
#define EXT_1PART "(BODYSTRUCTURE (\"text\" \"plain\" (\"charset\" " \
		"\"utf-8\" \"format\" \"flowed\") \"<id@x.jp>\" \"desc\" " \
		"\"8bit\" 1234 56 \"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\"inline\" " \
		"NIL) \"en\" \"http://x.jp/a\" 7 (\"x\" (1 NIL \"y\") " \
		"12345678901) NIL))"
#define GROUPS	"(ENVELOPE (NIL \"g\" ((NIL NIL \"team\" NIL)" ADDR_A \
		ADDR_B "(NIL NIL NIL NIL)) NIL NIL ((NIL NIL " \
		"\"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) ((NIL NIL " \
		"\"a\" NIL)(NIL NIL NIL NIL)" ADDR_B ") NIL NIL NIL))"
#define SMALL	"(UID 4294967295 MODSEQ (12345678901) RFC822.SIZE 0 " \
		"INTERNALDATE \" 1-Jan-2024 00:00:00 +0900\" FLAGS ())"
#define LIT_ENV	"* 14 FETCH (ENVELOPE ({30}\r\nMon, 1 Jan 2024 " \
		"09:00:00 +0900 {5}\r\nhello (({5}\r\nAlice NIL " \
		"{1}\r\na {4}\r\nx.jp)(\"B\" {0}\r\n \"b\" \"x.jp\")) " \
		"NIL NIL NIL NIL NIL NIL {8}\r\n<m@x.jp>))\r\n"

static const struct row fetch_grammar[] = {
	/* Address lists with no SP between addresses (Dovecot). */
	F("1", "(ENVELOPE (\"Mon, 1 Jan 2024 09:00:00 +0900\" \"subj\" ("
	  ADDR_A ADDR_B ") (" ADDR_A ") (" ADDR_A ") ((\"C\" NIL \"c\" "
	  "\"y.jp\")(\"D\" NIL \"d\" \"y.jp\")(NIL NIL \"e\" \"y.jp\")) "
	  "NIL NIL \"<parent@x.jp>\" \"<id@x.jp>\"))"),
	/* body-type-mpart = 1*body SP media-subtype: no SP between parts. */
	F("1", "(BODYSTRUCTURE (" PLAIN HTML " \"alternative\" "
	  "(\"boundary\" \"b1\") NIL NIL NIL))"),
	/* RFC 3501 §7.4.2's BODY example, non-extensible, Exchange case. */
	F("2", "(BODY ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL "
	  "NIL \"7BIT\" 1152 23)(\"TEXT\" \"PLAIN\" (\"CHARSET\" "
	  "\"US-ASCII\" \"NAME\" \"cc.diff\") \"<960723163407.20117h@cac."
	  "washington.edu>\" \"Compiler diff\" \"BASE64\" 4554 73) "
	  "\"MIXED\"))"),
	/* Three levels: mixed > alternative > related. */
	F("3", NESTED3),
	/* body-type-msg: its own envelope, body (multipart) and lines. */
	F("4", RFC822_PART),
	/* body-ext-1part in full: md5, dsp with NIL params, lang as a
	 * string, loc, then unknown extensions: numbers, nested lists. */
	F("5", EXT_1PART),
	/* body-fld-lang as a list, body-ext-mpart in full with extensions
	 * that start with a list. */
	F("6", "(BODYSTRUCTURE ((\"application\" \"octet-stream\" NIL NIL NIL "
	  "\"base64\" 0 NIL (\"attachment\" (\"filename\" \"a.bin\" "
	  "\"size\" \"0\")) (\"en\" \"ja\") \"cid:a\")" PLAIN " \"mixed\" "
	  "(\"boundary\" \"m\") (\"inline\" NIL) (\"de\" \"en\") \"loc\" "
	  "((\"nested\") 9) \"x\"))"),
	/* Extension data left out at each point it may end. */
	F("7", "(BODYSTRUCTURE ((\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0 "
	  "NIL)(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0 NIL NIL)"
	  "(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0 NIL NIL \"en\") "
	  "\"mixed\" NIL))"),
	/* Groups (RFC 3501 §7.4.2): start (host NIL), members, end. */
	F("8", GROUPS),
	/* NIL wherever nstring or a list may be NIL. */
	F("9", "(ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) "
	  "BODY[] NIL RFC822.HEADER NIL BODY[TEXT]<0> NIL "
	  "BODYSTRUCTURE (\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0 NIL "
	  "NIL NIL NIL))"),
	/* Empty strings. */
	F("10", "(ENVELOPE (\"\" \"\" ((\"\" NIL \"a\" \"x.jp\")) NIL NIL NIL "
	  "NIL NIL \"\" \"\") BODY[TEXT] \"\" BODYSTRUCTURE (\"text\" "
	  "\"plain\" (\"charset\" \"\") \"\" \"\" \"7bit\" 0 0))"),
	/* 8-bit UTF-8 in quoted strings (RFC 9051 allows it, RFC 6855). */
	F("11", "(ENVELOPE (NIL \"" UTF8_JA "\" ((\"\xe5\xb1\xb1\xe7\x94\xb0 "
	  "\xe5\xa4\xaa\xe9\x83\x8e\" NIL \"yamada\" \"\xe4\xbe\x8b\xe3\x81"
	  "\x88.jp\")) NIL NIL NIL NIL NIL NIL NIL))"),
	/* Parts' own headers, partial header fields with an origin. */
	F("12", "(UID 12 BODY[1.2.MIME] \"\" BODY[HEADER.FIELDS.NOT (X-A "
	  "X-B)] \"\" BODY[2.TEXT]<1024> NIL BODY[1.2.3] NIL)"),
	/* The small items. */
	F("4294967295", SMALL),
	F("13", "(FLAGS (\\Seen \\Answered $Forwarded NonJunk \\Recent) "
	  "BINARY.SIZE[1] 1234 EMAILID (M6d99ac3275bb4e) THREADID NIL "
	  "SAVEDATE \"2-Jan-2024 10:00:00 +0000\" PREVIEW \"Hi\")"),
	/* Literals in every nstring position. */
	R(LIT_ENV, "*|14 FETCH|||(ENVELOPE ({30}Mon, 1 Jan 2024 09:00:00 +0900 "
	  "{5}hello (({5}Alice NIL {1}a {4}x.jp)(\"B\" {0} \"b\" \"x.jp\")) "
	  "NIL NIL NIL NIL NIL NIL {8}<m@x.jp>))", 0),
	R("* 15 FETCH (BODYSTRUCTURE (\"text\" \"plain\" (\"name\" {5}\r\n"
	  "a.txt) NIL {12}\r\n" "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81"
	  "\xa7 \"7bit\" 3 1 NIL (\"attachment\" (\"filename\" {5}\r\na.txt))"
	  " NIL NIL))\r\n", "*|15 FETCH|||(BODYSTRUCTURE (\"text\" \"plain\" "
	  "(\"name\" {5}a.txt) NIL {12}\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"
	  "\xe3\x81\xa7 \"7bit\" 3 1 NIL (\"attachment\" (\"filename\" "
	  "{5}a.txt)) NIL NIL))", 0),
	R("* 16 FETCH (BODY[1.2.MIME] {43}\r\nContent-Type: text/plain; "
	  "charset=utf-8\r\n\r\n UID 16)\r\n", "*|16 FETCH|||(BODY[1.2.MIME] "
	  "{43}Content-Type: text/plain; charset=utf-8\r\n\r\n UID 16)", 0),
	R("* 17 FETCH (UID 17 BODY[HEADER.FIELDS (SUBJECT DATE)]<0> {23}\r\n"
	  "Subject: x\r\nDate: y\r\n\r\n BODY[HEADER.FIELDS (A B)] {12}\r\n"
	  "Subject: x\r\n)\r\n", "*|17 FETCH|||(UID 17 BODY[HEADER.FIELDS "
	  "(SUBJECT DATE)]<0> {23}Subject: x\r\nDate: y\r\n\r\n "
	  "BODY[HEADER.FIELDS (A B)] {12}Subject: x\r\n)", 0),
	R("* 18 FETCH (BINARY[1] {5}\r\nhello BINARY[1.2]<0> ~{3}\r\n\0\1\2 "
	  "BINARY[2] NIL)\r\n", "*|18 FETCH|||(BINARY[1] {5}hello "
	  "BINARY[1.2]<0> ~{3} BINARY[2] NIL)", 0),
	R("* 19 FETCH (RFC822 {12}\r\nSubject: x\r\n RFC822.TEXT {0}\r\n "
	  "BODY[] {9}\r\n" UTF8_JA ")\r\n", "*|19 FETCH|||(RFC822 "
	  "{12}Subject: x\r\n RFC822.TEXT {0} BODY[] {9}" UTF8_JA ")", 0),
	/* quoted-specials escaped in a quoted string. */
	R("* 20 FETCH (ENVELOPE (NIL \"say \\\"hi\\\" \\\\ bye\" NIL NIL NIL "
	  "NIL NIL NIL NIL NIL))\r\n", "*|20 FETCH|||(ENVELOPE (NIL \"say "
	  "\"hi\" \\ bye\" NIL NIL NIL NIL NIL NIL NIL NIL))", 0),
	/* Not FETCH, but the same ")(" (RFC 2342). */
	R("* NAMESPACE ((\"\" \"/\")(\"Shared/\" \"/\")) NIL ((\"Public/\" "
	  "\"/\" \"X-PARAM\" (\"a\" \"b\")))\r\n", "*|NAMESPACE|||((\"\" "
	  "\"/\")(\"Shared/\" \"/\")) NIL ((\"Public/\" \"/\" \"X-PARAM\" "
	  "(\"a\" \"b\")))", 0),
};

/* Everything but ")(" still needs its space, in both directions. */
static const struct row join_errors_response[] = {
	R("* 1 FETCH (FLAGS (\\Seen)UID 1)\r\n",
	  "ERROR missing space between arguments", -1),
	R("* 1 FETCH (X (\"a\")\"b\")\r\n",
	  "ERROR missing space between arguments", -1),
	R("* 1 FETCH (X (\"a\")NIL)\r\n",
	  "ERROR missing space between arguments", -1),
	R("* 1 FETCH (X (\"a\"){1}\r\nb)\r\n",
	  "ERROR missing space between arguments", -1),
	R("* 1 FETCH (X \"a\"(\"b\"))\r\n",
	  "ERROR missing space between arguments", -1),
	R("* 1 FETCH (X {1}\r\na(1))\r\n",
	  "ERROR missing space between arguments", -1),
	R("* 1 FETCH (X NIL(1))\r\n", "ERROR missing space between arguments",
	  -1),
	R("* 1 FETCH (X (1)(2)3)\r\n", "ERROR missing space between arguments",
	  -1),
};

static const struct row join_errors_command[] = {
	R("a SEARCH OR (FROM a)(TO b)\r\n",
	  "ERROR missing space between arguments", -1),
	R("a STORE 1 FLAGS (\\Seen)(\\Draft)\r\n",
	  "ERROR missing space between arguments", -1),
	R("a LIST \"\" (INBOX)(Sent)\r\n",
	  "ERROR missing space between arguments", -1),
	R("a ID ((\"name\" \"x\")(\"version\" \"1\"))\r\n",
	  "ERROR missing space between arguments", -1),
};

static void
fetch_grammar_rows(void)
{
	check_rows(IMAP_PARSER_RESPONSE, fetch_grammar,
	    sizeof(fetch_grammar) / sizeof(fetch_grammar[0]));
}

static void
joins_stay_strict(void)
{
	check_rows(IMAP_PARSER_RESPONSE, join_errors_response,
	    sizeof(join_errors_response) / sizeof(join_errors_response[0]));
	check_rows(IMAP_PARSER_COMMAND, join_errors_command,
	    sizeof(join_errors_command) / sizeof(join_errors_command[0]));
}

/* Parses one response, fed whole; NULL (and a note) unless it is done. */
static const struct imap_response *
parse1(struct imap_parser **pp, const char *in)
{
	enum imap_parse_result	 r;
	size_t			 used;

	*pp = imap_parser_new(IMAP_PARSER_RESPONSE, NULL);
	r = imap_parser_feed(*pp, (const unsigned char *)in, strlen(in), &used);
	if (!CHECK(r == IMAP_PARSE_DONE)) {
		printf("#   %s: %s", imap_parser_error(*pp), in);
		return NULL;
	}
	return imap_parser_response(*pp);
}

/* The argument at a path of list indexes ending in -1; NULL if none. */
static const struct imap_arg *
at(const struct imap_response *r, ...)
{
	const struct imap_arg	*a = NULL, *args = r->args;
	size_t			 n = r->nargs;
	va_list			 ap;
	int			 i;

	va_start(ap, r);
	while ((i = va_arg(ap, int)) >= 0) {
		if ((size_t)i >= n) {
			a = NULL;
			break;
		}
		a = &args[i];
		if (!imap_arg_get_list(a, &args, &n))
			n = 0;
	}
	va_end(ap);
	return a;
}

static long
list_len(const struct imap_arg *a)
{
	size_t	 n;

	return a != NULL && imap_arg_get_list(a, NULL, &n) ? (long)n : -1;
}

static bool
joined(const struct imap_arg *a)
{
	return a != NULL && a->joined;
}

static bool
quoted_is(const struct imap_arg *a, const char *want)
{
	const char	*s;

	return a != NULL && imap_arg_get_string(a, &s) && strcmp(s, want) == 0;
}

static bool
number_is(const struct imap_arg *a, uint64_t want)
{
	uint64_t	 v;

	return a != NULL && imap_arg_get_number64(a, &v) && v == want;
}

/*
 * The bug: a server's ")(" was "missing space between arguments" and the
 * backend connection was dropped.  The two lines of the report.
 */
static void
adjacent_lists(void)
{
	struct imap_parser		*p;
	const struct imap_response	*r;

	r = parse1(&p, "* 1 FETCH (ENVELOPE (\"date\" \"subj\" (" ADDR_A
	    ADDR_B ") NIL NIL NIL NIL NIL NIL NIL))\r\n");
	if (r != NULL) {
		CHECK_INT(list_len(at(r, 0, 1, -1)), 10);
		CHECK_INT(list_len(at(r, 0, 1, 2, -1)), 2);
		CHECK(!joined(at(r, 0, 1, 2, -1)));	/* after SP */
		CHECK(!joined(at(r, 0, 1, 2, 0, -1)));
		CHECK(joined(at(r, 0, 1, 2, 1, -1)));
		CHECK_INT(list_len(at(r, 0, 1, 2, 1, -1)), 4);
		CHECK(quoted_is(at(r, 0, 1, 2, 1, 2, -1), "b"));
	}
	imap_parser_free(&p);
	r = parse1(&p, "* 1 FETCH (BODYSTRUCTURE ((\"text\" \"plain\" NIL NIL "
	    "NIL \"7bit\" 1 1)(\"text\" \"html\" NIL NIL NIL \"7bit\" 1 1) "
	    "\"alternative\"))\r\n");
	if (r != NULL) {
		CHECK_INT(list_len(at(r, 0, 1, -1)), 3);
		CHECK(joined(at(r, 0, 1, 1, -1)));
		CHECK(quoted_is(at(r, 0, 1, 1, 1, -1), "html"));
		CHECK(quoted_is(at(r, 0, 1, 2, -1), "alternative"));
		CHECK(!joined(at(r, 0, 1, 2, -1)));
	}
	imap_parser_free(&p);
}

/* The shape of the trees, not only that they parse. */
static void
fetch_tree_shapes(void)
{
	struct imap_parser		*p;
	const struct imap_response	*r;
	const struct imap_arg		*a;
	int				 i;

	/* mixed(alternative(related(html, png), plain), pdf) */
	if ((r = parse1(&p, "* 3 FETCH " NESTED3 "\r\n")) != NULL) {
		CHECK_INT(list_len(at(r, 0, -1)), 4);
		CHECK(number_is(at(r, 0, 1, -1), 9));
		CHECK_INT(list_len(at(r, 0, 3, -1)), 7);	/* mixed */
		CHECK(quoted_is(at(r, 0, 3, 2, -1), "mixed"));
		CHECK(joined(at(r, 0, 3, 1, -1)));		/* pdf */
		CHECK_INT(list_len(at(r, 0, 3, 0, -1)), 7);	/* alt. */
		CHECK(joined(at(r, 0, 3, 0, 1, -1)));		/* plain */
		CHECK_INT(list_len(at(r, 0, 3, 0, 0, -1)), 7);	/* related */
		/* html, three levels down */
		CHECK_INT(list_len(at(r, 0, 3, 0, 0, 0, -1)), 12);
		CHECK(!joined(at(r, 0, 3, 0, 0, 0, -1)));
		CHECK(quoted_is(at(r, 0, 3, 0, 0, 0, 2, 1, -1), "utf-8"));
		CHECK(joined(at(r, 0, 3, 0, 0, 1, -1)));	/* png */
		CHECK(imap_arg_is_nil(at(r, 0, 3, 0, 0, 1, 7, -1)));
		CHECK_INT(list_len(at(r, 0, 3, 0, 0, 1, 8, -1)), 2);
		CHECK(quoted_is(at(r, 0, 3, 0, 0, 1, 8, 1, 1, -1), "a.png"));
	}
	imap_parser_free(&p);

	/* message/rfc822: its envelope, its (multipart) body, its lines */
	if ((r = parse1(&p, "* 4 FETCH " RFC822_PART "\r\n")) != NULL) {
		CHECK_INT(list_len(at(r, 0, 1, 1, -1)), 14);
		CHECK(joined(at(r, 0, 1, 1, -1)));
		CHECK_INT(list_len(at(r, 0, 1, 1, 7, -1)), 10);
		CHECK(quoted_is(at(r, 0, 1, 1, 7, 9, -1), "<inner@z.example>"));
		CHECK_INT(list_len(at(r, 0, 1, 1, 8, -1)), 7);
		CHECK(joined(at(r, 0, 1, 1, 8, 1, -1)));
		CHECK(number_is(at(r, 0, 1, 1, 9, -1), 30));
	}
	imap_parser_free(&p);

	/* unknown extensions keep their nesting and their numbers */
	if ((r = parse1(&p, "* 5 FETCH " EXT_1PART "\r\n")) != NULL) {
		CHECK_INT(list_len(at(r, 0, 1, -1)), 15);
		CHECK(quoted_is(at(r, 0, 1, 10, -1), "en"));
		CHECK(number_is(at(r, 0, 1, 12, -1), 7));
		CHECK_INT(list_len(at(r, 0, 1, 13, -1)), 3);
		CHECK_INT(list_len(at(r, 0, 1, 13, 1, -1)), 3);
		CHECK(number_is(at(r, 0, 1, 13, 2, -1), 12345678901ULL));
		CHECK(imap_arg_is_nil(at(r, 0, 1, 14, -1)));
	}
	imap_parser_free(&p);

	/* a group is an address: start (host NIL), members, end (all NIL) */
	if ((r = parse1(&p, "* 8 FETCH " GROUPS "\r\n")) != NULL) {
		CHECK_INT(list_len(at(r, 0, 1, 2, -1)), 4);
		for (i = 0; i < 4; i++)
			CHECK_INT(list_len(at(r, 0, 1, 2, i, -1)), 4);
		CHECK(quoted_is(at(r, 0, 1, 2, 0, 2, -1), "team"));
		CHECK(imap_arg_is_nil(at(r, 0, 1, 2, 0, 3, -1)));
		CHECK(imap_arg_is_nil(at(r, 0, 1, 2, 3, 2, -1)));
		CHECK_INT(list_len(at(r, 0, 1, 6, -1)), 3);
	}
	imap_parser_free(&p);

	/* MODSEQ is 64-bit, INTERNALDATE keeps its leading SP */
	if ((r = parse1(&p, "* 4294967295 FETCH " SMALL "\r\n")) != NULL) {
		CHECK(r->has_number && r->number == 4294967295U);
		CHECK(number_is(at(r, 0, 1, -1), 4294967295U));
		CHECK(number_is(at(r, 0, 3, 0, -1), 12345678901ULL));
		CHECK(number_is(at(r, 0, 5, -1), 0));
		CHECK(quoted_is(at(r, 0, 7, -1), " 1-Jan-2024 00:00:00 +0900"));
		CHECK_INT(list_len(at(r, 0, 9, -1)), 0);
	}
	imap_parser_free(&p);

	/* literals where nstrings go, an empty one too */
	if ((r = parse1(&p, LIT_ENV)) != NULL) {
		a = at(r, 0, 1, 1, -1);
		CHECK(a != NULL && a->type == IMAP_ARG_LITERAL && a->len == 5);
		CHECK(quoted_is(a, "hello"));
		CHECK(quoted_is(at(r, 0, 1, 2, 0, 0, -1), "Alice"));
		CHECK(joined(at(r, 0, 1, 2, 1, -1)));
		CHECK(quoted_is(at(r, 0, 1, 2, 1, 1, -1), ""));
		CHECK(quoted_is(at(r, 0, 1, 9, -1), "<m@x.jp>"));
	}
	imap_parser_free(&p);
}

/*
 * Numbers at their limits: nz-number and uniqueid go to 4294967295
 * (RFC 9051 §9), mod-sequence values are 64-bit (RFC 7162).
 */
static void
number_limits(void)
{
	struct imap_parser		*p;
	const struct imap_command	*c;
	const struct imap_response	*r;
	const char			*in = "t X 4294967295 4294967296 "
	    "18446744073709551615 18446744073709551616 0 00000000000000000007 "
	    "99999999999999999999 1a\r\n";
	size_t				 used;
	uint32_t			 u;
	uint64_t			 v;

	p = imap_parser_new(IMAP_PARSER_COMMAND, NULL);
	CHECK_INT(imap_parser_feed(p, (const unsigned char *)in, strlen(in),
	    &used), IMAP_PARSE_DONE);
	c = imap_parser_command(p);
	CHECK(c != NULL && c->nargs == 8);
	if (c != NULL && c->nargs == 8) {
		CHECK(imap_arg_get_number(&c->args[0], &u) &&
		    u == 4294967295U);
		CHECK(!imap_arg_get_number(&c->args[1], &u));
		CHECK(imap_arg_get_number64(&c->args[1], &v) &&
		    v == 4294967296ULL);
		CHECK(imap_arg_get_number64(&c->args[2], &v) &&
		    v == UINT64_MAX);
		CHECK(!imap_arg_get_number64(&c->args[3], &v));
		CHECK(imap_arg_get_number(&c->args[4], &u) && u == 0);
		CHECK(imap_arg_get_number(&c->args[5], &u) && u == 7);
		CHECK(!imap_arg_get_number64(&c->args[6], &v));
		CHECK(!imap_arg_get_number64(&c->args[7], &v));
	}
	imap_parser_free(&p);

	if ((r = parse1(&p, "* 4294967295 EXISTS\r\n")) != NULL)
		CHECK(r->has_number && r->number == 4294967295U);
	imap_parser_free(&p);
}

/* Feeds text through an evbuffer, so an error's unread rest stays queued
 * as it would on a connection. */
static enum imap_parse_result
feed_str(struct imap_parser *p, struct evbuffer *in, const char *s)
{
	evbuffer_add(in, s, strlen(s));
	return imap_parser_read(p, in);
}

static void
limits(void)
{
	struct imap_parser_limits	 l;
	struct imap_parser		*p;
	struct evbuffer			*in = evbuffer_new();
	char				 big[201];

	imap_parser_default_limits(&l);
	l.max_line = 100;
	l.max_literal = 10;
	l.max_depth = 2;
	l.max_tag = 8;
	p = imap_parser_new(IMAP_PARSER_COMMAND, &l);

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_INT(feed_str(p, in, "a NOOP "), IMAP_PARSE_MORE);
	CHECK_INT(feed_str(p, in, big), IMAP_PARSE_ERROR);
	CHECK_STR(imap_parser_error(p), "line too long");
	CHECK_STR(imap_parser_error_tag(p), "a");
	/* The rest of the line is skipped, then the next command parses. */
	imap_parser_reset(p);
	CHECK_INT(feed_str(p, in, big), IMAP_PARSE_MORE);
	CHECK_INT(feed_str(p, in, "\r\nb NOOP\r\n"), IMAP_PARSE_DONE);
	CHECK_STR(imap_parser_command(p)->tag, "b");
	imap_parser_reset(p);

	/* A tag alone: the tag is valid, and the BAD may carry it. */
	CHECK_INT(feed_str(p, in, "t7\r\n"), IMAP_PARSE_ERROR);
	CHECK_STR(imap_parser_error(p), "missing command");
	CHECK_STR(imap_parser_error_tag(p), "t7");
	imap_parser_reset(p);

	/* Tag limit: the tag is never echoed. */
	CHECK_INT(feed_str(p, in, "abcdefghij NOOP\r\n"), IMAP_PARSE_ERROR);
	CHECK_STR(imap_parser_error(p), "tag too long");
	CHECK(imap_parser_error_tag(p) == NULL);
	imap_parser_reset(p);
	CHECK_INT(feed_str(p, in, "c NOOP\r\n"), IMAP_PARSE_DONE);
	CHECK_STR(imap_parser_command(p)->tag, "c");
	imap_parser_reset(p);

	CHECK_INT(feed_str(p, in, "a X (((1)))\r\n"), IMAP_PARSE_ERROR);
	CHECK_STR(imap_parser_error(p), "lists nested too deep");
	imap_parser_reset(p);
	CHECK_INT(feed_str(p, in, "a X ((1))\r\n"), IMAP_PARSE_DONE);
	imap_parser_reset(p);

	/* {n+} over the limit: the data follows, the connection must go. */
	CHECK_INT(feed_str(p, in, "a APPEND x {11+}\r\n"), IMAP_PARSE_ERROR);
	CHECK(imap_parser_must_close(p));
	imap_parser_free(&p);
	CHECK(p == NULL);
	evbuffer_drain(in, evbuffer_get_length(in));

	/* {n} over the limit: refused before "+", the next command is fine. */
	p = imap_parser_new(IMAP_PARSER_COMMAND, &l);
	CHECK_INT(feed_str(p, in, "a APPEND x {11}\r\n"), IMAP_PARSE_ERROR);
	CHECK(!imap_parser_must_close(p));
	imap_parser_reset(p);
	CHECK_INT(feed_str(p, in, "b NOOP\r\n"), IMAP_PARSE_DONE);
	imap_parser_free(&p);
	evbuffer_free(in);
}

/* A 1 MB FETCH body streamed through in random chunks. */
static void
streaming_fetch(void)
{
	struct imap_parser	*p = imap_parser_new(IMAP_PARSER_RESPONSE, NULL);
	struct evbuffer		*in = evbuffer_new(), *taken = evbuffer_new();
	const struct imap_response *r;
	const struct imap_arg	*partial, *items;
	enum imap_parse_result	 res;
	size_t			 body = 1024 * 1024, i, n, nitems;
	unsigned int		 depth;
	uint32_t		 seed = 42;
	char			*msg = malloc(body), hdr[64], got[256];
	int			 literals = 0;

	for (i = 0; i < body; i++)
		msg[i] = (char)(unit_rand(&seed) & 0xff);
	imap_parser_set_stream(p, true, 1024);
	snprintf(hdr, sizeof(hdr), "* 7 FETCH (UID 9 BODY[] {%zu}\r\n", body);
	i = 0;
	/* Feed in random pieces: header, body, trailer. */
	evbuffer_add(in, hdr, strlen(hdr));
	for (;;) {
		res = imap_parser_read_response(p, in, &r);
		if (res == IMAP_PARSE_LITERAL) {
			if (literals++ == 0) {
				imap_parser_partial(p, &partial, &n, &depth);
				CHECK_INT(depth, 1);
				CHECK_INT(n, 4);
				CHECK(imap_arg_atom_equals(&partial[0], "UID"));
				CHECK(imap_arg_atom_equals(&partial[2],
				    "BODY[]"));
				CHECK_INT(partial[3].type,
				    IMAP_ARG_LITERAL_SIZE);
				CHECK_INT(imap_parser_literal_left(p), body);
			}
			n = evbuffer_get_length(in);
			if (n > imap_parser_literal_left(p))
				n = imap_parser_literal_left(p);
			evbuffer_remove_buffer(in, taken, n);
			imap_parser_literal_consumed(p, n);
			if (n > 0)
				continue;
		}
		if (res == IMAP_PARSE_DONE || res == IMAP_PARSE_ERROR)
			break;
		if (i < body) {
			n = 1 + unit_rand(&seed) % 70000;
			if (n > body - i)
				n = body - i;
			evbuffer_add(in, msg + i, n);
			i += n;
		} else if (i == body) {
			evbuffer_add(in, " FLAGS (\\Seen))\r\n", 17);
			i++;
		} else
			break;
	}
	CHECK_INT(res, IMAP_PARSE_DONE);
	CHECK_INT(evbuffer_get_length(taken), body);
	CHECK(memcmp(evbuffer_pullup(taken, -1), msg, body) == 0);
	if (res == IMAP_PARSE_DONE) {
		got[0] = '\0';
		dump(p, got, sizeof(got));
		CHECK_STR(got, "*|7 FETCH|||(UID 9 BODY[] <1048576> FLAGS "
		    "(\\Seen))");
		CHECK(imap_arg_get_list(&r->args[0], &items, &nitems));
		CHECK_INT(nitems, 6);
	}
	free(msg);
	evbuffer_free(in);
	evbuffer_free(taken);
	imap_parser_free(&p);
}

/* APPEND with a synchronising literal streamed: CONTINUE, then LITERAL. */
static void
streaming_append(void)
{
	struct imap_parser	*p = imap_parser_new(IMAP_PARSER_COMMAND, NULL);
	const char		*cmd = "A1 APPEND Drafts (\\Draft) {10}\r\n";
	size_t			 used;
	enum imap_parse_result	 r;
	char			 got[256];

	imap_parser_set_stream(p, true, 0);
	r = imap_parser_feed(p, (const unsigned char *)cmd, strlen(cmd),
	    &used);
	CHECK_INT(r, IMAP_PARSE_CONTINUE);
	CHECK_INT(used, strlen(cmd));
	CHECK(imap_parser_literal_sync(p));
	CHECK_INT(imap_parser_literal_size(p), 10);
	r = imap_parser_feed(p, (const unsigned char *)"0123456789", 10,
	    &used);
	CHECK_INT(r, IMAP_PARSE_LITERAL);
	CHECK_INT(used, 0);
	imap_parser_literal_consumed(p, 4);
	CHECK_INT(imap_parser_literal_left(p), 6);
	imap_parser_literal_consumed(p, 6);
	r = imap_parser_feed(p, (const unsigned char *)" {3+}\r\n", 7, &used);
	CHECK_INT(r, IMAP_PARSE_LITERAL);	/* MULTIAPPEND, non-sync */
	imap_parser_literal_consumed(p, 3);
	r = imap_parser_feed(p, (const unsigned char *)"\r\n", 2, &used);
	CHECK_INT(r, IMAP_PARSE_DONE);
	dump(p, got, sizeof(got));
	CHECK_STR(got, "A1|APPEND|Drafts (\\Draft) <10> <3>");

	/* Refused at the continuation: the next command parses at once. */
	imap_parser_reset(p);
	r = imap_parser_feed(p, (const unsigned char *)cmd, strlen(cmd),
	    &used);
	CHECK_INT(r, IMAP_PARSE_CONTINUE);
	imap_parser_reset(p);
	r = imap_parser_feed(p, (const unsigned char *)"A2 NOOP\r\n", 9, &used);
	CHECK_INT(r, IMAP_PARSE_DONE);
	imap_parser_free(&p);
}

/* Streaming for one command only, never its first argument. */
static void
streaming_only_append(void)
{
	struct imap_parser	*p = imap_parser_new(IMAP_PARSER_COMMAND, NULL);
	const char		*login = "L LOGIN {5}\r\n";
	const char		*box = "A APPEND {5}\r\n";
	const char		*msg = "INBOX {10}\r\n";
	size_t			 used;
	enum imap_parse_result	 r;

	imap_parser_set_stream(p, true, 0);
	imap_parser_stream_only(p, "APPEND");
	r = imap_parser_feed(p, (const unsigned char *)login, strlen(login),
	    &used);
	CHECK_INT(r, IMAP_PARSE_CONTINUE);
	CHECK(!imap_parser_literal_streamed(p));	/* kept whole */
	imap_parser_reset(p);
	r = imap_parser_feed(p, (const unsigned char *)box, strlen(box),
	    &used);
	CHECK_INT(r, IMAP_PARSE_CONTINUE);
	CHECK(!imap_parser_literal_streamed(p));	/* the mailbox name */
	r = imap_parser_feed(p, (const unsigned char *)msg, strlen(msg),
	    &used);
	CHECK_INT(r, IMAP_PARSE_CONTINUE);
	CHECK(imap_parser_literal_streamed(p));		/* the message */
	CHECK_INT(imap_parser_literal_size(p), 10);
	imap_parser_free(&p);
}

static void
accessors(void)
{
	struct imap_parser	*p = imap_parser_new(IMAP_PARSER_COMMAND, NULL);
	const struct imap_command *c;
	const char		*s;
	const struct imap_arg	*list;
	size_t			 n, used;
	uint32_t		 u;
	const char		*in = "t X 42 nil \"q\" {2+}\r\nab (1 2) "
	    "4294967296\r\n";

	CHECK_INT(imap_parser_feed(p, (const unsigned char *)in, strlen(in),
	    &used), IMAP_PARSE_DONE);
	c = imap_parser_command(p);
	CHECK_INT(c->nargs, 6);
	CHECK(imap_arg_get_number(&c->args[0], &u) && u == 42);
	CHECK(imap_arg_is_nil(&c->args[1]));
	CHECK(imap_arg_get_nstring(&c->args[1], &s) && s == NULL);
	CHECK(imap_arg_get_astring(&c->args[1], &s) && strcmp(s, "nil") == 0);
	CHECK(imap_arg_get_quoted(&c->args[2], &s) && strcmp(s, "q") == 0);
	CHECK(!imap_arg_get_atom(&c->args[2], &s));
	CHECK(imap_arg_get_string(&c->args[3], &s) && strcmp(s, "ab") == 0);
	CHECK(imap_arg_get_list(&c->args[4], &list, &n) && n == 2);
	CHECK(!imap_arg_get_number(&c->args[5], &u));
	CHECK(!imap_arg_get_list(&c->args[0], &list, &n));
	imap_parser_free(&p);
}

/* One command may have longer lines (ID before login); the others keep
 * the limit, and so does that one once it is switched off. */
static void
long_line_for_one_command(void)
{
	struct imap_parser_limits	 l;
	struct imap_parser		*p;
	struct evbuffer			*in = evbuffer_new();
	char				 line[400];

	imap_parser_default_limits(&l);
	l.max_line = 100;
	p = imap_parser_new(IMAP_PARSER_COMMAND, &l);
	imap_parser_long_line(p, "ID", 300);
	snprintf(line, sizeof(line), "a ID (\"name\" \"%0200d\")\r\n", 7);
	CHECK_INT(feed_str(p, in, line), IMAP_PARSE_DONE);
	imap_parser_reset(p);
	snprintf(line, sizeof(line), "b id (\"name\" \"%0200d\")\r\n", 7);
	CHECK_INT(feed_str(p, in, line), IMAP_PARSE_DONE);	/* any case */
	imap_parser_reset(p);
	snprintf(line, sizeof(line), "c ID (\"name\" \"%0300d\")\r\n", 7);
	CHECK_INT(feed_str(p, in, line), IMAP_PARSE_ERROR);
	CHECK_STR(imap_parser_error(p), "line too long");
	imap_parser_reset(p);
	snprintf(line, sizeof(line), "d LOGIN \"%0200d\" x\r\n", 7);
	CHECK_INT(feed_str(p, in, line), IMAP_PARSE_ERROR);
	CHECK_STR(imap_parser_error(p), "line too long");
	imap_parser_reset(p);
	imap_parser_long_line(p, NULL, 0);
	snprintf(line, sizeof(line), "e ID (\"name\" \"%0200d\")\r\n", 7);
	CHECK_INT(feed_str(p, in, line), IMAP_PARSE_ERROR);
	imap_parser_free(&p);
	evbuffer_free(in);
}

static const struct unit_case cases[] = {
	UNIT_CASE(command_examples),
	UNIT_CASE(malformed_commands),
	UNIT_CASE(response_examples),
	UNIT_CASE(malformed_responses),
	UNIT_CASE(adjacent_lists),
	UNIT_CASE(fetch_grammar_rows),
	UNIT_CASE(fetch_tree_shapes),
	UNIT_CASE(joins_stay_strict),
	UNIT_CASE(number_limits),
	UNIT_CASE(limits),
	UNIT_CASE(long_line_for_one_command),
	UNIT_CASE(streaming_fetch),
	UNIT_CASE(streaming_append),
	UNIT_CASE(streaming_only_append),
	UNIT_CASE(accessors),
};

UNIT_MAIN(cases)
