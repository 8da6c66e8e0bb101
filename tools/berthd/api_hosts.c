/*
 * api_hosts.c: berthd's operator routes on one host: GET /berth/hosts/{host}
 * (its state and the groups still placed there), and POST
 * /berth/hosts/{host}/cordon, /uncordon and /drain.
 *
 * CORDON keeps new groups off the host (the core's cordoned state): the
 * groups already there stay, and a redeploy of one may stay there too.
 * UNCORDON makes it ready again.  DRAIN cordons the host and moves every
 * group on it elsewhere, each move one ordinary commit of the store
 * (berth_store_place(), a redeploy of the group's own document), as the
 * failover's evacuation does: for the moves the host is marked down in
 * the cell, which is what makes the engine take a redeploy off it, and it
 * is cordoned again once they are done (a down host stays down).  A group
 * that fits nowhere stays where it is and is reported ("remaining", with
 * the engine's reason); a drain repeated later tries it again.  A
 * finished group -- restart policy Never with every container terminated,
 * or OnFailure with every container terminated with exit code 0 -- is not
 * moved (moving it would run it again): it is stopped, as POST .../stop
 * stops a group (its resource Stopped, its place released, in one commit;
 * a start later places it anew), and reported as "stopped".  The answer
 * is 202 with Location: /berth/hosts/{host}, whose GET shows what is still
 * there.
 *
 * The POSTs need a token allowing every subscription ("*") when berthd has
 * a tokens file (403 otherwise).  They run on the worker thread
 * (bd_worker_route(): the synchronous store blocks), into a captured
 * reply for a drain, whose finished groups are then stopped from the loop
 * through the API's own stop route, one after the other; the GET reads the
 * loop's replica after it caught up, without blocking.  No answer names a
 * store key: groups are named by their ARM id.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "api-internal.h"
#include "worker.h"

#define HOST_NAME_MAX_LEN 63

static bool valid_host_name(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= HOST_NAME_MAX_LEN &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}

static const char *state_name(berth_host_state_t s)
{
    return s == BERTH_HOST_READY ? "ready" : s == BERTH_HOST_CORDONED ? "cordoned" : "down";
}

/* The ARM id of the group under store key "<sub>/<rg>/<name>" (a new
 * JSON string), or NULL for a key of another shape. */
static json_t *group_id(const char *key)
{
    const char *a = strchr(key, '/');
    const char *b = a != NULL ? strchr(a + 1, '/') : NULL;
    if (a == NULL || b == NULL || strchr(b + 1, '/') != NULL)
        return NULL;
    char *id = NULL;
    if (asprintf(&id,
                 "/subscriptions/%.*s/resourceGroups/%.*s/providers/"
                 "Microsoft.ContainerInstance/containerGroups/%s",
                 (int)(a - key), key, (int)(b - a - 1), a + 1, b + 1) < 0)
        return NULL;
    json_t *s = json_string(id);
    free(id);
    return s;
}

typedef struct on_host {
    const berth_engine_t *engine;
    const char *host;
    json_t *keys;                   /* array of the keys placed on host     */
} on_host_t;

static int on_host_key(const char *key, void *data)
{
    on_host_t *o = data;
    berth_placement_t p;
    if (berth_engine_group_get(o->engine, key, &p) == 0 && strcmp(p.host, o->host) == 0)
        json_array_append_new(o->keys, json_string(key));
    return 0;
}

/* The keys of the groups `engine` places on `host` (a new array). */
static json_t *keys_on_host(const berth_engine_t *engine, const char *host)
{
    on_host_t o = {engine, host, json_array()};
    if (o.keys != NULL)
        berth_engine_group_keys(engine, NULL, on_host_key, &o);
    return o.keys;
}

/* Appends the ARM ids of `keys` to `out` (a key of another shape: as
 * "other" groups, counted, never shown). */
static void append_ids(json_t *out, json_t *keys)
{
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        json_t *id = group_id(json_string_value(k));
        json_array_append_new(out, id != NULL ? id : json_string("(a group of another kind)"));
    }
}

/* GET /berth/hosts/{host}, once the loop's replica caught up (a synced_fn). */
static void get_host(bd_api_t *api, const char *name, bd_reply_t *reply)
{
    berth_engine_t *engine = berth_store_async_engine(api->async);
    berth_host_t h;
    berth_host_usage_t u;
    if (berth_engine_host_get(engine, name, &h, &u) != 0) {
        bd_reply_error(reply, 404, "HostNotFound", "host", "the cell has no host '%s'", name);
        return;
    }
    json_t *keys = keys_on_host(engine, name);
    json_t *groups = json_array();
    append_ids(groups, keys);
    json_decref(keys);
    bd_reply_send(reply, 200,
                  json_pack("{s:s, s:s, s:s, s:i, s:i, s:{s:i, s:i, s:i, s:i}, s:o}", "name",
                            name, "state", state_name(h.state), "zone", h.zone ? h.zone : "",
                            "cores", (int)h.cores, "memoryMiB", (int)h.memory_mib, "allocated",
                            "millicores", (int)u.millicores, "memoryMiB", (int)u.memory_mib,
                            "gpus", (int)u.gpu_count, "groups", (int)u.groups, "groups",
                            groups),
                  NULL);
}

/* ---- on the worker ------------------------------------------------------------------------ */

/* Whether the group's containers have all ended for good by its restart
 * policy, as the agent's view of the record's generation `gen` says. */
static bool finished(berth_store_t *store, const char *key, const berth_group_t *g,
                     uint64_t gen)
{
    if (g->restart_policy != BERTH_RESTART_NEVER && g->restart_policy != BERTH_RESTART_ON_FAILURE)
        return false;
    char *text = NULL;
    if (berth_store_view_read(store, key, &text, NULL) != 0)
        return false;
    json_t *v = json_loads(text, 0, NULL);
    berth_free(text);
    json_t *cs = json_object_get(v, "containers");
    bool done = v != NULL && (uint64_t)json_integer_value(json_object_get(v, "generation")) == gen &&
                json_array_size(cs) > 0;
    size_t i;
    json_t *c;
    json_array_foreach(cs, i, c)
    {
        json_t *st = json_object_get(json_object_get(c, "instanceView"), "currentState");
        const char *state = json_string_value(json_object_get(st, "state"));
        if (state == NULL || strcmp(state, "Terminated") != 0 ||
            (g->restart_policy == BERTH_RESTART_ON_FAILURE &&
             json_integer_value(json_object_get(st, "exitCode")) != 0))
            done = false;
    }
    json_decref(v);
    return done;
}

typedef struct drain {
    json_t *moved, *remaining, *finished;
} drain_t;

static void remain(drain_t *d, const char *key, const char *reason)
{
    json_t *id = group_id(key);
    if (id != NULL)
        json_array_append_new(d->remaining, json_pack("{s:o, s:s}", "id", id, "reason", reason));
}

/* Moves the groups under `keys` off `host` (marked down for the moves
 * unless `was_down`, cordoned again after).  Returns 0, or BERTH_EIO with
 * *err when the cell failed (the host is cordoned again all the same). */
static int drain_moves(bd_worker_ctx_t *ctx, const char *host, json_t *keys, bool was_down,
                       drain_t *d, berth_error_t *err)
{
    int rc = 0;
    if (!was_down && (rc = berth_store_host_set_state(ctx->store, host, BERTH_HOST_DOWN, err)) != 0)
        return rc;
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        const char *key = json_string_value(k);
        char *spec = NULL;
        berth_group_t *g = NULL;
        berth_request_t req;
        berth_placement_t p;
        berth_error_t e;
        int r = berth_store_group_read(ctx->store, key, &spec, NULL, &e);
        if (r == BERTH_ENOENT) {
            continue;               /* released meanwhile */
        } else if (r == 0 && spec == NULL) {
            remain(d, key, "the cell holds no document for this group");
            continue;
        }
        if (r == 0)
            r = berth_group_parse(spec, strlen(spec), &g, &e);
        if (r == 0)
            r = berth_engine_group_request(ctx->engine, g, &req, &e);
        if (r == 0)
            r = berth_store_place(ctx->store, key, &req, spec, &p, &e);
        berth_group_free(g);
        berth_free(spec);
        if (r == BERTH_EIO) {
            *err = e;
            rc = r;
            break;
        }
        json_t *id = group_id(key);
        if (r == 0 && strcmp(p.host, host) != 0 && id != NULL) {
            json_array_append_new(d->moved, json_pack("{s:o, s:s}", "id", id, "host", p.host));
        } else {
            json_decref(id);
            remain(d, key, r == 0 ? "the engine kept the group on this host" : e.message);
        }
    }
    berth_error_t e2;
    if (!was_down && berth_store_host_set_state(ctx->store, host, BERTH_HOST_CORDONED, &e2) != 0 &&
        rc == 0) {
        *err = e2;
        rc = BERTH_EIO;
    }
    return rc;
}

/* POST /berth/hosts/{host}/drain on the worker, the host known. */
static void drain_host(bd_worker_ctx_t *ctx, const char *host, berth_host_state_t state,
                       bd_reply_t *reply)
{
    berth_error_t err;
    bool was_down = state == BERTH_HOST_DOWN;
    if (!was_down && berth_store_host_set_state(ctx->store, host, BERTH_HOST_CORDONED, &err) != 0) {
        bd_reply_berth_error(reply, 500, &err);
        return;
    }
    drain_t d = {json_array(), json_array(), json_array()};
    json_t *all = keys_on_host(ctx->engine, host);
    json_t *moving = json_array();
    size_t i;
    json_t *k;
    json_array_foreach(all, i, k)
    {
        const char *key = json_string_value(k);
        char *spec = NULL;
        uint64_t gen = 0;
        berth_group_t *g = NULL;
        bool done = berth_store_group_read(ctx->store, key, &spec, &gen, NULL) == 0 &&
                    spec != NULL && berth_group_parse(spec, strlen(spec), &g, NULL) == 0 &&
                    finished(ctx->store, key, g, gen);
        berth_group_free(g);
        berth_free(spec);
        json_t *id = done ? group_id(key) : NULL;
        if (id != NULL)
            json_array_append_new(d.finished, id);
        else
            json_array_append(moving, k);
    }
    int rc = json_array_size(moving) > 0 ? drain_moves(ctx, host, moving, was_down, &d, &err) : 0;
    json_decref(moving);
    json_decref(all);
    if (rc != 0) {
        json_decref(d.moved);
        json_decref(d.remaining);
        json_decref(d.finished);
        bd_reply_berth_error(reply, 500, &err);
        return;
    }
    char location[32 + HOST_NAME_MAX_LEN];
    snprintf(location, sizeof location, "/berth/hosts/%s", host);
    const char *headers[] = {"Location", location, NULL};
    bd_reply_send(reply, 202,
                  json_pack("{s:s, s:s, s:o, s:o, s:o}", "name", host, "state",
                            was_down ? "down" : "cordoned", "moved", d.moved, "remaining",
                            d.remaining, "finished", d.finished),
                  headers);
}

/* POST /berth/hosts/{host}/{cordon,uncordon,drain} (a bd_route_fn). */
static void host_action(bd_worker_ctx_t *ctx, const bd_request_t *req, bd_reply_t *reply,
                        char **seg, int n)
{
    (void)req, (void)n;
    const char *host = seg[2], *action = seg[3];
    berth_error_t err;
    if (ctx->store == NULL) {
        bd_reply_berth_error(reply, 500, &ctx->store_err);
        return;
    }
    if (berth_store_sync(ctx->store, &err) != 0) {
        bd_reply_berth_error(reply, 500, &err);
        return;
    }
    berth_host_t h;
    if (berth_engine_host_get(ctx->engine, host, &h, NULL) != 0) {
        bd_reply_error(reply, 404, "HostNotFound", "host", "the cell has no host '%s'", host);
        return;
    }
    if (strcmp(action, "drain") == 0) {
        drain_host(ctx, host, h.state, reply);
        return;
    }
    berth_host_state_t to = strcmp(action, "cordon") == 0 ? BERTH_HOST_CORDONED : BERTH_HOST_READY;
    int rc = berth_store_host_set_state(ctx->store, host, to, &err);
    if (rc == BERTH_ENOENT) {
        bd_reply_error(reply, 404, "HostNotFound", "host", "the cell has no host '%s'", host);
        return;
    }
    if (rc != 0) {
        bd_reply_berth_error(reply, 500, &err);
        return;
    }
    bd_reply_send(reply, 200, json_pack("{s:s, s:s}", "name", host, "state", state_name(to)),
                  NULL);
}

/* ---- a drain's finished groups, stopped from the loop ---------------------------------- */

typedef struct drain_stop {
    bd_api_t *api;
    bd_reply_t *reply;              /* the client's                         */
    bd_reply_t *captured;           /* the worker's pass, then each stop's  */
    struct event *wake;
    json_t *answer;                 /* the pass's 202 body                  */
    json_t *stopped;
    size_t next;                    /* the next finished group to stop      */
    bool stopping;                  /* `captured` is a stop's               */
} drain_stop_t;

static void drain_stop_free(drain_stop_t *d)
{
    bd_reply_capture_free(d->captured);
    if (d->wake != NULL)
        event_free(d->wake);
    json_decref(d->answer);
    json_decref(d->stopped);
    free(d);
}

static void drain_notify(void *arg)
{
    drain_stop_t *d = arg;
    event_active(d->wake, EV_TIMEOUT, 0); /* on the loop, from any thread */
}

/* Stops the next finished group, or sends the answer when none is left. */
static void drain_stop_next(drain_stop_t *d)
{
    json_t *finished = json_object_get(d->answer, "finished");
    const char *id = json_string_value(json_array_get(finished, d->next));
    if (id == NULL) {
        char location[32 + HOST_NAME_MAX_LEN];
        snprintf(location, sizeof location, "/berth/hosts/%s",
                 json_string_value(json_object_get(d->answer, "name")));
        const char *headers[] = {"Location", location, NULL};
        json_object_set(d->answer, "stopped", d->stopped);
        json_object_del(d->answer, "finished");
        bd_reply_send(d->reply, 202, json_incref(d->answer), headers);
        drain_stop_free(d);
        return;
    }
    char *path = NULL;
    d->captured = bd_reply_capture_new();
    if (d->captured == NULL || asprintf(&path, "%s/stop", id) < 0) {
        bd_reply_error(d->reply, 503, "ServiceUnavailable", "", "out of memory");
        drain_stop_free(d);
        return;
    }
    d->stopping = true;
    bd_request_t req = {0};
    req.method = BD_POST;
    req.path = path;
    req.query = "api-version=2023-05-01";
    req.body = "";
    req.base_url = "";
    req.any_subscription = true; /* the drain's caller may touch every one */
    req.operator_scope = true;
    bd_reply_capture_notify(d->captured, drain_notify, d);
    bd_api_handle(d->api, &req, d->captured);
    free(path);
}

static void drain_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    drain_stop_t *d = arg;
    const char *body = NULL;
    size_t len = 0;
    int status = bd_reply_captured(d->captured, &body, &len);
    if (!d->stopping) {
        /* The worker's pass: anything but a 202 goes to the client as is. */
        d->answer = status == 202 && body != NULL ? json_loadb(body, len, 0, NULL) : NULL;
        if (d->answer == NULL) {
            bd_reply_forward(d->captured, d->reply);
            d->captured = NULL;
            drain_stop_free(d);
            return;
        }
    } else {
        json_t *finished = json_object_get(d->answer, "finished");
        json_t *id = json_array_get(finished, d->next++);
        if (status >= 200 && status < 300) {
            json_array_append(d->stopped, id);
        } else {
            json_t *e = body != NULL ? json_loadb(body, len, 0, NULL) : NULL;
            const char *why = json_string_value(
                json_object_get(json_object_get(e, "error"), "message"));
            json_array_append_new(json_object_get(d->answer, "remaining"),
                                  json_pack("{s:O, s:s}", "id", id,
                                            "reason", why != NULL ? why : "the stop failed"));
            json_decref(e);
        }
    }
    bd_reply_capture_free(d->captured);
    d->captured = NULL;
    drain_stop_next(d);
}

/* A drain: the worker's pass into a captured reply, then the stops. */
static void drain_start(bd_api_t *api, const bd_request_t *req, bd_reply_t *reply, char **seg,
                        int n)
{
    drain_stop_t *d = calloc(1, sizeof *d);
    if (d != NULL) {
        d->api = api;
        d->reply = reply;
        d->stopped = json_array();
        d->captured = bd_reply_capture_new();
        d->wake = event_new(api->base, -1, 0, drain_wake, d);
    }
    if (d == NULL || d->stopped == NULL || d->captured == NULL || d->wake == NULL) {
        if (d != NULL)
            drain_stop_free(d);
        bd_reply_error(reply, 503, "ServiceUnavailable", "", "out of memory");
        return;
    }
    bd_reply_capture_notify(d->captured, drain_notify, d);
    bd_worker_route(api->worker, host_action, req, d->captured, seg, n);
}

/* Contract: api-internal.h. */
void api_hosts_route(bd_api_t *api, const bd_request_t *req, bd_reply_t *reply, char **seg,
                     int n)
{
    bd_reply_route(reply, n == 3 ? "Berth_Host" : "Berth_HostAction");
    if (!valid_host_name(seg[2])) {
        bd_reply_error(reply, 400, "InvalidHostName", "host",
                       "host names are 1-63 letters, digits, '-', '_' or '.'");
        return;
    }
    if (n == 3) {
        if (req->method != BD_GET)
            bd_reply_error(reply, 405, "MethodNotAllowed", "",
                           "the method is not allowed on this resource");
        else
            api_after_sync(api, get_host, seg[2], reply);
        return;
    }
    if (strcmp(seg[3], "cordon") != 0 && strcmp(seg[3], "uncordon") != 0 &&
        strcmp(seg[3], "drain") != 0) {
        bd_reply_error(reply, 404, "NotFound", "", "no such resource or route");
        return;
    }
    if (req->method != BD_POST) {
        bd_reply_error(reply, 405, "MethodNotAllowed", "",
                       "the method is not allowed on this resource");
        return;
    }
    if (strcmp(seg[3], "drain") == 0)
        drain_start(api, req, reply, seg, n);
    else
        bd_worker_route(api->worker, host_action, req, reply, seg, n);
}
