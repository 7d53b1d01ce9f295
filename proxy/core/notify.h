/*
 * The service manager's readiness protocol (sd_notify(3)) without
 * libsystemd: one datagram to the socket named by $NOTIFY_SOCKET.
 */
#ifndef PROXY_NOTIFY_H
#define PROXY_NOTIFY_H

/*
 * Sends STATE ("READY=1", "STOPPING=1"...) when $NOTIFY_SOCKET is set.
 * 0 when sent or not asked for, -1 when it could not be sent.
 */
int	notify_send(const char *);

#endif
