/*
 * replay.h: the Alibaba workloads of berth-bench's `quality` scenario,
 * replayed with their arrivals and departures on fixed clusters built from
 * Alibaba's host lists (replay.c).
 */
#ifndef BERTH_BENCH_REPLAY_H
#define BERTH_BENCH_REPLAY_H

#include <stddef.h>

typedef struct replay_options {
    const char *traces_dir;         /* the traces folder (../shared/traces) */
    size_t limit;                   /* at most this many tasks/instances per workload (0: all) */
    unsigned long long seed;
} replay_options_t;

/* Replays workload `set` ("alibaba-2017", "alibaba-2025", or a GPU
 * workload: "gpu-spot2026", "gpu-pai2020", "gpu-spot2026-multi",
 * "gpu-pai2020-multi"), with every policy and the linear first-fit baseline
 * and plain best fit on the same input, emitting
 * one result per policy (output.h, bench "replay").  Returns 0, or -1 with a
 * message on stderr (a missing trace file). */
int bench_replay_run(const char *set, const replay_options_t *o);

#endif /* BERTH_BENCH_REPLAY_H */
