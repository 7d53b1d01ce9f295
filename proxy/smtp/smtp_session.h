/*
 * The client side of SMTP submission: one struct smtp_session per client
 * connection on a "listen submission" address.
 */
#ifndef PROXY_SMTP_SESSION_H
#define PROXY_SMTP_SESSION_H

#include <sys/socket.h>

struct server;
struct listen_conf;

/* Takes ownership of fd. */
void	 smtp_session_new(struct server *, const struct listen_conf *,
	    int fd, const struct sockaddr *, int salen);
/* Closes every submission session at once (shutdown). */
void	 smtp_sessions_free_all(struct server *);
/* SIGTERM: idle sessions get 421 now, busy ones after their reply. */
void	 smtp_sessions_drain(struct server *);
unsigned long smtp_sessions_count(const struct server *);

#endif
