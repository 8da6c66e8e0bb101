/*
 * stats.c: the docker plugin's usage counters (berth_plugin_ops_t.stats),
 * from the engine's stats API, which Docker and Podman both answer:
 * GET /containers/{id}/stats?stream=false&one-shot=true, one reading
 * without the engine's own second sample.
 *
 * A container's CPU time is cpu_stats.cpu_usage.total_usage (ns); its
 * working set is memory_stats.usage less the inactive file cache
 * (memory_stats.stats.inactive_file on cgroup v2, total_inactive_file on
 * v1), as `docker stats` and the kubelet count it.  The network is the
 * group's sandbox's, whose namespace its containers join: the sum of its
 * networks' rx_bytes and tx_bytes (0 when the engine reports none).
 *
 * It must never start, stop or change an object: it reads.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "docker.h"

/* The non-negative integer at o.a.b (o.a when b is NULL), else 0. */
static uint64_t u64_at(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(o, a);
    if (b != NULL)
        v = json_object_get(v, b);
    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

/* One object's stats document into *out: 0 with *out NULL when the object
 * went meanwhile, else get_json()'s code. */
static int read_stats(docker_ctx_t *ctx, const char *id, json_t **out, berth_error_t *err)
{
    char path[160];
    snprintf(path, sizeof path, "/containers/%s/stats?stream=false&one-shot=true", id);
    long status = 0;
    return get_json(ctx, path, "RuntimeError", out, &status, err);
}

/* A container's counters from its stats document `s`. */
static void container_stats(json_t *s, berth_container_stats_t *out)
{
    out->cpu_ns = u64_at(json_object_get(s, "cpu_stats"), "cpu_usage", "total_usage");
    json_t *mem = json_object_get(s, "memory_stats");
    uint64_t usage = u64_at(s, "memory_stats", "usage");
    uint64_t inactive = u64_at(mem, "stats", "inactive_file");
    if (inactive == 0)
        inactive = u64_at(mem, "stats", "total_inactive_file");
    out->memory_bytes = inactive < usage ? usage - inactive : usage;
}

/* Contract: docker.h. */
int docker_stats(void *c, const char *key, berth_group_stats_t *out, berth_error_t *err)
{
    docker_ctx_t *ctx = c;
    memset(out, 0, offsetof(berth_group_stats_t, containers));
    group_objects_t *g = malloc(sizeof *g);
    if (g == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    int rc = load_group(ctx, key, g, err);
    if (rc == 0 && g->n == 0)
        rc = berth_error_set(err, BERTH_ENOENT, "ContainerGroupNotFound", "",
                             "the runtime holds no container group %s", key);
    for (size_t i = 0; rc == 0 && i < g->n; i++) {
        const group_object_t *o = &g->o[i];
        if (o->role == ROLE_INIT ||
            (o->role == ROLE_CONTAINER && out->ncontainers >= BERTH_PLUGIN_CONTAINERS_MAX))
            continue;
        berth_container_stats_t *cs = NULL;
        if (o->role == ROLE_CONTAINER) {
            cs = &out->containers[out->ncontainers++];
            memset(cs, 0, sizeof *cs);
            snprintf(cs->name, sizeof cs->name, "%s", o->name);
        }
        if (strcmp(o->state, "running") != 0)
            continue;
        json_t *s = NULL;
        rc = read_stats(ctx, o->id, &s, err);
        if (rc != 0 || s == NULL)
            continue;               /* removed meanwhile: not running */
        if (cs != NULL) {
            cs->running = true;
            container_stats(s, cs);
        } else {
            const char *name;
            json_t *net;
            json_object_foreach(json_object_get(s, "networks"), name, net)
            {
                (void)name;
                out->rx_bytes += u64_at(net, "rx_bytes", NULL);
                out->tx_bytes += u64_at(net, "tx_bytes", NULL);
            }
        }
        json_decref(s);
    }
    free(g);
    return rc;
}
