/*
 * redis.h: berth-bench's `redis` scenario (redis.c): commits through the
 * Redis store against the ceiling of the same server.
 */
#ifndef BERTH_BENCH_REDIS_H
#define BERTH_BENCH_REDIS_H

/* Runs `berth-bench redis ...` (argv[1] is "redis"); returns the exit
 * status: 0, 1 when the run failed, 2 on a usage error. */
int bench_redis_main(int argc, char **argv);

#endif /* BERTH_BENCH_REDIS_H */
