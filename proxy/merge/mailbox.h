/*
 * Merged mailboxes as a session sees them (DESIGN §4-6): the shared view
 * of a unified folder per user, its sync against both backends, and the
 * per-session sequence numbers and news.
 *
 * The merge layer knows a session only as a struct mbox_client, which the
 * session embeds, and talks back to it only through the client's watcher
 * (callbacks and an opaque pointer, as libevent does): it never writes to
 * a client.  What the client is told, and when, is the session's business
 * (mbox_news() writes the news where the session asks).
 */
#ifndef PROXY_MERGE_MAILBOX_H
#define PROXY_MERGE_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/config.h"

struct backend;
struct config;
struct event_base;
struct evbuffer;
struct folders;
struct imap_response;
struct mbox;
struct mbox_client;
struct selected;
struct sync;
struct ufolder;
struct user;
struct view;

/* The system flags every folder takes (RFC 9051 §2.3.2). */
#define MBOX_SYSTEM_FLAGS "\\Answered \\Flagged \\Deleted \\Seen \\Draft"

typedef void	 mbox_sync_cb(struct mbox_client *, bool ok, const char *why);
typedef void	 mbox_status_cb(struct mbox_client *, bool ok, struct view *,
		    const char *why);

/* What a session hears from the merge layer; arg is the client's. */
struct mbox_watcher {
	/*
	 * The view of the selected folder changed through someone else (a
	 * sync or a command of another session): news wait in mbox_news().
	 */
	void	(*changed)(void *arg);
	/* A sync has been running for a while; n messages read so far. */
	void	(*progress)(void *arg, size_t n);
};

/*
 * A session as the merge layer knows it: whose mail it is, the session's
 * own connections to the servers and folder tree, and what it has open.
 * The session fills in the first part and sets be[], u and folders as it
 * logs in; the rest belongs to mailbox.c.
 */
struct mbox_client {
	const char		*sid;		/* the session's, for the log */
	const struct config	*conf;		/* the session's */
	struct event_base	*base;
	const struct mbox_watcher *watcher;
	void			*arg;		/* the watcher's, the session */

	struct user		*u;		/* shared with other sessions */
	struct backend		*be[BACKEND_COUNT];
	struct folders		*folders;

	struct selected		*sel;		/* the selected folder */
	char			*opened[BACKEND_COUNT];	/* the part each
					 * backend was last asked to select */
	struct sync		*sync;		/* running */
	struct mbox		*status_mb;	/* STATUS in progress */
	mbox_status_cb		*status_cb;
};

/* A connection to side is logged in and ready for commands. */
bool		 mbox_side_up(const struct mbox_client *, int side);
/* The selected folder has a part on side that holds messages. */
bool		 mbox_serves(const struct mbox_client *, int side);

/*
 * Opens the view of folder f for c (shared with the user's other sessions
 * that have it open), selects its backing folders on c's backends and
 * brings the view up to date.  cb runs once, unless c is freed first.
 */
void		 mbox_select(struct mbox_client *, const struct ufolder *,
		    bool readonly, mbox_sync_cb *);
/* Syncs the selected folder again (CHECK, IDLE polls). */
void		 mbox_resync(struct mbox_client *, mbox_sync_cb *);
/*
 * NOOP: asks the backends whether anything changed (a NOOP each), except
 * those watching the folder in IDLE (backend-idle-after), which have told
 * already; syncs only on news, or if the last sync is older than
 * poll-interval.
 */
void		 mbox_check(struct mbox_client *, mbox_sync_cb *);
/* News that a watching server pushed wait for the next NOOP or IDLE. */
bool		 mbox_pushed(const struct mbox_client *);
/* Untagged data from a server that says its folder changed. */
bool		 mbox_is_news(const struct imap_response *);
/* Selects the selected folder's part on side again (a relinked backend). */
void		 mbox_reselect_side(struct mbox_client *, int side);
/* Leaves the selected folder (UNSELECT, CLOSE, SELECT of another). */
void		 mbox_close(struct mbox_client *);
/*
 * Before a command that removes the part name of side (DELETE): if c's
 * backend has it selected, UNSELECT it there first, so that the server
 * does not end the connection for a selected folder that vanished.
 */
void		 mbox_release_part(struct mbox_client *, int side,
		    const char *name);
/* Frees what c holds here (the session is going). */
void		 mbox_client_free(struct mbox_client *);

/*
 * The untagged EXPUNGE, EXISTS and FETCH FLAGS that tell c what changed
 * in the selected view since c last heard, into out; EXPUNGE only with
 * expunges (RFC 9051 §7.5.1: the session knows when it may), the UID in
 * each FETCH with uids (a UID command's).
 */
void		 mbox_news(struct mbox_client *, bool expunges, bool uids,
		    struct evbuffer *out);

/*
 * FLAGS and PERMANENTFLAGS with the keywords the folder's messages carry
 * (RFC 9051 §7.3.5), into out, when one appeared that c was not told of
 * yet: before a FETCH that shows it.  mbox_news() begins with this.
 */
void		 mbox_news_keywords(struct mbox_client *, struct evbuffer *out);
/*
 * " $Forwarded $Junk": the keywords in use, each after a space, counted
 * as told to c (SELECT tells them; elsewhere mbox_news_keywords() first).
 */
const char	*mbox_keywords(struct mbox_client *);

/* The selected view and the session's sequence numbers. */
struct view	*mbox_view(struct mbox_client *);
uint32_t	 mbox_count(struct mbox_client *);
uint32_t	 mbox_seq_vuid(struct mbox_client *, uint32_t seq);
bool		 mbox_readonly(struct mbox_client *);
/*
 * The messages a sequence set (uid: a UID set) names, as sequence
 * numbers in order; *seqs (n + 1 long) is the caller's.  false and *err
 * on a bad set.
 */
bool		 mbox_targets(struct mbox_client *, const char *set, bool uid,
		    uint32_t **seqs, size_t *n, const char **err);
/* Keywords of the selected folder are kept by imapmerge (local-keywords). */
bool		 mbox_local_keywords(struct mbox_client *);

/* A one-shot STATUS of a folder that c may not have selected. */
void		 mbox_status(struct mbox_client *, const struct ufolder *,
		    mbox_status_cb *);

#endif
