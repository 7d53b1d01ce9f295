/*
 * IDLE (RFC 2177): the backends that offer IDLE are put in IDLE on the
 * backing folders (or stay in the IDLE they watch the folder in between
 * commands, mailbox.c) and any news from them starts a sync at once;
 * besides, the folder is synced every poll-interval (a backend without
 * IDLE, a change IDLE does not report).  What changed goes out at once,
 * other sessions' changes too (the session's watcher, session.c).
 */
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "protocol/imap_parser.h"
#include "proxy/core/log.h"
#include "proxy/core/server.h"
#include "proxy/net/backend.h"
#include "proxy/merge/folders.h"
#include "proxy/merge/mailbox.h"
#include "proxy/merge/mailbox_impl.h"
#include "proxy/imap/session_impl.h"

static void	 idle_arm(struct imap_session *);
static void	 idle_backends(struct imap_session *);

static bool
idling(const struct imap_session *s)
{
	return s->inmode == IN_IDLE && s->mc.sel != NULL;
}

static void
idle_polled(struct mbox_client *c, bool ok, const char *why)
{
	struct imap_session	*s = c->arg;

	/* The IDLE ended already (a line other than DONE). */
	if (s->mc.sel == NULL || s->cmd == NULL || s->cmd->fn != cmd_idle)
		return;
	if (idling(s)) {
		sess_news(s);
		idle_arm(s);
		idle_backends(s);
	} else
		sess_done(s, "OK IDLE terminated");
}

static void
idle_tick(evutil_socket_t fd, short what, void *arg)
{
	struct imap_session	*s = arg;

	sess_hold(s);
	if (idling(s) && s->mc.sync == NULL)
		mbox_resync(&s->mc, idle_polled);
	sess_release(s);
}

static void
idle_backend_data(struct backend *b, const struct imap_response *r,
    void *arg)
{
	struct imap_session	*s = arg;

	if (!idling(s) || s->mc.sync != NULL)
		return;
	if (mbox_is_news(r)) {
		log_sess(LOG_DEBUG, s->sid, "event=backend-news side=%s",
		    backend_name(b));
		/* Queuing the sync's SELECT ends the backends' IDLE. */
		mbox_resync(&s->mc, idle_polled);
	}
}

void
sess_idle_kick(struct imap_session *s)
{
	if (idling(s) && s->mc.sync == NULL)
		mbox_resync(&s->mc, idle_polled);
}

static void
idle_backends(struct imap_session *s)
{
	const struct ufolder	*f;
	int			 side;

	if (s->mc.sel == NULL || s->mc.folders == NULL ||
	    (f = folders_find(s->mc.folders, s->mc.sel->path)) == NULL)
		return;
	for (side = 0; side < BACKEND_COUNT; side++)
		if (folder_serves(f, side) &&
		    s->mc.be[side] != NULL)
			backend_idle(s->mc.be[side], idle_backend_data, s);
}

static void
idle_arm(struct imap_session *s)
{
	unsigned int	 ms = s->conf->poll_interval_ms;
	struct timeval	 tv = { ms / 1000, (ms % 1000) * 1000 };

	if (s->idle_poll == NULL)
		s->idle_poll = evtimer_new(s->srv->base, idle_tick, s);
	if (s->idle_poll != NULL)
		evtimer_add(s->idle_poll, &tv);
}

void
cmd_idle(struct imap_session *s, const struct imap_arg *args, size_t nargs)
{
	if (nargs != 0) {
		sess_done(s, "BAD IDLE takes no arguments");
		return;
	}
	sess_news(s);
	sess_printf(s, "+ idling\r\n");
	s->inmode = IN_IDLE;
	if (s->mc.sel != NULL) {
		idle_arm(s);
		/* The servers' IDLE goes on; news they told of before, now. */
		if (mbox_pushed(&s->mc))
			sess_idle_kick(s);
		else
			idle_backends(s);
	}
}

/* The client's line during IDLE: DONE ends it, anything else is BAD. */
int
sess_idle_line(struct imap_session *s, struct evbuffer *in)
{
	struct evbuffer_ptr	 p;
	char			 line[8];
	size_t			 len;

	p = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
	if (p.pos == -1) {
		if (evbuffer_get_length(in) > 1024) {
			sess_printf(s, "* BYE Line too long\r\n");
			sess_close(s, "IDLE line too long");
		}
		return 0;
	}
	len = (size_t)p.pos;
	memset(line, 0, sizeof(line));
	evbuffer_remove(in, line, len < sizeof(line) - 1 ? len :
	    sizeof(line) - 1);
	if (len >= sizeof(line) - 1)
		evbuffer_drain(in, len - (sizeof(line) - 1));
	evbuffer_drain(in, 1);
	len = strcspn(line, "\r");
	line[len] = '\0';
	s->inmode = IN_COMMAND;
	if (s->idle_poll != NULL)
		evtimer_del(s->idle_poll);
	backend_idle_stop(s->mc.be[BACKEND_LEGACY]);
	backend_idle_stop(s->mc.be[BACKEND_NEW]);
	if (strcasecmp(line, "DONE") != 0) {
		sess_done(s, "BAD Expected DONE");
		return 1;
	}
	/* A poll under way finishes the command when it is back. */
	if (s->mc.sync == NULL)
		sess_done(s, "OK IDLE terminated");
	return s->mc.sync == NULL;
}
