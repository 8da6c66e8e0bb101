/*
 * store_conn.c: the store's connection to Redis.  One blocking hiredis
 * context per store: connecting (URL parsing, timeouts), loading Berth's
 * Functions, one command (berth__store_command(): a Cluster redirection
 * followed, lost Functions reloaded, one reconnect for a read), one
 * MULTI/EXEC transaction, reading replies, and the SIGPIPE guard every
 * call that writes to Redis wears (store.h: BERTH__RETURN_GUARDED).
 *
 * This file knows nothing of records, the replica or the engine.  It must
 * never retry a commit whose reply was lost (it may or may not have been
 * applied: the caller is told, the store marked stale), never hold a
 * redisReply past the call that made it, and never change a caller's
 * signal dispositions.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "store-internal.h"

int berth__redis_unavailable(berth_store_t *s, berth_error_t *err, const char *what)
{
    const char *why = s->c != NULL && s->c->err ? s->c->errstr : "connection lost";
    return berth__error_set(err, BERTH_EIO, "RedisUnavailable", "",
                            "Redis at %s is unavailable while %s: %s", s->url, what, why);
}

int berth__redis_error(berth_error_t *err, const redisReply *r, const char *what)
{
    return berth__error_set(err, BERTH_EIO, "RedisError", "", "Redis refused %s: %.*s", what,
                            (int)(r->len > 400 ? 400 : r->len), r->str);
}

void berth__store_key(const berth_store_t *s, char *out, size_t cap, const char *kind,
                      const char *name)
{
    snprintf(out, cap, "%s%s%s", s->prefix, kind, name);
}

/* Contract (store.h): a connection of the caller's own. */
int berth__store_connect_new(const berth_store_t *s, struct redisContext **out,
                             berth_error_t *err)
{
    *out = NULL;
    struct timeval tv = {(time_t)(s->opts.timeout_ms / 1000),
                         (suseconds_t)(s->opts.timeout_ms % 1000) * 1000};
    redisContext *c = s->port == 0 ? redisConnectUnixWithTimeout(s->host, tv)
                                   : redisConnectWithTimeout(s->host, s->port, tv);
    if (c == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "no memory for a Redis connection");
    if (c->err) {
        int rc = berth__error_set(err, BERTH_EIO, "RedisUnavailable", "url",
                                  "cannot connect to Redis at %s: %s", s->url, c->errstr);
        redisFree(c);
        return rc;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        int rc = berth__error_set(err, BERTH_EIO, "RedisUnavailable", "url",
                                  "cannot set the Redis timeout on %s: %s", s->url, c->errstr);
        redisFree(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* Opens a new connection to s->host/s->port, replacing the old one. */
int berth__store_connect(berth_store_t *s, berth_error_t *err)
{
    if (s->c != NULL) {
        redisFree(s->c);
        s->c = NULL;
    }
    redisContext *c;
    int rc = berth__store_connect_new(s, &c, err);
    if (rc == 0)
        s->c = c;
    return rc;
}

int berth__functions_load(berth_store_t *s, berth_error_t *err)
{
    redisReply *r = redisCommand(s->c, "FUNCTION LOAD REPLACE %s", berth__functions_source);
    if (r == NULL)
        return berth__redis_unavailable(s, err, "loading Berth's Redis Functions");
    int rc = 0;
    if (r->type == REDIS_REPLY_ERROR)
        rc = berth__redis_error(err, r, "Berth's Redis Functions");
    freeReplyObject(r);
    return rc;
}

/* Reads "MOVED <slot> <ip>:<port>" and points the store at that node,
 * without connecting.  Returns 0 or a negative code. */
int berth__store_redirect(berth_store_t *s, const redisReply *r, berth_error_t *err)
{
    char target[256];
    unsigned slot;
    if (sscanf(r->str, "MOVED %u %255s", &slot, target) != 2)
        return berth__redis_error(err, r, "a command (unreadable redirection)");
    char *colon = strrchr(target, ':');
    if (colon == NULL)
        return berth__redis_error(err, r, "a command (unreadable redirection)");
    *colon = '\0';
    long port = strtol(colon + 1, NULL, 10);
    if (port <= 0 || port > 65535)
        return berth__redis_error(err, r, "a command (unreadable redirection)");
    snprintf(s->host, sizeof s->host, "%s", target);
    s->port = (int)port;
    snprintf(s->url, sizeof s->url, "redis://%s:%ld", target, port);
    return 0;
}

/* Follows "MOVED <slot> <ip>:<port>": connects to that node and loads the
 * functions there.  Returns 0 or a negative code. */
static int follow_moved(berth_store_t *s, const redisReply *r, berth_error_t *err)
{
    int rc = berth__store_redirect(s, r, err);
    if (rc < 0)
        return rc;
    rc = berth__store_connect(s, err);
    if (rc < 0)
        return rc;
    return berth__functions_load(s, err);
}

bool berth__reply_is_moved(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR && strncmp(r->str, "MOVED ", 6) == 0;
}

bool berth__reply_is_no_function(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR && strstr(r->str, "Function not found") != NULL;
}

/* Contract: store.h. */
void berth__wait_words(const berth_store_t *s, berth__wait_words_t *w)
{
    snprintf(w->replicas, sizeof w->replicas, "%u", s->opts.wait_replicas);
    snprintf(w->ms, sizeof w->ms, "%u", s->opts.wait_timeout_ms);
    w->argv[0] = "WAIT";
    w->argv[1] = w->replicas;
    w->argv[2] = w->ms;
}

/* Contract: store.h. */
bool berth__wait_confirmed(const berth_store_t *s, const redisReply *r, const char *what,
                           berth_error_t *err)
{
    if (r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= 0 &&
        (uint64_t)r->integer >= s->opts.wait_replicas)
        return true;
    if (r != NULL && r->type == REDIS_REPLY_INTEGER)
        berth__error_set(err, BERTH_EIO, "NotReplicated", "",
                         "%s: applied by the Redis master, but %lld of the %u replicas asked "
                         "for confirmed it within %u ms; it is not acknowledged (a master "
                         "lost now could lose it)", what, r->integer, s->opts.wait_replicas,
                         s->opts.wait_timeout_ms);
    else
        berth__error_set(err, BERTH_EIO, "NotReplicated", "",
                         "%s: applied, but Redis's WAIT for %u replicas %s%.200s", what,
                         s->opts.wait_replicas, r == NULL ? "got no answer" : "failed: ",
                         r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : "");
    return false;
}

/* A commit that Redis applied (reply r) waits for the replicas the store
 * asks for: r, or NULL with *rc set (r freed) when they did not confirm
 * it.  The replica then reads the commit back from the log. */
static redisReply *commit_waited(berth_store_t *s, redisReply *r, const char *what,
                                 berth_error_t *err, int *rc)
{
    if (s->opts.wait_replicas == 0)
        return r;
    berth__wait_words_t w;
    berth__wait_words(s, &w);
    redisReply *wr = redisCommandArgv(s->c, 3, w.argv, NULL);
    bool ok = berth__wait_confirmed(s, wr, what, err);
    if (wr != NULL)
        freeReplyObject(wr);
    if (ok)
        return r;
    freeReplyObject(r);
    s->stale = true;
    if (s->c != NULL && s->c->err && berth__store_connect(s, NULL) < 0)
        s->c = NULL;
    *rc = BERTH_EIO;
    return NULL;
}

/* Runs one command and returns its reply (free with freeReplyObject), or
 * NULL with *rc set.  Follows a Cluster redirection, reloads the functions
 * when Redis lost them (a restart without persistence, FUNCTION FLUSH) and
 * retries once.  A lost connection is reconnected and the command retried
 * only when `commit` is false: a commit whose reply was lost may or may not
 * have been applied, and must never be reported either way.  A commit
 * Redis applied waits for the replicas the options ask for (WAIT): when
 * they do not confirm it, NULL with *rc BERTH_EIO ("NotReplicated"). */
redisReply *berth__store_command(berth_store_t *s, int argc, const char **argv, const size_t *lens,
                                 bool commit, const char *what, berth_error_t *err, int *rc)
{
    bool reconnected = false, redirected = false, reloaded = false;
    for (;;) {
        redisReply *r = s->c != NULL ? redisCommandArgv(s->c, argc, argv, lens) : NULL;
        if (r == NULL) {
            if (commit || reconnected) {
                *rc = berth__redis_unavailable(s, err, what);
                /* The connection is unusable now; the next call reconnects. */
                if (s->c != NULL && s->c->err && berth__store_connect(s, NULL) < 0)
                    s->c = NULL;
                s->stale = s->stale || commit;
                return NULL;
            }
            reconnected = true;
            if ((*rc = berth__store_connect(s, err)) < 0)
                return NULL;
            continue;
        }
        if (berth__reply_is_moved(r) && !redirected) {
            redirected = true;
            *rc = follow_moved(s, r, err);
            freeReplyObject(r);
            if (*rc < 0)
                return NULL;
            continue;
        }
        if (berth__reply_is_no_function(r) && !reloaded) {
            reloaded = true;
            freeReplyObject(r);
            if ((*rc = berth__functions_load(s, err)) < 0)
                return NULL;
            continue;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            *rc = berth__redis_error(err, r, what);
            freeReplyObject(r);
            return NULL;
        }
        *rc = 0;
        return commit ? commit_waited(s, r, what, err, rc) : r;
    }
}

/* ---- replies --------------------------------------------------------------------------------- */

/* Finds a field of a stream entry's [field, value, ...] array. */
const redisReply *berth__reply_field(const redisReply *fields, const char *name)
{
    if (fields == NULL || fields->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *f = fields->element[i];
        if (f->type == REDIS_REPLY_STRING && strcmp(f->str, name) == 0)
            return fields->element[i + 1];
    }
    return NULL;
}

bool berth__reply_u64(const redisReply *r, uint64_t *out)
{
    if (r == NULL)
        return false;
    if (r->type == REDIS_REPLY_INTEGER && r->integer >= 0) {
        *out = (uint64_t)r->integer;
        return true;
    }
    if (r->type != REDIS_REPLY_STRING || r->len == 0)
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(r->str, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

/* ---- transactions ---------------------------------------------------------------------------- */

/* Sends MULTI, the `n` commands and EXEC as one pipeline and returns EXEC's
 * reply (an array of the n replies), following a redirection once. */
redisReply *berth__store_transaction(berth_store_t *s, size_t n, const char *const *const *argvs,
                                     const int *argcs, const char *what, berth_error_t *err,
                                     int *rc)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (s->c == NULL && (*rc = berth__store_connect(s, err)) < 0)
            return NULL;
        redisAppendCommand(s->c, "MULTI");
        for (size_t i = 0; i < n; i++)
            redisAppendCommandArgv(s->c, argcs[i], (const char **)argvs[i], NULL);
        redisAppendCommand(s->c, "EXEC");
        redisReply *moved = NULL, *exec = NULL;
        bool lost = false;
        for (size_t i = 0; i < n + 2; i++) {
            void *r = NULL;
            if (redisGetReply(s->c, &r) != REDIS_OK || r == NULL) {
                lost = true;
                break;
            }
            redisReply *rr = r;
            if (i == n + 1) {
                exec = rr;
            } else if (moved == NULL && berth__reply_is_moved(rr)) {
                moved = rr;
            } else {
                freeReplyObject(rr);
            }
        }
        if (lost) {
            freeReplyObject(moved);
            if (attempt == 0 && berth__store_connect(s, NULL) == 0)
                continue;
            *rc = berth__redis_unavailable(s, err, what);
            return NULL;
        }
        if (moved != NULL) {
            freeReplyObject(exec);
            if (attempt == 0) {
                *rc = follow_moved(s, moved, err);
                freeReplyObject(moved);
                if (*rc < 0)
                    return NULL;
                continue;
            }
            *rc = berth__redis_error(err, moved, what);
            freeReplyObject(moved);
            return NULL;
        }
        if (exec->type != REDIS_REPLY_ARRAY || exec->elements != n) {
            *rc = exec->type == REDIS_REPLY_ERROR
                ? berth__redis_error(err, exec, what)
                : berth__error_set(err, BERTH_EIO, "RedisError", "",
                                   "Redis aborted the transaction while %s", what);
            freeReplyObject(exec);
            return NULL;
        }
        for (size_t i = 0; i < n; i++)
            if (exec->element[i]->type == REDIS_REPLY_ERROR) {
                *rc = berth__redis_error(err, exec->element[i], what);
                freeReplyObject(exec);
                return NULL;
            }
        *rc = 0;
        return exec;
    }
    *rc = berth__redis_unavailable(s, err, what);
    return NULL;
}

/* ---- the URL --------------------------------------------------------------------------------- */

/* Parses the URL into s->host and s->port. */
int berth__store_url_parse(berth_store_t *s, const char *url, berth_error_t *err)
{
    if (url == NULL || strlen(url) >= BERTH__URL_MAX)
        return berth__error_set(err, BERTH_EINVAL, "InvalidStoreOptions", "url",
                                "a Redis URL is redis://HOST:PORT or unix:///PATH");
    snprintf(s->url, sizeof s->url, "%s", url);
    if (strncmp(url, "unix://", 7) == 0) {
        if (url[7] != '/')
            return berth__error_set(err, BERTH_EINVAL, "InvalidStoreOptions", "url",
                                    "'%s': a unix socket URL is unix:///ABSOLUTE/PATH", url);
        snprintf(s->host, sizeof s->host, "%s", url + 7);
        s->port = 0;
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0 || url[8] == '\0')
        return berth__error_set(err, BERTH_EINVAL, "InvalidStoreOptions", "url",
                                "'%s' is not redis://HOST:PORT or unix:///PATH", url);
    const char *hp = url + 8;
    const char *colon = strrchr(hp, ':');
    long port = 6379;
    size_t hlen = strlen(hp);
    if (colon != NULL) {
        char *end;
        port = strtol(colon + 1, &end, 10);
        if (*end != '\0' && *end != '/')
            port = -1;
        hlen = (size_t)(colon - hp);
    } else if (hlen > 0 && hp[hlen - 1] == '/') {
        hlen--;
    }
    if (port <= 0 || port > 65535 || hlen == 0)
        return berth__error_set(err, BERTH_EINVAL, "InvalidStoreOptions", "url",
                                "'%s' has no valid host and port", url);
    memcpy(s->host, hp, hlen);
    s->host[hlen] = '\0';
    s->port = (int)port;
    return 0;
}

/* ---- the SIGPIPE guard --------------------------------------------------------------------- */

/* hiredis writes with write(2).  When Redis has gone away the kernel raises
 * SIGPIPE, whose default action kills the process: a library must neither
 * kill its caller nor change the caller's signal dispositions.  So every
 * public call blocks SIGPIPE in its thread (the write then fails with EPIPE
 * and the call reports BERTH_EIO), consumes a SIGPIPE the call itself raised,
 * and restores the thread's mask: BERTH__RETURN_GUARDED() (store.h) around
 * the call's work, or these two around a stretch of it (a nested guard is
 * harmless: the inner one leaves SIGPIPE blocked and a signal raised before
 * it to the outer one). */

void berth__sigpipe_block(berth__sigpipe_guard_t *g)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    g->pending_before = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

void berth__sigpipe_unblock(berth__sigpipe_guard_t *g)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    if (!g->pending_before && sigismember(&pending, SIGPIPE) == 1) {
        const struct timespec zero = {0, 0};
        while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
            continue;
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* ---- the connection, for calls.c ------------------------------------------------------------ */

struct redisContext *berth__store_redis(berth_store_t *s)
{
    return s->c;
}

void berth__store_timeout_restore(berth_store_t *s)
{
    if (s->c == NULL)
        return;
    struct timeval tv = {(time_t)(s->opts.timeout_ms / 1000),
                         (suseconds_t)(s->opts.timeout_ms % 1000) * 1000};
    redisSetTimeout(s->c, tv);
}
