/*
 * server_log.c: berthd's structured log: bd_log() and the access-log line
 * of each answer, one JSON object per line on stderr.
 *
 * It must never log a token or a query string (either may hold secrets),
 * and never block the loop on a line: while a server is open lines gather
 * in a buffer the loop writes once per turn.  bd_log() is safe from any
 * thread (the worker logs too).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>

#include "server-internal.h"
#include "lib/clock.h"

/* ---- logging --------------------------------------------------------------------------- */

/* THE LOG'S WRITES.  While a server is open, lines gather in a buffer
 * (locked: the worker thread logs too) that the loop writes to stderr once
 * per turn (an event made active by the first line of a turn), so that a
 * busy berthd makes one write for many lines instead of one each, and a
 * line never waits longer than the callbacks of its turn.  Without a
 * server (start-up, shut-down) each line is written at once. */
static struct {
    pthread_mutex_t mu;
    struct evbuffer *buf;           /* NULL: no server; under mu            */
    struct event *flush;
    bool due;                       /* flush is active; under mu            */
} logq = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Writes what the log buffer holds to stderr (a blocking descriptor). */
static void bd_log_drain(struct evbuffer *buf)
{
    while (evbuffer_get_length(buf) > 0)
        if (evbuffer_write(buf, STDERR_FILENO) < 0 && errno != EINTR) {
            evbuffer_drain(buf, evbuffer_get_length(buf));  /* stderr is gone */
            break;
        }
}

static void bd_log_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    pthread_mutex_lock(&logq.mu);
    logq.due = false;
    if (logq.buf != NULL)
        bd_log_drain(logq.buf);
    pthread_mutex_unlock(&logq.mu);
}

/* Writes `obj` (taken) as one line on stderr, with time first. */
static void bd_log_json(json_t *obj)
{
    if (obj == NULL)
        return;
    char *line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    json_decref(obj);
    if (line == NULL)
        return;
    pthread_mutex_lock(&logq.mu);
    if (logq.buf != NULL && evbuffer_add_printf(logq.buf, "%s\n", line) > 0) {
        if (!logq.due) {
            logq.due = true;
            event_active(logq.flush, EV_TIMEOUT, 1);
        }
    } else {
        fprintf(stderr, "%s\n", line);
    }
    pthread_mutex_unlock(&logq.mu);
    free(line);
}

/* Contract: berthd.h. */
void bd_log(const char *level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char t[40];
    berth__clock_format_iso8601(berth__clock_wall_ms(), t, sizeof t);
    bd_log_json(json_pack("{s:s, s:s, s:s}", "time", t, "level", level, "msg", msg));
}

/* Writes one access-log line (JSON) for an answer. */
void bd_access_log(int status, double seconds, const char *method, const char *path,
                   const char *route, const char *remote, const char *request_id,
                   bool sent)
{
    char t[40];
    berth__clock_format_iso8601(berth__clock_wall_ms(), t, sizeof t);
    bd_log_json(json_pack("{s:s, s:s, s:s, s:s, s:i, s:f, s:s, s:s, s:s, s:b}", "time", t,
                          "level", status >= 500 ? "error" : "info", "method", method, "path",
                          path, "status", status, "duration_ms", seconds * 1000.0, "route",
                          route, "remote", remote, "request_id", request_id, "sent", sent));
}

/* Contract: server-internal.h. */
bool bd_log_buffer_open(struct event_base *base)
{
    bool made = false;
    pthread_mutex_lock(&logq.mu);
    if (logq.buf == NULL && (logq.flush = event_new(base, -1, 0, bd_log_flush_cb, NULL))) {
        if ((logq.buf = evbuffer_new()) != NULL) {
            made = true;
        } else {
            event_free(logq.flush);
            logq.flush = NULL;
        }
    }
    pthread_mutex_unlock(&logq.mu);
    return made;
}

/* Contract: server-internal.h. */
void bd_log_buffer_close(void)
{
    pthread_mutex_lock(&logq.mu);
    bd_log_drain(logq.buf);
    evbuffer_free(logq.buf);
    logq.buf = NULL;
    event_free(logq.flush);
    logq.flush = NULL;
    logq.due = false;
    pthread_mutex_unlock(&logq.mu);
}
