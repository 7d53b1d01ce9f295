/*
 * Folder roles and the names that give them away.
 *
 * A backend folder gets a role (Sent, Drafts, Trash, ...) from its
 * RFC 6154 special-use attribute, else from the name tables in
 * folder_names.c, which hold the names that the servers of a Japanese
 * university actually use, in English and in Japanese.  Exchange also
 * shows folders that hold no mail at all (Calendar, Contacts, ...); those
 * are never shown to the client.
 *
 * Names here are UTF-8 with "/" as the separator: the folder tree has
 * already decoded modified UTF-7, translated the legacy separator and
 * taken off any personal namespace prefix before it asks.
 */

#ifndef CONF_FOLDER_NAMES_H
#define CONF_FOLDER_NAMES_H

enum folder_role {
	ROLE_NONE = 0,
	ROLE_INBOX,
	ROLE_SENT,
	ROLE_DRAFTS,
	ROLE_TRASH,
	ROLE_JUNK,
	ROLE_ARCHIVE
};
#define ROLE_COUNT	(ROLE_ARCHIVE + 1)

/* "sent", "drafts", ...: the config keyword, also used in log lines. */
const char		*folder_role_name(enum folder_role);
enum folder_role	 folder_role_from_keyword(const char *);

/* "\Sent" -> ROLE_SENT, case-insensitively; ROLE_NONE if none. */
enum folder_role	 folder_role_by_special_use(const char *);
/* The RFC 6154 attribute to advertise for a role; NULL for Inbox. */
const char		*folder_role_special_use(enum folder_role);

/*
 * The role a top-level folder name claims, and its rank in table order:
 * when several folders of one server claim a role, the lowest rank wins.
 * Names below the top level never claim a role.
 */
enum folder_role	 folder_role_by_name(const char *, unsigned int *);

/*
 * Exchange's non-mail folders and their subtrees.  Apply this to the new
 * server only: on the legacy server a folder called "メモ" or "Files" is
 * one the user made, and it holds mail.
 */
int			 folder_name_is_hidden(const char *);

/* Whether PATH is ROOT or below it; ASCII letters compare caseless. */
int			 folder_path_in_subtree(const char *, const char *);

#endif
