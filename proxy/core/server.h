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
struct evbuffer;
struct evdns_base;
struct imap_session;
struct listener;
struct abuse;
struct server;
struct sockaddr;
struct token_cache;
struct user;
struct smtp_session;
struct status;

/*
 * A client protocol as the daemon sees it (IMAP, submission): what to do
 * with an accepted connection, at SIGTERM and at exit, and how many
 * sessions it has open.  Each protocol layer defines one; main.c hands
 * them to the daemon (struct daemon_parts), which knows nothing else of
 * them.
 */
struct service {
	const char	*name;		/* "imap": logs, the metrics' label */
	/* Takes ownership of fd. */
	void		(*accept)(struct server *, const struct listen_conf *,
			    int fd, const struct sockaddr *, int salen);
	/* SIGTERM: idle sessions go now, busy ones after their answer. */
	void		(*drain)(struct server *);
	/* Closes every session at once (exit). */
	void		(*free_all)(struct server *);
	unsigned long	(*count)(const struct server *);
	/* Its own metrics (status endpoint), or NULL. */
	void		(*metrics)(struct server *, struct evbuffer *);
};

/* What lies above the core: the protocols, and what their sessions share. */
struct daemon_parts {
	const struct service	*services[LISTEN_PROTO_COUNT];
	/* Before the listeners: what the sessions need (TLS contexts, the
	 * token cache); -1 after logging why.  Or NULL. */
	int			(*setup)(struct server *);
	/* Metrics of what the sessions share (users), or NULL. */
	void			(*metrics)(struct server *, struct evbuffer *);
	/* After the last session: frees what they shared. */
	void			(*teardown)(struct server *);
};

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
	const struct daemon_parts *parts;		/* main.c's */
	time_t			 started;
	struct server_stats	 stats;
	int			 draining;		/* SIGTERM came */
};

/* Sessions open, of every protocol. */
static inline unsigned long
server_sessions(const struct server *srv)
{
	unsigned long	 n = 0;
	int		 i;

	for (i = 0; srv->parts != NULL && i < LISTEN_PROTO_COUNT; i++)
		if (srv->parts->services[i] != NULL)
			n += srv->parts->services[i]->count(srv);
	return n;
}

/*
 * A session is gone: while draining, the last one ends the loop.  Inline
 * so that the session code needs nothing of daemon.c (fuzzers, tests).
 */
static inline void
server_session_gone(struct server *srv)
{
	if (srv->draining && srv->base != NULL && server_sessions(srv) == 0)
		event_base_loopexit(srv->base, NULL);
}

#endif
