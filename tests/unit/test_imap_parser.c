/*
 * The IMAP parser, table-driven: each input is fed whole, byte by byte and
 * in seeded random chunkings, and every way must give the same dump of the
 * parsed structure.  Commands and responses come from RFC 9051 §6-7 and
 * the RFC 3501 §8 sample session; malformed input must give an error,
 * never a crash.
 */
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

	for (i = 0; i < n; i++) {
		if (i > 0)
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
	char		 got[2048];
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

static const struct unit_case cases[] = {
	UNIT_CASE(command_examples),
	UNIT_CASE(malformed_commands),
	UNIT_CASE(response_examples),
	UNIT_CASE(malformed_responses),
	UNIT_CASE(limits),
	UNIT_CASE(streaming_fetch),
	UNIT_CASE(streaming_append),
	UNIT_CASE(streaming_only_append),
	UNIT_CASE(accessors),
};

UNIT_MAIN(cases)
