/*
 * The merged mailbox engine (see view.h and DESIGN §4-5).
 *
 * Messages sit in one array sorted by vuid; each side has an index of
 * (uid, vuid) sorted by uid, which is what a scan of the server walks.
 * Pairing uses a temporary hash table over the candidates (messages with
 * no copy on the arriving side), built once per batch, so a migration
 * that copies 25,000 messages at once costs one pass, not 25,000.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/core/array.h"
#include "proxy/merge/state.h"
#include "proxy/merge/view.h"

struct uidx {
	uint32_t	 uid;
	uint32_t	 vuid;
};

/* A set of 64-bit key hashes, open addressing, 0 empty. */
struct keyset {
	uint64_t		*h;
	size_t			 n, cap;
};

/*
 * A tombstone names one virtual message the user deleted: its keys, and
 * the copy on each side that it hides.  A side's place is empty until a
 * copy of that message arrives there that no visible message wants (the
 * copy the migration makes of it); that copy then stays hidden, and a
 * twin with the same key does not.
 */
struct grave {
	uint32_t		 vuid;
	uint64_t		 key[3];
	uint32_t		 uid[BACKEND_COUNT];
};

struct view {
	struct state		*store;
	int64_t			 fid;
	uint32_t		 uidvalidity, uidnext;
	uint32_t		 modseq, expunges;
	struct vmsg		*m;
	size_t			 n, cap;
	struct uidx		*ux[BACKEND_COUNT];
	size_t			 nux[BACKEND_COUNT], capux[BACKEND_COUNT];
	struct view_side	 side[BACKEND_COUNT];
	struct grave		*graves;	/* a tombstone per vmsg */
	size_t			 ngraves, capgraves;
	struct keyset		 grave_keys;	/* their keys: a filter */
	struct keyset		 oldtomb;	/* key-only, before schema 5 */
	char			**kw;		/* kw[0] unused */
	size_t			 nkw;
	uint8_t			*scanned;	/* bit per ux entry */
	int			 scanning;	/* side + 1 */
	size_t			 scan_next;	/* ux entry the next UID likely is */
	uint32_t		 scan_below;	/* UIDs judged by the scan */
	uint32_t		 scan_since;	/* changed after: not judged */
	struct view_stats	 stats;
	size_t			 nwant;		/* messages with want set */
	uint32_t		*hidden_new;	/* new-side UIDs view_add hid */
	size_t			 nhidden_new, caphidden_new;
	bool			 local_kw;	/* keywords are ours */
	uint32_t		 resets[BACKEND_COUNT];	/* side epochs */
	bool			 stale;		/* a restore failed */
};

static const struct {
	const char	*name;
	uint8_t		 bit;
} flag_names[] = {
	{ "\\Seen", VF_SEEN },
	{ "\\Answered", VF_ANSWERED },
	{ "\\Flagged", VF_FLAGGED },
	{ "\\Deleted", VF_DELETED },
	{ "\\Draft", VF_DRAFT },
};

uint8_t
view_flag_bit(const char *atom)
{
	size_t	 i;

	for (i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
		if (strcasecmp(atom, flag_names[i].name) == 0)
			return flag_names[i].bit;
	return 0;
}

const char *
view_flag_text(uint8_t bits, char *buf)
{
	size_t	 i;

	buf[0] = '\0';
	for (i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++) {
		if (!(bits & flag_names[i].bit))
			continue;
		if (buf[0] != '\0')
			strcat(buf, " ");
		strcat(buf, flag_names[i].name);
	}
	return buf;
}

struct view *
view_new(struct state *store, int64_t fid, uint32_t uidvalidity,
    uint32_t uidnext)
{
	struct view	*v;

	if ((v = calloc(1, sizeof(*v))) == NULL)
		return NULL;
	v->store = store;
	v->fid = fid;
	v->uidvalidity = uidvalidity;
	v->uidnext = uidnext > 0 ? uidnext : 1;
	v->modseq = 1;
	return v;
}

void
view_free(struct view **vp)
{
	struct view	*v = *vp;
	size_t		 i;

	if (v == NULL)
		return;
	for (i = 1; i < v->nkw; i++)
		free(v->kw[i]);
	free(v->kw);
	free(v->m);
	for (i = 0; i < BACKEND_COUNT; i++)
		free(v->ux[i]);
	free(v->graves);
	free(v->grave_keys.h);
	free(v->oldtomb.h);
	free(v->scanned);
	free(v->hidden_new);
	free(v);
	*vp = NULL;
}

uint32_t
view_uidvalidity(const struct view *v)
{
	return v->uidvalidity;
}

uint32_t
view_uidnext(const struct view *v)
{
	return v->uidnext;
}

uint32_t
view_modseq(const struct view *v)
{
	return v->modseq;
}

uint32_t
view_expunges(const struct view *v)
{
	return v->expunges;
}

size_t
view_count(const struct view *v)
{
	return v->n;
}

const struct vmsg *
view_at(const struct view *v, size_t i)
{
	return &v->m[i];
}

struct view_side *
view_side(struct view *v, enum backend_side s)
{
	return &v->side[s];
}

const struct view_stats *
view_stats(const struct view *v)
{
	return &v->stats;
}

void
view_stats_reset(struct view *v)
{
	memset(&v->stats, 0, sizeof(v->stats));
}

enum backend_side
vmsg_serving(const struct vmsg *m)
{
	return m->uid[BACKEND_NEW] != 0 ? BACKEND_NEW : BACKEND_LEGACY;
}

uint8_t
vmsg_flags(const struct vmsg *m)
{
	if (m->want & VF_WANT)
		return m->want & ~VF_WANT;
	return m->flags[vmsg_serving(m)];
}

const char *
view_keywords(const struct view *v, uint16_t kw)
{
	return kw != 0 && kw < v->nkw ? v->kw[kw] : "";
}

size_t
view_keyword_sets(const struct view *v)
{
	return v->nkw;
}

size_t
view_memory(const struct view *v)
{
	size_t	 n, i;

	n = sizeof(*v) + v->cap * sizeof(*v->m) +
	    v->capgraves * sizeof(*v->graves) +
	    (v->grave_keys.cap + v->oldtomb.cap) * sizeof(uint64_t);
	for (i = 0; i < BACKEND_COUNT; i++)
		n += v->capux[i] * sizeof(struct uidx);
	for (i = 1; i < v->nkw; i++)
		n += strlen(v->kw[i]) + 1 + sizeof(char *);
	return n;
}

/*
 * Lookups.
 */

size_t
view_lower_bound(const struct view *v, uint32_t vuid)
{
	size_t	 lo = 0, hi = v->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (v->m[mid].vuid < vuid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct vmsg *
view_get(struct view *v, uint32_t vuid)
{
	size_t	 i = view_lower_bound(v, vuid);

	return i < v->n && v->m[i].vuid == vuid ? &v->m[i] : NULL;
}

const struct vmsg *
view_find(const struct view *v, uint32_t vuid)
{
	return view_get((struct view *)v, vuid);
}

/* Index of the first ux entry with uid >= uid. */
static size_t
ux_lower_bound(const struct view *v, int side, uint32_t uid)
{
	size_t	 lo = 0, hi = v->nux[side], mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (v->ux[side][mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int
ux_cmp(const void *a, const void *b)
{
	const struct uidx	*x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* Adds uid -> vuid; appends when it is the largest, as it nearly always is. */
static int
ux_insert(struct view *v, int side, uint32_t uid, uint32_t vuid)
{
	size_t	 i, n = v->nux[side];

	if (array_grow(&v->ux[side], &v->capux[side], n + 1,
	    sizeof(struct uidx)) == -1)
		return -1;
	i = n > 0 && v->ux[side][n - 1].uid > uid ?
	    ux_lower_bound(v, side, uid) : n;
	memmove(&v->ux[side][i + 1], &v->ux[side][i],
	    (n - i) * sizeof(struct uidx));
	v->ux[side][i].uid = uid;
	v->ux[side][i].vuid = vuid;
	v->nux[side]++;
	return 0;
}

static void
ux_remove(struct view *v, int side, uint32_t uid)
{
	size_t	 i = ux_lower_bound(v, side, uid);

	if (i < v->nux[side] && v->ux[side][i].uid == uid) {
		memmove(&v->ux[side][i], &v->ux[side][i + 1],
		    (v->nux[side] - i - 1) * sizeof(struct uidx));
		v->nux[side]--;
	}
}

/* After a build or a load: give back what doubling took in advance. */
static void
shrink(struct view *v)
{
	void	*p;
	int	 side;

	if (v->n > 0 && v->n < v->cap &&
	    (p = reallocarray(v->m, v->n, sizeof(*v->m))) != NULL) {
		v->m = p;
		v->cap = v->n;
	}
	for (side = 0; side < BACKEND_COUNT; side++)
		if (v->nux[side] > 0 && v->nux[side] < v->capux[side] &&
		    (p = reallocarray(v->ux[side], v->nux[side],
		    sizeof(struct uidx))) != NULL) {
			v->ux[side] = p;
			v->capux[side] = v->nux[side];
		}
}

/*
 * Keyword sets, interned: most folders use none or a handful.
 */
static int
kw_intern(struct view *v, const char *text, uint16_t *kw_r)
{
	size_t	 i, cap;
	char	**nk;

	*kw_r = 0;
	if (text == NULL || *text == '\0')
		return 0;
	for (i = 1; i < v->nkw; i++)
		if (strcmp(v->kw[i], text) == 0) {
			*kw_r = (uint16_t)i;
			return 0;
		}
	if (v->nkw == 0)
		v->nkw = 1;
	if (v->nkw >= UINT16_MAX)
		return -1;
	cap = v->nkw + 1;
	if ((nk = reallocarray(v->kw, cap, sizeof(*nk))) == NULL)
		return -1;
	v->kw = nk;
	if ((v->kw[v->nkw] = strdup(text)) == NULL)
		return -1;
	*kw_r = (uint16_t)v->nkw++;
	return 0;
}

/*
 * Tombstones.
 */
static bool
keyset_has(const struct keyset *k, uint64_t h)
{
	size_t	 i;

	if (h == 0 || k->n == 0)
		return false;
	for (i = h & (k->cap - 1); k->h[i] != 0; i = (i + 1) & (k->cap - 1))
		if (k->h[i] == h)
			return true;
	return false;
}

static int
keyset_put(struct keyset *k, uint64_t h)
{
	uint64_t	*old = k->h;
	size_t		 oldcap = k->cap, i;

	if (h == 0 || keyset_has(k, h))
		return 0;
	if ((k->n + 1) * 2 > k->cap) {
		size_t ncap = k->cap ? k->cap * 2 : 64;

		if ((k->h = calloc(ncap, sizeof(*k->h))) == NULL) {
			k->h = old;
			return -1;
		}
		k->cap = ncap;
		k->n = 0;
		for (i = 0; i < oldcap; i++)
			if (old[i] != 0)
				keyset_put(k, old[i]);
		free(old);
	}
	for (i = h & (k->cap - 1); k->h[i] != 0; i = (i + 1) & (k->cap - 1))
		;
	k->h[i] = h;
	k->n++;
	return 0;
}

static bool
grave_has_key(const struct grave *g, uint64_t h)
{
	return h != 0 && (g->key[0] == h || g->key[1] == h || g->key[2] == h);
}

/* The tombstone already hiding side's copy uid, if any. */
static struct grave *
grave_holding(struct view *v, int side, const struct bmsg *b)
{
	size_t	 i;

	if (!keyset_has(&v->grave_keys, b->keyh) &&
	    !keyset_has(&v->grave_keys, b->akeyh))
		return NULL;
	for (i = 0; i < v->ngraves; i++)
		if (v->graves[i].uid[side] == b->uid)
			return &v->graves[i];
	return NULL;
}

/* The oldest tombstone of a message the legacy server had, with b's key
 * and side's place empty. */
static struct grave *
grave_free(struct view *v, int side, const struct bmsg *b)
{
	struct grave	*g;
	size_t		 i;

	if (!keyset_has(&v->grave_keys, b->keyh) &&
	    !keyset_has(&v->grave_keys, b->akeyh))
		return NULL;
	for (i = 0; i < v->ngraves; i++) {
		g = &v->graves[i];
		/* Only a message the legacy server had is copied by the
		 * migration; a copy of one only the new server had is the
		 * user's own doing (COPY, APPEND, a restore): it shows. */
		if (g->key[0] == 0)
			continue;
		if (g->uid[side] == 0 && (grave_has_key(g, b->keyh) ||
		    grave_has_key(g, b->akeyh)))
			return g;
	}
	return NULL;
}

static int
grave_put(struct view *v, const struct grave *g)
{
	int	 i;

	if (array_grow(&v->graves, &v->capgraves, v->ngraves + 1,
	    sizeof(*v->graves)) == -1)
		return -1;
	v->graves[v->ngraves++] = *g;
	for (i = 0; i < 3; i++)
		if (keyset_put(&v->grave_keys, g->key[i]) == -1)
			return -1;
	return 0;
}

static int
grave_uid(struct view *v, struct grave *g, int side, uint32_t uid)
{
	g->uid[side] = uid;
	if (v->store != NULL)
		return state_grave_uid(v->store, v->fid, g->vuid, side, uid);
	return 0;
}

/*
 * Loading.
 */
static int
load_msg(const struct state_vmsg *r, void *arg)
{
	struct view	*v = arg;
	struct vmsg	*m;
	int		 side;

	if (array_grow(&v->m, &v->cap, v->n + 1, sizeof(*v->m)) == -1)
		return -1;
	m = &v->m[v->n++];
	memset(m, 0, sizeof(*m));
	m->vuid = r->vuid;
	m->size = r->size;
	m->idate = r->idate;
	m->lkey = r->lkeyh;
	m->nkey = r->nkeyh;
	m->nakey = r->nakeyh;
	m->modseq = v->modseq;
	if (r->want >= 0) {
		m->want = VF_WANT | (uint8_t)r->want;
		v->nwant++;
	}
	for (side = 0; side < BACKEND_COUNT; side++) {
		m->uid[side] = r->uid[side];
		m->flags[side] = r->flags[side];
		if (r->uid[side] == 0)
			continue;
		/* Appended unsorted; view_load() sorts once at the end. */
		if (array_grow(&v->ux[side], &v->capux[side],
		    v->nux[side] + 1, sizeof(struct uidx)) == -1)
			return -1;
		v->ux[side][v->nux[side]].uid = r->uid[side];
		v->ux[side][v->nux[side]++].vuid = r->vuid;
	}
	return kw_intern(v, r->keywords, &m->kw);
}

static int
load_tomb(uint64_t h, void *arg)
{
	return keyset_put(&((struct view *)arg)->oldtomb, h);
}

static int
load_grave(const struct state_grave *r, void *arg)
{
	struct grave	 g;

	g.vuid = r->vuid;
	memcpy(g.key, r->keyh, sizeof(g.key));
	memcpy(g.uid, r->uid, sizeof(g.uid));
	return grave_put(arg, &g);
}

static void
view_restore_now(void *arg)
{
	struct view	*v = arg;

	v->stale = view_load(v) == -1;
}

int
view_restore(struct view *v)
{
	if (v->store == NULL)
		return 0;
	if (state_after_rollback(v->store, view_restore_now, v) == -1)
		return -1;
	return v->stale ? -1 : 0;
}

bool
view_stale(const struct view *v)
{
	return v->stale;
}

int
view_load(struct view *v)
{
	struct state_folder	 f;
	int			 side;

	if (v->store == NULL)
		return 0;
	/*
	 * Whole, every time: after a failed transaction the memory may hold
	 * half of it (a side's UIDNEXT moved on would skip the messages it
	 * had brought).  UIDNEXT only ever grows: a vuid handed out in
	 * memory is not handed out again.
	 */
	if (state_folder_read(v->store, v->fid, &f) == -1)
		return -1;
	if (f.uidnext > v->uidnext)
		v->uidnext = f.uidnext;
	for (side = 0; side < BACKEND_COUNT; side++) {
		memset(&v->side[side], 0, sizeof(v->side[side]));
		v->side[side].uidvalidity = f.side_uidvalidity[side];
		v->side[side].uidnext = f.side_uidnext[side];
		v->side[side].highestmodseq = f.side_modseq[side];
		v->nux[side] = 0;
	}
	v->ngraves = 0;
	free(v->grave_keys.h);
	free(v->oldtomb.h);
	memset(&v->grave_keys, 0, sizeof(v->grave_keys));
	memset(&v->oldtomb, 0, sizeof(v->oldtomb));
	v->n = 0;
	v->nwant = 0;
	if (state_vmsg_each(v->store, v->fid, load_msg, v) == -1 ||
	    state_tomb_each(v->store, v->fid, load_tomb, v) == -1 ||
	    state_grave_each(v->store, v->fid, load_grave, v) == -1)
		return -1;
	for (side = 0; side < BACKEND_COUNT; side++)
		if (v->nux[side] > 0)
			qsort(v->ux[side], v->nux[side], sizeof(struct uidx),
			    ux_cmp);
	shrink(v);
	return 0;
}

/*
 * Writing through to the store.
 */
static int
store_side(struct view *v, const struct vmsg *m, int side,
    const struct bmsg *b)
{
	if (v->store == NULL)
		return 0;
	return state_vmsg_side(v->store, v->fid, m->vuid, side, m->uid[side],
	    m->flags[side], b ? b->key : NULL, side == BACKEND_LEGACY ?
	    m->lkey : m->nkey, b ? b->akey : NULL, side == BACKEND_LEGACY ?
	    0 : m->nakey);
}

static int
store_flags(struct view *v, const struct vmsg *m, int side)
{
	if (v->store == NULL)
		return 0;
	return state_vmsg_flags(v->store, v->fid, m->vuid, side,
	    m->flags[side], side == (int)vmsg_serving(m) ?
	    view_keywords(v, m->kw) : NULL);
}

static int
store_insert(struct view *v, const struct vmsg *m, int side,
    const struct bmsg *b)
{
	struct state_vmsg	 r;

	if (v->store == NULL)
		return 0;
	memset(&r, 0, sizeof(r));
	r.vuid = m->vuid;
	r.uid[side] = m->uid[side];
	r.flags[side] = m->flags[side];
	r.size = m->size;
	r.idate = m->idate;
	r.keywords = b->keywords;
	if (side == BACKEND_LEGACY) {
		r.lkey = b->key;
		r.lkeyh = m->lkey;
	} else {
		r.nkey = b->key;
		r.nkeyh = m->nkey;
		r.nakey = b->akey;
		r.nakeyh = m->nakey;
	}
	return state_vmsg_insert(v->store, v->fid, &r);
}

static int
store_uidnext(struct view *v)
{
	if (v->store == NULL)
		return 0;
	return state_folder_uidnext(v->store, v->fid, v->uidnext);
}

/*
 * Arrivals.
 */

/* Sets the arriving copy on m, its flags and keys; the caller stores. */
static int
attach(struct view *v, struct vmsg *m, int side, const struct bmsg *b)
{
	uint8_t		 shown = vmsg_flags(m);
	uint16_t	 kw = m->kw;

	m->uid[side] = b->uid;
	m->flags[side] = b->flags;
	m->orphan &= ~(1u << side);
	if (side == BACKEND_LEGACY)
		m->lkey = b->keyh;
	else {
		m->nkey = b->keyh;
		m->nakey = b->akeyh;
	}
	if ((int)vmsg_serving(m) == side && !(v->local_kw && m->kw != 0) &&
	    kw_intern(v, b->keywords, &m->kw) == -1)
		return -1;
	if (vmsg_flags(m) != shown || m->kw != kw)
		m->modseq = ++v->modseq;
	return ux_insert(v, side, b->uid, m->vuid);
}

static int
append_new(struct view *v, int side, const struct bmsg *b, uint32_t vuid)
{
	struct vmsg	*m;

	if (array_grow(&v->m, &v->cap, v->n + 1, sizeof(*v->m)) == -1)
		return -1;
	m = &v->m[v->n++];
	memset(m, 0, sizeof(*m));
	m->vuid = vuid;
	m->size = b->size;
	m->idate = b->idate;
	if (attach(v, m, side, b) == -1)
		return -1;
	m->modseq = ++v->modseq;
	v->stats.added++;
	return store_insert(v, m, side, b);
}

/*
 * The candidates of one batch: messages without a copy on the arriving
 * side, by each of their keys.  Chains run in ascending vuid order, so
 * the i-th copy of a key meets the i-th candidate (DESIGN §4's multiset
 * rule).
 */
struct cand {
	uint64_t	*key;		/* open addressing, 0 empty */
	size_t		*head;		/* index into next[]/idx[] + 1 */
	size_t		 cap;
	size_t		*next;		/* chain links, entry + 1 */
	uint32_t	*vuid;		/* entry -> vuid */
	size_t		 n, ncap;
};

static void
cand_free(struct cand *c)
{
	free(c->key);
	free(c->head);
	free(c->next);
	free(c->vuid);
}

static size_t
cand_slot(const struct cand *c, uint64_t k)
{
	size_t	 i;

	for (i = k & (c->cap - 1); c->key[i] != 0 && c->key[i] != k;
	    i = (i + 1) & (c->cap - 1))
		;
	return i;
}

static int
cand_add(struct cand *c, uint64_t k, uint32_t vuid)
{
	size_t	 slot, e, cap = c->ncap;

	if (k == 0)
		return 0;
	if (array_grow(&c->next, &c->ncap, c->n + 1, sizeof(*c->next)) ==
	    -1 || array_grow(&c->vuid, &cap, c->n + 1, sizeof(*c->vuid)) ==
	    -1)
		return -1;
	e = c->n++;
	c->vuid[e] = vuid;
	slot = cand_slot(c, k);
	c->key[slot] = k;
	c->next[e] = c->head[slot];	/* callers add in descending vuid */
	c->head[slot] = e + 1;
	return 0;
}

static int
cand_build(struct view *v, int side, struct cand *c)
{
	size_t	 i, cands = 0;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < v->n; i++)
		if (v->m[i].uid[side] == 0)
			cands++;
	for (c->cap = 64; c->cap < cands * 6 + 1; c->cap *= 2)
		;
	if ((c->key = calloc(c->cap, sizeof(*c->key))) == NULL ||
	    (c->head = calloc(c->cap, sizeof(*c->head))) == NULL)
		return -1;
	for (i = v->n; i-- > 0;) {
		const struct vmsg *m = &v->m[i];

		if (m->uid[side] != 0)
			continue;
		if (cand_add(c, m->lkey, m->vuid) == -1 ||
		    (m->nkey != m->lkey && cand_add(c, m->nkey, m->vuid) ==
		    -1) || (m->nakey != m->lkey && m->nakey != m->nkey &&
		    cand_add(c, m->nakey, m->vuid) == -1))
			return -1;
	}
	return 0;
}

/* The oldest candidate for key k that still has no copy on side. */
static struct vmsg *
cand_take(struct view *v, struct cand *c, int side, uint64_t k)
{
	struct vmsg	*m;
	size_t		 slot, e;

	if (k == 0 || c->cap == 0)
		return NULL;
	slot = cand_slot(c, k);
	if (c->key[slot] != k)
		return NULL;
	/* Entries already taken are dropped from the head for good. */
	while ((e = c->head[slot]) != 0) {
		m = view_get(v, c->vuid[e - 1]);
		if (m != NULL && m->uid[side] == 0)
			return m;
		c->head[slot] = c->next[e - 1];
	}
	return NULL;
}

static struct vmsg *
cand_match(struct view *v, struct cand *c, int side, const struct bmsg *b)
{
	struct vmsg	*m, *a;

	m = cand_take(v, c, side, b->keyh);
	a = cand_take(v, c, side, b->akeyh);
	if (m == NULL || (a != NULL && a->vuid < m->vuid))
		m = a;
	return m;
}

/* A copy kept out of sight: counted, and told for tombstone-action. */
static int
hide(struct view *v, int side, const struct bmsg *b)
{
	v->stats.hidden++;
	if (side == BACKEND_NEW && array_grow(&v->hidden_new,
	    &v->caphidden_new, v->nhidden_new + 1,
	    sizeof(*v->hidden_new)) == 0)
		v->hidden_new[v->nhidden_new++] = b->uid;
	return 0;
}

int
view_add(struct view *v, enum backend_side side, const struct bmsg *b,
    size_t n)
{
	struct cand	 c;
	struct vmsg	*m;
	struct grave	*g;
	size_t		 i;
	bool		 built = false;
	int		 rc = -1;

	memset(&c, 0, sizeof(c));
	for (i = 0; i < n; i++) {
		/* Recorded already (an APPEND imapmerge made itself). */
		if (view_by_uid(v, side, b[i].uid) != NULL)
			continue;
		/* The very copy a tombstone hides (read again). */
		if (grave_holding(v, side, &b[i]) != NULL) {
			hide(v, side, &b[i]);
			continue;
		}
		/* The candidates cost a pass over the whole view: only when
		 * a message is really new (a sync with none adds nothing). */
		if (!built && cand_build(v, side, &c) == -1)
			goto out;
		built = true;
		/* A visible message waiting for its copy comes first: of two
		 * twins, the one deleted must not take the other's. */
		if ((m = cand_match(v, &c, side, &b[i])) != NULL) {
			if (attach(v, m, side, &b[i]) == -1 ||
			    store_side(v, m, side, &b[i]) == -1)
				goto out;
			v->stats.paired++;
			continue;
		}
		if ((g = grave_free(v, side, &b[i])) != NULL) {
			if (grave_uid(v, g, side, b[i].uid) == -1)
				goto out;
			hide(v, side, &b[i]);
			continue;
		}
		if (keyset_has(&v->oldtomb, b[i].keyh) ||
		    keyset_has(&v->oldtomb, b[i].akeyh)) {
			hide(v, side, &b[i]);
			continue;
		}
		if (append_new(v, side, &b[i], v->uidnext++) == -1)
			goto out;
	}
	rc = store_uidnext(v);
 out:
	cand_free(&c);
	return rc;
}

/*
 * First build: pair everything, then number by INTERNALDATE so that a
 * client sees the folder in the order the mail came in.  Pairing runs on
 * provisional vuids with the store switched off; only the final numbering
 * is written.
 */
static int
idate_cmp(const void *a, const void *b)
{
	const struct vmsg	*x = a, *y = b;

	if (x->idate != y->idate)
		return x->idate < y->idate ? -1 : 1;
	return x->vuid < y->vuid ? -1 : x->vuid > y->vuid;
}

static void
ux_rebuild(struct view *v)
{
	size_t	 i;
	int	 side;

	for (side = 0; side < BACKEND_COUNT; side++) {
		v->nux[side] = 0;
		for (i = 0; i < v->n; i++) {
			if (v->m[i].uid[side] == 0)
				continue;
			v->ux[side][v->nux[side]].uid = v->m[i].uid[side];
			v->ux[side][v->nux[side]++].vuid = v->m[i].vuid;
		}
		if (v->nux[side] > 0)
			qsort(v->ux[side], v->nux[side], sizeof(struct uidx),
			    ux_cmp);
	}
}

static const struct bmsg *
bmsg_by_uid(const struct bmsg *b, size_t n, uint32_t uid)
{
	size_t	 lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (b[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && b[lo].uid == uid ? &b[lo] : NULL;
}

/* The full row of a built message, from both arrivals. */
static int
build_store(struct view *v, const struct vmsg *m, const struct bmsg *lb,
    const struct bmsg *nb)
{
	struct state_vmsg	 r;

	memset(&r, 0, sizeof(r));
	r.vuid = m->vuid;
	r.size = m->size;
	r.idate = m->idate;
	memcpy(r.uid, m->uid, sizeof(r.uid));
	memcpy(r.flags, m->flags, sizeof(r.flags));
	r.keywords = nb != NULL ? nb->keywords : lb != NULL ? lb->keywords :
	    NULL;
	if (lb != NULL) {
		r.lkey = lb->key;
		r.lkeyh = m->lkey;
	}
	if (nb != NULL) {
		r.nkey = nb->key;
		r.nkeyh = m->nkey;
		r.nakey = nb->akey;
		r.nakeyh = m->nakey;
	}
	return state_vmsg_insert(v->store, v->fid, &r);
}

int
view_build(struct view *v, const struct bmsg *legacy, size_t nl,
    const struct bmsg *new, size_t nn)
{
	struct state	*store = v->store;
	size_t		 i;

	if (v->n != 0)
		return -1;
	v->store = NULL;
	if (view_add(v, BACKEND_LEGACY, legacy, nl) == -1 ||
	    view_add(v, BACKEND_NEW, new, nn) == -1) {
		v->store = store;
		return -1;
	}
	v->store = store;
	if (v->n > 0)
		qsort(v->m, v->n, sizeof(*v->m), idate_cmp);
	for (i = 0; i < v->n; i++)
		v->m[i].vuid = (uint32_t)(i + 1);
	v->uidnext = (uint32_t)v->n + 1;
	ux_rebuild(v);
	shrink(v);
	if (store == NULL)
		return 0;
	for (i = 0; i < v->n; i++) {
		const struct vmsg *m = &v->m[i];

		if (build_store(v, m, m->uid[BACKEND_LEGACY] ? bmsg_by_uid(
		    legacy, nl, m->uid[BACKEND_LEGACY]) : NULL,
		    m->uid[BACKEND_NEW] ? bmsg_by_uid(new, nn,
		    m->uid[BACKEND_NEW]) : NULL) == -1)
			return -1;
	}
	return store_uidnext(v);
}

/*
 * Scans and the lifecycle of copies that vanish.
 */
int
view_scan_begin(struct view *v, enum backend_side side, uint32_t below,
    uint32_t since)
{
	v->scan_below = below > 0 ? below : UINT32_MAX;
	v->scan_since = since;
	free(v->scanned);
	if ((v->scanned = calloc(v->nux[side] / 8 + 1, 1)) == NULL)
		return -1;
	v->scanning = side + 1;
	v->scan_next = 0;
	return 0;
}

int
view_scan_flags(struct view *v, enum backend_side side, uint32_t uid,
    uint8_t flags, const char *keywords)
{
	struct vmsg	*m;
	uint16_t	 kw = 0;
	size_t		 i;
	bool		 serving;

	if (v->scanning != (int)side + 1)
		return -1;
	/* Servers answer FETCH 1:* in UID order: try the next entry first. */
	i = v->scan_next;
	if (i >= v->nux[side] || v->ux[side][i].uid != uid)
		i = ux_lower_bound(v, side, uid);
	if (i >= v->nux[side] || v->ux[side][i].uid != uid)
		return 0;		/* hidden, or not ours */
	v->scan_next = i + 1;
	v->scanned[i / 8] |= 1u << (i % 8);
	if ((m = view_get(v, v->ux[side][i].vuid)) == NULL)
		return 0;
	/* Changed here while the scan was on its way (a STORE of another
	 * session): the next scan judges it. */
	if (m->modseq > v->scan_since)
		return 0;
	serving = vmsg_serving(m) == side;
	if (serving && v->local_kw)
		kw = m->kw;		/* ours, not the server's */
	else if (serving && kw_intern(v, keywords, &kw) == -1)
		return -1;
	if (m->flags[side] == flags && (!serving || m->kw == kw))
		return 0;
	m->flags[side] = flags;
	if (serving && !(m->want & VF_WANT)) {
		m->kw = kw;
		m->modseq = ++v->modseq;
	} else if (serving)
		m->kw = kw;
	v->stats.flags++;
	return store_flags(v, m, side);
}

static int
vuid_cmp(const void *a, const void *b)
{
	const uint32_t	*x = a, *y = b;

	return *x < *y ? -1 : *x > *y;
}

/* Removes the sorted vuids from the view (and the store) in one pass. */
static int
expunge_many(struct view *v, const uint32_t *gone, size_t ngone)
{
	size_t	 i, j = 0, k = 0;
	int	 side;

	if (ngone == 0)
		return 0;
	for (i = 0; i < v->n; i++) {
		if (k < ngone && v->m[i].vuid == gone[k]) {
			for (side = 0; side < BACKEND_COUNT; side++)
				if (v->m[i].uid[side] != 0)
					ux_remove(v, side, v->m[i].uid[side]);
			if (v->store != NULL && state_vmsg_delete(v->store,
			    v->fid, gone[k]) == -1)
				return -1;
			if (v->m[i].want & VF_WANT)
				v->nwant--;
			k++;
			continue;
		}
		v->m[j++] = v->m[i];
	}
	v->stats.expunged += v->n - j;
	v->n = j;
	v->expunges++;
	v->modseq++;
	return 0;
}

/*
 * One copy is gone from side: paired -> the other copy carries on, except
 * that a new copy vanishing means the user deleted or moved it on the new
 * server, so the legacy copy must never come back (tombstone); a lone
 * copy vanishing takes the message with it.
 */
static int
vanish(struct view *v, struct vmsg *m, int side, uint32_t **gone,
    size_t *ngone, size_t *capgone)
{
	int	 other = side == BACKEND_NEW ? BACKEND_LEGACY : BACKEND_NEW;
	bool	 has_other = m->uid[other] != 0 || (m->orphan & (1u << other));

	m->orphan &= ~(1u << side);
	if (has_other && side == BACKEND_LEGACY) {
		m->uid[side] = 0;
		m->flags[side] = 0;
		v->stats.unpaired++;
		return store_side(v, m, side, NULL);
	}
	if (has_other && view_tombstone(v, m->vuid) == -1)
		return -1;
	if (array_grow(gone, capgone, *ngone + 1, sizeof(**gone)) == -1)
		return -1;
	(*gone)[(*ngone)++] = m->vuid;
	return 0;
}

int
view_scan_end(struct view *v, enum backend_side side)
{
	uint32_t	*gone = NULL;
	size_t		 ngone = 0, capgone = 0, i, nvan = 0;
	uint32_t	*van = NULL;
	struct vmsg	*m;
	int		 rc = -1;

	if (v->scanning != (int)side + 1)
		return -1;
	v->scanning = 0;
	/* Collect first: vanish() changes the index being walked. */
	if ((van = calloc(v->nux[side] + v->n + 1, sizeof(*van))) == NULL)
		goto out;
	for (i = 0; i < v->nux[side] && v->ux[side][i].uid < v->scan_below;
	    i++)
		if (!(v->scanned[i / 8] & (1u << (i % 8))))
			van[nvan++] = v->ux[side][i].vuid;
	for (i = 0; i < v->n; i++)
		if ((v->m[i].orphan & (1u << side)) && v->m[i].uid[side] == 0)
			van[nvan++] = v->m[i].vuid;
	for (i = 0; i < nvan; i++) {
		if ((m = view_get(v, van[i])) == NULL)
			continue;
		if (m->uid[side] != 0)
			ux_remove(v, side, m->uid[side]);
		if (vanish(v, m, side, &gone, &ngone, &capgone) == -1)
			goto out;
	}
	if (ngone > 0)
		qsort(gone, ngone, sizeof(*gone), vuid_cmp);
	rc = expunge_many(v, gone, ngone);
 out:
	free(van);
	free(gone);
	free(v->scanned);
	v->scanned = NULL;
	return rc;
}

int
view_side_reset(struct view *v, enum backend_side side)
{
	size_t	 i;

	for (i = 0; i < v->n; i++) {
		if (v->m[i].uid[side] == 0)
			continue;
		v->m[i].uid[side] = 0;
		v->m[i].orphan |= 1u << side;
	}
	v->nux[side] = 0;
	memset(&v->side[side], 0, sizeof(v->side[side]));
	v->resets[side]++;
	/* The copies tombstones hid come again under new UIDs. */
	for (i = 0; i < v->ngraves; i++)
		v->graves[i].uid[side] = 0;
	if (v->store != NULL && (state_vmsg_side_reset(v->store, v->fid,
	    side) == -1 || state_grave_reset(v->store, v->fid, side) == -1))
		return -1;
	return 0;
}

uint32_t
view_side_epoch(const struct view *v, enum backend_side side)
{
	return v->resets[side];
}

void
view_side_epoch_bump(struct view *v, enum backend_side side)
{
	v->resets[side]++;
}

int
view_tombstone(struct view *v, uint32_t vuid)
{
	const struct vmsg	*m;
	struct grave		 g;
	struct state_grave	 r;

	if ((m = view_get(v, vuid)) == NULL)
		return 0;
	/* The legacy copy stays on its server (legacy-writes): hidden by
	 * UID.  The new copy is gone (expunged, moved, deleted there): its
	 * place waits for the copy the migration may make again. */
	memset(&g, 0, sizeof(g));
	g.vuid = vuid;
	g.key[0] = m->lkey;
	g.key[1] = m->nkey;
	g.key[2] = m->nakey;
	g.uid[BACKEND_LEGACY] = m->uid[BACKEND_LEGACY];
	if (grave_put(v, &g) == -1)
		return -1;
	if (v->store == NULL)
		return 0;
	r.vuid = g.vuid;
	memcpy(r.keyh, g.key, sizeof(r.keyh));
	memcpy(r.uid, g.uid, sizeof(r.uid));
	return state_grave_add(v->store, v->fid, &r);
}

/* The user put a message with this key back (APPEND): it shows again. */
int
view_untomb(struct view *v, uint64_t h)
{
	struct keyset	 keys = { NULL, 0, 0 };
	size_t		 i, j;
	int		 k, rc = 0;

	if (h == 0 || (!keyset_has(&v->grave_keys, h) &&
	    !keyset_has(&v->oldtomb, h)))
		return 0;
	for (i = j = 0; i < v->ngraves; i++) {
		if (grave_has_key(&v->graves[i], h)) {
			if (v->store != NULL && state_grave_del(v->store,
			    v->fid, v->graves[i].vuid) == -1)
				rc = -1;
			continue;
		}
		v->graves[j++] = v->graves[i];
		for (k = 0; k < 3; k++)
			if (keyset_put(&keys, v->graves[j - 1].key[k]) == -1)
				rc = -1;
	}
	v->ngraves = j;
	free(v->grave_keys.h);
	v->grave_keys = keys;
	if (keyset_has(&v->oldtomb, h)) {
		keys.h = NULL;
		keys.n = keys.cap = 0;
		for (i = 0; i < v->oldtomb.cap; i++)
			if (v->oldtomb.h[i] != 0 && v->oldtomb.h[i] != h &&
			    keyset_put(&keys, v->oldtomb.h[i]) == -1)
				rc = -1;
		free(v->oldtomb.h);
		v->oldtomb = keys;
		if (v->store != NULL &&
		    state_tomb_del(v->store, v->fid, h) == -1)
			rc = -1;
	}
	return rc;
}

int
view_expunge(struct view *v, uint32_t vuid)
{
	if (view_get(v, vuid) == NULL)
		return 0;
	return expunge_many(v, &vuid, 1);
}

int
view_set_flags(struct view *v, uint32_t vuid, enum backend_side side,
    uint8_t flags)
{
	struct vmsg	*m;

	if ((m = view_get(v, vuid)) == NULL || m->uid[side] == 0 ||
	    m->flags[side] == flags)
		return 0;
	m->flags[side] = flags;
	if (vmsg_serving(m) == side)
		m->modseq = ++v->modseq;
	return store_flags(v, m, side);
}

int
view_set_keywords(struct view *v, uint32_t vuid, const char *text)
{
	struct vmsg	*m;
	uint16_t	 kw;

	if ((m = view_get(v, vuid)) == NULL)
		return 0;
	if (kw_intern(v, text, &kw) == -1)
		return -1;
	if (kw == m->kw)
		return 0;
	m->kw = kw;
	m->modseq = ++v->modseq;
	return store_flags(v, m, vmsg_serving(m));
}

int
view_want(struct view *v, uint32_t vuid, uint8_t flags)
{
	struct vmsg	*m;

	if ((m = view_get(v, vuid)) == NULL)
		return 0;
	if (!(m->want & VF_WANT))
		v->nwant++;
	if (m->want != (VF_WANT | flags) && vmsg_flags(m) != flags)
		m->modseq = ++v->modseq;
	m->want = VF_WANT | flags;
	if (v->store != NULL)
		return state_vmsg_want(v->store, v->fid, vuid, flags);
	return 0;
}

int
view_want_clear(struct view *v, uint32_t vuid)
{
	struct vmsg	*m;
	uint8_t		 shown;

	if ((m = view_get(v, vuid)) == NULL || !(m->want & VF_WANT))
		return 0;
	shown = vmsg_flags(m);
	m->want = 0;
	v->nwant--;
	if (vmsg_flags(m) != shown)
		m->modseq = ++v->modseq;
	if (v->store != NULL)
		return state_vmsg_want(v->store, v->fid, vuid, -1);
	return 0;
}

size_t
view_nwant(const struct view *v)
{
	return v->nwant;
}

size_t
view_hidden_take(struct view *v, uint32_t **uids)
{
	size_t	 n = v->nhidden_new;

	*uids = v->hidden_new;
	v->hidden_new = NULL;
	v->nhidden_new = v->caphidden_new = 0;
	return n;
}

int
view_hidden_gone(struct view *v, const uint32_t *uids, size_t n)
{
	size_t	 i, j;

	for (i = 0; i < v->ngraves; i++)
		for (j = 0; j < n; j++)
			if (v->graves[i].uid[BACKEND_NEW] == uids[j] &&
			    uids[j] != 0 && grave_uid(v, &v->graves[i],
			    BACKEND_NEW, 0) == -1)
				return -1;
	return 0;
}

void
view_set_local_keywords(struct view *v, bool on)
{
	v->local_kw = on;
}

bool
view_local_keywords(const struct view *v)
{
	return v->local_kw;
}

const struct vmsg *
view_by_uid(const struct view *v, enum backend_side side, uint32_t uid)
{
	size_t	 i = ux_lower_bound(v, side, uid);

	if (i >= v->nux[side] || v->ux[side][i].uid != uid)
		return NULL;
	return view_find(v, v->ux[side][i].vuid);
}
