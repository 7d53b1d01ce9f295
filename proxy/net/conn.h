/*
 * Outgoing TCP + TLS connections for backends and SMTP upstreams.
 */
#ifndef PROXY_CONN_H
#define PROXY_CONN_H

#include <sys/types.h>

#include <stddef.h>

#include <openssl/ssl.h>

struct bufferevent;
struct event_base;
struct evdns_base;

/*
 * Starts resolving and connecting host:port; with tls_now the TLS handshake
 * follows at once (implicit TLS).  BEV_EVENT_CONNECTED arrives when the
 * connection (and handshake) is up; NULL with err filled on failure.
 */
struct bufferevent	*conn_connect(struct event_base *, struct evdns_base *,
			    SSL_CTX *, const char *host, int port, int tls_now,
			    char *err, size_t errlen);

/* Wraps a connected plain bufferevent in TLS (after STARTTLS). */
struct bufferevent	*conn_starttls(struct bufferevent *, SSL_CTX *,
			    const char *host, char *err, size_t errlen);

struct sockaddr;

/* The peer's address as text in buf; its port in *port. */
void			 conn_peer(const struct sockaddr *, char *buf,
			    size_t len, int *port);

/* Bytes not yet handed to the kernel, TLS filter layers included. */
size_t			 conn_pending(struct bufferevent *);

/* Drops them: the connection is broken and nothing more will go out. */
void			 conn_discard_output(struct bufferevent *);

/*
 * A closing connection's output is flushed before it goes: how long to
 * wait before looking at conn_pending() again after tries looks (10 ms,
 * doubling to 640 ms), 0 once about 5 s have passed.
 */
unsigned int		 conn_flush_wait(int tries);

/*
 * How much a connection reads and writes per call (conn_set_io).  Without
 * a read high watermark bufferevent_openssl reads at most 4 kB per call,
 * so a 16 kB TLS record became four evbuffer chains and, relayed, four
 * records of 4 kB.  With one, a call reads up to CONN_READ_MAX; reading
 * pauses while CONN_INPUT_MAX bytes wait unparsed (a client pipelining
 * commands behind a slow one cannot grow its input buffer without bound).
 */
#define CONN_READ_MAX		(64 * 1024)
#define CONN_WRITE_MAX		(256 * 1024)
#define CONN_INPUT_MAX		(1024 * 1024)
void			 conn_set_io(struct bufferevent *);

/*
 * Reading ahead on a TLS connection (not a STARTTLS filter): OpenSSL reads
 * up to CONN_READ_MAX per read(2), many records at once.  libevent's TLS
 * bufferevent still hands over one record per readiness event, and the
 * rest would wait for the socket to become readable again, which it may
 * never do: whoever reads such a connection calls conn_tls_drain() after
 * each callback, after the handshake and when reading resumes.
 */
void			 conn_read_ahead(struct bufferevent *);

/* Moves the records OpenSSL holds into bev's input, up to CONN_INPUT_MAX
 * there: the bytes added, or -1 on a TLS error, its reason in err. */
ssize_t			 conn_tls_drain(struct bufferevent *, char *err,
			    size_t errlen);

/* A log-worthy reason for an error event on bev. */
const char		*conn_error(struct bufferevent *, short what,
			    char *buf, size_t len);

#endif
