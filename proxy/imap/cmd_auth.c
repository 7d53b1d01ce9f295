/*
 * Commands of the not-authenticated state: STARTTLS, LOGIN, AUTHENTICATE,
 * and the login itself — both backends opened in parallel, the legacy
 * login deciding whether the password is right, then the folder tree.
 *
 * What the client hears never says which backend failed or why: a wrong
 * password is "NO [AUTHENTICATIONFAILED]", anything else that keeps us
 * from serving is "NO [UNAVAILABLE]".  The log says the rest.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "protocol/imap_parser.h"
#include "proxy/core/abuse.h"
#include "proxy/core/auth.h"
#include "proxy/core/log.h"
#include "proxy/core/server.h"
#include "proxy/net/backend.h"
#include "proxy/merge/offline.h"
#include "proxy/merge/state.h"
#include "proxy/merge/user.h"
#include "proxy/imap/session_impl.h"

#define LOGIN_MAX_USER	256
#define LOGIN_MAX_PASS	1024

struct login {
	struct backend_result	 res[BACKEND_COUNT];
	char			 why[BACKEND_COUNT][160];
	int			 done[BACKEND_COUNT];
};

static int
sess_plaintext_ok(const struct imap_session *s)
{
	return s->tls || s->lc->allow_plaintext_auth;
}

void
cmd_starttls(struct imap_session *s, const struct imap_arg *args,
    size_t nargs)
{
	if (nargs != 0) {
		sess_done(s, "BAD STARTTLS takes no arguments");
		return;
	}
	if (s->tls) {
		sess_done(s, "BAD TLS is already active");
		return;
	}
	sess_starttls(s);
}

static void	 login_start(struct imap_session *);

/* A wrong password is answered this late: guessing gets slow. */
#define LOGIN_FAIL_DELAY_MS	2000

static void
login_fail_answer(evutil_socket_t fd, short what, void *arg)
{
	struct imap_session	*s = arg;

	sess_hold(s);
	sess_done(s, "NO [AUTHENTICATIONFAILED] Authentication failed.");
	sess_release(s);
}

static void
login_fail_auth(struct imap_session *s)
{
	struct timeval	 tv = { LOGIN_FAIL_DELAY_MS / 1000,
	    (LOGIN_FAIL_DELAY_MS % 1000) * 1000 };

	/* One line per failure for fail2ban (docs/resilience.md). */
	log_sess(LOG_NOTICE, s->sid, "event=auth-failed user=%s ip=%s",
	    s->user, s->peer);
	s->srv->stats.logins_failed++;
	abuse_login_failed(s->srv, s->peer);
	sess_login_reset(s);
	if (s->delay == NULL &&
	    (s->delay = evtimer_new(s->srv->base, login_fail_answer, s)) ==
	    NULL) {
		sess_done(s, "NO [AUTHENTICATIONFAILED] Authentication "
		    "failed.");
		return;
	}
	evtimer_add(s->delay, &tv);
}

static void
login_unavailable(struct imap_session *s)
{
	sess_login_reset(s);
	sess_done(s, "NO [UNAVAILABLE] The mail service is temporarily "
	    "unavailable, try again later.");
}

/* Logged in, with both backends or one: the tree, then OK. */
static void
login_serve(struct imap_session *s)
{
	free(s->login);
	s->login = NULL;
	s->srv->stats.logins_ok++;
	sess_login_folders(s);
}

static void
offline_checked(int result, const char *hash, void *arg)
{
	struct imap_session	*s = arg;

	s->offline = NULL;
	sess_hold(s);
	if (result == 1) {
		log_sess(LOG_WARNING, s->sid, "event=login-offline user=%s "
		    "ip=%s", s->user, s->peer);
		login_serve(s);
	} else if (result == 0)
		login_fail_auth(s);
	else {
		log_sess(LOG_WARNING, s->sid, "event=login-unavailable "
		    "user=%s backend=legacy reason=\"no usable offline "
		    "hash\"", s->user);
		login_unavailable(s);
	}
	sess_release(s);
}

/*
 * The legacy server could not say: the hash kept from the last login it
 * accepted decides, off the loop.
 */
static void
login_offline(struct imap_session *s)
{
	char	 err[256], *stored;

	if (!s->conf->offline_auth) {
		log_sess(LOG_WARNING, s->sid, "event=login-unavailable user=%s "
		    "backend=legacy reason=\"%s\" offline_auth=no", s->user,
		    ((struct login *)s->login)->why[BACKEND_LEGACY]);
		login_unavailable(s);
		return;
	}
	if (s->mc.u == NULL && (s->mc.u = user_get_existing(s->srv, s->user,
	    err, sizeof(err))) != NULL)
		s->store = s->mc.u->store;
	stored = s->store != NULL ? state_meta_get(s->store, "offline-auth") :
	    NULL;
	if (stored == NULL) {
		offline_checked(-1, NULL, s);
		return;
	}
	s->offline = offline_start(s->srv->base, stored, s->cred.password,
	    s->cred.passlen, offline_checked, s);
	free(stored);
	if (s->offline == NULL)
		offline_checked(-1, NULL, s);
}

static void
login_finish(struct imap_session *s)
{
	struct login	*l = s->login;
	const struct backend_result *lr = &l->res[BACKEND_LEGACY],
			*nr = &l->res[BACKEND_NEW];
	int		 side;

	for (side = 0; side < BACKEND_COUNT; side++)
		if (!l->done[side])
			return;
	for (side = 0; side < BACKEND_COUNT; side++)
		if (l->res[side].status != BACKEND_OK &&
		    !l->res[side].auth_failed)
			log_sess(LOG_WARNING, s->sid, "event=login-degraded "
			    "user=%s backend=%s reason=\"%s\"", s->user,
			    config_side_name(side), l->why[side]);
	if (lr->auth_failed) {
		login_fail_auth(s);
		return;
	}
	if (nr->auth_failed)
		log_sess(LOG_WARNING, s->sid, "event=backend-refused user=%s "
		    "backend=new", s->user);
	if (lr->status == BACKEND_OK) {
		s->login_online = true;
		login_serve(s);
		return;
	}
	/* The legacy server is down.  A new server that checked the same
	 * password and refused it is enough to say no. */
	if (nr->auth_failed && s->conf->backend[BACKEND_NEW].auth ==
	    BACKEND_AUTH_PASSWORD) {
		login_fail_auth(s);
		return;
	}
	if (nr->status != BACKEND_OK) {
		log_sess(LOG_WARNING, s->sid, "event=login-unavailable user=%s "
		    "backend=both", s->user);
		login_unavailable(s);
		return;
	}
	login_offline(s);
}

void
sess_login_reset(struct imap_session *s)
{
	int	 side;

	for (side = 0; side < BACKEND_COUNT; side++)
		backend_free(&s->mc.be[side]);
	free(s->login);
	s->login = NULL;
	offline_cancel(s->offline);
	s->offline = NULL;
	sess_folders_free(s);
	free(s->user);
	s->user = NULL;
	credentials_clear(&s->cred);
	s->login_online = false;
	sess_enter(s, SESS_NOTAUTH);
}

static void
login_opened(struct backend *b, const struct backend_result *res, void *arg)
{
	struct imap_session	*s = arg;
	struct login		*l = s->login;
	enum backend_side	 side = backend_side(b);

	l->res[side] = *res;
	snprintf(l->why[side], sizeof(l->why[side]), "%s",
	    res->text ? res->text : "");
	l->res[side].text = l->why[side];
	l->res[side].code = NULL;
	l->done[side] = 1;
	sess_hold(s);
	login_finish(s);
	sess_release(s);
}

static void
login_start(struct imap_session *s)
{
	const char	*pass;
	int		 side;

	if ((s->login = calloc(1, sizeof(struct login))) == NULL ||
	    (s->user = strdup(s->cred.user)) == NULL) {
		sess_close(s, "out of memory");
		return;
	}
	if (abuse_login_blocked(s->srv, s->peer)) {
		log_sess(LOG_NOTICE, s->sid, "event=login-blocked user=%s ip=%s",
		    s->user, s->peer);
		free(s->login);
		s->login = NULL;
		free(s->user);
		s->user = NULL;
		credentials_clear(&s->cred);
		sess_done(s, "NO [UNAVAILABLE] Too many failed logins from "
		    "your address; try again in a few minutes.");
		return;
	}
	sess_enter(s, SESS_AUTHENTICATING);
	log_sess(LOG_INFO, s->sid, "event=login user=%s ip=%s", s->user,
	    s->peer);
	for (side = 0; side < BACKEND_COUNT; side++)
		if ((s->mc.be[side] = backend_new(s->srv, side, s->sid)) ==
		    NULL) {
			sess_close(s, "out of memory");
			return;
		}
	for (side = 0; side < BACKEND_COUNT; side++) {
		pass = s->conf->backend[side].auth ==
		    BACKEND_AUTH_XOAUTH2 ? NULL : s->cred.password;
		backend_open(s->mc.be[side], s->user, pass, login_opened, s);
	}
}

/* Credentials the backends could never carry are refused up front. */
static int
login_credentials_ok(const struct credentials *c)
{
	size_t	 ulen = strlen(c->user);

	return ulen > 0 && ulen <= LOGIN_MAX_USER &&
	    c->passlen > 0 && c->passlen <= LOGIN_MAX_PASS &&
	    memchr(c->password, '\0', c->passlen) == NULL &&
	    strpbrk(c->user, "\r\n") == NULL;
}

static void
login_with_auth(struct imap_session *s)
{
	if (!auth_take(s->auth, &s->cred) || !login_credentials_ok(&s->cred)) {
		credentials_clear(&s->cred);
		sess_done(s, "NO [AUTHENTICATIONFAILED] Authentication "
		    "failed.");
		return;
	}
	login_start(s);
}

void
cmd_login(struct imap_session *s, const struct imap_arg *args, size_t nargs)
{
	const char	*user, *pass;
	size_t		 passlen;

	if (!sess_plaintext_ok(s)) {
		sess_done(s, "NO [PRIVACYREQUIRED] Use STARTTLS first.");
		return;
	}
	if (nargs != 2 || !imap_arg_get_astring(&args[0], &user) ||
	    !imap_arg_get_astring_len(&args[1], &pass, &passlen)) {
		sess_done(s, "BAD LOGIN needs a user name and a password");
		return;
	}
	if (s->auth == NULL && (s->auth = auth_new()) == NULL) {
		sess_done(s, "NO [UNAVAILABLE] Out of memory");
		return;
	}
	if (auth_login(s->auth, user, pass, passlen) != AUTH_DONE) {
		sess_done(s, "NO [AUTHENTICATIONFAILED] Authentication "
		    "failed.");
		return;
	}
	login_with_auth(s);
}

static void
auth_result(struct imap_session *s, enum auth_result r)
{
	switch (r) {
	case AUTH_CONTINUE:
		s->inmode = IN_AUTH_LINE;
		sess_printf(s, "+ %s\r\n", auth_challenge(s->auth));
		break;
	case AUTH_DONE:
		s->inmode = IN_COMMAND;
		login_with_auth(s);
		break;
	case AUTH_CANCELLED:
		s->inmode = IN_COMMAND;
		sess_done(s, "BAD AUTHENTICATE cancelled");
		break;
	case AUTH_MALFORMED:
		/* RFC 9051 §6.2.2: a response that is not base64 is BAD. */
		s->inmode = IN_COMMAND;
		sess_done(s, "BAD Invalid base64 in the response");
		break;
	case AUTH_FAILED:
		s->inmode = IN_COMMAND;
		log_sess(LOG_INFO, s->sid, "event=auth-failed ip=%s "
		    "reason=\"%s\"", s->peer, auth_error(s->auth));
		s->srv->stats.logins_failed++;
		sess_done(s, "NO [AUTHENTICATIONFAILED] Authentication "
		    "failed.");
		break;
	}
}

void
cmd_authenticate(struct imap_session *s, const struct imap_arg *args,
    size_t nargs)
{
	const char	*mech, *ir = NULL;

	if (!sess_plaintext_ok(s)) {
		sess_done(s, "NO [PRIVACYREQUIRED] Use STARTTLS first.");
		return;
	}
	if (nargs < 1 || nargs > 2 || !imap_arg_get_atom(&args[0], &mech) ||
	    (nargs == 2 && !imap_arg_get_atom(&args[1], &ir))) {
		sess_done(s, "BAD AUTHENTICATE needs a mechanism");
		return;
	}
	if (!auth_mechanism_known(mech)) {
		sess_done(s, "NO Unsupported authentication mechanism");
		return;
	}
	if (s->auth == NULL && (s->auth = auth_new()) == NULL) {
		sess_done(s, "NO [UNAVAILABLE] Out of memory");
		return;
	}
	auth_result(s, auth_start(s->auth, mech, ir));
}

/* One line of an AUTHENTICATE exchange (never logged: it is a secret). */
void
sess_auth_step(struct imap_session *s, const char *line)
{
	auth_result(s, auth_step(s->auth, line));
}
