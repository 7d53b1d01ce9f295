/*
 * Per-user context shared by all of a user's sessions (DESIGN §1): the
 * state store and the open merged mailboxes, so that two clients of one
 * user see the same UIDs and hear of each other's changes.
 */
#ifndef PROXY_MERGE_USER_H
#define PROXY_MERGE_USER_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/merge/offline.h"

struct server;
struct state;
struct mbox;

struct event;
struct bfolder;
struct folders;

/* A side's folder list as last seen, for a login while that side is down. */
struct user_list {
	struct bfolder	*f;
	size_t		 n;
	char		*prefix;
	bool		 known;
};

struct user {
	struct user	*next, **prevp;		/* srv->users */
	struct server	*srv;
	char		*name;
	int		 refs;
	struct state	*store;
	struct mbox	*mboxes;		/* open ones, mailbox.c */
	struct event	*linger;		/* armed while refs == 0 */
	struct user_list lists[2];		/* as last seen, per side */
	char		*lists_saved[2];	/* what the state holds */
	/* The folder tree as last read from the servers: a session takes it
	 * at its next command. */
	struct folders	*folders;
	/* offline_memo() of the password last hashed into the store */
	unsigned char	 memo[OFFLINE_MEMO_LEN];
	unsigned char	 memo_pending[OFFLINE_MEMO_LEN];
	bool		 memo_set;
	bool		 hashing;		/* a hash being made */
};

/*
 * A user's context outlives their last session by USER_LINGER_S: mail
 * clients reconnect all the time, and a 100,000-message view is cheaper
 * to keep for a while than to read back from SQLite.
 */
#define USER_LINGER_S	300

/* The user's context, opened on first use; NULL with err on failure. */
struct user	*user_get(struct server *, const char *name, char *err,
		    size_t errlen);
/* The context only if the user has a state file already (offline
 * login: a user never seen has no hash, and gets no file). */
struct user	*user_get_existing(struct server *, const char *name,
		    char *err, size_t errlen);
void		 user_list_clear(struct user_list *);
/* The newest folder tree; u keeps a reference. */
void		 user_folders_set(struct user *, struct folders *);
/* A deep copy into dst (cleared first); -1 out of memory, dst empty. */
int		 user_list_copy(struct user_list *, const struct user_list *);
/*
 * The side's folder list as last seen is kept in the user's state too, so
 * that a login while that side is down, after a restart or once the
 * context has gone, still shows its folders and messages.  Save writes
 * only a list that changed; load fills u->lists[side] (known) if the state
 * has one.  -1 on a state error.
 */
int		 user_list_save(struct user *, int side);
int		 user_list_load(struct user *, int side);
/* Drops a reference; the context goes USER_LINGER_S after the last. */
void		 user_put(struct user **);
/* Frees every context now (shutdown). */
void		 users_free_all(struct server *);
/* The same after the hashing worker stopped (the daemon's exit). */
void		 users_shutdown(struct server *);
struct evbuffer;
/* How many users have a session (status endpoint). */
void		 users_metrics(struct server *, struct evbuffer *);

#endif
