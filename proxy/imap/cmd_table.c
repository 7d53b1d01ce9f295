/*
 * The IMAP command table and the commands that need no backend:
 * CAPABILITY, LOGOUT, ID, ENABLE, NAMESPACE.
 *
 * Capabilities are what imapmerge itself implements, never a copy of a
 * backend's: a client that sees CONDSTORE would send commands that only
 * one of the two servers understands.
 */
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

static const struct imap_command_def commands[] = {
	{ "APPEND",		cmd_append,		ST_LOGGEDIN },
	{ "AUTHENTICATE",	cmd_authenticate,	ST_NOTAUTH },
	{ "CAPABILITY",		cmd_capability,		ST_ANY },
	{ "CHECK",		cmd_check,		ST_SELECTED },
	{ "CLOSE",		cmd_close,		ST_SELECTED },
	{ "COPY",		cmd_copy,		ST_SELECTED },
	{ "CREATE",		cmd_create,		ST_LOGGEDIN },
	{ "DELETE",		cmd_delete,		ST_LOGGEDIN },
	{ "ENABLE",		cmd_enable,		ST_AUTH },
	{ "EXAMINE",		cmd_examine,		ST_LOGGEDIN },
	{ "EXPUNGE",		cmd_expunge,		ST_SELECTED },
	{ "FETCH",		cmd_fetch,		ST_SELECTED },
	{ "ID",			cmd_id,			ST_ANY },
	{ "IDLE",		cmd_idle,		ST_LOGGEDIN },
	{ "LIST",		cmd_list,		ST_LOGGEDIN },
	{ "LOGIN",		cmd_login,		ST_NOTAUTH },
	{ "LOGOUT",		cmd_logout,		ST_ANY },
	{ "LSUB",		cmd_lsub,		ST_LOGGEDIN },
	{ "MOVE",		cmd_move,		ST_SELECTED },
	{ "NAMESPACE",		cmd_namespace,		ST_LOGGEDIN },
	{ "NOOP",		cmd_noop,		ST_ANY },
	{ "RENAME",		cmd_rename,		ST_LOGGEDIN },
	{ "SEARCH",		cmd_search,		ST_SELECTED },
	{ "SELECT",		cmd_select,		ST_LOGGEDIN },
	{ "STARTTLS",		cmd_starttls,		ST_NOTAUTH },
	{ "STATUS",		cmd_status,		ST_LOGGEDIN },
	{ "STORE",		cmd_store,		ST_SELECTED },
	{ "SUBSCRIBE",		cmd_subscribe,		ST_LOGGEDIN },
	{ "UID",		cmd_uid,		ST_SELECTED },
	{ "UNSELECT",		cmd_unselect,		ST_SELECTED },
	{ "UNSUBSCRIBE",	cmd_unsubscribe,	ST_LOGGEDIN },
};

const struct imap_command_def *
sess_command_find(const char *name)
{
	size_t	 i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcasecmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}
