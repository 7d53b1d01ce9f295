/*
 * Logging, in the manner of OpenBSD daemons: log_warn() and friends,
 * fatal() to die.  One event is one line, to stderr (with a UTC
 * timestamp) or to syslog (facility mail).  Levels are syslog
 * priorities: LOG_WARNING, LOG_INFO, LOG_DEBUG.
 *
 * Lines often carry what clients and servers sent (user names, folder
 * names, server replies), so control characters are escaped as \r, \n,
 * \xHH and so on after formatting: no one can split a line or forge one.
 * Never pass a password or token; redact at the boundary.
 */

#ifndef PROXY_LOG_H
#define PROXY_LOG_H

#include <stdio.h>
#include <syslog.h>

#define LOG_PRINTF(a, b)	__attribute__((format(printf, a, b)))

void	log_init(int, int, const char *);
void	log_setlevel(int);
int	log_getlevel(void);
/* Where stderr lines go instead (tests); NULL: back to stderr. */
void	log_setoutput(FILE *);

void	log_warn(const char *, ...) LOG_PRINTF(1, 2);
void	log_warnx(const char *, ...) LOG_PRINTF(1, 2);
void	log_info(const char *, ...) LOG_PRINTF(1, 2);
void	log_debug(const char *, ...) LOG_PRINTF(1, 2);
void	fatal(const char *, ...) LOG_PRINTF(1, 2)
	    __attribute__((noreturn));
void	fatalx(const char *, ...) LOG_PRINTF(1, 2)
	    __attribute__((noreturn));

/*
 * One line about one session: "sid=SID " then the rest, which should be
 * key=value pairs: log_sess(LOG_INFO, s->id, "event=login user=%s", u).
 */
void	log_sess(int, const char *, const char *, ...) LOG_PRINTF(3, 4);

#endif
