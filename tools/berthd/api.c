/*
 * api.c: berthd's ACI REST API: routes, api-versions, reads of
 * container-group resources, long-running operations, usages and
 * capabilities, logs and exec through the agents (the mutating requests
 * are mutate.c's).
 *
 * NOTHING BLOCKS THE LOOP.  Every container-group route is callbacks on
 * the loop: a GET reads the resource record (records.c) and the agent's
 * view (the asynchronous store); lists, usages and operations likewise
 * (reads.c); every mutating request is one commit (mutate.c); logs and
 * exec wait for the host's agent (at most cfg->agent_timeout_ms) as
 * callbacks too, so a stalled agent stalls only the requests that asked
 * it.  The work whose library calls still block -- the NGroup and
 * standby-pool routes, standby claims, host heartbeats, pool and NGroup
 * reconciliation -- runs on the worker thread (worker.c) with its own
 * connection and replica, every BERTHD_TICK_MS (5 s by default) for the
 * periodic part.  The loop's own timer catches the replica up, reads the
 * agents' image sets and drops operation records past their day, each
 * without blocking.
 *
 * RESOURCE STATES.  A PUT of a new group places it where the engine
 * chooses; of a running one redeploys it under the same key (the core
 * refuses changes that need a delete); of a stopped one starts it again
 * with the new document, on its last host when it fits there.  A
 * resource's provisioningState is the agent's view's when the view
 * describes the record's generation, else the record's own (Creating).
 * Two berthds changing one resource at once are ordered by Redis: the
 * second one's commit finds the record changed, reads it again and
 * decides anew (mutate.c).
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

#include "api-internal.h"
#include "reads.h"
#include "worker.h"

#define SEG_MAX 16
#define PATH_MAX_BYTES 2048
#define TICK_MS_DEFAULT 5000u
#define EXEC_TTL_S 60
#define PAGE_MAX 100
#define EXEC_ARGV_MAX 64
#define LIST_SCAN_MAX 100000        /* groups one usage count looks at      */
#define RANGE_MAX 512
#define OP_TTL_MS (24 * 3600 * 1000LL) /* operation records kept a day       */

static const double BUCKETS[API_NBUCKETS - 1] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,   0.25,   0.5,   1.0,  2.5};

/* ---- small helpers ------------------------------------------------------------------------ */

/* Contract: api-internal.h. */
double api_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool ieq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

/* Contract: api-internal.h. */
const char *api_jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL ? s : "";
}

/* ---- metrics ---------------------------------------------------------------------------- */

/* Contract: api-internal.h. */
void api_observe_placement(bd_api_t *api, double seconds, int rc)
{
    size_t i = 0;
    while (i < API_NBUCKETS - 1 && seconds > BUCKETS[i])
        i++;
    api->hist[i]++;
    api->hist_count++;
    api->hist_sum += seconds;
    if (rc == BERTH_ECONFLICT)
        api->conflicts++;
    else if (rc == BERTH_ENOSPC)
        api->nospace++;
}

/* ---- resource bodies -------------------------------------------------------------------- */

/* Contract: api-internal.h. */
json_t *api_find_named(json_t *arr, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        if (strcmp(api_jstr(e, "name"), name) == 0)
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
            ? same
            : json_object_get(api_find_named(view_list, api_jstr(c, "name")), "instanceView");
        if (json_is_object(iv))
            json_object_set(props, "instanceView", iv);
    }
}

/* PRIORITY AND EVICTION.  properties.priority (Regular or Spot) is taken
 * from api-version API_PRIORITY_APIV on (Azure's first version with it; the
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

/* The instance view of an evicted group. */
static json_t *evicted_view(const berth_eviction_t *ev)
{
    char when[40];
    berth__clock_format_iso8601((int64_t)ev->time_ms, when, sizeof when);
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
    berth__clock_format_iso8601((int64_t)ev->time_ms, when, sizeof when);
    return json_pack("{s:i, s:{s:s, s:s, s:s}, s:[]}", "restartCount", 0, "currentState",
                     "state", "Terminated", "finishTime", when, "detailStatus", "Evicted",
                     "events");
}

/* The resource's ARM body (secrets redacted) from its record and view. */
/* Contract: api-internal.h. */
json_t *api_resource_body_build(bd_api_t *api, json_t *rec, const berth_group_t *parsed,
                                const char *doc, const char *force_state,
                                const json_t *view_in, const berth_eviction_t *evicted_by)
{
    json_t *body = NULL;
    berth_group_t *g = NULL;
    berth_error_t err;
    char *text = NULL;
    if ((parsed != NULL ||
         (doc != NULL && berth_group_parse(doc, strlen(doc), &g, &err) == 0)) &&
        berth_group_to_json(parsed != NULL ? parsed : g, BERTH_JSON_REDACT, &text, NULL) == 0)
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

    const char *state = api_jstr(rec, "state");
    berth_eviction_t eviction;
    bool evicted = force_state == NULL && evicted_by != NULL;
    if (evicted)
        eviction = *evicted_by;
    /* An evicted group's last view (until its agent drops it) is history. */
    json_t *view = evicted || view_in == NULL ? NULL : json_incref((json_t *)view_in);
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
        const char *vip = api_jstr(json_object_get(view, "ipAddress"), "ip");
        if (vip[0] != '\0' && strcmp(state, "Stopped") != 0)
            json_object_set_new(ip, "ip", json_string(vip));
        const char *label = api_jstr(ip, "dnsNameLabel");
        if (label[0] != '\0') {
            char fqdn[512];
            snprintf(fqdn, sizeof fqdn, "%s.%s.%s", label, api_jstr(rec, "location"),
                     api->cfg->dns_domain ? api->cfg->dns_domain : "berth.local");
            json_object_set_new(ip, "fqdn", json_string(fqdn));
        }
    }
    json_decref(view);
    return body;
}

/* ---- operations (long-running) ----------------------------------------------------------- */

/* Contract: api-internal.h. */
void api_arm_id(const op_t *op, char *out, size_t cap)
{
    snprintf(out, cap,
             "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ContainerInstance/"
             "containerGroups/%s",
             op->sub, op->rg, op->name);
}

/* ---- the timer ---------------------------------------------------------------------------- */

/* Drops operation records older than OP_TTL_MS, about a hundred fields a
 * tick (HSCAN resumes where the last tick stopped), without blocking. */
static void prune_dropped(int status, const char *text, size_t len, void *data)
{
    (void)status, (void)text, (void)len, (void)data;
}

static void prune_scanned(int status, const char *const *ids, const char *const *texts,
                          size_t n, const char *next, void *data)
{
    bd_api_t *api = data;
    api->pruning = false;
    if (status != 0)
        return;
    snprintf(api->op_cursor, sizeof api->op_cursor, "%s", next);
    const char **old = n > 0 ? malloc(n * sizeof *old) : NULL;
    size_t nold = 0;
    int64_t now = berth__clock_wall_ms();
    for (size_t i = 0; old != NULL && i < n; i++) {
        json_t *o = json_loads(texts[i], 0, NULL);
        int64_t start = (int64_t)json_integer_value(json_object_get(o, "startTime"));
        json_decref(o);
        if (now - start > OP_TTL_MS)
            old[nold++] = ids[i];
    }
    if (nold > 0)
        bd_records_operations_drop(api->records, old, nold, prune_dropped, NULL);
    free(old);
}

static void prune_operations(bd_api_t *api)
{
    if (api->pruning)
        return;
    if (bd_records_operations_scan(api->records, api->op_cursor, 100, prune_scanned, api) == 0)
        api->pruning = true;
}

/* /healthz answers from the last PING's outcome (one a second). */
static void health_pinged(int status, const char *text, size_t len, void *data)
{
    (void)len;
    bd_api_t *api = data;
    api->pinging = false;
    api->healthy = status == 0 && text != NULL && strcmp(text, "PONG") == 0;
    snprintf(api->health_why, sizeof api->health_why, "%s",
             api->healthy ? "" : status != 0 ? "redis: no answer" : "redis: unexpected answer");
}

static void on_health(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    bd_api_t *api = arg;
    if (api->pinging) {
        /* The last PING is still out: Redis is too slow to count as up. */
        api->healthy = false;
        snprintf(api->health_why, sizeof api->health_why, "redis: no answer in a second");
        return;
    }
    if (bd_records_ping(api->records, health_pinged, api) == 0)
        api->pinging = true;
}

static void replica_synced(int status, const berth_placement_t *placement,
                           const berth_error_t *err, void *data)
{
    (void)placement, (void)err;
    bd_api_t *api = data;
    api->syncing = false;
    (void)status;                   /* a failure is retried next tick */
}

static void images_synced(int status, const char *text, size_t len, const berth_error_t *err,
                          void *data)
{
    (void)text, (void)len;
    bd_api_t *api = data;
    api->images_syncing = false;
    if (status != 0)
        bd_log("warn", "host images not read: %s", err != NULL ? err->message : "");
}

/* The loop's periodic work, none of it blocking: the replica caught up
 * with the cell's log (hosts that joined or changed), the images each
 * agent reports (image locality), old operation records dropped.  Host
 * heartbeats, pool refills and NGroup steps run on the worker
 * (bd_worker_housekeeping_start()). */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bd_api_t *api = arg;
    berth_error_t err;
    prune_operations(api);
    if (!api->syncing &&
        berth_store_async_sync(api->async, replica_synced, api, &err) == 0)
        api->syncing = true;
    if (!api->images_syncing &&
        berth_store_async_images_sync(api->async, images_synced, api, &err) == 0)
        api->images_syncing = true;
}

/* Runs fn once the replica caught up with the cell's log (or failed to:
 * then with what it holds), for the routes that read the engine. */
typedef void (*synced_fn)(bd_api_t *api, const char *arg, bd_reply_t *reply);

typedef struct after_sync {
    bd_api_t *api;
    bd_reply_t *reply;
    synced_fn fn;
    char arg[BD_LOCATION_MAX + 1];
} after_sync_t;

static void after_sync_done(int status, const berth_placement_t *placement,
                            const berth_error_t *err, void *data)
{
    (void)status, (void)placement, (void)err;
    after_sync_t *a = data;
    a->fn(a->api, a->arg, a->reply);
    free(a);
}

static void after_sync(bd_api_t *api, synced_fn fn, const char *arg, bd_reply_t *reply)
{
    after_sync_t *a = calloc(1, sizeof *a);
    berth_error_t err;
    if (a == NULL) {
        bd_reply_error(reply, 503, "ServiceUnavailable", "", "out of memory");
        return;
    }
    a->api = api;
    a->reply = reply;
    a->fn = fn;
    snprintf(a->arg, sizeof a->arg, "%s", arg != NULL ? arg : "");
    if (berth_store_async_sync(api->async, after_sync_done, a, &err) != 0)
        after_sync_done(0, NULL, NULL, a);
}

/* ---- read-only routes ------------------------------------------------------------------- */

/* Contract: api-internal.h. */
void api_reply_not_found(bd_reply_t *reply, const char *rg, const char *name)
{
    bd_reply_error(reply, 404, "ResourceNotFound", "",
                   "The Resource 'Microsoft.ContainerInstance/containerGroups/%s' under "
                   "resource group '%s' was not found.",
                   name, rg);
}

/* ---- bodies without blocking ----------------------------------------------------------- */

/* What api_body_read() gathers before it builds the body: the document
 * and, at once beside it, the view or the eviction record. */
typedef struct body_read {
    bd_api_t *api;
    char key[BD_KEY_MAX + 1];
    json_t *rec;
    int pending;                    /* reads still out                      */
    char *doc;                      /* NULL: none could be read             */
    json_t *view;
    bool evicted;
    berth_eviction_t eviction;
    api_body_cb cb;
    void *data;
} body_read_t;

/* One read is in; the body is built once all are. */
static void body_step(body_read_t *b)
{
    if (--b->pending > 0)
        return;
    json_t *body = api_resource_body_build(b->api, b->rec, NULL, b->doc, NULL,
                                           b->evicted ? NULL : b->view,
                                           b->evicted ? &b->eviction : NULL);
    api_body_cb cb = b->cb;
    void *data = b->data;
    json_decref(b->rec);
    json_decref(b->view);
    free(b->doc);
    free(b);
    cb(body, data);
}

static void body_document(int status, const char *spec, uint64_t generation, const char *host,
                          const berth_error_t *err, void *data)
{
    (void)generation, (void)host, (void)err;
    body_read_t *b = data;
    if (status == 0 && spec != NULL)
        b->doc = strdup(spec);
    body_step(b);
}

static void body_view(int status, const char *text, size_t len, const berth_error_t *err,
                      void *data)
{
    (void)err;
    body_read_t *b = data;
    json_t *view = status == 0 && text != NULL ? json_loadb(text, len, 0, NULL) : NULL;
    if (view != NULL && !json_is_object(view)) {
        json_decref(view);
        view = NULL;
    }
    b->view = view;
    body_step(b);
}

static void body_eviction(int status, const berth_eviction_t *eviction, const berth_error_t *err,
                          void *data)
{
    (void)err;
    body_read_t *b = data;
    if (status == 0 && eviction != NULL) {
        b->evicted = true;          /* an evicted group's last view is history */
        b->eviction = *eviction;
    }
    body_step(b);
}

/* Contract: api-internal.h. */
void api_body_read(bd_api_t *api, const char *key, json_t *rec, api_body_cb cb, void *data)
{
    body_read_t *b = calloc(1, sizeof *b);
    if (b == NULL) {
        cb(NULL, data);
        return;
    }
    b->api = api;
    snprintf(b->key, sizeof b->key, "%s", key);
    b->rec = json_incref(rec);
    b->cb = cb;
    b->data = data;
    b->pending = 1;                 /* until every read below is queued */
    berth_error_t e;
    uint64_t gen;
    if (berth_store_async_document_read(api->async, key, body_document, b, &e) == 0)
        b->pending++;
    /* Placed: its view.  Neither stopped nor placed: evicted, when the
     * cell says so. */
    if (strcmp(api_jstr(rec, "state"), "Stopped") != 0) {
        bool placed = berth_store_async_generation(api->async, key, &gen) == 0;
        if (placed ? berth_store_async_view_read(api->async, key, body_view, b, &e) == 0
                   : berth_store_async_eviction_read(api->async, key, body_eviction, b, &e) == 0)
            b->pending++;
    }
    body_step(b);
}

static void get_group_body(json_t *body, void *data)
{
    bd_reply_t *reply = data;
    if (body == NULL)
        bd_reply_error(reply, 500, "InternalServerError", "", "out of memory");
    else
        bd_reply_send(reply, 200, body, NULL);
}

/* GET of one group: the record, then its view, without blocking. */
typedef struct get_ctx {
    bd_api_t *api;
    bd_reply_t *reply;
    char key[BD_KEY_MAX + 1];
    char rg[BD_RG_MAX + 1];
    char name[64];
} get_ctx_t;

static void get_group_record(int status, json_t *rec, const char *sha1, void *data)
{
    (void)sha1;
    get_ctx_t *g = data;
    if (status != 0)
        bd_reply_error(g->reply, 500, "InternalServerError", "", "the resource store is failing");
    else if (rec == NULL)
        api_reply_not_found(g->reply, g->rg, g->name);
    else
        api_body_read(g->api, g->key, rec, get_group_body, g->reply);
    free(g);
}

static void get_group(bd_api_t *api, const op_t *op, bd_reply_t *reply)
{
    get_ctx_t *g = calloc(1, sizeof *g);
    if (g == NULL) {
        bd_reply_error(reply, 503, "ServiceUnavailable", "", "out of memory");
        return;
    }
    g->api = api;
    g->reply = reply;
    snprintf(g->key, sizeof g->key, "%s", op->key);
    snprintf(g->rg, sizeof g->rg, "%s", op->rg);
    snprintf(g->name, sizeof g->name, "%s", op->name);
    if (bd_records_get(api->records, op->key, get_group_record, g) != 0) {
        free(g);
        bd_reply_error(reply, 503, "ServiceUnavailable", "", "out of memory");
    }
}

static const char *os_name(berth_os_t os)
{
    return os == BERTH_OS_WINDOWS ? "Windows" : "Linux";
}

static const char *state_name(berth_host_state_t s)
{
    return s == BERTH_HOST_READY ? "ready" : s == BERTH_HOST_CORDONED ? "cordoned" : "down";
}

static void get_hosts(bd_api_t *api, const char *arg, bd_reply_t *reply)
{
    (void)arg;
    berth_engine_t *engine = berth_store_async_engine(api->async);
    json_t *value = json_array();
    size_t n = berth_engine_host_count(engine);
    for (size_t i = 0; i < n; i++) {
        berth_host_t h;
        berth_host_usage_t u;
        if (berth_engine_host_at(engine, i, &h, &u) != 0)
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

static void get_capabilities(bd_api_t *api, const char *location, bd_reply_t *reply)
{
    berth_engine_t *engine = berth_store_async_engine(api->async);
    json_t *best = json_object();  /* "os/sku" -> {cpu, memGB, gpus} */
    size_t n = berth_engine_host_count(engine);
    for (size_t i = 0; i < n; i++) {
        berth_host_t h;
        if (berth_engine_host_at(engine, i, &h, NULL) != 0 || h.state == BERTH_HOST_DOWN)
            continue;
        const char *sku = h.gpu_count > 0 && h.gpu_sku && h.gpu_sku[0] ? h.gpu_sku : "None";
        uint32_t max_mc = api->limits.max_millicores, max_mib = api->limits.max_memory_mib;
        uint32_t gpus = 0;
        if (strcmp(sku, "None") != 0) {
            const berth_gpu_sku_t *s = berth_engine_gpu_sku_find(engine, sku, NULL);
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

typedef struct images_ctx {
    bd_api_t *api;
    bd_reply_t *reply;
} images_ctx_t;

static void cached_images(int status, const char *const *images, size_t n,
                          const berth_error_t *err, void *data)
{
    images_ctx_t *c = data;
    bd_reply_t *reply = c->reply;
    if (status != 0) {
        bd_reply_berth_error(reply, 500, err);
        free(c);
        return;
    }
    /* The OS types the cell's hosts run: an image is listed for each (the
     * image sets do not say which OS pulled them). */
    berth_engine_t *engine = berth_store_async_engine(c->api->async);
    bool os[2] = {false, false};
    size_t nh = berth_engine_host_count(engine);
    for (size_t i = 0; i < nh; i++) {
        berth_host_t h;
        if (berth_engine_host_at(engine, i, &h, NULL) == 0)
            os[h.os == BERTH_OS_WINDOWS] = true;
    }
    free(c);
    json_t *value = json_array();
    for (size_t i = 0; value != NULL && i < n; i++)
        for (int k = 0; k < 2; k++)
            if (os[k])
                json_array_append_new(value,
                                      json_pack("{s:s, s:s}", "osType",
                                                os_name(k ? BERTH_OS_WINDOWS : BERTH_OS_LINUX),
                                                "image", images[i]));
    bd_reply_send(reply, 200, json_pack("{s:o}", "value", value), NULL);
}

static void get_cached_images(bd_api_t *api, bd_reply_t *reply)
{
    images_ctx_t *c = malloc(sizeof *c);
    berth_error_t err;
    if (c == NULL) {
        bd_reply_error(reply, 503, "ServiceUnavailable", "", "out of memory");
        return;
    }
    c->api = api;
    c->reply = reply;
    if (berth_store_async_images_list(api->async, cached_images, c, &err) != 0) {
        free(c);
        bd_reply_berth_error(reply, 500, &err);
    }
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

/* Fills op's names from a group path and a new operation id; replies 400
 * when a name is invalid, 500 when the kernel gives no random bytes. */
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
    if (bd_random_id(op->rid) != 0) {
        bd_reply_error(reply, 500, "InternalServerError", "",
                       "berthd has no random bytes for an operation id (getrandom: %s)",
                       strerror(errno));
        return false;
    }
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
        api_mutate(api, req, reply, &op);
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
        api_mutate(api, req, reply, &op);
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
            bd_reads_logs(api, req, &op, seg[9], reply);
            return;
        }
        if (ieq(seg[10], "exec")) {
            if (req->method != BD_POST) {
                bad_method(reply);
                return;
            }
            bd_reply_route(reply, "Containers_ExecuteCommand");
            bd_reads_exec(api, req, &op, seg[9], reply);
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
                after_sync(api, get_hosts, NULL, reply);
            return;
        }
        if (n == 3 && strcmp(seg[1], "exec") == 0) {
            bd_reply_route(reply, "Berth_Exec");
            if (!bd_valid_hex_id(seg[2]))
                bad_path(reply, "bad exec session id");
            else if (req->method != BD_POST)
                bad_method(reply);
            else
                bd_reads_exec_session(api, req, seg[2], reply);
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
            bd_reads_list(api, req, reply, prefix, apiv);
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
                bd_reads_usages(api, seg[1], seg[5], reply);
                return;
            }
            if (n == 7 && ieq(seg[6], "capabilities")) {
                bd_reply_route(reply, "Location_ListCapabilities");
                after_sync(api, get_capabilities, seg[5], reply);
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
                    bd_reads_operation(api, seg[1], seg[7], reply);
                return;
            }
        }
        no_route(reply);
        return;
    }
    /* /subscriptions/S/resourceGroups/RG/providers/Microsoft.StandbyPool/... (pools.c) */
    if (n >= 7 && ieq(seg[2], "resourceGroups") && ieq(seg[4], "providers") &&
        ieq(seg[5], "Microsoft.StandbyPool") && ieq(seg[6], "standbyContainerGroupPools")) {
        bd_worker_pools(api->worker, req, reply, seg, n);
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
            bd_reads_list(api, req, reply, prefix, apiv);
            return;
        }
        route_group(api, req, reply, seg, n, apiv);
        return;
    }
    /* /subscriptions/S/resourceGroups/RG/providers/Microsoft.ContainerInstance/nGroups */
    if (n >= 7 && ieq(seg[2], "resourceGroups") && ieq(seg[4], "providers") &&
        ieq(seg[5], "Microsoft.ContainerInstance") && ieq(seg[6], "nGroups")) {
        bd_worker_ngroups(api->worker, req, reply, seg, n);
        return;
    }
    no_route(reply);
}

/* ---- open, close, metrics, health ------------------------------------------------------- */

/* Contract (berthd.h): opens the asynchronous store (the engine replica of
 * the requests), berthd's own records and the worker (its own replica, for
 * the work still blocking), and starts the timers.  0 or a negative code
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
    strcpy(api->op_cursor, "0");
    berth_engine_options_t eo;
    berth_engine_options_init(&eo);
    api->limits = eo.limits;
    berth_store_options_t so;
    berth_store_options_init(&so);
    so.url = cfg->redis_url;
    so.cell = api->cell;
    int rc = berth_engine_new(&eo, &api->async_engine, err);
    if (rc == 0)
        rc = berth_store_async_open(&so, api->async_engine, base, &api->async, err);
    if (rc != 0)
        goto fail;
    api->records = bd_records_new(base, cfg->redis_url, api->cell, so.timeout_ms);
    if (api->records == NULL) {
        rc = berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
        goto fail;
    }
    uint32_t period = TICK_MS_DEFAULT;
    const char *tick = getenv("BERTHD_TICK_MS");
    if (tick != NULL && atol(tick) >= 50 && atol(tick) <= 600000)
        period = (uint32_t)atol(tick);
    api->worker = bd_worker_new(base, cfg, err);
    if (api->worker == NULL) {
        rc = err->code != 0 ? err->code : BERTH_ENOMEM;
        goto fail;
    }
    bd_worker_housekeeping_start(api->worker, period);
    api->timer = event_new(base, -1, EV_PERSIST, on_timer, api);
    struct timeval tv = {(time_t)(period / 1000), (suseconds_t)((period % 1000) * 1000)};
    if (api->timer == NULL || event_add(api->timer, &tv) != 0) {
        rc = berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "cannot add the timer");
        goto fail;
    }
    api->healthy = true;            /* the stores just opened: Redis answered */
    api->health = event_new(base, -1, EV_PERSIST, on_health, api);
    struct timeval second = {1, 0};
    if (api->health == NULL || event_add(api->health, &second) != 0) {
        rc = berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "cannot add the timer");
        goto fail;
    }
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
    if (api->health != NULL)
        event_free(api->health);
    /* Requests still waiting are answered now (the worker's routes, agent
     * calls and commits: "Closed"), while the server still holds their
     * replies. */
    bd_worker_free(api->worker);
    berth_store_async_close(api->async);
    berth_engine_free(api->async_engine);
    bd_records_free(api->records);
    free(api);
}

/* Contract (berthd.h): appends the API's Prometheus metrics to out. */
void bd_api_metrics(bd_api_t *api, struct evbuffer *out)
{
    evbuffer_add_printf(out, "# HELP berthd_placement_seconds Time of placement commits.\n"
                             "# TYPE berthd_placement_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t i = 0; i < API_NBUCKETS; i++) {
        cum += api->hist[i];
        if (i < API_NBUCKETS - 1)
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
    evbuffer_add_printf(out, "# HELP berthd_evictions_total Spot container groups evicted "
                             "to place Regular ones.\n"
                             "# TYPE berthd_evictions_total counter\n"
                             "berthd_evictions_total %llu\n",
                        (unsigned long long)api->evictions);
    evbuffer_add_printf(out, "# HELP berthd_request_queue_depth Mutating requests between "
                             "their read and their reply.\n"
                             "# TYPE berthd_request_queue_depth gauge\n"
                             "berthd_request_queue_depth{kind=\"inflight\"} %llu\n",
                        (unsigned long long)api->inflight);
    berth_engine_t *engine = berth_store_async_engine(api->async);
    size_t n = berth_engine_host_count(engine);
    uint64_t states[3] = {0, 0, 0};
    json_t *skus = json_object();   /* sku -> [cap mc, cap mib, cap gpu, used mc, mib, gpu] */
    for (size_t i = 0; i < n; i++) {
        berth_host_t h;
        berth_host_usage_t u;
        if (berth_engine_host_at(engine, i, &h, &u) != 0)
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

/* Contract (berthd.h): whether Redis answered the last PING (sent every
 * second, without blocking); why[cap] says what fails. */
bool bd_api_healthy(bd_api_t *api, char *why, size_t cap)
{
    if (cap > 0)
        snprintf(why, cap, "%s", api->healthy ? "" : api->health_why);
    return api->healthy;
}
