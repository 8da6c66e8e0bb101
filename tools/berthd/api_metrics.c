/*
 * api_metrics.c: a container group's usage metrics in Azure Monitor's
 * shape (Metrics_List on a container group):
 *
 *   GET .../containerGroups/{name}/providers/Microsoft.Insights/metrics
 *       ?api-version=2018-01-01&metricnames=CpuUsage,MemoryUsage
 *       &timespan=START/END&interval=PT1M&aggregation=Average
 *
 * The metrics are ACI's: CpuUsage (millicores, unit Count) and MemoryUsage
 * (working set, Bytes), one time series per container with the dimension
 * containerName; NetworkBytesReceivedPerSecond and
 * NetworkBytesTransmittedPerSecond (BytesPerSecond), one series for the
 * group, whose containers share one network.  Each series has a data
 * point per `interval` (the time grain: whole minutes, PT1M up to P1D, or
 * FULL for the whole timespan) from the timespan's start, carrying the
 * aggregations asked for (Average, Minimum, Maximum, Total, Count) over
 * the agent's samples in it, or only its timeStamp when none fell in it.
 * Defaults: all four metrics, the last hour, PT1M, Average.  The samples
 * are what the group's agent last wrote (berth_store_metrics_read(): the
 * last 60 of its --metrics-interval), so a long timespan shows data only
 * near its end.
 *
 * Bad parameters answer 400 with the parameter named as the target and
 * nothing read; a group that does not exist answers 404 ResourceNotFound;
 * the route sits under the subscription, so a token answers for the
 * groups of its own subscriptions only, as on every group route.
 * It must never block the loop (the reads are callbacks of records.c and
 * the asynchronous store) and never write anything.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api-internal.h"
#include "query.h"

#define POINTS_MAX 1440              /* data points one series may have     */
#define METRICS_N 4

enum { M_CPU, M_MEMORY, M_RX, M_TX };

static const struct metric_def {
    const char *name, *localized, *unit;
    bool per_container;
} METRICS[METRICS_N] = {
    {"CpuUsage", "CPU Usage", "Count", true},
    {"MemoryUsage", "Memory Usage", "Bytes", true},
    {"NetworkBytesReceivedPerSecond", "Network Bytes Received Per Second", "BytesPerSecond",
     false},
    {"NetworkBytesTransmittedPerSecond", "Network Bytes Transmitted Per Second",
     "BytesPerSecond", false},
};

enum { A_AVERAGE = 1, A_MINIMUM = 2, A_MAXIMUM = 4, A_TOTAL = 8, A_COUNT = 16 };

static const struct aggregation_def {
    const char *name, *member;
    unsigned bit;
} AGGREGATIONS[] = {
    {"Average", "average", A_AVERAGE}, {"Minimum", "minimum", A_MINIMUM},
    {"Maximum", "maximum", A_MAXIMUM}, {"Total", "total", A_TOTAL},
    {"Count", "count", A_COUNT},
};
#define AGGREGATIONS_N (sizeof AGGREGATIONS / sizeof AGGREGATIONS[0])

/* What a request asks for, once its parameters are read. */
typedef struct metrics_query {
    bool want[METRICS_N];
    bool aggregation[AGGREGATIONS_N];
    int64_t start_ms, end_ms;
    int64_t grain_ms;               /* a data point's span                  */
    char interval[32];              /* as asked, e.g. "PT1M" or "FULL"      */
} metrics_query_t;

typedef struct metrics_ctx {
    bd_api_t *api;
    bd_reply_t *reply;
    char key[BD_KEY_MAX + 1];
    char rg[BD_RG_MAX + 1];
    char name[64];
    char id[512];                   /* the group's ARM id                   */
    char region[64];
    metrics_query_t q;
} metrics_ctx_t;

/* ---- parameters ------------------------------------------------------------------------- */

/* An ISO 8601 duration of days, hours, minutes and whole seconds
 * ("P1D", "PT1H30M", "PT90S") in ms, or -1. */
static int64_t duration_ms(const char *s)
{
    if (*s++ != 'P' || *s == '\0')
        return -1;
    int64_t total = 0;
    bool in_time = false, any = false;
    while (*s != '\0') {
        if (*s == 'T' && !in_time) {
            in_time = true;
            s++;
            if (*s == '\0')
                return -1;
            continue;
        }
        char *end;
        if (*s < '0' || *s > '9')
            return -1;
        long long v = strtoll(s, &end, 10);
        if (end == s || v > 100000)
            return -1;
        int64_t unit = !in_time && *end == 'D' ? 86400000
                     : in_time && *end == 'H' ? 3600000
                     : in_time && *end == 'M' ? 60000
                     : in_time && *end == 'S' ? 1000 : 0;
        if (unit == 0)
            return -1;
        total += v * unit;
        any = true;
        s = end + 1;
    }
    return any ? total : -1;
}

/* "YYYY-MM-DDTHH:MM:SS[.fff]Z" in ms since the epoch, or -1. */
static int64_t datetime_ms(const char *s)
{
    struct tm tm = {0};
    int n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 || n != 19)
        return -1;
    const char *p = s + n;
    int64_t frac = 0;
    if (*p == '.') {
        int64_t scale = 100;
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            frac += (*p - '0') * scale;
    }
    if (strcmp(p, "Z") != 0 || tm.tm_year < 1970 || tm.tm_mon < 1 || tm.tm_mon > 12 ||
        tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
        tm.tm_sec > 59)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    return t < 0 ? -1 : (int64_t)t * 1000 + frac;
}

/* Answers 400 BadRequest naming parameter `name`; returns false. */
static bool bad_parameter(bd_reply_t *reply, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool bad_parameter(bd_reply_t *reply, const char *name, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    bd_reply_error(reply, 400, "BadRequest", name, "%s", msg);
    return false;
}

/* A query parameter, or `dflt` when absent; false (400 sent) when
 * malformed. */
static bool param(const bd_request_t *req, bd_reply_t *reply, const char *name,
                  const char *dflt, char *out, size_t cap)
{
    int q = bd_query_get(req->query, name, out, cap);
    if (q < 0)
        return bad_parameter(reply, name, "the %s parameter is malformed or too long", name);
    if (q == 0 || out[0] == '\0')
        snprintf(out, cap, "%s", dflt);
    return true;
}

/* Reads the comma-separated names in `list` (any case), each the name of
 * an entry of `table` (n entries of `size` bytes whose first member is
 * their name), setting chosen[i] for each; false (400 naming `param`, the
 * name `what` it is not) at the first that names none, or when none is
 * named at all. */
static bool parse_names(char *list, const void *table, size_t size, size_t n, bool *chosen,
                        const char *param, const char *what, bd_reply_t *reply)
{
    bool any = false;
    char *save = NULL;
    for (char *w = strtok_r(list, ",", &save); w != NULL; w = strtok_r(NULL, ",", &save)) {
        while (*w == ' ')
            w++;
        size_t i;
        for (i = 0; i < n; i++)
            if (strcasecmp(w, *(const char *const *)((const char *)table + i * size)) == 0)
                break;
        if (i == n)
            return bad_parameter(reply, param, "'%s' is not %s", w, what);
        chosen[i] = any = true;
    }
    return any || bad_parameter(reply, param, "the %s parameter names none", param);
}

/* "START/END", "START/DURATION", "DURATION/END", or a DURATION ending now. */
static bool parse_timespan(const char *ts, metrics_query_t *q, int64_t now_ms, bd_reply_t *reply)
{
    char a[64], b[64];
    const char *slash = strchr(ts, '/');
    if (strlen(ts) >= sizeof a)
        return bad_parameter(reply, "timespan", "the timespan '%s' is too long", ts);
    if (slash == NULL) {
        int64_t d = duration_ms(ts);
        q->end_ms = now_ms;
        q->start_ms = d > 0 ? now_ms - d : -1;
    } else {
        snprintf(a, sizeof a, "%.*s", (int)(slash - ts), ts);
        snprintf(b, sizeof b, "%s", slash + 1);
        int64_t s = datetime_ms(a), e = datetime_ms(b);
        if (s >= 0 && e < 0 && duration_ms(b) > 0)
            e = s + duration_ms(b);
        else if (s < 0 && e >= 0 && duration_ms(a) > 0)
            s = e - duration_ms(a);
        q->start_ms = s;
        q->end_ms = e;
    }
    if (q->start_ms < 0 || q->end_ms < 0)
        return bad_parameter(reply, "timespan",
                             "the timespan '%s' is not START/END (ISO 8601 times in UTC, "
                             "e.g. 2024-01-01T00:00:00Z/2024-01-01T01:00:00Z), START/DURATION, "
                             "DURATION/END or a DURATION",
                             ts);
    if (q->end_ms <= q->start_ms)
        return bad_parameter(reply, "timespan", "the timespan '%s' ends before it starts", ts);
    return true;
}

static bool parse_interval(const char *iv, metrics_query_t *q, bd_reply_t *reply)
{
    snprintf(q->interval, sizeof q->interval, "%s", iv);
    if (strcasecmp(iv, "FULL") == 0) {
        snprintf(q->interval, sizeof q->interval, "FULL");
        q->grain_ms = q->end_ms - q->start_ms;
    } else {
        q->grain_ms = duration_ms(iv);
        if (q->grain_ms < 60000 || q->grain_ms > 86400000 || q->grain_ms % 60000 != 0)
            return bad_parameter(reply, "interval",
                                 "the interval '%s' is not a time grain: whole minutes from "
                                 "PT1M to P1D (ISO 8601), or FULL",
                                 iv);
    }
    if ((q->end_ms - q->start_ms + q->grain_ms - 1) / q->grain_ms > POINTS_MAX)
        return bad_parameter(reply, "interval",
                             "the interval '%s' cuts the timespan into more than 1440 data "
                             "points: choose a longer one or a shorter timespan",
                             iv);
    return true;
}

/* Reads the request's parameters into *q; false when one is bad (400 sent). */
static bool parse_query(const bd_request_t *req, bd_reply_t *reply, metrics_query_t *q)
{
    char names[512], aggr[128], ts[128], iv[32];
    memset(q, 0, sizeof *q);
    int64_t now = berth__clock_wall_ms();
    char dflt_ts[80], from[BERTH__CLOCK_ISO8601_SIZE], to[BERTH__CLOCK_ISO8601_SIZE];
    berth__clock_format_iso8601(now - 3600000, from, sizeof from);
    berth__clock_format_iso8601(now, to, sizeof to);
    snprintf(dflt_ts, sizeof dflt_ts, "%s/%s", from, to);
    return param(req, reply, "metricnames",
                 "CpuUsage,MemoryUsage,NetworkBytesReceivedPerSecond,"
                 "NetworkBytesTransmittedPerSecond",
                 names, sizeof names) &&
           parse_names(names, METRICS, sizeof METRICS[0], METRICS_N, q->want, "metricnames",
                       "a metric of Microsoft.ContainerInstance/containerGroups: CpuUsage, "
                       "MemoryUsage, NetworkBytesReceivedPerSecond or "
                       "NetworkBytesTransmittedPerSecond",
                       reply) &&
           param(req, reply, "aggregation", "Average", aggr, sizeof aggr) &&
           parse_names(aggr, AGGREGATIONS, sizeof AGGREGATIONS[0], AGGREGATIONS_N,
                       q->aggregation, "aggregation",
                       "an aggregation: Average, Minimum, Maximum, Total or Count", reply) &&
           param(req, reply, "timespan", dflt_ts, ts, sizeof ts) &&
           parse_timespan(ts, q, now, reply) &&
           param(req, reply, "interval", "PT1M", iv, sizeof iv) && parse_interval(iv, q, reply);
}

/* ---- the answer --------------------------------------------------------------------------- */

/* "YYYY-MM-DDTHH:MM:SSZ", as Azure Monitor writes its times. */
static json_t *time_json(int64_t ms)
{
    char t[BERTH__CLOCK_ISO8601_SIZE];
    berth__clock_format_iso8601(ms - ms % 1000, t, sizeof t);
    char *dot = strchr(t, '.');
    if (dot != NULL)
        snprintf(dot, sizeof t - (size_t)(dot - t), "Z");
    return json_string(t);
}

/* One sample's value of metric m (for `container` when per container);
 * false when the sample has none. */
static bool sample_value(json_t *sample, int m, const char *container, double *out)
{
    if (!METRICS[m].per_container) {
        json_t *v = json_object_get(sample, m == M_RX ? "rx" : "tx");
        *out = (double)json_integer_value(v);
        return json_is_integer(v);
    }
    json_t *c = api_find_named(json_object_get(sample, "containers"), container);
    json_t *v = json_object_get(c, m == M_CPU ? "cpu" : "memory");
    *out = (double)json_integer_value(v);
    return json_is_integer(v);
}

/* A sample's value, placed in its data point. */
typedef struct placed {
    int64_t point;                  /* the data point's index               */
    double value;
} placed_t;

static int placed_cmp(const void *a, const void *b)
{
    const placed_t *x = a, *y = b;
    return x->point < y->point ? -1 : x->point > y->point;
}

/* The data points of metric m (for `container`) over the query's span:
 * the samples (the last BERTH_METRICS_SAMPLES_MAX) placed in their points
 * once, then one walk over the points, so a long span costs its points
 * plus the samples, not their product. */
static json_t *series_data(const metrics_query_t *q, json_t *samples, int m,
                           const char *container)
{
    placed_t placed[BERTH_METRICS_SAMPLES_MAX];
    size_t n = 0, total = json_array_size(samples);
    for (size_t i = total > BERTH_METRICS_SAMPLES_MAX ? total - BERTH_METRICS_SAMPLES_MAX : 0;
         i < total; i++) {
        json_t *s = json_array_get(samples, i);
        int64_t at = json_integer_value(json_object_get(s, "time"));
        double v;
        if (at >= q->start_ms && at < q->end_ms && sample_value(s, m, container, &v))
            placed[n++] = (placed_t){(at - q->start_ms) / q->grain_ms, v};
    }
    qsort(placed, n, sizeof placed[0], placed_cmp);
    json_t *data = json_array();
    size_t next = 0;
    int64_t k = 0;
    for (int64_t t = q->start_ms; t < q->end_ms && data != NULL; t += q->grain_ms, k++) {
        double sum = 0, min = 0, max = 0;
        size_t count = 0;
        for (; next < n && placed[next].point == k; next++, count++) {
            double v = placed[next].value;
            min = count == 0 || v < min ? v : min;
            max = count == 0 || v > max ? v : max;
            sum += v;
        }
        json_t *point = json_pack("{s:o}", "timeStamp", time_json(t));
        if (count > 0)
            for (size_t a = 0; a < AGGREGATIONS_N; a++) {
                if (!q->aggregation[a])
                    continue;
                unsigned bit = AGGREGATIONS[a].bit;
                double x = bit == A_AVERAGE ? sum / (double)count
                         : bit == A_MINIMUM ? min
                         : bit == A_MAXIMUM ? max
                         : bit == A_TOTAL ? sum : (double)count;
                json_object_set_new(point, AGGREGATIONS[a].member, json_real(x));
            }
        json_array_append_new(data, point);
    }
    return data;
}

/* The names of the containers the samples speak of, in order of first
 * appearance. */
static json_t *container_names(json_t *samples)
{
    json_t *names = json_array();
    size_t i, j;
    json_t *s, *c;
    json_array_foreach(samples, i, s)
    json_array_foreach(json_object_get(s, "containers"), j, c)
    {
        const char *n = api_jstr(c, "name");
        bool seen = false;
        size_t k;
        json_t *x;
        json_array_foreach(names, k, x) seen = seen || strcmp(json_string_value(x), n) == 0;
        if (!seen && n[0] != '\0')
            json_array_append_new(names, json_string(n));
    }
    return names;
}

static json_t *metrics_body(const metrics_ctx_t *c, json_t *samples)
{
    json_t *value = json_array();
    json_t *names = container_names(samples);
    for (int m = 0; m < METRICS_N; m++) {
        if (!c->q.want[m])
            continue;
        json_t *series = json_array();
        if (METRICS[m].per_container) {
            size_t i;
            json_t *n;
            json_array_foreach(names, i, n)
            json_array_append_new(
                series,
                json_pack("{s:[{s:{s:s,s:s},s:O}],s:o}", "metadatavalues", "name", "value",
                          "containerName", "localizedValue", "containerName", "value", n,
                          "data", series_data(&c->q, samples, m, json_string_value(n))));
        } else {
            json_array_append_new(series, json_pack("{s:[],s:o}", "metadatavalues", "data",
                                                    series_data(&c->q, samples, m, NULL)));
        }
        char id[640];
        snprintf(id, sizeof id, "%s/providers/Microsoft.Insights/metrics/%s", c->id,
                 METRICS[m].name);
        json_array_append_new(
            value, json_pack("{s:s,s:s,s:{s:s,s:s},s:s,s:o,s:s}", "id", id, "type",
                             "Microsoft.Insights/metrics", "name", "value", METRICS[m].name,
                             "localizedValue", METRICS[m].localized, "unit", METRICS[m].unit,
                             "timeseries", series, "errorCode", "Success"));
    }
    json_decref(names);
    json_t *span = json_pack("[o,o]", time_json(c->q.start_ms), time_json(c->q.end_ms));
    char ts[80];
    snprintf(ts, sizeof ts, "%s/%s", json_string_value(json_array_get(span, 0)),
             json_string_value(json_array_get(span, 1)));
    json_decref(span);
    return json_pack("{s:i,s:s,s:s,s:o,s:s,s:s}", "cost", 0, "timespan", ts, "interval",
                     c->q.interval, "value", value, "namespace",
                     "Microsoft.ContainerInstance/containerGroups", "resourceregion",
                     c->region);
}

static void metrics_read(int status, const char *text, size_t len, const berth_error_t *err,
                         void *data)
{
    (void)err;
    metrics_ctx_t *c = data;
    if (status != 0 && status != BERTH_ENOENT) {
        bd_reply_store_failing(c->reply);
    } else {
        json_t *m = status == 0 ? json_loadb(text, len, 0, NULL) : NULL;
        json_t *samples = json_object_get(m, "samples");
        json_t *body = metrics_body(c, json_is_array(samples) ? samples : NULL);
        json_decref(m);
        if (body == NULL)
            bd_reply_error(c->reply, 503, "ServiceUnavailable", "", "out of memory");
        else
            bd_reply_send(c->reply, 200, body, NULL);
    }
    free(c);
}

static void metrics_record(int status, json_t *rec, const char *sha1, void *data)
{
    (void)sha1;
    metrics_ctx_t *c = data;
    berth_error_t err;
    if (status != 0) {
        bd_reply_store_failing(c->reply);
    } else if (rec == NULL) {
        api_reply_not_found(c->reply, c->rg, c->name);
    } else {
        snprintf(c->id, sizeof c->id, "%s", api_jstr(rec, "id"));
        snprintf(c->region, sizeof c->region, "%s", api_jstr(rec, "location"));
        if (berth_store_async_metrics_read(c->api->async, c->key, metrics_read, c, &err) == 0)
            return;
        bd_reply_error(c->reply, 503, "ServiceUnavailable", "", "out of memory");
    }
    free(c);
}

/* Contract: api-internal.h. */
void api_get_metrics(bd_api_t *api, const bd_request_t *req, const op_t *op, bd_reply_t *reply)
{
    metrics_query_t q;
    if (!parse_query(req, reply, &q))
        return;
    metrics_ctx_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        bd_reply_error(reply, 503, "ServiceUnavailable", "", "out of memory");
        return;
    }
    c->api = api;
    c->reply = reply;
    c->q = q;
    snprintf(c->key, sizeof c->key, "%s", op->key);
    snprintf(c->rg, sizeof c->rg, "%s", op->rg);
    snprintf(c->name, sizeof c->name, "%s", op->name);
    if (bd_records_get(api->records, op->key, metrics_record, c) != 0) {
        free(c);
        bd_reply_error(reply, 503, "ServiceUnavailable", "", "out of memory");
    }
}

/* Contract: api-internal.h. */
bool api_metrics_api_version(const char *v)
{
    static const char *const known[] = {"2018-01-01", "2019-07-01", "2021-05-01",
                                        "2023-10-01"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(v, known[i]) == 0)
            return true;
    return false;
}
