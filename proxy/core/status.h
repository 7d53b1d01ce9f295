/*
 * The status endpoint (status-listen): Prometheus metrics over HTTP, read
 * from struct server's counters and, through the daemon's parts, from the
 * protocols' sessions and the users at each scrape.
 */
#ifndef PROXY_CORE_STATUS_H
#define PROXY_CORE_STATUS_H

struct server;
struct evbuffer;

/* Binds srv->conf's status-listen, if any; -1 after logging why. */
int	status_start(struct server *);
void	status_stop(struct server *);
/* The metrics page, in the Prometheus text format 0.0.4. */
void	status_metrics(struct server *, struct evbuffer *);
/* "# HELP" and "# TYPE" of a metric, for the parts that add their own. */
void	status_metric_head(struct evbuffer *, const char *name,
	    const char *type, const char *help);

#endif
