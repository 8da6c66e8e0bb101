/*
 * redeploy.h: berth-bench's `redeploy` scenario: updates of running groups
 * (redeploy.c).
 */
#ifndef BERTH_BENCH_REDEPLOY_H
#define BERTH_BENCH_REDEPLOY_H

/* Runs `berth-bench redeploy ...` (argv[1] is "redeploy"); returns the
 * exit status. */
int bench_redeploy_main(int argc, char **argv);

#endif /* BERTH_BENCH_REDEPLOY_H */
