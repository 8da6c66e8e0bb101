/*
 * incore.h: berth-bench's `incore` scenario (incore.c): placement
 * throughput, latency and memory in memory.
 */
#ifndef BERTH_BENCH_INCORE_H
#define BERTH_BENCH_INCORE_H

/* Runs `berth-bench incore ...` (argv[1] is "incore"); returns the exit
 * status: 0, 1 when the run failed, 2 on a usage error. */
int bench_incore_main(int argc, char **argv);

#endif /* BERTH_BENCH_INCORE_H */
