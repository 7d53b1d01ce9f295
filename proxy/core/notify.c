/*
 * sd_notify(3) by hand: the protocol is one AF_UNIX datagram of
 * newline-separated assignments to the socket $NOTIFY_SOCKET names.  A
 * name starting with '@' is in the abstract namespace (the '@' becomes a
 * NUL byte and the address is not NUL-terminated).  Failures are logged
 * once per call and otherwise ignored: a service manager that does not
 * listen must not stop the daemon.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/core/log.h"
#include "proxy/core/notify.h"

static int
notify_addr(const char *path, struct sockaddr_un *sun, socklen_t *len_r)
{
	size_t	 n = strlen(path);

	if (n == 0 || n >= sizeof(sun->sun_path) ||
	    (path[0] != '/' && path[0] != '@'))
		return -1;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, n);
	if (path[0] == '@')
		sun->sun_path[0] = '\0';
	*len_r = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
	    (path[0] == '@' ? 0 : 1));
	return 0;
}

int
notify_send(const char *state)
{
	const char		*path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un	 sun;
	socklen_t		 len;
	int			 fd, rc = 0;

	if (path == NULL)
		return 0;
	if (notify_addr(path, &sun, &len) == -1) {
		log_warnx("NOTIFY_SOCKET %s: not a socket path", path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1) {
		log_warn("NOTIFY_SOCKET %s: socket", path);
		return -1;
	}
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL,
	    (struct sockaddr *)&sun, len) == -1) {
		log_warn("NOTIFY_SOCKET %s: cannot send %s", path, state);
		rc = -1;
	}
	close(fd);
	return rc;
}
