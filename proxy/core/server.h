/*
 * What the whole process shares: the configuration, the event loop, the
 * DNS resolver, the TLS contexts, the token cache and the listeners.  There
 * is exactly one struct server; sessions keep a pointer to it.
 */
#ifndef PROXY_SERVER_H
#define PROXY_SERVER_H

#include <stdint.h>
#include <time.h>

#include <event2/event.h>
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
struct status;

/* Counted where the events happen, read by the status endpoint. */
struct server_stats {
	uint64_t		 throttled[BACKEND_COUNT];	/* answers */
	uint64_t		 failures[BACKEND_COUNT];	/* lost, refused */
	uint64_t		 logins_ok;
	uint64_t		 logins_failed;
};

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
	struct status		*status;		/* status-listen */
	time_t			 started;
	struct server_stats	 stats;
	int			 draining;		/* SIGTERM came */
};

/*
 * A session is gone: while draining, the last one ends the loop.  Inline
 * so that the session code needs nothing of daemon.c (fuzzers, tests).
 */
static inline void
server_session_gone(struct server *srv)
{
	if (srv->draining && srv->sessions == NULL &&
	    srv->smtp_sessions == NULL && srv->base != NULL)
		event_base_loopexit(srv->base, NULL);
}

/* Binds every configured listener; -1 after logging why. */
int		 listen_start(struct server *);
void		 listen_stop(struct server *);

/* Closes every client session at once (shutdown). */
void		 imap_sessions_free_all(struct server *);
/*
 * Shutdown, gently (srv->draining set): idle sessions get "* BYE" now,
 * one running a command gets it after that command's answer.
 */
void		 imap_sessions_drain(struct server *);
/* Sessions, and logged-in ones with each server up or down (metrics). */
void		 imap_sessions_count(const struct server *, unsigned long *,
		    unsigned long up[BACKEND_COUNT],
		    unsigned long down[BACKEND_COUNT]);

#endif
