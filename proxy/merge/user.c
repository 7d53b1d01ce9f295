/*
 * Per-user contexts (see user.h).  A user has few sessions at a time, and
 * a node few hundred users, so a list is enough.
 */
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "proxy/core/server.h"
#include "proxy/core/status.h"
#include "proxy/merge/folders.h"
#include "proxy/merge/mailbox_impl.h"
#include "proxy/merge/state.h"
#include "proxy/merge/user.h"

struct user *
user_get(struct server *srv, const char *name, char *err, size_t errlen)
{
	struct user	*u;

	for (u = srv->users; u != NULL; u = u->next)
		if (strcmp(u->name, name) == 0) {
			if (u->refs++ == 0 && u->linger != NULL)
				evtimer_del(u->linger);
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

struct user *
user_get_existing(struct server *srv, const char *name, char *err,
    size_t errlen)
{
	struct user	*u;
	struct stat	 sb;
	char		*file, *path = NULL;
	int		 exists;

	for (u = srv->users; u != NULL; u = u->next)
		if (strcmp(u->name, name) == 0)
			return user_get(srv, name, err, errlen);
	if ((file = state_file_name(name)) == NULL ||
	    asprintf(&path, "%s/%s", srv->conf->state_dir, file) == -1) {
		free(file);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	exists = stat(path, &sb) == 0;
	free(file);
	free(path);
	if (!exists) {
		snprintf(err, errlen, "no state for this user");
		return NULL;
	}
	return user_get(srv, name, err, errlen);
}

void
user_list_clear(struct user_list *l)
{
	size_t	 i;

	for (i = 0; i < l->n; i++)
		free(l->f[i].name);
	free(l->f);
	free(l->prefix);
	memset(l, 0, sizeof(*l));
}

int
user_list_copy(struct user_list *dst, const struct user_list *src)
{
	size_t	 i;

	user_list_clear(dst);
	if ((src->n > 0 && (dst->f = calloc(src->n, sizeof(*dst->f))) ==
	    NULL) || (src->prefix != NULL &&
	    (dst->prefix = strdup(src->prefix)) == NULL))
		goto fail;
	for (i = 0; i < src->n; i++) {
		dst->f[i] = src->f[i];
		if ((dst->f[i].name = strdup(src->f[i].name)) == NULL)
			goto fail;
		dst->n++;
	}
	dst->known = src->known;
	return 0;
 fail:
	user_list_clear(dst);
	return -1;
}

static void
user_free(struct user *u)
{
	int	 side;

	if ((*u->prevp = u->next) != NULL)
		u->next->prevp = u->prevp;
	mbox_free_all(u);
	if (u->linger != NULL)
		event_free(u->linger);
	state_close(&u->store);
	for (side = 0; side < 2; side++)
		user_list_clear(&u->lists[side]);
	folders_free(&u->folders);
	free(u->name);
	free(u);
}

static void
user_expire(evutil_socket_t fd, short what, void *arg)
{
	struct user	*u = arg;

	if (u->refs == 0)
		user_free(u);
}

void
user_put(struct user **up)
{
	struct user	*u = *up;
	struct timeval	 tv = { USER_LINGER_S, 0 };

	*up = NULL;
	if (u == NULL || --u->refs > 0)
		return;
	if (u->linger == NULL)
		u->linger = evtimer_new(u->srv->base, user_expire, u);
	if (u->linger == NULL || evtimer_add(u->linger, &tv) == -1)
		user_free(u);
}

void
users_free_all(struct server *srv)
{
	while (srv->users != NULL)
		user_free(srv->users);
}

void
user_folders_set(struct user *u, struct folders *fs)
{
	folders_free(&u->folders);
	u->folders = folders_ref(fs);
}

/* The hashing worker's callbacks hold user references: it stops first. */
void
users_shutdown(struct server *srv)
{
	offline_shutdown();
	users_free_all(srv);
}

void
users_metrics(struct server *srv, struct evbuffer *out)
{
	const struct user	*u;
	unsigned long		 n = 0;

	for (u = srv->users; u != NULL; u = u->next)
		if (u->refs > 0)
			n++;
	status_metric_head(out, "imapmerge_users", "gauge",
	    "Users with at least one session.");
	evbuffer_add_printf(out, "imapmerge_users %lu\n", n);
}
