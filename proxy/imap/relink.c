/*
 * A logged-in session's backend connections kept up (DESIGN §8).
 *
 * A connection that ends after login (timeout, server gone, BYE after
 * throttling) is opened again with backoff: 1 s, 2 s, 4 s, then every
 * 5 s, each with up to a fifth more at random so that a thousand sessions
 * do not knock at once, and never sooner than a throttling server asked.
 * Meanwhile the dead connection stays in s->mc.be[side]: every command finds
 * it not ready and answers NO [UNAVAILABLE], and syncs leave that side's
 * messages as the view has them.  The new connection is swapped in only
 * once it is logged in, and the selected folder is selected on it before
 * anything else is queued; a session in IDLE syncs at once, so that what
 * changed meanwhile is announced; otherwise the client's next command does.
 *
 * The session keeps the client's password for this (the legacy server,
 * and a new server with password auth, need it again); it is wiped when
 * the session ends.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/rand.h>

#include "proxy/core/log.h"
#include "proxy/core/server.h"
#include "proxy/net/backend.h"
#include "proxy/merge/folders.h"
#include "proxy/merge/mailbox.h"
#include "proxy/imap/session_impl.h"

#define LINK_BACKOFF_MAX_MS	5000

static void	 link_schedule(struct imap_session *, int side,
		    unsigned int min_ms);

bool
sess_side_up(const struct imap_session *s, int side)
{
	return mbox_side_up(&s->mc, side);
}

static void
link_lost(struct backend *b, const char *why, void *arg)
{
	struct imap_session	*s = arg;
	int			 side = backend_side(b);

	if (s->closing)
		return;
	s->link[side].down_since = (long long)time(NULL);
	log_sess(LOG_WARNING, s->sid, "event=backend-lost user=%s backend=%s "
	    "reason=\"%s\"", s->user, backend_name(b), why);
	link_schedule(s, side, backend_backoff_ms(b));
}

/* The folder selected again on the side that came back. */
static void
link_restore(struct imap_session *s, int side)
{
	if (s->mc.sel != NULL)
		mbox_reselect_side(&s->mc, side);
	if (s->inmode == IN_IDLE)
		sess_idle_kick(s);
}

static void
link_folders_done(struct imap_session *s, int ok)
{
	int	 side;

	s->busy = 0;
	for (side = 0; side < BACKEND_COUNT; side++)
		if (ok && sess_side_up(s, side))
			s->link[side].folders_stale = false;
	for (side = 0; side < BACKEND_COUNT; side++)
		if (ok && sess_side_up(s, side))
			link_restore(s, side);
	sess_resume_input(s);
}

/*
 * A tree built while a side was down lacks that side's folders: build it
 * again, but only between commands: a running command may hold pointers
 * into the old one.  The client's next command waits for it.
 */
void
sess_links_idle(struct imap_session *s)
{
	int	 side;

	if (s->closing || (s->state != SESS_AUTH &&
	    s->state != SESS_SELECTED) || s->busy || s->mc.sync != NULL)
		return;
	for (side = 0; side < BACKEND_COUNT; side++)
		if (s->link[side].folders_stale && sess_side_up(s, side)) {
			log_sess(LOG_INFO, s->sid, "event=folders-refresh "
			    "user=%s backend=%s", s->user,
			    config_side_name(side));
			s->link[side].folders_stale = false;
			s->busy = 1;
			sess_folders_refresh(s, link_folders_done);
			return;
		}
}

static void
link_opened(struct backend *b, const struct backend_result *res, void *arg)
{
	struct imap_session	*s = arg;
	int			 side = backend_side(b);
	struct sess_link	*l = &s->link[side];
	long long		 down = l->down_since;

	sess_hold(s);
	if (res->status != BACKEND_OK) {
		l->pending = NULL;
		backend_free(&b);
		if (res->auth_failed && side == BACKEND_LEGACY) {
			/* The password changed since this session logged in
			 * (or it logged in offline with an old one). */
			log_sess(LOG_WARNING, s->sid, "event=relogin-refused "
			    "user=%s backend=legacy", s->user);
			sess_printf(s, "* BYE [ALERT] Your password was not "
			    "accepted; please log in again\r\n");
			sess_close(s, "password no longer accepted");
		} else {
			l->tries++;
			/* A refused token or password will not be fixed in
			 * seconds: ask again in a minute. */
			link_schedule(s, side, res->auth_failed ? 60000 : 0);
		}
		sess_release(s);
		return;
	}
	l->pending = NULL;
	backend_free(&s->mc.be[side]);
	s->mc.be[side] = b;
	backend_on_lost(b, link_lost, s);
	log_sess(LOG_INFO, s->sid, "event=backend-back user=%s backend=%s "
	    "down_s=%lld tries=%u", s->user, backend_name(b),
	    down != 0 ? (long long)time(NULL) - down : 0LL, l->tries + 1);
	l->tries = 0;
	l->down_since = 0;
	if (l->folders_stale)
		sess_links_idle(s);
	else
		link_restore(s, side);
	sess_release(s);
}

static void
link_try(struct imap_session *s, int side)
{
	struct sess_link	*l = &s->link[side];
	const char		*pass;

	if (s->closing || l->pending != NULL || sess_side_up(s, side))
		return;
	if ((l->pending = backend_new(s->srv, side, s->sid)) == NULL) {
		link_schedule(s, side, 0);
		return;
	}
	pass = s->conf->backend[side].auth == BACKEND_AUTH_XOAUTH2 ?
	    NULL : s->cred.password;
	backend_open(l->pending, s->user, pass, link_opened, s);
}

static void
link_due_legacy(evutil_socket_t fd, short what, void *arg)
{
	struct imap_session	*s = arg;

	sess_hold(s);
	link_try(s, BACKEND_LEGACY);
	sess_release(s);
}

static void
link_due_new(evutil_socket_t fd, short what, void *arg)
{
	struct imap_session	*s = arg;

	sess_hold(s);
	link_try(s, BACKEND_NEW);
	sess_release(s);
}

static void
link_schedule(struct imap_session *s, int side, unsigned int min_ms)
{
	struct sess_link	*l = &s->link[side];
	unsigned int		 ms, jitter = 0;
	struct timeval		 tv;

	if (s->closing)
		return;
	if (l->down_since == 0)
		l->down_since = (long long)time(NULL);
	ms = l->tries < 3 ? 1000u << l->tries : LINK_BACKOFF_MAX_MS;
	if (RAND_bytes((unsigned char *)&jitter, sizeof(jitter)) == 1)
		ms += jitter % (ms / 5 + 1);
	if (ms < min_ms)
		ms = min_ms;
	if (l->timer == NULL && (l->timer = evtimer_new(s->srv->base,
	    side == BACKEND_LEGACY ? link_due_legacy : link_due_new, s)) ==
	    NULL)
		return;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(l->timer, &tv);
}

/*
 * After login: watch both connections; one that did not open is tried
 * again at once on the backoff schedule, and the folder tree is built
 * again when it is back.
 */
void
sess_links_start(struct imap_session *s)
{
	int	 side;

	for (side = 0; side < BACKEND_COUNT; side++) {
		if (sess_side_up(s, side)) {
			backend_on_lost(s->mc.be[side], link_lost, s);
			continue;
		}
		s->link[side].folders_stale = true;
		s->link[side].down_since = (long long)time(NULL);
		link_schedule(s, side, 0);
	}
}

void
sess_links_free(struct imap_session *s)
{
	int	 side;

	for (side = 0; side < BACKEND_COUNT; side++) {
		if (s->link[side].timer != NULL)
			event_free(s->link[side].timer);
		s->link[side].timer = NULL;
		backend_free(&s->link[side].pending);
	}
}
