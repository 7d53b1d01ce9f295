/*
 * The IMAP command table, UID's dispatch to its subcommands, and the
 * commands that need no backend: CAPABILITY, LOGOUT, ID, ENABLE,
 * NAMESPACE.
 *
 * Capabilities are what imapmerge itself implements, never a copy of a
 * backend's: a client that sees CONDSTORE would send commands that only
 * one of the two servers understands.
 */
#include <stdio.h>
#include <strings.h>

#include "protocol/imap_parser.h"
#include "proxy/imap/session_impl.h"

/* Offered once logged in; SASL-IR and AUTH= only where auth is allowed. */
#define CAPS_COMMON	"IMAP4rev1 LITERAL+ ID ENABLE"
#define CAPS_LOGGEDIN	CAPS_COMMON " NAMESPACE CHILDREN SPECIAL-USE " \
			"LIST-EXTENDED IDLE UNSELECT UIDPLUS MOVE"

const char *
sess_capabilities(const struct imap_session *s)
{
	if (s->state != SESS_NOTAUTH)
		return CAPS_LOGGEDIN;
	if (s->tls || s->lc->allow_plaintext_auth)
		return s->tls ? CAPS_COMMON " SASL-IR AUTH=PLAIN AUTH=LOGIN" :
		    CAPS_COMMON " STARTTLS SASL-IR AUTH=PLAIN AUTH=LOGIN";
	return CAPS_COMMON " STARTTLS LOGINDISABLED";
}

static void	 cmd_uid(struct imap_session *, const struct imap_arg *,
		    size_t);

static void
cmd_capability(struct imap_session *s, const struct imap_arg *args,
    size_t nargs)
{
	if (nargs != 0) {
		sess_done(s, "BAD CAPABILITY takes no arguments");
		return;
	}
	sess_printf(s, "* CAPABILITY %s\r\n", sess_capabilities(s));
	sess_done(s, "OK CAPABILITY completed");
}

static void
cmd_logout(struct imap_session *s, const struct imap_arg *args,
    size_t nargs)
{
	sess_printf(s, "* BYE imapmerge logging out\r\n");
	sess_enter(s, SESS_LOGOUT);
	sess_done_quiet(s, "OK LOGOUT completed");
	s->busy = 1;		/* read nothing more */
	sess_close(s, "logout");
}

/* RFC 2971: answered here; the backends never see the client's ID. */
static void
cmd_id(struct imap_session *s, const struct imap_arg *args, size_t nargs)
{
	if (nargs != 1 || (!imap_arg_is_nil(&args[0]) &&
	    !imap_arg_get_list(&args[0], NULL, NULL))) {
		sess_done(s, "BAD ID needs a parameter list or NIL");
		return;
	}
	sess_printf(s, "* ID (\"name\" \"imapmerge\" \"version\" \"0.1\")\r\n");
	sess_done(s, "OK ID completed");
}

/* RFC 5161: nothing we offer needs enabling yet, so nothing is enabled. */
static void
cmd_enable(struct imap_session *s, const struct imap_arg *args,
    size_t nargs)
{
	if (nargs == 0) {
		sess_done(s, "BAD ENABLE needs at least one capability");
		return;
	}
	sess_printf(s, "* ENABLED\r\n");
	sess_done(s, "OK ENABLE completed");
}

static void
cmd_namespace(struct imap_session *s, const struct imap_arg *args,
    size_t nargs)
{
	if (nargs != 0) {
		sess_done(s, "BAD NAMESPACE takes no arguments");
		return;
	}
	sess_printf(s, "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
	sess_done(s, "OK NAMESPACE completed");
}

#define USES	CMD_USES_SEQS
#define BREAKS	CMD_BREAKS_SEQS
#define UID	CMD_UID

/*
 * The flags are Dovecot's choices where RFC 9051 §7.5.1 leaves one (the
 * UID forms of FETCH, STORE and SEARCH may carry EXPUNGE; STATUS and LIST
 * tell nothing of the selected folder), checked against Dovecot by
 * test_news_follow_the_command_as_dovecots.
 */
static const struct imap_command_def commands[] = {
	{ "APPEND",		cmd_append,	ST_LOGGEDIN,	BREAKS },
	{ "AUTHENTICATE",	cmd_authenticate, ST_NOTAUTH,	0 },
	{ "CAPABILITY",		cmd_capability,	ST_ANY,		0 },
	{ "CHECK",		cmd_check,	ST_SELECTED,	BREAKS },
	{ "CLOSE",		cmd_close,	ST_SELECTED,	0 },
	{ "COPY",		cmd_copy,	ST_SELECTED,	BREAKS },
	{ "CREATE",		cmd_create,	ST_LOGGEDIN,	0 },
	{ "DELETE",		cmd_delete,	ST_LOGGEDIN,	0 },
	{ "ENABLE",		cmd_enable,	ST_AUTH,	0 },
	{ "EXAMINE",		cmd_examine,	ST_LOGGEDIN,	0 },
	{ "EXPUNGE",		cmd_expunge,	ST_SELECTED,	BREAKS },
	{ "FETCH",		cmd_fetch,	ST_SELECTED,	USES },
	{ "ID",			cmd_id,		ST_ANY,		0 },
	{ "IDLE",		cmd_idle,	ST_LOGGEDIN,	BREAKS },
	{ "LIST",		cmd_list,	ST_LOGGEDIN,	0 },
	{ "LOGIN",		cmd_login,	ST_NOTAUTH,	0 },
	{ "LOGOUT",		cmd_logout,	ST_ANY,		0 },
	{ "LSUB",		cmd_lsub,	ST_LOGGEDIN,	0 },
	{ "MOVE",		cmd_move,	ST_SELECTED,	BREAKS },
	{ "NAMESPACE",		cmd_namespace,	ST_LOGGEDIN,	0 },
	{ "NOOP",		cmd_noop,	ST_ANY,		BREAKS },
	{ "RENAME",		cmd_rename,	ST_LOGGEDIN,	0 },
	{ "SEARCH",		cmd_search,	ST_SELECTED,	USES },
	{ "SELECT",		cmd_select,	ST_LOGGEDIN,	0 },
	{ "STARTTLS",		cmd_starttls,	ST_NOTAUTH,	0 },
	{ "STATUS",		cmd_status,	ST_LOGGEDIN,	0 },
	{ "STORE",		cmd_store,	ST_SELECTED,	USES },
	{ "SUBSCRIBE",		cmd_subscribe,	ST_LOGGEDIN,	0 },
	{ "UID",		cmd_uid,	ST_SELECTED,	0 },
	{ "UNSELECT",		cmd_unselect,	ST_SELECTED,	0 },
	{ "UNSUBSCRIBE",	cmd_unsubscribe, ST_LOGGEDIN,	0 },
};

/* UID's subcommands, run as commands of their own (cmd_uid). */
static const struct imap_command_def uid_commands[] = {
	{ "UID COPY",		cmd_uid_copy,	ST_SELECTED,	BREAKS | UID },
	{ "UID EXPUNGE",	cmd_uid_expunge, ST_SELECTED,	BREAKS | UID },
	{ "UID FETCH",		cmd_uid_fetch,	ST_SELECTED,	BREAKS | UID },
	{ "UID MOVE",		cmd_uid_move,	ST_SELECTED,	BREAKS | UID },
	{ "UID SEARCH",		cmd_uid_search,	ST_SELECTED,	BREAKS | UID },
	{ "UID STORE",		cmd_uid_store,	ST_SELECTED,	BREAKS | UID },
};

#undef USES
#undef BREAKS
#undef UID

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

static const struct imap_command_def *
command_find(const struct imap_command_def *table, size_t n, const char *name)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (strcasecmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}

const struct imap_command_def *
sess_command_find(const char *name)
{
	return command_find(commands, NITEMS(commands), name);
}

/* "UID FETCH ...": the subcommand becomes the running command. */
static void
cmd_uid(struct imap_session *s, const struct imap_arg *args, size_t nargs)
{
	const struct imap_command_def	*def;
	const char			*sub;
	char				 name[16];

	if (nargs < 1 || !imap_arg_get_atom(&args[0], &sub)) {
		sess_done(s, "BAD UID needs a command");
		return;
	}
	if ((size_t)snprintf(name, sizeof(name), "UID %s", sub) >=
	    sizeof(name) || (def = command_find(uid_commands,
	    NITEMS(uid_commands), name)) == NULL) {
		sess_done(s, "BAD UID command is not supported");
		return;
	}
	s->cmd = def;
	def->fn(s, args + 1, nargs - 1);
}
