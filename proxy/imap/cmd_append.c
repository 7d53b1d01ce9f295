/*
 * APPEND (RFC 9051 §6.3.12) with APPENDUID (RFC 4315): every message the
 * user writes lands on the new server (DESIGN §7).
 *
 * A message of SESS_APPEND_STREAM_MIN bytes and more never sits whole in
 * memory: the parser hands its literal over (session_parse.c) before the
 * command is complete, and the bytes go from the client's connection to
 * the new server's as they arrive; reading from the client stops while
 * more than BACKEND_UPLOAD_HIGH wait for the server.  Smaller messages
 * come with the command and take the same path in one piece.
 *
 * The first bytes are also copied aside until the header ends: the
 * message's key is read there, so that the virtual message is recorded
 * the moment the server says OK, without a sync.
 *
 * Sent-copy absorption: a message to the Sent folder whose Message-ID the
 * submission service relayed a moment ago is the copy the new server
 * files itself (Office 365 does).  It is spooled to a file instead, and
 * imapmerge waits for the server's own copy; the client gets that one's
 * vuid, or, if none shows up in time, the spooled message is uploaded
 * after all.  Either way there is exactly one copy.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "protocol/imap_parser.h"
#include "protocol/imap_write.h"
#include "protocol/msgkey.h"
#include "protocol/mutf7.h"
#include "proxy/core/log.h"
#include "proxy/core/server.h"
#include "proxy/net/backend.h"
#include "proxy/merge/folders.h"
#include "proxy/merge/mailbox.h"
#include "proxy/merge/mailbox_impl.h"
#include "proxy/merge/state.h"
#include "proxy/merge/view.h"
#include "proxy/imap/session_impl.h"

#define HDR_MAX			(64 * 1024)	/* key fields beyond: no key */
#define HOLD_MAX		BACKEND_UPLOAD_HIGH
#define SPOOL_CHUNK		(256 * 1024)
#define ABSORB_POLL_MS		1000

enum ap_mode {
	AP_HOLD,		/* deciding, or creating the folder: keep */
	AP_UPLOAD,		/* to the new server */
	AP_SPOOL,		/* absorption candidate: to a file */
	AP_DISCARD,		/* refused already: swallow the rest */
};

struct append_req {
	struct imap_session	*s;
	char			*path;		/* the unified folder */
	char			*wire;		/* its new part, as sent */
	bool			 create;	/* the new part must be made */
	bool			 created;
	bool			 absorbable;	/* Sent, and new files copies */
	uint8_t			 flags;
	char			*keywords;	/* "$a $b" or NULL */
	char			 date[40];	/* as given, "" if none */
	uint32_t		 idate;
	uint64_t		 size, got;
	enum ap_mode		 mode;
	struct evbuffer		*hold;
	struct evbuffer		*hdr;		/* the header block, a copy */
	bool			 hdr_done;
	struct msgkey		 key;
	int			 spool;		/* -1: none */
	uint64_t		 spool_sent;	/* uploaded from the spool */
	bool			 literal_done;	/* every byte came */
	bool			 command_done;	/* the command line ended */
	bool			 upload_done;
	bool			 stalled;	/* client reading stopped */
	struct backend_result	 res;		/* the upload's answer */
	char			 res_text[200];
	uint32_t		 uidvalidity, uid;	/* APPENDUID */
	char			 fail[200];	/* tagged answer decided */
	struct event		*timer;
	time_t			 absorb_until;
};

static void	 ap_decide(struct append_req *);
static void	 ap_upload(struct append_req *);
static void	 ap_finish(struct append_req *);
static void	 ap_spool_pump(struct append_req *);

void
sess_append_free(struct imap_session *s)
{
	struct append_req	*q = s->append;

	if (q == NULL)
		return;
	s->append = NULL;
	if (q->mode == AP_UPLOAD && !q->upload_done)
		backend_upload_abort(s->mc.be[BACKEND_NEW]);
	if (q->timer != NULL)
		event_free(q->timer);
	if (q->spool != -1)
		close(q->spool);
	if (q->hold != NULL)
		evbuffer_free(q->hold);
	if (q->hdr != NULL)
		evbuffer_free(q->hdr);
	free(q->keywords);
	free(q->path);
	free(q->wire);
	free(q);
}

/* Ends APPEND with its tagged answer (the command line has ended). */
static void
ap_answer(struct append_req *q, const char *answer)
{
	struct imap_session	*s = q->s;
	char			 text[256];

	snprintf(text, sizeof(text), "%s", answer);
	sess_append_free(s);
	sess_done(s, "%s", text);
}

/* Refuses the message; the rest of its bytes are swallowed. */
static void
ap_refuse(struct append_req *q, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
ap_refuse(struct append_req *q, const char *fmt, ...)
{
	va_list	 ap;

	if (q->fail[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(q->fail, sizeof(q->fail), fmt, ap);
		va_end(ap);
	}
	if (q->mode == AP_UPLOAD && !q->upload_done && !q->literal_done)
		backend_upload_abort(q->s->mc.be[BACKEND_NEW]);
	q->mode = AP_DISCARD;
	if (q->hold != NULL)
		evbuffer_drain(q->hold, evbuffer_get_length(q->hold));
	if (q->stalled && q->s->bev != NULL) {
		/* Reading waited for the server, which is out of the game
		 * now: the rest of the message is read and thrown away, from
		 * the event loop (the caller still holds q). */
		q->stalled = false;
		bufferevent_enable(q->s->bev, EV_READ);
		bufferevent_trigger(q->s->bev, EV_READ,
		    BEV_TRIG_DEFER_CALLBACKS | BEV_TRIG_IGNORE_WATERMARKS);
	}
	if (q->command_done)
		ap_answer(q, q->fail);
}

/*
 * Arguments: mailbox [flag-list] [date-time], the message apart.
 */
static int
ap_flags(struct append_req *q, const struct imap_arg *list, size_t n)
{
	struct evbuffer	*kw = evbuffer_new();
	const char	*atom;
	uint8_t		 bit;
	size_t		 i;
	int		 rc = -1;

	if (kw == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if (!imap_arg_get_atom(&list[i], &atom))
			goto out;
		if ((bit = view_flag_bit(atom)) != 0)
			q->flags |= bit;
		else if (atom[0] == '\\')	/* \Recent: not the client's */
			goto out;
		else if (strlen(atom) + evbuffer_get_length(kw) < 480)
			evbuffer_add_printf(kw, "%s%s",
			    evbuffer_get_length(kw) ? " " : "", atom);
	}
	if (evbuffer_get_length(kw) > 0) {
		evbuffer_add(kw, "", 1);
		if ((q->keywords = strdup((char *)evbuffer_pullup(kw, -1))) ==
		    NULL)
			goto out;
	}
	rc = 0;
 out:
	evbuffer_free(kw);
	return rc;
}

static const char *
ap_parse(struct append_req *q, const struct imap_arg *args, size_t nargs)
{
	const struct imap_arg	*list;
	const char		*date, *why;
	size_t			 n, i = 1;

	if (nargs < 1)
		return "BAD APPEND needs a mailbox";
	if ((q->path = sess_mailbox_arg(&args[0], &why)) == NULL)
		return why;
	if (i < nargs && imap_arg_get_list(&args[i], &list, &n)) {
		if (ap_flags(q, list, n) == -1)
			return "BAD Invalid flag list";
		i++;
	}
	if (i < nargs && imap_arg_get_string(&args[i], &date)) {
		if ((q->idate = mbox_parse_idate(date)) == 0 ||
		    strlen(date) >= sizeof(q->date))
			return "BAD Invalid date-time";
		snprintf(q->date, sizeof(q->date), "%s", date);
		i++;
	}
	if (i != nargs)
		return "BAD APPEND takes mailbox, flags, date and one message";
	if (q->idate == 0)
		q->idate = (uint32_t)time(NULL);
	return NULL;
}

/* Where the message goes; NULL, or the tagged answer that refuses it. */
static const char *
ap_target(struct append_req *q)
{
	struct imap_session	*s = q->s;
	const struct config	*conf = s->conf;
	const struct ufolder	*f;
	const struct backend	*b = s->mc.be[BACKEND_NEW];
	const char		*name, *err;

	if ((f = folders_find(s->mc.folders, q->path)) == NULL ||
	    f->placeholder)
		return "NO [TRYCREATE] No such mailbox";
	if (b == NULL || !backend_ready(b))
		return "NO [UNAVAILABLE] The new server is not available";
	if (q->size > conf->max_message_size)
		return "NO [TOOBIG] Message too large";
	if (q->size == 0)
		return "NO An empty message cannot be saved";
	if (f->part[BACKEND_NEW].present && !f->part[BACKEND_NEW].noselect)
		name = f->part[BACKEND_NEW].name;
	else {
		/* Only the legacy server holds its mail: the new server gets
		 * a real folder first (where it has a \Noselect parent
		 * only, that becomes one). */
		if (!folder_selectable(f))
			return "NO [CANNOT] This folder cannot hold messages";
		name = f->part[BACKEND_NEW].present ?
		    f->part[BACKEND_NEW].name : f->path; /* "/" both sides */
		q->create = true;
	}
	if ((q->wire = mutf7_encode(name, strlen(name), &err)) == NULL)
		return "NO [CANNOT] Invalid mailbox name";
	if (imap_string_kind(q->wire, strlen(q->wire), 0) == IMAP_STR_LITERAL &&
	    !backend_has_cap(b, "LITERAL+"))
		return "NO [CANNOT] This folder name cannot be sent";
	q->absorbable = f->role == ROLE_SENT &&
	    conf->backend[BACKEND_NEW].files_sent_copies;
	return NULL;
}

static struct append_req *
ap_new(struct imap_session *s, const struct imap_arg *args, size_t nargs,
    uint64_t size, const char **err)
{
	struct append_req	*q;

	*err = "NO [SERVERBUG] Out of memory";
	sess_append_free(s);
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	q->s = s;
	q->spool = -1;
	q->size = size;
	s->append = q;
	if ((q->hold = evbuffer_new()) == NULL ||
	    (q->hdr = evbuffer_new()) == NULL)
		return q;
	if ((*err = ap_parse(q, args, nargs)) == NULL)
		*err = ap_target(q);
	if (*err == NULL)
		log_sess(LOG_DEBUG, s->sid, "event=append folder=\"%s\" "
		    "size=%llu", q->path, (unsigned long long)q->size);
	return q;
}

/*
 * The bytes.
 */

/* How many more bytes the request takes now. */
static size_t
ap_room(const struct append_req *q)
{
	size_t	 held;

	switch (q->mode) {
	case AP_UPLOAD:
		held = backend_upload_queued(q->s->mc.be[BACKEND_NEW]) +
		    evbuffer_get_length(q->hold);
		return held >= BACKEND_UPLOAD_HIGH ? 0 :
		    BACKEND_UPLOAD_HIGH - held;
	case AP_HOLD:
		held = evbuffer_get_length(q->hold);
		return held >= HOLD_MAX ? 0 : HOLD_MAX - held;
	default:
		return SIZE_MAX;
	}
}

/* Keeps a copy of the header block, and reads the key once it ended. */
static void
ap_header(struct append_req *q, struct evbuffer *src, size_t n)
{
	size_t			 have = evbuffer_get_length(q->hdr), take;
	struct evbuffer_ptr	 p;
	struct evbuffer_iovec	 v;
	ev_ssize_t		 got;
	unsigned char		*h;

	take = n < HDR_MAX - have ? n : HDR_MAX - have;
	/* The new bytes are at the front of src: copy, do not take. */
	if (take > 0 && evbuffer_reserve_space(q->hdr, take, &v, 1) == 1) {
		got = evbuffer_copyout(src, v.iov_base, take);
		v.iov_len = got > 0 ? (size_t)got : 0;
		evbuffer_commit_space(q->hdr, &v, 1);
	}
	have = evbuffer_get_length(q->hdr);
	p = evbuffer_search(q->hdr, "\n\r\n", 3, NULL);
	if (p.pos == -1)
		p = evbuffer_search(q->hdr, "\n\n", 2, NULL);
	if (p.pos == -1 && have < HDR_MAX && q->got + n < q->size)
		return;
	h = evbuffer_pullup(q->hdr, -1);
	msgkey_parse((const char *)h, p.pos != -1 ? (size_t)p.pos + 1 : have,
	    &q->key);
	q->hdr_done = true;
	evbuffer_free(q->hdr);
	q->hdr = NULL;
}

/* n bytes of the message, from src. */
static void
ap_feed(struct append_req *q, struct evbuffer *src, size_t n)
{
	struct backend	*b = q->s->mc.be[BACKEND_NEW];

	if (q->mode != AP_DISCARD && !q->hdr_done)
		ap_header(q, src, n);
	q->got += n;
	switch (q->mode) {
	case AP_DISCARD:
		evbuffer_drain(src, n);
		break;
	case AP_UPLOAD:
		if (backend_upload_add(b, src, n) == -1)
			evbuffer_drain(src, n);	/* ap_uploaded refuses */
		break;
	case AP_SPOOL:
		evbuffer_remove_buffer(src, q->hold, n);
		if (evbuffer_get_length(q->hold) >= SPOOL_CHUNK ||
		    q->got == q->size)
			while (evbuffer_get_length(q->hold) > 0)
				if (evbuffer_write(q->hold, q->spool) <= 0) {
					ap_refuse(q, "NO [SERVERBUG] Cannot "
					    "keep the message: %s",
					    strerror(errno));
					break;
				}
		break;
	case AP_HOLD:
		evbuffer_remove_buffer(src, q->hold, n);
		break;
	}
	if (q->got == q->size)
		q->literal_done = true;
	if (q->mode == AP_HOLD && !q->create && q->hdr_done)
		ap_decide(q);
}

/* The client may send on: the new server took what it had. */
static void
ap_drained(struct backend *b, void *arg)
{
	struct append_req	*q = arg;
	struct imap_session	*s = q->s;

	if (q->spool != -1 && q->mode == AP_UPLOAD) {
		ap_spool_pump(q);
		return;
	}
	if (!q->stalled || ap_room(q) == 0)
		return;
	q->stalled = false;
	sess_resume_input(s);
}

/*
 * Absorb, or upload.
 */
static int
ap_relayed(struct append_req *q)
{
	struct imap_session	*s = q->s;
	int64_t			 when;
	int64_t			 window = s->conf->sent_copy_window_ms / 1000;

	if (!q->absorbable || q->key.msgid[0] == '\0' || s->store == NULL ||
	    state_sent_at(s->store, q->key.msgid, &when) != 1)
		return 0;
	return (int64_t)time(NULL) - when <= window;
}

static int
ap_spool_open(struct append_req *q)
{
	const char	*dir = q->s->conf->state_dir;
	char		 tmpl[1024];

	/* Not linked anywhere: gone with the descriptor, whatever happens. */
	if ((q->spool = open(dir, O_TMPFILE | O_RDWR, 0600)) != -1)
		return 0;
	snprintf(tmpl, sizeof(tmpl), "%s/.append-XXXXXX", dir);
	if ((q->spool = mkstemp(tmpl)) == -1)
		return -1;
	unlink(tmpl);
	return 0;
}

/* The header is in (or the folder exists now): choose the path. */
static void
ap_decide(struct append_req *q)
{
	if (ap_relayed(q) && ap_spool_open(q) == 0) {
		log_sess(LOG_INFO, q->s->sid, "event=sent-copy-wait user=%s "
		    "folder=\"%s\"", q->s->user, q->path);
		q->mode = AP_SPOOL;
		/* Flush what came so far. */
		while (evbuffer_get_length(q->hold) > 0)
			if (evbuffer_write(q->hold, q->spool) <= 0) {
				ap_refuse(q, "NO [SERVERBUG] Cannot keep the "
				    "message");
				return;
			}
		if (q->command_done)
			ap_finish(q);
		return;
	}
	ap_upload(q);
}

static void	 ap_uploaded(struct backend *, const struct backend_result *,
		    void *);

static void
ap_created(struct backend *b, const struct backend_result *res, void *arg)
{
	struct append_req	*q = arg;

	if (!sess_new_made(res)) {
		ap_refuse(q, "NO [TRYCREATE] The folder cannot be created on "
		    "the new server");
		return;
	}
	log_sess(LOG_INFO, q->s->sid, "event=folder-created user=%s "
	    "folder=\"%s\" backend=new reason=append", q->s->user, q->path);
	q->create = false;
	q->created = true;
	if (q->mode == AP_HOLD && (q->hdr_done || !q->absorbable))
		ap_decide(q);
}

/* Starts the APPEND on the new server; held bytes go first. */
static void
ap_upload(struct append_req *q)
{
	struct imap_session *s = q->s;
	struct backend	*b = s->mc.be[BACKEND_NEW];
	char		*cmd;

	if (q->create) {
		sess_new_create(b, q->wire, ap_created, q);
		return;
	}
	if ((cmd = sess_new_append(b, q->wire, q->flags, q->keywords,
	    q->date)) == NULL) {
		ap_refuse(q, "NO [SERVERBUG] Out of memory");
		return;
	}
	q->mode = AP_UPLOAD;
	backend_cmd_upload(b, cmd, q->size, NULL, ap_drained, ap_uploaded, q);
	free(cmd);
	if (s->append != q || q->mode != AP_UPLOAD)
		return;			/* refused at once */
	if (q->spool != -1) {
		q->spool_sent = 0;
		if (lseek(q->spool, 0, SEEK_SET) == -1) {
			ap_refuse(q, "NO [SERVERBUG] Cannot read the message");
			return;
		}
		ap_spool_pump(q);
		return;
	}
	if (evbuffer_get_length(q->hold) > 0 &&
	    backend_upload_add(b, q->hold, evbuffer_get_length(q->hold)) == -1)
		evbuffer_drain(q->hold, evbuffer_get_length(q->hold));
	if (q->stalled)
		ap_drained(b, q);
}

/* Uploads the spooled message, a chunk at a time as the server drains. */
static void
ap_spool_pump(struct append_req *q)
{
	struct backend	*b = q->s->mc.be[BACKEND_NEW];
	int		 n;

	while (q->spool_sent < q->size &&
	    backend_upload_queued(b) < BACKEND_UPLOAD_HIGH) {
		size_t	 want = q->size - q->spool_sent < SPOOL_CHUNK ?
			    q->size - q->spool_sent : SPOOL_CHUNK;

		if ((n = evbuffer_read(q->hold, q->spool, (int)want)) <= 0) {
			ap_refuse(q, "NO [SERVERBUG] Cannot read the message");
			return;
		}
		q->spool_sent += n;
		if (backend_upload_add(b, q->hold, n) == -1) {
			evbuffer_drain(q->hold, evbuffer_get_length(q->hold));
			return;
		}
	}
}

static void
ap_uploaded(struct backend *b, const struct backend_result *res, void *arg)
{
	struct append_req	*q = arg;

	q->upload_done = true;
	q->res = *res;
	snprintf(q->res_text, sizeof(q->res_text), "%s", res->text ?
	    res->text : "");
	q->res.text = q->res_text;
	q->res.code = NULL;
	q->res.code_args = NULL;
	q->res.ncode_args = 0;
	if (res->status == BACKEND_OK && res->code != NULL &&
	    strcasecmp(res->code, "APPENDUID") == 0 && res->ncode_args == 2) {
		imap_arg_get_number(&res->code_args[0], &q->uidvalidity);
		imap_arg_get_number(&res->code_args[1], &q->uid);
	}
	if (res->status == BACKEND_OK && q->spool == -1 && !q->literal_done) {
		/* An OK before the last byte: the server is confused. */
		ap_refuse(q, "NO [SERVERBUG] The new server answered early");
		return;
	}
	if (res->status == BACKEND_FAILED)
		ap_refuse(q, "NO [UNAVAILABLE] The new server is not "
		    "available");
	else if (res->status != BACKEND_OK) {
		log_sess(LOG_INFO, q->s->sid, "event=append-refused user=%s "
		    "folder=\"%s\" reason=\"%s\"", q->s->user, q->path,
		    q->res_text);
		ap_refuse(q, "NO %s%s%s The new server refused the message",
		    res->code ? "[" : "", res->code ? res->code : "",
		    res->code ? "]" : "");
	} else if (q->command_done)
		ap_finish(q);
}

/*
 * The answer.
 */

/* The vuid of the message on the new side with the message's key. */
static uint32_t
ap_find_key(const struct append_req *q, const struct view *v)
{
	uint64_t	 h = msgkey_hash64(msgkey_primary(&q->key));
	size_t		 i;

	for (i = view_count(v); i-- > 0;) {
		const struct vmsg *m = view_at(v, i);

		if (m->uid[BACKEND_NEW] != 0 && (m->nkey == h || m->nakey == h))
			return m->vuid;
	}
	return 0;
}

static void
ap_ok(struct append_req *q, uint32_t uidvalidity, uint32_t vuid)
{
	char	 text[128];

	if (vuid != 0)
		snprintf(text, sizeof(text), "OK [APPENDUID %u %u] APPEND "
		    "completed", uidvalidity, vuid);
	else
		snprintf(text, sizeof(text), "OK APPEND completed");
	ap_answer(q, text);
}

static void
ap_refreshed(struct imap_session *s, int ok)
{
	struct append_req	*q = s->append;

	ap_ok(q, q->uidvalidity, q->uid);
}

/* After a sync of the folder: the message's vuid, by UID or by key. */
static void
ap_synced(struct mbox_client *c, bool ok, struct view *v, const char *why)
{
	struct imap_session	*s = c->arg;
	struct append_req	*q = s->append;
	const struct vmsg	*m;
	uint32_t		 vuid = 0;

	if (ok && v != NULL) {
		if (q->uid != 0 &&
		    (m = view_by_uid(v, BACKEND_NEW, q->uid)) != NULL)
			vuid = m->vuid;
		else if (q->uid == 0)
			vuid = ap_find_key(q, v);
	}
	ap_ok(q, v != NULL ? view_uidvalidity(v) : 0, vuid);
}

/* No APPENDUID, or the folder changed meanwhile: ask the servers. */
static void
ap_lookup(struct imap_session *s, int ok)
{
	struct append_req	*q = s->append;
	const struct ufolder	*f;

	if ((f = folders_find(s->mc.folders, q->path)) == NULL) {
		ap_ok(q, 0, 0);
		return;
	}
	mbox_status(&s->mc, f, ap_synced);
}

static void	 ap_absorb_try(struct append_req *);

static void
ap_absorb_tick(evutil_socket_t fd, short what, void *arg)
{
	struct append_req	*q = arg;
	struct imap_session	*s = q->s;

	sess_hold(s);
	ap_absorb_try(q);
	sess_release(s);
}

static void
ap_absorb_synced(struct mbox_client *c, bool ok, struct view *v,
    const char *why)
{
	struct imap_session	*s = c->arg;
	struct append_req	*q = s->append;
	struct timeval		 tv = { 0, ABSORB_POLL_MS * 1000 };
	uint32_t		 vuid;

	if (ok && v != NULL && (vuid = ap_find_key(q, v)) != 0) {
		log_sess(LOG_INFO, s->sid, "event=sent-copy-absorbed user=%s "
		    "folder=\"%s\" vuid=%u", s->user, q->path, vuid);
		ap_ok(q, view_uidvalidity(v), vuid);
		return;
	}
	if (time(NULL) < q->absorb_until && (q->timer != NULL ||
	    (q->timer = evtimer_new(s->srv->base, ap_absorb_tick, q)) !=
	    NULL)) {
		evtimer_add(q->timer, &tv);
		return;
	}
	/* The server did not file it: upload the client's copy after all. */
	log_sess(LOG_INFO, s->sid, "event=sent-copy-uploaded user=%s "
	    "folder=\"%s\" reason=\"no copy from the server in time\"",
	    s->user, q->path);
	ap_upload(q);
}

static void
ap_absorb_try(struct append_req *q)
{
	struct imap_session	*s = q->s;
	const struct ufolder	*f;

	if ((f = folders_find(s->mc.folders, q->path)) == NULL ||
	    !f->part[BACKEND_NEW].present) {
		ap_upload(q);
		return;
	}
	mbox_status(&s->mc, f, ap_absorb_synced);
}

/* Both the command and the upload (or spool) are complete. */
static void
ap_finish(struct append_req *q)
{
	struct imap_session	*s = q->s;
	const char		*key, *akey;
	struct bmsg		 b;
	uint32_t		 vuid = 0, uv = 0;

	if (q->mode == AP_SPOOL) {
		q->absorb_until = time(NULL) +
		    s->conf->sent_copy_wait_ms / 1000;
		ap_absorb_try(q);
		return;
	}
	memset(&b, 0, sizeof(b));
	b.uid = q->uid;
	b.size = q->size > UINT32_MAX ? UINT32_MAX : (uint32_t)q->size;
	b.idate = q->idate;
	b.flags = q->flags;
	b.keywords = q->keywords;
	if (q->hdr_done) {
		mbox_keys(&q->key, BACKEND_NEW, &key, &akey);
		b.key = key;
		b.akey = akey;
		b.keyh = msgkey_hash64(key);
		b.akeyh = akey != NULL ? msgkey_hash64(akey) : 0;
	}
	if (q->uid != 0 && q->hdr_done && mbox_record(&s->mc, q->path,
	    BACKEND_NEW, q->uidvalidity, &b, 1, &vuid, &uv) == 0) {
		log_sess(LOG_INFO, s->sid, "event=append user=%s folder=\"%s\" "
		    "size=%llu vuid=%u", s->user, q->path,
		    (unsigned long long)q->size, vuid);
		q->uidvalidity = uv;
		q->uid = vuid;
		if (q->created)
			sess_folders_refresh(s, ap_refreshed);
		else
			ap_ok(q, uv, vuid);
		return;
	}
	if (q->created)
		sess_folders_refresh(s, ap_lookup);
	else
		ap_lookup(s, 1);
}

/*
 * The commands that put a message into a folder's part on the new server
 * (wire: its name there), shared with cmd_copy.c.
 */
void
sess_new_create(struct backend *b, const char *wire, backend_done_cb *done,
    void *arg)
{
	struct evbuffer		*cmd = evbuffer_new();
	struct backend_result	 res = { .status = BACKEND_FAILED,
	    .text = "out of memory" };

	if (cmd == NULL) {
		done(b, &res, arg);
		return;
	}
	evbuffer_add(cmd, "CREATE ", 7);
	imap_write_mailbox(cmd, wire, backend_has_cap(b, "LITERAL+") ?
	    IMAP_WRITE_NONSYNC : 0);
	evbuffer_add(cmd, "", 1);
	backend_cmd(b, (const char *)evbuffer_pullup(cmd, -1), NULL, done, arg);
	evbuffer_free(cmd);
}

/* Another session may have created it first: that is as good. */
bool
sess_new_made(const struct backend_result *res)
{
	return res->status == BACKEND_OK || (res->status == BACKEND_NO &&
	    res->code != NULL && strcasecmp(res->code, "ALREADYEXISTS") == 0);
}

char *
sess_new_append(const struct backend *b, const char *wire, uint8_t flags,
    const char *keywords, const char *date)
{
	struct evbuffer	*cmd = evbuffer_new();
	char		 fl[64], *out = NULL;
	size_t		 len;

	if (cmd == NULL)
		return NULL;
	evbuffer_add(cmd, "APPEND ", 7);
	imap_write_mailbox(cmd, wire, backend_has_cap(b, "LITERAL+") ?
	    IMAP_WRITE_NONSYNC : 0);
	view_flag_text(flags, fl);
	evbuffer_add_printf(cmd, " (%s%s%s)", fl, fl[0] != '\0' &&
	    keywords != NULL ? " " : "", keywords != NULL ? keywords : "");
	if (date != NULL && date[0] != '\0')
		evbuffer_add_printf(cmd, " \"%s\"", date);
	len = evbuffer_get_length(cmd);
	if ((out = malloc(len + 1)) != NULL) {
		evbuffer_remove(cmd, out, len);
		out[len] = '\0';
	}
	evbuffer_free(cmd);
	return out;
}

/*
 * Entry points.
 */

/*
 * The parser met the message's literal and streams it (CONTINUE for a
 * synchronising one, LITERAL otherwise): set the request up.  0 when the
 * input loop should go on, the client answered or refused.
 */
int
sess_append_begin(struct imap_session *s, struct imap_parser *p)
{
	const struct imap_arg	*args;
	const char		*err = NULL, *tag = imap_parser_tag(p);
	size_t			 nargs;
	unsigned int		 depth;
	struct append_req	*q;

	imap_parser_partial(p, &args, &nargs, &depth);
	if (!(s->state == SESS_AUTH || s->state == SESS_SELECTED))
		err = "BAD APPEND not allowed now";
	else if (nargs < 1 || args[nargs - 1].type != IMAP_ARG_LITERAL_SIZE)
		err = "BAD Invalid APPEND";
	if (err == NULL) {
		sess_folders_current(s);	/* the command starts here */
		q = ap_new(s, args, nargs - 1, imap_parser_literal_size(p),
		    &err);
		if (q == NULL) {
			sess_close(s, "out of memory");
			return 0;
		}
	}
	if (err != NULL && imap_parser_literal_sync(p)) {
		/* The client waits for "+": it sends nothing of this. */
		sess_printf(s, "%s %s\r\n", tag, err);
		sess_append_free(s);
		imap_parser_reset(p);
		return 1;
	}
	if (s->append == NULL &&
	    (s->append = calloc(1, sizeof(*s->append))) == NULL) {
		sess_close(s, "out of memory");
		return 0;
	}
	q = s->append;
	q->s = s;
	s->inmode = IN_APPEND;
	if (err != NULL) {
		q->size = imap_parser_literal_size(p);
		if (q->hold == NULL)
			q->hold = evbuffer_new();
		snprintf(q->fail, sizeof(q->fail), "%s", err);
		q->mode = AP_DISCARD;
		return 1;
	}
	if (imap_parser_literal_sync(p))
		sess_printf(s, "+ Ready for the message\r\n");
	q->mode = AP_HOLD;
	if (q->create)
		ap_upload(q);		/* CREATE first */
	else if (!q->absorbable)
		ap_upload(q);
	return 1;
}

/*
 * A small APPEND whose message is announced as a synchronizing literal
 * (it does not stream): the command is checked before the client is asked
 * for the message, as for a streamed one, so a message that would be
 * refused is never sent.  NULL when "+" may go out.
 */
const char *
sess_append_precheck(struct imap_session *s, struct imap_parser *p)
{
	const struct imap_arg	*args;
	const char		*err;
	size_t			 nargs;
	unsigned int		 depth;
	struct append_req	*q;

	/* The arguments before the literal (it is not one of them yet). */
	imap_parser_partial(p, &args, &nargs, &depth);
	if (depth != 0 || nargs < 1)
		return NULL;		/* the mailbox name as a literal */
	if (!(s->state == SESS_AUTH || s->state == SESS_SELECTED))
		return "BAD APPEND not allowed now";
	sess_folders_current(s);	/* the command starts here */
	if ((q = ap_new(s, args, nargs, imap_parser_literal_size(p),
	    &err)) == NULL)
		return "NO [SERVERBUG] Out of memory";
	sess_append_free(s);
	return err;
}

/* Literal bytes from the client: 0 when more must come. */
int
sess_append_input(struct imap_session *s, struct imap_parser *p,
    struct evbuffer *in)
{
	struct append_req	*q = s->append;
	uint64_t		 left;
	size_t			 n, room;

	while ((left = imap_parser_literal_left(p)) > 0) {
		if ((n = evbuffer_get_length(in)) == 0)
			return 0;
		if ((room = ap_room(q)) == 0) {
			q->stalled = true;
			bufferevent_disable(s->bev, EV_READ);
			return 0;
		}
		if (n > left)
			n = (size_t)left;
		if (n > room)
			n = room;
		ap_feed(q, in, n);
		imap_parser_literal_consumed(p, n);
		if (s->append != q)
			return 0;	/* answered and freed */
	}
	if (q->size == 0)
		q->literal_done = true;
	if (q->mode == AP_HOLD && !q->create && !q->hdr_done) {
		q->hdr_done = true;
		ap_decide(q);
	}
	s->inmode = IN_COMMAND;
	bufferevent_enable(s->bev, EV_READ);
	return 1;
}

void
cmd_append(struct imap_session *s, const struct imap_arg *args, size_t nargs)
{
	struct append_req	*q = s->append;
	const struct imap_arg	*msg;
	const char		*err = NULL;
	struct evbuffer		*one;

	if (q != NULL) {
		/* Streamed: the bytes went already. */
		q->command_done = true;
		if (nargs < 1 || args[nargs - 1].type != IMAP_ARG_LITERAL_SIZE)
			ap_refuse(q, "BAD APPEND takes one message");
		else if (q->mode == AP_DISCARD)
			ap_answer(q, q->fail);
		else if (q->mode == AP_SPOOL || q->upload_done)
			ap_finish(q);
		return;
	}
	if (nargs < 2 || (msg = &args[nargs - 1])->type != IMAP_ARG_LITERAL) {
		sess_done(s, "BAD APPEND needs the message as a literal");
		return;
	}
	if ((q = ap_new(s, args, nargs - 1, msg->len, &err)) == NULL) {
		sess_done(s, "NO [SERVERBUG] Out of memory");
		return;
	}
	if (err != NULL) {
		ap_answer(q, err);
		return;
	}
	if ((one = evbuffer_new()) == NULL ||
	    evbuffer_add(one, msg->v.str, msg->len) == -1) {
		if (one != NULL)
			evbuffer_free(one);
		ap_answer(q, "NO [SERVERBUG] Out of memory");
		return;
	}
	q->mode = AP_HOLD;
	ap_feed(q, one, msg->len);
	evbuffer_free(one);
	if (s->append != q)
		return;
	q->literal_done = true;
	q->command_done = true;
	if (!q->hdr_done)
		q->hdr_done = true;
	if (q->create || q->mode == AP_HOLD)
		ap_upload(q);	/* CREATE first, or not decided yet */
	else if (q->mode == AP_SPOOL)
		ap_finish(q);
}
