/*
 * The folder-name tables (DESIGN.md section 3) and their lookups.
 *
 * Comparisons fold ASCII letters only.  Exchange and Dovecot treat
 * "sent items" and "Sent Items" as one folder, and some servers send
 * "\sent" for "\Sent"; Japanese names have no case, and a locale-aware
 * fold could merge names the servers keep apart.
 */

#include <stddef.h>
#include <string.h>

#include "conf/folder_names.h"

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

static const char *const role_keywords[] = {
	"none", "inbox", "sent", "drafts", "trash", "junk", "archive"
};
_Static_assert(nitems(role_keywords) == ROLE_COUNT, "role_keywords");

struct role_attr {
	const char		*attr;
	enum folder_role	 role;
};

/* RFC 6154; the first entry of a role is the one we advertise. */
static const struct role_attr special_uses[] = {
	{ "\\Sent",	ROLE_SENT },
	{ "\\Drafts",	ROLE_DRAFTS },
	{ "\\Trash",	ROLE_TRASH },
	{ "\\Junk",	ROLE_JUNK },
	{ "\\Archive",	ROLE_ARCHIVE },
	/* Gmail's XLIST names, which some older servers still send. */
	{ "\\Spam",	ROLE_JUNK },
	{ "\\Inbox",	ROLE_INBOX }
};
#define RFC6154_COUNT	5

struct role_name {
	enum folder_role	 role;
	const char		*name;
};

/*
 * Table order is preference order within a role.  A legacy account that
 * Outlook used has both 送信済み (the server's own) and 送信済みアイテム
 * (made by Outlook); the server's own comes first.
 */
static const struct role_name role_names[] = {
	{ ROLE_INBOX,	"INBOX" },

	{ ROLE_SENT,	"Sent" },
	{ ROLE_SENT,	"Sent Items" },
	{ ROLE_SENT,	"Sent Messages" },
	{ ROLE_SENT,	"Sent Mail" },
	{ ROLE_SENT,	"送信済み" },
	{ ROLE_SENT,	"送信済みトレイ" },
	{ ROLE_SENT,	"送信済みアイテム" },

	{ ROLE_DRAFTS,	"Drafts" },
	{ ROLE_DRAFTS,	"下書き" },

	{ ROLE_TRASH,	"Trash" },
	{ ROLE_TRASH,	"Deleted Items" },
	{ ROLE_TRASH,	"Deleted Messages" },
	{ ROLE_TRASH,	"ごみ箱" },
	{ ROLE_TRASH,	"ゴミ箱" },
	{ ROLE_TRASH,	"削除済みアイテム" },

	{ ROLE_JUNK,	"Junk" },
	{ ROLE_JUNK,	"Junk Email" },
	{ ROLE_JUNK,	"Junk E-mail" },
	{ ROLE_JUNK,	"Spam" },
	{ ROLE_JUNK,	"迷惑メール" },

	{ ROLE_ARCHIVE,	"Archive" },
	{ ROLE_ARCHIVE,	"アーカイブ" }
};

/*
 * Exchange folders that hold calendars, contacts and the like.  Their
 * subtrees go with them: Sync Issues/Conflicts, Local Failures and Server
 * Failures (同期の問題/競合, ローカル エラー, サーバー エラー), Contacts/
 * Recipient Cache, Yammer Root/Feeds and so on.
 */
static const char *const hidden_names[] = {
	"Calendar",
	"Contacts",
	"Tasks",
	"Notes",
	"Journal",
	"Sync Issues",
	"Conversation History",
	"Outbox",
	"Files",
	"RSS Feeds",
	"RSS Subscriptions",
	"Yammer Root",
	"予定表",
	"連絡先",
	"タスク",
	"メモ",
	"履歴",
	"同期の問題",
	"会話の履歴",
	"送信トレイ",
	"ファイル",
	"RSS フィード",
	"RSS サブスクリプション"
};

static int
ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int
ascii_ncaseeq(const char *a, const char *b, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		if (ascii_lower((unsigned char)a[i]) !=
		    ascii_lower((unsigned char)b[i]))
			return 0;
		if (a[i] == '\0')
			return 1;
	}
	return 1;
}

static int
ascii_caseeq(const char *a, const char *b)
{
	size_t	 n = strlen(b);

	return ascii_ncaseeq(a, b, n) && a[n] == '\0';
}

const char *
folder_role_name(enum folder_role role)
{
	if ((unsigned int)role >= ROLE_COUNT)
		return "none";
	return role_keywords[role];
}

enum folder_role
folder_role_from_keyword(const char *word)
{
	size_t	 i;

	for (i = 1; i < nitems(role_keywords); i++)
		if (ascii_caseeq(word, role_keywords[i]))
			return (enum folder_role)i;
	return ROLE_NONE;
}

enum folder_role
folder_role_by_special_use(const char *attr)
{
	size_t	 i;

	for (i = 0; i < nitems(special_uses); i++)
		if (ascii_caseeq(attr, special_uses[i].attr))
			return special_uses[i].role;
	return ROLE_NONE;
}

const char *
folder_role_special_use(enum folder_role role)
{
	size_t	 i;

	for (i = 0; i < RFC6154_COUNT; i++)
		if (special_uses[i].role == role)
			return special_uses[i].attr;
	return NULL;
}

enum folder_role
folder_role_by_name(const char *name, unsigned int *rank_r)
{
	size_t	 i;

	if (strchr(name, '/') == NULL) {
		for (i = 0; i < nitems(role_names); i++) {
			if (!ascii_caseeq(name, role_names[i].name))
				continue;
			if (rank_r != NULL)
				*rank_r = (unsigned int)i;
			return role_names[i].role;
		}
	}
	if (rank_r != NULL)
		*rank_r = (unsigned int)nitems(role_names);
	return ROLE_NONE;
}

int
folder_path_in_subtree(const char *path, const char *root)
{
	size_t	 n = strlen(root);

	return ascii_ncaseeq(path, root, n) &&
	    (path[n] == '\0' || path[n] == '/');
}

int
folder_name_is_hidden(const char *path)
{
	size_t	 i;

	for (i = 0; i < nitems(hidden_names); i++)
		if (folder_path_in_subtree(path, hidden_names[i]))
			return 1;
	return 0;
}
