/*
 * TLS contexts: one server context for the client-facing listeners and one
 * client context per backend, each with TLS 1.2 as the floor.  Backend
 * connections always verify the certificate chain and the host name.
 */
#ifndef PROXY_NET_TLS_H
#define PROXY_NET_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/* Loads the certificate chain and key; NULL with a reason in err. */
SSL_CTX		*tls_server_ctx(const char *cert, const char *key,
		    char *err, size_t errlen);

/* 1 if the server context's certificate is signed by its own key (a
 * placeholder such as Debian's snakeoil, which clients warn about). */
int		 tls_server_self_signed(SSL_CTX *);

/* Verifying client context; ca_file NULL means the system store. */
SSL_CTX		*tls_client_ctx(const char *ca_file, char *err, size_t errlen);

/* A client SSL for host: SNI (names only) and name or address check. */
SSL		*tls_client_ssl(SSL_CTX *, const char *host);

/* Why the peer's certificate failed, or NULL if it verified. */
const char	*tls_verify_error(const SSL *);

/* The most recent OpenSSL error queue entry as text, clearing the queue. */
const char	*tls_last_error(char *buf, size_t len);

struct server;
/* srv->tls (when there are listeners) and srv->backend_tls[] from its
 * configuration; -1 after logging why. */
int		 tls_contexts_new(struct server *);
void		 tls_contexts_free(struct server *);

#endif
