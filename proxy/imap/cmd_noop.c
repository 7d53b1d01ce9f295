/*
 * NOOP and CHECK: a look at the selected folder.  NOOP asks the servers
 * (or trusts those watching it in IDLE) and syncs only on news; CHECK
 * syncs in full.  What changed reaches the client as the command ends
 * (both break sequence numbers, see the command table).
 */
#include "protocol/imap_parser.h"
#include "proxy/merge/mailbox.h"
#include "proxy/imap/session_impl.h"

static void
resync_done(struct mbox_client *c, bool ok, const char *why)
{
	struct imap_session	*s = c->arg;

	sess_done(s, "OK %s completed", s->cmd->name);
}

static void
resync_command(struct imap_session *s,
    void (*sync)(struct mbox_client *, mbox_sync_cb *))
{
	if (s->state != SESS_SELECTED) {
		sess_done(s, "OK %s completed", s->cmd->name);
		return;
	}
	sync(&s->mc, resync_done);
}

void
cmd_noop(struct imap_session *s, const struct imap_arg *args, size_t nargs)
{
	resync_command(s, mbox_check);
}

void
cmd_check(struct imap_session *s, const struct imap_arg *args, size_t nargs)
{
	resync_command(s, mbox_resync);
}
