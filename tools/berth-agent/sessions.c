/*
 * sessions.c: interactive sessions (exec with stdin, a terminal, the exit
 * status), each on a thread of its own.
 *
 * calls.c hands a session call here; the thread opens the agent's end of
 * the session (berth_hostlink_session_open(), two Redis connections of its
 * own), starts the process through the plugin's session operations and
 * relays: the caller's input, end of input and terminal sizes to the
 * process, the process's output to the caller, then the exit status.  It
 * stops reading the process while the caller has not taken BACKLOG_HIGH
 * chunks (flow control), tells the caller it is alive every
 * BERTH_SESSION_KEEPALIVE_MS, and ends the process when the caller says so
 * or goes silent.
 *
 * A session thread touches only its own session, its link and the
 * plugin's session operations (which a plugin makes safe beside its other
 * operations: berth-plugin.h), never the agent's groups.  At most
 * SESSIONS_MAX run at once; the agent waits for them, bounded, as it stops.
 * No session's input or output is ever logged.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

#define SESSIONS_MAX 32
#define BACKLOG_HIGH 256            /* chunks the caller has not taken     */
#define BACKLOG_LOW 64
#define READ_MAX (16 * 1024)
#define STOP_WAIT_MS 10000

typedef struct session {
    const berth_plugin_ops_t *ops;
    void *ctx;
    berth_hostlink_t *link;
    berth_call_t *call;
    char runtime_key[BERTH_GROUP_KEY_MAX + 1];
} session_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gone = PTHREAD_COND_INITIALIZER;
static int running;

/* Whether the plugin has interactive sessions (all five operations). */
static bool plugin_sessions(const berth_plugin_ops_t *ops)
{
    return ops->size >= offsetof(berth_plugin_ops_t, session_close) + sizeof ops->session_close &&
           ops->session_open != NULL;
}

/* Carries what the caller said to the process.  Returns 1 when the
 * caller ended the session, 0 to go on, -1 when the link failed. */
static int relay_input(session_t *s, berth_session_link_t *l, void *proc, bool *input_closed)
{
    for (int i = 0; i < 64; i++) {
        berth_session_msg_t m;
        berth_error_t err;
        int rc = berth_session_link_next(l, &m, &err);
        if (rc < 0) {
            log_warn(s->call->key, "session input unavailable: %s", err.message);
            return -1;
        }
        if (rc == 0)
            return 0;
        switch (m.kind) {
        case BERTH_SESSION_INPUT:
            if (!*input_closed && s->ops->session_write(proc, m.bytes, m.len, &err) != 0)
                log_warn(s->call->key, "session input not written: %s", err.message);
            break;
        case BERTH_SESSION_EOF:
            if (!*input_closed && s->ops->session_write(proc, NULL, 0, &err) != 0)
                log_warn(s->call->key, "session input not closed: %s", err.message);
            *input_closed = true;
            break;
        case BERTH_SESSION_RESIZE:
            if (s->ops->session_resize(proc, m.rows, m.cols, &err) != 0)
                log_warn(s->call->key, "session terminal not resized: %s", err.message);
            break;
        case BERTH_SESSION_END:
            return 1;
        }
    }
    return 0;
}

/* The session's life, once its link is open; returns the process's exit
 * status through *code, or fills *failure and returns -1; *caller_gone
 * when the caller ended it. */
static int relay(session_t *s, berth_session_link_t *l, int *code, berth_error_t *failure,
                 bool *caller_gone)
{
    const berth_call_t *c = s->call;
    berth_session_opts_t opts = {.tty = c->tty, .rows = c->rows, .cols = c->cols};
    void *proc = NULL;
    int fd = -1;
    if (s->ops->session_open(s->ctx, s->runtime_key, c->container,
                             (const char *const *)c->argv, c->argc, &opts, &proc, &fd,
                             failure) != 0)
        return -1;
    berth_error_t err;
    if (berth_session_link_alive(l, &err) != 0) {
        log_warn(c->key, "session not started: %s", err.message);
        *caller_gone = true;
    }
    bool input_closed = false, paused = false;
    int64_t alive_ms = berth__clock_monotonic_ms();
    char *buf = malloc(READ_MAX);
    if (buf == NULL)
        *caller_gone = true;
    bool ended = false;
    while (!*caller_gone && !ended && !stopping) {
        struct pollfd p[2] = {{berth_session_link_fd(l), POLLIN, 0},
                              {fd, paused ? 0 : POLLIN, 0}};
        int n = poll(p, 2, paused ? 50 : 1000);
        if (n < 0 && errno != EINTR)
            break;
        int r = relay_input(s, l, proc, &input_closed);
        if (r != 0) {
            *caller_gone = true;
            break;
        }
        if (p[1].revents != 0) {
            size_t got = 0;
            int rc = s->ops->session_read(proc, buf, READ_MAX, &got, &err);
            if (rc < 0)
                log_warn(c->key, "session output unreadable: %s", err.message);
            if (rc != 0)
                ended = true;
            size_t backlog = 0;
            if (got > 0 && berth_session_link_output(l, buf, got, &backlog, &err) != 0) {
                log_warn(c->key, "session output not sent: %s", err.message);
                *caller_gone = true;
            }
            if (backlog >= BACKLOG_HIGH)
                paused = true;
        }
        if (paused) {
            size_t backlog = 0;
            if (berth_session_link_backlog(l, &backlog, &err) == 0 && backlog <= BACKLOG_LOW)
                paused = false;
        }
        int64_t now = berth__clock_monotonic_ms();
        if (now - alive_ms >= (int64_t)BERTH_SESSION_KEEPALIVE_MS) {
            alive_ms = now;
            if (berth_session_link_alive(l, &err) != 0)
                *caller_gone = true;
        }
    }
    free(buf);
    *code = -1;
    int rc = s->ops->session_close(proc, code, failure);
    return rc == 0 ? 0 : -1;
}

static void *session_main(void *arg)
{
    session_t *s = arg;
    berth_session_link_t *l = NULL;
    berth_error_t err;
    if (berth_hostlink_session_open(s->link, s->call, &l, &err) != 0) {
        log_warn(s->call->key, "session not opened: %s", err.message);
    } else {
        int code = -1;
        bool caller_gone = false;
        berth_error_t failure;
        int rc;
        if (!plugin_sessions(s->ops)) {
            rc = berth_error_set(&failure, BERTH_EINVAL, "SessionsUnsupported", "",
                                 "the %s runtime plugin has no interactive sessions",
                                 s->ops->name);
        } else {
            rc = relay(s, l, &code, &failure, &caller_gone);
        }
        log_info(s->call->key, "session in container %s: %s", s->call->container,
                 rc == 0 ? "ended" : failure.message);
        if (!caller_gone &&
            berth_session_link_end(l, code, rc == 0 ? NULL : &failure, &err) != 0)
            log_warn(s->call->key, "session end not sent: %s", err.message);
        berth_session_link_close(l);
    }
    berth_call_free(s->call);
    free(s);
    pthread_mutex_lock(&lock);
    running--;
    pthread_cond_broadcast(&gone);
    pthread_mutex_unlock(&lock);
    return NULL;
}

/* Contract: agent.h. */
void session_start(agent_t *a, berth_call_t *call, const char *runtime_key)
{
    session_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        log_warn(call->key, "session refused: out of memory");
        berth_call_free(call);
        return;
    }
    s->ops = a->ops;
    s->ctx = a->ctx;
    s->link = a->link;
    s->call = call;
    snprintf(s->runtime_key, sizeof s->runtime_key, "%s", runtime_key);
    pthread_mutex_lock(&lock);
    bool room = running < SESSIONS_MAX;
    if (room)
        running++;
    pthread_mutex_unlock(&lock);
    pthread_t t;
    pthread_attr_t attr;
    bool started = false;
    if (room && pthread_attr_init(&attr) == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        started = pthread_create(&t, &attr, session_main, s) == 0;
        pthread_attr_destroy(&attr);
    }
    if (started)
        return;
    if (room) {
        pthread_mutex_lock(&lock);
        running--;
        pthread_mutex_unlock(&lock);
    }
    /* The caller hears why at once instead of waiting for its bound. */
    berth_session_link_t *l = NULL;
    berth_error_t err, failure;
    berth_error_set(&failure, BERTH_EIO, "TooManySessions", "",
                    room ? "the agent cannot start a thread for the session"
                         : "the host runs %d interactive sessions already", SESSIONS_MAX);
    if (berth_hostlink_session_open(a->link, call, &l, &err) == 0) {
        berth_session_link_end(l, -1, &failure, &err);
        berth_session_link_close(l);
    }
    log_warn(call->key, "session refused: %s", failure.message);
    berth_call_free(call);
    free(s);
}

/* Contract: agent.h. */
void sessions_wait(void)
{
    int64_t deadline = berth__clock_monotonic_ms() + STOP_WAIT_MS;
    pthread_mutex_lock(&lock);
    while (running > 0) {
        int64_t left = deadline - berth__clock_monotonic_ms();
        if (left <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)(left / 1000);
        ts.tv_nsec += (long)(left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&gone, &lock, &ts);
    }
    pthread_mutex_unlock(&lock);
}
