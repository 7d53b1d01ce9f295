/*
 * IMAP client sessions: the connection from a mail client to imapmerge.
 *
 * A session reads one command at a time (pipelined commands wait in the
 * input buffer until the one before them is answered, which RFC 9051 §5.5
 * allows), looks its name up in the command table, checks the state it is
 * allowed in, and runs its handler.  Handlers that need the backends finish
 * asynchronously and call sess_done().  The session is freed in exactly one
 * place, sess_free(), and never from inside a callback that still uses it:
 * sess_close() only marks it, and the outermost callback frees it.
 */
#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "protocol/imap_parser.h"
#include "proxy/core/abuse.h"
#include "proxy/core/auth.h"
#include "proxy/core/log.h"
#include "proxy/core/server.h"
#include "proxy/core/status.h"
#include "proxy/net/backend.h"
#include "proxy/net/conn.h"
#include "proxy/merge/mailbox.h"
#include "proxy/merge/offline.h"
#include "proxy/imap/session.h"
#include "proxy/imap/session_impl.h"

#define PREAUTH_TIMEOUT_S	120
#define AUTH_TIMEOUT_S		(30 * 60 + 60)	/* RFC 9051: >= 30 min */
#define MAX_BAD_COMMANDS	10
#define OUTPUT_HIGH_WATER	(256 * 1024)

static const char *const sess_state_names[] = {
	"not-authenticated", "authenticating", "authenticated", "selected",
	"logout",
};
_Static_assert(sizeof(sess_state_names) / sizeof(sess_state_names[0]) ==
    SESS_STATE_COUNT, "state name table");

static void	 sess_read(struct bufferevent *, void *);
static void	 sess_event(struct bufferevent *, short, void *);
static void	 sess_drained(struct bufferevent *, void *);
static void	 sess_input(struct imap_session *);
static void	 sess_shutdown(struct imap_session *);

void
sess_enter(struct imap_session *s, enum sess_state st)
{
	log_sess(LOG_DEBUG, s->sid, "state %s -> %s",
	    sess_state_names[s->state], sess_state_names[st]);
	if (s->preauth && st != SESS_NOTAUTH && st != SESS_AUTHENTICATING) {
		abuse_preauth_leave(s->srv, s->peer);
		s->preauth = false;
	}
	s->state = st;
}

void
sess_printf(struct imap_session *s, const char *fmt, ...)
{
	va_list	 ap;

	if (s->bev == NULL)
		return;
	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(s->bev), fmt, ap);
	va_end(ap);
}

/*
 * What changed in the selected folder since the client last heard: new
 * messages and flags always, EXPUNGE only where the running command
 * allows it (RFC 9051 §7.5.1), nothing after a command that neither uses
 * nor breaks sequence numbers (the client hears at its next one).
 */
void
sess_news(struct imap_session *s)
{
	if (s->state != SESS_SELECTED || s->cmd == NULL || s->bev == NULL ||
	    !(s->cmd->flags & (CMD_USES_SEQS | CMD_BREAKS_SEQS)))
		return;
	mbox_news(&s->mc, !(s->cmd->flags & CMD_USES_SEQS),
	    (s->cmd->flags & CMD_UID) != 0,
	    bufferevent_get_output(s->bev));
}

/* The merge layer's news: a client in IDLE hears them now. */
static void
sess_mbox_changed(void *arg)
{
	struct imap_session	*s = arg;

	if (s->inmode == IN_IDLE)
		sess_news(s);
}

/*
 * A first sync of a big folder on a slow server can take minutes; clients
 * give up on a silent server long before, so say something now and then
 * (RFC 9051 §7.1: untagged OK is allowed at any time).
 */
static void
sess_mbox_progress(void *arg, size_t n)
{
	struct imap_session	*s = arg;

	sess_hold(s);
	sess_printf(s, "* OK Still reading the folder (%zu messages so far)"
	    "\r\n", n);
	sess_release(s);
}

static const struct mbox_watcher sess_watcher = {
	.changed = sess_mbox_changed,
	.progress = sess_mbox_progress,
};

/* The answer sess_done() is given is a BAD (it may come as "%s"). */
static bool
sess_done_bad(const char *fmt, va_list ap)
{
	char	 head[4];

	if (fmt[0] != '%')
		return strncmp(fmt, "BAD", 3) == 0;
	vsnprintf(head, sizeof(head), fmt, ap);	/* "%s" of a reply */
	return strcmp(head, "BAD") == 0;
}

/*
 * Ends the current command with "tag STATUS text" and reads the next.
 * OK and NO carry the news of the selected folder before them; BAD does
 * not (the command did not run).
 */
void
sess_done(struct imap_session *s, const char *fmt, ...)
{
	va_list	 ap;
	bool	 bad;

	va_start(ap, fmt);
	bad = sess_done_bad(fmt, ap);
	va_end(ap);
	if (!bad)
		sess_news(s);
	s->cmd = NULL;
	if (s->cmd_arg != NULL && s->cmd_arg_free != NULL) {
		/* Answered before the server was asked. */
		s->cmd_arg_free(s->cmd_arg);
		s->cmd_arg = NULL;
	}
	s->cmd_arg_free = NULL;
	if (s->bev != NULL && s->tag != NULL) {
		struct evbuffer	*out = bufferevent_get_output(s->bev);

		evbuffer_add_printf(out, "%s ", s->tag);
		va_start(ap, fmt);
		evbuffer_add_vprintf(out, fmt, ap);
		va_end(ap);
		evbuffer_add(out, "\r\n", 2);
	}
	free(s->tag);
	s->tag = NULL;
	s->busy = 0;
	if (s->parser != NULL)
		imap_parser_reset(s->parser);
	if (s->bad_commands >= MAX_BAD_COMMANDS) {
		sess_printf(s, "* BYE Too many invalid commands\r\n");
		sess_close(s, "too many invalid commands");
	}
	if (s->srv->draining)
		sess_shutdown(s);
	if (!s->closing && s->bev != NULL)
		sess_links_idle(s);
	if (!s->closing && s->bev != NULL && !s->busy)
		sess_input(s);
}

void
sess_close(struct imap_session *s, const char *reason)
{
	if (s->closing)
		return;
	s->closing = 1;
	log_sess(LOG_INFO, s->sid, "event=disconnect user=%s reason=\"%s\"",
	    s->user ? s->user : "-", reason);
}

/* The daemon is stopping: the session's last words. */
static void
sess_shutdown(struct imap_session *s)
{
	if (s->closing)
		return;
	sess_printf(s, "* BYE imapmerge is shutting down\r\n");
	sess_close(s, "shutting down");
}

static void
sess_free(struct imap_session *s)
{
	struct server	*srv = s->srv;
	int		 side;

	if (s->prevp != NULL) {
		if ((*s->prevp = s->next) != NULL)
			s->next->prevp = s->prevp;
	}
	if (s->preauth)
		abuse_preauth_leave(s->srv, s->peer);
	sess_links_free(s);
	for (side = 0; side < BACKEND_COUNT; side++)
		backend_free(&s->mc.be[side]);
	offline_cancel(s->offline);
	if (s->delay != NULL)
		event_free(s->delay);
	sess_append_free(s);
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	imap_parser_free(&s->parser);
	auth_free(&s->auth);
	credentials_clear(&s->cred);
	sess_folders_free(s);
	if (s->idle_poll != NULL)
		event_free(s->idle_poll);
	if (s->flush_timer != NULL)
		event_free(s->flush_timer);
	if (s->cmd_arg != NULL && s->cmd_arg_free != NULL)
		s->cmd_arg_free(s->cmd_arg);
	free(s->login);		/* a client gone while logging in */
	free(s->tag);
	free(s->cmd_text);
	free(s->user);
	config_unref(&s->conf);
	free(s);
	server_session_gone(srv);
}

/*
 * Every libevent callback into a session goes through sess_hold/release so
 * that a session closed in the middle is freed once, at the end.
 */
void
sess_hold(struct imap_session *s)
{
	s->refs++;
}

static void
sess_flush_poll(evutil_socket_t fd, short what, void *arg)
{
	struct imap_session	*s = arg;

	sess_hold(s);
	if (conn_pending(s->bev) == 0 || conn_flush_wait(++s->flush_tries) == 0)
		s->flushing = 0;
	sess_release(s);
}

int
sess_release(struct imap_session *s)
{
	unsigned int	 ms;
	struct timeval	 tv;

	if (--s->refs > 0 || !s->closing)
		return 0;
	/* Flush what is queued (a tagged OK, a BYE) before the socket goes,
	 * but give a client that does not read only a few seconds. */
	if (s->bev != NULL && (s->flushing || conn_pending(s->bev) > 0) &&
	    (ms = conn_flush_wait(s->flush_tries)) > 0) {
		if (!s->flushing) {
			s->flushing = 1;
			bufferevent_disable(s->bev, EV_READ);
		}
		if (s->flush_timer == NULL)
			s->flush_timer = evtimer_new(s->srv->base,
			    sess_flush_poll, s);
		if (s->flush_timer != NULL) {
			tv.tv_sec = ms / 1000;
			tv.tv_usec = (ms % 1000) * 1000;
			evtimer_add(s->flush_timer, &tv);
			return 0;
		}
	}
	sess_free(s);
	return 1;
}

/*
 * Callbacks, and flow for bodies relayed from a backend: the drained
 * callback runs whenever the output is below OUTPUT_HIGH_WATER (not only
 * when it is empty), so a paused backend resumes while the client still
 * has a few hundred kB to read, and the pipe never runs dry.
 */
static void
sess_bev_setup(struct imap_session *s)
{
	bufferevent_setcb(s->bev, sess_read, sess_drained, sess_event, s);
	bufferevent_setwatermark(s->bev, EV_WRITE, OUTPUT_HIGH_WATER, 0);
	conn_set_io(s->bev);
}

static void
sess_timeouts(struct imap_session *s)
{
	struct timeval	 tv = { s->state == SESS_NOTAUTH ?
	    PREAUTH_TIMEOUT_S : AUTH_TIMEOUT_S, 0 };

	bufferevent_set_timeouts(s->bev, &tv, NULL);
}

void
imap_session_new(struct server *srv, const struct listen_conf *lc, int fd,
    const struct sockaddr *sa, int salen)
{
	struct bufferevent	*bev;
	SSL			*ssl = NULL;
	char			 peer[INET6_ADDRSTRLEN];
	int			 port;

	conn_peer(sa, peer, sizeof(peer), &port);
	evutil_make_socket_nonblocking(fd);
	if (lc->tls == TLSMODE_TLS) {
		if ((ssl = SSL_new(srv->tls)) == NULL)
			bev = NULL;
		else
			bev = bufferevent_openssl_socket_new(srv->base, fd,
			    ssl, BUFFEREVENT_SSL_ACCEPTING,
			    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (bev != NULL)
			conn_read_ahead(bev);	/* sess_input() drains */
	} else
		bev = bufferevent_socket_new(srv->base, fd,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		log_warnx("session: cannot set up the connection");
		if (ssl != NULL)
			SSL_free(ssl);
		close(fd);
		return;
	}
	imap_session_start(srv, lc, bev, peer, port);
}

void
imap_session_start(struct server *srv, const struct listen_conf *lc,
    struct bufferevent *bev, const char *peer, int port)
{
	struct imap_session	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->parser = sess_parser_new()) == NULL) {
		log_warnx("session: out of memory");
		free(s);
		bufferevent_free(bev);
		return;
	}
	s->srv = srv;
	s->conf = config_ref(srv->conf);
	s->lc = lc;
	s->mc.sid = s->sid;
	s->mc.conf = s->conf;
	s->mc.base = srv->base;
	s->mc.watcher = &sess_watcher;
	s->mc.arg = s;
	if ((s->next = srv->sessions) != NULL)
		s->next->prevp = &s->next;
	srv->sessions = s;
	s->prevp = &srv->sessions;
	snprintf(s->sid, sizeof(s->sid), "%lx", ++srv->next_session_id);
	snprintf(s->peer, sizeof(s->peer), "%s", peer);
	s->peer_port = port;
	s->bev = bev;
	s->tls = lc->tls == TLSMODE_TLS;
	log_sess(LOG_INFO, s->sid, "event=connect ip=%s port=%d listener=%s "
	    "tls=%s", s->peer, s->peer_port, lc->text, s->tls ? "yes" : "no");
	sess_bev_setup(s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	sess_timeouts(s);
	if (!abuse_preauth_enter(srv, s->peer)) {
		log_sess(LOG_NOTICE, s->sid, "event=preauth-limit ip=%s",
		    s->peer);
		sess_printf(s, "* BYE Too many connections from your address"
		    "\r\n");
		sess_hold(s);
		sess_close(s, "too many connections from this address");
		sess_release(s);
		return;
	}
	s->preauth = true;
	sess_printf(s, "* OK [CAPABILITY %s] imapmerge ready\r\n",
	    sess_capabilities(s));
}

/*
 * Input.
 */

/* Counted here, acted on after the answer went out (sess_done). */
static void
sess_bad_command(struct imap_session *s)
{
	s->bad_commands++;
}

static void
sess_input_buffered(struct imap_session *s)
{
	struct evbuffer	*in = bufferevent_get_input(s->bev);

	/* A running command blocks input, except for AUTHENTICATE and
	 * IDLE, which wait for exactly the client's next line. */
	while ((!s->busy || s->inmode != IN_COMMAND) && !s->closing &&
	    s->bev != NULL) {
		if (s->inmode == IN_AUTH_LINE) {
			if (sess_auth_line(s, in) == 0)
				return;
			continue;
		}
		if (s->inmode == IN_IDLE) {
			if (sess_idle_line(s, in) == 0)
				return;
			continue;
		}
		if (s->inmode == IN_APPEND) {
			if (sess_append_input(s, s->parser, in) == 0)
				return;
			continue;
		}
		if (sess_parse_command(s, in) == 0)
			return;
	}
	/* Backpressure: a client that does not read its answers stalls. */
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) >
	    OUTPUT_HIGH_WATER)
		bufferevent_disable(s->bev, EV_READ);
}

/* What is buffered, then what OpenSSL read ahead (conn_read_ahead()). */
static void
sess_input(struct imap_session *s)
{
	char	 err[256];
	ssize_t	 n;

	do {
		sess_input_buffered(s);
		if (s->closing || s->bev == NULL)
			return;
		if ((n = conn_tls_drain(s->bev, err, sizeof(err))) < 0)
			sess_close(s, err);
	} while (n > 0);
}

/* Called by the parser glue with a complete command. */
void
sess_dispatch(struct imap_session *s, const char *tag, const char *name,
    const struct imap_arg *args, size_t nargs)
{
	const struct imap_command_def	*def;

	if ((s->tag = strdup(tag)) == NULL) {
		sess_close(s, "out of memory");
		return;
	}
	s->busy = 1;
	if ((def = sess_command_find(name)) == NULL) {
		sess_bad_command(s);
		sess_done(s, "BAD Unknown command");
		return;
	}
	if (!(def->states & (1u << s->state))) {
		sess_bad_command(s);
		sess_done(s, "BAD %s not allowed now", def->name);
		return;
	}
	s->bad_commands = 0;
	s->cmd = def;
	if (s->state == SESS_AUTH || s->state == SESS_SELECTED)
		sess_folders_current(s);
	def->fn(s, args, nargs);
}

/* A syntax error: BAD with the tag when it was a valid one. */
void
sess_syntax_error(struct imap_session *s, const char *tag, const char *why)
{
	if (tag != NULL)
		sess_printf(s, "%s BAD %s\r\n", tag, why);
	else
		sess_printf(s, "* BAD %s\r\n", why);
	if (++s->bad_commands >= MAX_BAD_COMMANDS) {
		sess_printf(s, "* BYE Too many invalid commands\r\n");
		sess_close(s, "too many invalid commands");
	}
}

static void
sess_read(struct bufferevent *bev, void *arg)
{
	struct imap_session	*s = arg;

	sess_hold(s);
	sess_input(s);
	sess_release(s);
}

static void
sess_drained(struct bufferevent *bev, void *arg)
{
	struct imap_session	*s = arg;
	int			 side;

	sess_hold(s);
	if (s->closing)
		;
	else if (evbuffer_get_length(bufferevent_get_output(bev)) <=
	    OUTPUT_HIGH_WATER) {
		bufferevent_enable(bev, EV_READ);
		sess_input(s);		/* what was read ahead */
		/* A FETCH body streaming to us waited for the client. */
		for (side = 0; side < BACKEND_COUNT && !s->closing; side++)
			backend_resume(s->mc.be[side]);
	}
	sess_release(s);
}

static void
sess_event(struct bufferevent *bev, short what, void *arg)
{
	struct imap_session	*s = arg;

	sess_hold(s);
	if (s->flushing) {
		/* The client is gone or does not read: stop waiting. */
		s->flushing = 0;
		conn_discard_output(bev);
	} else if (what & BEV_EVENT_CONNECTED) {
		/* The first command may have come with the client's
		 * Finished and been read ahead with it. */
		if (!s->closing && s->bev != NULL)
			sess_input(s);
	} else if (what & BEV_EVENT_TIMEOUT) {
		sess_printf(s, "* BYE Autologout; idle for too long\r\n");
		sess_close(s, "idle timeout");
	} else if (what & BEV_EVENT_EOF)
		sess_close(s, "client closed the connection");
	else if (what & BEV_EVENT_ERROR) {
		/* Nothing more can go out (a reset, a handshake broken off
		 * with the greeting still queued): no flush to wait for,
		 * which would hold a stopping daemon for seconds. */
		conn_discard_output(s->bev);
		sess_close(s, "connection error");
	}
	sess_release(s);
}

/*
 * STARTTLS: the OK goes out in clear, then the TLS filter takes over.
 * Whatever the client sent after STARTTLS before the handshake is thrown
 * away (the CVE-2011-0411 class of injection).
 */
void
sess_starttls(struct imap_session *s)
{
	struct bufferevent	*tls;
	SSL			*ssl;

	evbuffer_drain(bufferevent_get_input(s->bev),
	    evbuffer_get_length(bufferevent_get_input(s->bev)));
	if ((ssl = SSL_new(s->srv->tls)) == NULL) {
		sess_done(s, "NO [UNAVAILABLE] TLS is not available");
		return;
	}
	sess_done_quiet(s, "OK Begin TLS negotiation now");
	tls = bufferevent_openssl_filter_new(s->srv->base, s->bev, ssl,
	    BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tls == NULL) {
		SSL_free(ssl);
		sess_close(s, "cannot start TLS");
		return;
	}
	s->bev = tls;
	s->tls = 1;
	sess_bev_setup(s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	sess_timeouts(s);
	imap_parser_reset(s->parser);
	s->busy = 0;
}

/* Like sess_done but does not read on: STARTTLS changes the stream. */
void
sess_done_quiet(struct imap_session *s, const char *text)
{
	sess_printf(s, "%s %s\r\n", s->tag, text);
	s->cmd = NULL;
	free(s->tag);
	s->tag = NULL;
}

static void
imap_sessions_free_all(struct server *srv)
{
	while (srv->sessions != NULL)
		sess_free(srv->sessions);
}

/*
 * Between commands, in IDLE (RFC 2177 lets the server end it with BYE) or
 * waiting for an AUTHENTICATE line, a session can go at once.  One whose
 * command is running, or is still arriving (a tag parsed, the rest of the
 * line or a small literal not yet), hears BYE from sess_done().
 */
static bool
sess_idle_now(struct imap_session *s)
{
	if (s->busy)
		return s->inmode == IN_IDLE || s->inmode == IN_AUTH_LINE;
	return s->parser == NULL || imap_parser_tag(s->parser) == NULL;
}

static void
imap_sessions_drain(struct server *srv)
{
	struct imap_session	*s, *next;

	for (s = srv->sessions; s != NULL; s = next) {
		next = s->next;
		if (s->closing || !sess_idle_now(s))
			continue;
		sess_hold(s);
		sess_shutdown(s);
		sess_release(s);
	}
}

void
sess_write_buffer(struct imap_session *s, struct evbuffer *buf)
{
	if (s->bev != NULL)
		evbuffer_add_buffer(bufferevent_get_output(s->bev), buf);
}

void
sess_resume_input(struct imap_session *s)
{
	if (s->bev == NULL || s->closing)
		return;
	bufferevent_enable(s->bev, EV_READ);
	sess_hold(s);
	sess_input(s);
	sess_release(s);
}

void
sess_authenticated(struct imap_session *s)
{
	sess_enter(s, SESS_AUTH);
	sess_timeouts(s);
}

static void
imap_sessions_count(const struct server *srv, unsigned long *total,
    unsigned long up[BACKEND_COUNT], unsigned long down[BACKEND_COUNT])
{
	const struct imap_session	*s;
	int				 side;

	*total = 0;
	for (side = 0; side < BACKEND_COUNT; side++)
		up[side] = down[side] = 0;
	for (s = srv->sessions; s != NULL; s = s->next) {
		(*total)++;
		if (s->state != SESS_AUTH && s->state != SESS_SELECTED)
			continue;
		for (side = 0; side < BACKEND_COUNT; side++) {
			if (sess_side_up(s, side))
				up[side]++;
			else
				down[side]++;
		}
	}
}

static unsigned long
imap_sessions_total(const struct server *srv)
{
	const struct imap_session	*s;
	unsigned long			 n = 0;

	for (s = srv->sessions; s != NULL; s = s->next)
		n++;
	return n;
}

static void
imap_sessions_metrics(struct server *srv, struct evbuffer *out)
{
	unsigned long	 n, up[BACKEND_COUNT], down[BACKEND_COUNT];
	int		 side;

	imap_sessions_count(srv, &n, up, down);
	status_metric_head(out, "imapmerge_backend_connections", "gauge",
	    "Logged-in IMAP sessions whose connection to the server is ready "
	    "(up) or that run without it (down).");
	for (side = 0; side < BACKEND_COUNT; side++) {
		evbuffer_add_printf(out, "imapmerge_backend_connections"
		    "{backend=\"%s\",state=\"up\"} %lu\n",
		    config_side_name(side), up[side]);
		evbuffer_add_printf(out, "imapmerge_backend_connections"
		    "{backend=\"%s\",state=\"down\"} %lu\n",
		    config_side_name(side), down[side]);
	}
}

const struct service imap_service = {
	.name = "imap",
	.accept = imap_session_new,
	.drain = imap_sessions_drain,
	.free_all = imap_sessions_free_all,
	.count = imap_sessions_total,
	.metrics = imap_sessions_metrics,
};
