/*
 * workload.h: the deterministic mixed cluster and placement workload that
 * berth-bench's `incore` and `redis` scenarios share (workload.c).  It only
 * builds data in memory: it never talks to an engine, a store or a server.
 */
#ifndef BERTH_BENCH_WORKLOAD_H
#define BERTH_BENCH_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "berth.h"

#define GB 1024u
#define KEY_LEN 24
#define COUNT_MAX 100000000ull     /* largest --hosts, --groups ... */

/* The hosts and requests of one run; the caller allocates and frees the
 * four arrays (hosts and host_names of N, requests and keys of M). */
typedef struct workload {
    berth_host_t *hosts;
    char (*host_names)[32];
    berth_request_t *requests;
    char (*keys)[KEY_LEN];
} workload_t;

/* The zone names, in the order every engine of a run registers them, so
 * that zone ids 0, 1, 2 mean the same everywhere. */
extern const char *const bench_workload_zones[3];

/* Fills w->hosts[0..n-1] (names in w->host_names) from `seed`: about 70%
 * CPU-only Linux, 12% GPU, 12% Windows, 3% confidential, 3% dedicated;
 * zones drawn at random.  The same seed gives the same cluster. */
void bench_workload_hosts_make(workload_t *w, size_t n, uint64_t seed);

/* Fills w->requests[0..m-1] and their keys w->keys from `seed`; zone_ids
 * are the engine's ids of bench_workload_zones.  The same seed gives the
 * same workload. */
void bench_workload_requests_make(workload_t *w, size_t m, uint64_t seed, const int *zone_ids);

#endif /* BERTH_BENCH_WORKLOAD_H */
