/*
 * quality.h: berth-bench's `quality` scenario: packing quality on real
 * workloads and packing benchmarks (quality.c: the BPPLIB one-dimensional
 * and the vector-packing instances with known optima or lower bounds;
 * replay.c: the Alibaba host lists and workloads replayed with their
 * arrivals and departures).
 */
#ifndef BERTH_BENCH_QUALITY_H
#define BERTH_BENCH_QUALITY_H

#include <stddef.h>

/* Runs `berth-bench quality ...` (argv[1] is "quality"); returns the exit
 * status. */
int bench_quality_main(int argc, char **argv);

#endif /* BERTH_BENCH_QUALITY_H */
