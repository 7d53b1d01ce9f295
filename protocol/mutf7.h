/*
 * Modified UTF-7 (RFC 3501 §5.1.3), the encoding of mailbox names on the
 * wire: imapmerge keeps names in UTF-8 inside and converts at the edges.
 * Decoding is strict — a name has exactly one valid encoding — so that two
 * spellings of one folder can never become two folders.
 */
#ifndef PROTOCOL_MUTF7_H
#define PROTOCOL_MUTF7_H

#include <stddef.h>

/* Both return a malloc'd NUL-terminated string, or NULL with *err set. */
char	*mutf7_encode(const char *utf8, size_t len, const char **err);
char	*mutf7_decode(const char *mutf7, size_t len, const char **err);

#endif
