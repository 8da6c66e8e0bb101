/*
 * util.h: small helpers every berth-bench scenario uses: a deterministic
 * generator (splitmix64, so that runs with one seed are comparable), the
 * monotonic clock, and rounding of results to a number of decimals.
 */
#ifndef BERTH_BENCH_UTIL_H
#define BERTH_BENCH_UTIL_H

#include <math.h>
#include <stdint.h>
#include <time.h>

/* The next value of the splitmix64 sequence whose state is *s. */
static inline uint64_t bench_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A value in [0, n) from the sequence *s (n > 0). */
static inline uint32_t bench_below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(bench_next(s) % n);
}

/* Nanoseconds of the monotonic clock. */
static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* `x` rounded to `digits` decimals, so that results print as measured
 * rather than with binary noise. */
static inline double bench_rounded(double x, int digits)
{
    double scale = pow(10.0, digits);
    return round(x * scale) / scale;
}

#endif /* BERTH_BENCH_UTIL_H */
