/*
 * The inside of merged mailboxes, shared by mailbox.c (open views,
 * sequence numbers, news), sync.c (the sync against both servers) and the
 * IMAP commands that work on a selected folder.  Nothing outside proxy/
 * includes it.
 */
#ifndef PROXY_MERGE_MAILBOX_IMPL_H
#define PROXY_MERGE_MAILBOX_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/net/backend.h"
#include "proxy/merge/mailbox.h"

struct imap_response;
struct sync;
struct user;
struct view;

/* One open unified folder of one user, shared by the user's sessions. */
struct mbox {
	struct mbox		*next;		/* user->mboxes */
	struct user		*u;
	char			*path;
	int64_t			 fid;
	int			 refs;
	struct view		*v;
	struct selected		*sessions;	/* that have it selected */
};

/* A session's selected folder. */
struct selected {
	struct selected		*mb_next;
	struct mbox_client	*c;
	struct mbox		*mb;
	char			*path;
	bool			 readonly;
	uint32_t		*vuids;		/* seq - 1 -> vuid */
	size_t			 n, cap;
	uint32_t		 modseq;	/* flag changes told up to */
	uint32_t		 expunges;	/* view_expunges() told */
	size_t			 kwsets;	/* view_keyword_sets() seen */
	char			*keywords;	/* the keywords told */
	mbox_sync_cb		*after;		/* SELECT's callback */
	long long		 synced_ms;	/* last full sync (clock_ms) */
	/* mbox_check(): NOOPs out to the backends, and what they said. */
	int			 checking;
	bool			 check_news;
	bool			 pushed;	/* news from a watching server */
	mbox_sync_cb		*check_cb;
};

/* What a FETCH response said about one message. */
struct fetch_row {
	uint32_t		 uid, size, idate;
	bool			 has_flags;
	uint8_t			 flags;
	char			 keywords[512];
	const char		*hdr;
	size_t			 hdrlen;
};

struct scan_row {
	uint32_t		 uid;
	uint8_t			 flags;
	char			*keywords;
};

void		 mbox_fetch_items(const struct imap_response *,
		    struct fetch_row *);
uint32_t	 mbox_parse_idate(const char *);
void		 mbox_format_idate(uint32_t, char *, size_t);
struct evbuffer;
struct vmsg;
/* "(\\Seen $Forwarded)" as shown for m. */
void		 mbox_write_flags(struct evbuffer *, const struct view *,
		    const struct vmsg *);
struct msgkey;
struct bmsg;
/* The pairing key and alias of a message on side. */
void		 mbox_keys(const struct msgkey *, int side, const char **key,
		    const char **akey);
/*
 * Messages imapmerge put on side of path's folder (UIDVALIDITY as the
 * server said): into the view now; vuids[] gets each one's vuid (0 if it
 * is hidden) and *vuidvalidity the folder's.  -1 when they cannot be
 * recorded now (a sync finds them).
 */
int		 mbox_record(struct mbox_client *, const char *path, int side,
		    uint32_t uidvalidity, const struct bmsg *, size_t,
		    uint32_t *vuids, uint32_t *vuidvalidity);
struct backend;
struct backend_result;
/*
 * Removes exactly these messages from the folder selected on b:
 * \Deleted, then UID EXPUNGE (plain EXPUNGE on a server without
 * UIDPLUS).  done (may be NULL) gets the expunge's answer.
 */
void		 mbox_expunge_uids(struct backend *, const uint32_t *, size_t,
		    void (*done)(struct backend *,
		    const struct backend_result *, void *), void *);
/* qsort() order of struct bmsg: by UID. */
int		 mbox_bmsg_cmp(const void *, const void *);
/* Cached views follow a RENAME (to) or go with a DELETE (to NULL). */
void		 mbox_renamed(struct user *, const char *from, const char *to);
/* Frees the user's cached views (the user context is going). */
void		 mbox_free_all(struct user *);
/* The user's view of path, opened if need be (a reference); NULL on a
 * store error.  mbox_put drops it; the view stays cached (user.h). */
struct mbox	*mbox_get(struct user *, const char *path);
void		 mbox_put(struct mbox **);
/* The servers serving c's selected folder watch it in IDLE (or not). */
void		 mbox_sel_watch(struct mbox_client *, bool on);
struct ufolder;
/*
 * sync.c: a sync of mb on c's connections; c keeps it in c->sync and cb
 * hears how it went.  mbox_sync_free drops one (its session is going).
 */
void		 mbox_sync_start(struct mbox_client *, struct mbox *,
		    const struct ufolder *, bool readonly, mbox_sync_cb *);
void		 mbox_sync_free(struct sync *);
/* SELECT or EXAMINE of f's part on side, first in c's queue there; false
 * if impossible (the connection is down, the name cannot be sent). */
bool		 mbox_select_cmd(struct mbox_client *, const struct ufolder *,
		    int side, bool readonly, backend_data_cb *,
		    backend_done_cb *, void *);
/* The view changed (by a command or sync of `by`, NULL: of nobody's):
 * the watchers of the other sessions that have it selected hear of it. */
void		 mbox_changed(struct mbox *, struct mbox_client *by);

#endif
