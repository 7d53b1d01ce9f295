/*
 * What the whole process shares: the configuration, the event loop, the
 * DNS resolver, the TLS contexts, the token cache and the listeners.  There
 * is exactly one struct server; sessions keep a pointer to it.
 */
#ifndef PROXY_SERVER_H
#define PROXY_SERVER_H

#include <openssl/ssl.h>

#include "conf/config.h"

struct event_base;
struct evdns_base;
struct imap_session;
struct listener;
struct abuse;
struct token_cache;
struct user;
struct smtp_session;

struct server {
	struct config		*conf;
	struct event_base	*base;
	struct evdns_base	*dns;
	SSL_CTX			*tls;			/* client-facing */
	SSL_CTX			*backend_tls[BACKEND_COUNT];
	struct token_cache	*tokens;		/* xoauth2 only */
	struct listener		*listeners;
	struct imap_session	*sessions;		/* all, for shutdown */
	struct user		*users;			/* logged in, user.c */
	struct smtp_session	*smtp_sessions;		/* submission */
	unsigned long		 next_session_id;
	struct abuse		*abuse;			/* per-IP limits */
};

/* Binds every configured listener; -1 after logging why. */
int		 listen_start(struct server *);
void		 listen_stop(struct server *);

/* Closes every client session at once (shutdown). */
void		 imap_sessions_free_all(struct server *);

#endif
