/*
 * store_async_session.c: interactive sessions on the asynchronous store,
 * the caller's side (berth.h, "interactive sessions"; the wire is
 * session.c's): a daemon's loop opens a session, sends input and terminal
 * sizes, and gets the output and the end through a callback.
 *
 * A session's life: its group's host is read (berth_store_async_group_read),
 * the session call goes on the host's call stream (XADD), then the session
 * is open: output chunks are popped (LPOP of up to FETCH_MAX) when the agent
 * announces them on the cell's replies channel, and at every tick (one a
 * second: an announcement missed while the subscription was down costs at
 * most that); input is pushed to the input list in order, each push setting
 * the list's expiry in the same step (one EVAL).  Until the call is on the
 * stream, input waits in the session.  The tick also bounds the agent's
 * start (start_ms from the XADD), hears its silence (BERTH_SESSION_SILENCE_MS
 * ends the session) and keeps the session alive for the agent (a 'p' every
 * BERTH_SESSION_KEEPALIVE_MS).
 *
 * All sessions of a store share one command connection and one
 * subscription, made on first use and again after a loss; a command lost
 * with its connection ends its session (RedisUnavailable).
 *
 * This file must never block, never send a blocking command, never run a
 * callback from inside hiredis or from inside the call that caused it (the
 * session's deliver event runs them), and never free a session while a
 * command of it is out or its callback is running.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "store.h"
#include "lib/clock.h"

#define FETCH_MAX "64"
#define FETCH_MAX_N 64u
#define TICK_MS 1000
#define INPUT_TTL_MS "60000"
/* One step: the chunk, and the list's expiry. */
#define PUSH_SCRIPT                                                                       \
    "redis.call('RPUSH', KEYS[1], ARGV[1]) "                                              \
    "return redis.call('PEXPIRE', KEYS[1], ARGV[2])"

typedef struct sessions sessions_t;

/* A chunk: output to deliver, or input waiting for the call to be sent. */
typedef struct chunk {
    struct chunk *next;
    size_t len;
    char bytes[];
} chunk_t;

typedef enum sstate {
    S_HOST = 1,                     /* the group's host is being read       */
    S_ADD,                          /* the call's XADD is out               */
    S_OPEN,                         /* on the stream: the agent's turn      */
    S_ENDED                         /* the end is delivered or due          */
} sstate_t;

struct berth_store_async_session {
    sessions_t *m;                  /* NULL once the store closed           */
    berth_store_async_session_t *prev, *next;
    sstate_t state;
    char key[BERTH_GROUP_KEY_MAX + 1];
    char container[BERTH_NAME_MAX + 1];
    char host[BERTH_NAME_MAX + 1];
    char *argv_json;
    bool tty;
    uint16_t rows, cols;
    uint32_t start_ms;
    char k_out[sizeof ((berth__call_add_t *)0)->reply];
    char k_in[sizeof ((berth__call_add_t *)0)->reply + 4];
    berth_store_session_cb cb;
    void *data;
    int refs;                       /* commands out, and the host's read    */
    bool user_closed, delivering;
    bool fetching, refetch, hold, started;
    int64_t added_ms, heard_ms, said_ms;
    chunk_t *in_head, *in_tail;     /* input before the call is sent       */
    chunk_t *out_head, *out_tail;   /* output not yet delivered             */
    size_t backlog;                 /* pushes out                           */
    bool end_due;
    int end_status, exit_code;
    berth_error_t end_err;
    struct event *tick, *deliver;
};

struct sessions {
    berth_store_t *sync;
    struct event_base *base;
    redisAsyncContext *cmd, *sub;
    bool subscribed, closing;
    char channel[BERTH__KEYNAME_MAX];
    char why[160];
    berth_store_async_session_t *head;
};

static void session_free(berth_store_async_session_t *s)
{
    for (chunk_t *c = s->in_head, *n; c != NULL; c = n) {
        n = c->next;
        explicit_bzero(c->bytes, c->len);
        free(c);
    }
    for (chunk_t *c = s->out_head, *n; c != NULL; c = n) {
        n = c->next;
        free(c);
    }
    if (s->tick != NULL)
        event_free(s->tick);
    if (s->deliver != NULL)
        event_free(s->deliver);
    free(s->argv_json);
    free(s);
}

static void unlink_session(berth_store_async_session_t *s)
{
    if (s->m == NULL)
        return;
    if (s->prev != NULL)
        s->prev->next = s->next;
    else if (s->m->head == s)
        s->m->head = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

/* Frees the session when its user closed it and nothing of it is out. */
static void maybe_free(berth_store_async_session_t *s)
{
    if (!s->user_closed || s->refs > 0 || s->delivering)
        return;
    unlink_session(s);
    session_free(s);
}

static void wake(berth_store_async_session_t *s)
{
    if (s->deliver != NULL)
        event_active(s->deliver, 0, 0);
}

/* The end, delivered from the loop (the first one counts). */
static void end(berth_store_async_session_t *s, int status, int exit_code,
                const berth_error_t *err)
{
    if (s->state == S_ENDED)
        return;
    s->state = S_ENDED;
    s->end_due = true;
    s->end_status = status;
    s->exit_code = exit_code;
    if (err != NULL)
        s->end_err = *err;
    else
        berth_error_clear(&s->end_err);
    evtimer_del(s->tick);
    wake(s);
}

static void end_unavailable(berth_store_async_session_t *s, const char *why)
{
    berth_error_t e;
    berth__error_set(&e, BERTH_EIO, "RedisUnavailable", "",
                     "Redis is unavailable during an interactive session: %s", why);
    end(s, BERTH_EIO, -1, &e);
}

/* The start of every command's callback: whether the session still wants
 * the reply r.  When it does not, the session is freed (when its user
 * closed it and nothing else is out) or ended (r is a loss or a refusal
 * of `what`). */
static bool reply_wanted(berth_store_async_session_t *s, const redisReply *r, const char *what)
{
    s->refs--;
    if (s->user_closed || s->m == NULL || s->state == S_ENDED) {
        maybe_free(s);
        return false;
    }
    if (r == NULL) {
        end_unavailable(s, s->m->why);
        return false;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        berth_error_t e;
        berth__redis_error(&e, r, what);
        end(s, BERTH_EIO, -1, &e);
        return false;
    }
    return true;
}

/* ---- connections ------------------------------------------------------------------ */

static void on_cmd_connect(const redisAsyncContext *ac, int status)
{
    sessions_t *m = ac->data;
    if (status == REDIS_OK)
        return;
    snprintf(m->why, sizeof m->why, "cannot connect: %s", ac->errstr ? ac->errstr : "?");
    if (m->cmd == ac)
        m->cmd = NULL;
}

static void on_cmd_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    sessions_t *m = ac->data;
    if (m->cmd == ac)
        m->cmd = NULL;
}

/* The command connection, made when there is none; NULL with m->why. */
static redisAsyncContext *cmd_get(sessions_t *m)
{
    if (m->cmd != NULL && !(m->cmd->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING)))
        return m->cmd;
    if (m->cmd != NULL)
        return NULL;
    redisAsyncContext *ac = berth__redis_async_connect(m->sync, m->base, m, m->why,
                                                       sizeof m->why);
    if (ac == NULL)
        return NULL;
    redisAsyncSetConnectCallback(ac, on_cmd_connect);
    redisAsyncSetDisconnectCallback(ac, on_cmd_disconnect);
    m->cmd = ac;
    snprintf(m->why, sizeof m->why, "the connection was lost");
    return ac;
}

/* Sends a command of session s; its reply goes to fn.  False (and the
 * session ended) when it could not be sent. */
static bool command(berth_store_async_session_t *s, redisCallbackFn *fn, int argc,
                    const char **argv, const size_t *lens)
{
    redisAsyncContext *ac = cmd_get(s->m);
    if (ac == NULL || redisAsyncCommandArgv(ac, fn, s, argc, argv, lens) != REDIS_OK) {
        end_unavailable(s, ac == NULL ? s->m->why : "no memory for a command");
        return false;
    }
    s->refs++;
    return true;
}

static void announced(sessions_t *m, const redisReply *name);

static void on_sub(redisAsyncContext *ac, void *reply, void *data)
{
    sessions_t *m = data;
    const redisReply *r = reply;
    if (r == NULL) {
        if (m->sub == ac) {
            m->sub = NULL;
            m->subscribed = false;
        }
        return; /* the next tick makes it again */
    }
    if (m->closing || m->sub != ac || r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return;
    if (strcasecmp(r->element[0]->str, "subscribe") == 0)
        m->subscribed = true;
    else if (strcasecmp(r->element[0]->str, "message") == 0 &&
             r->element[2]->type == REDIS_REPLY_STRING)
        announced(m, r->element[2]);
}

static void on_sub_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    sessions_t *m = ac->data;
    if (m->sub == ac) {
        m->sub = NULL;
        m->subscribed = false;
    }
}

/* The subscription to the replies channel, made when there is none (a
 * failure is retried at the next tick). */
static void sub_ensure(sessions_t *m)
{
    if (m->sub != NULL || m->closing)
        return;
    char why[160];
    redisAsyncContext *ac = berth__redis_async_connect(m->sync, m->base, m, why, sizeof why);
    if (ac == NULL)
        return;
    redisAsyncSetDisconnectCallback(ac, on_sub_disconnect);
    const char *argv[] = {"SUBSCRIBE", m->channel};
    if (redisAsyncCommandArgv(ac, on_sub, m, 2, argv, NULL) != REDIS_OK) {
        berth__redis_async_free(ac);
        return;
    }
    m->sub = ac;
}

/* ---- output ----------------------------------------------------------------------- */

static void fetch(berth_store_async_session_t *s);

/* A chunk from the agent. */
static void heard(berth_store_async_session_t *s, const redisReply *v)
{
    if (v->type != REDIS_REPLY_STRING || v->len == 0 || s->state != S_OPEN)
        return;
    s->heard_ms = berth__clock_monotonic_ms();
    switch (v->str[0]) {
    case 'a':
        s->started = true;
        break;
    case 'o': {
        chunk_t *c = malloc(sizeof *c + v->len - 1);
        if (c == NULL) {
            berth_error_t e;
            berth__error_set(&e, BERTH_ENOMEM, "OutOfMemory", "", "no memory for output");
            end(s, BERTH_ENOMEM, -1, &e);
            return;
        }
        c->next = NULL;
        c->len = v->len - 1;
        memcpy(c->bytes, v->str + 1, c->len);
        if (s->out_tail != NULL)
            s->out_tail->next = c;
        else
            s->out_head = c;
        s->out_tail = c;
        s->started = true;
        break;
    }
    case 'x': {
        char *ignored = NULL;
        int code = 0;
        berth_error_t e;
        int rc = berth__call_answer_parse(v->str + 1, v->len - 1, &ignored, NULL, &code, &e);
        free(ignored);
        end(s, rc, rc == 0 ? code : -1, rc == 0 ? NULL : &e);
        break;
    }
    }
}

static void on_fetch(redisAsyncContext *ac, void *reply, void *data)
{
    (void)ac;
    berth_store_async_session_t *s = data;
    const redisReply *r = reply;
    s->fetching = false;
    if (!reply_wanted(s, r, "reading a session's output"))
        return;
    size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
    for (size_t i = 0; i < n && s->state == S_OPEN; i++)
        heard(s, r->element[i]);
    if (s->out_head != NULL)
        wake(s);
    if (s->state == S_OPEN && (n >= FETCH_MAX_N || s->refetch))
        fetch(s);
}

/* Pops the output waiting (once: a second ask while one is out is made
 * again after it). */
static void fetch(berth_store_async_session_t *s)
{
    if (s->state != S_OPEN || s->hold || s->m == NULL)
        return;
    if (s->fetching) {
        s->refetch = true;
        return;
    }
    s->refetch = false;
    const char *argv[] = {"LPOP", s->k_out, FETCH_MAX};
    if (command(s, on_fetch, 3, argv, NULL))
        s->fetching = true;
}

static void announced(sessions_t *m, const redisReply *name)
{
    for (berth_store_async_session_t *s = m->head; s != NULL; s = s->next)
        if (!s->user_closed && strlen(s->k_out) == name->len &&
            memcmp(s->k_out, name->str, name->len) == 0) {
            fetch(s);
            return;
        }
}

/* Runs the session's callbacks: the output in order, then the end. */
static void on_deliver(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    berth_store_async_session_t *s = arg;
    s->delivering = true;
    chunk_t *c;
    while (!s->user_closed && (c = s->out_head) != NULL) {
        s->out_head = c->next;
        if (s->out_head == NULL)
            s->out_tail = NULL;
        s->cb(s, false, c->bytes, c->len, 0, 0, NULL, s->data);
        free(c);
    }
    if (!s->user_closed && s->end_due) {
        s->end_due = false;
        s->cb(s, true, NULL, 0, s->end_status, s->exit_code,
              s->end_status == 0 ? NULL : &s->end_err, s->data);
    }
    s->delivering = false;
    maybe_free(s);
}

/* ---- input ------------------------------------------------------------------------ */

static void on_push(redisAsyncContext *ac, void *reply, void *data)
{
    (void)ac;
    berth_store_async_session_t *s = data;
    if (s->backlog > 0)
        s->backlog--;
    reply_wanted(s, reply, "sending a session's input");
}

/* Pushes one chunk (tag, then len bytes) to the input list. */
static int push(berth_store_async_session_t *s, char tag, const char *bytes, size_t len)
{
    char *chunk = malloc(len + 1);
    if (chunk == NULL)
        return BERTH_ENOMEM;
    chunk[0] = tag;
    if (len > 0)
        memcpy(chunk + 1, bytes, len);
    const char *argv[] = {"EVAL", PUSH_SCRIPT, "1", s->k_in, chunk, INPUT_TTL_MS};
    const size_t lens[] = {4, strlen(PUSH_SCRIPT), 1, strlen(s->k_in), len + 1,
                           strlen(INPUT_TTL_MS)};
    bool ok = command(s, on_push, 6, argv, lens);
    explicit_bzero(chunk, len + 1);
    free(chunk);
    if (!ok)
        return BERTH_EIO;
    s->backlog++;
    s->said_ms = berth__clock_monotonic_ms();
    return 0;
}

/* Input for later (before the call is on the stream), or now. */
static int say(berth_store_async_session_t *s, char tag, const char *bytes, size_t len)
{
    if (s->state == S_OPEN || s->state == S_ADD)
        return push(s, tag, bytes, len);
    chunk_t *c = malloc(sizeof *c + len + 1);
    if (c == NULL)
        return BERTH_ENOMEM;
    c->next = NULL;
    c->len = len + 1;
    c->bytes[0] = tag;
    if (len > 0)
        memcpy(c->bytes + 1, bytes, len);
    if (s->in_tail != NULL)
        s->in_tail->next = c;
    else
        s->in_head = c;
    s->in_tail = c;
    s->backlog++;
    return 0;
}

/* ---- the start -------------------------------------------------------------------- */

static void arm_tick(berth_store_async_session_t *s)
{
    struct timeval tv = {TICK_MS / 1000, (TICK_MS % 1000) * 1000};
    evtimer_add(s->tick, &tv);
}

static void on_added(redisAsyncContext *ac, void *reply, void *data)
{
    (void)ac;
    berth_store_async_session_t *s = data;
    if (!reply_wanted(s, reply, "calling the agent"))
        return;
    s->state = S_OPEN;
    s->added_ms = s->heard_ms = berth__clock_monotonic_ms();
    fetch(s); /* the agent may have answered already */
}

static void on_host(int status, const char *record, uint64_t generation, const char *host,
                    const berth_error_t *err, void *data)
{
    (void)record, (void)generation;
    berth_store_async_session_t *s = data;
    s->refs--;
    if (s->user_closed || s->m == NULL || s->state == S_ENDED) {
        maybe_free(s);
        return;
    }
    if (status != 0) {
        end(s, status, -1, err);
        return;
    }
    if (host == NULL) {
        berth_error_t e;
        berth__error_set(&e, BERTH_EINVAL, "ContainerGroupNotRunning", "",
                         "container group '%s' is not placed on a host", s->key);
        end(s, BERTH_EINVAL, -1, &e);
        return;
    }
    snprintf(s->host, sizeof s->host, "%s", host);
    berth__call_add_t add;
    berth_error_t e;
    if (berth__call_add_build(s->m->sync, &add, "session", s->key, s->container, s->host, 0,
                              false, s->argv_json, s->start_ms, &e) < 0) {
        end(s, e.code, -1, &e);
        return;
    }
    snprintf(s->k_out, sizeof s->k_out, "%s", add.reply);
    snprintf(s->k_in, sizeof s->k_in, "%s:in", add.reply);
    char rows[8], cols[8];
    snprintf(rows, sizeof rows, "%u", s->rows);
    snprintf(cols, sizeof cols, "%u", s->cols);
    const char *argv[BERTH__CALL_ADD_ARGC + 6];
    memcpy(argv, add.argv, sizeof add.argv);
    argv[BERTH__CALL_ADD_ARGC + 0] = "tty";
    argv[BERTH__CALL_ADD_ARGC + 1] = s->tty ? "1" : "0";
    argv[BERTH__CALL_ADD_ARGC + 2] = "rows";
    argv[BERTH__CALL_ADD_ARGC + 3] = rows;
    argv[BERTH__CALL_ADD_ARGC + 4] = "cols";
    argv[BERTH__CALL_ADD_ARGC + 5] = cols;
    sub_ensure(s->m);
    if (!command(s, on_added, BERTH__CALL_ADD_ARGC + 6, argv, NULL))
        return;
    s->state = S_ADD;
    arm_tick(s);
    /* What was said before: after the XADD on the same connection. */
    chunk_t *c;
    while ((c = s->in_head) != NULL && s->state == S_ADD) {
        s->in_head = c->next;
        if (s->in_head == NULL)
            s->in_tail = NULL;
        s->backlog--;
        push(s, c->bytes[0], c->bytes + 1, c->len - 1);
        explicit_bzero(c->bytes, c->len);
        free(c);
    }
}

/* Once a second: the bounds, the keepalive, a look at the output. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    berth_store_async_session_t *s = arg;
    if (s->user_closed || s->m == NULL || s->state == S_ENDED)
        return;
    sub_ensure(s->m);
    int64_t now = berth__clock_monotonic_ms();
    if (s->state == S_OPEN && !s->started && now - s->added_ms > (int64_t)s->start_ms) {
        berth_error_t e;
        berth__error_set(&e, BERTH_EIO, "AgentUnavailable", "",
                         "the agent of host %s did not start the session within %u ms",
                         s->host, s->start_ms);
        end(s, BERTH_EIO, -1, &e);
        return;
    }
    if (s->state == S_OPEN && s->started &&
        now - s->heard_ms > (int64_t)BERTH_SESSION_SILENCE_MS) {
        berth_error_t e;
        berth__error_set(&e, BERTH_EIO, "AgentUnavailable", "",
                         "the agent of host %s went silent during the session", s->host);
        end(s, BERTH_EIO, -1, &e);
        return;
    }
    if (s->state == S_OPEN && now - s->said_ms >= (int64_t)BERTH_SESSION_KEEPALIVE_MS)
        push(s, 'p', NULL, 0);
    fetch(s);
    if (s->state != S_ENDED)
        arm_tick(s);
}

/* ---- the store's side ------------------------------------------------------------- */

/* Inside berth_store_async_close(): every session still open ends
 * ("Closed"), connections go; a session whose user has not closed it
 * stays allocated until the user does. */
static void sessions_free(void *state)
{
    sessions_t *m = state;
    if (m == NULL || m->closing)
        return;
    m->closing = true;
    /* Each callback may close its session: it is freed below, not from
     * inside this walk. */
    for (berth_store_async_session_t *s = m->head; s != NULL; s = s->next)
        if (!s->user_closed && s->state != S_ENDED && !s->delivering) {
            berth_error_t e;
            berth__error_set(&e, BERTH_EIO, "Closed", "",
                             "the store was closed during an interactive session");
            s->state = S_ENDED;
            s->delivering = true;
            s->cb(s, true, NULL, 0, BERTH_EIO, -1, &e, s->data);
            s->delivering = false;
        }
    if (m->cmd != NULL) {
        redisAsyncContext *ac = m->cmd;
        berth__redis_async_free(ac); /* the callbacks of what was out run now */
        m->cmd = NULL;
    }
    if (m->sub != NULL) {
        redisAsyncContext *ac = m->sub;
        m->sub = NULL;
        berth__redis_async_free(ac);
    }
    berth_store_async_session_t *s = m->head, *next;
    m->head = NULL;
    for (; s != NULL; s = next) {
        next = s->next;
        s->prev = s->next = NULL;
        s->m = NULL;
        evtimer_del(s->tick);
        event_del(s->deliver);
        s->end_due = false;
        if (s->user_closed && s->refs == 0 && !s->delivering)
            session_free(s);
    }
    free(m);
}

static sessions_t *sessions_get(berth_store_async_t *store)
{
    void **slot = berth__store_async_ext(store, BERTH__ASYNC_EXT_SESSIONS, sessions_free);
    if (*slot != NULL)
        return *slot;
    sessions_t *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->sync = berth__store_async_sync(store);
    m->base = berth__store_async_base(store);
    berth__store_key(m->sync, m->channel, sizeof m->channel, BERTH__CALL_CHANNEL, "");
    *slot = m;
    return m;
}

int berth_store_async_session_open(berth_store_async_t *store, const char *key,
                                   const char *container, const char *const *argv, size_t argc,
                                   bool tty, uint16_t rows, uint16_t cols, uint32_t start_ms,
                                   berth_store_session_cb cb, void *data,
                                   berth_store_async_session_t **out, berth_error_t *err)
{
    *out = NULL;
    if (store == NULL || cb == NULL)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "",
                                "no store or no callback given");
    if (argc == 0 || argv == NULL)
        return berth__error_set(err, BERTH_EINVAL, "InvalidCommand", "command",
                                "no command given");
    int rc = berth__call_check(key, container, start_ms, err);
    if (rc < 0)
        return rc;
    sessions_t *m = sessions_get(store);
    if (m == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for a session");
    if (m->closing)
        return berth__error_set(err, BERTH_EIO, "Closed", "", "the store is closing");
    berth_store_async_session_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for a session");
    if ((rc = berth__call_argv_json(argv, argc, &s->argv_json, err)) < 0) {
        free(s);
        return rc;
    }
    s->m = m;
    s->state = S_HOST;
    snprintf(s->key, sizeof s->key, "%s", key);
    snprintf(s->container, sizeof s->container, "%s", container);
    s->tty = tty;
    s->rows = rows;
    s->cols = cols;
    s->start_ms = start_ms;
    s->cb = cb;
    s->data = data;
    s->said_ms = berth__clock_monotonic_ms();
    s->tick = evtimer_new(m->base, on_tick, s);
    s->deliver = event_new(m->base, -1, 0, on_deliver, s);
    if (s->tick == NULL || s->deliver == NULL) {
        session_free(s);
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for a session");
    }
    rc = berth_store_async_group_read(store, key, on_host, s, err);
    if (rc < 0) {
        session_free(s);
        return rc;
    }
    s->refs++;
    s->next = m->head;
    if (m->head != NULL)
        m->head->prev = s;
    m->head = s;
    *out = s;
    return 0;
}

/* The checks input makes. */
static int can_say(const berth_store_async_session_t *s, berth_error_t *err)
{
    if (s == NULL || s->user_closed || s->m == NULL || s->state == S_ENDED)
        return berth__error_set(err, BERTH_EINVAL, "SessionEnded", "",
                                "the session has ended");
    return 0;
}

static int said(int rc, berth_error_t *err)
{
    if (rc == BERTH_ENOMEM)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for input");
    if (rc < 0)
        return berth__error_set(err, BERTH_EIO, "RedisUnavailable", "",
                                "the session's input could not be sent");
    return 0;
}

int berth_store_async_session_input(berth_store_async_session_t *s, const char *bytes,
                                    size_t len, berth_error_t *err)
{
    int rc = can_say(s, err);
    if (rc < 0)
        return rc;
    if (len > BERTH_SESSION_CHUNK_MAX)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "len",
                                "a chunk of input is at most %u bytes", BERTH_SESSION_CHUNK_MAX);
    return said(len == 0 ? say(s, 'e', NULL, 0) : say(s, 'i', bytes, len), err);
}

int berth_store_async_session_resize(berth_store_async_session_t *s, uint16_t rows,
                                     uint16_t cols, berth_error_t *err)
{
    int rc = can_say(s, err);
    if (rc < 0)
        return rc;
    char size[16];
    int n = snprintf(size, sizeof size, "%u %u", rows, cols);
    return said(say(s, 'r', size, (size_t)n), err);
}

size_t berth_store_async_session_backlog(const berth_store_async_session_t *s)
{
    return s != NULL ? s->backlog : 0;
}

void berth_store_async_session_hold(berth_store_async_session_t *s, bool hold)
{
    if (s == NULL || s->hold == hold)
        return;
    s->hold = hold;
    if (!hold && s->m != NULL)
        fetch(s);
}

void berth_store_async_session_close(berth_store_async_session_t *s)
{
    if (s == NULL || s->user_closed)
        return;
    /* The agent ends the process (it was asked, or it hears the session's
     * silence). */
    if (s->m != NULL && (s->state == S_OPEN || s->state == S_ADD))
        push(s, 'k', NULL, 0);
    s->user_closed = true;
    if (s->tick != NULL)
        evtimer_del(s->tick);
    maybe_free(s);
}
