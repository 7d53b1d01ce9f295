/*
 * SELECT, EXAMINE and UNSELECT: opening the merged view of a unified
 * folder for the session (mailbox.c) and leaving it.  CLOSE, which
 * expunges first, is in cmd_store.c.
 */
#include <stdlib.h>

#include "protocol/imap_parser.h"
#include "proxy/merge/folders.h"
#include "proxy/merge/mailbox.h"
#include "proxy/merge/view.h"
#include "proxy/imap/session_impl.h"

static void
select_answer(struct mbox_client *c, bool ok, const char *why)
{
	struct imap_session	*s = c->arg;
	struct view		*v = mbox_view(c);
	const struct vmsg	*m;
	uint32_t		 i, n, unseen = 0;

	if (!ok) {
		sess_enter(s, SESS_AUTH);
		sess_done(s, "NO [UNAVAILABLE] Cannot open the folder now");
		return;
	}
	n = mbox_count(c);
	for (i = 1; i <= n && unseen == 0; i++)
		if ((m = view_find(v, mbox_seq_vuid(c, i))) != NULL &&
		    !(vmsg_flags(m) & VF_SEEN))
			unseen = i;
	/* The keywords in use, and \\* for new ones: imapmerge keeps them
	 * itself where the new server cannot (local-keywords). */
	sess_printf(s, "* FLAGS (" MBOX_SYSTEM_FLAGS "%s)\r\n",
	    mbox_keywords(c));
	if (mbox_readonly(c))
		sess_printf(s, "* OK [PERMANENTFLAGS ()] Read-only\r\n");
	else
		sess_printf(s, "* OK [PERMANENTFLAGS (" MBOX_SYSTEM_FLAGS
		    "%s \\*)] Flags permitted\r\n", mbox_keywords(c));
	sess_printf(s, "* %u EXISTS\r\n* 0 RECENT\r\n", n);
	if (unseen != 0)
		sess_printf(s, "* OK [UNSEEN %u] First unseen\r\n", unseen);
	sess_printf(s, "* OK [UIDVALIDITY %u] UIDs valid\r\n",
	    view_uidvalidity(v));
	sess_printf(s, "* OK [UIDNEXT %u] Predicted next UID\r\n",
	    view_uidnext(v));
	sess_enter(s, SESS_SELECTED);
	sess_done(s, "OK [%s] %s completed", mbox_readonly(c) ? "READ-ONLY" :
	    "READ-WRITE", mbox_readonly(c) ? "EXAMINE" : "SELECT");
}

static void
select_common(struct imap_session *s, const struct imap_arg *args,
    size_t nargs, bool readonly)
{
	const struct ufolder	*f;
	const char		*why;
	char			*path;
	bool			 named;

	if (nargs != 1) {
		sess_done(s, "BAD %s needs one mailbox", s->cmd->name);
		return;
	}
	path = sess_mailbox_arg(&args[0], &why);
	if (path == NULL && why[0] == 'B') {
		sess_done(s, "%s", why);	/* not run: nothing closes */
		return;
	}
	named = path != NULL;
	f = s->mc.folders != NULL && named ?
	    folders_find(s->mc.folders, path) : NULL;
	free(path);
	/* RFC 9051 §6.3.2: a failed SELECT leaves no mailbox selected. */
	if (s->state == SESS_SELECTED) {
		mbox_close(&s->mc);
		sess_enter(s, SESS_AUTH);
		sess_printf(s, "* OK [CLOSED] Previous mailbox closed\r\n");
	}
	if (!named) {
		sess_done(s, "%s", why);
		return;
	}
	if (f == NULL || !folder_selectable(f)) {
		sess_done(s, "NO [NONEXISTENT] No such folder");
		return;
	}
	mbox_select(&s->mc, f, readonly, select_answer);
}

void
cmd_select(struct imap_session *s, const struct imap_arg *args, size_t nargs)
{
	select_common(s, args, nargs, false);
}

void
cmd_examine(struct imap_session *s, const struct imap_arg *args,
    size_t nargs)
{
	select_common(s, args, nargs, true);
}

void
cmd_unselect(struct imap_session *s, const struct imap_arg *args,
    size_t nargs)
{
	mbox_close(&s->mc);
	sess_enter(s, SESS_AUTH);
	sess_done(s, "OK UNSELECT completed");
}
