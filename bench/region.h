/*
 * region.h: berth-bench's `region` scenario (region.c): commits to 1, 2
 * and 4 cells of one Redis Cluster at once, without and with WAIT.
 */
#ifndef BERTH_BENCH_REGION_H
#define BERTH_BENCH_REGION_H

/* Runs `berth-bench region ...` (argv[1] is "region"); returns the exit
 * status: 0, 1 when the run failed, 2 on a usage error. */
int bench_region_main(int argc, char **argv);

#endif /* BERTH_BENCH_REGION_H */
