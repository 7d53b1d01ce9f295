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

/* Small key/value settings (schema notes, last sync times...). */
int		 state_meta_set(struct state *, const char *key,
		    const char *value);
char		*state_meta_get(struct state *, const char *key);

/* Transactions, nestable by count; only the outermost commits. */
int		 state_begin(struct state *);
int		 state_commit(struct state *);
void		 state_rollback(struct state *);

#endif
