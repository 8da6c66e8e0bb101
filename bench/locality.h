/*
 * locality.h: berth-bench's image-locality measurement (locality.c), run
 * by the `quality` scenario as its set "locality".
 */
#ifndef BERTH_BENCH_LOCALITY_H
#define BERTH_BENCH_LOCALITY_H

/* Replays one seeded workload with image locality on and then off on the
 * same input, emitting one result each (output.h, bench "locality").
 * Returns 0, or -1 with a message on stderr. */
int bench_locality_run(unsigned long long seed);

#endif /* BERTH_BENCH_LOCALITY_H */
