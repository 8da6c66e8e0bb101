/*
 * reads_scope.c: berthd's location reads that a tenant sees through its
 * own groups: usages (its groups in the location and what they hold of
 * the cell's cores, memory and GPUs; the limits stay the cell's capacity,
 * as ACI's quota does) and cached images (the images its groups in the
 * location run that the cell's hosts hold; an operator sees them all).
 *
 * Both walk the subscription's resource records (bd_records_list(), pages
 * of SCOPE_PAGE, at most SCOPE_PAGES_MAX pages) keeping those of the
 * location, then its NGroups in the location (their records are the
 * library's: read on the worker thread, with the images of their
 * templates) and count each NGroup's members as its groups, and read what
 * the groups hold from the engine's replica (no I/O).  This file must never
 * block, never write, and never let a reply hold anything of another
 * subscription's groups.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api-internal.h"
#include "reads.h"
#include "resource.h"
#include "worker.h"

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
    /* The NGroups of the subscription in the location, read on the worker:
     * key -> [image, ...] of their templates. */
    json_t *ngroups;
    scope_done_fn finish;           /* the reply, once the NGroups are in   */
};

static void walk_free(scope_walk_t *w)
{
    json_decref(w->gpus);
    json_decref(w->images);
    json_decref(w->ngroups);
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

/* ---- the subscription's NGroups ----------------------------------------------------------- */

/* Adds the images a group document's containers and init containers run
 * to the array `out`. */
static void template_images(const char *doc, json_t *out)
{
    json_t *root = doc != NULL ? json_loads(doc, 0, NULL) : NULL;
    json_t *props = json_object_get(root, "properties");
    static const char *const lists[] = {"containers", "initContainers"};
    for (size_t l = 0; l < 2; l++) {
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(props, lists[l]), i, c)
        {
            json_t *image = json_object_get(json_object_get(c, "properties"), "image");
            if (json_is_string(image))
                json_array_append(out, image);
        }
    }
    json_decref(root);
}

typedef struct ng_keys {
    const char *prefix;
    size_t plen;
    json_t *keys;
} ng_keys_t;

/* The subscription's NGroup keys ("<sub>/<rg>/<name>"). */
static void on_ngroup_key(const char *key, void *data)
{
    ng_keys_t *k = data;
    if (strncmp(key, k->prefix, k->plen) == 0)
        json_array_append_new(k->keys, json_string(key));
}

/* On the worker: the subscription's NGroups in the location, with their
 * templates' images, into w->ngroups (left NULL when the store fails). */
static void ngroups_scan(bd_worker_ctx_t *ctx, void *arg)
{
    scope_walk_t *w = arg;
    if (ctx->store == NULL)
        return;
    ng_keys_t k = {w->prefix, strlen(w->prefix), json_array()};
    json_t *found = json_object();
    if (k.keys == NULL || found == NULL ||
        berth_store_ngroup_list(ctx->store, on_ngroup_key, &k, NULL) < 0) {
        json_decref(k.keys);
        json_decref(found);
        return;
    }
    size_t i;
    json_t *key;
    json_array_foreach(k.keys, i, key)
    {
        berth_ngroup_t *g = NULL;
        if (berth_store_ngroup_get(ctx->store, json_string_value(key), &g, NULL) != 0)
            continue;
        json_t *meta = g->metadata_json ? json_loads(g->metadata_json, 0, NULL) : NULL;
        char loc[BD_LOCATION_MAX + 1];
        bd_location_norm(api_jstr(meta, "location"), loc, sizeof loc);
        if (strcmp(loc, w->location) == 0 && !g->deleting) {
            json_t *images = json_array();
            template_images(g->template_json, images);
            json_object_set_new(found, g->key, images);
        }
        json_decref(meta);
        berth_ngroup_free(g);
    }
    json_decref(k.keys);
    w->ngroups = found;
}

/* The loop's replica holds the members the worker placed: the reply. */
static void replica_synced(int status, const berth_placement_t *placement,
                           const berth_error_t *err, void *arg)
{
    (void)placement, (void)err;
    scope_walk_t *w = arg;
    w->finish(w, status);
}

/* On the loop: the scan's outcome.  The members are read from the loop's
 * replica, caught up first (the worker's store placed them). */
static void ngroups_scanned(int status, const berth_error_t *err, void *arg)
{
    (void)err;
    scope_walk_t *w = arg;
    berth_error_t e;
    if (status != 0 || w->ngroups == NULL)
        w->finish(w, BERTH_EIO);
    else if (json_object_size(w->ngroups) == 0)
        w->finish(w, 0);
    else if (berth_store_async_sync(w->api->async, replica_synced, w, &e) != 0)
        w->finish(w, e.code);
}

/* The records are walked: read the NGroups, then finish (at once when
 * the records could not be read). */
static void records_walked(scope_walk_t *w, int status)
{
    if (status != 0 || bd_worker_call(w->api->worker, ngroups_scan, ngroups_scanned, w) != 0)
        w->finish(w, status != 0 ? status : BERTH_EIO);
}

/* The members of each NGroup read, as each record: each(w, member key,
 * NULL). */
typedef struct member_walk {
    scope_walk_t *w;
    scope_record_fn each;
} member_walk_t;

static int on_member(const char *key, void *data)
{
    member_walk_t *m = data;
    m->each(m->w, key, NULL);
    return 0;
}

static void members_each(scope_walk_t *w, scope_record_fn each)
{
    berth_engine_t *engine = berth_store_async_engine(w->api->async);
    member_walk_t m = {w, each};
    const char *key;
    json_t *images;
    json_object_foreach(w->ngroups, key, images)
    {
        char prefix[BERTH_NGROUP_KEY_MAX + 2];
        snprintf(prefix, sizeof prefix, "%s/", key);
        berth_engine_group_keys(engine, prefix, on_member, &m);
    }
}

/* Starts the walk; on failure answers 503 and frees w. */
static void walk_start(scope_walk_t *w, scope_record_fn each, scope_done_fn done)
{
    w->each = each;
    w->done = records_walked;
    w->finish = done;
    if (walk_next(w) != 0) {
        out_of_memory(w->reply);
        walk_free(w);
    }
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

/* An NGroup member: held like a group, and counted among the groups. */
static void usages_member(scope_walk_t *w, const char *key, const json_t *rec)
{
    w->groups++;
    usages_each(w, key, rec);
}

static void usages_done(scope_walk_t *w, int status)
{
    bd_reply_t *reply = w->reply;
    if (status != 0) {
        bd_reply_store_failing(reply);
        walk_free(w);
        return;
    }
    members_each(w, usages_member);
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
        bd_reply_store_failing(w->reply);
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
    const char *key;
    json_t *list;
    json_object_foreach(status == 0 ? w->ngroups : NULL, key, list)
    {
        size_t i;
        json_t *image;
        json_array_foreach(list, i, image)
            json_object_set(w->images, json_string_value(image), json_true());
    }
    if (status != 0)
        bd_reply_store_failing(w->reply);
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
