/*
 * store_failover.c: hosts whose agent went quiet.  A host among the cell's
 * agents whose heartbeat key expired is marked down, and the groups on a
 * down host whose restart policy wants them running are placed again
 * elsewhere (berth_store_hosts_expire()).
 *
 * This file must never move a group by itself: each move is an ordinary
 * commit (berth__store_place()), checked by Redis like any other, and a
 * group whose restart policy is Never stays where it was.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "store-internal.h"

typedef struct moving {
    char key[BERTH__KEY_MAX + 1];
    berth_request_t request;
} moving_t;

/* Re-places the groups of down host `host` whose restart policy wants them
 * running (Always, OnFailure; not Never), reporting each through cb. */
static int evacuate(berth_store_t *s, const char *host, berth_store_expire_cb cb, void *data,
                    int *changes, berth_error_t *err)
{
    char hg[BERTH__KEYNAME_MAX];
    berth__store_key(s, hg, sizeof hg, "hostgroups:", host);
    const char *argv[] = {"SMEMBERS", hg};
    int rc;
    redisReply *r = berth__store_command(s, 2, argv, NULL, false,
                                         "reading a host's groups", err, &rc);
    if (r == NULL)
        return rc;
    size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
    moving_t *m = n > 0 ? calloc(n, sizeof *m) : NULL;
    size_t k = 0;
    for (size_t i = 0; m != NULL && i < n; i++) {
        const redisReply *x = r->element[i];
        berth__map_entry_t *e = x->type == REDIS_REPLY_STRING && x->len <= BERTH__KEY_MAX
            ? berth__map_find(&s->groups, x->str, x->len) : NULL;
        if (e == NULL)
            continue;
        memcpy(m[k].key, x->str, x->len + 1);
        m[k].request = e->request;
        k++;
    }
    freeReplyObject(r);
    if (n > 0 && m == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory to move groups");
    for (size_t i = 0; i < k; i++) {
        char *spec = NULL;
        if (berth__store_group_record(s, m[i].key, &spec, NULL, NULL, 0, NULL) != 0)
            continue;
        berth_group_t *g = NULL;
        bool never = spec != NULL && berth_group_parse(spec, strlen(spec), &g, NULL) == 0 &&
                     g->restart_policy == BERTH_RESTART_NEVER;
        berth_group_free(g);
        if (never) {
            free(spec);
            continue;
        }
        berth_placement_t p;
        berth_error_t perr;
        rc = berth__store_place(s, m[i].key, &m[i].request, NULL, spec, &p, &perr);
        free(spec);
        if (rc == BERTH_EIO) {
            free(m);
            if (err != NULL)
                *err = perr;
            return rc;
        }
        (*changes)++;
        if (cb != NULL)
            cb(host, m[i].key, rc == 0 ? p.host : NULL, rc, data);
    }
    free(m);
    return 0;
}

int berth__store_hosts_expire(berth_store_t *s, berth_store_expire_cb cb, void *data,
                              berth_error_t *err)
{
    int rc = berth__store_sync(s, err);
    if (rc < 0)
        return rc;
    char agents[BERTH__KEYNAME_MAX];
    berth__store_key(s, agents, sizeof agents, "agents", "");
    const char *argv[] = {"SMEMBERS", agents};
    redisReply *r = berth__store_command(s, 2, argv, NULL, false,
                                         "reading the cell's agents", err, &rc);
    if (r == NULL)
        return rc;
    int changes = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *x = r->element[i];
        berth_host_t h;
        if (x->type != REDIS_REPLY_STRING ||
            berth_engine_host_get(s->engine, x->str, &h, NULL) != 0)
            continue;
        char name[BERTH_NAME_MAX + 1];
        snprintf(name, sizeof name, "%s", x->str);
        if (h.state != BERTH_HOST_DOWN) {
            char alive[BERTH__KEYNAME_MAX];
            berth__store_key(s, alive, sizeof alive, "alive:", name);
            const char *ex[] = {"EXISTS", alive};
            redisReply *y = berth__store_command(s, 2, ex, NULL, false,
                                                 "reading a heartbeat", err, &rc);
            if (y == NULL)
                break;
            bool quiet = y->type == REDIS_REPLY_INTEGER && y->integer == 0;
            freeReplyObject(y);
            if (!quiet)
                continue;
            if ((rc = berth__store_host_set_state(s, name, BERTH_HOST_DOWN, err)) < 0)
                break;
            changes++;
            if (cb != NULL)
                cb(name, NULL, NULL, 0, data);
        }
        if ((rc = evacuate(s, name, cb, data, &changes, err)) < 0)
            break;
    }
    freeReplyObject(r);
    return rc < 0 ? rc : changes;
}
