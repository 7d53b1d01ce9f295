/*
 * OAuth2 access tokens for the new server, from the operator's
 * token-command.  The command runs without blocking the event loop; its
 * token is cached per backend user until shortly before it expires, and
 * concurrent requests for the same user share one run.
 */
#ifndef PROXY_TOKEN_H
#define PROXY_TOKEN_H

#include <stddef.h>

struct event_base;
struct token_cache;

/* token is NULL on failure, and error says why (never holds the token). */
typedef void	 token_cb(const char *token, const char *error, void *arg);

/* command is the token-command template (config_expand_command). */
struct token_cache *token_cache_new(struct event_base *, const char *command,
		    int timeout_ms);
void		 token_cache_free(struct token_cache **);

/*
 * Calls cb exactly once, maybe before returning (cached token).  The
 * returned id cancels the callback with token_cancel(); 0 means it already ran.
 */
unsigned long	 token_get(struct token_cache *, const char *user,
		    token_cb *cb, void *arg);
void		 token_cancel(struct token_cache *, unsigned long id);

/* Forget a user's token, e.g. after the server refused it. */
void		 token_forget(struct token_cache *, const char *user);

#endif
