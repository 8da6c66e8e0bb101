/*
 * pool.c: berth-bench's `pool` scenario: how long a create takes to run,
 * from its PUT to its container Running, without and with a standby pool.
 *
 *   berth-bench pool --endpoint URL [--token T] [--cacert FILE | --insecure]
 *                    [--subscription S] [--resource-group RG] [--groups N]
 *                    [--pool-size K] [--image-tag TAG] [--running-timeout S]
 *
 * Against a berthd whose agents run the simulator with a pull and a start
 * latency (e.g. pull_latency_ms 800, start_latency_ms 200: see
 * docs/standby-pools.md for the set-up), it creates N groups one after the
 * other and times each from its PUT until GET reports provisioningState
 * Succeeded with the container Running (polled every 10 ms): first with
 * no pool, then, with a different image so that no host holds it yet,
 * after a standby pool of K >= N members of that very document is ready
 * (the pool references the container group profile "bench-profile",
 * which is PUT first, and is ready when its runtime view counts K members
 * Running).
 * Each phase's image is new to the cell ("bench/pool-none:TAG",
 * "bench/pool-ready:TAG"; give a new --image-tag to run again on the same
 * cell), so the first create on each host pays the pull and the others
 * only the start, as in a cell that already runs the image.  The first
 * phase's groups are deleted before the second starts, everything else at
 * the end.  Emits one result (output.h): both
 * phases' p50/p99 in ms and the ratio of their medians.  A measurement
 * tool: it never decides pass or fail on a timing.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "api.h"
#include "options.h"
#include "output.h"
#include "pool.h"
#include "util.h"

#define API_VERSION "2023-05-01"
#define POOL_API_VERSION "2026-04-01"
#define PROFILE_API_VERSION "2025-09-01"
#define POLL_US 10000

typedef struct pool_options {
    bench_endpoint_t ep;
    const char *tag;
    size_t groups, pool_size;
    uint32_t running_timeout_s;
} pool_options_t;

/* The document every create of a phase sends (only the name differs). */
static void group_doc(const char *image, const char *name, char *out, size_t cap)
{
    snprintf(out, cap,
             "{\"name\":\"%s\",\"location\":\"westeurope\",\"properties\":{\"osType\":"
             "\"Linux\",\"restartPolicy\":\"Always\",\"containers\":[{\"name\":\"app\","
             "\"properties\":{\"image\":\"%s\",\"resources\":{\"requests\":{\"cpu\":0.5,"
             "\"memoryInGB\":0.5}}}}]}}",
             name, image);
}

static void group_url(const pool_options_t *o, const char *name, char *out, size_t cap)
{
    snprintf(out, cap,
             "%s/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ContainerInstance/"
             "containerGroups/%s?api-version=" API_VERSION,
             o->ep.endpoint, o->ep.subscription, o->ep.resource_group, name);
}

static void pool_url(const pool_options_t *o, char *out, size_t cap)
{
    snprintf(out, cap,
             "%s/subscriptions/%s/resourceGroups/%s/providers/Microsoft.StandbyPool/"
             "standbyContainerGroupPools/bench-pool?api-version=" POOL_API_VERSION,
             o->ep.endpoint, o->ep.subscription, o->ep.resource_group);
}

static void profile_url(const pool_options_t *o, char *out, size_t cap)
{
    snprintf(out, cap,
             "%s/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ContainerInstance/"
             "containerGroupProfiles/bench-profile?api-version=" PROFILE_API_VERSION,
             o->ep.endpoint, o->ep.subscription, o->ep.resource_group);
}

/* Whether a GET answer shows the group Succeeded and its container Running. */
static bool is_running(const char *body)
{
    json_t *j = body != NULL ? json_loads(body, 0, NULL) : NULL;
    json_t *props = json_object_get(j, "properties");
    const char *ps = json_string_value(json_object_get(props, "provisioningState"));
    json_t *c = json_array_get(json_object_get(props, "containers"), 0);
    const char *cs = json_string_value(json_object_get(
        json_object_get(json_object_get(json_object_get(c, "properties"), "instanceView"),
                        "currentState"),
        "state"));
    bool yes = ps != NULL && cs != NULL && strcmp(ps, "Succeeded") == 0 &&
               strcmp(cs, "Running") == 0;
    json_decref(j);
    return yes;
}

/* Creates group `name` and waits until it runs.  Stores the nanoseconds
 * from the PUT to Running in *ns; returns 0, or -1 (a refused PUT or a
 * timeout). */
static int create_timed(const pool_options_t *o, CURL *h, const char *image, const char *name,
                        uint64_t *ns)
{
    char url[768], doc[1024];
    group_url(o, name, url, sizeof url);
    group_doc(image, name, doc, sizeof doc);
    uint64_t t0 = bench_now_ns();
    long st = bench_api_request(h, "PUT", url, doc, NULL);
    if (st != 200 && st != 201) {
        fprintf(stderr, "berth-bench pool: PUT %s answered %ld\n", name, st);
        return -1;
    }
    uint64_t deadline = t0 + (uint64_t)o->running_timeout_s * 1000000000ull;
    while (bench_now_ns() < deadline) {
        char *body = NULL;
        st = bench_api_request(h, "GET", url, NULL, &body);
        bool up = st == 200 && is_running(body);
        free(body);
        if (up) {
            *ns = bench_now_ns() - t0;
            return 0;
        }
        usleep(POLL_US);
    }
    fprintf(stderr, "berth-bench pool: %s did not run within %u s\n", name,
            o->running_timeout_s);
    return -1;
}

/* The pool's readyCapacity, or -1. */
static long long ready_capacity(const pool_options_t *o, CURL *h)
{
    char url[768], *body = NULL;
    snprintf(url, sizeof url,
             "%s/subscriptions/%s/resourceGroups/%s/providers/Microsoft.StandbyPool/"
             "standbyContainerGroupPools/bench-pool/runtimeViews/latest?api-version="
             POOL_API_VERSION,
             o->ep.endpoint, o->ep.subscription, o->ep.resource_group);
    long st = bench_api_request(h, "GET", url, NULL, &body);
    json_t *j = st == 200 && body != NULL ? json_loads(body, 0, NULL) : NULL;
    free(body);
    /* The members Running, over every zone's summary. */
    long long n = -1;
    size_t i, k;
    json_t *z, *c;
    json_array_foreach(json_object_get(json_object_get(j, "properties"), "instanceCountSummary"),
                       i, z)
        json_array_foreach(json_object_get(z, "instanceCountsByState"), k, c)
            if (json_is_string(json_object_get(c, "state")) &&
                strcmp(json_string_value(json_object_get(c, "state")), "Running") == 0)
                n = (n < 0 ? 0 : n) + json_integer_value(json_object_get(c, "count"));
    json_decref(j);
    return n;
}

/* One phase: N creates named PREFIX-i of `image`; their latencies in lat[]. */
static size_t phase(const pool_options_t *o, CURL *h, const char *image, const char *prefix,
                    uint64_t *lat)
{
    size_t ok = 0;
    for (size_t i = 0; i < o->groups; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s-%zu", prefix, i);
        if (create_timed(o, h, image, name, &lat[ok]) == 0)
            ok++;
    }
    return ok;
}

/* Deletes the groups of one phase. */
static void phase_delete(const pool_options_t *o, CURL *h, const char *prefix)
{
    char url[768];
    for (size_t i = 0; i < o->groups; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s-%zu", prefix, i);
        group_url(o, name, url, sizeof url);
        bench_api_request(h, "DELETE", url, NULL, NULL);
    }
}

static void pool_usage(FILE *f)
{
    fputs("usage: berth-bench pool --endpoint URL [--token T] [--cacert FILE | --insecure]\n"
          "                        [--subscription S] [--resource-group RG] [--groups N]\n"
          "                        [--pool-size K] [--image-tag TAG] [--running-timeout S]\n"
          "\n"
          "Creates N container groups one at a time through berthd, timing each from\n"
          "its PUT until it runs: first with no standby pool, then from a ready pool\n"
          "of K (>= N; default N) members of the same document.  Emits one result:\n"
          "p50/p99 in ms of both phases and the ratio of their medians.\n",
          f);
}

/* See pool.h. */
int bench_pool_main(int argc, char **argv)
{
    pool_options_t o = {.ep = {.subscription = "00000000-0000-0000-0000-000000000000",
                               .resource_group = "bench-pool"},
                        .tag = "1", .groups = 20,
                        .running_timeout_s = 30};
    enum { OPT_IMAGE_TAG = 256, OPT_GROUPS, OPT_POOL_SIZE, OPT_RUNNING_TIMEOUT };
    static const struct option longopts[] = {
        BENCH_ENDPOINT_LONGOPTS,
        {"image-tag", required_argument, NULL, OPT_IMAGE_TAG},
        {"groups", required_argument, NULL, OPT_GROUPS},
        {"pool-size", required_argument, NULL, OPT_POOL_SIZE},
        {"running-timeout", required_argument, NULL, OPT_RUNNING_TIMEOUT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bench_option_t opt;
    while (bench_option_next(argc, argv, "", longopts, &opt) != -1) {
        const char *v = opt.value;
        size_t n = 0;
        bool ok = true;
        switch (opt.code) {
        case 'h':
            pool_usage(stdout);
            return 0;
        case ':':
            fprintf(stderr, "berth-bench pool: %s needs a value\n", opt.name);
            return 2;
        case OPT_IMAGE_TAG:
            ok = strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789.-_") == strlen(v) &&
                 strlen(v) > 0 && strlen(v) < 64;
            if (ok)
                o.tag = v;
            break;
        case OPT_GROUPS:
            ok = bench_parse_size(v, 1000, &n) == 0;
            if (ok)
                o.groups = n;
            break;
        case OPT_POOL_SIZE:
            ok = bench_parse_size(v, BERTH_POOL_SIZE_MAX, &n) == 0;
            if (ok)
                o.pool_size = n;
            break;
        case OPT_RUNNING_TIMEOUT:
            ok = bench_parse_size(v, 3600, &n) == 0;
            if (ok)
                o.running_timeout_s = (uint32_t)n;
            break;
        default:                /* '?' (an unknown option): false */
            ok = bench_endpoint_option(opt.code, v, &o.ep);
            break;
        }
        if (!ok) {
            fprintf(stderr, "berth-bench pool: bad option or value: %s %s\n", opt.name, v);
            return 2;
        }
    }
    if (o.ep.endpoint == NULL) {
        fprintf(stderr, "berth-bench pool: --endpoint is required\n");
        return 2;
    }
    if (o.pool_size == 0)
        o.pool_size = o.groups;
    if (o.pool_size < o.groups) {
        fprintf(stderr, "berth-bench pool: --pool-size must be at least --groups\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct curl_slist *headers = NULL;
    CURL *h = bench_api_client(o.ep.token, o.ep.cacert, o.ep.insecure, &headers);
    uint64_t *none = calloc(o.groups, sizeof *none), *ready = calloc(o.groups, sizeof *ready);
    if (h == NULL || none == NULL || ready == NULL) {
        fprintf(stderr, "berth-bench pool: out of memory\n");
        return 1;
    }
    char image_none[96], image_ready[96];
    snprintf(image_none, sizeof image_none, "bench/pool-none:%s", o.tag);
    snprintf(image_ready, sizeof image_ready, "bench/pool-ready:%s", o.tag);

    /* Phase 1: no pool.  Its groups are deleted before phase 2, which
     * then starts from the same room. */
    size_t n_none = phase(&o, h, image_none, "pool-none", none);
    phase_delete(&o, h, "pool-none");

    /* Phase 2: a pool of the same document (a container group profile),
     * filled before the creates. */
    char url[768], purl[768], tmpl[1024], body[1536];
    group_doc(image_ready, "template", tmpl, sizeof tmpl);
    json_t *t = json_loads(tmpl, 0, NULL);
    json_object_del(t, "name");
    char *profile = t != NULL ? json_dumps(t, JSON_COMPACT) : NULL;
    json_decref(t);
    profile_url(&o, purl, sizeof purl);
    long pst = profile != NULL ? bench_api_request(h, "PUT", purl, profile, NULL) : 0;
    free(profile);
    snprintf(body, sizeof body,
             "{\"location\":\"westeurope\",\"properties\":{\"elasticityProfile\":"
             "{\"maxReadyCapacity\":%zu,\"refillPolicy\":\"always\"},"
             "\"containerGroupProperties\":{\"containerGroupProfile\":{\"id\":"
             "\"/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ContainerInstance/"
             "containerGroupProfiles/bench-profile\"}}}}",
             o.pool_size, o.ep.subscription, o.ep.resource_group);
    pool_url(&o, url, sizeof url);
    uint64_t t_fill = bench_now_ns();
    long st = pst == 200 || pst == 201 ? bench_api_request(h, "PUT", url, body, NULL) : pst;
    bool filled = false;
    uint64_t deadline = t_fill + (uint64_t)o.running_timeout_s * 1000000000ull;
    while ((st == 200 || st == 201) && bench_now_ns() < deadline) {
        if (ready_capacity(&o, h) >= (long long)o.pool_size) {
            filled = true;
            break;
        }
        usleep(50 * 1000);
    }
    double fill_s = (double)(bench_now_ns() - t_fill) / 1e9;
    size_t n_ready = 0;
    if (filled)
        n_ready = phase(&o, h, image_ready, "pool-ready", ready);
    else
        fprintf(stderr, "berth-bench pool: the pool was not ready (PUT answered %ld)\n", st);
    phase_delete(&o, h, "pool-ready");
    bench_api_request(h, "DELETE", url, NULL, NULL);     /* the pool */
    bench_api_request(h, "DELETE", purl, NULL, NULL);    /* its profile */

    double p50_none = (double)bench_api_percentile(none, n_none, 0.50) / 1e6;
    double p99_none = (double)bench_api_percentile(none, n_none, 0.99) / 1e6;
    double p50_ready = (double)bench_api_percentile(ready, n_ready, 0.50) / 1e6;
    double p99_ready = (double)bench_api_percentile(ready, n_ready, 0.99) / 1e6;
    json_t *row = json_object();
    json_object_set_new(row, "bench", json_string("pool"));
    json_object_set_new(row, "groups", json_integer((json_int_t)o.groups));
    json_object_set_new(row, "pool_size", json_integer((json_int_t)o.pool_size));
    json_object_set_new(row, "ran_none", json_integer((json_int_t)n_none));
    json_object_set_new(row, "ran_pool", json_integer((json_int_t)n_ready));
    json_object_set_new(row, "p50_ms_none", json_real(bench_rounded(p50_none, 1)));
    json_object_set_new(row, "p99_ms_none", json_real(bench_rounded(p99_none, 1)));
    json_object_set_new(row, "p50_ms_pool", json_real(bench_rounded(p50_ready, 1)));
    json_object_set_new(row, "p99_ms_pool", json_real(bench_rounded(p99_ready, 1)));
    json_object_set_new(row, "p50_ratio",
                        n_ready > 0 && p50_ready > 0 ? json_real(bench_rounded(p50_none /
                                                                               p50_ready, 1))
                                                     : json_null());
    json_object_set_new(row, "pool_fill_s",
                        filled ? json_real(bench_rounded(fill_s, 2)) : json_null());
    bench_emit(row);
    curl_easy_cleanup(h);
    curl_slist_free_all(headers);
    curl_global_cleanup();
    free(none);
    free(ready);
    return n_none == o.groups && n_ready == o.groups ? 0 : 1;
}
