/*
 * Per-user context shared by all of a user's sessions (DESIGN §1): the
 * state store and the open merged mailboxes, so that two clients of one
 * user see the same UIDs and hear of each other's changes.
 */
#ifndef PROXY_USER_H
#define PROXY_USER_H

#include <stddef.h>

struct server;
struct state;
struct mbox;

struct user {
	struct user	*next, **prevp;		/* srv->users */
	struct server	*srv;
	char		*name;
	int		 refs;
	struct state	*store;
	struct mbox	*mboxes;		/* open ones, mailbox.c */
};

/* The user's context, opened on first use; NULL with err on failure. */
struct user	*user_get(struct server *, const char *name, char *err,
		    size_t errlen);
/* Drops a reference; the last one closes the store. */
void		 user_put(struct user **);

#endif
