/*
 * SMTP: command lines (paths, parameters, errors with their reply codes),
 * multi-line replies, the DATA scanner and dot-stuffing — each reader fed
 * whole, byte by byte and in random chunks.
 */
#include <event2/buffer.h>

#include "protocol/smtp_parse.h"
#include "unit.h"

static void
commands(void)
{
	static const struct {
		const char	*line;
		int		 verb;
		const char	*arg, *path;
		int		 nparams;
		uint64_t	 size;
		int		 body;
	} rows[] = {
		{ "EHLO client.example.ac.jp", SMTP_EHLO, "client.example.ac.jp",
		  NULL, 0, 0, 0 },
		{ "ehlo [127.0.0.1]", SMTP_EHLO, "[127.0.0.1]", NULL, 0, 0, 0 },
		{ "MAIL FROM:<alice@example.ac.jp>", SMTP_MAIL, NULL,
		  "alice@example.ac.jp", 0, 0, 0 },
		{ "MAIL FROM:<> SIZE=1000", SMTP_MAIL, NULL, "", 1, 1000, 0 },
		{ "mail from: <a@b> BODY=8BITMIME SIZE=35000000", SMTP_MAIL,
		  NULL, "a@b", 2, 35000000, SMTP_BODY_8BITMIME },
		{ "MAIL FROM:<@relay.example:bob@example.org>", SMTP_MAIL, NULL,
		  "bob@example.org", 0, 0, 0 },
		{ "MAIL FROM:<\"a b\"@example.org> AUTH=<>", SMTP_MAIL, NULL,
		  "\"a b\"@example.org", 1, 0, 0 },
		{ "RCPT TO:<bob@example.ac.jp>", SMTP_RCPT, NULL,
		  "bob@example.ac.jp", 0, 0, 0 },
		{ "RCPT TO:<list@ml.example.ac.jp> NOTIFY=NEVER", SMTP_RCPT,
		  NULL, "list@ml.example.ac.jp", 1, 0, 0 },
		{ "DATA", SMTP_DATA, NULL, NULL, 0, 0, 0 },
		{ "RSET", SMTP_RSET, NULL, NULL, 0, 0, 0 },
		{ "NOOP", SMTP_NOOP, NULL, NULL, 0, 0, 0 },
		{ "NOOP hello", SMTP_NOOP, "hello", NULL, 0, 0, 0 },
		{ "QUIT", SMTP_QUIT, NULL, NULL, 0, 0, 0 },
		{ "STARTTLS", SMTP_STARTTLS, NULL, NULL, 0, 0, 0 },
		{ "AUTH PLAIN AGFsaWNlAHNlY3JldA==", SMTP_AUTH, "PLAIN", NULL,
		  0, 0, 0 },
		{ "AUTH LOGIN", SMTP_AUTH, "LOGIN", NULL, 0, 0, 0 },
	};
	struct smtp_command	 c;
	struct smtp_error	 e;
	char			 buf[256];
	size_t			 i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		snprintf(buf, sizeof(buf), "%s", rows[i].line);
		if (!CHECK(smtp_parse_command(buf, &c, &e))) {
			printf("#   row %zu: %s\n", i, rows[i].line);
			continue;
		}
		CHECK_INT(c.verb, rows[i].verb);
		if (rows[i].arg != NULL)
			CHECK_STR(c.arg, rows[i].arg);
		if (rows[i].path != NULL)
			CHECK_STR(c.path, rows[i].path);
		CHECK_INT(c.nparams, rows[i].nparams);
		CHECK_INT(c.size, rows[i].size);
		CHECK_INT(c.body, rows[i].body);
	}
	snprintf(buf, sizeof(buf), "AUTH PLAIN =");
	CHECK(smtp_parse_command(buf, &c, &e));
	CHECK_STR(c.arg2, "=");
}

static void
command_errors(void)
{
	static const struct {
		const char	*line;
		int		 code;
		const char	*enhanced;
	} rows[] = {
		{ "FOO bar", 500, "5.5.2" },
		{ "", 500, "5.5.2" },
		{ "EHLO", 501, "5.5.4" },
		{ "EHLO a b", 501, "5.5.4" },
		{ "MAIL alice@example", 501, "5.5.4" },
		{ "MAIL FROM:alice@example", 501, "5.1.7" },
		{ "MAIL FROM:<alice>", 501, "5.1.7" },
		{ "MAIL FROM:<a@b", 501, "5.1.7" },
		{ "MAIL FROM:<a@b>x", 501, "5.5.4" },
		{ "MAIL FROM:<a@b> SIZE=abc", 501, "5.5.4" },
		{ "MAIL FROM:<a@b> SIZE=99999999999999999999999", 501, "5.5.4" },
		{ "MAIL FROM:<a@b> BODY=BINARYMIME", 501, "5.5.4" },
		{ "MAIL FROM:<a@b> A=1 B=2 C=3 D=4 E=5 F=6 G=7 H=8 I=9", 501,
		  "5.5.4" },
		{ "MAIL FROM:<a@b> X_Y=1", 501, "5.5.4" },
		{ "RCPT TO:<>", 501, "5.1.7" },
		{ "RCPT FROM:<a@b>", 501, "5.5.4" },
		{ "DATA now", 501, "5.5.4" },
		{ "QUIT please", 501, "5.5.4" },
		{ "AUTH", 501, "5.5.4" },
		{ "AUTH PLAIN a b", 501, "5.5.4" },
	};
	struct smtp_command	 c;
	struct smtp_error	 e;
	char			 buf[256];
	size_t			 i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		snprintf(buf, sizeof(buf), "%s", rows[i].line);
		e.code = 0;
		if (!CHECK(!smtp_parse_command(buf, &c, &e))) {
			printf("#   row %zu: %s\n", i, rows[i].line);
			continue;
		}
		CHECK_INT(e.code, rows[i].code);
		CHECK_STR(e.enhanced, rows[i].enhanced);
	}
}

/* Feeds text in pieces and collects lines or errors as "L:x" / "E:code". */
static void
read_lines(const char *in, size_t len, int chunking, uint32_t seed, char *out,
    size_t outlen)
{
	struct smtp_line_reader	 r = { 32, false };
	struct evbuffer		*b = evbuffer_new();
	struct smtp_error	 e;
	enum smtp_result	 res;
	size_t			 off = 0, n;
	char			*line;

	out[0] = '\0';
	while (off < len) {
		n = chunking == 0 ? len : chunking == 1 ? 1 :
		    1 + unit_rand(&seed) % 9;
		if (n > len - off)
			n = len - off;
		evbuffer_add(b, in + off, n);
		off += n;
		while ((res = smtp_read_line(&r, b, &line, &e)) != SMTP_MORE) {
			size_t	 l = strlen(out);

			if (res == SMTP_DONE) {
				snprintf(out + l, outlen - l, "L:%s|", line);
				free(line);
			} else
				snprintf(out + l, outlen - l, "E:%d|", e.code);
		}
	}
	evbuffer_free(b);
}

static void
line_reader(void)
{
	static const struct {
		const char	*in, *want;
	} rows[] = {
		{ "EHLO a\r\nNOOP\r\n", "L:EHLO a|L:NOOP|" },
		{ "\r\n", "L:|" },
		{ "bare\nNOOP\r\n", "E:500|L:NOOP|" },
		{ "0123456789012345678901234567890123456789\r\nQUIT\r\n",
		  "E:500|L:QUIT|" },
		{ "0123456789012345678901234567890123456789012345678901234567"
		  "89\r\nQUIT\r\n", "E:500|L:QUIT|" },
	};
	char		 got[256];
	size_t		 i;
	int		 ch;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		for (ch = 0; ch < 5; ch++) {
			read_lines(rows[i].in, strlen(rows[i].in), ch,
			    (uint32_t)(i * 31 + ch + 1), got, sizeof(got));
			if (strcmp(got, rows[i].want) != 0) {
				CHECK_STR(got, rows[i].want);
				printf("#   row %zu chunking %d\n", i, ch);
				break;
			}
		}
}

static void
replies(void)
{
	struct smtp_reply_reader	 r;
	const struct smtp_reply		*rep;
	struct smtp_error		 e;
	struct evbuffer			*b = evbuffer_new();
	const char			*ehlo = "250-smtp.office365.com Hello\r\n"
	    "250-SIZE 36700160\r\n250-PIPELINING\r\n250-STARTTLS\r\n"
	    "250 8BITMIME\r\n";
	size_t				 i;

	smtp_reply_reader_init(&r, 512);
	for (i = 0; i < strlen(ehlo); i++) {
		evbuffer_add(b, ehlo + i, 1);
		if (smtp_read_reply(&r, b, &rep, &e) == SMTP_DONE)
			break;
	}
	CHECK_INT(i, strlen(ehlo) - 1);
	CHECK_INT(rep->code, 250);
	CHECK_INT(rep->nlines, 5);
	CHECK_STR(rep->text, "smtp.office365.com Hello\nSIZE 36700160\n"
	    "PIPELINING\nSTARTTLS\n8BITMIME");
	CHECK_STR(rep->enhanced, "");
	smtp_reply_reader_clear(&r);

	evbuffer_add_printf(b, "535 5.7.3 Authentication unsuccessful\r\n");
	CHECK_INT(smtp_read_reply(&r, b, &rep, &e), SMTP_DONE);
	CHECK_INT(rep->code, 535);
	CHECK_STR(rep->enhanced, "5.7.3");
	CHECK_STR(rep->text, "5.7.3 Authentication unsuccessful");
	smtp_reply_reader_clear(&r);

	evbuffer_add_printf(b, "220\r\n");
	CHECK_INT(smtp_read_reply(&r, b, &rep, &e), SMTP_DONE);
	CHECK_INT(rep->code, 220);
	smtp_reply_reader_clear(&r);

	evbuffer_add_printf(b, "250-a\r\n251 b\r\n");
	CHECK_INT(smtp_read_reply(&r, b, &rep, &e), SMTP_ERROR);
	smtp_reply_reader_clear(&r);
	evbuffer_drain(b, evbuffer_get_length(b));
	evbuffer_add_printf(b, "25 x\r\n");
	CHECK_INT(smtp_read_reply(&r, b, &rep, &e), SMTP_ERROR);
	smtp_reply_reader_clear(&r);
	evbuffer_drain(b, evbuffer_get_length(b));
	evbuffer_add_printf(b, "999 x\r\n");
	CHECK_INT(smtp_read_reply(&r, b, &rep, &e), SMTP_ERROR);
	smtp_reply_reader_clear(&r);
	evbuffer_drain(b, evbuffer_get_length(b));
	for (i = 0; i < SMTP_REPLY_MAX_LINES + 1; i++)
		evbuffer_add_printf(b, "250-x\r\n");
	CHECK_INT(smtp_read_reply(&r, b, &rep, &e), SMTP_ERROR);
	smtp_reply_reader_clear(&r);
	evbuffer_free(b);
}

struct hdrs {
	char	 buf[1024];
};

static void
collect(const char *line, size_t len, void *arg)
{
	struct hdrs	*h = arg;
	size_t		 l = strlen(h->buf);

	snprintf(h->buf + l, sizeof(h->buf) - l, "[%.*s]", (int)len, line);
}

static void
data_scanner(void)
{
	const char	*msg = "Message-ID: <x@y>\r\nSubject: a\r\n b\r\n\r\n"
	    "..leading dot\r\nbody \xe3\x81\x82\r\n.\r\nMAIL FROM:<a@b>\r\n";
	size_t		 len = strlen(msg), end, i, n, off;
	struct smtp_data d;
	struct hdrs	 h;
	uint32_t	 seed = 7;
	int		 ch;

	end = strstr(msg, "\r\n.\r\n") - msg + 5;
	for (ch = 0; ch < 4; ch++) {
		memset(&h, 0, sizeof(h));
		smtp_data_init(&d, collect, &h);
		for (off = 0; off < len && !d.done; off += n) {
			i = ch == 0 ? len - off : ch == 1 ? 1 :
			    1 + unit_rand(&seed) % 5;
			if (i > len - off)
				i = len - off;
			n = smtp_data_scan(&d, (const unsigned char *)msg + off,
			    i);
		}
		CHECK(d.done);
		CHECK_INT(off, end);
		CHECK_STR(h.buf, "[Message-ID: <x@y>][Subject: a b]");
		/* "..leading dot" counts one dot; the terminator nothing. */
		CHECK_INT(d.size, end - 5 + 2 - 1);
		CHECK(d.eight_bit);
		CHECK(!d.bare_eol && !d.long_lines);
	}
	smtp_data_init(&d, NULL, NULL);
	CHECK_INT(smtp_data_scan(&d, (const unsigned char *)".\r\nX", 4), 3);
	CHECK(d.done);
	CHECK_INT(d.size, 0);
	smtp_data_init(&d, NULL, NULL);
	smtp_data_scan(&d, (const unsigned char *)"a\nb\rc\r\n.\r\n", 10);
	CHECK(d.done && d.bare_eol);
}

static void
long_lines_flagged(void)
{
	struct smtp_data d;
	char		 line[1010];

	memset(line, 'x', 999);
	memcpy(line + 999, "\r\n.\r\n", 5);
	smtp_data_init(&d, NULL, NULL);
	smtp_data_scan(&d, (const unsigned char *)line, 1004);
	CHECK(d.done && d.long_lines);
}

static void
dot_stuffing(void)
{
	struct evbuffer		*b = evbuffer_new();
	struct smtp_data	 d;
	const char		*in = ".a\nb\r\n..c\n.";
	const char		*want = "..a\r\nb\r\n...c\r\n..\r\n.\r\n";
	size_t			 n;

	smtp_dot_stuff(b, in, strlen(in));
	n = evbuffer_get_length(b);
	CHECK_MEM(evbuffer_pullup(b, -1), n, want, strlen(want));
	/* The scanner reads back exactly what was stuffed. */
	smtp_data_init(&d, NULL, NULL);
	CHECK_INT(smtp_data_scan(&d, evbuffer_pullup(b, -1), n), n);
	CHECK(d.done);
	evbuffer_free(b);
}

static const struct unit_case cases[] = {
	UNIT_CASE(commands),
	UNIT_CASE(command_errors),
	UNIT_CASE(line_reader),
	UNIT_CASE(replies),
	UNIT_CASE(data_scanner),
	UNIT_CASE(long_lines_flagged),
	UNIT_CASE(dot_stuffing),
};

UNIT_MAIN(cases)
