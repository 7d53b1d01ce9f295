/*
 * The configuration of one imapmerge process: the listeners it serves,
 * the two backends it merges (the legacy server and the new one) and the
 * policy knobs.  conf/parse.c reads the file described in docs/config.md
 * into a struct config.  The struct is open rather than opaque because it
 * is plain data that every module reads and nobody changes after loading;
 * a reload builds a new one.  A session keeps the configuration it started
 * with: config_ref() and config_unref() count its users (config_load
 * returns one with a single reference, the caller's).
 */

#ifndef CONF_CONFIG_H
#define CONF_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "conf/folder_names.h"

#define CONFIG_DEFAULT_PATH	"/etc/imapmerge/imapmerge.conf"

/* Errors kept per load, the last one being "too many errors". */
#define CONFIG_MAX_ERRORS	50

/*
 * config_load() flags.  CONFIG_NO_SYSTEM_CHECKS skips what looks at the
 * running machine (certificate, key and CA files readable, user and group
 * known): for tests, and for checking a config meant for another machine.
 */
#define CONFIG_NO_SYSTEM_CHECKS	0x01

enum backend_side {
	BACKEND_LEGACY = 0,
	BACKEND_NEW = 1
};
#define BACKEND_COUNT	2

enum tls_mode {
	TLSMODE_PLAIN,		/* backends in the test bed only */
	TLSMODE_TLS,		/* implicit TLS */
	TLSMODE_STARTTLS
};

enum listen_proto {
	LISTEN_IMAP,
	LISTEN_SUBMISSION,
	LISTEN_PROTO_COUNT
};

struct listen_conf {
	enum listen_proto	 proto;
	enum tls_mode		 tls;		/* TLS or STARTTLS, never plain */
	char			*host;		/* NULL: every address ("*") */
	uint16_t		 port;
	int			 allow_plaintext_auth;
	char			*text;		/* ADDR as written, for logs */
};

struct endpoint_conf {
	char			*host;		/* NULL: not configured */
	uint16_t		 port;
	enum tls_mode		 tls;
};

enum backend_auth {
	BACKEND_AUTH_PASSWORD,		/* the client's password, passed on */
	BACKEND_AUTH_XOAUTH2		/* a token from token_command */
};

struct backend_conf {
	enum backend_side	 side;
	struct endpoint_conf	 imap;
	struct endpoint_conf	 submission;	/* host NULL: none */
	char			*ca_file;	/* NULL: the system store */
	char			*username;	/* template, never NULL */
	enum backend_auth	 auth;
	char			*token_command;	/* template; set iff xoauth2 */
	int			 files_sent_copies;
};

enum legacy_writes {
	LEGACY_WRITES_NONE,
	LEGACY_WRITES_FLAGS,
	LEGACY_WRITES_ALL
};

/* A migration run copies again a message the user deleted. */
enum tombstone_action {
	TOMBSTONE_HIDE,			/* keep it out of the view */
	TOMBSTONE_EXPUNGE		/* and expunge it on the new server */
};

/* Keywords kept in the state store instead of on the new server. */
enum local_keywords {
	LOCAL_KEYWORDS_AUTO,		/* where PERMANENTFLAGS lacks \* */
	LOCAL_KEYWORDS_YES,
	LOCAL_KEYWORDS_NO
};

struct folder_role_conf {
	enum folder_role	 role;
	enum backend_side	 side;
	char			*name;		/* the server's name, UTF-8 */
};

struct send_via_conf {
	enum backend_side	 side;
	char			*pattern;
};

struct config {
	char			*path;
	char			*state_dir;
	int			 log_syslog;
	int			 log_level;	/* LOG_WARNING, LOG_INFO, LOG_DEBUG */
	char			*user;		/* NULL: keep running as is */
	char			*group;
	char			*tls_certificate;
	char			*tls_key;

	struct listen_conf	*listen;
	size_t			 nlisten;
	char			*status_host;	/* status-listen; NULL: none */
	uint16_t		 status_port;
	char			*status_text;	/* ADDR as written */

	unsigned int		 connect_timeout_ms;
	unsigned int		 command_timeout_ms;
	unsigned int		 poll_interval_ms;	/* IDLE: backend rescan */
	unsigned int		 backend_idle_after_ms;	/* 0: NOOP asks */
	uint64_t		 max_message_size;
	enum legacy_writes	 legacy_writes;
	enum tombstone_action	 tombstone_action;
	enum local_keywords	 local_keywords;
	unsigned int		 sent_copy_window_ms;	/* SMTP then APPEND */
	unsigned int		 sent_copy_wait_ms;	/* for the server's copy */
	int			 offline_auth;	/* legacy down: stored hash */
	unsigned int		 max_preauth_per_ip;	/* connections */
	unsigned int		 max_login_failures;	/* per IP, decaying */
	unsigned int		 shutdown_timeout_ms;	/* drain on SIGTERM */

	char			**hide_folder;
	size_t			 nhide_folder;
	struct folder_role_conf	*folder_role;
	size_t			 nfolder_role;
	struct send_via_conf	*send_via;	/* in file order */
	size_t			 nsend_via;

	struct backend_conf	 backend[BACKEND_COUNT];

	unsigned int		 refs;
};

/*
 * Every error of one load, each "FILE:LINE: message" (or "FILE: message"
 * when no line is to blame).  A message is NULL only if memory ran out
 * while making it.
 */
struct config_errors {
	size_t			 count;
	char			*msg[CONFIG_MAX_ERRORS];
};

/*
 * Both return NULL and fill errs on any error; errs is always initialised
 * and must be cleared with config_errors_clear().  NAME is what error
 * messages call the buffer.
 */
struct config		*config_load(const char *, int, struct config_errors *);
struct config		*config_parse_buffer(const char *, const char *, size_t,
			    int, struct config_errors *);
/* Drops every reference at once (the owner knows there are no others). */
void			 config_free(struct config **);
struct config		*config_ref(struct config *);
/* Drops one reference and sets *confp NULL; frees with the last. */
void			 config_unref(struct config **);
void			 config_errors_clear(struct config_errors *);

/*
 * Expand a username template for a client login: %u the login, %n the
 * part before its last "@" (all of it if none), %d the part after (empty
 * if none), %% a "%".  Allocates; NULL if out of memory or the template
 * is bad (config_load has refused bad ones).
 */
char			*config_expand_username(const char *, const char *);

/*
 * Expand a token-command template: %u becomes the backend username
 * quoted for /bin/sh, %% a "%".  Allocates; NULL as above.
 */
char			*config_expand_command(const char *, const char *);

/* The submission server for an envelope sender: first send-via match. */
enum backend_side	 config_route_sender(const struct config *,
			    const char *);
/* Glob match, "*" and "?", ASCII letters caseless. */
int			 config_glob_match(const char *, const char *);

/* Whether a unified path is hidden by a hide-folder statement. */
int			 config_folder_hidden(const struct config *, const char *);

const char		*config_side_name(enum backend_side);

#endif
