/*
 * api_usage.c: the containers' usage in berthd's /metrics: the latest
 * sample the agents wrote for each group this berthd's replica knows to
 * be placed, as Prometheus gauges labelled with the group's subscription,
 * resource group and name (and container, for CPU and memory):
 *
 *   berth_group_cpu_millicores{subscription,resource_group,group,container}
 *   berth_group_memory_bytes{subscription,resource_group,group,container}
 *   berth_group_network_receive_bytes_per_second{subscription,resource_group,group}
 *   berth_group_network_transmit_bytes_per_second{subscription,resource_group,group}
 *
 * A scrape never reads Redis: it renders a cache.  A timer refreshes the
 * cache in rounds: a round takes the replica's placed groups (at most
 * USAGE_GROUPS_MAX; berth_usage_groups_omitted counts the rest), reads
 * their metrics USAGE_SLICE at a time through the asynchronous store, and
 * when all are in replaces the cache whole, so a scrape sees one round,
 * and groups gone since are gone from it.  A sample older than three of
 * its agent's intervals (a host whose agent stopped) is left out.  Rounds
 * start at most every `period_ms` (berthd's tick).
 *
 * It must never block the loop nor read Redis outside the asynchronous
 * store, and never show anything but what agents wrote for placed groups.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api-internal.h"

#define USAGE_GROUPS_MAX 10000u     /* groups one round reads              */
#define USAGE_SLICE 64u             /* reads out at once                    */

struct bd_usage {
    berth_store_async_t *async;
    berth_engine_t *engine;
    struct event *timer;
    uint32_t period_ms;
    bool stopped;                   /* the store closes: no more reads      */
    json_t *shown;                  /* key -> latest sample: what /metrics renders */
    size_t omitted;                 /* groups past USAGE_GROUPS_MAX last round */
    /* The round under way. */
    bool running;
    int64_t started_ms;             /* monotonic                            */
    char **keys;
    size_t nkeys, next, out;
    size_t over;                    /* groups past USAGE_GROUPS_MAX         */
    json_t *round;                  /* key -> latest sample, as read        */
};

static void round_free_keys(bd_usage_t *u)
{
    for (size_t i = 0; i < u->nkeys; i++)
        free(u->keys[i]);
    free(u->keys);
    u->keys = NULL;
    u->nkeys = u->next = 0;
}

static int collect_key(const char *key, void *data)
{
    bd_usage_t *u = data;
    if (u->nkeys == USAGE_GROUPS_MAX) {
        u->over++;
        return 0;
    }
    char *k = strdup(key);
    if (k == NULL)
        return 1;
    u->keys[u->nkeys++] = k;
    return 0;
}

static void slice_send(bd_usage_t *u);

/* The round is over: its samples become what /metrics shows. */
static void round_end(bd_usage_t *u)
{
    json_decref(u->shown);
    u->shown = u->round;
    u->round = NULL;
    u->omitted = u->over;
    round_free_keys(u);
    u->running = false;
}

/* One group's metrics text: its latest sample, when recent, joins the round. */
static void usage_read(int status, const char *text, size_t len, const berth_error_t *err,
                       void *data)
{
    (void)err;
    char *key = data;
    bd_usage_t *u;
    memcpy(&u, key + strlen(key) + 1, sizeof u);
    if (status == 0 && u->round != NULL) {
        json_t *m = json_loadb(text, len, 0, NULL);
        json_t *samples = json_object_get(m, "samples");
        json_t *last = json_array_get(samples, json_array_size(samples) - 1);
        int64_t interval_ms = json_integer_value(json_object_get(m, "interval")) * 1000;
        int64_t at = json_integer_value(json_object_get(last, "time"));
        if (last != NULL && at >= berth__clock_wall_ms() - 3 * interval_ms - 1000)
            json_object_set(u->round, key, last);
        json_decref(m);
    }
    free(key);
    u->out--;
    if (u->out == 0)
        slice_send(u);
}

/* Sends the round's next slice of reads, or ends the round. */
static void slice_send(bd_usage_t *u)
{
    berth_error_t err;
    while (!u->stopped && u->next < u->nkeys && u->out < USAGE_SLICE) {
        const char *key = u->keys[u->next++];
        /* The callback's data: the key, then the cache's address. */
        size_t klen = strlen(key) + 1;
        char *data = malloc(klen + sizeof u);
        if (data == NULL)
            continue;
        memcpy(data, key, klen);
        memcpy(data + klen, &u, sizeof u);
        if (berth_store_async_metrics_read(u->async, key, usage_read, data, &err) != 0) {
            free(data);
            continue;
        }
        u->out++;
    }
    if (u->out == 0)
        round_end(u);
}

static void on_usage_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    bd_usage_t *u = arg;
    int64_t now = berth__clock_monotonic_ms();
    if (u->running || (u->started_ms != 0 && now - u->started_ms < u->period_ms))
        return;
    size_t n = berth_engine_group_count(u->engine);
    u->keys = calloc(n < USAGE_GROUPS_MAX ? n + 1 : USAGE_GROUPS_MAX, sizeof *u->keys);
    u->round = json_object();
    if (u->keys == NULL || u->round == NULL) {
        free(u->keys);
        u->keys = NULL;
        json_decref(u->round);
        u->round = NULL;
        return;
    }
    u->over = 0;
    if (berth_engine_group_keys(u->engine, NULL, collect_key, u) != 0) {
        round_free_keys(u);
        json_decref(u->round);
        u->round = NULL;
        return;
    }
    u->running = true;
    u->started_ms = now;
    slice_send(u);
}

/* Contract: api-internal.h. */
bd_usage_t *api_usage_new(struct event_base *base, berth_store_async_t *async,
                          uint32_t period_ms)
{
    bd_usage_t *u = calloc(1, sizeof *u);
    if (u == NULL)
        return NULL;
    u->async = async;
    u->engine = berth_store_async_engine(async);
    u->period_ms = period_ms;
    u->shown = json_object();
    u->timer = event_new(base, -1, EV_PERSIST, on_usage_timer, u);
    struct timeval second = {1, 0};
    if (u->shown == NULL || u->timer == NULL || event_add(u->timer, &second) != 0) {
        api_usage_free(u);
        return NULL;
    }
    return u;
}

/* Contract: api-internal.h. */
void api_usage_stop(bd_usage_t *u)
{
    if (u != NULL)
        u->stopped = true;
}

/* Contract: api-internal.h. */
void api_usage_free(bd_usage_t *u)
{
    if (u == NULL)
        return;
    if (u->timer != NULL)
        event_free(u->timer);
    json_decref(u->shown);
    json_decref(u->round);
    round_free_keys(u);
    free(u);
}

/* The labels of group `key` ("<sub>/<rg>/<name>", the name possibly with
 * more '/' for an NGroup's member), without the closing brace. */
static void labels(const char *key, char *out, size_t cap)
{
    const char *a = strchr(key, '/');
    const char *b = a != NULL ? strchr(a + 1, '/') : NULL;
    if (b == NULL)
        snprintf(out, cap, "subscription=\"\",resource_group=\"\",group=\"%s\"", key);
    else
        snprintf(out, cap, "subscription=\"%.*s\",resource_group=\"%.*s\",group=\"%s\"",
                 (int)(a - key), key, (int)(b - a - 1), a + 1, b + 1);
}

/* Contract: api-internal.h. */
void api_usage_render(const bd_usage_t *const *us, size_t n, struct evbuffer *out)
{
    static const struct {
        const char *name, *help, *member;
        bool per_container;
    } SERIES[] = {
        {"berth_group_cpu_millicores", "CPU a container used over its agent's last interval.",
         "cpu", true},
        {"berth_group_memory_bytes", "A container's working set.", "memory", true},
        {"berth_group_network_receive_bytes_per_second",
         "Bytes a group received a second over its agent's last interval.", "rx", false},
        {"berth_group_network_transmit_bytes_per_second",
         "Bytes a group sent a second over its agent's last interval.", "tx", false},
    };
    char lab[BD_KEY_MAX + 96];
    for (size_t s = 0; s < sizeof SERIES / sizeof SERIES[0]; s++) {
        evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", SERIES[s].name,
                            SERIES[s].help, SERIES[s].name);
        const char *key;
        json_t *sample;
        for (size_t k = 0; k < n; k++) {
            json_object_foreach(us[k]->shown, key, sample)
            {
                labels(key, lab, sizeof lab);
                if (!SERIES[s].per_container) {
                    evbuffer_add_printf(
                        out, "%s{%s} %lld\n", SERIES[s].name, lab,
                        (long long)json_integer_value(json_object_get(sample, SERIES[s].member)));
                    continue;
                }
                size_t i;
                json_t *c;
                json_array_foreach(json_object_get(sample, "containers"), i, c)
                evbuffer_add_printf(out, "%s{%s,container=\"%s\"} %lld\n", SERIES[s].name, lab,
                                    api_jstr(c, "name"),
                                    (long long)json_integer_value(
                                        json_object_get(c, SERIES[s].member)));
            }
        }
    }
    size_t shown = 0, omitted = 0;
    for (size_t k = 0; k < n; k++) {
        shown += json_object_size(us[k]->shown);
        omitted += us[k]->omitted;
    }
    evbuffer_add_printf(out,
                        "# HELP berth_usage_groups Groups whose usage /metrics shows.\n"
                        "# TYPE berth_usage_groups gauge\n"
                        "berth_usage_groups %zu\n"
                        "# HELP berth_usage_groups_omitted Placed groups past the %u whose "
                        "usage /metrics reads.\n"
                        "# TYPE berth_usage_groups_omitted gauge\n"
                        "berth_usage_groups_omitted %zu\n",
                        shown, USAGE_GROUPS_MAX, omitted);
}
