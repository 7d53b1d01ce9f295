/*
 * libsasl2 server glue.  See auth.h for why the checkpass callback accepts
 * and only records what the client sent.
 *
 * libsasl2 reads its options through our getopt callback, never from
 * /etc/sasl2: only PLAIN and LOGIN are offered, and no security layer is
 * negotiated (TLS carries the confidentiality; the session refuses
 * plaintext mechanisms before TLS by itself).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <sasl/sasl.h>
#include <sasl/saslutil.h>

#include "proxy/core/auth.h"

#define AUTH_MAX_B64	8192	/* longest client line we decode */

/* libsasl2 stores every callback as int (*)(void); void (*)(void) is the
 * pointer type C lets us convert through without a warning. */
#define SASL_FN(f)	((int (*)(void))(void (*)(void))(f))

struct auth {
	sasl_conn_t		*conn;
	sasl_callback_t		 callbacks[3];
	struct credentials	 cred;
	int			 have_cred;
	char			*challenge;
	const char		*error;
};

static int
auth_getopt(void *ctx, const char *plugin, const char *option,
    const char **result, unsigned *len)
{
	if (strcmp(option, "mech_list") == 0)
		*result = "PLAIN LOGIN";
	else if (strcmp(option, "pwcheck_method") == 0)
		*result = "auxprop";
	else if (strcmp(option, "auxprop_plugin") == 0)
		*result = "imapmerge-none";	/* never consult sasldb */
	else
		return SASL_FAIL;
	if (len != NULL)
		*len = strlen(*result);
	return SASL_OK;
}

static int
auth_log(void *ctx, int level, const char *message)
{
	/* libsasl2's own messages may quote user input: keep them out. */
	return SASL_OK;
}

static int
auth_checkpass(sasl_conn_t *conn, void *ctx, const char *user,
    const char *pass, unsigned passlen, struct propctx *propctx)
{
	struct auth	*a = ctx;

	credentials_clear(&a->cred);
	a->cred.user = strdup(user);
	a->cred.password = malloc(passlen + 1);
	if (a->cred.user == NULL || a->cred.password == NULL) {
		credentials_clear(&a->cred);
		return SASL_NOMEM;
	}
	memcpy(a->cred.password, pass, passlen);
	a->cred.password[passlen] = '\0';
	a->cred.passlen = passlen;
	a->have_cred = 1;
	return SASL_OK;
}

int
auth_init(void)
{
	static const sasl_callback_t global[] = {
		{ SASL_CB_GETOPT, SASL_FN(auth_getopt), NULL },
		{ SASL_CB_LOG, SASL_FN(auth_log), NULL },
		{ SASL_CB_LIST_END, NULL, NULL },
	};

	return sasl_server_init(global, "imapmerge") == SASL_OK ? 0 : -1;
}

const char *
auth_mechanisms(void)
{
	return "PLAIN LOGIN";
}

int
auth_mechanism_known(const char *mech)
{
	return strcasecmp(mech, "PLAIN") == 0 || strcasecmp(mech, "LOGIN") == 0;
}

struct auth *
auth_new(void)
{
	struct auth		*a;
	sasl_security_properties_t secprops;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->callbacks[0] = (sasl_callback_t){ SASL_CB_SERVER_USERDB_CHECKPASS,
	    SASL_FN(auth_checkpass), a };
	a->callbacks[1] = (sasl_callback_t){ SASL_CB_LOG,
	    SASL_FN(auth_log), a };
	a->callbacks[2] = (sasl_callback_t){ SASL_CB_LIST_END, NULL, NULL };
	if (sasl_server_new("imap", "imapmerge", NULL, NULL, NULL,
	    a->callbacks, 0, &a->conn) != SASL_OK) {
		free(a);
		return NULL;
	}
	memset(&secprops, 0, sizeof(secprops));
	secprops.maxbufsize = 0;
	secprops.max_ssf = 0;
	if (sasl_setprop(a->conn, SASL_SEC_PROPS, &secprops) != SASL_OK) {
		auth_free(&a);
		return NULL;
	}
	return a;
}

void
auth_free(struct auth **ap)
{
	struct auth	*a = *ap;

	if (a == NULL)
		return;
	if (a->conn != NULL)
		sasl_dispose(&a->conn);
	credentials_clear(&a->cred);
	free(a->challenge);
	free(a);
	*ap = NULL;
}

void
credentials_clear(struct credentials *c)
{
	if (c->password != NULL) {
		OPENSSL_cleanse(c->password, c->passlen);
		free(c->password);
	}
	free(c->user);
	memset(c, 0, sizeof(*c));
}

int
auth_take(struct auth *a, struct credentials *out)
{
	if (!a->have_cred)
		return 0;
	*out = a->cred;
	memset(&a->cred, 0, sizeof(a->cred));
	a->have_cred = 0;
	return 1;
}

const char *
auth_challenge(const struct auth *a)
{
	return a->challenge != NULL ? a->challenge : "";
}

const char *
auth_error(const struct auth *a)
{
	return a->error != NULL ? a->error : "no error";
}

/*
 * Decodes a client line; "=" is the RFC 4959 empty initial response.
 * AUTH_DONE when decoded; AUTH_MALFORMED when the line is not base64.
 */
static enum auth_result
auth_decode(struct auth *a, const char *b64, char **out, unsigned *outlen)
{
	size_t		 len = strlen(b64);
	unsigned	 cap;

	if (len > AUTH_MAX_B64) {
		a->error = "response too long";
		return AUTH_FAILED;
	}
	cap = len / 4 * 3 + 4;
	if ((*out = malloc(cap)) == NULL) {
		a->error = "out of memory";
		return AUTH_FAILED;
	}
	if (strcmp(b64, "=") == 0) {
		*outlen = 0;
		return AUTH_DONE;
	}
	if (sasl_decode64(b64, len, *out, cap, outlen) != SASL_OK) {
		free(*out);
		*out = NULL;
		a->error = "invalid base64";
		return AUTH_MALFORMED;
	}
	return AUTH_DONE;
}

static enum auth_result
auth_result(struct auth *a, int rc, const char *out, unsigned outlen)
{
	unsigned	 cap, len;

	free(a->challenge);
	a->challenge = NULL;
	if (rc == SASL_OK) {
		if (!a->have_cred) {
			a->error = "mechanism finished without a password";
			return AUTH_FAILED;
		}
		return AUTH_DONE;
	}
	if (rc != SASL_CONTINUE) {
		a->error = sasl_errstring(rc, NULL, NULL);
		return AUTH_FAILED;
	}
	cap = (outlen + 2) / 3 * 4 + 1;
	if ((a->challenge = malloc(cap)) == NULL ||
	    sasl_encode64(out, outlen, a->challenge, cap, &len) != SASL_OK) {
		a->error = "cannot encode challenge";
		return AUTH_FAILED;
	}
	return AUTH_CONTINUE;
}

enum auth_result
auth_start(struct auth *a, const char *mech, const char *ir)
{
	const char	*out = NULL;
	char		*in = NULL;
	unsigned	 inlen = 0, outlen = 0;
	int		 rc;
	enum auth_result r;

	a->error = NULL;
	if (!auth_mechanism_known(mech)) {
		a->error = "unsupported mechanism";
		return AUTH_FAILED;
	}
	if (ir != NULL && (r = auth_decode(a, ir, &in, &inlen)) != AUTH_DONE)
		return r;
	rc = sasl_server_start(a->conn, mech, in, inlen, &out, &outlen);
	if (in != NULL) {
		OPENSSL_cleanse(in, inlen);
		free(in);
	}
	return auth_result(a, rc, out, outlen);
}

enum auth_result
auth_step(struct auth *a, const char *line)
{
	const char	*out = NULL;
	char		*in = NULL;
	unsigned	 inlen = 0, outlen = 0;
	int		 rc;
	enum auth_result r;

	if (strcmp(line, "*") == 0) {
		a->error = "cancelled by client";
		return AUTH_CANCELLED;
	}
	if ((r = auth_decode(a, line, &in, &inlen)) != AUTH_DONE)
		return r;
	rc = sasl_server_step(a->conn, in, inlen, &out, &outlen);
	OPENSSL_cleanse(in, inlen);
	free(in);
	return auth_result(a, rc, out, outlen);
}

enum auth_result
auth_login(struct auth *a, const char *user, const char *password,
    size_t passlen)
{
	int	 rc;

	a->error = NULL;
	rc = sasl_checkpass(a->conn, user, strlen(user), password, passlen);
	return auth_result(a, rc, NULL, 0);
}
