/*
 * Per-user SQLite state (see state.h for why per user).
 *
 * The database runs in WAL mode with synchronous=NORMAL: a crash may lose
 * the last transactions but never corrupts the file, and every change that
 * decides what a client may see (a vuid handed out, a tombstone) is
 * committed before the client is answered.  The schema is versioned with
 * PRAGMA user_version and upgraded step by step at open.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "proxy/merge/state.h"
#include "proxy/merge/state_impl.h"

/* Each entry upgrades the schema from version i to i + 1. */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE folder_follow ("
	"  legacy TEXT PRIMARY KEY,"
	"  unified TEXT);",
	/* 1 -> 2: merged mailboxes (view.c, state_mbox.c) */
	"CREATE TABLE ufolder ("
	"  id INTEGER PRIMARY KEY,"
	"  path TEXT NOT NULL UNIQUE,"
	"  uidvalidity INTEGER NOT NULL,"
	"  uidnext INTEGER NOT NULL,"
	"  synced INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE bfolder ("
	"  ufolder INTEGER NOT NULL REFERENCES ufolder(id) ON DELETE CASCADE,"
	"  side INTEGER NOT NULL,"
	"  uidvalidity INTEGER NOT NULL,"
	"  uidnext INTEGER NOT NULL,"
	"  highestmodseq INTEGER NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (ufolder, side)) WITHOUT ROWID;"
	"CREATE TABLE vmsg ("
	"  ufolder INTEGER NOT NULL REFERENCES ufolder(id) ON DELETE CASCADE,"
	"  vuid INTEGER NOT NULL,"
	"  luid INTEGER NOT NULL DEFAULT 0,"
	"  nuid INTEGER NOT NULL DEFAULT 0,"
	"  lflags INTEGER NOT NULL DEFAULT 0,"
	"  nflags INTEGER NOT NULL DEFAULT 0,"
	"  keywords TEXT,"
	"  idate INTEGER NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  lkey TEXT, lkeyh INTEGER NOT NULL DEFAULT 0,"
	"  nkey TEXT, nkeyh INTEGER NOT NULL DEFAULT 0,"
	"  nakey TEXT, nakeyh INTEGER NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (ufolder, vuid)) WITHOUT ROWID;"
	"CREATE TABLE tombstone ("
	"  ufolder INTEGER NOT NULL REFERENCES ufolder(id) ON DELETE CASCADE,"
	"  keyh INTEGER NOT NULL,"
	"  key TEXT,"
	"  at INTEGER NOT NULL,"
	"  PRIMARY KEY (ufolder, keyh)) WITHOUT ROWID;",
	/* 2 -> 3: Message-IDs relayed by the submission service */
	"CREATE TABLE sent ("
	"  msgid TEXT PRIMARY KEY,"
	"  at INTEGER NOT NULL);",
	/* 3 -> 4: moves in flight; flags the user set that a copy still
	 * has to get (legacy-writes) */
	"CREATE TABLE moving ("
	"  src TEXT NOT NULL,"
	"  vuid INTEGER NOT NULL,"
	"  dst TEXT NOT NULL,"
	"  keyh INTEGER NOT NULL,"
	"  at INTEGER NOT NULL,"
	"  PRIMARY KEY (src, vuid)) WITHOUT ROWID;"
	"CREATE INDEX moving_dst ON moving (dst);"
	"ALTER TABLE vmsg ADD COLUMN wflags INTEGER;",
	/* 4 -> 5: a tombstone per virtual message, with the copies it hides
	 * (the key-only tombstones above keep hiding what they hid);
	 * subscriptions said through imapmerge, by unified path; folder
	 * names deleted through imapmerge on the new server, so that the
	 * copier creating them again brings nothing back */
	"CREATE TABLE tombstone_vmsg ("
	"  ufolder INTEGER NOT NULL REFERENCES ufolder(id) ON DELETE CASCADE,"
	"  vuid INTEGER NOT NULL,"
	"  lkeyh INTEGER NOT NULL DEFAULT 0,"
	"  nkeyh INTEGER NOT NULL DEFAULT 0,"
	"  nakeyh INTEGER NOT NULL DEFAULT 0,"
	"  luid INTEGER NOT NULL DEFAULT 0,"
	"  nuid INTEGER NOT NULL DEFAULT 0,"
	"  at INTEGER NOT NULL,"
	"  PRIMARY KEY (ufolder, vuid)) WITHOUT ROWID;"
	"CREATE TABLE subscription ("
	"  path TEXT PRIMARY KEY,"
	"  subscribed INTEGER NOT NULL);"
	"CREATE TABLE folder_deleted ("
	"  name TEXT PRIMARY KEY,"
	"  at INTEGER NOT NULL);",
};

#define SCHEMA_VERSION	(int)(sizeof(migrations) / sizeof(migrations[0]))

char *
state_file_name(const char *user)
{
	static const char	 hex[] = "0123456789abcdef";
	const unsigned char	*p;
	char			*out, *o;

	/* Letters, digits, '.', '-', '_', '@' kept; the rest %XX. */
	if ((out = malloc(strlen(user) * 3 + sizeof(".db"))) == NULL)
		return NULL;
	o = out;
	for (p = (const unsigned char *)user; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
		    *p == '@' || (*p == '.' && p != (const unsigned char *)user))
			*o++ = *p;
		else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	strcpy(o, ".db");
	return out;
}

static int
state_exec(struct state *st, const char *sql)
{
	return sqlite3_exec(st->db, sql, NULL, NULL, NULL) == SQLITE_OK ?
	    0 : -1;
}

static int
state_migrate(struct state *st, char *err, size_t errlen)
{
	sqlite3_stmt	*s;
	int		 v;

	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s,
	    NULL) != SQLITE_OK)
		goto fail;
	v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
	sqlite3_finalize(s);
	if (v < 0 || v > SCHEMA_VERSION) {
		snprintf(err, errlen, "schema version %d is newer than this "
		    "imapmerge (%d)", v, SCHEMA_VERSION);
		return -1;
	}
	for (; v < SCHEMA_VERSION; v++) {
		char	 pragma[64];

		snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%d",
		    v + 1);
		if (state_exec(st, "BEGIN IMMEDIATE") == -1)
			goto fail;
		if (state_exec(st, migrations[v]) == -1 ||
		    state_exec(st, pragma) == -1 ||
		    state_exec(st, "COMMIT") == -1) {
			snprintf(err, errlen, "schema upgrade to %d: %s",
			    v + 1, sqlite3_errmsg(st->db));
			state_exec(st, "ROLLBACK");
			return -1;
		}
	}
	return 0;
 fail:
	snprintf(err, errlen, "%s", sqlite3_errmsg(st->db));
	return -1;
}

static int
state_prepare(struct state *st)
{
	static const struct {
		size_t		 off;
		const char	*sql;
	} stmts[] = {
		{ offsetof(struct state, follow_set), "INSERT OR REPLACE INTO "
		  "folder_follow (legacy, unified) VALUES (?, ?)" },
		{ offsetof(struct state, follow_each), "SELECT legacy, unified "
		  "FROM folder_follow ORDER BY legacy" },
		{ offsetof(struct state, meta_set), "INSERT OR REPLACE INTO "
		  "meta (key, value) VALUES (?, ?)" },
		{ offsetof(struct state, meta_get), "SELECT value FROM meta "
		  "WHERE key = ?" },
	};
	size_t	 i;

	for (i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
		sqlite3_stmt **sp = (sqlite3_stmt **)((char *)st +
		    stmts[i].off);

		if (sqlite3_prepare_v3(st->db, stmts[i].sql, -1,
		    SQLITE_PREPARE_PERSISTENT, sp, NULL) != SQLITE_OK)
			return -1;
	}
	return 0;
}

static int
state_mkdir(const char *dir, char *err, size_t errlen)
{
	struct stat	 sb;

	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "mkdir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (stat(dir, &sb) == -1 || !S_ISDIR(sb.st_mode)) {
		snprintf(err, errlen, "%s: not a directory", dir);
		return -1;
	}
	if (sb.st_mode & 077) {
		snprintf(err, errlen, "%s: mode %03o, must not be accessible "
		    "by group or others", dir, (unsigned)(sb.st_mode & 0777));
		return -1;
	}
	return 0;
}

static int
state_open_file(struct state *st, const char *path, char *err, size_t errlen)
{
	int	 fd;

	/* Create the file 0600 ourselves: SQLite would follow the umask. */
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	close(fd);
	if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, st->db ?
		    sqlite3_errmsg(st->db) : "cannot open");
		return -1;
	}
	sqlite3_busy_timeout(st->db, 5000);
	if (state_exec(st, "PRAGMA journal_mode=WAL") == -1 ||
	    state_exec(st, "PRAGMA synchronous=NORMAL") == -1 ||
	    /* 1 MB of page cache, not 2: a view holds what it needs in
	     * memory, and rows are written in vuid order anyway. */
	    state_exec(st, "PRAGMA cache_size=-1024") == -1 ||
	    state_exec(st, "PRAGMA foreign_keys=ON") == -1) {
		snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(st->db));
		return -1;
	}
	return 0;
}

struct state *
state_open(const char *dir, const char *user, char *err, size_t errlen)
{
	struct state	*st;
	char		*name, *path = NULL;

	if (state_mkdir(dir, err, errlen) == -1)
		return NULL;
	if ((st = calloc(1, sizeof(*st))) == NULL ||
	    (name = state_file_name(user)) == NULL) {
		free(st);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (asprintf(&path, "%s/%s", dir, name) == -1)
		path = NULL;
	free(name);
	if (path == NULL || state_open_file(st, path, err, errlen) == -1 ||
	    state_migrate(st, err, errlen) == -1) {
		free(path);
		state_close(&st);
		return NULL;
	}
	free(path);
	if (state_prepare(st) == -1) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(st->db));
		state_close(&st);
		return NULL;
	}
	return st;
}

void
state_close(struct state **stp)
{
	struct state	*st = *stp;

	if (st == NULL)
		return;
	sqlite3_finalize(st->follow_set);
	sqlite3_finalize(st->follow_each);
	sqlite3_finalize(st->meta_set);
	sqlite3_finalize(st->meta_get);
	state_mbox_finalize(st);
	if (st->db != NULL)
		sqlite3_close(st->db);
	free(st);
	*stp = NULL;
}

int
state_schema_version(struct state *st)
{
	return SCHEMA_VERSION;
}

/* Runs a prepared statement that returns no rows, then resets it. */
static int
state_step_done(sqlite3_stmt *s)
{
	int	 rc = sqlite3_step(s);

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
state_folder_follow(struct state *st, const char *legacy, const char *unified)
{
	sqlite3_bind_text(st->follow_set, 1, legacy, -1, SQLITE_STATIC);
	if (unified != NULL)
		sqlite3_bind_text(st->follow_set, 2, unified, -1,
		    SQLITE_STATIC);
	else
		sqlite3_bind_null(st->follow_set, 2);
	return state_step_done(st->follow_set);
}

int
state_folder_each(struct state *st, state_folder_cb *cb, void *arg)
{
	sqlite3_stmt	*s = st->follow_each;
	int		 rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		cb((const char *)sqlite3_column_text(s, 0),
		    (const char *)sqlite3_column_text(s, 1), arg);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
state_meta_set(struct state *st, const char *key, const char *value)
{
	sqlite3_bind_text(st->meta_set, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st->meta_set, 2, value, -1, SQLITE_STATIC);
	return state_step_done(st->meta_set);
}

char *
state_meta_get(struct state *st, const char *key)
{
	sqlite3_stmt	*s = st->meta_get;
	char		*value = NULL;

	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		value = strdup((const char *)sqlite3_column_text(s, 0));
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return value;
}

int
state_sent_record(struct state *st, const char *msgid, int64_t when)
{
	sqlite3_stmt	*s;
	int		 rc;

	if (sqlite3_prepare_v2(st->db, "INSERT OR REPLACE INTO sent (msgid, "
	    "at) VALUES (?1, ?2)", -1, &s, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(s, 1, msgid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, when);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
state_sent_at(struct state *st, const char *msgid, int64_t *when)
{
	sqlite3_stmt	*s;
	int		 rc;

	if (sqlite3_prepare_v2(st->db, "SELECT at FROM sent WHERE msgid = ?1",
	    -1, &s, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(s, 1, msgid, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(s)) == SQLITE_ROW)
		*when = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int
state_begin(struct state *st)
{
	if (st->depth++ > 0)
		return 0;
	st->failed = 0;
	if (state_exec(st, "BEGIN IMMEDIATE") == -1) {
		st->depth = 0;
		return -1;
	}
	return 0;
}

/* The outermost transaction was rolled back: those waiting for it. */
static void
state_rolled_back(struct state *st)
{
	int	 i, n = st->nafter;

	st->nafter = 0;
	for (i = 0; i < n; i++)
		st->after[i].fn(st->after[i].arg);
}

int
state_commit(struct state *st)
{
	if (st->depth == 0 || --st->depth > 0)
		return st->failed ? -1 : 0;
	if (st->failed) {
		state_exec(st, "ROLLBACK");
		state_rolled_back(st);
		return -1;
	}
	if (state_exec(st, "COMMIT") == -1) {
		state_exec(st, "ROLLBACK");
		state_rolled_back(st);
		return -1;
	}
	st->nafter = 0;
	return 0;
}

void
state_rollback(struct state *st)
{
	if (st->depth == 0)
		return;
	st->failed = 1;
	if (--st->depth == 0) {
		state_exec(st, "ROLLBACK");
		state_rolled_back(st);
	}
}

int
state_after_rollback(struct state *st, void (*fn)(void *), void *arg)
{
	int	 i;

	if (st->depth == 0) {
		fn(arg);
		return 0;
	}
	for (i = 0; i < st->nafter; i++)
		if (st->after[i].fn == fn && st->after[i].arg == arg)
			return 0;
	if (st->nafter == STATE_AFTER_MAX)
		return -1;
	st->after[st->nafter].fn = fn;
	st->after[st->nafter++].arg = arg;
	return 0;
}
