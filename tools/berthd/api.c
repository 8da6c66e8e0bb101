/*
 * api.c: berthd's ACI REST API: routes, api-versions, validation,
 * container-group resources in Redis, the request stream, long-running
 * operations, usages and capabilities, logs and exec through the agents.
 *
 * BLOCKING.  Most Redis calls here are still synchronous (hiredis, and
 * the sync berth_store_*): Redis is expected to be local, so such a
 * request blocks the event loop for a few round trips.  Logs and exec do
 * not: they wait for the host's agent (at most cfg->agent_timeout_ms) as
 * callbacks of the asynchronous store (berth_store_async_container_logs(),
 * _exec()), so a stalled agent stalls only the requests that asked it.
 *
 * THE REQUEST STREAM.  Every mutating request (PUT, PATCH, DELETE, POST
 * start/stop/restart) is first written to berth:{C}:requests and, in the
 * same MULTI/EXEC, read into this berthd's pending list (XADD, then
 * XREADGROUP GROUP berthd <consumer> COUNT 1 STREAMS ... >).  Because every
 * berthd adds and reads in one transaction, no entry is ever left
 * undelivered between transactions, so the read returns the entry just
 * added (checked; otherwise more entries are read, bounded, and the foreign
 * ones are left pending for the claim timer).  The work is then done, its
 * results (resource record, operation record, POST answer) written to
 * Redis, the entry acknowledged and deleted (XACK + XDEL), and only then is
 * the reply sent.  A berthd that dies in between leaves the entry pending:
 * a timer (every 5 s) claims entries idle longer than 30 s (XAUTOCLAIM;
 * $BERTHD_CLAIM_IDLE_MS overrides the threshold, for tests) from any
 * consumer, including this berthd's own name before a restart, and runs
 * them again.  The same timer marks down the hosts whose agent stopped
 * heartbeating and moves their groups (berth_store_hosts_expire()).
 * Every operation is idempotent: a PUT of the document the
 * group already runs changes nothing, a DELETE of a missing resource
 * succeeds, stop of a stopped group and start of a running one do nothing.
 * A POST with x-ms-client-request-id records its first answer for 10
 * minutes (berth:{C}:done:<id>), so a client's retry gets it again.
 *
 * RESOURCE STATES.  A PUT of a new group places it where the engine
 * chooses; of a running one redeploys it under the same key (the core
 * refuses changes that need a delete); of a stopped one starts it again
 * with the new document, on its last host when it fits there.  A
 * resource's provisioningState is the agent's view's when the view
 * describes the record's generation, else the record's own (Creating).
 * Two berthds creating the same new name at once both succeed; the last
 * record written wins (the placement is one key either way).
 *
 * ERROR CHOICES.  No host can take a group (BERTH_ENOSPC): 409 with the
 * core's code (not 5xx: SDKs retry 5xx at once, a retry storm that cannot
 * succeed).  A property change that needs a delete: 409 with the core's
 * code and target.  Redis failing: 500.  Logs/exec with no answer from the
 * agent: 503.
 *
 * EXEC.  Berth's exec is not interactive.  POST .../exec answers
 * {webSocketUri, password}; the URI is "<ws|wss>://HOST:PORT/berth/exec/<id>".
 * The client POSTs to http(s)://HOST:PORT/berth/exec/<id> with the body
 * {"password": "<password>"} (the server hands the API no arbitrary
 * headers, so the password travels in the body) and gets
 * {output, exitCode}; the command is split on spaces.  A session lives 60
 * seconds and serves once; the password is compared in constant time.  The
 * server may still demand a bearer token on the route.
 *
 * USAGES.  GET .../locations/{loc}/usages reports "ContainerGroups" (this
 * subscription's groups in that location; limit 2000, not enforced),
 * "StandardCores" (whole cores allocated / capacity in the cell),
 * "StandardMemoryInGB" (GB allocated / capacity) and, per GPU SKU,
 * "Standard<SKU>Gpus" (GPUs allocated / capacity).  A cell serves every
 * location: capacity is the cell's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "berthd.h"
#include "resource.h"

#define SEG_MAX 16
#define PATH_MAX_BYTES 2048
#define CLAIM_IDLE_MS_DEFAULT 30000u
#define CLAIM_PERIOD_MS 5000u
#define DONE_TTL_S 600
#define EXEC_TTL_S 60
#define PAGE_MAX 100
#define EXEC_ARGV_MAX 64
#define LIST_SCAN_MAX 100000        /* groups one usage count looks at      */
#define NBUCKETS 12
#define RANGE_MAX 512
#define OP_TTL_MS (24 * 3600 * 1000LL) /* operation records kept a day       */

static const double BUCKETS[NBUCKETS - 1] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,   0.25,   0.5,   1.0,  2.5};

struct bd_api {
    const bd_config_t *cfg;
    struct event_base *base;
    berth_engine_t *engine;
    berth_store_t *store;
    /* The asynchronous store (its own replica): agent calls (logs, exec)
     * wait on it as callbacks, never on the loop. */
    berth_engine_t *async_engine;
    berth_store_async_t *async;
    berth_limits_t limits;
    redisContext *rc;
    struct event *timer;
    char cell[BERTH_NAME_MAX + 1];
    char consumer[128];
    char k_requests[128];
    uint32_t claim_idle_ms;
    char op_cursor[32];             /* HSCAN cursor of the operations' pruning */
    /* metrics */
    uint64_t hist[NBUCKETS];
    uint64_t hist_count;
    double hist_sum;
    uint64_t conflicts;             /* BERTH_ECONFLICT from commits         */
    uint64_t nospace;               /* BERTH_ENOSPC (after the store's retries) */
    uint64_t replayed;              /* requests claimed and run again       */
    bd_pools_t *pools;              /* standby pools (pools.c)              */
    uint64_t evictions;             /* Spot groups evicted by this berthd's PUTs */
};

/* One mutating operation, as a request or as a stream entry. */
typedef struct op {
    char kind[16];                  /* put patch delete start stop restart  */
    char key[BD_KEY_MAX + 1];       /* "<sub>/<rg>/<name>" lowercase        */
    char sub[BD_SUB_MAX + 1];
    char rg[BD_RG_MAX + 1];
    char name[64];
    char apiv[32];
    char rid[BD_ID_HEX + 1];
    char crid[128];
    const char *body;
    size_t body_len;
} op_t;

/* What an operation answers. */
typedef struct result {
    int status;
    json_t *body;                   /* owned; NULL: none                    */
    bool failed;                    /* send err as a CloudError             */
    berth_error_t err;
    char async_url[768];            /* Azure-AsyncOperation, or ""          */
} result_t;

/* ---- small helpers ------------------------------------------------------------------------ */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void iso_time(int64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%03dZ", base, (int)(ms % 1000));
}

static bool ieq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL ? s : "";
}

static int fail(result_t *res, int status, int code, const char *name, const char *target,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int fail(result_t *res, int status, int code, const char *name, const char *target,
                const char *fmt, ...)
{
    char msg[BERTH_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    berth_error_set(&res->err, code, name, target, "%s", msg);
    res->failed = true;
    res->status = status;
    return code;
}

static int fail_err(result_t *res, int status, const berth_error_t *err)
{
    res->err = *err;
    res->failed = true;
    res->status = status;
    return err->code != 0 ? err->code : BERTH_EIO;
}

static void result_send(result_t *res, bd_reply_t *reply)
{
    if (res->failed) {
        bd_reply_berth_error(reply, res->status, &res->err);
        json_decref(res->body);
        res->body = NULL;
        return;
    }
    if (res->async_url[0] != '\0') {
        const char *h[] = {"Azure-AsyncOperation", res->async_url, "Retry-After", "1", NULL};
        bd_reply_send(reply, res->status, res->body, h);
    } else {
        bd_reply_send(reply, res->status, res->body, NULL);
    }
    res->body = NULL;
}

/* ---- Redis ------------------------------------------------------------------------------------ */

static redisContext *connect_url(const char *url, uint32_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    redisContext *c = NULL;
    if (strncmp(url, "unix://", 7) == 0) {
        c = redisConnectUnixWithTimeout(url + 7, tv);
    } else if (strncmp(url, "redis://", 8) == 0) {
        char host[256];
        int port = 6379;
        const char *h = url + 8;
        const char *at = strchr(h, '@');
        if (at != NULL)
            h = at + 1;             /* credentials: not supported, ignored */
        const char *end;
        if (*h == '[') {
            end = strchr(h, ']');
            if (end == NULL || (size_t)(end - h - 1) >= sizeof host)
                return NULL;
            memcpy(host, h + 1, (size_t)(end - h - 1));
            host[end - h - 1] = '\0';
            end++;
        } else {
            end = h + strcspn(h, ":/");
            if ((size_t)(end - h) >= sizeof host)
                return NULL;
            memcpy(host, h, (size_t)(end - h));
            host[end - h] = '\0';
        }
        if (*end == ':')
            port = atoi(end + 1);
        c = redisConnectWithTimeout(host, port, tv);
    } else {
        return NULL;
    }
    if (c != NULL && c->err == 0)
        redisSetTimeout(c, tv);
    return c;
}

/* A command on berthd's own connection, reconnecting first when the last
 * one failed.  NULL: no answer (the connection is marked for reconnect). */
static redisReply *cmd(bd_api_t *api, const char *fmt, ...)
{
    if (api->rc == NULL || api->rc->err != 0) {
        if (api->rc != NULL)
            redisFree(api->rc);
        api->rc = connect_url(api->cfg->redis_url, 5000);
        if (api->rc == NULL || api->rc->err != 0)
            return NULL;
    }
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(api->rc, fmt, ap);
    va_end(ap);
    return r;
}

static redisContext *ctx(bd_api_t *api)
{
    if (api->rc == NULL || api->rc->err != 0) {
        if (api->rc != NULL)
            redisFree(api->rc);
        api->rc = connect_url(api->cfg->redis_url, 5000);
    }
    return api->rc;
}

static void observe_placement(bd_api_t *api, double seconds, int rc)
{
    size_t i = 0;
    while (i < NBUCKETS - 1 && seconds > BUCKETS[i])
        i++;
    api->hist[i]++;
    api->hist_count++;
    api->hist_sum += seconds;
    if (rc == BERTH_ECONFLICT)
        api->conflicts++;
    else if (rc == BERTH_ENOSPC)
        api->nospace++;
}

/* ---- the request stream ---------------------------------------------------------------- */

/* Adds the operation to the stream and takes it into this berthd's pending
 * list; stores the entry id in sid.  Returns 0 or BERTH_EIO. */
static int stream_begin(bd_api_t *api, const op_t *op, char *sid, size_t cap)
{
    redisContext *c = ctx(api);
    if (c == NULL || c->err != 0)
        return BERTH_EIO;
    redisAppendCommand(c, "MULTI");
    redisAppendCommand(c,
                       "XADD %s * op %s key %s sub %s rg %s name %s apiv %s rid %s crid %s "
                       "body %b",
                       api->k_requests, op->kind, op->key, op->sub, op->rg, op->name, op->apiv,
                       op->rid, op->crid, op->body, op->body_len);
    redisAppendCommand(c, "XREADGROUP GROUP berthd %s COUNT 1 STREAMS %s >", api->consumer,
                       api->k_requests);
    redisAppendCommand(c, "EXEC");
    redisReply *exec = NULL;
    int rc = 0;
    for (int i = 0; i < 4; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL)
            return BERTH_EIO;
        if (i == 3)
            exec = r;
        else
            freeReplyObject(r);
    }
    if (exec->type != REDIS_REPLY_ARRAY || exec->elements != 2 ||
        exec->element[0]->type != REDIS_REPLY_STRING) {
        freeReplyObject(exec);
        return BERTH_EIO;
    }
    snprintf(sid, cap, "%s", exec->element[0]->str);
    bool mine = false;
    redisReply *rd = exec->element[1];
    if (rd->type == REDIS_REPLY_ARRAY && rd->elements == 1 && rd->element[0]->elements == 2) {
        redisReply *entries = rd->element[0]->element[1];
        if (entries->elements == 1 && strcmp(entries->element[0]->element[0]->str, sid) == 0)
            mine = true;
    }
    freeReplyObject(exec);
    /* Someone added an entry outside a transaction: read on until ours is
     * delivered; the others stay pending here for the claim timer. */
    for (int round = 0; !mine && round < 8; round++) {
        redisReply *r = cmd(api, "XREADGROUP GROUP berthd %s COUNT 64 STREAMS %s >",
                            api->consumer, api->k_requests);
        if (r == NULL)
            return BERTH_EIO;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
            redisReply *entries = r->element[0]->element[1];
            for (size_t i = 0; i < entries->elements; i++)
                if (strcmp(entries->element[i]->element[0]->str, sid) == 0)
                    mine = true;
        } else if (r->type != REDIS_REPLY_ARRAY) {
            round = 8;              /* nothing more to read */
        }
        freeReplyObject(r);
    }
    if (!mine)
        rc = BERTH_EIO;
    return rc;
}

/* Acknowledges and deletes a stream entry. */
/* Stream ids "MS-SEQ" in order: <0, 0, >0. */
static int sid_cmp(const char *a, const char *b)
{
    unsigned long long am = 0, as = 0, bm = 0, bs = 0;
    sscanf(a, "%llu-%llu", &am, &as);
    sscanf(b, "%llu-%llu", &bm, &bs);
    return am != bm ? (am < bm ? -1 : 1) : as != bs ? (as < bs ? -1 : 1) : 0;
}

/* Records that request `sid` on `key` has been applied, unless a later one
 * was (one atomic step): a replay of an older request left pending by a
 * dead berthd must never undo what a later, acknowledged one did (a PUT
 * replayed after an acknowledged DELETE would bring the group back).  The
 * mark lives a day; a pending request is claimed within a minute. */
static void applied_mark(bd_api_t *api, const char *key, const char *sid)
{
    static const char script[] =
        "local function n(s) local m, q = string.match(s, '^(%d+)-(%d+)$')\n"
        "  return tonumber(m) or 0, tonumber(q) or 0 end\n"
        "local c = redis.call('GET', KEYS[1])\n"
        "if c then\n"
        "  local cm, cq = n(c)\n"
        "  local am, aq = n(ARGV[1])\n"
        "  if cm > am or (cm == am and cq >= aq) then return 0 end\n"
        "end\n"
        "redis.call('SET', KEYS[1], ARGV[1], 'EX', 86400)\n"
        "return 1\n";
    redisReply *r = cmd(api, "EVAL %s 1 berth:{%s}:applied:%s %s", script, api->cell, key, sid);
    if (r != NULL)
        freeReplyObject(r);
}

/* Whether a request later than `sid` on `key` has been applied already. */
static bool applied_later(bd_api_t *api, const char *key, const char *sid)
{
    redisReply *r = cmd(api, "GET berth:{%s}:applied:%s", api->cell, key);
    bool later = r != NULL && r->type == REDIS_REPLY_STRING && sid_cmp(r->str, sid) > 0;
    if (r != NULL)
        freeReplyObject(r);
    return later;
}

static void stream_end(bd_api_t *api, const char *sid)
{
    redisReply *r = cmd(api, "XACK %s berthd %s", api->k_requests, sid);
    if (r != NULL)
        freeReplyObject(r);
    r = cmd(api, "XDEL %s %s", api->k_requests, sid);
    if (r != NULL)
        freeReplyObject(r);
}

/* ---- resource bodies -------------------------------------------------------------------- */

static json_t *view_read(bd_api_t *api, const char *key)
{
    char *text = NULL;
    berth_error_t err;
    if (berth_store_view_read(api->store, key, &text, &err) != 0)
        return NULL;
    json_t *v = json_loads(text, 0, NULL);
    berth_free(text);
    if (v != NULL && !json_is_object(v)) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

static json_t *find_named(json_t *arr, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        if (strcmp(jstr(e, "name"), name) == 0)
            return e;
    }
    return NULL;
}

/* Sets each container's properties.instanceView: `same` for every one when
 * not NULL, else the one of the container of that name in the view's list. */
static void merge_containers(json_t *doc_list, json_t *view_list, json_t *same)
{
    size_t i;
    json_t *c;
    json_array_foreach(doc_list, i, c)
    {
        json_t *props = json_object_get(c, "properties");
        if (!json_is_object(props))
            continue;
        json_object_del(props, "instanceView");
        json_t *iv = same != NULL
            ? same : json_object_get(find_named(view_list, jstr(c, "name")), "instanceView");
        if (json_is_object(iv))
            json_object_set(props, "instanceView", iv);
    }
}

/* PRIORITY AND EVICTION.  properties.priority (Regular or Spot) is taken
 * from api-version PRIORITY_APIV on (Azure's first version with it; the
 * 2021-03-01 spec lacks it) and refused, naming the property, before.  A
 * new Regular group that fits nowhere evicts Spot groups (the core's
 * berth_store_place(); the PUT still answers 201).  An evicted group keeps
 * its resource record, like a stopped one, and holds no placement: the
 * cell's eviction record (berth_store_eviction_read()) tells them apart.
 * Its GET shows instanceView.state "Terminated" with a Warning event
 * "SpotEviction", and every container Terminated at the eviction with
 * detailStatus "Evicted"; start places it again (409 ResourceNotAvailable while
 * nothing fits), PUT re-places it as for a stopped group, DELETE drops the
 * record.  Changing the priority of an existing group is refused (409),
 * like every change that needs a delete. */
#define PRIORITY_APIV "2022-10-01-preview"

/* True when the resource `rec` under `key` is an evicted group: not
 * stopped, no placement in the cell, and an eviction record; fills *ev. */
static bool group_evicted(bd_api_t *api, const char *key, json_t *rec, berth_eviction_t *ev)
{
    if (rec == NULL || strcmp(jstr(rec, "state"), "Stopped") == 0)
        return false;
    if (berth_store_group_read(api->store, key, NULL, NULL, NULL) != BERTH_ENOENT)
        return false;
    return berth_store_eviction_read(api->store, key, ev, NULL) == 0;
}

/* The instance view of an evicted group. */
static json_t *evicted_view(const berth_eviction_t *ev)
{
    char when[40];
    iso_time((int64_t)ev->time_ms, when, sizeof when);
    char message[160];
    snprintf(message, sizeof message,
             "The Spot container group was evicted from host '%s' to make room for a "
             "Regular container group.", ev->host);
    return json_pack("{s:s, s:[{s:i, s:s, s:s, s:s, s:s, s:s}]}", "state", "Terminated",
                     "events", "count", 1, "firstTimestamp", when, "lastTimestamp", when,
                     "name", "SpotEviction", "message", message, "type", "Warning");
}

/* A container's instance view in an evicted group: Terminated at the
 * eviction, detailStatus "Evicted". */
static json_t *evicted_container_view(const berth_eviction_t *ev)
{
    char when[40];
    iso_time((int64_t)ev->time_ms, when, sizeof when);
    return json_pack("{s:i, s:{s:s, s:s, s:s}, s:[]}", "restartCount", 0, "currentState",
                     "state", "Terminated", "finishTime", when, "detailStatus", "Evicted",
                     "events");
}

/* The resource's ARM body (secrets redacted) from its record and view. */
static json_t *resource_body(bd_api_t *api, const char *key, json_t *rec, const char *force_state)
{
    json_t *body = NULL;
    const char *doc = jstr(rec, "document");
    berth_group_t *g = NULL;
    berth_error_t err;
    char *text = NULL;
    if (berth_group_parse(doc, strlen(doc), &g, &err) == 0 &&
        berth_group_to_json(g, BERTH_JSON_REDACT, &text, NULL) == 0)
        body = json_loads(text, 0, NULL);
    berth_free(text);
    berth_group_free(g);
    if (!json_is_object(body)) {
        json_decref(body);
        body = json_object();
    }
    json_object_set(body, "id", json_object_get(rec, "id"));
    json_object_set(body, "name", json_object_get(rec, "name"));
    json_object_set_new(body, "type", json_string("Microsoft.ContainerInstance/containerGroups"));
    json_object_set(body, "location", json_object_get(rec, "location"));
    json_t *tags = json_object_get(rec, "tags");
    if (json_is_object(tags) && json_object_size(tags) > 0)
        json_object_set(body, "tags", tags);
    else
        json_object_del(body, "tags");
    json_t *props = json_object_get(body, "properties");
    if (!json_is_object(props)) {
        props = json_object();
        json_object_set_new(body, "properties", props);
    }
    json_object_del(props, "instanceView");
    json_object_del(props, "provisioningState");
    if (json_object_get(props, "initContainers") == NULL)   /* ACI always answers one */
        json_object_set_new(props, "initContainers", json_array());
    if (json_object_get(props, "sku") == NULL)              /* ACI's default, answered */
        json_object_set_new(props, "sku", json_string("Standard"));

    const char *state = jstr(rec, "state");
    berth_eviction_t eviction;
    bool evicted = force_state == NULL && group_evicted(api, key, rec, &eviction);
    /* An evicted group's last view (until its agent drops it) is history. */
    json_t *view = evicted ? NULL : view_read(api, key);
    bool current = view != NULL && json_integer_value(json_object_get(view, "generation")) ==
                                       json_integer_value(json_object_get(rec, "generation"));
    if (force_state != NULL) {
        json_object_set_new(props, "provisioningState", json_string(force_state));
    } else if (evicted) {
        json_object_set_new(props, "provisioningState", json_string("Succeeded"));
        json_object_set_new(props, "instanceView", evicted_view(&eviction));
        json_t *civ = evicted_container_view(&eviction);
        merge_containers(json_object_get(props, "containers"), NULL, civ);
        merge_containers(json_object_get(props, "initContainers"), NULL, civ);
        json_decref(civ);
    } else if (strcmp(state, "Stopped") == 0) {
        json_object_set_new(props, "provisioningState", json_string("Succeeded"));
        json_object_set_new(props, "instanceView",
                            json_pack("{s:s, s:[]}", "state", "Stopped", "events"));
    } else if (current && json_is_string(json_object_get(view, "provisioningState"))) {
        json_object_set(props, "provisioningState", json_object_get(view, "provisioningState"));
    } else {
        json_object_set_new(props, "provisioningState", json_string(state[0] ? state : "Pending"));
    }
    if (view != NULL && strcmp(state, "Stopped") != 0 && force_state == NULL) {
        json_t *iv = json_object_get(view, "instanceView");
        if (json_is_object(iv)) {
            json_t *out = json_object();
            json_object_set(out, "state", json_object_get(iv, "state"));
            json_t *ev = json_object_get(iv, "events");
            json_object_set(out, "events", json_is_array(ev) ? ev : json_array());
            if (json_object_get(out, "state") == NULL)
                json_object_del(out, "state");
            json_object_set_new(props, "instanceView", out);
        }
        merge_containers(json_object_get(props, "containers"),
                         json_object_get(view, "containers"), NULL);
        merge_containers(json_object_get(props, "initContainers"),
                         json_object_get(view, "initContainers"), NULL);
    }
    json_t *ip = json_object_get(props, "ipAddress");
    if (json_is_object(ip)) {
        const char *vip = jstr(json_object_get(view, "ipAddress"), "ip");
        if (vip[0] != '\0' && strcmp(state, "Stopped") != 0)
            json_object_set_new(ip, "ip", json_string(vip));
        const char *label = jstr(ip, "dnsNameLabel");
        if (label[0] != '\0') {
            char fqdn[512];
            snprintf(fqdn, sizeof fqdn, "%s.%s.%s", label, jstr(rec, "location"),
                     api->cfg->dns_domain ? api->cfg->dns_domain : "berth.local");
            json_object_set_new(ip, "fqdn", json_string(fqdn));
        }
    }
    json_decref(view);
    return body;
}

/* ---- operations (long-running) ----------------------------------------------------------- */

static void op_record(bd_api_t *api, const op_t *op, const char *kind, const char *location,
                      uint64_t generation, const char *base_url, result_t *res)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "key", op->key, "kind", kind,
                          "subscription", op->sub, "location", location, "generation",
                          (json_int_t)generation, "startTime", (json_int_t)now_ms());
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (text == NULL)
        return;
    redisReply *r = cmd(api, "HSET berth:{%s}:operations %s %s", api->cell, op->rid, text);
    free(text);
    if (r != NULL)
        freeReplyObject(r);
    if (base_url != NULL)
        snprintf(res->async_url, sizeof res->async_url,
                 "%s/subscriptions/%s/providers/Microsoft.ContainerInstance/locations/%s/"
                 "operations/%s?api-version=%s",
                 base_url, op->sub, location, op->rid, op->apiv);
}

/* ---- the operations themselves ----------------------------------------------------------- */

static void arm_id(const op_t *op, char *out, size_t cap)
{
    snprintf(out, cap,
             "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ContainerInstance/"
             "containerGroups/%s",
             op->sub, op->rg, op->name);
}

/* "<location>/<label>" of a stored document's DNS label, or "". */
static void dns_field_of(const char *document, const char *location, char *out, size_t cap)
{
    out[0] = '\0';
    json_t *d = json_loads(document, 0, NULL);
    const char *label = jstr(json_object_get(json_object_get(d, "properties"), "ipAddress"),
                             "dnsNameLabel");
    if (label[0] != '\0') {
        char l[128];
        bd_lower(label, l, sizeof l);
        snprintf(out, cap, "%s/%s", location, l);
    }
    json_decref(d);
}

static int place_doc(bd_api_t *api, const char *key, const berth_request_t *req,
                     const char *spec, const char *prefer, bool redeploy, berth_placement_t *pl,
                     berth_error_t *err)
{
    double t0 = mono_s();
    int rc = redeploy ? berth_store_place(api->store, key, req, spec, pl, err)
                      : berth_store_place_prefer(api->store, key, req, prefer, spec, pl, err);
    observe_placement(api, mono_s() - t0, rc);
    if (rc == 0)
        api->evictions += pl->evicted;
    return rc;
}

static int place_fail(result_t *res, int rc, const berth_error_t *err)
{
    if (rc == BERTH_ECONFLICT || rc == BERTH_ENOSPC || rc == BERTH_EEXIST)
        return fail_err(res, 409, err);
    if (rc == BERTH_EINVAL || rc == BERTH_ELIMIT || rc == BERTH_ETOOBIG || rc == BERTH_ENOENT)
        return fail_err(res, 400, err);
    return fail_err(res, 500, err);
}

static int run_put(bd_api_t *api, const op_t *op, const char *base_url, result_t *res)
{
    berth_error_t err;
    berth_error_clear(&err);
    berth_group_t *g = NULL;
    char *spec = NULL, *cur = NULL;
    json_t *rec = NULL;
    int rc;
    if (op->body_len == 0)
        return fail(res, 400, BERTH_EINVAL, "InvalidRequestContent", "",
                    "the request has no body: a container group document is required");
    rc = berth_group_parse(op->body, op->body_len, &g, &err);
    if (rc != 0)
        return fail_err(res, rc == BERTH_ETOOBIG ? 413 : 400, &err);
    if (g->name != NULL && strcmp(g->name, op->name) != 0) {
        rc = fail(res, 400, BERTH_EINVAL, "ContainerGroupNameMismatch", "name",
                  "the body's name '%s' differs from the name in the path '%s'", g->name,
                  op->name);
        goto out;
    }
    if (g->location == NULL || g->location[0] == '\0' || !bd_valid_location(g->location)) {
        rc = fail(res, 400, BERTH_EINVAL, "LocationRequired", "location",
                  "the container group needs a valid 'location'");
        goto out;
    }
    if (g->priority != BERTH_PRIORITY_UNSET && strcmp(op->apiv, PRIORITY_APIV) < 0) {
        rc = fail(res, 400, BERTH_EINVAL, "InvalidRequestContent", "properties.priority",
                  "properties.priority is not supported by api-version '%s'; use %s or later",
                  op->apiv, PRIORITY_APIV);
        goto out;
    }
    char location[BD_LOCATION_MAX + 1];
    bd_location_norm(g->location, location, sizeof location);
    berth_store_sync(api->store, NULL);
    berth_request_t req;
    rc = berth_group_request(api->engine, g, &req, &err);
    if (rc != 0) {
        rc = fail_err(res, 400, &err);
        goto out;
    }
    rc = berth_group_to_json(g, 0, &spec, NULL);
    if (rc != 0) {
        rc = fail(res, 500, rc, "InternalServerError", "", "out of memory");
        goto out;
    }
    rc = bd_res_get(ctx(api), api->cell, op->key, &rec);
    if (rc == BERTH_EIO) {
        rc = fail(res, 500, rc, "InternalServerError", "", "the resource store is failing");
        goto out;
    }
    bool exists = rec != NULL;
    if (exists && strcmp(jstr(rec, "location"), location) != 0) {
        rc = fail(res, 409, BERTH_ECONFLICT, "InvalidResourceLocation", "location",
                  "the resource '%s' already exists in location '%s'; a container group "
                  "cannot move to '%s'",
                  op->name, jstr(rec, "location"), location);
        goto out;
    }
    bool stopped = exists && strcmp(jstr(rec, "state"), "Stopped") == 0;
    if (exists) {
        /* The engine refuses a priority change of a placed group; a stopped
         * or evicted one holds no placement, so compare the documents. */
        const char *old_doc = jstr(rec, "document");
        berth_group_t *old = NULL;
        bool spot = g->priority == BERTH_PRIORITY_SPOT, changed = false;
        if (berth_group_parse(old_doc, strlen(old_doc), &old, NULL) == 0)
            changed = (old->priority == BERTH_PRIORITY_SPOT) != spot;
        berth_group_free(old);
        if (changed) {
            rc = fail(res, 409, BERTH_ECONFLICT, "InvalidContainerGroupUpdate",
                      "properties.priority",
                      "The updates on container group '%s' are invalid. If you are going to "
                      "update the priority of a container group, you must delete it first "
                      "and then create a new one.", op->name);
            goto out;
        }
    }
    /* DNS label */
    char dns[256] = "", old_dns[256] = "";
    bool claimed = false;
    if (g->ip_address != NULL && g->ip_address->dns_name_label != NULL) {
        char l[128];
        bd_lower(g->ip_address->dns_name_label, l, sizeof l);
        snprintf(dns, sizeof dns, "%s/%s", location, l);
        int d = bd_dns_claim(ctx(api), api->cell, dns, op->key);
        if (d == BERTH_EEXIST) {
            rc = fail(res, 409, BERTH_EEXIST, "DnsNameLabelAlreadyTaken",
                      "properties.ipAddress.dnsNameLabel",
                      "the DNS name label '%s' is already taken in location '%s'",
                      g->ip_address->dns_name_label, location);
            goto out;
        }
        if (d < 0) {
            rc = fail(res, 500, d, "InternalServerError", "", "the resource store is failing");
            goto out;
        }
        claimed = d == 1;
    }
    if (exists)
        dns_field_of(jstr(rec, "document"), location, old_dns, sizeof old_dns);
    /* Place unless the cell runs this very document already. */
    uint64_t gen = 0;
    bool placed_now = false;
    berth_placement_t pl;
    memset(&pl, 0, sizeof pl);
    int have = berth_store_group_read(api->store, op->key, &cur, &gen, NULL);
    if (!(have == 0 && cur != NULL && strcmp(cur, spec) == 0 && !stopped)) {
        const char *prefer = exists ? jstr(rec, "lastHost") : NULL;
        /* A new group takes a ready standby member when a pool matches. */
        rc = !exists && have == BERTH_ENOENT
                 ? bd_pools_claim(api->pools, op->key, &req, spec, &pl, &err)
                 : BERTH_ENOENT;
        if (rc == BERTH_ENOENT)
            rc = place_doc(api, op->key, &req, spec, prefer && prefer[0] ? prefer : NULL,
                           exists && !stopped, &pl, &err);
        if (rc != 0) {
            if (claimed)
                bd_dns_release(ctx(api), api->cell, dns, op->key);
            rc = place_fail(res, rc, &err);
            goto out;
        }
        placed_now = true;
        berth_store_eviction_forget(api->store, op->key, NULL);
        if (berth_store_group_read(api->store, op->key, NULL, &gen, NULL) != 0)
            gen = 0;
    }
    if (old_dns[0] != '\0' && strcmp(old_dns, dns) != 0)
        bd_dns_release(ctx(api), api->cell, old_dns, op->key);
    /* The record. */
    char id[512];
    arm_id(op, id, sizeof id);
    int64_t now = now_ms();
    if (!exists) {
        rec = json_object();
        json_object_set_new(rec, "created", json_integer(now));
    }
    json_t *tags = json_object();
    for (size_t i = 0; i < g->ntags; i++)
        json_object_set_new(tags, g->tags[i].name, json_string(g->tags[i].value));
    json_object_set_new(rec, "id", json_string(id));
    json_object_set_new(rec, "subscription", json_string(op->sub));
    json_object_set_new(rec, "resourceGroup", json_string(op->rg));
    json_object_set_new(rec, "name", json_string(op->name));
    json_object_set_new(rec, "location", json_string(location));
    json_object_set_new(rec, "tags", tags);
    json_object_set_new(rec, "document", json_string(spec));
    if (placed_now || !exists || stopped)
        json_object_set_new(rec, "state", json_string("Creating"));
    if (pl.host[0] != '\0')
        json_object_set_new(rec, "lastHost", json_string(pl.host));
    else if (json_object_get(rec, "lastHost") == NULL)
        json_object_set_new(rec, "lastHost", json_string(""));
    json_object_set_new(rec, "generation", json_integer((json_int_t)gen));
    json_object_set_new(rec, "updated", json_integer(now));
    if (bd_res_put(ctx(api), api->cell, op->key, rec) != 0) {
        rc = fail(res, 500, BERTH_EIO, "InternalServerError", "",
                  "the resource store is failing");
        goto out;
    }
    op_record(api, op, "put", location, gen, base_url, res);
    res->status = exists ? 200 : 201;
    if (base_url != NULL)
        res->body = resource_body(api, op->key, rec, NULL);
    rc = 0;
out:
    berth_free(cur);
    berth_free(spec);
    berth_group_free(g);
    json_decref(rec);
    return rc;
}

static int need_rec(bd_api_t *api, const op_t *op, result_t *res, json_t **rec)
{
    int rc = bd_res_get(ctx(api), api->cell, op->key, rec);
    if (rc == BERTH_ENOENT)
        return fail(res, 404, rc, "ResourceNotFound", "",
                    "The Resource 'Microsoft.ContainerInstance/containerGroups/%s' under "
                    "resource group '%s' was not found.",
                    op->name, op->rg);
    if (rc != 0)
        return fail(res, 500, rc, "InternalServerError", "", "the resource store is failing");
    return 0;
}

static int run_delete(bd_api_t *api, const op_t *op, const char *base_url, result_t *res)
{
    json_t *rec = NULL;
    int rc = bd_res_get(ctx(api), api->cell, op->key, &rec);
    if (rc == BERTH_EIO)
        return fail(res, 500, rc, "InternalServerError", "", "the resource store is failing");
    berth_error_t err;
    berth_store_sync(api->store, NULL);
    int r = berth_store_release(api->store, op->key, &err);
    if (r != 0 && r != BERTH_ENOENT) {
        json_decref(rec);
        return fail_err(res, 500, &err);
    }
    berth_store_eviction_forget(api->store, op->key, NULL);
    if (rec == NULL) {
        res->status = 204;
        return 0;
    }
    if (base_url != NULL)
        res->body = resource_body(api, op->key, rec, "Deleting");
    char dns[256];
    dns_field_of(jstr(rec, "document"), jstr(rec, "location"), dns, sizeof dns);
    json_decref(rec);
    if (bd_res_del(ctx(api), api->cell, op->key, dns) != 0)
        return fail(res, 500, BERTH_EIO, "InternalServerError", "",
                    "the resource store is failing");
    res->status = 200;
    return 0;
}

static int save_rec(bd_api_t *api, const op_t *op, json_t *rec, result_t *res)
{
    json_object_set_new(rec, "updated", json_integer(now_ms()));
    if (bd_res_put(ctx(api), api->cell, op->key, rec) != 0)
        return fail(res, 500, BERTH_EIO, "InternalServerError", "",
                    "the resource store is failing");
    return 0;
}

static int run_stop(bd_api_t *api, const op_t *op, result_t *res)
{
    json_t *rec = NULL;
    int rc = need_rec(api, op, res, &rec);
    if (rc != 0)
        return rc;
    if (strcmp(jstr(rec, "state"), "Stopped") != 0) {
        berth_store_sync(api->store, NULL);
        berth_placement_t pl;
        if (berth_group_get(api->engine, op->key, &pl) == 0)
            json_object_set_new(rec, "lastHost", json_string(pl.host));
        berth_error_t err;
        int r = berth_store_release(api->store, op->key, &err);
        if (r != 0 && r != BERTH_ENOENT) {
            json_decref(rec);
            return fail_err(res, 500, &err);
        }
        json_object_set_new(rec, "state", json_string("Stopped"));
        rc = save_rec(api, op, rec, res);
    }
    json_decref(rec);
    if (rc == 0)
        res->status = 204;
    return rc;
}

static int run_start(bd_api_t *api, const op_t *op, const char *base_url, result_t *res)
{
    json_t *rec = NULL;
    int rc = need_rec(api, op, res, &rec);
    if (rc != 0)
        return rc;
    berth_eviction_t ev;
    berth_store_sync(api->store, NULL);
    if (strcmp(jstr(rec, "state"), "Stopped") != 0 && !group_evicted(api, op->key, rec, &ev)) {
        json_decref(rec);
        res->status = 204;
        return 0;
    }
    const char *doc = jstr(rec, "document");
    berth_group_t *g = NULL;
    berth_error_t err;
    berth_request_t req;
    berth_store_sync(api->store, NULL);
    rc = berth_group_parse(doc, strlen(doc), &g, &err);
    if (rc == 0)
        rc = berth_group_request(api->engine, g, &req, &err);
    berth_group_free(g);
    if (rc != 0) {
        json_decref(rec);
        return fail_err(res, 500, &err);
    }
    berth_placement_t pl;
    const char *last = jstr(rec, "lastHost");
    rc = place_doc(api, op->key, &req, doc, last[0] ? last : NULL, false, &pl, &err);
    if (rc != 0) {
        json_decref(rec);
        return place_fail(res, rc, &err);
    }
    uint64_t gen = 0;
    berth_store_group_read(api->store, op->key, NULL, &gen, NULL);
    berth_store_eviction_forget(api->store, op->key, NULL);
    json_object_set_new(rec, "state", json_string("Creating"));
    json_object_set_new(rec, "lastHost", json_string(pl.host));
    json_object_set_new(rec, "generation", json_integer((json_int_t)gen));
    rc = save_rec(api, op, rec, res);
    if (rc == 0) {
        op_record(api, op, "start", jstr(rec, "location"), gen, base_url, res);
        res->status = 202;
    }
    json_decref(rec);
    return rc;
}

static int run_restart(bd_api_t *api, const op_t *op, result_t *res)
{
    json_t *rec = NULL;
    int rc = need_rec(api, op, res, &rec);
    if (rc != 0)
        return rc;
    bool stopped = strcmp(jstr(rec, "state"), "Stopped") == 0;
    json_decref(rec);
    if (stopped)
        return fail(res, 409, BERTH_ECONFLICT, "ContainerGroupStopped", "",
                    "the container group '%s' is stopped: start it instead", op->name);
    berth_error_t err;
    rc = berth_store_group_restart(api->store, op->key, &err);
    if (rc != 0)
        return fail_err(res, rc == BERTH_ENOENT ? 409 : 500, &err);
    res->status = 204;
    return 0;
}

static int run_patch(bd_api_t *api, const op_t *op, const char *base_url, result_t *res)
{
    json_t *tags = NULL;
    const char *target, *why;
    if (bd_patch_body_parse(op->body, op->body_len, &tags, &target, &why) != 0)
        return fail(res, 400, BERTH_EINVAL, "InvalidRequestContent", target, "%s", why);
    json_t *rec = NULL;
    int rc = need_rec(api, op, res, &rec);
    if (rc != 0) {
        json_decref(tags);
        return rc;
    }
    if (tags != NULL)
        json_object_set(rec, "tags", tags);
    json_decref(tags);
    rc = save_rec(api, op, rec, res);
    if (rc == 0) {
        res->status = 200;
        if (base_url != NULL)
            res->body = resource_body(api, op->key, rec, NULL);
    }
    json_decref(rec);
    return rc;
}

/* Runs one operation; base_url NULL: a replay, nobody reads the body. */
static int run_op(bd_api_t *api, const op_t *op, const char *base_url, result_t *res)
{
    if (strcmp(op->kind, "put") == 0)
        return run_put(api, op, base_url, res);
    if (strcmp(op->kind, "delete") == 0)
        return run_delete(api, op, base_url, res);
    if (strcmp(op->kind, "stop") == 0)
        return run_stop(api, op, res);
    if (strcmp(op->kind, "start") == 0)
        return run_start(api, op, base_url, res);
    if (strcmp(op->kind, "restart") == 0)
        return run_restart(api, op, res);
    if (strcmp(op->kind, "patch") == 0)
        return run_patch(api, op, base_url, res);
    return fail(res, 400, BERTH_EINVAL, "InvalidOperation", "", "unknown operation");
}

/* The done record of a POST: {key, kind, status, async}. */
static void done_put(bd_api_t *api, const op_t *op, const result_t *res)
{
    if (op->crid[0] == '\0' || res->failed)
        return;
    json_t *d = json_pack("{s:s, s:s, s:i, s:s}", "key", op->key, "kind", op->kind, "status",
                          res->status, "async", res->async_url);
    char *text = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    if (text == NULL)
        return;
    redisReply *r = cmd(api, "SET berth:{%s}:done:%s %s EX %d", api->cell, op->crid, text,
                        DONE_TTL_S);
    free(text);
    if (r != NULL)
        freeReplyObject(r);
}

static bool done_get(bd_api_t *api, const op_t *op, result_t *res)
{
    if (op->crid[0] == '\0')
        return false;
    redisReply *r = cmd(api, "GET berth:{%s}:done:%s", api->cell, op->crid);
    if (r == NULL)
        return false;
    bool hit = false;
    if (r->type == REDIS_REPLY_STRING) {
        json_t *d = json_loadb(r->str, r->len, 0, NULL);
        if (strcmp(jstr(d, "key"), op->key) == 0 && strcmp(jstr(d, "kind"), op->kind) == 0) {
            hit = true;
            res->status = (int)json_integer_value(json_object_get(d, "status"));
            snprintf(res->async_url, sizeof res->async_url, "%s", jstr(d, "async"));
        }
        json_decref(d);
    }
    freeReplyObject(r);
    return hit;
}

static void mutate(bd_api_t *api, const bd_request_t *req, bd_reply_t *reply, op_t *op)
{
    result_t res;
    memset(&res, 0, sizeof res);
    bool post = req->method == BD_POST;
    if (post && done_get(api, op, &res)) {
        result_send(&res, reply);
        return;
    }
    char sid[64];
    if (stream_begin(api, op, sid, sizeof sid) != 0) {
        bd_reply_error(reply, 503, "ServiceUnavailable", "",
                       "the request could not be recorded: Redis is unavailable");
        return;
    }
    run_op(api, op, req->base_url, &res);
    if (post)
        done_put(api, op, &res);
    applied_mark(api, op->key, sid);
    stream_end(api, sid);
    result_send(&res, reply);
}

/* ---- the claim timer -------------------------------------------------------------------- */

static void field_copy(redisReply *fields, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (strcmp(fields->element[i]->str, name) == 0) {
            snprintf(out, cap, "%s", fields->element[i + 1]->str);
            return;
        }
}

static void replay_entry(bd_api_t *api, redisReply *entry)
{
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2)
        return;
    const char *sid = entry->element[0]->str;
    redisReply *f = entry->element[1];
    if (f->type == REDIS_REPLY_ARRAY) {
        op_t op;
        memset(&op, 0, sizeof op);
        field_copy(f, "op", op.kind, sizeof op.kind);
        field_copy(f, "key", op.key, sizeof op.key);
        field_copy(f, "sub", op.sub, sizeof op.sub);
        field_copy(f, "rg", op.rg, sizeof op.rg);
        field_copy(f, "name", op.name, sizeof op.name);
        field_copy(f, "apiv", op.apiv, sizeof op.apiv);
        field_copy(f, "rid", op.rid, sizeof op.rid);
        field_copy(f, "crid", op.crid, sizeof op.crid);
        op.body = "";
        for (size_t i = 0; i + 1 < f->elements; i += 2)
            if (strcmp(f->element[i]->str, "body") == 0) {
                op.body = f->element[i + 1]->str;
                op.body_len = f->element[i + 1]->len;
            }
        if (applied_later(api, op.key, sid)) {
            /* A later request on the key was applied (and answered): this
             * one is older news and must not undo it. */
            fprintf(stderr, "berthd: dropped %s of %s left pending: a later request on it "
                            "was applied\n", op.kind, op.key);
            stream_end(api, sid);
            return;
        }
        result_t res;
        memset(&res, 0, sizeof res);
        run_op(api, &op, NULL, &res);
        if (strcmp(op.kind, "start") == 0 || strcmp(op.kind, "stop") == 0 ||
            strcmp(op.kind, "restart") == 0)
            done_put(api, &op, &res);
        applied_mark(api, op.key, sid);
        fprintf(stderr, "berthd: replayed %s of %s left pending: %d%s%s\n", op.kind, op.key,
                res.status, res.failed ? " " : "", res.failed ? res.err.name : "");
        json_decref(res.body);
        api->replayed++;
    }
    stream_end(api, sid);
}

static void claim_pending(bd_api_t *api)
{
    char cursor[64] = "0-0";
    for (int round = 0; round < 16; round++) {
        redisReply *r = cmd(api, "XAUTOCLAIM %s berthd %s %u %s COUNT 16", api->k_requests,
                            api->consumer, api->claim_idle_ms, cursor);
        if (r == NULL)
            return;
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
            freeReplyObject(r);
            return;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str ? r->element[0]->str : "0-0");
        redisReply *entries = r->element[1];
        for (size_t i = 0; i < entries->elements; i++)
            replay_entry(api, entries->element[i]);
        freeReplyObject(r);
        if (strcmp(cursor, "0-0") == 0)
            return;
    }
}

/* Drops operation records older than OP_TTL_MS, a hundred fields a tick
 * (HSCAN resumes where the last tick stopped). */
static void prune_operations(bd_api_t *api)
{
    redisReply *r = cmd(api, "HSCAN berth:{%s}:operations %s COUNT 100", api->cell,
                        api->op_cursor);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING) {
        if (r != NULL)
            freeReplyObject(r);
        return;
    }
    snprintf(api->op_cursor, sizeof api->op_cursor, "%s", r->element[0]->str);
    redisReply *kv = r->element[1];
    int64_t now = now_ms();
    for (size_t i = 0; i + 1 < kv->elements; i += 2) {
        json_t *o = json_loadb(kv->element[i + 1]->str, kv->element[i + 1]->len, 0, NULL);
        int64_t start = (int64_t)json_integer_value(json_object_get(o, "startTime"));
        json_decref(o);
        if (now - start > OP_TTL_MS) {
            redisReply *d = cmd(api, "HDEL berth:{%s}:operations %s", api->cell,
                                kv->element[i]->str);
            if (d != NULL)
                freeReplyObject(d);
        }
    }
    freeReplyObject(r);
}

static void on_expired(const char *host, const char *key, const char *new_host, int status,
                       void *data)
{
    (void)data;
    if (key == NULL)
        bd_log("warn", "host %s missed its heartbeat: marked down", host);
    else if (status == 0)
        bd_log("info", "container group %s moved from down host %s to %s", key, host, new_host);
    else
        bd_log("warn", "container group %s stays on down host %s: %s", key, host,
               berth_strerror(status));
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bd_api_t *api = arg;
    claim_pending(api);
    prune_operations(api);
    /* Hosts whose agent went quiet are marked down; their groups move. */
    berth_error_t err;
    if (berth_store_hosts_expire(api->store, on_expired, NULL, &err) < 0)
        bd_log("warn", "host heartbeats not checked: %s", err.message);
    /* The images each agent reports, for image locality in placements. */
    if (berth_store_images_sync(api->store, &err) < 0)
        bd_log("warn", "host images not read: %s", err.message);
    /* Standby pools refilled (pools.c). */
    bd_pools_reconcile(api->pools);
    /* Every NGroup of the cell, one step towards its goal (ngroups.c). */
    bd_ngroups_reconcile(api->store);
}

/* ---- read-only routes ------------------------------------------------------------------- */

static void reply_not_found(bd_reply_t *reply, const char *rg, const char *name)
{
    bd_reply_error(reply, 404, "ResourceNotFound", "",
                   "The Resource 'Microsoft.ContainerInstance/containerGroups/%s' under "
                   "resource group '%s' was not found.",
                   name, rg);
}

static void get_group(bd_api_t *api, const op_t *op, bd_reply_t *reply)
{
    json_t *rec = NULL;
    int rc = bd_res_get(ctx(api), api->cell, op->key, &rec);
    if (rc == BERTH_ENOENT) {
        reply_not_found(reply, op->rg, op->name);
        return;
    }
    if (rc != 0) {
        bd_reply_error(reply, 500, "InternalServerError", "", "the resource store is failing");
        return;
    }
    berth_store_sync(api->store, NULL);
    json_t *body = resource_body(api, op->key, rec, NULL);
    json_decref(rec);
    bd_reply_send(reply, 200, body, NULL);
}

static void list_groups(bd_api_t *api, const bd_request_t *req, bd_reply_t *reply,
                        const char *prefix, const char *apiv)
{
    char top_s[16], skip[RANGE_MAX];
    int top = PAGE_MAX;
    int q = bd_query_get(req->query, "$top", top_s, sizeof top_s);
    if (q < 0 || (q == 1 && ((top = atoi(top_s)) < 1 || top > PAGE_MAX))) {
        bd_reply_error(reply, 400, "InvalidQueryParameterValue", "$top",
                       "$top must be an integer from 1 to %d", PAGE_MAX);
        return;
    }
    q = bd_query_get(req->query, "$skiptoken", skip, sizeof skip);
    if (q < 0) {
        bd_reply_error(reply, 400, "InvalidQueryParameterValue", "$skiptoken",
                       "the $skiptoken is malformed");
        return;
    }
    char lo[RANGE_MAX + 2], hi[RANGE_MAX + 2];
    if (q == 1 && strncmp(skip, prefix, strlen(prefix)) == 0)
        snprintf(lo, sizeof lo, "(%s", skip);
    else
        snprintf(lo, sizeof lo, "[%s", prefix);
    snprintf(hi, sizeof hi, "[%s\xff", prefix);
    redisReply *r = cmd(api, "ZRANGEBYLEX berth:{%s}:index %s %s LIMIT 0 %d", api->cell, lo, hi,
                        top + 1);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        if (r != NULL)
            freeReplyObject(r);
        bd_reply_error(reply, 500, "InternalServerError", "", "the resource store is failing");
        return;
    }
    berth_store_sync(api->store, NULL);
    json_t *value = json_array();
    size_t n = r->elements < (size_t)top ? r->elements : (size_t)top;
    for (size_t i = 0; i < n; i++) {
        json_t *rec = NULL;
        if (bd_res_get(ctx(api), api->cell, r->element[i]->str, &rec) == 0) {
            json_array_append_new(value, resource_body(api, r->element[i]->str, rec, NULL));
            json_decref(rec);
        }
    }
    json_t *body = json_pack("{s:o}", "value", value);
    if (r->elements > (size_t)top && n > 0) {
        char enc[RANGE_MAX * 3], link[RANGE_MAX * 4 + PATH_MAX_BYTES];
        if (bd_urlencode(r->element[n - 1]->str, enc, sizeof enc) == 0) {
            snprintf(link, sizeof link, "%s%s?api-version=%s&$top=%d&$skiptoken=%s",
                     req->base_url, req->path, apiv, top, enc);
            json_object_set_new(body, "nextLink", json_string(link));
        }
    }
    freeReplyObject(r);
    bd_reply_send(reply, 200, body, NULL);
}

/* Finds a failure message in a view's events (group, then containers). */
static const char *view_failure(json_t *view)
{
    json_t *lists[3] = {json_object_get(json_object_get(view, "instanceView"), "events"), NULL,
                        NULL};
    size_t i, j;
    json_t *e, *c;
    json_array_foreach(lists[0], i, e)
    {
        if (strstr(jstr(e, "name"), "Fail") || strstr(jstr(e, "type"), "Fail") ||
            strcmp(jstr(e, "type"), "Warning") == 0)
            return jstr(e, "message");
    }
    json_array_foreach(json_object_get(view, "containers"), j, c)
    {
        json_array_foreach(json_object_get(json_object_get(c, "instanceView"), "events"), i, e)
        {
            if (strstr(jstr(e, "name"), "Fail") || strcmp(jstr(e, "type"), "Warning") == 0)
                return jstr(e, "message");
        }
    }
    return "the container group failed";
}

static void get_operation(bd_api_t *api, const char *sub, const char *opid, bd_reply_t *reply)
{
    redisReply *r = cmd(api, "HGET berth:{%s}:operations %s", api->cell, opid);
    if (r == NULL) {
        bd_reply_error(reply, 500, "InternalServerError", "", "the resource store is failing");
        return;
    }
    json_t *o = r->type == REDIS_REPLY_STRING ? json_loadb(r->str, r->len, 0, NULL) : NULL;
    freeReplyObject(r);
    if (o == NULL || !ieq(jstr(o, "subscription"), sub)) {
        json_decref(o);
        bd_reply_error(reply, 404, "OperationNotFound", "", "no operation '%s' in this subscription",
                       opid);
        return;
    }
    const char *status = "InProgress";
    const char *message = NULL;
    json_t *rec = NULL;
    json_t *view = NULL;
    const char *key = jstr(o, "key");
    uint64_t gen = (uint64_t)json_integer_value(json_object_get(o, "generation"));
    int64_t end = 0;
    if (bd_res_get(ctx(api), api->cell, key, &rec) != 0) {
        status = strcmp(jstr(o, "kind"), "delete") == 0 ? "Succeeded" : "Canceled";
        end = now_ms();
    } else if ((uint64_t)json_integer_value(json_object_get(rec, "generation")) != gen) {
        status = "Canceled";        /* a later change replaced it */
        end = now_ms();
    } else if (strcmp(jstr(rec, "state"), "Stopped") == 0) {
        status = "Succeeded";
        end = now_ms();
    } else if ((view = view_read(api, key)) != NULL &&
               (uint64_t)json_integer_value(json_object_get(view, "generation")) == gen) {
        const char *ps = jstr(view, "provisioningState");
        end = (int64_t)json_integer_value(json_object_get(view, "updated"));
        if (strcmp(ps, "Succeeded") == 0) {
            status = "Succeeded";
        } else if (strcmp(ps, "Failed") == 0) {
            status = "Failed";
            message = view_failure(view);
        } else {
            end = 0;
        }
    }
    if (end <= 0 && status[0] != 'I')   /* terminal: not InProgress */
        end = now_ms();
    char start[40], endt[40];
    iso_time(json_integer_value(json_object_get(o, "startTime")), start, sizeof start);
    char id[512];
    snprintf(id, sizeof id,
             "/subscriptions/%s/providers/Microsoft.ContainerInstance/locations/%s/operations/%s",
             sub, jstr(o, "location"), opid);
    json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "id", id, "name", opid, "status", status,
                             "startTime", start);
    if (end > 0) {
        iso_time(end, endt, sizeof endt);
        json_object_set_new(body, "endTime", json_string(endt));
    }
    if (message != NULL)
        json_object_set_new(body, "error", json_pack("{s:s, s:s}", "code", "ContainerGroupFailed",
                                                     "message", message));
    json_decref(view);
    json_decref(rec);
    json_decref(o);
    bd_reply_send(reply, 200, body, NULL);
}

/* The group's record, checked to exist and to hold `container`. */
static bool group_with_container(bd_api_t *api, const op_t *op, const char *container,
                                 bd_reply_t *reply)
{
    json_t *rec = NULL;
    int rc = bd_res_get(ctx(api), api->cell, op->key, &rec);
    if (rc == BERTH_ENOENT) {
        reply_not_found(reply, op->rg, op->name);
        return false;
    }
    if (rc != 0) {
        bd_reply_error(reply, 500, "InternalServerError", "", "the resource store is failing");
        return false;
    }
    json_t *d = json_loads(jstr(rec, "document"), 0, NULL);
    json_t *p = json_object_get(d, "properties");
    bool found = find_named(json_object_get(p, "containers"), container) != NULL ||
                 find_named(json_object_get(p, "initContainers"), container) != NULL;
    json_decref(d);
    json_decref(rec);
    if (!found)
        bd_reply_error(reply, 404, "ContainerNotFound", "",
                       "the container group '%s' has no container '%s'", op->name, container);
    return found;
}

/* LOGS AND EXEC wait for the host's agent as callbacks of the
 * asynchronous store, at most cfg->agent_timeout_ms each: the loop serves
 * every other request meanwhile, whatever the agent does.  The reply is
 * the callback's data and is sent exactly once, from the callback (or at
 * once when the call could not be queued). */
static void agent_call_failed(bd_reply_t *reply, int rc, const berth_error_t *err)
{
    bd_reply_berth_error(reply, rc == BERTH_ENOENT ? 404 : rc == BERTH_EIO ? 503 : 400, err);
}

static void logs_done(int status, const char *output, size_t len, int exit_code,
                      const berth_error_t *err, void *data)
{
    (void)exit_code;
    bd_reply_t *reply = data;
    if (status != 0) {
        agent_call_failed(reply, status, err);
        return;
    }
    json_t *body = json_pack("{s:s%}", "content", output ? output : "", output ? len : 0);
    if (body == NULL)               /* not UTF-8 */
        body = json_pack("{s:s}", "content", "");
    bd_reply_send(reply, 200, body, NULL);
}

static void exec_done(int status, const char *output, size_t len, int exit_code,
                      const berth_error_t *err, void *data)
{
    bd_reply_t *reply = data;
    if (status != 0) {
        agent_call_failed(reply, status, err);
        return;
    }
    json_t *body = json_pack("{s:s%, s:i}", "output", output ? output : "", output ? len : 0,
                             "exitCode", exit_code);
    if (body == NULL)
        body = json_pack("{s:s, s:i}", "output", "", "exitCode", exit_code);
    bd_reply_send(reply, 200, body, NULL);
}

static void get_logs(bd_api_t *api, const bd_request_t *req, const op_t *op,
                     const char *container, bd_reply_t *reply)
{
    char v[32];
    uint32_t tail = 0;
    bool ts = false;
    int q = bd_query_get(req->query, "tail", v, sizeof v);
    if (q < 0 || (q == 1 && (strspn(v, "0123456789") != strlen(v) || v[0] == '\0' ||
                             strlen(v) > 7))) {
        bd_reply_error(reply, 400, "InvalidQueryParameterValue", "tail",
                       "tail must be a number of lines from 0 to 9999999");
        return;
    }
    if (q == 1)
        tail = (uint32_t)atol(v);
    q = bd_query_get(req->query, "timestamps", v, sizeof v);
    if (q < 0 || (q == 1 && !ieq(v, "true") && !ieq(v, "false"))) {
        bd_reply_error(reply, 400, "InvalidQueryParameterValue", "timestamps",
                       "timestamps must be true or false");
        return;
    }
    ts = q == 1 && ieq(v, "true");
    if (!group_with_container(api, op, container, reply))
        return;
    berth_error_t err;
    int rc = berth_store_async_container_logs(api->async, op->key, container, tail, ts,
                                              api->cfg->agent_timeout_ms, logs_done, reply,
                                              &err);
    if (rc != 0)
        agent_call_failed(reply, rc, &err);
}

static void post_exec(bd_api_t *api, const bd_request_t *req, const op_t *op,
                      const char *container, bd_reply_t *reply)
{
    char *command = NULL;
    if (bd_exec_body_parse(req->body, req->body_len, &command) != 0) {
        bd_reply_error(reply, 400, "InvalidRequestContent", "command",
                       "the body must be {\"command\": \"...\", \"terminalSize\": {...}}");
        return;
    }
    if (!group_with_container(api, op, container, reply)) {
        free(command);
        return;
    }
    char id[BD_ID_HEX + 1], pw[BD_ID_HEX + 1];
    bd_random_id(id);
    bd_random_id(pw);
    json_t *s = json_pack("{s:s, s:s, s:s, s:s, s:s}", "key", op->key, "name", op->name,
                          "container", container, "command", command, "password", pw);
    free(command);
    char *text = json_dumps(s, JSON_COMPACT);
    json_decref(s);
    redisReply *r = text ? cmd(api, "SET berth:{%s}:exec:%s %s EX %d", api->cell, id, text,
                               EXEC_TTL_S)
                         : NULL;
    free(text);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        if (r != NULL)
            freeReplyObject(r);
        bd_reply_error(reply, 500, "InternalServerError", "", "the resource store is failing");
        return;
    }
    freeReplyObject(r);
    char uri[512];
    const char *base = req->base_url;
    if (strncmp(base, "https://", 8) == 0)
        snprintf(uri, sizeof uri, "wss://%s/berth/exec/%s", base + 8, id);
    else if (strncmp(base, "http://", 7) == 0)
        snprintf(uri, sizeof uri, "ws://%s/berth/exec/%s", base + 7, id);
    else
        snprintf(uri, sizeof uri, "%s/berth/exec/%s", base, id);
    bd_reply_send(reply, 200, json_pack("{s:s, s:s}", "webSocketUri", uri, "password", pw), NULL);
}

static void run_exec_session(bd_api_t *api, const bd_request_t *req, const char *id,
                             bd_reply_t *reply)
{
    json_t *b = json_loadb(req->body, req->body_len, 0, NULL);
    const char *pw = jstr(b, "password");
    redisReply *r = cmd(api, "GET berth:{%s}:exec:%s", api->cell, id);
    json_t *s = (r != NULL && r->type == REDIS_REPLY_STRING) ? json_loadb(r->str, r->len, 0, NULL)
                                                             : NULL;
    if (r != NULL)
        freeReplyObject(r);
    if (s == NULL) {
        json_decref(b);
        bd_reply_error(reply, 404, "ExecSessionNotFound", "",
                       "no such exec session (sessions serve once, for 60 seconds)");
        return;
    }
    bool good = bd_secret_equal(jstr(s, "password"), pw);
    json_decref(b);
    if (!good) {
        json_decref(s);
        bd_reply_error(reply, 403, "ExecPasswordMismatch", "password",
                       "the exec session's password does not match");
        return;
    }
    r = cmd(api, "DEL berth:{%s}:exec:%s", api->cell, id);
    bool mine = r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (r != NULL)
        freeReplyObject(r);
    if (!mine) {
        json_decref(s);
        bd_reply_error(reply, 404, "ExecSessionNotFound", "", "the exec session was used");
        return;
    }
    char *words = strdup(jstr(s, "command"));
    const char *argv[EXEC_ARGV_MAX];
    size_t argc = words != NULL ? bd_command_split(words, argv, EXEC_ARGV_MAX) : 0;
    berth_error_t err;
    int rc = argc == 0 ? berth_error_set(&err, BERTH_EINVAL, "InvalidCommand", "command",
                                         "the command is empty")
                       : berth_store_async_container_exec(api->async, jstr(s, "key"),
                                                          jstr(s, "container"), argv, argc,
                                                          api->cfg->agent_timeout_ms,
                                                          exec_done, reply, &err);
    free(words);
    json_decref(s);
    if (rc != 0)
        agent_call_failed(reply, rc, &err);
}

static const char *os_name(berth_os_t os)
{
    return os == BERTH_OS_WINDOWS ? "Windows" : "Linux";
}

static const char *state_name(berth_host_state_t s)
{
    return s == BERTH_HOST_READY ? "ready" : s == BERTH_HOST_CORDONED ? "cordoned" : "down";
}

static void get_hosts(bd_api_t *api, bd_reply_t *reply)
{
    berth_store_sync(api->store, NULL);
    json_t *value = json_array();
    size_t n = berth_engine_host_count(api->engine);
    for (size_t i = 0; i < n; i++) {
        berth_host_t h;
        berth_host_usage_t u;
        if (berth_engine_host_at(api->engine, i, &h, &u) != 0)
            continue;
        json_array_append_new(
            value,
            json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:i, s:{s:i, s:i, s:i, s:i}}", "name",
                      h.name, "state", state_name(h.state), "osType", os_name(h.os), "zone",
                      h.zone ? h.zone : "", "cores", (int)h.cores, "memoryMiB",
                      (int)h.memory_mib, "gpuSku", h.gpu_sku ? h.gpu_sku : "", "gpuCount",
                      (int)h.gpu_count, "allocated", "millicores", (int)u.millicores,
                      "memoryMiB", (int)u.memory_mib, "gpus", (int)u.gpu_count, "groups",
                      (int)u.groups));
    }
    bd_reply_send(reply, 200, json_pack("{s:o}", "value", value), NULL);
}

static json_t *usage(const char *name, const char *local, uint64_t cur, uint64_t limit)
{
    return json_pack("{s:s, s:I, s:I, s:{s:s, s:s}}", "unit", "Count", "currentValue",
                     (json_int_t)cur, "limit", (json_int_t)limit, "name", "value", name,
                     "localizedValue", local);
}

static void get_usages(bd_api_t *api, const char *sub, const char *location, bd_reply_t *reply)
{
    char prefix[BD_SUB_MAX + 2], loc[BD_LOCATION_MAX + 1];
    bd_lower(sub, prefix, sizeof prefix - 1);
    strcat(prefix, "/");
    bd_location_norm(location, loc, sizeof loc);
    uint64_t count = 0;
    char lo[RANGE_MAX + 2], hi[RANGE_MAX + 2];
    snprintf(lo, sizeof lo, "[%s", prefix);
    snprintf(hi, sizeof hi, "[%s\xff", prefix);
    for (int scanned = 0; scanned < LIST_SCAN_MAX; scanned += 500) {
        redisReply *r = cmd(api, "ZRANGEBYLEX berth:{%s}:index %s %s LIMIT 0 500", api->cell,
                            lo, hi);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
            if (r != NULL)
                freeReplyObject(r);
            break;
        }
        for (size_t i = 0; i < r->elements; i++) {
            json_t *rec = NULL;
            if (bd_res_get(ctx(api), api->cell, r->element[i]->str, &rec) == 0 &&
                strcmp(jstr(rec, "location"), loc) == 0)
                count++;
            json_decref(rec);
        }
        snprintf(lo, sizeof lo, "(%s", r->element[r->elements - 1]->str);
        size_t got = r->elements;
        freeReplyObject(r);
        if (got < 500)
            break;
    }
    berth_store_sync(api->store, NULL);
    berth_engine_stats_t st;
    berth_engine_stats(api->engine, &st);
    json_t *value = json_array();
    json_array_append_new(value, usage("ContainerGroups", "Container Groups", count, 2000));
    json_array_append_new(value, usage("StandardCores", "Standard Cores",
                                       (st.used_millicores + 999) / 1000,
                                       st.capacity_millicores / 1000));
    json_array_append_new(value, usage("StandardMemoryInGB", "Standard Memory (GB)",
                                       (st.used_memory_mib + 1023) / 1024,
                                       st.capacity_memory_mib / 1024));
    /* per GPU SKU */
    json_t *gpus = json_object();
    size_t n = berth_engine_host_count(api->engine);
    for (size_t i = 0; i < n; i++) {
        berth_host_t h;
        berth_host_usage_t u;
        if (berth_engine_host_at(api->engine, i, &h, &u) != 0 || h.gpu_count == 0 || !h.gpu_sku)
            continue;
        json_t *e = json_object_get(gpus, h.gpu_sku);
        if (e == NULL) {
            e = json_pack("{s:I, s:I}", "used", (json_int_t)0, "cap", (json_int_t)0);
            json_object_set_new(gpus, h.gpu_sku, e);
        }
        json_object_set_new(e, "used", json_integer(json_integer_value(json_object_get(e, "used")) +
                                                    u.gpu_count));
        json_object_set_new(e, "cap", json_integer(json_integer_value(json_object_get(e, "cap")) +
                                                   h.gpu_count));
    }
    const char *sku;
    json_t *e;
    json_object_foreach(gpus, sku, e)
    {
        char name[64], local[80];
        snprintf(name, sizeof name, "Standard%sGpus", sku);
        snprintf(local, sizeof local, "Standard %s GPUs", sku);
        json_array_append_new(value,
                              usage(name, local, (uint64_t)json_integer_value(json_object_get(e, "used")),
                                    (uint64_t)json_integer_value(json_object_get(e, "cap"))));
    }
    json_decref(gpus);
    bd_reply_send(reply, 200, json_pack("{s:o}", "value", value), NULL);
}

static void get_capabilities(bd_api_t *api, const char *location, bd_reply_t *reply)
{
    berth_store_sync(api->store, NULL);
    json_t *best = json_object();  /* "os/sku" -> {cpu, memGB, gpus} */
    size_t n = berth_engine_host_count(api->engine);
    for (size_t i = 0; i < n; i++) {
        berth_host_t h;
        if (berth_engine_host_at(api->engine, i, &h, NULL) != 0 || h.state == BERTH_HOST_DOWN)
            continue;
        const char *sku = h.gpu_count > 0 && h.gpu_sku && h.gpu_sku[0] ? h.gpu_sku : "None";
        uint32_t max_mc = api->limits.max_millicores, max_mib = api->limits.max_memory_mib;
        uint32_t gpus = 0;
        if (strcmp(sku, "None") != 0) {
            const berth_gpu_sku_t *s = berth_engine_gpu_sku_find(api->engine, sku, NULL);
            max_mc = max_mib = 0;
            for (size_t o = 0; s != NULL && o < s->noffers; o++)
                if (s->offers[o].count <= h.gpu_count && s->offers[o].count > gpus) {
                    gpus = s->offers[o].count;
                    max_mc = s->offers[o].max_millicores;
                    max_mib = s->offers[o].max_memory_mib;
                }
        }
        uint32_t cpu = h.cores < max_mc / 1000 ? h.cores : max_mc / 1000;
        uint32_t mem = (h.memory_mib < max_mib ? h.memory_mib : max_mib) / 1024;
        char k[64];
        snprintf(k, sizeof k, "%s/%s", os_name(h.os), sku);
        json_t *e = json_object_get(best, k);
        if (e == NULL) {
            e = json_pack("{s:i, s:i, s:i}", "cpu", 0, "mem", 0, "gpus", 0);
            json_object_set_new(best, k, e);
        }
        if ((int)cpu > json_integer_value(json_object_get(e, "cpu")))
            json_object_set_new(e, "cpu", json_integer(cpu));
        if ((int)mem > json_integer_value(json_object_get(e, "mem")))
            json_object_set_new(e, "mem", json_integer(mem));
        if ((int)gpus > json_integer_value(json_object_get(e, "gpus")))
            json_object_set_new(e, "gpus", json_integer(gpus));
    }
    json_t *value = json_array();
    const char *k;
    json_t *e;
    json_object_foreach(best, k, e)
    {
        char os[16];
        const char *slash = strchr(k, '/');
        snprintf(os, sizeof os, "%.*s", (int)(slash - k), k);
        json_array_append_new(
            value, json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:I, s:I, s:I}}", "resourceType",
                             "containerGroups", "osType", os, "location", location,
                             "ipAddressType", "Public", "gpu", slash + 1, "capabilities",
                             "maxMemoryInGB", json_integer_value(json_object_get(e, "mem")),
                             "maxCpu", json_integer_value(json_object_get(e, "cpu")),
                             "maxGpuCount", json_integer_value(json_object_get(e, "gpus"))));
    }
    json_decref(best);
    bd_reply_send(reply, 200, json_pack("{s:o}", "value", value), NULL);
}

static void get_cached_images(bd_api_t *api, bd_reply_t *reply)
{
    berth_store_sync(api->store, NULL);
    json_t *seen = json_object();
    json_t *value = json_array();
    size_t n = berth_engine_host_count(api->engine);
    for (size_t i = 0; i < n && i < 10000; i++) {
        berth_host_t h;
        if (berth_engine_host_at(api->engine, i, &h, NULL) != 0)
            continue;
        redisReply *r = cmd(api, "SMEMBERS berth:{%s}:images:%s", api->cell, h.name);
        if (r == NULL)
            break;
        for (size_t j = 0; r->type == REDIS_REPLY_ARRAY && j < r->elements; j++) {
            char k[1024];
            snprintf(k, sizeof k, "%s|%s", os_name(h.os), r->element[j]->str);
            if (json_object_get(seen, k) != NULL)
                continue;
            json_object_set_new(seen, k, json_true());
            json_array_append_new(value, json_pack("{s:s, s:s}", "osType", os_name(h.os),
                                                   "image", r->element[j]->str));
        }
        freeReplyObject(r);
    }
    json_decref(seen);
    bd_reply_send(reply, 200, json_pack("{s:o}", "value", value), NULL);
}

static void get_provider_operations(bd_reply_t *reply)
{
    static const char *const OPS[][2] = {
        {"Microsoft.ContainerInstance/containerGroups/read", "Get Container Group"},
        {"Microsoft.ContainerInstance/containerGroups/write", "Create or Update Container Group"},
        {"Microsoft.ContainerInstance/containerGroups/delete", "Delete Container Group"},
        {"Microsoft.ContainerInstance/containerGroups/restart/action", "Restart Container Group"},
        {"Microsoft.ContainerInstance/containerGroups/stop/action", "Stop Container Group"},
        {"Microsoft.ContainerInstance/containerGroups/start/action", "Start Container Group"},
        {"Microsoft.ContainerInstance/containerGroups/containers/logs/read", "Get Container Logs"},
        {"Microsoft.ContainerInstance/containerGroups/containers/exec/action",
         "Exec into Container"},
        {"Microsoft.ContainerInstance/locations/usages/read", "Get Usage"},
        {"Microsoft.ContainerInstance/locations/capabilities/read", "Get Capabilities"},
        {"Microsoft.ContainerInstance/locations/cachedImages/read", "Get Cached Images"},
        {"Microsoft.ContainerInstance/locations/operations/read", "Get Operation Status"},
    };
    json_t *value = json_array();
    for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++)
        json_array_append_new(
            value, json_pack("{s:s, s:{s:s, s:s, s:s, s:s}, s:s}", "name", OPS[i][0], "display",
                             "provider", "Berth (Microsoft.ContainerInstance)", "resource",
                             strstr(OPS[i][0], "locations") ? "Location" : "Container Group",
                             "operation", OPS[i][1], "description", OPS[i][1], "origin",
                             "user,system"));
    bd_reply_send(reply, 200, json_pack("{s:o}", "value", value), NULL);
}

/* ---- routing ---------------------------------------------------------------------------- */

static bool api_version(const bd_request_t *req, bd_reply_t *reply, char *out, size_t cap)
{
    int q = bd_query_get(req->query, "api-version", out, cap);
    if (q == 0) {
        bd_reply_error(reply, 400, "MissingApiVersionParameter", "api-version",
                       "The api-version query parameter (?api-version=) is required for all "
                       "requests. Supported api-versions: %s.",
                       bd_api_versions());
        return false;
    }
    if (q < 0 || !bd_api_version_ok(out)) {
        bd_reply_error(reply, 400, "InvalidApiVersionParameter", "api-version",
                       "The api-version '%s' is invalid. The supported versions are %s.",
                       q < 0 ? "" : out, bd_api_versions());
        return false;
    }
    return true;
}

static void bad_path(bd_reply_t *reply, const char *what)
{
    bd_reply_error(reply, 400, "InvalidRequestUri", "", "the request path is not valid: %s",
                   what);
}

static void no_route(bd_reply_t *reply)
{
    bd_reply_error(reply, 404, "NotFound", "", "no such resource or route");
}

static void bad_method(bd_reply_t *reply)
{
    bd_reply_error(reply, 405, "MethodNotAllowed", "",
                   "the method is not allowed on this resource");
}

/* Fills op's names from a group path; replies 400 when invalid. */
static bool group_names(const bd_request_t *req, char **seg, op_t *op, bd_reply_t *reply)
{
    if (!bd_valid_subscription(seg[1])) {
        bad_path(reply, "bad subscription id");
        return false;
    }
    if (!bd_valid_resource_group(seg[3])) {
        bd_reply_error(reply, 400, "InvalidResourceGroupName", "resourceGroupName",
                       "resource group names are 1-90 letters, digits, '-', '_', '.', '(' or "
                       "')', not ending with '.'");
        return false;
    }
    if (!bd_valid_group_name(seg[7])) {
        bd_reply_error(reply, 400, "InvalidContainerGroupName", "containerGroupName",
                       "container group names are 1-63 lowercase letters, digits or '-', not "
                       "starting or ending with '-'");
        return false;
    }
    snprintf(op->sub, sizeof op->sub, "%s", seg[1]);
    snprintf(op->rg, sizeof op->rg, "%s", seg[3]);
    snprintf(op->name, sizeof op->name, "%s", seg[7]);
    bd_resource_key(seg[1], seg[3], seg[7], op->key, sizeof op->key);
    bd_random_id(op->rid);
    if (req->client_request_id != NULL && strlen(req->client_request_id) < sizeof op->crid &&
        strspn(req->client_request_id,
               "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") ==
            strlen(req->client_request_id))
        snprintf(op->crid, sizeof op->crid, "%s", req->client_request_id);
    op->body = req->body ? req->body : "";
    op->body_len = req->body ? req->body_len : 0;
    return true;
}

static void route_group(bd_api_t *api, const bd_request_t *req, bd_reply_t *reply, char **seg,
                        int n, const char *apiv)
{
    op_t op;
    memset(&op, 0, sizeof op);
    if (!group_names(req, seg, &op, reply))
        return;
    snprintf(op.apiv, sizeof op.apiv, "%s", apiv);
    if (n == 8) {
        switch (req->method) {
        case BD_GET:
            bd_reply_route(reply, "ContainerGroups_Get");
            get_group(api, &op, reply);
            return;
        case BD_PUT:
            bd_reply_route(reply, "ContainerGroups_CreateOrUpdate");
            strcpy(op.kind, "put");
            break;
        case BD_PATCH:
            bd_reply_route(reply, "ContainerGroups_Update");
            strcpy(op.kind, "patch");
            break;
        case BD_DELETE:
            bd_reply_route(reply, "ContainerGroups_Delete");
            strcpy(op.kind, "delete");
            break;
        default:
            bad_method(reply);
            return;
        }
        mutate(api, req, reply, &op);
        return;
    }
    if (n == 9) {
        const char *a = seg[8];
        if (!ieq(a, "restart") && !ieq(a, "stop") && !ieq(a, "start")) {
            no_route(reply);
            return;
        }
        if (req->method != BD_POST) {
            bad_method(reply);
            return;
        }
        bd_lower(a, op.kind, sizeof op.kind);
        bd_reply_route(reply, ieq(a, "restart") ? "ContainerGroups_Restart"
                              : ieq(a, "stop")  ? "ContainerGroups_Stop"
                                                : "ContainerGroups_Start");
        mutate(api, req, reply, &op);
        return;
    }
    if (n == 11 && ieq(seg[8], "containers")) {
        if (!bd_valid_group_name(seg[9])) {
            bd_reply_error(reply, 400, "InvalidContainerName", "containerName",
                           "container names are 1-63 lowercase letters, digits or '-'");
            return;
        }
        if (ieq(seg[10], "logs")) {
            if (req->method != BD_GET) {
                bad_method(reply);
                return;
            }
            bd_reply_route(reply, "Containers_ListLogs");
            get_logs(api, req, &op, seg[9], reply);
            return;
        }
        if (ieq(seg[10], "exec")) {
            if (req->method != BD_POST) {
                bad_method(reply);
                return;
            }
            bd_reply_route(reply, "Containers_ExecuteCommand");
            post_exec(api, req, &op, seg[9], reply);
            return;
        }
    }
    no_route(reply);
}

/* Contract (berthd.h): answers one request under /subscriptions/,
 * /providers/ or /berth/ through `reply`, exactly once, before returning. */
void bd_api_handle(bd_api_t *api, const bd_request_t *req, bd_reply_t *reply)
{
    char buf[PATH_MAX_BYTES];
    char *seg[SEG_MAX];
    char apiv[32];
    int n = bd_path_split(req->path ? req->path : "", buf, sizeof buf, seg, SEG_MAX);
    if (n < 0) {
        bad_path(reply, "empty, relative or odd segments");
        return;
    }
    /* Berth's own routes. */
    if (ieq(seg[0], "berth")) {
        if (n == 2 && strcmp(seg[1], "hosts") == 0) {
            bd_reply_route(reply, "Berth_Hosts");
            if (req->method != BD_GET)
                bad_method(reply);
            else
                get_hosts(api, reply);
            return;
        }
        if (n == 3 && strcmp(seg[1], "exec") == 0) {
            bd_reply_route(reply, "Berth_Exec");
            if (!bd_valid_hex_id(seg[2]))
                bad_path(reply, "bad exec session id");
            else if (req->method != BD_POST)
                bad_method(reply);
            else
                run_exec_session(api, req, seg[2], reply);
            return;
        }
        no_route(reply);
        return;
    }
    if (n == 3 && ieq(seg[0], "providers") && ieq(seg[1], "Microsoft.ContainerInstance") &&
        ieq(seg[2], "operations")) {
        bd_reply_route(reply, "Operations_List");
        if (!api_version(req, reply, apiv, sizeof apiv))
            return;
        if (req->method != BD_GET)
            bad_method(reply);
        else
            get_provider_operations(reply);
        return;
    }
    if (!ieq(seg[0], "subscriptions") || n < 2) {
        no_route(reply);
        return;
    }
    if (!bd_valid_subscription(seg[1])) {
        bad_path(reply, "bad subscription id");
        return;
    }
    /* /subscriptions/S/providers/Microsoft.ContainerInstance/... */
    if (n >= 5 && ieq(seg[2], "providers") && ieq(seg[3], "Microsoft.ContainerInstance")) {
        if (!api_version(req, reply, apiv, sizeof apiv))
            return;
        if (n == 5 && ieq(seg[4], "containerGroups")) {
            bd_reply_route(reply, "ContainerGroups_List");
            if (req->method != BD_GET) {
                bad_method(reply);
                return;
            }
            char prefix[BD_SUB_MAX + 2];
            bd_lower(seg[1], prefix, sizeof prefix - 1);
            strcat(prefix, "/");
            list_groups(api, req, reply, prefix, apiv);
            return;
        }
        if (n >= 7 && ieq(seg[4], "locations")) {
            if (!bd_valid_location(seg[5])) {
                bad_path(reply, "bad location");
                return;
            }
            if (req->method != BD_GET) {
                bad_method(reply);
                return;
            }
            if (n == 7 && ieq(seg[6], "usages")) {
                bd_reply_route(reply, "Location_ListUsage");
                get_usages(api, seg[1], seg[5], reply);
                return;
            }
            if (n == 7 && ieq(seg[6], "capabilities")) {
                bd_reply_route(reply, "Location_ListCapabilities");
                get_capabilities(api, seg[5], reply);
                return;
            }
            if (n == 7 && ieq(seg[6], "cachedImages")) {
                bd_reply_route(reply, "Location_ListCachedImages");
                get_cached_images(api, reply);
                return;
            }
            if (n == 8 && ieq(seg[6], "operations")) {
                bd_reply_route(reply, "Location_GetOperation");
                if (!bd_valid_hex_id(seg[7]))
                    bad_path(reply, "bad operation id");
                else
                    get_operation(api, seg[1], seg[7], reply);
                return;
            }
        }
        no_route(reply);
        return;
    }
    /* /subscriptions/S/resourceGroups/RG/providers/Microsoft.StandbyPool/... (pools.c) */
    if (n >= 7 && ieq(seg[2], "resourceGroups") && ieq(seg[4], "providers") &&
        ieq(seg[5], "Microsoft.StandbyPool") && ieq(seg[6], "standbyContainerGroupPools")) {
        bd_pools_handle(api->pools, req, reply, seg, n);
        return;
    }
    /* /subscriptions/S/resourceGroups/RG/providers/Microsoft.ContainerInstance/containerGroups */
    if (n >= 7 && ieq(seg[2], "resourceGroups") && ieq(seg[4], "providers") &&
        ieq(seg[5], "Microsoft.ContainerInstance") && ieq(seg[6], "containerGroups")) {
        if (!bd_valid_resource_group(seg[3])) {
            bd_reply_error(reply, 400, "InvalidResourceGroupName", "resourceGroupName",
                           "resource group names are 1-90 letters, digits, '-', '_', '.', '(' "
                           "or ')', not ending with '.'");
            return;
        }
        if (!api_version(req, reply, apiv, sizeof apiv))
            return;
        if (n == 7) {
            bd_reply_route(reply, "ContainerGroups_ListByResourceGroup");
            if (req->method != BD_GET) {
                bad_method(reply);
                return;
            }
            char prefix[BD_KEY_MAX + 1];
            bd_resource_key(seg[1], seg[3], "", prefix, sizeof prefix);
            list_groups(api, req, reply, prefix, apiv);
            return;
        }
        route_group(api, req, reply, seg, n, apiv);
        return;
    }
    /* /subscriptions/S/resourceGroups/RG/providers/Microsoft.ContainerInstance/nGroups */
    if (n >= 7 && ieq(seg[2], "resourceGroups") && ieq(seg[4], "providers") &&
        ieq(seg[5], "Microsoft.ContainerInstance") && ieq(seg[6], "nGroups")) {
        bd_ngroups_handle(api->store, req, reply, seg, n);
        return;
    }
    no_route(reply);
}

/* ---- open, close, metrics, health ------------------------------------------------------- */

/* Contract (berthd.h): connects the engine replica and berthd's own Redis
 * connection, joins the request stream's consumer group, starts the claim
 * timer and claims what a dead berthd left pending.  0 or a negative code
 * with err. */
int bd_api_open(const bd_config_t *cfg, struct event_base *base, bd_api_t **out,
                berth_error_t *err)
{
    *out = NULL;
    bd_api_t *api = calloc(1, sizeof *api);
    if (api == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    api->cfg = cfg;
    api->base = base;
    snprintf(api->cell, sizeof api->cell, "%s", cfg->cell[0] ? cfg->cell : "default");
    if (cfg->consumer != NULL && cfg->consumer[0] != '\0') {
        snprintf(api->consumer, sizeof api->consumer, "%s", cfg->consumer);
    } else {
        char host[64] = "berthd";
        gethostname(host, sizeof host - 1);
        snprintf(api->consumer, sizeof api->consumer, "%s-%ld", host, (long)getpid());
    }
    snprintf(api->k_requests, sizeof api->k_requests, "berth:{%s}:requests", api->cell);
    api->claim_idle_ms = CLAIM_IDLE_MS_DEFAULT;
    strcpy(api->op_cursor, "0");
    const char *env = getenv("BERTHD_CLAIM_IDLE_MS");
    if (env != NULL && atol(env) > 0)
        api->claim_idle_ms = (uint32_t)atol(env);
    berth_engine_options_t eo;
    berth_engine_options_init(&eo);
    api->limits = eo.limits;
    int rc = berth_engine_new(&eo, &api->engine, err);
    if (rc != 0)
        goto fail;
    berth_store_options_t so;
    berth_store_options_init(&so);
    so.url = cfg->redis_url;
    so.cell = api->cell;
    rc = berth_store_open(&so, api->engine, &api->store, err);
    if (rc != 0)
        goto fail;
    rc = berth_engine_new(&eo, &api->async_engine, err);
    if (rc == 0)
        rc = berth_store_async_open(&so, api->async_engine, base, &api->async, err);
    if (rc != 0)
        goto fail;
    redisReply *r = cmd(api, "XGROUP CREATE %s berthd $ MKSTREAM", api->k_requests);
    if (r == NULL || (r->type == REDIS_REPLY_ERROR && strstr(r->str, "BUSYGROUP") == NULL)) {
        rc = berth_error_set(err, BERTH_EIO, "RedisUnavailable", "",
                             "cannot create the request stream's consumer group: %s",
                             r ? r->str : (api->rc ? api->rc->errstr : "no connection"));
        if (r != NULL)
            freeReplyObject(r);
        goto fail;
    }
    freeReplyObject(r);
    uint32_t period = CLAIM_PERIOD_MS;
    if (api->claim_idle_ms / 2 < period)
        period = api->claim_idle_ms / 2 > 100 ? api->claim_idle_ms / 2 : 100;
    api->pools = bd_pools_new(base, api->store);
    if (api->pools == NULL) {
        rc = berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
        goto fail;
    }
    api->timer = event_new(base, -1, EV_PERSIST, on_timer, api);
    struct timeval tv = {(time_t)(period / 1000), (suseconds_t)((period % 1000) * 1000)};
    if (api->timer == NULL || event_add(api->timer, &tv) != 0) {
        rc = berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "cannot add the claim timer");
        goto fail;
    }
    claim_pending(api);
    *out = api;
    return 0;
fail:
    bd_api_close(api);
    return rc;
}

/* Contract (berthd.h): stops the timer and frees everything; accepts NULL. */
void bd_api_close(bd_api_t *api)
{
    if (api == NULL)
        return;
    if (api->timer != NULL)
        event_free(api->timer);
    bd_pools_free(api->pools);
    /* Agent calls still waiting are answered now ("Closed"), while the
     * server still holds their replies. */
    berth_store_async_close(api->async);
    berth_engine_free(api->async_engine);
    berth_store_close(api->store);
    berth_engine_free(api->engine);
    if (api->rc != NULL)
        redisFree(api->rc);
    free(api);
}

/* Contract (berthd.h): appends the API's Prometheus metrics to out. */
void bd_api_metrics(bd_api_t *api, struct evbuffer *out)
{
    evbuffer_add_printf(out, "# HELP berthd_placement_seconds Time of placement commits.\n"
                             "# TYPE berthd_placement_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t i = 0; i < NBUCKETS; i++) {
        cum += api->hist[i];
        if (i < NBUCKETS - 1)
            evbuffer_add_printf(out, "berthd_placement_seconds_bucket{le=\"%g\"} %llu\n",
                                BUCKETS[i], (unsigned long long)cum);
        else
            evbuffer_add_printf(out, "berthd_placement_seconds_bucket{le=\"+Inf\"} %llu\n",
                                (unsigned long long)cum);
    }
    evbuffer_add_printf(out, "berthd_placement_seconds_sum %.6f\nberthd_placement_seconds_count %llu\n",
                        api->hist_sum, (unsigned long long)api->hist_count);
    evbuffer_add_printf(out,
                        "# HELP berthd_commit_conflicts_total Commits refused: a redeploy "
                        "changing a fixed property, or no room after the store's retries.\n"
                        "# TYPE berthd_commit_conflicts_total counter\n"
                        "berthd_commit_conflicts_total{reason=\"conflict\"} %llu\n"
                        "berthd_commit_conflicts_total{reason=\"nospace\"} %llu\n",
                        (unsigned long long)api->conflicts, (unsigned long long)api->nospace);
    evbuffer_add_printf(out, "# HELP berthd_requests_replayed_total Pending requests claimed "
                             "from a dead berthd and run again.\n"
                             "# TYPE berthd_requests_replayed_total counter\n"
                             "berthd_requests_replayed_total %llu\n",
                        (unsigned long long)api->replayed);
    evbuffer_add_printf(out, "# HELP berthd_evictions_total Spot container groups evicted "
                             "to place Regular ones.\n"
                             "# TYPE berthd_evictions_total counter\n"
                             "berthd_evictions_total %llu\n",
                        (unsigned long long)api->evictions);
    long long depth = -1, pending = -1;
    redisReply *r = cmd(api, "XLEN %s", api->k_requests);
    if (r != NULL && r->type == REDIS_REPLY_INTEGER)
        depth = r->integer;
    if (r != NULL)
        freeReplyObject(r);
    r = cmd(api, "XPENDING %s berthd", api->k_requests);
    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
        r->element[0]->type == REDIS_REPLY_INTEGER)
        pending = r->element[0]->integer;
    if (r != NULL)
        freeReplyObject(r);
    evbuffer_add_printf(out, "# HELP berthd_request_queue_depth Mutating requests in the "
                             "stream (all) and pending (read, not yet acknowledged).\n"
                             "# TYPE berthd_request_queue_depth gauge\n");
    if (depth >= 0)
        evbuffer_add_printf(out, "berthd_request_queue_depth{kind=\"stream\"} %lld\n", depth);
    if (pending >= 0)
        evbuffer_add_printf(out, "berthd_request_queue_depth{kind=\"pending\"} %lld\n", pending);
    berth_store_sync(api->store, NULL);
    size_t n = berth_engine_host_count(api->engine);
    uint64_t states[3] = {0, 0, 0};
    json_t *skus = json_object();   /* sku -> [cap mc, cap mib, cap gpu, used mc, mib, gpu] */
    for (size_t i = 0; i < n; i++) {
        berth_host_t h;
        berth_host_usage_t u;
        if (berth_engine_host_at(api->engine, i, &h, &u) != 0)
            continue;
        if ((unsigned)h.state < 3)
            states[h.state]++;
        const char *sku = h.gpu_count > 0 && h.gpu_sku && h.gpu_sku[0] ? h.gpu_sku : "none";
        json_t *a = json_object_get(skus, sku);
        if (a == NULL) {
            a = json_pack("[I,I,I,I,I,I]", (json_int_t)0, (json_int_t)0, (json_int_t)0,
                          (json_int_t)0, (json_int_t)0, (json_int_t)0);
            json_object_set_new(skus, sku, a);
        }
        uint64_t add[6] = {(uint64_t)h.cores * 1000, h.memory_mib, h.gpu_count,
                           u.millicores,             u.memory_mib, u.gpu_count};
        for (size_t j = 0; j < 6; j++)
            json_array_set_new(a, j, json_integer(json_integer_value(json_array_get(a, j)) +
                                                  (json_int_t)add[j]));
    }
    evbuffer_add_printf(out, "# HELP berthd_hosts Hosts in the cell by state.\n"
                             "# TYPE berthd_hosts gauge\n"
                             "berthd_hosts{state=\"ready\"} %llu\n"
                             "berthd_hosts{state=\"cordoned\"} %llu\n"
                             "berthd_hosts{state=\"down\"} %llu\n",
                        (unsigned long long)states[0], (unsigned long long)states[1],
                        (unsigned long long)states[2]);
    static const char *const DIMS[3] = {"millicores", "memory_mib", "gpus"};
    evbuffer_add_printf(out, "# HELP berthd_capacity Total capacity of the cell's hosts.\n"
                             "# TYPE berthd_capacity gauge\n");
    const char *sku;
    json_t *a;
    json_object_foreach(skus, sku, a)
    {
        for (size_t j = 0; j < 3; j++)
            evbuffer_add_printf(out, "berthd_capacity{dimension=\"%s\",sku=\"%s\"} %lld\n",
                                DIMS[j], sku, (long long)json_integer_value(json_array_get(a, j)));
    }
    evbuffer_add_printf(out, "# HELP berthd_allocated Capacity allocated to groups.\n"
                             "# TYPE berthd_allocated gauge\n");
    json_object_foreach(skus, sku, a)
    {
        for (size_t j = 0; j < 3; j++)
            evbuffer_add_printf(out, "berthd_allocated{dimension=\"%s\",sku=\"%s\"} %lld\n",
                                DIMS[j], sku,
                                (long long)json_integer_value(json_array_get(a, j + 3)));
    }
    json_decref(skus);
}

/* Contract (berthd.h): whether Redis answers PING; why[cap] says what fails. */
bool bd_api_healthy(bd_api_t *api, char *why, size_t cap)
{
    redisReply *r = cmd(api, "PING");
    bool ok = r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
    if (!ok && cap > 0)
        snprintf(why, cap, "redis: %s",
                 r != NULL && r->type == REDIS_REPLY_ERROR ? r->str
                 : api->rc != NULL                         ? api->rc->errstr
                                                           : "cannot connect");
    if (ok && cap > 0)
        why[0] = '\0';
    if (r != NULL)
        freeReplyObject(r);
    return ok;
}
