/*
 * The daemon proper: binds the listeners of a loaded configuration,
 * drops privileges and runs the event loop until told to stop.
 */

#ifndef PROXY_CORE_DAEMON_H
#define PROXY_CORE_DAEMON_H

struct config;
struct daemon_parts;

/*
 * Owns CONF from here on (a reload replaces it) and frees it before it
 * returns the process's exit status.  FOREGROUND: do not detach.  PARTS:
 * the protocols and what their sessions share (core/server.h).
 */
int	daemon_main(struct config *, int, const struct daemon_parts *);

#endif
