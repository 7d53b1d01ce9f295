/*
 * Backend connections (see backend.h).
 *
 * Life of a connection: CONNECTING (resolve + TCP + implicit TLS) ->
 * GREETING -> [STARTTLS -> HANDSHAKE] -> CAPABILITY -> LOGIN -> CHECK ->
 * READY.  The steps after the greeting are ordinary queued commands, so the
 * same reader handles everything.  One function, be_fail(), ends a
 * connection for any reason: it logs once, fails every queued command and
 * tells the opener.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "protocol/imap_parser.h"
#include "protocol/imap_write.h"
#include "proxy/core/log.h"
#include "proxy/core/server.h"
#include "proxy/net/backend.h"
#include "proxy/net/conn.h"
#include "proxy/net/token.h"

enum be_state {
	BE_NEW,
	BE_CONNECTING,
	BE_GREETING,
	BE_HANDSHAKE,
	BE_LOGIN,
	BE_READY,
	BE_CLOSED,
	BE_STATE_COUNT
};

static const char *const be_state_names[] = {
	"new", "connecting", "greeting", "handshake", "login", "ready",
	"closed",
};
_Static_assert(sizeof(be_state_names) / sizeof(be_state_names[0]) ==
    BE_STATE_COUNT, "state name table");

#define BE_MAX_SEGMENTS	4

/*
 * A command may have to wait for "+" in the middle: after a synchronising
 * literal's "{n}", or between AUTHENTICATE and its response when the
 * server has no SASL-IR.  seglen[] cuts text into the pieces sent one
 * continuation at a time, each followed by CRLF.
 */
struct be_cmd {
	char			 tag[12];
	struct evbuffer		*text;		/* without tag */
	size_t			 seglen[BE_MAX_SEGMENTS];
	int			 nseg, nextseg;
	backend_data_cb		*data;
	backend_literal_cb	*literal;	/* streams big literals */
	backend_done_cb		*done;
	void			*arg;
	int			 sent;
	int			 idle;		/* IDLE: 1 queued, 2 idling,
						   3 DONE sent */
	int			 watch;		/* the watch's IDLE */
	/* An upload: the literal's bytes as the caller hands them over. */
	int			 upload;	/* 1 waiting for "+", 2 flowing */
	uint64_t		 up_left;	/* bytes still to come */
	struct evbuffer		*up_hold;	/* bytes held until "+" */
	backend_drained_cb	*drained;
	char			*retry;		/* a read's text, to send again */
	int			 retries;
	struct be_cmd		*next;
};

struct backend {
	struct server		*srv;
	struct config		*cf;		/* a reference: a reload */
	const struct backend_conf *conf;	/* cf's, for this side */
	enum backend_side	 side;
	char			 sid[24];
	enum be_state		 state;
	struct bufferevent	*bev;
	struct imap_parser	*parser;
	struct event		*timer;
	unsigned int		 next_tag;
	struct be_cmd		*queue, **queue_tail;
	char			**caps;
	size_t			 ncaps;
	char			*user;		/* backend username */
	char			*password;
	unsigned long		 token_req;
	backend_done_cb		*open_cb;
	void			*open_arg;
	int			 busy;		/* callbacks running */
	int			 dead;		/* freed by the owner meanwhile */
	struct evbuffer		*sink;		/* literal being streamed */
	struct evbuffer		*stage;		/* its bytes not yet in sink */
	int			 paused;	/* sink full: not reading */
	struct be_cmd		*up;		/* the upload, queued or sent */
	backend_lost_cb		*lost_cb;	/* connection gone after open */
	void			*lost_arg;
	struct event		*hold;		/* throttled: sending waits */
	int			 holding;
	unsigned int		 backoff_ms;	/* the last one asked for */
	struct be_later		*later, **later_tail;
	struct event		*later_ev;
	/* backend_watch(): IDLE once the queue has been empty this long. */
	unsigned int		 watch_ms;
	backend_data_cb		*watch_data;
	void			*watch_arg;
	struct event		*watch_ev;
};

/*
 * A command refused before it was queued (the connection is gone, an
 * upload is running) is answered from the event loop, never from inside
 * the call that made it: callers may go on using their state after
 * backend_cmd() returns.
 */
struct be_later {
	backend_done_cb		*done;
	void			*arg;
	const char		*text;		/* static */
	struct be_later		*next;
};

/*
 * Office 365 throttles with "BAD Request is throttled.  Suggested Backoff
 * Time: N milliseconds".  Nothing is sent for that long; a read is sent
 * again after it (BE_RETRIES times at most), anything else fails with
 * [UNAVAILABLE], never the BAD.
 */
#define BE_RETRIES		3
#define BE_BACKOFF_DEFAULT_MS	1000
#define BE_BACKOFF_MAX_MS	(5 * 60 * 1000)

/* Literals at least this big are streamed when the command asks for it;
 * a sink holding more than BE_SINK_HIGH stops reading from the server. */
#define BE_STREAM_THRESHOLD	(32 * 1024)
#define BE_SINK_HIGH		(1024 * 1024)
/* Streamed bytes go to the sink in pieces of at least one full TLS record
 * (16 kB): servers send smaller records (Dovecot's are 4 kB), and each
 * piece of a sink becomes a record and a write(2) of its own. */
#define BE_SINK_PIECE		(16 * 1024)

static void	 be_sink_flush(struct backend *);
static void	 be_fail(struct backend *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static void	 be_send_next(struct backend *);
static void	 be_fail_later(struct backend *, backend_done_cb *, void *,
		    const char *);
static void	 be_send_segment(struct backend *, struct be_cmd *,
		    const char *);
static int	 be_has_segment(const struct backend *);
static void	 be_login(struct backend *);
static void	 be_cmd_segments(struct backend *, const char *, size_t,
		    const size_t *, int, backend_data_cb *, backend_literal_cb *,
		    backend_done_cb *, void *);
static void	 be_auth_cont(struct backend *);
static void	 be_stream_mode(struct backend *);
static int	 be_literal_start(struct backend *);
static int	 be_stream(struct backend *, struct evbuffer *);
static void	 be_read(struct bufferevent *, void *);
static void	 be_write(struct bufferevent *, void *);
static void	 be_up_flow(struct backend *, struct be_cmd *);
static void	 be_idle_check(struct backend *);
static void	 be_watch_arm(struct backend *, unsigned int);

static void
be_enter(struct backend *b, enum be_state st)
{
	log_debug("sid=%s backend=%s state %s -> %s", b->sid,
	    config_side_name(b->side), be_state_names[b->state],
	    be_state_names[st]);
	b->state = st;
}

struct backend *
backend_new(struct server *srv, enum backend_side side, const char *sid)
{
	struct imap_parser_limits	 lim;
	struct backend	*b;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	b->srv = srv;
	b->side = side;
	b->cf = config_ref(srv->conf);
	b->conf = &b->cf->backend[side];
	snprintf(b->sid, sizeof(b->sid), "%s", sid);
	b->queue_tail = &b->queue;
	b->next_tag = 1;
	/* Literals of commands that do not stream (backend_cmd_stream) are
	 * held whole: up to the message size limit, plus room. */
	imap_parser_default_limits(&lim);
	lim.max_literal = b->cf->max_message_size + (1 << 20);
	lim.max_inline_literal = lim.max_literal;
	/* "* SEARCH" of a 1,000,000-message folder is one response. */
	lim.max_args = 2000000;
	if ((b->parser = imap_parser_new(IMAP_PARSER_RESPONSE, &lim)) ==
	    NULL || (b->stage = evbuffer_new()) == NULL) {
		imap_parser_free(&b->parser);
		config_unref(&b->cf);
		free(b);
		return NULL;
	}
	return b;
}

static void
be_caps_clear(struct backend *b)
{
	size_t	 i;

	for (i = 0; i < b->ncaps; i++)
		free(b->caps[i]);
	free(b->caps);
	b->caps = NULL;
	b->ncaps = 0;
}

static void
be_secret_clear(struct backend *b)
{
	if (b->password != NULL) {
		OPENSSL_cleanse(b->password, strlen(b->password));
		free(b->password);
		b->password = NULL;
	}
}

static void
be_cmd_free(struct backend *b, struct be_cmd *c)
{
	/* A command text may hold a credential: wipe it. */
	size_t	 len = evbuffer_get_length(c->text);

	if (len > 0)
		OPENSSL_cleanse(evbuffer_pullup(c->text, len), len);
	evbuffer_free(c->text);
	if (c->up_hold != NULL)
		evbuffer_free(c->up_hold);
	free(c->retry);
	if (b->up == c)
		b->up = NULL;
	free(c);
}

static void
be_close(struct backend *b)
{
	if (b->bev != NULL) {
		bufferevent_free(b->bev);
		b->bev = NULL;
	}
	if (b->timer != NULL) {
		event_free(b->timer);
		b->timer = NULL;
	}
	if (b->hold != NULL) {
		event_free(b->hold);
		b->hold = NULL;
	}
	if (b->watch_ev != NULL) {
		event_free(b->watch_ev);
		b->watch_ev = NULL;
	}
	if (b->token_req != 0 && b->srv->tokens != NULL)
		token_cancel(b->srv->tokens, b->token_req);
	b->token_req = 0;
	be_secret_clear(b);
}

static void
be_destroy(struct backend *b)
{
	struct be_cmd	*c;
	struct be_later	*l;

	be_close(b);
	while ((c = b->queue) != NULL) {
		b->queue = c->next;
		be_cmd_free(b, c);
	}
	while ((l = b->later) != NULL) {
		b->later = l->next;
		free(l);
	}
	if (b->later_ev != NULL)
		event_free(b->later_ev);
	imap_parser_free(&b->parser);
	evbuffer_free(b->stage);
	be_caps_clear(b);
	free(b->user);
	config_unref(&b->cf);
	free(b);
}

/*
 * The owner may free a backend from inside one of its callbacks: then it
 * is only marked dead, stops all I/O and calls nobody back, and the
 * outermost callback frame destroys it on the way out (be_unref).
 */
void
backend_free(struct backend **bp)
{
	struct backend	*b = *bp;

	if (b == NULL)
		return;
	*bp = NULL;
	if (b->busy == 0) {
		be_destroy(b);
		return;
	}
	b->dead = 1;
	b->open_cb = NULL;
	be_close(b);
}

static void
be_ref(struct backend *b)
{
	b->busy++;
}

/* Returns 1 when the backend is gone (or going): touch nothing more. */
static int
be_unref(struct backend *b)
{
	if (--b->busy == 0 && b->dead) {
		be_destroy(b);
		return 1;
	}
	return b->dead;
}

int
backend_ready(const struct backend *b)
{
	return b->state == BE_READY;
}

enum backend_side
backend_side(const struct backend *b)
{
	return b->side;
}

const char *
backend_name(const struct backend *b)
{
	return config_side_name(b->side);
}

int
backend_has_cap(const struct backend *b, const char *cap)
{
	size_t	 i;

	for (i = 0; i < b->ncaps; i++)
		if (strcasecmp(b->caps[i], cap) == 0)
			return 1;
	return 0;
}

/*
 * Ends the connection.  Every queued command fails (its owner learns the
 * backend is gone), then the opener hears about it if it is still waiting.
 * Callbacks may free the backend: b->dead tells us to stop touching it.
 */
static void
be_fail(struct backend *b, const char *fmt, ...)
{
	struct backend_result	 res = { .status = BACKEND_FAILED };
	struct be_cmd		*c;
	backend_done_cb		*cb;
	char			 why[256];
	va_list			 ap;

	backend_lost_cb		*lost = NULL;
	uint64_t		 left;

	if (b->state == BE_CLOSED || b->dead)
		return;
	if (b->state == BE_READY) {
		lost = b->lost_cb;
		b->lost_cb = NULL;
	}
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_sess(LOG_WARNING, b->sid, "event=backend-failed backend=%s "
	    "state=%s reason=\"%s\"", backend_name(b),
	    be_state_names[b->state], why);
	b->srv->stats.failures[b->side]++;
	/* The command streaming a literal: its owner must finish it. */
	left = b->sink != NULL ? imap_parser_literal_left(b->parser) : 0;
	be_sink_flush(b);
	b->sink = NULL;
	be_enter(b, BE_CLOSED);
	be_close(b);
	res.text = why;
	be_ref(b);
	while (!b->dead && (c = b->queue) != NULL) {
		b->queue = c->next;
		if (b->queue == NULL)
			b->queue_tail = &b->queue;
		res.stream_left = left;
		left = 0;
		if (c->done != NULL)
			c->done(b, &res, c->arg);
		be_cmd_free(b, c);
	}
	res.stream_left = 0;
	if (!b->dead && (cb = b->open_cb) != NULL) {
		b->open_cb = NULL;
		cb(b, &res, b->open_arg);
	}
	if (!b->dead && lost != NULL)
		lost(b, why, b->lost_arg);
	be_unref(b);
}

void
backend_on_lost(struct backend *b, backend_lost_cb *cb, void *arg)
{
	b->lost_cb = cb;
	b->lost_arg = arg;
}

static void
be_opened(struct backend *b, const struct backend_result *res)
{
	backend_done_cb	*cb = b->open_cb;

	b->open_cb = NULL;
	if (cb != NULL)
		cb(b, res, b->open_arg);
}

/* Arms the one timer: connect deadline, or the oldest command's. */
static void
be_timer_arm(struct backend *b, unsigned int ms)
{
	struct timeval	 tv = { ms / 1000, (ms % 1000) * 1000 };

	if (b->timer != NULL)
		evtimer_add(b->timer, &tv);
}

static void
be_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct backend	*b = arg;

	if (b->state == BE_READY && (b->queue == NULL || b->queue->idle == 2 ||
	    !b->queue->sent))
		return;
	be_fail(b, "%s timed out", b->state == BE_READY ? "command" :
	    be_state_names[b->state]);
}

void
backend_cmd(struct backend *b, const char *command, backend_data_cb *data,
    backend_done_cb *done, void *arg)
{
	be_cmd_segments(b, command, strlen(command), NULL, 0, data, NULL,
	    done, arg);
}

/*
 * IDLE (RFC 2177) on the backend: untagged data goes to data() until the
 * next command is queued, which first ends the IDLE with DONE.  An IDLE
 * already there (the watch's) is taken over.
 */
static struct be_cmd *
be_idle_queue(struct backend *b, backend_data_cb *data, void *arg)
{
	struct be_cmd	*c;

	for (c = b->queue; c != NULL; c = c->next)
		if (c->idle == 1 || c->idle == 2) {
			c->data = data;
			c->arg = arg;
			c->watch = 0;
			return c;
		}
	be_cmd_segments(b, "IDLE", 4, NULL, 0, data, NULL, NULL, arg);
	for (c = b->queue; c != NULL && c->next != NULL; c = c->next)
		;
	if (c == NULL)
		return NULL;
	c->idle = 1;
	be_idle_check(b);
	return c;
}

int
backend_idle(struct backend *b, backend_data_cb *data, void *arg)
{
	if (!backend_ready(b) || !backend_has_cap(b, "IDLE"))
		return -1;
	return be_idle_queue(b, data, arg) != NULL ? 0 : -1;
}

void
backend_idle_stop(struct backend *b)
{
	struct be_cmd	*c = b != NULL ? b->queue : NULL;

	if (c != NULL && c->sent && c->idle == 2) {
		evbuffer_add(bufferevent_get_output(b->bev), "DONE\r\n", 6);
		c->idle = 3;
		be_timer_arm(b, b->cf->command_timeout_ms);
	} else if (c != NULL && c->idle == 1 && !c->sent) {
		/* Not sent yet: never send it. */
		b->queue = c->next;
		if (b->queue == NULL)
			b->queue_tail = &b->queue;
		be_cmd_free(b, c);
	}
}

/*
 * The watch: a connection that has had nothing to do for watch_ms goes
 * into IDLE, so that the server tells of changes as they happen instead
 * of being asked; the next command ends it.  It is renewed every
 * poll-interval (servers may end an IDLE after 30 minutes, RFC 2177).
 */
static void
be_watch_tick(evutil_socket_t fd, short what, void *arg)
{
	struct backend	*b = arg;
	struct be_cmd	*c = b->queue;

	if (b->watch_ms == 0 || b->state != BE_READY || b->holding)
		return;
	be_ref(b);
	if (c == NULL) {
		if (backend_has_cap(b, "IDLE") &&
		    (c = be_idle_queue(b, b->watch_data, b->watch_arg)) != NULL)
			c->watch = 1;
	} else if (backend_watching(b))
		backend_idle_stop(b);		/* again once it is over */
	be_unref(b);
}

static void
be_watch_arm(struct backend *b, unsigned int ms)
{
	struct timeval	 tv = { ms / 1000, (ms % 1000) * 1000 };

	if (b->watch_ms == 0 || b->state != BE_READY || b->dead)
		return;
	if (b->watch_ev == NULL &&
	    (b->watch_ev = evtimer_new(b->srv->base, be_watch_tick, b)) ==
	    NULL)
		return;
	evtimer_add(b->watch_ev, &tv);
}

void
backend_watch(struct backend *b, unsigned int ms, backend_data_cb *data,
    void *arg)
{
	struct be_cmd	*c;

	if (b == NULL || (b->watch_ms == ms && b->watch_data == data &&
	    b->watch_arg == arg))
		return;
	b->watch_ms = ms;
	b->watch_data = data;
	b->watch_arg = arg;
	for (c = b->queue; c != NULL; c = c->next)
		if (c->watch) {
			c->data = data;
			c->arg = arg;
		}
	if (ms == 0) {
		if (b->watch_ev != NULL)
			evtimer_del(b->watch_ev);
		if ((c = b->queue) != NULL && c->watch)
			backend_idle_stop(b);
		return;
	}
	if (b->queue == NULL)
		be_watch_arm(b, ms);
}

int
backend_watching(const struct backend *b)
{
	const struct be_cmd	*c = b != NULL ? b->queue : NULL;

	return c != NULL && c->watch && c->idle == 2 && c->next == NULL &&
	    b->state == BE_READY;
}

/* An IDLE in progress ends as soon as anything else waits behind it,
 * which follows its DONE at once (be_send_next). */
static void
be_idle_check(struct backend *b)
{
	struct be_cmd	*c = b->queue;

	if (c != NULL && c->idle == 2 && c->next != NULL) {
		backend_idle_stop(b);
		be_send_next(b);
	}
}

void
backend_cmd_stream(struct backend *b, const char *command,
    backend_data_cb *data, backend_literal_cb *literal, backend_done_cb *done,
    void *arg)
{
	be_cmd_segments(b, command, strlen(command), NULL, 0, data, literal,
	    done, arg);
}

void
backend_cmd_astrings(struct backend *b, const char *prefix,
    const char *const *str, const size_t *len, size_t n,
    backend_data_cb *data, backend_done_cb *done, void *arg)
{
	struct evbuffer	*buf = evbuffer_new();
	size_t		 seg[BE_MAX_SEGMENTS], mark = 0, i, total;
	int		 nseg = 0, flags;

	flags = backend_has_cap(b, "LITERAL+") ? IMAP_WRITE_NONSYNC : 0;
	if (buf == NULL) {
		be_cmd_segments(b, "", 0, NULL, 0, data, NULL, done,
		    arg);
		return;
	}
	evbuffer_add_printf(buf, "%s", prefix);
	for (i = 0; i < n; i++) {
		evbuffer_add(buf, " ", 1);
		if (imap_string_kind(str[i], len[i], 0) != IMAP_STR_LITERAL ||
		    flags != 0) {
			imap_write_astring(buf, str[i], len[i], flags);
			continue;
		}
		if (nseg == BE_MAX_SEGMENTS - 1)
			break;		/* callers send at most 3 literals */
		/* Without LITERAL+, wait for "+" after each "{n}". */
		evbuffer_add_printf(buf, "{%zu}", len[i]);
		seg[nseg++] = evbuffer_get_length(buf) - mark;
		mark = evbuffer_get_length(buf);
		evbuffer_add(buf, str[i], len[i]);
	}
	total = evbuffer_get_length(buf);
	be_cmd_segments(b, (const char *)evbuffer_pullup(buf, -1), total, seg,
	    nseg, data, NULL, done, arg);
	evbuffer_free(buf);
}

/*
 * Uploads (APPEND): the literal's bytes are written as the caller hands
 * them over, once the command is on the wire and the server is ready.
 */
void
backend_cmd_upload(struct backend *b, const char *prefix, uint64_t size,
    backend_data_cb *data, backend_drained_cb *drained, backend_done_cb *done,
    void *arg)
{
	char			*cmd;
	int			 nonsync = backend_has_cap(b, "LITERAL+");
	struct be_cmd		*c;

	if (b->up != NULL) {
		be_fail_later(b, done, arg, "an upload is already running");
		return;
	}
	if (asprintf(&cmd, "%s {%llu%s}", prefix, (unsigned long long)size,
	    nonsync ? "+" : "") == -1) {
		be_fail_later(b, done, arg, "out of memory");
		return;
	}
	be_cmd_segments(b, cmd, strlen(cmd), NULL, 0, data, NULL, done, arg);
	free(cmd);
	for (c = b->queue; c != NULL && c->next != NULL; c = c->next)
		;
	if (c == NULL || c->done != done || c->arg != arg)
		return;			/* refused: done() will be told */
	if ((c->up_hold = evbuffer_new()) == NULL) {
		be_fail(b, "out of memory");
		return;
	}
	c->up_left = size;
	c->drained = drained;
	b->up = c;
	bufferevent_setwatermark(b->bev, EV_WRITE, BACKEND_UPLOAD_LOW, 0);
	if (c->sent)			/* it went out at once */
		c->upload = nonsync ? 2 : 1;
	else
		c->upload = nonsync ? -2 : -1;	/* set when it is sent */
	if (c->upload == 2)
		be_up_flow(b, c);
}

/* Moves held bytes to the socket; after the last one, the CRLF. */
static void
be_up_flow(struct backend *b, struct be_cmd *c)
{
	struct evbuffer	*out = bufferevent_get_output(b->bev);

	if (c->up_hold != NULL)
		evbuffer_add_buffer(out, c->up_hold);
	if (c->up_left == 0 && c->upload == 2) {
		evbuffer_add(out, "\r\n", 2);
		c->upload = 3;
	}
	be_timer_arm(b, b->cf->command_timeout_ms);
}

int
backend_upload_add(struct backend *b, struct evbuffer *src, size_t n)
{
	struct be_cmd	*c = b != NULL ? b->up : NULL;

	if (c == NULL || b->bev == NULL || n > c->up_left)
		return -1;
	if (c->upload == 2 && c->sent)
		evbuffer_remove_buffer(src, bufferevent_get_output(b->bev), n);
	else
		evbuffer_remove_buffer(src, c->up_hold, n);
	c->up_left -= n;
	if (c->upload == 2 && c->sent)
		be_up_flow(b, c);
	return 0;
}

size_t
backend_upload_queued(const struct backend *b)
{
	const struct be_cmd	*c = b != NULL ? b->up : NULL;
	size_t			 n;

	if (c == NULL || b->bev == NULL)
		return 0;
	n = evbuffer_get_length(c->up_hold);
	if (c->sent)
		n += evbuffer_get_length(bufferevent_get_output(b->bev));
	return n;
}

void
backend_upload_abort(struct backend *b)
{
	if (b != NULL && b->up != NULL)
		be_fail(b, "upload abandoned");
}

static void
be_write(struct bufferevent *bev, void *arg)
{
	struct backend	*b = arg;

	if (b->up == NULL || b->up->drained == NULL ||
	    backend_upload_queued(b) >= BACKEND_UPLOAD_LOW)
		return;
	be_ref(b);
	b->up->drained(b, b->up->arg);
	be_unref(b);
}

/* Commands that change nothing, safe to send again. */
static int
be_is_read(const char *command)
{
	static const char *const reads[] = {
		"FETCH ", "UID FETCH ", "SEARCH ", "UID SEARCH ", "SELECT ",
		"EXAMINE ", "STATUS ", "LIST ", "LSUB ", "NAMESPACE",
		"NOOP", "CAPABILITY", "CHECK"
	};
	size_t	 i;

	for (i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
		if (strncasecmp(command, reads[i], strlen(reads[i])) == 0)
			return 1;
	return 0;
}

static void
be_later_run(evutil_socket_t fd, short what, void *arg)
{
	struct backend		*b = arg;
	struct backend_result	 res = { .status = BACKEND_FAILED };
	struct be_later		*l;

	be_ref(b);
	while (!b->dead && (l = b->later) != NULL) {
		if ((b->later = l->next) == NULL)
			b->later_tail = &b->later;
		res.text = l->text;
		l->done(b, &res, l->arg);
		free(l);
	}
	be_unref(b);
}

static void
be_fail_later(struct backend *b, backend_done_cb *done, void *arg,
    const char *text)
{
	static const struct timeval	 now = { 0, 0 };
	struct backend_result		 res = { .status = BACKEND_FAILED,
	    .text = text };
	struct be_later			*l;

	if (done == NULL || b->dead)
		return;
	if (b->later_ev == NULL)
		b->later_ev = evtimer_new(b->srv->base, be_later_run, b);
	if (b->later_ev == NULL || (l = calloc(1, sizeof(*l))) == NULL) {
		done(b, &res, arg);	/* out of memory: the old way */
		return;
	}
	l->done = done;
	l->arg = arg;
	l->text = text;
	if (b->later == NULL)
		b->later_tail = &b->later;
	*b->later_tail = l;
	b->later_tail = &l->next;
	evtimer_add(b->later_ev, &now);
}

static void
be_cmd_segments(struct backend *b, const char *command, size_t len,
    const size_t *seglen, int nseg, backend_data_cb *data,
    backend_literal_cb *literal, backend_done_cb *done, void *arg)
{
	struct be_cmd		*c = NULL;

	if (b->state == BE_CLOSED || b->dead ||
	    (c = calloc(1, sizeof(*c))) == NULL ||
	    (c->text = evbuffer_new()) == NULL) {
		free(c);
		be_fail_later(b, done, arg, b->state == BE_CLOSED ?
		    "backend not connected" : "out of memory");
		return;
	}
	snprintf(c->tag, sizeof(c->tag), "%c%u",
	    b->side == BACKEND_LEGACY ? 'L' : 'N', b->next_tag++);
	evbuffer_add(c->text, command, len);
	if (nseg > BE_MAX_SEGMENTS)
		nseg = BE_MAX_SEGMENTS;
	if (nseg > 0)
		memcpy(c->seglen, seglen, nseg * sizeof(*seglen));
	c->nseg = nseg;
	c->data = data;
	c->literal = literal;
	c->done = done;
	c->arg = arg;
	if (nseg == 0 && be_is_read(command) &&
	    (c->retry = strndup(command, len)) == NULL) {
		be_cmd_free(b, c);
		be_fail_later(b, done, arg, "out of memory");
		return;
	}
	*b->queue_tail = c;
	b->queue_tail = &c->next;
	be_send_next(b);
	be_idle_check(b);
}

/* Commands are sent one after another: IMAP allows pipelining, but a
 * command that depends on the previous one's outcome (LOGIN, SELECT) must
 * not overtake it, and one in flight keeps the untagged routing exact.
 * An IDLE ended by DONE is the exception: the server answers it before it
 * reads the next command, whose untagged responses all come after that
 * answer, so the next goes at once, in the same write. */
static void
be_send_next(struct backend *b)
{
	struct be_cmd	*c = b->queue;

	if (c != NULL && c->idle == 3 && c->next != NULL)
		c = c->next;
	if (c == NULL || c->sent || b->bev == NULL || b->holding ||
	    (b->state != BE_READY && b->state != BE_LOGIN &&
	    b->state != BE_GREETING))
		return;
	c->sent = 1;
	if (c->upload < 0)
		c->upload = -c->upload;
	be_send_segment(b, c, c->tag);
	be_timer_arm(b, b->cf->command_timeout_ms);
}

/*
 * The next piece of a command, up to the next wait for "+", after the tag
 * if this is the first.  Each evbuffer_add() to a TLS bufferevent becomes
 * a TLS record of its own: a short piece goes out as one.
 */
#define BE_LINE_MAX	1024

static void
be_send_segment(struct backend *b, struct be_cmd *c, const char *tag)
{
	struct evbuffer	*out = bufferevent_get_output(b->bev);
	size_t		 n = c->nextseg < c->nseg ? c->seglen[c->nextseg++] :
			    evbuffer_get_length(c->text);
	char		 line[BE_LINE_MAX];
	int		 k = 0;

	if (tag != NULL)
		k = snprintf(line, sizeof(line), "%s ", tag);
	if (n + k + 2 <= sizeof(line)) {
		evbuffer_remove(c->text, line + k, n);
		memcpy(line + k + n, "\r\n", 2);
		evbuffer_add(out, line, k + n + 2);
		OPENSSL_cleanse(line, k + n);	/* LOGIN's literals */
	} else {
		evbuffer_add(out, line, k);
		evbuffer_remove_buffer(c->text, out, n);
		evbuffer_add(out, "\r\n", 2);
	}
	if (c->upload == 2)
		be_up_flow(b, c);	/* LITERAL+: the bytes follow at once */
}

/* Whether the command in flight still has pieces waiting for "+". */
static int
be_has_segment(const struct backend *b)
{
	const struct be_cmd	*c = b->queue;

	return c != NULL && c->sent && evbuffer_get_length(c->text) > 0;
}

/*
 * Responses.
 */

static void
be_caps_set(struct backend *b, const struct imap_arg *args, size_t n)
{
	const char	*atom;
	size_t		 i;

	be_caps_clear(b);
	if ((b->caps = calloc(n + 1, sizeof(*b->caps))) == NULL)
		return;
	for (i = 0; i < n; i++)
		if (imap_arg_get_atom(&args[i], &atom) &&
		    (b->caps[b->ncaps] = strdup(atom)) != NULL)
			b->ncaps++;
}

static void
be_untagged(struct backend *b, const struct imap_response *r)
{
	struct be_cmd	*c = b->queue;

	if (imap_response_is(r, "CAPABILITY"))
		be_caps_set(b, r->args, r->nargs);
	else if (r->code != NULL && strcasecmp(r->code, "CAPABILITY") == 0)
		be_caps_set(b, r->code_args, r->ncode_args);
	if (r->status == IMAP_STATUS_BYE) {
		be_fail(b, "server said BYE: %s", r->text ? r->text : "");
		return;
	}
	if (c != NULL && c->sent && c->data != NULL)
		c->data(b, r, c->arg);
}

/*
 * The backoff a throttling answer asks for, in ms; 0 if r is something
 * else.  "Request is throttled. Suggested Backoff Time: 1234 milliseconds"
 */
static unsigned int
be_throttled(const char *text)
{
	const char		*p;
	unsigned long		 ms;
	char			*end;

	if (text == NULL || strcasestr(text, "throttled") == NULL)
		return 0;
	if ((p = strcasestr(text, "Backoff Time:")) == NULL)
		return BE_BACKOFF_DEFAULT_MS;
	p += strlen("Backoff Time:");
	ms = strtoul(p, &end, 10);
	if (end == p || ms == 0)
		return BE_BACKOFF_DEFAULT_MS;
	return ms > BE_BACKOFF_MAX_MS ? BE_BACKOFF_MAX_MS : (unsigned int)ms;
}

static void
be_hold_over(evutil_socket_t fd, short what, void *arg)
{
	struct backend	*b = arg;

	b->holding = 0;
	be_ref(b);
	be_send_next(b);
	be_unref(b);
}

/* Nothing more goes to the server for ms. */
static void
be_hold(struct backend *b, unsigned int ms)
{
	struct timeval	 tv = { ms / 1000, (ms % 1000) * 1000 };

	log_sess(LOG_WARNING, b->sid, "event=backend-throttled backend=%s "
	    "user=%s backoff_ms=%u", backend_name(b), b->user ? b->user : "-",
	    ms);
	b->srv->stats.throttled[b->side]++;
	b->backoff_ms = ms;
	if (b->hold == NULL &&
	    (b->hold = evtimer_new(b->srv->base, be_hold_over, b)) == NULL)
		return;
	b->holding = 1;
	evtimer_add(b->hold, &tv);
}

unsigned int
backend_backoff_ms(const struct backend *b)
{
	return b->backoff_ms;
}

static void
be_tagged(struct backend *b, const struct imap_response *r)
{
	struct be_cmd		*c = b->queue;
	struct backend_result	 res;
	unsigned int		 ms = 0;

	if (c == NULL || !c->sent || strcmp(r->tag, c->tag) != 0) {
		be_fail(b, "unexpected tagged response %s", r->tag);
		return;
	}
	if (r->code != NULL && strcasecmp(r->code, "CAPABILITY") == 0)
		be_caps_set(b, r->code_args, r->ncode_args);
	if (r->status != IMAP_STATUS_OK && (ms = be_throttled(r->text)) > 0) {
		be_hold(b, ms);
		if (c->retry != NULL && c->retries < BE_RETRIES &&
		    c->upload == 0 && b->sink == NULL) {
			/* Sent again once the hold is over. */
			c->retries++;
			c->sent = 0;
			evbuffer_drain(c->text, evbuffer_get_length(c->text));
			evbuffer_add(c->text, c->retry, strlen(c->retry));
			return;
		}
	}
	b->queue = c->next;
	if (b->queue == NULL)
		b->queue_tail = &b->queue;
	memset(&res, 0, sizeof(res));
	res.status = r->status == IMAP_STATUS_OK ? BACKEND_OK :
	    r->status == IMAP_STATUS_NO ? BACKEND_NO : BACKEND_BAD;
	res.code = r->code;
	res.code_args = r->code_args;
	res.ncode_args = r->ncode_args;
	res.text = r->text != NULL ? r->text : "";
	if (ms > 0) {
		res.status = BACKEND_NO;
		res.code = "UNAVAILABLE";
		res.code_args = NULL;
		res.ncode_args = 0;
		res.text = "throttled by the server";
		res.throttled = 1;
	}
	/* The upload is over: done() may start the next one (pipelined
	 * APPENDs, the next command read as this one is answered). */
	if (b->up == c)
		b->up = NULL;
	if (c->done != NULL)
		c->done(b, &res, c->arg);
	be_cmd_free(b, c);
	if (b->queue == NULL)
		be_watch_arm(b, b->watch_ms);
}

static void	 be_greeting(struct backend *, const struct imap_response *);
static void	 be_event(struct bufferevent *, short, void *);

static void
be_response(struct backend *b, const struct imap_response *r)
{
	if (b->state == BE_GREETING && b->queue == NULL) {
		be_greeting(b, r);
		return;
	}
	switch (r->type) {
	case IMAP_RESPONSE_UNTAGGED:
		be_untagged(b, r);
		break;
	case IMAP_RESPONSE_TAGGED:
		be_tagged(b, r);
		break;
	case IMAP_RESPONSE_CONTINUATION:
		if (b->queue != NULL && b->queue->sent && b->queue->idle == 1) {
			b->queue->idle = 2;
			if (b->timer != NULL)
				evtimer_del(b->timer);	/* idling is no wait */
			if (b->queue->watch)
				be_watch_arm(b, b->cf->poll_interval_ms);
			be_idle_check(b);
		} else if (b->queue != NULL && b->queue->sent &&
		    b->queue->upload == 1) {
			b->queue->upload = 2;
			be_up_flow(b, b->queue);
		} else if (be_has_segment(b))
			be_send_segment(b, b->queue, NULL);
		else if (b->state == BE_LOGIN && b->queue != NULL &&
		    b->queue->sent)
			be_auth_cont(b);
		else
			be_fail(b, "unexpected continuation request");
		break;
	}
}

static void
be_read_input(struct backend *b, struct evbuffer *in)
{
	const struct imap_response *r;

	while (!b->dead && b->bev != NULL && !b->paused) {
		if (b->sink != NULL) {
			if (be_stream(b, in) == 0)
				return;
			continue;
		}
		be_stream_mode(b);
		switch (imap_parser_read_response(b->parser, in, &r)) {
		case IMAP_PARSE_MORE:
			return;
		case IMAP_PARSE_LITERAL:
			if (be_literal_start(b) == -1)
				return;
			break;
		case IMAP_PARSE_ERROR:
			be_fail(b, "bad response from server: %s",
			    imap_parser_error(b->parser));
			return;
		case IMAP_PARSE_DONE:
			be_response(b, r);
			if (!b->dead)
				imap_parser_reset(b->parser);
			if (!b->dead)
				be_send_next(b);
			break;
		default:
			be_fail(b, "unexpected response from server");
			return;
		}
	}
}

static void
be_read(struct bufferevent *bev, void *arg)
{
	struct backend		*b = arg;
	char			 err[256];
	ssize_t			 n;

	/* Then what OpenSSL read ahead (conn_read_ahead()). */
	be_ref(b);
	do {
		be_read_input(b, bufferevent_get_input(bev));
		if (b->dead || b->bev == NULL || b->paused)
			break;
		if ((n = conn_tls_drain(b->bev, err, sizeof(err))) < 0)
			be_fail(b, "%s", err);
	} while (n > 0);
	be_unref(b);
}

/* Streaming is on exactly while the oldest command in flight wants it. */
static void
be_stream_mode(struct backend *b)
{
	const struct be_cmd	*c = b->queue;

	imap_parser_set_stream(b->parser, c != NULL && c->sent &&
	    c->literal != NULL, BE_STREAM_THRESHOLD);
}

static int
be_literal_start(struct backend *b)
{
	struct be_cmd		*c = b->queue;
	const struct imap_arg	*args;
	size_t			 nargs;
	unsigned int		 depth;

	if (c == NULL || c->literal == NULL) {
		be_fail(b, "unexpected literal from server");
		return -1;
	}
	imap_parser_partial(b->parser, &args, &nargs, &depth);
	b->sink = c->literal(b, args, nargs, depth,
	    imap_parser_literal_size(b->parser), c->arg);
	if (b->sink == NULL) {
		be_fail(b, "cannot take a literal");
		return -1;
	}
	return 0;
}

/* Staged literal bytes to the sink, as one contiguous piece. */
static void
be_sink_flush(struct backend *b)
{
	size_t	 n = evbuffer_get_length(b->stage);

	if (n == 0)
		return;
	if (b->sink == NULL) {
		evbuffer_drain(b->stage, n);
		return;
	}
	evbuffer_pullup(b->stage, -1);
	evbuffer_remove_buffer(b->stage, b->sink, n);
}

/*
 * Moves literal bytes from the server to the sink (through the stage), as
 * far as they have arrived.  1 when the literal is complete, 0 when more
 * must come or the sink is full (reading pauses until backend_resume()).
 */
static int
be_stream(struct backend *b, struct evbuffer *in)
{
	uint64_t	 left = imap_parser_literal_left(b->parser);
	size_t		 n = evbuffer_get_length(in);

	if (n > left)
		n = (size_t)left;
	if (n > 0) {
		evbuffer_remove_buffer(in, b->stage, n);
		imap_parser_literal_consumed(b->parser, n);
	}
	if (imap_parser_literal_left(b->parser) == 0) {
		be_sink_flush(b);
		b->sink = NULL;
		return 1;
	}
	if (evbuffer_get_length(b->stage) >= BE_SINK_PIECE)
		be_sink_flush(b);
	if (evbuffer_get_length(b->sink) > BE_SINK_HIGH) {
		b->paused = 1;
		bufferevent_disable(b->bev, EV_READ);
		be_timer_arm(b, b->cf->command_timeout_ms);
	}
	return 0;
}

void
backend_resume(struct backend *b)
{
	if (b == NULL || !b->paused || b->bev == NULL)
		return;
	b->paused = 0;
	bufferevent_enable(b->bev, EV_READ);
	be_read(b->bev, b);
}

int
backend_paused(const struct backend *b)
{
	return b != NULL && b->paused;
}

/*
 * Opening.
 */

static void
be_check_done(struct backend *b, const struct backend_result *res, void *arg)
{
	if (res->status != BACKEND_OK) {
		/* Office 365: "User is authenticated but not connected". */
		be_fail(b, "first command after login failed: %s", res->text);
		return;
	}
	be_enter(b, BE_READY);
	log_sess(LOG_INFO, b->sid, "event=backend-ready backend=%s user=%s",
	    backend_name(b), b->user);
	be_opened(b, res);
}

static void
be_login_done(struct backend *b, const struct backend_result *res,
    void *arg)
{
	struct backend_result	 r = *res;

	be_secret_clear(b);
	if (res->status == BACKEND_FAILED)
		return;			/* be_fail told the opener */
	if (res->throttled) {
		be_fail(b, "login throttled");
		return;
	}
	if (res->status != BACKEND_OK) {
		log_sess(LOG_INFO, b->sid, "event=backend-login-refused "
		    "backend=%s user=%s code=%s reason=\"%s\"",
		    backend_name(b), b->user, res->code ? res->code : "-",
		    res->text);
		r.status = BACKEND_NO;
		r.auth_failed = 1;
		be_enter(b, BE_CLOSED);
		be_close(b);
		be_opened(b, &r);
		return;
	}
	backend_cmd(b, b->ncaps > 0 ? "NOOP" : "CAPABILITY", NULL,
	    be_check_done, NULL);
}

/* A challenge during AUTHENTICATE XOAUTH2 carries the server's error in
 * JSON; the answer is an empty line, then the tagged NO. */
static void
be_auth_cont(struct backend *b)
{
	evbuffer_add(bufferevent_get_output(b->bev), "\r\n", 2);
}

/* Appends base64 of raw to buf (SASL initial responses). */
static int
be_base64(struct evbuffer *buf, const void *raw, size_t len)
{
	size_t		 cap = 4 * ((len + 2) / 3) + 1;
	unsigned char	*out;
	int		 n;

	if ((out = malloc(cap)) == NULL)
		return -1;
	n = EVP_EncodeBlock(out, raw, (int)len);
	evbuffer_add(buf, out, n);
	OPENSSL_cleanse(out, cap);
	free(out);
	return 0;
}

/*
 * LOGIN user password, for servers that offer no AUTH=PLAIN.  Credentials
 * always travel as literals (no quoting to get wrong); without LITERAL+
 * the command waits for "+" after each "{n}".
 */
static void
be_send_login(struct backend *b)
{
	struct evbuffer	*buf = evbuffer_new();
	size_t		 seg[BE_MAX_SEGMENTS], mark = 0, len;
	int		 nseg = 0, nonsync = backend_has_cap(b, "LITERAL+");

	if (buf == NULL) {
		be_fail(b, "out of memory");
		return;
	}
	evbuffer_add_printf(buf, "LOGIN {%zu%s}", strlen(b->user),
	    nonsync ? "+" : "");
	if (nonsync)
		evbuffer_add(buf, "\r\n", 2);
	else {
		seg[nseg++] = evbuffer_get_length(buf) - mark;
		mark = evbuffer_get_length(buf);
	}
	evbuffer_add_printf(buf, "%s {%zu%s}", b->user, strlen(b->password),
	    nonsync ? "+" : "");
	if (nonsync)
		evbuffer_add(buf, "\r\n", 2);
	else
		seg[nseg++] = evbuffer_get_length(buf) - mark;
	evbuffer_add(buf, b->password, strlen(b->password));
	len = evbuffer_get_length(buf);
	be_cmd_segments(b, (char *)evbuffer_pullup(buf, len), len, seg, nseg,
	    NULL, NULL, be_login_done, NULL);
	OPENSSL_cleanse(evbuffer_pullup(buf, len), len);
	evbuffer_free(buf);
}

static void
be_send_plain(struct backend *b)
{
	struct evbuffer	*buf = evbuffer_new();
	size_t		 ulen = strlen(b->user), plen = strlen(b->password);
	char		*raw, *cmd;

	/* AUTHENTICATE PLAIN with SASL-IR: "\0user\0password", base64. */
	raw = malloc(ulen + plen + 2);
	cmd = NULL;
	if (buf != NULL && raw != NULL) {
		raw[0] = '\0';
		memcpy(raw + 1, b->user, ulen);
		raw[ulen + 1] = '\0';
		memcpy(raw + ulen + 2, b->password, plen);
		/* Without SASL-IR the response waits for the "+". */
		evbuffer_add(buf, "AUTHENTICATE PLAIN", 18);
		if (backend_has_cap(b, "SASL-IR"))
			evbuffer_add(buf, " ", 1);
		be_base64(buf, raw, ulen + plen + 2);
		cmd = (char *)evbuffer_pullup(buf, -1);
		OPENSSL_cleanse(raw, ulen + plen + 2);
	}
	if (cmd == NULL)
		be_fail(b, "out of memory");
	else if (backend_has_cap(b, "SASL-IR"))
		be_cmd_segments(b, cmd, evbuffer_get_length(buf), NULL, 0, NULL,
		    NULL, be_login_done, NULL);
	else {
		size_t	 seg = 18;	/* "AUTHENTICATE PLAIN", then "+" */

		be_cmd_segments(b, cmd, evbuffer_get_length(buf), &seg, 1, NULL,
		    NULL, be_login_done, NULL);
	}
	free(raw);
	if (buf != NULL) {
		size_t	 len = evbuffer_get_length(buf);

		if (len > 0)
			OPENSSL_cleanse(evbuffer_pullup(buf, len), len);
		evbuffer_free(buf);
	}
}

static void
be_token(const char *token, const char *error, void *arg)
{
	struct backend	*b = arg;
	struct evbuffer	*buf, *raw;
	size_t		 len;

	b->token_req = 0;
	if (token == NULL) {
		be_fail(b, "cannot get an access token: %s", error);
		return;
	}
	buf = evbuffer_new();
	raw = evbuffer_new();
	evbuffer_add_printf(raw, "user=%s\001auth=Bearer %s\001\001", b->user,
	    token);
	evbuffer_add(buf, "AUTHENTICATE XOAUTH2 ", 21);
	len = evbuffer_get_length(raw);
	be_base64(buf, evbuffer_pullup(raw, len), len);
	evbuffer_add(buf, "", 1);
	backend_cmd(b, (char *)evbuffer_pullup(buf, -1), NULL, be_login_done,
	    NULL);
	OPENSSL_cleanse(evbuffer_pullup(raw, len), len);
	len = evbuffer_get_length(buf);
	OPENSSL_cleanse(evbuffer_pullup(buf, len), len);
	evbuffer_free(raw);
	evbuffer_free(buf);
}

static void
be_login(struct backend *b)
{
	be_enter(b, BE_LOGIN);
	if (b->conf->auth == BACKEND_AUTH_XOAUTH2) {
		b->token_req = token_get(b->srv->tokens, b->user, be_token, b);
		return;
	}
	if (backend_has_cap(b, "AUTH=PLAIN"))
		be_send_plain(b);
	else if (!backend_has_cap(b, "LOGINDISABLED"))
		be_send_login(b);
	else
		be_fail(b, "server offers neither AUTH=PLAIN nor LOGIN");
}

static void
be_capa_done(struct backend *b, const struct backend_result *res, void *arg)
{
	if (res->status == BACKEND_FAILED)
		return;
	be_login(b);
}

static void
be_starttls_done(struct backend *b, const struct backend_result *res,
    void *arg)
{
	struct bufferevent	*tls;
	char			 err[256];

	if (res->status == BACKEND_FAILED)
		return;
	if (res->status != BACKEND_OK) {
		be_fail(b, "STARTTLS refused: %s", res->text);
		return;
	}
	tls = conn_starttls(b->bev, b->srv->backend_tls[b->side],
	    b->conf->imap.host, err, sizeof(err));
	if (tls == NULL) {
		be_fail(b, "%s", err);
		return;
	}
	b->bev = tls;	/* the filter owns the plain bufferevent now */
	be_caps_clear(b);
	be_enter(b, BE_HANDSHAKE);
	bufferevent_setcb(b->bev, be_read, be_write, be_event, b);
	conn_set_io(b->bev);
	bufferevent_enable(b->bev, EV_READ);
}

static void
be_greeting(struct backend *b, const struct imap_response *r)
{
	if (r->type != IMAP_RESPONSE_UNTAGGED ||
	    (r->status != IMAP_STATUS_OK && r->status != IMAP_STATUS_PREAUTH)) {
		be_fail(b, "bad greeting: %s", r->text ? r->text : "");
		return;
	}
	if (r->status == IMAP_STATUS_PREAUTH) {
		be_fail(b, "server greeted with PREAUTH, refusing");
		return;
	}
	if (r->code != NULL && strcasecmp(r->code, "CAPABILITY") == 0)
		be_caps_set(b, r->code_args, r->ncode_args);
	if (b->conf->imap.tls == TLSMODE_STARTTLS) {
		backend_cmd(b, "STARTTLS", NULL, be_starttls_done, NULL);
		return;
	}
	if (b->ncaps == 0)
		backend_cmd(b, "CAPABILITY", NULL, be_capa_done, NULL);
	else
		be_login(b);
}

static void
be_event(struct bufferevent *bev, short what, void *arg)
{
	struct backend	*b = arg;
	char		 err[256];

	if (what & BEV_EVENT_CONNECTED) {
		if (b->state == BE_HANDSHAKE) {
			/* Capabilities seen before TLS are not to be trusted. */
			be_enter(b, BE_LOGIN);
			backend_cmd(b, "CAPABILITY", NULL, be_capa_done, NULL);
			return;
		}
		be_enter(b, BE_GREETING);
		bufferevent_enable(bev, EV_READ);
		/* The greeting may have come with the handshake's last
		 * record (TLS 1.2) and been read ahead: no readiness event
		 * would announce it. */
		be_read(bev, b);
		return;
	}
	be_fail(b, "%s", conn_error(bev, what, err, sizeof(err)));
}

void
backend_open(struct backend *b, const char *login, const char *password,
    backend_done_cb *cb, void *arg)
{
	const struct endpoint_conf *ep = &b->conf->imap;
	char			 err[256];

	b->open_cb = cb;
	b->open_arg = arg;
	if ((b->user = config_expand_username(b->conf->username, login)) ==
	    NULL || (password != NULL &&
	    (b->password = strdup(password)) == NULL)) {
		be_fail(b, "out of memory");
		return;
	}
	b->timer = evtimer_new(b->srv->base, be_timeout, b);
	be_enter(b, BE_CONNECTING);
	b->bev = conn_connect(b->srv->base, b->srv->dns,
	    b->srv->backend_tls[b->side], ep->host, ep->port,
	    ep->tls == TLSMODE_TLS, err, sizeof(err));
	if (b->bev == NULL) {
		be_fail(b, "%s", err);
		return;
	}
	conn_read_ahead(b->bev);		/* be_read() drains */
	bufferevent_setcb(b->bev, be_read, be_write, be_event, b);
	conn_set_io(b->bev);
	bufferevent_enable(b->bev, EV_READ);
	be_timer_arm(b, b->cf->connect_timeout_ms);
}
