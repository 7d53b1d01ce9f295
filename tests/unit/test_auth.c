/*
 * libsasl2 glue: PLAIN (with and without an initial response), LOGIN, the
 * IMAP LOGIN path, and the ways an exchange goes wrong.
 */
#include <sasl/sasl.h>
#include <sasl/saslutil.h>

#include "proxy/core/auth.h"
#include "unit.h"

static char *
b64(const char *s, size_t len)
{
	static char	 out[512];
	unsigned	 outlen;

	if (sasl_encode64(s, len, out, sizeof(out), &outlen) != SASL_OK)
		return NULL;
	return out;
}

static struct auth *
fresh(void)
{
	static int	 inited;

	if (!inited && auth_init() == 0)
		inited = 1;
	return auth_new();
}

static void
check_cred(struct auth *a, const char *user, const char *pass, size_t plen)
{
	struct credentials	 c;

	if (!CHECK(auth_take(a, &c)))
		return;
	CHECK_STR(c.user, user);
	CHECK_MEM(c.password, c.passlen, pass, plen);
	credentials_clear(&c);
	CHECK(c.user == NULL && c.password == NULL);
	CHECK(!auth_take(a, &c));
}

static void
plain_with_ir(void)
{
	struct auth	*a = fresh();

	CHECK(a != NULL);
	CHECK_INT(auth_start(a, "PLAIN", b64("\0alice\0secret", 13)),
	    AUTH_DONE);
	check_cred(a, "alice", "secret", 6);
	auth_free(&a);
	CHECK(a == NULL);
}

static void
plain_without_ir(void)
{
	struct auth	*a = fresh();

	CHECK_INT(auth_start(a, "plain", NULL), AUTH_CONTINUE);
	CHECK_STR(auth_challenge(a), "");
	CHECK_INT(auth_step(a, b64("alice\0alice\0pa ss", 17)), AUTH_DONE);
	check_cred(a, "alice", "pa ss", 5);
	auth_free(&a);
}

static void
plain_other_authzid(void)
{
	struct auth	*a = fresh();

	/* Acting as another user is not something imapmerge offers. */
	CHECK_INT(auth_start(a, "PLAIN", b64("bob\0alice\0secret", 16)),
	    AUTH_FAILED);
	auth_free(&a);
}

static void
login_mechanism(void)
{
	struct auth	*a = fresh();
	char		 prompt[64];
	unsigned	 len;
	const char	*ch;

	CHECK_INT(auth_start(a, "LOGIN", NULL), AUTH_CONTINUE);
	ch = auth_challenge(a);
	CHECK(sasl_decode64(ch, strlen(ch), prompt, sizeof(prompt), &len) ==
	    SASL_OK);
	CHECK_MEM(prompt, len, "Username:", 9);
	CHECK_INT(auth_step(a, b64("alice", 5)), AUTH_CONTINUE);
	CHECK_INT(auth_step(a, b64("secret", 6)), AUTH_DONE);
	check_cred(a, "alice", "secret", 6);
	auth_free(&a);
}

static void
login_command(void)
{
	struct auth	*a = fresh();

	CHECK_INT(auth_login(a, "alice@example.ac.jp", "s3cr\"et", 7),
	    AUTH_DONE);
	check_cred(a, "alice@example.ac.jp", "s3cr\"et", 7);
	auth_free(&a);
}

static void
bad_exchanges(void)
{
	struct auth	*a = fresh();
	char		 longline[9000];

	CHECK_INT(auth_start(a, "CRAM-MD5", NULL), AUTH_FAILED);
	CHECK_INT(auth_start(a, "DIGEST-MD5", NULL), AUTH_FAILED);
	CHECK_INT(auth_start(a, "PLAIN", "!!!notbase64"), AUTH_MALFORMED);
	auth_free(&a);

	a = fresh();
	CHECK_INT(auth_start(a, "PLAIN", NULL), AUTH_CONTINUE);
	CHECK_INT(auth_step(a, "*"), AUTH_CANCELLED);
	auth_free(&a);

	a = fresh();
	CHECK_INT(auth_start(a, "PLAIN", NULL), AUTH_CONTINUE);
	memset(longline, 'A', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = '\0';
	CHECK_INT(auth_step(a, longline), AUTH_FAILED);
	CHECK_STR(auth_error(a), "response too long");
	auth_free(&a);

	a = fresh();
	/* No password part at all. */
	CHECK_INT(auth_start(a, "PLAIN", b64("\0alice", 6)), AUTH_FAILED);
	auth_free(&a);
	auth_free(&a);		/* a second free of NULL is harmless */
}

static const struct unit_case cases[] = {
	UNIT_CASE(plain_with_ir),
	UNIT_CASE(plain_without_ir),
	UNIT_CASE(plain_other_authzid),
	UNIT_CASE(login_mechanism),
	UNIT_CASE(login_command),
	UNIT_CASE(bad_exchanges),
};

UNIT_MAIN(cases)
