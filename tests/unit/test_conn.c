/*
 * conn.c's pure helpers: the flush back-off of closing connections.
 */
#include "proxy/net/conn.h"
#include "tests/unit/unit.h"

/* 10 ms, doubling to 640 ms, for about 5 s in all, then 0 for good. */
static void
test_flush_wait(void)
{
	unsigned int	 total = 0, ms;
	int		 tries;

	CHECK_INT(conn_flush_wait(0), 10);
	CHECK_INT(conn_flush_wait(1), 20);
	CHECK_INT(conn_flush_wait(6), 640);
	CHECK_INT(conn_flush_wait(7), 640);
	for (tries = 0; (ms = conn_flush_wait(tries)) > 0; tries++)
		total += ms;
	CHECK(total >= 5000 && total < 6000);
	CHECK(tries < 20);
	CHECK_INT(conn_flush_wait(1000), 0);
}

static const struct unit_case cases[] = {
	UNIT_CASE(test_flush_wait),
};

UNIT_MAIN(cases)
