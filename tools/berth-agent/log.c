/*
 * log.c: berth-agent's clocks and its log lines.
 *
 * Every log line the agent writes goes through logf_(): one structured line
 * on stderr (time, level, host, group, message), safe from the heartbeat
 * thread as well as the loop.  Secrets (secure environment values, secret
 * volumes, registry passwords) are never logged: log lines name groups,
 * containers, images and events only.  It must never log a secret, and
 * never take a lock or keep state beyond the host's name.
 */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "agent.h"

/* The wall clock, in ms since the epoch (CLOCK_REALTIME): what events and
 * views show, and what restarts are due by. */
int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Writes `ms` (since the epoch) into buf (cap bytes, 40 is plenty) as an
 * ISO 8601 UTC time with milliseconds, e.g. 2026-01-02T03:04:05.678Z. */
void time_format(int64_t ms, char *buf, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, cap - n, ".%03dZ", (int)(ms % 1000));
}

/* CLOCK_MONOTONIC in ms, which no clock change moves: the sweep's and the
 * heartbeat's clock. */
int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *log_host = "-";

/* One structured log line on stderr: time, level, host, group, message. */
void logf_(const char *level, const char *key, const char *fmt, ...)
{
    char ts[40], msg[1024];
    time_format(now_ms(), ts, sizeof ts);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '"' || *p == '\n')
            *p = *p == '"' ? '\'' : ' ';
    fprintf(stderr, "time=%s level=%s host=%s%s%s msg=\"%s\"\n", ts, level, log_host,
            key ? " group=" : "", key ? key : "", msg);
}
