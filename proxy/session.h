/*
 * The client side of IMAP: one struct imap_session per client connection.
 */
#ifndef PROXY_SESSION_H
#define PROXY_SESSION_H

#include <sys/socket.h>

struct server;
struct listen_conf;

/* Takes ownership of fd; on failure the fd is closed and logged. */
void	 imap_session_new(struct server *, const struct listen_conf *,
	    int fd, const struct sockaddr *, int salen);

#endif
