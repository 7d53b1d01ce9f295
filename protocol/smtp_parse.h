/*
 * SMTP wire formats for the submission relay: the client's command lines,
 * the upstream server's (multi-line) replies, and the DATA stream with its
 * dot-stuffing.  Every reader is resumable and bounded; errors carry the
 * reply the server should send (code, enhanced code, text).
 */
#ifndef PROTOCOL_SMTP_PARSE_H
#define PROTOCOL_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

enum smtp_result {
	SMTP_MORE,
	SMTP_DONE,
	SMTP_ERROR,
};

struct smtp_error {
	int		 code;		/* 500, 501, 555... */
	const char	*enhanced;	/* "5.5.2" */
	const char	*text;
};

/*
 * Line reader.  A line over max bytes is an error once ("500 5.5.2 Line
 * too long"); the reader then skips to the next LF by itself.  A line
 * ending in a bare LF is an error too (RFC 5321 §2.3.8).
 */
struct smtp_line_reader {
	size_t		 max;
	bool		 skipping;
};

enum smtp_result smtp_read_line(struct smtp_line_reader *, struct evbuffer *,
		    char **line_r, struct smtp_error *);

enum smtp_verb {
	SMTP_EHLO, SMTP_HELO, SMTP_MAIL, SMTP_RCPT, SMTP_DATA, SMTP_RSET,
	SMTP_NOOP, SMTP_QUIT, SMTP_STARTTLS, SMTP_AUTH, SMTP_HELP, SMTP_VRFY,
};

#define SMTP_MAX_PARAMS	8

enum smtp_body {
	SMTP_BODY_NONE,
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
};

struct smtp_param {
	char		*key;		/* upper case */
	char		*value;		/* NULL when there is none */
};

struct smtp_command {
	enum smtp_verb	 verb;
	char		*arg;		/* EHLO domain, AUTH mech, NOOP text */
	char		*arg2;		/* AUTH initial response */
	char		*path;		/* MAIL/RCPT address, "" for <> */
	struct smtp_param params[SMTP_MAX_PARAMS];
	size_t		 nparams;
	bool		 has_size;
	uint64_t	 size;
	enum smtp_body	 body;
};

/* Parses one line (without CRLF) in place: line must stay alive. */
bool	smtp_parse_command(char *line, struct smtp_command *,
	    struct smtp_error *);

/* Upstream replies: "250-a\r\n250 b\r\n" is one reply of two lines. */
#define SMTP_REPLY_MAX_LINES	64

struct smtp_reply {
	int		 code;
	char		 enhanced[16];	/* "" if the server sent none */
	char		*text;		/* lines joined with "\n" */
	size_t		 nlines;
};

struct smtp_reply_reader {
	struct smtp_line_reader	 lines;
	struct smtp_reply	 reply;
	size_t			 textlen;
};

void		 smtp_reply_reader_init(struct smtp_reply_reader *, size_t max);
void		 smtp_reply_reader_clear(struct smtp_reply_reader *);
enum smtp_result smtp_read_reply(struct smtp_reply_reader *, struct evbuffer *,
		    const struct smtp_reply **, struct smtp_error *);

/*
 * DATA scanner.  Fed the client's bytes as they come, it says how many
 * belong to the message — up to and including the final ".\r\n" — so the
 * relay can forward them unchanged (still dot-stuffed).  On the way it
 * counts the unstuffed size, notes long lines, bare CR/LF and 8-bit bytes,
 * and hands each unfolded header line to a callback until the blank line.
 */
typedef void	 smtp_header_cb(const char *line, size_t len, void *arg);

#define SMTP_HEADER_MAX	8192	/* longer unfolded headers are cut */

struct smtp_data {
	int		 state;
	uint64_t	 size;		/* unstuffed message bytes */
	size_t		 linelen;
	bool		 long_lines;	/* over 998 octets */
	bool		 bare_eol;
	bool		 eight_bit;
	bool		 in_headers;
	bool		 done;
	smtp_header_cb	*header_cb;
	void		*header_arg;
	char		 hdr[SMTP_HEADER_MAX];
	size_t		 hdrlen;
};

void	smtp_data_init(struct smtp_data *, smtp_header_cb *, void *);
/* Returns bytes consumed; d->done once the terminator was consumed. */
size_t	smtp_data_scan(struct smtp_data *, const unsigned char *, size_t);

/* Appends msg dot-stuffed and terminated, normalising bare LF to CRLF. */
void	smtp_dot_stuff(struct evbuffer *, const char *msg, size_t len);

#endif
