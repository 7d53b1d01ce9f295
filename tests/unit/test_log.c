/*
 * Tests of the logger (proxy/core/log.c), with its stderr output redirected to
 * a temporary file: the line format, level filtering, errno handling, and
 * above all that nothing a client sends can split a line or forge one.
 */

#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <unistd.h>

#include "unit.h"

#include "proxy/core/log.h"

static FILE	*out;

static void
start(int level)
{
	if ((out = tmpfile()) == NULL) {
		perror("tmpfile");
		exit(1);
	}
	log_init(1, level, "test_log");
	log_setoutput(out);
}

/* Everything logged since start(); the caller frees it. */
static char *
finish(void)
{
	char	*buf = calloc(1, 65536);
	size_t	 n;

	fflush(out);
	rewind(out);
	n = fread(buf, 1, 65535, out);
	buf[n] = '\0';
	fclose(out);
	log_setoutput(NULL);
	return buf;
}

static int
count_char(const char *s, char c)
{
	int	 n = 0;

	for (; *s != '\0'; s++)
		n += *s == c;
	return n;
}

/* "2024-05-01T12:34:56.789Z " with digits where digits belong. */
static const char *
skip_timestamp(const char *line)
{
	static const char	 shape[] = "dddd-dd-ddTdd:dd:dd.dddZ ";
	size_t			 i;

	for (i = 0; shape[i] != '\0'; i++) {
		if (shape[i] == 'd' ? line[i] < '0' || line[i] > '9' :
		    line[i] != shape[i])
			return NULL;
	}
	return line + i;
}

/* Log one message and return what follows the timestamp. */
static void
check_line(const char *got_all, const char *want)
{
	const char	*rest = skip_timestamp(got_all);

	CHECK(rest != NULL);
	CHECK_INT(count_char(got_all, '\n'), 1);
	if (rest != NULL)
		CHECK_STR(rest, want);
}

static void
test_format(void)
{
	char	*got;

	start(LOG_INFO);
	log_info("hello %d", 42);
	got = finish();
	check_line(got, "info: hello 42\n");
	free(got);

	start(LOG_INFO);
	log_warnx("backend=%s down", "legacy");
	got = finish();
	check_line(got, "warning: backend=legacy down\n");
	free(got);
}

static void
test_escape_controls(void)
{
	static const struct {
		const char	*arg;
		const char	*want;
	} rows[] = {
		{ "a\r\nb", "info: user=a\\r\\nb\n" },
		{ "\x1b[31mred\x1b[0m", "info: user=\\x1b[31mred\\x1b[0m\n" },
		{ "back\\slash", "info: user=back\\\\slash\n" },
		{ "tab\there", "info: user=tab\\there\n" },
		{ "del\x7f", "info: user=del\\x7f\n" },
		{ "bell\a", "info: user=bell\\x07\n" },
		/* A client trying to add a line of its own. */
		{ "x\n2030-01-01T00:00:00.000Z info: sid=1 event=login ok",
		    "info: user=x\\n2030-01-01T00:00:00.000Z info: sid=1 "
		    "event=login ok\n" },
		{ "送信済み", "info: user=送信済み\n" },
		{ "\xff", "info: user=\\xff\n" },
		{ "\xc0\xaf", "info: user=\\xc0\\xaf\n" },
		{ "\xe9\x80", "info: user=\\xe9\\x80\n" },
		{ "\xed\xa0\x80", "info: user=\\xed\\xa0\\x80\n" },
		/* Line breaks for viewers that know Unicode. */
		{ "a\xc2\x85" "b", "info: user=a\\u0085b\n" },
		{ "a\xe2\x80\xa8" "b", "info: user=a\\u2028b\n" },
		{ "a\xe2\x80\xa9" "b", "info: user=a\\u2029b\n" },
		{ "é", "info: user=é\n" },
	};
	char	*got;
	size_t	 i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		start(LOG_INFO);
		log_info("user=%s", rows[i].arg);
		got = finish();
		check_line(got, rows[i].want);
		free(got);
	}
}

static void
test_escape_every_control(void)
{
	char	 arg[40], *got, *s;
	int	 c, n = 0;

	for (c = 1; c < 0x20; c++)
		arg[n++] = (char)c;
	arg[n++] = 0x7f;
	arg[n] = '\0';
	start(LOG_DEBUG);
	log_debug("%s", arg);
	got = finish();
	CHECK(skip_timestamp(got) != NULL);
	for (s = got; *s != '\0' && s[1] != '\0'; s++)
		CHECK((unsigned char)*s >= 0x20 && *s != 0x7f);
	CHECK_INT(got[strlen(got) - 1], '\n');
	free(got);
}

static void
test_levels(void)
{
	char	*got;

	start(LOG_INFO);
	CHECK_INT(log_getlevel(), LOG_INFO);
	log_debug("hidden");
	log_info("one");
	log_warnx("two");
	log_sess(LOG_DEBUG, "s1", "hidden too");
	got = finish();
	CHECK(strstr(got, "hidden") == NULL);
	CHECK(strstr(got, "info: one\n") != NULL);
	CHECK(strstr(got, "warning: two\n") != NULL);
	CHECK_INT(count_char(got, '\n'), 2);
	free(got);

	start(LOG_INFO);
	log_setlevel(LOG_WARNING);
	log_info("quiet");
	log_warnx("loud");
	got = finish();
	CHECK_INT(count_char(got, '\n'), 1);
	CHECK(strstr(got, "warning: loud\n") != NULL);
	free(got);

	start(LOG_DEBUG);
	log_debug("detail %s", "x");
	got = finish();
	check_line(got, "debug: detail x\n");
	free(got);
}

static void
test_errno(void)
{
	char	*got;

	start(LOG_INFO);
	errno = ENOENT;
	log_warn("open %s", "/etc/x");
	CHECK_INT(errno, ENOENT);
	log_info("after");
	CHECK_INT(errno, ENOENT);
	got = finish();
	CHECK(strstr(got, "warning: open /etc/x: No such file or "
	    "directory\n") != NULL);
	CHECK(strstr(got, "info: after\n") != NULL);
	free(got);
}

static void
test_sess(void)
{
	char	*got;

	start(LOG_INFO);
	log_sess(LOG_INFO, "a1b2", "event=login user=%s", "alice");
	got = finish();
	check_line(got, "info: sid=a1b2 event=login user=alice\n");
	free(got);

	start(LOG_INFO);
	log_sess(LOG_WARNING, "x\ny", "event=%s", "bad\r\n");
	got = finish();
	check_line(got, "warning: sid=x\\ny event=bad\\r\\n\n");
	free(got);

	start(LOG_INFO);
	log_sess(LOG_INFO, NULL, "event=accept");
	got = finish();
	check_line(got, "info: sid=- event=accept\n");
	free(got);
}

static void
test_long_line(void)
{
	char	*arg, *got;
	size_t	 len;

	arg = malloc(10001);
	memset(arg, 'a', 10000);
	arg[10000] = '\0';
	arg[1000] = '\n';
	start(LOG_INFO);
	log_info("%s", arg);
	got = finish();
	len = strlen(got);
	CHECK_INT(count_char(got, '\n'), 1);
	CHECK(len > 1000 && len < 2200);
	CHECK(len > 4 && strcmp(got + len - 4, "...\n") == 0);
	free(got);

	/* Escaping may grow a line fourfold; all of it is kept. */
	memset(arg, '\x01', 2000);
	arg[2000] = '\0';
	start(LOG_INFO);
	log_info("%s", arg);
	got = finish();
	CHECK_INT(count_char(got, '\n'), 1);
	CHECK(strstr(got, "...\n") == NULL);
	CHECK_INT(strlen(got), 25 + 6 + 2000 * 4 + 1);
	free(got);
	free(arg);
}

/* fatal() exits; run it in a child that logs to the same file. */
static void
check_fatal(int with_errno, const char *want)
{
	pid_t	 pid;
	int	 status = 0;
	char	*got;

	start(LOG_INFO);
	fflush(stdout);
	if ((pid = fork()) == 0) {
		errno = EACCES;
		if (with_errno)
			fatal("cannot %s", "bind");
		fatalx("cannot %s", "bind");
	}
	CHECK(pid > 0);
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	got = finish();
	check_line(got, want);
	free(got);
}

static void
test_fatal(void)
{
	check_fatal(0, "fatal: cannot bind\n");
	check_fatal(1, "fatal: cannot bind: Permission denied\n");
}

static const struct unit_case cases[] = {
	UNIT_CASE(test_format),
	UNIT_CASE(test_escape_controls),
	UNIT_CASE(test_escape_every_control),
	UNIT_CASE(test_levels),
	UNIT_CASE(test_errno),
	UNIT_CASE(test_sess),
	UNIT_CASE(test_long_line),
	UNIT_CASE(test_fatal),
};

UNIT_MAIN(cases)
