/*
 * Listening sockets: one per address of each `listen` statement; an
 * accepted connection goes to its protocol's service (struct service).
 */
#ifndef PROXY_CORE_LISTEN_H
#define PROXY_CORE_LISTEN_H

struct server;

/* Binds every configured listener; -1 after logging why. */
int	 listen_start(struct server *);
void	 listen_stop(struct server *);

#endif
