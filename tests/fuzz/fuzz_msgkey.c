/*
 * libFuzzer target: message identity keys.  Whatever the header block,
 * every field comes back NUL-terminated inside MSGKEY_MAX, the hash is
 * "h:" and 32 hex digits, ids hold no whitespace or control bytes, and the
 * same input gives the same key twice.  The raw input also goes through
 * msgkey_normalise_id as one field value.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/msgkey.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_id(const char *id)
{
	const char	*end = memchr(id, '\0', MSGKEY_MAX);
	const char	*p;

	if (end == NULL)
		abort();
	for (p = id; p < end; p++)
		if ((unsigned char)*p < 0x21 || *p == 0x7f)
			abort();
}

static void
check_hash(const char *h)
{
	size_t	 i;

	if (memchr(h, '\0', MSGKEY_MAX) == NULL || strlen(h) != 34 ||
	    strncmp(h, "h:", 2) != 0)
		abort();
	for (i = 2; i < 34; i++)
		if (strchr("0123456789abcdef", h[i]) == NULL)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct msgkey	 k, again;
	char		 out[MSGKEY_MAX];
	bool		 ok;

	msgkey_parse((const char *)data, len, &k);
	check_id(k.msgid);
	check_id(k.alias);
	check_hash(k.hash);
	if (msgkey_primary(&k) != (k.msgid[0] != '\0' ? k.msgid : k.hash))
		abort();
	msgkey_parse((const char *)data, len, &again);
	if (memcmp(&k, &again, sizeof(k)) != 0)
		abort();
	/* Without the hash where the id is the key: the same keys. */
	msgkey_parse_primary((const char *)data, len, &again);
	if (strcmp(k.msgid, again.msgid) != 0 ||
	    strcmp(k.alias, again.alias) != 0 ||
	    strcmp(again.hash, k.msgid[0] != '\0' ? "" : k.hash) != 0)
		abort();

	ok = msgkey_normalise_id((const char *)data, len, out);
	check_id(out);
	if (ok != (out[0] != '\0'))
		abort();
	if (msgkey_hash64(out) == 0)
		abort();
	return 0;
}
