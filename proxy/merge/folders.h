/*
 * The unified folder tree (DESIGN §3) as plain data: built from what LIST
 * said on each backend, the follow/hide records of earlier RENAME/DELETE,
 * and the configuration; no sockets here.  Paths are UTF-8 with "/".
 */
#ifndef PROXY_FOLDERS_H
#define PROXY_FOLDERS_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "conf/config.h"
#include "conf/folder_names.h"

#define FOLDERS_MAX	10000		/* per side */
#define FOLDER_PATH_MAX	1024

/* One LIST entry of one backend, name already decoded to UTF-8. */
struct bfolder {
	char		*name;
	char		 sep;
	bool		 noselect;
	bool		 subscribed;
	enum folder_role special;	/* from a special-use attribute */
	bool		 nonexistent;	/* only a subscription (RFC 5258) */
};

struct folder_part {
	bool		 present;
	char		*name;		/* the server's name, UTF-8 */
	char		 sep;
	bool		 noselect;
	bool		 subscribed;
	bool		 nonexistent;	/* only a subscription */
};

struct ufolder {
	char			*path;
	enum folder_role	 role;
	struct folder_part	 part[BACKEND_COUNT];
	bool			 has_children;
	bool			 placeholder;	/* a parent nobody has */
	uint8_t			 sub_said;	/* through imapmerge: SUB_* */
};

/* ufolder.sub_said: what SUBSCRIBE/UNSUBSCRIBE through imapmerge said. */
#define SUB_UNSAID	0
#define SUB_ON		1
#define SUB_OFF		2

struct folders;

/* What feeds a build; sides indexed by enum backend_side. */
struct folders_input {
	const struct bfolder	*list[BACKEND_COUNT];
	size_t			 n[BACKEND_COUNT];
	const char		*prefix[BACKEND_COUNT];	/* namespace, UTF-8 */
	const struct config	*conf;			/* may be NULL */
	/* legacy name -> unified path (NULL: hidden), from the state */
	const char *const	*follow_from;
	const char *const	*follow_to;
	size_t			 nfollow;
	/* unified path -> subscribed, said through imapmerge (state) */
	const char *const	*sub_path;
	const bool		*sub_on;
	size_t			 nsub;
	/* new-side names deleted through imapmerge (state): left out */
	const char *const	*deleted_new;
	size_t			 ndeleted_new;
};

/*
 * A tree is shared (a user's sessions hold it while the user's newest
 * replaces it, user.h): folders_ref takes a reference, folders_free drops
 * one and frees with the last.
 */
struct folders	*folders_build(const struct folders_input *, const char **err);
struct folders	*folders_ref(struct folders *);
void		 folders_free(struct folders **);
size_t		 folders_count(const struct folders *);
const struct ufolder *folders_at(const struct folders *, size_t);
/* INBOX matches caselessly. */
const struct ufolder *folders_find(const struct folders *, const char *path);
/* The folder of a role, or NULL. */
const struct ufolder *folders_role(const struct folders *, enum folder_role);
/* The folder has a part on side that can hold messages. */
bool		 folder_serves(const struct ufolder *, int side);
bool		 folder_selectable(const struct ufolder *);
/* Said through imapmerge, else subscribed on either server. */
bool		 folder_subscribed(const struct ufolder *);
/* The folder is only a subscription: no server has it (it was deleted
 * while subscribed); LIST (SUBSCRIBED) and LSUB show it \NonExistent. */
bool		 folder_gone(const struct ufolder *);

/* IMAP LIST matching: "*" anything, "%" anything but "/". */
bool		 folders_match(const char *pattern, const char *path);

/* A unified path as the new server names it (separator "/"). */
char		*folders_new_name(const struct folders *, const char *path);

#endif
