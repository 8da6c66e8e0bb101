/*
 * api.h: berth-bench's `api` scenario (api.c).
 */
#ifndef BERTH_BENCH_API_H
#define BERTH_BENCH_API_H

/* Runs `berth-bench api ...` (argv[1] is "api"); returns the exit status. */
int bench_api_main(int argc, char **argv);

#endif /* BERTH_BENCH_API_H */
