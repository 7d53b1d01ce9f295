/*
 * Tests of the configuration parser (conf/parse.c): tables of config
 * texts, written to files and loaded, with the values they must give or
 * the exact "FILE:LINE: message" errors; the refusal of secrets that
 * others may read; username templates; send-via routing; and the sample
 * config and the example in docs/config.md, which must stay loadable.
 */

#include <sys/stat.h>

#include <fcntl.h>
#include <syslog.h>
#include <grp.h>
#include <unistd.h>

#include "unit.h"

#include "conf/config.h"

#define NO_CHECKS	CONFIG_NO_SYSTEM_CHECKS

static char	 tmpdir[] = "/tmp/test_conf.XXXXXX";
static int	 tmpseq;

/* Write LEN bytes to a new file of the given mode; returns its path. */
static char *
write_file(const char *text, size_t len, mode_t mode)
{
	static char	 path[64];
	int		 fd;

	if (tmpseq == 0 && mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%d.conf", tmpdir, ++tmpseq);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd == -1 || write(fd, text, len) != (ssize_t)len ||
	    fchmod(fd, mode) == -1 || close(fd) == -1) {
		perror(path);
		exit(1);
	}
	return path;
}

static char *
read_file(const char *path, size_t *len_r)
{
	FILE	*fp = fopen(path, "rb");
	char	*buf;
	size_t	 len;

	if (fp == NULL || (buf = malloc(1 << 20)) == NULL)
		return NULL;
	len = fread(buf, 1, (1 << 20) - 1, fp);
	fclose(fp);
	buf[len] = '\0';
	*len_r = len;
	return buf;
}

/* Load TEXT from a file and compare the errors with WANT ("LINE: msg"). */
static struct config *
load_expect(const char *text, size_t len, mode_t mode, int flags,
    const char *const *want)
{
	struct config_errors	 errs;
	struct config		*conf;
	char			*path = write_file(text, len, mode), full[512];
	size_t			 i, nwant = 0;

	while (want != NULL && want[nwant] != NULL)
		nwant++;
	conf = config_load(path, flags, &errs);
	CHECK_INT(errs.count, nwant);
	for (i = 0; i < errs.count && i < nwant; i++) {
		snprintf(full, sizeof(full), "%s:%s", path, want[i]);
		CHECK_STR(errs.msg[i], full);
	}
	for (; i < errs.count; i++)
		printf("#   extra error: %s\n", errs.msg[i]);
	CHECK((conf == NULL) == (nwant != 0));
	config_errors_clear(&errs);
	unlink(path);
	return conf;
}

static struct config *
load_text(const char *text, const char *const *want)
{
	return load_expect(text, strlen(text), 0600, NO_CHECKS, want);
}

/* Nine lines that are valid on their own. */
#define BASE								\
	"tls-certificate \"/c.pem\"\n"					\
	"tls-key \"/k.pem\"\n"						\
	"listen imap *:993 tls\n"					\
	"legacy {\n"							\
	"\timap mail.example.ac.jp:993 tls\n"				\
	"}\n"								\
	"new {\n"							\
	"\timap outlook.office365.com:993 tls\n"			\
	"}\n"

struct err_row {
	const char	*text;		/* put before BASE */
	const char	*want[6];
};

static const struct err_row prefix_rows[] = {
	{ "", { NULL } },
	{ "# only a comment\n\n;;\n", { NULL } },
	{ "foo bar\n", { "1: unknown keyword \"foo\"" } },
	{ "log-level verbose\n", { "1: log-level: invalid argument "
	    "\"verbose\" (usage: log-level debug | info | warn)" } },
	{ "log-level # a comment is no argument\n", { "1: log-level: wrong "
	    "number of arguments (usage: log-level debug | info | warn)" } },
	{ "state-dir\n", { "1: state-dir: wrong number of arguments "
	    "(usage: state-dir PATH)" } },
	{ "\n\nstate-dir a b\n", { "3: state-dir: wrong number of arguments "
	    "(usage: state-dir PATH)" } },
	{ "state-dir /a\nstate-dir /b\n", { "2: state-dir given twice "
	    "(first at line 1)" } },
	{ "connect-timeout 10x\n", { "1: connect-timeout: invalid duration "
	    "\"10x\" (a number with ms, s, m or h)" } },
	{ "connect-timeout s\n", { "1: connect-timeout: invalid duration "
	    "\"s\" (a number with ms, s, m or h)" } },
	{ "command-timeout 0\n", { "1: command-timeout: duration out of "
	    "range \"0\"" } },
	{ "command-timeout 99999999999ms\n", { "1: command-timeout: duration "
	    "out of range \"99999999999ms\"" } },
	{ "command-timeout 1000h\n", { "1: command-timeout: duration out of "
	    "range \"1000h\"" } },
	{ "backend-idle-after never\n", { "1: backend-idle-after: invalid "
	    "duration \"never\" (a number with ms, s, m or h)" } },
	{ "poll-interval 11m\n", { "1: poll-interval: at most 10m (backend "
	    "IDLE is renewed at this interval)" } },
	{ "max-login-failures 0\n", { "1: max-login-failures: number out "
	    "of range \"0\" (1 to 1000000)" } },
	{ "max-message-size 5T\n", { "1: max-message-size: invalid size "
	    "\"5T\" (a number with k, M or G)" } },
	{ "max-message-size 4G\n", { "1: max-message-size: size out of "
	    "range \"4G\"" } },
	{ "tombstone-action maybe\n", { "1: tombstone-action: invalid "
	    "argument \"maybe\" (usage: tombstone-action hide | expunge)" } },
	{ "local-keywords sometimes\n", { "1: local-keywords: invalid "
	    "argument \"sometimes\" (usage: local-keywords auto | yes | no)" } },
	{ "legacy-writes some\n", { "1: legacy-writes: invalid argument "
	    "\"some\" (usage: legacy-writes none | flags | all)" } },
	{ "listen imap *:99999 tls\n", { "1: listen: invalid port in "
	    "\"*:99999\"" } },
	{ "listen imap *:0 tls\n", { "1: listen: invalid port in \"*:0\"" } },
	{ "listen imap *: tls\n", { "1: listen: invalid port in \"*:\"" } },
	{ "listen imap localhost tls\n", { "1: listen: no port in "
	    "\"localhost\" (expected HOST:PORT)" } },
	{ "listen imap ::1:143 starttls\n", { "1: listen: IPv6 address "
	    "without brackets in \"::1:143\" (expected [IPv6]:PORT)" } },
	{ "listen imap [::g]:143 starttls\n", { "1: listen: invalid IPv6 "
	    "address \"::g\"" } },
	{ "listen imap [::1]143 starttls\n", { "1: listen: invalid address "
	    "\"[::1]143\" (expected [IPv6]:PORT)" } },
	{ "listen imap bad..host:143 starttls\n", { "1: listen: invalid host "
	    "name in \"bad..host:143\"" } },
	{ "listen pop3 *:110 tls\n", { "1: listen: invalid argument \"pop3\" "
	    "(usage: listen imap|submission ADDR tls|starttls "
	    "[allow-plaintext-auth])" } },
	{ "listen imap *:143 plain\n", { "1: listen: invalid argument "
	    "\"plain\" (usage: listen imap|submission ADDR tls|starttls "
	    "[allow-plaintext-auth])" } },
	{ "listen imap *:993 tls\n", { "4: listen: *:993 is already used" } },
	{ "listen imap *:143 tls allow-plaintext-auth\n", { "1: listen: "
	    "allow-plaintext-auth needs starttls" } },
	{ "listen imap *:143 starttls allow-plaintext\n", { "1: listen: "
	    "invalid argument \"allow-plaintext\" (usage: listen "
	    "imap|submission ADDR tls|starttls [allow-plaintext-auth])" } },
	{ "listen submission *:587 starttls\n", { "1: listen: a submission "
	    "listener needs a submission statement in the new block" } },
	{ "state-dir \"/a\n", { "1: unterminated quoted string" } },
	{ "state-dir \"/a\\n\"\n", { "1: invalid escape in quoted string "
	    "(only \\\" and \\\\)" } },
	{ "state-dir \"/a\"b\n", { "1: no blank after quoted string" } },
	{ "state-dir /a\"b\"\n", { "1: quote inside a word" } },
	{ "state-dir /a\001b\n", { "1: control character in a word" } },
	{ "state-dir \"/a\tb\"\n", { "1: control character in quoted "
	    "string" } },
	{ "hide-folder \"\xff\"\n", { "1: invalid UTF-8" } },
	{ "hide-folder \"\xe9\x80\x81\xe4\xbf\"\n", { "1: invalid UTF-8" } },
	{ "hide-folder \xc0\xaf\n", { "1: invalid UTF-8" } },
	{ "hide-folder \xed\xa0\x80\n", { "1: invalid UTF-8" } },
	{ "hide-folder \"\"\n", { "1: hide-folder: empty argument" } },
	{ "hide-folder a//b\n", { "1: hide-folder: invalid folder path "
	    "\"a//b\"" } },
	{ "hide-folder /a\n", { "1: hide-folder: invalid folder path "
	    "\"/a\"" } },
	{ "folder-role inbox legacy X\n", { "1: folder-role: invalid role "
	    "\"inbox\" (usage: folder-role sent|drafts|trash|junk|archive "
	    "legacy|new NAME)" } },
	{ "folder-role Sent legacy X\n", { "1: folder-role: invalid role "
	    "\"Sent\" (usage: folder-role sent|drafts|trash|junk|archive "
	    "legacy|new NAME)" } },
	{ "folder-role sent old X\n", { "1: folder-role: invalid argument "
	    "\"old\" (usage: folder-role sent|drafts|trash|junk|archive "
	    "legacy|new NAME)" } },
	{ "folder-role sent legacy A\nfolder-role sent legacy B\n",
	    { "2: folder-role: sent legacy is already assigned" } },
	{ "folder-role sent legacy A\nfolder-role trash legacy A\n",
	    { "2: folder-role: legacy folder \"A\" already has a role" } },
	{ "send-via old \"*\"\n", { "1: send-via: invalid argument \"old\" "
	    "(usage: send-via legacy|new PATTERN)" } },
	{ "send-via legacy \"*@ml.example.ac.jp\"\n", { "1: send-via: the "
	    "legacy block has no submission statement" } },
	{ "imap a:1 tls\n", { "1: imap is only allowed inside a legacy or "
	    "new block" } },
	{ "}\n", { "1: } without a block" } },
	{ "\n{\n}\n", { "2: { without a keyword" } },
	{ "state-dir /x {\n\tfoo\n}\n", { "1: state-dir does not open a "
	    "block" } },
	{ "bogus {\n\timap a:1 tls\n}\n", { "1: unknown keyword \"bogus\"" } },
	{ "legacy x {\n}\n", { "1: legacy takes no arguments" } },
	{ "legacy {\n\timap a:1 tls\n}\n", { "7: duplicate legacy block "
	    "(first at line 1)" } },
	{ "legacy\n", { "1: legacy: expected {" } },
	/* Several mistakes, each reported, in file order. */
	{ "foo\nlog-level loud\nstate-dir\nconnect-timeout 1y\n", {
	    "1: unknown keyword \"foo\"",
	    "2: log-level: invalid argument \"loud\" (usage: log-level "
	    "debug | info | warn)",
	    "3: state-dir: wrong number of arguments (usage: state-dir PATH)",
	    "4: connect-timeout: invalid duration \"1y\" (a number with ms, "
	    "s, m or h)" } },
};

static void
test_errors_prefixed(void)
{
	char	 text[2048];
	size_t	 i;

	for (i = 0; i < sizeof(prefix_rows) / sizeof(prefix_rows[0]); i++) {
		struct config	*conf;
		int		 before = unit_failed_checks;

		snprintf(text, sizeof(text), "%s%s", prefix_rows[i].text, BASE);
		conf = load_text(text, prefix_rows[i].want);
		if (unit_failed_checks != before)
			printf("#   row %zu\n", i);
		config_free(&conf);
	}
}

struct full_row {
	const char	*text;
	const char	*want[6];
};

static const struct full_row full_rows[] = {
	{ "", { "1: missing legacy block", "1: missing new block",
	    "1: no listen statement" } },
	{ "listen imap *:993 tls\nlegacy {\n\timap a:1 tls\n}\n",
	    { "5: missing new block",
	    "1: listen: needs tls-certificate and tls-key" } },
	{ "tls-certificate /c\ntls-key /k\nlisten imap *:993 tls\n"
	    "legacy {\n}\nnew {\n\timap [::1]:993 tls\n\tauth xoauth2\n}\n",
	    { "4: legacy block has no imap statement",
	    "8: auth: xoauth2 needs a token-command" } },
	{ "tls-certificate /c\ntls-key /k\nlisten imap *:993 tls\n"
	    "legacy {\n\timap a:1 tls\n\tauth xoauth2\n"
	    "\ttoken-command t\n}\n"
	    "new {\n\timap b:1 tls\n\ttoken-command t\n}\n",
	    { "6: auth: the legacy server must use password: it is what "
	    "verifies the client's password",
	    "11: token-command: only used with auth xoauth2" } },
	{ "tls-certificate /c\ntls-key /k\nlisten imap *:993 tls\n"
	    "legacy {\n\timap a:1 tls\n\tusername \"%x\"\n}\n"
	    "new {\n\timap b:1 tls\n\tusername \"a%\"\n\tauth xoauth2\n"
	    "\ttoken-command \"t %n\"\n}\n",
	    { "6: username: unknown %x in template",
	    "10: username: % at the end of the template",
	    "12: token-command: unknown %n in template" } },
	{ "tls-certificate /c\ntls-key /k\nlisten imap *:993 tls\n"
	    "legacy {\n\timap *:1 tls\n\tlisten imap *:1 tls\n"
	    "\tnew {\n\t\timap b:1 tls\n\t}\n}\n"
	    "new {\n\timap b:1 tls\n\tca-file\n}\n",
	    { "5: imap: \"*\" is only for listen",
	    "6: listen is not allowed inside a block",
	    "7: new is not allowed inside a block",
	    "13: ca-file: wrong number of arguments (usage: ca-file PATH)",
	    "4: legacy block has no imap statement" } },
	/* Missing "}": the rest of the file is read as the block. */
	{ "tls-certificate /c\ntls-key /k\nlisten imap *:993 tls\n"
	    "legacy {\n\timap a:1 tls\n"
	    "new {\n\timap b:1 tls\n}\n",
	    { "6: new is not allowed inside a block",
	    "4: unterminated legacy block", "9: missing new block" } },
	{ "tls-certificate /c\ntls-key /k\nlisten imap *:993 tls\n"
	    "legacy {\n\timap a:1 tls\n}\nnew {\n\timap b:1 tls\n}\n"
	    "x {\n\timap\n",
	    { "10: unknown keyword \"x\"", "10: unterminated block" } },
	/* Statements end at ";" too, and blocks may sit on one line. */
	{ "tls-certificate /c; tls-key /k; listen imap *:993 tls\n"
	    "legacy { imap a:1 tls; username %n }\n"
	    "new { imap b:1 starttls } state-dir \"/s d\"\n", { NULL } },
};

static void
test_errors_full(void)
{
	size_t	 i;

	for (i = 0; i < sizeof(full_rows) / sizeof(full_rows[0]); i++) {
		struct config	*conf;
		int		 before = unit_failed_checks;

		conf = load_text(full_rows[i].text, full_rows[i].want);
		if (unit_failed_checks != before)
			printf("#   full row %zu\n", i);
		config_free(&conf);
	}
}

static void
test_limits(void)
{
	static const char *const want_nul[] = { "2: NUL byte in line", NULL };
	static const char *const want_long[] = {
		"1: line too long (more than 4096 bytes)", NULL };
	static const char *const want_tok[] = { "1: argument too long", NULL };
	static const char	 nul[] = "state-dir /a\nstate-dir /b\0c\n" BASE;
	char			*text;
	struct config		*conf;

	conf = load_expect(nul, sizeof(nul) - 1, 0600, NO_CHECKS, want_nul);
	config_free(&conf);

	text = malloc(8192 + sizeof(BASE));
	memset(text, 'x', 5000);
	strcpy(text + 5000, "\n" BASE);
	conf = load_text(text, want_long);
	config_free(&conf);

	memcpy(text, "state-dir \"", 11);
	memset(text + 11, 'y', 1025);
	strcpy(text + 1036, "\"\n" BASE);
	conf = load_text(text, want_tok);
	config_free(&conf);
	strcpy(text + 1035, "\"\n" BASE);	/* 1024 bytes: fine */
	conf = load_text(text, NULL);
	CHECK(conf != NULL && strlen(conf->state_dir) == 1024);
	config_free(&conf);
	free(text);
}

static void
test_error_cap(void)
{
	struct config_errors	 errs;
	struct config		*conf;
	char			*text, want[64];
	size_t			 i;

	text = malloc(200 * 8 + 1);
	for (i = 0; i < 200; i++)
		memcpy(text + i * 8, "bogus 1\n", 8);
	conf = config_parse_buffer("t.conf", text, 200 * 8, NO_CHECKS, &errs);
	CHECK(conf == NULL);
	CHECK_INT(errs.count, CONFIG_MAX_ERRORS);
	CHECK_STR(errs.msg[0], "t.conf:1: unknown keyword \"bogus\"");
	snprintf(want, sizeof(want), "t.conf:%d: too many errors, giving up",
	    CONFIG_MAX_ERRORS - 1);
	CHECK_STR(errs.msg[CONFIG_MAX_ERRORS - 1], want);
	config_errors_clear(&errs);
	CHECK_INT(errs.count, 0);
	free(text);
}

static void
test_values(void)
{
	static const char	 text[] =
	    "state-dir \"/srv/im state\"\n"
	    "log syslog\n"
	    "log-level debug\n"
	    "user _imapmerge\n"
	    "group mail\n"
	    "tls-certificate \"/etc/c.pem\"\n"
	    "tls-key \"/etc/k.pem\"\n"
	    "listen imap *:143 starttls allow-plaintext-auth\n"
	    "listen imap [::1]:993 tls\n"
	    "listen submission 127.0.0.1:587 starttls\n"
	    "listen submission localhost:465 tls\n"
	    "connect-timeout 500ms\n"
	    "command-timeout 2m\n"
	    "backend-idle-after off\n"
	    "max-message-size 10M\n"
	    "legacy-writes none\n"
	    "tombstone-action expunge\n"
	    "local-keywords yes\n"
	    "sent-copy-window 5m\n"
	    "sent-copy-wait 3s\n"
	    "hide-folder Clutter\n"
	    "hide-folder \"アーカイブ/古い\"\n"
	    "folder-role sent legacy \"送信控え\"\n"
	    "folder-role junk new \"Bulk\"\n"
	    "send-via new \"noreply@ml.example.ac.jp\"\n"
	    "send-via legacy \"*@ml.example.ac.jp\"\n"
	    "legacy {\n"
	    "\timap mail.example.ac.jp:993 tls\n"
	    "\tsubmission mail.example.ac.jp:587 starttls\n"
	    "\tca-file \"/etc/ca.pem\"\n"
	    "\tusername \"%n\"\n"
	    "}\n"
	    "new {\n"
	    "\timap [2001:db8::1]:143 plain\n"
	    "\tsubmission smtp.office365.com:587 starttls\n"
	    "\tusername \"%n@ms.example.ac.jp\"\n"
	    "\tauth xoauth2\n"
	    "\ttoken-command \"/bin/tok \\\"%u\\\" \\\\\"\n"
	    "\tfiles-sent-copies yes\n"
	    "}\n";
	struct config		*conf;
	const struct backend_conf *lg, *nw;

	conf = load_text(text, NULL);
	if (!CHECK(conf != NULL))
		return;
	CHECK_STR(conf->state_dir, "/srv/im state");
	CHECK_INT(conf->log_syslog, 1);
	CHECK_INT(conf->log_level, LOG_DEBUG);
	CHECK_STR(conf->user, "_imapmerge");
	CHECK_STR(conf->group, "mail");
	CHECK_STR(conf->tls_certificate, "/etc/c.pem");
	CHECK_STR(conf->tls_key, "/etc/k.pem");
	CHECK_INT(conf->nlisten, 4);
	CHECK(conf->listen[0].host == NULL);
	CHECK_INT(conf->listen[0].port, 143);
	CHECK_INT(conf->listen[0].proto, LISTEN_IMAP);
	CHECK_INT(conf->listen[0].tls, TLSMODE_STARTTLS);
	CHECK_INT(conf->listen[0].allow_plaintext_auth, 1);
	CHECK_STR(conf->listen[0].text, "*:143");
	CHECK_STR(conf->listen[1].host, "::1");
	CHECK_INT(conf->listen[1].port, 993);
	CHECK_INT(conf->listen[1].tls, TLSMODE_TLS);
	CHECK_INT(conf->listen[1].allow_plaintext_auth, 0);
	CHECK_STR(conf->listen[1].text, "[::1]:993");
	CHECK_STR(conf->listen[2].host, "127.0.0.1");
	CHECK_INT(conf->listen[2].proto, LISTEN_SUBMISSION);
	CHECK_STR(conf->listen[3].host, "localhost");
	CHECK_INT(conf->listen[3].port, 465);
	CHECK_INT(conf->connect_timeout_ms, 500);
	CHECK_INT(conf->command_timeout_ms, 120000);
	CHECK_INT(conf->backend_idle_after_ms, 0);
	CHECK_INT(conf->max_message_size, 10 << 20);
	CHECK_INT(conf->legacy_writes, LEGACY_WRITES_NONE);
	CHECK_INT(conf->tombstone_action, TOMBSTONE_EXPUNGE);
	CHECK_INT(conf->local_keywords, LOCAL_KEYWORDS_YES);
	CHECK_INT(conf->sent_copy_window_ms, 300000);
	CHECK_INT(conf->sent_copy_wait_ms, 3000);
	CHECK_INT(conf->nhide_folder, 2);
	CHECK_STR(conf->hide_folder[1], "アーカイブ/古い");
	CHECK_INT(conf->nfolder_role, 2);
	CHECK_INT(conf->folder_role[0].role, ROLE_SENT);
	CHECK_INT(conf->folder_role[0].side, BACKEND_LEGACY);
	CHECK_STR(conf->folder_role[0].name, "送信控え");
	CHECK_INT(conf->folder_role[1].role, ROLE_JUNK);
	CHECK_INT(conf->folder_role[1].side, BACKEND_NEW);
	CHECK_INT(conf->nsend_via, 2);

	lg = &conf->backend[BACKEND_LEGACY];
	nw = &conf->backend[BACKEND_NEW];
	CHECK_INT(lg->side, BACKEND_LEGACY);
	CHECK_STR(lg->imap.host, "mail.example.ac.jp");
	CHECK_INT(lg->imap.port, 993);
	CHECK_INT(lg->imap.tls, TLSMODE_TLS);
	CHECK_INT(lg->submission.port, 587);
	CHECK_INT(lg->submission.tls, TLSMODE_STARTTLS);
	CHECK_STR(lg->ca_file, "/etc/ca.pem");
	CHECK_STR(lg->username, "%n");
	CHECK_INT(lg->auth, BACKEND_AUTH_PASSWORD);
	CHECK(lg->token_command == NULL);
	CHECK_INT(lg->files_sent_copies, 0);
	CHECK_INT(nw->side, BACKEND_NEW);
	CHECK_STR(nw->imap.host, "2001:db8::1");
	CHECK_INT(nw->imap.tls, TLSMODE_PLAIN);
	CHECK(nw->ca_file == NULL);
	CHECK_STR(nw->username, "%n@ms.example.ac.jp");
	CHECK_INT(nw->auth, BACKEND_AUTH_XOAUTH2);
	CHECK_STR(nw->token_command, "/bin/tok \"%u\" \\");
	CHECK_INT(nw->files_sent_copies, 1);
	CHECK_STR(config_side_name(BACKEND_NEW), "new");
	config_free(&conf);
	CHECK(conf == NULL);
	config_free(&conf);
}

static void
test_defaults(void)
{
	struct config	*conf = load_text(BASE, NULL);

	if (!CHECK(conf != NULL))
		return;
	CHECK_STR(conf->state_dir, "/var/lib/imapmerge");
	CHECK_INT(conf->log_syslog, 0);
	CHECK_INT(conf->log_level, LOG_INFO);
	CHECK(conf->user == NULL && conf->group == NULL);
	CHECK_INT(conf->connect_timeout_ms, 10000);
	CHECK_INT(conf->command_timeout_ms, 60000);
	CHECK_INT(conf->backend_idle_after_ms, 1000);
	CHECK_INT(conf->max_message_size, 35 << 20);
	CHECK_INT(conf->legacy_writes, LEGACY_WRITES_FLAGS);
	CHECK_INT(conf->tombstone_action, TOMBSTONE_HIDE);
	CHECK_INT(conf->local_keywords, LOCAL_KEYWORDS_AUTO);
	CHECK_INT(conf->sent_copy_window_ms, 600000);
	CHECK_INT(conf->sent_copy_wait_ms, 20000);
	CHECK_STR(conf->backend[BACKEND_LEGACY].username, "%u");
	CHECK_STR(conf->backend[BACKEND_NEW].username, "%u");
	CHECK_INT(conf->backend[BACKEND_NEW].auth, BACKEND_AUTH_PASSWORD);
	CHECK(conf->backend[BACKEND_NEW].submission.host == NULL);
	CHECK_INT(conf->nsend_via, 0);
	CHECK_INT(config_route_sender(conf, "x@ml.example.ac.jp"),
	    BACKEND_NEW);
	config_free(&conf);
}

#define SECRET								\
	"tls-certificate /c\ntls-key /k\nlisten imap *:993 tls\n"	\
	"legacy {\n\timap a:993 tls\n}\n"				\
	"new {\n\timap b:993 tls\n\tauth xoauth2\n"			\
	"\ttoken-command \"/bin/tok %u\"\n}\n"

static void
check_secret_mode(mode_t mode, int refused)
{
	struct config_errors	 errs;
	struct config		*conf;
	char			*path, want[256];

	path = write_file(SECRET, strlen(SECRET), mode);
	conf = config_load(path, NO_CHECKS, &errs);
	CHECK((conf == NULL) == refused);
	CHECK_INT(errs.count, refused);
	if (refused && errs.count == 1) {
		snprintf(want, sizeof(want), "%s:10: token-command in a file "
		    "readable by group or others (chmod 600 %s)", path, path);
		CHECK_STR(errs.msg[0], want);
	}
	config_errors_clear(&errs);
	config_free(&conf);
	unlink(path);
}

/* With `group`: that group may read it (root:GROUP 0640), others not. */
static void
check_group_secret(void)
{
	struct config_errors	 errs;
	struct config		*conf;
	struct group		*gr = getgrgid(getgid());
	char			 text[1024], *path;
	size_t			 i;
	static const struct { mode_t mode; int refused; } rows[] = {
		{ 0640, 0 }, { 0600, 0 }, { 0644, 1 }, { 0604, 1 },
	};

	if (!CHECK(gr != NULL))
		return;
	snprintf(text, sizeof(text), "group %s\n%s", gr->gr_name, SECRET);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		path = write_file(text, strlen(text), rows[i].mode);
		conf = config_load(path, NO_CHECKS, &errs);
		if (!CHECK((conf == NULL) == rows[i].refused))
			printf("#   mode %o\n", (unsigned)rows[i].mode);
		if (rows[i].refused) {
			CHECK_INT(errs.count, 1);
			if (errs.count == 1)
				CHECK(strstr(errs.msg[0], "by a group other "
				    "than") != NULL);
		}
		config_errors_clear(&errs);
		config_free(&conf);
		unlink(path);
	}
	/* The group may read it only if the file is the group's. */
	snprintf(text, sizeof(text), "group nogroup\n%s", SECRET);
	path = write_file(text, strlen(text), 0640);
	conf = config_load(path, NO_CHECKS, &errs);
	if (getgrnam("nogroup") != NULL && getgrnam("nogroup")->gr_gid !=
	    getgid())
		CHECK(conf == NULL);
	config_errors_clear(&errs);
	config_free(&conf);
	unlink(path);
}

static void
test_secret_file_mode(void)
{
	struct config	*conf;

	check_secret_mode(0600, 0);
	check_secret_mode(0400, 0);
	check_secret_mode(0640, 1);
	check_secret_mode(0604, 1);
	check_secret_mode(0644, 1);
	check_group_secret();
	/* No secret in it: anyone may read it. */
	conf = load_expect(BASE, strlen(BASE), 0644, NO_CHECKS, NULL);
	config_free(&conf);
}

static void
test_file_errors(void)
{
	struct config_errors	 errs;
	struct config		*conf;
	char			 want[256];
	static const char	 text[] =
	    "tls-certificate \"/nonexistent/c.pem\"\n"
	    "tls-key /dev/null\n"
	    "listen imap *:993 tls\n"
	    "legacy {\n\timap a:993 tls\n\tca-file /nonexistent/ca\n}\n"
	    "new {\n\timap b:993 tls\n}\n";
	static const char *const want_missing[] = {
		"1: tls-certificate: \"/nonexistent/c.pem\": No such file or "
		"directory",
		"6: ca-file: \"/nonexistent/ca\": No such file or directory",
		NULL };

	conf = load_expect(text, strlen(text), 0600, 0, want_missing);
	config_free(&conf);
	conf = load_expect(text, strlen(text), 0600, NO_CHECKS, NULL);
	config_free(&conf);

	conf = config_load("/nonexistent/imapmerge.conf", 0, &errs);
	CHECK(conf == NULL);
	CHECK_INT(errs.count, 1);
	CHECK_STR(errs.msg[0], "/nonexistent/imapmerge.conf: No such file "
	    "or directory");
	config_errors_clear(&errs);

	conf = config_load("/tmp", 0, &errs);
	CHECK(conf == NULL);
	CHECK_INT(errs.count, 1);
	snprintf(want, sizeof(want), "/tmp: not a regular file");
	CHECK_STR(errs.msg[0], want);
	config_errors_clear(&errs);
}

static void
test_parse_buffer(void)
{
	struct config_errors	 errs;
	struct config		*conf;
	static const char	 text[] = BASE "state-dir /a\0b\n";

	conf = config_parse_buffer("mem", BASE, strlen(BASE), NO_CHECKS,
	    &errs);
	CHECK(conf != NULL);
	CHECK_INT(errs.count, 0);
	CHECK_STR(conf->path, "mem");
	config_free(&conf);

	conf = config_parse_buffer("mem", text, sizeof(text) - 1, NO_CHECKS,
	    &errs);
	CHECK(conf == NULL);
	CHECK_INT(errs.count, 1);
	CHECK_STR(errs.msg[0], "mem:10: NUL byte in line");
	config_errors_clear(&errs);
}

struct expand_row {
	const char	*tmpl;
	const char	*login;
	const char	*want;		/* NULL: refused */
};

static void
test_expand_username(void)
{
	static const struct expand_row rows[] = {
		{ "%u", "alice@example.ac.jp", "alice@example.ac.jp" },
		{ "%n", "alice@example.ac.jp", "alice" },
		{ "%d", "alice@example.ac.jp", "example.ac.jp" },
		{ "%n@ms.example.ac.jp", "alice", "alice@ms.example.ac.jp" },
		{ "%n@ms.example.ac.jp", "alice@example.ac.jp",
		    "alice@ms.example.ac.jp" },
		{ "%d", "alice", "" },
		{ "%n", "alice", "alice" },
		{ "%n|%d", "a@b@c", "a@b|c" },
		{ "%n|%d", "@", "|" },
		{ "100%%-%n", "bob", "100%-bob" },
		{ "plain", "bob", "plain" },
		{ "%u", "", "" },
		{ "%x", "bob", NULL },
		{ "abc%", "bob", NULL },
	};
	size_t	 i;
	char	*s;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		s = config_expand_username(rows[i].tmpl, rows[i].login);
		if (rows[i].want == NULL)
			CHECK(s == NULL);
		else
			CHECK_STR(s, rows[i].want);
		free(s);
	}
}

static void
test_expand_command(void)
{
	char	*s;

	s = config_expand_command("/bin/tok %u", "alice@ms.example.ac.jp");
	CHECK_STR(s, "/bin/tok 'alice@ms.example.ac.jp'");
	free(s);
	s = config_expand_command("tok %u", "o'brien; rm -rf /");
	CHECK_STR(s, "tok 'o'\\''brien; rm -rf /'");
	free(s);
	s = config_expand_command("100%% %u", "");
	CHECK_STR(s, "100% ''");
	free(s);
	CHECK(config_expand_command("tok %n", "a") == NULL);
}

static void
test_glob(void)
{
	static const struct {
		const char	*pat;
		const char	*s;
		int		 match;
	} rows[] = {
		{ "*@ml.example.ac.jp", "list@ml.example.ac.jp", 1 },
		{ "*@ml.example.ac.jp", "List@ML.Example.AC.JP", 1 },
		{ "*@ml.example.ac.jp", "list@ml.example.ac.jp.evil", 0 },
		{ "*@ml.example.ac.jp", "list@xml.example.ac.jp", 0 },
		{ "*@*ml.example.ac.jp", "list@xml.example.ac.jp", 1 },
		{ "a*b*c", "aXXbYYc", 1 },
		{ "a*b*c", "aXXbYY", 0 },
		{ "*", "", 1 },
		{ "", "", 1 },
		{ "", "a", 0 },
		{ "?", "", 0 },
		{ "?", "a", 1 },
		{ "?", "送", 1 },
		{ "??", "送", 0 },
		{ "a?c", "a送c", 1 },
		{ "送*", "送信", 1 },
		{ "*a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0 },
	};
	size_t	 i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (config_glob_match(rows[i].pat, rows[i].s) != rows[i].match)
			printf("#   glob row %zu\n", i);
		CHECK_INT(config_glob_match(rows[i].pat, rows[i].s),
		    rows[i].match);
	}
}

static void
test_route_sender(void)
{
	static const char	 text[] = BASE
	    "send-via new \"noreply@ml.example.ac.jp\"\n"
	    "send-via legacy \"*@ml.example.ac.jp\"\n"
	    "send-via legacy \"*@*.ml.example.ac.jp\"\n"
	    "legacy {\n\tsubmission mail.example.ac.jp:587 starttls\n}\n";
	struct config	*conf;
	static const char *const want[] = {
		"13: duplicate legacy block (first at line 4)",
		"11: send-via: the legacy block has no submission statement",
		NULL };

	/* A second legacy block is refused rather than merged. */
	conf = load_text(text, want);
	CHECK(conf == NULL);

	conf = load_text("send-via new \"noreply@ml.example.ac.jp\"\n"
	    "send-via legacy \"*@ml.example.ac.jp\"\n"
	    "send-via legacy \"*@*.ml.example.ac.jp\"\n"
	    "tls-certificate /c\ntls-key /k\nlisten imap *:993 tls\n"
	    "legacy {\n\timap a:993 tls\n"
	    "\tsubmission mail.example.ac.jp:587 starttls\n}\n"
	    "new {\n\timap b:993 tls\n}\n", NULL);
	if (!CHECK(conf != NULL))
		return;
	CHECK_INT(config_route_sender(conf, "noreply@ml.example.ac.jp"),
	    BACKEND_NEW);
	CHECK_INT(config_route_sender(conf, "NoReply@ML.example.ac.jp"),
	    BACKEND_NEW);
	CHECK_INT(config_route_sender(conf, "list@ml.example.ac.jp"),
	    BACKEND_LEGACY);
	CHECK_INT(config_route_sender(conf, "list@ML.EXAMPLE.AC.JP"),
	    BACKEND_LEGACY);
	CHECK_INT(config_route_sender(conf, "x@sub.ml.example.ac.jp"),
	    BACKEND_LEGACY);
	CHECK_INT(config_route_sender(conf, "alice@example.ac.jp"),
	    BACKEND_NEW);
	CHECK_INT(config_route_sender(conf, "x@ml.example.ac.jp.evil"),
	    BACKEND_NEW);
	CHECK_INT(config_route_sender(conf, ""), BACKEND_NEW);
	config_free(&conf);
}

static void
test_hide_folder(void)
{
	struct config	*conf;

	conf = load_text("hide-folder Clutter\nhide-folder \"プロジェクト/古い\"\n"
	    BASE, NULL);
	if (!CHECK(conf != NULL))
		return;
	CHECK(config_folder_hidden(conf, "Clutter"));
	CHECK(config_folder_hidden(conf, "clutter/sub"));
	CHECK(!config_folder_hidden(conf, "Clutters"));
	CHECK(!config_folder_hidden(conf, "INBOX/Clutter"));
	CHECK(config_folder_hidden(conf, "プロジェクト/古い"));
	CHECK(config_folder_hidden(conf, "プロジェクト/古い/2019"));
	CHECK(!config_folder_hidden(conf, "プロジェクト"));
	config_free(&conf);
}

/* The sample must load, only failing the checks of this machine. */
static void
test_sample_config(void)
{
	struct config_errors	 errs;
	struct config		*conf;
	char			*text, *path;
	size_t			 len, i;
	int			 found = 0;

	text = read_file("conf/imapmerge.conf", &len);
	if (!CHECK(text != NULL))
		return;
	path = write_file(text, len, 0600);
	conf = config_load(path, NO_CHECKS, &errs);
	for (i = 0; i < errs.count; i++)
		printf("#   %s\n", errs.msg[i]);
	CHECK_INT(errs.count, 0);
	config_errors_clear(&errs);
	if (CHECK(conf != NULL)) {
		CHECK_INT(conf->nlisten, 4);
		CHECK_STR(conf->backend[BACKEND_LEGACY].imap.host,
		    "mail.example.ac.jp");
		CHECK_STR(conf->backend[BACKEND_NEW].imap.host,
		    "outlook.office365.com");
		CHECK_INT(conf->backend[BACKEND_NEW].auth,
		    BACKEND_AUTH_XOAUTH2);
		CHECK_STR(conf->backend[BACKEND_NEW].username,
		    "%n@ms.example.ac.jp");
		CHECK_INT(config_route_sender(conf, "lab@ml.example.ac.jp"),
		    BACKEND_LEGACY);
		CHECK_INT(config_route_sender(conf, "alice@example.ac.jp"),
		    BACKEND_NEW);
	}
	config_free(&conf);

	/* With the checks, a missing certificate is what -n reports. */
	if (access("/etc/ssl/certs/ssl-cert-snakeoil.pem", R_OK) == -1) {
		conf = config_load(path, 0, &errs);
		CHECK(conf == NULL);
		for (i = 0; i < errs.count; i++)
			if (errs.msg[i] != NULL && strstr(errs.msg[i],
			    ": tls-certificate: "
			    "\"/etc/ssl/certs/ssl-cert-snakeoil.pem\": "))
				found = 1;
		CHECK(found);
		config_errors_clear(&errs);
	}
	unlink(path);

	/* As committed (mode 0644) it holds a token-command: refused. */
	path = write_file(text, len, 0644);
	conf = config_load(path, NO_CHECKS, &errs);
	CHECK(conf == NULL);
	CHECK_INT(errs.count, 1);
	config_errors_clear(&errs);
	unlink(path);
	free(text);
}

/* The example in docs/config.md is what people copy: it must load. */
static void
test_doc_example(void)
{
	struct config_errors	 errs;
	struct config		*conf;
	char			*text, *start, *end;
	size_t			 len, i;

	text = read_file("docs/config.md", &len);
	if (!CHECK(text != NULL))
		return;
	start = strstr(text, "## Example\n\n```\n");
	if (!CHECK(start != NULL)) {
		free(text);
		return;
	}
	start += strlen("## Example\n\n```\n");
	end = strstr(start, "```");
	if (CHECK(end != NULL)) {
		conf = config_parse_buffer("config.md", start,
		    (size_t)(end - start), NO_CHECKS, &errs);
		for (i = 0; i < errs.count; i++)
			printf("#   %s\n", errs.msg[i]);
		CHECK(conf != NULL);
		CHECK_INT(errs.count, 0);
		config_errors_clear(&errs);
		config_free(&conf);
	}
	free(text);
}

static void
cleanup(void)
{
	if (tmpseq != 0)
		rmdir(tmpdir);
}

static const struct unit_case cases[] = {
	UNIT_CASE(test_errors_prefixed),
	UNIT_CASE(test_errors_full),
	UNIT_CASE(test_limits),
	UNIT_CASE(test_error_cap),
	UNIT_CASE(test_values),
	UNIT_CASE(test_defaults),
	UNIT_CASE(test_secret_file_mode),
	UNIT_CASE(test_file_errors),
	UNIT_CASE(test_parse_buffer),
	UNIT_CASE(test_expand_username),
	UNIT_CASE(test_expand_command),
	UNIT_CASE(test_glob),
	UNIT_CASE(test_route_sender),
	UNIT_CASE(test_hide_folder),
	UNIT_CASE(test_sample_config),
	UNIT_CASE(test_doc_example),
};

int
main(void)
{
	int	 rc;

	rc = unit_main(cases, sizeof(cases) / sizeof(cases[0]));
	cleanup();
	return rc;
}
