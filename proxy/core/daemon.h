/*
 * The daemon proper: binds the listeners of a loaded configuration,
 * drops privileges and runs the event loop until told to stop.
 */

#ifndef PROXY_DAEMON_H
#define PROXY_DAEMON_H

struct config;

/*
 * Owns CONF from here on (a reload replaces it) and frees it before it
 * returns the process's exit status.  FOREGROUND: do not detach.
 */
int	daemon_main(struct config *, int);

#endif
