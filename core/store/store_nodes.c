/*
 * store_nodes.c: the Redis nodes a store knows, so that it survives the
 * loss of the node it talks to.  A cell lives on one master of a Redis
 * Cluster; when that master dies and the cluster promotes its replica, the
 * store's connection and the address it had are both dead.  The store
 * then connects to another node it knows and lets that node's MOVED name
 * the cell's new master (store_conn.c follows it).
 *
 * The nodes known are the URL's (one, or several separated by commas:
 * "redis://10.0.0.1:7000,redis://10.0.0.2:7000"), every node CLUSTER
 * SLOTS names (masters and replicas, learned at each new connection), and
 * every node a MOVED named.  A unix socket URL is one node, and a Redis
 * that is not a cluster adds nothing.
 *
 * This file must never connect by itself outside berth__store_connect(),
 * never forget the URL's nodes, and never hold more than BERTH__NODES_MAX
 * nodes (the rest are not learned: a cluster that large still answers
 * MOVED from any node it has).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "store-internal.h"

/* Contract: store-internal.h. */
void berth__store_node_add(berth_store_t *s, const char *host, int port)
{
    if (port <= 0 || port > 65535 || host[0] == '\0' || strlen(host) >= sizeof s->nodes[0].host)
        return;
    for (uint32_t i = 0; i < s->nnodes; i++)
        if (s->nodes[i].port == port && strcmp(s->nodes[i].host, host) == 0)
            return;
    if (s->nnodes == BERTH__NODES_MAX)
        return;
    snprintf(s->nodes[s->nnodes].host, sizeof s->nodes[0].host, "%s", host);
    s->nodes[s->nnodes].port = port;
    s->nnodes++;
}

/* Points the store at known node i. */
static void point_at(berth_store_t *s, uint32_t i)
{
    snprintf(s->host, sizeof s->host, "%s", s->nodes[i].host);
    s->port = s->nodes[i].port;
    snprintf(s->url, sizeof s->url, "redis://%s:%d", s->nodes[i].host, s->nodes[i].port);
}

/* Contract: store-internal.h. */
bool berth__store_node_next(berth_store_t *s)
{
    if (s->port == 0 || s->nnodes < 2)
        return false;
    uint32_t at = s->nnodes - 1; /* not in the list: start from the first */
    for (uint32_t i = 0; i < s->nnodes; i++)
        if (s->nodes[i].port == s->port && strcmp(s->nodes[i].host, s->host) == 0)
            at = i;
    point_at(s, (at + 1) % s->nnodes);
    return true;
}

/* Contract: store.h. */
void berth__store_failover(berth_store_t *s)
{
    if (berth__store_node_next(s) && s->engine != NULL)
        s->stale = true;
}

/* Contract: store-internal.h. */
void berth__store_nodes_learn(berth_store_t *s)
{
    if (s->c == NULL || s->port == 0)
        return;
    redisReply *r = redisCommand(s->c, "CLUSTER SLOTS");
    /* Each entry: start, end, then [ip, port, id, ...] for the master and
     * each replica.  An error (not a cluster) teaches nothing. */
    for (size_t i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        for (size_t k = 2; e->type == REDIS_REPLY_ARRAY && k < e->elements; k++) {
            const redisReply *n = e->element[k];
            if (n->type != REDIS_REPLY_ARRAY || n->elements < 2 ||
                n->element[0]->type != REDIS_REPLY_STRING ||
                n->element[1]->type != REDIS_REPLY_INTEGER)
                continue;
            /* An empty address means "the node you asked". */
            const char *host = n->element[0]->len > 0 ? n->element[0]->str : s->host;
            berth__store_node_add(s, host, (int)n->element[1]->integer);
        }
    }
    if (r != NULL)
        freeReplyObject(r);
}
