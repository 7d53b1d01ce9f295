/*
 * Offline password verification (DESIGN §2, §8): after each login the
 * legacy server accepted, a salted PBKDF2-HMAC-SHA256 of the password is
 * kept in the user's state store, so that the user can still log in while
 * the legacy server is down.  The password itself is never stored.
 *
 * PBKDF2 is slow on purpose (tens of milliseconds), so it runs on one
 * worker thread, never on the event loop: offline_start() queues a job and
 * its callback runs on the loop when the hash is done.
 */
#ifndef PROXY_OFFLINE_H
#define PROXY_OFFLINE_H

#include <stddef.h>

struct event_base;
struct offline_job;

#define OFFLINE_ITERATIONS	210000	/* OWASP 2023 floor is 600,000 for
					   SHA-256; see docs/resilience.md */
#define OFFLINE_HASH_MAX	160

/* "pbkdf2-sha256$ITER$SALT$HASH" (hex) of pass into out; -1 on failure. */
int	 offline_hash_make(const char *pass, size_t len, unsigned int iter,
	    char *out, size_t outlen);
/* 1: pass matches stored, 0: it does not, -1: stored is malformed. */
int	 offline_hash_verify(const char *stored, const char *pass, size_t len);

/*
 * Runs make (stored NULL) or verify (stored set) off the loop.  cb gets
 * the result (verify: as above; make: 0 with the hash, -1) and, for make,
 * the hash.  The worker starts on first use; -1 when it cannot.
 */
typedef void	 offline_cb(int result, const char *hash, void *arg);
struct offline_job *offline_start(struct event_base *, const char *stored,
	    const char *pass, size_t len, offline_cb *, void *arg);
/* The owner is going: cb will not be called. */
void	 offline_cancel(struct offline_job *);
/* Stops the worker (shutdown). */
void	 offline_shutdown(void);

/*
 * A cheap keyed digest of a password (HMAC-SHA256 under a key made at
 * start and never stored), so that a login with the password already
 * hashed for this user costs no PBKDF2.
 */
#define OFFLINE_MEMO_LEN	32
void	 offline_memo(const char *pass, size_t len,
	    unsigned char memo[OFFLINE_MEMO_LEN]);

#endif
