/*
 * calls.c: requests a scheduler makes of a host's agent -- a container's
 * logs, a command run in a container -- and the agent's side of them.
 *
 * A call is an entry on the host's call stream, berth:{C}:calls:<host>
 * (op logs|exec, key, container, tail, ts, argv as a JSON array, reply,
 * timeout in ms) naming a reply key, berth:{C}:reply:<random id>, which
 * the agent fills with one value: a compact JSON header ({"ok": true,
 * "exitCode": N} or {"ok": false, "code", "name", "message", "target"}), a
 * newline, then the output's raw bytes (which need not be UTF-8).  The
 * agent sets the reply to expire after a minute, so an answer nobody waits
 * for any more does not stay, and then PUBLISHes the reply key's name on
 * the cell's channel berth:{C}:replies (a channel, not a key).
 *
 * Two callers wait for answers: the blocking one here BLPOPs the reply
 * key; the asynchronous store (store_async_calls.c) subscribes to the
 * channel once and LPOPs a reply key when its name is announced, so that
 * no connection of a daemon's event loop ever blocks on an agent.  Both
 * build the call with the helpers below.  Calls are not durable work: a
 * caller that got no answer in its time reports the agent unavailable, and
 * an agent that starts skips the calls whose callers had already given up.
 *
 * This file must never keep a redisReply past the call that made it, and
 * the agent's side must never announce an answer before writing it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "store.h"
#include "lib/random.h"

#define CALLS_MAXLEN "1000"
#define REPLY_TTL_S "60"

/* ---- the caller's side --------------------------------------------------------------- */

/* Contract (store.h): a call's own arguments. */
int berth__call_check(const char *key, const char *container, uint32_t timeout_ms,
                      berth_error_t *err)
{
    if (berth__group_key_check(key, err) < 0)
        return BERTH_EINVAL;
    if (container == NULL || !berth__name_is_valid(container, BERTH_NAME_MAX))
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "container",
                                "'%s' is not a valid container name",
                                container != NULL ? container : "");
    if (timeout_ms == 0)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "timeout_ms",
                                "a call needs a timeout above zero");
    return 0;
}

/* Contract (store.h): the command words as the call entry carries them. */
int berth__call_argv_json(const char *const *argv, size_t argc, char **out, berth_error_t *err)
{
    *out = NULL;
    json_t *words = json_array();
    for (size_t i = 0; words != NULL && i < argc; i++)
        if (json_array_append_new(words, json_string(argv[i])) != 0) {
            json_decref(words);
            return berth__error_set(err, BERTH_EINVAL, "InvalidCommand", "command",
                                    "command word %zu is not valid UTF-8", i);
        }
    *out = words != NULL ? json_dumps(words, JSON_COMPACT) : NULL;
    json_decref(words);
    if (*out == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for a call");
    return 0;
}

/* Contract (store.h): the XADD of a call, with a new reply key. */
int berth__call_add_build(const berth_store_t *s, berth__call_add_t *c, const char *op,
                          const char *key, const char *container, const char *host,
                          uint32_t tail, bool timestamps, const char *argv_json,
                          uint32_t timeout_ms, berth_error_t *err)
{
    char id[33];
    if (berth__random_hex(id, 16) != 0)
        return berth__error_set(err, BERTH_EIO, "NoRandomBytes", "",
                                "no random bytes for a call's reply key (getrandom: %s)",
                                strerror(errno));
    berth__store_key(s, c->stream, sizeof c->stream, "calls:", host);
    berth__store_key(s, c->reply, sizeof c->reply, "reply:", id);
    snprintf(c->tail, sizeof c->tail, "%u", tail);
    snprintf(c->timeout, sizeof c->timeout, "%u", timeout_ms);
    const char *words[] = {"XADD", c->stream, "MAXLEN", "~", CALLS_MAXLEN, "*", "op", op,
                           "key", key, "container", container, "tail", c->tail,
                           "ts", timestamps ? "1" : "0", "argv", argv_json,
                           "reply", c->reply, "timeout", c->timeout};
    memcpy(c->argv, words, sizeof words);
    return 0;
}

/* Contract (store.h): an answer that never came. */
int berth__call_unanswered(berth_error_t *err, const char *host, uint32_t timeout_ms)
{
    return berth__error_set(err, BERTH_EIO, "AgentUnavailable", "",
                            "the agent of host %s did not answer within %u ms", host,
                            timeout_ms);
}

/* Contract (store.h): a reply value read back. */
int berth__call_answer_parse(const char *v, size_t len, char **out, size_t *out_len,
                             int *exit_code, berth_error_t *err)
{
    const char *nl = memchr(v, '\n', len);
    json_t *h = nl != NULL ? json_loadb(v, (size_t)(nl - v), 0, NULL) : NULL;
    if (h == NULL)
        return berth__error_set(err, BERTH_EIO, "AgentError", "",
                                "the agent answered something unreadable");
    int rc = 0;
    if (json_is_true(json_object_get(h, "ok"))) {
        size_t n = len - (size_t)(nl + 1 - v);
        char *copy = malloc(n + 1);
        if (copy == NULL) {
            rc = berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for output");
        } else {
            memcpy(copy, nl + 1, n);
            copy[n] = '\0';
            *out = copy;
            if (out_len != NULL)
                *out_len = n;
            if (exit_code != NULL)
                *exit_code = (int)json_integer_value(json_object_get(h, "exitCode"));
        }
    } else {
        int code = (int)json_integer_value(json_object_get(h, "code"));
        const char *name = json_string_value(json_object_get(h, "name"));
        const char *msg = json_string_value(json_object_get(h, "message"));
        const char *target = json_string_value(json_object_get(h, "target"));
        if (code >= 0 || code < BERTH_EIO)
            code = BERTH_EIO;
        rc = berth__error_set(err, code, name != NULL ? name : "AgentError",
                              target != NULL ? target : "", "%s",
                              msg != NULL ? msg : "the agent failed");
    }
    json_decref(h);
    return rc;
}

static int call(berth_store_t *s, const char *op, const char *key, const char *container,
                uint32_t tail, bool timestamps, const char *const *argv, size_t argc,
                uint32_t timeout_ms, char **out, int *exit_code, berth_error_t *err)
{
    *out = NULL;
    int rc = berth__call_check(key, container, timeout_ms, err);
    if (rc < 0)
        return rc;
    char host[BERTH_NAME_MAX + 1];
    rc = berth__store_group_record(s, key, NULL, NULL, host, sizeof host, err);
    if (rc < 0)
        return rc;
    char *argv_json;
    if ((rc = berth__call_argv_json(argv, argc, &argv_json, err)) < 0)
        return rc;
    berth__call_add_t add;
    if ((rc = berth__call_add_build(s, &add, op, key, container, host, tail, timestamps,
                                    argv_json, timeout_ms, err)) < 0) {
        free(argv_json);
        return rc;
    }
    redisReply *r = berth__store_command(s, BERTH__CALL_ADD_ARGC, add.argv, NULL, false,
                                         "calling the agent", err, &rc);
    free(argv_json);
    if (r == NULL)
        return rc;
    freeReplyObject(r);

    /* BLPOP waits in seconds; the connection's own timeout must outlast it. */
    redisContext *c = berth__store_redis(s);
    uint32_t wait_s = (timeout_ms + 999) / 1000;
    char wait[16];
    snprintf(wait, sizeof wait, "%u", wait_s);
    struct timeval longer = {(time_t)wait_s + 5, 0};
    if (c != NULL)
        redisSetTimeout(c, longer);
    const char *blpop[] = {"BLPOP", add.reply, wait};
    r = berth__store_command(s, 3, blpop, NULL, true, "waiting for the agent", err, &rc);
    berth__store_timeout_restore(s);
    if (r == NULL)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[1]->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        return berth__call_unanswered(err, host, timeout_ms);
    }
    rc = berth__call_answer_parse(r->element[1]->str, r->element[1]->len, out, NULL, exit_code,
                                  err);
    freeReplyObject(r);
    return rc;
}

int berth_store_container_logs(berth_store_t *store, const char *key, const char *container,
                               uint32_t tail, bool timestamps, uint32_t timeout_ms, char **out,
                               berth_error_t *err)
{
    berth__sigpipe_guard_t g;
    berth__sigpipe_block(&g);
    int rc = call(store, "logs", key, container, tail, timestamps, NULL, 0, timeout_ms, out,
                  NULL, err);
    berth__sigpipe_unblock(&g);
    return rc;
}

int berth_store_container_exec(berth_store_t *store, const char *key, const char *container,
                               const char *const *argv, size_t argc, uint32_t timeout_ms,
                               char **out, int *exit_code, berth_error_t *err)
{
    if (argc == 0 || argv == NULL) {
        *out = NULL;
        return berth__error_set(err, BERTH_EINVAL, "InvalidCommand", "command",
                                "no command given");
    }
    berth__sigpipe_guard_t g;
    berth__sigpipe_block(&g);
    int rc = call(store, "exec", key, container, 0, false, argv, argc, timeout_ms, out,
                  exit_code, err);
    berth__sigpipe_unblock(&g);
    return rc;
}

/* ---- the agent's side --------------------------------------------------------------- */

void berth_call_free(berth_call_t *call)
{
    if (call == NULL)
        return;
    for (size_t i = 0; i < call->argc; i++)
        free(call->argv[i]);
    free(call->argv);
    free(call);
}

/* berth__reply_field(), for a member whose value must be a string. */
static const redisReply *field(const redisReply *fields, const char *name)
{
    const redisReply *v = berth__reply_field(fields, name);
    return v != NULL && v->type == REDIS_REPLY_STRING ? v : NULL;
}

/* Builds a call from a stream entry's fields; NULL when malformed. */
berth_call_t *berth__call_parse(const struct redisReply *fields)
{
    const redisReply *op = field(fields, "op"), *key = field(fields, "key"),
                     *ctr = field(fields, "container"), *tail = field(fields, "tail"),
                     *ts = field(fields, "ts"), *argv = field(fields, "argv"),
                     *reply = field(fields, "reply"), *timeout = field(fields, "timeout");
    if (op == NULL || key == NULL || ctr == NULL || reply == NULL ||
        key->len > BERTH_GROUP_KEY_MAX || ctr->len > BERTH_NAME_MAX ||
        reply->len >= sizeof ((berth_call_t *)0)->reply)
        return NULL;
    berth_call_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->op = strcmp(op->str, "logs") == 0 ? BERTH_CALL_LOGS
          : strcmp(op->str, "exec") == 0 ? BERTH_CALL_EXEC
          : strcmp(op->str, "session") == 0 ? BERTH_CALL_SESSION : 0;
    memcpy(c->key, key->str, key->len + 1);
    memcpy(c->container, ctr->str, ctr->len + 1);
    memcpy(c->reply, reply->str, reply->len + 1);
    c->tail = tail != NULL ? (uint32_t)strtoul(tail->str, NULL, 10) : 0;
    c->timestamps = ts != NULL && strcmp(ts->str, "1") == 0;
    c->timeout_ms = timeout != NULL ? (uint32_t)strtoul(timeout->str, NULL, 10) : 0;
    const redisReply *tty = field(fields, "tty"), *rows = field(fields, "rows"),
                     *cols = field(fields, "cols");
    c->tty = tty != NULL && strcmp(tty->str, "1") == 0;
    unsigned long r = rows != NULL ? strtoul(rows->str, NULL, 10) : 0;
    unsigned long k = cols != NULL ? strtoul(cols->str, NULL, 10) : 0;
    c->rows = (uint16_t)(r <= UINT16_MAX ? r : 0);
    c->cols = (uint16_t)(k <= UINT16_MAX ? k : 0);
    if (argv != NULL) {
        json_t *a = json_loadb(argv->str, argv->len, 0, NULL);
        size_t n = json_is_array(a) ? json_array_size(a) : 0;
        c->argv = n > 0 ? calloc(n, sizeof *c->argv) : NULL;
        for (size_t i = 0; c->argv != NULL && i < n; i++) {
            const char *w = json_string_value(json_array_get(a, i));
            c->argv[i] = strdup(w != NULL ? w : "");
            if (c->argv[i] == NULL)
                break;
            c->argc++;
        }
        json_decref(a);
    }
    if (c->op == 0 || (c->op != BERTH_CALL_LOGS && c->argc == 0)) {
        berth_call_free(c);
        return NULL;
    }
    return c;
}

/* Contract (store.h): an answer's header line. */
int berth__call_header(int exit_code, const berth_error_t *error, char **out, size_t *len,
                       berth_error_t *err)
{
    json_t *h = error == NULL
        ? json_pack("{s:b,s:i}", "ok", 1, "exitCode", exit_code)
        : json_pack("{s:b,s:i,s:s,s:s,s:s}", "ok", 0, "code", error->code, "name", error->name,
                    "message", error->message, "target", error->target);
    char *head = h != NULL ? json_dumps(h, JSON_COMPACT) : NULL;
    json_decref(h);
    char *line = NULL;
    if (head == NULL || asprintf(&line, "%s\n", head) < 0)
        line = NULL;
    free(head);
    *out = line;
    *len = line != NULL ? strlen(line) : 0;
    if (line == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for a reply");
    return 0;
}

int berth__call_reply(berth_store_t *s, const berth_call_t *call, const char *output,
                      size_t len, int exit_code, const berth_error_t *error, berth_error_t *err)
{
    char *head;
    size_t hl;
    int rc = berth__call_header(exit_code, error, &head, &hl, err);
    if (rc < 0)
        return rc;
    size_t n = error == NULL && output != NULL ? len : 0;
    char *value = malloc(hl + n + 1);
    if (value == NULL) {
        free(head);
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for a reply");
    }
    memcpy(value, head, hl);
    if (n > 0)
        memcpy(value + hl, output, n);
    free(head);
    const char *argv[] = {"RPUSH", call->reply, value};
    const size_t lens[] = {5, strlen(call->reply), hl + n};
    redisReply *r = berth__store_command(s, 3, argv, lens, true, "answering a call", err, &rc);
    free(value);
    if (r == NULL)
        return rc;
    freeReplyObject(r);
    const char *expire[] = {"EXPIRE", call->reply, REPLY_TTL_S};
    r = berth__store_command(s, 3, expire, NULL, false, "answering a call", err, &rc);
    if (r == NULL)
        return rc;
    freeReplyObject(r);
    /* Only now that the answer is there: a caller that hears of it reads
     * it at once.  A message sent twice (a retry after a reconnect) finds
     * the list already empty, which its caller ignores. */
    char channel[BERTH__KEYNAME_MAX];
    berth__store_key(s, channel, sizeof channel, BERTH__CALL_CHANNEL, "");
    const char *publish[] = {"PUBLISH", channel, call->reply};
    r = berth__store_command(s, 3, publish, NULL, false, "announcing an answer", err, &rc);
    if (r == NULL)
        return rc;
    freeReplyObject(r);
    return 0;
}
