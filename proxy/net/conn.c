/*
 * Outgoing connections to backends: resolve (evdns, never blocking), connect,
 * and either start TLS at once or later (STARTTLS), verifying the chain and
 * the host name.  One deadline covers resolve + connect + handshake +
 * greeting; the caller arms it with conn_deadline().  Also what the IMAP
 * and SMTP sessions share about their client connections.
 */
#include <sys/socket.h>
#include <netinet/in.h>

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "proxy/net/conn.h"
#include "proxy/net/tls.h"

struct bufferevent *
conn_connect(struct event_base *base, struct evdns_base *dns, SSL_CTX *ctx,
    const char *host, int port, int tls_now, char *err, size_t errlen)
{
	struct bufferevent	*bev;
	SSL			*ssl = NULL;

	if (tls_now) {
		if ((ssl = tls_client_ssl(ctx, host)) == NULL) {
			tls_last_error(err, errlen);
			return NULL;
		}
		bev = bufferevent_openssl_socket_new(base, -1, ssl,
		    BUFFEREVENT_SSL_CONNECTING,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	} else
		bev = bufferevent_socket_new(base, -1,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		if (ssl != NULL)
			SSL_free(ssl);
		snprintf(err, errlen, "cannot create a connection");
		return NULL;
	}
	if (bufferevent_socket_connect_hostname(bev, dns, AF_UNSPEC, host,
	    port) == -1) {
		snprintf(err, errlen, "connect: %s", evutil_gai_strerror(
		    bufferevent_socket_get_dns_error(bev)));
		bufferevent_free(bev);
		return NULL;
	}
	return bev;
}

struct bufferevent *
conn_starttls(struct bufferevent *plain, SSL_CTX *ctx, const char *host,
    char *err, size_t errlen)
{
	struct bufferevent	*bev;
	SSL			*ssl;

	if ((ssl = tls_client_ssl(ctx, host)) == NULL) {
		tls_last_error(err, errlen);
		return NULL;
	}
	bev = bufferevent_openssl_filter_new(bufferevent_get_base(plain),
	    plain, ssl, BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		SSL_free(ssl);
		snprintf(err, errlen, "cannot start TLS");
	}
	return bev;
}

/*
 * Why an event on a connection failed, in words fit for a log line: the
 * certificate verification result first (the case operators must see),
 * then OpenSSL's error queue, then DNS, then errno.
 */
const char *
conn_error(struct bufferevent *bev, short what, char *buf, size_t len)
{
	SSL		*ssl = bufferevent_openssl_get_ssl(bev);
	const char	*verr;
	unsigned long	 e;
	int		 dnserr;

	if (ssl != NULL && (verr = tls_verify_error(ssl)) != NULL) {
		snprintf(buf, len, "certificate verification failed: %s",
		    verr);
		return buf;
	}
	if ((e = bufferevent_get_openssl_error(bev)) != 0) {
		char	 tmp[200];

		ERR_error_string_n(e, tmp, sizeof(tmp));
		snprintf(buf, len, "TLS: %s", tmp);
		return buf;
	}
	if ((dnserr = bufferevent_socket_get_dns_error(bev)) != 0) {
		snprintf(buf, len, "resolve: %s", evutil_gai_strerror(dnserr));
		return buf;
	}
	if (what & BEV_EVENT_EOF)
		snprintf(buf, len, "connection closed by server");
	else if (what & BEV_EVENT_TIMEOUT)
		snprintf(buf, len, "timed out");
	else
		snprintf(buf, len, "%s", evutil_socket_error_to_string(
		    EVUTIL_SOCKET_ERROR()));
	return buf;
}

void
conn_peer(const struct sockaddr *sa, char *buf, size_t len, int *port)
{
	snprintf(buf, len, "?");
	*port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		evutil_inet_ntop(AF_INET, &in->sin_addr, buf, len);
		*port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		evutil_inet_ntop(AF_INET6, &in6->sin6_addr, buf, len);
		*port = ntohs(in6->sin6_port);
	}
}

#define FLUSH_FIRST_MS	10
#define FLUSH_STEP_MAX_MS	640
#define FLUSH_TOTAL_MS	5000	/* a client that does not read */

unsigned int
conn_flush_wait(int tries)
{
	unsigned int	 step = FLUSH_FIRST_MS, total = 0;
	int		 i;

	for (i = 0; i <= tries; i++) {
		if (total >= FLUSH_TOTAL_MS)
			return 0;
		total += step;
		if (i < tries && step < FLUSH_STEP_MAX_MS)
			step *= 2;
	}
	return step;
}

size_t
conn_pending(struct bufferevent *bev)
{
	struct bufferevent	*b;
	size_t			 n = 0;

	for (b = bev; b != NULL; b = bufferevent_get_underlying(b))
		n += evbuffer_get_length(bufferevent_get_output(b));
	return n;
}

void
conn_discard_output(struct bufferevent *bev)
{
	struct bufferevent	*b;
	struct evbuffer		*out;

	for (b = bev; b != NULL; b = bufferevent_get_underlying(b)) {
		out = bufferevent_get_output(b);
		evbuffer_drain(out, evbuffer_get_length(out));
	}
}

void
conn_read_ahead(struct bufferevent *bev)
{
	SSL	*ssl;

	if (bufferevent_get_underlying(bev) != NULL ||
	    (ssl = bufferevent_openssl_get_ssl(bev)) == NULL)
		return;
	SSL_set_read_ahead(ssl, 1);
	SSL_set_default_read_buffer_len(ssl, CONN_READ_MAX);
}

ssize_t
conn_tls_drain(struct bufferevent *bev, char *err, size_t errlen)
{
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct evbuffer_iovec	 v;
	SSL			*ssl;
	size_t			 added = 0;
	int			 n;

	if (bufferevent_get_underlying(bev) != NULL ||
	    (ssl = bufferevent_openssl_get_ssl(bev)) == NULL)
		return 0;
	while (SSL_has_pending(ssl) &&
	    evbuffer_get_length(in) < CONN_INPUT_MAX) {
		if (evbuffer_reserve_space(in, SSL3_RT_MAX_PLAIN_LENGTH, &v,
		    1) < 1)
			break;
		ERR_clear_error();
		if ((n = SSL_read(ssl, v.iov_base, (int)v.iov_len)) <= 0) {
			/* Half a record waits for the socket; the end of
			 * the stream reaches libevent with the socket's. */
			if (SSL_get_error(ssl, n) == SSL_ERROR_SSL) {
				char	 why[200];

				snprintf(err, errlen, "TLS: %s",
				    tls_last_error(why, sizeof(why)));
				return -1;
			}
			break;
		}
		v.iov_len = (size_t)n;
		evbuffer_commit_space(in, &v, 1);
		added += (size_t)n;
	}
	return (ssize_t)added;
}

void
conn_set_io(struct bufferevent *bev)
{
	bufferevent_set_max_single_read(bev, CONN_READ_MAX);
	bufferevent_set_max_single_write(bev, CONN_WRITE_MAX);
	bufferevent_setwatermark(bev, EV_READ, 0, CONN_INPUT_MAX);
}
