/*
 * Merged mailboxes as a session sees them (DESIGN §4-6): the shared view
 * of a unified folder per user, its sync against both backends, and the
 * per-session sequence numbers and notifications.
 */
#ifndef PROXY_MAILBOX_H
#define PROXY_MAILBOX_H

#include <stdbool.h>
#include <stdint.h>

struct imap_response;
struct imap_session;
struct ufolder;
struct view;

typedef void	 mbox_sync_cb(struct imap_session *, bool ok, const char *why);

/*
 * Opens the view of folder f for s (shared with the user's other sessions
 * that have it open), selects its backing folders on s's backends and
 * brings the view up to date.  cb runs once, unless s is freed first.
 */
void		 mbox_select(struct imap_session *, const struct ufolder *,
		    bool readonly, mbox_sync_cb *);
/* Syncs the selected folder again (CHECK, IDLE polls). */
void		 mbox_resync(struct imap_session *, mbox_sync_cb *);
/*
 * NOOP: asks the backends whether anything changed (a NOOP each), except
 * those watching the folder in IDLE (backend-idle-after), which have told
 * already; syncs only on news, or if the last sync is older than
 * poll-interval.
 */
void		 mbox_check(struct imap_session *, mbox_sync_cb *);
/* Untagged data from a server that says its folder changed. */
bool		 mbox_is_news(const struct imap_response *);
/* Selects the selected folder's part on side again (a relinked backend). */
void		 mbox_reselect_side(struct imap_session *, int side);
/* Leaves the selected folder (UNSELECT, CLOSE, SELECT of another). */
void		 mbox_close(struct imap_session *);

/*
 * Untagged EXPUNGE/EXISTS/FETCH FLAGS for what changed in the view since
 * s last heard; expunges only where the client may receive them.
 */
void		 mbox_notify(struct imap_session *, bool expunges);

/* The selected view and the session's sequence numbers. */
struct view	*mbox_view(struct imap_session *);
uint32_t	 mbox_count(struct imap_session *);
uint32_t	 mbox_seq_vuid(struct imap_session *, uint32_t seq);
bool		 mbox_readonly(struct imap_session *);
/*
 * The messages a sequence set (uid: a UID set) names, as sequence
 * numbers in order; *seqs (n + 1 long) is the caller's.  false and *err
 * on a bad set.
 */
bool		 mbox_targets(struct imap_session *, const char *set, bool uid,
		    uint32_t **seqs, size_t *n, const char **err);
/* Keywords of the selected folder are kept by imapmerge (local-keywords). */
bool		 mbox_local_keywords(struct imap_session *);

/* A one-shot STATUS of a folder that s may not have selected. */
typedef void	 mbox_status_cb(struct imap_session *, bool ok,
		    struct view *, const char *why);
void		 mbox_status(struct imap_session *, const struct ufolder *,
		    mbox_status_cb *);

#endif
