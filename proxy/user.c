/*
 * Per-user contexts (see user.h).  A user has few sessions at a time, and
 * a node few hundred users, so a list is enough.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/server.h"
#include "proxy/state.h"
#include "proxy/user.h"

struct user *
user_get(struct server *srv, const char *name, char *err, size_t errlen)
{
	struct user	*u;

	for (u = srv->users; u != NULL; u = u->next)
		if (strcmp(u->name, name) == 0) {
			u->refs++;
			return u;
		}
	if ((u = calloc(1, sizeof(*u))) == NULL ||
	    (u->name = strdup(name)) == NULL) {
		free(u);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if ((u->store = state_open(srv->conf->state_dir, name, err,
	    errlen)) == NULL) {
		free(u->name);
		free(u);
		return NULL;
	}
	u->srv = srv;
	u->refs = 1;
	if ((u->next = srv->users) != NULL)
		u->next->prevp = &u->next;
	srv->users = u;
	u->prevp = &srv->users;
	return u;
}

void
user_put(struct user **up)
{
	struct user	*u = *up;

	*up = NULL;
	if (u == NULL || --u->refs > 0)
		return;
	if ((*u->prevp = u->next) != NULL)
		u->next->prevp = u->prevp;
	state_close(&u->store);
	free(u->name);
	free(u);
}
