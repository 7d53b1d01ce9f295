/*
 * Client-facing authentication through libsasl2's server API.
 *
 * libsasl2 runs the mechanism exchange (PLAIN with its authzid rules, LOGIN
 * with its prompts, base64 framing) but does not decide whether the password
 * is right: that needs a login to the legacy server, which is asynchronous.
 * Our checkpass callback therefore only captures the credentials; the
 * session verifies them afterwards and answers the client then.
 */
#ifndef PROXY_AUTH_H
#define PROXY_AUTH_H

#include <stddef.h>

struct auth;

enum auth_result {
	AUTH_CONTINUE,		/* send "+ " auth_challenge() and read a line */
	AUTH_DONE,		/* credentials captured, not yet verified */
	AUTH_FAILED,		/* malformed exchange: answer NO */
	AUTH_CANCELLED,		/* client sent "*": answer BAD */
	AUTH_MALFORMED,		/* a line that is not base64: a syntax error */
};

/* The credentials of one login; the password is wiped on free. */
struct credentials {
	char	*user;
	char	*password;
	size_t	 passlen;
};

int		 auth_init(void);
const char	*auth_mechanisms(void);		/* "PLAIN LOGIN" */
int		 auth_mechanism_known(const char *);

struct auth	*auth_new(void);
void		 auth_free(struct auth **);

/* AUTHENTICATE mech [initial-response]; ir is base64, "=" for empty. */
enum auth_result auth_start(struct auth *, const char *mech, const char *ir);
/* One client line of the exchange (base64, or "*" to cancel). */
enum auth_result auth_step(struct auth *, const char *line);
/* The base64 challenge to send after "+ " when AUTH_CONTINUE. */
const char	*auth_challenge(const struct auth *);
/* LOGIN user password, through the same checkpass path. */
enum auth_result auth_login(struct auth *, const char *user,
		    const char *password, size_t passlen);
/* Why the last exchange failed, fit for logs (never holds a secret). */
const char	*auth_error(const struct auth *);

/* Moves the captured credentials out; 0 if there are none. */
int		 auth_take(struct auth *, struct credentials *);
void		 credentials_clear(struct credentials *);

#endif
