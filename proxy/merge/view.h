/*
 * A merged mailbox as plain data (DESIGN §4-5): the virtual messages of
 * one unified folder, each backed by a copy on the legacy server, on the
 * new server, or on both; pairing by identity key, virtual UIDs that never
 * change, the lifecycle of a message as copies appear and vanish, and
 * tombstones.  No sockets here: mailbox.c feeds what the backends said,
 * and every change is written through to the user's state store (when the
 * view has one) inside the caller's transaction.
 *
 * Memory is what limits a 100,000-message folder, so a message is a small
 * fixed struct: keys are kept as 64-bit hashes (their text lives only in
 * the state store), flags as bits, keywords as an index into a table of
 * the keyword sets the folder actually uses.
 */
#ifndef PROXY_VIEW_H
#define PROXY_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/config.h"

struct state;

/* System flags as bits; \Recent is never stored. */
#define VF_SEEN		0x01
#define VF_ANSWERED	0x02
#define VF_FLAGGED	0x04
#define VF_DELETED	0x08
#define VF_DRAFT	0x10

struct vmsg {
	uint32_t	 vuid;
	uint32_t	 uid[BACKEND_COUNT];	/* 0: no copy there */
	uint32_t	 size;
	uint32_t	 idate;		/* INTERNALDATE, seconds since 1970 */
	uint32_t	 modseq;	/* view change that last touched it */
	uint64_t	 lkey;		/* legacy copy's key (hash), 0: none */
	uint64_t	 nkey, nakey;	/* new copy's key and alias */
	uint8_t		 flags[BACKEND_COUNT];
	uint16_t	 kw;		/* keyword set shown, 0: none */
	uint8_t		 orphan;	/* sides reset, copy not yet found */
	uint8_t		 want;		/* VF_WANT | flags the user set that
					   a copy still has to get; 0: none */
};

/* vmsg.want holds flags when this bit is set. */
#define VF_WANT		0x80

/* One backend message as a sync reads it. */
struct bmsg {
	uint32_t	 uid;
	uint32_t	 size;
	uint32_t	 idate;
	uint8_t		 flags;
	const char	*keywords;	/* "$Forwarded Junk" or NULL */
	const char	*key;		/* primary key text */
	const char	*akey;		/* alias key text or NULL */
	uint64_t	 keyh, akeyh;	/* their hashes (0: none) */
};

/* Per backend folder: what the last sync saw. */
struct view_side {
	uint32_t	 uidvalidity;	/* 0: never synced */
	uint32_t	 uidnext;
	uint64_t	 highestmodseq;
	uint32_t	 exists;	/* at the last sync; not stored */
	bool		 exists_known;
};

struct view;

/* Changes a sync made, for logs and tests. */
struct view_stats {
	size_t		 added, paired, hidden, expunged, unpaired, flags;
};

/* folder_id keys the rows in the store; store may be NULL (tests). */
struct view	*view_new(struct state *, int64_t folder_id,
		    uint32_t uidvalidity, uint32_t uidnext);
void		 view_free(struct view **);
/* Reads messages and tombstones from the store; -1 on a store error. */
int		 view_load(struct view *);
/*
 * After a failed transaction: the view as the store has it, read back
 * once the transaction is really rolled back (at once outside a nested
 * one, else when the outermost ends).  -1 when that failed (view_stale()
 * then says so until a load succeeds).
 */
int		 view_restore(struct view *);
bool		 view_stale(const struct view *);

uint32_t	 view_uidvalidity(const struct view *);
uint32_t	 view_uidnext(const struct view *);
uint32_t	 view_modseq(const struct view *);
/* Bumped whenever messages leave the view. */
uint32_t	 view_expunges(const struct view *);
size_t		 view_count(const struct view *);
const struct vmsg *view_at(const struct view *, size_t);
/* By vuid; NULL if the view has no such message. */
const struct vmsg *view_find(const struct view *, uint32_t vuid);
/* Index of the first message with vuid >= v (view_count() if none). */
size_t		 view_lower_bound(const struct view *, uint32_t vuid);
/* The message whose copy on side has this UID, or NULL. */
const struct vmsg *view_by_uid(const struct view *, enum backend_side,
		    uint32_t uid);
struct view_side *view_side(struct view *, enum backend_side);
/* The keyword text of a set index, "" for 0. */
const char	*view_keywords(const struct view *, uint16_t);
/* How many keyword sets the view knows (indexes 1 to n - 1; sets are
 * only ever added while the view lives). */
size_t		 view_keyword_sets(const struct view *);
/* Flags shown: those of the serving copy (new when it has one). */
uint8_t		 vmsg_flags(const struct vmsg *);
enum backend_side vmsg_serving(const struct vmsg *);
const struct view_stats *view_stats(const struct view *);
void		 view_stats_reset(struct view *);

/*
 * Messages that appeared on one side, in ascending UID order.  Each pairs
 * with the oldest unpaired message of the other side that shares a key;
 * failing that, it takes the empty place of a tombstone with its key (the
 * copy of a message the user deleted) and stays hidden; others get new
 * vuids.  When
 * the view is empty and both sides arrive together (first build), use
 * view_build(), which numbers by INTERNALDATE.
 */
int		 view_add(struct view *, enum backend_side,
		    const struct bmsg *, size_t);
int		 view_build(struct view *, const struct bmsg *legacy, size_t nl,
		    const struct bmsg *new, size_t nn);

/*
 * A full scan of one side (UID FETCH 1:* (FLAGS)): begin, report every
 * UID the server still has with its flags, end.  Copies below `below`
 * (the UIDNEXT the scan saw; 0: all) that were not reported vanished:
 * DESIGN §5's lifecycle decides what the client sees.  A message the
 * view changed after `since` (a view_modseq(); UINT32_MAX: none) keeps
 * its flags: the scan may have read the server before that change
 * reached it.
 */
int		 view_scan_begin(struct view *, enum backend_side,
		    uint32_t below, uint32_t since);
int		 view_scan_flags(struct view *, enum backend_side, uint32_t uid,
		    uint8_t flags, const char *keywords);
int		 view_scan_end(struct view *, enum backend_side);

/* The side's UIDVALIDITY changed: forget its UIDs, keep the vuids; the
 * caller then view_add()s everything the side has and scans it. */
int		 view_side_reset(struct view *, enum backend_side);
/*
 * Bumped by every view_side_reset() (and when a first build sets a side):
 * a sync that read a side before the number changed read it under the
 * UIDVALIDITY before, and must apply nothing of it.
 */
uint32_t	 view_side_epoch(const struct view *, enum backend_side);
void		 view_side_epoch_bump(struct view *, enum backend_side);

/* A copy's flags were changed through imapmerge. */
int		 view_set_flags(struct view *, uint32_t vuid,
		    enum backend_side, uint8_t flags);

/*
 * Flags the user set on a message that the server holding it was not
 * told (legacy-writes none), or that a copy the migration makes later
 * must get: they are shown from now on, and given to the new copy when
 * it comes (mailbox.c).  view_want_clear() once the copy has them.
 */
int		 view_want(struct view *, uint32_t vuid, uint8_t flags);
int		 view_want_clear(struct view *, uint32_t vuid);
size_t		 view_nwant(const struct view *);

/* The new-side UIDs view_add() hid behind tombstones since the last
 * call (caller frees), for tombstone-action expunge. */
size_t		 view_hidden_take(struct view *, uint32_t **);
/* Those copies are being expunged: the tombstones' places are free again
 * for the next copy the migration makes. */
int		 view_hidden_gone(struct view *, const uint32_t *, size_t);

/*
 * Keywords kept by imapmerge (local-keywords): what the servers say no
 * longer changes the keywords shown; only view_set_keywords() does.
 */
void		 view_set_local_keywords(struct view *, bool);
bool		 view_local_keywords(const struct view *);

/* The keywords shown ("$Forwarded Junk", "" for none). */
int		 view_set_keywords(struct view *, uint32_t vuid, const char *);

/* Records a tombstone for a message the user deleted: it hides that
 * message's copies, never a twin's with the same key. */
int		 view_tombstone(struct view *, uint32_t vuid);
/* Lifts the tombstones with a key (the user appended it again). */
int		 view_untomb(struct view *, uint64_t keyh);
/* Removes a message from the view (after the copies are gone). */
int		 view_expunge(struct view *, uint32_t vuid);

/* Flag bits from an atom ("\\Seen"); 0 if it is not a system flag. */
uint8_t		 view_flag_bit(const char *);
/* "\\Seen \\Flagged" for bits; buf of at least 64 bytes. */
const char	*view_flag_text(uint8_t, char *buf);

/* Bytes used by the in-memory view, for accounting and benchmarks. */
size_t		 view_memory(const struct view *);

#endif
