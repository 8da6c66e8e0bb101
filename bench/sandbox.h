/*
 * sandbox.h: berth-bench's `sandbox` scenario (sandbox.c): the start-time
 * cost of gVisor against runc through the docker plugin.
 */
#ifndef BERTH_BENCH_SANDBOX_H
#define BERTH_BENCH_SANDBOX_H

/* Runs `berth-bench sandbox ...` (argv[1] is "sandbox").  Returns the exit
 * status: 0, 1 on a failure, 2 for bad options. */
int bench_sandbox_main(int argc, char **argv);

#endif /* BERTH_BENCH_SANDBOX_H */
