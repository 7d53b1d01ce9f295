/*
 * INTERNALDATE <-> seconds: RFC 9051 date-time strings parsed by hand,
 * checked against known values, against malformed ones, and round trip
 * with the formatter over 130 years.
 */
#include "proxy/merge/mailbox_impl.h"
#include "unit.h"

static void
known_values(void)
{
	CHECK_INT(mbox_parse_idate("17-Jul-1996 02:44:25 -0700"), 837596665);
	CHECK_INT(mbox_parse_idate(" 7-Mar-2000 12:00:00 -1200"), 952473600);
	CHECK_INT(mbox_parse_idate("07-mar-2000 12:00:00 -1200"), 952473600);
	CHECK_INT(mbox_parse_idate("29-Feb-2024 23:59:59 +0930"), 1709216999);
	CHECK_INT(mbox_parse_idate("31-Dec-2105 23:59:59 +0000"), 4291747199u);
	CHECK_INT(mbox_parse_idate("02-Jan-1970 00:00:00 +0000"), 86400);
}

static void
malformed(void)
{
	static const char *const bad[] = {
		"", "17-Jul-1996", "17-Jux-1996 02:44:25 -0700",
		"32-Jul-1996 02:44:25 -0700", "17-Jul-96 02:44:25 -0700",
		"17-Jul-1996 24:00:00 +0000", "17-Jul-1996 02:60:25 +0000",
		"17-Jul-1996 02:44:25 0700", "17-Jul-1996 02:44:25 +07",
		"17/Jul/1996 02:44:25 +0700", "17-Jul-1969 23:59:59 +0000",
		"17-Jul-2106 00:00:00 +0000", "1x-Jul-1996 02:44:25 +0000",
		"17-Jul-1996 02:44:25 +07x0",
	};
	size_t	 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (!CHECK(mbox_parse_idate(bad[i]) == 0))
			printf("#   accepted \"%s\"\n", bad[i]);
}

static void
round_trip(void)
{
	char		 buf[64];
	uint64_t	 t;
	int		 wrong = 0;

	/* Every 7 hours 13 minutes and 17 seconds, 1970 to 2100. */
	for (t = 86400; t < 4102444800u; t += 7 * 3600 + 13 * 60 + 17) {
		mbox_format_idate((uint32_t)t, buf, sizeof(buf));
		if (mbox_parse_idate(buf) != t && wrong++ < 5)
			printf("# %s -> %u, want %llu\n", buf,
			    mbox_parse_idate(buf), (unsigned long long)t);
	}
	CHECK_INT(wrong, 0);
}

static const struct unit_case cases[] = {
	UNIT_CASE(known_values),
	UNIT_CASE(malformed),
	UNIT_CASE(round_trip),
};

UNIT_MAIN(cases)
