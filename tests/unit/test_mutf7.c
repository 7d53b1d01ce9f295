/*
 * Modified UTF-7: the folder names seen in the field both ways, RFC 3501's
 * examples, and every non-canonical or broken form refused.
 */
#include "protocol/mutf7.h"
#include "unit.h"

static const struct {
	const char	*utf8;
	const char	*mutf7;
} pairs[] = {
	{ "INBOX", "INBOX" },
	{ "送信済み", "&kAFP4W4IMH8-" },
	{ "ごみ箱", "&MFQwf3ux-" },
	{ "迷惑メール", "&j,dg0TDhMPww6w-" },
	{ "下書き", "&Tgtm+DBN-" },
	{ "送信済みアイテム", "&kAFP4W4IMH8wojCkMMYw4A-" },
	{ "削除済みアイテム", "&UkqWZG4IMH8wojCkMMYw4A-" },
	{ "Entwürfe", "Entw&APw-rfe" },
	{ "~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-" },
	{ "A&B", "A&-B" },
	{ "&", "&-" },
	{ "Archive/2019", "Archive/2019" },
	{ "a\xf0\x9f\x93\xa7z", "a&2D3c5w-z" },		/* U+1F4E7 */
	{ "", "" },
};

static void
round_trips(void)
{
	const char	*err;
	char		*s;
	size_t		 i;

	for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		s = mutf7_encode(pairs[i].utf8, strlen(pairs[i].utf8), &err);
		CHECK_STR(s, pairs[i].mutf7);
		free(s);
		s = mutf7_decode(pairs[i].mutf7, strlen(pairs[i].mutf7), &err);
		CHECK_STR(s, pairs[i].utf8);
		free(s);
	}
}

static const struct {
	const char	*in;
	const char	*why;
} bad_decode[] = {
	{ "&AGE-", "printable ASCII inside a shift" },	/* "a" */
	{ "&kAFP4W4IMH8-&MFQwf3ux-", "two shifts back to back" },
	{ "&kAFP4W4IMH8", "unterminated shift" },
	{ "&kAF!-", "invalid base64 in shift" },
	{ "&kAFP4W4IMH9-", "bad padding bits" },
	{ "&kA-", "bad padding bits" },
	{ "&2D0-", "broken surrogate pair" },		/* lone high */
	{ "&3OcAYQ-", "broken surrogate pair" },	/* lone low */
	{ "caf\xc3\xa9", "invalid character" },		/* raw 8-bit */
	{ "a\tb", "invalid character" },
	{ "&kAFP4W4IMH8/-", "invalid base64 in shift" },	/* '/' not ',' */
	{ "&kAFP4W4IMH8=-", "invalid base64 in shift" },
	{ "a&AAA-", "NUL in name" },			/* U+0000 */
};

static void
decode_refuses(void)
{
	const char	*err;
	char		*s;
	size_t		 i;

	for (i = 0; i < sizeof(bad_decode) / sizeof(bad_decode[0]); i++) {
		err = NULL;
		s = mutf7_decode(bad_decode[i].in, strlen(bad_decode[i].in),
		    &err);
		CHECK(s == NULL);
		free(s);
		CHECK_STR(err, bad_decode[i].why);
	}
	s = mutf7_decode("a\0b", 3, &err);
	CHECK(s == NULL);
	CHECK_STR(err, "invalid character");
}

static void
encode_refuses(void)
{
	static const char *const bad[] = {
		"\xc0\xaf",		/* overlong "/" */
		"\xe0\x80\xaf",		/* overlong */
		"\xed\xa0\x80",		/* surrogate */
		"\xf4\x90\x80\x80",	/* > U+10FFFF */
		"\xe3\x81",		/* truncated */
		"\x80",
		"\xff",
	};
	const char	*err;
	char		*s;
	size_t		 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s = mutf7_encode(bad[i], strlen(bad[i]), &err);
		CHECK(s == NULL);
		free(s);
		CHECK_STR(err, "invalid UTF-8");
	}
	s = mutf7_encode("a\0b", 3, &err);
	CHECK(s == NULL);
	CHECK_STR(err, "NUL in name");
}

static void
controls_are_encoded(void)
{
	const char	*err;
	char		*s, *back;

	/* Control characters are not printable: they go into a shift. */
	s = mutf7_encode("a\tb", 3, &err);
	CHECK_STR(s, "a&AAk-b");
	back = mutf7_decode(s, strlen(s), &err);
	CHECK_STR(back, "a\tb");
	free(s);
	free(back);
}

static const struct unit_case cases[] = {
	UNIT_CASE(round_trips),
	UNIT_CASE(decode_refuses),
	UNIT_CASE(encode_refuses),
	UNIT_CASE(controls_are_encoded),
};

UNIT_MAIN(cases)
