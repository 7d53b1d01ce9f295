/*
 * token-command runner: real /bin/sh children on a real event loop —
 * success, caching, sharing one run, lifetimes, failures, timeouts, and
 * shell quoting of the user name.
 */
#include <unistd.h>

#include <event2/event.h>

#include "proxy/net/token.h"
#include "unit.h"

struct result {
	int	 calls;
	char	 token[256];
	char	 error[256];
};

static void
got(const char *token, const char *error, void *arg)
{
	struct result	*r = arg;

	r->calls++;
	snprintf(r->token, sizeof(r->token), "%s", token ? token : "");
	snprintf(r->error, sizeof(r->error), "%s", error ? error : "");
}

static struct event_base *
loop_until(struct event_base *base, struct result *r, int want)
{
	int	 spins;

	for (spins = 0; spins < 2000 && r->calls < want; spins++)
		event_base_loop(base, EVLOOP_ONCE);
	return base;
}

static void
success_and_cache(void)
{
	struct event_base	*base = event_base_new();
	struct token_cache	*tc;
	struct result		 r = { 0 }, r2 = { 0 };
	unsigned long		 id;

	tc = token_cache_new(base, "echo tok-%u; echo 3600", 5000);
	id = token_get(tc, "alice", got, &r);
	CHECK(id != 0);
	CHECK_INT(r.calls, 0);		/* not before the child answered */
	loop_until(base, &r, 1);
	CHECK_INT(r.calls, 1);
	CHECK_STR(r.token, "tok-alice");
	CHECK_STR(r.error, "");
	/* Cached: answered at once, no second run. */
	CHECK_INT(token_get(tc, "alice", got, &r2), 0);
	CHECK_INT(r2.calls, 1);
	CHECK_STR(r2.token, "tok-alice");
	token_cache_free(&tc);
	CHECK(tc == NULL);
	event_base_free(base);
}

static void
concurrent_share_one_run(void)
{
	struct event_base	*base = event_base_new();
	struct token_cache	*tc;
	struct result		 a = { 0 }, b = { 0 }, c = { 0 };
	unsigned long		 idc;
	char			 path[] = "/tmp/imapmerge-token-XXXXXX";
	char			 cmd[256];
	int			 fd;
	FILE			*f;
	int			 runs = 0, ch;

	fd = mkstemp(path);
	close(fd);
	snprintf(cmd, sizeof(cmd), "echo run >> %s; sleep 0.1; echo T", path);
	tc = token_cache_new(base, cmd, 5000);
	token_get(tc, "bob", got, &a);
	token_get(tc, "bob", got, &b);
	idc = token_get(tc, "bob", got, &c);
	token_cancel(tc, idc);
	loop_until(base, &a, 1);
	loop_until(base, &b, 1);
	CHECK_STR(a.token, "T");
	CHECK_STR(b.token, "T");
	CHECK_INT(c.calls, 0);		/* cancelled */
	f = fopen(path, "r");
	while (f != NULL && (ch = fgetc(f)) != EOF)
		runs += ch == '\n';
	if (f != NULL)
		fclose(f);
	unlink(path);
	CHECK_INT(runs, 1);
	token_cache_free(&tc);
	event_base_free(base);
}

static void
short_lifetime_not_cached(void)
{
	struct event_base	*base = event_base_new();
	struct token_cache	*tc;
	struct result		 r = { 0 }, r2 = { 0 };

	/* Lifetime 0 is refused as a bad lifetime. */
	tc = token_cache_new(base, "echo A; echo 0", 5000);
	token_get(tc, "u", got, &r);
	loop_until(base, &r, 1);
	CHECK_STR(r.token, "");
	CHECK_STR(r.error, "token-command printed a bad lifetime");
	token_cache_free(&tc);

	/* One second: the margin makes it stale at once, so it reruns. */
	tc = token_cache_new(base, "echo B; echo 1", 5000);
	token_get(tc, "u", got, &r2);
	loop_until(base, &r2, 1);
	CHECK_STR(r2.token, "B");
	CHECK(token_get(tc, "u", got, &r2) != 0);
	loop_until(base, &r2, 2);
	CHECK_INT(r2.calls, 2);
	token_cache_free(&tc);
	event_base_free(base);
}

static void
failures(void)
{
	struct event_base	*base = event_base_new();
	struct token_cache	*tc;
	struct result		 r = { 0 };

	tc = token_cache_new(base, "echo 'no such tenant' >&2; exit 3", 5000);
	token_get(tc, "u", got, &r);
	loop_until(base, &r, 1);
	CHECK_STR(r.token, "");
	CHECK_STR(r.error, "token-command exited 3: no such tenant");
	token_cache_free(&tc);

	memset(&r, 0, sizeof(r));
	tc = token_cache_new(base, "echo", 5000);
	token_get(tc, "u", got, &r);
	loop_until(base, &r, 1);
	CHECK_STR(r.error, "token-command printed no valid token");
	token_cache_free(&tc);

	memset(&r, 0, sizeof(r));
	tc = token_cache_new(base, "echo 'two words'", 5000);
	token_get(tc, "u", got, &r);
	loop_until(base, &r, 1);
	CHECK_STR(r.error, "token-command printed no valid token");
	token_cache_free(&tc);

	memset(&r, 0, sizeof(r));
	tc = token_cache_new(base, "head -c 100000 /dev/zero | tr '\\0' a",
	    5000);
	token_get(tc, "u", got, &r);
	loop_until(base, &r, 1);
	CHECK_STR(r.error, "token-command printed too much");
	token_cache_free(&tc);
	event_base_free(base);
}

static void
timeout_kills(void)
{
	struct event_base	*base = event_base_new();
	struct token_cache	*tc;
	struct result		 r = { 0 };

	tc = token_cache_new(base, "exec sleep 30", 200);
	token_get(tc, "u", got, &r);
	loop_until(base, &r, 1);
	CHECK_INT(r.calls, 1);
	CHECK_STR(r.error, "token-command timed out");
	token_cache_free(&tc);
	event_base_free(base);
}

static void
forget_reruns(void)
{
	struct event_base	*base = event_base_new();
	struct token_cache	*tc;
	struct result		 r = { 0 };

	tc = token_cache_new(base, "echo X", 5000);
	token_get(tc, "u", got, &r);
	loop_until(base, &r, 1);
	token_forget(tc, "u");
	CHECK(token_get(tc, "u", got, &r) != 0);
	loop_until(base, &r, 2);
	CHECK_INT(r.calls, 2);
	CHECK_STR(r.token, "X");
	token_cache_free(&tc);
	event_base_free(base);
}

static const struct unit_case cases[] = {
	UNIT_CASE(success_and_cache),
	UNIT_CASE(concurrent_share_one_run),
	UNIT_CASE(short_lifetime_not_cached),
	UNIT_CASE(failures),
	UNIT_CASE(timeout_kills),
	UNIT_CASE(forget_reruns),
};

UNIT_MAIN(cases)
