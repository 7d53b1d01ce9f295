/*
 * The configuration parser: docs/config.md in code.
 *
 * A small lexer cuts the text into words, quoted strings and the marks
 * ";", "{", "}" and newline.  The parser reads one statement at a time,
 * looks its keyword up in a table (where it may appear, how many
 * arguments, whether it may repeat) and hands it to the keyword's handler.
 * Checks that need the whole file (required blocks, TLS material for the
 * listeners, xoauth2 without a token command) run at the end.
 *
 * Every error is recorded as "FILE:LINE: message" and parsing goes on with
 * the next statement, so that `imapmerge -n` shows all the mistakes at
 * once.  Nothing here trusts the text: the file, its lines, arguments and
 * lists are bounded; NUL bytes, control characters and invalid UTF-8 are
 * errors; a file holding a secret must be readable by its owner only.
 *
 * The helpers the daemon calls on a loaded config (username expansion,
 * send-via routing) live here too, next to the syntax they interpret.
 */

#include <sys/types.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "conf/config.h"

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

#define MAX_FILE	(1024 * 1024)
#define MAX_LINE	4096
#define MAX_TOKEN	1024
#define MAX_ARGS	8
#define MAX_LISTEN	64
#define MAX_LIST	1024	/* hide-folder, send-via */
#define KW_MAX		40

enum tok {
	TOK_WORD,
	TOK_NEWLINE,
	TOK_SEMI,
	TOK_LBRACE,
	TOK_RBRACE,
	TOK_EOF,
	TOK_ERROR	/* already reported; the rest of the line is skipped */
};

struct lexer {
	const char		*buf;
	size_t			 len;
	size_t			 pos;
	unsigned int		 line;
	int			 bol;		/* at the beginning of a line */
};

struct stmt {
	unsigned int		 line;
	char			*kw;
	char			*arg[MAX_ARGS];
	int			 argc;		/* may pass MAX_ARGS: not kept */
	int			 broken;	/* a lexer error, reported */
	enum tok		 end;
};

/* The top level, or one backend block. */
struct scope {
	struct backend_conf	*be;
	unsigned int		 line;
	unsigned int		 seen[KW_MAX];
};

struct parser {
	struct lexer		 lex;
	const char		*name;
	int			 flags;
	struct config		*conf;
	struct config_errors	*errs;
	int			 stop;

	/* Where things were said, for the checks at the end. */
	unsigned int		 block_line[BACKEND_COUNT];
	unsigned int		 auth_line[BACKEND_COUNT];
	unsigned int		 token_line[BACKEND_COUNT];
	unsigned int		 listen_line;
	unsigned int		 submission_listen_line;
	unsigned int		 send_via_legacy_line;
	unsigned int		 secret_line;
};

struct keyword;
typedef void kw_fn(struct parser *, struct scope *, const struct stmt *,
    const struct keyword *);

#define KW_TOP		0x01
#define KW_BLOCK	0x02	/* inside legacy { } and new { } */
#define KW_OPENS	0x04	/* opens a block */
#define KW_REPEAT	0x08
#define KW_FILE		0x10	/* a file that must be readable */
#define KW_SECRET	0x20	/* the file must be private */

struct keyword {
	const char		*name;
	int			 flags;
	int			 minargs;
	int			 maxargs;
	const char		*usage;
	kw_fn			*fn;
	size_t			 off;	/* field for the generic handlers */
};

struct choice {
	const char		*name;
	int			 value;
};

static void	 perr(struct parser *, unsigned int, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static void	 parse_body(struct parser *, struct scope *);

static kw_fn	 kw_string, kw_user, kw_group, kw_log, kw_log_level;
static kw_fn	 kw_listen, kw_duration, kw_size, kw_legacy_writes, kw_yesno;
static kw_fn	 kw_tombstone_action, kw_local_keywords, kw_count;
static kw_fn	 kw_hide_folder, kw_folder_role, kw_send_via, kw_block;
static kw_fn	 kw_endpoint, kw_username, kw_auth, kw_token_command;
static kw_fn	 kw_status_listen, kw_duration_off;

#define TOP(f)	offsetof(struct config, f)
#define BE(f)	offsetof(struct backend_conf, f)

static const struct keyword keywords[] = {
	{ "state-dir", KW_TOP, 1, 1, "PATH", kw_string, TOP(state_dir) },
	{ "log", KW_TOP, 1, 1, "stderr | syslog", kw_log, 0 },
	{ "log-level", KW_TOP, 1, 1, "debug | info | warn", kw_log_level, 0 },
	{ "user", KW_TOP, 1, 1, "NAME", kw_user, TOP(user) },
	{ "group", KW_TOP, 1, 1, "NAME", kw_group, TOP(group) },
	{ "tls-certificate", KW_TOP | KW_FILE, 1, 1, "PATH", kw_string,
	    TOP(tls_certificate) },
	{ "tls-key", KW_TOP | KW_FILE, 1, 1, "PATH", kw_string, TOP(tls_key) },
	{ "listen", KW_TOP | KW_REPEAT, 3, 4,
	    "imap|submission ADDR tls|starttls [allow-plaintext-auth]",
	    kw_listen, 0 },
	{ "status-listen", KW_TOP, 1, 1, "ADDR", kw_status_listen, 0 },
	{ "shutdown-timeout", KW_TOP, 1, 1, "DURATION", kw_duration,
	    TOP(shutdown_timeout_ms) },
	{ "connect-timeout", KW_TOP, 1, 1, "DURATION", kw_duration,
	    TOP(connect_timeout_ms) },
	{ "command-timeout", KW_TOP, 1, 1, "DURATION", kw_duration,
	    TOP(command_timeout_ms) },
	{ "poll-interval", KW_TOP, 1, 1, "DURATION", kw_duration,
	    TOP(poll_interval_ms) },
	{ "backend-idle-after", KW_TOP, 1, 1, "DURATION | off",
	    kw_duration_off, TOP(backend_idle_after_ms) },
	{ "max-message-size", KW_TOP, 1, 1, "SIZE", kw_size, 0 },
	{ "legacy-writes", KW_TOP, 1, 1, "none | flags | all",
	    kw_legacy_writes, 0 },
	{ "tombstone-action", KW_TOP, 1, 1, "hide | expunge",
	    kw_tombstone_action, 0 },
	{ "local-keywords", KW_TOP, 1, 1, "auto | yes | no",
	    kw_local_keywords, 0 },
	{ "sent-copy-window", KW_TOP, 1, 1, "DURATION", kw_duration,
	    TOP(sent_copy_window_ms) },
	{ "sent-copy-wait", KW_TOP, 1, 1, "DURATION", kw_duration,
	    TOP(sent_copy_wait_ms) },
	{ "offline-auth", KW_TOP, 1, 1, "yes | no", kw_yesno,
	    TOP(offline_auth) },
	{ "max-preauth-per-ip", KW_TOP, 1, 1, "NUMBER", kw_count,
	    TOP(max_preauth_per_ip) },
	{ "max-login-failures", KW_TOP, 1, 1, "NUMBER", kw_count,
	    TOP(max_login_failures) },
	{ "hide-folder", KW_TOP | KW_REPEAT, 1, 1, "NAME", kw_hide_folder, 0 },
	{ "folder-role", KW_TOP | KW_REPEAT, 3, 3,
	    "sent|drafts|trash|junk|archive legacy|new NAME",
	    kw_folder_role, 0 },
	{ "send-via", KW_TOP | KW_REPEAT, 2, 2, "legacy|new PATTERN",
	    kw_send_via, 0 },
	{ "legacy", KW_TOP | KW_OPENS, 0, 0, "{ ... }", kw_block,
	    BACKEND_LEGACY },
	{ "new", KW_TOP | KW_OPENS, 0, 0, "{ ... }", kw_block, BACKEND_NEW },

	{ "imap", KW_BLOCK, 2, 2, "ADDR tls|starttls|plain", kw_endpoint,
	    BE(imap) },
	{ "submission", KW_BLOCK, 2, 2, "ADDR tls|starttls|plain",
	    kw_endpoint, BE(submission) },
	{ "ca-file", KW_BLOCK | KW_FILE, 1, 1, "PATH", kw_string, BE(ca_file) },
	{ "username", KW_BLOCK, 1, 1, "TEMPLATE", kw_username, 0 },
	{ "auth", KW_BLOCK, 1, 1, "password | xoauth2", kw_auth, 0 },
	{ "token-command", KW_BLOCK | KW_SECRET, 1, 1, "COMMAND",
	    kw_token_command, 0 },
	{ "files-sent-copies", KW_BLOCK, 1, 1, "yes | no", kw_yesno,
	    BE(files_sent_copies) }
};
_Static_assert(nitems(keywords) <= KW_MAX, "raise KW_MAX");

static const char *const side_names[BACKEND_COUNT] = { "legacy", "new" };

/*
 * Errors.
 */

static char *
vfmt(const char *, va_list) __attribute__((format(printf, 1, 0)));

static char *
vfmt(const char *fmt, va_list ap)
{
	va_list	 ap2;
	char	*s;
	int	 n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || (s = malloc((size_t)n + 1)) == NULL)
		return NULL;
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

static void
errors_add(struct config_errors *errs, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
errors_add(struct config_errors *errs, const char *fmt, ...)
{
	va_list	 ap;

	if (errs->count == CONFIG_MAX_ERRORS)
		return;
	va_start(ap, fmt);
	errs->msg[errs->count++] = vfmt(fmt, ap);
	va_end(ap);
}

void
config_errors_clear(struct config_errors *errs)
{
	size_t	 i;

	for (i = 0; i < errs->count; i++)
		free(errs->msg[i]);
	memset(errs, 0, sizeof(*errs));
}

static void
perr(struct parser *p, unsigned int line, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	if (p->stop)
		return;
	va_start(ap, fmt);
	msg = vfmt(fmt, ap);
	va_end(ap);
	if (msg == NULL) {
		errors_add(p->errs, "%s:%u: out of memory", p->name, line);
		p->stop = 1;
		return;
	}
	errors_add(p->errs, "%s:%u: %s", p->name, line, msg);
	free(msg);
	if (p->errs->count == CONFIG_MAX_ERRORS - 1) {
		errors_add(p->errs, "%s:%u: too many errors, giving up",
		    p->name, line);
		p->stop = 1;
	}
}

/* strdup that reports running out of memory; NULL in, NULL out. */
static char *
pstrdup(struct parser *p, unsigned int line, const char *s)
{
	char	*d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL) {
		perr(p, line, "out of memory");
		p->stop = 1;
	}
	return d;
}

/*
 * The lexer.
 */

/*
 * Strict UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF.
 * Names go to the servers as modified UTF-7 and into log lines; a bad
 * sequence would fail late and far from the line that caused it.
 */
static int
utf8_valid(const unsigned char *s, size_t n)
{
	static const uint32_t	 min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	uint32_t		 cp;
	size_t			 i = 0, k, len;

	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xe0) == 0xc0)
			len = 2;
		else if ((s[i] & 0xf0) == 0xe0)
			len = 3;
		else if ((s[i] & 0xf8) == 0xf0)
			len = 4;
		else
			return 0;
		if (n - i < len)
			return 0;
		cp = s[i] & (0x7f >> len);
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min[len] || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

static int
is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

static int
is_delim(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
	    c == '#' || c == ';' || c == '{' || c == '}';
}

static void
lex_skip_line(struct lexer *l)
{
	const char	*nl;

	nl = memchr(l->buf + l->pos, '\n', l->len - l->pos);
	l->pos = nl != NULL ? (size_t)(nl - l->buf) : l->len;
}

static enum tok
lex_error(struct parser *p, const char *msg)
{
	perr(p, p->lex.line, "%s", msg);
	lex_skip_line(&p->lex);
	return TOK_ERROR;
}

/* Bound every line and refuse NUL before looking at its tokens. */
static int
lex_line_ok(struct parser *p)
{
	struct lexer	*l = &p->lex;
	const char	*start = l->buf + l->pos, *nl;
	size_t		 n;

	nl = memchr(start, '\n', l->len - l->pos);
	n = nl != NULL ? (size_t)(nl - start) : l->len - l->pos;
	if (n > MAX_LINE) {
		perr(p, l->line, "line too long (more than %d bytes)",
		    MAX_LINE);
		l->pos += n;
		return 0;
	}
	if (memchr(start, '\0', n) != NULL) {
		perr(p, l->line, "NUL byte in line");
		l->pos += n;
		return 0;
	}
	return 1;
}

static enum tok
lex_finish(struct parser *p, char *text, size_t n, char **text_r)
{
	if (!utf8_valid((const unsigned char *)text, n)) {
		free(text);
		return lex_error(p, "invalid UTF-8");
	}
	*text_r = text;
	return TOK_WORD;
}

static enum tok
lex_word(struct parser *p, char **text_r)
{
	struct lexer	*l = &p->lex;
	size_t		 start = l->pos, n;
	char		*text;

	for (; l->pos < l->len && !is_delim(l->buf[l->pos]); l->pos++) {
		if (l->buf[l->pos] == '"')
			return lex_error(p, "quote inside a word");
		if (is_ctl((unsigned char)l->buf[l->pos]))
			return lex_error(p, "control character in a word");
	}
	n = l->pos - start;
	if (n > MAX_TOKEN)
		return lex_error(p, "argument too long");
	if ((text = strndup(l->buf + start, n)) == NULL)
		return lex_error(p, "out of memory");
	return lex_finish(p, text, n, text_r);
}

/* Only \" and \\: anything else is more likely a mistake than meant. */
static enum tok
lex_quoted(struct parser *p, char **text_r)
{
	struct lexer	*l = &p->lex;
	size_t		 start, end, i, n = 0;
	char		*text, c;

	start = ++l->pos;
	for (;; l->pos++, n++) {
		if (l->pos == l->len || (c = l->buf[l->pos]) == '\n')
			return lex_error(p, "unterminated quoted string");
		if (c == '"')
			break;
		if (c == '\\') {
			if (l->pos + 1 == l->len || (l->buf[l->pos + 1] != '"' &&
			    l->buf[l->pos + 1] != '\\'))
				return lex_error(p, "invalid escape in "
				    "quoted string (only \\\" and \\\\)");
			l->pos++;
		} else if (is_ctl((unsigned char)c))
			return lex_error(p, "control character in quoted "
			    "string");
	}
	end = l->pos++;
	if (l->pos < l->len && !is_delim(l->buf[l->pos]))
		return lex_error(p, "no blank after quoted string");
	if (n > MAX_TOKEN)
		return lex_error(p, "argument too long");
	if ((text = malloc(n + 1)) == NULL)
		return lex_error(p, "out of memory");
	for (i = start, n = 0; i < end; i++) {
		if (l->buf[i] == '\\')
			i++;
		text[n++] = l->buf[i];
	}
	text[n] = '\0';
	return lex_finish(p, text, n, text_r);
}

static enum tok
lex_next(struct parser *p, char **text_r)
{
	struct lexer	*l = &p->lex;
	char		 c;

	*text_r = NULL;
	for (;;) {
		if (l->bol) {
			l->bol = 0;
			if (!lex_line_ok(p))
				return TOK_ERROR;
		}
		if (l->pos == l->len)
			return TOK_EOF;
		c = l->buf[l->pos];
		if (c == '#')
			lex_skip_line(l);
		else if (c == ' ' || c == '\t' || c == '\r')
			l->pos++;
		else
			break;
	}
	switch (c) {
	case '\n':
		l->pos++;
		l->line++;
		l->bol = 1;
		return TOK_NEWLINE;
	case ';':
		l->pos++;
		return TOK_SEMI;
	case '{':
		l->pos++;
		return TOK_LBRACE;
	case '}':
		l->pos++;
		return TOK_RBRACE;
	case '"':
		return lex_quoted(p, text_r);
	default:
		return lex_word(p, text_r);
	}
}

/*
 * Statements.
 */

static void
stmt_clear(struct stmt *st)
{
	int	 i;

	free(st->kw);
	for (i = 0; i < st->argc && i < MAX_ARGS; i++)
		free(st->arg[i]);
	memset(st, 0, sizeof(*st));
}

static void
stmt_add(struct parser *p, struct stmt *st, char *text)
{
	if (st->kw == NULL) {
		st->kw = text;
		st->line = p->lex.line;
	} else if (st->argc < MAX_ARGS)
		st->arg[st->argc++] = text;
	else {
		free(text);
		st->argc++;
	}
}

/* Read up to the end of a statement; "}" and "{" end one too. */
static enum tok
stmt_read(struct parser *p, struct stmt *st)
{
	enum tok	 t;
	char		*text;

	memset(st, 0, sizeof(*st));
	st->line = p->lex.line;
	while (!p->stop) {
		t = lex_next(p, &text);
		if (t == TOK_WORD)
			stmt_add(p, st, text);
		else if (t == TOK_ERROR)
			st->broken = 1;
		else {
			/* "{" alone: blame its line, not a blank before. */
			if (st->kw == NULL)
				st->line = p->lex.line;
			return st->end = t;
		}
	}
	return st->end = TOK_EOF;
}

/* Skip a block we will not use, up to its "}"; blocks there may nest. */
static void
skip_block(struct parser *p, unsigned int line)
{
	unsigned int	 depth = 1;
	enum tok	 t;
	char		*text;

	while (!p->stop) {
		t = lex_next(p, &text);
		free(text);
		if (t == TOK_LBRACE)
			depth++;
		else if (t == TOK_RBRACE && --depth == 0)
			return;
		else if (t == TOK_EOF) {
			perr(p, line, "unterminated block");
			return;
		}
	}
}

static const struct keyword *
kw_find(struct parser *p, const struct scope *sc, const struct stmt *st)
{
	const struct keyword	*kw;
	int			 where = sc->be != NULL ? KW_BLOCK : KW_TOP;

	for (kw = keywords; kw < keywords + nitems(keywords); kw++) {
		if (strcmp(kw->name, st->kw) != 0)
			continue;
		if (kw->flags & where)
			return kw;
		if (where == KW_TOP)
			perr(p, st->line, "%s is only allowed inside a legacy "
			    "or new block", kw->name);
		else
			perr(p, st->line, "%s is not allowed inside a block",
			    kw->name);
		return NULL;
	}
	perr(p, st->line, "unknown keyword \"%s\"", st->kw);
	return NULL;
}

static int
stmt_check(struct parser *p, struct scope *sc, const struct stmt *st,
    const struct keyword *kw)
{
	unsigned int	*seen = &sc->seen[kw - keywords];
	int		 i;

	if (st->argc < kw->minargs || st->argc > kw->maxargs) {
		perr(p, st->line, "%s: wrong number of arguments (usage: %s "
		    "%s)", kw->name, kw->name, kw->usage);
		return 0;
	}
	for (i = 0; i < st->argc; i++) {
		if (st->arg[i][0] == '\0') {
			perr(p, st->line, "%s: empty argument", kw->name);
			return 0;
		}
	}
	if (*seen != 0 && !(kw->flags & KW_REPEAT)) {
		perr(p, st->line, "%s given twice (first at line %u)",
		    kw->name, *seen);
		return 0;
	}
	*seen = st->line;
	return 1;
}

static void
stmt_exec(struct parser *p, struct scope *sc, const struct stmt *st)
{
	const struct keyword	*kw = NULL;
	int			 opens = st->end == TOK_LBRACE;

	if (st->broken)
		;
	else if (st->kw == NULL) {
		if (opens)
			perr(p, st->line, "{ without a keyword");
	} else if ((kw = kw_find(p, sc, st)) == NULL)
		;
	else if (kw->flags & KW_OPENS) {
		kw->fn(p, sc, st, kw);
		return;
	} else if (opens)
		perr(p, st->line, "%s does not open a block", kw->name);
	else if (stmt_check(p, sc, st, kw)) {
		if ((kw->flags & KW_SECRET) && p->secret_line == 0)
			p->secret_line = st->line;
		kw->fn(p, sc, st, kw);
	}
	if (opens)
		skip_block(p, st->line);
}

static void
parse_body(struct parser *p, struct scope *sc)
{
	struct stmt	 st;
	enum tok	 end;

	for (;;) {
		end = stmt_read(p, &st);
		stmt_exec(p, sc, &st);
		stmt_clear(&st);
		if (p->stop)
			return;
		if (end == TOK_EOF) {
			if (sc->be != NULL)
				perr(p, sc->line, "unterminated %s block",
				    side_names[sc->be->side]);
			return;
		}
		if (end == TOK_RBRACE) {
			if (sc->be != NULL)
				return;
			perr(p, p->lex.line, "} without a block");
		}
	}
}

/*
 * Argument syntax.
 */

static int
choose(struct parser *p, const struct stmt *st, const struct keyword *kw,
    const struct choice *c, size_t n, const char *word, int *value_r)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		if (strcmp(c[i].name, word) == 0) {
			*value_r = c[i].value;
			return 1;
		}
	}
	perr(p, st->line, "%s: invalid argument \"%s\" (usage: %s %s)",
	    kw->name, word, kw->name, kw->usage);
	return 0;
}

static const struct choice side_choices[] = {
	{ "legacy", BACKEND_LEGACY }, { "new", BACKEND_NEW }
};

static int
parse_side(struct parser *p, const struct stmt *st, const struct keyword *kw,
    const char *word, enum backend_side *side_r)
{
	int	 v;

	if (!choose(p, st, kw, side_choices, nitems(side_choices), word, &v))
		return 0;
	*side_r = (enum backend_side)v;
	return 1;
}

static int
parse_mode(struct parser *p, const struct stmt *st, const struct keyword *kw,
    const char *word, int allow_plain, enum tls_mode *mode_r)
{
	static const struct choice	 modes[] = {
		{ "tls", TLSMODE_TLS },
		{ "starttls", TLSMODE_STARTTLS },
		{ "plain", TLSMODE_PLAIN }
	};
	int				 v;

	if (!choose(p, st, kw, modes, nitems(modes) - !allow_plain, word, &v))
		return 0;
	*mode_r = (enum tls_mode)v;
	return 1;
}

static int
parse_port(const char *s, uint16_t *port_r)
{
	unsigned int	 v = 0;
	size_t		 n;

	for (n = 0; s[n] >= '0' && s[n] <= '9'; n++) {
		if (n == 5)
			return 0;
		v = v * 10 + (unsigned int)(s[n] - '0');
	}
	if (n == 0 || s[n] != '\0' || v == 0 || v > 65535)
		return 0;
	*port_r = (uint16_t)v;
	return 1;
}

/* RFC 1123 host names, which IPv4 literals also pass. */
static int
hostname_valid(const char *s, size_t n)
{
	size_t	 i, label = 0;

	if (n == 0 || n > 253)
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if ((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_') {
			if (++label > 63)
				return 0;
		} else
			return 0;
	}
	return label != 0;
}

static const char *
addr_ipv6(struct parser *p, const struct stmt *st, const struct keyword *kw,
    const char *s, const char **host_r, size_t *len_r)
{
	struct in6_addr	 in6;
	char		 buf[INET6_ADDRSTRLEN];
	const char	*end = strchr(s, ']');
	size_t		 n = end != NULL ? (size_t)(end - s - 1) : 0;

	if (end == NULL || end[1] != ':' || n >= sizeof(buf)) {
		perr(p, st->line, "%s: invalid address \"%s\" (expected "
		    "[IPv6]:PORT)", kw->name, s);
		return NULL;
	}
	memcpy(buf, s + 1, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET6, buf, &in6) != 1) {
		perr(p, st->line, "%s: invalid IPv6 address \"%s\"", kw->name,
		    buf);
		return NULL;
	}
	*host_r = s + 1;
	*len_r = n;
	return end + 1;
}

/*
 * The host part of HOST:PORT, [IPv6]:PORT, or *:PORT where ANY allows it.
 * Returns the colon before the port, or NULL once reported; *host_r and
 * *len_r get the host without brackets, or NULL for "*".
 */
static const char *
addr_host(struct parser *p, const struct stmt *st, const struct keyword *kw,
    const char *s, int any, const char **host_r, size_t *len_r)
{
	const char	*colon;
	size_t		 n;

	if (s[0] == '[')
		return addr_ipv6(p, st, kw, s, host_r, len_r);
	if ((colon = strrchr(s, ':')) == NULL) {
		perr(p, st->line, "%s: no port in \"%s\" (expected HOST:PORT)",
		    kw->name, s);
		return NULL;
	}
	*host_r = s;
	*len_r = n = (size_t)(colon - s);
	if (n == 1 && s[0] == '*') {
		if (any) {
			*host_r = NULL;
			return colon;
		}
		perr(p, st->line, "%s: \"*\" is only for listen", kw->name);
	} else if (memchr(s, ':', n) != NULL)
		perr(p, st->line, "%s: IPv6 address without brackets in \"%s\" "
		    "(expected [IPv6]:PORT)", kw->name, s);
	else if (!hostname_valid(s, n))
		perr(p, st->line, "%s: invalid host name in \"%s\"", kw->name,
		    s);
	else
		return colon;
	return NULL;
}

/* Sets *host_r to an allocated host, or NULL for "*". */
static int
parse_addr(struct parser *p, const struct stmt *st, const struct keyword *kw,
    const char *s, int any, char **host_r, uint16_t *port_r)
{
	const char	*colon, *host;
	size_t		 n;

	*host_r = NULL;
	if ((colon = addr_host(p, st, kw, s, any, &host, &n)) == NULL)
		return 0;
	if (!parse_port(colon + 1, port_r)) {
		perr(p, st->line, "%s: invalid port in \"%s\"", kw->name, s);
		return 0;
	}
	if (host != NULL && (*host_r = strndup(host, n)) == NULL) {
		perr(p, st->line, "out of memory");
		p->stop = 1;
		return 0;
	}
	return 1;
}

/* Digits, then a unit from the table; no unit means units[0]. */
static int
parse_scaled(const char *s, const struct choice *units, size_t nunits,
    uint64_t max, uint64_t *value_r)
{
	uint64_t	 v = 0;
	size_t		 i;

	if (*s < '0' || *s > '9')
		return 0;
	for (; *s >= '0' && *s <= '9'; s++) {
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > UINT32_MAX)
			return -1;
	}
	for (i = 0; i < nunits; i++)
		if (strcmp(s, units[i].name) == 0)
			break;
	if (i == nunits)
		return 0;
	v *= (uint64_t)units[i].value;
	if (v == 0 || v > max)
		return -1;
	*value_r = v;
	return 1;
}

/* Only %u %n %d %% (and fewer for commands); checked at load time. */
static int
template_valid(struct parser *p, const struct stmt *st, const char *tmpl,
    const char *allowed)
{
	const char	*s;

	for (s = tmpl; (s = strchr(s, '%')) != NULL; s += 2) {
		if (s[1] == '%' || (s[1] != '\0' && strchr(allowed, s[1])))
			continue;
		if (s[1] == '\0')
			perr(p, st->line, "%s: %% at the end of the template",
			    st->kw);
		else if (s[1] > ' ' && s[1] < 0x7f)
			perr(p, st->line, "%s: unknown %%%c in template",
			    st->kw, s[1]);
		else
			perr(p, st->line, "%s: unknown %% escape in template",
			    st->kw);
		return 0;
	}
	return 1;
}

/* A unified folder path: no empty level, no leading or trailing "/". */
static int
folder_path_valid(const char *s)
{
	return s[0] != '/' && s[strlen(s) - 1] != '/' &&
	    strstr(s, "//") == NULL;
}

/*
 * Keyword handlers.  stmt_check() has checked the argument count and
 * that no argument is empty.
 */

static void *
kw_field(struct parser *p, struct scope *sc, const struct keyword *kw)
{
	char	*base = sc->be != NULL ? (char *)sc->be : (char *)p->conf;

	return base + kw->off;
}

static void
kw_string(struct parser *p, struct scope *sc, const struct stmt *st,
    const struct keyword *kw)
{
	char	**field = kw_field(p, sc, kw);

	if ((kw->flags & KW_FILE) && !(p->flags & CONFIG_NO_SYSTEM_CHECKS) &&
	    access(st->arg[0], R_OK) == -1)
		perr(p, st->line, "%s: \"%s\": %s", kw->name, st->arg[0],
		    strerror(errno));
	free(*field);
	*field = pstrdup(p, st->line, st->arg[0]);
}

static void
kw_user(struct parser *p, struct scope *sc, const struct stmt *st,
    const struct keyword *kw)
{
	if (!(p->flags & CONFIG_NO_SYSTEM_CHECKS) &&
	    getpwnam(st->arg[0]) == NULL)
		perr(p, st->line, "user: unknown user \"%s\"", st->arg[0]);
	kw_string(p, sc, st, kw);
}

static void
kw_group(struct parser *p, struct scope *sc, const struct stmt *st,
    const struct keyword *kw)
{
	if (!(p->flags & CONFIG_NO_SYSTEM_CHECKS) &&
	    getgrnam(st->arg[0]) == NULL)
		perr(p, st->line, "group: unknown group \"%s\"", st->arg[0]);
	kw_string(p, sc, st, kw);
}

static void
kw_log(struct parser *p, struct scope *sc, const struct stmt *st,
    const struct keyword *kw)
{
	static const struct choice	 c[] = {
		{ "stderr", 0 }, { "syslog", 1 }
	};

	choose(p, st, kw, c, nitems(c), st->arg[0], &p->conf->log_syslog);
}

static void
kw_log_level(struct parser *p, struct scope *sc, const struct stmt *st,
    const struct keyword *kw)
{
	static const struct choice	 c[] = {
		{ "debug", LOG_DEBUG }, { "info", LOG_INFO },
		{ "warn", LOG_WARNING }
	};

	choose(p, st, kw, c, nitems(c), st->arg[0], &p->conf->log_level);
}

static void
kw_legacy_writes(struct parser *p, struct scope *sc, const struct stmt *st,
    const struct keyword *kw)
{
	static const struct choice	 c[] = {
		{ "none", LEGACY_WRITES_NONE }, { "flags", LEGACY_WRITES_FLAGS },
		{ "all", LEGACY_WRITES_ALL }
	};
	int				 v;

	if (choose(p, st, kw, c, nitems(c), st->arg[0], &v))
		p->conf->legacy_writes = (enum legacy_writes)v;
}

static void
kw_tombstone_action(struct parser *p, struct scope *sc,
    const struct stmt *st, const struct keyword *kw)
{
	static const struct choice	 c[] = {
		{ "hide", TOMBSTONE_HIDE }, { "expunge", TOMBSTONE_EXPUNGE }
	};
	int				 v;

	if (choose(p, st, kw, c, nitems(c), st->arg[0], &v))
		p->conf->tombstone_action = (enum tombstone_action)v;
}

static void
kw_local_keywords(struct parser *p, struct scope *sc, const struct stmt *st,
    const struct keyword *kw)
{
	static const struct choice	 c[] = {
		{ "auto", LOCAL_KEYWORDS_AUTO }, { "yes", LOCAL_KEYWORDS_YES },
		{ "no", LOCAL_KEYWORDS_NO }
	};
	int				 v;

	if (choose(p, st, kw, c, nitems(c), st->arg[0], &v))
		p->conf->local_keywords = (enum local_keywords)v;
}

static void
kw_yesno(struct parser *p, struct scope *sc, const struct stmt *st,
    const struct keyword *kw)
{
	static const struct choice	 c[] = { { "yes", 1 }, { "no", 0 } };

	choose(p, st, kw, c, nitems(c), st->arg[0], kw_field(p, sc, kw));
}

static void
kw_duration(struct parser *p, struct scope *sc, const struct stmt *st,
    const struct keyword *kw)
{
	static const struct choice	 units[] = {
		{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
		{ "h", 3600000 }
	};
	unsigned int			*field = kw_field(p, sc, kw);
	uint64_t			 v;

	switch (parse_scaled(st->arg[0], units, nitems(units), INT_MAX, &v)) {
	case 1:
		/* It is also how often a backend IDLE is renewed: servers may
		 * end one after 30 minutes (RFC 2177), some sooner. */
		if (kw->off == TOP(poll_interval_ms) && v > 10 * 60 * 1000) {
			perr(p, st->line, "%s: at most 10m (backend IDLE is "
			    "renewed at this interval)", kw->name);
			break;
		}
		*field = (unsigned int)v;
		break;
	case 0:
		perr(p, st->line, "%s: invalid duration \"%s\" (a number "
		    "with ms, s, m or h)", kw->name, st->arg[0]);
		break;
	default:
		perr(p, st->line, "%s: duration out of range \"%s\"",
		    kw->name, st->arg[0]);
	}
}

static void
kw_size(struct parser *p, struct scope *sc, const struct stmt *st,
    const struct keyword *kw)
{
	static const struct choice	 units[] = {
		{ "", 1 }, { "k", 1 << 10 }, { "K", 1 << 10 },
		{ "M", 1 << 20 }, { "G", 1 << 30 }
	};
	uint64_t			 v;

	/* IMAP literal sizes are 32-bit numbers. */
	switch (parse_scaled(st->arg[0], units, nitems(units), UINT32_MAX,
	    &v)) {
	case 1:
		p->conf->max_message_size = v;
		break;
	case 0:
		perr(p, st->line, "%s: invalid size \"%s\" (a number with k, "
		    "M or G)", kw->name, st->arg[0]);
		break;
	default:
		perr(p, st->line, "%s: size out of range \"%s\"", kw->name,
		    st->arg[0]);
	}
}

static void
kw_count(struct parser *p, struct scope *sc, const struct stmt *st,
    const struct keyword *kw)
{
	static const struct choice	 units[] = { { "", 1 } };
	unsigned int			*field = kw_field(p, sc, kw);
	uint64_t			 v;

	switch (parse_scaled(st->arg[0], units, nitems(units), 1000000, &v)) {
	case 1:
		if (v > 0) {
			*field = (unsigned int)v;
			break;
		}
		/* FALLTHROUGH */
	case 0:
		perr(p, st->line, "%s: invalid number \"%s\"", kw->name,
		    st->arg[0]);
		break;
	default:
		perr(p, st->line, "%s: number out of range \"%s\" (1 to "
		    "1000000)", kw->name, st->arg[0]);
	}
}

static int
listen_parse(struct parser *p, const struct stmt *st,
    const struct keyword *kw, struct listen_conf *l)
{
	static const struct choice	 protos[] = {
		{ "imap", LISTEN_IMAP }, { "submission", LISTEN_SUBMISSION }
	};
	int				 v = 0, ok;

	ok = choose(p, st, kw, protos, nitems(protos), st->arg[0], &v);
	l->proto = (enum listen_proto)v;
	ok &= parse_mode(p, st, kw, st->arg[2], 0, &l->tls);
	if (st->argc == 4) {
		if (strcmp(st->arg[3], "allow-plaintext-auth") != 0) {
			perr(p, st->line, "listen: invalid argument \"%s\" "
			    "(usage: listen %s)", st->arg[3], kw->usage);
			ok = 0;
		} else if (l->tls != TLSMODE_STARTTLS) {
			perr(p, st->line, "listen: allow-plaintext-auth "
			    "needs starttls");
			ok = 0;
		}
		l->allow_plaintext_auth = 1;
	}
	if (ok)
		ok = parse_addr(p, st, kw, st->arg[1], 1, &l->host, &l->port);
	return ok;
}

static int
listen_same(const struct listen_conf *a, const struct listen_conf *b)
{
	if (a->port != b->port)
		return 0;
	if (a->host == NULL || b->host == NULL)
		return a->host == b->host;
	return strcmp(a->host, b->host) == 0;
}

static void
kw_listen(struct parser *p, struct scope *sc, const struct stmt *st,
    const struct keyword *kw)
{
	struct config		*conf = p->conf;
	struct listen_conf	 l, *nl;
	size_t			 i;

	memset(&l, 0, sizeof(l));
	if (!listen_parse(p, st, kw, &l))
		goto fail;
	for (i = 0; i < conf->nlisten; i++) {
		if (listen_same(&conf->listen[i], &l)) {
			perr(p, st->line, "listen: %s is already used",
			    st->arg[1]);
			goto fail;
		}
	}
	if (conf->nlisten == MAX_LISTEN) {
		perr(p, st->line, "listen: too many (at most %d)", MAX_LISTEN);
		goto fail;
	}
	if ((l.text = pstrdup(p, st->line, st->arg[1])) == NULL)
		goto fail;
	nl = reallocarray(conf->listen, conf->nlisten + 1, sizeof(*nl));
	if (nl == NULL) {
		perr(p, st->line, "out of memory");
		p->stop = 1;
		goto fail;
	}
	conf->listen = nl;
	conf->listen[conf->nlisten++] = l;
	if (p->listen_line == 0)
		p->listen_line = st->line;
	if (l.proto == LISTEN_SUBMISSION && p->submission_listen_line == 0)
		p->submission_listen_line = st->line;
	return;
fail:
	free(l.host);
	free(l.text);
}

/* The metrics endpoint: one address, not "*" (it is not for the world). */
static void
kw_status_listen(struct parser *p, struct scope *sc, const struct stmt *st,
    const struct keyword *kw)
{
	struct config	*conf = p->conf;

	if (!parse_addr(p, st, kw, st->arg[0], 0, &conf->status_host,
	    &conf->status_port))
		return;
	conf->status_text = pstrdup(p, st->line, st->arg[0]);
}

static void
kw_hide_folder(struct parser *p, struct scope *sc, const struct stmt *st,
    const struct keyword *kw)
{
	struct config	*conf = p->conf;
	char		**nh, *name;

	if (!folder_path_valid(st->arg[0])) {
		perr(p, st->line, "hide-folder: invalid folder path \"%s\"",
		    st->arg[0]);
		return;
	}
	if (conf->nhide_folder == MAX_LIST) {
		perr(p, st->line, "hide-folder: too many (at most %d)",
		    MAX_LIST);
		return;
	}
	if ((name = pstrdup(p, st->line, st->arg[0])) == NULL)
		return;
	nh = reallocarray(conf->hide_folder, conf->nhide_folder + 1,
	    sizeof(*nh));
	if (nh == NULL) {
		free(name);
		perr(p, st->line, "out of memory");
		p->stop = 1;
		return;
	}
	conf->hide_folder = nh;
	conf->hide_folder[conf->nhide_folder++] = name;
}

static int
folder_role_dup(struct parser *p, const struct stmt *st,
    const struct folder_role_conf *fr)
{
	const struct folder_role_conf	*o;
	size_t				 i;

	for (i = 0; i < p->conf->nfolder_role; i++) {
		o = &p->conf->folder_role[i];
		if (o->side != fr->side)
			continue;
		if (o->role == fr->role) {
			perr(p, st->line, "folder-role: %s %s is already "
			    "assigned", st->arg[0], st->arg[1]);
			return 1;
		}
		if (strcmp(o->name, st->arg[2]) == 0) {
			perr(p, st->line, "folder-role: %s folder \"%s\" "
			    "already has a role", st->arg[1], st->arg[2]);
			return 1;
		}
	}
	return 0;
}

static void
kw_folder_role(struct parser *p, struct scope *sc, const struct stmt *st,
    const struct keyword *kw)
{
	struct config		*conf = p->conf;
	struct folder_role_conf	 fr, *nf;

	fr.role = folder_role_from_keyword(st->arg[0]);
	if (fr.role == ROLE_NONE || fr.role == ROLE_INBOX ||
	    strcmp(folder_role_name(fr.role), st->arg[0]) != 0) {
		perr(p, st->line, "folder-role: invalid role \"%s\" (usage: "
		    "folder-role %s)", st->arg[0], kw->usage);
		return;
	}
	if (!parse_side(p, st, kw, st->arg[1], &fr.side) ||
	    folder_role_dup(p, st, &fr))
		return;
	if ((fr.name = pstrdup(p, st->line, st->arg[2])) == NULL)
		return;
	nf = reallocarray(conf->folder_role, conf->nfolder_role + 1,
	    sizeof(*nf));
	if (nf == NULL) {
		free(fr.name);
		perr(p, st->line, "out of memory");
		p->stop = 1;
		return;
	}
	conf->folder_role = nf;
	conf->folder_role[conf->nfolder_role++] = fr;
}

static void
kw_send_via(struct parser *p, struct scope *sc, const struct stmt *st,
    const struct keyword *kw)
{
	struct config		*conf = p->conf;
	struct send_via_conf	 sv, *ns;

	if (!parse_side(p, st, kw, st->arg[0], &sv.side))
		return;
	if (conf->nsend_via == MAX_LIST) {
		perr(p, st->line, "send-via: too many (at most %d)", MAX_LIST);
		return;
	}
	if ((sv.pattern = pstrdup(p, st->line, st->arg[1])) == NULL)
		return;
	ns = reallocarray(conf->send_via, conf->nsend_via + 1, sizeof(*ns));
	if (ns == NULL) {
		free(sv.pattern);
		perr(p, st->line, "out of memory");
		p->stop = 1;
		return;
	}
	conf->send_via = ns;
	conf->send_via[conf->nsend_via++] = sv;
	if (sv.side == BACKEND_LEGACY && p->send_via_legacy_line == 0)
		p->send_via_legacy_line = st->line;
}

/* legacy { ... } and new { ... } */
static void
kw_block(struct parser *p, struct scope *sc, const struct stmt *st,
    const struct keyword *kw)
{
	enum backend_side	 side = (enum backend_side)kw->off;
	struct scope		 bsc;

	if (st->end != TOK_LBRACE) {
		perr(p, st->line, "%s: expected {", kw->name);
		return;
	}
	if (st->argc != 0 || p->block_line[side] != 0) {
		if (st->argc != 0)
			perr(p, st->line, "%s takes no arguments", kw->name);
		else
			perr(p, st->line, "duplicate %s block (first at line "
			    "%u)", kw->name, p->block_line[side]);
		skip_block(p, st->line);
		return;
	}
	p->block_line[side] = st->line;
	memset(&bsc, 0, sizeof(bsc));
	bsc.be = &p->conf->backend[side];
	bsc.line = st->line;
	parse_body(p, &bsc);
}

static void
kw_endpoint(struct parser *p, struct scope *sc, const struct stmt *st,
    const struct keyword *kw)
{
	struct endpoint_conf	*ep = kw_field(p, sc, kw);
	enum tls_mode		 mode;
	uint16_t		 port;
	char			*host;

	if (!parse_mode(p, st, kw, st->arg[1], 1, &mode) ||
	    !parse_addr(p, st, kw, st->arg[0], 0, &host, &port))
		return;
	ep->host = host;
	ep->port = port;
	ep->tls = mode;
}

static void
kw_username(struct parser *p, struct scope *sc, const struct stmt *st,
    const struct keyword *kw)
{
	char	*s;

	if (!template_valid(p, st, st->arg[0], "und"))
		return;
	if ((s = pstrdup(p, st->line, st->arg[0])) == NULL)
		return;
	free(sc->be->username);
	sc->be->username = s;
}

static void
kw_auth(struct parser *p, struct scope *sc, const struct stmt *st,
    const struct keyword *kw)
{
	static const struct choice	 c[] = {
		{ "password", BACKEND_AUTH_PASSWORD },
		{ "xoauth2", BACKEND_AUTH_XOAUTH2 }
	};
	int				 v;

	if (!choose(p, st, kw, c, nitems(c), st->arg[0], &v))
		return;
	sc->be->auth = (enum backend_auth)v;
	p->auth_line[sc->be->side] = st->line;
}

static void
kw_token_command(struct parser *p, struct scope *sc, const struct stmt *st,
    const struct keyword *kw)
{
	p->token_line[sc->be->side] = st->line;
	if (template_valid(p, st, st->arg[0], "u"))
		sc->be->token_command = pstrdup(p, st->line, st->arg[0]);
}

/*
 * Whole-file checks.
 */

static void
check_backend(struct parser *p, enum backend_side side, unsigned int eof)
{
	const struct backend_conf	*be = &p->conf->backend[side];
	const char			*name = side_names[side];

	if (p->block_line[side] == 0) {
		perr(p, eof, "missing %s block", name);
		return;
	}
	if (be->imap.host == NULL)
		perr(p, p->block_line[side], "%s block has no imap statement",
		    name);
	if (be->auth == BACKEND_AUTH_XOAUTH2 && side == BACKEND_LEGACY)
		perr(p, p->auth_line[side], "auth: the legacy server must use "
		    "password: it is what verifies the client's password");
	else if (be->auth == BACKEND_AUTH_XOAUTH2 && p->token_line[side] == 0)
		perr(p, p->auth_line[side], "auth: xoauth2 needs a "
		    "token-command");
	if (be->auth != BACKEND_AUTH_XOAUTH2 && p->token_line[side] != 0)
		perr(p, p->token_line[side], "token-command: only used with "
		    "auth xoauth2");
}

static void
check_config(struct parser *p)
{
	const struct config	*conf = p->conf;
	unsigned int		 eof = p->lex.line;

	check_backend(p, BACKEND_LEGACY, eof);
	check_backend(p, BACKEND_NEW, eof);
	if (conf->nlisten == 0)
		perr(p, eof, "no listen statement");
	else if (conf->tls_certificate == NULL || conf->tls_key == NULL)
		perr(p, p->listen_line, "listen: needs tls-certificate and "
		    "tls-key");
	if (p->submission_listen_line != 0 && p->block_line[BACKEND_NEW] &&
	    conf->backend[BACKEND_NEW].submission.host == NULL)
		perr(p, p->submission_listen_line, "listen: a submission "
		    "listener needs a submission statement in the new block");
	if (p->send_via_legacy_line != 0 && p->block_line[BACKEND_LEGACY] &&
	    conf->backend[BACKEND_LEGACY].submission.host == NULL)
		perr(p, p->send_via_legacy_line, "send-via: the legacy block "
		    "has no submission statement");
}

/*
 * Loading.
 */

/* A duration, or off (0): a feature that waits that long is off. */
static void
kw_duration_off(struct parser *p, struct scope *sc, const struct stmt *st,
    const struct keyword *kw)
{
	if (strcmp(st->arg[0], "off") == 0)
		*(unsigned int *)kw_field(p, sc, kw) = 0;
	else
		kw_duration(p, sc, st, kw);
}

static struct config *
config_new(const char *name)
{
	struct config	*conf;
	int		 i, fail = 0;

	if ((conf = calloc(1, sizeof(*conf))) == NULL)
		return NULL;
	conf->log_level = LOG_INFO;
	conf->connect_timeout_ms = 10 * 1000;
	conf->command_timeout_ms = 60 * 1000;
	conf->poll_interval_ms = 30 * 1000;
	conf->backend_idle_after_ms = 1000;
	conf->max_message_size = 35 << 20;
	conf->legacy_writes = LEGACY_WRITES_FLAGS;
	conf->sent_copy_window_ms = 10 * 60 * 1000;
	conf->sent_copy_wait_ms = 20 * 1000;
	conf->offline_auth = 1;
	conf->max_preauth_per_ip = 20;
	conf->max_login_failures = 10;
	conf->shutdown_timeout_ms = 30 * 1000;
	conf->refs = 1;
	conf->path = strdup(name);
	conf->state_dir = strdup("/var/lib/imapmerge");
	for (i = 0; i < BACKEND_COUNT; i++) {
		conf->backend[i].side = (enum backend_side)i;
		if ((conf->backend[i].username = strdup("%u")) == NULL)
			fail = 1;
	}
	if (fail || conf->path == NULL || conf->state_dir == NULL)
		config_free(&conf);
	return conf;
}

/*
 * A token-command is a secret: the file may be read by root and by the
 * daemon's own group (it reads the file again on SIGHUP, after dropping
 * privileges: root:GROUP 0640), by no one else.
 */
static void
check_secret_mode(struct parser *p, const struct stat *sb, const char *name)
{
	const char	*group = p->conf->group;
	struct group	*gr;

	if (!(sb->st_mode & (S_IRGRP | S_IROTH)))
		return;
	if (!(sb->st_mode & S_IROTH) && group != NULL &&
	    (gr = getgrnam(group)) != NULL && gr->gr_gid == sb->st_gid)
		return;
	if (group != NULL)
		perr(p, p->secret_line, "token-command in a file readable by "
		    "others or by a group other than %s (chmod 600 %s, or "
		    "chgrp %s %s and chmod 640 %s)", group, name, group, name,
		    name);
	else
		perr(p, p->secret_line, "token-command in a file readable by "
		    "group or others (chmod 600 %s)", name);
}

/*
 * Parse one buffer.  With sb (the file's fstat), also refuse a file that
 * holds a secret and that others may read, or that others may write: a
 * token-command put there by another user runs as the daemon.
 */
static struct config *
parse_run(const char *name, const char *buf, size_t len, int flags,
    struct config_errors *errs, const struct stat *sb)
{
	struct parser	 p;
	struct scope	 top;

	memset(&p, 0, sizeof(p));
	p.lex.buf = buf;
	p.lex.len = len;
	p.lex.line = 1;
	p.lex.bol = 1;
	p.name = name;
	p.flags = flags;
	p.errs = errs;
	if ((p.conf = config_new(name)) == NULL) {
		errors_add(errs, "%s: out of memory", name);
		return NULL;
	}
	memset(&top, 0, sizeof(top));
	parse_body(&p, &top);
	check_config(&p);
	if (sb != NULL && p.secret_line != 0)
		check_secret_mode(&p, sb, name);
	if (sb != NULL && (sb->st_mode & S_IWOTH))
		errors_add(errs, "%s: writable by others", name);
	if (errs->count != 0)
		config_free(&p.conf);
	return p.conf;
}

struct config *
config_parse_buffer(const char *name, const char *buf, size_t len, int flags,
    struct config_errors *errs)
{
	memset(errs, 0, sizeof(*errs));
	return parse_run(name, buf, len, flags, errs, NULL);
}

static char *
read_all(int fd, size_t max, size_t *len_r)
{
	char	*buf;
	size_t	 len = 0;
	ssize_t	 n;

	if ((buf = malloc(max + 1)) == NULL)
		return NULL;
	while (len <= max) {
		n = read(fd, buf + len, max + 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			free(buf);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*len_r = len;
	return buf;
}

struct config *
config_load(const char *path, int flags, struct config_errors *errs)
{
	struct config	*conf = NULL;
	struct stat	 sb;
	char		*buf = NULL;
	size_t		 len = 0;
	int		 fd;

	memset(errs, 0, sizeof(*errs));
	/* O_NONBLOCK so that a FIFO cannot hang us before fstat says so. */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd == -1 || fstat(fd, &sb) == -1)
		errors_add(errs, "%s: %s", path, strerror(errno));
	else if (!S_ISREG(sb.st_mode))
		errors_add(errs, "%s: not a regular file", path);
	else if ((buf = read_all(fd, MAX_FILE, &len)) == NULL)
		errors_add(errs, "%s: %s", path, strerror(errno));
	else if (len > MAX_FILE)
		errors_add(errs, "%s: file too large (more than %d bytes)",
		    path, MAX_FILE);
	else
		conf = parse_run(path, buf, len, flags, errs, &sb);
	if (fd != -1)
		close(fd);
	free(buf);
	return conf;
}

static void
endpoint_free(struct endpoint_conf *ep)
{
	free(ep->host);
	ep->host = NULL;
}

void
config_free(struct config **confp)
{
	struct config	*conf = *confp;
	size_t		 i;

	if (conf == NULL)
		return;
	*confp = NULL;
	for (i = 0; i < conf->nlisten; i++) {
		free(conf->listen[i].host);
		free(conf->listen[i].text);
	}
	for (i = 0; i < conf->nhide_folder; i++)
		free(conf->hide_folder[i]);
	for (i = 0; i < conf->nfolder_role; i++)
		free(conf->folder_role[i].name);
	for (i = 0; i < conf->nsend_via; i++)
		free(conf->send_via[i].pattern);
	for (i = 0; i < BACKEND_COUNT; i++) {
		endpoint_free(&conf->backend[i].imap);
		endpoint_free(&conf->backend[i].submission);
		free(conf->backend[i].ca_file);
		free(conf->backend[i].username);
		free(conf->backend[i].token_command);
	}
	free(conf->listen);
	free(conf->hide_folder);
	free(conf->folder_role);
	free(conf->send_via);
	free(conf->path);
	free(conf->state_dir);
	free(conf->user);
	free(conf->group);
	free(conf->tls_certificate);
	free(conf->tls_key);
	free(conf->status_host);
	free(conf->status_text);
	free(conf);
}

struct config *
config_ref(struct config *conf)
{
	conf->refs++;
	return conf;
}

void
config_unref(struct config **confp)
{
	struct config	*conf = *confp;

	if (conf == NULL)
		return;
	*confp = NULL;
	if (--conf->refs == 0)
		config_free(&conf);
}

/*
 * Using a loaded config.
 */

const char *
config_side_name(enum backend_side side)
{
	return (unsigned int)side < BACKEND_COUNT ? side_names[side] : "?";
}

/* A growable string for the expanders; NULL data means out of memory. */
struct sbuf {
	char	*data;
	size_t	 len;
	size_t	 size;
};

static void
sbuf_add(struct sbuf *sb, const char *s, size_t n)
{
	char	*nd;
	size_t	 nsize;

	if (sb->data == NULL && sb->size != 0)
		return;
	if (sb->len + n + 1 > sb->size) {
		nsize = (sb->len + n + 1) * 2;
		if ((nd = realloc(sb->data, nsize)) == NULL) {
			free(sb->data);
			sb->data = NULL;
			sb->size = 1;
			return;
		}
		sb->data = nd;
		sb->size = nsize;
	}
	memcpy(sb->data + sb->len, s, n);
	sb->len += n;
	sb->data[sb->len] = '\0';
}

static char *
sbuf_finish(struct sbuf *sb, int ok)
{
	if (!ok) {
		free(sb->data);
		return NULL;
	}
	if (sb->data == NULL && sb->size == 0)
		sbuf_add(sb, "", 0);
	return sb->data;
}

char *
config_expand_username(const char *tmpl, const char *login)
{
	struct sbuf	 sb = { NULL, 0, 0 };
	const char	*at = strrchr(login, '@'), *s;
	size_t		 nlocal = at != NULL ? (size_t)(at - login) :
			    strlen(login);

	for (s = tmpl; *s != '\0'; s++) {
		if (*s != '%') {
			sbuf_add(&sb, s, 1);
			continue;
		}
		switch (*++s) {
		case 'u':
			sbuf_add(&sb, login, strlen(login));
			break;
		case 'n':
			sbuf_add(&sb, login, nlocal);
			break;
		case 'd':
			if (at != NULL)
				sbuf_add(&sb, at + 1, strlen(at + 1));
			break;
		case '%':
			sbuf_add(&sb, "%", 1);
			break;
		default:
			return sbuf_finish(&sb, 0);
		}
	}
	return sbuf_finish(&sb, 1);
}

/* 'it'\''s': the one quoting /bin/sh leaves no character special in. */
static void
sbuf_add_shell_quoted(struct sbuf *sb, const char *s)
{
	sbuf_add(sb, "'", 1);
	for (; *s != '\0'; s++) {
		if (*s == '\'')
			sbuf_add(sb, "'\\''", 4);
		else
			sbuf_add(sb, s, 1);
	}
	sbuf_add(sb, "'", 1);
}

char *
config_expand_command(const char *tmpl, const char *username)
{
	struct sbuf	 sb = { NULL, 0, 0 };
	const char	*s;

	for (s = tmpl; *s != '\0'; s++) {
		if (*s != '%')
			sbuf_add(&sb, s, 1);
		else if (*++s == 'u')
			sbuf_add_shell_quoted(&sb, username);
		else if (*s == '%')
			sbuf_add(&sb, "%", 1);
		else
			return sbuf_finish(&sb, 0);
	}
	return sbuf_finish(&sb, 1);
}

static int
glob_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/*
 * Iterative, with one backtrack point: each "*" only ever moves forward,
 * so a hostile pattern costs O(pattern * string), never exponential.
 * "?" takes one UTF-8 character.
 */
int
config_glob_match(const char *pat, const char *s)
{
	const char	*star = NULL, *resume = NULL;

	while (*s != '\0') {
		if (*pat == '*') {
			star = pat++;
			resume = s;
		} else if (*pat == '?') {
			pat++;
			while ((*++s & 0xc0) == 0x80)
				;
		} else if (*pat != '\0' && glob_lower((unsigned char)*pat) ==
		    glob_lower((unsigned char)*s)) {
			pat++;
			s++;
		} else if (star != NULL) {
			pat = star + 1;
			s = ++resume;
		} else
			return 0;
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
}

enum backend_side
config_route_sender(const struct config *conf, const char *addr)
{
	size_t	 i;

	for (i = 0; i < conf->nsend_via; i++)
		if (config_glob_match(conf->send_via[i].pattern, addr))
			return conf->send_via[i].side;
	return BACKEND_NEW;
}

int
config_folder_hidden(const struct config *conf, const char *path)
{
	size_t	 i;

	for (i = 0; i < conf->nhide_folder; i++)
		if (folder_path_in_subtree(path, conf->hide_folder[i]))
			return 1;
	return 0;
}
