/*
 * reads_scope.c: berthd's location reads that a tenant sees through its
 * own groups: usages (its groups in the location and what they hold of
 * the cell's cores, memory and GPUs; the limits stay the cell's capacity,
 * as ACI's quota does) and cached images (the images its groups in the
 * location run that the cell's hosts hold; an operator sees them all).
 *
 * Both walk the subscription's resource records (bd_records_list(), pages
 * of SCOPE_PAGE, at most SCOPE_PAGES_MAX pages) keeping those of the
 * location, and read what the groups hold from the engine's replica (no
 * I/O).  This file must never block, never write, and never let a reply
 * hold anything of another subscription's groups.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api-internal.h"
#include "reads.h"
#include "resource.h"

#define SCOPE_PAGE 256              /* records one page of the walk reads  */
#define SCOPE_PAGES_MAX 4096        /* pages one walk reads at most        */

typedef struct scope_walk scope_walk_t;

static void out_of_memory(bd_reply_t *reply)
{
    bd_reply_error(reply, 503, "ServiceUnavailable", "", "out of memory");
}

/* Called for each record of the subscription in the location. */
typedef void (*scope_record_fn)(scope_walk_t *w, const char *key, const json_t *rec);

/* Called once at the end: status 0, or the store's failure.  Frees w. */
typedef void (*scope_done_fn)(scope_walk_t *w, int status);

struct scope_walk {
    bd_api_t *api;
    bd_reply_t *reply;
    char prefix[BD_SUB_MAX + 2];    /* "<sub>/", lower case                 */
    char location[BD_LOCATION_MAX + 1]; /* normalized (bd_location_norm)   */
    char after[BD_KEY_MAX + 1];     /* the last key read; "" at the start   */
    size_t pages;
    scope_record_fn each;
    scope_done_fn done;
    /* What the walk gathers. */
    uint64_t groups;                /* usages: the usage count              */
    uint64_t millicores, memory_mib;
    json_t *gpus;                   /* usages: SKU -> {used, cap}           */
    json_t *images;                 /* cached images: image -> true         */
};

static void walk_free(scope_walk_t *w)
{
    json_decref(w->gpus);
    json_decref(w->images);
    free(w);
}

static scope_walk_t *walk_new(bd_api_t *api, bd_reply_t *reply, const char *sub,
                              const char *location)
{
    scope_walk_t *w = calloc(1, sizeof *w);
    if (w == NULL) {
        out_of_memory(reply);
        return NULL;
    }
    w->api = api;
    w->reply = reply;
    bd_lower(sub, w->prefix, sizeof w->prefix - 1);
    strcat(w->prefix, "/");
    bd_location_norm(location, w->location, sizeof w->location);
    return w;
}

static int walk_next(scope_walk_t *w);

static void walk_page(int status, const char *const *keys, json_t *const *recs, size_t n,
                      bool more, void *data)
{
    scope_walk_t *w = data;
    if (status != 0) {
        w->done(w, status);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char loc[BD_LOCATION_MAX + 1];
        if (recs[i] == NULL)
            continue;
        bd_location_norm(api_jstr(recs[i], "location"), loc, sizeof loc);
        if (strcmp(loc, w->location) == 0)
            w->each(w, keys[i], recs[i]);
    }
    if (!more || n == 0 || w->pages >= SCOPE_PAGES_MAX) {
        w->done(w, 0);
        return;
    }
    snprintf(w->after, sizeof w->after, "%s", keys[n - 1]);
    if (walk_next(w) != 0)
        w->done(w, BERTH_ENOMEM);
}

/* Reads the next page; 0, or BERTH_ENOMEM (nothing queued). */
static int walk_next(scope_walk_t *w)
{
    w->pages++;
    return bd_records_list(w->api->records, w->prefix, w->after[0] != '\0' ? w->after : NULL,
                           SCOPE_PAGE, walk_page, w);
}

/* Starts the walk; on failure answers 503 and frees w. */
static void walk_start(scope_walk_t *w, scope_record_fn each, scope_done_fn done)
{
    w->each = each;
    w->done = done;
    if (walk_next(w) != 0) {
        out_of_memory(w->reply);
        walk_free(w);
    }
}

static void store_failing(bd_reply_t *reply)
{
    bd_reply_error(reply, 500, "InternalServerError", "", "the resource store is failing");
}

/* ---- usages ------------------------------------------------------------------------------ */

static json_t *usage(const char *name, const char *local, uint64_t cur, uint64_t limit)
{
    return json_pack("{s:s, s:I, s:I, s:{s:s, s:s}}", "unit", "Count", "currentValue",
                     (json_int_t)cur, "limit", (json_int_t)limit, "name", "value", name,
                     "localizedValue", local);
}

/* Adds n to member `field` of gpus[sku] (made at {used 0, cap 0}). */
static void gpu_add(json_t *gpus, const char *sku, const char *field, uint64_t n)
{
    json_t *e = json_object_get(gpus, sku);
    if (e == NULL) {
        e = json_pack("{s:I, s:I}", "used", (json_int_t)0, "cap", (json_int_t)0);
        if (json_object_set_new(gpus, sku, e) != 0)
            return;
    }
    json_object_set_new(e, field,
                        json_integer(json_integer_value(json_object_get(e, field)) +
                                     (json_int_t)n));
}

static void usages_each(scope_walk_t *w, const char *key, const json_t *rec)
{
    (void)rec;
    berth_engine_t *engine = berth_store_async_engine(w->api->async);
    berth_placement_t pl;
    if (berth_engine_group_get(engine, key, &pl) != 0)
        return;
    w->millicores += pl.demand.millicores;
    w->memory_mib += pl.demand.memory_mib;
    if (pl.demand.gpu_count > 0) {
        const char *sku = berth_engine_gpu_sku_name(engine, pl.demand.gpu_sku);
        if (sku != NULL)
            gpu_add(w->gpus, sku, "used", pl.demand.gpu_count);
    }
}

static void usages_done(scope_walk_t *w, int status)
{
    bd_reply_t *reply = w->reply;
    if (status != 0) {
        store_failing(reply);
        walk_free(w);
        return;
    }
    /* The limits: the cell's capacity, and per GPU SKU its hosts' GPUs. */
    berth_engine_t *engine = berth_store_async_engine(w->api->async);
    berth_engine_stats_t st;
    berth_engine_stats(engine, &st);
    size_t nh = berth_engine_host_count(engine);
    for (size_t i = 0; i < nh; i++) {
        berth_host_t h;
        if (berth_engine_host_at(engine, i, &h, NULL) == 0 && h.gpu_count > 0 && h.gpu_sku)
            gpu_add(w->gpus, h.gpu_sku, "cap", h.gpu_count);
    }
    json_t *value = json_array();
    json_array_append_new(value,
                          usage("ContainerGroups", "Container Groups", w->groups, 2000));
    json_array_append_new(value, usage("StandardCores", "Standard Cores",
                                       (w->millicores + 999) / 1000,
                                       st.capacity_millicores / 1000));
    json_array_append_new(value, usage("StandardMemoryInGB", "Standard Memory (GB)",
                                       (w->memory_mib + 1023) / 1024,
                                       st.capacity_memory_mib / 1024));
    const char *sku;
    json_t *e;
    json_object_foreach(w->gpus, sku, e)
    {
        char name[96], local[128];
        snprintf(name, sizeof name, "Standard%sGpus", sku);
        snprintf(local, sizeof local, "Standard %s GPUs", sku);
        json_array_append_new(
            value, usage(name, local, (uint64_t)json_integer_value(json_object_get(e, "used")),
                         (uint64_t)json_integer_value(json_object_get(e, "cap"))));
    }
    walk_free(w);
    bd_reply_send(reply, 200, json_pack("{s:o}", "value", value), NULL);
}

static void usages_count(int status, const char *text, size_t len, void *data)
{
    (void)len;
    scope_walk_t *w = data;
    if (status != 0) {
        store_failing(w->reply);
        walk_free(w);
        return;
    }
    w->groups = text != NULL ? strtoull(text, NULL, 10) : 0;
    walk_start(w, usages_each, usages_done);
}

/* Contract: reads.h. */
void bd_reads_usages(bd_api_t *api, const char *sub, const char *location, bd_reply_t *reply)
{
    scope_walk_t *w = walk_new(api, reply, sub, location);
    if (w == NULL)
        return;
    w->gpus = json_object();
    /* The usage count's field: "<sub>/<location>" (records.h). */
    char field[BD_SUB_MAX + BD_LOCATION_MAX + 2];
    snprintf(field, sizeof field, "%s%s", w->prefix, w->location);
    if (w->gpus == NULL || bd_records_read(api->records, "usage", field, usages_count, w) != 0) {
        out_of_memory(reply);
        walk_free(w);
    }
}

/* ---- cached images ------------------------------------------------------------------------ */

static void images_each(scope_walk_t *w, const char *key, const json_t *rec)
{
    (void)key;
    size_t i;
    json_t *image;
    json_array_foreach(json_object_get(rec, "images"), i, image)
    {
        if (json_is_string(image))
            json_object_set_new(w->images, json_string_value(image), json_true());
    }
}

static void images_done(scope_walk_t *w, int status)
{
    if (status != 0)
        store_failing(w->reply);
    else
        api_get_cached_images(w->api, w->images, w->reply);
    walk_free(w);
}

/* Contract: reads.h. */
void bd_reads_cached_images(bd_api_t *api, const bd_request_t *req, const char *sub,
                            const char *location, bd_reply_t *reply)
{
    if (req->operator_scope) {
        api_get_cached_images(api, NULL, reply);
        return;
    }
    scope_walk_t *w = walk_new(api, reply, sub, location);
    if (w == NULL)
        return;
    w->images = json_object();
    if (w->images == NULL) {
        out_of_memory(reply);
        walk_free(w);
        return;
    }
    walk_start(w, images_each, images_done);
}
