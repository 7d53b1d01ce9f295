/*
 * Offline password hashes (proxy/merge/offline.c): the stored form, a right and
 * a wrong password, salts that differ, malformed records, and the worker
 * thread on a real event loop.
 */
#include <string.h>

#include <event2/event.h>

#include "proxy/merge/offline.h"
#include "unit.h"

static void
make_and_verify(void)
{
	char	 a[OFFLINE_HASH_MAX], b[OFFLINE_HASH_MAX];

	CHECK_INT(offline_hash_make("secret", 6, 1000, a, sizeof(a)), 0);
	CHECK(strncmp(a, "pbkdf2-sha256$1000$", 19) == 0);
	CHECK(strstr(a, "secret") == NULL);
	CHECK_INT(offline_hash_verify(a, "secret", 6), 1);
	CHECK_INT(offline_hash_verify(a, "secreT", 6), 0);
	CHECK_INT(offline_hash_verify(a, "secret", 5), 0);
	CHECK_INT(offline_hash_verify(a, "", 0), 0);
	/* Same password, new salt: a different record, both right. */
	CHECK_INT(offline_hash_make("secret", 6, 1000, b, sizeof(b)), 0);
	CHECK(strcmp(a, b) != 0);
	CHECK_INT(offline_hash_verify(b, "secret", 6), 1);
	/* A password with a NUL inside is hashed whole. */
	CHECK_INT(offline_hash_make("a\0b", 3, 1000, a, sizeof(a)), 0);
	CHECK_INT(offline_hash_verify(a, "a\0b", 3), 1);
	CHECK_INT(offline_hash_verify(a, "a\0c", 3), 0);
	/* Too small a buffer, or an absurd cost: refused. */
	CHECK_INT(offline_hash_make("x", 1, 1000, a, 20), -1);
	CHECK_INT(offline_hash_make("x", 1, 10, a, sizeof(a)), -1);
}

static void
malformed(void)
{
	static const char *const bad[] = {
		"", "pbkdf2-sha256$", "pbkdf2-sha256$1000$", "md5$1000$00$00",
		"pbkdf2-sha256$1000$00112233445566778899aabbccddeeff$",
		"pbkdf2-sha256$1000$0011$00",
		"pbkdf2-sha256$99999999999$00112233445566778899aabbccddeeff$"
		"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
		"pbkdf2-sha256$1000$zz112233445566778899aabbccddeeff$"
		"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
	};
	size_t	 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_INT(offline_hash_verify(bad[i], "x", 1), -1);
}

static void
memo_is_keyed(void)
{
	unsigned char	 a[OFFLINE_MEMO_LEN], b[OFFLINE_MEMO_LEN];

	offline_memo("secret", 6, a);
	offline_memo("secret", 6, b);
	CHECK(memcmp(a, b, sizeof(a)) == 0);
	offline_memo("secreT", 6, b);
	CHECK(memcmp(a, b, sizeof(a)) != 0);
}

struct got {
	int	 calls, result;
	char	 hash[OFFLINE_HASH_MAX];
};

static void
done(int result, const char *hash, void *arg)
{
	struct got	*g = arg;

	g->calls++;
	g->result = result;
	snprintf(g->hash, sizeof(g->hash), "%s", hash ? hash : "");
}

static void
worker_on_loop(void)
{
	struct event_base	*base = event_base_new();
	struct got		 made = { 0 }, ok = { 0 }, wrong = { 0 },
				 cancelled = { 0 };
	struct offline_job	*j;
	int			 spins;

	CHECK(offline_start(base, NULL, "pw", 2, done, &made) != NULL);
	for (spins = 0; spins < 200 && made.calls == 0; spins++)
		event_base_loop(base, EVLOOP_ONCE);
	CHECK_INT(made.calls, 1);
	CHECK_INT(made.result, 0);
	CHECK(offline_start(base, made.hash, "pw", 2, done, &ok) != NULL);
	CHECK(offline_start(base, made.hash, "pX", 2, done, &wrong) != NULL);
	j = offline_start(base, made.hash, "pw", 2, done, &cancelled);
	CHECK(j != NULL);
	offline_cancel(j);
	for (spins = 0; spins < 400 && (ok.calls == 0 || wrong.calls == 0);
	    spins++)
		event_base_loop(base, EVLOOP_ONCE);
	CHECK_INT(ok.calls, 1);
	CHECK_INT(ok.result, 1);
	CHECK_INT(wrong.calls, 1);
	CHECK_INT(wrong.result, 0);
	offline_shutdown();
	CHECK_INT(cancelled.calls, 0);
	event_base_free(base);
}

static const struct unit_case cases[] = {
	UNIT_CASE(make_and_verify),
	UNIT_CASE(malformed),
	UNIT_CASE(memo_is_keyed),
	UNIT_CASE(worker_on_loop),
};

UNIT_MAIN(cases)
