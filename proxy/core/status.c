/*
 * The status endpoint: `status-listen ADDR` serves GET and HEAD /metrics
 * in the Prometheus text exposition format (version 0.0.4), for the
 * center's monitoring.  Gauges are counted from the session and user
 * lists at each scrape (a scrape every few seconds is cheap next to the
 * mail); counters live in srv->stats and are bumped where things happen.
 *
 * It is plain HTTP without authentication, so it tells nothing about
 * anyone (no user names, no addresses), and it is bounded: small headers,
 * no request body, a short timeout per connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "proxy/core/log.h"
#include "proxy/core/server.h"
#include "proxy/core/status.h"

#ifndef IMAPMERGE_VERSION
#define IMAPMERGE_VERSION	"0.1"
#endif

#define STATUS_MAX_HEADERS	4096
#define STATUS_MAX_BODY		0
#define STATUS_TIMEOUT_S	10
#define STATUS_CONTENT_TYPE	"text/plain; version=0.0.4; charset=utf-8"

struct status {
	struct evhttp		*http;
};

void
status_metric_head(struct evbuffer *out, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

/* A counter with one value per server. */
static void
backend_counter(struct evbuffer *out, const char *name, const char *help,
    const uint64_t value[BACKEND_COUNT])
{
	int	 side;

	status_metric_head(out, name, "counter", help);
	for (side = 0; side < BACKEND_COUNT; side++)
		evbuffer_add_printf(out, "%s{backend=\"%s\"} %llu\n", name,
		    config_side_name(side), (unsigned long long)value[side]);
}

static void
status_backends(struct server *srv, struct evbuffer *out)
{
	backend_counter(out, "imapmerge_backend_throttled_total",
	    "Throttling answers seen from the server.", srv->stats.throttled);
	backend_counter(out, "imapmerge_backend_failures_total",
	    "IMAP connections to the server lost or refused.",
	    srv->stats.failures);
}

/* Each protocol's session count, then each one's own metrics. */
static void
status_services(struct server *srv, struct evbuffer *out)
{
	const struct service	*svc;
	int			 i;

	status_metric_head(out, "imapmerge_sessions", "gauge",
	    "Client sessions open.");
	for (i = 0; i < LISTEN_PROTO_COUNT; i++)
		if ((svc = srv->parts->services[i]) != NULL)
			evbuffer_add_printf(out, "imapmerge_sessions"
			    "{protocol=\"%s\"} %lu\n", svc->name,
			    svc->count(srv));
	for (i = 0; i < LISTEN_PROTO_COUNT; i++)
		if ((svc = srv->parts->services[i]) != NULL &&
		    svc->metrics != NULL)
			svc->metrics(srv, out);
	if (srv->parts->metrics != NULL)
		srv->parts->metrics(srv, out);
}

void
status_metrics(struct server *srv, struct evbuffer *out)
{
	time_t		 now = time(NULL);

	status_services(srv, out);
	status_backends(srv, out);
	status_metric_head(out, "imapmerge_logins_total", "counter",
	    "Client logins (IMAP and submission) by result.");
	evbuffer_add_printf(out, "imapmerge_logins_total{result=\"ok\"} %llu\n",
	    (unsigned long long)srv->stats.logins_ok);
	evbuffer_add_printf(out, "imapmerge_logins_total{result=\"failed\"} "
	    "%llu\n", (unsigned long long)srv->stats.logins_failed);
	status_metric_head(out, "imapmerge_uptime_seconds", "gauge",
	    "Seconds since the daemon started.");
	evbuffer_add_printf(out, "imapmerge_uptime_seconds %lld\n",
	    (long long)(now - srv->started));
	status_metric_head(out, "imapmerge_build_info", "gauge",
	    "Always 1; the version is in the label.");
	evbuffer_add_printf(out, "imapmerge_build_info{version=\"%s\"} 1\n",
	    IMAPMERGE_VERSION);
}

static void
status_request(struct evhttp_request *req, void *arg)
{
	struct server		*srv = arg;
	struct evkeyvalq	*hdr = evhttp_request_get_output_headers(req);
	enum evhttp_cmd_type	 cmd = evhttp_request_get_command(req);
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	const char		*path = uri ? evhttp_uri_get_path(uri) : NULL;
	struct evbuffer		*body;
	char			 len[24];

	if (path == NULL || strcmp(path, "/metrics") != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, NULL);
		return;
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(hdr, "Allow", "GET, HEAD");
		evhttp_send_error(req, HTTP_BADMETHOD, NULL);
		return;
	}
	if ((body = evbuffer_new()) == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	status_metrics(srv, body);
	evhttp_add_header(hdr, "Content-Type", STATUS_CONTENT_TYPE);
	/* For HEAD libevent sends the headers only, and no length unless
	 * given one: the length GET would have. */
	snprintf(len, sizeof(len), "%zu", evbuffer_get_length(body));
	evhttp_add_header(hdr, "Content-Length", len);
	evhttp_send_reply(req, HTTP_OK, "OK", body);
	evbuffer_free(body);
}

int
status_start(struct server *srv)
{
	const struct config	*conf = srv->conf;
	struct status		*st;

	if (conf->status_text == NULL)
		return 0;
	if ((st = calloc(1, sizeof(*st))) == NULL ||
	    (st->http = evhttp_new(srv->base)) == NULL) {
		free(st);
		log_warnx("status-listen %s: out of memory", conf->status_text);
		return -1;
	}
	srv->status = st;
	evhttp_set_max_headers_size(st->http, STATUS_MAX_HEADERS);
	evhttp_set_max_body_size(st->http, STATUS_MAX_BODY);
	evhttp_set_timeout(st->http, STATUS_TIMEOUT_S);
	evhttp_set_allowed_methods(st->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(st->http, status_request, srv);
	if (evhttp_bind_socket(st->http, conf->status_host,
	    conf->status_port) == -1) {
		log_warn("status-listen %s: bind", conf->status_text);
		return -1;
	}
	log_info("status on http://%s/metrics", conf->status_text);
	return 0;
}

void
status_stop(struct server *srv)
{
	struct status	*st = srv->status;

	if (st == NULL)
		return;
	srv->status = NULL;
	evhttp_free(st->http);
	free(st);
}
