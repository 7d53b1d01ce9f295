/*
 * token-command runner and cache (see token.h).
 *
 * The command is started with posix_spawn and two pipes; libevent watches
 * the pipes, a timer bounds the run, and the child is reaped with a
 * non-blocking waitpid once both pipes are closed, so no SIGCHLD handler is
 * needed and nothing blocks the loop.  The command prints the token on its
 * first line and, optionally, the token's lifetime in seconds on the second.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "conf/config.h"
#include "proxy/core/clock.h"
#include "proxy/net/token.h"

extern char **environ;

#define TOKEN_MAX_OUTPUT	16384	/* Entra ID tokens are 2-4 kB */
#define TOKEN_DEFAULT_LIFE	3000	/* s, when the command does not say */
#define TOKEN_REAP_MS		10

struct token_waiter {
	unsigned long		 id;
	token_cb		*cb;
	void			*arg;
	struct token_waiter	*next;
};

struct token_run {
	pid_t			 pid;
	int			 fd[2];		/* stdout, stderr */
	struct event		*ev[2];
	char			 buf[2][TOKEN_MAX_OUTPUT + 1];
	size_t			 len[2];
	int			 overflow;
	struct event		*timer;
	int			 timed_out;
};

struct token_entry {
	char			*user;
	char			*token;
	long long		 expires_ms;	/* monotonic */
	struct token_run	*run;
	struct token_waiter	*waiters;
	struct token_entry	*next;
};

struct token_cache {
	struct event_base	*base;
	char			*command;
	int			 timeout_ms;
	unsigned long		 next_id;
	struct token_entry	*entries;
};

struct token_cache *
token_cache_new(struct event_base *base, const char *command, int timeout_ms)
{
	struct token_cache	*tc;

	if ((tc = calloc(1, sizeof(*tc))) == NULL)
		return NULL;
	if ((tc->command = strdup(command)) == NULL) {
		free(tc);
		return NULL;
	}
	tc->base = base;
	tc->timeout_ms = timeout_ms;
	tc->next_id = 1;
	return tc;
}

static void
token_clear(struct token_entry *e)
{
	if (e->token != NULL) {
		OPENSSL_cleanse(e->token, strlen(e->token));
		free(e->token);
		e->token = NULL;
	}
}

static void
run_free(struct token_run **rp)
{
	struct token_run	*r = *rp;
	int			 i;

	if (r == NULL)
		return;
	for (i = 0; i < 2; i++) {
		if (r->ev[i] != NULL)
			event_free(r->ev[i]);
		if (r->fd[i] != -1)
			close(r->fd[i]);
	}
	if (r->timer != NULL)
		event_free(r->timer);
	OPENSSL_cleanse(r->buf[0], sizeof(r->buf[0]));
	free(r);
	*rp = NULL;
}

static void
entry_free(struct token_entry *e)
{
	struct token_waiter	*w;

	if (e->run != NULL && e->run->pid > 0) {
		kill(e->run->pid, SIGKILL);
		waitpid(e->run->pid, NULL, 0);
	}
	run_free(&e->run);
	while ((w = e->waiters) != NULL) {
		e->waiters = w->next;
		free(w);
	}
	token_clear(e);
	free(e->user);
	free(e);
}

void
token_cache_free(struct token_cache **tcp)
{
	struct token_cache	*tc = *tcp;
	struct token_entry	*e;

	if (tc == NULL)
		return;
	while ((e = tc->entries) != NULL) {
		tc->entries = e->next;
		entry_free(e);
	}
	free(tc->command);
	free(tc);
	*tcp = NULL;
}

static struct token_entry *
entry_find(struct token_cache *tc, const char *user)
{
	struct token_entry	*e;

	for (e = tc->entries; e != NULL; e = e->next)
		if (strcmp(e->user, user) == 0)
			return e;
	return NULL;
}

/* Hands the result to every waiter; a callback may call back into us. */
static void
entry_notify(struct token_entry *e, const char *err)
{
	struct token_waiter	*w, *list = e->waiters;

	e->waiters = NULL;
	while ((w = list) != NULL) {
		list = w->next;
		w->cb(err == NULL ? e->token : NULL, err, w->arg);
		free(w);
	}
}

/* Token characters: printable ASCII without blanks (JWT and opaque). */
static int
token_valid(const char *s, size_t len)
{
	size_t	 i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return 0;
	return 1;
}

static const char *
run_parse(struct token_entry *e)
{
	char		*out = e->run->buf[0], *nl, *end;
	long		 life = TOKEN_DEFAULT_LIFE, margin;

	out[e->run->len[0]] = '\0';
	if ((nl = strchr(out, '\n')) == NULL)
		nl = out + e->run->len[0];
	if (nl > out && nl[-1] == '\r')
		nl[-1] = '\0';
	*nl = '\0';
	if (!token_valid(out, strlen(out)))
		return "token-command printed no valid token";
	if (nl < out + e->run->len[0] && nl[1] != '\0') {
		errno = 0;
		life = strtol(nl + 1, &end, 10);
		if (errno != 0 || end == nl + 1 || life <= 0 ||
		    (*end != '\0' && *end != '\n' && *end != '\r'))
			return "token-command printed a bad lifetime";
	}
	/* Renew a minute early, or a tenth of a short lifetime (>= 1 s). */
	margin = life / 10 < 60 ? life / 10 : 60;
	if (margin < 1)
		margin = 1;
	if ((e->token = strdup(out)) == NULL)
		return "out of memory";
	e->expires_ms = clock_ms() + (long long)(life - margin) * 1000;
	return NULL;
}

static const char *
run_status(struct token_run *r, int status, char *err, size_t errlen)
{
	char	*msg = r->buf[1], *nl;

	msg[r->len[1]] = '\0';
	if ((nl = strchr(msg, '\n')) != NULL)
		*nl = '\0';
	if (r->timed_out)
		return "token-command timed out";
	if (r->overflow)
		return "token-command printed too much";
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return NULL;
	if (WIFEXITED(status))
		snprintf(err, errlen, "token-command exited %d%s%.160s",
		    WEXITSTATUS(status), *msg ? ": " : "", msg);
	else
		snprintf(err, errlen, "token-command killed by signal %d",
		    WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return err;
}

static void
run_reap(evutil_socket_t fd, short what, void *arg)
{
	struct token_entry	*e = arg;
	struct token_run	*r = e->run;
	struct timeval		 tv = { 0, TOKEN_REAP_MS * 1000 };
	char			 err[256];
	const char		*why;
	int			 status;
	pid_t			 pid;

	if (what == EV_TIMEOUT && (r->fd[0] != -1 || r->fd[1] != -1)) {
		/* The overall deadline passed before the pipes closed. */
		r->timed_out = 1;
		kill(r->pid, SIGKILL);
	}
	if ((pid = waitpid(r->pid, &status, WNOHANG)) == 0) {
		if (r->timed_out || (r->fd[0] == -1 && r->fd[1] == -1))
			evtimer_add(r->timer, &tv);
		return;
	}
	r->pid = -1;
	why = pid == -1 ? "cannot reap token-command" :
	    run_status(r, status, err, sizeof(err));
	if (why == NULL)
		why = run_parse(e);
	run_free(&e->run);
	entry_notify(e, why);
}

static void
run_read(evutil_socket_t fd, short what, void *arg)
{
	struct token_entry	*e = arg;
	struct token_run	*r = e->run;
	struct timeval		 tv = { 0, 0 };
	int			 i = fd == r->fd[0] ? 0 : 1;
	ssize_t			 n;

	n = read(fd, r->buf[i] + r->len[i], TOKEN_MAX_OUTPUT - r->len[i]);
	if (n > 0) {
		r->len[i] += n;
		if (r->len[i] < TOKEN_MAX_OUTPUT)
			return;
		r->overflow = 1;
	} else if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	event_free(r->ev[i]);
	r->ev[i] = NULL;
	close(r->fd[i]);
	r->fd[i] = -1;
	if (r->overflow && r->pid > 0)
		kill(r->pid, SIGKILL);
	if (r->fd[0] == -1 && r->fd[1] == -1) {
		evtimer_del(r->timer);
		evtimer_add(r->timer, &tv);
	}
}

static int
run_spawn(struct token_cache *tc, struct token_entry *e)
{
	posix_spawn_file_actions_t	 fa;
	struct token_run		*r;
	struct timeval			 tv;
	int				 out[2] = { -1, -1 }, err[2] = { -1, -1 };
	char				*cmd, *argv[4];
	int				 rc, i;

	if ((cmd = config_expand_command(tc->command, e->user)) == NULL)
		return -1;
	if ((r = calloc(1, sizeof(*r))) == NULL || pipe(out) == -1 ||
	    pipe(err) == -1) {
		free(cmd);
		free(r);
		for (i = 0; i < 2; i++) {
			if (out[i] != -1)
				close(out[i]);
			if (err[i] != -1)
				close(err[i]);
		}
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	posix_spawn_file_actions_addclose(&fa, out[0]);
	posix_spawn_file_actions_addclose(&fa, err[0]);
	argv[0] = "sh";
	argv[1] = "-c";
	argv[2] = cmd;
	argv[3] = NULL;
	rc = posix_spawn(&r->pid, "/bin/sh", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	free(cmd);
	close(out[1]);
	close(err[1]);
	r->fd[0] = out[0];
	r->fd[1] = err[0];
	e->run = r;
	if (rc != 0) {
		r->pid = -1;
		return -1;
	}
	for (i = 0; i < 2; i++) {
		evutil_make_socket_nonblocking(r->fd[i]);
		evutil_make_socket_closeonexec(r->fd[i]);
		r->ev[i] = event_new(tc->base, r->fd[i], EV_READ | EV_PERSIST,
		    run_read, e);
		event_add(r->ev[i], NULL);
	}
	r->timer = evtimer_new(tc->base, run_reap, e);
	tv.tv_sec = tc->timeout_ms / 1000;
	tv.tv_usec = (tc->timeout_ms % 1000) * 1000;
	evtimer_add(r->timer, &tv);
	return 0;
}

unsigned long
token_get(struct token_cache *tc, const char *user, token_cb *cb, void *arg)
{
	struct token_entry	*e;
	struct token_waiter	*w;

	if ((e = entry_find(tc, user)) == NULL) {
		if ((e = calloc(1, sizeof(*e))) == NULL ||
		    (e->user = strdup(user)) == NULL) {
			free(e);
			cb(NULL, "out of memory", arg);
			return 0;
		}
		e->next = tc->entries;
		tc->entries = e;
	}
	if (e->token != NULL && clock_ms() < e->expires_ms) {
		cb(e->token, NULL, arg);
		return 0;
	}
	token_clear(e);
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		cb(NULL, "out of memory", arg);
		return 0;
	}
	w->id = tc->next_id++;
	w->cb = cb;
	w->arg = arg;
	w->next = e->waiters;
	e->waiters = w;
	if (e->run == NULL && run_spawn(tc, e) == -1) {
		run_free(&e->run);
		entry_notify(e, "cannot start token-command");
		return 0;
	}
	return w->id;
}

void
token_cancel(struct token_cache *tc, unsigned long id)
{
	struct token_entry	*e;
	struct token_waiter	**wp, *w;

	for (e = tc->entries; e != NULL; e = e->next)
		for (wp = &e->waiters; (w = *wp) != NULL; wp = &w->next)
			if (w->id == id) {
				*wp = w->next;
				free(w);
				return;
			}
}

void
token_forget(struct token_cache *tc, const char *user)
{
	struct token_entry	*e;

	if ((e = entry_find(tc, user)) != NULL)
		token_clear(e);
}
