/*
 * Offline password hashes and the worker thread that makes them (see
 * offline.h).
 *
 * The worker and the loop talk over a socketpair, one job pointer per
 * message: the loop writes a job, the worker reads it, hashes and writes
 * it back, and an event on the loop's end runs the callbacks.  A job
 * belongs to the worker between the two writes; everything else about it
 * (the callback, cancellation) is touched by the loop alone.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "proxy/merge/offline.h"

#define SALT_LEN	16
#define HASH_LEN	32
#define ITER_MIN	1000
#define ITER_MAX	10000000

struct offline_job {
	char		*stored;	/* NULL: make */
	char		*pass;
	size_t		 len;
	int		 result;
	char		 hash[OFFLINE_HASH_MAX];
	offline_cb	*cb;
	void		*arg;
	int		 cancelled;
};

static int		 sp[2] = { -1, -1 };	/* loop end, worker end */
static pthread_t	 worker;
static int		 worker_up;
static struct event	*done_ev;
static unsigned char	 memo_key[32];
static int		 memo_key_set;

static int
derive(const char *pass, size_t len, const unsigned char *salt,
    unsigned int iter, unsigned char out[HASH_LEN])
{
	return PKCS5_PBKDF2_HMAC(pass, (int)len, salt, SALT_LEN, (int)iter,
	    EVP_sha256(), HASH_LEN, out) == 1 ? 0 : -1;
}

int
offline_hash_make(const char *pass, size_t len, unsigned int iter, char *out,
    size_t outlen)
{
	unsigned char	 salt[SALT_LEN], h[HASH_LEN];
	char		 salthex[2 * SALT_LEN + 1], hhex[2 * HASH_LEN + 1];
	int		 n;

	if (iter < ITER_MIN || iter > ITER_MAX ||
	    RAND_bytes(salt, sizeof(salt)) != 1 ||
	    derive(pass, len, salt, iter, h) == -1)
		return -1;
	if (OPENSSL_buf2hexstr_ex(salthex, sizeof(salthex), NULL, salt,
	    sizeof(salt), '\0') != 1 || OPENSSL_buf2hexstr_ex(hhex,
	    sizeof(hhex), NULL, h, sizeof(h), '\0') != 1) {
		OPENSSL_cleanse(h, sizeof(h));
		return -1;
	}
	OPENSSL_cleanse(h, sizeof(h));
	n = snprintf(out, outlen, "pbkdf2-sha256$%u$%s$%s", iter, salthex,
	    hhex);
	return n > 0 && (size_t)n < outlen ? 0 : -1;
}

int
offline_hash_verify(const char *stored, const char *pass, size_t len)
{
	unsigned char	 salt[SALT_LEN], want[HASH_LEN], got[HASH_LEN];
	const char	*p, *hhex;
	unsigned long	 iter;
	char		*end, salthex[2 * SALT_LEN + 1];
	size_t		 n;
	int		 ok;

	if (strncmp(stored, "pbkdf2-sha256$", 14) != 0)
		return -1;
	p = stored + 14;
	iter = strtoul(p, &end, 10);
	if (end == p || *end != '$' || iter < ITER_MIN || iter > ITER_MAX)
		return -1;
	p = end + 1;
	if ((hhex = strchr(p, '$')) == NULL ||
	    (size_t)(hhex - p) != sizeof(salthex) - 1)
		return -1;
	memcpy(salthex, p, sizeof(salthex) - 1);
	salthex[sizeof(salthex) - 1] = '\0';
	if (OPENSSL_hexstr2buf_ex(salt, sizeof(salt), &n, salthex, '\0') !=
	    1 || n != sizeof(salt) || OPENSSL_hexstr2buf_ex(want,
	    sizeof(want), &n, hhex + 1, '\0') != 1 || n != sizeof(want))
		return -1;
	if (derive(pass, len, salt, (unsigned int)iter, got) == -1)
		return -1;
	ok = CRYPTO_memcmp(want, got, sizeof(got)) == 0;
	OPENSSL_cleanse(got, sizeof(got));
	return ok;
}

void
offline_memo(const char *pass, size_t len,
    unsigned char memo[OFFLINE_MEMO_LEN])
{
	unsigned int	 n = OFFLINE_MEMO_LEN;

	if (!memo_key_set) {
		if (RAND_bytes(memo_key, sizeof(memo_key)) != 1)
			abort();	/* no randomness: nothing is safe */
		memo_key_set = 1;
	}
	if (HMAC(EVP_sha256(), memo_key, sizeof(memo_key),
	    (const unsigned char *)pass, len, memo, &n) == NULL)
		memset(memo, 0, OFFLINE_MEMO_LEN);
}

/*
 * The worker.
 */

static void *
worker_main(void *arg)
{
	struct offline_job	*j;
	ssize_t			 n;

	for (;;) {
		n = read(sp[1], &j, sizeof(j));
		if (n == -1 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(j))
			break;			/* the loop closed its end */
		if (j->stored != NULL)
			j->result = offline_hash_verify(j->stored, j->pass,
			    j->len);
		else
			j->result = offline_hash_make(j->pass, j->len,
			    OFFLINE_ITERATIONS, j->hash, sizeof(j->hash));
		while ((n = write(sp[1], &j, sizeof(j))) == -1 &&
		    errno == EINTR)
			;
		if (n != (ssize_t)sizeof(j))
			break;
	}
	return NULL;
}

static void
job_free(struct offline_job *j)
{
	if (j->pass != NULL) {
		OPENSSL_cleanse(j->pass, j->len);
		free(j->pass);
	}
	free(j->stored);
	OPENSSL_cleanse(j, sizeof(*j));
	free(j);
}

static void
jobs_done(evutil_socket_t fd, short what, void *arg)
{
	struct offline_job	*j;

	while (read(fd, &j, sizeof(j)) == (ssize_t)sizeof(j)) {
		if (!j->cancelled)
			j->cb(j->result, j->stored == NULL && j->result == 0 ?
			    j->hash : NULL, j->arg);
		job_free(j);
	}
}

static int
worker_start(struct event_base *base)
{
	if (worker_up)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1)
		return -1;
	if (fcntl(sp[0], F_SETFL, O_NONBLOCK) == -1 ||
	    (done_ev = event_new(base, sp[0], EV_READ | EV_PERSIST, jobs_done,
	    NULL)) == NULL || event_add(done_ev, NULL) == -1 ||
	    pthread_create(&worker, NULL, worker_main, NULL) != 0) {
		if (done_ev != NULL)
			event_free(done_ev);
		done_ev = NULL;
		close(sp[0]);
		close(sp[1]);
		sp[0] = sp[1] = -1;
		return -1;
	}
	worker_up = 1;
	return 0;
}

struct offline_job *
offline_start(struct event_base *base, const char *stored, const char *pass,
    size_t len, offline_cb *cb, void *arg)
{
	struct offline_job	*j;

	if (worker_start(base) == -1 || (j = calloc(1, sizeof(*j))) == NULL)
		return NULL;
	j->cb = cb;
	j->arg = arg;
	j->len = len;
	if ((j->pass = malloc(len + 1)) == NULL ||
	    (stored != NULL && (j->stored = strdup(stored)) == NULL)) {
		job_free(j);
		return NULL;
	}
	memcpy(j->pass, pass, len);
	j->pass[len] = '\0';
	/* A few bytes into a socket buffer of hundreds of kB: a full one
	 * means thousands of jobs waiting, and this one is refused. */
	if (write(sp[0], &j, sizeof(j)) != (ssize_t)sizeof(j)) {
		job_free(j);
		return NULL;
	}
	return j;
}

void
offline_cancel(struct offline_job *j)
{
	if (j != NULL)
		j->cancelled = 1;
}

void
offline_shutdown(void)
{
	if (!worker_up)
		return;
	shutdown(sp[0], SHUT_WR);
	pthread_join(worker, NULL);
	jobs_done(sp[0], EV_READ, NULL);
	event_free(done_ev);
	done_ev = NULL;
	close(sp[0]);
	close(sp[1]);
	sp[0] = sp[1] = -1;
	worker_up = 0;
}
