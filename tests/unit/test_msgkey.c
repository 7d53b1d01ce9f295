/*
 * Message identity keys: Message-ID normalisation and the Exchange aliases
 * row by row, the header hash compared between two renderings of one
 * message (and against values computed apart with Python's hashlib), and
 * every row cut at every length, with NULs and oversized inputs, to show
 * nothing breaks.
 */
#include <time.h>

#include "protocol/msgkey.h"
#include "unit.h"

#define NROWS(a)	(sizeof(a) / sizeof((a)[0]))

#define DATE	"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
#define FROM	"From: Alice Example <alice@example.com>\r\n"
#define TO	"To: bob@example.org\r\n"
#define SUBJ	"Subject: Hello world\r\n"
#define GRUSS	"Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6" "ln"	/* Grüße aus Köln */

static const struct {
	const char	*name, *hdr, *msgid, *alias;
} id_rows[] = {
	{ "plain", "Message-ID: <abc.123@Example.COM>\r\n",
	    "abc.123@example.com", "" },
	{ "comments, whitespace, folding, domain case",
	    "Message-Id: (one (nested) \\) comment)\r\n"
	    " <Abc.DEF (inner)\r\n  @Mail. Example.COM> (trailing)\r\n",
	    "Abc.DEF@mail.example.com", "" },
	{ "no brackets", "Message-ID:  abc@Example.com \r\n",
	    "abc@example.com", "" },
	{ "'<' without '>'", "Message-ID: <abc@EXAMPLE.com\r\n",
	    "abc@example.com", "" },
	{ "text around brackets", "Message-ID: junk <a@B> more\r\n",
	    "a@b", "" },
	{ "empty", "Message-ID: \r\n", "", "" },
	{ "empty brackets", "Message-ID: <>\r\n", "", "" },
	{ "only a comment", "Message-ID: (nothing <a@b>)\r\n", "", "" },
	{ "unclosed comment", "Message-ID: <a@b> (open\r\n", "a@b", "" },
	{ "duplicate: first wins",
	    "Message-ID: <first@x>\r\nMessage-ID: <second@x>\r\n",
	    "first@x", "" },
	{ "duplicate's folded line ignored",
	    "Message-ID: <first@x>\r\nMessage-ID:\r\n <second@x>\r\n",
	    "first@x", "" },
	{ "LF endings", "Subject: x\nMessage-ID:\n <lf@Example.com>\n",
	    "lf@example.com", "" },
	{ "name case", "mESSAGE-id: <case@x>\r\n", "case@x", "" },
	{ "space before colon", "Message-ID : <ws@x>\r\n", "ws@x", "" },
	{ "last '@' starts the domain", "Message-ID: <A@B@C.D>\r\n",
	    "A@B@c.d", "" },
	{ "controls dropped", "Message-ID: <a\x01" "b\x7f" "c@x>\r\n",
	    "abc@x", "" },
	{ "8-bit kept", "Message-ID: <caf\xc3\xa9@x>\r\n",
	    "caf\xc3\xa9@x", "" },
	{ "no final newline", "Message-ID: <trunc@X", "trunc@x", "" },
	{ "stops at the empty line",
	    "Subject: a\r\n\r\nMessage-ID: <body@x>\r\n", "", "" },
	{ "empty line first", "\nMessage-ID: <body@x>\r\n", "", "" },
	{ "garbage lines skipped",
	    "garbage without colon\r\n <folded@garbage>\r\n"
	    "Message-ID: <g@x>\r\n", "g@x", "" },
	{ "other field's folding not taken",
	    "X-Other: 1\r\n <not@this>\r\nMessage-ID: <m@x>\r\n",
	    "m@x", "" },
	{ "alias: original",
	    "Message-ID: <new@EURPRD.prod.outlook.com>\r\n"
	    "X-Microsoft-Original-Message-ID: <legacy@Legacy.example>\r\n",
	    "new@eurprd.prod.outlook.com", "legacy@legacy.example" },
	{ "alias: parent",
	    "x-ms-exchange-parent-message-id: <Parent@X>\r\n",
	    "", "Parent@x" },
	{ "alias: original beats parent",
	    "X-MS-Exchange-Parent-Message-ID: <parent@x>\r\n"
	    "X-Microsoft-Original-Message-ID: <orig@x>\r\n", "", "orig@x" },
	{ "alias: empty original, parent",
	    "X-Microsoft-Original-Message-ID: (none)\r\n"
	    "X-MS-Exchange-Parent-Message-ID: <parent@x>\r\n", "",
	    "parent@x" },
};

static void
check_key(const struct msgkey *k)
{
	size_t	 i;

	CHECK(memchr(k->msgid, '\0', MSGKEY_MAX) != NULL);
	CHECK(memchr(k->alias, '\0', MSGKEY_MAX) != NULL);
	CHECK(strlen(k->hash) == 34 && strncmp(k->hash, "h:", 2) == 0);
	for (i = 0; k->msgid[i] != '\0'; i++)
		CHECK((unsigned char)k->msgid[i] > ' ');
	for (i = 0; k->alias[i] != '\0'; i++)
		CHECK((unsigned char)k->alias[i] > ' ');
}

static void
ids(void)
{
	struct msgkey	 k;
	size_t		 i;

	for (i = 0; i < NROWS(id_rows); i++) {
		msgkey_parse(id_rows[i].hdr, strlen(id_rows[i].hdr), &k);
		if (strcmp(k.msgid, id_rows[i].msgid) != 0 ||
		    strcmp(k.alias, id_rows[i].alias) != 0)
			printf("# row: %s\n", id_rows[i].name);
		CHECK_STR(k.msgid, id_rows[i].msgid);
		CHECK_STR(k.alias, id_rows[i].alias);
		CHECK_STR(msgkey_primary(&k),
		    id_rows[i].msgid[0] != '\0' ? id_rows[i].msgid : k.hash);
		check_key(&k);
	}
}

static void
normalise(void)
{
	static const struct {
		const char	*in, *out;	/* out NULL: no id */
	} rows[] = {
		{ "<a@b>", "a@b" },
		{ "  < a @ B . c >  ", "a@b.c" },
		{ "\"q\"@X", "\"q\"@x" },
		{ "(c)<x(y)@Z(w)>", "x@z" },
		{ "<x@y> <z@w>", "x@y" },
		{ "a>b<C@D>", "C@d" },
		{ "no-at-Sign", "no-at-Sign" },
		{ "", NULL },
		{ " \t\r\n ", NULL },
		{ "<", NULL },
		{ "( <a@b> )", NULL },
	};
	char	 out[MSGKEY_MAX];
	size_t	 i;
	bool	 ok;

	for (i = 0; i < NROWS(rows); i++) {
		ok = msgkey_normalise_id(rows[i].in, strlen(rows[i].in), out);
		CHECK(ok == (rows[i].out != NULL));
		CHECK_STR(out, rows[i].out != NULL ? rows[i].out : "");
	}
	/* The length counts, not the NUL. */
	CHECK(msgkey_normalise_id("<a\0b@X>", 7, out));
	CHECK_STR(out, "ab@x");
	CHECK(!msgkey_normalise_id(NULL, 0, out));
}

/* "<" + n "A" + domain + ">" */
static char *
long_id(size_t n, const char *domain)
{
	size_t	 dl = strlen(domain);
	char	*s = malloc(n + dl + 3);

	if (s == NULL)
		abort();
	s[0] = '<';
	memset(s + 1, 'A', n);
	memcpy(s + 1 + n, domain, dl);
	memcpy(s + 1 + n + dl, ">", 2);
	return s;
}

static void
long_ids(void)
{
	char	 a[MSGKEY_MAX], b[MSGKEY_MAX], *s;

	/* 255 bytes fit as they are. */
	s = long_id(253, "@x");
	CHECK(msgkey_normalise_id(s, strlen(s), a));
	CHECK_INT(strlen(a), 255);
	CHECK(strncmp(a, "AAA", 3) == 0);
	free(s);
	/* 256 do not: hashed whole.  Value from Python:
	 * sha256(b"A" * 300 + b"@example.com"). */
	s = long_id(300, "@EXAMPLE.com");
	CHECK(msgkey_normalise_id(s, strlen(s), a));
	CHECK_STR(a, "l:c4716a89e29c0c87319cfd718d950c65"
	    "092a5b1a032f077d7d933e5886272d97");
	free(s);
	s = long_id(300, "@example.com");
	CHECK(msgkey_normalise_id(s, strlen(s), b));
	CHECK_STR(a, b);
	free(s);
	/* A longer id is another id, not the same one cut short. */
	s = long_id(301, "@example.com");
	CHECK(msgkey_normalise_id(s, strlen(s), b));
	CHECK(strcmp(a, b) != 0 && strlen(b) == 66);
	free(s);
}

/* Two header blocks and whether they must hash alike. */
static const struct {
	const char	*name, *a, *b;
	bool		 same;
} hash_rows[] = {
	{ "date: zone and comment", DATE,
	    "Date: 14 Nov 2023 23:13:20 +0100 (CET)\r\n", true },
	{ "date: GMT", DATE, "Date: Tue, 14 Nov 2023 22:13:20 GMT\r\n", true },
	{ "date: EST", DATE, "Date: Tue, 14 Nov 2023 17:13:20 EST\r\n", true },
	{ "date: PDT", DATE, "Date: Tue, 14 Nov 2023 15:13:20 PDT\r\n", true },
	{ "date: negative offset", DATE,
	    "Date: Tue, 14 Nov 2023 17:43:20 -0430\r\n", true },
	{ "date: 2-digit year", DATE, "Date: 14 nov 23 22:13:20 UT\r\n",
	    true },
	{ "date: military zone", DATE,
	    "Date: Tue, 14 Nov 2023 22:13:20 Z\r\n", true },
	{ "date: folded, comments, obs spaces", DATE,
	    "Date: (sent) tue , 14 Nov\r\n 2023 22 : 13 : 20 (x) +0000\r\n",
	    true },
	{ "date: no seconds", "Date: 14 Nov 2023 22:13 +0000\r\n",
	    "Date: 14 Nov 2023 22:13:00 +0000\r\n", true },
	{ "date: day across midnight", "Date: 1 Jan 2024 00:30:00 +0100\r\n",
	    "Date: Sun, 31 Dec 2023 23:30:00 +0000\r\n", true },
	{ "date: one second apart", DATE,
	    "Date: Tue, 14 Nov 2023 22:13:21 +0000\r\n", false },
	{ "date: not a date, collapsed", "Date: not a  date\r\n",
	    "Date:   not a\r\n date  \r\n", true },
	{ "date: not a date, differs", "Date: not a date\r\n",
	    "Date: not a date!\r\n", false },
	{ "date: 31 Feb is no date", "Date: 31 Feb 2023 00:00:00 +0000\r\n",
	    "Date: 3 Mar 2023 00:00:00 +0000\r\n", false },
	{ "from: display name", FROM, "From: alice@example.com\r\n", true },
	{ "from: quoted name", FROM,
	    "From: \"Example, Alice\" <Alice@Example.COM>\r\n", true },
	{ "from: encoded name", FROM,
	    "From: =?UTF-8?Q?Alic=C3=A9?= <alice@example.com>\r\n", true },
	{ "from: comment", FROM, "From: alice@example.com (Alice)\r\n", true },
	{ "from: folded", FROM, "From: Alice\r\n <alice@example.com>\r\n",
	    true },
	{ "from: other address", FROM, "From: Alice <bob@example.com>\r\n",
	    false },
	{ "to: list", "To: a@x.com, \"B, b\" <b@y.com>\r\n",
	    "To: <A@X.com>,b@Y.com\r\n", true },
	{ "to: group", "To: friends: a@x.com, b@y.com;\r\n",
	    "To: a@x.com, b@y.com\r\n", true },
	{ "to: route", "To: <@relay.example:a@x.com>\r\n",
	    "To: a@x.com\r\n", true },
	{ "to: quoted local part", "To: \"John Doe\"@Example.com\r\n",
	    "To: John <\"john doe\"@example.com>\r\n", true },
	{ "to: order counts", "To: a@x.com, b@y.com\r\n",
	    "To: b@y.com, a@x.com\r\n", false },
	{ "to: no address, collapsed", "To: undisclosed  recipients\r\n",
	    "To: undisclosed recipients\r\n", true },
	{ "from and to are apart", "From: a@x.com\r\n", "To: a@x.com\r\n",
	    false },
	{ "subject: B", "Subject: " GRUSS "\r\n",
	    "Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\r\n", true },
	{ "subject: Q", "Subject: " GRUSS "\r\n",
	    "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n", true },
	{ "subject: B vs two Q words",
	    "Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\r\n",
	    "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus?= =?UTF-8?Q?_K=C3=B6ln?="
	    "\r\n", true },
	{ "subject: two B words folded", "Subject: " GRUSS "\r\n",
	    "Subject: =?UTF-8?B?R3LDvMOfZSBh?=\r\n\t=?UTF-8?B?dXMgS8O2bG4=?="
	    "\r\n", true },
	{ "subject: word then text keeps the space",
	    "Subject: =?UTF-8?Q?a?= b\r\n", "Subject: a b\r\n", true },
	{ "subject: word then text, no space",
	    "Subject: =?UTF-8?Q?a?= b\r\n", "Subject: ab\r\n", false },
	{ "subject: malformed word left as is",
	    "Subject: =?UTF-8?Q?bad=Z?=\r\n", "Subject: bad=Z\r\n", false },
	{ "subject: whitespace collapsed", SUBJ,
	    "Subject:   Hello \t\r\n   world  \r\n", true },
	{ "subject: case counts", SUBJ, "Subject: Hello World\r\n", false },
	{ "subject: differs", SUBJ, "Subject: Hello world!\r\n", false },
	{ "missing or empty field", "Subject:\r\nTo:\r\n", "", true },
	{ "first Date counts", DATE "Date: 1 Jan 2000 00:00 +0000\r\n",
	    DATE, true },
	{ "Message-ID is not hashed", DATE "Message-ID: <a@b>\r\n",
	    DATE "Message-ID: <c@d>\r\n", true },
	{ "whole header, other field order",
	    DATE FROM TO SUBJ "\r\n",
	    "subject: Hello world\nto: Bob <bob@example.org>\n"
	    "from: alice@example.com\nDATE: 14 Nov 2023 23:13:20 +0100\n",
	    true },
};

static void
hashes(void)
{
	struct msgkey	 a, b;
	size_t		 i;

	for (i = 0; i < NROWS(hash_rows); i++) {
		msgkey_parse(hash_rows[i].a, strlen(hash_rows[i].a), &a);
		msgkey_parse(hash_rows[i].b, strlen(hash_rows[i].b), &b);
		if ((strcmp(a.hash, b.hash) == 0) != hash_rows[i].same)
			printf("# row: %s\n", hash_rows[i].name);
		CHECK((strcmp(a.hash, b.hash) == 0) == hash_rows[i].same);
		check_key(&a);
		check_key(&b);
	}
}

/* Values from Python: sha256(b"1700000000\nalice@example.com\n"
 * b"bob@example.org\nHello world") and sha256(b"\n\n\n"). */
static void
hash_values(void)
{
	static const char	 hdr[] = DATE FROM TO SUBJ "\r\n";
	struct msgkey		 k;

	msgkey_parse(hdr, sizeof(hdr) - 1, &k);
	CHECK_STR(k.hash, "h:69bb3d72b9c1fe89c25e75a58c5c6e15");
	CHECK_STR(msgkey_primary(&k), k.hash);
	msgkey_parse("", 0, &k);
	CHECK_STR(k.hash, "h:6a3cf5192354f71615ac51034b3e97c2");
	msgkey_parse(NULL, 0, &k);
	CHECK_STR(k.hash, "h:6a3cf5192354f71615ac51034b3e97c2");
	CHECK_STR(k.msgid, "");
	CHECK_STR(k.alias, "");
}

/* Exchange gave the copy a new id and kept the legacy one. */
static void
exchange_rewrite(void)
{
	static const char	 legacy[] =
	    "Message-ID: <20231114221320.1234@Legacy.Example.COM>\r\n"
	    DATE FROM TO
	    "Subject: =?ISO-8859-1?Q?Gr=FC=DFe?=\r\n\r\n";
	static const char	 exchange[] =
	    "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
	    "From: \"Alice Example\" <alice@example.com>\r\n"
	    "To: \"bob@example.org\" <bob@example.org>\r\n"
	    "Subject: =?iso-8859-1?B?R3L832U=?=\r\n"
	    "Message-ID:\r\n <AM0PR01MB1234ABCD@AM0PR01MB1234.eurprd01.prod."
	    "exchangelabs.com>\r\n"
	    "X-Microsoft-Original-Message-ID:\r\n"
	    "\t<20231114221320.1234@legacy.example.com>\r\n\r\n";
	struct msgkey		 l, n;

	msgkey_parse(legacy, sizeof(legacy) - 1, &l);
	msgkey_parse(exchange, sizeof(exchange) - 1, &n);
	CHECK_STR(l.msgid, "20231114221320.1234@legacy.example.com");
	CHECK_STR(n.msgid, "AM0PR01MB1234ABCD@am0pr01mb1234.eurprd01.prod."
	    "exchangelabs.com");
	CHECK(strcmp(l.msgid, n.msgid) != 0);
	CHECK_STR(n.alias, l.msgid);
	CHECK_STR(l.hash, n.hash);
}

static void
nuls(void)
{
	static const char	 id[] = "Message-ID: <a\0b@X>\r\n";
	static const char	 name[] =
	    "Mess\0age-ID: <x@y>\r\nMessage-ID: <real@y>\r\n";
	static const char	 line[] = "\0\r\nMessage-ID: <z@y>\r\n";
	static const char	 s1[] = "Subject: a\0b\r\n";
	static const char	 d1[] = DATE;
	static const char	 d2[] =
	    "Date: Tue, 14 Nov 2023 22:13:20 +0000\0junk\r\n";
	struct msgkey		 k, k2;

	msgkey_parse(id, sizeof(id) - 1, &k);
	CHECK_STR(k.msgid, "ab@x");
	msgkey_parse(name, sizeof(name) - 1, &k);
	CHECK_STR(k.msgid, "real@y");
	msgkey_parse(line, sizeof(line) - 1, &k);
	CHECK_STR(k.msgid, "z@y");
	msgkey_parse(s1, sizeof(s1) - 1, &k);
	msgkey_parse(s1, sizeof(s1) - 1, &k2);
	CHECK_STR(k.hash, k2.hash);
	msgkey_parse("Subject: ab\r\n", 13, &k2);
	CHECK(strcmp(k.hash, k2.hash) != 0);
	msgkey_parse("Subject: a b\r\n", 14, &k2);
	CHECK(strcmp(k.hash, k2.hash) != 0);
	/* A NUL does not end the value early: "junk" still counts. */
	msgkey_parse(d1, sizeof(d1) - 1, &k);
	msgkey_parse(d2, sizeof(d2) - 1, &k2);
	CHECK(strcmp(k.hash, k2.hash) != 0);
	check_key(&k2);
}

/* Each prefix in a buffer of its own size, so ASan sees any over-read. */
static void
parse_prefixes(const char *s, size_t len)
{
	struct msgkey	 k;
	char		*buf;
	size_t		 n;

	for (n = 0; n <= len; n++) {
		if ((buf = malloc(n > 0 ? n : 1)) == NULL)
			abort();
		memcpy(buf, s, n);
		msgkey_parse(buf, n, &k);
		check_key(&k);
		(void)msgkey_normalise_id(buf, n, k.msgid);
		free(buf);
	}
}

static void
truncated(void)
{
	size_t	 i;

	for (i = 0; i < NROWS(id_rows); i++)
		parse_prefixes(id_rows[i].hdr, strlen(id_rows[i].hdr));
	for (i = 0; i < NROWS(hash_rows); i++) {
		parse_prefixes(hash_rows[i].a, strlen(hash_rows[i].a));
		parse_prefixes(hash_rows[i].b, strlen(hash_rows[i].b));
	}
}

/* n copies of a pattern after a field name, so the time is visible. */
static void
big_field(const char *field, const char *pat)
{
	size_t		 n = 1 << 20, fl = strlen(field), pl = strlen(pat), o;
	struct msgkey	 k;
	char		*buf;
	clock_t		 t0 = clock();

	if ((buf = malloc(fl + n)) == NULL)
		abort();
	memcpy(buf, field, fl);
	for (o = fl; o + pl <= fl + n; o += pl)
		memcpy(buf + o, pat, pl);
	msgkey_parse(buf, o, &k);
	check_key(&k);
	(void)msgkey_normalise_id(buf, o, k.msgid);
	free(buf);
	/* Linear work: a MB takes milliseconds; quadratic would take
	 * minutes.  The bound is loose enough for sanitizers. */
	if (!CHECK((clock() - t0) / CLOCKS_PER_SEC < 10))
		printf("#   slow: %s%s\n", field, pat);
}

static void
big_inputs(void)
{
	big_field("Subject: ", "=?");
	big_field("Subject: ", "=?a?q?");
	big_field("Subject: ", "=?a?b?QUJD?= ");
	big_field("Message-ID: ", "((");
	big_field("Message-ID: ", "<a@B");
	big_field("From: ", "<<\"");
	big_field("To: ", "a@b,");
	big_field("Date: ", "1 ");
	big_field("Subject: x\r\n", " \r\n");
	big_field("", "Message-ID: <x@y>\r\n");
	big_field("", "garbage\n");
}

/* The legacy side's parse: the same keys, the hash only where it is one. */
static void
primary_only(void)
{
	struct msgkey	 full, primary;
	size_t		 i;

	for (i = 0; i < NROWS(id_rows); i++) {
		msgkey_parse(id_rows[i].hdr, strlen(id_rows[i].hdr), &full);
		msgkey_parse_primary(id_rows[i].hdr, strlen(id_rows[i].hdr),
		    &primary);
		CHECK_STR(primary.msgid, full.msgid);
		CHECK_STR(primary.alias, full.alias);
		CHECK_STR(msgkey_primary(&primary), msgkey_primary(&full));
		CHECK_STR(primary.hash, full.msgid[0] != '\0' ? "" :
		    full.hash);
	}
}

static void
hash64(void)
{
	/* Python: sha256(b"abc@example.com").digest()[:8] */
	CHECK(msgkey_hash64("abc@example.com") == 0x9eceb13483d7f187ULL);
	CHECK(msgkey_hash64("") != 0);
	CHECK(msgkey_hash64("a@b") != msgkey_hash64("a@c"));
}

static const struct unit_case cases[] = {
	UNIT_CASE(ids),
	UNIT_CASE(normalise),
	UNIT_CASE(long_ids),
	UNIT_CASE(hashes),
	UNIT_CASE(hash_values),
	UNIT_CASE(exchange_rewrite),
	UNIT_CASE(nuls),
	UNIT_CASE(truncated),
	UNIT_CASE(big_inputs),
	UNIT_CASE(primary_only),
	UNIT_CASE(hash64),
};

UNIT_MAIN(cases)
