/*
 * Limits per client address (DESIGN §8): connections not logged in yet,
 * and failed logins.  Failures are forgotten one per minute; an address
 * with max-login-failures on record has its logins refused until one is
 * forgotten, so a guesser gets about one try a minute.
 */
#ifndef PROXY_ABUSE_H
#define PROXY_ABUSE_H

#include <stdbool.h>

struct server;
struct abuse;

struct abuse	*abuse_new(void);
void		 abuse_free(struct abuse **);

/* A connection from ip before login; false: over max-preauth-per-ip. */
bool		 abuse_preauth_enter(struct server *, const char *ip);
/* It logged in or went. */
void		 abuse_preauth_leave(struct server *, const char *ip);

void		 abuse_login_failed(struct server *, const char *ip);
bool		 abuse_login_blocked(struct server *, const char *ip);

#endif
