/*
 * The persistent state of one user: a SQLite database per user under the
 * state directory.
 *
 * One file per user rather than one per node: users never share rows, so
 * nothing is gained by one file, while separate files give each user their
 * own write lock (a long sync of one mailbox never stalls another user's
 * commit), confine damage from a bad disk block to one user, let
 * `imapmerge report` read a user while the daemon writes, and make
 * forgetting a user after the migration month an unlink.
 */
#ifndef PROXY_STATE_H
#define PROXY_STATE_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

struct state;

/* Creates dir (0700) and the user's file (0600) as needed. */
struct state	*state_open(const char *dir, const char *user,
		    char *err, size_t errlen);
void		 state_close(struct state **);
int		 state_schema_version(struct state *);

/* The file name a user's state lives in, relative to the state dir. */
char		*state_file_name(const char *user);

/*
 * Legacy folders that follow a renamed unified folder, or are hidden after
 * DELETE: the legacy server itself is never changed.  unified is NULL for a
 * hidden folder.  state_folder_follow() replaces any earlier entry.
 */
int		 state_folder_follow(struct state *, const char *legacy,
		    const char *unified);
typedef void	 state_folder_cb(const char *legacy, const char *unified,
		    void *arg);
int		 state_folder_each(struct state *, state_folder_cb *, void *);

/*
 * SUBSCRIBE and UNSUBSCRIBE said through imapmerge, by unified path: they
 * decide over what the servers say (folders.h, folder_subscribed).
 */
int		 state_sub_set(struct state *, const char *path, bool on);
typedef int	 state_sub_cb(const char *path, bool on, void *);
int		 state_sub_each(struct state *, state_sub_cb *, void *);

/*
 * Folder names on the new server that the user deleted through imapmerge:
 * a folder the copier creates again under such a name stays out of the
 * tree.  A CREATE or RENAME to the name through imapmerge clears it.
 */
int		 state_deleted_set(struct state *, const char *name,
		    bool deleted);
typedef int	 state_deleted_cb(const char *name, void *);
int		 state_deleted_each(struct state *, state_deleted_cb *, void *);

/* Small key/value settings (schema notes, last sync times...). */
int		 state_meta_set(struct state *, const char *key,
		    const char *value);
char		*state_meta_get(struct state *, const char *key);

/*
 * Merged mailboxes (view.c).  A unified folder has a row with its own
 * UIDVALIDITY and UIDNEXT, created on first use; each backend side's last
 * seen UIDVALIDITY/UIDNEXT/HIGHESTMODSEQ; one row per virtual message; and
 * tombstones by key hash.
 */
struct state_folder {
	int64_t		 id;
	uint32_t	 uidvalidity;
	uint32_t	 uidnext;
	int64_t		 synced;	/* last sync, seconds since 1970 */
	uint32_t	 side_uidvalidity[2];
	uint32_t	 side_uidnext[2];
	uint64_t	 side_modseq[2];
};

struct state_vmsg {
	uint32_t	 vuid;
	uint32_t	 uid[2];
	uint8_t		 flags[2];
	uint32_t	 size;
	uint32_t	 idate;
	const char	*keywords;
	const char	*lkey, *nkey, *nakey;
	uint64_t	 lkeyh, nkeyh, nakeyh;
	int		 want;		/* flags a copy still has to get, -1 */
};

/* Finds or creates path's row (a new UIDVALIDITY from the clock). */
int		 state_folder_get(struct state *, const char *path,
		    struct state_folder *);
/* The row of folder id as stored (-1 if there is none). */
int		 state_folder_read(struct state *, int64_t id,
		    struct state_folder *);
int		 state_folder_uidnext(struct state *, int64_t, uint32_t);
int		 state_folder_side(struct state *, int64_t, int side,
		    uint32_t uidvalidity, uint32_t uidnext, uint64_t modseq);
int		 state_folder_synced(struct state *, int64_t, int64_t when);
/* Moves a folder's rows to another path (RENAME). */
int		 state_folder_rename(struct state *, const char *from,
		    const char *to);
int		 state_folder_drop(struct state *, const char *path);

typedef int	 state_vmsg_cb(const struct state_vmsg *, void *);
typedef int	 state_tomb_cb(uint64_t keyh, void *);
int		 state_vmsg_each(struct state *, int64_t, state_vmsg_cb *,
		    void *);
int		 state_vmsg_insert(struct state *, int64_t,
		    const struct state_vmsg *);
/* One side's copy changed: uid 0 means it is gone.  Key texts NULL keep
 * what the row has. */
int		 state_vmsg_side(struct state *, int64_t, uint32_t vuid,
		    int side, uint32_t uid, uint8_t flags, const char *key,
		    uint64_t keyh, const char *akey, uint64_t akeyh);
/* keywords NULL: unchanged. */
int		 state_vmsg_flags(struct state *, int64_t, uint32_t vuid,
		    int side, uint8_t flags, const char *keywords);
int		 state_vmsg_delete(struct state *, int64_t, uint32_t vuid);
int		 state_vmsg_side_reset(struct state *, int64_t, int side);
/*
 * Key-only tombstones, written before schema 5: each hides every copy with
 * its key.  Still read and lifted; no longer added.
 */
int		 state_tomb_del(struct state *, int64_t, uint64_t keyh);
int		 state_tomb_each(struct state *, int64_t, state_tomb_cb *,
		    void *);

/*
 * A tombstone per virtual message the user deleted: its keys, and the
 * copy on each side it hides (0: none yet; the next copy of that message
 * the migration makes takes the place).
 */
struct state_grave {
	uint32_t	 vuid;
	uint64_t	 keyh[3];	/* legacy key, new key, new alias */
	uint32_t	 uid[2];
};
typedef int	 state_grave_cb(const struct state_grave *, void *);
int		 state_grave_add(struct state *, int64_t,
		    const struct state_grave *);
int		 state_grave_uid(struct state *, int64_t, uint32_t vuid,
		    int side, uint32_t uid);
/* The side's UIDVALIDITY changed: every copy comes again. */
int		 state_grave_reset(struct state *, int64_t, int side);
int		 state_grave_del(struct state *, int64_t, uint32_t vuid);
int		 state_grave_each(struct state *, int64_t, state_grave_cb *,
		    void *);

/* The key texts of side's copy of a message (caller frees; NULL: none). */
int		 state_vmsg_keys(struct state *, int64_t, uint32_t vuid,
		    int side, char **key, char **akey);
/* Flags the user set that a copy still has to get; -1: none. */
int		 state_vmsg_want(struct state *, int64_t, uint32_t vuid,
		    int flags);

/*
 * Moves in flight: a message of folder src being moved to dst, by its
 * key.  The row goes in before the copy is made and goes with the source
 * message once the copy is recorded; a row left over from a crash is
 * settled when dst is next synced (mailbox.c).
 */
struct state_move {
	const char	*src;
	uint32_t	 vuid;
	uint64_t	 keyh;
	int64_t		 at;
};
typedef int	 state_move_cb(const struct state_move *, void *);
int		 state_move_add(struct state *, const char *src, uint32_t vuid,
		    const char *dst, uint64_t keyh);
int		 state_move_del(struct state *, const char *src, uint32_t vuid);
int		 state_move_each(struct state *, const char *dst,
		    state_move_cb *, void *);

/*
 * Message-IDs (normalised) that the submission service relayed, and when:
 * an APPEND of the same message to Sent within a window is the client's
 * Sent copy of mail the new server files itself.  1 found, 0 not, -1 error.
 */
int		 state_sent_record(struct state *, const char *msgid,
		    int64_t when);
int		 state_sent_at(struct state *, const char *msgid,
		    int64_t *when);

/* Transactions, nestable by count; only the outermost commits. */
int		 state_begin(struct state *);
int		 state_commit(struct state *);
void		 state_rollback(struct state *);
/*
 * Runs fn(arg) once the transaction has really been rolled back: at once
 * outside one; inside, when the outermost ends (an inner level's rows are
 * still there until then, and memory read back from them would keep what
 * is about to vanish).  Dropped when it commits after all.  -1 when too
 * many wait.
 */
int		 state_after_rollback(struct state *, void (*)(void *),
		    void *);

#endif
