/*
 * Resumable IMAP parser (see imap_parser.h).
 *
 * Two layers.  The lexical layer is a character state machine (st): it
 * cuts atoms, quoted strings, literals, parentheses and line ends out of
 * whatever bytes arrive, and never needs a byte twice.  Each finished
 * token goes to the grammar layer (phase), which knows where it is in a
 * command ("tag name args") or a response ("* n FETCH (...)", "tag OK
 * [CODE args] text", "+ text") and builds the argument tree.
 *
 * Arguments under construction live in one growable vector per list depth;
 * a list is copied into the arena when it closes, so the finished tree is
 * one arena allocation per list.  The vectors and the token buffer are
 * kept across commands: a busy connection does no malloc per command.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "protocol/arena.h"
#include "protocol/imap_parser.h"

enum lex_state {
	ST_START,	/* nothing of this command/response read yet */
	ST_TAG,		/* command tag */
	ST_TOKEN,	/* between tokens */
	ST_ATOM,
	ST_QUOTED,
	ST_QUOTED_ESC,
	ST_TILDE,	/* "~", maybe the start of ~{n} */
	ST_LIT_SIZE,
	ST_LIT_CLOSE,	/* after "+", expecting "}" */
	ST_LIT_CR,
	ST_LIT_LF,
	ST_LIT_DATA,
	ST_LIT_STREAM,	/* the caller moves the bytes */
	ST_STATUS_SP,	/* after a status word and one SP */
	ST_CONT_SP,	/* after "+" */
	ST_CODE_NAME,
	ST_CODE_END,	/* after "]" */
	ST_TEXT,
	ST_EOL,		/* got CR, need LF */
	ST_DONE,
	ST_ERROR,
	ST_SKIP,	/* after an error: up to LF */
};

enum phase {
	PH_TAG,
	PH_NAME,		/* command name */
	PH_ARGS,
	PH_UNTAGGED,		/* first token after "*" */
	PH_UNTAGGED_KEYWORD,	/* keyword after "* n" */
	PH_TAGGED_STATUS,
	PH_CODE_ARGS,
	PH_TEXT,
};

struct frame {
	struct imap_arg	*args;
	size_t		 count;
	size_t		 cap;
	bool		 joined;	/* this list opened right after ")" */
};

#define MAX_FRAMES	64

struct imap_parser {
	enum imap_parser_mode	 mode;
	struct imap_parser_limits lim;
	bool			 stream;
	uint64_t		 stream_threshold;
	const char		*stream_only;	/* command name or NULL */
	const char		*long_name;	/* its lines may be longer */
	size_t			 long_max;

	enum lex_state		 st;
	enum phase		 phase;
	struct arena		*arena;

	/* current token */
	unsigned char		*tok;
	size_t			 toklen, tokcap;
	unsigned int		 bracket;	/* [ ] depth inside an atom */
	bool			 need_sep;	/* a token just ended */
	bool			 closed;	/* ... and it was ")" */

	/* literal */
	uint64_t		 lit_size, lit_left;
	unsigned int		 lit_digits;
	bool			 lit_sync, lit8, lit_streamed;
	unsigned char		*lit_data;

	/* arguments */
	struct frame		 frames[MAX_FRAMES];
	unsigned int		 depth;
	unsigned int		 nargs_total;

	size_t			 line;		/* bytes outside literals */

	/* results */
	struct imap_command	 cmd;
	struct imap_response	 resp;

	/* errors */
	const char		*error;
	char			*error_tag;
	bool			 must_close;
	bool			 line_ended;	/* the error byte was LF */
};

#define DEFAULT_MAX_LINE	(64 * 1024)
#define DEFAULT_MAX_LITERAL	(64ULL * 1024 * 1024)
#define DEFAULT_MAX_INLINE	(1024 * 1024)
#define DEFAULT_MAX_DEPTH	32
#define DEFAULT_MAX_ARGS	100000
#define DEFAULT_MAX_TAG		64

void
imap_parser_default_limits(struct imap_parser_limits *l)
{
	l->max_line = DEFAULT_MAX_LINE;
	l->max_literal = DEFAULT_MAX_LITERAL;
	l->max_inline_literal = DEFAULT_MAX_INLINE;
	l->max_depth = DEFAULT_MAX_DEPTH;
	l->max_args = DEFAULT_MAX_ARGS;
	l->max_tag = DEFAULT_MAX_TAG;
}

void
imap_parser_set_limits(struct imap_parser *p, const struct imap_parser_limits *l)
{
	p->lim = *l;
	if (p->lim.max_depth >= MAX_FRAMES)
		p->lim.max_depth = MAX_FRAMES - 1;
	if (p->lim.max_inline_literal > p->lim.max_literal)
		p->lim.max_inline_literal = p->lim.max_literal;
}

static void
parser_clear(struct imap_parser *p)
{
	unsigned int	 i;

	arena_reset(p->arena);
	for (i = 0; i < MAX_FRAMES; i++)
		p->frames[i].count = 0;
	p->depth = 0;
	p->nargs_total = 0;
	p->toklen = 0;
	p->bracket = 0;
	p->need_sep = false;
	p->closed = false;
	p->line = 0;
	p->lit_data = NULL;
	p->lit_size = p->lit_left = 0;
	p->lit_streamed = false;
	memset(&p->cmd, 0, sizeof(p->cmd));
	memset(&p->resp, 0, sizeof(p->resp));
	p->error = NULL;
	free(p->error_tag);
	p->error_tag = NULL;
	p->must_close = false;
	p->line_ended = false;
	p->st = ST_START;
	p->phase = PH_TAG;
}

struct imap_parser *
imap_parser_new(enum imap_parser_mode mode, const struct imap_parser_limits *l)
{
	struct imap_parser		*p;
	struct imap_parser_limits	 def;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	if ((p->arena = arena_new(4096)) == NULL) {
		free(p);
		return NULL;
	}
	p->mode = mode;
	if (l == NULL) {
		imap_parser_default_limits(&def);
		l = &def;
	}
	imap_parser_set_limits(p, l);
	parser_clear(p);
	return p;
}

void
imap_parser_free(struct imap_parser **pp)
{
	struct imap_parser	*p = *pp;
	unsigned int		 i;

	if (p == NULL)
		return;
	for (i = 0; i < MAX_FRAMES; i++)
		free(p->frames[i].args);
	free(p->tok);
	free(p->error_tag);
	arena_free(&p->arena);
	free(p);
	*pp = NULL;
}

void
imap_parser_set_stream(struct imap_parser *p, bool on, uint64_t threshold)
{
	p->stream = on;
	p->stream_threshold = threshold;
}

void
imap_parser_stream_only(struct imap_parser *p, const char *name)
{
	p->stream_only = name;
}

void
imap_parser_long_line(struct imap_parser *p, const char *name,
    size_t max_line)
{
	p->long_name = name;
	p->long_max = max_line;
}

void
imap_parser_reset(struct imap_parser *p)
{
	bool	 skip, refused;

	/* A command refused at its synchronising literal ended there: the
	 * client waits for "+" and sends nothing more of it. */
	refused = (p->st == ST_LIT_DATA || p->st == ST_LIT_STREAM) &&
	    p->lit_sync && p->lit_left == p->lit_size;
	if (p->st == ST_DONE || p->st == ST_START || refused)
		skip = false;
	else if (p->st == ST_ERROR)
		skip = !p->line_ended;
	else
		skip = true;
	parser_clear(p);
	if (skip)
		p->st = ST_SKIP;
}

static enum imap_parse_result
fail(struct imap_parser *p, const char *why)
{
	p->error = why;
	p->st = ST_ERROR;
	return IMAP_PARSE_ERROR;
}

const char *
imap_parser_error(const struct imap_parser *p)
{
	return p->error != NULL ? p->error : "no error";
}

const char *
imap_parser_error_tag(const struct imap_parser *p)
{
	return p->error_tag;
}

bool
imap_parser_must_close(const struct imap_parser *p)
{
	return p->must_close;
}

const struct imap_command *
imap_parser_command(const struct imap_parser *p)
{
	return p->st == ST_DONE && p->mode == IMAP_PARSER_COMMAND ?
	    &p->cmd : NULL;
}

const struct imap_response *
imap_parser_response(const struct imap_parser *p)
{
	return p->st == ST_DONE && p->mode == IMAP_PARSER_RESPONSE ?
	    &p->resp : NULL;
}

const char *
imap_parser_tag(const struct imap_parser *p)
{
	return p->cmd.tag;
}

const char *
imap_parser_name(const struct imap_parser *p)
{
	return p->cmd.name;
}

bool
imap_parser_literal_streamed(const struct imap_parser *p)
{
	return p->lit_streamed;
}

uint64_t
imap_parser_literal_size(const struct imap_parser *p)
{
	return p->lit_size;
}

uint64_t
imap_parser_literal_left(const struct imap_parser *p)
{
	return p->st == ST_LIT_STREAM ? p->lit_left : 0;
}

bool
imap_parser_literal_sync(const struct imap_parser *p)
{
	return p->lit_sync;
}

void
imap_parser_literal_consumed(struct imap_parser *p, uint64_t n)
{
	if (p->st != ST_LIT_STREAM)
		return;
	p->lit_left -= n < p->lit_left ? n : p->lit_left;
	if (p->lit_left == 0) {
		p->st = ST_TOKEN;
		p->need_sep = true;
	}
}

void
imap_parser_partial(const struct imap_parser *p, const struct imap_arg **args_r,
    size_t *count_r, unsigned int *depth_r)
{
	*args_r = p->frames[p->depth].args;
	*count_r = p->frames[p->depth].count;
	if (depth_r != NULL)
		*depth_r = p->depth;
}

/*
 * Building arguments.
 */

static struct imap_arg *
arg_push(struct imap_parser *p)
{
	struct frame	*f = &p->frames[p->depth];
	struct imap_arg	*na;
	size_t		 ncap;

	if (++p->nargs_total > p->lim.max_args)
		return NULL;
	if (f->count == f->cap) {
		ncap = f->cap ? f->cap * 2 : 16;
		if ((na = reallocarray(f->args, ncap, sizeof(*na))) == NULL)
			return NULL;
		f->args = na;
		f->cap = ncap;
	}
	memset(&f->args[f->count], 0, sizeof(f->args[0]));
	return &f->args[f->count++];
}

/* Copies the frame at depth into the arena. */
static const struct imap_arg *
frame_finish(struct imap_parser *p, unsigned int depth, size_t *count_r)
{
	struct frame	*f = &p->frames[depth];
	struct imap_arg	*a;

	*count_r = f->count;
	if ((a = arena_alloc(p->arena, (f->count + 1) * sizeof(*a))) == NULL)
		return NULL;
	if (f->count > 0)
		memcpy(a, f->args, f->count * sizeof(*a));
	f->count = 0;
	return a;
}

static enum imap_parse_result
add_string(struct imap_parser *p, enum imap_arg_type type,
    const unsigned char *s, size_t len)
{
	struct imap_arg	*a;

	if ((a = arg_push(p)) == NULL)
		return fail(p, "too many arguments");
	a->type = type;
	a->len = len;
	if ((a->v.str = arena_strndup(p->arena, s, len)) == NULL)
		return fail(p, "out of memory");
	if (type == IMAP_ARG_ATOM && len == 3 &&
	    strncasecmp((const char *)s, "NIL", 3) == 0)
		a->type = IMAP_ARG_NIL;
	return IMAP_PARSE_MORE;
}

static bool
is_status(const char *s, enum imap_status *st_r)
{
	static const struct {
		const char	*name;
		enum imap_status st;
	} words[] = {
		{ "OK", IMAP_STATUS_OK }, { "NO", IMAP_STATUS_NO },
		{ "BAD", IMAP_STATUS_BAD }, { "BYE", IMAP_STATUS_BYE },
		{ "PREAUTH", IMAP_STATUS_PREAUTH },
	};
	size_t	 i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcasecmp(s, words[i].name) == 0) {
			*st_r = words[i].st;
			return true;
		}
	return false;
}

static bool
all_digits(const unsigned char *s, size_t len)
{
	size_t	 i;

	if (len == 0 || len > 20)
		return false;
	for (i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/*
 * The grammar layer: an atom finished.  Tags, command names, response
 * keywords and status words are atoms in particular positions.
 */
static enum imap_parse_result
got_atom(struct imap_parser *p, const unsigned char *s, size_t len,
    unsigned char next)
{
	char		*str;
	uint64_t	 n;
	size_t		 i;

	switch (p->phase) {
	case PH_NAME:
		if ((p->cmd.name = arena_strndup(p->arena, s, len)) == NULL)
			return fail(p, "out of memory");
		p->phase = PH_ARGS;
		return IMAP_PARSE_MORE;
	case PH_TAG:		/* response mode: "*", "+", or a tag */
		if (len == 1 && s[0] == '*') {
			p->resp.type = IMAP_RESPONSE_UNTAGGED;
			p->phase = PH_UNTAGGED;
			return IMAP_PARSE_MORE;
		}
		if ((str = arena_strndup(p->arena, s, len)) == NULL)
			return fail(p, "out of memory");
		p->resp.type = IMAP_RESPONSE_TAGGED;
		p->resp.tag = str;
		p->phase = PH_TAGGED_STATUS;
		return IMAP_PARSE_MORE;
	case PH_UNTAGGED:
		if (all_digits(s, len)) {
			/* Checked per digit: 20 digits overflow 64 bits. */
			for (n = 0, i = 0; i < len && n <= UINT32_MAX; i++)
				n = n * 10 + (s[i] - '0');
			if (n > UINT32_MAX)
				return fail(p, "number out of range");
			p->resp.has_number = true;
			p->resp.number = (uint32_t)n;
			p->phase = PH_UNTAGGED_KEYWORD;
			return IMAP_PARSE_MORE;
		}
		/* FALLTHROUGH */
	case PH_UNTAGGED_KEYWORD:
	case PH_TAGGED_STATUS:
		if ((str = arena_strndup(p->arena, s, len)) == NULL)
			return fail(p, "out of memory");
		p->resp.keyword = str;
		if (is_status(str, &p->resp.status) &&
		    !p->resp.has_number) {
			if (p->resp.type == IMAP_RESPONSE_TAGGED &&
			    p->resp.status != IMAP_STATUS_OK &&
			    p->resp.status != IMAP_STATUS_NO &&
			    p->resp.status != IMAP_STATUS_BAD)
				return fail(p, "bad tagged status");
			p->phase = PH_TEXT;
			if (next == ' ')
				p->st = ST_STATUS_SP;
			return IMAP_PARSE_MORE;
		}
		if (p->phase == PH_TAGGED_STATUS)
			return fail(p, "tagged response without status");
		p->phase = PH_ARGS;
		return IMAP_PARSE_MORE;
	default:
		return add_string(p, IMAP_ARG_ATOM, s, len);
	}
}

static enum imap_parse_result
list_open(struct imap_parser *p, bool joined)
{
	if (p->phase != PH_ARGS && p->phase != PH_CODE_ARGS)
		return fail(p, "unexpected (");
	if (p->depth + 1 > p->lim.max_depth)
		return fail(p, "lists nested too deep");
	p->depth++;
	p->frames[p->depth].count = 0;
	p->frames[p->depth].joined = joined;
	return IMAP_PARSE_MORE;
}

static enum imap_parse_result
list_close(struct imap_parser *p)
{
	const struct imap_arg	*list;
	struct imap_arg		*a;
	size_t			 n;
	bool			 joined;

	if (p->depth == 0)
		return fail(p, "unexpected )");
	if ((list = frame_finish(p, p->depth, &n)) == NULL)
		return fail(p, "out of memory");
	joined = p->frames[p->depth].joined;
	p->depth--;
	if ((a = arg_push(p)) == NULL)
		return fail(p, "too many arguments");
	a->type = IMAP_ARG_LIST;
	a->joined = joined;
	a->v.list = list;
	a->len = n;
	return IMAP_PARSE_MORE;
}

static enum imap_parse_result
code_close(struct imap_parser *p)
{
	if (p->depth != 0)
		return fail(p, "unbalanced ( in response code");
	if ((p->resp.code_args = frame_finish(p, 0, &p->resp.ncode_args)) ==
	    NULL)
		return fail(p, "out of memory");
	p->phase = PH_TEXT;
	p->st = ST_CODE_END;
	return IMAP_PARSE_MORE;
}

static enum imap_parse_result
line_end(struct imap_parser *p)
{
	const struct imap_arg	*args;
	size_t			 n;

	switch (p->phase) {
	case PH_TAG:
		if (p->mode == IMAP_PARSER_COMMAND)
			return fail(p, "missing command");
		return fail(p, "empty response");
	case PH_NAME:
		return fail(p, "missing command");
	case PH_UNTAGGED:
	case PH_UNTAGGED_KEYWORD:
	case PH_TAGGED_STATUS:
		return fail(p, "truncated response");
	case PH_CODE_ARGS:
		return fail(p, "unterminated response code");
	default:
		break;
	}
	if (p->depth != 0)
		return fail(p, "unbalanced (");
	if ((args = frame_finish(p, 0, &n)) == NULL)
		return fail(p, "out of memory");
	if (p->mode == IMAP_PARSER_COMMAND) {
		p->cmd.args = args;
		p->cmd.nargs = n;
	} else {
		p->resp.args = args;
		p->resp.nargs = n;
		if (p->resp.text == NULL && p->phase == PH_TEXT)
			p->resp.text = "";
	}
	p->st = ST_DONE;
	return IMAP_PARSE_DONE;
}

/*
 * The lexical layer.
 */

/* Room for n more token bytes; -1 (nothing changed) when it cannot be. */

/* The line limit of the command being read (imap_parser_long_line). */
static size_t
line_max(const struct imap_parser *p)
{
	if (p->long_name != NULL && p->mode == IMAP_PARSER_COMMAND &&
	    p->cmd.name != NULL && strcasecmp(p->cmd.name, p->long_name) == 0)
		return p->long_max;
	return p->lim.max_line;
}

static int
tok_room(struct imap_parser *p, size_t n)
{
	unsigned char	*nt;
	size_t		 ncap = p->tokcap;

	if (p->toklen + n <= p->tokcap)
		return 0;
	while (ncap < p->toklen + n)
		ncap = ncap ? ncap * 2 : 256;
	if (ncap > line_max(p) + 1)
		ncap = line_max(p) + 1;
	if (ncap < p->toklen + n || (nt = realloc(p->tok, ncap)) == NULL)
		return -1;
	p->tok = nt;
	p->tokcap = ncap;
	return 0;
}

static enum imap_parse_result
tok_add(struct imap_parser *p, unsigned char c)
{
	if (tok_room(p, 1) == -1)
		return fail(p, p->toklen + 1 > line_max(p) ?
		    "line too long" : "out of memory");
	p->tok[p->toklen++] = c;
	return IMAP_PARSE_MORE;
}

/* Characters that end an atom or may not appear in one. */
static bool
atom_special(const struct imap_parser *p, unsigned char c)
{
	if (c <= ' ' || c == 0x7f || c == '(' || c == ')' || c == '"' ||
	    c == '{')
		return true;
	if (c >= 0x80)
		return p->mode == IMAP_PARSER_COMMAND;
	return false;
}

static bool
tag_char(unsigned char c)
{
	return c > ' ' && c < 0x7f && strchr("(){%*\"\\+", c) == NULL;
}

static enum imap_parse_result
lit_begin(struct imap_parser *p)
{
	if (p->phase == PH_TAG || p->phase == PH_NAME ||
	    p->phase == PH_TEXT || p->phase == PH_UNTAGGED ||
	    p->phase == PH_UNTAGGED_KEYWORD || p->phase == PH_TAGGED_STATUS)
		return fail(p, "unexpected literal");
	p->st = ST_LIT_SIZE;
	p->lit_size = 0;
	p->lit_digits = 0;
	p->lit_sync = true;
	return IMAP_PARSE_MORE;
}

static enum imap_parse_result
lit_size_char(struct imap_parser *p, unsigned char c)
{
	if (c >= '0' && c <= '9') {
		if (p->lit_size > (UINT64_MAX - 9) / 10 || ++p->lit_digits > 20)
			return fail(p, "literal size too large");
		p->lit_size = p->lit_size * 10 + (c - '0');
		return IMAP_PARSE_MORE;
	}
	if (p->lit_digits == 0)
		return fail(p, "bad literal size");
	if (c == '+' && p->mode == IMAP_PARSER_COMMAND) {
		p->lit_sync = false;
		p->st = ST_LIT_CLOSE;
		return IMAP_PARSE_MORE;
	}
	if (c != '}')
		return fail(p, "bad literal size");
	p->st = ST_LIT_CR;
	return IMAP_PARSE_MORE;
}

/* "}" seen: the limits decide before the client may send data. */
static enum imap_parse_result
lit_check(struct imap_parser *p)
{
	bool	 streamed = p->stream && p->lit_size >= p->stream_threshold;

	if (streamed && p->mode == IMAP_PARSER_COMMAND &&
	    p->stream_only != NULL)
		streamed = p->cmd.name != NULL &&
		    strcasecmp(p->cmd.name, p->stream_only) == 0 &&
		    p->depth == 0 && p->frames[0].count > 0;

	if (p->lit_size > p->lim.max_literal ||
	    (!streamed && p->lit_size > p->lim.max_inline_literal)) {
		/* With {n+} the data follows regardless: we cannot find the
		 * end of this command, so the connection must go. */
		p->must_close = !p->lit_sync;
		return fail(p, "literal too large");
	}
	p->lit_streamed = streamed;
	return IMAP_PARSE_MORE;
}

static enum imap_parse_result
lit_header_done(struct imap_parser *p)
{
	struct imap_arg	*a;

	p->lit_left = p->lit_size;
	if (p->lit_streamed) {
		if ((a = arg_push(p)) == NULL)
			return fail(p, "too many arguments");
		a->type = IMAP_ARG_LITERAL_SIZE;
		a->literal8 = p->lit8;
		a->v.size = p->lit_size;
		p->st = ST_LIT_STREAM;
	} else {
		if ((p->lit_data = arena_alloc(p->arena, p->lit_size + 1)) ==
		    NULL)
			return fail(p, "out of memory");
		p->st = ST_LIT_DATA;
	}
	if (p->mode == IMAP_PARSER_COMMAND && p->lit_sync)
		return IMAP_PARSE_CONTINUE;
	return p->lit_streamed ? IMAP_PARSE_LITERAL : IMAP_PARSE_MORE;
}

static enum imap_parse_result
lit_data_done(struct imap_parser *p)
{
	struct imap_arg	*a;

	p->lit_data[p->lit_size] = '\0';
	if ((a = arg_push(p)) == NULL)
		return fail(p, "too many arguments");
	a->type = IMAP_ARG_LITERAL;
	a->literal8 = p->lit8;
	a->len = p->lit_size;
	a->v.str = (const char *)p->lit_data;
	p->st = ST_TOKEN;
	p->need_sep = true;
	return IMAP_PARSE_MORE;
}

/*
 * Whether c may follow the token that just ended without a space.  A list
 * may follow a list directly in a response: RFC 3501 §9 and RFC 9051 §9
 * join the addresses of an envelope's address list ("(" 1*address ")")
 * and the parts of a multipart body (1*body SP media-subtype) with
 * nothing between them, and Dovecot and Exchange send ")(".  No client
 * command has such a production, so commands stay strict.
 */
static bool
sep_ok(const struct imap_parser *p, unsigned char c, bool closed)
{
	switch (c) {
	case ' ':
	case ')':
	case '\r':
	case '\n':
		return true;
	case ']':
		return p->phase == PH_CODE_ARGS && p->depth == 0;
	case '(':
		return closed && p->mode == IMAP_PARSER_RESPONSE;
	default:
		return false;
	}
}

static enum imap_parse_result
token_start(struct imap_parser *p, unsigned char c)
{
	bool	 closed = p->closed, joined;

	p->closed = false;
	if (p->need_sep && !sep_ok(p, c, closed))
		return fail(p, "missing space between arguments");
	switch (c) {
	case ' ':
		p->need_sep = false;
		return IMAP_PARSE_MORE;
	case '\r':
		p->st = ST_EOL;
		return IMAP_PARSE_MORE;
	case '\n':
		p->line_ended = true;
		return line_end(p);
	case '(':
		/* need_sep here: ")(" that sep_ok() let through. */
		joined = p->need_sep;
		p->need_sep = false;
		return list_open(p, joined);
	case ')':
		p->need_sep = true;
		p->closed = true;
		return list_close(p);
	case '"':
		p->st = ST_QUOTED;
		p->toklen = 0;
		return IMAP_PARSE_MORE;
	case '{':
		p->lit8 = false;
		return lit_begin(p);
	case '~':
		p->st = ST_TILDE;
		return IMAP_PARSE_MORE;
	case ']':
		if (p->phase == PH_CODE_ARGS && p->depth == 0) {
			p->need_sep = false;
			return code_close(p);
		}
		break;
	default:
		break;
	}
	if (atom_special(p, c))
		return fail(p, c == '\0' ? "NUL in command" :
		    c >= 0x80 ? "8-bit character outside a literal" :
		    "invalid character");
	p->st = ST_ATOM;
	p->toklen = 0;
	p->bracket = 0;
	return IMAP_PARSE_MORE;		/* the caller re-reads c as atom */
}

/* An atom char, or the end of the atom (then c is read again). */
static enum imap_parse_result
atom_char(struct imap_parser *p, unsigned char c, bool *again)
{
	enum imap_parse_result	 r;

	if (p->bracket > 0 && c != '\r' && c != '\n' && c != '\0' &&
	    !(p->mode == IMAP_PARSER_COMMAND && c >= 0x80)) {
		if (c == '[')
			p->bracket++;
		else if (c == ']')
			p->bracket--;
		return tok_add(p, c);
	}
	if (c == '[') {
		p->bracket++;
		return tok_add(p, c);
	}
	if (atom_special(p, c) ||
	    (c == ']' && p->phase == PH_CODE_ARGS && p->depth == 0)) {
		if (c == '\0' || (c >= 0x80 && p->mode == IMAP_PARSER_COMMAND) ||
		    c == '"' || c == '{')
			return fail(p, c == '\0' ? "NUL in atom" :
			    c >= 0x80 ? "8-bit character in atom" :
			    "invalid character in atom");
		*again = true;
		p->st = ST_TOKEN;
		p->need_sep = true;
		r = got_atom(p, p->tok, p->toklen, c);
		p->toklen = 0;
		if (p->st == ST_STATUS_SP)
			*again = false;		/* the SP after a status */
		return r;
	}
	return tok_add(p, c);
}

static enum imap_parse_result
quoted_char(struct imap_parser *p, unsigned char c)
{
	enum imap_parse_result	 r;

	if (c == '\0' || c == '\r' || c == '\n')
		return fail(p, "invalid character in quoted string");
	if (c >= 0x80 && p->mode == IMAP_PARSER_COMMAND)
		return fail(p, "8-bit character in quoted string");
	if (p->st == ST_QUOTED_ESC) {
		if (c != '"' && c != '\\' && p->mode == IMAP_PARSER_COMMAND)
			return fail(p, "invalid escape in quoted string");
		p->st = ST_QUOTED;
		return tok_add(p, c);
	}
	if (c == '\\') {
		p->st = ST_QUOTED_ESC;
		return IMAP_PARSE_MORE;
	}
	if (c != '"')
		return tok_add(p, c);
	p->st = ST_TOKEN;
	p->need_sep = true;
	if (p->phase != PH_ARGS && p->phase != PH_CODE_ARGS)
		return fail(p, "unexpected quoted string");
	r = add_string(p, IMAP_ARG_QUOTED, p->tok, p->toklen);
	p->toklen = 0;
	return r;
}

static enum imap_parse_result
tag_char_in(struct imap_parser *p, unsigned char c)
{
	if (c == ' ') {
		if (p->toklen == 0)
			return fail(p, "missing tag");
		if ((p->cmd.tag = arena_strndup(p->arena, p->tok,
		    p->toklen)) == NULL)
			return fail(p, "out of memory");
		p->error_tag = strdup(p->cmd.tag);
		p->toklen = 0;
		p->phase = PH_NAME;
		p->st = ST_TOKEN;
		return IMAP_PARSE_MORE;
	}
	if ((c == '\r' || c == '\n') && p->toklen > 0) {
		/* "tag CRLF": a valid tag, so the BAD can carry it. */
		p->error_tag = strndup((const char *)p->tok, p->toklen);
		return fail(p, "missing command");
	}
	if (!tag_char(c))
		return fail(p, c == '\r' || c == '\n' ? "missing command" :
		    "invalid tag");
	if (p->toklen >= p->lim.max_tag)
		return fail(p, "tag too long");
	return tok_add(p, c);
}

static enum imap_parse_result
text_char(struct imap_parser *p, unsigned char c)
{
	if (c == '\r') {
		p->st = ST_EOL;
		goto finish;
	}
	if (c == '\n') {
		p->line_ended = true;
		goto finish;
	}
	return tok_add(p, c);
 finish:
	if ((p->resp.text = arena_strndup(p->arena, p->tok, p->toklen)) ==
	    NULL)
		return fail(p, "out of memory");
	p->toklen = 0;
	return c == '\n' ? line_end(p) : IMAP_PARSE_MORE;
}

/* One byte outside literal data.  *again: read the same byte again. */
static enum imap_parse_result
step(struct imap_parser *p, unsigned char c, bool *again)
{
	switch (p->st) {
	case ST_START:
		if (p->mode == IMAP_PARSER_COMMAND) {
			p->st = ST_TAG;
			return tag_char_in(p, c);
		}
		if (c == '+') {
			p->resp.type = IMAP_RESPONSE_CONTINUATION;
			p->phase = PH_TEXT;
			p->st = ST_CONT_SP;
			return IMAP_PARSE_MORE;
		}
		p->st = ST_TOKEN;
		*again = true;
		return IMAP_PARSE_MORE;
	case ST_TAG:
		return tag_char_in(p, c);
	case ST_TOKEN:
		if (p->phase == PH_TEXT && p->mode == IMAP_PARSER_RESPONSE &&
		    c != '\r' && c != '\n') {
			p->st = ST_TEXT;
			*again = true;
			return IMAP_PARSE_MORE;
		}
		if (token_start(p, c) == IMAP_PARSE_ERROR)
			return IMAP_PARSE_ERROR;
		if (p->st == ST_ATOM)
			*again = true;
		return p->st == ST_DONE ? IMAP_PARSE_DONE : IMAP_PARSE_MORE;
	case ST_ATOM:
		return atom_char(p, c, again);
	case ST_QUOTED:
	case ST_QUOTED_ESC:
		return quoted_char(p, c);
	case ST_TILDE:
		if (c == '{') {
			p->lit8 = true;
			return lit_begin(p);
		}
		/* "~peter": an atom that starts with "~". */
		p->st = ST_ATOM;
		p->toklen = 0;
		p->bracket = 0;
		if (tok_add(p, '~') == IMAP_PARSE_ERROR)
			return IMAP_PARSE_ERROR;
		*again = true;
		return IMAP_PARSE_MORE;
	case ST_LIT_SIZE:
		return lit_size_char(p, c);
	case ST_LIT_CLOSE:
		if (c != '}')
			return fail(p, "bad literal size");
		p->st = ST_LIT_CR;
		return IMAP_PARSE_MORE;
	case ST_LIT_CR:
		if (c != '\r' && c != '\n')
			return fail(p, "missing CRLF after literal size");
		if (lit_check(p) == IMAP_PARSE_ERROR)
			return IMAP_PARSE_ERROR;
		if (c == '\r') {
			p->st = ST_LIT_LF;
			return IMAP_PARSE_MORE;
		}
		return lit_header_done(p);
	case ST_LIT_LF:
		if (c != '\n')
			return fail(p, "missing LF after literal size");
		return lit_header_done(p);
	case ST_CONT_SP:
		p->st = ST_TEXT;
		if (c == ' ')
			return IMAP_PARSE_MORE;
		*again = true;
		return IMAP_PARSE_MORE;
	case ST_STATUS_SP:
		if (c == '[') {
			p->st = ST_CODE_NAME;
			p->toklen = 0;
			p->need_sep = false;
			return IMAP_PARSE_MORE;
		}
		p->st = ST_TEXT;
		*again = true;
		return IMAP_PARSE_MORE;
	case ST_CODE_NAME:
		if (c == ']' || c == ' ') {
			if (p->toklen == 0)
				return fail(p, "empty response code");
			if ((p->resp.code = arena_strndup(p->arena, p->tok,
			    p->toklen)) == NULL)
				return fail(p, "out of memory");
			p->toklen = 0;
			if (c == ']') {
				p->resp.code_args = NULL;
				p->phase = PH_TEXT;
				p->st = ST_CODE_END;
			} else {
				p->phase = PH_CODE_ARGS;
				p->st = ST_TOKEN;
			}
			return IMAP_PARSE_MORE;
		}
		if (atom_special(p, c) || c == '[')
			return fail(p, "invalid response code");
		return tok_add(p, c);
	case ST_CODE_END:
		p->st = ST_TEXT;
		if (c == ' ')
			return IMAP_PARSE_MORE;
		*again = true;
		return IMAP_PARSE_MORE;
	case ST_TEXT:
		return text_char(p, c);
	case ST_EOL:
		if (c != '\n')
			return fail(p, "CR without LF");
		p->line_ended = true;
		return line_end(p);
	default:
		return fail(p, "parser misuse");
	}
}

static enum imap_parse_result
feed_literal(struct imap_parser *p, const unsigned char *data, size_t len,
    size_t *used)
{
	size_t	 n = len < p->lit_left ? len : (size_t)p->lit_left;

	*used = 0;
	if (p->mode == IMAP_PARSER_COMMAND && !p->lit8 &&
	    memchr(data, '\0', n) != NULL) {
		p->must_close = true;
		return fail(p, "NUL in literal");
	}
	memcpy(p->lit_data + (p->lit_size - p->lit_left), data, n);
	p->lit_left -= n;
	*used = n;
	return p->lit_left == 0 ? lit_data_done(p) : IMAP_PARSE_MORE;
}

/*
 * The fast path: a run of characters that only extend the current atom,
 * quoted string or response text, added to the token at once.  Every
 * character the run stops at (brackets, quotes, escapes, separators, line
 * ends, anything invalid) takes the character-by-character path, and so
 * does a run the token cannot take (its error is reported there).  On a
 * FETCH line of identity items most characters are in such runs.
 */
static size_t
tok_run(struct imap_parser *p, const unsigned char *data, size_t len)
{
	bool		 no8 = p->mode == IMAP_PARSER_COMMAND;
	size_t		 n = 0;
	unsigned char	 c;

	if (len > line_max(p) - p->line)
		len = line_max(p) - p->line;
	switch (p->st) {
	case ST_ATOM:
		if (p->bracket > 0)
			while (n < len && (c = data[n]) != '[' && c != ']' &&
			    c != '\r' && c != '\n' && c != '\0' &&
			    !(no8 && c >= 0x80))
				n++;
		else
			while (n < len && (c = data[n]) != '[' && c != ']' &&
			    !atom_special(p, c))
				n++;
		break;
	case ST_QUOTED:
		while (n < len && (c = data[n]) != '"' && c != '\\' &&
		    c != '\r' && c != '\n' && c != '\0' && !(no8 && c >= 0x80))
			n++;
		break;
	case ST_TEXT:
		while (n < len && (c = data[n]) != '\r' && c != '\n')
			n++;
		break;
	default:
		return 0;
	}
	if (n == 0 || tok_room(p, n) == -1)
		return 0;
	memcpy(p->tok + p->toklen, data, n);
	p->toklen += n;
	p->line += n;
	return n;
}

enum imap_parse_result
imap_parser_feed(struct imap_parser *p, const unsigned char *data, size_t len,
    size_t *consumed)
{
	enum imap_parse_result	 r = IMAP_PARSE_MORE;
	size_t			 i = 0, used;
	bool			 again;

	while (i < len) {
		switch (p->st) {
		case ST_DONE:
			*consumed = i;
			return IMAP_PARSE_DONE;
		case ST_ERROR:
			*consumed = i;
			return IMAP_PARSE_ERROR;
		case ST_LIT_STREAM:
			*consumed = i;
			return IMAP_PARSE_LITERAL;
		case ST_SKIP:
			if (data[i++] == '\n')
				parser_clear(p);
			continue;
		case ST_LIT_DATA:
			r = feed_literal(p, data + i, len - i, &used);
			i += used;
			if (r != IMAP_PARSE_MORE) {
				*consumed = i;
				return r;
			}
			continue;
		default:
			break;
		}
		if ((used = tok_run(p, data + i, len - i)) > 0) {
			i += used;
			continue;
		}
		if (++p->line > line_max(p)) {
			*consumed = i + 1;
			p->line_ended = data[i] == '\n';
			return fail(p, "line too long");
		}
		do {
			again = false;
			r = step(p, data[i], &again);
		} while (again && r == IMAP_PARSE_MORE);
		if (r == IMAP_PARSE_ERROR && data[i] == '\n')
			p->line_ended = true;
		i++;
		if (r != IMAP_PARSE_MORE) {
			*consumed = i;
			return r;
		}
	}
	*consumed = i;
	if (p->st == ST_DONE)
		return IMAP_PARSE_DONE;
	if (p->st == ST_LIT_STREAM)
		return IMAP_PARSE_LITERAL;
	if (p->st == ST_LIT_DATA && p->lit_left == 0)
		return lit_data_done(p);
	return IMAP_PARSE_MORE;
}

enum imap_parse_result
imap_parser_read(struct imap_parser *p, struct evbuffer *in)
{
	struct evbuffer_iovec	 v;
	enum imap_parse_result	 r = IMAP_PARSE_MORE;
	size_t			 used;

	if (p->st == ST_DONE)
		return IMAP_PARSE_DONE;
	if (p->st == ST_LIT_STREAM)
		return IMAP_PARSE_LITERAL;
	while (evbuffer_peek(in, -1, NULL, &v, 1) > 0 && v.iov_len > 0) {
		r = imap_parser_feed(p, v.iov_base, v.iov_len, &used);
		evbuffer_drain(in, used);
		if (r != IMAP_PARSE_MORE)
			return r;
	}
	if (p->st == ST_LIT_DATA && p->lit_size == 0)
		return lit_data_done(p);
	return r;
}

enum imap_parse_result
imap_parser_read_response(struct imap_parser *p, struct evbuffer *in,
    const struct imap_response **resp_r)
{
	enum imap_parse_result	 r = imap_parser_read(p, in);

	*resp_r = r == IMAP_PARSE_DONE ? &p->resp : NULL;
	return r;
}

/*
 * Accessors.
 */

bool
imap_arg_get_atom(const struct imap_arg *a, const char **s)
{
	if (a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_NIL)
		return false;
	*s = a->v.str;
	return true;
}

bool
imap_arg_get_quoted(const struct imap_arg *a, const char **s)
{
	if (a->type != IMAP_ARG_QUOTED)
		return false;
	*s = a->v.str;
	return true;
}

bool
imap_arg_get_string(const struct imap_arg *a, const char **s)
{
	if (a->type != IMAP_ARG_QUOTED && a->type != IMAP_ARG_LITERAL)
		return false;
	*s = a->v.str;
	return true;
}

bool
imap_arg_get_astring_len(const struct imap_arg *a, const char **s,
    size_t *len)
{
	switch (a->type) {
	case IMAP_ARG_ATOM:
	case IMAP_ARG_NIL:
	case IMAP_ARG_QUOTED:
	case IMAP_ARG_LITERAL:
		*s = a->v.str;
		if (len != NULL)
			*len = a->len;
		return true;
	default:
		return false;
	}
}

bool
imap_arg_get_astring(const struct imap_arg *a, const char **s)
{
	size_t	 len;

	/* A string with a NUL in it is not a C string. */
	return imap_arg_get_astring_len(a, s, &len) && strlen(*s) == len;
}

bool
imap_arg_get_nstring(const struct imap_arg *a, const char **s)
{
	if (a->type == IMAP_ARG_NIL) {
		*s = NULL;
		return true;
	}
	return imap_arg_get_string(a, s);
}

bool
imap_arg_get_list(const struct imap_arg *a, const struct imap_arg **list,
    size_t *count)
{
	if (a->type != IMAP_ARG_LIST)
		return false;
	if (list != NULL)
		*list = a->v.list;
	if (count != NULL)
		*count = a->len;
	return true;
}

bool
imap_arg_get_number64(const struct imap_arg *a, uint64_t *n_r)
{
	const char	*s;
	uint64_t	 n = 0;

	if (a->type != IMAP_ARG_ATOM || a->len == 0 || a->len > 20)
		return false;
	for (s = a->v.str; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' ||
		    n > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return false;
		n = n * 10 + (*s - '0');
	}
	*n_r = n;
	return true;
}

bool
imap_arg_get_number(const struct imap_arg *a, uint32_t *n_r)
{
	uint64_t	 n;

	if (!imap_arg_get_number64(a, &n) || n > UINT32_MAX)
		return false;
	*n_r = (uint32_t)n;
	return true;
}

bool
imap_arg_is_nil(const struct imap_arg *a)
{
	return a->type == IMAP_ARG_NIL;
}

bool
imap_arg_atom_equals(const struct imap_arg *a, const char *s)
{
	return (a->type == IMAP_ARG_ATOM || a->type == IMAP_ARG_NIL) &&
	    strcasecmp(a->v.str, s) == 0;
}

bool
imap_response_is(const struct imap_response *r, const char *keyword)
{
	return r->type == IMAP_RESPONSE_UNTAGGED && r->keyword != NULL &&
	    r->status == IMAP_STATUS_NONE && strcasecmp(r->keyword,
	    keyword) == 0;
}
