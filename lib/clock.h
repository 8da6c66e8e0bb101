/*
 * lib/clock.h: the clocks Berth's daemon, tools, plugins and tests read, in
 * milliseconds, a bounded sleep, and the one time format they print
 * (ISO 8601 / RFC 3339 in UTC with milliseconds).
 *
 * Wall time is for what people and peers read (timestamps, logs);
 * monotonic time is for every deadline and duration.  Nothing here may
 * keep state or sleep longer than asked.
 */
#ifndef BERTH_LIB_CLOCK_H
#define BERTH_LIB_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Milliseconds since the epoch (CLOCK_REALTIME). */
int64_t berth__clock_wall_ms(void);

/* Milliseconds of CLOCK_MONOTONIC: for deadlines and durations only. */
int64_t berth__clock_monotonic_ms(void);

/* Sleeps `ms` milliseconds (none when ms <= 0), resuming after signals. */
void berth__clock_sleep_ms(int64_t ms);

/* The length of "YYYY-MM-DDTHH:MM:SS.mmmZ" and its NUL. */
#define BERTH__CLOCK_ISO8601_SIZE 25

/* Formats wall time `ms` (milliseconds since the epoch, negative allowed)
 * as "YYYY-MM-DDTHH:MM:SS.mmmZ" into out[cap], truncating when cap is short
 * (nothing when cap is 0).  A time gmtime cannot represent prints as the
 * epoch. */
void berth__clock_format_iso8601(int64_t ms, char *out, size_t cap);

#endif
