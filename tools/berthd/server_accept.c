/*
 * server_accept.c: berthd's listener: binding the listen address, and what
 * happens when accept() fails.
 *
 * Out of descriptors, evconnlistener would retry at once on its
 * level-triggered socket, a spinning loop; the listener instead spends a
 * reserve descriptor (/dev/null) to take waiting connections off the queue
 * and close them cleanly, and pauses (100 ms doubling to 2 s).  It must
 * never spin, never log more than once per run of failures, and never
 * block the loop.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <event2/http.h>
#include <event2/listener.h>

#include "server-internal.h"

#define BD_REFUSE_MAX 64            /* waiting connections refused per failure */

/* ---- accepting ------------------------------------------------------------------------------ */

/* Servers with a listener.  evconnlistener hands its error callback the
 * argument evhttp gave it (the evhttp), so the server is looked up here. */
static bd_server_t *bd_listening;

/* An accept() went through: the next failure starts a new run (logged
 * again) with the shortest pause. */
void bd_accept_succeeded(bd_server_t *srv)
{
    if (srv->accept_failing)
        bd_log("info", "accepting connections again (%lu waiting connections were refused)",
               srv->refused);
    srv->accept_failing = false;
    srv->refused = 0;
    srv->accept_pause_ms = BD_ACCEPT_PAUSE_MIN_MS;
}

/* Out of descriptors: spends the reserve one to take waiting connections
 * off the listen queue and close them at once (a clean close, where the
 * client would otherwise hang until descriptors come back), then takes the
 * reserve again. */
static void bd_accept_refuse(bd_server_t *srv, evutil_socket_t listen_fd)
{
    if (srv->reserve_fd >= 0) {
        close(srv->reserve_fd);
        srv->reserve_fd = -1;
    }
    for (int i = 0; i < BD_REFUSE_MAX; i++) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            break;
        close(fd);
        srv->refused++;
    }
    srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* accept() failed for another reason than a retriable one (evconnlistener
 * retries at once on the level-triggered listener otherwise: a spinning
 * loop).  Refuses what waits when descriptors ran out, pauses the listener
 * and logs once per run of failures. */
static void bd_accept_error_cb(struct evconnlistener *lev, void *arg)
{
    int e = errno;
    bd_server_t *srv = bd_listening;
    while (srv != NULL && srv->http != arg)
        srv = srv->next_listening;
    if (srv == NULL)
        return;
    bool exhausted = e == EMFILE || e == ENFILE;
    if (exhausted)
        bd_accept_refuse(srv, evconnlistener_get_fd(lev));
    evconnlistener_disable(lev);
    if (!srv->accept_failing) {
        srv->accept_failing = true;
        bd_log("error",
               "accept() failed: %s; %spausing the listener for %ld ms (doubling to %d ms while "
               "it fails)",
               strerror(e), exhausted ? "refusing waiting connections and " : "",
               srv->accept_pause_ms, BD_ACCEPT_PAUSE_MAX_MS);
    }
    struct timeval tv = {srv->accept_pause_ms / 1000, (srv->accept_pause_ms % 1000) * 1000};
    evtimer_add(srv->accept_timer, &tv);
    srv->accept_pause_ms = srv->accept_pause_ms * 2 > BD_ACCEPT_PAUSE_MAX_MS
                               ? BD_ACCEPT_PAUSE_MAX_MS
                               : srv->accept_pause_ms * 2;
}

/* The listener's pause is over: accept again (a failure pauses it anew,
 * for twice as long). */
void bd_accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bd_server_t *srv = arg;
    if (srv->listener != NULL)
        evconnlistener_enable(evhttp_bound_socket_get_listener(srv->listener));
}

/* Contract: berthd.h. */
int bd_server_start(bd_server_t *srv, bd_api_t *api, char *why, size_t cap)
{
    srv->api = api;
    if (srv->reserve_fd < 0)
        srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (srv->reserve_fd < 0)
        bd_log("warn", "no reserve descriptor (/dev/null: %s): connections cannot be refused "
                       "cleanly when descriptors run out", strerror(errno));
    srv->listener =
        evhttp_bind_socket_with_handle(srv->http, srv->cfg->listen_addr, srv->cfg->listen_port);
    if (srv->listener == NULL) {
        int e = errno;
        snprintf(why, cap, "cannot listen on %s port %u: %s", srv->cfg->listen_addr,
                 (unsigned)srv->cfg->listen_port, e != 0 ? strerror(e) : "bind failed");
        return -1;
    }
    /* Replies leave in small writes (headers, then the body, through TLS
     * records): without TCP_NODELAY a keep-alive client's delayed ACK holds
     * each reply ~40 ms.  Linux passes the option on to accepted sockets. */
    int one = 1;
    evutil_socket_t fd = evhttp_bound_socket_get_fd(srv->listener);
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        bd_log("warn", "TCP_NODELAY not set on the listener: %s", strerror(errno));
    evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(srv->listener),
                                bd_accept_error_cb);
    srv->next_listening = bd_listening;
    bd_listening = srv;
    bd_log("info", "listening on %s%s%s:%u (%s%s)",
           strchr(srv->cfg->listen_addr, ':') != NULL ? "[" : "", srv->cfg->listen_addr,
           strchr(srv->cfg->listen_addr, ':') != NULL ? "]" : "", (unsigned)srv->cfg->listen_port,
           srv->ssl != NULL ? "https" : "http", srv->tokens != NULL ? ", bearer tokens" : "");
    return 0;
}

/* Contract: berthd.h. */
void bd_server_stop_accepting(bd_server_t *srv)
{
    if (srv == NULL)
        return;
    for (bd_server_t **p = &bd_listening; *p != NULL; p = &(*p)->next_listening)
        if (*p == srv) {
            *p = srv->next_listening;
            break;
        }
    srv->next_listening = NULL;
    if (srv->accept_timer != NULL)
        evtimer_del(srv->accept_timer);
    if (srv->http != NULL && srv->listener != NULL) {
        evhttp_del_accept_socket(srv->http, srv->listener);
        srv->listener = NULL;
    }
}
