/*
 * STATUS (RFC 9051 §6.3.11): MESSAGES, UIDNEXT, UIDVALIDITY, UNSEEN and
 * RECENT of a unified folder, from its merged view after a sync (the
 * selected folder's own sync when it is the one asked about).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "protocol/imap_parser.h"
#include "protocol/imap_write.h"
#include "proxy/merge/folders.h"
#include "proxy/merge/mailbox.h"
#include "proxy/merge/view.h"
#include "proxy/imap/session_impl.h"

#define ST_MESSAGES	0x01
#define ST_UIDNEXT	0x02
#define ST_UIDVALIDITY	0x04
#define ST_UNSEEN	0x08
#define ST_RECENT	0x10

static void
status_answer(struct mbox_client *c, bool ok, struct view *v,
    const char *why)
{
	struct imap_session	*s = c->arg;
	struct evbuffer		*out;
	unsigned int		 want = (unsigned int)(uintptr_t)s->cmd_arg;
	size_t			 i, unseen = 0;
	const char		*sep = "";

	if (!ok || v == NULL || (out = evbuffer_new()) == NULL) {
		free(s->cmd_text);
		s->cmd_text = NULL;
		sess_done(s, "NO [UNAVAILABLE] Cannot read the folder now");
		return;
	}
	for (i = 0; i < view_count(v) && (want & ST_UNSEEN); i++)
		if (!(vmsg_flags(view_at(v, i)) & VF_SEEN))
			unseen++;
	evbuffer_add_printf(out, "* STATUS ");
	imap_write_mailbox(out, s->cmd_text, 0);
	evbuffer_add(out, " (", 2);
#define ITEM(bit, fmt, val) if (want & (bit)) {				\
	evbuffer_add_printf(out, "%s" fmt, sep, val);			\
	sep = " ";							\
}
	ITEM(ST_MESSAGES, "MESSAGES %zu", view_count(v));
	ITEM(ST_UIDNEXT, "UIDNEXT %u", view_uidnext(v));
	ITEM(ST_UIDVALIDITY, "UIDVALIDITY %u", view_uidvalidity(v));
	ITEM(ST_UNSEEN, "UNSEEN %zu", unseen);
	ITEM(ST_RECENT, "RECENT %d", 0);
#undef ITEM
	evbuffer_add(out, ")\r\n", 3);
	sess_write_buffer(s, out);
	evbuffer_free(out);
	free(s->cmd_text);
	s->cmd_text = NULL;
	sess_done(s, "OK STATUS completed");
}

void
cmd_status(struct imap_session *s, const struct imap_arg *args, size_t nargs)
{
	static const struct {
		const char	*name;
		unsigned int	 bit;
	} items[] = {
		{ "MESSAGES", ST_MESSAGES }, { "UIDNEXT", ST_UIDNEXT },
		{ "UIDVALIDITY", ST_UIDVALIDITY }, { "UNSEEN", ST_UNSEEN },
		{ "RECENT", ST_RECENT },
	};
	const struct imap_arg	*list;
	const struct ufolder	*f;
	const char		*a, *wire, *why;
	unsigned int		 want = 0, bit;
	size_t			 n, i, j;
	char			*path;

	if (nargs != 2 || !imap_arg_get_list(&args[1], &list, &n) || n == 0 ||
	    !imap_arg_get_astring(&args[0], &wire)) {
		sess_done(s, "BAD STATUS needs a mailbox and a list of items");
		return;
	}
	if ((path = sess_mailbox_arg(&args[0], &why)) == NULL) {
		sess_done(s, "%s", why);
		return;
	}
	for (i = 0; i < n; i++) {
		bit = 0;
		for (j = 0; j < sizeof(items) / sizeof(items[0]); j++)
			if (imap_arg_get_atom(&list[i], &a) &&
			    strcasecmp(a, items[j].name) == 0)
				bit = items[j].bit;
		if (bit == 0) {
			free(path);
			sess_done(s, "BAD Unknown STATUS item");
			return;
		}
		want |= bit;
	}
	f = s->mc.folders != NULL ? folders_find(s->mc.folders, path) : NULL;
	free(path);
	if (f == NULL || !folder_selectable(f)) {
		sess_done(s, "NO [NONEXISTENT] No such folder");
		return;
	}
	if ((s->cmd_text = strdup(wire)) == NULL) {
		sess_done(s, "NO [SERVERBUG] Out of memory");
		return;
	}
	s->cmd_arg = (void *)(uintptr_t)want;
	mbox_status(&s->mc, f, status_answer);
}

