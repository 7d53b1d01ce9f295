/*
 * Tests of the service manager notification (proxy/core/notify.c) against
 * datagram sockets bound here: a path, an abstract name ("@..."), no
 * $NOTIFY_SOCKET at all, and names that are not sockets.
 */

#include <sys/socket.h>
#include <sys/un.h>

#include <stddef.h>
#include <unistd.h>

#include "unit.h"

#include "proxy/core/log.h"
#include "proxy/core/notify.h"

/* A datagram socket bound to NAME (abstract: in the abstract namespace). */
static int
bound(const char *name, int abstract)
{
	struct sockaddr_un	 sun;
	socklen_t		 len;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path + (abstract ? 1 : 0),
	    sizeof(sun.sun_path) - 1, "%s", name);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    (abstract ? 1 + strlen(name) : strlen(name) + 1));
	if ((fd = socket(AF_UNIX, SOCK_DGRAM, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sun, len) == -1) {
		perror("bind");
		exit(1);
	}
	return fd;
}

static void
check_recv(int fd, const char *want)
{
	char	 buf[256];
	ssize_t	 n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	CHECK(n >= 0);
	if (n >= 0)
		CHECK_MEM(buf, (size_t)n, want, strlen(want));
}

static void
test_path(void)
{
	char	 path[64];
	int	 fd;

	snprintf(path, sizeof(path), "/tmp/test_notify.%ld", (long)getpid());
	unlink(path);
	fd = bound(path, 0);
	setenv("NOTIFY_SOCKET", path, 1);
	CHECK_INT(notify_send("READY=1"), 0);
	check_recv(fd, "READY=1");
	CHECK_INT(notify_send("RELOADING=1\nMONOTONIC_USEC=1"), 0);
	check_recv(fd, "RELOADING=1\nMONOTONIC_USEC=1");
	close(fd);
	unlink(path);
	/* Nobody listening any more: an error, not a crash. */
	CHECK_INT(notify_send("STOPPING=1"), -1);
	unsetenv("NOTIFY_SOCKET");
}

static void
test_abstract(void)
{
	char	 name[64], env[66];
	int	 fd;

	snprintf(name, sizeof(name), "test_notify/%ld", (long)getpid());
	fd = bound(name, 1);
	snprintf(env, sizeof(env), "@%s", name);
	setenv("NOTIFY_SOCKET", env, 1);
	CHECK_INT(notify_send("STOPPING=1"), 0);
	check_recv(fd, "STOPPING=1");
	close(fd);
	unsetenv("NOTIFY_SOCKET");
}

static void
test_unset_and_bad(void)
{
	char	 longpath[200];

	unsetenv("NOTIFY_SOCKET");
	CHECK_INT(notify_send("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	CHECK_INT(notify_send("READY=1"), -1);
	setenv("NOTIFY_SOCKET", "", 1);
	CHECK_INT(notify_send("READY=1"), -1);
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	setenv("NOTIFY_SOCKET", longpath, 1);
	CHECK_INT(notify_send("READY=1"), -1);
	unsetenv("NOTIFY_SOCKET");
}

static const struct unit_case cases[] = {
	UNIT_CASE(test_path),
	UNIT_CASE(test_abstract),
	UNIT_CASE(test_unset_and_bad),
};

int
main(void)
{
	FILE	*devnull = fopen("/dev/null", "w");

	/* The failures are logged; keep them out of the TAP output. */
	log_init(1, LOG_WARNING, "test_notify");
	if (devnull != NULL)
		log_setoutput(devnull);
	return unit_main(cases, sizeof(cases) / sizeof(cases[0]));
}
