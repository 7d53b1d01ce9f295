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

/*
 * A folder list as text: "P\t<prefix>" then one line per folder,
 * "<noselect><subscribed><nonexistent><special>\t<sep>\t<name>", the
 * first four one digit each, sep "-" for none.  A name with a tab or a
 * line end (no server has one) is left out.
 */
static const char *const list_key[2] = { "folders-legacy", "folders-new" };

static char *
list_text(const struct user_list *l)
{
	struct evbuffer	*b = evbuffer_new();
	const struct bfolder *f;
	char		*out = NULL;
	size_t		 i, len;

	if (b == NULL)
		return NULL;
	evbuffer_add_printf(b, "P\t%s\n", l->prefix != NULL ? l->prefix : "");
	for (i = 0; i < l->n; i++) {
		f = &l->f[i];
		if (strpbrk(f->name, "\t\r\n") != NULL)
			continue;
		evbuffer_add_printf(b, "%d%d%d%d\t%c\t%s\n", f->noselect,
		    f->subscribed, f->nonexistent, (int)f->special,
		    f->sep != '\0' ? f->sep : '-', f->name);
	}
	len = evbuffer_get_length(b);
	if ((out = malloc(len + 1)) != NULL) {
		evbuffer_remove(b, out, len);
		out[len] = '\0';
	}
	evbuffer_free(b);
	return out;
}

int
user_list_save(struct user *u, int side)
{
	char	*text;

	if (u->store == NULL || (text = list_text(&u->lists[side])) == NULL)
		return -1;
	if (u->lists_saved[side] != NULL &&
	    strcmp(u->lists_saved[side], text) == 0) {
		free(text);
		return 0;
	}
	if (state_meta_set(u->store, list_key[side], text) == -1) {
		free(text);
		return -1;
	}
	free(u->lists_saved[side]);
	u->lists_saved[side] = text;
	return 0;
}

static int
list_parse_line(struct user_list *l, size_t *cap, char *line)
{
	struct bfolder	*nf, *f;
	char		*name;

	if (strncmp(line, "P\t", 2) == 0)
		return (l->prefix = strdup(line + 2)) == NULL ? -1 : 0;
	if (strlen(line) < 8 || line[4] != '\t' || line[6] != '\t' ||
	    strspn(line, "0123456789") != 4 || line[3] - '0' >= ROLE_COUNT)
		return 0;			/* not ours: skipped */
	if (l->n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		if ((nf = reallocarray(l->f, *cap, sizeof(*nf))) == NULL)
			return -1;
		l->f = nf;
	}
	if ((name = strdup(line + 7)) == NULL)
		return -1;
	f = &l->f[l->n++];
	memset(f, 0, sizeof(*f));
	f->name = name;
	f->noselect = line[0] == '1';
	f->subscribed = line[1] == '1';
	f->nonexistent = line[2] == '1';
	f->special = (enum folder_role)(line[3] - '0');
	f->sep = line[5] != '-' ? line[5] : '\0';
	return 0;
}

int
user_list_load(struct user *u, int side)
{
	struct user_list	 l;
	char			*text, *line, *next;
	size_t			 cap = 0;

	if (u->store == NULL || (text = state_meta_get(u->store,
	    list_key[side])) == NULL)
		return 0;
	memset(&l, 0, sizeof(l));
	for (line = text; line != NULL && *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (list_parse_line(&l, &cap, line) == -1) {
			user_list_clear(&l);
			free(text);
			return -1;
		}
	}
	free(text);
	l.known = true;
	user_list_clear(&u->lists[side]);
	u->lists[side] = l;
	return 0;
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
	for (side = 0; side < 2; side++) {
		user_list_clear(&u->lists[side]);
		free(u->lists_saved[side]);
	}
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
