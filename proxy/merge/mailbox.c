/*
 * Merged mailboxes for sessions (see mailbox.h): the shared view of each
 * open unified folder, and its sync.
 *
 * A sync has two halves.  The first talks to the backends on the
 * session's own connections: SELECT each backing folder, then fetch the
 * identity of the messages that arrived since the last sync (or of all of
 * them after a UIDVALIDITY change) and the flags of every message, which
 * also tells which ones vanished.  The second half applies what came back
 * to the view in one go, inside one transaction, so the view and the
 * store never hold half a sync and two sessions syncing the same folder
 * at once cannot interleave: each scan only judges the UIDs below the
 * UIDNEXT it saw itself.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "protocol/imap_parser.h"
#include "protocol/imap_write.h"
#include "protocol/msgkey.h"
#include "protocol/mutf7.h"
#include "protocol/seqset.h"
#include "proxy/core/array.h"
#include "proxy/net/backend.h"
#include "proxy/core/clock.h"
#include "proxy/merge/folders.h"
#include "proxy/core/log.h"
#include "proxy/merge/mailbox.h"
#include "proxy/merge/mailbox_impl.h"
#include "proxy/core/server.h"
#include "proxy/imap/session_impl.h"
#include "proxy/merge/state.h"
#include "proxy/merge/user.h"
#include "proxy/merge/view.h"

#define IDENTITY_ITEMS	"UID FLAGS INTERNALDATE RFC822.SIZE " \
	"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID X-MICROSOFT-ORIGINAL-MESSAGE-ID " \
	"X-MS-EXCHANGE-PARENT-MESSAGE-ID DATE FROM TO SUBJECT)]"

/*
 * Shared views.
 */
static struct mbox *
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
static void
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
 * Reading FETCH responses.
 */

static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May",
	"Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* Days from 1970-01-01 to y-m-d, proleptic Gregorian (m 1..12). */
static int64_t
days_from_civil(int y, int m, int d)
{
	int64_t		 era;
	int		 yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - (int)era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* n decimal digits at *s, moving *s past them; -1 if they are not. */
static int
idate_num(const char **s, int n)
{
	int	 v = 0;

	for (; n > 0; n--, (*s)++) {
		if (**s < '0' || **s > '9')
			return -1;
		v = v * 10 + (**s - '0');
	}
	return v;
}

/*
 * "17-Jul-1996 02:44:25 -0700" (RFC 9051 date-time; the day may be
 * " 7") -> seconds since 1970, 0 if malformed.  By hand, not sscanf() and
 * timegm(): a cold SELECT reads one for every message.
 */
uint32_t
mbox_parse_idate(const char *s)
{
	int		 day, mon, year, hh, mm, ss, zh, zm, sign;
	long long	 t;

	while (*s == ' ')
		s++;
	if (s[0] >= '0' && s[0] <= '9' && s[1] == '-')
		day = idate_num(&s, 1);
	else
		day = idate_num(&s, 2);
	if (day < 1 || day > 31 || *s++ != '-')
		return 0;
	for (mon = 0; mon < 12; mon++)
		if (strncasecmp(s, months[mon], 3) == 0)
			break;
	if (mon == 12 || s[3] != '-')
		return 0;
	s += 4;
	if ((year = idate_num(&s, 4)) < 1970 || year > 2105 || *s++ != ' ' ||
	    (hh = idate_num(&s, 2)) < 0 || hh > 23 || *s++ != ':' ||
	    (mm = idate_num(&s, 2)) < 0 || mm > 59 || *s++ != ':' ||
	    (ss = idate_num(&s, 2)) < 0 || ss > 60 || *s++ != ' ')
		return 0;
	if (*s != '+' && *s != '-')
		return 0;
	sign = *s++ == '+' ? 1 : -1;
	if ((zh = idate_num(&s, 2)) < 0 || (zm = idate_num(&s, 2)) < 0 ||
	    zm > 59)
		return 0;
	t = days_from_civil(year, mon + 1, day) * 86400LL + hh * 3600 +
	    mm * 60 + ss - sign * (zh * 3600 + zm * 60);
	return t < 0 || t > UINT32_MAX ? 0 : (uint32_t)t;
}

void
mbox_format_idate(uint32_t t, char *buf, size_t len)
{
	time_t		 tt = (time_t)t;
	struct tm	 tm;

	gmtime_r(&tt, &tm);
	snprintf(buf, len, "%02d-%s-%04d %02d:%02d:%02d +0000", tm.tm_mday,
	    months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
	    tm.tm_sec);
}

/* Flags list -> bits and the keywords joined by spaces (in buf). */
static uint8_t
parse_flags(const struct imap_arg *list, size_t n, char *kw, size_t kwlen)
{
	const char	*a;
	uint8_t		 bits = 0, b;
	size_t		 i, used = 0, l;

	if (kw != NULL)
		kw[0] = '\0';
	for (i = 0; i < n; i++) {
		if (!imap_arg_get_atom(&list[i], &a))
			continue;
		if ((b = view_flag_bit(a)) != 0) {
			bits |= b;
			continue;
		}
		if (a[0] == '\\' || kw == NULL)
			continue;	/* \Recent and the like */
		l = strlen(a);
		if (used + l + 2 > kwlen)
			continue;
		if (used > 0)
			kw[used++] = ' ';
		memcpy(kw + used, a, l + 1);
		used += l;
	}
	return bits;
}

void
mbox_fetch_items(const struct imap_response *r, struct fetch_row *f)
{
	const struct imap_arg	*items, *fl;
	const char		*name, *str;
	size_t			 n, nfl, i;

	memset(f, 0, sizeof(*f));
	if (r->nargs < 1 || !imap_arg_get_list(&r->args[0], &items, &n))
		return;
	for (i = 0; i + 1 < n; i += 2) {
		if (!imap_arg_get_atom(&items[i], &name))
			return;
		if (strcasecmp(name, "UID") == 0)
			imap_arg_get_number(&items[i + 1], &f->uid);
		else if (strcasecmp(name, "RFC822.SIZE") == 0)
			imap_arg_get_number(&items[i + 1], &f->size);
		else if (strcasecmp(name, "INTERNALDATE") == 0 &&
		    imap_arg_get_string(&items[i + 1], &str))
			f->idate = mbox_parse_idate(str);
		else if (strcasecmp(name, "FLAGS") == 0 &&
		    imap_arg_get_list(&items[i + 1], &fl, &nfl)) {
			f->has_flags = true;
			f->flags = parse_flags(fl, nfl, f->keywords,
			    sizeof(f->keywords));
		} else if (strncasecmp(name, "BODY[", 5) == 0 &&
		    (items[i + 1].type == IMAP_ARG_LITERAL ||
		    items[i + 1].type == IMAP_ARG_QUOTED)) {
			f->hdr = items[i + 1].v.str;
			f->hdrlen = items[i + 1].len;
		}
	}
}

/*
 * The backend half of a sync.
 */
struct side_sync {
	bool		 active;	/* the folder has a part there */
	bool		 selected, failed, full;
	int		 pending;
	uint32_t	 uidvalidity, uidnext, exists;
	uint64_t	 modseq;
	uint32_t	 from;		/* identity fetched from this UID */
	struct bmsg	*arr;
	size_t		 narr, caparr;
	struct scan_row	*scan;
	size_t		 nscan, capscan;
	bool		 scanned;
	bool		 partial;	/* changed flags only: nothing vanishes */
	bool		 kw_refused;	/* PERMANENTFLAGS without \\* */
	bool		 lost;		/* backend down: side left as is */
};

#define SYNC_PROGRESS_S	10

struct sync {
	struct imap_session	*s;
	struct mbox		*mb;
	struct event		*progress;	/* "* OK" while it takes long */
	bool			 readonly, reselect;
	struct side_sync	 side[BACKEND_COUNT];
	mbox_sync_cb		*cb;
	char			 why[128];
};

static void	 sync_apply(struct sync *);
static void	 sel_watch(struct imap_session *, bool);

static void
sync_free(struct sync *y)
{
	size_t	 i;
	int	 side;

	if (y->progress != NULL)
		event_free(y->progress);
	for (side = 0; side < BACKEND_COUNT; side++) {
		struct side_sync *ss = &y->side[side];

		for (i = 0; i < ss->narr; i++) {
			free((char *)ss->arr[i].key);
			free((char *)ss->arr[i].akey);
			free((char *)ss->arr[i].keywords);
		}
		free(ss->arr);
		for (i = 0; i < ss->nscan; i++)
			free(ss->scan[i].keywords);
		free(ss->scan);
	}
	free(y);
}

static int
add_scan(struct side_sync *ss, const struct fetch_row *f)
{
	struct scan_row	*r;

	if (array_grow(&ss->scan, &ss->capscan, ss->nscan + 1,
	    sizeof(*ss->scan)) == -1)
		return -1;
	r = &ss->scan[ss->nscan++];
	r->uid = f->uid;
	r->flags = f->flags;
	r->keywords = f->keywords[0] != '\0' ? strdup(f->keywords) : NULL;
	return 0;
}

/*
 * The keys of a backend message (DESIGN §4).  The new side also answers
 * to its alias: Exchange's kept original Message-ID, else the header hash
 * (a copier may have added an id to a message that had none).
 */
void
mbox_keys(const struct msgkey *k, int side, const char **key,
    const char **akey)
{
	*key = msgkey_primary(k);
	*akey = NULL;
	if (side == BACKEND_NEW && k->msgid[0] != '\0')
		*akey = k->alias[0] != '\0' ? k->alias : k->hash;
}

static int
add_arrival(struct side_sync *ss, int side, const struct fetch_row *f)
{
	struct msgkey	 k;
	struct bmsg	*b;
	const char	*hdr = f->hdr != NULL ? f->hdr : "", *key, *akey;

	if (array_grow(&ss->arr, &ss->caparr, ss->narr + 1,
	    sizeof(*ss->arr)) == -1)
		return -1;
	/* Only the new side answers to the header hash besides its id. */
	if (side == BACKEND_NEW)
		msgkey_parse(hdr, f->hdrlen, &k);
	else
		msgkey_parse_primary(hdr, f->hdrlen, &k);
	mbox_keys(&k, side, &key, &akey);
	b = &ss->arr[ss->narr];
	memset(b, 0, sizeof(*b));
	b->uid = f->uid;
	b->size = f->size;
	b->idate = f->idate;
	b->flags = f->flags;
	if ((b->key = strdup(key)) == NULL ||
	    (akey != NULL && (b->akey = strdup(akey)) == NULL))
		return -1;
	b->keyh = msgkey_hash64(b->key);
	b->akeyh = akey != NULL ? msgkey_hash64(akey) : 0;
	if (f->keywords[0] != '\0' &&
	    (b->keywords = strdup(f->keywords)) == NULL)
		return -1;
	ss->narr++;
	return 0;
}

static void
sync_data(struct backend *b, const struct imap_response *r, void *arg)
{
	struct sync		*y = arg;
	int			 side = backend_side(b);
	struct side_sync	*ss = &y->side[side];
	struct fetch_row	 f;

	if (!imap_response_is(r, "FETCH"))
		return;
	mbox_fetch_items(r, &f);
	if (f.uid == 0)
		return;
	if (f.hdr != NULL || (ss->full && f.has_flags && f.idate != 0)) {
		/* "UID FETCH n:*" also answers the last message when n is
		 * past the end. */
		if (f.uid >= ss->from && add_arrival(ss, side, &f) == -1)
			ss->failed = true;
		if (ss->full && add_scan(ss, &f) == -1)
			ss->failed = true;
	} else if (f.has_flags && add_scan(ss, &f) == -1)
		ss->failed = true;
}

static void
sync_step_done(struct sync *y)
{
	int	 side;

	for (side = 0; side < BACKEND_COUNT; side++)
		if (y->side[side].active && (y->side[side].pending > 0 ||
		    !y->side[side].selected) && !y->side[side].failed)
			return;
	for (side = 0; side < BACKEND_COUNT; side++)
		if (y->side[side].pending > 0)
			return;
	sync_apply(y);
}

static void
sync_fetch_done(struct backend *b, const struct backend_result *res,
    void *arg)
{
	struct sync		*y = arg;
	struct side_sync	*ss = &y->side[backend_side(b)];

	ss->pending--;
	if (res->status != BACKEND_OK) {
		ss->failed = true;
		ss->lost = res->status == BACKEND_FAILED || res->throttled;
		snprintf(y->why, sizeof(y->why), "%s: %s", backend_name(b),
		    res->text);
	}
	sync_step_done(y);
}

/* SELECT answered: decide what to fetch. */
static void
sync_selected(struct backend *b, const struct backend_result *res,
    void *arg)
{
	struct sync		*y = arg;
	int			 side = backend_side(b);
	struct side_sync	*ss = &y->side[side];
	struct view_side	*vs = view_side(y->mb->v, side);
	char			 cmd[256];

	ss->pending--;
	ss->selected = true;
	if (res->status != BACKEND_OK || ss->uidvalidity == 0) {
		ss->failed = true;
		ss->lost = res->status == BACKEND_FAILED || res->throttled;
		snprintf(y->why, sizeof(y->why), "%s: %s", backend_name(b),
		    res->status != BACKEND_OK ? res->text : "no UIDVALIDITY");
		sync_step_done(y);
		return;
	}
	ss->full = vs->uidvalidity != ss->uidvalidity;
	ss->from = ss->full ? 1 : vs->uidnext > 0 ? vs->uidnext : 1;
	/*
	 * CONDSTORE (RFC 7162): the same HIGHESTMODSEQ means no flag
	 * changed; the same UIDNEXT and EXISTS mean nothing came or went.
	 * Then there is nothing to fetch at all.
	 */
	if (!ss->full && ss->modseq != 0 && vs->highestmodseq != 0 &&
	    ss->uidnext == vs->uidnext && vs->exists_known &&
	    ss->exists == vs->exists) {
		if (ss->modseq != vs->highestmodseq) {
			/* Only flags changed: just those (CHANGEDSINCE). */
			ss->scanned = ss->partial = true;
			snprintf(cmd, sizeof(cmd), "UID FETCH 1:* (UID FLAGS) "
			    "(CHANGEDSINCE %llu)",
			    (unsigned long long)vs->highestmodseq);
			ss->pending++;
			backend_cmd(b, cmd, sync_data, sync_fetch_done, y);
		}
		sync_step_done(y);
		return;
	}
	ss->scanned = true;
	if (ss->exists == 0) {
		sync_step_done(y);
		return;
	}
	if (ss->full || ss->uidnext == 0 || ss->uidnext > ss->from) {
		snprintf(cmd, sizeof(cmd), "UID FETCH %u:* (%s)", ss->from,
		    IDENTITY_ITEMS);
		ss->pending++;
		backend_cmd(b, cmd, sync_data, sync_fetch_done, y);
	}
	if (!ss->full) {
		ss->pending++;
		backend_cmd(b, "UID FETCH 1:* (UID FLAGS)", sync_data,
		    sync_fetch_done, y);
	}
	sync_step_done(y);
}

static void
sync_select_data(struct backend *b, const struct imap_response *r,
    void *arg)
{
	struct sync		*y = arg;
	struct side_sync	*ss = &y->side[backend_side(b)];
	uint64_t		 v;

	if (r->has_number && imap_response_is(r, "EXISTS"))
		ss->exists = r->number;
	if (r->code == NULL || r->ncode_args < 1)
		return;
	if (strcasecmp(r->code, "UIDVALIDITY") == 0)
		imap_arg_get_number(&r->code_args[0], &ss->uidvalidity);
	else if (strcasecmp(r->code, "UIDNEXT") == 0)
		imap_arg_get_number(&r->code_args[0], &ss->uidnext);
	else if (strcasecmp(r->code, "HIGHESTMODSEQ") == 0 &&
	    imap_arg_get_number64(&r->code_args[0], &v))
		ss->modseq = v;
	else if (strcasecmp(r->code, "PERMANENTFLAGS") == 0) {
		const struct imap_arg	*l;
		size_t			 n, i;

		ss->kw_refused = true;
		if (imap_arg_get_list(&r->code_args[0], &l, &n))
			for (i = 0; i < n; i++)
				if (imap_arg_atom_equals(&l[i], "\\*"))
					ss->kw_refused = false;
	}
}

/* SELECT or EXAMINE of the folder's part on side; false if impossible. */
static bool
select_cmd(struct imap_session *s, const struct ufolder *f, int side,
    bool readonly, backend_data_cb *data, backend_done_cb *done, void *arg)
{
	struct backend	*b = s->be[side];
	struct evbuffer	*cmd;
	const char	*err;
	char		*wire;

	if (b == NULL || !backend_ready(b))
		return false;
	if ((wire = mutf7_encode(f->part[side].name,
	    strlen(f->part[side].name), &err)) == NULL ||
	    imap_string_kind(wire, strlen(wire), 0) == IMAP_STR_LITERAL ||
	    (cmd = evbuffer_new()) == NULL) {
		free(wire);
		return false;
	}
	evbuffer_add_printf(cmd, "%s ", readonly ? "EXAMINE" : "SELECT");
	imap_write_mailbox(cmd, wire, 0);
	if (backend_has_cap(b, "CONDSTORE"))
		evbuffer_add_printf(cmd, " (CONDSTORE)");
	evbuffer_add(cmd, "", 1);
	backend_cmd(b, (const char *)evbuffer_pullup(cmd, -1), data, done,
	    arg);
	evbuffer_free(cmd);
	free(wire);
	return true;
}

static bool
sync_select_side(struct sync *y, const struct ufolder *f, int side)
{
	if (!f->part[side].present || f->part[side].noselect)
		return true;
	y->side[side].active = true;
	if (!sess_side_up(y->s, side)) {
		/* Down: its messages stay as the view has them. */
		y->side[side].failed = y->side[side].lost = true;
		return true;
	}
	y->side[side].pending++;
	if (select_cmd(y->s, f, side, y->readonly, sync_select_data,
	    sync_selected, y))
		return true;
	y->side[side].pending--;
	return false;
}

/*
 * A backend back after an outage: the selected folder selected on it
 * again, first in its queue, so that the session's commands find it.
 */
void
mbox_reselect_side(struct imap_session *s, int side)
{
	const struct ufolder	*f;

	if (s->sel == NULL || s->folders == NULL ||
	    (f = folders_find(s->folders, s->sel->path)) == NULL ||
	    !f->part[side].present || f->part[side].noselect)
		return;
	/* What changed meanwhile is no news to the new connection: the
	 * next NOOP must sync in full (mbox_check). */
	s->sel->synced_ms = 0;
	select_cmd(s, f, side, s->sel->readonly, NULL, NULL, NULL);
}

/* A side lost during the sync contributes nothing. */
static void
side_drop(struct side_sync *ss)
{
	size_t	 i;

	for (i = 0; i < ss->narr; i++) {
		free((char *)ss->arr[i].key);
		free((char *)ss->arr[i].akey);
		free((char *)ss->arr[i].keywords);
	}
	ss->narr = 0;
	for (i = 0; i < ss->nscan; i++)
		free(ss->scan[i].keywords);
	ss->nscan = 0;
	ss->active = false;
	ss->scanned = false;
}

/*
 * The apply half.
 */
int
mbox_bmsg_cmp(const void *a, const void *b)
{
	const struct bmsg	*x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static int
apply_side(struct sync *y, int side)
{
	struct side_sync	*ss = &y->side[side];
	struct view		*v = y->mb->v;
	struct view_side	*vs = view_side(v, side);
	size_t			 i, skip = 0;

	if (!ss->active)
		return 0;
	if (vs->uidvalidity != ss->uidvalidity) {
		if (vs->uidvalidity != 0 && view_side_reset(v, side) == -1)
			return -1;
	} else {
		/* Someone else's sync took these already. */
		while (skip < ss->narr && ss->arr[skip].uid < vs->uidnext)
			skip++;
	}
	/* (arr is NULL for an empty folder: no offset on it.) */
	if (view_add(v, side, ss->narr > 0 ? ss->arr + skip : NULL,
	    ss->narr - skip) == -1)
		return -1;
	if (ss->scanned) {
		/* A partial scan judges no UID: "below 1". */
		if (view_scan_begin(v, side, ss->partial ? 1 : ss->uidnext) ==
		    -1)
			return -1;
		for (i = 0; i < ss->nscan; i++)
			if (view_scan_flags(v, side, ss->scan[i].uid,
			    ss->scan[i].flags, ss->scan[i].keywords) == -1)
				return -1;
		if (view_scan_end(v, side) == -1)
			return -1;
	}
	vs->uidvalidity = ss->uidvalidity;
	if (ss->uidnext > vs->uidnext)
		vs->uidnext = ss->uidnext;
	vs->highestmodseq = ss->modseq;
	vs->exists = ss->exists;
	vs->exists_known = true;
	return state_folder_side(y->mb->u->store, y->mb->fid, side,
	    vs->uidvalidity, vs->uidnext, vs->highestmodseq);
}

/*
 * Flags the user set on a message before its new copy existed (view.h):
 * a copy that has them clears the want; one that does not is told.  The
 * next sync sees the result, so a STORE that fails is simply sent again.
 */
static int
replay_wants(struct sync *y)
{
	struct view		*v = y->mb->v;
	struct backend		*b = y->s->be[BACKEND_NEW];
	const struct vmsg	*m;
	size_t			 i;
	char			 cmd[128], fl[64];

	for (i = 0; i < view_count(v); i++) {
		m = view_at(v, i);
		if (!(m->want & VF_WANT) || m->uid[BACKEND_NEW] == 0)
			continue;
		if (m->flags[BACKEND_NEW] == (m->want & ~VF_WANT)) {
			if (view_want_clear(v, m->vuid) == -1)
				return -1;
			continue;
		}
		if (b == NULL || !backend_ready(b))
			continue;
		view_flag_text(m->want & ~VF_WANT, fl);
		snprintf(cmd, sizeof(cmd), "UID STORE %u FLAGS.SILENT (%s)",
		    m->uid[BACKEND_NEW], fl);
		backend_cmd(b, cmd, NULL, NULL, NULL);
		log_sess(LOG_INFO, y->s->sid, "event=flags-replayed user=%s "
		    "folder=\"%s\" vuid=%u flags=\"%s\"", y->s->user,
		    y->mb->path, m->vuid, fl);
	}
	return 0;
}

void
mbox_expunge_uids(struct backend *b, const uint32_t *uids, size_t n,
    backend_done_cb *done, void *arg)
{
	struct evbuffer	*cmd = evbuffer_new();
	struct backend_result res = { .status = BACKEND_FAILED,
	    .text = "out of memory" };

	if (cmd == NULL) {
		if (done != NULL)
			done(b, &res, arg);
		return;
	}
	evbuffer_add(cmd, "UID STORE ", 10);
	seqset_format_list(uids, n, cmd);
	evbuffer_add(cmd, " +FLAGS.SILENT (\\Deleted)", 25);
	evbuffer_add(cmd, "", 1);
	backend_cmd(b, (const char *)evbuffer_pullup(cmd, -1), NULL, NULL,
	    NULL);
	evbuffer_drain(cmd, evbuffer_get_length(cmd));
	if (backend_has_cap(b, "UIDPLUS")) {
		evbuffer_add(cmd, "UID EXPUNGE ", 12);
		seqset_format_list(uids, n, cmd);
	} else
		evbuffer_add(cmd, "EXPUNGE", 7);
	evbuffer_add(cmd, "", 1);
	backend_cmd(b, (const char *)evbuffer_pullup(cmd, -1), NULL, done, arg);
	evbuffer_free(cmd);
}

/*
 * tombstone-action expunge: a copy the migration made of a message the
 * user deleted goes from the new server too, not only from the view.
 * Only with UID EXPUNGE: a background sync must not take what another
 * client marked \Deleted.
 */
static void
expunge_hidden(struct sync *y)
{
	struct backend	*b = y->s->be[BACKEND_NEW];
	uint32_t	*uids;
	size_t		 n = view_hidden_take(y->mb->v, &uids);

	if (n > 0 && y->mb->u->srv->conf->tombstone_action ==
	    TOMBSTONE_EXPUNGE && !y->readonly && b != NULL &&
	    backend_ready(b) && backend_has_cap(b, "UIDPLUS")) {
		mbox_expunge_uids(b, uids, n, NULL, NULL);
		log_sess(LOG_INFO, y->s->sid, "event=recopy-expunged user=%s "
		    "folder=\"%s\" messages=%zu", y->s->user, y->mb->path, n);
	}
	free(uids);
}

static int
apply(struct sync *y)
{
	struct view	*v = y->mb->v;
	struct state	*st = y->mb->u->store;
	struct side_sync *l = &y->side[BACKEND_LEGACY], *n = &y->side[BACKEND_NEW];
	int		 side;

	for (side = 0; side < BACKEND_COUNT; side++)
		if (y->side[side].narr > 0)
			qsort(y->side[side].arr, y->side[side].narr,
			    sizeof(struct bmsg), mbox_bmsg_cmp);
	if (state_begin(st) == -1)
		return -1;
	view_stats_reset(v);
	if (view_count(v) == 0 && view_uidnext(v) == 1) {
		/* First build: number everything by date. */
		if (view_build(v, l->arr, l->narr, n->arr, n->narr) == -1)
			goto fail;
		for (side = 0; side < BACKEND_COUNT; side++) {
			if (!y->side[side].active)
				continue;
			view_side(v, side)->uidvalidity =
			    y->side[side].uidvalidity;
			view_side(v, side)->uidnext = y->side[side].uidnext;
			view_side(v, side)->highestmodseq = y->side[side].modseq;
			view_side(v, side)->exists = y->side[side].exists;
			view_side(v, side)->exists_known = true;
			if (state_folder_side(st, y->mb->fid, side,
			    y->side[side].uidvalidity, y->side[side].uidnext,
			    y->side[side].modseq) == -1)
				goto fail;
		}
	} else if (apply_side(y, BACKEND_LEGACY) == -1 ||
	    apply_side(y, BACKEND_NEW) == -1)
		goto fail;
	if (y->mb->u->srv->conf->local_keywords == LOCAL_KEYWORDS_AUTO &&
	    n->active && n->selected)
		view_set_local_keywords(v, n->kw_refused);
	if (view_nwant(v) > 0 && !y->readonly && replay_wants(y) == -1)
		goto fail;
	expunge_hidden(y);
	if (state_folder_synced(st, y->mb->fid, (int64_t)time(NULL)) == -1)
		goto fail;
	return state_commit(st);
 fail:
	state_rollback(st);
	return -1;
}

/*
 * Moves a crash interrupted (cmd_copy.c): a source whose copy this sync
 * found in the target is hidden now; a row whose copy never came is
 * dropped once the move is clearly over.
 */
#define MOVE_SETTLE_S	60

struct settle {
	struct state_move	*rows;
	size_t			 n, cap;
};

static int
settle_collect(const struct state_move *m, void *arg)
{
	struct settle	*t = arg;

	if (array_grow(&t->rows, &t->cap, t->n + 1, sizeof(*t->rows)) == -1)
		return -1;
	t->rows[t->n] = *m;
	if ((t->rows[t->n].src = strdup(m->src)) == NULL)
		return -1;
	t->n++;
	return 0;
}

static int
u64_cmp(const void *a, const void *b)
{
	const uint64_t	*x = a, *y = b;

	return *x < *y ? -1 : *x > *y;
}

static void
settle_moves(struct imap_session *s, struct mbox *mb)
{
	struct state	*st = mb->u->store;
	struct settle	 t = { NULL, 0, 0 };
	uint64_t	*keys = NULL;
	size_t		 i, nk = 0, n = view_count(mb->v);
	int64_t		 now = (int64_t)time(NULL);

	if (state_move_each(st, mb->path, settle_collect, &t) == -1 ||
	    t.n == 0)
		goto out;
	if ((keys = calloc(n * 3 + 1, sizeof(*keys))) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		const struct vmsg *m = view_at(mb->v, i);

		keys[nk++] = m->lkey;
		keys[nk++] = m->nkey;
		keys[nk++] = m->nakey;
	}
	qsort(keys, nk, sizeof(*keys), u64_cmp);
	if (state_begin(st) == -1)
		goto out;
	for (i = 0; i < t.n; i++) {
		struct state_move	*r = &t.rows[i];
		struct mbox		*src;
		bool			 found = r->keyh != 0 &&
		    bsearch(&r->keyh, keys, nk, sizeof(*keys), u64_cmp) != NULL;

		if (!found && now - r->at < MOVE_SETTLE_S)
			continue;
		if (found && (src = mbox_get(mb->u, r->src)) != NULL) {
			if (view_find(src->v, r->vuid) != NULL &&
			    (view_tombstone(src->v, r->vuid) == -1 ||
			    view_expunge(src->v, r->vuid) == -1))
				log_sess(LOG_WARNING, s->sid, "event=move-settle-"
				    "failed folder=\"%s\"", r->src);
			mbox_changed(src, NULL);
			mbox_put(&src);
		}
		state_move_del(st, r->src, r->vuid);
		log_sess(LOG_INFO, s->sid, "event=move-settled user=%s "
		    "from=\"%s\" to=\"%s\" vuid=%u copied=%s", s->user, r->src,
		    mb->path, r->vuid, found ? "yes" : "no");
	}
	if (state_commit(st) == -1)
		log_sess(LOG_WARNING, s->sid, "event=move-settle-failed "
		    "folder=\"%s\"", mb->path);
 out:
	for (i = 0; i < t.n; i++)
		free((char *)t.rows[i].src);
	free(t.rows);
	free(keys);
}

static void
sync_apply(struct sync *y)
{
	struct imap_session	*s = y->s;
	const struct view_stats	*st;
	int			 side;
	bool			 ok = true, big, live = false, down = false;

	for (side = 0; side < BACKEND_COUNT; side++) {
		struct side_sync *ss = &y->side[side];

		if (ss->lost) {
			down = true;
			side_drop(ss);
		} else if (ss->failed)
			ok = false;
		else if (ss->active)
			live = true;
	}
	if (down)
		log_sess(LOG_DEBUG, s->sid, "event=sync-partial user=%s "
		    "folder=\"%s\" legacy=%s new=%s", s->user, y->mb->path,
		    y->side[0].lost ? "down" : "up",
		    y->side[1].lost ? "down" : "up");
	if (ok && (live || !down) && apply(y) == -1) {
		ok = false;
		snprintf(y->why, sizeof(y->why), "state store error");
		/* The view may hold half a sync: reread it from the store. */
		if (view_load(y->mb->v) == -1)
			log_sess(LOG_WARNING, s->sid, "event=view-reload-failed "
			    "folder=\"%s\"", y->mb->path);
	}
	st = view_stats(y->mb->v);
	if (ok && (st->added || st->paired || st->expunged || st->hidden ||
	    st->unpaired))
		log_sess(LOG_INFO, s->sid, "event=sync user=%s folder=\"%s\" "
		    "added=%zu paired=%zu hidden=%zu expunged=%zu unpaired=%zu "
		    "flags=%zu messages=%zu", s->user, y->mb->path, st->added,
		    st->paired, st->hidden, st->expunged, st->unpaired,
		    st->flags, view_count(y->mb->v));
	else if (!ok)
		log_sess(LOG_WARNING, s->sid, "event=sync-failed user=%s "
		    "folder=\"%s\" reason=\"%s\"", s->user, y->mb->path, y->why);
	if (s->sync == y)
		s->sync = NULL;
	big = y->side[0].narr + y->side[1].narr + y->side[0].nscan +
	    y->side[1].nscan > 10000;
	if (ok)
		settle_moves(s, y->mb);
	if (ok)
		mbox_changed(y->mb, s);
	if (ok && s->sel != NULL && s->sel->mb == y->mb) {
		s->sel->synced_ms = clock_ms();
		sel_watch(s, true);
	}
	y->cb(s, ok, y->why);
	sync_free(y);
	/* A big sync leaves megabytes of key strings behind: give them
	 * back, or the process keeps its peak for the rest of its life. */
	if (big)
		malloc_trim(0);
}

/*
 * A first sync of a big folder on a slow server can take minutes; clients
 * give up on a silent server long before, so say something now and then
 * (RFC 9051 §7.1: untagged OK is allowed at any time).
 */
static void
sync_progress(evutil_socket_t fd, short what, void *arg)
{
	struct sync	*y = arg;
	struct timeval	 tv = { SYNC_PROGRESS_S, 0 };
	size_t		 n = y->side[0].narr + y->side[1].narr;

	sess_hold(y->s);
	sess_printf(y->s, "* OK Still reading the folder (%zu messages so far)"
	    "\r\n", n);
	evtimer_add(y->progress, &tv);
	sess_release(y->s);
}

/* Starts a sync of mb for s; the session keeps it in s->sync. */
static void
sync_start(struct imap_session *s, struct mbox *mb, const struct ufolder *f,
    bool readonly, mbox_sync_cb *cb)
{
	struct sync	*y;
	int		 side;

	if ((y = calloc(1, sizeof(*y))) == NULL) {
		cb(s, false, "out of memory");
		return;
	}
	y->s = s;
	y->mb = mb;
	y->readonly = readonly;
	y->cb = cb;
	if (s->sel != NULL && s->sel->mb == mb)
		s->sel->pushed = false;		/* the sync looks anyway */
	s->sync = y;
	if ((y->progress = evtimer_new(s->srv->base, sync_progress, y)) !=
	    NULL) {
		struct timeval	 tv = { SYNC_PROGRESS_S, 0 };

		evtimer_add(y->progress, &tv);
	}
	for (side = 0; side < BACKEND_COUNT; side++)
		if (!sync_select_side(y, f, side)) {
			s->sync = NULL;
			sync_free(y);
			cb(s, false, "backend unavailable");
			return;
		}
	sync_step_done(y);
}

/*
 * Sessions.
 */
static void
sel_free(struct imap_session *s)
{
	struct selected	*sel = s->sel, **pp;

	if (sel == NULL)
		return;
	for (pp = &sel->mb->sessions; *pp != NULL; pp = &(*pp)->mb_next)
		if (*pp == sel) {
			*pp = sel->mb_next;
			break;
		}
	sel_watch(s, false);
	if (sel->poll != NULL)
		event_free(sel->poll);
	mbox_put(&sel->mb);
	free(sel->vuids);
	free(sel->path);
	free(sel);
	s->sel = NULL;
}

void
mbox_close(struct imap_session *s)
{
	sel_free(s);
}

/* Only a session being freed can leave a sync behind: its backends went
 * first, and their callbacks with them. */
void
mbox_session_free(struct imap_session *s)
{
	sel_free(s);
	if (s->sync != NULL) {
		sync_free(s->sync);
		s->sync = NULL;
	}
	mbox_put(&s->status_mb);
}

static void
select_synced(struct imap_session *s, bool ok, const char *why)
{
	struct selected	*sel = s->sel;
	struct view	*v = sel->mb->v;
	size_t		 i, n = view_count(v);
	mbox_sync_cb	*cb = sel->after;

	if (ok && (sel->vuids = calloc(n + 1, sizeof(*sel->vuids))) == NULL)
		ok = false;
	if (!ok) {
		sel_free(s);
		cb(s, false, why);
		return;
	}
	sel->cap = n + 1;
	for (i = 0; i < n; i++)
		sel->vuids[i] = view_at(v, i)->vuid;
	sel->n = n;
	sel->modseq = view_modseq(v);
	sel->expunges = view_expunges(v);
	cb(s, true, NULL);
}

void
mbox_select(struct imap_session *s, const struct ufolder *f, bool readonly,
    mbox_sync_cb *cb)
{
	struct selected	*sel;
	struct mbox	*mb;

	sel_free(s);
	if (s->u == NULL || (mb = mbox_get(s->u, f->path)) == NULL) {
		cb(s, false, "state store unavailable");
		return;
	}
	if ((sel = calloc(1, sizeof(*sel))) == NULL ||
	    (sel->path = strdup(f->path)) == NULL) {
		free(sel);
		mbox_put(&mb);
		cb(s, false, "out of memory");
		return;
	}
	sel->s = s;
	sel->mb = mb;
	sel->readonly = readonly;
	sel->after = cb;
	sel->mb_next = mb->sessions;
	mb->sessions = sel;
	s->sel = sel;
	sync_start(s, mb, f, readonly, select_synced);
}

void
mbox_resync(struct imap_session *s, mbox_sync_cb *cb)
{
	const struct ufolder	*f;

	if (s->sel == NULL || s->folders == NULL ||
	    (f = folders_find(s->folders, s->sel->path)) == NULL) {
		cb(s, false, "folder no longer exists");
		return;
	}
	sync_start(s, s->sel->mb, f, s->sel->readonly, cb);
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
	struct imap_session	*s = arg;

	if (s->sel != NULL && mbox_is_news(r)) {
		log_sess(LOG_DEBUG, s->sid, "event=backend-news side=%s",
		    backend_name(b));
		s->sel->pushed = true;
	}
}

/*
 * The session's backends that serve the selected folder (it is selected
 * there) watch it while they are quiet; the others do not.
 */
static void
sel_watch(struct imap_session *s, bool on)
{
	const struct ufolder	*f = NULL;
	unsigned int		 ms;
	int			 side;

	if (on && s->sel != NULL && s->folders != NULL)
		f = folders_find(s->folders, s->sel->path);
	for (side = 0; side < BACKEND_COUNT; side++) {
		ms = f != NULL && f->part[side].present &&
		    !f->part[side].noselect ? s->conf->backend_idle_after_ms :
		    0;
		if (s->be[side] != NULL)
			backend_watch(s->be[side], ms, ms ? watch_data : NULL,
			    ms ? s : NULL);
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
	struct imap_session	*s = arg;

	if (s->sel != NULL && mbox_is_news(r))
		s->sel->check_news = true;
}

static void
check_done(struct backend *b, const struct backend_result *res, void *arg)
{
	struct imap_session	*s = arg;
	struct selected		*sel = s->sel;
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
		mbox_resync(s, cb);
	else
		cb(s, true, NULL);
}

void
mbox_check(struct imap_session *s, mbox_sync_cb *cb)
{
	struct selected		*sel = s->sel;
	const struct ufolder	*f;
	long long		 age;
	int			 side, serving = 0, n = 0;
	bool			 ask[BACKEND_COUNT] = { false };

	if (sel == NULL || s->folders == NULL ||
	    (f = folders_find(s->folders, sel->path)) == NULL) {
		mbox_resync(s, cb);
		return;
	}
	age = clock_ms() - sel->synced_ms;
	if (sel->synced_ms == 0 || age < 0 || sel->pushed ||
	    age >= (long long)s->conf->poll_interval_ms) {
		mbox_resync(s, cb);
		return;
	}
	/* Every side serving the folder must be there to answer for it. */
	for (side = 0; side < BACKEND_COUNT; side++)
		if (f->part[side].present && !f->part[side].noselect) {
			if (s->be[side] == NULL || !backend_ready(s->be[side])) {
				mbox_resync(s, cb);
				return;
			}
			serving++;
			if (!backend_watching(s->be[side])) {
				ask[side] = true;
				n++;
			}
		}
	if (serving == 0) {
		mbox_resync(s, cb);
		return;
	}
	if (n == 0) {
		cb(s, true, NULL);
		return;
	}
	sel->checking = n;
	sel->check_news = false;
	sel->check_cb = cb;
	for (side = 0; side < BACKEND_COUNT; side++)
		if (ask[side])
			backend_cmd(s->be[side], "NOOP", check_data, check_done,
			    s);
}

/*
 * STATUS of a folder other than the selected one selects it on the
 * backends for the sync; the selected folder is selected again after, in
 * the same queue, so later commands find it.
 */
static void
reselect(struct imap_session *s)
{
	const struct ufolder	*f;
	int			 side;

	if (s->sel == NULL || (f = folders_find(s->folders, s->sel->path)) ==
	    NULL)
		return;
	for (side = 0; side < BACKEND_COUNT; side++)
		if (f->part[side].present && !f->part[side].noselect)
			select_cmd(s, f, side, s->sel->readonly, NULL, NULL,
			    NULL);
}

static void
status_self_synced(struct imap_session *s, bool ok, const char *why)
{
	s->status_cb(s, ok, s->sel != NULL ? s->sel->mb->v : NULL, why);
}

static void
status_synced(struct imap_session *s, bool ok, const char *why)
{
	struct mbox	*mb = s->status_mb;
	mbox_status_cb	*cb = s->status_cb;

	s->status_mb = NULL;
	reselect(s);
	cb(s, ok, mb != NULL ? mb->v : NULL, why);
	mbox_put(&mb);
}

void
mbox_status(struct imap_session *s, const struct ufolder *f,
    mbox_status_cb *cb)
{
	struct mbox	*mb;

	if (s->sel != NULL && strcmp(s->sel->path, f->path) == 0) {
		/* Its own sync, and the notifications come first. */
		s->status_cb = cb;
		mbox_resync(s, status_self_synced);
		return;
	}
	if (s->u == NULL || (mb = mbox_get(s->u, f->path)) == NULL) {
		cb(s, false, NULL, "state store unavailable");
		return;
	}
	s->status_mb = mb;
	s->status_cb = cb;
	sync_start(s, mb, f, true, status_synced);
}

/*
 * A message imapmerge itself put on side (APPEND, COPY) is recorded in
 * the folder's view at once, so that the client learns its vuid without a
 * sync.  The side's UIDNEXT is not moved: a later sync still looks at
 * every UID from the last one it saw and skips this one as known.
 */
int
mbox_record(struct imap_session *s, const char *path, int side,
    uint32_t uidvalidity, const struct bmsg *b, size_t n, uint32_t *vuids,
    uint32_t *vuidvalidity)
{
	struct mbox		*mb;
	struct view_side	*vs;
	const struct vmsg	*m;
	struct state		*st;
	size_t			 i;
	int			 rc = -1;

	if (s->u == NULL || (mb = mbox_get(s->u, path)) == NULL)
		return -1;
	vs = view_side(mb->v, side);
	st = s->u->store;
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
		if (view_load(mb->v) == -1)
			log_sess(LOG_WARNING, s->sid, "event=view-reload-failed "
			    "folder=\"%s\"", mb->path);
		goto out;
	}
	for (i = 0; i < n; i++)
		vuids[i] = (m = view_by_uid(mb->v, side, b[i].uid)) != NULL ?
		    m->vuid : 0;
	*vuidvalidity = view_uidvalidity(mb->v);
	mbox_changed(mb, s);
	rc = 0;
 out:
	mbox_put(&mb);
	return rc;
}

/*
 * Sequence numbers and notifications.
 */
struct view *
mbox_view(struct imap_session *s)
{
	return s->sel != NULL ? s->sel->mb->v : NULL;
}

uint32_t
mbox_count(struct imap_session *s)
{
	return s->sel != NULL ? (uint32_t)s->sel->n : 0;
}

uint32_t
mbox_seq_vuid(struct imap_session *s, uint32_t seq)
{
	return s->sel != NULL && seq >= 1 && seq <= s->sel->n ?
	    s->sel->vuids[seq - 1] : 0;
}

bool
mbox_targets(struct imap_session *s, const char *text, bool uid,
    uint32_t **seqs, size_t *nseqs, const char **err)
{
	struct seqset	 set = { NULL, 0, 0 };
	uint32_t	 n = mbox_count(s), seq, vuid, max;

	*seqs = NULL;
	*nseqs = 0;
	if (!seqset_parse(&set, text, err))
		return false;
	if (!uid && seqset_contains(&set, 0)) {
		seqset_clear(&set);
		*err = "Invalid sequence number";
		return false;
	}
	max = uid ? (n > 0 ? mbox_seq_vuid(s, n) : 0) : n;
	seqset_resolve(&set, max);
	if ((*seqs = calloc(n + 1, sizeof(uint32_t))) == NULL) {
		seqset_clear(&set);
		*err = "Out of memory";
		return false;
	}
	for (seq = 1; seq <= n; seq++) {
		vuid = mbox_seq_vuid(s, seq);
		if (seqset_contains(&set, uid ? vuid : seq) &&
		    view_find(mbox_view(s), vuid) != NULL)
			(*seqs)[(*nseqs)++] = seq;
	}
	seqset_clear(&set);
	return true;
}

bool
mbox_local_keywords(struct imap_session *s)
{
	return s->sel != NULL && view_local_keywords(s->sel->mb->v);
}

bool
mbox_readonly(struct imap_session *s)
{
	return s->sel == NULL || s->sel->readonly;
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
notify_expunges(struct imap_session *s, struct evbuffer *out)
{
	struct selected	*sel = s->sel;
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
notify_exists(struct imap_session *s, struct evbuffer *out)
{
	struct selected	*sel = s->sel;
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
mbox_notify(struct imap_session *s, bool expunges)
{
	struct selected		*sel = s->sel;
	struct view		*v;
	struct evbuffer		*out;
	const struct vmsg	*m;
	size_t			 i, n0;

	if (sel == NULL || sel->vuids == NULL || (out = evbuffer_new()) ==
	    NULL)
		return;
	v = sel->mb->v;
	if (expunges && sel->expunges != view_expunges(v))
		notify_expunges(s, out);
	n0 = sel->n;
	if (notify_exists(s, out) == -1)
		log_sess(LOG_WARNING, s->sid, "event=notify-failed "
		    "reason=\"out of memory\"");
	if (view_modseq(v) != sel->modseq) {
		for (i = 0; i < n0; i++) {
			if ((m = view_find(v, sel->vuids[i])) == NULL ||
			    m->modseq <= sel->modseq)
				continue;
			evbuffer_add_printf(out, "* %zu FETCH (FLAGS ", i + 1);
			mbox_write_flags(out, v, m);
			evbuffer_add(out, ")\r\n", 3);
		}
		sel->modseq = view_modseq(v);
	}
	sess_write_buffer(s, out);
	evbuffer_free(out);
}

void
mbox_changed(struct mbox *mb, struct imap_session *by)
{
	struct selected	*sel;

	for (sel = mb->sessions; sel != NULL; sel = sel->mb_next)
		if (sel->s != by && sel->idling)
			mbox_notify(sel->s, true);
}
