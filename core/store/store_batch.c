/*
 * store_batch.c: many placements committed together.  FCALL
 * berth_place_many's words (the berth__many_* builders, shared with the
 * asynchronous store), and berth_store_place_batch(): rounds of choices,
 * pipelined calls of up to BERTH__PLACE_MANY_MAX placements each, answers
 * applied from the replies while they are the log's next entries, and the
 * Regular groups that found no room preempting one at a time.
 *
 * This file must never report a placement placed whose answer it did not
 * read, never commit one key twice in a round (the second commit must see
 * the first's generation), and never leave the replica behind the commits
 * it made (it catches up before returning).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "store-internal.h"

/* Hands what hiredis has buffered to Redis now, so that Redis works on the
 * first commits of a batch while the next ones are built.  A failure is
 * left in the context (s->c->err) for the next read to report. */
static void flush_some(berth_store_t *s)
{
    int done = 0;
    while (!done && s->c->err == 0)
        if (redisBufferWrite(s->c, &done) != REDIS_OK)
            break;
}

/* Contract: store.h. */
void berth__many_clear(berth__many_call_t *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->rec[i]);
    free(m->argv);
    free(m->lens);
    m->argv = NULL;
    m->lens = NULL;
    m->argc = 0;
    m->n = 0;
}

/* Contract: store.h. */
int berth__many_add(berth_store_t *s, berth__many_call_t *m, const berth__pending_t *p,
                    const berth__effects_t *fx, berth_error_t *err)
{
    berth__place_call_t *c = &m->one[m->n];
    int rc = berth__store_place_call(s, p, c, err);
    if (rc < 0)
        return rc;
    size_t rlen = c->lens[15], llen = c->lens[21];
    char *copy = malloc(rlen + llen + 2);
    if (copy == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "no memory for a batch of placements");
    memcpy(copy, c->argv[15], rlen);
    memcpy(copy + rlen + 1, c->argv[21], llen);
    c->argv[15] = copy;
    c->argv[21] = copy + rlen + 1;
    m->rec[m->n] = copy;
    m->fx[m->n] = fx;
    snprintf(m->ne[m->n], sizeof m->ne[0], "%zu", fx != NULL ? fx->n : 0);
    m->n++;
    return 0;
}

/* Contract: store.h. */
int berth__many_finish(berth_store_t *s, berth__many_call_t *m, berth_error_t *err)
{
    size_t words = 3 + 5 + 2;
    for (size_t i = 0; i < m->n; i++) {
        size_t ne = m->fx[i] != NULL ? m->fx[i]->n : 0;
        words += 4 + ne + 10 + 4 * ne;
    }
    free(m->argv);
    free(m->lens);
    m->argv = malloc(words * sizeof *m->argv);
    m->lens = malloc(words * sizeof *m->lens);
    if (m->argv == NULL || m->lens == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "no memory for a batch of placements");
    size_t a = 0, nkeys = 5;
#define PUT(str, len) (m->argv[a] = (str), m->lens[a] = (len), a++)
#define PUTS(str) PUT((str), strlen(str))
    PUTS("FCALL");
    PUTS("berth_place_many");
    PUTS(m->numkeys);               /* written below, once counted */
    PUTS(s->k_hosts);
    PUTS(s->k_groups);
    PUTS(s->k_log);
    PUTS(s->k_seq);
    PUTS(s->k_documents);
    for (size_t i = 0; i < m->n; i++) {
        for (int k = 7; k <= 10; k++)       /* hostgroups and assign, new and old */
            PUT(m->one[i].argv[k], m->one[i].lens[k]);
        nkeys += 4;
        for (size_t e = 0; m->fx[i] != NULL && e < m->fx[i]->n; e++, nkeys++)
            PUTS(m->fx[i]->e[e].key);
    }
    snprintf(m->numkeys, sizeof m->numkeys, "%zu", nkeys);
    m->lens[2] = strlen(m->numkeys);
    snprintf(m->count, sizeof m->count, "%zu", m->n);
    PUTS(m->count);
    PUTS(s->maxlen);
    for (size_t i = 0; i < m->n; i++) {
        static const int words_of_place[] = {12, 13, 14, 15, 17, 18, 19, 20, 21};
        for (size_t k = 0; k < sizeof words_of_place / sizeof words_of_place[0]; k++)
            PUT(m->one[i].argv[words_of_place[k]], m->one[i].lens[words_of_place[k]]);
        PUTS(m->ne[i]);
        for (size_t e = 0; m->fx[i] != NULL && e < m->fx[i]->n; e++) {
            const berth__effect_copy_t *c = &m->fx[i]->e[e];
            PUTS(c->op);
            PUTS(c->field);
            PUT(c->value, c->value_len);
            PUTS(c->n);
        }
    }
#undef PUTS
#undef PUT
    m->argc = (int)a;
    return 0;
}

int berth__store_place_batch(berth_store_t *store, size_t n, const char *const *keys,
                             const berth_request_t *requests, berth_placement_t *outs,
                             int *results, berth_error_t *err)
{
    berth_store_t *s = store;
    if (n == 0)
        return 0;
    berth__pending_t *ps = calloc(n, sizeof *ps);
    size_t *chosen = malloc(n * sizeof *chosen);
    berth__many_call_t *call = calloc(1, sizeof *call);
    if (ps == NULL || chosen == NULL || call == NULL) {
        free(ps);
        free(chosen);
        free(call);
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "no memory for a batch of %zu placements", n);
    }
    /* 1: still to commit; results end as 0 or a negative code. */
    for (size_t i = 0; i < n; i++)
        results[i] = 1;
    size_t left = n;
    int rc = 0;
    bool caught_up = false;         /* the engine holds every commit made   */
    for (uint32_t round = 0; left > 0 && round <= s->opts.max_retries && rc == 0; round++) {
        if ((rc = berth__store_sync(s, err)) < 0)
            break;
        s->round++;
        size_t nchosen = 0;
        for (size_t i = 0; i < n; i++) {
            if (results[i] != 1)
                continue;
            const char *key = keys[i];
            size_t len = key ? strnlen(key, BERTH__KEY_MAX + 1) : 0;
            berth__map_entry_t *e =
                len && len <= BERTH__KEY_MAX ? berth__map_find(&s->groups, key, len) : NULL;
            /* A key met twice in one round waits for the next: its second
             * commit must see the first one's generation. */
            if (e != NULL ? e->mark == s->round
                          : (len && berth_engine_group_get(s->engine, key, NULL) == 0))
                continue;
            ps[i].key = key;
            ps[i].request = &requests[i];
            ps[i].spec = NULL;
            int crc = berth__store_choose(s, &ps[i], NULL);
            if (crc < 0) {
                results[i] = crc;
                left--;
                continue;
            }
            if (e != NULL)
                e->mark = s->round;
            chosen[nchosen++] = i;
        }
        /* Undo in reverse: each undo restores the state its choice saw. */
        for (size_t j = nchosen; j-- > 0;)
            berth__store_unchoose(s, &ps[chosen[j]]);
        /* The chosen placements in calls of up to PLACE_MANY_MAX, all
         * pipelined; sent counts the placements the calls carry. */
        size_t sent = 0, calls = 0;
        while (rc == 0 && sent < nchosen) {
            berth__many_clear(call);
            while (rc == 0 && call->n < BERTH__PLACE_MANY_MAX && sent + call->n < nchosen)
                rc = berth__many_add(s, call, &ps[chosen[sent + call->n]], NULL, err);
            if (rc == 0)
                rc = berth__many_finish(s, call, err);
            if (rc < 0)
                break;
            if (redisAppendCommandArgv(s->c, call->argc, call->argv, call->lens) != REDIS_OK) {
                rc = berth__redis_unavailable(s, err, "sending a batch of placements");
                break;
            }
            sent += call->n;
            calls++;
            flush_some(s);
        }
        berth__many_clear(call);
        /* The replicas the options ask for confirm the round's commits:
         * one WAIT after them on the same connection. */
        bool waiting = rc == 0 && calls > 0 && s->opts.wait_replicas > 0;
        if (waiting) {
            berth__wait_words_t w;
            berth__wait_words(s, &w);
            if (redisAppendCommandArgv(s->c, 3, w.argv, NULL) != REDIS_OK) {
                rc = berth__redis_unavailable(s, err, "sending a batch of placements");
                waiting = false;
            }
        }
        bool reload_functions = false;
        /* Answers come in commit order: while each commit is the log's next
         * entry, it is applied here; after the first that is not, the
         * rest come from the log. */
        caught_up = true;
        for (size_t c = 0, j = 0; c < calls; c++) {
            size_t in_call = nchosen - j < BERTH__PLACE_MANY_MAX ? nchosen - j
                                                                  : BERTH__PLACE_MANY_MAX;
            void *v = NULL;
            if (redisGetReply(s->c, &v) != REDIS_OK || v == NULL) {
                rc = berth__redis_unavailable(s, err, "committing a batch of placements");
                s->stale = true;
                berth__store_connect(s, NULL);
                break;
            }
            redisReply *r = v;
            bool answers = r->type == REDIS_REPLY_ARRAY && r->elements == in_call;
            for (size_t k = 0; k < in_call; k++, j++) {
                size_t i = chosen[j];
                const redisReply *a = answers ? r->element[k] : r;
                char reason[32], message[256];
                if (berth__reply_is_no_function(a)) {
                    reload_functions = true; /* nothing applied: retried next round */
                } else if (a->type == REDIS_REPLY_ERROR || !answers) {
                    results[i] = a->type == REDIS_REPLY_ERROR
                                     ? berth__redis_error(NULL, a, "a placement")
                                     : berth__error_set(NULL, BERTH_EIO, "RedisError", "",
                                                        "a malformed answer");
                    left--;
                    caught_up = false;
                } else {
                    int f = berth__store_fcall_result(a, reason, sizeof reason, message,
                                                      sizeof message, NULL);
                    if (f == 1) {
                        results[i] = 0;
                        if (outs != NULL)
                            outs[i] = ps[i].choice;
                        left--;
                        caught_up = caught_up && berth__store_own_apply(s, &ps[i], a);
                    } else if (f < 0) {
                        results[i] = f;
                        left--;
                    }
                }
            }
            freeReplyObject(r);
        }
        if (waiting && rc == 0) {
            /* A commit the replicas did not confirm is applied but not
             * acknowledged: BERTH_EIO, and the caller retries it. */
            void *v = NULL;
            if (redisGetReply(s->c, &v) != REDIS_OK)
                v = NULL;
            if (!berth__wait_confirmed(s, v, "a batch of placements", err)) {
                for (size_t j = 0; j < nchosen; j++)
                    if (results[chosen[j]] == 0)
                        results[chosen[j]] = BERTH_EIO;
                rc = BERTH_EIO;
                s->stale = true;
                if (v == NULL)
                    berth__store_connect(s, NULL);
            }
            if (v != NULL)
                freeReplyObject(v);
        }
        if (rc == 0 && reload_functions)
            rc = berth__functions_load(s, err);
    }
    if (rc == 0 && !caught_up)
        rc = berth__store_sync(s, err);
    for (size_t i = 0; i < n; i++)
        if (results[i] == 1)
            results[i] = rc < 0 ? BERTH_EIO : BERTH_ENOSPC;
    if (rc == 0 && left > 0)
        berth__error_set(err, BERTH_ENOSPC, "ResourceNotAvailable", "",
                         "%zu container groups were not placed: the cell kept changing "
                         "under %u rounds", left, s->opts.max_retries + 1);
    free(ps);
    free(chosen);
    free(call);
    /* A Regular group the batch found no room for preempts, one at a time
     * and in batch order, as berth_store_place() would (berth.h). */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (results[i] != BERTH_ENOSPC || requests[i].priority == BERTH_PRIORITY_SPOT ||
            berth_engine_spot_count(s->engine) == 0)
            continue;
        results[i] = berth__store_place(s, keys[i], &requests[i], NULL, NULL,
                                        outs != NULL ? &outs[i] : NULL, NULL);
    }
    return rc < 0 ? BERTH_EIO : 0;
}
