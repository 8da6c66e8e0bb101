/*
 * region_cells.c: the cells a Redis holds, for `berthd --cell '*'`: every
 * key "berth:{CELL}:meta" (each cell has one, core/store/store.c) on the
 * server, or on every master of a Cluster (CLUSTER NODES names them).
 *
 * It runs once, while the API opens and before berthd serves anything,
 * with blocking hiredis calls bounded by a timeout (as the stores' own
 * snapshot loads at open).  It must never run on a serving loop, and never
 * write anything.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "region.h"
#include "resource.h"

#define SCAN_ROUNDS_MAX 1000000u        /* bounds a SCAN over a huge keyspace */

static redisContext *connect_to(const char *url, uint32_t timeout_ms)
{
    char host[512];
    int port;
    int kind = bd_redis_url_parse(url, host, sizeof host, &port);
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
    redisContext *c = kind < 0    ? NULL
                      : kind == 1 ? redisConnectUnixWithTimeout(host, tv)
                                  : redisConnectWithTimeout(host, port, tv);
    if (c != NULL && (c->err != 0 || redisSetTimeout(c, tv) != REDIS_OK)) {
        redisFree(c);
        c = NULL;
    }
    return c;
}

/* Adds the cell named by key "berth:{CELL}:meta" to cells[*n] when new and
 * valid.  Returns 0, or -1 when more than `max` cells are found. */
static int add_cell(const char *key, char (*cells)[BERTH_NAME_MAX + 1], size_t max, size_t *n)
{
    const char *open = strchr(key, '{'), *close = open != NULL ? strchr(open, '}') : NULL;
    if (close == NULL || strcmp(close, "}:meta") != 0)
        return 0;
    size_t len = (size_t)(close - open - 1);
    if (len == 0 || len > BERTH_NAME_MAX || strspn(open + 1, "abcdefghijklmnopqrstuvwxyz"
                                                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                             "0123456789._-") < len)
        return 0;
    for (size_t i = 0; i < *n; i++)
        if (strlen(cells[i]) == len && memcmp(cells[i], open + 1, len) == 0)
            return 0;
    if (*n == max)
        return -1;
    snprintf(cells[(*n)++], BERTH_NAME_MAX + 1, "%.*s", (int)len, open + 1);
    return 0;
}

/* SCANs one server for the cells' meta keys.  Returns 0 or a negative
 * code with err. */
static int scan_node(redisContext *c, const char *where, char (*cells)[BERTH_NAME_MAX + 1],
                     size_t max, size_t *n, berth_error_t *err)
{
    char cursor[32] = "0";
    for (unsigned round = 0; round < SCAN_ROUNDS_MAX; round++) {
        redisReply *r = redisCommand(c, "SCAN %s MATCH berth:{*}:meta COUNT 1000", cursor);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            return berth_error_set(err, BERTH_EIO, "RedisUnavailable", "",
                                   "cannot list the cells on %s", where);
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        int rc = 0;
        for (size_t i = 0; rc == 0 && i < r->element[1]->elements; i++)
            if (r->element[1]->element[i]->type == REDIS_REPLY_STRING)
                rc = add_cell(r->element[1]->element[i]->str, cells, max, n);
        freeReplyObject(r);
        if (rc != 0)
            return berth_error_set(err, BERTH_ELIMIT, "TooManyCells", "cell",
                                   "Redis holds more than %zu cells; name them with --cell",
                                   max);
        if (strcmp(cursor, "0") == 0)
            return 0;
    }
    return berth_error_set(err, BERTH_EIO, "RedisUnavailable", "",
                           "listing the cells on %s did not end", where);
}

static int cell_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Contract: region.h. */
int bd_region_cells_find(const char *url, uint32_t timeout_ms,
                         char (*cells)[BERTH_NAME_MAX + 1], size_t max, size_t *n,
                         berth_error_t *err)
{
    *n = 0;
    redisContext *c = connect_to(url, timeout_ms);
    if (c == NULL)
        return berth_error_set(err, BERTH_EIO, "RedisUnavailable", "", "cannot reach %s", url);
    redisReply *nodes = redisCommand(c, "CLUSTER NODES");
    int rc = 0;
    if (nodes == NULL) {
        rc = berth_error_set(err, BERTH_EIO, "RedisUnavailable", "", "no answer from %s", url);
    } else if (nodes->type != REDIS_REPLY_STRING) {
        rc = scan_node(c, url, cells, max, n, err);     /* not a Cluster: one server */
    } else {
        /* "<id> <ip:port@cport[,host]> <flags> ..." a line; the masters. */
        char *save = NULL;
        for (char *line = strtok_r(nodes->str, "\n", &save); rc == 0 && line != NULL;
             line = strtok_r(NULL, "\n", &save)) {
            char addr[300], flags[256], node_url[320];
            if (sscanf(line, "%*s %299s %255s", addr, flags) != 2 ||
                strstr(flags, "master") == NULL || strstr(flags, "fail") != NULL)
                continue;
            addr[strcspn(addr, "@,")] = '\0';
            snprintf(node_url, sizeof node_url, "redis://%s", addr);
            redisContext *m = connect_to(node_url, timeout_ms);
            rc = m != NULL ? scan_node(m, node_url, cells, max, n, err)
                           : berth_error_set(err, BERTH_EIO, "RedisUnavailable", "",
                                             "cannot reach the master %s", node_url);
            redisFree(m);
        }
    }
    freeReplyObject(nodes);
    redisFree(c);
    if (rc == 0 && *n == 0)
        rc = berth_error_set(err, BERTH_ENOENT, "NoCell", "cell",
                             "Redis at %s holds no cell yet (--cell '*' serves the cells it "
                             "holds)", url);
    if (rc == 0)
        qsort(cells, *n, sizeof *cells, cell_cmp);
    return rc;
}
