/*
 * groups.c: the docker plugin's view of a group's objects and their life:
 * finding them by label, start, stop, restart, remove, status and the
 * list of every group on the host.
 *
 * It must never keep state of its own: every call asks the engine again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "docker.h"
#include "lib/base64.h"

/* ---- finding a group's objects ------------------------------------------ */

/* GET /containers/json with a label filter: the host's objects, or (key
 * not NULL) one group's. */
static int list_objects(docker_ctx_t *ctx, const char *key, json_t **out, berth_error_t *err)
{
    *out = NULL;
    json_t *labels = json_array();
    json_t *filters = json_object();
    char *host_label = NULL, *key_label = NULL;
    int rc = 0;
    if (labels == NULL || filters == NULL ||
        asprintf(&host_label, "%s=%s", PLUGIN_LABEL_HOST, ctx->host) < 0) {
        host_label = NULL;
        rc = berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
        goto done;
    }
    json_array_append_new(labels, json_string(host_label));
    if (key != NULL) {
        if (asprintf(&key_label, "%s=%s", PLUGIN_LABEL_KEY, key) < 0) {
            key_label = NULL;
            rc = berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
            goto done;
        }
        json_array_append_new(labels, json_string(key_label));
    }
    json_object_set(filters, "label", labels);
    char *ftext = json_dumps(filters, JSON_COMPACT);
    char *fesc = ftext ? engine_api_escape(ftext) : NULL;
    char *path = NULL;
    if (fesc == NULL || asprintf(&path, "/containers/json?all=1&filters=%s", fesc) < 0) {
        path = NULL;
        rc = berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    } else {
        rc = get_json(ctx, path, "RuntimeError", out, NULL, err);
        if (rc == 0 && !json_is_array(*out)) {
            json_decref(*out);
            *out = NULL;
            rc = berth_error_set(err, BERTH_EIO, "RuntimeError", "",
                                 "the engine's container list is not an array");
        }
    }
    free(path);
    free(fesc);
    free(ftext);
done:
    free(host_label);
    free(key_label);
    json_decref(labels);
    json_decref(filters);
    return rc;
}

static const char *label_of(json_t *labels, const char *name)
{
    return json_string_value(json_object_get(labels, name));
}

/* The group's objects, from the engine's list (the key label is checked
 * again here: a filter the engine ignored must not mix groups). */
int load_group(docker_ctx_t *ctx, const char *key, group_objects_t *g,
               berth_error_t *err)
{
    memset(g, 0, sizeof *g);
    json_t *list;
    int rc = list_objects(ctx, key, &list, err);
    if (rc != 0)
        return rc;
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item)
    {
        json_t *labels = json_object_get(item, "Labels");
        const char *host = label_of(labels, PLUGIN_LABEL_HOST);
        const char *k = label_of(labels, PLUGIN_LABEL_KEY);
        const char *role = label_of(labels, PLUGIN_LABEL_ROLE);
        const char *id = json_string_value(json_object_get(item, "Id"));
        if (host == NULL || k == NULL || role == NULL || id == NULL ||
            strcmp(host, ctx->host) != 0 || strcmp(k, key) != 0 || g->n >= OBJECTS_MAX)
            continue;
        group_object_t *o = &g->o[g->n];
        if (strcmp(role, "sandbox") == 0)
            o->role = ROLE_SANDBOX;
        else if (strcmp(role, "init") == 0)
            o->role = ROLE_INIT;
        else if (strcmp(role, "container") == 0)
            o->role = ROLE_CONTAINER;
        else
            continue;
        snprintf(o->id, sizeof o->id, "%s", id);
        o->index = (uint32_t)parse_u64(label_of(labels, PLUGIN_LABEL_INDEX), 10);
        const char *cname = label_of(labels, PLUGIN_LABEL_CONTAINER);
        snprintf(o->name, sizeof o->name, "%s", cname ? cname : "");
        const char *state = json_string_value(json_object_get(item, "State"));
        snprintf(o->state, sizeof o->state, "%s", state ? state : "");
        o->generation = parse_u64(label_of(labels, PLUGIN_LABEL_GENERATION), 10);
        o->digest = parse_u64(label_of(labels, PLUGIN_LABEL_DIGEST), 16);
        g->n++;
    }
    json_decref(list);
    /* Sandbox first, then init containers, then containers, by index. */
    for (size_t a = 1; a < g->n; a++) {
        group_object_t t = g->o[a];
        size_t b = a;
        while (b > 0 && (g->o[b - 1].role > t.role ||
                         (g->o[b - 1].role == t.role && g->o[b - 1].index > t.index))) {
            g->o[b] = g->o[b - 1];
            b--;
        }
        g->o[b] = t;
    }
    if (g->n > 0 && g->o[0].role == ROLE_SANDBOX)
        g->sandbox = &g->o[0];
    return 0;
}

static group_object_t *find_container(group_objects_t *g, const char *name)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->o[i].role != ROLE_SANDBOX && strcmp(g->o[i].name, name) == 0)
            return &g->o[i];
    return NULL;
}

static int no_group(const char *key, berth_error_t *err)
{
    return berth_error_set(err, BERTH_ENOENT, "ContainerGroupNotFound", "",
                           "the runtime holds no container group %s", key);
}

/* Loads the group and finds `container` in it. */
int find_named(docker_ctx_t *ctx, const char *key, const char *container,
               group_objects_t *g, group_object_t **out, berth_error_t *err)
{
    int rc = load_group(ctx, key, g, err);
    if (rc != 0)
        return rc;
    if (g->n == 0)
        return no_group(key, err);
    *out = find_container(g, container);
    if (*out == NULL)
        return berth_error_set(err, BERTH_ENOENT, "ContainerNotFound", "",
                               "container group %s has no container %s", key, container);
    return 0;
}

/* ---- start, stop, restart, remove --------------------------------------- */

static int object_post(docker_ctx_t *ctx, const char *id, const char *verb, const char *query,
                       long timeout_s, const char *errname, berth_error_t *err)
{
    char path[256];
    snprintf(path, sizeof path, "/containers/%s/%s%s", id, verb, query ? query : "");
    engine_response_t r;
    int rc = call(ctx, "POST", path, NULL, NULL, timeout_s, &r, err);
    if (rc != 0)
        return rc;
    if (r.status != 204 && r.status != 304 && r.status != 200) {
        char what[160];
        snprintf(what, sizeof what, "%s container %.12s", verb, id);
        rc = engine_failure(&r, r.status == 404 ? BERTH_ENOENT : BERTH_EIO, errname, what,
                            NULL, err);
    }
    engine_response_free(&r);
    return rc;
}

static int stop_one(docker_ctx_t *ctx, const group_object_t *o, uint32_t grace_s,
                    berth_error_t *err);

/* Starts the group's sandbox container unless it runs.  Under a gVisor
 * runtime, a container that starts takes the namespace's addresses over
 * for its own network stack and never gives them back; so when the
 * group's container does not run, a running sandbox is stopped first and
 * the container starts in a fresh namespace. */
static int start_sandbox(docker_ctx_t *ctx, group_objects_t *g, const char *key,
                         berth_error_t *err)
{
    if (g->sandbox == NULL)
        return berth_error_set(err, BERTH_ENOENT, "ContainerGroupNotFound", "",
                               "container group %s has lost its sandbox", key);
    bool running = strcmp(g->sandbox->state, "running") == 0;
    if (running && docker_sandboxed(ctx)) {
        bool member_runs = false;
        for (size_t i = 0; i < g->n; i++)
            member_runs |= g->o[i].role != ROLE_SANDBOX && strcmp(g->o[i].state, "running") == 0;
        if (!member_runs) {
            int rc = stop_one(ctx, g->sandbox, 0, err);
            if (rc != 0)
                return rc;
            running = false;
        }
    }
    if (running)
        return 0;
    return object_post(ctx, g->sandbox->id, "start", NULL, ENGINE_API_TIMEOUT_S,
                       "ContainerStartFailed", err);
}

int docker_start(void *c, const char *key, const char *container, berth_error_t *err)
{
    docker_ctx_t *ctx = c;
    group_objects_t *g = malloc(sizeof *g);
    if (g == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    group_object_t *one = NULL;
    int rc = container ? find_named(ctx, key, container, g, &one, err)
                       : load_group(ctx, key, g, err);
    if (rc == 0 && g->n == 0)
        rc = no_group(key, err);
    if (rc == 0)
        rc = start_sandbox(ctx, g, key, err);
    /* One container, or (none named) every container but the init ones,
     * which the agent runs itself before the others. */
    for (size_t i = 0; rc == 0 && i < g->n; i++) {
        group_object_t *o = &g->o[i];
        if (one != NULL ? o == one : o->role == ROLE_CONTAINER)
            rc = object_post(ctx, o->id, "start", NULL, ENGINE_API_TIMEOUT_S,
                             "ContainerStartFailed", err);
    }
    free(g);
    return rc;
}

static int stop_one(docker_ctx_t *ctx, const group_object_t *o, uint32_t grace_s,
                    berth_error_t *err)
{
    char query[32];
    snprintf(query, sizeof query, "?t=%u", grace_s);
    /* The engine waits up to the grace period, then kills: allow for both. */
    int rc = object_post(ctx, o->id, "stop", query, (long)grace_s + ENGINE_API_TIMEOUT_S,
                         "ContainerStopFailed", err);
    return rc == BERTH_ENOENT ? 0 : rc;
}

int docker_stop(void *c, const char *key, const char *container, uint32_t grace_s,
                berth_error_t *err)
{
    docker_ctx_t *ctx = c;
    group_objects_t *g = malloc(sizeof *g);
    if (g == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    group_object_t *one = NULL;
    int rc = container ? find_named(ctx, key, container, g, &one, err)
                       : load_group(ctx, key, g, err);
    if (rc == 0 && g->n == 0)
        rc = no_group(key, err);
    if (rc == 0 && one != NULL) {
        rc = stop_one(ctx, one, grace_s, err);
    } else if (rc == 0) {
        /* Containers in reverse document order, init containers last. */
        for (size_t i = g->n; rc == 0 && i > 0; i--) {
            const group_object_t *o = &g->o[i - 1];
            if (o->role != ROLE_SANDBOX && strcmp(o->state, "created") != 0 &&
                strcmp(o->state, "exited") != 0)
                rc = stop_one(ctx, o, grace_s, err);
        }
    }
    free(g);
    return rc;
}

int docker_restart(void *c, const char *key, uint32_t grace_s, berth_error_t *err)
{
    int rc = docker_stop(c, key, NULL, grace_s, err);
    return rc != 0 ? rc : docker_start(c, key, NULL, err);
}

static int delete_object(docker_ctx_t *ctx, const char *id, berth_error_t *err)
{
    char path[160];
    snprintf(path, sizeof path, "/containers/%s?force=1&v=1", id);
    engine_response_t r;
    int rc = call(ctx, "DELETE", path, NULL, NULL, ENGINE_API_TIMEOUT_S, &r, err);
    if (rc != 0)
        return rc;
    if (r.status != 204 && r.status != 200 && r.status != 404) {
        char what[128];
        snprintf(what, sizeof what, "deleting container %.12s", id);
        rc = engine_failure(&r, BERTH_EIO, "ContainerDeleteFailed", what, NULL, err);
    }
    engine_response_free(&r);
    return rc;
}

int docker_remove(void *c, const char *key, berth_error_t *err)
{
    docker_ctx_t *ctx = c;
    group_objects_t *g = malloc(sizeof *g);
    if (g == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    int rc = load_group(ctx, key, g, err);
    /* Containers first get stop_grace_s seconds to end on SIGTERM. */
    if (rc == 0 && g->n > 0) {
        berth_error_t ignored;
        (void)docker_stop(ctx, key, NULL, ctx->stop_grace_s, &ignored);
    }
    /* Members before the sandbox whose namespace they share. */
    for (size_t i = g->n; rc == 0 && i > 0; i--)
        rc = delete_object(ctx, g->o[i - 1].id, err);
    free(g);
    if (rc != 0)
        return rc;
    char gid[PLUGIN_ID_LEN + 1];
    plugin_group_id(ctx->host, key, gid);
    return volumes_remove(&ctx->volumes, gid, err);
}

int docker_config_maps(void *c, const char *key, const berth_group_t *spec, berth_error_t *err)
{
    docker_ctx_t *ctx = c;
    group_objects_t *g = malloc(sizeof *g);
    if (g == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    int rc = load_group(ctx, key, g, err);
    bool held = rc == 0 && g->n > 0;
    free(g);
    if (rc != 0)
        return rc;
    if (!held)
        return berth_error_set(err, BERTH_ENOENT, "ContainerGroupNotFound", "key",
                               "the host holds no container group '%s'", key);
    /* The containers bind-mount the directories: the files change under
     * them, nothing restarts. */
    char gid[PLUGIN_ID_LEN + 1];
    plugin_group_id(ctx->host, key, gid);
    return volumes_config_maps(&ctx->volumes, gid, spec, err);
}

/* ---- status ------------------------------------------------------------- */

static void fill_ports(json_t *ports, berth_group_status_t *out)
{
    const char *k;
    json_t *bindings;
    json_object_foreach(ports, k, bindings)
    {
        if (!json_is_array(bindings) || json_array_size(bindings) == 0 ||
            out->nports >= BERTH_PLUGIN_PORTS_MAX)
            continue;
        json_t *b = json_array_get(bindings, 0);
        /* One binding per port: prefer an IPv4 one when the engine lists
         * the IPv6 twin as well. */
        for (size_t i = 0; i < json_array_size(bindings); i++) {
            const char *ip = json_string_value(json_object_get(json_array_get(bindings, i),
                                                                "HostIp"));
            if (ip && strchr(ip, ':') == NULL) {
                b = json_array_get(bindings, i);
                break;
            }
        }
        berth_published_port_t *p = &out->ports[out->nports];
        char proto[8] = "tcp";
        unsigned port = 0;
        if (sscanf(k, "%u/%7s", &port, proto) < 1 || port == 0 || port > 65535)
            continue;
        p->port = port;
        p->protocol = strcmp(proto, "udp") == 0 ? BERTH_PROTOCOL_UDP : BERTH_PROTOCOL_TCP;
        const char *hip = json_string_value(json_object_get(b, "HostIp"));
        const char *hport = json_string_value(json_object_get(b, "HostPort"));
        snprintf(p->host_ip, sizeof p->host_ip, "%s", hip ? hip : "");
        p->host_port = (uint32_t)parse_u64(hport, 10);
        out->nports++;
    }
}

static void fill_container(const group_object_t *o, json_t *inspect,
                           berth_container_status_t *cs)
{
    snprintf(cs->name, sizeof cs->name, "%s", o->name);
    cs->exists = true;
    json_t *state = json_object_get(inspect, "State");
    const char *status = json_string_value(json_object_get(state, "Status"));
    if (status == NULL)
        status = o->state;
    cs->exit_code = (int)json_integer_value(json_object_get(state, "ExitCode"));
    cs->oom_killed = json_is_true(json_object_get(state, "OOMKilled"));
    cs->started_ms = plugin_time_parse(json_string_value(json_object_get(state, "StartedAt")));
    cs->finished_ms = plugin_time_parse(json_string_value(json_object_get(state, "FinishedAt")));
    if (strcmp(status, "running") == 0 || strcmp(status, "restarting") == 0 ||
        strcmp(status, "paused") == 0) {
        cs->state = BERTH_CONTAINER_RUNNING;
        snprintf(cs->detail, sizeof cs->detail, "%s", strcmp(status, "running") ? status : "");
    } else if (strcmp(status, "exited") == 0 || strcmp(status, "dead") == 0 ||
               strcmp(status, "stopped") == 0 || strcmp(status, "removing") == 0) {
        cs->state = BERTH_CONTAINER_TERMINATED;
        snprintf(cs->detail, sizeof cs->detail, "%s",
                 cs->oom_killed ? "OOMKilled" : cs->exit_code == 0 ? "Completed" : "Error");
    } else {
        /* created, configured, initialized: made but never run. */
        cs->state = BERTH_CONTAINER_WAITING;
        cs->exit_code = 0;
        snprintf(cs->detail, sizeof cs->detail, "%s", "Created");
    }
    if (cs->state != BERTH_CONTAINER_TERMINATED)
        cs->finished_ms = 0;
    /* Podman may stamp a quick container's end a little before its start. */
    else if (cs->finished_ms != 0 && cs->finished_ms < cs->started_ms)
        cs->finished_ms = cs->started_ms;
}

static int inspect(docker_ctx_t *ctx, const char *id, json_t **out, long *status,
                   berth_error_t *err)
{
    char path[160];
    snprintf(path, sizeof path, "/containers/%s/json", id);
    return get_json(ctx, path, "RuntimeError", out, status, err);
}

int docker_status(void *c, const char *key, berth_group_status_t *out,
                  berth_error_t *err)
{
    docker_ctx_t *ctx = c;
    memset(out, 0, sizeof *out);
    group_objects_t *g = malloc(sizeof *g);
    if (g == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    int rc = load_group(ctx, key, g, err);
    if (rc != 0 || g->n == 0) {
        free(g);
        return rc;
    }
    out->exists = true;
    out->generation = g->o[0].generation;
    out->digest = g->o[0].digest;
    for (size_t i = 0; rc == 0 && i < g->n; i++) {
        json_t *j = NULL;
        long st = 0;
        rc = inspect(ctx, g->o[i].id, &j, &st, err);
        if (rc != 0 || j == NULL)
            continue; /* removed meanwhile */
        if (g->o[i].role == ROLE_SANDBOX) {
            json_t *ns = json_object_get(j, "NetworkSettings");
            const char *ip = json_string_value(json_object_get(ns, "IPAddress"));
            if (ip == NULL || *ip == '\0') {
                const char *nk;
                json_t *net;
                json_object_foreach(json_object_get(ns, "Networks"), nk, net)
                {
                    const char *nip = json_string_value(json_object_get(net, "IPAddress"));
                    if (nip && *nip) {
                        ip = nip;
                        break;
                    }
                }
            }
            snprintf(out->ip, sizeof out->ip, "%s", ip ? ip : "");
            fill_ports(json_object_get(ns, "Ports"), out);
        } else if (out->ncontainers < BERTH_PLUGIN_CONTAINERS_MAX) {
            fill_container(&g->o[i], j, &out->containers[out->ncontainers++]);
        }
        json_decref(j);
    }
    free(g);
    return rc;
}

/* ---- list --------------------------------------------------------------- */

typedef struct listed {
    char *key;
    uint64_t generation;
    uint64_t digest;
} listed_t;

int docker_list(void *c, berth_plugin_list_cb cb, void *data, berth_error_t *err)
{
    docker_ctx_t *ctx = c;
    json_t *list;
    int rc = list_objects(ctx, NULL, &list, err);
    if (rc != 0)
        return rc;
    size_t n = 0, cap = 0;
    listed_t *keys = NULL;
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item)
    {
        json_t *labels = json_object_get(item, "Labels");
        const char *host = label_of(labels, PLUGIN_LABEL_HOST);
        const char *key = label_of(labels, PLUGIN_LABEL_KEY);
        if (host == NULL || key == NULL || strcmp(host, ctx->host) != 0)
            continue;
        const char *role = label_of(labels, PLUGIN_LABEL_ROLE);
        bool sandbox = role && strcmp(role, "sandbox") == 0;
        size_t k = 0;
        while (k < n && strcmp(keys[k].key, key) != 0)
            k++;
        if (k == n) {
            if (n >= LIST_GROUPS_MAX)
                continue;
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                listed_t *p = realloc(keys, ncap * sizeof *p);
                if (p == NULL) {
                    rc = berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
                    break;
                }
                keys = p;
                cap = ncap;
            }
            keys[n].key = strdup(key);
            if (keys[n].key == NULL) {
                rc = berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
                break;
            }
            n++;
        } else if (!sandbox) {
            continue;
        }
        /* The sandbox's labels win: it is made first and removed last. */
        keys[k].generation = parse_u64(label_of(labels, PLUGIN_LABEL_GENERATION), 10);
        keys[k].digest = parse_u64(label_of(labels, PLUGIN_LABEL_DIGEST), 16);
    }
    json_decref(list);
    for (size_t k = 0; k < n; k++) {
        if (rc == 0)
            cb(keys[k].key, keys[k].generation, keys[k].digest, data);
        free(keys[k].key);
    }
    free(keys);
    return rc;
}
