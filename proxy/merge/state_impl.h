/*
 * The inside of struct state, shared by state.c (file, schema, folders,
 * settings) and state_mbox.c (merged mailboxes).  Nothing else includes it.
 */
#ifndef PROXY_STATE_IMPL_H
#define PROXY_STATE_IMPL_H

#include <sqlite3.h>

#define STATE_MBOX_STMTS	32
#define STATE_AFTER_MAX		8

struct state {
	sqlite3		*db;
	int		 depth;		/* open transaction nesting */
	int		 failed;	/* an inner level rolled back */
	sqlite3_stmt	*follow_set;
	sqlite3_stmt	*follow_each;
	sqlite3_stmt	*meta_set;
	sqlite3_stmt	*meta_get;
	sqlite3_stmt	*mbox[STATE_MBOX_STMTS];	/* prepared lazily */
	struct {
		void	(*fn)(void *);
		void	*arg;
	}		 after[STATE_AFTER_MAX];	/* state_after_rollback */
	int		 nafter;
};

void	 state_mbox_finalize(struct state *);

#endif
