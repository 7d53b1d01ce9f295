/*
 * libFuzzer harness for a whole client session, after tmux's
 * fuzz/input-fuzzer.c: the daemon's own session, command, mailbox and
 * state code runs on a bufferevent pair, the fuzz input is what the client
 * sends, and two scripted backends, legacy and new, answer on bufferevent
 * pairs of their own.  Nothing touches the network.
 *
 * Input: byte 0 says how the backends behave (MODE_*), byte 1 picks one of
 * the configurations (legacy-writes none/flags/all, tombstone-action
 * hide/expunge); the rest is the client's byte stream.  Each input runs
 * until nothing moves any more, then the client hangs up and everything
 * the session made is torn down (sessions, users, their state files), so
 * each input starts from the same empty state and LeakSanitizer sees what
 * one session leaves behind.
 *
 * The fuzz build compiles the daemon's sources with this file; conn.c is
 * included here with its conn_connect renamed, and the conn_connect below
 * hands the backend a pair whose other end is a scripted server.
 */

#define conn_connect	conn_connect_socket
#include "proxy/net/conn.c"
#undef conn_connect

#include <sys/stat.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include "conf/config.h"
#include "proxy/core/abuse.h"
#include "proxy/core/auth.h"
#include "proxy/core/log.h"
#include "proxy/core/server.h"
#include "proxy/merge/user.h"
#include "proxy/imap/session.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define LEGACY_PORT	10143
#define NEW_PORT	20143
#define MAX_SPINS	200000
#define IDLE_SPINS	4
#define MAX_CMD		(256 * 1024)	/* command text kept, literals too */

/* Byte 0 of the input. */
#define MODE_LEGACY_DOWN	0x01	/* connection refused */
#define MODE_NEW_DOWN		0x02
#define MODE_LEGACY_NOLOGIN	0x04	/* wrong password */
#define MODE_NEW_REFUSES	0x08	/* NO to folder commands */
#define MODE_LEGACY_REFUSES	0x10
#define MODE_NEW_DROPS		0x20	/* hangs up after some commands */
#define MODE_DROP_AFTER(m)	(4 + 4 * ((m) >> 6))

/*
 * The scripted mailboxes.  INBOX shares one message between the servers
 * (the migration copied it), Archive shares its only one; the legacy server
 * uses "." as separator, the new one "/" with SPECIAL-USE attributes, as
 * Office 365 does.
 */
struct fmsg {
	unsigned int	 uid;
	const char	*msgid;
	const char	*flags;
};

struct ffolder {
	const char		*name;		/* as the server spells it */
	const char		*attrs;
	const struct fmsg	*msgs;
	size_t			 nmsgs;
};

static const struct fmsg legacy_inbox[] = {
	{ 1, "m1@example.ac.jp", "\\Seen" },
	{ 2, "m2@example.ac.jp", "\\Seen \\Flagged" },
	{ 5, "m3@example.ac.jp", "" },
};
static const struct fmsg new_inbox[] = {
	{ 3, "m2@example.ac.jp", "\\Seen" },
	{ 7, "m4@example.ac.jp", "$Forwarded" },
};
static const struct fmsg legacy_sent[] = {
	{ 1, "s1@example.ac.jp", "\\Seen" },
};
static const struct fmsg new_sent[] = { { 9, "s2@example.ac.jp", "\\Seen" } };
static const struct fmsg archive[] = { { 4, "a1@example.ac.jp", "\\Seen" } };
static const struct fmsg draft[] = { { 2, "d1@example.ac.jp", "\\Draft" } };

#define FOLDER(n, a, m)	{ n, a, m, sizeof(m) / sizeof(m[0]) }
#define EMPTY(n, a)	{ n, a, NULL, 0 }

static const struct ffolder legacy_folders[] = {
	FOLDER("INBOX", "\\HasChildren", legacy_inbox),
	FOLDER("INBOX.Lists", "\\HasNoChildren", archive),
	FOLDER("Sent", "\\HasNoChildren", legacy_sent),
	FOLDER("Drafts", "\\HasNoChildren", draft),
	EMPTY("Trash", "\\HasNoChildren"),
	FOLDER("Archive", "\\HasChildren", archive),
	EMPTY("Archive.2024", "\\HasNoChildren"),
	FOLDER("&U,BTFw-", "\\HasNoChildren", archive),
	EMPTY("Junk", "\\Noselect \\HasNoChildren"),
};

static const struct ffolder new_folders[] = {
	FOLDER("INBOX", "\\HasNoChildren", new_inbox),
	FOLDER("Sent Items", "\\HasNoChildren \\Sent", new_sent),
	EMPTY("Drafts", "\\HasNoChildren \\Drafts"),
	EMPTY("Deleted Items", "\\HasNoChildren \\Trash"),
	EMPTY("Junk Email", "\\HasNoChildren \\Junk"),
	FOLDER("Archive", "\\HasChildren \\Archive", archive),
	EMPTY("Archive/2024", "\\HasNoChildren"),
	EMPTY("Calendar", "\\HasNoChildren"),
	EMPTY("Social Activity Notifications", "\\HasNoChildren"),
};

static const char *const caps[BACKEND_COUNT] = {
	"IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS "
	    "MOVE CONDSTORE SPECIAL-USE CHILDREN UNSELECT AUTH=PLAIN",
	"IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS MOVE ID "
	    "UNSELECT CHILDREN IDLE NAMESPACE LITERAL+",
};

struct fake {
	struct bufferevent	*bev;		/* the server's end */
	struct event		*connect;	/* "connected" or refused */
	enum backend_side	 side;
	const struct ffolder	*folders;
	size_t			 nfolders;
	const struct ffolder	*selected;
	struct evbuffer		*cmd;		/* the command being read */
	size_t			 literal;	/* its literal bytes to come */
	int			 loggedin;
	char			 idletag[64];	/* "": not in IDLE */
	unsigned int		 ncmds;
	unsigned int		 next_uid;	/* APPENDUID, COPYUID */
	struct fake		*next;
};

static struct server	 srv;
static struct config	*confs[6];
static struct fake	*fakes;
static unsigned int	 mode;
static unsigned long	 progress;
static char		 statedir[64];

static void	 fake_free(struct fake *);

/*
 * The scripted server.
 */

static void
fake_msg(const struct fmsg *m, struct evbuffer *out, int header_only)
{
	evbuffer_add_printf(out,
	    "Message-ID: <%s>\r\n"
	    "Date: Mon, 2 Nov 2026 10:00:%02u +0900\r\n"
	    "From: Alice <alice@example.ac.jp>\r\n"
	    "To: Bob <bob@example.ac.jp>\r\n"
	    "Subject: message %u\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n"
	    "\r\n", m->msgid, m->uid % 60, m->uid);
	if (!header_only)
		evbuffer_add_printf(out, "Body of message %u.\r\n", m->uid);
}

/* Appends a literal holding part of a message: "" "HEADER" "TEXT"... */
static void
fake_section(struct fake *f, const struct fmsg *m, const char *sec,
    long start, struct evbuffer *out)
{
	struct evbuffer	*b = evbuffer_new(), *h = evbuffer_new();
	size_t		 len, hlen;

	fake_msg(m, b, 0);
	fake_msg(m, h, 1);
	hlen = evbuffer_get_length(h);
	if (strncasecmp(sec, "HEADER", 6) == 0) {
		evbuffer_drain(b, evbuffer_get_length(b));
		evbuffer_add_buffer(b, h);
	} else if (strcasecmp(sec, "TEXT") == 0 || strcmp(sec, "1") == 0)
		evbuffer_drain(b, hlen);
	len = evbuffer_get_length(b);
	if (start > 0) {
		evbuffer_drain(b, (size_t)start < len ? (size_t)start : len);
		len = evbuffer_get_length(b);
	}
	evbuffer_add_printf(out, "{%zu}\r\n", len);
	evbuffer_add_buffer(out, b);
	evbuffer_free(b);
	evbuffer_free(h);
}

static int
fake_in_set(const char *set, unsigned int v, unsigned int max)
{
	const char	*p = set;
	char		*end;
	unsigned long	 a, b;

	while (*p != '\0' && *p != ' ') {
		if (*p == '*')
			a = max, end = (char *)p + 1;
		else if ((a = strtoul(p, &end, 10)), end == p)
			return 0;
		b = a;
		p = end;
		if (*p == ':') {
			p++;
			if (*p == '*')
				b = max, end = (char *)p + 1;
			else if ((b = strtoul(p, &end, 10)), end == p)
				return 0;
			p = end;
		}
		if (a > b) {
			unsigned long t = a;

			a = b;
			b = t;
		}
		if (v >= a && v <= b)
			return 1;
		if (*p == ',')
			p++;
	}
	return 0;
}

/* One FETCH item list, answered item by item for one message. */
static void
fake_fetch_items(struct fake *f, const struct fmsg *m, unsigned int seq,
    const char *items, int uid, struct evbuffer *out)
{
	struct evbuffer	*t = evbuffer_new();
	const char	*p = items, *q;
	char		 tok[256], sec[200];
	int		 first = 1;
	long		 start;

	evbuffer_add_printf(out, "* %u FETCH (", seq);
	if (uid) {
		evbuffer_add_printf(out, "UID %u", m->uid);
		first = 0;
	}
	while (*p != '\0') {
		size_t	 n = 0;

		while (*p == ' ' || *p == '(' || *p == ')')
			p++;
		if (*p == '\0')
			break;
		/* An item runs to a space or ")" outside brackets. */
		for (q = p; *q != '\0' && *q != ' ' && *q != ')'; q++)
			if (*q == '[') {
				while (*q != '\0' && *q != ']')
					q++;
				if (*q == '\0')
					break;
			}
		n = (size_t)(q - p) < sizeof(tok) - 1 ? (size_t)(q - p) :
		    sizeof(tok) - 1;
		memcpy(tok, p, n);
		tok[n] = '\0';
		p = q;
		if (!first)
			evbuffer_add(out, " ", 1);
		first = 0;
		if (strcasecmp(tok, "UID") == 0)
			evbuffer_add_printf(out, "UID %u", m->uid);
		else if (strcasecmp(tok, "FLAGS") == 0)
			evbuffer_add_printf(out, "FLAGS (%s)", m->flags);
		else if (strcasecmp(tok, "RFC822.SIZE") == 0) {
			fake_msg(m, t, 0);
			evbuffer_add_printf(out, "RFC822.SIZE %zu",
			    evbuffer_get_length(t));
			evbuffer_drain(t, evbuffer_get_length(t));
		} else if (strcasecmp(tok, "INTERNALDATE") == 0)
			evbuffer_add_printf(out,
			    "INTERNALDATE \"02-Nov-2026 10:00:00 +0900\"");
		else if (strcasecmp(tok, "MODSEQ") == 0)
			evbuffer_add_printf(out, "MODSEQ (%u)", m->uid + 10);
		else if (strcasecmp(tok, "ENVELOPE") == 0)
			evbuffer_add_printf(out, "ENVELOPE (\"Mon, 2 Nov 2026 "
			    "10:00:00 +0900\" \"message %u\" ((\"Alice\" NIL "
			    "\"alice\" \"example.ac.jp\")) NIL NIL ((\"Bob\" "
			    "NIL \"bob\" \"example.ac.jp\")) NIL NIL NIL "
			    "\"<%s>\")", m->uid, m->msgid);
		else if (strcasecmp(tok, "BODYSTRUCTURE") == 0 ||
		    strcasecmp(tok, "BODY") == 0)
			evbuffer_add_printf(out, "%s (\"TEXT\" \"PLAIN\" "
			    "(\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 22 1)",
			    tok);
		else if (strncasecmp(tok, "BODY", 4) == 0 &&
		    (q = strchr(tok, '[')) != NULL) {
			const char	*close = strchr(q, ']');
			size_t		 sl = close != NULL ?
			    (size_t)(close - q - 1) : 0;

			if (sl >= sizeof(sec))
				sl = sizeof(sec) - 1;
			memcpy(sec, q + 1, sl);
			sec[sl] = '\0';
			start = -1;
			if (close != NULL && close[1] == '<')
				start = strtol(close + 2, NULL, 10);
			evbuffer_add_printf(out, "BODY[%s]", sec);
			if (start >= 0)
				evbuffer_add_printf(out, "<%ld>", start);
			evbuffer_add(out, " ", 1);
			fake_section(f, m, sec, start, out);
		} else if (strcasecmp(tok, "RFC822") == 0) {
			evbuffer_add_printf(out, "RFC822 ");
			fake_section(f, m, "", 0, out);
		} else if (strcasecmp(tok, "RFC822.HEADER") == 0) {
			evbuffer_add_printf(out, "RFC822.HEADER ");
			fake_section(f, m, "HEADER", 0, out);
		} else
			evbuffer_add_printf(out, "UID %u", m->uid);
	}
	evbuffer_add(out, ")\r\n", 3);
	evbuffer_free(t);
}

static const struct ffolder *
fake_folder(struct fake *f, const char *arg)
{
	char	 name[256];
	size_t	 i, n = 0;
	int	 quoted = *arg == '"';

	arg += quoted;
	while (*arg != '\0' && (quoted ? *arg != '"' : *arg != ' ') &&
	    n < sizeof(name) - 1) {
		if (quoted && *arg == '\\' && arg[1] != '\0')
			arg++;
		name[n++] = *arg++;
	}
	name[n] = '\0';
	for (i = 0; i < f->nfolders; i++)
		if (strcmp(f->folders[i].name, name) == 0 ||
		    (i == 0 && strcasecmp(name, "INBOX") == 0))
			return &f->folders[i];
	return NULL;
}

/* Up to the next space, the rest after it. */
static const char *
fake_word(const char *p, char *w, size_t len)
{
	size_t	 n = 0;

	while (*p != '\0' && *p != ' ') {
		if (n < len - 1)
			w[n++] = *p;
		p++;
	}
	w[n] = '\0';
	return *p == ' ' ? p + 1 : p;
}

/* 1 if the server hung up (f is gone). */
static int
fake_command(struct fake *f, const char *line)
{
	struct evbuffer		*out = bufferevent_get_output(f->bev);
	const struct ffolder	*fo;
	char			 tag[64], verb[32], w[32], set[128];
	const char		*rest, *sep;
	unsigned int		 max;
	size_t			 i;
	int			 uid = 0, refuse;

	f->ncmds++;
	if (f->idletag[0] != '\0') {
		if (strcasecmp(line, "DONE") == 0) {
			evbuffer_add_printf(out, "%s OK Idle completed.\r\n",
			    f->idletag);
			f->idletag[0] = '\0';
		}
		return 0;
	}
	rest = fake_word(line, tag, sizeof(tag));
	rest = fake_word(rest, verb, sizeof(verb));
	if (strcasecmp(verb, "UID") == 0) {
		uid = 1;
		rest = fake_word(rest, verb, sizeof(verb));
	}
	if (f->side == BACKEND_NEW && (mode & MODE_NEW_DROPS) &&
	    f->ncmds >= MODE_DROP_AFTER(mode)) {
		evbuffer_add_printf(out, "* BYE Connection dropped\r\n");
		fake_free(f);
		return 1;
	}
	/* A refusing server still answers NOOP and lists its folders:
	 * logins work, every folder command fails. */
	refuse = f->loggedin && ((f->side == BACKEND_NEW &&
	    (mode & MODE_NEW_REFUSES)) || (f->side == BACKEND_LEGACY &&
	    (mode & MODE_LEGACY_REFUSES))) &&
	    strcasecmp(verb, "NOOP") != 0 && strcasecmp(verb, "LIST") != 0 &&
	    strcasecmp(verb, "LSUB") != 0 &&
	    strcasecmp(verb, "NAMESPACE") != 0;
	if (strcasecmp(verb, "CAPABILITY") == 0) {
		evbuffer_add_printf(out, "* CAPABILITY %s\r\n%s OK done\r\n",
		    caps[f->side], tag);
	} else if (strcasecmp(verb, "LOGIN") == 0 ||
	    strcasecmp(verb, "AUTHENTICATE") == 0) {
		if (f->side == BACKEND_LEGACY &&
		    (mode & MODE_LEGACY_NOLOGIN))
			evbuffer_add_printf(out, "%s NO [AUTHENTICATIONFAILED] "
			    "Authentication failed.\r\n", tag);
		else {
			f->loggedin = 1;
			evbuffer_add_printf(out, "%s OK [CAPABILITY %s] "
			    "Logged in\r\n", tag, caps[f->side]);
		}
	} else if (strcasecmp(verb, "LOGOUT") == 0) {
		evbuffer_add_printf(out, "* BYE Logging out\r\n%s OK Logout "
		    "completed.\r\n", tag);
		fake_free(f);
		return 1;
	} else if (refuse) {
		evbuffer_add_printf(out, "%s NO Server error.\r\n", tag);
	} else if (strcasecmp(verb, "NAMESPACE") == 0) {
		evbuffer_add_printf(out, "* NAMESPACE ((\"\" \"%s\")) NIL NIL"
		    "\r\n%s OK done\r\n", f->side == BACKEND_NEW ? "/" : ".",
		    tag);
	} else if (strcasecmp(verb, "LIST") == 0 ||
	    strcasecmp(verb, "LSUB") == 0) {
		sep = f->side == BACKEND_NEW ? "/" : ".";
		for (i = 0; i < f->nfolders; i++)
			evbuffer_add_printf(out, "* %s (%s) \"%s\" \"%s\"\r\n",
			    verb, f->folders[i].attrs, sep,
			    f->folders[i].name);
		evbuffer_add_printf(out, "%s OK done\r\n", tag);
	} else if (strcasecmp(verb, "SELECT") == 0 ||
	    strcasecmp(verb, "EXAMINE") == 0) {
		if ((fo = fake_folder(f, rest)) == NULL ||
		    strstr(fo->attrs, "Noselect") != NULL) {
			f->selected = NULL;
			evbuffer_add_printf(out, "%s NO [NONEXISTENT] Mailbox "
			    "doesn't exist\r\n", tag);
			return 0;
		}
		f->selected = fo;
		max = fo->nmsgs > 0 ? fo->msgs[fo->nmsgs - 1].uid : 0;
		evbuffer_add_printf(out,
		    "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft%s)"
		    "\r\n* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted "
		    "\\Seen \\Draft%s)] Flags permitted.\r\n"
		    "* %zu EXISTS\r\n* 0 RECENT\r\n"
		    "* OK [UIDVALIDITY %u] UIDs valid\r\n"
		    "* OK [UIDNEXT %u] Predicted next UID\r\n"
		    "%s OK [READ-WRITE] Select completed\r\n",
		    f->side == BACKEND_LEGACY ? " $Forwarded" : "",
		    f->side == BACKEND_LEGACY ? " \\*" : "",
		    fo->nmsgs, 1000u + (unsigned int)(fo - f->folders) +
		    (unsigned int)f->side * 100, max + 1, tag);
	} else if (strcasecmp(verb, "STATUS") == 0) {
		if ((fo = fake_folder(f, rest)) == NULL) {
			evbuffer_add_printf(out, "%s NO [NONEXISTENT] Mailbox "
			    "doesn't exist\r\n", tag);
			return 0;
		}
		evbuffer_add_printf(out, "* STATUS \"%s\" (MESSAGES %zu "
		    "UIDNEXT %u UIDVALIDITY %u UNSEEN 0)\r\n%s OK done\r\n",
		    fo->name, fo->nmsgs, fo->nmsgs > 0 ?
		    fo->msgs[fo->nmsgs - 1].uid + 1 : 1,
		    1000u + (unsigned int)(fo - f->folders) +
		    (unsigned int)f->side * 100, tag);
	} else if (strcasecmp(verb, "FETCH") == 0 && f->selected != NULL) {
		fo = f->selected;
		rest = fake_word(rest, set, sizeof(set));
		max = fo->nmsgs == 0 ? 0 : uid ?
		    fo->msgs[fo->nmsgs - 1].uid : (unsigned int)fo->nmsgs;
		for (i = 0; i < fo->nmsgs; i++)
			if (fake_in_set(set, uid ? fo->msgs[i].uid :
			    (unsigned int)i + 1, max))
				fake_fetch_items(f, &fo->msgs[i],
				    (unsigned int)i + 1, rest, uid, out);
		evbuffer_add_printf(out, "%s OK Fetch completed.\r\n", tag);
	} else if (strcasecmp(verb, "SEARCH") == 0 && f->selected != NULL) {
		fo = f->selected;
		evbuffer_add_printf(out, "* SEARCH");
		for (i = 0; i < fo->nmsgs; i++)
			evbuffer_add_printf(out, " %u", uid ?
			    fo->msgs[i].uid : (unsigned int)i + 1);
		evbuffer_add_printf(out, "\r\n%s OK Search completed.\r\n",
		    tag);
	} else if (strcasecmp(verb, "STORE") == 0 && f->selected != NULL) {
		fo = f->selected;
		rest = fake_word(rest, set, sizeof(set));
		for (i = 0; i < fo->nmsgs; i++)
			if (fake_in_set(set, uid ? fo->msgs[i].uid :
			    (unsigned int)i + 1, uid ?
			    fo->msgs[fo->nmsgs - 1].uid :
			    (unsigned int)fo->nmsgs))
				evbuffer_add_printf(out, "* %zu FETCH (UID %u "
				    "FLAGS (%s))\r\n", i + 1, fo->msgs[i].uid,
				    fo->msgs[i].flags);
		evbuffer_add_printf(out, "%s OK Store completed.\r\n", tag);
	} else if (strcasecmp(verb, "APPEND") == 0) {
		evbuffer_add_printf(out, "%s OK [APPENDUID 1%03u %u] Append "
		    "completed.\r\n", tag, (unsigned int)f->side,
		    f->next_uid++);
	} else if ((strcasecmp(verb, "COPY") == 0 ||
	    strcasecmp(verb, "MOVE") == 0) && f->selected != NULL) {
		rest = fake_word(rest, set, sizeof(set));
		if (strspn(set, "0123456789") == strlen(set) && *set != '\0')
			evbuffer_add_printf(out, "%s OK [COPYUID 1%03u %s %u] "
			    "done\r\n", tag, (unsigned int)f->side, set,
			    f->next_uid++);
		else
			evbuffer_add_printf(out, "%s OK done\r\n", tag);
	} else if (strcasecmp(verb, "EXPUNGE") == 0 && f->selected != NULL) {
		evbuffer_add_printf(out, "%s OK Expunge completed.\r\n", tag);
	} else if (strcasecmp(verb, "IDLE") == 0) {
		snprintf(f->idletag, sizeof(f->idletag), "%s", tag);
		evbuffer_add_printf(out, "+ idling\r\n");
	} else if (strcasecmp(verb, "CLOSE") == 0 ||
	    strcasecmp(verb, "UNSELECT") == 0) {
		f->selected = NULL;
		evbuffer_add_printf(out, "%s OK done\r\n", tag);
	} else if (strcasecmp(verb, "CREATE") == 0 ||
	    strcasecmp(verb, "DELETE") == 0 ||
	    strcasecmp(verb, "RENAME") == 0 ||
	    strcasecmp(verb, "SUBSCRIBE") == 0 ||
	    strcasecmp(verb, "UNSUBSCRIBE") == 0 ||
	    strcasecmp(verb, "NOOP") == 0 || strcasecmp(verb, "CHECK") == 0 ||
	    strcasecmp(verb, "ID") == 0 || strcasecmp(verb, "ENABLE") == 0) {
		evbuffer_add_printf(out, "%s OK done\r\n", tag);
	} else {
		(void)fake_word(verb, w, sizeof(w));
		evbuffer_add_printf(out, "%s BAD Error in IMAP command %s\r\n",
		    tag, w);
	}
	return 0;
}

/*
 * Reads whole commands: a line that ends in {n} or {n+} continues after n
 * literal bytes (a synchronising one gets its "+" first).  The literal
 * bytes go into the command text, so that APPEND's message is seen whole.
 */
static void
fake_read(struct bufferevent *bev, void *arg)
{
	struct fake	*f = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	char		*line, *open;
	size_t		 len, n;
	int		 gone;

	progress++;
	for (;;) {
		if (f->literal > 0) {
			n = evbuffer_get_length(in);
			if (n == 0)
				return;
			if (n > f->literal)
				n = f->literal;
			if (evbuffer_get_length(f->cmd) + n < MAX_CMD)
				evbuffer_remove_buffer(in, f->cmd, n);
			else
				evbuffer_drain(in, n);
			f->literal -= n;
			continue;
		}
		if ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF)) ==
		    NULL)
			return;
		if (evbuffer_get_length(f->cmd) + len < MAX_CMD)
			evbuffer_add(f->cmd, line, len);
		if (len > 2 && line[len - 1] == '}' &&
		    (open = strrchr(line, '{')) != NULL) {
			f->literal = strtoul(open + 1, NULL, 10);
			if (strchr(open, '+') == NULL)
				evbuffer_add_printf(bufferevent_get_output(
				    bev), "+ OK\r\n");
			free(line);
			if (f->literal > 0)
				continue;
		} else
			free(line);
		evbuffer_add(f->cmd, "", 1);
		line = (char *)evbuffer_pullup(f->cmd, -1);
		/* fake_command may free f: take the text out first. */
		line = strdup(line);
		evbuffer_drain(f->cmd, evbuffer_get_length(f->cmd));
		if (line == NULL)
			return;
		gone = fake_command(f, line);
		free(line);
		if (gone)
			return;
	}
}

static void
fake_write(struct bufferevent *bev, void *arg)
{
	progress++;
}

static void
fake_event(struct bufferevent *bev, short what, void *arg)
{
	progress++;
	fake_free(arg);		/* the daemon hung up */
}

/* Hangs up: EOF to the daemon's end, then gone. */
static void
fake_free(struct fake *f)
{
	struct fake	**fp;

	for (fp = &fakes; *fp != NULL; fp = &(*fp)->next)
		if (*fp == f) {
			*fp = f->next;
			break;
		}
	bufferevent_flush(f->bev, EV_WRITE, BEV_FINISHED);
	bufferevent_free(f->bev);
	event_free(f->connect);
	evbuffer_free(f->cmd);
	free(f);
}

/* The connect finishes, or is refused, as the mode says. */
static void
fake_connect(evutil_socket_t fd, short what, void *arg)
{
	struct fake		*f = arg;
	struct bufferevent	*daemon_end = bufferevent_pair_get_partner(
				    f->bev);

	progress++;
	if (daemon_end == NULL)
		return;
	if ((f->side == BACKEND_LEGACY && (mode & MODE_LEGACY_DOWN)) ||
	    (f->side == BACKEND_NEW && (mode & MODE_NEW_DOWN))) {
		errno = ECONNREFUSED;	/* what the error event reports */
		bufferevent_trigger_event(daemon_end, BEV_EVENT_ERROR, 0);
		return;
	}
	bufferevent_trigger_event(daemon_end, BEV_EVENT_CONNECTED, 0);
	evbuffer_add_printf(bufferevent_get_output(f->bev), "* OK "
	    "[CAPABILITY %s] %s ready.\r\n", caps[f->side],
	    f->side == BACKEND_NEW ? "Microsoft Exchange" : "Dovecot");
}

/*
 * What the backends call to connect: a pair instead of a socket.  A backend
 * the mode says is down gets a connection error, as a refused connect
 * would give it.
 */
struct bufferevent *
conn_connect(struct event_base *base, struct evdns_base *dns, SSL_CTX *ctx,
    const char *host, int port, int tls_now, char *err, size_t errlen)
{
	static const struct timeval zero = { 0, 0 };
	struct bufferevent	*pair[2];
	struct fake		*f;
	enum backend_side	 side = port == NEW_PORT ? BACKEND_NEW :
				    BACKEND_LEGACY;

	if (bufferevent_pair_new(base, BEV_OPT_DEFER_CALLBACKS, pair) == -1) {
		snprintf(err, errlen, "cannot create a connection");
		return NULL;
	}
	if ((f = calloc(1, sizeof(*f))) == NULL ||
	    (f->cmd = evbuffer_new()) == NULL ||
	    (f->connect = evtimer_new(base, fake_connect, f)) == NULL)
		abort();
	f->bev = pair[1];
	f->side = side;
	f->next_uid = 100;
	if (side == BACKEND_NEW) {
		f->folders = new_folders;
		f->nfolders = sizeof(new_folders) / sizeof(new_folders[0]);
	} else {
		f->folders = legacy_folders;
		f->nfolders = sizeof(legacy_folders) /
		    sizeof(legacy_folders[0]);
	}
	f->next = fakes;
	fakes = f;
	bufferevent_setcb(f->bev, fake_read, fake_write, fake_event, f);
	bufferevent_enable(f->bev, EV_READ | EV_WRITE);
	/* The daemon sets its callbacks once this returns. */
	evtimer_add(f->connect, &zero);
	return pair[0];
}

/*
 * The client.
 */

/* What the client heard, when a test wants it (tests/unit). */
static struct evbuffer	*transcript;

static void
client_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer	*in = bufferevent_get_input(bev);

	progress++;
	if (getenv("FUZZ_LOG") != NULL)
		evbuffer_write(in, STDERR_FILENO);
	if (transcript != NULL)
		evbuffer_add_buffer(transcript, in);
	else
		evbuffer_drain(in, evbuffer_get_length(in));
}

static void
client_event(struct bufferevent *bev, short what, void *arg)
{
	progress++;
}

/* Runs the loop until nothing has moved for a few turns. */
static void
spin(void)
{
	unsigned long	 before;
	int		 i, still = 0;

	for (i = 0; i < MAX_SPINS && still < IDLE_SPINS; i++) {
		before = progress;
		event_base_loop(srv.base, EVLOOP_NONBLOCK);
		still = progress == before ? still + 1 : 0;
	}
}

static void
wipe_state(void)
{
	DIR		*d;
	struct dirent	*e;
	char		 path[512];

	if ((d = opendir(statedir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' && (e->d_name[1] == '\0' ||
		    (e->d_name[1] == '.' && e->d_name[2] == '\0')))
			continue;
		snprintf(path, sizeof(path), "%s/%s", statedir, e->d_name);
		unlink(path);
	}
	closedir(d);
}

static struct config *
load_config(int writes, int expunge)
{
	static const char *const w[] = { "none", "flags", "all" };
	struct config_errors	 errs;
	struct config		*c;
	char			 text[2048];
	size_t			 i;

	snprintf(text, sizeof(text),
	    "state-dir \"%s\"\n"
	    "log stderr\n"
	    "log-level debug\n"
	    "tls-certificate \"/nonexistent/cert.pem\"\n"
	    "tls-key \"/nonexistent/key.pem\"\n"
	    "listen imap 127.0.0.1:1143 starttls allow-plaintext-auth\n"
	    "command-timeout 60s\n"
	    "offline-auth no\n"
	    "max-message-size 1M\n"
	    "legacy-writes %s\n"
	    "tombstone-action %s\n"
	    "hide-folder \"Social Activity Notifications\"\n"
	    "folder-role sent legacy \"Sent\"\n"
	    "send-via legacy \"*@ml.example.ac.jp\"\n"
	    "legacy {\n"
	    "\timap 127.0.0.1:%d plain\n"
	    "\tsubmission 127.0.0.1:10587 plain\n"
	    "\tusername \"%%n\"\n"
	    "\tauth password\n"
	    "\tfiles-sent-copies no\n"
	    "}\n"
	    "new {\n"
	    "\timap 127.0.0.1:%d plain\n"
	    "\tusername \"%%n@ms.example.ac.jp\"\n"
	    "\tauth password\n"
	    "\tfiles-sent-copies yes\n"
	    "}\n", statedir, w[writes], expunge ? "expunge" : "hide",
	    LEGACY_PORT, NEW_PORT);
	c = config_parse_buffer("fuzz.conf", text, strlen(text),
	    CONFIG_NO_SYSTEM_CHECKS, &errs);
	if (c == NULL) {
		for (i = 0; i < errs.count; i++)
			fprintf(stderr, "%s\n", errs.msg[i] ? errs.msg[i] :
			    "(no memory)");
		abort();
	}
	config_errors_clear(&errs);
	return c;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char	*base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" :
			    "/tmp";
	FILE		*devnull;
	int		 i;

	snprintf(statedir, sizeof(statedir), "%s/imapmerge-fuzz-XXXXXX",
	    base);
	if (mkdtemp(statedir) == NULL)
		abort();
	for (i = 0; i < 6; i++)
		confs[i] = load_config(i % 3, i / 3);
	signal(SIGPIPE, SIG_IGN);
	log_init(1, LOG_DEBUG, "fuzz_session");
	/* Every log line is formatted (that code is fuzzed too), then
	 * dropped, unless FUZZ_LOG is set. */
	if (getenv("FUZZ_LOG") == NULL) {
		if ((devnull = fopen("/dev/null", "w")) == NULL)
			abort();
		log_setoutput(devnull);
	}
	if ((srv.base = event_base_new()) == NULL || auth_init() == -1)
		abort();
	/* STARTTLS is answered; a handshake with fuzz bytes just fails. */
	if ((srv.tls = SSL_CTX_new(TLS_server_method())) == NULL)
		abort();
	return 0;
}

static void
remove_statedir(void)
{
	wipe_state();
	rmdir(statedir);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int		 registered;
	struct bufferevent	*pair[2];

	if (!registered) {
		atexit(remove_statedir);
		registered = 1;
	}
	if (size < 2)
		return 0;
	mode = data[0];
	srv.conf = confs[data[1] % 6];
	if ((srv.abuse = abuse_new()) == NULL ||
	    bufferevent_pair_new(srv.base, BEV_OPT_DEFER_CALLBACKS,
	    pair) == -1)
		abort();
	bufferevent_setcb(pair[1], client_read, NULL, client_event, NULL);
	bufferevent_enable(pair[1], EV_READ | EV_WRITE);
	imap_session_start(&srv, &srv.conf->listen[0], pair[0],
	    "192.0.2.7", 49152);
	evbuffer_add(bufferevent_get_output(pair[1]), data + 2, size - 2);
	spin();

	/* The client hangs up; whatever is left is what a shutdown frees. */
	bufferevent_flush(pair[1], EV_WRITE, BEV_FINISHED);
	spin();
	imap_service.free_all(&srv);
	users_free_all(&srv);
	while (fakes != NULL)
		fake_free(fakes);
	bufferevent_free(pair[1]);
	spin();
	abuse_free(&srv.abuse);
	wipe_state();
	return 0;
}
