/*
 * session.c: the agent's end of an interactive session (berth.h,
 * "interactive sessions"), and the wire both ends of a session share.
 *
 * The wire.  A session is a call (calls.c) with op "session", its words
 * in argv and fields tty, rows and cols.  Its reply key K (berth:{C}:reply:
 * <id>) is a list the agent pushes to and the caller pops; K:in is a list
 * the caller pushes to and the agent pops.  Every element is one chunk
 * whose first byte says what it is:
 *   agent -> caller (K):    'a' alive (the first one: started), 'o' + output
 *                           bytes, 'x' + the answer header calls.c writes
 *                           ({"ok": true, "exitCode": N} or a failure): the end
 *   caller -> agent (K:in): 'i' + input bytes, 'e' end of input,
 *                           'r' + "ROWS COLS", 'p' still there, 'k' end it
 * The agent announces K on the cell's replies channel when it pushes to an
 * empty list (the caller pops everything there when it hears of it) and
 * with every 'a' and 'x'.  Each push sets its list to expire after
 * SESSION_TTL_MS, so nothing outlives two silent ends.
 *
 * This file must never block on its input connection (one BLPOP is kept
 * in flight there, read only when its descriptor polls readable), never
 * wait on its output connection beyond the store's command timeout, and
 * never keep a reply past the call after the one that returned it.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "store.h"
#include "lib/clock.h"

#define IN_WAIT_S "1"               /* BLPOP's bound: a silent caller is checked */
#define SESSION_TTL_MS "60000"

struct berth_session_link {
    redisContext *in;               /* the BLPOP kept in flight             */
    redisContext *out;              /* pushes and announcements             */
    char k_out[sizeof ((berth_call_t *)0)->reply];
    char k_in[sizeof ((berth_call_t *)0)->reply + 4];
    char channel[BERTH__KEYNAME_MAX];
    redisReply *held;               /* what the last message points into    */
    bool waiting;                   /* a BLPOP is out on `in`               */
    int64_t heard_ms;               /* the caller's last word               */
};

static int link_failed(berth_error_t *err, const redisContext *c, const char *what)
{
    return berth__error_set(err, BERTH_EIO, "RedisUnavailable", "",
                            "the session's Redis connection failed while %s: %s", what,
                            c != NULL && c->errstr[0] != '\0' ? c->errstr : "no answer");
}

/* Sends a BLPOP of the input list without waiting for its answer. */
static int ask(berth_session_link_t *s, berth_error_t *err)
{
    const char *argv[] = {"BLPOP", s->k_in, IN_WAIT_S};
    if (redisAppendCommandArgv(s->in, 3, argv, NULL) != REDIS_OK)
        return link_failed(err, s->in, "asking for input");
    int done = 0;
    while (!done)
        if (redisBufferWrite(s->in, &done) != REDIS_OK)
            return link_failed(err, s->in, "asking for input");
    s->waiting = true;
    return 0;
}

static int link_open(berth_hostlink_t *link, const berth_call_t *call,
                     berth_session_link_t **out, berth_error_t *err)
{
    *out = NULL;
    if (call == NULL || call->op != BERTH_CALL_SESSION)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "call",
                                "the call is not a session");
    berth_session_link_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "no memory for a session");
    berth_store_t *store = berth__hostlink_store(link);
    snprintf(s->k_out, sizeof s->k_out, "%s", call->reply);
    snprintf(s->k_in, sizeof s->k_in, "%s:in", call->reply);
    berth__store_key(store, s->channel, sizeof s->channel, BERTH__CALL_CHANNEL, "");
    s->heard_ms = berth__clock_monotonic_ms();
    int rc = berth__store_connect_new(store, &s->in, err);
    if (rc == 0)
        rc = berth__store_connect_new(store, &s->out, err);
    if (rc == 0)
        rc = ask(s, err);
    if (rc < 0) {
        berth_session_link_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

int berth_hostlink_session_open(berth_hostlink_t *link, const berth_call_t *call,
                                berth_session_link_t **out, berth_error_t *err)
{
    BERTH__RETURN_GUARDED(link_open(link, call, out, err));
}

int berth_session_link_fd(const berth_session_link_t *s)
{
    return s->in->fd;
}

/* What a chunk from the caller says; false for one of no meaning here
 * (a 'p', or something unknown: dropped). */
static bool parse(const redisReply *v, berth_session_msg_t *msg)
{
    memset(msg, 0, sizeof *msg);
    if (v->type != REDIS_REPLY_STRING || v->len == 0)
        return false;
    switch (v->str[0]) {
    case 'i':
        msg->kind = BERTH_SESSION_INPUT;
        msg->bytes = v->str + 1;
        msg->len = v->len - 1;
        return msg->len > 0;
    case 'e':
        msg->kind = BERTH_SESSION_EOF;
        return true;
    case 'k':
        msg->kind = BERTH_SESSION_END;
        return true;
    case 'r': {
        unsigned rows = 0, cols = 0;
        if (sscanf(v->str + 1, "%u %u", &rows, &cols) != 2 || rows > UINT16_MAX ||
            cols > UINT16_MAX)
            return false;
        msg->kind = BERTH_SESSION_RESIZE;
        msg->rows = (uint16_t)rows;
        msg->cols = (uint16_t)cols;
        return true;
    }
    }
    return false;
}

static int link_next(berth_session_link_t *s, berth_session_msg_t *msg, berth_error_t *err)
{
    freeReplyObject(s->held);
    s->held = NULL;
    if (!s->waiting && ask(s, err) < 0)
        return BERTH_EIO;
    /* Read only what is there: the socket blocks (until BLPOP's bound). */
    struct pollfd p = {s->in->fd, POLLIN, 0};
    if (poll(&p, 1, 0) > 0 && redisBufferRead(s->in) != REDIS_OK)
        return link_failed(err, s->in, "reading input");
    for (;;) {
        void *r = NULL;
        if (redisGetReplyFromReader(s->in, &r) != REDIS_OK)
            return link_failed(err, s->in, "reading input");
        if (r == NULL)
            break; /* the BLPOP's answer is not (all) here yet */
        redisReply *reply = r;
        s->waiting = false;
        if (reply->type == REDIS_REPLY_ERROR) {
            int rc = berth__redis_error(err, reply, "reading input");
            freeReplyObject(reply);
            return rc;
        }
        bool got = reply->type == REDIS_REPLY_ARRAY && reply->elements == 2;
        if (got)
            s->heard_ms = berth__clock_monotonic_ms();
        if (ask(s, err) < 0) {
            freeReplyObject(reply);
            return BERTH_EIO;
        }
        if (got && parse(reply->element[1], msg)) {
            s->held = reply;
            return 1;
        }
        freeReplyObject(reply);
    }
    if (berth__clock_monotonic_ms() - s->heard_ms > (int64_t)BERTH_SESSION_SILENCE_MS) {
        memset(msg, 0, sizeof *msg);
        msg->kind = BERTH_SESSION_END;
        return 1;
    }
    return 0;
}

int berth_session_link_next(berth_session_link_t *s, berth_session_msg_t *msg,
                            berth_error_t *err)
{
    BERTH__RETURN_GUARDED(link_next(s, msg, err));
}

/* Pushes one chunk (tag, then len bytes), sets the list's expiry and, when
 * `announce` or the list was empty, announces it; *length (may be NULL)
 * gets the list's length after the push. */
static int push(berth_session_link_t *s, char tag, const char *bytes, size_t len,
                bool announce, size_t *length, berth_error_t *err)
{
    char *chunk = malloc(len + 1);
    if (chunk == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "no memory for a session's output");
    chunk[0] = tag;
    if (len > 0)
        memcpy(chunk + 1, bytes, len);
    const char *rpush[] = {"RPUSH", s->k_out, chunk};
    const size_t lens[] = {5, strlen(s->k_out), len + 1};
    const char *expire[] = {"PEXPIRE", s->k_out, SESSION_TTL_MS};
    int rc = 0;
    if (redisAppendCommandArgv(s->out, 3, rpush, lens) != REDIS_OK ||
        redisAppendCommandArgv(s->out, 3, expire, NULL) != REDIS_OK)
        rc = link_failed(err, s->out, "sending output");
    free(chunk);
    redisReply *r[2] = {NULL, NULL};
    for (int i = 0; rc == 0 && i < 2; i++) {
        void *v = NULL;
        if (redisGetReply(s->out, &v) != REDIS_OK)
            rc = link_failed(err, s->out, "sending output");
        r[i] = v;
        if (rc == 0 && r[i]->type == REDIS_REPLY_ERROR)
            rc = berth__redis_error(err, r[i], "sending output");
    }
    long long n = rc == 0 && r[0]->type == REDIS_REPLY_INTEGER ? r[0]->integer : 0;
    freeReplyObject(r[0]);
    freeReplyObject(r[1]);
    if (rc < 0)
        return rc;
    if (length != NULL)
        *length = (size_t)n;
    if (announce || n == 1) {
        const char *publish[] = {"PUBLISH", s->channel, s->k_out};
        void *v = redisCommandArgv(s->out, 3, publish, NULL);
        if (v == NULL)
            return link_failed(err, s->out, "announcing output");
        freeReplyObject(v);
    }
    return 0;
}

int berth_session_link_output(berth_session_link_t *s, const char *bytes, size_t len,
                              size_t *backlog, berth_error_t *err)
{
    if (len == 0 || len > BERTH_SESSION_CHUNK_MAX)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "len",
                                "a chunk of output is 1 to %u bytes", BERTH_SESSION_CHUNK_MAX);
    BERTH__RETURN_GUARDED(push(s, 'o', bytes, len, false, backlog, err));
}

static int link_backlog(berth_session_link_t *s, size_t *backlog, berth_error_t *err)
{
    const char *argv[] = {"LLEN", s->k_out};
    redisReply *r = redisCommandArgv(s->out, 2, argv, NULL);
    if (r == NULL)
        return link_failed(err, s->out, "reading the backlog");
    int rc = r->type == REDIS_REPLY_INTEGER ? 0 : berth__redis_error(err, r, "reading the backlog");
    if (rc == 0)
        *backlog = (size_t)r->integer;
    freeReplyObject(r);
    return rc;
}

int berth_session_link_backlog(berth_session_link_t *s, size_t *backlog, berth_error_t *err)
{
    BERTH__RETURN_GUARDED(link_backlog(s, backlog, err));
}

int berth_session_link_alive(berth_session_link_t *s, berth_error_t *err)
{
    BERTH__RETURN_GUARDED(push(s, 'a', NULL, 0, true, NULL, err));
}

static int link_end(berth_session_link_t *s, int exit_code, const berth_error_t *error,
                    berth_error_t *err)
{
    char *head = NULL;
    size_t len = 0;
    int rc = berth__call_header(exit_code, error, &head, &len, err);
    if (rc == 0)
        rc = push(s, 'x', head, len, true, NULL, err);
    free(head);
    return rc;
}

int berth_session_link_end(berth_session_link_t *s, int exit_code, const berth_error_t *error,
                           berth_error_t *err)
{
    BERTH__RETURN_GUARDED(link_end(s, exit_code, error, err));
}

static int link_close(berth_session_link_t *s)
{
    if (s->out != NULL) {
        const char *del[] = {"DEL", s->k_in};
        void *r = redisCommandArgv(s->out, 2, del, NULL);
        freeReplyObject(r);
        redisFree(s->out);
    }
    if (s->in != NULL)
        redisFree(s->in);
    freeReplyObject(s->held);
    free(s);
    return 0;
}

void berth_session_link_close(berth_session_link_t *s)
{
    if (s == NULL)
        return;
    berth__sigpipe_guard_t g;
    berth__sigpipe_block(&g);
    link_close(s);
    berth__sigpipe_unblock(&g);
}
