/*
 * A resumable IMAP parser for both directions: commands (what clients
 * send) and responses (what servers send).
 *
 * Bytes go in as they arrive, in pieces of any size; the parser keeps all
 * of its resume state and says "need more", "done", "error", or asks for a
 * literal event.  A completed command or response is a tree of struct
 * imap_arg in a per-parser arena that lives until imap_parser_reset().
 *
 * Literals ({n}, {n+}, ~{n}) are parser states.  For a synchronising
 * literal in a command the parser returns IMAP_PARSE_CONTINUE once, after
 * the size passed the limits: the caller sends "+ ..." and feeds on.  In
 * streaming mode a literal of at least the stream threshold is not stored:
 * the parser returns IMAP_PARSE_LITERAL with the arguments parsed so far
 * (imap_parser_partial()), the caller moves the literal's bytes itself
 * (evbuffer_remove_buffer() straight to another connection) and reports
 * them with imap_parser_literal_consumed(); parsing then resumes, and the
 * literal stays in the argument list as an IMAP_ARG_LITERAL_SIZE.
 */
#ifndef PROTOCOL_IMAP_PARSER_H
#define PROTOCOL_IMAP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct imap_parser;

enum imap_parser_mode {
	IMAP_PARSER_COMMAND,
	IMAP_PARSER_RESPONSE,
};

struct imap_parser_limits {
	size_t		 max_line;	/* bytes outside literals */
	uint64_t	 max_literal;	/* any one literal */
	uint64_t	 max_inline_literal; /* literals kept in memory */
	unsigned int	 max_depth;	/* list nesting */
	unsigned int	 max_args;	/* arguments, all levels */
	unsigned int	 max_tag;	/* tag length */
};

enum imap_parse_result {
	IMAP_PARSE_MORE,		/* feed more bytes */
	IMAP_PARSE_DONE,		/* a command/response is complete */
	IMAP_PARSE_ERROR,		/* see imap_parser_error() */
	IMAP_PARSE_CONTINUE,		/* synchronising literal: send "+" */
	IMAP_PARSE_LITERAL,		/* streaming: take the literal's bytes */
};

enum imap_arg_type {
	IMAP_ARG_ATOM,
	IMAP_ARG_QUOTED,
	IMAP_ARG_LITERAL,		/* stored; may hold NUL if literal8 */
	IMAP_ARG_LITERAL_SIZE,		/* streamed: only its size is known */
	IMAP_ARG_NIL,
	IMAP_ARG_LIST,
};

struct imap_arg {
	enum imap_arg_type	 type;
	bool			 literal8;	/* ~{n} */
	bool			 joined;	/* list right after ")", no SP */
	size_t			 len;		/* string bytes or list count */
	union {
		const char		*str;	/* NUL-terminated */
		const struct imap_arg	*list;
		uint64_t		 size;	/* IMAP_ARG_LITERAL_SIZE */
	} v;
};

struct imap_command {
	const char		*tag;
	const char		*name;		/* as sent; UID is a name */
	const struct imap_arg	*args;
	size_t			 nargs;
};

enum imap_response_type {
	IMAP_RESPONSE_UNTAGGED,
	IMAP_RESPONSE_TAGGED,
	IMAP_RESPONSE_CONTINUATION,
};

enum imap_status {
	IMAP_STATUS_NONE,		/* untagged data: * LIST, * 3 FETCH */
	IMAP_STATUS_OK,
	IMAP_STATUS_NO,
	IMAP_STATUS_BAD,
	IMAP_STATUS_BYE,
	IMAP_STATUS_PREAUTH,
};

struct imap_response {
	enum imap_response_type	 type;
	const char		*tag;		/* TAGGED only */
	enum imap_status	 status;
	bool			 has_number;	/* * 23 EXISTS */
	uint32_t		 number;
	const char		*keyword;	/* "FETCH", "OK", "LIST"... */
	const char		*code;		/* [CODE ...] name, or NULL */
	const struct imap_arg	*code_args;
	size_t			 ncode_args;
	const char		*text;		/* status or continuation text */
	const struct imap_arg	*args;		/* untagged data arguments */
	size_t			 nargs;
};

/* NULL limits: generous defaults fit for an authenticated session. */
struct imap_parser	*imap_parser_new(enum imap_parser_mode,
			    const struct imap_parser_limits *);
void			 imap_parser_free(struct imap_parser **);
void			 imap_parser_set_limits(struct imap_parser *,
			    const struct imap_parser_limits *);
void			 imap_parser_default_limits(struct imap_parser_limits *);

/*
 * Streaming mode: literals of at least threshold bytes are handed to the
 * caller.  Takes effect from the next literal on.
 */
void			 imap_parser_set_stream(struct imap_parser *, bool on,
			    uint64_t threshold);
/*
 * Command mode: stream only the literals of commands with this name
 * ("APPEND"), and only at the top level after the first argument (never
 * a mailbox name); NULL: every command's.  The string must outlive p.
 */
void			 imap_parser_stream_only(struct imap_parser *,
			    const char *name);
/*
 * Command mode: lines of the command with this name may be max_line long
 * instead of the limit's (ID's bounds, RFC 2971 §3.3, before login);
 * NULL: none.  The string must outlive p.
 */
void			 imap_parser_long_line(struct imap_parser *,
			    const char *name, size_t max_line);

/*
 * Feeds bytes; *consumed says how many were used (all of them unless the
 * result is DONE, ERROR, CONTINUE or LITERAL, which stop early).
 */
enum imap_parse_result	 imap_parser_feed(struct imap_parser *,
			    const unsigned char *, size_t, size_t *consumed);

/* The same from an evbuffer, draining what was consumed. */
enum imap_parse_result	 imap_parser_read(struct imap_parser *,
			    struct evbuffer *);

/* After DONE. */
const struct imap_command  *imap_parser_command(const struct imap_parser *);
const struct imap_response *imap_parser_response(const struct imap_parser *);

/* Convenience: imap_parser_read() + imap_parser_response() on DONE. */
enum imap_parse_result	 imap_parser_read_response(struct imap_parser *,
			    struct evbuffer *, const struct imap_response **);

/*
 * Ends the current command or response and frees its arguments.  After
 * an error the rest of the bad line is skipped first (see must_close).
 */
void			 imap_parser_reset(struct imap_parser *);

/* After ERROR: why, whether the tag was valid (then it can be echoed),
 * and whether the connection must be closed because the next bytes are
 * literal data we cannot skip safely ({n+} over the limit). */
const char		*imap_parser_error(const struct imap_parser *);
const char		*imap_parser_error_tag(const struct imap_parser *);
bool			 imap_parser_must_close(const struct imap_parser *);

/* Literal state: during CONTINUE/LITERAL events. */
uint64_t		 imap_parser_literal_size(const struct imap_parser *);
uint64_t		 imap_parser_literal_left(const struct imap_parser *);
bool			 imap_parser_literal_sync(const struct imap_parser *);
bool			 imap_parser_literal_streamed(const struct imap_parser *);
void			 imap_parser_literal_consumed(struct imap_parser *,
			    uint64_t);

/* The tag and name so far (command mode), NULL until parsed. */
const char		*imap_parser_tag(const struct imap_parser *);
const char		*imap_parser_name(const struct imap_parser *);

/* At a LITERAL event: the arguments of the innermost open list so far
 * (the top level when no list is open), and the nesting depth. */
void			 imap_parser_partial(const struct imap_parser *,
			    const struct imap_arg **, size_t *, unsigned int *);

/* Typed accessors: true and *_r set when the argument has that type. */
bool	imap_arg_get_atom(const struct imap_arg *, const char **);
bool	imap_arg_get_quoted(const struct imap_arg *, const char **);
bool	imap_arg_get_string(const struct imap_arg *, const char **);
bool	imap_arg_get_astring(const struct imap_arg *, const char **);
bool	imap_arg_get_astring_len(const struct imap_arg *, const char **,
	    size_t *);
bool	imap_arg_get_nstring(const struct imap_arg *, const char **);
bool	imap_arg_get_list(const struct imap_arg *, const struct imap_arg **,
	    size_t *);
bool	imap_arg_get_number(const struct imap_arg *, uint32_t *);
bool	imap_arg_get_number64(const struct imap_arg *, uint64_t *);
bool	imap_arg_is_nil(const struct imap_arg *);
bool	imap_arg_atom_equals(const struct imap_arg *, const char *);

/* Whether r is untagged data with this keyword (caseless). */
bool	imap_response_is(const struct imap_response *, const char *);

#endif
