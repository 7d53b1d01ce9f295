/*
 * Per-user state store: file naming, permissions, schema versioning,
 * folder-follow rows across reopen, nested transactions.
 */
#include <sys/stat.h>

#include <stdio.h>
#include <unistd.h>

#include "proxy/merge/state.h"
#include "unit.h"

static char	 dir[64];

static void
setup(void)
{
	unit_scratch_dir(dir, sizeof(dir), "state");
}

static void
file_names(void)
{
	char	*s;

	s = state_file_name("alice");
	CHECK_STR(s, "alice.db");
	free(s);
	s = state_file_name("alice@example.ac.jp");
	CHECK_STR(s, "alice@example.ac.jp.db");
	free(s);
	/* Nothing can climb out of the state directory. */
	s = state_file_name("../etc/passwd");
	CHECK_STR(s, "%2e.%2fetc%2fpasswd.db");
	free(s);
	s = state_file_name("a b/é");
	CHECK_STR(s, "a%20b%2f%c3%a9.db");
	free(s);
}

static void
open_creates_private_files(void)
{
	struct state	*st;
	struct stat	 sb;
	char		 err[256], path[128], sub[96];

	setup();
	snprintf(sub, sizeof(sub), "%s/users", dir);
	st = state_open(sub, "alice", err, sizeof(err));
	if (!CHECK(st != NULL)) {
		printf("# %s\n", err);
		return;
	}
	CHECK_INT(state_schema_version(st), 5);
	state_close(&st);
	CHECK(st == NULL);
	CHECK(stat(sub, &sb) == 0 && (sb.st_mode & 0777) == 0700);
	snprintf(path, sizeof(path), "%s/alice.db", sub);
	CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
}

static void
refuses_open_directory(void)
{
	struct state	*st;
	char		 err[256];

	setup();
	chmod(dir, 0755);
	st = state_open(dir, "alice", err, sizeof(err));
	CHECK(st == NULL);
	CHECK(strstr(err, "must not be accessible") != NULL);
}

struct collect {
	char	 buf[512];
};

static void
collect_cb(const char *legacy, const char *unified, void *arg)
{
	struct collect	*c = arg;
	size_t		 n = strlen(c->buf);

	snprintf(c->buf + n, sizeof(c->buf) - n, "%s>%s;", legacy,
	    unified ? unified : "(hidden)");
}

static void
folder_follow_rows(void)
{
	struct state	*st;
	struct collect	 c = { "" };
	char		 err[256];

	setup();
	st = state_open(dir, "carol", err, sizeof(err));
	if (!CHECK(st != NULL))
		return;
	state_folder_follow(st, "Projects", "Work/Projects");
	state_folder_follow(st, "Old", NULL);
	state_folder_follow(st, "Projects", "Work/P2");
	state_close(&st);
	st = state_open(dir, "carol", err, sizeof(err));
	CHECK_INT(state_folder_each(st, collect_cb, &c), 0);
	CHECK_STR(c.buf, "Old>(hidden);Projects>Work/P2;");
	state_close(&st);
}

static void
meta_and_transactions(void)
{
	struct state	*st;
	char		 err[256], *v;

	setup();
	st = state_open(dir, "dave", err, sizeof(err));
	if (!CHECK(st != NULL))
		return;
	CHECK_INT(state_begin(st), 0);
	CHECK_INT(state_meta_set(st, "k", "one"), 0);
	CHECK_INT(state_begin(st), 0);
	CHECK_INT(state_meta_set(st, "k", "two"), 0);
	CHECK_INT(state_commit(st), 0);		/* inner: nothing yet */
	CHECK_INT(state_commit(st), 0);
	v = state_meta_get(st, "k");
	CHECK_STR(v, "two");
	free(v);

	/* An inner rollback dooms the outer transaction. */
	CHECK_INT(state_begin(st), 0);
	CHECK_INT(state_meta_set(st, "k", "three"), 0);
	CHECK_INT(state_begin(st), 0);
	state_rollback(st);
	CHECK_INT(state_commit(st), -1);
	v = state_meta_get(st, "k");
	CHECK_STR(v, "two");
	free(v);
	CHECK(state_meta_get(st, "missing") == NULL);
	state_close(&st);
}

static void
cleanup(void)
{
	char	 cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK_INT(system(cmd), 0);
}

static const struct unit_case cases[] = {
	UNIT_CASE(file_names),
	UNIT_CASE(open_creates_private_files),
	UNIT_CASE(refuses_open_directory),
	UNIT_CASE(folder_follow_rows),
	UNIT_CASE(meta_and_transactions),
	UNIT_CASE(cleanup),
};

UNIT_MAIN(cases)
