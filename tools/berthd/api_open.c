/*
 * api_open.c: the API's life: opening and closing it, the loop's periodic
 * work (the replica caught up, the agents' image sets read, old operation
 * records dropped), the health PING behind /healthz, and the API's
 * metrics.
 *
 * Each timer's work is one asynchronous call at a time, never blocking the
 * loop; a call still out when the timer fires again is not doubled.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "api-internal.h"
#include "worker.h"

#define TICK_MS_DEFAULT 5000u
#define OP_TTL_MS (24 * 3600 * 1000LL) /* operation records kept a day       */

static const double BUCKETS[API_NBUCKETS - 1] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,   0.25,   0.5,   1.0,  2.5};

/* ---- metrics ---------------------------------------------------------------------------- */

/* Contract: api-internal.h. */
void api_observe_placement(bd_api_t *api, double seconds, int rc)
{
    size_t i = 0;
    while (i < API_NBUCKETS - 1 && seconds > BUCKETS[i])
        i++;
    api->hist[i]++;
    api->hist_count++;
    api->hist_sum += seconds;
    if (rc == BERTH_ECONFLICT)
        api->conflicts++;
    else if (rc == BERTH_ENOSPC)
        api->nospace++;
}

/* ---- the timer ---------------------------------------------------------------------------- */

/* Drops operation records older than OP_TTL_MS, about a hundred fields a
 * tick (HSCAN resumes where the last tick stopped), without blocking. */
static void prune_dropped(int status, const char *text, size_t len, void *data)
{
    (void)status, (void)text, (void)len, (void)data;
}

static void prune_scanned(int status, const char *const *ids, const char *const *texts,
                          size_t n, const char *next, void *data)
{
    bd_api_t *api = data;
    api->pruning = false;
    if (status != 0)
        return;
    snprintf(api->op_cursor, sizeof api->op_cursor, "%s", next);
    const char **old = n > 0 ? malloc(n * sizeof *old) : NULL;
    size_t nold = 0;
    int64_t now = berth__clock_wall_ms();
    for (size_t i = 0; old != NULL && i < n; i++) {
        json_t *o = json_loads(texts[i], 0, NULL);
        int64_t start = (int64_t)json_integer_value(json_object_get(o, "startTime"));
        json_decref(o);
        if (now - start > OP_TTL_MS)
            old[nold++] = ids[i];
    }
    if (nold > 0)
        bd_records_operations_drop(api->records, old, nold, prune_dropped, NULL);
    free(old);
}

static void prune_operations(bd_api_t *api)
{
    if (api->pruning)
        return;
    if (bd_records_operations_scan(api->records, api->op_cursor, 100, prune_scanned, api) == 0)
        api->pruning = true;
}

/* /healthz answers from the last PING's outcome (one a second). */
static void health_pinged(int status, const char *text, size_t len, void *data)
{
    (void)len;
    bd_api_t *api = data;
    api->pinging = false;
    api->healthy = status == 0 && text != NULL && strcmp(text, "PONG") == 0;
    snprintf(api->health_why, sizeof api->health_why, "%s",
             api->healthy ? "" : status != 0 ? "redis: no answer" : "redis: unexpected answer");
}

static void on_health(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    bd_api_t *api = arg;
    if (api->pinging) {
        /* The last PING is still out: Redis is too slow to count as up. */
        api->healthy = false;
        snprintf(api->health_why, sizeof api->health_why, "redis: no answer in a second");
        return;
    }
    if (bd_records_ping(api->records, health_pinged, api) == 0)
        api->pinging = true;
}

static void replica_synced(int status, const berth_placement_t *placement,
                           const berth_error_t *err, void *data)
{
    (void)placement, (void)err;
    bd_api_t *api = data;
    api->syncing = false;
    (void)status;                   /* a failure is retried next tick */
}

static void images_synced(int status, const char *text, size_t len, const berth_error_t *err,
                          void *data)
{
    (void)text, (void)len;
    bd_api_t *api = data;
    api->images_syncing = false;
    if (status != 0)
        bd_log("warn", "host images not read: %s", err != NULL ? err->message : "");
}

/* The loop's periodic work, none of it blocking: the replica caught up
 * with the cell's log (hosts that joined or changed), the images each
 * agent reports (image locality), old operation records dropped.  Host
 * heartbeats, pool refills and NGroup steps run on the worker
 * (bd_worker_housekeeping_start()). */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bd_api_t *api = arg;
    berth_error_t err;
    prune_operations(api);
    if (!api->syncing &&
        berth_store_async_sync(api->async, replica_synced, api, &err) == 0)
        api->syncing = true;
    if (!api->images_syncing &&
        berth_store_async_images_sync(api->async, images_synced, api, &err) == 0)
        api->images_syncing = true;
}
/* ---- open, close, metrics, health ------------------------------------------------------- */

/* Contract (berthd.h): opens the asynchronous store (the engine replica of
 * the requests), berthd's own records and the worker (its own replica, for
 * the work still blocking), and starts the timers.  0 or a negative code
 * with err. */
int bd_api_open(const bd_config_t *cfg, struct event_base *base, bd_api_t **out,
                berth_error_t *err)
{
    *out = NULL;
    bd_api_t *api = calloc(1, sizeof *api);
    if (api == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    api->cfg = cfg;
    api->base = base;
    snprintf(api->cell, sizeof api->cell, "%s", cfg->cell[0] ? cfg->cell : "default");
    strcpy(api->op_cursor, "0");
    berth_engine_options_t eo;
    berth_engine_options_init(&eo);
    berth_store_options_t so;
    berth_store_options_init(&so);
    so.url = cfg->redis_url;
    so.cell = api->cell;
    bd_store_options_durable(cfg, &so);
    int rc = berth_engine_new(&eo, &api->async_engine, err);
    if (rc == 0)
        rc = berth_store_async_open(&so, api->async_engine, base, &api->async, err);
    if (rc != 0)
        goto fail;
    api->records = bd_records_new(base, cfg->redis_url, api->cell, so.timeout_ms);
    if (api->records == NULL) {
        rc = berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
        goto fail;
    }
    uint32_t period = TICK_MS_DEFAULT;
    const char *tick = getenv("BERTHD_TICK_MS");
    if (tick != NULL && atol(tick) >= 50 && atol(tick) <= 600000)
        period = (uint32_t)atol(tick);
    api->worker = bd_worker_new(base, cfg, err);
    if (api->worker == NULL) {
        rc = err->code != 0 ? err->code : BERTH_ENOMEM;
        goto fail;
    }
    bd_worker_housekeeping_start(api->worker, period);
    api->timer = event_new(base, -1, EV_PERSIST, on_timer, api);
    struct timeval tv = {(time_t)(period / 1000), (suseconds_t)((period % 1000) * 1000)};
    if (api->timer == NULL || event_add(api->timer, &tv) != 0) {
        rc = berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "cannot add the timer");
        goto fail;
    }
    api->healthy = true;            /* the stores just opened: Redis answered */
    api->health = event_new(base, -1, EV_PERSIST, on_health, api);
    struct timeval second = {1, 0};
    if (api->health == NULL || event_add(api->health, &second) != 0) {
        rc = berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "cannot add the timer");
        goto fail;
    }
    *out = api;
    return 0;
fail:
    bd_api_close(api);
    return rc;
}

/* Contract (berthd.h): stops the timer and frees everything; accepts NULL. */
void bd_api_close(bd_api_t *api)
{
    if (api == NULL)
        return;
    if (api->timer != NULL)
        event_free(api->timer);
    if (api->health != NULL)
        event_free(api->health);
    /* Requests still waiting are answered now (the worker's routes, agent
     * calls and commits: "Closed"), while the server still holds their
     * replies. */
    bd_worker_free(api->worker);
    berth_store_async_close(api->async);
    berth_engine_free(api->async_engine);
    bd_records_free(api->records);
    free(api);
}

/* Contract (berthd.h): appends the API's Prometheus metrics to out. */
void bd_api_metrics(bd_api_t *api, struct evbuffer *out)
{
    evbuffer_add_printf(out, "# HELP berthd_placement_seconds Time of placement commits.\n"
                             "# TYPE berthd_placement_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t i = 0; i < API_NBUCKETS; i++) {
        cum += api->hist[i];
        if (i < API_NBUCKETS - 1)
            evbuffer_add_printf(out, "berthd_placement_seconds_bucket{le=\"%g\"} %llu\n",
                                BUCKETS[i], (unsigned long long)cum);
        else
            evbuffer_add_printf(out, "berthd_placement_seconds_bucket{le=\"+Inf\"} %llu\n",
                                (unsigned long long)cum);
    }
    evbuffer_add_printf(out, "berthd_placement_seconds_sum %.6f\nberthd_placement_seconds_count %llu\n",
                        api->hist_sum, (unsigned long long)api->hist_count);
    evbuffer_add_printf(out,
                        "# HELP berthd_commit_conflicts_total Commits refused: a redeploy "
                        "changing a fixed property, or no room after the store's retries.\n"
                        "# TYPE berthd_commit_conflicts_total counter\n"
                        "berthd_commit_conflicts_total{reason=\"conflict\"} %llu\n"
                        "berthd_commit_conflicts_total{reason=\"nospace\"} %llu\n",
                        (unsigned long long)api->conflicts, (unsigned long long)api->nospace);
    evbuffer_add_printf(out, "# HELP berthd_evictions_total Spot container groups evicted "
                             "to place Regular ones.\n"
                             "# TYPE berthd_evictions_total counter\n"
                             "berthd_evictions_total %llu\n",
                        (unsigned long long)api->evictions);
    evbuffer_add_printf(out, "# HELP berthd_request_queue_depth Mutating requests between "
                             "their read and their reply.\n"
                             "# TYPE berthd_request_queue_depth gauge\n"
                             "berthd_request_queue_depth{kind=\"inflight\"} %llu\n",
                        (unsigned long long)api->inflight);
    berth_engine_t *engine = berth_store_async_engine(api->async);
    size_t n = berth_engine_host_count(engine);
    uint64_t states[3] = {0, 0, 0};
    json_t *skus = json_object();   /* sku -> [cap mc, cap mib, cap gpu, used mc, mib, gpu] */
    for (size_t i = 0; i < n; i++) {
        berth_host_t h;
        berth_host_usage_t u;
        if (berth_engine_host_at(engine, i, &h, &u) != 0)
            continue;
        if ((unsigned)h.state < 3)
            states[h.state]++;
        const char *sku = h.gpu_count > 0 && h.gpu_sku && h.gpu_sku[0] ? h.gpu_sku : "none";
        json_t *a = json_object_get(skus, sku);
        if (a == NULL) {
            a = json_pack("[I,I,I,I,I,I]", (json_int_t)0, (json_int_t)0, (json_int_t)0,
                          (json_int_t)0, (json_int_t)0, (json_int_t)0);
            json_object_set_new(skus, sku, a);
        }
        uint64_t add[6] = {(uint64_t)h.cores * 1000, h.memory_mib, h.gpu_count,
                           u.millicores,             u.memory_mib, u.gpu_count};
        for (size_t j = 0; j < 6; j++)
            json_array_set_new(a, j, json_integer(json_integer_value(json_array_get(a, j)) +
                                                  (json_int_t)add[j]));
    }
    evbuffer_add_printf(out, "# HELP berthd_hosts Hosts in the cell by state.\n"
                             "# TYPE berthd_hosts gauge\n"
                             "berthd_hosts{state=\"ready\"} %llu\n"
                             "berthd_hosts{state=\"cordoned\"} %llu\n"
                             "berthd_hosts{state=\"down\"} %llu\n",
                        (unsigned long long)states[0], (unsigned long long)states[1],
                        (unsigned long long)states[2]);
    static const char *const DIMS[3] = {"millicores", "memory_mib", "gpus"};
    evbuffer_add_printf(out, "# HELP berthd_capacity Total capacity of the cell's hosts.\n"
                             "# TYPE berthd_capacity gauge\n");
    const char *sku;
    json_t *a;
    json_object_foreach(skus, sku, a)
    {
        for (size_t j = 0; j < 3; j++)
            evbuffer_add_printf(out, "berthd_capacity{dimension=\"%s\",sku=\"%s\"} %lld\n",
                                DIMS[j], sku, (long long)json_integer_value(json_array_get(a, j)));
    }
    evbuffer_add_printf(out, "# HELP berthd_allocated Capacity allocated to groups.\n"
                             "# TYPE berthd_allocated gauge\n");
    json_object_foreach(skus, sku, a)
    {
        for (size_t j = 0; j < 3; j++)
            evbuffer_add_printf(out, "berthd_allocated{dimension=\"%s\",sku=\"%s\"} %lld\n",
                                DIMS[j], sku,
                                (long long)json_integer_value(json_array_get(a, j + 3)));
    }
    json_decref(skus);
}

/* Contract (berthd.h): whether Redis answered the last PING (sent every
 * second, without blocking); why[cap] says what fails. */
/* Contract: berthd.h. */
berth_store_async_t *bd_api_async(bd_api_t *api)
{
    return api->async;
}

/* Contract: berthd.h. */
uint32_t bd_api_agent_timeout_ms(const bd_api_t *api)
{
    return api->cfg->agent_timeout_ms;
}

bool bd_api_healthy(bd_api_t *api, char *why, size_t cap)
{
    if (cap > 0)
        snprintf(why, cap, "%s", api->healthy ? "" : api->health_why);
    return api->healthy;
}
