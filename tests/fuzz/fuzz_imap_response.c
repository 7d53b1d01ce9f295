/*
 * libFuzzer target: the IMAP parser in response mode (what a backend
 * server sends), whole and in chunks, with and without streaming.
 */
#include <stdint.h>
#include <stdlib.h>

#include "protocol/imap_parser.h"
#include "tests/fuzz/fuzz_imap.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	fuzz_imap_run(IMAP_PARSER_RESPONSE, data, len);
	return 0;
}
