/*
 * util.h: small helpers every berth-bench scenario uses: a deterministic
 * generator (splitmix64, so that runs with one seed are comparable), the
 * monotonic clock, rounding of results to a number of decimals, and the
 * parsers of the options the scenarios share.
 */
#ifndef BERTH_BENCH_UTIL_H
#define BERTH_BENCH_UTIL_H

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "berth.h"

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

/* Parses a count: a decimal from 1 to `max`.  Returns 0, or -1 when bad. */
static inline int bench_parse_size(const char *s, unsigned long long max, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v == 0 || v > max)
        return -1;
    *out = (size_t)v;
    return 0;
}

/* Parses a seed (any unsigned 64-bit decimal).  Returns 0, or -1 when bad. */
static inline int bench_parse_seed(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* Parses a comma-separated list of policy names into a mask of
 * 1 << berth_policy_t.  Returns 0, or -1 when a name is unknown or empty. */
static inline int bench_parse_policies(const char *s, unsigned *mask)
{
    char name[32];
    *mask = 0;
    for (;;) {
        size_t n = strcspn(s, ",");
        berth_policy_t p;
        if (n == 0 || n >= sizeof name)
            return -1;
        memcpy(name, s, n);
        name[n] = '\0';
        if (berth_policy_parse(name, &p) != 0 || (unsigned)p >= 8 * sizeof *mask)
            return -1;
        *mask |= 1u << p;
        if (s[n] == '\0')
            return 0;
        s += n + 1;
    }
}

#endif /* BERTH_BENCH_UTIL_H */
