/*
 * redis_async.c: the libevent glue of Berth's non-blocking hiredis
 * connections (the asynchronous store's commits, its reads and agent calls).
 *
 * hiredis ships a libevent adapter, but it lets SIGPIPE through: hiredis
 * writes with write(2), and a write to a Redis that went away would kill a
 * caller that never asked for SIGPIPE.  These handlers block SIGPIPE around
 * hiredis's reads and writes (berth__sigpipe_block()).
 *
 * This file must never block, and never run or own the event loop.
 */
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>
#include <hiredis/async.h>

#include "store.h"

typedef struct glue {
    redisAsyncContext *ac;
    struct event *rev, *wev;
} glue_t;

static void glue_read(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    glue_t *g = arg;
    berth__sigpipe_guard_t guard;
    berth__sigpipe_block(&guard);
    redisAsyncHandleRead(g->ac);
    berth__sigpipe_unblock(&guard);
}

static void glue_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    glue_t *g = arg;
    berth__sigpipe_guard_t guard;
    berth__sigpipe_block(&guard);
    redisAsyncHandleWrite(g->ac);
    berth__sigpipe_unblock(&guard);
}

static void glue_add_read(void *data)
{
    event_add(((glue_t *)data)->rev, NULL);
}

static void glue_del_read(void *data)
{
    event_del(((glue_t *)data)->rev);
}

static void glue_add_write(void *data)
{
    event_add(((glue_t *)data)->wev, NULL);
}

static void glue_del_write(void *data)
{
    event_del(((glue_t *)data)->wev);
}

static void glue_cleanup(void *data)
{
    glue_t *g = data;
    event_free(g->rev);
    event_free(g->wev);
    free(g);
}

int berth__redis_async_attach(redisAsyncContext *ac, struct event_base *base)
{
    glue_t *g = calloc(1, sizeof *g);
    if (g == NULL)
        return -1;
    g->ac = ac;
    g->rev = event_new(base, ac->c.fd, EV_READ, glue_read, g);
    g->wev = event_new(base, ac->c.fd, EV_WRITE, glue_write, g);
    if (g->rev == NULL || g->wev == NULL) {
        if (g->rev != NULL)
            event_free(g->rev);
        if (g->wev != NULL)
            event_free(g->wev);
        free(g);
        return -1;
    }
    ac->ev.addRead = glue_add_read;
    ac->ev.delRead = glue_del_read;
    ac->ev.addWrite = glue_add_write;
    ac->ev.delWrite = glue_del_write;
    ac->ev.cleanup = glue_cleanup;
    ac->ev.data = g;
    return 0;
}

redisAsyncContext *berth__redis_async_connect(const berth_store_t *store,
                                              struct event_base *base, void *data, char *why,
                                              size_t cap)
{
    const char *host, *url;
    int port;
    berth__store_endpoint(store, &host, &port, &url);
    redisAsyncContext *ac = port == 0 ? redisAsyncConnectUnix(host)
                                      : redisAsyncConnect(host, port);
    if (ac == NULL) {
        snprintf(why, cap, "no memory for a connection");
        return NULL;
    }
    if (ac->err) {
        snprintf(why, cap, "cannot connect: %s", ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    if (berth__redis_async_attach(ac, base) < 0) {
        snprintf(why, cap, "no memory for the connection's events");
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = data;
    return ac;
}

void berth__redis_async_free(redisAsyncContext *ac)
{
    if (ac == NULL)
        return;
    berth__sigpipe_guard_t guard;
    berth__sigpipe_block(&guard);
    redisAsyncFree(ac);
    berth__sigpipe_unblock(&guard);
}
