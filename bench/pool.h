/*
 * pool.h: berth-bench's `pool` scenario (pool.c): create latency without
 * and with a standby pool.
 */
#ifndef BERTH_BENCH_POOL_H
#define BERTH_BENCH_POOL_H

/* Runs `berth-bench pool ...` (argv[1] is "pool"); returns the exit status. */
int bench_pool_main(int argc, char **argv);

#endif /* BERTH_BENCH_POOL_H */
