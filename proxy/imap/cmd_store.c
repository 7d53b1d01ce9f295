/*
 * Changing merged mailboxes: STORE, UID STORE, EXPUNGE, UID EXPUNGE and the
 * expunge of CLOSE.
 *
 * STORE goes to every copy of a message (DESIGN §4), one UID STORE per
 * backend with .SILENT, and the view takes the result once the servers
 * said OK.  The legacy server gets flag changes unless legacy-writes is
 * none.  EXPUNGE removes the new copies on the new server; the legacy
 * copies stay where they are (the center asks users not to delete on the
 * old server during the migration; legacy-writes all lifts that) and a
 * tombstone keeps them, and any copy the migration makes later, hidden.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "protocol/imap_parser.h"
#include "protocol/seqset.h"
#include "proxy/core/log.h"
#include "proxy/core/server.h"
#include "proxy/net/backend.h"
#include "proxy/merge/mailbox.h"
#include "proxy/merge/mailbox_impl.h"
#include "proxy/merge/state.h"
#include "proxy/merge/view.h"
#include "proxy/imap/session_impl.h"

#define KEYWORDS_MAX	512

enum store_op {
	OP_SET,
	OP_ADD,
	OP_REMOVE,
};

struct store_req {
	struct imap_session	*s;
	bool			 uid, silent;
	enum store_op		 op;
	uint8_t			 bits;
	char			 keywords[KEYWORDS_MAX];
	char			*list;		/* the flags as sent upstream */
	uint32_t		*seqs;		/* targets */
	size_t			 n;
	uint32_t		*uids[BACKEND_COUNT];
	size_t			 nuids[BACKEND_COUNT];
	bool			 sent[BACKEND_COUNT], ok[BACKEND_COUNT];
	int			 pending;
	bool			 expunge, close;
	bool			 local_kw;	/* keywords stay here */
};

static void
req_free(struct store_req *q)
{
	int	 side;

	for (side = 0; side < BACKEND_COUNT; side++)
		free(q->uids[side]);
	free(q->seqs);
	free(q->list);
	free(q);
}

static int
u32_cmp(const void *a, const void *b)
{
	const uint32_t	*x = a, *y = b;

	return *x < *y ? -1 : *x > *y;
}

/* The sorted UIDs of each side's copies of the targets. */
static int
collect_uids(struct store_req *q, bool legacy)
{
	struct view		*v = mbox_view(&q->s->mc);
	const struct vmsg	*m;
	size_t			 i;
	int			 side;

	for (side = 0; side < BACKEND_COUNT; side++)
		if ((q->uids[side] = calloc(q->n + 1, sizeof(uint32_t))) ==
		    NULL)
			return -1;
	for (i = 0; i < q->n; i++) {
		if ((m = view_find(v, mbox_seq_vuid(&q->s->mc,
		    q->seqs[i]))) == NULL)
			continue;
		for (side = 0; side < BACKEND_COUNT; side++)
			if (m->uid[side] != 0 && (legacy ||
			    side == BACKEND_NEW))
				q->uids[side][q->nuids[side]++] = m->uid[side];
	}
	for (side = 0; side < BACKEND_COUNT; side++)
		if (q->nuids[side] > 0)
			qsort(q->uids[side], q->nuids[side],
			    sizeof(uint32_t), u32_cmp);
	return 0;
}

static void
send_side(struct store_req *q, int side, const char *fmt, const char *arg,
    backend_done_cb *done)
{
	struct backend	*b = q->s->mc.be[side];
	struct evbuffer	*cmd;

	if (q->nuids[side] == 0)
		return;
	if (b == NULL || !backend_ready(b) || (cmd = evbuffer_new()) == NULL) {
		q->sent[side] = true;
		q->ok[side] = false;
		return;
	}
	evbuffer_add_printf(cmd, "UID %s ", fmt);
	seqset_format_list(q->uids[side], q->nuids[side], cmd);
	if (arg != NULL)
		evbuffer_add_printf(cmd, " %s", arg);
	evbuffer_add(cmd, "", 1);
	q->sent[side] = true;
	q->pending++;
	backend_cmd(b, (const char *)evbuffer_pullup(cmd, -1), NULL, done, q);
	evbuffer_free(cmd);
}

/*
 * STORE.
 */

/* keyword set op: "a b" with add/remove/set of "c d". */
static void
kw_apply(const char *have, const char *change, enum store_op op, char *out)
{
	char	 buf[KEYWORDS_MAX], *t, *save = NULL;
	size_t	 o = 0, l;

	out[0] = '\0';
	snprintf(buf, sizeof(buf), "%s", op == OP_SET ? "" : have);
	for (t = strtok_r(buf, " ", &save); t != NULL;
	    t = strtok_r(NULL, " ", &save)) {
		bool	 listed = false;
		char	 c[KEYWORDS_MAX], *u, *s2 = NULL;

		snprintf(c, sizeof(c), "%s", change);
		for (u = strtok_r(c, " ", &s2); u != NULL;
		    u = strtok_r(NULL, " ", &s2))
			if (strcasecmp(u, t) == 0)
				listed = true;
		if (op == OP_REMOVE && listed)
			continue;
		if (op == OP_ADD && listed)
			continue;	/* re-added below */
		l = strlen(t);
		if (o + l + 2 >= KEYWORDS_MAX)
			break;
		o += (size_t)snprintf(out + o, KEYWORDS_MAX - o, "%s%s",
		    o ? " " : "", t);
	}
	if (op == OP_REMOVE)
		return;
	l = strlen(change);
	if (l > 0 && o + l + 2 < KEYWORDS_MAX)
		snprintf(out + o, KEYWORDS_MAX - o, "%s%s", o ? " " : "",
		    change);
}

static uint8_t
bits_apply(uint8_t have, uint8_t change, enum store_op op)
{
	return op == OP_SET ? change : op == OP_ADD ? have | change :
	    have & ~change;
}

static void
store_finish(struct store_req *q)
{
	struct imap_session	*s = q->s;
	struct view		*v = mbox_view(&s->mc);
	struct evbuffer		*out = evbuffer_new();
	const struct vmsg	*m;
	char			 kw[KEYWORDS_MAX];
	uint32_t		 before = s->mc.sel->modseq;
	uint32_t		 vm = view_modseq(v);
	bool			 failed = false;
	size_t			 i;
	int			 side;

	for (side = 0; side < BACKEND_COUNT; side++)
		if (q->sent[side] && !q->ok[side])
			failed = true;
	state_begin(s->store);
	for (i = 0; i < q->n; i++) {
		uint32_t vuid = mbox_seq_vuid(&s->mc, q->seqs[i]);

		uint8_t	 shown;

		if ((m = view_find(v, vuid)) == NULL)
			continue;
		shown = vmsg_flags(m);
		for (side = 0; side < BACKEND_COUNT; side++)
			if (m->uid[side] != 0 && (!q->sent[side] ||
			    q->ok[side]) && q->nuids[side] > 0)
				view_set_flags(v, vuid, side, bits_apply(
				    m->flags[side], q->bits, q->op));
		/* A legacy-only message: its new copy, when the migration
		 * makes it, gets what the user set now (DESIGN §7). */
		if (m->uid[BACKEND_NEW] == 0 && !failed &&
		    (q->bits != 0 || q->op == OP_SET) &&
		    view_want(v, vuid, bits_apply(shown, q->bits, q->op)) == -1)
			failed = true;
		kw_apply(view_keywords(v, m->kw), q->keywords, q->op, kw);
		if (q->local_kw || q->ok[vmsg_serving(m)])
			view_set_keywords(v, vuid, kw);
		if (q->silent || out == NULL)
			continue;
		evbuffer_add_printf(out, "* %u FETCH (", q->seqs[i]);
		if (q->uid)
			evbuffer_add_printf(out, "UID %u ", vuid);
		evbuffer_add_printf(out, "FLAGS ");
		mbox_write_flags(out, v, m);
		evbuffer_add(out, ")\r\n", 3);
	}
	if (state_commit(s->store) == -1)
		log_sess(LOG_WARNING, s->sid, "event=state-error op=store");
	/*
	 * The client knows the new flags: from the FETCH answers, or, with
	 * .SILENT, because it set them (RFC 9051 §6.4.6: the server SHOULD
	 * NOT send them back).  Only if nothing else changed before.
	 */
	if (before == vm)
		s->mc.sel->modseq = view_modseq(v);
	/* A keyword new to the folder is announced before a FETCH shows
	 * it (RFC 9051 §7.3.5). */
	if (s->bev != NULL)
		mbox_news_keywords(&s->mc, bufferevent_get_output(s->bev));
	if (out != NULL) {
		sess_write_buffer(s, out);
		evbuffer_free(out);
	}
	mbox_changed(s->mc.sel->mb, &s->mc);
	req_free(q);
	if (failed)
		sess_done(s, "NO [UNAVAILABLE] Flags could not be changed on "
		    "every copy");
	else
		sess_done(s, "OK STORE completed");
}

static void
store_done(struct backend *b, const struct backend_result *res, void *arg)
{
	struct store_req	*q = arg;

	q->ok[backend_side(b)] = res->status == BACKEND_OK;
	if (res->status != BACKEND_OK)
		log_sess(LOG_WARNING, q->s->sid, "event=store-failed side=%s "
		    "reason=\"%s\"", backend_name(b), res->text);
	if (--q->pending == 0)
		store_finish(q);
}

/* "+FLAGS.SILENT" and the flag list into q; false with err. */
/*
 * A keyword the folder has in another case is the folder's: keywords
 * compare without case (RFC 9051 §2.3.2) and a server keeps the spelling
 * it met first.  The spelling to show for a, from known (" $A $B").
 */
static const char *
kw_spelling(const char *known, const char *a, size_t *len)
{
	const char	*p;
	size_t		 l = strlen(a);

	for (p = known; (p = strchr(p, ' ')) != NULL; p++)
		if (strncasecmp(p + 1, a, l) == 0 &&
		    (p[l + 1] == ' ' || p[l + 1] == '\0')) {
			*len = l;
			return p + 1;
		}
	*len = l;
	return a;
}

static bool
store_parse(struct store_req *q, const struct imap_arg *args, size_t nargs,
    const char **err)
{
	const struct imap_arg	*list = &args[2];
	const char		*item, *a, *known, *kw;
	struct evbuffer		*up;
	size_t			 n = 1, i, o = 0, kwlen;
	uint8_t			 bit = 0;

	*err = "Invalid STORE arguments";
	if (nargs < 3 || !imap_arg_get_atom(&args[1], &item))
		return false;
	/* The folder's keywords, told first if some are new to the client
	 * (mbox_keywords() counts them as told). */
	if (q->s->bev != NULL)
		mbox_news_keywords(&q->s->mc,
		    bufferevent_get_output(q->s->bev));
	known = mbox_keywords(&q->s->mc);
	q->op = item[0] == '+' ? OP_ADD : item[0] == '-' ? OP_REMOVE : OP_SET;
	if (q->op != OP_SET)
		item++;
	if (strcasecmp(item, "FLAGS.SILENT") == 0)
		q->silent = true;
	else if (strcasecmp(item, "FLAGS") != 0)
		return false;
	if (nargs == 3 && args[2].type == IMAP_ARG_LIST)
		imap_arg_get_list(&args[2], &list, &n);
	else
		n = nargs - 2;
	if ((up = evbuffer_new()) == NULL)
		return false;
	for (i = 0; i < n; i++) {
		if (!imap_arg_get_atom(&list[i], &a) || (a[0] == '\\' &&
		    (bit = view_flag_bit(a)) == 0) || strpbrk(a, "()[]{}\"%*")) {
			evbuffer_free(up);
			*err = "Invalid flag";
			return false;
		}
		evbuffer_add_printf(up, "%s%s", i ? " " : "", a);
		if (a[0] == '\\')
			q->bits |= bit;
		else if ((kw = kw_spelling(known, a, &kwlen)) != NULL &&
		    o + kwlen + 2 < KEYWORDS_MAX)
			o += (size_t)snprintf(q->keywords + o,
			    KEYWORDS_MAX - o, "%s%.*s", o ? " " : "",
			    (int)kwlen, kw);
	}
	evbuffer_add(up, "", 1);
	q->list = strdup((const char *)evbuffer_pullup(up, -1));
	evbuffer_free(up);
	return q->list != NULL;
}

static void
store_run(struct imap_session *s, const struct imap_arg *args, size_t nargs,
    bool uid)
{
	static const char *const ops[] = { "FLAGS.SILENT", "+FLAGS.SILENT",
	    "-FLAGS.SILENT" };
	struct store_req	*q;
	const char		*text, *err;
	char			*arg;
	int			 side;

	if (mbox_readonly(&s->mc)) {
		sess_done(s, "NO [READ-ONLY] The folder is open read-only");
		return;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		sess_done(s, "NO [SERVERBUG] Out of memory");
		return;
	}
	q->s = s;
	q->uid = uid;
	if (!store_parse(q, args, nargs, &err) || !imap_arg_get_atom(&args[0],
	    &text) || !mbox_targets(&s->mc, text, q->uid, &q->seqs, &q->n,
	    &err) || collect_uids(q,
	    s->conf->legacy_writes != LEGACY_WRITES_NONE) == -1) {
		req_free(q);
		sess_done(s, "BAD %s", err);
		return;
	}
	if ((q->local_kw = mbox_local_keywords(&s->mc))) {
		/* Keywords stay with imapmerge: only system flags go up. */
		char	 fl[64];

		view_flag_text(q->bits, fl);
		free(q->list);
		if ((q->list = strdup(fl)) == NULL) {
			req_free(q);
			sess_done(s, "NO [SERVERBUG] Out of memory");
			return;
		}
		if (q->bits == 0 && q->op != OP_SET)
			for (side = 0; side < BACKEND_COUNT; side++)
				q->nuids[side] = 0;
	}
	if (asprintf(&arg, "%s (%s)", ops[q->op], q->list) == -1) {
		req_free(q);
		sess_done(s, "NO [SERVERBUG] Out of memory");
		return;
	}
	q->pending = 1;
	for (side = 0; side < BACKEND_COUNT; side++)
		send_side(q, side, "STORE", arg, store_done);
	free(arg);
	if (--q->pending == 0)
		store_finish(q);
}

void
cmd_store(struct imap_session *s, const struct imap_arg *args, size_t nargs)
{
	store_run(s, args, nargs, false);
}

void
cmd_uid_store(struct imap_session *s, const struct imap_arg *args,
    size_t nargs)
{
	store_run(s, args, nargs, true);
}

/*
 * EXPUNGE.
 */
static void
expunge_finish(struct store_req *q)
{
	struct imap_session	*s = q->s;
	struct view		*v = mbox_view(&s->mc);
	const struct vmsg	*m;
	bool			 failed = q->sent[BACKEND_NEW] &&
	    !q->ok[BACKEND_NEW];
	size_t			 i, gone = 0;

	/* Nothing leaves the view unless the new server let it go. */
	if (!failed) {
		state_begin(s->store);
		for (i = 0; i < q->n; i++) {
			uint32_t vuid = mbox_seq_vuid(&s->mc, q->seqs[i]);

			if ((m = view_find(v, vuid)) == NULL)
				continue;
			if (view_tombstone(v, vuid) == -1 ||
			    view_expunge(v, vuid) == -1)
				failed = true;
			gone++;
		}
		if (state_commit(s->store) == -1)
			failed = true;
		log_sess(LOG_INFO, s->sid, "event=expunge user=%s folder=\"%s\" "
		    "messages=%zu", s->user, s->mc.sel->path, gone);
	}
	mbox_changed(s->mc.sel->mb, &s->mc);
	if (q->close) {
		req_free(q);
		mbox_close(&s->mc);
		sess_enter(s, SESS_AUTH);
		sess_done(s, "OK CLOSE completed");
		return;
	}
	req_free(q);
	if (failed)
		sess_done(s, "NO [UNAVAILABLE] The new server did not expunge");
	else
		sess_done(s, "OK EXPUNGE completed");
}

static void
expunge_done(struct backend *b, const struct backend_result *res, void *arg)
{
	struct store_req	*q = arg;

	q->ok[backend_side(b)] = res->status == BACKEND_OK;
	if (res->status != BACKEND_OK)
		log_sess(LOG_WARNING, q->s->sid, "event=expunge-failed side=%s "
		    "reason=\"%s\"", backend_name(b), res->text);
	if (--q->pending == 0)
		expunge_finish(q);
}

static void
expunge_mark_done(struct backend *b, const struct backend_result *res,
    void *arg)
{
	struct store_req	*q = arg;
	int			 side = backend_side(b);

	if (res->status != BACKEND_OK) {
		expunge_done(b, res, arg);
		return;
	}
	/* UID EXPUNGE (RFC 4315) removes only ours, not what another
	 * client marked; without UIDPLUS the folder's \Deleted all go. */
	if (backend_has_cap(b, "UIDPLUS"))
		send_side(q, side, "EXPUNGE", NULL, expunge_done);
	else {
		q->pending++;
		backend_cmd(b, "EXPUNGE", NULL, expunge_done, q);
	}
	if (--q->pending == 0)
		expunge_finish(q);
}

static void
expunge_run(struct imap_session *s, const char *uidset, bool close)
{
	struct store_req	*q;
	struct view		*v = mbox_view(&s->mc);
	const struct vmsg	*m;
	const char		*err = NULL;
	uint32_t		 seq, n = mbox_count(&s->mc);
	int			 side;

	if ((q = calloc(1, sizeof(*q))) == NULL ||
	    (q->seqs = calloc(n + 1, sizeof(uint32_t))) == NULL) {
		free(q);
		sess_done(s, "NO [SERVERBUG] Out of memory");
		return;
	}
	q->s = s;
	q->close = close;
	if (uidset != NULL) {
		q->uid = true;
		free(q->seqs);
		q->seqs = NULL;
		if (!mbox_targets(&s->mc, uidset, true, &q->seqs, &q->n,
		    &err)) {
			req_free(q);
			sess_done(s, "BAD %s", err);
			return;
		}
	} else
		for (seq = 1; seq <= n; seq++)
			q->seqs[q->n++] = seq;
	/* Only what is marked \Deleted. */
	for (seq = 0, n = 0; seq < q->n; seq++)
		if ((m = view_find(v, mbox_seq_vuid(&s->mc,
		    q->seqs[seq]))) != NULL && (vmsg_flags(m) & VF_DELETED))
			q->seqs[n++] = q->seqs[seq];
	q->n = n;
	if (collect_uids(q, s->conf->legacy_writes ==
	    LEGACY_WRITES_ALL) == -1) {
		req_free(q);
		sess_done(s, "NO [SERVERBUG] Out of memory");
		return;
	}
	q->pending = 1;
	for (side = 0; side < BACKEND_COUNT; side++)
		send_side(q, side, "STORE", "+FLAGS.SILENT (\\Deleted)",
		    expunge_mark_done);
	if (--q->pending == 0)
		expunge_finish(q);
}

void
cmd_expunge(struct imap_session *s, const struct imap_arg *args,
    size_t nargs)
{
	if (mbox_readonly(&s->mc)) {
		sess_done(s, "NO [READ-ONLY] The folder is open read-only");
		return;
	}
	expunge_run(s, NULL, false);
}

void
cmd_uid_expunge(struct imap_session *s, const struct imap_arg *args,
    size_t nargs)
{
	const char	*set;

	if (nargs != 1 || !imap_arg_get_atom(&args[0], &set)) {
		sess_done(s, "BAD UID EXPUNGE needs a UID set");
		return;
	}
	if (mbox_readonly(&s->mc)) {
		sess_done(s, "NO [READ-ONLY] The folder is open read-only");
		return;
	}
	expunge_run(s, set, false);
}

/* RFC 9051 §6.4.1: CLOSE expunges silently, then leaves the folder. */
void
cmd_close(struct imap_session *s, const struct imap_arg *args, size_t nargs)
{
	if (mbox_readonly(&s->mc)) {
		mbox_close(&s->mc);
		sess_enter(s, SESS_AUTH);
		sess_done(s, "OK CLOSE completed");
		return;
	}
	expunge_run(s, NULL, true);
}
