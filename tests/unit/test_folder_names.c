/*
 * Tests of the folder-role and hidden-folder tables (conf/folder_names.c):
 * every name of DESIGN.md section 3 maps to its role, in table order,
 * case-insensitively for ASCII only, at the top level only; Exchange's
 * non-mail folders hide with their subtrees and nothing else hides.
 */

#include "unit.h"

#include "conf/folder_names.h"

struct name_row {
	const char		*name;
	enum folder_role	 role;
};

/* In preference order within each role, as the design lists them. */
static const struct name_row names[] = {
	{ "INBOX", ROLE_INBOX },
	{ "Sent", ROLE_SENT },
	{ "Sent Items", ROLE_SENT },
	{ "Sent Messages", ROLE_SENT },
	{ "Sent Mail", ROLE_SENT },
	{ "送信済み", ROLE_SENT },
	{ "送信済みトレイ", ROLE_SENT },
	{ "送信済みアイテム", ROLE_SENT },
	{ "Drafts", ROLE_DRAFTS },
	{ "下書き", ROLE_DRAFTS },
	{ "Trash", ROLE_TRASH },
	{ "Deleted Items", ROLE_TRASH },
	{ "Deleted Messages", ROLE_TRASH },
	{ "ごみ箱", ROLE_TRASH },
	{ "ゴミ箱", ROLE_TRASH },
	{ "削除済みアイテム", ROLE_TRASH },
	{ "Junk", ROLE_JUNK },
	{ "Junk Email", ROLE_JUNK },
	{ "Junk E-mail", ROLE_JUNK },
	{ "Spam", ROLE_JUNK },
	{ "迷惑メール", ROLE_JUNK },
	{ "Archive", ROLE_ARCHIVE },
	{ "アーカイブ", ROLE_ARCHIVE },
};

static void
test_role_by_name(void)
{
	unsigned int	 rank, prev[ROLE_COUNT];
	size_t		 i;
	int		 seen[ROLE_COUNT] = { 0 };

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		enum folder_role role = folder_role_by_name(names[i].name,
		    &rank);

		if (role != names[i].role)
			printf("#   name %s\n", names[i].name);
		CHECK_INT(role, names[i].role);
		if (seen[role])
			CHECK(rank > prev[role]);
		seen[role] = 1;
		prev[role] = rank;
	}
	CHECK(folder_role_by_name("Sent", NULL) == ROLE_SENT);
}

static void
test_role_by_name_folding(void)
{
	static const struct name_row rows[] = {
		{ "sent items", ROLE_SENT },
		{ "SENT ITEMS", ROLE_SENT },
		{ "junk e-mail", ROLE_JUNK },
		{ "inbox", ROLE_INBOX },
		{ "Inbox", ROLE_INBOX },
		{ "deleted ITEMS", ROLE_TRASH },
		/* Not the same names. */
		{ "Sent Items ", ROLE_NONE },
		{ " Sent", ROLE_NONE },
		{ "Sentx", ROLE_NONE },
		{ "Junk-Email", ROLE_NONE },
		{ "送信", ROLE_NONE },
		{ "送信済み ", ROLE_NONE },
		{ "", ROLE_NONE },
		/* Full-width letters are not ASCII and do not fold. */
		{ "Ｓｅｎｔ", ROLE_NONE },
		/* Only the top level claims a role. */
		{ "INBOX/Sent", ROLE_NONE },
		{ "Archive/2019", ROLE_NONE },
		{ "Projects/送信済み", ROLE_NONE },
		{ "Sent/", ROLE_NONE },
	};
	unsigned int	 rank = 0;
	size_t		 i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (folder_role_by_name(rows[i].name, &rank) != rows[i].role)
			printf("#   name \"%s\"\n", rows[i].name);
		CHECK_INT(folder_role_by_name(rows[i].name, &rank),
		    rows[i].role);
	}
	/* No role ranks after every role name. */
	folder_role_by_name("nothing", &rank);
	CHECK(rank >= sizeof(names) / sizeof(names[0]));
}

/*
 * The case that made the order matter: a legacy account that Outlook used
 * has both 送信済み and 送信済みアイテム; the server's own wins.
 */
static void
test_rank_order(void)
{
	unsigned int	 a, b;

	CHECK_INT(folder_role_by_name("送信済みアイテム", &a), ROLE_SENT);
	CHECK_INT(folder_role_by_name("送信済み", &b), ROLE_SENT);
	CHECK(b < a);
	CHECK_INT(folder_role_by_name("Deleted Items", &a), ROLE_TRASH);
	CHECK_INT(folder_role_by_name("trash", &b), ROLE_TRASH);
	CHECK(b < a);
}

static void
test_special_use(void)
{
	static const struct name_row rows[] = {
		{ "\\Sent", ROLE_SENT },
		{ "\\sent", ROLE_SENT },
		{ "\\SENT", ROLE_SENT },
		{ "\\Drafts", ROLE_DRAFTS },
		{ "\\Trash", ROLE_TRASH },
		{ "\\Junk", ROLE_JUNK },
		{ "\\Spam", ROLE_JUNK },
		{ "\\Archive", ROLE_ARCHIVE },
		{ "\\All", ROLE_NONE },
		{ "\\Flagged", ROLE_NONE },
		{ "\\HasChildren", ROLE_NONE },
		{ "Sent", ROLE_NONE },
		{ "\\Sent ", ROLE_NONE },
		{ "\\Sen", ROLE_NONE },
		{ "", ROLE_NONE },
	};
	size_t	 i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		CHECK_INT(folder_role_by_special_use(rows[i].name),
		    rows[i].role);

	CHECK_STR(folder_role_special_use(ROLE_SENT), "\\Sent");
	CHECK_STR(folder_role_special_use(ROLE_DRAFTS), "\\Drafts");
	CHECK_STR(folder_role_special_use(ROLE_TRASH), "\\Trash");
	CHECK_STR(folder_role_special_use(ROLE_JUNK), "\\Junk");
	CHECK_STR(folder_role_special_use(ROLE_ARCHIVE), "\\Archive");
	CHECK(folder_role_special_use(ROLE_INBOX) == NULL);
	CHECK(folder_role_special_use(ROLE_NONE) == NULL);
}

static void
test_role_keywords(void)
{
	int	 r;

	CHECK_STR(folder_role_name(ROLE_NONE), "none");
	CHECK_STR(folder_role_name(ROLE_INBOX), "inbox");
	CHECK_STR(folder_role_name(ROLE_SENT), "sent");
	CHECK_STR(folder_role_name(ROLE_ARCHIVE), "archive");
	CHECK_STR(folder_role_name((enum folder_role)99), "none");
	for (r = ROLE_INBOX; r < ROLE_COUNT; r++)
		CHECK_INT(folder_role_from_keyword(
		    folder_role_name((enum folder_role)r)), r);
	CHECK_INT(folder_role_from_keyword("Trash"), ROLE_TRASH);
	CHECK_INT(folder_role_from_keyword("none"), ROLE_NONE);
	CHECK_INT(folder_role_from_keyword("sentx"), ROLE_NONE);
	CHECK_INT(folder_role_from_keyword(""), ROLE_NONE);
}

static void
test_hidden(void)
{
	static const char *const hidden[] = {
		"Calendar", "calendar", "CALENDAR/Birthdays", "Contacts",
		"Contacts/Recipient Cache", "Tasks", "Notes", "Journal",
		"Sync Issues", "Sync Issues/Conflicts",
		"Sync Issues/Local Failures", "Sync Issues/Server Failures",
		"Conversation History", "Outbox", "Files", "RSS Feeds",
		"RSS Subscriptions", "Yammer Root", "Yammer Root/Feeds",
		"予定表", "連絡先", "タスク", "メモ", "履歴", "同期の問題",
		"同期の問題/競合", "同期の問題/ローカル エラー",
		"同期の問題/サーバー エラー", "会話の履歴", "送信トレイ",
		"ファイル", "RSS フィード", "RSS サブスクリプション",
		"予定表/祝日",
	};
	static const char *const shown[] = {
		"", "INBOX", "Sent Items", "Calendars", "Calendar Archive",
		"INBOX/Calendar", "Projects/Contacts", "Conflicts",
		"競合", "Note", "予定", "予定表2", "Outbox2", "RSS",
		"Sync", "Sync Issues2", "Deleted Items/Calendar",
	};
	size_t	 i;

	for (i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++) {
		if (!folder_name_is_hidden(hidden[i]))
			printf("#   not hidden: %s\n", hidden[i]);
		CHECK(folder_name_is_hidden(hidden[i]));
	}
	for (i = 0; i < sizeof(shown) / sizeof(shown[0]); i++) {
		if (folder_name_is_hidden(shown[i]))
			printf("#   hidden: %s\n", shown[i]);
		CHECK(!folder_name_is_hidden(shown[i]));
	}
}

static void
test_subtree(void)
{
	CHECK(folder_path_in_subtree("a", "a"));
	CHECK(folder_path_in_subtree("a/b", "a"));
	CHECK(folder_path_in_subtree("A/b/c", "a"));
	CHECK(folder_path_in_subtree("a/b/c", "a/b"));
	CHECK(!folder_path_in_subtree("ab", "a"));
	CHECK(!folder_path_in_subtree("a", "a/b"));
	CHECK(!folder_path_in_subtree("b/a", "a"));
	CHECK(!folder_path_in_subtree("", "a"));
	CHECK(folder_path_in_subtree("予定表/x", "予定表"));
}

static const struct unit_case cases[] = {
	UNIT_CASE(test_role_by_name),
	UNIT_CASE(test_role_by_name_folding),
	UNIT_CASE(test_rank_order),
	UNIT_CASE(test_special_use),
	UNIT_CASE(test_role_keywords),
	UNIT_CASE(test_hidden),
	UNIT_CASE(test_subtree),
};

UNIT_MAIN(cases)
