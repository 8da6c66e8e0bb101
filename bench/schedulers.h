/*
 * schedulers.h: the forked scheduler processes the `redis` and `region`
 * scenarios commit through (schedulers.c): each opens its own replica of
 * a cell, every one is ready before the clock starts, all start at once,
 * and each reports what it committed.  It never judges a figure and every
 * wait on a child is bounded.
 */
#ifndef BERTH_BENCH_SCHEDULERS_H
#define BERTH_BENCH_SCHEDULERS_H

#include <stddef.h>
#include <stdint.h>

#include "berth.h"
#include "workload.h"

/* What one scheduler process reports through its pipe. */
typedef struct scheduler_report {
    uint64_t committed, rejected, failed;
    uint64_t ns;                    /* from the go to its last commit        */
    size_t index;                   /* its share's, in the array run          */
    int open_failed;
} scheduler_report_t;

/* One scheduler's share: the cell it commits to and the requests of w it
 * commits, first, first + stride, ... (count of them), in batches. */
typedef struct scheduler_share {
    const char *url;
    const char *cell;
    uint64_t seed;                  /* its engine's                          */
    uint32_t wait_replicas;         /* the store's WAIT (0: none)            */
    const workload_t *w;
    size_t first, stride, count, batch;
} scheduler_share_t;

/* An engine whose zone ids match the workload's, opened as a replica of
 * `cell` at `url` (a store with a 30 s command timeout and, when
 * wait_replicas > 0, a 5 s WAIT).  Returns 0, or -1 after a message. */
int bench_replica_open(const char *url, const char *cell, uint64_t seed, uint32_t wait_replicas,
                       berth_engine_t **engine, berth_store_t **store);

/* Puts hosts w->hosts[0..n-1] into `cell` at `url` through a store, as an
 * operator would.  Returns 0, or -1 after a message. */
int bench_cell_hosts_put(const char *url, const char *cell, uint64_t seed, const workload_t *w,
                         size_t n);

/* Forks one scheduler per share (at most 64), waits until every one has
 * opened its replica, starts them at once and collects their reports into
 * reports[0..n-1]; *ns is the time from the start to the last report.
 * Returns 0, or -1 after a message (a scheduler that did not get ready or
 * report, or failed to open); every child is reaped either way. */
int bench_schedulers_run(const scheduler_share_t *shares, size_t n, scheduler_report_t *reports,
                         uint64_t *ns);

#endif /* BERTH_BENCH_SCHEDULERS_H */
