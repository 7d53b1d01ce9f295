/*
 * Merged mailboxes for sessions (see mailbox.h): the view of each open
 * unified folder, shared by the user's sessions; a session's selection of
 * one, with its own sequence numbers and what it has been told; the
 * cheap checks (NOOP) and the watching of the selected folder between
 * commands.  The sync itself is in sync.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "protocol/imap_parser.h"
#include "protocol/seqset.h"
#include "proxy/core/array.h"
#include "proxy/core/clock.h"
#include "proxy/core/log.h"
#include "proxy/core/server.h"
#include "proxy/net/backend.h"
#include "proxy/merge/folders.h"
#include "proxy/merge/mailbox.h"
#include "proxy/merge/mailbox_impl.h"
#include "proxy/merge/state.h"
#include "proxy/merge/user.h"
#include "proxy/merge/view.h"

/*
 * Shared views.
 */
struct mbox *
mbox_get(struct user *u, const char *path)
{
	struct mbox		*mb;
	struct state_folder	 f;
	int			 side;

	for (mb = u->mboxes; mb != NULL; mb = mb->next)
		if (strcmp(mb->path, path) == 0) {
			mb->refs++;
			return mb;
		}
	if (state_folder_get(u->store, path, &f) == -1)
		return NULL;
	if ((mb = calloc(1, sizeof(*mb))) == NULL)
		return NULL;
	if ((mb->path = strdup(path)) == NULL ||
	    (mb->v = view_new(u->store, f.id, f.uidvalidity, f.uidnext)) ==
	    NULL || view_load(mb->v) == -1) {
		view_free(&mb->v);
		free(mb->path);
		free(mb);
		return NULL;
	}
	for (side = 0; side < BACKEND_COUNT; side++) {
		struct view_side *vs = view_side(mb->v, side);

		vs->uidvalidity = f.side_uidvalidity[side];
		vs->uidnext = f.side_uidnext[side];
		vs->highestmodseq = f.side_modseq[side];
	}
	view_set_local_keywords(mb->v, u->srv->conf->local_keywords ==
	    LOCAL_KEYWORDS_YES);
	mb->fid = f.id;
	mb->u = u;
	mb->refs = 1;
	mb->next = u->mboxes;
	u->mboxes = mb;
	return mb;
}

/* A view nobody has open stays cached with its user (see user.h). */
void
mbox_put(struct mbox **mbp)
{
	struct mbox	*mb = *mbp;

	*mbp = NULL;
	if (mb != NULL)
		mb->refs--;
}

/* Cached views follow a RENAME (to) or go with a DELETE (to NULL). */
void
mbox_renamed(struct user *u, const char *from, const char *to)
{
	struct mbox	**pp = &u->mboxes, *mb;
	size_t		 n = strlen(from);
	char		*np;

	while ((mb = *pp) != NULL) {
		if (strncmp(mb->path, from, n) != 0 || (mb->path[n] != '\0' &&
		    mb->path[n] != '/')) {
			pp = &mb->next;
			continue;
		}
		if (to != NULL && asprintf(&np, "%s%s", to, mb->path + n) !=
		    -1) {
			free(mb->path);
			mb->path = np;
		} else if (mb->refs == 0) {
			*pp = mb->next;
			view_free(&mb->v);
			free(mb->path);
			free(mb);
			continue;
		}
		pp = &mb->next;
	}
}

void
mbox_free_all(struct user *u)
{
	struct mbox	*mb;

	while ((mb = u->mboxes) != NULL) {
		u->mboxes = mb->next;
		view_free(&mb->v);
		free(mb->path);
		free(mb);
	}
}

/*
 * Sessions.
 */
bool
mbox_side_up(const struct mbox_client *c, int side)
{
	return c->be[side] != NULL && backend_ready(c->be[side]);
}

static void
sel_free(struct mbox_client *c)
{
	struct selected	*sel = c->sel, **pp;

	if (sel == NULL)
		return;
	for (pp = &sel->mb->sessions; *pp != NULL; pp = &(*pp)->mb_next)
		if (*pp == sel) {
			*pp = sel->mb_next;
			break;
		}
	mbox_sel_watch(c, false);
	mbox_put(&sel->mb);
	free(sel->vuids);
	free(sel->path);
	free(sel->keywords);
	free(sel);
	c->sel = NULL;
}

void
mbox_close(struct mbox_client *c)
{
	sel_free(c);
}

void
mbox_release_part(struct mbox_client *c, int side, const char *name)
{
	struct backend	*b = c->be[side];

	if (c->opened[side] == NULL || strcmp(c->opened[side], name) != 0)
		return;
	free(c->opened[side]);
	c->opened[side] = NULL;
	if (b != NULL && backend_ready(b) && backend_has_cap(b, "UNSELECT"))
		backend_cmd(b, "UNSELECT", NULL, NULL, NULL);
}

/* Only a session being freed can leave a sync behind: its backends went
 * first, and their callbacks with them. */
void
mbox_client_free(struct mbox_client *c)
{
	int	 side;

	sel_free(c);
	for (side = 0; side < BACKEND_COUNT; side++) {
		free(c->opened[side]);
		c->opened[side] = NULL;
	}
	if (c->sync != NULL) {
		mbox_sync_free(c->sync);
		c->sync = NULL;
	}
	mbox_put(&c->status_mb);
}

static void
select_synced(struct mbox_client *c, bool ok, const char *why)
{
	struct selected	*sel = c->sel;
	struct view	*v = sel->mb->v;
	size_t		 i, n = view_count(v);
	mbox_sync_cb	*cb = sel->after;

	if (ok && (sel->vuids = calloc(n + 1, sizeof(*sel->vuids))) == NULL)
		ok = false;
	if (!ok) {
		sel_free(c);
		cb(c, false, why);
		return;
	}
	sel->cap = n + 1;
	for (i = 0; i < n; i++)
		sel->vuids[i] = view_at(v, i)->vuid;
	sel->n = n;
	sel->modseq = view_modseq(v);
	sel->expunges = view_expunges(v);
	cb(c, true, NULL);
}

void
mbox_select(struct mbox_client *c, const struct ufolder *f, bool readonly,
    mbox_sync_cb *cb)
{
	struct selected	*sel;
	struct mbox	*mb;

	sel_free(c);
	if (c->u == NULL || (mb = mbox_get(c->u, f->path)) == NULL) {
		cb(c, false, "state store unavailable");
		return;
	}
	if ((sel = calloc(1, sizeof(*sel))) == NULL ||
	    (sel->path = strdup(f->path)) == NULL) {
		free(sel);
		mbox_put(&mb);
		cb(c, false, "out of memory");
		return;
	}
	sel->c = c;
	sel->mb = mb;
	sel->readonly = readonly;
	sel->after = cb;
	sel->mb_next = mb->sessions;
	mb->sessions = sel;
	c->sel = sel;
	mbox_sync_start(c, mb, f, readonly, select_synced);
}

void
mbox_resync(struct mbox_client *c, mbox_sync_cb *cb)
{
	const struct ufolder	*f;

	if (c->sel == NULL || c->folders == NULL ||
	    (f = folders_find(c->folders, c->sel->path)) == NULL) {
		cb(c, false, "folder no longer exists");
		return;
	}
	mbox_sync_start(c, c->sel->mb, f, c->sel->readonly, cb);
}

bool
mbox_serves(const struct mbox_client *c, int side)
{
	const struct ufolder	*f;

	return c->sel != NULL && c->folders != NULL &&
	    (f = folders_find(c->folders, c->sel->path)) != NULL &&
	    folder_serves(f, side);
}

bool
mbox_pushed(const struct mbox_client *c)
{
	return c->sel != NULL && c->sel->pushed;
}

bool
mbox_is_news(const struct imap_response *r)
{
	return imap_response_is(r, "EXISTS") ||
	    imap_response_is(r, "EXPUNGE") || imap_response_is(r, "FETCH") ||
	    imap_response_is(r, "VANISHED");
}

/*
 * News a server pushes while its connection watches the selected folder
 * (backend_watch): the next NOOP syncs.
 */
static void
watch_data(struct backend *b, const struct imap_response *r, void *arg)
{
	struct mbox_client	*c = arg;

	if (c->sel != NULL && mbox_is_news(r)) {
		log_sess(LOG_DEBUG, c->sid, "event=backend-news side=%s",
		    backend_name(b));
		c->sel->pushed = true;
	}
}

/*
 * The session's backends that serve the selected folder (it is selected
 * there) watch it while they are quiet; the others do not.
 */
void
mbox_sel_watch(struct mbox_client *c, bool on)
{
	const struct ufolder	*f = NULL;
	unsigned int		 ms;
	int			 side;

	if (on && c->sel != NULL && c->folders != NULL)
		f = folders_find(c->folders, c->sel->path);
	for (side = 0; side < BACKEND_COUNT; side++) {
		ms = f != NULL && folder_serves(f, side) ?
		    c->conf->backend_idle_after_ms : 0;
		if (c->be[side] != NULL)
			backend_watch(c->be[side], ms, ms ? watch_data : NULL,
			    ms ? c : NULL);
	}
}

/*
 * NOOP's check, cheaper than a full sync.  A backend watching the folder
 * in IDLE has told of what changed as it changed: nothing to ask.  Any
 * other is sent a NOOP in the folder, which is selected there already; a
 * server reports there what changed in its folder since the connection
 * last looked (RFC 9051 §6.1.2).  If none has news, the view stands and
 * the client hears only what other sessions changed.  News, a failure, or
 * a last full sync older than poll-interval: a full sync (mbox_resync).
 */
static void
check_data(struct backend *b, const struct imap_response *r, void *arg)
{
	struct mbox_client	*c = arg;

	if (c->sel != NULL && mbox_is_news(r))
		c->sel->check_news = true;
}

static void
check_done(struct backend *b, const struct backend_result *res, void *arg)
{
	struct mbox_client	*c = arg;
	struct selected		*sel = c->sel;
	mbox_sync_cb		*cb;

	if (sel == NULL || sel->checking == 0)
		return;
	if (res->status != BACKEND_OK)
		sel->check_news = true;
	if (--sel->checking > 0)
		return;
	cb = sel->check_cb;
	sel->check_cb = NULL;
	if (sel->check_news || sel->pushed)
		mbox_resync(c, cb);
	else
		cb(c, true, NULL);
}

void
mbox_check(struct mbox_client *c, mbox_sync_cb *cb)
{
	struct selected		*sel = c->sel;
	const struct ufolder	*f;
	long long		 age;
	int			 side, serving = 0, n = 0;
	bool			 ask[BACKEND_COUNT] = { false };

	if (sel == NULL || c->folders == NULL ||
	    (f = folders_find(c->folders, sel->path)) == NULL) {
		mbox_resync(c, cb);
		return;
	}
	age = clock_ms() - sel->synced_ms;
	if (sel->synced_ms == 0 || age < 0 || sel->pushed ||
	    age >= (long long)c->conf->poll_interval_ms) {
		mbox_resync(c, cb);
		return;
	}
	/* Every side serving the folder must be there to answer for it. */
	for (side = 0; side < BACKEND_COUNT; side++)
		if (folder_serves(f, side)) {
			if (!mbox_side_up(c, side)) {
				mbox_resync(c, cb);
				return;
			}
			serving++;
			if (!backend_watching(c->be[side])) {
				ask[side] = true;
				n++;
			}
		}
	if (serving == 0) {
		mbox_resync(c, cb);
		return;
	}
	if (n == 0) {
		cb(c, true, NULL);
		return;
	}
	sel->checking = n;
	sel->check_news = false;
	sel->check_cb = cb;
	for (side = 0; side < BACKEND_COUNT; side++)
		if (ask[side])
			backend_cmd(c->be[side], "NOOP", check_data, check_done,
			    c);
}

/*
 * STATUS of a folder other than the selected one selects it on the
 * backends for the sync; the selected folder is selected again after, in
 * the same queue, so later commands find it.
 */
static void
reselect(struct mbox_client *c)
{
	const struct ufolder	*f;
	int			 side;

	if (c->sel == NULL || (f = folders_find(c->folders, c->sel->path)) ==
	    NULL)
		return;
	for (side = 0; side < BACKEND_COUNT; side++)
		if (folder_serves(f, side))
			mbox_select_cmd(c, f, side, c->sel->readonly, NULL,
			    NULL, NULL);
}

static void
status_self_synced(struct mbox_client *c, bool ok, const char *why)
{
	c->status_cb(c, ok, c->sel != NULL ? c->sel->mb->v : NULL, why);
}

static void
status_synced(struct mbox_client *c, bool ok, const char *why)
{
	struct mbox	*mb = c->status_mb;
	mbox_status_cb	*cb = c->status_cb;

	c->status_mb = NULL;
	reselect(c);
	cb(c, ok, mb != NULL ? mb->v : NULL, why);
	mbox_put(&mb);
}

void
mbox_status(struct mbox_client *c, const struct ufolder *f,
    mbox_status_cb *cb)
{
	struct mbox	*mb;

	if (c->sel != NULL && strcmp(c->sel->path, f->path) == 0) {
		/* Its own sync, and the notifications come first. */
		c->status_cb = cb;
		mbox_resync(c, status_self_synced);
		return;
	}
	if (c->u == NULL || (mb = mbox_get(c->u, f->path)) == NULL) {
		cb(c, false, NULL, "state store unavailable");
		return;
	}
	c->status_mb = mb;
	c->status_cb = cb;
	mbox_sync_start(c, mb, f, true, status_synced);
}

/*
 * A message imapmerge itself put on side (APPEND, COPY) is recorded in
 * the folder's view at once, so that the client learns its vuid without a
 * sync.  The side's UIDNEXT is not moved: a later sync still looks at
 * every UID from the last one it saw and skips this one as known.
 */
int
mbox_record(struct mbox_client *c, const char *path, int side,
    uint32_t uidvalidity, const struct bmsg *b, size_t n, uint32_t *vuids,
    uint32_t *vuidvalidity)
{
	struct mbox		*mb;
	struct view_side	*vs;
	const struct vmsg	*m;
	struct state		*st;
	size_t			 i;
	int			 rc = -1;

	if (c->u == NULL || (mb = mbox_get(c->u, path)) == NULL)
		return -1;
	vs = view_side(mb->v, side);
	st = c->u->store;
	if (uidvalidity == 0 || (vs->uidvalidity != 0 &&
	    vs->uidvalidity != uidvalidity))
		goto out;		/* a sync will find them */
	if (state_begin(st) == -1)
		goto out;
	view_stats_reset(mb->v);
	if (vs->uidvalidity == 0) {
		/* First use of a part just created: later syncs read it
		 * from UID 1 on. */
		vs->uidvalidity = uidvalidity;
		if (state_folder_side(st, mb->fid, side, uidvalidity,
		    vs->uidnext, vs->highestmodseq) == -1) {
			vs->uidvalidity = 0;
			state_rollback(st);
			goto out;
		}
	}
	for (i = 0; i < n; i++)
		if (view_untomb(mb->v, b[i].keyh) == -1 ||
		    view_untomb(mb->v, b[i].akeyh) == -1)
			break;
	if (i < n || view_add(mb->v, side, b, n) == -1 ||
	    state_commit(st) == -1) {
		state_rollback(st);
		if (view_restore(mb->v) == -1)
			log_sess(LOG_WARNING, c->sid, "event=view-reload-"
			    "failed folder=\"%s\"", mb->path);
		goto out;
	}
	for (i = 0; i < n; i++)
		vuids[i] = (m = view_by_uid(mb->v, side, b[i].uid)) != NULL ?
		    m->vuid : 0;
	*vuidvalidity = view_uidvalidity(mb->v);
	mbox_changed(mb, c);
	rc = 0;
 out:
	mbox_put(&mb);
	return rc;
}

/*
 * A backend back after an outage: the selected folder selected on it
 * again, first in its queue, so that the session's commands find it.
 */
void
mbox_reselect_side(struct mbox_client *c, int side)
{
	const struct ufolder	*f;

	if (c->sel == NULL || c->folders == NULL ||
	    (f = folders_find(c->folders, c->sel->path)) == NULL ||
	    !folder_serves(f, side))
		return;
	/* What changed meanwhile is no news to the new connection: the
	 * next NOOP must sync in full (mbox_check). */
	c->sel->synced_ms = 0;
	mbox_select_cmd(c, f, side, c->sel->readonly, NULL, NULL, NULL);
}

/*
 * Keywords.  The view keeps the keyword sets its messages carry; the
 * keywords in use are their words, each once (keywords compare without
 * case, RFC 9051 §2.3.2), in the order first met.
 */
static bool
keyword_listed(const char *list, const char *w, size_t len)
{
	const char	*p;

	for (p = list; (p = strchr(p, ' ')) != NULL; p++)
		if (strncasecmp(p + 1, w, len) == 0 &&
		    (p[len + 1] == ' ' || p[len + 1] == '\0'))
			return true;
	return false;
}

static char *
keywords_in_use(const struct view *v)
{
	const char	*set;
	char		*text;
	size_t		 i, len, used = 0, size = 1, n = view_keyword_sets(v);

	for (i = 1; i < n; i++)
		size += strlen(view_keywords(v, (uint16_t)i)) + 1;
	if ((text = malloc(size)) == NULL)
		return NULL;
	text[0] = '\0';
	for (i = 1; i < n; i++)
		for (set = view_keywords(v, (uint16_t)i); *set != '\0';
		    set += len + (set[len] == ' ')) {
			if ((len = strcspn(set, " ")) == 0 ||
			    keyword_listed(text, set, len))
				continue;
			text[used++] = ' ';
			memcpy(text + used, set, len);
			used += len;
			text[used] = '\0';
		}
	return text;
}

/* The keywords in use, anew when the view has sets c has not seen;
 * whether they changed. */
static bool
keywords_refresh(struct mbox_client *c)
{
	struct selected	*sel = c->sel;
	struct view	*v = sel->mb->v;
	char		*now;

	if (sel->kwsets == view_keyword_sets(v) && sel->keywords != NULL)
		return false;
	sel->kwsets = view_keyword_sets(v);
	if ((now = keywords_in_use(v)) == NULL)
		return false;		/* told the next time */
	if (sel->keywords != NULL && strcmp(now, sel->keywords) == 0) {
		free(now);
		return false;
	}
	free(sel->keywords);
	sel->keywords = now;
	return true;
}

const char *
mbox_keywords(struct mbox_client *c)
{
	if (c->sel == NULL)
		return "";
	keywords_refresh(c);
	return c->sel->keywords != NULL ? c->sel->keywords : "";
}

void
mbox_news_keywords(struct mbox_client *c, struct evbuffer *out)
{
	const char	*kw;

	if (c->sel == NULL || c->sel->vuids == NULL || !keywords_refresh(c))
		return;
	kw = c->sel->keywords;
	evbuffer_add_printf(out, "* FLAGS (" MBOX_SYSTEM_FLAGS "%s)\r\n", kw);
	if (c->sel->readonly)
		evbuffer_add_printf(out, "* OK [PERMANENTFLAGS ()] "
		    "Read-only\r\n");
	else
		evbuffer_add_printf(out, "* OK [PERMANENTFLAGS ("
		    MBOX_SYSTEM_FLAGS "%s \\*)] Flags permitted\r\n", kw);
}

/*
 * Sequence numbers and notifications.
 */
struct view *
mbox_view(struct mbox_client *c)
{
	return c->sel != NULL ? c->sel->mb->v : NULL;
}

uint32_t
mbox_count(struct mbox_client *c)
{
	return c->sel != NULL ? (uint32_t)c->sel->n : 0;
}

uint32_t
mbox_seq_vuid(struct mbox_client *c, uint32_t seq)
{
	return c->sel != NULL && seq >= 1 && seq <= c->sel->n ?
	    c->sel->vuids[seq - 1] : 0;
}

bool
mbox_targets(struct mbox_client *c, const char *text, bool uid,
    uint32_t **seqs, size_t *nseqs, const char **err)
{
	struct seqset	 set = { NULL, 0, 0 };
	uint32_t	 n = mbox_count(c), seq, vuid, max;

	*seqs = NULL;
	*nseqs = 0;
	if (!seqset_parse(&set, text, err))
		return false;
	if (!uid && !seqset_within(&set, n)) {
		seqset_clear(&set);
		*err = "Invalid sequence number";
		return false;
	}
	max = uid ? (n > 0 ? mbox_seq_vuid(c, n) : 0) : n;
	seqset_resolve(&set, max);
	if ((*seqs = calloc(n + 1, sizeof(uint32_t))) == NULL) {
		seqset_clear(&set);
		*err = "Out of memory";
		return false;
	}
	for (seq = 1; seq <= n; seq++) {
		vuid = mbox_seq_vuid(c, seq);
		if (seqset_contains(&set, uid ? vuid : seq) &&
		    view_find(mbox_view(c), vuid) != NULL)
			(*seqs)[(*nseqs)++] = seq;
	}
	seqset_clear(&set);
	return true;
}

bool
mbox_local_keywords(struct mbox_client *c)
{
	return c->sel != NULL && view_local_keywords(c->sel->mb->v);
}

bool
mbox_readonly(struct mbox_client *c)
{
	return c->sel == NULL || c->sel->readonly;
}

void
mbox_write_flags(struct evbuffer *out, const struct view *v,
    const struct vmsg *m)
{
	char		 buf[64];
	const char	*kw = view_keywords(v, m->kw);

	view_flag_text(vmsg_flags(m), buf);
	evbuffer_add_printf(out, "(%s%s%s)", buf, buf[0] != '\0' &&
	    kw[0] != '\0' ? " " : "", kw);
}

/* EXPUNGE for what left the view, highest sequence number first. */
static void
notify_expunges(struct mbox_client *c, struct evbuffer *out)
{
	struct selected	*sel = c->sel;
	struct view	*v = sel->mb->v;
	size_t		 i, j = 0;

	for (i = sel->n; i-- > 0;)
		if (view_find(v, sel->vuids[i]) == NULL) {
			evbuffer_add_printf(out, "* %zu EXPUNGE\r\n", i + 1);
			sel->vuids[i] = 0;
		}
	for (i = 0; i < sel->n; i++)
		if (sel->vuids[i] != 0)
			sel->vuids[j++] = sel->vuids[i];
	sel->n = j;
	sel->expunges = view_expunges(v);
}

static int
notify_exists(struct mbox_client *c, struct evbuffer *out)
{
	struct selected	*sel = c->sel;
	struct view	*v = sel->mb->v;
	uint32_t	 last = sel->n > 0 ? sel->vuids[sel->n - 1] : 0;
	size_t		 i, n0 = sel->n, cnt = view_count(v);

	for (i = view_lower_bound(v, last + 1); i < cnt; i++) {
		if (array_grow(&sel->vuids, &sel->cap, sel->n + 1,
		    sizeof(*sel->vuids)) == -1)
			return -1;
		sel->vuids[sel->n++] = view_at(v, i)->vuid;
	}
	if (sel->n != n0)
		evbuffer_add_printf(out, "* %zu EXISTS\r\n", sel->n);
	return 0;
}

void
mbox_news(struct mbox_client *c, bool expunges, bool uids,
    struct evbuffer *out)
{
	struct selected		*sel = c->sel;
	struct view		*v;
	const struct vmsg	*m;
	size_t			 i, n0;

	if (sel == NULL || sel->vuids == NULL)
		return;
	v = sel->mb->v;
	mbox_news_keywords(c, out);
	if (expunges && sel->expunges != view_expunges(v))
		notify_expunges(c, out);
	n0 = sel->n;
	if (notify_exists(c, out) == -1)
		log_sess(LOG_WARNING, c->sid, "event=notify-failed "
		    "reason=\"out of memory\"");
	if (view_modseq(v) != sel->modseq) {
		for (i = 0; i < n0; i++) {
			if ((m = view_find(v, sel->vuids[i])) == NULL ||
			    m->modseq <= sel->modseq)
				continue;
			evbuffer_add_printf(out, "* %zu FETCH (", i + 1);
			if (uids)
				evbuffer_add_printf(out, "UID %u ", m->vuid);
			evbuffer_add(out, "FLAGS ", 6);
			mbox_write_flags(out, v, m);
			evbuffer_add(out, ")\r\n", 3);
		}
		sel->modseq = view_modseq(v);
	}
}

void
mbox_changed(struct mbox *mb, struct mbox_client *by)
{
	struct selected	*sel, *next;

	/* What each of them tells its client, and when, is its own affair. */
	for (sel = mb->sessions; sel != NULL; sel = next) {
		next = sel->mb_next;
		if (sel->c != by)
			sel->c->watcher->changed(sel->c->arg);
	}
}

