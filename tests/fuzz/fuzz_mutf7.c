/*
 * libFuzzer target: modified UTF-7.  Whatever decodes must encode back to
 * exactly the input (one spelling per name); whatever encodes must decode
 * back to the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/mutf7.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	const char	*err;
	char		*dec, *enc;

	if ((dec = mutf7_decode((const char *)data, len, &err)) != NULL) {
		if ((enc = mutf7_encode(dec, strlen(dec), &err)) == NULL ||
		    strlen(enc) != len || memcmp(enc, data, len) != 0)
			abort();
		free(enc);
		free(dec);
	}
	if ((enc = mutf7_encode((const char *)data, len, &err)) != NULL) {
		if ((dec = mutf7_decode(enc, strlen(enc), &err)) == NULL ||
		    strlen(dec) != len || memcmp(dec, data, len) != 0)
			abort();
		free(dec);
		free(enc);
	}
	return 0;
}
