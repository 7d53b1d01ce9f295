/*
 * The sync of a merged mailbox (DESIGN §5): what the servers hold now,
 * read on the session's own connections, applied to the shared view.
 *
 * A sync has two halves.  The first talks to the backends: SELECT each
 * backing folder, then fetch the identity of the messages that arrived
 * since the last sync (or of all of them after a UIDVALIDITY change) and
 * the flags of every message, which also tells which ones vanished.  The
 * second half applies what came back to the view in one go, inside one
 * transaction, so the view and the store never hold half a sync and two
 * sessions syncing the same folder at once cannot interleave: each scan
 * only judges the UIDs below the UIDNEXT it saw itself.
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

#define IDENTITY_ITEMS	"UID FLAGS INTERNALDATE RFC822.SIZE " \
	"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID X-MICROSOFT-ORIGINAL-MESSAGE-ID " \
	"X-MS-EXCHANGE-PARENT-MESSAGE-ID DATE FROM TO SUBJECT)]"


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
	struct mbox_client	*c;
	struct mbox		*mb;
	struct event		*progress;	/* "* OK" while it takes long */
	bool			 readonly, reselect;
	uint32_t		 since;		/* view_modseq() at start */
	uint32_t		 epoch[BACKEND_COUNT];	/* view_side_epoch()s */
	struct side_sync	 side[BACKEND_COUNT];
	mbox_sync_cb		*cb;
	char			 why[128];
};

static void	 sync_apply(struct sync *);

void
mbox_sync_free(struct sync *y)
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
bool
mbox_select_cmd(struct mbox_client *c, const struct ufolder *f, int side,
    bool readonly, backend_data_cb *data, backend_done_cb *done,
    void *arg)
{
	struct backend	*b = c->be[side];
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
	free(c->opened[side]);
	c->opened[side] = strdup(f->part[side].name);
	return true;
}

static bool
sync_select_side(struct sync *y, const struct ufolder *f, int side)
{
	if (!folder_serves(f, side))
		return true;
	y->side[side].active = true;
	if (!mbox_side_up(y->c, side)) {
		/* Down: its messages stay as the view has them. */
		y->side[side].failed = y->side[side].lost = true;
		return true;
	}
	y->side[side].pending++;
	if (mbox_select_cmd(y->c, f, side, y->readonly, sync_select_data,
	    sync_selected, y))
		return true;
	y->side[side].pending--;
	return false;
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
		/* Another session's sync, begun later, found a new
		 * UIDVALIDITY and applied it first: what this one read is
		 * of the one before, and would undo it. */
		if (y->epoch[side] != view_side_epoch(v, side)) {
			log_sess(LOG_INFO, y->c->sid, "event=sync-stale user=%s "
			    "folder=\"%s\" backend=%s", y->mb->u->name,
			    y->mb->path, side == BACKEND_LEGACY ? "legacy" :
			    "new");
			return 0;
		}
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
		if (view_scan_begin(v, side, ss->partial ? 1 : ss->uidnext,
		    y->since) ==
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
	struct backend		*b = y->c->be[BACKEND_NEW];
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
		log_sess(LOG_INFO, y->c->sid, "event=flags-replayed user=%s "
		    "folder=\"%s\" vuid=%u flags=\"%s\"", y->c->u->name,
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
	struct backend	*b = y->c->be[BACKEND_NEW];
	uint32_t	*uids;
	size_t		 n = view_hidden_take(y->mb->v, &uids);

	if (n > 0 && y->mb->u->srv->conf->tombstone_action ==
	    TOMBSTONE_EXPUNGE && !y->readonly && b != NULL &&
	    backend_ready(b) && backend_has_cap(b, "UIDPLUS")) {
		mbox_expunge_uids(b, uids, n, NULL, NULL);
		if (view_hidden_gone(y->mb->v, uids, n) == -1)
			log_sess(LOG_WARNING, y->c->sid, "event=state-error "
			    "user=%s folder=\"%s\"", y->c->u->name, y->mb->path);
		log_sess(LOG_INFO, y->c->sid, "event=recopy-expunged user=%s "
		    "folder=\"%s\" messages=%zu", y->c->u->name, y->mb->path,
		    n);
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
			view_side_epoch_bump(v, side);
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
	/* Only a folder opened read-write says whether the server takes
	 * keywords: EXAMINE's PERMANENTFLAGS is () (Dovecot's), whatever
	 * the folder would take. */
	if (y->mb->u->srv->conf->local_keywords == LOCAL_KEYWORDS_AUTO &&
	    n->active && n->selected && !y->readonly)
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
settle_moves(struct mbox_client *c, struct mbox *mb)
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
				log_sess(LOG_WARNING, c->sid, "event=move-"
				    "settle-failed folder=\"%s\"", r->src);
			mbox_changed(src, NULL);
			mbox_put(&src);
		}
		state_move_del(st, r->src, r->vuid);
		log_sess(LOG_INFO, c->sid, "event=move-settled user=%s "
		    "from=\"%s\" to=\"%s\" vuid=%u copied=%s", c->u->name,
		    r->src, mb->path, r->vuid, found ? "yes" : "no");
	}
	if (state_commit(st) == -1)
		log_sess(LOG_WARNING, c->sid, "event=move-settle-failed "
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
	struct mbox_client	*c = y->c;
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
		log_sess(LOG_DEBUG, c->sid, "event=sync-partial user=%s "
		    "folder=\"%s\" legacy=%s new=%s", c->u->name, y->mb->path,
		    y->side[0].lost ? "down" : "up",
		    y->side[1].lost ? "down" : "up");
	if (ok && (live || !down) && apply(y) == -1) {
		ok = false;
		snprintf(y->why, sizeof(y->why), "state store error");
		/* The view may hold half a sync: reread it from the store. */
		if (view_restore(y->mb->v) == -1)
			log_sess(LOG_WARNING, c->sid, "event=view-reload-"
			    "failed folder=\"%s\"", y->mb->path);
	}
	st = view_stats(y->mb->v);
	if (ok && (st->added || st->paired || st->expunged || st->hidden ||
	    st->unpaired))
		log_sess(LOG_INFO, c->sid, "event=sync user=%s folder=\"%s\" "
		    "added=%zu paired=%zu hidden=%zu expunged=%zu unpaired=%zu "
		    "flags=%zu messages=%zu", c->u->name, y->mb->path,
		    st->added, st->paired, st->hidden, st->expunged,
		    st->unpaired, st->flags, view_count(y->mb->v));
	else if (!ok)
		log_sess(LOG_WARNING, c->sid, "event=sync-failed user=%s "
		    "folder=\"%s\" reason=\"%s\"", c->u->name, y->mb->path,
		    y->why);
	if (c->sync == y)
		c->sync = NULL;
	big = y->side[0].narr + y->side[1].narr + y->side[0].nscan +
	    y->side[1].nscan > 10000;
	if (ok)
		settle_moves(c, y->mb);
	if (ok)
		mbox_changed(y->mb, c);
	if (ok && c->sel != NULL && c->sel->mb == y->mb) {
		c->sel->synced_ms = clock_ms();
		mbox_sel_watch(c, true);
	}
	y->cb(c, ok, y->why);
	mbox_sync_free(y);
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

	evtimer_add(y->progress, &tv);
	y->c->watcher->progress(y->c->arg, n);
}

/* Starts a sync of mb for c, which keeps it in c->sync. */
void
mbox_sync_start(struct mbox_client *c, struct mbox *mb,
    const struct ufolder *f, bool readonly, mbox_sync_cb *cb)
{
	struct sync	*y;
	int		 side;

	if ((y = calloc(1, sizeof(*y))) == NULL) {
		cb(c, false, "out of memory");
		return;
	}
	y->c = c;
	y->mb = mb;
	y->readonly = readonly;
	y->since = view_modseq(mb->v);
	for (side = 0; side < BACKEND_COUNT; side++)
		y->epoch[side] = view_side_epoch(mb->v, side);
	y->cb = cb;
	if (c->sel != NULL && c->sel->mb == mb)
		c->sel->pushed = false;		/* the sync looks anyway */
	c->sync = y;
	if ((y->progress = evtimer_new(c->base, sync_progress, y)) !=
	    NULL) {
		struct timeval	 tv = { SYNC_PROGRESS_S, 0 };

		evtimer_add(y->progress, &tv);
	}
	for (side = 0; side < BACKEND_COUNT; side++)
		if (!sync_select_side(y, f, side)) {
			c->sync = NULL;
			mbox_sync_free(y);
			cb(c, false, "backend unavailable");
			return;
		}
	sync_step_done(y);
}

