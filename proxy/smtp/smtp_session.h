/*
 * The client side of SMTP submission: one struct smtp_session per client
 * connection on a "listen submission" address.
 */
#ifndef PROXY_SMTP_SMTP_SESSION_H
#define PROXY_SMTP_SMTP_SESSION_H

#include <sys/socket.h>

struct server;
struct listen_conf;

/* Takes ownership of fd. */
void	 smtp_session_new(struct server *, const struct listen_conf *,
	    int fd, const struct sockaddr *, int salen);
/*
 * The submission listeners' protocol, for the daemon (core/server.h): at
 * SIGTERM idle sessions get 421 now, busy ones after their reply.
 */
extern const struct service smtp_service;

#endif
