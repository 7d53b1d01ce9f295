/*
 * libFuzzer target: the SMTP readers.  The input goes, in chunks whose size
 * the first byte picks, through the command line reader and parser, the
 * reply reader, and the DATA scanner.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "protocol/smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
header(const char *line, size_t len, void *arg)
{
	if (len >= SMTP_HEADER_MAX || memchr(line, '\n', len) != NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct smtp_line_reader		 lr = { 64, false };
	struct smtp_reply_reader	 rr;
	const struct smtp_reply		*rep;
	struct smtp_command		 cmd;
	struct smtp_error		 e;
	struct smtp_data		 d;
	struct evbuffer			*a, *b;
	size_t				 off, n, chunk, used, total = 0;
	char				*line;

	if (len == 0)
		return 0;
	chunk = data[0] % 32 + 1;
	a = evbuffer_new();
	b = evbuffer_new();
	smtp_reply_reader_init(&rr, 128);
	smtp_data_init(&d, header, NULL);
	for (off = 1; off < len; off += n) {
		n = len - off < chunk ? len - off : chunk;
		evbuffer_add(a, data + off, n);
		evbuffer_add(b, data + off, n);
		for (;;) {
			enum smtp_result r = smtp_read_line(&lr, a, &line, &e);

			if (r == SMTP_MORE)
				break;
			if (r == SMTP_DONE) {
				smtp_parse_command(line, &cmd, &e);
				free(line);
			}
		}
		for (;;) {
			enum smtp_result r = smtp_read_reply(&rr, b, &rep, &e);

			if (r == SMTP_MORE)
				break;
			if (r == SMTP_DONE && (rep->nlines == 0 ||
			    rep->nlines > SMTP_REPLY_MAX_LINES))
				abort();
			smtp_reply_reader_clear(&rr);
		}
		if (!d.done) {
			used = smtp_data_scan(&d, data + off, n);
			if (used > n)
				abort();
			total += used;
		}
	}
	if (d.size > total)
		abort();
	smtp_reply_reader_clear(&rr);
	evbuffer_free(a);
	evbuffer_free(b);
	return 0;
}
