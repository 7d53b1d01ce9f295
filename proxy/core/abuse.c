/*
 * Per-address counters (see abuse.h) in a fixed open-addressing table:
 * memory stays the same whatever the clients do.  A record with nothing
 * left to count is free for reuse; an address that finds no slot within
 * a short probe is not tracked, which errs on the side of serving.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/core/abuse.h"
#include "proxy/core/server.h"

#define ABUSE_SLOTS	8192
#define ABUSE_PROBE	64
#define FORGET_S	60		/* one failure forgotten per minute */

struct slot {
	char		 ip[64];
	unsigned int	 preauth;
	unsigned int	 failures;
	time_t		 at;		/* when failures last changed */
};

struct abuse {
	struct slot	 slot[ABUSE_SLOTS];
};

struct abuse *
abuse_new(void)
{
	return calloc(1, sizeof(struct abuse));
}

void
abuse_free(struct abuse **ap)
{
	free(*ap);
	*ap = NULL;
}

static void
decay(struct slot *e, time_t now)
{
	time_t	 n;

	if (e->failures == 0 || now <= e->at)
		return;
	n = (now - e->at) / FORGET_S;
	if (n <= 0)
		return;
	e->failures = (time_t)e->failures > n ? e->failures - (unsigned)n : 0;
	e->at += n * FORGET_S;
}

static unsigned int
hash(const char *s)
{
	unsigned int	 h = 2166136261u;

	while (*s != '\0')
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

/* ip's record; with create, a free one made its own.  NULL: untracked. */
static struct slot *
lookup(struct abuse *a, const char *ip, bool create)
{
	time_t		 now = time(NULL);
	unsigned int	 h = hash(ip), i;
	struct slot	*e, *spare = NULL;

	if (a == NULL)
		return NULL;
	for (i = 0; i < ABUSE_PROBE; i++) {
		e = &a->slot[(h + i) % ABUSE_SLOTS];
		decay(e, now);
		if (e->ip[0] != '\0' && strcmp(e->ip, ip) == 0)
			return e;
		if (spare == NULL && (e->ip[0] == '\0' ||
		    (e->preauth == 0 && e->failures == 0)))
			spare = e;
	}
	if (!create || spare == NULL)
		return NULL;
	memset(spare, 0, sizeof(*spare));
	strncpy(spare->ip, ip, sizeof(spare->ip) - 1);
	spare->at = now;
	return spare;
}

bool
abuse_preauth_enter(struct server *srv, const char *ip)
{
	struct slot	*e = lookup(srv->abuse, ip, true);

	if (e == NULL)
		return true;
	if (e->preauth >= srv->conf->max_preauth_per_ip)
		return false;
	e->preauth++;
	return true;
}

void
abuse_preauth_leave(struct server *srv, const char *ip)
{
	struct slot	*e = lookup(srv->abuse, ip, false);

	if (e != NULL && e->preauth > 0)
		e->preauth--;
}

void
abuse_login_failed(struct server *srv, const char *ip)
{
	struct slot	*e = lookup(srv->abuse, ip, true);

	if (e == NULL)
		return;
	if (e->failures == 0)
		e->at = time(NULL);
	if (e->failures < srv->conf->max_login_failures * 2)
		e->failures++;
}

bool
abuse_login_blocked(struct server *srv, const char *ip)
{
	struct slot	*e = lookup(srv->abuse, ip, false);

	return e != NULL && e->failures >= srv->conf->max_login_failures;
}
