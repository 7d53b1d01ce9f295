/*
 * `imapmerge report`: per unified folder, how many messages the merged
 * view holds on each server, how many are paired (migrated), left on
 * legacy only, new only, and how many keys a tombstone hides, with the
 * time of the last sync.  Text, JSON or one self-contained HTML page.
 *
 * The numbers come from the user's state file alone: the report never
 * talks to a server, so it is as fresh as the last sync of each folder,
 * which it shows.  The file is opened read-only (SQLITE_OPEN_READONLY)
 * and read in one statement, so it can run while the daemon writes (WAL
 * readers see the last committed transaction) and never creates a user.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "conf/config.h"
#include "proxy/merge/state.h"
#include "proxy/tools/report.h"

enum {
	C_LEGACY,
	C_NEW,
	C_PAIRED,
	C_LEGACY_ONLY,
	C_NEW_ONLY,
	C_TOMBSTONES,
	C_COUNT
};

/* JSON keys, and the text and HTML column heads. */
static const char *const col_key[C_COUNT] = {
	"legacy", "new", "paired", "legacy_only", "new_only", "tombstones"
};
static const char *const col_head[C_COUNT] = {
	"legacy", "new", "paired", "legacy-only", "new-only", "tombstones"
};

struct report_row {
	char		*name;		/* folder path, or user */
	uint64_t	 n[C_COUNT];
	int64_t		 synced;	/* 0: never */
	size_t		 summed;	/* rows added into this one */
};

struct report_table {
	struct report_row	*rows;
	size_t			 n, cap;
};

struct report {
	int			 all;
	char			*user;	/* the one user, when !all */
	struct report_table	 folders;
	struct report_table	 users;
	struct report_row	 total;
};

/*
 * One statement per user: the counts of every unified folder.  A row
 * with neither UID (none is left so for long) counts nowhere.
 */
static const char report_sql[] =
    "SELECT f.path, f.synced,"
    " coalesce(sum(v.luid != 0), 0),"
    " coalesce(sum(v.nuid != 0), 0),"
    " coalesce(sum(v.luid != 0 AND v.nuid != 0), 0),"
    " coalesce(sum(v.luid != 0 AND v.nuid = 0), 0),"
    " coalesce(sum(v.luid = 0 AND v.nuid != 0), 0),"
    " (SELECT count(*) FROM tombstone t WHERE t.ufolder = f.id)"
    "%s"
    " FROM ufolder f LEFT JOIN vmsg v ON v.ufolder = f.id"
    " GROUP BY f.id ORDER BY f.path";
/* Schema 5 on: a tombstone per deleted message as well. */
static const char report_graves[] =
    " + (SELECT count(*) FROM tombstone_vmsg t WHERE t.ufolder = f.id)";

/* The schema that has ufolder, vmsg and tombstone (state.c). */
#define REPORT_SCHEMA_MIN	2
#define REPORT_SCHEMA_GRAVES	5

struct report *
report_new(int all)
{
	struct report	*r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->all = all;
	return r;
}

static void
table_clear(struct report_table *t)
{
	size_t	 i;

	for (i = 0; i < t->n; i++)
		free(t->rows[i].name);
	free(t->rows);
}

void
report_free(struct report **rp)
{
	struct report	*r = *rp;

	if (r == NULL)
		return;
	table_clear(&r->folders);
	table_clear(&r->users);
	free(r->user);
	free(r);
	*rp = NULL;
}

/*
 * A row that sums others shows the oldest sync, and "never" if any of
 * them never synced: a stale folder must not hide behind fresh ones.
 */
static void
row_add(struct report_row *to, const uint64_t n[C_COUNT], int64_t synced)
{
	size_t	 i;

	for (i = 0; i < C_COUNT; i++)
		to->n[i] += n[i];
	if (to->summed++ == 0)
		to->synced = synced;
	else if (synced == 0 || to->synced == 0)
		to->synced = 0;
	else if (synced < to->synced)
		to->synced = synced;
}

/* The row named name, added if missing; NULL when out of memory. */
static struct report_row *
table_row(struct report_table *t, const char *name)
{
	struct report_row	*rows;
	size_t			 i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->rows[i].name, name) == 0)
			return &t->rows[i];
	if (t->n == t->cap) {
		size_t	 cap = t->cap ? t->cap * 2 : 16;

		if ((rows = reallocarray(t->rows, cap, sizeof(*rows))) == NULL)
			return NULL;
		t->rows = rows;
		t->cap = cap;
	}
	memset(&t->rows[t->n], 0, sizeof(t->rows[t->n]));
	if ((t->rows[t->n].name = strdup(name)) == NULL)
		return NULL;
	return &t->rows[t->n++];
}

/* INBOX first, as clients show it, then by name. */
static int
folder_cmp(const void *a, const void *b)
{
	const struct report_row	*x = a, *y = b;
	int			 xi = strcmp(x->name, "INBOX") == 0;
	int			 yi = strcmp(y->name, "INBOX") == 0;

	if (xi != yi)
		return yi - xi;
	return strcmp(x->name, y->name);
}

static int
report_open(const char *dir, const char *user, sqlite3 **db, char *err,
    size_t errlen)
{
	struct stat	 sb;
	char		*name, *path;
	int		 rc;

	if ((name = state_file_name(user)) == NULL)
		goto nomem;
	rc = asprintf(&path, "%s/%s", dir, name);
	free(name);
	if (rc == -1)
		goto nomem;
	if (stat(path, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		if (errno == ENOENT)
			snprintf(err, errlen, "no state for user \"%s\" in %s "
			    "(unknown user, or never logged in)", user, dir);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	*db = NULL;
	if (sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, *db != NULL ?
		    sqlite3_errmsg(*db) : "cannot open");
		sqlite3_close(*db);
		free(path);
		return -1;
	}
	free(path);
	/* The daemon holds the write lock only for short transactions. */
	sqlite3_busy_timeout(*db, 5000);
	return 0;
 nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

static int
report_schema(sqlite3 *db, const char *user, char *err, size_t errlen)
{
	sqlite3_stmt	*s;
	int		 v = -1;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) ==
	    SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	if (v < 0) {
		snprintf(err, errlen, "%s: %s", user, sqlite3_errmsg(db));
		return -1;
	}
	if (v > state_schema_version(NULL)) {
		snprintf(err, errlen, "%s: schema version %d is newer than this "
		    "imapmerge (%d)", user, v, state_schema_version(NULL));
		return -1;
	}
	return v;
}

static int
report_read(struct report *r, sqlite3 *db, int version, const char *user,
    char *err, size_t errlen)
{
	struct report_row	*f, *u = NULL;
	sqlite3_stmt		*s;
	uint64_t		 n[C_COUNT];
	int64_t			 synced;
	int			 rc, i;
	char			 sql[sizeof(report_sql) + sizeof(report_graves)];

	if (r->all && (u = table_row(&r->users, user)) == NULL)
		goto nomem;
	snprintf(sql, sizeof(sql), report_sql,
	    version >= REPORT_SCHEMA_GRAVES ? report_graves : "");
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		goto dberr;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		synced = sqlite3_column_int64(s, 1);
		for (i = 0; i < C_COUNT; i++)
			n[i] = (uint64_t)sqlite3_column_int64(s, 2 + i);
		f = table_row(&r->folders,
		    (const char *)sqlite3_column_text(s, 0));
		if (f == NULL) {
			sqlite3_finalize(s);
			goto nomem;
		}
		row_add(f, n, synced);
		row_add(&r->total, n, synced);
		if (u != NULL)
			row_add(u, n, synced);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		goto dberr;
	return 0;
 dberr:
	snprintf(err, errlen, "%s: %s", user, sqlite3_errmsg(db));
	return -1;
 nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

int
report_add_user(struct report *r, const char *dir, const char *user,
    char *err, size_t errlen)
{
	sqlite3	*db;
	int	 v, rc = 0;

	if (report_open(dir, user, &db, err, errlen) == -1)
		return -1;
	if ((v = report_schema(db, user, err, errlen)) == -1)
		rc = -1;
	else if (v >= REPORT_SCHEMA_MIN)
		rc = report_read(r, db, v, user, err, errlen);
	else if (r->all && table_row(&r->users, user) == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = -1;
	}
	sqlite3_close(db);
	if (rc == 0 && !r->all && r->user == NULL &&
	    (r->user = strdup(user)) == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = -1;
	}
	return rc;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The user a state file name stands for (state_file_name reversed). */
static char *
user_of_file(const char *file)
{
	size_t	 len = strlen(file), i;
	char	*user, *o;

	if (len <= 3 || strcmp(file + len - 3, ".db") != 0 || file[0] == '.')
		return NULL;
	len -= 3;
	if ((user = malloc(len + 1)) == NULL)
		return NULL;
	for (o = user, i = 0; i < len; i++) {
		if (file[i] == '%' && i + 2 < len && hexval(file[i + 1]) >= 0 &&
		    hexval(file[i + 2]) >= 0) {
			*o++ = (char)(hexval(file[i + 1]) << 4 |
			    hexval(file[i + 2]));
			i += 2;
		} else
			*o++ = file[i];
	}
	*o = '\0';
	return user;
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
report_add_all(struct report *r, const char *dir, char *err, size_t errlen)
{
	DIR		*d;
	struct dirent	*e;
	char		**users = NULL, **more, *u;
	size_t		 n = 0, i;
	int		 rc = 0;

	if ((d = opendir(dir)) == NULL) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if ((u = user_of_file(e->d_name)) == NULL)
			continue;
		if ((more = reallocarray(users, n + 1, sizeof(*users))) ==
		    NULL) {
			free(u);
			rc = -1;
			snprintf(err, errlen, "out of memory");
			break;
		}
		users = more;
		users[n++] = u;
	}
	closedir(d);
	if (n > 0)
		qsort(users, n, sizeof(*users), str_cmp);
	for (i = 0; i < n && rc == 0; i++)
		rc = report_add_user(r, dir, users[i], err, errlen);
	for (i = 0; i < n; i++)
		free(users[i]);
	free(users);
	return rc;
}

static void
iso_time(int64_t t, char *buf, size_t len)
{
	time_t		 tt = (time_t)t;
	struct tm	 tm;

	if (t == 0 || gmtime_r(&tt, &tm) == NULL)
		snprintf(buf, len, "never");
	else
		strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/*
 * Columns a UTF-8 string takes on a terminal: East Asian wide and
 * fullwidth characters take two (folder names are often Japanese).
 */
static size_t
text_width(const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 w = 0;
	uint32_t		 c;

	while (*p != '\0') {
		if (*p < 0x80) {
			c = *p++;
		} else if ((*p & 0xe0) == 0xc0 && p[1] != '\0') {
			c = (uint32_t)(*p & 0x1f) << 6 | (p[1] & 0x3f);
			p += 2;
		} else if ((*p & 0xf0) == 0xe0 && p[1] != '\0' && p[2] != '\0') {
			c = (uint32_t)(*p & 0x0f) << 12 |
			    (uint32_t)(p[1] & 0x3f) << 6 | (p[2] & 0x3f);
			p += 3;
		} else if ((*p & 0xf8) == 0xf0 && p[1] != '\0' && p[2] != '\0' &&
		    p[3] != '\0') {
			c = 0x20000;
			p += 4;
		} else {
			c = '?';
			p++;
		}
		w += (c >= 0x1100 && c <= 0x115f) ||
		    (c >= 0x2e80 && c <= 0xa4cf) ||
		    (c >= 0xac00 && c <= 0xd7a3) ||
		    (c >= 0xf900 && c <= 0xfaff) ||
		    (c >= 0xfe30 && c <= 0xfe4f) ||
		    (c >= 0xff00 && c <= 0xff60) ||
		    (c >= 0xffe0 && c <= 0xffe6) || c >= 0x20000 ? 2 : 1;
	}
	return w;
}

static void
text_row(FILE *fp, const struct report_row *row, const char *name,
    size_t namew)
{
	char	 when[32];
	size_t	 i;

	fputs(name, fp);
	for (i = text_width(name); i < namew; i++)
		fputc(' ', fp);
	for (i = 0; i < C_COUNT; i++)
		fprintf(fp, "  %*" PRIu64, (int)strlen(col_head[i]), row->n[i]);
	iso_time(row->synced, when, sizeof(when));
	fprintf(fp, "  %s\n", when);
}

static void
text_table(FILE *fp, const char *head, const struct report_table *t,
    const struct report_row *total)
{
	size_t	 i, w = text_width(head);

	for (i = 0; i < t->n; i++)
		if (text_width(t->rows[i].name) > w)
			w = text_width(t->rows[i].name);
	if (total != NULL && w < strlen("total"))
		w = strlen("total");
	fprintf(fp, "%-*s", (int)w, head);
	for (i = 0; i < C_COUNT; i++)
		fprintf(fp, "  %s", col_head[i]);
	fprintf(fp, "  last sync\n");
	for (i = 0; i < t->n; i++)
		text_row(fp, &t->rows[i], t->rows[i].name, w);
	if (total != NULL)
		text_row(fp, total, "total", w);
}

static void
report_text(struct report *r, FILE *fp)
{
	if (r->all)
		fprintf(fp, "migration report for all %zu users\n\n",
		    r->users.n);
	else
		fprintf(fp, "migration report for %s\n\n", r->user);
	text_table(fp, "folder", &r->folders, &r->total);
	if (r->all) {
		fputc('\n', fp);
		text_table(fp, "user", &r->users, NULL);
	}
}

static void
json_string(FILE *fp, const char *s)
{
	const unsigned char	*p;

	fputc('"', fp);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(fp, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(fp, "\\u%04x", *p);
		else
			fputc(*p, fp);
	}
	fputc('"', fp);
}

/* The counts and last_sync of a row, inside an object already open. */
static void
json_counts(FILE *fp, const struct report_row *row)
{
	char	 when[32];
	size_t	 i;

	for (i = 0; i < C_COUNT; i++)
		fprintf(fp, "%s\"%s\": %" PRIu64, i ? ", " : "", col_key[i],
		    row->n[i]);
	iso_time(row->synced, when, sizeof(when));
	fprintf(fp, ", \"last_sync\": \"%s\"", when);
}

static void
json_rows(FILE *fp, const char *key, const char *namekey,
    const struct report_table *t)
{
	size_t	 i;

	fprintf(fp, "  \"%s\": [", key);
	for (i = 0; i < t->n; i++) {
		fprintf(fp, "%s\n    {\"%s\": ", i ? "," : "", namekey);
		json_string(fp, t->rows[i].name);
		fputs(", ", fp);
		json_counts(fp, &t->rows[i]);
		fputc('}', fp);
	}
	fprintf(fp, "%s],\n", t->n ? "\n  " : "");
}

static void
report_json(struct report *r, FILE *fp)
{
	fputs("{\n", fp);
	if (r->all)
		json_rows(fp, "users", "user", &r->users);
	else {
		fputs("  \"user\": ", fp);
		json_string(fp, r->user);
		fputs(",\n", fp);
	}
	json_rows(fp, "folders", "name", &r->folders);
	fputs("  \"totals\": {", fp);
	json_counts(fp, &r->total);
	fputs("}\n}\n", fp);
}

static void
html_escape(FILE *fp, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", fp);
			break;
		case '<':
			fputs("&lt;", fp);
			break;
		case '>':
			fputs("&gt;", fp);
			break;
		case '"':
			fputs("&quot;", fp);
			break;
		case '\'':
			fputs("&#39;", fp);
			break;
		default:
			fputc(*s, fp);
		}
	}
}

static const char html_style[] =
    "body{font-family:sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin-bottom:2em}"
    "th,td{padding:.3em .5em;text-align:right;white-space:nowrap}"
    "th{border-bottom:1px solid #888}"
    "td.name,th.name{text-align:left}"
    "tr.total td{border-top:1px solid #888;font-weight:bold}"
    ".bar,.newbar{display:flex;width:12em;height:1.1em;background:#e8e8e8}"
    ".newbar{width:6em}"
    ".paired{background:#2e8b57}"
    ".legacy{background:#e07b00}"
    ".newonly{background:#3a6fd8}"
    ".key span{display:inline-block;width:1em;height:1em;"
    "vertical-align:middle;margin:0 .3em 0 1em}";

/* Width of part in whole, as a CSS percentage. */
static double
pct(uint64_t part, uint64_t whole)
{
	return whole == 0 ? 0.0 : 100.0 * (double)part / (double)whole;
}

/*
 * One bar per folder: migrated (paired) against not yet migrated
 * (legacy-only), so a finished folder is all green.  New-only mail is
 * not part of the migration and gets its own bar, scaled to everything
 * the folder holds.
 */
static void
html_folder(FILE *fp, const struct report_row *row, int bar)
{
	const uint64_t	*n = row->n;
	uint64_t	 legacy = n[C_PAIRED] + n[C_LEGACY_ONLY];
	uint64_t	 all = legacy + n[C_NEW_ONLY];
	char		 when[32];
	size_t		 i;

	fputs("<td class=\"name\">", fp);
	html_escape(fp, row->name);
	fputs("</td>", fp);
	if (bar) {
		fprintf(fp, "<td><div class=\"bar\" title=\"%.0f%% migrated\">"
		    "<span class=\"paired\" style=\"width:%.2f%%\"></span>"
		    "<span class=\"legacy\" style=\"width:%.2f%%\"></span>"
		    "</div></td>", pct(n[C_PAIRED], legacy),
		    pct(n[C_PAIRED], legacy), pct(n[C_LEGACY_ONLY], legacy));
		fprintf(fp, "<td><div class=\"newbar\"><span class=\"newonly\" "
		    "style=\"width:%.2f%%\"></span></div></td>",
		    pct(n[C_NEW_ONLY], all));
	} else
		fputs("<td></td><td></td>", fp);
	for (i = 0; i < C_COUNT; i++)
		fprintf(fp, "<td>%" PRIu64 "</td>", n[i]);
	iso_time(row->synced, when, sizeof(when));
	fprintf(fp, "<td>%s</td>", when);
}

static void
html_table(FILE *fp, const char *head, const struct report_table *t,
    const struct report_row *total, int bars)
{
	size_t	 i;

	fprintf(fp, "<table>\n<tr><th class=\"name\">%s</th>"
	    "<th>migrated</th><th>new only</th>", head);
	for (i = 0; i < C_COUNT; i++)
		fprintf(fp, "<th>%s</th>", col_head[i]);
	fputs("<th>last sync</th></tr>\n", fp);
	for (i = 0; i < t->n; i++) {
		fputs("<tr>", fp);
		html_folder(fp, &t->rows[i], bars);
		fputs("</tr>\n", fp);
	}
	if (total != NULL) {
		struct report_row	 row = *total;

		row.name = "total";
		fputs("<tr class=\"total\">", fp);
		html_folder(fp, &row, 0);
		fputs("</tr>\n", fp);
	}
	fputs("</table>\n", fp);
}

static void
report_html(struct report *r, FILE *fp)
{
	const char	*who = r->all ? "all users" : r->user;

	fputs("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
	    "<title>imapmerge — migration report for ", fp);
	html_escape(fp, who);
	fprintf(fp, "</title>\n<style>%s</style>\n</head>\n<body>\n"
	    "<h1>Migration report for ", html_style);
	html_escape(fp, who);
	fputs("</h1>\n<p class=\"key\">"
	    "<span class=\"paired\"></span>migrated (on both servers)"
	    "<span class=\"legacy\"></span>not yet migrated (legacy only)"
	    "<span class=\"newonly\"></span>new server only</p>\n", fp);
	html_table(fp, "folder", &r->folders, &r->total, 1);
	if (r->all) {
		fputs("<h2>Users</h2>\n", fp);
		html_table(fp, "user", &r->users, NULL, 0);
	}
	fputs("</body>\n</html>\n", fp);
}

int
report_write(struct report *r, enum report_format format, FILE *fp)
{
	if (!r->all && r->user == NULL)
		return -1;
	if (r->folders.n > 1)
		qsort(r->folders.rows, r->folders.n, sizeof(*r->folders.rows),
		    folder_cmp);
	switch (format) {
	case REPORT_TEXT:
		report_text(r, fp);
		break;
	case REPORT_JSON:
		report_json(r, fp);
		break;
	case REPORT_HTML:
		report_html(r, fp);
		break;
	}
	return fflush(fp) == 0 && !ferror(fp) ? 0 : -1;
}

static void	report_usage(void) __attribute__((noreturn));

static void
report_usage(void)
{
	fprintf(stderr, "usage: imapmerge report [-f file] [--json] "
	    "[--html file] user | --all\n");
	exit(1);
}

static struct config *
report_config(const char *path)
{
	struct config_errors	 errs;
	struct config		*conf;
	size_t			 i;

	/* The report needs state-dir only: no listener, key or server. */
	conf = config_load(path, CONFIG_NO_SYSTEM_CHECKS, &errs);
	for (i = 0; i < errs.count; i++)
		fprintf(stderr, "%s\n", errs.msg[i] != NULL ? errs.msg[i] :
		    "out of memory");
	config_errors_clear(&errs);
	return conf;
}

static int
report_html_file(struct report *r, const char *html)
{
	FILE	*fp;
	int	 rc;

	if ((fp = fopen(html, "w")) == NULL) {
		fprintf(stderr, "imapmerge: %s: %s\n", html, strerror(errno));
		return -1;
	}
	rc = report_write(r, REPORT_HTML, fp);
	if (fclose(fp) != 0 || rc == -1) {
		fprintf(stderr, "imapmerge: %s: write error\n", html);
		return -1;
	}
	return 0;
}

/* Text or JSON on stdout; with --html the page goes to its file too. */
static int
report_run(struct report *r, const struct config *conf, const char *user,
    enum report_format format, const char *html)
{
	char	 err[512];
	int	 rc;

	rc = user != NULL ? report_add_user(r, conf->state_dir, user, err,
	    sizeof(err)) : report_add_all(r, conf->state_dir, err, sizeof(err));
	if (rc == -1) {
		fprintf(stderr, "imapmerge: %s\n", err);
		return 1;
	}
	if (html != NULL && report_html_file(r, html) == -1)
		return 1;
	if (report_write(r, format, stdout) == -1) {
		fprintf(stderr, "imapmerge: stdout: write error\n");
		return 1;
	}
	return 0;
}

int
report_main(int argc, char *argv[])
{
	static const struct option	 longopts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "html", required_argument, NULL, 'H' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 }
	};
	enum report_format	 format = REPORT_TEXT;
	const char		*path = CONFIG_DEFAULT_PATH, *html = NULL;
	struct config		*conf;
	struct report		*r;
	int			 ch, all = 0, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "f:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			all = 1;
			break;
		case 'f':
			path = optarg;
			break;
		case 'H':
			html = optarg;
			break;
		case 'j':
			format = REPORT_JSON;
			break;
		default:
			report_usage();
		}
	}
	if (argc - optind != (all ? 0 : 1))
		report_usage();
	if ((conf = report_config(path)) == NULL)
		return 1;
	if ((r = report_new(all)) == NULL) {
		fprintf(stderr, "imapmerge: out of memory\n");
		config_free(&conf);
		return 1;
	}
	rc = report_run(r, conf, all ? NULL : argv[optind], format, html);
	report_free(&r);
	config_free(&conf);
	return rc;
}
