/*
 * The logger behind proxy/core/log.h.  A line is formatted into a bounded
 * buffer (a longer one is cut and ends in "..."), then escaped, then
 * written with a single write so that lines of one process never
 * interleave.  Logging never changes errno: callers log and then look at
 * errno, as fatal() and log_warn() users do.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "proxy/core/log.h"

#define LOG_MAXMSG	2048
/* The worst escape, "\xHH", is four bytes for one. */
#define LOG_MAXESC	(4 * LOG_MAXMSG + 1)

struct logbuf {
	char		 buf[LOG_MAXMSG];
	size_t		 len;
	int		 cut;
};

static int	 log_to_stderr = 1;
static int	 log_level = LOG_INFO;
static FILE	*log_out;

static void	 lb_printf(struct logbuf *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static void	 lb_vprintf(struct logbuf *, const char *, va_list)
		    __attribute__((format(printf, 2, 0)));
static void	 vlog(int, const char *, int, const char *, va_list)
		    __attribute__((format(printf, 4, 0)));

/* IDENT must live as long as the process: openlog() keeps the pointer. */
void
log_init(int to_stderr, int level, const char *ident)
{
	log_to_stderr = to_stderr;
	log_level = level;
	if (!to_stderr)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_setlevel(int level)
{
	log_level = level;
}

int
log_getlevel(void)
{
	return log_level;
}

void
log_setoutput(FILE *fp)
{
	log_out = fp;
}

static void
lb_vprintf(struct logbuf *lb, const char *fmt, va_list ap)
{
	size_t	 room = sizeof(lb->buf) - lb->len;
	int	 n;

	if (lb->cut)
		return;
	n = vsnprintf(lb->buf + lb->len, room, fmt, ap);
	if (n < 0) {
		lb->buf[lb->len] = '\0';
		lb->cut = 1;
	} else if ((size_t)n >= room) {
		lb->len = sizeof(lb->buf) - 1;
		lb->cut = 1;
	} else
		lb->len += (size_t)n;
}

static void
lb_printf(struct logbuf *lb, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	lb_vprintf(lb, fmt, ap);
	va_end(ap);
}

/* Length of the valid UTF-8 sequence at s, or 0; s is NUL-terminated. */
static size_t
utf8_seq(const unsigned char *s, uint32_t *cp_r)
{
	static const uint32_t	 min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t			 len, k;
	uint32_t		 cp;

	if ((s[0] & 0xe0) == 0xc0)
		len = 2;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3;
	else if ((s[0] & 0xf8) == 0xf0)
		len = 4;
	else
		return 0;
	cp = s[0] & (0x7f >> len);
	for (k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3f);
	}
	if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_r = cp;
	return len;
}

/*
 * Escape so that the line stays one line in any viewer: ASCII controls,
 * the backslash itself (so that "\n" in a user name cannot pass for an
 * escape), bytes that are not UTF-8, and the Unicode line breaks that
 * some viewers honour (NEL and the other C1 controls, U+2028, U+2029).
 * DST holds LOG_MAXESC bytes, enough for any SRC from a logbuf.
 */
static void
log_escape(const char *src, char *dst)
{
	const unsigned char	*s = (const unsigned char *)src;
	char			*d = dst;
	uint32_t		 cp;
	size_t			 n;

	while (*s != '\0') {
		if (*s == '\\' || *s == '\n' || *s == '\r' || *s == '\t') {
			*d++ = '\\';
			*d++ = *s == '\\' ? '\\' : *s == '\n' ? 'n' :
			    *s == '\r' ? 'r' : 't';
			s++;
		} else if (*s < 0x20 || *s == 0x7f) {
			d += sprintf(d, "\\x%02x", *s++);
		} else if (*s < 0x80) {
			*d++ = (char)*s++;
		} else if ((n = utf8_seq(s, &cp)) == 0) {
			d += sprintf(d, "\\x%02x", *s++);
		} else if (cp <= 0x9f || cp == 0x2028 || cp == 0x2029) {
			d += sprintf(d, "\\u%04x", (unsigned int)cp);
			s += n;
		} else {
			memcpy(d, s, n);
			d += n;
			s += n;
		}
	}
	*d = '\0';
}

static const char *
level_name(int prio)
{
	if (prio <= LOG_CRIT)
		return "fatal";
	if (prio == LOG_ERR)
		return "error";
	if (prio == LOG_WARNING)
		return "warning";
	if (prio == LOG_DEBUG)
		return "debug";
	return "info";
}

/* Escape LB after a prefix, and send the line where it goes. */
static void
log_emit(int prio, const struct logbuf *lb)
{
	char		 out[LOG_MAXESC + 64];
	struct timespec	 now;
	struct tm	 tm;
	FILE		*fp = log_out != NULL ? log_out : stderr;
	size_t		 n;

	if (!log_to_stderr) {
		log_escape(lb->buf, out);
		syslog(prio, "%s", out);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	n = strftime(out, sizeof(out), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(out + n, sizeof(out) - n, ".%03dZ %s: ",
	    (int)(now.tv_nsec / 1000000), level_name(prio));
	log_escape(lb->buf, out + n);
	n += strlen(out + n);
	out[n++] = '\n';
	fwrite(out, 1, n, fp);
	fflush(fp);
}

static void
vlog(int prio, const char *sid, int errnum, const char *fmt, va_list ap)
{
	struct logbuf	 lb;
	int		 saved_errno = errno;

	if (prio > log_level)
		return;
	lb.len = 0;
	lb.cut = 0;
	lb.buf[0] = '\0';
	if (sid != NULL)
		lb_printf(&lb, "sid=%s ", sid);
	lb_vprintf(&lb, fmt, ap);
	if (errnum != 0)
		lb_printf(&lb, ": %s", strerror(errnum));
	if (lb.cut) {
		if (lb.len > sizeof(lb.buf) - 4)
			lb.len = sizeof(lb.buf) - 4;
		memcpy(lb.buf + lb.len, "...", 4);
	}
	log_emit(prio, &lb);
	errno = saved_errno;
}

void
log_warn(const char *fmt, ...)
{
	va_list	 ap;
	int	 errnum = errno;

	va_start(ap, fmt);
	vlog(LOG_WARNING, NULL, errnum, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(LOG_WARNING, NULL, 0, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(LOG_INFO, NULL, 0, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(LOG_DEBUG, NULL, 0, fmt, ap);
	va_end(ap);
}

void
log_sess(int prio, const char *sid, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(prio, sid != NULL ? sid : "-", 0, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	 ap;
	int	 errnum = errno;

	va_start(ap, fmt);
	vlog(LOG_CRIT, NULL, errnum, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, NULL, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
