/*
 * metrics.c: the usage metrics of the groups the agent runs, sampled from
 * the runtime plugin's `stats` every --metrics-interval seconds and
 * written to the cell (berth_hostlink_metrics_put()) for berthd.
 *
 * Each round reads every running group's counters once and turns them
 * into rates against the group's previous reading: CPU in millicores from
 * the CPU time used since, network bytes a second from the bytes since;
 * memory is the working set as read.  A counter that went back (the
 * container or its namespace started again) counts from zero, as
 * Prometheus's rate() does.  A group's first reading gives no sample,
 * only the base of the next.  Each group keeps the window of its last
 * BERTH_METRICS_SAMPLES_MAX samples and writes it whole, so what the cell
 * holds per group is bounded and a reader needs one read; an agent that
 * restarts takes the window it wrote before (same host, same generation)
 * back from the cell and goes on from it.
 *
 * A round is sliced: each turn of the agent's loop samples at most
 * METRICS_SLICE groups, so that a host with thousands of groups never
 * holds its loop (assignments, supervision) for a whole round.  This file
 * must never start, stop or change a container: it reads and reports.  A
 * plugin without `stats` makes it do nothing.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent.h"

#define METRICS_SLICE 16u           /* groups sampled per turn of the loop  */

/* A group's usage state between readings. */
struct usage {
    bool has_base;
    int64_t base_ms;                /* when `base` was read, monotonic      */
    berth_group_stats_t base;       /* the previous reading                 */
    json_t *samples;                /* the window, oldest first             */
};

/* Contract (agent.h). */
bool metrics_supported(const berth_plugin_ops_t *ops)
{
    return ops->size >= offsetof(berth_plugin_ops_t, stats) + sizeof ops->stats &&
           ops->stats != NULL;
}

/* Contract (agent.h). */
void usage_free(usage_t *u)
{
    if (u == NULL)
        return;
    json_decref(u->samples);
    free(u);
}

/* What a counter grew by since `before`; a counter that went back started
 * again from zero, so all of it is new. */
static uint64_t grown(uint64_t now, uint64_t before)
{
    return now >= before ? now - before : now;
}

static const berth_container_stats_t *base_of(const berth_group_stats_t *base,
                                              const char *name)
{
    for (size_t i = 0; i < base->ncontainers; i++)
        if (strcmp(base->containers[i].name, name) == 0)
            return &base->containers[i];
    return NULL;
}

/* The sample of `cur` read dt_ms after u->base, at wall time `wall_ms`. */
static json_t *sample_json(const usage_t *u, const berth_group_stats_t *cur, int64_t dt_ms,
                           int64_t wall_ms)
{
    json_t *cs = json_array();
    for (size_t i = 0; i < cur->ncontainers && cs != NULL; i++) {
        const berth_container_stats_t *c = &cur->containers[i];
        const berth_container_stats_t *b = base_of(&u->base, c->name);
        uint64_t cpu_ns = !c->running ? 0
                        : b != NULL && b->running ? grown(c->cpu_ns, b->cpu_ns) : c->cpu_ns;
        /* ns over ms: ns / (dt_ms * 10^6) cores, * 10^3 millicores. */
        uint64_t mc = cpu_ns / ((uint64_t)dt_ms * 1000u);
        json_array_append_new(cs, json_pack("{s:s,s:I,s:I}", "name", c->name,
                                            "cpu", (json_int_t)mc, "memory",
                                            (json_int_t)c->memory_bytes));
    }
    uint64_t rx = grown(cur->rx_bytes, u->base.rx_bytes) * 1000u / (uint64_t)dt_ms;
    uint64_t tx = grown(cur->tx_bytes, u->base.tx_bytes) * 1000u / (uint64_t)dt_ms;
    return json_pack("{s:I,s:I,s:I,s:o}", "time", (json_int_t)wall_ms, "rx", (json_int_t)rx,
                     "tx", (json_int_t)tx, "containers", cs);
}

/* The window this host wrote for g's generation before (an agent that
 * restarted), or a new empty one; NULL for want of memory. */
static json_t *window_restore(agent_t *a, const agroup_t *g)
{
    char *text = NULL;
    berth_error_t err;
    json_t *m = berth_hostlink_metrics_get(a->link, g->key, &text, &err) == 0
                    ? json_loads(text, 0, NULL) : NULL;
    berth_free(text);
    json_t *samples = json_object_get(m, "samples");
    const char *host = json_string_value(json_object_get(m, "host"));
    json_t *kept = NULL;
    if (json_is_array(samples) && host != NULL && strcmp(host, a->o.host) == 0 &&
        (uint64_t)json_integer_value(json_object_get(m, "generation")) == g->generation) {
        kept = json_incref(samples);
        while (json_array_size(kept) > BERTH_METRICS_SAMPLES_MAX)
            json_array_remove(kept, 0);
    }
    json_decref(m);
    return kept != NULL ? kept : json_array();
}

/* Reads g's counters; when there is a base, adds a sample to the window
 * and writes the window to the cell. */
static void group_sample(agent_t *a, agroup_t *g)
{
    if (g->usage == NULL) {
        g->usage = calloc(1, sizeof *g->usage);
        if (g->usage == NULL || (g->usage->samples = window_restore(a, g)) == NULL) {
            usage_free(g->usage);
            g->usage = NULL;
            return;
        }
    }
    usage_t *u = g->usage;
    berth_group_stats_t *cur = malloc(sizeof *cur);
    if (cur == NULL)
        return;
    berth_error_t err;
    int64_t now = berth__clock_monotonic_ms();
    if (a->ops->stats(a->ctx, runtime_key(g), cur, &err) != 0) {
        log_warn(g->key, "usage not read: %s", err.message);
        free(cur);
        return;
    }
    if (u->has_base && now > u->base_ms) {
        json_t *s = sample_json(u, cur, now - u->base_ms, berth__clock_wall_ms());
        if (s != NULL && json_array_append_new(u->samples, s) == 0) {
            while (json_array_size(u->samples) > BERTH_METRICS_SAMPLES_MAX)
                json_array_remove(u->samples, 0);
            json_t *doc = json_pack("{s:s,s:I,s:I,s:O}", "host", a->o.host, "generation",
                                    (json_int_t)g->generation, "interval",
                                    (json_int_t)a->o.metrics_interval_s, "samples",
                                    u->samples);
            char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
            if (text != NULL &&
                berth_hostlink_metrics_put(a->link, g->key, g->generation, text, &err) < 0 &&
                err.code != BERTH_ENOENT)
                log_warn(g->key, "usage not reported: %s", err.message);
            free(text);
            json_decref(doc);
        }
    }
    u->base = *cur;
    u->base_ms = now;
    u->has_base = true;
    free(cur);
}

/* Contract (agent.h). */
void metrics_sample(agent_t *a)
{
    if (a->o.metrics_interval_s == 0 || !metrics_supported(a->ops))
        return;
    int64_t now = berth__clock_monotonic_ms();
    if (!a->metrics_round) {
        if (now < a->metrics_due_ms)
            return;
        a->metrics_round = true;
        a->metrics_next = a->groups;
        a->metrics_due_ms = now + (int64_t)a->o.metrics_interval_s * 1000;
    }
    for (unsigned n = 0; n < METRICS_SLICE && a->metrics_next != NULL && !stopping; n++) {
        agroup_t *g = a->metrics_next;
        a->metrics_next = g->hh.next;
        if (g->phase == PHASE_RUN && g->spec != NULL)
            group_sample(a, g);
    }
    if (a->metrics_next == NULL)
        a->metrics_round = false;
}
