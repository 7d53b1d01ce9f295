/*
 * A connection to an upstream submission server (DESIGN §9), for one
 * client's messages: connect, EHLO, STARTTLS with the certificate checked,
 * EHLO again, AUTH (PLAIN with the client's password, or XOAUTH2 with a
 * token from token-command), then one command at a time with its reply,
 * and the DATA stream.
 */
#ifndef PROXY_SMTP_RELAY_H
#define PROXY_SMTP_RELAY_H

#include <stddef.h>

#include "conf/config.h"

struct evbuffer;
struct relay;
struct server;

/*
 * A reply from upstream, or one made up here when the upstream could not
 * be reached or refused us (code 4xx/5xx, text saying why, fit for the
 * client: it never names a password or token).
 */
typedef void	 relay_reply_cb(struct relay *, int code, const char *enhanced,
		    const char *text, void *arg);

/* ready() gets 250 once the upstream takes MAIL, else the failure. */
struct relay	*relay_open(struct server *, enum backend_side, const char *sid,
		    const char *login, const char *password,
		    relay_reply_cb *ready, void *arg);
void		 relay_free(struct relay **);

/* One command line (without CRLF) and its reply. */
void		 relay_cmd(struct relay *, const char *line, relay_reply_cb *,
		    void *arg);

/*
 * After DATA's 354: the message goes to relay_data_out() as the client
 * sent it (dot-stuffed, with the final ".\r\n"); then relay_data_end()
 * waits for the final reply.  relay_set_drained() calls back when the
 * output has gone out, for backpressure.
 */
struct evbuffer	*relay_data_out(struct relay *);
void		 relay_data_end(struct relay *, relay_reply_cb *, void *arg);
void		 relay_set_drained(struct relay *, void (*)(void *), void *);

#endif
