/*
 * The client side of IMAP: one struct imap_session per client connection.
 */
#ifndef PROXY_IMAP_SESSION_H
#define PROXY_IMAP_SESSION_H

#include <sys/socket.h>

struct server;
struct listen_conf;
struct bufferevent;

/* Takes ownership of fd; on failure the fd is closed and logged. */
void	 imap_session_new(struct server *, const struct listen_conf *,
	    int fd, const struct sockaddr *, int salen);

/*
 * The same over a connection already set up (BEV_OPT_CLOSE_ON_FREE; TLS
 * already wrapped for a tls listener), with the client's address in
 * words: what imap_session_new ends in, and what the session fuzzer
 * drives over a bufferevent pair.  Takes ownership of bev.
 */
void	 imap_session_start(struct server *, const struct listen_conf *,
	    struct bufferevent *, const char *peer, int port);

/* The IMAP listeners' protocol, for the daemon (core/server.h). */
extern const struct service imap_service;

#endif
