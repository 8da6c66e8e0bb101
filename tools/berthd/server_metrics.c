/*
 * server_metrics.c: the HTTP metrics berthd's server keeps (requests by
 * route, method and status; request durations by route) and their
 * Prometheus text for /metrics.
 *
 * Bounded: series past BD_COUNTERS_MAX or BD_ROUTES_MAX are not counted,
 * so a client sending odd routes cannot grow it.  It must never allocate
 * per request and never run off the loop.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "server-internal.h"

static const double bd_buckets[BD_NBUCKETS] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                               0.25,  0.5,   1,    2.5,   5,    10};

/* ---- metrics ------------------------------------------------------------------------------ */

/* Contract: server-internal.h. */
void bd_metrics_record(bd_server_t *srv, const char *route, const char *method,
                       int status, double seconds)
{
    bd_counter_t *c = NULL;
    for (size_t i = 0; i < srv->ncounters && c == NULL; i++)
        if (srv->counters[i].status == status && strcmp(srv->counters[i].route, route) == 0 &&
            strcmp(srv->counters[i].method, method) == 0)
            c = &srv->counters[i];
    if (c == NULL && srv->ncounters < BD_COUNTERS_MAX) {
        c = &srv->counters[srv->ncounters++];
        snprintf(c->route, sizeof c->route, "%s", route);
        snprintf(c->method, sizeof c->method, "%s", method);
        c->status = status;
    }
    if (c != NULL)
        c->count++;

    bd_histogram_t *h = NULL;
    for (size_t i = 0; i < srv->nhistograms && h == NULL; i++)
        if (strcmp(srv->histograms[i].route, route) == 0)
            h = &srv->histograms[i];
    if (h == NULL && srv->nhistograms < BD_ROUTES_MAX) {
        h = &srv->histograms[srv->nhistograms++];
        snprintf(h->route, sizeof h->route, "%s", route);
    }
    if (h != NULL) {
        for (size_t b = 0; b < BD_NBUCKETS; b++)
            if (seconds <= bd_buckets[b])
                h->buckets[b]++;
        h->count++;
        h->sum += seconds;
    }
}

/* Appends `v` as a Prometheus label value (escaping \, " and newlines). */
static void bd_label(struct evbuffer *out, const char *v)
{
    for (const char *p = v; *p != '\0'; p++) {
        if (*p == '\\' || *p == '"')
            evbuffer_add_printf(out, "\\%c", *p);
        else if (*p == '\n')
            evbuffer_add(out, "\\n", 2);
        else
            evbuffer_add(out, p, 1);
    }
}

/* Contract: server-internal.h. */
void bd_metrics_render(bd_server_t *srv, struct evbuffer *out)
{
    evbuffer_add_printf(out, "# HELP berthd_up Whether berthd is running.\n"
                             "# TYPE berthd_up gauge\nberthd_up 1\n");
    evbuffer_add_printf(out,
                        "# HELP berthd_process_start_time_seconds Start time of berthd since "
                        "the Unix epoch in seconds.\n"
                        "# TYPE berthd_process_start_time_seconds gauge\n"
                        "berthd_process_start_time_seconds %.3f\n",
                        srv->start_time);
    evbuffer_add_printf(out, "# HELP berthd_http_requests_total HTTP requests answered.\n"
                             "# TYPE berthd_http_requests_total counter\n");
    for (size_t i = 0; i < srv->ncounters; i++) {
        const bd_counter_t *c = &srv->counters[i];
        evbuffer_add_printf(out, "berthd_http_requests_total{route=\"");
        bd_label(out, c->route);
        evbuffer_add_printf(out, "\",method=\"%s\",status=\"%d\"} %llu\n", c->method, c->status,
                            (unsigned long long)c->count);
    }
    evbuffer_add_printf(out,
                        "# HELP berthd_http_request_duration_seconds Time from a request's "
                        "arrival to its reply.\n"
                        "# TYPE berthd_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < srv->nhistograms; i++) {
        const bd_histogram_t *h = &srv->histograms[i];
        for (size_t b = 0; b < BD_NBUCKETS; b++) {
            evbuffer_add_printf(out, "berthd_http_request_duration_seconds_bucket{route=\"");
            bd_label(out, h->route);
            evbuffer_add_printf(out, "\",le=\"%g\"} %llu\n", bd_buckets[b],
                                (unsigned long long)h->buckets[b]);
        }
        evbuffer_add_printf(out, "berthd_http_request_duration_seconds_bucket{route=\"");
        bd_label(out, h->route);
        evbuffer_add_printf(out, "\",le=\"+Inf\"} %llu\n", (unsigned long long)h->count);
        evbuffer_add_printf(out, "berthd_http_request_duration_seconds_sum{route=\"");
        bd_label(out, h->route);
        evbuffer_add_printf(out, "\"} %.6f\n", h->sum);
        evbuffer_add_printf(out, "berthd_http_request_duration_seconds_count{route=\"");
        bd_label(out, h->route);
        evbuffer_add_printf(out, "\"} %llu\n", (unsigned long long)h->count);
    }
}

/* Contract: server-internal.h. */
double bd_elapsed(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}
