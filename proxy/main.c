/*
 * imapmerge(8): the command line.  It loads the configuration, shows
 * every error in it at once (-n stops there), and hands a good one to the
 * daemon together with the parts the daemon knows only by their hooks:
 * the IMAP and submission protocols, and what their sessions share (TLS
 * contexts, the token cache, the users).  `imapmerge report` goes to
 * report.c instead.  Until the configuration says otherwise, logs go to
 * stderr, where an operator starting the daemon by hand sees them.
 *
 * The one file that sees every layer (docs/architecture.md).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "conf/config.h"
#include "proxy/core/daemon.h"
#include "proxy/core/log.h"
#include "proxy/core/server.h"
#include "proxy/net/tls.h"
#include "proxy/net/token.h"
#include "proxy/merge/user.h"
#include "proxy/imap/session.h"
#include "proxy/smtp/smtp_session.h"
#include "proxy/tools/report.h"

#ifndef IMAPMERGE_VERSION
#define IMAPMERGE_VERSION	"0.1"
#endif

#define TOKEN_TIMEOUT_MS	20000

static void	usage(void) __attribute__((noreturn));

static int
serve_setup(struct server *srv)
{
	const struct backend_conf *nb = &srv->conf->backend[BACKEND_NEW];

	if (tls_contexts_new(srv) == -1)
		return -1;
	if (nb->auth == BACKEND_AUTH_XOAUTH2 &&
	    (srv->tokens = token_cache_new(srv->base, nb->token_command,
	    TOKEN_TIMEOUT_MS)) == NULL)
		fatalx("out of memory");
	return 0;
}

static void
serve_teardown(struct server *srv)
{
	users_shutdown(srv);
	token_cache_free(&srv->tokens);
	tls_contexts_free(srv);
}

static const struct daemon_parts serve_parts = {
	.services = {
		[LISTEN_IMAP] = &imap_service,
		[LISTEN_SUBMISSION] = &smtp_service,
	},
	.setup = serve_setup,
	.metrics = users_metrics,
	.teardown = serve_teardown,
};

static void
usage(void)
{
	fprintf(stderr, "usage: imapmerge [-dnvV] [-f file]\n"
	    "       imapmerge report [-f file] [--json] [--html file] "
	    "user | --all\n");
	exit(1);
}

/* Each -v is one step from the configured level towards debug. */
static int
log_level_plus(int level, int steps)
{
	for (; steps > 0; steps--) {
		if (level == LOG_WARNING)
			level = LOG_INFO;
		else
			level = LOG_DEBUG;
	}
	return level;
}

static struct config *
load(const char *path)
{
	struct config_errors	 errs;
	struct config		*conf;
	size_t			 i;

	conf = config_load(path, 0, &errs);
	for (i = 0; i < errs.count; i++)
		fprintf(stderr, "%s\n", errs.msg[i] != NULL ? errs.msg[i] :
		    "out of memory");
	config_errors_clear(&errs);
	return conf;
}

int
main(int argc, char *argv[])
{
	struct config	*conf;
	const char	*path = CONFIG_DEFAULT_PATH;
	int		 ch, foreground = 0, check = 0, verbose = 0;

	/* A subcommand comes first; the daemon's options stay as they were. */
	if (argc > 1 && strcmp(argv[1], "report") == 0)
		return report_main(argc - 1, argv + 1);
	while ((ch = getopt(argc, argv, "df:nvV")) != -1) {
		switch (ch) {
		case 'd':
			foreground = 1;
			break;
		case 'f':
			path = optarg;
			break;
		case 'n':
			check = 1;
			break;
		case 'v':
			verbose++;
			break;
		case 'V':
			printf("imapmerge %s\n", IMAPMERGE_VERSION);
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	log_init(1, log_level_plus(LOG_INFO, verbose), "imapmerge");
	if ((conf = load(path)) == NULL)
		return 1;
	if (check) {
		printf("configuration OK\n");
		config_free(&conf);
		return 0;
	}
	log_init(foreground || !conf->log_syslog,
	    log_level_plus(conf->log_level, verbose), "imapmerge");
	return daemon_main(conf, foreground, &serve_parts);
}
