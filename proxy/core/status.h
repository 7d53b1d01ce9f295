/*
 * The status endpoint (status-listen): Prometheus metrics over HTTP, read
 * from struct server's counters and session lists at each scrape.
 */
#ifndef PROXY_STATUS_H
#define PROXY_STATUS_H

struct server;
struct evbuffer;

/* Binds srv->conf's status-listen, if any; -1 after logging why. */
int	status_start(struct server *);
void	status_stop(struct server *);
/* The metrics page, in the Prometheus text format 0.0.4. */
void	status_metrics(struct server *, struct evbuffer *);

#endif
