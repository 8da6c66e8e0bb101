/*
 * lib/clock.c: millisecond clocks, sleeping, ISO 8601 (see clock.h).
 *
 * It must never use the wall clock for a deadline, nor the local time zone
 * for a timestamp.
 */
#include "clock.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

/* Contract: clock.h. */
int64_t berth__clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Contract: clock.h. */
int64_t berth__clock_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Contract: clock.h. */
void berth__clock_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* Contract: clock.h. */
void berth__clock_format_iso8601(int64_t ms, char *out, size_t cap)
{
    if (out == NULL || cap == 0)
        return;
    /* Floor division, so that -1 ms is 23:59:59.999 of the day before. */
    int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int msec = (int)(ms - secs * 1000);
    time_t t = (time_t)secs;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL) {
        snprintf(out, cap, "1970-01-01T00:00:00.000Z");
        return;
    }
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, msec);
}
