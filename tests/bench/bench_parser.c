/*
 * Response-parser benchmarks (make bench):
 *   fetch_literal_stream   MB/s of FETCH body payload relayed in streaming
 *                          mode, evbuffer to evbuffer, no copy by the parser
 *   fetch_flags_lines      short "* n FETCH (UID x FLAGS (...))" responses/s
 *   literal_50mb_peak_heap peak heap growth while a 50 MB literal streams
 *                          through; the program fails if it reaches 1 MB
 * Each line is "name value unit" for tests/bench/run.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "protocol/imap_parser.h"

#define CHUNK	(16 * 1024)

static double
now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Streams one FETCH response whose body is size bytes through the parser,
 * arriving CHUNK bytes at a time; the payload goes to sink untouched.
 * Returns the peak of (heap in use - base) seen while it ran.
 */
static size_t
stream_one(struct imap_parser *p, struct evbuffer *in, struct evbuffer *sink,
    const char *payload, size_t size, size_t base)
{
	char			 hdr[96];
	size_t			 sent = 0, n, peak = 0, used;
	const char		*trailer = " FLAGS (\\Seen))\r\n";
	enum imap_parse_result	 r;
	int			 trailer_sent = 0;

	snprintf(hdr, sizeof(hdr), "* 1 FETCH (UID 1 BODY[] {%zu}\r\n", size);
	evbuffer_add(in, hdr, strlen(hdr));
	for (;;) {
		r = imap_parser_read(p, in);
		if (r == IMAP_PARSE_LITERAL) {
			n = evbuffer_get_length(in);
			if (n > imap_parser_literal_left(p))
				n = imap_parser_literal_left(p);
			evbuffer_remove_buffer(in, sink, n);
			imap_parser_literal_consumed(p, n);
			/* The relay would have written it out by now. */
			evbuffer_drain(sink, evbuffer_get_length(sink));
			if (n > 0)
				continue;
		} else if (r == IMAP_PARSE_DONE) {
			imap_parser_reset(p);
			break;
		} else if (r == IMAP_PARSE_ERROR) {
			fprintf(stderr, "parse error: %s\n", imap_parser_error(p));
			exit(1);
		}
		if (sent < size) {
			n = size - sent < CHUNK ? size - sent : CHUNK;
			evbuffer_add(in, payload + (sent % (1 << 20)),
			    n > (1 << 20) - sent % (1 << 20) ?
			    (1 << 20) - sent % (1 << 20) : n);
			sent += n > (1 << 20) - sent % (1 << 20) ?
			    (1 << 20) - sent % (1 << 20) : n;
		} else if (!trailer_sent) {
			evbuffer_add(in, trailer, strlen(trailer));
			trailer_sent = 1;
		}
		used = mallinfo2().uordblks;
		if (used > base && used - base > peak)
			peak = used - base;
	}
	return peak;
}

int
main(void)
{
	struct imap_parser	*p = imap_parser_new(IMAP_PARSER_RESPONSE, NULL);
	struct evbuffer		*in = evbuffer_new(), *sink = evbuffer_new();
	char			*payload = malloc(1 << 20), line[128];
	size_t			 i, base, peak, bodies = 200, lines = 2000000;
	double			 t;
	int			 n;

	for (i = 0; i < (1 << 20); i++)
		payload[i] = "abcdefghijklmnopqrstuvwxyz\r\n"[i % 28];
	imap_parser_set_stream(p, 1, 0);

	t = now();
	for (i = 0; i < bodies; i++)
		stream_one(p, in, sink, payload, 1 << 20, 0);
	t = now() - t;
	printf("fetch_literal_stream %.1f MB/s\n", bodies / t);

	/* Short FETCH FLAGS responses, fed CHUNK bytes at a time. */
	imap_parser_set_stream(p, 0, 0);
	t = now();
	for (i = 0; i < lines; ) {
		while (evbuffer_get_length(in) < CHUNK && i < lines) {
			n = snprintf(line, sizeof(line), "* %zu FETCH (UID %zu "
			    "FLAGS (\\Seen \\Answered))\r\n", i + 1, i + 1000);
			evbuffer_add(in, line, n);
			i++;
		}
		while (imap_parser_read(p, in) == IMAP_PARSE_DONE)
			imap_parser_reset(p);
	}
	t = now() - t;
	printf("fetch_flags_lines %.0f responses/s\n", lines / t);

	/* 50 MB through streaming mode: the heap must not grow by 1 MB. */
	imap_parser_set_stream(p, 1, 0);
	base = mallinfo2().uordblks;
	peak = stream_one(p, in, sink, payload, 50u << 20, base);
	printf("literal_50mb_peak_heap %.1f kB\n", peak / 1024.0);
	free(payload);
	evbuffer_free(in);
	evbuffer_free(sink);
	imap_parser_free(&p);
	if (peak >= 1 << 20) {
		fprintf(stderr, "peak heap %zu bytes: over 1 MB\n", peak);
		return 1;
	}
	return 0;
}
