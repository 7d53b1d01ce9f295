/*
 * The daemon proper: builds the process-wide struct server from a loaded
 * configuration (event loop, resolver, TLS contexts, token cache), binds
 * the listeners while still privileged, drops to the configured user and
 * runs the loop until SIGTERM or SIGINT.
 */
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "conf/config.h"
#include "proxy/abuse.h"
#include "proxy/auth.h"
#include "proxy/daemon.h"
#include "proxy/log.h"
#include "proxy/offline.h"
#include "proxy/server.h"
#include "proxy/smtp_session.h"
#include "proxy/user.h"
#include "proxy/tls.h"
#include "proxy/token.h"

#define TOKEN_TIMEOUT_MS	20000

static void
daemon_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server	*srv = arg;

	switch (sig) {
	case SIGHUP:
		log_warnx("SIGHUP: reloading is not supported yet; restart "
		    "to apply a changed configuration");
		break;
	default:
		log_info("signal %d: shutting down", (int)sig);
		listen_stop(srv);
		event_base_loopexit(srv->base, NULL);
		break;
	}
}

static int
daemon_tls(struct server *srv)
{
	const struct config	*conf = srv->conf;
	char			 err[256];
	int			 side;

	if (conf->nlisten > 0) {
		srv->tls = tls_server_ctx(conf->tls_certificate, conf->tls_key,
		    err, sizeof(err));
		if (srv->tls == NULL) {
			log_warnx("tls-certificate %s: %s",
			    conf->tls_certificate, err);
			return -1;
		}
	}
	for (side = 0; side < BACKEND_COUNT; side++) {
		const struct backend_conf *be = &conf->backend[side];

		srv->backend_tls[side] = tls_client_ctx(be->ca_file, err,
		    sizeof(err));
		if (srv->backend_tls[side] == NULL) {
			log_warnx("%s: ca-file %s: %s", config_side_name(side),
			    be->ca_file ? be->ca_file : "(system)", err);
			return -1;
		}
	}
	return 0;
}

/* The state directory must exist and belong to the user we run as. */
static int
daemon_state_dir(const struct config *conf, uid_t uid, gid_t gid)
{
	if (mkdir(conf->state_dir, 0700) == -1 && errno != EEXIST) {
		log_warn("state-dir %s", conf->state_dir);
		return -1;
	}
	if (getuid() == 0 && chown(conf->state_dir, uid, gid) == -1) {
		log_warn("state-dir %s: chown", conf->state_dir);
		return -1;
	}
	return 0;
}

static int
daemon_privdrop(const struct config *conf)
{
	struct passwd	*pw = NULL;
	struct group	*gr = NULL;
	uid_t		 uid = getuid();
	gid_t		 gid = getgid();

	if (conf->user != NULL && (pw = getpwnam(conf->user)) == NULL) {
		log_warnx("user %s: unknown", conf->user);
		return -1;
	}
	if (conf->group != NULL && (gr = getgrnam(conf->group)) == NULL) {
		log_warnx("group %s: unknown", conf->group);
		return -1;
	}
	if (pw != NULL) {
		uid = pw->pw_uid;
		gid = pw->pw_gid;
	}
	if (gr != NULL)
		gid = gr->gr_gid;
	if (daemon_state_dir(conf, uid, gid) == -1)
		return -1;
	if (pw == NULL && gr == NULL)
		return 0;
	if (setgroups(1, &gid) == -1 || setresgid(gid, gid, gid) == -1 ||
	    setresuid(uid, uid, uid) == -1) {
		log_warn("cannot drop privileges to %s", conf->user ?
		    conf->user : conf->group);
		return -1;
	}
	log_info("running as uid %u gid %u", (unsigned)uid, (unsigned)gid);
	return 0;
}

/*
 * Each session holds three descriptors (client, legacy, new): take the
 * whole hard limit (systemd's default soft limit of 1024 would stop at
 * about 300 sessions).
 */
static void
daemon_fd_limit(void)
{
	struct rlimit	 rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (rl.rlim_cur != rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur == RLIM_INFINITY)
		log_info("open files: no limit");
	else
		log_info("open files: at most %llu, about %llu sessions",
		    (unsigned long long)rl.rlim_cur,
		    (unsigned long long)rl.rlim_cur / 3);
}

/*
 * The event loop.  With epoll's changelist, an event added and deleted in
 * the same loop turn costs no epoll_ctl(2): a TLS connection that is
 * written to as soon as data comes (every relayed record) used to make
 * two.  libevent's caveat for it, descriptors shared through dup(2),
 * does not apply here.
 */
static struct event_base *
daemon_base(void)
{
	struct event_config	*cfg;
	struct event_base	*base;

	if ((cfg = event_config_new()) == NULL)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

static int
daemon_setup(struct server *srv)
{
	const struct backend_conf *nb = &srv->conf->backend[BACKEND_NEW];

	daemon_fd_limit();
	if ((srv->base = daemon_base()) == NULL)
		fatalx("event_base_new failed");
	srv->dns = evdns_base_new(srv->base,
	    EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (srv->dns == NULL)
		fatalx("cannot set up the DNS resolver");
	if (auth_init() == -1) {
		log_warnx("libsasl2 initialisation failed");
		return -1;
	}
	if ((srv->abuse = abuse_new()) == NULL)
		fatalx("out of memory");
	if (daemon_tls(srv) == -1)
		return -1;
	if (nb->auth == BACKEND_AUTH_XOAUTH2 &&
	    (srv->tokens = token_cache_new(srv->base, nb->token_command,
	    TOKEN_TIMEOUT_MS)) == NULL)
		fatalx("out of memory");
	return listen_start(srv);
}

static void
daemon_teardown(struct server *srv)
{
	int	 side;

	listen_stop(srv);
	imap_sessions_free_all(srv);
	smtp_sessions_free_all(srv);
	offline_shutdown();		/* its callbacks hold user refs */
	users_free_all(srv);
	abuse_free(&srv->abuse);
	token_cache_free(&srv->tokens);
	for (side = 0; side < BACKEND_COUNT; side++)
		if (srv->backend_tls[side] != NULL)
			SSL_CTX_free(srv->backend_tls[side]);
	if (srv->tls != NULL)
		SSL_CTX_free(srv->tls);
	if (srv->dns != NULL)
		evdns_base_free(srv->dns, 0);
	if (srv->base != NULL)
		event_base_free(srv->base);
	config_free(&srv->conf);
}

int
daemon_main(struct config *conf, int foreground)
{
	static const int	 sigs[] = { SIGTERM, SIGINT, SIGHUP };
	struct server		 srv;
	struct event		*ev[3];
	size_t			 i;
	int			 rc = 1;

	memset(&srv, 0, sizeof(srv));
	srv.conf = conf;
	log_init(foreground || !conf->log_syslog, conf->log_level,
	    "imapmerge");
	signal(SIGPIPE, SIG_IGN);
	if (daemon_setup(&srv) == -1 || daemon_privdrop(conf) == -1)
		goto out;
	if (!foreground && daemon(0, 0) == -1) {
		log_warn("daemon");
		goto out;
	}
	for (i = 0; i < 3; i++) {
		ev[i] = evsignal_new(srv.base, sigs[i], daemon_signal, &srv);
		evsignal_add(ev[i], NULL);
	}
	log_info("imapmerge started");
	event_base_dispatch(srv.base);
	for (i = 0; i < 3; i++)
		event_free(ev[i]);
	log_info("imapmerge stopped");
	rc = 0;
 out:
	daemon_teardown(&srv);
	return rc;
}
