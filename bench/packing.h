/*
 * packing.h: the packers of berth-bench's `quality` scenario (packing.c):
 * Berth's policies as online packers, first-fit decreasing, the check of
 * every packing, and the result rows.  It never reads a file.
 */
#ifndef BERTH_BENCH_PACKING_H
#define BERTH_BENCH_PACKING_H

#include <stddef.h>
#include <stdint.h>

#include "berth.h"
#include "instance.h"

enum { R_CPU, R_MEM, R_GPU, R_COUNT };
enum { P_BINPACK, P_SPREAD, P_FIRSTFIT, P_VECTOR, P_FFD, P_FFD_MAPPED, P_COUNT };

/* Sums over the instances of one family (or a whole workload) for one packer. */
typedef struct agg {
    size_t instances, items, inexact, skipped, unplaced, infeasible;
    uint64_t hosts, bound;
    size_t n_opt;
    uint64_t hosts_opt, opt;
    size_t n_lb;
    uint64_t hosts_lb, lb;
    double stranded[R_COUNT];
    uint64_t stranded_hosts[R_COUNT];
    double seconds;
} agg_t;

/* Scratch for one run: engines and buffers reused across instances. */
typedef struct runner {
    berth_engine_t *engine[P_FFD];  /* binpack, spread, firstfit, binpack
                                     * with the vector score                */
    uint32_t v100;
    long *assign;
    size_t assign_cap;
    int status;                     /* 2 once a packing bug was seen        */
} runner_t;

/* Sets up *run: an engine per policy with `seed`.  Returns 0, or -1 after
 * a message; free *run with bench_runner_free() either way. */
int bench_runner_init(runner_t *run, unsigned long long seed);

/* Frees what *run holds (after bench_runner_init(), whatever it returned). */
void bench_runner_free(runner_t *run);

/* Runs every packer on one instance, adding to agg[packer].  Returns 0, or
 * -1 when the instance was skipped. */
int bench_packing_run(runner_t *run, const char *name, instance_t *in, int workload,
                      agg_t *agg);

/* Adds the sums of *from to *to. */
void bench_agg_add(agg_t *to, const agg_t *from);

/* Emits one result row per packer of agg[P_COUNT] (output.h, bench
 * "quality") for `workload`, `family` and `order`.  Returns 0, or -1 when
 * a row could not be written. */
int bench_packing_emit(const char *workload, const char *family, const char *order,
                       const agg_t *agg);

#endif /* BERTH_BENCH_PACKING_H */
