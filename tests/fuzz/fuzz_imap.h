/*
 * The driver both IMAP parser fuzz targets share (header-only: the fuzz
 * build compiles one target file with the protocol sources).
 */
#ifndef FUZZ_IMAP_H
#define FUZZ_IMAP_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/imap_parser.h"

static void
fuzz_walk(const struct imap_arg *args, size_t n, unsigned int depth)
{
	const struct imap_arg	*list;
	const char		*s;
	size_t			 count, i;
	uint64_t		 v;

	for (i = 0; i < n; i++) {
		if (imap_arg_get_list(&args[i], &list, &count)) {
			if (depth > 64)
				abort();
			fuzz_walk(list, count, depth + 1);
		} else if (imap_arg_get_astring(&args[i], &s)) {
			if (strlen(s) > args[i].len)
				abort();
		}
		(void)imap_arg_get_number64(&args[i], &v);
	}
}

static void
fuzz_imap_run(enum imap_parser_mode mode, const uint8_t *data, size_t len)
{
	struct imap_parser_limits	 lim;
	struct imap_parser		*p;
	enum imap_parse_result		 r;
	size_t				 off = 1, chunk, used, guard = 0;
	uint8_t				 ctl;

	if (len == 0)
		return;
	ctl = data[0];
	imap_parser_default_limits(&lim);
	lim.max_line = 4096;
	lim.max_literal = 1 << 20;
	lim.max_inline_literal = 4096;
	lim.max_depth = 8;
	lim.max_args = 512;
	if ((p = imap_parser_new(mode, &lim)) == NULL)
		return;
	imap_parser_set_stream(p, ctl & 0x80, ctl & 0x40 ? 0 : 64);
	chunk = (ctl & 0x3f) + 1;
	while (off < len) {
		size_t	 n = len - off < chunk ? len - off : chunk;

		if (++guard > 4 * len + 100)
			abort();		/* no progress */
		r = imap_parser_feed(p, data + off, n, &used);
		if (used > n)
			abort();
		off += used;
		switch (r) {
		case IMAP_PARSE_DONE:
			if (mode == IMAP_PARSER_COMMAND) {
				const struct imap_command *c =
				    imap_parser_command(p);
				fuzz_walk(c->args, c->nargs, 0);
			} else {
				const struct imap_response *rs =
				    imap_parser_response(p);
				fuzz_walk(rs->args, rs->nargs, 0);
				fuzz_walk(rs->code_args, rs->ncode_args, 0);
			}
			imap_parser_reset(p);
			break;
		case IMAP_PARSE_ERROR:
			if (imap_parser_must_close(p))
				goto out;
			imap_parser_reset(p);
			break;
		case IMAP_PARSE_LITERAL: {
			const struct imap_arg	*partial;
			size_t			 np;
			uint64_t		 left;

			imap_parser_partial(p, &partial, &np, NULL);
			fuzz_walk(partial, np, 0);
			left = imap_parser_literal_left(p);
			n = len - off < left ? len - off : left;
			off += n;
			imap_parser_literal_consumed(p, n);
			if (n == 0 && off >= len)
				goto out;
			break;
		}
		default:
			break;
		}
	}
 out:
	imap_parser_free(&p);
}

#endif
