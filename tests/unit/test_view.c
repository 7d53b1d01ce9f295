/*
 * The merged mailbox engine: first build, pairing as the migration copies
 * mail (the multiset rule included), the lifecycle of vanishing copies,
 * tombstones, UIDVALIDITY changes, flags, and the state store round trip.
 */
#include <sys/stat.h>

#include <unistd.h>

#include <sqlite3.h>

#include "proxy/merge/state.h"
#include "proxy/merge/view.h"
#include "unit.h"

static uint64_t
h64(const char *s)
{
	uint64_t	 h = 1469598103934665603ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h ? h : 1;
}

/* A backend message: key "K" and optional alias. */
static struct bmsg
B(uint32_t uid, const char *key, const char *akey, uint32_t idate,
    uint8_t flags)
{
	struct bmsg	 b;

	memset(&b, 0, sizeof(b));
	b.uid = uid;
	b.size = 100 + uid;
	b.idate = idate;
	b.flags = flags;
	b.key = key;
	b.akey = akey;
	b.keyh = h64(key);
	b.akeyh = akey ? h64(akey) : 0;
	return b;
}

static const struct vmsg *
by_key(const struct view *v, const char *key)
{
	size_t	 i;
	uint64_t h = h64(key);

	for (i = 0; i < view_count(v); i++) {
		const struct vmsg *m = view_at(v, i);

		if (m->lkey == h || m->nkey == h || m->nakey == h)
			return m;
	}
	return NULL;
}

static void
scan(struct view *v, enum backend_side side, const uint32_t *uids, size_t n)
{
	size_t	 i;

	CHECK(view_scan_begin(v, side, 0, UINT32_MAX) == 0);
	for (i = 0; i < n; i++)
		CHECK(view_scan_flags(v, side, uids[i], 0, NULL) == 0);
	CHECK(view_scan_end(v, side) == 0);
}

static void
first_build_pairs_and_orders_by_date(void)
{
	struct view	*v = view_new(NULL, 1, 1234, 1);
	struct bmsg	 l[] = { B(1, "a", NULL, 50, 0), B(2, "b", NULL, 10, 0),
	    B(3, "c", NULL, 30, VF_SEEN) };
	struct bmsg	 n[] = { B(7, "c", NULL, 30, VF_FLAGGED),
	    B(8, "x-new", "b", 10, 0), B(9, "d", NULL, 20, 0) };

	CHECK(view_build(v, l, 3, n, 3) == 0);
	CHECK_INT(view_count(v), 4);
	CHECK_INT(view_uidnext(v), 5);
	/* b (10), d (20), c (30), a (50) */
	CHECK_INT(by_key(v, "b")->vuid, 1);
	CHECK_INT(by_key(v, "b")->uid[BACKEND_NEW], 8);	/* via its alias */
	CHECK_INT(by_key(v, "d")->vuid, 2);
	CHECK_INT(by_key(v, "c")->vuid, 3);
	CHECK_INT(by_key(v, "a")->vuid, 4);
	/* The new copy serves and its flags show. */
	CHECK_INT(vmsg_flags(by_key(v, "c")), VF_FLAGGED);
	CHECK_INT(vmsg_serving(by_key(v, "a")), BACKEND_LEGACY);
	view_free(&v);
	CHECK(v == NULL);
}

static void
migration_keeps_vuids(void)
{
	struct view	*v = view_new(NULL, 1, 1234, 1);
	struct bmsg	 l[] = { B(1, "a", NULL, 1, 0), B(2, "b", NULL, 2, 0) };
	struct bmsg	 n1[] = { B(1, "a", NULL, 1, 0) };
	struct bmsg	 n2[] = { B(2, "b", NULL, 2, 0), B(3, "z", NULL, 3, 0) };
	uint32_t	 ex;

	CHECK(view_build(v, l, 2, NULL, 0) == 0);
	ex = view_expunges(v);
	CHECK(view_add(v, BACKEND_NEW, n1, 1) == 0);
	CHECK(view_add(v, BACKEND_NEW, n2, 2) == 0);
	CHECK_INT(view_count(v), 3);
	CHECK_INT(by_key(v, "a")->vuid, 1);
	CHECK_INT(by_key(v, "b")->vuid, 2);
	CHECK_INT(by_key(v, "z")->vuid, 3);
	CHECK_INT(by_key(v, "b")->uid[BACKEND_NEW], 2);
	CHECK_INT(view_expunges(v), ex);
	CHECK_INT(view_stats(v)->paired, 2);
	view_free(&v);
}

static void
multiset_pairs_in_order(void)
{
	struct view	*v = view_new(NULL, 1, 1234, 1);
	struct bmsg	 l[] = { B(1, "k", NULL, 1, 0), B(2, "k", NULL, 2, 0) };
	struct bmsg	 n1[] = { B(5, "k", NULL, 1, 0) };
	struct bmsg	 n2[] = { B(6, "k", NULL, 2, 0) };
	struct bmsg	 n3[] = { B(7, "k", NULL, 3, 0) };

	CHECK(view_build(v, l, 2, NULL, 0) == 0);
	CHECK(view_add(v, BACKEND_NEW, n1, 1) == 0);
	CHECK_INT(view_find(v, 1)->uid[BACKEND_NEW], 5);
	CHECK_INT(view_find(v, 2)->uid[BACKEND_NEW], 0);
	CHECK(view_add(v, BACKEND_NEW, n2, 1) == 0);
	CHECK_INT(view_find(v, 2)->uid[BACKEND_NEW], 6);
	/* A third copy on the new server is a message of its own. */
	CHECK(view_add(v, BACKEND_NEW, n3, 1) == 0);
	CHECK_INT(view_count(v), 3);
	view_free(&v);
}

static void
lifecycle_and_tombstones(void)
{
	struct view	*v = view_new(NULL, 1, 1234, 1);
	struct bmsg	 l[] = { B(1, "p", NULL, 1, 0), B(2, "q", NULL, 2, 0),
	    B(3, "r", NULL, 3, 0) };
	struct bmsg	 n[] = { B(1, "p", NULL, 1, 0), B(2, "q", NULL, 2, 0) };
	struct bmsg	 again[] = { B(9, "p", NULL, 1, 0) };
	uint32_t	 legacy_left[] = { 1, 3 }, new_left[] = { 2 };
	uint32_t	 legacy_now[] = { 1 };

	CHECK(view_build(v, l, 3, n, 2) == 0);
	/* The user deleted p on the new server: p leaves the view. */
	scan(v, BACKEND_NEW, new_left, 1);
	CHECK(by_key(v, "p") == NULL);
	CHECK_INT(view_count(v), 2);
	/* The legacy copy of q vanished: q is new-only, same vuid. */
	scan(v, BACKEND_LEGACY, legacy_left, 2);
	CHECK_INT(by_key(v, "q")->uid[BACKEND_LEGACY], 0);
	CHECK_INT(by_key(v, "q")->vuid, 2);
	/* The migration copies p again: it stays hidden. */
	CHECK(view_add(v, BACKEND_NEW, again, 1) == 0);
	CHECK(by_key(v, "p") == NULL);
	CHECK_INT(view_stats(v)->hidden, 1);
	/* Legacy-only r vanishes: gone. */
	scan(v, BACKEND_LEGACY, legacy_now, 1);
	CHECK(by_key(v, "r") == NULL);
	CHECK_INT(view_count(v), 1);
	/* A UID once used is never used again. */
	CHECK(view_uidnext(v) >= 4);
	view_free(&v);
}

static void
uidvalidity_change_keeps_vuids(void)
{
	struct view	*v = view_new(NULL, 1, 1234, 1);
	struct bmsg	 l[] = { B(1, "a", NULL, 1, 0), B(2, "b", NULL, 2, 0) };
	struct bmsg	 n[] = { B(1, "a", NULL, 1, 0), B(2, "b", NULL, 2, 0),
	    B(3, "c", NULL, 3, 0) };
	struct bmsg	 n2[] = { B(1, "c", NULL, 3, 0), B(2, "a", NULL, 1, 0),
	    B(3, "b", NULL, 2, 0) };
	uint32_t	 all[] = { 1, 2, 3 };
	uint32_t	 va, vb, vc, ex;

	CHECK(view_build(v, l, 2, n, 3) == 0);
	va = by_key(v, "a")->vuid;
	vb = by_key(v, "b")->vuid;
	vc = by_key(v, "c")->vuid;
	ex = view_expunges(v);
	/* The folder was recreated on the new server. */
	CHECK(view_side_reset(v, BACKEND_NEW) == 0);
	CHECK(view_add(v, BACKEND_NEW, n2, 3) == 0);
	scan(v, BACKEND_NEW, all, 3);
	CHECK_INT(view_count(v), 3);
	CHECK_INT(by_key(v, "a")->vuid, va);
	CHECK_INT(by_key(v, "b")->vuid, vb);
	CHECK_INT(by_key(v, "c")->vuid, vc);
	CHECK_INT(by_key(v, "c")->uid[BACKEND_NEW], 1);
	CHECK_INT(view_expunges(v), ex);
	view_free(&v);
}

static void
keyless_legacy_pairs_by_header_hash(void)
{
	struct view	*v = view_new(NULL, 1, 1234, 1);
	struct bmsg	 l[] = { B(1, "h:abc", NULL, 1, 0) };
	/* The copier gave the new copy a Message-ID of its own. */
	struct bmsg	 n[] = { B(4, "added@copier", "h:abc", 1, 0) };

	CHECK(view_build(v, l, 1, NULL, 0) == 0);
	CHECK(view_add(v, BACKEND_NEW, n, 1) == 0);
	CHECK_INT(view_count(v), 1);
	CHECK_INT(view_find(v, 1)->uid[BACKEND_NEW], 4);
	view_free(&v);
}

static void
flags_follow_the_serving_copy(void)
{
	struct view	*v = view_new(NULL, 1, 1234, 1);
	struct bmsg	 l[] = { B(1, "a", NULL, 1, VF_SEEN) };
	struct bmsg	 n[] = { B(1, "a", NULL, 1, 0) };
	uint32_t	 ms;

	CHECK(view_build(v, l, 1, NULL, 0) == 0);
	CHECK_INT(vmsg_flags(view_find(v, 1)), VF_SEEN);
	ms = view_find(v, 1)->modseq;
	CHECK(view_add(v, BACKEND_NEW, n, 1) == 0);
	CHECK_INT(vmsg_flags(view_find(v, 1)), 0);
	CHECK(view_find(v, 1)->modseq > ms);
	CHECK(view_scan_begin(v, BACKEND_NEW, 0, UINT32_MAX) == 0);
	CHECK(view_scan_flags(v, BACKEND_NEW, 1, VF_SEEN | VF_FLAGGED,
	    "$Forwarded") == 0);
	CHECK(view_scan_end(v, BACKEND_NEW) == 0);
	CHECK_INT(vmsg_flags(view_find(v, 1)), VF_SEEN | VF_FLAGGED);
	CHECK_STR(view_keywords(v, view_find(v, 1)->kw), "$Forwarded");
	view_free(&v);
}

static void
store_round_trip(void)
{
	char			 dir[] = "/tmp/imapmerge-view-XXXXXX", cmd[64];
	char			 err[256];
	struct state		*st;
	struct state_folder	 f, f2;
	struct view		*v;
	struct bmsg		 l[] = { B(1, "a", NULL, 1, VF_SEEN),
	    B(2, "b", NULL, 2, 0), B(3, "c", NULL, 3, 0) };
	struct bmsg		 n[] = { B(1, "a", NULL, 1, 0),
	    B(2, "b", NULL, 2, 0) };
	struct bmsg		 again[] = { B(5, "a", NULL, 1, 0) };
	uint32_t		 new_left[] = { 2 };

	if (mkdtemp(dir) == NULL)
		return;
	chmod(dir, 0700);
	st = state_open(dir, "alice", err, sizeof(err));
	CHECK(st != NULL);
	if (st == NULL)
		return;
	CHECK(state_folder_get(st, "INBOX", &f) == 0);
	CHECK(f.uidvalidity != 0);
	CHECK_INT(f.uidnext, 1);
	v = view_new(st, f.id, f.uidvalidity, f.uidnext);
	CHECK(state_begin(st) == 0);
	CHECK(view_build(v, l, 3, n, 2) == 0);
	scan(v, BACKEND_NEW, new_left, 1);	/* a deleted on new */
	CHECK(state_folder_side(st, f.id, BACKEND_NEW, 77, 3, 0) == 0);
	CHECK(state_commit(st) == 0);
	view_free(&v);
	state_close(&st);

	st = state_open(dir, "alice", err, sizeof(err));
	CHECK(state_folder_get(st, "INBOX", &f2) == 0);
	CHECK_INT(f2.id, f.id);
	CHECK_INT(f2.uidvalidity, f.uidvalidity);
	CHECK_INT(f2.uidnext, 4);
	CHECK_INT(f2.side_uidvalidity[BACKEND_NEW], 77);
	CHECK_INT(f2.side_uidnext[BACKEND_NEW], 3);
	v = view_new(st, f2.id, f2.uidvalidity, f2.uidnext);
	CHECK(view_load(v) == 0);
	CHECK_INT(view_count(v), 2);
	CHECK_INT(by_key(v, "b")->vuid, 2);
	CHECK_INT(by_key(v, "b")->uid[BACKEND_NEW], 2);
	CHECK_INT(by_key(v, "c")->uid[BACKEND_LEGACY], 3);
	/* The tombstone of a came back from the store. */
	CHECK(view_add(v, BACKEND_NEW, again, 1) == 0);
	CHECK_INT(view_count(v), 2);
	view_free(&v);
	state_close(&st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		printf("# cannot remove %s\n", dir);
}

/* A key-only tombstone written before schema 5 keeps hiding its key. */
static void
old_key_tombstone_still_hides(void)
{
	char			 dir[] = "/tmp/imapmerge-view-XXXXXX", cmd[96];
	char			 err[256], path[128];
	struct state		*st;
	struct state_folder	 f;
	struct view		*v;
	struct bmsg		 n[] = { B(3, "old", NULL, 1, 0),
	    B(4, "fresh", NULL, 2, 0) };
	sqlite3			*db;

	if (mkdtemp(dir) == NULL)
		return;
	chmod(dir, 0700);
	st = state_open(dir, "alice", err, sizeof(err));
	if (!CHECK(st != NULL))
		return;
	CHECK(state_folder_get(st, "INBOX", &f) == 0);
	state_close(&st);
	snprintf(path, sizeof(path), "%s/alice.db", dir);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	snprintf(cmd, sizeof(cmd), "INSERT INTO tombstone VALUES (%lld, %lld, "
	    "'old', 1)", (long long)f.id, (long long)h64("old"));
	CHECK(sqlite3_exec(db, cmd, NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	st = state_open(dir, "alice", err, sizeof(err));
	v = view_new(st, f.id, f.uidvalidity, f.uidnext);
	CHECK(view_load(v) == 0);
	CHECK(state_begin(st) == 0);
	CHECK(view_add(v, BACKEND_NEW, n, 2) == 0);
	CHECK(state_commit(st) == 0);
	CHECK_INT(view_count(v), 1);
	CHECK(by_key(v, "fresh") != NULL);
	/* Lifted by the user putting it back. */
	CHECK(view_untomb(v, h64("old")) == 0);
	n[0].uid = 5;
	CHECK(view_add(v, BACKEND_NEW, n, 1) == 0);
	CHECK_INT(view_count(v), 2);
	view_free(&v);
	state_close(&st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		printf("# cannot remove %s\n", dir);
}

/*
 * A failed transaction: view_load() puts the memory back as the store has
 * it, whole: messages, each side's UIDNEXT (moved on, it would skip what
 * the failed sync brought), tombstones; UIDNEXT never goes back.
 */
static void
rollback_restores_the_view(void)
{
	char			 dir[] = "/tmp/imapmerge-view-XXXXXX", cmd[64];
	char			 err[256];
	struct state		*st;
	struct state_folder	 f;
	struct view		*v;
	struct bmsg		 l[] = { B(1, "a", NULL, 1, 0),
	    B(2, "b", NULL, 2, 0) };
	struct bmsg		 l3[] = { B(3, "c", NULL, 3, 0) };
	struct bmsg		 again[] = { B(9, "a", NULL, 1, 0) };

	if (mkdtemp(dir) == NULL)
		return;
	chmod(dir, 0700);
	st = state_open(dir, "alice", err, sizeof(err));
	if (!CHECK(st != NULL))
		return;
	CHECK(state_folder_get(st, "INBOX", &f) == 0);
	v = view_new(st, f.id, f.uidvalidity, f.uidnext);
	CHECK(state_begin(st) == 0);
	CHECK(view_build(v, l, 2, NULL, 0) == 0);
	view_side(v, BACKEND_LEGACY)->uidvalidity = 5;
	view_side(v, BACKEND_LEGACY)->uidnext = 3;
	CHECK(state_folder_side(st, f.id, BACKEND_LEGACY, 5, 3, 0) == 0);
	CHECK(state_commit(st) == 0);
	/* A sync that fails half way. */
	CHECK(state_begin(st) == 0);
	CHECK(view_add(v, BACKEND_LEGACY, l3, 1) == 0);
	view_side(v, BACKEND_LEGACY)->uidnext = 4;
	CHECK(view_tombstone(v, 1) == 0);
	state_rollback(st);
	CHECK(view_load(v) == 0);
	CHECK_INT(view_count(v), 2);
	CHECK(by_key(v, "c") == NULL);
	CHECK_INT(view_side(v, BACKEND_LEGACY)->uidnext, 3);
	CHECK_INT(view_side(v, BACKEND_LEGACY)->uidvalidity, 5);
	CHECK(view_uidnext(v) >= 4);		/* vuid 3 is not given again */
	/* The tombstone went with the transaction: a second copy of a is a
	 * message of its own, not hidden. */
	CHECK(state_begin(st) == 0);
	CHECK(view_add(v, BACKEND_LEGACY, again, 1) == 0);
	CHECK(state_commit(st) == 0);
	CHECK_INT(view_count(v), 3);
	/* Loading twice adds nothing twice. */
	CHECK(view_load(v) == 0);
	CHECK(view_load(v) == 0);
	CHECK_INT(view_count(v), 3);
	/* Nested: the inner level fails; its rows stay in the open
	 * transaction until the outermost ends, so the view is read back
	 * only then, without them. */
	CHECK(state_begin(st) == 0);
	CHECK(state_begin(st) == 0);
	CHECK(view_add(v, BACKEND_LEGACY, l3, 1) == 0);
	CHECK_INT(view_count(v), 4);
	state_rollback(st);
	CHECK(view_restore(v) == 0);
	CHECK_INT(view_count(v), 4);		/* not yet */
	CHECK(state_commit(st) == -1);		/* rolled back after all */
	CHECK_INT(view_count(v), 3);
	CHECK(by_key(v, "c") == NULL);
	CHECK(!view_stale(v));
	view_free(&v);
	state_close(&st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		printf("# cannot remove %s\n", dir);
}

static void
many_messages_build_fast_and_small(void)
{
	enum { N = 100000 };
	struct view	*v = view_new(NULL, 1, 1234, 1);
	struct bmsg	*l = calloc(N, sizeof(*l)), *n = calloc(N, sizeof(*n));
	static char	 keys[N][12];
	size_t		 i, nn = 0;

	for (i = 0; i < N; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%zu", i);
		if (i < N / 2)
			l[i] = B((uint32_t)i + 1, keys[i], NULL, (uint32_t)i, 0);
		if (i >= N / 4) {
			n[nn] = B((uint32_t)nn + 1, keys[i], NULL,
			    (uint32_t)i, 0);
			nn++;
		}
	}
	CHECK(view_build(v, l, N / 2, n, nn) == 0);
	CHECK_INT(view_count(v), N);
	CHECK_INT(view_stats(v)->paired, N / 4);
	/* The budget is 100 bytes a message, sessions and indexes included. */
	CHECK(view_memory(v) / N < 80);
	free(l);
	free(n);
	view_free(&v);
}

/* Flags set before the new copy existed, and what the copy gets. */
static void
wanted_flags_and_recorded_copies(void)
{
	struct view	*v = view_new(NULL, 1, 1234, 1);
	struct bmsg	 l[] = { B(1, "a", NULL, 50, VF_SEEN) };
	struct bmsg	 n[] = { B(4, "a", NULL, 50, VF_SEEN) };
	struct bmsg	 again = B(4, "a", NULL, 50, VF_SEEN);
	const struct vmsg *m;
	uint32_t	*hid;

	CHECK(view_add(v, BACKEND_LEGACY, l, 1) == 0);
	m = view_find(v, 1);
	CHECK(view_want(v, 1, VF_SEEN | VF_FLAGGED) == 0);
	CHECK_INT(vmsg_flags(m), VF_SEEN | VF_FLAGGED);
	CHECK_INT(view_nwant(v), 1);
	/* The scan of legacy (unchanged there) keeps what the user set. */
	CHECK(view_scan_begin(v, BACKEND_LEGACY, 0, UINT32_MAX) == 0);
	CHECK(view_scan_flags(v, BACKEND_LEGACY, 1, VF_SEEN, NULL) == 0);
	CHECK(view_scan_end(v, BACKEND_LEGACY) == 0);
	CHECK_INT(vmsg_flags(view_find(v, 1)), VF_SEEN | VF_FLAGGED);
	/* The migration's copy pairs; the want stays until it is given. */
	CHECK(view_add(v, BACKEND_NEW, n, 1) == 0);
	m = view_find(v, 1);
	CHECK_INT(m->uid[BACKEND_NEW], 4);
	CHECK_INT(vmsg_flags(m), VF_SEEN | VF_FLAGGED);
	CHECK(view_set_flags(v, 1, BACKEND_NEW, VF_SEEN | VF_FLAGGED) == 0);
	CHECK(view_want_clear(v, 1) == 0);
	CHECK_INT(view_nwant(v), 0);
	CHECK_INT(vmsg_flags(view_find(v, 1)), VF_SEEN | VF_FLAGGED);
	/* A UID already recorded (an APPEND) is not added twice. */
	CHECK(view_add(v, BACKEND_NEW, &again, 1) == 0);
	CHECK_INT(view_count(v), 1);
	/* A tombstoned key hides the next copy and says so once. */
	CHECK(view_tombstone(v, 1) == 0);
	CHECK(view_expunge(v, 1) == 0);
	again.uid = 9;
	CHECK(view_add(v, BACKEND_NEW, &again, 1) == 0);
	CHECK_INT(view_count(v), 0);
	CHECK_INT(view_hidden_take(v, &hid), 1);
	CHECK_INT(hid[0], 9);
	free(hid);
	CHECK_INT(view_hidden_take(v, &hid), 0);
	free(hid);
	/* Put back by the user: shown again. */
	CHECK(view_untomb(v, h64("a")) == 0);
	again.uid = 10;
	CHECK(view_add(v, BACKEND_NEW, &again, 1) == 0);
	CHECK_INT(view_count(v), 1);
	view_free(&v);
}

/*
 * Two messages with one key (appended twice, a list's two deliveries):
 * deleting one hides that one's copies, never its twin's, and the twin
 * still gets its migrated copy first; the migration copying the deleted
 * one again (tombstone-action expunge took the first copy) stays hidden;
 * a copy more than the messages deleted shows.
 */
static void
tombstone_hides_one_message_not_its_twin(void)
{
	struct view	*v = view_new(NULL, 1, 1234, 1);
	struct bmsg	 l[] = { B(1, "k", NULL, 1, 0), B(2, "k", NULL, 2, 0),
	    B(3, "o", NULL, 3, 0) };
	struct bmsg	 n1[] = { B(11, "k", NULL, 1, 0) };
	struct bmsg	 n2[] = { B(12, "k", NULL, 2, 0) };
	struct bmsg	 n3[] = { B(13, "k", NULL, 1, 0) };
	struct bmsg	 n4[] = { B(14, "k", NULL, 1, 0) };
	struct bmsg	 lagain[] = { B(1, "k", NULL, 1, 0) };
	uint32_t	*hid, gone[] = { 12 };

	CHECK(view_build(v, l, 3, NULL, 0) == 0);
	/* The user deletes the first twin (legacy only: its copy stays on
	 * the legacy server, hidden). */
	CHECK(view_tombstone(v, 1) == 0);
	CHECK(view_expunge(v, 1) == 0);
	CHECK_INT(view_count(v), 2);
	/* The legacy copy read again stays hidden; its twin stays. */
	CHECK(view_add(v, BACKEND_LEGACY, lagain, 1) == 0);
	CHECK_INT(view_count(v), 2);
	CHECK(view_find(v, 2) != NULL);
	/* The migration copies both: the visible twin takes the first. */
	CHECK(view_add(v, BACKEND_NEW, n1, 1) == 0);
	CHECK_INT(view_find(v, 2)->uid[BACKEND_NEW], 11);
	CHECK(view_add(v, BACKEND_NEW, n2, 1) == 0);
	CHECK_INT(view_count(v), 2);
	CHECK_INT(view_hidden_take(v, &hid), 1);
	CHECK_INT(hid[0], 12);
	free(hid);
	/* Read again, that copy stays hidden (and is not told again). */
	CHECK(view_add(v, BACKEND_NEW, n2, 1) == 0);
	CHECK_INT(view_count(v), 2);
	/* tombstone-action expunge took it; the migration copies the
	 * deleted message once more: hidden again. */
	CHECK(view_hidden_gone(v, gone, 1) == 0);
	CHECK(view_add(v, BACKEND_NEW, n3, 1) == 0);
	CHECK_INT(view_count(v), 2);
	CHECK_INT(view_hidden_take(v, &hid), 2);
	free(hid);
	/* A copy more than the messages deleted (delivered again, put
	 * back): a message of its own. */
	CHECK(view_add(v, BACKEND_NEW, n4, 1) == 0);
	CHECK_INT(view_count(v), 3);
	CHECK_INT(view_find(v, 4)->uid[BACKEND_NEW], 14);
	view_free(&v);
}

/* A message only the new server had (appended, copied) is deleted: no
 * migration copies it, so a later copy with its key is the user's own
 * (COPY, APPEND, a restore) and shows. */
static void
tombstone_of_a_new_only_message_hides_nothing(void)
{
	struct view	*v = view_new(NULL, 1, 1234, 1);
	struct bmsg	 n1[] = { B(5, "mine", NULL, 1, 0) };
	struct bmsg	 n2[] = { B(6, "mine", NULL, 1, 0) };
	uint32_t	*hid;

	CHECK(view_add(v, BACKEND_NEW, n1, 1) == 0);
	CHECK(view_tombstone(v, 1) == 0);
	CHECK(view_expunge(v, 1) == 0);
	CHECK(view_add(v, BACKEND_NEW, n2, 1) == 0);
	CHECK_INT(view_count(v), 1);
	CHECK_INT(view_hidden_take(v, &hid), 0);
	free(hid);
	view_free(&v);
}

/* The deleted message's legacy UIDVALIDITY changes: its copy comes
 * again under a new UID and is hidden again; the twin pairs. */
static void
tombstone_survives_uidvalidity_change(void)
{
	struct view	*v = view_new(NULL, 1, 1234, 1);
	struct bmsg	 l[] = { B(1, "k", NULL, 1, 0), B(2, "k", NULL, 2, 0) };
	struct bmsg	 l2[] = { B(7, "k", NULL, 1, 0), B(8, "k", NULL, 2, 0) };
	uint32_t	 epoch;

	CHECK(view_build(v, l, 2, NULL, 0) == 0);
	epoch = view_side_epoch(v, BACKEND_LEGACY);
	CHECK(view_tombstone(v, 2) == 0);
	CHECK(view_expunge(v, 2) == 0);
	CHECK(view_side_reset(v, BACKEND_LEGACY) == 0);
	/* A sync begun before this reset will apply nothing of legacy. */
	CHECK(view_side_epoch(v, BACKEND_LEGACY) != epoch);
	CHECK(view_add(v, BACKEND_LEGACY, l2, 2) == 0);
	CHECK_INT(view_count(v), 1);
	CHECK_INT(view_find(v, 1)->uid[BACKEND_LEGACY], 7);
	view_free(&v);
}

/* Keywords kept by imapmerge: the servers' never replace them. */
static void
local_keywords_stay(void)
{
	struct view	*v = view_new(NULL, 1, 1234, 1);
	struct bmsg	 n[] = { B(3, "k", NULL, 50, 0) };
	const struct vmsg *m;

	view_set_local_keywords(v, true);
	CHECK(view_add(v, BACKEND_NEW, n, 1) == 0);
	CHECK(view_set_keywords(v, 1, "$label1") == 0);
	CHECK(view_scan_begin(v, BACKEND_NEW, 0, UINT32_MAX) == 0);
	CHECK(view_scan_flags(v, BACKEND_NEW, 3, VF_SEEN, NULL) == 0);
	CHECK(view_scan_end(v, BACKEND_NEW) == 0);
	m = view_find(v, 1);
	CHECK_STR(view_keywords(v, m->kw), "$label1");
	CHECK_INT(vmsg_flags(m), VF_SEEN);
	view_free(&v);
}

/*
 * A sync read the server's flags, then another session's STORE changed
 * the message before the sync applied them: the stale flags must not
 * undo the STORE (a \\Deleted lost there made EXPUNGE do nothing), and
 * the message must not vanish; the next scan judges it.
 */
static void
scan_keeps_what_changed_since(void)
{
	struct view	*v = view_new(NULL, 1, 1, 1);
	struct bmsg	 n[] = { B(1, "a", NULL, 1, 0), B(2, "b", NULL, 2, 0) };
	uint32_t	 since;

	CHECK(view_build(v, NULL, 0, n, 2) == 0);
	since = view_modseq(v);
	CHECK(view_set_flags(v, 1, BACKEND_NEW, VF_DELETED) == 0);
	CHECK(view_scan_begin(v, BACKEND_NEW, 0, since) == 0);
	CHECK(view_scan_flags(v, BACKEND_NEW, 1, 0, NULL) == 0);
	CHECK(view_scan_flags(v, BACKEND_NEW, 2, VF_SEEN, NULL) == 0);
	CHECK(view_scan_end(v, BACKEND_NEW) == 0);
	CHECK(view_find(v, 1) != NULL);
	CHECK_INT(vmsg_flags(view_find(v, 1)), VF_DELETED);
	CHECK_INT(vmsg_flags(view_find(v, 2)), VF_SEEN);
	CHECK(view_scan_begin(v, BACKEND_NEW, 0, view_modseq(v)) == 0);
	CHECK(view_scan_flags(v, BACKEND_NEW, 1, VF_DELETED | VF_SEEN,
	    NULL) == 0);
	CHECK(view_scan_flags(v, BACKEND_NEW, 2, VF_SEEN, NULL) == 0);
	CHECK(view_scan_end(v, BACKEND_NEW) == 0);
	CHECK_INT(vmsg_flags(view_find(v, 1)), VF_DELETED | VF_SEEN);
	view_free(&v);
}

static const struct unit_case cases[] = {
	UNIT_CASE(first_build_pairs_and_orders_by_date),
	UNIT_CASE(migration_keeps_vuids),
	UNIT_CASE(multiset_pairs_in_order),
	UNIT_CASE(lifecycle_and_tombstones),
	UNIT_CASE(tombstone_hides_one_message_not_its_twin),
	UNIT_CASE(tombstone_survives_uidvalidity_change),
	UNIT_CASE(tombstone_of_a_new_only_message_hides_nothing),
	UNIT_CASE(old_key_tombstone_still_hides),
	UNIT_CASE(rollback_restores_the_view),
	UNIT_CASE(uidvalidity_change_keeps_vuids),
	UNIT_CASE(keyless_legacy_pairs_by_header_hash),
	UNIT_CASE(flags_follow_the_serving_copy),
	UNIT_CASE(store_round_trip),
	UNIT_CASE(many_messages_build_fast_and_small),
	UNIT_CASE(wanted_flags_and_recorded_copies),
	UNIT_CASE(local_keywords_stay),
	UNIT_CASE(scan_keeps_what_changed_since),
};

UNIT_MAIN(cases)
