/*
 * A connection to one backend IMAP server, as a tagged command queue.
 *
 * backend_open() connects, reads the greeting, upgrades with STARTTLS where
 * configured, learns the capabilities, logs in (AUTHENTICATE PLAIN with an
 * initial response, LOGIN with literals, or AUTHENTICATE XOAUTH2 with a
 * token) and sends one cheap command, because Office 365 can accept a login
 * and fail the next command with "User is authenticated but not connected".
 * Then commands are queued with backend_cmd(); each gets the untagged
 * responses that arrive while it is the oldest in flight and, once, its
 * tagged completion.  The owner frees the backend; pending callbacks are
 * dropped, never called, after backend_free().
 */
#ifndef PROXY_BACKEND_H
#define PROXY_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "conf/config.h"

struct backend;
struct server;
struct imap_response;
struct imap_arg;
struct evbuffer;

enum backend_status {
	BACKEND_OK,
	BACKEND_NO,
	BACKEND_BAD,
	BACKEND_FAILED,		/* no answer: connection lost, timeout */
};

/* The tagged completion of a command (or the outcome of backend_open). */
struct backend_result {
	enum backend_status	 status;
	const char		*code;	/* response code name or NULL */
	const struct imap_arg	*code_args;	/* APPENDUID 1 2 */
	size_t			 ncode_args;
	const char		*text;	/* server text, or our reason */
	int			 auth_failed;	/* open: credentials refused */
	int			 throttled;	/* NO [UNAVAILABLE] for a BAD */
	uint64_t		 stream_left;	/* failed: literal bytes that
						   never came to the sink */
};

typedef void	 backend_done_cb(struct backend *, const struct backend_result *,
		    void *arg);
typedef void	 backend_data_cb(struct backend *, const struct imap_response *,
		    void *arg);

typedef void	 backend_lost_cb(struct backend *, const char *why,
		    void *arg);

struct backend	*backend_new(struct server *, enum backend_side,
		    const char *sid);
void		 backend_free(struct backend **);

/* password is NULL for xoauth2 backends (the token comes from the cache). */
void		 backend_open(struct backend *, const char *login,
		    const char *password, backend_done_cb *, void *arg);

/*
 * Queues "TAG <command>\r\n".  The command text must be complete IMAP
 * syntax; build it with imap_write.  data may be NULL.  done() is always
 * called from the event loop, never before backend_cmd() (or any of the
 * calls below) returns, not even when the connection is already gone.
 */
void		 backend_cmd(struct backend *, const char *command,
		    backend_data_cb *data, backend_done_cb *done, void *arg);

/*
 * Queues "TAG <prefix> <astring>..." with each string written as an atom,
 * quoted string or literal; literals wait for the server's "+" unless it
 * has LITERAL+.  At most three of the strings may need literals.
 */
void		 backend_cmd_astrings(struct backend *, const char *prefix,
		    const char *const *str, const size_t *len, size_t n,
		    backend_data_cb *data, backend_done_cb *done, void *arg);

/*
 * Like backend_cmd, but literals of 32 kB and more in its responses are
 * not held in memory: literal() is called with the response's arguments
 * so far (the innermost open list, at depth) and the literal's size, and
 * returns the evbuffer the bytes go to as they arrive; the completed
 * response then carries an IMAP_ARG_LITERAL_SIZE in the literal's place.
 * When that sink holds over 1 MB, reading from the server pauses until
 * backend_resume().
 */
typedef struct evbuffer *backend_literal_cb(struct backend *,
		    const struct imap_arg *, size_t, unsigned int depth,
		    uint64_t size, void *arg);
void		 backend_cmd_stream(struct backend *, const char *command,
		    backend_data_cb *data, backend_literal_cb *literal,
		    backend_done_cb *done, void *arg);
void		 backend_resume(struct backend *);
/*
 * IDLE on the backend where it offers it (-1 if not): untagged responses
 * go to data() until backend_idle_stop() or until another command is
 * queued, which sends DONE first.
 */
int		 backend_idle(struct backend *, backend_data_cb *data, void *arg);
void		 backend_idle_stop(struct backend *);
/*
 * The watch: once the connection has had no command for ms, it goes into
 * IDLE where the server offers it, untagged responses going to data(),
 * until the next command (renewed every poll-interval).  ms 0 ends it.
 * backend_watching(): that IDLE is on, and the server tells what changes.
 */
void		 backend_watch(struct backend *, unsigned int ms,
		    backend_data_cb *data, void *arg);
int		 backend_watching(const struct backend *);
int		 backend_paused(const struct backend *);

/*
 * Queues "TAG <prefix> {size}" followed by a literal whose bytes the
 * caller hands over with backend_upload_add() as it gets them, in any
 * number of pieces, then CRLF.  The server sees the literal as
 * non-synchronising where it offers LITERAL+, else the bytes wait in the
 * backend until its "+".  backend_upload_queued() counts the bytes
 * accepted but not yet written to the socket; drained() is called when
 * they fall below BACKEND_UPLOAD_LOW again.  One upload at a time.
 * done() gets the tagged answer, which may come before all bytes went
 * (a server that refuses at "{size}"): later backend_upload_add() calls
 * then return -1.
 */
#define BACKEND_UPLOAD_HIGH	(1024 * 1024)
#define BACKEND_UPLOAD_LOW	(256 * 1024)
typedef void	 backend_drained_cb(struct backend *, void *arg);
void		 backend_cmd_upload(struct backend *, const char *prefix,
		    uint64_t size, backend_data_cb *data,
		    backend_drained_cb *drained, backend_done_cb *done,
		    void *arg);
int		 backend_upload_add(struct backend *, struct evbuffer *,
		    size_t);
size_t		 backend_upload_queued(const struct backend *);
/* Gives up an upload half sent: the connection cannot go on, it fails. */
void		 backend_upload_abort(struct backend *);

/*
 * lost() hears, once, that an opened connection ended (timeout, EOF, BYE,
 * bad response), after its queued commands failed.  It may free b.
 */
void		 backend_on_lost(struct backend *, backend_lost_cb *, void *);
/* The backoff the server last asked for when throttling (ms, 0: never). */
unsigned int	 backend_backoff_ms(const struct backend *);

int		 backend_ready(const struct backend *);
int		 backend_has_cap(const struct backend *, const char *);
enum backend_side backend_side(const struct backend *);
const char	*backend_name(const struct backend *);	/* "legacy"/"new" */

#endif
