/*
 * COPY, MOVE, UID COPY, UID MOVE (RFC 9051 §6.4.7, RFC 6851) with COPYUID
 * (RFC 4315): the copies are made on the new server (DESIGN §7).
 *
 * A message that has a copy on the new server is copied there by the
 * server itself, all of them with one UID COPY (UID MOVE for a move where
 * the server offers it).  A message only the legacy server has is read
 * from it and appended to the new server, flags and internal date kept,
 * one at a time.  The copies are recorded in the target's view from the
 * servers' COPYUID and APPENDUID, so the client gets their vuids at once.
 *
 * A move hides its sources (tombstones, DESIGN §5) only after every copy
 * is confirmed.  Before the first copy is made, each source is written to
 * the `moving` table; the row goes in the same transaction that records
 * the copies and hides the sources.  If imapmerge dies in between, the
 * next sync of the target finds the copies that were made and hides their
 * sources then (mbox_settle_moves).  So a message is never in neither
 * folder, and once the target has been looked at, never in both.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "protocol/imap_parser.h"
#include "protocol/imap_write.h"
#include "protocol/msgkey.h"
#include "protocol/mutf7.h"
#include "protocol/seqset.h"
#include "proxy/core/log.h"
#include "proxy/core/server.h"
#include "proxy/net/backend.h"
#include "proxy/merge/folders.h"
#include "proxy/merge/mailbox.h"
#include "proxy/merge/mailbox_impl.h"
#include "proxy/merge/state.h"
#include "proxy/merge/view.h"
#include "proxy/imap/session_impl.h"

struct copy_item {
	uint32_t	 vuid;		/* the source */
	uint32_t	 uid;		/* its copy on side */
	int		 side;		/* NEW: server copy; LEGACY: append */
	uint64_t	 keyh;		/* what the target's copy pairs by */
	uint32_t	 size, idate;
	uint8_t		 flags;
	char		*keywords;
	char		*key, *akey;	/* texts, for the target's record */
	bool		 done;		/* the server confirmed the copy */
	uint32_t	 dst_uid;	/* on the new server, if it said */
	uint32_t	 dst_vuid;
};

struct copy_req {
	struct imap_session	*s;
	bool			 move, uid;
	char			*src;		/* the selected folder */
	char			*dst;		/* the target's unified path */
	char			*wire;		/* its new part, as sent */
	bool			 create, created;
	struct copy_item	*it;
	size_t			 n;
	size_t			 next;		/* legacy-only: next to copy */
	uint32_t		 dst_uv;	/* new server's UIDVALIDITY */
	bool			 server_moved;	/* UID MOVE did the sources */
	size_t			 unknown;	/* copied, UID not told */
	int			 stage;		/* cp_after() */
	struct evbuffer		*body;		/* legacy message in transit */
	bool			 failed;
	char			 why[160];
};

static void	 cp_next_legacy(struct copy_req *);
static void	 cp_finish(struct copy_req *);

static void
cp_free(struct copy_req *q)
{
	size_t	 i;

	for (i = 0; i < q->n; i++) {
		free(q->it[i].keywords);
		free(q->it[i].key);
		free(q->it[i].akey);
	}
	free(q->it);
	if (q->body != NULL)
		evbuffer_free(q->body);
	free(q->src);
	free(q->dst);
	free(q->wire);
	free(q);
}

static void
cp_fail(struct copy_req *q, const char *why)
{
	if (!q->failed)
		snprintf(q->why, sizeof(q->why), "%s", why);
	q->failed = true;
}

/* A COPYUID set, expanded in its own order; NULL on a bad set. */
static uint32_t *
uid_expand(const char *text, size_t *n)
{
	uint32_t	*v = NULL, lo, hi, x;
	size_t		 cap = 0;
	char		*end;

	*n = 0;
	while (*text != '\0') {
		lo = hi = (uint32_t)strtoul(text, &end, 10);
		if (end == text || lo == 0)
			goto bad;
		if (*end == ':') {
			text = end + 1;
			hi = (uint32_t)strtoul(text, &end, 10);
			if (end == text || hi == 0)
				goto bad;
		}
		for (x = lo;; x += lo <= hi ? 1 : -1) {
			if (*n == cap) {
				uint32_t *nv;

				cap = cap ? cap * 2 : 64;
				if (cap > 10000000 || (nv = reallocarray(v, cap,
				    sizeof(*v))) == NULL)
					goto bad;
				v = nv;
			}
			v[(*n)++] = x;
			if (x == hi)
				break;
		}
		if (*end == ',')
			end++;
		else if (*end != '\0')
			goto bad;
		text = end;
	}
	return v;
 bad:
	free(v);
	*n = 0;
	return NULL;
}

/*
 * Messages on the new server: one UID COPY (or UID MOVE).
 */
static void
cp_copyuid(struct copy_req *q, const struct imap_arg *args, size_t n)
{
	const char	*uv, *from, *to;
	uint32_t	*src, *dst;
	size_t		 ns, nd, i, j;

	if (n != 3 || !imap_arg_get_atom(&args[0], &uv) ||
	    !imap_arg_get_atom(&args[1], &from) ||
	    !imap_arg_get_atom(&args[2], &to))
		return;
	q->dst_uv = (uint32_t)strtoul(uv, NULL, 10);
	src = uid_expand(from, &ns);
	dst = uid_expand(to, &nd);
	if (src != NULL && dst != NULL && ns == nd)
		for (i = 0; i < ns; i++)
			for (j = 0; j < q->n; j++)
				if (q->it[j].side == BACKEND_NEW &&
				    q->it[j].uid == src[i]) {
					q->it[j].dst_uid = dst[i];
					break;
				}
	free(src);
	free(dst);
}

/* RFC 6851: UID MOVE tells its COPYUID in an untagged OK. */
static void
cp_server_data(struct backend *b, const struct imap_response *r, void *arg)
{
	struct copy_req	*q = arg;

	if (r->status == IMAP_STATUS_OK && r->code != NULL &&
	    strcasecmp(r->code, "COPYUID") == 0)
		cp_copyuid(q, r->code_args, r->ncode_args);
}

static void
cp_server_done(struct backend *b, const struct backend_result *res,
    void *arg)
{
	struct copy_req	*q = arg;

	if (res->status == BACKEND_OK) {
		size_t	 i;

		if (res->code != NULL && strcasecmp(res->code, "COPYUID") == 0)
			cp_copyuid(q, res->code_args, res->ncode_args);
		for (i = 0; i < q->n; i++)
			if (q->it[i].side == BACKEND_NEW)
				q->it[i].done = true;
	} else {
		q->server_moved = false;
		cp_fail(q, res->status == BACKEND_FAILED ?
		    "NO [UNAVAILABLE] The new server is not available" :
		    "NO The new server refused the copy");
		log_sess(LOG_INFO, q->s->sid, "event=copy-refused user=%s "
		    "folder=\"%s\" reason=\"%s\"", q->s->user, q->dst,
		    res->text);
	}
	cp_next_legacy(q);
}

static void
cp_server(struct copy_req *q)
{
	struct backend	*b = q->s->mc.be[BACKEND_NEW];
	struct evbuffer	*cmd;
	uint32_t	*uids;
	size_t		 i, n = 0;

	if ((uids = calloc(q->n + 1, sizeof(*uids))) == NULL) {
		cp_fail(q, "NO [SERVERBUG] Out of memory");
		cp_next_legacy(q);
		return;
	}
	for (i = 0; i < q->n; i++)
		if (q->it[i].side == BACKEND_NEW)
			uids[n++] = q->it[i].uid;
	if (n == 0 || (cmd = evbuffer_new()) == NULL) {
		free(uids);
		cp_next_legacy(q);
		return;
	}
	q->server_moved = q->move && backend_has_cap(b, "MOVE");
	evbuffer_add_printf(cmd, "UID %s ", q->server_moved ? "MOVE" : "COPY");
	seqset_format_list(uids, n, cmd);
	evbuffer_add(cmd, " ", 1);
	imap_write_mailbox(cmd, q->wire, backend_has_cap(b, "LITERAL+") ?
	    IMAP_WRITE_NONSYNC : 0);
	evbuffer_add(cmd, "", 1);
	backend_cmd(b, (const char *)evbuffer_pullup(cmd, -1), cp_server_data,
	    cp_server_done, q);
	evbuffer_free(cmd);
	free(uids);
}

/*
 * Messages only the legacy server has: fetch, then append to new.
 */
static void
cp_appended(struct backend *b, const struct backend_result *res, void *arg)
{
	struct copy_req		*q = arg;
	struct copy_item	*it = &q->it[q->next];

	if (res->status == BACKEND_OK)
		it->done = true;
	if (res->status == BACKEND_OK && res->code != NULL &&
	    strcasecmp(res->code, "APPENDUID") == 0 && res->ncode_args == 2) {
		uint32_t	 uv = 0;

		imap_arg_get_number(&res->code_args[0], &uv);
		imap_arg_get_number(&res->code_args[1], &it->dst_uid);
		if (q->dst_uv != 0 && q->dst_uv != uv)
			it->dst_uid = 0;	/* a sync finds it */
		else
			q->dst_uv = uv;
	} else if (res->status != BACKEND_OK)
		cp_fail(q, res->status == BACKEND_FAILED ?
		    "NO [UNAVAILABLE] The new server is not available" :
		    "NO The new server refused a message");
	q->next++;
	cp_next_legacy(q);
}

static void
cp_fetch_data(struct backend *b, const struct imap_response *r, void *arg)
{
	struct copy_req		*q = arg;
	const struct imap_arg	*items;
	const char		*name;
	size_t			 n, i;

	if (!imap_response_is(r, "FETCH") || r->nargs < 1 ||
	    !imap_arg_get_list(&r->args[0], &items, &n))
		return;
	for (i = 0; i + 1 < n; i += 2)
		if (imap_arg_get_atom(&items[i], &name) &&
		    strcasecmp(name, "BODY[]") == 0 &&
		    (items[i + 1].type == IMAP_ARG_LITERAL ||
		    items[i + 1].type == IMAP_ARG_QUOTED)) {
			evbuffer_drain(q->body, evbuffer_get_length(q->body));
			evbuffer_add(q->body, items[i + 1].v.str,
			    items[i + 1].len);
		}
}

/* The message is in q->body: its key, then the APPEND. */
static void
cp_fetched(struct backend *b, const struct backend_result *res, void *arg)
{
	struct copy_req		*q = arg;
	struct copy_item	*it = &q->it[q->next];
	struct backend		*nb = q->s->mc.be[BACKEND_NEW];
	struct msgkey		 k;
	struct evbuffer_ptr	 p;
	const char		*key, *akey;
	size_t			 len = evbuffer_get_length(q->body), hl;
	char			 date[64], *cmd;

	if (res->status != BACKEND_OK || len == 0) {
		cp_fail(q, res->status == BACKEND_FAILED ?
		    "NO [UNAVAILABLE] The legacy server is not available" :
		    "NO A message could not be read from the legacy server");
		q->next++;
		cp_next_legacy(q);
		return;
	}
	p = evbuffer_search(q->body, "\r\n\r\n", 4, NULL);
	hl = p.pos != -1 ? (size_t)p.pos + 2 : len;
	msgkey_parse((const char *)evbuffer_pullup(q->body, hl), hl, &k);
	mbox_keys(&k, BACKEND_NEW, &key, &akey);
	free(it->key);
	free(it->akey);
	it->key = strdup(key);
	it->akey = akey != NULL ? strdup(akey) : NULL;
	mbox_format_idate(it->idate, date, sizeof(date));
	if ((cmd = sess_new_append(nb, q->wire, it->flags, it->keywords,
	    date)) == NULL) {
		cp_fail(q, "NO [SERVERBUG] Out of memory");
		q->next++;
		cp_next_legacy(q);
		return;
	}
	backend_cmd_upload(nb, cmd, len, NULL, NULL, cp_appended, q);
	free(cmd);
	backend_upload_add(nb, q->body, len);
}

static void
cp_next_legacy(struct copy_req *q)
{
	struct backend		*lb = q->s->mc.be[BACKEND_LEGACY];
	char			 cmd[64];

	while (q->next < q->n && q->it[q->next].side != BACKEND_LEGACY)
		q->next++;
	if (q->next >= q->n) {
		cp_finish(q);
		return;
	}
	if (lb == NULL || !backend_ready(lb)) {
		cp_fail(q, "NO [UNAVAILABLE] The legacy server is not "
		    "available");
		q->next = q->n;
		cp_finish(q);
		return;
	}
	if (q->body == NULL && (q->body = evbuffer_new()) == NULL) {
		cp_fail(q, "NO [SERVERBUG] Out of memory");
		q->next = q->n;
		cp_finish(q);
		return;
	}
	evbuffer_drain(q->body, evbuffer_get_length(q->body));
	snprintf(cmd, sizeof(cmd), "UID FETCH %u (BODY.PEEK[])",
	    q->it[q->next].uid);
	backend_cmd(lb, cmd, cp_fetch_data, cp_fetched, q);
}

/*
 * The end: record the copies, hide moved sources, answer.
 */
static void
cp_answer(struct copy_req *q)
{
	struct imap_session	*s = q->s;
	struct evbuffer		*out = evbuffer_new();
	uint32_t		*src = NULL, *dst = NULL;
	size_t			 i, n = 0;
	const char		*verb = q->move ? "MOVE" : "COPY";

	if (out != NULL && (src = calloc(q->n + 1, sizeof(*src))) != NULL &&
	    (dst = calloc(q->n + 1, sizeof(*dst))) != NULL)
		for (i = 0; i < q->n; i++)
			if (q->it[i].dst_vuid != 0) {
				src[n] = q->it[i].vuid;
				dst[n++] = q->it[i].dst_vuid;
			}
	if (n > 0 && !q->failed) {
		evbuffer_add_printf(out, "[COPYUID %u ", q->dst_uv);
		seqset_format_list(src, n, out);
		evbuffer_add(out, " ", 1);
		seqset_format_list(dst, n, out);
		evbuffer_add(out, "] ", 2);
	}
	evbuffer_add(out, "", 1);
	if (q->move && n > 0 && !q->failed)
		sess_printf(s, "* OK %s\r\n", (char *)evbuffer_pullup(out, -1));
	if (q->failed)
		sess_done(s, "%s", q->why);
	else if (q->move)
		sess_done(s, "OK %s completed", verb);
	else
		sess_done(s, "OK %s%s completed", (char *)evbuffer_pullup(out,
		    -1), verb);
	free(src);
	free(dst);
	if (out != NULL)
		evbuffer_free(out);
	cp_free(q);
}

/*
 * After the copies are recorded, in order: remove the sources of a move
 * on the new server where UID MOVE did not, read the folder list again if
 * the target was created, find copies whose UID the server did not tell,
 * answer.
 */
static void	 cp_after(struct copy_req *);

static void
cp_after_cmd(struct backend *b, const struct backend_result *res, void *arg)
{
	struct copy_req	*q = arg;

	if (res->status != BACKEND_OK)
		log_sess(LOG_WARNING, q->s->sid, "event=move-cleanup-failed "
		    "user=%s folder=\"%s\" reason=\"%s\"", q->s->user, q->src,
		    res->text);
	cp_after(q);
}

static void
cp_after_folders(struct imap_session *s, int ok)
{
	cp_after(s->cmd_arg);
}

static void
cp_after_sync(struct mbox_client *c, bool ok, struct view *v,
    const char *why)
{
	struct imap_session	*s = c->arg;
	struct copy_req		*q = s->cmd_arg;
	const struct vmsg	*m;
	size_t			 i;

	for (i = 0; ok && v != NULL && i < q->n; i++)
		if (q->it[i].dst_vuid == 0 && q->it[i].dst_uid != 0 &&
		    (m = view_by_uid(v, BACKEND_NEW, q->it[i].dst_uid)) != NULL)
			q->it[i].dst_vuid = m->vuid;
	cp_after(q);
}

static bool
cp_cleanup(struct copy_req *q)
{
	uint32_t	*uids;
	size_t		 i, n = 0;

	if (!q->move || q->server_moved || (uids = calloc(q->n + 1,
	    sizeof(*uids))) == NULL)
		return false;
	for (i = 0; i < q->n; i++)
		if (q->it[i].side == BACKEND_NEW && q->it[i].done)
			uids[n++] = q->it[i].uid;
	if (n > 0)
		mbox_expunge_uids(q->s->mc.be[BACKEND_NEW], uids, n,
		    cp_after_cmd, q);
	free(uids);
	return n > 0;
}

static void
cp_after(struct copy_req *q)
{
	struct imap_session	*s = q->s;
	const struct ufolder	*f;

	s->cmd_arg = q;
	switch (q->stage++) {
	case 0:
		if (cp_cleanup(q))
			return;
		/* FALLTHROUGH */
	case 1:
		q->stage = 2;
		if (q->created) {
			sess_folders_refresh(s, cp_after_folders);
			return;
		}
		/* FALLTHROUGH */
	case 2:
		q->stage = 3;
		if (q->unknown > 0 &&
		    (f = folders_find(s->mc.folders, q->dst)) != NULL) {
			/* The sync also settles the move's journal. */
			mbox_status(&s->mc, f, cp_after_sync);
			return;
		}
		/* FALLTHROUGH */
	default:
		s->cmd_arg = NULL;
		cp_answer(q);
	}
}

static void
cp_finish(struct copy_req *q)
{
	struct imap_session	*s = q->s;
	struct state		*st = s->store;
	struct view		*v = mbox_view(&s->mc);
	struct bmsg		*b;
	uint32_t		*vuids, uv = 0;
	size_t			 i, j, n = 0;
	int			 rc = 0;

	if ((b = calloc(q->n + 1, sizeof(*b))) == NULL ||
	    (vuids = calloc(q->n + 1, sizeof(*vuids))) == NULL) {
		free(b);
		cp_fail(q, "NO [SERVERBUG] Out of memory");
		cp_answer(q);
		return;
	}
	for (i = 0; i < q->n; i++) {
		struct copy_item *it = &q->it[i];

		if (!it->done)
			continue;
		if (it->dst_uid == 0) {
			q->unknown++;
			continue;
		}
		b[n].uid = it->dst_uid;
		b[n].size = it->size;
		b[n].idate = it->idate;
		b[n].flags = it->flags;
		b[n].keywords = it->keywords;
		b[n].key = it->key != NULL ? it->key : "";
		b[n].akey = it->akey;
		b[n].keyh = it->key != NULL ? msgkey_hash64(it->key) : 0;
		b[n].akeyh = it->akey != NULL ? msgkey_hash64(it->akey) : 0;
		n++;
	}
	/* In the order the new server numbered them. */
	qsort(b, n, sizeof(*b), mbox_bmsg_cmp);
	if (state_begin(st) == -1)
		rc = -1;
	if (rc == 0 && n > 0 && mbox_record(&s->mc, q->dst, BACKEND_NEW,
	    q->dst_uv, b, n, vuids, &uv) == -1) {
		q->unknown += n;	/* a sync finds them */
		n = 0;
	}
	for (i = 0; i < n; i++)
		for (j = 0; j < q->n; j++)
			if (q->it[j].dst_uid == b[i].uid)
				q->it[j].dst_vuid = vuids[i];
	if (n > 0)
		q->dst_uv = uv;
	/*
	 * A move hides each source whose copy is confirmed and recorded.
	 * One whose copy the server made but did not name stays in the
	 * journal: the target's sync settles it.  A failed one stays put.
	 */
	for (i = 0; rc == 0 && q->move && i < q->n; i++) {
		struct copy_item *it = &q->it[i];

		if (it->dst_vuid != 0 && (view_tombstone(v, it->vuid) == -1 ||
		    view_expunge(v, it->vuid) == -1))
			rc = -1;
		else if ((it->dst_vuid != 0 || !it->done) &&
		    state_move_del(st, q->src, it->vuid) == -1)
			rc = -1;
	}
	if (rc == 0 && state_commit(st) == -1)
		rc = -1;
	if (rc == -1) {
		state_rollback(st);
		cp_fail(q, "NO [SERVERBUG] Cannot record the copies");
		if (view_restore(v) == -1)
			log_sess(LOG_WARNING, s->sid, "event=view-reload-failed "
			    "folder=\"%s\"", q->src);
	}
	free(b);
	free(vuids);
	if (q->move)
		mbox_changed(s->mc.sel->mb, &s->mc);
	log_sess(LOG_INFO, s->sid, "event=%s user=%s from=\"%s\" to=\"%s\" "
	    "messages=%zu recorded=%zu unknown=%zu%s%s%s", q->move ? "move" :
	    "copy", s->user, q->src, q->dst, q->n, n, q->unknown, q->failed ?
	    " reason=\"" : "", q->failed ? q->why : "", q->failed ? "\"" : "");
	cp_after(q);
}

/* The target is there now: move journal, then the copies. */
static void
cp_start(struct copy_req *q)
{
	struct imap_session	*s = q->s;
	size_t			 i;
	int			 rc = 0;

	if (q->move) {
		rc = state_begin(s->store);
		for (i = 0; rc == 0 && i < q->n; i++)
			rc = state_move_add(s->store, q->src, q->it[i].vuid,
			    q->dst, q->it[i].keyh);
		if (rc == 0)
			rc = state_commit(s->store);
		else
			state_rollback(s->store);
		if (rc == -1) {
			cp_fail(q, "NO [SERVERBUG] Cannot record the move");
			cp_answer(q);
			return;
		}
	}
	cp_server(q);
}

static void
cp_created(struct backend *b, const struct backend_result *res, void *arg)
{
	struct copy_req	*q = arg;

	if (!sess_new_made(res)) {
		cp_fail(q, "NO [TRYCREATE] The folder cannot be created on the "
		    "new server");
		cp_answer(q);
		return;
	}
	q->created = true;
	cp_start(q);
}

/*
 * The command.
 */
/* The sources, in sequence order; -1 with the tagged answer in *err. */
static int
cp_items(struct copy_req *q, const char *set, const char **err)
{
	struct imap_session	*s = q->s;
	struct view		*v = mbox_view(&s->mc);
	const struct vmsg	*m;
	uint32_t		*seqs;
	size_t			 n, i;
	char			*key, *akey;
	const char		*kw;

	if (!mbox_targets(&s->mc, set, q->uid, &seqs, &n, err)) {
		*err = "BAD Invalid message set";
		return -1;
	}
	if ((q->it = calloc(n + 1, sizeof(*q->it))) == NULL) {
		free(seqs);
		*err = "NO [SERVERBUG] Out of memory";
		return -1;
	}
	for (i = 0; i < n; i++) {
		struct copy_item *it = &q->it[q->n];

		if ((m = view_find(v, mbox_seq_vuid(&s->mc, seqs[i]))) == NULL)
			continue;
		it->vuid = m->vuid;
		it->side = vmsg_serving(m);
		it->uid = m->uid[it->side];
		it->keyh = it->side == BACKEND_NEW ? m->nkey : m->lkey;
		it->size = m->size;
		it->idate = m->idate;
		it->flags = vmsg_flags(m);
		kw = view_keywords(v, m->kw);
		if (kw[0] != '\0' && (it->keywords = strdup(kw)) == NULL)
			break;
		if (it->side == BACKEND_NEW && state_vmsg_keys(s->store,
		    s->mc.sel->mb->fid, m->vuid, BACKEND_NEW, &key, &akey) ==
		    0) {
			it->key = key;
			it->akey = akey;
		}
		q->n++;
	}
	free(seqs);
	if (i < n) {
		*err = "NO [SERVERBUG] Out of memory";
		return -1;
	}
	return 0;
}

static void
copy_run(struct imap_session *s, const struct imap_arg *args, size_t nargs,
    bool uid, bool move)
{
	struct copy_req		*q;
	const struct ufolder	*f;
	const char		*set, *err = NULL, *name, *e, *why;
	struct backend		*b = s->mc.be[BACKEND_NEW];

	if (nargs != 2 || !imap_arg_get_atom(&args[0], &set)) {
		sess_done(s, "BAD %s needs a message set and a mailbox",
		    move ? "MOVE" : "COPY");
		return;
	}
	if (move && mbox_readonly(&s->mc)) {
		sess_done(s, "NO [READ-ONLY] The folder is open read-only");
		return;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL ||
	    (q->src = strdup(s->mc.sel->path)) == NULL) {
		free(q);
		sess_done(s, "NO [SERVERBUG] Out of memory");
		return;
	}
	q->s = s;
	q->uid = uid;
	q->move = move;
	if ((q->dst = sess_mailbox_arg(&args[1], &why)) == NULL)
		err = why;
	else if ((f = folders_find(s->mc.folders, q->dst)) == NULL ||
	    f->placeholder)
		err = "NO [TRYCREATE] No such mailbox";
	else if (!folder_selectable(f))
		err = "NO [CANNOT] This folder cannot hold messages";
	else if (b == NULL || !backend_ready(b))
		err = "NO [UNAVAILABLE] The new server is not available";
	else if (cp_items(q, set, &err) == -1)
		;
	else {
		name = f->part[BACKEND_NEW].present ?
		    f->part[BACKEND_NEW].name : f->path;
		/* As APPEND: a real folder on the new server first. */
		q->create = !f->part[BACKEND_NEW].present ||
		    f->part[BACKEND_NEW].noselect;
		if ((q->wire = mutf7_encode(name, strlen(name), &e)) == NULL)
			err = "NO [CANNOT] Invalid mailbox name";
	}
	if (err != NULL) {
		sess_done(s, "%s", err);
		cp_free(q);
		return;
	}
	if (q->n == 0) {
		cp_free(q);
		sess_done(s, "OK %s completed (nothing to %s)", move ? "MOVE" :
		    "COPY", move ? "move" : "copy");
		return;
	}
	if (q->create)
		sess_new_create(b, q->wire, cp_created, q);
	else
		cp_start(q);
}

void
cmd_copy(struct imap_session *s, const struct imap_arg *args, size_t nargs)
{
	copy_run(s, args, nargs, false, false);
}

void
cmd_move(struct imap_session *s, const struct imap_arg *args, size_t nargs)
{
	copy_run(s, args, nargs, false, true);
}

void
cmd_uid_copy(struct imap_session *s, const struct imap_arg *args,
    size_t nargs)
{
	copy_run(s, args, nargs, true, false);
}

void
cmd_uid_move(struct imap_session *s, const struct imap_arg *args,
    size_t nargs)
{
	copy_run(s, args, nargs, true, true);
}
