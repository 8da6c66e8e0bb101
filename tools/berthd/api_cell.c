/*
 * api_cell.c: berthd's reads of the cell as a whole: its hosts
 * (/berth/hosts), a location's capabilities and cached images, and the
 * provider's operations, the engine's routes answered once the replica
 * caught up with the cell's log.
 *
 * It must never block the loop (catching up and image sets are callbacks
 * of the asynchronous store) and never change the engine or the cell.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api-internal.h"

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

/* Contract: api-internal.h. */
void api_after_sync(bd_api_t *api, synced_fn fn, const char *arg, bd_reply_t *reply)
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
static const char *os_name(berth_os_t os)
{
    return os == BERTH_OS_WINDOWS ? "Windows" : "Linux";
}

static const char *state_name(berth_host_state_t s)
{
    return s == BERTH_HOST_READY ? "ready" : s == BERTH_HOST_CORDONED ? "cordoned" : "down";
}

/* Contract: api-internal.h. */
void api_get_hosts(bd_api_t *api, const char *arg, bd_reply_t *reply)
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

/* Contract: api-internal.h.  For groups without GPUs, maxCpu and
 * maxMemoryInGB are the cell's per-group limits as the replica holds them
 * (berth_store_limits_put(), else ACI's), capped by the largest host. */
void api_get_capabilities(bd_api_t *api, const char *location, bd_reply_t *reply)
{
    berth_engine_t *engine = berth_store_async_engine(api->async);
    /* The cell's per-group limits, as the replica last synced them (ACI's
     * while the cell sets none). */
    berth_limits_t limits;
    berth_engine_limits_get(engine, &limits);
    json_t *best = json_object();  /* "os/sku" -> {cpu, memGB, gpus} */
    size_t n = berth_engine_host_count(engine);
    for (size_t i = 0; i < n; i++) {
        berth_host_t h;
        if (berth_engine_host_at(engine, i, &h, NULL) != 0 || h.state == BERTH_HOST_DOWN)
            continue;
        const char *sku = h.gpu_count > 0 && h.gpu_sku && h.gpu_sku[0] ? h.gpu_sku : "None";
        uint32_t max_mc = limits.max_millicores, max_mib = limits.max_memory_mib;
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
    json_t *only;                   /* the images to list, or NULL: all    */
} images_ctx_t;

static void cached_images(int status, const char *const *images, size_t n,
                          const berth_error_t *err, void *data)
{
    images_ctx_t *c = data;
    bd_reply_t *reply = c->reply;
    json_t *only = c->only;
    if (status != 0) {
        bd_reply_berth_error(reply, 500, err);
        json_decref(only);
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
            if (os[k] && (only == NULL || json_object_get(only, images[i]) != NULL))
                json_array_append_new(value,
                                      json_pack("{s:s, s:s}", "osType",
                                                os_name(k ? BERTH_OS_WINDOWS : BERTH_OS_LINUX),
                                                "image", images[i]));
    json_decref(only);
    bd_reply_send(reply, 200, json_pack("{s:o}", "value", value), NULL);
}

/* Contract: api-internal.h. */
void api_get_cached_images(bd_api_t *api, json_t *only, bd_reply_t *reply)
{
    images_ctx_t *c = malloc(sizeof *c);
    berth_error_t err;
    if (c == NULL) {
        bd_reply_error(reply, 503, "ServiceUnavailable", "", "out of memory");
        return;
    }
    c->api = api;
    c->reply = reply;
    c->only = json_incref(only);
    if (berth_store_async_images_list(api->async, cached_images, c, &err) != 0) {
        json_decref(c->only);
        free(c);
        bd_reply_berth_error(reply, 500, &err);
    }
}

/* Contract: api-internal.h. */
void api_get_provider_operations(bd_reply_t *reply)
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
        {"Microsoft.ContainerInstance/containerGroups/outboundNetworkDependenciesEndpoints/read",
         "List Outbound Network Dependencies"},
        {"Microsoft.ContainerInstance/serviceAssociationLinks/delete",
         "Delete Service Association Link"},
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
