/*
 * log.c: berth-agent's log lines (its clocks are lib/clock.h's).
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

#include "agent.h"

const char *log_host = "-";

/* One structured log line on stderr: time, level, host, group, message. */
void logf_(const char *level, const char *key, const char *fmt, ...)
{
    char ts[BERTH__CLOCK_ISO8601_SIZE], msg[1024];
    berth__clock_format_iso8601(berth__clock_wall_ms(), ts, sizeof ts);
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
