/*
 * TLS contexts for both directions.  Clients get our certificate; backends
 * must present a chain that verifies against the configured CA file (or the
 * system store) for the host name we dialled — a migration proxy that
 * accepted any certificate would hand every user's password to whoever
 * answers on the legacy server's address.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "proxy/core/log.h"
#include "proxy/core/server.h"
#include "proxy/net/tls.h"

const char *
tls_last_error(char *buf, size_t len)
{
	unsigned long	 e, last = 0;

	while ((e = ERR_get_error()) != 0)
		last = e;
	if (last == 0)
		snprintf(buf, len, "unknown TLS error");
	else
		ERR_error_string_n(last, buf, len);
	return buf;
}

static SSL_CTX *
tls_ctx_new(const SSL_METHOD *method, char *err, size_t errlen)
{
	SSL_CTX	*ctx;

	if ((ctx = SSL_CTX_new(method)) == NULL) {
		tls_last_error(err, errlen);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* Renegotiation and compression only ever helped attackers. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return ctx;
}

SSL_CTX *
tls_server_ctx(const char *cert, const char *key, char *err, size_t errlen)
{
	SSL_CTX	*ctx;

	if ((ctx = tls_ctx_new(TLS_server_method(), err, errlen)) == NULL)
		return NULL;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		tls_last_error(err, errlen);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int
tls_server_self_signed(SSL_CTX *ctx)
{
	X509	*x;

	if ((x = SSL_CTX_get0_certificate(ctx)) == NULL)
		return 0;
	return X509_check_issued(x, x) == X509_V_OK;
}

SSL_CTX *
tls_client_ctx(const char *ca_file, char *err, size_t errlen)
{
	SSL_CTX	*ctx;
	int	 ok;

	if ((ctx = tls_ctx_new(TLS_client_method(), err, errlen)) == NULL)
		return NULL;
	if (ca_file != NULL)
		ok = SSL_CTX_load_verify_locations(ctx, ca_file, NULL);
	else
		ok = SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1) {
		tls_last_error(err, errlen);
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

static int
is_address(const char *host)
{
	unsigned char	 buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 ||
	    inet_pton(AF_INET6, host, buf) == 1;
}

SSL *
tls_client_ssl(SSL_CTX *ctx, const char *host)
{
	SSL			*ssl;
	X509_VERIFY_PARAM	*param;
	int			 ok;

	if ((ssl = SSL_new(ctx)) == NULL)
		return NULL;
	param = SSL_get0_param(ssl);
	X509_VERIFY_PARAM_set_hostflags(param,
	    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (is_address(host))
		ok = X509_VERIFY_PARAM_set1_ip_asc(param, host);
	else
		ok = SSL_set_tlsext_host_name(ssl, host) == 1 &&
		    SSL_set1_host(ssl, host) == 1;
	if (!ok) {
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

const char *
tls_verify_error(const SSL *ssl)
{
	long	 res;

	res = SSL_get_verify_result(ssl);
	if (res == X509_V_OK)
		return NULL;
	return X509_verify_cert_error_string(res);
}

/*
 * The process's contexts (struct server): the listeners', and one per
 * backend.
 */
int
tls_contexts_new(struct server *srv)
{
	const struct config	*conf = srv->conf;
	char			 err[256];
	int			 side;

	if (conf->nlisten > 0) {
		srv->tls = tls_server_ctx(conf->tls_certificate, conf->tls_key,
		    err, sizeof(err));
		if (srv->tls == NULL) {
			log_warnx("tls-certificate %s: %s",
			    conf->tls_certificate, err);
			return -1;
		}
		if (tls_server_self_signed(srv->tls))
			log_warnx("tls-certificate %s is self-signed: clients "
			    "will warn; replace it before users connect",
			    conf->tls_certificate);
	}
	for (side = 0; side < BACKEND_COUNT; side++) {
		const struct backend_conf *be = &conf->backend[side];

		srv->backend_tls[side] = tls_client_ctx(be->ca_file, err,
		    sizeof(err));
		if (srv->backend_tls[side] == NULL) {
			log_warnx("%s: ca-file %s: %s", config_side_name(side),
			    be->ca_file ? be->ca_file : "(system)", err);
			return -1;
		}
	}
	return 0;
}


void
tls_contexts_free(struct server *srv)
{
	int	 side;

	for (side = 0; side < BACKEND_COUNT; side++)
		if (srv->backend_tls[side] != NULL) {
			SSL_CTX_free(srv->backend_tls[side]);
			srv->backend_tls[side] = NULL;
		}
	if (srv->tls != NULL)
		SSL_CTX_free(srv->tls);
	srv->tls = NULL;
}
