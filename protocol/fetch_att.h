/*
 * The item argument of a client's FETCH (RFC 3501/9051 §6.4.5, RFC 3516
 * BINARY): which items the proxy answers from its own view and which go to
 * the backend that serves each message, passed on with the client's own
 * item names so that the backend's answers carry the names the client
 * expects.
 */
#ifndef PROTOCOL_FETCH_ATT_H
#define PROTOCOL_FETCH_ATT_H

#include <stdbool.h>
#include <stddef.h>

struct imap_arg;

#define FETCH_UID		0x01
#define FETCH_FLAGS		0x02
#define FETCH_INTERNALDATE	0x04
#define FETCH_RFC822_SIZE	0x08

#define FETCH_ATT_MAX_ITEMS	100
#define FETCH_ATT_MAX_UPSTREAM	8192

struct fetch_att {
	unsigned int	 local;		/* FETCH_* answered by the proxy */
	bool		 sets_seen;	/* a non-peek body item is present */
	bool		 backend;	/* some item needs the backend */
	char		*upstream;	/* "ENVELOPE BODY.PEEK[1]<0.10>", or
					   NULL when !backend */
};

/* args: what follows the sequence set; false with a reason for BAD. */
bool	 fetch_att_parse(const struct imap_arg *args, size_t nargs,
	    struct fetch_att *, const char **err);
void	 fetch_att_clear(struct fetch_att *);

#endif
