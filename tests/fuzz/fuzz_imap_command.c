/*
 * libFuzzer target: the IMAP parser in command mode.  The first byte
 * chooses the chunk size and whether literals are streamed; the rest is
 * fed as a client would send it, answering every event the way the
 * session does.  Invariants: the parser never claims more bytes than it
 * was given, and every call makes progress or reports an event.
 */
#include <stdint.h>
#include <stdlib.h>

#include "protocol/imap_parser.h"
#include "tests/fuzz/fuzz_imap.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	fuzz_imap_run(IMAP_PARSER_COMMAND, data, len);
	return 0;
}
