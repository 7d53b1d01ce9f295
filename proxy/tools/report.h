/*
 * `imapmerge report`: what the state store knows of each unified folder
 * of a user (or of every user), for the center's "compare old and new
 * after migration" step.  See docs/report.md.
 */
#ifndef PROXY_REPORT_H
#define PROXY_REPORT_H

#include <stddef.h>
#include <stdio.h>

enum report_format {
	REPORT_TEXT,
	REPORT_JSON,
	REPORT_HTML
};

struct report;

/* all: the report sums several users and lists them. */
struct report	*report_new(int all);
void		 report_free(struct report **);

/*
 * Adds one user's folders, read from state-dir with a read-only
 * connection (the daemon may be writing).  -1 with err set, also for a
 * user that has no state file.
 */
int		 report_add_user(struct report *, const char *dir,
		    const char *user, char *err, size_t errlen);
/* Adds every user with a state file in dir. */
int		 report_add_all(struct report *, const char *dir,
		    char *err, size_t errlen);
int		 report_write(struct report *, enum report_format, FILE *);

/* The "report" subcommand; argv[0] is "report".  Returns the exit status. */
int		 report_main(int argc, char *argv[]);

#endif
