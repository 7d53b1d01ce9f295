/*
 * FETCH and UID FETCH from a merged mailbox.
 *
 * UID, FLAGS, INTERNALDATE and RFC822.SIZE come from the view; other FETCH
 * items from the copy that serves each message, one UID FETCH per backend,
 * the responses rewritten with the client's sequence numbers (mailbox.c
 * keeps the session's own).  A body fetch that sets \Seen sets it on both
 * copies.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "protocol/fetch_att.h"
#include "protocol/imap_parser.h"
#include "protocol/imap_write.h"
#include "protocol/seqset.h"
#include "proxy/core/array.h"
#include "proxy/core/log.h"
#include "proxy/net/backend.h"
#include "proxy/merge/mailbox.h"
#include "proxy/merge/mailbox_impl.h"
#include "proxy/merge/view.h"
#include "proxy/imap/session_impl.h"

struct fmap {
	uint32_t	 buid;
	uint32_t	 seq;
	bool		 answered;
};

/*
 * Bodies stream: a literal of 32 kB or more goes from the backend straight
 * into the client's output as it arrives (backend_cmd_stream), after the
 * start of its FETCH line has been written; reading from the backend
 * pauses while the client is behind.  Only one response can be open on
 * the client's output at a time, so with body items the backends are
 * asked one after the other.  A big literal the line cannot be started
 * for (no UID before it, or inside a nested list) is held in `hold` and
 * written with the completed response.
 */
struct fetch_open {
	bool			 open;		/* line started on the client */
	bool			 wrote;		/* an item is out already */
	size_t			 next;		/* first item not written */
};

struct fetch_req {
	struct imap_session	*s;
	bool			 uid;
	struct fetch_att	 fa;
	struct fmap		*map[BACKEND_COUNT];
	size_t			 n[BACKEND_COUNT], cap[BACKEND_COUNT];
	int			 pending;
	bool			 failed;
	bool			 gone;		/* a message expunged meanwhile */
	char			 refused[160];	/* a server's own NO */
	struct fetch_open	 cur;
	struct evbuffer		*hold;
	int			 queued;	/* side still to ask, or -1 */
};

static void
fetch_req_free(struct fetch_req *q)
{
	int	 side;

	fetch_att_clear(&q->fa);
	for (side = 0; side < BACKEND_COUNT; side++)
		free(q->map[side]);
	if (q->hold != NULL)
		evbuffer_free(q->hold);
	free(q);
}

/* Decimal digits of v at p; returns the end.  snprintf costs more than
 * everything else in a FETCH of 100,000 flags. */
static char *
put_u32(char *p, uint32_t v)
{
	char	 tmp[10];
	int	 n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

static char *
put_str(char *p, const char *s, size_t len)
{
	memcpy(p, s, len);
	return p + len;
}

#define PUT_LIT(p, lit)	put_str((p), (lit), sizeof(lit) - 1)

/*
 * The items the view answers, formatted in a stack buffer (line, of
 * FETCH_LINE_MAX) and added with one evbuffer_add(): "UID FETCH 1:*
 * (UID FLAGS)" on 100,000 messages is 100,000 of these.  seq 0: the
 * items only, else the whole "* seq FETCH (...)" line.  Whether it wrote
 * any item.
 */
#define FETCH_LINE_MAX	(1024 + 512)

static bool
fetch_local(struct fetch_req *q, struct evbuffer *out, const struct view *v,
    const struct vmsg *m, uint32_t seq)
{
	static char	 flagtext[32][64];
	static size_t	 flaglen[32];
	char		 line[FETCH_LINE_MAX], *p = line, *start;
	const char	*kw;
	size_t		 kwlen;
	uint8_t		 f;

	if (seq != 0) {
		p = PUT_LIT(p, "* ");
		p = put_u32(p, seq);
		p = PUT_LIT(p, " FETCH (");
	}
	start = p;
	if (q->uid || (q->fa.local & FETCH_UID)) {
		p = PUT_LIT(p, "UID ");
		p = put_u32(p, m->vuid);
	}
	if (q->fa.local & FETCH_FLAGS) {
		f = vmsg_flags(m) & 31;
		if (f != 0 && flaglen[f] == 0)
			flaglen[f] = strlen(view_flag_text(f, flagtext[f]));
		kw = view_keywords(v, m->kw);
		kwlen = strlen(kw);
		if (kwlen > 512)
			kwlen = 0;	/* never: keyword sets are bounded */
		if (p != start)
			*p++ = ' ';
		p = PUT_LIT(p, "FLAGS (");
		p = put_str(p, flagtext[f], flaglen[f]);
		if (flaglen[f] != 0 && kwlen != 0)
			*p++ = ' ';
		p = put_str(p, kw, kwlen);
		*p++ = ')';
	}
	if (q->fa.local & FETCH_INTERNALDATE) {
		if (p != start)
			*p++ = ' ';
		p = PUT_LIT(p, "INTERNALDATE \"");
		mbox_format_idate(m->idate, p, 40);
		p += strlen(p);
		*p++ = '"';
	}
	if (q->fa.local & FETCH_RFC822_SIZE) {
		if (p != start)
			*p++ = ' ';
		p = PUT_LIT(p, "RFC822.SIZE ");
		p = put_u32(p, m->size);
	}
	if (seq != 0)
		p = PUT_LIT(p, ")\r\n");
	evbuffer_add(out, line, (size_t)(p - line));
	return p != start;
}

/* A value from a server's response, written back out as it came; held
 * literals come from hold. */
static void
write_value(struct evbuffer *out, const struct imap_arg *a,
    struct evbuffer *hold)
{
	size_t	 i;

	switch (a->type) {
	case IMAP_ARG_ATOM:
		evbuffer_add(out, a->v.str, a->len);
		break;
	case IMAP_ARG_NIL:
		evbuffer_add(out, "NIL", 3);
		break;
	case IMAP_ARG_QUOTED:
		imap_write_string(out, a->v.str, a->len, IMAP_WRITE_NONSYNC);
		break;
	case IMAP_ARG_LITERAL:
		imap_write_literal_prefix(out, a->len, 0, a->literal8);
		evbuffer_add(out, a->v.str, a->len);
		break;
	case IMAP_ARG_LITERAL_SIZE:
		/* Held by fetch_literal(), in order of arrival. */
		imap_write_literal_prefix(out, (size_t)a->v.size, 0,
		    a->literal8);
		if (hold != NULL)
			evbuffer_remove_buffer(hold, out, (size_t)a->v.size);
		break;
	case IMAP_ARG_LIST:
		evbuffer_add(out, "(", 1);
		/* ")(" stays as the server sent it: RFC 3501 §9 has no
		 * space between addresses, nor between body parts. */
		for (i = 0; i < a->len; i++) {
			if (i > 0 && !a->v.list[i].joined)
				evbuffer_add(out, " ", 1);
			write_value(out, &a->v.list[i], hold);
		}
		evbuffer_add(out, ")", 1);
		break;
	}
}

static int
fmap_cmp(const void *a, const void *b)
{
	const struct fmap	*x = a, *y = b;

	return x->buid < y->buid ? -1 : x->buid > y->buid;
}

/* Items [from, n) but UID and FLAGS, which the view answers. */
static void
write_items(struct fetch_req *q, struct evbuffer *out,
    const struct imap_arg *items, size_t from, size_t n)
{
	const char	*name;
	size_t		 i;

	for (i = from; i + 1 < n; i += 2) {
		/* MODSEQ: backends are selected with CONDSTORE, clients
		 * never asked for it. */
		if (!imap_arg_get_atom(&items[i], &name) ||
		    strcasecmp(name, "UID") == 0 ||
		    strcasecmp(name, "FLAGS") == 0 ||
		    strcasecmp(name, "MODSEQ") == 0)
			continue;
		evbuffer_add_printf(out, "%s%s ", q->cur.wrote ? " " : "",
		    name);
		write_value(out, &items[i + 1], q->hold);
		q->cur.wrote = true;
	}
}

/* The sequence number and message of a backend UID, or 0. */
static uint32_t
fetch_seq(struct fetch_req *q, int side, const struct imap_arg *items,
    size_t n, const struct vmsg **mp)
{
	struct fmap	 key, *hit;
	const char	*name;
	uint32_t	 uid = 0;
	size_t		 i;

	for (i = 0; i + 1 < n; i += 2)
		if (imap_arg_get_atom(&items[i], &name) &&
		    strcasecmp(name, "UID") == 0)
			imap_arg_get_number(&items[i + 1], &uid);
	key.buid = uid;
	if (uid == 0 || (hit = bsearch(&key, q->map[side], q->n[side],
	    sizeof(key), fmap_cmp)) == NULL || (*mp = view_find(mbox_view(
	    &q->s->mc), mbox_seq_vuid(&q->s->mc, hit->seq))) == NULL)
		return 0;
	hit->answered = true;
	return hit->seq;
}

static struct evbuffer *
fetch_literal(struct backend *b, const struct imap_arg *items, size_t n,
    unsigned int depth, uint64_t size, void *arg)
{
	struct fetch_req	*q = arg;
	struct imap_session	*s = q->s;
	struct evbuffer		*out = bufferevent_get_output(s->bev);
	const struct vmsg	*m;
	const char		*name = "";
	uint32_t		 seq;

	if (depth == 1 && !q->cur.open && q->hold == NULL &&
	    (seq = fetch_seq(q, backend_side(b), items, n, &m)) != 0) {
		/* A keyword another session set while the servers were
		 * asked: announced before this line shows it. */
		mbox_news_keywords(&s->mc, out);
		evbuffer_add_printf(out, "* %u FETCH (", seq);
		q->cur.wrote = fetch_local(q, out, mbox_view(&s->mc), m, 0);
		q->cur.open = true;
		q->cur.next = 0;
	}
	if (!q->cur.open) {
		if (q->hold == NULL)
			q->hold = evbuffer_new();
		return q->hold;
	}
	if (depth != 1)
		return NULL;	/* a nested literal after a streamed one */
	/* The literal is the last argument so far, its item name before. */
	if (n < 2 || items[n - 1].type != IMAP_ARG_LITERAL_SIZE ||
	    !imap_arg_get_atom(&items[n - 2], &name))
		return NULL;
	write_items(q, out, items, q->cur.next, n - 2);
	evbuffer_add_printf(out, "%s%s %s{%llu}\r\n", q->cur.wrote ? " " :
	    "", name, items[n - 1].literal8 ? "~" : "",
	    (unsigned long long)size);
	q->cur.wrote = true;
	q->cur.next = n;
	return out;
}

static void
fetch_data(struct backend *b, const struct imap_response *r, void *arg)
{
	struct fetch_req	*q = arg;
	struct imap_session	*s = q->s;
	const struct imap_arg	*items;
	const struct vmsg	*m;
	struct evbuffer		*out;
	size_t			 n;
	uint32_t		 seq;

	if (!imap_response_is(r, "FETCH") || r->nargs < 1 ||
	    !imap_arg_get_list(&r->args[0], &items, &n))
		return;
	if (q->cur.open) {
		/* The rest of a line whose literal went out already. */
		write_items(q, bufferevent_get_output(s->bev), items,
		    q->cur.next, n);
		evbuffer_add(bufferevent_get_output(s->bev), ")\r\n", 3);
		memset(&q->cur, 0, sizeof(q->cur));
		return;
	}
	if ((seq = fetch_seq(q, backend_side(b), items, n, &m)) != 0 &&
	    (out = evbuffer_new()) != NULL) {
		evbuffer_add_printf(out, "* %u FETCH (", seq);
		q->cur.wrote = fetch_local(q, out, mbox_view(&s->mc), m, 0);
		write_items(q, out, items, 0, n);
		evbuffer_add(out, ")\r\n", 3);
		/* Nothing but the server's UID (an item it could not give):
		 * a FETCH response has at least one item (RFC 9051 §9). */
		if (q->cur.wrote && s->bev != NULL) {
			mbox_news_keywords(&s->mc,
			    bufferevent_get_output(s->bev));
			sess_write_buffer(s, out);
		}
		evbuffer_free(out);
	}
	memset(&q->cur, 0, sizeof(q->cur));
	if (q->hold != NULL) {
		evbuffer_free(q->hold);
		q->hold = NULL;
	}
}

/*
 * A non-peek body fetch sets \Seen on the copy that served it; the other
 * copy gets it too, and the client hears the new flags (RFC 9051 §6.4.5).
 */
static void
fetch_mark_seen(struct fetch_req *q)
{
	struct imap_session	*s = q->s;
	struct view		*v = mbox_view(&s->mc);
	const struct vmsg	*m;
	uint32_t		*uids[BACKEND_COUNT] = { NULL, NULL };
	size_t			 nuids[BACKEND_COUNT] = { 0, 0 }, i;
	int			 side, src;

	for (src = 0; src < BACKEND_COUNT; src++) {
		for (i = 0; i < q->n[src]; i++) {
			if ((m = view_find(v, mbox_seq_vuid(&s->mc,
			    q->map[src][i].seq))) == NULL)
				continue;
			/* The copy the migration makes is read too. */
			if (m->uid[BACKEND_NEW] == 0 &&
			    !(vmsg_flags(m) & VF_SEEN))
				view_want(v, m->vuid, vmsg_flags(m) | VF_SEEN);
			for (side = 0; side < BACKEND_COUNT; side++) {
				if (m->uid[side] == 0 ||
				    (m->flags[side] & VF_SEEN))
					continue;
				/* legacy-writes none: the legacy copy keeps
				 * its flags (a .PEEK read it). */
				if (side == BACKEND_LEGACY &&
				    s->conf->legacy_writes ==
				    LEGACY_WRITES_NONE)
					continue;
				if (side != src) {
					if (uids[side] == NULL)
						uids[side] = calloc(q->n[0] +
						    q->n[1] + 1, sizeof(uint32_t));
					if (uids[side] != NULL)
						uids[side][nuids[side]++] =
						    m->uid[side];
				}
				view_set_flags(v, m->vuid, side,
				    m->flags[side] | VF_SEEN);
			}
		}
	}
	for (side = 0; side < BACKEND_COUNT; side++) {
		struct evbuffer	*cmd;

		if (nuids[side] > 0 && (cmd = evbuffer_new()) != NULL) {
			qsort(uids[side], nuids[side], sizeof(uint32_t),
			    fmap_cmp);
			evbuffer_add_printf(cmd, "UID STORE ");
			seqset_format_list(uids[side], nuids[side], cmd);
			evbuffer_add_printf(cmd, " +FLAGS.SILENT (\\Seen)");
			evbuffer_add(cmd, "", 1);
			backend_cmd(s->mc.be[side], (const char *)
			    evbuffer_pullup(cmd, -1), NULL, NULL, NULL);
			evbuffer_free(cmd);
		}
		free(uids[side]);
	}
	mbox_changed(s->mc.sel->mb, &s->mc);
}

/*
 * A copy the server did not answer for: expunged there by another
 * session (or client) since the view last looked.  A FETCH by number is
 * told as for a message expunged in the view (RFC 2180 §4.1.2); a UID
 * FETCH passes over a UID that no longer exists, as servers do.
 */
static bool
fetch_unanswered(const struct fetch_req *q)
{
	size_t	 i;
	int	 side;

	for (side = 0; side < BACKEND_COUNT; side++)
		for (i = 0; i < q->n[side]; i++)
			if (!q->map[side][i].answered)
				return true;
	return false;
}

static void
fetch_finish(struct fetch_req *q)
{
	struct imap_session	*s = q->s;
	bool			 failed = q->failed;
	bool			 gone = q->gone || (!q->uid &&
				    fetch_unanswered(q));
	char			 refused[sizeof(q->refused)];

	memcpy(refused, q->refused, sizeof(refused));
	if (!failed && q->fa.sets_seen && !mbox_readonly(&s->mc))
		fetch_mark_seen(q);
	fetch_req_free(q);
	if (failed && refused[0] != '\0')
		sess_done(s, "%s", refused);
	else if (failed)
		sess_done(s, "NO [UNAVAILABLE] Some messages could not be "
		    "read now");
	else if (gone)
		sess_done(s, "NO [EXPUNGEISSUED] Some of the requested messages "
		    "no longer exist");
	else
		sess_done(s, "OK FETCH completed");
}

static void	 fetch_send(struct fetch_req *, int);

static void
fetch_pad(struct imap_session *s, uint64_t n)
{
	static char		 spaces[16384];
	struct evbuffer		*out;
	size_t			 k;

	if (s->bev == NULL)
		return;
	if (spaces[0] != ' ')
		memset(spaces, ' ', sizeof(spaces));
	out = bufferevent_get_output(s->bev);
	for (; n > 0; n -= k) {
		k = n < sizeof(spaces) ? (size_t)n : sizeof(spaces);
		evbuffer_add_reference(out, spaces, k, NULL, NULL);
	}
}

static void
fetch_done(struct backend *b, const struct backend_result *res, void *arg)
{
	struct fetch_req	*q = arg;
	int			 next = q->queued;

	if (res->status != BACKEND_OK) {
		q->failed = true;
		log_sess(LOG_WARNING, q->s->sid, "event=fetch-failed side=%s "
		    "reason=\"%s\"", backend_name(b), res->text);
	}
	/*
	 * A server that refuses for a reason of the message ([PARSE]: it
	 * cannot decode a part for BINARY) says so to the client as it
	 * said it; [UNAVAILABLE] would have the client try again forever.
	 */
	if (res->status == BACKEND_NO && !res->throttled && res->code != NULL &&
	    q->refused[0] == '\0' && strcasecmp(res->code, "UNAVAILABLE") != 0)
		snprintf(q->refused, sizeof(q->refused), "NO [%s] %s",
		    res->code, res->text);
	/*
	 * A line left open by a failed stream: the literal is owed its
	 * announced size, so it is made up with spaces and the line closed;
	 * the NO that ends the command says the data is not to be trusted,
	 * and the session goes on.
	 */
	if (q->cur.open) {
		fetch_pad(q->s, res->stream_left);
		sess_printf(q->s, ")\r\n");
		memset(&q->cur, 0, sizeof(q->cur));
	}
	q->queued = -1;
	if (next >= 0)
		fetch_send(q, next);
	if (--q->pending == 0)
		fetch_finish(q);
}

static int
fetch_map_add(struct fetch_req *q, int side, uint32_t buid, uint32_t seq)
{
	if (array_grow(&q->map[side], &q->cap[side], q->n[side] + 1,
	    sizeof(struct fmap)) == -1)
		return -1;
	q->map[side][q->n[side]].buid = buid;
	q->map[side][q->n[side]].answered = false;
	q->map[side][q->n[side]++].seq = seq;
	return 0;
}

/*
 * legacy-writes none: a body fetch must not set \Seen on the legacy
 * server.  BODY[...] and BINARY[...] become their .PEEK forms, which the
 * server answers under the same names; imapmerge records the \Seen for
 * the new copy itself (fetch_mark_seen).
 */
static void
add_peek(struct evbuffer *cmd, const char *up)
{
	const char	*p = up;
	size_t		 n;

	while (*p != '\0') {
		if ((p == up || p[-1] == ' ') &&
		    (strncasecmp(p, "BODY[", 5) == 0 ||
		    strncasecmp(p, "BINARY[", 7) == 0)) {
			n = strcspn(p, "[");
			evbuffer_add(cmd, p, n);
			evbuffer_add(cmd, ".PEEK", 5);
			p += n;
			continue;
		}
		evbuffer_add(cmd, p, 1);
		p++;
	}
}

static void
fetch_send(struct fetch_req *q, int side)
{
	struct evbuffer	*cmd;
	uint32_t	*uids;
	size_t		 i;

	qsort(q->map[side], q->n[side], sizeof(struct fmap), fmap_cmp);
	if ((cmd = evbuffer_new()) == NULL || (uids = calloc(q->n[side],
	    sizeof(*uids))) == NULL) {
		evbuffer_free(cmd);
		q->failed = true;
		return;
	}
	for (i = 0; i < q->n[side]; i++)
		uids[i] = q->map[side][i].buid;
	evbuffer_add_printf(cmd, "UID FETCH ");
	seqset_format_list(uids, q->n[side], cmd);
	evbuffer_add_printf(cmd, " (UID ");
	if (side == BACKEND_LEGACY && q->s->conf->legacy_writes ==
	    LEGACY_WRITES_NONE)
		add_peek(cmd, q->fa.upstream);
	else
		evbuffer_add_printf(cmd, "%s", q->fa.upstream);
	evbuffer_add(cmd, ")", 2);
	free(uids);
	if (q->s->mc.be[side] == NULL || !backend_ready(q->s->mc.be[side])) {
		q->failed = true;
		evbuffer_free(cmd);
		return;
	}
	q->pending++;
	backend_cmd_stream(q->s->mc.be[side], (const char *)evbuffer_pullup(cmd,
	    -1), fetch_data, fetch_literal, fetch_done, q);
	evbuffer_free(cmd);
}

static void
fetch_run(struct imap_session *s, const struct imap_arg *args, size_t nargs,
    bool uid)
{
	struct view		*v = mbox_view(&s->mc);
	struct fetch_req	*q;
	struct seqset		 set = { NULL, 0, 0 };
	struct evbuffer		*out = NULL;
	const struct vmsg	*m;
	const char		*text, *err = "Invalid sequence set";
	uint32_t		 seq, n = mbox_count(&s->mc), vuid, max;
	size_t			 vi;
	int			 side;

	if ((q = calloc(1, sizeof(*q))) == NULL) {
		sess_done(s, "NO [SERVERBUG] Out of memory");
		return;
	}
	q->s = s;
	q->uid = uid;
	if (nargs < 2 || !imap_arg_get_atom(&args[0], &text) ||
	    !seqset_parse(&set, text, &err) ||
	    !fetch_att_parse(&args[1], nargs - 1, &q->fa, &err)) {
		seqset_clear(&set);
		fetch_req_free(q);
		sess_done(s, "BAD %s", err);
		return;
	}
	max = uid ? (n > 0 ? mbox_seq_vuid(&s->mc, n) : 0) : n;
	if (!uid && !seqset_within(&set, n)) {
		seqset_clear(&set);
		fetch_req_free(q);
		sess_done(s, "BAD Invalid sequence number");
		return;
	}
	seqset_resolve(&set, max);
	/* Keywords another session brought are announced before a FETCH
	 * shows them. */
	if (s->bev != NULL)
		mbox_news_keywords(&s->mc, bufferevent_get_output(s->bev));
	out = evbuffer_new();
	/* Both the session's numbers and the view run in vuid order. */
	for (seq = 1, vi = 0; seq <= n && out != NULL; seq++) {
		vuid = mbox_seq_vuid(&s->mc, seq);
		if (!seqset_contains(&set, uid ? vuid : seq))
			continue;
		while (vi < view_count(v) && view_at(v, vi)->vuid < vuid)
			vi++;
		if (vi == view_count(v) || (m = view_at(v, vi))->vuid != vuid) {
			/* Expunged elsewhere, the client not told yet (it
			 * may not be while FETCH runs): RFC 2180 §4.1.2. */
			if (!uid)
				q->gone = true;
			continue;
		}
		if (q->fa.backend) {
			if (fetch_map_add(q, vmsg_serving(m), m->uid[vmsg_serving(
			    m)], seq) == -1)
				q->failed = true;
			continue;
		}
		fetch_local(q, out, v, m, seq);
	}
	seqset_clear(&set);
	if (out != NULL) {
		sess_write_buffer(s, out);
		evbuffer_free(out);
	}
	/* One backend at a time: a streamed line must not be cut by
	 * another server's answer. */
	q->pending = 1;
	q->queued = -1;
	side = q->n[BACKEND_LEGACY] > 0 ? BACKEND_LEGACY :
	    q->n[BACKEND_NEW] > 0 ? BACKEND_NEW : -1;
	if (side == BACKEND_LEGACY && q->n[BACKEND_NEW] > 0)
		q->queued = BACKEND_NEW;
	if (side >= 0) {
		fetch_send(q, side);
		if (q->pending == 1 && q->queued >= 0) {
			/* The first could not be asked: on to the next. */
			q->queued = -1;
			fetch_send(q, BACKEND_NEW);
		}
	}
	if (--q->pending == 0)
		fetch_finish(q);
}

void
cmd_fetch(struct imap_session *s, const struct imap_arg *args, size_t nargs)
{
	fetch_run(s, args, nargs, false);
}

void
cmd_uid_fetch(struct imap_session *s, const struct imap_arg *args,
    size_t nargs)
{
	fetch_run(s, args, nargs, true);
}
