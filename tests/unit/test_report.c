/*
 * The migration report over state files made with the state store's own
 * API: counts per folder and in total, escaping in JSON and HTML, users
 * summed by --all, an unknown user, and that reading changes nothing.
 */
#include <sys/stat.h>

#include <stdio.h>
#include <unistd.h>

#include "proxy/merge/state.h"
#include "proxy/tools/report.h"
#include "unit.h"

static char	 dir[64];

static void
setup(void)
{
	unit_scratch_dir(dir, sizeof(dir), "report");
}

/* A message with a copy on legacy (luid), new (nuid) or both. */
static void
put(struct state *st, int64_t fid, uint32_t vuid, uint32_t luid,
    uint32_t nuid)
{
	struct state_vmsg	 m;
	char			 key[32];

	memset(&m, 0, sizeof(m));
	snprintf(key, sizeof(key), "m%u@example", vuid);
	m.vuid = vuid;
	m.uid[0] = luid;
	m.uid[1] = nuid;
	m.idate = 1700000000;
	m.lkey = luid ? key : NULL;
	m.lkeyh = luid ? 1000 + vuid : 0;
	m.nkey = nuid ? key : NULL;
	m.nkeyh = nuid ? 1000 + vuid : 0;
	m.want = -1;
	CHECK(state_vmsg_insert(st, fid, &m) == 0);
}

/*
 * One user: INBOX 2 paired, 1 legacy-only, 1 new-only, one tombstone;
 * a folder with markup in its name: 1 legacy-only, never synced.
 */
static void
make_user(const char *user)
{
	struct state		*st;
	struct state_folder	 f;
	char			 err[256];

	st = state_open(dir, user, err, sizeof(err));
	if (!CHECK(st != NULL)) {
		printf("# %s\n", err);
		return;
	}
	CHECK(state_folder_get(st, "INBOX", &f) == 0);
	put(st, f.id, 1, 11, 21);
	put(st, f.id, 2, 12, 22);
	put(st, f.id, 3, 13, 0);
	put(st, f.id, 4, 0, 24);
	put(st, f.id, 5, 15, 25);
	CHECK(state_grave_add(st, f.id, &(struct state_grave){ .vuid = 5,
	    .keyh = { 5, 0, 0 }, .uid = { 15, 0 } }) == 0);
	CHECK(state_vmsg_delete(st, f.id, 5) == 0);
	CHECK(state_folder_synced(st, f.id, 1714564800) == 0);
	CHECK(state_folder_get(st, "a<b>&\"c\"", &f) == 0);
	put(st, f.id, 1, 7, 0);
	state_close(&st);
}

/* The whole output of one report, as a string the caller frees. */
static char *
render(int all, const char *user, enum report_format format)
{
	struct report	*r = report_new(all);
	char		 err[256], *out = NULL;
	size_t		 len;
	FILE		*fp = open_memstream(&out, &len);
	int		 rc;

	rc = all ? report_add_all(r, dir, err, sizeof(err)) :
	    report_add_user(r, dir, user, err, sizeof(err));
	if (!CHECK(rc == 0))
		printf("# %s\n", err);
	CHECK(report_write(r, format, fp) == 0);
	fclose(fp);
	report_free(&r);
	return out;
}

static void
json_counts(void)
{
	char	*s;

	setup();
	make_user("alice");
	s = render(0, "alice", REPORT_JSON);
	CHECK(strstr(s, "\"user\": \"alice\"") != NULL);
	CHECK(strstr(s, "{\"name\": \"INBOX\", \"legacy\": 3, \"new\": 3, "
	    "\"paired\": 2, \"legacy_only\": 1, \"new_only\": 1, "
	    "\"tombstones\": 1, \"last_sync\": \"2024-05-01T12:00:00Z\"}") !=
	    NULL);
	CHECK(strstr(s, "{\"name\": \"a<b>&\\\"c\\\"\", \"legacy\": 1, "
	    "\"new\": 0, \"paired\": 0, \"legacy_only\": 1, \"new_only\": 0, "
	    "\"tombstones\": 0, \"last_sync\": \"never\"}") != NULL);
	/* A total that includes a folder never synced is never synced. */
	CHECK(strstr(s, "\"totals\": {\"legacy\": 4, \"new\": 3, "
	    "\"paired\": 2, \"legacy_only\": 2, \"new_only\": 1, "
	    "\"tombstones\": 1, \"last_sync\": \"never\"}") != NULL);
	/* INBOX comes first. */
	CHECK(strstr(s, "INBOX") < strstr(s, "a<b>"));
	free(s);
}

static void
html_escapes(void)
{
	char	*s, *p;
	int	 bars = 0;

	setup();
	make_user("bob&<x>");
	s = render(0, "bob&<x>", REPORT_HTML);
	CHECK(strstr(s, "<title>imapmerge — migration report for "
	    "bob&amp;&lt;x&gt;</title>") != NULL);
	CHECK(strstr(s, "a&lt;b&gt;&amp;&quot;c&quot;") != NULL);
	CHECK(strstr(s, "a<b>") == NULL && strstr(s, "bob&<") == NULL);
	CHECK(strstr(s, "<script") == NULL && strstr(s, "http") == NULL);
	for (p = s; (p = strstr(p, "class=\"bar\"")) != NULL; p++)
		bars++;
	CHECK_INT(bars, 2);
	free(s);
}

static void
text_rows(void)
{
	char	*s;

	setup();
	make_user("alice");
	s = render(0, "alice", REPORT_TEXT);
	CHECK(strstr(s, "\nINBOX     ") != NULL);
	CHECK(strstr(s, "2024-05-01T12:00:00Z\n") != NULL);
	CHECK(strstr(s, "\ntotal ") != NULL);
	free(s);
}

static void
all_sums_users(void)
{
	char	*s;

	setup();
	make_user("alice");
	make_user("a b/é");
	s = render(1, NULL, REPORT_JSON);
	/* The file name "a%20b%2f%c3%a9.db" is read back as the user. */
	CHECK(strstr(s, "{\"user\": \"a b/é\", \"legacy\": 4,") != NULL);
	CHECK(strstr(s, "{\"user\": \"alice\", \"legacy\": 4,") != NULL);
	CHECK(strstr(s, "{\"name\": \"INBOX\", \"legacy\": 6, \"new\": 6, "
	    "\"paired\": 4, \"legacy_only\": 2, \"new_only\": 2, "
	    "\"tombstones\": 2,") != NULL);
	CHECK(strstr(s, "\"totals\": {\"legacy\": 8, \"new\": 6,") != NULL);
	free(s);
}

static void
unknown_user_changes_nothing(void)
{
	struct report	*r;
	struct stat	 sb;
	char		 err[256], path[128];

	setup();
	r = report_new(0);
	CHECK(report_add_user(r, dir, "nobody", err, sizeof(err)) == -1);
	CHECK(strstr(err, "no state for user \"nobody\"") != NULL);
	snprintf(path, sizeof(path), "%s/nobody.db", dir);
	CHECK(stat(path, &sb) == -1);
	CHECK(report_write(r, REPORT_TEXT, stdout) == -1);
	report_free(&r);
}

static const struct unit_case cases[] = {
	{ "json counts per folder and total", json_counts },
	{ "html escapes names and has one bar per folder", html_escapes },
	{ "text has a row per folder and a total", text_rows },
	{ "--all sums users and decodes file names", all_sums_users },
	{ "an unknown user is an error and creates nothing",
	  unknown_user_changes_nothing },
};

UNIT_MAIN(cases)
