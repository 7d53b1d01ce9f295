/*
 * Listening sockets.  Each `listen` statement becomes one socket per address
 * ("*" becomes 0.0.0.0 and [::], the latter with IPV6_V6ONLY so the two do
 * not fight over the port).  Accepted connections go to the protocol's
 * service (main.c names them); TLS (implicit or STARTTLS) is the session's
 * business.
 */
#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/listener.h>
#include <event2/util.h>

#include "proxy/core/listen.h"
#include "proxy/core/log.h"
#include "proxy/core/server.h"

struct listener {
	struct server		*srv;
	const struct listen_conf *conf;
	struct evconnlistener	*evl;
	struct listener		*next;
};

static const struct service *
listen_service(const struct server *srv, const struct listen_conf *lc)
{
	if (srv->parts == NULL || lc->proto >= LISTEN_PROTO_COUNT)
		return NULL;
	return srv->parts->services[lc->proto];
}

static void
listen_accept(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct listener		*l = arg;
	const struct service	*svc = listen_service(l->srv, l->conf);

	if (svc != NULL)
		svc->accept(l->srv, l->conf, fd, sa, salen);
	else
		evutil_closesocket(fd);
}

static void
listen_error(struct evconnlistener *evl, void *arg)
{
	struct listener	*l = arg;

	/* EMFILE and friends: keep running, the next accept may work. */
	log_warn("listen %s: accept", l->conf->text);
}

static int
listen_one(struct server *srv, const struct listen_conf *lc,
    struct addrinfo *ai)
{
	struct listener	*l;
	evutil_socket_t	 fd;
	int		 on = 1;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, ai->ai_protocol);
	if (fd == -1) {
		log_warn("listen %s: socket", lc->text);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) == -1) {
		log_warn("listen %s: bind", lc->text);
		close(fd);
		return -1;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		close(fd);
		return -1;
	}
	l->srv = srv;
	l->conf = lc;
	l->evl = evconnlistener_new(srv->base, listen_accept, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 128, fd);
	if (l->evl == NULL) {
		log_warn("listen %s: listen", lc->text);
		close(fd);
		free(l);
		return -1;
	}
	evconnlistener_set_error_cb(l->evl, listen_error);
	l->next = srv->listeners;
	srv->listeners = l;
	return 0;
}

static int
listen_conf_start(struct server *srv, const struct listen_conf *lc)
{
	const struct service	*svc = listen_service(srv, lc);
	struct addrinfo		 hints, *res, *ai;
	char			 port[8];
	int			 rc;

	if (svc == NULL) {
		log_warnx("listen %s: no such protocol here", lc->text);
		return -1;
	}

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV |
	    (lc->host != NULL ? AI_NUMERICHOST : 0);
	snprintf(port, sizeof(port), "%u", lc->port);
	if ((rc = getaddrinfo(lc->host, port, &hints, &res)) != 0) {
		log_warnx("listen %s: %s", lc->text, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next)
		if (listen_one(srv, lc, ai) == -1) {
			freeaddrinfo(res);
			return -1;
		}
	freeaddrinfo(res);
	log_info("listening on %s (%s, %s)", lc->text, svc->name,
	    lc->tls == TLSMODE_TLS ? "tls" : "starttls");
	return 0;
}

int
listen_start(struct server *srv)
{
	size_t	 i;

	for (i = 0; i < srv->conf->nlisten; i++)
		if (listen_conf_start(srv, &srv->conf->listen[i]) == -1)
			return -1;
	return 0;
}

void
listen_stop(struct server *srv)
{
	struct listener	*l;

	while ((l = srv->listeners) != NULL) {
		srv->listeners = l->next;
		evconnlistener_free(l->evl);
		free(l);
	}
}
