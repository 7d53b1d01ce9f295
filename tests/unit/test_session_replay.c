/*
 * The session fuzzer's harness (tests/fuzz/fuzz_session.c) as a unit test:
 * every seed and every saved finding in tests/fuzz/corpus/session/ runs
 * through a whole client session against the scripted servers, so that
 * `make check` (and, with the sanitizers, `make asan`) replays them, and
 * a few seeds have their answers checked.
 */
#include "tests/fuzz/fuzz_session.c"

#include "tests/unit/unit.h"

#define CORPUS	"tests/fuzz/corpus/session"

static int	initialised;

static char *
slurp(const char *path, size_t *len)
{
	FILE	*f;
	char	*buf = NULL;
	long	 n;

	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc(n + 1)) != NULL &&
	    fread(buf, 1, n, f) == (size_t)n)
		*len = (size_t)n;
	else {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* Runs one input; returns what the client heard (NUL-terminated). */
static char *
replay(const char *path)
{
	char	*data, *text = NULL;
	size_t	 len = 0;

	if (!initialised) {
		LLVMFuzzerInitialize(NULL, NULL);
		initialised = 1;
	}
	if ((data = slurp(path, &len)) == NULL) {
		printf("# cannot read %s\n", path);
		return NULL;
	}
	transcript = evbuffer_new();
	if (LLVMFuzzerTestOneInput((const uint8_t *)data, len) == 0) {
		evbuffer_add(transcript, "", 1);
		text = strdup((char *)evbuffer_pullup(transcript, -1));
	}
	evbuffer_free(transcript);
	transcript = NULL;
	free(data);
	return text;
}

static size_t
count(const char *text, const char *what)
{
	size_t	 n = 0;

	while ((text = strstr(text, what)) != NULL) {
		n++;
		text++;
	}
	return n;
}

static void
test_every_seed_and_finding(void)
{
	DIR		*d;
	struct dirent	*e;
	char		 path[512], *text;
	size_t		 n = 0;

	if (!CHECK((d = opendir(CORPUS)) != NULL))
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), CORPUS "/%s", e->d_name);
		text = replay(path);
		if (!CHECK(text != NULL))
			printf("#   %s\n", path);
		free(text);
		n++;
	}
	closedir(d);
	CHECK(n >= 10);
}

/* Both servers up: the merged INBOX has the one shared message once. */
static void
test_read_session(void)
{
	char	*t = replay(CORPUS "/read");

	if (!CHECK(t != NULL))
		return;
	CHECK(strstr(t, "a OK ") != NULL);
	CHECK(strstr(t, "* 4 EXISTS") != NULL);
	CHECK(strstr(t, "c OK [READ-WRITE]") != NULL);
	CHECK(strstr(t, "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\"")
	    != NULL);
	CHECK_INT(count(t, "\"Sent Items\""), 1);
	CHECK_INT(count(t, "ENVELOPE ("), 4);
	CHECK(strstr(t, "d OK FETCH completed") != NULL);
	CHECK(strstr(t, "* BYE") != NULL);
	CHECK(strstr(t, "h OK") != NULL);
	free(t);
}

/* The legacy server refuses connections and offline-auth is off: the
 * login is refused as unavailable, not as a wrong password. */
static void
test_legacy_down(void)
{
	char	*t = replay(CORPUS "/legacy_down");

	if (!CHECK(t != NULL))
		return;
	CHECK(strstr(t, "a NO [UNAVAILABLE]") != NULL);
	CHECK(strstr(t, "AUTHENTICATIONFAILED") == NULL);
	free(t);
}

/* The new server refuses connections: the legacy side serves, and the
 * client is told. */
static void
test_new_down(void)
{
	char	*t = replay(CORPUS "/new_down");

	if (!CHECK(t != NULL))
		return;
	CHECK(strstr(t, "* OK [ALERT] The new mail server") != NULL);
	CHECK(strstr(t, "a OK ") != NULL);
	CHECK(strstr(t, "* 3 EXISTS") != NULL);
	CHECK(strstr(t, "b OK [READ-WRITE]") != NULL);
	free(t);
}

/* Both servers refuse every folder command: SELECT fails with NO. */
static void
test_servers_refusing(void)
{
	char	*t = replay(CORPUS "/refusing");

	if (!CHECK(t != NULL))
		return;
	CHECK(strstr(t, "a OK ") != NULL);
	CHECK(strstr(t, "b NO [UNAVAILABLE]") != NULL);
	/* Not selected, so UID commands are BAD for the state; the session
	 * goes on to a clean LOGOUT. */
	CHECK(strstr(t, "c BAD UID not allowed now") != NULL);
	CHECK(strstr(t, "e OK LOGOUT completed") != NULL);
	free(t);
}

/* LIST (SPECIAL-USE) gives the role folders only (RFC 6154 §5.1); a
 * folder whose name has a space is selected by its quoted name. */
static void
test_list_special_use(void)
{
	char	*t = replay(CORPUS "/list_special_use"), *plain;

	if (!CHECK(t != NULL))
		return;
	plain = strstr(t, "b OK LIST completed");
	if (CHECK(plain != NULL)) {
		*plain = '\0';
		CHECK_INT(count(t, "* LIST ("), 5);
		CHECK(strstr(t, "\"/\" INBOX") == NULL);
		CHECK(strstr(t, "\\Sent) \"/\" \"Sent Items\"") != NULL);
		*plain = 'b';
	}
	CHECK(strstr(t, "e OK [READ-WRITE]") != NULL);
	CHECK(strstr(t, "Subject: message 1") != NULL);
	free(t);
}

static const struct unit_case cases[] = {
	UNIT_CASE(test_every_seed_and_finding),
	UNIT_CASE(test_read_session),
	UNIT_CASE(test_legacy_down),
	UNIT_CASE(test_new_down),
	UNIT_CASE(test_servers_refusing),
	UNIT_CASE(test_list_special_use),
};

UNIT_MAIN(cases)
