/*
 * Placeholder for the daemon proper, so that the command line can be
 * built and tested before the listeners and sessions exist.
 */

#include "conf/config.h"
#include "proxy/daemon.h"
#include "proxy/log.h"

int
daemon_main(struct config *conf, int foreground)
{
	log_warnx("serving is not implemented yet");
	config_free(&conf);
	return 1;
}
