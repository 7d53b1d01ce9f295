/*
 * The daemon proper: builds the process-wide struct server from a loaded
 * configuration (event loop, resolver, client auth, per-address limits,
 * then what main.c's parts set up: TLS contexts, token cache), binds the
 * listeners while still privileged, drops to the configured user and runs
 * the loop.  It knows the protocols only as services (struct service).
 *
 * SIGHUP reads the configuration file again: new sessions take the new
 * one, open sessions keep theirs (each holds a reference), and what only a
 * restart can change (sockets, privileges, the state directory, the
 * certificate) keeps its running value.  SIGTERM or SIGINT drains: no new
 * connections, idle sessions are told BYE at once, running commands
 * finish first; the loop ends with the last session or at
 * shutdown-timeout.  A second SIGTERM stops at once.
 */
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "conf/config.h"
#include "proxy/core/abuse.h"
#include "proxy/core/auth.h"
#include "proxy/core/daemon.h"
#include "proxy/core/listen.h"
#include "proxy/core/log.h"
#include "proxy/core/notify.h"
#include "proxy/core/server.h"
#include "proxy/core/status.h"

static struct event	*drain_timer;

static int
same_str(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static int
same_listen(const struct config *a, const struct config *b)
{
	const struct listen_conf	*x, *y;
	size_t				 i;

	if (a->nlisten != b->nlisten)
		return 0;
	for (i = 0; i < a->nlisten; i++) {
		x = &a->listen[i];
		y = &b->listen[i];
		if (x->proto != y->proto || x->tls != y->tls ||
		    x->port != y->port || !same_str(x->host, y->host) ||
		    x->allow_plaintext_auth != y->allow_plaintext_auth)
			return 0;
	}
	return 1;
}

static void
swap_str(const char *kw, char **run, char **next)
{
	char	*t;

	if (!same_str(*run, *next))
		log_warnx("reload: %s changed; it takes effect at the next "
		    "restart", kw);
	t = *run;
	*run = *next;
	*next = t;
}

/*
 * The backends' TLS contexts (ca-file) and the token cache (auth,
 * token-command) are made once at start: their settings stay too, or a
 * session would ask a token cache that does not exist.
 */
static void
daemon_keep_backends(struct config *run, struct config *next)
{
	struct backend_conf	*r, *n;
	enum backend_auth	 auth;
	char			 kw[32];
	int			 side;

	for (side = 0; side < BACKEND_COUNT; side++) {
		r = &run->backend[side];
		n = &next->backend[side];
		snprintf(kw, sizeof(kw), "%s ca-file", config_side_name(side));
		swap_str(kw, &r->ca_file, &n->ca_file);
		snprintf(kw, sizeof(kw), "%s token-command",
		    config_side_name(side));
		swap_str(kw, &r->token_command, &n->token_command);
		if (r->auth != n->auth)
			log_warnx("reload: %s auth changed; it takes effect at "
			    "the next restart", config_side_name(side));
		auth = r->auth;
		r->auth = n->auth;
		n->auth = auth;
	}
}

/*
 * What needs a restart moves from the running configuration RUN into
 * NEXT, so NEXT carries on with the running values (and the listen array
 * the listeners and sessions point into stays where it is), and RUN,
 * freed with its last session, takes the file's new values with it.
 */
static void
daemon_keep_running(struct config *run, struct config *next)
{
	struct listen_conf	*l;
	char			*t;
	size_t			 n;
	uint16_t		 port;

	if (!same_listen(run, next))
		log_warnx("reload: listen changed; it takes effect at the next "
		    "restart");
	l = run->listen, run->listen = next->listen, next->listen = l;
	n = run->nlisten, run->nlisten = next->nlisten, next->nlisten = n;
	swap_str("state-dir", &run->state_dir, &next->state_dir);
	swap_str("user", &run->user, &next->user);
	swap_str("group", &run->group, &next->group);
	swap_str("tls-certificate", &run->tls_certificate,
	    &next->tls_certificate);
	swap_str("tls-key", &run->tls_key, &next->tls_key);
	swap_str("status-listen", &run->status_text, &next->status_text);
	t = run->status_host, run->status_host = next->status_host,
	    next->status_host = t;
	port = run->status_port;
	run->status_port = next->status_port;
	next->status_port = port;
	daemon_keep_backends(run, next);
	if (run->log_syslog != next->log_syslog)
		log_warnx("reload: log changed; it takes effect at the next "
		    "restart");
	next->log_syslog = run->log_syslog;
}

/* systemd's Type=notify-reload wants the time of the request with it. */
static void
daemon_notify_reloading(void)
{
	struct timespec	 ts;
	char		 msg[64];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL +
	    (unsigned long long)ts.tv_nsec / 1000);
	notify_send(msg);
}

static void
daemon_reload(struct server *srv)
{
	struct config_errors	 errs;
	struct config		*next;
	size_t			 i;

	daemon_notify_reloading();
	log_info("SIGHUP: reading %s", srv->conf->path);
	next = config_load(srv->conf->path, 0, &errs);
	for (i = 0; i < errs.count; i++)
		log_warnx("reload: %s", errs.msg[i] != NULL ? errs.msg[i] :
		    "out of memory");
	config_errors_clear(&errs);
	if (next == NULL) {
		log_warnx("reload: %s refused; the running configuration "
		    "stays", srv->conf->path);
		notify_send("READY=1");
		return;
	}
	daemon_keep_running(srv->conf, next);
	if (next->log_level != srv->conf->log_level)
		log_setlevel(next->log_level);
	config_unref(&srv->conf);
	srv->conf = next;
	log_info("reload: configuration %s loaded; new sessions use it",
	    next->path);
	notify_send("READY=1");
}

static void
daemon_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct server	*srv = arg;

	log_warnx("shutdown-timeout: closing %lu sessions still running",
	    server_sessions(srv));
	event_base_loopexit(srv->base, NULL);
}

static void
daemon_drain(struct server *srv)
{
	struct timeval	 tv;
	unsigned int	 ms = srv->conf->shutdown_timeout_ms;
	int		 i;

	srv->draining = 1;
	notify_send("STOPPING=1");
	listen_stop(srv);
	log_info("shutting down: %lu sessions open, waiting up to %u.%03us "
	    "for running commands", server_sessions(srv), ms / 1000,
	    ms % 1000);
	for (i = 0; i < LISTEN_PROTO_COUNT; i++)
		if (srv->parts->services[i] != NULL)
			srv->parts->services[i]->drain(srv);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	if ((drain_timer = evtimer_new(srv->base, daemon_drain_timeout,
	    srv)) == NULL || evtimer_add(drain_timer, &tv) == -1)
		event_base_loopexit(srv->base, NULL);
	server_session_gone(srv);	/* none were open */
}

static void
daemon_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server	*srv = arg;

	if (sig == SIGHUP) {
		if (!srv->draining)
			daemon_reload(srv);
		return;
	}
	if (srv->draining) {
		log_info("signal %d: stopping now", (int)sig);
		event_base_loopexit(srv->base, NULL);
		return;
	}
	log_info("signal %d: shutting down", (int)sig);
	daemon_drain(srv);
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
	if (srv->parts->setup != NULL && srv->parts->setup(srv) == -1)
		return -1;
	if (listen_start(srv) == -1)
		return -1;
	return status_start(srv);
}

static void
daemon_teardown(struct server *srv)
{
	int	 i;

	listen_stop(srv);
	status_stop(srv);
	if (drain_timer != NULL)
		event_free(drain_timer);
	drain_timer = NULL;
	for (i = 0; i < LISTEN_PROTO_COUNT; i++)
		if (srv->parts->services[i] != NULL)
			srv->parts->services[i]->free_all(srv);
	if (srv->parts->teardown != NULL)
		srv->parts->teardown(srv);
	abuse_free(&srv->abuse);
	if (srv->dns != NULL)
		evdns_base_free(srv->dns, 0);
	if (srv->base != NULL)
		event_base_free(srv->base);
	config_unref(&srv->conf);
}

int
daemon_main(struct config *conf, int foreground,
    const struct daemon_parts *parts)
{
	static const int	 sigs[] = { SIGTERM, SIGINT, SIGHUP };
	struct server		 srv;
	struct event		*ev[3];
	size_t			 i;
	int			 rc = 1;

	memset(&srv, 0, sizeof(srv));
	srv.conf = conf;
	srv.parts = parts;
	srv.started = time(NULL);
	/* Logging was set up by main(), with -v's steps on the level. */
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
	notify_send("READY=1");
	event_base_dispatch(srv.base);
	for (i = 0; i < 3; i++)
		event_free(ev[i]);
	log_info("imapmerge stopped");
	rc = 0;
 out:
	daemon_teardown(&srv);
	return rc;
}
