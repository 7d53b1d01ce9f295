/*
 * The inside of an IMAP client session, shared by session.c (connection,
 * input, dispatch) and the command handlers (cmd_*.c).  Nothing outside
 * proxy/ includes this.
 */
#ifndef PROXY_SESSION_IMPL_H
#define PROXY_SESSION_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/config.h"
#include "proxy/core/auth.h"
#include "proxy/merge/mailbox.h"

struct bufferevent;
struct event;
struct evbuffer;
struct imap_arg;
struct imap_parser;
struct backend;
struct folders;
struct state;
struct server;
struct listen_conf;
struct user;
struct selected;
struct sync;
struct mbox;
struct view;
struct append_req;
struct backend_result;
struct offline_job;

/* One backend connection's upkeep after login (relink.c). */
struct sess_link {
	struct event		*timer;		/* next reconnect attempt */
	struct backend		*pending;	/* opening; swapped in when up */
	unsigned int		 tries;
	long long		 down_since;	/* seconds since 1970, 0: up */
	bool			 folders_stale;	/* tree built without it */
};

enum sess_state {
	SESS_NOTAUTH,
	SESS_AUTHENTICATING,	/* credentials in, backends logging in */
	SESS_AUTH,
	SESS_SELECTED,
	SESS_LOGOUT,
	SESS_STATE_COUNT
};

enum sess_input {
	IN_COMMAND,
	IN_AUTH_LINE,		/* AUTHENTICATE: next line is SASL data */
	IN_IDLE,		/* IDLE: waiting for DONE */
	IN_APPEND,		/* APPEND: a message streaming in */
};

struct imap_session {
	struct imap_session	*next, **prevp;	/* srv->sessions */
	char			 sid[20];
	struct server		*srv;
	struct config		*conf;		/* a reference, kept on reload */
	const struct listen_conf *lc;
	struct bufferevent	*bev;
	struct imap_parser	*parser;
	char			 peer[64];
	int			 peer_port;
	int			 tls;
	enum sess_state		 state;
	enum sess_input		 inmode;
	int			 busy;		/* a command is running */
	int			 closing;
	int			 flushing;	/* closing, output left */
	int			 flush_tries;
	struct event		*flush_timer;
	int			 refs;
	unsigned int		 bad_commands;
	char			*tag;		/* of the running command */

	struct auth		*auth;
	struct credentials	 cred;
	char			*user;		/* login name, once known */
	/* The merge layer's view of the session: user, backends (be[]),
	 * folder tree, selected folder (sel, SESS_SELECTED), sync. */
	struct mbox_client	 mc;
	int			 be_pending;	/* opens/commands outstanding */
	struct state		*store;		/* mc.u's, borrowed */
	struct event		*idle_poll;	/* IDLE's poll-interval timer */
	char			*cmd_text;	/* a running command's own */
	void			*cmd_arg;
	void			(*cmd_arg_free)(void *); /* if the session
					 * goes while cmd_arg waits on a server */
	void			*login;		/* login progress, cmd_auth.c */
	struct append_req	*append;	/* APPEND in progress */
	struct sess_link	 link[BACKEND_COUNT];
	struct offline_job	*offline;	/* a hash being made or checked */
	struct event		*delay;		/* a failed login's answer */
	bool			 preauth;	/* counted by abuse.c */
	bool			 login_online;	/* the legacy server said yes */
	const struct imap_command_def *cmd;	/* running, NULL between */
};

/*
 * Command table entry (cmd_table.c): the states a command is allowed in
 * are bits (1 << SESS_*); its flags say what it does to sequence numbers,
 * as Dovecot's COMMAND_FLAG_USES_SEQS and COMMAND_FLAG_BREAKS_SEQS, and
 * with that, what of the selected folder's news the client hears when it
 * ends (sess_news()).
 */
struct imap_command_def {
	const char	*name;
	void		(*fn)(struct imap_session *, const struct imap_arg *,
			    size_t);
	unsigned int	 states;
	unsigned int	 flags;
};

/*
 * Its answers number messages, and the client reads them by those numbers
 * as they come: no EXPUNGE may go out while it runs or as it ends (RFC
 * 9051 §7.5.1: never during FETCH, STORE or SEARCH); new messages and
 * flags may.
 */
#define CMD_USES_SEQS	0x01
/* It may renumber, or is there to hear of changes: as it ends, the client
 * hears everything, EXPUNGE included. */
#define CMD_BREAKS_SEQS	0x02
/* A UID command: every FETCH it causes carries the UID (RFC 9051
 * §6.4.9), the flags it changed told as it ends too. */
#define CMD_UID		0x04

#define ST_NOTAUTH	(1u << SESS_NOTAUTH)
#define ST_AUTH		(1u << SESS_AUTH)
#define ST_SELECTED	(1u << SESS_SELECTED)
#define ST_ANY		(ST_NOTAUTH | ST_AUTH | ST_SELECTED)
#define ST_LOGGEDIN	(ST_AUTH | ST_SELECTED)

/* session.c */
void		 sess_enter(struct imap_session *, enum sess_state);
void		 sess_printf(struct imap_session *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
void		 sess_done(struct imap_session *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
void		 sess_done_quiet(struct imap_session *, const char *);
void		 sess_close(struct imap_session *, const char *);
void		 sess_hold(struct imap_session *);
int		 sess_release(struct imap_session *);
void		 sess_dispatch(struct imap_session *, const char *tag,
		    const char *name, const struct imap_arg *, size_t);
void		 sess_syntax_error(struct imap_session *, const char *tag,
		    const char *why);
void		 sess_starttls(struct imap_session *);
void		 sess_authenticated(struct imap_session *);
void		 sess_write_buffer(struct imap_session *, struct evbuffer *);
/*
 * The one place that tells the client what changed in its selected
 * folder: at the end of each command (sess_done), and while IDLE runs.
 * The running command's flags decide what may go out now.
 */
void		 sess_news(struct imap_session *);
/* Reads the client's input again after a pause (a full upload). */
void		 sess_resume_input(struct imap_session *);

/* session_parse.c: the only place that knows the parser's API */
struct imap_parser *sess_parser_new(void);
void		 sess_parser_relax(struct imap_session *);
int		 sess_parse_command(struct imap_session *, struct evbuffer *);
int		 sess_auth_line(struct imap_session *, struct evbuffer *);

/* cmd_table.c */
const struct imap_command_def *sess_command_find(const char *);
const char	*sess_capabilities(const struct imap_session *);

/* Command handlers (cmd_*.c). */
#define CMD_FN(name) \
	void name(struct imap_session *, const struct imap_arg *, size_t)
CMD_FN(cmd_starttls);
CMD_FN(cmd_login);
CMD_FN(cmd_authenticate);
CMD_FN(cmd_list);
CMD_FN(cmd_lsub);
CMD_FN(cmd_create);
CMD_FN(cmd_delete);
CMD_FN(cmd_rename);
CMD_FN(cmd_subscribe);
CMD_FN(cmd_unsubscribe);
CMD_FN(cmd_select);
CMD_FN(cmd_examine);
CMD_FN(cmd_status);
CMD_FN(cmd_fetch);
CMD_FN(cmd_uid_fetch);
CMD_FN(cmd_check);
CMD_FN(cmd_close);
CMD_FN(cmd_unselect);
CMD_FN(cmd_idle);
CMD_FN(cmd_noop);
CMD_FN(cmd_store);
CMD_FN(cmd_expunge);
CMD_FN(cmd_uid_store);
CMD_FN(cmd_uid_expunge);
CMD_FN(cmd_search);
CMD_FN(cmd_uid_search);
CMD_FN(cmd_append);
CMD_FN(cmd_copy);
CMD_FN(cmd_move);
CMD_FN(cmd_uid_copy);
CMD_FN(cmd_uid_move);
#undef CMD_FN

/* cmd_idle.c */
int		 sess_idle_line(struct imap_session *, struct evbuffer *);
/* In IDLE: sync the folder now (a backend came back). */
void		 sess_idle_kick(struct imap_session *);

/* cmd_append.c: messages at least this big stream in */
#define SESS_APPEND_STREAM_MIN	(64 * 1024)
int		 sess_append_begin(struct imap_session *, struct imap_parser *);
const char	*sess_append_precheck(struct imap_session *,
		    struct imap_parser *);
int		 sess_append_input(struct imap_session *, struct imap_parser *,
		    struct evbuffer *);
void		 sess_append_free(struct imap_session *);
/* CREATE of a folder's part on the new server; sess_new_made() on the
 * answer (ALREADYEXISTS counts). */
void		 sess_new_create(struct backend *, const char *wire,
		    void (*done)(struct backend *,
		    const struct backend_result *, void *), void *);
bool		 sess_new_made(const struct backend_result *);
/* "APPEND wire (flags keywords) "date"" without the literal (free it). */
char		*sess_new_append(const struct backend *, const char *wire,
		    uint8_t flags, const char *keywords, const char *date);

/* relink.c: after login, a lost backend is opened again with backoff,
 * the selected folder selected again on it and synced. */
void		 sess_links_start(struct imap_session *);
void		 sess_links_free(struct imap_session *);
/* Called when a command ends: work a relink left for a quiet moment. */
void		 sess_links_idle(struct imap_session *);
bool		 sess_side_up(const struct imap_session *, int side);

/* cmd_auth.c */
void		 sess_auth_step(struct imap_session *, const char *);
void		 sess_login_reset(struct imap_session *);

/* cmd_folders.c */
void		 sess_login_folders(struct imap_session *);
void		 sess_folders_free(struct imap_session *);
char		*sess_mailbox_arg(const struct imap_arg *, const char **why);
/* At a command's start: the user's newest folder tree. */
void		 sess_folders_current(struct imap_session *);
/* Reads the folder lists again; cb (may be NULL) hears if it worked. */
void		 sess_folders_refresh(struct imap_session *,
		    void (*cb)(struct imap_session *, int));

#endif
