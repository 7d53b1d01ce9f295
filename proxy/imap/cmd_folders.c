/*
 * The folder tree at login and the commands on it: LIST, LSUB, CREATE,
 * DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE.
 *
 * Discovery asks each backend for NAMESPACE and LIST (with RETURN
 * (SPECIAL-USE SUBSCRIBED) where LIST-EXTENDED allows, else LIST + LSUB),
 * both backends at once, then builds the tree.  Changes go to the new
 * server only; the legacy server is never changed — a legacy folder that is
 * renamed or deleted is recorded in the user's state and followed or
 * hidden from then on.  After a change the tree is discovered again, so
 * it always shows what the servers really have.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>

#include "protocol/imap_parser.h"
#include "protocol/imap_write.h"
#include "protocol/mutf7.h"
#include "proxy/core/log.h"
#include "proxy/core/server.h"
#include "proxy/net/backend.h"
#include "proxy/merge/folders.h"
#include "proxy/merge/mailbox_impl.h"
#include "proxy/merge/offline.h"
#include "proxy/merge/state.h"
#include "proxy/merge/user.h"
#include "proxy/imap/session_impl.h"

typedef void	 discover_cb(struct imap_session *, int ok);

struct side_list {
	struct user_list list;		/* folders, namespace prefix */
	size_t		 cap;
	int		 need_lsub;
	int		 pending;	/* commands out */
	int		 done;
	int		 failed;
	int		 down;		/* from the cache: the side is down */
};

struct discover {
	struct imap_session	*s;
	struct side_list	 side[BACKEND_COUNT];
	discover_cb		*cb;
};

static void	 discover_list(struct discover *, int side);

static void
side_clear(struct side_list *l)
{
	user_list_clear(&l->list);
	memset(l, 0, sizeof(*l));
}

void
sess_folders_free(struct imap_session *s)
{
	mbox_client_free(&s->mc);
	folders_free(&s->mc.folders);
	s->store = NULL;
	user_put(&s->mc.u);
}

/* "* LIST (attrs) sep name": one backend folder. */
static void
parse_list(struct side_list *l, const struct imap_response *r, int lsub)
{
	const struct imap_arg	*attrs;
	const char		*sep = NULL, *name, *a, *err;
	struct bfolder		*b, *nb;
	size_t			 nattrs, i, cap;
	char			*utf8;

	if (r->nargs < 3 || !imap_arg_get_list(&r->args[0], &attrs, &nattrs) ||
	    (!imap_arg_is_nil(&r->args[1]) &&
	    !imap_arg_get_string(&r->args[1], &sep)) ||
	    !imap_arg_get_astring(&r->args[2], &name))
		return;
	if ((utf8 = mutf7_decode(name, strlen(name), &err)) == NULL) {
		/* Some servers send raw UTF-8: take it if it is valid. */
		if ((utf8 = mutf7_encode(name, strlen(name), &err)) == NULL)
			return;
		free(utf8);
		if ((utf8 = strdup(name)) == NULL)
			return;
	}
	if (lsub) {
		for (i = 0; i < l->list.n; i++)
			if (strcmp(l->list.f[i].name, utf8) == 0)
				l->list.f[i].subscribed = true;
		free(utf8);
		return;
	}
	if (l->list.n == l->cap) {
		cap = l->cap ? l->cap * 2 : 32;
		if (l->list.n >= FOLDERS_MAX || (nb = reallocarray(l->list.f,
		    cap, sizeof(*nb))) == NULL) {
			free(utf8);
			return;
		}
		l->list.f = nb;
		l->cap = cap;
	}
	b = &l->list.f[l->list.n++];
	memset(b, 0, sizeof(*b));
	b->name = utf8;
	b->sep = sep != NULL && *sep != '\0' ? sep[0] : '/';
	for (i = 0; i < nattrs; i++) {
		if (!imap_arg_get_atom(&attrs[i], &a))
			continue;
		if (strcasecmp(a, "\\Noselect") == 0)
			b->noselect = true;
		else if (strcasecmp(a, "\\NonExistent") == 0)
			b->noselect = b->nonexistent = true;
		else if (strcasecmp(a, "\\Subscribed") == 0)
			b->subscribed = true;
		else if (b->special == ROLE_NONE)
			b->special = folder_role_by_special_use(a);
	}
}

static void
discover_data(struct backend *b, const struct imap_response *r, void *arg)
{
	struct discover		*d = arg;
	struct side_list	*l = &d->side[backend_side(b)];
	const struct imap_arg	*ns, *first;
	const char		*prefix;
	size_t			 n, m;

	if (imap_response_is(r, "LIST"))
		parse_list(l, r, 0);
	else if (imap_response_is(r, "LSUB"))
		parse_list(l, r, 1);
	else if (imap_response_is(r, "NAMESPACE") && r->nargs >= 1 &&
	    imap_arg_get_list(&r->args[0], &ns, &n) && n > 0 &&
	    imap_arg_get_list(&ns[0], &first, &m) && m >= 1 &&
	    imap_arg_get_string(&first[0], &prefix) && l->list.prefix == NULL) {
		char	*utf8;
		const char *err;

		if ((utf8 = mutf7_decode(prefix, strlen(prefix), &err)) !=
		    NULL)
			l->list.prefix = utf8;
	}
}

static int
follow_collect(struct imap_session *s, char ***from, char ***to, size_t *n);

static void
follow_free(char **from, char **to, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		free(from[i]);
		free(to[i]);
	}
	free(from);
	free(to);
}

/* Subscriptions said through imapmerge, from the state. */
struct sub_acc {
	char	**path;
	bool	 *on;
	size_t	  n, cap;
	int	  failed;
};

static int
sub_add(const char *path, bool on, void *arg)
{
	struct sub_acc	*a = arg;
	char		**np;
	bool		 *no;

	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 8;
		if ((np = reallocarray(a->path, a->cap, sizeof(*np))) != NULL)
			a->path = np;
		if ((no = reallocarray(a->on, a->cap, sizeof(*no))) != NULL)
			a->on = no;
		if (np == NULL || no == NULL) {
			a->failed = 1;
			return -1;
		}
	}
	if ((a->path[a->n] = strdup(path)) == NULL) {
		a->failed = 1;
		return -1;
	}
	a->on[a->n++] = on;
	return 0;
}

static int
deleted_add(const char *name, void *arg)
{
	return sub_add(name, true, arg);
}

static void
sub_free(struct sub_acc *a)
{
	size_t	 i;

	for (i = 0; i < a->n; i++)
		free(a->path[i]);
	free(a->path);
	free(a->on);
	memset(a, 0, sizeof(*a));
}

/* A side that is down shows the folders it had when last seen. */
static int
side_from_cache(struct imap_session *s, int side, struct side_list *l)
{
	const struct user_list	*c;

	side_clear(l);
	l->done = 1;
	if (s->mc.u == NULL)
		return 0;
	/* Restarted, or the user's context expired: the state has it. */
	if (!s->mc.u->lists[side].known && user_list_load(s->mc.u, side) == -1)
		log_sess(LOG_WARNING, s->sid, "event=folders-unread user=%s "
		    "backend=%s", s->user, side == BACKEND_LEGACY ? "legacy" :
		    "new");
	if (!(c = &s->mc.u->lists[side])->known || c->n == 0)
		return 0;
	if (user_list_copy(&l->list, c) == -1)
		return -1;
	l->cap = l->list.n;
	return 0;
}

static void
side_to_cache(struct imap_session *s, int side, const struct side_list *l)
{
	if (s->mc.u != NULL &&
	    user_list_copy(&s->mc.u->lists[side], &l->list) == 0) {
		s->mc.u->lists[side].known = true;
		if (user_list_save(s->mc.u, side) == -1)
			log_sess(LOG_WARNING, s->sid, "event=folders-unsaved "
			    "user=%s backend=%s", s->user, side ==
			    BACKEND_LEGACY ? "legacy" : "new");
	}
}

static void
discover_finish(struct discover *d)
{
	struct imap_session	*s = d->s;
	struct folders_input	 in;
	struct folders		*fs;
	struct sub_acc		 subs = { NULL, NULL, 0, 0, 0 };
	struct sub_acc		 deleted = { NULL, NULL, 0, 0, 0 };
	char			**from = NULL, **to = NULL;
	const char		*err;
	size_t			 nfollow = 0;
	int			 side, ok = 1;

	for (side = 0; side < BACKEND_COUNT; side++)
		if (d->side[side].failed)
			ok = 0;
	if (ok) {
		memset(&in, 0, sizeof(in));
		for (side = 0; side < BACKEND_COUNT; side++) {
			in.list[side] = d->side[side].list.f;
			in.n[side] = d->side[side].list.n;
			in.prefix[side] = d->side[side].list.prefix;
		}
		in.conf = s->conf;
		if (follow_collect(s, &from, &to, &nfollow) == 0) {
			in.follow_from = (const char *const *)from;
			in.follow_to = (const char *const *)to;
			in.nfollow = nfollow;
		}
		if (s->store != NULL && state_sub_each(s->store, sub_add,
		    &subs) == 0 && !subs.failed) {
			in.sub_path = (const char *const *)subs.path;
			in.sub_on = subs.on;
			in.nsub = subs.n;
		}
		if (s->store != NULL && state_deleted_each(s->store,
		    deleted_add, &deleted) == 0 && !deleted.failed) {
			in.deleted_new = (const char *const *)deleted.path;
			in.ndeleted_new = deleted.n;
		}
		for (side = 0; side < BACKEND_COUNT; side++)
			if (!d->side[side].down)
				side_to_cache(s, side, &d->side[side]);
		if ((fs = folders_build(&in, &err)) == NULL) {
			log_sess(LOG_WARNING, s->sid, "event=folders-failed "
			    "user=%s reason=\"%s\"", s->user, err);
			ok = 0;
		} else {
			/* The user's other sessions take it at their next
			 * command. */
			if (s->mc.u != NULL)
				user_folders_set(s->mc.u, fs);
			/* At login, and each LIST or change after it. */
			log_sess(s->mc.folders == NULL ? LOG_INFO : LOG_DEBUG,
			    s->sid, "event=folders user=%s "
			    "legacy=%zu new=%zu unified=%zu", s->user,
			    d->side[BACKEND_LEGACY].list.n,
			    d->side[BACKEND_NEW].list.n, folders_count(fs));
			folders_free(&s->mc.folders);
			s->mc.folders = fs;
		}
		follow_free(from, to, nfollow);
		sub_free(&subs);
		sub_free(&deleted);
	}
	for (side = 0; side < BACKEND_COUNT; side++)
		side_clear(&d->side[side]);
	if (d->cb != NULL)
		d->cb(s, ok);
	free(d);
}

static void
discover_step_done(struct backend *b, const struct backend_result *res,
    void *arg)
{
	struct discover		*d = arg;
	int			 side = backend_side(b), other, pending;
	struct side_list	*l = &d->side[side];

	if (res->status == BACKEND_FAILED) {
		/* Lost on the way: as if it had been down from the start. */
		pending = l->pending;
		if (!l->down && side_from_cache(d->s, side, l) == -1)
			l->failed = 1;
		l->down = 1;
		l->pending = pending;
	} else if (res->status != BACKEND_OK)
		l->failed = 1;
	else if (l->need_lsub) {
		l->need_lsub = 0;
		backend_cmd(b, "LSUB \"\" \"*\"", discover_data,
		    discover_step_done, d);
		return;
	}
	/* Each command's answer comes, even from a connection lost. */
	if (--l->pending > 0)
		return;
	l->done = 1;
	other = side == BACKEND_NEW ? BACKEND_LEGACY : BACKEND_NEW;
	if (d->side[side].done && d->side[other].done)
		discover_finish(d);
}

static void
discover_ns_done(struct backend *b, const struct backend_result *res,
    void *arg)
{
	struct discover	*d = arg;

	discover_list(d, backend_side(b));
}

static void
discover_list(struct discover *d, int side)
{
	struct backend	*b = d->s->mc.be[side];

	d->side[side].pending = 1;
	if (backend_has_cap(b, "LIST-EXTENDED") &&
	    backend_has_cap(b, "SPECIAL-USE")) {
		backend_cmd(b, "LIST \"\" \"*\" RETURN (SPECIAL-USE SUBSCRIBED)",
		    discover_data, discover_step_done, d);
		/* Subscriptions live there: those of folders that are gone
		 * too (\\NonExistent), in the same round trip; the folders
		 * that exist come twice, and the first is kept. */
		if (side == BACKEND_NEW) {
			d->side[side].pending++;
			backend_cmd(b, "LIST (SUBSCRIBED) \"\" \"*\"",
			    discover_data, discover_step_done, d);
		}
	} else {
		d->side[side].need_lsub = 1;
		backend_cmd(b, "LIST \"\" \"*\"", discover_data,
		    discover_step_done, d);
	}
}

static void
discover(struct imap_session *s, discover_cb *cb)
{
	struct discover	*d;
	int		 side;

	if ((d = calloc(1, sizeof(*d))) == NULL) {
		if (cb != NULL)
			cb(s, 0);
		return;
	}
	d->s = s;
	d->cb = cb;
	for (side = 0; side < BACKEND_COUNT; side++)
		if (!sess_side_up(s, side)) {
			if (side_from_cache(s, side, &d->side[side]) == -1)
				d->side[side].failed = 1;
			d->side[side].down = 1;
		}
	if (d->side[BACKEND_LEGACY].down && d->side[BACKEND_NEW].down) {
		discover_finish(d);
		return;
	}
	for (side = 0; side < BACKEND_COUNT; side++) {
		if (d->side[side].down)
			continue;
		if (backend_has_cap(s->mc.be[side], "NAMESPACE"))
			backend_cmd(s->mc.be[side], "NAMESPACE", discover_data,
			    discover_ns_done, d);
		else
			discover_list(d, side);
	}
}

void
sess_folders_refresh(struct imap_session *s, discover_cb *cb)
{
	discover(s, cb);
}

/*
 * A command starts: the session takes the user's newest tree, which
 * another session of the user may have read since (a folder created,
 * deleted, renamed or subscribed there).  Only here: a running command
 * may hold pointers into the tree it started with.
 */
void
sess_folders_current(struct imap_session *s)
{
	struct user	*u = s->mc.u;

	if (u == NULL || u->folders == NULL || u->folders == s->mc.folders)
		return;
	folders_free(&s->mc.folders);
	s->mc.folders = folders_ref(u->folders);
}

/*
 * State: legacy folders that follow a rename or are hidden.
 */

struct follow_acc {
	char	**from, **to;
	size_t	 n, cap;
	int	 failed;
};

static void
follow_add(const char *legacy, const char *unified, void *arg)
{
	struct follow_acc	*a = arg;
	char			**nf, **nt;

	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 8;
		nf = reallocarray(a->from, a->cap, sizeof(*nf));
		if (nf != NULL)
			a->from = nf;
		nt = reallocarray(a->to, a->cap, sizeof(*nt));
		if (nt != NULL)
			a->to = nt;
		if (nf == NULL || nt == NULL) {
			a->failed = 1;
			return;
		}
	}
	a->from[a->n] = strdup(legacy);
	a->to[a->n] = unified != NULL ? strdup(unified) : NULL;
	a->n++;
}

static int
follow_collect(struct imap_session *s, char ***from, char ***to, size_t *n)
{
	struct follow_acc	 a = { NULL, NULL, 0, 0, 0 };

	if (s->store == NULL || state_folder_each(s->store, follow_add, &a) ==
	    -1 || a.failed) {
		follow_free(a.from, a.to, a.n);
		return -1;
	}
	*from = a.from;
	*to = a.to;
	*n = a.n;
	return 0;
}

/*
 * Login.
 */

/* The hash is the user's: it is kept even if the session went meanwhile. */
static void
offline_made(int result, const char *hash, void *arg)
{
	struct user	*u = arg;

	u->hashing = false;
	if (result != 0 || state_meta_set(u->store, "offline-auth", hash) ==
	    -1)
		log_warnx("user %s: the offline password hash could not be "
		    "stored", u->name);
	else {
		memcpy(u->memo, u->memo_pending, sizeof(u->memo));
		u->memo_set = true;
		log_info("event=offline-hash-stored user=%s", u->name);
	}
	user_put(&u);
}

/*
 * The legacy server accepted the password: keep its hash for a login
 * while that server is down, unless this very password is on record.
 */
static void
offline_remember(struct imap_session *s)
{
	struct user	*u;
	char		 err[128];

	if (!s->login_online || s->mc.u == NULL || s->mc.u->hashing ||
	    !s->conf->offline_auth)
		return;
	offline_memo(s->cred.password, s->cred.passlen, s->mc.u->memo_pending);
	if (s->mc.u->memo_set && CRYPTO_memcmp(s->mc.u->memo_pending,
	    s->mc.u->memo, sizeof(s->mc.u->memo)) == 0)
		return;
	if ((u = user_get(s->srv, s->user, err, sizeof(err))) == NULL)
		return;
	u->hashing = true;
	if (offline_start(s->srv->base, NULL, s->cred.password,
	    s->cred.passlen, offline_made, u) == NULL) {
		u->hashing = false;
		user_put(&u);
	}
}

static void
login_discovered(struct imap_session *s, int ok)
{
	int	 side;

	if (!ok) {
		sess_login_reset(s);
		sess_done(s, "NO [UNAVAILABLE] The mail service is temporarily "
		    "unavailable, try again later.");
		return;
	}
	sess_authenticated(s);
	sess_parser_relax(s);
	log_sess(LOG_INFO, s->sid, "event=logged-in user=%s ip=%s "
	    "legacy=%s new=%s", s->user, s->peer,
	    sess_side_up(s, BACKEND_LEGACY) ? "up" : "down",
	    sess_side_up(s, BACKEND_NEW) ? "up" : "down");
	offline_remember(s);
	for (side = 0; side < BACKEND_COUNT; side++)
		if (!sess_side_up(s, side))
			sess_printf(s, "* OK [ALERT] %s\r\n", side ==
			    BACKEND_LEGACY ? "The old mail server cannot be "
			    "reached now: mail that is only there is listed "
			    "but cannot be opened until it is back." :
			    "The new mail server cannot be reached now: new "
			    "mail, sending copies and changes wait until it "
			    "is back.");
	sess_links_start(s);
	sess_done(s, "OK [CAPABILITY %s] Logged in", sess_capabilities(s));
}

void
sess_login_folders(struct imap_session *s)
{
	char	 err[256];

	if (s->mc.u == NULL) {
		if ((s->mc.u = user_get(s->srv, s->user, err, sizeof(err))) !=
		    NULL)
			s->store = s->mc.u->store;
		else
			log_sess(LOG_WARNING, s->sid, "event=state-unavailable "
			    "user=%s reason=\"%s\"", s->user, err);
	}
	discover(s, login_discovered);
}

/*
 * LIST and LSUB.
 */

struct list_req {
	int		 subscribed_only;
	int		 special_use_only;	/* RFC 6154 §5.1 */
	int		 ret_subscribed;
	int		 recursive;		/* RFC 5258 RECURSIVEMATCH */
	int		 lsub;
	const char	*patterns[16];
	size_t		 npatterns;
	char		*ref;
};

/*
 * How a folder is listed: because it satisfies the selection, or only
 * because a subscribed folder below it does and the pattern stops above
 * that one (RFC 3501 §6.3.9 for LSUB "%", RFC 5258 §3.5 CHILDINFO).
 */
enum list_why {
	LIST_NOT,
	LIST_SELECTED,
	LIST_PARENT,
};

static void
list_attrs(struct evbuffer *out, const struct ufolder *f,
    const struct list_req *q, enum list_why why)
{
	const char	*su;
	int		 first = 1;

#define ATTR(a)	do {							\
	evbuffer_add_printf(out, "%s%s", first ? "" : " ", a);		\
	first = 0;							\
} while (0)
	/* A subscription of a folder that is gone: \\NonExistent in LIST
	 * (RFC 5258 §3), nothing in LSUB, as Dovecot shows it. */
	if (!q->lsub && (f->placeholder || folder_gone(f)))
		ATTR("\\NonExistent");
	if ((!folder_selectable(f) && !folder_gone(f)) || (q->lsub &&
	    why == LIST_PARENT))
		ATTR("\\Noselect");
	ATTR(f->has_children ? "\\HasChildren" : "\\HasNoChildren");
	if (!q->lsub && (su = folder_role_special_use(f->role)) != NULL)
		ATTR(su);
	if ((q->ret_subscribed || q->subscribed_only) && folder_subscribed(f))
		ATTR("\\Subscribed");
#undef ATTR
}

static void
list_one(struct imap_session *s, const struct ufolder *f,
    const struct list_req *q, enum list_why why, bool childinfo)
{
	struct evbuffer	*out = evbuffer_new();
	const char	*err;
	char		*wire;

	if (out == NULL || (wire = mutf7_encode(f->path, strlen(f->path),
	    &err)) == NULL) {
		evbuffer_free(out);
		return;
	}
	evbuffer_add_printf(out, "* %s (", q->lsub ? "LSUB" : "LIST");
	list_attrs(out, f, q, why);
	evbuffer_add(out, ") \"/\" ", 6);
	imap_write_mailbox(out, wire, 0);
	if (childinfo)
		evbuffer_add_printf(out, " (CHILDINFO (\"SUBSCRIBED\"))");
	evbuffer_add(out, "\r\n", 2);
	sess_write_buffer(s, out);
	evbuffer_free(out);
	free(wire);
}

static bool
list_selected(const struct ufolder *f, const struct list_req *q)
{
	if ((q->subscribed_only || q->lsub) && !folder_subscribed(f))
		return false;
	if (q->special_use_only && folder_role_special_use(f->role) == NULL)
		return false;
	if (f->placeholder && q->lsub)
		return false;
	/* A subscription of a folder that is gone: only where
	 * subscriptions are asked for (RFC 5258 §3). */
	if (folder_gone(f) && !q->subscribed_only && !q->lsub)
		return false;
	return true;
}

/* A subscribed folder below f that pattern does not reach itself. */
static bool
subscribed_below(const struct folders *fs, const struct ufolder *f,
    const char *pattern)
{
	const struct ufolder	*d;
	size_t			 i, n = strlen(f->path);

	for (i = 0; i < folders_count(fs); i++) {
		d = folders_at(fs, i);
		if (folder_subscribed(d) && strncmp(d->path, f->path, n) ==
		    0 && d->path[n] == '/' && !folders_match(pattern, d->path))
			return true;
	}
	return false;
}

/* Whether and why f answers pattern; *childinfo for RECURSIVEMATCH. */
static enum list_why
list_wanted(const struct folders *fs, const struct ufolder *f,
    const struct list_req *q, const char *pattern, bool *childinfo)
{
	bool	 parent;

	*childinfo = false;
	if (!folders_match(pattern, f->path))
		return LIST_NOT;
	parent = (q->lsub || (q->subscribed_only && q->recursive)) &&
	    subscribed_below(fs, f, pattern);
	*childinfo = parent && !q->lsub;
	if (list_selected(f, q))
		return LIST_SELECTED;
	return parent ? LIST_PARENT : LIST_NOT;
}

static int
list_parse(const struct imap_arg *args, size_t nargs, struct list_req *q)
{
	const struct imap_arg	*l;
	const char		*a, *ref;
	size_t			 n, i, k = 0;

	if (k < nargs && imap_arg_get_list(&args[k], &l, &n)) {
		for (i = 0; i < n; i++) {
			if (!imap_arg_get_atom(&l[i], &a))
				return -1;
			if (strcasecmp(a, "SUBSCRIBED") == 0)
				q->subscribed_only = 1;
			else if (strcasecmp(a, "SPECIAL-USE") == 0)
				q->special_use_only = 1;
			else if (strcasecmp(a, "RECURSIVEMATCH") == 0)
				q->recursive = 1;
			else if (strcasecmp(a, "REMOTE") != 0)
				return -1;
		}
		/* RFC 5258 §3: never alone, nor with REMOTE only. */
		if (q->recursive && !q->subscribed_only &&
		    !q->special_use_only)
			return -1;
		k++;
	}
	if (k + 2 > nargs || !imap_arg_get_astring(&args[k], &ref))
		return -1;
	q->ref = (char *)ref;
	k++;
	if (imap_arg_get_list(&args[k], &l, &n)) {
		for (i = 0; i < n && i < 16; i++)
			if (!imap_arg_get_astring(&l[i], &q->patterns[i]))
				return -1;
		q->npatterns = i;
	} else if (imap_arg_get_astring(&args[k], &q->patterns[0]))
		q->npatterns = 1;
	else
		return -1;
	k++;
	if (k < nargs) {
		if (k + 2 != nargs || !imap_arg_atom_equals(&args[k], "RETURN") ||
		    !imap_arg_get_list(&args[k + 1], &l, &n))
			return -1;
		for (i = 0; i < n; i++) {
			if (!imap_arg_get_atom(&l[i], &a))
				return -1;
			if (strcasecmp(a, "SUBSCRIBED") == 0)
				q->ret_subscribed = 1;
			else if (strcasecmp(a, "CHILDREN") != 0 &&
			    strcasecmp(a, "SPECIAL-USE") != 0)
				return -1;
		}
	}
	return 0;
}

/* Reference and pattern are joined (RFC 9051 §6.3.9), then decoded. */
static char *
list_pattern(const char *ref, const char *pattern)
{
	const char	*err;
	char		*joined, *utf8;

	if (asprintf(&joined, "%s%s", ref, pattern) == -1)
		return NULL;
	utf8 = mutf7_decode(joined, strlen(joined), &err);
	free(joined);
	return utf8;
}

static void
list_answer(struct imap_session *s, int ok)
{
	struct list_req	*q = s->cmd_arg;
	size_t		 i, p;
	char		*pat;
	enum list_why	 why;
	bool		 childinfo;

	s->cmd_arg = NULL;
	s->cmd_arg_free = NULL;
	for (i = 0; i < folders_count(s->mc.folders); i++) {
		const struct ufolder *f = folders_at(s->mc.folders, i);

		for (p = 0; p < q->npatterns; p++) {
			if ((pat = list_pattern(q->ref, q->patterns[p])) ==
			    NULL)
				continue;
			why = list_wanted(s->mc.folders, f, q, pat,
			    &childinfo);
			free(pat);
			if (why != LIST_NOT) {
				list_one(s, f, q, why, childinfo);
				break;
			}
		}
	}
	sess_done(s, "OK %s completed", q->lsub ? "LSUB" : "LIST");
	free(q);
}

static void
list_run(struct imap_session *s, const struct imap_arg *args, size_t nargs,
    int lsub)
{
	struct list_req	*q;

	if ((q = calloc(1, sizeof(*q))) == NULL) {
		sess_done(s, "NO [SERVERBUG] Out of memory");
		return;
	}
	q->lsub = lsub;
	if (list_parse(args, nargs, q) == -1 || (lsub && (nargs != 2 ||
	    q->subscribed_only))) {
		free(q);
		sess_done(s, "BAD Invalid %s arguments", lsub ? "LSUB" : "LIST");
		return;
	}
	if (!lsub && q->npatterns == 1 && q->patterns[0][0] == '\0') {
		/* The hierarchy delimiter and root. */
		free(q);
		sess_printf(s, "* LIST (\\Noselect) \"/\" \"\"\r\n");
		sess_done(s, "OK LIST completed");
		return;
	}
	/*
	 * What the servers hold now: a folder made or removed on a server
	 * directly shows (where a server cannot answer, what it had).
	 */
	s->cmd_arg = q;
	s->cmd_arg_free = free;
	discover(s, list_answer);
}

void
cmd_list(struct imap_session *s, const struct imap_arg *args, size_t nargs)
{
	list_run(s, args, nargs, 0);
}

void
cmd_lsub(struct imap_session *s, const struct imap_arg *args, size_t nargs)
{
	list_run(s, args, nargs, 1);
}

/*
 * CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE.
 */

/*
 * A client's mailbox argument as a unified UTF-8 path.  NULL with the
 * answer in *why: BAD for an argument that is no astring; NO for one that
 * is but names no possible mailbox (invalid modified UTF-7, a wildcard,
 * an empty level): the command is valid, the mailbox cannot exist.
 */
char *
sess_mailbox_arg(const struct imap_arg *arg, const char **why)
{
	const char	*name, *err;
	char		*utf8;
	size_t		 len;

	*why = "BAD Invalid mailbox name";
	if (!imap_arg_get_astring(arg, &name))
		return NULL;
	*why = "NO [CANNOT] Invalid mailbox name";
	if ((utf8 = mutf7_decode(name, strlen(name), &err)) == NULL)
		return NULL;
	len = strlen(utf8);
	while (len > 0 && utf8[len - 1] == '/')
		utf8[--len] = '\0';
	if (len == 0 || len >= FOLDER_PATH_MAX || strstr(utf8, "//") != NULL ||
	    utf8[0] == '/' || strpbrk(utf8, "*%") != NULL) {
		free(utf8);
		return NULL;
	}
	if (strncasecmp(utf8, "INBOX", 5) == 0 && (utf8[5] == '\0' ||
	    utf8[5] == '/'))
		memcpy(utf8, "INBOX", 5);
	return utf8;
}

static void
change_discovered(struct imap_session *s, int ok)
{
	sess_done(s, "OK %s", ok ? "completed" : "completed (folder list "
	    "could not be refreshed)");
}

/* A server's refusal (or absence) as the client's answer. */
static void
change_refused(struct imap_session *s, const struct backend_result *res)
{
	if (res->status == BACKEND_FAILED)
		sess_done(s, "NO [UNAVAILABLE] The new server is not available");
	else
		sess_done(s, "NO %s%s%s", res->code ? "[" : "",
		    res->code ? res->code : "", res->code ? "] failed" :
		    "Operation failed on the server");
}

/* CREATE: a folder the copier made again, hidden until now, is there
 * already on the server: it is the one the client asked for. */
static void
create_done(struct backend *b, const struct backend_result *res, void *arg)
{
	struct imap_session	*s = arg;

	if (sess_new_made(res))
		discover(s, change_discovered);
	else
		change_refused(s, res);
}

/* "CREATE name" etc. on the new server, name in its wire form. */
static void
new_cmd(struct imap_session *s, const char *verb, const char *path,
    const char *path2, backend_done_cb *done, void *arg)
{
	struct evbuffer	*cmd = evbuffer_new();
	const char	*err;
	char		*w1, *w2 = NULL;

	w1 = mutf7_encode(path, strlen(path), &err);
	if (path2 != NULL)
		w2 = mutf7_encode(path2, strlen(path2), &err);
	if (cmd == NULL || w1 == NULL || (path2 != NULL && w2 == NULL)) {
		sess_done(s, "NO Invalid mailbox name");
		goto out;
	}
	evbuffer_add_printf(cmd, "%s ", verb);
	imap_write_mailbox(cmd, w1, IMAP_WRITE_NONSYNC);
	if (w2 != NULL) {
		evbuffer_add(cmd, " ", 1);
		imap_write_mailbox(cmd, w2, IMAP_WRITE_NONSYNC);
	}
	evbuffer_add(cmd, "", 1);
	backend_cmd(s->mc.be[BACKEND_NEW], (char *)evbuffer_pullup(cmd, -1),
	    NULL, done, arg);
 out:
	evbuffer_free(cmd);
	free(w1);
	free(w2);
}

void
cmd_create(struct imap_session *s, const struct imap_arg *args, size_t nargs)
{
	const char	*why;
	char		*path;

	if (nargs < 1) {
		sess_done(s, "BAD CREATE needs a mailbox");
		return;
	}
	if ((path = sess_mailbox_arg(&args[0], &why)) == NULL) {
		sess_done(s, "%s", why);
		return;
	}
	if (folders_find(s->mc.folders, path) != NULL &&
	    !folders_find(s->mc.folders, path)->placeholder) {
		sess_done(s, "NO [ALREADYEXISTS] Mailbox already exists");
		free(path);
		return;
	}
	/* Made again by the user: what the copier made under this name
	 * since the user deleted it shows again too. */
	if (s->store != NULL && state_deleted_set(s->store, path, false) ==
	    -1) {
		sess_done(s, "NO [SERVERBUG] Cannot record the change");
		free(path);
		return;
	}
	new_cmd(s, "CREATE", path, NULL, create_done, s);
	free(path);
}

static int
record_follow(struct imap_session *s, const struct ufolder *f,
    const char *to)
{
	if (!f->part[BACKEND_LEGACY].present)
		return 0;
	if (s->store == NULL ||
	    state_folder_follow(s->store, f->part[BACKEND_LEGACY].name, to) ==
	    -1)
		return -1;
	log_sess(LOG_INFO, s->sid, "event=legacy-folder-%s user=%s "
	    "legacy=\"%s\"%s%s%s", to ? "follows" : "hidden", s->user,
	    f->part[BACKEND_LEGACY].name, to ? " unified=\"" : "",
	    to ? to : "", to ? "\"" : "");
	return 0;
}

/*
 * DELETE and RENAME.  The new server decides first: only once it has
 * done it are the view and the state changed (the legacy folder hidden or
 * following the new name), so a refused command changes nothing.  A
 * folder only the legacy server has changes in the state alone.
 */
struct folder_change {
	struct imap_session	*s;
	char			*path;		/* unified */
	char			*to;		/* RENAME; NULL for DELETE */
};

/* The roles every client relies on keep their folders (DESIGN §5). */
static const char *
change_fixed(const struct folders *fs, const char *path)
{
	const struct ufolder	*f;
	size_t			 i, n = strlen(path);

	for (i = 0; i < folders_count(fs); i++) {
		f = folders_at(fs, i);
		if (f->role == ROLE_NONE || f->role == ROLE_ARCHIVE)
			continue;
		if (strncmp(f->path, path, n) == 0 && (f->path[n] == '\0' ||
		    f->path[n] == '/'))
			return folder_role_name(f->role);
	}
	return NULL;
}

static void
change_free(void *arg)
{
	struct folder_change	*fc = arg;

	free(fc->path);
	free(fc->to);
	free(fc);
}

/*
 * In one transaction: what the legacy folder does now (follows to, or is
 * hidden), the view's rows (moved or dropped), and the name the user
 * deleted (kept, so the copier making it again brings nothing back) or
 * took again (RENAME to it).
 */
static int
change_record(struct imap_session *s, const struct ufolder *f,
    const char *to)
{
	struct state	*st = s->store;

	if (st == NULL)
		return record_follow(s, f, to);
	if (state_begin(st) == -1)
		return -1;
	if (record_follow(s, f, to) == -1 ||
	    (to != NULL ? state_folder_rename(st, f->path, to) :
	    state_folder_drop(st, f->path)) == -1 ||
	    state_deleted_set(st, to != NULL ? to : f->path, to == NULL) ==
	    -1) {
		state_rollback(st);
		return -1;
	}
	return state_commit(st);
}

/* The servers have done it: the view and the state follow. */
static void
change_apply(struct folder_change *fc)
{
	struct imap_session	*s = fc->s;
	const struct ufolder	*f = folders_find(s->mc.folders, fc->path);

	if (f != NULL && change_record(s, f, fc->to) == -1) {
		log_sess(LOG_WARNING, s->sid, "event=folder-change-unrecorded "
		    "user=%s folder=\"%s\"", s->user, fc->path);
		sess_done(s, "NO [SERVERBUG] Cannot record the change");
		return;
	}
	/* RENAME: the view's rows moved with it (same vuids, same
	 * UIDVALIDITY). */
	if (s->mc.u != NULL)
		mbox_renamed(s->mc.u, fc->path, fc->to);
	if (fc->to == NULL && s->mc.sel != NULL &&
	    strcmp(s->mc.sel->path, fc->path) == 0) {
		/* Dovecot ends a session whose folder is deleted; ours goes
		 * on, unselected, and says so. */
		mbox_close(&s->mc);
		sess_enter(s, SESS_AUTH);
		sess_printf(s, "* OK [CLOSED] The selected folder was "
		    "deleted\r\n");
	}
	discover(s, change_discovered);
}

static void
change_answered(struct backend *b, const struct backend_result *res,
    void *arg)
{
	struct folder_change	*fc = arg;
	struct imap_session	*s = fc->s;

	s->cmd_arg = NULL;
	s->cmd_arg_free = NULL;
	if (res->status == BACKEND_OK)
		change_apply(fc);
	else {
		log_sess(LOG_WARNING, s->sid, "event=folder-change-refused "
		    "user=%s command=%s folder=\"%s\" reason=\"%s\"", s->user,
		    fc->to != NULL ? "RENAME" : "DELETE", fc->path,
		    res->text != NULL ? res->text : "-");
		/* The folder stays: so does the backend's selection. */
		if (fc->to == NULL)
			mbox_reselect_side(&s->mc, BACKEND_NEW);
		change_refused(s, res);
	}
	change_free(fc);
}

static void
folder_change(struct imap_session *s, const struct ufolder *f,
    const char *to)
{
	struct folder_change	*fc;

	if ((fc = calloc(1, sizeof(*fc))) == NULL ||
	    (fc->path = strdup(f->path)) == NULL ||
	    (to != NULL && (fc->to = strdup(to)) == NULL)) {
		if (fc != NULL)
			change_free(fc);
		sess_done(s, "NO [SERVERBUG] Out of memory");
		return;
	}
	fc->s = s;
	if (!f->part[BACKEND_NEW].present) {
		change_apply(fc);
		change_free(fc);
		return;
	}
	if (to == NULL)
		mbox_release_part(&s->mc, BACKEND_NEW,
		    f->part[BACKEND_NEW].name);
	s->cmd_arg = fc;		/* the session's while it waits */
	s->cmd_arg_free = change_free;
	new_cmd(s, to != NULL ? "RENAME" : "DELETE",
	    f->part[BACKEND_NEW].name, to, change_answered, fc);
}

void
cmd_delete(struct imap_session *s, const struct imap_arg *args, size_t nargs)
{
	const struct ufolder	*f;
	const char		*why, *role;
	char			*path;

	if (nargs != 1) {
		sess_done(s, "BAD DELETE needs one mailbox");
		return;
	}
	if ((path = sess_mailbox_arg(&args[0], &why)) == NULL) {
		sess_done(s, "%s", why);
		return;
	}
	if ((f = folders_find(s->mc.folders, path)) == NULL || f->placeholder)
		sess_done(s, "NO [NONEXISTENT] No such mailbox");
	else if (f->role == ROLE_INBOX)
		sess_done(s, "NO [CANNOT] INBOX cannot be deleted");
	else if ((role = change_fixed(s->mc.folders, f->path)) != NULL)
		sess_done(s, "NO [CANNOT] This is (or holds) the %s folder, "
		    "which mail clients and the migration rely on: it cannot "
		    "be deleted", role);
	else
		folder_change(s, f, NULL);
	free(path);
}

void
cmd_rename(struct imap_session *s, const struct imap_arg *args, size_t nargs)
{
	const struct ufolder	*f;
	const char		*why, *role;
	char			*from, *to = NULL;

	if (nargs != 2) {
		sess_done(s, "BAD RENAME needs two mailboxes");
		return;
	}
	if ((from = sess_mailbox_arg(&args[0], &why)) == NULL ||
	    (to = sess_mailbox_arg(&args[1], &why)) == NULL) {
		free(from);
		sess_done(s, "%s", why);
		return;
	}
	if ((f = folders_find(s->mc.folders, from)) == NULL || f->placeholder)
		sess_done(s, "NO [NONEXISTENT] No such mailbox");
	else if (f->role == ROLE_INBOX)
		sess_done(s, "NO [CANNOT] Renaming INBOX is not supported");
	else if ((role = change_fixed(s->mc.folders, f->path)) != NULL)
		sess_done(s, "NO [CANNOT] This is (or holds) the %s folder, "
		    "which mail clients and the migration rely on: it cannot "
		    "be renamed", role);
	else if (folders_find(s->mc.folders, to) != NULL)
		sess_done(s, "NO [ALREADYEXISTS] Mailbox already exists");
	else
		folder_change(s, f, to);
	free(from);
	free(to);
}

/*
 * SUBSCRIBE and UNSUBSCRIBE: the subscription belongs to the unified
 * folder and is kept in the state, where it decides over what the servers
 * say (the copier creates folders unsubscribed).  A folder the new server
 * has is told there too, under its name there, and its answer is the
 * client's; a folder only the legacy server has is only recorded (the
 * legacy server is never changed).
 */
struct sub_req {
	struct imap_session	*s;
	char			*path;		/* unified; NULL: not a folder */
	bool			 on;
};

static void
sub_req_free(void *arg)
{
	struct sub_req	*q = arg;

	free(q->path);
	free(q);
}

static int
sub_record(struct imap_session *s, const char *path, bool on)
{
	if (s->store == NULL || state_sub_set(s->store, path, on) == -1) {
		log_sess(LOG_WARNING, s->sid, "event=state-error user=%s "
		    "reason=\"subscription of %s not recorded\"", s->user,
		    path);
		return -1;
	}
	return 0;
}

static void
sub_answered(struct backend *b, const struct backend_result *res, void *arg)
{
	struct sub_req		*q = arg;
	struct imap_session	*s = q->s;

	s->cmd_arg = NULL;
	s->cmd_arg_free = NULL;
	if (res->status != BACKEND_OK)
		change_refused(s, res);
	else if (q->path != NULL && sub_record(s, q->path, q->on) == -1)
		sess_done(s, "NO [SERVERBUG] Cannot record the subscription");
	else
		discover(s, change_discovered);
	sub_req_free(q);
}

static void
subscription(struct imap_session *s, const struct imap_arg *args,
    size_t nargs, const char *verb)
{
	const struct ufolder	*f;
	struct sub_req		*q;
	const char		*why;
	char			*path;
	bool			 on = strcmp(verb, "SUBSCRIBE") == 0;

	if (nargs != 1) {
		sess_done(s, "BAD %s needs one mailbox", verb);
		return;
	}
	if ((path = sess_mailbox_arg(&args[0], &why)) == NULL) {
		sess_done(s, "%s", why);
		return;
	}
	f = folders_find(s->mc.folders, path);
	if (f != NULL && !f->placeholder && !f->part[BACKEND_NEW].present) {
		/* Only the legacy server has it: ours alone to keep. */
		if (sub_record(s, f->path, on) == -1)
			sess_done(s, "NO [SERVERBUG] Cannot record the "
			    "subscription");
		else
			discover(s, change_discovered);
		free(path);
		return;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		free(path);
		sess_done(s, "NO [SERVERBUG] Out of memory");
		return;
	}
	q->s = s;
	q->on = on;
	if (f != NULL && !f->placeholder && (q->path = strdup(f->path)) ==
	    NULL) {
		sub_req_free(q);
		free(path);
		sess_done(s, "NO [SERVERBUG] Out of memory");
		return;
	}
	s->cmd_arg = q;
	s->cmd_arg_free = sub_req_free;
	/* Subscriptions live on the new server, under its names. */
	new_cmd(s, verb, f != NULL && f->part[BACKEND_NEW].present ?
	    f->part[BACKEND_NEW].name : path, NULL, sub_answered, q);
	free(path);
}

void
cmd_subscribe(struct imap_session *s, const struct imap_arg *args,
    size_t nargs)
{
	subscription(s, args, nargs, "SUBSCRIBE");
}

void
cmd_unsubscribe(struct imap_session *s, const struct imap_arg *args,
    size_t nargs)
{
	subscription(s, args, nargs, "UNSUBSCRIBE");
}
