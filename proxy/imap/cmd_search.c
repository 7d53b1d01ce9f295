/*
 * SEARCH and UID SEARCH over a merged mailbox (RFC 3501 §6.4.4, DESIGN §6).
 *
 * The program is parsed into a tree.  Keys the view can answer (flags,
 * keywords, sizes, internal dates, sequence and UID sets) are evaluated
 * here; each key that needs the message text or headers (FROM, SUBJECT,
 * BODY, HEADER, SENTSINCE...) becomes one "UID SEARCH key" per backend,
 * and a message matches it when the copy that serves it is among that
 * server's answers.  Then the tree is evaluated once per message, so
 * NOT and OR mix local and server keys freely.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "protocol/imap_parser.h"
#include "protocol/seqset.h"
#include "proxy/core/array.h"
#include "proxy/core/log.h"
#include "proxy/core/server.h"
#include "proxy/net/backend.h"
#include "proxy/merge/mailbox.h"
#include "proxy/merge/mailbox_impl.h"
#include "proxy/merge/view.h"
#include "proxy/imap/session_impl.h"

#define SEARCH_MAX_NODES	256
#define SEARCH_MAX_LEAVES	32

enum node_kind {
	N_AND, N_OR, N_NOT,
	N_ALL, N_NONE,
	N_FLAG, N_UNFLAG,		/* bits */
	N_KEYWORD, N_UNKEYWORD,
	N_LARGER, N_SMALLER,
	N_BEFORE, N_ON, N_SINCE,	/* internal date, UTC days */
	N_SEQ, N_UID,
	N_SERVER,			/* a leaf the backends answer */
};

struct node {
	enum node_kind	 kind;
	uint32_t	 num;
	const char	*str;
	struct seqset	 set;
	int		 child, next;	/* first child, next sibling; -1 */
	int		 leaf;		/* N_SERVER: index */
};

struct leaf {
	const char	*prefix;	/* "FROM", "HEADER", "SENTSINCE 1-Feb-1994" */
	const char	*str[2];
	size_t		 len[2];
	size_t		 nstr;
	uint32_t	*uids[BACKEND_COUNT];
	size_t		 n[BACKEND_COUNT], cap[BACKEND_COUNT];
};

struct search_req {
	struct imap_session	*s;
	bool			 uid, utf8;
	struct node		 nodes[SEARCH_MAX_NODES];
	int			 nnodes, root;
	struct leaf		 leaves[SEARCH_MAX_LEAVES];
	int			 nleaves, pending;
	char			 prefix[SEARCH_MAX_LEAVES][48];
	bool			 failed;
	bool			 down[BACKEND_COUNT];	/* could not ask */
};

static void
req_free(struct search_req *q)
{
	int	 i, side;

	for (i = 0; i < q->nnodes; i++)
		seqset_clear(&q->nodes[i].set);
	for (i = 0; i < q->nleaves; i++)
		for (side = 0; side < BACKEND_COUNT; side++)
			free(q->leaves[i].uids[side]);
	free(q);
}

/*
 * Parsing.
 */
static const struct {
	const char	*name;
	enum node_kind	 kind;
	uint8_t		 bit;
} simple[] = {
	{ "ALL", N_ALL, 0 }, { "OLD", N_ALL, 0 },
	{ "NEW", N_NONE, 0 }, { "RECENT", N_NONE, 0 },
	{ "ANSWERED", N_FLAG, VF_ANSWERED }, { "DELETED", N_FLAG, VF_DELETED },
	{ "DRAFT", N_FLAG, VF_DRAFT }, { "FLAGGED", N_FLAG, VF_FLAGGED },
	{ "SEEN", N_FLAG, VF_SEEN },
	{ "UNANSWERED", N_UNFLAG, VF_ANSWERED },
	{ "UNDELETED", N_UNFLAG, VF_DELETED },
	{ "UNDRAFT", N_UNFLAG, VF_DRAFT },
	{ "UNFLAGGED", N_UNFLAG, VF_FLAGGED },
	{ "UNSEEN", N_UNFLAG, VF_SEEN },
};

/* Keys answered by the servers: name and how many strings follow. */
static const struct {
	const char	*name;
	int		 nstr;
	bool		 date;
} server_keys[] = {
	{ "BCC", 1, false }, { "BODY", 1, false }, { "CC", 1, false },
	{ "FROM", 1, false }, { "SUBJECT", 1, false }, { "TEXT", 1, false },
	{ "TO", 1, false }, { "HEADER", 2, false },
	{ "SENTBEFORE", 1, true }, { "SENTON", 1, true },
	{ "SENTSINCE", 1, true },
};

static const char *const months[] = { "jan", "feb", "mar", "apr", "may",
	"jun", "jul", "aug", "sep", "oct", "nov", "dec" };

/* "1-Feb-1994" -> days since 1970, or -1. */
static long
search_day(const char *s)
{
	int		 d, y, m;
	char		 mon[4];
	long long	 yy;
	unsigned	 era, yoe, doy, doe;

	if (sscanf(s, "%2d-%3s-%4d", &d, mon, &y) != 3 || d < 1 || d > 31 ||
	    y < 1970 || y > 2105)
		return -1;
	for (m = 0; m < 12; m++)
		if (strcasecmp(mon, months[m]) == 0)
			break;
	if (m == 12)
		return -1;
	m++;
	yy = y - (m <= 2);
	era = (unsigned)(yy / 400);
	yoe = (unsigned)(yy - era * 400);
	doy = (unsigned)((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (long)(era * 146097L + doe) - 719468L;
}

static int	 parse_key(struct search_req *, const struct imap_arg *,
		    size_t, size_t *, const char **);

static int
new_node(struct search_req *q, enum node_kind kind)
{
	struct node	*n;

	if (q->nnodes >= SEARCH_MAX_NODES)
		return -1;
	n = &q->nodes[q->nnodes];
	memset(n, 0, sizeof(*n));
	n->kind = kind;
	n->child = n->next = -1;
	return q->nnodes++;
}

/* Keys up to the end of args, chained as the children of an AND. */
static int
parse_list(struct search_req *q, const struct imap_arg *a, size_t n,
    const char **err)
{
	size_t	 i = 0;
	int	 and, k, last = -1;

	if ((and = new_node(q, N_AND)) == -1)
		return -1;
	while (i < n) {
		if ((k = parse_key(q, a, n, &i, err)) == -1)
			return -1;
		if (last == -1)
			q->nodes[and].child = k;
		else
			q->nodes[last].next = k;
		last = k;
	}
	return last == -1 ? -1 : and;
}

static int
parse_server(struct search_req *q, int which, const struct imap_arg *a,
    size_t n, size_t *i)
{
	struct leaf	*l;
	const char	*str;
	size_t		 len;
	int		 k, j;

	if (q->nleaves >= SEARCH_MAX_LEAVES || *i + (size_t)server_keys[which]
	    .nstr >= n + 1 || (k = new_node(q, N_SERVER)) == -1)
		return -1;
	l = &q->leaves[q->nleaves];
	memset(l, 0, sizeof(*l));
	snprintf(q->prefix[q->nleaves], sizeof(q->prefix[0]), "%s",
	    server_keys[which].name);
	l->prefix = q->prefix[q->nleaves];
	for (j = 0; j < server_keys[which].nstr; j++) {
		if (*i >= n || !imap_arg_get_astring_len(&a[*i], &str, &len))
			return -1;
		if (server_keys[which].date && search_day(str) < 0)
			return -1;
		l->str[j] = str;
		l->len[j] = len;
		l->nstr++;
		(*i)++;
	}
	q->nodes[k].leaf = q->nleaves++;
	return k;
}

static int
parse_key(struct search_req *q, const struct imap_arg *a, size_t n,
    size_t *i, const char **err)
{
	const struct imap_arg	*list;
	const char		*name, *str;
	size_t			 ln, j;
	int			 k, c;

	if (imap_arg_get_list(&a[*i], &list, &ln)) {
		(*i)++;
		return ln == 0 ? -1 : parse_list(q, list, ln, err);
	}
	if (!imap_arg_get_atom(&a[*i], &name))
		return -1;
	(*i)++;
	for (j = 0; j < sizeof(simple) / sizeof(simple[0]); j++)
		if (strcasecmp(name, simple[j].name) == 0) {
			if ((k = new_node(q, simple[j].kind)) != -1)
				q->nodes[k].num = simple[j].bit;
			return k;
		}
	for (j = 0; j < sizeof(server_keys) / sizeof(server_keys[0]); j++)
		if (strcasecmp(name, server_keys[j].name) == 0)
			return parse_server(q, (int)j, a, n, i);
	if (strcasecmp(name, "NOT") == 0) {
		if (*i >= n || (k = new_node(q, N_NOT)) == -1 ||
		    (c = parse_key(q, a, n, i, err)) == -1)
			return -1;
		q->nodes[k].child = c;
		return k;
	}
	if (strcasecmp(name, "OR") == 0) {
		int	 c2;

		if (*i >= n || (k = new_node(q, N_OR)) == -1 ||
		    (c = parse_key(q, a, n, i, err)) == -1 || *i >= n ||
		    (c2 = parse_key(q, a, n, i, err)) == -1)
			return -1;
		q->nodes[k].child = c;
		q->nodes[c].next = c2;
		return k;
	}
	if (*i < n && (strcasecmp(name, "KEYWORD") == 0 ||
	    strcasecmp(name, "UNKEYWORD") == 0)) {
		if (!imap_arg_get_atom(&a[*i], &str) || (k = new_node(q,
		    strcasecmp(name, "KEYWORD") == 0 ? N_KEYWORD : N_UNKEYWORD)) == -1)
			return -1;
		q->nodes[k].str = str;
		(*i)++;
		return k;
	}
	if (*i < n && (strcasecmp(name, "LARGER") == 0 ||
	    strcasecmp(name, "SMALLER") == 0)) {
		if ((k = new_node(q, strcasecmp(name, "LARGER") == 0 ?
		    N_LARGER : N_SMALLER)) == -1 ||
		    !imap_arg_get_number(&a[*i], &q->nodes[k].num))
			return -1;
		(*i)++;
		return k;
	}
	if (*i < n && (strcasecmp(name, "BEFORE") == 0 ||
	    strcasecmp(name, "ON") == 0 || strcasecmp(name, "SINCE") == 0)) {
		long	 day;

		if (!imap_arg_get_astring(&a[*i], &str) ||
		    (day = search_day(str)) < 0 || (k = new_node(q,
		    strcasecmp(name, "BEFORE") == 0 ? N_BEFORE :
		    strcasecmp(name, "ON") == 0 ? N_ON : N_SINCE)) == -1)
			return -1;
		q->nodes[k].num = (uint32_t)day;
		(*i)++;
		return k;
	}
	if (strcasecmp(name, "UID") == 0 && *i < n) {
		if (!imap_arg_get_atom(&a[*i], &str) ||
		    (k = new_node(q, N_UID)) == -1 ||
		    !seqset_parse(&q->nodes[k].set, str, err))
			return -1;
		(*i)++;
		return k;
	}
	if ((k = new_node(q, N_SEQ)) == -1 ||
	    !seqset_parse(&q->nodes[k].set, name, err))
		return -1;
	return k;
}

/*
 * Evaluation.
 */
static bool
leaf_has(const struct leaf *l, int side, uint32_t uid)
{
	size_t	 lo = 0, hi = l->n[side], mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (l->uids[side][mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < l->n[side] && l->uids[side][lo] == uid;
}

static bool
kw_has(const char *set, const char *kw)
{
	size_t	 n = strlen(kw);

	while (*set != '\0') {
		if (strncasecmp(set, kw, n) == 0 && (set[n] == ' ' ||
		    set[n] == '\0'))
			return true;
		set = strchr(set, ' ');
		if (set == NULL)
			break;
		set++;
	}
	return false;
}

/* The copy whose server answers for m: the serving one, or the other
 * when that server could not be asked. */
static int
server_side(const struct search_req *q, const struct vmsg *m)
{
	int	 side = vmsg_serving(m), other = !side;

	if (q->down[side] && m->uid[other] != 0 && !q->down[other])
		return other;
	return side;
}

/* No server that holds m could be asked: whether it matches is unknown. */
static bool
unknown(const struct search_req *q, const struct vmsg *m)
{
	int	 side;

	if (q->nleaves == 0)
		return false;
	for (side = 0; side < BACKEND_COUNT; side++)
		if (m->uid[side] != 0 && !q->down[side])
			return false;
	return true;
}

static bool
eval(const struct search_req *q, int k, const struct view *v,
    const struct vmsg *m, uint32_t seq)
{
	const struct node	*n = &q->nodes[k];
	int			 c;
	long			 day = (long)(m->idate / 86400);

	switch (n->kind) {
	case N_AND:
		for (c = n->child; c != -1; c = q->nodes[c].next)
			if (!eval(q, c, v, m, seq))
				return false;
		return true;
	case N_OR:
		return eval(q, n->child, v, m, seq) ||
		    eval(q, q->nodes[n->child].next, v, m, seq);
	case N_NOT:
		return !eval(q, n->child, v, m, seq);
	case N_ALL:
		return true;
	case N_NONE:
		return false;
	case N_FLAG:
		return (vmsg_flags(m) & n->num) != 0;
	case N_UNFLAG:
		return (vmsg_flags(m) & n->num) == 0;
	case N_KEYWORD:
		return kw_has(view_keywords(v, m->kw), n->str);
	case N_UNKEYWORD:
		return !kw_has(view_keywords(v, m->kw), n->str);
	case N_LARGER:
		return m->size > n->num;
	case N_SMALLER:
		return m->size < n->num;
	case N_BEFORE:
		return day < (long)n->num;
	case N_ON:
		return day == (long)n->num;
	case N_SINCE:
		return day >= (long)n->num;
	case N_SEQ:
		return seqset_contains(&n->set, seq);
	case N_UID:
		return seqset_contains(&n->set, m->vuid);
	case N_SERVER:
		return leaf_has(&q->leaves[n->leaf], server_side(q, m),
		    m->uid[server_side(q, m)]);
	}
	return false;
}

static void
resolve_sets(struct search_req *q)
{
	uint32_t	 n = mbox_count(&q->s->mc);
	uint32_t	 maxuid = n > 0 ? mbox_seq_vuid(&q->s->mc, n) : 0;
	int		 k;

	for (k = 0; k < q->nnodes; k++)
		if (q->nodes[k].kind == N_SEQ)
			seqset_resolve(&q->nodes[k].set, n);
		else if (q->nodes[k].kind == N_UID)
			seqset_resolve(&q->nodes[k].set, maxuid);
}

static void
search_finish(struct search_req *q)
{
	struct imap_session	*s = q->s;
	struct view		*v = mbox_view(&s->mc);
	struct evbuffer		*out = evbuffer_new();
	const struct vmsg	*m;
	uint32_t		 seq, n = mbox_count(&s->mc), skipped = 0;

	if (q->failed || out == NULL) {
		evbuffer_free(out);
		req_free(q);
		sess_done(s, "NO [UNAVAILABLE] The servers could not search "
		    "now");
		return;
	}
	resolve_sets(q);
	evbuffer_add_printf(out, "* SEARCH");
	for (seq = 1; seq <= n; seq++) {
		if ((m = view_find(v, mbox_seq_vuid(&s->mc, seq))) == NULL)
			continue;
		if (unknown(q, m)) {
			skipped++;
			continue;
		}
		if (eval(q, q->root, v, m, seq))
			evbuffer_add_printf(out, " %u", q->uid ? m->vuid : seq);
	}
	evbuffer_add(out, "\r\n", 2);
	/* A server down: what it alone holds was not searched, and the
	 * client is told so (an untagged NO is a warning, RFC 9051 §7.1.2). */
	if (skipped > 0)
		evbuffer_add_printf(out, "* NO [UNAVAILABLE] %u messages on a "
		    "mail server that cannot be reached now were not "
		    "searched\r\n", skipped);
	sess_write_buffer(s, out);
	evbuffer_free(out);
	req_free(q);
	sess_done(s, "OK SEARCH completed");
}

struct leaf_ctx {
	struct search_req	*q;
	struct leaf		*l;
};

static void
leaf_data(struct backend *b, const struct imap_response *r, void *arg)
{
	struct leaf_ctx	*c = arg;
	struct leaf	*l = c->l;
	int		 side = backend_side(b);
	uint32_t	 uid;
	size_t		 i;

	if (!imap_response_is(r, "SEARCH"))
		return;
	for (i = 0; i < r->nargs; i++) {
		if (!imap_arg_get_number(&r->args[i], &uid))
			continue;
		if (array_grow(&l->uids[side], &l->cap[side], l->n[side] + 1,
		    sizeof(uint32_t)) == -1) {
			c->q->failed = true;
			return;
		}
		l->uids[side][l->n[side]++] = uid;
	}
}

static int
u32_cmp(const void *a, const void *b)
{
	const uint32_t	*x = a, *y = b;

	return *x < *y ? -1 : *x > *y;
}

static void
leaf_done(struct backend *b, const struct backend_result *res, void *arg)
{
	struct leaf_ctx		*c = arg;
	struct search_req	*q = c->q;
	int			 side = backend_side(b);

	if (res->status == BACKEND_FAILED)
		q->down[side] = true;	/* lost on the way: as if down */
	else if (res->status != BACKEND_OK) {
		q->failed = true;
		log_sess(LOG_WARNING, q->s->sid, "event=search-failed side=%s "
		    "reason=\"%s\"", backend_name(b), res->text);
	}
	if (c->l->n[side] > 0)
		qsort(c->l->uids[side], c->l->n[side], sizeof(uint32_t),
		    u32_cmp);
	free(c);
	if (--q->pending == 0)
		search_finish(q);
}

static void
send_leaves(struct search_req *q)
{
	struct leaf_ctx	*c;
	char		 prefix[96];
	int		 i, side;

	for (i = 0; i < q->nleaves; i++)
		for (side = 0; side < BACKEND_COUNT; side++) {
			struct backend *b = q->s->mc.be[side];

			/* A server without the folder has none of its
			 * messages, and no folder selected to search. */
			if (!mbox_serves(&q->s->mc, side))
				continue;
			if (b == NULL || !backend_ready(b)) {
				q->down[side] = true;
				continue;
			}
			if ((c = calloc(1, sizeof(*c))) == NULL) {
				q->failed = true;
				continue;
			}
			c->q = q;
			c->l = &q->leaves[i];
			snprintf(prefix, sizeof(prefix), "UID SEARCH %s%s",
			    q->utf8 ? "CHARSET UTF-8 " : "", q->leaves[i].prefix);
			q->pending++;
			backend_cmd_astrings(b, prefix, q->leaves[i].str,
			    q->leaves[i].len, q->leaves[i].nstr, leaf_data,
			    leaf_done, c);
		}
}

/* Whether any leaf string is not plain ASCII. */
static bool
needs_utf8(const struct search_req *q)
{
	int	 i;
	size_t	 j, k;

	for (i = 0; i < q->nleaves; i++)
		for (j = 0; j < q->leaves[i].nstr; j++)
			for (k = 0; k < q->leaves[i].len[j]; k++)
				if ((unsigned char)q->leaves[i].str[j][k] >=
				    0x80)
					return true;
	return false;
}

static void
search_run(struct imap_session *s, const struct imap_arg *args,
    size_t nargs, bool uid)
{
	struct search_req	*q;
	const char		*cs, *err = "Invalid search program";
	size_t			 skip = 0;

	if ((q = calloc(1, sizeof(*q))) == NULL) {
		sess_done(s, "NO [SERVERBUG] Out of memory");
		return;
	}
	q->s = s;
	q->uid = uid;
	if (nargs >= 2 && imap_arg_atom_equals(&args[0], "CHARSET")) {
		if (!imap_arg_get_astring(&args[1], &cs) ||
		    (strcasecmp(cs, "UTF-8") != 0 &&
		    strcasecmp(cs, "US-ASCII") != 0)) {
			req_free(q);
			sess_done(s, "NO [BADCHARSET (UTF-8 US-ASCII)] "
			    "Unsupported charset");
			return;
		}
		skip = 2;
	}
	if (nargs <= skip || (q->root = parse_list(q, args + skip,
	    nargs - skip, &err)) == -1) {
		req_free(q);
		sess_done(s, "BAD %s", err);
		return;
	}
	q->utf8 = needs_utf8(q);
	q->pending = 1;
	send_leaves(q);
	if (--q->pending == 0)
		search_finish(q);
}

void
cmd_search(struct imap_session *s, const struct imap_arg *args,
    size_t nargs)
{
	search_run(s, args, nargs, false);
}

void
cmd_uid_search(struct imap_session *s, const struct imap_arg *args,
    size_t nargs)
{
	search_run(s, args, nargs, true);
}
