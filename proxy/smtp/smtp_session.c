/*
 * SMTP submission sessions (DESIGN §9): one sending account for the user,
 * every message relayed through the new server's submission service
 * unless its envelope sender matches a send-via legacy rule (mailing-list
 * addresses only the old server may send as).
 *
 * The client is checked like an IMAP login (the password by a login to
 * the legacy server), only after TLS.  Each message gets its own upstream
 * connection (smtp_relay.c); MAIL, RCPT and DATA go upstream one by one and
 * their replies come back to the client as they are, so the client hears
 * 250 for a message only once the upstream said it.  DATA streams through
 * with backpressure; the Message-ID is read on the way and recorded for
 * the Sent-copy absorption of APPEND.
 */
#include <sys/socket.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "protocol/msgkey.h"
#include "protocol/smtp_parse.h"
#include "proxy/core/auth.h"
#include "proxy/core/log.h"
#include "proxy/core/server.h"
#include "proxy/net/backend.h"
#include "proxy/net/conn.h"
#include "proxy/merge/state.h"
#include "proxy/merge/user.h"
#include "proxy/smtp/smtp_relay.h"
#include "proxy/smtp/smtp_session.h"

#define SMTP_LINE_MAX		4096
#define SMTP_TIMEOUT_S		300		/* RFC 5321 §4.5.3.2 */
#define SMTP_MAX_RCPT		100
#define SMTP_MAX_BAD		10
#define SMTP_MAX_AUTH_FAIL	3
#define SMTP_SINK_HIGH		(1024 * 1024)

enum smtp_state {
	S_COMMAND,
	S_AUTH_LINE,		/* the next line is SASL data */
	S_WAIT,			/* a backend or the upstream is answering */
	S_DATA,			/* message bytes stream upstream */
	S_STATE_COUNT
};

static const char *const smtp_state_names[] = {
	"command", "auth-line", "wait", "data",
};
_Static_assert(sizeof(smtp_state_names) / sizeof(smtp_state_names[0]) ==
    S_STATE_COUNT, "state name table");

struct smtp_session {
	struct smtp_session	*next, **prevp;	/* srv->smtp_sessions */
	char			 sid[20];
	struct server		*srv;
	struct config		*conf;		/* a reference, kept on reload */
	const struct listen_conf *lc;
	struct bufferevent	*bev;
	char			 peer[64];
	int			 tls;
	enum smtp_state		 state;
	struct smtp_line_reader	 lr;
	int			 refs, closing;
	int			 flush_tries;
	struct event		*flush_timer;
	bool			 helo;
	unsigned int		 bad, auth_failures;

	struct auth		*auth;
	struct credentials	 cred;		/* kept for the upstream */
	char			*user;
	struct user		*u;
	struct backend		*check;		/* legacy login check */

	struct relay		*relay;
	enum backend_side	 route;
	char			*from;
	uint64_t		 size;
	enum smtp_body		 body;
	unsigned int		 rcpts;
	bool			 in_mail;
	struct smtp_data	 data;
	bool			 too_big;
	char			 msgid[MSGKEY_MAX];
};

static void	 smtp_input(struct smtp_session *);
static void	 smtp_read(struct bufferevent *, void *);
static void	 smtp_event(struct bufferevent *, short, void *);
static void	 smtp_relay_drained(void *);

static void
smtp_enter(struct smtp_session *s, enum smtp_state st)
{
	log_sess(LOG_DEBUG, s->sid, "smtp state %s -> %s",
	    smtp_state_names[s->state], smtp_state_names[st]);
	s->state = st;
}

static void
smtp_reply(struct smtp_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
	struct evbuffer	*out;
	va_list		 ap;

	if (s->bev == NULL)
		return;
	out = bufferevent_get_output(s->bev);
	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

static void
smtp_close(struct smtp_session *s, const char *why)
{
	if (s->closing)
		return;
	s->closing = 1;
	log_sess(LOG_INFO, s->sid, "event=smtp-disconnect user=%s reason=\"%s\"",
	    s->user ? s->user : "-", why);
}

static void
smtp_transaction_reset(struct smtp_session *s)
{
	relay_free(&s->relay);
	free(s->from);
	s->from = NULL;
	s->rcpts = 0;
	s->in_mail = false;
	s->too_big = false;
	s->msgid[0] = '\0';
}

static void
smtp_free(struct smtp_session *s)
{
	struct server	*srv = s->srv;

	if (s->prevp != NULL && (*s->prevp = s->next) != NULL)
		s->next->prevp = s->prevp;
	smtp_transaction_reset(s);
	backend_free(&s->check);
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	auth_free(&s->auth);
	credentials_clear(&s->cred);
	user_put(&s->u);
	if (s->flush_timer != NULL)
		event_free(s->flush_timer);
	free(s->user);
	config_unref(&s->conf);
	free(s);
	server_session_gone(srv);
}

static void
smtp_hold(struct smtp_session *s)
{
	s->refs++;
}

static void	 smtp_release(struct smtp_session *);

static void
smtp_flush_poll(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session	*s = arg;

	smtp_release(s);	/* the reference taken when it was armed */
}

/*
 * The last reference frees the session, but what is queued (a 221, a
 * 421) goes out first: polled, since with TLS it passes through two
 * buffers before the socket.
 */
static void
smtp_release(struct smtp_session *s)
{
	unsigned int	 ms;
	struct timeval	 tv;

	if (--s->refs > 0 || !s->closing)
		return;
	if (s->bev != NULL && conn_pending(s->bev) > 0 &&
	    (ms = conn_flush_wait(s->flush_tries++)) > 0) {
		tv.tv_sec = ms / 1000;
		tv.tv_usec = (ms % 1000) * 1000;
		bufferevent_disable(s->bev, EV_READ);
		if (s->flush_timer == NULL)
			s->flush_timer = evtimer_new(s->srv->base,
			    smtp_flush_poll, s);
		if (s->flush_timer != NULL) {
			s->refs++;
			evtimer_add(s->flush_timer, &tv);
			return;
		}
	}
	smtp_free(s);
}

/* The daemon is stopping (RFC 5321 §3.8: 421, then close). */
static void
smtp_shutdown(struct smtp_session *s)
{
	if (s->closing)
		return;
	smtp_reply(s, "421 4.3.2 imapmerge is shutting down");
	smtp_close(s, "shutting down");
}

/* One reply and back to reading commands. */
static void
smtp_done(struct smtp_session *s)
{
	smtp_enter(s, S_COMMAND);
	if (s->bad >= SMTP_MAX_BAD) {
		smtp_reply(s, "421 4.7.0 Too many errors, closing");
		smtp_close(s, "too many bad commands");
	}
	if (s->srv->draining)
		smtp_shutdown(s);
	if (!s->closing)
		smtp_input(s);
}

/*
 * AUTH: libsasl2 runs the exchange, the legacy login decides.
 */
static void
smtp_check_done(struct backend *b, const struct backend_result *res,
    void *arg)
{
	struct smtp_session	*s = arg;
	char			 err[256];

	smtp_hold(s);
	if (res->status == BACKEND_OK) {
		s->user = s->cred.user;
		s->cred.user = NULL;
		if ((s->cred.user = strdup(s->user)) == NULL)
			smtp_close(s, "out of memory");
		if ((s->u = user_get(s->srv, s->user, err, sizeof(err))) ==
		    NULL)
			log_sess(LOG_WARNING, s->sid, "event=state-unavailable "
			    "user=%s reason=\"%s\"", s->user, err);
		log_sess(LOG_INFO, s->sid, "event=smtp-login user=%s ip=%s",
		    s->user, s->peer);
		s->srv->stats.logins_ok++;
		smtp_reply(s, "235 2.7.0 Authentication successful");
	} else if (res->auth_failed) {
		log_sess(LOG_INFO, s->sid, "event=auth-failed user=%s ip=%s "
		    "proto=smtp", s->cred.user, s->peer);
		s->srv->stats.logins_failed++;
		credentials_clear(&s->cred);
		smtp_reply(s, "535 5.7.8 Authentication credentials invalid");
		if (++s->auth_failures >= SMTP_MAX_AUTH_FAIL) {
			smtp_reply(s, "421 4.7.0 Too many failed logins");
			smtp_close(s, "too many failed logins");
		}
	} else {
		log_sess(LOG_WARNING, s->sid, "event=smtp-login-unavailable "
		    "user=%s reason=\"%s\"", s->cred.user, res->text);
		credentials_clear(&s->cred);
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
	}
	backend_free(&s->check);
	if (!s->closing)
		smtp_done(s);
	smtp_release(s);
}

static void
smtp_auth_result(struct smtp_session *s, enum auth_result r)
{
	char	*login;

	switch (r) {
	case AUTH_CONTINUE:
		smtp_reply(s, "334 %s", auth_challenge(s->auth));
		smtp_enter(s, S_AUTH_LINE);
		return;
	case AUTH_CANCELLED:
		smtp_reply(s, "501 5.0.0 Authentication cancelled");
		break;
	case AUTH_MALFORMED:
		/* RFC 4954 §4: undecodable BASE64 is a syntax error. */
		s->bad++;
		smtp_reply(s, "501 5.5.2 Cannot decode the response");
		break;
	case AUTH_FAILED:
		s->bad++;
		smtp_reply(s, "535 5.7.8 Authentication credentials invalid");
		break;
	case AUTH_DONE:
		if (!auth_take(s->auth, &s->cred) || (login =
		    config_expand_username(s->conf->backend[BACKEND_LEGACY]
		    .username, s->cred.user)) == NULL) {
			credentials_clear(&s->cred);
			smtp_reply(s, "535 5.7.8 Authentication credentials "
			    "invalid");
			break;
		}
		s->check = backend_new(s->srv, BACKEND_LEGACY, s->sid);
		smtp_enter(s, S_WAIT);
		if (s->check == NULL) {
			free(login);
			smtp_reply(s, "454 4.7.0 Temporary authentication "
			    "failure");
			break;
		}
		backend_open(s->check, login, s->cred.password,
		    smtp_check_done, s);
		free(login);
		return;
	}
	auth_free(&s->auth);
	smtp_done(s);
}

static void
smtp_auth(struct smtp_session *s, const struct smtp_command *c)
{
	if (!s->tls && !s->lc->allow_plaintext_auth) {
		smtp_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
		return;
	}
	if (s->user != NULL || s->in_mail) {
		smtp_reply(s, "503 5.5.1 Already authenticated");
		return;
	}
	auth_free(&s->auth);
	if ((s->auth = auth_new()) == NULL) {
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
		return;
	}
	smtp_auth_result(s, auth_start(s->auth, c->arg, c->arg2));
}

/*
 * MAIL, RCPT, DATA: each goes upstream, its reply comes back.
 */
static void
smtp_relayed(struct relay *r, int code, const char *enh, const char *text,
    void *arg)
{
	struct smtp_session	*s = arg;
	const char		*p;

	smtp_hold(s);
	/* Multi-line replies keep their lines. */
	while ((p = strchr(text, '\n')) != NULL) {
		smtp_reply(s, "%d-%s%s%.*s", code, enh, *enh ? " " : "",
		    (int)(p - text), text);
		text = p + 1;
	}
	smtp_reply(s, "%d %s%s%s", code, enh, *enh ? " " : "", text);
	smtp_release(s);
}

static void
smtp_mail_reply(struct relay *r, int code, const char *enh,
    const char *text, void *arg)
{
	struct smtp_session	*s = arg;

	smtp_relayed(r, code, enh, text, s);
	if (code / 100 == 2)
		s->in_mail = true;
	else
		smtp_transaction_reset(s);
	smtp_done(s);
}

static void
smtp_relay_ready(struct relay *r, int code, const char *enh,
    const char *text, void *arg)
{
	struct smtp_session	*s = arg;
	char			*line;

	s->relay = r;
	relay_set_drained(r, smtp_relay_drained, s);
	if (code != 250) {
		smtp_relayed(r, code, enh, text, s);
		smtp_transaction_reset(s);
		smtp_done(s);
		return;
	}
	if (asprintf(&line, "MAIL FROM:<%s>%s%s", s->from,
	    s->body == SMTP_BODY_8BITMIME ? " BODY=8BITMIME" : "",
	    s->body == SMTP_BODY_7BIT ? " BODY=7BIT" : "") == -1) {
		smtp_reply(s, "451 4.3.0 Local error");
		smtp_transaction_reset(s);
		smtp_done(s);
		return;
	}
	relay_cmd(r, line, smtp_mail_reply, s);
	free(line);
}

static char *
upstream_login(struct smtp_session *s, enum backend_side side)
{
	return config_expand_username(s->conf->backend[side].username,
	    s->user);
}

static void
smtp_mail(struct smtp_session *s, const struct smtp_command *c)
{
	char	*login;

	if (s->user == NULL) {
		smtp_reply(s, "530 5.7.0 Authentication required");
		return;
	}
	if (s->in_mail || s->relay != NULL) {
		smtp_reply(s, "503 5.5.1 Nested MAIL command");
		return;
	}
	if (c->has_size && c->size > s->conf->max_message_size) {
		smtp_reply(s, "552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	if ((s->from = strdup(c->path)) == NULL ||
	    (login = upstream_login(s, s->route = config_route_sender(
	    s->conf, c->path))) == NULL) {
		smtp_reply(s, "451 4.3.0 Local error");
		smtp_transaction_reset(s);
		return;
	}
	s->body = c->body;
	log_sess(LOG_INFO, s->sid, "event=smtp-mail user=%s route=%s",
	    s->user, config_side_name(s->route));
	smtp_enter(s, S_WAIT);
	/* The relay may answer before relay_open() returns. */
	s->relay = relay_open(s->srv, s->route, s->sid, login,
	    s->conf->backend[s->route].auth == BACKEND_AUTH_PASSWORD ?
	    s->cred.password : NULL, smtp_relay_ready, s);
	free(login);
	if (s->relay == NULL) {
		smtp_reply(s, "451 4.3.0 Local error");
		smtp_transaction_reset(s);
		smtp_done(s);
	}
}

static void
smtp_rcpt_reply(struct relay *r, int code, const char *enh,
    const char *text, void *arg)
{
	struct smtp_session	*s = arg;

	smtp_relayed(r, code, enh, text, s);
	if (code / 100 == 2)
		s->rcpts++;
	smtp_done(s);
}

static void
smtp_rcpt(struct smtp_session *s, const struct smtp_command *c)
{
	char	*line;

	if (!s->in_mail) {
		smtp_reply(s, "503 5.5.1 Need MAIL before RCPT");
		return;
	}
	if (s->rcpts >= SMTP_MAX_RCPT) {
		smtp_reply(s, "452 4.5.3 Too many recipients");
		return;
	}
	if (asprintf(&line, "RCPT TO:<%s>", c->path) == -1) {
		smtp_reply(s, "451 4.3.0 Local error");
		return;
	}
	smtp_enter(s, S_WAIT);
	relay_cmd(s->relay, line, smtp_rcpt_reply, s);
	free(line);
}

static void
smtp_header(const char *line, size_t len, void *arg)
{
	struct smtp_session	*s = arg;

	if (s->msgid[0] == '\0' && len > 11 &&
	    strncasecmp(line, "Message-ID:", 11) == 0 &&
	    !msgkey_normalise_id(line + 11, len - 11, s->msgid))
		s->msgid[0] = '\0';
}

static void
smtp_data_reply(struct relay *r, int code, const char *enh,
    const char *text, void *arg)
{
	struct smtp_session	*s = arg;

	smtp_relayed(r, code, enh, text, s);
	if (code / 100 == 2) {
		log_sess(LOG_INFO, s->sid, "event=relayed user=%s route=%s "
		    "size=%llu rcpts=%u", s->user, config_side_name(s->route),
		    (unsigned long long)s->data.size, s->rcpts);
		/* Only a server that files the sender's copy itself makes
		 * the client's own Sent copy one too many. */
		if (s->msgid[0] != '\0' && s->u != NULL &&
		    s->route == BACKEND_NEW &&
		    s->conf->backend[s->route].files_sent_copies &&
		    state_sent_record(s->u->store, s->msgid, time(NULL)) == -1)
			log_sess(LOG_WARNING, s->sid, "event=state-error "
			    "op=sent-record");
	}
	smtp_transaction_reset(s);
	smtp_done(s);
}

static void
smtp_data_go(struct relay *r, int code, const char *enh, const char *text,
    void *arg)
{
	struct smtp_session	*s = arg;

	smtp_relayed(r, code, enh, text, s);
	if (code != 354) {
		smtp_transaction_reset(s);
		smtp_done(s);
		return;
	}
	smtp_data_init(&s->data, smtp_header, s);
	smtp_enter(s, S_DATA);
	smtp_input(s);
}

static void
smtp_data(struct smtp_session *s, const struct smtp_command *c)
{
	if (!s->in_mail || s->rcpts == 0) {
		smtp_reply(s, "503 5.5.1 Need RCPT before DATA");
		return;
	}
	smtp_enter(s, S_WAIT);
	relay_cmd(s->relay, "DATA", smtp_data_go, s);
}

/* Moves the client's message bytes upstream until the final ".". */
static int
smtp_data_pump(struct smtp_session *s, struct evbuffer *in)
{
	struct evbuffer		*out = relay_data_out(s->relay);
	struct evbuffer_iovec	 v;
	size_t			 n;

	while (evbuffer_get_length(in) > 0 && !s->data.done) {
		if (out != NULL && evbuffer_get_length(out) > SMTP_SINK_HIGH) {
			/* The upstream is slower than the client. */
			bufferevent_disable(s->bev, EV_READ);
			return 0;
		}
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		n = smtp_data_scan(&s->data, v.iov_base, v.iov_len);
		if (s->data.size > s->conf->max_message_size)
			s->too_big = true;
		if (out != NULL && !s->too_big)
			evbuffer_remove_buffer(in, out, n);
		else
			evbuffer_drain(in, n);
	}
	if (!s->data.done)
		return 0;
	if (s->too_big || out == NULL) {
		/* The upstream never saw the final dot: it drops the
		 * message when the connection goes. */
		smtp_reply(s, s->too_big ? "552 5.3.4 Message size exceeds "
		    "fixed limit" : "451 4.4.0 The mail server is not "
		    "available now; the message was not sent");
		smtp_transaction_reset(s);
		smtp_done(s);
		return 1;
	}
	smtp_enter(s, S_WAIT);
	relay_data_end(s->relay, smtp_data_reply, s);
	return 1;
}

static void
smtp_relay_drained(void *arg)
{
	struct smtp_session	*s = arg;

	if (s->state == S_DATA && s->bev != NULL) {
		bufferevent_enable(s->bev, EV_READ);
		smtp_input(s);
	}
}

/*
 * Commands.
 */
static void
smtp_ehlo(struct smtp_session *s, const struct smtp_command *c)
{
	bool	 auth = s->tls || s->lc->allow_plaintext_auth;

	smtp_transaction_reset(s);
	s->helo = true;
	if (c->verb == SMTP_HELO) {
		smtp_reply(s, "250 imapmerge");
		return;
	}
	smtp_reply(s, "250-imapmerge");
	smtp_reply(s, "250-PIPELINING");
	smtp_reply(s, "250-SIZE %llu",
	    (unsigned long long)s->conf->max_message_size);
	smtp_reply(s, "250-8BITMIME");
	smtp_reply(s, "250-ENHANCEDSTATUSCODES");
	if (!s->tls)
		smtp_reply(s, "250-STARTTLS");
	if (auth && s->user == NULL)
		smtp_reply(s, "250-AUTH PLAIN LOGIN");
	smtp_reply(s, "250 HELP");
}

static void	 smtp_starttls(struct smtp_session *);

static void
smtp_command(struct smtp_session *s, char *line)
{
	struct smtp_command	 c;
	struct smtp_error	 e;

	if (!smtp_parse_command(line, &c, &e)) {
		s->bad++;
		smtp_reply(s, "%d %s %s", e.code, e.enhanced, e.text);
		return;
	}
	if (!s->helo && c.verb != SMTP_EHLO && c.verb != SMTP_HELO &&
	    c.verb != SMTP_QUIT && c.verb != SMTP_NOOP) {
		smtp_reply(s, "503 5.5.1 Say EHLO first");
		return;
	}
	switch (c.verb) {
	case SMTP_EHLO:
	case SMTP_HELO:
		smtp_ehlo(s, &c);
		break;
	case SMTP_STARTTLS:
		smtp_starttls(s);
		break;
	case SMTP_AUTH:
		smtp_auth(s, &c);
		break;
	case SMTP_MAIL:
		smtp_mail(s, &c);
		break;
	case SMTP_RCPT:
		smtp_rcpt(s, &c);
		break;
	case SMTP_DATA:
		smtp_data(s, &c);
		break;
	case SMTP_RSET:
		smtp_transaction_reset(s);
		smtp_reply(s, "250 2.0.0 Reset");
		break;
	case SMTP_NOOP:
		smtp_reply(s, "250 2.0.0 OK");
		break;
	case SMTP_QUIT:
		smtp_reply(s, "221 2.0.0 Bye");
		smtp_close(s, "quit");
		break;
	case SMTP_HELP:
		smtp_reply(s, "214 2.0.0 imapmerge submission, see RFC 6409");
		break;
	case SMTP_VRFY:
		smtp_reply(s, "252 2.5.0 Cannot VRFY, but will accept the "
		    "message");
		break;
	}
}

/*
 * Input.
 */
static void
smtp_input(struct smtp_session *s)
{
	struct evbuffer		*in;
	struct smtp_error	 e;
	char			*line;

	while (!s->closing && s->bev != NULL && s->state != S_WAIT) {
		in = bufferevent_get_input(s->bev);
		if (s->state == S_DATA) {
			if (smtp_data_pump(s, in) == 0)
				return;
			continue;
		}
		switch (smtp_read_line(&s->lr, in, &line, &e)) {
		case SMTP_MORE:
			return;
		case SMTP_ERROR:
			s->bad++;
			smtp_reply(s, "%d %s %s", e.code, e.enhanced, e.text);
			if (s->bad >= SMTP_MAX_BAD) {
				smtp_reply(s, "421 4.7.0 Too many errors");
				smtp_close(s, "too many bad lines");
			}
			continue;
		case SMTP_DONE:
			break;
		}
		if (s->state == S_AUTH_LINE) {
			smtp_enter(s, S_COMMAND);
			smtp_auth_result(s, auth_step(s->auth, line));
			OPENSSL_cleanse(line, strlen(line));
		} else
			smtp_command(s, line);
		free(line);
	}
}

static void
smtp_read(struct bufferevent *bev, void *arg)
{
	struct smtp_session	*s = arg;

	smtp_hold(s);
	smtp_input(s);
	smtp_release(s);
}

static void
smtp_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session	*s = arg;
	char			 buf[256];

	if (what & BEV_EVENT_CONNECTED)
		return;			/* the TLS handshake is done */
	smtp_hold(s);
	if (s->closing) {
		/* Gone while flushing: nothing more to wait for. */
		conn_discard_output(s->bev);
		s->flush_tries = 1000;	/* conn_flush_wait() gives up */
	} else if (what & BEV_EVENT_TIMEOUT) {
		smtp_reply(s, "421 4.4.2 Timeout, closing");
		smtp_close(s, "idle timeout");
	} else if (what & BEV_EVENT_EOF)
		smtp_close(s, "client closed the connection");
	else {
		/* Broken (a reset, a handshake broken off with the greeting
		 * queued): nothing more can go out, no flush to wait for. */
		conn_discard_output(s->bev);
		smtp_close(s, conn_error(bev, what, buf, sizeof(buf)));
	}
	smtp_release(s);
}

static void
smtp_setup(struct smtp_session *s)
{
	struct timeval	 tv = { SMTP_TIMEOUT_S, 0 };

	bufferevent_setcb(s->bev, smtp_read, NULL, smtp_event, s);
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

/* RFC 3207: anything pipelined after STARTTLS is thrown away. */
static void
smtp_starttls(struct smtp_session *s)
{
	struct bufferevent	*tls;
	SSL			*ssl;

	if (s->tls) {
		smtp_reply(s, "503 5.5.1 TLS already active");
		return;
	}
	if ((ssl = SSL_new(s->srv->tls)) == NULL) {
		smtp_reply(s, "454 4.7.0 TLS not available");
		return;
	}
	evbuffer_drain(bufferevent_get_input(s->bev),
	    evbuffer_get_length(bufferevent_get_input(s->bev)));
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	tls = bufferevent_openssl_filter_new(s->srv->base, s->bev, ssl,
	    BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tls == NULL) {
		SSL_free(ssl);
		smtp_close(s, "cannot start TLS");
		return;
	}
	s->bev = tls;
	s->tls = 1;
	s->helo = false;
	smtp_setup(s);
}

void
smtp_session_new(struct server *srv, const struct listen_conf *lc, int fd,
    const struct sockaddr *sa, int salen)
{
	struct smtp_session	*s;
	SSL			*ssl = NULL;
	int			 port;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		close(fd);
		return;
	}
	s->srv = srv;
	s->conf = config_ref(srv->conf);
	s->lc = lc;
	s->lr.max = SMTP_LINE_MAX;
	snprintf(s->sid, sizeof(s->sid), "%lx", ++srv->next_session_id);
	conn_peer(sa, s->peer, sizeof(s->peer), &port);
	evutil_make_socket_nonblocking(fd);
	if (lc->tls == TLSMODE_TLS) {
		if ((ssl = SSL_new(srv->tls)) != NULL)
			s->bev = bufferevent_openssl_socket_new(srv->base, fd,
			    ssl, BUFFEREVENT_SSL_ACCEPTING,
			    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		s->tls = 1;
	} else
		s->bev = bufferevent_socket_new(srv->base, fd,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (s->bev == NULL) {
		if (ssl != NULL)
			SSL_free(ssl);
		close(fd);
		config_unref(&s->conf);
		free(s);
		return;
	}
	if ((s->next = srv->smtp_sessions) != NULL)
		s->next->prevp = &s->next;
	srv->smtp_sessions = s;
	s->prevp = &srv->smtp_sessions;
	log_sess(LOG_INFO, s->sid, "event=smtp-connect ip=%s port=%d "
	    "listener=%s tls=%s", s->peer, port, lc->text, s->tls ? "yes" :
	    "no");
	smtp_setup(s);
	smtp_reply(s, "220 imapmerge ESMTP ready");
}

/*
 * Sessions waiting for a command or an AUTH line go now; one whose
 * upstream is answering or whose DATA is streaming hears 421 after its
 * reply (smtp_done).
 */
static void
smtp_sessions_drain(struct server *srv)
{
	struct smtp_session	*s, *next;

	for (s = srv->smtp_sessions; s != NULL; s = next) {
		next = s->next;
		if (s->closing || (s->state != S_COMMAND &&
		    s->state != S_AUTH_LINE))
			continue;
		smtp_hold(s);
		smtp_shutdown(s);
		smtp_release(s);
	}
}

static unsigned long
smtp_sessions_count(const struct server *srv)
{
	const struct smtp_session	*s;
	unsigned long			 n = 0;

	for (s = srv->smtp_sessions; s != NULL; s = s->next)
		n++;
	return n;
}

static void
smtp_sessions_free_all(struct server *srv)
{
	while (srv->smtp_sessions != NULL)
		smtp_free(srv->smtp_sessions);
}

const struct service smtp_service = {
	.name = "submission",
	.accept = smtp_session_new,
	.drain = smtp_sessions_drain,
	.free_all = smtp_sessions_free_all,
	.count = smtp_sessions_count,
};
