/*
 * Upstream submission connections (see smtp_relay.h).
 *
 * One state per step of the opening dialogue; every reply is read with the
 * protocol layer's resumable reply reader.  The failure function
 * relay_fail() is the only place that logs and answers the client for a
 * dead or refusing upstream, with a 4xx when trying later may help and a
 * 5xx when it will not (credentials refused).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "protocol/smtp_parse.h"
#include "proxy/core/log.h"
#include "proxy/core/server.h"
#include "proxy/net/conn.h"
#include "proxy/net/tls.h"
#include "proxy/net/token.h"
#include "proxy/smtp/smtp_relay.h"

#define RELAY_REPLY_MAX		4096

enum relay_state {
	R_CONNECT,
	R_GREETING,
	R_EHLO,
	R_STARTTLS,
	R_EHLO_TLS,
	R_TOKEN,
	R_AUTH,
	R_AUTH_ERROR,		/* XOAUTH2 error challenge answered */
	R_READY,
	R_COMMAND,
	R_DATA,
	R_DATA_END,
	R_FAILED,
	R_STATE_COUNT
};

static const char *const relay_state_names[] = {
	"connect", "greeting", "ehlo", "starttls", "ehlo-tls", "token", "auth",
	"auth-error", "ready", "command", "data", "data-end", "failed",
};
_Static_assert(sizeof(relay_state_names) / sizeof(relay_state_names[0]) ==
    R_STATE_COUNT, "state name table");

struct relay {
	struct server		*srv;
	struct config		*cf;		/* a reference: a reload */
	const struct backend_conf *conf;	/* cf's, for this side */
	enum relay_state	 state;
	char			 sid[24];
	struct bufferevent	*bev;
	struct smtp_reply_reader rr;
	char			*login;
	char			*password;
	unsigned long		 token_req;
	relay_reply_cb		*cb;
	void			*arg;
	void			(*drained)(void *);
	void			*drained_arg;
	int			 busy;		/* in a callback of ours */
	int			 dead;		/* freed meanwhile */
};

static void	 relay_read(struct bufferevent *, void *);
static void	 relay_event(struct bufferevent *, short, void *);
static void	 relay_write(struct bufferevent *, void *);

static void
relay_enter(struct relay *r, enum relay_state st)
{
	log_sess(LOG_DEBUG, r->sid, "relay=%s state %s -> %s",
	    config_side_name(r->conf->side), relay_state_names[r->state],
	    relay_state_names[st]);
	r->state = st;
}

/* Calls the waiting callback once. */
static void
relay_answer(struct relay *r, int code, const char *enh, const char *text)
{
	relay_reply_cb	*cb = r->cb;

	r->cb = NULL;
	if (cb != NULL)
		cb(r, code, enh, text, r->arg);
}

static void
relay_fail(struct relay *r, int code, const char *enh, const char *client,
    const char *why)
{
	log_sess(LOG_WARNING, r->sid, "event=relay-failed upstream=%s "
	    "state=%s reason=\"%s\"", config_side_name(r->conf->side),
	    relay_state_names[r->state], why);
	relay_enter(r, R_FAILED);
	if (r->bev != NULL) {
		bufferevent_free(r->bev);
		r->bev = NULL;
	}
	relay_answer(r, code, enh, client);
}

static void
relay_send(struct relay *r, const char *line)
{
	struct evbuffer	*out = bufferevent_get_output(r->bev);

	evbuffer_add(out, line, strlen(line));
	evbuffer_add(out, "\r\n", 2);
}

static void
relay_setup(struct relay *r)
{
	struct timeval	 tv = { r->cf->command_timeout_ms / 1000, 0 };

	bufferevent_setcb(r->bev, relay_read, relay_write, relay_event, r);
	bufferevent_set_timeouts(r->bev, &tv, NULL);
	bufferevent_enable(r->bev, EV_READ | EV_WRITE);
}

struct relay *
relay_open(struct server *srv, enum backend_side side, const char *sid,
    const char *login, const char *password, relay_reply_cb *ready, void *arg)
{
	const struct backend_conf	*bc;
	struct relay			*r;
	struct timeval			 tv;
	char				 err[256];

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->srv = srv;
	r->cf = config_ref(srv->conf);
	r->conf = bc = &r->cf->backend[side];
	r->cb = ready;
	r->arg = arg;
	snprintf(r->sid, sizeof(r->sid), "%s", sid);
	smtp_reply_reader_init(&r->rr, RELAY_REPLY_MAX);
	if ((r->login = strdup(login)) == NULL || (password != NULL &&
	    (r->password = strdup(password)) == NULL)) {
		relay_free(&r);
		return NULL;
	}
	if (bc->submission.host == NULL) {
		relay_fail(r, 451, "4.3.5", "Sending is not set up for this "
		    "address", "no submission server configured");
		return r;
	}
	r->bev = conn_connect(srv->base, srv->dns, srv->backend_tls[side],
	    bc->submission.host, bc->submission.port,
	    bc->submission.tls == TLSMODE_TLS, err, sizeof(err));
	if (r->bev == NULL) {
		relay_fail(r, 451, "4.4.1", "The mail server cannot be reached "
		    "now", err);
		return r;
	}
	relay_setup(r);
	tv.tv_sec = r->cf->connect_timeout_ms / 1000;
	tv.tv_usec = (r->cf->connect_timeout_ms % 1000) * 1000;
	bufferevent_set_timeouts(r->bev, &tv, &tv);
	return r;
}

static void	 relay_destroy(struct relay *);

/* Owners may free a relay from inside its own callbacks: then the
 * outermost callback frame destroys it on the way out. */
void
relay_free(struct relay **rp)
{
	struct relay	*r = *rp;

	if (r == NULL)
		return;
	*rp = NULL;
	r->cb = NULL;
	r->drained = NULL;
	if (r->busy > 0) {
		r->dead = 1;
		return;
	}
	relay_destroy(r);
}

static void
relay_destroy(struct relay *r)
{
	if (r->token_req != 0)
		token_cancel(r->srv->tokens, r->token_req);
	if (r->bev != NULL) {
		if (r->state == R_READY)
			relay_send(r, "QUIT");
		bufferevent_free(r->bev);
	}
	smtp_reply_reader_clear(&r->rr);
	if (r->password != NULL) {
		OPENSSL_cleanse(r->password, strlen(r->password));
		free(r->password);
	}
	free(r->login);
	config_unref(&r->cf);
	free(r);
}

/*
 * The opening dialogue.
 */
static void
relay_auth_line(struct relay *r, const char *mech, const char *raw,
    size_t rawlen)
{
	char	*line, *b64;
	size_t	 n = 4 * ((rawlen + 2) / 3) + 1;

	if ((b64 = malloc(n)) == NULL || (line = malloc(n + 32)) == NULL) {
		free(b64);
		relay_fail(r, 451, "4.3.0", "Local error", "out of memory");
		return;
	}
	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)raw,
	    (int)rawlen);
	snprintf(line, n + 32, "AUTH %s %s", mech, b64);
	relay_send(r, line);
	OPENSSL_cleanse(b64, strlen(b64));
	OPENSSL_cleanse(line, strlen(line));
	free(b64);
	free(line);
	relay_enter(r, R_AUTH);
}

static void
relay_token(const char *token, const char *error, void *arg)
{
	struct relay	*r = arg;
	char		*raw;
	int		 n;

	r->token_req = 0;
	if (token == NULL) {
		relay_fail(r, 454, "4.7.0", "Sending is not possible now",
		    error);
		return;
	}
	if ((n = asprintf(&raw, "user=%s\001auth=Bearer %s\001\001", r->login,
	    token)) == -1) {
		relay_fail(r, 451, "4.3.0", "Local error", "out of memory");
		return;
	}
	relay_auth_line(r, "XOAUTH2", raw, (size_t)n);
	OPENSSL_cleanse(raw, (size_t)n);
	free(raw);
}

static void
relay_auth(struct relay *r)
{
	char	*raw;
	size_t	 ul = strlen(r->login), pl;

	if (r->conf->auth == BACKEND_AUTH_XOAUTH2) {
		relay_enter(r, R_TOKEN);
		r->token_req = token_get(r->srv->tokens, r->login, relay_token,
		    r);
		return;
	}
	pl = r->password != NULL ? strlen(r->password) : 0;
	if ((raw = malloc(ul + pl + 2)) == NULL) {
		relay_fail(r, 451, "4.3.0", "Local error", "out of memory");
		return;
	}
	raw[0] = '\0';
	memcpy(raw + 1, r->login, ul);
	raw[ul + 1] = '\0';
	if (pl > 0)
		memcpy(raw + ul + 2, r->password, pl);
	relay_auth_line(r, "PLAIN", raw, ul + pl + 2);
	OPENSSL_cleanse(raw, ul + pl + 2);
	free(raw);
}

static void
relay_starttls(struct relay *r)
{
	struct bufferevent	*tls;
	char			 err[256];

	tls = conn_starttls(r->bev, r->srv->backend_tls[r->conf->side],
	    r->conf->submission.host, err, sizeof(err));
	if (tls == NULL) {
		relay_fail(r, 454, "4.7.0", "Sending is not possible now", err);
		return;
	}
	r->bev = tls;
	relay_setup(r);
	relay_send(r, "EHLO imapmerge");
	relay_enter(r, R_EHLO_TLS);
}

static void
relay_opening(struct relay *r, const struct smtp_reply *rep)
{
	char	 why[300];

	snprintf(why, sizeof(why), "%d %s", rep->code, rep->text);
	switch (r->state) {
	case R_GREETING:
		if (rep->code != 220)
			break;
		relay_send(r, "EHLO imapmerge");
		relay_enter(r, R_EHLO);
		return;
	case R_EHLO:
		if (rep->code != 250)
			break;
		if (r->conf->submission.tls == TLSMODE_STARTTLS) {
			relay_send(r, "STARTTLS");
			relay_enter(r, R_STARTTLS);
		} else
			relay_auth(r);
		return;
	case R_STARTTLS:
		if (rep->code != 220)
			break;
		relay_starttls(r);
		return;
	case R_EHLO_TLS:
		if (rep->code != 250)
			break;
		relay_auth(r);
		return;
	case R_AUTH:
		if (rep->code == 235) {
			relay_enter(r, R_READY);
			relay_answer(r, 250, "2.0.0", "OK");
			return;
		}
		if (rep->code == 334) {
			/* XOAUTH2's error challenge: answer it empty, the
			 * final 5xx follows. */
			relay_send(r, "");
			relay_enter(r, R_AUTH_ERROR);
			return;
		}
		/* FALLTHROUGH */
	case R_AUTH_ERROR:
		if (r->conf->auth == BACKEND_AUTH_XOAUTH2)
			token_forget(r->srv->tokens, r->login);
		relay_fail(r, rep->code >= 500 ? 535 : 454, rep->code >= 500 ?
		    "5.7.8" : "4.7.0", "The mail server refused imapmerge's "
		    "login for this account", why);
		return;
	default:
		break;
	}
	relay_fail(r, 451, "4.4.0", "The mail server is not available now",
	    why);
}

static void
relay_read(struct bufferevent *bev, void *arg)
{
	struct relay		*r = arg;
	const struct smtp_reply	*rep;
	struct smtp_error	 e;

	r->busy++;
	while (!r->dead && r->bev != NULL && r->state != R_FAILED) {
		switch (smtp_read_reply(&r->rr, bufferevent_get_input(r->bev),
		    &rep, &e)) {
		case SMTP_MORE:
			goto out;
		case SMTP_ERROR:
			relay_fail(r, 451, "4.4.0", "The mail server is not "
			    "available now", e.text);
			goto out;
		case SMTP_DONE:
			break;
		}
		if (r->state == R_COMMAND || r->state == R_DATA_END) {
			relay_enter(r, R_READY);
			relay_answer(r, rep->code, rep->enhanced, rep->text);
		} else if (r->state == R_READY || r->state == R_DATA)
			relay_fail(r, 451, "4.4.0", "The mail server is not "
			    "available now", "unexpected reply");
		else
			relay_opening(r, rep);
		smtp_reply_reader_clear(&r->rr);
	}
 out:
	if (--r->busy == 0 && r->dead)
		relay_destroy(r);
}

static void
relay_write(struct bufferevent *bev, void *arg)
{
	struct relay	*r = arg;

	r->busy++;
	if (r->drained != NULL)
		r->drained(r->drained_arg);
	if (--r->busy == 0 && r->dead)
		relay_destroy(r);
}

static void
relay_event(struct bufferevent *bev, short what, void *arg)
{
	struct relay	*r = arg;
	struct timeval	 tv = { r->cf->command_timeout_ms / 1000, 0 };
	char		 buf[256];

	if (what & BEV_EVENT_CONNECTED) {
		bufferevent_set_timeouts(r->bev, &tv, NULL);
		if (r->state == R_CONNECT)
			relay_enter(r, R_GREETING);
		return;
	}
	r->busy++;
	relay_fail(r, 451, "4.4.1", "The mail server cannot be reached now",
	    conn_error(bev, what, buf, sizeof(buf)));
	if (--r->busy == 0 && r->dead)
		relay_destroy(r);
}

/*
 * Transactions.
 */
void
relay_cmd(struct relay *r, const char *line, relay_reply_cb *cb, void *arg)
{
	r->cb = cb;
	r->arg = arg;
	if (r->state != R_READY || r->bev == NULL) {
		relay_answer(r, 451, "4.4.0", "The mail server is not "
		    "available now");
		return;
	}
	relay_send(r, line);
	relay_enter(r, R_COMMAND);
}

struct evbuffer *
relay_data_out(struct relay *r)
{
	if (r->bev == NULL)
		return NULL;
	if (r->state == R_READY)
		relay_enter(r, R_DATA);
	return bufferevent_get_output(r->bev);
}

void
relay_data_end(struct relay *r, relay_reply_cb *cb, void *arg)
{
	r->cb = cb;
	r->arg = arg;
	if (r->bev == NULL || r->state != R_DATA) {
		relay_answer(r, 451, "4.4.0", "The mail server is not "
		    "available now; the message was not sent");
		return;
	}
	relay_enter(r, R_DATA_END);
}

void
relay_set_drained(struct relay *r, void (*cb)(void *), void *arg)
{
	r->drained = cb;
	r->drained_arg = arg;
}
