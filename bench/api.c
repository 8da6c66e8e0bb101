/*
 * api.c: berth-bench's `api` scenario: container-group creates through
 * berthd's REST API.
 *
 *   berth-bench api --endpoint URL [--token T] [--subscription S]
 *                   [--resource-group RG] [--groups N] [--connections C]
 *                   [--cacert FILE | --insecure] [--running-timeout S]
 *
 * Opens C keep-alive connections (one libcurl easy handle each, driven by
 * one multi handle) and sends N PUTs of a small one-container group, each
 * connection sending its next PUT when the previous answer came.  Then it
 * polls the resource group's list until every group's container is Running
 * (bounded by --running-timeout) and deletes them all.  Emits one result
 * (output.h): creates per second (acknowledged PUTs over the wall time of the
 * PUT phase), the PUT latency percentiles from a monotonic clock, errors,
 * and the seconds until all groups ran.  A measurement tool: it never
 * decides pass or fail on a timing.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "api.h"
#include "options.h"
#include "output.h"
#include "util.h"
#include "lib/curl.h"

#define CONNECTIONS_MAX 256
#define API_VERSION "2023-05-01"

typedef struct api_options {
    bench_endpoint_t ep;
    size_t groups;
    size_t connections;
    uint32_t running_timeout_s;
} api_options_t;

typedef struct conn {
    CURL *h;
    struct curl_slist *headers;
    size_t index;                   /* the group this connection is creating */
    uint64_t started_ns;
    char url[512];
    char body[1024];
    bool busy;
} conn_t;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static size_t discard(char *p, size_t size, size_t n, void *data)
{
    return size * n;
}

/* Every bench handle: 60 s a request, 10 s to connect, the headers. */
static void handle_setup(const api_options_t *o, CURL *h, struct curl_slist *headers)
{
    berth__curl_options_t how = {
        .timeout_ms = 60000,
        .connect_timeout_ms = 10000,
        .cacert = o->ep.cacert,
        .insecure = o->ep.insecure,
    };
    berth__curl_setup(h, &how);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
}

static struct curl_slist *headers_make(const api_options_t *o)
{
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (o->ep.token != NULL) {
        char auth[1024];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", o->ep.token);
        h = curl_slist_append(h, auth);
    }
    return h;
}

static void group_url(const api_options_t *o, size_t i, char *buf, size_t cap)
{
    snprintf(buf, cap,
             "%s/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ContainerInstance/"
             "containerGroups/bench-%06zu?api-version=" API_VERSION,
             o->ep.endpoint, o->ep.subscription, o->ep.resource_group, i);
}

static void put_start(const api_options_t *o, CURLM *m, conn_t *c, size_t index)
{
    c->index = index;
    group_url(o, index, c->url, sizeof c->url);
    snprintf(c->body, sizeof c->body,
             "{\"location\":\"westeurope\",\"properties\":{\"osType\":\"Linux\","
             "\"restartPolicy\":\"Always\",\"containers\":[{\"name\":\"app\",\"properties\":"
             "{\"image\":\"busybox:latest\",\"resources\":{\"requests\":{\"cpu\":0.1,"
             "\"memoryInGB\":0.1}}}}]}}");
    curl_easy_setopt(c->h, CURLOPT_URL, c->url);
    curl_easy_setopt(c->h, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, c->body);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, discard);
    c->started_ns = mono_ns();
    c->busy = true;
    curl_multi_add_handle(m, c->h);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t percentile(const uint64_t *sorted, size_t n, double q)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

/* GETs one URL on handle h into *out (a zeroed buffer: the bench keeps
 * whole list pages, unbounded; berth__curl_buffer_free() it); returns the
 * HTTP status or 0. */
static long get(CURL *h, const char *url, berth__curl_buffer_t *out)
{
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "GET");
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    berth__curl_buffer_attach(h, out);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

/* Counts the groups of the resource group whose first container runs. */
static size_t count_running(const api_options_t *o, CURL *h)
{
    char url[1024];
    snprintf(url, sizeof url,
             "%s/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ContainerInstance/"
             "containerGroups?api-version=" API_VERSION,
             o->ep.endpoint, o->ep.subscription, o->ep.resource_group);
    size_t running = 0;
    for (int page = 0; page < 100000; page++) {
        berth__curl_buffer_t body = {0};
        long status = get(h, url, &body);
        json_t *j = status == 200 && body.data != NULL ? json_loads(body.data, 0, NULL) : NULL;
        berth__curl_buffer_free(&body);
        if (j == NULL)
            break;
        size_t i;
        json_t *g;
        json_array_foreach(json_object_get(j, "value"), i, g) {
            json_t *c = json_array_get(json_object_get(json_object_get(g, "properties"),
                                                       "containers"), 0);
            const char *st = json_string_value(json_object_get(json_object_get(json_object_get(
                json_object_get(c, "properties"), "instanceView"), "currentState"), "state"));
            running += st != NULL && strcmp(st, "Running") == 0;
        }
        const char *next = json_string_value(json_object_get(j, "nextLink"));
        if (next == NULL || strlen(next) >= sizeof url) {
            json_decref(j);
            break;
        }
        snprintf(url, sizeof url, "%s", next);
        json_decref(j);
    }
    return running;
}

static void api_usage(FILE *f)
{
    fputs("usage: berth-bench api --endpoint URL [--token T] [--subscription S]\n"
          "                       [--resource-group RG] [--groups N] [--connections C]\n"
          "                       [--cacert FILE | --insecure] [--running-timeout S]\n"
          "\n"
          "Creates N container groups through berthd's REST API over C keep-alive\n"
          "connections, waits until they all run, deletes them, and emits one result\n"
          "(a JSON line; a row of DIR/api.csv with berth-bench's --csv DIR): creates\n"
          "per second, PUT latency p50/p99/p999 in ms, errors, and the seconds until\n"
          "every group ran (null when not all did within --running-timeout; with\n"
          "--running-timeout 0 it does not wait, and running is null too).\n",
          f);
}

/* See api.h. */
int bench_api_main(int argc, char **argv)
{
    api_options_t o = {.ep = {.subscription = "00000000-0000-0000-0000-000000000000",
                              .resource_group = "bench"},
                       .groups = 1000, .connections = 8,
                       .running_timeout_s = 120};
    enum { OPT_GROUPS = 256, OPT_CONNECTIONS, OPT_RUNNING_TIMEOUT };
    static const struct option longopts[] = {
        BENCH_ENDPOINT_LONGOPTS,
        {"groups", required_argument, NULL, OPT_GROUPS},
        {"connections", required_argument, NULL, OPT_CONNECTIONS},
        {"running-timeout", required_argument, NULL, OPT_RUNNING_TIMEOUT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bench_option_t opt;
    while (bench_option_next(argc, argv, "", longopts, &opt) != -1) {
        const char *v = opt.value;
        char *end = NULL;
        unsigned long n = v != NULL ? strtoul(v, &end, 10) : 0;
        bool num = v != NULL && *v != '\0' && *end == '\0';
        bool ok = true;
        switch (opt.code) {
        case 'h':
            api_usage(stdout);
            return 0;
        case ':':
            fprintf(stderr, "berth-bench api: %s needs a value\n", opt.name);
            return 2;
        case '?':
            fprintf(stderr, "berth-bench api: bad option or value: %s %s\n", opt.name,
                    v != NULL ? v : "");
            return 2;
        case OPT_GROUPS:
            ok = num && n > 0 && n <= 1000000;
            o.groups = n;
            break;
        case OPT_CONNECTIONS:
            ok = num && n > 0 && n <= CONNECTIONS_MAX;
            o.connections = n;
            break;
        case OPT_RUNNING_TIMEOUT:
            ok = num && n <= 3600;
            o.running_timeout_s = (uint32_t)n;
            break;
        default:
            bench_endpoint_option(opt.code, v, &o.ep);
            break;
        }
        if (!ok) {
            fprintf(stderr, "berth-bench api: bad option or value: %s %s\n", opt.name, v);
            return 2;
        }
    }
    if (o.ep.endpoint == NULL) {
        fprintf(stderr, "berth-bench api: --endpoint is required\n");
        return 2;
    }
    if (o.connections > o.groups)
        o.connections = o.groups;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct curl_slist *headers = headers_make(&o);
    uint64_t *lat = calloc(o.groups, sizeof *lat);
    conn_t *conns = calloc(o.connections, sizeof *conns);
    CURLM *m = curl_multi_init();
    if (lat == NULL || conns == NULL || m == NULL || headers == NULL) {
        fprintf(stderr, "berth-bench api: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < o.connections; i++) {
        conns[i].h = curl_easy_init();
        handle_setup(&o, conns[i].h, headers);
        curl_easy_setopt(conns[i].h, CURLOPT_PRIVATE, &conns[i]);
    }

    size_t next = 0, done = 0, errors = 0, created = 0;
    long first_error = 0;
    uint64_t t0 = mono_ns();
    for (size_t i = 0; i < o.connections; i++)
        put_start(&o, m, &conns[i], next++);
    while (done < o.groups) {
        int still = 0;
        curl_multi_perform(m, &still);
        int left;
        CURLMsg *msg;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            conn_t *c = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
            long status = 0;
            curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
            lat[done++] = mono_ns() - c->started_ns;
            if (msg->data.result == CURLE_OK && (status == 200 || status == 201)) {
                created++;
            } else {
                errors++;
                if (first_error == 0)
                    first_error = msg->data.result != CURLE_OK ? -(long)msg->data.result
                                                               : status;
            }
            curl_multi_remove_handle(m, c->h);
            c->busy = false;
            if (next < o.groups)
                put_start(&o, m, c, next++);
        }
        if (done < o.groups)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    double seconds = (double)(mono_ns() - t0) / 1e9;

    /* Until every group runs (bounded), then clean up. */
    CURL *h = conns[0].h;
    uint64_t deadline = mono_ns() + (uint64_t)o.running_timeout_s * 1000000000ull;
    size_t running = 0;
    while (o.running_timeout_s > 0 && (running = count_running(&o, h)) < created &&
           mono_ns() < deadline)
        usleep(200 * 1000);
    double ran_after = o.running_timeout_s > 0 && running >= created
                           ? (double)(mono_ns() - t0) / 1e9 : -1;
    for (size_t i = 0; i < o.groups; i++) {
        char url[512];
        group_url(&o, i, url, sizeof url);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_perform(h);
    }

    qsort(lat, done, sizeof *lat, cmp_u64);
    json_t *row = json_object();
    json_object_set_new(row, "bench", json_string("api"));
    json_object_set_new(row, "groups", json_integer((json_int_t)o.groups));
    json_object_set_new(row, "connections", json_integer((json_int_t)o.connections));
    json_object_set_new(row, "created", json_integer((json_int_t)created));
    json_object_set_new(row, "errors", json_integer((json_int_t)errors));
    json_object_set_new(row, "first_error", json_integer(first_error));
    json_object_set_new(row, "seconds", json_real(bench_rounded(seconds, 3)));
    json_object_set_new(row, "creates_per_sec",
                        json_real(bench_rounded(seconds > 0 ? (double)created / seconds : 0.0, 1)));
    json_object_set_new(row, "p50_ms",
                        json_real(bench_rounded((double)percentile(lat, done, 0.50) / 1e6, 2)));
    json_object_set_new(row, "p99_ms",
                        json_real(bench_rounded((double)percentile(lat, done, 0.99) / 1e6, 2)));
    json_object_set_new(row, "p999_ms",
                        json_real(bench_rounded((double)percentile(lat, done, 0.999) / 1e6, 2)));
    json_object_set_new(row, "running", o.running_timeout_s > 0
                                            ? json_integer((json_int_t)running) : json_null());
    json_object_set_new(row, "all_running_after_s",
                        ran_after >= 0 ? json_real(bench_rounded(ran_after, 2)) : json_null());
    bench_emit(row);
    for (size_t i = 0; i < o.connections; i++)
        curl_easy_cleanup(conns[i].h);
    curl_multi_cleanup(m);
    curl_slist_free_all(headers);
    curl_global_cleanup();
    free(conns);
    free(lat);
    return errors == 0 ? 0 : 1;
}

/* ---- shared with other scenarios (api.h) ------------------------------------------------ */

/* See api.h. */
CURL *bench_api_client(const char *token, const char *cacert, bool insecure,
                       struct curl_slist **headers)
{
    api_options_t o = {.ep = {.token = token, .cacert = cacert, .insecure = insecure}};
    *headers = headers_make(&o);
    CURL *h = *headers != NULL ? curl_easy_init() : NULL;
    if (h == NULL) {
        curl_slist_free_all(*headers);
        *headers = NULL;
        return NULL;
    }
    handle_setup(&o, h, *headers);
    return h;
}

/* See api.h. */
long bench_api_request(CURL *h, const char *method, const char *url, const char *body,
                       char **out)
{
    berth__curl_buffer_t g = {0};      /* unbounded, as get() */
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    else if (strcmp(method, "GET") == 0)
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    else
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    berth__curl_buffer_attach(h, &g);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (out != NULL)
        *out = g.data;
    else
        free(g.data);
    return status;
}

/* See api.h. */
uint64_t bench_api_percentile(uint64_t *values, size_t n, double q)
{
    qsort(values, n, sizeof *values, cmp_u64);
    return percentile(values, n, q);
}
