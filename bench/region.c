/*
 * region.c: berth-bench's `region` scenario: a region of cells on one
 * Redis Cluster.
 *
 *   berth-bench region [--hosts N] [--groups M] [--batch B] [--cells LIST]
 *                      [--redis URL] [--seed S]
 *
 * For each K of LIST (default 1,2,4): K fresh cells, named so that their
 * hash slots fall on different masters (round robin over the masters, the
 * slot computed here with the cluster's CRC16), each loaded with the
 * `redis` scenario's N hosts (default 2000) and committed to by one
 * scheduler process of its own, all K at once, each placing the
 * workload's M groups (default 10000) with berth_store_place_batch().
 * Then the same with wait_replicas = 1: every commit waits for a replica
 * (Redis WAIT), and the result says what that costs.  Rows (JSON, one per
 * result): one per cell (its master, committed, committed_per_sec), and a
 * total per K and wait (committed_per_sec summed over the cells' own
 * times, commit_calls_per_sec: FCALLs per second on the masters, the share
 * of those calls each master took, and wait_cost: the total with WAIT
 * over the total without).
 *
 * Without --redis it runs its own cluster: six redis-server processes on
 * loopback ports (three masters, three replicas, AOF everysec) joined by
 * redis-cli --cluster create, stopped at the end.  With --redis URL (a
 * node of a cluster with replicas) its cells are named after its pid and
 * left there.
 *
 * It never touches a Redis it was not pointed at, never judges a figure,
 * and every wait on a child or a server is bounded.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "berth.h"
#include "endpoint.h"
#include "options.h"
#include "output.h"
#include "region.h"
#include "schedulers.h"
#include "util.h"
#include "workload.h"
#include "lib/redis-server.h"

#define REGION_NODES 6              /* the private cluster: 3 masters ...   */
#define REGION_REPLICAS 1           /* ... with a replica each              */
#define REGION_MASTERS_MAX 16
#define REGION_CELLS_MAX 16
#define CLUSTER_WAIT_MS 60000
#define CLUSTER_SLOTS 16384

typedef struct region_options {
    size_t hosts, groups, batch;
    size_t cells[8], ncells;        /* the K to run                          */
    uint64_t seed;
    const char *url;                /* NULL: a private cluster               */
} region_options_t;

/* A master and the slots it serves. */
typedef struct master {
    endpoint_t ep;
    long ranges[32][2];
    size_t nranges;
    uint64_t calls;                 /* FCALLs during the current run         */
} master_t;

/* The CRC16 of Redis Cluster's key slots (XMODEM: polynomial 0x1021, no
 * reflection, initial value 0), so that a cell name can be chosen for the
 * master it lands on. */
static uint16_t crc16(const char *s, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)((unsigned char)s[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = crc & 0x8000 ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

/* The slot of a cell's keys: its name is their hash tag. */
static long cell_slot(const char *cell)
{
    return crc16(cell, strlen(cell)) % CLUSTER_SLOTS;
}

static int parse_cells(const char *v, region_options_t *o)
{
    char list[128];
    snprintf(list, sizeof list, "%s", v);
    o->ncells = 0;
    char *save = NULL;
    for (char *one = strtok_r(list, ",", &save); one != NULL; one = strtok_r(NULL, ",", &save)) {
        if (o->ncells == sizeof o->cells / sizeof o->cells[0] ||
            bench_parse_size(one, REGION_CELLS_MAX, &o->cells[o->ncells]) != 0)
            return -1;
        o->ncells++;
    }
    return o->ncells > 0 ? 0 : -1;
}

/* Parses the region scenario's options (from argv[2]) into *o, with their
 * defaults.  Returns 0, 1 after printing the help, or 2 after a message. */
static int parse_region_args(int argc, char **argv, region_options_t *o)
{
    enum { OPT_HOSTS = 256, OPT_GROUPS, OPT_BATCH, OPT_CELLS, OPT_SEED, OPT_REDIS };
    static const struct option longopts[] = {
        {"hosts", required_argument, NULL, OPT_HOSTS},
        {"groups", required_argument, NULL, OPT_GROUPS},
        {"batch", required_argument, NULL, OPT_BATCH},
        {"cells", required_argument, NULL, OPT_CELLS},
        {"seed", required_argument, NULL, OPT_SEED},
        {"redis", required_argument, NULL, OPT_REDIS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->hosts = 2000;
    o->groups = 10000;
    o->batch = 256;
    o->seed = 1;
    o->cells[0] = 1, o->cells[1] = 2, o->cells[2] = 4, o->ncells = 3;
    bench_option_t opt;
    while (bench_option_next(argc, argv, "h", longopts, &opt) != -1) {
        int rc = bench_option_common(&opt);
        if (rc != 0)
            return rc;
        const char *v = opt.value;
        int bad = 0;
        switch (opt.code) {
        case OPT_HOSTS:
            bad = bench_parse_size(v, COUNT_MAX, &o->hosts);
            break;
        case OPT_GROUPS:
            bad = bench_parse_size(v, COUNT_MAX, &o->groups);
            break;
        case OPT_BATCH:
            bad = bench_parse_size(v, 100000, &o->batch);
            break;
        case OPT_CELLS:
            bad = parse_cells(v, o);
            break;
        case OPT_SEED:
            bad = bench_parse_seed(v, &o->seed);
            break;
        default: {
            endpoint_t ep;
            o->url = v;
            bad = bench_endpoint_parse(v, &ep) != 0 || ep.is_unix;
            break;
        }
        }
        if (bad) {
            fprintf(stderr, "berth-bench: bad value '%s' for %s\n", v, opt.name);
            return 2;
        }
    }
    return 0;
}

/* Reads the masters and their slot ranges from CLUSTER SLOTS at `ep`.
 * Returns how many (>= 1), or -1 after a message. */
static int masters_read(const endpoint_t *ep, master_t *m, size_t cap)
{
    struct timeval tv = {10, 0};
    redisContext *c = redisConnectWithTimeout(ep->host, atoi(ep->port), tv);
    if (c == NULL || c->err) {
        fprintf(stderr, "berth-bench: cannot connect to %s:%s\n", ep->host, ep->port);
        if (c != NULL)
            redisFree(c);
        return -1;
    }
    redisReply *r = redisCommand(c, "CLUSTER SLOTS");
    size_t n = 0;
    for (size_t i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2)
            continue;
        const redisReply *node = e->element[2];
        char port[8];
        snprintf(port, sizeof port, "%lld", node->element[1]->integer);
        const char *host = node->element[0]->len > 0 ? node->element[0]->str : ep->host;
        size_t k = 0;
        while (k < n && !(strcmp(m[k].ep.port, port) == 0 && strcmp(m[k].ep.host, host) == 0))
            k++;
        if (k == n) {
            if (n == cap)
                continue;
            memset(&m[n], 0, sizeof m[n]);
            snprintf(m[n].ep.host, sizeof m[n].ep.host, "%s", host);
            snprintf(m[n].ep.port, sizeof m[n].ep.port, "%s", port);
            n++;
        }
        if (m[k].nranges < sizeof m[k].ranges / sizeof m[k].ranges[0]) {
            m[k].ranges[m[k].nranges][0] = (long)e->element[0]->integer;
            m[k].ranges[m[k].nranges][1] = (long)e->element[1]->integer;
            m[k].nranges++;
        }
    }
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
    if (n == 0)
        fprintf(stderr, "berth-bench: %s:%s is not a node of a Redis Cluster that serves its "
                "slots (CLUSTER SLOTS)\n", ep->host, ep->port);
    return n > 0 ? (int)n : -1;
}

/* The master serving `slot`. */
static size_t master_of(const master_t *m, size_t n, long slot)
{
    for (size_t k = 0; k < n; k++)
        for (size_t r = 0; r < m[k].nranges; r++)
            if (slot >= m[k].ranges[r][0] && slot <= m[k].ranges[r][1])
                return k;
    return n;
}

/* Names K cells for a run, cell i on master i % n: "<base>-<j>" for the
 * smallest j that lands there.  Returns 0, or -1 when the search (bounded)
 * found none. */
static int cells_name(const master_t *m, size_t n, const char *base, size_t k,
                      char (*names)[48], size_t *owner)
{
    unsigned j = 0;
    for (size_t i = 0; i < k; i++) {
        for (;; j++) {
            if (j >= 100000)
                return -1;
            snprintf(names[i], 48, "%s-%u", base, j);
            size_t at = master_of(m, n, cell_slot(names[i]));
            if (at == i % n) {
                owner[i] = at;
                j++;
                break;
            }
        }
    }
    return 0;
}

/* One run: K cells, wait or not.  Emits its rows; *total_rate is the
 * total committed per second.  Returns 0 or -1. */
static int region_run(const region_options_t *o, const char *url, const char *base,
                      master_t *m, size_t nm, const workload_t *w, size_t k, uint32_t wait,
                      double nowait_rate, double *total_rate)
{
    char names[REGION_CELLS_MAX][48];
    size_t owner[REGION_CELLS_MAX];
    char run_base[40];
    snprintf(run_base, sizeof run_base, "%s-k%zu-w%u", base, k, wait);
    if (cells_name(m, nm, run_base, k, names, owner) != 0) {
        fputs("berth-bench: no cell name lands on every master\n", stderr);
        return -1;
    }
    scheduler_share_t shares[REGION_CELLS_MAX];
    for (size_t i = 0; i < k; i++) {
        if (bench_cell_hosts_put(url, names[i], o->seed, w, o->hosts) != 0)
            return -1;
        shares[i] = (scheduler_share_t){
            .url = url, .cell = names[i], .seed = o->seed + i, .wait_replicas = wait, .w = w,
            .first = 0, .stride = 1, .count = o->groups, .batch = o->batch,
        };
    }
    for (size_t q = 0; q < nm; q++)
        m[q].calls = bench_endpoint_fcalls(&m[q].ep);
    scheduler_report_t reps[REGION_CELLS_MAX];
    uint64_t ns;
    if (bench_schedulers_run(shares, k, reps, &ns) != 0)
        return -1;
    uint64_t calls = 0;
    for (size_t q = 0; q < nm; q++) {
        m[q].calls = bench_endpoint_fcalls(&m[q].ep) - m[q].calls;
        calls += m[q].calls;
    }
    double total = 0;
    uint64_t committed = 0, rejected = 0, failed = 0;
    for (size_t i = 0; i < k; i++) {
        double secs = (double)reps[i].ns / 1e9;
        double rate = secs > 0 ? (double)reps[i].committed / secs : 0;
        total += rate;
        committed += reps[i].committed;
        rejected += reps[i].rejected;
        failed += reps[i].failed;
        char master[300];
        snprintf(master, sizeof master, "%s:%s", m[owner[i]].ep.host, m[owner[i]].ep.port);
        json_t *row = json_object();
        json_object_set_new(row, "bench", json_string("region"));
        json_object_set_new(row, "cells", json_integer((json_int_t)k));
        json_object_set_new(row, "wait_replicas", json_integer(wait));
        json_object_set_new(row, "cell", json_string(names[i]));
        json_object_set_new(row, "master", json_string(master));
        json_object_set_new(row, "hosts", json_integer((json_int_t)o->hosts));
        json_object_set_new(row, "groups", json_integer((json_int_t)o->groups));
        json_object_set_new(row, "committed", json_integer((json_int_t)reps[i].committed));
        json_object_set_new(row, "rejected", json_integer((json_int_t)reps[i].rejected));
        json_object_set_new(row, "failed", json_integer((json_int_t)reps[i].failed));
        json_object_set_new(row, "seconds", json_real(bench_rounded(secs, 3)));
        json_object_set_new(row, "committed_per_sec", json_integer(llround(rate)));
        bench_emit(row);
    }
    /* The share of the commit calls each master ran, in CLUSTER SLOTS order. */
    char shares_text[512] = "";
    size_t used = 0;
    for (size_t q = 0; q < nm; q++)
        used += (size_t)snprintf(shares_text + used, used < sizeof shares_text
                                     ? sizeof shares_text - used : 0, "%s%s:%s=%.2f",
                                 q ? " " : "", m[q].ep.host, m[q].ep.port,
                                 calls ? (double)m[q].calls / (double)calls : 0.0);
    double secs = (double)ns / 1e9;
    json_t *row = json_object();
    json_object_set_new(row, "bench", json_string("region"));
    json_object_set_new(row, "cells", json_integer((json_int_t)k));
    json_object_set_new(row, "wait_replicas", json_integer(wait));
    json_object_set_new(row, "cell", json_string("total"));
    json_object_set_new(row, "masters", json_integer((json_int_t)nm));
    json_object_set_new(row, "hosts", json_integer((json_int_t)(o->hosts * k)));
    json_object_set_new(row, "groups", json_integer((json_int_t)(o->groups * k)));
    json_object_set_new(row, "committed", json_integer((json_int_t)committed));
    json_object_set_new(row, "rejected", json_integer((json_int_t)rejected));
    json_object_set_new(row, "failed", json_integer((json_int_t)failed));
    json_object_set_new(row, "seconds", json_real(bench_rounded(secs, 3)));
    json_object_set_new(row, "committed_per_sec", json_integer(llround(total)));
    json_object_set_new(row, "commit_calls", json_integer((json_int_t)calls));
    json_object_set_new(row, "commit_calls_per_sec",
                        json_integer(secs > 0 ? llround((double)calls / secs) : 0));
    json_object_set_new(row, "master_shares", json_string(shares_text));
    json_object_set_new(row, "wait_cost", wait && nowait_rate > 0
                                              ? json_real(bench_rounded(total / nowait_rate, 3))
                                              : json_null());
    bench_emit(row);
    *total_rate = total;
    return 0;
}

/* Starts the private cluster: REGION_NODES servers joined with
 * REGION_REPLICAS replicas per master.  Returns 0 with *ep the first
 * node's, or -1 (every server stopped). */
static int cluster_start(server_t *sv, endpoint_t *ep)
{
    int ports[REGION_NODES];
    for (int i = 0; i < REGION_NODES; i++) {
        endpoint_t e;
        if (bench_cluster_node_start(&sv[i], &e, "everysec") != 0)
            return -1;
        ports[i] = atoi(e.port);
        if (i == 0)
            *ep = e;
    }
    char err[512];
    if (berth__redis_cluster_create(ports, REGION_NODES, REGION_REPLICAS, CLUSTER_WAIT_MS, err,
                                    sizeof err) != 0) {
        fprintf(stderr, "berth-bench: %s\n", err);
        return -1;
    }
    return 0;
}

/* See region.h. */
int bench_region_main(int argc, char **argv)
{
    region_options_t o;
    int rc = parse_region_args(argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;

    server_t sv[REGION_NODES];
    memset(sv, 0, sizeof sv);
    endpoint_t ep;
    char url[300], base[32];
    workload_t w = {0};
    rc = 1;
    if (o.url != NULL) {
        bench_endpoint_parse(o.url, &ep);
        snprintf(url, sizeof url, "%s", o.url);
        snprintf(base, sizeof base, "region-%d", (int)getpid());
    } else {
        if (cluster_start(sv, &ep) != 0)
            goto done;
        snprintf(url, sizeof url, "redis://%s:%s", ep.host, ep.port);
        snprintf(base, sizeof base, "region");
    }
    master_t masters[REGION_MASTERS_MAX];
    int nm = masters_read(&ep, masters, REGION_MASTERS_MAX);
    if (nm < 0)
        goto done;

    w.hosts = calloc(o.hosts, sizeof *w.hosts);
    w.host_names = calloc(o.hosts, sizeof *w.host_names);
    w.requests = calloc(o.groups, sizeof *w.requests);
    w.keys = calloc(o.groups, sizeof *w.keys);
    if (!w.hosts || !w.host_names || !w.requests || !w.keys) {
        fputs("berth-bench: out of memory\n", stderr);
        goto done;
    }
    bench_workload_hosts_make(&w, o.hosts, o.seed);
    int zone_ids[3] = {0, 1, 2};
    bench_workload_requests_make(&w, o.groups, o.seed, zone_ids);

    for (size_t c = 0; c < o.ncells; c++) {
        double nowait = 0, with_wait = 0;
        if (region_run(&o, url, base, masters, (size_t)nm, &w, o.cells[c], 0, 0, &nowait) != 0 ||
            region_run(&o, url, base, masters, (size_t)nm, &w, o.cells[c], 1, nowait,
                       &with_wait) != 0)
            goto done;
    }
    rc = 0;

done:
    for (int i = 0; i < REGION_NODES; i++)
        bench_server_stop(&sv[i]);
    free(w.hosts);
    free(w.host_names);
    free(w.requests);
    free(w.keys);
    return rc;
}
