/*
 * The unified folder tree (see folders.h and DESIGN §3).
 *
 * Each backend folder gets a unified path: its name without the namespace
 * prefix, the server's separator turned into "/".  A legacy folder renamed
 * or deleted through imapmerge follows its record instead.  Each side's
 * folder of a role (Sent, Drafts...) — chosen by configuration, then
 * special-use, then the name tables in table order — is renamed to the new
 * server's name for that role, children included, so both sides' Sent
 * folders become one "Sent Items".  Folders with the same path merge.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/merge/folders.h"

struct folders {
	struct ufolder	*f;
	size_t		 n, cap;
	int		 refs;
};

/* Office 365's names, used when the new server has no folder of a role
 * yet: the folder it will get on first write must have the same name. */
static const char *const default_role_names[ROLE_COUNT] = {
	[ROLE_SENT] = "Sent Items",
	[ROLE_DRAFTS] = "Drafts",
	[ROLE_TRASH] = "Deleted Items",
	[ROLE_JUNK] = "Junk Email",
	[ROLE_ARCHIVE] = "Archive",
};

struct role_pick {
	const struct bfolder	*winner;
	int			 prio;		/* 0 config, 1 special, 2 name */
	unsigned int		 rank;
	char			*path;		/* winner's own translated path */
};

struct build {
	const struct folders_input	*in;
	struct folders			*fs;
	struct role_pick		 pick[BACKEND_COUNT][ROLE_COUNT];
	char				*role_path[ROLE_COUNT];
	const char			*err;
};

struct folders *
folders_ref(struct folders *fs)
{
	fs->refs++;
	return fs;
}

void
folders_free(struct folders **fp)
{
	struct folders	*fs = *fp;
	size_t		 i;
	int		 side;

	*fp = NULL;
	if (fs == NULL || --fs->refs > 0)
		return;
	for (i = 0; i < fs->n; i++) {
		free(fs->f[i].path);
		for (side = 0; side < BACKEND_COUNT; side++)
			free(fs->f[i].part[side].name);
	}
	free(fs->f);
	free(fs);
}

size_t
folders_count(const struct folders *fs)
{
	return fs->n;
}

const struct ufolder *
folders_at(const struct folders *fs, size_t i)
{
	return i < fs->n ? &fs->f[i] : NULL;
}

static bool
is_inbox(const char *path)
{
	return strcasecmp(path, "INBOX") == 0;
}

static struct ufolder *
find(struct folders *fs, const char *path)
{
	size_t	 i;

	for (i = 0; i < fs->n; i++)
		if (strcmp(fs->f[i].path, path) == 0 ||
		    (is_inbox(path) && is_inbox(fs->f[i].path)))
			return &fs->f[i];
	return NULL;
}

const struct ufolder *
folders_find(const struct folders *fs, const char *path)
{
	return find((struct folders *)fs, path);
}

const struct ufolder *
folders_role(const struct folders *fs, enum folder_role role)
{
	size_t	 i;

	for (i = 0; i < fs->n; i++)
		if (fs->f[i].role == role)
			return &fs->f[i];
	return NULL;
}

bool
folder_serves(const struct ufolder *f, int side)
{
	return f->part[side].present && !f->part[side].noselect;
}

bool
folder_selectable(const struct ufolder *f)
{
	int	 side;

	for (side = 0; side < BACKEND_COUNT; side++)
		if (folder_serves(f, side))
			return true;
	return false;
}

bool
folder_gone(const struct ufolder *f)
{
	int	 side, parts = 0;

	for (side = 0; side < BACKEND_COUNT; side++)
		if (f->part[side].present) {
			if (!f->part[side].nonexistent)
				return false;
			parts++;
		}
	return parts > 0;
}

bool
folder_subscribed(const struct ufolder *f)
{
	int	 side;

	if (f->sub_said != SUB_UNSAID)
		return f->sub_said == SUB_ON;
	/* The copier creates folders unsubscribed on the new server: a
	 * subscription on the old one still counts. */
	for (side = 0; side < BACKEND_COUNT; side++)
		if (f->part[side].present && f->part[side].subscribed)
			return true;
	return false;
}

/* The server name without the namespace prefix; NULL if outside it. */
static const char *
strip_prefix(const char *name, const char *prefix)
{
	size_t	 plen = prefix != NULL ? strlen(prefix) : 0;

	if (plen == 0 || is_inbox(name))
		return name;
	if (strncmp(name, prefix, plen) == 0)
		return name + plen;
	return name;
}

/* Server name -> "/" path.  A "/" inside a component (possible with a
 * "." separator) becomes "_": the part keeps its real name anyway. */
static char *
translate(const char *name, char sep, const char *prefix)
{
	const char	*s = strip_prefix(name, prefix);
	char		*out, *o;

	if (is_inbox(s))
		return strdup("INBOX");
	if (strlen(s) >= FOLDER_PATH_MAX || (out = strdup(s)) == NULL)
		return NULL;
	for (o = out; *o != '\0'; o++) {
		if (*o == sep)
			*o = '/';
		else if (*o == '/')
			*o = '_';
	}
	return out;
}

static bool
is_top_level(const struct bfolder *b, const char *prefix)
{
	return strchr(strip_prefix(b->name, prefix), b->sep) == NULL;
}

static int
override_role(const struct build *bd, int side, const struct bfolder *b)
{
	const struct config	*c = bd->in->conf;
	size_t			 i;

	for (i = 0; c != NULL && i < c->nfolder_role; i++)
		if ((int)c->folder_role[i].side == side &&
		    strcmp(c->folder_role[i].name, b->name) == 0)
			return c->folder_role[i].role;
	return ROLE_NONE;
}

static void
consider(struct build *bd, int side, const struct bfolder *b)
{
	enum folder_role	 role;
	struct role_pick	*p;
	unsigned int		 rank = 0;
	int			 prio;

	if (is_inbox(b->name) || b->nonexistent)
		return;
	if ((role = override_role(bd, side, b)) != ROLE_NONE)
		prio = 0;
	else if ((role = b->special) != ROLE_NONE)
		prio = 1;
	else if (is_top_level(b, bd->in->prefix[side]) &&
	    (role = folder_role_by_name(strip_prefix(b->name,
	    bd->in->prefix[side]), &rank)) != ROLE_NONE)
		prio = 2;
	else
		return;
	if (role == ROLE_INBOX)
		return;
	p = &bd->pick[side][role];
	if (p->winner != NULL && (p->prio < prio ||
	    (p->prio == prio && p->rank <= rank)))
		return;
	p->winner = b;
	p->prio = prio;
	p->rank = rank;
}

static int
pick_roles(struct build *bd)
{
	int		 side, role;
	size_t		 i;

	for (side = 0; side < BACKEND_COUNT; side++)
		for (i = 0; i < bd->in->n[side]; i++)
			consider(bd, side, &bd->in->list[side][i]);
	for (side = 0; side < BACKEND_COUNT; side++)
		for (role = 0; role < ROLE_COUNT; role++) {
			struct role_pick *p = &bd->pick[side][role];

			if (p->winner != NULL && (p->path = translate(
			    p->winner->name, p->winner->sep,
			    bd->in->prefix[side])) == NULL)
				return -1;
		}
	for (role = 0; role < ROLE_COUNT; role++) {
		const char	*name = bd->pick[BACKEND_NEW][role].path;

		if (name == NULL)
			name = default_role_names[role];
		if (name != NULL && (bd->role_path[role] = strdup(name)) ==
		    NULL)
			return -1;
	}
	return 0;
}

/* Replaces a leading "old" component path by "new" in *path. */
static int
replace_prefix(char **path, const char *old, const char *repl)
{
	size_t	 olen = strlen(old);
	char	*n;

	if (strncmp(*path, old, olen) != 0 || ((*path)[olen] != '\0' &&
	    (*path)[olen] != '/'))
		return 0;
	if (asprintf(&n, "%s%s", repl, *path + olen) == -1)
		return -1;
	free(*path);
	*path = n;
	return 1;
}

/* A legacy folder renamed or deleted through imapmerge. */
static int
apply_follow(const struct build *bd, const struct bfolder *b, char **path)
{
	const struct folders_input	*in = bd->in;
	size_t				 i, flen;
	char				*n;

	for (i = 0; i < in->nfollow; i++) {
		flen = strlen(in->follow_from[i]);
		if (strncmp(b->name, in->follow_from[i], flen) != 0 ||
		    (b->name[flen] != '\0' && b->name[flen] != b->sep))
			continue;
		if (in->follow_to[i] == NULL)
			return 1;			/* hidden */
		n = translate(b->name + flen, b->sep, NULL);
		if (n == NULL)
			return -1;
		free(*path);
		if (asprintf(path, "%s%s", in->follow_to[i], n) == -1) {
			*path = NULL;
			free(n);
			return -1;
		}
		free(n);
		return 0;
	}
	return 0;
}

static struct ufolder *
add(struct folders *fs, const char *path)
{
	struct ufolder	*nf;
	size_t		 cap;

	if (fs->n == fs->cap) {
		cap = fs->cap ? fs->cap * 2 : 32;
		if ((nf = reallocarray(fs->f, cap, sizeof(*nf))) == NULL)
			return NULL;
		fs->f = nf;
		fs->cap = cap;
	}
	nf = &fs->f[fs->n];
	memset(nf, 0, sizeof(*nf));
	if ((nf->path = strdup(path)) == NULL)
		return NULL;
	fs->n++;
	return nf;
}

/* The user deleted this folder through imapmerge: the copier made it
 * again on the new server. */
static bool
deleted_new(const struct folders_input *in, const char *path)
{
	size_t	 i;

	for (i = 0; i < in->ndeleted_new; i++)
		if (strcmp(in->deleted_new[i], path) == 0)
			return true;
	return false;
}

static int
place(struct build *bd, int side, const struct bfolder *b)
{
	const struct config	*conf = bd->in->conf;
	struct ufolder		*u;
	char			*path;
	int			 role, r = 0, winner = ROLE_NONE;

	if ((path = translate(b->name, b->sep, bd->in->prefix[side])) == NULL)
		return -1;
	if (side == BACKEND_LEGACY && (r = apply_follow(bd, b, &path)) != 0)
		goto out;
	for (role = 0; role < ROLE_COUNT && r == 0; role++) {
		const struct role_pick *p = &bd->pick[side][role];

		if (p->path == NULL || bd->role_path[role] == NULL)
			continue;
		if (p->winner == b)
			winner = role;
		r = replace_prefix(&path, p->path, bd->role_path[role]);
	}
	if (r == -1)
		goto out;
	r = 0;
	/* (A subscription of the deleted folder stays: RFC 5258 §3.) */
	if ((side == BACKEND_NEW && (folder_name_is_hidden(path) ||
	    (!b->nonexistent && deleted_new(bd->in, path)))) ||
	    (conf != NULL && config_folder_hidden(conf, path)))
		goto out;
	if ((u = find(bd->fs, path)) == NULL && (u = add(bd->fs, path)) ==
	    NULL) {
		r = -1;
		goto out;
	}
	if (is_inbox(path))
		u->role = ROLE_INBOX;
	else if (winner != ROLE_NONE)
		u->role = winner;
	if (u->part[side].present) {
		/* Two names of one side mapped to one path: keep the first. */
		goto out;
	}
	u->part[side].present = true;
	u->part[side].sep = b->sep;
	u->part[side].noselect = b->noselect;
	u->part[side].subscribed = b->subscribed;
	u->part[side].nonexistent = b->nonexistent;
	if ((u->part[side].name = strdup(b->name)) == NULL)
		r = -1;
 out:
	free(path);
	return r == 1 ? 0 : r;
}

/* Parents that neither side has are shown as \Noselect placeholders. */
static int
add_parents(struct folders *fs)
{
	size_t		 i, n = fs->n;
	char		*p, *slash;
	struct ufolder	*u;

	for (i = 0; i < n; i++) {
		if (folder_gone(&fs->f[i]))
			continue;	/* a subscription has no parents */
		if ((p = strdup(fs->f[i].path)) == NULL)
			return -1;
		while ((slash = strrchr(p, '/')) != NULL) {
			*slash = '\0';
			if (find(fs, p) != NULL || *p == '\0')
				continue;
			if ((u = add(fs, p)) == NULL) {
				free(p);
				return -1;
			}
			u->placeholder = true;
		}
		free(p);
	}
	return 0;
}

static void
mark_children(struct folders *fs)
{
	size_t		 i;
	const char	*slash;
	char		 parent[FOLDER_PATH_MAX];
	struct ufolder	*p;

	for (i = 0; i < fs->n; i++) {
		if (folder_gone(&fs->f[i]) ||
		    (slash = strrchr(fs->f[i].path, '/')) == NULL ||
		    (size_t)(slash - fs->f[i].path) >= sizeof(parent))
			continue;
		memcpy(parent, fs->f[i].path, slash - fs->f[i].path);
		parent[slash - fs->f[i].path] = '\0';
		if ((p = find(fs, parent)) != NULL)
			p->has_children = true;
	}
}

static int
folder_cmp(const void *a, const void *b)
{
	const struct ufolder	*x = a, *y = b;

	if (is_inbox(x->path) != is_inbox(y->path))
		return is_inbox(x->path) ? -1 : 1;
	return strcmp(x->path, y->path);
}

struct folders *
folders_build(const struct folders_input *in, const char **err)
{
	struct build	 bd;
	size_t		 i;
	int		 side, role, rc = 0;

	memset(&bd, 0, sizeof(bd));
	bd.in = in;
	*err = "out of memory";
	for (side = 0; side < BACKEND_COUNT; side++)
		if (in->n[side] > FOLDERS_MAX) {
			*err = "too many folders";
			return NULL;
		}
	if ((bd.fs = calloc(1, sizeof(*bd.fs))) != NULL)
		bd.fs->refs = 1;
	if (bd.fs == NULL)
		return NULL;
	rc = pick_roles(&bd);
	/* New first: its names are the ones the unified tree keeps. */
	for (side = BACKEND_NEW; rc == 0 && side >= 0; side--)
		for (i = 0; rc == 0 && i < in->n[side]; i++)
			rc = place(&bd, side, &in->list[side][i]);
	if (rc == 0 && find(bd.fs, "INBOX") == NULL)
		rc = add(bd.fs, "INBOX") == NULL ? -1 : 0;
	if (rc == 0)
		rc = add_parents(bd.fs);
	for (side = 0; side < BACKEND_COUNT; side++)
		for (role = 0; role < ROLE_COUNT; role++)
			free(bd.pick[side][role].path);
	for (role = 0; role < ROLE_COUNT; role++)
		free(bd.role_path[role]);
	if (rc != 0) {
		folders_free(&bd.fs);
		return NULL;
	}
	find(bd.fs, "INBOX")->role = ROLE_INBOX;
	mark_children(bd.fs);
	for (i = 0; i < in->nsub; i++) {
		struct ufolder	*u = find(bd.fs, in->sub_path[i]);

		if (u != NULL && !u->placeholder)
			u->sub_said = in->sub_on[i] ? SUB_ON : SUB_OFF;
	}
	qsort(bd.fs->f, bd.fs->n, sizeof(*bd.fs->f), folder_cmp);
	*err = NULL;
	return bd.fs;
}

#define MATCH_MAX_WILDCARDS	8

static bool
match(const char *pat, const char *path)
{
	for (; *pat != '\0'; pat++, path++) {
		if (*pat == '*' || *pat == '%') {
			for (;; path++) {
				if (match(pat + 1, path))
					return true;
				if (*path == '\0' || (*pat == '%' &&
				    *path == '/'))
					return false;
			}
		}
		if (*path != *pat)
			return false;
	}
	return *path == '\0';
}

/*
 * Backtracking costs grow with every wildcard, so a pattern may have a
 * few; more match nothing (no mail client sends them).  INBOX matches
 * caselessly, as RFC 9051 wants for its name.
 */
bool
folders_match(const char *pat, const char *path)
{
	size_t	 wild = 0;
	const char *p;

	for (p = pat; *p != '\0'; p++)
		wild += *p == '*' || *p == '%';
	if (wild > MATCH_MAX_WILDCARDS)
		return false;
	if (strncasecmp(path, "INBOX", 5) == 0 && (path[5] == '\0' ||
	    path[5] == '/') && strncasecmp(pat, "INBOX", 5) == 0)
		return match(pat + 5, path + 5);
	return match(pat, path);
}

char *
folders_new_name(const struct folders *fs, const char *path)
{
	const struct ufolder	*u = folders_find(fs, path);

	if (u != NULL && u->part[BACKEND_NEW].present)
		return strdup(u->part[BACKEND_NEW].name);
	return strdup(path);
}
