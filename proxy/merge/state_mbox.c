/*
 * The merged-mailbox part of the state store: unified folders, what each
 * backend folder looked like at the last sync, virtual messages and
 * tombstones (schema version 2, see state.c).
 *
 * Statements are prepared on first use and kept: a sync of 100,000
 * messages runs the same INSERT 100,000 times inside one transaction.
 * Key hashes are unsigned 64-bit values stored bit for bit in SQLite's
 * signed INTEGER.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/merge/state.h"
#include "proxy/merge/state_impl.h"

enum {
	S_FOLDER_GET,
	S_FOLDER_BY_ID,
	S_FOLDER_ADD,
	S_SIDE_GET,
	S_SIDE_SET,
	S_UIDNEXT,
	S_SYNCED,
	S_VMSG_EACH,
	S_VMSG_INSERT,
	S_VMSG_LSIDE,
	S_VMSG_NSIDE,
	S_VMSG_FLAGS,
	S_VMSG_DELETE,
	S_TOMB_EACH,
	S_TOMB_DEL,
	S_GRAVE_ADD,
	S_GRAVE_UID,
	S_GRAVE_RESET,
	S_GRAVE_DEL,
	S_GRAVE_EACH,
	S_SUB_SET,
	S_SUB_EACH,
	S_DELETED_SET,
	S_DELETED_CLEAR,
	S_DELETED_EACH,
	S_KEYS,
	S_WANT,
	S_MOVE_ADD,
	S_MOVE_DEL,
	S_MOVE_EACH,
	S_COUNT
};
_Static_assert(S_COUNT <= STATE_MBOX_STMTS, "statement cache");

static const char *const sql[S_COUNT] = {
	[S_FOLDER_GET] = "SELECT id, uidvalidity, uidnext, synced FROM ufolder "
	    "WHERE path = ?1",
	[S_FOLDER_BY_ID] = "SELECT id, uidvalidity, uidnext, synced FROM "
	    "ufolder WHERE id = ?1",
	[S_FOLDER_ADD] = "INSERT INTO ufolder (path, uidvalidity, uidnext) "
	    "VALUES (?1, ?2, 1)",
	[S_SIDE_GET] = "SELECT side, uidvalidity, uidnext, highestmodseq "
	    "FROM bfolder WHERE ufolder = ?1",
	[S_SIDE_SET] = "INSERT OR REPLACE INTO bfolder (ufolder, side, "
	    "uidvalidity, uidnext, highestmodseq) VALUES (?1, ?2, ?3, ?4, ?5)",
	[S_UIDNEXT] = "UPDATE ufolder SET uidnext = ?2 WHERE id = ?1",
	[S_SYNCED] = "UPDATE ufolder SET synced = ?2 WHERE id = ?1",
	[S_VMSG_EACH] = "SELECT vuid, luid, nuid, lflags, nflags, keywords, "
	    "idate, size, lkeyh, nkeyh, nakeyh, wflags FROM vmsg "
	    "WHERE ufolder = ?1 ORDER BY vuid",
	[S_VMSG_INSERT] = "INSERT OR REPLACE INTO vmsg (ufolder, vuid, luid, "
	    "nuid, lflags, nflags, keywords, idate, size, lkey, lkeyh, nkey, "
	    "nkeyh, nakey, nakeyh) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
	    "?10, ?11, ?12, ?13, ?14, ?15)",
	[S_VMSG_LSIDE] = "UPDATE vmsg SET luid = ?3, lflags = ?4, "
	    "lkey = coalesce(?5, lkey), lkeyh = ?6 "
	    "WHERE ufolder = ?1 AND vuid = ?2",
	[S_VMSG_NSIDE] = "UPDATE vmsg SET nuid = ?3, nflags = ?4, "
	    "nkey = coalesce(?5, nkey), nkeyh = ?6, "
	    "nakey = coalesce(?7, nakey), nakeyh = ?8 "
	    "WHERE ufolder = ?1 AND vuid = ?2",
	[S_VMSG_FLAGS] = "UPDATE vmsg SET "
	    "lflags = CASE WHEN ?3 = 0 THEN ?4 ELSE lflags END, "
	    "nflags = CASE WHEN ?3 = 1 THEN ?4 ELSE nflags END, "
	    "keywords = CASE WHEN ?5 IS NULL THEN keywords "
	    "WHEN ?5 = '' THEN NULL ELSE ?5 END "
	    "WHERE ufolder = ?1 AND vuid = ?2",
	[S_VMSG_DELETE] = "DELETE FROM vmsg WHERE ufolder = ?1 AND vuid = ?2",
	[S_TOMB_EACH] = "SELECT keyh FROM tombstone WHERE ufolder = ?1",
	[S_TOMB_DEL] = "DELETE FROM tombstone WHERE ufolder = ?1 AND keyh = ?2",
	[S_GRAVE_ADD] = "INSERT OR IGNORE INTO tombstone_vmsg (ufolder, vuid, "
	    "lkeyh, nkeyh, nakeyh, luid, nuid, at) VALUES (?1, ?2, ?3, ?4, ?5, "
	    "?6, ?7, ?8)",
	[S_GRAVE_UID] = "UPDATE tombstone_vmsg SET "
	    "luid = CASE WHEN ?3 = 0 THEN ?4 ELSE luid END, "
	    "nuid = CASE WHEN ?3 = 1 THEN ?4 ELSE nuid END "
	    "WHERE ufolder = ?1 AND vuid = ?2",
	[S_GRAVE_RESET] = "UPDATE tombstone_vmsg SET "
	    "luid = CASE WHEN ?2 = 0 THEN 0 ELSE luid END, "
	    "nuid = CASE WHEN ?2 = 1 THEN 0 ELSE nuid END WHERE ufolder = ?1",
	[S_GRAVE_DEL] = "DELETE FROM tombstone_vmsg WHERE ufolder = ?1 AND "
	    "vuid = ?2",
	[S_GRAVE_EACH] = "SELECT vuid, lkeyh, nkeyh, nakeyh, luid, nuid FROM "
	    "tombstone_vmsg WHERE ufolder = ?1",
	[S_SUB_SET] = "INSERT OR REPLACE INTO subscription (path, subscribed) "
	    "VALUES (?1, ?2)",
	[S_SUB_EACH] = "SELECT path, subscribed FROM subscription",
	[S_DELETED_SET] = "INSERT OR REPLACE INTO folder_deleted (name, at) "
	    "VALUES (?1, ?2)",
	[S_DELETED_CLEAR] = "DELETE FROM folder_deleted WHERE name = ?1",
	[S_DELETED_EACH] = "SELECT name FROM folder_deleted",
	[S_KEYS] = "SELECT CASE WHEN ?3 = 0 THEN lkey ELSE nkey END, "
	    "CASE WHEN ?3 = 0 THEN NULL ELSE nakey END FROM vmsg "
	    "WHERE ufolder = ?1 AND vuid = ?2",
	[S_WANT] = "UPDATE vmsg SET wflags = ?3 WHERE ufolder = ?1 AND vuid = ?2",
	[S_MOVE_ADD] = "INSERT OR REPLACE INTO moving (src, vuid, dst, keyh, at) "
	    "VALUES (?1, ?2, ?3, ?4, ?5)",
	[S_MOVE_DEL] = "DELETE FROM moving WHERE src = ?1 AND vuid = ?2",
	[S_MOVE_EACH] = "SELECT src, vuid, keyh, at FROM moving WHERE dst = ?1",
};

void
state_mbox_finalize(struct state *st)
{
	size_t	 i;

	for (i = 0; i < STATE_MBOX_STMTS; i++) {
		sqlite3_finalize(st->mbox[i]);
		st->mbox[i] = NULL;
	}
}

/* The statement, reset and unbound, ready for binding. */
static sqlite3_stmt *
stmt(struct state *st, int which)
{
	if (st->mbox[which] == NULL && sqlite3_prepare_v3(st->db, sql[which],
	    -1, SQLITE_PREPARE_PERSISTENT, &st->mbox[which], NULL) !=
	    SQLITE_OK)
		return NULL;
	return st->mbox[which];
}

static int
done(sqlite3_stmt *s)
{
	int	 rc;

	if (s == NULL)
		return -1;
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static void
bind_text(sqlite3_stmt *s, int i, const char *text)
{
	if (text != NULL)
		sqlite3_bind_text(s, i, text, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, i);
}

static void
side_rows(struct state *st, struct state_folder *f)
{
	sqlite3_stmt	*s = stmt(st, S_SIDE_GET);
	int		 side;

	if (s == NULL)
		return;
	sqlite3_bind_int64(s, 1, f->id);
	while (sqlite3_step(s) == SQLITE_ROW) {
		side = sqlite3_column_int(s, 0);
		if (side < 0 || side > 1)
			continue;
		f->side_uidvalidity[side] = (uint32_t)sqlite3_column_int64(s, 1);
		f->side_uidnext[side] = (uint32_t)sqlite3_column_int64(s, 2);
		f->side_modseq[side] = (uint64_t)sqlite3_column_int64(s, 3);
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

static int
folder_lookup(struct state *st, const char *path, struct state_folder *f)
{
	sqlite3_stmt	*s = stmt(st, S_FOLDER_GET);
	int		 rc;

	if (s == NULL)
		return -1;
	bind_text(s, 1, path);
	if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		f->id = sqlite3_column_int64(s, 0);
		f->uidvalidity = (uint32_t)sqlite3_column_int64(s, 1);
		f->uidnext = (uint32_t)sqlite3_column_int64(s, 2);
		f->synced = sqlite3_column_int64(s, 3);
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int
state_folder_get(struct state *st, const char *path, struct state_folder *f)
{
	sqlite3_stmt	*s;
	int		 rc;

	memset(f, 0, sizeof(*f));
	if ((rc = folder_lookup(st, path, f)) == -1)
		return -1;
	if (rc == 0) {
		/* The clock makes a folder deleted and created again get a
		 * UIDVALIDITY its clients have not seen. */
		if ((s = stmt(st, S_FOLDER_ADD)) == NULL)
			return -1;
		bind_text(s, 1, path);
		sqlite3_bind_int64(s, 2, (sqlite3_int64)(uint32_t)time(NULL));
		if (done(s) == -1 || folder_lookup(st, path, f) != 1)
			return -1;
	}
	side_rows(st, f);
	return 0;
}

int
state_folder_read(struct state *st, int64_t id, struct state_folder *f)
{
	sqlite3_stmt	*s = stmt(st, S_FOLDER_BY_ID);
	int		 rc;

	memset(f, 0, sizeof(*f));
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		f->id = sqlite3_column_int64(s, 0);
		f->uidvalidity = (uint32_t)sqlite3_column_int64(s, 1);
		f->uidnext = (uint32_t)sqlite3_column_int64(s, 2);
		f->synced = sqlite3_column_int64(s, 3);
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_ROW)
		return -1;
	side_rows(st, f);
	return 0;
}

int
state_folder_uidnext(struct state *st, int64_t id, uint32_t uidnext)
{
	sqlite3_stmt	*s = stmt(st, S_UIDNEXT);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, uidnext);
	return done(s);
}

int
state_folder_synced(struct state *st, int64_t id, int64_t when)
{
	sqlite3_stmt	*s = stmt(st, S_SYNCED);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, when);
	return done(s);
}

int
state_folder_side(struct state *st, int64_t id, int side,
    uint32_t uidvalidity, uint32_t uidnext, uint64_t modseq)
{
	sqlite3_stmt	*s = stmt(st, S_SIDE_SET);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int(s, 2, side);
	sqlite3_bind_int64(s, 3, uidvalidity);
	sqlite3_bind_int64(s, 4, uidnext);
	sqlite3_bind_int64(s, 5, (sqlite3_int64)modseq);
	return done(s);
}

static int
exec2(struct state *st, const char *q, const char *a, const char *b)
{
	sqlite3_stmt	*s;
	int		 rc;

	if (sqlite3_prepare_v2(st->db, q, -1, &s, NULL) != SQLITE_OK)
		return -1;
	bind_text(s, 1, a);
	if (b != NULL)
		bind_text(s, 2, b);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Children move with their parent: "A" -> "B" also takes "A/x" to "B/x". */
int
state_folder_rename(struct state *st, const char *from, const char *to)
{
	if (exec2(st, "DELETE FROM ufolder WHERE path = ?2", NULL, to) == -1)
		return -1;
	return exec2(st, "UPDATE ufolder SET path = ?2 || substr(path, "
	    "length(?1) + 1) WHERE path = ?1 OR substr(path, 1, length(?1) "
	    "+ 1) = ?1 || '/'", from, to);
}

int
state_folder_drop(struct state *st, const char *path)
{
	return exec2(st, "DELETE FROM ufolder WHERE path = ?1", path, NULL);
}

int
state_vmsg_each(struct state *st, int64_t id, state_vmsg_cb *cb, void *arg)
{
	sqlite3_stmt		*s = stmt(st, S_VMSG_EACH);
	struct state_vmsg	 r;
	int			 rc;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&r, 0, sizeof(r));
		r.vuid = (uint32_t)sqlite3_column_int64(s, 0);
		r.uid[0] = (uint32_t)sqlite3_column_int64(s, 1);
		r.uid[1] = (uint32_t)sqlite3_column_int64(s, 2);
		r.flags[0] = (uint8_t)sqlite3_column_int(s, 3);
		r.flags[1] = (uint8_t)sqlite3_column_int(s, 4);
		r.keywords = (const char *)sqlite3_column_text(s, 5);
		r.idate = (uint32_t)sqlite3_column_int64(s, 6);
		r.size = (uint32_t)sqlite3_column_int64(s, 7);
		r.lkeyh = (uint64_t)sqlite3_column_int64(s, 8);
		r.nkeyh = (uint64_t)sqlite3_column_int64(s, 9);
		r.nakeyh = (uint64_t)sqlite3_column_int64(s, 10);
		r.want = sqlite3_column_type(s, 11) == SQLITE_NULL ? -1 :
		    sqlite3_column_int(s, 11);
		if (cb(&r, arg) == -1) {
			rc = SQLITE_ABORT;
			break;
		}
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
state_vmsg_insert(struct state *st, int64_t id, const struct state_vmsg *r)
{
	sqlite3_stmt	*s = stmt(st, S_VMSG_INSERT);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, r->vuid);
	sqlite3_bind_int64(s, 3, r->uid[0]);
	sqlite3_bind_int64(s, 4, r->uid[1]);
	sqlite3_bind_int(s, 5, r->flags[0]);
	sqlite3_bind_int(s, 6, r->flags[1]);
	bind_text(s, 7, r->keywords != NULL && *r->keywords != '\0' ?
	    r->keywords : NULL);
	sqlite3_bind_int64(s, 8, r->idate);
	sqlite3_bind_int64(s, 9, r->size);
	bind_text(s, 10, r->lkey);
	sqlite3_bind_int64(s, 11, (sqlite3_int64)r->lkeyh);
	bind_text(s, 12, r->nkey);
	sqlite3_bind_int64(s, 13, (sqlite3_int64)r->nkeyh);
	bind_text(s, 14, r->nakey);
	sqlite3_bind_int64(s, 15, (sqlite3_int64)r->nakeyh);
	return done(s);
}

int
state_vmsg_side(struct state *st, int64_t id, uint32_t vuid, int side,
    uint32_t uid, uint8_t flags, const char *key, uint64_t keyh,
    const char *akey, uint64_t akeyh)
{
	sqlite3_stmt	*s = stmt(st, side == 0 ? S_VMSG_LSIDE : S_VMSG_NSIDE);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, vuid);
	sqlite3_bind_int64(s, 3, uid);
	sqlite3_bind_int(s, 4, flags);
	bind_text(s, 5, key);
	sqlite3_bind_int64(s, 6, (sqlite3_int64)keyh);
	if (side != 0) {
		bind_text(s, 7, akey);
		sqlite3_bind_int64(s, 8, (sqlite3_int64)akeyh);
	}
	return done(s);
}

int
state_vmsg_flags(struct state *st, int64_t id, uint32_t vuid, int side,
    uint8_t flags, const char *keywords)
{
	sqlite3_stmt	*s = stmt(st, S_VMSG_FLAGS);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, vuid);
	sqlite3_bind_int(s, 3, side);
	sqlite3_bind_int(s, 4, flags);
	bind_text(s, 5, keywords);
	return done(s);
}

int
state_vmsg_delete(struct state *st, int64_t id, uint32_t vuid)
{
	sqlite3_stmt	*s = stmt(st, S_VMSG_DELETE);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, vuid);
	return done(s);
}

int
state_vmsg_side_reset(struct state *st, int64_t id, int side)
{
	sqlite3_stmt	*s;
	int		 rc;

	if (sqlite3_prepare_v2(st->db, side == 0 ?
	    "UPDATE vmsg SET luid = 0 WHERE ufolder = ?1" :
	    "UPDATE vmsg SET nuid = 0 WHERE ufolder = ?1", -1, &s, NULL) !=
	    SQLITE_OK)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
state_tomb_del(struct state *st, int64_t id, uint64_t keyh)
{
	sqlite3_stmt	*s = stmt(st, S_TOMB_DEL);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)keyh);
	return done(s);
}

int
state_grave_add(struct state *st, int64_t id, const struct state_grave *g)
{
	sqlite3_stmt	*s = stmt(st, S_GRAVE_ADD);
	int		 i;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, g->vuid);
	for (i = 0; i < 3; i++)
		sqlite3_bind_int64(s, 3 + i, (sqlite3_int64)g->keyh[i]);
	sqlite3_bind_int64(s, 6, g->uid[0]);
	sqlite3_bind_int64(s, 7, g->uid[1]);
	sqlite3_bind_int64(s, 8, (sqlite3_int64)time(NULL));
	return done(s);
}

int
state_grave_uid(struct state *st, int64_t id, uint32_t vuid, int side,
    uint32_t uid)
{
	sqlite3_stmt	*s = stmt(st, S_GRAVE_UID);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, vuid);
	sqlite3_bind_int(s, 3, side);
	sqlite3_bind_int64(s, 4, uid);
	return done(s);
}

int
state_grave_reset(struct state *st, int64_t id, int side)
{
	sqlite3_stmt	*s = stmt(st, S_GRAVE_RESET);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int(s, 2, side);
	return done(s);
}

int
state_grave_del(struct state *st, int64_t id, uint32_t vuid)
{
	sqlite3_stmt	*s = stmt(st, S_GRAVE_DEL);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, vuid);
	return done(s);
}

int
state_grave_each(struct state *st, int64_t id, state_grave_cb *cb, void *arg)
{
	sqlite3_stmt		*s = stmt(st, S_GRAVE_EACH);
	struct state_grave	 g;
	int			 rc, i;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		g.vuid = (uint32_t)sqlite3_column_int64(s, 0);
		for (i = 0; i < 3; i++)
			g.keyh[i] = (uint64_t)sqlite3_column_int64(s, 1 + i);
		g.uid[0] = (uint32_t)sqlite3_column_int64(s, 4);
		g.uid[1] = (uint32_t)sqlite3_column_int64(s, 5);
		if (cb(&g, arg) == -1) {
			rc = SQLITE_ABORT;
			break;
		}
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
state_sub_set(struct state *st, const char *path, bool on)
{
	sqlite3_stmt	*s = stmt(st, S_SUB_SET);

	if (s == NULL)
		return -1;
	sqlite3_bind_text(s, 1, path, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(s, 2, on);
	return done(s);
}

int
state_sub_each(struct state *st, state_sub_cb *cb, void *arg)
{
	sqlite3_stmt	*s = stmt(st, S_SUB_EACH);
	int		 rc;

	if (s == NULL)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		if (cb((const char *)sqlite3_column_text(s, 0),
		    sqlite3_column_int(s, 1) != 0, arg) == -1) {
			rc = SQLITE_ABORT;
			break;
		}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
state_deleted_set(struct state *st, const char *name, bool deleted)
{
	sqlite3_stmt	*s = stmt(st, deleted ? S_DELETED_SET :
			    S_DELETED_CLEAR);

	if (s == NULL)
		return -1;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
	if (deleted)
		sqlite3_bind_int64(s, 2, (sqlite3_int64)time(NULL));
	return done(s);
}

int
state_deleted_each(struct state *st, state_deleted_cb *cb, void *arg)
{
	sqlite3_stmt	*s = stmt(st, S_DELETED_EACH);
	int		 rc;

	if (s == NULL)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		if (cb((const char *)sqlite3_column_text(s, 0), arg) == -1) {
			rc = SQLITE_ABORT;
			break;
		}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
state_tomb_each(struct state *st, int64_t id, state_tomb_cb *cb, void *arg)
{
	sqlite3_stmt	*s = stmt(st, S_TOMB_EACH);
	int		 rc;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		if (cb((uint64_t)sqlite3_column_int64(s, 0), arg) == -1) {
			rc = SQLITE_ABORT;
			break;
		}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The key texts of one copy of a message (caller frees). */
int
state_vmsg_keys(struct state *st, int64_t id, uint32_t vuid, int side,
    char **key, char **akey)
{
	sqlite3_stmt	*s = stmt(st, S_KEYS);
	const unsigned char *k, *a;
	int		 rc;

	*key = *akey = NULL;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, vuid);
	sqlite3_bind_int(s, 3, side);
	if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		k = sqlite3_column_text(s, 0);
		a = sqlite3_column_text(s, 1);
		if (k != NULL)
			*key = strdup((const char *)k);
		if (a != NULL)
			*akey = strdup((const char *)a);
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_ROW ? 0 : -1;
}

int
state_vmsg_want(struct state *st, int64_t id, uint32_t vuid, int flags)
{
	sqlite3_stmt	*s = stmt(st, S_WANT);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, vuid);
	if (flags < 0)
		sqlite3_bind_null(s, 3);
	else
		sqlite3_bind_int(s, 3, flags);
	return done(s);
}

int
state_move_add(struct state *st, const char *src, uint32_t vuid,
    const char *dst, uint64_t keyh)
{
	sqlite3_stmt	*s = stmt(st, S_MOVE_ADD);

	if (s == NULL)
		return -1;
	sqlite3_bind_text(s, 1, src, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, vuid);
	sqlite3_bind_text(s, 3, dst, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)keyh);
	sqlite3_bind_int64(s, 5, (sqlite3_int64)time(NULL));
	return done(s);
}

int
state_move_del(struct state *st, const char *src, uint32_t vuid)
{
	sqlite3_stmt	*s = stmt(st, S_MOVE_DEL);

	if (s == NULL)
		return -1;
	sqlite3_bind_text(s, 1, src, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, vuid);
	return done(s);
}

int
state_move_each(struct state *st, const char *dst, state_move_cb *cb,
    void *arg)
{
	sqlite3_stmt	*s = stmt(st, S_MOVE_EACH);
	struct state_move m;
	int		 rc;
	char		*src;

	if (s == NULL)
		return -1;
	sqlite3_bind_text(s, 1, dst, -1, SQLITE_TRANSIENT);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if ((src = strdup((const char *)sqlite3_column_text(s, 0))) ==
		    NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		m.src = src;
		m.vuid = (uint32_t)sqlite3_column_int64(s, 1);
		m.keyh = (uint64_t)sqlite3_column_int64(s, 2);
		m.at = sqlite3_column_int64(s, 3);
		if (cb(&m, arg) == -1) {
			free(src);
			rc = SQLITE_ABORT;
			break;
		}
		free(src);
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? 0 : -1;
}
