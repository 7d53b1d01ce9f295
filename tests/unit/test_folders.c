/*
 * The unified folder tree from LIST results: the test bed's shape, an
 * Outlook-used legacy account, prefixes, overrides, follow records, hidden
 * folders, placeholders and LIST pattern matching.
 */
#include "proxy/merge/folders.h"
#include "unit.h"

#define B(n, c, r)	{ .name = (char *)(n), .sep = (c), .special = (r) }

static const struct bfolder legacy_tb[] = {
	B("INBOX", '.', ROLE_NONE), B("送信済み", '.', ROLE_NONE),
	B("ごみ箱", '.', ROLE_NONE), B("迷惑メール", '.', ROLE_NONE),
	B("Drafts", '.', ROLE_NONE), B("Archive", '.', ROLE_NONE),
	B("Archive.2019", '.', ROLE_NONE), B("Projects", '.', ROLE_NONE),
	B("Projects.Alpha", '.', ROLE_NONE), B("送信済み.2019", '.', ROLE_NONE),
};

static const struct bfolder new_tb[] = {
	B("INBOX", '/', ROLE_NONE), B("Sent Items", '/', ROLE_SENT),
	B("Deleted Items", '/', ROLE_TRASH), B("Junk Email", '/', ROLE_JUNK),
	B("Drafts", '/', ROLE_DRAFTS), B("Archive", '/', ROLE_ARCHIVE),
	B("Calendar", '/', ROLE_NONE), B("Calendar/Birthdays", '/', ROLE_NONE),
	B("Contacts", '/', ROLE_NONE), B("Conversation History", '/', ROLE_NONE),
	B("Projects", '/', ROLE_NONE),
};

static struct folders *
build(const struct bfolder *l, size_t nl, const struct bfolder *n, size_t nn,
    const char *lprefix)
{
	struct folders_input	 in;
	const char		*err;

	memset(&in, 0, sizeof(in));
	in.list[BACKEND_LEGACY] = l;
	in.n[BACKEND_LEGACY] = nl;
	in.list[BACKEND_NEW] = n;
	in.n[BACKEND_NEW] = nn;
	in.prefix[BACKEND_LEGACY] = lprefix;
	return folders_build(&in, &err);
}

/* "path:role:L:N:C" per folder, L/N the parts, C children. */
static char *
dump(const struct folders *fs)
{
	static char	 out[2048];
	size_t		 i, len = 0;

	out[0] = '\0';
	for (i = 0; i < folders_count(fs); i++) {
		const struct ufolder *f = folders_at(fs, i);

		len += snprintf(out + len, sizeof(out) - len, "%s:%d:%s:%s:%s%s;",
		    f->path, f->role,
		    f->part[BACKEND_LEGACY].present ?
		    f->part[BACKEND_LEGACY].name : "-",
		    f->part[BACKEND_NEW].present ? f->part[BACKEND_NEW].name :
		    "-", f->has_children ? "C" : "",
		    f->placeholder ? "P" : "");
	}
	return out;
}

#define N(a)	(sizeof(a) / sizeof((a)[0]))

static void
testbed_shape(void)
{
	struct folders	*fs = build(legacy_tb, N(legacy_tb), new_tb,
	    N(new_tb), NULL);

	if (!CHECK(fs != NULL))
		return;
	CHECK_STR(dump(fs),
	    "INBOX:1:INBOX:INBOX:;"
	    "Archive:6:Archive:Archive:C;"
	    "Archive/2019:0:Archive.2019:-:;"
	    "Deleted Items:4:ごみ箱:Deleted Items:;"
	    "Drafts:3:Drafts:Drafts:;"
	    "Junk Email:5:迷惑メール:Junk Email:;"
	    "Projects:0:Projects:Projects:C;"
	    "Projects/Alpha:0:Projects.Alpha:-:;"
	    "Sent Items:2:送信済み:Sent Items:C;"
	    "Sent Items/2019:0:送信済み.2019:-:;");
	CHECK(folders_role(fs, ROLE_SENT) == folders_find(fs, "Sent Items"));
	CHECK(folders_find(fs, "inbox") == folders_at(fs, 0));
	folders_free(&fs);
	CHECK(fs == NULL);
}

static void
outlook_used_legacy(void)
{
	/* Both 送信済み and 送信済みアイテム: the first in table order wins. */
	static const struct bfolder l[] = {
		B("INBOX", '.', ROLE_NONE), B("送信済みアイテム", '.', ROLE_NONE),
		B("送信済み", '.', ROLE_NONE), B("Trash", '.', ROLE_TRASH),
		B("ゴミ箱", '.', ROLE_NONE),
	};
	static const struct bfolder n[] = { B("INBOX", '/', ROLE_NONE) };
	struct folders	*fs = build(l, N(l), n, N(n), NULL);

	CHECK_STR(dump(fs),
	    "INBOX:1:INBOX:INBOX:;"
	    "Deleted Items:4:Trash:-:;"
	    "Sent Items:2:送信済み:-:;"
	    "ゴミ箱:0:ゴミ箱:-:;"
	    "送信済みアイテム:0:送信済みアイテム:-:;");
	folders_free(&fs);
}

static void
prefix_and_case(void)
{
	/* Courier-style "INBOX." namespace; a server sending "\sent". */
	static const struct bfolder l[] = {
		B("INBOX", '.', ROLE_NONE), B("INBOX.Sent Mail", '.', ROLE_SENT),
		B("INBOX.Work", '.', ROLE_NONE),
		B("INBOX.Work.Reports", '.', ROLE_NONE),
		B("INBOX.a/b", '.', ROLE_NONE),
	};
	static const struct bfolder n[] = {
		B("INBOX", '/', ROLE_NONE), B("Sent Items", '/', ROLE_SENT),
	};
	struct folders	*fs = build(l, N(l), n, N(n), "INBOX.");

	CHECK_STR(dump(fs),
	    "INBOX:1:INBOX:INBOX:;"
	    "Sent Items:2:INBOX.Sent Mail:Sent Items:;"
	    "Work:0:INBOX.Work:-:C;"
	    "Work/Reports:0:INBOX.Work.Reports:-:;"
	    "a_b:0:INBOX.a/b:-:;");
	folders_free(&fs);
}

static void
follow_and_hide(void)
{
	static const char *const from[] = { "Projects", "Archive.2019" };
	static const char *const to[] = { "Work", NULL };
	struct folders_input	 in;
	struct folders		*fs;
	const char		*err;

	memset(&in, 0, sizeof(in));
	in.list[BACKEND_LEGACY] = legacy_tb;
	in.n[BACKEND_LEGACY] = N(legacy_tb);
	in.list[BACKEND_NEW] = new_tb;
	in.n[BACKEND_NEW] = N(new_tb);
	in.follow_from = from;
	in.follow_to = to;
	in.nfollow = 2;
	fs = folders_build(&in, &err);
	CHECK(folders_find(fs, "Work") != NULL);
	CHECK(folders_find(fs, "Work/Alpha") != NULL);
	CHECK(folders_find(fs, "Archive/2019") == NULL);
	/* The new server's Projects is still there, on its own. */
	CHECK(folders_find(fs, "Projects") != NULL &&
	    !folders_find(fs, "Projects")->part[BACKEND_LEGACY].present);
	CHECK(!folders_find(fs, "Archive")->has_children);
	folders_free(&fs);
}

static void
placeholders_and_missing_roles(void)
{
	static const struct bfolder l[] = {
		B("INBOX", '.', ROLE_NONE), B("a.b.c", '.', ROLE_NONE),
		B("下書き", '.', ROLE_NONE),
	};
	struct folders	*fs = build(l, N(l), NULL, 0, NULL);

	/* No new folder of the role: Office 365's name is used. */
	CHECK_STR(dump(fs),
	    "INBOX:1:INBOX:-:;"
	    "Drafts:3:下書き:-:;"
	    "a:0:-:-:CP;"
	    "a/b:0:-:-:CP;"
	    "a/b/c:0:a.b.c:-:;");
	CHECK(!folder_selectable(folders_find(fs, "a")));
	CHECK(folder_selectable(folders_find(fs, "a/b/c")));
	folders_free(&fs);
}

static void
list_matching(void)
{
	static const struct {
		const char	*pat, *path;
		bool		 match;
	} rows[] = {
		{ "*", "Archive/2019", true }, { "%", "Archive", true },
		{ "%", "Archive/2019", false }, { "Archive/%", "Archive/2019",
		  true }, { "%/2019", "Archive/2019", true },
		{ "*2019", "Sent Items/2019", true }, { "inbox", "INBOX", true },
		{ "Inbox/%", "INBOX/x", true }, { "INBOX", "INBOXY", false },
		{ "Sent*", "Sent Items", true }, { "Sent%", "Sent Items/x",
		  false }, { "", "INBOX", false },
		{ "*%*%*%*%*%*%*%*%*", "abc", false },	/* too many */
	};
	size_t	 i;

	for (i = 0; i < N(rows); i++)
		if (folders_match(rows[i].pat, rows[i].path) != rows[i].match) {
			CHECK(!"pattern");
			printf("#   %s vs %s\n", rows[i].pat, rows[i].path);
		}
}

/* A subscription of a deleted folder (LIST (SUBSCRIBED) said
 * \NonExistent) is in the tree, but gone: no parents, not a child. */
static void
subscription_of_a_gone_folder(void)
{
	static const struct bfolder n[] = {
		B("INBOX", '/', ROLE_NONE), B("Keep", '/', ROLE_NONE),
		{ .name = (char *)"Keep", .sep = '/', .subscribed = true },
		{ .name = (char *)"Old/Gone", .sep = '/', .noselect = true,
		  .subscribed = true, .nonexistent = true },
		{ .name = (char *)"Sent", .sep = '/', .noselect = true,
		  .subscribed = true, .nonexistent = true },
	};
	struct folders		*fs = build(NULL, 0, n, N(n), NULL);
	const struct ufolder	*f;

	CHECK(fs != NULL);
	if (fs == NULL)
		return;
	CHECK((f = folders_find(fs, "Old/Gone")) != NULL && folder_gone(f) &&
	    !folder_selectable(f) && folder_subscribed(f));
	CHECK(folders_find(fs, "Old") == NULL);		/* no placeholder */
	CHECK((f = folders_find(fs, "Keep")) != NULL && !folder_gone(f) &&
	    folder_selectable(f) && !f->has_children);
	/* A gone "Sent" takes no role: Sent Items stays the sent folder. */
	CHECK((f = folders_find(fs, "Sent")) != NULL && f->role == ROLE_NONE);
	CHECK(folders_role(fs, ROLE_SENT) == NULL ||
	    !folder_gone(folders_role(fs, ROLE_SENT)));
	folders_free(&fs);
}

static const struct unit_case cases[] = {
	UNIT_CASE(testbed_shape),
	UNIT_CASE(outlook_used_legacy),
	UNIT_CASE(prefix_and_case),
	UNIT_CASE(follow_and_hide),
	UNIT_CASE(placeholders_and_missing_roles),
	UNIT_CASE(list_matching),
	UNIT_CASE(subscription_of_a_gone_folder),
};

UNIT_MAIN(cases)
